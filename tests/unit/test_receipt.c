/* receipt: seqs fold into sorted disjoint ranges (gaps, repeats, any order, more than fit),
 * RELAY_RECEIPT bodies round-trip, every malformed body is refused with the output untouched,
 * and a receipt covers exactly its stream's seqs in its ranges. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "receipt.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const uint8_t stream7[STREAM_ID_LEN] = {0x07, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
					       0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0xfe, 0xff};
#define ID7 "\"070102030405060708090a0b0c0dfeff\""

static json_t *load(const char *text)
{
	json_t *j = json_loads(text, JSON_ALLOW_NUL | JSON_DECODE_ANY, NULL);

	assert_non_null(j);
	return j;
}

static void assert_ranges(const struct receipt *r, const uint64_t *want, size_t n)
{
	assert_int_equal(r->n, n);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(r->ranges[i].first, want[2 * i]);
		assert_int_equal(r->ranges[i].last, want[2 * i + 1]);
	}
}

static void test_from_seqs(void **state)
{
	uint64_t one[] = {5}, run[] = {1, 2, 3, 4}, gaps[] = {1, 3, 4, 9, 10, 11, 20},
		 unsorted[] = {11, 3, 20, 1, 10, 4, 9},
		 repeats[] = {7, 7, 8, 7, 8, 8, 10, 10, 9, 12},
		 edges[] = {INT64_MAX, INT64_MAX - 1, 1};
	const uint64_t want_one[] = {5, 5}, want_run[] = {1, 4},
		       want_gaps[] = {1, 1, 3, 4, 9, 11, 20, 20}, want_repeats[] = {7, 10, 12, 12},
		       want_edges[] = {1, 1, INT64_MAX - 1, INT64_MAX};
	struct receipt r;
	size_t used = 99;

	(void)state;
	memset(&r, 0, sizeof(r));
	memcpy(r.stream, stream7, sizeof(r.stream));
	assert_int_equal(receipt_from_seqs(&r, one, N(one), &used), 0);
	assert_int_equal(used, 1);
	assert_ranges(&r, want_one, 1);
	assert_int_equal(receipt_from_seqs(&r, run, N(run), &used), 0);
	assert_int_equal(used, 4);
	assert_ranges(&r, want_run, 1);
	assert_int_equal(receipt_from_seqs(&r, gaps, N(gaps), &used), 0);
	assert_int_equal(used, N(gaps));
	assert_ranges(&r, want_gaps, 4);
	assert_int_equal(receipt_from_seqs(&r, unsorted, N(unsorted), &used), 0);
	assert_ranges(&r, want_gaps, 4);
	for (size_t i = 1; i < N(unsorted); i++) /* sorted in place */
		assert_true(unsorted[i - 1] < unsorted[i]);
	assert_int_equal(receipt_from_seqs(&r, repeats, N(repeats), &used), 0);
	assert_int_equal(used, N(repeats));
	assert_ranges(&r, want_repeats, 2);
	assert_int_equal(receipt_from_seqs(&r, edges, N(edges), &used), 0);
	assert_ranges(&r, want_edges, 2);
	/* The stream is the caller's: untouched. */
	assert_memory_equal(r.stream, stream7, sizeof(stream7));
}

static void test_from_seqs_refused(void **state)
{
	uint64_t zero[] = {3, 0, 5}, big[] = {1, (uint64_t)INT64_MAX + 1}, any[] = {1};
	struct receipt r, before;
	size_t used = 99;

	(void)state;
	memset(&r, 0xa5, sizeof(r));
	before = r;
	assert_int_equal(receipt_from_seqs(&r, zero, N(zero), &used), -EINVAL);
	assert_int_equal(receipt_from_seqs(&r, big, N(big), &used), -EINVAL);
	assert_int_equal(receipt_from_seqs(&r, any, 0, &used), -EINVAL);
	assert_memory_equal(&r, &before, sizeof(r));
	assert_int_equal(used, 99);
}

/* Every other seq from 1: one range each, so RECEIPT_RANGES_MAX of them fill a receipt and the
 * rest (with the repeats of the last one that went in) wait for the next. */
