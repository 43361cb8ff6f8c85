/* iotsec-certd's state: whether this device's certificate still makes it a member of the home. */
#ifndef IOTSEC_CERTD_H
#define IOTSEC_CERTD_H

#include <stdbool.h>
#include <limits.h>
#include <stdint.h>

#include <jansson.h>
#include <systemd/sd-event.h>

#include "cert.h"
#include "config.h"
#include "ctl.h"

enum certd_state {
	CERTD_UNKNOWN, /* not checked yet */
	CERTD_VALID,
	CERTD_INVALID,
};

struct certd {
	const struct iotsec_config *cfg;
	sd_event *loop;		 /* to exit for a fresh start; may be NULL */
	char key_path[PATH_MAX]; /* the device key as loaded: the configured file or a credential */
	unsigned checks;
	struct ctl_server *ctl; /* where transitions are announced; may be NULL */
	struct cert_store *store;
	int received_crl; /* daemon_note_received_crl()'s */
	enum certd_state state;
	int error;	       /* why it is invalid (negative code) */
	char reason[256];      /* the same, for people: "certificate /x.crt: certificate revoked" */
	struct cert_info info; /* of the last certificate that parsed */
	bool have_info;
	int64_t checked_at;
};

/* Check certificate, key, CA and CRL now; on a change of state, or of certificate, log it once
 * and publish "certificate-invalid" or "certificate-valid" on the control socket. */
void certd_check(struct certd *c);
/* The status reply: device, home, role, certificate state, reason, expiry. */
json_t *certd_status(const struct certd *c);
void certd_release(struct certd *c);

#endif
