/* ctl: the control socket (protocol in ctl.h), its blocking client, for tools and tests: it waits
 * with poll() timeouts. Daemons use the asynchronous peer (ctl_peer.c) instead. */
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

int ctl_events_args(const char *const *events, json_t **ret)
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

bool ctl_is_event(const json_t *o)
{
	/* A reply has "ok" and may carry any field, "event" too: only a line without it is an
	 * event (ctl_server_publish() never lets an event's data add one). */
	return json_is_string(json_object_get(o, "event")) && !json_object_get(o, "ok");
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
	ctl_in_free(&c->in);
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
		if (ctl_is_event(o)) {
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
	if ((r = ctl_events_args(events, &args)) < 0 ||
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
	while ((r = client_next_object(c, deadline, &o)) == 0 && !ctl_is_event(o)) {
		json_decref(o);
		o = NULL;
	}
	if (r == 0)
		*ret_event = o;
	return r;
}
