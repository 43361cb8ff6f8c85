/* Replay protection per sender (SPEC 4), as IPsec and DTLS do it: every sender numbers its
 * messages with a strictly increasing sequence number, and a receiver keeps, for each sender, the
 * REPLAY_WINDOW highest numbers it accepted above a floor. A number at or below the floor, or
 * already in the window, is a replay; a new one enters the window and, once the window is full,
 * pushes its smallest number down into the floor. Nothing a sender does changes what is kept for
 * another sender, so no sender can get another's messages refused.
 *
 * A sender's state is needed only while a message of its could still pass the freshness check:
 * once the newest timestamp it sent (clamped to now + delta_t, so a timestamp from the future
 * cannot stretch it) is more than delta_t old, every message it ever sent is stale, and its state
 * may be forgotten; such senders make room when the table is full. So memory is bounded by the
 * number of devices that speak, that is by the number of enrolled devices (only authenticated
 * senders get a state); REPLAY_SENDERS_MAX caps it for a home far larger than any we expect.
 *
 * Only authenticated messages may reach replay_check(): a sender is a verified certificate's
 * name, and its numbers are under its signature. */
#ifndef IOTSEC_REPLAY_H
#define IOTSEC_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#define REPLAY_WINDOW	   64	/* messages a sender's may arrive out of order */
#define REPLAY_SENDERS_MAX 4096 /* senders remembered at once */

struct replay;
/* delta_t is the freshness window in seconds (> 0). */
int replay_new(int delta_t, struct replay **ret);
void replay_free(struct replay *r);

/* Accept (sender, seq) once. ts is the message's timestamp, already checked to be within
 * delta_t of now. 0: new, and now remembered; -IOTSEC_EREPLAY: seen, or older than the
 * sender's window; -ENOBUFS: REPLAY_SENDERS_MAX senders have all spoken within delta_t (fail
 * closed: forgetting one would let its replays through); -EINVAL for an empty or over-long
 * name. */
int replay_check(struct replay *r, const char *sender, uint64_t seq, int64_t ts, int64_t now);

/* Senders currently remembered. */
size_t replay_senders(const struct replay *r);

#endif
