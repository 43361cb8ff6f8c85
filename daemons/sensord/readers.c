/* Reading the home's group readings: open each with the group stream, judge it (fresh, not seen
 * before), keep the last SENSORD_READINGS_MAX and push each to the `reading` subscribers.
 *
 * The broker lets a device publish only under its own name (its ACL), so the topic names the
 * sender; the sealed header must name the same device. Refusals are counted against that name
 * and logged once per (device, reason) within refusals.h's budget. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "proto.h"
#include "sensord.h"

/* refusals.h keys its pairs by an IPv4 address; a broker topic has none, the device name
 * stands in (FNV-1a). */
static uint32_t name_key(const char *name)
{
	uint32_t h = 2166136261u;

	for (; *name; name++)
		h = (h ^ (uint8_t)*name) * 16777619u;
	return h;
}

void sensord_refuse_why(struct sensord *d, const char *device, int r, const char *what,
			const char *why)
{
	unsigned long more;

	if (!refusals_note(&d->refused, name_key(device), device, r, clock_mono_ms()))
		return;
	if (why == NULL)
		why = iotsec_strerror(r);
	more = refusals_take_unlogged(&d->refused);
	if (more)
		log_warnx("refused %s from %s: %s (and %lu other refusals not logged)", what,
			  device, why, more);
	else
		log_warnx("refused %s from %s: %s", what, device, why);
}

void sensord_refuse(struct sensord *d, const char *device, int r, const char *what)
{
	sensord_refuse_why(d, device, r, what, NULL);
}

json_t *sensord_refused_by(const struct sensord *d)
{
	json_t *by = json_object();

	for (size_t i = 0; by && i < d->refused.n_devices; i++)
		json_object_set_new(by, d->refused.device[i].name,
				    json_integer((json_int_t)d->refused.device[i].count));
	for (size_t i = 0; by && i < d->member->refused.n_devices; i++) {
		const char *name = d->member->refused.device[i].name;
		json_int_t n = json_integer_value(json_object_get(by, name));

		json_object_set_new(
		    by, name, json_integer(n + (json_int_t)d->member->refused.device[i].count));
	}
	return by;
}

static json_t *reading_json(const struct sensord_reading *r)
{
	return json_pack("{s:s, s:s, s:f, s:s, s:I, s:I, s:I, s:b, s:s}", "device", r->device,
			 "sensor", r->v.sensor, "value", r->v.value, "unit", r->v.unit, "time",
			 (json_int_t)r->time_ms, "seq", (json_int_t)r->seq, "epoch",
			 (json_int_t)r->epoch, "emergency", r->v.emergency, "to", r->to);
}

int sensord_readings(struct sensord *d, size_t max, json_t **ret)
{
	json_t *a = json_array();
	size_t skip = d->ring_n > max ? d->ring_n - max : 0;

	for (size_t i = skip; a && i < d->ring_n; i++)
		json_array_append_new(
		    a, reading_json(&d->ring[(d->ring_start + i) % SENSORD_READINGS_MAX]));
	*ret = a ? json_pack("{s:o}", "readings", a) : NULL;
	return *ret ? 0 : -ENOMEM;
}

static void keep(struct sensord *d, const struct sensord_reading *r)
{
	json_t *ev;

	if (d->ring_n < SENSORD_READINGS_MAX) {
		d->ring[(d->ring_start + d->ring_n++) % SENSORD_READINGS_MAX] = *r;
	} else {
		d->ring[d->ring_start] = *r;
		d->ring_start = (d->ring_start + 1) % SENSORD_READINGS_MAX;
	}
	if (d->ctl && (ev = reading_json(r)) != NULL) {
		ctl_server_publish(d->ctl, PROTO_EV_READING, ev);
		json_decref(ev);
	}
}

/* A reading of the next epoch while our chain is still on the one before: move on when our
 * clock is close to that epoch's start (a few seconds either side: clocks drift), never
 * further than one epoch on a sender's word. */
