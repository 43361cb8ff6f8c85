/* resync: the four neighbour-resync bodies round-trip, every malformed body is refused with the
 * output untouched, and the requester's state machine asks, picks the synced peer with the
 * highest epoch, moves on when it stays silent, asks again and gives up in time, heeding only
 * answers to its current request. pi1 is the requester (fixture.h). Templates in the tables
 * stand for real wrapped keys:
 *   $W a key wrapped to us     $O wrapped to another key   $T $W's blob cut short
 *   $S a 31-byte secret        $L a 33-byte secret         $P a key in base64, not wrapped
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

#include "encoding.h"
#include "envelope.h"
#include "fixture.h"
#include "resync.h"
#include "ring.h"
#include "wrapped.h"

static struct fixture fx;
static EVP_PKEY *ours, *other;
static uint8_t key42[CRYPTO_KEY_LEN];

static int setup(void **state)
{
	(void)state;
	memset(key42, 0x42, sizeof(key42));
	return wrapped_setup(&fx, &ours, &other);
}

/* Nonces: 16 bytes 00..0f (and 10..1f), then wrong ones. */
#define N	"\"AAECAwQFBgcICQoLDA0ODw==\""
#define N2	"\"EBESExQVFhcYGRobHB0eHw==\""
#define N15	"\"AAECAwQFBgcICQoLDA0O\""
#define N17	"\"AAECAwQFBgcICQoLDA0ODxA=\""
#define N_NOPAD "\"AAECAwQFBgcICQoLDA0ODw\""
#define N_BITS	"\"AAECAwQFBgcICQoLDA0ODx==\"" /* non-canonical trailing bits */
#define N_SPACE "\"AAECAwQFBgcICQoLDA0ODw== \""
#define N_NUL	"\"AAECAwQFBgcICQoLDA0ODw==\\u0000\""
#define N_HEX	"\"000102030405060708090a0b0c0d0e0f\""

/* A STATE body from its field values (JSON texts). */
#define ST(n, t, s, i, e, p, st, k)                                                                \
	"{\"nonce\":" n ",\"time\":" t ",\"start\":" s ",\"interval\":" i ",\"epoch\":" e          \
	",\"pool\":" p ",\"stream\":" st ",\"key\":" k "}"
#define T0 "1767225600123"
#define S0 "1767225600"
#define I0 "3600"
#define E0 "42"
#define P0 "3"
#define W  "\"$W\""

enum kind { RQA, RPA, ACK, STATE };

union out {
	uint8_t nonce[RESYNC_NONCE_LEN];
	struct {
		uint8_t nonce[RESYNC_NONCE_LEN];
		bool synced;
		uint32_t epoch;
	} rpa;
	struct resync_state state;
};

static int parse(int kind, json_t *body, void *out)
{
	union out *o = out;

	switch (kind) {
	case RQA:
		return resync_rqa_parse(body, o->nonce);
	case RPA:
		return resync_rpa_parse(body, o->rpa.nonce, &o->rpa.synced, &o->rpa.epoch);
	case ACK:
		return resync_ack_parse(body, o->nonce);
	case STATE:
		return resync_state_parse(body, ours, &o->state);
	}
	return -1;
}

/* Build again what parsed. */
static int build(enum kind kind, const union out *o, json_t **ret)
{
	switch (kind) {
	case RQA:
		return resync_rqa_build(o->nonce, ret);
	case RPA:
		return resync_rpa_build(o->rpa.nonce, o->rpa.synced, o->rpa.epoch, ret);
	case ACK:
		return resync_ack_build(o->nonce, ret);
	case STATE:
		return resync_state_build(&o->state, ours, ret);
	}
	return -1;
}

