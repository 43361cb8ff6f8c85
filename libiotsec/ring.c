#include "ring.h"

#include "body.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "encoding.h"

/* Worst cases in compact JSON: {"epoch":4294967295,"keys":[]} and {"i":999999,"k":""}, */
#define KEYS_HEAD_LEN  32
#define KEYS_ENTRY_LEN 24 /* plus the base64 */

_Static_assert(RING_POOL_MAX <= 1000000, "index digits in KEYS_ENTRY_LEN");
_Static_assert(KEYS_HEAD_LEN + RING_SIZE_MAX * 8 <= RING_BODY_MAX, "a whole ring of indices");

/* An object holding exactly n fields: with the size equal, each named field present means no
 * other field is. */
static bool has_fields(json_t *o, size_t n)
{
	return json_is_object(o) && json_object_size(o) == n;
}

/* An integer in lo..hi: reals, strings and booleans are refused. */
static bool get_u32(json_t *v, uint32_t lo, uint32_t hi, uint32_t *out)
{
	json_int_t x;

	if (!json_is_integer(v))
		return false;
	x = json_integer_value(v);
	if (x < (json_int_t)lo || x > (json_int_t)hi)
		return false;
	*out = (uint32_t)x;
	return true;
}

static bool get_epoch(json_t *o, uint32_t *out)
{
	return get_u32(json_object_get(o, "epoch"), 1, RING_EPOCH_MAX, out);
}

static bool indices_ok(const uint32_t *index, size_t n, uint32_t pool)
{
	for (size_t i = 0; i < n; i++)
		if (index[i] >= pool || (i > 0 && index[i] <= index[i - 1]))
			return false;
	return true;
}

/* An object of the given fields, or NULL. Values are stolen, also on failure (as
 * json_object_set_new() itself does). */
