/* sensord.state: what sensord must not forget across a restart or a power cut.
 *
 *   {"seq":{"group":G,"doctor":D},            the first seq not yet reserved, per counter
 *    "doctor":null | {"name","serial","stream":b64 16,"e0","epoch","key":b64 32,
 *                     "prev":b64 32|null,"issued"}
 *                                             the doctor chain and its grant (serial: of the
 *                                             doctor's certificate, to see it revoked)
 *    "alarm":{"set","seq","value","at","record":b64|"","delivered"},
 *    "acked":N}                               the last acknowledged emergency seq
 *
 * It holds the doctor stream's keys: 0600, written atomically (file.h), refused when looser or
 * damaged (starting over would reuse seqs and forget an alarm). Seqs are saved a block ahead
 * (SENSORD_SEQ_RESERVE): a crash skips at most a block, never reuses a seq. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca.h"
#include "crypto.h"
#include "encoding.h"
#include "file.h"
#include "log.h"
#include "sensord.h"

static int state_path(const struct sensord *d, char *out, size_t len)
{
	int n = snprintf(out, len, "%s/%s", d->dir, SENSORD_STATE_FILE);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static json_t *b64_json(const void *data, size_t len)
{
	char *t = b64_encode(data, len);
	json_t *j = t ? json_string(t) : NULL;

	crypto_wipe_free(t);
	return j;
}

static json_t *doctor_json(const struct sensord *d)
{
	const uint8_t *prev;

	if (d->doctor == NULL)
		return json_null();
	prev = stream_key(d->doctor, true);
	return json_pack("{s:s, s:s, s:o, s:I, s:I, s:o, s:o, s:I}", "name", d->doctor_name,
			 "serial", d->doctor_serial, "stream",
			 b64_json(stream_get_id(d->doctor), STREAM_ID_LEN), "e0",
			 (json_int_t)d->doctor_e0, "epoch", (json_int_t)stream_current(d->doctor),
			 "key", b64_json(stream_key(d->doctor, false), CRYPTO_KEY_LEN), "prev",
			 prev ? b64_json(prev, CRYPTO_KEY_LEN) : json_null(), "issued",
			 (json_int_t)d->grant_issued);
}

int sensord_state_save(struct sensord *d)
{
	const struct sensord_alarm *a = &d->alarm;
	json_t *o = json_pack("{s:{s:I, s:I}, s:o, s:{s:b, s:I, s:f, s:I, s:o, s:b}, s:I}", "seq",
			      "group", (json_int_t)d->reserved[SENSORD_GROUP], "doctor",
			      (json_int_t)d->reserved[SENSORD_DOCTOR], "doctor", doctor_json(d),
			      "alarm", "set", a->set, "seq", (json_int_t)a->seq, "value", a->value,
			      "at", (json_int_t)a->at, "record",
			      a->len ? b64_json(a->record, a->len) : json_string(""), "delivered",
			      a->delivered, "acked", (json_int_t)d->acked_seq);
	char path[PATH_MAX], *text = NULL;
	int r = -ENOMEM;

	if (o && (text = json_dumps(o, JSON_COMPACT)) != NULL &&
	    (r = state_path(d, path, sizeof(path))) == 0)
		r = file_write_atomic(path, text, strlen(text), 0600);
	if (r < 0)
		log_warnx("cannot save %s in %s: %s", SENSORD_STATE_FILE, d->dir,
			  iotsec_strerror(r));
	crypto_wipe_free(text);
	json_decref(o);
	return r;
}

uint64_t sensord_next_seq(struct sensord *d, enum sensord_kind k)
{
	if (d->seq[k] >= d->reserved[k]) {
		uint64_t old = d->reserved[k];

		d->reserved[k] = d->seq[k] + SENSORD_SEQ_RESERVE;
		if (sensord_state_save(d) < 0) {
			/* Not on disk: a crash now would hand these seqs out again. */
			d->reserved[k] = old;
			return 0;
		}
	}
	return d->seq[k]++;
}

/* A JSON integer in [lo, hi]. */
static bool int_in(json_t *v, json_int_t lo, json_int_t hi, json_int_t *ret)
{
	if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
		return false;
	*ret = json_integer_value(v);
	return true;
}

static bool b64_field(json_t *v, void *out, size_t len)
{
	return json_is_string(v) && b64_decode_exact(json_string_value(v), out, len) == 0;
}

