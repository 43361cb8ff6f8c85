/* envelope: a signed message is accepted once, from a valid sender of this home, and every other
 * input is refused with its own reason, in the order SPEC section 4 gives. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "cert.h"
#include "clock.h"
#include "crypto.h"
#include "encoding.h"
#include "envelope.h"
#include "fixture.h"
#include "log.h"

#define DELTA_T 30

static const struct envelope_rule rules[] = {
    {"HELLO", CERT_ROLES_ANY},
    {"I_AM_CONTROLLER", CERT_ROLE_CONTROLLER},
    {NULL, 0},
};

static struct fixture fx;
static struct cert_store *store;

static int group_setup(void **state)
{
	(void)state;
	if (fixture_home(&fx) < 0)
		return -1;
	return cert_store_load(fx.ca_crt, fx.crl, &store);
}

static int group_teardown(void **state)
{
	(void)state;
	cert_store_free(store);
	fixture_remove(&fx);
	return 0;
}

static int reset_clock(void **state)
{
	(void)state;
	clock_set_fake(-1);
	return 0;
}

/* A context speaking as device name (its certificate need not be valid: rogues speak too). */
static struct envelope_ctx *ctx_for(const char *name)
{
	X509 *x = fixture_cert(&fx, name);
	EVP_PKEY *k = fixture_key(&fx, name);
	struct envelope_ctx *ctx = NULL;

	assert_int_equal(envelope_ctx_new(store, x, k, rules, DELTA_T, &ctx), 0);
	X509_free(x);
	EVP_PKEY_free(k);
	return ctx;
}

static char *seal(const char *name, const char *type, bool with_cert)
{
	struct envelope_ctx *ctx = ctx_for(name);
	json_t *body = json_pack("{s:s}", "hello", "world");
	char *out = NULL;
	size_t len;

	assert_int_equal(envelope_seal(ctx, type, body, with_cert, &out, &len), 0);
	assert_int_equal(strlen(out), len);
	json_decref(body);
	envelope_ctx_free(ctx);
	return out;
}

/* Sign arbitrary inner text as device name and wrap it: for inputs envelope_seal never makes. */
static char *craft(const char *name, const char *inner, const char *extra_outer)
{
	EVP_PKEY *k = fixture_key(&fx, name);
	X509 *x = fixture_cert(&fx, name);
	uint8_t *sig, *der;
	size_t siglen, derlen;
	char *msg_b64, *sig_b64, *cert_b64, *out;

	assert_int_equal(crypto_sign(k, inner, strlen(inner), &sig, &siglen), 0);
	assert_int_equal(cert_to_der(x, &der, &derlen), 0);
	msg_b64 = b64_encode(inner, strlen(inner));
	sig_b64 = b64_encode(sig, siglen);
	cert_b64 = b64_encode(der, derlen);
	assert_true(asprintf(&out, "{\"v\":1,\"msg\":\"%s\",\"sig\":\"%s\",\"cert\":\"%s\"%s}",
			     msg_b64, sig_b64, cert_b64, extra_outer) > 0);
	free(msg_b64), free(sig_b64), free(cert_b64), free(sig);
	OPENSSL_free(der);
	X509_free(x);
	EVP_PKEY_free(k);
	return out;
}

static char *inner_text(const char *type, const char *from, const char *home, long long ts)
{
	char *s;

	assert_true(asprintf(&s,
			     "{\"type\":\"%s\",\"from\":\"%s\",\"home\":\"%s\",\"ts\":%lld,"
			     "\"nonce\":\"AAECAwQFBgcICQoLDA0ODw==\",\"body\":{}}",
			     type, from, home, ts) > 0);
	return s;
}

static int open_as(const char *receiver, const char *buf, size_t len, struct envelope_msg *m)
{
	struct envelope_ctx *ctx = ctx_for(receiver);
	int r = envelope_open(ctx, buf, len, m);

	envelope_ctx_free(ctx);
	return r;
}

static void test_good_message(void **state)
{
	char *buf = seal("pi1", "HELLO", true);
	struct envelope_msg m;

	(void)state;
	assert_int_equal(open_as("pi2", buf, strlen(buf), &m), 0);
	assert_string_equal(m.type, "HELLO");
	assert_string_equal(m.sender.name, "pi1");
	assert_string_equal(m.sender.home, "testhome");
	assert_int_equal(m.sender.role, CERT_ROLE_NODE);
	assert_string_equal(json_string_value(json_object_get(m.body, "hello")), "world");
	assert_in_range(m.ts, time(NULL) - 5, time(NULL) + 5);
	envelope_msg_clear(&m);
	assert_null(m.body);
	free(buf);
}

