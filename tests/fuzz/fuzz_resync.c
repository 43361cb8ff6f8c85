/* libFuzzer target: arbitrary bytes as JSON, given to every neighbour-resync body parser
 * (resync.h), every doctor message parser (doctor.h) and the relay's receipt parser
 * (receipt.h), with a real RSA key. A body that parses must come back identical through its
 * build function, and a parse that fails must leave its output as it was: anything else aborts.
 * Each "$W" in the input stands for a key really wrapped to this run's RSA key, so the fuzzer also
 * reaches the success paths of the key parsers (the seeds use it). */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "crypto.h"
#include "doctor.h"
#include "encoding.h"
#include "fuzzlib.h"
#include "receipt.h"
#include "resync.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SUBST_MAX 64 /* "$W" replaced at most this many times */

static EVP_PKEY *key;
static char *wrapped; /* base64 of a key wrapped to key */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	wrapped = fuzz_wrapped_key(&key);
	return 0;
}

/* RQA and ACK: a nonce alone. */
static void nonce_only(json_t *body, int (*parse)(json_t *, uint8_t *),
		       int (*build)(const uint8_t *, json_t **))
{
	uint8_t n[RESYNC_NONCE_LEN], n2[RESYNC_NONCE_LEN];
	json_t *again = NULL;

	memset(n, 0xa5, sizeof(n));
	if (parse(body, n) < 0) {
		fuzz_untouched(n, sizeof(n));
		return;
	}
	if (build(n, &again) < 0 || parse(again, n2) < 0 || memcmp(n, n2, sizeof(n)) != 0)
		abort();
	json_decref(again);
}

static void rpa(json_t *body)
{
	struct {
		uint8_t nonce[RESYNC_NONCE_LEN];
		bool synced;
		uint32_t epoch;
	} a, b;
	json_t *again = NULL;

	memset(&a, 0xa5, sizeof(a));
	if (resync_rpa_parse(body, a.nonce, &a.synced, &a.epoch) < 0) {
		fuzz_untouched(&a, sizeof(a));
		return;
	}
	if ((a.synced && a.epoch == 0) ||
	    resync_rpa_build(a.nonce, a.synced, a.epoch, &again) < 0 ||
	    resync_rpa_parse(again, b.nonce, &b.synced, &b.epoch) < 0 ||
	    memcmp(a.nonce, b.nonce, sizeof(a.nonce)) != 0 || a.synced != b.synced ||
	    a.epoch != b.epoch)
		abort();
	json_decref(again);
}

static void state(json_t *body)
{
	struct resync_state s, s2;
	json_t *again = NULL;

	memset(&s, 0xa5, sizeof(s));
	if (resync_state_parse(body, key, &s) < 0) {
		fuzz_untouched(&s, sizeof(s));
		return;
	}
	if (s.epoch == 0 || s.pool == 0 || s.schedule.interval < 1 || s.time_ms < 0 ||
	    resync_state_build(&s, key, &again) < 0 || resync_state_parse(again, key, &s2) < 0 ||
	    memcmp(&s, &s2, sizeof(s)) != 0)
		abort();
	resync_state_wipe(&s);
	resync_state_wipe(&s2);
	json_decref(again);
}

static void grant(json_t *body)
{
	struct doctor_grant g, g2;
	json_t *again = NULL;

	memset(&g, 0xa5, sizeof(g));
	if (doctor_grant_parse(body, key, &g) < 0) {
		fuzz_untouched(&g, sizeof(g));
		return;
	}
	if (g.start == 0 || g.issued_ms < 0 || doctor_grant_build(&g, key, &again) < 0 ||
	    doctor_grant_parse(again, key, &g2) < 0 || strcmp(g.kit, g2.kit) != 0 ||
	    g.start != g2.start || g.issued_ms != g2.issued_ms ||
	    memcmp(g.root, g2.root, sizeof(g.root)) != 0)
		abort();
	crypto_wipe(&g, sizeof(g));
	crypto_wipe(&g2, sizeof(g2));
	json_decref(again);
}

static void ack(json_t *body)
{
	char kit[CERT_NAME_MAX], kit2[CERT_NAME_MAX];
	uint64_t seq, seq2;
	json_t *again = NULL;

	memset(kit, 0xa5, sizeof(kit));
	memset(&seq, 0xa5, sizeof(seq));
	if (doctor_ack_parse(body, kit, &seq) < 0) {
		fuzz_untouched(kit, sizeof(kit));
		fuzz_untouched(&seq, sizeof(seq));
		return;
	}
	if (seq == 0 || doctor_ack_build(kit, seq, &again) < 0 ||
	    doctor_ack_parse(again, kit2, &seq2) < 0 || strcmp(kit, kit2) != 0 || seq != seq2)
		abort();
	json_decref(again);
}

/* A receipt that parses obeys its contract (what receipt_covers() relies on) and round-trips;
 * its seqs, expanded back, fold into the same ranges. */
static void receipt(json_t *body)
{
	static uint64_t seqs[6 * RECEIPT_RANGES_MAX];
	struct receipt r, r2, r3;
	json_t *again = NULL;
	size_t n = 0, used = 0;

	memset(&r, 0xa5, sizeof(r));
	if (receipt_parse(body, &r) < 0) {
		fuzz_untouched(&r, sizeof(r));
		return;
	}
	if (r.n < 1 || r.n > RECEIPT_RANGES_MAX)
		abort();
	for (size_t i = 0; i < r.n; i++) {
		if (r.ranges[i].first < 1 || r.ranges[i].first > r.ranges[i].last ||
		    (i > 0 && r.ranges[i - 1].last >= r.ranges[i].first) ||
		    !receipt_covers(&r, r.stream, r.ranges[i].first) ||
		    !receipt_covers(&r, r.stream, r.ranges[i].last) ||
		    receipt_covers(&r, r.stream, r.ranges[i].first - 1) !=
			(i > 0 && r.ranges[i - 1].last + 1 == r.ranges[i].first))
			abort();
		/* Short ranges only (at most 5 seqs and a repeat each, what seqs holds). */
		if (r.ranges[i].last - r.ranges[i].first < 5) {
			for (uint64_t s = r.ranges[i].first; s <= r.ranges[i].last; s++)
				seqs[n++] = s;
			seqs[n++] = r.ranges[i].last; /* a repeat */
		} else {
			n = SIZE_MAX;
			break;
		}
	}
	if (receipt_build(&r, &again) < 0 || receipt_parse(again, &r2) < 0 ||
	    memcmp(r.stream, r2.stream, sizeof(r.stream)) != 0 || r.n != r2.n ||
	    memcmp(r.ranges, r2.ranges, r.n * sizeof(r.ranges[0])) != 0)
		abort();
	/* Adjacent ranges fold into one, so the count may only shrink. */
	if (n != SIZE_MAX && (receipt_from_seqs(&r3, seqs, n, &used) < 0 || used != n ||
			      r3.n > r.n || r3.ranges[0].first != r.ranges[0].first ||
			      r3.ranges[r3.n - 1].last != r.ranges[r.n - 1].last))
		abort();
	json_decref(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *body = fuzz_json(data, size, 'W', wrapped, SUBST_MAX);

	if (body == NULL)
		return 0;
	nonce_only(body, resync_rqa_parse, resync_rqa_build);
	nonce_only(body, resync_ack_parse, resync_ack_build);
	rpa(body);
	state(body);
	grant(body);
	ack(body);
	receipt(body);
	json_decref(body);
	return 0;
}
