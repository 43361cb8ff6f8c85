/* From the home broker to the store: every doctor reading and emergency record published in the
 * home is checked without a key (its header only), gathered in the pending batch and committed
 * with it, and only then receipted to its kit. A doctor's grant or acknowledgement goes the
 * other way, from http.c to the kit.
 *
 * The broker acknowledges each publish (PUBACK) as soon as we have it, before the commit: that
 * PUBACK is not what the kit trusts. Its spool keeps every doctor reading until our receipt says
 * the reading is committed, so a reading lost here (a crash, a full pending array while the
 * store fails) comes again after sensord.receipt_s, and the store keeps it once. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca.h"
#include "daemon.h"
#include "log.h"
#include "relayd.h"

/* Receipts in flight at once: one per (kit, stream) of a batch, so a batch from many kits needs
 * more than libiotsec's default of 100. */
#define INGEST_INFLIGHT 1024
/* While the store fails, readings wait in memory up to this many batches before new ones are
 * dropped (their kits still hold them), and the commit is tried again this often at most. */
#define INGEST_PENDING_BATCHES 4
#define INGEST_PENDING_MAX     65536
#define INGEST_RETRY_MS	       1000

static const char *const refusal_text[RELAYD_REF_COUNT] = {
    [RELAYD_REF_TOPIC] = "not a reading topic of this home",
    [RELAYD_REF_MALFORMED] = "not a sealed reading",
    [RELAYD_REF_OVERSIZE] = "larger than a sealed reading can be",
    [RELAYD_REF_KIND] = "not a doctor reading",
    [RELAYD_REF_DEVICE] = "sealed by another device than the topic's",
    [RELAYD_REF_EMERGENCY] = "its emergency flag and its topic disagree",
    [RELAYD_REF_TAKEN] = "its stream and seq hold another reading (not receipted)",
    [RELAYD_REF_STREAM] = "a reading under another device's stream (not receipted)",
};

/* How many readings wait in memory at most: a few batches, bounded. */
static size_t pending_cap(const struct relayd *d)
{
	size_t batch = (size_t)d->cfg->relay.batch_max;
	size_t cap = batch * INGEST_PENDING_BATCHES;

	if (cap > INGEST_PENDING_MAX)
		cap = INGEST_PENDING_MAX;
	return cap < batch ? batch : cap;
}

/* ---- refusals ---- */

/* Counted always; logged once per (kit, reason) among the last 64 pairs said, so a kit that
 * publishes junk at every reading writes one line. kit may be "" when the topic names none. */
static void refuse(struct relayd *d, const char *kit, enum relayd_refusal why, const char *topic)
{
	size_t n = d->n_said < 64 ? d->n_said : 64;
	char shown[80];
	size_t i;

	d->refused[why]++;
	for (i = 0; i < n; i++)
		if (d->said[i].why == why && strcmp(d->said[i].kit, kit) == 0)
			return;
	/* The oldest pair is forgotten once all 64 are in use: a burst cannot silence later ones.
	 */
	snprintf(d->said[d->n_said % 64].kit, sizeof(d->said[0].kit), "%s", kit);
	d->said[d->n_said % 64].why = why;
	d->n_said++;
	/* A topic is the publisher's text: printable ASCII only, and short, in the log. */
	for (i = 0; topic[i] && i < sizeof(shown) - 1; i++)
		shown[i] = topic[i] >= 0x20 && topic[i] < 0x7f ? topic[i] : '?';
	shown[i] = '\0';
	log_warnx("refused a publish from %s on %s%s: %s (said once; counted in status)",
		  kit[0] ? kit : "an unknown device", shown, topic[i] ? "..." : "",
		  refusal_text[why]);
}

/* iotsec/<our home>/<kit>/{doctor,emergency}: 0 with the kit's name and whether the topic is the
 * emergency one; -EINVAL otherwise, kit then holding the third level when it is a valid name
 * (whom to count the refusal against) or "". */
