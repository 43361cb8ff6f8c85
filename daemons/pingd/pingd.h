/* iotsec-pingd (SPEC 5.5, 7): missing, revoked and malicious devices. The glue between the home
 * network (lan.h), keyd (its quarantine and rekey verbs), certd and electd; the message bodies
 * are libiotsec/ping.h's.
 *
 * Every device broadcasts PINGD_HELLO on UDP port net.port + 2 and answers PINGD_PING on a TCP
 * link (same port) with PINGD_PONG. The controller (as electd says, while certd says we are in
 * the home) probes every known device each interval_ms; after `tries` failures in a row it
 * suspects it (PINGD_SUSPECT), asks up to `helpers` other devices to probe it (PINGD_PING_REQ ->
 * PINGD_REPORT) and, when no refutation came and enough of them confirm, puts it on the
 * quarantine list, which every device keeps and hands to its keyd, and asks keyd for a pool
 * without it.
 *
 * pingd keeps, in state_dir/pingd/pingd.state, the devices it knows (name, last address) and the
 * quarantine list with its version: a restarted controller still probes a device that went
 * silent while it was away. */
#ifndef IOTSEC_PINGD_H
#define IOTSEC_PINGD_H

#include <netinet/in.h>
#include <stdbool.h>
#include <systemd/sd-event.h>

#include "cert.h"
#include "certd_client.h"
#include "config.h"
#include "ctl.h"
#include "keyshare.h"
#include "lan.h"
#include "ping.h"
#include "trust.h"

#define PINGD_PEERS_MAX	   KEYSHARE_DEVICES_MAX
#define PINGD_STATE_FILE   "pingd.state"
#define PINGD_ROUND_MAX	   16 /* helpers asked in one indirect round (pingd.helpers <= 16) */
#define PINGD_KEYD_CALL_MS 5000

enum pingd_peer_state {
	PINGD_UNKNOWN,	   /* known from the state file, not heard since we started */
	PINGD_ALIVE,	   /* heard from, or answered its last probe */
	PINGD_SUSPECT,	   /* failed probes in a row, or under an indirect round */
	PINGD_MISSING,	   /* a round kept it, yet it has not answered since */
	PINGD_QUARANTINED, /* on the quarantine list */
};
const char *pingd_peer_state_name(enum pingd_peer_state s);

struct pingd_probe;

/* One indirect round on a suspect: the helpers asked, each under its own delivery id. */
struct pingd_round {
	char id[ENVELOPE_ID_MAX + 1]; /* SUSPECT's, which ALIVE refutes */
	struct {
		char helper[CERT_NAME_MAX];
		char id[ENVELOPE_ID_MAX + 1];
		int answer; /* -1: none yet, 0: unreachable, 1: alive */
	} asked[PINGD_ROUND_MAX];
	size_t n_asked;
	bool refuted; /* the suspect spoke since it was suspected */
	/* Reports on the suspect nobody asked for, heard during the round: judged, never deciding.
	 */
	struct {
		char reporter[CERT_NAME_MAX];
		bool alive;
	} unasked[PINGD_ROUND_MAX];
	size_t n_unasked;
	sd_event_source *timer;
};

/* Distinct devices that reported a peer malicious (PINGD_MALICIOUS), made on the first report. */
#define PINGD_ACCUSERS_MAX 16 /* pingd.confirmations <= 16 */
struct pingd_accusers {
	char name[PINGD_ACCUSERS_MAX][CERT_NAME_MAX];
	size_t n;
	unsigned failures; /* the most any of them counted */
};

struct pingd_peer {
	struct pingd *d;
	char name[CERT_NAME_MAX];
	struct sockaddr_in addr; /* where its pingd listens */
	bool has_addr;
	enum cert_role role;
	char serial[2 * 20 + 1]; /* of the certificate it last spoke with; "" when not heard */
	X509 *cert;		 /* that certificate (verified when heard); NULL when not heard */
	enum pingd_peer_state state;
	int64_t last_seen; /* unix seconds; 0: never */
	uint64_t crl;	   /* the CRL number its HELLO says */
	uint32_t qv;	   /* the quarantine version its HELLO says */
	unsigned fails;	   /* our probes failed in a row */
	unsigned long probes;
	struct pingd_probe *probe; /* ours, under way */
	struct pingd_round *round; /* ours, under way */
	sd_event_source *next;	   /* the next probe (controller) */
	struct pingd_accusers *accused;
	uint64_t reported_ms; /* when we last reported it malicious to the controller */
};

struct pingd {
	const struct iotsec_config *cfg;
	sd_event *loop;
	struct lan_member *member;
	struct lan_udp *udp;
	struct lan_tcp *tcp;
	struct certd_client *certd;
	struct ctl_peer *electd;
	struct ctl_peer *keyd;
	struct ctl_server *ctl;
	sd_event_source *hello;
	bool in_home;
	bool controller_role;		/* we probe */
	char controller[CERT_NAME_MAX]; /* from electd; "" when none */
	char dir[4096];			/* state_dir/pingd */

