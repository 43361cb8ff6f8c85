/* The relay's ingest (daemons/relayd/ingest.c, relayd.c): real sealed doctor readings into
 * relayd_on_reading(), a real SQLite store in a fresh directory, and the receipts opened as the
 * kit opens them (envelope_open() with the kit's certificate, receipt_parse()).
 *
 * Readings are stored at the commit and only then receipted, duplicates stored once and
 * receipted again, the receipts' ranges right across gaps, kits and streams; every refusal reason
 * counted, said once per (kit, reason), and nothing of it stored; a failed commit (another
 * connection holds the database's write lock) keeps the batch, sends nothing, and a later one
 * stores and receipts it all; past the bound of pending readings new ones are dropped and
 * counted; the commit timer; grants and acks forwarded; the control verbs; a certificate of
 * another role refused at start.
 *
 * The broker is played here, as in test_sensord_publish.c: this file defines mqtt.h's functions
 * (libiotsec's mqtt.o is not linked) and records every publish. test_relayd_broker.c runs the
 * same path through a real mosquitto. */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "crypto.h"
#include "log.h"
#include "mqtt.h"
#include "proto.h"
#include "relayd.h"

#include "ctl_peer.h"
#include "fixture.h"
#include "tmpdir.h"

#define SENT_MAX  256
#define BATCH_MAX 8 /* relay.batch_max here: the pending array holds 4 batches, 32 readings */
#define COMMIT_MS 50
#define EPOCH	  5

/* ---- the broker, played ---- */

struct mqtt {
	struct mqtt_callbacks cb;
	void *ud;
	bool connected;
	int next_mid;
	char subs[8][RELAYD_TOPIC_MAX];
	size_t n_subs;
	struct {
		char topic[RELAYD_TOPIC_MAX];
		char *data;
		size_t len;
		bool retain;
	} sent[SENT_MAX];
	size_t n_sent;
	char client_id[CERT_NAME_MAX];
	bool clean_session;
};

static struct mqtt *broker;

int mqtt_new(sd_event *e, const struct mqtt_opts *o, const struct mqtt_callbacks *cb,
	     void *userdata, struct mqtt **ret)
{
	struct mqtt *m = calloc(1, sizeof(*m));

	(void)e;
	if (m == NULL)
		return -ENOMEM;
	m->cb = *cb, m->ud = userdata;
	snprintf(m->client_id, sizeof(m->client_id), "%s", o->client_id);
	m->clean_session = o->clean_session;
	broker = *ret = m;
	return 0;
}

void mqtt_free(struct mqtt *m)
{
	if (m == NULL)
		return;
	for (size_t i = 0; i < m->n_sent; i++)
		free(m->sent[i].data);
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
	if (!m->connected)
		return -ENOTCONN;
	assert_true(m->n_sent < SENT_MAX);
	snprintf(m->sent[m->n_sent].topic, RELAYD_TOPIC_MAX, "%s", topic);
	assert_non_null(m->sent[m->n_sent].data = malloc(len + 1));
	memcpy(m->sent[m->n_sent].data, payload, len);
	m->sent[m->n_sent].data[len] = '\0';
	m->sent[m->n_sent].len = len;
	m->sent[m->n_sent].retain = retain;
	m->n_sent++;
	*ret_mid = ++m->next_mid;
	return 0;
}

int mqtt_subscribe(struct mqtt *m, const char *pattern, int qos)
{
	assert_int_equal(qos, 1);
	assert_true(m->n_subs < 8);
	snprintf(m->subs[m->n_subs++], RELAYD_TOPIC_MAX, "%s", pattern);
	return 0;
}

unsigned mqtt_inflight(const struct mqtt *m)
{
	(void)m;
	return 0;
}

const char *mqtt_why(const struct mqtt *m)
{
	return m->connected ? "" : "connection refused";
}

static void broker_up(void)
{
	broker->connected = true;
	broker->n_subs = 0;
	broker->cb.on_connect(broker->ud);
}

/* ---- the home, the relay, the kits ---- */

static struct fixture fx;

/* What give() sealed: a kit sends a reading again as its spool holds it, the same bytes. */
static struct sealed {
	struct stream *s;
	char kit[CERT_NAME_MAX];
	uint64_t seq;
	size_t len;
	uint8_t buf[READING_MAX];
} sealed[256];
static size_t n_sealed;

struct ctx {
	struct tmp *t;
	struct iotsec_config cfg;
	sd_event *loop;
	struct relayd d;
	struct stream *a, *b; /* pi1's doctor stream and another (a second patient's) */
	struct stream *c;     /* pi2's */
	struct cert_store *ca;
	struct envelope_ctx *kit[2]; /* pi1, pi2 opening their receipts */
};

static const struct envelope_rule kit_rules[] = {
    {RECEIPT_MSG, CERT_ROLE_RELAY, true, true},
    {NULL, 0, false, false},
};

static int group_setup(void **state)
{
	(void)state;
	return fixture_home(&fx) < 0 ? -1 : 0;
}

static int group_teardown(void **state)
{
	(void)state;
	fixture_remove(&fx);
	return 0;
}

