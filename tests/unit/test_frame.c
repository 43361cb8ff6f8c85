/* frame: length-prefixed frames come out whole whatever the split, and bad headers stop the
 * stream for good. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "frame.h"

static void fill(uint8_t *p, size_t len, uint8_t seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed + i * 13);
}

/* Two frames of different lengths back to back, as one buffer. */
static uint8_t *two_frames(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen,
			   size_t *ret_len)
{
	uint8_t *fa, *fb, *both;
	size_t la, lb;

	assert_int_equal(frame_encode(a, alen, &fa, &la), 0);
	assert_int_equal(frame_encode(b, blen, &fb, &lb), 0);
	both = malloc(la + lb);
	assert_non_null(both);
	memcpy(both, fa, la);
	memcpy(both + la, fb, lb);
	free(fa), free(fb);
	*ret_len = la + lb;
	return both;
}

/* Drain every complete frame, checking each against the expected payloads in turn. */
static void drain(struct frame_reader *fr, const uint8_t *const *want, const size_t *want_len,
		  size_t *got)
{
	const uint8_t *p;
	size_t len;
	int r;

	while ((r = frame_reader_next(fr, &p, &len)) == 0) {
		assert_true(*got < 2);
		assert_int_equal(len, want_len[*got]);
		assert_memory_equal(p, want[*got], len);
		(*got)++;
	}
	assert_int_equal(r, -EAGAIN);
}

static void test_encode(void **state)
{
	uint8_t payload[3] = {'a', 'b', 'c'}, *out = NULL;
	static const uint8_t want[] = {0, 0, 0, 3, 'a', 'b', 'c'};
	size_t len = 0;

	(void)state;
	assert_int_equal(frame_encode(payload, sizeof(payload), &out, &len), 0);
	assert_int_equal(len, sizeof(want));
	assert_memory_equal(out, want, sizeof(want));
	free(out);
}

static void test_encode_refuses_bad_lengths(void **state)
{
	static uint8_t big[FRAME_PAYLOAD_MAX + 1];
	uint8_t *out = (uint8_t *)&out;
	size_t len = 77;

	(void)state;
	assert_int_equal(frame_encode(big, 0, &out, &len), -EINVAL);
	assert_int_equal(frame_encode(big, sizeof(big), &out, &len), -EMSGSIZE);
	assert_ptr_equal(out, (uint8_t *)&out);
	assert_int_equal(len, 77);
	assert_int_equal(frame_encode(big, FRAME_PAYLOAD_MAX, &out, &len), 0);
	assert_int_equal(len, FRAME_READ_MAX);
	free(out);
}

static void test_every_split_of_two_frames(void **state)
{
	uint8_t a[100], b[7];
	const uint8_t *want[2] = {a, b};
	const size_t want_len[2] = {sizeof(a), sizeof(b)};
	size_t n, got;
	uint8_t *both;

	(void)state;
	fill(a, sizeof(a), 1);
	fill(b, sizeof(b), 2);
	both = two_frames(a, sizeof(a), b, sizeof(b), &n);
	for (size_t cut = 0; cut <= n; cut++) {
		struct frame_reader *fr = NULL;

		assert_int_equal(frame_reader_new(&fr), 0);
		got = 0;
		assert_int_equal(frame_reader_feed(fr, both, cut), 0);
		drain(fr, want, want_len, &got);
		assert_int_equal(got, cut == n ? 2 : cut >= 4 + sizeof(a) ? 1 : 0);
		assert_int_equal(frame_reader_feed(fr, both + cut, n - cut), 0);
		drain(fr, want, want_len, &got);
		assert_int_equal(got, 2);
		assert_int_equal(frame_reader_pending(fr), 0);
		frame_reader_free(fr);
	}
	free(both);
}

static void test_byte_at_a_time_and_one_read(void **state)
{
	uint8_t a[5], b[300];
	const uint8_t *want[2] = {a, b};
	const size_t want_len[2] = {sizeof(a), sizeof(b)};
	struct frame_reader *fr = NULL;
	const uint8_t *p1, *p2;
	size_t n, got = 0, l1, l2;
	uint8_t *both;

	(void)state;
	fill(a, sizeof(a), 3);
	fill(b, sizeof(b), 4);
	both = two_frames(a, sizeof(a), b, sizeof(b), &n);
	assert_int_equal(frame_reader_new(&fr), 0);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(frame_reader_feed(fr, both + i, 1), 0);
		drain(fr, want, want_len, &got);
	}
	assert_int_equal(got, 2);
	/* Both frames from one read: the first pointer survives taking the second. */
	assert_int_equal(frame_reader_feed(fr, both, n), 0);
	assert_int_equal(frame_reader_next(fr, &p1, &l1), 0);
	assert_int_equal(frame_reader_next(fr, &p2, &l2), 0);
	assert_int_equal(frame_reader_next(fr, &p2, &l2), -EAGAIN);
	assert_int_equal(l1, sizeof(a));
	assert_memory_equal(p1, a, sizeof(a));
	frame_reader_free(fr);
	free(both);
}

static void test_max_size_frame(void **state)
{
	static uint8_t payload[FRAME_PAYLOAD_MAX];
	struct frame_reader *fr = NULL;
	const uint8_t *p;
	uint8_t *wire;
	size_t n, len;

	(void)state;
	fill(payload, sizeof(payload), 5);
	assert_int_equal(frame_encode(payload, sizeof(payload), &wire, &n), 0);
	assert_int_equal(frame_reader_new(&fr), 0);
	/* A partial frame first, then a full read: the reader must hold both. */
	assert_int_equal(frame_reader_feed(fr, wire, n - 1), 0);
	assert_int_equal(frame_reader_next(fr, &p, &len), -EAGAIN);
	assert_int_equal(frame_reader_feed(fr, wire + n - 1, 1), 0);
	assert_int_equal(frame_reader_feed(fr, wire, n), 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(frame_reader_next(fr, &p, &len), 0);
		assert_int_equal(len, FRAME_PAYLOAD_MAX);
		assert_memory_equal(p, payload, len);
	}
	frame_reader_free(fr);
	free(wire);
}

