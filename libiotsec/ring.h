/* Eschenauer-Gligor key rings (SPEC 5.3): the JSON bodies of the key-distribution messages, the
 * random choice of a ring and the intersection of two rings.
 *
 * Bodies travel inside envelopes (envelope.h signs and verifies them; this module does not):
 *   CONTROLLER_NEEDS_KEYS {"epoch":E,"pool":P,"ring":k,"share":n}
 *   CLIENT_KEYS           {"epoch":E,"keys":["<b64 wrapped>",...]}            node -> controller
 *   CLIENT_RING_KEYS      {"epoch":E,"keys":[{"i":index,"k":"<b64 wrapped>"},...]}
 *   CLIENT_RING_END       {"epoch":E,"count":N,"pool":P,"group":"<b64 wrapped>","start":S}
 *                         N: keys in all CLIENT_RING_KEYS of the ring, P: the pool's size (every
 *                         index is below it), group: the pool's group stream root (stream.h),
 *                         S: the stream epoch it starts at (e0, >= 1)
 *   CLIENT_RING_ACK       {"epoch":E}                   node -> controller: the ring is stored
 *   I_AM_ON_THE_NETWORK   {"epoch":E,"indices":[sorted unique, at least one]}, or {} before a ring
 *   CLIENT_START_SESSION  the same, plus a challenge (session.h)
 *   CLIENT_COMMON_INDEX   {"epoch":E,"indices":[the intersection, sorted, maybe empty]}, plus a
 *                         challenge and a confirmation (session.h)
 * Every key is wrapped with RSA-OAEP-SHA256 (crypto_rsa_wrap) to the recipient's certificate key
 * and base64-encoded: key material never travels in the clear, even inside a signed envelope.
 *
 * Parsing is strict: exactly the listed fields, integers only (no reals, no strings), epoch in
 * 1..RING_EPOCH_MAX, index < pool, index lists strictly ascending (so no duplicates), counts
 * within the caller's bound, each key exactly CRYPTO_KEY_LEN bytes once unwrapped. Any failure is
 * -EBADMSG (or -ENOMEM), the output is untouched and every key unwrapped so far is wiped. Build
 * functions apply the same rules to their input (-EINVAL), so we never send what a peer refuses.
 *
 * Indices ascend within one CLIENT_RING_KEYS message; the daemon checks that they also ascend
 * from one message to the next and that the total matches CLIENT_RING_END.
 *
 * Size: a body must leave room in an ENVELOPE_MAX envelope for base64 (4/3), the signed header
 * and the signature. RING_BODY_MAX is what is left with the sender sending its fingerprint (not
 * its whole certificate), 63-byte names and a signature of up to 4096 bits. A wrapped key is as
 * long as the recipient's RSA modulus, so how many keys fit depends on it, and on whether the
 * sender's certificate travels too: ask ring_keys_per_msg() (30 for RSA-2048, 20 for RSA-3072,
 * 15 for RSA-4096, a few less beside a certificate). */
#ifndef IOTSEC_RING_H
#define IOTSEC_RING_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "cert.h"
#include "crypto.h"
#include "keypool.h"

#define RING_MSG_NEEDS_KEYS    "CONTROLLER_NEEDS_KEYS"
#define RING_MSG_CLIENT_KEYS   "CLIENT_KEYS"
#define RING_MSG_RING_KEYS     "CLIENT_RING_KEYS"
#define RING_MSG_RING_END      "CLIENT_RING_END"
#define RING_MSG_RING_ACK      "CLIENT_RING_ACK"
#define RING_MSG_START_SESSION "CLIENT_START_SESSION"
#define RING_MSG_COMMON_INDEX  "CLIENT_COMMON_INDEX"
#define RING_MSG_PATH_KEY      "CONTROLLER_PATH_KEY"

#define RING_EPOCH_MAX	  UINT32_MAX
#define RING_POOL_MAX	  KEYPOOL_POOL_MAX
#define RING_SIZE_MAX	  KEYPOOL_RING_MAX /* keys in one ring, indices in one session message */
#define RING_KEYS_PER_MSG 32		   /* keys in one CLIENT_KEYS or CLIENT_RING_KEYS */
#define RING_WRAPPED_MAX  1024		   /* bytes of one wrapped key (RSA up to 8192 bits) */
#define RING_BODY_MAX	  11264		   /* bytes of compact JSON body, see above */

/* CONTROLLER_NEEDS_KEYS: pool 1..RING_POOL_MAX, ring 1..min(pool, RING_SIZE_MAX),
 * share 1..pool. */
struct ring_needs {
	uint32_t epoch, pool, ring, share;
};
int ring_needs_build(const struct ring_needs *n, json_t **ret);
int ring_needs_parse(json_t *body, struct ring_needs *ret);

