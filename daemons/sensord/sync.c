/* Neighbour resync (SPEC 8, resync.h) on net.port + 3: a SYNC_RQA broadcast on UDP; the
 * answers on TCP links (lan.h), each link carrying one request: the responder opens it with
 * its SYNC_RPA, the requester's SYNC_ACK comes back on it, and the responder's SYNC_STATE ends
 * it. All four are any_time envelopes: the echoed nonce makes an answer fresh, not our clock
 * (which may say 1970).
 *
 * Our endpoint also carries the rules of the doctor's envelopes (DOCTOR_GRANT, EMERGENCY_ACK)
 * and the relay's receipts (RELAY_RECEIPT), which arrive through the broker: one envelope
 * context for everything sensord opens. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "doctor.h"
#include "log.h"
#include "receipt.h"
#include "sensord.h"

/* clang-format off */
const struct envelope_rule sensord_rules[] = {
    {RESYNC_MSG_RQA, CERT_ROLES_ANY, false, true},
    {RESYNC_MSG_RPA, CERT_ROLES_ANY, true, true},
    {RESYNC_MSG_ACK, CERT_ROLES_ANY, true, true},
    {RESYNC_MSG_STATE, CERT_ROLES_ANY, true, true},
    {DOCTOR_MSG_GRANT, CERT_ROLE_DOCTOR, true, true},
    {DOCTOR_MSG_ACK, CERT_ROLE_DOCTOR, true, true},
    {RECEIPT_MSG, CERT_ROLE_RELAY, true, true},
    {NULL, 0, false, false},
};
/* clang-format on */

/* What a link is for. */
struct sync_link {
	struct sensord *d;
	struct lan_link *link;
	bool responder; /* ours to a requester; else a peer's answer to our request */
	uint8_t nonce[RESYNC_NONCE_LEN];
	char peer[CERT_NAME_MAX];
};

/* The requester's links to the peers that answered, to send the ACK on. */
#define SYNC_LINKS_MAX RESYNC_PEERS_MAX
static struct sync_link *answer_links[SYNC_LINKS_MAX];

static void sync_link_free(void *data)
{
	struct sync_link *sl = data;

	for (size_t i = 0; i < SYNC_LINKS_MAX; i++)
		if (answer_links[i] == sl)
			answer_links[i] = NULL;
	free(sl);
}

static struct sync_link *sync_link_new(struct sensord *d, struct lan_link *l, bool responder)
{
	struct sync_link *sl = calloc(1, sizeof(*sl));

	if (sl == NULL)
		return NULL;
	sl->d = d, sl->link = l, sl->responder = responder;
	lan_link_set_data(l, sl, sync_link_free);
	return sl;
}

static void arm_timer(struct sensord *d);

static void act(struct sensord *d, enum resync_action a)
{
	json_t *body = NULL;
	int r = 0;

	switch (a) {
	case RESYNC_NOTHING:
		break;
	case RESYNC_SEND_RQA:
		log_debug("resync: asking the neighbours (try %u of %u)", d->rs.tries,
			  d->rs.max_tries);
		if ((r = resync_rqa_build(d->rs.nonce, &body)) == 0)
			r = lan_udp_broadcast(d->udp, RESYNC_MSG_RQA, body);
		break;
	case RESYNC_SEND_ACK: {
		char id[2 * RESYNC_NONCE_LEN + 1];
		struct sync_link *sl = NULL;

		for (size_t i = 0; i < SYNC_LINKS_MAX && sl == NULL; i++)
			if (answer_links[i] && strcmp(answer_links[i]->peer, d->rs.chosen) == 0)
				sl = answer_links[i];
		resync_id(d->rs.nonce, id);
		log_debug("resync: %s is synced, asking it for the state", d->rs.chosen);
		if (sl == NULL)
			r = -ENOTCONN; /* its link went: the timer moves on to the next */
		else if ((r = resync_ack_build(d->rs.nonce, &body)) == 0)
			r = lan_link_send(sl->link, RESYNC_MSG_ACK, id, body, true);
		break;
	}
	case RESYNC_GAVE_UP:
		d->sync = SENSORD_OWN_CLOCK;
		log_warnx("resync: no neighbour answered %u requests: keeping our own clock "
			  "(stream epoch %u)",
			  d->rs.max_tries, sensord_epoch_now(d));
		sensord_advance(d);
		break;
	}
	if (r < 0)
		log_debug("resync: %s", iotsec_strerror(r));
	json_decref(body);
	arm_timer(d);
}

