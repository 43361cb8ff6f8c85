/* What every device does with the controller's messages: contribute keys, take its ring (each
 * ring arrives on a link of its own, so a bad piece costs only that link), keep it in dictd,
 * confirm it, and keep the path keys it is given. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ca.h"
#include "keyd.h"
#include "log.h"

/* A ring arriving on a link (the link's data). */
struct keyd_intake {
	struct keyd_link h;
	struct keyd *k;
	struct intake in;
};

/* A whole ring on its way into dictd: at most one at a time. link is where the confirmation
 * goes; NULL once that link is gone (the ring is stored all the same). */
struct keyd_store {
	struct keyd *k;
	struct lan_link *link;
	struct ctl_call *call;
	struct intake in;
};

static void intake_free(void *p)
{
	struct keyd_intake *t = p;

	/* The store outlives the link it came on: it only loses the way to confirm. */
	if (t->k->storing && t->k->storing->link && lan_link_data(t->k->storing->link) == t)
		t->k->storing->link = NULL;
	intake_wipe(&t->in);
	free(t);
}

static void store_free(struct keyd_store *s)
{
	if (s->k->storing == s)
		s->k->storing = NULL;
	intake_wipe(&s->in);
	free(s);
}

void keyd_node_stop(struct keyd *k)
{
	ctl_call_cancel(k->check);
	if (k->storing) /* its callback frees it */
		ctl_call_cancel(k->storing->call);
}

/* CONTROLLER_NEEDS_KEYS: contribute fresh keys to the pool, wrapped to the controller. */
void keyd_on_needs(struct keyd *k, struct lan_link *l, struct envelope_msg *m)
{
	EVP_PKEY *pub = X509_get0_pubkey(m->cert);
	struct ring_needs needs;
	struct ring_keys keys = {0};
	json_t *body = NULL;
	size_t per = ring_keys_per_msg(pub, 0); /* the controller knows our certificate */
	int r;

	if ((r = ring_needs_parse(m->body, &needs)) < 0) {
		keyd_link_refuse(k, l, m, r);
		return;
	}
	keys.epoch = needs.epoch;
	keys.n = needs.share < per ? needs.share : per;
	if (keys.n == 0 || (r = crypto_random(keys.key, keys.n * CRYPTO_KEY_LEN)) < 0 ||
	    (r = ring_client_keys_build(&keys, pub, &body)) < 0 ||
	    (r = lan_link_send(l, RING_MSG_CLIENT_KEYS, m->id, body, false)) < 0)
		log_warnx("cannot contribute keys to %s: %s", m->sender.name, iotsec_strerror(r));
	lan_link_finish(l);
	ring_keys_wipe(&keys);
	json_decref(body);
}

/* How far the home has come, to judge a ring's epoch by: the highest we ever took. Before our
 * first, what the other devices announce, and the sender's own word only when no one else holds
 * a ring: a new device would otherwise take any epoch from a controller gone bad. */
static uint32_t home_epoch(const struct keyd *k, const char *sender)
{
	uint32_t others = 0, its = 0;

	if (k->floor)
		return k->floor;
	for (size_t i = 0; i < k->n_peers; i++) {
		const struct keyd_peer *p = k->peers[i];

		if (strcmp(p->name, sender) == 0)
			its = p->epoch;
		else if (p->epoch > others)
			others = p->epoch;
	}
	return others ? others : its;
}

/* CLIENT_RING_KEYS: one piece of a ring; it goes into this link's intake only. */
void keyd_on_ring_piece(struct keyd *k, struct lan_link *l, struct envelope_msg *m)
{
	struct keyd_intake *t = lan_link_data(l);
	struct ring_keys keys;
	int r;

	if (t != NULL && t->h.kind != KEYD_LINK_INTAKE) {
		keyd_link_refuse(k, l, m, -EPROTO);
		return;
	}
	if (t == NULL) {
		if ((t = calloc(1, sizeof(*t))) == NULL) {
			lan_link_close(l);
			return;
		}
		t->h.kind = KEYD_LINK_INTAKE, t->k = k;
		lan_link_set_data(l, t, intake_free);
	}
	/* The pool's size comes with the end: the indices are checked against it there. */
	if ((r = ring_ring_keys_parse(m->body, k->member->key, RING_POOL_MAX, RING_KEYS_PER_MSG,
				      &keys)) < 0 ||
	    (r = intake_piece(&t->in, m->id, k->epoch, home_epoch(k, m->sender.name), &keys)) < 0)
		keyd_link_refuse(k, l, m, r);
	ring_keys_wipe(&keys);
}

