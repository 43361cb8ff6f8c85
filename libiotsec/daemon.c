/* daemon: what every iotsec daemon does around its own work (daemon.h). This is the boundary
 * between the library and a program, so daemon_setup() may log errors and exit. */
#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "cert.h"
#include "clock.h"
#include "crl.h"
#include "crypto.h"
#include "file.h"
#include "keydict.h"
#include "log.h"
#include "version.h"

enum {
	OPT_CHECK_CONFIG = 0x100,
	OPT_VERSION,
	OPT_MAKE_KEY,
};

static void usage(FILE *f, const char *name, const char *summary, unsigned needs)
{
	fprintf(f,
		"Usage: %s [-c FILE] [--check-config%s] [-v]\n"
		"%s\n"
		"\n"
		"  -c, --config FILE   configuration file (default %s)\n"
		"      --check-config  check the configuration, print \"configuration OK\" or the\n"
		"                      problem, and exit\n",
		name, needs & DAEMON_NEEDS_DICTIONARY ? " | --make-key" : "", summary,
		CONFIG_DEFAULT_PATH);
	if (needs & DAEMON_NEEDS_DICTIONARY)
		fprintf(f,
			"      --make-key      make the dictionary key (dictd.key_file) if it is\n"
			"                      missing and no dictionary exists, and exit\n");
	fprintf(f, "  -v, --verbose       log debug messages too\n"
		   "  -h, --help          show this help and exit\n"
		   "      --version       show the version and exit\n");
}

void daemon_parse_args(int argc, char **argv, const char *name, const char *summary, unsigned needs,
		       struct daemon_opts *ret)
{
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"check-config", no_argument, NULL, OPT_CHECK_CONFIG},
	    {"make-key", no_argument, NULL, OPT_MAKE_KEY},
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
		case OPT_MAKE_KEY:
			if (!(needs & DAEMON_NEEDS_DICTIONARY)) {
				fprintf(stderr, "%s: --make-key is iotsec-dictd's\n", name);
				usage(stderr, name, summary, needs);
				exit(2);
			}
			o.make_key = true;
			break;
		case 'v':
			o.verbose = true;
			break;
		case 'h':
			usage(stdout, name, summary, needs);
			exit(0);
		case OPT_VERSION:
			printf("%s (iotsec) %s\n", name, IOTSEC_VERSION);
			exit(0);
		default: /* getopt_long has said what is wrong */
			usage(stderr, name, summary, needs);
			exit(2);
		}
	}
	if (optind < argc) {
		fprintf(stderr, "%s: unexpected argument '%s'\n", name, argv[optind]);
		usage(stderr, name, summary, needs);
		exit(2);
	}
	if (o.make_key && o.check_config) {
		fprintf(stderr, "%s: --make-key and --check-config are two runs\n", name);
		exit(2);
	}
	*ret = o;
}

/* One instance per daemon and run directory: a second one would take over the control socket
 * and remove it on exit, leaving the first unreachable. The lock is an flock(), so it goes with
 * the process however that ends; the file stays (removing it would race a starting instance)
 * and says who holds it, emptied on a clean exit. Its descriptor stays open for the life of the
 * process. */
static int lock_fd = -1;

/* On a clean exit the file keeps no pid that may come to name another process. */
static void clear_pid(void)
{
	if (ftruncate(lock_fd, 0) < 0)
		log_debug("cannot clear the pid file: %s", strerror(errno));
}

