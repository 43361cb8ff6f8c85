/* The kit's spool (SPEC 9): sealed readings waiting for the broker (and later the relay's
 * receipt), kept on disk so that a broker outage, a network outage or a restart of sensord loses
 * none, drained in order, and bounded, with a count of what was ever dropped.
 *
 * A directory holds `log`, a 16-byte header ("ISPOOL01", u64 id of its first record) then
 * records appended as  u32 length | u32 check | payload  (big-endian; check: the first four bytes
 * of SHA-256 of the payload; a torn or corrupt tail is cut at the first bad record when the spool
 * opens), and `head`, "HEAD DROPPED\n": the id of the first record not yet acknowledged and the
 * count ever dropped (written atomically). Records are numbered from 1 in the order appended.
 * Appends and acknowledgements reach the disk at the next sync point: an append sync_ms or more
 * after the last one (0: every append), spool_flush(), spool_close(); a caller appending in
 * bursts flushes from a timer. What is acknowledged is forgotten, and the log is rewritten
 * without it once the forgotten part is more than half the file (and at least 64 KiB). A spool
 * spanning max records (from the head to the last) drops its oldest waiting one to take a new one
 * and counts it. The spool holds no secret (every payload is sealed). */
#ifndef IOTSEC_SPOOL_H
#define IOTSEC_SPOOL_H

#include <stddef.h>
#include <stdint.h>

#define SPOOL_RECORD_MAX 4096 /* bytes of one payload */

struct spool;
/* Open (creating, mode 0700 for dir and 0600 for files) the spool in dir. */
int spool_open(const char *dir, size_t max, unsigned sync_ms, struct spool **ret);
/* Flush and close; NULL is allowed. */
void spool_close(struct spool *sp);

/* Append one payload (1..SPOOL_RECORD_MAX bytes); *ret_id its id. now_ms decides whether the
 * fdatasync is due. */
int spool_append(struct spool *sp, const void *data, size_t len, uint64_t now_ms, uint64_t *ret_id);
int spool_flush(struct spool *sp);

/* The first record after `after` (0: from the head) still waiting: its id and a borrowed
 * pointer valid until the next call on the spool. -ENOENT when none. */
int spool_next(struct spool *sp, uint64_t after, uint64_t *ret_id, const uint8_t **ret_data,
	       size_t *ret_len);
/* Record id was delivered: acknowledgements may come in any order; the head moves past every
 * delivered record at its front. Unknown or already acknowledged ids: -ENOENT. */
int spool_ack(struct spool *sp, uint64_t id);

/* Records waiting, and records ever dropped because the spool was full (kept in `head`). */
size_t spool_pending(const struct spool *sp);
uint64_t spool_dropped(const struct spool *sp);

#endif
