/* What every device does with the messages it receives over TCP: contribute keys, take its ring
 * and path keys from the controller, and answer pairwise sessions. */
#include <errno.h>
#include <string.h>

#include "keyd.h"
#include "log.h"

static bool from_controller(struct keyd *k, struct keyd_conn *c, const struct envelope_msg *m)
{
	if (strcmp(m->sender.name, k->controller) == 0)
		return true;
	/* A valid controller certificate that is not the elected controller: not our controller. */
	log_warnx("ignoring %s from %s: the controller is '%s'", m->type, m->sender.name,
		  k->controller);
	keyd_conn_finish(c);
	return false;
}

/* CONTROLLER_NEEDS_KEYS: contribute fresh keys to the pool, wrapped to the controller. */
static void on_needs(struct keyd *k, struct keyd_conn *c, struct envelope_msg *m)
{
	EVP_PKEY *pub = X509_get0_pubkey(m->cert);
	struct ring_needs needs;
	struct ring_keys keys = {0};
	json_t *body = NULL;

	if (ring_needs_parse(m->body, &needs) < 0) {
		log_warnx("malformed %s from %s", m->type, m->sender.name);
		keyd_conn_finish(c);
		return;
	}
	if (needs.epoch != k->incoming.epoch) {
		crypto_wipe(&k->incoming, sizeof(k->incoming));
		k->incoming.epoch = needs.epoch;
	}
	k->pool = needs.pool;
	keys.epoch = needs.epoch;
	keys.n = needs.share < ring_keys_per_msg(pub) ? needs.share : ring_keys_per_msg(pub);
	if (keys.n > 0 && crypto_random(keys.key, keys.n * CRYPTO_KEY_LEN) == 0 &&
	    ring_client_keys_build(&keys, pub, &body) == 0)
		keyd_conn_send(c, RING_MSG_CLIENT_KEYS, body, false);
	ring_keys_wipe(&keys);
	json_decref(body);
}

/* CLIENT_RING_KEYS: one piece of our ring; indices ascend across pieces too. */
static void on_ring_keys(struct keyd *k, struct keyd_conn *c, struct envelope_msg *m)
{
	struct ring_keys keys;
	size_t n = k->incoming.n;

	if (k->pool == 0 ||
	    ring_ring_keys_parse(m->body, k->key, k->pool, RING_KEYS_PER_MSG, &keys) < 0 ||
	    keys.epoch != k->incoming.epoch || n + keys.n > RING_SIZE_MAX ||
	    (n > 0 && keys.index[0] <= k->incoming.index[n - 1])) {
		log_warnx("refused a ring piece from %s: malformed or out of order",
			  m->sender.name);
		crypto_wipe(&k->incoming, sizeof(k->incoming));
		keyd_conn_finish(c);
		return;
	}
	memcpy(k->incoming.index + n, keys.index, keys.n * sizeof(keys.index[0]));
	memcpy(k->incoming.key + n, keys.key, keys.n * CRYPTO_KEY_LEN);
	k->incoming.n += keys.n;
	ring_keys_wipe(&keys);
}

/* CLIENT_RING_END: the ring is whole; keep it in dictd and cancel the previous epoch. */
static void on_ring_end(struct keyd *k, struct keyd_conn *c, struct envelope_msg *m)
{
	struct ring_end end;
	int r = 0;

	if (ring_end_parse(m->body, RING_SIZE_MAX, &end) < 0 || end.epoch != k->incoming.epoch ||
	    end.count != k->incoming.n) {
		log_warnx("refused the end of a ring from %s: %zu keys received", m->sender.name,
			  k->incoming.n);
		crypto_wipe(&k->incoming, sizeof(k->incoming));
		keyd_conn_finish(c);
		return;
	}
	for (size_t i = 0; i < k->incoming.n && r == 0; i++)
		r = keyd_dict_store(k, KEYD_RING_RECORD, k->incoming.index[i], end.epoch,
				    k->incoming.key[i]);
	if (r == 0)
		r = keyd_dict_cancel_before(k, end.epoch);
	if (r < 0) {
		log_warnx("cannot keep the ring of epoch %u in dictd: %s", end.epoch,
			  iotsec_strerror(r));
	} else {
		k->epoch = end.epoch;
		k->n_index = k->incoming.n;
		memcpy(k->index, k->incoming.index, k->n_index * sizeof(k->index[0]));
		log_notice("ring of %zu keys for epoch %u from %s", k->n_index, k->epoch,
			   m->sender.name);
		json_t *ev = keyd_status(k);
		if (ev)
			ctl_server_publish(k->ctl, "epoch-changed", ev);
		json_decref(ev);
		keyd_announce(k);
	}
	crypto_wipe(&k->incoming.key, sizeof(k->incoming.key));
	k->incoming.n = 0;
}

/* CONTROLLER_PATH_KEY: the key for a peer our ring shares nothing with. */
static void on_path_key(struct keyd *k, struct keyd_conn *c, struct envelope_msg *m)
{
	struct ring_path_key p;
	int r;

	if (ring_path_key_parse(m->body, k->key, &p) < 0) {
		log_warnx("malformed %s from %s", m->type, m->sender.name);
		keyd_conn_finish(c);
		return;
	}
	if ((r = keyd_dict_store(k, p.peer, 0, p.epoch, p.key)) < 0)
		log_warnx("cannot keep the path key for %s: %s", p.peer, iotsec_strerror(r));
	else
		log_info("path key for %s (epoch %u)", p.peer, p.epoch);
	crypto_wipe(&p, sizeof(p));
}

void keyd_on_message(struct keyd *k, struct keyd_conn *c, struct envelope_msg *m)
{
	const char *t = m->type;

	if (!k->cert_ok) {
		keyd_conn_finish(c); /* out of the home: we speak for nobody */
		return;
	}
	if (strcmp(t, RING_MSG_NEEDS_KEYS) == 0 && from_controller(k, c, m))
		on_needs(k, c, m);
	else if (strcmp(t, RING_MSG_RING_KEYS) == 0 && from_controller(k, c, m))
		on_ring_keys(k, c, m);
	else if (strcmp(t, RING_MSG_RING_END) == 0 && from_controller(k, c, m))
		on_ring_end(k, c, m);
	else if (strcmp(t, RING_MSG_PATH_KEY) == 0 && from_controller(k, c, m))
		on_path_key(k, c, m);
	else if (strcmp(t, RING_MSG_CLIENT_KEYS) == 0)
		keyd_controller_on_keys(k, c, m);
	else if (strcmp(t, RING_MSG_START_SESSION) == 0)
		keyd_session_on_start(k, c, m);
	else if (strcmp(t, RING_MSG_COMMON_INDEX) == 0)
		keyd_session_on_common(k, c, m);
	else if (strcmp(t, KEYD_MSG_DATA) == 0)
		keyd_session_on_data(k, c, m);
}
