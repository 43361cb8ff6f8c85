/* log: levels, the errno variants, journal prefixes, and the error texts of iotsec's codes. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"

static char captured[4096];

/* Run fn with stderr sent to a temporary file, then read what it wrote into captured. */
static void capture(void (*fn)(void))
{
	FILE *tmp = tmpfile();
	int saved = dup(2);
	size_t n;

	assert_non_null(tmp);
	fflush(stderr);
	assert_int_equal(dup2(fileno(tmp), 2), 2);
	fn();
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	rewind(tmp);
	n = fread(captured, 1, sizeof(captured) - 1, tmp);
	captured[n] = '\0';
	fclose(tmp);
}

static void emit_levels(void)
{
	log_debug("debug %d", 1);
	log_info("info %d", 2);
	log_warnx("warn %d", 3);
	log_errx("err %d", 4);
}

static void test_levels_filter(void **state)
{
	(void)state;
	unsetenv("JOURNAL_STREAM");
	log_init("tester", LOG_INFO);
	capture(emit_levels);
	assert_null(strstr(captured, "debug 1"));
	assert_non_null(strstr(captured, "tester: info 2\n"));
	assert_non_null(strstr(captured, "tester: warn 3\n"));
	assert_non_null(strstr(captured, "tester: err 4\n"));

	log_set_level(LOG_WARNING);
	assert_int_equal(log_get_level(), LOG_WARNING);
	capture(emit_levels);
	assert_null(strstr(captured, "info 2"));
	assert_non_null(strstr(captured, "warn 3"));

	log_set_level(LOG_DEBUG);
	capture(emit_levels);
	assert_non_null(strstr(captured, "tester: debug 1\n"));
}

static void emit_errno(void)
{
	errno = ENOENT;
	log_warn("open %s", "/x");
	assert_int_equal(errno, ENOENT); /* logging must not clobber errno */
	errno = EACCES;
	log_warnx("plain");
}

static void test_errno_variants(void **state)
{
	(void)state;
	unsetenv("JOURNAL_STREAM");
	log_init("tester", LOG_INFO);
	capture(emit_errno);
	assert_non_null(strstr(captured, "tester: open /x: No such file or directory\n"));
	assert_non_null(strstr(captured, "tester: plain\n"));
	assert_null(strstr(captured, "Permission denied"));
}

static void test_journal_prefix(void **state)
{
	(void)state;
	setenv("JOURNAL_STREAM", "8:1234", 1);
	log_init("tester", LOG_INFO);
	capture(emit_levels);
	unsetenv("JOURNAL_STREAM");
	assert_non_null(strstr(captured, "<6>info 2\n"));
	assert_non_null(strstr(captured, "<4>warn 3\n"));
	assert_non_null(strstr(captured, "<3>err 4\n"));
	assert_null(strstr(captured, "tester:"));
}

static void emit_long(void)
{
	char big[3000];

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	log_info("%s", big);
}

static void test_long_line_truncated_not_overflowed(void **state)
{
	(void)state;
	unsetenv("JOURNAL_STREAM");
	log_init("tester", LOG_INFO);
	capture(emit_long);
	assert_true(strlen(captured) < 1100);
	assert_int_equal(captured[strlen(captured) - 1], '\n');
}

static void test_strerror(void **state)
{
	(void)state;
	assert_string_equal(iotsec_strerror(-EKEYEXPIRED), "certificate expired");
	assert_string_equal(iotsec_strerror(-EKEYREVOKED), "certificate revoked");
	assert_string_equal(iotsec_strerror(IOTSEC_EREPLAY), "replayed message");
	assert_string_equal(iotsec_strerror(-IOTSEC_EREPLAY), "replayed message");
	assert_string_equal(iotsec_strerror(-ENOENT), "No such file or directory");
	/* Every iotsec code has its own text. */
	for (int a = IOTSEC_E_BASE + 1; a < IOTSEC_E_END; a++) {
		assert_non_null(iotsec_strerror(-a));
		for (int b = a + 1; b < IOTSEC_E_END; b++)
			assert_string_not_equal(iotsec_strerror(-a), iotsec_strerror(-b));
	}
	/* Codes past the table are not read out of bounds. */
	assert_non_null(iotsec_strerror(-IOTSEC_E_END));
	assert_non_null(iotsec_strerror(-IOTSEC_E_BASE));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_levels_filter),
	    cmocka_unit_test(test_errno_variants),
	    cmocka_unit_test(test_journal_prefix),
	    cmocka_unit_test(test_long_line_truncated_not_overflowed),
	    cmocka_unit_test(test_strerror),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
