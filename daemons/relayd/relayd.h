/* iotsec-relayd (SPEC 9): the cloud relay that keeps a home's doctor readings for doctors who
 * are offline, without a key that opens one.
 *
 * It holds a relay-role certificate of the home (device.cert/key/ca/crl; `iotsec-pki enrol
 * --role relay`) and connects to the home broker (relay.broker*) with a persistent session,
 * subscribing with QoS 1 to iotsec/<home>/+/doctor and iotsec/<home>/+/emergency (through
 * $share/<relay.share>/... when relay.share is set, so that several instances share the work).
 * A reading is checked without opening it (reading_header_parse(): a doctor-kind reading whose
 * device is the topic's, the emergency flag as the topic says, at most READING_MAX bytes), put
 * in the pending batch, and committed with the batch (store.h) when relay.commit_ms has passed
 * since the batch's first reading or it holds relay.batch_max. A stream is bound to the kit that
 * stored its first reading (store.h's streams): another device's readings under it are refused
 * at the commit, as are those that would give a kit more than RELAYD_DEVICE_STREAMS_MAX
 * streams. After the commit, and only then,
 * each kit gets a RELAY_RECEIPT (receipt.h) per stream of the batch, covering the seqs stored
 * (new and duplicates alike), on iotsec/<home>/<relay>/receipt/<kit>, QoS 1. A refused
 * publish is logged once per (kit, reason) and counted; ingest goes on.
 *
 * Doctors use HTTPS (libmicrohttpd, on the daemon's sd-event loop: no thread) on
 * relay.http_port with the relay's certificate; the same port serves the doctor's page
 * (relay.web_dir). Every body is JSON; errors are {"error":"text"} with a 4xx status.
 *   GET  /api/challenge            {"relay":NAME,"nonce":"<32 hex>"}: one use, 60 s
 *   POST /api/login                body: a RELAY_LOGIN envelope (receipt.h) signed by a doctor
 *                                  certificate of the home, to the relay, id = the nonce.
 *                                  {"token":"<64 hex>","doctor":NAME,"expires_ms":T}
 *   Every other /api call carries "Authorization: Bearer <token>" (401 without a valid one):
 *   POST /api/grant                {"envelope":"<DOCTOR_GRANT envelope text>","stream":"<hex>",
 *                                   "wrapped":"<b64>"}: the envelope must be the logged-in
 *                                  doctor's; the relay records stream -> doctor (409 when the
 *                                  stream is another doctor's) with "wrapped" (RSA-OAEP-SHA256
 *                                  to the doctor's own certificate key of
 *                                  {"kit":K,"start":e0,"root":"<b64>"}) and publishes the
 *                                  envelope retained on iotsec/<home>/<relay>/grant/<kit>.
 *   POST /api/ack                  {"envelope":"<EMERGENCY_ACK envelope text>"}: the doctor's;
 *                                  published on iotsec/<home>/<relay>/ack/<kit>.
 *   GET  /api/streams              {"streams":[{"stream":hex,"start":e0,"wrapped":b64,
 *                                   "granted_ms":T}]}
 *   GET  /api/fetch?max=N          the queue (store_queue()): {"readings":[{"id":N,
 *                                   "stream":hex,"seq":N,"emergency":bool,"received_ms":T,
 *                                   "data":"<b64 sealed reading>"}],"more":bool,
 *                                   "expired":[{"stream":hex,"count":N,"undelivered":N,
 *                                   "first_seq":N,"last_seq":N,"at_ms":T}]}
 *   POST /api/delivered            {"ids":[N,...]}: taken off the queue. {"marked":N}
 *   GET  /api/history?stream=HEX&after=SEQ&max=N   {"readings":[...as fetch...]}
 * A kit's grant and acknowledgement thus reach it through the relay: sensord takes a doctor's
 * envelope from a relay it trusts (sensord.relay) as from the doctor itself.
 *
 * Retention (relay.retention_s, relay.cap) runs every minute, a bounded batch at a time, and
 * what it removes is counted per stream (store_expired_of()), shown to the doctor in fetch.
 *
 * Control socket verbs: status (ingest counts, the broker, refusals) and relay (the store's
 * figures: queue depth per doctor, oldest undelivered, expired, size on disk, ingest rate). */
#ifndef IOTSEC_RELAYD_H
#define IOTSEC_RELAYD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <systemd/sd-event.h>

#include "cert.h"
#include "clock.h"
#include "config.h"
#include "ctl.h"
#include "envelope.h"
#include "mqtt.h"
#include "reading.h"
#include "receipt.h"
#include "store.h"

