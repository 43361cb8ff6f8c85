/* iotsec-dictd's state: the key dictionary in memory, its file, and the lock that follows certd. */
#ifndef IOTSEC_DICTD_H
#define IOTSEC_DICTD_H

#include <stdbool.h>

#include <jansson.h>

#include "config.h"
#include "ctl.h"
#include "keydict.h"

struct dictd {
	const struct iotsec_config *cfg;
	struct keydict *dict;
	/* Lookups are refused while either holds: certd's word on the certificate, which only certd
	 * lifts, and a lock asked for on the control socket, which only "unlock" lifts. */
	bool cert_locked;
	bool held;
	char cert_why[256]; /* for status: "waiting for iotsec-certd", or certd's reason */
	unsigned long lookups, refused;
};

/* Read the dictionary key (a systemd credential "dict.key", else dictd.key_file, created with
 * fresh random bytes on first start) and the dictionary. A dictionary that exists but cannot be
 * trusted is an error: it is never replaced by an empty one. */
int dictd_open(struct dictd *d, const struct iotsec_config *cfg);
void dictd_close(struct dictd *d);

extern const struct ctl_verb dictd_verbs[];
/* Follow certd (certd_client.h): locked while the device is out of the home. */
void dictd_on_certd(bool member, const char *why, void *userdata);

#endif