static const struct wrapped_row cases[] = {
    {RQA, "{\"nonce\":" N "}", 0},
    {RQA, "{\"nonce\":" N2 "}", 0},
    {RQA, "{}", -EBADMSG},
    {RQA, "{\"nonce\":" N ",\"x\":1}", -EBADMSG},
    {RQA, "{\"n\":" N "}", -EBADMSG},
    {RQA, "{\"nonce\":1}", -EBADMSG},
    {RQA, "{\"nonce\":null}", -EBADMSG},
    {RQA, "{\"nonce\":[" N "]}", -EBADMSG},
    {RQA, "{\"nonce\":" N15 "}", -EBADMSG},
    {RQA, "{\"nonce\":" N17 "}", -EBADMSG},
    {RQA, "{\"nonce\":" N_NOPAD "}", -EBADMSG},
    {RQA, "{\"nonce\":" N_BITS "}", -EBADMSG},
    {RQA, "{\"nonce\":" N_SPACE "}", -EBADMSG},
    {RQA, "{\"nonce\":" N_NUL "}", -EBADMSG},
    {RQA, "{\"nonce\":" N_HEX "}", -EBADMSG},
    {RQA, "{\"nonce\":\"\"}", -EBADMSG},
    {RQA, "[" N "]", -EBADMSG},
    {RQA, N, -EBADMSG},
    {RQA, "null", -EBADMSG},

    {ACK, "{\"nonce\":" N "}", 0},
    {ACK, "{}", -EBADMSG},
    {ACK, "{\"nonce\":" N ",\"synced\":true}", -EBADMSG},
    {ACK, "{\"nonce\":" N15 "}", -EBADMSG},
    {ACK, "{\"nonce\":" N_BITS "}", -EBADMSG},
    {ACK, "{\"nonce\":true}", -EBADMSG},

    {RPA, "{\"nonce\":" N ",\"synced\":true,\"epoch\":5}", 0},
    {RPA, "{\"epoch\":4294967295,\"synced\":true,\"nonce\":" N2 "}", 0},
    {RPA, "{\"nonce\":" N ",\"synced\":false,\"epoch\":0}", 0},
    {RPA, "{\"nonce\":" N ",\"synced\":false,\"epoch\":9}", 0},
    {RPA, "{\"nonce\":" N ",\"synced\":true,\"epoch\":0}", -EBADMSG},
    {RPA, "{\"nonce\":" N ",\"synced\":true,\"epoch\":-1}", -EBADMSG},
    {RPA, "{\"nonce\":" N ",\"synced\":false,\"epoch\":-1}", -EBADMSG},
    {RPA, "{\"nonce\":" N ",\"synced\":true,\"epoch\":4294967296}", -EBADMSG},
    {RPA, "{\"nonce\":" N ",\"synced\":true,\"epoch\":5.0}", -EBADMSG},
    {RPA, "{\"nonce\":" N ",\"synced\":true,\"epoch\":\"5\"}", -EBADMSG},
    {RPA, "{\"nonce\":" N ",\"synced\":true,\"epoch\":null}", -EBADMSG},
    {RPA, "{\"nonce\":" N ",\"synced\":1,\"epoch\":5}", -EBADMSG},
    {RPA, "{\"nonce\":" N ",\"synced\":\"true\",\"epoch\":5}", -EBADMSG},
    {RPA, "{\"nonce\":" N ",\"synced\":null,\"epoch\":5}", -EBADMSG},
    {RPA, "{\"nonce\":" N ",\"epoch\":5}", -EBADMSG},
    {RPA, "{\"nonce\":" N ",\"synced\":true}", -EBADMSG},
    {RPA, "{\"synced\":true,\"epoch\":5}", -EBADMSG},
    {RPA, "{\"nonce\":" N ",\"synced\":true,\"epoch\":5,\"pool\":1}", -EBADMSG},
    {RPA, "{\"nonce\":" N15 ",\"synced\":true,\"epoch\":5}", -EBADMSG},
    {RPA, "{\"nonce\":" N_NUL ",\"synced\":true,\"epoch\":5}", -EBADMSG},
    {RPA, "[" N ",true,5]", -EBADMSG},

    {STATE, ST(N, T0, S0, I0, E0, P0, N2, W), 0},
    {STATE, ST(N2, "0", "0", "1", "1", "1", N, W), 0},
    {STATE,
     ST(N, "9223372036854775807", "9223372036854775807", "9223372036854775807", "4294967295",
	"4294967295", N, W),
     0},
    {STATE,
     "{\"key\":\"$W\",\"stream\":" N ",\"pool\":1,\"epoch\":2,\"interval\":60,\"start\":0,"
     "\"time\":5,\"nonce\":" N "}",
     0},
    /* missing and extra fields */
    {STATE,
     "{\"nonce\":" N ",\"time\":1,\"start\":0,\"interval\":1,\"epoch\":1,\"pool\":1,"
     "\"stream\":" N "}",
     -EBADMSG},
    {STATE,
     "{\"time\":1,\"start\":0,\"interval\":1,\"epoch\":1,\"pool\":1,\"stream\":" N
     ",\"key\":\"$W\"}",
     -EBADMSG},
    {STATE,
     "{\"nonce\":" N ",\"start\":0,\"interval\":1,\"epoch\":1,\"pool\":1,\"stream\":" N
     ",\"key\":\"$W\"}",
     -EBADMSG},
    {STATE,
     "{\"nonce\":" N ",\"time\":1,\"start\":0,\"interval\":1,\"epoch\":1,\"pool\":1,"
     "\"key\":\"$W\"}",
     -EBADMSG},
    {STATE,
     "{\"nonce\":" N ",\"time\":1,\"start\":0,\"interval\":1,\"epoch\":1,\"stream\":" N
     ",\"key\":\"$W\"}",
     -EBADMSG},
    {STATE,
     "{\"nonce\":" N ",\"time\":1,\"start\":0,\"interval\":1,\"epoch\":1,\"pool\":1,"
     "\"stream\":" N ",\"key\":\"$W\",\"x\":0}",
     -EBADMSG},
    {STATE,
     "{\"nonce\":" N ",\"time\":1,\"start\":0,\"epoch\":1,\"pool\":1,\"stream\":" N
     ",\"key\":\"$W\",\"intervals\":1}",
     -EBADMSG},
    /* numbers out of range or of the wrong type */
    {STATE, ST(N, "-1", S0, I0, E0, P0, N, W), -EBADMSG},
    {STATE, ST(N, "1.5", S0, I0, E0, P0, N, W), -EBADMSG},
    {STATE, ST(N, "\"1\"", S0, I0, E0, P0, N, W), -EBADMSG},
    {STATE, ST(N, T0, "-1", I0, E0, P0, N, W), -EBADMSG},
    {STATE, ST(N, T0, "null", I0, E0, P0, N, W), -EBADMSG},
    {STATE, ST(N, T0, S0, "0", E0, P0, N, W), -EBADMSG},
    {STATE, ST(N, T0, S0, "-3600", E0, P0, N, W), -EBADMSG},
    {STATE, ST(N, T0, S0, "3600.0", E0, P0, N, W), -EBADMSG},
    {STATE, ST(N, T0, S0, I0, "0", P0, N, W), -EBADMSG},
    {STATE, ST(N, T0, S0, I0, "4294967296", P0, N, W), -EBADMSG},
    {STATE, ST(N, T0, S0, I0, "true", P0, N, W), -EBADMSG},
    {STATE, ST(N, T0, S0, I0, E0, "0", N, W), -EBADMSG},
    {STATE, ST(N, T0, S0, I0, E0, "-1", N, W), -EBADMSG},
    {STATE, ST(N, T0, S0, I0, E0, "4294967296", N, W), -EBADMSG},
    {STATE, ST(N, T0, S0, I0, E0, "[3]", N, W), -EBADMSG},
    /* nonce and stream id */
    {STATE, ST(N15, T0, S0, I0, E0, P0, N, W), -EBADMSG},
    {STATE, ST(N_NUL, T0, S0, I0, E0, P0, N, W), -EBADMSG},
    {STATE, ST("7", T0, S0, I0, E0, P0, N, W), -EBADMSG},
    {STATE, ST(N, T0, S0, I0, E0, P0, N17, W), -EBADMSG},
    {STATE, ST(N, T0, S0, I0, E0, P0, N15, W), -EBADMSG},
    {STATE, ST(N, T0, S0, I0, E0, P0, N_BITS, W), -EBADMSG},
    {STATE, ST(N, T0, S0, I0, E0, P0, N_HEX, W), -EBADMSG},
    {STATE, ST(N, T0, S0, I0, E0, P0, "null", W), -EBADMSG},
    /* the key */
    {STATE, ST(N, T0, S0, I0, E0, P0, N, "\"$O\""), -EBADMSG},
    {STATE, ST(N, T0, S0, I0, E0, P0, N, "\"$T\""), -EBADMSG},
    {STATE, ST(N, T0, S0, I0, E0, P0, N, "\"$S\""), -EBADMSG},
    {STATE, ST(N, T0, S0, I0, E0, P0, N, "\"$L\""), -EBADMSG},
    {STATE, ST(N, T0, S0, I0, E0, P0, N, "\"$P\""), -EBADMSG},
    {STATE, ST(N, T0, S0, I0, E0, P0, N, "\"$B\""), -EBADMSG},
    {STATE, ST(N, T0, S0, I0, E0, P0, N, "\"$W$W\""), -EBADMSG},
    {STATE, ST(N, T0, S0, I0, E0, P0, N, "\"$W\\u0000\""), -EBADMSG},
    {STATE, ST(N, T0, S0, I0, E0, P0, N, "\" $W\""), -EBADMSG},
    {STATE, ST(N, T0, S0, I0, E0, P0, N, "\"!!!!\""), -EBADMSG},
    {STATE, ST(N, T0, S0, I0, E0, P0, N, "\"\""), -EBADMSG},
    {STATE, ST(N, T0, S0, I0, E0, P0, N, "[\"$W\"]"), -EBADMSG},
    {STATE, ST(N, T0, S0, I0, E0, P0, N, "42"), -EBADMSG},
    {STATE, "[]", -EBADMSG},
};

