/* iotsec-relayd's start and stop: who we are (a relay-role certificate of the home), the store,
 * the retention timer, and the control verbs. Ingest is ingest.c's, the doctors' HTTPS http.c's. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "daemon.h"
#include "lan.h"
#include "log.h"
#include "proto.h"
#include "relayd.h"

#define RELAYD_VERB_RELAY "relay"
/* The next retention step when the last one removed a whole batch: soon, but after whatever
 * else waits on the loop. */
#define RELAYD_EXPIRE_AGAIN_MS 10

static const char *const refusal_names[RELAYD_REF_COUNT] = {
    [RELAYD_REF_TOPIC] = "topic",	[RELAYD_REF_MALFORMED] = "malformed",
    [RELAYD_REF_OVERSIZE] = "oversize", [RELAYD_REF_KIND] = "kind",
    [RELAYD_REF_DEVICE] = "device",	[RELAYD_REF_EMERGENCY] = "emergency",
    [RELAYD_REF_TAKEN] = "taken",	[RELAYD_REF_STREAM] = "stream",
};

/* Slots of seconds still inside the window count; a slot last written longer ago is stale. */
double relayd_rate(const struct relayd *d)
{
	uint64_t now = clock_mono_ms() / 1000, n = 0;

	for (size_t i = 0; i < RELAYD_RATE_WINDOW_S; i++)
		if (d->rate_n[i] && d->rate_at[i] + RELAYD_RATE_WINDOW_S > now)
			n += d->rate_n[i];
	return (double)n / RELAYD_RATE_WINDOW_S;
}

/* ---- retention ---- */

static int arm_expire(struct relayd *d, uint64_t ms)
{
	int r;

	if ((r = sd_event_source_set_time_relative(d->expire_timer, ms * 1000)) < 0)
		return r;
	return sd_event_source_set_enabled(d->expire_timer, SD_EVENT_ONESHOT);
}

/* One bounded step of store_expire(); another comes at once (after the loop's other work) while
 * steps remove whole batches, else in RELAYD_EXPIRE_MS. */
static int on_expire(sd_event_source *s, uint64_t usec, void *ud)
{
	struct relayd *d = ud;
	const struct iotsec_config *cfg = d->cfg;
	size_t removed = 0;
	int r;

	(void)s, (void)usec;
	r = store_expire(d->store, clock_wall_ms(), (int64_t)cfg->relay.retention_s * 1000,
			 (uint64_t)cfg->relay.cap, RELAYD_EXPIRE_BATCH, &removed);
	if (r < 0)
		log_warnx("retention: %s (tried again in %d s)", iotsec_strerror(r),
			  RELAYD_EXPIRE_MS / 1000);
	else if (removed > 0) {
		d->expired_total += removed;
		log_info("retention: %zu readings expired (%llu since start)", removed,
			 (unsigned long long)d->expired_total);
	}
	arm_expire(d, removed >= RELAYD_EXPIRE_BATCH ? RELAYD_EXPIRE_AGAIN_MS : RELAYD_EXPIRE_MS);
	return 0;
}

/* ---- control verbs ---- */

static json_t *refused_json(const struct relayd *d, json_int_t *ret_total)
{
	json_t *o = json_object();
	json_int_t total = 0;

	for (size_t i = 0; o && i < RELAYD_REF_COUNT; i++) {
		json_object_set_new(o, refusal_names[i], json_integer((json_int_t)d->refused[i]));
		total += (json_int_t)d->refused[i];
	}
	*ret_total = total;
	return o;
}

