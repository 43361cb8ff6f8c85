/* The store on PostgreSQL (store.h, store_impl.h): one database shared by several relay
 * instances. Every call is one statement (history: a read of the grant, then of the rows), so
 * one transaction of its own; every statement is prepared once per session, with its
 * parameters and results in binary (bytea as raw bytes, bigint as 8 bytes), never as hex text.
 *
 * A batch of readings is one INSERT ... SELECT FROM unnest(arrays) ... ON CONFLICT (stream, seq)
 * DO NOTHING: the whole batch in one round trip, one statement of constant text for any batch
 * size, five parameters. tests/bench/bench_relay_pg.c measures the other ways bare, 1,000
 * readings a batch, fsync on; over five runs on a shared two-core machine: one multi-row VALUES
 * statement (5,000 parameters, a statement per batch size) from 6% slower to 13% faster, as
 * fast within the noise; COPY into a temporary table then INSERT ... SELECT 70 to 90% of it;
 * pipeline mode with one INSERT per reading 50 to 80%.
 *
 * The rows go in sorted by (stream, seq): two instances inserting overlapping batches then take
 * the unique index's entries in the same order, and the second waits for the first instead of
 * the two deadlocking; the second's copy is skipped once the first commits.
 *
 * The schema is made under an advisory lock, so two instances starting at once do not race;
 * meta's version row says whose it is. A connection found lost (the server restarted or failed
 * over) is made again, its statements prepared again, and the statement sent once more (run()).
 * Errors are negative errno values; the server's message (its primary text, never a row's values)
 * is logged once, until a call succeeds again or another error comes. */
#include <endian.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "log.h"
#include "store_impl.h"

#define SCHEMA_VERSION "2"
/* pg_advisory_xact_lock's key for the schema: "iotsec" in ASCII, nothing else uses it. */
#define SCHEMA_LOCK "115986483201379"
#define RETRIES	    3 /* a statement chosen as a deadlock victim (or a serialization failure) */

/* Type OIDs (pg_type.h is the server's header, not libpq's). */
#define OID_BOOL      16
#define OID_BYTEA     17
#define OID_INT8      20
#define OID_TEXT      25
#define OID_BOOL_ARR  1000
#define OID_BYTEA_ARR 1001
#define OID_INT8_ARR  1016

struct pg_store {
	struct store base;
	char *conninfo;	 /* for a connection made again (it may hold a password) */
	PGconn *conn;	 /* NULL after a failed attempt: the next call connects */
	PGresult *rows;	 /* the last queue or history: the data pointers handed out */
	char failed[16]; /* the SQLSTATE (or what failed) last logged; "": working */
	uint8_t *arr[5]; /* insert's arrays, kept between batches */
	size_t arr_cap[5];
};

static const char *const schema_sql =
    "CREATE TABLE IF NOT EXISTS readings ("
    " id bigserial PRIMARY KEY,"
    " stream bytea NOT NULL CHECK (length(stream) = 16),"
    " seq bigint NOT NULL,"
    " emergency boolean NOT NULL,"
    " received_ms bigint NOT NULL,"
    " delivered boolean NOT NULL DEFAULT false,"
    " data bytea NOT NULL,"
    " UNIQUE (stream, seq));"
    /* The queues: what is not delivered yet, in delivery order. */
    "CREATE INDEX IF NOT EXISTS readings_queue ON readings (emergency DESC, stream, seq)"
    " WHERE NOT delivered;"
    "CREATE INDEX IF NOT EXISTS readings_received ON readings (received_ms);"
    "CREATE TABLE IF NOT EXISTS grants ("
    " stream bytea PRIMARY KEY CHECK (length(stream) = 16),"
    " doctor text NOT NULL,"
    " e0 bigint NOT NULL,"
    " wrapped bytea NOT NULL,"
    " granted_ms bigint NOT NULL);"
    "CREATE INDEX IF NOT EXISTS grants_doctor ON grants (doctor, stream);"
    "CREATE TABLE IF NOT EXISTS expired ("
    " stream bytea PRIMARY KEY,"
    " count bigint NOT NULL,"
    " undelivered bigint NOT NULL,"
    " first_seq bigint NOT NULL,"
    " last_seq bigint NOT NULL,"
    " at_ms bigint NOT NULL);"
    /* Who publishes each stream (store.h); never removed. */
    "CREATE TABLE IF NOT EXISTS streams ("
    " stream bytea PRIMARY KEY,"
    " device bytea NOT NULL);"
    "CREATE INDEX IF NOT EXISTS streams_device ON streams (device);"
    "INSERT INTO meta (key, value) VALUES ('version', '" SCHEMA_VERSION "');";

/* The doctor's queue, in delivery order. Emergencies (rare) by one join; then the rest
 * stream by stream (in stream order) through readings_queue, so that a call reads the rows
 * it returns and one probe per stream of the doctor's, whatever waits for other doctors or
 * further on. (One query joining grants for all of it reads the index in order and skips
 * every reading of another doctor's that comes first: a catch-up behind another doctor's
 * backlog would read that backlog at each call.) Made again at every connection, under the
 * schema's lock, so that it is always this program's. */
static const char *const queue_sql =
    "CREATE OR REPLACE FUNCTION relay_queue(who text, max int8) RETURNS SETOF readings"
    " LANGUAGE plpgsql STABLE AS $$"
    " DECLARE s bytea; remaining int8 := max; got int8;"
    " BEGIN"
    "  RETURN QUERY SELECT r.* FROM readings r JOIN grants g ON g.stream = r.stream"
    "   WHERE g.doctor = who AND r.emergency AND NOT r.delivered"
    "   ORDER BY r.stream, r.seq LIMIT remaining;"
    "  GET DIAGNOSTICS got = ROW_COUNT;"
    "  remaining := remaining - got;"
    "  FOR s IN SELECT stream FROM grants WHERE doctor = who ORDER BY stream LOOP"
    "   EXIT WHEN remaining <= 0;"
    "   RETURN QUERY SELECT * FROM readings WHERE stream = s AND NOT emergency"
    "    AND NOT delivered ORDER BY seq LIMIT remaining;"
    "   GET DIAGNOSTICS got = ROW_COUNT;"
    "   remaining := remaining - got;"
    "  END LOOP;"
    " END $$;";