static json_t *object2(const char *k1, json_t *v1, const char *k2, json_t *v2)
{
	json_t *o = json_object();

	if (o == NULL) {
		json_decref(v1), json_decref(v2);
		return NULL;
	}
	if (json_object_set_new(o, k1, v1) < 0) {
		json_decref(o), json_decref(v2);
		return NULL;
	}
	if (json_object_set_new(o, k2, v2) < 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *wrap_key(EVP_PKEY_CTX *wrap, const uint8_t key[CRYPTO_KEY_LEN])
{
	uint8_t *blob = NULL;
	size_t len;
	char *text = NULL;
	json_t *s = NULL;

	if (wrap == NULL || crypto_rsa_wrap(wrap, key, CRYPTO_KEY_LEN, &blob, &len) < 0)
		goto out;
	if ((text = b64_encode(blob, len)) != NULL)
		s = json_string(text);
out:
	free(text);
	free(blob);
	return s;
}

int ring_needs_build(const struct ring_needs *n, json_t **ret)
{
	json_t *o;

	if (n->epoch == 0 || n->pool == 0 || n->pool > RING_POOL_MAX || n->ring == 0 ||
	    n->ring > n->pool || n->ring > RING_SIZE_MAX || n->share == 0 || n->share > n->pool)
		return -EINVAL;
	o = json_pack("{s:I, s:I, s:I, s:I}", "epoch", (json_int_t)n->epoch, "pool",
		      (json_int_t)n->pool, "ring", (json_int_t)n->ring, "share",
		      (json_int_t)n->share);
	if (o == NULL)
		return -ENOMEM;
	*ret = o;
	return 0;
}

int ring_needs_parse(json_t *body, struct ring_needs *ret)
{
	struct ring_needs n;

	if (!has_fields(body, 4) || !get_epoch(body, &n.epoch) ||
	    !get_u32(json_object_get(body, "pool"), 1, RING_POOL_MAX, &n.pool) ||
	    !get_u32(json_object_get(body, "ring"), 1,
		     n.pool < RING_SIZE_MAX ? n.pool : RING_SIZE_MAX, &n.ring) ||
	    !get_u32(json_object_get(body, "share"), 1, n.pool, &n.share))
		return -EBADMSG;
	*ret = n;
	return 0;
}

void ring_keys_wipe(struct ring_keys *k)
{
	if (k != NULL)
		crypto_wipe(k, sizeof(*k));
}

/* The "keys" array of CLIENT_KEYS (with_index false) or CLIENT_RING_KEYS. */
static int keys_build(const struct ring_keys *k, bool with_index, EVP_PKEY *pub, json_t **ret)
{
	EVP_PKEY_CTX *wrap = crypto_rsa_wrap_ctx(pub);
	json_t *arr = json_array(), *o = NULL;
	int r = -ENOMEM;

	if (arr == NULL)
		goto out;
	for (size_t i = 0; i < k->n; i++) {
		json_t *item = wrap_key(wrap, k->key[i]);

		if (item != NULL && with_index)
			item = object2("i", json_integer(k->index[i]), "k", item);
		if (item == NULL || json_array_append_new(arr, item) < 0)
			goto out;
	}
	o = object2("epoch", json_integer(k->epoch), "keys", arr);
	arr = NULL;
	if (o == NULL)
		goto out;
	*ret = o;
	r = 0;
out:
	EVP_PKEY_CTX_free(wrap);
	json_decref(arr);
	return r;
}

static int keys_parse(json_t *body, bool with_index, EVP_PKEY *priv, uint32_t pool, size_t max,
		      struct ring_keys *ret)
{
	struct ring_keys k = {0};
	json_t *arr = json_object_get(body, "keys");
	int r = -EBADMSG;

	if (!has_fields(body, 2) || !get_epoch(body, &k.epoch) || !json_is_array(arr) ||
	    json_array_size(arr) == 0 || json_array_size(arr) > max)
		goto out;
	for (k.n = 0; k.n < json_array_size(arr); k.n++) {
		json_t *item = json_array_get(arr, k.n), *wrapped = item;

		if (with_index) {
			r = -EBADMSG;
			wrapped = json_object_get(item, "k");
			if (!has_fields(item, 2) ||
			    !get_u32(json_object_get(item, "i"), 0, pool - 1, &k.index[k.n]) ||
			    (k.n > 0 && k.index[k.n] <= k.index[k.n - 1]))
				goto out;
		}
		if ((r = body_key_unwrap_value(wrapped, priv, k.key[k.n])) < 0)
			goto out;
	}
	*ret = k;
	r = 0;
out:
	ring_keys_wipe(&k);
	return r;
}

size_t ring_keys_per_msg(EVP_PKEY *pub, size_t cert_len)
{
	int size = pub != NULL ? EVP_PKEY_get_size(pub) : 0;
	size_t entry, n, budget = RING_BODY_MAX - KEYS_HEAD_LEN,
			 cert_b64 = 4 * ((cert_len + 2) / 3);
	size_t cost = 0;

	if (size <= 0 || size > RING_WRAPPED_MAX)
		return 0;
	/* The certificate's base64 takes the place of a 64-character fingerprint, and every byte it
	 * takes is a byte less of the body's base64 (4/3 of the body). */
	if (cert_len > 0 && cert_b64 > 64)
		cost = (cert_b64 - 64) * 3 / 4 + 1;
	if (cost >= budget)
		return 0;
	entry = KEYS_ENTRY_LEN + 4 * (((size_t)size + 2) / 3);
	n = (budget - cost) / entry;
	return n < RING_KEYS_PER_MSG ? n : RING_KEYS_PER_MSG;
}

int ring_client_keys_build(const struct ring_keys *k, EVP_PKEY *pub, json_t **ret)
{
	if (k->epoch == 0 || k->n == 0 || k->n > RING_KEYS_PER_MSG)
		return -EINVAL;
	if (k->n > ring_keys_per_msg(pub, 0))
		return -EMSGSIZE;
	return keys_build(k, false, pub, ret);
}

int ring_client_keys_parse(json_t *body, EVP_PKEY *priv, size_t max, struct ring_keys *ret)
{
	if (max == 0 || max > RING_KEYS_PER_MSG)
		return -EINVAL;
	return keys_parse(body, false, priv, 1, max, ret);
}

int ring_ring_keys_build(const struct ring_keys *k, uint32_t pool, EVP_PKEY *pub, json_t **ret)
{
	if (k->epoch == 0 || k->n == 0 || k->n > RING_KEYS_PER_MSG || pool > RING_POOL_MAX ||
	    !indices_ok(k->index, k->n, pool))
		return -EINVAL;
	if (k->n > ring_keys_per_msg(pub, 0))
		return -EMSGSIZE;
	return keys_build(k, true, pub, ret);
}

int ring_ring_keys_parse(json_t *body, EVP_PKEY *priv, uint32_t pool, size_t max,
			 struct ring_keys *ret)
{
	if (pool == 0 || pool > RING_POOL_MAX || max == 0 || max > RING_KEYS_PER_MSG)
		return -EINVAL;
	return keys_parse(body, true, priv, pool, max, ret);
}

int ring_end_build(const struct ring_end *e, EVP_PKEY *pub, json_t **ret)
{
	EVP_PKEY_CTX *wrap;
	json_t *o, *group;

	if (e->epoch == 0 || e->count == 0 || e->count > RING_SIZE_MAX || e->pool == 0 ||
	    e->pool > RING_POOL_MAX || e->count > e->pool || e->start == 0)
		return -EINVAL;
	wrap = crypto_rsa_wrap_ctx(pub);
	group = wrap_key(wrap, e->group);
	EVP_PKEY_CTX_free(wrap);
	if (group == NULL)
		return -ENOMEM;
	o = json_pack("{s:I, s:I, s:I, s:o, s:I}", "epoch", (json_int_t)e->epoch, "count",
		      (json_int_t)e->count, "pool", (json_int_t)e->pool, "group", group, "start",
		      (json_int_t)e->start);
	if (o == NULL)
		return -ENOMEM;
	*ret = o;
	return 0;
}

int ring_end_parse(json_t *body, EVP_PKEY *priv, uint32_t max, struct ring_end *ret)
{
	struct ring_end e;
	int r = -EBADMSG;

	if (max == 0 || max > RING_SIZE_MAX)
		return -EINVAL;
	/* Every field checked before the one RSA operation: a malformed end costs no more than
	 * reading it. */
	if (!has_fields(body, 5) || !get_epoch(body, &e.epoch) ||
	    !get_u32(json_object_get(body, "count"), 1, max, &e.count) ||
	    !get_u32(json_object_get(body, "pool"), e.count, RING_POOL_MAX, &e.pool) ||
	    !get_u32(json_object_get(body, "start"), 1, UINT32_MAX, &e.start))
		goto out;
	if ((r = body_key_unwrap(body, "group", priv, e.group)) < 0)
		goto out;
	*ret = e;
	r = 0;
out:
	crypto_wipe(&e, sizeof(e));
	return r;
}

int ring_ack_build(uint32_t epoch, json_t **ret)
{
	json_t *o;

	if (epoch == 0)
		return -EINVAL;
	if ((o = json_pack("{s:I}", "epoch", (json_int_t)epoch)) == NULL)
		return -ENOMEM;
	*ret = o;
	return 0;
}

int ring_ack_parse(json_t *body, uint32_t *ret_epoch)
{
	uint32_t epoch;

	if (!has_fields(body, 1) || !get_epoch(body, &epoch))
		return -EBADMSG;
	*ret_epoch = epoch;
	return 0;
}

static int indices_build(const struct ring_indices *x, size_t min, uint32_t pool, json_t **ret)
{
	json_t *arr, *o;

	if (x->epoch == 0 || x->n < min || x->n > RING_SIZE_MAX || pool > RING_POOL_MAX ||
	    !indices_ok(x->index, x->n, pool))
		return -EINVAL;
	if ((arr = json_array()) == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < x->n; i++)
		if (json_array_append_new(arr, json_integer(x->index[i])) < 0) {
			json_decref(arr);
			return -ENOMEM;
		}
	if ((o = object2("epoch", json_integer(x->epoch), "indices", arr)) == NULL)
		return -ENOMEM;
	*ret = o;
	return 0;
}

static int indices_parse(json_t *body, size_t min, uint32_t pool, size_t max,
			 struct ring_indices *ret)
{
	json_t *arr = json_object_get(body, "indices");
	struct ring_indices *x;
	int r = -EBADMSG;

	if (pool == 0 || pool > RING_POOL_MAX || max == 0 || max > RING_SIZE_MAX)
		return -EINVAL;
	if ((x = calloc(1, sizeof(*x))) == NULL)
		return -ENOMEM;
	if (!has_fields(body, 2) || !get_epoch(body, &x->epoch) || !json_is_array(arr) ||
	    json_array_size(arr) < min || json_array_size(arr) > max)
		goto out;
	for (x->n = 0; x->n < json_array_size(arr); x->n++)
		if (!get_u32(json_array_get(arr, x->n), 0, pool - 1, &x->index[x->n]) ||
		    (x->n > 0 && x->index[x->n] <= x->index[x->n - 1]))
			goto out;
	memcpy(ret, x, sizeof(*x));
	r = 0;
out:
	free(x);
	return r;
}

int ring_start_build(const struct ring_indices *x, uint32_t pool, json_t **ret)
{
	return indices_build(x, 1, pool, ret);
}

int ring_start_parse(json_t *body, uint32_t pool, size_t max, struct ring_indices *ret)
{
	return indices_parse(body, 1, pool, max, ret);
}

int ring_common_index_build(const struct ring_indices *x, uint32_t pool, json_t **ret)
{
	return indices_build(x, 0, pool, ret);
}

int ring_common_index_parse(json_t *body, uint32_t pool, size_t max, struct ring_indices *ret)
{
	return indices_parse(body, 0, pool, max, ret);
}

/* Uniform in 0..bound-1: draws below 2^32 mod bound are redrawn, so every residue is reached
 * by the same number of 32-bit values. */
static int uniform(uint32_t bound, uint32_t *ret)
{
	uint32_t x, min = (uint32_t)(0u - bound) % bound;
	int r;

	do {
		if ((r = crypto_random(&x, sizeof(x))) < 0)
			return r;
	} while (x < min);
	*ret = x % bound;
	return 0;
}

/* Insert v into the ascending list s of n entries; false when it is already there. */
static bool insert_sorted(uint32_t *s, size_t n, uint32_t v)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (s[mid] < v)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < n && s[lo] == v)
		return false;
	memmove(s + lo + 1, s + lo, (n - lo) * sizeof(*s));
	s[lo] = v;
	return true;
}

