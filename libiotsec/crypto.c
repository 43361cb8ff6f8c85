#include "crypto.h"

#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include <jansson.h>

#include "file.h"
#include "log.h"

#define CRYPTO_RSA_MIN_BITS 2048
#define CRYPTO_PSS_SALT_LEN 32
#define CRYPTO_KEY_FILE_MAX (64 * 1024)

struct crypto_aead {
	/* The key schedule lives in these two contexts; OpenSSL clears it when they are freed. */
	EVP_CIPHER_CTX *enc, *dec;
};

/* Fetched once: an implicit fetch on every call is what makes naive EVP code slow. */
static pthread_once_t crypto_once = PTHREAD_ONCE_INIT;
static EVP_CIPHER *crypto_gcm;
static EVP_MD *crypto_md;
static EVP_MAC *crypto_hmac;
static EVP_KDF *crypto_hkdf;

static void crypto_fetch(void)
{
	crypto_gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
	crypto_md = EVP_MD_fetch(NULL, "SHA256", NULL);
	crypto_hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	crypto_hkdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
}

static int crypto_algs(void)
{
	pthread_once(&crypto_once, crypto_fetch);
	if (crypto_gcm == NULL || crypto_md == NULL || crypto_hmac == NULL || crypto_hkdf == NULL) {
		log_debug("crypto: an algorithm is missing from the OpenSSL providers");
		return -ENOTSUP;
	}
	return 0;
}

/* Drop OpenSSL's error queue so a refusal here never shows up in someone else's report. */
static int crypto_fail(int r, const char *what)
{
	const char *why = ERR_reason_error_string(ERR_peek_last_error());

	log_debug("crypto: %s failed: %s", what, why != NULL ? why : "no OpenSSL reason");
	ERR_clear_error();
	return r;
}

int crypto_random(void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len > 0) {
		int n = len > INT_MAX ? INT_MAX : (int)len;

		if (RAND_bytes(p, n) != 1)
			return crypto_fail(-EIO, "RAND_bytes");
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

void crypto_wipe(void *buf, size_t len)
{
	if (buf != NULL)
		OPENSSL_cleanse(buf, len);
}

void crypto_wipe_free(void *p)
{
	/* The allocator knows the block's size: free() callers like jansson's do not. */
	if (p != NULL)
		OPENSSL_cleanse(p, malloc_usable_size(p));
	free(p);
}

void crypto_wipe_json(void)
{
	json_set_alloc_funcs(malloc, crypto_wipe_free);
}

int crypto_memcmp(const void *a, const void *b, size_t len)
{
	return len == 0 ? 0 : CRYPTO_memcmp(a, b, len) != 0;
}

int crypto_sha256(const void *data, size_t len, uint8_t out[CRYPTO_SHA256_LEN])
{
	int r;

	if ((r = crypto_algs()) < 0)
		return r;
	if (EVP_Digest(data, len, out, NULL, crypto_md, NULL) != 1)
		return crypto_fail(-EIO, "SHA-256");
	return 0;
}

int crypto_hmac_sha256(const void *key, size_t keylen, const void *data, size_t len,
		       uint8_t out[CRYPTO_SHA256_LEN])
{
	static const uint8_t empty;
	OSSL_PARAM params[] = {
	    OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0),
	    OSSL_PARAM_construct_end(),
	};
	EVP_MAC_CTX *ctx = NULL;
	size_t outlen = 0;
	int r;

	if ((r = crypto_algs()) < 0)
		goto out;
	if ((ctx = EVP_MAC_CTX_new(crypto_hmac)) == NULL) {
		r = crypto_fail(-ENOMEM, "EVP_MAC_CTX_new");
		goto out;
	}
	/* A NULL key means "keep the previous one" to EVP_MAC_init; an empty key is still a key. */
	if (EVP_MAC_init(ctx, keylen ? key : &empty, keylen, params) != 1 ||
	    EVP_MAC_update(ctx, data, len) != 1 ||
	    EVP_MAC_final(ctx, out, &outlen, CRYPTO_SHA256_LEN) != 1 ||
	    outlen != CRYPTO_SHA256_LEN) {
		r = crypto_fail(-EIO, "HMAC-SHA256");
		goto out;
	}
	r = 0;
out:
	EVP_MAC_CTX_free(ctx);
	return r;
}

