/* keyshare: epochs only go up and by a bounded step; the controller's cycle asks each device
 * once, takes one bounded contribution from each, mixes every contribution into the pool, gives
 * each device one ring per epoch and counts it only when the device confirms that very delivery;
 * a device's intake takes the pieces of one delivery only, and refuses anything that would make
 * its ring differ from the one the controller sent. No I/O: every event is a call. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "keyshare.h"
#include "log.h"

#define POOL	   64
#define RING	   8
#define DELIVER_MS 5000

static bool all_zero(const void *p, size_t len)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < len; i++)
		if (b[i] != 0)
			return false;
	return true;
}

/* A batch of n keys of epoch, every byte of key i being fill + i, indices from first by step. */
static void batch(struct ring_keys *k, uint32_t epoch, size_t n, uint32_t first, uint32_t step,
		  uint8_t fill)
{
	memset(k, 0, sizeof(*k));
	k->epoch = epoch;
	k->n = n;
	for (size_t i = 0; i < n; i++) {
		k->index[i] = first + (uint32_t)i * step;
		memset(k->key[i], fill + (int)i, CRYPTO_KEY_LEN);
	}
}

static struct keyshare *cycle(uint32_t epoch)
{
	struct keyshare *ks = NULL;

	assert_int_equal(keyshare_new(epoch, POOL, RING, DELIVER_MS, &ks), 0);
	assert_non_null(ks);
	assert_int_equal(ks->state, KEYSHARE_COLLECTING);
	return ks;
}

/* A cycle of epoch 5 brought to READY, with device pi1 known (and asked). */
static struct keyshare *ready(struct keyshare_device **ret_d)
{
	struct keyshare *ks = cycle(5);
	struct keyshare_device *d = keyshare_device(ks, "pi1");

	assert_non_null(d);
	assert_int_equal(keyshare_on_seen(ks, d, 0, 0), KEYSHARE_ASK);
	assert_int_equal(keyshare_build(ks, 3), 0);
	keyshare_stored(ks, 0);
	assert_int_equal(ks->state, KEYSHARE_READY);
	*ret_d = d;
	return ks;
}

/* ---- epochs ---- */