#define READING_COLS "r.id, r.stream, r.seq, r.emergency, r.received_ms, r.delivered, r.data"

enum stmt {
	ST_INSERT,
	ST_BOUND_TO,
	ST_DEVICE_LOCK,
	ST_BIND,
	ST_HOLDS,
	ST_GRANT_PUT,
	ST_GRANTS,
	ST_QUEUE,
	ST_DELIVERED,
	ST_GRANTED,
	ST_HISTORY,
	ST_EXPIRE,
	ST_EXPIRED_OF,
	ST_STATS,
	ST_QUEUES,
	ST_COUNT,
};

static const struct {
	const char *name, *sql;
	int nparams;
	Oid types[5];
} stmts[ST_COUNT] = {
    [ST_INSERT] = {"insert",
		   "INSERT INTO readings (stream, seq, emergency, received_ms, data)"
		   " SELECT * FROM unnest($1::bytea[], $2::int8[], $3::bool[], $4::int8[],"
		   " $5::bytea[]) ON CONFLICT (stream, seq) DO NOTHING RETURNING stream, seq",
		   5,
		   {OID_BYTEA_ARR, OID_INT8_ARR, OID_BOOL_ARR, OID_INT8_ARR, OID_BYTEA_ARR}},
    [ST_BOUND_TO] = {"bound_to", "SELECT device FROM streams WHERE stream = $1", 1, {OID_BYTEA}},
    /* A device's new streams one transaction at a time, so two instances cannot both bind
     * its last one allowed (the count below sees the other's commit). */
    [ST_DEVICE_LOCK] = {"device_lock", "SELECT pg_advisory_xact_lock($1)", 1, {OID_INT8}},
    /* Bound unless the device has its maximum; a concurrent binding of the same stream
     * wins and this does nothing (the caller reads the winner's device then). */
    [ST_BIND] = {"bind",
		 "INSERT INTO streams (stream, device) SELECT $1, $2"
		 " WHERE (SELECT count(*) FROM streams WHERE device = $2) < $3"
		 " ON CONFLICT (stream) DO NOTHING",
		 3,
		 {OID_BYTEA, OID_BYTEA, OID_INT8}},
    [ST_HOLDS] = {"holds",
		  "SELECT 1 FROM readings WHERE stream = $1 AND seq = $2 AND data = $3",
		  3,
		  {OID_BYTEA, OID_INT8, OID_BYTEA}},
    [ST_GRANT_PUT] = {"grant_put",
		      "INSERT INTO grants AS g (stream, doctor, e0, wrapped, granted_ms)"
		      " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (stream) DO UPDATE"
		      " SET e0 = EXCLUDED.e0, wrapped = EXCLUDED.wrapped,"
		      " granted_ms = EXCLUDED.granted_ms WHERE g.doctor = EXCLUDED.doctor",
		      5,
		      {OID_BYTEA, OID_TEXT, OID_INT8, OID_BYTEA, OID_INT8}},
    [ST_GRANTS] = {"grants",
		   "SELECT stream, doctor, e0, wrapped, granted_ms FROM grants"
		   " WHERE doctor = $1 ORDER BY granted_ms DESC, stream",
		   1,
		   {OID_TEXT}},
    [ST_QUEUE] = {"queue",
		  "SELECT q.id, q.stream, q.seq, q.emergency, q.received_ms, q.delivered, q.data"
		  " FROM relay_queue($1, $2) WITH ORDINALITY AS q ORDER BY q.ordinality",
		  2,
		  {OID_TEXT, OID_INT8}},
    [ST_DELIVERED] = {"delivered",
		      "UPDATE readings r SET delivered = true FROM grants g"
		      " WHERE r.id = ANY($2::int8[]) AND NOT r.delivered"
		      " AND g.stream = r.stream AND g.doctor = $1",
		      2,
		      {OID_TEXT, OID_INT8_ARR}},
    [ST_GRANTED] = {"granted",
		    "SELECT 1 FROM grants WHERE stream = $1 AND doctor = $2",
		    2,
		    {OID_BYTEA, OID_TEXT}},
    [ST_HISTORY] = {"history",
		    "SELECT " READING_COLS " FROM readings r WHERE r.stream = $1 AND r.seq > $2"
		    " ORDER BY r.seq LIMIT $3",
		    3,
		    {OID_BYTEA, OID_INT8, OID_INT8}},
    /* Readings received before the cutoff (along the received_ms index), and per stream the
     * lowest seqs beyond its cap: the streams one index probe each (a loose scan), each
     * counted along the (stream, seq) index, and only a stream over its cap read, up to max
     * rows. Nothing is sorted but the at most (streams + 1) * max candidates; the oldest go
     * first, at most max. What goes is added to its stream's expired row in the same
     * statement. Two instances running it at once: the second's DELETE skips the rows the
     * first removed, so none is counted twice. */
    [ST_EXPIRE] = {"expire",
		   "WITH RECURSIVE streams AS ("
		   "  (SELECT stream AS s FROM readings ORDER BY stream LIMIT 1) UNION ALL"
		   "  SELECT (SELECT stream FROM readings WHERE stream > streams.s ORDER BY stream"
		   "   LIMIT 1) FROM streams"
		   "  WHERE streams.s IS NOT NULL),"
		   " victims AS ("
		   "  SELECT id FROM ("
		   "   (SELECT id, received_ms, seq FROM readings WHERE received_ms < $1"
		   "    ORDER BY received_ms LIMIT $3)"
		   "   UNION SELECT x.id, x.received_ms, x.seq FROM streams"
		   "    CROSS JOIN LATERAL (SELECT count(*) AS c FROM readings"
		   "     WHERE stream = streams.s) n"
		   "    CROSS JOIN LATERAL (SELECT id, received_ms, seq FROM readings"
		   "     WHERE stream = streams.s ORDER BY seq LIMIT least(n.c - $2, $3)) x"
		   "    WHERE streams.s IS NOT NULL AND n.c > $2) v"
		   "  ORDER BY received_ms, seq LIMIT $3),"
		   " gone AS (DELETE FROM readings r USING victims v WHERE r.id = v.id"
		   "  RETURNING r.stream, r.seq, r.delivered),"
		   " agg AS (SELECT stream, count(*) AS c,"
		   "  count(*) FILTER (WHERE NOT delivered) AS u, min(seq) AS lo, max(seq) AS hi"
		   "  FROM gone GROUP BY stream),"
		   " ins AS (INSERT INTO expired AS e"
		   "  (stream, count, undelivered, first_seq, last_seq, at_ms)"
		   "  SELECT stream, c, u, lo, hi, $4 FROM agg ON CONFLICT (stream) DO UPDATE"
		   "  SET count = e.count + EXCLUDED.count,"
		   "  undelivered = e.undelivered + EXCLUDED.undelivered,"
		   "  first_seq = least(e.first_seq, EXCLUDED.first_seq),"
		   "  last_seq = greatest(e.last_seq, EXCLUDED.last_seq), at_ms = EXCLUDED.at_ms"
		   "  RETURNING 1)"
		   " SELECT coalesce(sum(c), 0)::int8 FROM agg",
		   4,
		   {OID_INT8, OID_INT8, OID_INT8, OID_INT8}},
    [ST_EXPIRED_OF] = {"expired_of",
		       "SELECT e.stream, e.count, e.undelivered, e.first_seq, e.last_seq, e.at_ms"
		       " FROM expired e JOIN grants g ON g.stream = e.stream"
		       " WHERE g.doctor = $1 ORDER BY e.stream",
		       1,
		       {OID_TEXT}},
    [ST_STATS] = {"stats",
		  "SELECT count(*), count(*) FILTER (WHERE NOT delivered),"
		  " count(*) FILTER (WHERE NOT delivered AND emergency),"
		  " coalesce(min(received_ms) FILTER (WHERE NOT delivered), 0),"
		  " (SELECT coalesce(sum(count), 0)::int8 FROM expired),"
		  " pg_database_size(current_database())::int8 FROM readings",
		  0,
		  {0}},
    [ST_QUEUES] = {"queues",
		   "SELECT g.doctor, count(r.id), coalesce(min(r.received_ms), 0)"
		   " FROM grants g LEFT JOIN readings r"
		   " ON r.stream = g.stream AND NOT r.delivered"
		   " GROUP BY g.doctor ORDER BY g.doctor",
		   0,
		   {0}},
};