static void test_controller_message(void **state)
{
	char *buf = seal("ctl1", "I_AM_CONTROLLER", true);
	struct envelope_msg m;

	(void)state;
	assert_int_equal(open_as("pi1", buf, strlen(buf), &m), 0);
	assert_int_equal(m.sender.role, CERT_ROLE_CONTROLLER);
	envelope_msg_clear(&m);
	free(buf);
}

static void test_empty_body(void **state)
{
	struct envelope_ctx *tx = ctx_for("pi1"), *rx = ctx_for("pi2");
	struct envelope_msg m;
	char *buf;
	size_t len;

	(void)state;
	assert_int_equal(envelope_seal(tx, "HELLO", NULL, true, &buf, &len), 0);
	assert_int_equal(envelope_open(rx, buf, len, &m), 0);
	assert_true(json_is_object(m.body));
	assert_int_equal(json_object_size(m.body), 0);
	envelope_msg_clear(&m);
	free(buf);
	envelope_ctx_free(tx);
	envelope_ctx_free(rx);
}

/* The fingerprint form works once the receiver has seen the certificate, and not before. */
static void test_fingerprint_after_certificate(void **state)
{
	struct envelope_ctx *tx = ctx_for("pi1"), *rx = ctx_for("pi2");
	struct envelope_msg m;
	char *a, *b;
	size_t alen, blen;

	(void)state;
	assert_int_equal(envelope_seal(tx, "HELLO", NULL, false, &a, &alen), 0);
	assert_int_equal(envelope_open(rx, a, alen, &m), -IOTSEC_EUNKNOWNCERT);
	free(a);
	assert_int_equal(envelope_seal(tx, "HELLO", NULL, true, &a, &alen), 0);
	assert_int_equal(envelope_seal(tx, "HELLO", NULL, false, &b, &blen), 0);
	assert_true(blen < alen);
	assert_int_equal(envelope_open(rx, a, alen, &m), 0);
	envelope_msg_clear(&m);
	assert_int_equal(envelope_open(rx, b, blen, &m), 0);
	assert_string_equal(m.sender.name, "pi1");
	envelope_msg_clear(&m);
	free(a), free(b);
	envelope_ctx_free(tx);
	envelope_ctx_free(rx);
}

static void test_replay_refused(void **state)
{
	struct envelope_ctx *rx = ctx_for("pi2");
	char *buf = seal("pi1", "HELLO", true);
	struct envelope_msg m;

	(void)state;
	assert_int_equal(envelope_open(rx, buf, strlen(buf), &m), 0);
	envelope_msg_clear(&m);
	assert_int_equal(envelope_open(rx, buf, strlen(buf), &m), -IOTSEC_EREPLAY);
	/* Still refused late in the window, and stale once it has passed. */
	clock_set_fake(time(NULL) + DELTA_T);
	assert_int_equal(envelope_open(rx, buf, strlen(buf), &m), -IOTSEC_EREPLAY);
	clock_set_fake(time(NULL) + DELTA_T + 5);
	assert_int_equal(envelope_open(rx, buf, strlen(buf), &m), -IOTSEC_ESTALE);
	free(buf);
	envelope_ctx_free(rx);
}

static void test_stale_and_future(void **state)
{
	char *old, *ahead;
	struct envelope_msg m;

	/* Never back in time: the clock floor (the build time) may be only seconds ago. */
	int64_t now = clock_now();

	(void)state;
	clock_set_fake(now);
	old = seal("pi1", "HELLO", true);
	clock_set_fake(now + DELTA_T + 2);
	ahead = seal("pi1", "HELLO", true);
	assert_int_equal(open_as("pi2", old, strlen(old), &m), -IOTSEC_ESTALE);
	clock_set_fake(now);
	assert_int_equal(open_as("pi2", ahead, strlen(ahead), &m), -IOTSEC_ESTALE);
	clock_set_fake(-1);
	free(old), free(ahead);
}

/* Senders whose certificate must not be believed, and messages their role may not send. */
static void test_sender_rejections(void **state)
{
	static const struct {
		const char *sender, *type;
		int code;
	} rows[] = {
	    {"pi9", "HELLO", -IOTSEC_EUNKNOWNCA},
	    {"revoked", "HELLO", -EKEYREVOKED},
	    {"expired", "HELLO", -EKEYEXPIRED},
	    {"future", "HELLO", -IOTSEC_ENOTYETVALID},
	    {"selfsigned", "HELLO", -IOTSEC_ESELFSIGNED},
	    {"selfsigned", "I_AM_CONTROLLER", -IOTSEC_ESELFSIGNED},
	    {"pi1", "I_AM_CONTROLLER", -IOTSEC_EROLE},
	    {"pi1", "NO_SUCH_TYPE", -IOTSEC_ETYPE},
	};
	struct envelope_msg m = {.type = "untouched"};

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char *buf = seal(rows[i].sender, rows[i].type, true);
		int r = open_as("pi2", buf, strlen(buf), &m);

		if (r != rows[i].code)
			fail_msg("%s %s: got %s, want %s", rows[i].sender, rows[i].type,
				 iotsec_strerror(r), iotsec_strerror(rows[i].code));
		assert_string_equal(m.type, "untouched");
		free(buf);
	}
}