static void test_from_seqs_too_many(void **state)
{
	uint64_t seqs[2 * RECEIPT_RANGES_MAX + 3], rest[RECEIPT_RANGES_MAX + 3];
	size_t n = 0, used = 0, k = 0;
	struct receipt r;

	(void)state;
	for (size_t i = 0; i < RECEIPT_RANGES_MAX + 2; i++)
		seqs[n++] = 2 * (RECEIPT_RANGES_MAX + 2 - i) - 1; /* descending */
	seqs[n++] = 2 * RECEIPT_RANGES_MAX - 1;			  /* a repeat of the 64th */
	assert_true(n <= N(seqs));
	assert_int_equal(receipt_from_seqs(&r, seqs, n, &used), -E2BIG);
	assert_int_equal(r.n, RECEIPT_RANGES_MAX);
	assert_int_equal(used, RECEIPT_RANGES_MAX + 1);
	for (size_t i = 0; i < RECEIPT_RANGES_MAX; i++) {
		assert_int_equal(r.ranges[i].first, 2 * i + 1);
		assert_int_equal(r.ranges[i].last, 2 * i + 1);
	}
	/* What fits builds; the rest is a receipt of its own. */
	for (size_t i = used; i < n; i++)
		rest[k++] = seqs[i];
	assert_int_equal(receipt_from_seqs(&r, rest, k, &used), 0);
	assert_int_equal(used, 2);
	assert_int_equal(r.n, 2);
	assert_int_equal(r.ranges[0].first, 2 * RECEIPT_RANGES_MAX + 1);
	assert_int_equal(r.ranges[1].last, 2 * RECEIPT_RANGES_MAX + 3);

	/* Exactly RECEIPT_RANGES_MAX ranges fit. */
	n = 0;
	for (size_t i = 0; i < RECEIPT_RANGES_MAX; i++)
		seqs[n++] = 3 * i + 1;
	assert_int_equal(receipt_from_seqs(&r, seqs, n, &used), 0);
	assert_int_equal(used, n);
	assert_int_equal(r.n, RECEIPT_RANGES_MAX);
}

struct row {
	const char *text;
	int want;
};

