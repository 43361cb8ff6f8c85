/* refusals: every refusal is counted (in total, per (peer, reason), per verified device), each
 * new pair is worth one log line while a token bucket allows it, and memory is bounded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "refusals.h"

#define T0 5000000 /* ms; any monotonic time, away from 0 */

/* Lines a fresh (new pair) refusal gets at each of n new addresses from base, all at now. */
static unsigned burst(struct refusals *r, uint32_t base, unsigned n, uint64_t now)
{
	unsigned logged = 0;

	for (unsigned i = 0; i < n; i++)
		logged += refusals_note(r, base + i, NULL, -1, now);
	return logged;
}

static void test_first_of_each_pair_is_logged(void **state)
{
	struct refusals r = {0};

	(void)state;
	assert_true(refusals_note(&r, 1, "", -5, T0));
	assert_false(refusals_note(&r, 1, "", -5, T0));
	assert_true(refusals_note(&r, 1, "", -6, T0)); /* same peer, new reason */
	assert_true(refusals_note(&r, 2, "", -5, T0)); /* new peer, same reason */
	assert_false(refusals_note(&r, 2, "", -5, T0));
	assert_int_equal(r.total, 5);
	assert_int_equal(refusals_take_unlogged(&r), 0);
}

/* Each new pair comes a refill apart, so the budget never decides: only the pair memory does. */
static void test_bounded(void **state)
{
	struct refusals r = {0};
	uint64_t now = T0;

	(void)state;
	for (uint32_t a = 0; a < REFUSALS_MAX; a++, now += REFUSALS_REFILL_MS)
		assert_true(refusals_note(&r, a, NULL, -1, now));
	/* Full: a new pair is logged and takes the oldest one's place. */
	assert_true(refusals_note(&r, 9999, NULL, -1, now += REFUSALS_REFILL_MS));
	assert_false(refusals_note(&r, 9999, NULL, -1, now += REFUSALS_REFILL_MS));
	assert_int_equal(r.n, REFUSALS_MAX);
	assert_int_equal(r.total, REFUSALS_MAX + 2);
	assert_false(refusals_note(&r, 1, NULL, -1, now += REFUSALS_REFILL_MS)); /* still known */
	assert_true(refusals_note(&r, 0, NULL, -1, now += REFUSALS_REFILL_MS));	 /* forgotten */
	/* Junk from many addresses, slow enough to be logged, cannot hide what comes after it. */
	for (uint32_t a = 100000; a < 100000 + 3 * REFUSALS_MAX; a++)
		assert_true(refusals_note(&r, a, NULL, -2, now += REFUSALS_REFILL_MS));
	assert_true(refusals_note(&r, 7, NULL, -3, now += REFUSALS_REFILL_MS));
	assert_false(refusals_note(&r, 7, NULL, -3, now += REFUSALS_REFILL_MS));
	assert_int_equal(r.n, REFUSALS_MAX);
	assert_int_equal(refusals_take_unlogged(&r), 0);
}

/* Junk from thousands of (spoofed) addresses in one instant writes a burst of lines, not
 * thousands; the next line learns how many new pairs were kept out. */
static void test_flood_of_addresses_logs_a_burst(void **state)
{
	struct refusals r = {0};

	(void)state;
	assert_int_equal(burst(&r, 1, 4000, T0), REFUSALS_BURST);
	assert_int_equal(r.total, 4000);
	assert_int_equal(r.n, REFUSALS_MAX);
	assert_int_equal(refusals_take_unlogged(&r), 4000 - REFUSALS_BURST);
	assert_int_equal(refusals_take_unlogged(&r), 0); /* taking resets it */
	/* Still the same instant: the budget is spent, a new pair is only counted. */
	assert_false(refusals_note(&r, 99999, NULL, -7, T0));
	assert_int_equal(refusals_take_unlogged(&r), 1);
}

/* Repeats of a known pair are counted but neither logged nor charged to the budget. */
static void test_repeats_cost_no_budget(void **state)
{
	struct refusals r = {0};

	(void)state;
	assert_true(refusals_note(&r, 42, NULL, -1, T0));
	for (int i = 0; i < 1000; i++)
		assert_false(refusals_note(&r, 42, NULL, -1, T0));
	assert_int_equal(refusals_take_unlogged(&r), 0);
	assert_int_equal(burst(&r, 1000, REFUSALS_BURST - 1, T0), REFUSALS_BURST - 1);
	assert_int_equal(r.total, 1001 + REFUSALS_BURST - 1);
}

