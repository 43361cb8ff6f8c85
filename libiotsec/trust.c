/* Trust in devices and in their reports (SPEC 7): the contract is in trust.h. */
#include <limits.h>
#include <math.h>
#include <string.h>

#include "trust.h"

/* Two opinions on the boundary of mean +- sd (an even split) are inside: only a clear minority
 * is flagged, whatever the rounding. */
#define EPSILON 1e-9

static bool name_ok(const char *name)
{
	return name != NULL && name[0] != '\0' && strnlen(name, CERT_NAME_MAX) < CERT_NAME_MAX;
}

/* now + d, without wrapping past the end of time. */
static uint64_t later(uint64_t now, uint64_t d)
{
	return now > UINT64_MAX - d ? UINT64_MAX : now + d;
}

/* Whether a window that started at start (count events in it so far) is over at now. */
static bool window_over(uint64_t start, unsigned count, uint64_t now, uint64_t window)
{
	return count == 0 || now >= later(start, window);
}

/* A leaky bucket of count events since start: one forgiven per period, at now. A clock that goes
 * back forgives nothing. The caller adds the new event. */
static void leak(unsigned *count, uint64_t *start, uint64_t now, uint64_t period)
{
	if (*count == 0 || now < *start) {
		*start = now;
	} else if (period > 0) {
		uint64_t forgiven = (now - *start) / period;

		if (forgiven >= *count) {
			*count = 0;
			*start = now;
		} else {
			*count -= (unsigned)forgiven;
			*start += forgiven * period;
		}
	}
}

void trust_init(struct trust *t, const struct trust_params *p)
{
	memset(t, 0, sizeof(*t));
	t->p = *p;
	/* Written so that NaN becomes 0 as well. */
	if (!(t->p.weight >= 0.0))
		t->p.weight = 0.0;
	if (t->p.weight > 1.0)
		t->p.weight = 1.0;
	if (t->p.auth_failures == 0)
		t->p.auth_failures = 1;
}

const struct trust_peer *trust_find(const struct trust *t, const char *name)
{
	if (!name_ok(name))
		return NULL;
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->peer[i].name, name) == 0)
			return &t->peer[i];
	return NULL;
}

struct trust_peer *trust_peer(struct trust *t, const char *name)
{
	struct trust_peer *p = (struct trust_peer *)trust_find(t, name);

	if (p != NULL || !name_ok(name) || t->n == TRUST_PEERS_MAX)
		return p;
	p = &t->peer[t->n++];
	memset(p, 0, sizeof(*p));
	memcpy(p->name, name, strlen(name) + 1);
	/* A stranger is neither trusted nor distrusted: h and R both start at 0.5. */
	p->reputation = 0.5;
	return p;
}

void trust_forget(struct trust *t, const char *name)
{
	const struct trust_peer *p = trust_find(t, name);
	size_t i;

	if (p == NULL)
		return;
	i = (size_t)(p - t->peer);
	memmove(&t->peer[i], &t->peer[i + 1], (t->n - i - 1) * sizeof(t->peer[0]));
	t->n--;
}

double trust_direct(const struct trust_peer *p)
{
	double bad = (double)p->failed + TRUST_AUTH_WEIGHT * (double)p->auth_failures;

	return ((double)p->ok + 1.0) / ((double)p->ok + bad + 2.0);
}

double trust_value(const struct trust *t, const struct trust_peer *p)
{
	return (1.0 - t->p.weight) * trust_direct(p) + t->p.weight * p->reputation;
}

bool trust_banned(const struct trust_peer *p, uint64_t now)
{
	return now < p->banned_until;
}

bool trust_trusted(const struct trust *t, const struct trust_peer *p, uint64_t now)
{
	return !(p->flags & TRUST_MALICIOUS) && !trust_banned(p, now) &&
	       trust_value(t, p) >= TRUST_MIN_REPORTER;
}

const char *trust_flag_name(enum trust_flag f)
{
	switch (f) {
	case TRUST_BAD_MOUTHING:
		return "bad-mouthing";
	case TRUST_GOOD_MOUTHING:
		return "good-mouthing";
	case TRUST_BALLOT_STUFFING:
		return "ballot-stuffing";
	case TRUST_MALICIOUS:
		return "malicious";
	}
	return NULL;
}

void trust_probe(struct trust *t, const char *name, bool ok)
{
	struct trust_peer *p = trust_peer(t, name);

	if (p == NULL)
		return;
	if (ok)
		p->ok++;
	else
		p->failed++;
	/* h follows what the device does now: a year of answers does not hide a week of silence. */
	if (p->ok + p->failed > TRUST_HISTORY) {
		p->ok /= 2;
		p->failed /= 2;
	}
}

bool trust_auth_failure(struct trust *t, const char *name, uint64_t now)
{
	struct trust_peer *p = trust_peer(t, name);

	if (p == NULL)
		return false;
	if (p->auth_failures < UINT_MAX)
		p->auth_failures++;
	if (p->flags & TRUST_MALICIOUS)
		return false;
	/* A leaky bucket: each window_ms forgives one. A device failing more often than that is
	 * labelled sooner or later, while an honest device's rare failure (a message held up past
	 * the freshness limit) never adds up to the label over months. */
	leak(&p->auth_recent, &p->auth_start, now, t->p.window_ms);
	if (++p->auth_recent < t->p.auth_failures)
		return false;
	p->flags |= TRUST_MALICIOUS;
	return true;
}

/* A reporter caught lying: not heard for ban_ms, and its reputation halves. */
static void raise_flag(struct trust *t, struct trust_peer *p, enum trust_flag f, uint64_t now)
{
	p->flags |= f;
	p->banned_until = later(now, t->p.ban_ms);
	p->reputation *= TRUST_DECAY;
}

