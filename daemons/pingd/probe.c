/* The controller's probe cycle (SPEC 5.5): each known device every interval_ms; after `tries`
 * failures in a row, SUSPECT and indirect probes by other devices; out of the home only when no
 * refutation came and the confirmations outweigh the rest. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pingd.h"

static bool probed_by_us(const struct pingd *d, const struct pingd_peer *p)
{
	return d->controller_role && p->state != PINGD_QUARANTINED &&
	       strcmp(p->name, d->member->self.name) != 0;
}

static void probed(struct pingd *d, const char *target, bool alive, void *ud);

static int on_next(sd_event_source *s, uint64_t usec, void *ud)
{
	struct pingd_peer *p = ud;
	struct pingd *d = p->d;

	(void)s, (void)usec;
	if (!probed_by_us(d, p) || p->probe || p->round)
		return 0;
	if ((p->probe = pingd_probe_start(d, p, probed, p)) == NULL)
		pingd_timer(d, &p->next, (uint64_t)d->cfg->pingd.retry_ms, on_next, p);
	return 0;
}

static void schedule(struct pingd *d, struct pingd_peer *p, uint64_t ms)
{
	int r = pingd_timer(d, &p->next, ms, on_next, p);

	if (r < 0)
		log_warnx("cannot schedule a probe of %s: %s", p->name, iotsec_strerror(r));
}

void pingd_controller_watch(struct pingd *d, struct pingd_peer *p)
{
	int enabled = SD_EVENT_OFF;

	if (!probed_by_us(d, p) || p->probe || p->round)
		return;
	if (p->next && sd_event_source_get_enabled(p->next, &enabled) >= 0 &&
	    enabled != SD_EVENT_OFF)
		return; /* already coming */
	schedule(d, p, (uint64_t)d->cfg->pingd.interval_ms);
}

/* ---- indirect rounds ---- */

static void round_free(struct pingd_peer *p)
{
	if (p->round == NULL)
		return;
	sd_event_source_disable_unref(p->round->timer);
	free(p->round);
	p->round = NULL;
}

/* The round is over: out of the home, or back to probing. trust_round() decides, and judges the
 * reporters against what it found. */
static int on_round_end(sd_event_source *s, uint64_t usec, void *ud)
{
	struct pingd_peer *p = ud;
	struct pingd *d = p->d;
	struct pingd_round *rd = p->round;
	struct trust_report r[1 + 2 * PINGD_ROUND_MAX];
	size_t n = 0, unreachable = 0, alive = 0, asked = rd->n_asked, needed;
	bool refuted = rd->refuted;
	enum trust_verdict v;

	(void)s, (void)usec;
	/* Our own failed probes, then the helpers' answers, then what came unasked. */
	r[n++] = (struct trust_report){.reporter = NULL, .alive = false, .solicited = true};
	for (size_t i = 0; i < rd->n_asked; i++) {
		if (rd->asked[i].answer < 0)
			continue;
		unreachable += rd->asked[i].answer == 0, alive += rd->asked[i].answer == 1;
		r[n++] = (struct trust_report){.reporter = rd->asked[i].helper,
					       .alive = rd->asked[i].answer == 1,
					       .solicited = true};
	}
	/* trust_round() refuses a round longer than TRUST_ROUND_MAX whole: the unasked make room.
	 */
	for (size_t i = 0; i < rd->n_unasked && n < TRUST_ROUND_MAX; i++)
		r[n++] = (struct trust_report){.reporter = rd->unasked[i].reporter,
					       .alive = rd->unasked[i].alive};
	/* Confirmations signed by distinct devices; with nobody to ask (a home of two) our own
	 * probes decide. */
	needed = (size_t)d->cfg->pingd.confirmations < asked ? (size_t)d->cfg->pingd.confirmations
							     : asked;
	v = trust_round(d->trust, p->name, r, n, needed, refuted, pingd_now_ms());
	for (size_t i = 1; i < n; i++) {
		for (unsigned f = 1; f <= TRUST_MALICIOUS; f <<= 1)
			if (r[i].flagged & f)
				log_warnx(
				    "%s said %s is %s: %s, banned from reporting for %d ms",
				    r[i].reporter, p->name, r[i].alive ? "alive" : "unreachable",
				    trust_flag_name((enum trust_flag)f), d->cfg->pingd.ban_ms);
	}
	round_free(p);
	if (v == TRUST_EVICT) {
		log_notice("%s is missing: %u probes unanswered, %zu of %zu devices asked confirm "
			   "(%zu saw it)",
			   p->name, p->fails, unreachable, asked, alive);
		d->missing++;
		if (pingd_quarantine_add(d, p->name, PING_REASON_MISSING, 0) == 0)
			return 0;
		refuted = false; /* the list is full: it stays a suspect, probed again */
	}
	log_info("%s kept: %s (%zu of %zu confirm, %zu needed, %zu saw it)", p->name,
		 refuted ? "it answered" : "not confirmed", unreachable, asked, needed, alive);
	p->state = refuted ? PINGD_ALIVE : PINGD_MISSING;
	p->fails = 0;
	schedule(d, p, (uint64_t)d->cfg->pingd.interval_ms);
	return 0;
}