/* Floyd's sampling: one draw per index, whatever k is next to pool, and every k-subset is
 * equally likely. */
int ring_pick(uint32_t pool, size_t k, uint32_t *ret_index)
{
	uint32_t *s = NULL, t;
	size_t n = 0;
	int r = -EINVAL;

	if (k == 0 || k > pool || pool > RING_POOL_MAX || k > RING_SIZE_MAX)
		goto out;
	r = -ENOMEM;
	if ((s = malloc(k * sizeof(*s))) == NULL)
		goto out;
	for (uint32_t j = pool - (uint32_t)k; j < pool; j++) {
		if ((r = uniform(j + 1, &t)) < 0)
			goto out;
		/* t is taken already: j itself is not, being above everything drawn so far. */
		if (!insert_sorted(s, n, t))
			insert_sorted(s, n, j);
		n++;
	}
	memcpy(ret_index, s, k * sizeof(*s));
	r = 0;
out:
	free(s);
	return r;
}

size_t ring_common(const uint32_t *a, size_t na, const uint32_t *b, size_t nb, uint32_t *out)
{
	size_t i = 0, j = 0, n = 0;

	while (i < na && j < nb) {
		if (a[i] < b[j]) {
			i++;
		} else if (a[i] > b[j]) {
			j++;
		} else {
			out[n++] = a[i];
			i++, j++;
		}
	}
	return n;
}

