/* The relay's store on one machine (store.h): one SQLite file in WAL mode with
 * synchronous=NORMAL, so a commit is in the WAL (safe from a killed process, not from a power
 * cut) without an fsync per batch. Every statement is prepared once at open and reused; a batch
 * is one BEGIN IMMEDIATE .. COMMIT.
 *
 * The doctor's queue is read through a partial index of the undelivered rows, (emergency, stream,
 * seq) WHERE delivered = 0, one stream of the doctor's at a time: each query is then a range
 * scan that stops after the rows asked for, with no sort, and rows marked delivered leave the
 * index, so a doctor catching up on 100,000 readings costs the same per call at the end as at
 * the start. (SQLite's planner sorts a join of grants and readings per stream even when the
 * index is in order, which makes a catch-up quadratic: hence the loop over the streams here.)
 *
 * Rows read back are copied out of SQLite before the caller's function runs, so that function
 * may call the store (store_delivered() from a store_queue() callback), and data stays valid
 * until the next read of readings, as store.h promises. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file.h"
#include "log.h"
#include "store_impl.h"

#define SCHEMA_VERSION	    2
#define SCHEMA_VERSION_TEXT "2"	 /* as meta holds it */
#define BUSY_TIMEOUT_MS	    2000 /* another process on the file (iotsecctl's tools, a backup) */

static const char schema_sql[] =
    "CREATE TABLE readings (id INTEGER PRIMARY KEY, stream BLOB NOT NULL, seq INTEGER NOT NULL,"
    " emergency INTEGER NOT NULL, received_ms INTEGER NOT NULL,"
    " delivered INTEGER NOT NULL DEFAULT 0, data BLOB NOT NULL, UNIQUE (stream, seq));"
    /* The queue, and nothing else: delivered rows leave it. */
    "CREATE INDEX readings_queue ON readings (emergency, stream, seq) WHERE delivered = 0;"
    /* Retention by time, oldest first. */
    "CREATE INDEX readings_received ON readings (received_ms);"
    "CREATE TABLE grants (stream BLOB PRIMARY KEY, doctor TEXT NOT NULL, e0 INTEGER NOT NULL,"
    " wrapped BLOB NOT NULL, granted_ms INTEGER NOT NULL);"
    /* A doctor's streams in stream order (unique: stream alone is). */
    "CREATE UNIQUE INDEX grants_doctor ON grants (doctor, stream);"
    "CREATE TABLE expired (stream BLOB PRIMARY KEY, count INTEGER NOT NULL,"
    " undelivered INTEGER NOT NULL, first_seq INTEGER NOT NULL, last_seq INTEGER NOT NULL,"
    " at_ms INTEGER NOT NULL);"
    "CREATE TABLE streams (stream BLOB PRIMARY KEY, device BLOB NOT NULL);"
    /* A device's streams counted (STORE_DEVICE_STREAMS_MAX) by an index seek. */
    "CREATE INDEX streams_device ON streams (device);"
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);";

enum {
	ST_BEGIN,
	ST_BEGIN_READ,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_INSERT,
	ST_BOUND_TO,
	ST_DEVICE_STREAMS,
	ST_BIND,
	ST_HOLDS,
	ST_GRANT_PUT,
	ST_GRANTS,
	ST_STREAMS,
	ST_QUEUE,
	ST_DELIVER,
	ST_OWNER,
	ST_HISTORY,
	ST_DOOM_TIME,
	ST_FIRST_OF_NEXT,
	ST_LAST_SEQ,
	ST_COUNT,
	ST_DOOM_OLDEST,
	ST_ACCOUNT,
	ST_DELETE_DOOMED,
	ST_CLEAR_DOOMED,
	ST_EXPIRED_OF,
	ST_STATS,
	ST_QUEUES,
	ST_MAX,
};

