/* libiotsec/body.c: each strict reader on its own, good values and more bad ones; the message
 * tables of test_ring, test_resync and test_doctor exercise them inside whole bodies. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "body.h"
#include "encoding.h"
#include "ring.h"

static json_t *parse(const char *text)
{
	json_t *j = json_loads(text, JSON_ALLOW_NUL, NULL);

	assert_non_null(j);
	return j;
}

static void test_fields_and_ints(void **state)
{
	json_t *o = parse("{\"a\":5,\"b\":4294967295,\"r\":1.0,\"s\":\"5\",\"t\":true}");
	int64_t i = 42;
	uint32_t u = 42;

	(void)state;
	assert_true(body_fields(o, 5));
	assert_false(body_fields(o, 4));
	assert_false(body_fields(o, 6));
	assert_true(body_int(o, "a", 5, 5, &i));
	assert_int_equal(i, 5);
	assert_true(body_u32(o, "b", 1, UINT32_MAX, &u));
	assert_int_equal(u, UINT32_MAX);
	/* Out of range, real, string, boolean, missing: refused, output untouched. */
	i = 42, u = 42;
	assert_false(body_int(o, "a", 6, 10, &i));
	assert_false(body_int(o, "a", 0, 4, &i));
	assert_false(body_int(o, "r", 0, 10, &i));
	assert_false(body_int(o, "s", 0, 10, &i));
	assert_false(body_int(o, "t", 0, 10, &i));
	assert_false(body_int(o, "x", 0, 10, &i));
	assert_false(body_u32(o, "b", 0, UINT32_MAX - 1, &u));
	assert_int_equal(i, 42);
	assert_int_equal(u, 42);
	json_decref(o);
}

static void test_names_and_bytes(void **state)
{
	json_t *o = parse("{\"n\":\"pi1\",\"bad\":\"-pi\",\"nul\":\"pi\\u0000x\",\"num\":7,"
			  "\"b16\":\"AAECAwQFBgcICQoLDA0ODw==\",\"b15\":\"AAECAwQFBgcICQoLDA0O\","
			  "\"junk\":\"!!!!\"}");
	char name[CERT_NAME_MAX] = "untouched";
	uint8_t b[16];

	(void)state;
	assert_true(body_name(o, "n", name));
	assert_string_equal(name, "pi1");
	snprintf(name, sizeof(name), "untouched");
	assert_false(body_name(o, "bad", name));
	assert_false(body_name(o, "nul", name));
	assert_false(body_name(o, "num", name));
	assert_false(body_name(o, "none", name));
	assert_string_equal(name, "untouched");
	assert_true(body_bytes(o, "b16", b, sizeof(b)));
	for (size_t i = 0; i < sizeof(b); i++)
		assert_int_equal(b[i], i);
	memset(b, 0xa5, sizeof(b));
	assert_false(body_bytes(o, "b15", b, sizeof(b)));
	assert_false(body_bytes(o, "junk", b, sizeof(b)));
	assert_false(body_bytes(o, "num", b, sizeof(b)));
	assert_false(body_bytes(o, "none", b, sizeof(b)));
	assert_int_equal(b[0], 0xa5);
	json_decref(o);
}

/* A key wrapped to one RSA key opens with it, and with nothing else. */
static void test_keys(void **state)
{
	EVP_PKEY *ours = NULL, *other = NULL;
	uint8_t key[CRYPTO_KEY_LEN], got[CRYPTO_KEY_LEN];
	char *text = NULL, *plain = NULL;
	json_t *o;

	(void)state;
	assert_int_equal(crypto_rsa_generate(2048, &ours), 0);
	assert_int_equal(crypto_rsa_generate(2048, &other), 0);
	memset(key, 0x42, sizeof(key));
	assert_int_equal(body_key_wrap(ours, key, &text), 0);
	assert_int_equal(body_key_wrap(NULL, key, &plain), -EINVAL);
	plain = b64_encode(key, sizeof(key));
	o = json_pack("{s:s, s:s, s:i}", "k", text, "plain", plain, "num", 1);
	assert_non_null(o);
	assert_int_equal(body_key_unwrap(o, "k", ours, got), 0);
	assert_memory_equal(got, key, sizeof(key));
	assert_int_equal(body_key_unwrap_value(json_object_get(o, "k"), ours, got), 0);
	memset(got, 0xa5, sizeof(got));
	assert_int_equal(body_key_unwrap(o, "k", other, got), -EBADMSG);
	assert_int_equal(body_key_unwrap(o, "plain", ours, got), -EBADMSG);
	assert_int_equal(body_key_unwrap(o, "num", ours, got), -EBADMSG);
	assert_int_equal(body_key_unwrap(o, "none", ours, got), -EBADMSG);
	assert_int_equal(body_key_unwrap(o, "k", NULL, got), -EBADMSG);
	assert_int_equal(got[0], 0xa5);
	json_decref(o);
	free(text);
	free(plain);
	EVP_PKEY_free(ours);
	EVP_PKEY_free(other);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fields_and_ints),
	    cmocka_unit_test(test_names_and_bytes),
	    cmocka_unit_test(test_keys),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
