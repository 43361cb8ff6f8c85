/* iotsec-keyd (SPEC 5.3): key pool, rings and pairwise keys; the glue between the home network
 * (lan.h), dictd (dictd_client.h) and the protocol, which lives in the library: keyshare.h (the
 * controller's cycle, a device's intake, epochs), session.h (pairwise sessions) and ring.h
 * (message bodies).
 *
 * Every device broadcasts I_AM_ON_THE_NETWORK (its epoch and ring indices) on UDP port
 * net.port + 1. The controller (as electd says) opens a link (TCP, same port) to each device:
 * CONTROLLER_NEEDS_KEYS (the device contributes CLIENT_KEYS on the same link), then, once the
 * pool is built, CLIENT_RING_KEYS... CLIENT_RING_END, which the device confirms with
 * CLIENT_RING_ACK once its ring is in dictd (with the pool's group root, in the same store);
 * then a CONTROLLER_PATH_KEY for every device its ring
 * shares no index with. Devices keep their keys in dictd only. Two devices talk with
 * CLIENT_START_SESSION / CLIENT_COMMON_INDEX / MESSAGE_ENC_DATA. Every unicast message names its
 * recipient and its exchange's id (envelope.h).
 *
 * The group root: with every pool comes a random key that starts the home's group stream
 * (stream.h) at the stream epoch e0 of the pool's making, wrapped to each device in
 * CLIENT_RING_END. Every device, the controller too, keeps it in dictd as KEYD_GROUP_RECORD at
 * index e0, of the pool's epoch, in the store that holds its ring and cancels every other
 * epoch: a new pool's root replaces the old one. sensord looks it up there; keyd's status and
 * its epoch-changed event say e0 ("group_start").
 *
 * keyd keeps, in state_dir/keyd.state, the highest epoch it ever used or took, its ring's indices,
 * the group stream's e0, the devices it holds path keys for and the quarantine: a restarted
 * controller goes on above its last epoch and still leaves the quarantined devices out, and a
 * restarted device still knows its ring.
 *
 * The quarantine (pingd sets it, every device keeps it): devices no pool of ours gives anything.
 * Every device keeps the list it was given, so that one becoming controller leaves them out at
 * once. */
#ifndef IOTSEC_KEYD_H
#define IOTSEC_KEYD_H

#include <netinet/in.h>
#include <stdbool.h>
#include <systemd/sd-event.h>

#include "cert.h"
#include "certd_client.h"
#include "config.h"
#include "electd_client.h"
#include "ctl.h"
#include "dictd_client.h"
#include "keyshare.h"
#include "lan.h"
#include "proto.h"
#include "ring.h"
#include "session.h"

/* dictd's name for ring keys; path keys go under the peer's name, index 0. No device can be
 * called this (a name cannot start with '-', ca_name_valid()), so no device shadows it. */
#define KEYD_RING_RECORD "-ring"
/* dictd's name for the group root, at index e0 (never a device's name either). */
#define KEYD_GROUP_RECORD "-group"
_Static_assert(RING_SIZE_MAX + 1 <= PROTO_DICT_BATCH_MAX, "a ring and its group root: one store");
#define KEYD_PATH_INDEX	  0
#define KEYD_PEERS_MAX	  KEYSHARE_DEVICES_MAX
#define KEYD_INBOX_MAX	  16
#define KEYD_DELIVER_MS	  10000 /* a ring not confirmed within this is given again */
#define KEYD_STATE_FILE	  "keyd.state"
#define KEYD_MSG_ANNOUNCE "I_AM_ON_THE_NETWORK"

/* The devices quarantined, each once, each a valid device name. */
#define KEYD_QUARANTINE_MAX PROTO_QUARANTINE_MAX
struct keyd_quarantine {
	char name[KEYD_QUARANTINE_MAX][CERT_NAME_MAX];
	size_t n;
};

struct keyd_peer {
	char name[CERT_NAME_MAX];
	struct sockaddr_in addr; /* where its keyd listens */
	X509 *cert;		 /* verified; keys for it are wrapped to this */
	enum cert_role role;
	uint32_t epoch; /* of the ring it announced; 0: none */
	uint32_t index[RING_SIZE_MAX];
	size_t n_index;
};

/* What a link carries, so a message can be checked against what its link is for. */
enum keyd_link_kind {
	KEYD_LINK_INTAKE,   /* a device: its ring arriving */
	KEYD_LINK_DELIVERY, /* the controller: a ring on its way, until confirmed */
	KEYD_LINK_SESSION,  /* either end of a pairwise session */
};
struct keyd_link {
	enum keyd_link_kind kind;
};

struct keyd_controller;
struct keyd_store;

struct keyd {
	const struct iotsec_config *cfg;
	sd_event *loop;
	struct lan_member *member;
	struct lan_udp *udp;
	struct lan_tcp *tcp;
	struct dictd_client *dict;
	struct certd_client *certd;
	struct electd_client *electd;
	struct ctl_server *ctl;
	sd_event_source *announce;
	bool in_home;			/* certd's verdict: certd_client.h */
	char controller[CERT_NAME_MAX]; /* from electd; "" when none */

	/* Our ring: indices here, keys in dictd. floor is the highest epoch we ever used or
	 * took: no ring below it is taken, no pool of ours starts at or below it. */
	uint32_t floor, epoch, pool;
	uint32_t group_start; /* e0 of the group root stored with the ring; 0: none */
	uint32_t index[RING_SIZE_MAX];
	size_t n_index;
	char path[KEYD_PEERS_MAX][CERT_NAME_MAX]; /* devices we hold a path key for */
	size_t n_path;
	struct keyd_quarantine quarantine;
	struct keyd_store *storing;	   /* a ring on its way into dictd */
	struct ctl_call *check;		   /* asking dictd whether our ring is still there */
	bool ring_checked;		   /* it answered since we started */
	struct keyd_controller *ctl_state; /* while we are the controller */

