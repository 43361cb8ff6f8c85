/* ctl: the control socket (protocol in ctl.h), its client side: the blocking client of tools and
 * tests, which waits with poll() timeouts, and ctl_watch, a subscription that lives on a daemon's
 * sd-event loop and never blocks it. */
#include "ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ctl_internal.h"
#include "log.h"

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
		if (ctl_in_line(&c->in, &line, &len)) {
			o = json_loadb(line, len, JSON_REJECT_DUPLICATES, NULL);
			if (!json_is_object(o)) {
				json_decref(o);
				return -EBADMSG;
			}
			*ret = o;
			return 0;
		}
		if (ctl_in_overflow(&c->in))
			return client_fail(c, -EBADMSG);
		r = ctl_in_read(&c->in, c->fd);
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
	if ((r = ctl_sockaddr_make(path, &sa, &salen)) < 0)
		return r;
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		r = -ENOMEM;
		goto out;
	}
	c->fd = -1;
	if (ctl_in_init(&c->in) < 0 || (c->events = json_array()) == NULL) {
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
	ctl_wipe_free(c->in.buf, CTL_LINE_MAX);
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
	serial = c->serial + 1;
	r = -ENOMEM;
	if ((req = json_pack("{s:i, s:s}", "v", CTL_PROTO_VERSION, "verb", verb)) == NULL ||
	    (args && json_object_update_missing(req, args) < 0) ||
	    json_object_set_new(req, "id", json_integer(serial)) < 0)
		goto out;
	if ((r = ctl_line_dump(req, &line, &len)) < 0)
		goto out;
	c->serial = serial; /* a request refused here uses up no id */
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
	if (line)
		ctl_wipe_free(line, len); /* a store request carries a key */
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
	bool connecting;      /* connect() still in progress */
	bool subscribed;      /* the server accepted the subscription */
	bool warned;	      /* a refusal was logged: once per watch is enough */
	json_t *subscribe_id; /* the ids of our two requests, to tell their replies apart */
	json_t *status_id;
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

/* One line from the daemon: an event, or the reply to our subscribe or status request.
 * -EPROTO when the subscription is refused: then we start again after retry_usec. */
static int watch_line(struct ctl_watch *w, const char *line, size_t len)
{
	json_t *o = json_loadb(line, len, JSON_REJECT_DUPLICATES, NULL), *id;
	bool ok = json_is_true(json_object_get(o, "ok"));
	int r = 0;

	id = json_object_get(o, "id");
	if (is_event(o) && w->subscribed) {
		w->fn(o, w->userdata);
	} else if (json_equal(id, w->subscribe_id) && ok) {
		w->subscribed = true;
	} else if (json_equal(id, w->subscribe_id)) {
		if (!w->warned)
			log_warnx("ctl: %s refused our subscription: %s; retrying", w->path,
				  ctl_reply_error(o));
		w->warned = true;
		r = -EPROTO;
	} else if (json_equal(id, w->status_id) && ok && w->subscribed) {
		/* The daemon's state when we (re)connected, for a watcher that missed the event
		 * that set it: delivered as a "status" event. */
		json_object_del(o, "ok");
		json_object_del(o, "id");
		json_object_set_new(o, "event", json_string("status"));
		w->fn(o, w->userdata);
	} else {
		log_debug("ctl: %s: ignoring a line that is not an event (%s)", w->path,
			  json_is_object(o) ? ctl_reply_error(o) : "not an object");
	}
	json_decref(o);
	return r;
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
	if (r == 0 && ctl_out_pending(&w->out) > 0 && (revents & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
		r = ctl_out_flush(&w->out, fd);
	if (r == 0 && (revents & (EPOLLIN | EPOLLERR | EPOLLHUP))) {
		r = ctl_in_read(&w->in, fd);
		if (r == 0)
			r = -ECONNRESET;
		if (r == -EAGAIN || r == -EINTR || r > 0)
			r = 0;
		/* fn must not free the watch: see ctl_watch_new(). */
		while (r == 0 && ctl_in_line(&w->in, &line, &n))
			r = watch_line(w, line, n);
		if (r == 0 && ctl_in_overflow(&w->in))
			r = -EBADMSG;
	}
	if (r == 0)
		r = sd_event_source_set_io_events(
		    w->io, EPOLLIN | (ctl_out_pending(&w->out) ? EPOLLOUT : 0));
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
	if ((r = ctl_sockaddr_make(w->path, &sa, &salen)) < 0)
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
	if ((r = ctl_out_add(&w->out, w->request, w->request_len)) < 0 ||
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
	if ((r = ctl_sockaddr_make(path, &sa, &salen)) < 0 || (r = events_args(events, &args)) < 0)
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
	if ((w->path = strdup(path)) == NULL || ctl_in_init(&w->in) < 0 ||
	    (w->subscribe_id = json_string("watch-subscribe")) == NULL ||
	    (sub = json_pack("{s:i, s:s, s:O}", "v", CTL_PROTO_VERSION, "verb", "subscribe", "id",
			     w->subscribe_id)) == NULL ||
	    json_object_update(sub, args) < 0)
		goto out;
	/* Subscribe, then ask for the status on the same connection: events after the status reply
	 * are news to us, so nothing falls between the two. */
	if ((w->status_id = json_string("watch-status")) == NULL ||
	    (status = json_pack("{s:i, s:s, s:O}", "v", CTL_PROTO_VERSION, "verb", "status", "id",
				w->status_id)) == NULL)
		goto out;
	if ((r = ctl_line_dump(sub, &w->request, &w->request_len)) < 0 ||
	    (r = ctl_line_dump(status, &status_line, &status_len)) < 0)
		goto out;
	r = -ENOMEM;
	if ((grown = realloc(w->request, w->request_len + status_len + 1)) == NULL)
		goto out;
	memcpy(grown + w->request_len, status_line, status_len + 1);
	w->request = grown;
	w->request_len += status_len;
	if ((r = sd_event_add_time_relative(e, &w->timer, CLOCK_MONOTONIC, 0, CTL_TIMER_ACCURACY,
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
	ctl_wipe_free(w->in.buf, CTL_LINE_MAX);
	ctl_wipe_free(w->out.buf, w->out.cap);
	free(w->request);
	free(w->path);
	json_decref(w->subscribe_id);
	json_decref(w->status_id);
	free(w);
}
