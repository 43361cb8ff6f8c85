/* The relay's SQLite store (store.h) beside bare SQLite on the same tables, in the same run and
 * directory:
 *   insert    100,000 sealed readings of 120 bytes from 100 streams, store_insert() of 1,000 at a
 *             time; the ceiling is a bare loop over the same tables (the file the store made):
 *             one prepared INSERT reused, 1,000 rows per transaction, WAL, synchronous=NORMAL.
 *   delivery  a doctor catching up on those 100,000: store_queue() of 1,000, then
 *             store_delivered() of their ids, until nothing waits; the ceiling is a bare SELECT
 *             scan of the same rows. A second figure does the bare scan's work plus the marking
 *             (1,000 UPDATEs by id per transaction), which is what the store cannot avoid.
 * Also the time of the first and the last queue calls of the catch-up: equal when each call is
 * an index range scan (a sort per call would make the first ones slow).
 * Best of 3 interleaved rounds. Never fails on speed. */
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store.h"
#include "timing.h"

#define READINGS 100000
#define STREAMS	 100
#define BATCH	 1000
#define DATA_LEN 120
#define ROUNDS	 3
#define DOCTOR	 "doctor1"
#define EDGE	 10 /* queue calls timed at each end of the catch-up */
/* The store's own settings (store_sqlite.c), so that the ratio is the store's work alone. */
#define BARE_PRAGMAS                                                                               \
	"PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA cache_size = -65536;"      \
	" PRAGMA wal_autocheckpoint = 4000"

static uint8_t data[READINGS][DATA_LEN];
static struct store_reading rs[READINGS];

/* Stream i's id: distinct and spread like the keyed hashes they are. */
static void stream_of(unsigned i, uint8_t out[STREAM_ID_LEN])
{
	for (unsigned k = 0; k < STREAM_ID_LEN; k++)
		out[k] = (uint8_t)((i + 1) * 2654435761u >> (k % 4 * 8)) ^ (uint8_t)k;
}

/* The readings as a relay receives them: the streams interleaved, one emergency in 1,000. */
static void make_readings(void)
{
	for (unsigned i = 0; i < READINGS; i++) {
		struct store_reading *r = &rs[i];

		stream_of(i % STREAMS, r->stream);
		/* A kit per stream, as the relay binds them (STORE_DEVICE_STREAMS_MAX). */
		r->device[0] = (uint8_t)(i % STREAMS);
		r->seq = i / STREAMS + 1;
		r->emergency = i % 1000 == 999;
		r->received_ms = 1700000000000 + i;
		for (unsigned k = 0; k < DATA_LEN; k++)
			data[i][k] = (uint8_t)(i * 131 + k * 7);
		r->data = data[i];
		r->len = DATA_LEN;
	}
}

static int open_store(const char *path, struct store **ret)
{
	struct store_opts o = {.kind = STORE_SQLITE, .path = path};

	return store_open(&o, ret);
}

static void remove_db(const char *path)
{
	char p[4200];

	unlink(path);
	snprintf(p, sizeof(p), "%s-wal", path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", path);
	unlink(p);
}

/* A fresh store (schema only) at path. */
static int fresh_store(const char *path)
{
	struct store *s = NULL;
	int r;

	remove_db(path);
	if ((r = open_store(path, &s)) < 0)
		return r;
	store_close(s);
	return 0;
}

/* Readings per second through store_insert(); -1 on failure. */
static double ours_insert(const char *path)
{
	struct store *s = NULL;
	size_t fresh, total = 0;
	double t0, t;

	if (fresh_store(path) < 0 || open_store(path, &s) < 0)
		return -1;
	t0 = bench_now();
	for (size_t i = 0; i < READINGS; i += BATCH) {
		if (store_insert(s, rs + i, BATCH, &fresh) < 0) {
			store_close(s);
			return -1;
		}
		total += fresh;
	}
	t = bench_now() - t0;
	store_close(s);
	return total == READINGS ? READINGS / t : -1;
}

static sqlite3 *bare_open(const char *path)
{
	sqlite3 *db = NULL;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK ||
	    sqlite3_exec(db, BARE_PRAGMAS, NULL, NULL, NULL) != SQLITE_OK) {
		fprintf(stderr, "bench_relay_store: %s\n", sqlite3_errmsg(db));
		sqlite3_close(db);
		return NULL;
	}
	return db;
}

