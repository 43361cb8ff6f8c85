/* From the sensors to the broker: read, seal, spool, publish with QoS 1 in order, and take each
 * record off the spool when the broker acknowledges it. With sensord.relay set, doctor readings
 * go to a spool of their own, taken off it when a relay's receipt covers them (receipts.c): a
 * spool is acknowledged in order then, by one kind of acknowledgement, and its head (all it
 * keeps on disk) never holds back what the other kind took. The emergency record goes first,
 * then the two spools in turn. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "daemon.h"
#include "log.h"
#include "sensord.h"

bool sensord_listed(const char *list, const char *name)
{
	const char *p = list;
	size_t len = strlen(name);

	while (p && *p) {
		size_t n;

		p += strspn(p, " \t,");
		n = strcspn(p, " \t,");
		if (n == len && n > 0 && strncmp(p, name, n) == 0)
			return true;
		p += n;
	}
	return false;
}

/* Is name one of sensord.doctor_sensors? */
static bool doctor_sensor(const struct sensord *d, const char *name)
{
	return sensord_listed(d->cfg->sensord.doctor_sensors, name);
}

int sensord_seal(struct sensord *d, struct stream *s, enum reading_kind kind, uint8_t flags,
		 enum sensord_kind k, const struct reading_value *v, uint8_t *out, size_t *ret_len,
		 uint64_t *ret_seq)
{
	struct reading_header h = {.kind = (uint8_t)kind, .flags = flags};
	char pt[READING_PLAIN_MAX];
	size_t ptlen, len;
	int r;

	if (stream_current(s) == 0)
		return -ENOKEY; /* before the schedule: nothing is sealed at epoch 0 */
	if ((r = reading_value_build(v, pt, sizeof(pt), &ptlen)) < 0)
		return r;
	if ((h.seq = sensord_next_seq(d, k)) == 0)
		return -EIO;
	snprintf(h.device, sizeof(h.device), "%s", d->member->self.name);
	h.epoch = stream_current(s);
	h.time_ms = sensord_now_ms(d);
	if ((r = reading_seal(s, &h, pt, ptlen, out, READING_MAX, &len)) < 0)
		goto out;
	*ret_len = len;
	if (ret_seq)
		*ret_seq = h.seq;
out:
	explicit_bzero(pt, sizeof(pt));
	return r;
}

/* Say a sensor's failure once per change of error. */
static void sensor_error(struct sensord_sensor *s, int r, const char *text)
{
	char buf[sizeof(s->err_text)];

	snprintf(buf, sizeof(buf), "%s", text ? text : iotsec_strerror(r));
	if (r != s->error || strcmp(buf, s->err_text) != 0)
		log_warnx("sensor %s (%s:%s): %s", s->spec.name[0] ? s->spec.name : "-",
			  sensor_driver_name(s->spec.driver), s->spec.arg, buf);
	s->error = r;
	memcpy(s->err_text, buf, sizeof(buf));
}

/* Seal v under the pairwise reading key for peer and spool it with peer's name before it. */
static int spool_pair(struct sensord *d, const char *peer, const struct reading_value *v,
		      uint64_t *ret_id)
{
	struct stream *st = sensord_pair_stream(d, peer, true);
	uint8_t buf[2 + CERT_NAME_MAX + READING_MAX];
	size_t n = strlen(peer), len;
	int r;

	if (st == NULL)
		return -ENOKEY;
	buf[0] = SENSORD_SPOOL_TO, buf[1] = (uint8_t)n;
	memcpy(buf + 2, peer, n);
	/* The group's seq counter: a seq is then never reused by any of our streams. */
	if ((r = sensord_seal(d, st, READING_PAIR, 0, SENSORD_GROUP, v, buf + 2 + n, &len, NULL)) <
	    0)
		return r;
	return spool_append(d->spool, buf, 2 + n + len, clock_mono_ms(), ret_id);
}

size_t sensord_spooled(const struct sensord *d)
{
	return (d->spool ? spool_pending(d->spool) : 0) +
	       (d->spool_doctor ? spool_pending(d->spool_doctor) : 0);
}

uint64_t sensord_spool_dropped(const struct sensord *d)
{
	return (d->spool ? spool_dropped(d->spool) : 0) +
	       (d->spool_doctor ? spool_dropped(d->spool_doctor) : 0);
}

