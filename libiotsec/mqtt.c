/* mqtt: one MQTT connection driven by the daemon's sd-event loop (mqtt.h). This is a boundary
 * like lan.c: why a connection could not be made (refused, a broker of the wrong name, TLS) is
 * logged here, once per change of reason, since the caller only hears of connections that were
 * made and lost.
 *
 * libmosquitto does the protocol and TLS; we give it the loop: an io source on its socket (read
 * always, write while it has bytes waiting), loop_misc every second, and our own reconnection.
 * MQTT 3.1.1 rather than 5: a 3.1.1 session without clean_session lasts until the broker's
 * persistent_client_expiration, where a version 5 session ends at the disconnection unless every
 * client remembers to send a session expiry interval, and a reader would lose its queue without a
 * word; the home broker and mosquitto_pub/sub speak 3.1.1 by default as well.
 *
 * The broker's name is resolved before each attempt, off the loop (resolve.h), and libmosquitto
 * is given the address: its own getaddrinfo() would hold the loop, and every other thing the
 * daemon does, for as long as a slow resolver takes. Connecting to an address loses nothing:
 * what we check is the name in the broker's certificate (tls_context()), never the address.
 * When a name has several addresses, each failed attempt moves on to the next. */
#include "mqtt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <mosquitto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "cert.h"
#include "clock.h"
#include "log.h"
#include "resolve.h"

#define MQTT_TICK_US	   (1000 * 1000ULL)
#define MQTT_BACKOFF_MIN_S 1
#define MQTT_BACKOFF_MAX_S 30
/* A connection not up (TCP, TLS, CONNACK) this long after the attempt is given up: a broker
 * that vanished from the network would otherwise hold the attempt for the kernel's two minutes
 * of SYN retries. The name's resolution gets as long again, on its own clock. */
#define MQTT_CONNECT_TIMEOUT_S 10
#define MQTT_KEEPALIVE_DEFAULT 30
#define MQTT_INFLIGHT_DEFAULT  100
#define MQTT_MIDS	       65536
#define STR_(x)		       #x
#define STR(x)		       STR_(x)

enum mqtt_state {
	MQTT_WAITING,	 /* for the retry timer */
	MQTT_RESOLVING,	 /* the broker's name, in resolve's thread */
	MQTT_CONNECTING, /* TCP, TLS and CONNECT under way */
	MQTT_CONNECTED,	 /* CONNACK accepted, broker's name checked, on_connect called */
};

struct mqtt {
	sd_event *loop;
	struct mosquitto *mosq;
	struct mqtt_callbacks cb;
	void *userdata;
	char *host, *broker_name;
	int port, keepalive_s;
	unsigned max_inflight, inflight;
	/* The QoS 1 and 2 messages of ours waiting for their acknowledgement, by mid. */
	uint8_t mids[MQTT_MIDS / 8];
	enum mqtt_state state;
	sd_event_source *io, *tick, *retry;
	struct resolve *query;	     /* while MQTT_RESOLVING */
	unsigned addr_turn;	     /* which of the name's addresses the next attempt takes */
	char addr[INET6_ADDRSTRLEN]; /* the one of this attempt */
	int io_fd;
	uint32_t io_events;
	unsigned backoff_s;
	uint64_t attempt_us; /* CLOCK_MONOTONIC, when the resolution or the connection began */
	char why[200];	     /* the last failure logged */
	char tls_why[200];   /* what OpenSSL found wrong with the broker's certificate */
	SSL_CTX *ctx;	     /* libmosquitto's reference: each connection's SSL is made from it */
};

static bool lib_ready;

static bool mid_test(const struct mqtt *m, int mid)
{
	return mid >= 0 && mid < MQTT_MIDS && (m->mids[mid / 8] & (1u << (mid % 8))) != 0;
}

static void mid_set(struct mqtt *m, int mid, bool on)
{
	if (mid < 0 || mid >= MQTT_MIDS)
		return;
	if (on)
		m->mids[mid / 8] |= (uint8_t)(1u << (mid % 8));
	else
		m->mids[mid / 8] &= (uint8_t) ~(1u << (mid % 8));
}

static uint64_t now_us(const struct mqtt *m)
{
	uint64_t t = 0;

	sd_event_now(m->loop, CLOCK_MONOTONIC, &t);
	return t;
}

