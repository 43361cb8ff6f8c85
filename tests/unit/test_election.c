/* election: the state machine alone, then several of them on a simulated broadcast network,
 * including an insider with a controller certificate and the smallest name that comes and goes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "election.h"

static const struct election_params P = {
    .tries = 3, .try_ms = 100, .heartbeat_ms = 200, .timeout_ms = 700, .hold_ms = 0};

/* A device that has just declared itself controller (three silent queries). */
static void lead_alone(struct election *e, const struct election_params *p, const char *name)
{
	election_init(e, p, name, true);
	election_step(e, ELECTION_EV_START, NULL, 0);
	for (uint64_t t = 1; t <= p->tries; t++)
		election_step(e, ELECTION_EV_TIMER, NULL, t * p->try_ms);
	assert_int_equal(e->state, ELECTION_CONTROLLER);
}

/* A device that follows controller, having found it by asking at time 0. */
static void follow_at_start(struct election *e, const struct election_params *p, const char *name,
			    bool capable, const char *controller)
{
	election_init(e, p, name, capable);
	election_step(e, ELECTION_EV_START, NULL, 0);
	assert_int_equal(election_step(e, ELECTION_EV_ANSWER, controller, 10), ELECTION_CHANGED);
	assert_int_equal(e->state, ELECTION_NODE);
}

static void test_capable_device_alone_leads(void **state)
{
	struct election e;
	unsigned a;

	(void)state;
	election_init(&e, &P, "hub", true);
	assert_int_equal(e.state, ELECTION_OUT);
	a = election_step(&e, ELECTION_EV_START, NULL, 0);
	assert_int_equal(a, ELECTION_SEND_QUERY | ELECTION_CHANGED);
	assert_int_equal(e.deadline_ms, 100);
	assert_int_equal(election_step(&e, ELECTION_EV_TIMER, NULL, 50), 0); /* too early */
	assert_int_equal(election_step(&e, ELECTION_EV_TIMER, NULL, 100), ELECTION_SEND_QUERY);
	assert_int_equal(election_step(&e, ELECTION_EV_TIMER, NULL, 200), ELECTION_SEND_QUERY);
	a = election_step(&e, ELECTION_EV_TIMER, NULL, 300);
	assert_int_equal(a, ELECTION_SEND_ANNOUNCE | ELECTION_CHANGED);
	assert_int_equal(e.state, ELECTION_CONTROLLER);
	assert_string_equal(e.controller, "hub");
	/* Heartbeats, and an answer to every query. */
	assert_int_equal(election_step(&e, ELECTION_EV_TIMER, NULL, 400), 0);
	assert_int_equal(election_step(&e, ELECTION_EV_TIMER, NULL, 500), ELECTION_SEND_ANNOUNCE);
	assert_int_equal(election_step(&e, ELECTION_EV_QUERY, "pi1", 510), ELECTION_SEND_ANNOUNCE);
	assert_int_equal(e.changes, 0); /* declaring is not a change of controller */
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
		assert_true(a & ELECTION_SEND_QUERY); /* it keeps asking */
		assert_int_equal(e.state, ELECTION_DISCOVERING);
	}
	/* Queries from others are not answered by a device that leads nothing. */
	assert_int_equal(election_step(&e, ELECTION_EV_QUERY, "pi2", 100001), 0);
}

/* Only a controller that answers our question is followed; then its heartbeats keep us, and
 * silence past the timeout sends us looking again. */
static void test_answer_makes_a_node(void **state)
{
	struct election e;

	(void)state;
	follow_at_start(&e, &P, "pi1", true, "hub");
	assert_string_equal(e.controller, "hub");
	assert_int_equal(e.changes, 0); /* found, not changed */
	assert_int_equal(election_step(&e, ELECTION_EV_HEARTBEAT, "hub", 600), 0);
	assert_int_equal(election_step(&e, ELECTION_EV_ANSWER, "hub", 650), 0);
	assert_int_equal(election_step(&e, ELECTION_EV_TIMER, NULL, 1300), 0);
	assert_int_equal(election_step(&e, ELECTION_EV_TIMER, NULL, 1350),
			 ELECTION_SEND_QUERY | ELECTION_CHANGED);
	assert_int_equal(e.state, ELECTION_DISCOVERING);
	assert_string_equal(e.controller, "");
}

