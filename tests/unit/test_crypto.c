/* crypto: published vectors (GCM spec cases 13-16, RFC 5869, RFC 4231, FIPS 180-2), every AEAD
 * tamper refused with the output wiped, RSA-OAEP and RSA-PSS with exactly the parameters we
 * promise (checked against OpenSSL set up by hand here), and private key files kept private.
 * Two RSA-2048 keys are made once for the whole file. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/core_names.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <jansson.h>

#include "crypto.h"
#include "file.h"
#include "log.h"

struct keys {
	EVP_PKEY *a, *b;
	char dir[64];
	char path[128];
};

/* Test vectors are written in hex; decoded here rather than with encoding.c so a fault there
 * cannot hide one in crypto.c. */
static size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
	size_t n = strlen(hex) / 2;

	assert_true(n <= cap);
	for (size_t i = 0; i < n; i++) {
		unsigned v;

		assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
		out[i] = (uint8_t)v;
	}
	return n;
}

/* ---- hashes, MACs, KDF ---- */

static void test_sha256_vectors(void **state)
{
	uint8_t got[CRYPTO_SHA256_LEN], want[CRYPTO_SHA256_LEN];

	(void)state;
	assert_int_equal(crypto_sha256("abc", 3, got), 0);
	unhex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", want, 32);
	assert_memory_equal(got, want, 32);
	assert_int_equal(crypto_sha256("", 0, got), 0);
	unhex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", want, 32);
	assert_memory_equal(got, want, 32);
}

