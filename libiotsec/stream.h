/* Stream keys that advance with time, without a message (SPEC 8).
 *
 * A schedule (start, interval) turns a time into an epoch: epoch(t) = 0 before start, else
 * (t - start) / interval + 1. A stream is a root and the epoch e0 it starts at: the root is the
 * key of epoch e0 - 1, and
 *   K_e = HKDF-SHA256(salt = "iotsec stream v1", ikm = K_{e-1}, info = be32(e))
 * so a holder of K_e can compute every later key and none before it. A holder keeps the current
 * and the previous key (a reader accepts both) and wipes every older one as the chain moves.
 *
 * Every stream is named by its id, 16 bytes that reveal nothing of the key:
 *   id = HMAC-SHA256(key = root, "iotsec stream id v1")[0..16]
 * the pseudonym under which the relay files a doctor stream (SPEC 9). */
#ifndef IOTSEC_STREAM_H
#define IOTSEC_STREAM_H

#include <stdbool.h>
#include <stdint.h>

#include "crypto.h"

#define STREAM_ID_LEN	   16
#define STREAM_ADVANCE_MAX (1u << 24) /* epochs one advance may cross */

struct stream_schedule {
	int64_t start;	  /* unix seconds */
	int64_t interval; /* seconds, >= 1 */
};
/* The epoch of time t (unix seconds) under s: 0 before s->start. */
uint32_t stream_epoch(const struct stream_schedule *s, int64_t t);
/* When epoch e begins (unix seconds); e >= 1. */
int64_t stream_epoch_start(const struct stream_schedule *s, uint32_t e);

/* K_e from K_{e-1}. */
int stream_next_key(const uint8_t prev[CRYPTO_KEY_LEN], uint32_t e, uint8_t ret[CRYPTO_KEY_LEN]);
/* The key of epoch e (>= e0) of the stream (root, e0): what the doctor, who keeps the root,
 * computes. -ERANGE for e < e0 or more than STREAM_ADVANCE_MAX epochs past e0. */
int stream_key_at(const uint8_t root[CRYPTO_KEY_LEN], uint32_t e0, uint32_t e,
		  uint8_t ret[CRYPTO_KEY_LEN]);
int stream_id(const uint8_t root[CRYPTO_KEY_LEN], uint8_t ret[STREAM_ID_LEN]);

/* A holder's view of one stream: its id and the keys of epoch and epoch - 1, each with a
 * reusable AES-256-GCM context (crypto_aead). Wipes its keys when freed. */
struct stream;
/* Start from a root: the holder is at epoch e0 - 1 with the root as its key, and no previous;
 * stream_advance() moves it on. e0 >= 1. The root is copied; the caller wipes its own. The root
 * itself never seals nor opens a reading (the doctor computes keys from e0 on): stream_aead()
 * has nothing for e0 - 1, and the first advance keeps no previous key. */
int stream_from_root(const uint8_t root[CRYPTO_KEY_LEN], uint32_t e0, struct stream **ret);
/* Resume at epoch with key (and prev, the key of epoch - 1, or NULL), as saved or as a
 * neighbour gave it (resync). */
int stream_from_key(const uint8_t id[STREAM_ID_LEN], uint32_t epoch,
		    const uint8_t key[CRYPTO_KEY_LEN], const uint8_t *prev, struct stream **ret);
void stream_free(struct stream *s);

/* Move to epoch e, wiping every key older than e - 1. e equal to the current epoch: nothing to
 * do. -ERANGE for e below the current epoch or more than STREAM_ADVANCE_MAX ahead. */
int stream_advance(struct stream *s, uint32_t e);
uint32_t stream_current(const struct stream *s);
const uint8_t *stream_get_id(const struct stream *s);
/* The AEAD of epoch e: the current or the previous epoch, else NULL. */
struct crypto_aead *stream_aead(struct stream *s, uint32_t e);
/* The raw key of the current epoch (or its previous, prev true; NULL when there is none), to
 * save or to wrap to a neighbour. Borrowed. */
const uint8_t *stream_key(const struct stream *s, bool prev);

#endif
