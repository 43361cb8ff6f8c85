/* Which refusals have been logged: a daemon logs the first refusal of each (peer address,
 * reason) and only counts the rest, so a rogue repeating itself cannot flood the journal
 * (SPEC 4: "logged once with its reason and counted against the sender"). Bounded: past
 * REFUSALS_MAX distinct pairs the oldest is forgotten, so a burst of junk from many addresses
 * cannot silence the refusals that come after it (it may get a pair logged again). */
#ifndef IOTSEC_REFUSALS_H
#define IOTSEC_REFUSALS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REFUSALS_MAX 64

struct refusals {
	struct {
		uint32_t addr; /* IPv4, network order */
		int code;
	} seen[REFUSALS_MAX];
	size_t n, next;	     /* remembered pairs; the slot to reuse once full */
	unsigned long total; /* every refusal, logged or not */
};

/* Count a refusal; true when this (addr, code) is new and should be logged. */
bool refusals_note(struct refusals *r, uint32_t addr, int code);

#endif
