/* Inside the store (store.h): what a back end provides. store.c checks the arguments every back
 * end would check alike (NULL pointers, names, sizes, a seq past INT64_MAX that neither SQLite's
 * INTEGER nor PostgreSQL's bigint holds) and leaves ret_* untouched on failure; a back end's
 * function is called only with arguments that passed, with n > 0 and max > 0 (but history's
 * max may be 0: the grant is checked all the same). */
#ifndef IOTSEC_RELAYD_STORE_IMPL_H
#define IOTSEC_RELAYD_STORE_IMPL_H

#include "store.h"

struct store_ops {
	/* ret_each: n entries, never NULL. */
	int (*insert)(struct store *s, const struct store_reading *rs, size_t n, size_t *ret_new,
		      enum store_outcome *ret_each);
	int (*holds)(struct store *s, const struct store_reading *r);
	int (*grant_put)(struct store *s, const struct store_grant *g);
	int (*grants)(struct store *s, const char *doctor,
		      int (*fn)(const struct store_grant *g, void *userdata), void *userdata);
	int (*queue)(struct store *s, const char *doctor, size_t max,
		     int (*fn)(const struct store_reading *r, void *userdata), void *userdata);
	int (*delivered)(struct store *s, const char *doctor, const int64_t *ids, size_t n,
			 size_t *ret_marked);
	int (*history)(struct store *s, const char *doctor, const uint8_t stream[STREAM_ID_LEN],
		       uint64_t after_seq, size_t max,
		       int (*fn)(const struct store_reading *r, void *userdata), void *userdata);
	/* cutoff_ms: readings received before it go; cap: INT64_MAX or less (store.c clamps). */
	int (*expire)(struct store *s, int64_t now_ms, int64_t cutoff_ms, uint64_t cap, size_t max,
		      size_t *ret_removed);
	int (*expired_of)(struct store *s, const char *doctor,
			  int (*fn)(const struct store_expired *e, void *userdata), void *userdata);
	int (*stats)(struct store *s, struct store_stats *ret);
	int (*queues)(struct store *s, int (*fn)(const struct store_queue *q, void *userdata),
		      void *userdata);
	void (*close)(struct store *s);
};

/* Each back end's handle starts with this (its first member), and its open fills ops. */
struct store {
	const struct store_ops *ops;
};

/* 0 and *ret set, or a negative errno (logged once by the back end). */
int store_sqlite_open(const struct store_opts *o, struct store **ret); /* store_sqlite.c */
int store_pg_open(const struct store_opts *o, struct store **ret);     /* store_pg.c */

#endif
