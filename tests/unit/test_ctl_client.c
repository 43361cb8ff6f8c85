/* ctl_client: the blocking client and ctl_reply_error against a peer this test plays itself over
 * real Unix sockets (ctl_peer.h), so that it can send the bytes the real server never would:
 * garbage, stale ids, overlong lines, silence, a hang-up. The peer writes its lines before the
 * call that reads them, or from a forked child while the call waits. The asynchronous peer of the
 * daemons is tested in test_ctl_peer.c. Every wait is bounded. */
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

/* ---- the blocking client ---- */

static json_t *reply_of(struct ctl_client *c, const char *verb, json_t *args)
{
	json_t *reply = NULL;

	assert_int_equal(ctl_client_call(c, verb, args, WAIT_MS, &reply), 0);
	assert_non_null(reply);
	return reply;
}

/* The call's reply is the line the peer marked with "which". */
static void expect_reply(struct ctl_client *c, const char *which)
{
	json_t *reply = reply_of(c, "x", NULL);

	assert_non_null(json_string_value(json_object_get(reply, "which")));
	assert_string_equal(json_string_value(json_object_get(reply, "which")), which);
	json_decref(reply);
}

/* The next event is {"v":1,"event":"e","n":n}, exactly as the peer sent it. */
static void expect_event(struct ctl_client *c, int n)
{
	json_t *ev = NULL, *want = json_pack("{s:i, s:s, s:i}", "v", 1, "event", "e", "n", n);

	assert_int_equal(ctl_client_next_event(c, WAIT_MS, &ev), 0);
	if (!json_equal(ev, want))
		fail_msg("event %d: got %s", n, json_dumps(ev, JSON_COMPACT));
	json_decref(ev);
	json_decref(want);
}

static void expect_no_event(struct ctl_client *c)
{
	json_t *ev = (json_t *)&ev;

	assert_int_equal(ctl_client_next_event(c, 0, &ev), -ETIMEDOUT);
	assert_ptr_equal(ev, (json_t *)&ev);
}

static void test_connect_errors(void **state)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct ctl_client *c = (struct ctl_client *)&c;
	char longpath[200], edge[sizeof(sa.sun_path) + 1];
	size_t n;
	int fd;

	(void)state;
	assert_int_equal(ctl_client_connect(in_dir("missing.sock"), &c), -ENOENT);
	assert_int_equal(ctl_client_connect(in_dir("nodir/x.sock"), &c), -ENOENT);
	fd = open(in_dir("file"), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(ctl_client_connect(in_dir("file"), &c), -ECONNREFUSED);
	assert_int_equal(ctl_client_connect(in_dir("."), &c), -ECONNREFUSED);
	/* A socket nobody listens on: what a crashed daemon leaves. */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", in_dir("stale.sock"));
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	assert_int_equal(ctl_client_connect(in_dir("stale.sock"), &c), -ECONNREFUSED);
	memset(longpath, 'l', sizeof(longpath) - 1);
	longpath[sizeof(longpath) - 1] = '\0';
	assert_int_equal(ctl_client_connect(longpath, &c), -ENAMETOOLONG);
	assert_int_equal(ctl_client_connect("", &c), -EINVAL);
	assert_int_equal(ctl_client_connect(NULL, &c), -EINVAL);
	assert_int_equal(ctl_client_connect(in_dir("file"), NULL), -EINVAL);

	/* sun_path holds 107 bytes and the NUL: 108 are too many, 107 connect. */
	n = (size_t)snprintf(edge, sizeof(edge), "%s", in_dir(""));
	memset(edge + n, 'e', sizeof(edge) - 1 - n);
	edge[sizeof(edge) - 1] = '\0';
	assert_int_equal(ctl_client_connect(edge, &c), -ENAMETOOLONG);
	assert_ptr_equal(c, (struct ctl_client *)&c);
	edge[sizeof(edge) - 2] = '\0';
	fd = listen_at(edge, 1);
	assert_int_equal(ctl_client_connect(edge, &c), 0);
	ctl_client_free(c);
	close(fd);
}

static void test_reply_error(void **state)
{
	json_t *ok = json_pack("{s:i, s:b}", "v", 1, "ok", 1);
	json_t *bad = json_pack("{s:i, s:b, s:s}", "v", 1, "ok", 0, "error", "no");
	json_t *bare = json_pack("{s:b}", "ok", 0), *none = json_object(), *arr = json_array();
	json_t *ok_why = json_pack("{s:b, s:s}", "ok", 1, "error", "ignored");
	json_t *ok_int = json_pack("{s:i}", "ok", 1), *ok_str = json_pack("{s:s}", "ok", "true");
	json_t *why_int = json_pack("{s:b, s:i}", "ok", 0, "error", 5);

	(void)state;
	assert_null(ctl_reply_error(ok));
	assert_null(ctl_reply_error(ok_why));
	assert_string_equal(ctl_reply_error(bad), "no");
	assert_string_equal(ctl_reply_error(bare), "unknown error");
	assert_string_equal(ctl_reply_error(why_int), "unknown error");
	assert_string_equal(ctl_reply_error(none), "malformed reply");
	assert_string_equal(ctl_reply_error(arr), "malformed reply");
	assert_string_equal(ctl_reply_error(ok_int), "malformed reply");
	assert_string_equal(ctl_reply_error(ok_str), "malformed reply");
	assert_string_equal(ctl_reply_error(NULL), "malformed reply");
	json_decref(ok), json_decref(bad), json_decref(bare), json_decref(none), json_decref(arr);
	json_decref(ok_why), json_decref(ok_int), json_decref(ok_str), json_decref(why_int);
}

