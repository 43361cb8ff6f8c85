/* AES-256-GCM seal+open of a 64-byte reading with 16 bytes of AAD through crypto_aead_*, beside
 * the ceiling measured in the same binary: a bare EVP loop doing the same work with the fetched
 * cipher and both contexts reused. Also RSA-OAEP wrap and unwrap of a 32-byte key with RSA-2048,
 * the key pool's ceiling. Each figure is the best of 3 runs of about a second. Never fails on
 * speed: only a broken operation makes it exit non-zero. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "crypto.h"
#include "timing.h"

#define READING_LEN 64
#define AAD_LEN	    16
#define BATCH	    256 /* operations between clock reads */

static uint8_t key[CRYPTO_KEY_LEN], nonce[CRYPTO_NONCE_LEN], aad[AAD_LEN], reading[READING_LEN];

/* The nonce changes per message, as in real use; a counter in its last 8 bytes. */
static void next_nonce(uint64_t n)
{
	memcpy(nonce + 4, &n, sizeof(n));
}

static int ours(long batch, uint64_t *ctr, void *arg)
{
	struct crypto_aead *a = arg;
	uint8_t sealed[READING_LEN + CRYPTO_TAG_LEN], back[READING_LEN];

	for (long i = 0; i < batch; i++) {
		next_nonce((*ctr)++);
		if (crypto_aead_seal(a, nonce, aad, AAD_LEN, reading, READING_LEN, sealed) < 0 ||
		    crypto_aead_open(a, nonce, aad, AAD_LEN, sealed, sizeof(sealed), back) < 0)
			return -1;
	}
	return 0;
}

struct bare {
	EVP_CIPHER_CTX *enc, *dec;
};

/* The same operations written straight against EVP, with nothing around them. */
static int bare(long batch, uint64_t *ctr, void *arg)
{
	struct bare *b = arg;
	uint8_t sealed[READING_LEN + CRYPTO_TAG_LEN], back[READING_LEN];
	OSSL_PARAM get[2], set[2];
	int n;

	get[0] = OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, sealed + READING_LEN,
						   CRYPTO_TAG_LEN);
	get[1] = OSSL_PARAM_construct_end();
	set[0] = get[0];
	set[1] = get[1];
	for (long i = 0; i < batch; i++) {
		next_nonce((*ctr)++);
		if (EVP_EncryptInit_ex2(b->enc, NULL, NULL, nonce, NULL) != 1 ||
		    EVP_EncryptUpdate(b->enc, NULL, &n, aad, AAD_LEN) != 1 ||
		    EVP_EncryptUpdate(b->enc, sealed, &n, reading, READING_LEN) != 1 ||
		    EVP_EncryptFinal_ex(b->enc, sealed + n, &n) != 1 ||
		    EVP_CIPHER_CTX_get_params(b->enc, get) != 1)
			return -1;
		if (EVP_DecryptInit_ex2(b->dec, NULL, NULL, nonce, NULL) != 1 ||
		    EVP_DecryptUpdate(b->dec, NULL, &n, aad, AAD_LEN) != 1 ||
		    EVP_DecryptUpdate(b->dec, back, &n, sealed, READING_LEN) != 1 ||
		    EVP_CIPHER_CTX_set_params(b->dec, set) != 1 ||
		    EVP_DecryptFinal_ex(b->dec, back + n, &n) != 1)
			return -1;
	}
	return 0;
}

struct rsa {
	EVP_PKEY *key;
	EVP_PKEY_CTX *wrap;	       /* reused, as ring building reuses it for a batch */
	EVP_PKEY_CTX *bare, *bare_dec; /* the same set-ups written straight against EVP */
	uint8_t *blob;
	size_t bloblen;
};

/* The ceiling of a wrap: EVP_PKEY_encrypt on a reused context into a buffer already there. */
static int bare_wrap(long batch, uint64_t *ctr, void *arg)
{
	struct rsa *r = arg;
	uint8_t blob[512];

	for (long i = 0; i < batch; i++, (*ctr)++) {
		size_t len = sizeof(blob);

		if (EVP_PKEY_encrypt(r->bare, blob, &len, key, sizeof(key)) != 1)
			return -1;
	}
	return 0;
}

static int wrap(long batch, uint64_t *ctr, void *arg)
{
	struct rsa *r = arg;

	for (long i = 0; i < batch; i++, (*ctr)++) {
		uint8_t *blob = NULL;
		size_t len = 0;

		if (crypto_rsa_wrap(r->wrap, key, sizeof(key), &blob, &len) < 0)
			return -1;
		free(blob);
	}
	return 0;
}

/* The ceiling of an unwrap: EVP_PKEY_decrypt on a reused context. */
static int bare_unwrap(long batch, uint64_t *ctr, void *arg)
{
	struct rsa *r = arg;
	uint8_t out[512];

	for (long i = 0; i < batch; i++, (*ctr)++) {
		size_t len = sizeof(out);

		if (EVP_PKEY_decrypt(r->bare_dec, out, &len, r->blob, r->bloblen) != 1)
			return -1;
	}
	return 0;
}