static void maybe_advance(struct sensord *d, uint32_t epoch)
{
	int64_t start_ms;

	if (d->group == NULL || epoch != stream_current(d->group) + 1 || epoch == 0)
		return;
	start_ms = stream_epoch_start(&d->sched, epoch) * 1000;
	if (sensord_now_ms(d) + SENSORD_ADVANCE_SKEW_MS < start_ms)
		return;
	if (stream_advance(d->group, epoch) == 0)
		log_debug("group stream: epoch %u, as the readings say", epoch);
}

/* Open a reading of kind from device with s (what names the refusals), judge it and keep it. */
static void open_one(struct sensord *d, struct stream *s, enum reading_kind kind, const char *what,
		     const char *device, const void *payload, size_t len)
{
	struct sensord_reading rd = {0};
	struct reading_header h;
	uint8_t pt[READING_PLAIN_MAX];
	size_t hlen, ptlen = 0;
	int r;

	if ((r = reading_header_parse(payload, len, &h, &hlen)) < 0) {
		sensord_refuse(d, device, r, what);
		return;
	}
	if (strcmp(h.device, device) != 0 || h.kind != kind) {
		sensord_refuse(d, device, -IOTSEC_EIDENTITY, what);
		return;
	}
	/* The pool changed under one end before the other (a reading of the pool before ours, or
	 * of the one keyd has and we are fetching): not the sender's fault. */
	if (kind == READING_GROUP && memcmp(h.stream, stream_get_id(s), STREAM_ID_LEN) != 0 &&
	    ((d->has_prev_group && memcmp(h.stream, d->prev_group_id, STREAM_ID_LEN) == 0) ||
	     d->keyd_pool != d->pool)) {
		log_debug("a group reading from %s of another pool", device);
		return;
	}
	if (kind == READING_GROUP)
		maybe_advance(d, h.epoch);
	/* One end moved to a new pool before the other: not the sender's fault. */
	if (kind == READING_PAIR && h.epoch != stream_current(s)) {
		log_debug("a reading from %s of pool %u, ours is %u", device, h.epoch,
			  stream_current(s));
		return;
	}
	if ((r = reading_open(s, payload, len, &h, pt, &ptlen)) < 0) {
		sensord_refuse(d, device, r, what);
		return;
	}
	/* Fresh and not seen before, then what it says: README's order (What a reader accepts). */
	if ((r = reading_guard_check(d->guard, &h, sensord_now_ms(d))) < 0 ||
	    (r = reading_value_parse(pt, ptlen, &rd.v)) < 0) {
		sensord_refuse(d, device, r, what);
		goto out;
	}
	snprintf(rd.device, sizeof(rd.device), "%s", h.device);
	if (kind == READING_PAIR)
		snprintf(rd.to, sizeof(rd.to), "%s", d->member->self.name);
	rd.time_ms = h.time_ms, rd.seq = h.seq, rd.epoch = h.epoch;
	d->opened++;
	keep(d, &rd);
out:
	explicit_bzero(pt, sizeof(pt));
}

void sensord_on_group(struct sensord *d, const char *device, const void *payload, size_t len)
{
	if (strcmp(device, d->member->self.name) == 0)
		return; /* our own, back from the broker */
	if (d->group == NULL || d->sync == SENSORD_RESYNCING)
		return; /* nothing to open it with yet: not the sender's fault */
	open_one(d, d->group, READING_GROUP, "a group reading", device, payload, len);
}

/* The topic names the sender (the broker's ACL), and only a device keyd shares a key with us
 * can have a stream here: a name keyd does not know gets no key, and its readings are dropped. */
void sensord_on_pair(struct sensord *d, const char *device, const void *payload, size_t len)
{
	struct stream *s;

	if (strcmp(device, d->member->self.name) == 0 || d->sync == SENSORD_RESYNCING)
		return;
	if ((s = sensord_pair_stream(d, device, false)) == NULL) {
		log_debug("a reading from %s for us alone: no pairwise key yet", device);
		return;
	}
	open_one(d, s, READING_PAIR, "a reading for us alone", device, payload, len);
}
