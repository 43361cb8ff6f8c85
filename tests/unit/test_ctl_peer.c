/* ctl_peer (ctl_peer.c): the asynchronous peer of daemons, on a real sd-event loop, against a
 * daemon this test plays itself over real Unix sockets (ctl_peer.h) and answers between turns of
 * the loop. The subscription: status first, events, hang-ups, refusals, overlong lines, absent
 * daemons. The calls: replies, refusals, timeouts, ids, lost connections, cancellation, calls
 * placed from callbacks. Every wait is bounded. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "ctl.h"
#include "ctl_internal.h"

#include "ctl_peer.h"

#define RETRY_MS 50 /* the peer's reconnection interval here */

/* ---- what the callbacks saw ---- */

/* fn of the subscriptions here: keep every event (borrowed, so referenced) in the array userdata.
 */
static void on_event(json_t *ev, void *userdata)
{
	json_array_append(userdata, ev);
}

/* fn of the calls here: note each outcome as {"r":r, "reply":reply or null} in the array
 * userdata. */
static void on_reply(int r, json_t *reply, void *userdata)
{
	json_array_append_new(userdata, json_pack("{s:i, s:O?}", "r", r, "reply", reply));
}

static const char *dump(const json_t *o)
{
	static char buf[512];
	char *s = o ? json_dumps(o, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;

	snprintf(buf, sizeof(buf), "%s", s ? s : "nothing");
	free(s);
	return buf;
}

/* Turn the loop until got holds n entries in all, and not more. */
static void run_until_n(sd_event *e, json_t *got, size_t n)
{
	loop_until(e, json_array_size(got) >= n);
	assert_int_equal(json_array_size(got), n);
}

static void expect_got(json_t *got, size_t i, json_t *want)
{
	json_t *ev = json_array_get(got, i);

	if (!json_equal(ev, want))
		fail_msg("fn call %zu: got %s", i, dump(ev));
	json_decref(want);
}

static void expect_status(json_t *got, size_t i, const char *state)
{
	expect_got(got, i, json_pack("{s:i, s:s, s:s}", "v", 1, "event", "status", "state", state));
}

/* Outcome i of a call is r with reply (consumed; NULL for none). */
static void expect_outcome(json_t *got, size_t i, int r, json_t *reply)
{
	json_t *want = json_pack("{s:i, s:o?}", "r", r, "reply", reply);

	if (!json_equal(json_array_get(got, i), want))
		fail_msg("outcome %zu: got %s, want r %d", i, dump(json_array_get(got, i)), r);
	json_decref(want);
}

/* The peer's next line, sent while e turns, is request number id for verb. */
static void heard(sd_event *e, int fd, const char *verb, json_int_t id)
{
	json_decref(peer_request_on(fd, e, verb, id));
}

/* A reply as the daemon sends it to request number id. */
static json_t *reply_to(json_int_t id, bool ok, json_t *fields)
{
	json_t *o = fields ? fields : json_object();

	json_object_set_new(o, "v", json_integer(CTL_PROTO_VERSION));
	json_object_set_new(o, "ok", json_boolean(ok));
	json_object_set_new(o, "id", json_integer(id));
	return o;
}

/* ---- the daemon's side of a subscription ---- */

/* On a new connection the peer subscribes to events (a JSON array, as text), then asks for the
 * status; the requests are returned to be answered. */
static void sub_requests(sd_event *e, int fd, const char *events, json_t **ret_sub,
			 json_t **ret_status)
{
	json_t *sub = peer_line(fd, e), *status = peer_line(fd, e);
	json_t *want = json_loads(events, 0, NULL);

	assert_int_equal(json_integer_value(json_object_get(sub, "v")), CTL_PROTO_VERSION);
	assert_string_equal(json_string_value(json_object_get(sub, "verb")), "subscribe");
	assert_true(json_equal(json_object_get(sub, "events"), want));
	assert_int_equal(json_integer_value(json_object_get(status, "v")), CTL_PROTO_VERSION);
	assert_string_equal(json_string_value(json_object_get(status, "verb")), "status");
	/* Its reply is told apart from the subscription's by the id. */
	assert_non_null(json_object_get(status, "id"));
	assert_false(json_equal(json_object_get(status, "id"), json_object_get(sub, "id")));
	json_decref(want);
	*ret_sub = sub;
	*ret_status = status;
}

/* Accept the peer's connection and answer like a server whose status is {"state":state}. */
static int sub_serve(sd_event *e, int lfd, const char *events, const char *state)
{
	int fd = peer_accept(lfd, e);
	json_t *sub, *status;

	sub_requests(e, fd, events, &sub, &status);
	peer_answer(fd, sub, true, NULL);
	peer_answer(fd, status, true, json_pack("{s:s}", "state", state));
	json_decref(sub), json_decref(status);
	return fd;
}

/* A peer without a subscription, connected to the daemon listening on lfd; *ret_fd is the
 * daemon's end. */
static struct ctl_peer *plain_peer(sd_event *e, const char *path, int lfd, int *ret_fd)
{
	struct ctl_peer *p = NULL;

	assert_int_equal(ctl_peer_new(e, path, RETRY_MS, NULL, NULL, NULL, &p), 0);
	*ret_fd = peer_accept(lfd, e);
	loop_until(e, ctl_peer_connected(p));
	return p;
}

/* ---- the subscription ---- */

static void test_peer_new_bad_args(void **state)
{
	static const char *const tick[] = {"tick", NULL}, *const none[] = {NULL};
	static const char *const blank[] = {"", NULL}, *const latin1[] = {"caf\xe9", NULL};
	const char *path = in_dir("w.sock"), *many[CTL_EVENTS_MAX + 2];
	struct ctl_peer *p = (struct ctl_peer *)&p;
	char longpath[200], longname[CTL_EVENT_NAME_MAX + 2];
	const char *toolong[] = {longname, NULL};
	json_t *got = json_array();
	sd_event *e = NULL;

	(void)state;
	for (int i = 0; i <= CTL_EVENTS_MAX; i++)
		many[i] = "x";
	many[CTL_EVENTS_MAX + 1] = NULL;
	memset(longpath, 'l', sizeof(longpath) - 1);
	longpath[sizeof(longpath) - 1] = '\0';
	memset(longname, 'n', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(sd_event_new(&e), 0);
	assert_int_equal(ctl_peer_new(NULL, path, 50, tick, on_event, got, &p), -EINVAL);
	assert_int_equal(ctl_peer_new(e, NULL, 50, tick, on_event, got, &p), -EINVAL);
	assert_int_equal(ctl_peer_new(e, "", 50, tick, on_event, got, &p), -EINVAL);
	assert_int_equal(ctl_peer_new(e, longpath, 50, tick, on_event, got, &p), -ENAMETOOLONG);
	assert_int_equal(ctl_peer_new(e, path, 50, none, on_event, got, &p), -EINVAL);
	assert_int_equal(ctl_peer_new(e, path, 50, blank, on_event, got, &p), -EINVAL);
	assert_int_equal(ctl_peer_new(e, path, 50, latin1, on_event, got, &p), -EINVAL);
	assert_int_equal(ctl_peer_new(e, path, 50, toolong, on_event, got, &p), -EINVAL);
	assert_int_equal(ctl_peer_new(e, path, 50, many, on_event, got, &p), -EINVAL);
	assert_int_equal(ctl_peer_new(e, path, 0, tick, on_event, got, &p), -EINVAL);
	assert_int_equal(ctl_peer_new(e, path, -1, tick, on_event, got, &p), -EINVAL);
	assert_int_equal(ctl_peer_new(e, path, 0, NULL, NULL, NULL, &p), -EINVAL);
	/* A subscription needs someone to tell. */
	assert_int_equal(ctl_peer_new(e, path, 50, tick, NULL, got, &p), -EINVAL);
	assert_int_equal(ctl_peer_new(e, path, 50, tick, on_event, got, NULL), -EINVAL);
	assert_int_equal(ctl_peer_new(e, path, 50, NULL, NULL, NULL, NULL), -EINVAL);
	assert_ptr_equal(p, (struct ctl_peer *)&p);
	/* Nothing was left on the loop. */
	assert_int_equal(sd_event_run(e, 0), 0);
	assert_int_equal(json_array_size(got), 0);
	ctl_peer_free(NULL);
	/* The good ones: calls only (fn may then be NULL), and one of the longest subscriptions. */
	many[CTL_EVENTS_MAX] = NULL;
	longname[CTL_EVENT_NAME_MAX] = '\0';
	assert_int_equal(ctl_peer_new(e, path, 50, NULL, NULL, NULL, &p), 0);
	ctl_peer_free(p);
	assert_int_equal(ctl_peer_new(e, path, 50, many, on_event, got, &p), 0);
	ctl_peer_free(p);
	assert_int_equal(ctl_peer_new(e, path, 50, toolong, on_event, got, &p), 0);
	ctl_peer_free(p);
	assert_int_equal(sd_event_run(e, 0), 0);
	json_decref(got);
	sd_event_unref(e);
}

/* Status first, then the pushed events; a hang-up is "disconnected" and a new connection
 * retry_ms later. */
static void test_peer_events(void **state)
{
	static const char *const tt[] = {"tick", "tock", NULL};
	const char *path = in_dir("watched.sock");
	int lfd = listen_at(path, 4), fd;
	struct ctl_peer *p = NULL;
	json_t *got = json_array();
	sd_event *e = NULL;
	int64_t t;

	(void)state;
	assert_int_equal(sd_event_new(&e), 0);
	assert_int_equal(ctl_peer_new(e, path, RETRY_MS, tt, on_event, got, &p), 0);
	/* ctl_peer_new() neither connects nor calls fn: that starts on the loop. */
	assert_int_equal(accept4(lfd, NULL, NULL, SOCK_CLOEXEC), -1);
	assert_int_equal(errno, EAGAIN);
	assert_false(ctl_peer_connected(p));
	fd = sub_serve(e, lfd, "[\"tick\",\"tock\"]", "up");
	assert_true(ctl_peer_connected(p));
	peer_says(fd, "{\"v\":1,\"event\":\"tick\",\"n\":1}\n");
	/* Lines that are neither events nor answers to its requests are skipped, and the
	 * connection stays. */
	peer_says(fd, "junk\n\n[1]\n{\"v\":1,\"ok\":false,\"error\":\"no\"}\n"
		      "{\"v\":1,\"ok\":true,\"id\":7}\n{\"v\":1,\"event\":5}\n\"\xff\"\n");
	/* An event cut across writes. */
	peer_says(fd, "{\"v\":1,\"event\":\"to");
	loop_for(e, 20);
	peer_says(fd, "ck\",\"n\":2,\"d\":{\"k\":[1]}}\n");
	run_until_n(e, got, 3);
	expect_status(got, 0, "up");
	expect_got(got, 1, json_pack("{s:i, s:s, s:i}", "v", 1, "event", "tick", "n", 1));
	expect_got(
	    got, 2,
	    json_pack("{s:i, s:s, s:i, s:{s:[i]}}", "v", 1, "event", "tock", "n", 2, "d", "k", 1));
	loop_for(e, 20);
	assert_int_equal(json_array_size(got), 3);
	peer_heard_nothing(fd);

	close(fd);
	run_until_n(e, got, 4);
	t = mono_ms();
	expect_got(got, 3, json_pack("{s:s}", "event", "disconnected"));
	assert_false(ctl_peer_connected(p));
	fd = sub_serve(e, lfd, "[\"tick\",\"tock\"]", "again");
	assert_true(mono_ms() - t >= RETRY_MS - 2);
	run_until_n(e, got, 5);
	expect_status(got, 4, "again");

	/* Freeing the peer hangs up, and calls fn no more. */
	ctl_peer_free(p);
	peer_hung_up(fd, NULL);
	loop_for(e, 20);
	assert_int_equal(json_array_size(got), 5);
	close(fd);
	close(lfd);
	json_decref(got);
	sd_event_unref(e);
}

/* A daemon that is not there, crashed, or too busy to take the connection is retried quietly
 * every retry_ms. */
static void test_peer_retries(void **state)
{
	static const char *const tick[] = {"tick", NULL};
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	const char *path = in_dir("later.sock");
	struct ctl_peer *p = NULL;
	json_t *got = json_array(), *sub, *status;
	int lfd, fd, stale, filler;
	sd_event *e = NULL;
	int64_t t;

	(void)state;
	assert_int_equal(sd_event_new(&e), 0);
	assert_int_equal(ctl_peer_new(e, path, RETRY_MS, tick, on_event, got, &p), 0);
	loop_for(e, 3 * RETRY_MS);
	/* A socket nobody listens on, as a crashed daemon leaves. */
	stale = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	assert_int_equal(bind(stale, (struct sockaddr *)&sa, sizeof(sa)), 0);
	loop_for(e, 2 * RETRY_MS);
	close(stale);
	/* A full backlog: the peer's non-blocking connect fails with EAGAIN. */
	lfd = listen_at(path, 0);
	filler = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	assert_int_equal(connect(filler, (struct sockaddr *)&sa, sizeof(sa)), 0);
	loop_for(e, 2 * RETRY_MS);
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	assert_true(fd >= 0);
	close(fd);
	close(filler);
	assert_int_equal(accept4(lfd, NULL, NULL, SOCK_CLOEXEC), -1);
	assert_int_equal(json_array_size(got), 0);

	t = mono_ms();
	fd = peer_accept(lfd, e);
	assert_true(mono_ms() - t < RETRY_MS + 250);
	sub_requests(e, fd, "[\"tick\"]", &sub, &status);
	json_decref(sub), json_decref(status);
	/* A hang-up before the subscription was answered: no "disconnected" (fn never heard it
	 * was connected), and the peer comes back. */
	close(fd);
	fd = sub_serve(e, lfd, "[\"tick\"]", "up");
	run_until_n(e, got, 1);
	expect_status(got, 0, "up");
	ctl_peer_free(p);
	close(fd);
	close(lfd);
	json_decref(got);
	sd_event_unref(e);
}

/* A line of CTL_LINE_MAX - 1 bytes is an event; one without an end in CTL_LINE_MAX resets the
 * connection, and the peer comes back. */
static void test_peer_long_lines(void **state)
{
	static const char *const big[] = {"big", NULL};
	static const char head[] = "{\"v\":1,\"event\":\"big\",\"pad\":\"";
	const char *path = in_dir("long.sock");
	int lfd = listen_at(path, 4), fd;
	char *line = malloc(CTL_LINE_MAX);
	struct ctl_peer *p = NULL;
	json_t *got = json_array();
	sd_event *e = NULL;
	pid_t pid;

	(void)state;
	assert_non_null(line);
	assert_int_equal(sd_event_new(&e), 0);
	assert_int_equal(ctl_peer_new(e, path, RETRY_MS, big, on_event, got, &p), 0);
	fd = sub_serve(e, lfd, "[\"big\"]", "up");
	memset(line, 'p', CTL_LINE_MAX);
	memcpy(line, head, sizeof(head) - 1);
	memcpy(line + CTL_LINE_MAX - 3, "\"}\n", 3);
	pid = peer_send_later(fd, line, CTL_LINE_MAX);
	run_until_n(e, got, 2);
	peer_reap(pid);
	expect_status(got, 0, "up");
	assert_int_equal(json_string_length(json_object_get(json_array_get(got, 1), "pad")),
			 CTL_LINE_MAX - 3 - (sizeof(head) - 1));

	memset(line, 'x', CTL_LINE_MAX);
	pid = peer_send_later(fd, line, CTL_LINE_MAX);
	run_until_n(e, got, 3);
	peer_reap(pid);
	expect_got(got, 2, json_pack("{s:s}", "event", "disconnected"));
	peer_hung_up(fd, NULL);
	close(fd);
	fd = sub_serve(e, lfd, "[\"big\"]", "back");
	run_until_n(e, got, 4);
	expect_status(got, 3, "back");
	ctl_peer_free(p);
	close(fd);
	close(lfd);
	json_decref(got);
	sd_event_unref(e);
	free(line);
}

/* A daemon that refuses the subscription and the status: neither refusal reaches fn, nothing
 * breaks, and the peer subscribes again on a new connection. */
static void test_peer_refused(void **state)
{
	static const char *const tick[] = {"tick", NULL};
	const char *path = in_dir("refuse.sock");
	int lfd = listen_at(path, 4), fd;
	json_t *got = json_array(), *sub, *status;
	struct ctl_peer *p = NULL;
	sd_event *e = NULL;

	(void)state;
	assert_int_equal(sd_event_new(&e), 0);
	assert_int_equal(ctl_peer_new(e, path, RETRY_MS, tick, on_event, got, &p), 0);
	fd = peer_accept(lfd, e);
	sub_requests(e, fd, "[\"tick\"]", &sub, &status);
	peer_answer(fd, sub, false, json_pack("{s:s}", "error", "unknown verb 'subscribe'"));
	peer_answer(fd, status, false, json_pack("{s:s}", "error", "unknown verb 'status'"));
	json_decref(sub), json_decref(status);
	loop_for(e, 2 * RETRY_MS);
	assert_int_equal(json_array_size(got), 0);
	close(fd);
	fd = sub_serve(e, lfd, "[\"tick\"]", "up");
	run_until_n(e, got, 1);
	expect_status(got, 0, "up");
	close(fd);
	run_until_n(e, got, 2);
	expect_got(got, 1, json_pack("{s:s}", "event", "disconnected"));
	fd = peer_accept(lfd, e);
	sub_requests(e, fd, "[\"tick\"]", &sub, &status);
	peer_answer(fd, sub, false, json_pack("{s:s}", "error", "no"));
	peer_answer(fd, status, true, json_pack("{s:s}", "state", "refused"));
	json_decref(sub), json_decref(status);
	/* Subscription refused, status answered: fn hears nothing, not even the status (without a
	 * subscription it would go stale unnoticed); the peer hangs up and asks again later. */
	peer_hung_up(fd, e);
	close(fd);
	fd = sub_serve(e, lfd, "[\"tick\"]", "back");
	run_until_n(e, got, 3);
	expect_status(got, 2, "back");
	assert_int_equal(json_array_size(got), 3);
	ctl_peer_free(p);
	close(fd);
	close(lfd);
	json_decref(got);
	sd_event_unref(e);
}

/* ctl_peer_free() at every stage: before the loop ran, waiting to retry, connected. */
static void test_peer_free(void **state)
{
	static const char *const tick[] = {"tick", NULL};
	const char *path = in_dir("free.sock");
	int lfd = listen_at(path, 4), fd;
	struct ctl_peer *p = NULL;
	json_t *got = json_array();
	sd_event *e = NULL;

	(void)state;
	assert_int_equal(sd_event_new(&e), 0);
	assert_int_equal(ctl_peer_new(e, path, RETRY_MS, tick, on_event, got, &p), 0);
	ctl_peer_free(p);
	assert_int_equal(sd_event_run(e, 0), 0);
	assert_int_equal(accept4(lfd, NULL, NULL, SOCK_CLOEXEC), -1);

	assert_int_equal(ctl_peer_new(e, in_dir("absent.sock"), RETRY_MS, tick, on_event, got, &p),
			 0);
	loop_for(e, RETRY_MS / 2);
	ctl_peer_free(p);
	assert_int_equal(sd_event_run(e, 0), 0);

	/* Connected, with a half-sent event pending: the daemon sees the hang-up, fn nothing. */
	assert_int_equal(ctl_peer_new(e, path, RETRY_MS, tick, on_event, got, &p), 0);
	fd = sub_serve(e, lfd, "[\"tick\"]", "up");
	run_until_n(e, got, 1);
	peer_says(fd, "{\"v\":1,\"event\":\"ti");
	loop_for(e, 20);
	ctl_peer_free(p);
	peer_hung_up(fd, NULL);
	assert_int_equal(sd_event_run(e, 0), 0);
	assert_int_equal(json_array_size(got), 1);
	close(fd);
	close(lfd);
	json_decref(got);
	sd_event_unref(e);
}

/* Without a subscription (events NULL) the peer says nothing on connecting, ignores pushed
 * events and tells nobody of a hang-up; its first line is its first call. */
static void test_peer_without_subscription(void **state)
{
	const char *path = in_dir("plain.sock");
	int lfd = listen_at(path, 4), fd;
	json_t *got = json_array(), *seen = json_array(), *req;
	struct ctl_peer *p = NULL;
	sd_event *e = NULL;

	(void)state;
	assert_int_equal(sd_event_new(&e), 0);
	assert_int_equal(ctl_peer_new(e, path, RETRY_MS, NULL, on_event, seen, &p), 0);
	fd = peer_accept(lfd, e);
	loop_until(e, ctl_peer_connected(p));
	loop_for(e, 3 * RETRY_MS);
	peer_heard_nothing(fd);
	peer_says(fd,
		  "{\"v\":1,\"event\":\"tick\"}\n{\"v\":1,\"ok\":true,\"id\":\"peer-status\"}\n");
	loop_for(e, 20);
	assert_int_equal(ctl_peer_call(p, "status", NULL, WAIT_MS, on_reply, got, NULL), 0);
	req = peer_request_on(fd, e, "status", 1);
	assert_int_equal(json_object_size(req), 3);
	peer_answer(fd, req, true, json_pack("{s:s}", "state", "up"));
	json_decref(req);
	run_until_n(e, got, 1);
	expect_outcome(got, 0, 0,
		       json_pack("{s:i, s:b, s:i, s:s}", "v", 1, "ok", 1, "id", 1, "state", "up"));
	close(fd);
	loop_until(e, !ctl_peer_connected(p));
	fd = peer_accept(lfd, e);
	loop_for(e, 2 * RETRY_MS);
	peer_heard_nothing(fd);
	assert_int_equal(json_array_size(seen), 0);
	ctl_peer_free(p);
	close(fd);
	close(lfd);
	json_decref(got);
	json_decref(seen);
	sd_event_unref(e);
}

/* ---- calls ---- */

/* The request line: {"v":1,"verb":verb,"id":n, ...args}, ids counting up from 1; args are
 * borrowed, left as they were, and cannot replace "v", "verb" or "id". */
static void test_call_request_line(void **state)
{
	const char *path = in_dir("line.sock");
	int lfd = listen_at(path, 4), fd;
	json_t *got = json_array(), *args, *copy, *req;
	struct ctl_peer *p;
	sd_event *e = NULL;

	(void)state;
	assert_int_equal(sd_event_new(&e), 0);
	p = plain_peer(e, path, lfd, &fd);

	args = json_pack("{s:s, s:[i,i], s:{s:b}, s:i, s:s, s:s}", "name", "pi1", "indices", 3, 7,
			 "opt", "deep", 1, "v", 9, "verb", "evil", "id", "x");
	copy = json_deep_copy(args);
	assert_int_equal(ctl_peer_call(p, "lookup", args, WAIT_MS, on_reply, got, NULL), 0);
	assert_true(json_equal(args, copy));
	assert_int_equal(args->refcount, 1);
	req = peer_request_on(fd, e, "lookup", 1);
	assert_int_equal(json_object_size(req), 6);
	assert_string_equal(json_string_value(json_object_get(req, "name")), "pi1");
	assert_true(json_equal(json_object_get(req, "indices"), json_object_get(args, "indices")));
	assert_true(json_equal(json_object_get(req, "opt"), json_object_get(args, "opt")));
	json_decref(req);

	/* No arguments, and an empty object: just the three. */
	assert_int_equal(ctl_peer_call(p, "status", NULL, WAIT_MS, on_reply, got, NULL), 0);
	json_object_clear(copy);
	assert_int_equal(ctl_peer_call(p, "has", copy, WAIT_MS, on_reply, got, NULL), 0);
	req = peer_request_on(fd, e, "status", 2);
	assert_int_equal(json_object_size(req), 3);
	json_decref(req);
	req = peer_request_on(fd, e, "has", 3);
	assert_int_equal(json_object_size(req), 3);
	json_decref(req);
	peer_heard_nothing(fd);
	/* Nothing came back yet: the three still wait. */
	assert_int_equal(json_array_size(got), 0);
	ctl_peer_free(p);
	assert_int_equal(json_array_size(got), 3);
	close(fd);
	close(lfd);
	json_decref(args);
	json_decref(copy);
	json_decref(got);
	sd_event_unref(e);
}

static void test_call_bad_args(void **state)
{
	const char *path = in_dir("badcall.sock");
	int lfd = listen_at(path, 4), fd;
	struct ctl_call *c = (struct ctl_call *)&c;
	json_t *got = json_array(), *list = json_array(), *str = json_string("x");
	struct ctl_peer *p;
	sd_event *e = NULL;

	(void)state;
	assert_int_equal(sd_event_new(&e), 0);
	p = plain_peer(e, path, lfd, &fd);
	assert_int_equal(ctl_peer_call(NULL, "status", NULL, WAIT_MS, on_reply, got, &c), -EINVAL);
	assert_int_equal(ctl_peer_call(p, NULL, NULL, WAIT_MS, on_reply, got, &c), -EINVAL);
	assert_int_equal(ctl_peer_call(p, "status", NULL, WAIT_MS, NULL, got, &c), -EINVAL);
	assert_int_equal(ctl_peer_call(p, "status", NULL, 0, on_reply, got, &c), -EINVAL);
	assert_int_equal(ctl_peer_call(p, "status", NULL, -1, on_reply, got, &c), -EINVAL);
	assert_int_equal(ctl_peer_call(p, "status", list, WAIT_MS, on_reply, got, &c), -EINVAL);
	assert_int_equal(ctl_peer_call(p, "status", str, WAIT_MS, on_reply, got, &c), -EINVAL);
	assert_ptr_equal(c, (struct ctl_call *)&c);
	loop_for(e, 20);
	peer_heard_nothing(fd);
	assert_int_equal(json_array_size(got), 0);
	/* The refused ones used no id. */
	assert_int_equal(ctl_peer_call(p, "status", NULL, WAIT_MS, on_reply, got, &c), 0);
	assert_ptr_not_equal(c, (struct ctl_call *)&c);
	heard(e, fd, "status", 1);
	ctl_peer_free(p);
	close(fd);
	close(lfd);
	json_decref(list);
	json_decref(str);
	json_decref(got);
	sd_event_unref(e);
}

/* A reply: fn gets 0 and the reply (borrowed), once, from the loop and not from the call. */
static void test_call_reply(void **state)
{
	const char *path = in_dir("reply.sock");
	int lfd = listen_at(path, 4), fd;
	json_t *got = json_array(), *req;
	struct ctl_call *c = NULL;
	struct ctl_peer *p;
	sd_event *e = NULL;

	(void)state;
	assert_int_equal(sd_event_new(&e), 0);
	p = plain_peer(e, path, lfd, &fd);
	assert_int_equal(ctl_peer_call(p, "status", NULL, WAIT_MS, on_reply, got, &c), 0);
	assert_non_null(c);
	assert_int_equal(json_array_size(got), 0);
	req = peer_request_on(fd, e, "status", 1);
	/* A reply cut across writes. */
	peer_says(fd, "{\"v\":1,\"ok\":true,\"id\":1,\"st");
	loop_for(e, 20);
	assert_int_equal(json_array_size(got), 0);
	peer_says(fd, "ate\":\"up\",\"n\":[1,2]}\n");
	run_until_n(e, got, 1);
	expect_outcome(got, 0, 0,
		       json_pack("{s:i, s:b, s:i, s:s, s:[i,i]}", "v", 1, "ok", 1, "id", 1, "state",
				 "up", "n", 1, 2));
	/* The same reply again is nobody's. */
	peer_answer(fd, req, true, NULL);
	loop_for(e, 20);
	assert_int_equal(json_array_size(got), 1);
	assert_true(ctl_peer_connected(p));
	json_decref(req);
	ctl_peer_free(p);
	assert_int_equal(json_array_size(got), 1);
	close(fd);
	close(lfd);
	json_decref(got);
	sd_event_unref(e);
}

/* A refusal gives -EPROTO and the refusal; so does a reply whose "ok" is not true. */
static void test_call_refused(void **state)
{
	static const char *const replies[] = {
	    "{\"v\":1,\"ok\":false,\"id\":1,\"error\":\"permission denied\"}\n",
	    "{\"v\":1,\"id\":2}\n",
	    "{\"v\":1,\"ok\":\"true\",\"id\":3}\n",
	    "{\"v\":1,\"ok\":1,\"id\":4}\n",
	};
	const char *path = in_dir("refused.sock");
	int lfd = listen_at(path, 4), fd;
	json_t *got[4], *want;
	struct ctl_peer *p;
	sd_event *e = NULL;

	(void)state;
	assert_int_equal(sd_event_new(&e), 0);
	p = plain_peer(e, path, lfd, &fd);
	for (size_t i = 0; i < 4; i++) {
		got[i] = json_array();
		assert_int_equal(ctl_peer_call(p, "lock", NULL, WAIT_MS, on_reply, got[i], NULL),
				 0);
		heard(e, fd, "lock", (json_int_t)i + 1);
	}
	for (size_t i = 0; i < 4; i++) {
		peer_says(fd, replies[i]);
		run_until_n(e, got[i], 1);
		want = json_loads(replies[i], 0, NULL);
		expect_outcome(got[i], 0, -EPROTO, want);
	}
	assert_string_equal(ctl_reply_error(json_object_get(json_array_get(got[0], 0), "reply")),
			    "permission denied");
	/* Refusals are answers: the connection stays. */
	assert_true(ctl_peer_connected(p));
	ctl_peer_free(p);
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(json_array_size(got[i]), 1);
		json_decref(got[i]);
	}
	close(fd);
	close(lfd);
	sd_event_unref(e);
}

/* No reply within timeout_ms: -ETIMEDOUT, then the late reply is ignored and the connection
 * serves the next call. */
static void test_call_timeout(void **state)
{
	const char *path = in_dir("timeout.sock");
	int lfd = listen_at(path, 4), fd;
	json_t *late = json_array(), *next = json_array(), *req;
	struct ctl_peer *p;
	sd_event *e = NULL;
	int64_t t;

	(void)state;
	assert_int_equal(sd_event_new(&e), 0);
	p = plain_peer(e, path, lfd, &fd);
	t = mono_ms();
	assert_int_equal(ctl_peer_call(p, "slow", NULL, 100, on_reply, late, NULL), 0);
	req = peer_request_on(fd, e, "slow", 1);
	run_until_n(e, late, 1);
	assert_true(mono_ms() - t >= 100 - 2);
	assert_true(mono_ms() - t < 100 + 250);
	expect_outcome(late, 0, -ETIMEDOUT, NULL);
	peer_answer(fd, req, true, NULL);
	json_decref(req);
	loop_for(e, 30);
	assert_int_equal(json_array_size(late), 1);
	assert_true(ctl_peer_connected(p));
	assert_int_equal(ctl_peer_call(p, "fast", NULL, 100, on_reply, next, NULL), 0);
	req = peer_request_on(fd, e, "fast", 2);
	peer_answer(fd, req, true, NULL);
	json_decref(req);
	run_until_n(e, next, 1);
	expect_outcome(next, 0, 0, json_pack("{s:i, s:b, s:i}", "v", 1, "ok", 1, "id", 2));
	/* Each timer went with its call. */
	loop_for(e, 150);
	assert_int_equal(json_array_size(late), 1);
	assert_int_equal(json_array_size(next), 1);
	ctl_peer_free(p);
	close(fd);
	close(lfd);
	json_decref(late);
	json_decref(next);
	sd_event_unref(e);
}

/* Replies in another order than the calls go to their own calls, by id; replies with an id
 * nobody waits for, or an id that is not that integer, go to nobody. */
static void test_call_ids(void **state)
{
	const char *path = in_dir("ids.sock");
	int lfd = listen_at(path, 4), fd;
	json_t *got[3];
	struct ctl_peer *p;
	sd_event *e = NULL;

	(void)state;
	assert_int_equal(sd_event_new(&e), 0);
	p = plain_peer(e, path, lfd, &fd);
	for (size_t i = 0; i < 3; i++) {
		got[i] = json_array();
		assert_int_equal(ctl_peer_call(p, "q", NULL, WAIT_MS, on_reply, got[i], NULL), 0);
	}
	for (json_int_t i = 1; i <= 3; i++)
		heard(e, fd, "q", i);
	peer_says(fd, "{\"v\":1,\"ok\":true,\"id\":\"2\"}\n{\"v\":1,\"ok\":true,\"id\":2.0}\n"
		      "{\"v\":1,\"ok\":true,\"id\":99}\n{\"v\":1,\"ok\":true,\"id\":0}\n"
		      "{\"v\":1,\"ok\":true,\"id\":-1}\n{\"v\":1,\"ok\":true,\"id\":[2]}\n"
		      "{\"v\":1,\"ok\":true,\"id\":2,\"id\":2}\n{\"v\":1,\"ok\":true}\n"
		      "{\"v\":1,\"ok\":true,\"id\":null}\n");
	loop_for(e, 20);
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(json_array_size(got[i]), 0);
	peer_send_json(fd, reply_to(3, true, json_pack("{s:i}", "n", 3)));
	peer_send_json(fd, reply_to(1, false, json_pack("{s:s}", "error", "one")));
	peer_send_json(fd, reply_to(2, true, json_pack("{s:i}", "n", 2)));
	run_until_n(e, got[1], 1);
	assert_int_equal(json_array_size(got[0]), 1);
	assert_int_equal(json_array_size(got[2]), 1);
	expect_outcome(got[0], 0, -EPROTO, reply_to(1, false, json_pack("{s:s}", "error", "one")));
	expect_outcome(got[1], 0, 0, reply_to(2, true, json_pack("{s:i}", "n", 2)));
	expect_outcome(got[2], 0, 0, reply_to(3, true, json_pack("{s:i}", "n", 3)));
	ctl_peer_free(p);
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(json_array_size(got[i]), 1);
		json_decref(got[i]);
	}
	close(fd);
	close(lfd);
	sd_event_unref(e);
}

