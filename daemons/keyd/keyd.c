/* keyd's state, its control verbs, and the two daemons it follows (certd, electd). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "crypto.h"
#include "daemon.h"
#include "file.h"
#include "keyd.h"
#include "log.h"
#include "proto.h"

#define STATE_MAX (64 * 1024)

/* Which roles may send what, and which messages name their recipient: the controller's need a
 * controller certificate. */
static const struct envelope_rule rules[] = {
    {KEYD_MSG_ANNOUNCE, CERT_ROLES_ANY, false, false},
    {RING_MSG_NEEDS_KEYS, CERT_ROLE_CONTROLLER, true, false},
    {RING_MSG_RING_KEYS, CERT_ROLE_CONTROLLER, true, false},
    {RING_MSG_RING_END, CERT_ROLE_CONTROLLER, true, false},
    {RING_MSG_PATH_KEY, CERT_ROLE_CONTROLLER, true, false},
    {RING_MSG_CLIENT_KEYS, CERT_ROLES_ANY, true, false},
    {RING_MSG_RING_ACK, CERT_ROLES_ANY, true, false},
    {RING_MSG_START_SESSION, CERT_ROLES_ANY, true, false},
    {RING_MSG_COMMON_INDEX, CERT_ROLES_ANY, true, false},
    {SESSION_MSG_DATA, CERT_ROLES_ANY, true, false},
    {NULL, 0, false, false},
};

json_t *keyd_status(struct keyd *k)
{
	json_t *o =
	    json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "daemon", "keyd",
		      "device", k->member->self.name, "role", k->ctl_state ? "controller" : "node",
		      "controller", k->controller, "epoch", (json_int_t)k->epoch, "ring_size",
		      (json_int_t)k->n_index, "pool", (json_int_t)k->pool, "group_start",
		      (json_int_t)k->group_start, "peers", (json_int_t)k->n_peers, "sent",
		      (json_int_t)k->sent, "received", (json_int_t)k->n_inbox);

	if (o && json_object_set_new(o, "quarantine", keyd_quarantine_json(&k->quarantine)) < 0) {
		json_decref(o);
		o = NULL;
	}
	if (o && lan_member_status(k->member, o) < 0) {
		json_decref(o);
		o = NULL;
	}
	return o;
}

bool keyd_has_path(const struct keyd *k, const char *peer)
{
	for (size_t i = 0; i < k->n_path; i++)
		if (strcmp(k->path[i], peer) == 0)
			return true;
	return false;
}

void keyd_add_path(struct keyd *k, const char *peer)
{
	if (keyd_has_path(k, peer) || k->n_path == KEYD_PEERS_MAX)
		return;
	snprintf(k->path[k->n_path++], CERT_NAME_MAX, "%s", peer);
}

/* ---- the state file ---- */