static void config_for(struct ctx *c, const char *device, const char *extra)
{
	char *text = NULL, err[256];

	assert_true(asprintf(&text,
			     "device = { cert = \"%s\"; key = \"%s\"; ca = \"%s\"; crl = \"%s\"; "
			     "state_dir = \"%s\"; run_dir = \"%s\"; };\n"
			     "relay = { database = \"%s/relayd/relay.db\"; commit_ms = %d; "
			     "batch_max = %d; http_port = 0; broker = \"127.0.0.1\"; "
			     "broker_name = \"pi1\"; %s };\n",
			     fixture_path(&fx, device, "crt"), fixture_path(&fx, device, "key"),
			     fx.ca_crt, fx.crl, c->t->dir, c->t->dir, c->t->dir, COMMIT_MS,
			     BATCH_MAX, extra) > 0);
	if (config_load_string(text, "relayd-test.conf", &c->cfg, err, sizeof(err)) < 0)
		fail_msg("configuration refused: %s", err);
	free(text);
}

static int setup_with(void **state, const char *extra)
{
	struct ctx *c = calloc(1, sizeof(*c));
	uint8_t root[CRYPTO_KEY_LEN];
	const char *kits[2] = {"pi1", "pi2"};
	void *t = NULL;

	assert_non_null(c);
	assert_int_equal(tmp_setup(&t, "relayd-ingest"), 0);
	c->t = t;
	config_for(c, "relay1", extra);
	assert_int_equal(sd_event_new(&c->loop), 0);
	assert_int_equal(relayd_start(&c->d, &c->cfg, c->loop), 0);
	assert_non_null(broker);
	assert_false(broker->clean_session);
	assert_string_equal(broker->client_id, "relay1");
	memset(root, 0x11, sizeof(root));
	assert_int_equal(stream_from_root(root, 1, &c->a), 0);
	assert_int_equal(stream_advance(c->a, EPOCH), 0);
	memset(root, 0x22, sizeof(root));
	assert_int_equal(stream_from_root(root, 1, &c->b), 0);
	assert_int_equal(stream_advance(c->b, EPOCH), 0);
	memset(root, 0x33, sizeof(root));
	assert_int_equal(stream_from_root(root, 1, &c->c), 0);
	assert_int_equal(stream_advance(c->c, EPOCH), 0);
	n_sealed = 0;
	assert_int_equal(cert_store_load(fx.ca_crt, fx.crl, &c->ca), 0);
	for (size_t i = 0; i < 2; i++) {
		X509 *x = fixture_cert(&fx, kits[i]);
		EVP_PKEY *k = fixture_key(&fx, kits[i]);

		assert_int_equal(envelope_ctx_new(c->ca, x, k, kit_rules, 60, &c->kit[i]), 0);
		X509_free(x);
		EVP_PKEY_free(k);
	}
	*state = c;
	return 0;
}

static int setup(void **state)
{
	return setup_with(state, "");
}

static int setup_shared(void **state)
{
	return setup_with(state, "share = \"relays\";");
}

static int setup_cap(void **state)
{
	return setup_with(state, "cap = 2;");
}

static int teardown(void **state)
{
	struct ctx *c = *state;
	void *t = c->t;

	relayd_stop(&c->d);
	sd_event_unref(c->loop);
	for (size_t i = 0; i < 2; i++)
		envelope_ctx_free(c->kit[i]);
	cert_store_free(c->ca);
	stream_free(c->a);
	stream_free(c->b);
	stream_free(c->c);
	config_free(&c->cfg);
	free(c);
	return tmp_teardown(&t);
}

/* A doctor reading of device sealed under s (kind and flags as given). */
static size_t seal(struct stream *s, const char *device, enum reading_kind kind, uint8_t flags,
		   uint64_t seq, uint8_t out[READING_MAX])
{
	struct reading_header h = {.kind = (uint8_t)kind,
				   .flags = flags,
				   .epoch = EPOCH,
				   .seq = seq,
				   .time_ms = 1700000000000};
	const char *pt = flags & READING_F_EMERGENCY
			     ? "{\"sensor\":\"pulse\",\"value\":20,\"unit\":\"/min\","
			       "\"emergency\":true,\"threshold\":30}"
			     : "{\"sensor\":\"pulse\",\"value\":72,\"unit\":\"/min\"}";
	size_t len = 0;

	snprintf(h.device, sizeof(h.device), "%s", device);
	assert_int_equal(reading_seal(s, &h, pt, strlen(pt), out, READING_MAX, &len), 0);
	return len;
}

/* pi-kit's doctor reading seq under s on its doctor topic (the same bytes when sent again). */
static void give(struct ctx *c, struct stream *s, const char *kit, uint64_t seq)
{
	struct sealed *x = NULL;
	char topic[RELAYD_TOPIC_MAX];
	uint8_t *buf;
	size_t len;

	for (size_t i = 0; i < n_sealed && x == NULL; i++)
		if (sealed[i].s == s && sealed[i].seq == seq && strcmp(sealed[i].kit, kit) == 0)
			x = &sealed[i];
	if (x == NULL) {
		assert_true(n_sealed < sizeof(sealed) / sizeof(sealed[0]));
		x = &sealed[n_sealed++];
		x->s = s, x->seq = seq;
		snprintf(x->kit, sizeof(x->kit), "%s", kit);
		x->len = seal(s, kit, READING_DOCTOR, 0, seq, x->buf);
	}
	buf = x->buf, len = x->len;

	snprintf(topic, sizeof(topic), "iotsec/testhome/%s/doctor", kit);
	relayd_on_reading(&c->d, topic, buf, len);
}

