#include "ctl_peer.h"

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

static char dir[64];
static pid_t peer_kids[4]; /* children of peer_later() not reaped yet */

int scratch_setup(void **state)
{
	char tmpl[] = "/tmp/iotsec-ctl-XXXXXX";

	(void)state;
	/* 0755: test_ctl's unprivileged child must reach the sockets. */
	if (mkdtemp(tmpl) == NULL || chmod(tmpl, 0755) < 0)
		return -1;
	snprintf(dir, sizeof(dir), "%s", tmpl);
	return 0;
}

int scratch_teardown(void **state)
{
	struct dirent *de;
	DIR *d = opendir(dir);

	(void)state;
	for (size_t i = 0; i < sizeof(peer_kids) / sizeof(peer_kids[0]); i++)
		if (peer_kids[i] > 0) {
			kill(peer_kids[i], SIGKILL);
			waitpid(peer_kids[i], NULL, 0);
			peer_kids[i] = 0;
		}
	while (d && (de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			unlink(in_dir(de->d_name));
	if (d)
		closedir(d);
	rmdir(dir);
	return 0;
}

const char *in_dir(const char *name)
{
	static char paths[4][PATH_MAX];
	static int next;
	char *p = paths[next++ % 4];

	snprintf(p, sizeof(paths[0]), "%s/%s", dir, name);
	return p;
}

const char *scratch_dir(void)
{
	return dir;
}

int wait_ms(void)
{
	static int ms;

	if (ms == 0) {
		const char *s = getenv("TEST_TIME_SCALE");
		int scale = s ? atoi(s) : 1;

		ms = 2000 * (scale >= 1 && scale <= 100 ? scale : 1);
	}
	return ms;
}

int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

	nanosleep(&ts, NULL);
}

void loop_for(sd_event *e, int ms)
{
	int64_t end = mono_ms() + ms, now;

	while ((now = mono_ms()) < end)
		assert_true(sd_event_run(e, (uint64_t)(end - now) * 1000) >= 0);
}

/* ---- the peer ---- */

int listen_at(const char *path, int backlog)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	assert_true(fd >= 0);
	assert_true(strlen(path) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, path, strlen(path) + 1);
	unlink(path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, backlog), 0);
	return fd;
}

int peer_accept(int lfd, sd_event *e)
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

struct ctl_client *pair(int *ret_peer)
{
	const char *path = in_dir("peer.sock");
	int lfd = listen_at(path, 4);
	struct ctl_client *c = NULL;

	assert_int_equal(ctl_client_connect(path, &c), 0);
	*ret_peer = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	assert_true(*ret_peer >= 0);
	close(lfd);
	unlink(path);
	return c;
}

void peer_send(int fd, const char *p, size_t len)
{
	struct pollfd pfd = {.fd = fd, .events = POLLOUT};
	ssize_t n;

	while (len > 0) {
		n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EAGAIN) {
			assert_int_equal(poll(&pfd, 1, WAIT_MS), 1);
			continue;
		}
		assert_true(n > 0);
		p += n;
		len -= (size_t)n;
	}
}

void peer_says(int fd, const char *s)
{
	peer_send(fd, s, strlen(s));
}

void peer_send_json(int fd, json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT), *line;

	assert_non_null(s);
	assert_non_null(line = malloc(strlen(s) + 2));
	sprintf(line, "%s\n", s);
	peer_says(fd, line);
	free(line);
	free(s);
	json_decref(o);
}

void peer_answer(int fd, const json_t *req, bool ok, json_t *fields)
{
	json_t *o = fields ? fields : json_object(), *id = json_object_get(req, "id");

	json_object_set_new(o, "v", json_integer(CTL_PROTO_VERSION));
	json_object_set_new(o, "ok", json_boolean(ok));
	if (id)
		json_object_set(o, "id", id);
	peer_send_json(fd, o);
}

