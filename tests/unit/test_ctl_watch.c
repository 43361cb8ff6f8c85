/* ctl_watch (in ctl_client.c): the asynchronous subscription of daemons, on a real sd-event loop,
 * against a peer this test plays itself over real Unix sockets (ctl_peer.h) and answers between
 * turns of the loop: status first, events, hang-ups, refusals, overlong lines, absent daemons.
 * Every wait is bounded. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ctl.h"
#include "ctl_internal.h"

#include "ctl_peer.h"

#define RETRY_MS 50 /* ctl_watch's reconnection interval here */

/* ---- ctl_watch ---- */

/* fn of the watches here: keep every event (borrowed, so referenced) in the array userdata. */
static void on_event(json_t *ev, void *userdata)
{
	json_array_append(userdata, ev);
}

static void run_for(sd_event *e, int ms)
{
	int64_t end = mono_ms() + ms, now;

	while ((now = mono_ms()) < end)
		assert_true(sd_event_run(e, (uint64_t)(end - now) * 1000) >= 0);
}

/* Turn the loop until fn has been called n times in all, and not more. */
static void run_until_n(sd_event *e, json_t *got, size_t n)
{
	int64_t end = mono_ms() + WAIT_MS, now;

	while (json_array_size(got) < n && (now = mono_ms()) < end)
		assert_true(sd_event_run(e, (uint64_t)(end - now) * 1000) >= 0);
	assert_int_equal(json_array_size(got), n);
}

/* The watch's next connection, taken from the listening socket while the loop turns. */
static int watch_accept(sd_event *e, int lfd)
{
	int64_t end = mono_ms() + WAIT_MS;
	int fd;

	while ((fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) < 0) {
		assert_int_equal(errno, EAGAIN);
		assert_true(mono_ms() < end);
		assert_true(sd_event_run(e, 5000) >= 0);
	}
	return fd;
}

/* On a new connection the watch subscribes to events (a JSON array, as text), then asks for the
 * status; the requests are returned to be answered. */
