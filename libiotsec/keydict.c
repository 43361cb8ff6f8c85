#include "keydict.h"

#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "encoding.h"
#include "file.h"

#define KEYDICT_VERSION 1
#define SALT_LEN	16
#define SEALED_LEN	(CRYPTO_NONCE_LEN + 4 + CRYPTO_KEY_LEN + CRYPTO_TAG_LEN)
#define MAC_LINE_LEN	(5 + 2 * CRYPTO_SHA256_LEN + 1) /* "hmac " hex "\n" */

struct rec {
	struct keydict_record r;
	uint8_t salt[SALT_LEN];
};

struct keydict {
	uint8_t index_key[CRYPTO_KEY_LEN], file_key[CRYPTO_KEY_LEN];
	struct crypto_aead *aead;
	struct rec *recs;
	size_t n, cap;
};

static int derive(const uint8_t dict_key[CRYPTO_KEY_LEN], const char *label, uint8_t *out)
{
	return crypto_hkdf_sha256(NULL, 0, dict_key, CRYPTO_KEY_LEN, label, strlen(label), out,
				  CRYPTO_KEY_LEN);
}

int keydict_new(const uint8_t dict_key[CRYPTO_KEY_LEN], struct keydict **ret)
{
	struct keydict *d = calloc(1, sizeof(*d));
	uint8_t record_key[CRYPTO_KEY_LEN];
	int r = -ENOMEM;

	if (d == NULL)
		goto out;
	if ((r = derive(dict_key, "iotsec dict index", d->index_key)) < 0 ||
	    (r = derive(dict_key, "iotsec dict file", d->file_key)) < 0 ||
	    (r = derive(dict_key, "iotsec dict record", record_key)) < 0 ||
	    (r = crypto_aead_new(record_key, &d->aead)) < 0)
		goto out;
	*ret = d;
	d = NULL;
out:
	crypto_wipe(record_key, sizeof(record_key));
	keydict_free(d);
	return r;
}

void keydict_free(struct keydict *d)
{
	if (d == NULL)
		return;
	if (d->recs)
		crypto_wipe(d->recs, d->cap * sizeof(*d->recs));
	free(d->recs);
	crypto_aead_free(d->aead);
	crypto_wipe(d, sizeof(*d));
	free(d);
}

struct keydict_snapshot {
	struct rec *recs;
	size_t n, cap;
};

int keydict_snapshot(const struct keydict *d, struct keydict_snapshot **ret)
{
	struct keydict_snapshot *s = calloc(1, sizeof(*s));

	if (s == NULL || (d->cap && (s->recs = calloc(d->cap, sizeof(*s->recs))) == NULL)) {
		free(s);
		return -ENOMEM;
	}
	if (d->n)
		memcpy(s->recs, d->recs, d->n * sizeof(*s->recs));
	s->n = d->n, s->cap = d->cap;
	*ret = s;
	return 0;
}

void keydict_snapshot_free(struct keydict_snapshot *s)
{
	if (s == NULL)
		return;
	if (s->recs)
		crypto_wipe(s->recs, s->cap * sizeof(*s->recs));
	free(s->recs);
	free(s);
}

void keydict_restore(struct keydict *d, struct keydict_snapshot *s)
{
	if (d->recs)
		crypto_wipe(d->recs, d->cap * sizeof(*d->recs));
	free(d->recs);
	d->recs = s->recs, d->n = s->n, d->cap = s->cap;
	free(s);
}

static int index_mac(const struct keydict *d, const uint8_t salt[SALT_LEN], uint32_t index,
		     uint8_t out[CRYPTO_SHA256_LEN])
{
	uint8_t buf[SALT_LEN + 4];
	uint32_t be = htobe32(index);

	memcpy(buf, salt, SALT_LEN);
	memcpy(buf + SALT_LEN, &be, 4);
	return crypto_hmac_sha256(d->index_key, CRYPTO_KEY_LEN, buf, sizeof(buf), out);
}

/* The clear fields of a record, bound to its sealed key as associated data so that no field can
 * be moved between records. */
