/* ping: pingd's message bodies round-trip, and every malformed body (a field missing, of the
 * wrong type, too long, out of range, a list too long, a field too many) is refused with the
 * output untouched; builders refuse what a parser would. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ping.h"

#define A10  "aaaaaaaaaa"
#define N63  A10 A10 A10 A10 A10 A10 "aaa"	/* the longest name */
#define N64  N63 "a"				/* one too long */
#define ID32 "0123456789abcdef0123456789abcdef" /* the longest id */
#define CRL  "-----BEGIN X509 CRL-----\\nMIIB\\n-----END X509 CRL-----\\n"

enum kind { HELLO, SUSPECT, ALIVE, QUARANTINE, EMPTY, REQ, REPORT, MALICIOUS, CRL_GET, CRL_PEM };

union out {
	struct ping_hello hello;
	struct ping_suspect suspect;
	char id[ENVELOPE_ID_MAX + 1];
	struct ping_quarantine q;
	char target[CERT_NAME_MAX];
	struct ping_report report;
	struct ping_malicious mal;
	uint64_t number;
	struct {
		const char *pem;
		size_t len;
	} crl;
};

static int parse(enum kind kind, json_t *body, union out *o)
{
	switch (kind) {
	case HELLO:
		return ping_hello_parse(body, &o->hello);
	case SUSPECT:
		return ping_suspect_parse(body, &o->suspect);
	case ALIVE:
		return ping_alive_parse(body, o->id);
	case QUARANTINE:
		return ping_quarantine_parse(body, &o->q);
	case EMPTY:
		return ping_empty_parse(body);
	case REQ:
		return ping_req_parse(body, o->target);
	case REPORT:
		return ping_report_parse(body, &o->report);
	case MALICIOUS:
		return ping_malicious_parse(body, &o->mal);
	case CRL_GET:
		return ping_crl_get_parse(body, &o->number);
	case CRL_PEM:
		return ping_crl_parse(body, &o->crl.pem, &o->crl.len);
	}
	return -1;
}

/* Build again what parsed. */
static int build(enum kind kind, const union out *o, json_t **ret)
{
	switch (kind) {
	case HELLO:
		return ping_hello_build(&o->hello, ret);
	case SUSPECT:
		return ping_suspect_build(&o->suspect, ret);
	case ALIVE:
		return ping_alive_build(o->id, ret);
	case QUARANTINE:
		return ping_quarantine_build(&o->q, ret);
	case EMPTY:
		return ping_empty_build(ret);
	case REQ:
		return ping_req_build(o->target, ret);
	case REPORT:
		return ping_report_build(&o->report, ret);
	case MALICIOUS:
		return ping_malicious_build(&o->mal, ret);
	case CRL_GET:
		return ping_crl_get_build(o->number, ret);
	case CRL_PEM:
		return ping_crl_build(o->crl.pem, ret);
	}
	return -1;
}