static void watch_requests(sd_event *e, int fd, const char *events, json_t **ret_sub,
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

/* Accept the watch's connection and answer like a server whose status is {"state":state}. */
static int watch_serve(sd_event *e, int lfd, const char *events, const char *state)
{
	int fd = watch_accept(e, lfd);
	json_t *sub, *status;

	watch_requests(e, fd, events, &sub, &status);
	peer_answer(fd, sub, true, NULL);
	peer_answer(fd, status, true, json_pack("{s:s}", "state", state));
	json_decref(sub), json_decref(status);
	return fd;
}

static void expect_got(json_t *got, size_t i, json_t *want)
{
	json_t *ev = json_array_get(got, i);

	if (!json_equal(ev, want))
		fail_msg("fn call %zu: got %s", i, ev ? json_dumps(ev, JSON_COMPACT) : "nothing");
	json_decref(want);
}

static void expect_status(json_t *got, size_t i, const char *state)
{
	expect_got(got, i, json_pack("{s:i, s:s, s:s}", "v", 1, "event", "status", "state", state));
}

static void test_watch_new_bad_args(void **state)
{
	static const char *const tick[] = {"tick", NULL}, *const none[] = {NULL};
	static const char *const blank[] = {"", NULL};
	const char *path = in_dir("w.sock"), *many[CTL_EVENTS_MAX + 2];
	struct ctl_watch *w = (struct ctl_watch *)&w;
	json_t *got = json_array();
	char longpath[200];
	sd_event *e = NULL;

	(void)state;
	for (int i = 0; i <= CTL_EVENTS_MAX; i++)
		many[i] = "x";
	many[CTL_EVENTS_MAX + 1] = NULL;
	memset(longpath, 'l', sizeof(longpath) - 1);
	longpath[sizeof(longpath) - 1] = '\0';
	assert_int_equal(sd_event_new(&e), 0);
	assert_int_equal(ctl_watch_new(NULL, path, tick, 50, on_event, got, &w), -EINVAL);
	assert_int_equal(ctl_watch_new(e, NULL, tick, 50, on_event, got, &w), -EINVAL);
	assert_int_equal(ctl_watch_new(e, "", tick, 50, on_event, got, &w), -EINVAL);
	assert_int_equal(ctl_watch_new(e, longpath, tick, 50, on_event, got, &w), -ENAMETOOLONG);
	assert_int_equal(ctl_watch_new(e, path, NULL, 50, on_event, got, &w), -EINVAL);
	assert_int_equal(ctl_watch_new(e, path, none, 50, on_event, got, &w), -EINVAL);
	assert_int_equal(ctl_watch_new(e, path, blank, 50, on_event, got, &w), -EINVAL);
	assert_int_equal(ctl_watch_new(e, path, many, 50, on_event, got, &w), -EINVAL);
	assert_int_equal(ctl_watch_new(e, path, tick, 0, on_event, got, &w), -EINVAL);
	assert_int_equal(ctl_watch_new(e, path, tick, -1, on_event, got, &w), -EINVAL);
	assert_int_equal(ctl_watch_new(e, path, tick, 50, NULL, got, &w), -EINVAL);
	assert_int_equal(ctl_watch_new(e, path, tick, 50, on_event, got, NULL), -EINVAL);
	assert_ptr_equal(w, (struct ctl_watch *)&w);
	/* Nothing was left on the loop. */
	assert_int_equal(sd_event_run(e, 0), 0);
	assert_int_equal(json_array_size(got), 0);
	ctl_watch_free(NULL);
	json_decref(got);
	sd_event_unref(e);
}

/* Status first, then the pushed events; a hang-up is "disconnected" and a new connection
 * retry_ms later. */
static void test_watch_events(void **state)
{
	static const char *const tt[] = {"tick", "tock", NULL};
	const char *path = in_dir("watched.sock");
	int lfd = listen_at(path, 4), fd;
	struct ctl_watch *w = NULL;
	json_t *got = json_array();
	sd_event *e = NULL;
	int64_t t;

	(void)state;
	assert_int_equal(sd_event_new(&e), 0);
	assert_int_equal(ctl_watch_new(e, path, tt, RETRY_MS, on_event, got, &w), 0);
	/* ctl_watch_new() neither connects nor calls fn: that starts on the loop. */
	assert_int_equal(accept4(lfd, NULL, NULL, SOCK_CLOEXEC), -1);
	assert_int_equal(errno, EAGAIN);
	fd = watch_serve(e, lfd, "[\"tick\",\"tock\"]", "up");
	peer_says(fd, "{\"v\":1,\"event\":\"tick\",\"n\":1}\n");
	/* Lines that are neither events nor answers to its requests are skipped, and the
	 * connection stays. */
	peer_says(fd, "junk\n\n[1]\n{\"v\":1,\"ok\":false,\"error\":\"no\"}\n"
		      "{\"v\":1,\"ok\":true,\"id\":7}\n{\"v\":1,\"event\":5}\n\"\xff\"\n");
	/* An event cut across writes. */
	peer_says(fd, "{\"v\":1,\"event\":\"to");
	run_for(e, 20);
	peer_says(fd, "ck\",\"n\":2,\"d\":{\"k\":[1]}}\n");
	run_until_n(e, got, 3);
	expect_status(got, 0, "up");
	expect_got(got, 1, json_pack("{s:i, s:s, s:i}", "v", 1, "event", "tick", "n", 1));
	expect_got(
	    got, 2,
	    json_pack("{s:i, s:s, s:i, s:{s:[i]}}", "v", 1, "event", "tock", "n", 2, "d", "k", 1));
	run_for(e, 20);
	assert_int_equal(json_array_size(got), 3);
	peer_heard_nothing(fd);

	close(fd);
	run_until_n(e, got, 4);
	t = mono_ms();
	expect_got(got, 3, json_pack("{s:s}", "event", "disconnected"));
	fd = watch_serve(e, lfd, "[\"tick\",\"tock\"]", "again");
	assert_true(mono_ms() - t >= RETRY_MS - 2);
	run_until_n(e, got, 5);
	expect_status(got, 4, "again");

	/* Freeing the watch hangs up, and calls fn no more. */
	ctl_watch_free(w);
	peer_hung_up(fd, NULL);
	run_for(e, 20);
	assert_int_equal(json_array_size(got), 5);
	close(fd);
	close(lfd);
	json_decref(got);
	sd_event_unref(e);
}

/* A daemon that is not there, crashed, or too busy to take the connection is retried quietly
 * every retry_ms. */
static void test_watch_retries(void **state)
{
	static const char *const tick[] = {"tick", NULL};
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	const char *path = in_dir("later.sock");
	struct ctl_watch *w = NULL;
	json_t *got = json_array(), *sub, *status;
	int lfd, fd, stale, filler;
	sd_event *e = NULL;
	int64_t t;

	(void)state;
	assert_int_equal(sd_event_new(&e), 0);
	assert_int_equal(ctl_watch_new(e, path, tick, RETRY_MS, on_event, got, &w), 0);
	run_for(e, 3 * RETRY_MS);
	/* A socket nobody listens on, as a crashed daemon leaves. */
	stale = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	assert_int_equal(bind(stale, (struct sockaddr *)&sa, sizeof(sa)), 0);
	run_for(e, 2 * RETRY_MS);
	close(stale);
	/* A full backlog: the watch's non-blocking connect fails with EAGAIN. */
	lfd = listen_at(path, 0);
	filler = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	assert_int_equal(connect(filler, (struct sockaddr *)&sa, sizeof(sa)), 0);
	run_for(e, 2 * RETRY_MS);
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	assert_true(fd >= 0);
	close(fd);
	close(filler);
	assert_int_equal(accept4(lfd, NULL, NULL, SOCK_CLOEXEC), -1);
	assert_int_equal(json_array_size(got), 0);

	t = mono_ms();
	fd = watch_accept(e, lfd);
	assert_true(mono_ms() - t < RETRY_MS + 250);
	watch_requests(e, fd, "[\"tick\"]", &sub, &status);
	json_decref(sub), json_decref(status);
	/* A hang-up before the subscription was answered: no "disconnected" (fn never heard it
	 * was connected), and the watch comes back. */
	close(fd);
	fd = watch_serve(e, lfd, "[\"tick\"]", "up");
	run_until_n(e, got, 1);
	expect_status(got, 0, "up");
	ctl_watch_free(w);
	close(fd);
	close(lfd);
	json_decref(got);
	sd_event_unref(e);
}

/* A line of CTL_LINE_MAX - 1 bytes is an event; one without an end in CTL_LINE_MAX resets the
 * connection, and the watch comes back. */
static void test_watch_long_lines(void **state)
{
	static const char *const big[] = {"big", NULL};
	static const char head[] = "{\"v\":1,\"event\":\"big\",\"pad\":\"";
	const char *path = in_dir("long.sock");
	int lfd = listen_at(path, 4), fd;
	char *line = malloc(CTL_LINE_MAX);
	struct ctl_watch *w = NULL;
	json_t *got = json_array();
	sd_event *e = NULL;

	(void)state;
	assert_non_null(line);
	assert_int_equal(sd_event_new(&e), 0);
	assert_int_equal(ctl_watch_new(e, path, big, RETRY_MS, on_event, got, &w), 0);
	fd = watch_serve(e, lfd, "[\"big\"]", "up");
	memset(line, 'p', CTL_LINE_MAX);
	memcpy(line, head, sizeof(head) - 1);
	memcpy(line + CTL_LINE_MAX - 3, "\"}\n", 3);
	peer_send(fd, line, CTL_LINE_MAX);
	run_until_n(e, got, 2);
	expect_status(got, 0, "up");
	assert_int_equal(json_string_length(json_object_get(json_array_get(got, 1), "pad")),
			 CTL_LINE_MAX - 3 - (sizeof(head) - 1));

	memset(line, 'x', CTL_LINE_MAX);
	peer_send(fd, line, CTL_LINE_MAX);
	run_until_n(e, got, 3);
	expect_got(got, 2, json_pack("{s:s}", "event", "disconnected"));
	peer_hung_up(fd, NULL);
	close(fd);
	fd = watch_serve(e, lfd, "[\"big\"]", "back");
	run_until_n(e, got, 4);
	expect_status(got, 3, "back");
	ctl_watch_free(w);
	close(fd);
	close(lfd);
	json_decref(got);
	sd_event_unref(e);
	free(line);
}

/* A peer that refuses the subscription and the status: neither refusal reaches fn, nothing
 * breaks, and after a hang-up the watch subscribes again. */
static void test_watch_refused(void **state)
{
	static const char *const tick[] = {"tick", NULL};
	const char *path = in_dir("refuse.sock");
	int lfd = listen_at(path, 4), fd;
	json_t *got = json_array(), *sub, *status;
	struct ctl_watch *w = NULL;
	sd_event *e = NULL;

	(void)state;
	assert_int_equal(sd_event_new(&e), 0);
	assert_int_equal(ctl_watch_new(e, path, tick, RETRY_MS, on_event, got, &w), 0);
	fd = watch_accept(e, lfd);
	watch_requests(e, fd, "[\"tick\"]", &sub, &status);
	peer_answer(fd, sub, false, json_pack("{s:s}", "error", "unknown verb 'subscribe'"));
	peer_answer(fd, status, false, json_pack("{s:s}", "error", "unknown verb 'status'"));
	json_decref(sub), json_decref(status);
	run_for(e, 2 * RETRY_MS);
	assert_int_equal(json_array_size(got), 0);
	close(fd);
	fd = watch_serve(e, lfd, "[\"tick\"]", "up");
	run_until_n(e, got, 1);
	expect_status(got, 0, "up");
	close(fd);
	run_until_n(e, got, 2);
	expect_got(got, 1, json_pack("{s:s}", "event", "disconnected"));
	fd = watch_accept(e, lfd);
	watch_requests(e, fd, "[\"tick\"]", &sub, &status);
	peer_answer(fd, sub, false, json_pack("{s:s}", "error", "no"));
	peer_answer(fd, status, true, json_pack("{s:s}", "state", "refused"));
	json_decref(sub), json_decref(status);
	/* Subscription refused, status answered: fn hears nothing, not even the status (without a
	 * subscription it would go stale unnoticed); the watch hangs up and asks again later. */
	peer_hung_up(fd, e);
	close(fd);
	fd = watch_serve(e, lfd, "[\"tick\"]", "back");
	run_until_n(e, got, 3);
	expect_status(got, 2, "back");
	assert_int_equal(json_array_size(got), 3);
	ctl_watch_free(w);
	close(fd);
	close(lfd);
	json_decref(got);
	sd_event_unref(e);
}

/* ctl_watch_free() at every stage: before the loop ran, waiting to retry, connected. */
static void test_watch_free(void **state)
{
	static const char *const tick[] = {"tick", NULL};
	const char *path = in_dir("free.sock");
	int lfd = listen_at(path, 4), fd;
	struct ctl_watch *w = NULL;
	json_t *got = json_array();
	sd_event *e = NULL;

	(void)state;
	assert_int_equal(sd_event_new(&e), 0);
	assert_int_equal(ctl_watch_new(e, path, tick, RETRY_MS, on_event, got, &w), 0);
	ctl_watch_free(w);
	assert_int_equal(sd_event_run(e, 0), 0);
	assert_int_equal(accept4(lfd, NULL, NULL, SOCK_CLOEXEC), -1);

	assert_int_equal(ctl_watch_new(e, in_dir("absent.sock"), tick, RETRY_MS, on_event, got, &w),
			 0);
	run_for(e, RETRY_MS / 2);
	ctl_watch_free(w);
	assert_int_equal(sd_event_run(e, 0), 0);

	/* Connected, with a half-sent event pending: the peer sees the hang-up, fn nothing. */
	assert_int_equal(ctl_watch_new(e, path, tick, RETRY_MS, on_event, got, &w), 0);
	fd = watch_serve(e, lfd, "[\"tick\"]", "up");
	run_until_n(e, got, 1);
	peer_says(fd, "{\"v\":1,\"event\":\"ti");
	run_for(e, 20);
	ctl_watch_free(w);
	peer_hung_up(fd, NULL);
	assert_int_equal(sd_event_run(e, 0), 0);
	assert_int_equal(json_array_size(got), 1);
	close(fd);
	close(lfd);
	json_decref(got);
	sd_event_unref(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_watch_new_bad_args), cmocka_unit_test(test_watch_events),
	    cmocka_unit_test(test_watch_retries),      cmocka_unit_test(test_watch_long_lines),
	    cmocka_unit_test(test_watch_refused),      cmocka_unit_test(test_watch_free),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, scratch_setup, scratch_teardown);
}
