/* Sharing the home's key pool (SPEC 5.3), as state machines with no I/O: the controller's cycle
 * (collect contributions, build the pool, give out rings until each is confirmed) and a device's
 * intake of the ring it is given. keyd moves the messages and talks to dictd; everything it
 * decides comes from here.
 *
 * Epochs. Every pool has an epoch, and epochs only go up: a controller starts its pool above the
 * highest epoch it ever used (keyd keeps that across restarts) and above the highest epoch the
 * home's devices announce, as long as that is less than KEYSHARE_EPOCH_JUMP above ours and above
 * the lowest epoch a device holds. A device takes a ring of its current epoch or a later one, never
 * an earlier one, and never one more than KEYSHARE_EPOCH_JUMP above the highest it ever took (or,
 * before its first, above what the other devices announce); once a ring is stored every other epoch
 * is cancelled. So every device at the controller's epoch takes its next pool, and no device, not
 * even one elected controller for a while, can move the home to the top of the counter, where no
 * pool could follow: each pool gains at most the jump.
 *
 * The controller's cycle:
 *   COLLECTING  every device heard from is asked (CONTROLLER_NEEDS_KEYS) for its share of fresh
 *               keys, and contributes once (CLIENT_KEYS), at most its share;
 *   STORING     keyshare_build(): every contributed key is mixed with a secret of the
 *               controller's (no contributor knows a pool key), the rest is drawn at random, and
 *               the controller's own ring is chosen; so is the home's group root (stream.h), a
 *               random key that starts the group stream at the stream epoch of the build; keyd
 *               stores the ring and the root in dictd;
 *   READY       keyshare_stored(0): every device heard from gets a ring (CLIENT_RING_KEYS...,
 *               CLIENT_RING_END, with the group root), which counts only once the device confirms
 * it (CLIENT_RING_ACK naming the delivery); a device that announces another epoch, or whose
 * delivery did not finish, is given its ring again, but not more often than once per deliver_ms,
 * whatever it says. A store that failed sends the cycle back to COLLECTING (keyd tries again after
 * collect_ms). Devices excluded (a rekey leaving them out) are neither asked nor given anything. */
#ifndef IOTSEC_KEYSHARE_H
#define IOTSEC_KEYSHARE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cert.h"
#include "crypto.h"
#include "envelope.h"
#include "ring.h"

#define KEYSHARE_EPOCH_JUMP  65536 /* epochs a home may move on while a device is away */
#define KEYSHARE_DEVICES_MAX 256

/* An epoch we believe, announced or in a ring: not more than KEYSHARE_EPOCH_JUMP above ours. */
bool keyshare_credible(uint32_t ours, uint32_t announced);
/* The epoch of a new pool: one above the larger of ours and announced, announced counting only
 * when it is less than KEYSHARE_EPOCH_JUMP above ours (so the result is at most the jump above
 * ours); 0 when the counter is exhausted. */
uint32_t keyshare_next_epoch(uint32_t ours, uint32_t announced);

/* The key two devices whose rings share no index are given, from the epoch's path secret. The
 * same whatever order the names come in. */
int keyshare_path_key(const uint8_t secret[CRYPTO_KEY_LEN], uint32_t epoch, const char *a,
		      const char *b, uint8_t out[CRYPTO_KEY_LEN]);

/* ---- the controller's cycle ---- */

enum keyshare_state {
	KEYSHARE_COLLECTING,
	KEYSHARE_STORING,
	KEYSHARE_READY,
};

struct keyshare_device {
	char name[CERT_NAME_MAX];
	bool excluded, asked, contributed, confirmed;
	uint64_t delivering_until; /* ms; 0: no delivery under way */
	uint64_t delivered_at;	   /* ms, of the latest delivery; valid once delivered is set */
	bool delivered;
	char delivery[ENVELOPE_ID_MAX + 1]; /* of the ask, then of the latest delivery */
	uint32_t ring[RING_SIZE_MAX];
	size_t n_ring; /* 0 until its ring is picked */
};

struct keyshare {
	enum keyshare_state state;
	uint32_t epoch, pool, ring;
	uint64_t deliver_ms;
	uint8_t (*keys)[CRYPTO_KEY_LEN]; /* the pool: wiped with the cycle */
	size_t contributed;
	uint8_t path_secret[CRYPTO_KEY_LEN];
	/* The group stream of this pool (stream.h), once built: its root and the stream epoch e0
	 * it starts at (>= 1). Wiped with the cycle. */
	uint8_t group[CRYPTO_KEY_LEN];
	uint32_t group_start;
	uint32_t own[RING_SIZE_MAX]; /* the controller's ring, once built */
	struct keyshare_device *dev;
	size_t n_dev;
};

