/* keyd's state, its control verbs, and the two daemons it follows (electd, certd). */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "daemon.h"
#include "file.h"
#include "keyd.h"
#include "log.h"

/* Which roles may send what: the controller's messages need a controller certificate. */
static const struct envelope_rule rules[] = {
    {KEYD_MSG_ANNOUNCE, CERT_ROLES_ANY},
    {RING_MSG_NEEDS_KEYS, CERT_ROLE_CONTROLLER},
    {RING_MSG_RING_KEYS, CERT_ROLE_CONTROLLER},
    {RING_MSG_RING_END, CERT_ROLE_CONTROLLER},
    {RING_MSG_PATH_KEY, CERT_ROLE_CONTROLLER},
    {RING_MSG_CLIENT_KEYS, CERT_ROLES_ANY},
    {RING_MSG_START_SESSION, CERT_ROLES_ANY},
    {RING_MSG_COMMON_INDEX, CERT_ROLES_ANY},
    {KEYD_MSG_DATA, CERT_ROLES_ANY},
    {NULL, 0},
};

json_t *keyd_status(struct keyd *k)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "daemon",
			 "keyd", "device", k->self.name, "role",
			 k->pool_state ? "controller" : "node", "controller", k->controller,
			 "epoch", (json_int_t)k->epoch, "ring_size", (json_int_t)k->n_index, "pool",
			 (json_int_t)k->pool, "peers", (json_int_t)k->n_peers, "sent",
			 (json_int_t)k->sent, "received", (json_int_t)k->n_inbox, "refused",
			 (json_int_t)k->refused.total);
}

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
		uint32_t scratch[RING_SIZE_MAX];

		json_array_append_new(
		    list,
		    json_pack("{s:s, s:s, s:I, s:I, s:s}", "name", p->name, "role",
			      cert_role_name(p->role), "epoch", (json_int_t)p->epoch, "shared",
			      (json_int_t)ring_common(k->index, k->n_index, p->index, p->n_index,
						      scratch),
			      "pairwise", keyd_pairwise_kind(k, p)));
	}
	*ret = json_pack("{s:o}", "peers", list);
	return *ret ? 0 : -ENOMEM;
}

static int verb_send(json_t *req, json_t **ret, void *ud)
{
	const char *peer = json_string_value(json_object_get(req, "peer"));
	const char *text = json_string_value(json_object_get(req, "text"));

	(void)ret;
	if (peer == NULL || text == NULL)
		return -EINVAL;
	return keyd_session_send(ud, peer, text);
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

/* One verb a line: clang-format would pack these short rows into columns. */
/* clang-format off */
const struct ctl_verb keyd_verbs[] = {
    {"status", 0, verb_status},
    {"peers", 0, verb_peers},
    {"send", CTL_MUTATES, verb_send},
    {"inbox", CTL_MUTATES, verb_inbox},
    {NULL, 0, NULL},
};
/* clang-format on */

/* Our role follows electd, and only while certd says the certificate is valid. */
static void update_role(struct keyd *k)
{
	if (k->cert_ok && strcmp(k->controller, k->self.name) == 0)
		keyd_controller_begin(k);
	else
		keyd_controller_end(k);
}

static void on_electd(json_t *ev, void *ud)
{
	struct keyd *k = ud;
	const char *c = json_string_value(json_object_get(ev, "controller"));
	const char *name = json_string_value(json_object_get(ev, "event"));

	if (name && strcmp(name, "disconnected") == 0)
		c = "";
	if (c == NULL)
		return;
	if (strcmp(c, k->controller) != 0)
		log_info("controller: %s", c[0] ? c : "none");
	snprintf(k->controller, sizeof(k->controller), "%s", c);
	update_role(k);
}

static void on_certd(json_t *ev, void *ud)
{
	struct keyd *k = ud;
	const char *cert = json_string_value(json_object_get(ev, "certificate"));
	const char *name = json_string_value(json_object_get(ev, "event"));

	if (name && strcmp(name, "disconnected") == 0)
		cert = "unknown";
	if (cert == NULL)
		return;
	k->cert_ok = strcmp(cert, "valid") == 0;
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
	static const char *const electd_events[] = {"controller-changed", NULL};
	static const char *const certd_events[] = {"certificate-invalid", "certificate-valid",
						   NULL};
	char path[PATH_MAX];
	int r;

	k->cfg = cfg, k->loop = loop, k->udp = k->tcp = -1;
	if ((r = cert_load(cfg->device.cert, &k->cert)) < 0 ||
	    (r = crypto_load_private_key(cfg->device.key, &k->key)) < 0 ||
	    (r = cert_info_get(k->cert, &k->self)) < 0) {
		log_errx("cannot load this device's identity (%s, %s): %s", cfg->device.cert,
			 cfg->device.key, iotsec_strerror(r));
		return r;
	}
	if ((r = cert_store_load(cfg->device.ca, cfg->device.crl, &k->store)) < 0 ||
	    (r = envelope_ctx_new(k->store, k->cert, k->key, rules, cfg->net.delta_t, &k->env)) <
		0) {
		log_errx("cannot load the home CA (%s, %s): %s", cfg->device.ca, cfg->device.crl,
			 iotsec_strerror(r));
		return r;
	}
	if ((r = keyd_net_open(k)) < 0) {
		log_errx("port %d, broadcast %s: %s", cfg->net.port + 1, cfg->net.broadcast,
			 iotsec_strerror(r));
		return r;
	}
	if ((r = daemon_socket_path(cfg->device.run_dir, "electd", path, sizeof(path))) < 0 ||
	    (r = ctl_watch_new(loop, path, electd_events, 1000, on_electd, k, &k->electd)) < 0 ||
	    (r = daemon_socket_path(cfg->device.run_dir, "certd", path, sizeof(path))) < 0 ||
	    (r = ctl_watch_new(loop, path, certd_events, 1000, on_certd, k, &k->certd)) < 0 ||
	    (r = daemon_add_periodic(loop, (uint64_t)cfg->keyd.announce_ms * 1000, on_announce, k,
				     &k->announce)) < 0)
		return r;
	log_info("device %s (%s) on port %d; waiting for certd and electd", k->self.name,
		 cert_role_name(k->self.role), cfg->net.port + 1);
	return 0;
}

void keyd_stop(struct keyd *k)
{
	keyd_controller_end(k);
	keyd_net_close(k);
	ctl_watch_free(k->electd);
	ctl_watch_free(k->certd);
	sd_event_source_disable_unref(k->announce);
	ctl_client_free(k->dict);
	keyd_peers_free(k);
	envelope_ctx_free(k->env);
	cert_store_free(k->store);
	X509_free(k->cert);
	EVP_PKEY_free(k->key);
	crypto_wipe(&k->incoming, sizeof(k->incoming));
}