static const struct row cases[] = {
    {"{\"stream\":" ID7 ",\"ranges\":[[1,1]]}", 0},
    {"{\"ranges\":[[1,3],[5,9],[10,10]],\"stream\":" ID7 "}", 0}, /* adjacent is disjoint */
    {"{\"stream\":" ID7 ",\"ranges\":[[9223372036854775807,9223372036854775807]]}", 0},
    {"{\"stream\":\"00000000000000000000000000000000\",\"ranges\":[[2,4]]}", 0},
    /* fields missing, extra, misnamed; not an object */
    {"{\"stream\":" ID7 "}", -EBADMSG},
    {"{\"ranges\":[[1,1]]}", -EBADMSG},
    {"{\"stream\":" ID7 ",\"ranges\":[[1,1]],\"relay\":\"relay1\"}", -EBADMSG},
    {"{\"stream\":" ID7 ",\"range\":[[1,1]]}", -EBADMSG},
    {"{}", -EBADMSG},
    {"[" ID7 ",[[1,1]]]", -EBADMSG},
    {ID7, -EBADMSG},
    {"null", -EBADMSG},
    /* the stream id */
    {"{\"stream\":\"070102030405060708090A0B0C0DFEFF\",\"ranges\":[[1,1]]}", -EBADMSG},
    {"{\"stream\":\"070102030405060708090a0b0c0dfe\",\"ranges\":[[1,1]]}", -EBADMSG},
    {"{\"stream\":\"070102030405060708090a0b0c0dfeff00\",\"ranges\":[[1,1]]}", -EBADMSG},
    {"{\"stream\":\"070102030405060708090a0b0c0dfef\",\"ranges\":[[1,1]]}", -EBADMSG},
    {"{\"stream\":\"g70102030405060708090a0b0c0dfeff\",\"ranges\":[[1,1]]}", -EBADMSG},
    {"{\"stream\":\"0701020304050607 8090a0b0c0dfeff\",\"ranges\":[[1,1]]}", -EBADMSG},
    {"{\"stream\":\"070102030405060708090a0b0c0dfe\\u0000f\",\"ranges\":[[1,1]]}", -EBADMSG},
    {"{\"stream\":\"BwECAwQFBgcICQoLDA3+/w==\",\"ranges\":[[1,1]]}", -EBADMSG},
    {"{\"stream\":\"\",\"ranges\":[[1,1]]}", -EBADMSG},
    {"{\"stream\":7,\"ranges\":[[1,1]]}", -EBADMSG},
    {"{\"stream\":null,\"ranges\":[[1,1]]}", -EBADMSG},
    {"{\"stream\":[" ID7 "],\"ranges\":[[1,1]]}", -EBADMSG},
    /* the ranges: empty, not a list, wrong elements */
    {"{\"stream\":" ID7 ",\"ranges\":[]}", -EBADMSG},
    {"{\"stream\":" ID7 ",\"ranges\":{}}", -EBADMSG},
    {"{\"stream\":" ID7 ",\"ranges\":[1,1]}", -EBADMSG},
    {"{\"stream\":" ID7 ",\"ranges\":null}", -EBADMSG},
    {"{\"stream\":" ID7 ",\"ranges\":\"1-3\"}", -EBADMSG},
    {"{\"stream\":" ID7 ",\"ranges\":[[1]]}", -EBADMSG},
    {"{\"stream\":" ID7 ",\"ranges\":[[1,2,3]]}", -EBADMSG},
    {"{\"stream\":" ID7 ",\"ranges\":[[]]}", -EBADMSG},
    {"{\"stream\":" ID7 ",\"ranges\":[{\"first\":1,\"last\":2}]}", -EBADMSG},
    {"{\"stream\":" ID7 ",\"ranges\":[[1.0,2]]}", -EBADMSG},
    {"{\"stream\":" ID7 ",\"ranges\":[[1,\"2\"]]}", -EBADMSG},
    {"{\"stream\":" ID7 ",\"ranges\":[[1,true]]}", -EBADMSG},
    {"{\"stream\":" ID7 ",\"ranges\":[[null,2]]}", -EBADMSG},
    {"{\"stream\":" ID7 ",\"ranges\":[[1,1e19]]}", -EBADMSG},
    /* seq 0, negative, first > last */
    {"{\"stream\":" ID7 ",\"ranges\":[[0,3]]}", -EBADMSG},
    {"{\"stream\":" ID7 ",\"ranges\":[[0,0]]}", -EBADMSG},
    {"{\"stream\":" ID7 ",\"ranges\":[[-1,3]]}", -EBADMSG},
    {"{\"stream\":" ID7 ",\"ranges\":[[5,-3]]}", -EBADMSG},
    {"{\"stream\":" ID7 ",\"ranges\":[[5,4]]}", -EBADMSG},
    {"{\"stream\":" ID7 ",\"ranges\":[[1,2],[9,8]]}", -EBADMSG},
    /* unsorted, overlapping, repeated */
    {"{\"stream\":" ID7 ",\"ranges\":[[5,6],[1,2]]}", -EBADMSG},
    {"{\"stream\":" ID7 ",\"ranges\":[[1,5],[5,6]]}", -EBADMSG},
    {"{\"stream\":" ID7 ",\"ranges\":[[1,5],[3,4]]}", -EBADMSG},
    {"{\"stream\":" ID7 ",\"ranges\":[[1,2],[1,2]]}", -EBADMSG},
    {"{\"stream\":" ID7 ",\"ranges\":[[1,9],[2,3],[10,11]]}", -EBADMSG},
};

static void test_bodies(void **state)
{
	(void)state;
	for (size_t i = 0; i < N(cases); i++) {
		json_t *body = load(cases[i].text), *again = NULL;
		struct receipt r, r2;
		int got;

		memset(&r, 0xa5, sizeof(r));
		got = receipt_parse(body, &r);
		if (got != cases[i].want)
			fail_msg("case %zu %s: %d, wanted %d", i, cases[i].text, got,
				 cases[i].want);
		if (got < 0) {
			for (size_t j = 0; j < sizeof(r); j++)
				if (((uint8_t *)&r)[j] != 0xa5)
					fail_msg("case %zu: output written", i);
		} else {
			assert_int_equal(receipt_build(&r, &again), 0);
			memset(&r2, 0, sizeof(r2));
			assert_int_equal(receipt_parse(again, &r2), 0);
			assert_memory_equal(r.stream, r2.stream, STREAM_ID_LEN);
			assert_int_equal(r.n, r2.n);
			assert_memory_equal(r.ranges, r2.ranges, r.n * sizeof(r.ranges[0]));
		}
		json_decref(again);
		json_decref(body);
	}
}