static size_t record_aad(const struct rec *x, const uint8_t mac[CRYPTO_SHA256_LEN], uint8_t *out)
{
	size_t namelen = strlen(x->r.name) + 1, off = 0;
	uint32_t epoch = htobe32(x->r.epoch);
	uint64_t changed = htobe64((uint64_t)x->r.changed),
		 expires = htobe64((uint64_t)x->r.expires);

	memcpy(out + off, x->r.name, namelen), off += namelen;
	memcpy(out + off, &epoch, 4), off += 4;
	memcpy(out + off, &changed, 8), off += 8;
	memcpy(out + off, &expires, 8), off += 8;
	out[off++] = x->r.cancelled;
	memcpy(out + off, x->salt, SALT_LEN), off += SALT_LEN;
	memcpy(out + off, mac, CRYPTO_SHA256_LEN), off += CRYPTO_SHA256_LEN;
	return off;
}

#define AAD_MAX (CERT_NAME_MAX + 4 + 8 + 8 + 1 + SALT_LEN + CRYPTO_SHA256_LEN)

static json_t *record_to_json(struct keydict *d, const struct rec *x)
{
	uint8_t mac[CRYPTO_SHA256_LEN], aad[AAD_MAX], plain[4 + CRYPTO_KEY_LEN], sealed[SEALED_LEN];
	uint32_t be = htobe32(x->r.index);
	char *salt64 = NULL, *mac64 = NULL, *sealed64 = NULL;
	json_t *o = NULL;

	memcpy(plain, &be, 4);
	memcpy(plain + 4, x->r.key, CRYPTO_KEY_LEN);
	if (index_mac(d, x->salt, x->r.index, mac) < 0 ||
	    crypto_random(sealed, CRYPTO_NONCE_LEN) < 0 ||
	    crypto_aead_seal(d->aead, sealed, aad, record_aad(x, mac, aad), plain, sizeof(plain),
			     sealed + CRYPTO_NONCE_LEN) < 0)
		goto out;
	salt64 = b64_encode(x->salt, SALT_LEN);
	mac64 = b64_encode(mac, sizeof(mac));
	sealed64 = b64_encode(sealed, sizeof(sealed));
	if (salt64 && mac64 && sealed64)
		o = json_pack("{s:s, s:I, s:I, s:I, s:b, s:s, s:s, s:s}", "name", x->r.name,
			      "epoch", (json_int_t)x->r.epoch, "changed", (json_int_t)x->r.changed,
			      "expires", (json_int_t)x->r.expires, "cancelled", x->r.cancelled,
			      "salt", salt64, "index", mac64, "key", sealed64);
out:
	crypto_wipe(plain, sizeof(plain));
	free(salt64), free(mac64), free(sealed64);
	return o;
}

int keydict_save(struct keydict *d, const char *path)
{
	json_t *root = json_object(), *arr = json_array();
	uint8_t mac[CRYPTO_SHA256_LEN];
	char *body = NULL, *file = NULL, hex[2 * CRYPTO_SHA256_LEN + 1];
	size_t len;
	int r = -ENOMEM;

	if (root == NULL || arr == NULL)
		goto out;
	json_object_set_new(root, "v", json_integer(KEYDICT_VERSION));
	json_object_set(root, "records", arr);
	for (size_t i = 0; i < d->n; i++) {
		json_t *o = record_to_json(d, &d->recs[i]);

		if (o == NULL || json_array_append_new(arr, o) < 0)
			goto out;
	}
	if ((body = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER)) == NULL)
		goto out;
	len = strlen(body);
	if ((r = crypto_hmac_sha256(d->file_key, CRYPTO_KEY_LEN, body, len, mac)) < 0)
		goto out;
	r = -ENOMEM;
	hex_encode(mac, sizeof(mac), hex);
	if ((file = malloc(len + 1 + MAC_LINE_LEN + 1)) == NULL)
		goto out;
	/* The MAC covers the JSON text; the newline after it belongs to neither. */
	memcpy(file, body, len);
	snprintf(file + len, 1 + MAC_LINE_LEN + 1, "\nhmac %s\n", hex);
	r = file_write_atomic(path, file, len + 1 + MAC_LINE_LEN, 0600);
out:
	free(file);
	free(body);
	json_decref(arr);
	json_decref(root);
	return r;
}

