/* The controller's side of keyd: the cycle of keyshare.h on links and timers, with dictd. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "keyd.h"
#include "keypool.h"
#include "log.h"
#include "stream.h"

struct keyd_controller {
	struct keyshare *ks;
	sd_event_source *collect;
	struct ctl_call *call; /* storing our ring, which cancels the other epochs */
	size_t devices;	       /* the home's size the pool was planned for */
	uint64_t started_ms;
	/* Left out by the rekey that made this pool (beside the quarantine), by index in
	 * ks->dev: taking a device off the quarantine does not bring these back. */
	bool left_out[KEYSHARE_DEVICES_MAX];
};

/* A ring on its way to a device (the link's data), until it confirms. */
struct keyd_delivery {
	struct keyd_link h;
	char name[CERT_NAME_MAX];
	uint64_t started_us; /* the round trip is logged: it is what a ring costs end to end */
};

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static uint64_t now_ms(void)
{
	return now_us() / 1000;
}

/* The stream epoch now under the home's schedule, at least 1: a group stream starts at e0 >= 1,
 * even on a clock from before the schedule. */
static uint32_t group_start_now(const struct iotsec_config *cfg)
{
	struct stream_schedule s = {.start = cfg->stream.start, .interval = cfg->stream.interval_s};
	uint32_t e = stream_epoch(&s, clock_now());

	return e ? e : 1;
}

static void ask(struct keyd *k, struct keyd_peer *p, const struct keyshare_device *d)
{
	struct keyshare *ks = k->ctl_state->ks;
	struct ring_needs needs = {.epoch = ks->epoch, .pool = ks->pool, .ring = ks->ring};
	struct lan_link *l;
	json_t *body = NULL;
	int r;

	needs.share = keyshare_share(ks, k->ctl_state->devices);
	if ((l = keyd_link_to(k, p)) == NULL)
		return;
	/* The device answers on this link, under the ask's id; the link closes once it has. */
	if ((r = ring_needs_build(&needs, &body)) < 0 ||
	    (r = lan_link_send(l, RING_MSG_NEEDS_KEYS, d->delivery, body, true)) < 0) {
		log_warnx("cannot ask %s for keys: %s", p->name, iotsec_strerror(r));
		lan_link_close(l);
	}
	json_decref(body);
}

/* The ring of d to p: its keys in batches, wrapped to p's certificate, then the end. The link
 * stays open for the confirmation. */
static void deliver(struct keyd *k, struct keyd_peer *p, struct keyshare_device *d)
{
	struct keyshare *ks = k->ctl_state->ks;
	EVP_PKEY *pub = X509_get0_pubkey(p->cert);
	struct ring_end end = {.epoch = ks->epoch, .pool = ks->pool, .start = ks->group_start};
	size_t per = ring_keys_per_msg(pub, 0), first = ring_keys_per_msg(pub, k->member->cert_len),
	       n;
	struct keyd_delivery *dl = NULL;
	struct ring_keys *batch = NULL;
	struct lan_link *l = NULL;
	json_t *body = NULL;
	int r = -ENOMEM;

	if (first == 0 || (r = keyshare_deliver(ks, d, now_ms())) < 0 ||
	    (batch = calloc(1, sizeof(*batch))) == NULL || (dl = calloc(1, sizeof(*dl))) == NULL ||
	    (l = keyd_link_to(k, p)) == NULL)
		goto out;
	dl->h.kind = KEYD_LINK_DELIVERY;
	dl->started_us = now_us();
	memcpy(dl->name, p->name, sizeof(dl->name));
	lan_link_set_data(l, dl, free);
	dl = NULL;
	/* The first piece carries our certificate, so fewer keys: the device may not know us
	 * yet. */
	for (size_t off = 0; r == 0 && off < d->n_ring; off += n) {
		n = off == 0 ? first : per;
		batch->epoch = ks->epoch;
		batch->n = n = d->n_ring - off < n ? d->n_ring - off : n;
		for (size_t i = 0; i < batch->n; i++) {
			batch->index[i] = d->ring[off + i];
			memcpy(batch->key[i], keyshare_key(ks, d->ring[off + i]), CRYPTO_KEY_LEN);
		}
		if ((r = ring_ring_keys_build(batch, ks->pool, pub, &body)) == 0)
			r = lan_link_send(l, RING_MSG_RING_KEYS, d->delivery, body, off == 0);
		json_decref(body);
		body = NULL;
	}
	end.count = (uint32_t)d->n_ring;
	memcpy(end.group, ks->group, sizeof(end.group));
	if (r == 0 && (r = ring_end_build(&end, pub, &body)) == 0)
		r = lan_link_send(l, RING_MSG_RING_END, d->delivery, body, false);
out:
	if (r < 0 || l == NULL) {
		log_warnx("cannot give %s its ring: %s", p->name,
			  iotsec_strerror(r < 0 ? r : -EHOSTUNREACH));
		if (l)
			lan_link_close(l);
	} else {
		log_info("gave %s a ring of %zu keys (epoch %u); waiting for its confirmation",
			 p->name, d->n_ring, ks->epoch);
	}
	crypto_wipe(&end, sizeof(end));
	ring_keys_wipe(batch);
	free(batch);
	free(dl);
	json_decref(body);
}

