/* trust: h, R and T; the strikes and flags a round raises (bad-mouthing after repeated strikes,
 * good-mouthing at once), strikes forgiven with time, ballot stuffing, bans and their end, the
 * malicious label; verdicts that no single liar can turn; and every input the table refuses. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "trust.h"

static const struct trust_params P = {
    .weight = 0.5, .auth_failures = 5, .window_ms = 1000, .ban_ms = 5000};

/* A table with pi1..pi<n> known, each with `probes` answered probes. */
static struct trust *table(size_t n, unsigned probes)
{
	struct trust *t = malloc(sizeof(*t));
	char name[32];

	assert_non_null(t);
	trust_init(t, &P);
	for (size_t i = 1; i <= n; i++) {
		snprintf(name, sizeof(name), "pi%zu", i);
		assert_non_null(trust_peer(t, name));
		for (unsigned k = 0; k < probes; k++)
			trust_probe(t, name, true);
	}
	return t;
}

static const struct trust_peer *peer(const struct trust *t, const char *name)
{
	const struct trust_peer *p = trust_find(t, name);

	assert_non_null(p);
	return p;
}

#define REPORT(who, up)                                                                            \
	{                                                                                          \
		.reporter = (who), .alive = (up), .solicited = true                                \
	}
#define UNSOLICITED(who, up)                                                                       \
	{                                                                                          \
		.reporter = (who), .alive = (up), .solicited = false                               \
	}
#define N(a) (sizeof(a) / sizeof((a)[0]))

/* A round at now where who says, unasked, that pi5 is unreachable, while pi5 answered and the
 * controller, pi2 and pi3 found it alive (a table of at least 5). Returns what who got. */
static unsigned lie(struct trust *t, const char *who, uint64_t now)
{
	struct trust_report r[] = {UNSOLICITED(who, false), REPORT(NULL, true), REPORT("pi2", true),
				   REPORT("pi3", true)};

	assert_int_equal(trust_round(t, "pi5", r, N(r), 2, true, now), TRUST_KEEP);
	for (size_t i = 1; i < N(r); i++)
		assert_int_equal(r[i].flagged, 0);
	return r[0].flagged;
}

static void test_new_peer_starts_at_half(void **state)
{
	struct trust *t = table(0, 0);
	struct trust_peer *p = trust_peer(t, "pi1");

	(void)state;
	assert_non_null(p);
	assert_true(trust_direct(p) == 0.5);
	assert_true(p->reputation == 0.5);
	assert_true(trust_value(t, p) == 0.5);
	assert_int_equal(p->flags, 0);
	assert_false(trust_banned(p, 0));
	assert_true(trust_trusted(t, p, 0));
	/* Made once: the same record again. */
	assert_ptr_equal(trust_peer(t, "pi1"), p);
	assert_int_equal(t->n, 1);
	free(t);
}

static void test_h_from_probes(void **state)
{
	struct trust *t = table(0, 0);

	(void)state;
	for (int i = 0; i < 8; i++)
		trust_probe(t, "pi1", true);
	trust_probe(t, "pi1", false);
	/* (8 + 1) / (8 + 1 + 2) */
	assert_float_equal(trust_direct(peer(t, "pi1")), 9.0 / 11.0, 1e-12);
	for (int i = 0; i < 4; i++)
		trust_probe(t, "pi2", false);
	assert_float_equal(trust_direct(peer(t, "pi2")), 1.0 / 6.0, 1e-12);
	/* An authentication failure weighs as TRUST_AUTH_WEIGHT failed probes. */
	trust_auth_failure(t, "pi1", 0);
	assert_float_equal(trust_direct(peer(t, "pi1")), 9.0 / (11.0 + TRUST_AUTH_WEIGHT), 1e-12);
	free(t);
}

static void test_h_follows_recent_probes(void **state)
{
	struct trust *t = table(0, 0);
	double before;

	(void)state;
	for (int i = 0; i < 1000; i++)
		trust_probe(t, "pi1", true);
	assert_true(peer(t, "pi1")->ok <= TRUST_HISTORY);
	before = trust_direct(peer(t, "pi1"));
	for (int i = 0; i < 32; i++)
		trust_probe(t, "pi1", false);
	/* A long record of answers does not hide a run of silence. */
	assert_true(trust_direct(peer(t, "pi1")) < before - 0.3);
	free(t);
}

static void test_t_formula_with_weight(void **state)
{
	struct trust_params p = P;
	struct trust t;
	struct trust_peer *x;

	(void)state;
	p.weight = 0.25;
	trust_init(&t, &p);
	x = trust_peer(&t, "pi1");
	for (int i = 0; i < 2; i++)
		trust_probe(&t, "pi1", true);
	x->reputation = 0.2;
	/* h = 3/4: T = 0.75 * 0.75 + 0.25 * 0.2 */
	assert_float_equal(trust_value(&t, x), 0.75 * 0.75 + 0.25 * 0.2, 1e-12);
	p.weight = 0.0;
	trust_init(&t, &p);
	x = trust_peer(&t, "pi1");
	x->reputation = 0.0;
	assert_float_equal(trust_value(&t, x), 0.5, 1e-12);
	p.weight = 1.0;
	trust_init(&t, &p);
	x = trust_peer(&t, "pi1");
	x->reputation = 0.9;
	assert_float_equal(trust_value(&t, x), 0.9, 1e-12);
}

