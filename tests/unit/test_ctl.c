/* ctl: the control protocol over real Unix sockets. The server's sd-event loop runs in a forked
 * child; the blocking client, raw sockets and a ctl_peer run here. Every wait is bounded. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
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
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ctl.h"
#include "ctl_peer.h"
#include "log.h"

static char sock[128]; /* the shared server */
static pid_t shared_pid;
static uid_t server_uid; /* when not 0, the next server runs as this user once listening */

/* ---- the server, in a child process ---- */

static int verb_echo(json_t *req, json_t **ret, void *ud)
{
	json_t *arg = json_object_get(req, "arg");

	(void)ud;
	if (arg)
		*ret = json_pack("{s:O}", "arg", arg);
	return 0;
}

static int verb_fail(json_t *req, json_t **ret, void *ud)
{
	(void)req, (void)ret, (void)ud;
	return -IOTSEC_EBADSIG;
}

/* A refusal that says what exactly was wrong. */
static int verb_detail(json_t *req, json_t **ret, void *ud)
{
	(void)req, (void)ud;
	*ret = json_pack("{s:s}", "error", "names[1] is not a device name");
	return -EINVAL;
}

static int verb_keys(json_t *req, json_t **ret, void *ud)
{
	(void)req, (void)ud;
	*ret = json_pack("{s:s}", "key", "secret");
	return 0;
}

static int verb_mutate(json_t *req, json_t **ret, void *ud)
{
	(void)req, (void)ud;
	*ret = json_pack("{s:b}", "mutated", 1);
	return 0;
}

/* {"event":E, "data":{...}, "count":N, "pad":BYTES}: publish E N times, numbered "n". */
static int verb_publish(json_t *req, json_t **ret, void *ud)
{
	const char *event = json_string_value(json_object_get(req, "event"));
	json_int_t count = json_integer_value(json_object_get(req, "count"));
	json_int_t pad = json_integer_value(json_object_get(req, "pad"));
	json_t *data = json_object_get(req, "data"), *d;
	char *p;
	int r = 0;

	for (json_int_t i = 0; r == 0 && i < (count < 1 ? 1 : count); i++) {
		d = data && !json_is_object(data) ? json_incref(data)
		    : data			  ? json_deep_copy(data)
						  : json_object();
		if (json_is_object(d))
			json_object_set_new(d, "n", json_integer(i));
		if (pad > 0 && (p = malloc((size_t)pad + 1)) != NULL) {
			memset(p, 'x', (size_t)pad);
			p[pad] = '\0';
			json_object_set_new(d, "pad", json_string(p));
			free(p);
		}
		r = ctl_server_publish(*(struct ctl_server **)ud, event, d);
		json_decref(d);
	}
	if (r == 0)
		*ret = json_pack("{s:I}", "published", count < 1 ? 1 : count);
	return r;
}

static int verb_sleep(json_t *req, json_t **ret, void *ud)
{
	(void)ret, (void)ud;
	sleep_ms((int)json_integer_value(json_object_get(req, "ms")));
	return 0;
}

static int verb_big(json_t *req, json_t **ret, void *ud)
{
	char *p = malloc(CTL_LINE_MAX + 1);

	(void)req, (void)ud;
	if (p == NULL)
		return -ENOMEM;
	memset(p, 'b', CTL_LINE_MAX);
	p[CTL_LINE_MAX] = '\0';
	*ret = json_pack("{s:s}", "blob", p);
	free(p);
	return 0;
}

static int verb_badreply(json_t *req, json_t **ret, void *ud)
{
	(void)req, (void)ud;
	*ret = json_array();
	return 0;
}

static const struct ctl_verb verbs[] = {
    {"echo", 0, verb_echo},
    {"fail", 0, verb_fail},
    {"detail", 0, verb_detail},
    {"mutate", CTL_MUTATES, verb_mutate},
    {"publish", 0, verb_publish},
    {"sleep", 0, verb_sleep},
    {"big", 0, verb_big},
    {"badreply", 0, verb_badreply},
    {"keys", CTL_KEYS, verb_keys},
    {"control", CTL_CONTROLS, verb_mutate},
    {NULL, 0, NULL},
};

/* Runs until SIGTERM; exit() rather than _exit() so LeakSanitizer checks the server too. */
_Noreturn static void server_child(const char *path, int ready)
{
	static struct ctl_server *server;
	sd_event *e = NULL;
	sigset_t ss;
	int r;

	/* Client sockets of the test must not stay open in here. */
	for (int fd = 3; fd < 1024; fd++)
		if (fd != ready)
			close(fd);
	sigemptyset(&ss);
	sigaddset(&ss, SIGTERM);
	if (sigprocmask(SIG_BLOCK, &ss, NULL) < 0 || sd_event_new(&e) < 0 ||
	    sd_event_add_signal(e, NULL, SIGTERM, NULL, NULL) < 0 ||
	    ctl_server_new(e, path, verbs, &server, &server) < 0 ||
	    ctl_server_allow(server, CTL_MAY_READ, "65534 @65531", NULL, 0) < 0 ||
	    ctl_server_allow(server, CTL_MAY_CLIENT, "65530", NULL, 0) < 0)
		_exit(90);
	if (server_uid != 0 &&
	    (setgroups(0, NULL) < 0 || setgid(server_uid) < 0 || setuid(server_uid) < 0))
		_exit(93);
	if (write(ready, "R", 1) != 1)
		_exit(91);
	close(ready);
	r = sd_event_loop(e);
	ctl_server_free(server);
	sd_event_unref(e);
	exit(r == 0 ? 0 : 92);
}

static pid_t server_start(const char *path)
{
	struct pollfd p;
	int fds[2];
	pid_t pid;
	char c;

	assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		server_child(path, fds[1]);
	close(fds[1]);
	p = (struct pollfd){.fd = fds[0], .events = POLLIN};
	assert_int_equal(poll(&p, 1, WAIT_MS), 1);
	assert_int_equal(read(fds[0], &c, 1), 1);
	close(fds[0]);
	return pid;
}

/* The child's wait status. */
static int server_stop(pid_t pid, int sig)
{
	int status = -1;

	kill(pid, sig);
	waitpid(pid, &status, 0);
	return status;
}

/* ---- helpers ---- */