/* What goes on the wire, and the reply coming back whole. */
static void test_call_request(void **state)
{
	json_t *args =
	    json_pack("{s:s, s:i, s:s, s:s}", "k", "val", "v", 9, "verb", "other", "id", "mine");
	json_t *copy = json_deep_copy(args), *reply = NULL, *req, *want;
	int fd;
	struct ctl_client *c = pair(&fd);

	(void)state;
	peer_says(fd, "{\"v\":1,\"ok\":true,\"id\":1,\"n\":[1,{}]}\n");
	assert_int_equal(ctl_client_call(c, "echo", args, WAIT_MS, &reply), 0);
	want = json_pack("{s:i, s:b, s:i, s:[i,{}]}", "v", 1, "ok", 1, "id", 1, "n", 1);
	assert_true(json_equal(reply, want));
	json_decref(reply), json_decref(want);
	/* args are borrowed, and cannot override the protocol's own fields. */
	assert_true(json_equal(args, copy));
	assert_int_equal(args->refcount, 1);
	req = peer_line(fd, NULL);
	want = json_pack("{s:i, s:s, s:s, s:i}", "v", 1, "verb", "echo", "k", "val", "id", 1);
	assert_true(json_equal(req, want));
	json_decref(req), json_decref(want);

	/* Ids count up; no args is fine; with timeout 0 a reply already there is still taken. */
	peer_says(fd, "{\"v\":1,\"ok\":true,\"id\":2}\n");
	reply = NULL;
	assert_int_equal(ctl_client_call(c, "status", NULL, 0, &reply), 0);
	assert_int_equal(json_integer_value(json_object_get(reply, "id")), 2);
	json_decref(reply);
	req = peer_line(fd, NULL);
	want = json_pack("{s:i, s:s, s:i}", "v", 1, "verb", "status", "id", 2);
	assert_true(json_equal(req, want));
	json_decref(req), json_decref(want);
	json_decref(args), json_decref(copy);
	ctl_client_free(c);
	ctl_client_free(NULL);
	close(fd);
}

/* Refused before anything is sent, and without using up an id. */
static void test_call_bad_args(void **state)
{
	json_t *reply = (json_t *)&reply, *args;
	char *pad = calloc(1, CTL_LINE_MAX);
	int fd;
	struct ctl_client *c = pair(&fd);

	(void)state;
	assert_int_equal(ctl_client_call(NULL, "x", NULL, WAIT_MS, &reply), -EINVAL);
	assert_int_equal(ctl_client_call(c, NULL, NULL, WAIT_MS, &reply), -EINVAL);
	assert_int_equal(ctl_client_call(c, "x", NULL, WAIT_MS, NULL), -EINVAL);
	/* Arguments that are not an object, or a request too long for one line. */
	args = json_array();
	assert_int_equal(ctl_client_call(c, "x", args, WAIT_MS, &reply), -EINVAL);
	json_decref(args);
	assert_non_null(pad);
	memset(pad, 'q', CTL_LINE_MAX - 1);
	args = json_pack("{s:s}", "arg", pad);
	assert_int_equal(ctl_client_call(c, "x", args, WAIT_MS, &reply), -EMSGSIZE);
	json_decref(args);
	free(pad);
	assert_ptr_equal(reply, (json_t *)&reply);
	assert_int_equal(ctl_client_next_event(NULL, 0, &reply), -EINVAL);
	assert_int_equal(ctl_client_next_event(c, 0, NULL), -EINVAL);
	assert_ptr_equal(reply, (json_t *)&reply);
	peer_heard_nothing(fd);
	peer_says(fd, "{\"v\":1,\"ok\":true,\"id\":1,\"which\":\"first\"}\n");
	expect_reply(c, "first");
	peer_heard(fd, "x", 1);
	ctl_client_free(c);
	close(fd);
}

/* What the peer sends before (if good) the real reply {"id":1,"which":"good"}: what the call
 * returns, whose reply, and how many events it holds. None of these loses the stream. */