static void test_weight_out_of_range_clamped(void **state)
{
	struct trust_params p = P;
	struct trust t;

	(void)state;
	p.weight = 7.0;
	trust_init(&t, &p);
	assert_true(t.p.weight == 1.0);
	p.weight = -1.0;
	trust_init(&t, &p);
	assert_true(t.p.weight == 0.0);
	p.weight = NAN;
	trust_init(&t, &p);
	assert_true(t.p.weight == 0.0);
	p.weight = 0.5;
	p.auth_failures = 0;
	trust_init(&t, &p);
	assert_int_equal(t.p.auth_failures, 1);
}

static void test_bad_names_refused(void **state)
{
	struct trust *t = table(0, 0);
	char long_name[CERT_NAME_MAX + 8];
	char just_fits[CERT_NAME_MAX];

	(void)state;
	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	memset(just_fits, 'b', sizeof(just_fits) - 1);
	just_fits[sizeof(just_fits) - 1] = '\0';
	assert_null(trust_peer(t, NULL));
	assert_null(trust_peer(t, ""));
	assert_null(trust_peer(t, long_name));
	long_name[CERT_NAME_MAX - 1] = '\0'; /* exactly CERT_NAME_MAX - 1 + NUL: fits */
	assert_non_null(trust_peer(t, long_name));
	assert_non_null(trust_peer(t, just_fits));
	long_name[CERT_NAME_MAX - 1] = 'a';
	assert_null(trust_find(t, long_name));
	assert_null(trust_find(t, NULL));
	trust_probe(t, NULL, true);
	trust_probe(t, "", false);
	assert_false(trust_auth_failure(t, NULL, 0));
	assert_false(trust_auth_failure(t, "", 0));
	assert_false(trust_unsolicited(t, NULL, 10, 0));
	assert_false(trust_unsolicited(t, long_name, 10, 0));
	trust_forget(t, NULL);
	trust_forget(t, "nobody");
	assert_int_equal(t->n, 2);
	free(t);
}

static void test_table_bounded(void **state)
{
	struct trust *t = table(TRUST_PEERS_MAX, 0);

	(void)state;
	assert_int_equal(t->n, TRUST_PEERS_MAX);
	assert_null(trust_peer(t, "one-too-many"));
	trust_probe(t, "one-too-many", true);
	assert_false(trust_auth_failure(t, "one-too-many", 0));
	assert_false(trust_unsolicited(t, "one-too-many", TRUST_PEERS_MAX, 0));
	assert_null(trust_find(t, "one-too-many"));
	/* Known peers still work; forgetting one makes room. */
	assert_non_null(trust_peer(t, "pi1"));
	trust_forget(t, "pi7");
	assert_null(trust_find(t, "pi7"));
	assert_non_null(trust_find(t, "pi8"));
	assert_non_null(trust_peer(t, "one-too-many"));
	assert_int_equal(t->n, TRUST_PEERS_MAX);
	free(t);
}

static void test_forget_starts_afresh(void **state)
{
	struct trust *t = table(3, 4);

	(void)state;
	for (int i = 0; i < 5; i++)
		trust_auth_failure(t, "pi2", 0);
	assert_true(peer(t, "pi2")->flags & TRUST_MALICIOUS);
	trust_forget(t, "pi2");
	assert_int_equal(t->n, 2);
	assert_null(trust_find(t, "pi2"));
	assert_int_equal(peer(t, "pi3")->ok, 4);
	assert_int_equal(trust_peer(t, "pi2")->flags, 0);
	free(t);
}

static void test_malicious_exactly_at_threshold(void **state)
{
	struct trust *t = table(2, 0);

	(void)state;
	for (int i = 1; i < 5; i++) {
		assert_false(trust_auth_failure(t, "pi1", (uint64_t)i));
		assert_false(peer(t, "pi1")->flags & TRUST_MALICIOUS);
	}
	assert_true(trust_auth_failure(t, "pi1", 5));
	assert_true(peer(t, "pi1")->flags & TRUST_MALICIOUS);
	/* Said once; the label stays. */
	assert_false(trust_auth_failure(t, "pi1", 6));
	assert_true(peer(t, "pi1")->flags & TRUST_MALICIOUS);
	assert_int_equal(peer(t, "pi1")->auth_failures, 6);
	assert_false(trust_trusted(t, peer(t, "pi1"), 1000000));
	assert_int_equal(peer(t, "pi2")->flags, 0);
	free(t);
}

static void test_auth_failures_forgiven_one_per_window(void **state)
{
	struct trust *t = table(2, 0);

	(void)state;
	/* One a window, for a long time: never labelled. */
	for (uint64_t w = 0; w < 200; w++)
		assert_false(trust_auth_failure(t, "pi1", w * P.window_ms + 7));
	assert_false(peer(t, "pi1")->flags & TRUST_MALICIOUS);
	assert_int_equal(peer(t, "pi1")->auth_failures, 200);
	/* Four at once, a quiet window forgives one: the fifth is not yet the label, the sixth is.
	 */
	for (uint64_t k = 0; k < 4; k++)
		assert_false(trust_auth_failure(t, "pi2", k));
	assert_false(trust_auth_failure(t, "pi2", P.window_ms + 10));
	assert_int_equal(peer(t, "pi2")->auth_recent, 4);
	assert_true(trust_auth_failure(t, "pi2", P.window_ms + 20));
	free(t);
}

