/* libFuzzer target: arbitrary bytes as the JSON body a pairwise session receives at each of its
 * steps. For every input, a real initiator and responder (fixed ring keys, as dictd would give
 * them) are driven to the step first, then the input is given:
 *   to session_respond()   as CLIENT_START_SESSION,
 *   to session_on_common() as CLIENT_COMMON_INDEX, to an initiator whose START went out,
 *   to session_on_data()   as MESSAGE_ENC_DATA, to a responder that answered,
 * each time as it is and, so the fuzzer reaches past the first checks without seeds, as a change
 * to the real body of that step in that very exchange (whose proofs the session expects):
 *   - a JSON object's fields replace the real ones, an array of strings removes those it names;
 *   - any input of two bytes or more: byte 0 picks a field, byte 1 what to do with it (remove
 *     it, set it to the rest parsed as JSON, to the rest in base64, or to the rest as a string,
 *     NULs included), so every length of challenge, confirm and data is tried.
 * "$C" in JSON input stands for a well-formed challenge.
 *
 * Nothing may crash or leak, every session is freed, and:
 *   - a refused body leaves the caller's outputs as they were, and the session able to take the
 *     real body after it;
 *   - an accepted START or COMMON_INDEX names only indices of our own ring, and keying it works
 *     (or, for COMMON_INDEX, fails only on the responder's proof);
 *   - accepted DATA is the real text, byte for byte: nothing else can carry a valid proof and
 *     open under the pairwise key. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "crypto.h"
#include "encoding.h"
#include "fuzzlib.h"
#include "session.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define EPOCH	  7
#define POOL	  100
#define SUBST_MAX 8 /* "$C" replaced at most this many times */
#define N(a)	  (sizeof(a) / sizeof((a)[0]))

static const uint32_t ring_a[] = {1, 5, 9, 20}; /* pi1, the initiator */
static const uint32_t ring_b[] = {5, 9, 30};	/* pi2, the responder */
static const char text[] = "the door is open";
static const char challenge[] = "QUFBQUFBQUFBQUFBQUFBQQ=="; /* 16 bytes */
static const char *const fields[] = {"epoch", "indices", "challenge", "confirm", "data", "x"};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	return 0;
}

/* One fuzzer input: its bytes, and the JSON they are (NULL when they are not). */
struct input {
	const uint8_t *data;
	size_t size;
	json_t *json;
};

/* One real exchange, as far as the step under test. */
struct run {
	struct session *ini, *res;
	json_t *start, *common, *data;
};

/* The keys session_lookup() asks s for (or the path key when it names none); how many. */
static size_t keys_for(const struct session *s, uint8_t *out)
{
	const uint32_t *index = NULL;
	size_t n = 0;

	session_lookup(s, &index, &n);
	for (size_t i = 0; i < n; i++) {
		memset(out + i * CRYPTO_KEY_LEN, (int)(index[i] * 7 + 1), CRYPTO_KEY_LEN);
		out[i * CRYPTO_KEY_LEN] = (uint8_t)index[i];
	}
	if (n == 0)
		memset(out, 0x9a, CRYPTO_KEY_LEN);
	return n ? n : 1;
}

/* What session_lookup() names must be ascending indices of ring. */
static void lookup_within(const struct session *s, const uint32_t *ring, size_t n_ring)
{
	const uint32_t *index = NULL;
	size_t n = 0, j = 0;

	session_lookup(s, &index, &n);
	if (n > n_ring)
		abort();
	for (size_t i = 0; i < n; i++) {
		while (j < n_ring && ring[j] < index[i])
			j++;
		if (j == n_ring || ring[j] != index[i] || (i > 0 && index[i] <= index[i - 1]))
			abort();
	}
}

static void run_free(struct run *x)
{
	session_free(x->ini);
	session_free(x->res);
	json_decref(x->start);
	json_decref(x->common);
	json_decref(x->data);
}

/* steps: 1 START sent, 2 COMMON_INDEX answered, 3 DATA sent. */
static void drive(struct run *x, int steps)
{
	uint8_t keys[RING_SIZE_MAX * CRYPTO_KEY_LEN];
	size_t n;

	memset(x, 0, sizeof(*x));
	if (session_initiate(EPOCH, POOL, "pi1", "pi2", ring_a, N(ring_a), text, strlen(text),
			     &x->ini, &x->start) < 0)
		abort();
	if (steps < 2)
		return;
	if (session_respond(x->start, EPOCH, POOL, "pi2", "pi1", ring_b, N(ring_b), &x->res) < 0)
		abort();
	n = keys_for(x->res, keys);
	if (session_keyed(x->res, keys, n, &x->common) < 0)
		abort();
	if (steps < 3)
		return;
	if (session_on_common(x->ini, x->common) < 0)
		abort();
	n = keys_for(x->ini, keys);
	if (session_keyed(x->ini, keys, n, &x->data) < 0)
		abort();
}