static const char *const stmt_sql[ST_MAX] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    /* A read's statements see one moment, and take no write lock. */
    [ST_BEGIN_READ] = "BEGIN",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_INSERT] = "INSERT INTO readings (stream, seq, emergency, received_ms, delivered, data)"
		  " VALUES (?1, ?2, ?3, ?4, 0, ?5) ON CONFLICT (stream, seq) DO NOTHING",
    [ST_BOUND_TO] = "SELECT device FROM streams WHERE stream = ?1",
    [ST_DEVICE_STREAMS] = "SELECT count(*) FROM streams WHERE device = ?1",
    [ST_BIND] = "INSERT INTO streams (stream, device) VALUES (?1, ?2)",
    [ST_HOLDS] = "SELECT 1 FROM readings WHERE stream = ?1 AND seq = ?2 AND data = ?3",
    /* Only the doctor who holds the stream may replace its row: no change means another's. */
    [ST_GRANT_PUT] = "INSERT INTO grants (stream, doctor, e0, wrapped, granted_ms)"
		     " VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (stream) DO UPDATE SET"
		     " e0 = excluded.e0, wrapped = excluded.wrapped,"
		     " granted_ms = excluded.granted_ms WHERE grants.doctor = excluded.doctor",
    [ST_GRANTS] = "SELECT stream, doctor, e0, wrapped, granted_ms FROM grants WHERE doctor = ?1"
		  " ORDER BY granted_ms DESC, stream",
    [ST_STREAMS] = "SELECT stream FROM grants WHERE doctor = ?1 ORDER BY stream",
    [ST_QUEUE] = "SELECT id, seq, received_ms, data FROM readings"
		 " WHERE stream = ?1 AND emergency = ?2 AND delivered = 0 ORDER BY seq LIMIT ?3",
    [ST_DELIVER] = "UPDATE readings SET delivered = 1 WHERE id = ?1 AND delivered = 0 AND"
		   " EXISTS (SELECT 1 FROM grants g WHERE g.doctor = ?2"
		   " AND g.stream = readings.stream)",
    [ST_OWNER] = "SELECT doctor FROM grants WHERE stream = ?1",
    [ST_HISTORY] = "SELECT id, seq, emergency, received_ms, delivered, data FROM readings"
		   " WHERE stream = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
    [ST_DOOM_TIME] = "INSERT OR IGNORE INTO temp.store_doomed (id) SELECT id FROM readings"
		     " WHERE received_ms < ?1 ORDER BY received_ms LIMIT ?2",
    /* The streams one at a time, each by two index seeks (a GROUP BY would read every row
     * each minute). */
    [ST_FIRST_OF_NEXT] = "SELECT stream, seq FROM readings WHERE stream > ?1"
			 " ORDER BY stream, seq LIMIT 1",
    [ST_LAST_SEQ] = "SELECT seq FROM readings WHERE stream = ?1 ORDER BY seq DESC LIMIT 1",
    [ST_COUNT] = "SELECT count(*) FROM readings WHERE stream = ?1",
    [ST_DOOM_OLDEST] = "INSERT OR IGNORE INTO temp.store_doomed (id) SELECT id FROM readings"
		       " WHERE stream = ?1 ORDER BY seq LIMIT ?2",
    [ST_ACCOUNT] = "INSERT INTO expired (stream, count, undelivered, first_seq, last_seq, at_ms)"
		   " SELECT r.stream, count(*), sum(r.delivered = 0), min(r.seq), max(r.seq), ?1"
		   " FROM temp.store_doomed d JOIN readings r ON r.id = d.id WHERE true"
		   " GROUP BY r.stream ON CONFLICT (stream) DO UPDATE SET"
		   " count = count + excluded.count,"
		   " undelivered = undelivered + excluded.undelivered,"
		   " first_seq = min(first_seq, excluded.first_seq),"
		   " last_seq = max(last_seq, excluded.last_seq), at_ms = excluded.at_ms",
    [ST_DELETE_DOOMED] = "DELETE FROM readings WHERE id IN (SELECT id FROM temp.store_doomed)",
    [ST_CLEAR_DOOMED] = "DELETE FROM temp.store_doomed",
    [ST_EXPIRED_OF] = "SELECT e.stream, e.count, e.undelivered, e.first_seq, e.last_seq, e.at_ms"
		      " FROM grants g JOIN expired e ON e.stream = g.stream WHERE g.doctor = ?1"
		      " ORDER BY e.stream",
    [ST_STATS] = "SELECT (SELECT count(*) FROM readings),"
		 " (SELECT count(*) FROM readings WHERE delivered = 0),"
		 " (SELECT count(*) FROM readings WHERE emergency = 1 AND delivered = 0),"
		 " (SELECT coalesce(sum(count), 0) FROM expired),"
		 " (SELECT coalesce(min(received_ms), 0) FROM readings WHERE delivered = 0),"
		 " (SELECT page_count FROM pragma_page_count()) *"
		 " (SELECT page_size FROM pragma_page_size())",
    [ST_QUEUES] = "SELECT g.doctor, count(r.id), coalesce(min(r.received_ms), 0) FROM grants g"
		  " LEFT JOIN readings r ON r.stream = g.stream AND r.delivered = 0"
		  " GROUP BY g.doctor ORDER BY g.doctor",
};

/* Rows copied out of SQLite; data points into bytes once the rows are all in. */
struct rowbuf {
	struct store_reading *rows;
	size_t n, cap;
	uint8_t *bytes;
	size_t len, bytes_cap;
};

struct sq {
	struct store base; /* first: store_impl.h */
	sqlite3 *db;
	char *path, *wal_path;
	sqlite3_stmt *st[ST_MAX];
	struct rowbuf rb;
	uint8_t (*streams)[STREAM_ID_LEN];
	size_t streams_cap;
	bool reading; /* a read's rows are being handed out: rb is in use */
};

static struct sq *sq_of(struct store *s)
{
	return (struct sq *)s;
}

/* SQLite's result as a negative errno. */
static int sq_errno(sqlite3 *db, int rc)
{
	int sys = db != NULL ? sqlite3_system_errno(db) : 0;

	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_READONLY:
		return -EROFS;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_TOOBIG:
		return -EMSGSIZE;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return -EBADMSG;
	case SQLITE_PERM:
	case SQLITE_AUTH:
		return -EACCES;
	case SQLITE_CONSTRAINT:
		return -EINVAL;
	case SQLITE_CANTOPEN:
		return sys > 0 ? -sys : -EACCES;
	case SQLITE_IOERR:
		return sys > 0 ? -sys : -EIO;
	default:
		return -EIO;
	}
}

