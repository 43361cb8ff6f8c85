/* What a doctor sends a kit (SPEC 5.6, 8, 9), in envelopes (envelope.h) signed by a
 * doctor-role certificate of the kit's home and addressed to the kit (unicast: "to" is the kit):
 *
 *   DOCTOR_GRANT   {"kit":K, "start":e0, "issued":unix ms, "root":"<b64 wrapped to the kit>"}
 *                  the doctor stream's root (stream.h), wrapped with RSA-OAEP-SHA256 to the kit's
 *                  certificate key; published retained on iotsec/<home>/<doctor>/grant/<kit>
 *   EMERGENCY_ACK  {"kit":K, "seq":N}  clears the alarm raised by the emergency record of seq
 *                  <= N; published on iotsec/<home>/<doctor>/ack/<kit>
 *
 * Both are any_time envelopes: their age is not judged by the kit's clock; "issued" and "seq"
 * protect against replay (the kit takes only a newer grant and an ack above the last one). */
#ifndef IOTSEC_DOCTOR_H
#define IOTSEC_DOCTOR_H

#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "cert.h"
#include "crypto.h"

#define DOCTOR_MSG_GRANT "DOCTOR_GRANT"
#define DOCTOR_MSG_ACK	 "EMERGENCY_ACK"

struct doctor_grant {
	char kit[CERT_NAME_MAX];
	uint32_t start;
	int64_t issued_ms;
	uint8_t root[CRYPTO_KEY_LEN]; /* in the clear: wipe it (crypto_wipe) */
};
/* Wrap g->root to kit_pub. */
int doctor_grant_build(const struct doctor_grant *g, EVP_PKEY *kit_pub, json_t **ret);
/* Unwrap with the kit's key; strict (exactly these fields, start >= 1, issued >= 0, a valid
 * kit name); -EBADMSG otherwise. */
int doctor_grant_parse(json_t *body, EVP_PKEY *kit_priv, struct doctor_grant *ret);

int doctor_ack_build(const char *kit, uint64_t seq, json_t **ret);
int doctor_ack_parse(json_t *body, char ret_kit[CERT_NAME_MAX], uint64_t *ret_seq);

#endif