/* RFC 4231 section 4; case 5 is checked on its first 128 bits, as published. */
static void test_hmac_rfc4231(void **state)
{
	static const struct {
		const char *key; /* hex, or NULL for 131 bytes of 0xaa */
		const char *data;
		size_t datalen; /* 0: strlen(data) */
		const char *mac;
	} v[] = {
	    {"0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "Hi There", 0,
	     "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
	    {"4a656665", "what do ya want for nothing?", 0,
	     "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
	    {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "\xdd", 50,
	     "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
	    {"0102030405060708090a0b0c0d0e0f10111213141516171819", "\xcd", 50,
	     "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
	    {"0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c", "Test With Truncation", 0,
	     "a3b6167473100ee06e0c796c2955552b"},
	    {NULL, "Test Using Larger Than Block-Size Key - Hash Key First", 0,
	     "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
	    {NULL,
	     "This is a test using a larger than block-size key and a larger than block-size "
	     "data. The key needs to be hashed before being used by the HMAC algorithm.",
	     0, "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		uint8_t key[131], data[200], want[32], got[32];
		size_t keylen, datalen, maclen;

		if (v[i].key != NULL) {
			keylen = unhex(v[i].key, key, sizeof(key));
		} else {
			keylen = 131;
			memset(key, 0xaa, keylen);
		}
		if (v[i].datalen > 0) {
			datalen = v[i].datalen;
			memset(data, v[i].data[0], datalen);
		} else {
			datalen = strlen(v[i].data);
			memcpy(data, v[i].data, datalen);
		}
		maclen = unhex(v[i].mac, want, sizeof(want));
		assert_int_equal(crypto_hmac_sha256(key, keylen, data, datalen, got), 0);
		assert_memory_equal(got, want, maclen);
	}
}

static void test_hmac_empty_key_and_data(void **state)
{
	uint8_t got[32], want[32];

	(void)state;
	unhex("b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad", want, 32);
	assert_int_equal(crypto_hmac_sha256("", 0, "", 0, got), 0);
	assert_memory_equal(got, want, 32);
}

/* RFC 5869 appendix A, cases 1-3 (SHA-256). */
static void test_hkdf_rfc5869(void **state)
{
	static const struct {
		const char *ikm, *salt, *info, *okm;
	} v[] = {
	    {"0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "000102030405060708090a0b0c",
	     "f0f1f2f3f4f5f6f7f8f9",
	     "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b88718"
	     "5865"},
	    {"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
	     "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
	     "404142434445464748494a4b4c4d4e4f",
	     "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f"
	     "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"
	     "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf",
	     "b0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecf"
	     "d0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeef"
	     "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff",
	     "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c"
	     "59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71"
	     "cc30c58179ec3e87c14c01d5c1f3434f1d87"},
	    {"0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "", "",
	     "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"
	     "9d201395faa4b61a96c8"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		uint8_t ikm[80], salt[80], info[80], want[82], got[82];
		size_t ikmlen = unhex(v[i].ikm, ikm, sizeof(ikm));
		size_t saltlen = unhex(v[i].salt, salt, sizeof(salt));
		size_t infolen = unhex(v[i].info, info, sizeof(info));
		size_t len = unhex(v[i].okm, want, sizeof(want));

		assert_int_equal(crypto_hkdf_sha256(saltlen ? salt : NULL, saltlen, ikm, ikmlen,
						    infolen ? info : NULL, infolen, got, len),
				 0);
		assert_memory_equal(got, want, len);
	}
}

static void test_hkdf_length_limits(void **state)
{
	static uint8_t out[255 * 32 + 1];

	(void)state;
	memset(out, 0x77, sizeof(out));
	assert_int_equal(crypto_hkdf_sha256(NULL, 0, "k", 1, NULL, 0, out, sizeof(out)), -EINVAL);
	assert_int_equal(crypto_hkdf_sha256(NULL, 0, "k", 1, NULL, 0, out, 0), -EINVAL);
	for (size_t i = 0; i < sizeof(out); i++)
		assert_int_equal(out[i], 0x77);
	assert_int_equal(crypto_hkdf_sha256(NULL, 0, "k", 1, NULL, 0, out, 255 * 32), 0);
	assert_int_equal(out[255 * 32], 0x77);
}

static void test_helpers(void **state)
{
	uint8_t a[64], b[64], z[64] = {0};

	(void)state;
	assert_int_equal(crypto_random(a, sizeof(a)), 0);
	assert_int_equal(crypto_random(b, sizeof(b)), 0);
	assert_memory_not_equal(a, b, sizeof(a));
	assert_int_equal(crypto_random(a, 0), 0);
	memcpy(b, a, sizeof(a));
	assert_int_equal(crypto_memcmp(a, b, sizeof(a)), 0);
	b[63] ^= 0x01;
	assert_int_not_equal(crypto_memcmp(a, b, sizeof(a)), 0);
	b[63] ^= 0x01, b[0] ^= 0x80;
	assert_int_not_equal(crypto_memcmp(a, b, sizeof(a)), 0);
	assert_int_equal(crypto_memcmp(a, b, 0), 0);
	crypto_wipe(a, sizeof(a));
	assert_memory_equal(a, z, sizeof(a));
	crypto_wipe(NULL, 0);
}

/* ---- AES-256-GCM ---- */

/* McGrew & Viega, "The Galois/Counter Mode of Operation", test cases 13-16. */
static const struct {
	const char *key, *iv, *pt, *aad, *ct, *tag;
} gcm[] = {
    {"0000000000000000000000000000000000000000000000000000000000000000", "000000000000000000000000",
     "", "", "", "530f8afbc74536b9a963b4f1c4cb738b"},
    {"0000000000000000000000000000000000000000000000000000000000000000", "000000000000000000000000",
     "00000000000000000000000000000000", "", "cea7403d4d606b6e074ec5d3baf39d18",
     "d0d1c8a799996bf0265b98b5d48ab919"},
    {"feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308", "cafebabefacedbaddecaf888",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
     "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255",
     "",
     "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
     "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad",
     "b094dac5d93471bdec1a502270e3cc6c"},
    {"feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308", "cafebabefacedbaddecaf888",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
     "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
     "feedfacedeadbeeffeedfacedeadbeefabaddad2",
     "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
     "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
     "76fc6ece0f4e1768cddf8853bb2d551b"},
};

static void test_aead_gcm_vectors(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(gcm) / sizeof(gcm[0]); i++) {
		uint8_t key[32], iv[12], pt[64], aad[20], want[80], got[80], back[64];
		size_t ptlen = unhex(gcm[i].pt, pt, sizeof(pt));
		size_t aadlen = unhex(gcm[i].aad, aad, sizeof(aad));
		struct crypto_aead *a = NULL;

		unhex(gcm[i].key, key, sizeof(key));
		unhex(gcm[i].iv, iv, sizeof(iv));
		assert_int_equal(unhex(gcm[i].ct, want, sizeof(want)), ptlen);
		unhex(gcm[i].tag, want + ptlen, CRYPTO_TAG_LEN);
		assert_int_equal(crypto_aead_new(key, &a), 0);
		assert_int_equal(crypto_aead_seal(a, iv, aad, aadlen, pt, ptlen, got), 0);
		assert_memory_equal(got, want, ptlen + CRYPTO_TAG_LEN);
		assert_int_equal(
		    crypto_aead_open(a, iv, aad, aadlen, want, ptlen + CRYPTO_TAG_LEN, back), 0);
		assert_memory_equal(back, pt, ptlen);
		crypto_aead_free(a);
	}
}

/* One context pair serves many messages of any length, in any order of seal and open. */
static void test_aead_round_trips_reuse_context(void **state)
{
	static const size_t lens[] = {0, 1, 15, 16, 17, 64, 1000, 4096};
	uint8_t key[32], nonce[12], pt[4096], sealed[4096 + 16], back[4096];
	struct crypto_aead *a = NULL;

	(void)state;
	assert_int_equal(crypto_random(key, sizeof(key)), 0);
	assert_int_equal(crypto_random(pt, sizeof(pt)), 0);
	assert_int_equal(crypto_aead_new(key, &a), 0);
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		size_t aadlen = i % 3 == 0 ? 0 : i * 5;

		memset(nonce, (int)i, sizeof(nonce));
		assert_int_equal(crypto_aead_seal(a, nonce, pt + 100, aadlen, pt, lens[i], sealed),
				 0);
		assert_int_equal(crypto_aead_open(a, nonce, pt + 100, aadlen, sealed,
						  lens[i] + CRYPTO_TAG_LEN, back),
				 0);
		assert_memory_equal(back, pt, lens[i]);
	}
	crypto_aead_free(a);
	crypto_aead_free(NULL);
}

static void test_aead_nonce_changes_output(void **state)
{
	uint8_t key[32] = {1}, n1[12] = {0}, n2[12] = {0}, s1[80], s2[80], pt[64] = {2};
	struct crypto_aead *a = NULL;

	(void)state;
	n2[11] = 1;
	assert_int_equal(crypto_aead_new(key, &a), 0);
	assert_int_equal(crypto_aead_seal(a, n1, NULL, 0, pt, sizeof(pt), s1), 0);
	assert_int_equal(crypto_aead_seal(a, n2, NULL, 0, pt, sizeof(pt), s2), 0);
	assert_memory_not_equal(s1, s2, sizeof(pt));
	assert_memory_not_equal(s1 + 64, s2 + 64, CRYPTO_TAG_LEN);
	/* Same nonce, same output: the context carries nothing over from the previous message. */
	assert_int_equal(crypto_aead_seal(a, n1, NULL, 0, pt, sizeof(pt), s2), 0);
	assert_memory_equal(s1, s2, sizeof(s1));
	crypto_aead_free(a);
}

enum tamper { T_TAG, T_CT, T_AAD, T_NONCE, T_KEY, T_SHORT, T_EMPTY, T_NOAAD, T_EXTRA, T_END };

/* Seal a 64-byte reading, spoil one thing, open: -EBADMSG with the plaintext area wiped. Then
 * the untouched message still opens with the same context. */
static void test_aead_tamper_refused(void **state)
{
	uint8_t key[32], other_key[32], nonce[12], aad[16], pt[64], sealed[81], out[81];
	struct crypto_aead *a = NULL, *b = NULL;

	(void)state;
	assert_int_equal(crypto_random(key, sizeof(key)), 0);
	memcpy(other_key, key, sizeof(key));
	other_key[31] ^= 1;
	assert_int_equal(crypto_random(nonce, sizeof(nonce)), 0);
	memset(aad, 'a', sizeof(aad));
	memset(pt, 'p', sizeof(pt));
	assert_int_equal(crypto_aead_new(key, &a), 0);
	assert_int_equal(crypto_aead_new(other_key, &b), 0);
	assert_int_equal(crypto_aead_seal(a, nonce, aad, sizeof(aad), pt, sizeof(pt), sealed), 0);
	sealed[80] = 0;

	for (int t = 0; t < T_END; t++) {
		uint8_t in[81], n[12], ad[16];
		size_t inlen = 64 + CRYPTO_TAG_LEN, adlen = sizeof(ad);
		struct crypto_aead *c = a;

		memcpy(in, sealed, sizeof(in));
		memcpy(n, nonce, sizeof(n));
		memcpy(ad, aad, sizeof(ad));
		switch (t) {
		case T_TAG:
			in[64 + 15] ^= 0x80;
			break;
		case T_CT:
			in[0] ^= 0x01;
			break;
		case T_AAD:
			ad[7] ^= 0x01;
			break;
		case T_NONCE:
			n[0] ^= 0x01;
			break;
		case T_KEY:
			c = b;
			break;
		case T_SHORT:
			inlen = CRYPTO_TAG_LEN - 1;
			break;
		case T_EMPTY:
			inlen = 0;
			break;
		case T_NOAAD:
			adlen = 0;
			break;
		case T_EXTRA: /* a stray byte makes the last 16 a wrong tag */
			inlen += 1;
			break;
		}
		memset(out, 0xee, sizeof(out));
		assert_int_equal(crypto_aead_open(c, n, ad, adlen, in, inlen, out), -EBADMSG);
		for (size_t i = 0; i + CRYPTO_TAG_LEN < inlen; i++)
			assert_int_equal(out[i], 0);
		if (inlen < CRYPTO_TAG_LEN)
			assert_int_equal(out[0], 0xee); /* nothing was decrypted */
	}
	assert_int_equal(crypto_aead_open(a, nonce, aad, sizeof(aad), sealed, 80, out), 0);
	assert_memory_equal(out, pt, sizeof(pt));
	crypto_aead_free(a);
	crypto_aead_free(b);
}

/* ---- RSA ---- */

static int group_setup(void **state)
{
	struct keys *k = calloc(1, sizeof(*k));

	if (k == NULL || crypto_rsa_generate(2048, &k->a) < 0 ||
	    crypto_rsa_generate(2048, &k->b) < 0)
		return -1;
	snprintf(k->dir, sizeof(k->dir), "%s", "/tmp/iotsec-test-crypto-XXXXXX");
	if (mkdtemp(k->dir) == NULL)
		return -1;
	*state = k;
	return 0;
}

static int group_teardown(void **state)
{
	struct keys *k = *state;
	char cmd[96];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", k->dir);
	if (system(cmd) != 0)
		return -1;
	EVP_PKEY_free(k->a);
	EVP_PKEY_free(k->b);
	free(k);
	return 0;
}

/* One context per key, reused: every signature verifies with a reused verifier, a wrong key or
 * a context of the other kind refuses, and the one-shot calls agree with it. */
static void test_pss_contexts_reused(void **state)
{
	static const char msg[] = "{\"type\":\"HELLO\"}";
	struct keys *k = *state;
	struct crypto_pss *signer = NULL, *verifier = NULL, *other = NULL;
	uint8_t *sig[3] = {NULL};
	size_t len[3];

	assert_int_equal(crypto_pss_new(k->a, true, &signer), 0);
	assert_int_equal(crypto_pss_new(k->a, false, &verifier), 0);
	assert_int_equal(crypto_pss_new(k->b, false, &other), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(crypto_pss_sign(signer, msg, strlen(msg), &sig[i], &len[i]), 0);
	assert_memory_not_equal(sig[0], sig[1], len[0]); /* a fresh salt each time */
	for (int i = 0; i < 3; i++) {
		assert_int_equal(crypto_pss_verify(verifier, msg, strlen(msg), sig[i], len[i]), 0);
		assert_int_equal(crypto_verify(k->a, msg, strlen(msg), sig[i], len[i]), 0);
		assert_int_equal(crypto_pss_verify(other, msg, strlen(msg), sig[i], len[i]),
				 -IOTSEC_EBADSIG);
		assert_int_equal(crypto_pss_verify(verifier, msg, strlen(msg) - 1, sig[i], len[i]),
				 -IOTSEC_EBADSIG);
	}
	/* A bad signature does not spoil the context for the good ones after it. */
	sig[0][7] ^= 1;
	assert_int_equal(crypto_pss_verify(verifier, msg, strlen(msg), sig[0], len[0]),
			 -IOTSEC_EBADSIG);
	assert_int_equal(crypto_pss_verify(verifier, msg, strlen(msg), sig[1], len[1]), 0);
	/* Each context does one job. */
	assert_int_equal(crypto_pss_verify(signer, msg, strlen(msg), sig[1], len[1]),
			 -IOTSEC_EBADSIG);
	assert_int_equal(crypto_pss_sign(verifier, msg, strlen(msg), &sig[0], &len[0]), -EINVAL);
	assert_int_equal(crypto_pss_verify(verifier, msg, strlen(msg), sig[1], 0), -IOTSEC_EBADSIG);
	for (int i = 0; i < 3; i++)
		free(sig[i]);
	crypto_pss_free(signer), crypto_pss_free(verifier), crypto_pss_free(other);
	crypto_pss_free(NULL);
}

/* Keys cross jansson as base64 strings: once crypto_wipe_json() ran, every block jansson frees
 * goes through crypto_wipe_free(). */
static void test_json_frees_wiped(void **state)
{
	json_malloc_t m = NULL;
	json_free_t f = NULL;
	json_t *o;

	(void)state;
	crypto_wipe_json();
	json_get_alloc_funcs(&m, &f);
	assert_ptr_equal(f, crypto_wipe_free);
	assert_ptr_equal(m, malloc);
	o = json_pack("{s:s}", "key", "c2VjcmV0IGtleSBieXRlcyBvZiBhIHJpbmcga2V5IQ==");
	assert_non_null(o);
	json_decref(o);
	crypto_wipe_free(NULL);
}

static const char *at(struct keys *k, const char *name)
{
	snprintf(k->path, sizeof(k->path), "%s/%s", k->dir, name);
	return k->path;
}

static void test_rsa_generate(void **state)
{
	struct keys *k = *state;
	EVP_PKEY *key = (EVP_PKEY *)k;

	assert_true(EVP_PKEY_is_a(k->a, "RSA"));
	assert_int_equal(EVP_PKEY_get_bits(k->a), 2048);
	assert_int_not_equal(EVP_PKEY_eq(k->a, k->b), 1);
	assert_int_equal(crypto_rsa_generate(1024, &key), -EINVAL);
	assert_int_equal(crypto_rsa_generate(0, &key), -EINVAL);
	assert_ptr_equal(key, (EVP_PKEY *)k);
}

/* One secret wrapped to pub through a context of its own. */
static int wrap_to(EVP_PKEY *pub, const void *secret, size_t len, uint8_t **ret, size_t *ret_len)
{
	EVP_PKEY_CTX *ctx = crypto_rsa_wrap_ctx(pub);
	int r;

	assert_non_null(ctx);
	r = crypto_rsa_wrap(ctx, secret, len, ret, ret_len);
	EVP_PKEY_CTX_free(ctx);
	return r;
}

static void test_rsa_wrap_round_trip(void **state)
{
	struct keys *k = *state;
	uint8_t secret[32], out[32], big[190], bigout[190], *w1 = NULL, *w2 = NULL;
	size_t l1 = 0, l2 = 0, got = 0;

	EVP_PKEY_CTX *ctx = crypto_rsa_wrap_ctx(k->a);

	/* Two wraps through one context: reusing it is what the context is for. */
	assert_non_null(ctx);
	assert_int_equal(crypto_random(secret, sizeof(secret)), 0);
	assert_int_equal(crypto_rsa_wrap(ctx, secret, sizeof(secret), &w1, &l1), 0);
	assert_int_equal(crypto_rsa_wrap(ctx, secret, sizeof(secret), &w2, &l2), 0);
	EVP_PKEY_CTX_free(ctx);
	assert_int_equal(l1, 256);
	assert_int_equal(l2, 256);
	assert_memory_not_equal(w1, w2, l1); /* OAEP is randomised */
	assert_int_equal(crypto_rsa_unwrap(k->a, w1, l1, out, sizeof(out), &got), 0);
	assert_int_equal(got, 32);
	assert_memory_equal(out, secret, 32);
	assert_int_equal(crypto_rsa_unwrap(k->a, w2, l2, out, sizeof(out), &got), 0);
	assert_memory_equal(out, secret, 32);
	free(w1), free(w2);
	/* The largest secret OAEP-SHA256 carries in 2048 bits, and an empty one. */
	memset(big, 0x3c, sizeof(big));
	assert_int_equal(wrap_to(k->b, big, sizeof(big), &w1, &l1), 0);
	assert_int_equal(crypto_rsa_unwrap(k->b, w1, l1, bigout, sizeof(bigout), &got), 0);
	assert_int_equal(got, sizeof(big));
	assert_memory_equal(bigout, big, sizeof(big));
	free(w1);
	assert_int_equal(wrap_to(k->b, "", 0, &w1, &l1), 0);
	assert_int_equal(crypto_rsa_unwrap(k->b, w1, l1, out, sizeof(out), &got), 0);
	assert_int_equal(got, 0);
	free(w1);
}

/* A blob made with OpenSSL's own OAEP-SHA256/MGF1-SHA256 opens; the default OAEP-SHA1 and
 * OAEP-SHA256 with MGF1-SHA1 do not, so the parameters really are the ones promised. */
static uint8_t *oaep_by_hand(EVP_PKEY *pub, const char *md, const char *mgf1, const uint8_t *secret,
			     size_t len, size_t *ret_len)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pub, NULL);
	uint8_t *blob = malloc(256);

	*ret_len = 256;
	assert_non_null(ctx);
	assert_int_equal(EVP_PKEY_encrypt_init(ctx), 1);
	assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING), 1);
	if (md != NULL)
		assert_int_equal(EVP_PKEY_CTX_set_rsa_oaep_md_name(ctx, md, NULL), 1);
	if (mgf1 != NULL)
		assert_int_equal(EVP_PKEY_CTX_set_rsa_mgf1_md_name(ctx, mgf1, NULL), 1);
	assert_int_equal(EVP_PKEY_encrypt(ctx, blob, ret_len, secret, len), 1);
	EVP_PKEY_CTX_free(ctx);
	return blob;
}

static void test_rsa_wrap_parameters(void **state)
{
	struct keys *k = *state;
	uint8_t secret[32], out[32], *blob;
	size_t len, got = 0;

	memset(secret, 0x5e, sizeof(secret));
	blob = oaep_by_hand(k->a, "SHA256", "SHA256", secret, sizeof(secret), &len);
	assert_int_equal(crypto_rsa_unwrap(k->a, blob, len, out, sizeof(out), &got), 0);
	assert_memory_equal(out, secret, sizeof(secret));
	free(blob);
	blob = oaep_by_hand(k->a, NULL, NULL, secret, sizeof(secret), &len);
	assert_int_equal(crypto_rsa_unwrap(k->a, blob, len, out, sizeof(out), &got), -EBADMSG);
	free(blob);
	blob = oaep_by_hand(k->a, "SHA256", "SHA1", secret, sizeof(secret), &len);
	assert_int_equal(crypto_rsa_unwrap(k->a, blob, len, out, sizeof(out), &got), -EBADMSG);
	free(blob);
}

static void test_rsa_unwrap_refuses(void **state)
{
	struct keys *k = *state;
	uint8_t secret[32], out[32], small[31], *blob = NULL, *bad;
	size_t len = 0, got = 99;

	memset(secret, 0x11, sizeof(secret));
	assert_int_equal(wrap_to(k->a, secret, sizeof(secret), &blob, &len), 0);
	bad = malloc(len + 1);
	assert_non_null(bad);

	assert_int_equal(crypto_rsa_unwrap(k->b, blob, len, out, sizeof(out), &got), -EBADMSG);
	for (size_t i = 0; i < len; i += 51) {
		memcpy(bad, blob, len);
		bad[i] ^= 0x04;
		assert_int_equal(crypto_rsa_unwrap(k->a, bad, len, out, sizeof(out), &got),
				 -EBADMSG);
	}
	memcpy(bad, blob, len);
	assert_int_equal(crypto_rsa_unwrap(k->a, bad, len - 1, out, sizeof(out), &got), -EBADMSG);
	assert_int_equal(crypto_rsa_unwrap(k->a, bad, 0, out, sizeof(out), &got), -EBADMSG);
	bad[len] = 0;
	assert_int_equal(crypto_rsa_unwrap(k->a, bad, len + 1, out, sizeof(out), &got), -EBADMSG);
	memset(bad, 0xff, len); /* larger than the modulus */
	assert_int_equal(crypto_rsa_unwrap(k->a, bad, len, out, sizeof(out), &got), -EBADMSG);
	memset(small, 0xaa, sizeof(small));
	assert_int_equal(crypto_rsa_unwrap(k->a, blob, len, small, sizeof(small), &got), -EMSGSIZE);
	for (size_t i = 0; i < sizeof(small); i++)
		assert_int_equal(small[i], 0xaa);
	assert_int_equal(got, 99);
	free(bad);
	free(blob);
}

static void test_rsa_wrap_refuses(void **state)
{
	struct keys *k = *state;
	uint8_t big[191] = {0}, *blob = (uint8_t *)&blob;
	size_t len = 5;
	EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");

	assert_non_null(ec);
	assert_int_equal(wrap_to(k->a, big, sizeof(big), &blob, &len), -EMSGSIZE);
	assert_null(crypto_rsa_wrap_ctx(ec));
	assert_null(crypto_rsa_wrap_ctx(NULL));
	assert_ptr_equal(blob, (uint8_t *)&blob);
	assert_int_equal(len, 5);
	EVP_PKEY_free(ec);
}

static void test_sign_verify(void **state)
{
	static const char msg[] = "{\"type\":\"I_AM_CONTROLLER\"}";
	struct keys *k = *state;
	uint8_t *s1 = NULL, *s2 = NULL;
	size_t l1 = 0, l2 = 0;

	assert_int_equal(crypto_sign(k->a, msg, strlen(msg), &s1, &l1), 0);
	assert_int_equal(crypto_sign(k->a, msg, strlen(msg), &s2, &l2), 0);
	assert_int_equal(l1, 256);
	assert_memory_not_equal(s1, s2, l1); /* PSS is salted */
	assert_int_equal(crypto_verify(k->a, msg, strlen(msg), s1, l1), 0);
	assert_int_equal(crypto_verify(k->a, msg, strlen(msg), s2, l2), 0);
	free(s1), free(s2);
	assert_int_equal(crypto_sign(k->b, "", 0, &s1, &l1), 0);
	assert_int_equal(crypto_verify(k->b, "", 0, s1, l1), 0);
	free(s1);
}

static void test_verify_refuses(void **state)
{
	static const char msg[] = "{\"type\":\"I_AM_CONTROLLER\"}";
	struct keys *k = *state;
	uint8_t *sig = NULL, *bad;
	size_t len = 0, n = strlen(msg);
	EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");

	assert_int_equal(crypto_sign(k->a, msg, n, &sig, &len), 0);
	bad = malloc(len + 1);
	assert_non_null(bad);
	for (size_t i = 0; i < len; i += 37) {
		memcpy(bad, sig, len);
		bad[i] ^= 0x40;
		assert_int_equal(crypto_verify(k->a, msg, n, bad, len), -IOTSEC_EBADSIG);
	}
	assert_int_equal(crypto_verify(k->a, "{\"type\":\"I_AM_CONTROLLEr\"}", n, sig, len),
			 -IOTSEC_EBADSIG);
	assert_int_equal(crypto_verify(k->a, msg, n - 1, sig, len), -IOTSEC_EBADSIG);
	assert_int_equal(crypto_verify(k->b, msg, n, sig, len), -IOTSEC_EBADSIG);
	assert_int_equal(crypto_verify(k->a, msg, n, sig, 0), -IOTSEC_EBADSIG);
	assert_int_equal(crypto_verify(k->a, msg, n, sig, len - 1), -IOTSEC_EBADSIG);
	memcpy(bad, sig, len);
	bad[len] = 0;
	assert_int_equal(crypto_verify(k->a, msg, n, bad, len + 1), -IOTSEC_EBADSIG);
	assert_int_equal(crypto_verify(ec, msg, n, sig, len), -IOTSEC_EBADSIG);
	free(bad);
	free(sig);
	EVP_PKEY_free(ec);
}

/* A signature by OpenSSL set up by hand as PSS-SHA256, MGF1-SHA256, salt 32 verifies; the same
 * with another salt length or PKCS#1 v1.5 padding does not, and ours verifies by hand. */
static uint8_t *sign_by_hand(EVP_PKEY *key, int pad, int saltlen, const char *msg, size_t *len)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	uint8_t *sig = malloc(256);

	*len = 256;
	assert_int_equal(EVP_DigestSignInit_ex(ctx, &pctx, "SHA256", NULL, NULL, key, NULL), 1);
	assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pctx, pad), 1);
	if (pad == RSA_PKCS1_PSS_PADDING)
		assert_int_equal(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, saltlen), 1);
	assert_int_equal(EVP_DigestSign(ctx, sig, len, (const uint8_t *)msg, strlen(msg)), 1);
	EVP_MD_CTX_free(ctx);
	return sig;
}

