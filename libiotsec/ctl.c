/* ctl: the control socket (protocol in ctl.h), its server side. The server lives on the daemon's
 * sd-event loop and never blocks it. The blocking client and ctl_watch are in ctl_client.c. */
#include "ctl.h"

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "crypto.h"
#include "ctl_internal.h"
#include "log.h"

#define CTL_QUEUE_MAX	      (256 * 1024) /* unsent bytes before a connection is dropped */
#define CTL_ACCEPT_RETRY_USEC 1000000	   /* pause after accept() ran out of descriptors */

/* ---- buffers shared by the server, the client and the watch (ctl_internal.h) ---- */

int ctl_in_init(struct ctl_in *in)
{
	in->start = in->scan = in->len = in->high = 0;
	in->buf = malloc(CTL_LINE_MAX);
	return in->buf ? 0 : -ENOMEM;
}

int ctl_in_read(struct ctl_in *in, int fd)
{
	ssize_t n;

	if (in->start > 0) {
		/* What moves down leaves its old place; lines carry dictd's keys: wipe the tail. */
		memmove(in->buf, in->buf + in->start, in->len - in->start);
		crypto_wipe(in->buf + in->len - in->start, in->start);
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
	if (in->len > in->high)
		in->high = in->len;
	return (int)n;
}

void ctl_in_free(struct ctl_in *in)
{
	/* Not the whole buffer: its untouched pages need no wiping, nor to be brought in. */
	ctl_wipe_free(in->buf, in->high);
	in->buf = NULL;
}

bool ctl_in_line(struct ctl_in *in, const char **ret, size_t *ret_len)
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

/* After ctl_in_line() said no: the buffer is full of a line that has no end. */
bool ctl_in_overflow(const struct ctl_in *in)
{
	return in->len - in->start == CTL_LINE_MAX;
}

size_t ctl_out_pending(const struct ctl_out *o)
{
	return o->len - o->start;
}

int ctl_out_add(struct ctl_out *o, const char *p, size_t n)
{
	size_t cap;
	char *buf;

	if (o->start > 0) {
		memmove(o->buf, o->buf + o->start, o->len - o->start);
		crypto_wipe(o->buf + o->len - o->start, o->start);
		o->len -= o->start;
		o->start = 0;
	}
	if (o->len + n > o->cap) {
		cap = o->cap ? o->cap : 4096;
		while (cap < o->len + n)
			cap *= 2;
		/* Not realloc(): the old block may hold a key on its way to a peer. */
		if ((buf = malloc(cap)) == NULL)
			return -ENOMEM;
		if (o->len > 0)
			memcpy(buf, o->buf, o->len);
		ctl_wipe_free(o->buf, o->cap);
		o->buf = buf;
		o->cap = cap;
	}
	memcpy(o->buf + o->len, p, n);
	o->len += n;
	return 0;
}

int ctl_out_flush(struct ctl_out *o, int fd)
{
	ssize_t n;

	while (ctl_out_pending(o) > 0) {
		n = send(fd, o->buf + o->start, ctl_out_pending(o), MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN ? 0 : -errno;
		o->start += (size_t)n;
	}
	/* Sent lines may have carried keys. */
	crypto_wipe(o->buf, o->len);
	o->start = o->len = 0;
	/* A burst for a slow subscriber should not pin its memory for the connection's life. */
	if (o->cap > CTL_QUEUE_SOFT) {
		ctl_wipe_free(o->buf, o->cap);
		o->buf = NULL;
		o->cap = 0;
	}
	return 0;
}

void ctl_wipe_free(void *p, size_t len)
{
	if (p != NULL)
		crypto_wipe(p, len);
	free(p);
}

int ctl_line_dump(const json_t *o, char **ret, size_t *ret_len)
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
	if ((line = malloc(len + 2)) == NULL)
		goto out;
	memcpy(line, s, len);
	line[len] = '\n';
	line[len + 1] = '\0';
	*ret = line;
	*ret_len = len + 1;
	r = 0;
out:
	if (s)
		ctl_wipe_free(s, strlen(s));
	return r;
}

int ctl_sockaddr_make(const char *path, struct sockaddr_un *sa, socklen_t *ret_len)
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
	unsigned may; /* enum ctl_may: what this peer may do, decided at accept */
	struct ctl_in in;
	struct ctl_out out;
	json_t *events; /* the subscription's names; NULL when not subscribed */
	bool all_events;
	bool eof;     /* the peer will send nothing more */
	bool closing; /* close once the output is sent */
	bool doomed;  /* dropped while its own request was running: freed when that returns */
};