/* Log SQLite's words once (never a row's contents: SQLite's messages name tables, columns and
 * the failure) and return the errno. */
static int sq_fail(const struct sq *q, const char *what, int rc)
{
	int r = sq_errno(q->db, rc);

	log_warnx("relay store %s: %s: %s", q->path, what,
		  q->db != NULL ? sqlite3_errmsg(q->db) : sqlite3_errstr(rc));
	return r;
}

/* One statement that returns no row, run and reset. */
static int sq_run(struct sq *q, int i, const char *what)
{
	int rc = sqlite3_step(q->st[i]);

	sqlite3_reset(q->st[i]);
	return rc == SQLITE_DONE ? 0 : sq_fail(q, what, rc);
}

static int sq_begin(struct sq *q)
{
	return sq_run(q, ST_BEGIN, "begin");
}

static int sq_commit(struct sq *q)
{
	return sq_run(q, ST_COMMIT, "commit");
}

/* After a failure inside a transaction: nothing of it stays. */
static void sq_rollback(struct sq *q)
{
	if (!sqlite3_get_autocommit(q->db))
		sq_run(q, ST_ROLLBACK, "rollback");
}

static int bind_stream(sqlite3_stmt *st, int col, const uint8_t stream[STREAM_ID_LEN])
{
	return sqlite3_bind_blob(st, col, stream, STREAM_ID_LEN, SQLITE_STATIC);
}

static int bind_text(sqlite3_stmt *st, int col, const char *text)
{
	return sqlite3_bind_text(st, col, text, -1, SQLITE_STATIC);
}

/* A column that must be a stream id (a file edited by hand or damaged gives -EBADMSG). */
static int col_stream(sqlite3_stmt *st, int col, uint8_t ret[STREAM_ID_LEN])
{
	const void *p = sqlite3_column_blob(st, col);

	if (p == NULL || sqlite3_column_bytes(st, col) != STREAM_ID_LEN)
		return -EBADMSG;
	memcpy(ret, p, STREAM_ID_LEN);
	return 0;
}

static int64_t col_i64(sqlite3_stmt *st, int col)
{
	return sqlite3_column_int64(st, col);
}

static uint64_t col_u64(sqlite3_stmt *st, int col)
{
	int64_t v = sqlite3_column_int64(st, col);

	return v < 0 ? 0 : (uint64_t)v;
}

static int rowbuf_grow(void **p, size_t *cap, size_t need, size_t size)
{
	size_t c = *cap ? *cap : 64;
	void *np;

	if (need <= *cap)
		return 0;
	while (c < need)
		c *= 2;
	np = reallocarray(*p, c, size);
	if (np == NULL)
		return -ENOMEM;
	*p = np;
	*cap = c;
	return 0;
}

/* Copy the current row's data (column col) and take the row r; data is fixed up later. */
static int rowbuf_add(struct rowbuf *rb, const struct store_reading *r, sqlite3_stmt *st, int col)
{
	const void *p = sqlite3_column_blob(st, col);
	size_t len = (size_t)sqlite3_column_bytes(st, col);
	struct store_reading *row;
	int e;

	if (p == NULL || len == 0)
		return -EBADMSG;
	if ((e = rowbuf_grow((void **)&rb->rows, &rb->cap, rb->n + 1, sizeof(*rb->rows))) < 0 ||
	    (e = rowbuf_grow((void **)&rb->bytes, &rb->bytes_cap, rb->len + len, 1)) < 0)
		return e;
	row = &rb->rows[rb->n++];
	*row = *r;
	row->data = NULL;
	row->len = len;
	memcpy(rb->bytes + rb->len, p, len);
	rb->len += len;
	return 0;
}

/* The rows' data pointers, now that bytes no longer moves; then each row to fn. */
static int rowbuf_hand_out(struct sq *q, int (*fn)(const struct store_reading *r, void *userdata),
			   void *userdata)
{
	struct rowbuf *rb = &q->rb;
	size_t off = 0;
	int r = 0;

	for (size_t i = 0; i < rb->n; i++) {
		rb->rows[i].data = rb->bytes + off;
		off += rb->rows[i].len;
	}
	q->reading = true;
	for (size_t i = 0; i < rb->n && r >= 0; i++)
		r = fn(&rb->rows[i], userdata);
	q->reading = false;
	return r < 0 ? r : 0;
}

/* May x be stored under its stream? 1 yes (its stream is x's device's, bound now when it was
 * no one's), 0 no (another device's, or the device has its STORE_DEVICE_STREAMS_MAX already);
 * inside the insert's transaction, so the binding commits with the reading. */
