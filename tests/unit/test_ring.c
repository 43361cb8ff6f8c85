/* ring: key-distribution bodies round-trip, every malformed body is refused with the output
 * untouched, rings are drawn uniformly, and as many keys as ring_keys_per_msg() allows fit in
 * one envelope, certificate and longest names included. The keys are the test home's (fixture.h:
 * pi1 is "ours", pi2 "other"). Templates in the tables stand for real wrapped keys:
 *   $W a key wrapped to us     $O wrapped to another key   $T $W's blob cut short
 *   $S a 31-byte secret        $L a 33-byte secret         $P a key in base64, not wrapped */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/pem.h>

#include "ca.h"
#include "clock.h"
#include "encoding.h"
#include "envelope.h"
#include "fixture.h"
#include "ring.h"
#include "wrapped.h"

static struct fixture fx;
static EVP_PKEY *ours, *other;

static int setup(void **state)
{
	(void)state;
	return wrapped_setup(&fx, &ours, &other);
}

enum kind { NEEDS, CLIENT_KEYS, RING_KEYS, END, ACK, START, COMMON };

union out {
	struct ring_needs needs;
	struct ring_keys keys;
	struct ring_end end;
	uint32_t ack;
	struct ring_indices idx;
};

/* Bounds used by every table: pool 100, at most 4 keys or indices, rings of at most 75. */
static int parse(int kind, json_t *body, void *out)
{
	union out *o = out;

	switch (kind) {
	case NEEDS:
		return ring_needs_parse(body, &o->needs);
	case CLIENT_KEYS:
		return ring_client_keys_parse(body, ours, 4, &o->keys);
	case RING_KEYS:
		return ring_ring_keys_parse(body, ours, 100, 4, &o->keys);
	case END:
		return ring_end_parse(body, ours, 75, &o->end);
	case ACK:
		return ring_ack_parse(body, &o->ack);
	case START:
		return ring_start_parse(body, 100, 4, &o->idx);
	case COMMON:
		return ring_common_index_parse(body, 100, 4, &o->idx);
	}
	return -1;
}

