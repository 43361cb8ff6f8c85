/* The home network as every daemon that speaks on it sees it (SPEC 4): who we are, signed
 * datagrams broadcast on a UDP port, and framed TCP links to one device at a time.
 *
 * Like daemon.c this is the boundary between the library and the daemons, so it logs: a refusal
 * is logged here, once per (address, reason) and within a global budget (refusals.h), and
 * counted against the address and, once its certificate verified, the sender.
 *
 * A UDP endpoint binds its port without SO_REUSEADDR, so no other local user can bind it too and
 * take datagrams meant for us, and tells the callback whether each datagram came to the
 * broadcast address or to us alone (IP_PKTINFO). That is the IP header's word: a sender on the
 * home's own link can still put a broadcast in a frame for one host (README, electd).
 *
 * TCP links come in two kinds with separate slots, so that nobody who connects to us can use up
 * the links we open ourselves: incoming (at most LAN_IN_MAX, LAN_PER_ADDR_MAX per address) and
 * outgoing (LAN_OUT_MAX). An incoming link has LAN_HELLO_USEC to carry its first authenticated
 * message; when the incoming slots are full the oldest link still waiting for one makes room.
 * Every link speaks with one device only: the one dialled, or the first to speak on a link it
 * opened; a message from anyone else drops the link. One device speaks on at most
 * LAN_PER_DEVICE_MAX incoming links: its oldest goes when it opens another. A link idle for
 * LAN_IDLE_USEC is dropped. */
#ifndef IOTSEC_LAN_H
#define IOTSEC_LAN_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <systemd/sd-event.h>

#include "cert.h"
#include "config.h"
#include "daemon.h"
#include "envelope.h"
#include "refusals.h"

#define LAN_IN_MAX	   32
#define LAN_OUT_MAX	   64
#define LAN_PER_ADDR_MAX   8
#define LAN_PER_DEVICE_MAX 8 /* incoming links one device may speak on at once */
#define LAN_HELLO_USEC	   (2 * 1000000ULL)
#define LAN_IDLE_USEC	   (10 * 1000000ULL)
#define LAN_QUEUE_MAX	   (1024 * 1024) /* unsent bytes on one link */
#define LAN_REFRESH_MS	   500		 /* a new CRL is in force this soon */

/* ---- this device as a member of the home ---- */

struct lan_member {
	struct cert_store *store;
	X509 *cert;
	size_t cert_len; /* of its DER, which a message carrying it carries in base64 */
	EVP_PKEY *key;
	struct cert_info self;
	struct envelope_ctx *env;
	struct refusals refused;
	struct daemon_ca_watch ca; /* the CA and CRL files, looked at every LAN_REFRESH_MS */
};

/* Load this device's certificate and key and the home CA and the CRL in force for cfg
 * (daemon_cert_store_load()), for messages of the types in rules. On failure *ret_what names
 * the file at fault. */
int lan_member_load(const struct iotsec_config *cfg, const struct envelope_rule *rules,
		    struct lan_member **ret, const char **ret_what);
void lan_member_free(struct lan_member *m);
/* Re-read the CA and CRLs if they changed, looking at most every LAN_REFRESH_MS; keep the
 * previous ones if the new ones are unusable, and say so once (and what becomes of a received
 * CRL, daemon_note_received_crl()). */
void lan_member_refresh(struct lan_member *m);
/* Count a refusal of what came from `from` (and from sender, "" when unknown), and log it when
 * refusals.h says it is worth a line. */
void lan_member_refuse(struct lan_member *m, const struct sockaddr_in *from, const char *sender,
		       int r);
/* {"refused":total, "refused_by":{"device":count,...}} for a status reply. */
int lan_member_status(const struct lan_member *m, json_t *status);

/* ---- broadcasts ---- */

/* m is the sender of a verified message; broadcast says whether it came to the broadcast
 * address (false: to us alone). The message is the callee's to read, not to keep. */
