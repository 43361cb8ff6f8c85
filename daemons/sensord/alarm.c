/* The emergency (SPEC 5.6) and what the doctor sends the kit: a pulse below the threshold sets
 * the alarm output and sends a doctor-sealed emergency record at once; only an EMERGENCY_ACK of
 * the doctor whose grant is installed clears it. A DOCTOR_GRANT (retained on the broker) gives
 * the kit the doctor stream. Both are envelopes signed by a doctor-role certificate of our home,
 * addressed to us; their freshness is the body's (a newer "issued", a higher "seq"), since a
 * retained grant or a relayed ack may be hours old. A relay of sensord.relay passes them on
 * under its own name (iotsec/<home>/<relay>/grant/<us>): the signer is then the doctor, not the
 * topic's name. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/x509.h>

#include "doctor.h"
#include "envelope.h"
#include "log.h"
#include "sensord.h"

void sensord_alarm_output(struct sensord *d, bool on)
{
	const char *path = d->cfg->sensord.alarm_output;
	const char *v = on ? "1\n" : "0\n";
	int fd;

	if (path == NULL || path[0] == '\0')
		return;
	/* A GPIO value file exists already; a plain file (tests) is made. No O_TRUNC on a GPIO
	 * attribute is needed, and on a plain file it keeps one value. */
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644)) < 0 ||
	    write(fd, v, 2) != 2)
		log_warn("alarm output %s: cannot write %c", path, v[0]);
	if (fd >= 0)
		close(fd);
}

/* Seal the emergency record of the alarm that is set: under the doctor stream, or the group
 * stream when no doctor is granted (said in the log); false when there is no key yet. */
static bool alarm_seal(struct sensord *d)
{
	struct sensord_alarm *a = &d->alarm;
	struct reading_value em = {.sensor = "pulse", .unit = "/min", .emergency = true};
	struct stream *s = d->doctor ? d->doctor : d->group;
	size_t len = 0;
	uint64_t seq = 0;
	int r;

	if (s == NULL)
		return false;
	em.value = a->value;
	em.threshold = d->cfg->sensord.alarm_below;
	if (d->doctor == NULL)
		log_warnx(
		    "no doctor granted: the emergency record is sealed under the group stream");
	r = sensord_seal(d, s, d->doctor ? READING_DOCTOR : READING_GROUP, READING_F_EMERGENCY,
			 d->doctor ? SENSORD_DOCTOR : SENSORD_GROUP, &em, a->record, &len, &seq);
	if (r < 0) {
		log_warnx("the emergency record cannot be sealed: %s", iotsec_strerror(r));
		return false;
	}
	a->len = len, a->seq = seq;
	a->delivered = false, a->mid = -1, a->sent_at = 0;
	log_warnx("EMERGENCY: pulse %g below %d: record seq %llu sent to %s", a->value,
		  d->cfg->sensord.alarm_below, (unsigned long long)seq,
		  d->doctor ? d->doctor_name : "the home");
	return true;
}

void sensord_alarm_raise(struct sensord *d, const struct reading_value *v)
{
	struct sensord_alarm *a = &d->alarm;

	if (a->set)
		return; /* one alarm at a time: the doctor acknowledges it */
	sensord_alarm_output(d, true);
	a->set = true, a->value = v->value, a->at = sensord_now_ms(d);
	a->delivered = false, a->mid = -1, a->len = 0, a->seq = 0, a->sent_at = 0;
	log_warnx("EMERGENCY: %s %g below %d: alarm set", v->sensor, v->value,
		  d->cfg->sensord.alarm_below);
	if (!alarm_seal(d))
		log_warnx("no stream key to seal the emergency record with yet: it is sent once "
			  "there is one");
	sensord_state_save(d);
	sensord_drain(d);
}

void sensord_alarm_retry(struct sensord *d)
{
	if (!d->alarm.set || d->alarm.len > 0 || !sensord_may_publish(d))
		return;
	if (alarm_seal(d)) {
		sensord_state_save(d);
		sensord_drain(d);
	}
}