/* A heartbeat is not proof that its sender is there for us (it may be a replay within
 * delta_t, or a controller that cannot hear us): however many, it never makes a node. */
static void test_heartbeat_alone_never_makes_a_node(void **state)
{
	struct election e;

	(void)state;
	election_init(&e, &P, "pi1", false);
	election_step(&e, ELECTION_EV_START, NULL, 0);
	for (uint64_t t = 1; t < 5000; t += 7) {
		assert_false(election_step(&e, ELECTION_EV_HEARTBEAT, "hub", t) & ELECTION_CHANGED);
		election_step(&e, ELECTION_EV_TIMER, NULL, t);
		assert_int_equal(e.state, ELECTION_DISCOVERING);
	}
	assert_string_equal(e.controller, "");
	/* A capable device hearing only heartbeats declares itself, then asks the smaller one. */
	election_init(&e, &P, "pi1", true);
	election_step(&e, ELECTION_EV_START, NULL, 0);
	for (uint64_t t = 1; t <= 300; t++)
		election_step(&e, ELECTION_EV_HEARTBEAT, "hub", t);
	assert_int_equal(e.state, ELECTION_DISCOVERING);
	election_step(&e, ELECTION_EV_TIMER, NULL, 100);
	election_step(&e, ELECTION_EV_TIMER, NULL, 200);
	election_step(&e, ELECTION_EV_TIMER, NULL, 300);
	assert_int_equal(e.state, ELECTION_CONTROLLER);
	assert_int_equal(election_step(&e, ELECTION_EV_HEARTBEAT, "hub", 400), ELECTION_SEND_QUERY);
	assert_int_equal(e.state, ELECTION_CONTROLLER);
}

/* A node hearing a smaller controller asks (at most once per try_ms) and moves only when that
 * controller answers; larger names are ignored. */
static void test_better_controller_asked_then_followed(void **state)
{
	struct election e;

	(void)state;
	follow_at_start(&e, &P, "pi1", false, "m-hub");
	assert_int_equal(election_step(&e, ELECTION_EV_HEARTBEAT, "z-hub", 200), 0);
	assert_int_equal(election_step(&e, ELECTION_EV_ANSWER, "z-hub", 210), 0);
	assert_int_equal(election_step(&e, ELECTION_EV_HEARTBEAT, "a-hub", 300),
			 ELECTION_SEND_QUERY);
	assert_string_equal(e.controller, "m-hub");
	assert_int_equal(election_step(&e, ELECTION_EV_HEARTBEAT, "a-hub", 399), 0);
	assert_int_equal(election_step(&e, ELECTION_EV_HEARTBEAT, "a-hub", 400),
			 ELECTION_SEND_QUERY);
	assert_string_equal(e.controller, "m-hub");
	assert_int_equal(election_step(&e, ELECTION_EV_ANSWER, "a-hub", 405), ELECTION_CHANGED);
	assert_string_equal(e.controller, "a-hub");
	assert_int_equal(e.changes, 1);
	assert_int_equal(e.last_change_ms, 405);
	/* The new controller's heartbeats keep us; the old one is now a larger name. */
	assert_int_equal(election_step(&e, ELECTION_EV_HEARTBEAT, "m-hub", 500), 0);
	assert_int_equal(election_step(&e, ELECTION_EV_HEARTBEAT, "a-hub", 1000), 0);
	assert_int_equal(election_step(&e, ELECTION_EV_TIMER, NULL, 1699), 0);
	assert_string_equal(e.controller, "a-hub");
}

/* A controller reminds a larger one at once that it leads, asks a smaller one, and steps down
 * only on its answer. */
