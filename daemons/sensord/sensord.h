/* iotsec-sensord (SPEC 5.6, 8): sensor readings over MQTT, sealed end to end.
 *
 * Every sensord.interval_ms each sensor is read; a reading becomes compact JSON sealed
 * (reading.h) under the doctor stream (sensors named in sensord.doctor_sensors, once a doctor
 * granted one) or under the home's group stream (its root from keyd's pool, looked up in dictd),
 * goes through the spool (spool.h) and is published with QoS 1, in order, on
 * iotsec/<home>/<device>/{group,doctor}; the broker's PUBACK takes it off the spool. A pulse
 * below sensord.alarm_below raises the alarm output and sends an emergency record at once, ahead
 * of the spool; only the granted doctor's EMERGENCY_ACK clears it.
 *
 * With sensord.relay set (SPEC 9), a doctor reading and a doctor-sealed emergency record are
 * delivered only when a RELAY_RECEIPT (receipt.h) of one of those relays covers them, on
 * iotsec/<home>/<relay>/receipt/<us>: after the PUBACK they wait (receipts.c), and are published
 * again sensord.receipt_s later without one. Doctor readings then go to a spool of their own, so
 * that each spool is acknowledged in order by one kind of acknowledgement: a spool keeps only its
 * head on disk, and group readings acknowledged behind a doctor reading waiting for its receipt
 * would otherwise go again after a restart, replays to every reader of the home. Grants and
 * acknowledgements come from such a relay too, signed by the doctor.
 *
 * As a reader it opens every device's group readings (iotsec/<home>/+/group), keeps the last
 * SENSORD_READINGS_MAX for the readings verb and pushes each as a `reading` event.
 *
 * A device whose clock is unset or whose saved chains are far from its clock asks its
 * neighbours for the time and the group key (resync.h) on UDP port net.port + 3 and publishes
 * nothing until they answer (or sensord.resync_tries requests went unanswered: then it keeps its
 * own clock, and says so).
 *
 * state_dir/sensord/sensord.state (0600) keeps the seqs (with a reserve, so a crash never
 * reuses one), the doctor chain, the last grant, the alarm and the last acknowledged seq;
 * state_dir/sensord/spool holds what the broker has not acknowledged, state_dir/sensord/
 * spool-doctor the doctor readings spooled while sensord.relay was set, until a relay's receipt
 * (or, with sensord.relay emptied since, the broker) takes them. */
#ifndef IOTSEC_SENSORD_H
#define IOTSEC_SENSORD_H

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "cert.h"
#include "clock.h"
#include "certd_client.h"
#include "config.h"
#include "ctl.h"
#include "dictd_client.h"
#include "lan.h"
#include "mqtt.h"
#include "reading.h"
#include "refusals.h"
#include "resync.h"
#include "sensor.h"
#include "spool.h"
#include "stream.h"

#define SENSORD_STATE_FILE   "sensord.state"
#define SENSORD_STATE_MAX    (64 * 1024)
#define SENSORD_READINGS_MAX 256      /* group readings kept for the readings verb */
#define SENSORD_SEQ_RESERVE  1000     /* seqs saved ahead of use: a crash skips, never reuses */
#define SENSORD_GROUP_RECORD "-group" /* dictd's name for the group root (keyd stores it) */
/* A reader moves its chain on to the next epoch this close to its start. */
#define SENSORD_ADVANCE_SKEW_MS 5000
#define SENSORD_TOPIC_MAX	256
/* An acknowledgement kept while out of the home, at most: the broker's message size limit. */
#define SENSORD_HELD_ACK_MAX 16384
#define SENSORD_PAIRS_MAX    64 /* devices we hold pairwise reading keys with */
/* A spool record of a reading for one device: this byte (no sealed reading's version), the
 * length of the device's name, the name, then the sealed reading. The topic needs the name. */
#define SENSORD_SPOOL_TO 0x80

enum sensord_sync {
	SENSORD_SYNCED,
	SENSORD_RESYNCING,
	SENSORD_OWN_CLOCK,
};

/* The seq counters: one per kind of stream we seal under. */
enum sensord_kind {
	SENSORD_GROUP = 0,
	SENSORD_DOCTOR = 1,
};

