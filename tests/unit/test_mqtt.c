/* mqtt: the glue between libmosquitto and sd-event, against a real mosquitto on 127.0.0.1 (a free
 * port, TLS with the fixture's home CA; the broker's certificate is pi1's, so broker_name is
 * "pi1"). Two clients on one loop: a round trip with the PUBACK's mid, the limit of messages in
 * flight, a broker killed and started again (reconnection, subscriptions made again), and brokers
 * that must never be connected to: another name, another home's CA, a self-signed certificate
 * with the right name. The broker by name: "localhost", a name that does not resolve, and (as root,
 * in a mount namespace of a child's own) a resolver that never answers, while a timer on the same
 * loop must keep its pace. Skipped only when mosquitto is not installed (or, for the silent
 * resolver, when not root). Every wait is bounded. */
#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"
#include "mqtt.h"

#include "ctl_peer.h"
#include "fixture.h"

/* The longest a connection (or a reconnection, after 1 s of backoff) may take. */
#define CONNECT_MS (6 * WAIT_MS)

static struct fixture fx;
static char mosquitto[4096]; /* the broker's program, "" when not installed */
static pid_t broker = -1;
static int port;

static void find_mosquitto(void)
{
	const char *dirs[] = {"/usr/sbin", "/usr/local/sbin", "/usr/bin", "/usr/local/bin"};

	mosquitto[0] = '\0';
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		snprintf(mosquitto, sizeof(mosquitto), "%s/mosquitto", dirs[i]);
		if (access(mosquitto, X_OK) == 0)
			return;
	}
	mosquitto[0] = '\0';
}

static int group_setup(void **state)
{
	find_mosquitto();
	return scratch_setup(state) == 0 && fixture_home(&fx) == 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
	fixture_remove(&fx);
	return scratch_teardown(state);
}

static void need_mosquitto(void)
{
	if (mosquitto[0] == '\0') {
		print_message("mosquitto is not installed (scripts/deps.sh test): skipped\n");
		skip();
	}
}

/* A port nobody listens on now. */
static int free_port(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	close(fd);
	return ntohs(sa.sin_port);
}

static bool listening(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;

	if (fd >= 0)
		close(fd);
	return ok;
}

/* mosquitto on 127.0.0.1:port with the certificate and key of device name (from the fixture's
 * home, or of the CA dir ca_dir's files when other is set), requiring clients of the home CA.
 * Its log is in the scratch directory. Run as root, it keeps root: the fixture's keys are root's
 * alone, and mosquitto would otherwise read them as its own user. */
static void broker_start(const char *name)
{
	const char *conf = in_dir("mosquitto.conf");
	FILE *f;
	int log;

	if (port == 0)
		port = free_port();
	assert_non_null(f = fopen(conf, "w"));
	fprintf(f,
		"listener %d 127.0.0.1\ncafile %s\ncertfile %s\nkeyfile %s\n"
		"require_certificate true\nuse_identity_as_username true\nallow_anonymous false\n"
		"persistence false\nlog_dest stderr\nlog_type all\n%s",
		port, fx.ca_crt, fixture_path(&fx, name, "crt"), fixture_path(&fx, name, "key"),
		geteuid() == 0 ? "user root\n" : "");
	assert_int_equal(fclose(f), 0);
	assert_true((log = open(in_dir("mosquitto.log"), O_WRONLY | O_CREAT | O_APPEND, 0600)) >=
		    0);
	broker = fork();
	assert_true(broker >= 0);
	if (broker == 0) {
		dup2(log, 1);
		dup2(log, 2);
		execl(mosquitto, "mosquitto", "-c", conf, (char *)NULL);
		_exit(127);
	}
	close(log);
	for (int64_t end = mono_ms() + CONNECT_MS; !listening(); sleep_ms(20)) {
		assert_int_equal(waitpid(broker, NULL, WNOHANG), 0);
		if (mono_ms() > end)
			fail_msg("mosquitto does not listen on port %d", port);
	}
}

