/* Pairwise keys and authenticated sessions between two nodes (SPEC 5.3, 7).
 *
 * The pairwise key K of two nodes comes from every ring key they share (q-composite):
 *   K = HKDF-SHA256(salt = "iotsec pairwise v1" || be32(epoch),
 *                   ikm  = the shared keys in ascending index order, concatenated,
 *                   info = smaller name || 0x00 || larger name)
 * so both ends get the same K whatever the order they name each other in.
 *
 * A session stands on K, both names, the epoch and one fresh challenge from each end. Each
 * direction has its own keys, so nothing sealed by one end can be reflected back to it:
 *   sid          = challenge of the smaller name || challenge of the larger name
 *   send key     = HKDF(salt = sid, ikm = K, info = "iotsec send " self ">" peer)
 *   receive key  = HKDF(salt = sid, ikm = K, info = "iotsec send " peer ">" self)
 *   confirm keys = the same with "iotsec confirm "
 * The challenges make every session's keys new: K itself is the same after a restart, and
 * without them a restarted sender would reuse (key, nonce) pairs and old traffic would replay.
 *
 * A sealed message is be64(seq) || AES-256-GCM ciphertext || tag, with nonce = 4 zero bytes ||
 * be64(seq) and AAD = sender || 0x00 || receiver || be32(epoch) || be64(seq). seq starts at 1
 * and never wraps; the receiver keeps a PAIRWISE_WINDOW-entry sliding window, so mild reordering
 * is accepted and a replay or a message older than the window is not.
 *
 * Key confirmation: each end sends its challenge, and answers the peer's with
 * pairwise_confirm(); a node whose answer fails pairwise_check_confirm() is not spoken to. */
#ifndef IOTSEC_PAIRWISE_H
#define IOTSEC_PAIRWISE_H

#include <stddef.h>
#include <stdint.h>

#include "crypto.h"
#include "envelope.h"
#include "keypool.h"
#include "stream.h"

#define PAIRWISE_KEYS_MAX      KEYPOOL_RING_MAX /* shared keys feeding one pairwise key */
#define PAIRWISE_CHALLENGE_LEN 16
#define PAIRWISE_MAC_LEN       CRYPTO_SHA256_LEN
#define PAIRWISE_SEQ_LEN       8
#define PAIRWISE_OVERHEAD      (PAIRWISE_SEQ_LEN + CRYPTO_TAG_LEN) /* sealed minus plain */
#define PAIRWISE_WINDOW	       64
#define PAIRWISE_PLAINTEXT_MAX ENVELOPE_MAX /* a sealed message travels inside an envelope */

/* keys holds n (1..PAIRWISE_KEYS_MAX) keys of CRYPTO_KEY_LEN bytes back to back, in ascending
 * index order. -EINVAL for n out of range, epoch 0, a name empty or of CERT_NAME_MAX bytes or
 * more, or two equal names. */
int pairwise_derive(const uint8_t *keys, size_t n, uint32_t epoch, const char *name_a,
		    const char *name_b, uint8_t ret_key[CRYPTO_KEY_LEN]);

/* The key and stream id under which sender seals sensor readings for receiver alone (reading.h
 * kind READING_PAIR), from their pairwise key K:
 *   key = HKDF-SHA256(salt = "iotsec pair reading v1", ikm = K, info = sender || 0x00 || receiver)
 *   id  = HMAC-SHA256(K, "iotsec pair id v1" || sender || 0x00 || receiver)[0..STREAM_ID_LEN]
 * Each direction has its own key: what one end seals cannot be passed off as the other's.
 * -EINVAL on the names as for pairwise_derive(). */
int pairwise_reading_key(const uint8_t key[CRYPTO_KEY_LEN], const char *sender,
			 const char *receiver, uint8_t ret_key[CRYPTO_KEY_LEN],
			 uint8_t ret_id[STREAM_ID_LEN]);

struct pairwise_session;
/* key is the pairwise key (copied); self_challenge is a fresh crypto_random() value of ours,
 * peer_challenge the peer's. -EINVAL on the names or epoch as for pairwise_derive(). */
int pairwise_session_new(const uint8_t key[CRYPTO_KEY_LEN], uint32_t epoch, const char *self,
			 const char *peer, const uint8_t self_challenge[PAIRWISE_CHALLENGE_LEN],
			 const uint8_t peer_challenge[PAIRWISE_CHALLENGE_LEN],
			 struct pairwise_session **ret);
/* Wipes every key. */
void pairwise_session_free(struct pairwise_session *s);

/* Seal ptlen (0..PAIRWISE_PLAINTEXT_MAX, else -EMSGSIZE) bytes to the peer under the next seq;
 * out receives exactly ptlen + PAIRWISE_OVERHEAD bytes. -EOVERFLOW once seq is exhausted (make
 * a new session). */
int pairwise_seal(struct pairwise_session *s, const void *pt, size_t ptlen, uint8_t *out);

/* Open a message from the peer into out (room for inlen bytes; the plaintext is
 * inlen - PAIRWISE_OVERHEAD). -EBADMSG when truncated, seq 0, or the tag fails (wrong key,
 * direction, epoch, names or any flipped byte); -EMSGSIZE when longer than a seal can make;
 * -IOTSEC_EREPLAY for a seq already accepted or older than the window. Only an authentic message
 * moves the window. out is wiped on failure. */
int pairwise_open(struct pairwise_session *s, const uint8_t *in, size_t inlen, uint8_t *out,
		  size_t *ret_len);

/* Our answer to the peer's challenge: HMAC-SHA256 under our confirm key. */
int pairwise_confirm(const struct pairwise_session *s,
		     const uint8_t challenge[PAIRWISE_CHALLENGE_LEN],
		     uint8_t ret_mac[PAIRWISE_MAC_LEN]);
/* Check the peer's answer to our challenge in constant time: 0, or -EKEYREJECTED. */
int pairwise_check_confirm(const struct pairwise_session *s,
			   const uint8_t challenge[PAIRWISE_CHALLENGE_LEN],
			   const uint8_t mac[PAIRWISE_MAC_LEN]);

#endif