static void test_credible(void **state)
{
	static const struct {
		uint32_t ours, announced;
		bool want;
	} cases[] = {
	    {5, 5, true},
	    {5, 1, true}, /* below ours: harmless, we go above ours anyway */
	    {5, 0, true},
	    {5, 5 + KEYSHARE_EPOCH_JUMP, true},
	    {5, 5 + KEYSHARE_EPOCH_JUMP + 1, false},
	    {0, KEYSHARE_EPOCH_JUMP, true},
	    {0, KEYSHARE_EPOCH_JUMP + 1, false},
	    /* A device announcing the last epoch would end all keying after one pool. */
	    {1, UINT32_MAX, false},
	    {0, UINT32_MAX, false},
	    {UINT32_MAX - KEYSHARE_EPOCH_JUMP, UINT32_MAX, true}, /* a real neighbour */
	    {UINT32_MAX, 3, true},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (keyshare_credible(cases[i].ours, cases[i].announced) != cases[i].want)
			fail_msg("case %zu: credible(%u, %u) should be %d", i, cases[i].ours,
				 cases[i].announced, cases[i].want);
}

static void test_next_epoch(void **state)
{
	static const struct {
		uint32_t ours, announced, want;
	} cases[] = {
	    {0, 0, 1},
	    {5, 0, 6},
	    {5, 3, 6}, /* never lower than ours, whatever is announced */
	    {5, 5, 6},
	    {5, 9, 10},
	    /* At most the jump above ours: every device at our epoch takes the pool. */
	    {5, 5 + KEYSHARE_EPOCH_JUMP - 1, 5 + KEYSHARE_EPOCH_JUMP},
	    {5, 5 + KEYSHARE_EPOCH_JUMP, 6},
	    {5, 5 + KEYSHARE_EPOCH_JUMP + 1, 6},
	    {0, KEYSHARE_EPOCH_JUMP - 1, KEYSHARE_EPOCH_JUMP},
	    {0, KEYSHARE_EPOCH_JUMP, 1},
	    {5, UINT32_MAX, 6},
	    {UINT32_MAX - 1, 0, UINT32_MAX},
	    /* Exhausted: 0, never a wrap to an epoch every device has already cancelled. */
	    {UINT32_MAX, 0, 0},
	    {UINT32_MAX, UINT32_MAX, 0},
	    {UINT32_MAX - 1, UINT32_MAX, 0},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint32_t got = keyshare_next_epoch(cases[i].ours, cases[i].announced);

		if (got != cases[i].want)
			fail_msg("case %zu: next(%u, %u) = %u, want %u", i, cases[i].ours,
				 cases[i].announced, got, cases[i].want);
	}
}

static void test_path_key(void **state)
{
	uint8_t secret[CRYPTO_KEY_LEN], other[CRYPTO_KEY_LEN];
	uint8_t ab[CRYPTO_KEY_LEN], ba[CRYPTO_KEY_LEN], k[CRYPTO_KEY_LEN], keep[CRYPTO_KEY_LEN];

	(void)state;
	memset(secret, 0x11, sizeof(secret));
	memset(other, 0x12, sizeof(other));
	assert_int_equal(keyshare_path_key(secret, 3, "pi1", "pi2", ab), 0);
	assert_int_equal(keyshare_path_key(secret, 3, "pi2", "pi1", ba), 0);
	/* Both ends of the pair get the same key, each asking with its own name first. */
	assert_memory_equal(ab, ba, sizeof(ab));
	assert_false(all_zero(ab, sizeof(ab)));
	assert_memory_not_equal(ab, secret, sizeof(ab));
	/* Another epoch, another pair (one name shared, or a prefix of the other), another secret:
	 * another key. */
	assert_int_equal(keyshare_path_key(secret, 4, "pi1", "pi2", k), 0);
	assert_memory_not_equal(ab, k, sizeof(ab));
	assert_int_equal(keyshare_path_key(secret, 3, "pi1", "pi3", k), 0);
	assert_memory_not_equal(ab, k, sizeof(ab));
	assert_int_equal(keyshare_path_key(secret, 3, "pi1", "pi22", k), 0);
	assert_memory_not_equal(ab, k, sizeof(ab));
	assert_int_equal(keyshare_path_key(secret, 3, "pi", "1pi2", k), 0);
	assert_memory_not_equal(ab, k, sizeof(ab));
	assert_int_equal(keyshare_path_key(other, 3, "pi1", "pi2", k), 0);
	assert_memory_not_equal(ab, k, sizeof(ab));
	/* A device has no path key with itself; nothing is written. */
	memset(k, 0xee, sizeof(k));
	memcpy(keep, k, sizeof(k));
	assert_int_equal(keyshare_path_key(secret, 3, "pi1", "pi1", k), -EINVAL);
	assert_memory_equal(k, keep, sizeof(k));
}

/* ---- the controller's cycle ---- */

static void test_new_refuses(void **state)
{
	static const struct {
		uint32_t epoch, pool, ring;
	} bad[] = {
	    {0, POOL, RING},			   /* epoch 0 means "no ring" */
	    {1, 0, 0},				   /* empty pool */
	    {1, RING_POOL_MAX + 1, RING},	   /* pool too big */
	    {1, POOL, 0},			   /* empty ring */
	    {1, POOL, POOL + 1},		   /* ring bigger than the pool */
	    {1, RING_POOL_MAX, RING_SIZE_MAX + 1}, /* ring bigger than a device keeps */
	};
	struct keyshare *ks = (struct keyshare *)&ks;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (keyshare_new(bad[i].epoch, bad[i].pool, bad[i].ring, DELIVER_MS, &ks) !=
		    -EINVAL)
			fail_msg("case %zu accepted", i);
	assert_ptr_equal(ks, (struct keyshare *)&ks);
	/* The limits themselves are fine. */
	assert_int_equal(keyshare_new(UINT32_MAX, POOL, POOL, DELIVER_MS, &ks), 0);
	keyshare_free(ks);
	keyshare_free(NULL);
}

static void test_collecting_asks_each_once(void **state)
{
	struct keyshare *ks = cycle(5);
	struct keyshare_device *a = keyshare_device(ks, "pi1"), *b = keyshare_device(ks, "pi2");

	(void)state;
	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(keyshare_on_seen(ks, a, 0, 0), KEYSHARE_ASK);
	assert_true(a->asked);
	/* Heard from again (it announces often): asked already, not again. */
	assert_int_equal(keyshare_on_seen(ks, a, 0, 10), KEYSHARE_NOTHING);
	assert_int_equal(keyshare_on_seen(ks, a, 4, 20), KEYSHARE_NOTHING);
	assert_int_equal(keyshare_on_seen(ks, b, 4, 30), KEYSHARE_ASK);
	assert_int_equal(keyshare_on_seen(ks, b, 4, 40), KEYSHARE_NOTHING);
	/* The same record whichever way it is reached. */
	assert_ptr_equal(keyshare_device(ks, "pi1"), a);
	assert_ptr_equal(keyshare_find(ks, "pi2"), b);
	assert_null(keyshare_find(ks, "pi3"));
	/* One share each, never 0, whatever the home's size. */
	assert_int_equal(keyshare_share(ks, 4), POOL / 4);
	assert_int_equal(keyshare_share(ks, 1000), 1);
	assert_int_equal(keyshare_share(ks, 0), POOL);
	keyshare_free(ks);
}

/* An excluded device (left out of a rekey) is never asked nor given anything, in any state. */
static void test_excluded_gets_nothing(void **state)
{
	struct keyshare *ks = cycle(5);
	struct keyshare_device *x = keyshare_device(ks, "gone");
	struct ring_keys k;

	(void)state;
	x->excluded = true;
	assert_int_equal(keyshare_on_seen(ks, x, 0, 0), KEYSHARE_NOTHING);
	assert_false(x->asked);
	/* Its keys are not taken either: it was never asked. */
	batch(&k, 5, 4, 0, 1, 0x10);
	assert_int_equal(keyshare_on_keys(ks, x, &k, 4), -EPERM);
	assert_int_equal(ks->contributed, 0);
	assert_int_equal(keyshare_build(ks, 3), 0);
	assert_int_equal(keyshare_on_seen(ks, x, 0, 0), KEYSHARE_NOTHING);
	keyshare_stored(ks, 0);
	assert_int_equal(keyshare_on_seen(ks, x, 0, 0), KEYSHARE_NOTHING);
	assert_int_equal(keyshare_on_seen(ks, x, 4, 1000000), KEYSHARE_NOTHING);
	assert_int_equal(keyshare_deliver(ks, x, 0), -EPROTO);
	assert_int_equal(x->n_ring, 0);
	assert_int_equal(x->delivering_until, 0);
	ring_keys_wipe(&k);
	keyshare_free(ks);
}

static void test_on_keys_rules(void **state)
{
	struct keyshare *ks = cycle(5);
	struct keyshare_device *a = keyshare_device(ks, "pi1"), *b = keyshare_device(ks, "pi2"), *c;
	struct ring_keys k;

	(void)state;
	batch(&k, 5, 6, 0, 1, 0x10);
	/* Keys nobody asked for are not taken: no device fills the pool by itself. */
	assert_int_equal(keyshare_on_keys(ks, a, &k, 4), -EPERM);
	assert_false(a->contributed);
	assert_int_equal(keyshare_on_seen(ks, a, 0, 0), KEYSHARE_ASK);
	/* Keys for another pool: refused, and the device may still send the right ones. */
	k.epoch = 4;
	assert_int_equal(keyshare_on_keys(ks, a, &k, 4), -IOTSEC_EEPOCH);
	k.epoch = 6;
	assert_int_equal(keyshare_on_keys(ks, a, &k, 4), -IOTSEC_EEPOCH);
	assert_int_equal(ks->contributed, 0);
	assert_false(a->contributed);
	k.epoch = 5;
	/* Six sent, a share of four: four taken. */
	assert_int_equal(keyshare_on_keys(ks, a, &k, 4), 0);
	assert_true(a->contributed);
	assert_int_equal(ks->contributed, 4);
	/* Only once, even with other keys. */
	batch(&k, 5, 2, 0, 1, 0x40);
	assert_int_equal(keyshare_on_keys(ks, a, &k, 4), -EPERM);
	assert_int_equal(ks->contributed, 4);
	/* Fewer than the share: all taken. */
	assert_int_equal(keyshare_on_seen(ks, b, 0, 0), KEYSHARE_ASK);
	assert_int_equal(keyshare_on_keys(ks, b, &k, 4), 0);
	assert_int_equal(ks->contributed, 6);
	/* pi3 was asked too, but answers only once the pool is built: too late, in STORING as in
	 * READY (its keys would be in no device's ring). */
	c = keyshare_device(ks, "pi3");
	assert_int_equal(keyshare_on_seen(ks, c, 0, 0), KEYSHARE_ASK);
	assert_int_equal(keyshare_build(ks, 3), 0);
	assert_int_equal(keyshare_on_keys(ks, c, &k, 4), -EPERM);
	keyshare_stored(ks, 0);
	assert_int_equal(keyshare_on_keys(ks, c, &k, 4), -EPERM);
	assert_false(c->contributed);
	assert_int_equal(ks->contributed, 6);
	ring_keys_wipe(&k);
	keyshare_free(ks);
}

/* Checked before anything is unwrapped: only the device asked, to the ask's own id, once, and
 * only while collecting; anything else costs us no private-key operation. */
static void test_may_contribute(void **state)
{
	struct keyshare *ks = cycle(5);
	struct keyshare_device *a = keyshare_device(ks, "pi1"), *b = keyshare_device(ks, "pi2");
	struct ring_keys k;
	char ask[ENVELOPE_ID_MAX + 1];

	(void)state;
	assert_false(keyshare_may_contribute(ks, a, "")); /* never asked */
	assert_int_equal(keyshare_on_seen(ks, a, 0, 0), KEYSHARE_ASK);
	memcpy(ask, a->delivery, sizeof(ask));
	assert_true(keyshare_may_contribute(ks, a, ask));
	assert_false(keyshare_may_contribute(ks, a, ""));
	assert_false(keyshare_may_contribute(ks, a, "0123456789abcdef"));
	/* Another device's ask is not this one's. */
	assert_int_equal(keyshare_on_seen(ks, b, 0, 0), KEYSHARE_ASK);
	assert_string_not_equal(a->delivery, b->delivery);
	assert_false(keyshare_may_contribute(ks, a, b->delivery));
	/* Once. */
	batch(&k, 5, 2, 0, 1, 0x10);
	assert_int_equal(keyshare_on_keys(ks, a, &k, 4), 0);
	assert_false(keyshare_may_contribute(ks, a, ask));
	/* Not once collecting is over. */
	assert_int_equal(keyshare_build(ks, 3), 0);
	assert_false(keyshare_may_contribute(ks, b, b->delivery));
	ring_keys_wipe(&k);
	keyshare_free(ks);
}

/* However many devices contribute, the pool takes at most pool keys. */
static void test_on_keys_never_past_the_pool(void **state)
{
	struct keyshare *ks = NULL;
	struct ring_keys k;
	char name[16];

	(void)state;
	assert_int_equal(keyshare_new(5, 10, 2, DELIVER_MS, &ks), 0);
	batch(&k, 5, 4, 0, 1, 0x10);
	for (int i = 0; i < 5; i++) {
		struct keyshare_device *d;

		snprintf(name, sizeof(name), "pi%d", i);
		d = keyshare_device(ks, name);
		assert_int_equal(keyshare_on_seen(ks, d, 0, 0), KEYSHARE_ASK);
		assert_int_equal(keyshare_on_keys(ks, d, &k, 4), 0);
	}
	assert_int_equal(ks->contributed, 10);
	assert_int_equal(keyshare_build(ks, 3), 0);
	ring_keys_wipe(&k);
	keyshare_free(ks);
}

static void test_build_mixes_contributions(void **state)
{
	struct keyshare *ks = cycle(5), *again = cycle(5);
	struct keyshare_device *a = keyshare_device(ks, "pi1"), *b = keyshare_device(ks, "pi2");
	struct ring_keys k, same;
	uint8_t first[CRYPTO_KEY_LEN];

	(void)state;
	batch(&k, 5, 3, 0, 1, 0x10);
	batch(&same, 5, 3, 0, 1, 0x10); /* pi2 sends the very same keys */
	assert_int_equal(keyshare_on_seen(ks, a, 0, 0), KEYSHARE_ASK);
	assert_int_equal(keyshare_on_seen(ks, b, 0, 0), KEYSHARE_ASK);
	assert_int_equal(keyshare_on_keys(ks, a, &k, 8), 0);
	assert_int_equal(keyshare_on_keys(ks, b, &same, 8), 0);
	assert_int_equal(keyshare_build(ks, 3), 0);
	assert_int_equal(ks->state, KEYSHARE_STORING);
	/* No contributor knows a pool key: no key sent appears anywhere in the pool. */
	for (uint32_t i = 0; i < POOL; i++) {
		const uint8_t *p = keyshare_key(ks, i);

		assert_non_null(p);
		assert_false(all_zero(p, CRYPTO_KEY_LEN));
		for (size_t j = 0; j < k.n; j++)
			assert_memory_not_equal(p, k.key[j], CRYPTO_KEY_LEN);
		/* Every key distinct: two devices sending the same keys make no duplicates, and
		 * the random rest is not a constant. */
		for (uint32_t j = 0; j < i; j++)
			assert_memory_not_equal(p, keyshare_key(ks, j), CRYPTO_KEY_LEN);
	}
	assert_null(keyshare_key(ks, POOL));
	assert_false(all_zero(ks->path_secret, sizeof(ks->path_secret)));
	/* The group root: drawn, none of the pool's keys nor the path secret, and its e0 kept. */
	assert_int_equal(ks->group_start, 3);
	assert_false(all_zero(ks->group, sizeof(ks->group)));
	assert_memory_not_equal(ks->group, ks->path_secret, sizeof(ks->group));
	for (uint32_t i = 0; i < POOL; i++)
		assert_memory_not_equal(ks->group, keyshare_key(ks, i), sizeof(ks->group));
	/* Our own ring: ks->ring indices, ascending (so distinct), inside the pool. */
	for (uint32_t i = 0; i < ks->ring; i++) {
		assert_true(ks->own[i] < POOL);
		if (i > 0)
			assert_true(ks->own[i] > ks->own[i - 1]);
	}
	/* The same contributions in another cycle give other pool keys: the mix is secret. */
	memcpy(first, keyshare_key(ks, 0), sizeof(first));
	a = keyshare_device(again, "pi1");
	assert_int_equal(keyshare_on_seen(again, a, 0, 0), KEYSHARE_ASK);
	assert_int_equal(keyshare_on_keys(again, a, &k, 8), 0);
	/* No group stream starts before epoch 1: refused, and nothing is built. */
	assert_int_equal(keyshare_build(again, 0), -EINVAL);
	assert_int_equal(again->state, KEYSHARE_COLLECTING);
	assert_int_equal(again->group_start, 0);
	assert_true(all_zero(again->group, sizeof(again->group)));
	assert_true(all_zero(again->path_secret, sizeof(again->path_secret)));
	assert_int_equal(keyshare_build(again, UINT32_MAX), 0);
	assert_memory_not_equal(first, keyshare_key(again, 0), sizeof(first));
	/* Every pool a root of its own. */
	assert_int_equal(again->group_start, UINT32_MAX);
	assert_memory_not_equal(ks->group, again->group, sizeof(ks->group));
	/* Built once: a second build is out of order, and leaves the root as it was. */
	memcpy(first, ks->group, sizeof(first));
	assert_int_equal(keyshare_build(ks, 4), -EPROTO);
	assert_int_equal(ks->group_start, 3);
	assert_memory_equal(first, ks->group, sizeof(first));
	keyshare_stored(ks, 0);
	assert_int_equal(keyshare_build(ks, 3), -EPROTO);
	ring_keys_wipe(&k);
	ring_keys_wipe(&same);
	keyshare_free(ks);
	keyshare_free(again);
}

static void test_storing_is_quiet(void **state)
{
	struct keyshare *ks = cycle(5);
	struct keyshare_device *a = keyshare_device(ks, "pi1"), *late = keyshare_device(ks, "pi9");

	(void)state;
	assert_int_equal(keyshare_on_seen(ks, a, 0, 0), KEYSHARE_ASK);
	assert_int_equal(keyshare_build(ks, 3), 0);
	/* While our ring is being stored, nobody is asked (too late) or given a ring (not yet). */
	assert_int_equal(keyshare_on_seen(ks, a, 0, 0), KEYSHARE_NOTHING);
	assert_int_equal(keyshare_on_seen(ks, late, 0, 0), KEYSHARE_NOTHING);
	assert_int_equal(keyshare_on_seen(ks, late, 3, 99999), KEYSHARE_NOTHING);
	assert_false(late->asked);
	assert_int_equal(keyshare_deliver(ks, a, 0), -EPROTO);
	assert_int_equal(a->n_ring, 0);
	keyshare_free(ks);
}

static void test_store_failed_collects_again(void **state)
{
	struct keyshare *ks = cycle(5);
	struct keyshare_device *a = keyshare_device(ks, "pi1");
	struct ring_keys k;

	(void)state;
	batch(&k, 5, 4, 0, 1, 0x10);
	assert_int_equal(keyshare_on_seen(ks, a, 0, 0), KEYSHARE_ASK);
	assert_int_equal(keyshare_on_keys(ks, a, &k, 8), 0);
	assert_int_equal(keyshare_build(ks, 3), 0);
	keyshare_stored(ks, -EIO);
	assert_int_equal(ks->state, KEYSHARE_COLLECTING);
	/* The contributions were mixed into a pool that is gone: forgotten, and wiped. */
	assert_int_equal(ks->contributed, 0);
	assert_false(a->asked);
	assert_false(a->contributed);
	assert_true(all_zero(ks->keys, (size_t)POOL * CRYPTO_KEY_LEN));
	assert_true(all_zero(ks->path_secret, sizeof(ks->path_secret)));
	assert_true(all_zero(ks->group, sizeof(ks->group)));
	assert_int_equal(ks->group_start, 0);
	/* So every device is asked again, and may contribute again. */
	assert_int_equal(keyshare_on_seen(ks, a, 0, 0), KEYSHARE_ASK);
	assert_int_equal(keyshare_on_keys(ks, a, &k, 8), 0);
	assert_int_equal(ks->contributed, 4);
	/* Told "stored" while not storing: nothing happens. */
	keyshare_stored(ks, 0);
	assert_int_equal(ks->state, KEYSHARE_COLLECTING);
	assert_int_equal(keyshare_build(ks, 3), 0);
	keyshare_stored(ks, 0);
	assert_int_equal(ks->state, KEYSHARE_READY);
	/* And once ready, a late failure report does not throw the pool away, nor its root. */
	keyshare_stored(ks, -EIO);
	assert_int_equal(ks->state, KEYSHARE_READY);
	assert_false(all_zero(ks->keys, (size_t)POOL * CRYPTO_KEY_LEN));
	assert_false(all_zero(ks->group, sizeof(ks->group)));
	assert_int_equal(ks->group_start, 3);
	ring_keys_wipe(&k);
	keyshare_free(ks);
}

static void test_deliver(void **state)
{
	struct keyshare_device *d, *other;
	struct keyshare *ks = ready(&d);
	uint32_t ring[RING_SIZE_MAX];
	char id[ENVELOPE_ID_MAX + 1];

	(void)state;
	/* Ready: a device heard from is to be given its ring, asked before or not. */
	assert_int_equal(keyshare_on_seen(ks, d, 0, 1000), KEYSHARE_DELIVER);
	other = keyshare_device(ks, "pi2");
	assert_int_equal(keyshare_on_seen(ks, other, 0, 1000), KEYSHARE_DELIVER);
	assert_int_equal(keyshare_deliver(ks, d, 1000), 0);
	assert_int_equal(d->n_ring, RING);
	assert_int_equal(d->delivering_until, 1000 + DELIVER_MS);
	assert_true(d->delivery[0] != '\0' && strlen(d->delivery) <= ENVELOPE_ID_MAX);
	for (size_t i = 0; i < d->n_ring; i++) {
		assert_true(d->ring[i] < POOL);
		if (i > 0)
			assert_true(d->ring[i] > d->ring[i - 1]);
	}
	/* Under way: heard from again, it is left alone until the delivery had its time. */
	assert_int_equal(keyshare_on_seen(ks, d, 0, 1001), KEYSHARE_NOTHING);
	assert_int_equal(keyshare_on_seen(ks, d, 5, 1000 + DELIVER_MS - 1), KEYSHARE_NOTHING);
	assert_int_equal(keyshare_on_seen(ks, d, 0, 1000 + DELIVER_MS), KEYSHARE_DELIVER);
	/* Given again: the same ring (one per epoch, or devices would hold keys of two rings),
	 * under a new delivery id (so pieces of the first cannot finish the second). */
	memcpy(ring, d->ring, sizeof(d->ring[0]) * d->n_ring);
	memcpy(id, d->delivery, sizeof(id));
	assert_int_equal(keyshare_deliver(ks, d, 1000 + DELIVER_MS), 0);
	assert_int_equal(d->n_ring, RING);
	assert_memory_equal(d->ring, ring, sizeof(d->ring[0]) * RING);
	assert_string_not_equal(d->delivery, id);
	assert_int_equal(d->delivering_until, 1000 + 2 * DELIVER_MS);
	/* Another device has its own ring and its own delivery. */
	assert_int_equal(keyshare_deliver(ks, other, 1000), 0);
	assert_string_not_equal(other->delivery, d->delivery);
	keyshare_free(ks);
}

static void test_ack(void **state)
{
	struct keyshare_device *d;
	struct keyshare *ks = ready(&d);
	char old[ENVELOPE_ID_MAX + 1];

	(void)state;
	/* Nothing under way: an ack confirms nothing (a replayed or invented one). */
	assert_int_equal(keyshare_on_ack(ks, d, 5, ""), -IOTSEC_EDELIVERY);
	assert_int_equal(keyshare_on_ack(ks, d, 5, d->delivery), -IOTSEC_EDELIVERY);
	assert_false(d->confirmed);

	assert_int_equal(keyshare_deliver(ks, d, 1000), 0);
	memcpy(old, d->delivery, sizeof(old));
	assert_int_equal(keyshare_deliver(ks, d, 1000 + DELIVER_MS), 0);
	/* An ack of the earlier delivery: that ring may never have been whole. */
	assert_int_equal(keyshare_on_ack(ks, d, 5, old), -IOTSEC_EDELIVERY);
	assert_int_equal(keyshare_on_ack(ks, d, 5, "0123456789abcdef"), -IOTSEC_EDELIVERY);
	/* An ack of another epoch's ring. */
	assert_int_equal(keyshare_on_ack(ks, d, 4, d->delivery), -IOTSEC_EEPOCH);
	assert_int_equal(keyshare_on_ack(ks, d, 6, d->delivery), -IOTSEC_EEPOCH);
	assert_false(d->confirmed);
	assert_int_equal(d->delivering_until, 1000 + 2 * DELIVER_MS);

	assert_int_equal(keyshare_on_ack(ks, d, 5, d->delivery), 0);
	assert_true(d->confirmed);
	assert_int_equal(d->delivering_until, 0);
	/* Once: the same ack again has no delivery to confirm. */
	assert_int_equal(keyshare_on_ack(ks, d, 5, d->delivery), -IOTSEC_EDELIVERY);
	/* Confirmed and announcing our epoch: nothing to do, however long after. */
	assert_int_equal(keyshare_on_seen(ks, d, 5, 1000000), KEYSHARE_NOTHING);
	assert_true(d->confirmed);
	/* Announcing another epoch, or none: it lost its ring, it gets it again. */
	assert_int_equal(keyshare_on_seen(ks, d, 4, 1000001), KEYSHARE_DELIVER);
	assert_false(d->confirmed);
	/* Having said it lost the ring, it counts as confirmed only after a new delivery's ack. */
	assert_int_equal(keyshare_on_seen(ks, d, 5, 1000002), KEYSHARE_DELIVER);
	keyshare_free(ks);

	ks = ready(&d);
	assert_int_equal(keyshare_deliver(ks, d, 10), 0);
	assert_int_equal(keyshare_on_ack(ks, d, 5, d->delivery), 0);
	/* Confirmed, then "lost" at once: a device that acks and asks again in a loop gets one
	 * ring per deliver_ms, however fast it asks. */
	assert_int_equal(keyshare_on_seen(ks, d, 0, 20), KEYSHARE_NOTHING);
	assert_false(d->confirmed);
	assert_int_equal(keyshare_on_seen(ks, d, 0, 10 + DELIVER_MS - 1), KEYSHARE_NOTHING);
	assert_int_equal(keyshare_on_seen(ks, d, 0, 10 + DELIVER_MS), KEYSHARE_DELIVER);
	keyshare_free(ks);
}

static void test_devices_max(void **state)
{
	struct keyshare *ks = cycle(5);
	char name[CERT_NAME_MAX + 1];
	struct keyshare_device *first;

	(void)state;
	/* Names a certificate cannot carry are no device. */
	assert_null(keyshare_device(ks, ""));
	memset(name, 'a', CERT_NAME_MAX);
	name[CERT_NAME_MAX] = '\0';
	assert_null(keyshare_device(ks, name));
	name[CERT_NAME_MAX - 1] = '\0';
	assert_non_null(keyshare_device(ks, name)); /* 63 characters: the longest name */
	first = keyshare_device(ks, name);
	for (int i = 1; i < KEYSHARE_DEVICES_MAX; i++) {
		snprintf(name, sizeof(name), "pi%d", i);
		assert_non_null(keyshare_device(ks, name));
	}
	assert_int_equal(ks->n_dev, KEYSHARE_DEVICES_MAX);
	/* Full: one more is refused, the known ones are still found, unmoved. */
	assert_null(keyshare_device(ks, "one-too-many"));
	assert_int_equal(ks->n_dev, KEYSHARE_DEVICES_MAX);
	assert_non_null(keyshare_device(ks, "pi1"));
	memset(name, 'a', CERT_NAME_MAX - 1);
	name[CERT_NAME_MAX - 1] = '\0';
	assert_ptr_equal(keyshare_device(ks, name), first);
	keyshare_free(ks);
}

/* ---- a device's intake ---- */

/* Intakes are 37 KiB: kept off the stack, and static so a failed assertion leaks nothing. */
static struct intake intake_buf, before_buf;

static struct intake *fresh(void)
{
	intake_wipe(&intake_buf);
	return &intake_buf;
}

static void test_intake_whole_ring(void **state)
{
	struct intake *in = fresh();
	struct ring_keys k;
	struct ring_end end = {.epoch = 7, .count = 5, .pool = 100, .start = 4800};

	(void)state;
	memset(end.group, 0x5c, sizeof(end.group));
	batch(&k, 7, 3, 10, 5, 0x20); /* 10 15 20 */
	assert_int_equal(intake_piece(in, "d1", 0, 0, &k), 0);
	batch(&k, 7, 2, 21, 78, 0x30); /* 21 99 */
	assert_int_equal(intake_piece(in, "d1", 0, 0, &k), 0);
	assert_int_equal(in->group_start, 0); /* the root comes with the end only */
	assert_int_equal(intake_end(in, "d1", &end), 0);
	/* The group root comes with the ring. */
	assert_int_equal(in->group_start, 4800);
	assert_memory_equal(in->group, end.group, sizeof(end.group));
	assert_string_equal(in->id, "d1");
	assert_int_equal(in->epoch, 7);
	assert_int_equal(in->pool, 100);
	assert_int_equal(in->n, 5);
	assert_int_equal(in->index[0], 10);
	assert_int_equal(in->index[2], 20);
	assert_int_equal(in->index[3], 21);
	assert_int_equal(in->index[4], 99);
	assert_int_equal(in->key[2][0], 0x22);
	assert_int_equal(in->key[4][31], 0x31);
	/* A ring of the epoch we hold (given again after a lost ack), or a later one: taken. */
	intake_wipe(in);
	batch(&k, 7, 1, 0, 1, 0x20);
	assert_int_equal(intake_piece(in, "d2", 7, 7, &k), 0);
	intake_wipe(in);
	k.epoch = 9;
	assert_int_equal(intake_piece(in, "d3", 7, 7, &k), 0);
	ring_keys_wipe(&k);
	intake_wipe(in);
}

/* A refused piece changes nothing: a copy of the intake taken before must still match. */
static void refused(struct intake *in, const char *id, uint32_t floor, const struct ring_keys *k,
		    int want)
{
	struct intake *before = &before_buf;

	memcpy(before, in, sizeof(*in));
	assert_int_equal(intake_piece(in, id, floor, floor, k), want);
	assert_memory_equal(in, before, sizeof(*in));
	intake_wipe(before);
}

static void test_intake_other_delivery(void **state)
{
	struct intake *in = fresh();
	struct ring_keys k, theirs;
	struct ring_end end = {.epoch = 7, .count = 2, .pool = 100, .start = 1};

	(void)state;
	batch(&k, 7, 2, 10, 1, 0x20);
	assert_int_equal(intake_piece(in, "ours", 0, 0, &k), 0);
	/* A piece of a ring on its way to another device (its delivery id), with indices that
	 * would fit after ours: it would give us keys of a ring the controller never gave us. */
	batch(&theirs, 7, 2, 50, 1, 0x60);
	refused(in, "theirs", 0, &theirs, -IOTSEC_EDELIVERY);
	refused(in, "our", 0, &theirs, -IOTSEC_EDELIVERY);   /* a prefix of our id */
	refused(in, "ours2", 0, &theirs, -IOTSEC_EDELIVERY); /* our id is a prefix of it */
	/* Nor can its end close our ring. */
	end.count = 4;
	assert_int_equal(intake_end(in, "theirs", &end), -IOTSEC_EDELIVERY);
	end.count = 2;
	assert_int_equal(intake_end(in, "ours", &end), 0);
	assert_int_equal(in->n, 2);
	assert_int_equal(in->key[1][0], 0x21);
	ring_keys_wipe(&k);
	ring_keys_wipe(&theirs);
	intake_wipe(in);
}

/* The delivery id comes from the envelope, where it is never empty; an empty one would turn the
 * check of every later piece off, so it is refused. */
static void test_intake_empty_id(void **state)
{
	struct intake *in = fresh();
	struct ring_keys k;

	(void)state;
	batch(&k, 7, 2, 10, 1, 0x20);
	refused(in, "", 0, &k, -EBADMSG);
	ring_keys_wipe(&k);
	intake_wipe(in);
}

/* How far ahead of the home's epoch (the highest we took, or what others announce) a ring may
 * be: an insider who led once cannot hand us the top of the counter, where no later pool could
 * follow, even before our first ring. */
static void test_intake_epoch_jump(void **state)
{
	struct intake *in = fresh();
	struct ring_keys k;

	(void)state;
	batch(&k, 3 + KEYSHARE_EPOCH_JUMP + 1, 1, 0, 1, 0x20);
	refused(in, "d", 3, &k, -IOTSEC_EEPOCH);
	k.epoch = UINT32_MAX;
	refused(in, "d", 3, &k, -IOTSEC_EEPOCH);
	/* The home's epoch counts, not the ring held: a ring lost (held 0) moves nothing. */
	assert_int_equal(intake_piece(in, "d", 0, 3, &k), -IOTSEC_EEPOCH);
	k.epoch = 3 + KEYSHARE_EPOCH_JUMP;
	assert_int_equal(intake_piece(in, "d", 0, 3, &k), 0);
	intake_wipe(in);
	/* Knowing nothing of the home yet: a jump from the start of the counter, no more. */
	k.epoch = KEYSHARE_EPOCH_JUMP + 1;
	assert_int_equal(intake_piece(in, "e", 0, 0, &k), -IOTSEC_EEPOCH);
	k.epoch = UINT32_MAX;
	assert_int_equal(intake_piece(in, "e", 0, 0, &k), -IOTSEC_EEPOCH);
	k.epoch = KEYSHARE_EPOCH_JUMP;
	assert_int_equal(intake_piece(in, "e", 0, 0, &k), 0);
	ring_keys_wipe(&k);
	intake_wipe(in);
}

static void test_intake_bad_pieces(void **state)
{
	struct intake *in = fresh();
	struct ring_keys k;
	char long_id[ENVELOPE_ID_MAX + 2];

	(void)state;
	/* Before anything is taken. */
	batch(&k, 3, 2, 10, 1, 0x20);
	refused(in, "d", 4, &k, -IOTSEC_EEPOCH); /* a ring older than the one we hold */
	refused(in, "d", UINT32_MAX, &k, -IOTSEC_EEPOCH);
	k.n = 0;
	refused(in, "d", 0, &k, -EBADMSG); /* an empty piece */
	k.n = 2;
	memset(long_id, 'x', sizeof(long_id) - 1);
	long_id[sizeof(long_id) - 1] = '\0';
	refused(in, long_id, 0, &k, -EBADMSG); /* an id no envelope carries */
	assert_int_equal(in->n, 0);
	assert_string_equal(in->id, "");

	assert_int_equal(intake_piece(in, "d", 3, 3, &k), 0); /* 10 11 */
	/* Indices must go on ascending from the last piece: equal, lower, or a piece that starts
	 * above but goes back are all a ring the controller did not send. */
	batch(&k, 3, 1, 11, 1, 0x30);
	refused(in, "d", 3, &k, -EBADMSG);
	batch(&k, 3, 1, 5, 1, 0x30);
	refused(in, "d", 3, &k, -EBADMSG);
	batch(&k, 3, 1, 0, 1, 0x30);
	refused(in, "d", 3, &k, -EBADMSG);
	/* The epoch may not change within a delivery, up or down. */
	batch(&k, 4, 1, 20, 1, 0x30);
	refused(in, "d", 3, &k, -EBADMSG);
	batch(&k, 2, 1, 20, 1, 0x30);
	refused(in, "d", 0, &k, -EBADMSG);
	/* Same delivery, but now older than what we hold (a ring stored meanwhile). */
	batch(&k, 3, 1, 20, 1, 0x30);
	refused(in, "d", 4, &k, -IOTSEC_EEPOCH);
	assert_int_equal(in->n, 2);
	assert_int_equal(intake_piece(in, "d", 3, 3, &k), 0);
	assert_int_equal(in->n, 3);
	ring_keys_wipe(&k);
	intake_wipe(in);
}

static void test_intake_overflow(void **state)
{
	struct intake *in = fresh();
	struct ring_keys k;
	uint32_t next = 0;

	(void)state;
	/* Full pieces up to RING_SIZE_MAX keys exactly. */
	while (in->n + RING_KEYS_PER_MSG <= RING_SIZE_MAX) {
		batch(&k, 1, RING_KEYS_PER_MSG, next, 1, 0);
		assert_int_equal(intake_piece(in, "d", 0, 0, &k), 0);
		next += RING_KEYS_PER_MSG;
	}
	if (in->n < RING_SIZE_MAX) {
		batch(&k, 1, RING_SIZE_MAX - in->n, next, 1, 0);
		assert_int_equal(intake_piece(in, "d", 0, 0, &k), 0);
		next += (uint32_t)k.n;
	}
	assert_int_equal(in->n, RING_SIZE_MAX);
	/* One key more, or a whole piece more, would write past the ring. */
	batch(&k, 1, 1, next, 1, 0);
	refused(in, "d", 0, &k, -EBADMSG);
	batch(&k, 1, RING_KEYS_PER_MSG, next, 1, 0);
	refused(in, "d", 0, &k, -EBADMSG);
	intake_wipe(in);

	/* The same with room left: a piece that would fit only in part is refused whole. */
	for (next = 0; next + 16 <= RING_SIZE_MAX - 16; next += 16) {
		batch(&k, 1, 16, next, 1, 0);
		assert_int_equal(intake_piece(in, "e", 0, 0, &k), 0);
	}
	assert_int_equal(in->n, RING_SIZE_MAX - 16);
	batch(&k, 1, 17, next, 1, 0);
	refused(in, "e", 0, &k, -EBADMSG);
	k.n = 16;
	assert_int_equal(intake_piece(in, "e", 0, 0, &k), 0);
	assert_int_equal(in->n, RING_SIZE_MAX);
	ring_keys_wipe(&k);
	intake_wipe(in);
}

static void test_intake_bad_end(void **state)
{
	struct intake *in = fresh(), *before = &before_buf;
	struct ring_keys k;
	static const struct {
		const char *id;
		struct ring_end end;
		int want;
		const char *why;
	} cases[] = {
	    {"d", {7, 2, 100, 1, {0}}, -EBADMSG, "fewer keys than sent: a piece was added"},
	    {"d", {7, 4, 100, 1, {0}}, -EBADMSG, "more keys than sent: a piece was lost"},
	    {"x", {7, 3, 100, 1, {0}}, -IOTSEC_EDELIVERY, "the end of another delivery"},
	    {"", {7, 3, 100, 1, {0}}, -IOTSEC_EDELIVERY, "no delivery at all"},
	    {"d", {8, 3, 100, 1, {0}}, -EBADMSG, "the end of another epoch's ring"},
	    {"d", {6, 3, 100, 1, {0}}, -EBADMSG, "the end of an earlier epoch's ring"},
	    {"d", {7, 3, 50, 1, {0}}, -EBADMSG, "a pool the last index (50) does not fit"},
	    {"d", {7, 3, 3, 1, {0}}, -EBADMSG, "a pool smaller than the indices"},
	    {"d", {7, 3, 100, 0, {0}}, -EBADMSG, "no group stream (e0 0)"},
	    {"d", {7, 3, 100, 0, {1}}, -EBADMSG, "a group root without its e0"},
	};

	(void)state;
	/* Nothing received: no end closes an empty ring. */
	assert_int_equal(intake_end(in, "d", &(struct ring_end){7, 3, 100, 1, {0}}),
			 -IOTSEC_EDELIVERY);
	assert_int_equal(intake_end(in, "", &(struct ring_end){7, 3, 100, 1, {0}}),
			 -IOTSEC_EDELIVERY);
	batch(&k, 7, 3, 10, 20, 0x20); /* 10 30 50 */
	assert_int_equal(intake_piece(in, "d", 0, 0, &k), 0);
	memcpy(before, in, sizeof(*in));
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r = intake_end(in, cases[i].id, &cases[i].end);

		if (r != cases[i].want)
			fail_msg("case %zu (%s): %d, want %d", i, cases[i].why, r, cases[i].want);
		assert_memory_equal(in, before, sizeof(*in));
	}
	/* The right end still closes it: nothing refused spoiled the ring. */
	assert_int_equal(intake_end(in, "d", &(struct ring_end){7, 3, 51, UINT32_MAX, {9}}), 0);
	assert_int_equal(in->pool, 51);
	assert_int_equal(in->group_start, UINT32_MAX);
	assert_int_equal(in->group[0], 9);
	ring_keys_wipe(&k);
	intake_wipe(in);
	intake_wipe(before);
}

