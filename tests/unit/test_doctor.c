/* doctor: DOCTOR_GRANT and EMERGENCY_ACK bodies round-trip, every malformed body is refused with
 * the output untouched, and a grant's root opens only with the key of the kit it was wrapped
 * to. pi1 is the kit (fixture.h). Templates in the tables stand for real wrapped roots:
 *   $W a root wrapped to us    $O wrapped to another kit   $T $W's blob cut short
 *   $S a 31-byte secret        $L a 33-byte secret         $P a root in base64, not wrapped
 *   $B base64 of more bytes than RING_WRAPPED_MAX */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "doctor.h"
#include "encoding.h"
#include "fixture.h"
#include "ring.h"
#include "wrapped.h"

static struct fixture fx;
static EVP_PKEY *ours, *other;
static uint8_t root42[CRYPTO_KEY_LEN];

static int setup(void **state)
{
	(void)state;
	memset(root42, 0x42, sizeof(root42));
	return wrapped_setup(&fx, &ours, &other);
}

/* A grant body from its field values (JSON texts). */
#define G(kit, start, issued, root)                                                                \
	"{\"kit\":" kit ",\"start\":" start ",\"issued\":" issued ",\"root\":" root "}"
#define K      "\"pi1\""
#define S      "5"
#define IS     "1767225600000"
#define W      "\"$W\""
#define NAME63 "\"nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn\""
#define NAME64 "\"nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn\""

enum kind { GRANT, ACK };

union out {
	struct doctor_grant grant;
	struct {
		char kit[CERT_NAME_MAX];
		uint64_t seq;
	} ack;
};

static int parse(int kind, json_t *body, void *out)
{
	union out *o = out;

	if (kind == GRANT)
		return doctor_grant_parse(body, ours, &o->grant);
	return doctor_ack_parse(body, o->ack.kit, &o->ack.seq);
}