static int bare_exec(sqlite3 *db, const char *sql)
{
	return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

/* The same rows into the same tables, bare: rows per second; -1 on failure. */
static double bare_insert(const char *path)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	double t0, t = 0;
	int r = -1;

	if (fresh_store(path) < 0 || (db = bare_open(path)) == NULL ||
	    sqlite3_prepare_v2(
		db,
		"INSERT INTO readings (stream, seq, emergency, received_ms, delivered,"
		" data) VALUES (?1, ?2, ?3, ?4, 0, ?5) ON CONFLICT (stream, seq)"
		" DO NOTHING",
		-1, &st, NULL) != SQLITE_OK)
		goto out;
	t0 = bench_now();
	for (size_t i = 0; i < READINGS; i += BATCH) {
		if (bare_exec(db, "BEGIN IMMEDIATE") < 0)
			goto out;
		for (size_t k = i; k < i + BATCH; k++) {
			sqlite3_bind_blob(st, 1, rs[k].stream, STREAM_ID_LEN, SQLITE_STATIC);
			sqlite3_bind_int64(st, 2, (int64_t)rs[k].seq);
			sqlite3_bind_int(st, 3, rs[k].emergency);
			sqlite3_bind_int64(st, 4, rs[k].received_ms);
			sqlite3_bind_blob(st, 5, rs[k].data, (int)rs[k].len, SQLITE_STATIC);
			if (sqlite3_step(st) != SQLITE_DONE)
				goto out;
			sqlite3_reset(st);
		}
		if (bare_exec(db, "COMMIT") < 0)
			goto out;
	}
	t = bench_now() - t0;
	r = 0;
out:
	if (r < 0 && db != NULL)
		fprintf(stderr, "bench_relay_store: bare insert: %s\n", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	sqlite3_close(db);
	return r < 0 ? -1 : READINGS / t;
}

/* The store of the insert bench, its streams granted to one doctor, nothing delivered. */
static int delivery_setup(const char *path)
{
	struct store *s = NULL;
	struct store_grant g = {.e0 = 1, .wrapped_len = 512, .granted_ms = 1};
	sqlite3 *db;
	int r;

	if ((r = open_store(path, &s)) < 0)
		return r;
	strcpy(g.doctor, DOCTOR);
	for (unsigned i = 0; i < STREAMS && r >= 0; i++) {
		stream_of(i, g.stream);
		r = store_grant_put(s, &g);
	}
	store_close(s);
	if (r < 0 || (db = bare_open(path)) == NULL)
		return -1;
	r = bare_exec(db, "UPDATE readings SET delivered = 0");
	sqlite3_close(db);
	return r;
}

struct catchup {
	int64_t ids[BATCH];
	size_t n;
	uint64_t bytes;
};

static int take(const struct store_reading *r, void *userdata)
{
	struct catchup *c = userdata;

	c->ids[c->n++] = r->id;
	c->bytes += r->data[0] + r->len; /* touch what a doctor's client would send */
	return 0;
}

/* Readings per second delivered by queue + delivered; the first and last EDGE queue calls'
 * mean time into edge[0], edge[1]; -1 on failure. */
static double ours_delivery(const char *path, double edge[2])
{
	struct store *s = NULL;
	struct catchup c = {0};
	double t0, t, q0, calls[READINGS / BATCH];
	size_t total = 0, ncalls = 0, marked;

	if (delivery_setup(path) < 0 || open_store(path, &s) < 0)
		return -1;
	t0 = bench_now();
	for (;;) {
		c.n = 0;
		q0 = bench_now();
		if (store_queue(s, DOCTOR, BATCH, take, &c) < 0)
			goto fail;
		if (ncalls < READINGS / BATCH)
			calls[ncalls++] = bench_now() - q0;
		if (c.n == 0)
			break;
		if (store_delivered(s, DOCTOR, c.ids, c.n, &marked) < 0 || marked != c.n)
			goto fail;
		total += marked;
	}
	t = bench_now() - t0;
	store_close(s);
	if (total != READINGS || ncalls < 2 * EDGE)
		return -1;
	edge[0] = edge[1] = 0;
	for (size_t i = 0; i < EDGE; i++) {
		edge[0] += calls[i] / EDGE;
		edge[1] += calls[ncalls - EDGE + i] / EDGE;
	}
	return READINGS / t;
fail:
	store_close(s);
	return -1;
}

/* A row's columns read as a doctor's client would use them. */
static uint64_t touch(sqlite3_stmt *st)
{
	const uint8_t *d = sqlite3_column_blob(st, 5);

	return (d != NULL ? d[0] : 0) + (uint64_t)sqlite3_column_bytes(st, 5) +
	       (uint64_t)sqlite3_column_bytes(st, 1) + (uint64_t)sqlite3_column_int64(st, 2) +
	       (uint64_t)sqlite3_column_int(st, 3) + (uint64_t)sqlite3_column_int64(st, 4);
}

/* The bare scan of the same rows, every column read: rows per second; -1 on failure. */
static double bare_scan(const char *path)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *scan = NULL;
	uint64_t bytes = 0;
	size_t total = 0;
	double t0, t = 0;
	int r = -1, rc;

	if ((db = bare_open(path)) == NULL ||
	    sqlite3_prepare_v2(db,
			       "SELECT id, stream, seq, emergency, received_ms, data FROM readings",
			       -1, &scan, NULL) != SQLITE_OK)
		goto out;
	t0 = bench_now();
	while ((rc = sqlite3_step(scan)) == SQLITE_ROW) {
		bytes += touch(scan);
		total++;
	}
	t = bench_now() - t0;
	r = rc == SQLITE_DONE && total == READINGS && bytes > 0 ? 0 : -1;
out:
	if (r < 0 && db != NULL)
		fprintf(stderr, "bench_relay_store: bare scan: %s\n", sqlite3_errmsg(db));
	sqlite3_finalize(scan);
	sqlite3_close(db);
	return r < 0 ? -1 : READINGS / t;
}