static int topic_parse(const struct relayd *d, const char *topic, char kit[CERT_NAME_MAX],
		       bool *ret_emergency)
{
	const char *p = topic, *slash;
	const char *home = d->self.home;
	size_t home_len = strlen(home), n;
	char name[CERT_NAME_MAX];

	kit[0] = '\0';
	if (strncmp(p, "iotsec/", 7) != 0)
		return -EINVAL;
	p += 7;
	if (strncmp(p, home, home_len) != 0 || p[home_len] != '/')
		return -EINVAL;
	p += home_len + 1;
	if ((slash = strchr(p, '/')) == NULL || (n = (size_t)(slash - p)) == 0 || n >= sizeof(name))
		return -EINVAL;
	memcpy(name, p, n);
	name[n] = '\0';
	if (!ca_name_valid(name))
		return -EINVAL;
	memcpy(kit, name, n + 1);
	p = slash + 1;
	if (strcmp(p, "doctor") == 0)
		*ret_emergency = false;
	else if (strcmp(p, "emergency") == 0)
		*ret_emergency = true;
	else
		return -EINVAL;
	return 0;
}

/* ---- the batch ---- */

static void rate_add(struct relayd *d, uint64_t n)
{
	uint64_t sec = clock_mono_ms() / 1000;
	size_t slot = (size_t)(sec % RELAYD_RATE_WINDOW_S);

	if (d->rate_at[slot] != sec)
		d->rate_at[slot] = sec, d->rate_n[slot] = 0;
	d->rate_n[slot] += n;
}

static int arm_commit(struct relayd *d, uint64_t ms)
{
	int r;

	if (d->commit_timer == NULL)
		return 0; /* no loop (the unit tests call relayd_commit() themselves) */
	if ((r = sd_event_source_set_time_relative(d->commit_timer, ms * 1000)) < 0)
		return r;
	return sd_event_source_set_enabled(d->commit_timer, SD_EVENT_ONESHOT);
}

static int on_commit_timer(sd_event_source *s, uint64_t usec, void *ud)
{
	(void)s, (void)usec;
	relayd_commit(ud);
	return 0;
}

void relayd_on_reading(struct relayd *d, const char *topic, const void *payload, size_t len)
{
	struct relayd_pending *p;
	struct reading_header h;
	char kit[CERT_NAME_MAX];
	bool emergency = false;
	size_t hlen;
	int r;

	if (topic_parse(d, topic, kit, &emergency) < 0) {
		refuse(d, kit, RELAYD_REF_TOPIC, topic);
		return;
	}
	if (len > READING_MAX) {
		refuse(d, kit, RELAYD_REF_OVERSIZE, topic);
		return;
	}
	if ((r = reading_header_parse(payload, len, &h, &hlen)) < 0) {
		refuse(d, kit, r == -EMSGSIZE ? RELAYD_REF_OVERSIZE : RELAYD_REF_MALFORMED, topic);
		return;
	}
	/* A seq no store column (a signed 64-bit integer) nor receipt (JSON) can hold: in the
	 * batch it would fail the whole commit, every time. sensord never makes one. */
	if (h.seq > (uint64_t)INT64_MAX) {
		refuse(d, kit, RELAYD_REF_MALFORMED, topic);
		return;
	}
	if (h.kind != READING_DOCTOR) {
		refuse(d, kit, RELAYD_REF_KIND, topic);
		return;
	}
	/* The broker lets a kit publish under its own name only: the topic is who sent it. */
	if (strcmp(h.device, kit) != 0) {
		refuse(d, kit, RELAYD_REF_DEVICE, topic);
		return;
	}
	if (((h.flags & READING_F_EMERGENCY) != 0) != emergency) {
		refuse(d, kit, RELAYD_REF_EMERGENCY, topic);
		return;
	}
	d->received++;
	if (d->n_pending >= pending_cap(d)) {
		if (d->dropped++ == d->dropped_said)
			log_warnx("%zu readings wait for a store that fails: new ones are dropped "
				  "(their kits keep them and send them again)",
				  d->n_pending);
		return;
	}
	p = &d->pending[d->n_pending];
	memset(&p->r, 0, sizeof(p->r));
	memcpy(p->r.stream, h.stream, STREAM_ID_LEN);
	/* The topic's kit: the broker's ACL makes it the publisher, whom the stream binds to. */
	if (store_device_id(d->self.home, kit, p->r.device) < 0) {
		refuse(d, kit, RELAYD_REF_TOPIC, topic);
		return;
	}
	p->r.seq = h.seq;
	p->r.emergency = emergency;
	p->r.received_ms = clock_wall_ms();
	memcpy(p->data, payload, len);
	p->r.data = p->data;
	p->r.len = len;
	memcpy(p->kit, kit, sizeof(p->kit));
	if (d->n_pending++ == 0 && !d->commit_failing)
		arm_commit(d, (uint64_t)d->cfg->relay.commit_ms);
	/* Exactly at a full batch: while the store fails the array grows past it, and the timer
	 * alone tries again, not every new reading. */
	if (d->n_pending == (size_t)d->cfg->relay.batch_max && !d->commit_failing)
		relayd_commit(d);
}