/* --- Errors ---------------------------------------------------------------------------- */

/* A SQLSTATE as a negative errno. */
static int errno_of(const char *state)
{
	static const struct {
		const char *prefix;
		int err;
	} map[] = {
	    /* connection exception */
	    {"08", ECONNRESET},
	    /* the server shut down or is starting */
	    {"57P", ECONNRESET},
	    /* statement_timeout, or cancelled */
	    {"57014", ETIMEDOUT},
	    /* disk full, out of memory, too many connections or another resource */
	    {"53100", ENOSPC},
	    {"53200", ENOMEM},
	    {"53", EAGAIN},
	    /* still a deadlock victim after RETRIES */
	    {"40", EAGAIN},
	    /* a table or column not as ours: another schema */
	    {"42", EPROTO},
	    /* authorization; no such database */
	    {"28", EACCES},
	    {"3D", ENOENT},
	};

	if (state == NULL)
		return -ECONNRESET; /* libpq's own: the connection is gone */
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strncmp(state, map[i].prefix, strlen(map[i].prefix)) == 0)
			return -map[i].err;
	return -EIO;
}

/* Log the failure once (the primary message only: a DETAIL may quote a row's values) and map
 * it. res may be NULL (libpq's message then). */
static int fail(struct pg_store *s, const PGresult *res, const char *what)
{
	const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = res != NULL ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	/* A lost connection, then each call failing to connect: the first of each is told. */
	const char *key = state != NULL ? state : what;
	size_t len;

	if (msg == NULL)
		msg = PQerrorMessage(s->conn);
	if (strcmp(s->failed, key) != 0) {
		/* libpq's messages end in a newline and may add a second line. */
		len = strcspn(msg, "\n");
		log_warnx("store (postgresql): %s: %.*s%s%s%s", what, (int)len, msg,
			  state != NULL ? " (SQLSTATE " : "", state != NULL ? state : "",
			  state != NULL ? ")" : "");
		snprintf(s->failed, sizeof(s->failed), "%s", key);
	}
	return errno_of(state);
}

static void succeeded(struct pg_store *s)
{
	if (s->failed[0] != '\0')
		log_info("store (postgresql): working again");
	s->failed[0] = '\0';
}