static const struct wrapped_row cases[] = {
    {GRANT, G(K, S, IS, W), 0},
    {GRANT, G("\"kit-7.a_b\"", "4294967295", "0", W), 0},
    {GRANT, G(NAME63, "1", "9223372036854775807", W), 0},
    {GRANT, "{\"root\":\"$W\",\"issued\":1,\"start\":1,\"kit\":\"pi1\"}", 0},
    /* fields missing or extra */
    {GRANT, "{\"start\":5,\"issued\":1,\"root\":\"$W\"}", -EBADMSG},
    {GRANT, "{\"kit\":\"pi1\",\"issued\":1,\"root\":\"$W\"}", -EBADMSG},
    {GRANT, "{\"kit\":\"pi1\",\"start\":5,\"root\":\"$W\"}", -EBADMSG},
    {GRANT, "{\"kit\":\"pi1\",\"start\":5,\"issued\":1}", -EBADMSG},
    {GRANT, "{\"kit\":\"pi1\",\"start\":5,\"issued\":1,\"root\":\"$W\",\"doctor\":\"d\"}",
     -EBADMSG},
    {GRANT, "{\"kit\":\"pi1\",\"start\":5,\"issue\":1,\"root\":\"$W\"}", -EBADMSG},
    {GRANT, "{}", -EBADMSG},
    {GRANT, "[\"pi1\",5,1,\"$W\"]", -EBADMSG},
    {GRANT, "\"$W\"", -EBADMSG},
    {GRANT, "null", -EBADMSG},
    /* the kit's name */
    {GRANT, G("\"\"", S, IS, W), -EBADMSG},
    {GRANT, G(NAME64, S, IS, W), -EBADMSG},
    {GRANT, G("\".pi1\"", S, IS, W), -EBADMSG},
    {GRANT, G("\"-pi1\"", S, IS, W), -EBADMSG},
    {GRANT, G("\"pi 1\"", S, IS, W), -EBADMSG},
    {GRANT, G("\"pi/1\"", S, IS, W), -EBADMSG},
    {GRANT, G("\"pi1\\u0000x\"", S, IS, W), -EBADMSG},
    {GRANT, G("\"caf\\u00e9\"", S, IS, W), -EBADMSG},
    {GRANT, G("1", S, IS, W), -EBADMSG},
    {GRANT, G("null", S, IS, W), -EBADMSG},
    {GRANT, G("[\"pi1\"]", S, IS, W), -EBADMSG},
    /* start and issued */
    {GRANT, G(K, "0", IS, W), -EBADMSG},
    {GRANT, G(K, "-1", IS, W), -EBADMSG},
    {GRANT, G(K, "4294967296", IS, W), -EBADMSG},
    {GRANT, G(K, "5.0", IS, W), -EBADMSG},
    {GRANT, G(K, "\"5\"", IS, W), -EBADMSG},
    {GRANT, G(K, "true", IS, W), -EBADMSG},
    {GRANT, G(K, S, "-1", W), -EBADMSG},
    {GRANT, G(K, S, "1.5", W), -EBADMSG},
    {GRANT, G(K, S, "\"1767225600000\"", W), -EBADMSG},
    {GRANT, G(K, S, "null", W), -EBADMSG},
    {GRANT, G(K, S, "false", W), -EBADMSG},
    /* the root */
    {GRANT, G(K, S, IS, "\"$O\""), -EBADMSG},
    {GRANT, G(K, S, IS, "\"$T\""), -EBADMSG},
    {GRANT, G(K, S, IS, "\"$S\""), -EBADMSG},
    {GRANT, G(K, S, IS, "\"$L\""), -EBADMSG},
    {GRANT, G(K, S, IS, "\"$P\""), -EBADMSG},
    {GRANT, G(K, S, IS, "\"$B\""), -EBADMSG},
    {GRANT, G(K, S, IS, "\"$W$W\""), -EBADMSG},
    {GRANT, G(K, S, IS, "\"$W\\u0000\""), -EBADMSG},
    {GRANT, G(K, S, IS, "\"$W \""), -EBADMSG},
    {GRANT, G(K, S, IS, "\"!!!!\""), -EBADMSG},
    {GRANT, G(K, S, IS, "\"\""), -EBADMSG},
    {GRANT, G(K, S, IS, "[\"$W\"]"), -EBADMSG},
    {GRANT, G(K, S, IS, "null"), -EBADMSG},

    {ACK, "{\"kit\":\"pi1\",\"seq\":1}", 0},
    {ACK, "{\"seq\":9223372036854775807,\"kit\":\"kit-7.a_b\"}", 0},
    {ACK, "{\"kit\":" NAME63 ",\"seq\":42}", 0},
    {ACK, "{\"kit\":\"pi1\",\"seq\":0}", -EBADMSG},
    {ACK, "{\"kit\":\"pi1\",\"seq\":-1}", -EBADMSG},
    {ACK, "{\"kit\":\"pi1\",\"seq\":1e19}", -EBADMSG},
    {ACK, "{\"kit\":\"pi1\",\"seq\":1.0}", -EBADMSG},
    {ACK, "{\"kit\":\"pi1\",\"seq\":\"1\"}", -EBADMSG},
    {ACK, "{\"kit\":\"pi1\",\"seq\":null}", -EBADMSG},
    {ACK, "{\"kit\":\"pi1\"}", -EBADMSG},
    {ACK, "{\"seq\":1}", -EBADMSG},
    {ACK, "{\"kit\":\"pi1\",\"seq\":1,\"at\":1}", -EBADMSG},
    {ACK, "{\"kit\":\"\",\"seq\":1}", -EBADMSG},
    {ACK, "{\"kit\":" NAME64 ",\"seq\":1}", -EBADMSG},
    {ACK, "{\"kit\":\"pi1\\u0000\",\"seq\":1}", -EBADMSG},
    {ACK, "{\"kit\":\"../pi1\",\"seq\":1}", -EBADMSG},
    {ACK, "{\"kit\":7,\"seq\":1}", -EBADMSG},
    {ACK, "[\"pi1\",1]", -EBADMSG},
    {ACK, "1", -EBADMSG},
};

/* A body that parsed builds again into one that parses to the same thing. */
static void round_trip(int kind, void *out)
{
	union out *o = out, o2;
	json_t *again = NULL;

	memset(&o2, 0, sizeof(o2));
	if (kind == GRANT) {
		assert_memory_equal(o->grant.root, root42, CRYPTO_KEY_LEN);
		assert_int_equal(doctor_grant_build(&o->grant, ours, &again), 0);
		assert_int_equal(parse(GRANT, again, &o2), 0);
		assert_string_equal(o->grant.kit, o2.grant.kit);
		assert_int_equal(o->grant.start, o2.grant.start);
		assert_int_equal(o->grant.issued_ms, o2.grant.issued_ms);
		assert_memory_equal(o->grant.root, o2.grant.root, CRYPTO_KEY_LEN);
		crypto_wipe(o, sizeof(*o)), crypto_wipe(&o2, sizeof(o2));
	} else {
		assert_int_equal(doctor_ack_build(o->ack.kit, o->ack.seq, &again), 0);
		assert_int_equal(parse(ACK, again, &o2), 0);
		assert_string_equal(o->ack.kit, o2.ack.kit);
		assert_int_equal(o->ack.seq, o2.ack.seq);
	}
	json_decref(again);
}

/* Each case: the result wanted, nothing written on failure, and round_trip(). */
static void test_bodies(void **state)
{
	union out o;

	(void)state;
	wrapped_table(cases, sizeof(cases) / sizeof(cases[0]), parse, round_trip, &o, sizeof(o));
}