/* ---- receipts ---- */

static int by_kit_stream_seq(const void *a, const void *b)
{
	const struct relayd_pending *x = *(const struct relayd_pending *const *)a;
	const struct relayd_pending *y = *(const struct relayd_pending *const *)b;
	int c;

	if ((c = strcmp(x->kit, y->kit)) != 0)
		return c;
	if ((c = memcmp(x->r.stream, y->r.stream, STREAM_ID_LEN)) != 0)
		return c;
	return x->r.seq < y->r.seq ? -1 : x->r.seq > y->r.seq;
}

/* Seal one receipt for kit and publish it. A receipt lost here costs only a resend: the kit sends
 * the reading again after sensord.receipt_s, and the store keeps it once and we receipt it. */
static void receipt_send(struct relayd *d, const char *kit, const struct receipt *rc)
{
	char topic[RELAYD_TOPIC_MAX], id[ENVELOPE_ID_MAX + 1];
	json_t *body = NULL;
	char *env = NULL;
	size_t len;
	int r, mid;

	snprintf(topic, sizeof(topic), "iotsec/%s/%s/receipt/%s", d->self.home, d->self.name, kit);
	/* The certificate travels in every receipt: a kit has no other way to learn it. */
	if ((r = receipt_build(rc, &body)) < 0 || (r = envelope_new_id(id)) < 0 ||
	    (r = envelope_seal(d->env, RECEIPT_MSG, kit, id, body, true, &env, &len)) < 0 ||
	    (r = d->mqtt ? mqtt_publish(d->mqtt, topic, env, len, 1, false, &mid) : -ENOTCONN) < 0)
		log_debug("receipt to %s not sent: %s (the kit sends its readings again)", kit,
			  iotsec_strerror(r));
	else
		d->receipts++;
	json_decref(body);
	free(env);
}

/* Every seq of the (kit, stream) run sorted[0..n), in as many receipts as its ranges need. */
static void receipts_of(struct relayd *d, struct relayd_pending **run, size_t n, uint64_t *seqs)
{
	struct receipt rc;
	size_t k = 0, used = 0;
	int r;

	for (size_t i = 0; i < n; i++)
		seqs[k++] = run[i]->r.seq; /* 1..INT64_MAX: relayd_on_reading() saw to it */
	for (size_t at = 0; at < k; at += used) {
		memset(&rc, 0, sizeof(rc));
		memcpy(rc.stream, run[0]->r.stream, STREAM_ID_LEN);
		if ((r = receipt_from_seqs(&rc, seqs + at, k - at, &used)) < 0 && r != -E2BIG) {
			log_warnx("receipt to %s: %s", run[0]->kit, iotsec_strerror(r));
			return;
		}
		receipt_send(d, run[0]->kit, &rc);
	}
}

/* Receipts for batch[0..n) but those skip marks: one or more per (kit, stream), covering its
 * seqs new or not. */