/* Notices (CREATE ... IF NOT EXISTS says it skipped) are not for the log. */
static void quiet(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

/* --- Binary values ---------------------------------------------------------------------- */

struct params {
	const char *v[5];
	int len[5];
	int fmt[5];
	uint8_t i64[5][8];
	int n;
};

static void p_bytes(struct params *p, const void *b, size_t len)
{
	p->v[p->n] = b;
	p->len[p->n] = (int)len;
	p->fmt[p->n++] = 1;
}

static void p_i64(struct params *p, int64_t v)
{
	uint64_t be = htobe64((uint64_t)v);

	memcpy(p->i64[p->n], &be, 8);
	p_bytes(p, p->i64[p->n], 8);
}

static void p_text(struct params *p, const char *t)
{
	p->v[p->n] = t;
	p->len[p->n] = 0;
	p->fmt[p->n++] = 0;
}

static int64_t get_i64(const PGresult *res, int row, int col)
{
	uint64_t be;

	if (PQgetlength(res, row, col) != 8)
		return 0;
	memcpy(&be, PQgetvalue(res, row, col), 8);
	return (int64_t)be64toh(be);
}

static bool get_bool(const PGresult *res, int row, int col)
{
	return PQgetlength(res, row, col) == 1 && PQgetvalue(res, row, col)[0] != 0;
}

/* A one-dimensional array without NULLs in PostgreSQL's binary form (array_recv). */
struct arr {
	uint8_t *p;
	size_t len;
};

static void put32(struct arr *a, uint32_t v)
{
	v = htobe32(v);
	memcpy(a->p + a->len, &v, 4);
	a->len += 4;
}

static void arr_start(struct arr *a, Oid elem, size_t n)
{
	a->len = 0;
	put32(a, 1);	       /* dimensions */
	put32(a, 0);	       /* no NULL */
	put32(a, elem);	       /* element type */
	put32(a, (uint32_t)n); /* elements */
	put32(a, 1);	       /* lower bound */
}

static void arr_add(struct arr *a, const void *v, size_t len)
{
	put32(a, (uint32_t)len);
	memcpy(a->p + a->len, v, len);
	a->len += len;
}

static void arr_add_i64(struct arr *a, int64_t v)
{
	uint64_t be = htobe64((uint64_t)v);

	arr_add(a, &be, 8);
}

#define ARR_HEADER 20

/* --- The session ------------------------------------------------------------------------ */

static PGresult *exec(struct pg_store *s, const char *sql, ExecStatusType want, const char *what,
		      int *ret_err)
{
	PGresult *res = PQexec(s->conn, sql);

	if (PQresultStatus(res) == want)
		return res;
	*ret_err = fail(s, res, what);
	PQclear(res);
	return NULL;
}

/* The schema, made when missing, under a lock that a second instance waits on; then ours
 * (meta's version) or -EPROTO. */
static int schema(struct pg_store *s)
{
	PGresult *res = NULL;
	int r = 0;

	if ((res = exec(s, "BEGIN", PGRES_COMMAND_OK, "begin", &r)) == NULL)
		return r;
	PQclear(res);
	if ((res =
		 exec(s,
		      "SET LOCAL client_min_messages = warning;"
		      "SELECT pg_advisory_xact_lock(" SCHEMA_LOCK ");"
		      "CREATE TABLE IF NOT EXISTS meta (key text PRIMARY KEY, value text NOT NULL);"
		      "SELECT value FROM meta WHERE key = 'version'",
		      PGRES_TUPLES_OK, "schema", &r)) == NULL)
		goto out;
	if (PQntuples(res) == 1) {
		if (strcmp(PQgetvalue(res, 0, 0), SCHEMA_VERSION) != 0) {
			log_warnx("store (postgresql): the database holds schema version %.16s, "
				  "not " SCHEMA_VERSION,
				  PQgetvalue(res, 0, 0));
			r = -EPROTO;
			goto out;
		}
	} else {
		PQclear(res);
		if ((res = exec(s, schema_sql, PGRES_COMMAND_OK, "schema", &r)) == NULL)
			goto out;
	}
	PQclear(res);
	if ((res = exec(s, queue_sql, PGRES_COMMAND_OK, "schema", &r)) == NULL)
		goto out;
	PQclear(res);
	res = exec(s, "COMMIT", PGRES_COMMAND_OK, "commit", &r);
out:
	PQclear(res);
	if (r < 0 && PQstatus(s->conn) == CONNECTION_OK &&
	    PQtransactionStatus(s->conn) != PQTRANS_IDLE)
		PQclear(PQexec(s->conn, "ROLLBACK"));
	return r;
}

/* What a new connection needs: the schema checked, the statements prepared. */
static int session(struct pg_store *s)
{
	PGresult *res;
	int r;

	if (PQserverVersion(s->conn) < 90500) {
		log_warnx("store (postgresql): the server is version %d; 9.5 or later needed",
			  PQserverVersion(s->conn));
		return -EPROTONOSUPPORT;
	}
	if ((r = schema(s)) < 0)
		return r;
	for (int i = 0; i < ST_COUNT; i++) {
		res = PQprepare(s->conn, stmts[i].name, stmts[i].sql, stmts[i].nparams,
				stmts[i].types);
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			r = fail(s, res, stmts[i].name);
			PQclear(res);
			return r;
		}
		PQclear(res);
	}
	return 0;
}

/* A new connection, its session set up. Our defaults go first: the connection string given
 * overrides them. */
static int connect_db(struct pg_store *s)
{
	const char *keys[] = {"connect_timeout", "application_name", "dbname", NULL};
	const char *values[] = {"10", "iotsec-relayd", s->conninfo, NULL};
	int r;

	PQfinish(s->conn);
	if ((s->conn = PQconnectdbParams(keys, values, 1)) == NULL)
		return -ENOMEM;
	PQsetNoticeProcessor(s->conn, quiet, NULL);
	if (PQstatus(s->conn) != CONNECTION_OK) {
		fail(s, NULL, "connect");
		r = -ECONNREFUSED;
	} else if ((r = session(s)) == 0) {
		return 0;
	}
	/* Nothing half set up stays: the next call starts afresh. */
	PQfinish(s->conn);
	s->conn = NULL;
	return r;
}

/* A connection that works: the lost one made again (the server restarted, a network cut). */
static int connected(struct pg_store *s)
{
	if (s->conn != NULL && PQstatus(s->conn) == CONNECTION_OK)
		return 0;
	return connect_db(s);
}

/* The connection is gone: libpq says so, or failed without a SQLSTATE of the server's (it may
 * not have noticed yet: a write to a closed socket), or the server said it is ending the
 * session (57P01-57P03) or the connection (class 08). */
static bool lost(const struct pg_store *s, const char *state)
{
	return PQstatus(s->conn) != CONNECTION_OK || state == NULL ||
	       strncmp(state, "57P", 3) == 0 || strncmp(state, "08", 2) == 0;
}

