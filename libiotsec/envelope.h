/* The one signed message format between devices (SPEC section 4).
 *
 * On the wire an envelope is a JSON object in exactly this form (no spaces, this order):
 *   {"v":2,"msg":"<base64 of the signed JSON text>","sig":"<base64 RSA-PSS-SHA256 over msg's
 *    bytes>","cert":"<base64 DER of the sender certificate>"}  or  ...,"fp":"<hex SHA-256 of it>"}
 * Its values are base64 or hex, so the form is scanned without a JSON parser (a certificate's
 * base64 costs jansson more than an RSA verify), and the signed text is
 *   {"type":"I_AM_CONTROLLER","from":"pi1","home":"h","ts":1700000000,"seq":1700000000000001,
 *    "nonce":"<base64 16 bytes>","body":{...}}
 * with two more fields in a unicast message: "to", the recipient's device name, and "id", the
 * delivery it belongs to (so a piece captured on its way to one device means nothing to another,
 * and a piece of one delivery cannot be slipped into another). The signature covers the exact
 * bytes carried, so no canonical JSON form is needed.
 *
 * seq is the sender's clock in microseconds, moved on by one when two messages would share a
 * value: strictly increasing, also across restarts, so a receiver keeps one small window per
 * sender (replay.h) instead of a table of nonces any sender could fill.
 *
 * A receiver checks, in this order: size, syntax, the sender certificate's chain to the home CA
 * and the CRL (which also gives its home and validity), the role the message type needs, that
 * "from"/"home" are the certificate's, that a unicast type names us (and a broadcast type nobody),
 * the signature, freshness (|now - ts| <= delta_t) and replay.
 *
 * Verified certificates are cached by fingerprint for the CRL generation they were verified
 * under (cert_store_generation()) and within the times the certificate, the CA and the CRL all
 * hold: a CRL change re-verifies each at its next message, and refusing a forged message that
 * carries a real certificate costs a hash and one RSA verify. A certificate that fails is
 * remembered too, for the same generation and a minute; one never seen costs at most one RSA
 * verify to refuse when it is forged (cert_verify() checks the CA's signature on it before the
 * chain and CRL): a flood of forged certificates, all alike or each new, costs no more than a
 * flood of forged signatures under real ones, and nobody's certificate waits for a budget. */
#ifndef IOTSEC_ENVELOPE_H
#define IOTSEC_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "cert.h"

#define ENVELOPE_MAX	     16384 /* bytes on the wire */
#define ENVELOPE_TYPE_MAX    32
#define ENVELOPE_NONCE_LEN   16
#define ENVELOPE_ID_MAX	     32	 /* characters of a delivery id */
#define ENVELOPE_CERTS_MAX   256 /* verified certificates remembered by fingerprint */
#define ENVELOPE_REFUSED_MAX 64	 /* certificates that failed, remembered likewise */

/* Which roles may send a message type, and whether it is unicast (names its recipient and a
 * delivery id) or broadcast. The table ends with a {NULL} row. */
struct envelope_rule {
	const char *type;
	unsigned roles; /* mask of enum cert_role */
	bool unicast;
	/* Freshness is judged by the body (an echoed nonce, an issue time or a sequence number
	 * that only goes up), not by our clock: neither the delta_t check nor the per-sender
	 * replay window applies. For messages that wait (a retained grant) or that reach a device
	 * whose clock is wrong (resync). */
	bool any_time;
};

struct envelope_ctx;
/* own_cert and own_key (references taken) sign what we send; store (borrowed, must outlive
 * the context) verifies what we receive. delta_t is the freshness window in seconds. */
int envelope_ctx_new(struct cert_store *store, X509 *own_cert, EVP_PKEY *own_key,
		     const struct envelope_rule *rules, int delta_t, struct envelope_ctx **ret);
void envelope_ctx_free(struct envelope_ctx *ctx);
/* Who we are, as our certificate says. */
const struct cert_info *envelope_self(const struct envelope_ctx *ctx);

/* Build and sign a message. to and id name the recipient and the delivery of a unicast type;
 * both are NULL for a broadcast type (-EINVAL otherwise). body is borrowed (NULL for {}). With
 * with_cert the full certificate travels, otherwise only its fingerprint (for peers that have
 * seen it). *ret is malloc'd and NUL-terminated; *ret_len excludes the NUL. */
int envelope_seal(struct envelope_ctx *ctx, const char *type, const char *to, const char *id,
		  json_t *body, bool with_cert, char **ret, size_t *ret_len);

struct envelope_msg {
	char type[ENVELOPE_TYPE_MAX];
	int64_t ts;
	uint64_t seq;
	char id[ENVELOPE_ID_MAX + 1]; /* unicast only; "" for a broadcast */
	struct cert_info sender;      /* name, home, role, fingerprint of the verified sender */
	X509 *cert;		      /* the verified sender's certificate (to wrap keys to it) */
	json_t *body;		      /* owned, like cert: release with envelope_msg_clear() */
};
/* Parse and verify one received envelope. Every rejection has its own code: -EMSGSIZE,
 * -EBADMSG, the cert_verify() codes, -IOTSEC_EUNKNOWNCERT, -IOTSEC_ETYPE, -IOTSEC_EROLE,
 * -IOTSEC_EIDENTITY, -IOTSEC_ENOTFORUS, -IOTSEC_EBADSIG, -IOTSEC_ESTALE, -IOTSEC_EREPLAY,
 * -ENOBUFS (see replay_check()). ret is filled only on success. ret_sender (may be NULL)
 * receives the sender's name on success, and when a refusal is the sender's own doing, so it can
 * be counted against it: a message signed by its verified certificate's key that is wrong in
 * itself (type, role, identity, form). A forger who attaches someone's public certificate, and
 * anyone replaying a message (stale, replayed, addressed to another device), leave it "". */
int envelope_open(struct envelope_ctx *ctx, const void *buf, size_t len, struct envelope_msg *ret,
		  char ret_sender[CERT_NAME_MAX]);
/* The same for a unicast message we check and pass on to its recipient (a doctor's grant that
 * the relay publishes for the kit): any recipient is accepted, and its name, a valid device
 * name, goes into ret_to on success. Every other check is envelope_open()'s; the recipient
 * still checks that the message names it. */
int envelope_open_relayed(struct envelope_ctx *ctx, const void *buf, size_t len,
			  struct envelope_msg *ret, char ret_sender[CERT_NAME_MAX],
			  char ret_to[CERT_NAME_MAX]);
void envelope_msg_clear(struct envelope_msg *m);

/* A fresh random delivery id (ENVELOPE_ID_MAX characters at most) into out. */
int envelope_new_id(char out[ENVELOPE_ID_MAX + 1]);

#endif