/* A cycle for a pool of epoch with pool keys and rings of ring keys. A delivery not confirmed
 * within deliver_ms may be made again. */
int keyshare_new(uint32_t epoch, uint32_t pool, uint32_t ring, uint64_t deliver_ms,
		 struct keyshare **ret);
/* Wipes the pool and every secret. NULL is allowed. */
void keyshare_free(struct keyshare *ks);
/* The record of a device, made on first use; NULL when KEYSHARE_DEVICES_MAX are known. */
struct keyshare_device *keyshare_device(struct keyshare *ks, const char *name);
const struct keyshare_device *keyshare_find(const struct keyshare *ks, const char *name);

enum keyshare_action {
	KEYSHARE_NOTHING,
	KEYSHARE_ASK,	  /* send CONTROLLER_NEEDS_KEYS; keyshare_share() says how many */
	KEYSHARE_DELIVER, /* keyshare_deliver(), then send the ring */
};
/* A device was heard from (I_AM_ON_THE_NETWORK with epoch announced, 0 for none): what to do
 * for it at now (ms). */
enum keyshare_action keyshare_on_seen(struct keyshare *ks, struct keyshare_device *d,
				      uint32_t announced, uint64_t now);
/* How many keys to ask each device for, in a home of `devices` (ours included). */
uint32_t keyshare_share(const struct keyshare *ks, size_t devices);
/* Whether d may contribute now, to the ask of this id: check before unwrapping anything. */
bool keyshare_may_contribute(const struct keyshare *ks, const struct keyshare_device *d,
			     const char *id);
/* CLIENT_KEYS from d: -EPERM when not collecting, not asked or already given, -IOTSEC_EEPOCH for
 * another epoch. At most share keys are taken. */
int keyshare_on_keys(struct keyshare *ks, struct keyshare_device *d, const struct ring_keys *k,
		     uint32_t share);
/* Collection over: build the pool and our own ring (ks->own, ks->ring keys; keyshare_key()
 * gives each key), and draw the group root (ks->group), whose stream starts at group_start (the
 * stream epoch now, at least 1: -EINVAL for 0). COLLECTING -> STORING. */
int keyshare_build(struct keyshare *ks, uint32_t group_start);
/* Our ring was stored (r 0: STORING -> READY) or not (-> COLLECTING, the pool and the group
 * root wiped). */
void keyshare_stored(struct keyshare *ks, int r);
/* The key at index of the pool (READY or STORING). */
const uint8_t *keyshare_key(const struct keyshare *ks, uint32_t index);
/* Start a delivery to d at now: its ring (picked once per epoch) and a new delivery id. */
int keyshare_deliver(struct keyshare *ks, struct keyshare_device *d, uint64_t now);
/* CLIENT_RING_ACK from d: 0 when it confirms d's delivery under way, -IOTSEC_EDELIVERY for
 * another delivery, -IOTSEC_EEPOCH for another epoch. */
int keyshare_on_ack(struct keyshare *ks, struct keyshare_device *d, uint32_t epoch, const char *id);

/* ---- a device's intake of its ring ---- */

/* A ring arriving on one link: CLIENT_RING_KEYS pieces, then CLIENT_RING_END, all of one
 * delivery. Holds keys: intake_wipe() when done. */
struct intake {
	char id[ENVELOPE_ID_MAX + 1]; /* "" before the first piece */
	uint32_t epoch, pool;
	uint32_t group_start; /* with the group root, once the end came */
	uint8_t group[CRYPTO_KEY_LEN];
	size_t n;
	uint32_t index[RING_SIZE_MAX];
	uint8_t key[RING_SIZE_MAX][CRYPTO_KEY_LEN];
};
/* One piece of delivery id. held is the epoch of the ring we hold (0: none), home the highest
 * epoch we know the home has reached (the highest we ever took, or what other devices announce;
 * 0: none yet): a ring of an earlier epoch than held, or of one further ahead of home than
 * KEYSHARE_EPOCH_JUMP, is refused (-IOTSEC_EEPOCH). A piece of another delivery than the first
 * (-IOTSEC_EDELIVERY), of another epoch, with indices not ascending from the last piece's, or past
 * RING_SIZE_MAX is refused (-EBADMSG). A refused piece changes nothing. */
int intake_piece(struct intake *in, const char *id, uint32_t held, uint32_t home,
		 const struct ring_keys *k);
/* The end of delivery id: 0 when the ring is whole (as many keys as it says, every index below
 * its pool) and the end carries a group stream (start >= 1); in then holds it, with the group
 * root. */
int intake_end(struct intake *in, const char *id, const struct ring_end *e);
void intake_wipe(struct intake *in);

#endif
