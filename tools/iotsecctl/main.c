/* iotsecctl: look at the state of iotsec on this device, through the daemons' control sockets. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/x509.h>

#include "cert.h"
#include "config.h"
#include "ctl.h"
#include "daemon.h"
#include "iotsecctl.h"
#include "log.h"
#include "version.h"

/* Every daemon iotsec has, in the order status shows them: the home's six, which run on each
 * Pi, then the relay, which runs on a machine of its own in the cloud (SPEC 9). */
static const char *const daemons[] = {"certd", "electd",  "keyd",  "dictd",
				      "pingd", "sensord", "relayd"};
#define N_DAEMONS (sizeof(daemons) / sizeof(daemons[0]))
#define N_HOME	  6 /* the first N_HOME are a Pi's */

/* status's exit codes, as systemctl is-active and LSB's status: all well, something wrong,
 * nothing running, cannot tell (the configuration cannot be read, or the daemons turn this user
 * away). */
enum {
	STATUS_HEALTHY = 0,
	STATUS_DEGRADED = 1,
	STATUS_DOWN = 3,
	STATUS_UNKNOWN = 4,
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: iotsecctl [-c FILE] COMMAND [ARGS]\n"
		"\n"
		"Show the state of iotsec on this device.\n"
		"\n"
		"commands:\n"
		"  status [--json]    device, home, role, certificate and each daemon's state;\n"
		"                     exits 0 when all is well, 1 when a daemon is down, the\n"
		"                     device is out of the home, quarantined or has no\n"
		"                     controller, or the dictionary is locked; 3 when no daemon\n"
		"                     runs; 4 when the configuration cannot be read or this\n"
		"                     user may not ask; 1 too when sensord's alarm is set.\n"
		"                     On the relay's machine (a relay certificate), relayd\n"
		"                     alone; on a Pi, relayd only when its socket is there\n"
		"  relay [--json]     on the relay's machine: the broker, the ingest rate, the\n"
		"                     store, and the readings waiting for each doctor\n"
		"  peers [--json]     the devices this one knows: whether each answers, its\n"
		"                     trust, flags and bans (pingd), and the key shared (keyd)\n"
		"  readings [--follow] [--json]\n"
		"                     the home's sensor readings that sensord opened; with\n"
		"                     --follow, each new one as it comes\n"
		"  watch DAEMON [--count N] [--timeout SECONDS]\n"
		"                     print DAEMON's state, then each event it pushes, one JSON\n"
		"                     object a line\n"
		"  rekey [--exclude DEVICE]...\n"
		"                     on the controller (root): a new key pool now, giving the\n"
		"                     devices named nothing of it\n"
		"  quarantine list [--json]\n"
		"                     the devices put out of the home, and why\n"
		"  quarantine release DEVICE\n"
		"                     on the controller (root): take DEVICE off the quarantine;\n"
		"                     it is given a ring again\n"
		"  dict lock|unlock   stop or resume serving keys from the dictionary (root)\n"
		"  pool plan --nodes N --probability P [--ring K] [--pool S] [--json]\n"
		"                     size a key pool without changing anything\n"
		"\n"
		"options (before or after the command):\n"
		"  -c, --config FILE  configuration (default %s)\n"
		"  -h, --help         this text\n"
		"      --version      the version\n",
		CONFIG_DEFAULT_PATH);
}

json_t *ask(const char *run_dir, const char *daemon, const char *verb, json_t *args,
	    const char **ret_why, bool *ret_denied)
{
	struct ctl_client *c = NULL;
	json_t *reply = NULL;
	char path[PATH_MAX];
	int r;

	if (ret_denied)
		*ret_denied = false;
	if ((r = daemon_socket_path(run_dir, daemon, path, sizeof(path))) < 0 ||
	    (r = ctl_client_connect(path, &c)) < 0 ||
	    (r = ctl_client_call(c, verb, args, CALL_TIMEOUT_MS, &reply)) < 0) {
		/* No socket, or nobody behind it: the daemon is simply not running. */
		*ret_why = r == -ENOENT || r == -ECONNREFUSED ? "not running" : iotsec_strerror(r);
	} else if (ctl_reply_error(reply)) {
		static char refused[256];

		/* The daemon runs, but this user may not ask it: not the same as "not running". */
		if (ret_denied)
			*ret_denied = strncmp(ctl_reply_error(reply), "permission denied", 17) == 0;
		/* A reader asking for a change: the bare refusal does not say what would do. */
		snprintf(refused, sizeof(refused), "refused: %s%s", ctl_reply_error(reply),
			 strcmp(ctl_reply_error(reply), "permission denied") == 0
			     ? " (only root may change this: run it with sudo)"
			     : "");
		*ret_why = refused;
		json_decref(reply);
		reply = NULL;
	}
	ctl_client_free(c);
	return reply;
}