static uint64_t stored_rows(struct ctx *c)
{
	struct store_stats st;

	assert_int_equal(store_stats(c->d.store, &st), 0);
	return st.readings;
}

/* The i-th publish, a receipt to kit (0 pi1, 1 pi2), opened as that kit opens it. */
static void receipt_at(struct ctx *c, size_t i, int kit, struct receipt *ret)
{
	const char *names[2] = {"pi1", "pi2"};
	struct envelope_msg m;
	char topic[RELAYD_TOPIC_MAX];

	assert_true(i < broker->n_sent);
	snprintf(topic, sizeof(topic), "iotsec/testhome/relay1/receipt/%s", names[kit]);
	assert_string_equal(broker->sent[i].topic, topic);
	assert_false(broker->sent[i].retain);
	assert_int_equal(
	    envelope_open(c->kit[kit], broker->sent[i].data, broker->sent[i].len, &m, NULL), 0);
	assert_string_equal(m.type, RECEIPT_MSG);
	assert_string_equal(m.sender.name, "relay1");
	assert_int_equal(m.sender.role, CERT_ROLE_RELAY);
	assert_int_equal(receipt_parse(m.body, ret), 0);
	envelope_msg_clear(&m);
}

static void assert_ranges(const struct receipt *rc, struct stream *s, const uint64_t *pairs,
			  size_t n)
{
	assert_memory_equal(rc->stream, stream_get_id(s), STREAM_ID_LEN);
	assert_int_equal(rc->n, n);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(rc->ranges[i].first, pairs[2 * i]);
		assert_int_equal(rc->ranges[i].last, pairs[2 * i + 1]);
	}
}

/* ---- tests ---- */

static void test_subscriptions(void **state)
{
	(void)state;
	broker_up();
	assert_int_equal(broker->n_subs, 2);
	assert_string_equal(broker->subs[0], "iotsec/testhome/+/doctor");
	assert_string_equal(broker->subs[1], "iotsec/testhome/+/emergency");
	/* Again at every connection (the broker keeps them in the session, but says so only
	 * then). */
	broker_up();
	assert_int_equal(broker->n_subs, 2);
}

static void test_subscriptions_shared(void **state)
{
	(void)state;
	broker_up();
	assert_int_equal(broker->n_subs, 2);
	assert_string_equal(broker->subs[0], "$share/relays/iotsec/testhome/+/doctor");
	assert_string_equal(broker->subs[1], "$share/relays/iotsec/testhome/+/emergency");
}

/* Stored at the commit, receipted after it, never before. */
static void test_stored_then_receipted(void **state)
{
	struct ctx *c = *state;
	struct receipt rc;
	const uint64_t r13[] = {1, 3};

	broker_up();
	for (uint64_t s = 1; s <= 3; s++)
		give(c, c->a, "pi1", s);
	assert_int_equal(c->d.received, 3);
	assert_int_equal(c->d.n_pending, 3);
	assert_int_equal(stored_rows(c), 0);
	assert_int_equal(broker->n_sent, 0);

	assert_int_equal(relayd_commit(&c->d), 0);
	assert_int_equal(stored_rows(c), 3);
	assert_int_equal(c->d.stored, 3);
	assert_int_equal(c->d.n_pending, 0);
	assert_int_equal(broker->n_sent, 1);
	assert_int_equal(c->d.receipts, 1);
	receipt_at(c, 0, 0, &rc);
	assert_ranges(&rc, c->a, r13, 1);
	assert_true(relayd_rate(&c->d) > 0);
	/* Nothing pending: a commit does nothing and says nothing. */
	assert_int_equal(relayd_commit(&c->d), 0);
	assert_int_equal(broker->n_sent, 1);
}

/* A duplicate (resent after a lost receipt, or twice in one batch) is stored once and receipted
 * again: the kit needs the receipt, not a second row. */
static void test_duplicates(void **state)
{
	struct ctx *c = *state;
	struct receipt rc;
	const uint64_t r12[] = {1, 2}, r23[] = {2, 3};

	broker_up();
	give(c, c->a, "pi1", 1);
	give(c, c->a, "pi1", 2);
	assert_int_equal(relayd_commit(&c->d), 0);
	receipt_at(c, 0, 0, &rc);
	assert_ranges(&rc, c->a, r12, 1);

	give(c, c->a, "pi1", 2);
	give(c, c->a, "pi1", 3);
	give(c, c->a, "pi1", 2);
	assert_int_equal(relayd_commit(&c->d), 0);
	assert_int_equal(stored_rows(c), 3);
	assert_int_equal(c->d.stored, 3);
	assert_int_equal(c->d.duplicates, 2);
	assert_int_equal(broker->n_sent, 2);
	receipt_at(c, 1, 0, &rc);
	assert_ranges(&rc, c->a, r23, 1);
}