/* A batch of keys (CLIENT_KEYS ignores index). Holds secrets: ring_keys_wipe() when done. */
struct ring_keys {
	uint32_t epoch;
	size_t n;
	uint32_t index[RING_KEYS_PER_MSG];
	uint8_t key[RING_KEYS_PER_MSG][CRYPTO_KEY_LEN];
};
void ring_keys_wipe(struct ring_keys *k);

/* How many keys wrapped to pub one CLIENT_KEYS or CLIENT_RING_KEYS body may carry within
 * RING_BODY_MAX (at most RING_KEYS_PER_MSG; 0 for a key too big for even one), in an envelope
 * that carries the sender's certificate of cert_len DER bytes, or only its fingerprint (0). */
size_t ring_keys_per_msg(EVP_PKEY *pub, size_t cert_len);

/* CLIENT_KEYS: k->n in 1..ring_keys_per_msg(pub, 0) (-EMSGSIZE beyond), each key wrapped to
 * pub. */
int ring_client_keys_build(const struct ring_keys *k, EVP_PKEY *pub, json_t **ret);
/* max (1..RING_KEYS_PER_MSG, else -EINVAL) bounds how many keys the body may hold. */
int ring_client_keys_parse(json_t *body, EVP_PKEY *priv, size_t max, struct ring_keys *ret);

/* CLIENT_RING_KEYS: k->n in 1..ring_keys_per_msg(pub, 0), indices strictly ascending and < pool. */
int ring_ring_keys_build(const struct ring_keys *k, uint32_t pool, EVP_PKEY *pub, json_t **ret);
/* pool (1..RING_POOL_MAX) bounds the indices, max (1..RING_KEYS_PER_MSG) the count. */
int ring_ring_keys_parse(json_t *body, EVP_PKEY *priv, uint32_t pool, size_t max,
			 struct ring_keys *ret);

/* CLIENT_RING_END: count 1..max, max at most RING_SIZE_MAX; pool 1..RING_POOL_MAX; start
 * 1..UINT32_MAX; the group root wrapped to pub (build), unwrapped with priv (parse). Both "group"
 * and "start" are required: every device of a home runs the same version. Holds a secret: wipe
 * it when done. */
struct ring_end {
	uint32_t epoch, count, pool;
	uint32_t start;		       /* e0 of the group stream */
	uint8_t group[CRYPTO_KEY_LEN]; /* its root */
};
int ring_end_build(const struct ring_end *e, EVP_PKEY *pub, json_t **ret);
int ring_end_parse(json_t *body, EVP_PKEY *priv, uint32_t max, struct ring_end *ret);

/* CLIENT_RING_ACK: the epoch of the ring stored. */
int ring_ack_build(uint32_t epoch, json_t **ret);
int ring_ack_parse(json_t *body, uint32_t *ret_epoch);

/* A device's ring indices (I_AM_ON_THE_NETWORK, CLIENT_START_SESSION: n >= 1) and the
 * intersection of two rings (CLIENT_COMMON_INDEX: n may be 0, no shared key). Indices strictly
 * ascending, < pool, at most max (1..RING_SIZE_MAX). */
struct ring_indices {
	uint32_t epoch;
	size_t n;
	uint32_t index[RING_SIZE_MAX];
};
int ring_start_build(const struct ring_indices *x, uint32_t pool, json_t **ret);
int ring_start_parse(json_t *body, uint32_t pool, size_t max, struct ring_indices *ret);
int ring_common_index_build(const struct ring_indices *x, uint32_t pool, json_t **ret);
int ring_common_index_parse(json_t *body, uint32_t pool, size_t max, struct ring_indices *ret);

/* CONTROLLER_PATH_KEY {"epoch":E,"peer":"name","k":"<b64 wrapped>"}: the key the controller
 * gives two devices whose rings share no index (SPEC 5.3: they must still get one), one message
 * per peer. The peer name is 1..CERT_NAME_MAX-1 bytes. Holds a secret: wipe it when done. */
struct ring_path_key {
	uint32_t epoch;
	char peer[CERT_NAME_MAX];
	uint8_t key[CRYPTO_KEY_LEN];
};
int ring_path_key_build(const struct ring_path_key *p, EVP_PKEY *pub, json_t **ret);
int ring_path_key_parse(json_t *body, EVP_PKEY *priv, struct ring_path_key *ret);

/* k distinct indices < pool, uniformly at random (crypto_random, no modulo bias), written to
 * ret_index in ascending order. -EINVAL unless 1 <= k <= pool <= RING_POOL_MAX and
 * k <= RING_SIZE_MAX. */
int ring_pick(uint32_t pool, size_t k, uint32_t *ret_index);

/* The sorted intersection of two strictly ascending lists, into out (room for min(na, nb)).
 * Returns its length. */
size_t ring_common(const uint32_t *a, size_t na, const uint32_t *b, size_t nb, uint32_t *out);

#endif
