#include "frame.h"

#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* One partial frame left over after draining, plus one full read. */
#define FRAME_BUF_LEN (2 * FRAME_READ_MAX)

struct frame_reader {
	size_t start, end; /* unparsed bytes are buf[start..end) */
	int error;	   /* sticky: once the stream is out of step it stays refused */
	uint8_t buf[FRAME_BUF_LEN];
};

int frame_encode(const void *payload, size_t len, uint8_t **ret, size_t *ret_len)
{
	uint32_t be;
	uint8_t *out;

	if (len == 0)
		return -EINVAL;
	if (len > FRAME_PAYLOAD_MAX)
		return -EMSGSIZE;
	if ((out = malloc(FRAME_HEADER_LEN + len)) == NULL)
		return -ENOMEM;
	be = htobe32((uint32_t)len);
	memcpy(out, &be, FRAME_HEADER_LEN);
	memcpy(out + FRAME_HEADER_LEN, payload, len);
	*ret = out;
	*ret_len = FRAME_HEADER_LEN + len;
	return 0;
}

int frame_reader_new(struct frame_reader **ret)
{
	struct frame_reader *fr = calloc(1, sizeof(*fr));

	if (fr == NULL)
		return -ENOMEM;
	*ret = fr;
	return 0;
}

void frame_reader_free(struct frame_reader *fr)
{
	free(fr);
}

int frame_reader_feed(struct frame_reader *fr, const void *buf, size_t len)
{
	if (fr->error < 0)
		return fr->error;
	if (len > FRAME_READ_MAX || len > FRAME_BUF_LEN - (fr->end - fr->start))
		return -ENOBUFS;
	/* Frames handed out before this call are no longer referenced: compact now. */
	if (fr->start > 0) {
		memmove(fr->buf, fr->buf + fr->start, fr->end - fr->start);
		fr->end -= fr->start;
		fr->start = 0;
	}
	if (len > 0)
		memcpy(fr->buf + fr->end, buf, len);
	fr->end += len;
	return 0;
}

int frame_reader_next(struct frame_reader *fr, const uint8_t **ret, size_t *ret_len)
{
	size_t avail = fr->end - fr->start;
	uint32_t be, len;

	if (fr->error < 0)
		return fr->error;
	if (avail < FRAME_HEADER_LEN)
		return -EAGAIN;
	memcpy(&be, fr->buf + fr->start, FRAME_HEADER_LEN);
	len = be32toh(be);
	/* Judge the header before waiting for a payload that may never fit. */
	if (len == 0)
		fr->error = -EBADMSG;
	else if (len > FRAME_PAYLOAD_MAX)
		fr->error = -EMSGSIZE;
	if (fr->error < 0)
		return fr->error;
	if (avail - FRAME_HEADER_LEN < len)
		return -EAGAIN;
	*ret = fr->buf + fr->start + FRAME_HEADER_LEN;
	*ret_len = len;
	fr->start += FRAME_HEADER_LEN + len;
	return 0;
}

size_t frame_reader_pending(const struct frame_reader *fr)
{
	return fr->end - fr->start;
}
