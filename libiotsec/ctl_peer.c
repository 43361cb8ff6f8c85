/* ctl: the asynchronous peer of daemons (ctl.h): one connection to another daemon's control
 * socket on the caller's sd-event loop, carrying calls and one subscription, reconnected while
 * that daemon is away. Nothing here blocks: a call's answer, its timeout and a lost connection
 * all come back through the loop. */
#include "ctl.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ctl_internal.h"
#include "log.h"

struct ctl_call {
	struct ctl_peer *p;
	struct ctl_call *prev, *next;
	json_int_t id;
	ctl_reply_fn fn;
	void *userdata;
	sd_event_source *timer;
};

struct ctl_peer {
	char *path;
	uint64_t retry_usec;
	sd_event *e;
	sd_event_source *io, *retry;
	int fd;
	struct ctl_in in;
	struct ctl_out out;
	bool connecting; /* connect() still in progress */
	bool subscribed; /* the server accepted the subscription */
	bool warned;	 /* a refused subscription was logged: once per peer is enough */
	bool closing;	 /* ctl_peer_free() is ending the calls: no new ones */
	/* The subscription, when there is one: its two request lines and their ids. */
	char *hello;
	size_t hello_len;
	json_t *subscribe_id, *status_id;
	ctl_event_fn on_event;
	void *userdata;
	struct ctl_call *calls; /* waiting for a reply, oldest last */
	json_int_t serial;
};

static void call_unlink(struct ctl_call *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		c->p->calls = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
}

/* Tell the caller how the call ended, then forget it. */
static void call_end(struct ctl_call *c, int r, json_t *reply)
{
	call_unlink(c);
	sd_event_source_disable_unref(c->timer);
	c->fn(r, reply, c->userdata);
	free(c);
}

void ctl_call_cancel(struct ctl_call *c)
{
	if (c != NULL)
		call_end(c, -ECANCELED, NULL);
}

/* End every waiting call with r, one at a time from the head: a callback may cancel another
 * waiting call, or place a new one (which fails while the connection is down). */
static void calls_fail(struct ctl_peer *p, int r)
{
	while (p->calls)
		call_end(p->calls, r, NULL);
}

static void emit(struct ctl_peer *p, json_t *ev)
{
	if (p->on_event)
		p->on_event(ev, p->userdata);
}

/* Close the connection, fail the calls, tell the subscriber, and try again in retry_usec. */
static void peer_reset(struct ctl_peer *p)
{
	bool was = p->subscribed;
	json_t *ev;

	p->io = sd_event_source_disable_unref(p->io);
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
	p->in.start = p->in.scan = p->in.len = 0;
	p->out.start = p->out.len = 0;
	p->connecting = p->subscribed = false;
	if (sd_event_source_set_time_relative(p->retry, p->retry_usec) < 0 ||
	    sd_event_source_set_enabled(p->retry, SD_EVENT_ONESHOT) < 0)
		log_debug("ctl: cannot arm the retry timer for %s", p->path);
	calls_fail(p, -ECONNRESET);
	if (was && (ev = json_pack("{s:s}", "event", "disconnected")) != NULL) {
		emit(p, ev);
		json_decref(ev);
	}
}

static struct ctl_call *call_find(struct ctl_peer *p, const json_t *id)
{
	if (!json_is_integer(id))
		return NULL;
	for (struct ctl_call *c = p->calls; c; c = c->next)
		if (c->id == json_integer_value(id))
			return c;
	return NULL;
}

/* One line from the daemon: an event, a call's reply, or the reply to our subscription or its
 * status request. -EPROTO when the subscription is refused: then we start again later. */
static int peer_line(struct ctl_peer *p, const char *line, size_t len)
{
	json_t *o = json_loadb(line, len, JSON_REJECT_DUPLICATES, NULL), *id;
	bool ok = json_is_true(json_object_get(o, "ok"));
	struct ctl_call *c;
	int r = 0;

	id = json_object_get(o, "id");
	if (ctl_is_event(o) && p->subscribed) {
		emit(p, o);
	} else if ((c = call_find(p, id)) != NULL) {
		call_end(c, ok ? 0 : -EPROTO, o);
	} else if (p->subscribe_id && json_equal(id, p->subscribe_id) && ok) {
		p->subscribed = true;
	} else if (p->subscribe_id && json_equal(id, p->subscribe_id)) {
		if (!p->warned)
			log_warnx("ctl: %s refused our subscription: %s; retrying", p->path,
				  ctl_reply_error(o));
		p->warned = true;
		r = -EPROTO;
	} else if (p->status_id && json_equal(id, p->status_id) && ok && p->subscribed) {
		/* The daemon's state when we (re)connected, for a subscriber that missed the event
		 * that set it: delivered as a "status" event. */
		json_object_del(o, "ok");
		json_object_del(o, "id");
		json_object_set_new(o, "event", json_string("status"));
		emit(p, o);
	} else {
		/* A late reply to a call that timed out, or a refusal of a line without an id. */
		log_debug("ctl: %s: ignoring a line nobody waits for (%s)", p->path,
			  json_is_object(o) ? ctl_reply_error(o) : "not an object");
	}
	json_decref(o);
	return r;
}

