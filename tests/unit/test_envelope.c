/* envelope: a signed message is accepted once, from a valid sender of this home, by the device it
 * names (if it names one), and every other input is refused with its own reason, in the order
 * SPEC section 4 gives; a refusal is attributed to a device only when that device sent it. */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "ca.h"
#include "cert.h"
#include "clock.h"
#include "crypto.h"
#include "encoding.h"
#include "envelope.h"
#include "fixture.h"
#include "log.h"

#define DELTA_T 30
#define DAY	86400

/* What receivers accept; KEYS is unicast (names its recipient and a delivery id). */
static const struct envelope_rule rules[] = {
    {"HELLO", CERT_ROLES_ANY, false, false},
    {"I_AM_CONTROLLER", CERT_ROLE_CONTROLLER, false, false},
    {"KEYS", CERT_ROLES_ANY, true, false},
    {"DOC_NOTE", CERT_ROLE_DOCTOR, false, false},
    /* any_time: judged by their bodies, not by our clock */
    {"GRANT", CERT_ROLES_ANY, true, true},
    {"ASK", CERT_ROLES_ANY, false, true},
    {"CTL_GRANT", CERT_ROLE_CONTROLLER, true, true},
    {NULL, 0, false, false},
};
/* Senders also know a type the receivers do not. */
static const struct envelope_rule send_rules[] = {
    {"HELLO", CERT_ROLES_ANY, false, false},
    {"I_AM_CONTROLLER", CERT_ROLES_ANY, false, false},
    {"KEYS", CERT_ROLES_ANY, true, false},
    {"NOT_KNOWN_THERE", CERT_ROLES_ANY, false, false},
    {"DOC_NOTE", CERT_ROLES_ALL, false, false},
    /* any_time */
    {"GRANT", CERT_ROLES_ANY, true, true},
    {"ASK", CERT_ROLES_ANY, false, true},
    {"CTL_GRANT", CERT_ROLES_ANY, true, true},
    {NULL, 0, false, false},
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
static struct envelope_ctx *ctx_with(const char *name, const struct envelope_rule *r)
{
	X509 *x = fixture_cert(&fx, name);
	EVP_PKEY *k = fixture_key(&fx, name);
	struct envelope_ctx *ctx = NULL;

	assert_int_equal(envelope_ctx_new(store, x, k, r, DELTA_T, &ctx), 0);
	X509_free(x);
	EVP_PKEY_free(k);
	return ctx;
}
#define rx_for(name) ctx_with((name), rules)
#define tx_for(name) ctx_with((name), send_rules)

/* One broadcast from name. */
static char *seal(const char *name, const char *type, bool with_cert)
{
	struct envelope_ctx *ctx = tx_for(name);
	json_t *body = json_pack("{s:s}", "hello", "world");
	char *out = NULL;
	size_t len;

	assert_int_equal(envelope_seal(ctx, type, NULL, NULL, body, with_cert, &out, &len), 0);
	assert_int_equal(strlen(out), len);
	json_decref(body);
	envelope_ctx_free(ctx);
	return out;
}

/* Wrap inner text (owned, freed) signed with key_of's key, carrying cert_of's certificate, as
 * version vtext: for inputs envelope_seal never makes (forgeries, when key_of is not cert_of). */
static char *craft_as(const char *cert_of, const char *key_of, char *inner, const char *vtext,
		      const char *extra_outer)
{
	EVP_PKEY *k = fixture_key(&fx, key_of);
	X509 *x = fixture_cert(&fx, cert_of);
	uint8_t *sig, *der;
	size_t siglen, derlen;
	char *msg_b64, *sig_b64, *cert_b64, *out;

	assert_int_equal(crypto_sign(k, inner, strlen(inner), &sig, &siglen), 0);
	assert_int_equal(cert_to_der(x, &der, &derlen), 0);
	msg_b64 = b64_encode(inner, strlen(inner));
	sig_b64 = b64_encode(sig, siglen);
	cert_b64 = b64_encode(der, derlen);
	assert_true(asprintf(&out, "{\"v\":%s,\"msg\":\"%s\",\"sig\":\"%s\",\"cert\":\"%s\"%s}",
			     vtext, msg_b64, sig_b64, cert_b64, extra_outer) > 0);
	free(msg_b64), free(sig_b64), free(cert_b64), free(sig), free(inner);
	OPENSSL_free(der);
	X509_free(x);
	EVP_PKEY_free(k);
	return out;
}

#define pi1_signed(inner) craft_as("pi1", "pi1", (inner), "2", "")

#define NONCE "AAECAwQFBgcICQoLDA0ODw=="

/* A signed text as envelope_seal writes it, stamped now, with extra fields appended. */
static char *inner_seq(const char *type, const char *from, const char *home, unsigned long long seq,
		       const char *nonce, const char *extra)
{
	char *s;

	assert_true(asprintf(&s,
			     "{\"type\":\"%s\",\"from\":\"%s\",\"home\":\"%s\",\"ts\":%lld,"
			     "\"seq\":%llu,\"nonce\":\"%s\",\"body\":{}%s}",
			     type, from, home, (long long)clock_now(), seq, nonce, extra) > 0);
	return s;
}
#define inner_text(type, from, extra) inner_seq((type), (from), "testhome", 1, NONCE, (extra))

/* A signed text of pi1's with only the given fields after type, from and home. */
static char *fields(const char *f)
{
	char *s;

	assert_true(
	    asprintf(&s, "{\"type\":\"HELLO\",\"from\":\"pi1\",\"home\":\"testhome\",%s}", f) > 0);
	return s;
}

/* An outer object by hand: {"v":2,"msg":msg,"sig":"AAAA",key:val}. */
static char *outer(const char *msg, const char *key, const char *val)
{
	char *s;

	assert_true(asprintf(&s, "{\"v\":2,\"msg\":\"%s\",\"sig\":\"AAAA\",\"%s\":\"%s\"}", msg,
			     key, val) > 0);
	return s;
}

/* Open with a fresh receiver; sender gets ret_sender, pre-set to junk to see it written. */
static int open_as(const char *receiver, const char *buf, size_t len, struct envelope_msg *m,
		   char sender[CERT_NAME_MAX])
{
	struct envelope_ctx *ctx = rx_for(receiver);
	int r;

	if (sender)
		snprintf(sender, CERT_NAME_MAX, "junk");
	r = envelope_open(ctx, buf, len, m, sender);
	envelope_ctx_free(ctx);
	return r;
}

/* A HELLO from tx, sealed now (malloc'd). */
static char *hello(struct envelope_ctx *tx, bool with_cert)
{
	char *buf = NULL;
	size_t len;

	assert_int_equal(envelope_seal(tx, "HELLO", NULL, NULL, NULL, with_cert, &buf, &len), 0);
	return buf;
}

/* Open buf in rx, dropping the message; sender (may be NULL) as envelope_open() sets it. */
static int open_in(struct envelope_ctx *rx, const char *buf, char sender[CERT_NAME_MAX])
{
	struct envelope_msg m;
	int r;

	if (sender)
		snprintf(sender, CERT_NAME_MAX, "junk");
	if ((r = envelope_open(rx, buf, strlen(buf), &m, sender)) == 0)
		envelope_msg_clear(&m);
	return r;
}

static void test_good_message(void **state)
{
	char *buf = seal("pi1", "HELLO", true);
	struct envelope_msg m;

	(void)state;
	assert_int_equal(open_as("pi2", buf, strlen(buf), &m, NULL), 0);
	assert_string_equal(m.type, "HELLO");
	assert_string_equal(m.id, ""); /* a broadcast belongs to no delivery */
	assert_string_equal(m.sender.name, "pi1");
	assert_string_equal(m.sender.home, "testhome");
	assert_int_equal(m.sender.role, CERT_ROLE_NODE);
	assert_non_null(m.cert);
	assert_string_equal(json_string_value(json_object_get(m.body, "hello")), "world");
	assert_in_range(m.ts, time(NULL) - 5, time(NULL) + 5);
	/* seq is the sender's clock in microseconds */
	assert_in_range(m.seq, (uint64_t)(time(NULL) - 5) * 1000000,
			(uint64_t)(time(NULL) + 5) * 1000000);
	envelope_msg_clear(&m);
	assert_null(m.body);
	assert_null(m.cert);
	free(buf);
}

/* The fingerprint form works once the receiver has verified the certificate, and not before. */
static void test_fingerprint_after_certificate(void **state)
{
	struct envelope_ctx *tx = tx_for("pi1"), *rx = rx_for("pi2");
	char *early = hello(tx, false), *a = hello(tx, true), *b = hello(tx, false);
	char sender[CERT_NAME_MAX];
	struct envelope_msg m;

	(void)state;
	assert_int_equal(open_in(rx, early, sender), -IOTSEC_EUNKNOWNCERT);
	assert_string_equal(sender, "");
	assert_true(strlen(b) < strlen(a));
	assert_int_equal(open_in(rx, a, NULL), 0);
	assert_int_equal(envelope_open(rx, b, strlen(b), &m, NULL), 0);
	assert_string_equal(m.sender.name, "pi1");
	assert_non_null(m.cert); /* the cached certificate comes with it, to wrap keys to */
	envelope_msg_clear(&m);
	free(early), free(a), free(b);
	envelope_ctx_free(tx), envelope_ctx_free(rx);
}

/* A unicast message reaches its recipient with its delivery id; a copy captured on its way
 * means nothing to another device, and is not counted against its sender: anyone may have sent
 * it on. */
static void test_unicast(void **state)
{
	struct envelope_ctx *tx = tx_for("pi1"), *rx = rx_for("pi2"), *ctl = rx_for("ctl1");
	char id[ENVELOPE_ID_MAX + 1], other[ENVELOPE_ID_MAX + 1], *buf, sender[CERT_NAME_MAX];
	struct envelope_msg m = {.type = "untouched"};
	size_t len;

	(void)state;
	assert_int_equal(envelope_new_id(id), 0);
	assert_int_equal(envelope_new_id(other), 0);
	assert_string_not_equal(id, other);
	assert_int_equal(envelope_seal(tx, "KEYS", "pi2", id, NULL, true, &buf, &len), 0);
	assert_int_equal(envelope_open(ctl, buf, len, &m, sender), -IOTSEC_ENOTFORUS);
	assert_string_equal(sender, ""); /* anyone may replay it here: blamed on no one */
	assert_string_equal(m.type, "untouched");
	assert_int_equal(envelope_open(rx, buf, len, &m, NULL), 0);
	assert_string_equal(m.type, "KEYS");
	assert_string_equal(m.id, id);
	assert_string_equal(m.sender.name, "pi1");
	assert_true(json_is_object(m.body)); /* no body given: an empty one */
	assert_int_equal(json_object_size(m.body), 0);
	envelope_msg_clear(&m);
	free(buf);
	envelope_ctx_free(tx), envelope_ctx_free(rx), envelope_ctx_free(ctl);
}

/* A relay checks a message on its way to another device: any recipient, named back; everything
 * else as envelope_open() judges it. */
static void test_relayed(void **state)
{
	struct envelope_ctx *tx = tx_for("pi1"), *relay = rx_for("ctl1");
	char id[ENVELOPE_ID_MAX + 1], *buf, *bcast, *bad, to[CERT_NAME_MAX] = "untouched";
	char sender[CERT_NAME_MAX];
	struct envelope_msg m = {.type = "untouched"};
	size_t len;

	(void)state;
	assert_int_equal(envelope_new_id(id), 0);
	assert_int_equal(envelope_seal(tx, "GRANT", "pi2", id, NULL, true, &buf, &len), 0);
	/* Not for ctl1 when opened as its own. */
	assert_int_equal(envelope_open(relay, buf, len, &m, NULL), -IOTSEC_ENOTFORUS);
	assert_int_equal(envelope_open_relayed(relay, buf, len, &m, sender, to), 0);
	assert_string_equal(to, "pi2");
	assert_string_equal(sender, "pi1");
	assert_string_equal(m.type, "GRANT");
	assert_string_equal(m.sender.name, "pi1");
	envelope_msg_clear(&m);
	strcpy(m.type, "untouched");
	/* A broadcast names no recipient to pass it on to. */
	bcast = hello(tx, true);
	strcpy(to, "untouched");
	assert_int_equal(envelope_open_relayed(relay, bcast, strlen(bcast), &m, NULL, to),
			 -EBADMSG);
	assert_string_equal(to, "untouched");
	/* A recipient that is no device name. */
	bad = pi1_signed(inner_text("GRANT", "pi1", ",\"to\":\"a/b\",\"id\":\"x1\""));
	assert_int_equal(envelope_open_relayed(relay, bad, strlen(bad), &m, NULL, to), -EBADMSG);
	assert_string_equal(to, "untouched");
	/* The signature is still checked. */
	buf[strlen(buf) / 2] ^= 1;
	assert_true(envelope_open_relayed(relay, buf, len, &m, NULL, to) < 0);
	assert_string_equal(to, "untouched");
	assert_string_equal(m.type, "untouched");
	free(bad), free(bcast), free(buf);
	envelope_ctx_free(tx), envelope_ctx_free(relay);
}

/* We never send what a peer of ours would refuse. */
static void test_seal_refusals(void **state)
{
	char longtype[ENVELOPE_TYPE_MAX + 1], name63[CERT_NAME_MAX], name64[CERT_NAME_MAX + 1];
	char id32[ENVELOPE_ID_MAX + 1], id33[ENVELOPE_ID_MAX + 2];
	struct envelope_ctx *tx = tx_for("pi1");
	const struct {
		const char *what, *type, *to, *id;
	} rows[] = {
	    {"empty type", "", NULL, NULL},
	    {"type too long", longtype, NULL, NULL},
	    {"type not in the rules", "NOPE", NULL, NULL},
	    {"broadcast with a recipient", "HELLO", "pi2", "d1"},
	    {"broadcast with a recipient only", "HELLO", "pi2", NULL},
	    {"broadcast with an id only", "HELLO", NULL, "d1"},
	    {"unicast without recipient", "KEYS", NULL, NULL},
	    {"unicast without id", "KEYS", "pi2", NULL},
	    {"unicast without to", "KEYS", NULL, "d1"},
	    {"empty recipient", "KEYS", "", "d1"},
	    {"recipient too long", "KEYS", name64, "d1"},
	    {"empty id", "KEYS", "pi2", ""},
	    {"id too long", "KEYS", "pi2", id33},
	    {"id with a space", "KEYS", "pi2", "a b"},
	    {"id with a slash", "KEYS", "pi2", "a/b"},
	    {"id with a dot", "KEYS", "pi2", "a.b"},
	    {"id with a quote", "KEYS", "pi2", "a\"b"},
	    {"id not ASCII", "KEYS", "pi2", "caf\xc3\xa9"},
	};
	json_t *big = json_object();
	char *buf = NULL, *pad = malloc(ENVELOPE_MAX);
	size_t len = 0;

	(void)state;
	memset(longtype, 'A', ENVELOPE_TYPE_MAX), longtype[ENVELOPE_TYPE_MAX] = '\0';
	memset(name63, 'n', CERT_NAME_MAX - 1), name63[CERT_NAME_MAX - 1] = '\0';
	memset(name64, 'n', CERT_NAME_MAX), name64[CERT_NAME_MAX] = '\0';
	memset(id32, 'i', ENVELOPE_ID_MAX), id32[ENVELOPE_ID_MAX] = '\0';
	memset(id33, 'i', ENVELOPE_ID_MAX + 1), id33[ENVELOPE_ID_MAX + 1] = '\0';
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		int r =
		    envelope_seal(tx, rows[i].type, rows[i].to, rows[i].id, NULL, true, &buf, &len);

		if (r != -EINVAL)
			fail_msg("%s: got %s, want -EINVAL", rows[i].what, iotsec_strerror(r));
		assert_null(buf); /* untouched */
	}
	/* The limits themselves are allowed. */
	assert_int_equal(envelope_seal(tx, "KEYS", name63, id32, NULL, true, &buf, &len), 0);
	free(buf);
	assert_int_equal(envelope_seal(tx, "KEYS", "pi2", "Az09_-", NULL, true, &buf, &len), 0);
	free(buf), buf = NULL;
	/* A body too big for any receiver. */
	memset(pad, 'x', ENVELOPE_MAX - 1), pad[ENVELOPE_MAX - 1] = '\0';
	json_object_set_new(big, "x", json_string(pad));
	assert_int_equal(envelope_seal(tx, "HELLO", NULL, NULL, big, true, &buf, &len), -EMSGSIZE);
	assert_null(buf);
	json_decref(big);
	free(pad);
	envelope_ctx_free(tx);
}

