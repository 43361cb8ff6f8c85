/* The controller's side of keyd: size the pool, collect the devices' contributions, consolidate
 * the pool, and give every device its ring and the path keys it needs (SPEC 5.3, 6). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "keyd.h"
#include "keypool.h"
#include "log.h"

struct keyd_pool {
	uint32_t epoch, size, ring;
	bool ready;
	sd_event_source *collect;
	uint8_t (*keys)[CRYPTO_KEY_LEN]; /* the pool: wiped when we stop being controller */
	size_t contributed, share;
	uint8_t path_secret[CRYPTO_KEY_LEN]; /* path keys of this epoch derive from it */
	uint8_t mix_secret[CRYPTO_KEY_LEN];  /* mixed into every contributed key */
};

static void send_needs(struct keyd *k, struct keyd_conn *c, struct keyd_peer *p)
{
	struct keyd_pool *ps = k->pool_state;
	size_t devices = k->n_peers + 1;
	struct ring_needs needs = {.epoch = ps->epoch, .pool = ps->size, .ring = ps->ring};
	json_t *body = NULL;

	needs.share = (uint32_t)(ps->size / devices ? ps->size / devices : 1);
	ps->share = needs.share;
	/* The controller's certificate travels here: the ring pieces after it carry only its
	 * fingerprint, to fit an envelope. */
	if (ring_needs_build(&needs, &body) == 0)
		keyd_conn_send(c, RING_MSG_NEEDS_KEYS, body, true);
	json_decref(body);
	p->asked = ps->epoch;
}

/* The key two devices with disjoint rings share, from this epoch's path secret. */
static int path_key(struct keyd_pool *ps, const char *a, const char *b, uint8_t out[CRYPTO_KEY_LEN])
{
	char info[2 * CERT_NAME_MAX + 16];
	int n = strcmp(a, b) < 0 ? snprintf(info, sizeof(info), "iotsec path %s %s", a, b)
				 : snprintf(info, sizeof(info), "iotsec path %s %s", b, a);

	return crypto_hkdf_sha256(NULL, 0, ps->path_secret, sizeof(ps->path_secret), info,
				  (size_t)n, out, CRYPTO_KEY_LEN);
}

static void send_path_key(struct keyd_conn *c, struct keyd_pool *ps, X509 *to, const char *peer,
			  const uint8_t key[CRYPTO_KEY_LEN])
{
	struct ring_path_key p = {.epoch = ps->epoch};
	json_t *body = NULL;

	snprintf(p.peer, sizeof(p.peer), "%s", peer);
	memcpy(p.key, key, CRYPTO_KEY_LEN);
	if (ring_path_key_build(&p, X509_get0_pubkey(to), &body) == 0)
		keyd_conn_send(c, RING_MSG_PATH_KEY, body, true);
	crypto_wipe(&p, sizeof(p));
	json_decref(body);
}

/* For every holder of this epoch's ring that shares no index with p, a path key to both. */
static void give_path_keys(struct keyd *k, struct keyd_conn *c, struct keyd_peer *p)
{
	struct keyd_pool *ps = k->pool_state;
	uint32_t scratch[RING_SIZE_MAX];
	uint8_t key[CRYPTO_KEY_LEN];

	if (ring_common(p->ring, p->n_ring, k->index, k->n_index, scratch) == 0 &&
	    path_key(ps, p->name, k->self.name, key) == 0) {
		send_path_key(c, ps, p->cert, k->self.name, key);
		keyd_dict_store(k, p->name, 0, ps->epoch, key);
	}
	for (size_t i = 0; i < k->n_peers; i++) {
		struct keyd_peer *q = k->peers[i];
		struct keyd_conn *qc;

		if (q == p || q->delivered != ps->epoch ||
		    ring_common(p->ring, p->n_ring, q->ring, q->n_ring, scratch) > 0 ||
		    path_key(ps, p->name, q->name, key) < 0)
			continue;
		send_path_key(c, ps, p->cert, q->name, key);
		if ((qc = keyd_conn_to(k, q)) != NULL) {
			send_path_key(qc, ps, q->cert, p->name, key);
			keyd_conn_finish(qc);
		}
	}
	crypto_wipe(key, sizeof(key));
}

