/* stream: the schedule, the key chain and a holder's two keys. The chain's known answers are
 * computed here apart from stream.c, straight through OpenSSL's HKDF and HMAC from the
 * formulas in stream.h, and checked against values computed with Python's hmac module. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>

#include "log.h"
#include "stream.h"

#define E0 5

static uint8_t root[CRYPTO_KEY_LEN]; /* 0, 1, ..., 31 */

/* Python: the chain of root 00..1f from e0 = 5, and its id. */
static const uint8_t kat_k5[CRYPTO_KEY_LEN] = {
    0x99, 0x5a, 0x6b, 0x04, 0x35, 0xa6, 0x41, 0x4b, 0x5c, 0xa3, 0x3f, 0xa6, 0x32, 0x9c, 0xc7, 0x5a,
    0x1a, 0x47, 0x3d, 0x7a, 0xdd, 0x5d, 0x84, 0x16, 0xb3, 0x3b, 0xa5, 0x46, 0xa2, 0xcc, 0xb8, 0xb7,
};
static const uint8_t kat_k7[CRYPTO_KEY_LEN] = {
    0x4c, 0x49, 0xbf, 0x4c, 0x50, 0xc6, 0x69, 0x29, 0x07, 0x0a, 0x12, 0xb6, 0xeb, 0x73, 0x26, 0x7f,
    0x19, 0x53, 0x7e, 0x55, 0x5f, 0xcf, 0xd8, 0x09, 0x19, 0x0d, 0x69, 0x10, 0x72, 0x18, 0x0d, 0x06,
};
static const uint8_t kat_id[STREAM_ID_LEN] = {
    0x24, 0xc3, 0xa5, 0xe2, 0x6d, 0x36, 0xc3, 0xcd, 0x29, 0x6a, 0xb4, 0x33, 0x57, 0x36, 0x12, 0x17,
};

/* K_e from K_{e-1}, by OpenSSL's HKDF directly. */
static void ref_next(const uint8_t prev[CRYPTO_KEY_LEN], uint32_t e, uint8_t out[CRYPTO_KEY_LEN])
{
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	EVP_KDF_CTX *ctx = EVP_KDF_CTX_new(kdf);
	uint8_t info[4] = {(uint8_t)(e >> 24), (uint8_t)(e >> 16), (uint8_t)(e >> 8), (uint8_t)e};
	char salt[] = "iotsec stream v1";
	OSSL_PARAM p[] = {
	    OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, "SHA256", 0),
	    OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, salt, strlen(salt)),
	    OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)prev, CRYPTO_KEY_LEN),
	    OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, sizeof(info)),
	    OSSL_PARAM_construct_end(),
	};

	assert_non_null(ctx);
	assert_int_equal(EVP_KDF_derive(ctx, out, CRYPTO_KEY_LEN, p), 1);
	EVP_KDF_CTX_free(ctx);
	EVP_KDF_free(kdf);
}

/* K_e of the stream (root, e0), e >= e0 - 1. */
static void ref_key(uint32_t e0, uint32_t e, uint8_t out[CRYPTO_KEY_LEN])
{
	uint8_t k[CRYPTO_KEY_LEN], next[CRYPTO_KEY_LEN];

	memcpy(k, root, sizeof(k));
	for (uint32_t i = e0; i <= e; i++) {
		ref_next(k, i, next);
		memcpy(k, next, sizeof(k));
	}
	memcpy(out, k, sizeof(k));
}

static int setup(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(root); i++)
		root[i] = (uint8_t)i;
	return 0;
}

