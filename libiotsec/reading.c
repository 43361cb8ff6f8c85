#include "reading.h"

#include <endian.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ca.h"
#include "log.h"

/* Offsets after the device name (n bytes at offset 4). */
#define OFF_STREAM 0
#define OFF_EPOCH  (OFF_STREAM + STREAM_ID_LEN)
#define OFF_SEQ	   (OFF_EPOCH + 4)
#define OFF_TIME   (OFF_SEQ + 8)
#define OFF_NONCE  (OFF_TIME + 8)
#define NUMBER_MAX 32 /* "%.17g" of any double, with its NUL */
#define WORDS	   (READING_WINDOW / 64)
#define NONCE_POOL 32 /* nonces drawn from the random generator at once */

static bool sensor_valid(const char *s)
{
	size_t len = strnlen(s, READING_SENSOR_MAX + 1);

	if (len == 0 || len > READING_SENSOR_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
		      s[i] == '-'))
			return false;
	return true;
}

static bool unit_valid(const char *s)
{
	size_t len = strnlen(s, READING_UNIT_MAX + 1);

	if (len > READING_UNIT_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] < 0x20 || s[i] > 0x7e)
			return false;
	return true;
}

/* The shortest text that reads back as exactly v: a whole number as an integer ("72", not
 * "72.0"), anything else with as few digits as round-trip. */
static void format_number(double v, char out[NUMBER_MAX])
{
	if (v == 0) /* -0 too: "-0" would read back as the integer 0 anyway */
		v = 0;
	if (v == trunc(v) && fabs(v) < 1e15) {
		snprintf(out, NUMBER_MAX, "%.0f", v);
		return;
	}
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(out, NUMBER_MAX, "%.*g", prec, v);
		if (strtod(out, NULL) == v)
			return;
	}
}

int reading_value_build(const struct reading_value *v, char *out, size_t outcap, size_t *ret_len)
{
	char buf[READING_PLAIN_MAX + 1], unit[2 * READING_UNIT_MAX + 1], value[NUMBER_MAX],
	    threshold[NUMBER_MAX];
	size_t u = 0;
	int len;

	if (!sensor_valid(v->sensor) || !unit_valid(v->unit) || !isfinite(v->value) ||
	    (v->emergency && !isfinite(v->threshold)))
		return -EINVAL;
	/* Printable ASCII needs only these two escaped in JSON. */
	for (const char *c = v->unit; *c != '\0'; c++) {
		if (*c == '"' || *c == '\\')
			unit[u++] = '\\';
		unit[u++] = *c;
	}
	unit[u] = '\0';
	format_number(v->value, value);
	if (v->emergency) {
		format_number(v->threshold, threshold);
		len = snprintf(buf, sizeof(buf),
			       "{\"sensor\":\"%s\",\"value\":%s,\"unit\":\"%s\",\"emergency\":true,"
			       "\"threshold\":%s}",
			       v->sensor, value, unit, threshold);
	} else {
		len = snprintf(buf, sizeof(buf), "{\"sensor\":\"%s\",\"value\":%s,\"unit\":\"%s\"}",
			       v->sensor, value, unit);
	}
	if (len < 0 || (size_t)len >= sizeof(buf) || (size_t)len > outcap)
		return -EMSGSIZE;
	memcpy(out, buf, (size_t)len);
	if ((size_t)len < outcap)
		out[len] = '\0';
	*ret_len = (size_t)len;
	return 0;
}

static bool number_of(json_t *j, double *ret)
{
	double d;

	if (!json_is_number(j))
		return false;
	d = json_number_value(j);
	if (!isfinite(d))
		return false;
	*ret = d == 0 ? 0 : d; /* -0 and 0 are one reading */
	return true;
}

int reading_value_parse(const void *in, size_t len, struct reading_value *ret)
{
	const char *text = in;
	struct reading_value v = {0};
	json_t *o = NULL, *j;
	const char *s;
	size_t fields = 3;
	int r = -EBADMSG;

	/* jansson allows whitespace around the object; a compact reading has none. */
	if (len < 2 || len > READING_PLAIN_MAX || text[0] != '{' || text[len - 1] != '}')
		goto out;
	if ((o = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL)) == NULL || !json_is_object(o))
		goto out;
	if (!json_is_string(j = json_object_get(o, "sensor")) ||
	    json_string_length(j) > READING_SENSOR_MAX ||
	    strlen(s = json_string_value(j)) != json_string_length(j))
		goto out;
	memcpy(v.sensor, s, json_string_length(j) + 1);
	if (!json_is_string(j = json_object_get(o, "unit")) ||
	    json_string_length(j) > READING_UNIT_MAX ||
	    strlen(s = json_string_value(j)) != json_string_length(j))
		goto out;
	memcpy(v.unit, s, json_string_length(j) + 1);
	if (!sensor_valid(v.sensor) || !unit_valid(v.unit) ||
	    !number_of(json_object_get(o, "value"), &v.value))
		goto out;
	if ((j = json_object_get(o, "emergency")) != NULL) {
		/* Only ever true: a record that is no emergency does not say so. */
		if (!json_is_true(j) || !number_of(json_object_get(o, "threshold"), &v.threshold))
			goto out;
		v.emergency = true;
		fields = 5;
	}
	if (json_object_size(o) != fields)
		goto out;
	*ret = v;
	r = 0;