/* The epoch of our ring that p says it holds: its announced epoch if its indices are the ring
 * we gave it, 0 otherwise (it holds another ring, a controller's before us, say). */
static uint32_t held_of(const struct keyshare *ks, const struct keyshare_device *d,
			const struct keyd_peer *p)
{
	if (p->n_index == 0 || p->epoch != ks->epoch)
		return p->n_index ? p->epoch : 0;
	return d->n_ring == p->n_index &&
		       memcmp(d->ring, p->index, p->n_index * sizeof(p->index[0])) == 0
		   ? p->epoch
		   : 0;
}

/* The epoch of our next pool: above every epoch we used, and above the highest one a device
 * announces (only devices that may lead, with leaders_only) as long as every device holding a
 * ring can still take the pool: each takes one at most KEYSHARE_EPOCH_JUMP above its own. So one
 * device's word moves the home a jump at most, and never beyond a device at the home's epoch. */
static uint32_t pool_epoch(const struct keyd *k, bool leaders_only)
{
	uint32_t low = k->floor, top = 0;

	for (size_t i = 0; i < k->n_peers; i++)
		if (k->peers[i]->epoch && (low == 0 || k->peers[i]->epoch < low))
			low = k->peers[i]->epoch;
	for (size_t i = 0; i < k->n_peers; i++) {
		const struct keyd_peer *p = k->peers[i];

		if ((!leaders_only || (p->role & CERT_ROLE_CONTROLLER)) && p->epoch > top &&
		    p->epoch - low < KEYSHARE_EPOCH_JUMP)
			top = p->epoch;
	}
	return keyshare_next_epoch(k->floor, top);
}

/* A new pool above the one p announces, leaving out whom this one leaves out. */
static void catch_up(struct keyd *k, const struct keyd_peer *p)
{
	const struct keyshare *ks = k->ctl_state->ks;
	const char *left_out[KEYSHARE_DEVICES_MAX];
	size_t n = 0;

	log_notice("%s holds epoch %u, above ours (%u): a new pool above it", p->name, p->epoch,
		   ks->epoch);
	for (size_t i = 0; i < ks->n_dev; i++)
		if (k->ctl_state->left_out[i])
			left_out[n++] = ks->dev[i].name;
	keyd_controller_begin(k, left_out, n); /* the quarantine it leaves out by itself */
}

void keyd_controller_on_seen(struct keyd *k, struct keyd_peer *p)
{
	struct keyd_controller *c = k->ctl_state;
	struct keyshare_device *d = keyshare_device(c->ks, p->name);
	uint64_t now = now_ms();

	if (d == NULL || d->excluded)
		return;
	/* A device that may lead holds a pool above ours (it led while we could not be heard,
	 * say): start ours above it, or the home stays split between the two. Only from a device
	 * that can have made such a pool, once per electd.hold_ms (the pace at which the home may
	 * change hands) and never before a pool had time to reach every device: an insider
	 * announcing ever higher epochs makes the home rekey no faster than by taking the lead. */
	if (c->ks->state == KEYSHARE_READY && (p->role & CERT_ROLE_CONTROLLER) &&
	    p->epoch > c->ks->epoch && pool_epoch(k, true) > p->epoch &&
	    now >= c->started_ms + (uint64_t)k->cfg->electd.hold_ms &&
	    now >= c->started_ms + KEYD_DELIVER_MS) {
		catch_up(k, p); /* d is gone with the cycle it belonged to */
		return;
	}
	switch (keyshare_on_seen(c->ks, d, held_of(c->ks, d, p), now)) {
	case KEYSHARE_ASK:
		ask(k, p, d);
		break;
	case KEYSHARE_DELIVER:
		deliver(k, p, d);
		break;
	case KEYSHARE_NOTHING:
		break;
	}
}