/* A body of n ranges [[1,1],[3,3],...]. */
static json_t *n_ranges(size_t n)
{
	json_t *ranges = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(
		    ranges, json_pack("[I, I]", (json_int_t)(2 * i + 1), (json_int_t)(2 * i + 1)));
	return json_pack("{s:s, s:o}", "stream", "070102030405060708090a0b0c0dfeff", "ranges",
			 ranges);
}

static void test_ranges_max(void **state)
{
	json_t *full = n_ranges(RECEIPT_RANGES_MAX), *over = n_ranges(RECEIPT_RANGES_MAX + 1);
	struct receipt r, before;

	(void)state;
	assert_non_null(full);
	assert_non_null(over);
	assert_int_equal(receipt_parse(full, &r), 0);
	assert_int_equal(r.n, RECEIPT_RANGES_MAX);
	memset(&r, 0xa5, sizeof(r));
	before = r;
	assert_int_equal(receipt_parse(over, &r), -EBADMSG);
	assert_memory_equal(&r, &before, sizeof(r));
	json_decref(full);
	json_decref(over);
}

/* build refuses what parse would: the relay cannot send a receipt no kit takes. */
static void test_build_refused(void **state)
{
	static const struct receipt_range bad[][2] = {
	    {{0, 1}, {3, 3}},			    /* seq 0 */
	    {{2, 1}, {3, 3}},			    /* first > last */
	    {{3, 4}, {1, 1}},			    /* unsorted */
	    {{1, 4}, {4, 5}},			    /* overlapping */
	    {{1, 1}, {3, (uint64_t)INT64_MAX + 1}}, /* beyond the JSON integer */
	};
	struct receipt r;
	json_t *out = NULL;

	(void)state;
	memset(&r, 0, sizeof(r));
	for (size_t i = 0; i < N(bad); i++) {
		memcpy(r.ranges, bad[i], sizeof(bad[i]));
		r.n = 2;
		assert_int_equal(receipt_build(&r, &out), -EINVAL);
		assert_null(out);
	}
	r.ranges[0] = (struct receipt_range){1, 1};
	r.n = 0;
	assert_int_equal(receipt_build(&r, &out), -EINVAL);
	r.n = RECEIPT_RANGES_MAX + 1;
	assert_int_equal(receipt_build(&r, &out), -EINVAL);
	assert_null(out);
}

static void test_build_text(void **state)
{
	struct receipt r = {.n = 2, .ranges = {{1, 3}, {7, 7}}};
	json_t *out = NULL;
	char *text;

	(void)state;
	memcpy(r.stream, stream7, sizeof(stream7));
	assert_int_equal(receipt_build(&r, &out), 0);
	text = json_dumps(out, JSON_SORT_KEYS | JSON_COMPACT);
	assert_string_equal(text, "{\"ranges\":[[1,3],[7,7]],\"stream\":" ID7 "}");
	free(text);
	json_decref(out);
}

static void test_covers(void **state)
{
	struct receipt r = {.n = 3, .ranges = {{2, 4}, {7, 7}, {10, 20}}};
	uint8_t other[STREAM_ID_LEN];

	(void)state;
	memcpy(r.stream, stream7, sizeof(stream7));
	memcpy(other, stream7, sizeof(other));
	other[15] ^= 1;
	for (uint64_t s = 0; s <= 22; s++) {
		bool in = (s >= 2 && s <= 4) || s == 7 || (s >= 10 && s <= 20);

		assert_int_equal(receipt_covers(&r, stream7, s), in);
		assert_false(receipt_covers(&r, other, s));
	}
	assert_false(receipt_covers(&r, stream7, UINT64_MAX));
	r.n = 0;
	assert_false(receipt_covers(&r, stream7, 3));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_from_seqs),	       cmocka_unit_test(test_from_seqs_refused),
	    cmocka_unit_test(test_from_seqs_too_many), cmocka_unit_test(test_bodies),
	    cmocka_unit_test(test_ranges_max),	       cmocka_unit_test(test_build_refused),
	    cmocka_unit_test(test_build_text),	       cmocka_unit_test(test_covers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
