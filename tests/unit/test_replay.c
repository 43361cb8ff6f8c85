/* replay: each sender's numbers are accepted once, one sender can never get another's messages
 * refused, and the memory kept is bounded by the senders whose messages could still be fresh. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cert.h"
#include "log.h"
#include "replay.h"

#define DT 30	/* delta_t, seconds */
#define T0 1000 /* a "now" far enough from 0 that now - DT stays positive */

static struct replay *new_replay(void)
{
	struct replay *r = NULL;

	assert_int_equal(replay_new(DT, &r), 0);
	assert_non_null(r);
	return r;
}

/* Fill the table up to REPLAY_SENDERS_MAX with distinct fresh senders "fill-NNNN". */
static void fill(struct replay *r, int64_t ts, int64_t now)
{
	char name[32];

	for (int i = 0; replay_senders(r) < REPLAY_SENDERS_MAX; i++) {
		snprintf(name, sizeof(name), "fill-%04d", i);
		assert_int_equal(replay_check(r, name, 1, ts, now), 0);
	}
}

static void test_new_rejects_bad_window(void **state)
{
	struct replay *r = NULL;

	(void)state;
	assert_int_equal(replay_new(0, &r), -EINVAL);
	assert_int_equal(replay_new(-5, &r), -EINVAL);
	assert_null(r);
	replay_free(NULL); /* destructors accept NULL */
}

static void test_first_accepted_then_replay(void **state)
{
	struct replay *r = new_replay();

	(void)state;
	assert_int_equal(replay_check(r, "pi1", 1, T0, T0), 0);
	assert_int_equal(replay_check(r, "pi1", 1, T0, T0), -IOTSEC_EREPLAY);
	assert_int_equal(replay_check(r, "pi1", 2, T0, T0), 0);
	/* The older one stays refused after a newer one came in. */
	assert_int_equal(replay_check(r, "pi1", 1, T0, T0), -IOTSEC_EREPLAY);
	assert_int_equal(replay_check(r, "pi1", 2, T0, T0), -IOTSEC_EREPLAY);
	/* A sender's clock in microseconds: the largest numbers behave like the small ones. */
	assert_int_equal(replay_check(r, "pi1", UINT64_MAX, T0, T0), 0);
	assert_int_equal(replay_check(r, "pi1", UINT64_MAX, T0, T0), -IOTSEC_EREPLAY);
	assert_int_equal(replay_senders(r), 1);
	replay_free(r);
}

/* 0 is every window's initial floor: accepting it would accept it from every new sender. */
static void test_seq_zero_refused(void **state)
{
	struct replay *r = new_replay();

	(void)state;
	assert_int_equal(replay_check(r, "pi1", 0, T0, T0), -IOTSEC_EREPLAY);
	assert_int_equal(replay_check(r, "pi1", 1, T0, T0), 0);
	assert_int_equal(replay_check(r, "pi1", 0, T0, T0), -IOTSEC_EREPLAY);
	replay_free(r);
}

/* Datagrams arrive out of order: any order inside the window is accepted, once. */
static void test_out_of_order_within_window(void **state)
{
	struct replay *r = new_replay();
	uint64_t seqs[REPLAY_WINDOW];

	(void)state;
	for (int i = 0; i < REPLAY_WINDOW; i++)
		seqs[i] = 500 + (uint64_t)i;
	srand(11);
	for (int i = REPLAY_WINDOW - 1; i > 0; i--) {
		int j = rand() % (i + 1);
		uint64_t t = seqs[i];

		seqs[i] = seqs[j], seqs[j] = t;
	}
	for (int i = 0; i < REPLAY_WINDOW; i++)
		assert_int_equal(replay_check(r, "pi1", seqs[i], T0, T0), 0);
	for (int i = 0; i < REPLAY_WINDOW; i++)
		assert_int_equal(replay_check(r, "pi1", seqs[i], T0, T0), -IOTSEC_EREPLAY);
	replay_free(r);
}

