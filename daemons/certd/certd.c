#include "certd.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "crypto.h"
#include "daemon.h"
#include "log.h"

static const char *const state_names[] = {"unknown", "valid", "invalid"};

/* Everything that must hold for this device to speak for the home; on failure say which file and
 * why in reason. */
static int certd_verify(struct certd *c, char *reason, size_t len)
{
	const struct iotsec_config *cfg = c->cfg;
	X509 *cert = NULL;
	EVP_PKEY *key = NULL;
	const char *what;
	bool reloaded = false;
	int r;

	if ((r = daemon_secret_path("device.key", cfg->device.key, c->key_path,
				    sizeof(c->key_path))) < 0) {
		what = cfg->device.key;
		goto out;
	}
	what = cfg->device.ca;
	if (c->store == NULL) {
		r = daemon_cert_store_load(cfg, &c->store);
		c->received_crl = -ENOENT;
		reloaded = true;
	} else {
		r = cert_store_refresh(c->store, &reloaded);
	}
	if (r == -IOTSEC_ECRL)
		what = cfg->device.crl;
	if (r < 0)
		goto out;
	daemon_note_received_crl(c->store, reloaded, &c->received_crl);
	what = cfg->device.cert;
	if ((r = cert_load(cfg->device.cert, &cert)) < 0)
		goto out;
	c->have_info = cert_info_get(cert, &c->info) == 0;
	what = cfg->device.key; /* the file people know, credential or not */
	if ((r = crypto_load_private_key(c->key_path, &key)) < 0 ||
	    (r = cert_key_matches(cert, key)) < 0)
		goto out;
	what = cfg->device.cert;
	r = cert_verify(c->store, cert, CERT_ROLES_ANY, &c->info);
	/* SPEC 5.2: a Pi that booted without a clock takes the start of what the home CA signed for
	 * it as the earliest "now", so it does not reject the certificate it was enrolled with, nor
	 * the CRL the CA issued since. Only a certificate that chains to the home CA and is not
	 * revoked gets this far (OpenSSL checks the CRL and the signature before the dates), the
	 * CRL's signature was checked when it was loaded, and only while the clock is unset: a
	 * running clock is trusted to say "not yet valid". */
	for (int tries = 0; tries < 2 && clock_unset(); tries++) {
		int64_t from, until;

		if (r == -IOTSEC_ENOTYETVALID && c->have_info)
			clock_raise_floor(c->info.not_before);
		else if (r == -IOTSEC_ECRL &&
			 (cert_store_window(c->store, &from, &until), from > clock_now()))
			clock_raise_floor(from);
		else
			break;
		r = cert_verify(c->store, cert, CERT_ROLES_ANY, &c->info);
	}
	if (r == -IOTSEC_ECRL)
		what = cert_store_crl_path(c->store); /* expired, or not yet valid */
	if (r < 0)
		goto out;
	if (cfg->device.name[0] != '\0' && strcmp(cfg->device.name, c->info.name) != 0) {
		r = -IOTSEC_EIDENTITY;
		goto out;
	}
out:
	if (r < 0)
		snprintf(reason, len, "%s: %s", what, iotsec_strerror(r));
	X509_free(cert);
	EVP_PKEY_free(key);
	return r;
}

void certd_check(struct certd *c)
{
	char reason[sizeof(c->reason)] = "", clock_path[PATH_MAX];
	enum certd_state old = c->state;
	char old_serial[sizeof(c->info.serial)];
	int r;

	bool first = c->checks++ == 0;

	memcpy(old_serial, c->info.serial, sizeof(old_serial));
	r = certd_verify(c, reason, sizeof(reason));
	json_t *ev;

	/* A key systemd handed over (LoadCredential=) is the file as it was at our start: a
	 * certificate that stopped matching it since is a re-enrolment, whose new key only a fresh
	 * start brings. At the first check the mismatch is real, and said like any other. */
	if (r == -IOTSEC_EKEYMISMATCH && !first && c->loop &&
	    strcmp(c->key_path, c->cfg->device.key) != 0) {
		log_notice("%s no longer matches the key handed over at start (%s): exiting to "
			   "start with the key on disk",
			   c->cfg->device.cert, c->cfg->device.key);
		sd_event_exit(c->loop, DAEMON_EXIT_RESTART);
	}
	c->checked_at = clock_now();
	c->state = r < 0 ? CERTD_INVALID : CERTD_VALID;
	c->error = r;
	/* Save the time we trust, so a reboot without a clock does not start from 1970. */
	if (r == 0 &&
	    snprintf(clock_path, sizeof(clock_path), "%s/certd/clock", c->cfg->device.state_dir) <
		(int)sizeof(clock_path) &&
	    (r = clock_save(clock_path)) < 0)
		log_warnx("cannot save the clock to %s: %s", clock_path, iotsec_strerror(r));

	/* A new certificate that is as valid as the old one is news too: the daemons signing with
	 * the old one must take it up (re-enrolment, renewal). */
	if (old == c->state && strcmp(reason, c->reason) == 0 &&
	    strcmp(old_serial, c->info.serial) == 0)
		return;
	memcpy(c->reason, reason, sizeof(reason));
	if (c->state == CERTD_INVALID)
		log_warnx("device out of the home: %s", c->reason);
	else
		log_info("certificate valid: device %s, role %s, home %s", c->info.name,
			 cert_role_name(c->info.role), c->info.home);
	if (c->ctl == NULL)
		return;
	ev = certd_status(c);
	if (ev &&
	    (r = ctl_server_publish(
		 c->ctl, c->state == CERTD_VALID ? "certificate-valid" : "certificate-invalid",
		 ev)) < 0)
		log_warnx("cannot publish the certificate state: %s", iotsec_strerror(r));
	json_decref(ev);
}

json_t *certd_status(const struct certd *c)
{
	json_t *o = json_pack("{s:s, s:s, s:I, s:I}", "daemon", "certd", "certificate",
			      state_names[c->state], "checked_at", (json_int_t)c->checked_at,
			      "interval", (json_int_t)c->cfg->certd.interval);

	if (o == NULL)
		return NULL;
	if (c->state == CERTD_INVALID)
		json_object_set_new(o, "reason", json_string(c->reason));
	if (c->have_info) {
		json_object_set_new(o, "device", json_string(c->info.name));
		json_object_set_new(o, "home", json_string(c->info.home));
		json_object_set_new(o, "role", json_string(cert_role_name(c->info.role)));
		json_object_set_new(o, "serial", json_string(c->info.serial));
		json_object_set_new(o, "not_before", json_integer(c->info.not_before));
		json_object_set_new(o, "not_after", json_integer(c->info.not_after));
	}
	return o;
}

void certd_release(struct certd *c)
{
	cert_store_free(c->store);
	c->store = NULL;
}