static void fmt_time(int64_t t, char *out, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	strftime(out, len, "%Y-%m-%d %H:%M UTC", gmtime_r(&tt, &tm));
}

/* keyd's quarantine (pingd gives it the controller's list) names this device: out of the home,
 * however well every daemon runs. */
static bool self_quarantined(json_t *doc)
{
	const char *self = json_string_value(json_object_get(doc, "device"));
	json_t *name;
	size_t i;

	json_array_foreach(json_object_get(doc, "quarantine"), i, name)
	{
		if (self && json_is_string(name) && strcmp(json_string_value(name), self) == 0)
			return true;
	}
	return false;
}

static bool alarm_set(json_t *sensord)
{
	return json_is_true(json_object_get(json_object_get(sensord, "alarm"), "set"));
}

/* sensord's line: the broker, the clock the stream keys follow, the doctor, the spool and the
 * alarm (an emergency the doctor has not acknowledged yet). */
static void print_sensord(json_t *s)
{
	json_t *alarm = json_object_get(s, "alarm");
	const char *doctor = json_string_value(json_object_get(s, "doctor"));
	const char *why = json_string_value(json_object_get(s, "broker_error"));

	if (!json_is_true(json_object_get(s, "running")))
		return;
	/* "connecting" for ever says nothing of a wrong name or port: the reason is in the log,
	 * and here too. */
	printf("sensors      broker %s%s%s%s, %s, epoch %lld, doctor %s, spool %lld pending "
	       "(%lld dropped)",
	       json_string_value(json_object_get(s, "broker")) ?: "?", why && why[0] ? " (" : "",
	       why && why[0] ? why : "", why && why[0] ? ")" : "",
	       json_string_value(json_object_get(s, "sync")) ?: "?",
	       (long long)json_integer_value(json_object_get(s, "epoch")),
	       doctor && doctor[0] ? doctor : "none",
	       (long long)json_integer_value(json_object_get(s, "spooled")),
	       (long long)json_integer_value(json_object_get(s, "spool_dropped")));
	/* Doctor readings held for a relay's receipt: none ever taken says the relay named in
	 * sensord.relay is down or misnamed, which the home owner would not see otherwise. */
	if (json_integer_value(json_object_get(s, "awaiting_receipt")) > 0)
		printf(", %lld awaiting a relay's receipt (%lld receipts taken)",
		       (long long)json_integer_value(json_object_get(s, "awaiting_receipt")),
		       (long long)json_integer_value(json_object_get(s, "receipts")));
	putchar('\n');
	if (alarm_set(s)) {
		long long raw = json_integer_value(json_object_get(alarm, "at"));
		/* Seconds, as every "at" of the status verbs; milliseconds read the same. */
		time_t at = (time_t)(raw > 100000000000LL ? raw / 1000 : raw);
		char when[64] = "-";
		struct tm tm;

		if (at > 0)
			strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", gmtime_r(&at, &tm));
		printf("ALARM        pulse %.15g since %s (emergency record %lld), until the "
		       "doctor acknowledges it\n",
		       json_number_value(json_object_get(alarm, "value")), when,
		       (long long)json_integer_value(json_object_get(alarm, "seq")));
	}
}

/* relayd cannot commit: nothing it receives is kept or receipted until the store is back. */
static bool store_failing(json_t *relayd)
{
	return json_is_true(json_object_get(relayd, "commit_failing"));
}

/* Append ", N what" to out when the count is there: a relayd that leaves one out is not made to
 * say 0. */
static void add_count(char *out, size_t len, json_t *status, const char *key, const char *what)
{
	size_t used = strlen(out);

	if (json_is_integer(json_object_get(status, key)) && used < len)
		snprintf(out + used, len - used, ", %lld %s",
			 (long long)json_integer_value(json_object_get(status, key)), what);
}