static int on_timer(sd_event_source *s, uint64_t usec, void *ud)
{
	struct sensord *d = ud;

	(void)s, (void)usec;
	if (d->rs.phase == RESYNC_ASKING || d->rs.phase == RESYNC_ACKED)
		act(d, resync_on_timer(&d->rs, clock_mono_ms()));
	return 0;
}

static void arm_timer(struct sensord *d)
{
	uint64_t now = clock_mono_ms();
	uint64_t wait = d->rs.deadline > now ? d->rs.deadline - now : 0;

	if (d->rs.phase != RESYNC_ASKING && d->rs.phase != RESYNC_ACKED) {
		if (d->rs_timer)
			sd_event_source_set_enabled(d->rs_timer, SD_EVENT_OFF);
		return;
	}
	if (d->rs_timer == NULL)
		sd_event_add_time_relative(d->loop, &d->rs_timer, CLOCK_MONOTONIC, wait * 1000, 0,
					   on_timer, d);
	else {
		sd_event_source_set_time_relative(d->rs_timer, wait * 1000);
		sd_event_source_set_enabled(d->rs_timer, SD_EVENT_ONESHOT);
	}
}

void sensord_resync(struct sensord *d, const char *why)
{
	if (d->rs.phase == RESYNC_ASKING || d->rs.phase == RESYNC_ACKED)
		return;
	log_notice("resync: %s: asking the neighbours for the time and the group key", why);
	d->sync = SENSORD_RESYNCING;
	act(d, resync_start(&d->rs, clock_mono_ms()));
}

/* ---- the responder ---- */

static bool synced(const struct sensord *d)
{
	return d->sync == SENSORD_SYNCED && d->group != NULL && stream_current(d->group) > 0;
}

/* At most one answer a second to one requester. */
static bool may_answer(struct sensord *d, const char *peer)
{
	uint64_t now = clock_mono_ms();
	size_t oldest = 0;

	for (size_t i = 0; i < RESYNC_PEERS_MAX; i++) {
		if (strcmp(d->answered[i].peer, peer) == 0) {
			if (now - d->answered[i].at < 1000)
				return false;
			d->answered[i].at = now;
			return true;
		}
		if (d->answered[i].at < d->answered[oldest].at)
			oldest = i;
	}
	snprintf(d->answered[oldest].peer, sizeof(d->answered[oldest].peer), "%s", peer);
	d->answered[oldest].at = now;
	return true;
}

static void on_rqa(struct sensord *d, struct envelope_msg *m, const struct sockaddr_in *from)
{
	uint8_t nonce[RESYNC_NONCE_LEN];
	char id[2 * RESYNC_NONCE_LEN + 1];
	struct sync_link *sl;
	struct lan_link *l = NULL;
	json_t *body = NULL;
	int r;

	if ((r = resync_rqa_parse(m->body, nonce)) < 0) {
		lan_member_refuse(d->member, from, m->sender.name, r);
		return;
	}
	if (!may_answer(d, m->sender.name))
		return;
	resync_id(nonce, id);
	if ((r = resync_rpa_build(nonce, synced(d), d->group ? stream_current(d->group) : 0,
				  &body)) < 0 ||
	    (r = lan_link_open(d->tcp, m->sender.name, from, &l)) < 0)
		goto out;
	if ((sl = sync_link_new(d, l, true)) == NULL) {
		r = -ENOMEM;
		lan_link_close(l);
		goto out;
	}
	memcpy(sl->nonce, nonce, sizeof(nonce));
	snprintf(sl->peer, sizeof(sl->peer), "%s", m->sender.name);
	if ((r = lan_link_send(l, RESYNC_MSG_RPA, id, body, true)) < 0)
		lan_link_close(l);
	else
		log_debug("resync: %s asks; we are %s", m->sender.name,
			  synced(d) ? "synced" : "not synced");
out:
	if (r < 0)
		log_debug("resync: no answer to %s: %s", m->sender.name, iotsec_strerror(r));
	json_decref(body);
}

