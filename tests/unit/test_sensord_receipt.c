/* sensord with a relay (daemons/sensord/receipts.c, SPEC 9): with sensord.relay set, a doctor
 * reading (in the doctor's spool) and the doctor-sealed emergency record stay after the broker's
 * PUBACK until a RELAY_RECEIPT of a trusted relay covers them, and go again sensord.receipt_s
 * later without one; group readings leave the home's spool on the PUBACK as before, are not
 * sent again after a restart while doctor readings wait, and everything leaves on the PUBACK
 * when sensord.relay is empty. A receipt counts only from a relay of sensord.relay, signed by that
 * relay's own relay certificate of our home, for us: every other is refused, counted, and takes
 * nothing. A doctor's grant and acknowledgement passed on by a trusted relay are taken.
 *
 * The device is pi1 of the fixture's home (real certificates and envelopes); relay1 and relay3
 * are trusted, relay2 (enrolled here) is not, and another home has a relay1 of its own. The
 * broker is played as in test_sensord_publish: this file defines mqtt.h's functions. */
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
#include "encoding.h"
#include "envelope.h"
#include "file.h"
#include "fixture.h"
#include "log.h"
#include "mqtt.h"
#include "receipt.h"
#include "sensord.h"

#define SENT_MAX 64

/* ---- the broker, played ---- */

struct mqtt {
	struct mqtt_callbacks cb;
	void *ud;
	bool connected;
	int next_mid, max_inflight;
	unsigned inflight;
	char subs[8][SENSORD_TOPIC_MAX];
	size_t n_subs;
	struct {
		char topic[SENSORD_TOPIC_MAX];
		uint8_t data[READING_MAX];
		size_t len;
		int mid;
		bool acked;
	} sent[SENT_MAX];
	size_t n_sent;
};

static struct mqtt *broker;

int mqtt_new(sd_event *e, const struct mqtt_opts *o, const struct mqtt_callbacks *cb,
	     void *userdata, struct mqtt **ret)
{
	struct mqtt *m = calloc(1, sizeof(*m));

	(void)e;
	if (m == NULL)
		return -ENOMEM;
	m->cb = *cb, m->ud = userdata, m->max_inflight = o->max_inflight;
	broker = *ret = m;
	return 0;
}

void mqtt_free(struct mqtt *m)
{
	free(m);
	broker = NULL;
}

bool mqtt_connected(const struct mqtt *m)
{
	return m->connected;
}

int mqtt_publish(struct mqtt *m, const char *topic, const void *payload, size_t len, int qos,
		 bool retain, int *ret_mid)
{
	assert_int_equal(qos, 1);
	assert_false(retain);
	if (!m->connected)
		return -ENOTCONN;
	if (m->inflight >= (unsigned)m->max_inflight)
		return -ENOBUFS;
	assert_true(m->n_sent < SENT_MAX);
	assert_true(len <= READING_MAX);
	snprintf(m->sent[m->n_sent].topic, SENSORD_TOPIC_MAX, "%s", topic);
	memcpy(m->sent[m->n_sent].data, payload, len);
	m->sent[m->n_sent].len = len;
	m->sent[m->n_sent].mid = ++m->next_mid;
	m->sent[m->n_sent].acked = false;
	m->n_sent++;
	m->inflight++;
	*ret_mid = m->next_mid;
	return 0;
}

int mqtt_subscribe(struct mqtt *m, const char *pattern, int qos)
{
	assert_int_equal(qos, 1);
	assert_true(m->n_subs < 8);
	snprintf(m->subs[m->n_subs++], SENSORD_TOPIC_MAX, "%s", pattern);
	return 0;
}

unsigned mqtt_inflight(const struct mqtt *m)
{
	return m->inflight;
}

const char *mqtt_why(const struct mqtt *m)
{
	return m->connected ? "" : "connection refused or closed";
}

static void broker_up(void)
{
	broker->connected = true;
	broker->inflight = 0;
	broker->n_subs = 0;
	broker->cb.on_connect(broker->ud);
}

/* The broker acknowledges every message it has not acknowledged yet, in order. */
static void puback_all(void)
{
	for (size_t i = 0; i < broker->n_sent; i++) {
		if (broker->sent[i].acked)
			continue;
		broker->sent[i].acked = true;
		broker->inflight--;
		broker->cb.on_publish(broker->sent[i].mid, broker->ud);
	}
}

/* A message for us on topic. */
static void deliver(const char *topic, const char *payload, size_t len)
{
	broker->cb.on_message(topic, payload, len, 1, false, broker->ud);
}

/* ---- the home ---- */

static struct fixture fx;
static char other_out[PATH_MAX + 16]; /* another home's relay1 */

static int group_setup(void **state)
{
	struct ca_enrol_req req = {.not_before = clock_now() - 60,
				   .not_after = clock_now() + 86400 * 30};
	char out[PATH_MAX + 8];
	int r;

	(void)state;
	if (fixture_home(&fx) < 0)
		return -1;
	snprintf(out, sizeof(out), "%s/out", fx.dir);
	req.out_dir = out;
	req.role = CERT_ROLE_RELAY;
	req.device = "relay2"; /* a relay of the home, not in sensord.relay */
	if ((r = ca_enrol(fx.ca_dir, &req)) < 0 && r != -EEXIST)
		return -1;
	req.device = "relay3"; /* trusted too */
	if ((r = ca_enrol(fx.ca_dir, &req)) < 0 && r != -EEXIST)
		return -1;
	snprintf(other_out, sizeof(other_out), "%s/out9", fx.dir);
	if (file_mkdirs(other_out, 0700) < 0)
		return -1;
	req.out_dir = other_out;
	req.device = "relay1";
	if ((r = ca_enrol(fx.other_ca_dir, &req)) < 0 && r != -EEXIST)
		return -1;
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	fixture_remove(&fx);
	return 0;
}

