#include "stream.h"

#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define STREAM_SALT    "iotsec stream v1"
#define STREAM_ID_INFO "iotsec stream id v1"

/* Invariants: key is K_epoch; has_prev says prev is K_{epoch-1}; an epoch below first has no
 * AEAD. first is e0 for a stream started from its root, so the root (the key of e0 - 1) never
 * seals or opens a reading: the doctor, who computes keys from e0 on, could not open it. */
struct stream {
	uint8_t id[STREAM_ID_LEN];
	uint32_t epoch, first;
	uint8_t key[CRYPTO_KEY_LEN], prev[CRYPTO_KEY_LEN];
	bool has_prev;
	struct crypto_aead *aead, *prev_aead; /* NULL for an epoch below first */
};

uint32_t stream_epoch(const struct stream_schedule *s, int64_t t)
{
	uint64_t since;

	if (s->interval <= 0 || t < s->start)
		return 0;
	/* Unsigned: t - start fits in 64 bits without sign even when it overflows int64. */
	since = (uint64_t)t - (uint64_t)s->start;
	since /= (uint64_t)s->interval;
	return since >= UINT32_MAX ? UINT32_MAX : (uint32_t)since + 1;
}

int64_t stream_epoch_start(const struct stream_schedule *s, uint32_t e)
{
	int64_t steps = e > 0 ? (int64_t)e - 1 : 0;

	/* Saturate rather than overflow for a schedule no configuration allows. */
	if (s->interval > 0 && steps > (INT64_MAX - (s->start > 0 ? s->start : 0)) / s->interval)
		return INT64_MAX;
	return s->start + steps * (s->interval > 0 ? s->interval : 0);
}

int stream_next_key(const uint8_t prev[CRYPTO_KEY_LEN], uint32_t e, uint8_t ret[CRYPTO_KEY_LEN])
{
	uint32_t be = htobe32(e);
	uint8_t out[CRYPTO_KEY_LEN];
	int r;

	r = crypto_hkdf_sha256(STREAM_SALT, sizeof(STREAM_SALT) - 1, prev, CRYPTO_KEY_LEN, &be,
			       sizeof(be), out, sizeof(out));
	if (r == 0)
		memcpy(ret, out, sizeof(out));
	crypto_wipe(out, sizeof(out));
	return r;
}

/* From key (of epoch from) to the keys of to and to - 1 (to > from), wiping every key between.
 * ret_prev gets K_{to-1}, which is key itself for a step of one. */
static int walk(const uint8_t key[CRYPTO_KEY_LEN], uint32_t from, uint32_t to,
		uint8_t ret_key[CRYPTO_KEY_LEN], uint8_t ret_prev[CRYPTO_KEY_LEN])
{
	uint8_t a[CRYPTO_KEY_LEN], b[CRYPTO_KEY_LEN];
	int r = 0;

	memcpy(a, key, CRYPTO_KEY_LEN);
	for (uint32_t e = from + 1; e <= to && r == 0; e++) {
		if ((r = stream_next_key(a, e, b)) == 0 && e == to) {
			memcpy(ret_prev, a, CRYPTO_KEY_LEN);
			memcpy(ret_key, b, CRYPTO_KEY_LEN);
		}
		memcpy(a, b, CRYPTO_KEY_LEN);
		if (e == UINT32_MAX)
			break;
	}
	crypto_wipe(a, sizeof(a));
	crypto_wipe(b, sizeof(b));
	return r;
}

int stream_key_at(const uint8_t root[CRYPTO_KEY_LEN], uint32_t e0, uint32_t e,
		  uint8_t ret[CRYPTO_KEY_LEN])
{
	uint8_t key[CRYPTO_KEY_LEN], prev[CRYPTO_KEY_LEN];
	int r;

	if (e0 == 0)
		return -EINVAL;
	if (e < e0 || e - e0 > STREAM_ADVANCE_MAX)
		return -ERANGE;
	if ((r = walk(root, e0 - 1, e, key, prev)) == 0)
		memcpy(ret, key, sizeof(key));
	crypto_wipe(key, sizeof(key));
	crypto_wipe(prev, sizeof(prev));
	return r;
}

int stream_id(const uint8_t root[CRYPTO_KEY_LEN], uint8_t ret[STREAM_ID_LEN])
{
	uint8_t mac[CRYPTO_SHA256_LEN];
	int r;

	r = crypto_hmac_sha256(root, CRYPTO_KEY_LEN, STREAM_ID_INFO, sizeof(STREAM_ID_INFO) - 1,
			       mac);
	if (r == 0)
		memcpy(ret, mac, STREAM_ID_LEN);
	crypto_wipe(mac, sizeof(mac));
	return r;
}