int peer_byte(int fd, sd_event *e, char *ret)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	int64_t end = mono_ms() + WAIT_MS, now;
	ssize_t n;

	for (;;) {
		n = recv(fd, ret, 1, MSG_DONTWAIT);
		if (n >= 0)
			return (int)n;
		if (errno == ECONNRESET)
			return -1;
		assert_int_equal(errno, EAGAIN);
		now = mono_ms();
		assert_true(now < end);
		if (e)
			assert_true(sd_event_run(e, 5000) >= 0);
		else
			poll(&p, 1, (int)(end - now));
	}
}

json_t *peer_line(int fd, sd_event *e)
{
	static char line[CTL_LINE_MAX];
	size_t len = 0;
	json_t *o;

	for (;;) {
		assert_int_equal(peer_byte(fd, e, &line[len]), 1);
		if (line[len] == '\n')
			break;
		assert_true(++len < sizeof(line));
	}
	o = json_loadb(line, len, JSON_REJECT_DUPLICATES, NULL);
	assert_non_null(o);
	return o;
}

json_t *peer_request(int fd, const char *verb, json_int_t id)
{
	return peer_request_on(fd, NULL, verb, id);
}

json_t *peer_request_on(int fd, sd_event *e, const char *verb, json_int_t id)
{
	json_t *req = peer_line(fd, e);

	assert_int_equal(json_integer_value(json_object_get(req, "v")), CTL_PROTO_VERSION);
	assert_string_equal(json_string_value(json_object_get(req, "verb")), verb);
	assert_true(json_is_integer(json_object_get(req, "id")));
	assert_int_equal(json_integer_value(json_object_get(req, "id")), id);
	return req;
}

void peer_heard(int fd, const char *verb, json_int_t id)
{
	json_decref(peer_request(fd, verb, id));
}

void peer_heard_nothing(int fd)
{
	char b;

	errno = 0;
	assert_int_equal(recv(fd, &b, 1, MSG_DONTWAIT | MSG_PEEK), -1);
	assert_int_equal(errno, EAGAIN);
}

void peer_hung_up(int fd, sd_event *e)
{
	char b;

	while (peer_byte(fd, e, &b) == 1)
		;
}

pid_t peer_later(int fd, int gap_ms, const char *const *pieces, bool shut)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		for (; pieces && *pieces; pieces++) {
			sleep_ms(gap_ms);
			if (send(fd, *pieces, strlen(*pieces), MSG_NOSIGNAL) !=
			    (ssize_t)strlen(*pieces))
				_exit(1);
		}
		sleep_ms(gap_ms);
		if (shut && shutdown(fd, SHUT_WR) < 0)
			_exit(2);
		/* _exit: a copy of the test must not report leaks or results. */
		_exit(0);
	}
	for (size_t i = 0; i < sizeof(peer_kids) / sizeof(peer_kids[0]); i++)
		if (peer_kids[i] == 0) {
			peer_kids[i] = pid;
			break;
		}
	return pid;
}

pid_t peer_send_later(int fd, const void *p, size_t len)
{
	struct pollfd pfd = {.fd = fd, .events = POLLOUT};
	const char *c = p;
	pid_t pid = fork();
	ssize_t n;

	assert_true(pid >= 0);
	if (pid == 0) {
		while (len > 0) {
			n = send(fd, c, len, MSG_NOSIGNAL);
			if (n < 0 && errno == EAGAIN && poll(&pfd, 1, WAIT_MS) == 1)
				continue;
			if (n <= 0)
				_exit(1);
			c += n;
			len -= (size_t)n;
		}
		_exit(0);
	}
	for (size_t i = 0; i < sizeof(peer_kids) / sizeof(peer_kids[0]); i++)
		if (peer_kids[i] == 0) {
			peer_kids[i] = pid;
			break;
		}
	return pid;
}

void peer_reap(pid_t pid)
{
	int64_t end = mono_ms() + WAIT_MS;
	int status = -1;
	pid_t r;

	while ((r = waitpid(pid, &status, WNOHANG)) == 0 && mono_ms() < end)
		sleep_ms(1);
	if (r == 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
	for (size_t i = 0; i < sizeof(peer_kids) / sizeof(peer_kids[0]); i++)
		if (peer_kids[i] == pid)
			peer_kids[i] = 0;
	assert_int_equal(r, pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}
