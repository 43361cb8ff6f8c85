/* keyd on the home network: I_AM_ON_THE_NETWORK broadcasts, and every message on a link to its
 * handler. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "keyd.h"
#include "log.h"

void keyd_announce(struct keyd *k)
{
	struct ring_indices *x = NULL;
	json_t *body = NULL;
	int r = -ENOMEM;

	if (!k->in_home)
		return;
	keyd_check_ring(k);
	/* Before its first ring a device announces an empty body: it has nothing to match yet. */
	if (k->n_index == 0) {
		body = json_object();
	} else if ((x = calloc(1, sizeof(*x))) != NULL) {
		x->epoch = k->epoch, x->n = k->n_index;
		memcpy(x->index, k->index, k->n_index * sizeof(x->index[0]));
		if (ring_start_build(x, k->pool, &body) < 0)
			body = NULL;
	}
	/* A failure to send is lan_udp_broadcast()'s to log. */
	if (body == NULL || (r = lan_udp_broadcast(k->udp, KEYD_MSG_ANNOUNCE, body)) < 0)
		log_debug("no %s sent: %s", KEYD_MSG_ANNOUNCE, iotsec_strerror(r));
	free(x);
	json_decref(body);
}

void keyd_on_datagram(struct envelope_msg *m, const struct sockaddr_in *from, bool broadcast,
		      void *userdata)
{
	struct keyd *k = userdata;
	struct sockaddr_in at = *from;
	struct keyd_peer *p;
	int r;

	if (strcmp(m->type, KEYD_MSG_ANNOUNCE) != 0) {
		lan_member_refuse(k->member, from, m->sender.name, -IOTSEC_ETYPE);
		return;
	}
	/* What a device announces, every device hears: the epochs we go by are the home's. */
	if (!broadcast) {
		lan_member_refuse(k->member, from, m->sender.name, -IOTSEC_ENOTBCAST);
		return;
	}
	if (strcmp(m->sender.name, k->member->self.name) == 0)
		return; /* our own, back to us */
	at.sin_port = htons((uint16_t)(k->cfg->net.port + 1));
	if ((p = keyd_peer_update(k, m, &at, &r)) == NULL) {
		lan_member_refuse(k->member, from, m->sender.name, r);
		return;
	}
	if (k->ctl_state)
		keyd_controller_on_seen(k, p);
}

struct lan_link *keyd_link_to(struct keyd *k, const struct keyd_peer *p)
{
	struct lan_link *l = NULL;
	int r = lan_link_open(k->tcp, p->name, &p->addr, &l);

	if (r < 0)
		log_warnx("no link to %s: %s", p->name, iotsec_strerror(r));
	return r < 0 ? NULL : l;
}

void keyd_link_refuse(struct keyd *k, struct lan_link *l, const struct envelope_msg *m, int r)
{
	/* The message verified: it is the sender's, whatever is wrong with it. */
	lan_member_refuse(k->member, lan_link_addr(l), m->sender.name, r);
	lan_link_close(l);
}

/* The controller's messages come from the controller electd names, no other. */
static bool from_controller(struct keyd *k, struct lan_link *l, const struct envelope_msg *m)
{
	if (strcmp(m->sender.name, k->controller) == 0)
		return true;
	keyd_link_refuse(k, l, m, -IOTSEC_ENOTCONTROLLER);
	return false;
}

void keyd_on_link(struct lan_link *l, struct envelope_msg *m, void *userdata)
{
	struct keyd *k = userdata;
	const char *t = m->type;

	if (!k->in_home) {
		lan_link_close(l); /* out of the home: we speak for nobody */
		return;
	}
	if (strcmp(t, RING_MSG_NEEDS_KEYS) == 0 && from_controller(k, l, m))
		keyd_on_needs(k, l, m);
	else if (strcmp(t, RING_MSG_RING_KEYS) == 0 && from_controller(k, l, m))
		keyd_on_ring_piece(k, l, m);
	else if (strcmp(t, RING_MSG_RING_END) == 0 && from_controller(k, l, m))
		keyd_on_ring_end(k, l, m);
	else if (strcmp(t, RING_MSG_PATH_KEY) == 0 && from_controller(k, l, m))
		keyd_on_path_key(k, l, m);
	else if (strcmp(t, RING_MSG_CLIENT_KEYS) == 0)
		keyd_controller_on_keys(k, l, m);
	else if (strcmp(t, RING_MSG_RING_ACK) == 0)
		keyd_controller_on_ack(k, l, m);
	else if (strcmp(t, RING_MSG_START_SESSION) == 0)
		keyd_talk_on_start(k, l, m);
	else if (strcmp(t, RING_MSG_COMMON_INDEX) == 0)
		keyd_talk_on_common(k, l, m);
	else if (strcmp(t, SESSION_MSG_DATA) == 0)
		keyd_talk_on_data(k, l, m);
	else if (strcmp(t, KEYD_MSG_ANNOUNCE) == 0)
		keyd_link_refuse(k, l, m, -IOTSEC_ETYPE); /* a broadcast has no place here */
}