static void test_sign_parameters(void **state)
{
	static const char msg[] = "reading 42";
	struct keys *k = *state;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	uint8_t *sig;
	size_t len;

	sig = sign_by_hand(k->a, RSA_PKCS1_PSS_PADDING, 32, msg, &len);
	assert_int_equal(crypto_verify(k->a, msg, strlen(msg), sig, len), 0);
	free(sig);
	sig = sign_by_hand(k->a, RSA_PKCS1_PSS_PADDING, 20, msg, &len);
	assert_int_equal(crypto_verify(k->a, msg, strlen(msg), sig, len), -IOTSEC_EBADSIG);
	free(sig);
	sig = sign_by_hand(k->a, RSA_PKCS1_PADDING, 0, msg, &len);
	assert_int_equal(crypto_verify(k->a, msg, strlen(msg), sig, len), -IOTSEC_EBADSIG);
	free(sig);

	assert_int_equal(crypto_sign(k->a, msg, strlen(msg), &sig, &len), 0);
	assert_int_equal(EVP_DigestVerifyInit_ex(ctx, &pctx, "SHA256", NULL, NULL, k->a, NULL), 1);
	assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING), 1);
	assert_int_equal(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32), 1);
	assert_int_equal(EVP_PKEY_CTX_set_rsa_mgf1_md_name(pctx, "SHA256", NULL), 1);
	assert_int_equal(EVP_DigestVerify(ctx, sig, len, (const uint8_t *)msg, strlen(msg)), 1);
	EVP_MD_CTX_free(ctx);
	free(sig);
}

