/* Length-prefixed frames for TCP unicast between devices (SPEC 4).
 *
 * On the wire a frame is a 4-byte big-endian payload length followed by the payload (an envelope).
 * The length must be 1..FRAME_PAYLOAD_MAX: a zero length is -EBADMSG, a longer one -EMSGSIZE, and
 * either means the stream can no longer be trusted to be in step: the caller drops the connection.
 *
 * The reader takes whatever read() returned, split anywhere, several frames at once, and hands
 * complete frames out one at a time. Its buffer is bounded: read at most FRAME_READ_MAX bytes per
 * frame_reader_feed() and drain with frame_reader_next() until -EAGAIN before the next read.
 *
 *	while ((n = read(fd, buf, sizeof(buf))) > 0) {	// sizeof(buf) <= FRAME_READ_MAX
 *		if ((r = frame_reader_feed(fr, buf, n)) < 0)
 *			goto drop;
 *		while ((r = frame_reader_next(fr, &msg, &len)) == 0)
 *			handle(msg, len);
 *		if (r != -EAGAIN)
 *			goto drop;
 *	}
 *	// at EOF, frame_reader_pending(fr) != 0 means the peer sent a truncated frame */
#ifndef IOTSEC_FRAME_H
#define IOTSEC_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "envelope.h"

#define FRAME_HEADER_LEN  4
#define FRAME_PAYLOAD_MAX ENVELOPE_MAX
#define FRAME_READ_MAX	  (FRAME_HEADER_LEN + FRAME_PAYLOAD_MAX) /* per frame_reader_feed() */

/* Prefix payload with its length. *ret is malloc'd (len + FRAME_HEADER_LEN bytes). -EINVAL for an
 * empty payload, -EMSGSIZE for one longer than FRAME_PAYLOAD_MAX. */
int frame_encode(const void *payload, size_t len, uint8_t **ret, size_t *ret_len);

struct frame_reader;
int frame_reader_new(struct frame_reader **ret);
void frame_reader_free(struct frame_reader *fr);

/* Append received bytes. -ENOBUFS (nothing taken) when the caller did not drain complete frames
 * or fed more than FRAME_READ_MAX at once; after a framing error, that error again. */
int frame_reader_feed(struct frame_reader *fr, const void *buf, size_t len);

/* The next complete frame's payload: *ret points into the reader and stays valid until the next
 * frame_reader_feed() or frame_reader_free(). -EAGAIN when no complete frame is buffered yet;
 * -EBADMSG (zero length) or -EMSGSIZE (too long) as soon as a bad header is seen, and then the
 * same error for every later call: nothing after a bad header is ever parsed. */
int frame_reader_next(struct frame_reader *fr, const uint8_t **ret, size_t *ret_len);

/* Bytes buffered that are not yet a complete frame (non-zero at EOF: a truncated frame). */
size_t frame_reader_pending(const struct frame_reader *fr);

#endif
