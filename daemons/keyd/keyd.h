/* iotsec-keyd (SPEC 5.3): key pool, rings and pairwise keys.
 *
 * Every device broadcasts I_AM_ON_THE_NETWORK (its epoch and ring indices) on UDP port
 * net.port + 1. The controller (as electd says) answers each device over TCP on the same port:
 * CONTROLLER_NEEDS_KEYS (the device contributes CLIENT_KEYS, wrapped to the controller), then, once
 * the pool is built, CLIENT_RING_KEYS... CLIENT_RING_END and a CONTROLLER_PATH_KEY for every
 * device its ring shares no index with. Devices keep their keys in dictd only. Two devices talk
 * with CLIENT_START_SESSION / CLIENT_COMMON_INDEX (both ends prove they hold the pairwise key)
 * and MESSAGE_ENC_DATA. Every message is a signed envelope; TCP carries length-prefixed frames. */
#ifndef IOTSEC_KEYD_H
#define IOTSEC_KEYD_H

#include <netinet/in.h>
#include <stdbool.h>
#include <systemd/sd-event.h>

#include "cert.h"
#include "config.h"
#include "ctl.h"
#include "envelope.h"
#include "refusals.h"
#include "ring.h"

/* dictd's name for ring keys; path keys go under the peer's name. No device can be called this
 * (a name cannot start with '-', ca_name_valid()), so a device named "ring" shadows nothing. */
#define KEYD_RING_RECORD  "-ring"
#define KEYD_PEERS_MAX	  256
#define KEYD_CONNS_MAX	  64
#define KEYD_INBOX_MAX	  16
#define KEYD_TEXT_MAX	  1024		    /* bytes of one MESSAGE_ENC_DATA plaintext */
#define KEYD_IDLE_USEC	  (10 * 1000000ULL) /* a TCP exchange that stalls this long is dropped */
#define KEYD_MSG_ANNOUNCE "I_AM_ON_THE_NETWORK"
#define KEYD_MSG_DATA	  "MESSAGE_ENC_DATA"

struct keyd_peer {
	char name[CERT_NAME_MAX];
	struct sockaddr_in addr; /* where its keyd listens */
	X509 *cert;		 /* verified; keys for it are wrapped to this */
	enum cert_role role;
	uint32_t epoch; /* as it announced; 0 before its first ring */
	uint32_t index[RING_SIZE_MAX];
	size_t n_index;
	/* Controller side. */
	uint32_t asked;	      /* epoch of the CONTROLLER_NEEDS_KEYS we sent it */
	uint32_t contributed; /* epoch of the CLIENT_KEYS we took from it: one per epoch */
	uint32_t delivered;   /* epoch of the ring we gave it */
	uint32_t ring[RING_SIZE_MAX];
	size_t n_ring;
};

struct keyd_conn;
struct keyd_pool;

struct keyd {
	const struct iotsec_config *cfg;
	sd_event *loop;
	int udp, tcp;
	struct sockaddr_in bcast;
	struct cert_store *store;
	struct envelope_ctx *env;
	X509 *cert;
	EVP_PKEY *key;
	struct cert_info self;
	bool cert_ok;			/* certd's verdict; unknown counts as not ok */
	char controller[CERT_NAME_MAX]; /* from electd; "" when none */

	/* Our own ring: indices here, keys in dictd. */
	uint32_t epoch, pool;
	uint32_t index[RING_SIZE_MAX];
	size_t n_index;
	/* A ring arriving in pieces from the controller. */
	struct {
		uint32_t epoch;
		size_t n;
		uint32_t index[RING_SIZE_MAX];
		uint8_t key[RING_SIZE_MAX][CRYPTO_KEY_LEN];
	} incoming;