int crypto_hkdf_sha256(const void *salt, size_t saltlen, const void *ikm, size_t ikmlen,
		       const void *info, size_t infolen, void *out, size_t outlen)
{
	static uint8_t empty;
	OSSL_PARAM params[5], *p = params;
	EVP_KDF_CTX *ctx = NULL;
	int r;

	if (outlen == 0 || outlen > 255 * CRYPTO_SHA256_LEN)
		return -EINVAL;
	if ((r = crypto_algs()) < 0)
		return r;
	*p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, "SHA256", 0);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, ikmlen ? (void *)ikm : &empty,
						 ikmlen);
	/* No salt means HashLen zeros (RFC 5869 2.2), as OpenSSL does when none is given. */
	if (saltlen > 0)
		*p++ =
		    OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, saltlen);
	if (infolen > 0)
		*p++ =
		    OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, infolen);
	*p = OSSL_PARAM_construct_end();
	if ((ctx = EVP_KDF_CTX_new(crypto_hkdf)) == NULL) {
		r = crypto_fail(-ENOMEM, "EVP_KDF_CTX_new");
		goto out;
	}
	if (EVP_KDF_derive(ctx, out, outlen, params) != 1) {
		r = crypto_fail(-EIO, "HKDF-SHA256");
		goto out;
	}
	r = 0;
out:
	EVP_KDF_CTX_free(ctx);
	return r;
}

int crypto_aead_new(const uint8_t key[CRYPTO_KEY_LEN], struct crypto_aead **ret)
{
	struct crypto_aead *a = NULL;
	int r;

	if ((r = crypto_algs()) < 0)
		goto out;
	r = -ENOMEM;
	if ((a = calloc(1, sizeof(*a))) == NULL || (a->enc = EVP_CIPHER_CTX_new()) == NULL ||
	    (a->dec = EVP_CIPHER_CTX_new()) == NULL)
		goto out;
	/* The default GCM IV length is the 12 bytes we use, so only the IV changes per message. */
	if (EVP_EncryptInit_ex2(a->enc, crypto_gcm, key, NULL, NULL) != 1 ||
	    EVP_DecryptInit_ex2(a->dec, crypto_gcm, key, NULL, NULL) != 1) {
		r = crypto_fail(-EIO, "AES-256-GCM key setup");
		goto out;
	}
	*ret = a;
	a = NULL;
	r = 0;
out:
	crypto_aead_free(a);
	return r;
}

void crypto_aead_free(struct crypto_aead *a)
{
	if (a == NULL)
		return;
	EVP_CIPHER_CTX_free(a->enc);
	EVP_CIPHER_CTX_free(a->dec);
	free(a);
}

/* The hot path: the key schedule is already in the context, so only the IV is set. */
int crypto_aead_seal(struct crypto_aead *a, const uint8_t nonce[CRYPTO_NONCE_LEN], const void *aad,
		     size_t aadlen, const void *pt, size_t ptlen, uint8_t *out)
{
	OSSL_PARAM params[2];
	int n, fin;

	if (aadlen > INT_MAX || ptlen > INT_MAX - CRYPTO_TAG_LEN)
		return -EMSGSIZE;
	params[0] = OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, out + ptlen,
						      CRYPTO_TAG_LEN);
	params[1] = OSSL_PARAM_construct_end();
	if (EVP_EncryptInit_ex2(a->enc, NULL, NULL, nonce, NULL) != 1 ||
	    (aadlen > 0 && EVP_EncryptUpdate(a->enc, NULL, &n, aad, (int)aadlen) != 1) ||
	    EVP_EncryptUpdate(a->enc, out, &n, pt, (int)ptlen) != 1 ||
	    EVP_EncryptFinal_ex(a->enc, out + n, &fin) != 1 || (size_t)n + (size_t)fin != ptlen ||
	    EVP_CIPHER_CTX_get_params(a->enc, params) != 1)
		return crypto_fail(-EIO, "AES-256-GCM seal");
	return 0;
}

