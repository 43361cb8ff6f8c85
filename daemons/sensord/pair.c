/* Readings for one device alone (sensord.pairwise): sealed under a key only this kit and that
 * device can draw, from the pairwise key their rings give them (SPEC 5.3).
 *
 * keyd's `peers` says which ring indices a peer shares with us (or that a path key stands in),
 * dictd gives those keys, pairwise_derive() makes K of the pool epoch, and
 * pairwise_reading_key() one key and stream id per direction. The streams live as long as keyd's
 * pool: a new pool (keyd's epoch-changed) wipes them, and they are drawn again from the new
 * ring. A reading is sealed under the pool epoch, so both ends must be on the same pool. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca.h"
#include "log.h"
#include "pairwise.h"
#include "proto.h"
#include "sensord.h"

#define PAIR_RETRY_MS	  2000
#define PAIR_CALL_TIMEOUT 5000
#define RING_RECORD	  "-ring" /* keyd's name for the ring keys in dictd (keyd.h) */
#define PATH_INDEX	  0	  /* a path key's index (keyd.h KEYD_PATH_INDEX) */

static struct sensord_pair *pair_find(struct sensord *d, const char *peer, bool create)
{
	struct sensord_pair *p;

	for (size_t i = 0; i < d->n_pairs; i++)
		if (strcmp(d->pairs[i].peer, peer) == 0)
			return &d->pairs[i];
	if (!create || d->n_pairs == SENSORD_PAIRS_MAX || !ca_name_valid(peer) ||
	    strcmp(peer, d->member->self.name) == 0)
		return NULL;
	p = &d->pairs[d->n_pairs++];
	memset(p, 0, sizeof(*p));
	p->d = d;
	snprintf(p->peer, sizeof(p->peer), "%s", peer);
	return p;
}

static void pair_drop_keys(struct sensord_pair *p)
{
	stream_free(p->send);
	stream_free(p->recv);
	p->send = p->recv = NULL;
	p->pool = 0;
}

/* Said once per change of reason, as it comes back at every reading. */
static void pair_failed(struct sensord_pair *p, int r, const char *why)
{
	if (r != p->error)
		log_warnx("no pairwise key with %s for pool %u: %s: %s", p->peer, p->d->keyd_pool,
			  why, iotsec_strerror(r));
	p->error = r;
	p->failed_at = clock_mono_ms();
}

static void on_keys(int r, const uint8_t (*keys)[CRYPTO_KEY_LEN], void *ud)
{
	struct sensord_pair *p = ud;
	struct sensord *d = p->d;
	uint8_t k[CRYPTO_KEY_LEN], ks[CRYPTO_KEY_LEN], kr[CRYPTO_KEY_LEN];
	uint8_t ids[STREAM_ID_LEN], idr[STREAM_ID_LEN];
	struct stream *send = NULL, *recv = NULL;

	if (r == -ECANCELED)
		return;
	p->call = NULL;
	if (r < 0) {
		pair_failed(p, r, "dictd");
		return;
	}
	if (p->asked_pool != d->keyd_pool)
		return; /* keyd moved on meanwhile: asked again for the new pool */
	/* A path key stands in for the ring keys as one key (keyd's sessions do the same). */
	if ((r = pairwise_derive(keys[0], p->n_keys ? p->n_keys : 1, p->asked_pool,
				 d->member->self.name, p->peer, k)) < 0 ||
	    (r = pairwise_reading_key(k, d->member->self.name, p->peer, ks, ids)) < 0 ||
	    (r = pairwise_reading_key(k, p->peer, d->member->self.name, kr, idr)) < 0 ||
	    (r = stream_from_key(ids, p->asked_pool, ks, NULL, &send)) < 0 ||
	    (r = stream_from_key(idr, p->asked_pool, kr, NULL, &recv)) < 0) {
		stream_free(send);
		pair_failed(p, r, "derivation");
		goto out;
	}
	pair_drop_keys(p);
	p->send = send, p->recv = recv;
	p->pool = p->asked_pool;
	p->error = 0;
	log_info("pairwise reading keys with %s for pool %u (%s)", p->peer, p->pool,
		 p->n_keys ? "ring" : "path key");
out:
	crypto_wipe(k, sizeof(k));
	crypto_wipe(ks, sizeof(ks));
	crypto_wipe(kr, sizeof(kr));
}