static void test_slow_forger_labelled_in_the_end(void **state)
{
	struct trust *t = table(1, 0);
	uint64_t w = 0;

	(void)state;
	/* Two a window: one more than is forgiven. */
	while (!trust_auth_failure(t, "pi1", w * P.window_ms) &&
	       !trust_auth_failure(t, "pi1", w * P.window_ms + 1))
		w++;
	assert_int_equal(w, 3);
	assert_true(peer(t, "pi1")->flags & TRUST_MALICIOUS);
	/* A clock that goes back forgives nothing and breaks nothing. */
	assert_false(trust_auth_failure(t, "pi1", 0));
	free(t);
}

static void test_malicious_not_heard(void **state)
{
	struct trust *t = table(4, 4);
	struct trust_report r[] = {REPORT(NULL, true), REPORT("pi1", false), REPORT("pi2", true),
				   REPORT("pi3", true)};

	(void)state;
	for (int i = 0; i < 5; i++)
		trust_auth_failure(t, "pi1", 0);
	assert_false(trust_unsolicited(t, "pi1", 5, 10));
	assert_int_equal(peer(t, "pi1")->window_reports, 0);
	/* Its lie is not even judged: it is not heard. */
	assert_int_equal(trust_round(t, "pi4", r, N(r), 2, true, 10), TRUST_KEEP);
	assert_int_equal(r[1].flagged, 0);
	assert_false(peer(t, "pi1")->flags & TRUST_BAD_MOUTHING);
	free(t);
}

static void test_bad_mouthing_struck_then_flagged(void **state)
{
	struct trust *t = table(5, 8);
	struct trust_report r[] = {UNSOLICITED("pi1", false), REPORT(NULL, true),
				   REPORT("pi2", true), REPORT("pi3", true), REPORT("pi4", true)};
	double r0 = peer(t, "pi1")->reputation;

	(void)state;
	/* One "unreachable" against an answer: a lost packet can do that, so a strike only. */
	assert_int_equal(trust_round(t, "pi5", r, N(r), 2, true, 100), TRUST_KEEP);
	assert_int_equal(r[0].flagged, 0);
	assert_int_equal(peer(t, "pi1")->flags, 0);
	assert_int_equal(peer(t, "pi1")->strikes, 1);
	assert_false(trust_banned(peer(t, "pi1"), 100));
	assert_true(trust_trusted(t, peer(t, "pi1"), 100));
	assert_float_equal(peer(t, "pi1")->reputation, r0 * TRUST_STRIKE_DECAY, 1e-12);
	/* The honest ones are not struck, and gain. */
	for (size_t i = 2; i < N(r); i++) {
		assert_int_equal(r[i].flagged, 0);
		assert_int_equal(peer(t, r[i].reporter)->flags, 0);
		assert_int_equal(peer(t, r[i].reporter)->strikes, 0);
		assert_true(peer(t, r[i].reporter)->reputation > 0.5);
	}
	/* Again before the first is forgiven: still a strike, until the TRUST_STRIKES-th. */
	for (unsigned k = 2; k < TRUST_STRIKES; k++) {
		assert_int_equal(trust_round(t, "pi5", r, N(r), 2, true, 100 * k), TRUST_KEEP);
		assert_int_equal(r[0].flagged, 0);
		assert_int_equal(peer(t, "pi1")->strikes, k);
	}
	assert_int_equal(trust_round(t, "pi5", r, N(r), 2, true, 1000), TRUST_KEEP);
	assert_int_equal(r[0].flagged, TRUST_BAD_MOUTHING);
	assert_true(peer(t, "pi1")->flags & TRUST_BAD_MOUTHING);
	assert_true(trust_banned(peer(t, "pi1"), 1000));
	assert_int_equal(peer(t, "pi1")->banned_until, 1000 + P.ban_ms);
	assert_float_equal(peer(t, "pi1")->reputation,
			   r0 * pow(TRUST_STRIKE_DECAY, TRUST_STRIKES - 1) * TRUST_DECAY, 1e-12);
	/* The ban spent the strikes. */
	assert_int_equal(peer(t, "pi1")->strikes, 0);
	free(t);
}

static void test_strikes_forgiven_one_per_ban(void **state)
{
	struct trust *t = table(5, 8);
	uint64_t b = P.ban_ms;

	(void)state;
	/* One strike every ban_ms, for a long time: each forgiven before the next, never flagged;
	 * only R pays. */
	for (uint64_t k = 0; k < 100; k++)
		assert_int_equal(lie(t, "pi1", k * b + 3), 0);
	assert_int_equal(peer(t, "pi1")->flags, 0);
	assert_int_equal(peer(t, "pi1")->strikes, 1);
	assert_true(peer(t, "pi1")->reputation < 0.01);
	/* TRUST_STRIKES - 1 at once; one ban_ms later one of them is forgiven, exactly. */
	for (unsigned k = 1; k < TRUST_STRIKES; k++)
		assert_int_equal(lie(t, "pi4", k), 0);
	assert_int_equal(peer(t, "pi4")->strikes, TRUST_STRIKES - 1);
	assert_int_equal(lie(t, "pi4", 1 + b), 0);
	assert_int_equal(peer(t, "pi4")->strikes, TRUST_STRIKES - 1);
	assert_int_equal(lie(t, "pi4", 1 + b + 1), TRUST_BAD_MOUTHING);
	/* After the ban, a fresh start: one strike is a strike again, not a flag. */
	assert_int_equal(lie(t, "pi4", 2 + 2 * b), 0);
	assert_int_equal(peer(t, "pi4")->strikes, 1);
	/* A clock that goes back forgives nothing and breaks nothing. */
	assert_int_equal(lie(t, "pi1", 5), 0);
	assert_int_equal(peer(t, "pi1")->strikes, 2);
	free(t);
}