static void every_device(struct keyd *k)
{
	for (size_t i = 0; k->ctl_state && i < k->n_peers; i++)
		keyd_controller_on_seen(k, k->peers[i]);
}

void keyd_controller_on_keys(struct keyd *k, struct lan_link *l, struct envelope_msg *m)
{
	struct keyd_controller *c = k->ctl_state;
	struct keyshare_device *d;
	struct ring_keys keys;
	int r;

	lan_link_finish(l);
	/* Late contributions are not an error: the pool is already whole. */
	if (c == NULL || c->ks->state != KEYSHARE_COLLECTING)
		return;
	/* Whether we asked this device, on this exchange, before any RSA unwrap: refusing what
	 * nobody asked for must cost no more than reading it. */
	if ((d = keyshare_device(c->ks, m->sender.name)) == NULL ||
	    !keyshare_may_contribute(c->ks, d, m->id)) {
		keyd_link_refuse(k, l, m, -IOTSEC_EUNASKED);
		return;
	}
	/* Asked before it was quarantined: nothing of it goes into the pool. */
	if (d->excluded) {
		log_info("keys from %s dropped: it is left out of this pool", d->name);
		return;
	}
	if ((r = ring_client_keys_parse(m->body, k->member->key, RING_KEYS_PER_MSG, &keys)) < 0 ||
	    (r = keyshare_on_keys(c->ks, d, &keys, keyshare_share(c->ks, c->devices))) < 0)
		keyd_link_refuse(k, l, m, r);
	ring_keys_wipe(&keys);
}

static void arm_collect(struct keyd *k)
{
	struct keyd_controller *c = k->ctl_state;

	sd_event_source_set_time_relative(c->collect, (uint64_t)k->cfg->keyd.collect_ms * 1000);
	sd_event_source_set_enabled(c->collect, SD_EVENT_ONESHOT);
}

/* Our ring could not be kept: collect again (keyshare_stored() forgot the contributions). */
static void build_failed(struct keyd *k, int r)
{
	struct keyd_controller *c = k->ctl_state;

	log_errx("cannot build the pool of epoch %u: %s; trying again", c->ks->epoch,
		 iotsec_strerror(r));
	keyshare_stored(c->ks, r);
	arm_collect(k);
	every_device(k);
}

/* Our ring is in dictd and every other epoch cancelled: the pool is ready to give out. */
static void on_stored(int r, void *userdata)
{
	struct keyd *k = userdata;
	struct keyd_controller *c = k->ctl_state;
	struct keyshare *ks;

	if (r == -ECANCELED)
		return;
	c->call = NULL;
	if (r < 0) {
		build_failed(k, r);
		return;
	}
	ks = c->ks;
	keyshare_stored(ks, 0);
	k->epoch = ks->epoch, k->pool = ks->pool, k->n_index = ks->ring;
	k->group_start = ks->group_start;
	memcpy(k->index, ks->own, ks->ring * sizeof(ks->own[0]));
	k->n_path = 0;
	log_notice("pool of epoch %u: %u keys (%zu contributed), rings of %u; group stream from "
		   "epoch %u",
		   ks->epoch, ks->pool, ks->contributed, ks->ring, ks->group_start);
	keyd_ring_changed(k);
	every_device(k);
}

/* The collection window closed: build the pool and keep our own ring in dictd. */
static int on_collected(sd_event_source *s, uint64_t usec, void *ud)
{
	struct keyd *k = ud;
	struct keyd_controller *c = k->ctl_state;
	struct keyshare *ks = c->ks;
	struct dictd_record *rec = NULL;
	int r;

	(void)s, (void)usec;
	keyd_peers_prune(k);
	if ((r = keyshare_build(ks, group_start_now(k->cfg))) < 0)
		goto out;
	r = -ENOMEM;
	if ((rec = calloc(ks->ring + 1, sizeof(*rec))) == NULL)
		goto out;
	for (size_t i = 0; i < ks->ring; i++)
		rec[i] = (struct dictd_record){KEYD_RING_RECORD, ks->own[i], ks->epoch,
					       keyshare_key(ks, ks->own[i]), 0};
	/* Our group root goes in with our ring, as every device's does. */
	rec[ks->ring] =
	    (struct dictd_record){KEYD_GROUP_RECORD, ks->group_start, ks->epoch, ks->group, 0};
	r = dictd_client_store(k->dict, rec, ks->ring + 1, true, on_stored, k, &c->call);
out:
	free(rec);
	if (r < 0) {
		c->call = NULL;
		if (ks->state == KEYSHARE_STORING)
			build_failed(k, r);
		else {
			log_errx("cannot build the pool of epoch %u: %s", ks->epoch,
				 iotsec_strerror(r));
			arm_collect(k);
		}
	}
	return 0;
}