/* relayd's line: the broker (why it is still connecting), and what came in and went out since
 * it started; iotsecctl relay has the store's figures. */
static void print_relayd(json_t *s)
{
	const char *why = json_string_value(json_object_get(s, "broker_error"));
	char counts[256] = "";

	if (!json_is_true(json_object_get(s, "running")))
		return;
	add_count(counts, sizeof(counts), s, "received", "received");
	add_count(counts, sizeof(counts), s, "stored", "stored");
	add_count(counts, sizeof(counts), s, "duplicates", "duplicates");
	add_count(counts, sizeof(counts), s, "receipts", "receipts");
	add_count(counts, sizeof(counts), s, "commit_failures", "failed commits");
	printf("relay        broker %s%s%s%s%s (iotsecctl relay)\n",
	       json_string_value(json_object_get(s, "broker")) ?: "?", why && why[0] ? " (" : "",
	       why && why[0] ? why : "", why && why[0] ? ")" : "", counts);
	if (store_failing(s))
		printf("STORE        FAILING: readings are neither stored nor receipted (the kits "
		       "keep "
		       "them); relayd's log says why\n");
}

static void print_human(json_t *doc)
{
	json_t *cert = json_object_get(doc, "certificate"), *ds = json_object_get(doc, "daemons");
	const char *state = json_string_value(json_object_get(cert, "state"));
	json_t *na = json_object_get(cert, "not_after");
	const char *key;
	json_t *d;
	char when[64];

	printf("device       %s\n", json_string_value(json_object_get(doc, "device")) ?: "-");
	printf("home         %s\n", json_string_value(json_object_get(doc, "home")) ?: "-");
	printf("role         %s\n", json_string_value(json_object_get(doc, "role")) ?: "-");
	if (json_is_string(json_object_get(doc, "controller"))) {
		const char *c = json_string_value(json_object_get(doc, "controller"));
		const char *el = json_string_value(json_object_get(doc, "election"));

		if (el && strcmp(el, "out") == 0)
			printf("controller   - (this device is out of the home)\n");
		else
			printf("controller   %s\n", c[0] ? c : "none yet (electing)");
	}
	if (json_is_integer(json_object_get(doc, "epoch"))) {
		if (json_integer_value(json_object_get(doc, "epoch")) == 0)
			printf("key pool     no ring yet\n");
		else
			printf("key pool     epoch %lld, ring of %lld keys\n",
			       (long long)json_integer_value(json_object_get(doc, "epoch")),
			       (long long)json_integer_value(json_object_get(doc, "ring_size")));
	}
	if (state == NULL &&
	    json_is_true(json_object_get(json_object_get(ds, "certd"), "denied"))) {
		printf("certificate  unknown (this user may not ask iotsec-certd)\n");
	} else if (state == NULL) {
		printf("certificate  unknown (iotsec-certd not running)\n");
	} else if (strcmp(state, "invalid") == 0) {
		printf("certificate  INVALID: %s\n",
		       json_string_value(json_object_get(cert, "reason")) ?: "?");
	} else if (json_is_integer(na)) {
		long long days = (json_integer_value(na) - (long long)time(NULL)) / 86400;

		fmt_time(json_integer_value(na), when, sizeof(when));
		printf("certificate  %s, expires %s (%lld days)\n", state, when, days);
	} else {
		printf("certificate  %s\n", state);
	}
	if (self_quarantined(doc)) {
		printf("quarantine   THIS DEVICE: the home gives it no keys until it is released "
		       "on the controller\n");
	} else if (json_array_size(json_object_get(doc, "quarantine")) > 0) {
		json_t *name;
		size_t i;

		printf("quarantine   ");
		json_array_foreach(json_object_get(doc, "quarantine"), i, name)
		{
			printf("%s%s", i ? ", " : "", json_string_value(name) ?: "?");
		}
		printf(" (iotsecctl quarantine list)\n");
	}
	print_sensord(json_object_get(ds, "sensord"));
	print_relayd(json_object_get(ds, "relayd"));
	if (json_is_true(json_object_get(json_object_get(ds, "dictd"), "locked")))
		printf(
		    "dictionary   LOCKED: %s\n",
		    json_string_value(json_object_get(json_object_get(ds, "dictd"), "lock_reason"))
			?: "?");
	printf("daemons\n");
	json_object_foreach(ds, key, d)
	{
		const char *why = json_string_value(json_object_get(d, "error"));

		printf("  %-8s %s\n", key,
		       json_is_true(json_object_get(d, "running")) ? "running" : why);
	}
}