static int record_from_json(struct keydict *d, json_t *o, struct rec *x)
{
	uint8_t mac[CRYPTO_SHA256_LEN], want[CRYPTO_SHA256_LEN], sealed[SEALED_LEN], aad[AAD_MAX];
	uint8_t plain[4 + CRYPTO_KEY_LEN];
	const char *name = json_string_value(json_object_get(o, "name"));
	json_t *epoch = json_object_get(o, "epoch"), *changed = json_object_get(o, "changed"),
	       *expires = json_object_get(o, "expires"),
	       *cancelled = json_object_get(o, "cancelled");
	uint32_t be;
	int r = -EBADMSG;

	if (!json_is_object(o) || json_object_size(o) != 8 || name == NULL || strlen(name) == 0 ||
	    strlen(name) >= CERT_NAME_MAX || !json_is_integer(epoch) || !json_is_integer(changed) ||
	    !json_is_integer(expires) || !json_is_boolean(cancelled) ||
	    json_integer_value(epoch) < 0 || json_integer_value(epoch) > UINT32_MAX ||
	    b64_decode_exact(json_string_value(json_object_get(o, "salt")) ?: "", x->salt,
			     SALT_LEN) < 0 ||
	    b64_decode_exact(json_string_value(json_object_get(o, "index")) ?: "", mac,
			     sizeof(mac)) < 0 ||
	    b64_decode_exact(json_string_value(json_object_get(o, "key")) ?: "", sealed,
			     sizeof(sealed)) < 0)
		goto out;
	memset(&x->r, 0, sizeof(x->r));
	memcpy(x->r.name, name, strlen(name) + 1);
	x->r.epoch = (uint32_t)json_integer_value(epoch);
	x->r.changed = json_integer_value(changed);
	x->r.expires = json_integer_value(expires);
	x->r.cancelled = json_is_true(cancelled);
	if (crypto_aead_open(d->aead, sealed, aad, record_aad(x, mac, aad),
			     sealed + CRYPTO_NONCE_LEN, sizeof(sealed) - CRYPTO_NONCE_LEN,
			     plain) < 0)
		goto out;
	memcpy(&be, plain, 4);
	x->r.index = be32toh(be);
	memcpy(x->r.key, plain + 4, CRYPTO_KEY_LEN);
	/* The keyed index must be the one of the index sealed with the key. */
	if (index_mac(d, x->salt, x->r.index, want) < 0 || crypto_memcmp(want, mac, sizeof(mac)))
		goto out;
	r = 0;
out:
	crypto_wipe(plain, sizeof(plain));
	if (r < 0)
		crypto_wipe(x, sizeof(*x));
	return r;
}

int keydict_parse(const uint8_t dict_key[CRYPTO_KEY_LEN], const void *buf, size_t len,
		  struct keydict **ret)
{
	const char *text = buf;
	uint8_t want[CRYPTO_SHA256_LEN];
	char hex[2 * CRYPTO_SHA256_LEN + 1];
	struct keydict *d = NULL;
	json_t *root = NULL, *arr;
	size_t body_len, n;
	int r;

	if (len > KEYDICT_FILE_MAX)
		return -EFBIG;
	if (len < 1 + MAC_LINE_LEN)
		return -EBADMSG;
	body_len = len - 1 - MAC_LINE_LEN;
	if ((r = keydict_new(dict_key, &d)) < 0)
		return r;
	r = -EBADMSG;
	/* Authenticate before parsing: nothing unauthenticated reaches the JSON parser. The MAC
	 * line is compared as the exact text we write, so no byte of the file is free to change. */
	if (crypto_hmac_sha256(d->file_key, CRYPTO_KEY_LEN, text, body_len, want) < 0)
		goto out;
	hex_encode(want, sizeof(want), hex);
	if (memcmp(text + body_len, "\nhmac ", 6) != 0 || text[len - 1] != '\n' ||
	    crypto_memcmp(text + body_len + 6, hex, 2 * CRYPTO_SHA256_LEN) != 0)
		goto out;
	if ((root = json_loadb(text, body_len, JSON_REJECT_DUPLICATES, NULL)) == NULL ||
	    !json_is_object(root) || json_object_size(root) != 2 ||
	    json_integer_value(json_object_get(root, "v")) != KEYDICT_VERSION ||
	    !json_is_array(arr = json_object_get(root, "records")) ||
	    (n = json_array_size(arr)) > KEYDICT_RECORDS_MAX)
		goto out;
	if (n > 0 && (d->recs = calloc(n, sizeof(*d->recs))) == NULL) {
		r = -ENOMEM;
		goto out;
	}
	d->cap = n;
	for (size_t i = 0; i < n; i++) {
		if ((r = record_from_json(d, json_array_get(arr, i), &d->recs[i])) < 0)
			goto out;
		d->n++;
	}
	*ret = d;
	d = NULL;
	r = 0;
out:
	json_decref(root);
	keydict_free(d);
	return r;
}

