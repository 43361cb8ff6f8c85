/* The readings fetch has shown, across runs (SPEC 8: the doctor's tool refuses a (device, seq)
 * it has already seen, since the relay may deliver one again: after a crash between printing and
 * telling the relay, or a copy replayed by whoever holds the relay). A kit's seqs come nearly in
 * order, so a stream's seen seqs are a few ranges:
 *   D/seen.json  {"v":1,"streams":{"<stream hex>":[[first,last],...]}}  ranges sorted, disjoint,
 *                not touching, seqs >= 1. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "body.h"
#include "encoding.h"
#include "file.h"
#include "iotsec-doctor.h"
#include "log.h"

#define SEQ_MAX ((uint64_t)INT64_MAX) /* a seq fits a JSON integer */

struct seen_range {
	uint64_t first, last;
};

struct seen_stream {
	uint8_t id[STREAM_ID_LEN];
	struct seen_range *r;
	size_t n, cap;
};

struct doctor_seen {
	struct seen_stream *s;
	size_t n, cap;
};

void doctor_seen_free(struct doctor_seen *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->n; i++)
		free(s->s[i].r);
	free(s->s);
	free(s);
}

static struct seen_stream *find(const struct doctor_seen *s, const uint8_t id[STREAM_ID_LEN])
{
	for (size_t i = 0; i < s->n; i++)
		if (memcmp(s->s[i].id, id, STREAM_ID_LEN) == 0)
			return &s->s[i];
	return NULL;
}

static struct seen_stream *add_stream(struct doctor_seen *s, const uint8_t id[STREAM_ID_LEN])
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 8;
		struct seen_stream *grown;

		if (s->n >= DOCTOR_SEEN_STREAMS_MAX)
			return NULL;
		if ((grown = realloc(s->s, cap * sizeof(*grown))) == NULL)
			return NULL;
		s->s = grown, s->cap = cap;
	}
	memset(&s->s[s->n], 0, sizeof(s->s[s->n]));
	memcpy(s->s[s->n].id, id, STREAM_ID_LEN);
	return &s->s[s->n++];
}