/* Wire-level rejections: one row per way the bytes can be wrong. */
static void test_wire_rejections(void **state)
{
	long long now = time(NULL);
	char *good_inner = inner_text("HELLO", "pi1", "testhome", now);
	char *liar = inner_text("HELLO", "pi2", "testhome", now);
	char *wrong_home = inner_text("HELLO", "pi1", "otherhome", now);
	struct {
		const char *what;
		char *buf;
		int code;
	} rows[] = {
	    {"not json", strdup("hello"), -EBADMSG},
	    {"empty", strdup(""), -EBADMSG},
	    {"array", strdup("[1,2,3]"), -EBADMSG},
	    {"empty object", strdup("{}"), -EBADMSG},
	    {"extra outer field", craft("pi1", good_inner, ",\"x\":1"), -EBADMSG},
	    {"duplicate key", craft("pi1", good_inner, ",\"v\":1"), -EBADMSG},
	    {"cert and fp", craft("pi1", good_inner, ",\"fp\":\"00\""), -EBADMSG},
	    {"sender lies about its name", craft("pi1", liar, ""), -IOTSEC_EIDENTITY},
	    {"sender lies about its home", craft("pi1", wrong_home, ""), -IOTSEC_EIDENTITY},
	    {"ts not a number",
	     craft("pi1",
		   "{\"type\":\"HELLO\",\"from\":\"pi1\",\"home\":\"testhome\",\"ts\":\"now\","
		   "\"nonce\":\"AAECAwQFBgcICQoLDA0ODw==\",\"body\":{}}",
		   ""),
	     -EBADMSG},
	    {"short nonce",
	     craft("pi1",
		   "{\"type\":\"HELLO\",\"from\":\"pi1\",\"home\":\"testhome\",\"ts\":1,"
		   "\"nonce\":\"AAEC\",\"body\":{}}",
		   ""),
	     -EBADMSG},
	    {"body not an object",
	     craft("pi1",
		   "{\"type\":\"HELLO\",\"from\":\"pi1\",\"home\":\"testhome\",\"ts\":1,"
		   "\"nonce\":\"AAECAwQFBgcICQoLDA0ODw==\",\"body\":[]}",
		   ""),
	     -EBADMSG},
	    {"missing body",
	     craft("pi1",
		   "{\"type\":\"HELLO\",\"from\":\"pi1\",\"home\":\"testhome\",\"ts\":1,"
		   "\"nonce\":\"AAECAwQFBgcICQoLDA0ODw==\"}",
		   ""),
	     -EBADMSG},
	    {"signed text not json", craft("pi1", "not json", ""), -EBADMSG},
	};
	struct envelope_msg m;

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		int r = open_as("pi2", rows[i].buf, strlen(rows[i].buf), &m);

		if (r != rows[i].code)
			fail_msg("%s: got %s, want %s", rows[i].what, iotsec_strerror(r),
				 iotsec_strerror(rows[i].code));
		free(rows[i].buf);
	}
	free(good_inner), free(liar), free(wrong_home);
}

static void test_truncated_and_oversize(void **state)
{
	char *buf = seal("pi1", "HELLO", true), *big;
	size_t len = strlen(buf);
	struct envelope_msg m;

	(void)state;
	for (size_t cut = 0; cut < len; cut += len / 7 + 1)
		assert_int_equal(open_as("pi2", buf, cut, &m), -EBADMSG);
	big = malloc(ENVELOPE_MAX + 1);
	memset(big, ' ', ENVELOPE_MAX + 1);
	memcpy(big, buf, len);
	assert_int_equal(open_as("pi2", big, ENVELOPE_MAX + 1, &m), -EMSGSIZE);
	free(big);
	free(buf);
}