/* A body that parsed builds again into one that parses to the same thing. */
static void round_trip(int kind, void *out)
{
	union out *o = out, o2;
	json_t *again = NULL;

	memset(&o2, 0, sizeof(o2));
	assert_int_equal(build(kind, o, &again), 0);
	assert_int_equal(parse(kind, again, &o2), 0);
	json_decref(again);
	if (kind == RPA) {
		assert_memory_equal(o->rpa.nonce, o2.rpa.nonce, RESYNC_NONCE_LEN);
		assert_int_equal(o->rpa.synced, o2.rpa.synced);
		assert_int_equal(o->rpa.epoch, o2.rpa.epoch);
	} else if (kind == STATE) {
		assert_memory_equal(&o->state, &o2.state, sizeof(o->state));
		assert_memory_equal(o->state.key, key42, CRYPTO_KEY_LEN);
		resync_state_wipe(&o->state);
		resync_state_wipe(&o2.state);
		assert_true(wrapped_all_bytes(&o->state, sizeof(o->state), 0));
	} else {
		assert_memory_equal(o->nonce, o2.nonce, RESYNC_NONCE_LEN);
	}
}

/* Each case: the result wanted, nothing written on failure, and round_trip(). */
static void test_bodies(void **state)
{
	union out o;

	(void)state;
	wrapped_table(cases, sizeof(cases) / sizeof(cases[0]), parse, round_trip, &o, sizeof(o));
}