struct sensord_sensor {
	struct sensor_spec spec;
	struct sensor *s;
	char last_name[READING_SENSOR_MAX + 1];
	double last;
	char unit[READING_UNIT_MAX + 1];
	int64_t at; /* unix ms of the last reading, 0: none */
	int error;  /* the last read's, 0 when it worked */
	char err_text[160];
	const char *stream; /* "group", "doctor", "waiting", "pair" */
	bool done;	    /* replay at its end */
};

/* One opened reading, for the readings verb. */
struct sensord_reading {
	char device[READING_NAME_MAX + 1];
	char to[CERT_NAME_MAX]; /* a reading for us alone: our name; "" for the group's */
	struct reading_value v;
	int64_t time_ms;
	uint64_t seq;
	uint32_t epoch;
};

struct sensord_alarm {
	bool set;
	uint64_t seq;
	double value;
	int64_t at; /* unix ms */
	/* The emergency record, sealed, until delivered. */
	uint8_t record[READING_MAX];
	size_t len;
	bool delivered; /* by the broker, or with sensord.relay set by a relay's receipt */
	int mid;	/* in flight: its mid; -1 none */
	/* Monotonic ms of its PUBACK while it waits for a relay's receipt; 0: not waiting. */
	uint64_t sent_at;
};

/* The reading keys of one direction each with a device, of keyd's pool `pool`. */
struct sensord_pair {
	struct sensord *d;
	char peer[CERT_NAME_MAX];
	uint32_t pool;		    /* of the streams; 0: none */
	struct stream *send, *recv; /* us -> peer, peer -> us */
	struct ctl_call *call;	    /* dictd lookup under way */
	uint32_t asked_pool;	    /* the pool that lookup is for */
	size_t n_keys;		    /* ring keys asked for; 0: the path key */
	bool want;		    /* waits for keyd's peers answer */
	int error;		    /* the last failure, said once */
	uint64_t failed_at;	    /* monotonic ms; asked again PAIR_RETRY_MS later */
};

struct sensord_inflight {
	int mid;
	uint64_t id; /* spool record */
	bool doctor; /* of the doctor's spool; otherwise of the home's */
	/* Of the doctor's spool with sensord.relay set: its PUBACK makes it wait for a receipt. */
	bool receipt;
	uint8_t stream[STREAM_ID_LEN];
	uint64_t seq;
};

/* A doctor spool record the broker acknowledged that waits for a relay's receipt (receipts.c). Kept
 * in the order of their PUBACKs, so the oldest is due first; one per record, and never more than
 * sensord.spool_max. */
struct sensord_awaiting {
	uint64_t id;
	uint8_t stream[STREAM_ID_LEN];
	uint64_t seq;
	uint64_t sent_at; /* monotonic ms of the PUBACK */
};

struct sensord {
	const struct iotsec_config *cfg;
	sd_event *loop;
	struct ctl_server *ctl;
	struct lan_member *member;
	struct lan_udp *udp;
	struct lan_tcp *tcp;
	struct certd_client *certd;
	struct ctl_peer *keyd;
	struct dictd_client *dictd;
	struct ctl_call *dictd_call;
	struct mqtt *mqtt;
	/* The home's spool, taken by the broker's PUBACKs, and the doctor's, taken by relays'
	 * receipts: opened while sensord.relay is set, or while it holds readings from then. */
	struct spool *spool, *spool_doctor;
	sd_event_source *tick, *misc;
	char dir[4096]; /* state_dir/sensord */
	bool in_home;
	/* The last acknowledgement for us that came while out of the home, judged on entering it:
	 * unlike a grant it is not retained, and the broker will not send it again. */
	uint8_t *held_ack;
	size_t held_ack_len;
	char held_ack_from[CERT_NAME_MAX];

	/* Stream time: our clock plus what a neighbour said it is off by. */
	struct stream_schedule sched;
	int64_t offset_ms;
	bool offset_set; /* a neighbour's SYNC_STATE set offset_ms */
	enum sensord_sync sync;
	const char *sync_why; /* why a resync is needed (static text) */
	struct resync rs;
	sd_event_source *rs_timer;
	struct sensord_answered {
		char peer[CERT_NAME_MAX];
		uint64_t at; /* monotonic ms */
	} answered[RESYNC_PEERS_MAX];

