/* Trust simulator (SPEC 7): the real libiotsec/trust code (trust_probe, trust_auth_failure,
 * trust_unsolicited, trust_round) run by a simulated controller over homes of 50, 100, 200 and
 * 300 devices, with x% of the devices malicious of each kind and y% of the messages lost.
 *
 * Kinds: forgers (two forged or replayed messages a round on their own authenticated links),
 * bad-mouthers (two unsolicited "unreachable" reports a round on healthy devices, and
 * "unreachable" when asked), good-mouthers (vouch, unasked, for every device the controller
 * suspects, and "alive" when asked), ballot stuffers (2n unsolicited reports a round, where n - 1
 * is all one can have to say), on-off liars (four rounds honest, four rounds saying the opposite of
 * what they see). Honest devices talk to a random peer now and then and report it, unasked, when
 * three tries fail; one of their messages in a thousand arrives stale (an authentication failure of
 * their own); about 2% of them go missing for good during the run.
 *
 * Each round (pingd.interval_ms, 20 min; the window 20 min and bans 60 min, pingd's defaults) the
 * controller probes every device not quarantined, up to three tries, each probe and its answer
 * lost at y%; a device that fails all three, or one reported unreachable, is checked: SUSPECT
 * broadcast (the device refutes if it hears it and its ALIVE arrives), three helpers asked (drawn
 * among the trusted, the more trusted the likelier; not suspect), then trust_round with two
 * confirmations needed. Eviction and the malicious label quarantine the device.
 *
 * Per configuration: malicious devices detected (a forger labelled malicious, a liar flagged for
 * its own kind of lie), false positives (honest devices labelled, or evicted while up), honest
 * devices struck (a report that lost packets made look like a lie: a step of reputation) and
 * flagged (strikes enough for a ban, never a label) of all the honest ones, missing devices
 * evicted, time to detect. Deterministic (fixed seeds; an argument N > 0 draws other homes);
 * fails only if the simulation itself is broken, never on a figure. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trust.h"

#define ROUNDS	      40
#define INTERVAL_MS   (20 * 60 * 1000ULL)
#define TRIES	      3
#define HELPERS	      3
#define CONFIRMATIONS 2
#define MESSAGES      4	   /* a device's messages to the controller a round */
#define STALE	      1e-3 /* share of an honest device's messages that arrive stale */
#define TALK	      0.2  /* chance an honest device talks to a random peer in a round */
#define GONE_PERMILLE 20
#define PENDING_MAX   (TRUST_ROUND_MAX - 1 - HELPERS)
#define DEVICES_MAX   300

enum kind { HONEST, FORGER, BAD_MOUTHER, GOOD_MOUTHER, STUFFER, ON_OFF, KINDS };

struct dev {
	char name[32];
	struct trust_peer *p;
	enum kind kind;
	int gone_round; /* -1: never goes */
	bool quarantined, suspect;
	bool struck;  /* a report of its own contradicted a round, at least once */
	int detected; /* round the kind's flag or label was first seen, -1: not yet */
	struct trust_report pending[PENDING_MAX];
	size_t n_pending;
};

struct sim {
	size_t n;
	double loss;
	uint64_t rng, now;
	int round;
	struct dev dev[DEVICES_MAX];
	struct trust *t;
	/* results */
	int honest, honest_labelled, honest_evicted_up, malicious_evicted_up, honest_struck,
	    honest_flagged;
	int gone, gone_evicted;
};

static uint64_t next(struct sim *s)
{
	/* xorshift64*: deterministic and the same on every machine. */
	s->rng ^= s->rng >> 12;
	s->rng ^= s->rng << 25;
	s->rng ^= s->rng >> 27;
	return s->rng * 0x2545F4914F6CDD1DULL;
}

static double uniform(struct sim *s)
{
	return (double)(next(s) >> 11) / 9007199254740992.0;
}

static bool lost(struct sim *s)
{
	return uniform(s) < s->loss;
}

