/* daemon: command line, set-up, the event loop with signals, systemd notification and watchdog,
 * periodic timers and control socket paths. Real loops, real signals, a real notify socket. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon.h"
#include "file.h"
#include "fixture.h"
#include "keydict.h"

#define MSEC	    1000ULL
#define SAFETY_USEC (5000 * MSEC) /* no test may hang: every loop also has this exit timer */
#define SAFETY_EXIT 99

static char dir[] = "/tmp/iotsec-test-daemon-XXXXXX";
static struct fixture fx; /* a home, for a device whose configuration passes --check-config */
/* The loop of the running test, freed by cleanup() even when an assertion cut the test short:
 * a leaked loop would make LeakSanitizer fail every forked child after it. */
static sd_event *loop;

static int cleanup(void **state)
{
	(void)state;
	loop = sd_event_unref(loop);
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	return 0;
}

static uint64_t now_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static int on_exit_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	(void)usec;
	return sd_event_exit(sd_event_source_get_event(s), (int)(intptr_t)userdata);
}

/* A floating one-shot timer that ends the loop with code after usec. */
static void exit_after(sd_event *e, uint64_t usec, int code)
{
	assert_true(sd_event_add_time_relative(e, NULL, CLOCK_MONOTONIC, usec, 0, on_exit_timer,
					       (void *)(intptr_t)code) >= 0);
}

struct counter {
	int calls, stop_at, fail_at, disable_at;
};

static int on_tick(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct counter *c = userdata;

	(void)usec;
	c->calls++;
	if (c->calls == c->fail_at)
		return -EIO;
	if (c->calls == c->disable_at)
		return sd_event_source_set_enabled(s, SD_EVENT_OFF);
	if (c->calls == c->stop_at)
		return sd_event_exit(sd_event_source_get_event(s), 42);
	return 0;
}

/* ---- periodic timers ---- */

static void test_periodic_fires_n_times(void **state)
{
	struct counter c = {.stop_at = 5};
	sd_event *e = NULL;
	uint64_t start;

	(void)state;
	assert_int_equal(sd_event_new(&e), 0);
	loop = e;
	assert_int_equal(daemon_add_periodic(e, 20 * MSEC, on_tick, &c, NULL), 0);
	exit_after(e, SAFETY_USEC, SAFETY_EXIT);
	start = now_usec();
	assert_int_equal(sd_event_loop(e), 42);
	assert_int_equal(c.calls, 5);
	/* Five periods, the first one period after the start, none early. */
	assert_in_range(now_usec() - start, 100 * MSEC, 2000 * MSEC);
	loop =
	    sd_event_unref(e); /* frees the floating timer and its state (ASan would see a leak) */
}

static void test_periodic_owned_source_stops_when_unref(void **state)
{
	struct counter c = {0}, other = {.stop_at = 3};
	sd_event_source *s = NULL;
	sd_event *e = NULL;

	(void)state;
	assert_int_equal(sd_event_new(&e), 0);
	loop = e;
	assert_int_equal(daemon_add_periodic(e, 10 * MSEC, on_tick, &c, &s), 0);
	assert_non_null(s);
	assert_int_equal(daemon_add_periodic(e, 30 * MSEC, on_tick, &other, NULL), 0);
	sd_event_source_unref(s);
	exit_after(e, SAFETY_USEC, SAFETY_EXIT);
	assert_int_equal(sd_event_loop(e), 42);
	assert_int_equal(other.calls, 3);
	assert_int_equal(c.calls, 0);
	loop = sd_event_unref(e);
}

static void test_periodic_failing_handler_stops(void **state)
{
	struct counter c = {.fail_at = 1};
	sd_event *e = NULL;

	(void)state;
	assert_int_equal(sd_event_new(&e), 0);
	loop = e;
	assert_int_equal(daemon_add_periodic(e, 10 * MSEC, on_tick, &c, NULL), 0);
	exit_after(e, 150 * MSEC, 7);
	assert_int_equal(sd_event_loop(e), 7);
	assert_int_equal(c.calls, 1);
	loop = sd_event_unref(e);
}

static void test_periodic_disabled_from_handler_stays_off(void **state)
{
	struct counter c = {.disable_at = 2};
	sd_event *e = NULL;

	(void)state;
	assert_int_equal(sd_event_new(&e), 0);
	loop = e;
	assert_int_equal(daemon_add_periodic(e, 10 * MSEC, on_tick, &c, NULL), 0);
	exit_after(e, 200 * MSEC, 7);
	assert_int_equal(sd_event_loop(e), 7);
	assert_int_equal(c.calls, 2);
	loop = sd_event_unref(e);
}