static void test_controller_steps_down_on_answer(void **state)
{
	struct election b;

	(void)state;
	lead_alone(&b, &P, "b-hub");
	assert_int_equal(election_step(&b, ELECTION_EV_HEARTBEAT, "c-hub", 310),
			 ELECTION_SEND_ANNOUNCE);
	assert_int_equal(b.state, ELECTION_CONTROLLER);
	assert_int_equal(election_step(&b, ELECTION_EV_HEARTBEAT, "a-hub", 420),
			 ELECTION_SEND_QUERY);
	assert_int_equal(b.state, ELECTION_CONTROLLER);
	assert_int_equal(election_step(&b, ELECTION_EV_ANSWER, "a-hub", 425), ELECTION_CHANGED);
	assert_int_equal(b.state, ELECTION_NODE);
	assert_string_equal(b.controller, "a-hub");
	assert_int_equal(b.changes, 1);
	/* A node hearing a larger controller keeps the smaller one, and does not answer. */
	assert_int_equal(election_step(&b, ELECTION_EV_HEARTBEAT, "c-hub", 430), 0);
	assert_int_equal(election_step(&b, ELECTION_EV_QUERY, "pi1", 430), 0);
	assert_string_equal(b.controller, "a-hub");
}

/* From one controller to another at most once per hold_ms (the first change is free), in NODE
 * and in CONTROLLER state; the hold neither asks nor moves, and it ends. */
static void test_hold_limits_changes(void **state)
{
	struct election_params p = P;
	struct election n, c;

	(void)state;
	p.hold_ms = 10000;
	follow_at_start(&n, &p, "pi1", false, "m-hub");
	assert_int_equal(election_step(&n, ELECTION_EV_ANSWER, "c-hub", 1000), ELECTION_CHANGED);
	assert_int_equal(n.changes, 1);
	for (uint64_t t = 1100; t < 11000; t += 100) {
		assert_int_equal(election_step(&n, ELECTION_EV_HEARTBEAT, "b-hub", t), 0);
		assert_int_equal(election_step(&n, ELECTION_EV_ANSWER, "b-hub", t + 1), 0);
		election_step(&n, ELECTION_EV_HEARTBEAT, "c-hub", t + 2); /* ours stays alive */
	}
	assert_string_equal(n.controller, "c-hub");
	assert_int_equal(election_step(&n, ELECTION_EV_HEARTBEAT, "b-hub", 11000),
			 ELECTION_SEND_QUERY);
	assert_int_equal(election_step(&n, ELECTION_EV_ANSWER, "b-hub", 11001), ELECTION_CHANGED);
	assert_int_equal(n.changes, 2);

	/* A controller that stepped down and leads again (its controller died) is held too. */
	lead_alone(&c, &p, "m-hub");
	assert_int_equal(election_step(&c, ELECTION_EV_ANSWER, "c-hub", 500), ELECTION_CHANGED);
	election_step(&c, ELECTION_EV_TIMER, NULL, 1200); /* c-hub silent: look again */
	for (uint64_t t = 1300; t <= 1500; t += 100)
		election_step(&c, ELECTION_EV_TIMER, NULL, t);
	assert_int_equal(c.state, ELECTION_CONTROLLER);
	assert_int_equal(election_step(&c, ELECTION_EV_HEARTBEAT, "b-hub", 2000), 0);
	assert_int_equal(election_step(&c, ELECTION_EV_ANSWER, "b-hub", 2001), 0);
	assert_int_equal(c.state, ELECTION_CONTROLLER);
	assert_int_equal(election_step(&c, ELECTION_EV_HEARTBEAT, "b-hub", 10500),
			 ELECTION_SEND_QUERY);
}