static struct resync_state sample_state(void)
{
	struct resync_state s = {.time_ms = 1767225600123,
				 .schedule = {.start = 1767225600, .interval = 3600},
				 .epoch = 42,
				 .pool = 3};

	for (size_t i = 0; i < RESYNC_NONCE_LEN; i++)
		s.nonce[i] = (uint8_t)i;
	memset(s.stream, 0x5a, sizeof(s.stream));
	memcpy(s.key, key42, sizeof(s.key));
	return s;
}

/* What parses is exactly what was built; a STATE wrapped to another device's key does not
 * open with ours, and every field is checked by its name. */
static void test_state_values(void **state)
{
	struct resync_state s = sample_state(), got;
	json_t *body = NULL;

	(void)state;
	assert_int_equal(resync_state_build(&s, ours, &body), 0);
	assert_int_equal(json_object_size(body), 8);
	assert_int_equal(json_integer_value(json_object_get(body, "time")), 1767225600123);
	assert_int_equal(json_integer_value(json_object_get(body, "start")), 1767225600);
	assert_int_equal(json_integer_value(json_object_get(body, "interval")), 3600);
	assert_int_equal(json_integer_value(json_object_get(body, "epoch")), 42);
	assert_int_equal(json_integer_value(json_object_get(body, "pool")), 3);
	assert_string_equal(json_string_value(json_object_get(body, "nonce")),
			    "AAECAwQFBgcICQoLDA0ODw==");
	assert_string_equal(json_string_value(json_object_get(body, "stream")),
			    "WlpaWlpaWlpaWlpaWlpaWg==");
	/* The key travels wrapped, never in the clear. */
	assert_null(strstr(json_string_value(json_object_get(body, "key")), "QkJCQkJC"));
	assert_int_equal(resync_state_parse(body, ours, &got), 0);
	assert_memory_equal(&got, &s, sizeof(s));
	memset(&got, 0xa5, sizeof(got));
	assert_int_equal(resync_state_parse(body, other, &got), -EBADMSG);
	assert_true(wrapped_all_bytes(&got, sizeof(got), 0xa5));
	assert_int_equal(resync_state_parse(body, NULL, &got), -EBADMSG);
	json_decref(body);
	body = NULL;
	/* Wrapped to pi2, it opens there only. */
	assert_int_equal(resync_state_build(&s, other, &body), 0);
	assert_int_equal(resync_state_parse(body, ours, &got), -EBADMSG);
	assert_int_equal(resync_state_parse(body, other, &got), 0);
	assert_memory_equal(got.key, key42, CRYPTO_KEY_LEN);
	resync_state_wipe(&got);
	json_decref(body);
}

/* We never build what a peer would refuse. */
static void test_build_refusals(void **state)
{
	const struct {
		const char *what;
		int64_t time_ms, start, interval;
		uint32_t epoch, pool;
	} rows[] = {
	    {"time before 1970", -1, 0, 1, 1, 1}, {"start before 1970", 0, -1, 1, 1, 1},
	    {"interval 0", 0, 0, 0, 1, 1},	  {"interval negative", 0, 0, -60, 1, 1},
	    {"epoch 0", 0, 0, 1, 0, 1},		  {"pool 0", 0, 0, 1, 1, 0},
	};
	uint8_t nonce[RESYNC_NONCE_LEN] = {1};
	json_t *body = NULL;
	EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	struct resync_state s = sample_state();

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct resync_state b = sample_state();

		b.time_ms = rows[i].time_ms, b.schedule.start = rows[i].start;
		b.schedule.interval = rows[i].interval;
		b.epoch = rows[i].epoch, b.pool = rows[i].pool;
		if (resync_state_build(&b, ours, &body) != -EINVAL)
			fail_msg("%s: built", rows[i].what);
		assert_null(body);
	}
	assert_non_null(ec);
	assert_int_equal(resync_state_build(&s, NULL, &body), -EINVAL);
	assert_int_equal(resync_state_build(&s, ec, &body), -EINVAL);
	assert_null(body);
	assert_int_equal(resync_rpa_build(nonce, true, 0, &body), -EINVAL);
	assert_null(body);
	assert_int_equal(resync_rpa_build(nonce, false, 0, &body), 0);
	json_decref(body);
	EVP_PKEY_free(ec);
}

