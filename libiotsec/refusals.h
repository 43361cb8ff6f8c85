/* Refused input: counted, and logged with care (SPEC 4: "logged once with its reason and counted
 * against the sender").
 *
 * Every refusal is counted in total, against its (peer address, reason) pair and, once the
 * sender's certificate verified, against that device (SPEC 7 weighs peers by these counts). A
 * refusal is worth a log line when its pair is new and the log budget allows: the budget is a
 * token bucket of REFUSALS_BURST lines refilled at one line per REFUSALS_REFILL_MS, so junk
 * from thousands of addresses writes a handful of lines, not thousands, and the next line says
 * how many new pairs the budget kept out of the log. Memory is bounded: past REFUSALS_MAX pairs the
 * oldest is forgotten (so a burst cannot silence what comes after it), past REFUSALS_DEVICES_MAX
 * devices the least refused one. A pair the budget kept out of the log asks again at its next
 * refusal, so a flood cannot hide a rogue that started during it. */
#ifndef IOTSEC_REFUSALS_H
#define IOTSEC_REFUSALS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cert.h"

#define REFUSALS_MAX	     64
#define REFUSALS_DEVICES_MAX 256
#define REFUSALS_BURST	     10
#define REFUSALS_REFILL_MS   1000

struct refusals {
	struct {
		uint32_t addr; /* IPv4, network order */
		int code;
		bool logged; /* once the budget allowed it a line */
		unsigned long count;
	} seen[REFUSALS_MAX];
	size_t n, next; /* remembered pairs; the slot to reuse once full */
	struct {
		char name[CERT_NAME_MAX];
		unsigned long count;
	} device[REFUSALS_DEVICES_MAX];
	size_t n_devices;
	unsigned long total;	/* every refusal, logged or not */
	unsigned long unlogged; /* pairs the budget kept out of the log, not logged since */
	unsigned tokens;	/* lines the budget allows now */
	uint64_t refilled_ms;	/* when tokens were last topped up */
	bool started;		/* the bucket starts full */
};

/* Count a refusal at monotonic time now_ms; sender is the device the refused message came from
 * (envelope_open()'s ret_sender), or "" (or NULL) when unknown. True when it should be logged;
 * then refusals_take_unlogged() says how many pairs the budget has kept out of the log since the
 * last line. */
bool refusals_note(struct refusals *r, uint32_t addr, const char *sender, int code,
		   uint64_t now_ms);
/* New pairs the budget kept out of the log since the last line; resets the count. */
unsigned long refusals_take_unlogged(struct refusals *r);
/* Refusals counted against a device (0 for NULL or ""). */
unsigned long refusals_of(const struct refusals *r, const char *sender);

#endif
