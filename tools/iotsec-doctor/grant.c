/* iotsec-doctor grant and ack: the two messages a doctor sends a kit, each a signed envelope
 * (envelope.h) addressed to the kit, either sent through the home's relay (--relay: POST
 * /api/grant or /api/ack, and the relay publishes it for the kit) or written to a file the
 * doctor publishes on the home's broker itself (--out: the line to do it is printed), for a home
 * without a relay or a doctor inside the home's network. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ca.h"
#include "clock.h"
#include "doctor.h"
#include "encoding.h"
#include "envelope.h"
#include "file.h"
#include "iotsec-doctor.h"
#include "log.h"

static const char grant_usage[] =
    "usage: iotsec-doctor grant --dir D --kit K --kit-cert FILE [--start E]\n"
    "                           (--relay URL [--relay-name N] | --out FILE)\n"
    "Draw a new doctor stream for kit K: its root stays in D/roots/K.json (mode 0600; a\n"
    "root granted before is kept beside it, so its readings still open), and the grant,\n"
    "wrapped to the key of K's certificate (--kit-cert) and signed with D/doctor.key,\n"
    "goes to the relay at URL (https://HOST[:PORT], with the root wrapped to the\n"
    "doctor's own key too, for fetch on another machine), or to --out, a file to publish\n"
    "retained on the home's broker (the line is printed). The stream starts at epoch E\n"
    "(default: the current epoch of the configuration's stream schedule).\n";

static const char ack_usage[] =
    "usage: iotsec-doctor ack --dir D --kit K --seq N\n"
    "                         (--relay URL [--relay-name N] | --out FILE)\n"
    "Acknowledge kit K's emergency: the signed EMERGENCY_ACK for its emergency records up\n"
    "to seq N (the alarm's seq, as fetch and read show it) goes to the relay at URL, or to\n"
    "--out, a file to publish on the home's broker (the line is printed).\n";

/* Where a grant or an acknowledgement goes: a file, or the relay. */
struct dest {
	const char *out;
	const char *url, *name_opt;
	char name[CERT_NAME_MAX];
};

/* Seal body as type to kit and write it to dest->out (0644: it is signed, and its secret is
 * wrapped to the kit), or POST it to the relay's path with extra's fields beside "envelope". */
static int deliver(const char *cmd, struct doctor_dir *d, const char *type, const char *kit,
		   json_t *body, struct dest *dest, const char *path, json_t *extra)
{
	struct relay *relay = NULL;
	json_t *req = NULL, *answer = NULL;
	char *text = NULL;
	size_t len;
	int r;

	if ((r = doctor_seal(d, type, kit, NULL, body, &text, &len)) < 0) {
		fprintf(stderr, "iotsec-doctor %s: cannot sign the %s: %s\n", cmd, type,
			iotsec_strerror(r));
		goto out;
	}
	if (dest->out) {
		if ((r = file_write_atomic(dest->out, text, len, 0644)) < 0)
			fprintf(stderr, "iotsec-doctor %s: %s: %s\n", cmd, dest->out,
				iotsec_strerror(r));
		goto out;
	}
	r = -ENOMEM;
	if ((req = json_pack("{s:s}", "envelope", text)) == NULL ||
	    (extra && json_object_update(req, extra) < 0))
		goto out;
	r = -EIO;
	if (relay_login(cmd, d, dest->url, dest->name, &relay) < 0)
		goto out;
	if ((r = relay_call(relay, "POST", path, req, &answer)) < 0) {
		if (r == -EACCES)
			relay_logged_out(relay, "POST", path);
		goto out;
	}
	r = 0;
out:
	relay_free(relay);
	json_decref(req);
	json_decref(answer);
	free(text);
	return r;
}

static void print_publish(const struct iotsec_config *cfg, struct doctor_dir *d, const char *what,
			  const char *kit, const char *out, bool retain)
{
	printf("publish it with:\n"
	       "  mosquitto_pub -h %s -p %d --cafile %s/ca.crt --cert %s/doctor.crt --key "
	       "%s/doctor.key -q 1%s -t 'iotsec/%s/%s/%s/%s' -f %s\n",
	       cfg->sensord.broker, cfg->sensord.broker_port, d->dir, d->dir, d->dir,
	       retain ? " -r" : "", d->self.home, d->self.name, what, kit, out);
}