static void test_periodic_bad_arguments(void **state)
{
	sd_event_source *s = (sd_event_source *)&s; /* must stay untouched */
	struct counter c = {0};
	sd_event *e = NULL;

	(void)state;
	assert_int_equal(sd_event_new(&e), 0);
	loop = e;
	assert_int_equal(daemon_add_periodic(e, 0, on_tick, &c, &s), -EINVAL);
	assert_int_equal(daemon_add_periodic(e, 10 * MSEC, NULL, &c, &s), -EINVAL);
	assert_int_equal(daemon_add_periodic(NULL, 10 * MSEC, on_tick, &c, &s), -EINVAL);
	assert_true(daemon_add_periodic(e, UINT64_MAX, on_tick, &c, &s) < 0);
	assert_ptr_equal(s, (sd_event_source *)&s);
	loop = sd_event_unref(e);
}

/* ---- the daemon loop: signals, readiness, watchdog ---- */

static int on_raise(sd_event_source *s, uint64_t usec, void *userdata)
{
	(void)s, (void)usec;
	return raise((int)(intptr_t)userdata) == 0 ? 0 : -errno;
}

static void run_until_signal(int sig)
{
	sd_event *e = NULL;

	assert_int_equal(daemon_loop_new(&e), 0);
	loop = e;
	assert_non_null(e);
	assert_true(sd_event_add_time_relative(e, NULL, CLOCK_MONOTONIC, 50 * MSEC, 0, on_raise,
					       (void *)(intptr_t)sig) >= 0);
	exit_after(e, SAFETY_USEC, SAFETY_EXIT);
	assert_int_equal(daemon_run(e, "testing"), 0);
	loop = sd_event_unref(e);
}

static void test_sigterm_ends_run(void **state)
{
	(void)state;
	run_until_signal(SIGTERM);
}

static void test_sigint_ends_run(void **state)
{
	(void)state;
	run_until_signal(SIGINT);
}

static int on_still_running(sd_event_source *s, uint64_t usec, void *userdata)
{
	(void)usec;
	*(bool *)userdata = true;
	return on_raise(s, usec, (void *)(intptr_t)SIGTERM);
}

/* SIGHUP would end a process without a word: the loop logs it and runs on. */
static void test_sighup_ignored(void **state)
{
	bool alive = false;
	sd_event *e = NULL;

	(void)state;
	assert_int_equal(daemon_loop_new(&e), 0);
	loop = e;
	assert_true(sd_event_add_time_relative(e, NULL, CLOCK_MONOTONIC, 20 * MSEC, 0, on_raise,
					       (void *)(intptr_t)SIGHUP) >= 0);
	assert_true(sd_event_add_time_relative(e, NULL, CLOCK_MONOTONIC, 100 * MSEC, 0,
					       on_still_running, &alive) >= 0);
	exit_after(e, SAFETY_USEC, SAFETY_EXIT);
	assert_int_equal(daemon_run(e, "testing"), 0);
	assert_true(alive);
	loop = sd_event_unref(e);
}

/* A datagram socket standing in for systemd's notify socket. */
static int notify_socket(char *path, size_t len)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd;

	snprintf(path, len, "%s/notify", dir);
	unlink(path);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(setenv("NOTIFY_SOCKET", path, 1), 0);
	return fd;
}

static ssize_t next_notice(int fd, char *buf, size_t len)
{
	ssize_t n = recv(fd, buf, len - 1, 0);

	buf[n > 0 ? n : 0] = '\0';
	return n;
}

static void test_run_tells_systemd_ready_and_stopping(void **state)
{
	char path[PATH_MAX], buf[256];
	sd_event *e = NULL;
	int fd;

	(void)state;
	fd = notify_socket(path, sizeof(path));
	assert_int_equal(daemon_loop_new(&e), 0);
	loop = e;
	exit_after(e, 20 * MSEC, 3);
	assert_int_equal(daemon_run(e, "serving keys"), 3);
	loop = sd_event_unref(e);
	unsetenv("NOTIFY_SOCKET");

	assert_true(next_notice(fd, buf, sizeof(buf)) > 0);
	assert_string_equal(buf, "READY=1\nSTATUS=serving keys");
	assert_true(next_notice(fd, buf, sizeof(buf)) > 0);
	assert_string_equal(buf, "STOPPING=1");
	/* No watchdog was asked for, so nothing else was said. */
	assert_int_equal(next_notice(fd, buf, sizeof(buf)), -1);
	close(fd);
}