static int sq_bind(struct sq *q, const struct store_reading *x)
{
	sqlite3_stmt *st = q->st[ST_BOUND_TO];
	int rc, owned;

	bind_stream(st, 1, x->stream);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		owned = sqlite3_column_bytes(st, 0) == STORE_DEVICE_LEN &&
			memcmp(sqlite3_column_blob(st, 0), x->device, STORE_DEVICE_LEN) == 0;
		sqlite3_reset(st);
		return owned;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return sq_fail(q, "insert", rc);
	st = q->st[ST_DEVICE_STREAMS];
	sqlite3_bind_blob(st, 1, x->device, STORE_DEVICE_LEN, SQLITE_STATIC);
	rc = sqlite3_step(st);
	owned = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
	sqlite3_reset(st);
	if (rc != SQLITE_ROW)
		return sq_fail(q, "insert", rc);
	if (owned >= STORE_DEVICE_STREAMS_MAX)
		return 0;
	st = q->st[ST_BIND];
	bind_stream(st, 1, x->stream);
	sqlite3_bind_blob(st, 2, x->device, STORE_DEVICE_LEN, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 1 : sq_fail(q, "insert", rc);
}

static int sq_insert(struct store *s, const struct store_reading *rs, size_t n, size_t *ret_new,
		     enum store_outcome *ret_each)
{
	struct sq *q = sq_of(s);
	sqlite3_stmt *st = q->st[ST_INSERT];
	size_t fresh = 0;
	int r, rc;

	if ((r = sq_begin(q)) < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		const struct store_reading *x = &rs[i];

		if (rs[i].len > INT_MAX) {
			r = -EMSGSIZE;
			goto fail;
		}
		if ((r = sq_bind(q, x)) < 0)
			goto fail;
		if (r == 0) {
			ret_each[i] = STORE_REFUSED;
			continue;
		}
		bind_stream(st, 1, x->stream);
		sqlite3_bind_int64(st, 2, (int64_t)x->seq);
		sqlite3_bind_int(st, 3, x->emergency);
		sqlite3_bind_int64(st, 4, x->received_ms);
		sqlite3_bind_blob(st, 5, x->data, (int)x->len, SQLITE_STATIC);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc != SQLITE_DONE) {
			r = sq_fail(q, "insert", rc);
			goto fail;
		}
		ret_each[i] = sqlite3_changes(q->db) > 0 ? STORE_NEW : STORE_DUPLICATE;
		fresh += ret_each[i] == STORE_NEW;
	}
	if ((r = sq_commit(q)) < 0)
		goto fail;
	if (ret_new != NULL)
		*ret_new = fresh;
	return 0;
fail:
	sq_rollback(q);
	return r;
}

static int sq_holds(struct store *s, const struct store_reading *r)
{
	struct sq *q = sq_of(s);
	sqlite3_stmt *st = q->st[ST_HOLDS];
	int rc;

	if (r->len > INT_MAX)
		return 0;
	bind_stream(st, 1, r->stream);
	sqlite3_bind_int64(st, 2, (int64_t)r->seq);
	sqlite3_bind_blob(st, 3, r->data, (int)r->len, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : sq_fail(q, "holds", rc);
}

static int sq_grant_put(struct store *s, const struct store_grant *g)
{
	struct sq *q = sq_of(s);
	sqlite3_stmt *st = q->st[ST_GRANT_PUT];
	int rc;

	bind_stream(st, 1, g->stream);
	bind_text(st, 2, g->doctor);
	sqlite3_bind_int64(st, 3, g->e0);
	/* Never a NULL blob (the column is NOT NULL): zeroblob for an empty one. */
	if (g->wrapped_len == 0)
		sqlite3_bind_zeroblob(st, 4, 0);
	else
		sqlite3_bind_blob(st, 4, g->wrapped, (int)g->wrapped_len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, g->granted_ms);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return sq_fail(q, "grant", rc);
	return sqlite3_changes(q->db) == 0 ? -EEXIST : 0;
}

static int sq_grants(struct store *s, const char *doctor,
		     int (*fn)(const struct store_grant *g, void *userdata), void *userdata)
{
	struct sq *q = sq_of(s);
	sqlite3_stmt *st = q->st[ST_GRANTS];
	struct store_grant *gs = NULL;
	size_t n = 0, cap = 0;
	int r = 0, rc;

	bind_text(st, 1, doctor);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_grant *g;
		const char *doc = (const char *)sqlite3_column_text(st, 1);
		int wl = sqlite3_column_bytes(st, 3);

		if ((r = rowbuf_grow((void **)&gs, &cap, n + 1, sizeof(*gs))) < 0)
			break;
		g = &gs[n];
		memset(g, 0, sizeof(*g));
		if ((r = col_stream(st, 0, g->stream)) < 0 || doc == NULL ||
		    strlen(doc) >= sizeof(g->doctor) || wl < 0 || wl > STORE_WRAPPED_MAX) {
			r = r < 0 ? r : -EBADMSG;
			break;
		}
		strcpy(g->doctor, doc);
		g->e0 = (uint32_t)col_i64(st, 2);
		if (wl > 0)
			memcpy(g->wrapped, sqlite3_column_blob(st, 3), (size_t)wl);
		g->wrapped_len = (size_t)wl;
		g->granted_ms = col_i64(st, 4);
		n++;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = sq_fail(q, "grants", rc);
	sqlite3_reset(st);
	for (size_t i = 0; i < n && r >= 0; i++)
		r = fn(&gs[i], userdata);
	free(gs);
	return r < 0 ? r : 0;
}

/* The doctor's streams, in stream order, into q->streams; *ret_n of them. */
static int sq_streams(struct sq *q, const char *doctor, size_t *ret_n)
{
	sqlite3_stmt *st = q->st[ST_STREAMS];
	size_t n = 0;
	int r = 0, rc;

	bind_text(st, 1, doctor);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((r = rowbuf_grow((void **)&q->streams, &q->streams_cap, n + 1,
				     sizeof(*q->streams))) < 0 ||
		    (r = col_stream(st, 0, q->streams[n])) < 0)
			break;
		n++;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = sq_fail(q, "streams", rc);
	sqlite3_reset(st);
	if (r == 0)
		*ret_n = n;
	return r;
}

static int sq_queue(struct store *s, const char *doctor, size_t max,
		    int (*fn)(const struct store_reading *r, void *userdata), void *userdata)
{
	struct sq *q = sq_of(s);
	sqlite3_stmt *st = q->st[ST_QUEUE];
	size_t ns = 0;
	int r, rc = SQLITE_DONE;

	if (q->reading)
		return -EBUSY; /* the rows being handed out would be overwritten */
	q->rb.n = q->rb.len = 0;
	if ((r = sq_run(q, ST_BEGIN_READ, "begin")) < 0)
		return r;
	if ((r = sq_streams(q, doctor, &ns)) < 0)
		goto out;
	/* Emergencies of every stream first, then the rest, each stream by seq. */
	for (int emergency = 1; emergency >= 0 && q->rb.n < max; emergency--) {
		for (size_t i = 0; i < ns && q->rb.n < max; i++) {
			bind_stream(st, 1, q->streams[i]);
			sqlite3_bind_int(st, 2, emergency);
			sqlite3_bind_int64(st, 3, (int64_t)(max - q->rb.n));
			while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
				struct store_reading row = {
				    .id = col_i64(st, 0),
				    .seq = col_u64(st, 1),
				    .emergency = emergency,
				    .received_ms = col_i64(st, 2),
				};

				memcpy(row.stream, q->streams[i], STREAM_ID_LEN);
				if ((r = rowbuf_add(&q->rb, &row, st, 3)) < 0)
					break;
			}
			sqlite3_reset(st);
			if (r < 0)
				goto out;
			if (rc != SQLITE_DONE) {
				r = sq_fail(q, "queue", rc);
				goto out;
			}
		}
	}
	r = sq_commit(q);
out:
	if (r < 0) {
		sq_rollback(q);
		return r;
	}
	return rowbuf_hand_out(q, fn, userdata);
}