static void on_datagram(struct envelope_msg *m, const struct sockaddr_in *from, bool broadcast,
			void *ud)
{
	struct sensord *d = ud;

	if (strcmp(m->sender.name, d->member->self.name) == 0 || !d->in_home)
		return;
	if (!broadcast) {
		lan_member_refuse(d->member, from, m->sender.name, -IOTSEC_ENOTBCAST);
		return;
	}
	if (strcmp(m->type, RESYNC_MSG_RQA) == 0)
		on_rqa(d, m, from);
	else
		lan_member_refuse(d->member, from, m->sender.name, -IOTSEC_ETYPE);
}

static void on_ack(struct sensord *d, struct lan_link *l, struct envelope_msg *m)
{
	struct sync_link *sl = lan_link_data(l);
	struct resync_state st = {0};
	char id[2 * RESYNC_NONCE_LEN + 1];
	uint8_t nonce[RESYNC_NONCE_LEN];
	json_t *body = NULL;
	const uint8_t *key;
	int r;

	if (sl == NULL || !sl->responder || resync_ack_parse(m->body, nonce) < 0 ||
	    memcmp(nonce, sl->nonce, sizeof(nonce)) != 0) {
		lan_member_refuse(d->member, lan_link_addr(l), m->sender.name, -IOTSEC_EUNASKED);
		lan_link_close(l);
		return;
	}
	if (!synced(d) || (key = stream_key(d->group, false)) == NULL) {
		lan_link_close(l);
		return;
	}
	memcpy(st.nonce, nonce, sizeof(nonce));
	st.time_ms = sensord_now_ms(d);
	st.schedule = d->sched;
	st.epoch = stream_current(d->group);
	st.pool = d->pool;
	memcpy(st.stream, stream_get_id(d->group), STREAM_ID_LEN);
	memcpy(st.key, key, CRYPTO_KEY_LEN);
	resync_id(nonce, id);
	if ((r = resync_state_build(&st, X509_get0_pubkey(m->cert), &body)) < 0 ||
	    (r = lan_link_send(l, RESYNC_MSG_STATE, id, body, true)) < 0)
		log_debug("resync: no state for %s: %s", m->sender.name, iotsec_strerror(r));
	else
		log_info("resync: gave %s the time, epoch %u and the group key", m->sender.name,
			 st.epoch);
	resync_state_wipe(&st);
	json_decref(body);
	lan_link_finish(l);
}

/* ---- the requester ---- */

static void on_rpa(struct sensord *d, struct lan_link *l, struct envelope_msg *m)
{
	uint8_t nonce[RESYNC_NONCE_LEN];
	struct sync_link *sl;
	bool is_synced;
	uint32_t epoch;
	size_t i;

	if (lan_link_data(l) != NULL || resync_rpa_parse(m->body, nonce, &is_synced, &epoch) < 0) {
		lan_member_refuse(d->member, lan_link_addr(l), m->sender.name, -EBADMSG);
		lan_link_close(l);
		return;
	}
	if (d->rs.phase != RESYNC_ASKING && d->rs.phase != RESYNC_ACKED) {
		lan_link_close(l);
		return;
	}
	/* An earlier answer of the same peer (an earlier request) is of no use any more. */
	for (i = 0; i < SYNC_LINKS_MAX; i++)
		if (answer_links[i] && strcmp(answer_links[i]->peer, m->sender.name) == 0) {
			lan_link_close(answer_links[i]->link);
			answer_links[i] = NULL;
		}
	for (i = 0; i < SYNC_LINKS_MAX && answer_links[i]; i++)
		;
	if (i == SYNC_LINKS_MAX || (sl = sync_link_new(d, l, false)) == NULL) {
		lan_link_close(l);
		return;
	}
	answer_links[i] = sl;
	memcpy(sl->nonce, nonce, sizeof(nonce));
	snprintf(sl->peer, sizeof(sl->peer), "%s", m->sender.name);
	act(d, resync_on_rpa(&d->rs, m->sender.name, nonce, is_synced, epoch, clock_mono_ms()));
}