/* What status exits with: whether every daemon answers, certd's word on the certificate,
 * whether electd has this device in a home with a controller, whether dictd serves keys, and
 * whether sensord's alarm waits for the doctor (an emergency needs someone). A broker still
 * connecting is shown, not counted: readings wait in the spool meanwhile. */
static int health(json_t *doc)
{
	const char *state =
	    json_string_value(json_object_get(json_object_get(doc, "certificate"), "state"));
	const char *election = json_string_value(json_object_get(doc, "election"));
	json_t *dict = json_object_get(json_object_get(doc, "daemons"), "dictd");
	json_t *ds = json_object_get(doc, "daemons"), *d;
	size_t running = 0, denied = 0;
	const char *key;

	json_object_foreach(ds, key, d)
	{
		running += json_is_true(json_object_get(d, "running"));
		denied += json_is_true(json_object_get(d, "denied"));
	}
	/* Turned away is not "nothing runs": a script (or a person) told 3 would start the
	 * daemons, or go looking for why they stopped, when only the asking user is wrong. */
	if (running == 0 && denied > 0)
		return STATUS_UNKNOWN;
	if (running == 0)
		return STATUS_DOWN;
	/* The relay's machine has no certd, nor a home to be in: its certificate's dates (or
	 * relayd's own word on it) and relayd running are all there is to judge. */
	if (json_is_true(json_object_get(doc, "relay_host")))
		return running < json_object_size(ds) || (state && strcmp(state, "invalid") == 0) ||
			       store_failing(json_object_get(ds, "relayd"))
			   ? STATUS_DEGRADED
			   : STATUS_HEALTHY;
	/* In the home means a controller: "node" follows one, "controller" is one. */
	if (running < json_object_size(ds) || state == NULL || strcmp(state, "valid") != 0 ||
	    (election && strcmp(election, "node") != 0 && strcmp(election, "controller") != 0) ||
	    json_is_true(json_object_get(dict, "locked")) || self_quarantined(doc) ||
	    alarm_set(json_object_get(ds, "sensord")) ||
	    store_failing(json_object_get(ds, "relayd")))
		return STATUS_DEGRADED;
	return STATUS_HEALTHY;
}

/* The relay's machine: this device's certificate is a relay's (SPEC 9). Its name, home and
 * dates then go in doc, since no certd runs there to say them. A certificate that cannot be
 * read (not enrolled yet) makes a Pi, as before. */
static bool relay_host(const struct iotsec_config *cfg, json_t *doc, json_t *cert)
{
	struct cert_info info;
	X509 *x = NULL;
	bool is = false;
	int64_t now = (int64_t)time(NULL);

	if (cert_load(cfg->device.cert, &x) < 0 || cert_info_get(x, &info) < 0 ||
	    info.role != CERT_ROLE_RELAY)
		goto out;
	is = true;
	json_object_set_new(doc, "relay_host", json_true());
	json_object_set_new(doc, "device", json_string(info.name));
	json_object_set_new(doc, "home", json_string(info.home));
	json_object_set_new(doc, "role", json_string(cert_role_name(info.role)));
	/* Its dates only: the CRL is relayd's to apply, and said by it when it says. */
	if (now > info.not_after || now < info.not_before) {
		json_object_set_new(cert, "state", json_string("invalid"));
		json_object_set_new(
		    cert, "reason",
		    json_string(now > info.not_after ? "expired" : "not yet valid"));
	} else {
		json_object_set_new(cert, "state", json_string("in date"));
	}
	json_object_set_new(cert, "not_after", json_integer(info.not_after));
out:
	X509_free(x);
	return is;
}

/* Whether daemon's control socket is there: relayd, on a Pi, is asked only then. */
static bool socket_there(const struct iotsec_config *cfg, const char *daemon)
{
	char path[PATH_MAX];

	return daemon_socket_path(cfg->device.run_dir, daemon, path, sizeof(path)) >= 0 &&
	       access(path, F_OK) == 0;
}

