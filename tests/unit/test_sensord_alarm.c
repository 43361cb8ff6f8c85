/* sensord's emergency and the doctor's messages (daemons/sensord/alarm.c): a grant installs the
 * doctor stream only when it is newer, signed by a doctor of the home for us; the alarm output
 * is set by a low pulse, survives in the state file, and only the granted doctor's
 * acknowledgement of that record clears it. Forged, replayed, misaddressed and other doctors'
 * messages are refused and counted. The device is pi1 of the fixture's home; the doctors are
 * enrolled here (doc1 granted, doc2 not, doc3 revoked after its grant). */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "ca.h"
#include "clock.h"
#include "crypto.h"
#include "doctor.h"
#include "envelope.h"
#include "file.h"
#include "fixture.h"
#include "log.h"
#include "sensord.h"

static struct fixture fx;
static struct cert_store *stores[4]; /* the signers', freed with them */
static size_t n_stores;

struct ctx {
	char dir[PATH_MAX];
	char alarm[PATH_MAX + 16];
	struct iotsec_config cfg;
	struct sensord d;
	struct envelope_ctx *doc1, *doc2, *pi2;
	X509 *kit_cert;
	uint8_t root[CRYPTO_KEY_LEN];
};

static struct envelope_ctx *signer(const char *name)
{
	struct cert_store *store = NULL;
	struct envelope_ctx *ctx = NULL;
	X509 *cert = fixture_cert(&fx, name);
	EVP_PKEY *key = fixture_key(&fx, name);

	assert_int_equal(cert_store_load(fx.ca_crt, fx.crl, &store), 0);
	assert_true(n_stores < 4);
	stores[n_stores++] = store;
	assert_int_equal(envelope_ctx_new(store, cert, key, sensord_rules, 30, &ctx), 0);
	X509_free(cert);
	EVP_PKEY_free(key);
	return ctx;
}

static int group_setup(void **state)
{
	struct ca_enrol_req req = {.role = CERT_ROLE_DOCTOR,
				   .not_before = clock_now() - 60,
				   .not_after = clock_now() + 86400 * 30};
	char out[PATH_MAX + 8];
	int r;

	(void)state;
	if (fixture_home(&fx) < 0)
		return -1;
	snprintf(out, sizeof(out), "%s/out", fx.dir);
	req.out_dir = out;
	for (int i = 0; i < 3; i++) {
		req.device = i == 0   ? "doc1"
			     : i == 1 ? "doc2"
				      : "doc3"; /* doc3: revoked in a test */
		if ((r = ca_enrol(fx.ca_dir, &req)) < 0 && r != -EEXIST)
			return -1;
	}
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	fixture_remove(&fx);
	return 0;
}

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));
	char *text = NULL, err[256];
	const char *what = NULL;

	if (c == NULL)
		return -1;
	snprintf(c->dir, sizeof(c->dir), "/tmp/test_sensord_alarm.XXXXXX");
	if (mkdtemp(c->dir) == NULL)
		return -1;
	snprintf(c->alarm, sizeof(c->alarm), "%s/alarm", c->dir);
	assert_true(
	    asprintf(
		&text,
		"device = { name = \"pi1\"; cert = \"%s\"; key = \"%s\"; ca = \"%s\"; crl = \"%s\";"
		" state_dir = \"%s\"; run_dir = \"%s\"; };\n"
		"sensord = { alarm_output = \"%s\"; alarm_below = 30; };\n",
		fixture_path(&fx, "pi1", "crt"), fixture_path(&fx, "pi1", "key"), fx.ca_crt, fx.crl,
		c->dir, c->dir, c->alarm) > 0);
	if (config_load_string(text, "alarm-test.conf", &c->cfg, err, sizeof(err)) < 0)
		fail_msg("configuration refused: %s", err);
	free(text);
	c->d.cfg = &c->cfg;
	snprintf(c->d.dir, sizeof(c->d.dir), "%s", c->dir);
	c->d.in_home = true;
	c->d.sched.start = c->cfg.stream.start;
	c->d.sched.interval = c->cfg.stream.interval_s;
	assert_int_equal(lan_member_load(&c->cfg, sensord_rules, &c->d.member, &what), 0);
	assert_int_equal(sensord_state_load(&c->d), 0);
	c->doc1 = signer("doc1");
	c->doc2 = signer("doc2");
	c->pi2 = signer("pi2");
	c->kit_cert = fixture_cert(&fx, "pi1");
	memset(c->root, 0x5a, sizeof(c->root));
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;
	char cmd[PATH_MAX + 16];

	envelope_ctx_free(c->doc1);
	envelope_ctx_free(c->doc2);
	envelope_ctx_free(c->pi2);
	while (n_stores > 0)
		cert_store_free(stores[--n_stores]);
	X509_free(c->kit_cert);
	stream_free(c->d.group);
	stream_free(c->d.doctor);
	lan_member_free(c->d.member);
	config_free(&c->cfg);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", c->dir);
	assert_int_equal(system(cmd), 0);
	free(c);
	return 0;
}