static void test_call_replies(void **state)
{
	static const char good[] = "{\"v\":1,\"ok\":true,\"id\":1,\"which\":\"good\"}\n";
	static const struct {
		const char *first;
		bool good;
		int r;
		const char *which;
		int held;
	} cases[] = {
	    /* Not one JSON object: reported at once. */
	    {"not json\n", false, -EBADMSG, NULL, 0},
	    {"\n", false, -EBADMSG, NULL, 0},
	    {"\r\n", false, -EBADMSG, NULL, 0},
	    {"[1,2]\n", false, -EBADMSG, NULL, 0},
	    {"[{\"v\":1,\"ok\":true,\"id\":1}]\n", false, -EBADMSG, NULL, 0},
	    {"42\n", false, -EBADMSG, NULL, 0},
	    {"\"ok\"\n", false, -EBADMSG, NULL, 0},
	    {"null\n", false, -EBADMSG, NULL, 0},
	    {"{\"v\":1,\"ok\":true,\"id\":1\n", false, -EBADMSG, NULL, 0},
	    {"{\"v\":1,\"ok\":true,\"id\":1} {}\n", false, -EBADMSG, NULL, 0},
	    {"{\"v\":1,\"ok\":true,\"ok\":true,\"id\":1}\n", false, -EBADMSG, NULL, 0},
	    {"{\"v\":1,\"ok\":true,\"id\":1,\"s\":\"\xff\"}\n", false, -EBADMSG, NULL, 0},
	    {"{\"v\":1,\"ok\":true,\"id\":1,\"s\":\"a\\u0000b\"}\n", false, -EBADMSG, NULL, 0},
	    /* Taken as the reply: its "ok" and "v" are the caller's business. */
	    {"{\"v\":1,\"ok\":true,\"id\":1,\"which\":\"case\"}\n", true, 0, "case", 0},
	    {"{\"v\":1,\"ok\":false,\"error\":\"no\",\"id\":1,\"which\":\"case\"}\n", true, 0,
	     "case", 0},
	    {"{\"ok\":true,\"id\":1,\"which\":\"case\"}\n", true, 0, "case", 0},
	    {"{\"v\":2,\"ok\":true,\"id\":1,\"which\":\"case\"}\n", true, 0, "case", 0},
	    {"\t{ \"id\" : 1 , \"which\" : \"case\" }\r\n", true, 0, "case", 0},
	    /* No id: the refusal of a line the peer could not read. */
	    {"{\"v\":1,\"ok\":false,\"error\":\"invalid JSON\",\"which\":\"case\"}\n", true, 0,
	     "case", 0},
	    {"{\"which\":\"case\"}\n", true, 0, "case", 0},
	    /* An "event" that is not a string makes no event. */
	    {"{\"v\":1,\"event\":5,\"which\":\"case\"}\n", true, 0, "case", 0},
	    /* Another id: a late reply to an earlier call, skipped. */
	    {"{\"v\":1,\"ok\":true,\"id\":2,\"which\":\"case\"}\n", true, 0, "good", 0},
	    {"{\"v\":1,\"ok\":true,\"id\":0,\"which\":\"case\"}\n", true, 0, "good", 0},
	    {"{\"v\":1,\"ok\":true,\"id\":-1,\"which\":\"case\"}\n", true, 0, "good", 0},
	    {"{\"v\":1,\"ok\":true,\"id\":\"1\",\"which\":\"case\"}\n", true, 0, "good", 0},
	    {"{\"v\":1,\"ok\":true,\"id\":null,\"which\":\"case\"}\n", true, 0, "good", 0},
	    {"{\"v\":1,\"ok\":true,\"id\":1.0,\"which\":\"case\"}\n", true, 0, "good", 0},
	    {"{\"v\":1,\"ok\":true,\"id\":[1],\"which\":\"case\"}\n", true, 0, "good", 0},
	    {"{\"v\":1,\"ok\":true,\"id\":{\"id\":1},\"which\":\"case\"}\n", true, 0, "good", 0},
	    {"{\"v\":1,\"ok\":true,\"id\":true,\"which\":\"case\"}\n", true, 0, "good", 0},
	    {"{\"id\":7}\n{\"id\":8}\n{\"id\":9}\n", true, 0, "good", 0},
	    /* An event is held, even one carrying the call's id. */
	    {"{\"v\":1,\"event\":\"e\"}\n", true, 0, "good", 1},
	    {"{\"v\":1,\"event\":\"\",\"id\":1,\"which\":\"case\"}\n", true, 0, "good", 1},
	    {"{\"event\":\"e\"}\n{\"id\":5}\n{\"event\":\"f\"}\n", true, 0, "good", 2},
	};
	json_t *reply, *ev;
	int fd, r, held;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ctl_client *c = pair(&fd);

		peer_says(fd, cases[i].first);
		if (cases[i].good)
			peer_says(fd, good);
		reply = (json_t *)&reply;
		r = ctl_client_call(c, "x", NULL, WAIT_MS, &reply);
		if (r != cases[i].r)
			fail_msg("case %zu (%s): got %d, want %d", i, cases[i].first, r,
				 cases[i].r);
		if (r == 0) {
			const char *which = json_string_value(json_object_get(reply, "which"));

			if (which == NULL || strcmp(which, cases[i].which) != 0)
				fail_msg("case %zu: got reply %s", i, json_dumps(reply, 0));
			json_decref(reply);
		} else {
			assert_ptr_equal(reply, (json_t *)&reply);
		}
		peer_heard(fd, "x", 1);
		/* The stream is still in step: a left-over id 1 is skipped as stale. */
		peer_says(fd, "{\"v\":1,\"ok\":true,\"id\":2,\"which\":\"second\"}\n");
		expect_reply(c, "second");
		peer_heard(fd, "x", 2);
		for (held = 0; ctl_client_next_event(c, 0, &ev) == 0; held++)
			json_decref(ev);
		if (held != cases[i].held)
			fail_msg("case %zu: %d events held, want %d", i, held, cases[i].held);
		ctl_client_free(c);
		close(fd);
	}
}