static int cmd_status(const struct iotsec_config *cfg, int argc, char **argv)
{
	bool as_json = false, relay;
	json_t *doc = json_object(), *ds = json_object(), *cert = json_object();
	int rc;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			as_json = true;
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			printf(
			    "usage: iotsecctl status [--json]\n"
			    "Ask every iotsec daemon on this device for its state. Exit status: "
			    "0 all well,\n1 degraded (a daemon down, the device out of the home, "
			    "quarantined or\nwithout a controller, the dictionary locked, "
			    "sensord's alarm set), 3 no\ndaemon running, 4 cannot tell (the "
			    "configuration unreadable, or this user\nnot allowed to ask). On the "
			    "relay's machine (a relay certificate) iotsec-relayd\nalone is asked: "
			    "1 when its certificate is out of date or its store\nfails, "
			    "3 when it does not run.\n");
			json_decref(doc), json_decref(ds), json_decref(cert);
			return 0;
		} else {
			fprintf(stderr, "iotsecctl status: unknown argument '%s'\n", argv[i]);
			json_decref(doc), json_decref(ds), json_decref(cert);
			return 2;
		}
	}
	json_object_set_new(doc, "certificate", cert);
	json_object_set_new(doc, "daemons", ds);
	relay = relay_host(cfg, doc, cert);
	for (size_t i = 0; i < N_DAEMONS; i++) {
		const char *why = NULL;
		bool denied = false;
		json_t *st;

		/* The relay's machine runs relayd alone; a Pi the home's six, and relayd only
		 * when it runs there too (its socket then is there). */
		if (relay ? i < N_HOME : i >= N_HOME && !socket_there(cfg, daemons[i]))
			continue;
		st = ask(cfg->device.run_dir, daemons[i], "status", NULL, &why, &denied);

		if (st == NULL) {
			json_object_set_new(ds, daemons[i],
					    json_pack("{s:b, s:s, s:b}", "running", 0, "error", why,
						      "denied", denied));
			continue;
		}
		json_object_del(st, "ok");
		json_object_del(st, "v");
		json_object_del(st, "id");
		json_object_set_new(st, "running", json_true());
		/* certd speaks for the device's identity. */
		if (strcmp(daemons[i], "certd") == 0) {
			const char *k[] = {"device", "home", "role"};

			for (size_t j = 0; j < 3; j++)
				if (json_object_get(st, k[j]))
					json_object_set(doc, k[j], json_object_get(st, k[j]));
			json_object_set(cert, "state", json_object_get(st, "certificate"));
			if (json_object_get(st, "reason"))
				json_object_set(cert, "reason", json_object_get(st, "reason"));
			if (json_object_get(st, "not_after"))
				json_object_set(cert, "not_after",
						json_object_get(st, "not_after"));
		}
		/* electd knows the controller, keyd the pool epoch and our ring. */
		if (strcmp(daemons[i], "electd") == 0) {
			json_object_set(doc, "controller", json_object_get(st, "controller"));
			json_object_set(doc, "election", json_object_get(st, "state"));
		}
		if (strcmp(daemons[i], "keyd") == 0) {
			json_object_set(doc, "epoch", json_object_get(st, "epoch"));
			json_object_set(doc, "ring_size", json_object_get(st, "ring_size"));
			json_object_set(doc, "quarantine", json_object_get(st, "quarantine"));
		}
		/* On its own machine, relayd's word on its certificate (the CRL too) wins over
		 * the dates alone. */
		if (relay && json_is_string(json_object_get(st, "certificate"))) {
			json_object_set(cert, "state", json_object_get(st, "certificate"));
			json_object_del(cert, "reason");
			if (json_object_get(st, "reason"))
				json_object_set(cert, "reason", json_object_get(st, "reason"));
		}
		json_object_set_new(ds, daemons[i], st);
	}
	if (as_json) {
		json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		putchar('\n');
	} else {
		print_human(doc);
	}
	rc = health(doc);
	if (rc == STATUS_UNKNOWN)
		fprintf(stderr,
			"iotsecctl: uid %u may not read iotsec's state: run it as root, or join a "
			"group of control.readers (the operators' group iotsec as shipped: sudo "
			"usermod -aG iotsec USER, then log in again)\n",
			(unsigned)getuid());
	json_decref(doc);
	return rc;
}