int keyd_controller_begin(struct keyd *k, const char *const *exclude, size_t n)
{
	const struct iotsec_config *cfg = k->cfg;
	struct keyd_controller *c = NULL;
	struct keypool_plan plan;
	uint32_t epoch;
	int r;

	keyd_peers_prune(k);
	/* Nodes count too: a controller that missed pools (off while another led) must start
	 * above the rings the home holds, or every device refuses its pool as older. */
	if ((epoch = pool_epoch(k, false)) == 0) {
		log_errx("no pool: the epoch counter is exhausted");
		return -EOVERFLOW;
	}
	if ((r = keypool_plan((unsigned)(k->n_peers + 1 < 2 ? 2 : k->n_peers + 1),
			      cfg->keyd.target_permille / 1000.0, (unsigned)cfg->keyd.ring_size,
			      (unsigned)cfg->keyd.pool_size, &plan)) < 0) {
		log_errx("cannot size the pool (ring %d, pool %d): %s", cfg->keyd.ring_size,
			 cfg->keyd.pool_size, iotsec_strerror(r));
		return r;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (r = keyshare_new(epoch, plan.pool, plan.ring, KEYD_DELIVER_MS, &c->ks)) < 0 ||
	    (r = sd_event_add_time_relative(k->loop, &c->collect, CLOCK_MONOTONIC, 0, 0,
					    on_collected, k)) < 0) {
		r = c ? r : -ENOMEM;
		if (c)
			keyshare_free(c->ks);
		free(c);
		return r;
	}
	c->devices = k->n_peers + 1;
	c->started_ms = now_ms();
	for (size_t i = 0; i < n; i++) {
		struct keyshare_device *d = keyshare_device(c->ks, exclude[i]);

		if (d)
			d->excluded = c->left_out[d - c->ks->dev] = true;
	}
	/* Only now the cycle this one replaces goes (exclude may point into it): a pool that
	 * cannot be made leaves the current one in place. */
	keyd_controller_end(k);
	k->ctl_state = c;
	keyd_controller_quarantine(k);
	/* Before anything of this epoch goes out: a restart must go on above it. */
	k->floor = epoch;
	keyd_state_save(k);
	arm_collect(k);
	log_notice("controller: pool of epoch %u, %u keys, rings of %u (p_share %.3f), %zu "
		   "devices left out, %zu quarantined; collecting",
		   epoch, plan.pool, plan.ring, plan.p_share, n, k->quarantine.n);
	every_device(k);
	return 0;
}

struct keyshare *keyd_controller_pool(const struct keyd *k)
{
	return k->ctl_state ? k->ctl_state->ks : NULL;
}

void keyd_controller_quarantine(struct keyd *k)
{
	struct keyd_controller *c = k->ctl_state;
	struct keyshare_device *d;

	if (c == NULL)
		return;
	/* A record for a device not heard from yet, so that it is left out when it comes. */
	for (size_t i = 0; i < k->quarantine.n; i++)
		if ((d = keyshare_device(c->ks, k->quarantine.name[i])) != NULL)
			d->excluded = true;
	for (size_t i = 0; i < c->ks->n_dev; i++) {
		d = &c->ks->dev[i];
		if (d->excluded && !c->left_out[i] && !keyd_quarantined(k, d->name)) {
			/* Its next announcement asks it or gives it its ring. */
			d->excluded = false;
			log_info("%s is no longer left out of the pool of epoch %u", d->name,
				 c->ks->epoch);
		}
	}
}

void keyd_controller_end(struct keyd *k)
{
	struct keyd_controller *c = k->ctl_state;

	if (c == NULL)
		return;
	ctl_call_cancel(c->call);
	sd_event_source_disable_unref(c->collect);
	keyshare_free(c->ks);
	free(c);
	k->ctl_state = NULL;
}

/* The path key of a and b, to device `to` (wrapped to its certificate) on link l. */
static int send_path_key(struct keyd *k, struct lan_link *l, X509 *to, const char *peer,
			 const char *id, const uint8_t key[CRYPTO_KEY_LEN])
{
	struct ring_path_key p = {.epoch = k->ctl_state->ks->epoch};
	json_t *body = NULL;
	int r;

	snprintf(p.peer, sizeof(p.peer), "%s", peer);
	memcpy(p.key, key, CRYPTO_KEY_LEN);
	if ((r = ring_path_key_build(&p, X509_get0_pubkey(to), &body)) == 0)
		r = lan_link_send(l, RING_MSG_PATH_KEY, id, body, false);
	crypto_wipe(&p, sizeof(p));
	json_decref(body);
	return r;
}

