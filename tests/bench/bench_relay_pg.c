/* The relay's PostgreSQL store (store.h, store_pg.c) beside bare libpq on the same tables, in
 * the same run, against a real server of the bench's own (tests/unit/pg.c: a unix socket, fsync
 * on, so each commit is a real one):
 *   insert    100,000 sealed readings of 120 bytes from 100 streams, store_insert() of 1,000 at a
 *             time; the ceiling is a bare loop of the same statement (INSERT ... SELECT FROM
 *             unnest() of binary arrays, ON CONFLICT DO NOTHING, prepared), one per 1,000, the
 *             rows of each batch in (stream, seq) order as the store sends them (sorted before
 *             the clock starts; the store sorts on the clock). The other ways to send a batch,
 *             bare too and sorted alike, for the choice store_pg.c made: one multi-row VALUES
 *             statement of 5,000 parameters, COPY (binary) into a temporary table then
 *             INSERT ... SELECT, and pipeline mode with one INSERT per reading; and the same
 *             statement with each batch in arrival order, what the sorting gains.
 *   delivery  a doctor catching up on those 100,000: store_queue() of 1,000, then
 *             store_delivered() of their ids, until nothing waits; the ceiling is a bare SELECT
 *             scan of the same rows (binary). A second figure does the scan's work plus the
 *             marking (one UPDATE ... WHERE id = ANY() per 1,000), which the store cannot avoid.
 * Also the time of the first and the last queue calls of the catch-up: equal when each call
 * reads an index range (a sort of everything waiting per call would make the first ones slow).
 * Best of 3 interleaved rounds, each on a fresh database. Never fails on speed; skipped when
 * PostgreSQL is not installed. */
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "../unit/pg.h"
#include "log.h"
#include "store.h"
#include "timing.h"

#define READINGS 100000
#define STREAMS	 100
#define BATCH	 1000
#define DATA_LEN 120
#define ROUNDS	 3
#define DOCTOR	 "doctor1"
#define EDGE	 10 /* queue calls timed at each end of the catch-up */

#define INSERT_SQL                                                                                 \
	"INSERT INTO readings (stream, seq, emergency, received_ms, data) SELECT * FROM "          \
	"unnest($1::bytea[], $2::int8[], $3::bool[], $4::int8[], $5::bytea[]) ON CONFLICT "        \
	"(stream, seq) DO NOTHING"

static struct pg_server pg;
static int databases;
static uint8_t data[READINGS][DATA_LEN];
static struct store_reading rs[READINGS];
/* Each batch of rs in (stream, seq) order, as store_pg.c sends it. */
static struct store_reading sorted[READINGS];

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

static int by_key(const void *a, const void *b)
{
	const struct store_reading *x = a, *y = b;
	int c = memcmp(x->stream, y->stream, STREAM_ID_LEN);

	return c != 0 ? c : x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void sort_batches(void)
{
	memcpy(sorted, rs, sizeof(rs));
	for (size_t i = 0; i < READINGS; i += BATCH)
		qsort(sorted + i, BATCH, sizeof(*sorted), by_key);
}

/* A fresh database with the store's schema: its connection string in pg.conninfo. */
static int fresh_db(void)
{
	struct store_opts o = {.kind = STORE_POSTGRESQL};
	struct store *s = NULL;
	char name[32];
	int r;

	snprintf(name, sizeof(name), "bench%d", ++databases);
	if ((r = pg_createdb(&pg, name)) < 0)
		return r;
	o.conninfo = pg.conninfo;
	if ((r = store_open(&o, &s)) < 0)
		return r;
	store_close(s);
	return 0;
}

static int open_store(struct store **ret)
{
	struct store_opts o = {.kind = STORE_POSTGRESQL, .conninfo = pg.conninfo};

	return store_open(&o, ret);
}

static PGconn *bare_open(void)
{
	PGconn *c = PQconnectdb(pg.conninfo);

	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "bench_relay_pg: %s", PQerrorMessage(c));
		PQfinish(c);
		return NULL;
	}
	return c;
}