static bool known_daemon(const char *name)
{
	for (size_t i = 0; i < N_DAEMONS; i++)
		if (strcmp(name, daemons[i]) == 0)
			return true;
	return false;
}

/* A whole number of at least min, all of s: "abc", "1.5" and "-1" are refused, not guessed at. */
static int parse_count(const char *s, long min, long *ret)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > INT_MAX / 1000)
		return -EINVAL;
	*ret = v;
	return 0;
}

static int cmd_watch(const struct iotsec_config *cfg, int argc, char **argv)
{
	static const char *const all[] = {"*", NULL};
	struct ctl_client *c = NULL;
	long count = -1, timeout_s = -1, seen = 0;
	const char *daemon = NULL;
	json_t *st = NULL, *first;
	char path[PATH_MAX];
	int r;

	for (int i = 1; i < argc; i++) {
		bool is_count = strcmp(argv[i], "--count") == 0;

		if (is_count || strcmp(argv[i], "--timeout") == 0) {
			long *v = is_count ? &count : &timeout_s;

			if (i + 1 == argc || parse_count(argv[i + 1], is_count ? 0 : 1, v) < 0) {
				fprintf(stderr, "iotsecctl watch: %s takes a whole number%s\n",
					argv[i], is_count ? "" : " of seconds, 1 or more");
				return 2;
			}
			i++;
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			printf(
			    "usage: iotsecctl watch DAEMON [--count N] [--timeout SECONDS]\n"
			    "Print DAEMON's state ({\"event\":\"status\",...}), then each event "
			    "it pushes (for\nexample certd's certificate-invalid), one JSON object "
			    "a line. --count: stop after N\nevents; --timeout: stop after SECONDS "
			    "without one (exit 1, saying so).\n");
			return 0;
		} else if (daemon == NULL && argv[i][0] != '-')
			daemon = argv[i];
		else {
			fprintf(stderr, "iotsecctl watch: unknown argument '%s'\n", argv[i]);
			return 2;
		}
	}
	if (daemon == NULL || !known_daemon(daemon)) {
		fprintf(stderr,
			"iotsecctl watch: %s%s%s (certd, electd, keyd, dictd, pingd, sensord or "
			"relayd)\n",
			daemon ? "unknown daemon '" : "which daemon?", daemon ? daemon : "",
			daemon ? "'" : "");
		return 2;
	}
	if ((r = daemon_socket_path(cfg->device.run_dir, daemon, path, sizeof(path))) < 0 ||
	    (r = ctl_client_connect(path, &c)) < 0 ||
	    (r = ctl_client_subscribe(c, all, CALL_TIMEOUT_MS)) < 0) {
		fprintf(stderr, "iotsecctl watch: %s: %s\n", daemon,
			r == -ENOENT || r == -ECONNREFUSED ? "not running" : iotsec_strerror(r));
		ctl_client_free(c);
		return 1;
	}
	/* Subscribed first, so that nothing happens unseen between the state and the events. */
	if ((r = ctl_client_call(c, "status", NULL, CALL_TIMEOUT_MS, &st)) < 0 ||
	    ctl_reply_error(st)) {
		fprintf(stderr, "iotsecctl watch: %s: status: %s\n", daemon,
			r < 0 ? iotsec_strerror(r) : ctl_reply_error(st));
		json_decref(st);
		ctl_client_free(c);
		return 1;
	}
	json_object_del(st, "ok");
	json_object_del(st, "v");
	json_object_del(st, "id");
	first = json_pack("{s:s}", "event", "status");
	if (first == NULL || json_object_update(first, st) < 0) {
		fprintf(stderr, "iotsecctl watch: out of memory\n");
		json_decref(first), json_decref(st);
		ctl_client_free(c);
		return 1;
	}
	json_dumpf(first, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
	putchar('\n');
	json_decref(first);
	json_decref(st);
	fflush(stdout);
	while (count < 0 || seen < count) {
		json_t *ev = NULL;

		r = ctl_client_next_event(c, timeout_s < 0 ? -1 : (int)(timeout_s * 1000), &ev);
		if (r < 0)
			break;
		json_dumpf(ev, stdout, JSON_COMPACT);
		putchar('\n');
		fflush(stdout);
		json_decref(ev);
		seen++;
	}
	ctl_client_free(c);
	if (r == -ETIMEDOUT) {
		fprintf(stderr, "iotsecctl watch: %s: no event for %ld s; stopping\n", daemon,
			timeout_s);
		return 1;
	}
	if (r < 0) {
		fprintf(stderr, "iotsecctl watch: %s: %s\n", daemon,
			r == -ECONNRESET || r == -EPIPE ? "stopped" : iotsec_strerror(r));
		return 1;
	}
	return 0;
}

/* A name the controller has never heard of is most likely a typo, and the device meant then
 * gets the new pool: say so, with the names it knows. */
static void warn_unknown(const struct iotsec_config *cfg, json_t *excluded)
{
	json_t *reply, *peers, *name, *p;
	const char *why = NULL;
	size_t i, j;

	if (json_array_size(excluded) == 0 ||
	    (reply = ask(cfg->device.run_dir, "keyd", "peers", NULL, &why, NULL)) == NULL)
		return;
	peers = json_object_get(reply, "peers");
	json_array_foreach(excluded, i, name)
	{
		bool known = false;

		json_array_foreach(peers, j, p) known |=
		    json_equal(json_object_get(p, "name"), name);
		if (known)
			continue;
		fprintf(stderr,
			"iotsecctl rekey: warning: this controller has never heard of '%s'; "
			"known devices:",
			json_string_value(name));
		json_array_foreach(peers, j, p)
		    fprintf(stderr, " %s", json_string_value(json_object_get(p, "name")));
		fprintf(stderr, "%s\n", json_array_size(peers) ? "" : " none yet");
	}
	json_decref(reply);
}

/* A new pool now, leaving out the devices named: what pingd asks when a device goes missing. */
static int cmd_rekey(const struct iotsec_config *cfg, int argc, char **argv)
{
	json_t *args = json_pack("{s:[]}", "exclude"), *reply = NULL;
	const char *why = NULL;
	int rc = 1;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--exclude") == 0) {
			if (i + 1 == argc) {
				fprintf(stderr, "iotsecctl rekey: --exclude needs a device name\n");
				json_decref(args);
				return 2;
			}
			json_array_append_new(json_object_get(args, "exclude"),
					      json_string(argv[++i]));
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			printf(
			    "usage: iotsecctl rekey [--exclude DEVICE]...\n"
			    "On the controller: build a new key pool now and print its epoch; the\n"
			    "devices named, and the quarantined ones, get nothing of it, and "
			    "every\n"
			    "other device cancels the old one. Needs root.\n");
			json_decref(args);
			return 0;
		} else {
			fprintf(stderr, "iotsecctl rekey: unknown argument '%s'\n", argv[i]);
			json_decref(args);
			return 2;
		}
	}
	if ((reply = ask(cfg->device.run_dir, "keyd", "rekey", args, &why, NULL)) == NULL) {
		/* keyd's refusal on a node names the controller: "not the controller (the
		 * controller is hub)". */
		fprintf(stderr, "iotsecctl rekey: iotsec-keyd: %s\n", why);
	} else {
		printf("new key pool: epoch %lld\n",
		       (long long)json_integer_value(json_object_get(reply, "epoch")));
		warn_unknown(cfg, json_object_get(args, "exclude"));
		rc = 0;
	}
	json_decref(reply);
	json_decref(args);
	return rc;
}

