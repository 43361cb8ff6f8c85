/* Malicious labelling (SPEC 7), on every device: authentication failures a device answers for
 * (lan.h's failure hook: a TCP stream it signed for us carried something that failed) count
 * against it in trust.h; past pingd.auth_failures it is labelled malicious, ignored from then on,
 * and reported to the controller, which quarantines it and tells the administrator to revoke
 * it. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pingd.h"

bool pingd_ignored(const struct pingd *d, const char *name)
{
	const struct trust_peer *tp = trust_find(d->trust, name);

	return tp && (tp->flags & TRUST_MALICIOUS);
}

/* Tell the controller, on a link of our own (it is the controller's to decide). */
static void report(struct pingd *d, struct pingd_peer *p)
{
	const struct trust_peer *tp = trust_find(d->trust, p->name);
	struct ping_malicious mal = {.failures = tp ? tp->auth_failures : 1};
	struct pingd_peer *c = d->controller[0] ? pingd_peer_find(d, d->controller) : NULL;
	struct lan_link *l = NULL;
	char id[ENVELOPE_ID_MAX + 1];
	json_t *body = NULL;
	int r;

	p->reported_ms = pingd_now_ms();
	if (mal.failures == 0)
		mal.failures = 1;
	if (mal.failures > PING_FAILURES_MAX)
		mal.failures = PING_FAILURES_MAX;
	snprintf(mal.target, sizeof(mal.target), "%s", p->name);
	if (c == NULL || !c->has_addr || c == p) {
		log_debug("%s malicious: no controller to tell yet", p->name);
		return;
	}
	if ((r = envelope_new_id(id)) < 0 || (r = ping_malicious_build(&mal, &body)) < 0 ||
	    (r = lan_link_open(d->tcp, c->name, &c->addr, &l)) < 0 ||
	    (r = lan_link_send(l, PING_MSG_MALICIOUS, id, body, true)) < 0) {
		if (l)
			lan_link_close(l);
		log_warnx("cannot report %s to %s: %s", p->name, c->name, iotsec_strerror(r));
	} else {
		lan_link_finish(l);
		d->sent++;
		log_info("reported %s malicious to %s", p->name, c->name);
	}
	json_decref(body);
}

void pingd_label(struct pingd *d, const char *name)
{
	const struct trust_peer *tp = trust_find(d->trust, name);
	struct pingd_peer *p = pingd_peer_find(d, name);
	unsigned n = tp ? tp->auth_failures : 0;

	if (d->controller_role) {
		pingd_quarantine_add(d, name, PING_REASON_MALICIOUS, n);
		return;
	}
	log_warnx("%s labelled malicious (%u authentication failures): ignored from now on", name,
		  n);
	if (p)
		report(d, p);
}

/* Again every interval_ms while it is not on the controller's list: a controller that was away,
 * or changed, hears it too. */
void pingd_label_remind(struct pingd *d)
{
	uint64_t now = pingd_now_ms();

	if (d->controller_role)
		return;
	for (size_t i = 0; i < d->n_peers; i++) {
		struct pingd_peer *p = d->peers[i];

		if (pingd_ignored(d, p->name) && p->state != PINGD_QUARANTINED &&
		    now - p->reported_ms >= (uint64_t)d->cfg->pingd.interval_ms)
			report(d, p);
	}
}

static void on_failure(const char *device, int reason, void *userdata)
{
	struct pingd *d = userdata;

	log_debug("%s: authentication failure: %s", device, iotsec_strerror(reason));
	if (trust_auth_failure(d->trust, device, pingd_now_ms()))
		pingd_label(d, device);
}

void pingd_label_start(struct pingd *d)
{
	lan_tcp_on_failure(d->tcp, on_failure, d);
}
