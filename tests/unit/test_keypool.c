/* keypool: the pool-sizing arithmetic against published figures and exact small cases. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "keypool.h"

#define assert_near(a, b, eps) assert_true(fabs((a) - (b)) <= (eps))

static void test_published_figures(void **state)
{
	(void)state;
	/* Eschenauer and Gligor: a pool of 10,000 with rings of 75 gives p close to 0.5... */
	assert_near(keypool_p_share(10000, 75), 0.4326, 0.0005);
	/* ...and a pool of 1,000 with rings of 40 about 0.81. */
	assert_near(keypool_p_share(1000, 40), 0.8111, 0.0005);
}

static void test_share_edges(void **state)
{
	(void)state;
	assert_near(keypool_p_share(10, 5), 1.0 - 1.0 / 252.0, 1e-12); /* C(5,5)/C(10,5) */
	assert_near(keypool_p_share(10, 6), 1.0, 0.0);		       /* must overlap */
	assert_near(keypool_p_share(100, 1), 0.01, 1e-12);
	assert_true(keypool_p_share(100000, 10) < keypool_p_share(1000, 10));
}

static void test_connected_exact(void **state)
{
	(void)state;
	assert_near(keypool_p_connected(1, 0.3), 1.0, 0.0);
	/* Two devices: the graph is connected exactly when they share a key. */
	assert_near(keypool_p_connected(2, 0.37), 0.37, 1e-12);
	/* Three: a triangle or one of three paths. */
	assert_near(keypool_p_connected(3, 0.5), 0.5, 1e-12);
	assert_near(keypool_p_connected(3, 0.9), 0.729 + 3 * 0.81 * 0.1, 1e-12);
	/* Four: 38 of the 64 labelled graphs are connected. */
	assert_near(keypool_p_connected(4, 0.5), 38.0 / 64.0, 1e-12);
	assert_near(keypool_p_connected(50, 1.0), 1.0, 1e-12);
	assert_near(keypool_p_connected(50, 0.0), 0.0, 1e-12);
	assert_true(keypool_p_connected(1000, 0.01) >
		    0.0); /* no overflow at the top of the range */
}

static void test_plan_picks_largest_pool(void **state)
{
	struct keypool_plan plan;

	(void)state;
	assert_int_equal(keypool_plan(10, 0.9, 75, 0, &plan), 0);
	assert_int_equal(plan.ring, 75);
	assert_true(plan.p_share >= 0.9);
	assert_true(keypool_p_share(plan.pool + 1, 75) < 0.9);
	assert_near(plan.p_connected, keypool_p_connected(10, plan.p_share), 1e-12);

	assert_int_equal(keypool_plan(2, 0.5, 0, 0, &plan), 0);
	assert_int_equal(plan.ring, KEYPOOL_RING_DEFAULT);
	assert_near(plan.p_connected, plan.p_share, 1e-12);
}

static void test_plan_given_pool(void **state)
{
	struct keypool_plan plan;

	(void)state;
	assert_int_equal(keypool_plan(5, 0.9, 40, 1000, &plan), 0);
	assert_int_equal(plan.pool, 1000);
	assert_near(plan.p_share, 0.8111, 0.0005);
}

static void test_plan_refuses_bad_input(void **state)
{
	struct keypool_plan plan = {.pool = 7};

	(void)state;
	assert_int_equal(keypool_plan(0, 0.9, 0, 0, &plan), -EINVAL);
	assert_int_equal(keypool_plan(KEYPOOL_NODES_MAX + 1, 0.9, 0, 0, &plan), -EINVAL);
	assert_int_equal(keypool_plan(5, 0.0, 0, 0, &plan), -EINVAL);
	assert_int_equal(keypool_plan(5, 1.5, 0, 0, &plan), -EINVAL);
	assert_int_equal(keypool_plan(5, NAN, 0, 0, &plan), -EINVAL);
	assert_int_equal(keypool_plan(5, 0.9, KEYPOOL_RING_MAX + 1, 0, &plan), -EINVAL);
	assert_int_equal(keypool_plan(5, 0.9, 75, 74, &plan), -EINVAL);
	assert_int_equal(keypool_plan(5, 0.9, 75, KEYPOOL_POOL_MAX + 1, &plan), -EINVAL);
	assert_int_equal(plan.pool, 7);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_published_figures),
	    cmocka_unit_test(test_share_edges),
	    cmocka_unit_test(test_connected_exact),
	    cmocka_unit_test(test_plan_picks_largest_pool),
	    cmocka_unit_test(test_plan_given_pool),
	    cmocka_unit_test(test_plan_refuses_bad_input),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