/* A lost connection ends every waiting call with -ECONNRESET; calls are refused (-ENOTCONN,
 * without a callback) until the peer is back retry_ms later, and then work again. */
static void test_call_connection_lost(void **state)
{
	const char *path = in_dir("lost.sock");
	int lfd = listen_at(path, 4), fd;
	json_t *got[2], *away = json_array(), *back = json_array(), *req;
	struct ctl_call *c = (struct ctl_call *)&c;
	struct ctl_peer *p;
	sd_event *e = NULL;

	(void)state;
	assert_int_equal(sd_event_new(&e), 0);
	p = plain_peer(e, path, lfd, &fd);
	for (size_t i = 0; i < 2; i++) {
		got[i] = json_array();
		assert_int_equal(ctl_peer_call(p, "q", NULL, WAIT_MS, on_reply, got[i], NULL), 0);
	}
	heard(e, fd, "q", 1);
	heard(e, fd, "q", 2);
	close(fd);
	run_until_n(e, got[0], 1);
	assert_int_equal(json_array_size(got[1]), 1);
	expect_outcome(got[0], 0, -ECONNRESET, NULL);
	expect_outcome(got[1], 0, -ECONNRESET, NULL);
	assert_false(ctl_peer_connected(p));
	assert_int_equal(ctl_peer_call(p, "q", NULL, WAIT_MS, on_reply, away, &c), -ENOTCONN);
	assert_ptr_equal(c, (struct ctl_call *)&c);
	fd = peer_accept(lfd, e);
	loop_until(e, ctl_peer_connected(p));
	assert_int_equal(ctl_peer_call(p, "q", NULL, WAIT_MS, on_reply, back, NULL), 0);
	req = peer_request_on(fd, e, "q", 3);
	peer_answer(fd, req, true, NULL);
	json_decref(req);
	run_until_n(e, back, 1);
	expect_outcome(back, 0, 0, reply_to(3, true, NULL));
	assert_int_equal(json_array_size(away), 0);
	/* A reset by the daemon is the same as a close. */
	assert_int_equal(ctl_peer_call(p, "q", NULL, WAIT_MS, on_reply, back, NULL), 0);
	heard(e, fd, "q", 4);
	{
		struct linger lg = {.l_onoff = 1, .l_linger = 0};

		assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
	}
	close(fd);
	run_until_n(e, back, 2);
	expect_outcome(back, 1, -ECONNRESET, NULL);
	ctl_peer_free(p);
	assert_int_equal(json_array_size(away), 0);
	assert_int_equal(json_array_size(back), 2);
	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(json_array_size(got[i]), 1);
		json_decref(got[i]);
	}
	close(lfd);
	json_decref(away);
	json_decref(back);
	sd_event_unref(e);
}

