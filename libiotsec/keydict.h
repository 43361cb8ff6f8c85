/* The key dictionary file (SPEC 5.4): the only place keys rest on disk.
 *
 * A record holds a name (the peer of a path key, or keyd's name for ring keys) and its times in the
 * clear; the key index only as HMAC-SHA256(index key, per-record salt || index), since a plain hash
 * of a small index is brute-forced in seconds; and the key sealed with AES-256-GCM (random nonce,
 * the record's clear fields as associated data). The whole file ends with an HMAC line, so one
 * flipped byte anywhere makes it refused. The three keys (index, record, file) are derived with
 * HKDF from the dictionary key, which never enters the file.
 *
 * In memory the dictionary holds indices and keys in the clear (wiped when freed): lookups cost
 * nothing but a scan, and the file is rewritten atomically on every change. */
#ifndef IOTSEC_KEYDICT_H
#define IOTSEC_KEYDICT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cert.h"
#include "crypto.h"

#define KEYDICT_RECORDS_MAX 8192
#define KEYDICT_FILE_MAX    (4 * 1024 * 1024)

struct keydict;

struct keydict_record {
	char name[CERT_NAME_MAX];
	uint32_t index;
	uint32_t epoch;
	int64_t changed, expires; /* expires 0: never */
	bool cancelled;
	uint8_t key[CRYPTO_KEY_LEN];
};

int keydict_new(const uint8_t dict_key[CRYPTO_KEY_LEN], struct keydict **ret);
/* Wipes every key. */
void keydict_free(struct keydict *d);

/* Read path: refused with -IOTSEC_ESECRET when its mode is looser than 0600 (or it is not ours),
 * with -EBADMSG when it is malformed or its MAC or any record fails (a tampered file or the wrong
 * dictionary key). A missing file is -ENOENT. */
int keydict_load(const uint8_t dict_key[CRYPTO_KEY_LEN], const char *path, struct keydict **ret);
/* The same from bytes in memory (for the fuzzer); no permission check. */
int keydict_parse(const uint8_t dict_key[CRYPTO_KEY_LEN], const void *buf, size_t len,
		  struct keydict **ret);
/* Write atomically with mode 0600: a crash leaves the old or the new file. */
int keydict_save(struct keydict *d, const char *path);

/* Insert or replace the record (name, index). -ENOSPC past KEYDICT_RECORDS_MAX. */
int keydict_put(struct keydict *d, const char *name, uint32_t index, uint32_t epoch,
		const uint8_t key[CRYPTO_KEY_LEN], int64_t expires, int64_t now);
/* The key of (name, index) into out; -ENOKEY when absent, expired at now or cancelled. */
int keydict_get(const struct keydict *d, const char *name, uint32_t index, int64_t now,
		uint8_t out[CRYPTO_KEY_LEN]);
/* Cancel every record of an epoch other than keep_epoch (a new pool cancels every other one,
 * older or, after a restart that lost count, newer). Returns how many were cancelled. */
int keydict_cancel_others(struct keydict *d, uint32_t keep_epoch, int64_t now);
/* Cancel every record of name. Returns how many. */
int keydict_cancel_name(struct keydict *d, const char *name, int64_t now);
/* Drop cancelled and expired records for good (their keys wiped). Returns how many. */
int keydict_purge(struct keydict *d, int64_t now);

/* The records as they are now, to put back if a change cannot be saved: a store of many records
 * is all or none, on disk and in memory alike. Holds keys; freed (wiped) or consumed. */
struct keydict_snapshot;
int keydict_snapshot(const struct keydict *d, struct keydict_snapshot **ret);
void keydict_snapshot_free(struct keydict_snapshot *s);
/* Put the records back as they were, consuming the snapshot. */
void keydict_restore(struct keydict *d, struct keydict_snapshot *s);

size_t keydict_count(const struct keydict *d);
/* The i-th record, i < keydict_count(); NULL past the end. */
const struct keydict_record *keydict_at(const struct keydict *d, size_t i);

#endif