/* A stream is the device's that stored its first reading: another device of the home, which
 * reads every stream id on the broker, cannot store readings under it (they would hold the
 * kit's seqs and push its readings past relay.cap). Refused, counted, said once, never
 * receipted; the kit's own stored and receipted around them. */
static void test_stream_squatter(void **state)
{
	struct ctx *c = *state;
	struct receipt rc;
	const uint64_t r1[] = {1, 1}, r23[] = {2, 3};

	broker_up();
	give(c, c->a, "pi1", 1); /* pi1 binds its stream */
	assert_int_equal(relayd_commit(&c->d), 0);
	assert_int_equal(broker->n_sent, 1);
	receipt_at(c, 0, 0, &rc);
	assert_ranges(&rc, c->a, r1, 1);

	give(c, c->a, "pi2", 2); /* pi2 takes seqs pi1 has not sent yet */
	give(c, c->a, "pi2", 3);
	give(c, c->a, "pi2", 1);
	assert_int_equal(relayd_commit(&c->d), 0);
	assert_int_equal(stored_rows(c), 1);
	assert_int_equal(broker->n_sent, 1); /* no receipt to pi2 */
	assert_int_equal(c->d.refused[RELAYD_REF_STREAM], 3);
	assert_int_equal(c->d.n_said, 1);

	give(c, c->a, "pi1", 2); /* the kit's real readings of those seqs: stored */
	give(c, c->a, "pi2", 4); /* in the same batch, the squatter's: not */
	give(c, c->a, "pi1", 3);
	assert_int_equal(relayd_commit(&c->d), 0);
	assert_int_equal(stored_rows(c), 3);
	assert_int_equal(broker->n_sent, 2);
	receipt_at(c, 1, 0, &rc);
	assert_ranges(&rc, c->a, r23, 1);
	assert_int_equal(c->d.refused[RELAYD_REF_STREAM], 4);
	assert_int_equal(c->d.n_said, 1);
	assert_int_equal(c->d.stored, 3);
	assert_int_equal(c->d.duplicates, 0);
}

/* A new stream in one batch: the first reading binds it, and a later one of another device in
 * the same batch is refused. */
static void test_stream_first_in_batch(void **state)
{
	struct ctx *c = *state;
	struct receipt rc;
	const uint64_t r12[] = {1, 2};

	broker_up();
	give(c, c->b, "pi1", 1);
	give(c, c->b, "pi2", 3);
	give(c, c->b, "pi1", 2);
	assert_int_equal(relayd_commit(&c->d), 0);
	assert_int_equal(stored_rows(c), 2);
	assert_int_equal(broker->n_sent, 1);
	receipt_at(c, 0, 0, &rc);
	assert_ranges(&rc, c->b, r12, 1);
	assert_int_equal(c->d.refused[RELAYD_REF_STREAM], 1);
}

/* The kit's own resend of a seq with other bytes (not its spool's copy) is not receipted. */
static void test_stream_taken(void **state)
{
	struct ctx *c = *state;
	uint8_t buf[READING_MAX];
	size_t len;

	broker_up();
	give(c, c->a, "pi1", 1);
	assert_int_equal(relayd_commit(&c->d), 0);
	assert_int_equal(broker->n_sent, 1);
	len = seal(c->a, "pi1", READING_DOCTOR, 0, 1, buf); /* a new nonce: other bytes */
	relayd_on_reading(&c->d, "iotsec/testhome/pi1/doctor", buf, len);
	assert_int_equal(relayd_commit(&c->d), 0);
	assert_int_equal(broker->n_sent, 1);
	assert_int_equal(c->d.refused[RELAYD_REF_TAKEN], 1);
	assert_int_equal(c->d.refused[RELAYD_REF_STREAM], 0);
}

/* A device owns RELAYD_DEVICE_STREAMS_MAX streams at most: junk under ever new stream ids
 * cannot fill the disk. Another device binds its own all the same. */
static void test_stream_limit(void **state)
{
	struct ctx *c = *state;
	struct stream *s[RELAYD_DEVICE_STREAMS_MAX + 1];
	uint8_t root[CRYPTO_KEY_LEN];

	broker_up();
	for (size_t i = 0; i <= RELAYD_DEVICE_STREAMS_MAX; i++) {
		memset(root, 0, sizeof(root));
		memcpy(root, &i, sizeof(i));
		root[31] = 0x5a;
		assert_int_equal(stream_from_root(root, 1, &s[i]), 0);
		assert_int_equal(stream_advance(s[i], EPOCH), 0);
	}
	for (size_t i = 0; i < RELAYD_DEVICE_STREAMS_MAX; i++)
		give(c, s[i], "pi2", 1);
	assert_int_equal(relayd_commit(&c->d), 0);
	assert_int_equal(stored_rows(c), RELAYD_DEVICE_STREAMS_MAX);
	assert_int_equal(c->d.refused[RELAYD_REF_STREAM], 0);
	give(c, s[RELAYD_DEVICE_STREAMS_MAX], "pi2", 1); /* one more: refused */
	give(c, s[0], "pi2", 2);			 /* its own bound ones go on */
	assert_int_equal(relayd_commit(&c->d), 0);
	assert_int_equal(stored_rows(c), RELAYD_DEVICE_STREAMS_MAX + 1);
	assert_int_equal(c->d.refused[RELAYD_REF_STREAM], 1);
	give(c, s[RELAYD_DEVICE_STREAMS_MAX], "pi1", 1); /* pi1's first stream */
	assert_int_equal(relayd_commit(&c->d), 0);
	assert_int_equal(stored_rows(c), RELAYD_DEVICE_STREAMS_MAX + 2);
	assert_int_equal(c->d.refused[RELAYD_REF_STREAM], 1);
	for (size_t i = 0; i <= RELAYD_DEVICE_STREAMS_MAX; i++)
		stream_free(s[i]);
}