/* Why a doctor's envelope from another than its signer is refused (open_doctor_msg()). */
#define NOT_LISTED                                                                                 \
	"passed on by a device that is not in sensord.relay (a relay's name missing or "           \
	"mistyped there?)"

/* Open an envelope of type want published by from (the topic's name): the doctor itself, or a
 * relay of sensord.relay passing on a doctor's (the rule's role check makes the signer a doctor
 * of our home either way); 0 and m filled, m->sender.name the doctor. */
static int open_doctor_msg(struct sensord *d, const char *from, const void *payload, size_t len,
			   const char *want, struct envelope_msg *m)
{
	char sender[CERT_NAME_MAX] = "";
	int r;

	/* A doctor revoked since: the CRL in force now, not the one we started with. */
	lan_member_refresh(d->member);
	if ((r = envelope_open(d->member->env, payload, len, m, sender)) < 0)
		return r;
	if (strcmp(m->type, want) != 0)
		r = -IOTSEC_ETYPE;
	else if (strcmp(m->sender.name, from) != 0 && !sensord_listed(d->cfg->sensord.relay, from))
		r = -IOTSEC_EIDENTITY; /* published under another's name */
	if (r < 0)
		envelope_msg_clear(m);
	return r;
}

void sensord_on_grant(struct sensord *d, const char *from, const void *payload, size_t len)
{
	struct envelope_msg m = {0};
	const char *doctor; /* the signer: from itself, or the doctor a relay passes on */
	struct doctor_grant g = {0};
	struct stream *s = NULL;
	uint32_t e;
	int r;

	if (len == 0)
		return; /* a retained grant cleared */
	if ((r = open_doctor_msg(d, from, payload, len, DOCTOR_MSG_GRANT, &m)) < 0) {
		/* A relay left out of sensord.relay is a setting to mend, not a forgery. */
		sensord_refuse_why(d, from, r, "a grant",
				   r == -IOTSEC_EIDENTITY ? NOT_LISTED : NULL);
		return;
	}
	doctor = m.sender.name;
	if ((r = doctor_grant_parse(m.body, d->member->key, &g)) < 0 ||
	    strcmp(g.kit, d->member->self.name) != 0) {
		sensord_refuse(d, from, r < 0 ? r : -IOTSEC_ENOTFORUS, "a grant");
		goto out;
	}
	if (d->doctor && g.issued_ms <= d->grant_issued) {
		if (g.issued_ms < d->grant_issued)
			log_debug("grant of %s issued %lld: older than the one installed", doctor,
				  (long long)g.issued_ms);
		goto out; /* the same one again (retained): installed already */
	}
	if ((r = stream_from_root(g.root, g.start, &s)) < 0) {
		log_warnx("grant of %s: %s", doctor, iotsec_strerror(r));
		goto out;
	}
	e = sensord_epoch_now(d);
	if (e >= g.start && (r = stream_advance(s, e)) < 0) {
		log_warnx("grant of %s: cannot reach epoch %u: %s", doctor, e, iotsec_strerror(r));
		stream_free(s);
		goto out;
	}
	if (e < g.start && (r = stream_advance(s, g.start)) < 0) {
		stream_free(s);
		goto out;
	}
	stream_free(d->doctor);
	d->doctor = s;
	snprintf(d->doctor_name, sizeof(d->doctor_name), "%s", doctor);
	snprintf(d->doctor_serial, sizeof(d->doctor_serial), "%s", m.sender.serial);
	d->doctor_e0 = g.start;
	d->grant_issued = g.issued_ms;
	log_notice("doctor %s granted (stream from epoch %u, issued %lld): doctor sensors are read",
		   doctor, g.start, (long long)g.issued_ms);
	sensord_state_save(d);
out:
	crypto_wipe(&g, sizeof(g));
	envelope_msg_clear(&m);
}