static void spool_one(struct sensord *d, struct sensord_sensor *s, const struct reading_value *v)
{
	bool doc = doctor_sensor(d, v->sensor);
	struct stream *st = doc ? d->doctor : d->group;
	/* Only what is spooled while sensord.relay is set waits for a receipt: a doctor reading
	 * spooled before it was set leaves the home's spool on its PUBACK, as it would have. */
	struct spool *sp = doc && sensord_relay_set(d) ? d->spool_doctor : d->spool;
	char peer[CERT_NAME_MAX];
	bool pair = !doc && sensor_pair_of(d->cfg->sensord.pairwise, v->sensor, peer) == 0;
	uint8_t buf[READING_MAX];
	uint64_t id, dropped;
	size_t len;
	int r;

	s->stream = doc ? (d->doctor ? "doctor" : "waiting") : pair ? "pair" : "group";
	if (doc && d->doctor == NULL)
		return; /* read by mistake (a replay row): kept from everyone but the doctor */
	if (pair) {
		if ((r = spool_pair(d, peer, v, &id)) < 0) {
			sensor_error(s, r,
				     r == -ENOKEY ? "no pairwise key with its device yet" : NULL);
			return;
		}
	} else if (st == NULL) {
		sensor_error(s, -ENOKEY, "no group key yet (keyd has no pool)");
		return;
	} else {
		r = sensord_seal(d, st, doc ? READING_DOCTOR : READING_GROUP, 0,
				 doc ? SENSORD_DOCTOR : SENSORD_GROUP, v, buf, &len, NULL);
		if (r == 0)
			r = spool_append(sp, buf, len, clock_mono_ms(), &id);
		if (r < 0) {
			sensor_error(s, r, NULL);
			return;
		}
	}
	if (s->error)
		log_info("sensor %s: reading again", v->sensor);
	s->error = 0, s->err_text[0] = '\0';
	/* Said once per run of drops, not once per reading. */
	dropped = sensord_spool_dropped(d);
	if (dropped > d->dropped_logged && !d->dropping)
		log_warnx(
		    "spool full (%d readings): the oldest undelivered are dropped to take new "
		    "ones",
		    d->cfg->sensord.spool_max);
	else if (dropped == d->dropped_logged && d->dropping)
		log_notice("spool no longer full: %llu readings dropped in all",
			   (unsigned long long)dropped);
	d->dropping = dropped > d->dropped_logged;
	d->dropped_logged = dropped;
}

static void read_one(struct sensord *d, struct sensord_sensor *s)
{
	char peer[CERT_NAME_MAX];
	struct reading_value v = {0};
	const char *err = NULL;
	int r;

	if (s->done)
		return;
	/* A sensor named for the doctor is not even read before a doctor is granted, nor one for
	 * the home before the home's key is here: a replay file would lose its rows. */
	if (s->spec.name[0] && doctor_sensor(d, s->spec.name)) {
		if (d->doctor == NULL) {
			s->stream = "waiting";
			return;
		}
	} else if (s->spec.name[0] &&
		   sensor_pair_of(d->cfg->sensord.pairwise, s->spec.name, peer) == 0) {
		s->stream = "pair";
		if (sensord_pair_stream(d, peer, true) == NULL) {
			sensor_error(s, -ENOKEY, "no pairwise key with its device yet");
			return;
		}
	} else if (d->group == NULL) {
		sensor_error(s, -ENOKEY, "no group key yet (keyd has no pool)");
		return;
	}
	if (s->s == NULL && (r = sensor_open(&s->spec, d->cfg->sensord.sysfs,
					     d->cfg->sensord.replay_loop != 0, &s->s)) < 0) {
		sensor_error(s, r, NULL);
		return;
	}
	if ((r = sensor_read(s->s, &v, &err)) == -ENODATA) {
		log_info("sensor %s: replay done", s->spec.arg);
		s->done = true;
		snprintf(s->err_text, sizeof(s->err_text), "done");
		return;
	}
	if (r < 0) {
		sensor_error(s, r, err);
		return;
	}
	if (s->spec.name[0])
		snprintf(v.sensor, sizeof(v.sensor), "%s", s->spec.name);
	snprintf(s->last_name, sizeof(s->last_name), "%s", v.sensor);
	snprintf(s->unit, sizeof(s->unit), "%s", v.unit);
	s->last = v.value;
	s->at = sensord_now_ms(d);
	if (strcmp(v.sensor, "pulse") == 0 && v.value < d->cfg->sensord.alarm_below)
		sensord_alarm_raise(d, &v);
	spool_one(d, s, &v);
}