#define RELAYD_TOPIC_MAX       256
#define RELAYD_BODY_MAX	       (64 * 1024) /* an HTTP request body at most */
#define RELAYD_FETCH_MAX       1000	   /* readings in one fetch or history answer */
#define RELAYD_SESSIONS_MAX    256	   /* doctors logged in at once */
#define RELAYD_NONCES_MAX      256	   /* challenges outstanding */
#define RELAYD_CHALLENGE_MS    60000
#define RELAYD_EXPIRE_MS       60000 /* between two retention runs */
#define RELAYD_EXPIRE_FIRST_MS 1000  /* the first run after start */
#define RELAYD_EXPIRE_BATCH    10000 /* rows one retention step removes at most */
#define RELAYD_RATE_WINDOW_S   10    /* the ingest rate is over this many seconds */
/* Streams one device may own in the store (store.h enforces it). */
#define RELAYD_DEVICE_STREAMS_MAX STORE_DEVICE_STREAMS_MAX

/* A reading received, waiting for its commit. */
struct relayd_pending {
	struct store_reading r; /* r.data points at data */
	char kit[CERT_NAME_MAX];
	uint8_t data[READING_MAX];
};

/* Why a publish was refused: counted, and logged once per (kit, reason). */
enum relayd_refusal {
	RELAYD_REF_TOPIC,     /* not iotsec/<our home>/<kit>/{doctor,emergency} */
	RELAYD_REF_MALFORMED, /* reading_header_parse() refused it */
	RELAYD_REF_OVERSIZE,
	RELAYD_REF_KIND,      /* not a doctor-stream reading */
	RELAYD_REF_DEVICE,    /* its device is not the topic's kit */
	RELAYD_REF_EMERGENCY, /* the flag and the topic disagree */
	/* Its (stream, seq) is stored with other bytes (the stream is the kit's: it sealed the
	 * seq twice). */
	RELAYD_REF_TAKEN,
	/* Its stream is another device's (the first to store a reading of it binds it), or would
	 * be the device's stream past RELAYD_DEVICE_STREAMS_MAX. */
	RELAYD_REF_STREAM,
	RELAYD_REF_COUNT
};

struct relayd_http; /* http.c */

struct relayd {
	const struct iotsec_config *cfg;
	sd_event *loop;
	struct ctl_server *ctl;
	/* Who we are and whom we trust: the home CA, its CRL, our certificate and key. */
	struct cert_store *ca;
	X509 *cert;
	EVP_PKEY *key;
	struct cert_info self;
	struct envelope_ctx *env; /* opens doctors' envelopes, seals receipts */
	struct store *store;

	/* Ingest (ingest.c). */
	struct mqtt *mqtt;
	struct relayd_pending *pending;
	size_t n_pending;
	sd_event_source *commit_timer;
	uint64_t received, stored, duplicates, receipts, commit_failures;
	/* Readings dropped because the pending array was full while commits failed: the broker
	 * had acknowledged them, but the kit keeps each until its receipt and sends it again. */
	uint64_t dropped, dropped_said;
	bool commit_failing; /* the last commit failed: said once, tried again at the timer */
	uint64_t refused[RELAYD_REF_COUNT];
	/* (kit, reason) pairs already logged, so a flood is said once. */
	struct relayd_said {
		char kit[CERT_NAME_MAX];
		enum relayd_refusal why;
	} said[64];
	size_t n_said;
	/* Readings stored per second over the last RELAYD_RATE_WINDOW_S seconds. */
	uint64_t rate_at[RELAYD_RATE_WINDOW_S]; /* monotonic second of each slot */
	uint64_t rate_n[RELAYD_RATE_WINDOW_S];

	/* Doctors (http.c). */
	struct relayd_http *http;
	sd_event_source *expire_timer;
	uint64_t expired_total;
};

/* relayd.c */
int relayd_start(struct relayd *d, const struct iotsec_config *cfg, sd_event *loop);
void relayd_stop(struct relayd *d);
extern const struct ctl_verb relayd_verbs[];
/* The readings stored per second over the last RELAYD_RATE_WINDOW_S seconds. */
double relayd_rate(const struct relayd *d);

/* ingest.c */
int relayd_ingest_start(struct relayd *d);
void relayd_ingest_stop(struct relayd *d);
/* One publish on a reading topic (topic as received). Refused ones are counted and said. */
void relayd_on_reading(struct relayd *d, const char *topic, const void *payload, size_t len);
/* Commit the pending batch, then send its receipts. 0, or the store's error (the batch stays
 * pending and is tried again at the next timer; nothing is receipted). */
int relayd_commit(struct relayd *d);
/* Publish a doctor's envelope on iotsec/<home>/<relay>/<what>/<kit> ("grant" retained, "ack"
 * not), QoS 1. -ENOTCONN when the broker is away (the doctor is told to try again). */
int relayd_forward(struct relayd *d, const char *what, const char *kit, const char *envelope,
		   size_t len);

/* http.c: libmicrohttpd on d->loop. */
int relayd_http_start(struct relayd *d);
void relayd_http_stop(struct relayd *d);
/* One API call, without HTTP: what http.c calls for /api/..., and what the unit tests and
 * fuzz target call. auth is the Authorization header's value or NULL. *ret_status is the HTTP
 * status, *ret the JSON answer (owned by the caller). */
void relayd_api(struct relayd *d, const char *method, const char *path, const char *query,
		const char *auth, const void *body, size_t len, int *ret_status, json_t **ret);

#endif
