/* Every cryptographic operation iotsec performs, over OpenSSL 3's EVP API.
 *
 * Algorithms are fetched once per process and contexts are reused on hot paths (AEAD), which is
 * what keeps sealing a 64-byte reading near the machine's ceiling. Functions return 0 or a
 * negative errno-style code (log.h); outputs are untouched on failure. */
#ifndef IOTSEC_CRYPTO_H
#define IOTSEC_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#define CRYPTO_SHA256_LEN 32
#define CRYPTO_KEY_LEN	  32 /* AES-256 and HMAC keys */
#define CRYPTO_NONCE_LEN  12 /* AES-GCM IV */
#define CRYPTO_TAG_LEN	  16 /* AES-GCM tag */

int crypto_random(void *buf, size_t len);
/* Overwrite a secret; the compiler may not drop it. */
void crypto_wipe(void *buf, size_t len);
/* Wipe a malloc'd block of any size, then free it. NULL is allowed. */
void crypto_wipe_free(void *p);
/* Make jansson wipe every block it frees: keys travel to and from dictd as base64 strings inside
 * JSON objects, and jansson copies strings. Every program calls it first thing. */
void crypto_wipe_json(void);
/* Constant-time comparison: 0 when equal. */
int crypto_memcmp(const void *a, const void *b, size_t len);

int crypto_sha256(const void *data, size_t len, uint8_t out[CRYPTO_SHA256_LEN]);
int crypto_hmac_sha256(const void *key, size_t keylen, const void *data, size_t len,
		       uint8_t out[CRYPTO_SHA256_LEN]);
/* RFC 5869 extract-then-expand; outlen at most 255 * 32. */
int crypto_hkdf_sha256(const void *salt, size_t saltlen, const void *ikm, size_t ikmlen,
		       const void *info, size_t infolen, void *out, size_t outlen);

/* AES-256-GCM under one key, with its contexts kept for reuse. The key is wiped on free. */
struct crypto_aead;
int crypto_aead_new(const uint8_t key[CRYPTO_KEY_LEN], struct crypto_aead **ret);
void crypto_aead_free(struct crypto_aead *a);
/* Writes ptlen bytes of ciphertext then the 16-byte tag to out (ptlen + CRYPTO_TAG_LEN bytes).
 * The caller owns nonce uniqueness under a key. */
int crypto_aead_seal(struct crypto_aead *a, const uint8_t nonce[CRYPTO_NONCE_LEN], const void *aad,
		     size_t aadlen, const void *pt, size_t ptlen, uint8_t *out);
/* in is ciphertext followed by the tag (inlen >= CRYPTO_TAG_LEN); writes inlen - 16 bytes of
 * plaintext to out. -EBADMSG when the tag, ciphertext, AAD, nonce or key is wrong; out is
 * wiped then. */
int crypto_aead_open(struct crypto_aead *a, const uint8_t nonce[CRYPTO_NONCE_LEN], const void *aad,
		     size_t aadlen, const uint8_t *in, size_t inlen, uint8_t *out);

/* RSA keys. */
int crypto_rsa_generate(unsigned bits, EVP_PKEY **ret);
/* PEM private key; refused (-IOTSEC_ESECRET) when the file is readable by group or others. */
int crypto_load_private_key(const char *path, EVP_PKEY **ret);
/* Writes an unencrypted PEM private key atomically with mode 0600. */
int crypto_save_private_key(const char *path, EVP_PKEY *key);

/* RSA-OAEP-SHA256 (MGF1-SHA256) wrap of short secrets to one public key. Set the context up once
 * for every secret wrapped to the same key: the set-up costs about a sixth of a wrap. NULL unless
 * pub is an RSA key; free it with EVP_PKEY_CTX_free(). */
EVP_PKEY_CTX *crypto_rsa_wrap_ctx(EVP_PKEY *pub);
/* *ret is malloc'd; -EMSGSIZE when the secret is too long for the key. */
int crypto_rsa_wrap(EVP_PKEY_CTX *ctx, const void *secret, size_t len, uint8_t **ret,
		    size_t *ret_len);
/* Unwraps into out (capacity outcap); -EBADMSG when the blob does not decrypt. */
int crypto_rsa_unwrap(EVP_PKEY *priv, const uint8_t *in, size_t inlen, void *out, size_t outcap,
		      size_t *ret_len);

/* RSA-PSS-SHA256 (MGF1-SHA256, 32-byte salt) with a context set up once per key and reused:
 * setting one up fetches algorithms under a lock, which costs about as much as a verify. */
struct crypto_pss;
/* For signing with a private key (sign) or verifying with a public one; -EINVAL for a key that
 * is not RSA. */
int crypto_pss_new(EVP_PKEY *key, bool sign, struct crypto_pss **ret);
void crypto_pss_free(struct crypto_pss *p);
/* *ret is malloc'd. */
int crypto_pss_sign(struct crypto_pss *p, const void *msg, size_t len, uint8_t **ret,
		    size_t *ret_len);
/* 0 when valid, -IOTSEC_EBADSIG otherwise. */
int crypto_pss_verify(struct crypto_pss *p, const void *msg, size_t len, const uint8_t *sig,
		      size_t siglen);
/* The same once, with a context made and freed for the call. */
int crypto_sign(EVP_PKEY *priv, const void *msg, size_t len, uint8_t **ret, size_t *ret_len);
int crypto_verify(EVP_PKEY *pub, const void *msg, size_t len, const uint8_t *sig, size_t siglen);

#endif