static int bare_exec(PGconn *c, const char *sql)
{
	PGresult *res = PQexec(c, sql);
	int ok = PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK;

	if (!ok)
		fprintf(stderr, "bench_relay_pg: %s: %s", sql, PQerrorMessage(c));
	PQclear(res);
	return ok ? 0 : -1;
}

static int bare_ok(PGconn *c, PGresult *res, const char *what)
{
	int ok = PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK;

	if (!ok)
		fprintf(stderr, "bench_relay_pg: %s: %s", what, PQerrorMessage(c));
	PQclear(res);
	return ok ? 0 : -1;
}

/* --- Insert ------------------------------------------------------------------------------ */

/* Readings per second through store_insert() into a fresh database; -1 on failure. */
static double ours_insert(void)
{
	struct store *s = NULL;
	size_t fresh, total = 0;
	double t0, t;

	if (fresh_db() < 0 || open_store(&s) < 0)
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

struct buf {
	uint8_t *p;
	size_t len;
};

static void put(struct buf *b, const void *v, size_t len)
{
	memcpy(b->p + b->len, v, len);
	b->len += len;
}

static void put16(struct buf *b, uint16_t v)
{
	v = htobe16(v);
	put(b, &v, 2);
}

static void put32(struct buf *b, uint32_t v)
{
	v = htobe32(v);
	put(b, &v, 4);
}

static void put64(struct buf *b, uint64_t v)
{
	v = htobe64(v);
	put(b, &v, 8);
}

/* A binary one-dimensional array's header (array_recv). */
static void arr_start(struct buf *b, Oid elem, size_t n)
{
	b->len = 0;
	put32(b, 1);
	put32(b, 0);
	put32(b, elem);
	put32(b, (uint32_t)n);
	put32(b, 1);
}

static void elem(struct buf *b, const void *v, size_t len)
{
	put32(b, (uint32_t)len);
	put(b, v, len);
}

static void elem64(struct buf *b, uint64_t v)
{
	put32(b, 8);
	put64(b, v);
}

enum way { WAY_UNNEST, WAY_VALUES, WAY_COPY, WAY_PIPELINE, WAY_ARRIVAL, WAYS };

static const char *const way_name[WAYS] = {
    "INSERT from unnest() of binary arrays, one statement",
    "multi-row VALUES, one statement of 5,000 parameters",
    "COPY (binary) into a temporary table, then INSERT ... SELECT",
    "pipeline mode, one prepared INSERT per reading",
    "INSERT from unnest() as above, each batch in arrival order (not sorted)",
};

static int batch_unnest(PGconn *c, const struct store_reading *b, struct buf a[5])
{
	const char *v[5];
	int len[5], fmt[5] = {1, 1, 1, 1, 1};

	arr_start(&a[0], 17, BATCH);
	arr_start(&a[1], 20, BATCH);
	arr_start(&a[2], 16, BATCH);
	arr_start(&a[3], 20, BATCH);
	arr_start(&a[4], 17, BATCH);
	for (size_t k = 0; k < BATCH; k++) {
		uint8_t e = b[k].emergency;

		elem(&a[0], b[k].stream, STREAM_ID_LEN);
		elem64(&a[1], b[k].seq);
		elem(&a[2], &e, 1);
		elem64(&a[3], (uint64_t)b[k].received_ms);
		elem(&a[4], b[k].data, b[k].len);
	}
	for (int i = 0; i < 5; i++) {
		v[i] = (const char *)a[i].p;
		len[i] = (int)a[i].len;
	}
	return bare_ok(c, PQexecPrepared(c, "ins", 5, v, len, fmt, 0), "unnest");
}

static int batch_values(PGconn *c, const struct store_reading *b, uint64_t be[][2])
{
	static const char *v[BATCH * 5];
	static int len[BATCH * 5], fmt[BATCH * 5];
	static uint8_t e[BATCH];

	for (size_t k = 0; k < BATCH; k++) {
		be[k][0] = htobe64(b[k].seq);
		be[k][1] = htobe64((uint64_t)b[k].received_ms);
		e[k] = b[k].emergency;
		v[k * 5] = (const char *)b[k].stream;
		len[k * 5] = STREAM_ID_LEN;
		v[k * 5 + 1] = (const char *)&be[k][0];
		len[k * 5 + 1] = 8;
		v[k * 5 + 2] = (const char *)&e[k];
		len[k * 5 + 2] = 1;
		v[k * 5 + 3] = (const char *)&be[k][1];
		len[k * 5 + 3] = 8;
		v[k * 5 + 4] = (const char *)b[k].data;
		len[k * 5 + 4] = (int)b[k].len;
	}
	for (size_t i = 0; i < BATCH * 5; i++)
		fmt[i] = 1;
	return bare_ok(c, PQexecPrepared(c, "ins", BATCH * 5, v, len, fmt, 0), "values");
}

static int batch_copy(PGconn *c, const struct store_reading *b, struct buf *a)
{
	PGresult *res;

	if (bare_exec(c, "BEGIN") < 0)
		return -1;
	res = PQexec(c, "COPY batch FROM STDIN (FORMAT binary)");
	if (PQresultStatus(res) != PGRES_COPY_IN) {
		PQclear(res);
		return -1;
	}
	PQclear(res);
	a->len = 0;
	put(a, "PGCOPY\n\377\r\n\0", 11);
	put32(a, 0);
	put32(a, 0);
	for (size_t k = 0; k < BATCH; k++) {
		uint8_t e = b[k].emergency;

		put16(a, 5);
		elem(a, b[k].stream, STREAM_ID_LEN);
		elem64(a, b[k].seq);
		elem(a, &e, 1);
		elem64(a, (uint64_t)b[k].received_ms);
		elem(a, b[k].data, b[k].len);
	}
	put16(a, 0xffff);
	if (PQputCopyData(c, (const char *)a->p, (int)a->len) != 1 || PQputCopyEnd(c, NULL) != 1 ||
	    bare_ok(c, PQgetResult(c), "copy") < 0)
		return -1;
	while ((res = PQgetResult(c)) != NULL)
		PQclear(res);
	if (bare_ok(c, PQexecPrepared(c, "ins", 0, NULL, NULL, NULL, 0), "insert select") < 0)
		return -1;
	return bare_exec(c, "COMMIT");
}

static int batch_pipeline(PGconn *c, const struct store_reading *b, uint64_t be[][2])
{
	int fmt[5] = {1, 1, 1, 1, 1};
	PGresult *res;
	int rc = 0;

	if (PQenterPipelineMode(c) != 1 ||
	    PQsendQueryParams(c, "BEGIN", 0, NULL, NULL, NULL, NULL, 0) != 1)
		return -1;
	for (size_t k = 0; k < BATCH; k++) {
		static uint8_t e[BATCH];
		const char *v[5];
		int len[5] = {STREAM_ID_LEN, 8, 1, 8, (int)b[k].len};

		be[k][0] = htobe64(b[k].seq);
		be[k][1] = htobe64((uint64_t)b[k].received_ms);
		e[k] = b[k].emergency;
		v[0] = (const char *)b[k].stream;
		v[1] = (const char *)&be[k][0];
		v[2] = (const char *)&e[k];
		v[3] = (const char *)&be[k][1];
		v[4] = (const char *)b[k].data;
		if (PQsendQueryPrepared(c, "ins", 5, v, len, fmt, 0) != 1)
			return -1;
	}
	if (PQsendQueryParams(c, "COMMIT", 0, NULL, NULL, NULL, NULL, 0) != 1 ||
	    PQpipelineSync(c) != 1)
		return -1;
	for (;;) {
		if ((res = PQgetResult(c)) == NULL)
			continue;
		if (PQresultStatus(res) == PGRES_PIPELINE_SYNC) {
			PQclear(res);
			break;
		}
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
			rc = -1;
		PQclear(res);
	}
	return PQexitPipelineMode(c) == 1 ? rc : -1;
}

/* The same rows into the same tables, bare, the batch sent one way: rows per second; -1 on
 * failure. */
static double bare_insert(enum way way)
{
	static uint64_t be[BATCH][2];
	struct buf a[5] = {{NULL, 0}};
	PGconn *c = NULL;
	PGresult *res = NULL;
	char *sql = NULL;
	double t0, t = 0;
	int r = -1;

	for (int i = 0; i < 5; i++)
		if ((a[i].p = malloc(64 + BATCH * (16 + DATA_LEN + 5 * 4 + 32))) == NULL)
			goto out;
	if (fresh_db() < 0 || (c = bare_open()) == NULL)
		goto out;
	switch (way) {
	case WAY_UNNEST:
	case WAY_ARRIVAL:
		res = PQprepare(c, "ins", INSERT_SQL, 0, NULL);
		break;
	case WAY_VALUES: {
		size_t len = 0, cap = 200 + BATCH * 64;

		if ((sql = malloc(cap)) == NULL)
			goto out;
		len = (size_t)snprintf(sql, cap,
				       "INSERT INTO readings (stream, seq, emergency, "
				       "received_ms, data) VALUES ");
		for (int k = 0; k < BATCH; k++)
			len += (size_t)snprintf(
			    sql + len, cap - len,
			    "%s($%d::bytea,$%d::int8,$%d::bool,$%d::int8,$%d::bytea)",
			    k > 0 ? "," : "", k * 5 + 1, k * 5 + 2, k * 5 + 3, k * 5 + 4,
			    k * 5 + 5);
		snprintf(sql + len, cap - len, " ON CONFLICT (stream, seq) DO NOTHING");
		res = PQprepare(c, "ins", sql, 0, NULL);
		break;
	}
	case WAY_COPY:
		if (bare_exec(c, "CREATE TEMPORARY TABLE batch (stream bytea, seq int8, emergency "
				 "bool, received_ms int8, data bytea) ON COMMIT DELETE ROWS") < 0)
			goto out;
		res = PQprepare(c, "ins",
				"INSERT INTO readings (stream, seq, emergency, received_ms, data) "
				"SELECT * FROM batch ON CONFLICT (stream, seq) DO NOTHING",
				0, NULL);
		break;
	case WAY_PIPELINE:
		res = PQprepare(c, "ins",
				"INSERT INTO readings (stream, seq, emergency, received_ms, data) "
				"VALUES ($1::bytea, $2::int8, $3::bool, $4::int8, $5::bytea) ON "
				"CONFLICT (stream, seq) DO NOTHING",
				0, NULL);
		break;
	case WAYS:
		goto out;
	}
	if (bare_ok(c, res, "prepare") < 0)
		goto out;
	t0 = bench_now();
	for (size_t i = 0; i < READINGS; i += BATCH) {
		const struct store_reading *b = (way == WAY_ARRIVAL ? rs : sorted) + i;
		int rc = way == WAY_UNNEST || way == WAY_ARRIVAL ? batch_unnest(c, b, a)
			 : way == WAY_VALUES			 ? batch_values(c, b, be)
			 : way == WAY_COPY			 ? batch_copy(c, b, &a[0])
								 : batch_pipeline(c, b, be);

		if (rc < 0)
			goto out;
	}
	t = bench_now() - t0;
	r = 0;
out:
	for (int i = 0; i < 5; i++)
		free(a[i].p);
	free(sql);
	if (c != NULL && r == 0 && (res = PQexec(c, "SELECT count(*) FROM readings")) != NULL) {
		if (PQresultStatus(res) != PGRES_TUPLES_OK ||
		    atol(PQgetvalue(res, 0, 0)) != READINGS)
			r = -1;
		PQclear(res);
	}
	PQfinish(c);
	return r < 0 ? -1 : READINGS / t;
}

/* --- Delivery ---------------------------------------------------------------------------- */

/* The database of the last insert, its streams granted to one doctor, nothing delivered, the
 * dead rows of the last round vacuumed and the statistics fresh (autovacuum's work). */
static int delivery_setup(void)
{
	struct store *s = NULL;
	struct store_grant g = {.e0 = 1, .wrapped_len = 512, .granted_ms = 1};
	PGconn *c;
	int r;

	if ((r = open_store(&s)) < 0)
		return r;
	strcpy(g.doctor, DOCTOR);
	for (unsigned i = 0; i < STREAMS && r >= 0; i++) {
		stream_of(i, g.stream);
		r = store_grant_put(s, &g);
	}
	store_close(s);
	if (r < 0 || (c = bare_open()) == NULL)
		return -1;
	r = bare_exec(c, "UPDATE readings SET delivered = false WHERE delivered");
	if (r == 0)
		r = bare_exec(c, "VACUUM ANALYZE");
	PQfinish(c);
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
static double ours_delivery(double edge[2])
{
	struct store *s = NULL;
	struct catchup c = {.n = 0};
	double t0, t, q0, calls[READINGS / BATCH + 1];
	size_t total = 0, ncalls = 0, marked;

	if (delivery_setup() < 0 || open_store(&s) < 0)
		return -1;
	t0 = bench_now();
	for (;;) {
		c.n = 0;
		q0 = bench_now();
		if (store_queue(s, DOCTOR, BATCH, take, &c) < 0)
			goto fail;
		if (ncalls < READINGS / BATCH + 1)
			calls[ncalls++] = bench_now() - q0;
		if (c.n == 0)
			break;
		if (store_delivered(s, DOCTOR, c.ids, c.n, &marked) < 0 || marked != c.n)
			goto fail;
		total += marked;
	}
	t = bench_now() - t0;
	store_close(s);
	/* The last call found nothing: the edges are the calls that returned rows. */
	ncalls--;
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

/* The bare scan of every row's columns (binary), rows per second; with mark, 1,000 rows at a
 * time (by id) each marked delivered by one UPDATE. -1 on failure. */
static double bare_delivery(bool mark)
{
	const char *v[2];
	int len[2] = {8, 0}, fmt[2] = {1, 1};
	struct buf a = {NULL, 0};
	uint64_t bytes = 0, after = 0;
	size_t total = 0;
	double t0, t = 0;
	PGconn *c = NULL;
	PGresult *res = NULL;
	int r = -1;

	if (delivery_setup() < 0 || (c = bare_open()) == NULL ||
	    (a.p = malloc(64 + BATCH * 12)) == NULL)
		goto out;
	if (bare_ok(c,
		    PQprepare(c, "scan",
			      "SELECT id, stream, seq, emergency, received_ms, data FROM readings"
			      " WHERE id > $1::int8 ORDER BY id LIMIT $2::int8",
			      0, NULL),
		    "prepare") < 0 ||
	    bare_ok(c,
		    PQprepare(c, "mark",
			      "UPDATE readings SET delivered = true WHERE id = ANY($1::int8[])", 0,
			      NULL),
		    "prepare") < 0)
		goto out;
	t0 = bench_now();
	for (;;) {
		uint64_t be_after = htobe64(after), be_max = htobe64(mark ? BATCH : READINGS);
		int n;

		v[0] = (const char *)&be_after;
		v[1] = (const char *)&be_max;
		len[1] = 8;
		res = PQexecPrepared(c, "scan", 2, v, len, fmt, 1);
		if (PQresultStatus(res) != PGRES_TUPLES_OK)
			goto out;
		n = PQntuples(res);
		arr_start(&a, 20, (size_t)n);
		for (int i = 0; i < n; i++) {
			uint64_t id;

			memcpy(&id, PQgetvalue(res, i, 0), 8);
			after = be64toh(id);
			if (mark)
				elem64(&a, after);
			bytes +=
			    (uint8_t)PQgetvalue(res, i, 5)[0] + (uint64_t)PQgetlength(res, i, 5) +
			    (uint64_t)PQgetlength(res, i, 1) + (uint64_t)PQgetlength(res, i, 2) +
			    (uint64_t)PQgetlength(res, i, 3) + (uint64_t)PQgetlength(res, i, 4);
		}
		PQclear(res);
		res = NULL;
		total += (size_t)n;
		if (!mark || n == 0)
			break;
		v[0] = (const char *)a.p;
		len[0] = (int)a.len;
		if (bare_ok(c, PQexecPrepared(c, "mark", 1, v, len, fmt, 0), "mark") < 0)
			goto out;
		len[0] = 8;
	}
	t = bench_now() - t0;
	r = total == READINGS && bytes > 0 ? 0 : -1;
out:
	if (r < 0 && c != NULL)
		fprintf(stderr, "bench_relay_pg: bare delivery: %s", PQerrorMessage(c));
	PQclear(res);
	free(a.p);
	PQfinish(c);
	return r < 0 ? -1 : READINGS / t;
}

static double max2(double a, double b)
{
	return a > b ? a : b;
}

int main(void)
{
	double oi = 0, bi[WAYS] = {0}, od = 0, bs = 0, bm = 0, edge[2] = {0, 0};
	int rc = 1, r;

	log_init("bench_relay_pg", LOG_WARNING);
	if ((r = pg_start(&pg)) == -ENOENT) {
		printf("relay store (postgresql): skipped: %s\n", pg.why);
		return 0;
	}
	if (r < 0) {
		fprintf(stderr, "bench_relay_pg: cannot start PostgreSQL: %s\n", pg.why);
		return 1;
	}
	make_readings();
	sort_batches();
	for (int round = 0; round < ROUNDS; round++) {
		for (int w = 0; w < WAYS; w++) {
			double x = bare_insert((enum way)w);

			if (x < 0)
				goto fail;
			bi[w] = max2(bi[w], x);
		}
		double o = ours_insert();

		if (o < 0)
			goto fail;
		oi = max2(oi, o);
	}
	/* The last database holds the 100,000 readings of the last ours_insert(). */
	for (int round = 0; round < ROUNDS; round++) {
		double e[2], a = bare_delivery(false), b = ours_delivery(e),
			     c = bare_delivery(true);

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
	printf("relay store (postgresql) insert %d x %dB in batches of %d: %.0f readings/s  "
	       "ceiling (bare libpq, same tables, the same prepared statement, %d per "
	       "transaction, fsync on): %.0f rows/s  ratio %.0f%%\n",
	       READINGS, DATA_LEN, BATCH, oi, BATCH, bi[WAY_UNNEST],
	       bi[WAY_UNNEST] > 0 ? 100 * oi / bi[WAY_UNNEST] : 0);
	for (int w = 1; w < WAYS; w++)
		printf(
		    "relay store (postgresql) insert, bare, %s: %.0f rows/s  (the store: %.0f%% of "
		    "it)\n",
		    way_name[w], bi[w], bi[w] > 0 ? 100 * oi / bi[w] : 0);
	printf("relay store (postgresql) delivery of %d (queue %d + mark delivered): %.0f "
	       "readings/s  ceiling (bare SELECT scan of the same rows): %.0f rows/s  ratio "
	       "%.0f%%\n",
	       READINGS, BATCH, od, bs, bs > 0 ? 100 * od / bs : 0);
	printf("relay store (postgresql) delivery of %d: %.0f readings/s  beside bare scan + "
	       "UPDATE ... id = ANY() of %d: %.0f rows/s  ratio %.0f%%\n",
	       READINGS, od, BATCH, bm, bm > 0 ? 100 * od / bm : 0);
	printf("relay store (postgresql) queue call of %d: first %d calls %.2f ms each, last %d "
	       "%.2f ms each (no sort per call: the same)\n",
	       BATCH, EDGE, edge[0] * 1e3, EDGE, edge[1] * 1e3);
	rc = 0;
	goto out;
fail:
	fprintf(stderr, "bench_relay_pg: an operation failed\n");
	pg_show_log(&pg);
out:
	pg_remove(&pg);
	return rc;
}