out:
	json_decref(o);
	return r;
}

int reading_header_parse(const uint8_t *in, size_t len, struct reading_header *ret, size_t *ret_len)
{
	struct reading_header h = {0};
	const uint8_t *p;
	uint64_t seq, time;
	uint32_t epoch;
	size_t n, hlen;

	if (len > READING_MAX)
		return -EMSGSIZE;
	if (len < 4 || in[0] != READING_VERSION || in[1] < READING_GROUP || in[1] > READING_PAIR ||
	    (in[2] & ~READING_F_EMERGENCY) != 0 || in[3] == 0 || in[3] > READING_NAME_MAX)
		return -EBADMSG;
	n = in[3];
	hlen = READING_HEADER_FIXED + n;
	/* The header, then 1..READING_PLAIN_MAX bytes of ciphertext and the tag. */
	if (len < hlen + 1 + CRYPTO_TAG_LEN || len > hlen + READING_PLAIN_MAX + CRYPTO_TAG_LEN)
		return -EBADMSG;
	if (memchr(in + 4, 0, n) != NULL)
		return -EBADMSG;
	memcpy(h.device, in + 4, n);
	if (!ca_name_valid(h.device))
		return -EBADMSG;
	p = in + 4 + n;
	memcpy(&epoch, p + OFF_EPOCH, 4);
	memcpy(&seq, p + OFF_SEQ, 8);
	memcpy(&time, p + OFF_TIME, 8);
	epoch = be32toh(epoch), seq = be64toh(seq), time = be64toh(time);
	if (epoch == 0 || seq == 0 || time > INT64_MAX)
		return -EBADMSG;
	h.kind = in[1];
	h.flags = in[2];
	memcpy(h.stream, p + OFF_STREAM, STREAM_ID_LEN);
	h.epoch = epoch;
	h.seq = seq;
	h.time_ms = (int64_t)time;
	memcpy(h.nonce, p + OFF_NONCE, CRYPTO_NONCE_LEN);
	*ret = h;
	*ret_len = hlen;
	return 0;
}

static bool header_valid(const struct reading_header *h)
{
	return h->kind >= READING_GROUP && h->kind <= READING_PAIR &&
	       (h->flags & ~READING_F_EMERGENCY) == 0 &&
	       strnlen(h->device, sizeof(h->device)) <= READING_NAME_MAX &&
	       ca_name_valid(h->device) && h->epoch > 0 && h->seq > 0 && h->time_ms >= 0;
}

/* The header's bytes into out; its length. */
static size_t put_header(const struct reading_header *h, const uint8_t stream[STREAM_ID_LEN],
			 const uint8_t nonce[CRYPTO_NONCE_LEN], uint8_t *out)
{
	size_t n = strlen(h->device);
	uint32_t epoch = htobe32(h->epoch);
	uint64_t seq = htobe64(h->seq), time = htobe64((uint64_t)h->time_ms);
	uint8_t *p = out + 4 + n;

	out[0] = READING_VERSION;
	out[1] = h->kind;
	out[2] = h->flags;
	out[3] = (uint8_t)n;
	memcpy(out + 4, h->device, n);
	memcpy(p + OFF_STREAM, stream, STREAM_ID_LEN);
	memcpy(p + OFF_EPOCH, &epoch, 4);
	memcpy(p + OFF_SEQ, &seq, 8);
	memcpy(p + OFF_TIME, &time, 8);
	memcpy(p + OFF_NONCE, nonce, CRYPTO_NONCE_LEN);
	return READING_HEADER_FIXED + n;
}

/* Nonces drawn ahead, NONCE_POOL at a time: one RAND_bytes call costs more than sealing a
 * reading, and most of it is per call, not per byte. A forked child must never hand out its
 * parent's nonces under the same key, so fork empties the pool. */
