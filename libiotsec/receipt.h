/* What the relay tells kits and what a doctor tells the relay (SPEC 9), in envelopes
 * (envelope.h):
 *
 *   RELAY_RECEIPT  {"stream":"<hex id>","ranges":[[first,last],...]}  signed by a relay-role
 *                  certificate, unicast to the kit (delivery id random), published with QoS 1 on
 *                  iotsec/<home>/<relay>/receipt/<kit> once the readings of those seqs of that
 *                  stream are committed. The ranges are sorted, disjoint, first <= last, at most
 *                  RECEIPT_RANGES_MAX of them. A receipt stays true forever (a seq is never
 *                  reused), so it is an any_time type: a replayed one tells the kit nothing new.
 *   RELAY_LOGIN    {}  signed by a doctor-role certificate, unicast to the relay, its delivery id
 *                  the nonce of GET /api/challenge (one use, a minute): fresh by ts as usual.
 *
 * The kit takes a reading off its spool only when a receipt of a relay it trusts
 * (sensord.relay) covers the reading's stream and seq. */
#ifndef IOTSEC_RECEIPT_H
#define IOTSEC_RECEIPT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "stream.h"

#define RECEIPT_MSG	   "RELAY_RECEIPT"
#define RELAY_MSG_LOGIN	   "RELAY_LOGIN"
#define RECEIPT_RANGES_MAX 64

struct receipt_range {
	uint64_t first, last;
};

struct receipt {
	uint8_t stream[STREAM_ID_LEN];
	struct receipt_range ranges[RECEIPT_RANGES_MAX];
	size_t n;
};

/* Fold seqs (any order, repeats allowed) into r's ranges. -E2BIG when they need more than
 * RECEIPT_RANGES_MAX ranges: the caller sends what fits and the rest in another receipt
 * (*ret_used says how many of the sorted seqs went in). seqs is sorted in place. */
int receipt_from_seqs(struct receipt *r, uint64_t *seqs, size_t n, size_t *ret_used);
int receipt_build(const struct receipt *r, json_t **ret);
/* Strict: exactly these fields, 1..RECEIPT_RANGES_MAX ranges, sorted, disjoint, seqs >= 1;
 * -EBADMSG otherwise. */
int receipt_parse(json_t *body, struct receipt *ret);
/* Does r cover seq of stream? */
bool receipt_covers(const struct receipt *r, const uint8_t stream[STREAM_ID_LEN], uint64_t seq);

#endif