/* A report contradicted what the round found, from outside the others' mean +- sd: true when
 * that flags the reporter. A lost packet can make every probe of an honest helper fail, but it
 * never makes a device answer (a PONG is signed by the target over the prober's nonce): "alive"
 * against an eviction is a lie, flagged at once; "unreachable" against an answer may be bad luck,
 * a strike that costs a step of R, and only TRUST_STRIKES of them not yet forgiven (one per
 * ban_ms) flag. The strikes are spent by the flag: the ban is their price. */
static bool contradicted(struct trust *t, struct trust_peer *p, enum trust_flag f, uint64_t now)
{
	if (f == TRUST_BAD_MOUTHING) {
		leak(&p->strikes, &p->strike_start, now, t->p.ban_ms);
		if (++p->strikes < TRUST_STRIKES) {
			p->reputation *= TRUST_STRIKE_DECAY;
			return false;
		}
	}
	p->strikes = 0;
	raise_flag(t, p, f, now);
	return true;
}

bool trust_unsolicited(struct trust *t, const char *reporter, size_t n, uint64_t now)
{
	struct trust_peer *p = trust_peer(t, reporter);
	size_t most = n > 1 ? n - 1 : 0;

	if (p == NULL || (p->flags & TRUST_MALICIOUS) || trust_banned(p, now))
		return false;
	if (window_over(p->window_start, p->window_reports, now, t->p.window_ms)) {
		p->window_start = now;
		p->window_reports = 0;
	}
	/* One report per other device in a window is all an honest device can have to say. */
	if (p->window_reports >= most) {
		raise_flag(t, p, TRUST_BALLOT_STUFFING, now);
		return false;
	}
	p->window_reports++;
	return true;
}

enum trust_verdict trust_round(struct trust *t, const char *target, struct trust_report *r,
			       size_t n, size_t needed, bool refuted, uint64_t now)
{
	struct trust_peer *who[TRUST_ROUND_MAX]; /* NULL: the controller */
	size_t at[TRUST_ROUND_MAX];		 /* index in r */
	double op[TRUST_ROUND_MAX];		 /* 1 alive, 0 unreachable */
	double w[TRUST_ROUND_MAX];		 /* weight in the verdict and in the others' mean */
	size_t m = 0, weighed = 0, confirmations = 0;
	double alive = 0.0, unreachable = 0.0, found;
	bool controller = false;
	enum trust_verdict v;

	for (size_t i = 0; i < n; i++)
		r[i].flagged = 0;
	if (n > TRUST_ROUND_MAX || !name_ok(target))
		return TRUST_KEEP;

	/* The opinions heard, each reporter once, with their weights. */
	for (size_t i = 0; i < n; i++) {
		struct trust_peer *p = NULL;
		bool dup = false;

		if (r[i].reporter == NULL) {
			if (controller)
				continue;
			controller = true;
		} else {
			if (!name_ok(r[i].reporter) || strcmp(r[i].reporter, target) == 0)
				continue;
			p = trust_peer(t, r[i].reporter);
			if (p == NULL || (p->flags & TRUST_MALICIOUS) || trust_banned(p, now))
				continue;
			for (size_t j = 0; j < m; j++)
				dup |= who[j] == p;
			if (dup)
				continue;
		}
		who[m] = p;
		at[m] = i;
		/* A suspect that answered is alive, whatever our probes said before. */
		op[m] = (p == NULL && refuted) || r[i].alive ? 1.0 : 0.0;
		/* Only the controller and the trusted reporters it chose weigh: unasked reports,
		 * and those of peers trusted too little, are judged but decide nothing. */
		w[m] = p == NULL ? 1.0 : 0.0;
		if (p != NULL && r[i].solicited && trust_value(t, p) >= TRUST_MIN_REPORTER) {
			w[m] = trust_value(t, p);
			confirmations += op[m] == 0.0;
		}
		if (op[m] > 0.0)
			alive += w[m];
		else
			unreachable += w[m];
		weighed += w[m] > 0.0;
		m++;
	}

	v = !refuted && confirmations >= needed && unreachable > alive ? TRUST_EVICT : TRUST_KEEP;
	/* Judge only against what the round found: an undecided round proves nobody wrong. */
	if (!refuted && v == TRUST_KEEP)
		return v;
	found = refuted ? 1.0 : 0.0;

	for (size_t j = 0; j < m; j++) {
		double others, mean, sd;
		enum trust_flag f;

		if (who[j] == NULL)
			continue;
		if (op[j] == found) {
			/* Earned only when asked: vouching unasked for every suspect would be right
			 * most of the time (most suspects lost a packet) and buy a liar the trust
			 * that makes it a helper. */
			if (r[at[j]].solicited)
				who[j]->reputation += (1.0 - who[j]->reputation) * TRUST_GAIN;
			continue;
		}
		/* At least two other opinions that weigh, or there is no "the others" to be
		 * outside. */
		if (weighed - (w[j] > 0.0) < 2)
			continue;
		/* Leave-one-out, weighted; opinions are 0 or 1, so the variance is mean (1 - mean).
		 */
		others = alive + unreachable - w[j];
		mean = (alive - op[j] * w[j]) / others;
		sd = sqrt(fmax(0.0, mean * (1.0 - mean)));
		if (op[j] >= mean - sd - EPSILON && op[j] <= mean + sd + EPSILON)
			continue;
		f = op[j] > 0.0 ? TRUST_GOOD_MOUTHING : TRUST_BAD_MOUTHING;
		if (contradicted(t, who[j], f, now))
			r[at[j]].flagged = f;
	}
	return v;
}