#define BAD -EBADMSG
static const struct {
	enum kind kind;
	const char *text;
	int want;
} cases[] = {
    /* HELLO */
    {HELLO, "{\"crl\":0,\"qv\":0}", 0},
    {HELLO, "{\"crl\":9223372036854775807,\"qv\":4294967295}", 0},
    {HELLO, "{\"crl\":3}", BAD},
    {HELLO, "{\"qv\":3}", BAD},
    {HELLO, "{}", BAD},
    {HELLO, "{\"crl\":-1,\"qv\":0}", BAD},
    {HELLO, "{\"crl\":0,\"qv\":-1}", BAD},
    {HELLO, "{\"crl\":0,\"qv\":4294967296}", BAD},
    {HELLO, "{\"crl\":1.0,\"qv\":0}", BAD},
    {HELLO, "{\"crl\":\"1\",\"qv\":0}", BAD},
    {HELLO, "{\"crl\":0,\"qv\":true}", BAD},
    {HELLO, "{\"crl\":0,\"qv\":null}", BAD},
    {HELLO, "{\"crl\":0,\"qv\":0,\"x\":1}", BAD},
    {HELLO, "[0,0]", BAD},
    {HELLO, "null", BAD},
    /* SUSPECT */
    {SUSPECT, "{\"target\":\"pi2\",\"id\":\"0a1b\"}", 0},
    {SUSPECT, "{\"target\":\"" N63 "\",\"id\":\"" ID32 "\"}", 0},
    {SUSPECT, "{\"target\":\"" N64 "\",\"id\":\"0a1b\"}", BAD},
    {SUSPECT, "{\"target\":\"pi2\",\"id\":\"" ID32 "0\"}", BAD},
    {SUSPECT, "{\"target\":\"pi2\"}", BAD},
    {SUSPECT, "{\"id\":\"0a1b\"}", BAD},
    {SUSPECT, "{\"target\":\"\",\"id\":\"0a1b\"}", BAD},
    {SUSPECT, "{\"target\":\"-pi\",\"id\":\"0a1b\"}", BAD},
    {SUSPECT, "{\"target\":\"pi 2\",\"id\":\"0a1b\"}", BAD},
    {SUSPECT, "{\"target\":\"pi\\u00002\",\"id\":\"0a1b\"}", BAD},
    {SUSPECT, "{\"target\":\"pi2\",\"id\":\"0A1B\"}", BAD},
    {SUSPECT, "{\"target\":\"pi2\",\"id\":\"\"}", BAD},
    {SUSPECT, "{\"target\":2,\"id\":\"0a1b\"}", BAD},
    {SUSPECT, "{\"target\":\"pi2\",\"id\":12}", BAD},
    {SUSPECT, "{\"target\":\"pi2\",\"id\":\"0a1b\",\"x\":0}", BAD},
    /* ALIVE */
    {ALIVE, "{\"suspect_id\":\"" ID32 "\"}", 0},
    {ALIVE, "{\"suspect_id\":\"f\"}", 0},
    {ALIVE, "{}", BAD},
    {ALIVE, "{\"suspect_id\":\"g\"}", BAD},
    {ALIVE, "{\"suspect_id\":\"" ID32 "a\"}", BAD},
    {ALIVE, "{\"suspect_id\":\"ab\\u0000cd\"}", BAD},
    {ALIVE, "{\"suspect_id\":[]}", BAD},
    {ALIVE, "{\"suspect_id\":\"ab\",\"id\":\"ab\"}", BAD},
    /* QUARANTINE */
    {QUARANTINE, "{\"version\":1,\"list\":[]}", 0},
    {QUARANTINE,
     "{\"version\":7,\"list\":[{\"name\":\"pi4\",\"reason\":\"missing\",\"at\":1700000000},"
     "{\"name\":\"" N63 "\",\"reason\":\"malicious\",\"at\":0}]}",
     0},
    {QUARANTINE, "{\"version\":0,\"list\":[]}", BAD},
    {QUARANTINE, "{\"version\":4294967296,\"list\":[]}", BAD},
    {QUARANTINE, "{\"list\":[]}", BAD},
    {QUARANTINE, "{\"version\":1}", BAD},
    {QUARANTINE, "{\"version\":1,\"list\":{}}", BAD},
    {QUARANTINE, "{\"version\":\"1\",\"list\":[]}", BAD},
    {QUARANTINE, "{\"version\":1,\"list\":[{\"name\":\"pi4\",\"reason\":\"missing\"}]}", BAD},
    {QUARANTINE, "{\"version\":1,\"list\":[{\"name\":\"pi4\",\"at\":1}]}", BAD},
    {QUARANTINE, "{\"version\":1,\"list\":[{\"reason\":\"missing\",\"at\":1}]}", BAD},
    {QUARANTINE, "{\"version\":1,\"list\":[{\"name\":\"pi4\",\"reason\":\"revoked\",\"at\":1}]}",
     BAD},
    {QUARANTINE, "{\"version\":1,\"list\":[{\"name\":\"pi4\",\"reason\":\"missing\",\"at\":-1}]}",
     BAD},
    {QUARANTINE,
     "{\"version\":1,\"list\":[{\"name\":\"pi4\",\"reason\":\"missing\",\"at\":1099511627777}]}",
     BAD},
    {QUARANTINE,
     "{\"version\":1,\"list\":[{\"name\":\"" N64 "\",\"reason\":\"missing\",\"at\":1}]}", BAD},
    {QUARANTINE,
     "{\"version\":1,\"list\":[{\"name\":\"pi4\",\"reason\":\"missing\",\"at\":1,\"x\":1}]}", BAD},
    {QUARANTINE,
     "{\"version\":1,\"list\":[{\"name\":\"pi4\",\"reason\":\"missing\",\"at\":1},"
     "{\"name\":\"pi4\",\"reason\":\"malicious\",\"at\":2}]}",
     BAD},
    {QUARANTINE, "{\"version\":1,\"list\":[\"pi4\"]}", BAD},
    {QUARANTINE, "{\"version\":1,\"list\":[],\"x\":1}", BAD},
    /* PING, PONG */
    {EMPTY, "{}", 0},
    {EMPTY, "{\"x\":1}", BAD},
    {EMPTY, "[]", BAD},
    {EMPTY, "\"\"", BAD},
    /* PING_REQ */
    {REQ, "{\"target\":\"pi3\"}", 0},
    {REQ, "{}", BAD},
    {REQ, "{\"target\":\"" N64 "\"}", BAD},
    {REQ, "{\"target\":3}", BAD},
    {REQ, "{\"target\":\"pi3\",\"x\":1}", BAD},
    {REQ, "{\"target\":\".pi3\"}", BAD},
    /* REPORT */
    {REPORT, "{\"target\":\"pi3\",\"alive\":false}", 0},
    {REPORT, "{\"target\":\"pi3\",\"alive\":true}", 0},
    {REPORT, "{\"target\":\"pi3\"}", BAD},
    {REPORT, "{\"alive\":true}", BAD},
    {REPORT, "{\"target\":\"pi3\",\"alive\":1}", BAD},
    {REPORT, "{\"target\":\"pi3\",\"alive\":\"true\"}", BAD},
    {REPORT, "{\"target\":\"" N64 "\",\"alive\":true}", BAD},
    {REPORT, "{\"target\":\"pi3\",\"alive\":true,\"x\":1}", BAD},
    /* MALICIOUS */
    {MALICIOUS, "{\"target\":\"pi9\",\"failures\":5}", 0},
    {MALICIOUS, "{\"target\":\"pi9\",\"failures\":1000000}", 0},
    {MALICIOUS, "{\"target\":\"pi9\",\"failures\":0}", BAD},
    {MALICIOUS, "{\"target\":\"pi9\",\"failures\":1000001}", BAD},
    {MALICIOUS, "{\"target\":\"pi9\",\"failures\":5.5}", BAD},
    {MALICIOUS, "{\"target\":\"pi9\"}", BAD},
    {MALICIOUS, "{\"failures\":5}", BAD},
    {MALICIOUS, "{\"target\":\"" N64 "\",\"failures\":5}", BAD},
    {MALICIOUS, "{\"target\":\"pi9\",\"failures\":5,\"x\":1}", BAD},
    /* CRL_GET */
    {CRL_GET, "{\"number\":0}", 0},
    {CRL_GET, "{\"number\":9223372036854775807}", 0},
    {CRL_GET, "{\"number\":-1}", BAD},
    {CRL_GET, "{\"number\":\"3\"}", BAD},
    {CRL_GET, "{}", BAD},
    {CRL_GET, "{\"number\":3,\"x\":1}", BAD},
    /* CRL */
    {CRL_PEM, "{\"pem\":\"" CRL "\"}", 0},
    {CRL_PEM, "{\"pem\":\"-----BEGIN CERTIFICATE-----\\nMIIB\\n\"}", BAD},
    {CRL_PEM, "{\"pem\":\"" CRL "\\u0000\"}", BAD},
    {CRL_PEM, "{\"pem\":\"" CRL "\\u0007\"}", BAD},
    {CRL_PEM, "{\"pem\":\"" CRL "\\u00e9\"}", BAD},
    {CRL_PEM, "{\"pem\":\"\"}", BAD},
    {CRL_PEM, "{\"pem\":1}", BAD},
    {CRL_PEM, "{}", BAD},
    {CRL_PEM, "{\"pem\":\"" CRL "\",\"x\":1}", BAD},
};

