/* sensord's state, its control verbs, and the daemons it follows: certd (in the home or not),
 * keyd (the pool epoch and the group stream's start) and dictd (the group root). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "daemon.h"
#include "file.h"
#include "log.h"
#include "proto.h"
#include "sensord.h"

#define KEYD_RETRY_MS 1000

/* Once a neighbour told us the time, our wall clock plus the offset it gave: the clock floor
 * (clock.h) stays where it was raised, while this runs on. */
int64_t sensord_now_ms(const struct sensord *d)
{
	int64_t t = d->offset_set ? clock_wall_ms() + d->offset_ms : clock_now_us() / 1000;

	return t < 0 ? 0 : t;
}

uint32_t sensord_epoch_now(const struct sensord *d)
{
	return stream_epoch(&d->sched, sensord_now_ms(d) / 1000);
}

const char *sensord_sync_name(enum sensord_sync s)
{
	switch (s) {
	case SENSORD_SYNCED:
		return "synced";
	case SENSORD_RESYNCING:
		return "resyncing";
	case SENSORD_OWN_CLOCK:
		return "own-clock";
	}
	return "unknown";
}

bool sensord_may_publish(const struct sensord *d)
{
	return d->in_home && d->sync != SENSORD_RESYNCING;
}

void sensord_topic(const struct sensord *d, const char *device, const char *what, char *out,
		   size_t len)
{
	snprintf(out, len, "iotsec/%s/%s/%s", d->member->self.home, device, what);
}

void sensord_advance(struct sensord *d)
{
	uint32_t e = sensord_epoch_now(d);
	int r;

	if (e == 0 || d->sync == SENSORD_RESYNCING)
		return;
	if (d->group && e > stream_current(d->group) && (r = stream_advance(d->group, e)) < 0)
		log_warnx("group stream: cannot move to epoch %u: %s", e, iotsec_strerror(r));
	if (d->doctor && e > stream_current(d->doctor)) {
		if ((r = stream_advance(d->doctor, e)) < 0)
			log_warnx("doctor stream: cannot move to epoch %u: %s", e,
				  iotsec_strerror(r));
		else
			sensord_state_save(d); /* the older keys are gone from the disk too */
	}
}

void sensord_set_group(struct sensord *d, struct stream *s, uint32_t pool, uint32_t start)
{
	if (d->group != NULL && pool != d->pool) {
		memcpy(d->prev_group_id, stream_get_id(d->group), STREAM_ID_LEN);
		d->has_prev_group = true;
	}
	stream_free(d->group);
	d->group = s;
	d->pool = pool, d->group_start = start;
	d->no_group_said = false;
	sensord_advance(d);
}

/* ---- status and verbs ---- */

static json_t *sensors_json(const struct sensord *d)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < d->n_sensors; i++) {
		const struct sensord_sensor *s = &d->sensors[i];
		const char *name = s->last_name[0] ? s->last_name : s->spec.name;

		json_array_append_new(
		    a, json_pack("{s:s, s:s, s:s, s:f, s:s, s:I, s:s}", "name", name, "driver",
				 sensor_driver_name(s->spec.driver), "stream",
				 s->stream ? s->stream : "group", "last", s->last, "unit", s->unit,
				 "at", (json_int_t)s->at, "error", s->err_text));
	}
	return a;
}

json_t *sensord_status(struct sensord *d)
{
	const struct sensord_alarm *a = &d->alarm;
	json_t *by = sensord_refused_by(d);
	unsigned long refused = d->refused.total + d->member->refused.total;

	return json_pack(
	    "{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
	    "s:I, s:o, "
	    "s:{s:b, s:I, s:f, s:I}, s:o}",
	    "daemon", "sensord", "device", d->member->self.name, "broker",
	    d->mqtt && mqtt_connected(d->mqtt) ? "connected" : "connecting", "broker_error",
	    d->mqtt ? mqtt_why(d->mqtt) : "", "broker_name", d->cfg->sensord.broker_name, "sync",
	    sensord_sync_name(d->sync), "epoch", (json_int_t)sensord_epoch_now(d), "pool",
	    (json_int_t)d->pool, "group_start", (json_int_t)d->group_start, "doctor",
	    d->doctor ? d->doctor_name : "", "published", (json_int_t)d->published, "spooled",
	    (json_int_t)sensord_spooled(d), "spooled_doctor",
	    (json_int_t)(d->spool_doctor ? spool_pending(d->spool_doctor) : 0), "spool_dropped",
	    (json_int_t)sensord_spool_dropped(d), "awaiting_receipt",
	    (json_int_t)(d->n_awaiting + (d->alarm.sent_at != 0)), "receipts",
	    (json_int_t)d->receipts, "readings_opened", (json_int_t)d->opened, "refused",
	    (json_int_t)refused, "refused_by", by ? by : json_object(), "alarm", "set", a->set,
	    "seq", (json_int_t)a->seq, "value", a->value, "at", (json_int_t)a->at, "sensors",
	    sensors_json(d));
}