/* Flip one character of the signed text or the signature: the signature check catches it. */
static void test_tampered_signature(void **state)
{
	char *buf = seal("pi1", "HELLO", true);
	json_t *o = json_loads(buf, 0, NULL);
	uint8_t *text, *sig;
	size_t tlen, slen;
	char *t64, *s64, *out;
	struct envelope_msg m;

	(void)state;
	assert_int_equal(b64_decode(json_string_value(json_object_get(o, "msg")), &text, &tlen), 0);
	assert_int_equal(b64_decode(json_string_value(json_object_get(o, "sig")), &sig, &slen), 0);
	/* "world" -> "worle" keeps the JSON valid and the rest of the checks passing. */
	char *w = strstr((char *)text, "world");
	assert_non_null(w);
	w[4] = 'e';
	t64 = b64_encode(text, tlen);
	json_object_set_new(o, "msg", json_string(t64));
	out = json_dumps(o, JSON_COMPACT);
	assert_int_equal(open_as("pi2", out, strlen(out), &m), -IOTSEC_EBADSIG);
	free(out);

	w[4] = 'd';
	free(t64);
	t64 = b64_encode(text, tlen);
	sig[slen / 2] ^= 1;
	s64 = b64_encode(sig, slen);
	json_object_set_new(o, "msg", json_string(t64));
	json_object_set_new(o, "sig", json_string(s64));
	out = json_dumps(o, JSON_COMPACT);
	assert_int_equal(open_as("pi2", out, strlen(out), &m), -IOTSEC_EBADSIG);
	free(out), free(t64), free(s64), free(text), free(sig), free(buf);
	json_decref(o);
}

/* The replay cache is bounded: full of fresh entries it refuses, and frees itself as they age. */
static void test_replay_cache_bounded(void **state)
{
	struct envelope_ctx *tx = ctx_for("pi1"), *rx = ctx_for("pi2");
	struct envelope_msg m;
	int64_t t0 = time(NULL);
	char *buf;
	size_t len;

	(void)state;
	clock_set_fake(t0);
	for (int i = 0; i < ENVELOPE_REPLAY_MAX; i++) {
		assert_int_equal(envelope_seal(tx, "HELLO", NULL, i == 0, &buf, &len), 0);
		assert_int_equal(envelope_open(rx, buf, len, &m), 0);
		envelope_msg_clear(&m);
		free(buf);
	}
	assert_int_equal(envelope_seal(tx, "HELLO", NULL, false, &buf, &len), 0);
	assert_int_equal(envelope_open(rx, buf, len, &m), -ENOBUFS);
	free(buf);
	clock_set_fake(t0 + DELTA_T + 1);
	assert_int_equal(envelope_seal(tx, "HELLO", NULL, false, &buf, &len), 0);
	assert_int_equal(envelope_open(rx, buf, len, &m), 0);
	envelope_msg_clear(&m);
	free(buf);
	envelope_ctx_free(tx);
	envelope_ctx_free(rx);
}

static void test_seal_refuses_bad_type(void **state)
{
	struct envelope_ctx *tx = ctx_for("pi1");
	char *buf = NULL, longtype[ENVELOPE_TYPE_MAX + 1];
	size_t len;

	(void)state;
	memset(longtype, 'A', ENVELOPE_TYPE_MAX);
	longtype[ENVELOPE_TYPE_MAX] = '\0';
	assert_int_equal(envelope_seal(tx, "", NULL, true, &buf, &len), -EINVAL);
	assert_int_equal(envelope_seal(tx, longtype, NULL, true, &buf, &len), -EINVAL);
	assert_null(buf);
	envelope_ctx_free(tx);
}

static void test_ctx_refuses_mismatched_key(void **state)
{
	X509 *x = fixture_cert(&fx, "pi1");
	EVP_PKEY *k = fixture_key(&fx, "pi2");
	struct envelope_ctx *ctx = NULL;

	(void)state;
	assert_int_equal(envelope_ctx_new(store, x, k, rules, DELTA_T, &ctx), -IOTSEC_EKEYMISMATCH);
	assert_null(ctx);
	X509_free(x);
	EVP_PKEY_free(k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_good_message, reset_clock),
	    cmocka_unit_test_setup(test_controller_message, reset_clock),
	    cmocka_unit_test_setup(test_empty_body, reset_clock),
	    cmocka_unit_test_setup(test_fingerprint_after_certificate, reset_clock),
	    cmocka_unit_test_setup_teardown(test_replay_refused, reset_clock, reset_clock),
	    cmocka_unit_test_setup_teardown(test_stale_and_future, reset_clock, reset_clock),
	    cmocka_unit_test_setup(test_sender_rejections, reset_clock),
	    cmocka_unit_test_setup(test_wire_rejections, reset_clock),
	    cmocka_unit_test_setup(test_truncated_and_oversize, reset_clock),
	    cmocka_unit_test_setup(test_tampered_signature, reset_clock),
	    cmocka_unit_test_setup_teardown(test_replay_cache_bounded, reset_clock, reset_clock),
	    cmocka_unit_test_setup(test_seal_refuses_bad_type, reset_clock),
	    cmocka_unit_test_setup(test_ctx_refuses_mismatched_key, reset_clock),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