static void test_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *body = json_loads(cases[i].text, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
		union out o, untouched, o2;
		json_t *again = NULL;
		int r;

		if (body == NULL)
			fail_msg("case %zu: not JSON: %s", i, cases[i].text);
		memset(&o, 0xa5, sizeof(o));
		untouched = o;
		r = parse(cases[i].kind, body, &o);
		if (r != cases[i].want)
			fail_msg("case %zu: %d, want %d: %s", i, r, cases[i].want, cases[i].text);
		if (r < 0) {
			assert_memory_equal(&o, &untouched, sizeof(o));
		} else {
			/* What parsed builds the same body again. */
			assert_int_equal(build(cases[i].kind, &o, &again), 0);
			assert_int_equal(parse(cases[i].kind, again, &o2), 0);
			if (!json_equal(body, again))
				fail_msg("case %zu: built differently: %s", i, cases[i].text);
			json_decref(again);
		}
		json_decref(body);
	}
}

/* A list of PROTO_QUARANTINE_MAX entries is a body; one more is not. */
static void test_list_bound(void **state)
{
	struct ping_quarantine *q = calloc(1, sizeof(*q)), *q2 = calloc(1, sizeof(*q2));
	json_t *body = NULL, *list;

	(void)state;
	assert_non_null(q);
	assert_non_null(q2);
	q->version = 3, q->n = PROTO_QUARANTINE_MAX;
	for (size_t i = 0; i < q->n; i++) {
		snprintf(q->entry[i].name, CERT_NAME_MAX, "pi%zu", i);
		q->entry[i].reason = i % 2 ? PING_REASON_MISSING : PING_REASON_MALICIOUS;
		q->entry[i].at = (int64_t)i;
	}
	assert_int_equal(ping_quarantine_build(q, &body), 0);
	assert_int_equal(ping_quarantine_parse(body, q2), 0);
	assert_int_equal(q2->n, PROTO_QUARANTINE_MAX);
	assert_memory_equal(q->entry, q2->entry, sizeof(q->entry));
	list = json_object_get(body, "list");
	json_array_append_new(
	    list, json_pack("{s:s, s:s, s:i}", "name", "one-more", "reason", "missing", "at", 1));
	memset(q2, 0xa5, sizeof(*q2));
	assert_int_equal(ping_quarantine_parse(body, q2), -EBADMSG);
	for (size_t i = 0; i < sizeof(*q2); i++)
		assert_int_equal(((uint8_t *)q2)[i], 0xa5);
	json_decref(body);
	free(q);
	free(q2);
}

