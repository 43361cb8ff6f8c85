/* iotsec-doctor grant and ack: the two messages a doctor sends a kit, each a signed envelope
 * (envelope.h) addressed to the kit, written to a file the doctor publishes on the home's broker
 * (the line to do it is printed). */
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
    "usage: iotsec-doctor grant --dir D --kit K --kit-cert FILE [--start E] --out FILE\n"
    "Draw a new doctor stream for kit K: its root stays in D/roots/K.json (mode 0600; a\n"
    "root granted before is kept beside it, so its readings still open), and the grant,\n"
    "wrapped to the key of K's certificate (--kit-cert) and signed with D/doctor.key,\n"
    "goes to --out. The stream starts at epoch E (default: the current epoch of the\n"
    "configuration's stream schedule). Publish the file retained: the line is printed.\n";

static const char ack_usage[] =
    "usage: iotsec-doctor ack --dir D --kit K --seq N --out FILE\n"
    "Acknowledge kit K's emergency: the signed EMERGENCY_ACK for its emergency records up\n"
    "to seq N (the alarm's seq, as iotsec-doctor read shows it) goes to --out. Publish\n"
    "it on the home's broker: the line is printed.\n";

/* As the kit's table has them: a doctor's, unicast, judged by their bodies, not by the time. */
static const struct envelope_rule rules[] = {
    {DOCTOR_MSG_GRANT, CERT_ROLE_DOCTOR, true, true},
    {DOCTOR_MSG_ACK, CERT_ROLE_DOCTOR, true, true},
    {NULL, 0, false, false},
};

/* Seal body as type to kit and write it to out (0644: it is signed, and its secret is wrapped
 * to the kit). */
static int seal_to_file(const char *cmd, struct doctor_dir *d, const char *type, const char *kit,
			json_t *body, const char *out)
{
	struct envelope_ctx *ctx = NULL;
	char id[ENVELOPE_ID_MAX + 1], *text = NULL;
	size_t len;
	int r;

	if ((r = envelope_ctx_new(NULL, d->cert, d->key, rules, 60, &ctx)) < 0 ||
	    (r = envelope_new_id(id)) < 0 ||
	    (r = envelope_seal(ctx, type, kit, id, body, true, &text, &len)) < 0) {
		fprintf(stderr, "iotsec-doctor %s: cannot sign the %s: %s\n", cmd, type,
			iotsec_strerror(r));
		goto out;
	}
	if ((r = file_write_atomic(out, text, len, 0644)) < 0)
		fprintf(stderr, "iotsec-doctor %s: %s: %s\n", cmd, out, iotsec_strerror(r));
out:
	free(text);
	envelope_ctx_free(ctx);
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

/* A whole number in [min, max], all of s. */
static int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *ret)
{
	char *end;
	unsigned long long v;

	if (s == NULL || s[0] < '0' || s[0] > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -EINVAL;
	*ret = v;
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
	const char *dir = NULL, *kit = NULL, *kit_cert = NULL, *start = NULL, *out = NULL;
	struct iotsec_config cfg = {0};
	struct doctor_grant g = {0};
	struct doctor_root rt = {0};
	struct doctor_dir d = {0};
	bool have_cfg = false;
	char roots[4096], path[4096], hex[2 * STREAM_ID_LEN + 1];
	X509 *kx = NULL;
	json_t *body = NULL;
	uint64_t e0 = 0;
	int r, rc = DOCTOR_EXIT_FAIL;

	for (int i = 1; i < argc; i++) {
		const char **slot = strcmp(argv[i], "--dir") == 0	 ? &dir
				    : strcmp(argv[i], "--kit") == 0	 ? &kit
				    : strcmp(argv[i], "--kit-cert") == 0 ? &kit_cert
				    : strcmp(argv[i], "--start") == 0	 ? &start
				    : strcmp(argv[i], "--out") == 0	 ? &out
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
	if (dir == NULL || kit == NULL || kit_cert == NULL || out == NULL)
		return usage_error("grant", grant_usage,
				   "--dir, --kit, --kit-cert and --out are required");
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
	if (doctor_dir_load("grant", dir, &d) < 0 || load_kit_cert(&d, kit, kit_cert, &kx) < 0)
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
	if (seal_to_file("grant", &d, DOCTOR_MSG_GRANT, kit, body, out) < 0)
		goto out;
	hex_encode(rt.id, STREAM_ID_LEN, hex);
	printf("granted %s a doctor stream from epoch %u (stream %s), root kept in %s\n", kit,
	       rt.start, hex, path);
	print_publish(&cfg, &d, "grant", kit, out, true);
	rc = DOCTOR_EXIT_OK;
out:
	crypto_wipe(&g, sizeof(g));
	crypto_wipe(&rt, sizeof(rt));
	json_decref(body);
	X509_free(kx);
	doctor_dir_free(&d);
	if (have_cfg)
		config_free(&cfg);
	return rc;
}

int cmd_ack(int argc, char **argv)
{
	const char *dir = NULL, *kit = NULL, *seq = NULL, *out = NULL;
	struct iotsec_config cfg = {0};
	struct doctor_dir d = {0};
	bool have_cfg = false;
	json_t *body = NULL;
	char path[4096];
	uint64_t n;
	int r, rc = DOCTOR_EXIT_FAIL;

	for (int i = 1; i < argc; i++) {
		const char **slot = strcmp(argv[i], "--dir") == 0   ? &dir
				    : strcmp(argv[i], "--kit") == 0 ? &kit
				    : strcmp(argv[i], "--seq") == 0 ? &seq
				    : strcmp(argv[i], "--out") == 0 ? &out
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
	if (dir == NULL || kit == NULL || seq == NULL || out == NULL)
		return usage_error("ack", ack_usage, "--dir, --kit, --seq and --out are required");
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
	if (doctor_dir_load("ack", dir, &d) < 0)
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
	if (seal_to_file("ack", &d, DOCTOR_MSG_ACK, kit, body, out) < 0)
		goto out;
	printf("acknowledged %s's emergency records up to seq %" PRIu64 "\n", kit, n);
	print_publish(&cfg, &d, "ack", kit, out, false);
	rc = DOCTOR_EXIT_OK;
out:
	json_decref(body);
	doctor_dir_free(&d);
	if (have_cfg)
		config_free(&cfg);
	return rc;
}
