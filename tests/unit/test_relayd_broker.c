/* The relay against a real mosquitto (127.0.0.1, a free port, TLS with the fixture's home CA; the
 * broker's certificate is pi1's, so broker_name is "pi1"), with its real SQLite store: a kit (pi2,
 * a libiotsec MQTT client on the same loop) publishes sealed doctor readings with QoS 1; the
 * relay stores them and the kit gets receipts covering them, opened as sensord opens them. A
 * relay stopped while the kit publishes gets what it missed from its persistent session when it
 * starts again; a grant it forwards is retained for a kit that subscribes later. Skipped only
 * when mosquitto is not installed. Every wait is bounded. */
#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"
#include "mqtt.h"
#include "relayd.h"

#include "ctl_peer.h"
#include "fixture.h"

#define CONNECT_MS (6 * WAIT_MS)
#define EPOCH	   5

static struct fixture fx;
static char mosquitto[4096]; /* "" when not installed */
static pid_t broker = -1;
static int port;

static void find_mosquitto(void)
{
	const char *dirs[] = {"/usr/sbin", "/usr/local/sbin", "/usr/bin", "/usr/local/bin"};

	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		snprintf(mosquitto, sizeof(mosquitto), "%s/mosquitto", dirs[i]);
		if (access(mosquitto, X_OK) == 0)
			return;
	}
	mosquitto[0] = '\0';
}

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

/* The home broker as etc/mosquitto configures it where it matters here: TLS with the home CA,
 * the certificate's name as the user and client id, sessions kept. */