static void take_lock(const char *run_dir, const char *name)
{
	char path[PATH_MAX], pid[32] = "";
	struct stat st;
	ssize_t n;
	int fd;

	if (snprintf(path, sizeof(path), "%s/%s.pid", run_dir, name) >= (int)sizeof(path))
		fatalx("%s/%s.pid: %s", run_dir, name, iotsec_strerror(-ENAMETOOLONG));
	/* 0600 and ours: flock() needs only an open descriptor, so a file others may open is a
	 * lock any local user could take first and keep the daemon from starting again. */
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0)
		fatal("%s", path);
	if (fstat(fd, &st) < 0)
		fatal("%s", path);
	if (st.st_uid != geteuid())
		fatalx("%s: owned by uid %u, not by us (uid %u): remove it", path,
		       (unsigned)st.st_uid, (unsigned)geteuid());
	if ((st.st_mode & 077) != 0 && fchmod(fd, 0600) < 0)
		fatal("%s: chmod 600", path);
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno != EWOULDBLOCK)
			fatal("%s: cannot lock", path);
		n = pread(fd, pid, sizeof(pid) - 1, 0);
		pid[n > 0 ? strcspn(pid, "\n") : 0] = '\0';
		fatalx("already running (pid %s): %s is locked", pid[0] ? pid : "unknown", path);
	}
	n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)n, 0) != n)
		log_warn("%s: cannot write our pid", path);
	lock_fd = fd;
	atexit(clear_pid);
}

void daemon_setup(int argc, char **argv, const char *name, const char *summary, unsigned needs,
		  struct iotsec_config *cfg)
{
	/* "iotsec-certd": its files are in run_dir/certd and state_dir/certd. */
	const char *daemon = strncmp(name, "iotsec-", 7) == 0 ? name + 7 : name;
	char err[CONFIG_ERR_MAX], clock_path[PATH_MAX], run_dir[PATH_MAX], state_dir[PATH_MAX];
	struct daemon_opts o;
	int r;

	crypto_wipe_json();
	daemon_parse_args(argc, argv, name, summary, needs, &o);
	log_init(name, o.verbose ? LOG_DEBUG : LOG_INFO);
	if (config_load(o.config_path, cfg, err, sizeof(err)) < 0) {
		log_errx("%s", err);
		exit(1);
	}
	if (o.check_config) {
		/* Everything start-up needs, as sshd -t checks: a unit's ExecStartPre stops here.
		 */
		if (daemon_check(cfg, daemon, needs, stderr) > 0) {
			fprintf(stderr, "%s: configuration %s has the problems above\n", name,
				o.config_path);
			exit(1);
		}
		printf("configuration OK\n");
		config_free(cfg);
		exit(0);
	}
	if (o.make_key) {
		/* For the unit that makes the key systemd then hands to dictd: run as root, before
		 * dictd, and touching nothing of dictd's (its lock, its directories). */
		uint8_t key[CRYPTO_KEY_LEN];

		r = daemon_dict_key_load(cfg, cfg->dictd.key_file, key);
		crypto_wipe(key, sizeof(key));
		if (r == 0)
			printf("dictionary key %s ready\n", cfg->dictd.key_file);
		config_free(cfg);
		exit(r < 0 ? 1 : 0);
	}
	log_debug("configuration from %s", o.config_path);
	if ((r = daemon_dir(cfg->device.run_dir, daemon, run_dir, sizeof(run_dir))) < 0 ||
	    (r = file_mkdirs(run_dir, 0755)) < 0)
		fatalx("cannot create the run directory %s/%s: %s", cfg->device.run_dir, daemon,
		       iotsec_strerror(r));
	/* certd's is readable by all, for the clock, and pingd's, for the CRL it received
	 * (crl_received_path()); the others' hold what is theirs alone. */
	if ((r = daemon_dir(cfg->device.state_dir, daemon, state_dir, sizeof(state_dir))) < 0 ||
	    (r = file_mkdirs(state_dir, strcmp(daemon, "certd") == 0 || strcmp(daemon, "pingd") == 0
					    ? 0755
					    : 0700)) < 0)
		fatalx("cannot create the state directory %s/%s: %s", cfg->device.state_dir, daemon,
		       iotsec_strerror(r));
	take_lock(run_dir, daemon);
	/* SPEC 5.2: every daemon judges time by the same floor, not only certd, which saves it. */
	if (daemon_dir(cfg->device.state_dir, "certd", clock_path, sizeof(clock_path) - 6) == 0 &&
	    (strcat(clock_path, "/clock"), r = clock_load(clock_path)) < 0)
		log_warnx("ignoring the saved clock %s: %s", clock_path, iotsec_strerror(r));
}