int crypto_aead_open(struct crypto_aead *a, const uint8_t nonce[CRYPTO_NONCE_LEN], const void *aad,
		     size_t aadlen, const uint8_t *in, size_t inlen, uint8_t *out)
{
	size_t ctlen;
	OSSL_PARAM params[2];
	int n = 0, fin = 0;

	if (inlen < CRYPTO_TAG_LEN)
		return -EBADMSG;
	ctlen = inlen - CRYPTO_TAG_LEN;
	if (aadlen > INT_MAX || ctlen > INT_MAX - CRYPTO_TAG_LEN)
		return -EMSGSIZE;
	params[0] = OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG,
						      (void *)(in + ctlen), CRYPTO_TAG_LEN);
	params[1] = OSSL_PARAM_construct_end();
	if (EVP_DecryptInit_ex2(a->dec, NULL, NULL, nonce, NULL) != 1 ||
	    (aadlen > 0 && EVP_DecryptUpdate(a->dec, NULL, &n, aad, (int)aadlen) != 1) ||
	    EVP_DecryptUpdate(a->dec, out, &n, in, (int)ctlen) != 1 ||
	    EVP_CIPHER_CTX_set_params(a->dec, params) != 1 ||
	    EVP_DecryptFinal_ex(a->dec, out + n, &fin) != 1 || (size_t)n + (size_t)fin != ctlen) {
		/* Unauthenticated plaintext must not survive for a careless caller to use. */
		crypto_wipe(out, ctlen);
		ERR_clear_error();
		return -EBADMSG;
	}
	return 0;
}

int crypto_rsa_generate(unsigned bits, EVP_PKEY **ret)
{
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *key = NULL;
	int r = -EIO;

	if (bits < CRYPTO_RSA_MIN_BITS || bits > 16384)
		return -EINVAL;
	if ((ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) == NULL ||
	    EVP_PKEY_keygen_init(ctx) != 1 ||
	    EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, (int)bits) != 1 ||
	    EVP_PKEY_generate(ctx, &key) != 1) {
		r = crypto_fail(-EIO, "RSA key generation");
		goto out;
	}
	*ret = key;
	r = 0;
out:
	EVP_PKEY_CTX_free(ctx);
	return r;
}

/* Never prompt: a daemon has no terminal, and an encrypted key is simply not ours to use. */
static int crypto_no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf, (void)size, (void)rwflag, (void)u;
	return -1;
}

static int crypto_is_rsa(EVP_PKEY *key)
{
	return key != NULL && EVP_PKEY_is_a(key, "RSA");
}

int crypto_load_private_key(const char *path, EVP_PKEY **ret)
{
	EVP_PKEY *key = NULL;
	char *pem = NULL;
	size_t len = 0;
	BIO *bio = NULL;
	int r;

	if ((r = file_check_secret(path)) < 0 ||
	    (r = file_read(path, CRYPTO_KEY_FILE_MAX, &pem, &len)) < 0)
		goto out;
	if ((bio = BIO_new_mem_buf(pem, (int)len)) == NULL) {
		r = crypto_fail(-ENOMEM, "BIO_new_mem_buf");
		goto out;
	}
	if ((key = PEM_read_bio_PrivateKey(bio, NULL, crypto_no_passphrase, NULL)) == NULL) {
		r = crypto_fail(-EBADMSG, "reading a PEM private key");
		goto out;
	}
	if (!crypto_is_rsa(key) || EVP_PKEY_get_bits(key) < CRYPTO_RSA_MIN_BITS) {
		log_debug("crypto: %s is not an RSA key of %d bits or more", path,
			  CRYPTO_RSA_MIN_BITS);
		r = -EKEYREJECTED;
		goto out;
	}
	*ret = key;
	key = NULL;
	r = 0;
out:
	BIO_free(bio);
	if (pem != NULL) {
		crypto_wipe(pem, len);
		free(pem);
	}
	EVP_PKEY_free(key);
	return r;
}