/* keyd's answer: ask dictd for the keys of every pair that waits. */
static void on_peers(int r, json_t *reply, void *ud)
{
	struct sensord *d = ud;
	json_t *list = json_object_get(reply, "peers"), *e = json_object_get(reply, "epoch");

	if (r == -ECANCELED)
		return;
	d->keyd_call = NULL;
	for (size_t i = 0; i < d->n_pairs; i++) {
		struct sensord_pair *p = &d->pairs[i];
		uint32_t index[PROTO_DICT_INDEX_MAX];
		json_t *row = NULL, *v, *ind;
		size_t j, n = 0;

		if (!p->want || p->call || p->pool == d->keyd_pool)
			continue;
		p->want = false;
		if (r < 0) {
			pair_failed(p, r, "keyd");
			continue;
		}
		if (!json_is_integer(e) || json_integer_value(e) != d->keyd_pool) {
			pair_failed(p, -EAGAIN, "keyd is on another pool");
			continue;
		}
		json_array_foreach(list, j, v)
		{
			const char *name = json_string_value(json_object_get(v, "name"));

			if (name && strcmp(name, p->peer) == 0)
				row = v;
		}
		ind = json_object_get(row, "indices");
		if (row == NULL || !json_is_array(ind) ||
		    json_array_size(ind) > PROTO_DICT_INDEX_MAX ||
		    json_array_size(ind) > PAIRWISE_KEYS_MAX) {
			pair_failed(p, -EHOSTUNREACH, "keyd does not know it (yet)");
			continue;
		}
		json_array_foreach(ind, j, v)
		{
			if (!json_is_integer(v) || json_integer_value(v) < 1 ||
			    json_integer_value(v) > UINT32_MAX)
				break;
			index[n++] = (uint32_t)json_integer_value(v);
		}
		if (n != json_array_size(ind)) {
			pair_failed(p, -EBADMSG, "keyd's indices");
			continue;
		}
		if (json_integer_value(json_object_get(row, "epoch")) != d->keyd_pool) {
			pair_failed(p, -EAGAIN, "it is not on our pool yet");
			continue;
		}
		if (n == 0 && !json_is_true(json_object_get(row, "path"))) {
			pair_failed(p, -ENOKEY, "it shares no ring key nor a path key with us");
			continue;
		}
		p->asked_pool = d->keyd_pool;
		p->n_keys = n;
		if (n == 0)
			index[0] = PATH_INDEX;
		r = n ? dictd_client_lookup(d->dictd, RING_RECORD, index, n, on_keys, p, &p->call)
		      : dictd_client_lookup(d->dictd, p->peer, index, 1, on_keys, p, &p->call);
		if (r < 0) {
			p->call = NULL;
			pair_failed(p, r, "dictd");
			r = 0; /* the next pairs may still ask */
		}
	}
}

void sensord_pairs_fetch(struct sensord *d)
{
	uint64_t now = clock_mono_ms();
	bool wanted = false;
	int r;

	if (d->keyd_call || !d->in_home || d->keyd_pool == 0)
		return;
	for (size_t i = 0; i < d->n_pairs; i++) {
		struct sensord_pair *p = &d->pairs[i];

		if (p->pool == d->keyd_pool || p->call)
			continue;
		if (p->failed_at && now - p->failed_at < PAIR_RETRY_MS)
			continue;
		p->want = wanted = true;
	}
	if (!wanted)
		return;
	if ((r = ctl_peer_call(d->keyd, PROTO_KEYD_PEERS, NULL, PAIR_CALL_TIMEOUT, on_peers, d,
			       &d->keyd_call)) < 0) {
		d->keyd_call = NULL;
		log_debug("keyd: %s (asking again)", iotsec_strerror(r));
	}
}

struct stream *sensord_pair_stream(struct sensord *d, const char *peer, bool send)
{
	struct sensord_pair *p = pair_find(d, peer, true);

	if (p == NULL)
		return NULL;
	if (p->pool == 0 || p->pool != d->keyd_pool) {
		sensord_pairs_fetch(d);
		return NULL;
	}
	return send ? p->send : p->recv;
}

void sensord_pairs_new_pool(struct sensord *d)
{
	for (size_t i = 0; i < d->n_pairs; i++) {
		struct sensord_pair *p = &d->pairs[i];

		if (p->pool != d->keyd_pool)
			pair_drop_keys(p), p->error = 0, p->failed_at = 0;
	}
	sensord_pairs_fetch(d);
}

void sensord_pairs_free(struct sensord *d)
{
	if (d->keyd_call)
		ctl_call_cancel(d->keyd_call);
	d->keyd_call = NULL;
	for (size_t i = 0; i < d->n_pairs; i++) {
		if (d->pairs[i].call)
			ctl_call_cancel(d->pairs[i].call);
		pair_drop_keys(&d->pairs[i]);
	}
	d->n_pairs = 0;
}