static const struct wrapped_row cases[] = {
    {NEEDS, "{\"epoch\":1,\"pool\":100,\"ring\":10,\"share\":25}", 0},
    {NEEDS, "{\"epoch\":4294967295,\"pool\":1000000,\"ring\":1024,\"share\":1}", 0},
    {NEEDS, "{\"epoch\":1,\"pool\":5,\"ring\":5,\"share\":5}", 0},
    {NEEDS, "{\"epoch\":1,\"pool\":100,\"ring\":10}", -EBADMSG},
    {NEEDS, "{\"epoch\":1,\"pool\":100,\"ring\":10,\"share\":25,\"x\":0}", -EBADMSG},
    {NEEDS, "{\"epoch\":1,\"pool\":100,\"ring\":101,\"share\":25}", -EBADMSG},
    {NEEDS, "{\"epoch\":1,\"pool\":2000,\"ring\":1025,\"share\":25}", -EBADMSG},
    {NEEDS, "{\"epoch\":1,\"pool\":100,\"ring\":0,\"share\":25}", -EBADMSG},
    {NEEDS, "{\"epoch\":1,\"pool\":0,\"ring\":0,\"share\":0}", -EBADMSG},
    {NEEDS, "{\"epoch\":1,\"pool\":1000001,\"ring\":10,\"share\":25}", -EBADMSG},
    {NEEDS, "{\"epoch\":1,\"pool\":100,\"ring\":10,\"share\":0}", -EBADMSG},
    {NEEDS, "{\"epoch\":1,\"pool\":100,\"ring\":10,\"share\":101}", -EBADMSG},
    {NEEDS, "{\"epoch\":1,\"pool\":\"100\",\"ring\":10,\"share\":25}", -EBADMSG},
    {NEEDS, "{\"epoch\":1,\"pool\":100.0,\"ring\":10,\"share\":25}", -EBADMSG},
    {NEEDS, "[1,100,10,25]", -EBADMSG},

    {CLIENT_KEYS, "{\"epoch\":1,\"keys\":[\"$W\"]}", 0},
    {CLIENT_KEYS, "{\"epoch\":4294967295,\"keys\":[\"$W\",\"$W\",\"$W\",\"$W\"]}", 0},
    {CLIENT_KEYS, "{\"keys\":[\"$W\"]}", -EBADMSG},
    {CLIENT_KEYS, "{\"epoch\":1}", -EBADMSG},
    {CLIENT_KEYS, "{\"epoch\":1,\"keys\":[\"$W\"],\"count\":1}", -EBADMSG},
    {CLIENT_KEYS, "{\"epoch\":0,\"keys\":[\"$W\"]}", -EBADMSG},
    {CLIENT_KEYS, "{\"epoch\":-1,\"keys\":[\"$W\"]}", -EBADMSG},
    {CLIENT_KEYS, "{\"epoch\":4294967296,\"keys\":[\"$W\"]}", -EBADMSG},
    {CLIENT_KEYS, "{\"epoch\":1.0,\"keys\":[\"$W\"]}", -EBADMSG},
    {CLIENT_KEYS, "{\"epoch\":\"1\",\"keys\":[\"$W\"]}", -EBADMSG},
    {CLIENT_KEYS, "{\"epoch\":true,\"keys\":[\"$W\"]}", -EBADMSG},
    {CLIENT_KEYS, "{\"epoch\":null,\"keys\":[\"$W\"]}", -EBADMSG},
    {CLIENT_KEYS, "{\"epoch\":1,\"keys\":[]}", -EBADMSG},
    {CLIENT_KEYS, "{\"epoch\":1,\"keys\":\"$W\"}", -EBADMSG},
    {CLIENT_KEYS, "{\"epoch\":1,\"keys\":[1]}", -EBADMSG},
    {CLIENT_KEYS, "{\"epoch\":1,\"keys\":[{\"i\":1,\"k\":\"$W\"}]}", -EBADMSG},
    {CLIENT_KEYS, "{\"epoch\":1,\"keys\":[\"$W\",\"$W\",\"$W\",\"$W\",\"$W\"]}", -EBADMSG},
    {CLIENT_KEYS, "{\"epoch\":1,\"keys\":[\"$W\",\"$O\"]}", -EBADMSG},
    {CLIENT_KEYS, "{\"epoch\":1,\"keys\":[\"$T\"]}", -EBADMSG},
    {CLIENT_KEYS, "{\"epoch\":1,\"keys\":[\"$S\"]}", -EBADMSG},
    {CLIENT_KEYS, "{\"epoch\":1,\"keys\":[\"$L\"]}", -EBADMSG},
    {CLIENT_KEYS, "{\"epoch\":1,\"keys\":[\"$P\"]}", -EBADMSG},
    {CLIENT_KEYS, "{\"epoch\":1,\"keys\":[\"\"]}", -EBADMSG},
    {CLIENT_KEYS, "{\"epoch\":1,\"keys\":[\"!!!!\"]}", -EBADMSG},
    {CLIENT_KEYS, "{\"epoch\":1,\"keys\":[\" $W\"]}", -EBADMSG},
    {CLIENT_KEYS, "{\"epoch\":1,\"keys\":[\"$W\\u0000\"]}", -EBADMSG},
    {CLIENT_KEYS, "{\"epoch\":1,\"keys\":[\"$W$W$W$W\"]}", -EBADMSG}, /* over the size cap */

    {RING_KEYS, "{\"epoch\":1,\"keys\":[{\"i\":0,\"k\":\"$W\"},{\"i\":99,\"k\":\"$W\"}]}", 0},
    {RING_KEYS, "{\"epoch\":1,\"keys\":[{\"k\":\"$W\",\"i\":7}]}", 0},
    {RING_KEYS, "{\"epoch\":1,\"keys\":[{\"i\":100,\"k\":\"$W\"}]}", -EBADMSG},
    {RING_KEYS, "{\"epoch\":1,\"keys\":[{\"i\":-1,\"k\":\"$W\"}]}", -EBADMSG},
    {RING_KEYS, "{\"epoch\":1,\"keys\":[{\"i\":1.5,\"k\":\"$W\"}]}", -EBADMSG},
    {RING_KEYS, "{\"epoch\":1,\"keys\":[{\"i\":\"1\",\"k\":\"$W\"}]}", -EBADMSG},
    {RING_KEYS, "{\"epoch\":1,\"keys\":[{\"i\":5,\"k\":\"$W\"},{\"i\":5,\"k\":\"$W\"}]}", -EBADMSG},
    {RING_KEYS, "{\"epoch\":1,\"keys\":[{\"i\":6,\"k\":\"$W\"},{\"i\":5,\"k\":\"$W\"}]}", -EBADMSG},
    {RING_KEYS, "{\"epoch\":1,\"keys\":[{\"k\":\"$W\"}]}", -EBADMSG},
    {RING_KEYS, "{\"epoch\":1,\"keys\":[{\"i\":1}]}", -EBADMSG},
    {RING_KEYS, "{\"epoch\":1,\"keys\":[{\"i\":1,\"k\":\"$W\",\"e\":1}]}", -EBADMSG},
    {RING_KEYS, "{\"epoch\":1,\"keys\":[{\"i\":1,\"k\":1}]}", -EBADMSG},
    {RING_KEYS, "{\"epoch\":1,\"keys\":[[1,\"$W\"]]}", -EBADMSG},
    {RING_KEYS, "{\"epoch\":1,\"keys\":[\"$W\"]}", -EBADMSG},
    {RING_KEYS, "{\"epoch\":1,\"keys\":[]}", -EBADMSG},
    {RING_KEYS, "{\"epoch\":0,\"keys\":[{\"i\":1,\"k\":\"$W\"}]}", -EBADMSG},
    {RING_KEYS, "{\"epoch\":1,\"keys\":[{\"i\":1,\"k\":\"$O\"}]}", -EBADMSG},
    {RING_KEYS, "{\"epoch\":1,\"keys\":[{\"i\":1,\"k\":\"$W\"},{\"i\":2,\"k\":\"$T\"}]}", -EBADMSG},
    {RING_KEYS,
     "{\"epoch\":1,\"keys\":[{\"i\":1,\"k\":\"$W\"},{\"i\":2,\"k\":\"$W\"},{\"i\":3,\"k\":\"$W\"},"
     "{\"i\":4,\"k\":\"$W\"},{\"i\":5,\"k\":\"$W\"}]}",
     -EBADMSG},

    {END, "{\"epoch\":1,\"count\":75,\"pool\":100,\"group\":\"$W\",\"start\":1}", 0},
    {END, "{\"epoch\":1,\"count\":1,\"pool\":1,\"group\":\"$W\",\"start\":1}", 0},
    {END, "{\"pool\":1000000,\"count\":75,\"epoch\":4294967295,\"group\":\"$W\",\"start\":1}", 0},
    {END, "{\"epoch\":1,\"count\":75,\"pool\":75,\"group\":\"$W\",\"start\":1}",
     0}, /* every key of the pool */
    {END, "{\"epoch\":1,\"count\":76,\"pool\":100,\"group\":\"$W\",\"start\":1}",
     -EBADMSG}, /* above the caller's max */
    {END, "{\"epoch\":1,\"count\":0,\"pool\":100,\"group\":\"$W\",\"start\":1}", -EBADMSG},
    {END, "{\"epoch\":1,\"count\":-75,\"pool\":100,\"group\":\"$W\",\"start\":1}", -EBADMSG},
    {END, "{\"epoch\":1,\"count\":\"75\",\"pool\":100,\"group\":\"$W\",\"start\":1}", -EBADMSG},
    {END, "{\"epoch\":1,\"pool\":100,\"group\":\"$W\",\"start\":1}", -EBADMSG},
    {END, "{\"epoch\":1,\"count\":75,\"group\":\"$W\",\"start\":1}",
     -EBADMSG}, /* the old body, without the pool */
    {END, "{\"epoch\":1,\"count\":75,\"pool\":0,\"group\":\"$W\",\"start\":1}", -EBADMSG},
    {END, "{\"epoch\":1,\"count\":75,\"pool\":1000001,\"group\":\"$W\",\"start\":1}",
     -EBADMSG}, /* > RING_POOL_MAX */
    {END, "{\"epoch\":1,\"count\":75,\"pool\":74,\"group\":\"$W\",\"start\":1}",
     -EBADMSG}, /* fewer keys than the ring */
    {END, "{\"epoch\":1,\"count\":75,\"pool\":-1,\"group\":\"$W\",\"start\":1}", -EBADMSG},
    {END, "{\"epoch\":1,\"count\":75,\"pool\":\"100\",\"group\":\"$W\",\"start\":1}", -EBADMSG},
    {END, "{\"epoch\":1,\"count\":75,\"pool\":100.0,\"group\":\"$W\",\"start\":1}", -EBADMSG},
    {END, "{\"epoch\":1,\"count\":75,\"pool\":null,\"group\":\"$W\",\"start\":1}", -EBADMSG},
    {END, "{\"epoch\":1,\"count\":75,\"pool\":100,\"keys\":[],\"group\":\"$W\",\"start\":1}",
     -EBADMSG},
    {END, "{\"epoch\":99999999999,\"count\":75,\"pool\":100,\"group\":\"$W\",\"start\":1}",
     -EBADMSG},
    {END, "{\"epoch\":0,\"count\":75,\"pool\":100,\"group\":\"$W\",\"start\":1}", -EBADMSG},
    {END, "[1,75,100]", -EBADMSG},
    /* The group stream: both fields required, the root wrapped to us, e0 at least 1. */
    {END, "{\"start\":4294967295,\"group\":\"$W\",\"epoch\":2,\"count\":1,\"pool\":9}", 0},
    {END, "{\"epoch\":1,\"count\":75,\"pool\":100}", -EBADMSG}, /* the old body */
    {END, "{\"epoch\":1,\"count\":75,\"pool\":100,\"start\":1}", -EBADMSG},
    {END, "{\"epoch\":1,\"count\":75,\"pool\":100,\"group\":\"$W\"}", -EBADMSG},
    {END, "{\"epoch\":1,\"count\":75,\"pool\":100,\"group\":\"$W\",\"strt\":1}", -EBADMSG},
    {END, "{\"epoch\":1,\"count\":75,\"pool\":100,\"grp\":\"$W\",\"start\":1}", -EBADMSG},
    {END, "{\"epoch\":1,\"count\":75,\"pool\":100,\"group\":\"$W\",\"start\":0}", -EBADMSG},
    {END, "{\"epoch\":1,\"count\":75,\"pool\":100,\"group\":\"$W\",\"start\":-1}", -EBADMSG},
    {END, "{\"epoch\":1,\"count\":75,\"pool\":100,\"group\":\"$W\",\"start\":4294967296}",
     -EBADMSG},
    {END, "{\"epoch\":1,\"count\":75,\"pool\":100,\"group\":\"$W\",\"start\":\"1\"}", -EBADMSG},
    {END, "{\"epoch\":1,\"count\":75,\"pool\":100,\"group\":\"$W\",\"start\":1.0}", -EBADMSG},
    {END, "{\"epoch\":1,\"count\":75,\"pool\":100,\"group\":\"$W\",\"start\":true}", -EBADMSG},
    {END, "{\"epoch\":1,\"count\":75,\"pool\":100,\"group\":\"$W\",\"start\":null}", -EBADMSG},
    {END, "{\"epoch\":1,\"count\":75,\"pool\":100,\"group\":1,\"start\":1}", -EBADMSG},
    {END, "{\"epoch\":1,\"count\":75,\"pool\":100,\"group\":null,\"start\":1}", -EBADMSG},
    {END, "{\"epoch\":1,\"count\":75,\"pool\":100,\"group\":[\"$W\"],\"start\":1}", -EBADMSG},
    {END, "{\"epoch\":1,\"count\":75,\"pool\":100,\"group\":{\"k\":\"$W\"},\"start\":1}", -EBADMSG},
    {END, "{\"epoch\":1,\"count\":75,\"pool\":100,\"group\":\"\",\"start\":1}", -EBADMSG},
    {END, "{\"epoch\":1,\"count\":75,\"pool\":100,\"group\":\"!!!!\",\"start\":1}", -EBADMSG},
    {END, "{\"epoch\":1,\"count\":75,\"pool\":100,\"group\":\" $W\",\"start\":1}", -EBADMSG},
    {END, "{\"epoch\":1,\"count\":75,\"pool\":100,\"group\":\"$W\\u0000\",\"start\":1}", -EBADMSG},
    {END, "{\"epoch\":1,\"count\":75,\"pool\":100,\"group\":\"$W$W$W$W\",\"start\":1}",
     -EBADMSG}, /* over the size cap */
    {END, "{\"epoch\":1,\"count\":75,\"pool\":100,\"group\":\"$O\",\"start\":1}", -EBADMSG},
    {END, "{\"epoch\":1,\"count\":75,\"pool\":100,\"group\":\"$T\",\"start\":1}", -EBADMSG},
    {END, "{\"epoch\":1,\"count\":75,\"pool\":100,\"group\":\"$S\",\"start\":1}", -EBADMSG},
    {END, "{\"epoch\":1,\"count\":75,\"pool\":100,\"group\":\"$L\",\"start\":1}", -EBADMSG},
    {END, "{\"epoch\":1,\"count\":75,\"pool\":100,\"group\":\"$P\",\"start\":1}", -EBADMSG},

    {ACK, "{\"epoch\":1}", 0},
    {ACK, "{\"epoch\":4294967295}", 0},
    {ACK, "{}", -EBADMSG},
    {ACK, "{\"epch\":1}", -EBADMSG}, /* one field, but not the epoch */
    {ACK, "{\"epoch\":1,\"id\":\"abc\"}", -EBADMSG},
    {ACK, "{\"epoch\":0}", -EBADMSG},
    {ACK, "{\"epoch\":-1}", -EBADMSG},
    {ACK, "{\"epoch\":4294967296}", -EBADMSG},
    {ACK, "{\"epoch\":\"1\"}", -EBADMSG},
    {ACK, "{\"epoch\":1.0}", -EBADMSG},
    {ACK, "{\"epoch\":true}", -EBADMSG},
    {ACK, "{\"epoch\":null}", -EBADMSG},
    {ACK, "{\"epoch\":[1]}", -EBADMSG},
    {ACK, "[1]", -EBADMSG},
    {ACK, "1", -EBADMSG},

    {START, "{\"epoch\":3,\"indices\":[0,1,50,99]}", 0},
    {START, "{\"epoch\":3,\"indices\":[]}", -EBADMSG},
    {START, "{\"epoch\":3,\"indices\":[3,2]}", -EBADMSG},
    {START, "{\"epoch\":3,\"indices\":[2,2]}", -EBADMSG},
    {START, "{\"epoch\":3,\"indices\":[100]}", -EBADMSG},
    {START, "{\"epoch\":3,\"indices\":[-1,5]}", -EBADMSG},
    {START, "{\"epoch\":3,\"indices\":[1,2,3,4,5]}", -EBADMSG},
    {START, "{\"epoch\":3,\"indices\":[\"1\"]}", -EBADMSG},
    {START, "{\"epoch\":3,\"indices\":[1.0]}", -EBADMSG},
    {START, "{\"epoch\":3,\"indices\":[null]}", -EBADMSG},
    {START, "{\"epoch\":3,\"indices\":{}}", -EBADMSG},
    {START, "{\"indices\":[1]}", -EBADMSG},
    {START, "{\"epoch\":3,\"indices\":[1],\"from\":\"pi1\"}", -EBADMSG},
    {COMMON, "{\"epoch\":3,\"indices\":[]}", 0},
    {COMMON, "{\"epoch\":3,\"indices\":[42]}", 0},
    {COMMON, "{\"epoch\":3,\"indices\":[42,42]}", -EBADMSG},
    {COMMON, "{\"epoch\":3,\"indices\":[43,42]}", -EBADMSG},
    {COMMON, "{\"epoch\":3,\"indices\":[1000]}", -EBADMSG},
    {COMMON, "{\"epoch\":3,\"indices\":[1,2,3,4,5]}", -EBADMSG},
    {COMMON, "{\"epoch\":3}", -EBADMSG},
    {COMMON, "{\"epoch\":3,\"indices\":null}", -EBADMSG},
};