	struct pingd_peer *peers[PINGD_PEERS_MAX];
	size_t n_peers;
	struct ping_quarantine q;
	struct trust *trust; /* every device's view of the others (SPEC 7) */
	uint64_t crl_number; /* of the CRL in force */
	bool crl_asking;     /* a CRL_GET of ours is under way */
	uint64_t crl_asked_ms;

	/* What keyd must still hear: the list (quarantine verb), and a pool without it. */
	bool keyd_list, keyd_rekey;
	bool keyd_release; /* a release: a keyd without the quarantine verb needs a new pool */
	bool keyd_has_quarantine, keyd_told_no_verb;
	bool keyd_warned; /* a refusal said, not again until a call works */
	struct ctl_call *keyd_call;

	unsigned long probes, missing, sent, received;
};

/* pingd.c */
int pingd_start(struct pingd *d, const struct iotsec_config *cfg, sd_event *loop);
void pingd_stop(struct pingd *d);
json_t *pingd_status(struct pingd *d);
extern const struct ctl_verb pingd_verbs[];
uint64_t pingd_now_ms(void);
void pingd_state_save(struct pingd *d);
/* Arm (or re-arm) a one-shot timer ms from now. */
int pingd_timer(struct pingd *d, sd_event_source **s, uint64_t ms, sd_event_time_handler_t fn,
		void *ud);
/* keyd must hear the quarantine list (and, with rekey, make a pool without it; with release,
 * when it has no quarantine verb, a pool that no longer leaves the released out): now or, while
 * it is away or busy, at the next HELLO. */
void pingd_keyd_sync(struct pingd *d, bool rekey, bool release);

/* net.c */
void pingd_hello(struct pingd *d);
void pingd_on_datagram(struct envelope_msg *m, const struct sockaddr_in *from, bool broadcast,
		       void *userdata);
void pingd_on_link(struct lan_link *l, struct envelope_msg *m, void *userdata);
/* Probe target (its PING, our nonce); done gets the outcome once, unless the probe is
 * cancelled first. */
typedef void (*pingd_probe_fn)(struct pingd *d, const char *target, bool alive, void *ud);
struct pingd_probe *pingd_probe_start(struct pingd *d, struct pingd_peer *p, pingd_probe_fn done,
				      void *ud);
void pingd_probe_cancel(struct pingd_probe *pr);
/* Our links to helpers (the controller's PING_REQ): mark one, and tell one. */
int pingd_link_ask(struct pingd *d, struct lan_link *l, const char *id, const char *target);
/* Ask p for its CRL (its HELLO says a higher number than ours). */
void pingd_crl_ask(struct pingd *d, struct pingd_peer *p);
bool pingd_link_is_ask(struct lan_link *l);

/* peers.c */
struct pingd_peer *pingd_peer_find(struct pingd *d, const char *name);
struct pingd_peer *pingd_peer_add(struct pingd *d, const char *name);
/* A verified message from name: it is alive (refutes a suspicion). */
void pingd_peer_heard(struct pingd *d, const struct envelope_msg *m,
		      const struct sockaddr_in *from);
void pingd_peer_free(struct pingd_peer *p);
void pingd_peers_free(struct pingd *d);

/* probe.c: the controller's cycle. */
void pingd_controller_begin(struct pingd *d);
void pingd_controller_end(struct pingd *d);
/* A device just became known, or came back: schedule its probes. */
void pingd_controller_watch(struct pingd *d, struct pingd_peer *p);
void pingd_controller_on_report(struct pingd *d, struct lan_link *l, struct envelope_msg *m);
void pingd_controller_on_malicious(struct pingd *d, struct lan_link *l, struct envelope_msg *m);

/* spread.c: the CRL in force, and the devices it revokes. */
/* Look at the CRL files again; when the CRL in force changed, say its number and forget the
 * devices it revokes (the controller then rekeys without them). */
void pingd_crl_refresh(struct pingd *d);
/* A peer's CRL (asked for): installed when it is our CA's and newer than ours. */
void pingd_crl_received(struct pingd *d, const char *pem, size_t len, const char *from,
			const struct sockaddr_in *addr);

/* label.c: malicious labelling (SPEC 7). */
void pingd_label_start(struct pingd *d);
/* Labelled malicious by us: its messages are dropped. */
bool pingd_ignored(const struct pingd *d, const char *name);
/* name crossed pingd.auth_failures: the controller quarantines it, a node reports it. */
void pingd_label(struct pingd *d, const char *name);
/* Report again, every interval_ms, what the controller has not quarantined yet. */
void pingd_label_remind(struct pingd *d);

/* quarantine.c */
const struct ping_entry *pingd_quarantined(const struct pingd *d, const char *name);
/* The controller puts name out (logs, saves, broadcasts, tells keyd and subscribers). */
int pingd_quarantine_add(struct pingd *d, const char *name, enum ping_reason why,
			 unsigned failures);
int pingd_quarantine_release(struct pingd *d, const char *name);
/* A list from the controller: taken when newer than ours. */
void pingd_quarantine_take(struct pingd *d, const struct ping_quarantine *q, const char *from);
void pingd_quarantine_broadcast(struct pingd *d);

#endif
