#include "keypool.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

double keypool_p_share(unsigned pool, unsigned ring)
{
	double miss = 1.0;

	if (2 * (unsigned long)ring > pool)
		return 1.0; /* two rings that large must overlap */
	/* C(P-k, k) / C(P, k) = prod_{i<k} (P-k-i) / (P-i): no factorials, no overflow. */
	for (unsigned i = 0; i < ring; i++)
		miss *= (double)(pool - ring - i) / (double)(pool - i);
	return 1.0 - miss;
}

double keypool_p_connected(unsigned nodes, double p)
{
	/* conn[m] = 1 - sum_{j=1}^{m-1} C(m-1, j-1) conn[j] (1-p)^{j(m-j)}: the component of one
	 * fixed device has exactly j members and no edge leaves it. Logs keep C() in range. */
	double *conn, q = 1.0 - p, result;

	if (nodes <= 1)
		return 1.0;
	if ((conn = calloc(nodes + 1, sizeof(*conn))) == NULL)
		return NAN;
	conn[1] = 1.0;
	for (unsigned m = 2; m <= nodes; m++) {
		double sum = 0.0;

		for (unsigned j = 1; j < m; j++) {
			double lc = lgamma(m) - lgamma(j) - lgamma(m - j + 1);
			double isolated = q <= 0.0 ? 0.0 : exp((double)j * (m - j) * log(q) + lc);

			sum += conn[j] * isolated;
		}
		conn[m] = sum >= 1.0 ? 0.0 : 1.0 - sum;
	}
	result = conn[nodes];
	free(conn);
	return result;
}

int keypool_plan(unsigned nodes, double target, unsigned ring, unsigned pool,
		 struct keypool_plan *ret)
{
	struct keypool_plan plan;

	if (ring == 0)
		ring = KEYPOOL_RING_DEFAULT;
	if (nodes < 1 || nodes > KEYPOOL_NODES_MAX || !(target > 0.0 && target <= 1.0) ||
	    ring > KEYPOOL_RING_MAX || (pool != 0 && (pool < ring || pool > KEYPOOL_POOL_MAX)))
		return -EINVAL;
	if (pool == 0) {
		/* p_share falls as the pool grows: binary search the largest pool meeting
		 * target. */
		unsigned lo = ring, hi = KEYPOOL_POOL_MAX;

		while (lo < hi) {
			unsigned mid = lo + (hi - lo + 1) / 2;

			if (keypool_p_share(mid, ring) >= target)
				lo = mid;
			else
				hi = mid - 1;
		}
		pool = lo;
	}
	plan.ring = ring;
	plan.pool = pool;
	plan.p_share = keypool_p_share(pool, ring);
	plan.p_connected = keypool_p_connected(nodes, plan.p_share);
	*ret = plan;
	return 0;
}