/* Users and groups a socket lets in besides root and its own user (ctl_server_allow). */
struct ctl_ids {
	uid_t *uids;
	gid_t *gids;
	size_t n_uids, n_gids;
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
	unsigned n_conns, n_unprivileged;
	struct ctl_conn *dispatching;
	struct ctl_ids allowed[2]; /* [0]: readers, [1]: clients (ctl_server_allow) */
};

/* Root and the daemon's own user: they may change state, and some slots are kept for them. */
static bool cred_privileged(const struct ucred *cred)
{
	return cred->uid == 0 || cred->uid == geteuid();
}

/* Does the peer on fd (cred) belong to ids: its user, its primary group or, asked only when the
 * list has groups, one of its supplementary groups? */
static bool ids_match(const struct ctl_ids *ids, int fd, const struct ucred *cred)
{
	gid_t few[64], *groups = few;
	socklen_t len = sizeof(few);
	size_t i, j, n;
	bool match = false;
	int r;

	for (i = 0; i < ids->n_uids; i++)
		if (ids->uids[i] == cred->uid)
			return true;
	if (ids->n_gids == 0)
		return false;
	/* Most users have a few groups; for more the kernel says how many bytes they need. */
	r = getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len);
	if (r < 0 && errno == ERANGE && (groups = malloc(len)) != NULL)
		r = getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len);
	/* Unknown groups give fewer rights, never more: the primary group still counts. */
	n = r == 0 ? len / sizeof(gid_t) : 0;
	for (i = 0; i < ids->n_gids && !match; i++) {
		match = ids->gids[i] == cred->gid;
		for (j = 0; j < n && !match; j++)
			match = ids->gids[i] == groups[j];
	}
	if (groups != few)
		free(groups);
	return match;
}

static unsigned peer_may(const struct ctl_server *s, int fd, const struct ucred *cred)
{
	unsigned may = 0;

	if (cred->uid == geteuid())
		return CTL_MAY_READ | CTL_MAY_CHANGE | CTL_MAY_CLIENT;
	if (cred->uid == 0)
		may |= CTL_MAY_READ | CTL_MAY_CHANGE;
	if (ids_match(&s->allowed[1], fd, cred))
		may |= CTL_MAY_READ | CTL_MAY_CLIENT;
	if (!(may & CTL_MAY_READ) && ids_match(&s->allowed[0], fd, cred))
		may |= CTL_MAY_READ;
	return may;
}

/* How many connections the user uid holds. */
static unsigned conns_of(const struct ctl_server *s, uid_t uid)
{
	unsigned n = 0;

	for (const struct ctl_conn *c = s->conns; c; c = c->next)
		n += c->cred.uid == uid;
	return n;
}

static void ids_free(struct ctl_ids *ids)
{
	free(ids->uids);
	free(ids->gids);
	*ids = (struct ctl_ids){0};
}

/* One word of an allow-list: "name", "@group", "1001" or "@1002". 0 and the id; -ENOENT when
 * no such user or group is known here; -EINVAL when the word cannot name one. */
static int id_lookup(const char *word, bool *is_group, unsigned *id)
{
	const char *name = word + (word[0] == '@');
	struct passwd pw, *pwr = NULL;
	struct group gr, *grr = NULL;
	char *buf = NULL, *end;
	size_t size = 4096;
	unsigned long n;
	int r;

	*is_group = word[0] == '@';
	if (name[0] == '\0' || strlen(name) > 32)
		return -EINVAL;
	errno = 0;
	n = strtoul(name, &end, 10);
	if (*end == '\0' && name[0] >= '0' && name[0] <= '9') {
		if (errno != 0 || n >= (unsigned long)UINT32_MAX)
			return -EINVAL;
		*id = (unsigned)n;
		return 0;
	}
	/* A group of many members needs more room than most: grow until it fits (ERANGE). */
	do {
		char *more = realloc(buf, size);

		if (more == NULL) {
			r = ENOMEM;
			break;
		}
		buf = more;
		r = *is_group ? getgrnam_r(name, &gr, buf, size, &grr)
			      : getpwnam_r(name, &pw, buf, size, &pwr);
		size *= 2;
	} while (r == ERANGE && size <= (1u << 20));
	if (r == 0 && (grr || pwr))
		*id = grr ? grr->gr_gid : pwr->pw_uid;
	free(buf);
	/* Not found is said and skipped by the caller; a failing lookup is an error. */
	return r != 0 ? -r : grr || pwr ? 0 : -ENOENT;
}