/* A line of CTL_LINE_MAX - 1 bytes and its newline is read; one byte more cannot be, and the
 * stream is lost for good. */
static void test_call_long_lines(void **state)
{
	static const char head1[] = "{\"v\":1,\"ok\":true,\"id\":1,\"pad\":\"";
	static const char head2[] = "{\"v\":1,\"ok\":true,\"id\":2,\"pad\":\"";
	char *line = malloc(CTL_LINE_MAX + 1);
	json_t *reply;
	int fd;
	struct ctl_client *c = pair(&fd);
	pid_t pid;

	(void)state;
	assert_non_null(line);
	memset(line, 'p', CTL_LINE_MAX + 1);
	memcpy(line, head1, sizeof(head1) - 1);
	memcpy(line + CTL_LINE_MAX - 3, "\"}\n", 3);
	pid = peer_send_later(fd, line, CTL_LINE_MAX);
	reply = reply_of(c, "x", NULL);
	peer_reap(pid);
	assert_int_equal(json_string_length(json_object_get(reply, "pad")),
			 CTL_LINE_MAX - 3 - (sizeof(head1) - 1));
	json_decref(reply);
	peer_heard(fd, "x", 1);

	memset(line, 'p', CTL_LINE_MAX + 1);
	memcpy(line, head2, sizeof(head2) - 1);
	memcpy(line + CTL_LINE_MAX - 2, "\"}\n", 3);
	pid = peer_send_later(fd, line, CTL_LINE_MAX + 1);
	reply = (json_t *)&reply;
	assert_int_equal(ctl_client_call(c, "x", NULL, WAIT_MS, &reply), -EBADMSG);
	peer_reap(pid);
	peer_heard(fd, "x", 2);
	/* Sticky: nothing more is sent or read, though a good line is waiting. */
	peer_says(fd, "{\"v\":1,\"ok\":true,\"id\":3}\n{\"v\":1,\"event\":\"e\"}\n");
	assert_int_equal(ctl_client_call(c, "x", NULL, WAIT_MS, &reply), -EBADMSG);
	assert_int_equal(ctl_client_next_event(c, WAIT_MS, &reply), -EBADMSG);
	assert_ptr_equal(reply, (json_t *)&reply);
	peer_heard_nothing(fd);
	ctl_client_free(c);
	close(fd);
	free(line);
}

/* Every way the peer can go away ends the call with -ECONNRESET, and every later one too. */
static void test_call_peer_hangs_up(void **state)
{
	json_t *reply = (json_t *)&reply;
	struct ctl_client *c;
	int64_t t;
	pid_t pid;
	int fd;

	(void)state;
	/* Shut before replying: the request went, no reply will. */
	c = pair(&fd);
	assert_int_equal(shutdown(fd, SHUT_WR), 0);
	assert_int_equal(ctl_client_call(c, "x", NULL, WAIT_MS, &reply), -ECONNRESET);
	peer_heard(fd, "x", 1);
	assert_int_equal(ctl_client_call(c, "x", NULL, WAIT_MS, &reply), -ECONNRESET);
	assert_int_equal(ctl_client_next_event(c, WAIT_MS, &reply), -ECONNRESET);
	assert_ptr_equal(reply, (json_t *)&reply);
	peer_heard_nothing(fd);
	ctl_client_free(c);
	close(fd);

	/* Half a line, then the end: no newline, no reply. */
	c = pair(&fd);
	peer_says(fd, "{\"v\":1,\"ok\":true,\"id\":1}");
	assert_int_equal(shutdown(fd, SHUT_WR), 0);
	assert_int_equal(ctl_client_call(c, "x", NULL, WAIT_MS, &reply), -ECONNRESET);
	assert_int_equal(ctl_client_call(c, "x", NULL, WAIT_MS, &reply), -ECONNRESET);
	peer_heard(fd, "x", 1);
	peer_heard_nothing(fd);
	ctl_client_free(c);
	close(fd);

	/* Gone before the request: the send fails (EPIPE) and is reported the same way. */
	c = pair(&fd);
	close(fd);
	assert_int_equal(ctl_client_call(c, "x", NULL, WAIT_MS, &reply), -ECONNRESET);
	assert_int_equal(ctl_client_call(c, "x", NULL, WAIT_MS, &reply), -ECONNRESET);
	assert_ptr_equal(reply, (json_t *)&reply);
	ctl_client_free(c);

	/* Last words, then gone (the server's "too many connections"): the call still reads
	 * them, though the send failed, and the next call fails. */
	c = pair(&fd);
	peer_says(fd, "{\"v\":1,\"ok\":false,\"error\":\"too many connections\"}\n");
	close(fd);
	reply = reply_of(c, "x", NULL);
	assert_string_equal(ctl_reply_error(reply), "too many connections");
	json_decref(reply);
	reply = (json_t *)&reply;
	assert_int_equal(ctl_client_call(c, "x", NULL, WAIT_MS, &reply), -ECONNRESET);
	ctl_client_free(c);

	/* Shutting while the call waits wakes it at once. */
	c = pair(&fd);
	pid = peer_later(fd, 30, NULL, true);
	t = mono_ms();
	assert_int_equal(ctl_client_call(c, "x", NULL, WAIT_MS, &reply), -ECONNRESET);
	assert_true(mono_ms() - t < WAIT_MS / 2);
	peer_reap(pid);
	peer_heard(fd, "x", 1);
	ctl_client_free(c);
	close(fd);

	/* Dying with the request unread resets the connection. */
	c = pair(&fd);
	pid = peer_later(fd, 30, NULL, false);
	close(fd); /* the child holds the last reference */
	t = mono_ms();
	assert_int_equal(ctl_client_call(c, "x", NULL, WAIT_MS, &reply), -ECONNRESET);
	assert_true(mono_ms() - t < WAIT_MS / 2);
	peer_reap(pid);
	assert_int_equal(ctl_client_call(c, "x", NULL, WAIT_MS, &reply), -ECONNRESET);
	assert_ptr_equal(reply, (json_t *)&reply);
	ctl_client_free(c);
}