/* ctl_call_cancel(): -ECANCELED at once and exactly once; the reply that comes later is
 * nobody's, and the other calls go on. */
static void test_call_cancel(void **state)
{
	const char *path = in_dir("cancel.sock");
	int lfd = listen_at(path, 4), fd;
	json_t *gone = json_array(), *kept = json_array(), *early = json_array();
	struct ctl_call *c = NULL, *unsent = NULL;
	struct ctl_peer *p;
	sd_event *e = NULL;

	(void)state;
	assert_int_equal(sd_event_new(&e), 0);
	p = plain_peer(e, path, lfd, &fd);
	assert_int_equal(ctl_peer_call(p, "q", NULL, WAIT_MS, on_reply, gone, &c), 0);
	assert_int_equal(ctl_peer_call(p, "q", NULL, WAIT_MS, on_reply, kept, NULL), 0);
	heard(e, fd, "q", 1);
	heard(e, fd, "q", 2);
	ctl_call_cancel(c);
	assert_int_equal(json_array_size(gone), 1);
	expect_outcome(gone, 0, -ECANCELED, NULL);
	ctl_call_cancel(NULL);
	peer_send_json(fd, reply_to(1, true, NULL));
	peer_send_json(fd, reply_to(2, true, NULL));
	run_until_n(e, kept, 1);
	expect_outcome(kept, 0, 0, reply_to(2, true, NULL));
	/* Cancelled before it was even sent: still once, and its reply is nobody's too. */
	assert_int_equal(ctl_peer_call(p, "q", NULL, WAIT_MS, on_reply, early, &unsent), 0);
	ctl_call_cancel(unsent);
	expect_outcome(early, 0, -ECANCELED, NULL);
	heard(e, fd, "q", 3);
	peer_send_json(fd, reply_to(3, true, NULL));
	loop_for(e, 2 * RETRY_MS);
	assert_true(ctl_peer_connected(p));
	ctl_peer_free(p);
	assert_int_equal(json_array_size(gone), 1);
	assert_int_equal(json_array_size(kept), 1);
	assert_int_equal(json_array_size(early), 1);
	close(fd);
	close(lfd);
	json_decref(gone);
	json_decref(kept);
	json_decref(early);
	sd_event_unref(e);
}

