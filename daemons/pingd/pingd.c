/* pingd's state, its control verbs, the daemons it follows (certd, electd) and the one it drives
 * (keyd). */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ca.h"
#include "clock.h"
#include "daemon.h"
#include "file.h"
#include "log.h"
#include "pingd.h"
#include "proto.h"

#define STATE_MAX (256 * 1024)

/* Which roles may send what, and which messages name their recipient. The controller's
 * broadcasts need a controller certificate; that the sender is the controller electd names is
 * the daemon's to check. */
static const struct envelope_rule rules[] = {
    {PING_MSG_HELLO, CERT_ROLES_ANY, false, false},
    {PING_MSG_SUSPECT, CERT_ROLE_CONTROLLER, false, false},
    {PING_MSG_ALIVE, CERT_ROLES_ANY, false, false},
    {PING_MSG_QUARANTINE, CERT_ROLE_CONTROLLER, false, false},
    {PING_MSG_PING, CERT_ROLES_ANY, true, false},
    {PING_MSG_PONG, CERT_ROLES_ANY, true, false},
    {PING_MSG_PING_REQ, CERT_ROLE_CONTROLLER, true, false},
    {PING_MSG_REPORT, CERT_ROLES_ANY, true, false},
    {PING_MSG_MALICIOUS, CERT_ROLES_ANY, true, false},
    {PING_MSG_CRL_GET, CERT_ROLES_ANY, true, false},
    {PING_MSG_CRL, CERT_ROLES_ANY, true, false},
    {NULL, 0, false, false},
};

uint64_t pingd_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int pingd_timer(struct pingd *d, sd_event_source **s, uint64_t ms, sd_event_time_handler_t fn,
		void *ud)
{
	int r;

	if (*s == NULL)
		return sd_event_add_time_relative(d->loop, s, CLOCK_MONOTONIC, ms * 1000, 0, fn,
						  ud);
	if ((r = sd_event_source_set_time_relative(*s, ms * 1000)) < 0)
		return r;
	return sd_event_source_set_enabled(*s, SD_EVENT_ONESHOT);
}

const char *pingd_peer_state_name(enum pingd_peer_state s)
{
	switch (s) {
	case PINGD_UNKNOWN:
		return "unknown";
	case PINGD_ALIVE:
		return "alive";
	case PINGD_SUSPECT:
		return "suspect";
	case PINGD_MISSING:
		return "missing";
	case PINGD_QUARANTINED:
		return "quarantined";
	}
	return "unknown";
}

json_t *pingd_status(struct pingd *d)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
			      "daemon", "pingd", "device", d->member->self.name, "role",
			      d->controller_role ? "controller" : "node", "controller",
			      d->controller, "peers", (json_int_t)d->n_peers, "crl_number",
			      (json_int_t)d->crl_number, "quarantine_version",
			      (json_int_t)d->q.version, "quarantined", (json_int_t)d->q.n, "probes",
			      (json_int_t)d->probes, "missing", (json_int_t)d->missing, "sent",
			      (json_int_t)d->sent, "received", (json_int_t)d->received);

	if (o && lan_member_status(d->member, o) < 0) {
		json_decref(o);
		o = NULL;
	}
	return o;
}

/* ---- the state file: known devices and the quarantine ---- */