static int sq_delivered(struct store *s, const char *doctor, const int64_t *ids, size_t n,
			size_t *ret_marked)
{
	struct sq *q = sq_of(s);
	sqlite3_stmt *st = q->st[ST_DELIVER];
	size_t marked = 0;
	int r, rc;

	if ((r = sq_begin(q)) < 0)
		return r;
	bind_text(st, 2, doctor);
	for (size_t i = 0; i < n; i++) {
		sqlite3_bind_int64(st, 1, ids[i]);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc != SQLITE_DONE) {
			r = sq_fail(q, "delivered", rc);
			goto fail;
		}
		marked += (size_t)sqlite3_changes(q->db);
	}
	if ((r = sq_commit(q)) < 0)
		goto fail;
	if (ret_marked != NULL)
		*ret_marked = marked;
	return 0;
fail:
	sq_rollback(q);
	return r;
}

/* 0 when the stream is the doctor's, -EACCES when it is another's or nobody's. */
static int sq_owner_is(struct sq *q, const char *doctor, const uint8_t stream[STREAM_ID_LEN])
{
	sqlite3_stmt *st = q->st[ST_OWNER];
	int r, rc;

	bind_stream(st, 1, stream);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const char *doc = (const char *)sqlite3_column_text(st, 0);

		r = doc != NULL && strcmp(doc, doctor) == 0 ? 0 : -EACCES;
	} else {
		r = rc == SQLITE_DONE ? -EACCES : sq_fail(q, "owner", rc);
	}
	sqlite3_reset(st);
	return r;
}

static int sq_history(struct store *s, const char *doctor, const uint8_t stream[STREAM_ID_LEN],
		      uint64_t after_seq, size_t max,
		      int (*fn)(const struct store_reading *r, void *userdata), void *userdata)
{
	struct sq *q = sq_of(s);
	sqlite3_stmt *st = q->st[ST_HISTORY];
	int r, rc;

	if (q->reading)
		return -EBUSY;
	q->rb.n = q->rb.len = 0;
	if ((r = sq_run(q, ST_BEGIN_READ, "begin")) < 0)
		return r;
	if ((r = sq_owner_is(q, doctor, stream)) < 0 || max == 0)
		goto out;
	bind_stream(st, 1, stream);
	sqlite3_bind_int64(st, 2, (int64_t)after_seq);
	sqlite3_bind_int64(st, 3, max > INT64_MAX ? INT64_MAX : (int64_t)max);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_reading row = {
		    .id = col_i64(st, 0),
		    .seq = col_u64(st, 1),
		    .emergency = col_i64(st, 2) != 0,
		    .received_ms = col_i64(st, 3),
		    .delivered = col_i64(st, 4) != 0,
		};

		memcpy(row.stream, stream, STREAM_ID_LEN);
		if ((r = rowbuf_add(&q->rb, &row, st, 5)) < 0)
			break;
	}
	sqlite3_reset(st);
	if (r == 0 && rc != SQLITE_DONE)
		r = sq_fail(q, "history", rc);