static void test_watchdog_is_fed(void **state)
{
	char path[PATH_MAX], buf[256], pid[32];
	sd_event *e = NULL;
	int fd, pings = 0, ready = 0, stopping = 0;

	(void)state;
	fd = notify_socket(path, sizeof(path));
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	setenv("WATCHDOG_USEC", "100000", 1);
	setenv("WATCHDOG_PID", pid, 1);
	assert_int_equal(daemon_loop_new(&e), 0);
	loop = e;
	exit_after(e, 400 * MSEC, 0);
	assert_int_equal(daemon_run(e, NULL), 0);
	loop = sd_event_unref(e);
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	unsetenv("NOTIFY_SOCKET");

	/* sd-event feeds the watchdog once as soon as it is enabled, before READY=1. */
	while (next_notice(fd, buf, sizeof(buf)) > 0) {
		pings += strcmp(buf, "WATCHDOG=1") == 0;
		ready += strcmp(buf, "READY=1") == 0;
		stopping += strcmp(buf, "STOPPING=1") == 0;
	}
	assert_int_equal(ready, 1);
	assert_int_equal(stopping, 1);
	assert_true(pings >= 3); /* 400 ms of a 100 ms watchdog: fed at least every 75 ms */
	close(fd);
}

/* ---- control socket paths ---- */

static void test_socket_path(void **state)
{
	char out[64];

	(void)state;
	assert_int_equal(daemon_socket_path("/run/iotsec", "certd", out, sizeof(out)), 0);
	assert_string_equal(out, "/run/iotsec/certd/certd.sock");
	/* Exactly fits: 28 characters and the NUL. */
	assert_int_equal(daemon_socket_path("/run/iotsec", "certd", out, 29), 0);
	assert_string_equal(out, "/run/iotsec/certd/certd.sock");
	assert_int_equal(daemon_socket_path("/run/iotsec", "certd", out, 28), -ENAMETOOLONG);
}

static void test_socket_path_longest_sun_path(void **state)
{
	char run_dir[128], out[256];

	(void)state;
	/* 90 + "/certd/certd.sock" = 107 characters: the most sun_path (108) holds with its NUL. */
	memset(run_dir, 'd', 90);
	run_dir[0] = '/';
	run_dir[90] = '\0';
	assert_int_equal(daemon_socket_path(run_dir, "certd", out, sizeof(out)), 0);
	assert_int_equal(strlen(out), 107);
}

static void test_socket_path_too_long(void **state)
{
	char run_dir[128], out[256];

	(void)state;
	memset(run_dir, 'd', 97);
	run_dir[0] = '/';
	run_dir[97] = '\0';
	strcpy(out, "untouched");
	assert_int_equal(daemon_socket_path(run_dir, "certd", out, sizeof(out)), -ENAMETOOLONG);
	assert_string_equal(out, "untouched");
}

static void test_socket_path_too_long_for_caller(void **state)
{
	char out[64] = "untouched";

	(void)state;
	/* Fits sun_path but not the caller's 22 bytes. */
	assert_int_equal(daemon_socket_path("/run/iotsec", "certd", out, 22), -ENAMETOOLONG);
	assert_string_equal(out, "untouched");
	assert_int_equal(daemon_socket_path("/run/iotsec", "certd", out, 0), -ENAMETOOLONG);
	assert_string_equal(out, "untouched");
}

static void test_socket_path_bad_names(void **state)
{
	char out[64] = "untouched";

	(void)state;
	assert_int_equal(daemon_socket_path("/run/iotsec", "", out, sizeof(out)), -EINVAL);
	assert_int_equal(daemon_socket_path("", "certd", out, sizeof(out)), -EINVAL);
	assert_int_equal(daemon_socket_path("/run/iotsec", "../x", out, sizeof(out)), -EINVAL);
	assert_int_equal(daemon_socket_path(NULL, "certd", out, sizeof(out)), -EINVAL);
	assert_string_equal(out, "untouched");
}

/* ---- command line ---- */

static void test_args_short(void **state)
{
	char *argv[] = {"iotsec-test", "-c", "/x/a.conf", "--check-config", "-v", NULL};
	struct daemon_opts o;

	(void)state;
	daemon_parse_args(5, argv, "iotsec-test", "tests", 0, &o);
	assert_string_equal(o.config_path, "/x/a.conf");
	assert_true(o.check_config);
	assert_true(o.verbose);
}

static void test_args_long_and_defaults(void **state)
{
	char *none[] = {"iotsec-test", NULL};
	char *lng[] = {"iotsec-test", "--verbose", "--config=/y/b.conf", NULL};
	struct daemon_opts o;

	(void)state;
	daemon_parse_args(1, none, "iotsec-test", "tests", 0, &o);
	assert_string_equal(o.config_path, CONFIG_DEFAULT_PATH);
	assert_false(o.check_config);
	assert_false(o.verbose);
	daemon_parse_args(3, lng, "iotsec-test", "tests", 0, &o);
	assert_string_equal(o.config_path, "/y/b.conf");
	assert_false(o.check_config);
	assert_true(o.verbose);
}

struct child {
	int status; /* exit code, or -1 when it did not exit normally */
	char out[4096], err[4096];
};

