#include "electd.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto.h"
#include "encoding.h"
#include "log.h"
#include "proto.h"

static const struct envelope_rule rules[] = {
    {ELECTD_MSG_QUERY, CERT_ROLES_ANY, false, false},
    {ELECTD_MSG_ANNOUNCE, CERT_ROLE_CONTROLLER, false, false},
    {NULL, 0, false, false},
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* {"challenge":b64} for a query, {"answer":b64} for an announcement answering one, {} for a
 * heartbeat. */
static void send_msg(struct electd *d, const char *type, const char *field,
		     const uint8_t *challenge)
{
	json_t *body = json_object();
	char *b64 = challenge ? b64_encode(challenge, ELECTD_CHALLENGE_LEN) : NULL;
	int r = -ENOMEM;

	if (body &&
	    (challenge == NULL || (b64 && json_object_set_new(body, field, json_string(b64)) == 0)))
		r = lan_udp_broadcast(d->udp, type, body);
	d->sent += r == 0; /* a failure is lan_udp_broadcast()'s to log */
	free(b64);
	json_decref(body);
}

/* Carry out what the election asked for; answer is the challenge of the query being handled. */
static void apply(struct electd *d, unsigned actions, const uint8_t *answer)
{
	uint64_t now = now_ms();

	if (actions & ELECTION_SEND_QUERY) {
		/* A fresh challenge each time: only an answer to it shows the controller is
		 * there. */
		if (crypto_random(d->challenge, sizeof(d->challenge)) < 0)
			log_warnx("no randomness for a challenge");
		else
			send_msg(d, ELECTD_MSG_QUERY, "challenge", d->challenge);
	}
	if (actions & ELECTION_SEND_ANNOUNCE)
		send_msg(d, ELECTD_MSG_ANNOUNCE, "answer", answer);
	if (actions & ELECTION_CHANGED) {
		json_t *ev = electd_status(d);

		log_notice("%s%s%s", election_state_name(d->el.state),
			   d->el.controller[0] ? ", controller " : "", d->el.controller);
		if (ev && d->ctl)
			ctl_server_publish(d->ctl, PROTO_EV_CONTROLLER, ev);
		json_decref(ev);
	}
	if (d->el.state != ELECTION_OUT) {
		uint64_t wait = d->el.deadline_ms > now ? d->el.deadline_ms - now : 0;

		sd_event_source_set_time_relative(d->timer, wait * 1000);
		sd_event_source_set_enabled(d->timer, SD_EVENT_ONESHOT);
	} else {
		sd_event_source_set_enabled(d->timer, SD_EVENT_OFF);
	}
}

static int on_timer(sd_event_source *s, uint64_t usec, void *ud)
{
	struct electd *d = ud;

	(void)s, (void)usec;
	apply(d, election_step(&d->el, ELECTION_EV_TIMER, NULL, now_ms()), NULL);
	return 0;
}

/* The challenge a body carries in field, exactly ELECTD_CHALLENGE_LEN bytes; or none. */
static int body_challenge(json_t *body, const char *field, uint8_t out[ELECTD_CHALLENGE_LEN])
{
	const char *b64 = json_string_value(json_object_get(body, field));

	if (json_object_size(body) == 0)
		return -ENOENT;
	if (json_object_size(body) != 1 || b64 == NULL ||
	    b64_decode_exact(b64, out, ELECTD_CHALLENGE_LEN) < 0)
		return -EBADMSG;
	return 0;
}

/* Whether a query from name comes soon enough after its last one to be a flood: honest devices
 * ask once per try_ms. Remembers this one either way. */
static bool asks_too_often(struct electd *d, const char *name, uint64_t now)
{
	size_t i, oldest = 0;
	bool flood;

	for (i = 0; i < ELECTD_ASKERS_MAX; i++) {
		if (strcmp(d->askers[i].name, name) == 0)
			break;
		if (d->askers[i].at_ms < d->askers[oldest].at_ms)
			oldest = i;
	}
	if (i == ELECTD_ASKERS_MAX) {
		i = oldest;
		snprintf(d->askers[i].name, sizeof(d->askers[i].name), "%s", name);
		d->askers[i].at_ms = 0;
	}
	flood = d->askers[i].at_ms != 0 && now < d->askers[i].at_ms + d->el.p.try_ms / 2;
	if (!flood)
		d->askers[i].at_ms = now;
	return flood;
}

void electd_on_message(struct envelope_msg *m, const struct sockaddr_in *from, bool broadcast,
		       void *userdata)
{
	struct electd *d = userdata;
	uint8_t ch[ELECTD_CHALLENGE_LEN];
	enum election_event_type ev;
	int r;

	d->received++;
	if (strcmp(m->sender.name, d->member->self.name) == 0)
		return; /* our own broadcast, back to us */
	/* Every device must hear the same controllers: one that speaks to some devices alone could
	 * split the home. */
	if (!broadcast) {
		lan_member_refuse(d->member, from, m->sender.name, -IOTSEC_ENOTBCAST);
		return;
	}
	if (strcmp(m->type, ELECTD_MSG_QUERY) == 0) {
		if ((r = body_challenge(m->body, "challenge", ch)) < 0) {
			lan_member_refuse(d->member, from, m->sender.name, -EBADMSG);
			return;
		}
		if (d->el.state == ELECTION_CONTROLLER &&
		    asks_too_often(d, m->sender.name, now_ms())) {
			lan_member_refuse(d->member, from, m->sender.name, -IOTSEC_EUNASKED);
			return;
		}
		apply(d, election_step(&d->el, ELECTION_EV_QUERY, m->sender.name, now_ms()), ch);
		return;
	}
	r = body_challenge(m->body, "answer", ch);
	if (r == -EBADMSG) {
		lan_member_refuse(d->member, from, m->sender.name, r);
		return;
	}
	ev = r == 0 && crypto_memcmp(ch, d->challenge, sizeof(ch)) == 0 ? ELECTION_EV_ANSWER
									: ELECTION_EV_HEARTBEAT;
	log_debug("%s from %s (%s)", m->type, m->sender.name,
		  ev == ELECTION_EV_ANSWER ? "answering us" : "heartbeat");
	apply(d, election_step(&d->el, ev, m->sender.name, now_ms()), NULL);
}

/* certd speaks for our certificate: out of the home (certd gone or not heard from yet
 * included), we take no part. */
void electd_on_certd(bool member, const char *why, void *userdata)
{
	struct electd *d = userdata;

	if (!member && d->el.state != ELECTION_OUT) {
		log_warnx("leaving the election: %s", why);
		apply(d, election_step(&d->el, ELECTION_EV_CERT_INVALID, NULL, now_ms()), NULL);
	} else if (member && d->el.state == ELECTION_OUT) {
		log_info("%s: joining the election", why);
		apply(d, election_step(&d->el, ELECTION_EV_START, NULL, now_ms()), NULL);
	}
}

int electd_start(struct electd *d, const struct iotsec_config *cfg, sd_event *loop)
{
	const struct election_params p = {
	    .tries = (unsigned)cfg->electd.tries,
	    .try_ms = (uint64_t)cfg->electd.try_ms,
	    .heartbeat_ms = (uint64_t)cfg->electd.heartbeat_ms,
	    .timeout_ms = (uint64_t)cfg->electd.timeout_ms,
	    .hold_ms = (uint64_t)cfg->electd.hold_ms,
	};
	const char *what = NULL;
	int r;

	d->cfg = cfg;
	if ((r = lan_member_load(cfg, rules, &d->member, &what)) < 0) {
		log_errx("%s: %s", what, iotsec_strerror(r));
		return r;
	}
	if ((r = lan_udp_open(loop, d->member, (uint16_t)cfg->net.port, cfg->net.broadcast,
			      electd_on_message, d, &d->udp)) < 0) {
		log_errx("UDP port %d: %s", cfg->net.port, iotsec_strerror(r));
		return r;
	}
	if ((r = sd_event_add_time_relative(loop, &d->timer, CLOCK_MONOTONIC, 0, 1000, on_timer,
					    d)) < 0 ||
	    (r = sd_event_source_set_enabled(d->timer, SD_EVENT_OFF)) < 0 ||
	    (r = certd_client_new(loop, cfg->device.run_dir, electd_on_certd, d, &d->certd)) < 0 ||
	    (r = certd_client_signs_with(d->certd, cfg->device.cert, d->member->self.serial)) < 0) {
		log_errx("cannot start: %s", iotsec_strerror(r));
		return r;
	}
	election_init(&d->el, &p, d->member->self.name,
		      d->member->self.role == CERT_ROLE_CONTROLLER);
	log_info("device %s (%s) of home %s on port %d; waiting for iotsec-certd",
		 d->member->self.name, cert_role_name(d->member->self.role), d->member->self.home,
		 cfg->net.port);
	return 0;
}

void electd_stop(struct electd *d)
{
	certd_client_free(d->certd);
	sd_event_source_disable_unref(d->timer);
	lan_udp_free(d->udp);
	lan_member_free(d->member);
}

json_t *electd_status(const struct electd *d)
{
	json_t *o =
	    json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "daemon", "electd", "device",
		      d->member->self.name, "role", cert_role_name(d->member->self.role), "state",
		      election_state_name(d->el.state), "controller", d->el.controller, "changes",
		      (json_int_t)d->el.changes, "received", (json_int_t)d->received, "sent",
		      (json_int_t)d->sent);

	if (o && lan_member_status(d->member, o) < 0) {
		json_decref(o);
		o = NULL;
	}
	return o;
}
