/* A kit's burst of sealed readings for tests/bench/relay.sh: the payloads of FILE (each a
 * big-endian u16 length then the reading, sealed beforehand by relay.sh so that no sealing is
 * timed) published at QoS 1 on TOPIC, at most WINDOW unacknowledged, as mosquitto_pub -l -M
 * WINDOW would send them if a sealed reading could be a line (it cannot: its header holds zero
 * bytes and its ciphertext any byte). Plain libmosquitto, like mosquitto_pub, so that the
 * publisher of the relay's figure and of the broker's own are the same client library.
 *
 *   bench_relay_kit HOST PORT CA CERT KEY TOPIC FILE WINDOW
 *
 * Prints "published N in S s" once the broker has acknowledged every one (what the broker
 * does with them next is the script's to time). Exits 1 on any failure. */
#include <errno.h>
#include <mosquitto.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "timing.h"

#define KIT_MAX_READINGS 1000000

struct kit {
	const char *topic;
	uint8_t *buf;	   /* the file */
	size_t *off, *len; /* each reading's place in buf */
	size_t n, sent, acked;
	int window;
	int failed;
};

/* Publish until WINDOW wait for their PUBACK or none is left. */
static void fill(struct mosquitto *m, struct kit *k)
{
	while (k->sent < k->n && k->sent - k->acked < (size_t)k->window) {
		int rc = mosquitto_publish(m, NULL, k->topic, (int)k->len[k->sent],
					   k->buf + k->off[k->sent], 1, false);

		if (rc != MOSQ_ERR_SUCCESS) {
			fprintf(stderr, "bench_relay_kit: publish: %s\n", mosquitto_strerror(rc));
			k->failed = 1;
			mosquitto_disconnect(m);
			return;
		}
		k->sent++;
	}
}

static void on_connect(struct mosquitto *m, void *ud, int rc)
{
	struct kit *k = ud;

	if (rc != 0) {
		fprintf(stderr, "bench_relay_kit: refused: %s\n", mosquitto_connack_string(rc));
		k->failed = 1;
		mosquitto_disconnect(m);
		return;
	}
	fill(m, k);
}

static void on_publish(struct mosquitto *m, void *ud, int mid)
{
	struct kit *k = ud;

	(void)mid;
	if (++k->acked == k->n)
		mosquitto_disconnect(m);
	else
		fill(m, k);
}

/* FILE into k: every record whole, at least one. */
static int load(const char *path, struct kit *k)
{
	FILE *f = fopen(path, "rb");
	long size;
	size_t at = 0;

	if (f == NULL || fseek(f, 0, SEEK_END) < 0 || (size = ftell(f)) <= 0 ||
	    fseek(f, 0, SEEK_SET) < 0 || (k->buf = malloc((size_t)size)) == NULL ||
	    fread(k->buf, 1, (size_t)size, f) != (size_t)size) {
		if (f)
			fclose(f);
		return -1;
	}
	fclose(f);
	k->off = calloc(KIT_MAX_READINGS, sizeof(*k->off));
	k->len = calloc(KIT_MAX_READINGS, sizeof(*k->len));
	if (k->off == NULL || k->len == NULL)
		return -1;
	while (at < (size_t)size) {
		size_t len;

		if ((size_t)size - at < 2 || k->n == KIT_MAX_READINGS)
			return -1;
		len = (size_t)k->buf[at] << 8 | k->buf[at + 1];
		if (len == 0 || len > (size_t)size - at - 2)
			return -1;
		k->off[k->n] = at + 2;
		k->len[k->n++] = len;
		at += 2 + len;
	}
	return k->n > 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
	struct kit k = {0};
	struct mosquitto *m = NULL;
	double t0;
	int rc;

	if (argc != 9 || (k.window = atoi(argv[8])) < 1) {
		fprintf(stderr, "usage: bench_relay_kit HOST PORT CA CERT KEY TOPIC FILE WINDOW\n");
		return 2;
	}
	k.topic = argv[6];
	if (load(argv[7], &k) < 0) {
		fprintf(stderr, "bench_relay_kit: %s: not a file of sealed readings\n", argv[7]);
		return 1;
	}
	mosquitto_lib_init();
	t0 = bench_now();
	/* The client id is the certificate's name at the broker anyway (use_username_as_clientid).
	 */
	if ((m = mosquitto_new(NULL, true, &k)) == NULL ||
	    mosquitto_tls_set(m, argv[3], NULL, argv[4], argv[5], NULL) != MOSQ_ERR_SUCCESS ||
	    mosquitto_tls_insecure_set(m, true) != MOSQ_ERR_SUCCESS ||
	    mosquitto_max_inflight_messages_set(m, (unsigned)k.window) != MOSQ_ERR_SUCCESS) {
		fprintf(stderr, "bench_relay_kit: cannot set up the client\n");
		return 1;
	}
	mosquitto_connect_callback_set(m, on_connect);
	mosquitto_publish_callback_set(m, on_publish);
	if ((rc = mosquitto_connect(m, argv[1], atoi(argv[2]), 60)) != MOSQ_ERR_SUCCESS) {
		fprintf(stderr, "bench_relay_kit: connect %s:%s: %s\n", argv[1], argv[2],
			mosquitto_strerror(rc));
		return 1;
	}
	rc = mosquitto_loop_forever(m, -1, 1);
	if (k.failed || k.acked != k.n) {
		fprintf(stderr, "bench_relay_kit: %zu of %zu acknowledged (%s)\n", k.acked, k.n,
			mosquitto_strerror(rc));
		return 1;
	}
	printf("published %zu in %.3f s\n", k.n, bench_now() - t0);
	mosquitto_destroy(m);
	mosquitto_lib_cleanup();
	free(k.buf);
	free(k.off);
	free(k.len);
	return 0;
}
