/* What every iotsec daemon does before and around its own work: command line, logging,
 * configuration, and the one event loop (sd-event) with systemd readiness and watchdog. */
#ifndef IOTSEC_DAEMON_H
#define IOTSEC_DAEMON_H

#include <stdbool.h>
#include <systemd/sd-event.h>

#include "config.h"

struct daemon_opts {
	const char *config_path;
	bool check_config;
	bool verbose;
};

/* Parse -c FILE, --check-config, -v, --help and --version. --help and --version print and
 * exit 0; a bad argument prints usage and exits 2. summary is one line on what the daemon does. */
void daemon_parse_args(int argc, char **argv, const char *name, const char *summary,
		       struct daemon_opts *ret);

/* Parse the arguments, start logging, load the configuration and, for --check-config, report
 * and exit. A bad configuration is reported with file, line and setting and exits 1 before any
 * state is touched. Then raise the clock floor from the time certd saved (state_dir/clock). */
void daemon_setup(int argc, char **argv, const char *name, const char *summary,
		  struct iotsec_config *cfg);

/* A loop on which SIGTERM and SIGINT end daemon_run() cleanly and the systemd watchdog (when
 * WATCHDOG_USEC is set) is fed. */
int daemon_loop_new(sd_event **ret);
/* Tell systemd we are ready (READY=1, with status), run until a signal or sd_event_exit(), then
 * say STOPPING=1. Returns the loop's exit code. */
int daemon_run(sd_event *e, const char *status);

/* A timer that fires every period_usec (sd-event timers fire once); first after period_usec. */
int daemon_add_periodic(sd_event *e, uint64_t period_usec, sd_event_time_handler_t fn,
			void *userdata, sd_event_source **ret);

/* The control socket path of a daemon ("certd") under run_dir. */
int daemon_socket_path(const char *run_dir, const char *daemon, char *out, size_t outlen);

#endif