static size_t pick(struct sim *s, size_t n)
{
	return (size_t)(next(s) % n);
}

static bool up(const struct sim *s, size_t i)
{
	return s->dev[i].gone_round < 0 || s->round < s->dev[i].gone_round;
}

static struct trust_peer *peer(struct sim *s, size_t i)
{
	return s->dev[i].p;
}

static bool lying(const struct sim *s, size_t i)
{
	switch (s->dev[i].kind) {
	case BAD_MOUTHER:
	case GOOD_MOUTHER:
		return true;
	case ON_OFF:
		return s->round / 4 % 2 == 1;
	default:
		return false;
	}
}

/* A probe from anyone to i, up to TRIES times: ping and answer each lost at loss. */
static bool reach(struct sim *s, size_t i, bool controller)
{
	for (int k = 0; k < TRIES; k++) {
		bool ok = up(s, i) && !lost(s) && !lost(s);

		if (controller)
			trust_probe(s->t, s->dev[i].name, ok);
		if (ok)
			return true;
	}
	return false;
}

/* An unsolicited report from i on j reaches the controller, which hears it or not. */
static void report(struct sim *s, size_t i, size_t j, bool alive)
{
	struct dev *d = &s->dev[j];

	if (j == 0 || j == i || d->quarantined || lost(s) ||
	    !trust_unsolicited(s->t, s->dev[i].name, s->n, s->now))
		return;
	if (d->n_pending < PENDING_MAX)
		d->pending[d->n_pending++] =
		    (struct trust_report){.reporter = s->dev[i].name, .alive = alive};
}

static void setup(struct sim *s, size_t n, unsigned per_kind_pct, double loss, uint64_t seed)
{
	static const struct trust_params p = {
	    .weight = 0.5, .auth_failures = 5, .window_ms = INTERVAL_MS, .ban_ms = 3 * INTERVAL_MS};
	size_t order[DEVICES_MAX], per_kind = (n * per_kind_pct + 50) / 100, at = 0;
	struct trust *t = s->t;

	memset(s, 0, sizeof(*s));
	s->t = t;
	s->n = n;
	s->loss = loss;
	s->rng = seed;
	trust_init(s->t, &p);
	for (size_t i = 0; i < n; i++) {
		snprintf(s->dev[i].name, sizeof(s->dev[i].name), "pi%zu", i);
		s->dev[i].gone_round = -1;
		s->dev[i].detected = -1;
		order[i] = i;
		/* Made once: records never move here (nothing is forgotten). */
		if ((s->dev[i].p = trust_peer(s->t, s->dev[i].name)) == NULL) {
			fprintf(stderr, "trust_sim: no record for %s\n", s->dev[i].name);
			exit(1);
		}
	}
	/* Device 0 is the controller, honest; the others are shuffled into their kinds. */
	for (size_t i = n - 1; i > 1; i--) {
		size_t j = 1 + pick(s, i), tmp = order[i];

		order[i] = order[j];
		order[j] = tmp;
	}
	for (int k = FORGER; k < KINDS; k++)
		for (size_t c = 0; c < (per_kind ? per_kind : 1); c++)
			s->dev[order[1 + at++]].kind = (enum kind)k;
	for (size_t c = 0; c < (n * GONE_PERMILLE + 999) / 1000; c++) {
		s->dev[order[1 + at++]].gone_round = 5 + (int)pick(s, ROUNDS - 15);
		s->gone++;
	}
}

/* An eviction: right if the device is gone, a false positive if it is up. */
static void quarantine(struct sim *s, size_t j)
{
	s->dev[j].quarantined = true;
	if (!up(s, j))
		s->gone_evicted++;
	else if (s->dev[j].kind == HONEST)
		s->honest_evicted_up++;
	else
		s->malicious_evicted_up++;
}

/* The helpers for a check of j: HELPERS drawn at random among the trusted, each with a chance
 * that grows with its trust (Efraimidis-Spirakis: the largest u^(1/T)). Always the most trusted
 * would ask the same few every time, and two colluders among them could keep a missing device
 * in forever, round after undecided round. */