void stream_free(struct stream *s)
{
	if (s == NULL)
		return;
	crypto_aead_free(s->aead);
	crypto_aead_free(s->prev_aead);
	crypto_wipe(s, sizeof(*s));
	free(s);
}

/* A stream at epoch with key (and prev, or NULL); AEADs for the epochs from first on. */
static int make(const uint8_t id[STREAM_ID_LEN], uint32_t epoch, uint32_t first,
		const uint8_t key[CRYPTO_KEY_LEN], const uint8_t *prev, struct stream **ret)
{
	struct stream *s = NULL;
	int r = -ENOMEM;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		goto out;
	memcpy(s->id, id, STREAM_ID_LEN);
	s->epoch = epoch;
	s->first = first;
	memcpy(s->key, key, CRYPTO_KEY_LEN);
	if (epoch >= first && (r = crypto_aead_new(key, &s->aead)) < 0)
		goto out;
	if (prev != NULL && epoch > first) {
		memcpy(s->prev, prev, CRYPTO_KEY_LEN);
		s->has_prev = true;
		if ((r = crypto_aead_new(prev, &s->prev_aead)) < 0)
			goto out;
	}
	*ret = s;
	s = NULL;
	r = 0;
out:
	stream_free(s);
	return r;
}

int stream_from_root(const uint8_t root[CRYPTO_KEY_LEN], uint32_t e0, struct stream **ret)
{
	uint8_t id[STREAM_ID_LEN];
	int r;

	if (e0 == 0)
		return -EINVAL;
	if ((r = stream_id(root, id)) < 0)
		return r;
	return make(id, e0 - 1, e0, root, NULL, ret);
}

int stream_from_key(const uint8_t id[STREAM_ID_LEN], uint32_t epoch,
		    const uint8_t key[CRYPTO_KEY_LEN], const uint8_t *prev, struct stream **ret)
{
	if (epoch == 0) /* epoch 0 is before the schedule: nothing is sealed there */
		return -EINVAL;
	return make(id, epoch, prev != NULL && epoch > 1 ? epoch - 1 : epoch, key, prev, ret);
}

/* All or nothing: the new keys and AEADs are made first, and only then do the old ones go. */
int stream_advance(struct stream *s, uint32_t e)
{
	uint8_t key[CRYPTO_KEY_LEN], prev[CRYPTO_KEY_LEN];
	struct crypto_aead *aead = NULL, *prev_aead = NULL;
	bool keep_prev, reuse;
	int r;

	if (e == s->epoch)
		return 0;
	if (e < s->epoch || e - s->epoch > STREAM_ADVANCE_MAX)
		return -ERANGE;
	keep_prev = e - 1 >= s->first; /* e > epoch >= 0, so e - 1 does not wrap */
	/* One step: the current AEAD becomes the previous one as it is, with no new key setup. */
	reuse = e == s->epoch + 1 && s->aead != NULL;
	if ((r = walk(s->key, s->epoch, e, key, prev)) < 0 ||
	    (r = crypto_aead_new(key, &aead)) < 0 ||
	    (keep_prev && !reuse && (r = crypto_aead_new(prev, &prev_aead)) < 0))
		goto out;
	crypto_aead_free(s->prev_aead);
	if (reuse)
		s->prev_aead = s->aead;
	else
		crypto_aead_free(s->aead);
	if (!reuse)
		s->prev_aead = prev_aead;
	prev_aead = NULL;
	s->aead = aead;
	aead = NULL;
	memcpy(s->key, key, CRYPTO_KEY_LEN);
	if (keep_prev)
		memcpy(s->prev, prev, CRYPTO_KEY_LEN);
	else
		crypto_wipe(s->prev, CRYPTO_KEY_LEN);
	s->has_prev = keep_prev;
	s->epoch = e;
out:
	crypto_aead_free(aead);
	crypto_aead_free(prev_aead);
	crypto_wipe(key, sizeof(key));
	crypto_wipe(prev, sizeof(prev));
	return r;
}

uint32_t stream_current(const struct stream *s)
{
	return s->epoch;
}

const uint8_t *stream_get_id(const struct stream *s)
{
	return s->id;
}

struct crypto_aead *stream_aead(struct stream *s, uint32_t e)
{
	/* No AEAD exists for an epoch below first (the invariants above). */
	if (e == s->epoch)
		return s->aead;
	if (s->has_prev && s->epoch > 0 && e == s->epoch - 1)
		return s->prev_aead;
	return NULL;
}

const uint8_t *stream_key(const struct stream *s, bool prev)
{
	if (prev)
		return s->has_prev ? s->prev : NULL;
	return s->key;
}