static void test_liar_flagged_within_bounded_rounds(void **state)
{
	struct trust *t = table(5, 8);
	uint64_t now = 0;
	unsigned rounds = 0;

	(void)state;
	/* A lie every round, rounds a report window apart: banned at the TRUST_STRIKES-th. */
	do {
		now += P.window_ms;
		rounds++;
	} while (lie(t, "pi1", now) == 0 && rounds < 100);
	assert_int_equal(rounds, TRUST_STRIKES);
	/* Banned, it is not heard, and so not struck further. */
	assert_int_equal(lie(t, "pi1", now + 1), 0);
	assert_int_equal(peer(t, "pi1")->strikes, 0);
	/* Two lies a ban_ms, one more than is forgiven: flagged in the end too. */
	rounds = 0;
	now = 0;
	while (lie(t, "pi4", now) == 0 && lie(t, "pi4", now + 1) == 0 && rounds < 100) {
		now += P.ban_ms;
		rounds++;
	}
	assert_int_equal(rounds, TRUST_STRIKES - 2);
	assert_true(peer(t, "pi4")->flags & TRUST_BAD_MOUTHING);
	free(t);
}

static void test_unreachable_of_a_missing_device_never_struck(void **state)
{
	struct trust *t = table(5, 8);
	/* pi5 is really gone: honest helpers say so. */
	struct trust_report evicted[] = {REPORT(NULL, false), REPORT("pi1", false),
					 REPORT("pi2", false), UNSOLICITED("pi3", false)};
	/* Two liars, trusted more than the honest one, keep it in: an undecided round. */
	struct trust_report undecided[] = {REPORT(NULL, false), REPORT("pi1", false),
					   REPORT("pi2", true), REPORT("pi4", true)};

	(void)state;
	for (uint64_t k = 0; k < 10 * TRUST_STRIKES; k++) {
		assert_int_equal(trust_round(t, "pi5", evicted, N(evicted), 2, false, k),
				 TRUST_EVICT);
		for (size_t i = 0; i < N(evicted); i++)
			assert_int_equal(evicted[i].flagged, 0);
	}
	trust_peer(t, "pi2")->reputation = 1.0;
	trust_peer(t, "pi4")->reputation = 1.0;
	trust_peer(t, "pi1")->reputation = 0.6;
	for (uint64_t k = 0; k < 10 * TRUST_STRIKES; k++) {
		assert_int_equal(trust_round(t, "pi5", undecided, N(undecided), 2, false, 100 + k),
				 TRUST_KEEP);
		for (size_t i = 0; i < N(undecided); i++)
			assert_int_equal(undecided[i].flagged, 0);
	}
	for (int i = 1; i <= 4; i++) {
		char name[8];

		snprintf(name, sizeof(name), "pi%d", i);
		assert_int_equal(peer(t, name)->strikes, 0);
		assert_int_equal(peer(t, name)->flags, 0);
	}
	/* Nor is its R lowered for it: an undecided round proves nobody wrong. */
	assert_float_equal(peer(t, "pi1")->reputation, 0.6, 1e-12);
	free(t);
}

static void test_good_mouthing_flagged_at_once(void **state)
{
	struct trust *t = table(5, 8);
	struct trust_report r[] = {REPORT(NULL, false), REPORT("pi1", false), REPORT("pi2", false),
				   REPORT("pi3", true), REPORT("pi4", false)};

	(void)state;
	/* No lost packet makes a missing device answer: the first "alive" against an eviction is
	 * a lie, no strikes needed. */
	assert_int_equal(trust_round(t, "pi5", r, N(r), 2, false, 100), TRUST_EVICT);
	assert_int_equal(r[3].flagged, TRUST_GOOD_MOUTHING);
	assert_int_equal(peer(t, "pi3")->strikes, 0);
	assert_float_equal(peer(t, "pi3")->reputation, 0.5 * TRUST_DECAY, 1e-12);
	assert_true(peer(t, "pi3")->flags & TRUST_GOOD_MOUTHING);
	assert_true(trust_banned(peer(t, "pi3"), 100));
	assert_int_equal(r[1].flagged | r[2].flagged | r[4].flagged, 0);
	assert_int_equal(peer(t, "pi1")->flags | peer(t, "pi2")->flags | peer(t, "pi4")->flags, 0);
	free(t);
}