/* A signed envelope of type from ctx to kit, with body. */
static char *sealed(struct envelope_ctx *ctx, const char *type, const char *to, json_t *body,
		    size_t *len)
{
	char id[ENVELOPE_ID_MAX + 1], *out = NULL;

	assert_int_equal(envelope_new_id(id), 0);
	assert_int_equal(envelope_seal(ctx, type, to, id, body, true, &out, len), 0);
	json_decref(body);
	return out;
}

static char *grant(struct ctx *c, struct envelope_ctx *from, const char *kit, int64_t issued,
		   size_t *len)
{
	struct doctor_grant g = {.start = 1, .issued_ms = issued};
	json_t *body = NULL;

	snprintf(g.kit, sizeof(g.kit), "%s", kit);
	memcpy(g.root, c->root, sizeof(g.root));
	assert_int_equal(doctor_grant_build(&g, X509_get0_pubkey(c->kit_cert), &body), 0);
	return sealed(from, DOCTOR_MSG_GRANT, kit, body, len);
}

static char *ack(struct envelope_ctx *from, const char *kit, uint64_t seq, size_t *len)
{
	json_t *body = NULL;

	assert_int_equal(doctor_ack_build(kit, seq, &body), 0);
	return sealed(from, DOCTOR_MSG_ACK, kit, body, len);
}

static void expect_alarm_file(struct ctx *c, const char *want)
{
	char *text = NULL;
	size_t len;

	assert_int_equal(file_read(c->alarm, 16, &text, &len), 0);
	assert_string_equal(text, want);
	free(text);
}

static void test_grant(void **state)
{
	struct ctx *c = *state;
	uint8_t id[STREAM_ID_LEN];
	unsigned long refused;
	char *m;
	size_t len;

	m = grant(c, c->doc1, "pi1", 1000, &len);
	sensord_on_grant(&c->d, "doc1", m, len);
	free(m);
	assert_non_null(c->d.doctor);
	assert_string_equal(c->d.doctor_name, "doc1");
	assert_int_equal(c->d.grant_issued, 1000);
	assert_int_equal(stream_id(c->root, id), 0);
	assert_memory_equal(stream_get_id(c->d.doctor), id, sizeof(id));
	assert_int_equal(stream_current(c->d.doctor), sensord_epoch_now(&c->d));
	refused = c->d.refused.total;

	/* The same again (retained), and an older one: quietly ignored. */
	m = grant(c, c->doc1, "pi1", 1000, &len);
	sensord_on_grant(&c->d, "doc1", m, len);
	free(m);
	m = grant(c, c->doc1, "pi1", 999, &len);
	sensord_on_grant(&c->d, "doc1", m, len);
	free(m);
	assert_int_equal(c->d.grant_issued, 1000);
	assert_int_equal(c->d.refused.total, refused);

	/* A newer one from another doctor replaces it. */
	m = grant(c, c->doc2, "pi1", 2000, &len);
	sensord_on_grant(&c->d, "doc2", m, len);
	free(m);
	assert_string_equal(c->d.doctor_name, "doc2");
	assert_int_equal(c->d.grant_issued, 2000);

	/* Kept across a restart. */
	stream_free(c->d.doctor);
	c->d.doctor = NULL;
	assert_int_equal(sensord_state_load(&c->d), 0);
	assert_non_null(c->d.doctor);
	assert_string_equal(c->d.doctor_name, "doc2");
	assert_memory_equal(stream_get_id(c->d.doctor), id, sizeof(id));
}

