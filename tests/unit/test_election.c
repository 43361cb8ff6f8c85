/* election: the state machine alone, then several of them on a simulated broadcast network. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "election.h"

static const struct election_params P = {
    .tries = 3, .try_ms = 100, .heartbeat_ms = 200, .timeout_ms = 700};

static void test_capable_device_alone_leads(void **state)
{
	struct election e;
	unsigned a;

	(void)state;
	election_init(&e, &P, "hub", true);
	assert_int_equal(e.state, ELECTION_OUT);
	a = election_step(&e, ELECTION_EV_START, NULL, 0);
	assert_int_equal(a, ELECTION_SEND_QUERY | ELECTION_CHANGED);
	assert_int_equal(election_step(&e, ELECTION_EV_TIMER, NULL, 50), 0); /* too early */
	assert_int_equal(election_step(&e, ELECTION_EV_TIMER, NULL, 100), ELECTION_SEND_QUERY);
	assert_int_equal(election_step(&e, ELECTION_EV_TIMER, NULL, 200), ELECTION_SEND_QUERY);
	a = election_step(&e, ELECTION_EV_TIMER, NULL, 300);
	assert_int_equal(a, ELECTION_SEND_ANNOUNCE | ELECTION_CHANGED);
	assert_int_equal(e.state, ELECTION_CONTROLLER);
	assert_string_equal(e.controller, "hub");
	/* Heartbeats, and an answer to every query. */
	assert_int_equal(election_step(&e, ELECTION_EV_TIMER, NULL, 500), ELECTION_SEND_ANNOUNCE);
	assert_int_equal(election_step(&e, ELECTION_EV_QUERY, "pi1", 510), ELECTION_SEND_ANNOUNCE);
}

static void test_node_role_never_leads(void **state)
{
	struct election e;

	(void)state;
	election_init(&e, &P, "pi1", false);
	election_step(&e, ELECTION_EV_START, NULL, 0);
	for (uint64_t t = 100; t < 100000; t += 100) {
		unsigned a = election_step(&e, ELECTION_EV_TIMER, NULL, t);

		assert_false(a & ELECTION_SEND_ANNOUNCE);
		assert_int_equal(e.state, ELECTION_DISCOVERING);
	}
	/* Queries from others are not answered by a node. */
	assert_int_equal(election_step(&e, ELECTION_EV_QUERY, "pi2", 100001), 0);
}

static void test_announcement_makes_a_node(void **state)
{
	struct election e;

	(void)state;
	election_init(&e, &P, "pi1", true);
	election_step(&e, ELECTION_EV_START, NULL, 0);
	assert_int_equal(election_step(&e, ELECTION_EV_ANNOUNCE, "hub", 10), ELECTION_CHANGED);
	assert_int_equal(e.state, ELECTION_NODE);
	assert_string_equal(e.controller, "hub");
	/* Heartbeats keep it; silence past the timeout sends it looking again. */
	assert_int_equal(election_step(&e, ELECTION_EV_ANNOUNCE, "hub", 600), 0);
	assert_int_equal(election_step(&e, ELECTION_EV_TIMER, NULL, 1200), 0);
	assert_int_equal(election_step(&e, ELECTION_EV_TIMER, NULL, 1300),
			 ELECTION_SEND_QUERY | ELECTION_CHANGED);
	assert_int_equal(e.state, ELECTION_DISCOVERING);
	assert_string_equal(e.controller, "");
}

static void test_two_controllers_converge(void **state)
{
	struct election b;

	(void)state;
	election_init(&b, &P, "b-hub", true);
	election_step(&b, ELECTION_EV_START, NULL, 0);
	for (uint64_t t = 100; t <= 300; t += 100)
		election_step(&b, ELECTION_EV_TIMER, NULL, t);
	assert_int_equal(b.state, ELECTION_CONTROLLER);
	/* A larger name is told at once that we lead... */
	assert_int_equal(election_step(&b, ELECTION_EV_ANNOUNCE, "c-hub", 310),
			 ELECTION_SEND_ANNOUNCE);
	assert_int_equal(b.state, ELECTION_CONTROLLER);
	/* ...a smaller one wins. */
	assert_int_equal(election_step(&b, ELECTION_EV_ANNOUNCE, "a-hub", 320), ELECTION_CHANGED);
	assert_int_equal(b.state, ELECTION_NODE);
	assert_string_equal(b.controller, "a-hub");
	/* A node hearing a larger controller keeps the smaller one. */
	assert_int_equal(election_step(&b, ELECTION_EV_ANNOUNCE, "c-hub", 330), 0);
	assert_string_equal(b.controller, "a-hub");
}