static void test_unsolicited_good_mouthing_judged_but_never_decides(void **state)
{
	struct trust *t = table(8, 8);
	/* Four colluders vouch, unasked, for a missing device: it is still evicted. */
	struct trust_report r[] = {REPORT(NULL, false),	     REPORT("pi1", false),
				   REPORT("pi2", false),     UNSOLICITED("pi5", true),
				   UNSOLICITED("pi6", true), UNSOLICITED("pi7", true),
				   UNSOLICITED("pi8", true)};

	(void)state;
	assert_int_equal(trust_round(t, "pi3", r, N(r), 2, false, 100), TRUST_EVICT);
	/* Unasked, they weigh nothing in one another's "others" either: each is flagged. */
	for (size_t i = 3; i < N(r); i++)
		assert_int_equal(r[i].flagged, TRUST_GOOD_MOUTHING);
	assert_int_equal(r[1].flagged | r[2].flagged, 0);
	free(t);
}

static void test_vouching_unasked_earns_nothing(void **state)
{
	struct trust *t = table(5, 8);
	struct trust_report r[] = {UNSOLICITED("pi1", true), REPORT(NULL, true),
				   REPORT("pi2", true), REPORT("pi3", true)};

	(void)state;
	for (uint64_t i = 0; i < 20; i++)
		assert_int_equal(trust_round(t, "pi5", r, N(r), 2, true, i), TRUST_KEEP);
	/* Right every time, unasked: no reputation; the asked ones gained. */
	assert_true(peer(t, "pi1")->reputation == 0.5);
	assert_int_equal(peer(t, "pi1")->flags, 0);
	assert_true(peer(t, "pi2")->reputation > 0.8);
	free(t);
}

static void test_honest_split_not_flagged(void **state)
{
	struct trust *t = table(5, 8);
	/* Each of the two who said unreachable has the others evenly split: inside mean +- sd
	 * (a minority, not an outlier), so not flagged although the suspect answered. */
	struct trust_report r[] = {REPORT("pi1", false), REPORT("pi2", false), REPORT("pi3", true)};

	(void)state;
	assert_int_equal(trust_round(t, "pi5", r, N(r), 2, true, 100), TRUST_KEEP);
	for (size_t i = 0; i < N(r); i++)
		assert_int_equal(r[i].flagged, 0);
	assert_false(trust_banned(peer(t, "pi1"), 100));
	free(t);
}

static void test_too_few_others_to_judge(void **state)
{
	struct trust *t = table(3, 8);
	struct trust_report r[] = {REPORT(NULL, true), REPORT("pi1", false)};

	(void)state;
	assert_int_equal(trust_round(t, "pi3", r, N(r), 1, true, 100), TRUST_KEEP);
	assert_int_equal(r[1].flagged, 0);
	assert_int_equal(peer(t, "pi1")->flags, 0);
	free(t);
}

static void test_undecided_round_flags_nobody(void **state)
{
	struct trust *t = table(5, 8);
	/* Our probes failed, one says unreachable, two say alive, no answer from the suspect. */
	struct trust_report r[] = {REPORT(NULL, false), REPORT("pi1", false), REPORT("pi2", true),
				   REPORT("pi3", true)};

	(void)state;
	assert_int_equal(trust_round(t, "pi5", r, N(r), 2, false, 100), TRUST_KEEP);
	for (size_t i = 0; i < N(r); i++)
		assert_int_equal(r[i].flagged, 0);
	assert_true(peer(t, "pi2")->reputation == 0.5);
	free(t);
}

static void test_one_liar_cannot_evict_healthy(void **state)
{
	struct trust *t = table(5, 8);
	struct trust_report r[] = {REPORT(NULL, false), REPORT("pi1", false), REPORT("pi2", true),
				   REPORT("pi3", true)};

	(void)state;
	/* Even without the suspect's answer, one confirmation is not the two needed. */
	assert_int_equal(trust_round(t, "pi5", r, N(r), 2, false, 100), TRUST_KEEP);
	/* And once it answers, the liar is struck, and flagged when it keeps at it. */
	for (uint64_t k = 1; k < TRUST_STRIKES; k++) {
		assert_int_equal(trust_round(t, "pi5", r, N(r), 2, true, 200 + k), TRUST_KEEP);
		assert_int_equal(r[1].flagged, 0);
		assert_int_equal(peer(t, "pi1")->strikes, k);
	}
	assert_int_equal(trust_round(t, "pi5", r, N(r), 2, true, 300), TRUST_KEEP);
	assert_int_equal(r[1].flagged, TRUST_BAD_MOUTHING);
	assert_int_equal(r[2].flagged | r[3].flagged, 0);
	free(t);
}

static void test_one_liar_cannot_keep_missing(void **state)
{
	struct trust *t = table(5, 64);
	struct trust_report r[] = {REPORT(NULL, false), REPORT("pi1", true), REPORT("pi2", false),
				   REPORT("pi3", false)};

	(void)state;
	/* The liar at the highest reputation there is. */
	trust_peer(t, "pi1")->reputation = 1.0;
	assert_int_equal(trust_round(t, "pi5", r, N(r), 2, false, 100), TRUST_EVICT);
	assert_int_equal(r[1].flagged, TRUST_GOOD_MOUTHING);
	free(t);
}

static void test_refuted_keeps(void **state)
{
	struct trust *t = table(5, 8);
	struct trust_report r[] = {REPORT(NULL, false), REPORT("pi1", false), REPORT("pi2", false),
				   REPORT("pi3", false)};

	(void)state;
	/* Everyone says unreachable, but the suspect answered: it stays. */
	assert_int_equal(trust_round(t, "pi5", r, N(r), 2, true, 100), TRUST_KEEP);
	/* Our own opinion became "alive", alone against three: no one of them is outside the
	 * others' mean +- sd, so none is flagged. */
	for (size_t i = 0; i < N(r); i++)
		assert_int_equal(r[i].flagged, 0);
	free(t);
}