/* The kit's certificate, checked against the home's CA: the root is wrapped to its key, so a
 * certificate from elsewhere must not be taken for the kit's. */
static int load_kit_cert(struct doctor_dir *d, const char *kit, const char *path, X509 **ret)
{
	struct cert_info info;
	char buf[256];
	const char *why;
	X509 *x = NULL;
	int r;

	if ((why = file_problem(path, false, buf, sizeof(buf))) != NULL) {
		fprintf(stderr, "iotsec-doctor grant: %s: %s\n", path, why);
		return -1;
	}
	if ((r = cert_load(path, &x)) < 0) {
		fprintf(stderr, "iotsec-doctor grant: %s: not a PEM certificate: %s\n", path,
			iotsec_strerror(r));
		return -1;
	}
	if (X509_verify(x, X509_get0_pubkey(d->ca)) != 1 || cert_info_get(x, &info) < 0 ||
	    strcmp(info.home, d->self.home) != 0) {
		fprintf(stderr,
			"iotsec-doctor grant: %s: not a certificate of home %s (%s/ca.crt)\n", path,
			d->self.home, d->dir);
		X509_free(x);
		return -1;
	}
	if (strcmp(info.name, kit) != 0) {
		fprintf(stderr, "iotsec-doctor grant: %s is %s's certificate, not %s's\n", path,
			info.name, kit);
		X509_free(x);
		return -1;
	}
	*ret = x;
	return 0;
}

/* Keep the root granted before under its stream id: its readings, stored by the relay, must
 * still open after the new grant. */
static int keep_previous(const char *roots, const char *kit)
{
	char path[4096], old[4096], hex[2 * STREAM_ID_LEN + 1];
	struct doctor_root prev;
	int r;

	snprintf(path, sizeof(path), "%.1100s/%.63s.json", roots, kit);
	if (access(path, F_OK) != 0)
		return 0;
	if ((r = doctor_root_load(path, &prev)) < 0)
		return r;
	hex_encode(prev.id, STREAM_ID_LEN, hex);
	crypto_wipe(&prev, sizeof(prev));
	snprintf(old, sizeof(old), "%.1100s/%.63s.%s.json", roots, kit, hex);
	return rename(path, old) < 0 ? -errno : 0;
}