/* Open buf (owned) as pi2 and check the refusal and whom it may be counted against ("" before
 * a certificate verified; NULL: not checked here). */
static void expect(const char *what, char *buf, int code, const char *named)
{
	struct envelope_msg m = {.type = "untouched"};
	char sender[CERT_NAME_MAX];
	int r = open_as("pi2", buf, strlen(buf), &m, sender);

	free(buf);
	if (r == 0)
		envelope_msg_clear(&m);
	if (r != code || (named && strcmp(sender, named) != 0))
		fail_msg("%s: got %s '%s', want %s '%s'", what, iotsec_strerror(r), sender,
			 iotsec_strerror(code), named ? named : "(any)");
	if (r != 0)
		assert_string_equal(m.type, "untouched"); /* filled only on success */
}

/* Senders whose certificate must not be believed, and messages their role may not send. The
 * refusal names the sender once its certificate verified, and only then. */
static void test_sender_rejections(void **state)
{
	static const struct {
		const char *sender, *type;
		int code;
		const char *named;
	} rows[] = {
	    {"ctl1", "I_AM_CONTROLLER", 0, "ctl1"}, /* the role that may */
	    {"pi9", "HELLO", -IOTSEC_EUNKNOWNCA, ""},
	    {"revoked", "HELLO", -EKEYREVOKED, ""},
	    {"expired", "HELLO", -EKEYEXPIRED, ""},
	    {"future", "HELLO", -IOTSEC_ENOTYETVALID, ""},
	    {"selfsigned", "HELLO", -IOTSEC_ESELFSIGNED, ""},
	    {"selfsigned", "I_AM_CONTROLLER", -IOTSEC_ESELFSIGNED, ""},
	    {"pi1", "I_AM_CONTROLLER", -IOTSEC_EROLE, "pi1"},
	    {"pi1", "NOT_KNOWN_THERE", -IOTSEC_ETYPE, "pi1"},
	    /* A doctor's certificate is the home's, but no device's. */
	    {"doc1", "DOC_NOTE", 0, "doc1"},
	    {"doc1", "HELLO", -IOTSEC_EROLE, "doc1"},
	    {"pi1", "DOC_NOTE", -IOTSEC_EROLE, "pi1"},
	    {"ctl1", "DOC_NOTE", -IOTSEC_EROLE, "ctl1"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		expect(rows[i].sender, seal(rows[i].sender, rows[i].type, true), rows[i].code,
		       rows[i].named);
}

/* The outer object: one row per way it can be wrong. The first shows that crafting makes good
 * envelopes, so each refusal is the altered field's doing. */
static void test_outer_rejections(void **state)
{
	char *good = inner_text("HELLO", "pi1", ""), *good64 = b64_encode(good, strlen(good));
	char fp[2 * CERT_FP_LEN + 1], bad_fp[sizeof(fp)], zeros[sizeof(fp)];
	char *not_der = b64_encode("not a certificate", 17);
	struct envelope_ctx *pi1 = rx_for("pi1");

	(void)state;
	hex_encode(envelope_self(pi1)->fp, CERT_FP_LEN, fp);
	envelope_ctx_free(pi1);
	memcpy(bad_fp, fp, sizeof(fp)), bad_fp[5] = 'z';
	memset(zeros, '0', sizeof(zeros) - 1), zeros[sizeof(zeros) - 1] = '\0';
	expect("crafted (passes)", craft_as("pi1", "pi1", strdup(good), "2", ""), 0, "pi1");
	expect("not json", strdup("hello"), -EBADMSG, "");
	expect("empty", strdup(""), -EBADMSG, "");
	expect("array", strdup("[1,2,3]"), -EBADMSG, "");
	expect("empty object", strdup("{}"), -EBADMSG, "");
	expect("version 1", craft_as("pi1", "pi1", strdup(good), "1", ""), -EBADMSG, "");
	expect("version 3", craft_as("pi1", "pi1", strdup(good), "3", ""), -EBADMSG, "");
	expect("version as text", craft_as("pi1", "pi1", strdup(good), "\"2\"", ""), -EBADMSG, "");
	expect("extra field", craft_as("pi1", "pi1", strdup(good), "2", ",\"x\":1"), -EBADMSG, "");
	expect("duplicate key", craft_as("pi1", "pi1", strdup(good), "2", ",\"v\":2"), -EBADMSG,
	       "");
	expect("cert and fp", craft_as("pi1", "pi1", strdup(good), "2", ",\"fp\":\"00\""), -EBADMSG,
	       "");
	expect("msg not base64", outer("!!!!", "fp", fp), -EBADMSG, "");
	expect("fp not hex", outer(good64, "fp", bad_fp), -EBADMSG, "");
	expect("fp too short", outer(good64, "fp", "00"), -EBADMSG, "");
	expect("fp of no certificate", outer(good64, "fp", zeros), -IOTSEC_EUNKNOWNCERT, "");
	expect("fp not yet seen", outer(good64, "fp", fp), -IOTSEC_EUNKNOWNCERT, "");
	expect("cert not DER", outer(good64, "cert", not_der), -EBADMSG, "");
	expect("cert empty", outer(good64, "cert", ""), -EBADMSG, "");
	free(good), free(good64), free(not_der);
}

#define N "\"nonce\":\"" NONCE "\""

/* The signed text, well signed by pi1: every field present, of its type, and no other. */
static void test_signed_text_rejections(void **state)
{
	static const struct {
		const char *what, *fields;
	} rows[] = {
	    {"ts not a number", "\"ts\":\"now\",\"seq\":1," N ",\"body\":{}"},
	    {"ts missing", "\"seq\":1," N ",\"body\":{}"},
	    {"seq missing", "\"ts\":1," N ",\"body\":{}"},
	    {"seq 0", "\"ts\":1,\"seq\":0," N ",\"body\":{}"},
	    {"seq negative", "\"ts\":1,\"seq\":-5," N ",\"body\":{}"},
	    {"seq as text", "\"ts\":1,\"seq\":\"1\"," N ",\"body\":{}"},
	    {"seq not whole", "\"ts\":1,\"seq\":1.5," N ",\"body\":{}"},
	    {"short nonce", "\"ts\":1,\"seq\":1,\"nonce\":\"AAEC\",\"body\":{}"},
	    {"nonce missing", "\"ts\":1,\"seq\":1,\"body\":{}"},
	    {"body not an object", "\"ts\":1,\"seq\":1," N ",\"body\":[]"},
	    {"body missing", "\"ts\":1,\"seq\":1," N},
	    {"extra field", "\"ts\":1,\"seq\":1," N ",\"body\":{},\"x\":1"},
	    {"duplicate field", "\"ts\":1,\"seq\":1," N ",\"body\":{},\"seq\":2"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		expect(rows[i].what, pi1_signed(fields(rows[i].fields)), -EBADMSG, "");
	expect("not json", pi1_signed(strdup("not json")), -EBADMSG, "");
	expect("lies about its name", pi1_signed(inner_text("HELLO", "pi2", "")), -IOTSEC_EIDENTITY,
	       "pi1");
	expect("lies about its home",
	       pi1_signed(inner_seq("HELLO", "pi1", "otherhome", 1, NONCE, "")), -IOTSEC_EIDENTITY,
	       "pi1");
}

/* The recipient and delivery id: both, well formed, for unicast types only, and naming us. */
static void test_recipient_rejections(void **state)
{
	static const struct {
		const char *what, *type, *extra;
		int code;
		const char *named;
	} rows[] = {
	    {"crafted unicast (passes)", "KEYS", ",\"to\":\"pi2\",\"id\":\"d1\"", 0, "pi1"},
	    {"unicast type without to/id", "KEYS", "", -EBADMSG, "pi1"},
	    {"broadcast type with to/id", "HELLO", ",\"to\":\"pi2\",\"id\":\"d1\"", -EBADMSG,
	     "pi1"},
	    {"to without id", "KEYS", ",\"to\":\"pi2\"", -EBADMSG, ""},
	    {"id without to", "KEYS", ",\"id\":\"d1\"", -EBADMSG, ""},
	    {"to not text", "KEYS", ",\"to\":7,\"id\":\"d1\"", -EBADMSG, ""},
	    {"id not text", "KEYS", ",\"to\":\"pi2\",\"id\":1", -EBADMSG, ""},
	    {"empty id", "KEYS", ",\"to\":\"pi2\",\"id\":\"\"", -EBADMSG, ""},
	    {"id too long", "KEYS", ",\"to\":\"pi2\",\"id\":\"123456789012345678901234567890123\"",
	     -EBADMSG, ""},
	    {"id with a space", "KEYS", ",\"to\":\"pi2\",\"id\":\"d 1\"", -EBADMSG, ""},
	    {"id with a slash", "KEYS", ",\"to\":\"pi2\",\"id\":\"../d1\"", -EBADMSG, ""},
	    {"id with a NUL", "KEYS", ",\"to\":\"pi2\",\"id\":\"d\\u0000x\"", -EBADMSG, ""},
	    {"to another device", "KEYS", ",\"to\":\"ctl1\",\"id\":\"d1\"", -IOTSEC_ENOTFORUS, ""},
	    {"to nobody", "KEYS", ",\"to\":\"\",\"id\":\"d1\"", -IOTSEC_ENOTFORUS, ""},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		expect(rows[i].what, pi1_signed(inner_text(rows[i].type, "pi1", rows[i].extra)),
		       rows[i].code, rows[i].named);
}

/* An envelope is accepted once; a replay is refused while it is fresh, then stale. */
static void test_replay_refused(void **state)
{
	int64_t now = clock_now();
	struct envelope_ctx *rx = rx_for("pi2");
	char *buf, *a, *b, sender[CERT_NAME_MAX];

	(void)state;
	/* Frozen, so a slow machine cannot move the messages' time against the window's edges. */
	clock_set_fake(now);
	buf = seal("pi1", "HELLO", true);
	a = pi1_signed(inner_seq("HELLO", "pi1", "testhome", 7, NONCE, ""));
	b = pi1_signed(inner_seq("HELLO", "pi1", "testhome", 7, "AAAAAAAAAAAAAAAAAAAAAA==", ""));
	assert_int_equal(open_in(rx, buf, NULL), 0);
	assert_int_equal(open_in(rx, buf, sender), -IOTSEC_EREPLAY);
	assert_string_equal(sender, ""); /* anyone may replay pi1's message: not counted on it */
	/* The sequence number is what identifies a message: a new nonce does not make it new. */
	assert_int_equal(open_in(rx, a, NULL), 0);
	assert_int_equal(open_in(rx, b, NULL), -IOTSEC_EREPLAY);
	/* Still refused late in the window, and stale once it has passed. */
	clock_set_fake(now + DELTA_T);
	assert_int_equal(open_in(rx, buf, NULL), -IOTSEC_EREPLAY);
	clock_set_fake(now + DELTA_T + 1);
	assert_int_equal(open_in(rx, buf, NULL), -IOTSEC_ESTALE);
	free(buf), free(a), free(b);
	envelope_ctx_free(rx);
}

/* Forged certificates, each new (one byte of the CA's signature on pi1's changed): each is
 * refused as not the CA's, the same forgery again likewise, and neither a sender already known
 * nor a good one never seen is held back by the flood. */
static void test_forged_certificates(void **state)
{
	struct envelope_ctx *rx = rx_for("pi2"), *tx = tx_for("pi1"), *ctl = tx_for("ctl1");
	X509 *x = fixture_cert(&fx, "pi1");
	uint8_t *der = NULL;
	size_t derlen;
	char *known = hello(ctl, true), *b64, *buf, *text = inner_text("HELLO", "pi1", ""), *msg;
	int r;

	(void)state;
	msg = b64_encode(text, strlen(text));
	free(text);
	assert_int_equal(open_in(rx, known, NULL), 0); /* ctl1 is known from here on */
	free(known);
	assert_int_equal(cert_to_der(x, &der, &derlen), 0);
	for (int i = 0; i < 300; i++) {
		der[derlen - 1 - i % 100] ^= (uint8_t)(1 + i / 100);
		b64 = b64_encode(der, derlen);
		buf = outer(msg, "cert", b64);
		if ((r = open_in(rx, buf, NULL)) != -IOTSEC_EUNKNOWNCA)
			fail_msg("forged certificate %d: %s", i, iotsec_strerror(r));
		/* Again: the verdict stands. */
		if (i % 50 == 0)
			assert_int_equal(open_in(rx, buf, NULL), -IOTSEC_EUNKNOWNCA);
		free(buf), free(b64);
		der[derlen - 1 - i % 100] ^= (uint8_t)(1 + i / 100);
	}
	known = hello(ctl, false);
	assert_int_equal(open_in(rx, known, NULL), 0);
	free(known);
	known = hello(tx, true);
	assert_int_equal(open_in(rx, known, NULL), 0);
	free(known);
	OPENSSL_free(der);
	X509_free(x);
	free(msg);
	envelope_ctx_free(rx), envelope_ctx_free(tx), envelope_ctx_free(ctl);
}

/* A real certificate on a forged message is checked, but not remembered: anyone can re-encode a
 * real certificate outside what the CA signed (a longer length form), each encoding with a
 * fingerprint of its own, and a stream of them would push out the certificates of the home's
 * devices. Only a message its key signed makes a certificate known. */
static void test_forged_message_teaches_nothing(void **state)
{
	struct envelope_ctx *rx = rx_for("pi2"), *tx = tx_for("pi1");
	/* pi1's certificate, signed with another key. */
	char *forged = craft_as("pi1", "pi2", inner_text("HELLO", "pi1", ""), "2", ""), *fp_only;

	(void)state;
	assert_int_equal(open_in(rx, forged, NULL), -IOTSEC_EBADSIG);
	fp_only = hello(tx, false);
	assert_int_equal(open_in(rx, fp_only, NULL), -IOTSEC_EUNKNOWNCERT);
	free(fp_only);
	/* The real thing, with its certificate: known from then on. */
	free(forged);
	forged = hello(tx, true);
	assert_int_equal(open_in(rx, forged, NULL), 0);
	fp_only = hello(tx, false);
	assert_int_equal(open_in(rx, fp_only, NULL), 0);
	free(fp_only), free(forged);
	envelope_ctx_free(rx), envelope_ctx_free(tx);
}

static void test_stale_and_future(void **state)
{
	/* Never back in time: the clock floor (the build time) may be only seconds ago. */
	int64_t now = clock_now();
	char *old, *ahead, sender[CERT_NAME_MAX];
	struct envelope_msg m;

	(void)state;
	clock_set_fake(now);
	old = seal("pi1", "HELLO", true);
	clock_set_fake(now + DELTA_T + 2);
	ahead = seal("pi1", "HELLO", true);
	assert_int_equal(open_as("pi2", old, strlen(old), &m, sender), -IOTSEC_ESTALE);
	assert_string_equal(sender, ""); /* a late copy may be anyone's doing */
	clock_set_fake(now);
	assert_int_equal(open_as("pi2", ahead, strlen(ahead), &m, NULL), -IOTSEC_ESTALE);
	/* The edges of the window are inside it. */
	clock_set_fake(now + DELTA_T);
	assert_int_equal(open_as("pi2", old, strlen(old), &m, NULL), 0);
	envelope_msg_clear(&m);
	clock_set_fake(now + 2);
	assert_int_equal(open_as("pi2", ahead, strlen(ahead), &m, NULL), 0);
	envelope_msg_clear(&m);
	free(old), free(ahead);
}

static void test_truncated_and_oversize(void **state)
{
	char *buf = seal("pi1", "HELLO", true), *big = malloc(ENVELOPE_MAX + 1);
	size_t len = strlen(buf);
	struct envelope_msg m;

	(void)state;
	for (size_t cut = 0; cut < len; cut += len / 7 + 1)
		assert_int_equal(open_as("pi2", buf, cut, &m, NULL), -EBADMSG);
	assert_int_equal(open_as("pi2", buf, len - 1, &m, NULL), -EBADMSG);
	/* The form is exact: anything after the object is refused; past the limit nothing is read
	 * at all. */
	memset(big, ' ', ENVELOPE_MAX + 1);
	memcpy(big, buf, len);
	assert_int_equal(open_as("pi2", big, len + 1, &m, NULL), -EBADMSG);
	assert_int_equal(open_as("pi2", big, ENVELOPE_MAX, &m, NULL), -EBADMSG);
	assert_int_equal(open_as("pi2", big, ENVELOPE_MAX + 1, &m, NULL), -EMSGSIZE);
	assert_int_equal(open_as("pi2", big, SIZE_MAX, &m, NULL), -EMSGSIZE);
	free(big);
	free(buf);
}

/* Flip one character of the signed text or the signature: the signature check catches it. */
static void test_tampered_signature(void **state)
{
	char *buf = seal("pi1", "HELLO", true), *w, *t64, *s64;
	json_t *o = json_loads(buf, 0, NULL);
	uint8_t *text, *sig;
	size_t tlen, slen;

	(void)state;
	assert_int_equal(b64_decode(json_string_value(json_object_get(o, "msg")), &text, &tlen), 0);
	assert_int_equal(b64_decode(json_string_value(json_object_get(o, "sig")), &sig, &slen), 0);
	/* "world" -> "worle" keeps the JSON valid and the rest of the checks passing. */
	assert_non_null(w = strstr((char *)text, "world"));
	w[4] = 'e';
	json_object_set_new(o, "msg", json_string(t64 = b64_encode(text, tlen)));
	expect("text changed", json_dumps(o, JSON_COMPACT), -IOTSEC_EBADSIG, NULL);
	free(t64);
	w[4] = 'd', sig[slen / 2] ^= 1;
	json_object_set_new(o, "msg", json_string(t64 = b64_encode(text, tlen)));
	json_object_set_new(o, "sig", json_string(s64 = b64_encode(sig, slen)));
	expect("signature changed", json_dumps(o, JSON_COMPACT), -IOTSEC_EBADSIG, NULL);
	free(t64), free(s64), free(text), free(sig), free(buf);
	json_decref(o);
}

/* Certificates are public: anyone can send junk wearing pi1's. Such a refusal must not count
 * against pi1 (SPEC 7 labels a device malicious, and has it revoked, by these counts), whatever
 * step refuses it: only what pi1's key signed may be held against pi1. */
static void test_forgery_not_counted_against_cert_owner(void **state)
{
	struct {
		const char *what;
		char *inner;
	} rows[] = {
	    {"plain broadcast", inner_text("HELLO", "pi1", "")},
	    {"type its role may not send", inner_text("I_AM_CONTROLLER", "pi1", "")},
	    {"unknown type", inner_text("NOT_KNOWN_THERE", "pi1", "")},
	    {"another sender's name", inner_text("HELLO", "pi2", "")},
	    {"for another device", inner_text("KEYS", "pi1", ",\"to\":\"ctl1\",\"id\":\"d1\"")},
	    {"broadcast with a recipient",
	     inner_text("HELLO", "pi1", ",\"to\":\"pi2\",\"id\":\"d\"")},
	};
	char sender[CERT_NAME_MAX], failed[256] = "";
	struct envelope_msg m;

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		/* Signed by pi9, of another home, carrying pi1's real certificate. */
		char *buf = craft_as("pi1", "pi9", rows[i].inner, "2", "");
		int r = open_as("pi2", buf, strlen(buf), &m, sender);

		if (r == 0)
			envelope_msg_clear(&m);
		if (!failed[0] && (r == 0 || (i == 0 && r != -IOTSEC_EBADSIG) || sender[0]))
			snprintf(failed, sizeof(failed), "forged %s: got %s, counted against '%s'",
				 rows[i].what, iotsec_strerror(r), sender);
		free(buf);
	}
	if (failed[0]) /* after the loop, so nothing leaks */
		fail_msg("%s", failed);
}

/* Replay state is per sender: a flood from pi1 (more than a window, stamped as far ahead as
 * freshness allows) cannot get pi2's messages refused, even one sealed before the flood and
 * delivered after it. */
static void test_flood_does_not_block_others(void **state)
{
	struct envelope_ctx *rx = rx_for("ctl1"), *a = tx_for("pi1"), *b = tx_for("pi2");
	int64_t t0 = clock_now();
	char *b1, *b2, *flood[200];

	(void)state;
	clock_set_fake(t0);
	b1 = hello(b, true), b2 = hello(b, false);
	clock_set_fake(t0 + DELTA_T);
	for (int i = 0; i < 200; i++)
		flood[i] = hello(a, i == 0);
	clock_set_fake(t0);
	assert_int_equal(open_in(rx, b1, NULL), 0);
	for (int i = 0; i < 200; i++) {
		assert_int_equal(open_in(rx, flood[i], NULL), 0);
		assert_int_equal(open_in(rx, flood[i], NULL), -IOTSEC_EREPLAY);
		free(flood[i]);
	}
	assert_int_equal(open_in(rx, b2, NULL), 0);
	free(b1), free(b2);
	envelope_ctx_free(a), envelope_ctx_free(b), envelope_ctx_free(rx);
}

/* One message from tx, sealed now, opened by rx. */
static int send_one(struct envelope_ctx *tx, struct envelope_ctx *rx, bool with_cert,
		    char sender[CERT_NAME_MAX])
{
	char *buf = hello(tx, with_cert);
	int r = open_in(rx, buf, sender);

	free(buf);
	return r;
}

/* A cached certificate holds only for the CRL it was verified under: once the CA revokes it
 * and the store reloads, the very next message, even fingerprint-only, is refused. */
static void test_cache_follows_crl(void **state)
{
	struct ca_enrol_req req = {.device = "pi3",
				   .role = CERT_ROLE_NODE,
				   .not_before = time(NULL) - 60,
				   .not_after = time(NULL) + DAY};
	char out[PATH_MAX + 8], sender[CERT_NAME_MAX];
	struct envelope_ctx *tx, *other, *rx = rx_for("pi2");
	bool changed = false;

	(void)state;
	snprintf(out, sizeof(out), "%s/out", fx.dir);
	req.out_dir = out;
	assert_int_equal(ca_enrol(fx.ca_dir, &req), 0);
	assert_int_equal(cert_store_refresh(store, NULL), 0);
	tx = tx_for("pi3"), other = tx_for("pi1");
	assert_int_equal(send_one(tx, rx, true, sender), 0);
	assert_int_equal(send_one(tx, rx, false, sender), 0); /* cached */
	assert_int_equal(send_one(other, rx, true, sender), 0);

	assert_int_equal(ca_revoke(fx.ca_dir, "pi3"), 0);
	assert_int_equal(cert_store_refresh(store, &changed), 0);
	assert_true(changed);
	assert_int_equal(send_one(tx, rx, false, sender), -EKEYREVOKED);
	assert_string_equal(sender, "");
	assert_int_equal(send_one(tx, rx, true, sender), -EKEYREVOKED);
	assert_string_equal(sender, "");
	assert_int_not_equal(send_one(tx, rx, false, sender), 0);
	/* Another device's cached certificate survives the new CRL. */
	assert_int_equal(send_one(other, rx, false, sender), 0);
	envelope_ctx_free(tx), envelope_ctx_free(other), envelope_ctx_free(rx);
}

/* A cached certificate holds only within its validity: past notAfter it is refused. */
static void test_cache_respects_expiry(void **state)
{
	struct envelope_ctx *tx = tx_for("short"), *other = tx_for("pi1"), *rx = rx_for("pi2");
	int64_t t0 = clock_now();
	char sender[CERT_NAME_MAX];

	(void)state;
	clock_set_fake(t0);
	assert_int_equal(send_one(tx, rx, true, sender), 0);
	assert_int_equal(send_one(other, rx, true, sender), 0);
	clock_set_fake(t0 + 29 * DAY); /* "short" ends in 30 days */
	assert_int_equal(send_one(tx, rx, false, sender), 0);
	clock_set_fake(t0 + 31 * DAY);
	assert_int_equal(send_one(tx, rx, false, sender), -EKEYEXPIRED);
	assert_string_equal(sender, "");
	assert_int_equal(send_one(tx, rx, true, sender), -EKEYEXPIRED);
	assert_string_equal(sender, "");
	/* The clock moving on is not what refused it: pi1's year-long certificate still works. */
	assert_int_equal(send_one(other, rx, false, sender), 0);
	envelope_ctx_free(tx), envelope_ctx_free(other), envelope_ctx_free(rx);
}

static void test_ctx_refusals(void **state)
{
	X509 *x = fixture_cert(&fx, "pi1");
	EVP_PKEY *k = fixture_key(&fx, "pi2"), *own = fixture_key(&fx, "pi1");
	struct envelope_ctx *ctx = NULL;

	(void)state;
	assert_int_equal(envelope_ctx_new(store, x, k, rules, DELTA_T, &ctx), -IOTSEC_EKEYMISMATCH);
	assert_int_equal(envelope_ctx_new(store, x, own, rules, 0, &ctx), -EINVAL);
	assert_int_equal(envelope_ctx_new(store, x, own, rules, -1, &ctx), -EINVAL);
	assert_null(ctx);
	assert_int_equal(envelope_ctx_new(store, x, own, rules, DELTA_T, &ctx), 0);
	assert_string_equal(envelope_self(ctx)->name, "pi1");
	envelope_ctx_free(ctx);
	envelope_ctx_free(NULL);
	X509_free(x);
	EVP_PKEY_free(k), EVP_PKEY_free(own);
}

#define HOUR 3600

/* A signed text of pi1's stamped at ts with sequence number seq (for times the clock floor
 * keeps envelope_seal() from writing: 1970). */
static char *inner_at(const char *type, long long ts, unsigned long long seq, const char *extra)
{
	char *s;

	assert_true(asprintf(&s,
			     "{\"type\":\"%s\",\"from\":\"pi1\",\"home\":\"testhome\",\"ts\":%lld,"
			     "\"seq\":%llu,\"nonce\":\"%s\",\"body\":{}%s}",
			     type, ts, seq, NONCE, extra) > 0);
	return s;
}

#define TO_PI2 ",\"to\":\"pi2\",\"id\":\"d1\""

/* An any_time type is not judged by our clock: hours old, from 1970 or from the future, it is
 * accepted, where the same message of an ordinary type is stale. */
static void test_any_time_ignores_clock(void **state)
{
	int64_t now = clock_now();
	const struct {
		const char *what;
		long long ts;
	} rows[] = {
	    {"five hours old", (long long)now - 5 * HOUR},
	    {"a day old", (long long)now - DAY},
	    {"from 1970", 0},
	    {"five hours ahead", (long long)now + 5 * HOUR},
	    {"a year ahead", (long long)now + 365LL * DAY},
	};
	struct envelope_ctx *tx = tx_for("pi1");
	char *buf;
	size_t len;

	(void)state;
	clock_set_fake(now);
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char what[128];

		snprintf(what, sizeof(what), "GRANT %s", rows[i].what);
		expect(what, pi1_signed(inner_at("GRANT", rows[i].ts, 5, TO_PI2)), 0, "pi1");
		snprintf(what, sizeof(what), "ASK %s", rows[i].what);
		expect(what, pi1_signed(inner_at("ASK", rows[i].ts, 5, "")), 0, "pi1");
		snprintf(what, sizeof(what), "KEYS %s", rows[i].what);
		expect(what, pi1_signed(inner_at("KEYS", rows[i].ts, 5, TO_PI2)), -IOTSEC_ESTALE,
		       "");
		snprintf(what, sizeof(what), "HELLO %s", rows[i].what);
		expect(what, pi1_signed(inner_at("HELLO", rows[i].ts, 5, "")), -IOTSEC_ESTALE, "");
	}
	/* What envelope_seal() writes, opened five hours later (later, never earlier: the clock
	 * floor, the build time, may be only seconds ago). */
	assert_int_equal(envelope_seal(tx, "GRANT", "pi2", "d2", NULL, true, &buf, &len), 0);
	clock_set_fake(now + 5 * HOUR);
	expect("sealed GRANT five hours old", buf, 0, "pi1");
	clock_set_fake(now);
	assert_int_equal(envelope_seal(tx, "KEYS", "pi2", "d2", NULL, true, &buf, &len), 0);
	clock_set_fake(now + 5 * HOUR);
	expect("sealed KEYS five hours old", buf, -IOTSEC_ESTALE, "");
	envelope_ctx_free(tx);
}

/* The per-sender replay window is not theirs: the same any_time message opens again (its body
 * says whether it is new), and one with a sequence number far ahead does not move the window
 * the sender's ordinary messages need. */
static void test_any_time_skips_replay_window(void **state)
{
	struct envelope_ctx *rx = rx_for("pi2"), *tx = tx_for("pi1");
	char *grant = pi1_signed(inner_at("GRANT", 0, 1, TO_PI2));
	char *ahead =
	    pi1_signed(inner_at("ASK", (long long)clock_now(), (unsigned long long)INT64_MAX, ""));
	char *h1 = hello(tx, true), *h2;

	(void)state;
	assert_int_equal(open_in(rx, grant, NULL), 0);
	assert_int_equal(open_in(rx, grant, NULL), 0);
	assert_int_equal(open_in(rx, ahead, NULL), 0);
	assert_int_equal(open_in(rx, ahead, NULL), 0);
	assert_int_equal(open_in(rx, h1, NULL), 0);
	assert_int_equal(open_in(rx, h1, NULL), -IOTSEC_EREPLAY); /* ordinary types still are */
	h2 = hello(tx, false);
	assert_int_equal(open_in(rx, h2, NULL), 0);
	free(grant), free(ahead), free(h1), free(h2);
	envelope_ctx_free(rx), envelope_ctx_free(tx);
}

/* Everything else still holds for an any_time message from 1970: the signature, the role, the
 * recipient, the certificate and the sender's identity. */
static void test_any_time_other_checks(void **state)
{
	char *good = inner_at("GRANT", 0, 1, TO_PI2), *good64 = b64_encode(good, strlen(good));
	char fp[2 * CERT_FP_LEN + 1];
	struct envelope_ctx *pi1 = rx_for("pi1");

	(void)state;
	hex_encode(envelope_self(pi1)->fp, CERT_FP_LEN, fp);
	envelope_ctx_free(pi1);
	expect("crafted (passes)", craft_as("pi1", "pi1", strdup(good), "2", ""), 0, "pi1");
	expect("signed with another key", craft_as("pi1", "pi2", strdup(good), "2", ""),
	       -IOTSEC_EBADSIG, "");
	expect("broadcast signed with another key",
	       craft_as("pi1", "pi2", inner_at("ASK", 0, 1, ""), "2", ""), -IOTSEC_EBADSIG, "");
	expect("role may not send it", pi1_signed(inner_at("CTL_GRANT", 0, 1, TO_PI2)),
	       -IOTSEC_EROLE, "pi1");
	expect("to another device",
	       pi1_signed(inner_at("GRANT", 0, 1, ",\"to\":\"ctl1\",\"id\":\"d1\"")),
	       -IOTSEC_ENOTFORUS, "");
	expect("unicast type without recipient", pi1_signed(inner_at("GRANT", 0, 1, "")), -EBADMSG,
	       "pi1");
	expect("broadcast type with a recipient", pi1_signed(inner_at("ASK", 0, 1, TO_PI2)),
	       -EBADMSG, "pi1");
	expect("certificate never seen", outer(good64, "fp", fp), -IOTSEC_EUNKNOWNCERT, "");
	expect("revoked sender", craft_as("revoked", "revoked", strdup(good), "2", ""),
	       -EKEYREVOKED, "");
	expect("sender of another home", craft_as("pi9", "pi9", strdup(good), "2", ""),
	       -IOTSEC_EUNKNOWNCA, "");
	expect("lies about its name",
	       craft_as("pi2", "pi2", inner_at("GRANT", 0, 1, ",\"to\":\"pi2\",\"id\":\"d1\""), "2",
			""),
	       -IOTSEC_EIDENTITY, "pi2");
	free(good), free(good64);
}

/* Every test starts and ends on the real clock. */
#define T(f) cmocka_unit_test_setup_teardown(f, reset_clock, reset_clock)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_good_message),
	    T(test_fingerprint_after_certificate),
	    T(test_unicast),
	    T(test_relayed),
	    T(test_seal_refusals),
	    T(test_sender_rejections),
	    T(test_outer_rejections),
	    T(test_signed_text_rejections),
	    T(test_recipient_rejections),
	    T(test_replay_refused),
	    T(test_stale_and_future),
	    T(test_truncated_and_oversize),
	    T(test_tampered_signature),
	    T(test_forgery_not_counted_against_cert_owner),
	    T(test_flood_does_not_block_others),
	    T(test_cache_follows_crl),
	    T(test_cache_respects_expiry),
	    T(test_ctx_refusals),
	    T(test_forged_certificates),
	    T(test_forged_message_teaches_nothing),
	    T(test_any_time_ignores_clock),
	    T(test_any_time_skips_replay_window),
	    T(test_any_time_other_checks),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