/* dictd's lock, which the administrator holds: no key is served until unlock (certd's own lock,
 * for an invalid certificate, is separate and stays). */
static int cmd_dict(const struct iotsec_config *cfg, int argc, char **argv)
{
	const char *why = NULL;
	json_t *reply;

	bool help = false;

	/* --help anywhere, as with the other commands: "dict lock --help" too. */
	for (int i = 1; i < argc; i++)
		help = help || strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0;
	if (help || argc != 2 || (strcmp(argv[1], "lock") != 0 && strcmp(argv[1], "unlock") != 0)) {

		if (!help)
			fprintf(stderr, "iotsecctl dict: %s\n",
				argc < 2 ? "lock or unlock?" : "want lock or unlock");
		fprintf(help ? stdout : stderr,
			"usage: iotsecctl dict lock|unlock\n"
			"Stop serving keys from this device's dictionary, or serve them again. "
			"Needs root.\n");
		return help ? 0 : 2;
	}
	if ((reply = ask(cfg->device.run_dir, "dictd", argv[1], NULL, &why, NULL)) == NULL) {
		fprintf(stderr, "iotsecctl dict %s: iotsec-dictd: %s\n", argv[1], why);
		return 1;
	}
	json_decref(reply);
	if ((reply = ask(cfg->device.run_dir, "dictd", "status", NULL, &why, NULL)) == NULL) {
		fprintf(stderr, "iotsecctl dict %s: iotsec-dictd: %s\n", argv[1], why);
		return 1;
	}
	if (json_is_true(json_object_get(reply, "locked")))
		printf("dictionary locked: %s\n",
		       json_string_value(json_object_get(reply, "lock_reason")) ?: "?");
	else
		printf("dictionary unlocked: serving keys\n");
	json_decref(reply);
	return 0;
}

