/* libFuzzer target: arbitrary bytes as JSON, given to every ring parser (CLIENT_RING_ACK
 * included) with a real RSA key. A body that parses must come back identical through its build
 * function, and a parse that fails must leave its output as it was: anything else aborts. Each
 * "$W" in the input stands for a key really wrapped to this run's RSA key, so the fuzzer also
 * reaches the success paths of the key parsers (the seeds use it). */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "crypto.h"
#include "encoding.h"
#include "fuzzlib.h"
#include "ring.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define POOL	  1000
#define MAX_KEYS  8
#define MAX_IDX	  75
#define SUBST_MAX 64 /* "$W" replaced at most this many times */

static EVP_PKEY *key;
static char *wrapped;		      /* base64 of a key wrapped to key */
static struct ring_indices idx, idx2; /* 4 KiB each: kept off the stack */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	wrapped = fuzz_wrapped_key(&key);
	return 0;
}

static void keys_round_trip(const struct ring_keys *k, bool with_index)
{
	struct ring_keys k2;
	json_t *again = NULL;
	int r = with_index ? ring_ring_keys_build(k, POOL, key, &again)
			   : ring_client_keys_build(k, key, &again);

	if (r < 0 ||
	    (with_index ? ring_ring_keys_parse(again, key, POOL, MAX_KEYS, &k2)
			: ring_client_keys_parse(again, key, MAX_KEYS, &k2)) < 0 ||
	    k2.epoch != k->epoch || k2.n != k->n ||
	    memcmp(k2.key, k->key, k->n * CRYPTO_KEY_LEN) != 0 ||
	    (with_index && memcmp(k2.index, k->index, k->n * sizeof(k->index[0])) != 0))
		abort();
	ring_keys_wipe(&k2);
	json_decref(again);
}

static void indices(json_t *body, int (*parse)(json_t *, uint32_t, size_t, struct ring_indices *),
		    int (*build)(const struct ring_indices *, uint32_t, json_t **))
{
	json_t *again = NULL;

	memset(&idx, 0xa5, sizeof(idx));
	if (parse(body, POOL, MAX_IDX, &idx) < 0) {
		fuzz_untouched(&idx, sizeof(idx));
		return;
	}
	if (build(&idx, POOL, &again) < 0 || parse(again, POOL, MAX_IDX, &idx2) < 0 ||
	    idx2.epoch != idx.epoch || idx2.n != idx.n ||
	    memcmp(idx2.index, idx.index, idx.n * sizeof(idx.index[0])) != 0)
		abort();
	json_decref(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *body = fuzz_json(data, size, 'W', wrapped, SUBST_MAX);
	json_t *again = NULL;
	struct ring_needs needs, needs2;
	struct ring_end end, end2;
	struct ring_keys keys;
	uint32_t ack, ack2;

	if (body == NULL)
		return 0;

	memset(&needs, 0xa5, sizeof(needs));
	if (ring_needs_parse(body, &needs) == 0) {
		if (ring_needs_build(&needs, &again) < 0 || ring_needs_parse(again, &needs2) < 0 ||
		    memcmp(&needs, &needs2, sizeof(needs)) != 0)
			abort();
		json_decref(again);
	} else {
		fuzz_untouched(&needs, sizeof(needs));
	}

	memset(&end, 0xa5, sizeof(end));
	if (ring_end_parse(body, key, MAX_IDX, &end) == 0) {
		/* An end that parses names a ring its pool can hold, and a group stream. */
		if (end.count == 0 || end.count > MAX_IDX || end.count > end.pool ||
		    end.pool > RING_POOL_MAX || end.start == 0 ||
		    ring_end_build(&end, key, &again) < 0 ||
		    ring_end_parse(again, key, MAX_IDX, &end2) < 0 ||
		    memcmp(&end, &end2, sizeof(end)) != 0)
			abort();
		json_decref(again);
	} else {
		fuzz_untouched(&end, sizeof(end));
	}

	memset(&ack, 0xa5, sizeof(ack));
	if (ring_ack_parse(body, &ack) == 0) {
		if (ack == 0 || ring_ack_build(ack, &again) < 0 ||
		    ring_ack_parse(again, &ack2) < 0 || ack2 != ack)
			abort();
		json_decref(again);
	} else {
		fuzz_untouched(&ack, sizeof(ack));
	}

	memset(&keys, 0xa5, sizeof(keys));
	if (ring_client_keys_parse(body, key, MAX_KEYS, &keys) == 0)
		keys_round_trip(&keys, false);
	else
		fuzz_untouched(&keys, sizeof(keys));
	ring_keys_wipe(&keys);
	memset(&keys, 0xa5, sizeof(keys));
	if (ring_ring_keys_parse(body, key, POOL, MAX_KEYS, &keys) == 0)
		keys_round_trip(&keys, true);
	else
		fuzz_untouched(&keys, sizeof(keys));
	ring_keys_wipe(&keys);

	indices(body, ring_start_parse, ring_start_build);
	indices(body, ring_common_index_parse, ring_common_index_build);

	json_decref(body);
	return 0;
}