static void receipts_send(struct relayd *d, struct relayd_pending *batch, size_t n,
			  const bool *skip)
{
	struct relayd_pending **sorted = calloc(n, sizeof(*sorted));
	uint64_t *seqs = calloc(n, sizeof(*seqs));
	size_t k = 0;

	if (sorted == NULL || seqs == NULL) {
		log_warnx("no memory for receipts: their kits send the readings again");
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		if (skip == NULL || !skip[i])
			sorted[k++] = &batch[i];
	n = k;
	qsort(sorted, n, sizeof(*sorted), by_kit_stream_seq);
	for (size_t i = 0, j; i < n; i = j) {
		for (j = i + 1;
		     j < n && strcmp(sorted[j]->kit, sorted[i]->kit) == 0 &&
		     memcmp(sorted[j]->r.stream, sorted[i]->r.stream, STREAM_ID_LEN) == 0;
		     j++)
			;
		receipts_of(d, sorted + i, j - i, seqs);
	}
out:
	free(sorted);
	free(seqs);
}

/* ---- the commit ---- */

/* One batch of at most relay.batch_max: stored in one transaction, then receipted. */
static void refuse_stored(struct relayd *d, const struct relayd_pending *p, enum relayd_refusal why)
{
	char topic[RELAYD_TOPIC_MAX];

	snprintf(topic, sizeof(topic), "iotsec/%s/%s/%s", d->self.home, p->kit,
		 p->r.emergency ? "emergency" : "doctor");
	refuse(d, p->kit, why, topic);
}

/* One batch of at most relay.batch_max: stored in one transaction, then receipted. */
static int commit_chunk(struct relayd *d, struct relayd_pending *batch, size_t n)
{
	struct store_reading *rs = calloc(n, sizeof(*rs));
	enum store_outcome *each = calloc(n, sizeof(*each));
	bool *skip = calloc(n, sizeof(*skip));
	size_t fresh = 0, refused = 0;
	int r;

	if (rs == NULL || each == NULL || skip == NULL) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		rs[i] = batch[i].r;
		rs[i].data = batch[i].data; /* the array may have moved since the reading came */
	}
	if ((r = store_insert_each(d->store, rs, n, &fresh, each)) < 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		/* Under another device's stream: never stored, never receipted. */
		if (each[i] == STORE_REFUSED) {
			skip[i] = true;
			refused++;
			refuse_stored(d, &batch[i], RELAYD_REF_STREAM);
			continue;
		}
		if (each[i] != STORE_DUPLICATE)
			continue;
		/* A duplicate is receipted only when the store holds its very bytes (the kit's
		 * resend is its spool's copy): another reading may hold its (stream, seq), and a
		 * receipt then would make the kit drop a reading never stored. A store that
		 * cannot say is not believed either: the kit sends the reading again. */
		if ((r = store_holds(d->store, &rs[i])) == 1)
			continue;
		skip[i] = true;
		if (r == 0)
			refuse_stored(d, &batch[i], RELAYD_REF_TAKEN);
	}
	r = 0;
	d->stored += fresh;
	d->duplicates += n - fresh - refused;
	rate_add(d, fresh);
	receipts_send(d, batch, n, skip);
out:
	free(rs);
	free(each);
	free(skip);
	return r;
}

int relayd_commit(struct relayd *d)
{
	size_t done = 0, batch = (size_t)d->cfg->relay.batch_max;
	int r = 0;

	if (d->n_pending == 0)
		return 0;
	while (done < d->n_pending) {
		size_t n = d->n_pending - done < batch ? d->n_pending - done : batch;

		if ((r = commit_chunk(d, d->pending + done, n)) < 0)
			break;
		done += n;
	}
	if (done > 0) {
		memmove(d->pending, d->pending + done, (d->n_pending - done) * sizeof(*d->pending));
		d->n_pending -= done;
	}
	if (r < 0) {
		d->commit_failures++;
		if (!d->commit_failing)
			log_warnx(
			    "commit of %zu readings failed: %s (kept, tried again; no receipt "
			    "until stored)",
			    d->n_pending, iotsec_strerror(r));
		d->commit_failing = true;
		arm_commit(d, d->cfg->relay.commit_ms > INGEST_RETRY_MS
				  ? (uint64_t)d->cfg->relay.commit_ms
				  : INGEST_RETRY_MS);
		return r;
	}
	if (d->commit_failing) {
		log_notice("the store takes readings again after %llu failed commits%s",
			   (unsigned long long)d->commit_failures,
			   d->dropped > d->dropped_said ? "; some readings were dropped meanwhile"
							: "");
		if (d->dropped > d->dropped_said)
			log_notice("%llu readings dropped while the store failed (%llu in all)",
				   (unsigned long long)(d->dropped - d->dropped_said),
				   (unsigned long long)d->dropped);
	}
	d->commit_failing = false;
	d->dropped_said = d->dropped;
	if (d->commit_timer) /* everything is in: the next reading starts the next batch's wait */
		sd_event_source_set_enabled(d->commit_timer, SD_EVENT_OFF);
	return 0;
}

/* ---- the broker ---- */