/* The ring is in dictd, and every other epoch cancelled: it is ours now. */
static void on_stored(int r, void *userdata)
{
	struct keyd_store *s = userdata;
	struct keyd *k = s->k;
	json_t *body = NULL;

	s->call = NULL;
	/* A newer ring may have been stored while this one went in (its store cancelled this
	 * one's epoch): then this one is history. */
	if (r == 0 && s->in.epoch < k->epoch)
		r = -IOTSEC_EEPOCH;
	if (r < 0) {
		if (r != -ECANCELED)
			log_warnx("cannot keep the ring of epoch %u in dictd: %s", s->in.epoch,
				  iotsec_strerror(r));
		store_free(s);
		return;
	}
	k->epoch = s->in.epoch, k->pool = s->in.pool, k->n_index = s->in.n;
	k->group_start = s->in.group_start;
	if (k->floor < k->epoch)
		k->floor = k->epoch;
	memcpy(k->index, s->in.index, s->in.n * sizeof(s->in.index[0]));
	k->n_path = 0; /* those of the other epochs are cancelled */
	log_notice("ring of %zu keys for epoch %u stored, group stream from epoch %u", k->n_index,
		   k->epoch, k->group_start);
	/* Only now does the controller count the ring as delivered. It closes the link, once it
	 * has sent the path keys we need on it. */
	if (s->link && ring_ack_build(k->epoch, &body) == 0)
		lan_link_send(s->link, RING_MSG_RING_ACK, s->in.id, body, false);
	json_decref(body);
	store_free(s);
	keyd_ring_changed(k);
}

/* CLIENT_RING_END: the ring is whole; into dictd with the group root, in one save, then confirm
 * it. */
void keyd_on_ring_end(struct keyd *k, struct lan_link *l, struct envelope_msg *m)
{
	struct keyd_intake *t = lan_link_data(l);
	struct dictd_record *rec = NULL;
	struct keyd_store *s = NULL;
	struct ring_end end = {0};
	int r = -EPROTO;

	if (t == NULL || t->h.kind != KEYD_LINK_INTAKE ||
	    (r = ring_end_parse(m->body, k->member->key, RING_SIZE_MAX, &end)) < 0 ||
	    (r = intake_end(&t->in, m->id, &end)) < 0) {
		crypto_wipe(&end, sizeof(end));
		keyd_link_refuse(k, l, m, r);
		return;
	}
	crypto_wipe(&end, sizeof(end));
	/* A ring of an earlier epoch than one stored since its first piece came is history. */
	if (t->in.epoch < k->epoch) {
		keyd_link_refuse(k, l, m, -IOTSEC_EEPOCH);
		return;
	}
	/* One ring at a time: the controller gives this one again if it is not confirmed. */
	if (k->storing) {
		log_debug("a ring from %s while another is being stored: dropped", m->sender.name);
		lan_link_close(l);
		return;
	}
	r = -ENOMEM;
	if ((s = calloc(1, sizeof(*s))) == NULL ||
	    (rec = calloc(t->in.n + 1, sizeof(*rec))) == NULL)
		goto out;
	s->k = k, s->link = l, s->in = t->in;
	for (size_t i = 0; i < s->in.n; i++)
		rec[i] = (struct dictd_record){KEYD_RING_RECORD, s->in.index[i], s->in.epoch,
					       s->in.key[i], 0};
	rec[s->in.n] = (struct dictd_record){KEYD_GROUP_RECORD, s->in.group_start, s->in.epoch,
					     s->in.group, 0};
	/* One save: the ring and the group root go in, every other epoch (and so the root of
	 * every other pool) goes out. */
	if ((r = dictd_client_store(k->dict, rec, s->in.n + 1, true, on_stored, s, &s->call)) < 0)
		goto out;
	k->storing = s;
	s = NULL;
out:
	if (r < 0) {
		log_warnx("cannot store the ring from %s: %s", m->sender.name, iotsec_strerror(r));
		lan_link_close(l);
	}
	if (s) {
		intake_wipe(&s->in);
		free(s);
	}
	free(rec);
	intake_wipe(&t->in);
}