static void drop_io(struct mqtt *m)
{
	m->io = sd_event_source_disable_unref(m->io);
	m->io_fd = -1;
	m->io_events = 0;
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata);

/* After every call into libmosquitto: watch its socket (a new one after a reconnection) for
 * what it waits for. */
static void update_io(struct mqtt *m)
{
	int fd = m->state == MQTT_CONNECTING || m->state == MQTT_CONNECTED
		     ? mosquitto_socket(m->mosq)
		     : -1;
	uint32_t events = EPOLLIN | (mosquitto_want_write(m->mosq) ? EPOLLOUT : 0);

	if (fd < 0) {
		drop_io(m);
		return;
	}
	if (m->io != NULL && fd == m->io_fd) {
		if (events != m->io_events && sd_event_source_set_io_events(m->io, events) >= 0)
			m->io_events = events;
		return;
	}
	drop_io(m);
	if (sd_event_add_io(m->loop, &m->io, fd, events, on_io, m) < 0) {
		/* Out of memory: the tick finds no io source and gives the attempt up. */
		m->io = NULL;
		return;
	}
	m->io_fd = fd;
	m->io_events = events;
}

/* Log a reason for not being connected, once until it changes. */
static void say_why(struct mqtt *m, const char *why)
{
	if (strcmp(m->why, why) == 0)
		return;
	snprintf(m->why, sizeof(m->why), "%s", why);
	log_warnx("mqtt %s:%d: %s", m->host, m->port, why);
}

const char *mqtt_why(const struct mqtt *m)
{
	return m->state == MQTT_CONNECTED ? "" : m->why;
}

/* The connection or the attempt is over, for reason: try again after the backoff, which doubles
 * with every attempt that fails and starts again at 1 s after a connection that was up. A
 * connection that failed sends the next attempt to the name's next address. */
static void lost(struct mqtt *m, const char *reason)
{
	bool was_up = m->state == MQTT_CONNECTED;

	if (m->state == MQTT_WAITING)
		return;
	if (m->state == MQTT_CONNECTING)
		m->addr_turn++;
	m->state = MQTT_WAITING;
	resolve_free(m->query);
	m->query = NULL;
	drop_io(m);
	if (was_up)
		m->backoff_s = MQTT_BACKOFF_MIN_S;
	if (m->retry != NULL) {
		sd_event_source_set_time_relative(m->retry, m->backoff_s * 1000000ULL);
		sd_event_source_set_enabled(m->retry, SD_EVENT_ONESHOT);
	}
	log_debug("mqtt %s:%d: %s; again in %u s", m->host, m->port, reason, m->backoff_s);
	m->backoff_s =
	    m->backoff_s * 2 > MQTT_BACKOFF_MAX_S ? MQTT_BACKOFF_MAX_S : m->backoff_s * 2;
	if (was_up) {
		if (m->cb.on_disconnect != NULL)
			m->cb.on_disconnect(reason, m->userdata);
	} else
		say_why(m, reason);
}

/* The name in the broker's certificate, exactly: 0 when it is broker_name; -IOTSEC_EIDENTITY
 * with the name found in ret_name otherwise. */
static int check_broker(struct mqtt *m, char *ret_name, size_t len)
{
	SSL *ssl = mosquitto_ssl_get(m->mosq);
	X509 *peer = NULL;
	struct cert_info info;
	int r = -IOTSEC_EIDENTITY;

	snprintf(ret_name, len, "no certificate");
	if (ssl == NULL || (peer = SSL_get1_peer_certificate(ssl)) == NULL)
		goto out;
	if (cert_info_get(peer, &info) < 0) {
		snprintf(ret_name, len, "a certificate without a device name");
		goto out;
	}
	snprintf(ret_name, len, "%s", info.name);
	if (strcmp(info.name, m->broker_name) == 0)
		r = 0;
out:
	X509_free(peer);
	return r;
}