/* Run a prepared statement. Again when chosen as a deadlock victim: each is a transaction of its
 * own, so nothing of it stayed. Once more on a new connection when the one it went out on was
 * found lost (the server restarted, or failed over, since the last call): the statement most
 * likely never ran, and if it did, the second run is harmless, for every statement here is
 * idempotent or counts only what it changes itself (ON CONFLICT DO NOTHING, the grant's upsert,
 * delivered's NOT delivered, retention's DELETE ... RETURNING); the count it returns is then
 * short by what the lost run did. The result, or NULL and *ret_err. */
static PGresult *run(struct pg_store *s, enum stmt st, const struct params *p, int *ret_err)
{
	PGresult *res = NULL;
	const char *state;
	bool fresh = s->conn == NULL || PQstatus(s->conn) != CONNECTION_OK;

	if ((*ret_err = connected(s)) < 0)
		return NULL;
	for (int i = 0; i < RETRIES; i++) {
		PQclear(res);
		res = PQexecPrepared(s->conn, stmts[st].name, p != NULL ? p->n : 0,
				     p != NULL ? p->v : NULL, p != NULL ? p->len : NULL,
				     p != NULL ? p->fmt : NULL, 1);
		switch (PQresultStatus(res)) {
		case PGRES_COMMAND_OK:
		case PGRES_TUPLES_OK:
			succeeded(s);
			return res;
		default:
			break;
		}
		state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		if (!fresh && lost(s, state)) {
			fresh = true;
			log_info("store (postgresql): the connection was lost; connecting again");
			if ((*ret_err = connect_db(s)) < 0) {
				PQclear(res);
				return NULL;
			}
			continue;
		}
		if (state == NULL || (strcmp(state, "40P01") != 0 && strcmp(state, "40001") != 0))
			break;
	}
	*ret_err = fail(s, res, stmts[st].name);
	PQclear(res);
	return NULL;
}

static size_t affected(const PGresult *res)
{
	return (size_t)strtoull(PQcmdTuples((PGresult *)res), NULL, 10);
}

/* --- Operations ------------------------------------------------------------------------- */

static int by_key(const void *a, const void *b)
{
	const struct store_reading *x = *(const struct store_reading *const *)a;
	const struct store_reading *y = *(const struct store_reading *const *)b;
	int c = memcmp(x->stream, y->stream, STREAM_ID_LEN);

	if (c != 0)
		return c;
	if (x->seq != y->seq)
		return x->seq < y->seq ? -1 : 1;
	/* The same key twice in a batch: the first copy goes first, and is the one kept. */
	return x < y ? -1 : x > y;
}

static int grow(struct pg_store *s, int i, size_t need)
{
	uint8_t *p;

	if (need <= s->arr_cap[i])
		return 0;
	if ((p = realloc(s->arr[i], need)) == NULL)
		return -ENOMEM;
	s->arr[i] = p;
	s->arr_cap[i] = need;
	return 0;
}

/* One statement inside pg_insert()'s transaction: no retry there (a lost connection or a
 * deadlock ends the transaction; the caller's next commit tries the batch again). */
static PGresult *in_tx(struct pg_store *s, enum stmt st, const struct params *p, int *ret_err)
{
	PGresult *res = PQexecPrepared(s->conn, stmts[st].name, p->n, p->v, p->len, p->fmt, 1);

	if (PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK)
		return res;
	*ret_err = fail(s, res, stmts[st].name);
	PQclear(res);
	return NULL;
}

/* The device stream is bound to, in ret; 1, 0 when unbound, or an error. */
static int bound_to(struct pg_store *s, const uint8_t stream[STREAM_ID_LEN],
		    uint8_t ret[STORE_DEVICE_LEN])
{
	struct params p = {.n = 0};
	PGresult *res;
	int r = 0;

	p_bytes(&p, stream, STREAM_ID_LEN);
	if ((res = in_tx(s, ST_BOUND_TO, &p, &r)) == NULL)
		return r;
	if (PQntuples(res) == 1 && PQgetlength(res, 0, 0) == STORE_DEVICE_LEN) {
		memcpy(ret, PQgetvalue(res, 0, 0), STORE_DEVICE_LEN);
		r = 1;
	} else {
		r = PQntuples(res) == 0 ? 0 : -EPROTO;
	}
	PQclear(res);
	return r;
}

/* x's stream's device, binding it to x's when unbound and x's device has room; 1, 0 when it is
 * still unbound (no room), or an error. */
static int bind_stream(struct pg_store *s, const struct store_reading *x,
		       uint8_t ret[STORE_DEVICE_LEN])
{
	struct params p = {.n = 0};
	PGresult *res;
	int64_t key;
	int r;

	if ((r = bound_to(s, x->stream, ret)) != 0)
		return r;
	memcpy(&key, x->device, sizeof(key));
	p_i64(&p, key);
	if ((res = in_tx(s, ST_DEVICE_LOCK, &p, &r)) == NULL)
		return r;
	PQclear(res);
	p.n = 0;
	p_bytes(&p, x->stream, STREAM_ID_LEN);
	p_bytes(&p, x->device, STORE_DEVICE_LEN);
	p_i64(&p, STORE_DEVICE_STREAMS_MAX);
	if ((res = in_tx(s, ST_BIND, &p, &r)) == NULL)
		return r;
	PQclear(res);
	return bound_to(s, x->stream, ret);
}

static int key_cmp(const uint8_t *stream, uint64_t seq, const uint8_t *stream2, uint64_t seq2)
{
	int c = memcmp(stream, stream2, STREAM_ID_LEN);

	return c != 0 ? c : seq < seq2 ? -1 : seq > seq2;
}

static int insert_tx(struct pg_store *s, const struct store_reading *rs, size_t n, size_t *ret_new,
		     enum store_outcome *ret_each)
{
	const struct store_reading **order = NULL;
	struct params p = {.n = 0};
	struct arr a[5];
	size_t data_len = 0, k = 0, fresh = 0;
	uint8_t owner[STORE_DEVICE_LEN];
	PGresult *res = NULL;
	int r = 0, bound = 0;