/* ctl_peer_free() ends each waiting call with -ECANCELED, once, and hangs up. */
static void test_call_free(void **state)
{
	const char *path = in_dir("freecall.sock");
	int lfd = listen_at(path, 4), fd;
	json_t *got[3];
	struct ctl_peer *p;
	sd_event *e = NULL;

	(void)state;
	assert_int_equal(sd_event_new(&e), 0);
	p = plain_peer(e, path, lfd, &fd);
	for (size_t i = 0; i < 3; i++) {
		got[i] = json_array();
		assert_int_equal(ctl_peer_call(p, "q", NULL, WAIT_MS, on_reply, got[i], NULL), 0);
	}
	heard(e, fd, "q", 1);
	ctl_peer_free(p);
	for (size_t i = 0; i < 3; i++)
		expect_outcome(got[i], 0, -ECANCELED, NULL);
	peer_hung_up(fd, NULL);
	loop_for(e, 2 * RETRY_MS);
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(json_array_size(got[i]), 1);
		json_decref(got[i]);
	}
	assert_int_equal(accept4(lfd, NULL, NULL, SOCK_CLOEXEC), -1);
	close(fd);
	close(lfd);
	sd_event_unref(e);
}

/* While the daemon is away (not started, or gone), a call is -ENOTCONN and never calls back. */
static void test_call_daemon_away(void **state)
{
	const char *path = in_dir("away.sock");
	struct ctl_call *c = (struct ctl_call *)&c;
	json_t *got = json_array();
	struct ctl_peer *p = NULL;
	sd_event *e = NULL;
	int lfd, fd;

	(void)state;
	assert_int_equal(sd_event_new(&e), 0);
	assert_int_equal(ctl_peer_new(e, path, RETRY_MS, NULL, NULL, NULL, &p), 0);
	/* Before the loop ran: not connected yet. */
	assert_int_equal(ctl_peer_call(p, "q", NULL, WAIT_MS, on_reply, got, &c), -ENOTCONN);
	loop_for(e, 3 * RETRY_MS);
	assert_false(ctl_peer_connected(p));
	assert_int_equal(ctl_peer_call(p, "q", NULL, WAIT_MS, on_reply, got, &c), -ENOTCONN);
	assert_ptr_equal(c, (struct ctl_call *)&c);
	/* It starts: calls work; it stops: refused again. */
	lfd = listen_at(path, 4);
	fd = peer_accept(lfd, e);
	loop_until(e, ctl_peer_connected(p));
	close(lfd);
	unlink(path);
	close(fd);
	loop_until(e, !ctl_peer_connected(p));
	loop_for(e, 3 * RETRY_MS);
	assert_int_equal(ctl_peer_call(p, "q", NULL, WAIT_MS, on_reply, got, &c), -ENOTCONN);
	loop_for(e, 20);
	assert_int_equal(json_array_size(got), 0);
	ctl_peer_free(p);
	assert_int_equal(json_array_size(got), 0);
	json_decref(got);
	sd_event_unref(e);
}

