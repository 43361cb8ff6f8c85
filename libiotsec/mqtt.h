/* One MQTT connection over TLS with the home's certificates, driven by libmosquitto from the
 * daemon's sd-event loop: no thread of libmosquitto's own. The client's socket is watched for
 * reading always and for writing while mosquitto_want_write() says so; mosquitto_loop_misc()
 * runs every second (keepalive, retries of unacknowledged QoS 1 messages). A lost connection is
 * tried again after 1 s, doubling to 30 s.
 *
 * The broker's certificate must chain to the home CA and carry the name the caller expects
 * (broker_name; checked on every connection, in the TLS handshake, so a broker of another name
 * gets nothing from us, and exactly again before on_connect runs: the address is not what we
 * trust, since a home's devices rarely have names in DNS).
 *
 * Messages in flight when a connection is lost are sent again by libmosquitto once it is back,
 * under the same mid: their on_publish still comes. */
#ifndef IOTSEC_MQTT_H
#define IOTSEC_MQTT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <systemd/sd-event.h>

struct mqtt_opts {
	const char *host;
	int port;
	const char *broker_name; /* the CN the broker's certificate must have */
	const char *ca, *cert, *key;
	const char *client_id; /* the persistent session's name */
	bool clean_session;
	int keepalive_s;  /* 0: 30 */
	int max_inflight; /* QoS 1 messages in flight; 0: 100 */
};

struct mqtt_callbacks {
	/* Connected, broker checked: subscribe here (again after every reconnection). */
	void (*on_connect)(void *userdata);
	/* The connection went; it is being tried again. reason: libmosquitto's rc text. */
	void (*on_disconnect)(const char *reason, void *userdata);
	void (*on_message)(const char *topic, const void *payload, size_t len, int qos,
			   bool retained, void *userdata);
	/* The broker acknowledged message mid (PUBACK for QoS 1). */
	void (*on_publish)(int mid, void *userdata);
};

struct mqtt;
/* Starts connecting at once (asynchronously). Strings are copied. */
int mqtt_new(sd_event *e, const struct mqtt_opts *o, const struct mqtt_callbacks *cb,
	     void *userdata, struct mqtt **ret);
/* Disconnects cleanly (what is in flight stays in the caller's spool). NULL is allowed. */
void mqtt_free(struct mqtt *m);

bool mqtt_connected(const struct mqtt *m);
/* Why the last attempt to connect failed ("the broker's certificate is x's, not broker's"), or ""
 * when connected or no attempt has failed yet: for a status that says more than "connecting". */
const char *mqtt_why(const struct mqtt *m);
/* -ENOTCONN when not connected, -ENOBUFS when max_inflight messages wait for their PUBACK
 * (libmosquitto queues beyond it; we do not, so the spool stays the one queue). */
int mqtt_publish(struct mqtt *m, const char *topic, const void *payload, size_t len, int qos,
		 bool retain, int *ret_mid);
int mqtt_subscribe(struct mqtt *m, const char *pattern, int qos);
/* Messages published but not yet acknowledged. */
unsigned mqtt_inflight(const struct mqtt *m);

#endif
