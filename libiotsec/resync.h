/* Neighbour resynchronization (SPEC 8): a device that lost its place (off across several
 * epochs, or its clock back at 1970) asks its one-hop peers, not the controller.
 *
 *   SYNC_RQA    broadcast  {"nonce":"<b64 16>"}
 *   SYNC_RPA    unicast    {"nonce", "synced":true|false, "epoch":E}   to the requester
 *   SYNC_ACK    unicast    {"nonce"}                                    to the chosen peer
 *   SYNC_STATE  unicast    {"nonce", "time":unix ms, "start", "interval", "epoch", "pool",
 *                           "stream":"<b64 16>", "key":"<b64 K_epoch wrapped to the requester>"}
 * Unicasts carry the nonce's hex as their delivery id. All four are any_time envelopes
 * (envelope.h): a requester at 1970 cannot judge a timestamp, so the echoed nonce, fresh for each
 * request, is what makes an answer fresh. Parsing is strict (exactly these fields, right types,
 * epochs and pool >= 1, interval >= 1, times >= 0, the wrapped key no longer than
 * RING_WRAPPED_MAX); only an RPA that is not synced may say epoch 0 (it may know none).
 *
 * The requester's side is a state machine with no I/O, like election.c: events in, one action
 * out. IDLE -> ASKING (RQA sent; answers collected for collect_ms) -> ACKED (ACK sent to the
 * synced peer with the highest epoch; the first such answer wins a tie; its STATE expected
 * within collect_ms, else the next synced peer, else ask again) -> DONE. "Highest" is bounded:
 * only an epoch within one above the lower median of all answers is chosen (below it only when
 * none is left), so one lying peer cannot win by naming a far epoch. After `tries` requests
 * with no usable answer: FAILED (the daemon keeps its own clock and says so). Answers that are
 * not synced, name another nonce, or come from a peer not asked are ignored. */
#ifndef IOTSEC_RESYNC_H
#define IOTSEC_RESYNC_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "cert.h"
#include "crypto.h"
#include "stream.h"

#define RESYNC_MSG_RQA	 "SYNC_RQA"
#define RESYNC_MSG_RPA	 "SYNC_RPA"
#define RESYNC_MSG_ACK	 "SYNC_ACK"
#define RESYNC_MSG_STATE "SYNC_STATE"
#define RESYNC_NONCE_LEN 16
#define RESYNC_PEERS_MAX 32 /* answers one request keeps */

/* Bodies. */
int resync_rqa_build(const uint8_t nonce[RESYNC_NONCE_LEN], json_t **ret);
int resync_rqa_parse(json_t *body, uint8_t ret_nonce[RESYNC_NONCE_LEN]);
int resync_rpa_build(const uint8_t nonce[RESYNC_NONCE_LEN], bool synced, uint32_t epoch,
		     json_t **ret);
int resync_rpa_parse(json_t *body, uint8_t ret_nonce[RESYNC_NONCE_LEN], bool *ret_synced,
		     uint32_t *ret_epoch);
int resync_ack_build(const uint8_t nonce[RESYNC_NONCE_LEN], json_t **ret);
int resync_ack_parse(json_t *body, uint8_t ret_nonce[RESYNC_NONCE_LEN]);

/* What SYNC_STATE carries, the key in the clear (wiped by resync_state_wipe()). */
struct resync_state {
	uint8_t nonce[RESYNC_NONCE_LEN];
	int64_t time_ms;
	struct stream_schedule schedule;
	uint32_t epoch, pool;
	uint8_t stream[STREAM_ID_LEN];
	uint8_t key[CRYPTO_KEY_LEN];
};
void resync_state_wipe(struct resync_state *s);
/* The key is wrapped to pub (the requester's certificate key). */
int resync_state_build(const struct resync_state *s, EVP_PKEY *pub, json_t **ret);
/* The key is unwrapped with priv; -EBADMSG for any malformed field or a key that does not
 * unwrap to CRYPTO_KEY_LEN bytes. */
int resync_state_parse(json_t *body, EVP_PKEY *priv, struct resync_state *ret);
/* The delivery id of a request: the nonce in lowercase hex (32 characters and a NUL). */
void resync_id(const uint8_t nonce[RESYNC_NONCE_LEN], char ret[2 * RESYNC_NONCE_LEN + 1]);

/* ---- the requester ---- */

enum resync_phase {
	RESYNC_IDLE,
	RESYNC_ASKING,
	RESYNC_ACKED,
	RESYNC_DONE,
	RESYNC_FAILED,
};
enum resync_action {
	RESYNC_NOTHING,
	RESYNC_SEND_RQA, /* broadcast RQA with r->nonce */
	RESYNC_SEND_ACK, /* to r->chosen */
	RESYNC_GAVE_UP,	 /* now FAILED */
};
struct resync_answer {
	char peer[CERT_NAME_MAX];
	uint32_t epoch;
	bool tried;
};
struct resync {
	enum resync_phase phase;
	uint8_t nonce[RESYNC_NONCE_LEN];
	unsigned tries, max_tries;
	uint64_t collect_ms, deadline; /* ms */
	struct resync_answer answers[RESYNC_PEERS_MAX];
	size_t n_answers;
	char chosen[CERT_NAME_MAX];
};
void resync_init(struct resync *r, unsigned max_tries, uint64_t collect_ms);
/* Start (or start again) at now: a new nonce; SEND_RQA. */
enum resync_action resync_start(struct resync *r, uint64_t now);
/* An authenticated RPA from peer. */
enum resync_action resync_on_rpa(struct resync *r, const char *peer,
				 const uint8_t nonce[RESYNC_NONCE_LEN], bool synced, uint32_t epoch,
				 uint64_t now);
/* An authenticated, parsed STATE from peer: 0 and DONE when it answers our current nonce from
 * a peer we acknowledged under it (the last chosen, or an earlier one whose STATE came late;
 * r->chosen then names the sender), -EPERM otherwise (ignored); -EBADMSG when its epoch is not
 * the one its RPA announced (or the next) or its time is not within one epoch of it by the
 * schedule it carries (refused; the request goes on). */
int resync_on_state(struct resync *r, const char *peer, const struct resync_state *s);
/* Time passed: the deadline decides (ACK the best answer, next peer, ask again, give up). */
enum resync_action resync_on_timer(struct resync *r, uint64_t now);

#endif