/* Helpers: the other devices we heard from whose reports count (trust_trusted()), not suspect,
 * not quarantined, the most trusted first. */
static size_t pick_helpers(struct pingd *d, const struct pingd_peer *target,
			   struct pingd_peer **out, size_t max)
{
	uint64_t now = pingd_now_ms();
	double value[PINGD_PEERS_MAX];
	size_t n = 0;

	for (size_t i = 0; i < d->n_peers; i++) {
		struct pingd_peer *h = d->peers[i];
		const struct trust_peer *tp = trust_peer(d->trust, h->name);

		if (h == target || h->state != PINGD_ALIVE || !h->has_addr || tp == NULL ||
		    !trust_trusted(d->trust, tp, now))
			continue;
		/* Insertion into the sorted list, kept to max. */
		size_t j = n < max ? n++ : max;
		double v = trust_value(d->trust, tp);

		for (; j > 0 && value[j - 1] < v; j--) {
			if (j < max)
				out[j] = out[j - 1], value[j] = value[j - 1];
		}
		if (j < max)
			out[j] = h, value[j] = v;
	}
	return n;
}

static void ask(struct pingd *d, struct pingd_peer *p, struct pingd_peer *h)
{
	struct pingd_round *rd = p->round;
	struct lan_link *l = NULL;
	json_t *body = NULL;
	char id[ENVELOPE_ID_MAX + 1];
	int r;

	if ((r = envelope_new_id(id)) < 0 || (r = ping_req_build(p->name, &body)) < 0 ||
	    (r = lan_link_open(d->tcp, h->name, &h->addr, &l)) < 0 ||
	    (r = pingd_link_ask(d, l, id, p->name)) < 0 ||
	    (r = lan_link_send(l, PING_MSG_PING_REQ, id, body, true)) < 0) {
		if (l)
			lan_link_close(l);
		log_warnx("cannot ask %s to probe %s: %s", h->name, p->name, iotsec_strerror(r));
		json_decref(body);
		return;
	}
	d->sent++;
	json_decref(body);
	snprintf(rd->asked[rd->n_asked].helper, CERT_NAME_MAX, "%s", h->name);
	memcpy(rd->asked[rd->n_asked].id, id, sizeof(id));
	rd->asked[rd->n_asked++].answer = -1;
}