static void test_id(void **state)
{
	uint8_t nonce[RESYNC_NONCE_LEN];
	char id[2 * RESYNC_NONCE_LEN + 1];

	(void)state;
	for (size_t i = 0; i < sizeof(nonce); i++)
		nonce[i] = (uint8_t)(0xf0 + i);
	memset(id, 'x', sizeof(id));
	resync_id(nonce, id);
	assert_string_equal(id, "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff");
	assert_int_equal(strlen(id), ENVELOPE_ID_MAX);
}

/* ---- the requester ---- */

#define COLLECT 500

static void rpa(struct resync *r, const char *peer, bool synced, uint32_t epoch, uint64_t now)
{
	assert_int_equal(resync_on_rpa(r, peer, r->nonce, synced, epoch, now), RESYNC_NOTHING);
}

/* A STATE answering request nonce, at epoch e, its time a second into that epoch. */
static struct resync_state state_at(const uint8_t nonce[RESYNC_NONCE_LEN], uint32_t e)
{
	struct resync_state s = sample_state();

	memcpy(s.nonce, nonce, RESYNC_NONCE_LEN);
	s.epoch = e;
	s.time_ms = (s.schedule.start + (int64_t)(e - 1) * s.schedule.interval + 1) * 1000;
	return s;
}

/* The peers of these tests announce epoch 3 (or below). */
static struct resync_state state_for(const uint8_t nonce[RESYNC_NONCE_LEN])
{
	return state_at(nonce, 3);
}

/* The synced peer with the highest epoch wins, the first heard on a tie; answers that are not
 * synced or name another nonce count for nothing, whatever epoch they claim. */
static void test_picks_best_peer(void **state)
{
	struct resync r;
	uint8_t wrong[RESYNC_NONCE_LEN];

	(void)state;
	resync_init(&r, 3, COLLECT);
	assert_int_equal(r.phase, RESYNC_IDLE);
	assert_int_equal(resync_on_timer(&r, 1000000), RESYNC_NOTHING);
	assert_int_equal(resync_start(&r, 1000), RESYNC_SEND_RQA);
	assert_int_equal(r.phase, RESYNC_ASKING);
	assert_int_equal(r.tries, 1);
	memcpy(wrong, r.nonce, sizeof(wrong));
	wrong[0] ^= 1;
	rpa(&r, "pi2", true, 5, 1010);
	rpa(&r, "pi3", false, 900, 1020); /* not synced */
	rpa(&r, "pi4", true, 7, 1030);
	assert_int_equal(resync_on_rpa(&r, "pi5", wrong, true, 1000, 1040), RESYNC_NOTHING);
	rpa(&r, "pi6", true, 7, 1050);	/* ties with pi4, heard later */
	rpa(&r, "pi2", true, 50, 1060); /* a second answer does not move pi2 up */
	assert_int_equal(r.n_answers, 3);
	/* Answers are collected until the deadline. */
	assert_int_equal(resync_on_timer(&r, 1000 + COLLECT - 1), RESYNC_NOTHING);
	assert_int_equal(r.phase, RESYNC_ASKING);
	assert_int_equal(resync_on_timer(&r, 1000 + COLLECT), RESYNC_SEND_ACK);
	assert_int_equal(r.phase, RESYNC_ACKED);
	assert_string_equal(r.chosen, "pi4");
}

/* A chosen peer that stays silent is replaced by the next best; when none is left, a new
 * request goes out with a new nonce, and the old request's answers no longer count. */