void sensord_read_all(struct sensord *d)
{
	for (size_t i = 0; i < d->n_sensors; i++)
		read_one(d, &d->sensors[i]);
	spool_flush(d->spool);
	if (d->spool_doctor)
		spool_flush(d->spool_doctor);
}

/* ---- the broker ---- */

static void inflight_clear(struct sensord *d)
{
	d->n_inflight = 0;
	d->sent_id = d->sent_doctor_id = 0;
	d->alarm.mid = -1;
	/* Every record still in either spool goes again from the first, those waiting for a receipt
	 * too, and the emergency record at once. */
	d->alarm.sent_at = 0;
	d->n_awaiting = 0;
}

/* Publish record id of spool sp: 0 when it is in flight, 1 when it was dropped instead (no
 * sealed reading, or for a device under a pool both ends have wiped), or mqtt_publish()'s
 * error. */
static int send_record(struct sensord *d, struct spool *sp, uint64_t id, const uint8_t *data,
		       size_t len)
{
	char topic[SENSORD_TOPIC_MAX], to[CERT_NAME_MAX] = "";
	bool doctor = sp == d->spool_doctor;
	struct reading_header h;
	size_t hlen;
	int r, mid;

	/* A reading for one device: its name, then the sealed reading. */
	if (len >= 2 && data[0] == SENSORD_SPOOL_TO && data[1] > 0 && data[1] < CERT_NAME_MAX &&
	    len > 2u + data[1]) {
		memcpy(to, data + 2, data[1]);
		to[data[1]] = '\0';
		len -= 2u + data[1];
		data += 2u + data[1];
	}
	if (reading_header_parse(data, len, &h, &hlen) < 0 ||
	    (h.kind == READING_PAIR) != (to[0] != '\0')) {
		log_warnx("%s record %llu is no sealed reading: dropped",
			  doctor ? "doctor spool" : "spool", (unsigned long long)id);
		spool_ack(sp, id);
		return 1;
	}
	/* Sealed under a pool's key both ends have wiped since: nobody can open it. */
	if (to[0] && d->keyd_pool != 0 && h.epoch != d->keyd_pool) {
		if (d->pair_gone_said != h.epoch)
			log_notice("readings for %s sealed under pool %u, now gone, are dropped",
				   to, h.epoch);
		d->pair_gone_said = h.epoch;
		spool_ack(sp, id);
		return 1;
	}
	if (to[0])
		snprintf(topic, sizeof(topic), "iotsec/%s/%s/to/%s", d->member->self.home,
			 d->member->self.name, to);
	else
		sensord_topic(d, d->member->self.name,
			      h.flags & READING_F_EMERGENCY ? "emergency"
			      : h.kind == READING_DOCTOR    ? "doctor"
							    : "group",
			      topic, sizeof(topic));
	if ((r = mqtt_publish(d->mqtt, topic, data, len, 1, false, &mid)) < 0) {
		if (r != -ENOBUFS)
			log_debug("publish %s: %s", topic, iotsec_strerror(r));
		return r;
	}
	d->inflight[d->n_inflight] = (struct sensord_inflight){
	    .mid = mid,
	    .id = id,
	    .doctor = doctor,
	    /* With sensord.relay emptied since they were spooled, the broker takes them. */
	    .receipt = doctor && sensord_relay_set(d),
	    .seq = h.seq,
	};
	memcpy(d->inflight[d->n_inflight].stream, h.stream, STREAM_ID_LEN);
	d->n_inflight++;
	return 0;
}

/* Publish the next record of one spool: for the doctor's, first those without a receipt
 * sensord.receipt_s after their PUBACK (the list is in the order of the PUBACKs, so those due
 * lead it; *k counts those taken from it), then those not sent yet. 0 when one went (or was
 * dropped), 1 when the spool has nothing to send now, or mqtt_publish()'s error. */
