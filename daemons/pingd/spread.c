/* Revocations reach every Pi (SPEC 5.5): each HELLO says the number of the CRL in force; a
 * device that hears a higher one asks for it (CRL_GET -> CRL) and installs it where every
 * daemon reads it (crl.h); the controller then rekeys without the devices it revokes. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "crl.h"
#include "log.h"
#include "pingd.h"
#include "proto.h"

static uint64_t number_in_force(struct pingd *d)
{
	uint64_t n = 0;

	/* A CRL without a number (not one iotsec-pki made) says 0: it spreads by file only. */
	if (cert_store_crl_number(d->member->store, &n) < 0)
		n = 0;
	return n;
}

/* Forget every device the CRL in force revokes; the controller rekeys without them. */
static void forget_revoked(struct pingd *d)
{
	size_t kept = 0, gone = 0;

	for (size_t i = 0; i < d->n_peers; i++) {
		struct pingd_peer *p = d->peers[i];
		int r = p->cert ? cert_verify(d->member->store, p->cert, CERT_ROLES_ANY, NULL) : 0;

		if (r != -EKEYREVOKED) {
			d->peers[kept++] = p;
			continue;
		}
		log_notice("%s is revoked: forgotten%s", p->name,
			   d->controller_role ? "; rekeying without it" : "");
		if (d->controller_role) {
			json_t *ev = json_pack("{s:s, s:s, s:I}", "name", p->name, "reason",
					       "revoked", "at", (json_int_t)clock_now());

			if (ev && d->ctl)
				ctl_server_publish(d->ctl, PROTO_EV_MISSING, ev);
			json_decref(ev);
		}
		trust_forget(d->trust, p->name);
		pingd_peer_free(p);
		gone++;
	}
	d->n_peers = kept;
	if (gone == 0)
		return;
	pingd_state_save(d);
	/* keyd prunes revoked devices itself when it makes the pool. */
	if (d->controller_role)
		pingd_keyd_sync(d, true, false);
}

void pingd_crl_refresh(struct pingd *d)
{
	uint64_t n;

	lan_member_refresh(d->member);
	if ((n = number_in_force(d)) == d->crl_number)
		return;
	log_notice("CRL number %llu in force (was %llu)", (unsigned long long)n,
		   (unsigned long long)d->crl_number);
	d->crl_number = n;
	pingd_hello(d); /* at once: the others ask us for it */
	forget_revoked(d);
}

void pingd_crl_received(struct pingd *d, const char *pem, size_t len, const char *from,
			const struct sockaddr_in *addr)
{
	char path[PATH_MAX];
	uint64_t n = 0;
	bool changed = false;
	int r = crl_check_newer(d->member->store, pem, len, &n);

	if (r == -EALREADY)
		return; /* another device's answer got here first */
	if (r < 0) {
		/* Signed by the sender, and not our CA's or not a CRL: the sender's doing. */
		lan_member_refuse(d->member, addr, from, r);
		return;
	}
	if ((r = crl_received_path(d->cfg->device.state_dir, path, sizeof(path))) < 0 ||
	    (r = crl_install(path, pem, len)) < 0) {
		log_warnx("cannot install the CRL from %s: %s", from, iotsec_strerror(r));
		return;
	}
	log_notice("installed CRL number %llu from %s", (unsigned long long)n, from);
	/* Now, not at the next look lan_member_refresh() allows. */
	if ((r = cert_store_refresh(d->member->store, &changed)) < 0)
		log_warnx("the CRL from %s: %s", from, iotsec_strerror(r));
	pingd_crl_refresh(d);
}
