/* sensord's way to the broker (daemons/sensord/publish.c): readings are sealed into the spool
 * while the broker is away, published in order when it is there, at most max_inflight at once,
 * taken off the spool by the broker's acknowledgement only, sent again from the first
 * unacknowledged after a lost connection; the emergency record goes ahead of them; nothing
 * goes out of a device out of the home or resyncing.
 *
 * The broker is played here: this file defines mqtt.h's functions, so libiotsec's mqtt.o is
 * not linked, and every publish is recorded for the test to open. */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "crypto.h"
#include "log.h"
#include "mqtt.h"
#include "sensord.h"

#define SENT_MAX 64

/* ---- the broker, played ---- */

struct mqtt {
	struct mqtt_callbacks cb;
	void *ud;
	bool connected;
	int next_mid, max_inflight;
	unsigned inflight;
	char subs[8][SENSORD_TOPIC_MAX];
	size_t n_subs;
	struct {
		char topic[SENSORD_TOPIC_MAX];
		uint8_t data[READING_MAX];
		size_t len;
		int mid;
	} sent[SENT_MAX];
	size_t n_sent;
};

static struct mqtt *broker;

int mqtt_new(sd_event *e, const struct mqtt_opts *o, const struct mqtt_callbacks *cb,
	     void *userdata, struct mqtt **ret)
{
	struct mqtt *m = calloc(1, sizeof(*m));

	(void)e;
	if (m == NULL)
		return -ENOMEM;
	m->cb = *cb, m->ud = userdata, m->max_inflight = o->max_inflight;
	broker = *ret = m;
	return 0;
}

void mqtt_free(struct mqtt *m)
{
	free(m);
	broker = NULL;
}

bool mqtt_connected(const struct mqtt *m)
{
	return m->connected;
}

int mqtt_publish(struct mqtt *m, const char *topic, const void *payload, size_t len, int qos,
		 bool retain, int *ret_mid)
{
	assert_int_equal(qos, 1);
	assert_false(retain);
	if (!m->connected)
		return -ENOTCONN;
	if (m->inflight >= (unsigned)m->max_inflight)
		return -ENOBUFS;
	assert_true(m->n_sent < SENT_MAX);
	assert_true(len <= READING_MAX);
	snprintf(m->sent[m->n_sent].topic, SENSORD_TOPIC_MAX, "%s", topic);
	memcpy(m->sent[m->n_sent].data, payload, len);
	m->sent[m->n_sent].len = len;
	m->sent[m->n_sent].mid = ++m->next_mid;
	m->n_sent++;
	m->inflight++;
	*ret_mid = m->next_mid;
	return 0;
}

int mqtt_subscribe(struct mqtt *m, const char *pattern, int qos)
{
	assert_int_equal(qos, 1);
	assert_true(m->n_subs < 8);
	snprintf(m->subs[m->n_subs++], SENSORD_TOPIC_MAX, "%s", pattern);
	return 0;
}

unsigned mqtt_inflight(const struct mqtt *m)
{
	return m->inflight;
}

const char *mqtt_why(const struct mqtt *m)
{
	return m->connected ? "" : "connection refused or closed";
}

static void broker_up(void)
{
	broker->connected = true;
	broker->inflight = 0;
	broker->n_subs = 0; /* a connection's subscriptions are made again on each */
	broker->cb.on_connect(broker->ud);
}

static void broker_down(void)
{
	broker->connected = false;
	broker->cb.on_disconnect("connection lost", broker->ud);
}

/* The broker acknowledges the i-th message it got. */
static void puback(size_t i)
{
	assert_true(i < broker->n_sent);
	broker->inflight--;
	broker->cb.on_publish(broker->sent[i].mid, broker->ud);
}

/* ---- the device ---- */

