/* Trust in the home's devices and in what they report (SPEC 7), as the controller's pingd and the
 * simulator see it: pure logic, no I/O, the caller gives the time (ms, any monotonic origin).
 *
 * Per peer: direct experience h (probe answers and authentication failures), reputation R (how
 * well its reports agreed with what the round found), and T = (1 - a) h + a R.
 *
 * Reports ("I can reach X" / "I cannot") are judged a round at a time: in one round every
 * reporter's opinion (1 alive, 0 unreachable) is compared with the mean and standard deviation of
 * the others', weighted as in the verdict (the controller's own probe weighs 1, a reporter it asked
 * its T, an unasked or untrusted one nothing: unasked colluders cannot shield one another). One
 * outside mean +- sd that also contradicts what the round found (the suspect answered: alive;
 * evicted: unreachable) is judged by what a lost packet can do: it can make an honest device's
 * probes all fail, never make a device answer. So "alive" against an eviction flags good-mouthing
 * at once, while "unreachable" against an answer is a strike that costs a tenth of R, and only
 * TRUST_STRIKES strikes not yet forgiven (one is forgiven per ban_ms) flag bad-mouthing. A
 * reporter that makes more unsolicited reports in the window than it can have made (one per other
 * device) is ballot stuffing. A flagged reporter is banned from reporting for ban_ms and its
 * reputation halves; reputation recovers by a tenth of what it lacks per round it gets right when
 * asked, so an on-off liar pays for each lie longer than it gains, and vouching unasked earns
 * nothing.
 *
 * Authentication failures that are the device's own (trust_auth_failure()) fill a leaky bucket
 * that forgives one per window_ms; auth_failures in it label the device malicious. The label stays
 * until trust_forget(), and a malicious device is never heard again. */
#ifndef IOTSEC_TRUST_H
#define IOTSEC_TRUST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cert.h"

/* A home has at most KEYSHARE_DEVICES_MAX (256) devices; the table holds twice that so that the
 * simulator runs the real code for the 300-device homes of the published figures. */
#define TRUST_PEERS_MAX	   512
#define TRUST_ROUND_MAX	   32  /* reports in one round; a longer round is refused whole */
#define TRUST_MIN_REPORTER 0.3 /* a report from a peer trusted less counts for nothing */
#define TRUST_AUTH_WEIGHT  4   /* in h, an authentication failure weighs as 4 failed probes */
#define TRUST_HISTORY	   64  /* probe outcomes h remembers (older ones fade by halves) */
#define TRUST_DECAY	   0.5 /* a flagged reporter's R is multiplied by this */
#define TRUST_GAIN	   0.1 /* share of what R lacks gained per round right, when asked */
#define TRUST_STRIKE_DECAY 0.9 /* a struck reporter's R: a tenth off, the step TRUST_GAIN gives */
/* Strikes that flag bad-mouthing. At 10% loss all of an honest helper's probes fail about once in
 * 150 (three tries, each ping or answer lost), and a busy round (a ballot stuffer's flood has every
 * device checked) asks each device several times: two such failures within one ban_ms still befell
 * one honest device in two simulated homes, three practically never
 * (tests/bench/bench_trust_sim.c), while a liar is struck every time it lies. */
#define TRUST_STRIKES 3

enum trust_flag {
	TRUST_BAD_MOUTHING = 1 << 0,
	TRUST_GOOD_MOUTHING = 1 << 1,
	TRUST_BALLOT_STUFFING = 1 << 2,
	TRUST_MALICIOUS = 1 << 3,
};

struct trust_params {
	double weight;		/* a, in [0, 1] (pingd.trust_weight_permille / 1000) */
	unsigned auth_failures; /* the malicious label's threshold (0 is taken as 1) */
	uint64_t window_ms;	/* ballot stuffing's window; one auth failure forgiven each */
	uint64_t ban_ms;	/* how long a flagged reporter is not heard */
};

struct trust_peer {
	char name[CERT_NAME_MAX];
	unsigned ok, failed;	 /* probe outcomes, for h */
	unsigned auth_failures;	 /* all of them, for h and for display */
	unsigned auth_recent;	 /* those not yet forgiven, for the label */
	uint64_t auth_start;	 /* ms, when the bucket last leaked (or was empty) */
	double reputation;	 /* R */
	unsigned flags;		 /* enum trust_flag, every one ever raised */
	uint64_t banned_until;	 /* ms; 0: never banned */
	uint64_t window_start;	 /* ms, of the ballot-stuffing window */
	unsigned window_reports; /* unsolicited reports in it */
	unsigned strikes;	 /* "unreachable" against an answer, not yet forgiven */
	uint64_t strike_start;	 /* ms, when that bucket last leaked (or was empty) */
};

