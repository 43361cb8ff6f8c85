#include "election.h"

#include <stdio.h>
#include <string.h>

#include "log.h"

static const char *const state_names[] = {"out", "discovering", "node", "controller"};

const char *election_state_name(enum election_state s)
{
	return state_names[s];
}

void election_init(struct election *e, const struct election_params *p, const char *self,
		   bool capable)
{
	memset(e, 0, sizeof(*e));
	e->p = *p;
	snprintf(e->self, sizeof(e->self), "%s", self);
	e->capable = capable;
	e->state = ELECTION_OUT;
}

static unsigned become(struct election *e, enum election_state s, const char *controller)
{
	bool changed = e->state != s || strcmp(e->controller, controller) != 0;

	if (changed)
		log_debug("election: %s -> %s (controller '%s')", state_names[e->state],
			  state_names[s], controller);
	e->state = s;
	snprintf(e->controller, sizeof(e->controller), "%s", controller);
	return changed ? ELECTION_CHANGED : 0;
}

static unsigned query(struct election *e, uint64_t now)
{
	e->last_query_ms = now;
	return ELECTION_SEND_QUERY;
}

/* A query to check on a controller we heard, at most one per try_ms. */
static unsigned ask(struct election *e, uint64_t now)
{
	return now >= e->last_query_ms + e->p.try_ms ? query(e, now) : 0;
}

static unsigned discover(struct election *e, uint64_t now)
{
	unsigned a = become(e, ELECTION_DISCOVERING, "");

	e->tries_left = e->p.tries;
	e->deadline_ms = now + e->p.try_ms;
	return a | query(e, now);
}

static unsigned follow(struct election *e, const char *controller, uint64_t now)
{
	e->last_heard_ms = now;
	e->deadline_ms = now + e->p.timeout_ms;
	return become(e, ELECTION_NODE, controller);
}

static unsigned lead(struct election *e, uint64_t now)
{
	e->deadline_ms = now + e->p.heartbeat_ms;
	return become(e, ELECTION_CONTROLLER, e->self) | ELECTION_SEND_ANNOUNCE;
}

/* From one controller to another: the first at once, then at most one per hold_ms. */
static bool may_change(const struct election *e, uint64_t now)
{
	return e->changes == 0 || now >= e->last_change_ms + e->p.hold_ms;
}

static unsigned change(struct election *e, const char *controller, uint64_t now)
{
	e->changes++;
	e->last_change_ms = now;
	return follow(e, controller, now);
}

/* A better controller (a smaller name than ours or our controller's) was heard: move to it on
 * an answer to our question, ask on a mere heartbeat, and neither within hold_ms of a change. */
static unsigned better(struct election *e, enum election_event_type ev, const char *peer,
		       uint64_t now)
{
	if (!may_change(e, now))
		return 0;
	return ev == ELECTION_EV_ANSWER ? change(e, peer, now) : ask(e, now);
}

/* Global events first, then the state's own handling (hostapd's SM_STEP shape). */
unsigned election_step(struct election *e, enum election_event_type ev, const char *peer,
		       uint64_t now)
{
	bool announce = ev == ELECTION_EV_HEARTBEAT || ev == ELECTION_EV_ANSWER;

	if (ev == ELECTION_EV_CERT_INVALID)
		return become(e, ELECTION_OUT, "");
	if (ev == ELECTION_EV_START)
		return discover(e, now);
	if (e->state == ELECTION_OUT || (peer && strcmp(peer, e->self) == 0))
		return 0; /* silent while out; our own broadcasts come back to us */

	switch (e->state) {
	case ELECTION_DISCOVERING:
		if (ev == ELECTION_EV_ANSWER)
			return follow(e, peer, now);
		if (ev != ELECTION_EV_TIMER || now < e->deadline_ms)
			return 0;
		if (--e->tries_left > 0) {
			e->deadline_ms = now + e->p.try_ms;
			return query(e, now);
		}
		return e->capable ? lead(e, now) : discover(e, now);
	case ELECTION_NODE:
		if (announce && strcmp(peer, e->controller) == 0)
			return follow(e, peer, now); /* our controller's heartbeat */
		if (announce && strcmp(peer, e->controller) < 0)
			return better(e, ev, peer, now);
		if (ev == ELECTION_EV_TIMER && now >= e->last_heard_ms + e->p.timeout_ms)
			return discover(e, now);
		return 0;
	case ELECTION_CONTROLLER:
		if (ev == ELECTION_EV_QUERY)
			return ELECTION_SEND_ANNOUNCE;
		/* A smaller name may take over; a larger one is reminded at once that we lead. */
		if (announce && strcmp(peer, e->self) < 0)
			return better(e, ev, peer, now);
		if (announce)
			return ELECTION_SEND_ANNOUNCE;
		if (ev == ELECTION_EV_TIMER && now >= e->deadline_ms) {
			e->deadline_ms = now + e->p.heartbeat_ms;
			return ELECTION_SEND_ANNOUNCE;
		}
		return 0;
	case ELECTION_OUT:
		break;
	}
	return 0;
}
