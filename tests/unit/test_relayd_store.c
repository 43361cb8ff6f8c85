/* The relay's SQLite store (store.h, store_sqlite.c) on real files: duplicates stored once, a
 * failed batch leaves nothing, the doctor's queue in delivery order (emergencies first, then
 * stream and seq whatever the arrival order), delivery marks only the doctor's own, grants kept
 * by their first doctor, history only of one's own streams, retention by time and by cap counted
 * in the expired rows, stats, a store reopened (or its writer killed) keeps everything, another
 * schema version and a damaged file refused with a clear error. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "store.h"
#include "tmpdir.h"

#define DOC1 "doctor1"
#define DOC2 "doctor2"

/* Streams in byte order: A < B < C < D. */
static const uint8_t SA[STREAM_ID_LEN] = {0x10, 1};
static const uint8_t SB[STREAM_ID_LEN] = {0x20, 2};
static const uint8_t SC[STREAM_ID_LEN] = {0x30, 3};
static const uint8_t SD[STREAM_ID_LEN] = {0x40, 4};

struct t {
	struct tmp *tmp;
	char db[600];
	struct store *s;
};

static struct store *open_at(const char *path)
{
	struct store_opts o = {.kind = STORE_SQLITE, .path = path};
	struct store *s = NULL;

	assert_int_equal(store_open(&o, &s), 0);
	assert_non_null(s);
	return s;
}

static int setup(void **state)
{
	struct t *t = calloc(1, sizeof(*t));

	if (t == NULL || tmp_setup((void **)&t->tmp, "relayd-store") < 0)
		return -1;
	snprintf(t->db, sizeof(t->db), "%s/relayd/relay.db", t->tmp->dir);
	t->s = open_at(t->db);
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	struct t *t = *state;
	int r;

	store_close(t->s);
	r = tmp_teardown((void **)&t->tmp);
	free(t);
	return r;
}

/* A reading's bytes: its length and content name its stream and seq. */
static size_t data_of(const uint8_t stream[STREAM_ID_LEN], uint64_t seq, uint8_t *out)
{
	size_t len = 100 + (size_t)(seq % 40);

	for (size_t i = 0; i < len; i++)
		out[i] = (uint8_t)(stream[0] + seq * 7 + i);
	return len;
}

struct batch {
	struct store_reading r[64];
	uint8_t bytes[64][160];
	size_t n;
};

static void add(struct batch *b, const uint8_t stream[STREAM_ID_LEN], uint64_t seq, bool emergency,
		int64_t received_ms)
{
	struct store_reading *r = &b->r[b->n];

	assert_true(b->n < 64);
	memset(r, 0, sizeof(*r));
	memcpy(r->stream, stream, STREAM_ID_LEN);
	r->seq = seq;
	r->emergency = emergency;
	r->received_ms = received_ms;
	r->delivered = true; /* ignored by store_insert(): a new reading waits */
	r->id = 12345;	     /* ignored too */
	r->len = data_of(stream, seq, b->bytes[b->n]);
	r->data = b->bytes[b->n];
	b->n++;
}

static size_t insert(struct store *s, struct batch *b)
{
	size_t fresh = 999;

	assert_int_equal(store_insert(s, b->r, b->n, &fresh), 0);
	b->n = 0;
	return fresh;
}

static void grant(struct store *s, const uint8_t stream[STREAM_ID_LEN], const char *doctor,
		  int expect)
{
	struct store_grant g = {.e0 = 3, .wrapped_len = 300, .granted_ms = 1000};

	memcpy(g.stream, stream, STREAM_ID_LEN);
	snprintf(g.doctor, sizeof(g.doctor), "%s", doctor);
	memset(g.wrapped, 0xab, g.wrapped_len);
	assert_int_equal(store_grant_put(s, &g), expect);
}

/* What a read hands out, copied (the data pointer lasts only until the next call). */
struct got {
	struct store_reading r[256];
	uint8_t bytes[256][160];
	size_t n;
	int stop_at; /* return -ECANCELED at this row (1-based); 0: never */
};

static int collect(const struct store_reading *r, void *userdata)
{
	struct got *g = userdata;

	assert_true(g->n < 256);
	assert_true(r->len <= sizeof(g->bytes[0]));
	g->r[g->n] = *r;
	memcpy(g->bytes[g->n], r->data, r->len);
	g->r[g->n].data = g->bytes[g->n];
	g->n++;
	return g->stop_at > 0 && (int)g->n == g->stop_at ? -ECANCELED : 0;
}

/* The row holds stream's reading seq, bytes and all. */
static void assert_reading(const struct store_reading *r, const uint8_t stream[STREAM_ID_LEN],
			   uint64_t seq, bool emergency)
{
	uint8_t want[160];
	size_t len = data_of(stream, seq, want);

	assert_memory_equal(r->stream, stream, STREAM_ID_LEN);
	assert_int_equal(r->seq, seq);
	assert_int_equal(r->emergency, emergency);
	assert_int_equal(r->len, len);
	assert_memory_equal(r->data, want, len);
	assert_true(r->id > 0);
}

static size_t queue(struct store *s, const char *doctor, size_t max, struct got *g)
{
	memset(g, 0, sizeof(*g));
	assert_int_equal(store_queue(s, doctor, max, collect, g), 0);
	return g->n;
}

static size_t history(struct store *s, const char *doctor, const uint8_t stream[STREAM_ID_LEN],
		      uint64_t after, size_t max, struct got *g)
{
	memset(g, 0, sizeof(*g));
	assert_int_equal(store_history(s, doctor, stream, after, max, collect, g), 0);
	return g->n;
}

static struct store_stats stats(struct store *s)
{
	struct store_stats st;

	memset(&st, 0x5a, sizeof(st));
	assert_int_equal(store_stats(s, &st), 0);
	return st;
}