static void test_call_timeout(void **state)
{
	static const char *const pieces[] = {"{\"v\":1,\"ok\":tr", "ue,\"id\":3}\n", NULL};
	static const char *const noise[] = {"{\"v\":1,\"event\":\"e\",\"n\":0}\n",
					    "{\"v\":1,\"ok\":true,\"id\":1}\n",
					    "{\"v\":1,\"event\":\"e\",\"n\":1}\n",
					    "{\"v\":1,\"ok\":true,\"id\":2}\n",
					    "{\"v\":1,\"event\":\"e\",\"n\":2}\n",
					    "{\"v\":1,\"ok\":true,\"id\":3}\n",
					    "{\"v\":1,\"event\":\"e\",\"n\":3}\n",
					    "{\"v\":1,\"ok\":true,\"id\":1}\n",
					    "{\"v\":1,\"event\":\"e\",\"n\":4}\n",
					    "{\"v\":1,\"ok\":true,\"id\":2}\n",
					    "{\"v\":1,\"event\":\"e\",\"n\":5}\n",
					    "{\"v\":1,\"ok\":true,\"id\":3}\n",
					    NULL};
	json_t *reply = (json_t *)&reply;
	int64_t t, took;
	pid_t pid;
	int fd;
	struct ctl_client *c = pair(&fd);

	(void)state;
	/* Silence: -ETIMEDOUT when the time is up, not before, not much after. */
	t = mono_ms();
	assert_int_equal(ctl_client_call(c, "x", NULL, 100, &reply), -ETIMEDOUT);
	took = mono_ms() - t;
	assert_true(took >= 100 && took < 600);
	assert_ptr_equal(reply, (json_t *)&reply);
	peer_heard(fd, "x", 1);
	/* Not sticky, and the late reply is not taken for the next call's. */
	peer_says(fd, "{\"v\":1,\"ok\":true,\"id\":1,\"which\":\"late\"}\n"
		      "{\"v\":1,\"ok\":true,\"id\":2,\"which\":\"second\"}\n");
	expect_reply(c, "second");
	peer_heard(fd, "x", 2);

	/* A reply in pieces that come while the call waits. */
	pid = peer_later(fd, 20, pieces, false);
	reply = reply_of(c, "x", NULL);
	assert_int_equal(json_integer_value(json_object_get(reply, "id")), 3);
	json_decref(reply);
	peer_reap(pid);
	peer_heard(fd, "x", 3);

	/* One deadline for the whole call: a stream of other lines does not extend it. */
	pid = peer_later(fd, 15, noise, false);
	reply = (json_t *)&reply;
	t = mono_ms();
	assert_int_equal(ctl_client_call(c, "x", NULL, 60, &reply), -ETIMEDOUT);
	took = mono_ms() - t;
	assert_true(took >= 60 && took < 200); /* extended, it would last past 250 */
	peer_reap(pid);
	peer_heard(fd, "x", 4);
	/* The events are all there, in order, whether the call held them or not. */
	for (int n = 0; n < 6; n++)
		expect_event(c, n);
	expect_no_event(c);

	/* A line cut by a timeout is kept: the next call reads its end. */
	peer_says(fd, "{\"v\":1,\"ok\":true,\"id\":");
	assert_int_equal(ctl_client_call(c, "x", NULL, 50, &reply), -ETIMEDOUT);
	assert_ptr_equal(reply, (json_t *)&reply);
	peer_heard(fd, "x", 5);
	peer_says(fd, "6,\"which\":\"joined\"}\n");
	expect_reply(c, "joined");
	peer_heard(fd, "x", 6);

	/* ctl_client_next_event() waits as long as told. */
	t = mono_ms();
	assert_int_equal(ctl_client_next_event(c, 50, &reply), -ETIMEDOUT);
	took = mono_ms() - t;
	assert_true(took >= 50 && took < 550);
	assert_ptr_equal(reply, (json_t *)&reply);
	ctl_client_free(c);
	close(fd);
}

