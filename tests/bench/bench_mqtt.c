/* The MQTT glue (mqtt.h) moving readings through a real broker: N messages of SIZE bytes at
 * QoS 1 from one struct mqtt to another on the same sd-event loop, max_inflight of them in flight
 * (refilled on each PUBACK), timed from the first publish until the subscriber has them all and
 * every PUBACK is in. tests/bench/mqtt.sh runs mosquitto_pub and mosquitto_sub through the same
 * broker with the same messages beside it. Never fails on speed.
 *   bench_mqtt HOST PORT BROKER_NAME CA PUB_CERT PUB_KEY SUB_CERT SUB_KEY N SIZE */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mqtt.h"
#include "timing.h"

#define TOPIC "iotsec/bench/pub/group"

struct side {
	struct mqtt *m;
	bool up;
	long got, acked;
};

static void on_connect(void *userdata)
{
	struct side *s = userdata;

	s->up = true;
}

static void on_message(const char *topic, const void *payload, size_t len, int qos, bool retained,
		       void *userdata)
{
	struct side *s = userdata;

	(void)topic, (void)payload, (void)len, (void)qos, (void)retained;
	s->got++;
}

static void on_publish(int mid, void *userdata)
{
	struct side *s = userdata;

	(void)mid;
	s->acked++;
}

static const struct mqtt_callbacks callbacks = {on_connect, NULL, on_message, on_publish};

int main(int argc, char **argv)
{
	sd_event *e = NULL;
	struct side pub = {0}, sub = {0};
	struct mqtt_opts o = {0};
	long n, sent = 0;
	size_t size;
	char *payload;
	double t0, t;
	int mid, r;

	if (argc != 11) {
		fprintf(stderr,
			"usage: bench_mqtt HOST PORT BROKER_NAME CA PUB_CERT PUB_KEY SUB_CERT "
			"SUB_KEY N SIZE\n");
		return 2;
	}
	n = atol(argv[9]);
	size = (size_t)atol(argv[10]);
	if (n < 1 || size < 1 || size > 16384 || (payload = malloc(size)) == NULL)
		return 2;
	memset(payload, 'r', size);
	if (sd_event_new(&e) < 0)
		return 1;
	o.host = argv[1];
	o.port = atoi(argv[2]);
	o.broker_name = argv[3];
	o.ca = argv[4];
	o.cert = argv[7];
	o.key = argv[8];
	o.client_id = "bench-sub";
	o.clean_session = true;
	if ((r = mqtt_new(e, &o, &callbacks, &sub, &sub.m)) < 0) {
		fprintf(stderr, "bench_mqtt: subscriber: %s\n", strerror(-r));
		return 1;
	}
	o.cert = argv[5];
	o.key = argv[6];
	o.client_id = "bench-pub";
	if ((r = mqtt_new(e, &o, &callbacks, &pub, &pub.m)) < 0) {
		fprintf(stderr, "bench_mqtt: publisher: %s\n", strerror(-r));
		return 1;
	}
	for (t0 = bench_now(); !(pub.up && sub.up) && bench_now() - t0 < 10;)
		sd_event_run(e, 100000);
	if (!(pub.up && sub.up) || mqtt_subscribe(sub.m, TOPIC, 1) < 0) {
		fprintf(stderr, "bench_mqtt: no connection to %s:%s\n", argv[1], argv[2]);
		return 1;
	}
	/* The SUBACK: a message published before it would not reach the subscriber. */
	for (t0 = bench_now(); bench_now() - t0 < 0.3;)
		sd_event_run(e, 100000);
	t0 = bench_now();
	while (sub.got < n || pub.acked < n) {
		while (sent < n &&
		       (r = mqtt_publish(pub.m, TOPIC, payload, size, 1, false, &mid)) == 0)
			sent++;
		if (r < 0 && r != -ENOBUFS) {
			fprintf(stderr, "bench_mqtt: publish: %s\n", strerror(-r));
			return 1;
		}
		if (bench_now() - t0 > 120) {
			fprintf(stderr, "bench_mqtt: %ld of %ld received after 120 s\n", sub.got,
				n);
			return 1;
		}
		sd_event_run(e, 100000);
	}
	t = bench_now() - t0;
	printf("mqtt glue: %ld msgs of %zu bytes, QoS 1, %d in flight: %.3f s, %.0f msgs/s\n", n,
	       size, 100, t, (double)n / t);
	mqtt_free(pub.m);
	mqtt_free(sub.m);
	sd_event_unref(e);
	free(payload);
	return 0;
}