/* Every call into libmosquitto's loop ends here: a failure means the connection is gone. */
static void after(struct mqtt *m, int rc)
{
	if (rc != MOSQ_ERR_SUCCESS) {
		lost(m, rc == MOSQ_ERR_TLS && m->tls_why[0] != '\0' ? m->tls_why
								    : mosquitto_strerror(rc));
		return;
	}
	update_io(m);
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct mqtt *m = userdata;
	int rc = MOSQ_ERR_SUCCESS;

	(void)s;
	/* EPOLLERR and EPOLLHUP on a connection: the read sees the end of it, and libmosquitto
	 * closes the socket. The read also moves a TLS handshake on, whichever way the socket is
	 * ready for it. */
	if ((revents & (EPOLLIN | EPOLLERR | EPOLLHUP)) || m->state == MQTT_CONNECTING)
		rc = mosquitto_loop_read(m->mosq, 1);
	/* A connection that failed (refused, reset) during the TLS handshake: libmosquitto takes
	 * the error for "try again later", and the socket would be ready for ever. */
	if (rc == MOSQ_ERR_SUCCESS && m->state == MQTT_CONNECTING &&
	    (revents & (EPOLLERR | EPOLLHUP))) {
		int err = 0;
		socklen_t len = sizeof(err);

		getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
		/* The failed handshake has usually taken the error already. */
		lost(m, err != 0 ? strerror(err) : "connection refused or closed");
		return 0;
	}
	if (rc == MOSQ_ERR_SUCCESS && m->state != MQTT_WAITING && (revents & EPOLLOUT) &&
	    mosquitto_socket(m->mosq) >= 0)
		rc = mosquitto_loop_write(m->mosq, 1);
	if (m->state != MQTT_WAITING)
		after(m, rc);
	return 0;
}

static void on_resolved(const struct resolve_result *res, void *userdata)
{
	struct mqtt *m = userdata;
	char why[sizeof(m->why)];
	int rc;

	if (res->r < 0) {
		snprintf(why, sizeof(why), "cannot resolve the broker's name: %s", res->why);
		lost(m, why);
		return;
	}
	/* res is the query's: copied before the query goes. */
	snprintf(m->addr, sizeof(m->addr), "%s", res->addrs[m->addr_turn % res->n]);
	resolve_free(m->query);
	m->query = NULL;
	m->state = MQTT_CONNECTING;
	m->attempt_us = now_us(m);
	m->tls_why[0] = '\0';
	/* The broker's certificate is judged at clock_now(), as every certificate (SPEC 5.2): a
	 * Pi that booted at 1970 and took the time from a neighbour (resync) would find it "not yet
	 * valid" by the wall clock. */
	if (m->ctx)
		X509_VERIFY_PARAM_set_time(SSL_CTX_get0_param(m->ctx), (time_t)clock_now());
	errno = 0;
	rc = mosquitto_connect_async(m->mosq, m->addr, m->port, m->keepalive_s);
	after(m, rc);
}

/* Resolve the name (at once for an address), then connect from on_resolved(). */
static void attempt(struct mqtt *m)
{
	char why[sizeof(m->why)];
	int r;

	m->state = MQTT_RESOLVING;
	m->attempt_us = now_us(m);
	if ((r = resolve_start(m->loop, m->host, on_resolved, m, &m->query)) < 0) {
		snprintf(why, sizeof(why), "cannot resolve the broker's name: %s", strerror(-r));
		lost(m, why);
	}
}

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata)
{
	(void)s, (void)usec;
	attempt(userdata);
	return 0;
}

static int on_tick(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct mqtt *m = userdata;

	sd_event_source_set_time(s, usec + MQTT_TICK_US);
	/* A resolver that does not answer: its thread is left to finish alone. */
	if (m->state == MQTT_RESOLVING &&
	    now_us(m) > m->attempt_us + MQTT_CONNECT_TIMEOUT_S * 1000000ULL) {
		lost(m, "cannot resolve the broker's name: no answer within " STR(
			    MQTT_CONNECT_TIMEOUT_S) " s");
		return 0;
	}
	if (m->state == MQTT_CONNECTING &&
	    (m->io == NULL || now_us(m) > m->attempt_us + MQTT_CONNECT_TIMEOUT_S * 1000000ULL)) {
		lost(m, "no connection within " STR(MQTT_CONNECT_TIMEOUT_S) " s");
		return 0;
	}
	if (m->state == MQTT_CONNECTING || m->state == MQTT_CONNECTED)
		after(m, mosquitto_loop_misc(m->mosq));
	return 0;
}