static int send_next(struct sensord *d, bool doctor, uint64_t now, size_t *k)
{
	struct spool *sp = doctor ? d->spool_doctor : d->spool;
	uint64_t *sent = doctor ? &d->sent_doctor_id : &d->sent_id,
		 wait = (uint64_t)d->cfg->sensord.receipt_s * 1000, id;
	const uint8_t *data;
	size_t len;
	int r;

	if (sp == NULL)
		return 1;
	while (doctor && *k < d->n_awaiting && now - d->awaiting[*k].sent_at >= wait) {
		uint64_t want = d->awaiting[*k].id;

		/* Gone when a full spool dropped it. */
		if (spool_next(sp, want - 1, &id, &data, &len) < 0 || id != want) {
			(*k)++;
			continue;
		}
		if ((r = send_record(d, sp, id, data, len)) < 0)
			return r;
		(*k)++;
		return 0;
	}
	/* A spool that cannot be read now is tried again at the next drain. */
	if (spool_next(sp, *sent, &id, &data, &len) < 0)
		return 1;
	if ((r = send_record(d, sp, id, data, len)) < 0)
		return r;
	*sent = id;
	return 0;
}

void sensord_drain(struct sensord *d)
{
	size_t max = (size_t)d->cfg->sensord.max_inflight, k = 0;
	uint64_t now = clock_mono_ms(), wait = (uint64_t)d->cfg->sensord.receipt_s * 1000;
	char topic[SENSORD_TOPIC_MAX];
	int r, mid;

	if (d->mqtt == NULL || !mqtt_connected(d->mqtt) || !sensord_may_publish(d))
		return;
	/* Unless it waits for a relay's receipt, and not for sensord.receipt_s yet. */
	if (d->alarm.len && !d->alarm.delivered && d->alarm.mid < 0 &&
	    (d->alarm.sent_at == 0 || now - d->alarm.sent_at >= wait)) {
		sensord_topic(d, d->member->self.name, "emergency", topic, sizeof(topic));
		if ((r = mqtt_publish(d->mqtt, topic, d->alarm.record, d->alarm.len, 1, false,
				      &mid)) == 0) {
			if (d->alarm.sent_at != 0)
				log_info("emergency record (seq %llu): no relay's receipt in %d s, "
					 "sent again",
					 (unsigned long long)d->alarm.seq,
					 d->cfg->sensord.receipt_s);
			d->alarm.mid = mid, d->alarm.sent_at = 0;
		} else
			log_debug("emergency record not sent yet: %s", iotsec_strerror(r));
	}
	/* One record of each spool in turn, so that neither waits for the other to empty: the
	 * doctor readings of hours of a relay's outage do not hold back the home's, nor the
	 * other way round. The turn outlives the call, as most calls send one record (a PUBACK
	 * frees one place in flight). */
	while (d->n_inflight < max) {
		bool doctor = d->doctor_turn;

		if ((r = send_next(d, doctor, now, &k)) == 1)
			r = send_next(d, doctor = !doctor, now, &k);
		if (r != 0)
			break;
		d->doctor_turn = !doctor;
	}
	if (k > 0)
		log_debug("%zu doctor readings without a relay's receipt sent again", k);
	sensord_awaiting_shift(d, k);
}

static void on_connect(void *ud)
{
	struct sensord *d = ud;
	char topic[SENSORD_TOPIC_MAX];
	int r;

	log_info("connected to the broker %s:%d", d->cfg->sensord.broker,
		 d->cfg->sensord.broker_port);
	d->broker_warned = false;
	inflight_clear(d);
	sensord_topic(d, "+", "group", topic, sizeof(topic));
	if ((r = mqtt_subscribe(d->mqtt, topic, 1)) < 0)
		log_warnx("subscribe %s: %s", topic, iotsec_strerror(r));
	snprintf(topic, sizeof(topic), "iotsec/%s/+/to/%s", d->member->self.home,
		 d->member->self.name);
	if ((r = mqtt_subscribe(d->mqtt, topic, 1)) < 0)
		log_warnx("subscribe %s: %s", topic, iotsec_strerror(r));
	sensord_subscribe_grants(d);
	snprintf(topic, sizeof(topic), "iotsec/%s/+/ack/%s", d->member->self.home,
		 d->member->self.name);
	if ((r = mqtt_subscribe(d->mqtt, topic, 1)) < 0)
		log_warnx("subscribe %s: %s", topic, iotsec_strerror(r));
	if (sensord_relay_set(d)) {
		snprintf(topic, sizeof(topic), "iotsec/%s/+/receipt/%s", d->member->self.home,
			 d->member->self.name);
		if ((r = mqtt_subscribe(d->mqtt, topic, 1)) < 0)
			log_warnx("subscribe %s: %s", topic, iotsec_strerror(r));
	}
	sensord_drain(d);
}