static int state_path(const struct pingd *d, char *out, size_t len)
{
	int n = snprintf(out, len, "%s/%s", d->dir, PINGD_STATE_FILE);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

void pingd_state_save(struct pingd *d)
{
	json_t *list = ping_list_build(d->q.entry, d->q.n);
	json_t *o = list ? json_pack("{s:I, s:[], s:o}", "version", (json_int_t)d->q.version,
				     "devices", "quarantine", list)
			 : NULL;
	char path[PATH_MAX], *text = NULL;
	int r = -ENOMEM;

	for (size_t i = 0; o && i < d->n_peers; i++) {
		const struct pingd_peer *p = d->peers[i];
		char addr[INET_ADDRSTRLEN] = "";

		if (p->has_addr)
			inet_ntop(AF_INET, &p->addr.sin_addr, addr, sizeof(addr));
		json_array_append_new(json_object_get(o, "devices"),
				      json_pack("{s:s, s:s}", "name", p->name, "address", addr));
	}
	d->state_dirty = false;
	if (o && (text = json_dumps(o, JSON_COMPACT)) != NULL &&
	    (r = state_path(d, path, sizeof(path))) == 0)
		r = file_write_atomic(path, text, strlen(text), 0600);
	if (r < 0)
		log_warnx("cannot save %s in %s: %s", PINGD_STATE_FILE, d->dir, iotsec_strerror(r));
	free(text);
	json_decref(o);
}

/* Read back what pingd_state_save() wrote. A missing file is a first start; a damaged one is an
 * error: starting over would forget the quarantine, and give its devices rings again. */
static int state_load(struct pingd *d)
{
	char path[PATH_MAX], *text = NULL;
	json_t *o = NULL, *devices, *v;
	struct ping_quarantine q = {0};
	uint16_t port = (uint16_t)(d->cfg->net.port + 2);
	const char *why = "damaged";
	json_int_t version;
	size_t i;
	int r;

	if ((r = state_path(d, path, sizeof(path))) < 0)
		return r;
	if ((r = file_read(path, STATE_MAX, &text, &i)) == -ENOENT)
		return 0;
	if (r < 0)
		goto out;
	r = -EBADMSG;
	if ((o = json_loadb(text, i, JSON_REJECT_DUPLICATES, NULL)) == NULL) {
		why = "damaged: not JSON";
		goto out;
	}
	devices = json_object_get(o, "devices");
	if (!json_is_object(o) || json_object_size(o) != 3 ||
	    !json_is_integer(json_object_get(o, "version")) || !json_is_array(devices)) {
		why = "not a pingd state";
		goto out;
	}
	version = json_integer_value(json_object_get(o, "version"));
	if (version < 0 || version > PING_VERSION_MAX ||
	    ping_list_parse(json_object_get(o, "quarantine"), q.entry, &q.n) < 0 ||
	    (version == 0 && q.n > 0)) {
		why = "bad quarantine list";
		goto out;
	}
	if (json_array_size(devices) > PINGD_PEERS_MAX) {
		why = "too many devices";
		goto out;
	}
	json_array_foreach(devices, i, v)
	{
		const char *name = json_string_value(json_object_get(v, "name"));
		const char *addr = json_string_value(json_object_get(v, "address"));
		struct pingd_peer *p;
		struct in_addr in;

		if (json_object_size(v) != 2 || !ca_name_valid(name) || addr == NULL ||
		    (addr[0] && inet_pton(AF_INET, addr, &in) != 1) ||
		    pingd_peer_find(d, name) != NULL) {
			why = "bad device";
			goto out;
		}
		if ((p = pingd_peer_add(d, name)) == NULL) {
			r = -ENOMEM;
			goto out;
		}
		if (addr[0]) {
			p->addr.sin_family = AF_INET;
			p->addr.sin_addr = in;
			p->addr.sin_port = htons(port);
			p->has_addr = true;
		}
	}
	q.version = (uint32_t)version;
	d->q = q;
	r = 0;
out:
	if (r < 0)
		log_errx("%s: %s", path, r == -EBADMSG ? why : iotsec_strerror(r));
	free(text);
	json_decref(o);
	return r;
}

/* ---- keyd: the quarantine list, and a pool without it ---- */

static void keyd_next(struct pingd *d);

static json_t *names_of(const struct pingd *d)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < d->q.n; i++)
		json_array_append_new(a, json_string(d->q.entry[i].name));
	return a;
}

static void on_keyd_rekey(int r, json_t *reply, void *ud)
{
	struct pingd *d = ud;

	if (r == -ECANCELED)
		return;
	d->keyd_call = NULL;
	if (r < 0) {
		/* Asked again at the next HELLO; said once until it works. */
		if (!d->keyd_warned)
			log_warnx("keyd did not start a pool without the quarantined devices: %s "
				  "(asking again every %d ms)",
				  r == -EPROTO ? ctl_reply_error(reply) : iotsec_strerror(r),
				  d->cfg->pingd.hello_ms);
		d->keyd_warned = true;
		return;
	}
	d->keyd_rekey = false, d->keyd_warned = false;
	log_notice("keyd starts the pool of epoch %lld without the %zu quarantined",
		   (long long)json_integer_value(json_object_get(reply, "epoch")), d->q.n);
	keyd_next(d);
}

