#include "receipt.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "body.h"
#include "encoding.h"

/* A seq is at least 1 and fits the JSON integer (as reading.h's and doctor.c's do). */
#define SEQ_MAX ((uint64_t)INT64_MAX)

static int seq_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/* What every receipt must be, built or parsed: 1..RECEIPT_RANGES_MAX ranges of seqs in
 * 1..SEQ_MAX, each first <= last, sorted and disjoint (adjacent ranges are disjoint). */
static bool ranges_valid(const struct receipt_range *ranges, size_t n)
{
	if (n == 0 || n > RECEIPT_RANGES_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (ranges[i].first < 1 || ranges[i].first > ranges[i].last ||
		    ranges[i].last > SEQ_MAX)
			return false;
		if (i > 0 && ranges[i - 1].last >= ranges[i].first)
			return false;
	}
	return true;
}

/* No seqs, or a seq no receipt can carry (0, above SEQ_MAX): -EINVAL with r untouched. On
 * -E2BIG r holds the first RECEIPT_RANGES_MAX ranges and *ret_used counts the sorted seqs
 * (repeats included) they cover, so the caller continues from seqs + *ret_used. r->stream is
 * the caller's to set. */
int receipt_from_seqs(struct receipt *r, uint64_t *seqs, size_t n, size_t *ret_used)
{
	struct receipt_range ranges[RECEIPT_RANGES_MAX];
	size_t k = 0, i;

	if (n == 0)
		return -EINVAL;
	qsort(seqs, n, sizeof(*seqs), seq_cmp);
	if (seqs[0] < 1 || seqs[n - 1] > SEQ_MAX)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		if (k > 0 && seqs[i] <= ranges[k - 1].last + 1) {
			/* A repeat or the next seq: the open range takes it. */
			if (seqs[i] > ranges[k - 1].last)
				ranges[k - 1].last = seqs[i];
			continue;
		}
		if (k == RECEIPT_RANGES_MAX)
			break;
		ranges[k].first = ranges[k].last = seqs[i];
		k++;
	}
	memcpy(r->ranges, ranges, k * sizeof(ranges[0]));
	r->n = k;
	*ret_used = i;
	return i < n ? -E2BIG : 0;
}

int receipt_build(const struct receipt *r, json_t **ret)
{
	char hex[2 * STREAM_ID_LEN + 1];
	json_t *o = NULL, *ranges = NULL, *pair;
	int rc = -EINVAL;

	if (!ranges_valid(r->ranges, r->n))
		goto out;
	rc = -ENOMEM;
	if ((ranges = json_array()) == NULL)
		goto out;
	for (size_t i = 0; i < r->n; i++) {
		pair = json_pack("[I, I]", (json_int_t)r->ranges[i].first,
				 (json_int_t)r->ranges[i].last);
		if (pair == NULL || json_array_append_new(ranges, pair) < 0)
			goto out;
	}
	hex_encode(r->stream, STREAM_ID_LEN, hex);
	/* "o" steals ranges, also when the pack fails. */
	o = json_pack("{s:s, s:o}", "stream", hex, "ranges", ranges);
	ranges = NULL;
	if (o == NULL)
		goto out;
	*ret = o;
	o = NULL;
	rc = 0;
out:
	json_decref(ranges);
	json_decref(o);
	return rc;
}

/* An element of "ranges": an array of exactly two integers in 1..SEQ_MAX. */
static bool range_parse(json_t *v, struct receipt_range *ret)
{
	json_t *a = json_array_get(v, 0), *b = json_array_get(v, 1);

	if (!json_is_array(v) || json_array_size(v) != 2 || !json_is_integer(a) ||
	    !json_is_integer(b) || json_integer_value(a) < 1 || json_integer_value(b) < 1)
		return false;
	ret->first = (uint64_t)json_integer_value(a);
	ret->last = (uint64_t)json_integer_value(b);
	return true;
}

/* The stream id in lower-case hex, the one form hex_encode() writes: a receipt has one text. */
static bool stream_parse(json_t *v, uint8_t ret[STREAM_ID_LEN])
{
	char again[2 * STREAM_ID_LEN + 1];
	uint8_t id[STREAM_ID_LEN];
	const char *s;

	if (!json_is_string(v) || json_string_length(v) != 2 * STREAM_ID_LEN)
		return false;
	s = json_string_value(v);
	if (hex_decode(s, id, sizeof(id)) < 0)
		return false;
	hex_encode(id, sizeof(id), again);
	if (strcmp(s, again) != 0)
		return false;
	memcpy(ret, id, sizeof(id));
	return true;
}

int receipt_parse(json_t *body, struct receipt *ret)
{
	json_t *ranges = json_object_get(body, "ranges");
	struct receipt r;

	memset(&r, 0, sizeof(r));
	if (!body_fields(body, 2) || !stream_parse(json_object_get(body, "stream"), r.stream) ||
	    !json_is_array(ranges) || json_array_size(ranges) < 1 ||
	    json_array_size(ranges) > RECEIPT_RANGES_MAX)
		return -EBADMSG;
	r.n = json_array_size(ranges);
	for (size_t i = 0; i < r.n; i++)
		if (!range_parse(json_array_get(ranges, i), &r.ranges[i]))
			return -EBADMSG;
	if (!ranges_valid(r.ranges, r.n))
		return -EBADMSG;
	*ret = r;
	return 0;
}

bool receipt_covers(const struct receipt *r, const uint8_t stream[STREAM_ID_LEN], uint64_t seq)
{
	size_t lo = 0, hi = r->n;

	if (memcmp(r->stream, stream, STREAM_ID_LEN) != 0)
		return false;
	/* The ranges are sorted and disjoint: the first whose last >= seq is the only candidate. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (r->ranges[mid].last < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < r->n && r->ranges[lo].first <= seq;
}
