#include "keyshare.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

bool keyshare_credible(uint32_t ours, uint32_t announced)
{
	return announced <= ours || announced - ours <= KEYSHARE_EPOCH_JUMP;
}

uint32_t keyshare_next_epoch(uint32_t ours, uint32_t announced)
{
	/* Strictly less than the jump: the new pool is then at most the jump above ours, which
	 * every device at our epoch takes. */
	uint32_t top =
	    announced > ours && announced - ours < KEYSHARE_EPOCH_JUMP ? announced : ours;

	return top == RING_EPOCH_MAX ? 0 : top + 1;
}

int keyshare_path_key(const uint8_t secret[CRYPTO_KEY_LEN], uint32_t epoch, const char *a,
		      const char *b, uint8_t out[CRYPTO_KEY_LEN])
{
	char info[2 * CERT_NAME_MAX + 32];
	const char *lo = strcmp(a, b) < 0 ? a : b, *hi = lo == a ? b : a;
	int n = snprintf(info, sizeof(info), "iotsec path %u", epoch);
	size_t la = strlen(lo), lb = strlen(hi);

	if (strcmp(a, b) == 0 || la >= CERT_NAME_MAX || lb >= CERT_NAME_MAX || n < 0)
		return -EINVAL;
	/* Each name ends with a NUL: no two pairs of names run together into the same text. */
	memcpy(info + n + 1, lo, la + 1);
	memcpy(info + n + 1 + la + 1, hi, lb + 1);
	return crypto_hkdf_sha256(NULL, 0, secret, CRYPTO_KEY_LEN, info,
				  (size_t)n + 1 + la + 1 + lb + 1, out, CRYPTO_KEY_LEN);
}

/* ---- the controller's cycle ---- */

int keyshare_new(uint32_t epoch, uint32_t pool, uint32_t ring, uint64_t deliver_ms,
		 struct keyshare **ret)
{
	struct keyshare *ks;

	if (epoch == 0 || pool == 0 || pool > RING_POOL_MAX || ring == 0 || ring > pool ||
	    ring > RING_SIZE_MAX)
		return -EINVAL;
	if ((ks = calloc(1, sizeof(*ks))) == NULL)
		return -ENOMEM;
	if ((ks->keys = calloc(pool, CRYPTO_KEY_LEN)) == NULL) {
		free(ks);
		return -ENOMEM;
	}
	ks->state = KEYSHARE_COLLECTING;
	ks->epoch = epoch, ks->pool = pool, ks->ring = ring, ks->deliver_ms = deliver_ms;
	*ret = ks;
	return 0;
}

void keyshare_free(struct keyshare *ks)
{
	if (ks == NULL)
		return;
	crypto_wipe(ks->keys, (size_t)ks->pool * CRYPTO_KEY_LEN);
	free(ks->keys);
	free(ks->dev);
	crypto_wipe(ks, sizeof(*ks));
	free(ks);
}

const struct keyshare_device *keyshare_find(const struct keyshare *ks, const char *name)
{
	for (size_t i = 0; i < ks->n_dev; i++)
		if (strcmp(ks->dev[i].name, name) == 0)
			return &ks->dev[i];
	return NULL;
}

struct keyshare_device *keyshare_device(struct keyshare *ks, const char *name)
{
	struct keyshare_device *d = (struct keyshare_device *)keyshare_find(ks, name);

	if (d != NULL)
		return d;
	if (ks->n_dev == KEYSHARE_DEVICES_MAX || name[0] == '\0' || strlen(name) >= CERT_NAME_MAX)
		return NULL;
	/* The table is made whole at once: devices are few, and pointers into it stay valid. */
	if (ks->dev == NULL && (ks->dev = calloc(KEYSHARE_DEVICES_MAX, sizeof(*ks->dev))) == NULL)
		return NULL;
	d = &ks->dev[ks->n_dev++];
	memcpy(d->name, name, strlen(name) + 1);
	return d;
}

