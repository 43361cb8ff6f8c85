/* pingd on the home network: HELLO and the controller's broadcasts, probes (PING -> PONG) and
 * the indirect probes a helper makes for the controller (PING_REQ -> REPORT). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pingd.h"

/* What a link carries, so a message can be checked against what its link is for. */
enum link_kind {
	LINK_PROBE, /* ours to a target: our PING, its PONG */
	LINK_HELP,  /* the controller's to us: its PING_REQ, our REPORT */
	LINK_ASK,   /* ours to a helper: our PING_REQ, its REPORT (the controller) */
	LINK_CRL,   /* ours to a device with a newer CRL: our CRL_GET, its CRL */
};
struct pingd_link {
	enum link_kind kind;
	struct pingd *d;
	struct lan_link *link;
	struct pingd_probe *probe; /* LINK_PROBE: the probe; LINK_HELP: the helper's own */
	char id[ENVELOPE_ID_MAX + 1];
	char target[CERT_NAME_MAX];
};

struct pingd_probe {
	struct pingd *d;
	char target[CERT_NAME_MAX];
	char id[ENVELOPE_ID_MAX + 1];
	struct pingd_link *link; /* NULL once the link went */
	sd_event_source *timer;
	bool answered;
	pingd_probe_fn done;
	void *ud;
};

static void link_free(void *data)
{
	struct pingd_link *pl = data;

	if (pl->kind == LINK_PROBE && pl->probe) {
		/* Gone before the answer (refused, broken): the probe fails now, from the loop,
		 * not from inside the transport. */
		pl->probe->link = NULL;
		sd_event_source_set_time_relative(pl->probe->timer, 0);
	} else if (pl->kind == LINK_HELP && pl->probe) {
		pingd_probe_cancel(pl->probe);
	} else if (pl->kind == LINK_CRL) {
		pl->d->crl_asking = false;
	}
	free(pl);
}

static struct pingd_link *link_new(struct pingd *d, struct lan_link *l, enum link_kind kind,
				   const char *id)
{
	struct pingd_link *pl = calloc(1, sizeof(*pl));

	if (pl == NULL)
		return NULL;
	pl->kind = kind, pl->link = l, pl->d = d;
	snprintf(pl->id, sizeof(pl->id), "%s", id);
	lan_link_set_data(l, pl, link_free);
	return pl;
}

/* ---- probes ---- */

static void probe_detach(struct pingd_probe *pr)
{
	if (pr->link) {
		pr->link->probe = NULL;
		lan_link_close(pr->link->link);
		pr->link = NULL;
	}
	sd_event_source_disable_unref(pr->timer);
	pr->timer = NULL;
}

void pingd_probe_cancel(struct pingd_probe *pr)
{
	if (pr == NULL)
		return;
	probe_detach(pr);
	free(pr);
}

static void probe_end(struct pingd_probe *pr)
{
	struct pingd *d = pr->d;
	char target[CERT_NAME_MAX];
	pingd_probe_fn done = pr->done;
	void *ud = pr->ud;
	bool ok = pr->answered;

	memcpy(target, pr->target, sizeof(target));
	pingd_probe_cancel(pr);
	done(d, target, ok, ud);
}

static int on_probe_timer(sd_event_source *s, uint64_t usec, void *ud)
{
	(void)s, (void)usec;
	probe_end(ud);
	return 0;
}

struct pingd_probe *pingd_probe_start(struct pingd *d, struct pingd_peer *p, pingd_probe_fn done,
				      void *ud)
{
	struct pingd_probe *pr = calloc(1, sizeof(*pr));
	struct lan_link *l = NULL;
	json_t *body = NULL;
	uint64_t wait = (uint64_t)d->cfg->pingd.timeout_ms;
	int r;

	if (pr == NULL)
		return NULL;
	pr->d = d, pr->done = done, pr->ud = ud;
	snprintf(pr->target, sizeof(pr->target), "%s", p->name);
	if (pingd_timer(d, &pr->timer, wait, on_probe_timer, pr) < 0) {
		free(pr);
		return NULL;
	}
	/* A fresh nonce each probe: only an answer signed for it shows the device is there. */
	if ((r = envelope_new_id(pr->id)) < 0 || !p->has_addr ||
	    (r = lan_link_open(d->tcp, p->name, &p->addr, &l)) < 0 ||
	    (pr->link = link_new(d, l, LINK_PROBE, pr->id)) == NULL) {
		if (l)
			lan_link_close(l);
		log_debug("no probe of %s: %s", p->name,
			  p->has_addr ? iotsec_strerror(r) : "no address");
		sd_event_source_set_time_relative(pr->timer, 0); /* a failure, from the loop */
		return pr;
	}
	pr->link->probe = pr;
	if ((r = ping_empty_build(&body)) < 0 ||
	    (r = lan_link_send(l, PING_MSG_PING, pr->id, body, true)) < 0) {
		log_debug("no probe of %s: %s", p->name, iotsec_strerror(r));
		pr->link->probe = NULL;
		pr->link = NULL;
		lan_link_close(l);
		sd_event_source_set_time_relative(pr->timer, 0);
	} else {
		d->sent++;
	}
	json_decref(body);
	return pr;
}