struct path_store {
	struct keyd *k;
	uint32_t epoch;
	char peer[CERT_NAME_MAX];
};

static void on_path_stored(int r, void *userdata)
{
	struct path_store *p = userdata;

	if (r < 0 && r != -ECANCELED)
		log_warnx("cannot keep the path key for %s: %s", p->peer, iotsec_strerror(r));
	if (r == 0 && p->epoch == p->k->epoch) {
		log_info("path key for %s (epoch %u)", p->peer, p->epoch);
		keyd_add_path(p->k, p->peer);
		keyd_state_save(p->k);
	}
	free(p);
}

/* CONTROLLER_PATH_KEY: the key for a peer our ring shares nothing with, for our epoch only. */
void keyd_on_path_key(struct keyd *k, struct lan_link *l, struct envelope_msg *m)
{
	struct ring_path_key key;
	struct path_store *p = NULL;
	int r;

	if ((r = ring_path_key_parse(m->body, k->member->key, &key)) < 0) {
		keyd_link_refuse(k, l, m, r);
		return;
	}
	/* Path keys live under the peer's name: one that no device can have (our ring's record)
	 * or our own would overwrite what is not a path key. */
	if (!ca_name_valid(key.peer) || strcmp(key.peer, k->member->self.name) == 0) {
		keyd_link_refuse(k, l, m, -EBADMSG);
	} else if (key.epoch != k->epoch || k->epoch == 0) {
		keyd_link_refuse(k, l, m, -IOTSEC_EEPOCH);
	} else if (!keyd_has_path(k, key.peer) && (p = calloc(1, sizeof(*p))) != NULL) {
		/* (One we hold is in dictd already: an epoch has one path key a pair.) */
		p->k = k, p->epoch = key.epoch;
		memcpy(p->peer, key.peer, sizeof(p->peer));
		r = dictd_client_store(
		    k->dict,
		    &(struct dictd_record){key.peer, KEYD_PATH_INDEX, key.epoch, key.key, 0}, 1,
		    false, on_path_stored, p, NULL);
		if (r < 0) {
			log_warnx("cannot keep the path key for %s: %s", key.peer,
				  iotsec_strerror(r));
			free(p);
		}
	}
	crypto_wipe(&key, sizeof(key));
}

static void on_checked(int r, size_t present, void *userdata)
{
	struct keyd *k = userdata;

	if (r == -ECANCELED)
		return;
	k->check = NULL;
	if (r < 0) {
		log_debug("cannot ask dictd for our ring: %s", iotsec_strerror(r));
		return;
	}
	k->ring_checked = true;
	/* The group root went in with the ring, in the same save: a ring without one was kept by a
	 * keyd from before the group root, and counts as lost too. */
	if (present == k->n_index && k->group_start != 0)
		return;
	/* dictd lost it (a new dictionary?): announce none, and the controller gives it again. */
	if (k->group_start == 0)
		log_warnx("our ring of epoch %u came without a group root: asking for it again",
			  k->epoch);
	else
		log_warnx("dictd holds %zu of the %zu keys of our ring: asking for it again",
			  present, k->n_index);
	k->n_index = 0;
	k->group_start = 0;
	k->n_path = 0;
	keyd_state_save(k);
	keyd_announce(k);
}

void keyd_check_ring(struct keyd *k)
{
	if (k->ring_checked || k->n_index == 0 || k->check != NULL)
		return;
	if (dictd_client_has(k->dict, KEYD_RING_RECORD, k->index, k->n_index, on_checked, k,
			     &k->check) < 0)
		k->check = NULL; /* dictd is not there yet: the next announcement asks again */
}