/* SIGHUP's default action would end the daemon without a word. Each daemon's settings reach
 * the others' (the election's timings, the ring sizes) only through a fresh start, so a reload
 * would be a restart in all but name: say so instead. */
static int on_sighup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
	(void)s, (void)si, (void)userdata;
	log_notice(
	    "SIGHUP ignored: the configuration is read at start; restart the daemon to apply "
	    "a change");
	return 0;
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
	sigaddset(&mask, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0) {
		r = -errno;
		goto out;
	}
	/* No handler: the loop exits with code 0 (the userdata). */
	if ((r = sd_event_add_signal(e, NULL, SIGTERM, NULL, NULL)) < 0 ||
	    (r = sd_event_add_signal(e, NULL, SIGINT, NULL, NULL)) < 0 ||
	    (r = sd_event_add_signal(e, NULL, SIGHUP, on_sighup, NULL)) < 0)
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

struct ctl_server *daemon_ctl_server(sd_event *e, const struct iotsec_config *cfg, const char *name,
				     const struct ctl_verb *verbs, void *userdata,
				     const char *clients)
{
	struct ctl_server *s = NULL;
	char path[PATH_MAX], missing[256];
	int r;

	if ((r = daemon_socket_path(cfg->device.run_dir, name, path, sizeof(path))) < 0 ||
	    (r = ctl_server_new(e, path, verbs, userdata, &s)) < 0)
		fatalx("control socket %s/%s.sock: %s", cfg->device.run_dir, name,
		       iotsec_strerror(r));
	if ((r = ctl_server_allow(s, CTL_MAY_READ, cfg->control.readers, missing,
				  sizeof(missing))) < 0)
		fatalx("control.readers: %s", iotsec_strerror(r));
	if (missing[0] != '\0')
		log_notice("control.readers: no user or group %s on this system: left out",
			   missing);
	/* The setting is the daemon's own: dictd.clients, keyd.clients. */
	if (clients &&
	    (r = ctl_server_allow(s, CTL_MAY_CLIENT, clients, missing, sizeof(missing))) < 0)
		fatalx("%s.clients: %s", name, iotsec_strerror(r));
	if (clients && missing[0] != '\0')
		log_notice("%s.clients: no user or group %s on this system: left out", name,
			   missing);
	return s;
}

int daemon_dir(const char *dir, const char *daemon, char *out, size_t len)
{
	if (dir == NULL || daemon == NULL || daemon[0] == '\0' || strchr(daemon, '/') != NULL)
		return -EINVAL;
	return snprintf(out, len, "%s/%s", dir, daemon) < (int)len ? 0 : -ENAMETOOLONG;
}

int daemon_cert_store_load(const struct iotsec_config *cfg, struct cert_store **ret)
{
	char received[PATH_MAX];
	int r;

	if ((r = crl_received_path(cfg->device.state_dir, received, sizeof(received))) < 0)
		return r;
	return cert_store_load_received(cfg->device.ca, cfg->device.crl, received, ret);
}

void daemon_note_received_crl(const struct cert_store *s, bool reloaded, int *last)
{
	int r = cert_store_received_status(s);
	uint64_t number = 0;

	if (r == *last && !(r == 0 && reloaded))
		return;
	*last = r;
	if (r == 0) {
		(void)cert_store_crl_number(s, &number);
		log_notice("CRL in force: %s (number %llu), newer than the configured one",
			   cert_store_received_path(s), (unsigned long long)number);
	} else if (r != -ENOENT && r != -EALREADY) {
		log_warnx("ignoring the received CRL %s: %s", cert_store_received_path(s),
			  iotsec_strerror(r));
	}
}

void daemon_ca_watch_start(const struct cert_store *s, struct daemon_ca_watch *w)
{
	*w = (struct daemon_ca_watch){.received_crl = -ENOENT};
	daemon_note_received_crl(s, true, &w->received_crl);
}

