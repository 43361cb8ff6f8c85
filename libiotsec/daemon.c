/* daemon: what every iotsec daemon does around its own work (daemon.h). This is the boundary
 * between the library and a program, so daemon_setup() may log errors and exit. */
#include "daemon.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include <systemd/sd-daemon.h>

#include "clock.h"
#include "crypto.h"
#include "log.h"

#ifndef IOTSEC_VERSION
#define IOTSEC_VERSION "0.1"
#endif

enum {
	OPT_CHECK_CONFIG = 0x100,
	OPT_VERSION,
};

static void usage(FILE *f, const char *name, const char *summary)
{
	fprintf(f,
		"Usage: %s [-c FILE] [--check-config] [-v]\n"
		"%s\n"
		"\n"
		"  -c, --config FILE   configuration file (default %s)\n"
		"      --check-config  check the configuration, print \"configuration OK\" or the\n"
		"                      problem, and exit\n"
		"  -v, --verbose       log debug messages too\n"
		"  -h, --help          show this help and exit\n"
		"      --version       show the version and exit\n",
		name, summary, CONFIG_DEFAULT_PATH);
}

void daemon_parse_args(int argc, char **argv, const char *name, const char *summary,
		       struct daemon_opts *ret)
{
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"check-config", no_argument, NULL, OPT_CHECK_CONFIG},
	    {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, OPT_VERSION},
	    {NULL, 0, NULL, 0},
	};
	struct daemon_opts o = {.config_path = CONFIG_DEFAULT_PATH};
	int ch;

	/* 0, not 1: glibc then starts afresh, so a process (a test) may parse more than once. */
	optind = 0;
	while ((ch = getopt_long(argc, argv, "c:vh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			o.config_path = optarg;
			break;
		case OPT_CHECK_CONFIG:
			o.check_config = true;
			break;
		case 'v':
			o.verbose = true;
			break;
		case 'h':
			usage(stdout, name, summary);
			exit(0);
		case OPT_VERSION:
			printf("%s (iotsec) %s\n", name, IOTSEC_VERSION);
			exit(0);
		default: /* getopt_long has said what is wrong */
			usage(stderr, name, summary);
			exit(2);
		}
	}
	if (optind < argc) {
		fprintf(stderr, "%s: unexpected argument '%s'\n", name, argv[optind]);
		usage(stderr, name, summary);
		exit(2);
	}
	*ret = o;
}

void daemon_setup(int argc, char **argv, const char *name, const char *summary,
		  struct iotsec_config *cfg)
{
	struct daemon_opts o;
	char err[CONFIG_ERR_MAX], clock_path[PATH_MAX];
	int r;

	crypto_wipe_json();
	daemon_parse_args(argc, argv, name, summary, &o);
	log_init(name, o.verbose ? LOG_DEBUG : LOG_INFO);
	if (config_load(o.config_path, cfg, err, sizeof(err)) < 0) {
		log_errx("%s", err);
		exit(1);
	}
	if (o.check_config) {
		printf("configuration OK\n");
		config_free(cfg);
		exit(0);
	}
	log_debug("configuration from %s", o.config_path);
	/* SPEC 5.2: every daemon judges time by the same floor, not only certd, which saves it. */
	if (snprintf(clock_path, sizeof(clock_path), "%s/clock", cfg->device.state_dir) <
		(int)sizeof(clock_path) &&
	    (r = clock_load(clock_path)) < 0)
		log_warnx("ignoring the saved clock %s: %s", clock_path, iotsec_strerror(r));
}