static void on_keyd_list(int r, json_t *reply, void *ud)
{
	struct pingd *d = ud;
	const char *err = r == -EPROTO ? ctl_reply_error(reply) : NULL;

	if (r == -ECANCELED)
		return;
	d->keyd_call = NULL;
	if (r == 0) {
		d->keyd_list = false, d->keyd_has_quarantine = true, d->keyd_warned = false;
		d->keyd_release = false; /* keyd gives the released their rings itself */
	} else if (err && strncmp(err, "unknown verb", 12) == 0) {
		/* A keyd without the verb: the controller's rekey with exclude keeps the
		 * quarantined out, and a release needs a pool that no longer leaves one out. */
		if (d->keyd_has_quarantine || !d->keyd_told_no_verb)
			log_info("keyd has no %s verb: the pool's exclude list keeps them out",
				 PROTO_KEYD_QUARANTINE);
		d->keyd_told_no_verb = true;
		d->keyd_list = false, d->keyd_has_quarantine = false;
		if (d->keyd_release && d->controller_role)
			d->keyd_rekey = true;
		d->keyd_release = false;
	} else {
		if (!d->keyd_warned)
			log_warnx("keyd did not take the quarantine list: %s (asking again every "
				  "%d ms)",
				  err ? err : iotsec_strerror(r), d->cfg->pingd.hello_ms);
		d->keyd_warned = true;
		return;
	}
	keyd_next(d);
}

/* One call at a time, the list before the pool: the pool must not give what the list takes
 * away. */
static void keyd_next(struct pingd *d)
{
	json_t *args = NULL;
	int r = 0;

	if (d->keyd_call || !ctl_peer_connected(d->keyd) || !d->in_home)
		return;
	if (d->keyd_list) {
		args = json_pack("{s:o}", "names", names_of(d));
		r = ctl_peer_call(d->keyd, PROTO_KEYD_QUARANTINE, args, PINGD_KEYD_CALL_MS,
				  on_keyd_list, d, &d->keyd_call);
	} else if (d->keyd_rekey && d->controller_role) {
		/* A keyd that holds the list leaves the quarantined out of every pool itself, and
		 * gives a released one its ring again; an exclude list would keep it out of this
		 * pool even then. Without the verb, the exclude list is all there is. */
		args = d->keyd_has_quarantine ? json_object()
					      : json_pack("{s:o}", "exclude", names_of(d));
		r = ctl_peer_call(d->keyd, PROTO_KEYD_REKEY, args, PINGD_KEYD_CALL_MS,
				  on_keyd_rekey, d, &d->keyd_call);
	}
	if (r < 0) {
		d->keyd_call = NULL;
		log_debug("keyd: %s", iotsec_strerror(r));
	}
	json_decref(args);
}

void pingd_keyd_sync(struct pingd *d, bool rekey, bool release)
{
	d->keyd_list = true;
	d->keyd_rekey = d->keyd_rekey || rekey;
	d->keyd_release = d->keyd_release || release;
	keyd_next(d);
}

/* ---- verbs ---- */

static int verb_status(json_t *req, json_t **ret, void *ud)
{
	(void)req;
	*ret = pingd_status(ud);
	return *ret ? 0 : -ENOMEM;
}

/* A monotonic time in ms (trust.h's) as unix seconds; 0 stays 0. */
static int64_t unix_of(uint64_t ms)
{
	uint64_t now = pingd_now_ms();

	if (ms == 0)
		return 0;
	return clock_now() +
	       (ms > now ? (int64_t)((ms - now + 999) / 1000) : -(int64_t)((now - ms) / 1000));
}

static json_t *flags_of(unsigned flags)
{
	json_t *a = json_array();

	for (unsigned f = 1; a && f <= TRUST_MALICIOUS; f <<= 1)
		if ((flags & f) && trust_flag_name((enum trust_flag)f))
			json_array_append_new(a, json_string(trust_flag_name((enum trust_flag)f)));
	return a;
}