static size_t helpers(struct sim *s, size_t j, size_t *h)
{
	double best[HELPERS];
	size_t n = 0;

	for (size_t i = 1; i < s->n; i++) {
		double v;
		size_t k;

		if (i == j || s->dev[i].quarantined || s->dev[i].suspect ||
		    !trust_trusted(s->t, peer(s, i), s->now))
			continue;
		v = pow(uniform(s), 1.0 / trust_value(s->t, peer(s, i)));
		for (k = n; k > 0 && best[k - 1] < v; k--)
			if (k < HELPERS) {
				best[k] = best[k - 1];
				h[k] = h[k - 1];
			}
		if (k < HELPERS) {
			best[k] = v;
			h[k] = i;
			n += n < HELPERS;
		}
	}
	return n;
}

static void check(struct sim *s, size_t j)
{
	struct dev *d = &s->dev[j];
	struct trust_report r[TRUST_ROUND_MAX];
	size_t h[HELPERS], asked, m = 0;
	struct dev *before[TRUST_ROUND_MAX]; /* each reporter, to see who was struck */
	unsigned strikes[TRUST_ROUND_MAX];
	uint64_t since[TRUST_ROUND_MAX];
	bool refuted = !d->suspect;

	if (d->suspect) {
		/* SUSPECT: the device refutes if it hears it; good-mouthers vouch for it. */
		refuted = up(s, j) && !lost(s) && !lost(s);
		for (size_t i = 1; i < s->n; i++)
			if (i != j && up(s, i) && !s->dev[i].quarantined && lying(s, i) &&
			    s->dev[i].kind != BAD_MOUTHER && !lost(s))
				report(s, i, j, true);
	}
	r[m++] = (struct trust_report){.reporter = NULL, .alive = !d->suspect, .solicited = true};
	asked = helpers(s, j, h);
	for (size_t k = 0; k < asked; k++) {
		size_t i = h[k];
		bool seen;

		if (!up(s, i) || lost(s))
			continue;
		seen = reach(s, j, false);
		if (lying(s, i))
			seen = s->dev[i].kind == ON_OFF ? !seen : s->dev[i].kind == GOOD_MOUTHER;
		if (!lost(s))
			r[m++] = (struct trust_report){
			    .reporter = s->dev[i].name, .alive = seen, .solicited = true};
	}
	for (size_t k = 0; k < d->n_pending; k++)
		r[m++] = d->pending[k];
	d->n_pending = 0;
	if (m > TRUST_ROUND_MAX) {
		fprintf(stderr, "trust_sim: %zu reports in one round\n", m);
		exit(1);
	}
	for (size_t k = 0; k < m; k++) {
		before[k] = NULL;
		if (r[k].reporter != NULL) {
			before[k] = &s->dev[strtoul(r[k].reporter + 2, NULL, 10)];
			strikes[k] = before[k]->p->strikes;
			since[k] = before[k]->p->strike_start;
		}
	}
	if (trust_round(s->t, d->name, r, m, asked < CONFIRMATIONS ? asked : CONFIRMATIONS, refuted,
			s->now) == TRUST_EVICT)
		quarantine(s, j);
	/* Only a strike or a flag touches a reporter's strikes. */
	for (size_t k = 0; k < m; k++)
		if (before[k] != NULL && (r[k].flagged || before[k]->p->strikes != strikes[k] ||
					  before[k]->p->strike_start != since[k]))
			before[k]->struck = true;
}