struct ctx {
	char dir[PATH_MAX];
	struct iotsec_config cfg;
	struct sensord d;
	struct cert_store *stores[8];
	size_t n_stores;
	struct envelope_ctx *relay1, *relay2, *relay3, *other_relay1, *doc1, *pi2;
	X509 *kit_cert;
	uint8_t root[CRYPTO_KEY_LEN], doctor_id[STREAM_ID_LEN];
};

/* Who signs: a device of the home (fixture_path()'s) or, with other, the other home's relay1. */
static struct envelope_ctx *signer(struct ctx *c, const char *name, bool other)
{
	struct cert_store *store = NULL;
	struct envelope_ctx *e = NULL;
	char crt[PATH_MAX + 64], key[PATH_MAX + 64];
	X509 *cert = NULL;
	EVP_PKEY *k = NULL;

	if (other) {
		snprintf(crt, sizeof(crt), "%s/%s.crt", other_out, name);
		snprintf(key, sizeof(key), "%s/%s.key", other_out, name);
	} else {
		snprintf(crt, sizeof(crt), "%s", fixture_path(&fx, name, "crt"));
		snprintf(key, sizeof(key), "%s", fixture_path(&fx, name, "key"));
	}
	assert_int_equal(cert_load(crt, &cert), 0);
	assert_int_equal(crypto_load_private_key(key, &k), 0);
	assert_int_equal(cert_store_load(fx.ca_crt, fx.crl, &store), 0);
	assert_true(c->n_stores < 8);
	c->stores[c->n_stores++] = store;
	assert_int_equal(envelope_ctx_new(store, cert, k, sensord_rules, 30, &e), 0);
	X509_free(cert);
	EVP_PKEY_free(k);
	return e;
}

static int setup_with(void **state, const char *relay, int spool_max)
{
	struct ctx *c = calloc(1, sizeof(*c));
	struct sensor_spec spec[SENSOR_MAX];
	char *text = NULL, err[256], path[PATH_MAX + 16];
	const char *what = NULL;
	uint8_t groot[CRYPTO_KEY_LEN];
	FILE *f;

	if (c == NULL)
		return -1;
	snprintf(c->dir, sizeof(c->dir), "/tmp/test_sensord_receipt.XXXXXX");
	if (mkdtemp(c->dir) == NULL)
		return -1;
	/* A doctor sensor and a room sensor: one reading of each per read. */
	snprintf(path, sizeof(path), "%s/heart.csv", c->dir);
	assert_non_null(f = fopen(path, "w"));
	for (int i = 1; i <= 20; i++)
		fprintf(f, "heart,%d,/min\n", 60 + i);
	fclose(f);
	snprintf(path, sizeof(path), "%s/room.csv", c->dir);
	assert_non_null(f = fopen(path, "w"));
	for (int i = 1; i <= 20; i++)
		fprintf(f, "room,%d.5,C\n", i);
	fclose(f);
	assert_true(
	    asprintf(
		&text,
		"device = { name = \"pi1\"; cert = \"%s\"; key = \"%s\"; ca = \"%s\"; crl = \"%s\";"
		" state_dir = \"%s\"; run_dir = \"%s\"; };\n"
		"sensord = { max_inflight = 8; sensors = \"heart=replay:%s/heart.csv "
		"room=replay:%s/room.csv\"; doctor_sensors = \"heart\"; relay = \"%s\";"
		" receipt_s = 1; alarm_output = \"%s/alarm\"; alarm_below = 30; spool_max = %d; "
		"};\n",
		fixture_path(&fx, "pi1", "crt"), fixture_path(&fx, "pi1", "key"), fx.ca_crt, fx.crl,
		c->dir, c->dir, c->dir, c->dir, relay, c->dir, spool_max) > 0);
	if (config_load_string(text, "receipt-test.conf", &c->cfg, err, sizeof(err)) < 0)
		fail_msg("configuration refused: %s", err);
	free(text);
	c->d.cfg = &c->cfg;
	snprintf(c->d.dir, sizeof(c->d.dir), "%s", c->dir);
	c->d.in_home = true;
	c->d.sched.start = c->cfg.stream.start;
	c->d.sched.interval = c->cfg.stream.interval_s;
	assert_int_equal(lan_member_load(&c->cfg, sensord_rules, &c->d.member, &what), 0);
	assert_int_equal(sensord_state_load(&c->d), 0);
	memset(groot, 6, sizeof(groot));
	assert_int_equal(stream_from_root(groot, 1, &c->d.group), 0);
	sensord_advance(&c->d);
	assert_int_equal(sensor_parse_list(c->cfg.sensord.sensors, spec, &c->d.n_sensors, &what),
			 0);
	assert_int_equal(c->d.n_sensors, 2);
	c->d.sensors[0].spec = spec[0];
	c->d.sensors[1].spec = spec[1];
	assert_int_equal(sensord_publish_start(&c->d), 0);
	assert_non_null(broker);
	c->relay1 = signer(c, "relay1", false);
	c->relay2 = signer(c, "relay2", false);
	c->relay3 = signer(c, "relay3", false);
	c->other_relay1 = signer(c, "relay1", true);
	c->doc1 = signer(c, "doc1", false);
	c->pi2 = signer(c, "pi2", false);
	c->kit_cert = fixture_cert(&fx, "pi1");
	memset(c->root, 0x5a, sizeof(c->root));
	assert_int_equal(stream_id(c->root, c->doctor_id), 0);
	*state = c;
	return 0;
}

static int setup(void **state)
{
	return setup_with(state, "relay1, relay3", 1000);
}

/* A spool of 10 records. */
static int setup_small(void **state)
{
	return setup_with(state, "relay1", 10);
}