/* Once the window is full, a number below all of it cannot be told from a replay: refused. */
static void test_older_than_window_refused(void **state)
{
	struct replay *r = new_replay();

	(void)state;
	for (uint64_t s = 1001; s <= 1000 + REPLAY_WINDOW; s++)
		assert_int_equal(replay_check(r, "pi1", s, T0, T0), 0);
	/* Never seen, but older than the whole window. */
	assert_int_equal(replay_check(r, "pi1", 1000, T0, T0), -IOTSEC_EREPLAY);
	assert_int_equal(replay_check(r, "pi1", 1, T0, T0), -IOTSEC_EREPLAY);
	/* A newer one pushes the smallest (1001) down to the floor. */
	assert_int_equal(replay_check(r, "pi1", 1000 + REPLAY_WINDOW + 1, T0, T0), 0);
	assert_int_equal(replay_check(r, "pi1", 1001, T0, T0), -IOTSEC_EREPLAY);
	assert_int_equal(replay_check(r, "pi1", 1002, T0, T0), -IOTSEC_EREPLAY);
	/* A gap above the floor not yet seen is still accepted, once. */
	assert_int_equal(replay_check(r, "pi1", 5000, T0, T0), 0);
	assert_int_equal(replay_check(r, "pi1", 4000, T0, T0), 0);
	assert_int_equal(replay_check(r, "pi1", 4000, T0, T0), -IOTSEC_EREPLAY);
	replay_free(r);
}

/* The attack the module exists for: one sender floods (many numbers, timestamps as far in the
 * future as freshness lets through, replays of its own) while another keeps talking. Nothing
 * the first does may get the second refused, or grow what is kept. */
static void test_flood_from_one_sender_spares_another(void **state)
{
	struct replay *r = new_replay();
	uint64_t b = 1, b_late = 0;
	int64_t now = T0;

	(void)state;
	assert_int_equal(replay_check(r, "pi2", b++, now, now), 0);
	for (uint64_t s = 1; s <= 100000; s++) {
		if (s % 1000 == 0)
			now++; /* the flood lasts longer than delta_t */
		assert_int_equal(replay_check(r, "rogue", s, now + DT, now), 0);
		if (s % 7 == 0) /* and it replays itself too */
			assert_int_equal(replay_check(r, "rogue", s - 3, now + DT, now),
					 -IOTSEC_EREPLAY);
		if (s % 500 == 0)
			assert_int_equal(replay_check(r, "pi2", b++, now, now), 0);
		if (s == 90000) /* delayed to the end, overtaken by fewer than a window */
			b_late = b++;
	}
	/* pi2's numbers are tiny next to the rogue's, and one arrives late: both are pi2's own. */
	assert_int_equal(replay_check(r, "pi2", b_late, now, now), 0);
	assert_int_equal(replay_check(r, "pi2", b_late, now, now), -IOTSEC_EREPLAY);
	/* A third sender that first speaks now is as welcome as before the flood. */
	assert_int_equal(replay_check(r, "pi3", 1, now, now), 0);
	assert_int_equal(replay_senders(r), 3);
	replay_free(r);
}

/* The name must identify a certificate: empty, missing or longer than any CN is a caller bug. */
static void test_bad_names(void **state)
{
	struct replay *r = new_replay();
	char longest[CERT_NAME_MAX], too_long[CERT_NAME_MAX + 1];

	(void)state;
	memset(longest, 'a', sizeof(longest) - 1);
	longest[sizeof(longest) - 1] = '\0';
	memset(too_long, 'a', sizeof(too_long) - 1);
	too_long[sizeof(too_long) - 1] = '\0';
	assert_int_equal(replay_check(r, "", 1, T0, T0), -EINVAL);
	assert_int_equal(replay_check(r, NULL, 1, T0, T0), -EINVAL);
	assert_int_equal(replay_check(r, too_long, 1, T0, T0), -EINVAL);
	assert_int_equal(replay_senders(r), 0);
	assert_int_equal(replay_check(r, longest, 1, T0, T0), 0);
	assert_int_equal(replay_check(r, longest, 1, T0, T0), -IOTSEC_EREPLAY);
	replay_free(r);
}

/* Full of senders that all spoke within delta_t, a new one is refused (forgetting any of them
 * would let its replays through); the known ones still work; once they age out they make room. */