void daemon_ca_refresh(struct cert_store *s, struct daemon_ca_watch *w, uint64_t interval_ms)
{
	uint64_t now = clock_mono_ms();
	bool changed = false;
	int r;

	if (w->refreshed_ms != 0 && now < w->refreshed_ms + interval_ms)
		return;
	w->refreshed_ms = now;
	r = cert_store_refresh(s, &changed);
	if (r < 0 && r != w->refresh_error)
		log_warnx("keeping the previous CA and CRL: %s", iotsec_strerror(r));
	w->refresh_error = r;
	daemon_note_received_crl(s, changed, &w->received_crl);
}

int daemon_socket_path(const char *run_dir, const char *daemon, char *out, size_t outlen)
{
	char path[sizeof(((struct sockaddr_un *)NULL)->sun_path)];
	int n;

	if (run_dir == NULL || daemon == NULL || out == NULL || run_dir[0] == '\0' ||
	    daemon[0] == '\0' || strchr(daemon, '/') != NULL)
		return -EINVAL;
	n = snprintf(path, sizeof(path), "%s/%s/%s.sock", run_dir, daemon, daemon);
	if (n < 0)
		return -EINVAL;
	if ((size_t)n >= sizeof(path) || (size_t)n >= outlen)
		return -ENAMETOOLONG;
	memcpy(out, path, (size_t)n + 1);
	return 0;
}

/* ---- --check-config ---- */

static int problem(FILE *out, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int problem(FILE *out, const char *path, const char *fmt, ...)
{
	va_list ap;

	fprintf(out, "%s: ", path);
	va_start(ap, fmt);
	vfprintf(out, fmt, ap);
	va_end(ap);
	fputc('\n', out);
	return 1;
}

/* A file we read: there, a regular file, readable; 0 when so, else one problem printed. */
static int check_file(FILE *out, const char *path)
{
	char buf[128];
	const char *why = file_problem(path, false, buf, sizeof(buf));

	return why ? problem(out, path, "%s", why) : 0;
}

/* A secret as file_check_secret() judges it, saying what is wrong and how to mend it. */
static int check_secret(FILE *out, const char *path)
{
	struct stat st;

	if (check_file(out, path))
		return 1;
	if (file_check_secret(path) != -IOTSEC_ESECRET || stat(path, &st) < 0)
		return 0;
	if ((st.st_mode & 077) != 0)
		return problem(out, path,
			       "mode %04o lets group or others read a secret (chmod 600 %s)",
			       (unsigned)(st.st_mode & 07777), path);
	return problem(out, path, "owned by uid %u; a secret must be ours (uid %u) or root's",
		       (unsigned)st.st_uid, (unsigned)geteuid());
}

/* A directory we write in, or, when missing, one we can create: its nearest existing parent
 * must then be writable. */
static int check_dir(FILE *out, const char *path)
{
	char dir[PATH_MAX];
	struct stat st;
	char *slash;

	if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir))
		return problem(out, path, "path too long");
	while (stat(dir, &st) < 0) {
		if (errno != ENOENT && errno != ENOTDIR) /* ENOTDIR: a file on the way, below */
			return problem(out, dir, "%s", strerror(errno));
		if ((slash = strrchr(dir, '/')) == NULL || slash == dir)
			return problem(out, path,
				       "missing, and no parent directory to create it in");
		*slash = '\0';
	}
	if (!S_ISDIR(st.st_mode))
		return problem(out, dir, "not a directory");
	if (access(dir, W_OK | X_OK) < 0)
		return problem(out, dir, "%snot writable by uid %u",
			       strcmp(dir, path) != 0 ? "cannot create what is below it: " : "",
			       (unsigned)geteuid());
	return 0;
}

int daemon_secret_path(const char *credential, const char *configured, char *out, size_t len)
{
	const char *creds = getenv("CREDENTIALS_DIRECTORY");
	char path[PATH_MAX];

	/* systemd's LoadCredential= wins: the daemon's user need not be able to read the file. */
	if (creds && snprintf(path, sizeof(path), "%s/%s", creds, credential) < (int)sizeof(path) &&
	    access(path, F_OK) == 0)
		return snprintf(out, len, "%s", path) < (int)len ? 0 : -ENAMETOOLONG;
	return snprintf(out, len, "%s", configured) < (int)len ? 0 : -ENAMETOOLONG;
}

