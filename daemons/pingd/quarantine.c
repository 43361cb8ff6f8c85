/* The quarantine list: devices the controller put out of the home (missing, malicious). Every
 * device keeps the controller's latest list on disk and hands it to its keyd, so a device that
 * becomes controller already leaves them out. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "pingd.h"

const struct ping_entry *pingd_quarantined(const struct pingd *d, const char *name)
{
	for (size_t i = 0; i < d->q.n; i++)
		if (strcmp(d->q.entry[i].name, name) == 0)
			return &d->q.entry[i];
	return NULL;
}

void pingd_quarantine_broadcast(struct pingd *d)
{
	json_t *body = NULL;
	int r;

	if (!d->in_home || d->q.version == 0)
		return;
	/* A failure to send is lan_udp_broadcast()'s to log. */
	if ((r = ping_quarantine_build(&d->q, &body)) == 0 &&
	    (r = lan_udp_broadcast(d->udp, PING_MSG_QUARANTINE, body)) == 0)
		d->sent++;
	json_decref(body);
}

/* Every peer's state follows the list. */
static void apply(struct pingd *d)
{
	for (size_t i = 0; i < d->n_peers; i++) {
		struct pingd_peer *p = d->peers[i];
		bool out = pingd_quarantined(d, p->name) != NULL;

		if (out && p->state != PINGD_QUARANTINED) {
			pingd_probe_cancel(p->probe);
			p->probe = NULL;
			if (p->round) {
				sd_event_source_disable_unref(p->round->timer);
				free(p->round);
				p->round = NULL;
			}
			p->state = PINGD_QUARANTINED;
		} else if (!out && p->state == PINGD_QUARANTINED) {
			p->state = PINGD_UNKNOWN;
			p->fails = 0;
			/* Released: what was said and known of it before is done with, here and on
			 * every device that takes the list. */
			free(p->accused);
			p->accused = NULL;
			trust_forget(d->trust, p->name);
			if (d->controller_role)
				pingd_controller_watch(d, p);
		}
	}
}

static void publish(struct pingd *d, const char *name, const char *reason, int64_t at)
{
	json_t *ev =
	    json_pack("{s:s, s:s, s:I}", "name", name, "reason", reason, "at", (json_int_t)at);

	if (ev && d->ctl)
		ctl_server_publish(d->ctl, PROTO_EV_MISSING, ev);
	json_decref(ev);
}

int pingd_quarantine_add(struct pingd *d, const char *name, enum ping_reason why, unsigned failures)
{
	struct ping_entry *e;

	if (pingd_quarantined(d, name))
		return 0;
	if (d->q.n == PROTO_QUARANTINE_MAX || d->q.version == PING_VERSION_MAX) {
		log_errx("cannot quarantine %s: the list is full (%d)", name, PROTO_QUARANTINE_MAX);
		return -ENOBUFS;
	}
	e = &d->q.entry[d->q.n++];
	snprintf(e->name, sizeof(e->name), "%s", name);
	e->reason = why;
	e->at = clock_now();
	d->q.version++;
	apply(d);
	pingd_state_save(d);
	pingd_quarantine_broadcast(d);
	pingd_hello(d); /* our version changed */
	pingd_keyd_sync(d, true, false);
	publish(d, name, ping_reason_name(why), e->at);
	if (why == PING_REASON_MALICIOUS)
		log_notice("%s is malicious (%u authentication failures): quarantined; revoke it: "
			   "iotsec-pki revoke --dir CA_DIR --device %s",
			   name, failures, name);
	else
		log_notice("%s quarantined (missing), version %u: rekeying without it", name,
			   d->q.version);
	return 0;
}

int pingd_quarantine_release(struct pingd *d, const char *name)
{
	const struct ping_entry *e = pingd_quarantined(d, name);
	size_t i;

	if (e == NULL)
		return -ENOENT;
	if (d->q.version == PING_VERSION_MAX)
		return -EOVERFLOW;
	i = (size_t)(e - d->q.entry);
	memmove(&d->q.entry[i], &d->q.entry[i + 1], (d->q.n - i - 1) * sizeof(d->q.entry[0]));
	d->q.n--;
	d->q.version++;
	apply(d);
	pingd_state_save(d);
	pingd_quarantine_broadcast(d);
	pingd_hello(d);
	/* With the quarantine verb keyd gives it a ring when it next announces; a keyd without it
	 * needs a pool that does not leave it out. */
	pingd_keyd_sync(d, false, true);
	log_notice("%s released from quarantine, version %u", name, d->q.version);
	return 0;
}

void pingd_quarantine_take(struct pingd *d, const struct ping_quarantine *q, const char *from)
{
	if (q->version <= d->q.version)
		return;
	for (size_t i = 0; i < q->n; i++)
		if (!pingd_quarantined(d, q->entry[i].name))
			log_notice("%s quarantined by %s (%s)", q->entry[i].name, from,
				   ping_reason_name(q->entry[i].reason));
	d->q = *q;
	apply(d);
	pingd_state_save(d);
	pingd_hello(d);
	pingd_keyd_sync(d, false, false);
	log_info("quarantine version %u from %s: %zu devices", q->version, from, q->n);
}