static void test_epoch_schedule(void **state)
{
	struct stream_schedule s = {.start = 1767225600, .interval = 3600};

	(void)state;
	assert_int_equal(stream_epoch(&s, 0), 0);
	assert_int_equal(stream_epoch(&s, s.start - 1), 0);
	assert_int_equal(stream_epoch(&s, s.start), 1);
	assert_int_equal(stream_epoch(&s, s.start + 3599), 1);
	assert_int_equal(stream_epoch(&s, s.start + 3600), 2);
	assert_int_equal(stream_epoch(&s, s.start + 36 * 3600 + 5), 37);
	assert_int_equal(stream_epoch(&s, INT64_MIN), 0);
	assert_int_equal(stream_epoch(&s, INT64_MAX), UINT32_MAX); /* saturates, never wraps */
	for (uint32_t e = 1; e < 100; e++) {
		assert_int_equal(stream_epoch(&s, stream_epoch_start(&s, e)), e);
		assert_int_equal(stream_epoch(&s, stream_epoch_start(&s, e) - 1), e - 1);
	}
	assert_int_equal(stream_epoch_start(&s, 1), s.start);
	assert_int_equal(stream_epoch_start(&s, 3), s.start + 7200);
	s.interval = 1;
	assert_int_equal(stream_epoch(&s, s.start + 9), 10);
	s.interval = 0; /* no configuration allows it: no epoch rather than a division by zero */
	assert_int_equal(stream_epoch(&s, s.start + 9), 0);
	s = (struct stream_schedule){.start = INT64_MIN, .interval = 1};
	assert_int_equal(stream_epoch(&s, INT64_MAX), UINT32_MAX);
}

static void test_chain_known_answer(void **state)
{
	uint8_t k[CRYPTO_KEY_LEN], ref[CRYPTO_KEY_LEN], id[STREAM_ID_LEN], mac[32];
	unsigned maclen = 0;

	(void)state;
	assert_int_equal(stream_key_at(root, E0, E0, k), 0);
	assert_memory_equal(k, kat_k5, sizeof(k));
	assert_int_equal(stream_key_at(root, E0, E0 + 2, k), 0);
	assert_memory_equal(k, kat_k7, sizeof(k));
	for (uint32_t e = E0; e < E0 + 20; e++) {
		ref_key(E0, e, ref);
		assert_int_equal(stream_key_at(root, E0, e, k), 0);
		assert_memory_equal(k, ref, sizeof(k));
	}
	ref_key(E0, E0, ref);
	assert_memory_equal(ref, kat_k5, sizeof(ref)); /* the reference agrees with Python */
	/* K_e from K_{e-1} alone */
	assert_int_equal(stream_next_key(kat_k5, E0 + 1, k), 0);
	ref_next(kat_k5, E0 + 1, ref);
	assert_memory_equal(k, ref, sizeof(k));
	assert_int_equal(stream_next_key(k, E0 + 2, k), 0); /* in place */
	assert_memory_equal(k, kat_k7, sizeof(k));

	assert_int_equal(stream_id(root, id), 0);
	assert_memory_equal(id, kat_id, sizeof(id));
	assert_non_null(HMAC(EVP_sha256(), root, sizeof(root),
			     (const uint8_t *)"iotsec stream id v1", 19, mac, &maclen));
	assert_memory_equal(id, mac, sizeof(id));
	/* The id is not a key of the chain, nor the first bytes of one. */
	assert_memory_not_equal(id, kat_k5, sizeof(id));
	assert_memory_not_equal(id, root, sizeof(id));
}

/* Each input changes the key: epoch (info), root (ikm), e0 (where the chain starts). */
static void test_chain_differs(void **state)
{
	uint8_t k[CRYPTO_KEY_LEN], other[CRYPTO_KEY_LEN];

	(void)state;
	assert_int_equal(stream_key_at(root, E0 + 1, E0 + 2, k), 0);
	assert_memory_not_equal(k, kat_k7, sizeof(k));
	memcpy(other, root, sizeof(other));
	other[31] ^= 1;
	assert_int_equal(stream_key_at(other, E0, E0 + 2, k), 0);
	assert_memory_not_equal(k, kat_k7, sizeof(k));
	assert_int_equal(stream_next_key(kat_k5, E0 + 2, k), 0); /* skipping an epoch's info */
	assert_memory_not_equal(k, kat_k7, sizeof(k));
	assert_int_equal(stream_id(other, other), 0);
	assert_memory_not_equal(other, kat_id, STREAM_ID_LEN);
}

