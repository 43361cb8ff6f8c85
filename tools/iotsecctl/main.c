/* iotsecctl: look at the state of iotsec on this device, through the daemons' control sockets. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "ctl.h"
#include "daemon.h"
#include "iotsecctl.h"
#include "log.h"

#define CALL_TIMEOUT_MS 3000

/* Every daemon that may run on a Pi, in the order status shows them. */
static const char *const daemons[] = {"certd", "electd", "keyd", "dictd", "pingd", "sensord"};
#define N_DAEMONS (sizeof(daemons) / sizeof(daemons[0]))

static void usage(FILE *f)
{
	fprintf(f,
		"usage: iotsecctl [-c FILE] COMMAND [ARGS]\n"
		"\n"
		"Show the state of iotsec on this device.\n"
		"\n"
		"commands:\n"
		"  status [--json]    device, home, role, certificate and which daemons answer\n"
		"  peers [--json]     the devices this one knows, and the key shared with each\n"
		"  watch DAEMON [--count N] [--timeout SECONDS]\n"
		"                     print the events DAEMON pushes, one JSON object a line\n"
		"  rekey [--exclude DEVICE]...\n"
		"                     on the controller (root): a new key pool now, giving the\n"
		"                     devices named nothing of it\n"
		"  pool plan --nodes N --probability P [--ring K] [--pool S] [--json]\n"
		"                     size a key pool without changing anything\n"
		"\n"
		"options:\n"
		"  -c, --config FILE  configuration (default %s)\n"
		"  -h, --help         this text\n",
		CONFIG_DEFAULT_PATH);
}

/* Ask one daemon for its status: NULL reply and a reason when it does not answer. */
static json_t *ask(const char *run_dir, const char *daemon, const char *verb, const char **ret_why)
{
	struct ctl_client *c = NULL;
	json_t *reply = NULL;
	char path[PATH_MAX];
	int r;

	if ((r = daemon_socket_path(run_dir, daemon, path, sizeof(path))) < 0 ||
	    (r = ctl_client_connect(path, &c)) < 0 ||
	    (r = ctl_client_call(c, verb, NULL, CALL_TIMEOUT_MS, &reply)) < 0) {
		/* No socket, or nobody behind it: the daemon is simply not running. */
		*ret_why = r == -ENOENT || r == -ECONNREFUSED ? "not running" : iotsec_strerror(r);
	} else if (ctl_reply_error(reply)) {
		static char refused[256];

		snprintf(refused, sizeof(refused), "refused: %s", ctl_reply_error(reply));
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

		printf("controller   %s\n", c[0] ? c : "none (electing)");
	}
	if (json_is_integer(json_object_get(doc, "epoch"))) {
		if (json_integer_value(json_object_get(doc, "epoch")) == 0)
			printf("key pool     no ring yet\n");
		else
			printf("key pool     epoch %lld, ring of %lld keys\n",
			       (long long)json_integer_value(json_object_get(doc, "epoch")),
			       (long long)json_integer_value(json_object_get(doc, "ring_size")));
	}
	if (state == NULL) {
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
	printf("daemons\n");
	json_object_foreach(ds, key, d)
	{
		const char *why = json_string_value(json_object_get(d, "error"));

		printf("  %-8s %s\n", key,
		       json_is_true(json_object_get(d, "running")) ? "running" : why);
	}
}

static int cmd_status(const struct iotsec_config *cfg, int argc, char **argv)
{
	bool as_json = false;
	json_t *doc = json_object(), *ds = json_object(), *cert = json_object();

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			as_json = true;
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			printf("usage: iotsecctl status [--json]\n"
			       "Ask every iotsec daemon on this device for its state.\n");
			return 0;
		} else {
			fprintf(stderr, "iotsecctl status: unknown argument '%s'\n", argv[i]);
			return 2;
		}
	}
	json_object_set_new(doc, "certificate", cert);
	json_object_set_new(doc, "daemons", ds);
	for (size_t i = 0; i < N_DAEMONS; i++) {
		const char *why = NULL;
		json_t *st = ask(cfg->device.run_dir, daemons[i], "status", &why);

		if (st == NULL) {
			json_object_set_new(ds, daemons[i],
					    json_pack("{s:b, s:s}", "running", 0, "error", why));
			continue;
		}
		json_object_del(st, "ok");
		json_object_del(st, "v");
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
		if (strcmp(daemons[i], "electd") == 0)
			json_object_set(doc, "controller", json_object_get(st, "controller"));
		if (strcmp(daemons[i], "keyd") == 0) {
			json_object_set(doc, "epoch", json_object_get(st, "epoch"));
			json_object_set(doc, "ring_size", json_object_get(st, "ring_size"));
		}
		json_object_set_new(ds, daemons[i], st);
	}
	if (as_json) {
		json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		putchar('\n');
	} else {
		print_human(doc);
	}
	json_decref(doc);
	return 0;
}