static void on_state(struct sensord *d, struct lan_link *l, struct envelope_msg *m)
{
	struct sync_link *sl = lan_link_data(l);
	struct resync_state st = {0};
	struct stream *s = NULL;
	int64_t ours;
	int r;

	if (sl == NULL || sl->responder) {
		lan_member_refuse(d->member, lan_link_addr(l), m->sender.name, -IOTSEC_EUNASKED);
		lan_link_close(l);
		return;
	}
	if ((r = resync_state_parse(m->body, d->member->key, &st)) < 0)
		goto refuse;
	/* resync_on_state() judges the time by the schedule the STATE carries: only ours makes
	 * that a bound on the clock we take. Nor is the home's time ever before our floor (the
	 * build, the certificates): a peer saying so is lost or lying. */
	if (st.schedule.start != d->sched.start || st.schedule.interval != d->sched.interval) {
		log_warnx("resync: %s's stream schedule (start %lld, every %lld s) is not ours "
			  "(start %lld, every %lld s): check stream.start and stream.interval_s",
			  m->sender.name, (long long)st.schedule.start,
			  (long long)st.schedule.interval, (long long)d->sched.start,
			  (long long)d->sched.interval);
		r = -EBADMSG;
		goto refuse;
	}
	if (st.time_ms / 1000 < clock_floor()) {
		r = -IOTSEC_ESTALE;
		goto refuse;
	}
	if ((r = resync_on_state(&d->rs, m->sender.name, &st)) < 0)
		goto refuse;
	ours = clock_wall_ms();
	d->offset_ms = st.time_ms - ours;
	d->offset_set = true;
	clock_raise_floor(st.time_ms / 1000);
	if ((r = stream_from_key(st.stream, st.epoch, st.key, NULL, &s)) < 0) {
		log_warnx("resync: the group key of %s: %s", m->sender.name, iotsec_strerror(r));
		goto out;
	}
	d->sync = SENSORD_SYNCED;
	d->group_from_resync = true;
	sensord_set_group(d, s, st.pool, st.epoch);
	log_notice("resync: synced with %s: stream epoch %u, pool %u, clock off by %lld ms",
		   m->sender.name, st.epoch, st.pool, (long long)d->offset_ms);
	sensord_advance(d); /* the doctor chain moves on locally */
	arm_timer(d);
	sensord_drain(d);
	goto out;
refuse:
	lan_member_refuse(d->member, lan_link_addr(l), m->sender.name,
			  r == -EPERM ? -IOTSEC_EUNASKED : r);
out:
	resync_state_wipe(&st);
	lan_link_close(l);
}

static void on_link(struct lan_link *l, struct envelope_msg *m, void *ud)
{
	struct sensord *d = ud;

	if (!d->in_home) {
		lan_link_close(l);
		return;
	}
	if (strcmp(m->type, RESYNC_MSG_RPA) == 0)
		on_rpa(d, l, m);
	else if (strcmp(m->type, RESYNC_MSG_ACK) == 0)
		on_ack(d, l, m);
	else if (strcmp(m->type, RESYNC_MSG_STATE) == 0)
		on_state(d, l, m);
	else {
		lan_member_refuse(d->member, lan_link_addr(l), m->sender.name, -IOTSEC_ETYPE);
		lan_link_close(l);
	}
}

int sensord_sync_start(struct sensord *d)
{
	const struct iotsec_config *cfg = d->cfg;
	uint16_t port = (uint16_t)(cfg->net.port + 3);
	const char *what = NULL;
	int r;

	if ((r = lan_member_load(cfg, sensord_rules, &d->member, &what)) < 0) {
		log_errx("%s: %s", what, iotsec_strerror(r));
		return r;
	}
	resync_init(&d->rs, (unsigned)cfg->sensord.resync_tries, (uint64_t)cfg->sensord.resync_ms);
	if ((r = lan_udp_open(d->loop, d->member, port, cfg->net.broadcast, on_datagram, d,
			      &d->udp)) < 0 ||
	    (r = lan_tcp_open(d->loop, d->member, port, on_link, d, &d->tcp)) < 0) {
		log_errx("port %u: %s", port, iotsec_strerror(r));
		return r;
	}
	return 0;
}

/* After the state is loaded: do we know where we are? */
bool sensord_sync_needed(struct sensord *d, const char **why)
{
	uint32_t e = sensord_epoch_now(d), de;

	if (clock_unset()) {
		*why = "the clock is not set";
		return true;
	}
	if (d->doctor) {
		de = stream_current(d->doctor);
		if ((de > e && de - e > 1) || (e > de && e - de > 1)) {
			*why = "the saved doctor chain is more than one epoch from our clock";
			return true;
		}
	}
	return false;
}

void sensord_sync_stop(struct sensord *d)
{
	lan_tcp_free(d->tcp); /* first: links free their state */
	lan_udp_free(d->udp);
	sd_event_source_disable_unref(d->rs_timer);
	d->tcp = NULL, d->udp = NULL, d->rs_timer = NULL;
}