static void test_body_table(void **state)
{
	union out *o = malloc(sizeof(*o));

	(void)state;
	assert_non_null(o);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		wrapped_case(i, cases[i].tmpl, cases[i].want, parse, cases[i].kind, o, sizeof(*o));
	ring_keys_wipe(&o->keys);
	free(o);
}

static void test_unwrapped_values(void **state)
{
	static const char *tmpl =
	    "{\"epoch\":9,\"keys\":[{\"i\":3,\"k\":\"$W\"},{\"i\":8,\"k\":\"$W\"}]}";
	json_t *body = wrapped_body(tmpl);
	struct ring_keys k;
	uint8_t want[CRYPTO_KEY_LEN];

	(void)state;
	memset(want, 0x42, sizeof(want));
	assert_int_equal(ring_ring_keys_parse(body, ours, 100, 2, &k), 0);
	assert_int_equal(k.epoch, 9);
	assert_int_equal(k.n, 2);
	assert_int_equal(k.index[0], 3);
	assert_int_equal(k.index[1], 8);
	assert_memory_equal(k.key[1], want, sizeof(want));
	/* The caller's bounds are honoured: a smaller pool or count refuses the same body. */
	assert_int_equal(ring_ring_keys_parse(body, ours, 8, 2, &k), -EBADMSG);
	assert_int_equal(ring_ring_keys_parse(body, ours, 100, 1, &k), -EBADMSG);
	assert_int_equal(ring_ring_keys_parse(body, ours, 100, 0, &k), -EINVAL);
	assert_int_equal(ring_ring_keys_parse(body, ours, 0, 2, &k), -EINVAL);
	assert_int_equal(ring_ring_keys_parse(body, ours, 100, RING_KEYS_PER_MSG + 1, &k), -EINVAL);
	/* Keys from another message type's parser: indices are not in CLIENT_KEYS. */
	assert_int_equal(ring_client_keys_parse(body, ours, 2, &k), -EBADMSG);
	ring_keys_wipe(&k);
	json_decref(body);
}

