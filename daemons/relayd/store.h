/* The relay's store (SPEC 9): sealed doctor readings it cannot open, filed under their stream id
 * (the pseudonym only the kit and its doctor can compute), the doctors' grants, and what
 * retention removed. Two back ends behind one interface: SQLite (store_sqlite.c; WAL,
 * synchronous=NORMAL, one transaction per batch) for one machine, PostgreSQL (store_pg.c) for
 * several relay instances sharing one database. Every call is synchronous and short: the daemon
 * calls it from its event loop, a batch at a time.
 *
 * Tables (the same columns in both):
 *   readings (id       arrival order, the database's own (INTEGER PRIMARY KEY / bigserial),
 *             stream   16 bytes, seq, emergency 0/1, received_ms, delivered 0/1,
 *             data     the sealed reading as it came, header included;
 *             UNIQUE (stream, seq): a duplicate is stored once, the first copy kept)
 *   grants   (stream PRIMARY KEY, doctor (its certificate's name), e0, wrapped (the stream root
 *             and the kit's name wrapped to the doctor's own key: only the doctor's page opens
 *             it), granted_ms)
 *   streams  (stream PRIMARY KEY, device 16 bytes): who publishes the stream, bound by the
 *             first reading stored under it and never removed (retention leaves it), so another
 *             device of the home cannot store readings under a kit's stream id, which every
 *             reading shows in its header. device is a keyed hash of "<home>/<device>"
 *             (store_device_id()): a dump of the store does not show a patient's name, but
 *             whoever guesses a name can compute its hash and find its streams.
 *   expired  (stream PRIMARY KEY, count, undelivered (of count), first_seq, last_seq, at_ms)
 *   meta     (key PRIMARY KEY, value): the schema version.
 * Nothing in them is a key or a plaintext value, and neither the patient's nor the home's name.
 *
 * The doctor's queue: the readings of the streams granted to that doctor with delivered = 0,
 * emergencies first, then by (stream, seq). A reading whose stream has no grant yet is kept and
 * joins the queue of whoever is granted it. */
#ifndef IOTSEC_RELAYD_STORE_H
#define IOTSEC_RELAYD_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cert.h"
#include "reading.h"
#include "stream.h"

#define STORE_WRAPPED_MAX 1024 /* bytes of a grant's wrapped root (RSA-OAEP of a 4096-bit key) */
#define STORE_DEVICE_LEN  16   /* a device's id in the streams table */
/* Streams one device may own: a kit has one doctor stream per grant (a new grant, a new stream),
 * so this is far above use, and it bounds what junk under random stream ids can fill. */
#define STORE_DEVICE_STREAMS_MAX 64

enum store_kind {
	STORE_SQLITE,
	STORE_POSTGRESQL,
};

struct store_opts {
	enum store_kind kind;
	const char *path;     /* SQLite: the file (created 0600 with its directory 0700) */
	const char *conninfo; /* PostgreSQL: libpq's connection string */
};

/* One reading to store, or one read back. */
struct store_reading {
	int64_t id; /* filled by reads; ignored by store_insert() */
	uint8_t stream[STREAM_ID_LEN];
	uint64_t seq;
	/* store_insert(): who published it (store_device_id() of the topic's device, whom the
	 * broker's ACL makes the publisher); reads leave it zero. */
	uint8_t device[STORE_DEVICE_LEN];
	bool emergency;
	int64_t received_ms;
	bool delivered;
	const uint8_t *data; /* reads: valid until the next call on the store */
	size_t len;
};

struct store_grant {
	uint8_t stream[STREAM_ID_LEN];
	char doctor[CERT_NAME_MAX];
	uint32_t e0;
	uint8_t wrapped[STORE_WRAPPED_MAX];
	size_t wrapped_len;
	int64_t granted_ms;
};

struct store_expired {
	uint8_t stream[STREAM_ID_LEN];
	uint64_t count, undelivered, first_seq, last_seq;
	int64_t at_ms;
};

struct store_stats {
	uint64_t readings, undelivered, emergencies_undelivered, expired;
	int64_t oldest_undelivered_ms; /* received_ms of the oldest undelivered; 0: none */
	uint64_t bytes;		       /* the store's size on disk */
};