/* ---- libmosquitto's callbacks, run from inside its loop calls ---- */

static void on_connack(struct mosquitto *mosq, void *userdata, int rc)
{
	struct mqtt *m = userdata;
	char why[sizeof(m->why)], name[CERT_NAME_MAX + 64];
	int fd;

	(void)mosq;
	if (rc != 0) {
		snprintf(why, sizeof(why), "the broker refused us: %s",
			 mosquitto_connack_string(rc));
		lost(m, why);
		return;
	}
	/* The handshake has matched the name without regard to case, as for a host name; the
	 * name is a device name, which is exact. */
	if (check_broker(m, name, sizeof(name)) < 0) {
		snprintf(why, sizeof(why), "the broker's certificate is %s's, not %s's", name,
			 m->broker_name);
		fd = mosquitto_socket(m->mosq);
		/* First: the disconnection may call on_disconnected(), whose reason is vaguer. The
		 * socket is shut, not left to a DISCONNECT that libmosquitto sends after its own
		 * messages. */
		lost(m, why);
		if (fd >= 0)
			shutdown(fd, SHUT_RDWR);
		mosquitto_disconnect(m->mosq);
		return;
	}
	m->state = MQTT_CONNECTED;
	m->backoff_s = MQTT_BACKOFF_MIN_S;
	m->why[0] = '\0';
	log_debug("mqtt %s:%d: connected to %s at %s", m->host, m->port, m->broker_name, m->addr);
	if (m->cb.on_connect != NULL)
		m->cb.on_connect(m->userdata);
}

static void on_disconnected(struct mosquitto *mosq, void *userdata, int rc)
{
	(void)mosq;
	lost(userdata, rc == 0 ? "disconnected" : mosquitto_strerror(rc));
}

static void on_published(struct mosquitto *mosq, void *userdata, int mid)
{
	struct mqtt *m = userdata;

	(void)mosq;
	if (mid_test(m, mid)) {
		mid_set(m, mid, false);
		m->inflight--;
	}
	if (m->cb.on_publish != NULL)
		m->cb.on_publish(mid, m->userdata);
}

static void on_msg(struct mosquitto *mosq, void *userdata, const struct mosquitto_message *msg)
{
	struct mqtt *m = userdata;

	(void)mosq;
	if (m->cb.on_message != NULL && msg->payloadlen >= 0)
		m->cb.on_message(msg->topic, msg->payload, (size_t)msg->payloadlen, msg->qos,
				 msg->retain, m->userdata);
}

/* ---- the interface ---- */

/* OpenSSL's verdict on the broker's certificate, kept for the log line: libmosquitto says only
 * "A TLS error occurred". */
static int on_verify(int ok, X509_STORE_CTX *x)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct mqtt *m = ssl != NULL ? SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)) : NULL;
	X509 *cert = X509_STORE_CTX_get_current_cert(x);
	struct cert_info info;
	int err = X509_STORE_CTX_get_error(x);

	if (ok || m == NULL)
		return ok;
	if (err == X509_V_ERR_HOSTNAME_MISMATCH && cert != NULL && cert_info_get(cert, &info) == 0)
		snprintf(m->tls_why, sizeof(m->tls_why),
			 "the broker's certificate is %s's, not %s's", info.name, m->broker_name);
	else
		snprintf(m->tls_why, sizeof(m->tls_why), "the broker's certificate: %s",
			 X509_verify_cert_error_string(err));
	return ok;
}

/* The TLS settings, all ours: libmosquitto's (mosquitto_tls_set()) would check the broker's name
 * against the address we connect to, or not at all (tls_insecure), and a check after the
 * handshake comes too late, since libmosquitto may write its CONNECT, and the messages it sends
 * again after a reconnection, as soon as the handshake ends. So OpenSSL checks the name during
 * the handshake (the CN: our certificates have no subjectAltName), with the chain to the home
 * CA: a broker of another name gets nothing from us. */