static int inq(int fd)
{
	int n = -1;

	assert_int_equal(ioctl(fd, FIONREAD, &n), 0);
	return n;
}

/* A peer that stops reading. A request that cannot go at all times out like any other; one that
 * goes in part would leave half a line on the wire, so the client hangs up for good. */
static void test_call_peer_not_reading(void **state)
{
	enum { PAD = 60000 }; /* more than one skb of a Unix stream, less than a line */
	json_t *reply = (json_t *)&reply, *args;
	char *pad = malloc(PAD + 1), buf[4096];
	int fd, before, sent = 0;
	struct ctl_client *c = pair(&fd);
	size_t head = 0;
	ssize_t n;

	(void)state;
	assert_non_null(pad);
	memset(pad, 'q', PAD);
	pad[PAD] = '\0';
	/* Fill the socket with small requests until one does not go at all. */
	for (;;) {
		before = inq(fd);
		assert_int_equal(ctl_client_call(c, "small", NULL, 0, &reply), -ETIMEDOUT);
		if (inq(fd) == before)
			break;
		assert_true(++sent < 100000);
	}
	assert_true(sent > 2);
	/* Room for the head of a big request, not for all of it. */
	peer_heard(fd, "small", 1);
	peer_heard(fd, "small", 2);
	args = json_pack("{s:s}", "pad", pad);
	assert_int_equal(ctl_client_call(c, "big", args, 0, &reply), -ETIMEDOUT);
	json_decref(args);
	assert_int_equal(ctl_client_call(c, "small", NULL, WAIT_MS, &reply), -ECONNRESET);
	assert_int_equal(ctl_client_next_event(c, WAIT_MS, &reply), -ECONNRESET);
	assert_ptr_equal(reply, (json_t *)&reply);
	/* The peer reads the small requests whole, the head of the big one, then the end. */
	for (int id = 3; id <= sent; id++)
		peer_heard(fd, "small", id);
	for (;;) {
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n == 0)
			break;
		if (n < 0) {
			assert_int_equal(errno, EAGAIN);
			assert_int_equal(
			    poll(&(struct pollfd){.fd = fd, .events = POLLIN}, 1, WAIT_MS), 1);
			continue;
		}
		if (head == 0)
			assert_non_null(
			    memmem(buf, (size_t)n < 32 ? (size_t)n : 32, "\"verb\":\"big\"", 11));
		assert_null(memchr(buf, '\n', (size_t)n));
		head += (size_t)n;
	}
	assert_true(head > sizeof(buf) && head < PAD);
	ctl_client_free(c);
	close(fd);
	free(pad);
}

/* ---- events ---- */

/* Events pushed while a call waits are held, and come out oldest first, across calls. */
static void test_events_during_call(void **state)
{
	static const char *const later[] = {"{\"v\":1,\"event\":\"e\",\"n\":7}\n", NULL};
	json_t *reply;
	pid_t pid;
	int fd;
	struct ctl_client *c = pair(&fd);

	(void)state;
	peer_says(fd, "{\"v\":1,\"event\":\"e\",\"n\":0}\n{\"v\":1,\"event\":\"e\",\"n\":1}\n"
		      "{\"v\":1,\"ok\":true,\"id\":9}\n{\"v\":1,\"event\":\"e\",\"n\":2}\n"
		      "{\"v\":1,\"ok\":true,\"id\":1,\"which\":\"first\"}\n"
		      "{\"v\":1,\"event\":\"e\",\"n\":3}\n");
	expect_reply(c, "first");
	peer_says(fd, "{\"v\":1,\"event\":\"e\",\"n\":4}\n"
		      "{\"v\":1,\"ok\":true,\"id\":2,\"which\":\"second\"}\n");
	expect_reply(c, "second");
	for (int n = 0; n <= 4; n++)
		expect_event(c, n);
	expect_no_event(c);

	/* Read from the socket now: replies nobody waits for are skipped, a line that is not an
	 * object is reported and the stream goes on. */
	peer_says(fd, "{\"v\":1,\"ok\":true,\"id\":2}\n{\"v\":1,\"event\":\"e\",\"n\":5}\n");
	expect_event(c, 5);
	peer_says(fd, "garbage\n{\"v\":1,\"event\":\"e\",\"n\":6}\n");
	reply = (json_t *)&reply;
	assert_int_equal(ctl_client_next_event(c, WAIT_MS, &reply), -EBADMSG);
	assert_ptr_equal(reply, (json_t *)&reply);
	expect_event(c, 6);
	pid = peer_later(fd, 30, later, false);
	expect_event(c, 7);
	peer_reap(pid);
	expect_no_event(c);

	/* Freed with events held (LeakSanitizer checks they go too). */
	peer_says(fd, "{\"v\":1,\"event\":\"e\",\"n\":8}\n{\"v\":1,\"ok\":true,\"id\":3}\n");
	json_decref(reply_of(c, "x", NULL));
	peer_heard(fd, "x", 1);
	peer_heard(fd, "x", 2);
	peer_heard(fd, "x", 3);
	ctl_client_free(c);
	close(fd);
}