static int peer_set_events(struct ctl_peer *p)
{
	return sd_event_source_set_io_events(
	    p->io, EPOLLIN | (ctl_out_pending(&p->out) || p->connecting ? EPOLLOUT : 0));
}

static int on_peer_io(sd_event_source *src, int fd, uint32_t revents, void *userdata)
{
	struct ctl_peer *p = userdata;
	socklen_t len = sizeof(int);
	const char *line;
	size_t n;
	int r = 0, err = 0;

	(void)src;
	if (p->connecting) {
		if (!(revents & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return 0;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0)
			r = -ECONNREFUSED;
		p->connecting = false;
	}
	if (r == 0 && ctl_out_pending(&p->out) > 0 && (revents & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
		r = ctl_out_flush(&p->out, fd);
	if (r == 0 && (revents & (EPOLLIN | EPOLLERR | EPOLLHUP))) {
		r = ctl_in_read(&p->in, fd);
		if (r == 0)
			r = -ECONNRESET;
		if (r == -EAGAIN || r == -EINTR || r > 0)
			r = 0;
		/* Callbacks must not free the peer: see ctl_peer_new(). They may reset it (a call
		 * made from one cannot), so stop once the connection is gone. */
		while (r == 0 && p->fd == fd && ctl_in_line(&p->in, &line, &n))
			r = peer_line(p, line, n);
		if (r == 0 && p->fd == fd && ctl_in_overflow(&p->in))
			r = -EBADMSG;
	}
	if (p->fd != fd)
		return 0;
	if (r == 0)
		r = peer_set_events(p);
	if (r < 0) {
		log_debug("ctl: %s: %s", p->path, iotsec_strerror(r));
		peer_reset(p);
	}
	return 0;
}

/* Try to connect; connect() on a Unix socket does not block. */
static int on_peer_retry(sd_event_source *src, uint64_t usec, void *userdata)
{
	struct ctl_peer *p = userdata;
	struct sockaddr_un sa;
	socklen_t salen;
	int r;

	(void)src, (void)usec;
	if ((r = ctl_sockaddr_make(p->path, &sa, &salen)) < 0)
		goto out;
	if ((p->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0) {
		r = -errno;
		goto out;
	}
	if (connect(p->fd, (struct sockaddr *)&sa, salen) < 0) {
		if (errno != EINPROGRESS) {
			r = -errno;
			goto out;
		}
		p->connecting = true;
	}
	if ((p->hello && (r = ctl_out_add(&p->out, p->hello, p->hello_len)) < 0) ||
	    (r = sd_event_add_io(p->e, &p->io, p->fd, EPOLLIN | EPOLLOUT, on_peer_io, p)) < 0)
		goto out;
out:
	if (r < 0)
		peer_reset(p);
	return 0;
}

/* The subscription's two requests: subscribe, then status on the same connection, so events
 * after the status reply are news and nothing falls between the two. */
static int peer_hello(struct ctl_peer *p, const char *const *events)
{
	json_t *args = NULL, *sub = NULL, *status = NULL;
	char *sub_line = NULL, *status_line = NULL;
	size_t sub_len, status_len;
	int r;

	if ((r = ctl_events_args(events, &args)) < 0)
		return r;
	r = -ENOMEM;
	if ((p->subscribe_id = json_string("peer-subscribe")) == NULL ||
	    (p->status_id = json_string("peer-status")) == NULL ||
	    (sub = json_pack("{s:i, s:s, s:O}", "v", CTL_PROTO_VERSION, "verb", "subscribe", "id",
			     p->subscribe_id)) == NULL ||
	    json_object_update(sub, args) < 0 ||
	    (status = json_pack("{s:i, s:s, s:O}", "v", CTL_PROTO_VERSION, "verb", "status", "id",
				p->status_id)) == NULL)
		goto out;
	if ((r = ctl_line_dump(sub, &sub_line, &sub_len)) < 0 ||
	    (r = ctl_line_dump(status, &status_line, &status_len)) < 0)
		goto out;
	r = -ENOMEM;
	if ((p->hello = malloc(sub_len + status_len + 1)) == NULL)
		goto out;
	memcpy(p->hello, sub_line, sub_len);
	memcpy(p->hello + sub_len, status_line, status_len + 1);
	p->hello_len = sub_len + status_len;
	r = 0;
out:
	free(sub_line);
	free(status_line);
	json_decref(args);
	json_decref(sub);
	json_decref(status);
	return r;
}

int ctl_peer_new(sd_event *e, const char *path, int retry_ms, const char *const *events,
		 ctl_event_fn fn, void *userdata, struct ctl_peer **ret)
{
	struct ctl_peer *p = NULL;
	struct sockaddr_un sa;
	socklen_t salen;
	int r;

	if (e == NULL || path == NULL || retry_ms <= 0 || ret == NULL || (events && fn == NULL))
		return -EINVAL;
	if ((r = ctl_sockaddr_make(path, &sa, &salen)) < 0)
		return r;
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return -ENOMEM;
	p->fd = -1;
	p->retry_usec = (uint64_t)retry_ms * 1000;
	p->on_event = fn;
	p->userdata = userdata;
	p->e = sd_event_ref(e);
	r = -ENOMEM;
	if ((p->path = strdup(path)) == NULL || ctl_in_init(&p->in) < 0)
		goto out;
	if (events && (r = peer_hello(p, events)) < 0)
		goto out;
	/* The first attempt runs from the loop, so ctl_peer_new() never calls back. */
	if ((r = sd_event_add_time_relative(e, &p->retry, CLOCK_MONOTONIC, 0, CTL_TIMER_ACCURACY,
					    on_peer_retry, p)) < 0)
		goto out;
	*ret = p;
	p = NULL;
	r = 0;
out:
	ctl_peer_free(p);
	return r;
}

void ctl_peer_free(struct ctl_peer *p)
{
	if (p == NULL)
		return;
	p->closing = true;
	calls_fail(p, -ECANCELED);
	sd_event_source_disable_unref(p->io);
	sd_event_source_disable_unref(p->retry);
	if (p->fd >= 0)
		close(p->fd);
	sd_event_unref(p->e);
	ctl_in_free(&p->in);
	ctl_wipe_free(p->out.buf, p->out.cap);
	free(p->hello);
	free(p->path);
	json_decref(p->subscribe_id);
	json_decref(p->status_id);
	free(p);
}

bool ctl_peer_connected(const struct ctl_peer *p)
{
	return p->fd >= 0 && !p->connecting;
}

static int on_call_timeout(sd_event_source *src, uint64_t usec, void *userdata)
{
	(void)src, (void)usec;
	call_end(userdata, -ETIMEDOUT, NULL);
	return 0;
}

int ctl_peer_call(struct ctl_peer *p, const char *verb, json_t *args, int timeout_ms,
		  ctl_reply_fn fn, void *userdata, struct ctl_call **ret_call)
{
	struct ctl_call *c = NULL;
	json_t *req = NULL;
	char *line = NULL;
	size_t len = 0;
	int r;

	if (p == NULL || verb == NULL || fn == NULL || timeout_ms <= 0 ||
	    (args && !json_is_object(args)))
		return -EINVAL;
	if (p->fd < 0 || p->closing)
		return -ENOTCONN;
	r = -ENOMEM;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		goto out;
	c->p = p, c->fn = fn, c->userdata = userdata, c->id = p->serial + 1;
	if ((req = json_pack("{s:i, s:s}", "v", CTL_PROTO_VERSION, "verb", verb)) == NULL ||
	    (args && json_object_update_missing(req, args) < 0) ||
	    json_object_set_new(req, "id", json_integer(c->id)) < 0)
		goto out;
	if ((r = ctl_line_dump(req, &line, &len)) < 0 ||
	    (r = sd_event_add_time_relative(p->e, &c->timer, CLOCK_MONOTONIC,
					    (uint64_t)timeout_ms * 1000, CTL_TIMER_ACCURACY,
					    on_call_timeout, c)) < 0 ||
	    (r = ctl_out_add(&p->out, line, len)) < 0)
		goto out;
	p->serial = c->id;
	c->next = p->calls;
	if (p->calls)
		p->calls->prev = c;
	p->calls = c;
	if (ret_call)
		*ret_call = c;
	c = NULL;
	/* Sent at the next turn of the loop, from on_peer_io: never a callback from in here. Should
	 * that fail to be arranged, the call's timeout still ends it. */
	if (peer_set_events(p) < 0)
		log_debug("ctl: %s: cannot wait to send", p->path);
	r = 0;
out:
	if (c)
		sd_event_source_disable_unref(c->timer);
	free(c);
	if (line)
		ctl_wipe_free(line, len); /* a store request carries keys */
	json_decref(req);
	return r;
}