int cmd_grant(int argc, char **argv)
{
	const char *dir = NULL, *kit = NULL, *kit_cert = NULL, *start = NULL;
	struct dest dest = {0};
	struct iotsec_config cfg = {0};
	struct doctor_grant g = {0};
	struct doctor_root rt = {0};
	struct doctor_dir d = {0};
	bool have_cfg = false;
	char roots[4096], path[4096], hex[2 * STREAM_ID_LEN + 1];
	X509 *kx = NULL;
	json_t *body = NULL, *extra = NULL;
	char *wrapped = NULL;
	uint64_t e0 = 0;
	int r, rc = DOCTOR_EXIT_FAIL;

	for (int i = 1; i < argc; i++) {
		const char **slot = strcmp(argv[i], "--dir") == 0	   ? &dir
				    : strcmp(argv[i], "--kit") == 0	   ? &kit
				    : strcmp(argv[i], "--kit-cert") == 0   ? &kit_cert
				    : strcmp(argv[i], "--start") == 0	   ? &start
				    : strcmp(argv[i], "--out") == 0	   ? &dest.out
				    : strcmp(argv[i], "--relay") == 0	   ? &dest.url
				    : strcmp(argv[i], "--relay-name") == 0 ? &dest.name_opt
									   : NULL;

		if (is_help(argv[i])) {
			fputs(grant_usage, stdout);
			return DOCTOR_EXIT_OK;
		}
		if (slot == NULL)
			return usage_error("grant", grant_usage, "unknown argument '%s'", argv[i]);
		if ((*slot = opt_value(argc, argv, &i)) == NULL)
			return usage_error("grant", grant_usage, "%s needs a value", argv[i]);
	}
	if (dir == NULL || kit == NULL || kit_cert == NULL ||
	    (dest.out == NULL) == (dest.url == NULL))
		return usage_error(
		    "grant", grant_usage,
		    "--dir, --kit, --kit-cert and one of --relay and --out are required");
	if (dest.name_opt && dest.url == NULL)
		return usage_error("grant", grant_usage, "--relay-name goes with --relay");
	if (dest.url && strncmp(dest.url, "https://", 8) != 0)
		return usage_error("grant", grant_usage,
				   "--relay takes https://HOST[:PORT], not '%s'", dest.url);
	if (strlen(dir) > DOCTOR_DIR_MAX)
		return usage_error("grant", grant_usage, "--dir: at most %d characters",
				   DOCTOR_DIR_MAX);
	if (!ca_name_valid(kit))
		return usage_error("grant", grant_usage, "bad kit name '%s'", kit);
	if (start && parse_u64(start, 1, UINT32_MAX, &e0) < 0)
		return usage_error("grant", grant_usage,
				   "--start takes an epoch, a whole number from 1, not '%s'",
				   start);
	if (doctor_config("grant", NULL, &cfg) < 0)
		goto out;
	have_cfg = true;
	if ((dest.url && relay_name_of("grant", dest.name_opt, &cfg, dest.name) < 0) ||
	    doctor_dir_load("grant", dir, &d) < 0 || load_kit_cert(&d, kit, kit_cert, &kx) < 0)
		goto out;
	if (start == NULL) {
		struct stream_schedule s = {cfg.stream.start, cfg.stream.interval_s};

		/* Epoch 0 is "before the schedule", never sealed: a stream starts at 1 at least. */
		e0 = stream_epoch(&s, clock_now());
		e0 = e0 < 1 ? 1 : e0;
	}
	snprintf(g.kit, sizeof(g.kit), "%s", kit);
	g.start = (uint32_t)e0;
	g.issued_ms = clock_now_us() / 1000;
	if ((r = crypto_random(g.root, sizeof(g.root))) < 0 ||
	    (r = doctor_grant_build(&g, X509_get0_pubkey(kx), &body)) < 0) {
		fprintf(stderr, "iotsec-doctor grant: cannot build the grant: %s\n",
			iotsec_strerror(r));
		goto out;
	}
	memcpy(&rt.kit, g.kit, sizeof(rt.kit));
	rt.start = g.start, rt.issued_ms = g.issued_ms;
	memcpy(rt.root, g.root, sizeof(rt.root));
	if ((r = stream_id(rt.root, rt.id)) < 0) {
		fprintf(stderr, "iotsec-doctor grant: %s\n", iotsec_strerror(r));
		goto out;
	}
	/* The root is kept before the grant leaves: a grant whose root is lost would give the kit
	 * a stream nobody can read. */
	snprintf(roots, sizeof(roots), "%.*s/roots", DOCTOR_DIR_MAX, dir);
	snprintf(path, sizeof(path), "%.1100s/%.63s.json", roots, kit);
	if ((r = file_mkdirs(roots, 0700)) < 0 || (r = keep_previous(roots, kit)) < 0 ||
	    (r = doctor_root_save(path, &rt)) < 0) {
		fprintf(stderr, "iotsec-doctor grant: %s: %s\n", path, iotsec_strerror(r));
		goto out;
	}
	hex_encode(rt.id, STREAM_ID_LEN, hex);
	/* The relay files the stream under its id with the doctor's own copy of the root. */
	if (dest.url &&
	    ((r = doctor_wrapped_build(X509_get0_pubkey(d.cert), &rt, &wrapped)) < 0 ||
	     (extra = json_pack("{s:s, s:s}", "stream", hex, "wrapped", wrapped)) == NULL)) {
		fprintf(stderr,
			"iotsec-doctor grant: cannot wrap the root to the doctor's key: %s\n",
			iotsec_strerror(r < 0 ? r : -ENOMEM));
		goto out;
	}
	if (deliver("grant", &d, DOCTOR_MSG_GRANT, kit, body, &dest, "/api/grant", extra) < 0)
		goto out;
	printf("granted %s a doctor stream from epoch %u (stream %s), root kept in %s\n", kit,
	       rt.start, hex, path);
	if (dest.url)
		printf("sent through relay %s, which publishes it for %s\n", dest.name, kit);
	else
		print_publish(&cfg, &d, "grant", kit, dest.out, true);
	rc = DOCTOR_EXIT_OK;
out:
	crypto_wipe(&g, sizeof(g));
	crypto_wipe(&rt, sizeof(rt));
	crypto_wipe_free(wrapped);
	json_decref(body);
	json_decref(extra);
	X509_free(kx);
	doctor_dir_free(&d);
	if (have_cfg)
		config_free(&cfg);
	return rc;
}