typedef void (*lan_udp_fn)(struct envelope_msg *msg, const struct sockaddr_in *from, bool broadcast,
			   void *userdata);
struct lan_udp;
/* Bind port on every address; broadcast is where lan_udp_broadcast() sends (an IPv4 address). */
int lan_udp_open(sd_event *e, struct lan_member *m, uint16_t port, const char *broadcast,
		 lan_udp_fn fn, void *userdata, struct lan_udp **ret);
void lan_udp_free(struct lan_udp *u);
/* Sign and broadcast a message of a broadcast type, with our certificate (a device that has just
 * started knows no fingerprint). A failure to send is logged here, once until it changes. */
int lan_udp_broadcast(struct lan_udp *u, const char *type, json_t *body);

/* ---- links ---- */

struct lan_link;
/* A verified message on a link, from the link's one device. The callee may send on the link,
 * finish or close it. */
typedef void (*lan_link_fn)(struct lan_link *l, struct envelope_msg *msg, void *userdata);
struct lan_tcp;
int lan_tcp_open(sd_event *e, struct lan_member *m, uint16_t port, lan_link_fn fn, void *userdata,
		 struct lan_tcp **ret);
/* Closes every link. */
void lan_tcp_free(struct lan_tcp *t);

/* Authentication failures a device answers for (malicious labelling, SPEC 7). A link that has
 * carried a verified message addressed to us from device D (a unicast: one D signed for us) is
 * D's stream; when a later message on it fails (a bad signature, a replay, a stale time, another
 * recipient, another sender, a role D may not use, a certificate that is not of the home, an
 * unknown fingerprint, an envelope or frame that does not parse), fn(D, reason, userdata) is
 * called, reason being the negative code refused, once the link is dropped (fn may close other
 * links, not free the transport).
 *
 * Nothing else is attributed: not a failure before such a message on the link (whoever opened
 * it may have relayed anything), not a datagram, not a broadcast relayed on a link, not the state
 * of a certificate (revoked, expired) nor an unknown type (what a newer daemon sends). A
 * certificate is public, and anyone can replay a datagram or a message already delivered:
 * counting those would let an outsider frame an honest device. What remains is a failure in a
 * TCP stream D opened or answered on: an outsider cannot put bytes into it. One who can read
 * D's traffic to us and beat it here (on the path between us, or when our copy was lost and is
 * resent) can still make one failure appear per such race; a threshold absorbs that. */
typedef void (*lan_failure_fn)(const char *device, int reason, void *userdata);
/* Set (or, with fn NULL, clear) the callback. */
void lan_tcp_on_failure(struct lan_tcp *t, lan_failure_fn fn, void *userdata);

/* A new link to device peer at addr; messages queue until it connects. -EBUSY when every
 * outgoing slot is taken. The link is owned by the transport: it lives until it is closed,
 * finished and drained, broken or idle; attach state to it with lan_link_set_data(). */
int lan_link_open(struct lan_tcp *t, const char *peer, const struct sockaddr_in *addr,
		  struct lan_link **ret);
/* Sign a unicast message to the link's device as part of delivery id, and queue it. -ENOTCONN
 * on an incoming link that has not spoken yet, -ENOBUFS past LAN_QUEUE_MAX. */
int lan_link_send(struct lan_link *l, const char *type, const char *id, json_t *body,
		  bool with_cert);
/* Close once everything queued is sent. */
void lan_link_finish(struct lan_link *l);
/* Close now (after the current callback, if called from one). */
void lan_link_close(struct lan_link *l);
/* The device the link speaks with; NULL on an incoming link before its first message. */
const char *lan_link_peer(const struct lan_link *l);
const struct sockaddr_in *lan_link_addr(const struct lan_link *l);
/* State of the caller's, freed with free_fn when the link goes (however it goes): the place to
 * cancel whatever still waits on the link. */
void *lan_link_data(const struct lan_link *l);
void lan_link_set_data(struct lan_link *l, void *data, void (*free_fn)(void *));

#endif