static void test_oversized_blob(void **state)
{
	char text[64 + 1400];
	json_t *body;
	struct ring_keys k;

	(void)state;
	/* Valid base64 of 1029 bytes: refused by size before any RSA work. */
	strcpy(text, "{\"epoch\":1,\"keys\":[\"");
	memset(text + strlen(text), 'A', 1372);
	strcpy(text + 20 + 1372, "\"]}");
	body = json_loads(text, 0, NULL);
	assert_non_null(body);
	assert_int_equal(ring_client_keys_parse(body, ours, 1, &k), -EBADMSG);
	json_decref(body);
}

static void fill_keys(struct ring_keys *k, size_t n, uint32_t first_index)
{
	memset(k, 0, sizeof(*k));
	k->epoch = 77;
	k->n = n;
	for (size_t i = 0; i < n; i++) {
		k->index[i] = first_index + (uint32_t)(3 * i);
		for (size_t j = 0; j < CRYPTO_KEY_LEN; j++)
			k->key[i][j] = (uint8_t)(i * 7 + j);
	}
}

static void test_keys_round_trip(void **state)
{
	size_t per = ring_keys_per_msg(ours, 0);
	struct ring_keys in, out;
	json_t *body = NULL;
	char *text, *plain;

	(void)state;
	/* 2048-bit recipient: 30 keys at the worst-case indices fit RING_BODY_MAX, so a ring of
	 * 75 takes three messages. */
	assert_int_equal(per, 30);
	fill_keys(&in, per + 1, 999999 - 3 * (uint32_t)per);
	assert_int_equal(ring_ring_keys_build(&in, 1000000, ours, &body), -EMSGSIZE);
	assert_int_equal(ring_client_keys_build(&in, ours, &body), -EMSGSIZE);
	in.n = per;
	assert_int_equal(ring_ring_keys_build(&in, 1000000, ours, &body), 0);
	text = json_dumps(body, JSON_COMPACT);
	assert_non_null(text);
	assert_true(strlen(text) <= RING_BODY_MAX);
	assert_true(strlen(text) > RING_BODY_MAX - 400); /* the estimate is not loose either */
	assert_int_equal(ring_ring_keys_parse(body, ours, 1000000, RING_KEYS_PER_MSG, &out), 0);
	assert_int_equal(out.epoch, 77);
	assert_int_equal(out.n, per);
	assert_memory_equal(out.index, in.index, per * sizeof(in.index[0]));
	assert_memory_equal(out.key, in.key, per * CRYPTO_KEY_LEN);
	/* Only the recipient can unwrap, and no key is in the clear. */
	assert_int_equal(ring_ring_keys_parse(body, other, 1000000, RING_KEYS_PER_MSG, &out),
			 -EBADMSG);
	plain = b64_encode(in.key[0], CRYPTO_KEY_LEN);
	assert_non_null(plain);
	assert_null(strstr(text, plain));
	free(text), free(plain);
	json_decref(body);

	fill_keys(&in, 1, 0);
	assert_int_equal(ring_client_keys_build(&in, other, &body), 0);
	assert_int_equal(ring_client_keys_parse(body, other, 1, &out), 0);
	assert_int_equal(out.n, 1);
	assert_memory_equal(out.key[0], in.key[0], CRYPTO_KEY_LEN);
	assert_int_equal(ring_client_keys_parse(body, ours, 1, &out), -EBADMSG);
	json_decref(body);
	ring_keys_wipe(&out);
	ring_keys_wipe(&in);
}