struct ctx {
	char dir[PATH_MAX];
	char csv[PATH_MAX + 16];
	struct iotsec_config cfg;
	struct lan_member member;
	struct sensord d;
	struct stream *reader; /* another device's view of the group stream */
};

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));
	struct sensor_spec spec[SENSOR_MAX];
	uint8_t root[CRYPTO_KEY_LEN];
	char *text = NULL, err[256];
	const char *why = NULL;
	FILE *f;

	if (c == NULL)
		return -1;
	snprintf(c->dir, sizeof(c->dir), "/tmp/test_sensord_publish.XXXXXX");
	if (mkdtemp(c->dir) == NULL)
		return -1;
	snprintf(c->csv, sizeof(c->csv), "%s/room.csv", c->dir);
	assert_non_null(f = fopen(c->csv, "w"));
	for (int i = 1; i <= 20; i++)
		fprintf(f, "room,%d.5,C\n", i);
	fclose(f);
	assert_true(asprintf(&text,
			     "sensord = { max_inflight = 3; sensors = \"replay:%s\"; "
			     "alarm_output = \"%s/alarm\"; };\n",
			     c->csv, c->dir) > 0);
	if (config_load_string(text, "publish-test.conf", &c->cfg, err, sizeof(err)) < 0)
		fail_msg("configuration refused: %s", err);
	free(text);
	snprintf(c->member.self.name, sizeof(c->member.self.name), "pi1");
	snprintf(c->member.self.home, sizeof(c->member.self.home), "testhome");
	c->d.member = &c->member;
	c->d.cfg = &c->cfg;
	c->d.in_home = true;
	c->d.sched.start = c->cfg.stream.start;
	c->d.sched.interval = c->cfg.stream.interval_s;
	snprintf(c->d.dir, sizeof(c->d.dir), "%s", c->dir);
	assert_int_equal(sensord_state_load(&c->d), 0);
	memset(root, 6, sizeof(root));
	assert_int_equal(stream_from_root(root, 1, &c->d.group), 0);
	assert_int_equal(stream_from_root(root, 1, &c->reader), 0);
	sensord_advance(&c->d);
	assert_int_equal(stream_advance(c->reader, stream_current(c->d.group)), 0);
	assert_int_equal(sensor_parse_list(c->cfg.sensord.sensors, spec, &c->d.n_sensors, &why), 0);
	assert_int_equal(c->d.n_sensors, 1);
	c->d.sensors[0].spec = spec[0];
	assert_int_equal(sensord_publish_start(&c->d), 0);
	assert_non_null(broker);
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;
	char cmd[PATH_MAX + 16];

	sensord_publish_stop(&c->d);
	sensor_close(c->d.sensors[0].s);
	stream_free(c->d.group);
	stream_free(c->d.doctor);
	stream_free(c->reader);
	config_free(&c->cfg);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", c->dir);
	assert_int_equal(system(cmd), 0);
	free(c);
	return 0;
}

/* The value of the i-th message the broker got, opened as a reader would. */
static double value_of(struct ctx *c, size_t i, struct reading_header *ret_h)
{
	struct reading_header h;
	struct reading_value v;
	uint8_t pt[READING_PLAIN_MAX];
	size_t len;

	assert_int_equal(
	    reading_open(c->reader, broker->sent[i].data, broker->sent[i].len, &h, pt, &len), 0);
	assert_int_equal(reading_value_parse(pt, len, &v), 0);
	if (ret_h)
		*ret_h = h;
	return v.value;
}

static void test_spooled_then_in_order(void **state)
{
	struct ctx *c = *state;
	struct reading_header h;

	/* The broker is away: five readings wait. */
	for (int i = 0; i < 5; i++)
		sensord_read_all(&c->d);
	assert_int_equal(spool_pending(c->d.spool), 5);
	assert_int_equal(broker->n_sent, 0);

	/* It comes: subscriptions, then three at once (max_inflight), in order. */
	broker_up();
	assert_int_equal(broker->n_subs, 4);
	assert_string_equal(broker->subs[0], "iotsec/testhome/+/group");
	assert_string_equal(broker->subs[1], "iotsec/testhome/+/to/pi1");
	assert_string_equal(broker->subs[2], "iotsec/testhome/+/grant/pi1");
	assert_string_equal(broker->subs[3], "iotsec/testhome/+/ack/pi1");
	assert_int_equal(broker->n_sent, 3);
	for (size_t i = 0; i < 3; i++) {
		assert_string_equal(broker->sent[i].topic, "iotsec/testhome/pi1/group");
		assert_true(value_of(c, i, &h) == 1.5 + (double)i);
		assert_string_equal(h.device, "pi1");
		assert_int_equal(h.kind, READING_GROUP);
		assert_int_equal(h.seq, i + 1);
	}
	/* An acknowledgement takes one off the spool and lets the next go. */
	puback(0);
	assert_int_equal(c->d.published, 1);
	assert_int_equal(spool_pending(c->d.spool), 4);
	assert_int_equal(broker->n_sent, 4);
	assert_true(value_of(c, 3, NULL) == 4.5);

	/* The connection goes: what was not acknowledged goes again, from the first. */
	broker_down();
	sensord_read_all(&c->d); /* a sixth meanwhile */
	broker_up();
	assert_int_equal(broker->n_sent, 7);
	assert_true(value_of(c, 4, NULL) == 2.5);
	assert_true(value_of(c, 5, NULL) == 3.5);
	assert_true(value_of(c, 6, NULL) == 4.5);
	for (size_t i = 4; i < 7; i++)
		puback(i);
	/* The rest: 5.5 and 6.5. */
	assert_int_equal(broker->n_sent, 9);
	assert_true(value_of(c, 7, NULL) == 5.5);
	assert_true(value_of(c, 8, NULL) == 6.5);
	puback(7);
	puback(8);
	assert_int_equal(spool_pending(c->d.spool), 0);
	assert_int_equal(c->d.published, 6);
	/* An acknowledgement of the first connection, late: nothing is acknowledged twice. */
	broker->inflight++;
	puback(1);
	assert_int_equal(c->d.published, 6);
}