	struct keyd_pool *pool_state; /* while we are the controller */
	struct keyd_peer *peers[KEYD_PEERS_MAX];
	size_t n_peers;
	struct keyd_conn *conns;
	size_t n_conns;
	struct ctl_client *dict;
	struct ctl_server *ctl;
	struct ctl_watch *electd, *certd;
	sd_event_source *announce;
	struct refusals refused;
	struct {
		char from[CERT_NAME_MAX];
		char text[KEYD_TEXT_MAX + 1];
		int64_t at;
	} inbox[KEYD_INBOX_MAX];
	size_t n_inbox; /* total received; the last KEYD_INBOX_MAX are kept */
	unsigned long sent;
};

/* main.c */
int keyd_start(struct keyd *k, const struct iotsec_config *cfg, sd_event *loop);
void keyd_stop(struct keyd *k);
json_t *keyd_status(struct keyd *k);
extern const struct ctl_verb keyd_verbs[];

/* net.c: UDP announcements and TCP exchanges. */
int keyd_net_open(struct keyd *k);
void keyd_net_close(struct keyd *k);
void keyd_announce(struct keyd *k);
/* Open a TCP exchange with peer (non-blocking); messages queue until it connects. */
struct keyd_conn *keyd_conn_to(struct keyd *k, const struct keyd_peer *peer);
int keyd_conn_send(struct keyd_conn *c, const char *type, json_t *body, bool with_cert);
/* Close once everything queued has been written. */
void keyd_conn_finish(struct keyd_conn *c);
/* The peer the exchange is with, once known (NULL before its first message). */
const char *keyd_conn_peer(const struct keyd_conn *c);
/* Per-exchange state of a pairwise session (session.c); freed with the connection. */
void *keyd_conn_session(struct keyd_conn *c);
void keyd_conn_set_session(struct keyd_conn *c, void *session, void (*free_fn)(void *));

/* peers.c */
struct keyd_peer *keyd_peer_find(struct keyd *k, const char *name);
/* Record what an I_AM_ON_THE_NETWORK says; NULL when the table is full. */
struct keyd_peer *keyd_peer_update(struct keyd *k, const struct envelope_msg *m,
				   const struct sockaddr_in *from);
/* Forget every device whose certificate no longer verifies (revoked, expired): keys are
 * wrapped only to devices still in the home. Not while iterating over k->peers. */
void keyd_peers_prune(struct keyd *k);
void keyd_peers_free(struct keyd *k);

/* dict.c: the only way keyd reaches keys (dictd's control verbs). */
int keyd_dict_store(struct keyd *k, const char *name, uint32_t index, uint32_t epoch,
		    const uint8_t key[CRYPTO_KEY_LEN]);
int keyd_dict_lookup(struct keyd *k, const char *name, const uint32_t *index, size_t n,
		     uint8_t (*ret_keys)[CRYPTO_KEY_LEN]);
int keyd_dict_cancel_before(struct keyd *k, uint32_t epoch);

/* node.c: messages every device handles. */
void keyd_on_message(struct keyd *k, struct keyd_conn *c, struct envelope_msg *m);
/* controller.c */
void keyd_controller_begin(struct keyd *k);
void keyd_controller_end(struct keyd *k);
void keyd_controller_on_announce(struct keyd *k, struct keyd_peer *p);
void keyd_controller_on_keys(struct keyd *k, struct keyd_conn *c, struct envelope_msg *m);
/* session.c: pairwise keys and MESSAGE_ENC_DATA. */
int keyd_session_send(struct keyd *k, const char *peer, const char *text);
void keyd_session_on_start(struct keyd *k, struct keyd_conn *c, struct envelope_msg *m);
void keyd_session_on_common(struct keyd *k, struct keyd_conn *c, struct envelope_msg *m);
void keyd_session_on_data(struct keyd *k, struct keyd_conn *c, struct envelope_msg *m);
/* What kind of pairwise key we have with peer: "ring" (shared indices), "path" (from the
 * controller), or "none". */
const char *keyd_pairwise_kind(struct keyd *k, const struct keyd_peer *p);

#endif