static struct ctl_client *client(const char *path)
{
	struct ctl_client *c = NULL;

	assert_int_equal(ctl_client_connect(path, &c), 0);
	return c;
}

/* Call and return the reply; args are consumed. */
static json_t *call(struct ctl_client *c, const char *verb, json_t *args)
{
	json_t *reply = NULL;

	assert_int_equal(ctl_client_call(c, verb, args, WAIT_MS, &reply), 0);
	assert_non_null(reply);
	assert_int_equal(json_integer_value(json_object_get(reply, "v")), CTL_PROTO_VERSION);
	json_decref(args);
	return reply;
}

static void assert_refused(json_t *reply, const char *why)
{
	assert_true(json_is_false(json_object_get(reply, "ok")));
	assert_string_equal(ctl_reply_error(reply), why);
	json_decref(reply);
}

static int raw_connect(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_true(strlen(path) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, path, strlen(path) + 1);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static void raw_send(int fd, const char *p, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = send(fd, p, len, MSG_NOSIGNAL);
		assert_true(n > 0);
		p += n;
		len -= (size_t)n;
	}
}

/* One reply line as an object; NULL at end of stream. */
static json_t *raw_reply(int fd)
{
	static char line[CTL_LINE_MAX];
	struct pollfd p = {.fd = fd, .events = POLLIN};
	size_t len = 0;
	ssize_t n;

	for (;;) {
		assert_int_equal(poll(&p, 1, WAIT_MS), 1);
		n = read(fd, line + len, 1);
		if (n <= 0)
			return NULL;
		if (line[len] == '\n')
			break;
		assert_true(++len < sizeof(line));
	}
	return json_loadb(line, len, 0, NULL);
}

/* The server hung up (a reset counts: it may close with our bytes unread). */
static void assert_raw_closed(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	char c;

	assert_int_equal(poll(&p, 1, WAIT_MS), 1);
	errno = 0;
	assert_true(read(fd, &c, 1) <= 0);
	assert_true(errno == 0 || errno == ECONNRESET);
}

/* ---- request decoding ---- */

static void test_parse_table(void **state)
{
	static const struct {
		const char *line;
		size_t len; /* 0: strlen */
		int r;
		const char *why;
	} cases[] = {
	    {"{\"v\":1,\"verb\":\"status\"}", 0, 0, NULL},
	    {"{\"verb\":\"x\",\"v\":1,\"arg\":[1,{}],\"id\":null}\r", 0, 0, NULL},
	    {"", 0, -EBADMSG, "invalid JSON: "},
	    {"{", 0, -EBADMSG, "invalid JSON: "},
	    {"status", 0, -EBADMSG, "invalid JSON: "},
	    {"{\"v\":1,\"verb\":\"x\"} {}", 0, -EBADMSG, "invalid JSON: "},
	    {"{\"v\":1,\"v\":1,\"verb\":\"x\"}", 0, -EBADMSG, "invalid JSON: "},
	    {"{\"v\":1,\"verb\":\"\xff\"}", 0, -EBADMSG, "invalid JSON: "},
	    {"{\"v\":1,\"verb\":\"a\0b\"}", 20, -EBADMSG, "invalid JSON: "},
	    {"[{\"v\":1,\"verb\":\"x\"}]", 0, -EBADMSG, "request is not a JSON object"},
	    {"42", 0, -EBADMSG, "request is not a JSON object"},
	    {"\"status\"", 0, -EBADMSG, "request is not a JSON object"},
	    {"null", 0, -EBADMSG, "request is not a JSON object"},
	    {"{\"verb\":\"x\"}", 0, -EBADMSG, "missing protocol version \"v\""},
	    {"{}", 0, -EBADMSG, "missing protocol version \"v\""},
	    {"{\"v\":\"1\",\"verb\":\"x\"}", 0, -EBADMSG,
	     "protocol version \"v\" is not an integer"},
	    {"{\"v\":1.0,\"verb\":\"x\"}", 0, -EBADMSG, "protocol version \"v\" is not an integer"},
	    {"{\"v\":true,\"verb\":\"x\"}", 0, -EBADMSG,
	     "protocol version \"v\" is not an integer"},
	    {"{\"v\":2,\"verb\":\"x\"}", 0, -EPROTONOSUPPORT, "unsupported protocol version 2"},
	    {"{\"v\":0,\"verb\":\"x\"}", 0, -EPROTONOSUPPORT, "unsupported protocol version 0"},
	    {"{\"v\":-1,\"verb\":\"x\"}", 0, -EPROTONOSUPPORT, "unsupported protocol version -1"},
	    {"{\"v\":1}", 0, -EBADMSG, "missing \"verb\""},
	    {"{\"v\":1,\"verb\":5}", 0, -EBADMSG, "\"verb\" is not a string"},
	    {"{\"v\":1,\"verb\":null}", 0, -EBADMSG, "\"verb\" is not a string"},
	    {"{\"v\":1,\"verb\":[\"status\"]}", 0, -EBADMSG, "\"verb\" is not a string"},
	};
	json_t sentinel, *req, *refusal;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len = cases[i].len ? cases[i].len : strlen(cases[i].line);
		int r;

		req = refusal = &sentinel;
		r = ctl_request_parse(cases[i].line, len, &req, &refusal);
		if (r != cases[i].r)
			fail_msg("case %zu (%s): got %d, want %d", i, cases[i].line, r, cases[i].r);
		if (r == 0) {
			assert_true(json_is_object(req));
			assert_ptr_equal(refusal, &sentinel);
			json_decref(req);
			continue;
		}
		assert_ptr_equal(req, &sentinel);
		assert_int_equal(json_integer_value(json_object_get(refusal, "v")), 1);
		assert_true(json_is_false(json_object_get(refusal, "ok")));
		assert_null(json_object_get(refusal, "id"));
		if (strncmp(ctl_reply_error(refusal), cases[i].why, strlen(cases[i].why)) != 0 ||
		    (cases[i].why[strlen(cases[i].why) - 1] != ' ' &&
		     strcmp(ctl_reply_error(refusal), cases[i].why) != 0))
			fail_msg("case %zu: error '%s', want '%s'", i, ctl_reply_error(refusal),
				 cases[i].why);
		json_decref(refusal);
	}
}