static void test_out_is_silent(void **state)
{
	struct election e;

	(void)state;
	lead_alone(&e, &P, "hub");
	assert_int_equal(election_step(&e, ELECTION_EV_CERT_INVALID, NULL, 305), ELECTION_CHANGED);
	assert_string_equal(e.controller, "");
	assert_int_equal(election_step(&e, ELECTION_EV_CERT_INVALID, NULL, 306), 0);
	assert_int_equal(election_step(&e, ELECTION_EV_TIMER, NULL, 1000), 0);
	assert_int_equal(election_step(&e, ELECTION_EV_QUERY, "pi1", 1000), 0);
	assert_int_equal(election_step(&e, ELECTION_EV_HEARTBEAT, "a", 1000), 0);
	assert_int_equal(election_step(&e, ELECTION_EV_ANSWER, "a", 1000), 0);
	assert_int_equal(e.state, ELECTION_OUT);
	assert_int_equal(election_step(&e, ELECTION_EV_START, NULL, 2000),
			 ELECTION_SEND_QUERY | ELECTION_CHANGED);
	assert_int_equal(e.state, ELECTION_DISCOVERING);
}

/* Our own broadcasts come back to us: they must change nothing, in any state. */
static void test_own_messages_ignored(void **state)
{
	struct election e;

	(void)state;
	election_init(&e, &P, "hub", true);
	election_step(&e, ELECTION_EV_START, NULL, 0);
	assert_int_equal(election_step(&e, ELECTION_EV_ANSWER, "hub", 10), 0);
	assert_int_equal(election_step(&e, ELECTION_EV_HEARTBEAT, "hub", 10), 0);
	assert_int_equal(e.state, ELECTION_DISCOVERING);
	lead_alone(&e, &P, "hub");
	assert_int_equal(election_step(&e, ELECTION_EV_QUERY, "hub", 310), 0);
	assert_int_equal(election_step(&e, ELECTION_EV_HEARTBEAT, "hub", 310), 0);
	assert_int_equal(election_step(&e, ELECTION_EV_ANSWER, "hub", 310), 0);
	assert_int_equal(e.state, ELECTION_CONTROLLER);
	assert_int_equal(e.changes, 0);
}

/* The simulated network: every message reaches every device (its sender too) at once. A query
 * from device i is answered by every controller; an answer is ELECTION_EV_ANSWER for i (if it
 * answers i's latest query) and ELECTION_EV_HEARTBEAT for everyone else. An optional insider,
 * not a state machine but a script, heartbeats and answers while present, and is silent
 * otherwise. Timers fire when a device's deadline_ms comes. */
#define NMAX	  8
#define QMAX	  4096
#define INSIDER	  (-2)
#define HEARTBEAT (-1)

struct msg {
	bool query;
	int from, to; /* device index or INSIDER; to: HEARTBEAT or the querier answered */
	unsigned serial;
};

struct net {
	int n;
	struct election dev[NMAX];
	uint64_t start[NMAX];
	bool up[NMAX];
	unsigned serial[NMAX]; /* of each device's latest query */
	int order[NMAX];       /* the order devices get each event in */
	const char *insider;
	struct msg q[QMAX];
	size_t head, tail;
	uint64_t min_gap[NMAX]; /* shortest time between two counted changes */
	unsigned long handovers[NMAX];
	char last_named[NMAX][CERT_NAME_MAX];
};

static const char *name_of(const struct net *net, int i)
{
	return i == INSIDER ? net->insider : net->dev[i].self;
}

static void push(struct net *net, struct msg m)
{
	if (net->tail == QMAX)
		fail_msg("message storm: more than %d messages in one tick", QMAX);
	net->q[net->tail++] = m;
}

/* One event into device i, its actions onto the network, and bookkeeping on changes. */
static void step(struct net *net, int i, enum election_event_type ev, const struct msg *m,
		 uint64_t now)
{
	struct election *e = &net->dev[i];
	unsigned long before = e->changes;
	uint64_t last = e->last_change_ms;
	unsigned a = election_step(e, ev, m ? name_of(net, m->from) : NULL, now);

	if (a & ELECTION_SEND_QUERY)
		push(net, (struct msg){.query = true, .from = i, .serial = ++net->serial[i]});
	if (a & ELECTION_SEND_ANNOUNCE)
		push(net, ev == ELECTION_EV_QUERY
			      ? (struct msg){.from = i, .to = m->from, .serial = m->serial}
			      : (struct msg){.from = i, .to = HEARTBEAT});
	if (e->changes != before && before > 0 && now - last < net->min_gap[i])
		net->min_gap[i] = now - last;
	/* A hand-over: from one named controller to another, through discovery or not. */
	if (e->controller[0] && strcmp(e->controller, net->last_named[i]) != 0) {
		if (net->last_named[i][0])
			net->handovers[i]++;
		memcpy(net->last_named[i], e->controller, strlen(e->controller) + 1);
	}
}