	struct keyd_peer *peers[KEYD_PEERS_MAX];
	size_t n_peers;
	struct {
		char from[CERT_NAME_MAX];
		char text[SESSION_TEXT_MAX + 1];
		int64_t at;
	} inbox[KEYD_INBOX_MAX];
	size_t n_inbox; /* total received; the last KEYD_INBOX_MAX are kept */
	unsigned long sent;
};

/* keyd.c */
int keyd_start(struct keyd *k, const struct iotsec_config *cfg, sd_event *loop);
void keyd_stop(struct keyd *k);
json_t *keyd_status(struct keyd *k);
extern const struct ctl_verb keyd_verbs[];
/* Keep the epochs, the ring's indices and the path-key devices in state_dir; logs a failure. */
void keyd_state_save(struct keyd *k);
/* Our ring changed: tell subscribers and the home. */
void keyd_ring_changed(struct keyd *k);
bool keyd_has_path(const struct keyd *k, const char *peer);
void keyd_add_path(struct keyd *k, const char *peer);

/* quarantine.c */
/* A list of names as the verb and the state file carry it: 0 and the names in out, or -EINVAL
 * (not an array, an entry not a string, not a device name, or named twice) or -E2BIG (more than
 * KEYD_QUARANTINE_MAX), with what is wrong in why. out is left as it was on failure. */
int keyd_quarantine_parse(const json_t *list, struct keyd_quarantine *out, char *why,
			  size_t why_len);
/* The names, as a JSON array; NULL without memory. */
json_t *keyd_quarantine_json(const struct keyd_quarantine *q);
bool keyd_quarantined(const struct keyd *k, const char *name);
/* Take q as the quarantine: logged and saved when it differs from the one before, and enforced
 * by a pool under way. */
void keyd_quarantine_set(struct keyd *k, const struct keyd_quarantine *q);

/* net.c: announcements, and every message on a link to its handler. */
void keyd_announce(struct keyd *k);
void keyd_on_datagram(struct envelope_msg *m, const struct sockaddr_in *from, bool broadcast,
		      void *userdata);
void keyd_on_link(struct lan_link *l, struct envelope_msg *m, void *userdata);
/* A new link to peer; logs and returns NULL when it cannot be had. */
struct lan_link *keyd_link_to(struct keyd *k, const struct keyd_peer *p);
/* Refuse what came on a link and close it. */
void keyd_link_refuse(struct keyd *k, struct lan_link *l, const struct envelope_msg *m, int r);

/* peers.c */
struct keyd_peer *keyd_peer_find(struct keyd *k, const char *name);
/* Record what an I_AM_ON_THE_NETWORK says; NULL (and why in *ret_err) when it cannot be. */
struct keyd_peer *keyd_peer_update(struct keyd *k, const struct envelope_msg *m,
				   const struct sockaddr_in *from, int *ret_err);
/* Forget every device whose certificate no longer verifies (revoked, expired): keys are
 * wrapped only to devices still in the home. */
void keyd_peers_prune(struct keyd *k);
void keyd_peers_free(struct keyd *k);

/* node.c: what every device does with the controller's messages. */
void keyd_on_needs(struct keyd *k, struct lan_link *l, struct envelope_msg *m);
void keyd_on_ring_piece(struct keyd *k, struct lan_link *l, struct envelope_msg *m);
void keyd_on_ring_end(struct keyd *k, struct lan_link *l, struct envelope_msg *m);
void keyd_on_path_key(struct keyd *k, struct lan_link *l, struct envelope_msg *m);
/* Make sure the ring we remember is still in dictd (after a restart); until dictd has answered,
 * again at every announcement. */
void keyd_check_ring(struct keyd *k);
void keyd_node_stop(struct keyd *k);

/* controller.c */
/* Start a pool above every epoch we know of, giving nothing to the n devices in exclude. It
 * replaces the pool under way only once it is made: on failure that one goes on. */
int keyd_controller_begin(struct keyd *k, const char *const *exclude, size_t n);
void keyd_controller_end(struct keyd *k);
/* The quarantine changed: the pool under way gives nothing more to a device in it, and a device
 * taken off it (that the rekey did not leave out) is given its ring at its next announcement. */
void keyd_controller_quarantine(struct keyd *k);
/* The cycle under way; NULL when we are not the controller. */
struct keyshare *keyd_controller_pool(const struct keyd *k);
void keyd_controller_on_seen(struct keyd *k, struct keyd_peer *p);
void keyd_controller_on_keys(struct keyd *k, struct lan_link *l, struct envelope_msg *m);
void keyd_controller_on_ack(struct keyd *k, struct lan_link *l, struct envelope_msg *m);

/* talk.c: pairwise sessions and MESSAGE_ENC_DATA. */
int keyd_talk_send(struct keyd *k, const char *peer, const char *text);
void keyd_talk_on_start(struct keyd *k, struct lan_link *l, struct envelope_msg *m);
void keyd_talk_on_common(struct keyd *k, struct lan_link *l, struct envelope_msg *m);
void keyd_talk_on_data(struct keyd *k, struct lan_link *l, struct envelope_msg *m);
/* What kind of pairwise key we have with peer: "ring", "path" or "none". */
const char *keyd_pairwise_kind(const struct keyd *k, const struct keyd_peer *p);

#endif