/* A call holds at most CTL_CLIENT_EVENTS_MAX events: beyond that the oldest are dropped. */
static void test_events_bound(void **state)
{
	const int counts[] = {CTL_CLIENT_EVENTS_MAX, CTL_CLIENT_EVENTS_MAX + 5};
	char *buf = malloc((CTL_CLIENT_EVENTS_MAX + 6) * 48);
	json_t *reply;
	size_t len;
	int fd;
	struct ctl_client *c = pair(&fd);

	(void)state;
	assert_non_null(buf);
	for (int k = 0; k < 2; k++) {
		len = 0;
		for (int n = 0; n < counts[k]; n++)
			len +=
			    (size_t)sprintf(buf + len, "{\"v\":1,\"event\":\"e\",\"n\":%d}\n", n);
		len += (size_t)sprintf(buf + len, "{\"v\":1,\"ok\":true,\"id\":%d}\n", k + 1);
		peer_send(fd, buf, len);
		reply = reply_of(c, "x", NULL);
		assert_int_equal(json_integer_value(json_object_get(reply, "id")), k + 1);
		json_decref(reply);
		peer_heard(fd, "x", k + 1);
		for (int n = counts[k] - CTL_CLIENT_EVENTS_MAX; n < counts[k]; n++)
			expect_event(c, n);
		expect_no_event(c);
	}
	ctl_client_free(c);
	close(fd);
	free(buf);
}

/* Events held before the stream was lost are still handed out, then the error. */
static void test_events_survive_errors(void **state)
{
	json_t *ev = (json_t *)&ev;
	int fd;
	struct ctl_client *c = pair(&fd);

	(void)state;
	peer_says(fd, "{\"v\":1,\"event\":\"e\",\"n\":0}\n{\"v\":1,\"event\":\"e\",\"n\":1}\n");
	assert_int_equal(shutdown(fd, SHUT_WR), 0);
	assert_int_equal(ctl_client_call(c, "x", NULL, WAIT_MS, &ev), -ECONNRESET);
	expect_event(c, 0);
	expect_event(c, 1);
	assert_int_equal(ctl_client_next_event(c, WAIT_MS, &ev), -ECONNRESET);
	assert_ptr_equal(ev, (json_t *)&ev);
	ctl_client_free(c);
	close(fd);
}

/* ---- subscribing ---- */

static void expect_subscribe(int fd, json_int_t id, json_t *events)
{
	json_t *req = peer_request(fd, "subscribe", id);

	assert_true(json_equal(json_object_get(req, "events"), events));
	assert_int_equal(json_object_size(req), 4);
	json_decref(req);
	json_decref(events);
}

static void test_subscribe_accepted(void **state)
{
	static const char *const ab[] = {"a", "b", NULL}, *const all[] = {"*", NULL};
	const char *many[CTL_EVENTS_MAX + 1];
	char name[CTL_EVENT_NAME_MAX + 1];
	json_t *list = json_array();
	int fd;
	struct ctl_client *c = pair(&fd);

	(void)state;
	peer_says(fd, "{\"v\":1,\"ok\":true,\"id\":1}\n");
	assert_int_equal(ctl_client_subscribe(c, ab, WAIT_MS), 0);
	expect_subscribe(fd, 1, json_pack("[s,s]", "a", "b"));
	peer_says(fd, "{\"v\":1,\"ok\":true,\"id\":2}\n");
	assert_int_equal(ctl_client_subscribe(c, all, WAIT_MS), 0);
	expect_subscribe(fd, 2, json_pack("[s]", "*"));
	/* The longest list the server takes: 32 names of 64 bytes. */
	memset(name, 'n', CTL_EVENT_NAME_MAX);
	name[CTL_EVENT_NAME_MAX] = '\0';
	for (int i = 0; i < CTL_EVENTS_MAX; i++) {
		many[i] = name;
		json_array_append_new(list, json_string(name));
	}
	many[CTL_EVENTS_MAX] = NULL;
	peer_says(fd, "{\"v\":1,\"ok\":true,\"id\":3}\n");
	assert_int_equal(ctl_client_subscribe(c, many, WAIT_MS), 0);
	expect_subscribe(fd, 3, list);
	/* An event right behind the reply is held for ctl_client_next_event(). */
	peer_says(fd, "{\"v\":1,\"event\":\"e\",\"n\":0}\n{\"v\":1,\"ok\":true,\"id\":4}\n");
	assert_int_equal(ctl_client_subscribe(c, ab, WAIT_MS), 0);
	expect_subscribe(fd, 4, json_pack("[s,s]", "a", "b"));
	expect_event(c, 0);
	ctl_client_free(c);
	close(fd);
}