static int state_path(const struct keyd *k, char *out, size_t len)
{
	int n = snprintf(out, len, "%s/keyd/%s", k->cfg->device.state_dir, KEYD_STATE_FILE);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

void keyd_state_save(struct keyd *k)
{
	json_t *o =
	    json_pack("{s:I, s:I, s:I, s:I, s:[], s:[], s:o}", "floor", (json_int_t)k->floor,
		      "epoch", (json_int_t)k->epoch, "pool", (json_int_t)k->pool, "group_start",
		      (json_int_t)k->group_start, "indices", "path", "quarantine",
		      keyd_quarantine_json(&k->quarantine));
	char path[PATH_MAX], *text = NULL;
	int r = -ENOMEM;

	for (size_t i = 0; o && i < k->n_index; i++)
		json_array_append_new(json_object_get(o, "indices"), json_integer(k->index[i]));
	for (size_t i = 0; o && i < k->n_path; i++)
		json_array_append_new(json_object_get(o, "path"), json_string(k->path[i]));
	if (o && (text = json_dumps(o, JSON_COMPACT)) != NULL &&
	    (r = state_path(k, path, sizeof(path))) == 0)
		r = file_write_atomic(path, text, strlen(text), 0600);
	if (r < 0)
		log_warnx("cannot save %s in %s: %s", KEYD_STATE_FILE, k->cfg->device.state_dir,
			  iotsec_strerror(r));
	free(text);
	json_decref(o);
}

/* Read back what keyd_state_save() wrote. A missing file is a first start; a damaged one is
 * an error, never a reason to start over at epoch 1. A file without "quarantine" (written before
 * keyd kept one) has none; one without "group_start" (before the group root) has no group root,
 * and its ring is asked for again (keyd_check_ring()). */
static int state_load(struct keyd *k)
{
	char path[PATH_MAX], *text = NULL;
	json_t *o = NULL, *v, *indices, *names, *quarantine, *group;
	struct ring_indices *x = NULL;
	char why[128];
	size_t len, i;
	int r;

	if ((r = state_path(k, path, sizeof(path))) < 0)
		return r;
	if ((r = file_read(path, STATE_MAX, &text, &len)) == -ENOENT)
		return 0;
	if (r < 0)
		goto out;
	r = -EBADMSG;
	o = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
	indices = json_object_get(o, "indices");
	names = json_object_get(o, "path");
	quarantine = json_object_get(o, "quarantine");
	group = json_object_get(o, "group_start");
	if (!json_is_integer(json_object_get(o, "floor")) || !json_is_array(names) ||
	    (group && (!json_is_integer(group) || json_integer_value(group) < 0 ||
		       json_integer_value(group) > UINT32_MAX)) ||
	    json_array_size(names) > KEYD_PEERS_MAX ||
	    (quarantine &&
	     keyd_quarantine_parse(quarantine, &k->quarantine, why, sizeof(why)) < 0) ||
	    (x = calloc(1, sizeof(*x))) == NULL)
		goto out;
	k->floor = (uint32_t)json_integer_value(json_object_get(o, "floor"));
	/* The ring, as its announcement carries it: epoch, pool and indices checked alike. */
	if (json_array_size(indices) > 0) {
		json_t *ring = json_pack("{s:O, s:O}", "epoch", json_object_get(o, "epoch"),
					 "indices", indices);
		json_t *pool = json_object_get(o, "pool");

		if (ring == NULL || !json_is_integer(pool) || json_integer_value(pool) < 1 ||
		    json_integer_value(pool) > RING_POOL_MAX ||
		    ring_start_parse(ring, (uint32_t)json_integer_value(pool), RING_SIZE_MAX, x) <
			0) {
			json_decref(ring);
			goto out;
		}
		json_decref(ring);
		k->epoch = x->epoch, k->pool = (uint32_t)json_integer_value(pool);
		k->group_start = (uint32_t)json_integer_value(group); /* 0 when absent */
		k->n_index = x->n;
		memcpy(k->index, x->index, x->n * sizeof(x->index[0]));
	}
	json_array_foreach(names, i, v)
	{
		if (json_is_string(v) && json_string_length(v) < CERT_NAME_MAX)
			keyd_add_path(k, json_string_value(v));
	}
	if (k->floor < k->epoch)
		k->floor = k->epoch;
	r = 0;
out:
	if (r < 0)
		log_errx("%s: %s", path, r == -EBADMSG ? "damaged" : iotsec_strerror(r));
	free(x);
	free(text);
	json_decref(o);
	return r;
}

void keyd_ring_changed(struct keyd *k)
{
	json_t *ev = keyd_status(k);

	keyd_state_save(k);
	if (ev && k->ctl)
		ctl_server_publish(k->ctl, PROTO_EV_EPOCH, ev);
	json_decref(ev);
	keyd_announce(k);
}

/* ---- verbs ---- */

static int verb_status(json_t *req, json_t **ret, void *ud)
{
	(void)req;
	*ret = keyd_status(ud);
	return *ret ? 0 : -ENOMEM;
}

/* The devices we know and what key we share with each; never a key itself. */
static int verb_peers(json_t *req, json_t **ret, void *ud)
{
	struct keyd *k = ud;
	json_t *list = json_array();

	(void)req;
	for (size_t i = 0; list && i < k->n_peers; i++) {
		struct keyd_peer *p = k->peers[i];
		uint32_t common[RING_SIZE_MAX];
		size_t n = ring_common(k->index, k->n_index, p->index, p->n_index, common);
		const char *kind = keyd_pairwise_kind(k, p);
		json_t *indices = json_array();

		/* Indices of another epoch's ring name no key we hold. */
		for (size_t j = 0; indices && p->epoch == k->epoch && j < n; j++)
			json_array_append_new(indices, json_integer(common[j]));
		json_array_append_new(list, json_pack("{s:s, s:s, s:I, s:I, s:s, s:o, s:b}", "name",
						      p->name, "role", cert_role_name(p->role),
						      "epoch", (json_int_t)p->epoch, "shared",
						      (json_int_t)n, "pairwise", kind, "indices",
						      indices, "path", strcmp(kind, "path") == 0));
	}
	*ret = json_pack("{s:I, s:o}", "epoch", (json_int_t)k->epoch, "peers", list);
	return *ret ? 0 : -ENOMEM;
}

static int verb_send(json_t *req, json_t **ret, void *ud)
{
	const char *peer = json_string_value(json_object_get(req, "peer"));
	const char *text = json_string_value(json_object_get(req, "text"));

	(void)ret;
	if (peer == NULL || text == NULL)
		return -EINVAL;
	return keyd_talk_send(ud, peer, text);
}

/* Messages received: private to the device's owner. */
static int verb_inbox(json_t *req, json_t **ret, void *ud)
{
	struct keyd *k = ud;
	json_t *list = json_array();
	size_t n = k->n_inbox < KEYD_INBOX_MAX ? k->n_inbox : KEYD_INBOX_MAX;

	(void)req;
	for (size_t i = k->n_inbox - n; list && i < k->n_inbox; i++) {
		size_t s = i % KEYD_INBOX_MAX;

		json_array_append_new(list, json_pack("{s:s, s:s, s:I}", "from", k->inbox[s].from,
						      "text", k->inbox[s].text, "at",
						      (json_int_t)k->inbox[s].at));
	}
	*ret = json_pack("{s:o}", "messages", list);
	return *ret ? 0 : -ENOMEM;
}

/* {"exclude":[names]}: a new pool now, without those devices (for pingd, and the
 * administrator). */
static int verb_rekey(json_t *req, json_t **ret, void *ud)
{
	struct keyd *k = ud;
	json_t *list = json_object_get(req, "exclude"), *v;
	const char *names[KEYD_PEERS_MAX];
	size_t i, n = 0;
	int r;

	if (list && (!json_is_array(list) || json_array_size(list) > KEYD_PEERS_MAX))
		return -EINVAL;
	json_array_foreach(list, i, v)
	{
		if (!json_is_string(v) || json_string_length(v) == 0 ||
		    json_string_length(v) >= CERT_NAME_MAX)
			return -EINVAL;
		names[n++] = json_string_value(v);
	}
	if (k->ctl_state == NULL) {
		/* Only the controller makes pools: say which device to ask. */
		char why[CERT_NAME_MAX + 64];

		if (strcmp(k->controller, k->member->self.name) == 0)
			snprintf(why, sizeof(why), "not the controller (out of the home)");
		else
			snprintf(why, sizeof(why), "not the controller (%s%s)",
				 k->controller[0] ? "the controller is " : "no controller yet",
				 k->controller);
		*ret = json_pack("{s:s}", "error", why);
		return -EOPNOTSUPP;
	}
	if ((r = keyd_controller_begin(k, names, n)) < 0)
		return r;
	*ret = json_pack("{s:I}", "epoch", (json_int_t)k->floor);
	return *ret ? 0 : -ENOMEM;
}

/* {"names":[...]}: the quarantine, replacing the one before (pingd's, kept on every device). */
static int verb_quarantine(json_t *req, json_t **ret, void *ud)
{
	struct keyd_quarantine *q = malloc(sizeof(*q));
	char why[128];
	int r;

	if (q == NULL)
		return -ENOMEM;
	if ((r = keyd_quarantine_parse(json_object_get(req, "names"), q, why, sizeof(why))) < 0)
		*ret = json_pack("{s:s}", "error", why);
	else
		keyd_quarantine_set(ud, q);
	free(q);
	return r;
}

/* One verb a line: clang-format would pack these short rows into columns. */
/* clang-format off */
const struct ctl_verb keyd_verbs[] = {
    {PROTO_STATUS, 0, verb_status},
    {PROTO_KEYD_PEERS, 0, verb_peers},
    {PROTO_KEYD_SEND, CTL_MUTATES, verb_send},
    {PROTO_KEYD_INBOX, CTL_MUTATES, verb_inbox},
    {PROTO_KEYD_REKEY, CTL_CONTROLS, verb_rekey},
    {PROTO_KEYD_QUARANTINE, CTL_CONTROLS, verb_quarantine},
    {NULL, 0, NULL},
};
/* clang-format on */

/* ---- the daemons we follow ---- */

/* Our role follows electd, and only while certd says we are in the home. */
static void update_role(struct keyd *k)
{
	if (k->in_home && strcmp(k->controller, k->member->self.name) == 0) {
		if (k->ctl_state == NULL)
			keyd_controller_begin(k, NULL, 0);
	} else {
		keyd_controller_end(k);
	}
}

static void on_electd(const char *controller, void *ud)
{
	struct keyd *k = ud;

	snprintf(k->controller, sizeof(k->controller), "%s", controller);
	update_role(k);
}

static void on_certd(bool member, const char *why, void *ud)
{
	struct keyd *k = ud;

	log_info("%s: %s", member ? "in the home" : "out of the home", why);
	k->in_home = member;
	if (member)
		keyd_check_ring(k);
	update_role(k);
}

static int on_announce(sd_event_source *s, uint64_t usec, void *ud)
{
	(void)s, (void)usec;
	keyd_announce(ud);
	return 0;
}

int keyd_start(struct keyd *k, const struct iotsec_config *cfg, sd_event *loop)
{
	uint16_t port = (uint16_t)(cfg->net.port + 1);
	const char *what = NULL;
	int r;

	k->cfg = cfg, k->loop = loop;
	if ((r = lan_member_load(cfg, rules, &k->member, &what)) < 0) {
		log_errx("%s: %s", what, iotsec_strerror(r));
		return r;
	}
	if ((r = state_load(k)) < 0)
		return r;
	if ((r = lan_udp_open(loop, k->member, port, cfg->net.broadcast, keyd_on_datagram, k,
			      &k->udp)) < 0 ||
	    (r = lan_tcp_open(loop, k->member, port, keyd_on_link, k, &k->tcp)) < 0) {
		log_errx("port %u: %s", port, iotsec_strerror(r));
		return r;
	}
	if ((r = dictd_client_new(loop, cfg->device.run_dir, &k->dict)) < 0 ||
	    (r = electd_client_new(loop, cfg->device.run_dir, on_electd, k, &k->electd)) < 0 ||
	    (r = certd_client_new(loop, cfg->device.run_dir, on_certd, k, &k->certd)) < 0 ||
	    (r = certd_client_signs_with(k->certd, cfg->device.cert, k->member->self.serial)) < 0 ||
	    (r = daemon_add_periodic(loop, (uint64_t)cfg->keyd.announce_ms * 1000, on_announce, k,
				     &k->announce)) < 0) {
		log_errx("cannot start: %s", iotsec_strerror(r));
		return r;
	}
	log_info("device %s (%s) on port %u, epoch %u; waiting for certd and electd",
		 k->member->self.name, cert_role_name(k->member->self.role), port, k->epoch);
	return 0;
}

void keyd_stop(struct keyd *k)
{
	keyd_controller_end(k);
	keyd_node_stop(k);
	lan_tcp_free(k->tcp); /* first: links cancel what they wait for */
	lan_udp_free(k->udp);
	electd_client_free(k->electd);
	certd_client_free(k->certd);
	dictd_client_free(k->dict);
	sd_event_source_disable_unref(k->announce);
	keyd_peers_free(k);
	lan_member_free(k->member);
	crypto_wipe(k->inbox, sizeof(k->inbox));
}