static void test_key_at_refused(void **state)
{
	uint8_t k[CRYPTO_KEY_LEN];

	(void)state;
	memset(k, 0x5a, sizeof(k));
	assert_int_equal(stream_key_at(root, E0, E0 - 1, k), -ERANGE); /* the root's own epoch */
	assert_int_equal(stream_key_at(root, E0, 0, k), -ERANGE);
	assert_int_equal(stream_key_at(root, 0, 3, k), -EINVAL);
	assert_int_equal(stream_key_at(root, E0, E0 + STREAM_ADVANCE_MAX + 1, k), -ERANGE);
	assert_int_equal(stream_key_at(root, 1, UINT32_MAX, k), -ERANGE);
	for (size_t i = 0; i < sizeof(k); i++)
		assert_int_equal(k[i], 0x5a); /* untouched */
}

static void test_from_root_and_advance(void **state)
{
	struct stream *s = NULL;
	uint8_t ref[CRYPTO_KEY_LEN], ref_prev[CRYPTO_KEY_LEN];
	struct crypto_aead *a;

	(void)state;
	assert_int_equal(stream_from_root(root, E0, &s), 0);
	assert_int_equal(stream_current(s), E0 - 1);
	assert_memory_equal(stream_get_id(s), kat_id, STREAM_ID_LEN);
	assert_memory_equal(stream_key(s, false), root, CRYPTO_KEY_LEN);
	assert_null(stream_key(s, true));
	/* The root is no reading key: nothing seals under it. */
	assert_null(stream_aead(s, E0 - 1));
	assert_null(stream_aead(s, E0));

	assert_int_equal(stream_advance(s, E0), 0);
	assert_int_equal(stream_current(s), E0);
	assert_memory_equal(stream_key(s, false), kat_k5, CRYPTO_KEY_LEN);
	assert_null(stream_key(s, true)); /* the root is not kept as a previous key */
	assert_non_null(stream_aead(s, E0));
	assert_null(stream_aead(s, E0 - 1));

	a = stream_aead(s, E0);
	assert_int_equal(stream_advance(s, E0 + 1), 0);
	assert_ptr_equal(stream_aead(s, E0), a); /* one step: the AEAD moves, no key setup */
	assert_memory_equal(stream_key(s, true), kat_k5, CRYPTO_KEY_LEN);
	ref_key(E0, E0 + 1, ref);
	assert_memory_equal(stream_key(s, false), ref, CRYPTO_KEY_LEN);

	assert_int_equal(stream_advance(s, E0 + 1), 0); /* the same epoch: nothing */
	assert_memory_equal(stream_key(s, false), ref, CRYPTO_KEY_LEN);

	assert_int_equal(stream_advance(s, E0 + 40), 0);
	ref_key(E0, E0 + 40, ref);
	ref_key(E0, E0 + 39, ref_prev);
	assert_int_equal(stream_current(s), E0 + 40);
	assert_memory_equal(stream_key(s, false), ref, CRYPTO_KEY_LEN);
	assert_memory_equal(stream_key(s, true), ref_prev, CRYPTO_KEY_LEN);
	assert_non_null(stream_aead(s, E0 + 40));
	assert_non_null(stream_aead(s, E0 + 39));
	assert_null(stream_aead(s, E0 + 38));
	assert_null(stream_aead(s, E0 + 1));
	assert_null(stream_aead(s, E0 + 41));
	stream_free(s);
	stream_free(NULL);
}

static void test_advance_refused(void **state)
{
	struct stream *s = NULL;

	(void)state;
	assert_int_equal(stream_from_root(root, E0, &s), 0);
	assert_int_equal(stream_advance(s, E0 + 2), 0);
	assert_int_equal(stream_advance(s, E0 + 1), -ERANGE); /* never back */
	assert_int_equal(stream_advance(s, 0), -ERANGE);
	assert_int_equal(stream_advance(s, E0 + 2 + STREAM_ADVANCE_MAX + 1), -ERANGE);
	assert_int_equal(stream_advance(s, UINT32_MAX), -ERANGE);
	/* Unchanged by the refusals. */
	assert_int_equal(stream_current(s), E0 + 2);
	assert_memory_equal(stream_key(s, false), kat_k7, CRYPTO_KEY_LEN);
	assert_non_null(stream_aead(s, E0 + 1));
	stream_free(s);
	assert_int_equal(stream_from_root(root, 0, &s), -EINVAL);
}