static void test_sign_refuses_non_rsa(void **state)
{
	EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	uint8_t *sig = (uint8_t *)&sig;
	size_t len = 3;

	(void)state;
	assert_non_null(ec);
	assert_int_equal(crypto_sign(ec, "m", 1, &sig, &len), -EINVAL);
	assert_ptr_equal(sig, (uint8_t *)&sig);
	assert_int_equal(len, 3);
	EVP_PKEY_free(ec);
}

/* ---- key files ---- */

static void test_key_save_load(void **state)
{
	struct keys *k = *state;
	EVP_PKEY *back = NULL;
	struct stat st;
	mode_t old = umask(0);

	assert_int_equal(crypto_save_private_key(at(k, "a.key"), k->a), 0);
	umask(old);
	assert_int_equal(stat(k->path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(crypto_load_private_key(k->path, &back), 0);
	assert_int_equal(EVP_PKEY_eq(back, k->a), 1);
	assert_int_not_equal(EVP_PKEY_eq(back, k->b), 1);
	EVP_PKEY_free(back);
	/* Saving again replaces the key. */
	assert_int_equal(crypto_save_private_key(k->path, k->b), 0);
	assert_int_equal(crypto_load_private_key(k->path, &back), 0);
	assert_int_equal(EVP_PKEY_eq(back, k->b), 1);
	EVP_PKEY_free(back);
}

static void test_key_load_refuses(void **state)
{
	static const mode_t loose[] = {0644, 0640, 0604, 0660};
	struct keys *k = *state;
	EVP_PKEY *key = (EVP_PKEY *)k, *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	BIO *bio = BIO_new(BIO_s_mem());
	char *pem = NULL;
	long len;

	assert_int_equal(crypto_save_private_key(at(k, "loose.key"), k->a), 0);
	for (size_t i = 0; i < sizeof(loose) / sizeof(loose[0]); i++) {
		assert_int_equal(chmod(k->path, loose[i]), 0);
		assert_int_equal(crypto_load_private_key(k->path, &key), -IOTSEC_ESECRET);
	}
	assert_int_equal(crypto_load_private_key(at(k, "missing.key"), &key), -ENOENT);
	assert_int_equal(
	    file_write_atomic(at(k, "garbage.key"), "-----BEGIN PRIVATE KEY-----\nxx", 31, 0600),
	    0);
	assert_int_equal(crypto_load_private_key(k->path, &key), -EBADMSG);
	assert_int_equal(file_write_atomic(at(k, "empty.key"), "", 0, 0600), 0);
	assert_int_equal(crypto_load_private_key(k->path, &key), -EBADMSG);

	/* A public key alone is not a private key. */
	assert_int_equal(PEM_write_bio_PUBKEY(bio, k->a), 1);
	len = BIO_get_mem_data(bio, &pem);
	assert_int_equal(file_write_atomic(at(k, "pub.key"), pem, (size_t)len, 0600), 0);
	assert_int_equal(crypto_load_private_key(k->path, &key), -EBADMSG);
	/* Encrypted: refused without a prompt for a passphrase. */
	assert_int_equal(BIO_reset(bio), 1);
	assert_int_equal(PEM_write_bio_PrivateKey(bio, k->a, EVP_aes_256_cbc(),
						  (unsigned char *)"secret", 6, NULL, NULL),
			 1);
	len = BIO_get_mem_data(bio, &pem);
	assert_int_equal(file_write_atomic(at(k, "enc.key"), pem, (size_t)len, 0600), 0);
	assert_int_equal(crypto_load_private_key(k->path, &key), -EBADMSG);
	/* Not RSA. */
	assert_non_null(ec);
	assert_int_equal(crypto_save_private_key(at(k, "ec.key"), ec), 0);
	assert_int_equal(crypto_load_private_key(k->path, &key), -EKEYREJECTED);
	assert_ptr_equal(key, (EVP_PKEY *)k);
	BIO_free(bio);
	EVP_PKEY_free(ec);
}

static void test_key_save_refuses(void **state)
{
	struct keys *k = *state;
	EVP_PKEY *pub = NULL;
	BIO *bio = BIO_new(BIO_s_mem());
	struct stat st;

	assert_int_equal(crypto_save_private_key(at(k, "nodir/a.key"), k->a), -ENOENT);
	assert_int_equal(stat(at(k, "nodir"), &st), -1);
	/* Only the public half: nothing to save, nothing written. */
	assert_int_equal(PEM_write_bio_PUBKEY(bio, k->a), 1);
	pub = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	assert_non_null(pub);
	assert_int_equal(crypto_save_private_key(at(k, "pub-only.key"), pub), -EINVAL);
	assert_int_equal(stat(k->path, &st), -1);
	EVP_PKEY_free(pub);
	BIO_free(bio);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sha256_vectors),
	    cmocka_unit_test(test_hmac_rfc4231),
	    cmocka_unit_test(test_hmac_empty_key_and_data),
	    cmocka_unit_test(test_hkdf_rfc5869),
	    cmocka_unit_test(test_hkdf_length_limits),
	    cmocka_unit_test(test_helpers),
	    cmocka_unit_test(test_aead_gcm_vectors),
	    cmocka_unit_test(test_aead_round_trips_reuse_context),
	    cmocka_unit_test(test_aead_nonce_changes_output),
	    cmocka_unit_test(test_aead_tamper_refused),
	    cmocka_unit_test(test_rsa_generate),
	    cmocka_unit_test(test_rsa_wrap_round_trip),
	    cmocka_unit_test(test_rsa_wrap_parameters),
	    cmocka_unit_test(test_rsa_unwrap_refuses),
	    cmocka_unit_test(test_rsa_wrap_refuses),
	    cmocka_unit_test(test_sign_verify),
	    cmocka_unit_test(test_pss_contexts_reused),
	    cmocka_unit_test(test_json_frees_wiped),
	    cmocka_unit_test(test_verify_refuses),
	    cmocka_unit_test(test_sign_parameters),
	    cmocka_unit_test(test_sign_refuses_non_rsa),
	    cmocka_unit_test(test_key_save_load),
	    cmocka_unit_test(test_key_load_refuses),
	    cmocka_unit_test(test_key_save_refuses),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