static void suspect(struct pingd *d, struct pingd_peer *p)
{
	struct pingd_peer *helpers[PINGD_ROUND_MAX];
	struct ping_suspect sus;
	size_t max = (size_t)d->cfg->pingd.helpers, n;
	json_t *body = NULL;
	int r;

	if (max > PINGD_ROUND_MAX)
		max = PINGD_ROUND_MAX;
	if ((p->round = calloc(1, sizeof(*p->round))) == NULL ||
	    (r = envelope_new_id(p->round->id)) < 0 ||
	    (r = pingd_timer(d, &p->round->timer, 2 * (uint64_t)d->cfg->pingd.timeout_ms,
			     on_round_end, p)) < 0) {
		round_free(p);
		schedule(d, p, (uint64_t)d->cfg->pingd.retry_ms);
		return;
	}
	p->state = PINGD_SUSPECT;
	snprintf(sus.target, sizeof(sus.target), "%s", p->name);
	memcpy(sus.id, p->round->id, sizeof(sus.id));
	if ((r = ping_suspect_build(&sus, &body)) == 0 &&
	    (r = lan_udp_broadcast(d->udp, PING_MSG_SUSPECT, body)) == 0)
		d->sent++;
	json_decref(body);
	n = pick_helpers(d, p, helpers, max);
	for (size_t i = 0; i < n; i++)
		ask(d, p, helpers[i]);
	log_notice("%s suspect: %u probes unanswered; %zu devices asked to probe it", p->name,
		   p->fails, p->round->n_asked);
}

static void probed(struct pingd *d, const char *target, bool alive, void *ud)
{
	struct pingd_peer *p = ud;

	(void)target;
	p->probe = NULL;
	p->probes++, d->probes++;
	trust_probe(d->trust, p->name, alive);
	if (!probed_by_us(d, p))
		return;
	if (alive) {
		if (p->fails > 0)
			log_info("%s answers again", p->name);
		p->fails = 0;
		p->state = PINGD_ALIVE;
		schedule(d, p, (uint64_t)d->cfg->pingd.interval_ms);
		return;
	}
	p->fails++;
	if (p->state == PINGD_ALIVE || p->state == PINGD_UNKNOWN)
		p->state = PINGD_SUSPECT;
	log_debug("%s: probe %u of %d unanswered", p->name, p->fails, d->cfg->pingd.tries);
	if (p->fails < (unsigned)d->cfg->pingd.tries)
		schedule(d, p, (uint64_t)d->cfg->pingd.retry_ms);
	else
		suspect(d, p);
}

/* Whether the controller hears a report (REPORT, MALICIOUS) whose body parsed with `parsed`: a
 * bad body, or one sent to a device that is not the controller, is refused and its link closed;
 * otherwise the link is done. A quarantined device keeps its certificate until the administrator
 * revokes it, but no say in who else goes out: put out as malicious, it would otherwise go on
 * accusing honest devices. */
static bool report_heard(struct pingd *d, struct lan_link *l, const struct envelope_msg *m,
			 int parsed)
{
	int r = parsed < 0 ? -EBADMSG : !d->controller_role ? -IOTSEC_EUNASKED : 0;

	if (r < 0) {
		lan_member_refuse(d->member, lan_link_addr(l), m->sender.name, r);
		lan_link_close(l);
		return false;
	}
	lan_link_finish(l);
	if (pingd_quarantined(d, m->sender.name) == NULL)
		return true;
	lan_member_refuse(d->member, lan_link_addr(l), m->sender.name, -EPERM);
	return false;
}

void pingd_controller_on_report(struct pingd *d, struct lan_link *l, struct envelope_msg *m)
{
	struct ping_report rep;
	struct pingd_peer *p;

	if (!report_heard(d, l, m, ping_report_parse(m->body, &rep)))
		return;
	p = pingd_peer_find(d, rep.target);
	if (pingd_link_is_ask(l) && p && p->round) {
		for (size_t i = 0; i < p->round->n_asked; i++) {
			if (strcmp(p->round->asked[i].helper, m->sender.name) == 0 &&
			    strcmp(p->round->asked[i].id, m->id) == 0) {
				if (p->round->asked[i].answer < 0)
					p->round->asked[i].answer = rep.alive;
				return;
			}
		}
	}
	if (pingd_link_is_ask(l))
		return; /* on a link of ours, too late: the round is over (or its device gone) */
	/* Unsolicited: a device that could not reach another. More than it can have made is ballot
	 * stuffing (trust.h). Heard, it is judged with the round under way on its target, but
	 * only our own probes and the helpers we chose decide. */
	if (!trust_unsolicited(d->trust, m->sender.name, d->n_peers + 1, pingd_now_ms())) {
		lan_member_refuse(d->member, lan_link_addr(l), m->sender.name, -IOTSEC_EUNASKED);
		return;
	}
	log_debug("%s reports %s %s", m->sender.name, rep.target,
		  rep.alive ? "alive" : "unreachable");
	if (p && p->round && p->round->n_unasked < PINGD_ROUND_MAX) {
		struct pingd_round *rd = p->round;

		for (size_t i = 0; i < rd->n_unasked; i++)
			if (strcmp(rd->unasked[i].reporter, m->sender.name) == 0)
				return;
		snprintf(rd->unasked[rd->n_unasked].reporter, CERT_NAME_MAX, "%s", m->sender.name);
		rd->unasked[rd->n_unasked++].alive = rep.alive;
	}
}