static _Thread_local struct {
	uint8_t bytes[NONCE_POOL * CRYPTO_NONCE_LEN];
	size_t left;
} nonces;
static pthread_once_t nonces_once = PTHREAD_ONCE_INIT;

static void nonces_forget(void)
{
	crypto_wipe(&nonces, sizeof(nonces));
}

static void nonces_init(void)
{
	pthread_atfork(NULL, NULL, nonces_forget);
}

static int next_nonce(uint8_t out[CRYPTO_NONCE_LEN])
{
	uint8_t *p;
	int r;

	pthread_once(&nonces_once, nonces_init);
	if (nonces.left == 0) {
		if ((r = crypto_random(nonces.bytes, sizeof(nonces.bytes))) < 0)
			return r;
		nonces.left = NONCE_POOL;
	}
	p = nonces.bytes + --nonces.left * CRYPTO_NONCE_LEN;
	memcpy(out, p, CRYPTO_NONCE_LEN);
	memset(p, 0, CRYPTO_NONCE_LEN); /* handed out once */
	return 0;
}

int reading_seal(struct stream *s, struct reading_header *h, const void *pt, size_t ptlen,
		 uint8_t *out, size_t outcap, size_t *ret_len)
{
	uint8_t nonce[CRYPTO_NONCE_LEN];
	struct crypto_aead *a;
	size_t hlen;
	int r;

	if (!header_valid(h) || ptlen == 0 || ptlen > READING_PLAIN_MAX)
		return -EINVAL;
	if ((a = stream_aead(s, h->epoch)) == NULL)
		return -ENOKEY;
	if (READING_HEADER_FIXED + strlen(h->device) + ptlen + CRYPTO_TAG_LEN > outcap)
		return -EMSGSIZE;
	/* Random, not a counter: every device of the home seals under the group stream's key.
	 * 2^32 readings under one key (NIST SP 800-38D's bound) keep the odds of a repeated nonce
	 * below 2^-32, and a key lives one interval. */
	if ((r = next_nonce(nonce)) < 0)
		return r;
	hlen = put_header(h, stream_get_id(s), nonce, out);
	if ((r = crypto_aead_seal(a, nonce, out, hlen, pt, ptlen, out + hlen)) < 0)
		return r;
	memcpy(h->stream, stream_get_id(s), STREAM_ID_LEN);
	memcpy(h->nonce, nonce, CRYPTO_NONCE_LEN);
	*ret_len = hlen + ptlen + CRYPTO_TAG_LEN;
	return 0;
}

int reading_open(struct stream *s, const uint8_t *in, size_t len, struct reading_header *ret_h,
		 uint8_t *out, size_t *ret_len)
{
	struct reading_header h;
	struct crypto_aead *a;
	size_t hlen;
	int r;

	if ((r = reading_header_parse(in, len, &h, &hlen)) < 0)
		goto out;
	if (memcmp(h.stream, stream_get_id(s), STREAM_ID_LEN) != 0) {
		r = -IOTSEC_ETYPE;
		goto out;
	}
	if ((a = stream_aead(s, h.epoch)) == NULL) {
		r = h.epoch > stream_current(s) ? -ENOKEY : -IOTSEC_ESTALE;
		goto out;
	}
	if ((r = crypto_aead_open(a, h.nonce, in, hlen, in + hlen, len - hlen, out)) < 0)
		goto out;
	*ret_h = h;
	*ret_len = len - hlen - CRYPTO_TAG_LEN;
out:
	if (r < 0)
		crypto_wipe(out, READING_PLAIN_MAX);
	return r;
}

/* One (device, stream): the highest seq accepted (top), and a bit for each of the
 * READING_WINDOW seqs up to it, seq x at bit x % READING_WINDOW. Everything at or below
 * top - READING_WINDOW (the floor) is refused. */
struct sender {
	char device[READING_NAME_MAX + 1];
	uint8_t stream[STREAM_ID_LEN];
	int64_t newest_ms; /* clamped to the reader's now + fresh_ms */
	uint64_t top;
	uint64_t seen[WORDS];
};

/* Senders sorted by (device, stream), so a lookup is a binary search. */
struct reading_guard {
	int64_t fresh_ms;
	struct sender **s;
	size_t n, cap;
};

int reading_guard_new(int64_t fresh_ms, struct reading_guard **ret)
{
	struct reading_guard *g;

	if (fresh_ms <= 0)
		return -EINVAL;
	if ((g = calloc(1, sizeof(*g))) == NULL)
		return -ENOMEM;
	g->fresh_ms = fresh_ms;
	*ret = g;
	return 0;
}