void sensord_on_ack(struct sensord *d, const char *from, const void *payload, size_t len)
{
	struct envelope_msg m = {0};
	const char *doctor; /* the signer: from itself, or the doctor a relay passes on */
	char kit[CERT_NAME_MAX];
	uint64_t seq;
	int r;

	if (len == 0)
		return;
	if ((r = open_doctor_msg(d, from, payload, len, DOCTOR_MSG_ACK, &m)) < 0) {
		sensord_refuse_why(d, from, r, "an emergency acknowledgement",
				   r == -IOTSEC_EIDENTITY ? NOT_LISTED : NULL);
		return;
	}
	doctor = m.sender.name;
	if ((r = doctor_ack_parse(m.body, kit, &seq)) < 0 ||
	    strcmp(kit, d->member->self.name) != 0) {
		sensord_refuse(d, from, r < 0 ? r : -IOTSEC_ENOTFORUS,
			       "an emergency acknowledgement");
		goto out;
	}
	if (d->doctor == NULL || strcmp(doctor, d->doctor_name) != 0) {
		sensord_refuse(d, from, -IOTSEC_EIDENTITY,
			       "an emergency acknowledgement (not the granted doctor)");
		goto out;
	}
	if (!d->alarm.set || seq < d->alarm.seq || seq <= d->acked_seq) {
		char what[128];

		/* "replayed" alone sends a doctor who typed the wrong --seq looking for an
		 * attacker: say which seq would do. */
		if (seq <= d->acked_seq)
			snprintf(what, sizeof(what),
				 "an emergency acknowledgement (seq %llu, acknowledged already)",
				 (unsigned long long)seq);
		else if (!d->alarm.set)
			snprintf(what, sizeof(what),
				 "an emergency acknowledgement (seq %llu; no alarm is set)",
				 (unsigned long long)seq);
		else
			snprintf(what, sizeof(what),
				 "an emergency acknowledgement (seq %llu, below the alarm's "
				 "emergency record, seq %llu)",
				 (unsigned long long)seq, (unsigned long long)d->alarm.seq);
		sensord_refuse(d, from, -IOTSEC_EREPLAY, what);
		goto out;
	}
	d->acked_seq = seq;
	d->alarm.set = false;
	d->alarm.len = 0, d->alarm.delivered = false, d->alarm.mid = -1, d->alarm.sent_at = 0;
	sensord_alarm_output(d, false);
	log_notice("doctor %s acknowledged the emergency (seq %llu): alarm cleared", doctor,
		   (unsigned long long)seq);
	sensord_state_save(d);
out:
	envelope_msg_clear(&m);
}

/* A grant is judged once, when it comes; the home may revoke its doctor afterwards. Kept, its
 * stream would go on sealing the patient's readings for a doctor the home has cut off (who holds
 * the root, so every epoch's key): the stream is dropped, and the doctor sensors wait for a new
 * grant. */
void sensord_doctor_check(struct sensord *d)
{
	X509_CRL *crl;
	X509_REVOKED *rev = NULL;
	ASN1_INTEGER *serial = NULL;
	BIGNUM *bn = NULL;

	if (d->doctor == NULL || d->doctor_serial[0] == '\0')
		return;
	lan_member_refresh(d->member);
	if ((crl = cert_store_crl(d->member->store)) == NULL ||
	    BN_hex2bn(&bn, d->doctor_serial) == 0 ||
	    (serial = BN_to_ASN1_INTEGER(bn, NULL)) == NULL ||
	    X509_CRL_get0_by_serial(crl, &rev, serial) != 1)
		goto out;
	log_warnx("doctor %s is revoked: its stream is dropped; the doctor sensors wait for a new "
		  "grant",
		  d->doctor_name);
	stream_free(d->doctor);
	d->doctor = NULL;
	d->doctor_serial[0] = '\0';
	sensord_state_save(d);
out:
	ASN1_INTEGER_free(serial);
	BN_free(bn);
}
