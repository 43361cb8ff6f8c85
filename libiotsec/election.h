/* Controller election (SPEC 5.1) as a pure state machine: events in, actions out, no I/O.
 *
 * A device starts DISCOVERING: it asks IS_THERE_CONTROLLER `tries` times, `try_ms` apart, each
 * query with a fresh challenge. An I_AM_CONTROLLER that answers our latest challenge makes it a
 * NODE of that controller: a device follows only a controller that has just proved it is there.
 * If nothing answers, a controller-capable device declares itself CONTROLLER and announces
 * I_AM_CONTROLLER every `heartbeat_ms`, and at once in answer to a query; a node-only device keeps
 * asking. Nodes that hear no heartbeat for `timeout_ms` start discovering again.
 *
 * Two controllers converge by one deterministic rule: the smaller device name wins. A device
 * that hears a heartbeat from a smaller name than its controller's (or its own) asks, and moves
 * to it only on an answer to that question. Such a change from one controller to another may
 * happen at most once per `hold_ms`: an insider with a controller certificate and a small name
 * cannot take the home (and make it rebuild its key pool) again and again; when it goes quiet the
 * home moves on through a timeout, which no insider can cause. While the certificate is invalid
 * the device is OUT and says nothing.
 *
 * The caller verifies every message (envelope.h) before it becomes an event here: an announcement
 * reaches election_step() only from a valid controller-role certificate of this home, sent to the
 * broadcast address (so every device hears the same controllers). */
#ifndef IOTSEC_ELECTION_H
#define IOTSEC_ELECTION_H

#include <stdbool.h>
#include <stdint.h>

#include "cert.h"

enum election_state {
	ELECTION_OUT,
	ELECTION_DISCOVERING,
	ELECTION_NODE,
	ELECTION_CONTROLLER,
};

enum election_event_type {
	ELECTION_EV_START,	  /* also: the certificate is valid again */
	ELECTION_EV_TIMER,	  /* the deadline passed */
	ELECTION_EV_QUERY,	  /* IS_THERE_CONTROLLER from a peer */
	ELECTION_EV_HEARTBEAT,	  /* I_AM_CONTROLLER not answering our latest query */
	ELECTION_EV_ANSWER,	  /* I_AM_CONTROLLER answering our latest query */
	ELECTION_EV_CERT_INVALID, /* certd took us out of the home */
};

/* What the caller must do after a step. */
enum election_action {
	ELECTION_SEND_QUERY = 1 << 0,	 /* with a fresh challenge */
	ELECTION_SEND_ANNOUNCE = 1 << 1, /* answering the query being handled, if it is one */
	ELECTION_CHANGED = 1 << 2, /* the controller (or our state) changed: tell subscribers */
};

struct election_params {
	unsigned tries;
	uint64_t try_ms, heartbeat_ms, timeout_ms, hold_ms;
};

struct election {
	struct election_params p;
	char self[CERT_NAME_MAX];
	bool capable; /* our certificate has the controller role */
	enum election_state state;
	char controller[CERT_NAME_MAX]; /* "" when none */
	unsigned tries_left;
	uint64_t last_heard_ms;
	uint64_t last_query_ms;
	uint64_t deadline_ms;	 /* when to deliver ELECTION_EV_TIMER */
	unsigned long changes;	 /* from one controller to another */
	uint64_t last_change_ms; /* of the latest of them */
};

void election_init(struct election *e, const struct election_params *p, const char *self,
		   bool capable);
/* Feed one event at time now_ms; returns a mask of enum election_action. peer is the verified
 * sender's name for QUERY, HEARTBEAT and ANSWER, NULL otherwise. */
unsigned election_step(struct election *e, enum election_event_type ev, const char *peer,
		       uint64_t now_ms);
const char *election_state_name(enum election_state s);

#endif