/* ---- what every device says and hears ---- */

void pingd_hello(struct pingd *d)
{
	struct ping_hello h = {.crl = d->crl_number, .qv = d->q.version};
	json_t *body = NULL;
	int r;

	if (!d->in_home)
		return;
	/* A failure to send is lan_udp_broadcast()'s to log. */
	if ((r = ping_hello_build(&h, &body)) == 0 &&
	    (r = lan_udp_broadcast(d->udp, PING_MSG_HELLO, body)) == 0)
		d->sent++;
	json_decref(body);
}

static void refuse(struct pingd *d, const struct sockaddr_in *from, const struct envelope_msg *m,
		   int r)
{
	lan_member_refuse(d->member, from, m->sender.name, r);
}

/* The controller's broadcasts come from the controller electd names, no other. */
static bool from_controller(struct pingd *d, const struct sockaddr_in *from,
			    const struct envelope_msg *m)
{
	if (d->controller[0] && strcmp(m->sender.name, d->controller) == 0)
		return true;
	refuse(d, from, m, -IOTSEC_ENOTCONTROLLER);
	return false;
}

static void on_suspect(struct pingd *d, const struct sockaddr_in *from, struct envelope_msg *m)
{
	struct ping_suspect s;
	json_t *body = NULL;

	if (ping_suspect_parse(m->body, &s) < 0) {
		refuse(d, from, m, -EBADMSG);
		return;
	}
	if (strcmp(s.target, d->member->self.name) != 0)
		return;
	log_notice("%s suspects us: answering", m->sender.name);
	if (ping_alive_build(s.id, &body) == 0 &&
	    lan_udp_broadcast(d->udp, PING_MSG_ALIVE, body) == 0)
		d->sent++;
	json_decref(body);
}

void pingd_on_datagram(struct envelope_msg *m, const struct sockaddr_in *from, bool broadcast,
		       void *userdata)
{
	struct pingd *d = userdata;
	const char *t = m->type;

	if (strcmp(m->sender.name, d->member->self.name) == 0)
		return; /* our own, back to us */
	if (!d->in_home)
		return; /* out of the home: we speak for nobody, and judge nobody */
	if (pingd_ignored(d, m->sender.name))
		return; /* labelled malicious: said once, when labelled */
	if (!broadcast) {
		refuse(d, from, m, -IOTSEC_ENOTBCAST);
		return;
	}
	if (strcmp(t, PING_MSG_HELLO) == 0) {
		struct ping_hello h;
		struct pingd_peer *p;

		if (ping_hello_parse(m->body, &h) < 0) {
			refuse(d, from, m, -EBADMSG);
			return;
		}
		pingd_peer_heard(d, m, from);
		if ((p = pingd_peer_find(d, m->sender.name)) != NULL)
			p->crl = h.crl, p->qv = h.qv;
		/* A newer CRL somewhere: ask for it (SPEC 5.5, a revocation reaches every Pi). */
		if (p && h.crl > d->crl_number)
			pingd_crl_ask(d, p);
	} else if (strcmp(t, PING_MSG_SUSPECT) == 0) {
		if (from_controller(d, from, m)) {
			pingd_peer_heard(d, m, from);
			on_suspect(d, from, m);
		}
	} else if (strcmp(t, PING_MSG_ALIVE) == 0) {
		char id[ENVELOPE_ID_MAX + 1];

		if (ping_alive_parse(m->body, id) < 0) {
			refuse(d, from, m, -EBADMSG);
			return;
		}
		pingd_peer_heard(d, m, from);
	} else if (strcmp(t, PING_MSG_QUARANTINE) == 0) {
		struct ping_quarantine *q;

		if (!from_controller(d, from, m))
			return;
		pingd_peer_heard(d, m, from);
		if ((q = malloc(sizeof(*q))) == NULL)
			return;
		if (ping_quarantine_parse(m->body, q) < 0)
			refuse(d, from, m, -EBADMSG);
		else
			pingd_quarantine_take(d, q, m->sender.name);
		free(q);
	} else {
		refuse(d, from, m, -IOTSEC_ETYPE); /* a unicast type has no place here */
	}
}