/* Parsing accepts up to RING_KEYS_PER_MSG whatever the key size, and not one more. */
static void test_parse_count_limit(void **state)
{
	char tmpl[64 + (RING_KEYS_PER_MSG + 1) * 5];
	struct ring_keys k;
	json_t *body;

	(void)state;
	for (size_t n = RING_KEYS_PER_MSG; n <= RING_KEYS_PER_MSG + 1; n++) {
		strcpy(tmpl, "{\"epoch\":1,\"keys\":[\"$W\"");
		for (size_t i = 1; i < n; i++)
			strcat(tmpl, ",\"$W\"");
		strcat(tmpl, "]}");
		body = wrapped_body(tmpl);
		assert_int_equal(ring_client_keys_parse(body, ours, RING_KEYS_PER_MSG, &k),
				 n == RING_KEYS_PER_MSG ? 0 : -EBADMSG);
		json_decref(body);
	}
	assert_int_equal(k.n, RING_KEYS_PER_MSG);
	ring_keys_wipe(&k);
	assert_int_equal(ring_keys_per_msg(NULL, 0), 0);
	assert_int_equal(ring_keys_per_msg(NULL, 1000), 0);
}

static void test_small_bodies_round_trip(void **state)
{
	struct ring_needs n = {.epoch = 5, .pool = 10000, .ring = 75, .share = 2500}, n2;
	struct ring_end e = {.epoch = 5, .count = 75, .pool = 10000, .start = 4711}, e2;
	uint32_t epoch = 0;
	struct ring_indices *x = calloc(1, sizeof(*x)), *y = calloc(1, sizeof(*y));
	json_t *body = NULL;

	(void)state;
	assert_int_equal(ring_needs_build(&n, &body), 0);
	assert_int_equal(ring_needs_parse(body, &n2), 0);
	assert_memory_equal(&n, &n2, sizeof(n));
	json_decref(body);
	for (size_t i = 0; i < sizeof(e.group); i++)
		e.group[i] = (uint8_t)(i * 7 + 1);
	assert_int_equal(ring_end_build(&e, ours, &body), 0);
	/* The root travels wrapped, never in the clear. */
	{
		char *plain = b64_encode(e.group, sizeof(e.group)),
		     *text = json_dumps(body, JSON_COMPACT);

		assert_non_null(strstr(text, "\"start\":4711"));
		assert_null(strstr(text, plain));
		free(plain), free(text);
	}
	assert_int_equal(ring_end_parse(body, ours, 75, &e2), 0);
	assert_memory_equal(&e, &e2, sizeof(e));
	/* Only its recipient unwraps it. */
	memset(&e2, 0xa5, sizeof(e2));
	assert_int_equal(ring_end_parse(body, other, 75, &e2), -EBADMSG);
	assert_int_equal(e2.start, 0xa5a5a5a5);
	assert_int_equal(ring_end_parse(body, ours, 74, &e2), -EBADMSG);
	assert_int_equal(ring_end_parse(body, ours, 0, &e2), -EINVAL);
	assert_int_equal(ring_end_parse(body, ours, RING_SIZE_MAX + 1, &e2), -EINVAL);
	/* An ack is not an end, nor an end an ack. */
	assert_int_equal(ring_ack_parse(body, &epoch), -EBADMSG);
	json_decref(body);
	assert_int_equal(ring_ack_build(5, &body), 0);
	assert_int_equal(ring_ack_parse(body, &epoch), 0);
	assert_int_equal(epoch, 5);
	assert_int_equal(ring_end_parse(body, ours, 75, &e2), -EBADMSG);
	json_decref(body);
	e.start = UINT32_MAX;
	assert_int_equal(ring_end_build(&e, other, &body), 0);
	assert_int_equal(ring_end_parse(body, other, 75, &e2), 0);
	assert_memory_equal(&e, &e2, sizeof(e));
	json_decref(body);
	crypto_wipe(&e2, sizeof(e2));
	assert_int_equal(ring_ack_build(UINT32_MAX, &body), 0);
	assert_int_equal(ring_ack_parse(body, &epoch), 0);
	assert_int_equal(epoch, UINT32_MAX);
	json_decref(body);

	x->epoch = 5;
	x->n = RING_SIZE_MAX;
	for (size_t i = 0; i < x->n; i++)
		x->index[i] = (uint32_t)(i * 900);
	assert_int_equal(ring_start_build(x, RING_POOL_MAX, &body), 0);
	assert_int_equal(ring_start_parse(body, RING_POOL_MAX, RING_SIZE_MAX, y), 0);
	assert_int_equal(y->epoch, 5);
	assert_int_equal(y->n, RING_SIZE_MAX);
	assert_memory_equal(y->index, x->index, sizeof(x->index));
	assert_int_equal(ring_start_parse(body, RING_POOL_MAX, RING_SIZE_MAX - 1, y), -EBADMSG);
	json_decref(body);
	x->n = 0;
	assert_int_equal(ring_common_index_build(x, 100, &body), 0);
	y->n = 99;
	assert_int_equal(ring_common_index_parse(body, 100, 1, y), 0);
	assert_int_equal(y->n, 0);
	assert_int_equal(ring_start_parse(body, 100, 1, y), -EBADMSG);
	json_decref(body);
	free(x), free(y);
}