void reading_guard_free(struct reading_guard *g)
{
	if (g == NULL)
		return;
	for (size_t i = 0; i < g->n; i++)
		free(g->s[i]);
	free(g->s);
	free(g);
}

static int sender_cmp(const struct sender *s, const struct reading_header *h)
{
	int c = strcmp(s->device, h->device);

	return c != 0 ? c : memcmp(s->stream, h->stream, STREAM_ID_LEN);
}

static size_t find(const struct reading_guard *g, const struct reading_header *h, bool *found)
{
	size_t lo = 0, hi = g->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = sender_cmp(g->s[mid], h);

		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}

/* Forget every sender none of whose readings could still be fresh: each reading it sent is
 * at most newest_ms, older than now - fresh_ms, so freshness refuses its replays by itself. */
static void forget_stale(struct reading_guard *g, int64_t now_ms)
{
	size_t kept = 0;

	for (size_t i = 0; i < g->n; i++) {
		if (g->s[i]->newest_ms < now_ms - g->fresh_ms)
			free(g->s[i]);
		else
			g->s[kept++] = g->s[i];
	}
	g->n = kept;
}

static int insert(struct reading_guard *g, const struct reading_header *h, int64_t now_ms,
		  struct sender **ret)
{
	struct sender *s, **grown;
	size_t at;
	bool found;

	if (g->n == g->cap)
		forget_stale(g, now_ms);
	if (g->n == g->cap) {
		size_t cap = g->cap ? 2 * g->cap : 16;

		/* Fail closed: forgetting a sender still fresh would let its replays through. */
		if (g->n >= READING_SENDERS_MAX)
			return -ENOBUFS;
		if (cap > READING_SENDERS_MAX)
			cap = READING_SENDERS_MAX;
		if ((grown = realloc(g->s, cap * sizeof(*grown))) == NULL)
			return -ENOMEM;
		g->s = grown;
		g->cap = cap;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return -ENOMEM;
	memcpy(s->device, h->device, strlen(h->device) + 1);
	memcpy(s->stream, h->stream, STREAM_ID_LEN);
	at = find(g, h, &found);
	memmove(g->s + at + 1, g->s + at, (g->n - at) * sizeof(*g->s));
	g->s[at] = s;
	g->n++;
	*ret = s;
	return 0;
}

static bool bit(const struct sender *s, uint64_t seq)
{
	return (s->seen[(seq % READING_WINDOW) / 64] >> (seq % 64)) & 1;
}

static void set_bit(struct sender *s, uint64_t seq)
{
	s->seen[(seq % READING_WINDOW) / 64] |= (uint64_t)1 << (seq % 64);
}

static void clear_bit(struct sender *s, uint64_t seq)
{
	s->seen[(seq % READING_WINDOW) / 64] &= ~((uint64_t)1 << (seq % 64));
}

int reading_guard_check(struct reading_guard *g, const struct reading_header *h, int64_t now_ms)
{
	struct sender *s;
	int64_t age;
	size_t at;
	bool found;
	int r;

	if (!ca_name_valid(h->device) || strnlen(h->device, sizeof(h->device)) > READING_NAME_MAX)
		return -EINVAL;
	if (h->seq == 0) /* seqs start at 1 */
		return -IOTSEC_EREPLAY;
	/* |now - time| > fresh, without overflow for any time a caller passes. */
	if (__builtin_sub_overflow(now_ms, h->time_ms, &age) || age > g->fresh_ms ||
	    age < -g->fresh_ms)
		return -IOTSEC_ESTALE;
	at = find(g, h, &found);
	if (found) {
		s = g->s[at];
		if (h->seq <= s->top) {
			if (s->top - h->seq >= READING_WINDOW || bit(s, h->seq))
				return -IOTSEC_EREPLAY;
		}
	} else if ((r = insert(g, h, now_ms, &s)) < 0) {
		return r;
	}
	if (h->seq > s->top) {
		/* Slide: the seqs the window passes over become unseen slots for the new ones. */
		if (h->seq - s->top >= READING_WINDOW)
			memset(s->seen, 0, sizeof(s->seen));
		else
			for (uint64_t x = s->top + 1; x < h->seq; x++)
				clear_bit(s, x);
		s->top = h->seq;
	}
	set_bit(s, h->seq);
	if (h->time_ms > s->newest_ms)
		s->newest_ms =
		    h->time_ms < now_ms + g->fresh_ms ? h->time_ms : now_ms + g->fresh_ms;
	return 0;
}