static void broker_stop(void)
{
	if (broker > 0) {
		kill(broker, SIGKILL);
		waitpid(broker, NULL, 0);
	}
	broker = -1;
}

static int test_teardown(void **state)
{
	(void)state;
	broker_stop();
	unlink(in_dir("mosquitto.log"));
	return 0;
}

/* ---- a client and what it heard ---- */

struct client {
	struct mqtt *m;
	const char *subscribe; /* made again on every connection, QoS 1 */
	unsigned connects, disconnects, acks, messages;
	int last_mid;
	char last_topic[128], last_payload[128];
	char reason[256];
};

static void on_connect(void *userdata)
{
	struct client *c = userdata;

	c->connects++;
	if (c->subscribe != NULL)
		assert_int_equal(mqtt_subscribe(c->m, c->subscribe, 1), 0);
}

static void on_disconnect(const char *reason, void *userdata)
{
	struct client *c = userdata;

	c->disconnects++;
	snprintf(c->reason, sizeof(c->reason), "%s", reason);
}

static void on_message(const char *topic, const void *payload, size_t len, int qos, bool retained,
		       void *userdata)
{
	struct client *c = userdata;

	(void)qos, (void)retained;
	c->messages++;
	snprintf(c->last_topic, sizeof(c->last_topic), "%s", topic);
	snprintf(c->last_payload, sizeof(c->last_payload), "%.*s", (int)len, (const char *)payload);
}

static void on_publish(int mid, void *userdata)
{
	struct client *c = userdata;

	c->acks++;
	c->last_mid = mid;
}

static const struct mqtt_callbacks callbacks = {on_connect, on_disconnect, on_message, on_publish};

static struct mqtt_opts opts(const char *device, const char *broker_name)
{
	struct mqtt_opts o = {
	    .host = "127.0.0.1",
	    .port = port,
	    .broker_name = broker_name,
	    .ca = fx.ca_crt,
	    .cert = fixture_path(&fx, device, "crt"),
	    .key = fixture_path(&fx, device, "key"),
	    .client_id = device,
	    .clean_session = true,
	};

	return o;
}

/* fixture_path() rotates its buffers: the options keep copies. */
static void client_new(sd_event *e, struct client *c, const char *device, const char *broker_name,
		       int max_inflight)
{
	static char cert[8][4096], key[8][4096];
	static int next;
	struct mqtt_opts o = opts(device, broker_name);
	int i = next++ % 8;

	snprintf(cert[i], sizeof(cert[i]), "%s", o.cert);
	snprintf(key[i], sizeof(key[i]), "%s", o.key);
	o.cert = cert[i];
	o.key = key[i];
	o.max_inflight = max_inflight;
	assert_int_equal(mqtt_new(e, &o, &callbacks, c, &c->m), 0);
}