static void drain(int fd, char *buf, size_t len)
{
	size_t have = 0;
	ssize_t n;

	while (have < len - 1 && (n = read(fd, buf + have, len - 1 - have)) > 0)
		have += (size_t)n;
	buf[have] = '\0';
	close(fd);
}

/* Run daemon_setup (setup != 0) or daemon_parse_args on argv in a child: both exit on their
 * own for --help, --version, --check-config and errors. A child that returns prints the result. */
static void run_child(char **argv, int setup, struct child *c)
{
	int out[2], err[2], st;
	pid_t pid;

	assert_int_equal(pipe(out), 0);
	assert_int_equal(pipe(err), 0);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct iotsec_config cfg;
		struct daemon_opts o;
		int argc = 0;

		while (argv[argc])
			argc++;
		dup2(out[1], 1);
		dup2(err[1], 2);
		unsetenv("JOURNAL_STREAM");
		if (setup) {
			daemon_setup(argc, argv, "iotsec-test", "a test daemon",
				     DAEMON_NEEDS_DEVICE | DAEMON_NEEDS_DICTIONARY |
					 DAEMON_NEEDS_ALARM,
				     &cfg);
			printf("interval %d\n", cfg.certd.interval);
			config_free(&cfg);
		} else {
			daemon_parse_args(argc, argv, "iotsec-test", "a test daemon", 0, &o);
			printf("returned\n");
		}
		fflush(stdout);
		_exit(SAFETY_EXIT);
	}
	close(out[1]);
	close(err[1]);
	drain(out[0], c->out, sizeof(c->out));
	drain(err[0], c->err, sizeof(c->err));
	assert_int_equal(waitpid(pid, &st, 0), pid);
	c->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A bad command line: usage on stderr, nothing on stdout, exit 2. */
static void expect_usage_error(char **argv, const char *why)
{
	struct child c;

	run_child(argv, 0, &c);
	assert_int_equal(c.status, 2);
	assert_string_equal(c.out, "");
	assert_non_null(strstr(c.err, why));
	assert_non_null(strstr(c.err, "Usage: iotsec-test"));
}

static void test_args_unknown_long_option(void **state)
{
	char *argv[] = {"iotsec-test", "--bogus", NULL};

	(void)state;
	expect_usage_error(argv, "unrecognized option '--bogus'");
}

static void test_args_unknown_short_option(void **state)
{
	char *argv[] = {"iotsec-test", "-x", NULL};

	(void)state;
	expect_usage_error(argv, "invalid option -- 'x'");
}

static void test_args_config_without_file(void **state)
{
	char *argv[] = {"iotsec-test", "-c", NULL};

	(void)state;
	expect_usage_error(argv, "option requires an argument -- 'c'");
}

static void test_args_stray_argument(void **state)
{
	char *argv[] = {"iotsec-test", "-v", "stray", NULL};

	(void)state;
	expect_usage_error(argv, "unexpected argument 'stray'");
}

static void test_args_help_and_version(void **state)
{
	char *help[] = {"iotsec-test", "-v", "--help", NULL};
	char *version[] = {"iotsec-test", "--version", NULL};
	struct child c;

	(void)state;
	run_child(help, 0, &c);
	assert_int_equal(c.status, 0);
	assert_non_null(strstr(c.out, "Usage: iotsec-test"));
	assert_non_null(strstr(c.out, "a test daemon"));
	assert_non_null(strstr(c.out, CONFIG_DEFAULT_PATH));
	run_child(version, 0, &c);
	assert_int_equal(c.status, 0);
	assert_string_equal(c.out, "iotsec-test (iotsec) 0.1\n");
}

static const char *write_conf(const char *name, const char *text)
{
	static char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_true(fputs(text, f) >= 0);
	assert_int_equal(fclose(f), 0);
	return path;
}

/* ---- a device as set-up and --check-config see it: DIR/dev ---- */

static char dev[PATH_MAX];

static const char *at(const char *name)
{
	static char paths[4][2 * PATH_MAX];
	static int next;
	char *p = paths[next++ % 4];

	snprintf(p, 2 * PATH_MAX, "%s/%s", dev, name);
	return p;
}

static void copy(const char *from, const char *to, mode_t mode)
{
	char *data;
	size_t len;

	assert_int_equal(file_read(from, 1 << 20, &data, &len), 0);
	assert_int_equal(file_write_atomic(to, data, len, mode), 0);
	free(data);
}

/* A fresh DIR/dev with pi1's certificate and key, and its configuration with name, ca and
 * state_dir as given (NULL: pi1, the home's CA, DIR/dev/state); returns the configuration. */