static int verb_status(json_t *req, json_t **ret, void *ud)
{
	(void)req;
	*ret = sensord_status(ud);
	return *ret ? 0 : -ENOMEM;
}

static int verb_readings(json_t *req, json_t **ret, void *ud)
{
	json_t *max = json_object_get(req, "max");
	size_t n = SENSORD_READINGS_MAX;

	if (max) {
		if (!json_is_integer(max) || json_integer_value(max) < 0) {
			*ret = json_pack("{s:s}", "error", "max is a count of readings");
			return -EINVAL;
		}
		if (json_integer_value(max) < SENSORD_READINGS_MAX)
			n = (size_t)json_integer_value(max);
	}
	return sensord_readings(ud, n, ret);
}

/* One verb a line: clang-format would pack these short rows into columns. */
/* clang-format off */
const struct ctl_verb sensord_verbs[] = {
    {PROTO_STATUS, 0, verb_status},
    {PROTO_SENSORD_READINGS, 0, verb_readings},
    {NULL, 0, NULL},
};
/* clang-format on */

/* ---- the daemons we follow ---- */

static void group_lookup(struct sensord *d);

static void on_group_root(int r, const uint8_t (*keys)[CRYPTO_KEY_LEN], void *ud)
{
	struct sensord *d = ud;
	struct stream *s = NULL;

	if (r == -ECANCELED)
		return;
	d->dictd_call = NULL;
	if (r < 0) {
		log_warnx("dictd gives no group root of pool %u (start %u): %s", d->keyd_pool,
			  d->keyd_group_start, iotsec_strerror(r));
		return;
	}
	if ((r = stream_from_root(keys[0], d->keyd_group_start, &s)) < 0) {
		log_warnx("group stream of pool %u: %s", d->keyd_pool, iotsec_strerror(r));
		return;
	}
	log_info("group stream of pool %u from epoch %u", d->keyd_pool, d->keyd_group_start);
	d->group_from_resync = false;
	sensord_set_group(d, s, d->keyd_pool, d->keyd_group_start);
}

/* keyd's (pool, group_start) differs from the group stream we hold: ask dictd for its root. */
static void group_lookup(struct sensord *d)
{
	uint32_t index = d->keyd_group_start;
	int r;

	if (d->dictd_call || d->keyd_group_start == 0 || !d->in_home ||
	    (d->group && !d->group_from_resync && d->pool == d->keyd_pool &&
	     d->group_start == d->keyd_group_start))
		return;
	/* A key a neighbour gave us is as good, for the pool it came with. */
	if (d->group && d->group_from_resync && d->pool == d->keyd_pool)
		return;
	if ((r = dictd_client_lookup(d->dictd, SENSORD_GROUP_RECORD, &index, 1, on_group_root, d,
				     &d->dictd_call)) < 0) {
		d->dictd_call = NULL;
		log_debug("dictd: %s (asking again)", iotsec_strerror(r));
	}
}

static void on_keyd(json_t *ev, void *ud)
{
	struct sensord *d = ud;
	const char *name = json_string_value(json_object_get(ev, "event"));
	json_t *e = json_object_get(ev, "epoch"), *gs = json_object_get(ev, "group_start");

	if (name == NULL || strcmp(name, "disconnected") == 0)
		return;
	if (!json_is_integer(e) || json_integer_value(e) < 0 || json_integer_value(e) > UINT32_MAX)
		return;
	if (gs && (!json_is_integer(gs) || json_integer_value(gs) < 0 ||
		   json_integer_value(gs) > UINT32_MAX))
		return;
	d->keyd_pool = (uint32_t)json_integer_value(e);
	d->keyd_group_start = gs ? (uint32_t)json_integer_value(gs) : 0;
	log_debug("keyd: pool %u, group stream from epoch %u", d->keyd_pool, d->keyd_group_start);
	group_lookup(d);
	sensord_pairs_new_pool(d);
}

static void on_certd(bool member, const char *why, void *ud)
{
	struct sensord *d = ud;
	bool entered = member && !d->in_home;

	log_info("%s: %s", member ? "in the home" : "out of the home", why);
	d->in_home = member;
	if (entered) {
		sensord_subscribe_grants(d);
		sensord_judge_held_ack(d);
	}
	if (member && d->sync == SENSORD_RESYNCING && d->rs.phase == RESYNC_IDLE)
		sensord_resync(d, d->sync_why);
	if (member) {
		group_lookup(d);
		sensord_drain(d);
	}
}

static int on_tick(sd_event_source *s, uint64_t usec, void *ud)
{
	struct sensord *d = ud;

	(void)s, (void)usec;
	sensord_doctor_check(d);
	sensord_advance(d);
	group_lookup(d);
	sensord_pairs_fetch(d);
	sensord_alarm_retry(d);
	if (sensord_may_publish(d))
		sensord_read_all(d);
	sensord_drain(d);
	return 0;
}