/* The doctor chain (o is not null). */
static int doctor_load(struct sensord *d, json_t *o, const char **why)
{
	uint8_t id[STREAM_ID_LEN], key[CRYPTO_KEY_LEN], prev[CRYPTO_KEY_LEN];
	const char *name = json_string_value(json_object_get(o, "name"));
	const char *serial = json_string_value(json_object_get(o, "serial"));
	json_t *jprev = json_object_get(o, "prev");
	json_int_t e0, epoch, issued;
	struct stream *s = NULL;
	int r = -EBADMSG;

	*why = "bad doctor chain";
	/* "serial" came later: a chain saved without it is kept, its doctor unknown to the CRL. */
	if (!json_is_object(o) || json_object_size(o) != (serial ? 8u : 7u) || name == NULL ||
	    (serial && (strlen(serial) >= sizeof(d->doctor_serial) ||
			strspn(serial, "0123456789ABCDEFabcdef") != strlen(serial))) ||
	    !ca_name_valid(name) || !int_in(json_object_get(o, "e0"), 1, UINT32_MAX, &e0) ||
	    !int_in(json_object_get(o, "epoch"), e0 - 1, UINT32_MAX, &epoch) ||
	    !int_in(json_object_get(o, "issued"), 0, INT64_MAX, &issued) ||
	    !b64_field(json_object_get(o, "stream"), id, sizeof(id)) ||
	    !b64_field(json_object_get(o, "key"), key, sizeof(key)) ||
	    (!json_is_null(jprev) && !b64_field(jprev, prev, sizeof(prev))))
		goto out;
	if ((r = stream_from_key(id, (uint32_t)epoch, key, json_is_null(jprev) ? NULL : prev, &s)) <
	    0)
		goto out;
	stream_free(d->doctor);
	d->doctor = s;
	snprintf(d->doctor_name, sizeof(d->doctor_name), "%s", name);
	snprintf(d->doctor_serial, sizeof(d->doctor_serial), "%s", serial ? serial : "");
	d->doctor_e0 = (uint32_t)e0;
	d->grant_issued = issued;
	r = 0;
out:
	crypto_wipe(key, sizeof(key));
	crypto_wipe(prev, sizeof(prev));
	return r;
}

static int alarm_load(struct sensord *d, json_t *o, const char **why)
{
	struct sensord_alarm a = {.mid = -1};
	const char *rec = json_string_value(json_object_get(o, "record"));
	json_t *set = json_object_get(o, "set"), *delivered = json_object_get(o, "delivered");
	json_t *value = json_object_get(o, "value");
	json_int_t seq, at;
	uint8_t *raw = NULL;
	size_t len = 0;
	int r = -EBADMSG;

	*why = "bad alarm";
	if (!json_is_object(o) || json_object_size(o) != 6 || !json_is_boolean(set) ||
	    !json_is_boolean(delivered) || !json_is_number(value) ||
	    !isfinite(json_number_value(value)) ||
	    !int_in(json_object_get(o, "seq"), 0, INT64_MAX, &seq) ||
	    !int_in(json_object_get(o, "at"), 0, INT64_MAX, &at) || rec == NULL)
		goto out;
	if (rec[0] && (b64_decode(rec, &raw, &len) < 0 || len == 0 || len > sizeof(a.record)))
		goto out;
	a.set = json_is_true(set);
	a.delivered = json_is_true(delivered);
	a.seq = (uint64_t)seq, a.at = at, a.value = json_number_value(value);
	if (len)
		memcpy(a.record, raw, len);
	a.len = len;
	d->alarm = a;
	r = 0;
out:
	free(raw);
	return r;
}

int sensord_state_load(struct sensord *d)
{
	char path[PATH_MAX], *text = NULL;
	json_t *o = NULL, *seq, *doc;
	const char *why = "damaged";
	json_int_t g, dr, acked;
	size_t len;
	int r;

	d->seq[0] = d->seq[1] = d->reserved[0] = d->reserved[1] = 1;
	d->alarm.mid = -1;
	if ((r = state_path(d, path, sizeof(path))) < 0)
		return r;
	if ((r = file_check_secret(path)) == -ENOENT)
		return 0; /* a first start */
	if (r < 0) {
		why = iotsec_strerror(r);
		goto out;
	}
	if ((r = file_read(path, SENSORD_STATE_MAX, &text, &len)) < 0) {
		why = iotsec_strerror(r);
		goto out;
	}
	r = -EBADMSG;
	if ((o = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL)) == NULL) {
		why = "damaged: not JSON";
		goto out;
	}
	seq = json_object_get(o, "seq");
	doc = json_object_get(o, "doctor");
	if (!json_is_object(o) || json_object_size(o) != 4 || !json_is_object(seq) ||
	    json_object_size(seq) != 2 || doc == NULL ||
	    !int_in(json_object_get(seq, "group"), 1, INT64_MAX / 2, &g) ||
	    !int_in(json_object_get(seq, "doctor"), 1, INT64_MAX / 2, &dr) ||
	    !int_in(json_object_get(o, "acked"), 0, INT64_MAX, &acked)) {
		why = "not a sensord state";
		goto out;
	}
	if (!json_is_null(doc) && (r = doctor_load(d, doc, &why)) < 0)
		goto out;
	if ((r = alarm_load(d, json_object_get(o, "alarm"), &why)) < 0)
		goto out;
	/* Start past every seq that may have been used before the crash. */
	d->seq[SENSORD_GROUP] = d->reserved[SENSORD_GROUP] = (uint64_t)g;
	d->seq[SENSORD_DOCTOR] = d->reserved[SENSORD_DOCTOR] = (uint64_t)dr;
	d->acked_seq = (uint64_t)acked;
	r = 0;
out:
	if (r < 0)
		log_errx("%s: %s", path, why);
	crypto_wipe_free(text);
	json_decref(o);
	return r;
}