/* One receipt per (kit, stream), its ranges exact around gaps, an emergency among them. */
static void test_ranges_kits_streams(void **state)
{
	struct ctx *c = *state;
	const uint64_t seqs[] = {8, 1, 2, 5, 7, 2};
	const uint64_t want_a[] = {1, 2, 5, 5, 7, 9}, want_b[] = {4, 4}, want_pi2[] = {1, 1};
	uint8_t buf[READING_MAX];
	struct receipt rc;
	bool seen[3] = {false};
	size_t len;

	broker_up();
	for (size_t i = 0; i < sizeof(seqs) / sizeof(seqs[0]); i++)
		give(c, c->a, "pi1", seqs[i]);
	len = seal(c->a, "pi1", READING_DOCTOR, READING_F_EMERGENCY, 9, buf);
	relayd_on_reading(&c->d, "iotsec/testhome/pi1/emergency", buf, len);
	give(c, c->b, "pi1", 4); /* a second stream of the same kit */
	give(c, c->c, "pi2", 1); /* another kit, its own stream */
	/* The eighth filled the batch (batch_max): committed and receipted then, not at the
	 * ninth; that one waits for its own commit. */
	assert_int_equal(c->d.n_pending, 1);
	assert_int_equal(stored_rows(c), 7);
	assert_int_equal(broker->n_sent, 2);
	assert_int_equal(relayd_commit(&c->d), 0);
	assert_int_equal(stored_rows(c), 8);
	assert_int_equal(c->d.duplicates, 1);
	assert_int_equal(broker->n_sent, 3);
	for (size_t i = 0; i < broker->n_sent; i++) {
		bool to_pi2 = strstr(broker->sent[i].topic, "/pi2") != NULL;

		receipt_at(c, i, to_pi2 ? 1 : 0, &rc);
		if (to_pi2) {
			assert_int_equal(i, 2);
			assert_ranges(&rc, c->c, want_pi2, 1);
			seen[2] = true;
		} else if (memcmp(rc.stream, stream_get_id(c->a), STREAM_ID_LEN) == 0) {
			assert_ranges(&rc, c->a, want_a, 3);
			seen[0] = true;
		} else {
			assert_ranges(&rc, c->b, want_b, 1);
			seen[1] = true;
		}
	}
	assert_true(seen[0] && seen[1] && seen[2]);
	for (uint64_t s = 1; s <= 10; s++) {
		receipt_at(c, 0, 0, &rc);
		if (!receipt_covers(&rc, stream_get_id(c->a), s))
			receipt_at(c, 1, 0, &rc);
		assert_int_equal(receipt_covers(&rc, stream_get_id(c->a), s),
				 s != 3 && s != 4 && s != 6 && s != 10);
	}
}

struct bad {
	const char *topic;
	enum {
		GOOD,
		TRUNC_BODY,
		TRUNC_10,
		EMPTY,
		OVERSIZE,
		GROUP,
		PAIR,
		OTHER_DEVICE,
		EMERG_FLAG,
		VERSION,
		HUGE_SEQ
	} payload;
	enum relayd_refusal why;
};