out:
	if (r < 0) {
		sq_rollback(q);
		return r;
	}
	if ((r = sq_commit(q)) < 0)
		return r;
	return rowbuf_hand_out(q, fn, userdata);
}

/* The doomed rows added to their streams' expired rows, then removed; *ret_n of them. */
static int sq_expire_doomed(struct sq *q, int64_t now_ms, size_t *ret_n)
{
	sqlite3_stmt *st = q->st[ST_ACCOUNT];
	int r;

	sqlite3_bind_int64(st, 1, now_ms);
	if ((r = sq_run(q, ST_ACCOUNT, "expire (account)")) < 0 ||
	    (r = sq_run(q, ST_DELETE_DOOMED, "expire (delete)")) < 0)
		return r;
	*ret_n = (size_t)sqlite3_changes(q->db);
	return sq_run(q, ST_CLEAR_DOOMED, "expire (clear)");
}

/* A one-column integer query on stream; *ret its value, or 0 with *ret_found false. */
static int sq_stream_int(struct sq *q, int i, const uint8_t stream[STREAM_ID_LEN], const char *what,
			 bool *ret_found, uint64_t *ret)
{
	sqlite3_stmt *st = q->st[i];
	int rc;

	bind_stream(st, 1, stream);
	rc = sqlite3_step(st);
	*ret_found = rc == SQLITE_ROW;
	*ret = rc == SQLITE_ROW ? col_u64(st, 0) : 0;
	sqlite3_reset(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : sq_fail(q, what, rc);
}

/* The oldest rows beyond cap of each stream, while budget lasts, into the doomed table. */
static int sq_doom_over_cap(struct sq *q, uint64_t cap, size_t budget)
{
	sqlite3_stmt *next = q->st[ST_FIRST_OF_NEXT], *doom = q->st[ST_DOOM_OLDEST];
	uint8_t stream[STREAM_ID_LEN] = {0};
	bool any = false, found;
	uint64_t first = 0, last, count;
	int r = 0, rc;

	while (budget > 0) {
		/* The first stream after the last one seen (any blob sorts after the empty one). */
		if (any)
			bind_stream(next, 1, stream);
		else
			sqlite3_bind_zeroblob(next, 1, 0);
		rc = sqlite3_step(next);
		if (rc == SQLITE_ROW) {
			r = col_stream(next, 0, stream);
			first = col_u64(next, 1);
		}
		sqlite3_reset(next);
		if (rc == SQLITE_DONE)
			return 0;
		if (rc != SQLITE_ROW)
			return sq_fail(q, "expire (streams)", rc);
		if (r < 0)
			return r;
		any = true;
		if ((r = sq_stream_int(q, ST_LAST_SEQ, stream, "expire (last)", &found, &last)) < 0)
			return r;
		/* seqs are unique per stream: a span within cap cannot hold more than cap. */
		if (last - first < cap)
			continue;
		if ((r = sq_stream_int(q, ST_COUNT, stream, "expire (count)", &found, &count)) < 0)
			return r;
		if (count <= cap)
			continue;
		count -= cap;
		if (count > budget)
			count = budget;
		bind_stream(doom, 1, stream);
		sqlite3_bind_int64(doom, 2, (int64_t)count);
		if ((r = sq_run(q, ST_DOOM_OLDEST, "expire (cap)")) < 0)
			return r;
		budget -= count;
	}
	return 0;
}

static int sq_expire(struct store *s, int64_t now_ms, int64_t cutoff_ms, uint64_t cap, size_t max,
		     size_t *ret_removed)
{
	struct sq *q = sq_of(s);
	size_t by_time = 0, by_cap = 0;
	int r;

	if ((r = sq_begin(q)) < 0)
		return r;
	if ((r = sq_run(q, ST_CLEAR_DOOMED, "expire (clear)")) < 0)
		goto fail;
	sqlite3_bind_int64(q->st[ST_DOOM_TIME], 1, cutoff_ms);
	sqlite3_bind_int64(q->st[ST_DOOM_TIME], 2, max > INT64_MAX ? INT64_MAX : (int64_t)max);
	if ((r = sq_run(q, ST_DOOM_TIME, "expire (time)")) < 0 ||
	    (r = sq_expire_doomed(q, now_ms, &by_time)) < 0)
		goto fail;
	/* The cap counts what is left after the time limit. */
	if (by_time < max && ((r = sq_doom_over_cap(q, cap, max - by_time)) < 0 ||
			      (r = sq_expire_doomed(q, now_ms, &by_cap)) < 0))
		goto fail;
	if ((r = sq_commit(q)) < 0)
		goto fail;
	if (ret_removed != NULL)
		*ret_removed = by_time + by_cap;
	return 0;
fail:
	sq_rollback(q);
	return r;
}

static int sq_expired_of(struct store *s, const char *doctor,
			 int (*fn)(const struct store_expired *e, void *userdata), void *userdata)
{
	struct sq *q = sq_of(s);
	sqlite3_stmt *st = q->st[ST_EXPIRED_OF];
	struct store_expired *es = NULL;
	size_t n = 0, cap = 0;
	int r = 0, rc;

	bind_text(st, 1, doctor);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_expired *e;

		if ((r = rowbuf_grow((void **)&es, &cap, n + 1, sizeof(*es))) < 0)
			break;
		e = &es[n];
		if ((r = col_stream(st, 0, e->stream)) < 0)
			break;
		e->count = col_u64(st, 1);
		e->undelivered = col_u64(st, 2);
		e->first_seq = col_u64(st, 3);
		e->last_seq = col_u64(st, 4);
		e->at_ms = col_i64(st, 5);
		n++;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = sq_fail(q, "expired", rc);
	sqlite3_reset(st);
	for (size_t i = 0; i < n && r >= 0; i++)
		r = fn(&es[i], userdata);
	free(es);
	return r < 0 ? r : 0;
}

static int sq_stats(struct store *s, struct store_stats *ret)
{
	struct sq *q = sq_of(s);
	sqlite3_stmt *st = q->st[ST_STATS];
	struct store_stats t = {0};
	struct stat sb;
	int rc;

	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		t.readings = col_u64(st, 0);
		t.undelivered = col_u64(st, 1);
		t.emergencies_undelivered = col_u64(st, 2);
		t.expired = col_u64(st, 3);
		t.oldest_undelivered_ms = col_i64(st, 4);
		t.bytes = col_u64(st, 5);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW)
		return sq_fail(q, "stats", rc);
	/* What is committed but not yet checkpointed lives in the WAL: on disk too. */
	if (stat(q->wal_path, &sb) == 0)
		t.bytes += (uint64_t)sb.st_size;
	*ret = t;
	return 0;
}