/* SQL on the store's file through a connection of the test's own. */
static void sql(const char *path, const char *q)
{
	sqlite3 *db = NULL;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 2000);
	assert_int_equal(sqlite3_exec(db, q, NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

static void test_insert_duplicates(void **state)
{
	struct t *t = *state;
	struct batch b = {0};
	struct got g;

	/* Twice in one batch, the first copy kept. */
	add(&b, SA, 1, false, 100);
	add(&b, SA, 2, false, 100);
	add(&b, SA, 1, true, 999); /* a duplicate that differs: not stored */
	add(&b, SB, 1, false, 100);
	{
		/* store_holds(): the first copy's bytes, not the other's nor a missing seq's. */
		struct store_reading other = b.r[0];
		uint8_t bytes[160];

		assert_int_equal(store_holds(t->s, &b.r[0]), 0);
		assert_int_equal(insert(t->s, &b), 3);
		add(&b, SA, 1, false, 100);
		add(&b, SA, 5, false, 100);
		assert_int_equal(store_holds(t->s, &b.r[0]), 1);
		assert_int_equal(store_holds(t->s, &b.r[1]), 0);
		memcpy(bytes, other.data, other.len);
		bytes[other.len - 1] ^= 1;
		other.data = bytes;
		assert_int_equal(store_holds(t->s, &other), 0);
		other.len--; /* a prefix of the stored bytes */
		assert_int_equal(store_holds(t->s, &other), 0);
		memcpy(other.stream, SB, STREAM_ID_LEN); /* another stream's */
		assert_int_equal(store_holds(t->s, &b.r[0]), 1);
		assert_int_equal(store_holds(t->s, &other), 0);
		other.seq = (uint64_t)INT64_MAX + 1;
		assert_int_equal(store_holds(t->s, &other), -EINVAL);
		assert_int_equal(store_holds(NULL, &b.r[0]), -EINVAL);
		b.n = 0;
	}
	/* Across batches: only the new count. */
	add(&b, SA, 2, false, 200);
	add(&b, SA, 3, false, 200);
	add(&b, SB, 1, false, 200);
	assert_int_equal(insert(t->s, &b), 1);
	add(&b, SA, 3, false, 300);
	assert_int_equal(insert(t->s, &b), 0);
	/* Empty batch: nothing, and 0 new. */
	size_t fresh = 7;
	assert_int_equal(store_insert(t->s, NULL, 0, &fresh), 0);
	assert_int_equal(fresh, 0);
	add(&b, SA, 4, false, 300);
	assert_int_equal(store_insert(t->s, b.r, b.n, NULL), 0);

	assert_int_equal(stats(t->s).readings, 5);
	grant(t->s, SA, DOC1, 0);
	assert_int_equal(history(t->s, DOC1, SA, 0, 100, &g), 4);
	assert_reading(&g.r[0], SA, 1, false);
	assert_int_equal(g.r[0].received_ms, 100);
	assert_false(g.r[0].delivered);
	assert_reading(&g.r[1], SA, 2, false);
	assert_int_equal(g.r[1].received_ms, 100);
	assert_reading(&g.r[2], SA, 3, false);
	assert_int_equal(g.r[2].received_ms, 200);
	assert_reading(&g.r[3], SA, 4, false);
	/* ids are arrival order */
	assert_true(g.r[0].id < g.r[1].id && g.r[1].id < g.r[2].id);
}

/* A batch that fails in its middle leaves nothing; the same batch later stores whole. */
static void test_failed_batch_stores_nothing(void **state)
{
	struct t *t = *state;
	struct batch b = {0};
	size_t fresh = 77;

	add(&b, SA, 1, false, 100);
	assert_int_equal(insert(t->s, &b), 1);
	/* Another program's trigger refuses seq 999: rows before it in the batch were inserted. */
	sql(t->db, "CREATE TRIGGER refuse BEFORE INSERT ON readings WHEN NEW.seq = 999"
		   " BEGIN SELECT RAISE(ABORT, 'refused'); END;");
	for (uint64_t seq = 2; seq <= 10; seq++)
		add(&b, SA, seq, false, 100);
	add(&b, SB, 999, false, 100);
	add(&b, SB, 1000, false, 100);
	assert_true(store_insert(t->s, b.r, b.n, &fresh) < 0);
	assert_int_equal(fresh, 77); /* untouched */
	assert_int_equal(stats(t->s).readings, 1);
	sql(t->db, "DROP TRIGGER refuse");
	assert_int_equal(store_insert(t->s, b.r, b.n, &fresh), 0);
	assert_int_equal(fresh, 11);
	assert_int_equal(stats(t->s).readings, 12);

	/* Another writer holds the file: -EBUSY (after the busy timeout), nothing stored. */
	sqlite3 *db = NULL;
	b.n = 0;
	add(&b, SC, 1, false, 100);
	assert_int_equal(sqlite3_open(t->db, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
	fresh = 77;
	assert_int_equal(store_insert(t->s, b.r, b.n, &fresh), -EBUSY);
	assert_int_equal(fresh, 77);
	assert_int_equal(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_close(db), SQLITE_OK);
	assert_int_equal(stats(t->s).readings, 12);
	assert_int_equal(store_insert(t->s, b.r, b.n, &fresh), 0);
	assert_int_equal(fresh, 1);
}

/* Emergencies first, then by (stream, seq), whatever order they came in. */
static void test_queue_order(void **state)
{
	struct t *t = *state;
	struct batch b = {0};
	struct got g;

	add(&b, SB, 3, false, 10);
	add(&b, SA, 2, false, 11);
	add(&b, SC, 1, true, 12); /* doctor2's */
	add(&b, SB, 1, true, 13);
	assert_int_equal(insert(t->s, &b), 4);
	add(&b, SA, 1, false, 14);
	add(&b, SA, 3, true, 15);
	add(&b, SD, 1, true, 16); /* nobody's yet */
	add(&b, SB, 2, false, 17);
	assert_int_equal(insert(t->s, &b), 4);
	/* A doctor without grants: nothing. */
	assert_int_equal(queue(t->s, DOC1, 100, &g), 0);
	grant(t->s, SB, DOC1, 0);
	grant(t->s, SA, DOC1, 0);
	grant(t->s, SC, DOC2, 0);

	assert_int_equal(queue(t->s, DOC1, 100, &g), 6);
	assert_reading(&g.r[0], SA, 3, true);
	assert_int_equal(g.r[0].received_ms, 15);
	assert_false(g.r[0].delivered);
	assert_reading(&g.r[1], SB, 1, true);
	assert_reading(&g.r[2], SA, 1, false);
	assert_reading(&g.r[3], SA, 2, false);
	assert_reading(&g.r[4], SB, 2, false);
	assert_reading(&g.r[5], SB, 3, false);
	assert_int_equal(g.r[5].received_ms, 10);
	/* At most max, from the front. */
	assert_int_equal(queue(t->s, DOC1, 3, &g), 3);
	assert_reading(&g.r[0], SA, 3, true);
	assert_reading(&g.r[2], SA, 1, false);
	assert_int_equal(queue(t->s, DOC1, 1, &g), 1);
	assert_reading(&g.r[0], SA, 3, true);
	/* max 0: nothing asked, nothing handed. */
	assert_int_equal(queue(t->s, DOC1, 0, &g), 0);
	/* The other doctor sees only theirs. */
	assert_int_equal(queue(t->s, DOC2, 100, &g), 1);
	assert_reading(&g.r[0], SC, 1, true);
	/* A stream granted later joins its doctor's queue with what waited. */
	grant(t->s, SD, DOC2, 0);
	assert_int_equal(queue(t->s, DOC2, 100, &g), 2);
	assert_reading(&g.r[0], SC, 1, true);
	assert_reading(&g.r[1], SD, 1, true);
	/* fn stops the walk: its value comes back. */
	memset(&g, 0, sizeof(g));
	g.stop_at = 2;
	assert_int_equal(store_queue(t->s, DOC1, 100, collect, &g), -ECANCELED);
	assert_int_equal(g.n, 2);
}

/* A doctor catching up on thousands, 128 at a time: each reading once, in delivery order across
 * calls, emergencies (which arrive all along) before the rest. */
static void test_catch_up(void **state)
{
	struct t *t = *state;
	const uint8_t *streams[] = {SA, SB, SD, SC}; /* SC is doctor2's */
	static uint64_t order[4000];
	struct batch b = {0};
	struct got g;
	int64_t ids[128];
	size_t total = 0, emergencies = 0, calls = 0;
	int prev_e = -1, prev_s = -1;
	uint64_t prev_seq = 0;

	/* 1000 per stream, arriving in a scrambled order; every 37th an emergency. */
	for (uint64_t i = 0; i < 4000; i++)
		order[i] = i;
	for (uint64_t i = 3999; i > 0; i--) {
		uint64_t j = (i * 2654435761u) % (i + 1), x = order[i];

		order[i] = order[j];
		order[j] = x;
	}
	for (size_t i = 0; i < 4000; i++) {
		uint64_t seq = order[i] / 4 + 1;

		add(&b, streams[order[i] % 4], seq, seq % 37 == 0, (int64_t)i);
		if (b.n == 64 || i == 3999)
			assert_int_equal(insert(t->s, &b), i == 3999 ? 4000 % 64 : 64);
	}
	grant(t->s, SA, DOC1, 0);
	grant(t->s, SB, DOC1, 0);
	grant(t->s, SD, DOC1, 0);
	grant(t->s, SC, DOC2, 0);
	for (;;) {
		size_t marked;

		if (queue(t->s, DOC1, 128, &g) == 0)
			break;
		calls++;
		for (size_t i = 0; i < g.n; i++) {
			const struct store_reading *r = &g.r[i];
			int s = r->stream[0] == SA[0] ? 0 : r->stream[0] == SB[0] ? 1 : 2;

			assert_true(r->stream[0] != SC[0]);
			assert_reading(r, streams[s], r->seq, r->seq % 37 == 0);
			/* (emergency first, stream, seq) only ever moves forward */
			int e = r->emergency ? 0 : 1;
			assert_true(e > prev_e || (e == prev_e && s > prev_s) ||
				    (e == prev_e && s == prev_s && r->seq > prev_seq));
			prev_e = e;
			prev_s = s;
			prev_seq = r->seq;
			emergencies += r->emergency;
			ids[i] = r->id;
		}
		assert_int_equal(store_delivered(t->s, DOC1, ids, g.n, &marked), 0);
		assert_int_equal(marked, g.n);
		total += g.n;
	}
	assert_int_equal(total, 3000);
	assert_int_equal(emergencies, 3 * (1000 / 37));
	assert_int_equal(calls, (3000 + 127) / 128);
	assert_int_equal(stats(t->s).undelivered, 1000);
	assert_int_equal(queue(t->s, DOC2, 128, &g), 128);
	assert_true(g.r[0].emergency);
}

struct reenter {
	struct store *s;
	int64_t ids[16];
	size_t n;
	int nested;
};

/* Marks each reading delivered from inside the queue's callback, and tries a nested read. */
static int mark_each(const struct store_reading *r, void *userdata)
{
	struct reenter *x = userdata;
	size_t marked = 0;
	struct got g;

	assert_int_equal(store_delivered(x->s, DOC1, &r->id, 1, &marked), 0);
	assert_int_equal(marked, 1);
	x->ids[x->n++] = r->id;
	x->nested = store_queue(x->s, DOC1, 1, collect, &g);
	return 0;
}

static void test_delivered_only_own(void **state)
{
	struct t *t = *state;
	struct batch b = {0};
	struct got g;
	int64_t ids[8];
	size_t marked = 99;

	for (uint64_t seq = 1; seq <= 4; seq++) {
		add(&b, SA, seq, false, 10);
		add(&b, SC, seq, false, 10);
	}
	add(&b, SD, 1, false, 10); /* nobody's */
	insert(t->s, &b);
	grant(t->s, SA, DOC1, 0);
	grant(t->s, SC, DOC2, 0);
	assert_int_equal(queue(t->s, DOC2, 100, &g), 4);
	ids[0] = g.r[0].id; /* doctor2's */
	ids[1] = g.r[1].id;
	assert_int_equal(queue(t->s, DOC1, 100, &g), 4);
	ids[2] = g.r[0].id;
	ids[3] = g.r[1].id;
	ids[4] = g.r[1].id; /* twice */
	ids[5] = 1000000;   /* no such id */
	ids[6] = -1;
	assert_int_equal(history(t->s, DOC1, SA, 0, 10, &g), 4);
	/* doctor1 may mark only its own: 2 of 7. */
	assert_int_equal(store_delivered(t->s, DOC1, ids, 7, &marked), 0);
	assert_int_equal(marked, 2);
	assert_int_equal(store_delivered(t->s, DOC1, ids, 7, &marked), 0);
	assert_int_equal(marked, 0); /* already */
	assert_int_equal(store_delivered(t->s, DOC1, ids, 7, NULL), 0);
	marked = 5;
	assert_int_equal(store_delivered(t->s, DOC1, ids, 0, &marked), 0);
	assert_int_equal(marked, 0);
	assert_int_equal(queue(t->s, DOC1, 100, &g), 2);
	assert_reading(&g.r[0], SA, 3, false);
	assert_reading(&g.r[1], SA, 4, false);
	assert_int_equal(queue(t->s, DOC2, 100, &g), 4);
	/* The delivered stay in the history, marked. */
	assert_int_equal(history(t->s, DOC1, SA, 0, 10, &g), 4);
	assert_true(g.r[0].delivered && g.r[1].delivered);
	assert_false(g.r[2].delivered || g.r[3].delivered);
	assert_int_equal(stats(t->s).undelivered, 2 + 4 + 1);

	/* From inside the queue's callback: marking works, a nested read is refused. */
	struct reenter x = {.s = t->s};
	assert_int_equal(store_queue(t->s, DOC1, 100, mark_each, &x), 0);
	assert_int_equal(x.n, 2);
	assert_int_equal(x.nested, -EBUSY);
	assert_int_equal(queue(t->s, DOC1, 100, &g), 0);
}

struct grants_got {
	struct store_grant g[8];
	size_t n;
	int stop_at;
};

static int collect_grant(const struct store_grant *g, void *userdata)
{
	struct grants_got *x = userdata;

	assert_true(x->n < 8);
	x->g[x->n++] = *g;
	return x->stop_at > 0 && (int)x->n == x->stop_at ? -ECANCELED : 0;
}

static void test_grants(void **state)
{
	struct t *t = *state;
	struct grants_got x = {0};
	struct store_grant g = {.e0 = 7, .wrapped_len = STORE_WRAPPED_MAX, .granted_ms = 5000};

	memcpy(g.stream, SA, STREAM_ID_LEN);
	strcpy(g.doctor, DOC1);
	for (size_t i = 0; i < g.wrapped_len; i++)
		g.wrapped[i] = (uint8_t)i;
	assert_int_equal(store_grant_put(t->s, &g), 0);
	/* The same doctor again: the row replaced. */
	g.e0 = 8;
	g.granted_ms = 6000;
	g.wrapped_len = 10;
	assert_int_equal(store_grant_put(t->s, &g), 0);
	/* Another doctor: refused, the row as it was. */
	strcpy(g.doctor, DOC2);
	g.e0 = 99;
	assert_int_equal(store_grant_put(t->s, &g), -EEXIST);
	/* An empty wrapped root is kept as empty. */
	memcpy(g.stream, SB, STREAM_ID_LEN);
	strcpy(g.doctor, DOC1);
	g.e0 = 1;
	g.wrapped_len = 0;
	g.granted_ms = 7000;
	assert_int_equal(store_grant_put(t->s, &g), 0);
	memcpy(g.stream, SC, STREAM_ID_LEN);
	g.granted_ms = 1000;
	assert_int_equal(store_grant_put(t->s, &g), 0);

	assert_int_equal(store_grants(t->s, DOC1, collect_grant, &x), 0);
	assert_int_equal(x.n, 3);
	/* newest first */
	assert_memory_equal(x.g[0].stream, SB, STREAM_ID_LEN);
	assert_int_equal(x.g[0].wrapped_len, 0);
	assert_int_equal(x.g[0].granted_ms, 7000);
	assert_memory_equal(x.g[1].stream, SA, STREAM_ID_LEN);
	assert_string_equal(x.g[1].doctor, DOC1);
	assert_int_equal(x.g[1].e0, 8);
	assert_int_equal(x.g[1].granted_ms, 6000);
	assert_int_equal(x.g[1].wrapped_len, 10);
	for (size_t i = 0; i < 10; i++)
		assert_int_equal(x.g[1].wrapped[i], (uint8_t)i);
	assert_memory_equal(x.g[2].stream, SC, STREAM_ID_LEN);
	memset(&x, 0, sizeof(x));
	assert_int_equal(store_grants(t->s, DOC2, collect_grant, &x), 0);
	assert_int_equal(x.n, 0);
	x.stop_at = 1;
	assert_int_equal(store_grants(t->s, DOC1, collect_grant, &x), -ECANCELED);
	assert_int_equal(x.n, 1);

	/* Bad grants. */
	g.wrapped_len = STORE_WRAPPED_MAX + 1;
	assert_int_equal(store_grant_put(t->s, &g), -EMSGSIZE);
	g.wrapped_len = 1;
	g.doctor[0] = '\0';
	assert_int_equal(store_grant_put(t->s, &g), -EINVAL);
	memset(g.doctor, 'x', sizeof(g.doctor)); /* no NUL */
	assert_int_equal(store_grant_put(t->s, &g), -EINVAL);
	assert_int_equal(store_grant_put(t->s, NULL), -EINVAL);
	assert_int_equal(store_grants(t->s, "", collect_grant, &x), -EINVAL);
	assert_int_equal(store_grants(t->s, DOC1, NULL, &x), -EINVAL);
}

static void test_history(void **state)
{
	struct t *t = *state;
	struct batch b = {0};
	struct got g;

	for (uint64_t seq = 10; seq >= 1; seq--)
		add(&b, SA, seq, seq == 5, 100 + (int64_t)seq);
	add(&b, SC, 1, false, 1);
	insert(t->s, &b);
	grant(t->s, SA, DOC1, 0);
	grant(t->s, SC, DOC2, 0);
	assert_int_equal(history(t->s, DOC1, SA, 0, 100, &g), 10);
	for (size_t i = 0; i < 10; i++) {
		assert_reading(&g.r[i], SA, i + 1, i + 1 == 5);
		assert_int_equal(g.r[i].received_ms, 100 + (int64_t)i + 1);
	}
	assert_int_equal(history(t->s, DOC1, SA, 4, 3, &g), 3);
	assert_int_equal(g.r[0].seq, 5);
	assert_true(g.r[0].emergency);
	assert_int_equal(g.r[2].seq, 7);
	assert_int_equal(history(t->s, DOC1, SA, 10, 3, &g), 0);
	assert_int_equal(history(t->s, DOC1, SA, UINT64_MAX, 3, &g), 0);
	assert_int_equal(history(t->s, DOC1, SA, 0, 0, &g), 0);
	/* Not the doctor's: another's, or nobody's. */
	assert_int_equal(store_history(t->s, DOC1, SC, 0, 10, collect, &g), -EACCES);
	assert_int_equal(store_history(t->s, DOC1, SC, 0, 0, collect, &g), -EACCES);
	assert_int_equal(store_history(t->s, DOC2, SA, 0, 10, collect, &g), -EACCES);
	assert_int_equal(store_history(t->s, DOC1, SD, 0, 10, collect, &g), -EACCES);
	assert_int_equal(store_history(t->s, DOC1, NULL, 0, 10, collect, &g), -EINVAL);
	memset(&g, 0, sizeof(g));
	g.stop_at = 3;
	assert_int_equal(store_history(t->s, DOC1, SA, 0, 10, collect, &g), -ECANCELED);
	assert_int_equal(g.n, 3);
}

struct expired_got {
	struct store_expired e[8];
	size_t n;
};

static int collect_expired(const struct store_expired *e, void *userdata)
{
	struct expired_got *x = userdata;

	assert_true(x->n < 8);
	x->e[x->n++] = *e;
	return 0;
}

static void expired_of(struct store *s, const char *doctor, struct expired_got *x)
{
	memset(x, 0, sizeof(*x));
	assert_int_equal(store_expired_of(s, doctor, collect_expired, x), 0);
}

static void test_expire_by_time(void **state)
{
	struct t *t = *state;
	struct batch b = {0};
	struct expired_got x;
	struct got g;
	size_t removed = 99;
	int64_t id;

	/* Stream A: seqs 1..6 received at 1000 + seq; stream C: 1..2 at 1000, 3 at 5000. */
	for (uint64_t seq = 1; seq <= 6; seq++)
		add(&b, SA, seq, false, 1000 + (int64_t)seq);
	add(&b, SC, 1, false, 1000);
	add(&b, SC, 2, false, 1000);
	add(&b, SC, 3, false, 5000);
	insert(t->s, &b);
	grant(t->s, SA, DOC1, 0);
	grant(t->s, SC, DOC2, 0);
	/* A's seq 2 delivered: the expired row counts it apart. */
	assert_int_equal(history(t->s, DOC1, SA, 1, 1, &g), 1);
	id = g.r[0].id;
	assert_int_equal(store_delivered(t->s, DOC1, &id, 1, NULL), 0);

	/* Received before 10000 - 8996 = 1004: A 1..3, C 1..2; max 3 takes the oldest three. */
	assert_int_equal(store_expire(t->s, 10000, 8996, UINT64_MAX, 3, &removed), 0);
	assert_int_equal(removed, 3);
	assert_int_equal(store_expire(t->s, 10000, 8996, UINT64_MAX, 3, &removed), 0);
	assert_int_equal(removed, 2);
	assert_int_equal(store_expire(t->s, 10000, 8996, UINT64_MAX, 3, &removed), 0);
	assert_int_equal(removed, 0);
	assert_int_equal(stats(t->s).readings, 4);
	assert_int_equal(stats(t->s).expired, 5);
	assert_int_equal(history(t->s, DOC1, SA, 0, 10, &g), 3);
	assert_int_equal(g.r[0].seq, 4);

	expired_of(t->s, DOC1, &x);
	assert_int_equal(x.n, 1);
	assert_memory_equal(x.e[0].stream, SA, STREAM_ID_LEN);
	assert_int_equal(x.e[0].count, 3);
	assert_int_equal(x.e[0].undelivered, 2);
	assert_int_equal(x.e[0].first_seq, 1);
	assert_int_equal(x.e[0].last_seq, 3);
	assert_int_equal(x.e[0].at_ms, 10000);
	expired_of(t->s, DOC2, &x);
	assert_int_equal(x.n, 1);
	assert_memory_equal(x.e[0].stream, SC, STREAM_ID_LEN);
	assert_int_equal(x.e[0].count, 2);
	assert_int_equal(x.e[0].undelivered, 2);
	assert_int_equal(x.e[0].first_seq, 1);
	assert_int_equal(x.e[0].last_seq, 2);

	/* Later: the rows grow (count added, range widened, time moved). Before 1006: A 4, 5. */
	assert_int_equal(store_expire(t->s, 20000, 18994, UINT64_MAX, 100, &removed), 0);
	assert_int_equal(removed, 2);
	expired_of(t->s, DOC1, &x);
	assert_int_equal(x.e[0].count, 5);
	assert_int_equal(x.e[0].undelivered, 4);
	assert_int_equal(x.e[0].first_seq, 1);
	assert_int_equal(x.e[0].last_seq, 5);
	assert_int_equal(x.e[0].at_ms, 20000);
	expired_of(t->s, DOC2, &x);
	assert_int_equal(x.e[0].count, 2);
	assert_int_equal(x.e[0].at_ms, 10000);
	/* Before 6000: A 6 and C 3. */
	assert_int_equal(store_expire(t->s, 20000, 14000, UINT64_MAX, 100, &removed), 0);
	assert_int_equal(removed, 2);
	expired_of(t->s, DOC2, &x);
	assert_int_equal(x.e[0].count, 3);
	assert_int_equal(x.e[0].last_seq, 3);
	assert_int_equal(stats(t->s).readings, 0);
	/* A retention longer than the clock: nothing goes. */
	add(&b, SA, 7, false, 0);
	insert(t->s, &b);
	assert_int_equal(store_expire(t->s, 20000, INT64_MAX, UINT64_MAX, 100, &removed), 0);
	assert_int_equal(removed, 0);
	assert_int_equal(stats(t->s).readings, 1);
	/* expired_of of a doctor without grants: nothing. */
	expired_of(t->s, "doctor3", &x);
	assert_int_equal(x.n, 0);
	removed = 7;
	assert_int_equal(store_expire(t->s, -1, 0, 0, 100, &removed), -EINVAL);
	assert_int_equal(store_expire(t->s, 1, -1, 0, 100, &removed), -EINVAL);
	assert_int_equal(removed, 7);
}

static void test_expire_by_cap(void **state)
{
	struct t *t = *state;
	struct batch b = {0};
	struct expired_got x;
	struct got g;
	size_t removed = 99;

	/* A: 10 readings, arrival out of order; B: 4 readings with gaps (span 30 > cap 4); C: 6. */
	for (uint64_t seq = 10; seq >= 1; seq--)
		add(&b, SA, seq, seq == 1, 100);
	for (uint64_t seq = 1; seq <= 31; seq += 10)
		add(&b, SB, seq, false, 100);
	for (uint64_t seq = 1; seq <= 6; seq++)
		add(&b, SC, seq, false, 100);
	insert(t->s, &b);
	grant(t->s, SA, DOC1, 0);
	grant(t->s, SB, DOC1, 0);
	grant(t->s, SC, DOC2, 0);

	/* Keep 4 per stream: A loses 1..6, B nothing, C 1..2; max 5 per call. */
	assert_int_equal(store_expire(t->s, 200, 1000, 4, 5, &removed), 0);
	assert_int_equal(removed, 5);
	assert_int_equal(store_expire(t->s, 200, 1000, 4, 5, &removed), 0);
	assert_int_equal(removed, 3);
	assert_int_equal(store_expire(t->s, 200, 1000, 4, 5, &removed), 0);
	assert_int_equal(removed, 0);
	assert_int_equal(history(t->s, DOC1, SA, 0, 100, &g), 4);
	assert_int_equal(g.r[0].seq, 7);
	assert_int_equal(history(t->s, DOC1, SB, 0, 100, &g), 4);
	assert_int_equal(history(t->s, DOC2, SC, 0, 100, &g), 4);
	assert_int_equal(g.r[0].seq, 3);
	expired_of(t->s, DOC1, &x);
	assert_int_equal(x.n, 1);
	assert_memory_equal(x.e[0].stream, SA, STREAM_ID_LEN);
	assert_int_equal(x.e[0].count, 6);
	assert_int_equal(x.e[0].undelivered, 6);
	assert_int_equal(x.e[0].first_seq, 1);
	assert_int_equal(x.e[0].last_seq, 6);
	assert_int_equal(x.e[0].at_ms, 200);
	expired_of(t->s, DOC2, &x);
	assert_int_equal(x.e[0].count, 2);
	assert_int_equal(x.e[0].last_seq, 2);
	assert_int_equal(stats(t->s).expired, 8);
	assert_int_equal(stats(t->s).emergencies_undelivered, 0); /* A's 1 went with the cap */
	/* cap 0 keeps nothing; time and cap together stay within max. */
	add(&b, SC, 7, false, 50);
	insert(t->s, &b);
	assert_int_equal(store_expire(t->s, 200, 100, 0, 3, &removed), 0);
	assert_int_equal(removed, 3); /* C 7 by time, then two by the cap */
	assert_int_equal(store_expire(t->s, 200, 100, 0, 100, &removed), 0);
	assert_int_equal(removed, 10);
	assert_int_equal(stats(t->s).readings, 0);
	expired_of(t->s, DOC2, &x);
	assert_int_equal(x.e[0].count, 7);
	assert_int_equal(x.e[0].first_seq, 1);
	assert_int_equal(x.e[0].last_seq, 7);
	assert_int_equal(store_expire(t->s, 200, 100, 0, 0, &removed), 0);
	assert_int_equal(removed, 0);
}

struct queues_got {
	struct store_queue q[8];
	size_t n;
};

static int collect_queue(const struct store_queue *q, void *userdata)
{
	struct queues_got *x = userdata;

	assert_true(x->n < 8);
	x->q[x->n++] = *q;
	return 0;
}

static void test_stats_and_queues(void **state)
{
	struct t *t = *state;
	struct batch b = {0};
	struct store_stats st;
	struct queues_got x = {0};
	struct got g;
	struct stat sb;
	int64_t id;

	st = stats(t->s);
	assert_int_equal(st.readings, 0);
	assert_int_equal(st.undelivered, 0);
	assert_int_equal(st.emergencies_undelivered, 0);
	assert_int_equal(st.expired, 0);
	assert_int_equal(st.oldest_undelivered_ms, 0);
	assert_true(st.bytes > 0);
	assert_int_equal(store_queues(t->s, collect_queue, &x), 0);
	assert_int_equal(x.n, 0);

	add(&b, SA, 1, true, 500);
	add(&b, SA, 2, false, 400);
	add(&b, SB, 1, true, 300);
	add(&b, SC, 1, false, 600);
	add(&b, SD, 1, false, 200); /* nobody's */
	insert(t->s, &b);
	grant(t->s, SA, DOC1, 0);
	grant(t->s, SB, DOC1, 0);
	grant(t->s, SC, DOC2, 0);
	grant(t->s, (const uint8_t[STREAM_ID_LEN]){0x50}, "doctor3", 0); /* nothing waits */
	assert_int_equal(history(t->s, DOC1, SB, 0, 1, &g), 1);
	id = g.r[0].id;
	assert_int_equal(store_delivered(t->s, DOC1, &id, 1, NULL), 0);

	st = stats(t->s);
	assert_int_equal(st.readings, 5);
	assert_int_equal(st.undelivered, 4);
	assert_int_equal(st.emergencies_undelivered, 1);
	assert_int_equal(st.oldest_undelivered_ms, 200);
	/* On disk: the file and its WAL. */
	uint64_t disk = 0;
	char wal[700];
	assert_int_equal(stat(t->db, &sb), 0);
	disk += (uint64_t)sb.st_size;
	snprintf(wal, sizeof(wal), "%s-wal", t->db);
	assert_int_equal(stat(wal, &sb), 0);
	assert_true(sb.st_size > 0);
	disk += (uint64_t)sb.st_size;
	assert_true(st.bytes >= (uint64_t)sb.st_size);
	assert_true(st.bytes <= disk + 65536);

	assert_int_equal(store_queues(t->s, collect_queue, &x), 0);
	assert_int_equal(x.n, 3);
	assert_string_equal(x.q[0].doctor, DOC1);
	assert_int_equal(x.q[0].undelivered, 2);
	assert_int_equal(x.q[0].oldest_ms, 400);
	assert_string_equal(x.q[1].doctor, DOC2);
	assert_int_equal(x.q[1].undelivered, 1);
	assert_int_equal(x.q[1].oldest_ms, 600);
	assert_string_equal(x.q[2].doctor, "doctor3");
	assert_int_equal(x.q[2].undelivered, 0);
	assert_int_equal(x.q[2].oldest_ms, 0);

	memset(&st, 0x5a, sizeof(st));
	assert_int_equal(store_stats(t->s, NULL), -EINVAL);
	assert_int_equal(store_stats(NULL, &st), -EINVAL);
	assert_int_equal(store_queues(t->s, NULL, NULL), -EINVAL);
}

/* Files the store makes: the directory 0700, the database (and its WAL) 0600, whatever the
 * umask lets through for others. */
static void test_file_modes(void **state)
{
	struct t *t = *state;
	char path[600];
	struct stat sb;
	struct store *s;
	mode_t old = umask(0);

	snprintf(path, sizeof(path), "%s/a/b/relay.db", t->tmp->dir);
	s = open_at(path);
	umask(old);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	snprintf(path, sizeof(path), "%s/a/b/relay.db-wal", t->tmp->dir);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	snprintf(path, sizeof(path), "%s/a/b", t->tmp->dir);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0700);
	store_close(s);
}

static void fill_known(struct store *s)
{
	struct batch b = {0};
	struct got g;
	size_t removed;
	int64_t id;

	for (uint64_t seq = 1; seq <= 5; seq++)
		add(&b, SA, seq, seq == 3, 100 * (int64_t)seq);
	add(&b, SC, 1, false, 50);
	insert(s, &b);
	grant(s, SA, DOC1, 0);
	grant(s, SC, DOC2, 0);
	assert_int_equal(queue(s, DOC1, 1, &g), 1);
	id = g.r[0].id;
	assert_int_equal(store_delivered(s, DOC1, &id, 1, NULL), 0);
	assert_int_equal(store_expire(s, 1000, 900, UINT64_MAX, 100, &removed), 0);
	assert_int_equal(removed, 1); /* C 1 */
}

static void assert_known(struct store *s)
{
	struct expired_got x;
	struct grants_got gg = {0};
	struct store_stats st = stats(s);
	struct got g;

	assert_int_equal(st.readings, 5);
	assert_int_equal(st.undelivered, 4);
	assert_int_equal(st.expired, 1);
	assert_int_equal(queue(s, DOC1, 100, &g), 4);
	assert_reading(&g.r[0], SA, 1, false);
	assert_reading(&g.r[3], SA, 5, false);
	assert_int_equal(history(s, DOC1, SA, 0, 100, &g), 5);
	assert_true(g.r[2].delivered);
	assert_int_equal(store_grants(s, DOC1, collect_grant, &gg), 0);
	assert_int_equal(gg.n, 1);
	assert_int_equal(gg.g[0].wrapped_len, 300);
	expired_of(s, DOC2, &x);
	assert_int_equal(x.n, 1);
	assert_int_equal(x.e[0].count, 1);
	grant(s, SC, DOC1, -EEXIST);
}

static void test_reopen_keeps_everything(void **state)
{
	struct t *t = *state;

	fill_known(t->s);
	store_close(t->s);
	t->s = open_at(t->db);
	assert_known(t->s);
	/* A second open of the same file (another relay on the machine) sees it too. */
	struct store *s2 = open_at(t->db);
	assert_known(s2);
	store_close(s2);
}

/* A writer killed right after store_insert() returned: what it stored is there. */
static void test_killed_writer_loses_nothing(void **state)
{
	struct t *t = *state;
	int status;
	pid_t pid;

	store_close(t->s);
	t->s = NULL;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct store *s = open_at(t->db);

		fill_known(s);
		raise(SIGKILL); /* no close, no checkpoint */
		_exit(1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	t->s = open_at(t->db);
	assert_known(t->s);
}

/* add() under device dev (store_device_id() of "testhome/<kit>"). */
static void add_as(struct batch *b, const char *kit, const uint8_t stream[STREAM_ID_LEN],
		   uint64_t seq)
{
	add(b, stream, seq, false, 100);
	assert_int_equal(store_device_id("testhome", kit, b->r[b->n - 1].device), 0);
}

static void insert_each(struct store *s, struct batch *b, size_t want_new,
			const enum store_outcome *want)
{
	enum store_outcome each[64];
	size_t fresh = 999;

	memset(each, 0x7f, sizeof(each));
	assert_int_equal(store_insert_each(s, b->r, b->n, &fresh, each), 0);
	assert_int_equal(fresh, want_new);
	for (size_t i = 0; i < b->n; i++)
		assert_int_equal(each[i], want[i]);
	b->n = 0;
}

/* A stream is the device's that stored its first reading (store.h's streams): another
 * device's readings under it are refused, in a batch or later, after a reopen and after
 * retention removed every reading of it; a device binds STORE_DEVICE_STREAMS_MAX at most. */
static void test_stream_binding(void **state)
{
	struct t *t = *state;
	struct batch b = {0};
	uint8_t d1[STORE_DEVICE_LEN], d2[STORE_DEVICE_LEN], stream[STREAM_ID_LEN];
	size_t removed;
	const enum store_outcome w1[] = {STORE_NEW, STORE_REFUSED, STORE_NEW, STORE_DUPLICATE,
					 STORE_REFUSED};
	const enum store_outcome w2[] = {STORE_REFUSED, STORE_NEW, STORE_DUPLICATE};
	const enum store_outcome w3[] = {STORE_REFUSED, STORE_NEW};
	enum store_outcome w4[64];

	/* The id: 16 bytes, the same for the same name, other for another name or home. */
	assert_int_equal(store_device_id("testhome", "pi1", d1), 0);
	assert_int_equal(store_device_id("testhome", "pi2", d2), 0);
	assert_memory_not_equal(d1, d2, STORE_DEVICE_LEN);
	assert_int_equal(store_device_id("otherhome", "pi1", d2), 0);
	assert_memory_not_equal(d1, d2, STORE_DEVICE_LEN);
	assert_int_equal(store_device_id("testhome", "pi1", d2), 0);
	assert_memory_equal(d1, d2, STORE_DEVICE_LEN);
	assert_int_equal(store_device_id("", "pi1", d2), -EINVAL);
	assert_int_equal(store_device_id("testhome", "", d2), -EINVAL);
	assert_int_equal(store_device_id(NULL, "pi1", d2), -EINVAL);

	add_as(&b, "pi1", SA, 1); /* binds SA to pi1 */
	add_as(&b, "pi2", SA, 2); /* the same batch: refused */
	add_as(&b, "pi1", SA, 2);
	add_as(&b, "pi1", SA, 1); /* twice in the batch */
	add_as(&b, "pi2", SA, 3);
	insert_each(t->s, &b, 2, w1);
	add_as(&b, "pi2", SA, 3); /* a later batch: still refused */
	add_as(&b, "pi2", SB, 1); /* its own stream */
	add_as(&b, "pi2", SB, 1);
	insert_each(t->s, &b, 1, w2);
	assert_int_equal(stats(t->s).readings, 3);

	/* Kept across a reopen, and when retention removed every reading of the streams. */
	store_close(t->s);
	t->s = open_at(t->db);
	assert_int_equal(store_expire(t->s, 1000, 10, 1000, 100, &removed), 0);
	assert_int_equal(removed, 3);
	add_as(&b, "pi2", SA, 1);
	add_as(&b, "pi1", SA, 1);
	insert_each(t->s, &b, 1, w3);

	/* The limit: pi3 binds STORE_DEVICE_STREAMS_MAX streams, not one more; pi1 still can. */
	memset(stream, 0x70, sizeof(stream));
	for (size_t i = 0; i < STORE_DEVICE_STREAMS_MAX; i++) {
		stream[0] = (uint8_t)i;
		add_as(&b, "pi3", stream, 1);
		w4[i] = STORE_NEW;
	}
	insert_each(t->s, &b, STORE_DEVICE_STREAMS_MAX, w4);
	stream[0] = 0xff;
	add_as(&b, "pi3", stream, 1);
	add_as(&b, "pi1", stream, 2);
	add_as(&b, "pi3", stream, 3);
	w4[0] = STORE_REFUSED, w4[1] = STORE_NEW, w4[2] = STORE_REFUSED;
	insert_each(t->s, &b, 1, w4);
	stream[0] = 0;
	add_as(&b, "pi3", stream, 2); /* its bound ones go on */
	w4[0] = STORE_NEW;
	insert_each(t->s, &b, 1, w4);
}

static void test_schema_version(void **state)
{
	struct t *t = *state;
	struct store_opts o = {.kind = STORE_SQLITE, .path = t->db};
	struct store *s = (struct store *)&o; /* must stay as it is */
	char other[600];

	store_close(t->s);
	t->s = NULL;
	sql(t->db, "UPDATE meta SET value = '1' WHERE key = 'schema'"); /* before streams */
	assert_int_equal(store_open(&o, &s), -EPROTO);
	assert_ptr_equal(s, (struct store *)&o);
	sql(t->db, "DELETE FROM meta");
	assert_int_equal(store_open(&o, &s), -EPROTO);
	sql(t->db, "INSERT INTO meta VALUES ('schema', '2')");
	t->s = open_at(t->db);

	/* Someone else's database. */
	snprintf(other, sizeof(other), "%s/other.db", t->tmp->dir);
	sql(other, "CREATE TABLE notes (x TEXT)");
	o.path = other;
	assert_int_equal(store_open(&o, &s), -EPROTO);
	assert_ptr_equal(s, (struct store *)&o);
}

static void write_file(const char *path, const void *data, size_t len, off_t at)
{
	int fd = open(path, O_WRONLY | O_CREAT, 0600);

	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, data, len, at), (ssize_t)len);
	assert_int_equal(close(fd), 0);
}

static void test_damaged_file(void **state)
{
	struct t *t = *state;
	struct store_opts o = {.kind = STORE_SQLITE};
	struct store *s = NULL;
	char path[600];
	uint8_t junk[8192];

	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(i * 37 + 11);
	/* Not a database at all. */
	snprintf(path, sizeof(path), "%s/junk.db", t->tmp->dir);
	write_file(path, junk, sizeof(junk), 0);
	o.path = path;
	assert_int_equal(store_open(&o, &s), -EBADMSG);
	assert_null(s);
	/* A text file. */
	snprintf(path, sizeof(path), "%s/text.db", t->tmp->dir);
	write_file(path, "hello\n", 6, 0);
	assert_int_equal(store_open(&o, &s), -EBADMSG);

	/* A store whose pages past the first were overwritten: open or the first read says so. */
	struct batch b = {0};
	for (uint64_t seq = 1; seq <= 60; seq++)
		add(&b, SA, seq, false, 1);
	insert(t->s, &b);
	grant(t->s, SA, DOC1, 0);
	store_close(t->s);
	t->s = NULL;
	write_file(t->db, junk, sizeof(junk), 4096);
	unlink(strcat(strcpy(path, t->db), "-wal"));
	o.path = t->db;
	int r = store_open(&o, &s);
	if (r == 0) {
		struct store_stats st;
		struct got g;
		int r1 = store_stats(s, &st), r2 = store_history(s, DOC1, SA, 0, 100, collect, &g);

		assert_true(r1 == -EBADMSG || r2 == -EBADMSG);
		store_close(s);
	} else {
		assert_int_equal(r, -EBADMSG);
	}
}

static void test_bad_calls(void **state)
{
	struct t *t = *state;
	struct store_opts o = {.kind = STORE_SQLITE, .path = NULL};
	struct store *s = NULL;
	struct batch b = {0};
	struct got g;
	size_t n = 5;
	int64_t id = 1;

	assert_int_equal(store_open(NULL, &s), -EINVAL);
	assert_int_equal(store_open(&o, &s), -EINVAL);
	o.path = "";
	assert_int_equal(store_open(&o, &s), -EINVAL);
	o.kind = (enum store_kind)7;
	o.path = t->db;
	assert_int_equal(store_open(&o, &s), -EINVAL);
	o.kind = STORE_SQLITE;
	assert_int_equal(store_open(&o, NULL), -EINVAL);
	/* A directory where the file should be. */
	o.path = t->tmp->dir;
	assert_true(store_open(&o, &s) < 0);
	assert_null(s);
	store_close(NULL);

	add(&b, SA, 1, false, 1);
	assert_int_equal(store_insert(NULL, b.r, 1, &n), -EINVAL);
	assert_int_equal(store_insert(t->s, NULL, 1, &n), -EINVAL);
	b.r[0].seq = (uint64_t)INT64_MAX + 1; /* neither SQLite nor PostgreSQL holds it */
	assert_int_equal(store_insert(t->s, b.r, 1, &n), -EINVAL);
	b.r[0].seq = 1;
	b.r[0].len = 0;
	assert_int_equal(store_insert(t->s, b.r, 1, &n), -EINVAL);
	b.r[0].len = 10;
	b.r[0].data = NULL;
	assert_int_equal(store_insert(t->s, b.r, 1, &n), -EINVAL);
	assert_int_equal(n, 5);
	assert_int_equal(stats(t->s).readings, 0);

	assert_int_equal(store_queue(t->s, NULL, 10, collect, &g), -EINVAL);
	assert_int_equal(store_queue(t->s, "", 10, collect, &g), -EINVAL);
	assert_int_equal(store_queue(t->s, DOC1, 10, NULL, &g), -EINVAL);
	char longname[CERT_NAME_MAX + 1];
	memset(longname, 'd', CERT_NAME_MAX);
	longname[CERT_NAME_MAX] = '\0';
	assert_int_equal(store_queue(t->s, longname, 10, collect, &g), -EINVAL);
	assert_int_equal(store_delivered(t->s, DOC1, NULL, 1, &n), -EINVAL);
	assert_int_equal(store_delivered(t->s, NULL, &id, 1, &n), -EINVAL);
	assert_int_equal(n, 5);
	assert_int_equal(store_expired_of(t->s, DOC1, NULL, NULL), -EINVAL);
	assert_int_equal(store_expired_of(t->s, NULL, collect_expired, NULL), -EINVAL);
	assert_int_equal(store_expire(NULL, 1, 1, 1, 1, &n), -EINVAL);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_insert_duplicates),
	    T(test_failed_batch_stores_nothing),
	    T(test_queue_order),
	    T(test_catch_up),
	    T(test_delivered_only_own),
	    T(test_grants),
	    T(test_history),
	    T(test_expire_by_time),
	    T(test_expire_by_cap),
	    T(test_stats_and_queues),
	    T(test_file_modes),
	    T(test_reopen_keeps_everything),
	    T(test_killed_writer_loses_nothing),
	    T(test_stream_binding),
	    T(test_schema_version),
	    T(test_damaged_file),
	    T(test_bad_calls),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
