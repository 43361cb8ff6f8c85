/* resolve: numeric addresses answered without a thread, names from /etc/hosts ("localhost"),
 * names that do not resolve, bad arguments, and queries freed before their answer (the callback
 * never comes) or from inside their callback. The answer always comes on the loop, never inside
 * resolve_start(). Every wait is bounded. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "resolve.h"

#include "ctl_peer.h"

struct answer {
	struct resolve *q;
	bool free_in_cb;
	unsigned calls;
	struct resolve_result res;
};

static void on_answer(const struct resolve_result *res, void *userdata)
{
	struct answer *a = userdata;

	a->calls++;
	a->res = *res;
	if (a->free_in_cb) {
		resolve_free(a->q);
		a->q = NULL;
	}
}

/* Resolves host on a loop of its own into a, waiting at most WAIT_MS. */
static void resolve_one(const char *host, struct answer *a)
{
	sd_event *e = NULL;

	memset(a, 0, sizeof(*a));
	assert_int_equal(sd_event_new(&e), 0);
	assert_int_equal(resolve_start(e, host, on_answer, a, &a->q), 0);
	assert_non_null(a->q);
	assert_int_equal(a->calls, 0);
	loop_until(e, a->calls > 0);
	loop_for(e, 50);
	assert_int_equal(a->calls, 1);
	resolve_free(a->q);
	sd_event_unref(e);
}

static void numeric(void **state)
{
	const struct {
		const char *host, *addr;
	} cases[] = {
	    {"127.0.0.1", "127.0.0.1"},
	    {"192.0.2.7", "192.0.2.7"},
	    {"::1", "::1"},
	    {"2001:db8::0:1", "2001:db8::1"},
	};
	struct answer a;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		resolve_one(cases[i].host, &a);
		assert_int_equal(a.res.r, 0);
		assert_int_equal(a.res.n, 1);
		assert_string_equal(a.res.addrs[0], cases[i].addr);
		assert_string_equal(a.res.why, "");
	}
}

static void by_name(void **state)
{
	struct answer a;
	bool loopback = false;

	(void)state;
	resolve_one("localhost", &a);
	assert_int_equal(a.res.r, 0);
	assert_true(a.res.n >= 1 && a.res.n <= RESOLVE_ADDRS_MAX);
	for (unsigned i = 0; i < a.res.n; i++)
		if (strcmp(a.res.addrs[i], "127.0.0.1") == 0 || strcmp(a.res.addrs[i], "::1") == 0)
			loopback = true;
	assert_true(loopback);
}

static void no_such_name(void **state)
{
	const char *names[] = {"no-such-broker.invalid", "no such name", "broker..home",
			       "256.1.1.1.invalid"};
	struct answer a;

	(void)state;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		resolve_one(names[i], &a);
		/* No such name, or no resolver to say so: never an address. */
		assert_true(a.res.r == -ENOENT || a.res.r == -EAGAIN || a.res.r == -EIO);
		assert_int_equal(a.res.n, 0);
		assert_true(strlen(a.res.why) > 0);
	}
}

static void bad_arguments(void **state)
{
	char longest[RESOLVE_HOST_MAX + 2];
	sd_event *e = NULL;
	struct answer a = {0};
	struct resolve *q = NULL;

	(void)state;
	memset(longest, 'a', sizeof(longest) - 1);
	longest[sizeof(longest) - 1] = '\0';
	assert_int_equal(sd_event_new(&e), 0);
	assert_int_equal(resolve_start(NULL, "localhost", on_answer, &a, &q), -EINVAL);
	assert_int_equal(resolve_start(e, NULL, on_answer, &a, &q), -EINVAL);
	assert_int_equal(resolve_start(e, "", on_answer, &a, &q), -EINVAL);
	assert_int_equal(resolve_start(e, longest, on_answer, &a, &q), -EINVAL);
	assert_int_equal(resolve_start(e, "localhost", NULL, &a, &q), -EINVAL);
	assert_int_equal(resolve_start(e, "localhost", on_answer, &a, NULL), -EINVAL);
	assert_null(q);
	/* One shorter is a host. */
	longest[RESOLVE_HOST_MAX] = '\0';
	assert_int_equal(resolve_start(e, longest, on_answer, &a, &q), 0);
	resolve_free(q);
	resolve_free(NULL);
	loop_for(e, 100);
	assert_int_equal(a.calls, 0);
	sd_event_unref(e);
}

/* Freed before the answer: no callback, whether the thread has finished or not. */
static void freed_first(void **state)
{
	const char *hosts[] = {"localhost", "127.0.0.1", "no-such-broker.invalid"};
	sd_event *e = NULL;
	struct answer a[3] = {0};

	(void)state;
	assert_int_equal(sd_event_new(&e), 0);
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(resolve_start(e, hosts[i], on_answer, &a[i], &a[i].q), 0);
	for (size_t i = 0; i < 3; i++)
		resolve_free(a[i].q);
	loop_for(e, 300);
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(a[i].calls, 0);
	sd_event_unref(e);
}

/* Freed from inside its callback, for an address and for a name. */
static void freed_in_callback(void **state)
{
	const char *hosts[] = {"127.0.0.1", "localhost", "no-such-broker.invalid"};
	sd_event *e = NULL;
	struct answer a[3] = {0};

	(void)state;
	assert_int_equal(sd_event_new(&e), 0);
	for (size_t i = 0; i < 3; i++) {
		a[i].free_in_cb = true;
		assert_int_equal(resolve_start(e, hosts[i], on_answer, &a[i], &a[i].q), 0);
	}
	loop_until(e, a[0].calls + a[1].calls + a[2].calls == 3);
	loop_for(e, 50);
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(a[i].calls, 1);
		assert_null(a[i].q);
	}
	assert_int_equal(a[0].res.r, 0);
	assert_int_equal(a[1].res.r, 0);
	assert_true(a[2].res.r < 0);
	sd_event_unref(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(numeric),	    cmocka_unit_test(by_name),
	    cmocka_unit_test(no_such_name), cmocka_unit_test(bad_arguments),
	    cmocka_unit_test(freed_first),  cmocka_unit_test(freed_in_callback),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