static int sq_queues(struct store *s, int (*fn)(const struct store_queue *q, void *userdata),
		     void *userdata)
{
	struct sq *q = sq_of(s);
	sqlite3_stmt *st = q->st[ST_QUEUES];
	struct store_queue *qs = NULL;
	size_t n = 0, cap = 0;
	int r = 0, rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *doc = (const char *)sqlite3_column_text(st, 0);
		struct store_queue *x;

		if ((r = rowbuf_grow((void **)&qs, &cap, n + 1, sizeof(*qs))) < 0)
			break;
		x = &qs[n];
		if (doc == NULL || strlen(doc) >= sizeof(x->doctor)) {
			r = -EBADMSG;
			break;
		}
		strcpy(x->doctor, doc);
		x->undelivered = col_u64(st, 1);
		x->oldest_ms = col_i64(st, 2);
		n++;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = sq_fail(q, "queues", rc);
	sqlite3_reset(st);
	for (size_t i = 0; i < n && r >= 0; i++)
		r = fn(&qs[i], userdata);
	free(qs);
	return r < 0 ? r : 0;
}

static void sq_close(struct store *s)
{
	struct sq *q = sq_of(s);

	for (int i = 0; i < ST_MAX; i++)
		sqlite3_finalize(q->st[i]);
	/* The last connection to close checkpoints the WAL into the file and removes it. */
	if (q->db != NULL && sqlite3_close(q->db) != SQLITE_OK)
		log_warnx("relay store %s: close: %s", q->path, sqlite3_errmsg(q->db));
	free(q->rb.rows);
	free(q->rb.bytes);
	free(q->streams);
	free(q->path);
	free(q->wal_path);
	free(q);
}

static const struct store_ops sq_ops = {
    .insert = sq_insert,
    .holds = sq_holds,
    .grant_put = sq_grant_put,
    .grants = sq_grants,
    .queue = sq_queue,
    .delivered = sq_delivered,
    .history = sq_history,
    .expire = sq_expire,
    .expired_of = sq_expired_of,
    .stats = sq_stats,
    .queues = sq_queues,
    .close = sq_close,
};

/* The file's directory 0700 when missing, and the file 0600 when new (SQLite would create it
 * with 0644 less the umask; its -wal and -shm files take the database's mode). */
static int sq_create_file(const char *path)
{
	char *dir = strdup(path), *slash;
	int fd, r = 0;

	if (dir == NULL)
		return -ENOMEM;
	slash = strrchr(dir, '/');
	if (slash != NULL && slash != dir) {
		*slash = '\0';
		r = file_mkdirs(dir, 0700);
	}
	free(dir);
	if (r < 0)
		return r;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
	if (fd < 0)
		return -errno;
	close(fd);
	return 0;
}

/* 1 for a new (empty) file, 0 when it holds our schema of this version, -EPROTO for another
 * version or a database that is not ours. */
