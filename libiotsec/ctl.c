/* ctl: the control socket (protocol in ctl.h). The server and ctl_watch live on the daemon's
 * sd-event loop and never block it; the client blocks, with poll() timeouts. */
#include "ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define CTL_QUEUE_MAX	      (256 * 1024) /* unsent bytes before a connection is dropped */
#define CTL_QUEUE_SOFT	      (64 * 1024)  /* unsent bytes before we stop reading requests */
#define CTL_EVENTS_MAX	      32	   /* names in one subscription */
#define CTL_EVENT_NAME_MAX    64
#define CTL_CLIENT_EVENTS_MAX 1024    /* events a blocking client holds while in a call */
#define CTL_ACCEPT_RETRY_USEC 1000000 /* pause after accept() ran out of descriptors */
#define CTL_TIMER_ACCURACY    1000    /* usec; sd-event's default of 250 ms is too coarse */

/* ---- buffers shared by the server, the client and the watch ---- */

/* Received bytes: buf[start..len) are unconsumed, and buf[start..scan) hold no newline (so a
 * peer that trickles a long line byte by byte costs linear time, not quadratic). */
struct ctl_in {
	char *buf; /* CTL_LINE_MAX bytes: the longest line is CTL_LINE_MAX - 1 plus '\n' */
	size_t start, scan, len;
};

/* Bytes waiting to be sent: buf[start..len). */
struct ctl_out {
	char *buf;
	size_t start, len, cap;
};

static int in_init(struct ctl_in *in)
{
	in->start = in->scan = in->len = 0;
	in->buf = malloc(CTL_LINE_MAX);
	return in->buf ? 0 : -ENOMEM;
}

/* Read what fits: > 0 bytes, 0 at end of stream, or a negative errno (-EAGAIN included). */
static int in_read(struct ctl_in *in, int fd)
{
	ssize_t n;

	if (in->start > 0) {
		memmove(in->buf, in->buf + in->start, in->len - in->start);
		in->len -= in->start;
		in->scan -= in->start;
		in->start = 0;
	}
	if (in->len == CTL_LINE_MAX)
		return -ENOBUFS;
	n = read(fd, in->buf + in->len, CTL_LINE_MAX - in->len);
	if (n < 0)
		return -errno;
	in->len += (size_t)n;
	return (int)n;
}

/* The next complete line, without its newline; valid until the next in_read(). */
static bool in_line(struct ctl_in *in, const char **ret, size_t *ret_len)
{
	char *nl = memchr(in->buf + in->scan, '\n', in->len - in->scan);

	if (nl == NULL) {
		in->scan = in->len;
		return false;
	}
	*ret = in->buf + in->start;
	*ret_len = (size_t)(nl - *ret);
	in->start = in->scan = (size_t)(nl + 1 - in->buf);
	return true;
}

/* After in_line() said no: the buffer is full of a line that has no end. */
static bool in_overflow(const struct ctl_in *in)
{
	return in->len - in->start == CTL_LINE_MAX;
}

static size_t out_pending(const struct ctl_out *o)
{
	return o->len - o->start;
}

static int out_add(struct ctl_out *o, const char *p, size_t n)
{
	size_t cap;
	char *buf;

	if (o->start > 0) {
		memmove(o->buf, o->buf + o->start, o->len - o->start);
		o->len -= o->start;
		o->start = 0;
	}
	if (o->len + n > o->cap) {
		cap = o->cap ? o->cap : 4096;
		while (cap < o->len + n)
			cap *= 2;
		if ((buf = realloc(o->buf, cap)) == NULL)
			return -ENOMEM;
		o->buf = buf;
		o->cap = cap;
	}
	memcpy(o->buf + o->len, p, n);
	o->len += n;
	return 0;
}