/* Every way a publish is refused: counted under its reason, nothing pending or stored. */
static void test_refusals(void **state)
{
	struct ctx *c = *state;
	static const struct bad cases[] = {
	    {"iotsec/otherhome/pi1/doctor", GOOD, RELAYD_REF_TOPIC},
	    {"iotsec/testhome/pi1/group", GOOD, RELAYD_REF_TOPIC},
	    {"iotsec/testhome/pi1", GOOD, RELAYD_REF_TOPIC},
	    {"iotsec/testhome//doctor", GOOD, RELAYD_REF_TOPIC},
	    {"iotsec/testhome/pi1/doctor/x", GOOD, RELAYD_REF_TOPIC},
	    {"iotsec/testhome/pi 1/doctor", GOOD, RELAYD_REF_TOPIC},
	    {"iotsec/testhom/pi1/doctor", GOOD, RELAYD_REF_TOPIC},
	    {"testhome/pi1/doctor", GOOD, RELAYD_REF_TOPIC},
	    {"", GOOD, RELAYD_REF_TOPIC},
	    {"iotsec/testhome/pi1/doctor", TRUNC_BODY, RELAYD_REF_MALFORMED},
	    {"iotsec/testhome/pi1/doctor", TRUNC_10, RELAYD_REF_MALFORMED},
	    {"iotsec/testhome/pi1/doctor", EMPTY, RELAYD_REF_MALFORMED},
	    {"iotsec/testhome/pi1/doctor", VERSION, RELAYD_REF_MALFORMED},
	    {"iotsec/testhome/pi1/doctor", HUGE_SEQ, RELAYD_REF_MALFORMED},
	    {"iotsec/testhome/pi1/doctor", OVERSIZE, RELAYD_REF_OVERSIZE},
	    {"iotsec/testhome/pi1/doctor", GROUP, RELAYD_REF_KIND},
	    {"iotsec/testhome/pi1/doctor", PAIR, RELAYD_REF_KIND},
	    {"iotsec/testhome/pi1/doctor", OTHER_DEVICE, RELAYD_REF_DEVICE},
	    {"iotsec/testhome/pi1/doctor", EMERG_FLAG, RELAYD_REF_EMERGENCY},
	    {"iotsec/testhome/pi1/emergency", GOOD, RELAYD_REF_EMERGENCY},
	};
	uint64_t want[RELAYD_REF_COUNT] = {0};
	uint8_t buf[READING_MAX + 64];
	size_t len = 0;

	broker_up();
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct bad *b = &cases[i];

		switch (b->payload) {
		case GOOD:
		case TRUNC_BODY:
		case TRUNC_10:
		case EMPTY:
		case OVERSIZE:
		case VERSION:
			len = seal(c->a, "pi1", READING_DOCTOR, 0, 10 + i, buf);
			break;
		case GROUP:
			len = seal(c->a, "pi1", READING_GROUP, 0, 10 + i, buf);
			break;
		case PAIR:
			len = seal(c->a, "pi1", READING_PAIR, 0, 10 + i, buf);
			break;
		case OTHER_DEVICE:
			len = seal(c->a, "pi2", READING_DOCTOR, 0, 10 + i, buf);
			break;
		case EMERG_FLAG:
			len = seal(c->a, "pi1", READING_DOCTOR, READING_F_EMERGENCY, 10 + i, buf);
			break;
		case HUGE_SEQ:
			len = seal(c->a, "pi1", READING_DOCTOR, 0, (uint64_t)INT64_MAX + 1, buf);
			break;
		}
		if (b->payload == TRUNC_BODY)
			len = READING_HEADER_FIXED + 3 + CRYPTO_TAG_LEN; /* no ciphertext */
		else if (b->payload == TRUNC_10)
			len = 10;
		else if (b->payload == EMPTY)
			len = 0;
		else if (b->payload == VERSION)
			buf[0] = READING_VERSION + 1;
		else if (b->payload == OVERSIZE) {
			memset(buf + len, 0, sizeof(buf) - len);
			len = READING_MAX + 1;
		}
		relayd_on_reading(&c->d, b->topic, buf, len);
		want[b->why]++;
		for (size_t k = 0; k < RELAYD_REF_COUNT; k++)
			if (c->d.refused[k] != want[k])
				fail_msg("case %zu (%s): refused[%zu] is %llu, not %llu", i,
					 b->topic, k, (unsigned long long)c->d.refused[k],
					 (unsigned long long)want[k]);
	}
	assert_int_equal(c->d.received, 0);
	assert_int_equal(c->d.n_pending, 0);
	assert_int_equal(relayd_commit(&c->d), 0);
	assert_int_equal(stored_rows(c), 0);
	assert_int_equal(broker->n_sent, 0);
	/* Said once per (kit, reason): the same refusal again adds a count, not a line. */
	{
		size_t said = c->d.n_said;

		len = seal(c->a, "pi2", READING_DOCTOR, 0, 1, buf);
		relayd_on_reading(&c->d, "iotsec/testhome/pi1/doctor", buf, len);
		relayd_on_reading(&c->d, "iotsec/testhome/pi1/doctor", buf, len);
		assert_int_equal(c->d.n_said, said);
		assert_int_equal(c->d.refused[RELAYD_REF_DEVICE], want[RELAYD_REF_DEVICE] + 2);
		/* The same reason from another kit is a new pair. */
		len = seal(c->a, "pi1", READING_DOCTOR, 0, 1, buf);
		relayd_on_reading(&c->d, "iotsec/testhome/pi2/doctor", buf, len);
		assert_int_equal(c->d.n_said, said + 1);
	}
}

/* Another connection holds the database's write lock: the commit fails, the batch stays, nothing
 * is receipted; once the lock goes the next commit stores and receipts it all. */
