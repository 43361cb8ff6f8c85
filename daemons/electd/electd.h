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
#include "refusals.h"

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
	unsigned long received;
	struct refusals refused;
};

/* Load identity and trust, bind the socket, register everything on loop. */
int electd_start(struct electd *d, const struct iotsec_config *cfg, sd_event *loop);
void electd_stop(struct electd *d);
json_t *electd_status(const struct electd *d);

#endif