int daemon_dict_key_load(const struct iotsec_config *cfg, const char *path,
			 uint8_t key[CRYPTO_KEY_LEN])
{
	char *buf = NULL, dir[PATH_MAX];
	size_t len = 0;
	int r = file_check_secret(path);

	if (r == -ENOENT && access(cfg->dictd.path, F_OK) < 0 && errno != ENOENT) {
		/* iotsec-dictd-key.service, as root without capabilities, cannot look into dictd's
		 * own directory: not knowing is no licence to make a key. */
		log_errx(
		    "dictionary key %s: missing, and whether the dictionary %s exists cannot be "
		    "told (%s): refusing to make a new key",
		    path, cfg->dictd.path, strerror(errno));
		return -ENOKEY;
	}
	if (r == -ENOENT && access(cfg->dictd.path, F_OK) == 0) {
		/* A new key would only make the dictionary unreadable, and look like tampering. */
		log_errx("dictionary key %s: missing, while the dictionary %s exists: refusing to "
			 "make a new key (check dictd.key_file, or the dict.key credential)",
			 path, cfg->dictd.path);
		return -ENOKEY;
	}
	if (r == -ENOENT) {
		/* First start: make the key. Nothing is encrypted under a missing key yet. */
		snprintf(dir, sizeof(dir), "%s", path);
		if ((r = file_mkdirs(dirname(dir), 0700)) < 0 ||
		    (r = crypto_random(key, CRYPTO_KEY_LEN)) < 0 ||
		    (r = file_write_atomic(path, key, CRYPTO_KEY_LEN, 0600)) < 0) {
			log_errx("cannot create the dictionary key %s: %s", path,
				 iotsec_strerror(r));
			return r;
		}
		log_notice("created a new dictionary key in %s", path);
		return 0;
	}
	if (r == 0)
		r = file_read(path, 64, &buf, &len);
	if (r == 0 && len != CRYPTO_KEY_LEN) {
		log_errx("dictionary key %s: %zu bytes; a dictionary key is %d random bytes", path,
			 len, CRYPTO_KEY_LEN);
		r = -EBADMSG;
	} else if (r < 0) {
		log_errx("dictionary key %s: %s", path, iotsec_strerror(r));
	} else {
		memcpy(key, buf, CRYPTO_KEY_LEN);
	}
	if (buf)
		crypto_wipe(buf, len);
	free(buf);
	return r;
}

/* The device's certificate, key, CA and CRL: there, parsing, matching one another. What certd
 * judges while running (revoked, expired, not yet valid) is a note, not a problem: certd must
 * start to say so, and to notice the files that mend it. */