	if (n > INT32_MAX)
		return -E2BIG;
	for (size_t i = 0; i < n; i++) {
		if (rs[i].len > INT32_MAX - data_len)
			return -E2BIG;
		data_len += rs[i].len;
	}
	if ((order = malloc(n * sizeof(*order))) == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		order[i] = &rs[i];
	qsort(order, n, sizeof(*order), by_key);
	if ((r = grow(s, 0, ARR_HEADER + n * (4 + STREAM_ID_LEN))) < 0 ||
	    (r = grow(s, 1, ARR_HEADER + n * 12)) < 0 || (r = grow(s, 2, ARR_HEADER + n * 5)) < 0 ||
	    (r = grow(s, 3, ARR_HEADER + n * 12)) < 0 ||
	    (r = grow(s, 4, ARR_HEADER + n * 4 + data_len)) < 0)
		goto out;
	if ((r = connected(s)) < 0)
		goto out;
	/* The bindings and the readings in one transaction: a reading is never stored under a
	 * stream whose binding did not commit with it. */
	if ((res = exec(s, "BEGIN", PGRES_COMMAND_OK, "begin", &r)) == NULL)
		goto out;
	PQclear(res), res = NULL;
	/* The refused first, so that the arrays are sized by the accepted. */
	for (size_t i = 0; i < n; i++) {
		const struct store_reading *x = order[i];

		const struct store_reading *first = x;
		bool run_start =
		    i == 0 || memcmp(x->stream, order[i - 1]->stream, STREAM_ID_LEN) != 0;

		/* The streams are bound in stream order (two instances take the locks in one
		 * order), each to the device of its first reading in rs, as SQLite binds. */
		for (size_t j = i + 1;
		     run_start && j < n && memcmp(order[j]->stream, x->stream, STREAM_ID_LEN) == 0;
		     j++)
			if (order[j] < first)
				first = order[j];
		if (run_start || bound == 0)
			if ((bound = bind_stream(s, first, owner)) < 0) {
				r = bound;
				goto out;
			}
		ret_each[x - rs] = bound == 1 && memcmp(owner, x->device, STORE_DEVICE_LEN) == 0
				       ? STORE_DUPLICATE
				       : STORE_REFUSED;
		k += ret_each[x - rs] == STORE_DUPLICATE;
	}
	if (k > 0) {
		for (int i = 0; i < 5; i++)
			a[i].p = s->arr[i];
		arr_start(&a[0], OID_BYTEA, k);
		arr_start(&a[1], OID_INT8, k);
		arr_start(&a[2], OID_BOOL, k);
		arr_start(&a[3], OID_INT8, k);
		arr_start(&a[4], OID_BYTEA, k);
		for (size_t i = 0; i < n; i++) {
			uint8_t e = order[i]->emergency;

			if (ret_each[order[i] - rs] == STORE_REFUSED)
				continue;
			arr_add(&a[0], order[i]->stream, STREAM_ID_LEN);
			arr_add_i64(&a[1], (int64_t)order[i]->seq);
			arr_add(&a[2], &e, 1);
			arr_add_i64(&a[3], order[i]->received_ms);
			arr_add(&a[4], order[i]->data, order[i]->len);
		}
		for (int i = 0; i < 5; i++)
			p_bytes(&p, a[i].p, a[i].len);
		if ((res = in_tx(s, ST_INSERT, &p, &r)) == NULL)
			goto out;
		/* Each key returned is new: its first copy in order (by_key keeps rs's order
		 * among copies) is the one stored. */
		for (int row = 0; row < PQntuples(res); row++) {
			const uint8_t *rstream = (const uint8_t *)PQgetvalue(res, row, 0);
			uint64_t be, rseq;
			size_t lo = 0, hi = n;

			if (PQgetlength(res, row, 0) != STREAM_ID_LEN ||
			    PQgetlength(res, row, 1) != 8)
				continue;
			memcpy(&be, PQgetvalue(res, row, 1), 8);
			rseq = be64toh(be);
			while (lo < hi) { /* the first of order[] with key >= the row's */
				size_t mid = lo + (hi - lo) / 2;

				if (key_cmp(order[mid]->stream, order[mid]->seq, rstream, rseq) < 0)
					lo = mid + 1;
				else
					hi = mid;
			}
			for (; lo < n &&
			       key_cmp(order[lo]->stream, order[lo]->seq, rstream, rseq) == 0;
			     lo++)
				if (ret_each[order[lo] - rs] == STORE_DUPLICATE) {
					ret_each[order[lo] - rs] = STORE_NEW;
					fresh++;
					break;
				}
		}
		PQclear(res);
		res = NULL;
	}
	if ((res = exec(s, "COMMIT", PGRES_COMMAND_OK, "commit", &r)) == NULL)
		goto out;
	if (ret_new != NULL)
		*ret_new = fresh;
out:
	PQclear(res);
	if (r < 0 && s->conn != NULL && PQstatus(s->conn) == CONNECTION_OK &&
	    PQtransactionStatus(s->conn) != PQTRANS_IDLE)
		PQclear(PQexec(s->conn, "ROLLBACK"));
	free(order);
	return r;
}

/* The transaction again, whole, when the connection was found lost (the server rolled it back)
 * or it was chosen as a deadlock victim (two instances binding streams of one device in
 * another order): nothing of a failed one stayed. */
static int pg_insert(struct store *st, const struct store_reading *rs, size_t n, size_t *ret_new,
		     enum store_outcome *ret_each)
{
	struct pg_store *s = (struct pg_store *)st;
	int r = 0;

