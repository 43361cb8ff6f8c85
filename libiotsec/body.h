/* Strict pieces of the JSON bodies that envelopes carry (envelope.h): an object of exactly the
 * fields named, integers within bounds, device names, base64 of an exact length, and secrets
 * wrapped with RSA-OAEP to a certificate's key. Readers refuse anything else (a real number
 * where an integer belongs, a string with an embedded NUL, non-canonical base64) and write
 * their output only on success. */
#ifndef IOTSEC_BODY_H
#define IOTSEC_BODY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "cert.h"
#include "crypto.h"

/* o is an object of exactly n fields: with the size equal, each named field present means no
 * other field is. */
bool body_fields(json_t *o, size_t n);
/* The integer o[field] in lo..hi (reals, strings and booleans refused). */
bool body_int(json_t *o, const char *field, int64_t lo, int64_t hi, int64_t *out);
bool body_u32(json_t *o, const char *field, uint32_t lo, uint32_t hi, uint32_t *out);
/* The device name o[field] (ca_name_valid()), copied with its NUL. */
bool body_name(json_t *o, const char *field, char out[CERT_NAME_MAX]);
/* o[field] is base64 of exactly len bytes; out gets them. */
bool body_bytes(json_t *o, const char *field, void *out, size_t len);

/* A malloc'd base64 text of key wrapped to pub (-EINVAL when pub is not an RSA key,
 * -EMSGSIZE when the result is longer than RING_WRAPPED_MAX). */
int body_key_wrap(EVP_PKEY *pub, const uint8_t key[CRYPTO_KEY_LEN], char **ret);
/* o[field] unwrapped with priv; -EBADMSG for anything but base64 of at most RING_WRAPPED_MAX
 * (ring.h) bytes that decrypt under priv to exactly CRYPTO_KEY_LEN bytes, -ENOMEM. */
int body_key_unwrap(json_t *o, const char *field, EVP_PKEY *priv, uint8_t ret[CRYPTO_KEY_LEN]);
/* The same for a value that is not a field (an element of a list of keys). */
int body_key_unwrap_value(json_t *v, EVP_PKEY *priv, uint8_t ret[CRYPTO_KEY_LEN]);

#endif
