/* libFuzzer target: one publish into the relay's ingest (daemons/relayd/ingest.c), the topic
 * before the input's first NUL byte and the payload after it, then the commit into a real SQLite
 * store in a directory of its own, receipts sealed with a real relay certificate (home
 * "testhome", made once per process). No broker: receipts are sealed and not sent. The seeds
 * in corpus/relay_reading/ are real doctor readings of kit pi1 on their topics.
 *
 * Nothing may crash or leak, and:
 *   - every publish is either taken (received and pending, one more each) or refused (one
 *     more refusal, under one reason), never both and never neither;
 *   - a taken reading's header parses, is a doctor reading of the topic's kit, with its flag
 *     as the topic says and a seq the store can hold;
 *   - its device is the topic's kit's id (store_device_id()), whom its stream binds to;
 *   - every reading committed is stored, a duplicate, or refused as under another device's
 *     stream (or past the device's streams), one of the three;
 *   - the commit of what was taken never fails (what passes the checks cannot break a batch),
 *     and leaves nothing pending. */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "ca.h"
#include "clock.h"
#include "crypto.h"
#include "log.h"
#include "relayd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];
static struct iotsec_config cfg;
static struct relayd d;

static void cleanup(void)
{
	char cmd[96];

	relayd_ingest_stop(&d);
	store_close(d.store);
	envelope_ctx_free(d.env);
	cert_store_free(d.ca);
	X509_free(d.cert);
	EVP_PKEY_free(d.key);
	config_free(&cfg);
	if (dir[0] && snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir) < (int)sizeof(cmd) &&
	    system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

/* A home with a relay, the relay's identity and store, and ingest without a loop. */
static void init(void)
{
	char path[3][128], *text = NULL, err[256];
	int64_t now = clock_now();
	struct ca_enrol_req req = {.device = "relay1",
				   .role = CERT_ROLE_RELAY,
				   .not_before = now - 60,
				   .not_after = now + 86400,
				   .out_dir = path[2]};
	struct store_opts o = {.kind = STORE_SQLITE};

	log_init("fuzz_relay_reading", LOG_CRIT);
	snprintf(dir, sizeof(dir), "/tmp/iotsec-fuzz-relay-XXXXXX");
	if (mkdtemp(dir) == NULL)
		abort();
	atexit(cleanup);
	snprintf(path[0], sizeof(path[0]), "%s/ca", dir);
	snprintf(path[2], sizeof(path[2]), "%s/out", dir);
	if (ca_init(path[0], "testhome", 30) < 0 || ca_enrol(path[0], &req) < 0)
		abort();
	if (asprintf(
		&text,
		"device = { cert = \"%1$s/out/relay1.crt\"; key = \"%1$s/out/relay1.key\"; "
		"ca = \"%1$s/ca/ca.crt\"; crl = \"%1$s/ca/crl.pem\"; state_dir = \"%1$s\"; };\n"
		"relay = { database = \"%1$s/relay.db\"; batch_max = 16; http_port = 0; };\n",
		dir) < 0 ||
	    config_load_string(text, "fuzz.conf", &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "fuzz.conf: %s\n", err);
		abort();
	}
	free(text);
	d.cfg = &cfg;
	if (cert_load(cfg.device.cert, &d.cert) < 0 || cert_info_get(d.cert, &d.self) < 0 ||
	    crypto_load_private_key(cfg.device.key, &d.key) < 0 ||
	    cert_store_load(cfg.device.ca, cfg.device.crl, &d.ca) < 0 ||
	    envelope_ctx_new(d.ca, d.cert, d.key, relayd_rules, cfg.net.delta_t, &d.env) < 0)
		abort();
	o.path = cfg.relay.database;
	if (store_open(&o, &d.store) < 0 || relayd_ingest_start(&d) < 0)
		abort();
}

/* The refusals of relayd_on_reading()'s checks: not RELAYD_REF_TAKEN nor RELAYD_REF_STREAM,
 * which the commit counts (a seq stored with other bytes, a stream another device's), below. */
static uint64_t refused_total(void)
{
	uint64_t n = 0;

	for (size_t i = 0; i < RELAYD_REF_COUNT; i++)
		n += i == RELAYD_REF_TAKEN || i == RELAYD_REF_STREAM ? 0 : d.refused[i];
	return n;
}

/* Readings committed: stored, duplicates, or refused for their stream. */
static uint64_t committed(void)
{
	return d.stored + d.duplicates + d.refused[RELAYD_REF_STREAM];
}

/* The reading just taken is what the checks promise. */
static void check_taken(const char *topic)
{
	const struct relayd_pending *p = &d.pending[d.n_pending - 1];
	struct reading_header h;
	char want[RELAYD_TOPIC_MAX];
	uint8_t device[STORE_DEVICE_LEN];
	size_t hlen;

	if (reading_header_parse(p->data, p->r.len, &h, &hlen) < 0 || h.kind != READING_DOCTOR ||
	    strcmp(h.device, p->kit) != 0 || h.seq != p->r.seq || h.seq > INT64_MAX ||
	    memcmp(h.stream, p->r.stream, STREAM_ID_LEN) != 0 ||
	    ((h.flags & READING_F_EMERGENCY) != 0) != p->r.emergency || p->r.data != p->data)
		abort();
	if (store_device_id("testhome", p->kit, device) < 0 ||
	    memcmp(device, p->r.device, STORE_DEVICE_LEN) != 0)
		abort();
	snprintf(want, sizeof(want), "iotsec/testhome/%s/%s", p->kit,
		 p->r.emergency ? "emergency" : "doctor");
	if (strcmp(topic, want) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, 0, size);
	size_t tlen = nul ? (size_t)(nul - data) : size;
	const uint8_t *payload = nul ? nul + 1 : data + size;
	size_t plen = nul ? size - tlen - 1 : 0;
	uint64_t received, refused, stored;
	size_t pending;
	char *topic;

	if (d.cfg == NULL)
		init();
	if ((topic = malloc(tlen + 1)) == NULL)
		return 0;
	memcpy(topic, data, tlen);
	topic[tlen] = '\0';
	received = d.received, refused = refused_total(), pending = d.n_pending;
	stored = committed();

	relayd_on_reading(&d, topic, payload, plen);
	if (d.received == received + 1) {
		if (refused_total() != refused)
			abort();
		/* Taken: pending, or in a batch that batch_max committed at once. */
		if (d.n_pending == pending + 1)
			check_taken(topic);
		else if (d.n_pending != 0 || committed() != stored + pending + 1)
			abort();
	} else if (d.received != received || refused_total() != refused + 1 ||
		   d.n_pending != pending) {
		abort();
	}
	/* Only a duplicate can be another's bytes. */
	if (d.refused[RELAYD_REF_TAKEN] > d.duplicates)
		abort();
	/* Now and then a batch of several: every 4th input commits. */
	if (size == 0 || (data[0] & 3) == 0) {
		stored = committed(), pending = d.n_pending;
		if (relayd_commit(&d) != 0 || d.n_pending != 0 || d.commit_failing ||
		    committed() != stored + pending)
			abort();
	}
	free(topic);
	return 0;
}
