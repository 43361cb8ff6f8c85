#include "timing.h"

#include <stddef.h>
#include <time.h>

double bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double bench_run(bench_fn *fn, void *arg, long batch, double secs)
{
	/* Shared by every run: an operation may use it to vary what it works on. */
	static uint64_t ctr;
	double t0 = bench_now(), t;
	long n = 0;

	do {
		if (fn(batch, &ctr, arg) < 0)
			return -1;
		n += batch;
		t = bench_now() - t0;
	} while (t < secs);
	return n / t;
}

int bench_best_of(bench_fn *f, void *fa, double *ret_f, bench_fn *g, void *ga, double *ret_g,
		  long batch)
{
	double bf = 0, bg = 0;

	for (int round = 0; round < BENCH_ROUNDS; round++) {
		double x = bench_run(f, fa, batch, BENCH_SECONDS);
		double y = g ? bench_run(g, ga, batch, BENCH_SECONDS) : 0;

		if (x < 0 || y < 0)
			return -1;
		bf = x > bf ? x : bf;
		bg = y > bg ? y : bg;
	}
	*ret_f = bf;
	if (ret_g != NULL)
		*ret_g = bg;
	return 0;
}