/* ---- links ---- */

static void link_refuse(struct pingd *d, struct lan_link *l, const struct envelope_msg *m, int r)
{
	/* The message verified: it is the sender's, whatever is wrong with it. */
	lan_member_refuse(d->member, lan_link_addr(l), m->sender.name, r);
	lan_link_close(l);
}

static void on_ping(struct pingd *d, struct lan_link *l, struct envelope_msg *m)
{
	json_t *body = NULL;
	int r;

	if (ping_empty_parse(m->body) < 0) {
		link_refuse(d, l, m, -EBADMSG);
		return;
	}
	/* The same id: the prober's nonce, now under our signature and naming the prober. */
	if ((r = ping_empty_build(&body)) < 0 ||
	    (r = lan_link_send(l, PING_MSG_PONG, m->id, body, true)) < 0)
		log_debug("no answer to %s's probe: %s", m->sender.name, iotsec_strerror(r));
	else
		d->sent++;
	json_decref(body);
	lan_link_finish(l);
}

static void on_pong(struct pingd *d, struct lan_link *l, struct envelope_msg *m)
{
	struct pingd_link *pl = lan_link_data(l);

	if (pl == NULL || pl->kind != LINK_PROBE || pl->probe == NULL) {
		link_refuse(d, l, m, -IOTSEC_EUNASKED);
		return;
	}
	if (strcmp(pl->id, m->id) != 0) {
		link_refuse(d, l, m, -IOTSEC_EDELIVERY);
		return;
	}
	if (ping_empty_parse(m->body) < 0) {
		link_refuse(d, l, m, -EBADMSG);
		return;
	}
	pl->probe->answered = true;
	probe_end(pl->probe);
}

/* Our own probe for the controller is over: say how it went on the controller's link. */
static void helped(struct pingd *d, const char *target, bool alive, void *ud)
{
	struct pingd_link *pl = ud;
	struct ping_report rep = {.alive = alive};
	json_t *body = NULL;
	int r;

	pl->probe = NULL;
	snprintf(rep.target, sizeof(rep.target), "%s", target);
	if ((r = ping_report_build(&rep, &body)) < 0 ||
	    (r = lan_link_send(pl->link, PING_MSG_REPORT, pl->id, body, true)) < 0)
		log_debug("no report on %s: %s", target, iotsec_strerror(r));
	else
		d->sent++;
	json_decref(body);
	lan_link_finish(pl->link);
}

static void on_ping_req(struct pingd *d, struct lan_link *l, struct envelope_msg *m)
{
	char target[CERT_NAME_MAX];
	struct pingd_peer *p;
	struct pingd_link *pl;

	if (d->controller[0] == '\0' || strcmp(m->sender.name, d->controller) != 0) {
		link_refuse(d, l, m, -IOTSEC_ENOTCONTROLLER);
		return;
	}
	if (lan_link_data(l) != NULL) {
		link_refuse(d, l, m, -IOTSEC_EUNASKED); /* one request a link */
		return;
	}
	if (ping_req_parse(m->body, target) < 0) {
		link_refuse(d, l, m, -EBADMSG);
		return;
	}
	if ((pl = link_new(d, l, LINK_HELP, m->id)) == NULL) {
		lan_link_close(l);
		return;
	}
	snprintf(pl->target, sizeof(pl->target), "%s", target);
	if (strcmp(target, d->member->self.name) == 0) {
		helped(d, target, true, pl);
		return;
	}
	/* A device we never heard of, we cannot reach: say so. */
	if ((p = pingd_peer_find(d, target)) == NULL || !p->has_addr ||
	    (pl->probe = pingd_probe_start(d, p, helped, pl)) == NULL)
		helped(d, target, false, pl);
}

/* ---- CRLs ---- */