/* What a callback does from inside: place the next call (it is sent and answered), cancel
 * another call, or try to call while the connection is being lost (-ENOTCONN). */
struct chain {
	struct ctl_peer *p;
	json_t *got;		 /* outcomes of the calls this one placed */
	json_t *mine;		 /* this call's own outcome */
	int placed;		 /* what the ctl_peer_call() from inside returned */
	struct ctl_call **other; /* the handle of a call to cancel from inside, if any */
	struct ctl_call **self;	 /* this call's handle, cleared once it ended */
};

static void on_chain(int r, json_t *reply, void *userdata)
{
	struct chain *ch = userdata;
	struct ctl_call *other;

	on_reply(r, reply, ch->mine);
	if (ch->self)
		*ch->self = NULL;
	if (ch->got)
		ch->placed = ctl_peer_call(ch->p, "next", NULL, WAIT_MS, on_reply, ch->got, NULL);
	/* Read after our own handle was cleared: a call that already ended is not cancelled. */
	other = ch->other ? *ch->other : NULL;
	if (other)
		ctl_call_cancel(other);
}

static void test_call_from_callback(void **state)
{
	const char *path = in_dir("chain.sock");
	int lfd = listen_at(path, 4), fd;
	json_t *mine = json_array(), *next = json_array(), *other = json_array(), *req;
	struct chain ch = {.placed = 1};
	struct ctl_call *oc = NULL;
	struct ctl_peer *p;
	sd_event *e = NULL;

	(void)state;
	assert_int_equal(sd_event_new(&e), 0);
	p = plain_peer(e, path, lfd, &fd);
	ch.p = p, ch.got = next, ch.mine = mine;
	assert_int_equal(ctl_peer_call(p, "first", NULL, WAIT_MS, on_chain, &ch, NULL), 0);
	assert_int_equal(ctl_peer_call(p, "other", NULL, WAIT_MS, on_reply, other, &oc), 0);
	ch.other = &oc;
	heard(e, fd, "first", 1);
	heard(e, fd, "other", 2);
	peer_send_json(fd, reply_to(1, true, NULL));
	run_until_n(e, mine, 1);
	expect_outcome(mine, 0, 0, reply_to(1, true, NULL));
	/* The call placed from inside went out with the next id; the other one was cancelled. */
	assert_int_equal(ch.placed, 0);
	expect_outcome(other, 0, -ECANCELED, NULL);
	req = peer_request_on(fd, e, "next", 3);
	peer_answer(fd, req, true, NULL);
	json_decref(req);
	run_until_n(e, next, 1);
	expect_outcome(next, 0, 0, reply_to(3, true, NULL));
	peer_send_json(fd, reply_to(2, true, NULL));
	loop_for(e, 20);
	assert_int_equal(json_array_size(other), 1);

	/* From inside the end of a lost connection: not connected, and no callback. */
	json_array_clear(mine), json_array_clear(next);
	ch.placed = 1, ch.other = NULL;
	assert_int_equal(ctl_peer_call(p, "first", NULL, WAIT_MS, on_chain, &ch, NULL), 0);
	heard(e, fd, "first", 4);
	close(fd);
	run_until_n(e, mine, 1);
	expect_outcome(mine, 0, -ECONNRESET, NULL);
	assert_int_equal(ch.placed, -ENOTCONN);
	fd = peer_accept(lfd, e);
	loop_until(e, ctl_peer_connected(p));
	loop_for(e, 20);
	peer_heard_nothing(fd);
	assert_int_equal(json_array_size(next), 0);
	ctl_peer_free(p);
	assert_int_equal(json_array_size(mine), 1);
	close(fd);
	close(lfd);
	json_decref(mine);
	json_decref(next);
	json_decref(other);
	sd_event_unref(e);
}