static void test_intake_wipe(void **state)
{
	struct intake *in = fresh();
	struct ring_keys k;

	(void)state;
	batch(&k, 7, 4, 1, 1, 0x77);
	assert_int_equal(intake_piece(in, "d", 0, 0, &k), 0);
	assert_int_equal(intake_end(in, "d", &(struct ring_end){7, 4, 10, 1, {0x77}}), 0);
	assert_false(all_zero(in, sizeof(*in)));
	intake_wipe(in);
	assert_true(all_zero(in, sizeof(*in)));
	/* Wiped is empty: a new delivery starts over. */
	assert_int_equal(intake_piece(in, "e", 0, 0, &k), 0);
	ring_keys_wipe(&k);
	intake_wipe(in);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_credible),
	    cmocka_unit_test(test_next_epoch),
	    cmocka_unit_test(test_path_key),
	    cmocka_unit_test(test_new_refuses),
	    cmocka_unit_test(test_collecting_asks_each_once),
	    cmocka_unit_test(test_excluded_gets_nothing),
	    cmocka_unit_test(test_on_keys_rules),
	    cmocka_unit_test(test_on_keys_never_past_the_pool),
	    cmocka_unit_test(test_build_mixes_contributions),
	    cmocka_unit_test(test_storing_is_quiet),
	    cmocka_unit_test(test_store_failed_collects_again),
	    cmocka_unit_test(test_deliver),
	    cmocka_unit_test(test_ack),
	    cmocka_unit_test(test_devices_max),
	    cmocka_unit_test(test_intake_whole_ring),
	    cmocka_unit_test(test_intake_other_delivery),
	    cmocka_unit_test(test_intake_empty_id),
	    cmocka_unit_test(test_intake_epoch_jump),
	    cmocka_unit_test(test_may_contribute),
	    cmocka_unit_test(test_intake_bad_pieces),
	    cmocka_unit_test(test_intake_overflow),
	    cmocka_unit_test(test_intake_bad_end),
	    cmocka_unit_test(test_intake_wipe),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
