/* refusals: each (peer, reason) is logged once, every one is counted, memory is bounded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "refusals.h"

static void test_first_of_each_pair_is_logged(void **state)
{
	struct refusals r = {0};

	(void)state;
	assert_true(refusals_note(&r, 1, -5));
	assert_false(refusals_note(&r, 1, -5));
	assert_true(refusals_note(&r, 1, -6)); /* same peer, new reason */
	assert_true(refusals_note(&r, 2, -5)); /* new peer, same reason */
	assert_false(refusals_note(&r, 2, -5));
	assert_int_equal(r.total, 5);
}

static void test_bounded(void **state)
{
	struct refusals r = {0};

	(void)state;
	for (uint32_t a = 0; a < REFUSALS_MAX; a++)
		assert_true(refusals_note(&r, a, -1));
	/* Full: a new pair is logged and takes the oldest one's place. */
	assert_true(refusals_note(&r, 9999, -1));
	assert_false(refusals_note(&r, 9999, -1));
	assert_int_equal(r.n, REFUSALS_MAX);
	assert_int_equal(r.total, REFUSALS_MAX + 2);
	assert_false(refusals_note(&r, 1, -1)); /* the others are still known */
	assert_true(refusals_note(&r, 0, -1));	/* the oldest was forgotten */
	/* Junk from many addresses cannot silence what comes after it. */
	for (uint32_t a = 100000; a < 100000 + 3 * REFUSALS_MAX; a++)
		assert_true(refusals_note(&r, a, -2));
	assert_true(refusals_note(&r, 7, -3));
	assert_false(refusals_note(&r, 7, -3));
	assert_int_equal(r.n, REFUSALS_MAX);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_first_of_each_pair_is_logged),
	    cmocka_unit_test(test_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