static void test_grant_refused(void **state)
{
	struct ctx *c = *state;
	unsigned long refused = c->d.refused.total;
	char *m, *bad;
	size_t len;

	/* A node's certificate: not a doctor. */
	m = grant(c, c->pi2, "pi1", 1000, &len);
	sensord_on_grant(&c->d, "pi2", m, len);
	free(m);
	/* Signed by doc1, published under doc2's name. */
	m = grant(c, c->doc1, "pi1", 1001, &len);
	sensord_on_grant(&c->d, "doc2", m, len);
	/* Tampered: one byte of the signed text changed. */
	bad = strdup(m);
	bad[20] = bad[20] == 'A' ? 'B' : 'A';
	sensord_on_grant(&c->d, "doc1", bad, len);
	free(bad);
	free(m);
	/* For another kit. */
	m = grant(c, c->doc1, "pi2", 1002, &len);
	sensord_on_grant(&c->d, "doc1", m, len);
	free(m);
	/* Not an envelope at all; an acknowledgement where a grant goes. */
	sensord_on_grant(&c->d, "doc1", "{\"v\":2}", 7);
	m = ack(c->doc1, "pi1", 5, &len);
	sensord_on_grant(&c->d, "doc1", m, len);
	free(m);

	assert_null(c->d.doctor);
	assert_int_equal(c->d.refused.total, refused + 6);
	assert_true(refusals_of(&c->d.refused, "doc1") >= 3);
}

/* A low pulse: the output, the record, the state. */
static void raise_alarm(struct ctx *c)
{
	struct reading_value v = {.sensor = "pulse", .value = 22, .unit = "/min"};

	sensord_alarm_raise(&c->d, &v);
	assert_true(c->d.alarm.set);
	assert_true(c->d.alarm.seq >= 1);
	assert_true(c->d.alarm.len > 0);
	expect_alarm_file(c, "1\n");
}

static void test_alarm_and_ack(void **state)
{
	struct ctx *c = *state;
	struct reading_header h;
	uint64_t seq;
	size_t len, hlen;
	char *m;

	m = grant(c, c->doc1, "pi1", 1000, &len);
	sensord_on_grant(&c->d, "doc1", m, len);
	free(m);
	/* A doctor reading went before: the record's seq is not the first. */
	assert_int_equal(sensord_next_seq(&c->d, SENSORD_DOCTOR), 1);
	raise_alarm(c);
	seq = c->d.alarm.seq;
	assert_int_equal(seq, 2);
	/* Sealed under the doctor stream, flagged. */
	assert_int_equal(reading_header_parse(c->d.alarm.record, c->d.alarm.len, &h, &hlen), 0);
	assert_int_equal(h.kind, READING_DOCTOR);
	assert_int_equal(h.flags, READING_F_EMERGENCY);
	assert_string_equal(h.device, "pi1");
	assert_int_equal(h.seq, seq);

	/* A second low pulse while it is set: the same alarm. */
	raise_alarm(c);
	assert_int_equal(c->d.alarm.seq, seq);

	/* The alarm survives a restart. */
	c->d.alarm.set = false;
	assert_int_equal(sensord_state_load(&c->d), 0);
	assert_true(c->d.alarm.set);
	assert_int_equal(c->d.alarm.seq, seq);

	/* Another doctor's, an older seq's, a forged one: refused, the alarm stays. */
	m = ack(c->doc2, "pi1", seq, &len);
	sensord_on_ack(&c->d, "doc2", m, len);
	free(m);
	m = ack(c->doc1, "pi1", seq - 1, &len);
	sensord_on_ack(&c->d, "doc1", m, len);
	free(m);
	m = ack(c->doc1, "pi2", seq, &len);
	sensord_on_ack(&c->d, "doc1", m, len);
	free(m);
	m = ack(c->doc1, "pi1", seq, &len);
	m[30] = m[30] == 'A' ? 'B' : 'A';
	sensord_on_ack(&c->d, "doc1", m, len);
	free(m);
	assert_true(c->d.alarm.set);
	expect_alarm_file(c, "1\n");
	assert_true(c->d.refused.total >= 4);

	/* The granted doctor's acknowledgement clears it. */
	m = ack(c->doc1, "pi1", seq, &len);
	sensord_on_ack(&c->d, "doc1", m, len);
	assert_false(c->d.alarm.set);
	assert_int_equal(c->d.acked_seq, seq);
	expect_alarm_file(c, "0\n");

	/* The same acknowledgement again, after a new alarm: replayed, refused. */
	raise_alarm(c);
	assert_true(c->d.alarm.seq > seq);
	sensord_on_ack(&c->d, "doc1", m, len);
	free(m);
	assert_true(c->d.alarm.set);
	expect_alarm_file(c, "1\n");
	/* Cleared by the next; the state file keeps it cleared. */
	m = ack(c->doc1, "pi1", c->d.alarm.seq, &len);
	sensord_on_ack(&c->d, "doc1", m, len);
	free(m);
	assert_false(c->d.alarm.set);
	assert_int_equal(sensord_state_load(&c->d), 0);
	assert_false(c->d.alarm.set);
	assert_int_equal(c->d.acked_seq, c->d.alarm.seq);
}