static void deliver(struct net *net, const struct msg *m, uint64_t now)
{
	for (int k = 0; k < net->n; k++) {
		int j = net->order[k];

		if (!net->up[j])
			continue;
		if (m->query)
			step(net, j, ELECTION_EV_QUERY, m, now);
		else if (m->to == j && m->serial == net->serial[j])
			step(net, j, ELECTION_EV_ANSWER, m, now);
		else
			step(net, j, ELECTION_EV_HEARTBEAT, m, now);
	}
}

static void net_init(struct net *net, int n, const char *const *names, const bool *capable,
		     const struct election_params *p)
{
	memset(net, 0, sizeof(*net));
	net->n = n;
	for (int i = 0; i < n; i++) {
		election_init(&net->dev[i], p, names[i], capable[i]);
		net->order[i] = i;
		net->min_gap[i] = UINT64_MAX;
	}
}

/* Run from..until in 10 ms ticks; present(t) says whether the insider is there. */
static void run(struct net *net, uint64_t from, uint64_t until, bool (*present)(uint64_t))
{
	for (uint64_t t = from; t <= until; t += 10) {
		bool there = present && present(t);

		for (int k = 0; k < net->n; k++) {
			int i = net->order[k];

			if (!net->up[i] && t >= net->start[i]) {
				net->up[i] = true;
				step(net, i, ELECTION_EV_START, NULL, t);
			} else if (net->up[i] && t >= net->dev[i].deadline_ms) {
				step(net, i, ELECTION_EV_TIMER, NULL, t);
			}
		}
		if (there && t % P.heartbeat_ms == 0)
			push(net, (struct msg){.from = INSIDER, .to = HEARTBEAT});
		while (net->head < net->tail) {
			struct msg m = net->q[net->head++];

			deliver(net, &m, t);
			if (m.query && there)
				push(net, (struct msg){
					      .from = INSIDER, .to = m.from, .serial = m.serial});
		}
		net->head = net->tail = 0;
	}
}

/* Exactly one controller, a capable one, and every device agrees on it; returns its name. */
static const char *one_controller(const struct net *net)
{
	const char *leader = NULL;

	for (int i = 0; i < net->n; i++)
		if (net->dev[i].state == ELECTION_CONTROLLER) {
			if (leader)
				fail_msg("two controllers: %s and %s", leader, net->dev[i].self);
			assert_true(net->dev[i].capable);
			leader = net->dev[i].self;
		} else if (net->dev[i].state != ELECTION_NODE) {
			fail_msg("%s is %s", net->dev[i].self,
				 election_state_name(net->dev[i].state));
		}
	assert_non_null(leader);
	for (int i = 0; i < net->n; i++)
		if (strcmp(net->dev[i].controller, leader) != 0)
			fail_msg("%s follows '%s', not %s", net->dev[i].self,
				 net->dev[i].controller, leader);
	return leader;
}

static void shuffle(int *a, int n)
{
	for (int i = n - 1; i > 0; i--) {
		int j = rand() % (i + 1), t = a[i];

		a[i] = a[j], a[j] = t;
	}
}

static void test_random_start_orders_agree(void **state)
{
	static const char *const names[] = {"hub-b", "hub-a", "pi1", "pi2", "hub-c"};
	static const bool capable[] = {true, true, false, false, true};
	struct net net;

	(void)state;
	srand(7);
	for (int round = 0; round < 200; round++) {
		net_init(&net, 5, names, capable, &P);
		for (int i = 0; i < 5; i++)
			net.start[i] = (uint64_t)(rand() % 100) * 10;
		shuffle(net.order, 5);
		run(&net, 0, 5000, NULL);
		one_controller(&net);
		/* Settled: nothing changes any more. */
		for (int i = 0; i < 5; i++)
			net.handovers[i] = 0;
		run(&net, 5010, 20000, NULL);
		one_controller(&net);
		for (int i = 0; i < 5; i++)
			assert_int_equal(net.handovers[i], 0);
	}
}