static int unwrap(long batch, uint64_t *ctr, void *arg)
{
	struct rsa *r = arg;
	uint8_t out[CRYPTO_KEY_LEN];
	size_t len = 0;

	for (long i = 0; i < batch; i++, (*ctr)++)
		if (crypto_rsa_unwrap(r->key, r->blob, r->bloblen, out, sizeof(out), &len) < 0 ||
		    len != sizeof(out))
			return -1;
	return 0;
}

int main(void)
{
	struct crypto_aead *a = NULL;
	struct bare b = {EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_new()};
	struct rsa r = {0};
	EVP_CIPHER *gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
	double o, c, w, wc, u, uc;
	int rc = 1;

	if (crypto_random(key, sizeof(key)) < 0 || crypto_random(nonce, sizeof(nonce)) < 0 ||
	    crypto_random(aad, sizeof(aad)) < 0 || crypto_random(reading, sizeof(reading)) < 0)
		goto out;
	if (gcm == NULL || b.enc == NULL || b.dec == NULL || crypto_aead_new(key, &a) < 0 ||
	    EVP_EncryptInit_ex2(b.enc, gcm, key, NULL, NULL) != 1 ||
	    EVP_DecryptInit_ex2(b.dec, gcm, key, NULL, NULL) != 1) {
		fprintf(stderr, "bench_crypto: AES-256-GCM setup failed\n");
		goto out;
	}
	/* Warm both paths (page faults, CPU frequency) before timing either. */
	if (bench_run(ours, a, BATCH, 0.2) < 0 || bench_run(bare, &b, BATCH, 0.2) < 0 ||
	    bench_best_of(ours, a, &o, bare, &b, &c, BATCH) < 0) {
		fprintf(stderr, "bench_crypto: an AES-256-GCM operation failed\n");
		goto out;
	}
	printf("aead seal+open 64B: %.0f pairs/s  ceiling (bare EVP, ctx reused): %.0f pairs/s  "
	       "ratio %.0f%%\n",
	       o, c, c > 0 ? 100 * o / c : 0);
	fflush(stdout);

	fprintf(stderr, "bench_crypto: generating an RSA-2048 key...\n");
	if (crypto_rsa_generate(2048, &r.key) < 0 ||
	    (r.wrap = crypto_rsa_wrap_ctx(r.key)) == NULL ||
	    crypto_rsa_wrap(r.wrap, key, sizeof(key), &r.blob, &r.bloblen) < 0 ||
	    (r.bare = EVP_PKEY_CTX_new_from_pkey(NULL, r.key, NULL)) == NULL ||
	    EVP_PKEY_encrypt_init(r.bare) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(r.bare, RSA_PKCS1_OAEP_PADDING) != 1 ||
	    EVP_PKEY_CTX_set_rsa_oaep_md_name(r.bare, "SHA256", NULL) != 1 ||
	    EVP_PKEY_CTX_set_rsa_mgf1_md_name(r.bare, "SHA256", NULL) != 1 ||
	    (r.bare_dec = EVP_PKEY_CTX_new_from_pkey(NULL, r.key, NULL)) == NULL ||
	    EVP_PKEY_decrypt_init(r.bare_dec) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(r.bare_dec, RSA_PKCS1_OAEP_PADDING) != 1 ||
	    EVP_PKEY_CTX_set_rsa_oaep_md_name(r.bare_dec, "SHA256", NULL) != 1 ||
	    EVP_PKEY_CTX_set_rsa_mgf1_md_name(r.bare_dec, "SHA256", NULL) != 1) {
		fprintf(stderr, "bench_crypto: RSA setup failed\n");
		goto out;
	}
	if (bench_best_of(wrap, &r, &w, bare_wrap, &r, &wc, 16) < 0 ||
	    bench_best_of(unwrap, &r, &u, bare_unwrap, &r, &uc, 4) < 0) {
		fprintf(stderr, "bench_crypto: an RSA-OAEP operation failed\n");
		goto out;
	}
	printf("rsa-oaep wrap 32B (rsa2048): %.0f wraps/s  ceiling (bare EVP, ctx reused): %.0f "
	       "wraps/s  ratio %.0f%%\n",
	       w, wc, wc > 0 ? 100 * w / wc : 0);
	printf(
	    "rsa-oaep unwrap 32B (rsa2048): %.0f unwraps/s  ceiling (bare EVP, ctx reused): %.0f "
	    "unwraps/s  ratio %.0f%%\n",
	    u, uc, uc > 0 ? 100 * u / uc : 0);
	rc = 0;
out:
	crypto_wipe(key, sizeof(key));
	crypto_aead_free(a);
	EVP_CIPHER_CTX_free(b.enc);
	EVP_CIPHER_CTX_free(b.dec);
	EVP_CIPHER_free(gcm);
	EVP_PKEY_CTX_free(r.wrap);
	EVP_PKEY_CTX_free(r.bare);
	EVP_PKEY_CTX_free(r.bare_dec);
	EVP_PKEY_free(r.key);
	free(r.blob);
	return rc;
}