static void test_build_refuses(void **state)
{
	struct ring_keys k;
	struct ring_indices *x = calloc(1, sizeof(*x));
	json_t *body = (json_t *)&body;

	(void)state;
	fill_keys(&k, 2, 10);
	k.epoch = 0;
	assert_int_equal(ring_client_keys_build(&k, ours, &body), -EINVAL);
	k.epoch = 1, k.n = 0;
	assert_int_equal(ring_client_keys_build(&k, ours, &body), -EINVAL);
	k.n = RING_KEYS_PER_MSG + 1;
	assert_int_equal(ring_ring_keys_build(&k, 1000, ours, &body), -EINVAL);
	k.n = 2;
	assert_int_equal(ring_ring_keys_build(&k, 13, ours, &body), -EINVAL); /* index 13 */
	k.index[1] = 10;
	assert_int_equal(ring_ring_keys_build(&k, 1000, ours, &body), -EINVAL); /* duplicate */
	assert_int_equal(ring_needs_build(&(struct ring_needs){1, 10, 11, 1}, &body), -EINVAL);
	assert_int_equal(ring_needs_build(&(struct ring_needs){0, 10, 5, 1}, &body), -EINVAL);
	assert_int_equal(ring_needs_build(&(struct ring_needs){1, 10, 5, 0}, &body), -EINVAL);
	assert_int_equal(ring_end_build(&(struct ring_end){1, 0, 10, 1, {0}}, ours, &body),
			 -EINVAL);
	assert_int_equal(ring_end_build(&(struct ring_end){0, 1, 10, 1, {0}}, ours, &body),
			 -EINVAL);
	assert_int_equal(
	    ring_end_build(&(struct ring_end){1, RING_SIZE_MAX + 1, RING_POOL_MAX, 1, {0}}, ours,
			   &body),
	    -EINVAL);
	assert_int_equal(ring_end_build(&(struct ring_end){1, 1, 0, 1, {0}}, ours, &body), -EINVAL);
	assert_int_equal(
	    ring_end_build(&(struct ring_end){1, 1, RING_POOL_MAX + 1, 1, {0}}, ours, &body),
	    -EINVAL);
	assert_int_equal(ring_end_build(&(struct ring_end){1, 5, 4, 1, {0}}, ours, &body), -EINVAL);
	/* A group stream starts at epoch 1 at the earliest, and the root needs a key to go to. */
	assert_int_equal(ring_end_build(&(struct ring_end){1, 5, 10, 0, {0}}, ours, &body),
			 -EINVAL);
	assert_int_equal(ring_end_build(&(struct ring_end){1, 5, 10, 1, {0}}, NULL, &body),
			 -ENOMEM);
	assert_int_equal(ring_ack_build(0, &body), -EINVAL);
	x->epoch = 1;
	assert_int_equal(ring_start_build(x, 100, &body), -EINVAL); /* empty */
	x->n = 2, x->index[0] = 5, x->index[1] = 4;
	assert_int_equal(ring_start_build(x, 100, &body), -EINVAL);
	assert_int_equal(ring_common_index_build(x, 100, &body), -EINVAL);
	x->index[1] = 100;
	assert_int_equal(ring_common_index_build(x, 100, &body), -EINVAL);
	assert_ptr_equal(body, (json_t *)&body);
	ring_keys_wipe(&k);
	free(x);
}

static void test_pick_properties(void **state)
{
	static uint32_t idx[RING_SIZE_MAX];
	unsigned seen[10] = {0}, once[8] = {0};

	(void)state;
	for (int run = 0; run < 300; run++) {
		assert_int_equal(ring_pick(10, 3, idx), 0);
		for (size_t i = 0; i < 3; i++) {
			assert_true(idx[i] < 10);
			if (i > 0)
				assert_true(idx[i] > idx[i - 1]); /* sorted, so distinct */
			seen[idx[i]]++;
		}
	}
	for (size_t i = 0; i < 10; i++)
		assert_true(seen[i] > 0);
	/* k == pool: everything, in order. */
	assert_int_equal(ring_pick(RING_SIZE_MAX, RING_SIZE_MAX, idx), 0);
	for (uint32_t i = 0; i < RING_SIZE_MAX; i++)
		assert_int_equal(idx[i], i);
	assert_int_equal(ring_pick(RING_POOL_MAX, RING_SIZE_MAX, idx), 0);
	for (size_t i = 1; i < RING_SIZE_MAX; i++)
		assert_true(idx[i] > idx[i - 1] && idx[i] < RING_POOL_MAX);
	/* One of 8, 8000 times: each about 1000 (sd 30); 700..1300 fails only if biased. */
	for (int run = 0; run < 8000; run++) {
		assert_int_equal(ring_pick(8, 1, idx), 0);
		once[idx[0]]++;
	}
	for (size_t i = 0; i < 8; i++)
		assert_true(once[i] > 700 && once[i] < 1300);
}

static void test_pick_refuses(void **state)
{
	uint32_t idx[4] = {7, 7, 7, 7};

	(void)state;
	assert_int_equal(ring_pick(10, 0, idx), -EINVAL);
	assert_int_equal(ring_pick(3, 4, idx), -EINVAL);
	assert_int_equal(ring_pick(0, 1, idx), -EINVAL);
	assert_int_equal(ring_pick(RING_POOL_MAX + 1, 1, idx), -EINVAL);
	assert_int_equal(ring_pick(RING_POOL_MAX, RING_SIZE_MAX + 1, idx), -EINVAL);
	assert_int_equal(idx[0], 7);
}

