/* What every iotsec daemon does before and around its own work: command line, logging,
 * configuration, and the one event loop (sd-event) with systemd readiness and watchdog. */
#ifndef IOTSEC_DAEMON_H
#define IOTSEC_DAEMON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <systemd/sd-event.h>

#include "cert.h"
#include "config.h"
#include "crypto.h"
#include "ctl.h"

/* The exit status of a daemon that must start again to take up a change (EX_TEMPFAIL): not 0,
 * so that the units' Restart=on-failure applies. */
#define DAEMON_EXIT_RESTART 75

struct daemon_opts {
	const char *config_path;
	bool check_config;
	bool make_key;
	bool verbose;
};

/* Parse -c FILE, --check-config, -v, --help and --version, and with DAEMON_NEEDS_DICTIONARY in
 * needs --make-key. --help and --version print and exit 0; a bad argument prints usage and exits
 * 2. summary is one line on what the daemon does. */
void daemon_parse_args(int argc, char **argv, const char *name, const char *summary, unsigned needs,
		       struct daemon_opts *ret);

/* Parse the arguments, start logging, load the configuration and, for --check-config, check
 * what the daemon needs (enum daemon_needs, daemon_check()), report and exit; for --make-key,
 * make the dictionary key (daemon_dict_key_load() on dictd.key_file) and exit. A bad configuration
 * is reported with file, line and setting and exits 1 before any state is touched. Then create the
 * run and state directories, take the run directory's lock for this daemon (a second instance exits
 * 1 with "already running (pid N)"), and raise the clock floor from the time certd saved
 * (state_dir/clock). */
void daemon_setup(int argc, char **argv, const char *name, const char *summary, unsigned needs,
		  struct iotsec_config *cfg);

/* A loop on which SIGTERM and SIGINT end daemon_run() cleanly, SIGHUP is logged and ignored, and
 * the systemd watchdog (when WATCHDOG_USEC is set) is fed. */
int daemon_loop_new(sd_event **ret);
/* Tell systemd we are ready (READY=1, with status), run until a signal or sd_event_exit(), then
 * say STOPPING=1. Returns the loop's exit code: 0 after a signal, DAEMON_EXIT_RESTART. */
int daemon_run(sd_event *e, const char *status);

/* A timer that fires every period_usec (sd-event timers fire once); first after period_usec. */
int daemon_add_periodic(sd_event *e, uint64_t period_usec, sd_event_time_handler_t fn,
			void *userdata, sd_event_source **ret);

/* What a daemon needs besides its state and run directories: what --check-config checks. */
enum daemon_needs {
	DAEMON_NEEDS_DEVICE = 1,     /* certificate, key, CA and CRL (certd, electd, keyd) */
	DAEMON_NEEDS_DICTIONARY = 2, /* the dictionary and its key (dictd) */
	DAEMON_NEEDS_ALARM = 4,	     /* sensord.alarm_output can be written (sensord) */
	DAEMON_NEEDS_RELAY = 8,	     /* with DEVICE: the certificate has role relay (relayd) */
};

/* Check what start-up needs, beyond the configuration's syntax: the state and run directories
 * are usable; with DAEMON_NEEDS_DEVICE the certificate, key, CA and CRL are there and parse, the
 * key is a secret (0600, ours or root's) and matches the certificate, which the CA signed; with
 * DAEMON_NEEDS_DICTIONARY the dictionary key is 32 bytes and opens the dictionary, or, missing,
 * can be made and no dictionary exists; with DAEMON_NEEDS_ALARM sensord.alarm_output, when set, is
 * a file we may write, or one we may create in its directory. Print each problem on out as "path:
 * reason" (and what certd will judge, such as a revoked certificate, as a note); return how many
 * problems. */
int daemon_check(const struct iotsec_config *cfg, const char *daemon, unsigned needs, FILE *out);
/* Where a daemon finds a secret: systemd's credential of that name (LoadCredential=, which
 * systemd reads as root and hands to the daemon's user alone) when there is one, else the file
 * the configuration names. */
int daemon_secret_path(const char *credential, const char *configured, char *out, size_t len);
/* Read the dictionary key at path into key; when it is missing and no dictionary exists (the
 * first start) make it there, 0600, with its directory. Logs what is wrong. */
int daemon_dict_key_load(const struct iotsec_config *cfg, const char *path,
			 uint8_t key[CRYPTO_KEY_LEN]);

/* The daemon's control socket, run_dir/NAME.sock (name: "certd"), open beside root and our own
 * user to control.readers and, with clients (its setting NAME.clients, a list as control.readers),
 * to those who may call its CTL_KEYS and CTL_CONTROLS verbs. Names unknown on this system are
 * logged once. Exits on failure. */
struct ctl_server *daemon_ctl_server(sd_event *e, const struct iotsec_config *cfg, const char *name,
				     const struct ctl_verb *verbs, void *userdata,
				     const char *clients);

/* The home CA and the CRL in force for cfg: device.ca, and the newer of device.crl and the CRL
 * received from another device (crl_received_path() under device.state_dir), as
 * cert_store_load_received() says. Every daemon that verifies certificates loads its store so. */
int daemon_cert_store_load(const struct iotsec_config *cfg, struct cert_store **ret);
/* Say once whether the received CRL is in force (again whenever s was reloaded: it may be
 * another one), or why an unusable one is ignored; *last holds what was said (start it at
 * -ENOENT: nothing to say without a file). */
void daemon_note_received_crl(const struct cert_store *s, bool reloaded, int *last);

/* A daemon's watch on its home CA and CRL files (cert_store_refresh()), looked at no more than
 * every interval: three stat() calls a look, not for every message of a flood. */
struct daemon_ca_watch {
	uint64_t refreshed_ms; /* monotonic, when the files were last looked at; 0: at once */
	int refresh_error;     /* the last refresh's, logged once */
	int received_crl;      /* daemon_note_received_crl()'s */
};
/* Start watching s, just loaded: says whether a received CRL is in force. */
void daemon_ca_watch_start(const struct cert_store *s, struct daemon_ca_watch *w);
/* Re-read the CA and CRLs if they changed and interval_ms has passed since the last look; keep
 * the previous ones if the new ones are unusable, and say so once (and what becomes of a
 * received CRL). */
void daemon_ca_refresh(struct cert_store *s, struct daemon_ca_watch *w, uint64_t interval_ms);

/* A daemon's own directory under run_dir or state_dir: dir/daemon ("certd"). Each daemon's
 * files are in directories of its own, which only its user can write (the units'
 * RuntimeDirectory= and StateDirectory=): no other daemon's user can plant a socket, a pid file
 * or a state file under its name. */
int daemon_dir(const char *dir, const char *daemon, char *out, size_t len);
/* The control socket path of a daemon ("certd"): run_dir/certd/certd.sock. */
int daemon_socket_path(const char *run_dir, const char *daemon, char *out, size_t outlen);

#endif