/* The devices keyd knows and whether a pairwise key exists with each; never a key. */
static int cmd_peers(const struct iotsec_config *cfg, int argc, char **argv)
{
	bool as_json = argc > 1 && strcmp(argv[1], "--json") == 0;
	const char *why = NULL;
	json_t *reply, *p;
	size_t i;

	if (argc > 1 && !as_json) {
		printf("usage: iotsecctl peers [--json]\n"
		       "List the devices this one knows and the key it shares with each.\n");
		return strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ? 0 : 2;
	}
	if ((reply = ask(cfg->device.run_dir, "keyd", "peers", &why)) == NULL) {
		fprintf(stderr, "iotsecctl peers: iotsec-keyd: %s\n", why);
		return 1;
	}
	if (as_json) {
		json_dumpf(json_object_get(reply, "peers"), stdout, JSON_INDENT(2));
		putchar('\n');
	} else {
		printf("%-16s %-11s %6s %7s  %s\n", "DEVICE", "ROLE", "EPOCH", "SHARED",
		       "PAIRWISE KEY");
		json_array_foreach(json_object_get(reply, "peers"), i, p)
		{
			const char *kind = json_string_value(json_object_get(p, "pairwise"));

			printf("%-16s %-11s %6lld %7lld  %s\n",
			       json_string_value(json_object_get(p, "name")),
			       json_string_value(json_object_get(p, "role")),
			       (long long)json_integer_value(json_object_get(p, "epoch")),
			       (long long)json_integer_value(json_object_get(p, "shared")),
			       strcmp(kind, "ring") == 0   ? "yes, from shared ring keys"
			       : strcmp(kind, "path") == 0 ? "yes, a path key from the controller"
							   : "none");
		}
	}
	json_decref(reply);
	return 0;
}

static int cmd_watch(const struct iotsec_config *cfg, int argc, char **argv)
{
	static const char *const all[] = {"*", NULL};
	struct ctl_client *c = NULL;
	long count = -1, timeout_s = -1, seen = 0;
	const char *daemon = NULL;
	char path[PATH_MAX];
	int r;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--count") == 0 && i + 1 < argc)
			count = strtol(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc)
			timeout_s = strtol(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			printf("usage: iotsecctl watch DAEMON [--count N] [--timeout SECONDS]\n"
			       "Print each event DAEMON pushes (for example certd's "
			       "certificate-invalid) as one JSON line.\n");
			return 0;
		} else if (daemon == NULL && argv[i][0] != '-')
			daemon = argv[i];
		else {
			fprintf(stderr, "iotsecctl watch: unknown argument '%s'\n", argv[i]);
			return 2;
		}
	}
	if (daemon == NULL) {
		fprintf(stderr, "iotsecctl watch: which daemon? (for example: certd)\n");
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
	if (r < 0 && r != -ETIMEDOUT) {
		fprintf(stderr, "iotsecctl watch: %s: %s\n", daemon, iotsec_strerror(r));
		return 1;
	}
	return count >= 0 && seen < count ? 1 : 0;
}

/* A new pool now, leaving out the devices named: what pingd asks when a device goes missing. */
static int cmd_rekey(const struct iotsec_config *cfg, int argc, char **argv)
{
	json_t *args = json_pack("{s:[]}", "exclude"), *reply = NULL;
	struct ctl_client *c = NULL;
	char path[PATH_MAX];
	int r, rc = 1;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--exclude") == 0 && i + 1 < argc) {
			json_array_append_new(json_object_get(args, "exclude"),
					      json_string(argv[++i]));
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			printf("usage: iotsecctl rekey [--exclude DEVICE]...\n"
			       "On the controller: build a new key pool now; the devices named get "
			       "nothing of it,\nand every other device cancels the old one. Needs "
			       "root.\n");
			json_decref(args);
			return 0;
		} else {
			fprintf(stderr, "iotsecctl rekey: unknown argument '%s'\n", argv[i]);
			json_decref(args);
			return 2;
		}
	}
	if ((r = daemon_socket_path(cfg->device.run_dir, "keyd", path, sizeof(path))) < 0 ||
	    (r = ctl_client_connect(path, &c)) < 0 ||
	    (r = ctl_client_call(c, "rekey", args, CALL_TIMEOUT_MS, &reply)) < 0)
		fprintf(stderr, "iotsecctl rekey: iotsec-keyd: %s\n",
			r == -ENOENT || r == -ECONNREFUSED ? "not running" : iotsec_strerror(r));
	else if (ctl_reply_error(reply))
		fprintf(
		    stderr, "iotsecctl rekey: iotsec-keyd refused: %s%s\n", ctl_reply_error(reply),
		    strstr(ctl_reply_error(reply), "not supported") ? " (this device is not the "
								      "controller)"
								    : "");
	else {
		printf("new key pool: epoch %lld\n",
		       (long long)json_integer_value(json_object_get(reply, "epoch")));
		rc = 0;
	}
	json_decref(reply);
	json_decref(args);
	ctl_client_free(c);
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *config_path = NULL;
	struct iotsec_config cfg;
	char err[CONFIG_ERR_MAX];
	int c, r;

	log_init("iotsecctl", LOG_WARNING);
	while ((c = getopt_long(argc, argv, "+c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config_path = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	/* Planning needs no configuration: it runs on the administrator's machine too. */
	if (strcmp(argv[optind], "pool") == 0)
		return cmd_pool(argc - optind, argv + optind);
	/* Without a configuration file the defaults say where the sockets are. */
	if (config_path == NULL && access(CONFIG_DEFAULT_PATH, F_OK) != 0)
		r = config_load_string("", "defaults", &cfg, err, sizeof(err));
	else
		r = config_load(config_path ? config_path : CONFIG_DEFAULT_PATH, &cfg, err,
				sizeof(err));
	if (r < 0) {
		fprintf(stderr, "iotsecctl: %s\n", err);
		return 1;
	}
	argc -= optind, argv += optind;
	if (strcmp(argv[0], "status") == 0)
		r = cmd_status(&cfg, argc, argv);
	else if (strcmp(argv[0], "peers") == 0)
		r = cmd_peers(&cfg, argc, argv);
	else if (strcmp(argv[0], "watch") == 0)
		r = cmd_watch(&cfg, argc, argv);
	else if (strcmp(argv[0], "rekey") == 0)
		r = cmd_rekey(&cfg, argc, argv);
	else {
		fprintf(stderr, "iotsecctl: unknown command '%s' (try --help)\n", argv[0]);
		r = 2;
	}
	config_free(&cfg);
	return r;
}