static void broker_start(void)
{
	const char *conf = in_dir("mosquitto.conf");
	FILE *f;
	int log;

	port = free_port();
	assert_non_null(f = fopen(conf, "w"));
	fprintf(f,
		"listener %d 127.0.0.1\ncafile %s\ncertfile %s\nkeyfile %s\n"
		"require_certificate true\nuse_identity_as_username true\n"
		"use_username_as_clientid true\nallow_anonymous false\npersistence false\n"
		"max_queued_messages 0\nlog_dest stderr\nlog_type all\n%s",
		port, fx.ca_crt, fixture_path(&fx, "pi1", "crt"), fixture_path(&fx, "pi1", "key"),
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

static int group_setup(void **state)
{
	find_mosquitto();
	return scratch_setup(state) == 0 && fixture_home(&fx) == 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
	broker_stop();
	fixture_remove(&fx);
	return scratch_teardown(state);
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

/* ---- a kit ---- */

#define HEARD_MAX 32

struct kit {
	struct mqtt *m;
	const char *subscribe;
	bool connected;
	unsigned acks;
	struct {
		char topic[RELAYD_TOPIC_MAX];
		char *data;
		size_t len;
		bool retained;
	} heard[HEARD_MAX];
	size_t n_heard;
};

static void kit_connect(void *ud)
{
	struct kit *k = ud;

	k->connected = true;
	if (k->subscribe)
		assert_int_equal(mqtt_subscribe(k->m, k->subscribe, 1), 0);
}

static void kit_disconnect(const char *reason, void *ud)
{
	(void)reason;
	((struct kit *)ud)->connected = false;
}

static void kit_message(const char *topic, const void *payload, size_t len, int qos, bool retained,
			void *ud)
{
	struct kit *k = ud;

	(void)qos;
	assert_true(k->n_heard < HEARD_MAX);
	snprintf(k->heard[k->n_heard].topic, RELAYD_TOPIC_MAX, "%s", topic);
	assert_non_null(k->heard[k->n_heard].data = malloc(len + 1));
	memcpy(k->heard[k->n_heard].data, payload, len);
	k->heard[k->n_heard].data[len] = '\0';
	k->heard[k->n_heard].len = len;
	k->heard[k->n_heard].retained = retained;
	k->n_heard++;
}

static void kit_published(int mid, void *ud)
{
	(void)mid;
	((struct kit *)ud)->acks++;
}

static const struct mqtt_callbacks kit_cb = {kit_connect, kit_disconnect, kit_message,
					     kit_published};

static void kit_new(sd_event *e, struct kit *k, const char *name, const char *subscribe)
{
	static char cert[4][4096], key[4][4096];
	static int next;
	int i = next++ % 4;
	struct mqtt_opts o = {.host = "127.0.0.1",
			      .port = port,
			      .broker_name = "pi1",
			      .ca = fx.ca_crt,
			      .client_id = name,
			      .clean_session = true};

	snprintf(cert[i], sizeof(cert[i]), "%s", fixture_path(&fx, name, "crt"));
	snprintf(key[i], sizeof(key[i]), "%s", fixture_path(&fx, name, "key"));
	o.cert = cert[i], o.key = key[i];
	k->subscribe = subscribe;
	assert_int_equal(mqtt_new(e, &o, &kit_cb, k, &k->m), 0);
	loop_until_for(e, CONNECT_MS, k->connected);
}

static void kit_free(struct kit *k)
{
	mqtt_free(k->m);
	for (size_t i = 0; i < k->n_heard; i++)
		free(k->heard[i].data);
	memset(k, 0, sizeof(*k));
}

/* ---- the relay ---- */

struct ctx {
	struct iotsec_config cfg;
	sd_event *loop;
	struct relayd d;
	struct stream *s;
	struct cert_store *ca;
	struct envelope_ctx *env; /* pi2 opening its receipts */
};

static const struct envelope_rule kit_rules[] = {
    {RECEIPT_MSG, CERT_ROLE_RELAY, true, true},
    {NULL, 0, false, false},
};

static void relay_start(struct ctx *c)
{
	memset(&c->d, 0, sizeof(c->d));
	assert_int_equal(relayd_start(&c->d, &c->cfg, c->loop), 0);
	loop_until_for(c->loop, CONNECT_MS, mqtt_connected(c->d.mqtt));
	/* The subscriptions are made in on_connect; their SUBACK follows on the same link. */
	loop_for(c->loop, 200);
}

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));
	uint8_t root[CRYPTO_KEY_LEN];
	char *text = NULL, err[256];
	X509 *x;
	EVP_PKEY *k;

	if (mosquitto[0] == '\0') {
		free(c);
		*state = NULL;
		return 0;
	}
	assert_non_null(c);
	broker_start();
	assert_true(
	    asprintf(&text,
		     "device = { cert = \"%s\"; key = \"%s\"; ca = \"%s\"; crl = \"%s\"; "
		     "state_dir = \"%s\"; run_dir = \"%s\"; };\n"
		     "relay = { database = \"%s\"; commit_ms = 20; http_port = 0; "
		     "broker = \"127.0.0.1\"; broker_port = %d; broker_name = \"pi1\"; };\n",
		     fixture_path(&fx, "relay1", "crt"), fixture_path(&fx, "relay1", "key"),
		     fx.ca_crt, fx.crl, scratch_dir(), scratch_dir(), in_dir("relay.db"),
		     port) > 0);
	if (config_load_string(text, "relayd-broker.conf", &c->cfg, err, sizeof(err)) < 0)
		fail_msg("configuration refused: %s", err);
	free(text);
	assert_int_equal(sd_event_new(&c->loop), 0);
	memset(root, 0x33, sizeof(root));
	assert_int_equal(stream_from_root(root, 1, &c->s), 0);
	assert_int_equal(stream_advance(c->s, EPOCH), 0);
	assert_int_equal(cert_store_load(fx.ca_crt, fx.crl, &c->ca), 0);
	x = fixture_cert(&fx, "pi2");
	k = fixture_key(&fx, "pi2");
	assert_int_equal(envelope_ctx_new(c->ca, x, k, kit_rules, 60, &c->env), 0);
	X509_free(x);
	EVP_PKEY_free(k);
	relay_start(c);
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;

	if (c == NULL)
		return 0;
	relayd_stop(&c->d);
	sd_event_unref(c->loop);
	envelope_ctx_free(c->env);
	cert_store_free(c->ca);
	stream_free(c->s);
	config_free(&c->cfg);
	free(c);
	broker_stop();
	unlink(in_dir("relay.db"));
	unlink(in_dir("relay.db-wal"));
	unlink(in_dir("relay.db-shm"));
	return 0;
}

static void need_mosquitto(void **state)
{
	if (*state == NULL) {
		print_message("mosquitto is not installed (scripts/deps.sh test): skipped\n");
		skip();
	}
}

static void publish(struct ctx *c, struct kit *k, uint64_t seq)
{
	struct reading_header h = {.kind = READING_DOCTOR,
				   .epoch = EPOCH,
				   .seq = seq,
				   .time_ms = 1700000000000,
				   .device = "pi2"};
	const char *pt = "{\"sensor\":\"pulse\",\"value\":72,\"unit\":\"/min\"}";
	uint8_t buf[READING_MAX];
	size_t len;
	int mid;

	assert_int_equal(reading_seal(c->s, &h, pt, strlen(pt), buf, sizeof(buf), &len), 0);
	assert_int_equal(mqtt_publish(k->m, "iotsec/testhome/pi2/doctor", buf, len, 1, false, &mid),
			 0);
}