static int verb_peers(json_t *req, json_t **ret, void *ud)
{
	struct pingd *d = ud;
	json_t *list = json_array();

	(void)req;
	for (size_t i = 0; list && i < d->n_peers; i++) {
		const struct pingd_peer *p = d->peers[i];
		/* A peer trust has not met yet stands where every new one starts. */
		struct trust_peer fresh = {.reputation = 0.5};
		const struct trust_peer *tp = trust_find(d->trust, p->name);
		char addr[INET_ADDRSTRLEN] = "";

		if (tp == NULL)
			tp = &fresh;
		if (p->has_addr)
			inet_ntop(AF_INET, &p->addr.sin_addr, addr, sizeof(addr));
		json_array_append_new(
		    list,
		    json_pack("{s:s, s:s, s:s, s:I, s:f, s:f, s:f, s:o, s:I, s:I}", "name", p->name,
			      "address", addr, "state", pingd_peer_state_name(p->state),
			      "last_seen", (json_int_t)p->last_seen, "direct", trust_direct(tp),
			      "reputation", tp->reputation, "trust", trust_value(d->trust, tp),
			      "flags", flags_of(tp->flags), "banned_until",
			      (json_int_t)unix_of(tp->banned_until), "auth_failures",
			      (json_int_t)tp->auth_failures));
	}
	*ret = json_pack("{s:o}", "peers", list);
	return *ret ? 0 : -ENOMEM;
}

static int verb_quarantine(json_t *req, json_t **ret, void *ud)
{
	struct pingd *d = ud;
	json_t *list = ping_list_build(d->q.entry, d->q.n);

	(void)req;
	*ret =
	    list ? json_pack("{s:I, s:o}", "version", (json_int_t)d->q.version, "quarantine", list)
		 : NULL;
	return *ret ? 0 : -ENOMEM;
}

static int verb_release(json_t *req, json_t **ret, void *ud)
{
	struct pingd *d = ud;
	json_t *name = json_object_get(req, "name");
	int r;

	if (!json_is_string(name) || !ca_name_valid(json_string_value(name)))
		return -EINVAL;
	if (!d->controller_role) {
		/* Say whom to ask instead. */
		char why[CERT_NAME_MAX + 64];

		snprintf(why, sizeof(why), "not the controller (%s%s)",
			 d->controller[0] ? "the controller is " : "there is none now",
			 d->controller);
		*ret = json_pack("{s:s}", "error", why);
		return -EOPNOTSUPP;
	}
	if ((r = pingd_quarantine_release(d, json_string_value(name))) == -ENOENT) {
		/* Not "No such file or directory": say what is not there. */
		char why[CERT_NAME_MAX + 64];

		snprintf(why, sizeof(why), "%s is not quarantined (iotsecctl quarantine list)",
			 json_string_value(name));
		*ret = json_pack("{s:s}", "error", why);
		return r;
	}
	if (r < 0)
		return r;
	*ret = json_pack("{s:I}", "version", (json_int_t)d->q.version);
	return *ret ? 0 : -ENOMEM;
}

/* One verb a line: clang-format would pack these short rows into columns. */
/* clang-format off */
const struct ctl_verb pingd_verbs[] = {
    {PROTO_STATUS, 0, verb_status},
    {PROTO_PINGD_PEERS, 0, verb_peers},
    {PROTO_PINGD_QUARANTINE, 0, verb_quarantine},
    {PROTO_PINGD_RELEASE, CTL_MUTATES, verb_release},
    {NULL, 0, NULL},
};
/* clang-format on */

/* ---- the daemons we follow ---- */

/* Our role follows electd, and only while certd says we are in the home. */
static void update_role(struct pingd *d)
{
	bool lead = d->in_home && strcmp(d->controller, d->member->self.name) == 0;

	if (lead && !d->controller_role)
		pingd_controller_begin(d);
	else if (!lead && d->controller_role)
		pingd_controller_end(d);
}

static void on_electd(const char *controller, void *ud)
{
	struct pingd *d = ud;

	snprintf(d->controller, sizeof(d->controller), "%s", controller);
	update_role(d);
}

static void on_certd(bool member, const char *why, void *ud)
{
	struct pingd *d = ud;

	log_info("%s: %s", member ? "in the home" : "out of the home", why);
	d->in_home = member;
	update_role(d);
	if (member) {
		pingd_keyd_sync(d, false, false);
		pingd_hello(d);
	}
}