static void test_common(void **state)
{
	static const uint32_t a[] = {1, 4, 9, 16, 25, 36}, b[] = {0, 4, 5, 16, 36, 40},
			      c[] = {2, 3};
	uint32_t out[6];

	(void)state;
	assert_int_equal(ring_common(a, 6, b, 6, out), 3);
	assert_int_equal(out[0], 4);
	assert_int_equal(out[1], 16);
	assert_int_equal(out[2], 36);
	assert_int_equal(ring_common(b, 6, a, 6, out), 3);
	assert_int_equal(out[2], 36);
	assert_int_equal(ring_common(a, 6, c, 2, out), 0);
	assert_int_equal(ring_common(a, 6, a, 0, out), 0);
	assert_int_equal(ring_common(a, 6, a, 6, out), 6);
	assert_memory_equal(out, a, sizeof(a));
	assert_int_equal(ring_common(a, 1, b + 1, 1, out), 0);
}

/* CONTROLLER_PATH_KEY: a round trip, then every way the body can be wrong. */
static void test_path_key(void **state)
{
	struct ring_path_key in = {.epoch = 7, .peer = "pi3"}, out = {.epoch = 99};
	json_t *body = NULL, *bad;

	(void)state;
	memset(in.key, 0x5c, sizeof(in.key));
	assert_int_equal(ring_path_key_build(&in, ours, &body), 0);
	assert_int_equal(ring_path_key_parse(body, ours, &out), 0);
	assert_int_equal(out.epoch, 7);
	assert_string_equal(out.peer, "pi3");
	assert_memory_equal(out.key, in.key, sizeof(in.key));

	out.epoch = 99;
	/* Wrapped to another device: it does not unwrap with our key. */
	assert_int_equal(ring_path_key_parse(body, other, &out), -EBADMSG);
	bad = json_copy(body);
	json_object_set_new(bad, "extra", json_true());
	assert_int_equal(ring_path_key_parse(bad, ours, &out), -EBADMSG);
	json_decref(bad);
	bad = json_copy(body);
	json_object_del(bad, "peer");
	assert_int_equal(ring_path_key_parse(bad, ours, &out), -EBADMSG);
	json_decref(bad);
	bad = json_copy(body);
	json_object_set_new(bad, "peer", json_string(""));
	assert_int_equal(ring_path_key_parse(bad, ours, &out), -EBADMSG);
	json_decref(bad);
	bad = json_copy(body);
	json_object_set_new(bad, "peer", json_stringn("pi\0x", 4)); /* embedded NUL */
	assert_int_equal(ring_path_key_parse(bad, ours, &out), -EBADMSG);
	json_decref(bad);
	bad = json_copy(body);
	json_object_set_new(bad, "epoch", json_integer(0));
	assert_int_equal(ring_path_key_parse(bad, ours, &out), -EBADMSG);
	json_decref(bad);
	bad = json_copy(body);
	json_object_set_new(bad, "k", json_string("not base64!"));
	assert_int_equal(ring_path_key_parse(bad, ours, &out), -EBADMSG);
	json_decref(bad);
	assert_int_equal(out.epoch, 99); /* untouched by every failure */

	in.peer[0] = '\0';
	assert_int_equal(ring_path_key_build(&in, ours, &bad), -EINVAL);
	in.epoch = 0;
	snprintf(in.peer, sizeof(in.peer), "pi3");
	assert_int_equal(ring_path_key_build(&in, ours, &bad), -EINVAL);
	json_decref(body);
}

/* ---- the size budget keyd's deliver() relies on ---- */

/* Unicast CLIENT_RING_KEYS from the controller, as keyd sends it. */
static const struct envelope_rule ring_rules[] = {
    {RING_MSG_RING_KEYS, CERT_ROLE_CONTROLLER, true, false},
    {NULL, 0, false, false},
};

static size_t der_len(X509 *x)
{
	int n = i2d_X509(x, NULL);

	assert_true(n > 0);
	return (size_t)n;
}

/* n keys wrapped to pub at the widest indices and epoch: the longest body of n keys. */
static json_t *widest_ring_keys(EVP_PKEY *pub, size_t n)
{
	struct ring_keys *k = calloc(1, sizeof(*k));
	json_t *body = NULL;

	assert_non_null(k);
	k->epoch = UINT32_MAX;
	k->n = n;
	for (size_t i = 0; i < n; i++) {
		k->index[i] = RING_POOL_MAX - (uint32_t)(n - i);
		memset(k->key[i], (int)i, CRYPTO_KEY_LEN);
	}
	assert_int_equal(ring_ring_keys_build(k, RING_POOL_MAX, pub, &body), 0);
	ring_keys_wipe(k);
	free(k);
	return body;
}

/* Seal as many keys wrapped to pub as ring_keys_per_msg() allows, once beside the sender's
 * certificate and once beside its fingerprint, to a recipient with the longest name under the
 * longest delivery id: both envelopes must be sealed (envelope_seal() refuses -EMSGSIZE past
 * ENVELOPE_MAX) and within ENVELOPE_MAX. Returns the count beside the certificate. */
static size_t budget_holds(struct envelope_ctx *ctx, X509 *cert, EVP_PKEY *pub)
{
	char to[CERT_NAME_MAX], id[ENVELOPE_ID_MAX + 1], *out = NULL;
	size_t with_cert = ring_keys_per_msg(pub, der_len(cert)), alone = ring_keys_per_msg(pub, 0);
	size_t len = 0;
	json_t *body;

	memset(to, 'r', sizeof(to) - 1);
	to[sizeof(to) - 1] = '\0';
	memset(id, 'i', sizeof(id) - 1);
	id[sizeof(id) - 1] = '\0';
	/* A certificate takes room a fingerprint does not: fewer keys, but still some. */
	assert_true(with_cert < alone);
	assert_true(with_cert >= 1);

	body = widest_ring_keys(pub, with_cert);
	assert_int_equal(envelope_seal(ctx, RING_MSG_RING_KEYS, to, id, body, true, &out, &len), 0);
	assert_true(len <= ENVELOPE_MAX);
	free(out);
	json_decref(body);

	body = widest_ring_keys(pub, alone);
	assert_int_equal(envelope_seal(ctx, RING_MSG_RING_KEYS, to, id, body, false, &out, &len),
			 0);
	assert_true(len <= ENVELOPE_MAX);
	free(out);
	json_decref(body);
	return with_cert;
}

/* The test home's controller (RSA-2048, short names) to pi1 (RSA-2048): the budget holds, and
 * the envelope beside the certificate is one pi1 opens and unwraps every key of. */