void pingd_crl_ask(struct pingd *d, struct pingd_peer *p)
{
	uint64_t now = pingd_now_ms();
	struct pingd_link *pl = NULL;
	struct lan_link *l = NULL;
	char id[ENVELOPE_ID_MAX + 1];
	json_t *body = NULL;
	int r;

	/* One question at a time, at most one a hello_ms: every device's HELLO says the number. */
	if (d->crl_asking || !p->has_addr ||
	    (d->crl_asked_ms && now - d->crl_asked_ms < (uint64_t)d->cfg->pingd.hello_ms))
		return;
	d->crl_asked_ms = now;
	if ((r = envelope_new_id(id)) < 0 || (r = ping_crl_get_build(d->crl_number, &body)) < 0 ||
	    (r = lan_link_open(d->tcp, p->name, &p->addr, &l)) < 0 ||
	    (pl = link_new(d, l, LINK_CRL, id)) == NULL ||
	    (r = lan_link_send(l, PING_MSG_CRL_GET, id, body, true)) < 0) {
		if (l)
			lan_link_close(l);
		log_debug("cannot ask %s for its CRL: %s", p->name, iotsec_strerror(r));
	} else {
		d->crl_asking = true;
		d->sent++;
		log_info("%s holds CRL number %llu, ours is %llu: asking for it", p->name,
			 (unsigned long long)p->crl, (unsigned long long)d->crl_number);
	}
	json_decref(body);
}

static void on_crl_get(struct pingd *d, struct lan_link *l, struct envelope_msg *m)
{
	json_t *body = NULL;
	char *pem = NULL;
	uint64_t theirs;
	size_t len;
	int r;

	if (ping_crl_get_parse(m->body, &theirs) < 0) {
		link_refuse(d, l, m, -EBADMSG);
		return;
	}
	/* Only a newer one is worth the bytes: an older or equal number gets nothing. */
	if (theirs < d->crl_number) {
		if ((r = cert_store_crl_pem(d->member->store, &pem, &len)) < 0 ||
		    (r = ping_crl_build(pem, &body)) < 0 ||
		    (r = lan_link_send(l, PING_MSG_CRL, m->id, body, true)) < 0)
			log_warnx("cannot send our CRL to %s: %s", m->sender.name,
				  iotsec_strerror(r));
		else
			d->sent++;
	}
	free(pem);
	json_decref(body);
	lan_link_finish(l);
}

static void on_crl(struct pingd *d, struct lan_link *l, struct envelope_msg *m)
{
	struct pingd_link *pl = lan_link_data(l);
	const char *pem;
	size_t len;

	if (pl == NULL || pl->kind != LINK_CRL) {
		link_refuse(d, l, m, -IOTSEC_EUNASKED);
		return;
	}
	if (strcmp(pl->id, m->id) != 0) {
		link_refuse(d, l, m, -IOTSEC_EDELIVERY);
		return;
	}
	if (ping_crl_parse(m->body, &pem, &len) < 0) {
		link_refuse(d, l, m, -EBADMSG);
		return;
	}
	pingd_crl_received(d, pem, len, m->sender.name, lan_link_addr(l));
	lan_link_close(l);
}

void pingd_on_link(struct lan_link *l, struct envelope_msg *m, void *userdata)
{
	struct pingd *d = userdata;
	const char *t = m->type;

	if (!d->in_home || pingd_ignored(d, m->sender.name)) {
		lan_link_close(l); /* out of the home, or labelled malicious: nothing to say */
		return;
	}
	pingd_peer_heard(d, m, NULL);
	if (strcmp(t, PING_MSG_PING) == 0)
		on_ping(d, l, m);
	else if (strcmp(t, PING_MSG_PONG) == 0)
		on_pong(d, l, m);
	else if (strcmp(t, PING_MSG_PING_REQ) == 0)
		on_ping_req(d, l, m);
	else if (strcmp(t, PING_MSG_REPORT) == 0)
		pingd_controller_on_report(d, l, m);
	else if (strcmp(t, PING_MSG_MALICIOUS) == 0)
		pingd_controller_on_malicious(d, l, m);
	else if (strcmp(t, PING_MSG_CRL_GET) == 0)
		on_crl_get(d, l, m);
	else if (strcmp(t, PING_MSG_CRL) == 0)
		on_crl(d, l, m);
	else
		link_refuse(d, l, m, -IOTSEC_ETYPE); /* a broadcast has no place here */
}

/* For probe.c: is l our link to a helper? */
bool pingd_link_is_ask(struct lan_link *l)
{
	struct pingd_link *pl = lan_link_data(l);

	return pl && pl->kind == LINK_ASK;
}

int pingd_link_ask(struct pingd *d, struct lan_link *l, const char *id, const char *target)
{
	struct pingd_link *pl = link_new(d, l, LINK_ASK, id);

	if (pl == NULL)
		return -ENOMEM;
	snprintf(pl->target, sizeof(pl->target), "%s", target);
	return 0;
}