/* Sensors from sensord.sensors; opening one that fails is said and retried at each read. */
static int sensors_open(struct sensord *d)
{
	struct sensor_spec spec[SENSOR_MAX];
	const char *err = NULL;
	size_t n = 0;
	int r;

	if ((r = sensor_parse_list(d->cfg->sensord.sensors, spec, &n, &err)) < 0) {
		log_errx("sensord.sensors: %s", err ? err : iotsec_strerror(r));
		return r;
	}
	for (size_t i = 0; i < n; i++) {
		struct sensord_sensor *s = &d->sensors[i];

		s->spec = spec[i];
		s->stream = "group";
		if ((r = sensor_open(&spec[i], d->cfg->sensord.sysfs,
				     d->cfg->sensord.replay_loop != 0, &s->s)) < 0) {
			log_warnx("sensor %s:%s: %s", sensor_driver_name(spec[i].driver),
				  spec[i].arg, iotsec_strerror(r));
			s->error = r;
			snprintf(s->err_text, sizeof(s->err_text), "%s", iotsec_strerror(r));
		}
	}
	d->n_sensors = n;
	return 0;
}

int sensord_start(struct sensord *d, const struct iotsec_config *cfg, sd_event *loop)
{
	static const char *const keyd_events[] = {PROTO_EV_EPOCH, NULL};
	char path[PATH_MAX];
	int r;

	d->cfg = cfg, d->loop = loop;
	d->sched.start = cfg->stream.start;
	d->sched.interval = cfg->stream.interval_s;
	d->alarm.mid = -1;
	if ((r = daemon_dir(cfg->device.state_dir, "sensord", d->dir, sizeof(d->dir))) < 0 ||
	    (r = file_mkdirs(d->dir, 0700)) < 0) {
		log_errx("%s/sensord: %s", cfg->device.state_dir, iotsec_strerror(r));
		return r;
	}
	if ((r = sensord_sync_start(d)) < 0) /* loads the member, the LAN endpoint */
		return r;
	if ((r = sensord_state_load(d)) < 0)
		return r;
	if (sensord_sync_needed(d, &d->sync_why)) {
		/* Nothing is read or published until a neighbour (or our giving up) says when. */
		d->sync = SENSORD_RESYNCING;
		log_notice("resync needed: %s", d->sync_why);
	}
	if ((r = reading_guard_new((int64_t)cfg->sensord.fresh_s * 1000, &d->guard)) < 0 ||
	    (r = sensors_open(d)) < 0)
		return r;
	if (d->alarm.set) {
		log_warnx("the alarm raised at seq %llu (pulse %g) is still set: waiting for the "
			  "doctor's acknowledgement",
			  (unsigned long long)d->alarm.seq, d->alarm.value);
		sensord_alarm_output(d, true);
	}
	if ((r = sensord_publish_start(d)) < 0)
		return r;
	if ((r = daemon_socket_path(cfg->device.run_dir, "keyd", path, sizeof(path))) < 0 ||
	    (r = ctl_peer_new(loop, path, KEYD_RETRY_MS, keyd_events, on_keyd, d, &d->keyd)) < 0 ||
	    (r = dictd_client_new(loop, cfg->device.run_dir, &d->dictd)) < 0 ||
	    (r = certd_client_new(loop, cfg->device.run_dir, on_certd, d, &d->certd)) < 0 ||
	    (r = certd_client_signs_with(d->certd, cfg->device.cert, d->member->self.serial)) < 0 ||
	    (r = daemon_add_periodic(loop, (uint64_t)cfg->sensord.interval_ms * 1000, on_tick, d,
				     &d->tick)) < 0) {
		log_errx("cannot start: %s", iotsec_strerror(r));
		return r;
	}
	log_info("device %s: %zu sensors every %d ms, broker %s:%d (%s), stream epoch %u%s",
		 d->member->self.name, d->n_sensors, cfg->sensord.interval_ms, cfg->sensord.broker,
		 cfg->sensord.broker_port, cfg->sensord.broker_name, sensord_epoch_now(d),
		 d->doctor ? "; doctor granted" : "; no doctor granted");
	return 0;
}

void sensord_stop(struct sensord *d)
{
	if (d->dictd_call)
		ctl_call_cancel(d->dictd_call);
	sd_event_source_disable_unref(d->tick);
	sensord_publish_stop(d);
	sensord_pairs_free(d);
	sensord_sync_stop(d);
	ctl_peer_free(d->keyd);
	dictd_client_free(d->dictd);
	certd_client_free(d->certd);
	free(d->held_ack);
	d->held_ack = NULL;
	for (size_t i = 0; i < d->n_sensors; i++)
		sensor_close(d->sensors[i].s);
	reading_guard_free(d->guard);
	stream_free(d->group);
	stream_free(d->doctor);
	lan_member_free(d->member);
	d->group = d->doctor = NULL;
	d->member = NULL;
}