static void test_keys_beside_certificate(void **state)
{
	X509 *cert = fixture_cert(&fx, "ctl1"), *pi1_cert = fixture_cert(&fx, "pi1");
	EVP_PKEY *key = fixture_key(&fx, "ctl1");
	struct envelope_ctx *ctl = NULL, *pi1 = NULL;
	struct cert_store *store = NULL;
	struct ring_keys *got = calloc(1, sizeof(*got));
	struct envelope_msg m;
	size_t per, len = 0;
	char *out = NULL;
	json_t *body;

	(void)state;
	assert_non_null(got);
	assert_int_equal(cert_store_load(fx.ca_crt, fx.crl, &store), 0);
	assert_int_equal(envelope_ctx_new(store, cert, key, ring_rules, 30, &ctl), 0);
	assert_int_equal(envelope_ctx_new(store, pi1_cert, ours, ring_rules, 30, &pi1), 0);
	/* The more certificate, the fewer keys, down to none. */
	assert_true(ring_keys_per_msg(ours, der_len(cert)) < ring_keys_per_msg(ours, 0));
	assert_true(ring_keys_per_msg(ours, 2 * der_len(cert)) <
		    ring_keys_per_msg(ours, der_len(cert)));
	assert_int_equal(ring_keys_per_msg(ours, ENVELOPE_MAX), 0);
	per = budget_holds(ctl, cert, ours);

	body = widest_ring_keys(ours, per);
	assert_int_equal(
	    envelope_seal(ctl, RING_MSG_RING_KEYS, "pi1", "abc", body, true, &out, &len), 0);
	assert_int_equal(envelope_open(pi1, out, len, &m, NULL), 0);
	assert_int_equal(ring_ring_keys_parse(m.body, ours, RING_POOL_MAX, RING_KEYS_PER_MSG, got),
			 0);
	assert_int_equal(got->n, per);
	assert_int_equal(got->index[per - 1], RING_POOL_MAX - 1);
	assert_int_equal(got->key[per - 1][0], (uint8_t)(per - 1));
	envelope_msg_clear(&m);
	ring_keys_wipe(got);
	free(got);
	free(out);
	json_decref(body);
	envelope_ctx_free(ctl);
	envelope_ctx_free(pi1);
	cert_store_free(store);
	X509_free(cert);
	X509_free(pi1_cert);
	EVP_PKEY_free(key);
}

/* A certificate request for key, as `iotsec-pki enrol --csr` takes it. */
static void write_csr(const char *path, EVP_PKEY *key)
{
	X509_REQ *req = X509_REQ_new();
	FILE *f = fopen(path, "w");

	assert_non_null(req);
	assert_non_null(f);
	assert_int_equal(X509_REQ_set_pubkey(req, key), 1);
	assert_true(X509_REQ_sign(req, key, EVP_sha256()) > 0);
	assert_int_equal(PEM_write_X509_REQ(f, req), 1);
	fclose(f);
	X509_REQ_free(req);
}

/* The worst case RING_BODY_MAX is sized for: a home with the longest name a CA takes, a
 * controller with a 63-character name and an RSA-4096 key (the longest signature, a longer
 * certificate), and recipients of RSA-2048, 3072 and 4096 bits. */
static void test_budget_longest_names(void **state)
{
	char dir[PATH_MAX + 32], out_dir[PATH_MAX + 32], csr[PATH_MAX + 32], crt[PATH_MAX + 160];
	char home[CERT_NAME_MAX], name[CERT_NAME_MAX];
	struct ca_enrol_req req = {
	    .device = name, .role = CERT_ROLE_CONTROLLER, .out_dir = out_dir, .csr_path = csr};
	EVP_PKEY *big = NULL, *ca_key = NULL;
	struct envelope_ctx *ctx = NULL;
	X509 *cert = NULL;
	size_t per2048;

	(void)state;
	/* "<home> home CA" is the CA's common name, at most 64 characters. */
	memset(home, 'h', 56);
	home[56] = '\0';
	memset(name, 'c', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	snprintf(dir, sizeof(dir), "%s/longca", fx.dir);
	snprintf(out_dir, sizeof(out_dir), "%s/longout", fx.dir);
	snprintf(csr, sizeof(csr), "%s/long.csr", fx.dir);
	snprintf(crt, sizeof(crt), "%s/%s.crt", out_dir, name);
	assert_int_equal(ca_init(dir, home, 30), 0);
	assert_int_equal(crypto_rsa_generate(4096, &big), 0);
	write_csr(csr, big);
	req.not_before = clock_now() - 60;
	req.not_after = clock_now() + 86400;
	assert_int_equal(ca_enrol(dir, &req), 0);
	assert_int_equal(cert_load(crt, &cert), 0);
	assert_int_equal(envelope_ctx_new(NULL, cert, big, ring_rules, 30, &ctx), 0);
	snprintf(crt, sizeof(crt), "%s/ca/ca.key", fx.dir);
	assert_int_equal(crypto_load_private_key(crt, &ca_key), 0); /* an RSA-3072 key */

	per2048 = budget_holds(ctx, cert, ours);
	assert_true(budget_holds(ctx, cert, ca_key) < per2048);
	assert_true(budget_holds(ctx, cert, big) < per2048);

	envelope_ctx_free(ctx);
	X509_free(cert);
	EVP_PKEY_free(big);
	EVP_PKEY_free(ca_key);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_body_table),
	    cmocka_unit_test(test_unwrapped_values),
	    cmocka_unit_test(test_oversized_blob),
	    cmocka_unit_test(test_keys_round_trip),
	    cmocka_unit_test(test_parse_count_limit),
	    cmocka_unit_test(test_small_bodies_round_trip),
	    cmocka_unit_test(test_build_refuses),
	    cmocka_unit_test(test_pick_properties),
	    cmocka_unit_test(test_pick_refuses),
	    cmocka_unit_test(test_common),
	    cmocka_unit_test(test_path_key),
	    cmocka_unit_test(test_keys_beside_certificate),
	    cmocka_unit_test(test_budget_longest_names),
	};

	return cmocka_run_group_tests(tests, setup, wrapped_teardown);
}