static int check_device(const struct iotsec_config *c, unsigned needs, FILE *out)
{
	char key_path[PATH_MAX];
	struct cert_store *store = NULL;
	struct cert_info info;
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	int n = 0, r;

	if ((r = check_file(out, c->device.cert)) == 0 &&
	    (cert_load(c->device.cert, &cert) < 0 || cert_info_get(cert, &info) < 0))
		r = problem(out, c->device.cert, "not a PEM certificate of an iotsec device");
	else if (r == 0 && (needs & DAEMON_NEEDS_RELAY) && info.role != CERT_ROLE_RELAY)
		/* Not certd's to judge later: a relay with another role never works. */
		r = problem(out, c->device.cert,
			    "the certificate of %s has role %s; a relay needs role relay "
			    "(iotsec-pki enrol --role relay)",
			    info.name, cert_role_name(info.role));
	else if (r == 0 && c->device.name[0] != '\0' && strcmp(c->device.name, info.name) != 0)
		r = problem(out, c->device.cert,
			    "the certificate of device %s, not of %s (device.name)", info.name,
			    c->device.name);
	n += r;
	if (daemon_secret_path("device.key", c->device.key, key_path, sizeof(key_path)) < 0)
		r = problem(out, c->device.key, "path too long");
	else if ((r = check_secret(out, key_path)) == 0 &&
		 crypto_load_private_key(key_path, &key) < 0)
		r = problem(out, c->device.key, "not a PEM private key");
	else if (r == 0 && cert && cert_key_matches(cert, key) < 0)
		/* The file people know, even when systemd handed it over as a credential. */
		r = problem(out, c->device.key, "not the key of the certificate %s",
			    c->device.cert);
	n += r;
	if ((r = check_file(out, c->device.ca) + check_file(out, c->device.crl)) == 0 &&
	    (r = daemon_cert_store_load(c, &store)) < 0)
		r = problem(out, r == -IOTSEC_ECRL ? c->device.crl : c->device.ca, "%s",
			    iotsec_strerror(r));
	n += r;
	/* Not a problem: the device then follows the administrator's CRL. */
	if (store && (r = cert_store_received_status(store)) < 0 && r != -ENOENT &&
	    r != -EALREADY &&
	    crl_received_path(c->device.state_dir, key_path, sizeof(key_path)) == 0)
		fprintf(out, "%s: note: ignored (%s); %s is in force\n", key_path,
			iotsec_strerror(r), c->device.crl);
	if (store && cert && n == 0) {
		r = cert_verify(store, cert,
				needs & DAEMON_NEEDS_RELAY ? CERT_ROLE_RELAY : CERT_ROLES_ANY,
				NULL);
		if (r == -IOTSEC_EUNKNOWNCA || r == -IOTSEC_ESELFSIGNED || r == -IOTSEC_EHOME)
			n += problem(out, c->device.cert, "%s (%s)", iotsec_strerror(r),
				     c->device.ca);
		else if (r < 0 && (needs & DAEMON_NEEDS_RELAY) &&
			 (r == -EKEYEXPIRED || r == -IOTSEC_ENOTYETVALID || r == -EKEYREVOKED))
			/* No certd on the relay's machine to wait for a new one: it never works. */
			n += problem(out, c->device.cert,
				     "%s; a relay needs a valid certificate (iotsec-pki enrol "
				     "--role relay)",
				     iotsec_strerror(r));
		else if (r < 0)
			fprintf(out, "%s: note: %s; the device stays out of the home until then\n",
				c->device.cert, iotsec_strerror(r));
	}
	cert_store_free(store);
	EVP_PKEY_free(key);
	X509_free(cert);
	return n;
}

/* The dictionary and its key: a key is 32 bytes and opens the dictionary; a missing one can be
 * made where it goes, and never while a dictionary sealed under another exists. */
static int check_dictionary(const struct iotsec_config *c, FILE *out)
{
	char key_path[PATH_MAX], dir[PATH_MAX];
	uint8_t *key = NULL;
	struct keydict *dict = NULL;
	bool have_dict = access(c->dictd.path, F_OK) == 0;
	size_t len = 0;
	int n = 0, r;

	if (daemon_secret_path("dict.key", c->dictd.key_file, key_path, sizeof(key_path)) < 0)
		return problem(out, c->dictd.key_file, "path too long");
	if (have_dict && check_secret(out, c->dictd.path) != 0)
		n++, have_dict = false;
	if (access(key_path, F_OK) != 0) {
		snprintf(dir, sizeof(dir), "%s", key_path);
		if (have_dict)
			n += problem(
			    out, key_path,
			    "missing, while the dictionary %s sealed under it exists (check "
			    "dictd.key_file)",
			    c->dictd.path);
		else
			n += check_dir(out, dirname(dir));
	} else if (check_secret(out, key_path) != 0) {
		n++;
	} else if ((r = file_read(key_path, 2 * CRYPTO_KEY_LEN, (char **)&key, &len)) < 0 ||
		   len != CRYPTO_KEY_LEN) {
		n += problem(out, key_path, "%s%zu bytes; a dictionary key is %d random bytes",
			     r < 0 ? "more than " : "", r < 0 ? (size_t)2 * CRYPTO_KEY_LEN : len,
			     CRYPTO_KEY_LEN);
	} else if (have_dict && (r = keydict_load(key, c->dictd.path, &dict)) < 0) {
		n += problem(out, c->dictd.path, "%s",
			     r == -EBADMSG ? "does not open with the dictionary key (corrupt, "
					     "tampered with, or sealed under another key)"
					   : iotsec_strerror(r));
	}
	keydict_free(dict);
	if (key)
		crypto_wipe(key, len);
	free(key);
	/* Its directory, unless that is dictd's state directory, already looked at. */
	snprintf(dir, sizeof(dir), "%s", c->dictd.path);
	if (daemon_dir(c->device.state_dir, "dictd", key_path, sizeof(key_path)) < 0 ||
	    strcmp(dirname(dir), key_path) != 0)
		n += check_dir(out, dir);
	return n;
}