	/* The group stream: from keyd's pool (dictd) or a neighbour (resync). */
	struct stream *group;
	uint32_t pool, group_start;	      /* of the group stream we hold */
	uint32_t keyd_pool, keyd_group_start; /* what keyd says now */
	bool group_from_resync;

	/* Readings for one device alone (pair.c). */
	struct sensord_pair pairs[SENSORD_PAIRS_MAX];
	size_t n_pairs;
	struct ctl_call *keyd_call; /* keyd `peers` under way */
	uint32_t pair_gone_said;    /* the last gone pool whose readings were dropped */

	/* The doctor stream. */
	struct stream *doctor;
	char doctor_name[CERT_NAME_MAX];
	char doctor_serial[2 * 20 + 1]; /* its certificate's (hex), to see it revoked; "" unknown */
	uint32_t doctor_e0;
	int64_t grant_issued; /* ms; 0 none */

	uint64_t seq[2], reserved[2]; /* next seq to use; seqs below reserved are saved */
	struct sensord_alarm alarm;
	uint64_t acked_seq;

	struct sensord_sensor sensors[SENSOR_MAX];
	size_t n_sensors;

	/* Publishing: QoS 1 messages in flight and the last record sent of each spool. */
	struct sensord_inflight *inflight;
	size_t n_inflight;
	uint64_t sent_id, sent_doctor_id;
	bool doctor_turn; /* the doctor's spool sends next: the two take turns */
	unsigned long published;
	bool broker_warned;
	/* Doctor readings waiting for a relay's receipt; forgotten with a connection, as every
	 * record in the spool is sent again on the next. */
	struct sensord_awaiting *awaiting;
	size_t n_awaiting, cap_awaiting;
	unsigned long receipts; /* receipts taken */

	/* Reading. */
	struct reading_guard *guard;
	struct sensord_reading ring[SENSORD_READINGS_MAX];
	size_t ring_start, ring_n;
	unsigned long opened;
	struct refusals refused;
	uint64_t dropped_logged; /* spool drops seen so far (both spools) */
	bool dropping;		 /* the last append dropped one */
	bool no_group_said;
	/* The group stream of the pool before ours: its readings still in flight when the pool
	 * changed are no sender's fault. */
	uint8_t prev_group_id[STREAM_ID_LEN];
	bool has_prev_group;
};

/* sensord.c */
int sensord_start(struct sensord *d, const struct iotsec_config *cfg, sd_event *loop);
void sensord_stop(struct sensord *d);
json_t *sensord_status(struct sensord *d);
extern const struct ctl_verb sensord_verbs[];
/* Stream time, unix ms: clock_now_us(), or after a resync our wall clock plus its offset. */
int64_t sensord_now_ms(const struct sensord *d);
uint32_t sensord_epoch_now(const struct sensord *d);
/* Move both chains to the epoch of our clock (never back). Saves when the doctor's moved. */
void sensord_advance(struct sensord *d);
/* Publishing may happen: in the home, synced (or on our own clock). */
bool sensord_may_publish(const struct sensord *d);
void sensord_topic(const struct sensord *d, const char *device, const char *what, char *out,
		   size_t len);
/* Install a group stream (the caller's; freed when replaced). */
void sensord_set_group(struct sensord *d, struct stream *s, uint32_t pool, uint32_t start);

/* state.c */
int sensord_state_load(struct sensord *d);
/* Write sensord.state now (atomically); logs a failure. */
int sensord_state_save(struct sensord *d);
/* The next seq of kind k, saving a new reserve first when needed; 0 when it cannot be saved. */
uint64_t sensord_next_seq(struct sensord *d, enum sensord_kind k);