static void test_failed_commit(void **state)
{
	struct ctx *c = *state;
	char path[PATH_MAX];
	sqlite3 *db = NULL;
	struct receipt rc;
	const uint64_t r14[] = {1, 4};

	broker_up();
	snprintf(path, sizeof(path), "%s/relayd/relay.db", c->t->dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
	for (uint64_t s = 1; s <= 3; s++)
		give(c, c->a, "pi1", s);
	assert_true(relayd_commit(&c->d) < 0);
	assert_true(c->d.commit_failing);
	assert_int_equal(c->d.commit_failures, 1);
	assert_int_equal(c->d.n_pending, 3);
	assert_int_equal(broker->n_sent, 0);
	assert_int_equal(c->d.receipts, 0);
	give(c, c->a, "pi1", 4);
	assert_int_equal(c->d.n_pending, 4);

	assert_int_equal(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(relayd_commit(&c->d), 0);
	assert_false(c->d.commit_failing);
	assert_int_equal(c->d.n_pending, 0);
	assert_int_equal(stored_rows(c), 4);
	assert_int_equal(broker->n_sent, 1);
	receipt_at(c, 0, 0, &rc);
	assert_ranges(&rc, c->a, r14, 1);
}

/* While the store fails the pending array fills to its bound (4 batches); past it new readings
 * are dropped and counted, and batch_max no longer starts a commit at every reading. */
static void test_pending_bound(void **state)
{
	struct ctx *c = *state;
	char path[PATH_MAX];
	sqlite3 *db = NULL;
	struct receipt rc;

	broker_up();
	snprintf(path, sizeof(path), "%s/relayd/relay.db", c->t->dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
	for (uint64_t s = 1; s <= 40; s++)
		give(c, c->a, "pi1", s);
	/* The batch filled at 8: one commit tried and failed; none after it. */
	assert_int_equal(c->d.commit_failures, 1);
	assert_int_equal(c->d.n_pending, 4 * BATCH_MAX);
	assert_int_equal(c->d.dropped, 40 - 4 * BATCH_MAX);
	assert_int_equal(c->d.received, 40);
	assert_int_equal(broker->n_sent, 0);

	assert_int_equal(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(relayd_commit(&c->d), 0);
	assert_int_equal(stored_rows(c), 32);
	/* Four transactions of batch_max, four receipts, together 1..32. */
	assert_int_equal(broker->n_sent, 4);
	for (uint64_t s = 1; s <= 33; s++) {
		bool covered = false;

		for (size_t i = 0; i < broker->n_sent; i++) {
			receipt_at(c, i, 0, &rc);
			covered |= receipt_covers(&rc, stream_get_id(c->a), s);
		}
		assert_int_equal(covered, s <= 32);
	}
	assert_int_equal(c->d.dropped_said, c->d.dropped);
}

/* relay.commit_ms after the batch's first reading, on the loop; at batch_max at once. */
static void test_commit_timer(void **state)
{
	struct ctx *c = *state;
	int64_t t0;

	broker_up();
	t0 = mono_ms();
	give(c, c->a, "pi1", 1);
	loop_until(c->loop, c->d.stored == 1);
	assert_true(mono_ms() - t0 >= COMMIT_MS - 5);
	/* Not sd-event's default slack of 250 ms either (a bound loose enough for sanitizers). */
	assert_true(mono_ms() - t0 < COMMIT_MS + 150);
	assert_int_equal(broker->n_sent, 1);

	for (uint64_t s = 2; s < 2 + BATCH_MAX; s++)
		give(c, c->a, "pi1", s);
	assert_int_equal(c->d.stored, 1 + BATCH_MAX); /* no loop turned */
	assert_int_equal(c->d.n_pending, 0);
	assert_int_equal(broker->n_sent, 2);
}

/* Committed while the broker is away: stored, its receipt lost; the kit sends the reading again
 * and gets its receipt then, the store keeping one row. */
static void test_no_broker(void **state)
{
	struct ctx *c = *state;
	struct receipt rc;
	const uint64_t r11[] = {1, 1};

	give(c, c->a, "pi1", 1);
	assert_int_equal(relayd_commit(&c->d), 0);
	assert_int_equal(stored_rows(c), 1);
	assert_int_equal(c->d.receipts, 0);
	broker_up();
	give(c, c->a, "pi1", 1); /* sent again: stored once, receipted now */
	assert_int_equal(relayd_commit(&c->d), 0);
	assert_int_equal(stored_rows(c), 1);
	assert_int_equal(c->d.receipts, 1);
	receipt_at(c, 0, 0, &rc);
	assert_ranges(&rc, c->a, r11, 1);
}

/* Retention on the loop (relay.cap 2 here): the timer's step removes what is beyond the cap,
 * counted in status, and is armed again for the next period. */
static void test_retention(void **state)
{
	struct ctx *c = *state;
	uint64_t next = 0, now = 0;

	broker_up();
	for (uint64_t s = 1; s <= 5; s++)
		give(c, c->a, "pi1", s);
	give(c, c->b, "pi2", 1);
	assert_int_equal(relayd_commit(&c->d), 0);
	assert_int_equal(stored_rows(c), 6);
	/* Not a minute: the test brings the first run forward. */
	assert_int_equal(sd_event_source_set_time_relative(c->d.expire_timer, 1000), 0);
	loop_until(c->loop, c->d.expired_total == 3);
	assert_int_equal(stored_rows(c), 3);
	assert_int_equal(sd_event_source_get_time(c->d.expire_timer, &next), 0);
	assert_int_equal(sd_event_now(c->loop, CLOCK_MONOTONIC, &now), 0);
	assert_true(next > now + (uint64_t)(RELAYD_EXPIRE_MS - 1000) * 1000);
}

static void test_forward(void **state)
{
	struct ctx *c = *state;
	const char env[] = "{\"v\":2}";

	assert_int_equal(relayd_forward(&c->d, "grant", "pi1", env, strlen(env)), -ENOTCONN);
	broker_up();
	assert_int_equal(relayd_forward(&c->d, "grant", "pi1", env, strlen(env)), 0);
	assert_int_equal(relayd_forward(&c->d, "ack", "pi2", env, strlen(env)), 0);
	assert_int_equal(broker->n_sent, 2);
	assert_string_equal(broker->sent[0].topic, "iotsec/testhome/relay1/grant/pi1");
	assert_true(broker->sent[0].retain);
	assert_string_equal(broker->sent[0].data, env);
	assert_string_equal(broker->sent[1].topic, "iotsec/testhome/relay1/ack/pi2");
	assert_false(broker->sent[1].retain);
	/* Only grants and acks, to a kit by a valid name, with something in them. */
	assert_int_equal(relayd_forward(&c->d, "receipt", "pi1", env, strlen(env)), -EINVAL);
	assert_int_equal(relayd_forward(&c->d, "grant", "pi1/#", env, strlen(env)), -EINVAL);
	assert_int_equal(relayd_forward(&c->d, "grant", "", env, strlen(env)), -EINVAL);
	assert_int_equal(relayd_forward(&c->d, "grant", "pi1", env, 0), -EINVAL);
	assert_int_equal(relayd_forward(&c->d, "grant", "pi1", env, ENVELOPE_MAX + 1), -EINVAL);
	assert_int_equal(broker->n_sent, 2);
}

static json_t *verb(struct ctx *c, const char *name)
{
	json_t *ret = NULL;

	for (const struct ctl_verb *v = relayd_verbs; v->name; v++)
		if (strcmp(v->name, name) == 0) {
			assert_int_equal(v->fn(NULL, &ret, &c->d), 0);
			assert_non_null(ret);
			return ret;
		}
	fail_msg("no verb %s", name);
	return NULL;
}

static void test_verbs(void **state)
{
	struct ctx *c = *state;
	uint8_t buf[READING_MAX];
	json_t *s, *r;
	size_t len;

	broker_up();
	give(c, c->a, "pi1", 1);
	give(c, c->a, "pi1", 1);
	assert_int_equal(relayd_commit(&c->d), 0);
	len = seal(c->a, "pi1", READING_GROUP, 0, 2, buf);
	relayd_on_reading(&c->d, "iotsec/testhome/pi1/doctor", buf, len);

	s = verb(c, PROTO_STATUS);
	assert_string_equal(json_string_value(json_object_get(s, "daemon")), "relayd");
	assert_string_equal(json_string_value(json_object_get(s, "device")), "relay1");
	assert_string_equal(json_string_value(json_object_get(s, "broker")), "connected");
	assert_int_equal(json_integer_value(json_object_get(s, "received")), 2);
	assert_int_equal(json_integer_value(json_object_get(s, "stored")), 1);
	assert_int_equal(json_integer_value(json_object_get(s, "duplicates")), 1);
	assert_int_equal(json_integer_value(json_object_get(s, "receipts")), 1);
	assert_int_equal(json_integer_value(json_object_get(s, "refused")), 1);
	assert_int_equal(
	    json_integer_value(json_object_get(json_object_get(s, "refused_by"), "kind")), 1);
	assert_true(json_real_value(json_object_get(s, "rate")) > 0);
	json_decref(s);

	r = verb(c, "relay");
	assert_string_equal(json_string_value(json_object_get(r, "store")), "sqlite");
	assert_int_equal(json_integer_value(json_object_get(r, "readings")), 1);
	assert_int_equal(json_integer_value(json_object_get(r, "undelivered")), 1);
	assert_true(json_is_array(json_object_get(r, "queues")));
	assert_int_equal(json_array_size(json_object_get(r, "queues")), 0); /* no grant yet */
	assert_true(json_integer_value(json_object_get(r, "bytes")) > 0);
	json_decref(r);
}

/* A relay needs a relay's certificate: a node's is refused at start, saying so. */
static void test_wrong_role(void **state)
{
	struct ctx *c = *state;
	struct iotsec_config cfg;
	struct relayd d = {0};
	struct tmp *t = c->t;
	char *text = NULL, err[256];

	assert_true(asprintf(&text,
			     "device = { cert = \"%s\"; key = \"%s\"; ca = \"%s\"; crl = \"%s\"; "
			     "state_dir = \"%s\"; };\nrelay = { database = \"%s/other.db\"; "
			     "http_port = 0; };\n",
			     fixture_path(&fx, "pi2", "crt"), fixture_path(&fx, "pi2", "key"),
			     fx.ca_crt, fx.crl, t->dir, t->dir) > 0);
	assert_int_equal(config_load_string(text, "wrong-role.conf", &cfg, err, sizeof(err)), 0);
	free(text);
	assert_int_equal(relayd_start(&d, &cfg, c->loop), -IOTSEC_EROLE);
	relayd_stop(&d);
	config_free(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_subscriptions, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_subscriptions_shared, setup_shared, teardown),
	    cmocka_unit_test_setup_teardown(test_stored_then_receipted, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_duplicates, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stream_squatter, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stream_first_in_batch, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stream_taken, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stream_limit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ranges_kits_streams, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_failed_commit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pending_bound, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_commit_timer, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_no_broker, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_retention, setup_cap, teardown),
	    cmocka_unit_test_setup_teardown(test_forward, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_verbs, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_wrong_role, setup, teardown),
	};

	log_init("test_relayd_ingest", LOG_CRIT);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