/* Every device declares in the same tick: the smallest name must win, whatever the order in
 * which devices hear each other; with a long hold too (through a timeout, then). */
static void simultaneous(uint64_t hold_ms, uint64_t until)
{
	static const char *const names[] = {"c", "a", "b", "d", "e"};
	static const bool capable[] = {true, true, true, true, true};
	struct election_params p = P;
	struct net net;

	p.hold_ms = hold_ms;
	srand(3);
	for (int round = 0; round < 50; round++) {
		net_init(&net, 5, names, capable, &p);
		shuffle(net.order, 5);
		run(&net, 0, until, NULL);
		assert_string_equal(one_controller(&net), "a");
	}
}

static void test_simultaneous_declarations_converge(void **state)
{
	(void)state;
	simultaneous(0, 1000);
	simultaneous(3600000, 3000);
}

/* The insider "a-evil" holds a valid controller certificate and the smallest name. It is there
 * for 1.5 s out of every 4 s (long enough for everyone to time out on it in between). */
static bool comes_and_goes(uint64_t t)
{
	return t >= 2000 && t < 202000 && (t - 2000) % 4000 < 1500;
}

/* The changes it causes: without a hold, one per visit; with one, at most one per hold_ms. */
static void insider(uint64_t hold_ms, unsigned long *ret_changes, struct net *net)
{
	static const char *const names[] = {"ctl1", "pi1", "pi2"};
	static const bool capable[] = {true, false, false};
	struct election_params p = P;

	p.hold_ms = hold_ms;
	net_init(net, 3, names, capable, &p);
	net->insider = "a-evil";
	run(net, 0, 230000, comes_and_goes);
	/* Gone for good: the home is back with its real controller. */
	assert_string_equal(one_controller(net), "ctl1");
	for (int i = 0; i < 3; i++)
		ret_changes[i] = net->dev[i].changes;
}

static void test_insider_coming_and_going_is_held(void **state)
{
	const uint64_t hold = 10000, span = 200000; /* 50 visits */
	unsigned long changes[3];
	struct net net;

	(void)state;
	/* Without a hold the attack works: every visit moves the home (so the test can tell). */
	insider(0, changes, &net);
	for (int i = 0; i < 3; i++)
		assert_in_range(changes[i], 45, 50);
	insider(hold, changes, &net);
	for (int i = 0; i < 3; i++) {
		if (changes[i] < 1 || changes[i] > span / hold + 1)
			fail_msg("%s changed controller %lu times", net.dev[i].self, changes[i]);
		if (net.min_gap[i] < hold)
			fail_msg("%s changed twice %lu ms apart", net.dev[i].self,
				 (unsigned long)net.min_gap[i]);
		/* Each held change is a hand-over to the insider and one back, no more. */
		assert_true(net.handovers[i] <= 2 * changes[i]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_capable_device_alone_leads),
	    cmocka_unit_test(test_node_role_never_leads),
	    cmocka_unit_test(test_answer_makes_a_node),
	    cmocka_unit_test(test_heartbeat_alone_never_makes_a_node),
	    cmocka_unit_test(test_better_controller_asked_then_followed),
	    cmocka_unit_test(test_controller_steps_down_on_answer),
	    cmocka_unit_test(test_hold_limits_changes),
	    cmocka_unit_test(test_out_is_silent),
	    cmocka_unit_test(test_own_messages_ignored),
	    cmocka_unit_test(test_random_start_orders_agree),
	    cmocka_unit_test(test_simultaneous_declarations_converge),
	    cmocka_unit_test(test_insider_coming_and_going_is_held),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
