/* Sizing the key pool (SPEC 6, Eschenauer-Gligor random key predistribution).
 *
 * Two devices holding rings of k keys drawn from a pool of P share at least one key with
 * probability p = 1 - C(P-k, k) / C(P, k). The home's key-sharing graph is treated as the random
 * graph G(n, p), whose probability of being connected has an exact recurrence that is cheap at home
 * scale (and equals p for two devices, where the asymptotic formula does not). */
#ifndef IOTSEC_KEYPOOL_H
#define IOTSEC_KEYPOOL_H

#define KEYPOOL_RING_DEFAULT 75 /* keys a Pi keeps: 75 x 32 bytes, plus indices */
#define KEYPOOL_RING_MAX     1024
#define KEYPOOL_POOL_MAX     1000000
#define KEYPOOL_NODES_MAX    4096 /* the recurrence is O(n^2) */

/* Probability that two rings of ring keys from a pool of pool keys share one; 0 <= p <= 1. */
double keypool_p_share(unsigned pool, unsigned ring);
/* Probability that G(nodes, p) is connected (1 for a single device). */
double keypool_p_connected(unsigned nodes, double p);

struct keypool_plan {
	unsigned ring, pool;
	double p_share, p_connected;
};

/* Choose the largest pool that keeps p_share >= target with rings of ring keys (0: the default),
 * or evaluate the given pool (pool != 0). -EINVAL for nodes outside 1..KEYPOOL_NODES_MAX, target
 * outside (0, 1], ring outside 1..KEYPOOL_RING_MAX, pool < ring or above KEYPOOL_POOL_MAX. */
int keypool_plan(unsigned nodes, double target, unsigned ring, unsigned pool,
		 struct keypool_plan *ret);

#endif