static const char *device_as(const char *name, const char *ca, const char *state_dir)
{
	char cmd[PATH_MAX + 16], text[8 * PATH_MAX];
	static char conf[PATH_MAX];

	snprintf(dev, sizeof(dev), "%s/dev", dir);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dev);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(mkdir(dev, 0755), 0);
	copy(fixture_path(&fx, "pi1", "crt"), at("pi1.crt"), 0644);
	copy(fixture_path(&fx, "pi1", "key"), at("pi1.key"), 0600);
	snprintf(
	    text, sizeof(text),
	    "device = { name = \"%s\"; cert = \"%s/pi1.crt\"; key = \"%s/pi1.key\"; ca = \"%s\";\n"
	    "  crl = \"%s\"; state_dir = \"%s\"; run_dir = \"%s/run\"; };\n"
	    "dictd = { path = \"%s/keys.dict\"; key_file = \"%s/dict.key\"; };\n"
	    "certd = { interval = 9; };\n",
	    name ? name : "pi1", dev, dev, ca ? ca : fx.ca_crt, fx.crl,
	    state_dir ? state_dir : at("state"), dev, dev, dev);
	snprintf(conf, sizeof(conf), "%s", at("iotsec.conf"));
	assert_int_equal(file_write_atomic(conf, text, strlen(text), 0644), 0);
	return conf;
}
#define device() device_as(NULL, NULL, NULL)