static void test_parse_refusal_echoes_id(void **state)
{
	static const char line[] = "{\"v\":3,\"verb\":\"x\",\"id\":{\"k\":[1,\"a\"]}}";
	json_t *req = NULL, *refusal = NULL, *want = json_pack("{s:[i,s]}", "k", 1, "a");

	(void)state;
	assert_int_equal(ctl_request_parse(line, strlen(line), &req, &refusal), -EPROTONOSUPPORT);
	assert_null(req);
	assert_true(json_equal(json_object_get(refusal, "id"), want));
	json_decref(refusal);
	json_decref(want);
}

/* ---- requests and replies over the socket ---- */

static void test_call_reply(void **state)
{
	struct ctl_client *c = client(sock);
	json_t *arg = json_pack("[i,s,{s:n}]", 1, "two", "three"), *reply;

	(void)state;
	reply = call(c, "echo", json_pack("{s:O}", "arg", arg));
	assert_null(ctl_reply_error(reply));
	assert_true(json_is_true(json_object_get(reply, "ok")));
	assert_true(json_equal(json_object_get(reply, "arg"), arg));
	assert_true(json_is_integer(json_object_get(reply, "id")));
	json_decref(reply);
	reply = call(c, "echo", NULL);
	assert_null(ctl_reply_error(reply));
	assert_null(json_object_get(reply, "arg"));
	json_decref(reply);
	/* A mutating verb from root, or from the daemon's own uid, is served. */
	reply = call(c, "mutate", NULL);
	assert_null(ctl_reply_error(reply));
	assert_true(json_is_true(json_object_get(reply, "mutated")));
	json_decref(reply);
	json_decref(arg);
	ctl_client_free(c);
}

static void test_id_echo(void **state)
{
	static const char reqs[] = "{\"v\":1,\"verb\":\"echo\",\"id\":{\"k\":[1,2]}}\n"
				   "{\"v\":1,\"verb\":\"nope\",\"id\":\"x\"}\n"
				   "{\"v\":1,\"verb\":\"echo\"}\n";
	json_t *want = json_pack("{s:[i,i]}", "k", 1, 2), *r1, *r2, *r3;
	int fd = raw_connect(sock);

	(void)state;
	raw_send(fd, reqs, sizeof(reqs) - 1);
	r1 = raw_reply(fd), r2 = raw_reply(fd), r3 = raw_reply(fd);
	assert_true(json_is_true(json_object_get(r1, "ok")));
	assert_true(json_equal(json_object_get(r1, "id"), want));
	assert_string_equal(json_string_value(json_object_get(r2, "id")), "x");
	assert_string_equal(ctl_reply_error(r2), "unknown verb 'nope'");
	assert_true(json_is_true(json_object_get(r3, "ok")));
	assert_null(json_object_get(r3, "id"));
	json_decref(r1), json_decref(r2), json_decref(r3), json_decref(want);
	close(fd);
}

static void test_handler_errors(void **state)
{
	struct ctl_client *c = client(sock);

	(void)state;
	assert_refused(call(c, "fail", NULL), "bad signature");
	assert_refused(call(c, "detail", NULL), "Invalid argument: names[1] is not a device name");
	assert_refused(call(c, "badreply", NULL), "Invalid argument");
	assert_refused(call(c, "big", NULL), "message too large");
	assert_refused(call(c, "nope", NULL), "unknown verb 'nope'");
	assert_refused(call(c, "", NULL), "unknown verb ''");
	/* A handler cannot turn a refusal into a success by its fields. */
	assert_refused(call(c, "publish", json_pack("{s:s}", "event", "*")), "Invalid argument");
	ctl_client_free(c);
}

/* Every refusal leaves the connection open: a good request still works after all of them. */
static void test_refusals_keep_connection(void **state)
{
	static const struct {
		const char *line, *why;
	} cases[] = {
	    {"{not json\n", NULL},
	    {"\n", NULL},
	    {"[1,2]\n", "request is not a JSON object"},
	    {"7\n", "request is not a JSON object"},
	    {"{\"verb\":\"echo\"}\n", "missing protocol version \"v\""},
	    {"{\"v\":\"one\",\"verb\":\"echo\"}\n", "protocol version \"v\" is not an integer"},
	    {"{\"v\":2,\"verb\":\"echo\"}\n", "unsupported protocol version 2"},
	    {"{\"v\":1}\n", "missing \"verb\""},
	    {"{\"v\":1,\"verb\":{}}\n", "\"verb\" is not a string"},
	    {"{\"v\":1,\"verb\":\"nope\"}\n", "unknown verb 'nope'"},
	};
	char line[512], want[128];
	int fd = raw_connect(sock);
	json_t *reply;
	size_t n;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		raw_send(fd, cases[i].line, strlen(cases[i].line));
		reply = raw_reply(fd);
		assert_non_null(reply);
		if (cases[i].why)
			assert_string_equal(ctl_reply_error(reply), cases[i].why);
		else
			assert_memory_equal(ctl_reply_error(reply), "invalid JSON: ", 14);
		json_decref(reply);
	}
	/* An unknown name is quoted to 64 bytes, cut between UTF-8 characters. */
	n = (size_t)snprintf(line, sizeof(line), "{\"v\":1,\"verb\":\"a");
	for (int i = 0; i < 100; i++)
		n += (size_t)snprintf(line + n, sizeof(line) - n, "\xc3\xa9");
	n += (size_t)snprintf(line + n, sizeof(line) - n, "\"}\n");
	raw_send(fd, line, n);
	n = (size_t)snprintf(want, sizeof(want), "unknown verb 'a");
	for (int i = 0; i < 31; i++)
		n += (size_t)snprintf(want + n, sizeof(want) - n, "\xc3\xa9");
	snprintf(want + n, sizeof(want) - n, "'");
	reply = raw_reply(fd);
	assert_non_null(reply);
	assert_string_equal(ctl_reply_error(reply), want);
	json_decref(reply);

	raw_send(fd, "{\"v\":1,\"verb\":\"echo\",\"arg\":5}\n", 30);
	reply = raw_reply(fd);
	assert_null(ctl_reply_error(reply));
	assert_int_equal(json_integer_value(json_object_get(reply, "arg")), 5);
	json_decref(reply);
	close(fd);
}