/* The real body with a JSON input's changes, or NULL when the input is not a change. */
static json_t *merged(json_t *real, json_t *input)
{
	json_t *b, *v;
	size_t i;

	if (!json_is_object(input) && !json_is_array(input))
		return NULL;
	if ((b = json_deep_copy(real)) == NULL)
		abort();
	if (json_is_object(input)) {
		if (json_object_update(b, input) < 0)
			abort();
		return b;
	}
	json_array_foreach(input, i, v)
	{
		if (json_is_string(v))
			json_object_del(b, json_string_value(v));
	}
	return b;
}

/* The real body with one field changed as the raw input says, or NULL when it says nothing. */
static json_t *tweaked(json_t *real, const uint8_t *data, size_t size)
{
	const char *field;
	json_t *b, *v = NULL;
	char *b64;

	if (size < 2)
		return NULL;
	field = fields[data[0] % N(fields)];
	if ((b = json_deep_copy(real)) == NULL)
		abort();
	switch (data[1] % 4) {
	case 0:
		json_object_del(b, field);
		return b;
	case 1:
		v = json_loadb((const char *)data + 2, size - 2, JSON_DECODE_ANY | JSON_ALLOW_NUL,
			       NULL);
		break;
	case 2:
		if ((b64 = b64_encode(data + 2, size - 2)) == NULL)
			abort();
		v = json_string(b64);
		free(b64);
		break;
	case 3:
		v = json_stringn((const char *)data + 2, size - 2); /* NULL unless UTF-8 */
		break;
	}
	if (v == NULL) {
		json_decref(b);
		return NULL;
	}
	json_object_set_new(b, field, v);
	return b;
}

enum how { AS_IS, MERGED, TWEAKED };

/* The input as the body a step is given (see above); NULL when it does not apply. */
static json_t *body_for(const struct input *in, json_t *real, enum how how)
{
	switch (how) {
	case AS_IS:
		return in->json ? json_incref(in->json) : NULL;
	case MERGED:
		return in->json ? merged(real, in->json) : NULL;
	case TWEAKED:
		return tweaked(real, in->data, in->size);
	}
	return NULL;
}

static void try_respond(const struct input *in, enum how how)
{
	uint8_t keys[RING_SIZE_MAX * CRYPTO_KEY_LEN];
	struct session *s = NULL;
	json_t *common = NULL, *body;
	struct run x;

	drive(&x, 1);
	if ((body = body_for(in, x.start, how)) == NULL)
		goto out;
	if (session_respond(body, EPOCH, POOL, "pi2", "pi1", ring_b, N(ring_b), &s) < 0) {
		if (s != NULL)
			abort();
		goto out;
	}
	lookup_within(s, ring_b, N(ring_b));
	if (session_keyed(s, keys, keys_for(s, keys), &common) < 0 || common == NULL)
		abort();
out:
	json_decref(common);
	json_decref(body);
	session_free(s);
	run_free(&x);
}

static void try_common(const struct input *in, enum how how)
{
	uint8_t keys[RING_SIZE_MAX * CRYPTO_KEY_LEN];
	json_t *data = NULL, *body;
	struct run x;
	int r;

	drive(&x, 2);
	if ((body = body_for(in, x.common, how)) == NULL)
		goto out;
	if (session_on_common(x.ini, body) == 0) {
		lookup_within(x.ini, ring_a, N(ring_a));
		r = session_keyed(x.ini, keys, keys_for(x.ini, keys), &data);
		if ((r < 0 && (r != -EKEYREJECTED || data != NULL)) || (r == 0 && data == NULL))
			abort();
	} else if (session_on_common(x.ini, x.common) < 0) {
		abort(); /* the refused body spoiled the session for the real one */
	}
out:
	json_decref(data);
	json_decref(body);
	run_free(&x);
}

static void try_data(const struct input *in, enum how how)
{
	char out[SESSION_TEXT_MAX + 1];
	size_t len = 12345;
	json_t *body;
	struct run x;

	drive(&x, 3);
	if ((body = body_for(in, x.data, how)) == NULL)
		goto out;
	memset(out, 0xa5, sizeof(out));
	if (session_on_data(x.res, body, out, &len) == 0) {
		if (len != strlen(text) || memcmp(out, text, len + 1) != 0)
			abort();
	} else {
		for (size_t i = 0; i < sizeof(out); i++)
			if ((uint8_t)out[i] != 0xa5)
				abort();
		if (len != 12345 || session_on_data(x.res, x.data, out, &len) < 0 ||
		    len != strlen(text))
			abort(); /* the refused body spoiled the session for the real one */
	}
out:
	json_decref(body);
	run_free(&x);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = {.data = data, .size = size};

	in.json = fuzz_json(data, size, 'C', challenge, SUBST_MAX);
	for (enum how how = AS_IS; how <= TWEAKED; how++) {
		try_respond(&in, how);
		try_common(&in, how);
		try_data(&in, how);
	}
	json_decref(in.json);
	return 0;
}