static int setup_no_relay(void **state)
{
	return setup_with(state, "", 1000);
}

static int teardown(void **state)
{
	struct ctx *c = *state;
	char cmd[PATH_MAX + 16];

	sensord_publish_stop(&c->d);
	for (size_t i = 0; i < c->d.n_sensors; i++)
		sensor_close(c->d.sensors[i].s);
	envelope_ctx_free(c->relay1);
	envelope_ctx_free(c->relay2);
	envelope_ctx_free(c->relay3);
	envelope_ctx_free(c->other_relay1);
	envelope_ctx_free(c->doc1);
	envelope_ctx_free(c->pi2);
	while (c->n_stores > 0)
		cert_store_free(c->stores[--c->n_stores]);
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

/* ---- messages ---- */

static char *sealed(struct envelope_ctx *from, const char *type, const char *to, json_t *body,
		    size_t *len)
{
	char id[ENVELOPE_ID_MAX + 1], *out = NULL;

	assert_int_equal(envelope_new_id(id), 0);
	assert_int_equal(envelope_seal(from, type, to, id, body, true, &out, len), 0);
	json_decref(body);
	return out;
}

/* A receipt of seqs (n of them) of stream, signed by from, for kit. */
static char *receipt(struct envelope_ctx *from, const char *kit, const uint8_t *stream,
		     const uint64_t *seqs, size_t n, size_t *len)
{
	struct receipt rc;
	uint64_t copy[16];
	json_t *body = NULL;
	size_t used = 0;

	assert_true(n <= 16);
	memcpy(copy, seqs, n * sizeof(*seqs));
	memcpy(rc.stream, stream, STREAM_ID_LEN);
	assert_int_equal(receipt_from_seqs(&rc, copy, n, &used), 0);
	assert_int_equal(receipt_build(&rc, &body), 0);
	return sealed(from, RECEIPT_MSG, kit, body, len);
}

/* from publishes msg on iotsec/testhome/<topic_name>/<what>/pi1 (msg freed). */
static void publish_as(const char *topic_name, const char *what, char *msg, size_t len)
{
	char topic[SENSORD_TOPIC_MAX];

	snprintf(topic, sizeof(topic), "iotsec/testhome/%s/%s/pi1", topic_name, what);
	deliver(topic, msg, len);
	free(msg);
}

static char *grant(struct ctx *c, struct envelope_ctx *from, int64_t issued, size_t *len)
{
	struct doctor_grant g = {.kit = "pi1", .start = 1, .issued_ms = issued};
	json_t *body = NULL;

	memcpy(g.root, c->root, sizeof(g.root));
	assert_int_equal(doctor_grant_build(&g, X509_get0_pubkey(c->kit_cert), &body), 0);
	return sealed(from, DOCTOR_MSG_GRANT, "pi1", body, len);
}

/* doc1 grants the doctor stream itself, on its own topic. */
static void grant_doc1(struct ctx *c)
{
	size_t len;
	char *m = grant(c, c->doc1, 1000, &len);

	publish_as("doc1", "grant", m, len);
	assert_non_null(c->d.doctor);
	assert_memory_equal(stream_get_id(c->d.doctor), c->doctor_id, STREAM_ID_LEN);
}

/* The header of the i-th message the broker got. */
static struct reading_header header_of(size_t i)
{
	struct reading_header h;
	size_t hlen;

	assert_true(i < broker->n_sent);
	assert_int_equal(reading_header_parse(broker->sent[i].data, broker->sent[i].len, &h, &hlen),
			 0);
	return h;
}

/* The seqs of the doctor readings among the messages from `from` on, in order; their count. */
static size_t doctor_seqs(size_t from, uint64_t *out, size_t max)
{
	size_t n = 0;

	for (size_t i = from; i < broker->n_sent; i++) {
		if (strcmp(broker->sent[i].topic, "iotsec/testhome/pi1/doctor") != 0)
			continue;
		assert_true(n < max);
		out[n++] = header_of(i).seq;
	}
	return n;
}

static json_int_t status_int(struct ctx *c, const char *field)
{
	json_t *s = sensord_status(&c->d);
	json_int_t v;

	assert_non_null(s);
	assert_true(json_is_integer(json_object_get(s, field)));
	v = json_integer_value(json_object_get(s, field));
	json_decref(s);
	return v;
}

/* Three reads (three doctor readings, three room readings) published and acknowledged by the
 * broker: the room readings leave the home's spool, the doctor readings wait in the doctor's.
 * Their seqs in seqs. */
static void three_acknowledged(struct ctx *c, uint64_t seqs[3])
{
	grant_doc1(c);
	for (int i = 0; i < 3; i++)
		sensord_read_all(&c->d);
	broker_up();
	assert_int_equal(broker->n_sent, 6);
	assert_int_equal(doctor_seqs(0, seqs, 3), 3);
	puback_all();
	assert_int_equal(spool_pending(c->d.spool), 0);
	assert_int_equal(spool_pending(c->d.spool_doctor), 3);
	assert_int_equal(c->d.n_awaiting, 3);
	assert_int_equal(c->d.published, 3);
	assert_int_equal(status_int(c, "awaiting_receipt"), 3);
	assert_int_equal(status_int(c, "spooled"), 3);
	assert_int_equal(status_int(c, "spooled_doctor"), 3);
}

/* The messages on iotsec/testhome/pi1/<what> from `from` on. */
static size_t sent_on(size_t from, const char *what)
{
	char topic[SENSORD_TOPIC_MAX];
	size_t n = 0;

	snprintf(topic, sizeof(topic), "iotsec/testhome/pi1/%s", what);
	for (size_t i = from; i < broker->n_sent; i++)
		n += strcmp(broker->sent[i].topic, topic) == 0;
	return n;
}

/* sensord stopped and started again on the same state dir, and the broker there. */
static void restart(struct ctx *c)
{
	sensord_publish_stop(&c->d);
	assert_int_equal(sensord_publish_start(&c->d), 0);
	broker_up();
}

/* ---- tests ---- */

static void test_receipt_takes_what_it_covers(void **state)
{
	struct ctx *c = *state;
	uint64_t seqs[3], some[2], rest[1];
	size_t len;
	char *m, *again;

	three_acknowledged(c, seqs);
	assert_string_equal(broker->subs[broker->n_subs - 1], "iotsec/testhome/+/receipt/pi1");
	/* The first and the third: exactly those leave. */
	some[0] = seqs[0], some[1] = seqs[2];
	m = receipt(c->relay1, "pi1", c->doctor_id, some, 2, &len);
	again = strdup(m);
	publish_as("relay1", "receipt", m, len);
	assert_int_equal(spool_pending(c->d.spool_doctor), 1);
	assert_int_equal(c->d.n_awaiting, 1);
	assert_int_equal(c->d.awaiting[0].seq, seqs[1]);
	assert_int_equal(c->d.published, 5);
	assert_int_equal(status_int(c, "receipts"), 1);
	assert_int_equal(status_int(c, "awaiting_receipt"), 1);
	/* The same again (receipts are any_time): taken, nothing more leaves. */
	publish_as("relay1", "receipt", again, len);
	assert_int_equal(spool_pending(c->d.spool_doctor), 1);
	assert_int_equal(c->d.published, 5);
	assert_int_equal(c->d.refused.total, 0);
	/* The other trusted relay's receipt for the rest. */
	rest[0] = seqs[1];
	m = receipt(c->relay3, "pi1", c->doctor_id, rest, 1, &len);
	publish_as("relay3", "receipt", m, len);
	assert_int_equal(spool_pending(c->d.spool_doctor), 0);
	assert_int_equal(c->d.n_awaiting, 0);
	assert_int_equal(c->d.published, 6);
	assert_int_equal(status_int(c, "receipts"), 3);
	assert_int_equal(c->d.refused.total, 0);
}

static void test_receipt_refused(void **state)
{
	struct ctx *c = *state;
	uint8_t other_stream[STREAM_ID_LEN];
	uint64_t seqs[3];
	json_t *body;
	size_t len, n = 0;
	char *m, hex[2 * STREAM_ID_LEN + 1];

	three_acknowledged(c, seqs);
	/* A relay of the home, not in sensord.relay. */
	m = receipt(c->relay2, "pi1", c->doctor_id, seqs, 3, &len);
	publish_as("relay2", "receipt", m, len), n++;
	/* A doctor's and a node's certificate, under a trusted relay's name. */
	m = receipt(c->doc1, "pi1", c->doctor_id, seqs, 3, &len);
	publish_as("relay1", "receipt", m, len), n++;
	m = receipt(c->pi2, "pi1", c->doctor_id, seqs, 3, &len);
	publish_as("relay1", "receipt", m, len), n++;
	/* Another home's relay1. */
	m = receipt(c->other_relay1, "pi1", c->doctor_id, seqs, 3, &len);
	publish_as("relay1", "receipt", m, len), n++;
	/* For another kit. */
	m = receipt(c->relay1, "pi2", c->doctor_id, seqs, 3, &len);
	publish_as("relay1", "receipt", m, len), n++;
	/* relay1's, published under relay3's name. */
	m = receipt(c->relay1, "pi1", c->doctor_id, seqs, 3, &len);
	publish_as("relay3", "receipt", m, len), n++;
	/* Tampered. */
	m = receipt(c->relay1, "pi1", c->doctor_id, seqs, 3, &len);
	m[40] = m[40] == 'A' ? 'B' : 'A';
	publish_as("relay1", "receipt", m, len), n++;
	/* Malformed bodies, signed: ranges backwards, seq 0, a field more. */
	hex_encode(c->doctor_id, STREAM_ID_LEN, hex);
	body = json_pack("{s:s, s:[[I, I]]}", "stream", hex, "ranges", (json_int_t)seqs[2],
			 (json_int_t)seqs[0]);
	m = sealed(c->relay1, RECEIPT_MSG, "pi1", body, &len);
	publish_as("relay1", "receipt", m, len), n++;
	body = json_pack("{s:s, s:[[i, I]]}", "stream", hex, "ranges", 0, (json_int_t)seqs[2]);
	m = sealed(c->relay1, RECEIPT_MSG, "pi1", body, &len);
	publish_as("relay1", "receipt", m, len), n++;
	body = json_pack("{s:s, s:[[I, I]], s:s}", "stream", hex, "ranges", (json_int_t)seqs[0],
			 (json_int_t)seqs[2], "kit", "pi1");
	m = sealed(c->relay1, RECEIPT_MSG, "pi1", body, &len);
	publish_as("relay1", "receipt", m, len), n++;
	/* Another type where a receipt goes; no envelope at all. */
	assert_int_equal(doctor_ack_build("pi1", 1, &body), 0);
	m = sealed(c->relay1, DOCTOR_MSG_ACK, "pi1", body, &len);
	publish_as("relay1", "receipt", m, len), n++;
	deliver("iotsec/testhome/relay1/receipt/pi1", "{\"v\":2}", 7), n++;
	assert_int_equal(c->d.refused.total, n);
	assert_true(refusals_of(&c->d.refused, "relay1") >= 8);
	assert_int_equal(refusals_of(&c->d.refused, "relay2"), 1);
	assert_int_equal(status_int(c, "receipts"), 0);

	/* Not refused, yet nothing taken: another stream's seqs, another home's topic, another
	 * kit's topic. */
	memcpy(other_stream, c->doctor_id, STREAM_ID_LEN);
	other_stream[0] ^= 1;
	m = receipt(c->relay1, "pi1", other_stream, seqs, 3, &len);
	publish_as("relay1", "receipt", m, len);
	assert_int_equal(status_int(c, "receipts"), 1);
	m = receipt(c->relay1, "pi1", c->doctor_id, seqs, 3, &len);
	deliver("iotsec/otherhome/relay1/receipt/pi1", m, len);
	deliver("iotsec/testhome/relay1/receipt/pi2", m, len);
	free(m);
	assert_int_equal(status_int(c, "receipts"), 1);
	assert_int_equal(c->d.refused.total, n);
	assert_int_equal(spool_pending(c->d.spool_doctor), 3);
	assert_int_equal(c->d.n_awaiting, 3);
	assert_int_equal(c->d.published, 3);
}

/* No receipt within sensord.receipt_s: the same doctor readings go again (not the room
 * readings), wait again after their PUBACK, and go with the next connection and after a
 * restart too, until a receipt comes. */
static void test_sent_again(void **state)
{
	struct ctx *c = *state;
	uint64_t seqs[3], again[3];
	size_t n, len, first[3], k = 0;
	char *m;

	three_acknowledged(c, seqs);
	n = broker->n_sent;
	for (size_t i = 0; i < n; i++)
		if (strcmp(broker->sent[i].topic, "iotsec/testhome/pi1/doctor") == 0)
			first[k++] = i;
	assert_int_equal(k, 3);
	sensord_drain(&c->d);
	assert_int_equal(broker->n_sent, n); /* not yet */
	usleep(1100 * 1000);
	sensord_drain(&c->d);
	assert_int_equal(broker->n_sent, n + 3);
	assert_int_equal(doctor_seqs(n, again, 3), 3);
	assert_memory_equal(again, seqs, sizeof(seqs));
	for (size_t i = 0; i < 3; i++)
		assert_memory_equal(broker->sent[n + i].data, broker->sent[first[i]].data,
				    broker->sent[n + i].len);
	assert_int_equal(c->d.n_awaiting, 0); /* in flight again */
	puback_all();
	assert_int_equal(c->d.n_awaiting, 3);
	assert_int_equal(spool_pending(c->d.spool_doctor), 3);

	/* A restart: the spools are all there is, and the doctor's goes again from its head; the
	 * room readings the broker acknowledged do not (test_restart_sends_only_what_waits). */
	sensord_publish_stop(&c->d);
	assert_int_equal(sensord_publish_start(&c->d), 0);
	assert_int_equal(c->d.n_awaiting, 0);
	broker_up();
	assert_int_equal(broker->n_sent, 3);
	assert_int_equal(doctor_seqs(0, again, 3), 3);
	assert_memory_equal(again, seqs, sizeof(seqs));
	puback_all();
	assert_int_equal(c->d.n_awaiting, 3);
	assert_int_equal(spool_pending(c->d.spool_doctor), 3);
	m = receipt(c->relay1, "pi1", c->doctor_id, seqs, 3, &len);
	publish_as("relay1", "receipt", m, len);
	assert_int_equal(spool_pending(c->d.spool_doctor), 0);
	n = broker->n_sent;
	usleep(1100 * 1000);
	sensord_drain(&c->d);
	assert_int_equal(broker->n_sent, n);
}

/* A receipt that comes while a reading is in flight again takes it; its PUBACK then has
 * nothing to do. */
static void test_receipt_while_in_flight(void **state)
{
	struct ctx *c = *state;
	uint64_t seqs[3];
	size_t len;
	char *m;

	three_acknowledged(c, seqs);
	usleep(1100 * 1000);
	sensord_drain(&c->d);
	assert_int_equal(c->d.n_inflight, 3);
	m = receipt(c->relay1, "pi1", c->doctor_id, seqs, 3, &len);
	publish_as("relay1", "receipt", m, len);
	assert_int_equal(spool_pending(c->d.spool_doctor), 0);
	assert_int_equal(c->d.published, 6);
	puback_all();
	assert_int_equal(c->d.n_awaiting, 0);
	assert_int_equal(c->d.published, 6);
}

/* With no receipt coming, the doctor readings fill the doctor's spool: the oldest are dropped,
 * and what waits for a receipt stays within the spool; only records still in it go again. The
 * room readings leave the home's spool on their PUBACK all the while. */
static void test_bounded_by_spool(void **state)
{
	struct ctx *c = *state;
	uint64_t all[20], again[10], pending[10];
	const uint8_t *data;
	size_t n_all = 0, n, n_pending = 0, len;
	uint64_t id = 0;
	char *m;

	grant_doc1(c);
	broker_up();
	for (int i = 0; i < 20; i++) {
		n = broker->n_sent;
		sensord_read_all(&c->d);
		sensord_drain(&c->d);
		n_all += doctor_seqs(n, all + n_all, 20 - n_all);
		puback_all();
		/* Memory too: no more entries, nor room for them, than the spool holds. */
		assert_true(spool_pending(c->d.spool_doctor) <= 10);
		assert_int_equal(spool_pending(c->d.spool), 0);
		assert_true(c->d.n_awaiting <= 10);
		assert_true(c->d.cap_awaiting <= 10);
	}
	assert_int_equal(n_all, 20);
	assert_true(spool_dropped(c->d.spool_doctor) > 0);
	/* The doctor readings still in the spool: those, and only those, go again. */
	while (spool_next(c->d.spool_doctor, id, &id, &data, &len) == 0) {
		struct reading_header h;
		size_t hlen;

		assert_int_equal(reading_header_parse(data, len, &h, &hlen), 0);
		if (h.kind == READING_DOCTOR)
			pending[n_pending++] = h.seq;
	}
	assert_int_equal(n_pending, 10);
	assert_int_equal(spool_dropped(c->d.spool_doctor), 10);
	assert_int_equal(spool_dropped(c->d.spool), 0);
	assert_int_equal(status_int(c, "spool_dropped"), 10);
	n = broker->n_sent;
	usleep(1100 * 1000);
	sensord_drain(&c->d);
	/* max_inflight (8) at once, the rest as the PUBACKs come. */
	puback_all();
	assert_int_equal(doctor_seqs(n, again, 10), n_pending);
	assert_memory_equal(again, pending, n_pending * sizeof(pending[0]));
	assert_int_equal(c->d.n_awaiting, 10);
	/* Receipts for every seq ever sent: the spool empties. */
	m = receipt(c->relay1, "pi1", c->doctor_id, all, 16, &len);
	publish_as("relay1", "receipt", m, len);
	m = receipt(c->relay1, "pi1", c->doctor_id, all + 16, 4, &len);
	publish_as("relay1", "receipt", m, len);
	assert_int_equal(spool_pending(c->d.spool_doctor), 0);
	assert_int_equal(c->d.n_awaiting, 0);
	assert_int_equal(c->d.refused.total, 0);
}

/* The emergency record sealed under the doctor stream waits for a receipt like a doctor
 * reading, across a restart too (sensord.state says it is not delivered). */
static void test_emergency_waits(void **state)
{
	struct ctx *c = *state;
	struct reading_value v = {.sensor = "pulse", .value = 20, .unit = "/min"};
	struct reading_header h;
	uint64_t seq;
	size_t len;
	char *m;

	grant_doc1(c);
	sensord_alarm_raise(&c->d, &v);
	broker_up();
	assert_int_equal(broker->n_sent, 1);
	assert_string_equal(broker->sent[0].topic, "iotsec/testhome/pi1/emergency");
	h = header_of(0);
	assert_int_equal(h.kind, READING_DOCTOR);
	seq = h.seq;
	puback_all();
	assert_false(c->d.alarm.delivered);
	assert_true(c->d.alarm.sent_at != 0);
	assert_int_equal(status_int(c, "awaiting_receipt"), 1);
	sensord_drain(&c->d);
	assert_int_equal(broker->n_sent, 1);
	usleep(1100 * 1000);
	sensord_drain(&c->d);
	assert_int_equal(broker->n_sent, 2);
	assert_string_equal(broker->sent[1].topic, "iotsec/testhome/pi1/emergency");
	assert_memory_equal(broker->sent[1].data, broker->sent[0].data, broker->sent[0].len);
	puback_all();
	/* A restart: still to deliver. */
	assert_int_equal(sensord_state_load(&c->d), 0);
	assert_false(c->d.alarm.delivered);
	/* A receipt of another seq takes nothing; its own does. */
	m = receipt(c->relay1, "pi1", c->doctor_id, (uint64_t[]){seq + 1}, 1, &len);
	publish_as("relay1", "receipt", m, len);
	assert_false(c->d.alarm.delivered);
	m = receipt(c->relay1, "pi1", c->doctor_id, &seq, 1, &len);
	publish_as("relay1", "receipt", m, len);
	assert_true(c->d.alarm.delivered);
	assert_true(c->d.alarm.set); /* the relay's word is not the doctor's */
	assert_int_equal(status_int(c, "awaiting_receipt"), 0);
	usleep(1100 * 1000);
	sensord_drain(&c->d);
	assert_int_equal(broker->n_sent, 2);
	assert_int_equal(sensord_state_load(&c->d), 0);
	assert_true(c->d.alarm.delivered);
}

/* Without a doctor the record is sealed under the group stream, which no relay keeps: the
 * broker's PUBACK delivers it, relay or not. */
static void test_group_emergency_on_puback(void **state)
{
	struct ctx *c = *state;
	struct reading_value v = {.sensor = "pulse", .value = 20, .unit = "/min"};

	sensord_alarm_raise(&c->d, &v);
	broker_up();
	assert_int_equal(header_of(0).kind, READING_GROUP);
	puback_all();
	assert_true(c->d.alarm.delivered);
}

/* sensord.relay empty: the PUBACK takes doctor readings and the emergency record as before,
 * and no receipt topic is subscribed to (nor a receipt taken). */
static void test_no_relay(void **state)
{
	struct ctx *c = *state;
	struct reading_value v = {.sensor = "pulse", .value = 20, .unit = "/min"};
	uint64_t seqs[3];
	size_t len;
	char *m;

	grant_doc1(c);
	for (int i = 0; i < 3; i++)
		sensord_read_all(&c->d);
	sensord_alarm_raise(&c->d, &v);
	broker_up();
	assert_int_equal(broker->n_subs, 4);
	for (size_t i = 0; i < broker->n_subs; i++)
		assert_null(strstr(broker->subs[i], "receipt"));
	assert_int_equal(broker->n_sent, 7);
	assert_int_equal(header_of(0).kind, READING_DOCTOR);
	puback_all();
	assert_true(c->d.alarm.delivered);
	assert_int_equal(spool_pending(c->d.spool), 0);
	assert_int_equal(c->d.published, 6);
	assert_int_equal(status_int(c, "awaiting_receipt"), 0);
	assert_int_equal(doctor_seqs(0, seqs, 3), 3);
	m = receipt(c->relay1, "pi1", c->doctor_id, seqs, 3, &len);
	publish_as("relay1", "receipt", m, len);
	assert_int_equal(status_int(c, "receipts"), 0);
	assert_int_equal(c->d.refused.total, 1);
}

/* A trusted relay passes on the doctor's grant and acknowledgement under its own name; an
 * untrusted device cannot, and a relay's own signature is no doctor's. */
static void test_grant_and_ack_through_relay(void **state)
{
	struct ctx *c = *state;
	struct reading_value v = {.sensor = "pulse", .value = 20, .unit = "/min"};
	json_t *body = NULL;
	size_t len;
	char *m;

	broker_up();
	/* The doctor's grant, published by relay2 (not trusted) or by pi2: refused. */
	m = grant(c, c->doc1, 1000, &len);
	publish_as("relay2", "grant", m, len);
	m = grant(c, c->doc1, 1000, &len);
	publish_as("pi2", "grant", m, len);
	/* Signed by the relay itself: no doctor. */
	m = grant(c, c->relay1, 1000, &len);
	publish_as("relay1", "grant", m, len);
	assert_null(c->d.doctor);
	assert_int_equal(c->d.refused.total, 3);
	assert_int_equal(refusals_of(&c->d.refused, "relay2"), 1);
	/* Through relay1: installed, the doctor named by its signature. */
	m = grant(c, c->doc1, 1000, &len);
	publish_as("relay1", "grant", m, len);
	assert_non_null(c->d.doctor);
	assert_string_equal(c->d.doctor_name, "doc1");
	assert_memory_equal(stream_get_id(c->d.doctor), c->doctor_id, STREAM_ID_LEN);

	/* The acknowledgement likewise. */
	sensord_alarm_raise(&c->d, &v);
	assert_int_equal(doctor_ack_build("pi1", c->d.alarm.seq, &body), 0);
	m = sealed(c->doc1, DOCTOR_MSG_ACK, "pi1", body, &len);
	publish_as("relay2", "ack", strdup(m), len);
	assert_true(c->d.alarm.set);
	assert_int_equal(c->d.refused.total, 4);
	publish_as("relay3", "ack", m, len);
	assert_false(c->d.alarm.set);
	assert_int_equal(c->d.refused.total, 4);
}

/* The room readings the broker acknowledged behind doctor readings waiting for a receipt are
 * not sent again after a restart (the home's readers would refuse them as replays); the doctor
 * readings are, and so is a room reading the broker had not acknowledged: nothing is lost. */
static void test_restart_sends_only_what_waits(void **state)
{
	struct ctx *c = *state;
	uint8_t room4[READING_MAX];
	uint64_t seqs[4], again[4];
	size_t n, len, room4_len = 0;
	char *m;

	three_acknowledged(c, seqs);
	/* A fourth read, published, not acknowledged yet. */
	n = broker->n_sent;
	sensord_read_all(&c->d);
	sensord_drain(&c->d);
	assert_int_equal(broker->n_sent, n + 2);
	assert_int_equal(doctor_seqs(n, seqs + 3, 1), 1);
	for (size_t i = n; i < broker->n_sent; i++)
		if (strcmp(broker->sent[i].topic, "iotsec/testhome/pi1/group") == 0) {
			room4_len = broker->sent[i].len;
			memcpy(room4, broker->sent[i].data, room4_len);
		}
	assert_true(room4_len > 0);

	restart(c);
	assert_int_equal(sent_on(0, "group"), 1);
	for (size_t i = 0; i < broker->n_sent; i++)
		if (strcmp(broker->sent[i].topic, "iotsec/testhome/pi1/group") == 0) {
			assert_int_equal(broker->sent[i].len, room4_len);
			assert_memory_equal(broker->sent[i].data, room4, room4_len);
		}
	assert_int_equal(doctor_seqs(0, again, 4), 4);
	assert_memory_equal(again, seqs, sizeof(seqs));
	assert_int_equal(broker->n_sent, 5);
	puback_all();
	assert_int_equal(status_int(c, "spooled"), 4);
	assert_int_equal(status_int(c, "awaiting_receipt"), 4);

	/* Again: only the doctor readings, still without a receipt. */
	restart(c);
	assert_int_equal(broker->n_sent, 4);
	assert_int_equal(doctor_seqs(0, again, 4), 4);
	assert_memory_equal(again, seqs, sizeof(seqs));
	puback_all();
	m = receipt(c->relay1, "pi1", c->doctor_id, seqs, 4, &len);
	publish_as("relay1", "receipt", m, len);
	assert_int_equal(status_int(c, "spooled"), 0);
	assert_int_equal(c->d.refused.total, 0);
	/* Everything delivered: nothing goes after a restart. */
	restart(c);
	assert_int_equal(broker->n_sent, 0);
	assert_int_equal(status_int(c, "spooled"), 0);
}

/* sensord.relay set on a kit with doctor readings spooled before: those leave the home's spool
 * on their PUBACK as they would have; the doctor readings read since wait for a receipt. */
static void test_relay_set_later(void **state)
{
	struct ctx *c = *state;
	char path[sizeof(c->d.dir) + 16];
	uint64_t seqs[3];
	size_t len;
	char *m;

	grant_doc1(c);
	sensord_read_all(&c->d);
	sensord_read_all(&c->d);
	/* No relay: no doctor's spool either. */
	assert_null(c->d.spool_doctor);
	snprintf(path, sizeof(path), "%s/spool-doctor", c->d.dir);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(status_int(c, "spooled"), 4);
	assert_int_equal(status_int(c, "spooled_doctor"), 0);

	sensord_publish_stop(&c->d);
	free(c->cfg.sensord.relay);
	assert_non_null(c->cfg.sensord.relay = strdup("relay1"));
	assert_int_equal(sensord_publish_start(&c->d), 0);
	assert_non_null(c->d.spool_doctor);
	sensord_read_all(&c->d);
	assert_int_equal(spool_pending(c->d.spool), 5);
	assert_int_equal(spool_pending(c->d.spool_doctor), 1);
	broker_up();
	assert_int_equal(broker->n_sent, 6);
	assert_int_equal(doctor_seqs(0, seqs, 3), 3);
	puback_all();
	assert_int_equal(status_int(c, "spooled"), 1);
	assert_int_equal(status_int(c, "spooled_doctor"), 1);
	assert_int_equal(c->d.n_awaiting, 1);
	/* The one read since: the last sealed. */
	for (size_t i = 0; i < 3; i++)
		assert_true(c->d.awaiting[0].seq >= seqs[i]);
	m = receipt(c->relay1, "pi1", c->doctor_id, &c->d.awaiting[0].seq, 1, &len);
	publish_as("relay1", "receipt", m, len);
	assert_int_equal(status_int(c, "spooled"), 0);
	restart(c);
	assert_int_equal(broker->n_sent, 0);
}

/* sensord.relay emptied with doctor readings waiting for a receipt: no receipt will come, and
 * the broker's PUBACK takes them; new doctor readings go to the home's spool. */
static void test_relay_emptied(void **state)
{
	struct ctx *c = *state;
	uint64_t seqs[3], again[3];

	three_acknowledged(c, seqs);
	sensord_publish_stop(&c->d);
	free(c->cfg.sensord.relay);
	assert_non_null(c->cfg.sensord.relay = strdup(""));
	assert_int_equal(sensord_publish_start(&c->d), 0);
	broker_up();
	assert_int_equal(broker->n_sent, 3);
	assert_int_equal(doctor_seqs(0, again, 3), 3);
	assert_memory_equal(again, seqs, sizeof(seqs));
	puback_all();
	assert_int_equal(status_int(c, "spooled"), 0);
	assert_int_equal(status_int(c, "awaiting_receipt"), 0);
	assert_int_equal(c->d.published, 6);
	sensord_read_all(&c->d);
	assert_int_equal(spool_pending(c->d.spool), 2);
	assert_int_equal(spool_pending(c->d.spool_doctor), 0);
	restart(c);
	assert_int_equal(broker->n_sent, 2);
	puback_all();
	assert_int_equal(status_int(c, "spooled"), 0);
}

/* The two spools take turns: doctor readings due again (ten of them, more than max_inflight)
 * do not hold back the room readings, nor the other way round; each goes once. */
static void test_spools_take_turns(void **state)
{
	struct ctx *c = *state;
	size_t n;

	grant_doc1(c);
	broker_up();
	for (int i = 0; i < 10; i++) {
		sensord_read_all(&c->d);
		sensord_drain(&c->d);
		puback_all();
	}
	assert_int_equal(c->d.n_awaiting, 10);
	assert_int_equal(sent_on(0, "group"), 10);
	for (int i = 0; i < 6; i++)
		sensord_read_all(&c->d);
	n = broker->n_sent;
	usleep(1100 * 1000);
	sensord_drain(&c->d);
	assert_int_equal(broker->n_sent, n + 8);
	assert_int_equal(sent_on(n, "group"), 4);
	assert_int_equal(sent_on(n, "doctor"), 4);
	puback_all();
	assert_int_equal(sent_on(n, "group"), 6);
	assert_int_equal(sent_on(n, "doctor"), 16);
	assert_int_equal(spool_pending(c->d.spool), 0);
	assert_int_equal(c->d.n_awaiting, 16);
}

/* What sensord logs while fn runs (warnings and worse), in a buffer the caller frees. */
static char *logged(void (*fn)(struct ctx *), struct ctx *c)
{
	char path[] = "/tmp/test_sensord_receipt.XXXXXX", *text = NULL;
	int fd = mkstemp(path), saved = dup(STDERR_FILENO);
	size_t len = 0;

	assert_true(fd >= 0 && saved >= 0);
	fflush(stderr);
	assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
	log_init("test_sensord_receipt", LOG_WARNING);
	fn(c);
	fflush(stderr);
	log_init("test_sensord_receipt", LOG_CRIT);
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(fd);
	assert_int_equal(file_read(path, 1 << 20, &text, &len), 0);
	unlink(path);
	return text;
}

static void untrusted_relay(struct ctx *c)
{
	uint64_t seqs[1] = {1};
	size_t len;
	char *m;

	broker_up();
	m = grant(c, c->doc1, 1000, &len);
	publish_as("relay2", "grant", m, len);
	m = receipt(c->relay2, "pi1", c->doctor_id, seqs, 1, &len);
	publish_as("relay2", "receipt", m, len);
}

/* A relay missing from sensord.relay (a name mistyped there) is said as that, not as a forged
 * sender or a receipt "not asked for": the home owner has a setting to mend. */
static void test_untrusted_relay_said(void **state)
{
	struct ctx *c = *state;
	char *text = logged(untrusted_relay, c);

	assert_int_equal(refusals_of(&c->d.refused, "relay2"), 2);
	assert_non_null(strstr(text, "refused a grant from relay2: passed on by a device that is "
				     "not in sensord.relay (a relay's name missing or mistyped "
				     "there?)"));
	assert_non_null(strstr(text, "refused a receipt from relay2: not a relay of sensord.relay "
				     "(its name missing or mistyped there?)"));
	assert_null(strstr(text, "sender does not match"));
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_receipt_takes_what_it_covers, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_receipt_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sent_again, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_receipt_while_in_flight, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bounded_by_spool, setup_small, teardown),
	    cmocka_unit_test_setup_teardown(test_emergency_waits, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_group_emergency_on_puback, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_no_relay, setup_no_relay, teardown),
	    cmocka_unit_test_setup_teardown(test_grant_and_ack_through_relay, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_restart_sends_only_what_waits, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_relay_set_later, setup_no_relay, teardown),
	    cmocka_unit_test_setup_teardown(test_relay_emptied, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_spools_take_turns, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_untrusted_relay_said, setup, teardown),
	};

	log_init("test_sensord_receipt", LOG_CRIT);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
