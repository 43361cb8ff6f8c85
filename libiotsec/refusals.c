#include "refusals.h"

#include <string.h>

static void count_device(struct refusals *r, const char *sender)
{
	size_t i, least = 0;

	if (sender == NULL || sender[0] == '\0' || strlen(sender) >= CERT_NAME_MAX)
		return;
	for (i = 0; i < r->n_devices; i++) {
		if (strcmp(r->device[i].name, sender) == 0) {
			r->device[i].count++;
			return;
		}
		if (r->device[i].count < r->device[least].count)
			least = i;
	}
	i = r->n_devices < REFUSALS_DEVICES_MAX ? r->n_devices++ : least;
	memcpy(r->device[i].name, sender, strlen(sender) + 1);
	r->device[i].count = 1;
}

/* Whether a new pair may be logged now: one token per line. */
static bool budget_allows(struct refusals *r, uint64_t now_ms)
{
	uint64_t earned;

	if (!r->started) {
		r->started = true;
		r->tokens = REFUSALS_BURST;
		r->refilled_ms = now_ms;
	}
	earned = now_ms > r->refilled_ms ? (now_ms - r->refilled_ms) / REFUSALS_REFILL_MS : 0;
	if (earned > 0) {
		r->tokens = earned >= REFUSALS_BURST - r->tokens ? REFUSALS_BURST
								 : r->tokens + (unsigned)earned;
		r->refilled_ms += earned * REFUSALS_REFILL_MS;
	}
	if (r->tokens == 0)
		return false;
	r->tokens--;
	return true;
}

bool refusals_note(struct refusals *r, uint32_t addr, const char *sender, int code, uint64_t now_ms)
{
	size_t i;

	r->total++;
	count_device(r, sender);
	for (i = 0; i < r->n; i++)
		if (r->seen[i].addr == addr && r->seen[i].code == code)
			break;
	if (i < r->n) {
		r->seen[i].count++;
		if (r->seen[i].logged || !budget_allows(r, now_ms))
			return false;
		/* Kept out of the log by a flood once: its line comes now. */
		if (r->unlogged > 0)
			r->unlogged--;
		r->seen[i].logged = true;
		return true;
	}
	/* Remembered whether or not it is logged: its count starts here either way. */
	i = r->next;
	r->seen[i].addr = addr;
	r->seen[i].code = code;
	r->seen[i].count = 1;
	r->seen[i].logged = budget_allows(r, now_ms);
	r->next = (r->next + 1) % REFUSALS_MAX;
	if (r->n < REFUSALS_MAX)
		r->n++;
	if (!r->seen[i].logged)
		r->unlogged++;
	return r->seen[i].logged;
}

unsigned long refusals_take_unlogged(struct refusals *r)
{
	unsigned long n = r->unlogged;

	r->unlogged = 0;
	return n;
}

unsigned long refusals_of(const struct refusals *r, const char *sender)
{
	if (sender == NULL)
		return 0;
	for (size_t i = 0; i < r->n_devices; i++)
		if (strcmp(r->device[i].name, sender) == 0)
			return r->device[i].count;
	return 0;
}