static int verb_status(json_t *req, json_t **ret, void *ud)
{
	struct relayd *d = ud;
	json_int_t total = 0;
	json_t *by = refused_json(d, &total);

	(void)req;
	*ret = json_pack(
	    "{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:b, s:I, s:I, s:I, s:I, "
	    "s:o, s:f}",
	    "daemon", "relayd", "device", d->self.name, "home", d->self.home, "broker",
	    d->mqtt && mqtt_connected(d->mqtt) ? "connected" : "connecting", "broker_error",
	    d->mqtt ? mqtt_why(d->mqtt) : "", "broker_name", d->cfg->relay.broker_name, "received",
	    (json_int_t)d->received, "stored", (json_int_t)d->stored, "duplicates",
	    (json_int_t)d->duplicates, "receipts", (json_int_t)d->receipts, "commit_failures",
	    (json_int_t)d->commit_failures, "commit_failing", d->commit_failing, "pending",
	    (json_int_t)d->n_pending, "dropped", (json_int_t)d->dropped, "expired",
	    (json_int_t)d->expired_total, "refused", total, "refused_by", by ? by : json_object(),
	    "rate", relayd_rate(d));
	if (*ret == NULL)
		return -ENOMEM;
	return relayd_api_status(d, *ret); /* the doctors' side: logins, sessions */
}

static int queue_json(const struct store_queue *q, void *ud)
{
	json_t *a = ud;

	return json_array_append_new(a, json_pack("{s:s, s:I, s:I}", "doctor", q->doctor,
						  "undelivered", (json_int_t)q->undelivered,
						  "oldest_ms", (json_int_t)q->oldest_ms)) < 0
		   ? -ENOMEM
		   : 0;
}

static int verb_relay(json_t *req, json_t **ret, void *ud)
{
	struct relayd *d = ud;
	struct store_stats st;
	json_t *queues = json_array();
	int r;

	(void)req;
	if (queues == NULL)
		return -ENOMEM;
	if ((r = store_stats(d->store, &st)) < 0 ||
	    (r = store_queues(d->store, queue_json, queues)) < 0) {
		json_decref(queues);
		*ret = json_pack("{s:s}", "error", iotsec_strerror(r));
		return r;
	}
	*ret = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:I, s:f, s:I}", "store",
			 d->cfg->relay.store, "readings", (json_int_t)st.readings, "undelivered",
			 (json_int_t)st.undelivered, "emergencies_undelivered",
			 (json_int_t)st.emergencies_undelivered, "expired", (json_int_t)st.expired,
			 "oldest_undelivered_ms", (json_int_t)st.oldest_undelivered_ms, "bytes",
			 (json_int_t)st.bytes, "queues", queues, "expired_since_start",
			 (json_int_t)d->expired_total, "rate", relayd_rate(d), "pending",
			 (json_int_t)d->n_pending);
	return *ret ? 0 : -ENOMEM;
}

/* One verb a line: clang-format would pack these short rows into columns. */
/* clang-format off */
const struct ctl_verb relayd_verbs[] = {
    {PROTO_STATUS, 0, verb_status},
    {RELAYD_VERB_RELAY, 0, verb_relay},
    {NULL, 0, NULL},
};
/* clang-format on */

/* ---- start and stop ---- */

/* device.cert/key/ca/crl as every daemon loads them (lan_member_load()); the relay keeps the
 * parts in its own struct. Only a relay-role certificate will do: a kit trusts receipts only from
 * one, and a node's certificate here would be a configuration mistake worth saying plainly. */
static int identity_load(struct relayd *d)
{
	struct lan_member *m = NULL;
	const char *what = NULL;
	int r;

	if ((r = lan_member_load(d->cfg, relayd_rules, &m, &what)) < 0) {
		log_errx("%s: %s", what ? what : "device", iotsec_strerror(r));
		return r;
	}
	if (m->self.role != CERT_ROLE_RELAY) {
		log_errx("%s: the certificate of %s has role %s; the relay needs one of role %s "
			 "(iotsec-pki enrol --role relay)",
			 d->cfg->device.cert, m->self.name, cert_role_name(m->self.role),
			 cert_role_name(CERT_ROLE_RELAY));
		lan_member_free(m);
		return -IOTSEC_EROLE;
	}
	/* No certd runs here to wait for a new one: with an expired, revoked or not yet valid
	 * certificate the broker turns the relay away (said only as a lost connection) and the
	 * doctors' tool refuses its HTTPS. */
	r = cert_verify(m->store, m->cert, CERT_ROLE_RELAY, NULL);
	if (r == -EKEYEXPIRED || r == -IOTSEC_ENOTYETVALID || r == -EKEYREVOKED) {
		log_errx("%s: %s: neither the broker nor the doctors will take it; issue a new one "
			 "(iotsec-pki enrol --role relay) and install it there%s",
			 d->cfg->device.cert, iotsec_strerror(r),
			 r == -IOTSEC_ENOTYETVALID ? ", or set this machine's clock" : "");
		lan_member_free(m);
		return r;
	}
	d->ca = m->store, d->cert = m->cert, d->key = m->key, d->env = m->env, d->self = m->self;
	m->store = NULL, m->cert = NULL, m->key = NULL, m->env = NULL;
	lan_member_free(m);
	return 0;
}