/* A line of CTL_LINE_MAX - 1 bytes is served; one of CTL_LINE_MAX is refused and closes. */
static void test_oversize_line(void **state)
{
	static const char head[] = "{\"v\":1,\"verb\":\"echo\",\"pad\":\"";
	char *line = malloc(CTL_LINE_MAX + 1);
	int fd = raw_connect(sock);
	json_t *reply;

	(void)state;
	assert_non_null(line);
	memset(line, 'p', CTL_LINE_MAX + 1);
	memcpy(line, head, sizeof(head) - 1);
	memcpy(line + CTL_LINE_MAX - 3, "\"}\n", 3);
	raw_send(fd, line, CTL_LINE_MAX);
	reply = raw_reply(fd);
	assert_non_null(reply);
	assert_null(ctl_reply_error(reply));
	json_decref(reply);

	memcpy(line + CTL_LINE_MAX - 3, "\"} ", 3);
	line[CTL_LINE_MAX] = '\n';
	raw_send(fd, line, CTL_LINE_MAX + 1);
	reply = raw_reply(fd);
	assert_non_null(reply);
	assert_string_equal(ctl_reply_error(reply), "request too long");
	json_decref(reply);
	assert_raw_closed(fd);
	close(fd);
	free(line);
}

/* Requests written at once are answered in order, refusals included. */
static void test_pipelined(void **state)
{
	enum { N = 300 };
	char *buf = malloc(N * 64);
	int fd = raw_connect(sock);
	size_t len = 0;
	json_t *reply;

	(void)state;
	assert_non_null(buf);
	for (int i = 0; i < N; i++) {
		if (i % 10 == 7)
			len += (size_t)sprintf(buf + len, "garbage %d\n", i);
		else if (i % 5 == 0)
			len += (size_t)sprintf(buf + len, "{\"v\":1,\"verb\":\"fail\",\"id\":%d}\n",
					       i);
		else
			len += (size_t)sprintf(buf + len,
					       "{\"v\":1,\"verb\":\"echo\",\"arg\":%d,\"id\":%d}\n",
					       i * 3, i);
	}
	raw_send(fd, buf, len);
	for (int i = 0; i < N; i++) {
		reply = raw_reply(fd);
		assert_non_null(reply);
		if (i % 10 == 7) {
			assert_null(json_object_get(reply, "id"));
			assert_memory_equal(ctl_reply_error(reply), "invalid JSON", 12);
		} else {
			assert_int_equal(json_integer_value(json_object_get(reply, "id")), i);
			if (i % 5 == 0)
				assert_string_equal(ctl_reply_error(reply), "bad signature");
			else
				assert_int_equal(json_integer_value(json_object_get(reply, "arg")),
						 i * 3);
		}
		json_decref(reply);
	}
	close(fd);
	free(buf);
}

/* A peer that sends its requests and shuts its side still gets every reply, then EOF. */
static void test_half_close(void **state)
{
	static const char reqs[] = "{\"v\":1,\"verb\":\"echo\",\"arg\":1}\n"
				   "{\"v\":1,\"verb\":\"echo\",\"arg\":2}\n"
				   "{\"v\":1,\"verb\":\"echo\",\"arg\":3}";
	int fd = raw_connect(sock);
	json_t *reply;

	(void)state;
	raw_send(fd, reqs, sizeof(reqs) - 1);
	assert_int_equal(shutdown(fd, SHUT_WR), 0);
	for (int i = 1; i <= 2; i++) {
		reply = raw_reply(fd);
		assert_int_equal(json_integer_value(json_object_get(reply, "arg")), i);
		json_decref(reply);
	}
	/* The unterminated last line is not a request. */
	assert_null(raw_reply(fd));
	close(fd);
}

/* ---- events ---- */

static void publish(struct ctl_client *c, const char *event, int count)
{
	json_t *reply = call(
	    c, "publish",
	    json_pack("{s:s, s:i, s:{s:s}}", "event", event, "count", count, "data", "k", "val"));

	assert_null(ctl_reply_error(reply));
	json_decref(reply);
}

static void expect_event(struct ctl_client *c, const char *name, int n)
{
	json_t *ev = NULL;

	assert_int_equal(ctl_client_next_event(c, WAIT_MS, &ev), 0);
	assert_int_equal(json_integer_value(json_object_get(ev, "v")), CTL_PROTO_VERSION);
	assert_string_equal(json_string_value(json_object_get(ev, "event")), name);
	assert_int_equal(json_integer_value(json_object_get(ev, "n")), n);
	assert_string_equal(json_string_value(json_object_get(ev, "k")), "val");
	json_decref(ev);
}

static void expect_no_event(struct ctl_client *c)
{
	json_t *ev = (json_t *)&ev;

	assert_int_equal(ctl_client_next_event(c, 150, &ev), -ETIMEDOUT);
	assert_ptr_equal(ev, (json_t *)&ev);
}

static void test_subscribe_publish(void **state)
{
	static const char *const ab[] = {"a", "b", NULL}, *const all[] = {"*", NULL};
	static const char *const z_all[] = {"z", "*", NULL};
	struct ctl_client *some = client(sock), *every = client(sock), *none = client(sock);
	struct ctl_client *every2 = client(sock);

	(void)state;
	assert_int_equal(ctl_client_subscribe(some, ab, WAIT_MS), 0);
	assert_int_equal(ctl_client_subscribe(every, all, WAIT_MS), 0);
	assert_int_equal(ctl_client_subscribe(every2, z_all, WAIT_MS), 0);
	publish(none, "a", 1);
	publish(none, "c", 1);
	publish(none, "b", 2);
	expect_event(some, "a", 0);
	expect_event(some, "b", 0);
	expect_event(some, "b", 1);
	expect_no_event(some);
	expect_event(every, "a", 0);
	expect_event(every, "c", 0);
	expect_event(every, "b", 0);
	expect_event(every, "b", 1);
	expect_no_event(every);
	expect_event(every2, "a", 0);
	expect_event(every2, "c", 0);
	expect_no_event(none);
	ctl_client_free(some), ctl_client_free(every), ctl_client_free(none);
	ctl_client_free(every2);
}