int crypto_save_private_key(const char *path, EVP_PKEY *key)
{
	BIO *bio = NULL;
	char *pem = NULL;
	long len = 0;
	int r;

	/* The secure-memory BIO grows with BUF_MEM_grow_clean, so no stray copy is left behind. */
	if ((bio = BIO_new(BIO_s_secmem())) == NULL) {
		r = crypto_fail(-ENOMEM, "BIO_new");
		goto out;
	}
	if (PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) != 1 ||
	    (len = BIO_get_mem_data(bio, &pem)) <= 0) {
		r = crypto_fail(-EINVAL, "writing a PEM private key");
		goto out;
	}
	r = file_write_atomic(path, pem, (size_t)len, 0600);
out:
	if (pem != NULL)
		OPENSSL_cleanse(pem, (size_t)len);
	BIO_free(bio);
	return r;
}

static EVP_PKEY_CTX *crypto_oaep_ctx(EVP_PKEY *key, int encrypt)
{
	OSSL_PARAM params[] = {
	    OSSL_PARAM_construct_utf8_string(OSSL_ASYM_CIPHER_PARAM_PAD_MODE,
					     OSSL_PKEY_RSA_PAD_MODE_OAEP, 0),
	    OSSL_PARAM_construct_utf8_string(OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST, "SHA256", 0),
	    OSSL_PARAM_construct_utf8_string(OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST, "SHA256", 0),
	    OSSL_PARAM_construct_end(),
	};
	EVP_PKEY_CTX *ctx;

	if (!crypto_is_rsa(key) || (ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL)) == NULL)
		return NULL;
	if ((encrypt ? EVP_PKEY_encrypt_init_ex(ctx, params)
		     : EVP_PKEY_decrypt_init_ex(ctx, params)) != 1) {
		EVP_PKEY_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

EVP_PKEY_CTX *crypto_rsa_wrap_ctx(EVP_PKEY *pub)
{
	return crypto_oaep_ctx(pub, 1);
}

int crypto_rsa_wrap(EVP_PKEY_CTX *ctx, const void *secret, size_t len, uint8_t **ret,
		    size_t *ret_len)
{
	uint8_t *blob = NULL;
	size_t bloblen = 0;

	/* OAEP with SHA-256 carries at most k - 2 * 32 - 2 bytes. */
	if (len + 2 * CRYPTO_SHA256_LEN + 2 >
	    (size_t)EVP_PKEY_get_size(EVP_PKEY_CTX_get0_pkey(ctx)))
		return -EMSGSIZE;
	if (EVP_PKEY_encrypt(ctx, NULL, &bloblen, secret, len) != 1 ||
	    (blob = malloc(bloblen)) == NULL ||
	    EVP_PKEY_encrypt(ctx, blob, &bloblen, secret, len) != 1) {
		int r = crypto_fail(blob == NULL ? -ENOMEM : -EIO, "RSA-OAEP wrap");

		free(blob);
		return r;
	}
	*ret = blob;
	*ret_len = bloblen;
	return 0;
}

int crypto_rsa_unwrap(EVP_PKEY *priv, const uint8_t *in, size_t inlen, void *out, size_t outcap,
		      size_t *ret_len)
{
	EVP_PKEY_CTX *ctx = NULL;
	uint8_t *plain = NULL;
	size_t cap = 0, len;
	int r;

	if ((ctx = crypto_oaep_ctx(priv, 0)) == NULL) {
		r = crypto_fail(-EINVAL, "RSA-OAEP setup");
		goto out;
	}
	if (inlen != (size_t)EVP_PKEY_get_size(priv)) {
		r = -EBADMSG;
		goto out;
	}
	/* Decrypt into our own buffer first: the caller's may be smaller than the worst case. */
	cap = inlen;
	if ((plain = OPENSSL_malloc(cap)) == NULL) {
		r = -ENOMEM;
		goto out;
	}
	len = cap;
	if (EVP_PKEY_decrypt(ctx, plain, &len, in, inlen) != 1) {
		r = crypto_fail(-EBADMSG, "RSA-OAEP unwrap");
		goto out;
	}
	if (len > outcap) {
		r = -EMSGSIZE;
		goto out;
	}
	memcpy(out, plain, len);
	*ret_len = len;
	r = 0;
out:
	if (plain != NULL)
		OPENSSL_clear_free(plain, cap);
	EVP_PKEY_CTX_free(ctx);
	return r;
}

struct crypto_pss {
	EVP_PKEY_CTX *ctx; /* set up once: RSA-PSS, SHA-256, MGF1-SHA256, 32-byte salt */
	size_t siglen;
	bool sign;
};

void crypto_pss_free(struct crypto_pss *p)
{
	if (p == NULL)
		return;
	EVP_PKEY_CTX_free(p->ctx);
	free(p);
}

int crypto_pss_new(EVP_PKEY *key, bool sign, struct crypto_pss **ret)
{
	OSSL_PARAM params[] = {
	    OSSL_PARAM_construct_utf8_string(OSSL_SIGNATURE_PARAM_PAD_MODE,
					     OSSL_PKEY_RSA_PAD_MODE_PSS, 0),
	    OSSL_PARAM_construct_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, "SHA256", 0),
	    OSSL_PARAM_construct_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_DIGEST, "SHA256", 0),
	    OSSL_PARAM_construct_int(OSSL_SIGNATURE_PARAM_PSS_SALTLEN, &(int){CRYPTO_PSS_SALT_LEN}),
	    OSSL_PARAM_construct_end(),
	};
	struct crypto_pss *p = NULL;
	int r;

	if ((r = crypto_algs()) < 0)
		return r;
	if (!crypto_is_rsa(key))
		return -EINVAL;
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return -ENOMEM;
	p->sign = sign;
	p->siglen = (size_t)EVP_PKEY_get_size(key);
	if ((p->ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL)) == NULL ||
	    (sign ? EVP_PKEY_sign_init_ex(p->ctx, params)
		  : EVP_PKEY_verify_init_ex(p->ctx, params)) != 1) {
		crypto_pss_free(p);
		return crypto_fail(-EINVAL, "RSA-PSS setup");
	}
	*ret = p;
	return 0;
}

