/* Reaching keys through iotsec-dictd (SPEC 5.4), asynchronously: keys live only in dictd, and a
 * daemon asks for them without ever waiting inside its loop. Each call's callback runs exactly
 * once, from the loop; -ECANCELED when the call was cancelled (ctl_call_cancel() on the handle
 * returned) or the client freed first: then it may only release what the call held. Keys are
 * wiped from every buffer this module uses once the callback has returned. */
#ifndef IOTSEC_DICTD_CLIENT_H
#define IOTSEC_DICTD_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "crypto.h"
#include "ctl.h"

#define DICTD_CLIENT_RETRY_MS	1000
#define DICTD_CLIENT_TIMEOUT_MS 10000 /* a store of a whole ring is one save with its fsyncs */

struct dictd_record {
	const char *name;
	uint32_t index, epoch;
	const uint8_t *key; /* CRYPTO_KEY_LEN bytes */
	int64_t expires;    /* 0: never */
};

/* r: 0, -EACCES (dictd refused: locked, or the request was not allowed), -ENOKEY (lookup: a key
 * asked for is not there or not usable), -ETIMEDOUT, -ECONNRESET, -EBADMSG (an answer that does
 * not fit the question), -ECANCELED. A call made while dictd is away fails at once with
 * -ENOTCONN, and its callback never runs. */
typedef void (*dictd_done_fn)(int r, void *userdata);
/* keys: the n keys asked for, in order (valid during the call only), when r is 0. */
typedef void (*dictd_keys_fn)(int r, const uint8_t (*keys)[CRYPTO_KEY_LEN], void *userdata);
/* present: how many of the keys asked for exist and are usable. */
typedef void (*dictd_count_fn)(int r, size_t present, void *userdata);

struct dictd_client;
int dictd_client_new(sd_event *e, const char *run_dir, struct dictd_client **ret);
void dictd_client_free(struct dictd_client *dc);

/* Store n (1..PROTO_DICT_BATCH_MAX) records with one save: all or none. With cancel_others, the
 * records are of one epoch (-EINVAL otherwise) and every record of another epoch is cancelled in
 * the same save: how a new pool's ring goes in. */
int dictd_client_store(struct dictd_client *dc, const struct dictd_record *rec, size_t n,
		       bool cancel_others, dictd_done_fn fn, void *userdata,
		       struct ctl_call **ret_call);
/* All n (1..PROTO_DICT_INDEX_MAX) keys of name at these indices, or -ENOKEY. */
int dictd_client_lookup(struct dictd_client *dc, const char *name, const uint32_t *index, size_t n,
			dictd_keys_fn fn, void *userdata, struct ctl_call **ret_call);
/* How many of the n keys of name at these indices exist, without reading them. */
int dictd_client_has(struct dictd_client *dc, const char *name, const uint32_t *index, size_t n,
		     dictd_count_fn fn, void *userdata, struct ctl_call **ret_call);

#endif
