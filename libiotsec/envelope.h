/* The one signed message format between devices (SPEC section 4).
 *
 * On the wire an envelope is a JSON object:
 *   {"v":1,"msg":"<base64 of the signed JSON text>","sig":"<base64 RSA-PSS-SHA256 over msg's
 * bytes>", "cert":"<base64 DER of the sender certificate>"  or  "fp":"<hex SHA-256 of it>"} and the
 * signed text is
 *   {"type":"I_AM_CONTROLLER","from":"pi1","home":"h","ts":1700000000,"nonce":"<base64 16 bytes>",
 *    "body":{...}}
 * The signature covers the exact bytes carried, so no canonical JSON form is needed.
 *
 * A receiver checks, in this order: size, syntax, the sender certificate's chain to the home CA
 * and the CRL (which also gives its home and validity), the role the message type needs, that
 * "from"/"home" are the certificate's, the signature, freshness (|now - ts| <= delta_t) and the
 * replay cache. The cache holds each (sender, nonce) until its timestamp leaves the window, in a
 * table of fixed size: when it is full of fresh entries new messages are refused (fail closed). */
#ifndef IOTSEC_ENVELOPE_H
#define IOTSEC_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "cert.h"

#define ENVELOPE_MAX	    16384 /* bytes on the wire */
#define ENVELOPE_TYPE_MAX   32
#define ENVELOPE_NONCE_LEN  16
#define ENVELOPE_REPLAY_MAX 4096 /* entries in the replay cache */
#define ENVELOPE_CERTS_MAX  256	 /* certificates remembered by fingerprint */

/* Which roles may send a message type. The table ends with a {NULL} row. */
struct envelope_rule {
	const char *type;
	unsigned roles; /* mask of enum cert_role */
};

struct envelope_ctx;
/* own_cert and own_key (references taken) sign what we send; store (borrowed, must outlive
 * the context) verifies what we receive. delta_t is the freshness window in seconds. */
int envelope_ctx_new(struct cert_store *store, X509 *own_cert, EVP_PKEY *own_key,
		     const struct envelope_rule *rules, int delta_t, struct envelope_ctx **ret);
void envelope_ctx_free(struct envelope_ctx *ctx);

/* Build and sign a message. body is borrowed (NULL for {}). With with_cert the full certificate
 * travels, otherwise only its fingerprint (for peers that have seen it). *ret is malloc'd and
 * NUL-terminated; *ret_len excludes the NUL. */
int envelope_seal(struct envelope_ctx *ctx, const char *type, json_t *body, bool with_cert,
		  char **ret, size_t *ret_len);

struct envelope_msg {
	char type[ENVELOPE_TYPE_MAX];
	int64_t ts;
	struct cert_info sender; /* name, home, role, fingerprint of the verified sender */
	X509 *cert;		 /* the verified sender's certificate (to wrap keys to it) */
	json_t *body;		 /* owned, like cert: release with envelope_msg_clear() */
};
/* Parse and verify one received envelope. Every rejection has its own code: -EMSGSIZE,
 * -EBADMSG, the cert_verify() codes, -IOTSEC_EUNKNOWNCERT, -IOTSEC_ETYPE, -IOTSEC_EROLE,
 * -IOTSEC_EIDENTITY, -IOTSEC_EBADSIG, -IOTSEC_ESTALE, -IOTSEC_EREPLAY, -ENOBUFS (replay cache
 * full). ret is filled only on success. */
int envelope_open(struct envelope_ctx *ctx, const void *buf, size_t len, struct envelope_msg *ret);
void envelope_msg_clear(struct envelope_msg *m);

#endif