static void on_disconnect(const char *reason, void *ud)
{
	struct sensord *d = ud;

	if (!d->broker_warned)
		log_warnx("broker %s:%d: %s (readings wait in the spool)", d->cfg->sensord.broker,
			  d->cfg->sensord.broker_port, reason);
	d->broker_warned = true;
	/* What was in flight is sent again from the spool. */
	inflight_clear(d);
}

static void on_publish(int mid, void *ud)
{
	struct sensord *d = ud;

	if (d->alarm.mid == mid) {
		d->alarm.mid = -1;
		if (d->alarm.delivered || sensord_alarm_wants_receipt(d)) {
			/* Stored by the relay already, or from now on waiting for its receipt. */
			if (!d->alarm.delivered)
				d->alarm.sent_at = clock_mono_ms();
			sensord_drain(d);
			return;
		}
		d->alarm.delivered = true;
		log_info("emergency record (seq %llu) delivered to the broker",
			 (unsigned long long)d->alarm.seq);
		sensord_state_save(d);
		sensord_drain(d);
		return;
	}
	for (size_t i = 0; i < d->n_inflight; i++) {
		if (d->inflight[i].mid != mid)
			continue;
		if (d->inflight[i].receipt)
			sensord_awaiting_add(d, &d->inflight[i]);
		else if (spool_ack(d->inflight[i].doctor ? d->spool_doctor : d->spool,
				   d->inflight[i].id) == 0)
			d->published++;
		d->inflight[i] = d->inflight[--d->n_inflight];
		break;
	}
	sensord_drain(d);
}

/* Grants are retained: the broker sends the one in force at every subscription. Asked again when
 * sensord enters the home, as one delivered while it was out of it (certd not heard from yet, at
 * boot) was not judged, and would otherwise wait for the next connection. */
void sensord_subscribe_grants(struct sensord *d)
{
	char topic[SENSORD_TOPIC_MAX];
	int r;

	if (d->mqtt == NULL || !mqtt_connected(d->mqtt))
		return;
	snprintf(topic, sizeof(topic), "iotsec/%s/+/grant/%s", d->member->self.home,
		 d->member->self.name);
	if ((r = mqtt_subscribe(d->mqtt, topic, 1)) < 0)
		log_warnx("subscribe %s: %s", topic, iotsec_strerror(r));
}

void sensord_judge_held_ack(struct sensord *d)
{
	uint8_t *ack = d->held_ack;

	if (ack == NULL)
		return;
	d->held_ack = NULL;
	sensord_on_ack(d, d->held_ack_from, ack, d->held_ack_len);
	free(ack);
}

/* iotsec/<home>/<device>/<what>[/<kit>] */
static void on_message(const char *topic, const void *payload, size_t len, int qos, bool retained,
		       void *ud)
{
	struct sensord *d = ud;
	char t[SENSORD_TOPIC_MAX], *parts[6] = {0}, *save = NULL, *p;
	size_t n = 0;

	(void)qos, (void)retained;
	if (strlen(topic) >= sizeof(t))
		return;
	snprintf(t, sizeof(t), "%s", topic);
	for (p = strtok_r(t, "/", &save); p && n < 6; p = strtok_r(NULL, "/", &save))
		parts[n++] = p;
	if (n < 4 || strcmp(parts[0], "iotsec") != 0 || strcmp(parts[1], d->member->self.home) != 0)
		return;
	if (!d->in_home) {
		/* Out of the home we judge nothing; a grant comes again (retained, and
		 * sensord_subscribe_grants()), an acknowledgement does not: keep the last. */
		if (n == 5 && strcmp(parts[3], "ack") == 0 &&
		    strcmp(parts[4], d->member->self.name) == 0 && len > 0 &&
		    len <= SENSORD_HELD_ACK_MAX && strlen(parts[2]) < sizeof(d->held_ack_from)) {
			uint8_t *copy = malloc(len);

			if (copy == NULL)
				return;
			memcpy(copy, payload, len);
			free(d->held_ack);
			d->held_ack = copy;
			d->held_ack_len = len;
			snprintf(d->held_ack_from, sizeof(d->held_ack_from), "%s", parts[2]);
			log_info("an emergency acknowledgement from %s waits until we are in the "
				 "home",
				 parts[2]);
		}
		return;
	}
	if (n == 4 && strcmp(parts[3], "group") == 0)
		sensord_on_group(d, parts[2], payload, len);
	else if (n == 5 && strcmp(parts[3], "to") == 0 &&
		 strcmp(parts[4], d->member->self.name) == 0)
		sensord_on_pair(d, parts[2], payload, len);
	else if (n == 5 && strcmp(parts[3], "grant") == 0 &&
		 strcmp(parts[4], d->member->self.name) == 0)
		sensord_on_grant(d, parts[2], payload, len);
	else if (n == 5 && strcmp(parts[3], "ack") == 0 &&
		 strcmp(parts[4], d->member->self.name) == 0)
		sensord_on_ack(d, parts[2], payload, len);
	else if (n == 5 && strcmp(parts[3], "receipt") == 0 &&
		 strcmp(parts[4], d->member->self.name) == 0)
		sensord_on_receipt(d, parts[2], payload, len);
}