static void test_timeout_next_peer_then_ask_again(void **state)
{
	struct resync r;
	uint8_t first[RESYNC_NONCE_LEN];
	struct resync_state s;
	uint64_t t = 5000;

	(void)state;
	resync_init(&r, 5, COLLECT);
	assert_int_equal(resync_start(&r, t), RESYNC_SEND_RQA);
	memcpy(first, r.nonce, sizeof(first));
	rpa(&r, "pi2", true, 3, t + 1);
	rpa(&r, "pi3", true, 4, t + 2);
	t += COLLECT;
	assert_int_equal(resync_on_timer(&r, t), RESYNC_SEND_ACK);
	assert_string_equal(r.chosen, "pi3");
	/* A late answer joins the candidates. */
	rpa(&r, "pi4", true, 1, t + 1);
	assert_int_equal(resync_on_timer(&r, t + COLLECT - 1), RESYNC_NOTHING);
	t += COLLECT;
	assert_int_equal(resync_on_timer(&r, t), RESYNC_SEND_ACK);
	assert_string_equal(r.chosen, "pi2");
	t += COLLECT;
	assert_int_equal(resync_on_timer(&r, t), RESYNC_SEND_ACK);
	assert_string_equal(r.chosen, "pi4");
	t += COLLECT;
	assert_int_equal(resync_on_timer(&r, t), RESYNC_SEND_RQA);
	assert_int_equal(r.phase, RESYNC_ASKING);
	assert_int_equal(r.tries, 2);
	assert_int_equal(r.n_answers, 0);
	assert_memory_not_equal(r.nonce, first, sizeof(first));
	/* pi3 wakes up and answers the first request: too late, its nonce is gone. */
	assert_int_equal(resync_on_rpa(&r, "pi3", first, true, 4, t + 1), RESYNC_NOTHING);
	assert_int_equal(r.n_answers, 0);
	s = state_for(first);
	assert_int_equal(resync_on_state(&r, "pi3", &s), -EPERM);
	/* pi2 answers the new one, and its STATE ends it. */
	rpa(&r, "pi2", true, 3, t + 2);
	t += COLLECT;
	assert_int_equal(resync_on_timer(&r, t), RESYNC_SEND_ACK);
	assert_string_equal(r.chosen, "pi2");
	s = state_for(r.nonce);
	assert_int_equal(resync_on_state(&r, "pi2", &s), 0);
	assert_int_equal(r.phase, RESYNC_DONE);
	assert_int_equal(resync_on_timer(&r, t + 10 * COLLECT), RESYNC_NOTHING);
}

/* Only the peer we acknowledged may end the request, with our nonce. */
static void test_state_only_from_acked_peer(void **state)
{
	struct resync r;
	struct resync_state s;
	uint8_t other_nonce[RESYNC_NONCE_LEN];

	(void)state;
	resync_init(&r, 3, COLLECT);
	assert_int_equal(resync_start(&r, 0), RESYNC_SEND_RQA);
	s = state_for(r.nonce);
	/* Before any ACK, nobody. */
	assert_int_equal(resync_on_state(&r, "pi2", &s), -EPERM);
	rpa(&r, "pi2", true, 3, 1);
	rpa(&r, "pi3", true, 2, 2);
	assert_int_equal(resync_on_state(&r, "pi2", &s), -EPERM); /* answered, not acked */
	assert_int_equal(resync_on_timer(&r, COLLECT), RESYNC_SEND_ACK);
	assert_string_equal(r.chosen, "pi2");
	assert_int_equal(resync_on_state(&r, "pi3", &s), -EPERM); /* answered, not acked */
	assert_int_equal(resync_on_state(&r, "pi9", &s), -EPERM); /* never answered */
	memcpy(other_nonce, r.nonce, sizeof(other_nonce));
	other_nonce[15] ^= 0x80;
	s = state_for(other_nonce);
	assert_int_equal(resync_on_state(&r, "pi2", &s), -EPERM); /* another request's */
	assert_int_equal(r.phase, RESYNC_ACKED);
	/* pi2 is slow: pi3 is acked, and then pi2's STATE still counts (we asked it). */
	assert_int_equal(resync_on_timer(&r, 2 * COLLECT), RESYNC_SEND_ACK);
	assert_string_equal(r.chosen, "pi3");
	s = state_for(r.nonce);
	assert_int_equal(resync_on_state(&r, "pi2", &s), 0);
	assert_int_equal(r.phase, RESYNC_DONE);
	assert_string_equal(r.chosen, "pi2");
	/* Done: nothing more is taken. */
	assert_int_equal(resync_on_state(&r, "pi3", &s), -EPERM);
	assert_int_equal(resync_on_rpa(&r, "pi4", r.nonce, true, 9, 3 * COLLECT), RESYNC_NOTHING);
	assert_int_equal(r.n_answers, 2);
}

/* With no usable answer, `tries` requests and then FAILED; nothing moves it after. Starting
 * again gives it all its tries back. */