static int tls_context(const struct mqtt_opts *o, struct mqtt *m, SSL_CTX **ret)
{
	SSL_CTX *ctx = NULL;
	const char *files[] = {o->ca, o->cert, o->key};
	int r;

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		if (access(files[i], R_OK) < 0) {
			r = -errno;
			goto out;
		}
	r = -ENOMEM;
	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL)
		goto out;
	r = -EINVAL;
	/* The key first: a certificate that is not the key's then leaves no key, which the check
	 * below tells apart from a file that is no certificate. */
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_load_verify_locations(ctx, o->ca, NULL) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, o->key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_use_certificate_chain_file(ctx, o->cert) != 1)
		goto out;
	r = -IOTSEC_EKEYMISMATCH;
	if (SSL_CTX_check_private_key(ctx) != 1)
		goto out;
	r = -ENOMEM;
	if (X509_VERIFY_PARAM_set1_host(SSL_CTX_get0_param(ctx), o->broker_name, 0) != 1)
		goto out;
	X509_VERIFY_PARAM_set_hostflags(SSL_CTX_get0_param(ctx),
					X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	SSL_CTX_set_app_data(ctx, m);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, on_verify);
	*ret = ctx;
	ctx = NULL;
	r = 0;
out:
	ERR_clear_error();
	SSL_CTX_free(ctx);
	return r;
}

int mqtt_new(sd_event *e, const struct mqtt_opts *o, const struct mqtt_callbacks *cb,
	     void *userdata, struct mqtt **ret)
{
	struct mqtt *m = NULL;
	SSL_CTX *ctx = NULL;
	int r = -EINVAL;

	if (e == NULL || o == NULL || cb == NULL || ret == NULL || o->host == NULL ||
	    o->broker_name == NULL || o->ca == NULL || o->cert == NULL || o->key == NULL ||
	    o->port < 1 || o->port > 65535 || o->keepalive_s < 0 || o->keepalive_s > 65535 ||
	    (o->keepalive_s > 0 && o->keepalive_s < 5) || o->max_inflight < 0 ||
	    o->max_inflight > 65535 || (!o->clean_session && o->client_id == NULL))
		goto out;
	if (!lib_ready) {
		mosquitto_lib_init();
		lib_ready = true;
	}
	r = -ENOMEM;
	if ((m = calloc(1, sizeof(*m))) == NULL)
		goto out;
	m->loop = sd_event_ref(e);
	m->cb = *cb;
	m->userdata = userdata;
	m->port = o->port;
	m->keepalive_s = o->keepalive_s > 0 ? o->keepalive_s : MQTT_KEEPALIVE_DEFAULT;
	m->max_inflight = o->max_inflight > 0 ? (unsigned)o->max_inflight : MQTT_INFLIGHT_DEFAULT;
	m->backoff_s = MQTT_BACKOFF_MIN_S;
	m->io_fd = -1;
	m->state = MQTT_WAITING;
	if ((m->host = strdup(o->host)) == NULL ||
	    (m->broker_name = strdup(o->broker_name)) == NULL ||
	    (m->mosq = mosquitto_new(o->client_id, o->clean_session, m)) == NULL)
		goto out;
	if ((r = tls_context(o, m, &ctx)) < 0)
		goto out;
	r = -EINVAL;
	/* Our own limit on messages in flight is libmosquitto's too, so that it never queues one.
	 */
	if (mosquitto_int_option(m->mosq, MOSQ_OPT_SSL_CTX_WITH_DEFAULTS, 0) != 0 ||
	    mosquitto_void_option(m->mosq, MOSQ_OPT_SSL_CTX, ctx) != 0 ||
	    mosquitto_int_option(m->mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311) != 0 ||
	    mosquitto_int_option(m->mosq, MOSQ_OPT_SEND_MAXIMUM, (int)m->max_inflight) != 0 ||
	    mosquitto_int_option(m->mosq, MOSQ_OPT_TCP_NODELAY, 1) != 0)
		goto out;
	m->ctx = ctx;
	mosquitto_connect_callback_set(m->mosq, on_connack);
	mosquitto_disconnect_callback_set(m->mosq, on_disconnected);
	mosquitto_publish_callback_set(m->mosq, on_published);
	mosquitto_message_callback_set(m->mosq, on_msg);
	r = -ENOMEM;
	if (sd_event_add_time_relative(e, &m->tick, CLOCK_MONOTONIC, MQTT_TICK_US, 0, on_tick, m) <
		0 ||
	    sd_event_source_set_enabled(m->tick, SD_EVENT_ON) < 0 ||
	    sd_event_add_time_relative(e, &m->retry, CLOCK_MONOTONIC, MQTT_TICK_US, 0, on_retry,
				       m) < 0 ||
	    sd_event_source_set_enabled(m->retry, SD_EVENT_OFF) < 0)
		goto out;
	attempt(m);
	*ret = m;
	m = NULL;
	r = 0;
out:
	/* libmosquitto holds a reference of its own. */
	SSL_CTX_free(ctx);
	mqtt_free(m);
	return r;
}

