/* The relay's store on PostgreSQL (store_pg.c) against a real server (tests/unit/pg.c): a
 * cluster of the test's own, fsync on, each case in a database of its own. What store.h
 * promises: duplicates within and across batches stored once (the first copy), the queue's
 * order (emergencies, then stream and seq), delivered marks only the doctor's, grants kept by
 * the first doctor, history only of one's own streams, retention by time and by cap counted in
 * expired, stats, everything kept across a reopen, another schema refused; a server stopped
 * between calls or killed during a stream of batches gives errors, never a crash, and no batch
 * half stored; two instances on one database inserting overlapping batches at once store each
 * reading once, two opening a new database at once both find the schema, and two expiring at
 * once count each removal once. Skipped only when PostgreSQL is not installed. */
#include <endian.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <libpq-fe.h>

#include "log.h"
#include "store.h"

#include "pg.h"

static struct pg_server pg;
static int pg_status; /* pg_start()'s answer */
static int databases;

static void need_pg(void)
{
	if (pg_status == -ENOENT) {
		print_message("%s: skipped\n", pg.why);
		skip();
	}
	if (pg_status < 0)
		fail_msg("cannot start PostgreSQL: %s", pg.why);
}

/* A fresh database for one case; its connection string in pg.conninfo. */
static const char *fresh_db(void)
{
	char name[32];

	need_pg();
	snprintf(name, sizeof(name), "case%d", ++databases);
	if (pg_createdb(&pg, name) < 0) {
		pg_show_log(&pg);
		fail_msg("createdb %s", name);
	}
	return pg.conninfo;
}

static struct store *open_pg(const char *conninfo)
{
	struct store_opts o = {.kind = STORE_POSTGRESQL, .conninfo = conninfo};
	struct store *s = NULL;

	assert_int_equal(store_open(&o, &s), 0);
	assert_non_null(s);
	return s;
}

/* One SQL statement straight through libpq: what the store must not be trusted to tell. */
static long long sql_value(const char *conninfo, const char *sql)
{
	PGconn *c = PQconnectdb(conninfo);
	PGresult *res;
	long long v = -1;

	assert_int_equal(PQstatus(c), CONNECTION_OK);
	res = PQexec(c, sql);
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
		v = atoll(PQgetvalue(res, 0, 0));
	else if (PQresultStatus(res) != PGRES_COMMAND_OK)
		fail_msg("%s: %s", sql, PQerrorMessage(c));
	PQclear(res);
	PQfinish(c);
	return v;
}

/* --- Readings and what comes back ------------------------------------------------------ */

#define DATA_LEN 40

struct rd {
	struct store_reading r;
	uint8_t data[DATA_LEN];
};

/* Stream i's id: 16 bytes, i in the first and a zero inside (bytea, not text). */
static void stream_of(uint8_t id[STREAM_ID_LEN], int i)
{
	memset(id, 0xa5, STREAM_ID_LEN);
	id[0] = (uint8_t)i;
	id[5] = 0;
}

static void mkread(struct rd *x, int stream, uint64_t seq, bool emergency, int64_t received_ms,
		   uint8_t tag)
{
	memset(x, 0, sizeof(*x));
	stream_of(x->r.stream, stream);
	x->r.device[0] = (uint8_t)stream; /* a kit per stream: its own, bound to it */
	x->r.seq = seq;
	x->r.emergency = emergency;
	x->r.received_ms = received_ms;
	for (int i = 0; i < DATA_LEN; i++)
		x->data[i] = (uint8_t)(tag + i);
	x->data[3] = 0; /* a zero byte inside */
	x->data[7] = (uint8_t)seq;
	x->r.data = x->data;
	x->r.len = DATA_LEN;
}

/* Insert readings given as struct rd. */
static int insert_each(struct store *s, struct rd *x, size_t n, size_t *ret_new,
		       enum store_outcome *ret_each)
{
	struct store_reading *rs = calloc(n, sizeof(*rs));
	int r;

	assert_non_null(rs);
	for (size_t i = 0; i < n; i++)
		rs[i] = x[i].r;
	r = store_insert_each(s, rs, n, ret_new, ret_each);
	free(rs);
	return r;
}

static int insert_rd(struct store *s, struct rd *x, size_t n, size_t *ret_new)
{
	return insert_each(s, x, n, ret_new, NULL);
}

#define GOT_MAX 4096

struct got {
	size_t n;
	struct store_reading r[GOT_MAX];
	uint8_t data[GOT_MAX][DATA_LEN];
	int stop_at; /* the callback returns -ECANCELED at this row (0: never) */
};

static int collect(const struct store_reading *r, void *userdata)
{
	struct got *g = userdata;

	if (g->stop_at > 0 && (size_t)g->stop_at == g->n + 1)
		return -ECANCELED;
	assert_true(g->n < GOT_MAX);
	assert_int_equal(r->len, DATA_LEN);
	g->r[g->n] = *r;
	memcpy(g->data[g->n], r->data, DATA_LEN);
	g->r[g->n].data = g->data[g->n];
	g->n++;
	return 0;
}

static void grant(struct store *s, int stream, const char *doctor, int64_t at_ms, int want)
{
	struct store_grant g = {.e0 = 7, .wrapped_len = 3, .granted_ms = at_ms};

	stream_of(g.stream, stream);
	snprintf(g.doctor, sizeof(g.doctor), "%s", doctor);
	memcpy(g.wrapped, "w\0x", 3);
	assert_int_equal(store_grant_put(s, &g), want);
}

static bool is_stream(const struct store_reading *r, int stream)
{
	uint8_t id[STREAM_ID_LEN];

	stream_of(id, stream);
	return memcmp(r->stream, id, STREAM_ID_LEN) == 0;
}

/* --- Cases ---------------------------------------------------------------------------- */

/* Duplicates within one batch and across batches are stored once, the first copy kept;
 * *ret_new counts the new ones; bytes come back exactly. */
