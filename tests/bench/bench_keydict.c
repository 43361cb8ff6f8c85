/* The dictionary save a ring costs (keydict_save() of a ring's 75 records: sealed, written to a
 * temporary file, fsynced, renamed over the old one, the directory fsynced) beside its ceiling
 * measured in the same run and directory: one write of the same number of bytes and one fsync.
 * The ring intake benchmark (intake.sh) adds the RSA-OAEP unwrap of the ring to this ceiling.
 * Median of 15 saves each. Never fails on speed. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "crypto.h"
#include "keydict.h"

#define RING  75
#define TIMES 15

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *t)
{
	qsort(t, TIMES, sizeof(*t), cmp);
	return t[TIMES / 2];
}

int main(void)
{
	const char *dir = getenv("BENCH_TMP") ? getenv("BENCH_TMP") : "/tmp";
	char path[4096], bare[4096];
	uint8_t dict_key[CRYPTO_KEY_LEN], key[CRYPTO_KEY_LEN];
	double ours[TIMES], ceiling[TIMES];
	struct keydict *d = NULL;
	struct stat st;
	char *bytes;
	int fd;

	snprintf(path, sizeof(path), "%s/bench-keydict.%d", dir, (int)getpid());
	snprintf(bare, sizeof(bare), "%s/bench-fsync.%d", dir, (int)getpid());
	if (crypto_random(dict_key, sizeof(dict_key)) < 0 || keydict_new(dict_key, &d) < 0)
		return 1;
	for (uint32_t i = 0; i < RING; i++)
		if (crypto_random(key, sizeof(key)) < 0 ||
		    keydict_put(d, "-ring", i * 13, 1, key, 0, 1) < 0)
			return 1;
	for (int i = 0; i < TIMES; i++) {
		double t0 = now_ms();

		if (keydict_save(d, path) < 0)
			return 1;
		ours[i] = now_ms() - t0;
	}
	if (stat(path, &st) < 0 || (bytes = calloc(1, (size_t)st.st_size)) == NULL)
		return 1;
	for (int i = 0; i < TIMES; i++) {
		double t0 = now_ms();

		if ((fd = open(bare, O_WRONLY | O_CREAT | O_TRUNC, 0600)) < 0 ||
		    write(fd, bytes, (size_t)st.st_size) != st.st_size || fsync(fd) < 0 ||
		    close(fd) < 0)
			return 1;
		ceiling[i] = now_ms() - t0;
	}
	printf("keydict save %d records (%lld bytes): %.2f ms  ceiling (one write and fsync of the "
	       "same bytes): %.2f ms  ratio %.0f%%\n",
	       RING, (long long)st.st_size, median(ours), median(ceiling),
	       100 * median(ceiling) / median(ours));
	printf("fsynced write: %.3f ms\n", median(ceiling));
	unlink(path);
	unlink(bare);
	free(bytes);
	keydict_free(d);
	return 0;
}