/* publish.c */
/* Is name one of the words of list (separated by spaces or commas)? */
bool sensord_listed(const char *list, const char *name);
int sensord_publish_start(struct sensord *d);
void sensord_publish_stop(struct sensord *d);
/* Read every sensor once. */
void sensord_read_all(struct sensord *d);
/* Send what waits: the emergency first, then each spool in order, the two in turn. */
void sensord_drain(struct sensord *d);
/* Readings waiting in both spools, and ever dropped from them. */
size_t sensord_spooled(const struct sensord *d);
uint64_t sensord_spool_dropped(const struct sensord *d);
/* Subscribe to this kit's grants (again): the retained one in force is delivered. */
void sensord_subscribe_grants(struct sensord *d);
/* Judge the acknowledgement held while out of the home, if any, and forget it. */
void sensord_judge_held_ack(struct sensord *d);
/* Seal pt under stream s (kind, flags) with a fresh seq of counter k into out. */
int sensord_seal(struct sensord *d, struct stream *s, enum reading_kind kind, uint8_t flags,
		 enum sensord_kind k, const struct reading_value *v, uint8_t *out, size_t *ret_len,
		 uint64_t *ret_seq);

/* readers.c */
void sensord_on_group(struct sensord *d, const char *device, const void *payload, size_t len);
/* A reading device sealed for us alone (iotsec/<home>/<device>/to/<us>). */
void sensord_on_pair(struct sensord *d, const char *device, const void *payload, size_t len);
int sensord_readings(struct sensord *d, size_t max, json_t **ret);
void sensord_refuse(struct sensord *d, const char *device, int r, const char *what);
/* The same, with why said in place of r's generic text (a setting to check, say). */
void sensord_refuse_why(struct sensord *d, const char *device, int r, const char *what,
			const char *why);
json_t *sensord_refused_by(const struct sensord *d);

/* pair.c */
/* The stream sealing our readings for peer (send) or opening theirs for us, of keyd's current
 * pool; NULL while it is being drawn (asked for now) or cannot be. */
struct stream *sensord_pair_stream(struct sensord *d, const char *peer, bool send);
/* Ask keyd and dictd for the keys of every pair that lacks them. */
void sensord_pairs_fetch(struct sensord *d);
/* keyd's pool changed: wipe the keys of the old one and draw the new. */
void sensord_pairs_new_pool(struct sensord *d);
void sensord_pairs_free(struct sensord *d);

/* alarm.c */
/* A pulse v below the threshold: raise the alarm (unless one is set). */
void sensord_alarm_raise(struct sensord *d, const struct reading_value *v);
/* An alarm set without a key to seal its record (none yet, or none before a restart): seal and
 * send it now if there is one. */
void sensord_alarm_retry(struct sensord *d);
/* Write the alarm output ("1\n" or "0\n"). */
void sensord_alarm_output(struct sensord *d, bool on);
/* A doctor's message published by from: the doctor, or a relay of sensord.relay passing it on. */
void sensord_on_grant(struct sensord *d, const char *from, const void *payload, size_t len);
void sensord_on_ack(struct sensord *d, const char *from, const void *payload, size_t len);
/* Drop the doctor stream when the CRL in force revokes the granted doctor's certificate. */
void sensord_doctor_check(struct sensord *d);

/* receipts.c */
/* sensord.relay names a relay: doctor readings wait for its receipts. */
bool sensord_relay_set(const struct sensord *d);
/* The emergency record is a doctor reading that waits for a receipt. */
bool sensord_alarm_wants_receipt(const struct sensord *d);
/* The broker acknowledged f, a doctor reading: it waits for a receipt from now on. */
void sensord_awaiting_add(struct sensord *d, const struct sensord_inflight *f);
/* Drop the first n (sent again). */
void sensord_awaiting_shift(struct sensord *d, size_t n);
void sensord_awaiting_free(struct sensord *d);
/* A RELAY_RECEIPT published by relay (the topic's name) for us. */
void sensord_on_receipt(struct sensord *d, const char *relay, const void *payload, size_t len);

/* sync.c */
/* Every envelope sensord opens: the resync messages, the doctor's and the relay's receipts. */
extern const struct envelope_rule sensord_rules[];
int sensord_sync_start(struct sensord *d);
void sensord_sync_stop(struct sensord *d);
/* At start, after the state is loaded: is our clock unset, or the saved doctor chain more than
 * one epoch from it? *why says which. */
bool sensord_sync_needed(struct sensord *d, const char **why);
/* Start asking the neighbours (unless a request is under way). */
void sensord_resync(struct sensord *d, const char *why);
const char *sensord_sync_name(enum sensord_sync s);

#endif