/* A grant as the doctor's tool builds it: the values carried, the root wrapped, and opened
 * only by the kit it was wrapped to. */
static void test_grant_to_one_kit(void **state)
{
	struct doctor_grant g = {.kit = "pi1", .start = 12, .issued_ms = 1767225600123}, got;
	json_t *body = NULL;
	const char *root;

	(void)state;
	memcpy(g.root, root42, sizeof(g.root));
	assert_int_equal(doctor_grant_build(&g, ours, &body), 0);
	assert_int_equal(json_object_size(body), 4);
	assert_string_equal(json_string_value(json_object_get(body, "kit")), "pi1");
	assert_int_equal(json_integer_value(json_object_get(body, "start")), 12);
	assert_int_equal(json_integer_value(json_object_get(body, "issued")), 1767225600123);
	root = json_string_value(json_object_get(body, "root"));
	assert_non_null(root);
	assert_null(strstr(root, "QkJCQkJC")); /* not the root in base64 */
	assert_int_equal(doctor_grant_parse(body, ours, &got), 0);
	assert_string_equal(got.kit, "pi1");
	assert_int_equal(got.start, 12);
	assert_int_equal(got.issued_ms, 1767225600123);
	assert_memory_equal(got.root, root42, CRYPTO_KEY_LEN);
	/* Another kit's key opens nothing, and NULL is no key. */
	memset(&got, 0xa5, sizeof(got));
	assert_int_equal(doctor_grant_parse(body, other, &got), -EBADMSG);
	assert_int_equal(doctor_grant_parse(body, NULL, &got), -EBADMSG);
	assert_true(wrapped_all_bytes(&got, sizeof(got), 0xa5));
	json_decref(body);
	/* Wrapped to pi2: pi2's. */
	assert_int_equal(doctor_grant_build(&g, other, &body), 0);
	assert_int_equal(doctor_grant_parse(body, ours, &got), -EBADMSG);
	assert_int_equal(doctor_grant_parse(body, other, &got), 0);
	assert_memory_equal(got.root, root42, CRYPTO_KEY_LEN);
	crypto_wipe(&got, sizeof(got));
	crypto_wipe(&g, sizeof(g));
	json_decref(body);
}

/* We never build what a kit would refuse. */
static void test_build_refusals(void **state)
{
	const struct {
		const char *what, *kit;
		uint32_t start;
		int64_t issued;
	} rows[] = {
	    {"empty kit", "", 1, 0},
	    {"kit starting with a dot", ".k", 1, 0},
	    {"kit with a space", "k 1", 1, 0},
	    {"start 0", "pi1", 0, 0},
	    {"issued before 1970", "pi1", 1, -1},
	};
	struct doctor_grant g = {.kit = "pi1", .start = 1};
	EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	json_t *body = NULL;
	char name64[CERT_NAME_MAX + 1];

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct doctor_grant b = {.start = rows[i].start, .issued_ms = rows[i].issued};

		snprintf(b.kit, sizeof(b.kit), "%s", rows[i].kit);
		if (doctor_grant_build(&b, ours, &body) != -EINVAL)
			fail_msg("%s: built", rows[i].what);
		assert_null(body);
	}
	/* A name filling the whole array, with no NUL in it. */
	memset(g.kit, 'n', sizeof(g.kit));
	assert_int_equal(doctor_grant_build(&g, ours, &body), -EINVAL);
	snprintf(g.kit, sizeof(g.kit), "pi1");
	assert_non_null(ec);
	assert_int_equal(doctor_grant_build(&g, NULL, &body), -EINVAL);
	assert_int_equal(doctor_grant_build(&g, ec, &body), -EINVAL);
	assert_null(body);

	memset(name64, 'n', CERT_NAME_MAX), name64[CERT_NAME_MAX] = '\0';
	assert_int_equal(doctor_ack_build("pi1", 0, &body), -EINVAL);
	assert_int_equal(doctor_ack_build("pi1", (uint64_t)INT64_MAX + 1, &body), -EINVAL);
	assert_int_equal(doctor_ack_build("", 1, &body), -EINVAL);
	assert_int_equal(doctor_ack_build(NULL, 1, &body), -EINVAL);
	assert_int_equal(doctor_ack_build(name64, 1, &body), -EINVAL);
	assert_int_equal(doctor_ack_build("a/b", 1, &body), -EINVAL);
	assert_null(body);
	assert_int_equal(doctor_ack_build("pi1", (uint64_t)INT64_MAX, &body), 0);
	json_decref(body);
	EVP_PKEY_free(ec);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bodies),
	    cmocka_unit_test(test_grant_to_one_kit),
	    cmocka_unit_test(test_build_refusals),
	};

	return cmocka_run_group_tests(tests, setup, wrapped_teardown);
}