/* A device says target is malicious: out once max(1, confirmations) distinct devices say so. */
void pingd_controller_on_malicious(struct pingd *d, struct lan_link *l, struct envelope_msg *m)
{
	size_t needed = d->cfg->pingd.confirmations > 1 ? (size_t)d->cfg->pingd.confirmations : 1;
	struct ping_malicious mal;
	const struct trust_peer *tp;
	struct pingd_accusers *a;
	struct pingd_peer *p;
	size_t i;

	if (!report_heard(d, l, m, ping_malicious_parse(m->body, &mal)))
		return;
	/* Only devices whose reports count: not malicious, not banned, trusted enough. */
	tp = trust_peer(d->trust, m->sender.name);
	if (tp == NULL || !trust_trusted(d->trust, tp, pingd_now_ms())) {
		lan_member_refuse(d->member, lan_link_addr(l), m->sender.name, -EPERM);
		return;
	}
	if ((p = pingd_peer_find(d, mal.target)) == NULL ||
	    strcmp(mal.target, m->sender.name) == 0 || p->state == PINGD_QUARANTINED)
		return; /* nobody we know, itself, or already out */
	if (p->accused == NULL && (p->accused = calloc(1, sizeof(*p->accused))) == NULL)
		return;
	a = p->accused;
	for (i = 0; i < a->n && strcmp(a->name[i], m->sender.name) != 0; i++)
		;
	if (mal.failures > a->failures)
		a->failures = mal.failures;
	if (i < a->n || a->n == PINGD_ACCUSERS_MAX)
		return; /* said already: once per device that reports it */
	snprintf(a->name[a->n++], CERT_NAME_MAX, "%s", m->sender.name);
	log_warnx("%s reports %s malicious (%u authentication failures): %zu of %zu reports",
		  m->sender.name, mal.target, mal.failures, a->n, needed);
	if (a->n >= needed)
		pingd_quarantine_add(d, p->name, PING_REASON_MALICIOUS, a->failures);
}

/* ---- role ---- */

void pingd_controller_begin(struct pingd *d)
{
	d->controller_role = true;
	log_notice("controller: probing %zu devices every %d ms", d->n_peers,
		   d->cfg->pingd.interval_ms);
	for (size_t i = 0; i < d->n_peers; i++)
		pingd_controller_watch(d, d->peers[i]);
	pingd_quarantine_broadcast(d);
	pingd_keyd_sync(d, false, false);
}

void pingd_controller_end(struct pingd *d)
{
	if (!d->controller_role)
		return;
	d->controller_role = false;
	log_info("no longer the controller: probes stop");
	for (size_t i = 0; i < d->n_peers; i++) {
		struct pingd_peer *p = d->peers[i];

		pingd_probe_cancel(p->probe);
		p->probe = NULL;
		round_free(p);
		if (p->next)
			sd_event_source_set_enabled(p->next, SD_EVENT_OFF);
		if (p->state == PINGD_SUSPECT || p->state == PINGD_MISSING)
			p->state = PINGD_UNKNOWN;
		p->fails = 0;
	}
}