static int sq_schema_state(struct sq *q)
{
	sqlite3_stmt *st = NULL;
	int r, rc, tables = 0;

	rc = sqlite3_prepare_v2(q->db, "SELECT count(*) FROM sqlite_schema", -1, &st, NULL);
	if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW)
		tables = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	st = NULL;
	if (rc != SQLITE_ROW)
		return sq_fail(q, "open", rc);
	if (tables == 0)
		return 1;
	rc =
	    sqlite3_prepare_v2(q->db, "SELECT value FROM meta WHERE key = 'schema'", -1, &st, NULL);
	if (rc != SQLITE_OK) {
		sqlite3_finalize(st);
		log_warnx("relay store %s: not a relay store (%s)", q->path, sqlite3_errmsg(q->db));
		return -EPROTO;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_text(st, 0) != NULL &&
	    strcmp((const char *)sqlite3_column_text(st, 0), SCHEMA_VERSION_TEXT) == 0) {
		r = 0;
	} else if (rc == SQLITE_ROW || rc == SQLITE_DONE) {
		const char *v = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;

		log_warnx("relay store %s: schema version %.32s, this relay knows %d", q->path,
			  v != NULL ? v : "(none)", SCHEMA_VERSION);
		r = -EPROTO;
	} else {
		r = sq_fail(q, "open", rc);
	}
	sqlite3_finalize(st);
	return r;
}

/* Exec of SQL that returns nothing we need. */
static int sq_exec(struct sq *q, const char *sql, const char *what)
{
	int rc = sqlite3_exec(q->db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : sq_fail(q, what, rc);
}

/* The schema, made in the same transaction that finds the file empty (two relays starting on
 * one new file: the second finds the first's). */
static int sq_schema(struct sq *q)
{
	char sql[128];
	int r;

	if ((r = sq_exec(q, "BEGIN IMMEDIATE", "open")) < 0)
		return r;
	if ((r = sq_schema_state(q)) == 1) {
		snprintf(sql, sizeof(sql), "INSERT INTO meta (key, value) VALUES ('schema', '%d')",
			 SCHEMA_VERSION);
		if ((r = sq_exec(q, schema_sql, "create")) >= 0)
			r = sq_exec(q, sql, "create");
	}
	if (r >= 0)
		r = sq_exec(q, "COMMIT", "open");
	if (r < 0 && !sqlite3_get_autocommit(q->db))
		sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
	return r;
}

/* The connection's settings; journal_mode answers with the mode it is in. */
static int sq_pragmas(struct sq *q)
{
	sqlite3_stmt *st = NULL;
	int r, rc;

	rc = sqlite3_prepare_v2(q->db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const char *mode = (const char *)sqlite3_column_text(st, 0);

		r = mode != NULL && strcmp(mode, "wal") == 0 ? 0 : -EIO;
		if (r < 0)
			log_warnx("relay store %s: journal mode %s, not wal", q->path,
				  mode != NULL ? mode : "(none)");
	} else {
		r = sq_fail(q, "open", rc);
	}
	sqlite3_finalize(st);
	if (r < 0)
		return r;
	/* A page cache that holds the indexes of a few hundred thousand readings: with SQLite's
	 * 2 MiB default, inserts into the (stream, seq) and queue indexes read pages back from the
	 * file all the time. A checkpoint every 4,000 pages rather than 1,000: a doctor's catch-up
	 * marks rows spread over the whole table, and each checkpoint costs two fdatasyncs;
	 * journal_size_limit gives the WAL's space back after one. */
	return sq_exec(q,
		       "PRAGMA synchronous = NORMAL; PRAGMA temp_store = MEMORY;"
		       " PRAGMA cache_size = -65536; PRAGMA wal_autocheckpoint = 4000;"
		       " PRAGMA journal_size_limit = 67108864;"
		       " CREATE TEMP TABLE store_doomed (id INTEGER PRIMARY KEY);",
		       "open");
}

int store_sqlite_open(const struct store_opts *o, struct store **ret)
{
	struct sq *q = calloc(1, sizeof(*q));
	int r, rc;

	if (q == NULL)
		return -ENOMEM;
	q->base.ops = &sq_ops;
	if ((q->path = strdup(o->path)) == NULL || asprintf(&q->wal_path, "%s-wal", o->path) < 0) {
		q->wal_path = NULL;
		r = -ENOMEM;
		goto fail;
	}
	if ((r = sq_create_file(o->path)) < 0) {
		log_warnx("relay store %s: %s", o->path, iotsec_strerror(r));
		goto fail;
	}
	rc = sqlite3_open_v2(o->path, &q->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		r = sq_fail(q, "open", rc);
		goto fail;
	}
	sqlite3_extended_result_codes(q->db, 1);
	sqlite3_busy_timeout(q->db, BUSY_TIMEOUT_MS);
	if ((r = sq_pragmas(q)) < 0 || (r = sq_schema(q)) < 0)
		goto fail;
	for (int i = 0; i < ST_MAX; i++) {
		rc = sqlite3_prepare_v3(q->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
					&q->st[i], NULL);
		if (rc != SQLITE_OK) {
			r = sq_fail(q, "prepare", rc);
			goto fail;
		}
	}
	*ret = &q->base;
	return 0;
fail:
	sq_close(&q->base);
	return r;
}