int cmd_ack(int argc, char **argv)
{
	const char *dir = NULL, *kit = NULL, *seq = NULL;
	struct dest dest = {0};
	struct iotsec_config cfg = {0};
	struct doctor_dir d = {0};
	bool have_cfg = false;
	json_t *body = NULL;
	char path[4096];
	uint64_t n;
	int r, rc = DOCTOR_EXIT_FAIL;

	for (int i = 1; i < argc; i++) {
		const char **slot = strcmp(argv[i], "--dir") == 0	   ? &dir
				    : strcmp(argv[i], "--kit") == 0	   ? &kit
				    : strcmp(argv[i], "--seq") == 0	   ? &seq
				    : strcmp(argv[i], "--out") == 0	   ? &dest.out
				    : strcmp(argv[i], "--relay") == 0	   ? &dest.url
				    : strcmp(argv[i], "--relay-name") == 0 ? &dest.name_opt
									   : NULL;

		if (is_help(argv[i])) {
			fputs(ack_usage, stdout);
			return DOCTOR_EXIT_OK;
		}
		if (slot == NULL)
			return usage_error("ack", ack_usage, "unknown argument '%s'", argv[i]);
		if ((*slot = opt_value(argc, argv, &i)) == NULL)
			return usage_error("ack", ack_usage, "%s needs a value", argv[i]);
	}
	if (dir == NULL || kit == NULL || seq == NULL || (dest.out == NULL) == (dest.url == NULL))
		return usage_error("ack", ack_usage,
				   "--dir, --kit, --seq and one of --relay and --out are required");
	if (dest.name_opt && dest.url == NULL)
		return usage_error("ack", ack_usage, "--relay-name goes with --relay");
	if (dest.url && strncmp(dest.url, "https://", 8) != 0)
		return usage_error("ack", ack_usage, "--relay takes https://HOST[:PORT], not '%s'",
				   dest.url);
	if (strlen(dir) > DOCTOR_DIR_MAX)
		return usage_error("ack", ack_usage, "--dir: at most %d characters",
				   DOCTOR_DIR_MAX);
	if (!ca_name_valid(kit))
		return usage_error("ack", ack_usage, "bad kit name '%s'", kit);
	if (parse_u64(seq, 1, INT64_MAX, &n) < 0)
		return usage_error("ack", ack_usage,
				   "--seq takes a seq, a whole number from 1, not '%s'", seq);
	if (doctor_config("ack", NULL, &cfg) < 0)
		goto out;
	have_cfg = true;
	if ((dest.url && relay_name_of("ack", dest.name_opt, &cfg, dest.name) < 0) ||
	    doctor_dir_load("ack", dir, &d) < 0)
		goto out;
	/* The kit takes an acknowledgement only from the doctor whose grant it holds. */
	snprintf(path, sizeof(path), "%.*s/roots/%.63s.json", DOCTOR_DIR_MAX, dir, kit);
	if (access(path, F_OK) != 0) {
		fprintf(stderr,
			"iotsec-doctor ack: %s has no grant from this doctor (no %s): the kit "
			"would refuse it; iotsec-doctor grant first\n",
			kit, path);
		goto out;
	}
	if ((r = doctor_ack_build(kit, n, &body)) < 0) {
		fprintf(stderr, "iotsec-doctor ack: cannot build the acknowledgement: %s\n",
			iotsec_strerror(r));
		goto out;
	}
	if (deliver("ack", &d, DOCTOR_MSG_ACK, kit, body, &dest, "/api/ack", NULL) < 0)
		goto out;
	printf("acknowledged %s's emergency records up to seq %" PRIu64 "\n", kit, n);
	if (dest.url)
		printf("sent through relay %s, which publishes it for %s\n", dest.name, kit);
	else
		print_publish(&cfg, &d, "ack", kit, dest.out, false);
	rc = DOCTOR_EXIT_OK;
out:
	json_decref(body);
	doctor_dir_free(&d);
	if (have_cfg)
		config_free(&cfg);
	return rc;
}
