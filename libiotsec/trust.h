/* Trust in the home's devices and in what they report (SPEC 7), as the controller's pingd and the
 * simulator see it: pure logic, no I/O, the caller gives the time.
 *
 * Per peer: direct experience h (probe answers and authentication failures), reputation R (how
 * well its reports agreed with what the others saw), and T = (1 - a) h + a R.
 *
 * Reports ("I can reach X" / "I cannot") are judged a round at a time: in one round every
 * reporter's opinion (1 alive, 0 unreachable) is compared with the mean and standard deviation of
 * the others' (the controller's own probe among them); one outside mean +- sd is bad-mouthing
 * (it said unreachable) or good-mouthing (it said alive). A reporter that makes more unsolicited
 * reports in the window than it can have made (one per other device) is ballot stuffing. A flagged
 * reporter is banned from reporting for ban_ms and its reputation drops; reputation recovers
 * slowly, so an on-off liar pays for each lie longer than it gains.
 *
 * Authentication failures that are the device's own (trust_auth_failure()) label it malicious
 * past a threshold; the label stays until trust_forget(). */
#ifndef IOTSEC_TRUST_H
#define IOTSEC_TRUST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cert.h"

#define TRUST_PEERS_MAX	   256 /* KEYSHARE_DEVICES_MAX */
#define TRUST_ROUND_MAX	   32  /* reports judged in one round */
#define TRUST_MIN_REPORTER 0.3 /* a report from a peer trusted less counts for nothing */

enum trust_flag {
	TRUST_BAD_MOUTHING = 1 << 0,
	TRUST_GOOD_MOUTHING = 1 << 1,
	TRUST_BALLOT_STUFFING = 1 << 2,
	TRUST_MALICIOUS = 1 << 3,
};

struct trust_params {
	double weight;		 /* a */
	unsigned auth_failures;	 /* the malicious label's threshold */
	uint64_t window_ms;	 /* ballot stuffing's window */
	uint64_t ban_ms;	 /* how long a flagged reporter is not heard */
};

struct trust_peer {
	char name[CERT_NAME_MAX];
	unsigned ok, failed;	 /* probe outcomes, for h */
	unsigned auth_failures;
	double reputation;	 /* R */
	unsigned flags;		 /* enum trust_flag, every one ever raised */
	uint64_t banned_until;	 /* ms; 0: not banned */
	uint64_t window_start;	 /* ms, of the ballot-stuffing window */
	unsigned window_reports; /* unsolicited reports in it */
};

struct trust {
	struct trust_params p;
	struct trust_peer peer[TRUST_PEERS_MAX];
	size_t n;
};

void trust_init(struct trust *t, const struct trust_params *p);
/* The peer's record, made on first use; NULL when TRUST_PEERS_MAX are known. */
struct trust_peer *trust_peer(struct trust *t, const char *name);
const struct trust_peer *trust_find(const struct trust *t, const char *name);
void trust_forget(struct trust *t, const char *name);

double trust_direct(const struct trust_peer *p);		   /* h */
double trust_value(const struct trust *t, const struct trust_peer *p); /* T */
bool trust_banned(const struct trust_peer *p, uint64_t now);

/* A probe of ours answered (ok) or not. */
void trust_probe(struct trust *t, const char *name, bool ok);
/* An authentication failure that is the peer's own; true when it makes the peer malicious now. */
bool trust_auth_failure(struct trust *t, const char *name, uint64_t now);

/* An unsolicited report from reporter at now, in a home of n devices: false when it is not to be
 * heard (banned, malicious, or ballot stuffing, which this call may flag). */
bool trust_unsolicited(struct trust *t, const char *reporter, size_t n, uint64_t now);

struct trust_report {
	const char *reporter; /* NULL: the controller's own probe */
	bool alive;
};
enum trust_verdict {
	TRUST_KEEP,  /* alive, or not enough trusted confirmations */
	TRUST_EVICT, /* unreachable, confirmed */
};
/* One round of reports on a suspect (the controller's own failed probes included as a report with
 * reporter NULL): the verdict, with needed the distinct trusted confirmations an eviction needs
 * and refuted whether the suspect answered since; flags the liars it finds (bans, reputation) and
 * credits the others. */
enum trust_verdict trust_round(struct trust *t, const struct trust_report *r, size_t n,
			       size_t needed, bool refuted, uint64_t now);

#endif