/* Builders refuse what the parsers would. */
static void test_build_refuses(void **state)
{
	struct ping_quarantine *q = calloc(1, sizeof(*q));
	struct ping_suspect s = {.target = "pi2", .id = "zz"};
	struct ping_report rep = {.target = "", .alive = true};
	struct ping_malicious mal = {.target = "pi9", .failures = 0};
	struct ping_hello h = {.crl = (uint64_t)INT64_MAX + 1};
	json_t *out = NULL;

	(void)state;
	assert_non_null(q);
	assert_int_equal(ping_hello_build(&h, &out), -EINVAL);
	assert_int_equal(ping_suspect_build(&s, &out), -EINVAL);
	strcpy(s.id, "ab"), strcpy(s.target, "-x");
	assert_int_equal(ping_suspect_build(&s, &out), -EINVAL);
	assert_int_equal(ping_alive_build(NULL, &out), -EINVAL);
	assert_int_equal(ping_alive_build("ABC", &out), -EINVAL);
	assert_int_equal(ping_report_build(&rep, &out), -EINVAL);
	assert_int_equal(ping_malicious_build(&mal, &out), -EINVAL);
	mal.failures = PING_FAILURES_MAX + 1;
	assert_int_equal(ping_malicious_build(&mal, &out), -EINVAL);
	assert_int_equal(ping_req_build("a b", &out), -EINVAL);
	assert_int_equal(ping_crl_get_build((uint64_t)INT64_MAX + 1, &out), -EINVAL);
	assert_int_equal(ping_crl_build("not a crl", &out), -EINVAL);
	assert_int_equal(ping_crl_build(NULL, &out), -EINVAL);
	/* version 0, a bad reason, a duplicate, too many */
	assert_int_equal(ping_quarantine_build(q, &out), -EINVAL);
	q->version = 1, q->n = 1;
	strcpy(q->entry[0].name, "pi4");
	assert_int_equal(ping_quarantine_build(q, &out), -EINVAL); /* reason 0 */
	q->entry[0].reason = PING_REASON_MISSING;
	assert_int_equal(ping_quarantine_build(q, &out), 0);
	json_decref(out);
	out = NULL;
	q->entry[1] = q->entry[0], q->n = 2;
	assert_int_equal(ping_quarantine_build(q, &out), -EINVAL);
	q->n = PROTO_QUARANTINE_MAX + 1;
	assert_int_equal(ping_quarantine_build(q, &out), -EINVAL);
	assert_null(out);
	free(q);
}