/* Without a doctor the record is sealed under the group stream; an ack needs a granted doctor. */
static void test_alarm_without_doctor(void **state)
{
	struct reading_value v = {.sensor = "pulse", .value = 12, .unit = "/min"};
	struct ctx *c = *state;
	struct reading_header h;
	uint8_t groot[CRYPTO_KEY_LEN];
	size_t len, hlen;
	char *m;

	/* No key at all yet: the output is set, the record waits for one. */
	sensord_alarm_raise(&c->d, &v);
	assert_true(c->d.alarm.set);
	assert_int_equal(c->d.alarm.len, 0);
	expect_alarm_file(c, "1\n");
	sensord_alarm_retry(&c->d);
	assert_int_equal(c->d.alarm.len, 0);
	memset(groot, 3, sizeof(groot));
	assert_int_equal(stream_from_root(groot, 1, &c->d.group), 0);
	sensord_advance(&c->d);
	sensord_alarm_retry(&c->d);
	assert_true(c->d.alarm.len > 0);
	assert_int_equal(reading_header_parse(c->d.alarm.record, c->d.alarm.len, &h, &hlen), 0);
	assert_int_equal(h.kind, READING_GROUP);
	assert_int_equal(h.flags, READING_F_EMERGENCY);
	m = ack(c->doc1, "pi1", c->d.alarm.seq, &len);
	sensord_on_ack(&c->d, "doc1", m, len);
	free(m);
	assert_true(c->d.alarm.set);
}

/* The granted doctor revoked since: at the next check its stream is gone, from the state file too,
 * and the doctor sensors wait for a new grant; until the revocation the same check keeps it. */
static void test_revoked_doctor_dropped(void **state)
{
	struct ctx *c = *state;
	struct envelope_ctx *doc3 = signer("doc3");
	char *m;
	size_t len;

	m = grant(c, doc3, "pi1", 5000, &len);
	sensord_on_grant(&c->d, "doc3", m, len);
	free(m);
	assert_non_null(c->d.doctor);
	assert_string_equal(c->d.doctor_name, "doc3");
	c->d.member->ca.refreshed_ms = 0; /* the CRL looked at now, not LAN_REFRESH_MS on */
	sensord_doctor_check(&c->d);
	assert_non_null(c->d.doctor);
	/* Kept across a restart, with the serial to check. */
	stream_free(c->d.doctor);
	c->d.doctor = NULL;
	c->d.doctor_serial[0] = '\0';
	assert_int_equal(sensord_state_load(&c->d), 0);
	assert_non_null(c->d.doctor);
	assert_true(c->d.doctor_serial[0] != '\0');

	assert_int_equal(ca_revoke(fx.ca_dir, "doc3"), 0);
	c->d.member->ca.refreshed_ms = 0;
	sensord_doctor_check(&c->d);
	assert_null(c->d.doctor);
	assert_int_equal(sensord_state_load(&c->d), 0);
	assert_null(c->d.doctor);
	/* Its grant, retained on the broker, is not installed again. */
	m = grant(c, doc3, "pi1", 6000, &len);
	sensord_on_grant(&c->d, "doc3", m, len);
	free(m);
	assert_null(c->d.doctor);
	/* Another doctor's grant is taken. */
	m = grant(c, c->doc1, "pi1", 7000, &len);
	sensord_on_grant(&c->d, "doc1", m, len);
	free(m);
	assert_non_null(c->d.doctor);
	sensord_doctor_check(&c->d);
	assert_non_null(c->d.doctor);
	envelope_ctx_free(doc3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_grant, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_grant_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_alarm_and_ack, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_alarm_without_doctor, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_revoked_doctor_dropped, setup, teardown),
	};

	log_init("test_sensord_alarm", LOG_CRIT);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