/* What a holder keeps cannot go back: from K_{e+1} nothing the API offers (nor the formula for
 * any epoch) gives K_e, and a holder resumed at e + 1 without its previous key has no AEAD for
 * e. */
static void test_no_way_back(void **state)
{
	uint8_t k5[CRYPTO_KEY_LEN], k6[CRYPTO_KEY_LEN], x[CRYPTO_KEY_LEN], id[STREAM_ID_LEN];
	struct stream *s = NULL;

	(void)state;
	assert_int_equal(stream_key_at(root, E0, E0, k5), 0);
	assert_int_equal(stream_key_at(root, E0, E0 + 1, k6), 0);
	for (uint32_t e = 0; e < 2000; e++) {
		assert_int_equal(stream_next_key(k6, e, x), 0);
		assert_memory_not_equal(x, k5, sizeof(x));
	}
	for (uint32_t e0 = 1; e0 < 20; e0++)
		for (uint32_t e = e0; e < e0 + 3; e++) {
			assert_int_equal(stream_key_at(k6, e0, e, x), 0);
			assert_memory_not_equal(x, k5, sizeof(x));
		}
	assert_int_equal(stream_id(root, id), 0);
	assert_int_equal(stream_from_key(id, E0 + 1, k6, NULL, &s), 0);
	assert_null(stream_aead(s, E0));
	assert_null(stream_key(s, true));
	assert_int_equal(stream_advance(s, E0 + 2), 0);
	assert_memory_equal(stream_key(s, true), k6, CRYPTO_KEY_LEN);
	assert_memory_equal(stream_key(s, false), kat_k7, CRYPTO_KEY_LEN);
	stream_free(s);
}

static void test_from_key(void **state)
{
	uint8_t k5[CRYPTO_KEY_LEN], k6[CRYPTO_KEY_LEN], id[STREAM_ID_LEN];
	struct stream *s = NULL;

	(void)state;
	assert_int_equal(stream_key_at(root, E0, E0, k5), 0);
	assert_int_equal(stream_key_at(root, E0, E0 + 1, k6), 0);
	assert_int_equal(stream_id(root, id), 0);
	assert_int_equal(stream_from_key(id, E0 + 1, k6, k5, &s), 0);
	assert_int_equal(stream_current(s), E0 + 1);
	assert_memory_equal(stream_get_id(s), kat_id, STREAM_ID_LEN);
	assert_memory_equal(stream_key(s, false), k6, CRYPTO_KEY_LEN);
	assert_memory_equal(stream_key(s, true), k5, CRYPTO_KEY_LEN);
	assert_non_null(stream_aead(s, E0 + 1));
	assert_non_null(stream_aead(s, E0));
	assert_null(stream_aead(s, E0 - 1));
	assert_int_equal(stream_advance(s, E0 + 2), 0);
	assert_memory_equal(stream_key(s, false), kat_k7, CRYPTO_KEY_LEN);
	assert_null(stream_aead(s, E0));
	stream_free(s);

	/* Epoch 1 with a previous: that is the key of epoch 0, which never seals. */
	assert_int_equal(stream_from_key(id, 1, k6, k5, &s), 0);
	assert_null(stream_key(s, true));
	assert_null(stream_aead(s, 0));
	assert_non_null(stream_aead(s, 1));
	stream_free(s);
	s = NULL;
	assert_int_equal(stream_from_key(id, 0, k6, NULL, &s), -EINVAL);
	assert_null(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_epoch_schedule),	  cmocka_unit_test(test_chain_known_answer),
	    cmocka_unit_test(test_chain_differs),	  cmocka_unit_test(test_key_at_refused),
	    cmocka_unit_test(test_from_root_and_advance), cmocka_unit_test(test_advance_refused),
	    cmocka_unit_test(test_no_way_back),		  cmocka_unit_test(test_from_key),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