int crypto_pss_sign(struct crypto_pss *p, const void *msg, size_t len, uint8_t **ret,
		    size_t *ret_len)
{
	uint8_t digest[CRYPTO_SHA256_LEN], *sig = NULL;
	size_t siglen = p->siglen;
	int r;

	if (!p->sign)
		return -EINVAL;
	if ((r = crypto_sha256(msg, len, digest)) < 0)
		return r;
	if ((sig = malloc(siglen)) == NULL)
		return -ENOMEM;
	if (EVP_PKEY_sign(p->ctx, sig, &siglen, digest, sizeof(digest)) != 1) {
		free(sig);
		return crypto_fail(-EIO, "RSA-PSS sign");
	}
	*ret = sig;
	*ret_len = siglen;
	return 0;
}

/* A key that is not RSA cannot have made one of our signatures, so it is a bad signature too. */
int crypto_pss_verify(struct crypto_pss *p, const void *msg, size_t len, const uint8_t *sig,
		      size_t siglen)
{
	uint8_t digest[CRYPTO_SHA256_LEN];

	if (p->sign || siglen == 0 || crypto_sha256(msg, len, digest) < 0)
		return -IOTSEC_EBADSIG;
	if (EVP_PKEY_verify(p->ctx, sig, siglen, digest, sizeof(digest)) != 1) {
		ERR_clear_error();
		return -IOTSEC_EBADSIG;
	}
	return 0;
}

int crypto_sign(EVP_PKEY *priv, const void *msg, size_t len, uint8_t **ret, size_t *ret_len)
{
	struct crypto_pss *p = NULL;
	int r;

	if ((r = crypto_pss_new(priv, true, &p)) == 0)
		r = crypto_pss_sign(p, msg, len, ret, ret_len);
	crypto_pss_free(p);
	return r;
}

int crypto_verify(EVP_PKEY *pub, const void *msg, size_t len, const uint8_t *sig, size_t siglen)
{
	struct crypto_pss *p = NULL;
	int r = crypto_pss_new(pub, false, &p) == 0 ? crypto_pss_verify(p, msg, len, sig, siglen)
						    : -IOTSEC_EBADSIG;

	crypto_pss_free(p);
	return r;
}