static void test_out_is_silent(void **state)
{
	struct election e;

	(void)state;
	election_init(&e, &P, "hub", true);
	election_step(&e, ELECTION_EV_START, NULL, 0);
	assert_int_equal(election_step(&e, ELECTION_EV_CERT_INVALID, NULL, 5), ELECTION_CHANGED);
	assert_int_equal(election_step(&e, ELECTION_EV_TIMER, NULL, 1000), 0);
	assert_int_equal(election_step(&e, ELECTION_EV_QUERY, "pi1", 1000), 0);
	assert_int_equal(election_step(&e, ELECTION_EV_ANNOUNCE, "a", 1000), 0);
	assert_int_equal(e.state, ELECTION_OUT);
	assert_int_equal(election_step(&e, ELECTION_EV_START, NULL, 2000),
			 ELECTION_SEND_QUERY | ELECTION_CHANGED);
}

static void test_own_messages_ignored(void **state)
{
	struct election e;

	(void)state;
	election_init(&e, &P, "hub", true);
	election_step(&e, ELECTION_EV_START, NULL, 0);
	assert_int_equal(election_step(&e, ELECTION_EV_ANNOUNCE, "hub", 10), 0);
	assert_int_equal(e.state, ELECTION_DISCOVERING);
}

/* A broadcast network of n devices, each starting at its own time; every message reaches all
 * the others at once. Returns when the time limit passes. */
static void simulate(struct election *devs, int n, const uint64_t *start, uint64_t until)
{
	for (uint64_t t = 0; t <= until; t += 10) {
		for (int i = 0; i < n; i++) {
			unsigned a = 0;

			if (t == start[i])
				a = election_step(&devs[i], ELECTION_EV_START, NULL, t);
			else if (t > start[i])
				a = election_step(&devs[i], ELECTION_EV_TIMER, NULL, t);
			for (int j = 0; j < n; j++) {
				if (j == i || t < start[j])
					continue;
				if (a & ELECTION_SEND_QUERY)
					election_step(&devs[j], ELECTION_EV_QUERY, devs[i].self, t);
				if (a & ELECTION_SEND_ANNOUNCE) {
					unsigned b = election_step(&devs[j], ELECTION_EV_ANNOUNCE,
								   devs[i].self, t);
					/* An answer goes out in the same tick. */
					if (b & ELECTION_SEND_ANNOUNCE)
						election_step(&devs[i], ELECTION_EV_ANNOUNCE,
							      devs[j].self, t);
				}
			}
		}
	}
}

/* Exactly one controller, a capable one, and every device agrees on it. */
static void assert_one_controller(struct election *devs, int n)
{
	const char *leader = NULL;

	for (int i = 0; i < n; i++)
		if (devs[i].state == ELECTION_CONTROLLER) {
			assert_null(leader);
			assert_true(devs[i].capable);
			leader = devs[i].self;
		} else {
			assert_int_equal(devs[i].state, ELECTION_NODE);
		}
	assert_non_null(leader);
	for (int i = 0; i < n; i++)
		assert_string_equal(devs[i].controller, leader);
}

/* All declare before hearing anyone, then every announcement reaches every device. */
static void simulate_declare_together(struct election *devs, int n)
{
	unsigned acts[8];

	for (int i = 0; i < n; i++) {
		election_step(&devs[i], ELECTION_EV_START, NULL, 0);
		acts[i] = election_step(&devs[i], ELECTION_EV_TIMER, NULL, P.try_ms);
		assert_true(acts[i] & ELECTION_SEND_ANNOUNCE);
	}
	for (int round = 0; round < 3; round++)
		for (int i = 0; i < n; i++)
			for (int j = 0; j < n; j++)
				if (j != i && devs[i].state == ELECTION_CONTROLLER)
					election_step(&devs[j], ELECTION_EV_ANNOUNCE, devs[i].self,
						      P.try_ms + 1);
}

static void test_random_start_orders_agree(void **state)
{
	static const char *const names[] = {"hub-b", "hub-a", "pi1"};
	struct election devs[3];
	uint64_t start[3];

	(void)state;
	srand(7);
	for (int round = 0; round < 50; round++) {
		for (int i = 0; i < 3; i++) {
			election_init(&devs[i], &P, names[i], i < 2);
			start[i] = (uint64_t)(rand() % 100) * 10;
		}
		simulate(devs, 3, start, 5000);
		assert_one_controller(devs, 3);
	}
}

static void test_simultaneous_start_agrees(void **state)
{
	static const char *const names[] = {"c", "a", "b", "d"};
	struct election devs[4];

	(void)state;
	for (int i = 0; i < 4; i++)
		election_init(&devs[i], &P, names[i], true);
	/* Every device declares in the same tick: the smallest name must win. */
	for (int i = 0; i < 4; i++)
		devs[i].p.tries = 1;
	simulate_declare_together(devs, 4);
	assert_one_controller(devs, 4);
	assert_string_equal(devs[0].controller, "a");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_capable_device_alone_leads),
	    cmocka_unit_test(test_node_role_never_leads),
	    cmocka_unit_test(test_announcement_makes_a_node),
	    cmocka_unit_test(test_two_controllers_converge),
	    cmocka_unit_test(test_out_is_silent),
	    cmocka_unit_test(test_own_messages_ignored),
	    cmocka_unit_test(test_random_start_orders_agree),
	    cmocka_unit_test(test_simultaneous_start_agrees),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