static void test_refutation_turns_our_own_opinion(void **state)
{
	struct trust *t = table(5, 8);
	/* Our probes failed, then the suspect answered: our opinion is "alive", so with pi2 the
	 * others agree and pi1 is outside. */
	struct trust_report r[] = {REPORT(NULL, false), REPORT("pi1", false), REPORT("pi2", true)};

	(void)state;
	assert_int_equal(trust_round(t, "pi5", r, N(r), 2, true, 100), TRUST_KEEP);
	assert_int_equal(r[1].flagged | r[2].flagged, 0);
	assert_int_equal(peer(t, "pi1")->strikes, 1);
	assert_int_equal(peer(t, "pi2")->strikes, 0);
	free(t);
}

static void test_eviction_needs_trusted_confirmations(void **state)
{
	struct trust *t = table(6, 8);
	struct trust_report r[] = {REPORT(NULL, false), REPORT("pi1", false), REPORT("pi2", false)};
	struct trust_report one[] = {REPORT(NULL, false), REPORT("pi1", false)};
	struct trust_report dup[] = {REPORT(NULL, false), REPORT("pi1", false),
				     REPORT("pi1", false), REPORT(NULL, false)};
	struct trust_report unasked[] = {REPORT(NULL, false), UNSOLICITED("pi1", false),
					 UNSOLICITED("pi2", false)};

	(void)state;
	assert_int_equal(trust_round(t, "pi6", r, N(r), 2, false, 100), TRUST_EVICT);
	assert_int_equal(trust_round(t, "pi6", one, N(one), 2, false, 100), TRUST_KEEP);
	/* One reporter twice is one confirmation. */
	assert_int_equal(trust_round(t, "pi6", dup, N(dup), 2, false, 100), TRUST_KEEP);
	/* Unasked confirmations do not count. */
	assert_int_equal(trust_round(t, "pi6", unasked, N(unasked), 2, false, 100), TRUST_KEEP);
	/* A reporter trusted below TRUST_MIN_REPORTER does not count. */
	for (int i = 0; i < 60; i++)
		trust_probe(t, "pi2", false);
	trust_peer(t, "pi2")->reputation = 0.0;
	assert_true(trust_value(t, peer(t, "pi2")) < TRUST_MIN_REPORTER);
	assert_int_equal(trust_round(t, "pi6", r, N(r), 2, false, 200), TRUST_KEEP);
	/* Nor a banned one. */
	trust_peer(t, "pi2")->reputation = 1.0;
	for (int i = 0; i < 60; i++)
		trust_probe(t, "pi2", true);
	assert_int_equal(trust_round(t, "pi6", r, N(r), 2, false, 300), TRUST_EVICT);
	trust_peer(t, "pi2")->banned_until = 10000;
	assert_int_equal(trust_round(t, "pi6", r, N(r), 2, false, 400), TRUST_KEEP);
	free(t);
}

static void test_target_cannot_report_on_itself(void **state)
{
	struct trust *t = table(5, 8);
	struct trust_report r[] = {REPORT(NULL, false), REPORT("pi1", false), REPORT("pi5", true),
				   REPORT("pi2", false)};

	(void)state;
	assert_int_equal(trust_round(t, "pi5", r, N(r), 2, false, 100), TRUST_EVICT);
	assert_int_equal(r[2].flagged, 0);
	assert_int_equal(peer(t, "pi5")->flags, 0);
	free(t);
}

static void test_two_device_home_evicts_on_own_probes(void **state)
{
	struct trust *t = table(1, 8);
	struct trust_report r[] = {REPORT(NULL, false)};

	(void)state;
	assert_int_equal(trust_round(t, "pi1", r, N(r), 0, false, 100), TRUST_EVICT);
	assert_int_equal(trust_round(t, "pi1", r, N(r), 0, true, 100), TRUST_KEEP);
	/* Nothing at all is no verdict. */
	assert_int_equal(trust_round(t, "pi1", r, 0, 0, false, 100), TRUST_KEEP);
	free(t);
}

static void test_duplicate_reports_count_once(void **state)
{
	struct trust *t = table(5, 8);
	/* pi1 repeats its lie TRUST_STRIKES times, to outweigh the others or to be flagged in its
	 * place: heard once, struck once. */
	struct trust_report r[] = {REPORT(NULL, true),	 REPORT("pi1", false), REPORT("pi1", false),
				   REPORT("pi1", false), REPORT("pi2", true),  REPORT("pi3", true)};

	(void)state;
	assert_true(TRUST_STRIKES <= 3);
	assert_int_equal(trust_round(t, "pi5", r, N(r), 2, true, 100), TRUST_KEEP);
	for (size_t i = 0; i < N(r); i++)
		assert_int_equal(r[i].flagged, 0);
	assert_int_equal(peer(t, "pi1")->strikes, 1);
	assert_float_equal(peer(t, "pi1")->reputation, 0.5 * TRUST_STRIKE_DECAY, 1e-12);
	free(t);
}