static void deliver(struct keyd *k, struct keyd_peer *p)
{
	struct keyd_pool *ps = k->pool_state;
	EVP_PKEY *pub = X509_get0_pubkey(p->cert);
	size_t per = ring_keys_per_msg(pub);
	struct ring_end end = {.epoch = ps->epoch};
	struct ring_keys *batch = NULL;
	struct keyd_conn *c;
	json_t *body = NULL;

	if (per == 0 || ring_pick(ps->size, ps->ring, p->ring) < 0 ||
	    (batch = calloc(1, sizeof(*batch))) == NULL || (c = keyd_conn_to(k, p)) == NULL) {
		log_warnx("cannot give %s its ring", p->name);
		free(batch);
		return;
	}
	p->n_ring = ps->ring;
	send_needs(k, c, p);
	for (size_t off = 0; off < p->n_ring; off += per) {
		batch->epoch = ps->epoch;
		batch->n = p->n_ring - off < per ? p->n_ring - off : per;
		for (size_t i = 0; i < batch->n; i++) {
			batch->index[i] = p->ring[off + i];
			memcpy(batch->key[i], ps->keys[p->ring[off + i]], CRYPTO_KEY_LEN);
		}
		if (ring_ring_keys_build(batch, ps->size, pub, &body) == 0)
			keyd_conn_send(c, RING_MSG_RING_KEYS, body, false);
		json_decref(body);
		body = NULL;
	}
	ring_keys_wipe(batch);
	free(batch);
	end.count = (uint32_t)p->n_ring;
	if (ring_end_build(&end, &body) == 0)
		keyd_conn_send(c, RING_MSG_RING_END, body, false);
	json_decref(body);
	p->delivered = ps->epoch;
	give_path_keys(k, c, p);
	keyd_conn_finish(c);
	log_info("gave %s a ring of %zu keys (epoch %u)", p->name, p->n_ring, ps->epoch);
}

/* The collection window closed: consolidate the pool, take our own ring, give out the rest. */
static int on_collected(sd_event_source *s, uint64_t usec, void *ud)
{
	struct keyd *k = ud;
	struct keyd_pool *ps = k->pool_state;
	int r = 0;

	(void)s, (void)usec;
	keyd_peers_prune(k);
	/* A contributor knows the key it sent: what enters the pool is that key mixed with our
	 * secret, as unpredictable as the better of the two random sources. */
	if (ps->contributed > 0)
		r = crypto_random(ps->mix_secret, sizeof(ps->mix_secret));
	for (size_t i = 0; r == 0 && i < ps->contributed; i++) {
		uint8_t mixed[CRYPTO_KEY_LEN];
		char info[48];
		int n = snprintf(info, sizeof(info), "iotsec pool %u %zu", ps->epoch, i);

		r = crypto_hkdf_sha256(ps->mix_secret, sizeof(ps->mix_secret), ps->keys[i],
				       CRYPTO_KEY_LEN, info, (size_t)n, mixed, sizeof(mixed));
		memcpy(ps->keys[i], mixed, sizeof(mixed));
		crypto_wipe(mixed, sizeof(mixed));
	}
	crypto_wipe(ps->mix_secret, sizeof(ps->mix_secret));
	if (r == 0 && ps->contributed < ps->size)
		r = crypto_random(ps->keys[ps->contributed],
				  (ps->size - ps->contributed) * CRYPTO_KEY_LEN);
	if (r == 0)
		r = crypto_random(ps->path_secret, sizeof(ps->path_secret));
	if (r == 0)
		r = ring_pick(ps->size, ps->ring, k->index);
	for (size_t i = 0; r == 0 && i < ps->ring; i++)
		r = keyd_dict_store(k, KEYD_RING_RECORD, k->index[i], ps->epoch,
				    ps->keys[k->index[i]]);
	if (r == 0)
		r = keyd_dict_cancel_before(k, ps->epoch);
	if (r < 0) {
		log_errx("cannot build the pool of epoch %u: %s", ps->epoch, iotsec_strerror(r));
		return 0;
	}
	k->epoch = ps->epoch, k->pool = ps->size, k->n_index = ps->ring;
	ps->ready = true;
	log_notice("pool of epoch %u: %u keys (%zu contributed), rings of %u", ps->epoch, ps->size,
		   ps->contributed, ps->ring);
	for (size_t i = 0; i < k->n_peers; i++)
		deliver(k, k->peers[i]);
	keyd_announce(k);
	json_t *ev = keyd_status(k);
	if (ev)
		ctl_server_publish(k->ctl, "epoch-changed", ev);
	json_decref(ev);
	return 0;
}