struct trust {
	struct trust_params p;
	struct trust_peer peer[TRUST_PEERS_MAX];
	size_t n;
};

/* An empty table with parameters p (copied; weight clamped to [0, 1]). */
void trust_init(struct trust *t, const struct trust_params *p);
/* The peer's record, made on first use (h and R at 0.5); NULL when the name is NULL, empty or
 * not shorter than CERT_NAME_MAX, or TRUST_PEERS_MAX are known. Pointers stay valid until
 * trust_forget(). */
struct trust_peer *trust_peer(struct trust *t, const char *name);
/* The peer's record, or NULL when unknown. */
const struct trust_peer *trust_find(const struct trust *t, const char *name);
/* Drop the peer's record (revoked, released by the administrator): it starts afresh. */
void trust_forget(struct trust *t, const char *name);

/* h = (ok + 1) / (ok + failed + TRUST_AUTH_WEIGHT * auth_failures + 2). */
double trust_direct(const struct trust_peer *p);
/* T = (1 - a) h + a R. */
double trust_value(const struct trust *t, const struct trust_peer *p);
/* Banned from reporting at now. */
bool trust_banned(const struct trust_peer *p, uint64_t now);
/* Whether p's reports count at now: not malicious, not banned, T >= TRUST_MIN_REPORTER. The same
 * test applies to MALICIOUS reports and to choosing helpers. */
bool trust_trusted(const struct trust *t, const struct trust_peer *p, uint64_t now);
/* "bad-mouthing", "good-mouthing", "ballot-stuffing", "malicious" (proto.h's peers verb); NULL
 * for anything else. */
const char *trust_flag_name(enum trust_flag f);

/* A probe of ours answered (ok) or not. Unknown names are made; bad ones ignored. */
void trust_probe(struct trust *t, const char *name, bool ok);
/* An authentication failure that is the peer's own, at now: true exactly when it makes the peer
 * malicious (auth_failures not yet forgiven, one forgiven per window_ms); false after that, and
 * for a bad name. */
bool trust_auth_failure(struct trust *t, const char *name, uint64_t now);

/* An unsolicited report from reporter at now, in a home of n devices (ours included): false when
 * it is not to be heard (bad name, table full, malicious, banned, or the one too many: more than
 * n - 1 in window_ms marks ballot stuffing and bans the reporter). A refused report is not
 * counted. */
bool trust_unsolicited(struct trust *t, const char *reporter, size_t n, uint64_t now);

struct trust_report {
	const char *reporter; /* NULL: the controller's own probe */
	bool alive;
	bool solicited;	  /* the controller asked reporter (PING_REQ); its own counts as asked */
	unsigned flagged; /* out: enum trust_flag raised on reporter by this round, 0 if none */
};
enum trust_verdict {
	TRUST_KEEP,  /* alive, or not enough trusted confirmations */
	TRUST_EVICT, /* unreachable, confirmed */
};
/* One round of reports on target at now: the controller's own (reporter NULL, normally its
 * failed probes), the helpers' (solicited) and any unsolicited ones heard (trust_unsolicited()).
 * Reports from target itself, from bad names, from malicious or banned reporters, and a
 * reporter's reports after its first, are ignored. refuted: target answered since suspicion (a
 * signed PONG, ALIVE or any fresh message), which makes the controller's own opinion "alive".
 *
 * Verdict: TRUST_EVICT when not refuted, at least `needed` distinct trusted (trust_trusted())
 * solicited reporters said unreachable, and over the controller and the trusted solicited
 * reporters the trust-weighted "unreachable" (the controller weighs 1) outweighs "alive".
 * Unsolicited reports are judged but never decide: only those the controller chose do.
 *
 * Judgement: the round found "alive" when refuted, "unreachable" on TRUST_EVICT, nothing
 * otherwise (then nobody is struck, flagged or credited). A reporter, asked or not, with at least 2
 * other opinions that weigh, whose own lies outside their weighted mean +- sd and contradicts the
 * finding: said "alive", it is flagged good-mouthing; said "unreachable", it is struck (R
 * multiplied by TRUST_STRIKE_DECAY), and flagged bad-mouthing at its TRUST_STRIKES-th strike not
 * yet forgiven (one per ban_ms). Flagged (r[i].flagged): banned, its R multiplied by TRUST_DECAY,
 * its strikes cleared. One asked that agrees with the finding gains TRUST_GAIN of what its R lacks
 * (unasked, it gains nothing). More than TRUST_ROUND_MAX reports, or a bad target name:
 * TRUST_KEEP, nobody judged. */
enum trust_verdict trust_round(struct trust *t, const char *target, struct trust_report *r,
			       size_t n, size_t needed, bool refuted, uint64_t now);

#endif