/* Two calls end together when the connection is lost; the first callback cancels the other
 * call, whose handle is valid until its own callback ran. Each callback runs exactly once. */
static void test_call_cancel_other_on_reset(void **state)
{
	const char *path = in_dir("pairreset.sock");
	int lfd = listen_at(path, 4), fd;
	struct ctl_call *c1 = NULL, *c2 = NULL;
	struct chain ch1 = {0}, ch2 = {0};
	struct ctl_peer *p;
	sd_event *e = NULL;

	(void)state;
	assert_int_equal(sd_event_new(&e), 0);
	p = plain_peer(e, path, lfd, &fd);
	ch1.mine = json_array(), ch2.mine = json_array();
	ch1.p = ch2.p = p;
	assert_int_equal(ctl_peer_call(p, "one", NULL, WAIT_MS, on_chain, &ch1, &c1), 0);
	assert_int_equal(ctl_peer_call(p, "two", NULL, WAIT_MS, on_chain, &ch2, &c2), 0);
	ch1.self = &c1, ch2.self = &c2;
	/* Whichever ends first cancels the other, if that one still waits. */
	ch1.other = &c2, ch2.other = &c1;
	heard(e, fd, "one", 1);
	heard(e, fd, "two", 2);
	close(fd);
	loop_until(e, json_array_size(ch1.mine) >= 1 && json_array_size(ch2.mine) >= 1);
	loop_for(e, 20);
	assert_int_equal(json_array_size(ch1.mine), 1);
	assert_int_equal(json_array_size(ch2.mine), 1);
	{
		int r1 = (int)json_integer_value(json_object_get(json_array_get(ch1.mine, 0), "r"));
		int r2 = (int)json_integer_value(json_object_get(json_array_get(ch2.mine, 0), "r"));

		assert_true((r1 == -ECONNRESET && r2 == -ECANCELED) ||
			    (r1 == -ECANCELED && r2 == -ECONNRESET));
	}
	ctl_peer_free(p);
	assert_int_equal(json_array_size(ch1.mine), 1);
	assert_int_equal(json_array_size(ch2.mine), 1);
	close(lfd);
	json_decref(ch1.mine);
	json_decref(ch2.mine);
	sd_event_unref(e);
}