static void test_gives_up(void **state)
{
	struct resync r;
	uint64_t t = 0;

	(void)state;
	resync_init(&r, 3, COLLECT);
	assert_int_equal(resync_start(&r, t), RESYNC_SEND_RQA);
	rpa(&r, "pi2", false, 0, t + 1); /* not synced: no use */
	t += COLLECT;
	assert_int_equal(resync_on_timer(&r, t), RESYNC_SEND_RQA);
	t += COLLECT;
	assert_int_equal(resync_on_timer(&r, t), RESYNC_SEND_RQA);
	assert_int_equal(r.tries, 3);
	assert_int_equal(resync_on_timer(&r, t + COLLECT - 1), RESYNC_NOTHING);
	t += COLLECT;
	assert_int_equal(resync_on_timer(&r, t), RESYNC_GAVE_UP);
	assert_int_equal(r.phase, RESYNC_FAILED);
	assert_int_equal(resync_on_timer(&r, t + COLLECT), RESYNC_NOTHING);
	assert_int_equal(resync_on_rpa(&r, "pi3", r.nonce, true, 4, t + 1), RESYNC_NOTHING);
	assert_int_equal(r.phase, RESYNC_FAILED);
	/* Again, from the start. */
	assert_int_equal(resync_start(&r, t), RESYNC_SEND_RQA);
	assert_int_equal(r.tries, 1);
	assert_int_equal(r.phase, RESYNC_ASKING);
	rpa(&r, "pi3", true, 4, t + 1);
	assert_int_equal(resync_on_timer(&r, t + COLLECT), RESYNC_SEND_ACK);
	/* Its only peer silent: a new request, one more try. */
	assert_int_equal(resync_on_timer(&r, t + 2 * COLLECT), RESYNC_SEND_RQA);
	assert_int_equal(r.tries, 2);
}

/* A single try: no second request. */
static void test_one_try(void **state)
{
	struct resync r;

	(void)state;
	resync_init(&r, 1, COLLECT);
	assert_int_equal(resync_start(&r, 0), RESYNC_SEND_RQA);
	assert_int_equal(resync_on_timer(&r, COLLECT), RESYNC_GAVE_UP);
	resync_init(&r, 0, COLLECT); /* 0 would never ask: taken as 1 */
	assert_int_equal(resync_start(&r, 0), RESYNC_SEND_RQA);
	assert_int_equal(resync_on_timer(&r, COLLECT), RESYNC_GAVE_UP);
}

/* Bounded: at most RESYNC_PEERS_MAX answers are kept; names that are empty or too long are
 * not answers. */
static void test_answers_bounded(void **state)
{
	struct resync r;
	char name[CERT_NAME_MAX + 1];

	(void)state;
	resync_init(&r, 3, COLLECT);
	assert_int_equal(resync_start(&r, 0), RESYNC_SEND_RQA);
	rpa(&r, "", true, 99, 1);
	memset(name, 'n', CERT_NAME_MAX), name[CERT_NAME_MAX] = '\0';
	rpa(&r, name, true, 99, 1);
	assert_int_equal(r.n_answers, 0);
	for (int i = 0; i < RESYNC_PEERS_MAX + 10; i++) {
		snprintf(name, sizeof(name), "p%d", i);
		rpa(&r, name, true, (uint32_t)(i + 1), 2);
	}
	assert_int_equal(r.n_answers, RESYNC_PEERS_MAX);
	/* Epochs 1..32 kept: the lower median is 16, and 17 the highest within one above it. */
	assert_int_equal(resync_on_timer(&r, COLLECT), RESYNC_SEND_ACK);
	assert_string_equal(r.chosen, "p16");
}

/* One lying peer naming a far epoch is never chosen while the honest answers are as many:
 * the choice stays within one above the lower median, whatever the order heard. A liar in the
 * majority wins, and so does a lone answer (nothing to weigh it against). */