/* The same ids in delivery order, found untimed. */
static int64_t order[READINGS];

/* Bare SQLite doing the catch-up's own reads and writes: the rows in delivery order, 1,000 at
 * a time read by id in one read transaction, then marked delivered by id in one write
 * transaction. Rows per second; -1 on failure. */
static double bare_same_work(const char *path)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *ids = NULL, *get = NULL, *upd = NULL;
	uint64_t bytes = 0;
	size_t n = 0;
	double t0, t = 0;
	int r = -1, rc;

	if (delivery_setup(path) < 0 || (db = bare_open(path)) == NULL ||
	    sqlite3_prepare_v2(db,
			       "SELECT id FROM readings WHERE delivered = 0"
			       " ORDER BY emergency DESC, stream, seq",
			       -1, &ids, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db,
			       "SELECT id, stream, seq, emergency, received_ms, data FROM readings"
			       " WHERE id = ?1",
			       -1, &get, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "UPDATE readings SET delivered = 1 WHERE id = ?1", -1, &upd,
			       NULL) != SQLITE_OK)
		goto out;
	while ((rc = sqlite3_step(ids)) == SQLITE_ROW && n < READINGS)
		order[n++] = sqlite3_column_int64(ids, 0);
	if (n != READINGS)
		goto out;
	t0 = bench_now();
	for (size_t i = 0; i < READINGS; i += BATCH) {
		if (bare_exec(db, "BEGIN") < 0)
			goto out;
		for (size_t k = i; k < i + BATCH; k++) {
			sqlite3_bind_int64(get, 1, order[k]);
			if (sqlite3_step(get) != SQLITE_ROW)
				goto out;
			bytes += touch(get);
			sqlite3_reset(get);
		}
		if (bare_exec(db, "COMMIT") < 0 || bare_exec(db, "BEGIN IMMEDIATE") < 0)
			goto out;
		for (size_t k = i; k < i + BATCH; k++) {
			sqlite3_bind_int64(upd, 1, order[k]);
			if (sqlite3_step(upd) != SQLITE_DONE)
				goto out;
			sqlite3_reset(upd);
		}
		if (bare_exec(db, "COMMIT") < 0)
			goto out;
	}
	t = bench_now() - t0;
	r = bytes > 0 ? 0 : -1;