struct own_path {
	struct keyd *k;
	uint32_t epoch;
	char peer[CERT_NAME_MAX];
};

static void on_own_path_stored(int r, void *userdata)
{
	struct own_path *o = userdata;

	if (r < 0 && r != -ECANCELED)
		log_warnx("cannot keep our path key for %s: %s", o->peer, iotsec_strerror(r));
	/* Held only once dictd has it, and only for the epoch we are still at. */
	if (r == 0 && o->epoch == o->k->epoch) {
		keyd_add_path(o->k, o->peer);
		keyd_state_save(o->k);
	}
	free(o);
}

/* d confirmed its ring: give it, and every confirmed device its ring shares no index with, the
 * key of the pair. We are one of those devices too. */
static void give_path_keys(struct keyd *k, struct lan_link *l, struct keyd_peer *p,
			   const struct keyshare_device *d)
{
	struct keyshare *ks = k->ctl_state->ks;
	uint32_t scratch[RING_SIZE_MAX];
	uint8_t key[CRYPTO_KEY_LEN];
	char id[ENVELOPE_ID_MAX + 1];
	struct own_path *o;

	if (ring_common(d->ring, d->n_ring, ks->own, ks->ring, scratch) == 0 &&
	    keyshare_path_key(ks->path_secret, ks->epoch, p->name, k->member->self.name, key) ==
		0 &&
	    send_path_key(k, l, p->cert, k->member->self.name, d->delivery, key) == 0 &&
	    (o = calloc(1, sizeof(*o))) != NULL) {
		*o = (struct own_path){.k = k, .epoch = ks->epoch};
		snprintf(o->peer, sizeof(o->peer), "%s", p->name);
		if (dictd_client_store(
			k->dict,
			&(struct dictd_record){p->name, KEYD_PATH_INDEX, ks->epoch, key, 0}, 1,
			false, on_own_path_stored, o, NULL) < 0)
			free(o);
	}
	for (size_t i = 0; i < ks->n_dev; i++) {
		const struct keyshare_device *e = &ks->dev[i];
		struct keyd_peer *q = keyd_peer_find(k, e->name);
		struct lan_link *ql;

		if (e == d || !e->confirmed || e->excluded || q == NULL ||
		    ring_common(d->ring, d->n_ring, e->ring, e->n_ring, scratch) > 0 ||
		    keyshare_path_key(ks->path_secret, ks->epoch, p->name, q->name, key) < 0)
			continue;
		send_path_key(k, l, p->cert, q->name, d->delivery, key);
		if ((ql = keyd_link_to(k, q)) != NULL) {
			if (envelope_new_id(id) < 0 ||
			    send_path_key(k, ql, q->cert, p->name, id, key) < 0)
				lan_link_close(ql);
			else
				lan_link_finish(ql);
		}
	}
	crypto_wipe(key, sizeof(key));
}

/* CLIENT_RING_ACK: the device holds its ring. */
void keyd_controller_on_ack(struct keyd *k, struct lan_link *l, struct envelope_msg *m)
{
	struct keyd_delivery *dl = lan_link_data(l);
	struct keyd_controller *c = k->ctl_state;
	struct keyshare_device *d;
	struct keyd_peer *p;
	uint32_t epoch;
	int r;

	if (c == NULL || dl == NULL || dl->h.kind != KEYD_LINK_DELIVERY ||
	    strcmp(dl->name, m->sender.name) != 0 ||
	    (d = keyshare_device(c->ks, dl->name)) == NULL ||
	    (p = keyd_peer_find(k, dl->name)) == NULL) {
		keyd_link_refuse(k, l, m, -EPROTO);
		return;
	}
	if ((r = ring_ack_parse(m->body, &epoch)) < 0 ||
	    (r = keyshare_on_ack(c->ks, d, epoch, m->id)) < 0) {
		keyd_link_refuse(k, l, m, r);
		return;
	}
	/* Quarantined while its ring was on its way: no path key on top of it. */
	if (d->excluded) {
		lan_link_finish(l);
		return;
	}
	/* From the first key wrapped to the ring stored (with its fsyncs) and confirmed. */
	log_info("%s confirmed its ring of epoch %u (%zu keys) in %.1f ms", p->name, epoch,
		 d->n_ring, (double)(now_us() - dl->started_us) / 1000);
	give_path_keys(k, l, p, d);
	lan_link_finish(l);
}