void mqtt_free(struct mqtt *m)
{
	if (m == NULL)
		return;
	/* A resolution under way is cancelled: its thread finishes alone. */
	resolve_free(m->query);
	drop_io(m);
	m->tick = sd_event_source_disable_unref(m->tick);
	m->retry = sd_event_source_disable_unref(m->retry);
	if (m->mosq != NULL) {
		/* No callback of ours may run from here on. */
		mosquitto_disconnect_callback_set(m->mosq, NULL);
		mosquitto_publish_callback_set(m->mosq, NULL);
		mosquitto_message_callback_set(m->mosq, NULL);
		mosquitto_connect_callback_set(m->mosq, NULL);
		if (m->state == MQTT_CONNECTED)
			mosquitto_disconnect(m->mosq);
		mosquitto_destroy(m->mosq);
	}
	sd_event_unref(m->loop);
	free(m->host);
	free(m->broker_name);
	free(m);
}

bool mqtt_connected(const struct mqtt *m)
{
	return m != NULL && m->state == MQTT_CONNECTED;
}

int mqtt_publish(struct mqtt *m, const char *topic, const void *payload, size_t len, int qos,
		 bool retain, int *ret_mid)
{
	int mid = 0, rc;

	if (m == NULL || topic == NULL || (payload == NULL && len > 0) || len > INT32_MAX ||
	    qos < 0 || qos > 2)
		return -EINVAL;
	if (m->state != MQTT_CONNECTED)
		return -ENOTCONN;
	if (qos > 0 && m->inflight >= m->max_inflight)
		return -ENOBUFS;
	rc = mosquitto_publish(m->mosq, &mid, topic, (int)len, payload, qos, retain);
	/* Taken but not written (the connection is going): libmosquitto sends it again after the
	 * reconnection, and its PUBACK comes like any other. */
	if (qos > 0 && mid > 0 && !mid_test(m, mid) &&
	    (rc == MOSQ_ERR_SUCCESS || rc == MOSQ_ERR_ERRNO || rc == MOSQ_ERR_CONN_LOST ||
	     rc == MOSQ_ERR_NO_CONN)) {
		mid_set(m, mid, true);
		m->inflight++;
	}
	switch (rc) {
	case MOSQ_ERR_SUCCESS:
		break;
	case MOSQ_ERR_NOMEM:
		return -ENOMEM;
	case MOSQ_ERR_PAYLOAD_SIZE:
	case MOSQ_ERR_OVERSIZE_PACKET:
		return -EMSGSIZE;
	case MOSQ_ERR_NO_CONN:
	case MOSQ_ERR_CONN_LOST:
	case MOSQ_ERR_ERRNO:
		return -ENOTCONN;
	default:
		return -EINVAL;
	}
	/* Written at once if the socket takes it; what is left waits for EPOLLOUT. */
	update_io(m);
	if (ret_mid != NULL)
		*ret_mid = mid;
	return 0;
}

int mqtt_subscribe(struct mqtt *m, const char *pattern, int qos)
{
	int rc;

	if (m == NULL || pattern == NULL || qos < 0 || qos > 2)
		return -EINVAL;
	if (m->state != MQTT_CONNECTED)
		return -ENOTCONN;
	rc = mosquitto_subscribe(m->mosq, NULL, pattern, qos);
	if (rc == MOSQ_ERR_NOMEM)
		return -ENOMEM;
	if (rc == MOSQ_ERR_NO_CONN)
		return -ENOTCONN;
	if (rc != MOSQ_ERR_SUCCESS)
		return -EINVAL;
	update_io(m);
	return 0;
}

unsigned mqtt_inflight(const struct mqtt *m)
{
	return m == NULL ? 0 : m->inflight;
}
