#include "electd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "crypto.h"
#include "log.h"

#define MSG_QUERY    "IS_THERE_CONTROLLER"
#define MSG_ANNOUNCE "I_AM_CONTROLLER"

static const struct envelope_rule rules[] = {
    {MSG_QUERY, CERT_ROLES_ANY},
    {MSG_ANNOUNCE, CERT_ROLE_CONTROLLER},
    {NULL, 0},
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void broadcast(struct electd *d, const char *type)
{
	char *buf = NULL;
	size_t len;
	int r;

	/* The certificate always travels: a device that just started knows no fingerprint. */
	if ((r = envelope_seal(d->env, type, NULL, true, &buf, &len)) < 0) {
		log_warnx("cannot sign %s: %s", type, iotsec_strerror(r));
		return;
	}
	if (sendto(d->sock, buf, len, 0, (struct sockaddr *)&d->bcast, sizeof(d->bcast)) < 0)
		log_warn("send %s to %s", type, inet_ntoa(d->bcast.sin_addr));
	free(buf);
}

static void apply(struct electd *d, unsigned actions)
{
	uint64_t now = now_ms();

	if (actions & ELECTION_SEND_QUERY)
		broadcast(d, MSG_QUERY);
	if (actions & ELECTION_SEND_ANNOUNCE)
		broadcast(d, MSG_ANNOUNCE);
	if (actions & ELECTION_CHANGED) {
		json_t *ev = electd_status(d);

		log_info("%s%s%s", election_state_name(d->el.state),
			 d->el.controller[0] ? ", controller " : "", d->el.controller);
		if (ev && d->ctl)
			ctl_server_publish(d->ctl, "controller-changed", ev);
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
	apply(d, election_step(&d->el, ELECTION_EV_TIMER, NULL, now_ms()));
	return 0;
}

static int on_datagram(sd_event_source *s, int fd, uint32_t revents, void *ud)
{
	struct electd *d = ud;
	static char buf[ENVELOPE_MAX + 1];
	struct sockaddr_in from;
	socklen_t fromlen = sizeof(from);
	struct envelope_msg m;
	ssize_t n;
	int r;

	(void)s, (void)revents;
	n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fromlen);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	d->received++;
	if ((r = cert_store_refresh(d->store, NULL)) < 0)
		log_warnx("keeping the previous CA and CRL: %s", iotsec_strerror(r));
	if ((r = envelope_open(d->env, buf, (size_t)n, &m)) < 0) {
		if (refusals_note(&d->refused, from.sin_addr.s_addr, r))
			log_warnx("refused a message from %s: %s", inet_ntoa(from.sin_addr),
				  iotsec_strerror(r));
		return 0;
	}
	if (strcmp(m.sender.name, d->self.name) != 0) {
		log_debug("%s from %s", m.type, m.sender.name);
		apply(d, election_step(&d->el,
				       strcmp(m.type, MSG_QUERY) == 0 ? ELECTION_EV_QUERY
								      : ELECTION_EV_ANNOUNCE,
				       m.sender.name, now_ms()));
	}
	envelope_msg_clear(&m);
	return 0;
}

/* certd speaks for our certificate: while it is invalid we take no part. */
static void on_certd(json_t *ev, void *ud)
{
	struct electd *d = ud;
	const char *name = json_string_value(json_object_get(ev, "event"));
	const char *cert = json_string_value(json_object_get(ev, "certificate"));

	if (name == NULL || cert == NULL)
		return;
	if (strcmp(cert, "invalid") == 0 && d->el.state != ELECTION_OUT) {
		log_warnx("certificate invalid: leaving the election");
		apply(d, election_step(&d->el, ELECTION_EV_CERT_INVALID, NULL, now_ms()));
	} else if (strcmp(cert, "valid") == 0 && d->el.state == ELECTION_OUT) {
		log_info("certificate valid again: rejoining the election");
		apply(d, election_step(&d->el, ELECTION_EV_START, NULL, now_ms()));
	}
}

static int open_socket(struct electd *d)
{
	const struct iotsec_config *cfg = d->cfg;
	struct sockaddr_in any = {.sin_family = AF_INET, .sin_port = htons(cfg->net.port)};
	int one = 1;

	d->bcast = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons(cfg->net.port)};
	if (inet_pton(AF_INET, cfg->net.broadcast, &d->bcast.sin_addr) != 1)
		return -EINVAL;
	d->sock = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	/* keyd listens for broadcasts on the same port: both sockets get every datagram. */
	if (d->sock < 0 || setsockopt(d->sock, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    setsockopt(d->sock, SOL_SOCKET, SO_BROADCAST, &one, sizeof(one)) < 0 ||
	    bind(d->sock, (struct sockaddr *)&any, sizeof(any)) < 0)
		return -errno;
	return 0;
}

int electd_start(struct electd *d, const struct iotsec_config *cfg, sd_event *loop)
{
	static const char *const certd_events[] = {"certificate-invalid", "certificate-valid",
						   NULL};
	const struct election_params p = {
	    .tries = (unsigned)cfg->electd.tries,
	    .try_ms = (uint64_t)cfg->electd.try_ms,
	    .heartbeat_ms = (uint64_t)cfg->electd.heartbeat_ms,
	    .timeout_ms = (uint64_t)cfg->electd.timeout_ms,
	};
	char path[256];
	X509 *cert = NULL;
	EVP_PKEY *key = NULL;
	int r;

	d->cfg = cfg, d->loop = loop, d->sock = -1;
	if ((r = cert_load(cfg->device.cert, &cert)) < 0 ||
	    (r = crypto_load_private_key(cfg->device.key, &key)) < 0 ||
	    (r = cert_info_get(cert, &d->self)) < 0) {
		log_errx("cannot load this device's identity (%s, %s): %s", cfg->device.cert,
			 cfg->device.key, iotsec_strerror(r));
		goto out;
	}
	if ((r = cert_store_load(cfg->device.ca, cfg->device.crl, &d->store)) < 0 ||
	    (r = envelope_ctx_new(d->store, cert, key, rules, cfg->net.delta_t, &d->env)) < 0) {
		log_errx("cannot load the home CA (%s, %s): %s", cfg->device.ca, cfg->device.crl,
			 iotsec_strerror(r));
		goto out;
	}
	if ((r = open_socket(d)) < 0) {
		log_errx("UDP port %d, broadcast %s: %s", cfg->net.port, cfg->net.broadcast,
			 iotsec_strerror(r));
		goto out;
	}
	if ((r = sd_event_add_io(loop, NULL, d->sock, EPOLLIN, on_datagram, d)) < 0 ||
	    (r = sd_event_add_time_relative(loop, &d->timer, CLOCK_MONOTONIC, 0, 1000, on_timer,
					    d)) < 0)
		goto out;
	sd_event_source_set_enabled(d->timer, SD_EVENT_OFF);
	snprintf(path, sizeof(path), "%s/certd.sock", cfg->device.run_dir);
	if ((r = ctl_watch_new(loop, path, certd_events, 1000, on_certd, d, &d->certd)) < 0)
		goto out;
	election_init(&d->el, &p, d->self.name, d->self.role == CERT_ROLE_CONTROLLER);
	log_info("device %s (%s) joining home %s on port %d", d->self.name,
		 cert_role_name(d->self.role), d->self.home, cfg->net.port);
	apply(d, election_step(&d->el, ELECTION_EV_START, NULL, now_ms()));
	r = 0;
out:
	X509_free(cert);
	EVP_PKEY_free(key);
	return r;
}

void electd_stop(struct electd *d)
{
	ctl_watch_free(d->certd);
	sd_event_source_unref(d->timer);
	envelope_ctx_free(d->env);
	cert_store_free(d->store);
	if (d->sock >= 0)
		close(d->sock);
}

json_t *electd_status(const struct electd *d)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I}", "daemon", "electd", "device",
			 d->self.name, "role", cert_role_name(d->self.role), "state",
			 election_state_name(d->el.state), "controller", d->el.controller,
			 "received", (json_int_t)d->received, "refused",
			 (json_int_t)d->refused.total);
}