static void round_once(struct sim *s)
{
	s->now = (uint64_t)s->round * INTERVAL_MS;
	/* Authentication failures on the devices' own links: forgeries, and rare stale ones. */
	for (size_t i = 1; i < s->n; i++) {
		if (!up(s, i) || s->dev[i].quarantined)
			continue;
		for (int k = 0; k < MESSAGES; k++) {
			bool bad = s->dev[i].kind == FORGER ? k < 2 : uniform(s) < STALE;

			if (!lost(s) && bad && trust_auth_failure(s->t, s->dev[i].name, s->now)) {
				s->dev[i].quarantined = true;
				s->honest_labelled += s->dev[i].kind != FORGER;
			}
		}
	}
	/* Unsolicited reports. */
	for (size_t i = 1; i < s->n; i++) {
		if (!up(s, i) || s->dev[i].quarantined)
			continue;
		if (s->dev[i].kind == STUFFER)
			for (size_t k = 0; k < 2 * s->n; k++)
				report(s, i, 1 + pick(s, s->n - 1), false);
		if (lying(s, i) && s->dev[i].kind != GOOD_MOUTHER)
			for (int k = 0; k < 2; k++) {
				size_t j = 1 + pick(s, s->n - 1);

				if (up(s, j))
					report(s, i, j, false);
			}
		if (!lying(s, i) && uniform(s) < TALK) {
			size_t j = 1 + pick(s, s->n - 1);

			if (j != i && !s->dev[j].quarantined && !reach(s, j, false))
				report(s, i, j, false);
		}
	}
	/* The controller's probes, then a check of every suspect or reported device. */
	for (size_t j = 1; j < s->n; j++)
		s->dev[j].suspect = !s->dev[j].quarantined && !reach(s, j, true);
	for (size_t j = 1; j < s->n; j++) {
		bool reported = false;

		for (size_t k = 0; k < s->dev[j].n_pending; k++)
			reported |= !s->dev[j].pending[k].alive;
		if (!s->dev[j].quarantined && (s->dev[j].suspect || reported))
			check(s, j);
		s->dev[j].n_pending = 0;
	}
}

static const unsigned kind_flag[KINDS] = {
    [FORGER] = TRUST_MALICIOUS,
    [BAD_MOUTHER] = TRUST_BAD_MOUTHING,
    [GOOD_MOUTHER] = TRUST_GOOD_MOUTHING,
    [STUFFER] = TRUST_BALLOT_STUFFING,
    [ON_OFF] = TRUST_BAD_MOUTHING | TRUST_GOOD_MOUTHING,
};

/* Over every configuration: those where each kind was all detected, and the false positives. */
static int configs, all_found[KINDS], false_positives;
/* And the honest devices, struck and flagged, of all there were. */
static int honest_all, honest_struck, honest_flagged;

static void run(struct sim *s, size_t n, unsigned pct, double loss, uint64_t seed)
{
	int found[KINDS] = {0}, total[KINDS] = {0}, t_sum = 0, t_max = 0, detected = 0, all = 0;
	double r_onoff = 0, r_honest = 0;
	int n_onoff = 0, n_honest = 0;
	char cell[32], flagged[32];

	setup(s, n, pct, loss, seed);
	for (s->round = 0; s->round < ROUNDS; s->round++) {
		round_once(s);
		for (size_t i = 1; i < n; i++)
			if (s->dev[i].detected < 0 &&
			    (peer(s, i)->flags & kind_flag[s->dev[i].kind]))
				s->dev[i].detected = s->round;
	}
	for (size_t i = 1; i < n; i++) {
		const struct dev *d = &s->dev[i];
		const struct trust_peer *p = peer(s, i);
		int t;

		if (d->kind == HONEST) {
			s->honest++;
			s->honest_struck += d->struck;
			s->honest_flagged += (p->flags & ~TRUST_MALICIOUS) != 0;
			if (d->gone_round < 0 && !d->quarantined) {
				r_honest += p->reputation;
				n_honest++;
			}
			continue;
		}
		total[d->kind]++;
		all++;
		if (d->kind == ON_OFF) {
			r_onoff += p->reputation;
			n_onoff++;
		}
		if (d->detected < 0)
			continue;
		found[d->kind]++;
		detected++;
		/* Rounds from when it began: on-off liars begin lying in round 4. */
		t = d->detected + 1 - (d->kind == ON_OFF ? 4 : 0);
		t_sum += t;
		t_max = t > t_max ? t : t_max;
	}
	printf("%4zu %2u%% %3.0f%% %6.1f%% %5s", n, pct, loss * 100, 100.0 * detected / all,
	       n == 50	  ? "96.2%"
	       : n == 300 ? "98.2%"
			  : "-");
	for (int k = FORGER; k < KINDS; k++) {
		snprintf(cell, sizeof(cell), "%d/%d", found[k], total[k]);
		printf(" %5s", cell);
	}
	snprintf(cell, sizeof(cell), "%d/%d", s->gone_evicted, s->gone);
	snprintf(flagged, sizeof(flagged), "%d/%d", s->honest_flagged, s->honest);
	printf(" %4d %4d %6d %7s   %5s %4.1f/%-3d  %.2f/%.2f\n", s->honest_labelled,
	       s->honest_evicted_up, s->honest_struck, flagged, cell,
	       detected ? (double)t_sum / detected : 0.0, t_max, n_onoff ? r_onoff / n_onoff : 0.0,
	       n_honest ? r_honest / n_honest : 0.0);
	configs++;
	for (int k = FORGER; k < KINDS; k++)
		all_found[k] += found[k] == total[k];
	false_positives += s->honest_labelled + s->honest_evicted_up;
	honest_all += s->honest;
	honest_struck += s->honest_struck;
	honest_flagged += s->honest_flagged;
	if (s->malicious_evicted_up)
		printf("     (%d malicious devices evicted while up)\n", s->malicious_evicted_up);
}