out:
	if (r < 0 && db != NULL)
		fprintf(stderr, "bench_relay_store: bare catch-up: %s\n", sqlite3_errmsg(db));
	sqlite3_finalize(ids);
	sqlite3_finalize(get);
	sqlite3_finalize(upd);
	sqlite3_close(db);
	return r < 0 ? -1 : READINGS / t;
}

static double max2(double a, double b)
{
	return a > b ? a : b;
}

int main(void)
{
	const char *dir = getenv("BENCH_TMP") ? getenv("BENCH_TMP") : "/tmp";
	double oi = 0, bi = 0, od = 0, bs = 0, bm = 0, edge[2] = {0, 0};
	char path[4096];
	int rc = 1;

	snprintf(path, sizeof(path), "%s/bench-relay-store.%d.db", dir, (int)getpid());
	make_readings();
	/* Each round in the other order, so that what one leaves behind (dirty pages being written
	 * back) weighs on both alike. */
	for (int round = 0; round < ROUNDS; round++) {
		double a = round % 2 ? bare_insert(path) : 0, b = ours_insert(path);

		if (round % 2 == 0)
			a = bare_insert(path);

		if (a < 0 || b < 0)
			goto fail;
		bi = max2(bi, a);
		oi = max2(oi, b);
	}
	/* The file now holds the 100,000 readings of the last ours_insert(). */
	for (int round = 0; round < ROUNDS; round++) {
		double e[2], a = bare_scan(path), b = ours_delivery(path, e),
			     c = bare_same_work(path);

		if (a < 0 || b < 0 || c < 0)
			goto fail;
		bs = max2(bs, a);
		bm = max2(bm, c);
		if (b > od) {
			od = b;
			edge[0] = e[0];
			edge[1] = e[1];
		}
	}
	printf(
	    "relay store insert %d x %dB in batches of %d: %.0f readings/s  ceiling (bare SQLite,"
	    " same tables, prepared INSERT, %d per transaction, WAL, synchronous=NORMAL, the"
	    " store's cache and checkpoint settings): %.0f rows/s  ratio %.0f%%\n",
	    READINGS, DATA_LEN, BATCH, oi, BATCH, bi, bi > 0 ? 100 * oi / bi : 0);
	printf("relay store delivery of %d (queue %d + mark delivered): %.0f readings/s  ceiling "
	       "(bare SELECT scan of the same rows): %.0f rows/s  ratio %.0f%%\n",
	       READINGS, BATCH, od, bs, bs > 0 ? 100 * od / bs : 0);
	printf(
	    "relay store delivery of %d: %.0f readings/s  beside bare SQLite doing the same reads"
	    " and writes (the same ids in delivery order, %d read by id, then marked by id in one"
	    " transaction): %.0f rows/s  ratio %.0f%%\n",
	    READINGS, od, BATCH, bm, bm > 0 ? 100 * od / bm : 0);
	printf("relay store queue call of %d: first %d calls %.2f ms each, last %d %.2f ms each"
	       " (a sort per call would make the first ones cost far more than the last)\n",
	       BATCH, EDGE, edge[0] * 1e3, EDGE, edge[1] * 1e3);
	rc = 0;
	goto out;
fail:
	fprintf(stderr, "bench_relay_store: an operation failed in %s\n", dir);
out:
	remove_db(path);
	return rc;
}