static void test_full_table_fails_closed(void **state)
{
	struct replay *r = new_replay();

	(void)state;
	fill(r, T0, T0);
	assert_int_equal(replay_senders(r), REPLAY_SENDERS_MAX);
	assert_int_equal(replay_check(r, "newcomer", 1, T0, T0), -ENOBUFS);
	assert_int_equal(replay_check(r, "newcomer", 1, T0 + DT, T0 + DT), -ENOBUFS);
	/* Senders already known are not affected by the table being full. */
	assert_int_equal(replay_check(r, "fill-0000", 2, T0, T0), 0);
	assert_int_equal(replay_check(r, "fill-0000", 2, T0, T0), -IOTSEC_EREPLAY);
	assert_int_equal(replay_check(r, "fill-4095", 2, T0, T0), 0);
	/* Every one of them is stale now: all forgotten, the newcomer alone remains. */
	assert_int_equal(replay_check(r, "newcomer", 1, T0 + DT + 1, T0 + DT + 1), 0);
	assert_int_equal(replay_senders(r), 1);
	replay_free(r);
}

/* A sender is forgotten exactly when none of its messages could pass freshness any more: kept at
 * now = newest + delta_t, dropped one second later (when the table needs the room). */
static void test_stale_sender_forgotten(void **state)
{
	struct replay *r = new_replay();

	(void)state;
	assert_int_equal(replay_check(r, "old", 1, T0, T0), 0);
	fill(r, T0 + DT, T0); /* everyone else stays fresh a delta_t longer */
	/* At T0 + DT, "old"'s message (ts T0) is still fresh: it must be remembered. */
	assert_int_equal(replay_check(r, "newcomer", 1, T0 + DT, T0 + DT), -ENOBUFS);
	assert_int_equal(replay_check(r, "old", 1, T0 + DT, T0 + DT), -IOTSEC_EREPLAY);
	/* One second later it is stale, so "old" alone gives way. */
	assert_int_equal(replay_check(r, "newcomer", 1, T0 + DT + 1, T0 + DT + 1), 0);
	assert_int_equal(replay_senders(r), REPLAY_SENDERS_MAX);
	/* "old" is no longer known: were it, this would be a replay, not a lack of room. */
	assert_int_equal(replay_check(r, "old", 1, T0 + DT + 1, T0 + DT + 1), -ENOBUFS);
	replay_free(r);
}

/* A timestamp from far in the future counts as now + delta_t: it cannot keep a sender's state
 * (and its slot) alive for longer than any real message could. */
static void test_future_timestamp_clamped(void **state)
{
	struct replay *r = new_replay();

	(void)state;
	assert_int_equal(replay_check(r, "liar", 1, T0 + 100000, T0), 0);
	/* The others spoke later and stay fresh until T0 + 3 DT. */
	fill(r, T0 + 2 * DT, T0 + DT);
	/* liar's clamped newest (T0 + DT) is still fresh at T0 + 2 DT. */
	assert_int_equal(replay_check(r, "newcomer", 1, T0 + 2 * DT, T0 + 2 * DT), -ENOBUFS);
	/* One second later it is not: without the clamp liar would hold its slot for a day. */
	assert_int_equal(replay_check(r, "newcomer", 1, T0 + 2 * DT + 1, T0 + 2 * DT + 1), 0);
	assert_int_equal(replay_check(r, "liar", 2, T0 + 2 * DT + 1, T0 + 2 * DT + 1), -ENOBUFS);
	replay_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_new_rejects_bad_window),
	    cmocka_unit_test(test_first_accepted_then_replay),
	    cmocka_unit_test(test_seq_zero_refused),
	    cmocka_unit_test(test_out_of_order_within_window),
	    cmocka_unit_test(test_older_than_window_refused),
	    cmocka_unit_test(test_flood_from_one_sender_spares_another),
	    cmocka_unit_test(test_bad_names),
	    cmocka_unit_test(test_full_table_fails_closed),
	    cmocka_unit_test(test_stale_sender_forgotten),
	    cmocka_unit_test(test_future_timestamp_clamped),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