static void test_setup_loads_config(void **state)
{
	char path[PATH_MAX], pidfile[PATH_MAX + 32], pid[32] = "";
	char *argv[] = {"iotsec-test", "-c", path, NULL};
	struct child c;
	struct stat st;
	FILE *f;

	(void)state;
	snprintf(path, sizeof(path), "%s", device());
	run_child(argv, 1, &c);
	assert_int_equal(c.status, SAFETY_EXIT);
	assert_string_equal(c.out, "interval 9\n");
	/* It made its directories, and left its pid beside its (now released) lock. */
	assert_int_equal(stat(at("state/test"), &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	snprintf(pidfile, sizeof(pidfile), "%s/run/test/test.pid", dev);
	assert_non_null(f = fopen(pidfile, "r"));
	assert_non_null(fgets(pid, sizeof(pid), f));
	fclose(f);
	assert_true(atoi(pid) > 0);
}

/* A second instance for the same run directory says who holds it and exits 1, touching nothing. */
static void test_setup_second_instance(void **state)
{
	char path[PATH_MAX], pidfile[PATH_MAX + 32];
	char *argv[] = {"iotsec-test", "-c", path, NULL};
	struct child c;
	int fd;

	(void)state;
	snprintf(path, sizeof(path), "%s", device());
	snprintf(pidfile, sizeof(pidfile), "%s/run", dev);
	assert_int_equal(mkdir(pidfile, 0755), 0);
	snprintf(pidfile, sizeof(pidfile), "%s/run/test", dev);
	assert_int_equal(mkdir(pidfile, 0755), 0);
	snprintf(pidfile, sizeof(pidfile), "%s/run/test/test.pid", dev);
	assert_true((fd = open(pidfile, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) >= 0);
	assert_int_equal(flock(fd, LOCK_EX), 0);
	assert_int_equal(write(fd, "4242\n", 5), 5);
	run_child(argv, 1, &c);
	assert_int_equal(c.status, 1);
	assert_string_equal(c.out, "");
	assert_non_null(strstr(c.err, "already running (pid 4242)"));
	close(fd); /* the first one ends: the next start goes ahead */
	run_child(argv, 1, &c);
	assert_int_equal(c.status, SAFETY_EXIT);
}

/* The lock is no lock others can take: made 0600, mended to 0600 when looser, refused when it
 * is someone else's. */
static void test_setup_lock_is_ours(void **state)
{
	char path[PATH_MAX], pidfile[PATH_MAX + 32];
	char *argv[] = {"iotsec-test", "-c", path, NULL};
	struct child c;
	struct stat st;

	(void)state;
	snprintf(path, sizeof(path), "%s", device());
	snprintf(pidfile, sizeof(pidfile), "%s/run", dev);
	assert_int_equal(mkdir(pidfile, 0755), 0);
	snprintf(pidfile, sizeof(pidfile), "%s/run/test", dev);
	assert_int_equal(mkdir(pidfile, 0755), 0);
	snprintf(pidfile, sizeof(pidfile), "%s/run/test/test.pid", dev);
	assert_int_equal(file_write_atomic(pidfile, "", 0, 0644), 0);
	run_child(argv, 1, &c);
	assert_int_equal(c.status, SAFETY_EXIT);
	assert_int_equal(stat(pidfile, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	if (geteuid() != 0)
		return; /* the rest needs a file of another owner */
	assert_int_equal(chown(pidfile, 65534, 65534), 0);
	run_child(argv, 1, &c);
	assert_int_equal(c.status, 1);
	assert_non_null(strstr(c.err, "test/test.pid: owned by uid 65534, not by us"));
}

static void test_setup_check_config_ok(void **state)
{
	char path[PATH_MAX];
	char *argv[] = {"iotsec-test", "--check-config", "-c", path, NULL};
	struct child c;

	(void)state;
	snprintf(path, sizeof(path), "%s", device());
	run_child(argv, 1, &c);
	assert_int_equal(c.status, 0);
	assert_string_equal(c.err, "");
	assert_string_equal(c.out, "configuration OK\n");
}

/* Each thing start-up needs, broken: --check-config names the file and the cause, and exits 1. */
/* What certd judges at run time (here: revoked) is a note: certd must start, to say so. */
static void test_check_config_notes_revoked(void **state)
{
	char path[PATH_MAX];
	char *argv[] = {"iotsec-test", "--check-config", "-c", path, NULL};
	struct child c;

	(void)state;
	snprintf(path, sizeof(path), "%s", device_as("revoked", NULL, NULL));
	copy(fixture_path(&fx, "revoked", "crt"), at("pi1.crt"), 0644);
	copy(fixture_path(&fx, "revoked", "key"), at("pi1.key"), 0600);
	run_child(argv, 1, &c);
	assert_int_equal(c.status, 0);
	assert_string_equal(c.out, "configuration OK\n");
	assert_non_null(strstr(c.err, "/dev/pi1.crt: note: certificate revoked"));
}

static void test_check_config_problems(void **state)
{
	char path[PATH_MAX], other_ca[PATH_MAX + 32];
	char *argv[] = {"iotsec-test", "--check-config", "-c", path, NULL};
	struct child c;

	(void)state;
	snprintf(other_ca, sizeof(other_ca), "%s/ca.crt", fx.other_ca_dir);
	for (int i = 0; i < 17; i++) {
		const char *want = NULL;

		snprintf(path, sizeof(path), "%s", device());
		switch (i) {
		case 0:
			unlink(at("pi1.crt"));
			want = "/dev/pi1.crt: missing\n";
			break;
		case 1:
			unlink(at("pi1.crt"));
			assert_int_equal(mkdir(at("pi1.crt"), 0755), 0);
			want = "/dev/pi1.crt: a directory, not a file\n";
			break;
		case 2:
			assert_int_equal(file_write_atomic(at("pi1.crt"), "hello\n", 6, 0644), 0);
			want = "/dev/pi1.crt: not a PEM certificate of an iotsec device\n";
			break;
		case 3:
			assert_int_equal(chmod(at("pi1.key"), 0644), 0);
			want = "/dev/pi1.key: mode 0644 lets group or others read a secret";
			break;
		case 4:
			unlink(at("pi1.key"));
			want = "/dev/pi1.key: missing\n";
			break;
		case 5:
			copy(fixture_path(&fx, "pi2", "key"), at("pi1.key"), 0600);
			want = "/dev/pi1.key: not the key of the certificate";
			break;
		case 6:
			assert_int_equal(file_write_atomic(at("pi1.key"), "key\n", 4, 0600), 0);
			want = "/dev/pi1.key: not a PEM private key\n";
			break;
		case 7:
			snprintf(path, sizeof(path), "%s", device_as("pi7", NULL, NULL));
			want =
			    "/dev/pi1.crt: the certificate of device pi1, not of pi7 (device.name)";
			break;
		case 8:
			snprintf(path, sizeof(path), "%s", device_as(NULL, at("none.crt"), NULL));
			want = "/dev/none.crt: missing\n";
			break;
		case 9:
			/* The CA of another home did not sign this home's CRL. */
			snprintf(path, sizeof(path), "%s", device_as(NULL, other_ca, NULL));
			want = "/ca/crl.pem: ";
			break;
		case 10:
			snprintf(path, sizeof(path), "%s",
				 device_as(NULL, NULL, at("pi1.crt/state")));
			want = "/dev/pi1.crt: not a directory\n";
			break;
		case 11:
			assert_int_equal(file_write_atomic(at("keys.dict"), "x", 1, 0600), 0);
			want = "/dev/dict.key: missing, while the dictionary";
			break;
		case 12:
			assert_int_equal(file_write_atomic(at("dict.key"), "k", 1, 0644), 0);
			want = "/dev/dict.key: mode 0644 lets group or others read a secret";
			break;
		case 13:
			/* Every problem is reported, not only the first. */
			unlink(at("pi1.crt"));
			assert_int_equal(chmod(at("pi1.key"), 0640), 0);
			want = "/dev/pi1.key: mode 0640";
			break;
		case 14:
			/* Another home's device: its CA did not sign it. */
			snprintf(path, sizeof(path), "%s", device_as("pi9", NULL, NULL));
			copy(fixture_path(&fx, "pi9", "crt"), at("pi1.crt"), 0644);
			copy(fixture_path(&fx, "pi9", "key"), at("pi1.key"), 0600);
			want = "/dev/pi1.crt: certificate not issued by this home's CA";
			break;
		case 15:
			assert_int_equal(
			    file_write_atomic(at("dict.key"), "0123456789abcdef", 16, 0600), 0);
			want = "/dev/dict.key: 16 bytes; a dictionary key is 32 random bytes";
			break;
		case 16:
			/* A dictionary sealed under one key, and another key in its place. */
			{
				uint8_t k[32] = {1};
				struct keydict *d = NULL;

				assert_int_equal(keydict_new(k, &d), 0);
				assert_int_equal(keydict_save(d, at("keys.dict")), 0);
				keydict_free(d);
				k[0] = 2;
				assert_int_equal(file_write_atomic(at("dict.key"), k, 32, 0600), 0);
			}
			want = "/dev/keys.dict: does not open with the dictionary key";
			break;
		}
		if (want == NULL)
			continue;
		run_child(argv, 1, &c);
		if (c.status != 1 || strstr(c.err, want) == NULL || c.out[0] != '\0')
			fail_msg("case %d: status %d, stderr '%s', want '%s'", i, c.status, c.err,
				 want);
		assert_non_null(strstr(c.err, "has the problems above"));
	}
}

/* sensord.alarm_output is written only when a pulse falls: a path it cannot write is found by
 * --check-config, not then. A missing file is made by sensord; a missing directory is not. */
static void test_check_config_alarm_output(void **state)
{
	char path[PATH_MAX], line[2 * PATH_MAX];
	char *argv[] = {"iotsec-test", "--check-config", "-c", path, NULL};
	struct child c;

	(void)state;
	for (int i = 0; i < 6; i++) {
		const char *want = NULL, *output = NULL;
		FILE *f;

		snprintf(path, sizeof(path), "%s", device());
		switch (i) {
		case 0:
			output = at("no-such-dir/value");
			want = "/dev/no-such-dir/value: missing, and so is its directory";
			break;
		case 1:
			assert_int_equal(mkdir(at("gpio17"), 0755), 0);
			output = at("gpio17");
			want = "/dev/gpio17: a directory, not a file\n";
			break;
		case 2:
			/* A file where its directory should be. */
			output = at("pi1.crt/value");
			want = "/dev/pi1.crt/value: Not a directory\n";
			break;
		case 3:
			output = ""; /* none */
			break;
		case 4:
			output = at("value"); /* made when the alarm is raised */
			break;
		case 5:
			assert_int_equal(file_write_atomic(at("value"), "0\n", 2, 0644), 0);
			output = at("value");
			break;
		}
		snprintf(line, sizeof(line), "sensord = { alarm_output = \"%s\"; };\n", output);
		f = fopen(path, "a");
		assert_non_null(f);
		assert_true(fputs(line, f) >= 0);
		assert_int_equal(fclose(f), 0);
		run_child(argv, 1, &c);
		if (want == NULL) {
			if (c.status != 0 || strcmp(c.out, "configuration OK\n") != 0)
				fail_msg("case %d: status %d, stderr '%s'", i, c.status, c.err);
			continue;
		}
		if (c.status != 1 || strstr(c.err, want) == NULL || c.out[0] != '\0')
			fail_msg("case %d: status %d, stderr '%s', want '%s'", i, c.status, c.err,
				 want);
	}
}

static void test_setup_bad_config_exits_1(void **state)
{
	char path[PATH_MAX], want[PATH_MAX + 128];
	char *argv[] = {"iotsec-test", "--check-config", "-c", path, NULL};
	struct child c;

	(void)state;
	snprintf(path, sizeof(path), "%s",
		 write_conf("bad.conf", "# bad\ncertd = { interval = 0; };\n"));
	snprintf(want, sizeof(want),
		 "iotsec-test: %s:2: setting 'certd.interval': 0 is out of range 1..86400\n", path);
	run_child(argv, 1, &c);
	assert_int_equal(c.status, 1);
	assert_string_equal(c.out, "");
	assert_string_equal(c.err, want);
}

static void test_setup_missing_config_exits_1(void **state)
{
	char path[PATH_MAX], want[PATH_MAX + 128];
	char *argv[] = {"iotsec-test", "-c", path, NULL};
	struct child c;

	(void)state;
	snprintf(path, sizeof(path), "%s/none.conf", dir);
	snprintf(want, sizeof(want), "iotsec-test: %s: cannot read: No such file or directory\n",
		 path);
	run_child(argv, 1, &c);
	assert_int_equal(c.status, 1);
	assert_string_equal(c.err, want);
}

static void test_setup_syntax_error_exits_1(void **state)
{
	char path[PATH_MAX], want[PATH_MAX + 128];
	char *argv[] = {"iotsec-test", "-c", path, NULL};
	struct child c;

	(void)state;
	snprintf(path, sizeof(path), "%s", write_conf("syntax.conf", "certd = {\n interval = ;\n"));
	snprintf(want, sizeof(want), "iotsec-test: %s:2: syntax error\n", path);
	run_child(argv, 1, &c);
	assert_int_equal(c.status, 1);
	assert_string_equal(c.out, "");
	assert_string_equal(c.err, want);
}

static void test_setup_config_is_a_directory(void **state)
{
	char want[PATH_MAX + 128];
	char *argv[] = {"iotsec-test", "--check-config", "-c", dir, NULL};
	struct child c;

	(void)state;
	snprintf(want, sizeof(want), "iotsec-test: %s: cannot read: Is a directory\n", dir);
	run_child(argv, 1, &c);
	assert_int_equal(c.status, 1);
	assert_string_equal(c.out, "");
	assert_string_equal(c.err, want);
}

static void test_setup_config_not_a_file(void **state)
{
	char *argv[] = {"iotsec-test", "--check-config", "-c", "/dev/null", NULL};
	struct child c;

	(void)state;
	run_child(argv, 1, &c);
	assert_int_equal(c.status, 1);
	assert_string_equal(c.err, "iotsec-test: /dev/null: cannot read: not a regular file\n");
}

static void test_run_without_loop(void **state)
{
	(void)state;
	assert_int_equal(daemon_run(NULL, "nothing"), -EINVAL);
}

static int setup(void **state)
{
	cleanup(state);
	return mkdtemp(dir) && fixture_home(&fx) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[PATH_MAX + 16];

	(void)state;
	fixture_remove(&fx);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_periodic_fires_n_times, cleanup),
	    cmocka_unit_test_teardown(test_periodic_owned_source_stops_when_unref, cleanup),
	    cmocka_unit_test_teardown(test_periodic_failing_handler_stops, cleanup),
	    cmocka_unit_test_teardown(test_periodic_disabled_from_handler_stays_off, cleanup),
	    cmocka_unit_test_teardown(test_periodic_bad_arguments, cleanup),
	    cmocka_unit_test_teardown(test_sigterm_ends_run, cleanup),
	    cmocka_unit_test_teardown(test_sigint_ends_run, cleanup),
	    cmocka_unit_test_teardown(test_sighup_ignored, cleanup),
	    cmocka_unit_test_teardown(test_run_tells_systemd_ready_and_stopping, cleanup),
	    cmocka_unit_test_teardown(test_watchdog_is_fed, cleanup),
	    cmocka_unit_test_teardown(test_socket_path, cleanup),
	    cmocka_unit_test_teardown(test_socket_path_longest_sun_path, cleanup),
	    cmocka_unit_test_teardown(test_socket_path_too_long, cleanup),
	    cmocka_unit_test_teardown(test_socket_path_too_long_for_caller, cleanup),
	    cmocka_unit_test_teardown(test_socket_path_bad_names, cleanup),
	    cmocka_unit_test_teardown(test_args_short, cleanup),
	    cmocka_unit_test_teardown(test_args_long_and_defaults, cleanup),
	    cmocka_unit_test_teardown(test_args_unknown_long_option, cleanup),
	    cmocka_unit_test_teardown(test_args_unknown_short_option, cleanup),
	    cmocka_unit_test_teardown(test_args_config_without_file, cleanup),
	    cmocka_unit_test_teardown(test_args_stray_argument, cleanup),
	    cmocka_unit_test_teardown(test_args_help_and_version, cleanup),
	    cmocka_unit_test_teardown(test_setup_loads_config, cleanup),
	    cmocka_unit_test_teardown(test_setup_second_instance, cleanup),
	    cmocka_unit_test_teardown(test_setup_lock_is_ours, cleanup),
	    cmocka_unit_test_teardown(test_setup_check_config_ok, cleanup),
	    cmocka_unit_test_teardown(test_check_config_problems, cleanup),
	    cmocka_unit_test_teardown(test_check_config_alarm_output, cleanup),
	    cmocka_unit_test_teardown(test_check_config_notes_revoked, cleanup),
	    cmocka_unit_test_teardown(test_setup_bad_config_exits_1, cleanup),
	    cmocka_unit_test_teardown(test_setup_missing_config_exits_1, cleanup),
	    cmocka_unit_test_teardown(test_setup_syntax_error_exits_1, cleanup),
	    cmocka_unit_test_teardown(test_setup_config_is_a_directory, cleanup),
	    cmocka_unit_test_teardown(test_setup_config_not_a_file, cleanup),
	    cmocka_unit_test_teardown(test_run_without_loop, cleanup),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
