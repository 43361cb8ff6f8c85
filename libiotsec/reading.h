/* The sealed reading (SPEC 5.6, 8): the one format sensord publishes, the relay stores without
 * reading, and the doctor's tool and page open. README "Sealed readings" documents it byte by
 * byte; integers are big-endian:
 *
 *   version u8 (1) | kind u8 | flags u8 | n u8 | device (n bytes, 1..63) | stream id (16) |
 *   epoch u32 (>= 1) | seq u64 (>= 1) | time i64 (unix ms, >= 0) | nonce (12, random) |
 *   ciphertext (1..READING_PLAIN_MAX) | tag (16)
 *
 * AES-256-GCM under the stream's key of that epoch (stream.h), the whole header (nonce
 * included) as authenticated data. The plaintext is compact JSON:
 *   {"sensor":"pulse","value":72,"unit":"/min"}           (an emergency record adds
 *   "emergency":true and "threshold":30, and sets flag bit 0). */
#ifndef IOTSEC_READING_H
#define IOTSEC_READING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cert.h"
#include "stream.h"

#define READING_VERSION	     1
#define READING_F_EMERGENCY  0x01
#define READING_NAME_MAX     63
#define READING_SENSOR_MAX   31
#define READING_UNIT_MAX     15
#define READING_PLAIN_MAX    256
#define READING_HEADER_FIXED (4 + STREAM_ID_LEN + 4 + 8 + 8 + CRYPTO_NONCE_LEN)
#define READING_MAX	     (READING_HEADER_FIXED + READING_NAME_MAX + READING_PLAIN_MAX + CRYPTO_TAG_LEN)
#define READING_WINDOW	     1024 /* seqs of one sender that may arrive out of order */
#define READING_SENDERS_MAX  1024 /* (device, stream) pairs a guard remembers */

enum reading_kind {
	READING_GROUP = 1,
	READING_DOCTOR = 2,
	READING_PAIR = 3, /* for one device alone: pairwise_reading_key() */
};

struct reading_header {
	uint8_t kind, flags;
	char device[READING_NAME_MAX + 1];
	uint8_t stream[STREAM_ID_LEN];
	uint32_t epoch;
	uint64_t seq;
	int64_t time_ms;
	uint8_t nonce[CRYPTO_NONCE_LEN]; /* reading_seal() draws it */
};

/* The plaintext. */
struct reading_value {
	char sensor[READING_SENSOR_MAX + 1];
	double value;
	char unit[READING_UNIT_MAX + 1];
	bool emergency;
	double threshold; /* emergency only */
};
/* Compact JSON of v into out (outcap bytes); -EINVAL for a bad name, unit or a value that is
 * not finite, -EMSGSIZE when it does not fit. */
int reading_value_build(const struct reading_value *v, char *out, size_t outcap, size_t *ret_len);
/* Strict: exactly the fields above, right types, nothing left over; -EBADMSG otherwise. */
int reading_value_parse(const void *in, size_t len, struct reading_value *ret);

/* Read the header only (the relay, which has no key): -EBADMSG when malformed or truncated,
 * -EMSGSIZE beyond READING_MAX. *ret_len is the header's length (the AAD). */
int reading_header_parse(const uint8_t *in, size_t len, struct reading_header *ret,
			 size_t *ret_len);

/* Seal pt (1..READING_PLAIN_MAX bytes) under h->epoch's key of s (current or previous:
 * -ENOKEY otherwise). h->stream is taken from s, h->nonce drawn here. out gets at most
 * READING_MAX bytes. */
int reading_seal(struct stream *s, struct reading_header *h, const void *pt, size_t ptlen,
		 uint8_t *out, size_t outcap, size_t *ret_len);
/* Open with s: -EBADMSG malformed or tag wrong, -IOTSEC_ESTALE for an epoch older than s's
 * previous, -ENOKEY for one newer than s's current, -IOTSEC_ETYPE for another stream id.
 * out gets the plaintext (room for READING_PLAIN_MAX), wiped on failure. */
int reading_open(struct stream *s, const uint8_t *in, size_t len, struct reading_header *ret_h,
		 uint8_t *out, size_t *ret_len);

/* What a reader has accepted: freshness and replay per (device, stream). */
struct reading_guard;
int reading_guard_new(int64_t fresh_ms, struct reading_guard **ret);
void reading_guard_free(struct reading_guard *g);
/* An opened reading: -IOTSEC_ESTALE when |now_ms - h->time_ms| > fresh_ms, -IOTSEC_EREPLAY when
 * its seq was accepted before or is below the sender's window, -ENOBUFS when full of senders
 * all seen within fresh_ms. 0 accepts and remembers it. */
int reading_guard_check(struct reading_guard *g, const struct reading_header *h, int64_t now_ms);

#endif