/* Calls on a peer that also holds a subscription: their integer ids never meet the
 * subscription's, events and replies interleave, and a hang-up ends the calls and then tells
 * the subscriber. */
static void test_call_with_subscription(void **state)
{
	static const char *const tick[] = {"tick", NULL};
	const char *path = in_dir("both.sock");
	int lfd = listen_at(path, 4), fd;
	json_t *events = json_array(), *got = json_array(), *sub, *status, *req;
	struct ctl_peer *p = NULL;
	sd_event *e = NULL;

	(void)state;
	assert_int_equal(sd_event_new(&e), 0);
	assert_int_equal(ctl_peer_new(e, path, RETRY_MS, tick, on_event, events, &p), 0);
	fd = peer_accept(lfd, e);
	loop_until(e, ctl_peer_connected(p));
	/* A call placed before the subscription was answered goes out after its two lines. */
	assert_int_equal(ctl_peer_call(p, "q", NULL, WAIT_MS, on_reply, got, NULL), 0);
	sub_requests(e, fd, "[\"tick\"]", &sub, &status);
	req = peer_request_on(fd, e, "q", 1);
	assert_false(json_equal(json_object_get(req, "id"), json_object_get(sub, "id")));
	assert_false(json_equal(json_object_get(req, "id"), json_object_get(status, "id")));
	/* The call's reply first, then the subscription's, an event, and the status. */
	peer_answer(fd, req, true, json_pack("{s:i}", "n", 1));
	peer_answer(fd, sub, true, NULL);
	peer_says(fd, "{\"v\":1,\"event\":\"tick\"}\n");
	peer_answer(fd, status, true, json_pack("{s:s}", "state", "up"));
	json_decref(req), json_decref(sub), json_decref(status);
	run_until_n(e, got, 1);
	expect_outcome(got, 0, 0, reply_to(1, true, json_pack("{s:i}", "n", 1)));
	run_until_n(e, events, 2);
	expect_got(events, 0, json_pack("{s:i, s:s}", "v", 1, "event", "tick"));
	expect_status(events, 1, "up");
	/* A waiting call, then a hang-up: the call ends, the subscriber hears "disconnected". */
	assert_int_equal(ctl_peer_call(p, "q", NULL, WAIT_MS, on_reply, got, NULL), 0);
	heard(e, fd, "q", 2);
	close(fd);
	run_until_n(e, got, 2);
	expect_outcome(got, 1, -ECONNRESET, NULL);
	run_until_n(e, events, 3);
	expect_got(events, 2, json_pack("{s:s}", "event", "disconnected"));
	fd = sub_serve(e, lfd, "[\"tick\"]", "back");
	run_until_n(e, events, 4);
	expect_status(events, 3, "back");
	ctl_peer_free(p);
	assert_int_equal(json_array_size(got), 2);
	close(fd);
	close(lfd);
	json_decref(events);
	json_decref(got);
	sd_event_unref(e);
}

