/* iotsec-electd's glue: the election state machine (election.h) on a UDP broadcast socket. */
#ifndef IOTSEC_ELECTD_H
#define IOTSEC_ELECTD_H

#include <netinet/in.h>
#include <systemd/sd-event.h>

#include "cert.h"
#include "config.h"
#include "ctl.h"
#include "election.h"
#include "envelope.h"

#define ELECTD_REFUSALS_LOGGED 64 /* distinct (peer, reason) pairs logged; later ones only counted */

struct electd_refusal {
	struct in_addr addr;
	int code;
};

struct electd {
	const struct iotsec_config *cfg;
	sd_event *loop;
	int sock;
	struct sockaddr_in bcast;
	struct cert_store *store;
	struct envelope_ctx *env;
	struct cert_info self;
	struct election el;
	sd_event_source *timer;
	struct ctl_server *ctl;
	struct ctl_watch *certd;
	unsigned long received, refused;
	struct electd_refusal logged[ELECTD_REFUSALS_LOGGED];
	size_t n_logged;
};

/* Load identity and trust, bind the socket, register everything on loop. */
int electd_start(struct electd *d, const struct iotsec_config *cfg, sd_event *loop);
void electd_stop(struct electd *d);
json_t *electd_status(const struct electd *d);

#endif
