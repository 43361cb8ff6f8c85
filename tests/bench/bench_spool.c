/* The kit's spool (spool.h) under a stream of readings: each append of a 128-byte record, with
 * fdatasync at most every 200 ms (sensord.spool_sync_ms's default), and its acknowledgement 100
 * records later (a broker's PUBACKs with 100 in flight), beside its ceiling measured in the same
 * run and directory: the same bytes written to a plain file with one write() each and an
 * fdatasync every 200 ms, nothing else. The spool's extra work is the check (SHA-256), its index,
 * `head` at each sync and the compactions. Best of 3 interleaved runs of about a second. Never
 * fails on speed. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "crypto.h"
#include "spool.h"
#include "timing.h"

#define RECORD	 128
#define SYNC_MS	 200
#define INFLIGHT 100
#define ROUNDS	 3
#define SECONDS	 1.0
#define BATCH	 64 /* records between clock reads */

static uint8_t record[RECORD];

/* Records per second through the spool over about secs; -1 on failure. */
static double ours(struct spool *sp, double secs)
{
	double t0 = bench_now(), t;
	long n = 0;
	uint64_t id;

	do {
		for (int i = 0; i < BATCH; i++, n++) {
			record[0] = (uint8_t)n;
			if (spool_append(sp, record, sizeof(record), (uint64_t)(bench_now() * 1000),
					 &id) < 0)
				return -1;
			if (id > INFLIGHT && spool_ack(sp, id - INFLIGHT) < 0)
				return -1;
		}
		t = bench_now() - t0;
	} while (t < secs);
	return n / t;
}

/* The same bytes (length, check, payload) with one write() each, fdatasync every SYNC_MS. */
static double bare(int fd, double secs)
{
	uint8_t buf[8 + RECORD] = {0};
	double t0 = bench_now(), t, synced = t0;
	long n = 0;

	if (ftruncate(fd, 0) < 0)
		return -1;
	memcpy(buf + 8, record, sizeof(record));
	do {
		for (int i = 0; i < BATCH; i++, n++) {
			buf[8] = (uint8_t)n;
			if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
				return -1;
			if (bench_now() - synced >= SYNC_MS / 1000.0) {
				if (fdatasync(fd) < 0)
					return -1;
				synced = bench_now();
			}
		}
		t = bench_now() - t0;
	} while (t < secs);
	return fdatasync(fd) < 0 ? -1 : n / t;
}

int main(void)
{
	const char *dir = getenv("BENCH_TMP") ? getenv("BENCH_TMP") : "/tmp";
	char spool_dir[4096], raw[4096], cmd[8300];
	struct spool *sp = NULL;
	double best_o = 0, best_c = 0;
	int fd = -1, rc = 1;

	snprintf(spool_dir, sizeof(spool_dir), "%s/bench-spool.%d", dir, (int)getpid());
	snprintf(raw, sizeof(raw), "%s/bench-spool-raw.%d", dir, (int)getpid());
	if (crypto_random(record, sizeof(record)) < 0 ||
	    spool_open(spool_dir, 100000, SYNC_MS, &sp) < 0 ||
	    (fd = open(raw, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600)) < 0) {
		fprintf(stderr, "bench_spool: cannot set up in %s: %s\n", dir, strerror(errno));
		goto out;
	}
	/* Warm both paths (page cache, CPU frequency) before timing either. */
	if (ours(sp, 0.2) < 0 || bare(fd, 0.2) < 0)
		goto fail;
	for (int round = 0; round < ROUNDS; round++) {
		double o = ours(sp, SECONDS), c = bare(fd, SECONDS);

		if (o < 0 || c < 0)
			goto fail;
		best_o = o > best_o ? o : best_o;
		best_c = c > best_c ? c : best_c;
	}
	if (spool_flush(sp) < 0)
		goto fail;
	printf("spool append+ack %dB (sync %d ms): %.0f records/s  ceiling (write()+fdatasync "
	       "every %d ms, same bytes): %.0f records/s  ratio %.0f%%\n",
	       RECORD, SYNC_MS, best_o, SYNC_MS, best_c, best_c > 0 ? 100 * best_o / best_c : 0);
	rc = 0;
	goto out;
fail:
	fprintf(stderr, "bench_spool: an operation failed: %s\n", strerror(errno));
out:
	spool_close(sp);
	if (fd >= 0)
		close(fd);
	unlink(raw);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", spool_dir);
	if (system(cmd) != 0)
		rc = 1;
	return rc;
}