/* An event that arrives before a call's reply waits for ctl_client_next_event(), in order. */
static void test_event_during_call(void **state)
{
	static const char *const a[] = {"a", NULL};
	struct ctl_client *c = client(sock);
	json_t *reply;

	(void)state;
	assert_int_equal(ctl_client_subscribe(c, a, WAIT_MS), 0);
	publish(c, "a", 3);
	reply = call(c, "echo", json_pack("{s:i}", "arg", 9));
	assert_int_equal(json_integer_value(json_object_get(reply, "arg")), 9);
	json_decref(reply);
	expect_event(c, "a", 0);
	expect_event(c, "a", 1);
	expect_event(c, "a", 2);
	expect_no_event(c);
	ctl_client_free(c);
}

static void test_subscribe_refusals(void **state)
{
	static const char *const empty[] = {NULL}, *const blank[] = {"", NULL};
	static const char *why_count = "\"events\" must be an array of 1 to 32 event names";
	static const char *why_name = "event names must be strings of 1 to 64 characters";
	const char *many[34];
	struct ctl_client *c = client(sock);
	char name65[66], name64[65];
	json_t *list = json_array();

	(void)state;
	memset(name65, 'n', 65), name65[65] = '\0';
	memset(name64, 'n', 64), name64[64] = '\0';
	assert_refused(call(c, "subscribe", NULL), why_count);
	assert_refused(call(c, "subscribe", json_pack("{s:s}", "events", "a")), why_count);
	assert_refused(call(c, "subscribe", json_pack("{s:[]}", "events")), why_count);
	assert_refused(call(c, "subscribe", json_pack("{s:[i]}", "events", 1)), why_name);
	assert_refused(call(c, "subscribe", json_pack("{s:[s,n]}", "events", "a")), why_name);
	assert_refused(call(c, "subscribe", json_pack("{s:[s]}", "events", "")), why_name);
	assert_refused(call(c, "subscribe", json_pack("{s:[s]}", "events", name65)), why_name);
	for (int i = 0; i < 33; i++)
		json_array_append_new(list, json_string(name64));
	assert_refused(call(c, "subscribe", json_pack("{s:O}", "events", list)), why_count);
	json_array_remove(list, 0);
	json_decref(call(c, "subscribe", json_pack("{s:o}", "events", list)));

	/* The client refuses the same lists before sending them. */
	for (int i = 0; i < 33; i++)
		many[i] = "x";
	many[33] = NULL;
	assert_int_equal(ctl_client_subscribe(c, NULL, WAIT_MS), -EINVAL);
	assert_int_equal(ctl_client_subscribe(c, empty, WAIT_MS), -EINVAL);
	assert_int_equal(ctl_client_subscribe(c, blank, WAIT_MS), -EINVAL);
	assert_int_equal(ctl_client_subscribe(c, many, WAIT_MS), -EINVAL);
	many[32] = NULL;
	assert_int_equal(ctl_client_subscribe(c, many, WAIT_MS), 0);
	ctl_client_free(c);
}

static void test_publish_refusals(void **state)
{
	struct ctl_client *c = client(sock);
	char name65[66];

	(void)state;
	memset(name65, 'e', 65), name65[65] = '\0';
	assert_refused(call(c, "publish", json_pack("{s:s}", "event", "")), "Invalid argument");
	assert_refused(call(c, "publish", json_pack("{s:s}", "event", "disconnected")),
		       "Invalid argument");
	assert_refused(call(c, "publish", json_pack("{s:s}", "event", name65)), "Invalid argument");
	assert_refused(call(c, "publish", json_pack("{s:s, s:[]}", "event", "a", "data")),
		       "Invalid argument");
	assert_refused(
	    call(c, "publish", json_pack("{s:s, s:i}", "event", "a", "pad", CTL_LINE_MAX)),
	    "message too large");
	ctl_client_free(c);
}

/* A subscriber that does not read is dropped; the server goes on serving others. */
static void test_slow_subscriber_dropped(void **state)
{
	static const char *const flood[] = {"flood", NULL};
	struct ctl_client *slow = client(sock), *pub = client(sock);
	json_t *reply, *ev = NULL;
	int r, got = 0;

	(void)state;
	assert_int_equal(ctl_client_subscribe(slow, flood, WAIT_MS), 0);
	reply = call(pub, "publish",
		     json_pack("{s:s, s:i, s:i}", "event", "flood", "count", 40, "pad", 60000));
	assert_int_equal(json_integer_value(json_object_get(reply, "published")), 40);
	json_decref(reply);
	while ((r = ctl_client_next_event(slow, WAIT_MS, &ev)) == 0) {
		assert_int_equal(json_integer_value(json_object_get(ev, "n")), got++);
		json_decref(ev);
	}
	assert_int_equal(r, -ECONNRESET);
	assert_true(got > 0 && got < 40);
	reply = call(pub, "echo", NULL);
	assert_null(ctl_reply_error(reply));
	json_decref(reply);
	ctl_client_free(slow), ctl_client_free(pub);
}

/* ---- peers, limits, client errors ---- */