static void test_emergency_first(void **state)
{
	struct ctx *c = *state;
	struct reading_value v = {.sensor = "pulse", .value = 20, .unit = "/min"};
	struct reading_header h;
	size_t hlen, n;

	for (int i = 0; i < 4; i++)
		sensord_read_all(&c->d);
	sensord_alarm_raise(&c->d, &v);
	broker_up();
	/* The emergency, then the backlog, max_inflight in all. */
	assert_int_equal(broker->n_sent, 3);
	assert_string_equal(broker->sent[0].topic, "iotsec/testhome/pi1/emergency");
	assert_int_equal(reading_header_parse(broker->sent[0].data, broker->sent[0].len, &h, &hlen),
			 0);
	assert_int_equal(h.flags, READING_F_EMERGENCY);
	assert_int_equal(h.kind, READING_GROUP); /* no doctor granted */
	assert_string_equal(broker->sent[1].topic, "iotsec/testhome/pi1/group");
	assert_true(value_of(c, 1, NULL) == 1.5);
	/* Sent again after a lost connection until acknowledged; then not. */
	broker_down();
	broker_up();
	assert_int_equal(broker->n_sent, 6);
	assert_string_equal(broker->sent[3].topic, "iotsec/testhome/pi1/emergency");
	assert_true(value_of(c, 4, NULL) == 1.5);
	puback(3);
	assert_true(c->d.alarm.delivered);
	assert_true(c->d.alarm.set); /* the broker's word is not the doctor's */
	n = broker->n_sent;
	broker_down();
	broker_up();
	assert_true(broker->n_sent > n);
	for (size_t i = n; i < broker->n_sent; i++)
		assert_string_equal(broker->sent[i].topic, "iotsec/testhome/pi1/group");
	assert_true(value_of(c, n, NULL) == 1.5);
}

/* Out of the home, or resyncing: no reading is taken, nothing is sent. */
static void test_quiet(void **state)
{
	struct ctx *c = *state;

	broker_up();
	c->d.in_home = false;
	sensord_read_all(&c->d); /* as on_tick would not; the spool holds it */
	sensord_drain(&c->d);
	assert_int_equal(broker->n_sent, 0);
	c->d.in_home = true;
	c->d.sync = SENSORD_RESYNCING;
	sensord_drain(&c->d);
	assert_int_equal(broker->n_sent, 0);
	c->d.sync = SENSORD_SYNCED;
	sensord_drain(&c->d);
	assert_int_equal(broker->n_sent, 1);
}

/* Without the group key nothing is read: the replay file keeps its rows for later. */
static void test_no_key_no_reading(void **state)
{
	struct ctx *c = *state;
	struct stream *g = c->d.group;

	c->d.group = NULL;
	sensord_read_all(&c->d);
	sensord_read_all(&c->d);
	assert_int_equal(spool_pending(c->d.spool), 0);
	assert_string_equal(c->d.sensors[0].err_text, "no group key yet (keyd has no pool)");
	c->d.group = g;
	sensord_read_all(&c->d);
	broker_up();
	assert_int_equal(broker->n_sent, 1);
	assert_true(value_of(c, 0, NULL) == 1.5);
	assert_string_equal(c->d.sensors[0].err_text, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_spooled_then_in_order, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_emergency_first, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_quiet, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_no_key_no_reading, setup, teardown),
	};

	log_init("test_sensord_publish", LOG_CRIT);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