/* The longest CRL fits; one byte more does not. */
static void test_crl_bound(void **state)
{
	char *pem = malloc(PING_CRL_PEM_MAX + 2);
	json_t *body = NULL;
	const char *got;
	size_t len;

	(void)state;
	assert_non_null(pem);
	memset(pem, 'A', PING_CRL_PEM_MAX + 1);
	memcpy(pem, "-----BEGIN X509 CRL-----\n", 25);
	pem[PING_CRL_PEM_MAX] = 0;
	assert_int_equal(ping_crl_build(pem, &body), 0);
	assert_int_equal(ping_crl_parse(body, &got, &len), 0);
	assert_int_equal(len, PING_CRL_PEM_MAX);
	json_decref(body);
	body = json_pack("{s:s}", "pem", pem);
	pem[PING_CRL_PEM_MAX] = 'A', pem[PING_CRL_PEM_MAX + 1] = 0;
	json_decref(body);
	body = json_pack("{s:s}", "pem", pem);
	assert_int_equal(ping_crl_parse(body, &got, &len), -EBADMSG);
	assert_int_equal(ping_crl_build(pem, &body), -EINVAL);
	json_decref(body);
	free(pem);
}

static void test_reasons(void **state)
{
	enum ping_reason r;

	(void)state;
	assert_string_equal(ping_reason_name(PING_REASON_MISSING), "missing");
	assert_string_equal(ping_reason_name(PING_REASON_MALICIOUS), "malicious");
	assert_null(ping_reason_name((enum ping_reason)0));
	assert_int_equal(ping_reason_parse("malicious", &r), 0);
	assert_int_equal(r, PING_REASON_MALICIOUS);
	assert_int_equal(ping_reason_parse("revoked", &r), -EINVAL);
	assert_int_equal(ping_reason_parse(NULL, &r), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_table),	  cmocka_unit_test(test_list_bound),
	    cmocka_unit_test(test_build_refuses), cmocka_unit_test(test_crl_bound),
	    cmocka_unit_test(test_reasons),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