/* Per doctor: what waits. */
struct store_queue {
	char doctor[CERT_NAME_MAX];
	uint64_t undelivered;
	int64_t oldest_ms; /* 0: none */
};

struct store;
/* Open (creating the schema when new; -EPROTO for a schema of another version). */
int store_open(const struct store_opts *o, struct store **ret);
void store_close(struct store *s);

/* What store_insert_each() did with one reading. */
enum store_outcome {
	STORE_NEW,	 /* stored */
	STORE_DUPLICATE, /* its (stream, seq) was already stored (store_holds() says by whom) */
	/* Not stored: its stream is bound to another device, or binding it would give the device
	 * more than STORE_DEVICE_STREAMS_MAX streams. */
	STORE_REFUSED,
};

/* One transaction: every reading is stored (a duplicate of (stream, seq) already stored, or
 * twice in rs, is skipped; so is a reading refused, see enum store_outcome) and the commit has
 * reached the disk (SQLite: the WAL, under synchronous=NORMAL; PostgreSQL: the server's commit)
 * before it returns 0. A stream not yet bound is bound in the same transaction to the device of
 * its first reading stored (with several instances on one database, one of two binding the
 * same stream at once wins). *ret_new: how many were new; ret_each, when not NULL, has n
 * entries and gets each reading's outcome. On failure nothing of the batch is stored. */
int store_insert_each(struct store *s, const struct store_reading *rs, size_t n, size_t *ret_new,
		      enum store_outcome *ret_each);
/* store_insert_each() without the outcomes. */
int store_insert(struct store *s, const struct store_reading *rs, size_t n, size_t *ret_new);

/* The streams table's id of device name of home: HMAC-SHA256 keyed with a fixed label of
 * "<home>/<name>", its first STORE_DEVICE_LEN bytes. 0, or -EINVAL. */
int store_device_id(const char *home, const char *name, uint8_t ret[STORE_DEVICE_LEN]);

/* Does the store hold r's (stream, seq) with exactly r's bytes? 1 yes; 0 no (not stored, or
 * another reading holds it: the stream's own device sealed that seq twice, e.g. a kit whose
 * state was restored from an old copy; only the bytes tell its spool's resend from it). */
int store_holds(struct store *s, const struct store_reading *r);

/* A grant: replaces the stream's row when the same doctor grants it again; -EEXIST when the
 * stream is another doctor's (the first to register a stream keeps it). */
int store_grant_put(struct store *s, const struct store_grant *g);
/* The doctor's grants, newest first; fn returns < 0 to stop (returned as is). */
int store_grants(struct store *s, const char *doctor,
		 int (*fn)(const struct store_grant *g, void *userdata), void *userdata);

/* The doctor's queue in delivery order, at most max readings. */
int store_queue(struct store *s, const char *doctor, size_t max,
		int (*fn)(const struct store_reading *r, void *userdata), void *userdata);
/* Mark ids delivered; ids not in the doctor's streams are ignored. *ret_marked may be NULL. */
int store_delivered(struct store *s, const char *doctor, const int64_t *ids, size_t n,
		    size_t *ret_marked);
/* Every kept reading of the doctor's stream (delivered or not) with seq > after_seq, by seq,
 * at most max: the page's charts. -EACCES when the stream is not the doctor's. */
int store_history(struct store *s, const char *doctor, const uint8_t stream[STREAM_ID_LEN],
		  uint64_t after_seq, size_t max,
		  int (*fn)(const struct store_reading *r, void *userdata), void *userdata);

/* Retention: remove readings received before now_ms - retention_ms, and the oldest (by seq)
 * beyond cap per stream, adding each stream's removals to its expired row (count, undelivered,
 * the seq range grown to cover them). *ret_removed may be NULL. At most max rows per call, so
 * the loop is never held long; call again while it returns max. */
int store_expire(struct store *s, int64_t now_ms, int64_t retention_ms, uint64_t cap, size_t max,
		 size_t *ret_removed);
/* The expired rows of the doctor's streams. */
int store_expired_of(struct store *s, const char *doctor,
		     int (*fn)(const struct store_expired *e, void *userdata), void *userdata);

int store_stats(struct store *s, struct store_stats *ret);
/* Every doctor with a grant, and what waits for each. */
int store_queues(struct store *s, int (*fn)(const struct store_queue *q, void *userdata),
		 void *userdata);

#endif