static int store_start(struct relayd *d)
{
	const struct iotsec_config *cfg = d->cfg;
	bool pg = strcmp(cfg->relay.store, "postgresql") == 0;
	struct store_opts o = {
	    .kind = pg ? STORE_POSTGRESQL : STORE_SQLITE,
	    .path = cfg->relay.database,
	    .conninfo = cfg->relay.pg,
	};
	int r;

	if ((r = store_open(&o, &d->store)) == -ECONNREFUSED && pg)
		/* libpq's reason (the server down, no password, a role it does not know) is on
		 * the line before; "Connection refused" alone would hide it. */
		log_errx("store postgresql: cannot connect with relay.pg (why on the line before): "
			 "check that the server runs and takes this user, and a password in the "
			 "file PGPASSFILE names (iotsec-relayd(8), SYSTEMD)");
	else if (r < 0)
		/* The connection string may hold a password: name the store, not the string. */
		log_errx("store %s: %s", pg ? "postgresql (relay.pg)" : cfg->relay.database,
			 iotsec_strerror(r));
	return r;
}

int relayd_start(struct relayd *d, const struct iotsec_config *cfg, sd_event *loop)
{
	int r;

	d->cfg = cfg, d->loop = loop;
	if ((r = identity_load(d)) < 0 || (r = store_start(d)) < 0)
		return r;
	/* The first run soon after start: a relay that was down a while has readings past the
	 * limit now, and a doctor should not see them as kept for another minute. */
	if ((r = sd_event_add_time_relative(loop, &d->expire_timer, CLOCK_MONOTONIC,
					    (uint64_t)RELAYD_EXPIRE_FIRST_MS * 1000, 0, on_expire,
					    d)) < 0) {
		log_errx("retention timer: %s", iotsec_strerror(r));
		return r;
	}
	if ((r = relayd_ingest_start(d)) < 0)
		return r;
	if (cfg->relay.http_port != 0 && (r = relayd_http_start(d)) < 0)
		return r;
	log_info("relay %s of home %s: broker %s:%d (%s), store %s, commit %d ms or %d readings, "
		 "retention %d s and %d readings per stream%s",
		 d->self.name, d->self.home, cfg->relay.broker, cfg->relay.broker_port,
		 cfg->relay.broker_name, cfg->relay.store, cfg->relay.commit_ms,
		 cfg->relay.batch_max, cfg->relay.retention_s, cfg->relay.cap,
		 cfg->relay.http_port ? "" : "; no HTTPS (relay.http_port = 0)");
	return 0;
}

/* Safe on a half-started d: every part is NULL until made. What is pending goes uncommitted
 * unless the store takes it now; its kits send it again without a receipt. */
void relayd_stop(struct relayd *d)
{
	if (d->store && d->n_pending > 0 && relayd_commit(d) < 0)
		log_warnx("%zu readings not committed at exit: their kits send them again",
			  d->n_pending);
	relayd_http_stop(d);
	relayd_ingest_stop(d);
	d->expire_timer = sd_event_source_disable_unref(d->expire_timer);
	store_close(d->store);
	envelope_ctx_free(d->env);
	cert_store_free(d->ca);
	X509_free(d->cert);
	EVP_PKEY_free(d->key);
	d->store = NULL, d->env = NULL, d->ca = NULL, d->cert = NULL, d->key = NULL;
}