int ctl_server_allow(struct ctl_server *s, enum ctl_may may, const char *list, char *missing,
		     size_t missing_len)
{
	struct ctl_ids ids = {0};
	char *copy, *word, *save = NULL;
	size_t words = 1;
	unsigned id = 0;
	bool group;
	int r = 0;

	if (s == NULL || list == NULL || (may != CTL_MAY_READ && may != CTL_MAY_CLIENT))
		return -EINVAL;
	if (missing && missing_len > 0)
		missing[0] = '\0';
	for (const char *p = list; *p; p++)
		words += *p == ' ';
	if ((copy = strdup(list)) == NULL || (ids.uids = calloc(words, sizeof(uid_t))) == NULL ||
	    (ids.gids = calloc(words, sizeof(gid_t))) == NULL) {
		r = -ENOMEM;
		goto out;
	}
	for (word = strtok_r(copy, " ", &save); word; word = strtok_r(NULL, " ", &save)) {
		int q = id_lookup(word, &group, &id);

		if (q == -ENOENT && missing && missing_len > 0) {
			size_t used = strlen(missing);

			/* Said, not refused: a group the package has not made yet must not keep
			 * the daemons from starting. */
			snprintf(missing + used, missing_len - used, "%s%s", used ? " " : "", word);
			continue;
		}
		if (q == -ENOENT)
			continue;
		if (q < 0) {
			r = q;
			goto out;
		}
		if (group)
			ids.gids[ids.n_gids++] = id;
		else
			ids.uids[ids.n_uids++] = id;
	}
	ids_free(&s->allowed[may == CTL_MAY_CLIENT]);
	s->allowed[may == CTL_MAY_CLIENT] = ids;
	ids = (struct ctl_ids){0};
out:
	ids_free(&ids);
	free(copy);
	return r;
}

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
	c->s->n_unprivileged -= !cred_privileged(&c->cred);
	sd_event_source_disable_unref(c->io);
	close(c->fd);
	ctl_in_free(&c->in);
	ctl_wipe_free(c->out.buf, c->out.cap);
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
	return !c->eof && !c->closing && !c->doomed && ctl_out_pending(&c->out) < CTL_QUEUE_SOFT;
}

static int conn_set_events(struct ctl_conn *c)
{
	uint32_t mask = 0;

	if (conn_reading(c))
		mask |= EPOLLIN;
	if (ctl_out_pending(&c->out) > 0)
		mask |= EPOLLOUT;
	return sd_event_source_set_io_events(c->io, mask);
}