void keyd_controller_begin(struct keyd *k)
{
	const struct iotsec_config *cfg = k->cfg;
	struct keyd_pool *ps;
	struct keypool_plan plan;
	uint32_t epoch = k->epoch;
	int r;

	if (k->pool_state)
		return;
	keyd_peers_prune(k);
	/* The next epoch follows the newest we know of from devices that may lead: a node could
	 * announce any number, and one near the top would stop all keying. */
	for (size_t i = 0; i < k->n_peers; i++)
		if ((k->peers[i]->role & CERT_ROLE_CONTROLLER) && k->peers[i]->epoch > epoch)
			epoch = k->peers[i]->epoch;
	if (epoch == RING_EPOCH_MAX) {
		log_errx("no pool: the epoch counter is exhausted");
		return;
	}
	if ((r = keypool_plan((unsigned)(k->n_peers + 1 < 2 ? 2 : k->n_peers + 1),
			      cfg->keyd.target_permille / 1000.0, (unsigned)cfg->keyd.ring_size,
			      (unsigned)cfg->keyd.pool_size, &plan)) < 0) {
		log_errx("cannot size the pool (ring %d, pool %d): %s", cfg->keyd.ring_size,
			 cfg->keyd.pool_size, iotsec_strerror(r));
		return;
	}
	if ((ps = calloc(1, sizeof(*ps))) == NULL ||
	    (ps->keys = calloc(plan.pool, CRYPTO_KEY_LEN)) == NULL) {
		free(ps);
		return;
	}
	ps->epoch = epoch + 1, ps->size = plan.pool, ps->ring = plan.ring;
	k->pool_state = ps;
	if (sd_event_add_time_relative(k->loop, &ps->collect, CLOCK_MONOTONIC,
				       (uint64_t)cfg->keyd.collect_ms * 1000, 0, on_collected,
				       k) < 0) {
		keyd_controller_end(k);
		return;
	}
	log_notice("controller: pool of epoch %u, %u keys, rings of %u (p_share %.3f); collecting",
		   ps->epoch, ps->size, ps->ring, plan.p_share);
	for (size_t i = 0; i < k->n_peers; i++)
		keyd_controller_on_announce(k, k->peers[i]);
}

void keyd_controller_end(struct keyd *k)
{
	struct keyd_pool *ps = k->pool_state;

	if (ps == NULL)
		return;
	sd_event_source_disable_unref(ps->collect);
	if (ps->keys)
		crypto_wipe(ps->keys, (size_t)ps->size * CRYPTO_KEY_LEN);
	free(ps->keys);
	crypto_wipe(ps, sizeof(*ps));
	free(ps);
	k->pool_state = NULL;
}

void keyd_controller_on_announce(struct keyd *k, struct keyd_peer *p)
{
	struct keyd_pool *ps = k->pool_state;
	struct keyd_conn *c;

	if (!ps->ready && p->asked != ps->epoch && (c = keyd_conn_to(k, p)) != NULL)
		send_needs(k, c, p); /* the reply comes back on this connection */
	else if (ps->ready && p->delivered != ps->epoch)
		deliver(k, p);
}

void keyd_controller_on_keys(struct keyd *k, struct keyd_conn *c, struct envelope_msg *m)
{
	struct keyd_pool *ps = k->pool_state;
	struct ring_keys keys;

	struct keyd_peer *p = keyd_peer_find(k, m->sender.name);
	size_t n;

	keyd_conn_finish(c);
	/* Late contributions are not an error: the pool is already whole. */
	if (ps == NULL || ps->ready)
		return;
	/* One contribution per device asked, of at most its share: no device fills the pool. */
	if (p == NULL || p->asked != ps->epoch || p->contributed == ps->epoch) {
		log_warnx("refused the keys %s contributed: not asked for, or sent twice",
			  m->sender.name);
		return;
	}
	if (ring_client_keys_parse(m->body, k->key, RING_KEYS_PER_MSG, &keys) < 0 ||
	    keys.epoch != ps->epoch) {
		log_warnx("refused the keys %s contributed: malformed or of another epoch",
			  m->sender.name);
		return;
	}
	p->contributed = ps->epoch;
	n = keys.n < ps->share ? keys.n : ps->share;
	for (size_t i = 0; i < n && ps->contributed < ps->size; i++)
		memcpy(ps->keys[ps->contributed++], keys.key[i], CRYPTO_KEY_LEN);
	log_debug("%s contributed %zu keys", m->sender.name, n);
	ring_keys_wipe(&keys);
}
