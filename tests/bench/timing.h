/* What the benches share to time an operation: a monotonic clock, runs of batches of about a
 * given length, and the best of a few such runs of an operation and of its ceiling. */
#ifndef IOTSEC_BENCH_TIMING_H
#define IOTSEC_BENCH_TIMING_H

#include <stdint.h>

#define BENCH_ROUNDS  3
#define BENCH_SECONDS 1.0

/* batch operations, counting each in *ctr; -1 if one failed. */
typedef int bench_fn(long batch, uint64_t *ctr, void *arg);

/* Seconds on the monotonic clock. */
double bench_now(void);
/* Operations per second over one run of about secs; -1 if an operation failed. */
double bench_run(bench_fn *fn, void *arg, long batch, double secs);
/* Best of BENCH_ROUNDS runs of BENCH_SECONDS of f and g (g may be NULL, and then ret_g too),
 * interleaved so that a change of clock speed or a noisy neighbour weighs on both figures
 * alike. 0, or -1 if an operation failed. */
int bench_best_of(bench_fn *f, void *fa, double *ret_f, bench_fn *g, void *ga, double *ret_g,
		  long batch);

#endif