static void test_duplicates(void **state)
{
	struct store *s;
	struct rd a[4], b[3];
	struct got *g = calloc(1, sizeof(*g));
	size_t n = 99;
	(void)state;

	s = open_pg(fresh_db());
	mkread(&a[0], 1, 1, false, 1000, 10);
	mkread(&a[1], 1, 2, false, 1000, 20);
	mkread(&a[2], 1, 1, false, 1001, 30); /* the same (stream, seq) as a[0], other bytes */
	mkread(&a[3], 2, 1, false, 1000, 40); /* the same seq in another stream: not a duplicate */
	assert_int_equal(store_holds(s, &a[0].r), 0);
	assert_int_equal(insert_rd(s, a, 4, &n), 0);
	assert_int_equal(n, 3);
	/* store_holds(): the first copy's exact bytes only. */
	assert_int_equal(store_holds(s, &a[0].r), 1);
	assert_int_equal(store_holds(s, &a[2].r), 0);
	assert_int_equal(store_holds(s, &a[3].r), 1);
	a[3].r.len--;
	assert_int_equal(store_holds(s, &a[3].r), 0);
	a[3].r.len++;
	mkread(&b[0], 1, 2, false, 2000, 50); /* already stored */
	mkread(&b[1], 1, 3, false, 2000, 60);
	mkread(&b[2], 1, 3, false, 2000, 70); /* twice in this batch too */
	assert_int_equal(insert_rd(s, b, 3, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(insert_rd(s, b, 3, &n), 0); /* the same batch again: nothing new */
	assert_int_equal(n, 0);
	assert_int_equal(insert_rd(s, b, 3, NULL), 0);

	grant(s, 1, "doc1", 1, 0);
	assert_int_equal(store_history(s, "doc1", a[0].r.stream, 0, 100, collect, g), 0);
	assert_int_equal(g->n, 3);
	assert_int_equal(g->r[0].seq, 1);
	assert_memory_equal(g->data[0], a[0].data, DATA_LEN); /* the first copy, not a[2]'s */
	assert_int_equal(g->r[0].received_ms, 1000);
	assert_memory_equal(g->data[1], a[1].data, DATA_LEN);
	assert_memory_equal(g->data[2], b[1].data, DATA_LEN);
	assert_true(g->r[0].id > 0 && g->r[0].id < g->r[2].id);
	assert_int_equal(sql_value(pg.conninfo, "SELECT count(*) FROM readings"), 4);
	/* Stored as bytes (bytea), not as text. */
	assert_int_equal(sql_value(pg.conninfo, "SELECT min(length(data)) FROM readings"),
			 DATA_LEN);
	assert_int_equal(sql_value(pg.conninfo, "SELECT min(length(stream)) FROM readings"),
			 STREAM_ID_LEN);
	store_close(s);
	free(g);
}

/* What store.c refuses never reaches the database, and a refused batch stores nothing. */
static void test_bad_batches(void **state)
{
	struct store *s;
	struct rd a[2];
	size_t n = 99;
	(void)state;

	s = open_pg(fresh_db());
	mkread(&a[0], 1, 1, false, 1000, 1);
	mkread(&a[1], 1, 2, false, 1000, 2);
	a[1].r.data = NULL;
	assert_int_equal(insert_rd(s, a, 2, &n), -EINVAL);
	mkread(&a[1], 1, 2, false, 1000, 2);
	a[1].r.len = 0;
	assert_int_equal(insert_rd(s, a, 2, &n), -EINVAL);
	mkread(&a[1], 1, (uint64_t)INT64_MAX + 1, false, 1000, 2);
	assert_int_equal(insert_rd(s, a, 2, &n), -EINVAL);
	assert_int_equal(n, 99);
	assert_int_equal(sql_value(pg.conninfo, "SELECT count(*) FROM readings"), 0);
	/* The largest seq there is. */
	mkread(&a[1], 1, INT64_MAX, false, 1000, 2);
	assert_int_equal(insert_rd(s, a, 2, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(store_insert(s, NULL, 0, &n), 0);
	assert_int_equal(n, 0);
	store_close(s);
}

/* The queue: the doctor's streams only, emergencies first, then by (stream, seq); a stream
 * granted later joins with what it had; max bounds it; fn's error stops it. */
static void test_queue_order(void **state)
{
	struct store *s;
	struct rd a[9];
	struct got *g = calloc(1, sizeof(*g));
	(void)state;

	s = open_pg(fresh_db());
	grant(s, 2, "doc1", 10, 0);
	grant(s, 1, "doc1", 11, 0);
	grant(s, 3, "doc2", 12, 0);
	/* Arrival order unlike the delivery order. */
	mkread(&a[0], 2, 5, false, 100, 1);
	mkread(&a[1], 1, 9, false, 101, 2);
	mkread(&a[2], 2, 1, true, 102, 3);
	mkread(&a[3], 1, 3, false, 103, 4);
	mkread(&a[4], 3, 1, true, 104, 5); /* doc2's */
	mkread(&a[5], 1, 7, true, 105, 6);
	mkread(&a[6], 4, 1, true, 106, 7); /* nobody's yet */
	mkread(&a[7], 2, 2, false, 107, 8);
	mkread(&a[8], 4, 2, false, 108, 9);
	assert_int_equal(insert_rd(s, a, 9, NULL), 0);

	assert_int_equal(store_queue(s, "doc1", 100, collect, g), 0);
	assert_int_equal(g->n, 6);
	/* Emergencies: stream 1 seq 7, stream 2 seq 1; then stream 1: 3, 9; stream 2: 2, 5. */
	assert_true(is_stream(&g->r[0], 1) && g->r[0].seq == 7 && g->r[0].emergency);
	assert_true(is_stream(&g->r[1], 2) && g->r[1].seq == 1 && g->r[1].emergency);
	assert_true(is_stream(&g->r[2], 1) && g->r[2].seq == 3 && !g->r[2].emergency);
	assert_true(is_stream(&g->r[3], 1) && g->r[3].seq == 9);
	assert_true(is_stream(&g->r[4], 2) && g->r[4].seq == 2);
	assert_true(is_stream(&g->r[5], 2) && g->r[5].seq == 5);
	assert_memory_equal(g->data[3], a[1].data, DATA_LEN);
	assert_int_equal(g->r[3].received_ms, 101);
	assert_false(g->r[3].delivered);

	memset(g, 0, sizeof(*g));
	assert_int_equal(store_queue(s, "doc1", 2, collect, g), 0);
	assert_int_equal(g->n, 2);
	assert_int_equal(g->r[1].seq, 1);

	memset(g, 0, sizeof(*g));
	g->stop_at = 3;
	assert_int_equal(store_queue(s, "doc1", 100, collect, g), -ECANCELED);
	assert_int_equal(g->n, 2);

	memset(g, 0, sizeof(*g));
	assert_int_equal(store_queue(s, "nobody", 100, collect, g), 0);
	assert_int_equal(g->n, 0);
	assert_int_equal(store_queue(s, "", 100, collect, g), -EINVAL);

	/* Stream 4 granted to doc2: its two readings join doc2's queue, emergencies first. */
	grant(s, 4, "doc2", 13, 0);
	memset(g, 0, sizeof(*g));
	assert_int_equal(store_queue(s, "doc2", 100, collect, g), 0);
	assert_int_equal(g->n, 3);
	assert_true(is_stream(&g->r[0], 3) && g->r[0].emergency);
	assert_true(is_stream(&g->r[1], 4) && g->r[1].seq == 1);
	assert_true(is_stream(&g->r[2], 4) && g->r[2].seq == 2);
	store_close(s);
	free(g);
}

struct mark {
	struct store *s;
	int calls;
};

/* A queue callback that marks each reading as it goes (a fetch that delivers). */
static int mark_each(const struct store_reading *r, void *userdata)
{
	struct mark *m = userdata;
	size_t n = 9;

	assert_int_equal(store_delivered(m->s, "doc1", &r->id, 1, &n), 0);
	assert_int_equal(n, 1);
	m->calls++;
	return 0;
}

/* Delivered marks only the doctor's readings; they leave the queue but stay in history. */
static void test_delivered(void **state)
{
	struct store *s;
	struct rd a[4];
	struct got *g = calloc(1, sizeof(*g));
	int64_t ids[6];
	size_t n = 99;
	struct mark m;
	(void)state;

	s = open_pg(fresh_db());
	grant(s, 1, "doc1", 1, 0);
	grant(s, 2, "doc2", 1, 0);
	mkread(&a[0], 1, 1, false, 100, 1);
	mkread(&a[1], 1, 2, false, 100, 2);
	mkread(&a[2], 2, 1, false, 100, 3);
	mkread(&a[3], 3, 1, false, 100, 4); /* nobody's */
	assert_int_equal(insert_rd(s, a, 4, NULL), 0);
	ids[0] = sql_value(pg.conninfo, "SELECT id FROM readings WHERE seq = 1 AND "
					"get_byte(stream, 0) = 1");
	ids[1] = sql_value(pg.conninfo, "SELECT id FROM readings WHERE get_byte(stream, 0) = 2");
	ids[2] = sql_value(pg.conninfo, "SELECT id FROM readings WHERE get_byte(stream, 0) = 3");
	ids[3] = 999999; /* no such reading */
	ids[4] = -1;
	ids[5] = ids[0]; /* twice */
	assert_int_equal(store_delivered(s, "doc1", ids, 6, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(store_delivered(s, "doc1", ids, 1, &n), 0);
	assert_int_equal(n, 0); /* already delivered */
	assert_int_equal(store_delivered(s, "doc1", ids, 1, NULL), 0);
	assert_int_equal(sql_value(pg.conninfo, "SELECT count(*) FROM readings WHERE delivered"),
			 1);

	assert_int_equal(store_queue(s, "doc1", 100, collect, g), 0);
	assert_int_equal(g->n, 1);
	assert_int_equal(g->r[0].seq, 2);
	memset(g, 0, sizeof(*g));
	assert_int_equal(store_queue(s, "doc2", 100, collect, g), 0);
	assert_int_equal(g->n, 1);
	memset(g, 0, sizeof(*g));
	assert_int_equal(store_history(s, "doc1", a[0].r.stream, 0, 100, collect, g), 0);
	assert_int_equal(g->n, 2);
	assert_true(g->r[0].delivered);
	assert_false(g->r[1].delivered);

	/* Marking from inside the queue's callback. */
	m.s = s;
	m.calls = 0;
	assert_int_equal(store_queue(s, "doc1", 100, mark_each, &m), 0);
	assert_int_equal(m.calls, 1);
	memset(g, 0, sizeof(*g));
	assert_int_equal(store_queue(s, "doc1", 100, collect, g), 0);
	assert_int_equal(g->n, 0);
	assert_int_equal(store_delivered(s, "doc1", NULL, 1, &n), -EINVAL);
	store_close(s);
	free(g);
}

#define CATCH_N 3000

/* A doctor catching up 128 at a time, behind another doctor's backlog: each reading once, in
 * delivery order across the calls, and the other doctor's left waiting. */
static void test_catch_up(void **state)
{
	struct store *s;
	struct rd *a = calloc(CATCH_N, sizeof(*a));
	struct got *g = calloc(1, sizeof(*g));
	int64_t ids[128];
	uint8_t prev[STREAM_ID_LEN + 9], key[STREAM_ID_LEN + 9];
	size_t total = 0, mine = 0, n;
	(void)state;

	assert_non_null(a);
	s = open_pg(fresh_db());
	for (int i = 0; i < 8; i++)
		grant(s, i, i < 2 ? "doc2" : "doc1", i, 0); /* doc2's streams sort first */
	for (int i = 0; i < CATCH_N; i++) {
		mkread(&a[i], i % 8, (uint64_t)(CATCH_N - i), i % 97 == 0, i, (uint8_t)i);
		mine += i % 8 >= 2;
	}
	for (int i = 0; i < CATCH_N; i += 500)
		assert_int_equal(insert_rd(s, a + i, 500, NULL), 0);
	memset(prev, 0, sizeof(prev));
	for (int call = 0; call < 100; call++) {
		memset(g, 0, sizeof(*g));
		assert_int_equal(store_queue(s, "doc1", 128, collect, g), 0);
		if (g->n == 0)
			break;
		for (size_t i = 0; i < g->n; i++) {
			uint64_t be = htobe64(g->r[i].seq);

			/* The delivery order as bytes: not emergency, stream, seq. */
			key[0] = !g->r[i].emergency;
			memcpy(key + 1, g->r[i].stream, STREAM_ID_LEN);
			memcpy(key + 1 + STREAM_ID_LEN, &be, 8);
			assert_true(memcmp(prev, key, sizeof(key)) < 0);
			memcpy(prev, key, sizeof(key));
			assert_false(is_stream(&g->r[i], 0) || is_stream(&g->r[i], 1));
			ids[i] = g->r[i].id;
		}
		assert_int_equal(store_delivered(s, "doc1", ids, g->n, &n), 0);
		assert_int_equal(n, g->n);
		total += n;
	}
	assert_int_equal(total, mine);
	memset(g, 0, sizeof(*g));
	assert_int_equal(store_queue(s, "doc2", GOT_MAX, collect, g), 0);
	assert_int_equal(g->n, CATCH_N - mine);
	store_close(s);
	free(a);
	free(g);
}

struct grants_seen {
	size_t n;
	struct store_grant g[8];
};

static int grant_seen(const struct store_grant *g, void *userdata)
{
	struct grants_seen *gs = userdata;

	assert_true(gs->n < 8);
	gs->g[gs->n++] = *g;
	return 0;
}

static int grant_stop(const struct store_grant *g, void *userdata)
{
	(void)g;
	(void)userdata;
	return -EINTR;
}

/* A grant is the first doctor's: the same doctor replaces it, another gets -EEXIST and the row
 * stays; grants come newest first, wrapped byte for byte. */
static void test_grants(void **state)
{
	struct store *s;
	struct store_grant g = {.e0 = UINT32_MAX, .granted_ms = 500};
	struct grants_seen *gs = calloc(1, sizeof(*gs));
	(void)state;

	s = open_pg(fresh_db());
	stream_of(g.stream, 1);
	snprintf(g.doctor, sizeof(g.doctor), "doc1");
	for (size_t i = 0; i < STORE_WRAPPED_MAX; i++)
		g.wrapped[i] = (uint8_t)(i * 7);
	g.wrapped_len = STORE_WRAPPED_MAX;
	assert_int_equal(store_grant_put(s, &g), 0);
	grant(s, 2, "doc1", 400, 0);
	grant(s, 3, "doc2", 600, 0);
	grant(s, 1, "doc2", 700, -EEXIST); /* doc1's */

	assert_int_equal(store_grants(s, "doc1", grant_seen, gs), 0);
	assert_int_equal(gs->n, 2);
	assert_memory_equal(gs->g[0].stream, g.stream, STREAM_ID_LEN); /* 500 before 400 */
	assert_string_equal(gs->g[0].doctor, "doc1");
	assert_int_equal(gs->g[0].e0, UINT32_MAX);
	assert_int_equal(gs->g[0].wrapped_len, STORE_WRAPPED_MAX);
	assert_memory_equal(gs->g[0].wrapped, g.wrapped, STORE_WRAPPED_MAX);
	assert_int_equal(gs->g[0].granted_ms, 500);
	assert_int_equal(gs->g[1].granted_ms, 400);

	/* The same doctor again: replaced. */
	g.e0 = 3;
	g.wrapped_len = 1;
	g.granted_ms = 300;
	assert_int_equal(store_grant_put(s, &g), 0);
	memset(gs, 0, sizeof(*gs));
	assert_int_equal(store_grants(s, "doc1", grant_seen, gs), 0);
	assert_int_equal(gs->n, 2);
	assert_int_equal(gs->g[0].granted_ms, 400);
	assert_int_equal(gs->g[1].e0, 3);
	assert_int_equal(gs->g[1].wrapped_len, 1);
	memset(gs, 0, sizeof(*gs));
	assert_int_equal(store_grants(s, "doc2", grant_seen, gs), 0);
	assert_int_equal(gs->n, 1);
	assert_int_equal(store_grants(s, "doc1", grant_stop, NULL), -EINTR);
	memset(gs, 0, sizeof(*gs));
	assert_int_equal(store_grants(s, "doc3", grant_seen, gs), 0);
	assert_int_equal(gs->n, 0);

	/* Refused before the database. */
	g.wrapped_len = STORE_WRAPPED_MAX + 1;
	assert_int_equal(store_grant_put(s, &g), -EMSGSIZE);
	g.wrapped_len = 1;
	g.doctor[0] = '\0';
	assert_int_equal(store_grant_put(s, &g), -EINVAL);
	memset(g.doctor, 'x', sizeof(g.doctor)); /* no NUL */
	assert_int_equal(store_grant_put(s, &g), -EINVAL);
	assert_int_equal(sql_value(pg.conninfo, "SELECT count(*) FROM grants"), 3);
	store_close(s);
	free(gs);
}

/* History: one's own stream only, by seq after after_seq, at most max. */
static void test_history(void **state)
{
	struct store *s;
	struct rd a[5];
	struct got *g = calloc(1, sizeof(*g));
	uint8_t other[STREAM_ID_LEN];
	(void)state;

	s = open_pg(fresh_db());
	grant(s, 1, "doc1", 1, 0);
	grant(s, 2, "doc2", 1, 0);
	for (int i = 0; i < 5; i++)
		mkread(&a[i], 1, (uint64_t)(10 - i), i == 2, 100 + i, (uint8_t)i);
	assert_int_equal(insert_rd(s, a, 5, NULL), 0);
	assert_int_equal(store_history(s, "doc1", a[0].r.stream, 6, 2, collect, g), 0);
	assert_int_equal(g->n, 2);
	assert_int_equal(g->r[0].seq, 7);
	assert_int_equal(g->r[1].seq, 8);
	assert_true(g->r[1].emergency);
	memset(g, 0, sizeof(*g));
	assert_int_equal(store_history(s, "doc1", a[0].r.stream, UINT64_MAX, 10, collect, g), 0);
	assert_int_equal(g->n, 0);
	assert_int_equal(store_history(s, "doc1", a[0].r.stream, 0, 0, collect, g), 0);
	assert_int_equal(g->n, 0);

	assert_int_equal(store_history(s, "doc2", a[0].r.stream, 0, 10, collect, g), -EACCES);
	assert_int_equal(store_history(s, "doc2", a[0].r.stream, 0, 0, collect, g), -EACCES);
	stream_of(other, 9); /* granted to nobody */
	assert_int_equal(store_history(s, "doc1", other, 0, 10, collect, g), -EACCES);
	assert_int_equal(g->n, 0);
	store_close(s);
	free(g);
}

struct expired_seen {
	size_t n;
	struct store_expired e[8];
};

static int expired_seen(const struct store_expired *e, void *userdata)
{
	struct expired_seen *es = userdata;

	assert_true(es->n < 8);
	es->e[es->n++] = *e;
	return 0;
}

/* Retention by time and by cap, at most max a call, counted per stream in expired. */
static void test_expire(void **state)
{
	struct store *s;
	struct rd a[20];
	struct expired_seen *es = calloc(1, sizeof(*es));
	struct store_stats st;
	int64_t id;
	size_t n = 99;
	(void)state;

	s = open_pg(fresh_db());
	grant(s, 1, "doc1", 1, 0);
	grant(s, 2, "doc2", 1, 0);
	/* Stream 1: seqs 1..10 received at 1000..1009; stream 2: seqs 1..10 at 5000. */
	for (int i = 0; i < 10; i++) {
		mkread(&a[i], 1, (uint64_t)i + 1, false, 1000 + i, (uint8_t)i);
		mkread(&a[10 + i], 2, (uint64_t)i + 1, false, 5000, (uint8_t)i);
	}
	assert_int_equal(insert_rd(s, a, 20, NULL), 0);
	id = sql_value(pg.conninfo, "SELECT id FROM readings WHERE get_byte(stream, 0) = 1 AND "
				    "seq = 2");
	assert_int_equal(store_delivered(s, "doc1", &id, 1, NULL), 0);

	/* Before 1004 (retention 996 at 2000): seqs 1-4 of stream 1, two a call. */
	assert_int_equal(store_expire(s, 2000, 996, 1000, 2, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(store_expire(s, 2001, 997, 1000, 2, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(store_expire(s, 2002, 998, 1000, 2, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(store_expired_of(s, "doc1", expired_seen, es), 0);
	assert_int_equal(es->n, 1);
	assert_int_equal(es->e[0].count, 4);
	assert_int_equal(es->e[0].undelivered, 3); /* seq 2 was delivered */
	assert_int_equal(es->e[0].first_seq, 1);
	assert_int_equal(es->e[0].last_seq, 4);
	assert_int_equal(es->e[0].at_ms, 2001);

	/* Cap 3: stream 1 keeps 8, 9, 10 (5-7 go); stream 2 keeps 8-10 (1-7 go). */
	assert_int_equal(store_expire(s, 3000, 3000, 3, 100, &n), 0);
	assert_int_equal(n, 3 + 7);
	assert_int_equal(store_expire(s, 3000, 3000, 3, 100, NULL), 0);
	assert_int_equal(sql_value(pg.conninfo, "SELECT count(*) FROM readings"), 6);
	assert_int_equal(sql_value(pg.conninfo, "SELECT min(seq) FROM readings"), 8);
	memset(es, 0, sizeof(*es));
	assert_int_equal(store_expired_of(s, "doc1", expired_seen, es), 0);
	assert_int_equal(es->n, 1);
	assert_int_equal(es->e[0].count, 7);
	assert_int_equal(es->e[0].undelivered, 6);
	assert_int_equal(es->e[0].first_seq, 1);
	assert_int_equal(es->e[0].last_seq, 7);
	assert_int_equal(es->e[0].at_ms, 3000);
	memset(es, 0, sizeof(*es));
	assert_int_equal(store_expired_of(s, "doc2", expired_seen, es), 0);
	assert_int_equal(es->n, 1);
	assert_int_equal(es->e[0].count, 7);
	assert_int_equal(es->e[0].last_seq, 7);
	memset(es, 0, sizeof(*es));
	assert_int_equal(store_expired_of(s, "doc3", expired_seen, es), 0);
	assert_int_equal(es->n, 0);
	assert_int_equal(store_stats(s, &st), 0);
	assert_int_equal(st.expired, 14);
	assert_int_equal(st.readings, 6);

	/* A duplicate of an expired reading is stored again (the store keeps no tombstones),
	 * and a retention of everything empties the store. */
	assert_int_equal(store_expire(s, 10000, 0, INT64_MAX, 100, &n), 0);
	assert_int_equal(n, 6);
	assert_int_equal(sql_value(pg.conninfo, "SELECT count(*) FROM readings"), 0);
	assert_int_equal(store_expire(s, -1, 0, 3, 100, &n), -EINVAL);
	store_close(s);
	free(es);
}

struct queues_seen {
	size_t n;
	struct store_queue q[4];
};

static int queue_seen(const struct store_queue *q, void *userdata)
{
	struct queues_seen *qs = userdata;

	assert_true(qs->n < 4);
	qs->q[qs->n++] = *q;
	return 0;
}

/* Stats and the per-doctor queues. */
static void test_stats(void **state)
{
	struct store *s;
	struct store_stats st;
	struct queues_seen *qs = calloc(1, sizeof(*qs));
	struct rd a[4];
	int64_t id;
	(void)state;

	s = open_pg(fresh_db());
	assert_int_equal(store_stats(s, &st), 0);
	assert_int_equal(st.readings, 0);
	assert_int_equal(st.undelivered, 0);
	assert_int_equal(st.oldest_undelivered_ms, 0);
	assert_true(st.bytes > 1000000); /* pg_database_size: a new database is megabytes */
	grant(s, 1, "doc1", 1, 0);
	grant(s, 2, "doc2", 1, 0);
	mkread(&a[0], 1, 1, true, 300, 1);
	mkread(&a[1], 1, 2, false, 200, 2);
	mkread(&a[2], 3, 1, true, 100, 3); /* nobody's */
	mkread(&a[3], 1, 3, false, 400, 4);
	assert_int_equal(insert_rd(s, a, 4, NULL), 0);
	id = sql_value(pg.conninfo, "SELECT id FROM readings WHERE received_ms = 100");
	/* doc1 cannot mark another's reading... */
	assert_int_equal(store_delivered(s, "doc1", &id, 1, NULL), 0);
	id = sql_value(pg.conninfo, "SELECT id FROM readings WHERE received_ms = 200");
	assert_int_equal(store_delivered(s, "doc1", &id, 1, NULL), 0);
	assert_int_equal(store_stats(s, &st), 0);
	assert_int_equal(st.readings, 4);
	assert_int_equal(st.undelivered, 3);
	assert_int_equal(st.emergencies_undelivered, 2);
	assert_int_equal(st.oldest_undelivered_ms, 100);
	assert_int_equal(st.expired, 0);

	assert_int_equal(store_queues(s, queue_seen, qs), 0);
	assert_int_equal(qs->n, 2);
	assert_string_equal(qs->q[0].doctor, "doc1");
	assert_int_equal(qs->q[0].undelivered, 2);
	assert_int_equal(qs->q[0].oldest_ms, 300);
	assert_string_equal(qs->q[1].doctor, "doc2");
	assert_int_equal(qs->q[1].undelivered, 0);
	assert_int_equal(qs->q[1].oldest_ms, 0);
	assert_int_equal(store_stats(s, NULL), -EINVAL);
	store_close(s);
	free(qs);
}

/* Closed and opened again: everything is there, ids go on rising, and the queue function is
 * this program's again. */
static void test_reopen(void **state)
{
	struct store *s;
	struct rd a[3];
	struct got *g = calloc(1, sizeof(*g));
	struct grants_seen *gs = calloc(1, sizeof(*gs));
	struct expired_seen *es = calloc(1, sizeof(*es));
	const char *conninfo = fresh_db();
	int64_t last;
	size_t n;
	(void)state;

	s = open_pg(conninfo);
	grant(s, 1, "doc1", 42, 0);
	mkread(&a[0], 1, 1, false, 100, 1);
	mkread(&a[1], 1, 2, true, 5000, 2);
	assert_int_equal(insert_rd(s, a, 2, NULL), 0);
	assert_int_equal(store_expire(s, 1000, 500, 100, 100, &n), 0);
	assert_int_equal(n, 1);
	last = sql_value(conninfo, "SELECT max(id) FROM readings");
	store_close(s);
	/* An older program's queue function: the store puts its own back. */
	sql_value(conninfo, "CREATE OR REPLACE FUNCTION relay_queue(who text, max int8) RETURNS "
			    "SETOF readings LANGUAGE sql AS 'SELECT * FROM readings WHERE false'");

	s = open_pg(conninfo);
	assert_int_equal(store_grants(s, "doc1", grant_seen, gs), 0);
	assert_int_equal(gs->n, 1);
	assert_int_equal(gs->g[0].granted_ms, 42);
	assert_int_equal(store_expired_of(s, "doc1", expired_seen, es), 0);
	assert_int_equal(es->n, 1);
	mkread(&a[2], 1, 3, false, 6000, 3);
	assert_int_equal(insert_rd(s, a, 3, &n), 0);
	assert_int_equal(n, 2); /* seq 1 expired: stored again; seq 2 kept: a duplicate */
	assert_int_equal(store_queue(s, "doc1", 10, collect, g), 0);
	assert_int_equal(g->n, 3);
	assert_int_equal(g->r[0].seq, 2);
	assert_int_equal(g->r[0].id, last);
	assert_true(g->r[1].id > last && g->r[2].id > last);
	store_close(s);
	free(g);
	free(gs);
	free(es);
}

/* A database of another schema version is refused; so is one that cannot be reached. */
static void test_schema_mismatch(void **state)
{
	struct store_opts o = {.kind = STORE_POSTGRESQL};
	struct store *s = NULL;
	char bad[300];
	(void)state;

	o.conninfo = fresh_db();
	s = open_pg(o.conninfo);
	store_close(s);
	s = NULL;
	sql_value(o.conninfo, "UPDATE meta SET value = '1' WHERE key = 'version'");
	assert_int_equal(store_open(&o, &s), -EPROTO);
	assert_null(s);
	sql_value(o.conninfo, "UPDATE meta SET value = '2' WHERE key = 'version'");
	s = open_pg(o.conninfo);
	store_close(s);
	s = NULL;

	/* A table of ours that someone else made differently, without the version row. */
	o.conninfo = fresh_db();
	sql_value(o.conninfo, "CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL)");
	sql_value(o.conninfo, "INSERT INTO meta VALUES ('version', 'other')");
	assert_int_equal(store_open(&o, &s), -EPROTO);
	assert_null(s);

	snprintf(bad, sizeof(bad), "host=%s/nowhere dbname=x user=%s connect_timeout=2", pg.dir,
		 PG_USER);
	o.conninfo = bad;
	assert_true(store_open(&o, &s) < 0);
	assert_null(s);
	o.conninfo = "this is not = a connection string";
	assert_true(store_open(&o, &s) < 0);
	snprintf(bad, sizeof(bad), "host=%s dbname=nosuchdb user=%s", pg.dir, PG_USER);
	o.conninfo = bad;
	assert_true(store_open(&o, &s) < 0);
	assert_null(s);
	o.conninfo = NULL;
	assert_int_equal(store_open(&o, &s), -EINVAL);
}

/* The server stopped between calls: errors, not a crash; started again, the store connects
 * again by itself, and the batch that failed is not there. Stopped and started again between
 * two calls: the next call works. */
static void test_server_stopped(void **state)
{
	struct store *s;
	struct rd a[3];
	struct got *g = calloc(1, sizeof(*g));
	struct store_stats st;
	size_t n = 99;
	int r;
	(void)state;

	s = open_pg(fresh_db());
	grant(s, 1, "doc1", 1, 0);
	mkread(&a[0], 1, 1, false, 100, 1);
	assert_int_equal(insert_rd(s, a, 1, NULL), 0);
	assert_int_equal(pg_stop(&pg, "fast"), 0);

	mkread(&a[1], 1, 2, false, 100, 2);
	mkread(&a[2], 1, 3, false, 100, 3);
	r = insert_rd(s, a + 1, 2, &n);
	assert_true(r < 0);
	assert_int_equal(n, 99);
	assert_true(store_queue(s, "doc1", 10, collect, g) < 0);
	assert_true(store_stats(s, &st) < 0);
	assert_true(store_expire(s, 1000, 1, 1, 1, NULL) < 0);
	assert_int_equal(g->n, 0);

	assert_int_equal(pg_restart(&pg), 0);
	assert_int_equal(sql_value(pg.conninfo, "SELECT count(*) FROM readings"), 1);
	assert_int_equal(store_queue(s, "doc1", 10, collect, g), 0);
	assert_int_equal(g->n, 1);
	assert_int_equal(insert_rd(s, a + 1, 2, &n), 0);
	assert_int_equal(n, 2);

	/* Restarted between two calls (a failover): the next call connects again by itself. */
	assert_int_equal(pg_stop(&pg, "fast"), 0);
	assert_int_equal(pg_restart(&pg), 0);
	assert_int_equal(store_stats(s, &st), 0);
	assert_int_equal(st.readings, 3);
	assert_int_equal(pg_stop(&pg, "immediate"), 0);
	assert_int_equal(pg_restart(&pg), 0);
	mkread(&a[0], 1, 4, false, 100, 4);
	assert_int_equal(insert_rd(s, a, 1, &n), 0);
	assert_int_equal(n, 1);
	store_close(s);
	free(g);
}

/* --- Batches while the server is killed --------------------------------------------------- */

#define KILL_BATCHES 400
#define KILL_BATCH   200

struct feeder {
	struct store *s;
	int rc[KILL_BATCHES];
	int done;
};

/* Batch b: KILL_BATCH readings of stream 100 + b % 100, seqs b * KILL_BATCH + i. */
static void *feed(void *arg)
{
	struct feeder *f = arg;
	struct rd *x = calloc(KILL_BATCH, sizeof(*x));

	for (int b = 0; b < KILL_BATCHES && x != NULL; b++) {
		for (int i = 0; i < KILL_BATCH; i++)
			mkread(&x[i], 100 + b % 100, (uint64_t)b * KILL_BATCH + (uint64_t)i, false,
			       b, (uint8_t)i);
		f->rc[b] = insert_rd(f->s, x, KILL_BATCH, NULL);
		f->done = b + 1;
	}
	free(x);
	return NULL;
}

/* Killed (a power cut as the database sees it) while batches go in: each batch is there whole
 * or not at all, and every batch that returned 0 is there. */
static void test_server_killed(void **state)
{
	const char *conninfo = fresh_db();
	struct feeder *f = calloc(1, sizeof(*f));
	struct timespec ms = {.tv_nsec = 1000000};
	pthread_t t;
	PGconn *c;
	PGresult *res;
	int ok = 0, unsure = 0, failed = 0;
	(void)state;

	f->s = open_pg(conninfo);
	assert_int_equal(pthread_create(&t, NULL, feed, f), 0);
	for (int i = 0; i < 20000 && __atomic_load_n(&f->done, __ATOMIC_SEQ_CST) < 20; i++)
		nanosleep(&ms, NULL);
	assert_int_equal(pg_stop(&pg, "immediate"), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(pg_restart(&pg), 0);

	c = PQconnectdb(conninfo);
	assert_int_equal(PQstatus(c), CONNECTION_OK);
	res = PQexec(c, "SELECT received_ms, count(*) FROM readings GROUP BY received_ms");
	assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
	for (int i = 0; i < PQntuples(res); i++) {
		int b = atoi(PQgetvalue(res, i, 0));

		assert_int_equal(atoi(PQgetvalue(res, i, 1)), KILL_BATCH); /* whole */
		assert_true(b >= 0 && b < KILL_BATCHES);
		f->rc[b] = f->rc[b] == 0 ? 1 : 2; /* 1: stored as told; 2: committed, not told */
	}
	for (int b = 0; b < KILL_BATCHES; b++) {
		assert_int_not_equal(f->rc[b], 0); /* returned 0 but is not there */
		ok += f->rc[b] == 1;
		unsure += f->rc[b] == 2;
		failed += f->rc[b] < 0;
	}
	print_message("server killed: %d batches stored, %d committed but not confirmed, %d "
		      "failed and not stored\n",
		      ok, unsure, failed);
	assert_true(ok >= 20);
	assert_true(failed > 0);
	PQclear(res);
	PQfinish(c);
	store_close(f->s);
	free(f);
}

/* --- Two instances --------------------------------------------------------------------- */

#define TWO_N	  4000
#define TWO_BATCH 250 /* both instances send each batch at once, the second backwards */

struct instance {
	const char *conninfo;
	struct store *s;
	int open_rc;
	bool reverse; /* the second goes through each batch backwards */
	int rc;
	size_t added, removed;
	pthread_barrier_t *start;
};

/* Retention by both at once, in small steps (of other sizes, so that each also finds rows the
 * other has not taken): cap 100 per stream. */
static void *instance_expire(void *arg)
{
	struct instance *in = arg;
	size_t n = 0;
	int idle = 0;

	pthread_barrier_wait(in->start);
	/* A call may find its rows taken by the other: go on until several find nothing. */
	while (in->rc == 0 && idle < 5) {
		in->rc = store_expire(in->s, 1000000, 1000000, 100, in->reverse ? 53 : 37, &n);
		in->removed += n;
		idle = n > 0 ? 0 : idle + 1;
	}
	return NULL;
}

static void *instance_open(void *arg)
{
	struct instance *in = arg;
	struct store_opts o = {.kind = STORE_POSTGRESQL, .conninfo = in->conninfo};

	pthread_barrier_wait(in->start);
	in->open_rc = store_open(&o, &in->s);
	return NULL;
}

/* TWO_N readings over 8 streams, half of them emergencies, each instance all of them. */
static void *instance_insert(void *arg)
{
	struct instance *in = arg;
	struct rd *x = calloc(TWO_BATCH, sizeof(*x));
	size_t n;

	for (int b = 0; b < TWO_N / TWO_BATCH; b++) {
		for (int i = 0; i < TWO_BATCH && x != NULL; i++) {
			int k = b * TWO_BATCH + (in->reverse ? TWO_BATCH - 1 - i : i);

			mkread(&x[i], k % 8, (uint64_t)k, k % 2 == 0, k, (uint8_t)k);
		}
		/* Both send the batch at the same moment (every time, so neither waits alone). */
		pthread_barrier_wait(in->start);
		if (x == NULL)
			in->rc = -ENOMEM;
		if (in->rc == 0) {
			in->rc = insert_rd(in->s, x, TWO_BATCH, &n);
			in->added += n;
		}
	}
	free(x);
	return NULL;
}

/* Two relays on one database: both open a new database at once (one makes the schema, the
 * other waits and finds it), then insert the same batches at the same moments, each in the
 * opposite order (without the store's sorting, the two would deadlock): each reading stored once,
 * the new counts add up, and the queue is in order; then both run retention at once: every removal
 * counted once, in one expired row per stream. */
static void test_two_instances(void **state)
{
	struct instance in[2];
	pthread_barrier_t start;
	pthread_t t[2];
	struct got *g = calloc(1, sizeof(*g));
	size_t total = 0;
	(void)state;

	memset(in, 0, sizeof(in));
	in[0].conninfo = in[1].conninfo = fresh_db();
	in[1].reverse = true;
	assert_int_equal(pthread_barrier_init(&start, NULL, 2), 0);
	for (int i = 0; i < 2; i++) {
		in[i].start = &start;
		assert_int_equal(pthread_create(&t[i], NULL, instance_open, &in[i]), 0);
	}
	for (int i = 0; i < 2; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_int_equal(in[i].open_rc, 0);
	}
	grant(in[0].s, 0, "doc1", 1, 0);
	grant(in[1].s, 1, "doc1", 2, 0);
	grant(in[1].s, 2, "doc2", 2, 0);
	grant(in[0].s, 2, "doc1", 3, -EEXIST);

	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, instance_insert, &in[i]), 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_int_equal(in[i].rc, 0);
		total += in[i].added;
	}
	print_message("instance 1 added %zu, instance 2 added %zu\n", in[0].added, in[1].added);
	assert_int_equal(total, TWO_N);
	assert_int_equal(sql_value(in[0].conninfo, "SELECT count(*) FROM readings"), TWO_N);
	assert_int_equal(
	    sql_value(in[0].conninfo, "SELECT count(DISTINCT (stream, seq)) FROM readings"), TWO_N);

	/* doc1: streams 0 and 1, TWO_N / 4 readings; the emergencies (even k: stream 0 only)
	 * first, then stream 1's by seq. Either instance answers the same. */
	for (int i = 0; i < 2; i++) {
		memset(g, 0, sizeof(*g));
		assert_int_equal(store_queue(in[i].s, "doc1", GOT_MAX, collect, g), 0);
		assert_int_equal(g->n, TWO_N / 4);
		for (size_t j = 0; j < g->n; j++) {
			assert_int_equal(g->r[j].emergency, j < TWO_N / 8);
			assert_true(is_stream(&g->r[j], j < TWO_N / 8 ? 0 : 1));
			assert_int_equal(g->data[j][7], (uint8_t)g->r[j].seq);
			if (j > 0 && j != TWO_N / 8)
				assert_true(g->r[j].seq > g->r[j - 1].seq);
		}
	}

	/* Both expire at once: each removal counted once, by whichever instance made it. */
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, instance_expire, &in[i]), 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_int_equal(in[i].rc, 0);
	}
	print_message("expired by instance 1: %zu, by instance 2: %zu\n", in[0].removed,
		      in[1].removed);
	assert_int_equal(in[0].removed + in[1].removed, TWO_N - 8 * 100);
	assert_int_equal(sql_value(in[0].conninfo, "SELECT count(*) FROM readings"), 8 * 100);
	assert_int_equal(sql_value(in[0].conninfo, "SELECT sum(count) FROM expired"),
			 TWO_N - 8 * 100);
	assert_int_equal(sql_value(in[0].conninfo, "SELECT count(*) FROM expired"), 8);
	pthread_barrier_destroy(&start);
	store_close(in[0].s);
	store_close(in[1].s);
	/* Not one deadlock (the store retries a deadlock's victim, which would hide them): the
	 * sessions have ended, so their counts are in. */
	assert_int_equal(sql_value(in[0].conninfo, "SELECT pg_stat_force_next_flush(); SELECT "
						   "deadlocks FROM pg_stat_database WHERE "
						   "datname = current_database()"),
			 0);
	free(g);
}

/* --- Streams bound to their devices ---------------------------------------------------- */

/* mkread() under device dev (its first byte) instead of the stream's own. */
static void mkread_as(struct rd *x, int stream, uint64_t seq, uint8_t dev)
{
	mkread(x, stream, seq, false, 100, (uint8_t)(stream + seq + dev));
	memset(x->r.device, 0, sizeof(x->r.device));
	x->r.device[0] = dev;
}

static void expect_each(struct store *s, struct rd *x, size_t n, size_t want_new,
			const enum store_outcome *want)
{
	enum store_outcome each[STORE_DEVICE_STREAMS_MAX + 8];
	size_t fresh = 999;

	assert_true(n <= sizeof(each) / sizeof(each[0]));
	assert_int_equal(insert_each(s, x, n, &fresh, each), 0);
	assert_int_equal(fresh, want_new);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(each[i], want[i]);
}

/* The first device to store a reading of a stream holds it: another's are refused, in the
 * batch and later, after a reopen and after retention removed the stream's readings; a device
 * binds STORE_DEVICE_STREAMS_MAX streams at most. */
static void test_stream_binding(void **state)
{
	const char *db = fresh_db();
	struct store *s = open_pg(db);
	struct rd x[STORE_DEVICE_STREAMS_MAX + 8];
	const enum store_outcome w1[] = {STORE_NEW, STORE_REFUSED, STORE_NEW, STORE_DUPLICATE,
					 STORE_REFUSED};
	const enum store_outcome w2[] = {STORE_REFUSED, STORE_NEW};
	enum store_outcome w[STORE_DEVICE_STREAMS_MAX + 8];
	size_t removed;
	(void)state;

	/* Out of order within the batch: the first in rs binds, as in rs. */
	mkread_as(&x[0], 1, 5, 0x11);
	mkread_as(&x[1], 1, 2, 0x22);
	mkread_as(&x[2], 1, 6, 0x11);
	mkread_as(&x[3], 1, 5, 0x11);
	mkread_as(&x[4], 1, 1, 0x22);
	expect_each(s, x, 5, 2, w1);
	assert_int_equal(sql_value(db, "SELECT count(*) FROM streams"), 1);
	store_close(s);
	s = open_pg(db);
	assert_int_equal(store_expire(s, 1000, 10, 1000, 100, &removed), 0);
	assert_int_equal(removed, 2);
	mkread_as(&x[0], 1, 7, 0x22);
	mkread_as(&x[1], 1, 7, 0x11);
	expect_each(s, x, 2, 1, w2);
	assert_int_equal(sql_value(db, "SELECT count(*) FROM readings"), 1);

	/* The limit. */
	for (int i = 0; i < STORE_DEVICE_STREAMS_MAX; i++) {
		mkread_as(&x[i], 100 + i, 1, 0x33);
		w[i] = STORE_NEW;
	}
	expect_each(s, x, STORE_DEVICE_STREAMS_MAX, STORE_DEVICE_STREAMS_MAX, w);
	mkread_as(&x[0], 99, 1, 0x33);
	mkread_as(&x[1], 99, 2, 0x11);
	mkread_as(&x[2], 100, 2, 0x33);
	w[0] = STORE_REFUSED, w[1] = STORE_NEW, w[2] = STORE_NEW;
	expect_each(s, x, 3, 2, w);
	store_close(s);
}

#define BIND_STREAMS 48

struct binder {
	struct store *s;
	uint8_t dev;
	int first; /* the first stream of its batch */
	int rc;
	size_t added;
	enum store_outcome each[BIND_STREAMS];
	pthread_barrier_t *start;
};

static void *bind_insert(void *arg)
{
	struct binder *b = arg;
	struct rd x[BIND_STREAMS];

	for (int i = 0; i < BIND_STREAMS; i++)
		mkread_as(&x[i], b->first + i, 1, b->dev);
	pthread_barrier_wait(b->start);
	b->rc = insert_each(b->s, x, BIND_STREAMS, &b->added, b->each);
	return NULL;
}

static void run_binders(struct binder *b, pthread_barrier_t *start)
{
	pthread_t t[2];

	for (int i = 0; i < 2; i++) {
		b[i].start = start;
		assert_int_equal(pthread_create(&t[i], NULL, bind_insert, &b[i]), 0);
	}
	for (int i = 0; i < 2; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_int_equal(b[i].rc, 0);
	}
}

/* Two instances bind the same new streams to two devices at the same moment: each stream is
 * one device's, its reading stored once, the other refused. Then both bind new streams of one
 * device at once: STORE_DEVICE_STREAMS_MAX in all, not one more. */
static void test_two_instances_bind(void **state)
{
	const char *db = fresh_db();
	struct binder b[2];
	pthread_barrier_t start;
	size_t refused = 0, won[2] = {0};
	(void)state;

	assert_int_equal(pthread_barrier_init(&start, NULL, 2), 0);
	memset(b, 0, sizeof(b));
	for (int i = 0; i < 2; i++) {
		b[i].s = open_pg(db);
		b[i].dev = (uint8_t)(0x41 + i);
		b[i].first = 0;
	}
	run_binders(b, &start);
	for (int k = 0; k < BIND_STREAMS; k++) {
		assert_true((b[0].each[k] == STORE_NEW) != (b[1].each[k] == STORE_NEW));
		for (int i = 0; i < 2; i++) {
			won[i] += b[i].each[k] == STORE_NEW;
			refused += b[i].each[k] == STORE_REFUSED;
		}
	}
	print_message("device 1 bound %zu streams, device 2 %zu\n", won[0], won[1]);
	assert_int_equal(refused, BIND_STREAMS);
	assert_int_equal(b[0].added + b[1].added, BIND_STREAMS);
	assert_int_equal(sql_value(db, "SELECT count(*) FROM streams"), BIND_STREAMS);
	assert_int_equal(sql_value(db, "SELECT count(*) FROM readings"), BIND_STREAMS);
	/* Every reading stored is its stream's device's (the data's tag says whose). */
	assert_int_equal(sql_value(db,
				   "SELECT count(*) FROM readings r JOIN streams s"
				   " ON s.stream = r.stream WHERE get_byte(r.data, 0) !="
				   " (get_byte(r.stream, 0) + 1 + get_byte(s.device, 0)) % 256"),
			 0);

	/* One device, new streams from both instances at once. */
	for (int i = 0; i < 2; i++) {
		b[i].dev = 0x50;
		b[i].first = 100 + i * BIND_STREAMS;
	}
	run_binders(b, &start);
	assert_int_equal(b[0].added + b[1].added, STORE_DEVICE_STREAMS_MAX);
	assert_int_equal(
	    sql_value(db, "SELECT count(*) FROM streams WHERE get_byte(device, 0) = 80"),
	    STORE_DEVICE_STREAMS_MAX);
	pthread_barrier_destroy(&start);
	store_close(b[0].s);
	store_close(b[1].s);
}

static int group_setup(void **state)
{
	(void)state;
	log_init("test_relayd_store_pg", LOG_WARNING);
	pg_status = pg_start(&pg);
	if (pg_status < 0 && pg_status != -ENOENT)
		fprintf(stderr, "PostgreSQL: %s\n", pg.why);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	pg_remove(&pg);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_duplicates),	    cmocka_unit_test(test_bad_batches),
	    cmocka_unit_test(test_queue_order),	    cmocka_unit_test(test_catch_up),
	    cmocka_unit_test(test_delivered),	    cmocka_unit_test(test_grants),
	    cmocka_unit_test(test_history),	    cmocka_unit_test(test_expire),
	    cmocka_unit_test(test_stats),	    cmocka_unit_test(test_reopen),
	    cmocka_unit_test(test_schema_mismatch), cmocka_unit_test(test_server_stopped),
	    cmocka_unit_test(test_stream_binding),  cmocka_unit_test(test_two_instances_bind),
	    cmocka_unit_test(test_server_killed),   cmocka_unit_test(test_two_instances),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