/* The first range whose last is >= seq (st->n when none). */
static size_t lower(const struct seen_stream *st, uint64_t seq)
{
	size_t lo = 0, hi = st->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (st->r[mid].last < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

bool doctor_seen_has(const struct doctor_seen *s, const uint8_t stream[STREAM_ID_LEN], uint64_t seq)
{
	const struct seen_stream *st = find(s, stream);
	size_t i;

	if (st == NULL)
		return false;
	i = lower(st, seq);
	return i < st->n && st->r[i].first <= seq;
}

/* Past DOCTOR_SEEN_RANGES_MAX ranges, the two with the smallest gap between them become one:
 * the seqs in that gap are refused if they ever come (a reading lost to the doctor), never a
 * replay let through. */
static void merge_closest(struct seen_stream *st)
{
	size_t best = 0;

	for (size_t i = 1; i + 1 < st->n; i++)
		if (st->r[i + 1].first - st->r[i].last < st->r[best + 1].first - st->r[best].last)
			best = i;
	st->r[best].last = st->r[best + 1].last;
	memmove(&st->r[best + 1], &st->r[best + 2], (st->n - best - 2) * sizeof(*st->r));
	st->n--;
}

static int insert(struct seen_stream *st, uint64_t seq)
{
	size_t i = lower(st, seq);
	bool left, right;

	if (i < st->n && st->r[i].first <= seq)
		return -IOTSEC_EREPLAY;
	left = i > 0 && st->r[i - 1].last + 1 == seq;
	right = i < st->n && st->r[i].first == seq + 1;
	if (left && right) {
		st->r[i - 1].last = st->r[i].last;
		memmove(&st->r[i], &st->r[i + 1], (st->n - i - 1) * sizeof(*st->r));
		st->n--;
		return 0;
	}
	if (left) {
		st->r[i - 1].last = seq;
		return 0;
	}
	if (right) {
		st->r[i].first = seq;
		return 0;
	}
	if (st->n == st->cap) {
		size_t cap = st->cap ? 2 * st->cap : 4;
		struct seen_range *grown;

		if ((grown = realloc(st->r, cap * sizeof(*grown))) == NULL)
			return -ENOMEM;
		st->r = grown, st->cap = cap;
	}
	memmove(&st->r[i + 1], &st->r[i], (st->n - i) * sizeof(*st->r));
	st->r[i].first = st->r[i].last = seq;
	st->n++;
	if (st->n > DOCTOR_SEEN_RANGES_MAX)
		merge_closest(st);
	return 0;
}

int doctor_seen_add(struct doctor_seen *s, const uint8_t stream[STREAM_ID_LEN], uint64_t seq)
{
	struct seen_stream *st;

	if (seq == 0 || seq > SEQ_MAX)
		return -EINVAL;
	if ((st = find(s, stream)) == NULL) {
		if (s->n >= DOCTOR_SEEN_STREAMS_MAX)
			return -ENOBUFS;
		if ((st = add_stream(s, stream)) == NULL)
			return -ENOMEM;
	}
	return insert(st, seq);
}

/* One stream's ranges, strictly: sorted, disjoint and not touching (as insert() keeps them). */
static int load_ranges(struct seen_stream *st, json_t *a)
{
	size_t n = json_array_size(a);
	uint64_t prev = 0;

	if (!json_is_array(a) || n == 0 || n > DOCTOR_SEEN_RANGES_MAX)
		return -EBADMSG;
	if ((st->r = calloc(n, sizeof(*st->r))) == NULL)
		return -ENOMEM;
	st->cap = n;
	for (size_t i = 0; i < n; i++) {
		json_t *p = json_array_get(a, i), *f = json_array_get(p, 0),
		       *l = json_array_get(p, 1);
		json_int_t first, last;

		if (!json_is_array(p) || json_array_size(p) != 2 || !json_is_integer(f) ||
		    !json_is_integer(l))
			return -EBADMSG;
		first = json_integer_value(f), last = json_integer_value(l);
		if (first < 1 || last < first || (i > 0 && (uint64_t)first <= prev + 1))
			return -EBADMSG;
		st->r[i].first = (uint64_t)first, st->r[i].last = (uint64_t)last;
		st->n++;
		prev = (uint64_t)last;
	}
	return 0;
}

int doctor_seen_load(const char *path, struct doctor_seen **ret)
{
	struct doctor_seen *s = NULL;
	json_t *o = NULL, *streams = NULL, *v;
	int64_t version;
	const char *key;
	char *text = NULL;
	size_t len;
	int r;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return -ENOMEM;
	if ((r = file_check_secret(path)) == -ENOENT) {
		*ret = s;
		return 0;
	}
	if (r < 0 || (r = file_read(path, DOCTOR_SEEN_FILE_MAX, &text, &len)) < 0)
		goto out;
	r = -EBADMSG;
	if ((o = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL)) == NULL ||
	    !body_fields(o, 2) || !body_int(o, "v", 1, 1, &version) ||
	    !json_is_object(streams = json_object_get(o, "streams")) ||
	    json_object_size(streams) > DOCTOR_SEEN_STREAMS_MAX)
		goto out;
	json_object_foreach(streams, key, v)
	{
		uint8_t id[STREAM_ID_LEN];
		struct seen_stream *st;

		r = -EBADMSG;
		/* Lower-case hex, as we write it: two spellings of one id would be two streams. */
		if (strlen(key) != 2 * STREAM_ID_LEN ||
		    strspn(key, "0123456789abcdef") != strlen(key) ||
		    hex_decode(key, id, STREAM_ID_LEN) < 0)
			goto out;
		r = -ENOMEM;
		if ((st = add_stream(s, id)) == NULL || (r = load_ranges(st, v)) < 0)
			goto out;
	}
	*ret = s;
	s = NULL;
	r = 0;
out:
	doctor_seen_free(s);
	json_decref(o);
	free(text);
	return r;
}

int doctor_seen_save(const struct doctor_seen *s, const char *path)
{
	char hex[2 * STREAM_ID_LEN + 1], *text = NULL;
	json_t *o = NULL, *streams;
	int r = -ENOMEM;

	if ((o = json_pack("{s:i, s:{}}", "v", 1, "streams")) == NULL)
		goto out;
	streams = json_object_get(o, "streams");
	for (size_t i = 0; i < s->n; i++) {
		json_t *a;

		if (s->s[i].n == 0)
			continue;
		if ((a = json_array()) == NULL)
			goto out;
		hex_encode(s->s[i].id, STREAM_ID_LEN, hex);
		if (json_object_set_new(streams, hex, a) < 0)
			goto out;
		for (size_t j = 0; j < s->s[i].n; j++)
			if (json_array_append_new(a, json_pack("[I, I]",
							       (json_int_t)s->s[i].r[j].first,
							       (json_int_t)s->s[i].r[j].last)) < 0)
				goto out;
	}
	if ((text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS)) == NULL)
		goto out;
	r = file_write_atomic(path, text, strlen(text), 0600);
out:
	free(text);
	json_decref(o);
	return r;
}