enum keyshare_action keyshare_on_seen(struct keyshare *ks, struct keyshare_device *d,
				      uint32_t announced, uint64_t now)
{
	if (d->excluded)
		return KEYSHARE_NOTHING;
	switch (ks->state) {
	case KEYSHARE_COLLECTING:
		if (d->asked || envelope_new_id(d->delivery) < 0)
			return KEYSHARE_NOTHING;
		d->asked = true;
		return KEYSHARE_ASK;
	case KEYSHARE_STORING:
		return KEYSHARE_NOTHING;
	case KEYSHARE_READY:
		break;
	}
	/* A confirmed device that announces another epoch has lost its ring, or holds one we did
	 * not give: it gets ours again. */
	if (d->confirmed && announced == ks->epoch)
		return KEYSHARE_NOTHING;
	d->confirmed = false;
	/* One delivery at a time, and one per deliver_ms at most: a device that confirms and asks
	 * again at once cannot keep us wrapping keys. */
	if (d->delivered && now < d->delivered_at + ks->deliver_ms)
		return KEYSHARE_NOTHING;
	return KEYSHARE_DELIVER;
}

bool keyshare_may_contribute(const struct keyshare *ks, const struct keyshare_device *d,
			     const char *id)
{
	return ks->state == KEYSHARE_COLLECTING && d->asked && !d->contributed &&
	       strcmp(d->delivery, id) == 0;
}

uint32_t keyshare_share(const struct keyshare *ks, size_t devices)
{
	uint32_t share = devices ? (uint32_t)(ks->pool / devices) : ks->pool;

	return share ? share : 1;
}

int keyshare_on_keys(struct keyshare *ks, struct keyshare_device *d, const struct ring_keys *k,
		     uint32_t share)
{
	size_t n = k->n < share ? k->n : share;

	/* One contribution per device asked, of at most its share: no device fills the pool. */
	if (ks->state != KEYSHARE_COLLECTING || !d->asked || d->contributed)
		return -EPERM;
	if (k->epoch != ks->epoch)
		return -IOTSEC_EEPOCH;
	d->contributed = true;
	for (size_t i = 0; i < n && ks->contributed < ks->pool; i++)
		memcpy(ks->keys[ks->contributed++], k->key[i], CRYPTO_KEY_LEN);
	return 0;
}

int keyshare_build(struct keyshare *ks, uint32_t group_start)
{
	uint8_t mix[CRYPTO_KEY_LEN], mixed[CRYPTO_KEY_LEN];
	int r = -EPROTO;

	if (group_start == 0)
		return -EINVAL;
	if (ks->state != KEYSHARE_COLLECTING)
		return r;
	/* A contributor knows the key it sent: what enters the pool is that key mixed with our
	 * secret, as unpredictable as the better of the two random sources. */
	r = crypto_random(mix, sizeof(mix));
	for (size_t i = 0; r == 0 && i < ks->contributed; i++) {
		char info[48];
		int n = snprintf(info, sizeof(info), "iotsec pool %u %zu", ks->epoch, i);

		r = crypto_hkdf_sha256(mix, sizeof(mix), ks->keys[i], CRYPTO_KEY_LEN, info,
				       (size_t)n, mixed, sizeof(mixed));
		memcpy(ks->keys[i], mixed, sizeof(mixed));
	}
	if (r == 0 && ks->contributed < ks->pool)
		r = crypto_random(ks->keys[ks->contributed],
				  (ks->pool - ks->contributed) * CRYPTO_KEY_LEN);
	if (r == 0)
		r = crypto_random(ks->path_secret, sizeof(ks->path_secret));
	/* A root of its own for every pool: a device left out of this one holds none of it. */
	if (r == 0)
		r = crypto_random(ks->group, sizeof(ks->group));
	if (r == 0)
		r = ring_pick(ks->pool, ks->ring, ks->own);
	crypto_wipe(mix, sizeof(mix));
	crypto_wipe(mixed, sizeof(mixed));
	if (r == 0) {
		ks->group_start = group_start;
		ks->state = KEYSHARE_STORING;
	} else {
		crypto_wipe(ks->group, sizeof(ks->group));
	}
	return r;
}

