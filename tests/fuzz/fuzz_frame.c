/* libFuzzer target: the frame reader fed arbitrary bytes in arbitrary splits. The first input byte
 * seeds the split sizes; the rest is the stream. Whatever the split, the reader must hand out
 * exactly the frames (and the error, and the leftover) that a plain walk over the whole stream
 * finds: anything else aborts. */
#include <endian.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The reference: walk the whole stream at once. Returns the error (0 or -EAGAIN at the end);
 * *ret_frames counts the complete frames before it, *ret_off is where parsing stopped. */
static int walk(const uint8_t *p, size_t n, size_t *ret_frames, size_t *ret_off)
{
	size_t off = 0, frames = 0;
	int r = -EAGAIN;

	while (n - off >= FRAME_HEADER_LEN) {
		uint32_t be, len;

		memcpy(&be, p + off, 4);
		len = be32toh(be);
		if (len == 0 || len > FRAME_PAYLOAD_MAX) {
			r = len == 0 ? -EBADMSG : -EMSGSIZE;
			break;
		}
		if (n - off - FRAME_HEADER_LEN < len)
			break;
		off += FRAME_HEADER_LEN + len;
		frames++;
	}
	*ret_frames = frames;
	*ret_off = off;
	return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct frame_reader *fr = NULL;
	size_t want_frames, want_off, frames = 0, off = 0, pos = 0;
	uint32_t rng;
	int want, r = -EAGAIN;

	if (size < 1)
		return 0;
	rng = data[0] * 2654435761u + 1;
	data++, size--;
	want = walk(data, size, &want_frames, &want_off);
	if (frame_reader_new(&fr) < 0)
		abort();
	while (pos < size && r == -EAGAIN) {
		const uint8_t *p;
		size_t chunk, len;

		rng ^= rng << 13, rng ^= rng >> 17, rng ^= rng << 5;
		/* Mostly small splits, sometimes a full read. */
		chunk = rng % 8 == 0 ? FRAME_READ_MAX : 1 + rng % 64;
		if (chunk > size - pos)
			chunk = size - pos;
		if (frame_reader_feed(fr, data + pos, chunk) < 0)
			abort(); /* drained every time: a feed of this size always fits */
		pos += chunk;
		while ((r = frame_reader_next(fr, &p, &len)) == 0) {
			/* Each frame is the next one of the stream, byte for byte. */
			if (len == 0 || len > FRAME_PAYLOAD_MAX ||
			    off + FRAME_HEADER_LEN + len > size ||
			    memcmp(p, data + off + FRAME_HEADER_LEN, len) != 0)
				abort();
			off += FRAME_HEADER_LEN + len;
			frames++;
		}
	}
	if (r != want || frames != want_frames || off != want_off)
		abort();
	if (r == -EAGAIN && frame_reader_pending(fr) != size - off)
		abort();
	/* After an error, nothing more ever comes out. */
	if (r < 0 && r != -EAGAIN) {
		const uint8_t *p;
		size_t len;

		if (frame_reader_feed(fr, data, size < 8 ? size : 8) != r ||
		    frame_reader_next(fr, &p, &len) != r)
			abort();
	}
	frame_reader_free(fr);
	return 0;
}