#define loop_until_for(e, ms, cond)                                                                \
	do {                                                                                       \
		int64_t end_ = mono_ms() + (ms), now_;                                             \
		while (!(cond)) {                                                                  \
			now_ = mono_ms();                                                          \
			if (now_ >= end_)                                                          \
				fail_msg("%s: still false after %d ms", #cond, (int)(ms));         \
			assert_true(sd_event_run((e), (uint64_t)(end_ - now_) * 1000) >= 0);       \
		}                                                                                  \
	} while (0)

/* ---- the cases ---- */

static void round_trip(void **state)
{
	sd_event *e = NULL;
	struct client a = {0}, b = {.subscribe = "iotsec/+/+/group"};
	int mid = -1;

	(void)state;
	need_mosquitto();
	broker_start("pi1");
	assert_int_equal(sd_event_new(&e), 0);
	client_new(e, &a, "pi2", "pi1", 0);
	client_new(e, &b, "ctl1", "pi1", 0);
	assert_false(mqtt_connected(a.m));
	assert_int_equal(mqtt_publish(a.m, "iotsec/h/pi2/group", "x", 1, 1, false, &mid),
			 -ENOTCONN);
	assert_int_equal(mqtt_subscribe(a.m, "iotsec/#", 1), -ENOTCONN);
	loop_until_for(e, CONNECT_MS, a.connects == 1 && b.connects == 1);
	assert_true(mqtt_connected(a.m) && mqtt_connected(b.m));
	/* Let b's SUBACK come back before publishing. */
	loop_for(e, 200);

	assert_int_equal(mqtt_publish(a.m, "iotsec/h/pi2/group", "hello", 5, 1, false, &mid), 0);
	assert_true(mid > 0);
	assert_int_equal(mqtt_inflight(a.m), 1);
	loop_until_for(e, WAIT_MS, a.acks == 1 && b.messages == 1);
	assert_int_equal(a.last_mid, mid);
	assert_int_equal(mqtt_inflight(a.m), 0);
	assert_string_equal(b.last_topic, "iotsec/h/pi2/group");
	assert_string_equal(b.last_payload, "hello");

	/* A topic b did not subscribe to does not reach it; an empty payload is a message too. */
	assert_int_equal(mqtt_publish(a.m, "iotsec/h/pi2/doctor", "no", 2, 1, false, &mid), 0);
	assert_int_equal(mqtt_publish(a.m, "iotsec/h/pi2/group", NULL, 0, 1, false, &mid), 0);
	loop_until_for(e, WAIT_MS, a.acks == 3 && b.messages == 2);
	assert_string_equal(b.last_payload, "");
	loop_for(e, 200);
	assert_int_equal(b.messages, 2);

	/* Bad arguments. */
	assert_int_equal(mqtt_publish(a.m, NULL, "x", 1, 1, false, &mid), -EINVAL);
	assert_int_equal(mqtt_publish(a.m, "t", NULL, 1, 1, false, &mid), -EINVAL);
	assert_int_equal(mqtt_publish(a.m, "t", "x", 1, 3, false, &mid), -EINVAL);
	assert_int_equal(mqtt_publish(a.m, "t", "x", 1, -1, false, &mid), -EINVAL);
	assert_int_equal(mqtt_publish(a.m, "t/#", "x", 1, 1, false, &mid), -EINVAL);
	assert_int_equal(mqtt_subscribe(a.m, NULL, 1), -EINVAL);
	assert_int_equal(mqtt_subscribe(a.m, "t", 3), -EINVAL);
	assert_int_equal(mqtt_publish(NULL, "t", "x", 1, 1, false, &mid), -EINVAL);
	assert_int_equal(mqtt_inflight(a.m), 0);
	assert_false(mqtt_connected(NULL));

	/* mqtt_free() disconnects cleanly: b hears nothing of it, nothing is left. */
	mqtt_free(a.m);
	mqtt_free(b.m);
	mqtt_free(NULL);
	sd_event_unref(e);
}

static void bad_options(void **state)
{
	sd_event *e = NULL;
	struct mqtt *m = NULL;
	struct client c = {0};
	struct mqtt_opts o;

	(void)state;
	if (port == 0)
		port = free_port();
	assert_int_equal(sd_event_new(&e), 0);
#define REFUSED(field, value)                                                                      \
	do {                                                                                       \
		o = opts("pi2", "pi1");                                                            \
		o.field = value;                                                                   \
		assert_int_equal(mqtt_new(e, &o, &callbacks, &c, &m), -EINVAL);                    \
		assert_null(m);                                                                    \
	} while (0)
	REFUSED(host, NULL);
	REFUSED(broker_name, NULL);
	REFUSED(ca, NULL);
	REFUSED(cert, NULL);
	REFUSED(key, NULL);
	REFUSED(port, 0);
	REFUSED(port, 65536);
	REFUSED(keepalive_s, -1);
	REFUSED(keepalive_s, 2);
	REFUSED(max_inflight, -1);
	REFUSED(max_inflight, 65536);
	/* A persistent session needs its name. */
	o = opts("pi2", "pi1");
	o.client_id = NULL;
	o.clean_session = false;
	assert_int_equal(mqtt_new(e, &o, &callbacks, &c, &m), -EINVAL);
	/* Files that are not there, a key that is not the certificate's. */
	o = opts("pi2", "pi1");
	o.cert = "/nonexistent/pi2.crt";
	assert_int_equal(mqtt_new(e, &o, &callbacks, &c, &m), -ENOENT);
	o = opts("pi2", "pi1");
	o.ca = "/nonexistent/ca.crt";
	assert_int_equal(mqtt_new(e, &o, &callbacks, &c, &m), -ENOENT);
	o = opts("pi2", "pi1");
	o.key = fixture_path(&fx, "ctl1", "key");
	assert_int_equal(mqtt_new(e, &o, &callbacks, &c, &m), -IOTSEC_EKEYMISMATCH);
	/* Not PEM. */
	o = opts("pi2", "pi1");
	o.cert = fx.crl;
	assert_int_equal(mqtt_new(e, &o, &callbacks, &c, &m), -EINVAL);
	o = opts("pi2", "pi1");
	assert_int_equal(mqtt_new(NULL, &o, &callbacks, &c, &m), -EINVAL);
	assert_int_equal(mqtt_new(e, &o, NULL, &c, &m), -EINVAL);
	assert_null(m);
	sd_event_unref(e);
}

static void inflight_limit(void **state)
{
	sd_event *e = NULL;
	struct client a = {0};
	int mids[4] = {0}, mid = 0;

	(void)state;
	need_mosquitto();
	broker_start("pi1");
	assert_int_equal(sd_event_new(&e), 0);
	client_new(e, &a, "pi2", "pi1", 3);
	loop_until_for(e, CONNECT_MS, a.connects == 1);
	/* No turn of the loop between them: no PUBACK can have been read. */
	for (int i = 0; i < 3; i++)
		assert_int_equal(
		    mqtt_publish(a.m, "iotsec/h/pi2/group", "r", 1, 1, false, &mids[i]), 0);
	assert_int_equal(mqtt_inflight(a.m), 3);
	mid = -7;
	assert_int_equal(mqtt_publish(a.m, "iotsec/h/pi2/group", "r", 1, 1, false, &mid), -ENOBUFS);
	assert_int_equal(mid, -7);
	/* QoS 0 has no PUBACK to wait for: not counted, not refused. */
	assert_int_equal(mqtt_publish(a.m, "iotsec/h/pi2/group", "q0", 2, 0, false, &mids[3]), 0);
	assert_int_equal(mqtt_inflight(a.m), 3);
	loop_until_for(e, WAIT_MS, mqtt_inflight(a.m) == 0);
	assert_true(a.acks >= 3);
	assert_int_equal(mqtt_publish(a.m, "iotsec/h/pi2/group", "r", 1, 1, false, &mid), 0);
	assert_int_equal(mqtt_inflight(a.m), 1);
	loop_until_for(e, WAIT_MS, mqtt_inflight(a.m) == 0);
	assert_int_equal(a.last_mid, mid);
	mqtt_free(a.m);
	sd_event_unref(e);
}

static void reconnect(void **state)
{
	sd_event *e = NULL;
	struct client a = {0}, b = {.subscribe = "iotsec/#"};
	int mid;

	(void)state;
	need_mosquitto();
	broker_start("pi1");
	assert_int_equal(sd_event_new(&e), 0);
	client_new(e, &a, "pi2", "pi1", 0);
	client_new(e, &b, "ctl1", "pi1", 0);
	loop_until_for(e, CONNECT_MS, a.connects == 1 && b.connects == 1);

	broker_stop();
	loop_until_for(e, WAIT_MS, a.disconnects == 1 && b.disconnects == 1);
	assert_false(mqtt_connected(a.m));
	assert_true(strlen(a.reason) > 0);
	assert_int_equal(mqtt_publish(a.m, "iotsec/h/pi2/group", "x", 1, 1, false, &mid),
			 -ENOTCONN);
	/* Away for a while: attempts fail and the backoff grows (1, 2, 4 s). */
	loop_for(e, 2500);
	assert_int_equal(a.connects, 1);
	broker_start("pi1");
	/* At most 4 s to the next attempt. */
	loop_until_for(e, 4000 + CONNECT_MS, a.connects == 2 && b.connects == 2);
	assert_int_equal(a.disconnects, 1);
	loop_for(e, 200);
	/* b subscribed again in on_connect: the broker kept nothing (clean sessions). */
	assert_int_equal(mqtt_publish(a.m, "iotsec/h/pi2/group", "again", 5, 1, false, &mid), 0);
	loop_until_for(e, WAIT_MS, b.messages == 1 && a.acks == 1);
	assert_string_equal(b.last_payload, "again");
	assert_int_equal(a.last_mid, mid);
	mqtt_free(a.m);
	mqtt_free(b.m);
	sd_event_unref(e);
}

/* A message in flight when the connection goes is sent again once it is back, under the same mid,
 * and its PUBACK comes then: the caller's spool keeps it until on_publish, as always. */
static void inflight_across_reconnect(void **state)
{
	sd_event *e = NULL;
	struct client a = {0};
	int mid = 0;

	(void)state;
	need_mosquitto();
	broker_start("pi1");
	assert_int_equal(sd_event_new(&e), 0);
	client_new(e, &a, "pi2", "pi1", 0);
	loop_until_for(e, CONNECT_MS, a.connects == 1);
	/* The broker stopped first: it can neither read the message nor acknowledge it before it
	 * goes (without, it sometimes won the race to the kill and sent its PUBACK). */
	assert_int_equal(kill(broker, SIGSTOP), 0);
	assert_int_equal(mqtt_publish(a.m, "iotsec/h/pi2/group", "kept", 4, 1, false, &mid), 0);
	broker_stop();
	loop_until_for(e, WAIT_MS, a.disconnects == 1);
	assert_int_equal(a.acks, 0);
	assert_int_equal(mqtt_inflight(a.m), 1);
	broker_start("pi1");
	loop_until_for(e, 4000 + CONNECT_MS, a.connects == 2 && a.acks == 1);
	assert_int_equal(a.last_mid, mid);
	assert_int_equal(mqtt_inflight(a.m), 0);
	mqtt_free(a.m);
	sd_event_unref(e);
}

/* A persistent session (clean_session false): what is published while its client is away is
 * delivered when it comes back, without subscribing again. */
static void persistent_session(void **state)
{
	sd_event *e = NULL;
	struct client a = {0}, b = {.subscribe = "iotsec/+/+/group"};
	struct mqtt_opts o;
	int mid;

	(void)state;
	need_mosquitto();
	broker_start("pi1");
	assert_int_equal(sd_event_new(&e), 0);
	client_new(e, &a, "pi2", "pi1", 0);
	o = opts("ctl1", "pi1");
	o.client_id = "ctl1-reader";
	o.clean_session = false;
	assert_int_equal(mqtt_new(e, &o, &callbacks, &b, &b.m), 0);
	loop_until_for(e, CONNECT_MS, a.connects == 1 && b.connects == 1);
	loop_for(e, 200);
	mqtt_free(b.m);
	for (int i = 0; i < 5; i++)
		assert_int_equal(mqtt_publish(a.m, "iotsec/h/pi2/group", "away", 4, 1, false, &mid),
				 0);
	loop_until_for(e, WAIT_MS, a.acks == 5);
	b.subscribe = NULL;
	o = opts("ctl1", "pi1");
	o.client_id = "ctl1-reader";
	o.clean_session = false;
	assert_int_equal(mqtt_new(e, &o, &callbacks, &b, &b.m), 0);
	loop_until_for(e, CONNECT_MS, b.connects == 2 && b.messages == 5);
	assert_string_equal(b.last_payload, "away");
	mqtt_free(a.m);
	mqtt_free(b.m);
	sd_event_unref(e);
}

/* The broker's log has no client that got as far as its CONNECT. */
static bool broker_saw_connect(void)
{
	char line[1024];
	bool seen = false;
	FILE *f = fopen(in_dir("mosquitto.log"), "r");

	assert_non_null(f);
	while (fgets(line, sizeof(line), f) != NULL)
		if (strstr(line, "New client connected") != NULL ||
		    strstr(line, "Received CONNECT") != NULL)
			seen = true;
	fclose(f);
	return seen;
}

/* A client expecting broker_name connects to a broker with the certificate of broker_cert: never
 * on_connect; unless in_handshake is false, the handshake fails, so the broker never sees a
 * CONNECT (nor anything we would send after it). */
static void never_connects(const char *broker_cert, const char *broker_name, bool in_handshake)
{
	sd_event *e = NULL;
	struct client a = {0};

	need_mosquitto();
	broker_start(broker_cert);
	assert_int_equal(sd_event_new(&e), 0);
	client_new(e, &a, "pi2", broker_name, 0);
	/* Two attempts at least (1 s apart). */
	loop_for(e, 2500);
	assert_int_equal(a.connects, 0);
	assert_int_equal(a.disconnects, 0);
	assert_false(mqtt_connected(a.m));
	if (in_handshake)
		assert_false(broker_saw_connect());
	mqtt_free(a.m);
	sd_event_unref(e);
	/* The control: the same broker, the name it has. */
	if (strcmp(broker_cert, "pi1") == 0 || strcmp(broker_cert, "pi2") == 0) {
		assert_int_equal(sd_event_new(&e), 0);
		client_new(e, &a, "pi2", broker_cert, 0);
		loop_until_for(e, CONNECT_MS, a.connects == 1);
		assert_true(broker_saw_connect());
		mqtt_free(a.m);
		sd_event_unref(e);
	}
}

static void wrong_name(void **state)
{
	(void)state;
	/* pi2's certificate, of the home CA, but we want pi1. */
	never_connects("pi2", "pi1", true);
}

static void wrong_name_case(void **state)
{
	(void)state;
	/* Names are compared exactly, after the handshake (which matches them as host names,
	 * without regard to case). */
	never_connects("pi1", "PI1", false);
}

static void other_home(void **state)
{
	(void)state;
	/* A certificate of another home's CA. */
	never_connects("pi9", "pi9", true);
}

static void self_signed(void **state)
{
	(void)state;
	/* The right name, on a certificate the home CA never signed. */
	never_connects("selfsigned", "pi1", true);
}

static void no_broker(void **state)
{
	sd_event *e = NULL;
	struct client a = {0};

	(void)state;
	/* Nobody listens: attempts fail quietly, nothing is called. */
	if (port == 0)
		port = free_port();
	assert_int_equal(sd_event_new(&e), 0);
	client_new(e, &a, "pi2", "pi1", 0);
	/* Not a busy loop: a refused connection is given up, not watched while it stays
	 * "ready" (a turn per attempt and per tick; thousands if it spun). */
	int turns = 0;
	for (int64_t end = mono_ms() + 2500, now; (now = mono_ms()) < end; turns++)
		assert_true(sd_event_run(e, (uint64_t)(end - now) * 1000) >= 0);
	assert_true(turns < 50);
	assert_int_equal(a.connects + a.disconnects, 0);
	assert_false(mqtt_connected(a.m));
	mqtt_free(a.m);
	sd_event_unref(e);
}

/* A timer every PACE_MS on the loop, and the longest it had to wait beyond that. */
#define PACE_MS 50

struct pace {
	sd_event_source *s;
	unsigned fired;
	int64_t last_ms, worst_gap_ms;
};

static int on_pace(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct pace *p = userdata;
	int64_t now = mono_ms();

	p->fired++;
	if (now - p->last_ms > p->worst_gap_ms)
		p->worst_gap_ms = now - p->last_ms;
	p->last_ms = now;
	sd_event_source_set_time(s, usec + PACE_MS * 1000ULL);
	return 0;
}

static int pace_start(sd_event *e, struct pace *p)
{
	memset(p, 0, sizeof(*p));
	/* From now: a loop held before the first firing counts too. */
	p->last_ms = mono_ms();
	if (sd_event_add_time_relative(e, &p->s, CLOCK_MONOTONIC, PACE_MS * 1000ULL, 0, on_pace,
				       p) < 0)
		return -1;
	return sd_event_source_set_enabled(p->s, SD_EVENT_ON);
}

/* The broker by name: resolved off the loop, then connected to by address (its certificate
 * still checked by name). */
static void by_name(void **state)
{
	sd_event *e = NULL;
	struct client a = {0}, b = {.subscribe = "iotsec/+/+/group"};
	struct mqtt_opts o;
	int mid = 0;

	(void)state;
	need_mosquitto();
	broker_start("pi1");
	assert_int_equal(sd_event_new(&e), 0);
	o = opts("pi2", "pi1");
	o.host = "localhost";
	assert_int_equal(mqtt_new(e, &o, &callbacks, &a, &a.m), 0);
	client_new(e, &b, "ctl1", "pi1", 0);
	/* Not inside mqtt_new(): the answer comes on the loop. */
	assert_false(mqtt_connected(a.m));
	loop_until_for(e, CONNECT_MS, a.connects == 1 && b.connects == 1);
	loop_for(e, 200);
	assert_int_equal(mqtt_publish(a.m, "iotsec/h/pi2/group", "named", 5, 1, false, &mid), 0);
	loop_until_for(e, WAIT_MS, a.acks == 1 && b.messages == 1);
	assert_int_equal(a.last_mid, mid);
	assert_string_equal(b.last_payload, "named");
	/* The broker's name is still what is checked: localhost, with the wrong one expected. */
	mqtt_free(a.m);
	a = (struct client){0};
	o.broker_name = "pi2";
	assert_int_equal(mqtt_new(e, &o, &callbacks, &a, &a.m), 0);
	loop_for(e, 2500);
	assert_int_equal(a.connects, 0);
	mqtt_free(a.m);
	mqtt_free(b.m);
	sd_event_unref(e);
}

/* A name that does not resolve: never connected, nothing called, tried again with the backoff,
 * and the loop keeps its pace all along. A broker listens, on the port, for the sake of it. */
static void unresolvable(void **state)
{
	const char *names[] = {"no-such-broker.invalid", "no such name", "broker..home"};
	sd_event *e = NULL;
	struct client a = {0};
	struct mqtt_opts o;
	struct pace p;

	(void)state;
	need_mosquitto();
	broker_start("pi1");
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		assert_int_equal(sd_event_new(&e), 0);
		assert_int_equal(pace_start(e, &p), 0);
		a = (struct client){0};
		o = opts("pi2", "pi1");
		o.host = names[i];
		assert_int_equal(mqtt_new(e, &o, &callbacks, &a, &a.m), 0);
		/* Two attempts at least (1 s apart). */
		loop_for(e, 2500);
		assert_int_equal(a.connects + a.disconnects, 0);
		assert_false(mqtt_connected(a.m));
		assert_int_equal(mqtt_publish(a.m, "t", "x", 1, 1, false, NULL), -ENOTCONN);
		assert_true(p.fired >= 2500 / PACE_MS / 2);
		assert_true(p.worst_gap_ms < 10 * PACE_MS);
		mqtt_free(a.m);
		sd_event_source_disable_unref(p.s);
		sd_event_unref(e);
	}
	assert_false(broker_saw_connect());
}

