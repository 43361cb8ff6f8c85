/* The kit's side of the relay's receipts (SPEC 9, receipt.h). MQTT's PUBACK says the broker has
 * a reading, not that the relay committed it: with sensord.relay set, a doctor reading (spooled
 * in the doctor's spool, publish.c) the broker acknowledged stays there, listed here, until a
 * RELAY_RECEIPT of one of those relays covers its (stream, seq); sensord_drain() publishes it
 * again sensord.receipt_s after its PUBACK (the relay stores a seq once). The emergency record,
 * sealed under the doctor stream, waits the same way in d->alarm. Nothing here is saved: after a
 * restart or a lost connection every record still in the doctor's spool is sent again, and its
 * PUBACK lists it anew; the home's spool is not held back by it. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "log.h"
#include "receipt.h"
#include "sensord.h"

bool sensord_relay_set(const struct sensord *d)
{
	const char *p = d->cfg->sensord.relay;

	return p != NULL && p[strspn(p, " \t,")] != '\0';
}

bool sensord_alarm_wants_receipt(const struct sensord *d)
{
	struct reading_header h;
	size_t hlen;

	return sensord_relay_set(d) && d->alarm.len > 0 &&
	       reading_header_parse(d->alarm.record, d->alarm.len, &h, &hlen) == 0 &&
	       h.kind == READING_DOCTOR;
}

/* Forget the entries whose record the doctor's spool no longer holds. A full spool drops its oldest
 * waiting record, always below the first one still waiting; every other record listed here is
 * waiting (a receipt that takes one off takes its entry too). */
static void awaiting_prune(struct sensord *d)
{
	const uint8_t *data;
	uint64_t first = UINT64_MAX;
	size_t len, k = 0;

	if (spool_next(d->spool_doctor, 0, &first, &data, &len) < 0)
		first = UINT64_MAX;
	for (size_t i = 0; i < d->n_awaiting; i++)
		if (d->awaiting[i].id >= first)
			d->awaiting[k++] = d->awaiting[i];
	d->n_awaiting = k;
}

void sensord_awaiting_add(struct sensord *d, const struct sensord_inflight *f)
{
	struct sensord_awaiting *a;

	/* Never more entries than sensord.spool_max: pruned of the records the spool dropped
	 * whenever they are as many as the records waiting in it. */
	if (d->n_awaiting >= spool_pending(d->spool_doctor))
		awaiting_prune(d);
	if (d->n_awaiting == d->cap_awaiting) {
		size_t cap = d->cap_awaiting ? 2 * d->cap_awaiting : 64;

		if (cap > (size_t)d->cfg->sensord.spool_max)
			cap = (size_t)d->cfg->sensord.spool_max;
		if (cap <= d->n_awaiting || (a = realloc(d->awaiting, cap * sizeof(*a))) == NULL) {
			/* It stays in the doctor's spool, sent again with the next connection. */
			log_warnx("no memory to list a doctor reading waiting for a receipt");
			return;
		}
		d->awaiting = a, d->cap_awaiting = cap;
	}
	a = &d->awaiting[d->n_awaiting++];
	a->id = f->id, a->seq = f->seq;
	memcpy(a->stream, f->stream, STREAM_ID_LEN);
	a->sent_at = clock_mono_ms();
}

void sensord_awaiting_shift(struct sensord *d, size_t n)
{
	if (n > d->n_awaiting)
		n = d->n_awaiting;
	if (n == 0)
		return; /* d->awaiting may be NULL */
	memmove(d->awaiting, d->awaiting + n, (d->n_awaiting - n) * sizeof(*d->awaiting));
	d->n_awaiting -= n;
}

void sensord_awaiting_free(struct sensord *d)
{
	free(d->awaiting);
	d->awaiting = NULL;
	d->n_awaiting = d->cap_awaiting = 0;
}

/* Take what rc covers off the doctor's spool: listed records, records in flight again (their
 * PUBACK then finds nothing to do), and the emergency record. How many spool records went. */
static size_t receipt_apply(struct sensord *d, const struct receipt *rc, const char *relay)
{
	struct reading_header h;
	size_t k = 0, taken = 0, hlen;

	for (size_t i = 0; i < d->n_awaiting; i++) {
		const struct sensord_awaiting *a = &d->awaiting[i];

		if (!receipt_covers(rc, a->stream, a->seq))
			d->awaiting[k++] = *a;
		else if (spool_ack(d->spool_doctor, a->id) == 0)
			taken++;
	}
	d->n_awaiting = k;
	for (size_t i = 0; i < d->n_inflight; i++) {
		struct sensord_inflight *f = &d->inflight[i];

		if (f->receipt && receipt_covers(rc, f->stream, f->seq)) {
			f->receipt = false;
			if (spool_ack(d->spool_doctor, f->id) == 0)
				taken++;
		}
	}
	d->published += taken;
	if (sensord_alarm_wants_receipt(d) && !d->alarm.delivered &&
	    reading_header_parse(d->alarm.record, d->alarm.len, &h, &hlen) == 0 &&
	    receipt_covers(rc, h.stream, h.seq)) {
		d->alarm.delivered = true;
		d->alarm.sent_at = 0;
		log_info("emergency record (seq %llu) stored by relay %s",
			 (unsigned long long)d->alarm.seq, relay);
		sensord_state_save(d);
	}
	return taken;
}

/* Taken only from a relay of sensord.relay that signed it itself, with its relay certificate
 * of our home, for us (envelope_open() and sensord_rules check the role and the recipient). A
 * receipt of a stream or seqs we do not wait for takes nothing: receipts are any_time, and a
 * relay sends one for duplicates too. */
void sensord_on_receipt(struct sensord *d, const char *relay, const void *payload, size_t len)
{
	struct envelope_msg m = {0};
	struct receipt rc;
	size_t taken;
	int r;

	if (!sensord_relay_set(d) || !sensord_listed(d->cfg->sensord.relay, relay)) {
		sensord_refuse_why(d, relay, -IOTSEC_EUNASKED, "a receipt",
				   sensord_relay_set(d)
				       ? "not a relay of sensord.relay (its name missing or "
					 "mistyped there?)"
				       : "sensord.relay is empty: this kit trusts no relay");
		return;
	}
	lan_member_refresh(d->member); /* a relay revoked since: the CRL in force now */
	if ((r = envelope_open(d->member->env, payload, len, &m, NULL)) < 0)
		goto out;
	if (strcmp(m.type, RECEIPT_MSG) != 0)
		r = -IOTSEC_ETYPE;
	else if (strcmp(m.sender.name, relay) != 0)
		r = -IOTSEC_EIDENTITY; /* published under another's name */
	else
		r = receipt_parse(m.body, &rc);
	if (r < 0)
		goto out;
	d->receipts++;
	if ((taken = receipt_apply(d, &rc, relay)) > 0)
		log_debug("receipt of %s: %zu doctor readings stored", relay, taken);
out:
	if (r < 0)
		sensord_refuse(d, relay, r, "a receipt");
	envelope_msg_clear(&m);
}