int relayd_forward(struct relayd *d, const char *what, const char *kit, const char *envelope,
		   size_t len)
{
	char topic[RELAYD_TOPIC_MAX];
	bool grant = strcmp(what, "grant") == 0;
	int mid;

	if ((!grant && strcmp(what, "ack") != 0) || !ca_name_valid(kit) || len == 0 ||
	    len > ENVELOPE_MAX)
		return -EINVAL;
	if (d->mqtt == NULL || !mqtt_connected(d->mqtt))
		return -ENOTCONN;
	snprintf(topic, sizeof(topic), "iotsec/%s/%s/%s/%s", d->self.home, d->self.name, what, kit);
	/* Retained: a kit that is away gets the grant in force when it subscribes again. */
	return mqtt_publish(d->mqtt, topic, envelope, len, 1, grant, &mid);
}

static void subscribe(struct relayd *d, const char *what)
{
	const char *share = d->cfg->relay.share;
	char topic[RELAYD_TOPIC_MAX];
	int r;

	if (share && share[0])
		snprintf(topic, sizeof(topic), "$share/%s/iotsec/%s/+/%s", share, d->self.home,
			 what);
	else
		snprintf(topic, sizeof(topic), "iotsec/%s/+/%s", d->self.home, what);
	if ((r = mqtt_subscribe(d->mqtt, topic, 1)) < 0)
		log_warnx("subscribe %s: %s", topic, iotsec_strerror(r));
}

static void on_connect(void *ud)
{
	struct relayd *d = ud;

	log_info("connected to the broker %s:%d", d->cfg->relay.broker, d->cfg->relay.broker_port);
	subscribe(d, "doctor");
	subscribe(d, "emergency");
}

static void on_disconnect(const char *reason, void *ud)
{
	struct relayd *d = ud;

	/* The persistent session keeps what is published meanwhile for us. */
	log_warnx("broker %s:%d: %s (connecting again)", d->cfg->relay.broker,
		  d->cfg->relay.broker_port, reason);
}

static void on_message(const char *topic, const void *payload, size_t len, int qos, bool retained,
		       void *ud)
{
	(void)qos, (void)retained;
	relayd_on_reading(ud, topic, payload, len);
}

/* Without a loop (d->loop NULL: the fuzz target) there is no broker and no commit timer: the
 * caller commits, and receipts are sealed but not sent. */
int relayd_ingest_start(struct relayd *d)
{
	const struct iotsec_config *cfg = d->cfg;
	char key[PATH_MAX];
	struct mqtt_opts o = {
	    .host = cfg->relay.broker,
	    .port = cfg->relay.broker_port,
	    .broker_name = cfg->relay.broker_name,
	    .ca = cfg->device.ca,
	    .cert = cfg->device.cert,
	    .key = key,
	    .client_id = d->self.name,
	    .clean_session = false,
	    .max_inflight = INGEST_INFLIGHT,
	};
	struct mqtt_callbacks cb = {
	    .on_connect = on_connect,
	    .on_disconnect = on_disconnect,
	    .on_message = on_message,
	};
	int r;

	if ((d->pending = calloc(pending_cap(d), sizeof(*d->pending))) == NULL)
		return -ENOMEM;
	/* Accuracy 1 ms: sd-event's default slack (250 ms) would dwarf relay.commit_ms. */
	if (d->loop && (r = sd_event_add_time_relative(d->loop, &d->commit_timer, CLOCK_MONOTONIC,
						       (uint64_t)cfg->relay.commit_ms * 1000, 1000,
						       on_commit_timer, d)) < 0) {
		log_errx("commit timer: %s", iotsec_strerror(r));
		return r;
	}
	if (d->commit_timer)
		sd_event_source_set_enabled(d->commit_timer, SD_EVENT_OFF);
	/* The key as systemd hands it to us (LoadCredential=), as lan_member_load() read it. */
	if ((r = daemon_secret_path("device.key", cfg->device.key, key, sizeof(key))) < 0) {
		log_errx("device.key: %s", iotsec_strerror(r));
		return r;
	}
	if (d->loop && (r = mqtt_new(d->loop, &o, &cb, d, &d->mqtt)) < 0) {
		log_errx("broker %s:%d: %s", o.host, o.port, iotsec_strerror(r));
		return r;
	}
	return 0;
}

void relayd_ingest_stop(struct relayd *d)
{
	mqtt_free(d->mqtt);
	d->commit_timer = sd_event_source_disable_unref(d->commit_timer);
	free(d->pending);
	d->mqtt = NULL, d->pending = NULL, d->n_pending = 0;
}
