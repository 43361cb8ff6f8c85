/* iotsec-electd's glue: the election state machine (election.h) on the home's broadcasts. */
#ifndef IOTSEC_ELECTD_H
#define IOTSEC_ELECTD_H

#include <systemd/sd-event.h>

#include "certd_client.h"
#include "config.h"
#include "ctl.h"
#include "election.h"
#include "lan.h"

#define ELECTD_CHALLENGE_LEN 16
#define ELECTD_ASKERS_MAX    64 /* devices whose latest query we remember */
#define ELECTD_MSG_QUERY     "IS_THERE_CONTROLLER"
#define ELECTD_MSG_ANNOUNCE  "I_AM_CONTROLLER"

struct electd {
	const struct iotsec_config *cfg;
	struct lan_member *member;
	struct lan_udp *udp;
	struct election el;
	uint8_t challenge[ELECTD_CHALLENGE_LEN]; /* of our latest query */
	sd_event_source *timer;
	struct ctl_server *ctl; /* where changes are published; may be NULL */
	struct certd_client *certd;
	unsigned long received, sent;
	/* Each answer is a signature: a device asking faster than it needs to (twice per try_ms)
	 * gets no more of them. */
	struct {
		char name[CERT_NAME_MAX];
		uint64_t at_ms;
	} askers[ELECTD_ASKERS_MAX];
};

/* Load identity and trust, open the port, follow certd; the election starts once certd says the
 * certificate is valid. Logs why it fails. */
int electd_start(struct electd *d, const struct iotsec_config *cfg, sd_event *loop);
void electd_stop(struct electd *d);
json_t *electd_status(const struct electd *d);
/* What a verified message means to the election (lan_udp_fn). */
void electd_on_message(struct envelope_msg *m, const struct sockaddr_in *from, bool broadcast,
		       void *userdata);
/* certd's word (certd_client_fn). */
void electd_on_certd(bool member, const char *why, void *userdata);

#endif