int keydict_load(const uint8_t dict_key[CRYPTO_KEY_LEN], const char *path, struct keydict **ret)
{
	char *buf = NULL;
	size_t len = 0;
	int r;

	if ((r = file_check_secret(path)) < 0 ||
	    (r = file_read(path, KEYDICT_FILE_MAX, &buf, &len)) < 0)
		return r;
	r = keydict_parse(dict_key, buf, len, ret);
	crypto_wipe(buf, len);
	free(buf);
	return r;
}

static struct rec *find(const struct keydict *d, const char *name, uint32_t index)
{
	for (size_t i = 0; i < d->n; i++)
		if (d->recs[i].r.index == index && strcmp(d->recs[i].r.name, name) == 0)
			return &d->recs[i];
	return NULL;
}

/* Room for n more records: -ENOSPC when they would pass KEYDICT_RECORDS_MAX. */
static int reserve(struct keydict *d, size_t n)
{
	size_t cap = d->cap ? d->cap : 64;
	struct rec *grown;

	if (n > KEYDICT_RECORDS_MAX - d->n)
		return -ENOSPC;
	while (cap < d->n + n)
		cap *= 2;
	if (cap == d->cap)
		return 0;
	/* Not realloc(): the old block holds keys, and must be wiped before it goes. */
	if ((grown = calloc(cap, sizeof(*grown))) == NULL)
		return -ENOMEM;
	if (d->n)
		memcpy(grown, d->recs, d->n * sizeof(*grown));
	if (d->recs)
		crypto_wipe(d->recs, d->cap * sizeof(*d->recs));
	free(d->recs);
	d->recs = grown, d->cap = cap;
	return 0;
}

int keydict_put(struct keydict *d, const char *name, uint32_t index, uint32_t epoch,
		const uint8_t key[CRYPTO_KEY_LEN], int64_t expires, int64_t now)
{
	struct rec *x;
	int r;

	if (strlen(name) == 0 || strlen(name) >= CERT_NAME_MAX)
		return -EINVAL;
	if ((x = find(d, name, index)) == NULL) {
		if ((r = reserve(d, 1)) < 0)
			return r;
		x = &d->recs[d->n++];
		memset(x, 0, sizeof(*x));
	}
	if ((r = crypto_random(x->salt, SALT_LEN)) < 0)
		return r;
	memcpy(x->r.name, name, strlen(name) + 1);
	x->r.index = index, x->r.epoch = epoch, x->r.expires = expires, x->r.changed = now;
	x->r.cancelled = false;
	memcpy(x->r.key, key, CRYPTO_KEY_LEN);
	return 0;
}

static bool usable(const struct keydict_record *r, int64_t now)
{
	return !r->cancelled && (r->expires == 0 || now < r->expires);
}

int keydict_get(const struct keydict *d, const char *name, uint32_t index, int64_t now,
		uint8_t out[CRYPTO_KEY_LEN])
{
	const struct rec *x = find(d, name, index);

	if (x == NULL || !usable(&x->r, now))
		return -ENOKEY;
	memcpy(out, x->r.key, CRYPTO_KEY_LEN);
	return 0;
}

int keydict_cancel_others(struct keydict *d, uint32_t keep_epoch, int64_t now)
{
	int n = 0;

	for (size_t i = 0; i < d->n; i++)
		if (d->recs[i].r.epoch != keep_epoch && !d->recs[i].r.cancelled) {
			d->recs[i].r.cancelled = true, d->recs[i].r.changed = now;
			n++;
		}
	return n;
}

int keydict_cancel_name(struct keydict *d, const char *name, int64_t now)
{
	int n = 0;

	for (size_t i = 0; i < d->n; i++)
		if (strcmp(d->recs[i].r.name, name) == 0 && !d->recs[i].r.cancelled) {
			d->recs[i].r.cancelled = true, d->recs[i].r.changed = now;
			n++;
		}
	return n;
}

int keydict_purge(struct keydict *d, int64_t now)
{
	size_t kept = 0;
	int dropped = 0;

	if (d->n == 0)
		return 0;
	for (size_t i = 0; i < d->n; i++) {
		if (usable(&d->recs[i].r, now)) {
			if (kept != i)
				d->recs[kept] = d->recs[i];
			kept++;
		} else {
			dropped++;
		}
	}
	crypto_wipe(d->recs + kept, (d->n - kept) * sizeof(*d->recs));
	d->n = kept;
	return dropped;
}

size_t keydict_count(const struct keydict *d)
{
	return d->n;
}

const struct keydict_record *keydict_at(const struct keydict *d, size_t i)
{
	return i < d->n ? &d->recs[i].r : NULL;
}