static void test_mutating_verb_unprivileged(void **state)
{
	int status = -1;
	pid_t pid;

	(void)state;
	if (geteuid() != 0)
		skip();
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		static const char *const all[] = {"*", NULL};
		struct ctl_client *c = NULL;
		json_t *reply = NULL;
		int code = 0;

		if (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0)
			_exit(10);
		if (ctl_client_connect(sock, &c) < 0 ||
		    ctl_client_call(c, "mutate", NULL, WAIT_MS, &reply) < 0)
			_exit(11);
		if (ctl_reply_error(reply) == NULL ||
		    strcmp(ctl_reply_error(reply), "permission denied") != 0 ||
		    json_object_get(reply, "mutated") != NULL)
			code = 12;
		json_decref(reply);
		reply = NULL;
		/* Reading stays open to readers. */
		if (code == 0 && (ctl_client_call(c, "echo", NULL, WAIT_MS, &reply) < 0 ||
				  ctl_reply_error(reply) != NULL))
			code = 13;
		if (code == 0 && ctl_client_subscribe(c, all, WAIT_MS) < 0)
			code = 14;
		json_decref(reply);
		ctl_client_free(c);
		/* _exit: after an earlier failed test, LeakSanitizer would blame this child for the
		 * parent's abandoned allocations. The client is leak-checked in the parent. */
		_exit(code);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* One call as another user, in a child: 0 when it succeeded, 1 when the verb was refused,
 * 2 when the connection was refused naming our uid, 3 otherwise. */
static int call_as(const char *path, uid_t uid, gid_t gid, gid_t group, const char *verb)
{
	int status = -1;
	pid_t pid = fork();
	/* group 1 stands for a hundred groups, 65531 the last: more than the server asks for at
	 * first. */
	gid_t many[100];

	assert_true(pid >= 0);
	if (pid == 0) {
		struct ctl_client *c = NULL;
		json_t *reply = NULL;
		const char *error;
		char want[64];
		int code = 3;

		for (int i = 0; i < 100; i++)
			many[i] = (gid_t)(60000 + i);
		many[99] = 65531;
		if ((group == 1 ? setgroups(100, many) : setgroups(group ? 1 : 0, &group)) < 0 ||
		    setgid(gid) < 0 || setuid(uid) < 0)
			_exit(10);
		snprintf(want, sizeof(want), "permission denied: uid %u is not", (unsigned)uid);
		if (ctl_client_connect(path, &c) == 0 &&
		    ctl_client_call(c, verb, NULL, WAIT_MS, &reply) == 0) {
			error = ctl_reply_error(reply);
			code = error == NULL				 ? 0
			       : strcmp(error, "permission denied") == 0 ? 1
			       : strncmp(error, want, strlen(want)) == 0 ? 2
									 : 3;
		}
		json_decref(reply);
		ctl_client_free(c);
		_exit(code);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

/* Whether SO_PEERGROUPS tells more than one group: a child with two supplementary groups asks for
 * its own through a socket pair. qemu-user (7.2, where the Pi builds' tests run) passes the option
 * on as if it held one int, so past one group it fails with ERANGE whatever the buffer. */
static bool peergroups_work(void)
{
	int status;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		gid_t set[2] = {65531, 65532}, got[8];
		socklen_t len = sizeof(got);
		int sv[2];

		_exit(setgroups(2, set) == 0 && socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0 &&
			      getsockopt(sv[0], SOL_SOCKET, SO_PEERGROUPS, got, &len) == 0 &&
			      len == sizeof(set) && got[0] == set[0] && got[1] == set[1]
			  ? 0
			  : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* Who may do what, from the peer's credentials: the server runs as 65529, reads for 65534 and
 * the group 65531, has 65530 as its client (keys, control). */
static pid_t access_server = -1;

/* The server runs as another user: stopped here, even after a failed assertion. */
static int access_server_stop(void **state)
{
	(void)state;
	if (access_server > 0)
		server_stop(access_server, SIGTERM);
	access_server = -1;
	return 0;
}

static void test_access(void **state)
{
	const char *path = in_dir("access.sock");
	int many;

	(void)state;
	if (geteuid() != 0)
		skip();
	/* A member of a hundred groups is a reader; where they cannot be told (qemu-user), turned
	 * away: groups unknown give fewer rights, never more. */
	many = peergroups_work() ? 0 : 2;
	server_uid = 65529;
	access_server = server_start(path);
	server_uid = 0;
	/* Root changes state but takes no keys; the daemon's own user may do everything. */
	assert_int_equal(call_as(path, 0, 0, 0, "echo"), 0);
	assert_int_equal(call_as(path, 0, 0, 0, "mutate"), 0);
	assert_int_equal(call_as(path, 0, 0, 0, "keys"), 1);
	assert_int_equal(call_as(path, 65529, 65529, 0, "keys"), 0);
	assert_int_equal(call_as(path, 65529, 65529, 0, "mutate"), 0);
	/* A reader reads, and only that. */
	assert_int_equal(call_as(path, 65534, 65534, 0, "echo"), 0);
	assert_int_equal(call_as(path, 65534, 65534, 0, "mutate"), 1);
	assert_int_equal(call_as(path, 65534, 65534, 0, "keys"), 1);
	/* A key client takes keys, and reads, but changes nothing. */
	assert_int_equal(call_as(path, 65530, 65530, 0, "keys"), 0);
	assert_int_equal(call_as(path, 65530, 65530, 0, "echo"), 0);
	assert_int_equal(call_as(path, 65530, 65530, 0, "mutate"), 1);
	/* Steering the daemon: root, its own user and its clients; a reader not among them may
	 * not, nor may a reader by group. */
	assert_int_equal(call_as(path, 0, 0, 0, "control"), 0);
	assert_int_equal(call_as(path, 65529, 65529, 0, "control"), 0);
	assert_int_equal(call_as(path, 65530, 65530, 0, "control"), 0);
	assert_int_equal(call_as(path, 65534, 65534, 0, "control"), 1);
	assert_int_equal(call_as(path, 65532, 65532, 65531, "control"), 1);
	/* A reader by group: supplementary (SO_PEERGROUPS) or primary. */
	assert_int_equal(call_as(path, 65532, 65532, 65531, "echo"), 0);
	assert_int_equal(call_as(path, 65528, 65531, 0, "echo"), 0);
	if (many)
		print_message(
		    "SO_PEERGROUPS tells one group at most here (qemu-user): a member of a "
		    "hundred groups must be turned away\n");
	assert_int_equal(call_as(path, 65527, 65527, 1, "echo"), many);
	assert_int_equal(call_as(path, 65532, 65532, 65531, "keys"), 1);
	/* Anyone else is turned away at the door, told which uid and why. */
	assert_int_equal(call_as(path, 65533, 65533, 0, "echo"), 2);
	assert_int_equal(call_as(path, 65533, 65533, 65527, "echo"), 2);
	assert_int_equal(server_stop(access_server, SIGTERM), 0);
	access_server = -1;
}

/* Names and lists the allow-lists take, and those they refuse. */
static void test_allow_lists(void **state)
{
	const char *path = in_dir("allow.sock");
	struct ctl_server *s = NULL;
	sd_event *e = NULL;
	char missing[64];

	(void)state;
	assert_int_equal(sd_event_new(&e), 0);
	assert_int_equal(ctl_server_new(e, path, verbs, NULL, &s), 0);
	assert_int_equal(
	    ctl_server_allow(s, CTL_MAY_READ, "root @root 0 @0 ", missing, sizeof(missing)), 0);
	assert_string_equal(missing, "");
	assert_int_equal(ctl_server_allow(s, CTL_MAY_CLIENT, "no-such-user-x @no-such-group-y root",
					  missing, sizeof(missing)),
			 0);
	assert_string_equal(missing, "no-such-user-x @no-such-group-y");
	assert_int_equal(ctl_server_allow(s, CTL_MAY_READ, "", NULL, 0), 0);
	assert_int_equal(ctl_server_allow(s, CTL_MAY_READ, "@", NULL, 0), -EINVAL);
	assert_int_equal(ctl_server_allow(s, CTL_MAY_READ, "99999999999", NULL, 0), -EINVAL);
	assert_int_equal(
	    ctl_server_allow(s, CTL_MAY_READ, "a-name-longer-than-thirty-two-chars", NULL, 0),
	    -EINVAL);
	assert_int_equal(ctl_server_allow(s, CTL_MAY_CHANGE, "root", NULL, 0), -EINVAL);
	assert_int_equal(ctl_server_allow(NULL, CTL_MAY_READ, "root", NULL, 0), -EINVAL);
	ctl_server_free(s);
	sd_event_unref(e);
}

/* A child that, as uid (gid, supplementary group), opens connections until the server turns one
 * away, writes how many it got on ready and holds them until done says so or closes. */
static pid_t hold_as(const char *path, uid_t uid, gid_t gid, gid_t group, int ready, int done)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		struct ctl_client *held[CTL_MAX_CLIENTS];
		struct pollfd p = {.fd = done, .events = POLLIN};
		uint8_t n;

		if (setgroups(group ? 1 : 0, &group) < 0 || setgid(gid) < 0 || setuid(uid) < 0)
			_exit(10);
		for (n = 0; n < CTL_MAX_CLIENTS; n++) {
			json_t *reply = NULL;
			int r;

			if (ctl_client_connect(path, &held[n]) < 0)
				_exit(11);
			r = ctl_client_call(held[n], "echo", NULL, WAIT_MS, &reply);
			if (r < 0 || ctl_reply_error(reply) != NULL)
				break;
			json_decref(reply);
		}
		/* Bounded: should the parent fail an assertion, nobody says done. */
		if (write(ready, &n, 1) != 1 || poll(&p, 1, 2 * WAIT_MS) != 1)
			_exit(12);
		/* _exit: the held connections stay open to the end, on purpose. */
		_exit(0);
	}
	return pid;
}

/* One reader holds at most CTL_USER_SLOTS, so another reader (a daemon following this one) still
 * gets in; readers together hold all but CTL_PRIVILEGED_SLOTS, and root still gets in. */
static void test_privileged_slots(void **state)
{
	enum { HOLDERS = (CTL_MAX_CLIENTS - CTL_PRIVILEGED_SLOTS) / CTL_USER_SLOTS + 1 };
	const char *path = in_dir("slots.sock");
	int ready[2], done[2], status = -1, total = 0;
	pid_t server, child[HOLDERS];
	struct ctl_client *c;
	uint8_t n;

	(void)state;
	if (geteuid() != 0)
		skip();
	server = server_start(path);
	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(done), 0);
	/* 65534 by uid, then members of the readers' group 65531, one after the other. */
	child[0] = hold_as(path, 65534, 65534, 0, ready[1], done[0]);
	assert_int_equal(read(ready[0], &n, 1), 1);
	assert_int_equal(n, CTL_USER_SLOTS);
	assert_int_equal(call_as(path, 65532, 65532, 65531, "echo"), 0);
	total += n;
	for (int i = 1; i < HOLDERS; i++) {
		child[i] = hold_as(path, (uid_t)(65520 + i), 65520, 65531, ready[1], done[0]);
		assert_int_equal(read(ready[0], &n, 1), 1);
		total += n;
	}
	assert_int_equal(total, CTL_MAX_CLIENTS - CTL_PRIVILEGED_SLOTS);
	c = client(path);
	json_decref(call(c, "echo", NULL));
	ctl_client_free(c);
	/* One byte: every holder sees it, and none reads it. */
	assert_int_equal(write(done[1], &n, 1), 1);
	for (int i = 0; i < HOLDERS; i++) {
		assert_int_equal(waitpid(child[i], &status, 0), child[i]);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	close(ready[0]), close(ready[1]), close(done[0]), close(done[1]);
	status = server_stop(server, SIGTERM);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void test_max_clients(void **state)
{
	const char *path = in_dir("max.sock");
	struct ctl_client *c[CTL_MAX_CLIENTS], *extra = NULL;
	json_t *reply = NULL;
	pid_t pid = server_start(path);
	int64_t end;
	int status, r;

	(void)state;
	for (int i = 0; i < CTL_MAX_CLIENTS; i++) {
		c[i] = client(path);
		json_decref(call(c[i], "echo", NULL));
	}
	extra = client(path);
	assert_refused(call(extra, "echo", NULL), "too many connections");
	assert_int_equal(ctl_client_call(extra, "echo", NULL, WAIT_MS, &reply), -ECONNRESET);
	ctl_client_free(extra);
	/* A slot frees once the server has seen a client leave. */
	ctl_client_free(c[0]);
	for (end = mono_ms() + WAIT_MS, r = -1; r != 0 && mono_ms() < end;) {
		extra = client(path);
		r = ctl_client_call(extra, "echo", NULL, WAIT_MS, &reply);
		if (r < 0 || ctl_reply_error(reply)) {
			r = -1;
			sleep_ms(20);
		}
		json_decref(reply);
		reply = NULL;
		ctl_client_free(extra);
	}
	assert_int_equal(r, 0);
	for (int i = 1; i < CTL_MAX_CLIENTS; i++)
		ctl_client_free(c[i]);
	/* A clean exit (no leak reports in the child) removes the socket. */
	status = server_stop(pid, SIGTERM);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(access(path, F_OK), -1);
}

/* In this process: what ctl_server_new() does to the path, and publish's own checks. */
static void test_server_path(void **state)
{
	const char *path = in_dir("own.sock"), *file = in_dir("notsock");
	struct ctl_server *s = (struct ctl_server *)&s, *s2 = NULL;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char longpath[200];
	sd_event *e = NULL;
	struct stat st;
	int fd;

	(void)state;
	assert_int_equal(sd_event_new(&e), 0);
	fd = open(file, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	close(fd);
	assert_int_equal(ctl_server_new(e, file, verbs, NULL, &s), -EEXIST);
	assert_int_equal(access(file, F_OK), 0);
	memset(longpath, 'l', sizeof(longpath) - 1);
	longpath[sizeof(longpath) - 1] = '\0';
	assert_int_equal(ctl_server_new(e, longpath, verbs, NULL, &s), -ENAMETOOLONG);
	assert_int_equal(ctl_server_new(e, in_dir("nodir/x.sock"), verbs, NULL, &s), -ENOENT);
	assert_ptr_equal(s, (struct ctl_server *)&s);

	/* A stale socket is replaced, and the new one is open to local users. */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	assert_int_equal(ctl_server_new(e, path, verbs, NULL, &s), 0);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0666);

	assert_int_equal(ctl_server_publish(s, NULL, NULL), -EINVAL);
	assert_int_equal(ctl_server_publish(s, "*", NULL), -EINVAL);
	assert_int_equal(ctl_server_publish(s, "\xff", NULL), -EINVAL);
	json_t *arr = json_array();
	assert_int_equal(ctl_server_publish(s, "a", arr), -EINVAL);
	json_decref(arr);
	assert_int_equal(ctl_server_publish(s, "a", NULL), 0);

	/* A second instance takes the path; the first must not delete the newer socket. */
	assert_int_equal(ctl_server_new(e, path, verbs, NULL, &s2), 0);
	ctl_server_free(s);
	assert_int_equal(access(path, F_OK), 0);
	ctl_server_free(s2);
	assert_int_equal(access(path, F_OK), -1);
	ctl_server_free(NULL);
	sd_event_unref(e);
}

/* ---- a ctl_peer subscription against the real server ---- */

struct seen {
	int events, disconnected, other;
};

static void on_watch(json_t *ev, void *userdata)
{
	struct seen *seen = userdata;
	const char *name = json_string_value(json_object_get(ev, "event"));

	if (strcmp(name, "disconnected") == 0)
		seen->disconnected++;
	else if (strcmp(name, "tick") == 0)
		seen->events++;
	else
		seen->other++;
}

static void run_for(sd_event *e, int ms)
{
	int64_t end = mono_ms() + ms, now;

	while ((now = mono_ms()) < end)
		assert_true(sd_event_run(e, (uint64_t)(end - now) * 1000) >= 0);
}

static bool run_until(sd_event *e, const int *counter, int want)
{
	int64_t end = mono_ms() + WAIT_MS, now;

	while (*counter < want && (now = mono_ms()) < end)
		assert_true(sd_event_run(e, (uint64_t)(end - now) * 1000) >= 0);
	return *counter >= want;
}

/* Publish until the peer has seen one more tick (it may not have subscribed yet). */
static void tick_until_seen(sd_event *e, const char *path, struct seen *seen)
{
	struct ctl_client *pub = client(path);
	int before = seen->events;

	for (int64_t end = mono_ms() + WAIT_MS; seen->events == before && mono_ms() < end;) {
		publish(pub, "tock", 1);
		publish(pub, "tick", 1);
		run_for(e, 30);
	}
	assert_true(seen->events > before);
	ctl_client_free(pub);
}

static void test_watch(void **state)
{
	static const char *const tick[] = {"tick", NULL};
	const char *path = in_dir("watched.sock");
	struct ctl_peer *w = NULL;
	struct seen seen = {0};
	sd_event *e = NULL;
	pid_t pid;
	int status;

	(void)state;
	assert_int_equal(sd_event_new(&e), 0);
	assert_int_equal(ctl_peer_new(e, path, 50, tick, on_watch, &seen, &w), 0);

	/* Nobody there yet: no "disconnected", since nothing was ever connected. */
	run_for(e, 200);
	assert_int_equal(seen.events + seen.disconnected + seen.other, 0);

	pid = server_start(path);
	tick_until_seen(e, path, &seen);
	assert_int_equal(seen.other, 0);
	assert_int_equal(seen.disconnected, 0);

	server_stop(pid, SIGKILL);
	assert_true(run_until(e, &seen.disconnected, 1));
	/* Retries against the dead socket are silent. */
	run_for(e, 200);
	assert_int_equal(seen.disconnected, 1);

	pid = server_start(path);
	tick_until_seen(e, path, &seen);
	assert_int_equal(seen.disconnected, 1);
	assert_int_equal(seen.other, 0);

	status = server_stop(pid, SIGTERM);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_true(run_until(e, &seen.disconnected, 2));
	ctl_peer_free(w);
	ctl_peer_free(NULL);
	sd_event_unref(e);
}

/* ---- fixtures ---- */

static int setup(void **state)
{
	if (scratch_setup(state) < 0)
		return -1;
	snprintf(sock, sizeof(sock), "%s", in_dir("shared.sock"));
	shared_pid = server_start(sock);
	return 0;
}

static int teardown(void **state)
{
	int status = server_stop(shared_pid, SIGTERM);

	scratch_teardown(state);
	/* The shared server must have run clean too. */
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_table),
	    cmocka_unit_test(test_parse_refusal_echoes_id),
	    cmocka_unit_test(test_call_reply),
	    cmocka_unit_test(test_id_echo),
	    cmocka_unit_test(test_handler_errors),
	    cmocka_unit_test(test_refusals_keep_connection),
	    cmocka_unit_test(test_oversize_line),
	    cmocka_unit_test(test_pipelined),
	    cmocka_unit_test(test_half_close),
	    cmocka_unit_test(test_subscribe_publish),
	    cmocka_unit_test(test_event_during_call),
	    cmocka_unit_test(test_subscribe_refusals),
	    cmocka_unit_test(test_publish_refusals),
	    cmocka_unit_test(test_slow_subscriber_dropped),
	    cmocka_unit_test(test_mutating_verb_unprivileged),
	    cmocka_unit_test(test_privileged_slots),
	    cmocka_unit_test_teardown(test_access, access_server_stop),
	    cmocka_unit_test(test_allow_lists),
	    cmocka_unit_test(test_max_clients),
	    cmocka_unit_test(test_server_path),
	    cmocka_unit_test(test_watch),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, setup, teardown);
}