int sensord_publish_start(struct sensord *d)
{
	const struct iotsec_config *cfg = d->cfg;
	char dir[PATH_MAX], doctor_dir[PATH_MAX], key[PATH_MAX];
	struct stat st;
	struct mqtt_opts o = {
	    .host = cfg->sensord.broker,
	    .port = cfg->sensord.broker_port,
	    .broker_name = cfg->sensord.broker_name,
	    .ca = cfg->device.ca,
	    .cert = cfg->device.cert,
	    .key = key,
	    .client_id = d->member->self.name,
	    .clean_session = false,
	    .max_inflight = cfg->sensord.max_inflight,
	};
	struct mqtt_callbacks cb = {
	    .on_connect = on_connect,
	    .on_disconnect = on_disconnect,
	    .on_message = on_message,
	    .on_publish = on_publish,
	};
	int r;

	if (snprintf(dir, sizeof(dir), "%s/spool", d->dir) >= (int)sizeof(dir) ||
	    snprintf(doctor_dir, sizeof(doctor_dir), "%s/spool-doctor", d->dir) >=
		(int)sizeof(doctor_dir))
		return -ENAMETOOLONG;
	/* The key as systemd hands it to us (LoadCredential=), as lan_member_load() reads it. */
	if ((r = daemon_secret_path("device.key", cfg->device.key, key, sizeof(key))) < 0) {
		log_errx("device.key: %s", iotsec_strerror(r));
		return r;
	}
	if ((r = spool_open(dir, (size_t)cfg->sensord.spool_max,
			    (unsigned)cfg->sensord.spool_sync_ms, &d->spool)) < 0) {
		log_errx("spool %s: %s", dir, iotsec_strerror(r));
		return r;
	}
	/* Opened while sensord.relay is set, and after it was emptied while readings spooled
	 * under it remain (the broker takes them then): a kit without a relay has none. */
	if ((sensord_relay_set(d) || stat(doctor_dir, &st) == 0) &&
	    (r = spool_open(doctor_dir, (size_t)cfg->sensord.spool_max,
			    (unsigned)cfg->sensord.spool_sync_ms, &d->spool_doctor)) < 0) {
		log_errx("spool %s: %s", doctor_dir, iotsec_strerror(r));
		return r;
	}
	d->dropped_logged = sensord_spool_dropped(d);
	if ((d->inflight = calloc((size_t)cfg->sensord.max_inflight, sizeof(*d->inflight))) == NULL)
		return -ENOMEM;
	if (spool_pending(d->spool))
		log_info("%zu readings wait in the spool", spool_pending(d->spool));
	if (d->spool_doctor && spool_pending(d->spool_doctor))
		log_info("%zu doctor readings wait in the doctor's spool",
			 spool_pending(d->spool_doctor));
	if ((r = mqtt_new(d->loop, &o, &cb, d, &d->mqtt)) < 0) {
		log_errx("broker %s:%d: %s", o.host, o.port, iotsec_strerror(r));
		return r;
	}
	return 0;
}

void sensord_publish_stop(struct sensord *d)
{
	mqtt_free(d->mqtt);
	spool_close(d->spool);
	spool_close(d->spool_doctor);
	free(d->inflight);
	sensord_awaiting_free(d);
	d->mqtt = NULL, d->spool = d->spool_doctor = NULL, d->inflight = NULL;
}