	for (int i = 0; i < RETRIES; i++) {
		if ((r = insert_tx(s, rs, n, ret_new, ret_each)) != -ECONNRESET && r != -EAGAIN)
			break;
		if (r == -ECONNRESET && (r = connect_db(s)) < 0)
			break;
	}
	return r;
}

static int pg_holds(struct store *st, const struct store_reading *rd)
{
	struct pg_store *s = (struct pg_store *)st;
	struct params p = {.n = 0};
	PGresult *res;
	int r;

	p_bytes(&p, rd->stream, STREAM_ID_LEN);
	p_i64(&p, (int64_t)rd->seq);
	p_bytes(&p, rd->data, rd->len);
	if ((res = run(s, ST_HOLDS, &p, &r)) == NULL)
		return r;
	r = PQntuples(res) == 1 ? 1 : 0;
	PQclear(res);
	return r;
}

static int pg_grant_put(struct store *st, const struct store_grant *g)
{
	struct pg_store *s = (struct pg_store *)st;
	struct params p = {.n = 0};
	PGresult *res;
	int r;

	p_bytes(&p, g->stream, STREAM_ID_LEN);
	p_text(&p, g->doctor);
	p_i64(&p, g->e0);
	p_bytes(&p, g->wrapped, g->wrapped_len);
	p_i64(&p, g->granted_ms);
	if ((res = run(s, ST_GRANT_PUT, &p, &r)) == NULL)
		return r;
	/* No row written: the stream is another doctor's. */
	r = affected(res) == 1 ? 0 : -EEXIST;
	PQclear(res);
	return r;
}

static int pg_grants(struct store *st, const char *doctor,
		     int (*fn)(const struct store_grant *g, void *userdata), void *userdata)
{
	struct pg_store *s = (struct pg_store *)st;
	struct params p = {.n = 0};
	struct store_grant g;
	PGresult *res;
	int r;

	p_text(&p, doctor);
	if ((res = run(s, ST_GRANTS, &p, &r)) == NULL)
		return r;
	for (int i = 0; i < PQntuples(res) && r >= 0; i++) {
		int64_t e0 = get_i64(res, i, 2);
		int dlen = PQgetlength(res, i, 1), wlen = PQgetlength(res, i, 3);

		if (PQgetlength(res, i, 0) != STREAM_ID_LEN || dlen >= CERT_NAME_MAX ||
		    wlen > STORE_WRAPPED_MAX || e0 < 0 || e0 > UINT32_MAX) {
			r = -EPROTO;
			break;
		}
		memset(&g, 0, sizeof(g));
		memcpy(g.stream, PQgetvalue(res, i, 0), STREAM_ID_LEN);
		memcpy(g.doctor, PQgetvalue(res, i, 1), (size_t)dlen);
		g.e0 = (uint32_t)e0;
		memcpy(g.wrapped, PQgetvalue(res, i, 3), (size_t)wlen);
		g.wrapped_len = (size_t)wlen;
		g.granted_ms = get_i64(res, i, 4);
		r = fn(&g, userdata);
	}
	PQclear(res);
	return r < 0 ? r : 0;
}

/* Hand each row of a readings result (READING_COLS) to fn; the result stays as s->rows, where
 * the data pointers point, until the next queue or history. */
static int readings_out(struct pg_store *s, PGresult *res,
			int (*fn)(const struct store_reading *r, void *userdata), void *userdata)
{
	struct store_reading rd;
	int r = 0;

	PQclear(s->rows);
	s->rows = res;
	for (int i = 0; i < PQntuples(res) && r >= 0; i++) {
		if (PQgetlength(res, i, 1) != STREAM_ID_LEN || PQgetlength(res, i, 6) <= 0)
			return -EPROTO;
		memset(&rd, 0, sizeof(rd));
		rd.id = get_i64(res, i, 0);
		memcpy(rd.stream, PQgetvalue(res, i, 1), STREAM_ID_LEN);
		rd.seq = (uint64_t)get_i64(res, i, 2);
		rd.emergency = get_bool(res, i, 3);
		rd.received_ms = get_i64(res, i, 4);
		rd.delivered = get_bool(res, i, 5);
		rd.data = (const uint8_t *)PQgetvalue(res, i, 6);
		rd.len = (size_t)PQgetlength(res, i, 6);
		r = fn(&rd, userdata);
	}
	return r < 0 ? r : 0;
}

static int pg_queue(struct store *st, const char *doctor, size_t max,
		    int (*fn)(const struct store_reading *r, void *userdata), void *userdata)
{
	struct pg_store *s = (struct pg_store *)st;
	struct params p = {.n = 0};
	PGresult *res;
	int r;

	p_text(&p, doctor);
	p_i64(&p, max > INT64_MAX ? INT64_MAX : (int64_t)max);
	if ((res = run(s, ST_QUEUE, &p, &r)) == NULL)
		return r;
	return readings_out(s, res, fn, userdata);
}

static int pg_delivered(struct store *st, const char *doctor, const int64_t *ids, size_t n,
			size_t *ret_marked)
{
	struct pg_store *s = (struct pg_store *)st;
	struct params p = {.n = 0};
	struct arr a;
	PGresult *res;
	int r;

	if (n > (INT32_MAX - ARR_HEADER) / 12)
		return -E2BIG;
	if ((r = grow(s, 1, ARR_HEADER + n * 12)) < 0)
		return r;
	a.p = s->arr[1];
	arr_start(&a, OID_INT8, n);
	for (size_t i = 0; i < n; i++)
		arr_add_i64(&a, ids[i]);
	p_text(&p, doctor);
	p_bytes(&p, a.p, a.len);
	if ((res = run(s, ST_DELIVERED, &p, &r)) == NULL)
		return r;
	if (ret_marked != NULL)
		*ret_marked = affected(res);
	PQclear(res);
	return 0;
}

static int pg_history(struct store *st, const char *doctor, const uint8_t stream[STREAM_ID_LEN],
		      uint64_t after_seq, size_t max,
		      int (*fn)(const struct store_reading *r, void *userdata), void *userdata)
{
	struct pg_store *s = (struct pg_store *)st;
	struct params p = {.n = 0};
	PGresult *res;
	bool granted;
	int r;

	p_bytes(&p, stream, STREAM_ID_LEN);
	p_text(&p, doctor);
	if ((res = run(s, ST_GRANTED, &p, &r)) == NULL)
		return r;
	granted = PQntuples(res) == 1;
	PQclear(res);
	if (!granted)
		return -EACCES;
	if (max == 0)
		return 0;
	p.n = 0;
	p_bytes(&p, stream, STREAM_ID_LEN);
	p_i64(&p, (int64_t)after_seq); /* store.c clamped it to INT64_MAX */
	p_i64(&p, max > INT64_MAX ? INT64_MAX : (int64_t)max);
	if ((res = run(s, ST_HISTORY, &p, &r)) == NULL)
		return r;
	return readings_out(s, res, fn, userdata);
}

static int pg_expire(struct store *st, int64_t now_ms, int64_t cutoff_ms, uint64_t cap, size_t max,
		     size_t *ret_removed)
{
	struct pg_store *s = (struct pg_store *)st;
	struct params p = {.n = 0};
	PGresult *res;
	int r;

	p_i64(&p, cutoff_ms);
	p_i64(&p, (int64_t)cap); /* store.c clamped it to INT64_MAX */
	p_i64(&p, max > INT64_MAX ? INT64_MAX : (int64_t)max);
	p_i64(&p, now_ms);
	if ((res = run(s, ST_EXPIRE, &p, &r)) == NULL)
		return r;
	if (ret_removed != NULL)
		*ret_removed = PQntuples(res) == 1 ? (size_t)get_i64(res, 0, 0) : 0;
	PQclear(res);
	return 0;
}

static int pg_expired_of(struct store *st, const char *doctor,
			 int (*fn)(const struct store_expired *e, void *userdata), void *userdata)
{
	struct pg_store *s = (struct pg_store *)st;
	struct params p = {.n = 0};
	struct store_expired e;
	PGresult *res;
	int r;

	p_text(&p, doctor);
	if ((res = run(s, ST_EXPIRED_OF, &p, &r)) == NULL)
		return r;
	for (int i = 0; i < PQntuples(res) && r >= 0; i++) {
		if (PQgetlength(res, i, 0) != STREAM_ID_LEN) {
			r = -EPROTO;
			break;
		}
		memset(&e, 0, sizeof(e));
		memcpy(e.stream, PQgetvalue(res, i, 0), STREAM_ID_LEN);
		e.count = (uint64_t)get_i64(res, i, 1);
		e.undelivered = (uint64_t)get_i64(res, i, 2);
		e.first_seq = (uint64_t)get_i64(res, i, 3);
		e.last_seq = (uint64_t)get_i64(res, i, 4);
		e.at_ms = get_i64(res, i, 5);
		r = fn(&e, userdata);
	}
	PQclear(res);
	return r < 0 ? r : 0;
}

static int pg_stats(struct store *st, struct store_stats *ret)
{
	struct pg_store *s = (struct pg_store *)st;
	PGresult *res;
	int r;

	if ((res = run(s, ST_STATS, NULL, &r)) == NULL)
		return r;
	if (PQntuples(res) != 1) {
		PQclear(res);
		return -EPROTO;
	}
	ret->readings = (uint64_t)get_i64(res, 0, 0);
	ret->undelivered = (uint64_t)get_i64(res, 0, 1);
	ret->emergencies_undelivered = (uint64_t)get_i64(res, 0, 2);
	ret->oldest_undelivered_ms = get_i64(res, 0, 3);
	ret->expired = (uint64_t)get_i64(res, 0, 4);
	ret->bytes = (uint64_t)get_i64(res, 0, 5);
	PQclear(res);
	return 0;
}

static int pg_queues(struct store *st, int (*fn)(const struct store_queue *q, void *userdata),
		     void *userdata)
{
	struct pg_store *s = (struct pg_store *)st;
	struct store_queue q;
	PGresult *res;
	int r = 0;

	if ((res = run(s, ST_QUEUES, NULL, &r)) == NULL)
		return r;
	for (int i = 0; i < PQntuples(res) && r >= 0; i++) {
		int dlen = PQgetlength(res, i, 0);

		if (dlen >= CERT_NAME_MAX) {
			r = -EPROTO;
			break;
		}
		memset(&q, 0, sizeof(q));
		memcpy(q.doctor, PQgetvalue(res, i, 0), (size_t)dlen);
		q.undelivered = (uint64_t)get_i64(res, i, 1);
		q.oldest_ms = get_i64(res, i, 2);
		r = fn(&q, userdata);
	}
	PQclear(res);
	return r < 0 ? r : 0;
}

static void pg_close(struct store *st)
{
	struct pg_store *s = (struct pg_store *)st;

	PQclear(s->rows);
	PQfinish(s->conn);
	for (int i = 0; i < 5; i++)
		free(s->arr[i]);
	if (s->conninfo != NULL) {
		explicit_bzero(s->conninfo, strlen(s->conninfo));
		free(s->conninfo);
	}
	free(s);
}

static const struct store_ops pg_ops = {
    .insert = pg_insert,
    .holds = pg_holds,
    .grant_put = pg_grant_put,
    .grants = pg_grants,
    .queue = pg_queue,
    .delivered = pg_delivered,
    .history = pg_history,
    .expire = pg_expire,
    .expired_of = pg_expired_of,
    .stats = pg_stats,
    .queues = pg_queues,
    .close = pg_close,
};

int store_pg_open(const struct store_opts *o, struct store **ret)
{
	struct pg_store *s;
	int r;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return -ENOMEM;
	s->base.ops = &pg_ops;
	if ((s->conninfo = strdup(o->conninfo)) == NULL) {
		r = -ENOMEM;
		goto fail;
	}
	if ((r = connect_db(s)) < 0)
		goto fail;
	*ret = &s->base;
	return 0;
fail:
	pg_close(&s->base);
	return r;
}