/* Queue one line; a peer already CTL_QUEUE_MAX behind is dropped instead. */
static int conn_queue(struct ctl_conn *c, const char *line, size_t len)
{
	int r;

	if (c->doomed)
		return -ECONNRESET;
	if (ctl_out_pending(&c->out) + len > CTL_QUEUE_MAX) {
		log_debug("ctl: dropping pid %d, %zu bytes behind", (int)c->cred.pid,
			  ctl_out_pending(&c->out));
		r = -ENOBUFS;
	} else if ((r = ctl_out_add(&c->out, line, len)) == 0 &&
		   (r = ctl_out_flush(&c->out, c->fd)) == 0) {
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

	r = ctl_line_dump(reply, &line, &len);
	if (r == -EMSGSIZE && (small = refusal_new(request, iotsec_strerror(r))) != NULL)
		r = ctl_line_dump(small, &line, &len);
	if (r < 0)
		conn_drop(c);
	else
		conn_queue(c, line, len);
	if (line)
		ctl_wipe_free(line, len);
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
	char unknown[96], detail[256];
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
	if (((v->flags & CTL_MUTATES) && !(c->may & CTL_MAY_CHANGE)) ||
	    ((v->flags & CTL_KEYS) && !(c->may & CTL_MAY_CLIENT)) ||
	    ((v->flags & CTL_CONTROLS) && !(c->may & (CTL_MAY_CHANGE | CTL_MAY_CLIENT)))) {
		reply = refusal_new(req, "permission denied");
		goto send;
	}
	r = v->fn(req, &fields, c->s->userdata);
	if (r >= 0 && fields && !json_is_object(fields))
		r = -EINVAL; /* a handler bug, but the peer still deserves an answer */
	why = json_string_value(json_object_get(fields, "error"));
	if (r < 0 && why) {
		/* What exactly was wrong, after the code: "Invalid argument: ...". */
		snprintf(detail, sizeof(detail), "%s: %s", iotsec_strerror(r), why);
		reply = refusal_new(req, detail);
	} else {
		reply = r < 0 ? refusal_new(req, iotsec_strerror(r)) : success_new(req, fields);
	}
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
	while (!c->doomed && !c->closing && ctl_out_pending(&c->out) < CTL_QUEUE_SOFT) {
		if (!ctl_in_line(&c->in, &line, &len)) {
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
	if (drained && !c->closing && ctl_in_overflow(&c->in)) {
		c->closing = true;
		c->in.start = c->in.scan = c->in.len = 0;
		if (conn_queue(c, too_long, sizeof(too_long) - 1) < 0)
			return;
	}
	if (drained && c->eof)
		c->closing = true;
	if ((c->closing && ctl_out_pending(&c->out) == 0) || conn_set_events(c) < 0)
		conn_free(c);
}

static int on_conn_io(sd_event_source *src, int fd, uint32_t revents, void *userdata)
{
	struct ctl_conn *c = userdata;
	int r = 0;

	(void)src;
	if (ctl_out_pending(&c->out) > 0 && (revents & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
		r = ctl_out_flush(&c->out, fd);
	if (r == 0 && conn_reading(c) && (revents & (EPOLLIN | EPOLLERR | EPOLLHUP))) {
		r = ctl_in_read(&c->in, fd);
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

static int conn_new(struct ctl_server *s, int fd, const struct ucred *cred, unsigned may)
{
	struct ctl_conn *c = calloc(1, sizeof(*c));
	int r = -ENOMEM;

	if (c == NULL || ctl_in_init(&c->in) < 0)
		goto out;
	c->cred = *cred;
	c->may = may;
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
	s->n_unprivileged += !cred_privileged(cred);
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
	struct ucred cred;
	char denied[160];
	socklen_t len;
	unsigned may;
	int cfd, n;

	(void)revents;
	for (;;) {
		len = sizeof(cred);
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
		if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
			close(cfd);
			continue;
		}
		/* Refused at once, saying why: a stranger holds no slot, and its user learns
		 * which setting lets it in. */
		if ((may = peer_may(s, cfd, &cred)) == 0) {
			n = snprintf(denied, sizeof(denied),
				     "{\"v\":1,\"ok\":false,\"error\":\"permission denied: uid %u "
				     "is not among this socket's users (control.readers)\"}\n",
				     (unsigned)cred.uid);
			(void)send(cfd, denied, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
			close(cfd);
			continue;
		}
		/* Readers may hold all but a few slots, which are kept for root and our own user,
		 * and each of them only a few: the other daemons are readers too, so one reader's
		 * idle connections must not lock them out of each other. */
		if (s->n_conns >= CTL_MAX_CLIENTS ||
		    (!cred_privileged(&cred) &&
		     (s->n_unprivileged >= CTL_MAX_CLIENTS - CTL_PRIVILEGED_SLOTS ||
		      conns_of(s, cred.uid) >= CTL_USER_SLOTS))) {
			/* Best effort, so iotsecctl can say why rather than "connection reset". */
			(void)send(cfd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
			close(cfd);
		} else if (conn_new(s, cfd, &cred, may) < 0) {
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
	if ((r = ctl_sockaddr_make(path, &sa, &salen)) < 0)
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
	ids_free(&s->allowed[0]);
	ids_free(&s->allowed[1]);
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
	    (data && (!json_is_object(data) || json_object_get(data, "ok") ||
		      json_object_get(data, "id"))) ||
	    (name = json_string(event)) == NULL)
		return -EINVAL;
	r = -ENOMEM;
	if ((o = json_pack("{s:i, s:o}", "v", CTL_PROTO_VERSION, "event", name)) == NULL ||
	    (data && json_object_update_missing(o, data) < 0))
		goto out;
	if ((r = ctl_line_dump(o, &line, &len)) < 0)
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