/* The peer's refusal is -EINVAL; transport errors are ctl_client_call()'s. */
static void test_subscribe_refused(void **state)
{
	static const char *const ab[] = {"a", "b", NULL};
	static const struct {
		const char *reply;
		int r;
	} cases[] = {
	    {"{\"v\":1,\"ok\":false,\"error\":\"no\",\"id\":1}\n", -EINVAL},
	    {"{\"v\":1,\"ok\":false,\"id\":1}\n", -EINVAL},
	    {"{\"v\":1,\"id\":1}\n", -EINVAL},
	    {"{\"v\":1,\"ok\":\"yes\",\"id\":1}\n", -EINVAL},
	    {"{\"v\":1,\"ok\":false,\"error\":\"invalid JSON\"}\n", -EINVAL},
	    {"nonsense\n", -EBADMSG},
	    {"[true]\n", -EBADMSG},
	};
	int fd, r;
	struct ctl_client *c;
	int64_t t;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		c = pair(&fd);
		peer_says(fd, cases[i].reply);
		r = ctl_client_subscribe(c, ab, WAIT_MS);
		if (r != cases[i].r)
			fail_msg("case %zu (%s): got %d, want %d", i, cases[i].reply, r,
				 cases[i].r);
		expect_subscribe(fd, 1, json_pack("[s,s]", "a", "b"));
		/* The connection is still good. */
		peer_says(fd, "{\"v\":1,\"ok\":true,\"id\":2}\n");
		assert_int_equal(ctl_client_subscribe(c, ab, WAIT_MS), 0);
		expect_subscribe(fd, 2, json_pack("[s,s]", "a", "b"));
		ctl_client_free(c);
		close(fd);
	}

	c = pair(&fd);
	t = mono_ms();
	assert_int_equal(ctl_client_subscribe(c, ab, 50), -ETIMEDOUT);
	assert_true(mono_ms() - t >= 50);
	assert_int_equal(shutdown(fd, SHUT_WR), 0);
	assert_int_equal(ctl_client_subscribe(c, ab, WAIT_MS), -ECONNRESET);
	assert_int_equal(ctl_client_subscribe(c, ab, WAIT_MS), -ECONNRESET);
	expect_subscribe(fd, 1, json_pack("[s,s]", "a", "b"));
	expect_subscribe(fd, 2, json_pack("[s,s]", "a", "b"));
	peer_heard_nothing(fd);
	ctl_client_free(c);
	close(fd);
}

/* Lists the server would refuse are refused here, before anything is sent. */
static void test_subscribe_bad_lists(void **state)
{
	static const char *const empty[] = {NULL}, *const blank[] = {"", NULL};
	static const char *const blank2[] = {"a", "", NULL}, *const not_utf8[] = {"\xff", NULL};
	static const char *const ab[] = {"a", "b", NULL};
	const char *many[CTL_EVENTS_MAX + 2], *long1[] = {"a", NULL, NULL};
	char name[CTL_EVENT_NAME_MAX + 2];
	int fd;
	struct ctl_client *c = pair(&fd);

	(void)state;
	memset(name, 'n', CTL_EVENT_NAME_MAX + 1);
	name[CTL_EVENT_NAME_MAX + 1] = '\0';
	long1[1] = name;
	for (int i = 0; i <= CTL_EVENTS_MAX; i++)
		many[i] = "x";
	many[CTL_EVENTS_MAX + 1] = NULL;
	assert_int_equal(ctl_client_subscribe(NULL, ab, WAIT_MS), -EINVAL);
	assert_int_equal(ctl_client_subscribe(c, NULL, WAIT_MS), -EINVAL);
	assert_int_equal(ctl_client_subscribe(c, empty, WAIT_MS), -EINVAL);
	assert_int_equal(ctl_client_subscribe(c, blank, WAIT_MS), -EINVAL);
	assert_int_equal(ctl_client_subscribe(c, blank2, WAIT_MS), -EINVAL);
	assert_int_equal(ctl_client_subscribe(c, not_utf8, WAIT_MS), -EINVAL);
	assert_int_equal(ctl_client_subscribe(c, long1, WAIT_MS), -EINVAL);
	assert_int_equal(ctl_client_subscribe(c, many, WAIT_MS), -EINVAL);
	peer_heard_nothing(fd);
	/* No id was used up: the next request is number 1. */
	peer_says(fd, "{\"v\":1,\"ok\":true,\"id\":1,\"which\":\"first\"}\n");
	expect_reply(c, "first");
	peer_heard(fd, "x", 1);
	ctl_client_free(c);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_connect_errors),
	    cmocka_unit_test(test_reply_error),
	    cmocka_unit_test(test_call_request),
	    cmocka_unit_test(test_call_bad_args),
	    cmocka_unit_test(test_call_replies),
	    cmocka_unit_test(test_call_long_lines),
	    cmocka_unit_test(test_call_peer_hangs_up),
	    cmocka_unit_test(test_call_timeout),
	    cmocka_unit_test(test_call_peer_not_reading),
	    cmocka_unit_test(test_events_during_call),
	    cmocka_unit_test(test_events_bound),
	    cmocka_unit_test(test_events_survive_errors),
	    cmocka_unit_test(test_subscribe_accepted),
	    cmocka_unit_test(test_subscribe_refused),
	    cmocka_unit_test(test_subscribe_bad_lists),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, scratch_setup, scratch_teardown);
}