/* The alarm is written only when a pulse falls: a typo in its path, or a GPIO the unit may not
 * write (no ReadWritePaths= drop-in), would be found then, too late. sensord creates a missing
 * file but not its directory. */
static int check_alarm_output(const struct iotsec_config *c, FILE *out)
{
	const char *path = c->sensord.alarm_output;
	char dir[PATH_MAX];
	struct stat st;

	if (path == NULL || path[0] == '\0')
		return 0;
	if (stat(path, &st) == 0) {
		if (S_ISDIR(st.st_mode))
			return problem(out, path, "a directory, not a file");
		if (access(path, W_OK) < 0)
			return problem(out, path,
				       "not writable by uid %u: %s (a GPIO needs the unit's "
				       "ReadWritePaths=, see iotsec-sensord(8))",
				       (unsigned)geteuid(), strerror(errno));
		return 0;
	}
	if (errno != ENOENT)
		return problem(out, path, "%s", strerror(errno));
	if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir))
		return problem(out, path, "path too long");
	dirname(dir);
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
		return problem(out, path, "missing, and so is its directory %s", dir);
	if (access(dir, W_OK | X_OK) < 0)
		return problem(out, path, "missing, and its directory is not writable by uid %u",
			       (unsigned)geteuid());
	return 0;
}

/* The relay's SQLite store: a read-only file or directory would be found only at start, when
 * --check-config already said OK. A PostgreSQL server may be down for a while: the start says
 * so then. */
static int check_relay_store(const struct iotsec_config *c, FILE *out)
{
	const char *path = c->relay.database;
	char dir[PATH_MAX], state[PATH_MAX];
	struct stat st;
	int n = 0;

	if (strcmp(c->relay.store, "sqlite") != 0)
		return 0;
	if (stat(path, &st) == 0) {
		if (!S_ISREG(st.st_mode))
			return problem(out, path, "not a file (relay.database)");
		if (access(path, R_OK | W_OK) < 0)
			n += problem(out, path, "the store cannot be written by uid %u: %s",
				     (unsigned)geteuid(), strerror(errno));
	} else if (errno != ENOENT) {
		return problem(out, path, "%s", strerror(errno));
	}
	if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir))
		return problem(out, path, "path too long");
	/* Its directory (SQLite writes its -wal and -shm files beside it), unless that is the
	 * state directory, already looked at. */
	dirname(dir);
	if (daemon_dir(c->device.state_dir, "relayd", state, sizeof(state)) < 0 ||
	    strcmp(dir, state) != 0)
		n += check_dir(out, dir);
	return n;
}

int daemon_check(const struct iotsec_config *cfg, const char *daemon, unsigned needs, FILE *out)
{
	char state_dir[PATH_MAX], run_dir[PATH_MAX];

	if (daemon_dir(cfg->device.state_dir, daemon, state_dir, sizeof(state_dir)) < 0 ||
	    daemon_dir(cfg->device.run_dir, daemon, run_dir, sizeof(run_dir)) < 0)
		return problem(out, cfg->device.state_dir, "path too long");
	return (needs & DAEMON_NEEDS_DEVICE ? check_device(cfg, needs, out) : 0) +
	       check_dir(out, state_dir) + check_dir(out, run_dir) +
	       (needs & DAEMON_NEEDS_DICTIONARY ? check_dictionary(cfg, out) : 0) +
	       (needs & DAEMON_NEEDS_ALARM ? check_alarm_output(cfg, out) : 0) +
	       (needs & DAEMON_NEEDS_RELAY ? check_relay_store(cfg, out) : 0);
}
