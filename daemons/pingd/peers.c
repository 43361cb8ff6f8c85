/* The devices pingd knows: every one heard (a verified message of this home), and those the state
 * file remembers. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "pingd.h"

struct pingd_peer *pingd_peer_find(struct pingd *d, const char *name)
{
	for (size_t i = 0; i < d->n_peers; i++)
		if (strcmp(d->peers[i]->name, name) == 0)
			return d->peers[i];
	return NULL;
}

struct pingd_peer *pingd_peer_add(struct pingd *d, const char *name)
{
	struct pingd_peer *p;

	if (d->n_peers == PINGD_PEERS_MAX || (p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	p->d = d;
	snprintf(p->name, sizeof(p->name), "%s", name);
	p->state = pingd_quarantined(d, name) ? PINGD_QUARANTINED : PINGD_UNKNOWN;
	d->peers[d->n_peers++] = p;
	return p;
}

void pingd_peer_heard(struct pingd *d, const struct envelope_msg *m, const struct sockaddr_in *from)
{
	struct pingd_peer *p = pingd_peer_find(d, m->sender.name);
	bool changed = false;

	if (strcmp(m->sender.name, d->member->self.name) == 0)
		return;
	d->received++;
	if (p == NULL) {
		if ((p = pingd_peer_add(d, m->sender.name)) == NULL) {
			log_debug("%s not remembered: %d devices known", m->sender.name,
				  PINGD_PEERS_MAX);
			return;
		}
		log_info("new device %s (%s)", p->name, cert_role_name(m->sender.role));
		changed = true;
	}
	/* Only a datagram's source is where its pingd listens: a link we did not open comes
	 * from a port of the moment. */
	if (from && (!p->has_addr || p->addr.sin_addr.s_addr != from->sin_addr.s_addr)) {
		p->addr = *from;
		p->addr.sin_port = htons((uint16_t)(d->cfg->net.port + 2));
		p->has_addr = changed = true;
	}
	if (p->cert != m->cert) {
		X509_up_ref(m->cert);
		X509_free(p->cert);
		p->cert = m->cert;
	}
	p->role = m->sender.role;
	snprintf(p->serial, sizeof(p->serial), "%s", m->sender.serial);
	p->last_seen = clock_now();
	/* Any fresh signed message from it refutes a suspicion (SPEC 5.5). Only an answer to a
	 * probe of ours ends a run of failed probes: a device that says hello but does not answer
	 * is suspected all the same, and must then answer the suspicion. */
	if (p->round)
		p->round->refuted = true;
	if (p->state == PINGD_UNKNOWN || (p->state == PINGD_MISSING && p->fails == 0))
		p->state = PINGD_ALIVE;
	if (changed)
		pingd_state_save(d);
	if (d->controller_role)
		pingd_controller_watch(d, p);
}

void pingd_peer_free(struct pingd_peer *p)
{
	if (p == NULL)
		return;
	pingd_probe_cancel(p->probe);
	if (p->round) {
		sd_event_source_disable_unref(p->round->timer);
		free(p->round);
	}
	sd_event_source_disable_unref(p->next);
	X509_free(p->cert);
	free(p->accused);
	free(p);
}

void pingd_peers_free(struct pingd *d)
{
	for (size_t i = 0; i < d->n_peers; i++)
		pingd_peer_free(d->peers[i]);
	d->n_peers = 0;
}