int daemon_loop_new(sd_event **ret)
{
	sd_event *e = NULL;
	sigset_t mask;
	int r;

	if ((r = sd_event_default(&e)) < 0)
		goto out;
	/* sd-event takes signals through a signalfd, which sees only blocked signals. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0) {
		r = -errno;
		goto out;
	}
	/* No handler: the loop exits with code 0 (the userdata). */
	if ((r = sd_event_add_signal(e, NULL, SIGTERM, NULL, NULL)) < 0 ||
	    (r = sd_event_add_signal(e, NULL, SIGINT, NULL, NULL)) < 0)
		goto out;
	/* Feeds the watchdog when systemd set WATCHDOG_USEC; nothing otherwise. */
	if ((r = sd_event_set_watchdog(e, true)) < 0)
		goto out;
	*ret = e;
	e = NULL;
	r = 0;
out:
	sd_event_unref(e);
	return r;
}

int daemon_run(sd_event *e, const char *status)
{
	int r;

	if (e == NULL)
		return -EINVAL;
	if (status != NULL)
		sd_notifyf(0, "READY=1\nSTATUS=%s", status);
	else
		sd_notify(0, "READY=1");
	r = sd_event_loop(e);
	sd_notify(0, "STOPPING=1");
	return r;
}

#define PERIODIC_ACCURACY_MAX (250 * 1000) /* usec; sd-event's default */

struct periodic {
	sd_event_time_handler_t fn;
	void *userdata;
	uint64_t period_usec;
};

static void periodic_free(void *userdata)
{
	free(userdata);
}

/* Call the user, then move the deadline one period on from now. The source stays enabled, so a
 * user who disables it from the handler stops the timer; a failing handler disables it too. */
static int periodic_fire(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct periodic *p = userdata;
	int r;

	if ((r = p->fn(s, usec, p->userdata)) < 0)
		return r;
	return sd_event_source_set_time_relative(s, p->period_usec);
}

int daemon_add_periodic(sd_event *e, uint64_t period_usec, sd_event_time_handler_t fn,
			void *userdata, sd_event_source **ret)
{
	sd_event_source *s = NULL;
	struct periodic *p = NULL;
	uint64_t accuracy;
	int r;

	if (e == NULL || fn == NULL || period_usec == 0)
		return -EINVAL;
	if ((p = malloc(sizeof(*p))) == NULL)
		return -ENOMEM;
	*p = (struct periodic){.fn = fn, .userdata = userdata, .period_usec = period_usec};
	/* sd-event's default slack (250 ms) would swallow short periods: allow a tenth of one. */
	accuracy =
	    period_usec / 10 < PERIODIC_ACCURACY_MAX ? period_usec / 10 + 1 : PERIODIC_ACCURACY_MAX;
	r = sd_event_add_time_relative(e, &s, CLOCK_MONOTONIC, period_usec, accuracy, periodic_fire,
				       p);
	if (r < 0) {
		free(p);
		goto out;
	}
	/* From here p lives exactly as long as the source. */
	if ((r = sd_event_source_set_destroy_callback(s, periodic_free)) < 0) {
		free(p);
		goto out;
	}
	/* Timers start as SD_EVENT_ONESHOT; ours stays on and moves its deadline instead. */
	if ((r = sd_event_source_set_enabled(s, SD_EVENT_ON)) < 0)
		goto out;
	if (ret == NULL && (r = sd_event_source_set_floating(s, true)) < 0)
		goto out;
	if (ret != NULL) {
		*ret = s;
		s = NULL;
	}
	r = 0;
out:
	sd_event_source_unref(s);
	return r;
}

int daemon_socket_path(const char *run_dir, const char *daemon, char *out, size_t outlen)
{
	char path[sizeof(((struct sockaddr_un *)NULL)->sun_path)];
	int n;

	if (run_dir == NULL || daemon == NULL || out == NULL || run_dir[0] == '\0' ||
	    daemon[0] == '\0' || strchr(daemon, '/') != NULL)
		return -EINVAL;
	n = snprintf(path, sizeof(path), "%s/%s.sock", run_dir, daemon);
	if (n < 0)
		return -EINVAL;
	if ((size_t)n >= sizeof(path) || (size_t)n >= outlen)
		return -ENAMETOOLONG;
	memcpy(out, path, (size_t)n + 1);
	return 0;
}