int ring_path_key_build(const struct ring_path_key *p, EVP_PKEY *pub, json_t **ret)
{
	EVP_PKEY_CTX *wrap;
	json_t *o, *k;

	if (p->epoch == 0 || p->peer[0] == '\0' || strnlen(p->peer, CERT_NAME_MAX) == CERT_NAME_MAX)
		return -EINVAL;
	wrap = crypto_rsa_wrap_ctx(pub);
	k = wrap_key(wrap, p->key);
	EVP_PKEY_CTX_free(wrap);
	if (k == NULL)
		return -ENOMEM;
	if ((o = object2("epoch", json_integer(p->epoch), "peer", json_string(p->peer))) == NULL) {
		json_decref(k);
		return -ENOMEM;
	}
	if (json_object_set_new(o, "k", k) < 0) {
		json_decref(o);
		return -ENOMEM;
	}
	*ret = o;
	return 0;
}

int ring_path_key_parse(json_t *body, EVP_PKEY *priv, struct ring_path_key *ret)
{
	struct ring_path_key p = {0};
	json_t *peer = json_object_get(body, "peer");
	int r = -EBADMSG;

	/* The length check refuses an embedded NUL, which would shorten the name. */
	if (!has_fields(body, 3) || !get_epoch(body, &p.epoch) || !json_is_string(peer) ||
	    json_string_length(peer) == 0 || json_string_length(peer) >= CERT_NAME_MAX ||
	    strlen(json_string_value(peer)) != json_string_length(peer))
		goto out;
	memcpy(p.peer, json_string_value(peer), json_string_length(peer) + 1);
	if ((r = body_key_unwrap(body, "k", priv, p.key)) < 0)
		goto out;
	*ret = p;
	r = 0;
out:
	crypto_wipe(&p, sizeof(p));
	return r;
}