/* Headers judged alone, before any payload arrives. */
static const struct {
	uint8_t hdr[4];
	int want;
} headers[] = {
    {{0, 0, 0, 0}, -EBADMSG},
    {{0, 0, 0x40, 0x01}, -EMSGSIZE}, /* FRAME_PAYLOAD_MAX + 1 */
    {{0, 1, 0, 0}, -EMSGSIZE},
    {{0x80, 0, 0, 1}, -EMSGSIZE}, /* would be negative as int32 */
    {{0xff, 0xff, 0xff, 0xff}, -EMSGSIZE},
    {{0, 0, 0x40, 0x00}, -EAGAIN}, /* FRAME_PAYLOAD_MAX: waits for its payload */
    {{0, 0, 0, 1}, -EAGAIN},
};

static void test_bad_headers(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
		struct frame_reader *fr = NULL;
		const uint8_t *p = NULL;
		size_t len = 99;

		assert_int_equal(frame_reader_new(&fr), 0);
		assert_int_equal(frame_reader_feed(fr, headers[i].hdr, 4), 0);
		assert_int_equal(frame_reader_next(fr, &p, &len), headers[i].want);
		assert_null(p);
		assert_int_equal(len, 99);
		frame_reader_free(fr);
	}
}

static void test_error_is_sticky(void **state)
{
	static const uint8_t zero[4] = {0, 0, 0, 0};
	uint8_t good[10], *wire;
	struct frame_reader *fr = NULL;
	const uint8_t *p;
	size_t n, len;

	(void)state;
	fill(good, sizeof(good), 6);
	assert_int_equal(frame_encode(good, sizeof(good), &wire, &n), 0);
	assert_int_equal(frame_reader_new(&fr), 0);
	/* A good frame, a zero header, then another good frame in the same read. */
	assert_int_equal(frame_reader_feed(fr, wire, n), 0);
	assert_int_equal(frame_reader_feed(fr, zero, 4), 0);
	assert_int_equal(frame_reader_feed(fr, wire, n), 0);
	assert_int_equal(frame_reader_next(fr, &p, &len), 0);
	assert_int_equal(frame_reader_next(fr, &p, &len), -EBADMSG);
	assert_int_equal(frame_reader_next(fr, &p, &len), -EBADMSG);
	assert_int_equal(frame_reader_feed(fr, wire, n), -EBADMSG);
	assert_int_equal(frame_reader_next(fr, &p, &len), -EBADMSG);
	frame_reader_free(fr);
	free(wire);
}

static void test_truncated_yields_nothing(void **state)
{
	uint8_t payload[50], *wire;
	struct frame_reader *fr = NULL;
	const uint8_t *p = NULL;
	size_t n, len;

	(void)state;
	fill(payload, sizeof(payload), 7);
	assert_int_equal(frame_encode(payload, sizeof(payload), &wire, &n), 0);
	for (size_t cut = 0; cut < n; cut++) {
		assert_int_equal(frame_reader_new(&fr), 0);
		assert_int_equal(frame_reader_feed(fr, wire, cut), 0);
		assert_int_equal(frame_reader_next(fr, &p, &len), -EAGAIN);
		assert_null(p);
		assert_int_equal(frame_reader_pending(fr), cut);
		frame_reader_free(fr);
	}
	free(wire);
}

static void test_feed_bounds(void **state)
{
	static uint8_t big[FRAME_READ_MAX + 1];
	struct frame_reader *fr = NULL;
	const uint8_t *p;
	size_t len;

	(void)state;
	assert_int_equal(frame_reader_new(&fr), 0);
	assert_int_equal(frame_reader_feed(fr, big, sizeof(big)), -ENOBUFS);
	assert_int_equal(frame_reader_pending(fr), 0);
	/* Not draining: the third read does not fit and nothing of it is taken. */
	big[2] = 0x40; /* length FRAME_PAYLOAD_MAX */
	assert_int_equal(frame_reader_feed(fr, big, FRAME_READ_MAX), 0);
	assert_int_equal(frame_reader_feed(fr, big, FRAME_READ_MAX), 0);
	assert_int_equal(frame_reader_feed(fr, big, 1), -ENOBUFS);
	assert_int_equal(frame_reader_pending(fr), 2 * FRAME_READ_MAX);
	assert_int_equal(frame_reader_next(fr, &p, &len), 0);
	assert_int_equal(frame_reader_next(fr, &p, &len), 0);
	assert_int_equal(frame_reader_pending(fr), 0);
	assert_int_equal(frame_reader_feed(fr, big, 1), 0);
	frame_reader_free(fr);
	frame_reader_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_encode),
	    cmocka_unit_test(test_encode_refuses_bad_lengths),
	    cmocka_unit_test(test_every_split_of_two_frames),
	    cmocka_unit_test(test_byte_at_a_time_and_one_read),
	    cmocka_unit_test(test_max_size_frame),
	    cmocka_unit_test(test_bad_headers),
	    cmocka_unit_test(test_error_is_sticky),
	    cmocka_unit_test(test_truncated_yields_nothing),
	    cmocka_unit_test(test_feed_bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