/* The child of silent_resolver(): exits 0, or the number of the check that failed. */
static int silent_child(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(53)};
	sd_event *e = NULL;
	struct client a = {0};
	struct mqtt_opts o;
	struct pace p;
	char query[512];
	FILE *f;
	int dns;

	inet_pton(AF_INET, "127.83.0.53", &sa.sin_addr);
	/* The resolver only this child sees: an address of its own on lo, where nobody answers. */
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return 10;
	if ((f = fopen(in_dir("resolv.conf"), "w")) == NULL)
		return 11;
	fprintf(f, "nameserver 127.83.0.53\noptions timeout:10 attempts:1\n");
	if (fclose(f) != 0 ||
	    mount(in_dir("resolv.conf"), "/etc/resolv.conf", NULL, MS_BIND, NULL) < 0)
		return 12;
	if ((dns = socket(AF_INET, SOCK_DGRAM, 0)) < 0 ||
	    bind(dns, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return 13;
	if (sd_event_new(&e) < 0 || pace_start(e, &p) < 0)
		return 14;
	o = opts("pi2", "pi1");
	o.host = "silent-broker.example";
	if (mqtt_new(e, &o, &callbacks, &a, &a.m) < 0)
		return 15;
	for (int64_t end = mono_ms() + 3000, now; (now = mono_ms()) < end;)
		if (sd_event_run(e, (uint64_t)(end - now) * 1000) < 0)
			return 16;
	/* The question was asked, and is still unanswered... */
	if (recv(dns, query, sizeof(query), MSG_DONTWAIT) <= 0)
		return 17;
	/* ...while the loop kept its pace. */
	if (p.fired < 3000 / PACE_MS / 2 || p.worst_gap_ms >= 10 * PACE_MS)
		return 18;
	if (a.connects + a.disconnects != 0 || mqtt_connected(a.m))
		return 19;
	/* Freed with the question in flight: its thread is left to finish alone. */
	mqtt_free(a.m);
	sd_event_source_disable_unref(p.s);
	sd_event_unref(e);
	close(dns);
	return 0;
}

/* A resolver that never answers does not hold the loop (the blocking getaddrinfo() of old held
 * it for the resolver's whole timeout, here 10 s). In a child, in a mount namespace of its own
 * with its own /etc/resolv.conf: root only. */
static void silent_resolver(void **state)
{
	const char *checks[] = {
	    [10] = "unshare or mount",
	    [11] = "resolv.conf",
	    [12] = "bind mount",
	    [13] = "the silent resolver's socket",
	    [14] = "the loop",
	    [15] = "mqtt_new",
	    [16] = "sd_event_run",
	    [17] = "no query reached the resolver",
	    [18] = "the loop lost its pace",
	    [19] = "connected to nothing",
	};
	pid_t pid;
	int status = 0, code;

	(void)state;
	if (geteuid() != 0) {
		print_message("not root: no resolver of our own, skipped\n");
		skip();
	}
	if (port == 0)
		port = free_port();
	fflush(NULL);
	assert_true((pid = fork()) >= 0);
	if (pid == 0)
		_exit(silent_child());
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	code = WEXITSTATUS(status);
	if (code != 0)
		fail_msg("silent resolver: %s",
			 code >= 10 && code <= 19 ? checks[code] : "the child failed");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(round_trip, test_teardown),
	    cmocka_unit_test_teardown(bad_options, test_teardown),
	    cmocka_unit_test_teardown(inflight_limit, test_teardown),
	    cmocka_unit_test_teardown(reconnect, test_teardown),
	    cmocka_unit_test_teardown(inflight_across_reconnect, test_teardown),
	    cmocka_unit_test_teardown(persistent_session, test_teardown),
	    cmocka_unit_test_teardown(wrong_name, test_teardown),
	    cmocka_unit_test_teardown(wrong_name_case, test_teardown),
	    cmocka_unit_test_teardown(other_home, test_teardown),
	    cmocka_unit_test_teardown(self_signed, test_teardown),
	    cmocka_unit_test_teardown(no_broker, test_teardown),
	    cmocka_unit_test_teardown(by_name, test_teardown),
	    cmocka_unit_test_teardown(unresolvable, test_teardown),
	    cmocka_unit_test_teardown(silent_resolver, test_teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