/* Is seq covered by a receipt the kit heard? Each is opened as sensord opens it. */
static bool receipted(struct ctx *c, struct kit *k, uint64_t seq)
{
	for (size_t i = 0; i < k->n_heard; i++) {
		struct envelope_msg m;
		struct receipt rc;
		bool yes;

		if (strcmp(k->heard[i].topic, "iotsec/testhome/relay1/receipt/pi2") != 0)
			continue;
		assert_int_equal(envelope_open(c->env, k->heard[i].data, k->heard[i].len, &m, NULL),
				 0);
		assert_string_equal(m.sender.name, "relay1");
		assert_int_equal(receipt_parse(m.body, &rc), 0);
		envelope_msg_clear(&m);
		yes = receipt_covers(&rc, stream_get_id(c->s), seq);
		if (yes)
			return true;
	}
	return false;
}

static uint64_t rows(struct ctx *c)
{
	struct store_stats st;

	assert_int_equal(store_stats(c->d.store, &st), 0);
	return st.readings;
}

static void test_published_stored_receipted(void **state)
{
	struct ctx *c = *state;
	struct kit k = {0};

	need_mosquitto(state);
	kit_new(c->loop, &k, "pi2", "iotsec/testhome/+/receipt/pi2");
	loop_for(c->loop, 200);
	for (uint64_t s = 1; s <= 3; s++)
		publish(c, &k, s);
	publish(c, &k, 2); /* sent again: stored once, receipted */
	loop_until_for(c->loop, CONNECT_MS,
		       receipted(c, &k, 1) && receipted(c, &k, 2) && receipted(c, &k, 3));
	assert_false(receipted(c, &k, 4));
	assert_int_equal(rows(c), 3);
	assert_int_equal(c->d.received, 4);
	loop_until_for(c->loop, WAIT_MS, c->d.stored + c->d.duplicates == 4);
	assert_int_equal(c->d.stored, 3);
	kit_free(&k);
}

/* Stopped while the kit publishes: the broker keeps the relay's session, and what came
 * meanwhile arrives at the next start, stored and receipted. */
static void test_session_kept(void **state)
{
	struct ctx *c = *state;
	struct kit k = {0};

	need_mosquitto(state);
	kit_new(c->loop, &k, "pi2", "iotsec/testhome/+/receipt/pi2");
	loop_for(c->loop, 200);
	publish(c, &k, 1);
	loop_until_for(c->loop, CONNECT_MS, receipted(c, &k, 1));
	relayd_stop(&c->d);
	publish(c, &k, 2);
	publish(c, &k, 3);
	loop_until_for(c->loop, WAIT_MS, k.acks == 3); /* the broker has them */
	relay_start(c);
	loop_until_for(c->loop, CONNECT_MS, receipted(c, &k, 2) && receipted(c, &k, 3));
	assert_int_equal(rows(c), 3);
	kit_free(&k);
}

/* A grant is retained: a kit that subscribes after it was forwarded gets it. An ack is not. */
static void test_forward_retained(void **state)
{
	struct ctx *c = *state;
	const char env[] = "{\"v\":2,\"msg\":\"grant\"}", ack[] = "{\"v\":2,\"msg\":\"ack\"}";
	struct kit k = {0};

	need_mosquitto(state);
	assert_int_equal(relayd_forward(&c->d, "grant", "pi2", env, strlen(env)), 0);
	assert_int_equal(relayd_forward(&c->d, "ack", "pi2", ack, strlen(ack)), 0);
	loop_for(c->loop, 200);
	kit_new(c->loop, &k, "pi2", "iotsec/testhome/+/+/pi2");
	loop_until_for(c->loop, WAIT_MS, k.n_heard >= 1);
	loop_for(c->loop, 200);
	assert_int_equal(k.n_heard, 1);
	assert_string_equal(k.heard[0].topic, "iotsec/testhome/relay1/grant/pi2");
	assert_string_equal(k.heard[0].data, env);
	assert_true(k.heard[0].retained);
	kit_free(&k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_published_stored_receipted, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_session_kept, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_forward_retained, setup, teardown),
	};

	log_init("test_relayd_broker", LOG_CRIT);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