int main(int argc, char **argv)
{
	const char *config_path = NULL;
	struct iotsec_config cfg;
	char err[CONFIG_ERR_MAX];
	int n = 1, r;

	log_init("iotsecctl", LOG_WARNING);
	/* The global options anywhere on the line (no command takes -c): they are taken out, and
	 * what is left is the command and its own arguments. */
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) {
			if (i + 1 == argc) {
				fprintf(stderr, "iotsecctl: %s needs a file\n", argv[i]);
				usage(stderr);
				return 2;
			}
			config_path = argv[++i];
		} else if (strncmp(argv[i], "--config=", 9) == 0) {
			config_path = argv[i] + 9;
		} else if (strncmp(argv[i], "-c", 2) == 0 && argv[i][2] != '\0') {
			config_path = argv[i] + 2;
		} else if (strcmp(argv[i], "--version") == 0) {
			printf("iotsecctl (iotsec) %s\n", IOTSEC_VERSION);
			return 0;
		} else if (n == 1 &&
			   (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)) {
			usage(stdout);
			return 0;
		} else if (n == 1 && argv[i][0] == '-') {
			fprintf(stderr, "iotsecctl: unknown option '%s'\n", argv[i]);
			usage(stderr);
			return 2;
		} else {
			argv[n++] = argv[i];
		}
	}
	argc = n;
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	argc--, argv++;
	/* Planning needs no configuration: it runs on the administrator's machine too. */
	if (strcmp(argv[0], "pool") == 0)
		return cmd_pool(argc, argv);
	/* Without a configuration file the defaults say where the sockets are. */
	if (config_path == NULL && access(CONFIG_DEFAULT_PATH, F_OK) != 0)
		r = config_load_string("", "defaults", &cfg, err, sizeof(err));
	else
		r = config_load(config_path ? config_path : CONFIG_DEFAULT_PATH, &cfg, err,
				sizeof(err));
	if (r < 0) {
		fprintf(stderr, "iotsecctl: %s\n", err);
		/* For status, "cannot tell" is not "degraded": scripts must see the difference. */
		return strcmp(argv[0], "status") == 0 ? STATUS_UNKNOWN : 1;
	}
	if (strcmp(argv[0], "status") == 0)
		r = cmd_status(&cfg, argc, argv);
	else if (strcmp(argv[0], "peers") == 0)
		r = cmd_peers(&cfg, argc, argv);
	else if (strcmp(argv[0], "watch") == 0)
		r = cmd_watch(&cfg, argc, argv);
	else if (strcmp(argv[0], "rekey") == 0)
		r = cmd_rekey(&cfg, argc, argv);
	else if (strcmp(argv[0], "dict") == 0)
		r = cmd_dict(&cfg, argc, argv);
	else if (strcmp(argv[0], "readings") == 0)
		r = cmd_readings(&cfg, argc, argv);
	else if (strcmp(argv[0], "relay") == 0)
		r = cmd_relay(&cfg, argc, argv);
	else if (strcmp(argv[0], "quarantine") == 0)
		r = cmd_quarantine(&cfg, argc, argv);
	else {
		fprintf(stderr, "iotsecctl: unknown command '%s' (try --help)\n", argv[0]);
		r = 2;
	}
	config_free(&cfg);
	return r;
}
