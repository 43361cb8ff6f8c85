/* clock: the floor that keeps a Pi without a real-time clock from living in 1970. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "clock.h"
#include "file.h"

static char dir[] = "/tmp/iotsec-test-clock-XXXXXX";
static char path[256];

static int setup(void **state)
{
	(void)state;
	clock_set_fake(-1);
	clock_reset_floor();
	return 0;
}

static void test_wall_clock_by_default(void **state)
{
	int64_t now = time(NULL);

	(void)state;
	assert_in_range(clock_now(), now, now + 2);
}

static void test_build_time_is_the_first_floor(void **state)
{
	(void)state;
	clock_set_fake(0); /* a Pi that booted in 1970 */
	assert_true(clock_floor() > 1600000000);
	assert_int_equal(clock_now(), clock_floor());
}

static void test_floor_only_rises(void **state)
{
	int64_t base = clock_floor();

	(void)state;
	clock_set_fake(0);
	clock_raise_floor(base + 100);
	assert_int_equal(clock_now(), base + 100);
	clock_raise_floor(base + 50);
	assert_int_equal(clock_now(), base + 100);
	clock_reset_floor();
	assert_int_equal(clock_now(), base);
}

static void test_unset_only_before_build_time(void **state)
{
	int64_t build = clock_floor();

	(void)state;
	assert_false(clock_unset()); /* this machine's clock runs */
	clock_set_fake(0);
	assert_true(clock_unset());
	clock_set_fake(build - 1);
	assert_true(clock_unset());
	/* A raised floor does not make a stopped clock look set. */
	clock_raise_floor(build + 100);
	assert_true(clock_unset());
	clock_set_fake(build);
	assert_false(clock_unset());
}

static void test_fake_time_above_floor_wins(void **state)
{
	(void)state;
	clock_set_fake(clock_floor() + 1000);
	assert_int_equal(clock_now(), clock_floor() + 1000);
}

static void test_save_then_load_raises_floor(void **state)
{
	int64_t later = clock_floor() + 86400 * 30;

	(void)state;
	clock_set_fake(later);
	assert_int_equal(clock_save(path), 0);
	clock_set_fake(0);
	clock_reset_floor();
	assert_int_equal(clock_load(path), 0);
	assert_int_equal(clock_now(), later);
}

static void test_missing_file_is_not_an_error(void **state)
{
	char missing[300];
	int64_t before = clock_floor();

	(void)state;
	snprintf(missing, sizeof(missing), "%s/none", dir);
	assert_int_equal(clock_load(missing), 0);
	assert_int_equal(clock_floor(), before);
}

static void test_malformed_files_refused(void **state)
{
	static const char *const bad[] = {"",	  "abc\n", "12x\n",
					  "-5\n", "1 2\n", "99999999999999999999999\n"};
	int64_t before = clock_floor();

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(file_write_atomic(path, bad[i], strlen(bad[i]), 0644), 0);
		assert_int_equal(clock_load(path), -EBADMSG);
		assert_int_equal(clock_floor(), before);
	}
}

static void test_oversize_file_refused(void **state)
{
	char big[200];

	(void)state;
	memset(big, '1', sizeof(big));
	assert_int_equal(file_write_atomic(path, big, sizeof(big), 0644), 0);
	assert_int_equal(clock_load(path), -EFBIG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_wall_clock_by_default, setup),
	    cmocka_unit_test_setup(test_build_time_is_the_first_floor, setup),
	    cmocka_unit_test_setup(test_floor_only_rises, setup),
	    cmocka_unit_test_setup(test_unset_only_before_build_time, setup),
	    cmocka_unit_test_setup(test_fake_time_above_floor_wins, setup),
	    cmocka_unit_test_setup(test_save_then_load_raises_floor, setup),
	    cmocka_unit_test_setup(test_missing_file_is_not_an_error, setup),
	    cmocka_unit_test_setup(test_malformed_files_refused, setup),
	    cmocka_unit_test_setup(test_oversize_file_refused, setup),
	};
	int r;

	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(path, sizeof(path), "%s/clock", dir);
	r = cmocka_run_group_tests(tests, NULL, NULL);
	unlink(path);
	rmdir(dir);
	return r;
}
