/* libFuzzer target: arbitrary bytes as a sealed reading (reading.h), as the plaintext inside
 * one, and as a plaintext to seal. The stream is fixed (root 0x42..., e0 1, at epoch 7), so the
 * seeds in corpus/reading/ are real readings the fuzzer mutates past the header checks.
 *
 * Nothing may crash or leak, and:
 *   - a header that parses has every field in range and is as long as its name says; a refused
 *     one leaves the outputs as they were;
 *   - a reading that opens is one of the stream's epochs, its plaintext as long as the bytes
 *     say; a refused one leaves the plaintext buffer wiped;
 *   - a plaintext that parses builds again to text that parses to the same value, and that
 *     text is a fixed point of parse and build;
 *   - any 1..READING_PLAIN_MAX bytes seal and open back to themselves, and the guard accepts
 *     that reading once. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ca.h"
#include "log.h"
#include "reading.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define EPOCH 7

static struct stream *stream;

static struct stream *get_stream(void)
{
	uint8_t root[CRYPTO_KEY_LEN];

	if (stream != NULL)
		return stream;
	memset(root, 0x42, sizeof(root));
	if (stream_from_root(root, 1, &stream) < 0 || stream_advance(stream, EPOCH) < 0)
		abort();
	return stream;
}

static bool same_value(const struct reading_value *a, const struct reading_value *b)
{
	return strcmp(a->sensor, b->sensor) == 0 && strcmp(a->unit, b->unit) == 0 &&
	       a->value == b->value && a->emergency == b->emergency &&
	       (!a->emergency || a->threshold == b->threshold);
}

static void check_value(const uint8_t *data, size_t size)
{
	struct reading_value v, v2, poison;
	char text[READING_PLAIN_MAX], text2[READING_PLAIN_MAX];
	size_t len = 0, len2 = 0;

	memset(&v, 0xa5, sizeof(v));
	poison = v;
	if (reading_value_parse(data, size, &v) < 0) {
		if (memcmp(&v, &poison, sizeof(v)) != 0)
			abort();
		return;
	}
	if (reading_value_build(&v, text, sizeof(text), &len) < 0 ||
	    reading_value_parse(text, len, &v2) < 0 || !same_value(&v, &v2) ||
	    reading_value_build(&v2, text2, sizeof(text2), &len2) < 0 || len != len2 ||
	    memcmp(text, text2, len) != 0)
		abort();
}

static void check_reading(const uint8_t *data, size_t size)
{
	struct reading_header h, h2, poison;
	uint8_t pt[READING_PLAIN_MAX];
	size_t hlen = 0, ptlen = 0;
	int r;

	memset(&h, 0xa5, sizeof(h));
	poison = h;
	if (reading_header_parse(data, size, &h, &hlen) < 0) {
		if (memcmp(&h, &poison, sizeof(h)) != 0 || hlen != 0)
			abort();
	} else if (hlen != READING_HEADER_FIXED + strlen(h.device) || data[3] != strlen(h.device) ||
		   !ca_name_valid(h.device) || h.kind < READING_GROUP || h.kind > READING_PAIR ||
		   (h.flags & ~READING_F_EMERGENCY) || h.epoch == 0 || h.seq == 0 ||
		   h.time_ms < 0 || size < hlen + 1 + CRYPTO_TAG_LEN ||
		   size > hlen + READING_PLAIN_MAX + CRYPTO_TAG_LEN) {
		abort();
	}
	memset(pt, 0xa5, sizeof(pt));
	r = reading_open(get_stream(), data, size, &h2, pt, &ptlen);
	if (r < 0) {
		for (size_t i = 0; i < sizeof(pt); i++)
			if (pt[i] != 0)
				abort();
		return;
	}
	if ((h2.epoch != EPOCH && h2.epoch != EPOCH - 1) || ptlen + hlen + CRYPTO_TAG_LEN != size ||
	    memcmp(h2.stream, stream_get_id(get_stream()), STREAM_ID_LEN) != 0)
		abort();
	check_value(pt, ptlen);
}

/* The input as the plaintext of a reading: it seals, opens back, and passes the guard once. */
static void check_seal(const uint8_t *data, size_t size)
{
	struct reading_header h = {.kind = READING_GROUP,
				   .epoch = EPOCH,
				   .seq = 1,
				   .time_ms = 1000},
			      got;
	uint8_t out[READING_MAX], pt[READING_PLAIN_MAX];
	struct reading_guard *g = NULL;
	size_t len = 0, ptlen = 0;

	if (size == 0 || size > READING_PLAIN_MAX)
		return;
	memcpy(h.device, "pi1", 4);
	if (reading_seal(get_stream(), &h, data, size, out, sizeof(out), &len) < 0 ||
	    reading_open(get_stream(), out, len, &got, pt, &ptlen) < 0 || ptlen != size ||
	    memcmp(pt, data, size) != 0 || reading_guard_new(1000, &g) < 0 ||
	    reading_guard_check(g, &got, 1000) != 0 ||
	    reading_guard_check(g, &got, 1000) != -IOTSEC_EREPLAY)
		abort();
	reading_guard_free(g);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_reading(data, size);
	check_value(data, size);
	check_seal(data, size);
	return 0;
}