static void test_far_epoch_not_chosen(void **state)
{
	struct resync r;
	uint64_t t = 0;

	(void)state;
	resync_init(&r, 2, COLLECT);
	/* One honest peer and one liar: the liar, heard first, is not chosen, nor ever tried. */
	assert_int_equal(resync_start(&r, t), RESYNC_SEND_RQA);
	rpa(&r, "liar", true, 4000000000u, t + 1);
	rpa(&r, "pi2", true, 8000, t + 2);
	t += COLLECT;
	assert_int_equal(resync_on_timer(&r, t), RESYNC_SEND_ACK);
	assert_string_equal(r.chosen, "pi2");
	t += COLLECT; /* pi2 silent: a new request, not the liar */
	assert_int_equal(resync_on_timer(&r, t), RESYNC_SEND_RQA);
	/* Two honest ones across a boundary and a liar: the higher honest one. */
	rpa(&r, "pi2", true, 8000, t + 1);
	rpa(&r, "liar", true, 8100, t + 2);
	rpa(&r, "pi3", true, 8001, t + 3);
	t += COLLECT;
	assert_int_equal(resync_on_timer(&r, t), RESYNC_SEND_ACK);
	assert_string_equal(r.chosen, "pi3");
	t += COLLECT;
	assert_int_equal(resync_on_timer(&r, t), RESYNC_SEND_ACK);
	assert_string_equal(r.chosen, "pi2");
	t += COLLECT; /* both silent: the liar is still not asked */
	assert_int_equal(resync_on_timer(&r, t), RESYNC_GAVE_UP);

	/* A liar far behind: asked only when nobody in the median's range is left. */
	resync_init(&r, 1, COLLECT);
	assert_int_equal(resync_start(&r, t), RESYNC_SEND_RQA);
	rpa(&r, "old", true, 5, t + 1);
	rpa(&r, "pi2", true, 8000, t + 2);
	rpa(&r, "pi3", true, 8000, t + 3);
	t += COLLECT;
	assert_int_equal(resync_on_timer(&r, t), RESYNC_SEND_ACK);
	assert_string_equal(r.chosen, "pi2");
	t += COLLECT;
	assert_int_equal(resync_on_timer(&r, t), RESYNC_SEND_ACK);
	assert_string_equal(r.chosen, "pi3");
	t += COLLECT;
	assert_int_equal(resync_on_timer(&r, t), RESYNC_SEND_ACK);
	assert_string_equal(r.chosen, "old");

	/* A lone answer is taken. */
	resync_init(&r, 1, COLLECT);
	assert_int_equal(resync_start(&r, t), RESYNC_SEND_RQA);
	rpa(&r, "pi9", true, 4000000000u, t + 1);
	assert_int_equal(resync_on_timer(&r, t + COLLECT), RESYNC_SEND_ACK);
	assert_string_equal(r.chosen, "pi9");
}

/* A STATE must keep what its RPA announced: the epoch (or the next one, turned meanwhile) and
 * a time inside it by its schedule (one epoch either side). A decoy RPA followed by a far
 * STATE is refused, and the request goes on to the next peer. */
static void test_state_must_match_rpa(void **state)
{
	static const struct {
		uint32_t epoch;	  /* the STATE's */
		int64_t shift_ms; /* its time moved from a second into that epoch */
		int want;
	} rows[] = {
	    {8000, 0, 0},
	    {8001, 0, 0},			       /* the epoch turned since the RPA */
	    {8000, 3600 * 1000, 0},		       /* its time one epoch on: its tick is late */
	    {8000, -3600 * 1000, 0},		       /* one epoch back */
	    {8002, 0, -EBADMSG},		       /* two above the RPA's */
	    {7999, 0, -EBADMSG},		       /* below it */
	    {4000000000u, 0, -EBADMSG},		       /* far above */
	    {8000, 2 * 3600 * 1000, -EBADMSG},	       /* its time two epochs on */
	    {8000, -2 * 3600 * 1000 - 2000, -EBADMSG}, /* two back */
	    {8000, 100LL * 365 * 86400 * 1000, -EBADMSG}, /* a century on */
	    {8000, -1767225601000, -EBADMSG},		  /* 1970 */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct resync r;
		struct resync_state s;

		resync_init(&r, 1, COLLECT);
		assert_int_equal(resync_start(&r, 0), RESYNC_SEND_RQA);
		rpa(&r, "pi2", true, 8000, 1);
		rpa(&r, "pi3", true, 8000, 2);
		assert_int_equal(resync_on_timer(&r, COLLECT), RESYNC_SEND_ACK);
		assert_string_equal(r.chosen, "pi2");
		s = state_at(r.nonce, rows[i].epoch);
		s.time_ms += rows[i].shift_ms;
		if (s.time_ms < 0)
			s.time_ms = 0;
		assert_int_equal(resync_on_state(&r, "pi2", &s), rows[i].want);
		if (rows[i].want == 0) {
			assert_int_equal(r.phase, RESYNC_DONE);
			continue;
		}
		assert_int_equal(r.phase, RESYNC_ACKED);
		assert_int_equal(resync_on_timer(&r, 2 * COLLECT), RESYNC_SEND_ACK);
		assert_string_equal(r.chosen, "pi3");
		s = state_at(r.nonce, 8000);
		assert_int_equal(resync_on_state(&r, "pi3", &s), 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bodies),
	    cmocka_unit_test(test_state_values),
	    cmocka_unit_test(test_build_refusals),
	    cmocka_unit_test(test_id),
	    cmocka_unit_test(test_picks_best_peer),
	    cmocka_unit_test(test_timeout_next_peer_then_ask_again),
	    cmocka_unit_test(test_state_only_from_acked_peer),
	    cmocka_unit_test(test_gives_up),
	    cmocka_unit_test(test_one_try),
	    cmocka_unit_test(test_answers_bounded),
	    cmocka_unit_test(test_far_epoch_not_chosen),
	    cmocka_unit_test(test_state_must_match_rpa),
	};

	return cmocka_run_group_tests(tests, setup, wrapped_teardown);
}