void keyshare_stored(struct keyshare *ks, int r)
{
	if (ks->state != KEYSHARE_STORING)
		return;
	if (r == 0) {
		ks->state = KEYSHARE_READY;
		return;
	}
	/* Start collecting again from nothing: the contributions were mixed into the pool. */
	crypto_wipe(ks->keys, (size_t)ks->pool * CRYPTO_KEY_LEN);
	crypto_wipe(ks->path_secret, sizeof(ks->path_secret));
	crypto_wipe(ks->group, sizeof(ks->group));
	ks->group_start = 0;
	ks->contributed = 0;
	for (size_t i = 0; i < ks->n_dev; i++)
		ks->dev[i].asked = ks->dev[i].contributed = false;
	ks->state = KEYSHARE_COLLECTING;
}

const uint8_t *keyshare_key(const struct keyshare *ks, uint32_t index)
{
	return index < ks->pool ? ks->keys[index] : NULL;
}

int keyshare_deliver(struct keyshare *ks, struct keyshare_device *d, uint64_t now)
{
	int r;

	if (ks->state != KEYSHARE_READY || d->excluded)
		return -EPROTO;
	if (d->n_ring == 0) {
		if ((r = ring_pick(ks->pool, ks->ring, d->ring)) < 0)
			return r;
		d->n_ring = ks->ring;
	}
	if ((r = envelope_new_id(d->delivery)) < 0)
		return r;
	d->confirmed = false;
	d->delivering_until = now + ks->deliver_ms;
	d->delivered_at = now;
	d->delivered = true;
	return 0;
}

int keyshare_on_ack(struct keyshare *ks, struct keyshare_device *d, uint32_t epoch, const char *id)
{
	if (epoch != ks->epoch)
		return -IOTSEC_EEPOCH;
	if (ks->state != KEYSHARE_READY || d->delivering_until == 0 || strcmp(id, d->delivery) != 0)
		return -IOTSEC_EDELIVERY;
	d->confirmed = true;
	d->delivering_until = 0;
	return 0;
}

/* ---- a device's intake ---- */

int intake_piece(struct intake *in, const char *id, uint32_t held, uint32_t home,
		 const struct ring_keys *k)
{
	/* With no id, no later piece could be told apart from another delivery's. */
	if (id[0] == '\0' || strlen(id) > ENVELOPE_ID_MAX)
		return -EBADMSG;
	if (in->id[0] != '\0' && strcmp(in->id, id) != 0)
		return -IOTSEC_EDELIVERY;
	if (k->epoch < held || !keyshare_credible(home, k->epoch))
		return -IOTSEC_EEPOCH;
	if ((in->n > 0 && (k->epoch != in->epoch || k->index[0] <= in->index[in->n - 1])) ||
	    k->n == 0 || k->n > RING_SIZE_MAX - in->n)
		return -EBADMSG;
	if (in->n == 0) {
		memcpy(in->id, id, strlen(id) + 1);
		in->epoch = k->epoch;
	}
	memcpy(in->index + in->n, k->index, k->n * sizeof(k->index[0]));
	memcpy(in->key + in->n, k->key, k->n * CRYPTO_KEY_LEN);
	in->n += k->n;
	return 0;
}

int intake_end(struct intake *in, const char *id, const struct ring_end *e)
{
	if (in->n == 0 || strcmp(in->id, id) != 0)
		return -IOTSEC_EDELIVERY;
	if (e->epoch != in->epoch || e->count != in->n || in->index[in->n - 1] >= e->pool ||
	    e->start == 0)
		return -EBADMSG;
	in->pool = e->pool;
	in->group_start = e->start;
	memcpy(in->group, e->group, sizeof(in->group));
	return 0;
}

void intake_wipe(struct intake *in)
{
	crypto_wipe(in, sizeof(*in));
}