/* One line per REFUSALS_REFILL_MS, never more than REFUSALS_BURST saved up. */
static void test_budget_refills(void **state)
{
	struct refusals r = {0};
	uint64_t t = T0;

	(void)state;
	assert_int_equal(burst(&r, 0, 100, t), REFUSALS_BURST);
	assert_int_equal(burst(&r, 1000, 5, t + REFUSALS_REFILL_MS - 1), 0);
	assert_int_equal(burst(&r, 2000, 5, t + REFUSALS_REFILL_MS), 1);
	/* One and a half refills later: one line, and the half left over is not lost. */
	assert_int_equal(burst(&r, 3000, 5, t + REFUSALS_REFILL_MS * 5 / 2), 1);
	assert_int_equal(burst(&r, 4000, 5, t + 3 * REFUSALS_REFILL_MS), 1);
	assert_int_equal(burst(&r, 5000, 5, t + 6 * REFUSALS_REFILL_MS), 3);
	/* A long quiet spell saves up one burst, no more. */
	t += 1000 * REFUSALS_REFILL_MS;
	assert_int_equal(burst(&r, 6000, 100, t), REFUSALS_BURST);
	/* A clock that seems to go back earns nothing (and breaks nothing). */
	assert_int_equal(burst(&r, 7000, 5, t - 10 * REFUSALS_REFILL_MS), 0);
	assert_int_equal(burst(&r, 8000, 5, t + REFUSALS_REFILL_MS), 1);
}

/* A real refusal that arrives with a flood of junk is logged once the budget is back: the flood
 * may delay its line, not cancel it (SPEC 4: "logged once with its reason"). */
static void test_pair_after_flood_logged_when_budget_returns(void **state)
{
	struct refusals r = {0};
	const uint32_t rogue = 0x0a000063;
	bool logged = false;

	(void)state;
	burst(&r, 1, 500, T0);
	assert_false(refusals_note(&r, rogue, "revoked", -129, T0)); /* no budget left */
	/* The rogue keeps trying, one refusal a second, while the budget refills. */
	for (uint64_t t = T0 + REFUSALS_REFILL_MS; t <= T0 + 20 * REFUSALS_REFILL_MS;
	     t += REFUSALS_REFILL_MS)
		logged |= refusals_note(&r, rogue, "revoked", -129, t);
	assert_true(logged);
}

/* Per device: every refusal that came with a verified sender, whatever its address, reason or
 * log fate; nothing for refusals before a certificate verified. */
static void test_counts_per_device(void **state)
{
	struct refusals r = {0};
	char too_long[CERT_NAME_MAX + 1];

	(void)state;
	memset(too_long, 'x', CERT_NAME_MAX);
	too_long[CERT_NAME_MAX] = '\0';
	burst(&r, 1, 50, T0); /* the budget is spent: what follows is not logged */
	refusals_note(&r, 7, "pi1", -1, T0);
	refusals_note(&r, 7, "pi1", -1, T0); /* same pair */
	refusals_note(&r, 8, "pi1", -1, T0); /* another address */
	refusals_note(&r, 7, "pi1", -2, T0); /* another reason */
	refusals_note(&r, 7, "pi2", -1, T0);
	refusals_note(&r, 7, "", -1, T0);
	refusals_note(&r, 7, NULL, -1, T0);
	refusals_note(&r, 7, too_long, -1, T0);
	assert_int_equal(refusals_of(&r, "pi1"), 4);
	assert_int_equal(refusals_of(&r, "pi2"), 1);
	assert_int_equal(refusals_of(&r, ""), 0);
	assert_int_equal(refusals_of(&r, "pi3"), 0);
	assert_int_equal(refusals_of(&r, "pi"), 0); /* a prefix is another name */
	assert_int_equal(r.n_devices, 2);
	assert_int_equal(r.total, 50 + 8);
}

/* Past REFUSALS_DEVICES_MAX devices a new one replaces the least refused, so a device that
 * keeps failing is not pushed out by a crowd that failed once. */
static void test_device_table_bounded(void **state)
{
	struct refusals r = {0};
	char name[32];

	(void)state;
	for (int d = 0; d < REFUSALS_DEVICES_MAX; d++) {
		snprintf(name, sizeof(name), "dev%03d", d);
		/* dev100 is refused once, every other device at least twice */
		for (int k = 0; k < (d == 100 ? 1 : 2 + d % 5); k++)
			refusals_note(&r, (uint32_t)d, name, -1, T0);
	}
	assert_int_equal(r.n_devices, REFUSALS_DEVICES_MAX);
	refusals_note(&r, 9999, "newcomer", -1, T0);
	assert_int_equal(r.n_devices, REFUSALS_DEVICES_MAX);
	assert_int_equal(refusals_of(&r, "newcomer"), 1);
	assert_int_equal(refusals_of(&r, "dev100"), 0);
	for (int d = 0; d < REFUSALS_DEVICES_MAX; d++) {
		snprintf(name, sizeof(name), "dev%03d", d);
		if (d != 100)
			assert_int_equal(refusals_of(&r, name), 2 + d % 5);
	}
	/* The newcomer, refused once, is now the least refused: the next one replaces it. */
	refusals_note(&r, 9998, "second", -1, T0);
	assert_int_equal(refusals_of(&r, "newcomer"), 0);
	assert_int_equal(refusals_of(&r, "second"), 1);
	assert_int_equal(refusals_of(&r, "dev004"), 2 + 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_first_of_each_pair_is_logged),
	    cmocka_unit_test(test_bounded),
	    cmocka_unit_test(test_flood_of_addresses_logs_a_burst),
	    cmocka_unit_test(test_repeats_cost_no_budget),
	    cmocka_unit_test(test_budget_refills),
	    cmocka_unit_test(test_pair_after_flood_logged_when_budget_returns),
	    cmocka_unit_test(test_counts_per_device),
	    cmocka_unit_test(test_device_table_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