/* A reply is told from an event by "ok" and "id", not by its fields: a verb whose reply has a
 * field named "event" still answers its call, on a subscribed peer as on any other. */
static void test_call_reply_with_event_field(void **state)
{
	static const char *const tick[] = {"tick", NULL};
	const char *path = in_dir("evfield.sock");
	int lfd = listen_at(path, 4), fd;
	json_t *events = json_array(), *got = json_array(), *req;
	struct ctl_peer *p = NULL;
	sd_event *e = NULL;

	(void)state;
	assert_int_equal(sd_event_new(&e), 0);
	assert_int_equal(ctl_peer_new(e, path, RETRY_MS, tick, on_event, events, &p), 0);
	fd = sub_serve(e, lfd, "[\"tick\"]", "up");
	run_until_n(e, events, 1);
	assert_int_equal(ctl_peer_call(p, "history", NULL, WAIT_MS, on_reply, got, NULL), 0);
	req = peer_request_on(fd, e, "history", 1);
	peer_answer(fd, req, true, json_pack("{s:s}", "event", "tick"));
	json_decref(req);
	loop_until(e, json_array_size(got) >= 1 || json_array_size(events) >= 2);
	assert_int_equal(json_array_size(events), 1);
	run_until_n(e, got, 1);
	expect_outcome(got, 0, 0, reply_to(1, true, json_pack("{s:s}", "event", "tick")));
	ctl_peer_free(p);
	close(fd);
	close(lfd);
	json_decref(events);
	json_decref(got);
	sd_event_unref(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_peer_new_bad_args),
	    cmocka_unit_test(test_peer_events),
	    cmocka_unit_test(test_peer_retries),
	    cmocka_unit_test(test_peer_long_lines),
	    cmocka_unit_test(test_peer_refused),
	    cmocka_unit_test(test_peer_free),
	    cmocka_unit_test(test_peer_without_subscription),
	    cmocka_unit_test(test_call_request_line),
	    cmocka_unit_test(test_call_bad_args),
	    cmocka_unit_test(test_call_reply),
	    cmocka_unit_test(test_call_refused),
	    cmocka_unit_test(test_call_timeout),
	    cmocka_unit_test(test_call_ids),
	    cmocka_unit_test(test_call_connection_lost),
	    cmocka_unit_test(test_call_cancel),
	    cmocka_unit_test(test_call_free),
	    cmocka_unit_test(test_call_daemon_away),
	    cmocka_unit_test(test_call_from_callback),
	    cmocka_unit_test(test_call_with_subscription),
	    cmocka_unit_test(test_call_reply_with_event_field),
	    /* Last: under ASan a use after free ends the whole run. */
	    cmocka_unit_test(test_call_cancel_other_on_reset),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, scratch_setup, scratch_teardown);
}