static void test_round_bounds(void **state)
{
	struct trust *t = table(TRUST_ROUND_MAX + 2, 8);
	struct trust_report r[TRUST_ROUND_MAX + 1];
	char names[TRUST_ROUND_MAX + 1][32];
	char long_name[CERT_NAME_MAX + 1];
	struct trust_report bad[] = {REPORT(NULL, false), REPORT("", false),
				     REPORT(long_name, false), REPORT("pi1", false)};

	(void)state;
	r[0] = (struct trust_report)REPORT(NULL, false);
	for (size_t i = 1; i <= TRUST_ROUND_MAX; i++) {
		snprintf(names[i], sizeof(names[i]), "pi%zu", i);
		r[i] = (struct trust_report)REPORT(names[i], false);
		r[i].flagged = 99;
	}
	/* One report too many: refused whole, nobody judged, flagged cleared. */
	assert_int_equal(trust_round(t, "pi40", r, TRUST_ROUND_MAX + 1, 2, false, 100), TRUST_KEEP);
	for (size_t i = 0; i <= TRUST_ROUND_MAX; i++)
		assert_int_equal(r[i].flagged, 0);
	assert_true(peer(t, "pi1")->reputation == 0.5);
	/* Exactly TRUST_ROUND_MAX: heard. */
	assert_int_equal(trust_round(t, "pi40", r, TRUST_ROUND_MAX, 2, false, 100), TRUST_EVICT);
	/* Bad target names. */
	assert_int_equal(trust_round(t, NULL, r, 3, 2, false, 100), TRUST_KEEP);
	assert_int_equal(trust_round(t, "", r, 3, 2, false, 100), TRUST_KEEP);
	/* Bad reporter names are not heard: one confirmation left. */
	memset(long_name, 'x', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	assert_int_equal(trust_round(t, "pi40", bad, N(bad), 2, false, 200), TRUST_KEEP);
	assert_null(trust_find(t, long_name));
	free(t);
}

static void test_ballot_stuffing_flagged_and_banned(void **state)
{
	struct trust *t = table(10, 8);
	size_t n = 10; /* pi1..pi10 and the controller: 9 others each, at most */

	(void)state;
	n = 11;
	for (size_t i = 0; i < n - 1; i++)
		assert_true(trust_unsolicited(t, "pi1", n, 100 + i));
	assert_false(peer(t, "pi1")->flags & TRUST_BALLOT_STUFFING);
	/* The one too many. */
	assert_false(trust_unsolicited(t, "pi1", n, 200));
	assert_true(peer(t, "pi1")->flags & TRUST_BALLOT_STUFFING);
	assert_true(trust_banned(peer(t, "pi1"), 200));
	assert_float_equal(peer(t, "pi1")->reputation, 0.5 * TRUST_DECAY, 1e-12);
	/* Banned: not heard, neither unasked nor asked. */
	assert_false(trust_unsolicited(t, "pi1", n, 2000));
	assert_false(trust_trusted(t, peer(t, "pi1"), 2000));
	/* Others are counted apart. */
	assert_true(trust_unsolicited(t, "pi2", n, 200));
	assert_int_equal(peer(t, "pi2")->flags, 0);
	free(t);
}

static void test_honest_reporter_within_window_budget(void **state)
{
	struct trust *t = table(4, 8);

	(void)state;
	/* n - 1 reports each window, for many windows: never stuffing. */
	for (uint64_t w = 0; w < 20; w++)
		for (uint64_t k = 0; k < 4; k++)
			assert_true(trust_unsolicited(t, "pi1", 5, w * P.window_ms + k * 10));
	assert_int_equal(peer(t, "pi1")->flags, 0);
	/* A home of one (or none) leaves nobody to report on. */
	assert_false(trust_unsolicited(t, "pi2", 1, 0));
	assert_true(peer(t, "pi2")->flags & TRUST_BALLOT_STUFFING);
	assert_false(trust_unsolicited(t, "pi3", 0, 0));
	free(t);
}

static void test_ban_expires(void **state)
{
	struct trust *t = table(5, 8);
	uint64_t end;

	(void)state;
	for (unsigned k = 0; k < TRUST_STRIKES; k++)
		lie(t, "pi1", 1000);
	end = peer(t, "pi1")->banned_until;
	assert_int_equal(end, 1000 + P.ban_ms);
	assert_true(trust_banned(peer(t, "pi1"), end - 1));
	assert_false(trust_unsolicited(t, "pi1", 6, end - 1));
	assert_false(trust_banned(peer(t, "pi1"), end));
	assert_true(trust_unsolicited(t, "pi1", 6, end));
	/* Heard again, but its flag stays on record. */
	assert_true(peer(t, "pi1")->flags & TRUST_BAD_MOUTHING);
	/* The ban saturates rather than wrap at the end of time. */
	for (unsigned k = 0; k < TRUST_STRIKES; k++)
		lie(t, "pi1", UINT64_MAX - 10);
	assert_true(trust_banned(peer(t, "pi1"), UINT64_MAX - 1));
	free(t);
}

static void test_reputation_decays_and_recovers_slowly(void **state)
{
	struct trust *t = table(5, 8);
	struct trust_report truth[] = {REPORT("pi1", true), REPORT(NULL, true), REPORT("pi2", true),
				       REPORT("pi3", true)};
	struct trust_report truth4[] = {REPORT("pi4", true), REPORT(NULL, true),
					REPORT("pi2", true), REPORT("pi3", true)};
	/* A burst of lies that gets it flagged: R falls by the strikes, then halves. */
	const double burst = pow(TRUST_STRIKE_DECAY, TRUST_STRIKES - 1) * TRUST_DECAY;
	uint64_t now = 0;
	int rounds = 0;

	(void)state;
	/* Three bursts, each after the last ban ended. */
	for (int i = 0; i < 3; i++) {
		for (unsigned k = 0; k < TRUST_STRIKES; k++)
			lie(t, "pi1", now);
		assert_true(peer(t, "pi1")->flags & TRUST_BAD_MOUTHING);
		now += P.ban_ms;
	}
	assert_float_equal(peer(t, "pi1")->reputation, 0.5 * pow(burst, 3), 1e-12);
	assert_true(peer(t, "pi1")->reputation < 0.05);
	/* Back to where it started takes many rounds of truth, each a tenth of the gap. */
	while (peer(t, "pi1")->reputation < 0.5) {
		trust_round(t, "pi5", truth, N(truth), 2, true, now++);
		rounds++;
	}
	assert_int_equal(rounds, 7);
	/* An on-off liar: a burst of lies every ten rounds keeps it well below a steady honest
	 * peer. A liar that tells one lie every ten rounds is never banned, but stays below it too.
	 */
	for (int cycle = 0; cycle < 20; cycle++) {
		now += P.ban_ms;
		for (unsigned k = 0; k < TRUST_STRIKES; k++)
			lie(t, "pi1", now);
		lie(t, "pi4", now);
		now += P.ban_ms;
		for (int k = 0; k < 9; k++) {
			trust_round(t, "pi5", truth, N(truth), 2, true, now);
			trust_round(t, "pi5", truth4, N(truth4), 2, true, now++);
		}
	}
	assert_true(peer(t, "pi1")->reputation < peer(t, "pi2")->reputation - 0.2);
	assert_true(peer(t, "pi1")->reputation < 0.85);
	assert_int_equal(peer(t, "pi4")->flags, 0);
	assert_true(peer(t, "pi4")->reputation < peer(t, "pi2")->reputation - 0.03);
	free(t);
}

static void test_flag_names(void **state)
{
	(void)state;
	assert_string_equal(trust_flag_name(TRUST_BAD_MOUTHING), "bad-mouthing");
	assert_string_equal(trust_flag_name(TRUST_GOOD_MOUTHING), "good-mouthing");
	assert_string_equal(trust_flag_name(TRUST_BALLOT_STUFFING), "ballot-stuffing");
	assert_string_equal(trust_flag_name(TRUST_MALICIOUS), "malicious");
	assert_null(trust_flag_name(0));
	assert_null(trust_flag_name(TRUST_BAD_MOUTHING | TRUST_MALICIOUS));
	assert_null(trust_flag_name(1 << 9));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_new_peer_starts_at_half),
	    cmocka_unit_test(test_h_from_probes),
	    cmocka_unit_test(test_h_follows_recent_probes),
	    cmocka_unit_test(test_t_formula_with_weight),
	    cmocka_unit_test(test_weight_out_of_range_clamped),
	    cmocka_unit_test(test_bad_names_refused),
	    cmocka_unit_test(test_table_bounded),
	    cmocka_unit_test(test_forget_starts_afresh),
	    cmocka_unit_test(test_malicious_exactly_at_threshold),
	    cmocka_unit_test(test_auth_failures_forgiven_one_per_window),
	    cmocka_unit_test(test_slow_forger_labelled_in_the_end),
	    cmocka_unit_test(test_vouching_unasked_earns_nothing),
	    cmocka_unit_test(test_malicious_not_heard),
	    cmocka_unit_test(test_bad_mouthing_struck_then_flagged),
	    cmocka_unit_test(test_strikes_forgiven_one_per_ban),
	    cmocka_unit_test(test_liar_flagged_within_bounded_rounds),
	    cmocka_unit_test(test_unreachable_of_a_missing_device_never_struck),
	    cmocka_unit_test(test_good_mouthing_flagged_at_once),
	    cmocka_unit_test(test_unsolicited_good_mouthing_judged_but_never_decides),
	    cmocka_unit_test(test_honest_split_not_flagged),
	    cmocka_unit_test(test_too_few_others_to_judge),
	    cmocka_unit_test(test_undecided_round_flags_nobody),
	    cmocka_unit_test(test_one_liar_cannot_evict_healthy),
	    cmocka_unit_test(test_one_liar_cannot_keep_missing),
	    cmocka_unit_test(test_refuted_keeps),
	    cmocka_unit_test(test_refutation_turns_our_own_opinion),
	    cmocka_unit_test(test_eviction_needs_trusted_confirmations),
	    cmocka_unit_test(test_target_cannot_report_on_itself),
	    cmocka_unit_test(test_two_device_home_evicts_on_own_probes),
	    cmocka_unit_test(test_duplicate_reports_count_once),
	    cmocka_unit_test(test_round_bounds),
	    cmocka_unit_test(test_ballot_stuffing_flagged_and_banned),
	    cmocka_unit_test(test_honest_reporter_within_window_budget),
	    cmocka_unit_test(test_ban_expires),
	    cmocka_unit_test(test_reputation_decays_and_recovers_slowly),
	    cmocka_unit_test(test_flag_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
