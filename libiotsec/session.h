/* A pairwise session between two devices (SPEC 5.3, 7), as a state machine with no I/O: bodies
 * in, bodies out, and a key lookup the caller makes in between (the keys live in dictd).
 *
 *   initiator                                   responder
 *   session_initiate() -> CLIENT_START_SESSION  -> session_respond()
 *                                                  session_lookup(): keys to fetch
 *                                                  session_keyed() -> CLIENT_COMMON_INDEX
 *   session_on_common() <-
 *   session_lookup(): keys to fetch
 *   session_keyed() -> MESSAGE_ENC_DATA          -> session_on_data(): the text
 *
 * Bodies (inside signed, recipient-bound envelopes):
 *   CLIENT_START_SESSION {"epoch","indices":[our ring, >= 1],"challenge":b64 16}
 *   CLIENT_COMMON_INDEX  {"epoch","indices":[the shared ones, maybe none],"challenge","confirm"}
 *   MESSAGE_ENC_DATA     {"epoch","confirm":b64 32,"data":b64 sealed text}
 * Each end sends a fresh challenge and answers the other's with pairwise_confirm() over the
 * pairwise key, so a device that cannot prove it holds the key gets no data, and one that
 * receives data knows the sender holds it too. The pairwise key comes from every ring key the two
 * share or, when they share none, from the path key the controller gave both (SESSION_PATH). */
#ifndef IOTSEC_SESSION_H
#define IOTSEC_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "pairwise.h"
#include "ring.h"

#define SESSION_MSG_DATA "MESSAGE_ENC_DATA"
#define SESSION_TEXT_MAX 1024 /* bytes of one message's text */

struct session;

/* Initiator: a session with peer to send text (1..SESSION_TEXT_MAX bytes), from our ring (n
 * indices, ascending, < pool) of epoch. *ret_body is CLIENT_START_SESSION. */
int session_initiate(uint32_t epoch, uint32_t pool, const char *self, const char *peer,
		     const uint32_t *ring, size_t n, const char *text, size_t len,
		     struct session **ret, json_t **ret_body);
/* Responder: a CLIENT_START_SESSION from peer. -EBADMSG when malformed, -IOTSEC_EEPOCH for
 * another epoch than ours. */
int session_respond(json_t *body, uint32_t epoch, uint32_t pool, const char *self, const char *peer,
		    const uint32_t *ring, size_t n, struct session **ret);
/* Initiator: the peer's CLIENT_COMMON_INDEX. -EBADMSG when malformed or naming an index we do
 * not hold, -IOTSEC_EEPOCH for another epoch. */
int session_on_common(struct session *s, json_t *body);
/* Which keys the pairwise key needs: *ret_n ring indices (the keys of our ring record), or, when
 * *ret_n is 0, the path key for the peer. Valid after session_respond() or session_on_common(). */
void session_lookup(const struct session *s, const uint32_t **ret_index, size_t *ret_n);
/* The keys asked for by session_lookup() (n of them, or 1 path key), back to back. Responder:
 * *ret_body is CLIENT_COMMON_INDEX. Initiator: checks the responder's proof (-EKEYREJECTED) and
 * *ret_body is MESSAGE_ENC_DATA with the text. */
int session_keyed(struct session *s, const uint8_t *keys, size_t n, json_t **ret_body);
/* Responder: MESSAGE_ENC_DATA; the text (len bytes, NUL-terminated) into text, which holds
 * SESSION_TEXT_MAX + 1. -EKEYREJECTED without a valid proof, -EBADMSG when it does not open. */
int session_on_data(struct session *s, json_t *body, char *text, size_t *ret_len);
/* Wipes every key. NULL is allowed. */
void session_free(struct session *s);

#endif