static void on_keyd(json_t *ev, void *ud)
{
	struct pingd *d = ud;
	const char *name = json_string_value(json_object_get(ev, "event"));

	/* A keyd that (re)started has to hear the list again. */
	if (name && strcmp(name, "status") == 0)
		pingd_keyd_sync(d, false, false);
}

static int on_hello(sd_event_source *s, uint64_t usec, void *ud)
{
	struct pingd *d = ud;

	(void)s, (void)usec;
	pingd_crl_refresh(d); /* which says HELLO itself when the number changed */
	pingd_hello(d);
	if (d->state_dirty)
		pingd_state_save(d);
	if (d->controller_role)
		pingd_quarantine_broadcast(d);
	pingd_label_remind(d);
	keyd_next(d);
	return 0;
}

int pingd_start(struct pingd *d, const struct iotsec_config *cfg, sd_event *loop)
{
	static const char *const keyd_events[] = {PROTO_EV_EPOCH, NULL};
	uint16_t port = (uint16_t)(cfg->net.port + 2);
	const char *what = NULL;
	char path[PATH_MAX];
	int r;

	d->cfg = cfg, d->loop = loop;
	if ((r = daemon_dir(cfg->device.state_dir, "pingd", d->dir, sizeof(d->dir))) < 0 ||
	    (r = file_mkdirs(d->dir, 0755)) < 0) {
		log_errx("%s/pingd: %s", cfg->device.state_dir, iotsec_strerror(r));
		return r;
	}
	if ((r = lan_member_load(cfg, rules, &d->member, &what)) < 0) {
		log_errx("%s: %s", what, iotsec_strerror(r));
		return r;
	}
	if ((r = state_load(d)) < 0)
		return r;
	if ((d->trust = malloc(sizeof(*d->trust))) == NULL)
		return -ENOMEM;
	trust_init(d->trust, &(struct trust_params){
				 .weight = cfg->pingd.trust_weight_permille / 1000.0,
				 .auth_failures = (unsigned)cfg->pingd.auth_failures,
				 .window_ms = (uint64_t)cfg->pingd.report_window_ms,
				 .ban_ms = (uint64_t)cfg->pingd.ban_ms,
			     });
	if (cert_store_crl_number(d->member->store, &d->crl_number) < 0)
		d->crl_number = 0;
	if ((r = lan_udp_open(loop, d->member, port, cfg->net.broadcast, pingd_on_datagram, d,
			      &d->udp)) < 0 ||
	    (r = lan_tcp_open(loop, d->member, port, pingd_on_link, d, &d->tcp)) < 0) {
		log_errx("port %u: %s", port, iotsec_strerror(r));
		return r;
	}
	pingd_label_start(d);
	if ((r = electd_client_new(loop, cfg->device.run_dir, on_electd, d, &d->electd)) < 0 ||
	    (r = daemon_socket_path(cfg->device.run_dir, "keyd", path, sizeof(path))) < 0 ||
	    (r = ctl_peer_new(loop, path, 1000, keyd_events, on_keyd, d, &d->keyd)) < 0 ||
	    (r = certd_client_new(loop, cfg->device.run_dir, on_certd, d, &d->certd)) < 0 ||
	    (r = certd_client_signs_with(d->certd, cfg->device.cert, d->member->self.serial)) < 0 ||
	    (r = daemon_add_periodic(loop, (uint64_t)cfg->pingd.hello_ms * 1000, on_hello, d,
				     &d->hello)) < 0) {
		log_errx("cannot start: %s", iotsec_strerror(r));
		return r;
	}
	log_info("device %s (%s) on port %u, %zu devices known, quarantine version %u (%zu); "
		 "waiting for certd and electd",
		 d->member->self.name, cert_role_name(d->member->self.role), port, d->n_peers,
		 d->q.version, d->q.n);
	return 0;
}

void pingd_stop(struct pingd *d)
{
	if (d->state_dirty)
		pingd_state_save(d);
	pingd_controller_end(d);
	lan_tcp_free(d->tcp); /* first: links cancel what they wait for */
	lan_udp_free(d->udp);
	ctl_peer_free(d->keyd);
	electd_client_free(d->electd);
	certd_client_free(d->certd);
	sd_event_source_disable_unref(d->hello);
	pingd_peers_free(d);
	lan_member_free(d->member);
	free(d->trust);
}