/* Send without blocking: 0 when all went or the socket is full, else a negative errno. */
static int out_flush(struct ctl_out *o, int fd)
{
	ssize_t n;

	while (out_pending(o) > 0) {
		n = send(fd, o->buf + o->start, out_pending(o), MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN ? 0 : -errno;
		o->start += (size_t)n;
	}
	o->start = o->len = 0;
	/* A burst for a slow subscriber should not pin its memory for the connection's life. */
	if (o->cap > CTL_QUEUE_SOFT) {
		free(o->buf);
		o->buf = NULL;
		o->cap = 0;
	}
	return 0;
}

/* o as one compact line ending in '\n'; -EMSGSIZE when the peer could not take it whole. */
static int line_dump(const json_t *o, char **ret, size_t *ret_len)
{
	char *s = NULL, *line;
	size_t len;
	int r = -ENOMEM;

	if ((s = json_dumps(o, JSON_COMPACT)) == NULL)
		goto out;
	len = strlen(s);
	if (len + 1 > CTL_LINE_MAX) {
		r = -EMSGSIZE;
		goto out;
	}
	if ((line = realloc(s, len + 2)) == NULL)
		goto out;
	s = line;
	s[len] = '\n';
	s[len + 1] = '\0';
	*ret = s;
	*ret_len = len + 1;
	s = NULL;
	r = 0;
out:
	free(s);
	return r;
}

static int sockaddr_make(const char *path, struct sockaddr_un *sa, socklen_t *ret_len)
{
	size_t n = strlen(path);

	if (n == 0)
		return -EINVAL;
	if (n >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path, path, n + 1);
	*ret_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	return 0;
}

/* {"events":[...]} from a NULL-terminated list, checked as the server will check it. */
static int events_args(const char *const *events, json_t **ret)
{
	json_t *args = NULL, *list = json_array();
	size_t n = 0;
	int r = -ENOMEM;

	if (list == NULL)
		goto out;
	for (; events && events[n]; n++) {
		size_t len = strlen(events[n]);

		if (len == 0 || len > CTL_EVENT_NAME_MAX || n == CTL_EVENTS_MAX) {
			r = -EINVAL;
			goto out;
		}
		if (json_array_append_new(list, json_string(events[n])) < 0) {
			r = -EINVAL; /* not UTF-8 */
			goto out;
		}
	}
	if (n == 0) {
		r = -EINVAL;
		goto out;
	}
	if ((args = json_object()) == NULL || json_object_set(args, "events", list) < 0)
		goto out;
	*ret = args;
	args = NULL;
	r = 0;
out:
	json_decref(list);
	json_decref(args);
	return r;
}

/* ---- requests and replies ---- */

static void reply_copy_id(json_t *reply, const json_t *request)
{
	json_t *id = json_object_get(request, "id");

	if (id)
		json_object_set(reply, "id", id);
}

/* {"v":1,"ok":false,"error":why} echoing request's "id"; request may be NULL. */
static json_t *refusal_new(const json_t *request, const char *why)
{
	json_t *o = json_pack("{s:i, s:b, s:s}", "v", CTL_PROTO_VERSION, "ok", 0, "error", why);

	if (o)
		reply_copy_id(o, request);
	return o;
}

static json_t *success_new(const json_t *request, json_t *fields)
{
	json_t *o = json_pack("{s:i, s:b}", "v", CTL_PROTO_VERSION, "ok", 1);

	/* A handler cannot overwrite "v" or "ok", and the echoed id wins over its own. */
	if (o && fields && json_object_update_missing(o, fields) < 0) {
		json_decref(o);
		return NULL;
	}
	if (o)
		reply_copy_id(o, request);
	return o;
}

int ctl_request_parse(const char *line, size_t len, json_t **ret_request, json_t **ret_refusal)
{
	json_t *req, *v, *verb, *refusal;
	json_error_t jerr;
	char why[sizeof(jerr.text) + 32];
	int r = -EBADMSG;

	req = json_loadb(line, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
	v = json_object_get(req, "v");
	verb = json_object_get(req, "verb");
	if (req == NULL) {
		snprintf(why, sizeof(why), "invalid JSON: %s", jerr.text);
	} else if (!json_is_object(req)) {
		snprintf(why, sizeof(why), "request is not a JSON object");
	} else if (v == NULL) {
		snprintf(why, sizeof(why), "missing protocol version \"v\"");
	} else if (!json_is_integer(v)) {
		snprintf(why, sizeof(why), "protocol version \"v\" is not an integer");
	} else if (json_integer_value(v) != CTL_PROTO_VERSION) {
		snprintf(why, sizeof(why), "unsupported protocol version %" JSON_INTEGER_FORMAT,
			 json_integer_value(v));
		r = -EPROTONOSUPPORT;
	} else if (verb == NULL) {
		snprintf(why, sizeof(why), "missing \"verb\"");
	} else if (!json_is_string(verb)) {
		snprintf(why, sizeof(why), "\"verb\" is not a string");
	} else {
		*ret_request = req;
		req = NULL;
		r = 0;
		goto out;
	}
	/* jansson's message quotes the input, which may end mid-character: keep it valid UTF-8. */
	if ((refusal = refusal_new(req, why)) == NULL)
		refusal = refusal_new(req, "invalid JSON");
	if (refusal == NULL)
		r = -ENOMEM;
	else
		*ret_refusal = refusal;
out:
	json_decref(req);
	return r;
}

/* ---- server ---- */

struct ctl_conn {
	struct ctl_server *s;
	struct ctl_conn *prev, *next;
	int fd;
	sd_event_source *io;
	struct ucred cred;
	struct ctl_in in;
	struct ctl_out out;
	json_t *events; /* the subscription's names; NULL when not subscribed */
	bool all_events;
	bool eof;     /* the peer will send nothing more */
	bool closing; /* close once the output is sent */
	bool doomed;  /* dropped while its own request was running: freed when that returns */
};

struct ctl_server {
	char *path;
	bool bound;
	dev_t dev;
	ino_t ino;
	int fd;
	sd_event_source *accept_io, *accept_retry;
	const struct ctl_verb *verbs;
	void *userdata;
	struct ctl_conn *conns;
	unsigned n_conns;
	struct ctl_conn *dispatching;
};

static void conn_free(struct ctl_conn *c)
{
	if (c == NULL)
		return;
	if (c->prev)
		c->prev->next = c->next;
	else
		c->s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->s->n_conns--;
	sd_event_source_disable_unref(c->io);
	close(c->fd);
	free(c->in.buf);
	free(c->out.buf);
	json_decref(c->events);
	free(c);
}

/* Drop a connection; one whose request is running stays allocated until the handler returns. */
static void conn_drop(struct ctl_conn *c)
{
	if (c == c->s->dispatching)
		c->doomed = true;
	else
		conn_free(c);
}

static bool conn_reading(const struct ctl_conn *c)
{
	return !c->eof && !c->closing && !c->doomed && out_pending(&c->out) < CTL_QUEUE_SOFT;
}

static int conn_set_events(struct ctl_conn *c)
{
	uint32_t mask = 0;

	if (conn_reading(c))
		mask |= EPOLLIN;
	if (out_pending(&c->out) > 0)
		mask |= EPOLLOUT;
	return sd_event_source_set_io_events(c->io, mask);
}

/* Queue one line; a peer already CTL_QUEUE_MAX behind is dropped instead. */
static int conn_queue(struct ctl_conn *c, const char *line, size_t len)
{
	int r;

	if (c->doomed)
		return -ECONNRESET;
	if (out_pending(&c->out) + len > CTL_QUEUE_MAX) {
		log_debug("ctl: dropping pid %d, %zu bytes behind", (int)c->cred.pid,
			  out_pending(&c->out));
		r = -ENOBUFS;
	} else if ((r = out_add(&c->out, line, len)) == 0 && (r = out_flush(&c->out, c->fd)) == 0) {
		r = conn_set_events(c);
	}
	if (r < 0)
		conn_drop(c);
	return r;
}

/* Send reply (a reply too large for the peer becomes a refusal saying so). */
static void conn_reply(struct ctl_conn *c, json_t *request, json_t *reply)
{
	json_t *small = NULL;
	char *line = NULL;
	size_t len;
	int r;

	r = line_dump(reply, &line, &len);
	if (r == -EMSGSIZE && (small = refusal_new(request, iotsec_strerror(r))) != NULL)
		r = line_dump(small, &line, &len);
	if (r < 0)
		conn_drop(c);
	else
		conn_queue(c, line, len);
	free(line);
	json_decref(small);
}

static int conn_subscribe(struct ctl_conn *c, json_t *request, const char **ret_why)
{
	json_t *events = json_object_get(request, "events"), *name;
	size_t i, n = json_array_size(events);
	bool all = false;

	if (!json_is_array(events) || n < 1 || n > CTL_EVENTS_MAX) {
		*ret_why = "\"events\" must be an array of 1 to 32 event names";
		return -EINVAL;
	}
	for (i = 0; i < n; i++) {
		name = json_array_get(events, i);
		if (!json_is_string(name) || json_string_length(name) < 1 ||
		    json_string_length(name) > CTL_EVENT_NAME_MAX) {
			*ret_why = "event names must be strings of 1 to 64 characters";
			return -EINVAL;
		}
		all = all || strcmp(json_string_value(name), "*") == 0;
	}
	json_decref(c->events);
	c->events = json_incref(events);
	c->all_events = all;
	return 0;
}

static bool conn_wants(const struct ctl_conn *c, const char *event)
{
	size_t i;

	if (c->events == NULL || c->closing || c->doomed)
		return false;
	if (c->all_events)
		return true;
	for (i = 0; i < json_array_size(c->events); i++)
		if (strcmp(json_string_value(json_array_get(c->events, i)), event) == 0)
			return true;
	return false;
}

static const struct ctl_verb *server_verb(const struct ctl_server *s, const char *name)
{
	const struct ctl_verb *v;

	for (v = s->verbs; v->name; v++)
		if (strcmp(v->name, name) == 0)
			return v;
	return NULL;
}

/* Answer one request line. */
static void conn_handle(struct ctl_conn *c, const char *line, size_t len)
{
	json_t *req = NULL, *reply = NULL, *fields = NULL;
	const struct ctl_verb *v;
	const char *verb, *why = NULL;
	char unknown[96];
	size_t cut;
	int r;

	if (ctl_request_parse(line, len, &req, &reply) < 0)
		goto send;
	verb = json_string_value(json_object_get(req, "verb"));
	if (strcmp(verb, "subscribe") == 0) {
		r = conn_subscribe(c, req, &why);
		reply = r < 0 ? refusal_new(req, why) : success_new(req, NULL);
		goto send;
	}
	if ((v = server_verb(c->s, verb)) == NULL) {
		/* Quote at most 64 bytes of the name, never cutting a UTF-8 sequence. */
		for (cut = strlen(verb) > 64 ? 64 : strlen(verb);
		     cut > 0 && ((unsigned char)verb[cut] & 0xc0) == 0x80; cut--)
			;
		snprintf(unknown, sizeof(unknown), "unknown verb '%.*s'", (int)cut, verb);
		reply = refusal_new(req, unknown);
		goto send;
	}
	if ((v->flags & CTL_MUTATES) && c->cred.uid != 0 && c->cred.uid != geteuid()) {
		reply = refusal_new(req, "permission denied");
		goto send;
	}
	r = v->fn(req, &fields, c->s->userdata);
	if (r >= 0 && fields && !json_is_object(fields))
		r = -EINVAL; /* a handler bug, but the peer still deserves an answer */
	reply = r < 0 ? refusal_new(req, iotsec_strerror(r)) : success_new(req, fields);
send:
	/* Without memory for a reply the peer would wait forever: hang up instead. */
	if (reply == NULL)
		conn_drop(c);
	else
		conn_reply(c, req, reply);
	json_decref(fields);
	json_decref(reply);
	json_decref(req);
}

/* Answer every complete line while the peer keeps up, then decide what to wait for. */
static void conn_process(struct ctl_conn *c)
{
	static const char too_long[] = "{\"v\":1,\"ok\":false,\"error\":\"request too long\"}\n";
	bool drained = false;
	const char *line;
	size_t len;

	c->s->dispatching = c;
	while (!c->doomed && !c->closing && out_pending(&c->out) < CTL_QUEUE_SOFT) {
		if (!in_line(&c->in, &line, &len)) {
			drained = true;
			break;
		}
		conn_handle(c, line, len);
	}
	c->s->dispatching = NULL;
	if (c->doomed) {
		conn_free(c);
		return;
	}
	if (drained && !c->closing && in_overflow(&c->in)) {
		c->closing = true;
		c->in.start = c->in.scan = c->in.len = 0;
		if (conn_queue(c, too_long, sizeof(too_long) - 1) < 0)
			return;
	}
	if (drained && c->eof)
		c->closing = true;
	if ((c->closing && out_pending(&c->out) == 0) || conn_set_events(c) < 0)
		conn_free(c);
}

static int on_conn_io(sd_event_source *src, int fd, uint32_t revents, void *userdata)
{
	struct ctl_conn *c = userdata;
	int r = 0;

	(void)src;
	if (out_pending(&c->out) > 0 && (revents & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
		r = out_flush(&c->out, fd);
	if (r == 0 && conn_reading(c) && (revents & (EPOLLIN | EPOLLERR | EPOLLHUP))) {
		r = in_read(&c->in, fd);
		if (r == 0)
			c->eof = true;
		if (r == -EAGAIN || r == -EINTR || r > 0)
			r = 0;
	}
	if (r < 0)
		conn_free(c);
	else
		conn_process(c);
	return 0;
}

static int conn_new(struct ctl_server *s, int fd)
{
	struct ctl_conn *c = calloc(1, sizeof(*c));
	socklen_t len = sizeof(c->cred);
	int r = -ENOMEM;

	if (c == NULL || in_init(&c->in) < 0)
		goto out;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c->cred, &len) < 0) {
		r = -errno;
		goto out;
	}
	if ((r = sd_event_add_io(sd_event_source_get_event(s->accept_io), &c->io, fd, EPOLLIN,
				 on_conn_io, c)) < 0)
		goto out;
	c->s = s;
	c->fd = fd;
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	s->n_conns++;
	c = NULL;
	r = 0;
out:
	if (c)
		free(c->in.buf);
	free(c);
	return r;
}

static int on_accept_retry(sd_event_source *src, uint64_t usec, void *userdata)
{
	struct ctl_server *s = userdata;

	(void)src, (void)usec;
	sd_event_source_set_enabled(s->accept_io, SD_EVENT_ON);
	return 0;
}

static int on_accept(sd_event_source *src, int fd, uint32_t revents, void *userdata)
{
	static const char busy[] = "{\"v\":1,\"ok\":false,\"error\":\"too many connections\"}\n";
	struct ctl_server *s = userdata;
	int cfd;

	(void)revents;
	for (;;) {
		cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (cfd < 0 && (errno == EINTR || errno == ECONNABORTED))
			continue;
		if (cfd < 0 && errno != EAGAIN) {
			/* Out of descriptors: a level-triggered listener would spin, so pause. */
			log_debug("ctl: accept on %s: %s", s->path, strerror(errno));
			if (sd_event_source_set_time_relative(s->accept_retry,
							      CTL_ACCEPT_RETRY_USEC) >= 0 &&
			    sd_event_source_set_enabled(s->accept_retry, SD_EVENT_ONESHOT) >= 0)
				sd_event_source_set_enabled(src, SD_EVENT_OFF);
		}
		if (cfd < 0)
			return 0;
		if (s->n_conns >= CTL_MAX_CLIENTS) {
			/* Best effort, so iotsecctl can say why rather than "connection reset". */
			(void)send(cfd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
			close(cfd);
		} else if (conn_new(s, cfd) < 0) {
			close(cfd);
		}
	}
}

int ctl_server_new(sd_event *e, const char *path, const struct ctl_verb *verbs, void *userdata,
		   struct ctl_server **ret)
{
	struct ctl_server *s = NULL;
	struct sockaddr_un sa;
	socklen_t salen;
	struct stat st;
	int r;

	if (e == NULL || path == NULL || verbs == NULL || ret == NULL)
		return -EINVAL;
	if ((r = sockaddr_make(path, &sa, &salen)) < 0)
		return r;
	if ((s = calloc(1, sizeof(*s))) == NULL || (s->path = strdup(path)) == NULL) {
		r = -ENOMEM;
		goto out;
	}
	s->fd = -1;
	s->verbs = verbs;
	s->userdata = userdata;
	/* A socket left by a daemon that died; anything else at that path is not ours to delete. */
	if (lstat(path, &st) == 0 && !S_ISSOCK(st.st_mode)) {
		r = -EEXIST;
		goto out;
	}
	if (unlink(path) < 0 && errno != ENOENT) {
		r = -errno;
		goto out;
	}
	if ((s->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0 ||
	    bind(s->fd, (struct sockaddr *)&sa, salen) < 0) {
		r = -errno;
		goto out;
	}
	s->bound = true;
	if (stat(path, &st) < 0 || chmod(path, 0666) < 0 || listen(s->fd, SOMAXCONN) < 0) {
		r = -errno;
		goto out;
	}
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	if ((r = sd_event_add_io(e, &s->accept_io, s->fd, EPOLLIN, on_accept, s)) < 0 ||
	    (r = sd_event_add_time_relative(e, &s->accept_retry, CLOCK_MONOTONIC,
					    CTL_ACCEPT_RETRY_USEC, CTL_TIMER_ACCURACY,
					    on_accept_retry, s)) < 0 ||
	    (r = sd_event_source_set_enabled(s->accept_retry, SD_EVENT_OFF)) < 0)
		goto out;
	*ret = s;
	s = NULL;
	r = 0;
out:
	ctl_server_free(s);
	return r;
}

void ctl_server_free(struct ctl_server *s)
{
	struct stat st;

	if (s == NULL)
		return;
	while (s->conns)
		conn_free(s->conns);
	sd_event_source_disable_unref(s->accept_io);
	sd_event_source_disable_unref(s->accept_retry);
	if (s->fd >= 0)
		close(s->fd);
	/* Only our own socket: a newer instance may already have replaced it. */
	if (s->bound && lstat(s->path, &st) == 0 && st.st_dev == s->dev && st.st_ino == s->ino)
		unlink(s->path);
	free(s->path);
	free(s);
}

int ctl_server_publish(struct ctl_server *s, const char *event, json_t *data)
{
	struct ctl_conn *c, *next;
	json_t *o = NULL, *name;
	char *line = NULL;
	size_t len;
	int r = -EINVAL;

	/* "*" and "disconnected" mean something else to subscribers. */
	if (s == NULL || event == NULL || event[0] == '\0' || strlen(event) > CTL_EVENT_NAME_MAX ||
	    strcmp(event, "*") == 0 || strcmp(event, "disconnected") == 0 ||
	    (data && !json_is_object(data)) || (name = json_string(event)) == NULL)
		return -EINVAL;
	r = -ENOMEM;
	if ((o = json_pack("{s:i, s:o}", "v", CTL_PROTO_VERSION, "event", name)) == NULL ||
	    (data && json_object_update_missing(o, data) < 0))
		goto out;
	if ((r = line_dump(o, &line, &len)) < 0)
		goto out;
	for (c = s->conns; c; c = next) {
		next = c->next;
		if (conn_wants(c, event))
			conn_queue(c, line, len);
	}
	r = 0;
out:
	free(line);
	json_decref(o);
	return r;
}

/* ---- blocking client ---- */

struct ctl_client {
	int fd;
	struct ctl_in in;
	json_t *events;	   /* pushed while a call waited for its reply, oldest first */
	json_int_t serial; /* "id" of the last request */
	int error;	   /* sticky: once the stream is out of step every call fails */
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t deadline_of(int timeout_ms)
{
	return timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
}

/* Wait for events on the socket until deadline (-1: forever). */
static int client_wait(struct ctl_client *c, short events, int64_t deadline)
{
	struct pollfd p = {.fd = c->fd, .events = events};
	int64_t left;
	int n;

	for (;;) {
		left = deadline < 0 ? -1 : deadline - now_ms();
		if (deadline >= 0 && left < 0)
			left = 0;
		n = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
		if (n > 0)
			return 0;
		if (n == 0 && left >= 0 && left < INT_MAX)
			return -ETIMEDOUT;
		if (n < 0 && errno != EINTR)
			return -errno;
	}
}

static int client_fail(struct ctl_client *c, int r)
{
	if (r == -EPIPE)
		r = -ECONNRESET;
	c->error = r;
	return r;
}

static int client_send(struct ctl_client *c, const char *line, size_t len, int64_t deadline)
{
	size_t sent = 0;
	ssize_t n;
	int r;

	while (sent < len) {
		n = send(c->fd, line + sent, len - sent, MSG_NOSIGNAL);
		if (n > 0) {
			sent += (size_t)n;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return client_fail(c, -errno);
		if ((r = client_wait(c, POLLOUT, deadline)) < 0) {
			/* Half a request on the wire: the next one would be read as its tail. */
			if (sent > 0) {
				shutdown(c->fd, SHUT_RDWR);
				client_fail(c, -ECONNRESET);
			}
			return r;
		}
	}
	return 0;
}

/* The next object the server sent: -EBADMSG for a line that is not one (the stream stays in
 * step), -ETIMEDOUT, or a sticky -ECONNRESET / -EBADMSG when the stream is lost. */
static int client_next_object(struct ctl_client *c, int64_t deadline, json_t **ret)
{
	const char *line;
	size_t len;
	json_t *o;
	int r;

	for (;;) {
		if (in_line(&c->in, &line, &len)) {
			o = json_loadb(line, len, JSON_REJECT_DUPLICATES, NULL);
			if (!json_is_object(o)) {
				json_decref(o);
				return -EBADMSG;
			}
			*ret = o;
			return 0;
		}
		if (in_overflow(&c->in))
			return client_fail(c, -EBADMSG);
		r = in_read(&c->in, c->fd);
		if (r == 0)
			return client_fail(c, -ECONNRESET);
		if (r == -EAGAIN || r == -EINTR) {
			if ((r = client_wait(c, POLLIN, deadline)) < 0)
				return r;
		} else if (r < 0) {
			return client_fail(c, r);
		}
	}
}

static bool is_event(const json_t *o)
{
	return json_is_string(json_object_get(o, "event"));
}

int ctl_client_connect(const char *path, struct ctl_client **ret)
{
	struct ctl_client *c = NULL;
	struct sockaddr_un sa;
	socklen_t salen;
	int r;

	if (path == NULL || ret == NULL)
		return -EINVAL;
	if ((r = sockaddr_make(path, &sa, &salen)) < 0)
		return r;
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		r = -ENOMEM;
		goto out;
	}
	c->fd = -1;
	if (in_init(&c->in) < 0 || (c->events = json_array()) == NULL) {
		r = -ENOMEM;
		goto out;
	}
	/* Blocking connect (a Unix socket answers at once), then non-blocking for the timeouts. */
	if ((c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    connect(c->fd, (struct sockaddr *)&sa, salen) < 0 ||
	    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK) < 0) {
		r = -errno;
		goto out;
	}
	*ret = c;
	c = NULL;
	r = 0;
out:
	ctl_client_free(c);
	return r;
}

void ctl_client_free(struct ctl_client *c)
{
	if (c == NULL)
		return;
	if (c->fd >= 0)
		close(c->fd);
	free(c->in.buf);
	json_decref(c->events);
	free(c);
}

int ctl_client_call(struct ctl_client *c, const char *verb, json_t *args, int timeout_ms,
		    json_t **ret_reply)
{
	json_t *req = NULL, *o = NULL, *id;
	int64_t deadline = deadline_of(timeout_ms);
	char *line = NULL;
	json_int_t serial;
	size_t len;
	int r;

	if (c == NULL || verb == NULL || ret_reply == NULL || (args && !json_is_object(args)))
		return -EINVAL;
	if (c->error < 0)
		return c->error;
	serial = ++c->serial;
	r = -ENOMEM;
	if ((req = json_pack("{s:i, s:s}", "v", CTL_PROTO_VERSION, "verb", verb)) == NULL ||
	    (args && json_object_update_missing(req, args) < 0) ||
	    json_object_set_new(req, "id", json_integer(serial)) < 0)
		goto out;
	if ((r = line_dump(req, &line, &len)) < 0)
		goto out;
	/* After a reset, read on: the server may have said why ("too many connections"). */
	if ((r = client_send(c, line, len, deadline)) < 0 && r != -ECONNRESET)
		goto out;
	for (;;) {
		if ((r = client_next_object(c, deadline, &o)) < 0)
			goto out;
		if (is_event(o)) {
			/* A tool that never reads its events must not grow without bound. */
			if (json_array_size(c->events) >= CTL_CLIENT_EVENTS_MAX)
				json_array_remove(c->events, 0);
			json_array_append_new(c->events, o);
			o = NULL;
			continue;
		}
		/* No id: a refusal of a line the server could not read. Another id: the late
		 * reply to a call that timed out. */
		id = json_object_get(o, "id");
		if (id == NULL || (json_is_integer(id) && json_integer_value(id) == serial))
			break;
		json_decref(o);
		o = NULL;
	}
	*ret_reply = o;
	o = NULL;
	r = 0;
out:
	free(line);
	json_decref(req);
	json_decref(o);
	return r;
}

const char *ctl_reply_error(json_t *reply)
{
	json_t *ok = json_object_get(reply, "ok");
	const char *e;

	if (json_is_true(ok))
		return NULL;
	if (!json_is_false(ok))
		return "malformed reply";
	e = json_string_value(json_object_get(reply, "error"));
	return e ? e : "unknown error";
}

/* 0, -EINVAL for a list the server refused (or that is empty, too long or has a bad name), or
 * an error of ctl_client_call(). */
int ctl_client_subscribe(struct ctl_client *c, const char *const *events, int timeout_ms)
{
	json_t *args = NULL, *reply = NULL;
	int r;

	if (c == NULL)
		return -EINVAL;
	if ((r = events_args(events, &args)) < 0 ||
	    (r = ctl_client_call(c, "subscribe", args, timeout_ms, &reply)) < 0)
		goto out;
	if (ctl_reply_error(reply)) {
		log_debug("ctl: subscription refused: %s", ctl_reply_error(reply));
		r = -EINVAL;
	}
out:
	json_decref(args);
	json_decref(reply);
	return r;
}

int ctl_client_next_event(struct ctl_client *c, int timeout_ms, json_t **ret_event)
{
	int64_t deadline = deadline_of(timeout_ms);
	json_t *o = NULL;
	int r;

	if (c == NULL || ret_event == NULL)
		return -EINVAL;
	if (json_array_size(c->events) > 0) {
		*ret_event = json_incref(json_array_get(c->events, 0));
		json_array_remove(c->events, 0);
		return 0;
	}
	if (c->error < 0)
		return c->error;
	/* Replies nobody waits for any more are skipped. */
	while ((r = client_next_object(c, deadline, &o)) == 0 && !is_event(o)) {
		json_decref(o);
		o = NULL;
	}
	if (r == 0)
		*ret_event = o;
	return r;
}

/* ---- asynchronous subscription ---- */

struct ctl_watch {
	char *path;
	char *request; /* the subscribe line */
	size_t request_len;
	uint64_t retry_usec;
	ctl_event_fn fn;
	void *userdata;
	sd_event *e;
	sd_event_source *io, *timer;
	int fd;
	struct ctl_in in;
	struct ctl_out out;
	bool connecting; /* connect() still in progress */
	bool subscribed; /* the server accepted the subscription */
	json_t *status_id; /* the id of our status request after subscribing */
};

/* Close the connection, tell fn if a subscription was lost, and try again in retry_usec. */
static void watch_reset(struct ctl_watch *w)
{
	bool was = w->subscribed;
	json_t *ev;

	w->io = sd_event_source_disable_unref(w->io);
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
	w->in.start = w->in.scan = w->in.len = 0;
	w->out.start = w->out.len = 0;
	w->connecting = w->subscribed = false;
	if (sd_event_source_set_time_relative(w->timer, w->retry_usec) < 0 ||
	    sd_event_source_set_enabled(w->timer, SD_EVENT_ONESHOT) < 0)
		log_debug("ctl: cannot arm the retry timer for %s", w->path);
	if (was && (ev = json_pack("{s:s}", "event", "disconnected")) != NULL) {
		w->fn(ev, w->userdata);
		json_decref(ev);
	}
}

static void watch_line(struct ctl_watch *w, const char *line, size_t len)
{
	json_t *o = json_loadb(line, len, JSON_REJECT_DUPLICATES, NULL);

	if (is_event(o)) {
		w->fn(o, w->userdata);
	} else if (json_is_true(json_object_get(o, "ok")) &&
		   json_equal(json_object_get(o, "id"), w->status_id)) {
		/* The daemon's state when we (re)connected, for a watcher that missed the event
		 * that set it: delivered as a "status" event. */
		json_object_del(o, "ok");
		json_object_del(o, "id");
		json_object_set_new(o, "event", json_string("status"));
		w->fn(o, w->userdata);
	} else if (json_is_true(json_object_get(o, "ok"))) {
		w->subscribed = true;
	}
	else
		log_debug("ctl: %s: ignoring a line that is not an event (%s)", w->path,
			  json_is_object(o) ? ctl_reply_error(o) : "not an object");
	json_decref(o);
}

static int on_watch_io(sd_event_source *src, int fd, uint32_t revents, void *userdata)
{
	struct ctl_watch *w = userdata;
	socklen_t len = sizeof(int);
	const char *line;
	size_t n;
	int r = 0, err = 0;

	(void)src;
	if (w->connecting) {
		if (!(revents & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return 0;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0)
			r = -ECONNREFUSED;
		w->connecting = false;
	}
	if (r == 0 && out_pending(&w->out) > 0 && (revents & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
		r = out_flush(&w->out, fd);
	if (r == 0 && (revents & (EPOLLIN | EPOLLERR | EPOLLHUP))) {
		r = in_read(&w->in, fd);
		if (r == 0)
			r = -ECONNRESET;
		if (r == -EAGAIN || r == -EINTR || r > 0)
			r = 0;
		/* fn must not free the watch: see ctl_watch_new(). */
		while (r == 0 && in_line(&w->in, &line, &n))
			watch_line(w, line, n);
		if (r == 0 && in_overflow(&w->in))
			r = -EBADMSG;
	}
	if (r == 0)
		r = sd_event_source_set_io_events(w->io,
						  EPOLLIN | (out_pending(&w->out) ? EPOLLOUT : 0));
	if (r < 0) {
		log_debug("ctl: %s: %s", w->path, iotsec_strerror(r));
		watch_reset(w);
	}
	return 0;
}

/* Try to connect; connect() on a Unix socket does not block. */
static int on_watch_timer(sd_event_source *src, uint64_t usec, void *userdata)
{
	struct ctl_watch *w = userdata;
	struct sockaddr_un sa;
	socklen_t salen;
	int r;

	(void)src, (void)usec;
	if ((r = sockaddr_make(w->path, &sa, &salen)) < 0)
		goto out;
	if ((w->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0) {
		r = -errno;
		goto out;
	}
	if (connect(w->fd, (struct sockaddr *)&sa, salen) < 0) {
		if (errno != EINPROGRESS) {
			r = -errno;
			goto out;
		}
		w->connecting = true;
	}
	if ((r = out_add(&w->out, w->request, w->request_len)) < 0 ||
	    (r = sd_event_add_io(w->e, &w->io, w->fd, EPOLLIN | EPOLLOUT, on_watch_io, w)) < 0)
		goto out;
out:
	if (r < 0)
		watch_reset(w);
	return 0;
}

/* The first attempt runs from the loop, so ctl_watch_new() never blocks nor calls fn. fn must
 * not free the watch. */
int ctl_watch_new(sd_event *e, const char *path, const char *const *events, int retry_ms,
		  ctl_event_fn fn, void *userdata, struct ctl_watch **ret)
{
	struct ctl_watch *w = NULL;
	struct sockaddr_un sa;
	json_t *args = NULL, *sub = NULL, *status = NULL;
	char *status_line = NULL, *grown;
	size_t status_len;
	socklen_t salen;
	int r;

	if (e == NULL || path == NULL || retry_ms <= 0 || fn == NULL || ret == NULL)
		return -EINVAL;
	if ((r = sockaddr_make(path, &sa, &salen)) < 0 || (r = events_args(events, &args)) < 0)
		return r;
	if ((w = calloc(1, sizeof(*w))) == NULL) {
		r = -ENOMEM;
		goto out;
	}
	w->fd = -1;
	w->retry_usec = (uint64_t)retry_ms * 1000;
	w->fn = fn;
	w->userdata = userdata;
	w->e = sd_event_ref(e);
	r = -ENOMEM;
	if ((w->path = strdup(path)) == NULL || in_init(&w->in) < 0 ||
	    (sub = json_pack("{s:i, s:s}", "v", CTL_PROTO_VERSION, "verb", "subscribe")) == NULL ||
	    json_object_update(sub, args) < 0)
		goto out;
	/* Subscribe, then ask for the status on the same connection: events after the status reply
	 * are news to us, so nothing falls between the two. */
	if ((w->status_id = json_string("watch-status")) == NULL ||
	    (status = json_pack("{s:i, s:s, s:O}", "v", CTL_PROTO_VERSION, "verb", "status", "id",
				w->status_id)) == NULL)
		goto out;
	if ((r = line_dump(sub, &w->request, &w->request_len)) < 0 ||
	    (r = line_dump(status, &status_line, &status_len)) < 0)
		goto out;
	r = -ENOMEM;
	if ((grown = realloc(w->request, w->request_len + status_len + 1)) == NULL)
		goto out;
	memcpy(grown + w->request_len, status_line, status_len + 1);
	w->request = grown;
	w->request_len += status_len;
	if (
	    (r = sd_event_add_time_relative(e, &w->timer, CLOCK_MONOTONIC, 0, CTL_TIMER_ACCURACY,
					    on_watch_timer, w)) < 0)
		goto out;
	*ret = w;
	w = NULL;
	r = 0;
out:
	free(status_line);
	json_decref(status);
	json_decref(args);
	json_decref(sub);
	ctl_watch_free(w);
	return r;
}

void ctl_watch_free(struct ctl_watch *w)
{
	if (w == NULL)
		return;
	sd_event_source_disable_unref(w->io);
	sd_event_source_disable_unref(w->timer);
	if (w->fd >= 0)
		close(w->fd);
	sd_event_unref(w->e);
	free(w->in.buf);
	free(w->out.buf);
	free(w->request);
	free(w->path);
	json_decref(w->status_id);
	free(w);
}