int main(int argc, char **argv)
{
	static const size_t sizes[] = {50, 100, 200, 300};
	static const unsigned pcts[] = {2, 5};
	static const double losses[] = {0.0, 0.1};
	static struct sim s;
	uint64_t seed = 0x9e3779b97f4a7c15ULL;

	/* An optional number draws other homes (other seeds): the published run is 0. */
	if (argc == 2) {
		char *end = NULL;
		unsigned long long k = strtoull(argv[1], &end, 10);

		if (argv[1][0] < '0' || argv[1][0] > '9' || *end != '\0')
			argc = 0;
		seed += 1000 * k;
	}
	if (argc > 2 || argc == 0) {
		fprintf(stderr, "usage: bench_trust_sim [SEED]\n");
		return 2;
	}
	s.t = malloc(sizeof(*s.t));
	if (s.t == NULL)
		return 1;
	printf("trust simulator: %d rounds of 20 min, %d tries, %d helpers, %d confirmations, "
	       "a = 0.5\n",
	       ROUNDS, TRIES, HELPERS, CONFIRMATIONS);
	printf("x: malicious share per kind; detected: forgers labelled, liars flagged for their "
	       "lie\n");
	printf("                         detected of each kind          honest devices         "
	       "missing rounds to  R\n");
	printf("nodes x loss detect paper forge   bad  good stuff onoff lab. evic struck    flag "
	       "evicted detect   onoff/honest\n");
	for (size_t a = 0; a < sizeof(pcts) / sizeof(pcts[0]); a++)
		for (size_t b = 0; b < sizeof(losses) / sizeof(losses[0]); b++)
			for (size_t c = 0; c < sizeof(sizes) / sizeof(sizes[0]); c++)
				run(&s, sizes[c], pcts[a], losses[b], seed++);
	printf("configurations (of %d) where every one was detected: forgers %d, bad-mouthers %d,\n"
	       "  good-mouthers %d, ballot stuffers %d, on-off liars %d\n",
	       configs, all_found[FORGER], all_found[BAD_MOUTHER], all_found[GOOD_MOUTHER],
	       all_found[STUFFER], all_found[ON_OFF]);
	printf("honest devices labelled malicious or evicted while up, all configurations: %d\n",
	       false_positives);
	printf("honest devices struck, and flagged, all configurations: %d and %d of %d\n",
	       honest_struck, honest_flagged, honest_all);
	free(s.t);
	return 0;
}
