#include "dictd.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "encoding.h"
#include "file.h"
#include "log.h"

#define LOOKUP_MAX 1024 /* indices in one lookup */

static int load_key(const struct iotsec_config *cfg, uint8_t key[CRYPTO_KEY_LEN])
{
	const char *creds = getenv("CREDENTIALS_DIRECTORY");
	char path[PATH_MAX], *buf = NULL;
	size_t len = 0;
	int r;

	/* systemd's LoadCredential= wins: that key never lies around on disk. */
	path[0] = '\0';
	if (creds)
		snprintf(path, sizeof(path), "%s/dict.key", creds);
	if (path[0] == '\0' || access(path, F_OK) != 0)
		snprintf(path, sizeof(path), "%s", cfg->dictd.key_file);

	r = file_check_secret(path);
	if (r == -ENOENT) {
		/* First start: make the key. Nothing is encrypted under a missing key yet. */
		if ((r = crypto_random(key, CRYPTO_KEY_LEN)) < 0 ||
		    (r = file_write_atomic(path, key, CRYPTO_KEY_LEN, 0600)) < 0) {
			log_errx("cannot create the dictionary key %s: %s", path,
				 iotsec_strerror(r));
			return r;
		}
		log_notice("created a new dictionary key in %s", path);
		return 0;
	}
	if (r == 0)
		r = file_read(path, 64, &buf, &len);
	if (r == 0 && len != CRYPTO_KEY_LEN)
		r = -EBADMSG;
	if (r < 0) {
		log_errx("dictionary key %s: %s%s", path, iotsec_strerror(r),
			 r == -EPERM ? " (it must be mode 0600, owned by root)" : "");
	} else {
		memcpy(key, buf, CRYPTO_KEY_LEN);
	}
	if (buf)
		crypto_wipe(buf, len);
	free(buf);
	return r;
}

int dictd_open(struct dictd *d, const struct iotsec_config *cfg)
{
	uint8_t key[CRYPTO_KEY_LEN];
	int r;

	d->cfg = cfg;
	d->cert_locked = true;
	snprintf(d->cert_why, sizeof(d->cert_why), "waiting for iotsec-certd");
	if ((r = load_key(cfg, key)) < 0)
		goto out;
	r = keydict_load(key, cfg->dictd.path, &d->dict);
	if (r == -ENOENT)
		r = keydict_new(key, &d->dict);
	if (r < 0)
		log_errx("refusing the dictionary %s: %s%s", cfg->dictd.path, iotsec_strerror(r),
			 r == -EBADMSG ? " (corrupt, tampered with, or sealed under another key)"
			 : r == -EPERM ? " (it must be mode 0600, owned by root)"
				       : "");
out:
	crypto_wipe(key, sizeof(key));
	return r;
}

void dictd_close(struct dictd *d)
{
	keydict_free(d->dict);
	d->dict = NULL;
}

static struct dictd *self(void *ud)
{
	return ud;
}

static int save(struct dictd *d)
{
	int r = keydict_save(d->dict, d->cfg->dictd.path);

	if (r < 0)
		log_errx("cannot write %s: %s", d->cfg->dictd.path, iotsec_strerror(r));
	return r;
}

static bool locked(const struct dictd *d)
{
	return d->cert_locked || d->held;
}

static int verb_status(json_t *req, json_t **ret, void *ud)
{
	struct dictd *d = self(ud);
	size_t usable = 0, n = keydict_count(d->dict);
	int64_t now = clock_now();

	(void)req;
	for (size_t i = 0; i < n; i++) {
		const struct keydict_record *rec = keydict_at(d->dict, i);

		usable += !rec->cancelled && (rec->expires == 0 || now < rec->expires);
	}
	*ret = json_pack("{s:s, s:I, s:I, s:b, s:I, s:I}", "daemon", "dictd", "records",
			 (json_int_t)n, "usable", (json_int_t)usable, "locked", locked(d),
			 "lookups", (json_int_t)d->lookups, "refused", (json_int_t)d->refused);
	if (*ret && locked(d))
		json_object_set_new(
		    *ret, "lock_reason",
		    json_string(d->cert_locked ? d->cert_why : "locked by request"));
	return *ret ? 0 : -ENOMEM;
}

/* {"name","index","epoch","key":b64,"expires"?} */
static int verb_store(json_t *req, json_t **ret, void *ud)
{
	struct dictd *d = self(ud);
	const char *name = json_string_value(json_object_get(req, "name"));
	const char *key64 = json_string_value(json_object_get(req, "key"));
	json_t *index = json_object_get(req, "index"), *epoch = json_object_get(req, "epoch");
	json_t *expires = json_object_get(req, "expires");
	uint8_t key[CRYPTO_KEY_LEN];
	int r;

	(void)ret;
	if (!name || !key64 || !json_is_integer(index) || !json_is_integer(epoch) ||
	    (expires && !json_is_integer(expires)) || json_integer_value(index) < 0 ||
	    json_integer_value(index) > UINT32_MAX || json_integer_value(epoch) < 0 ||
	    json_integer_value(epoch) > UINT32_MAX)
		return -EINVAL;
	if ((r = b64_decode_exact(key64, key, sizeof(key))) < 0)
		return -EINVAL;
	r = keydict_put(d->dict, name, (uint32_t)json_integer_value(index),
			(uint32_t)json_integer_value(epoch), key,
			expires ? json_integer_value(expires) : 0, clock_now());
	crypto_wipe(key, sizeof(key));
	return r < 0 ? r : save(d);
}

/* {"name","indices":[...]} -> {"keys":[{"index","key"}...]}: only usable keys are returned. */
static int verb_lookup(json_t *req, json_t **ret, void *ud)
{
	struct dictd *d = self(ud);
	const char *name = json_string_value(json_object_get(req, "name"));
	json_t *indices = json_object_get(req, "indices"), *v, *keys;
	int64_t now = clock_now();
	size_t i;

	if (locked(d)) {
		d->refused++;
		return -EACCES;
	}
	if (!name || !json_is_array(indices) || json_array_size(indices) > LOOKUP_MAX)
		return -EINVAL;
	if ((keys = json_array()) == NULL)
		return -ENOMEM;
	d->lookups++;
	json_array_foreach(indices, i, v)
	{
		uint8_t key[CRYPTO_KEY_LEN];
		char *key64;

		if (!json_is_integer(v) || json_integer_value(v) < 0 ||
		    json_integer_value(v) > UINT32_MAX) {
			json_decref(keys);
			return -EINVAL;
		}
		if (keydict_get(d->dict, name, (uint32_t)json_integer_value(v), now, key) < 0)
			continue;
		key64 = b64_encode(key, sizeof(key));
		crypto_wipe(key, sizeof(key));
		if (key64)
			json_array_append_new(keys,
					      json_pack("{s:O, s:s}", "index", v, "key", key64));
		if (key64)
			crypto_wipe(key64, strlen(key64));
		free(key64);
	}
	*ret = json_pack("{s:o}", "keys", keys);
	return *ret ? 0 : -ENOMEM;
}

/* {"epoch_below":E} or {"name":N}: cancel, then forget for good. */
static int verb_cancel(json_t *req, json_t **ret, void *ud)
{
	struct dictd *d = self(ud);
	json_t *epoch = json_object_get(req, "epoch_below");
	const char *name = json_string_value(json_object_get(req, "name"));
	int64_t now = clock_now();
	int n, r;

	if (json_is_integer(epoch) && json_integer_value(epoch) >= 0 &&
	    json_integer_value(epoch) <= UINT32_MAX)
		n = keydict_cancel_before(d->dict, (uint32_t)json_integer_value(epoch), now);
	else if (name && !epoch)
		n = keydict_cancel_name(d->dict, name, now);
	else
		return -EINVAL;
	keydict_purge(d->dict, now);
	if ((r = save(d)) < 0)
		return r;
	*ret = json_pack("{s:i}", "cancelled", n);
	return 0;
}

/* Change one of the two locks, logging when the dictionary as a whole changes. */
static void set_lock(struct dictd *d, bool *which, bool on, const char *why)
{
	bool was = locked(d);

	*which = on;
	if (locked(d) != was)
		log_notice("dictionary %s: %s", locked(d) ? "locked" : "unlocked", why);
}

static int verb_lock(json_t *req, json_t **ret, void *ud)
{
	struct dictd *d = self(ud);

	(void)req, (void)ret;
	set_lock(d, &d->held, true, "locked by request");
	return 0;
}

/* Lifts only a lock asked for here: certd's lock stays until certd says the certificate is
 * valid. */
static int verb_unlock(json_t *req, json_t **ret, void *ud)
{
	struct dictd *d = self(ud);

	(void)req, (void)ret;
	set_lock(d, &d->held, false, "unlocked by request");
	return 0;
}

/* Reading a key is as privileged as changing one. */
const struct ctl_verb dictd_verbs[] = {
    {"status", 0, verb_status},
    {"store", CTL_MUTATES, verb_store},
    {"lookup", CTL_MUTATES, verb_lookup},
    {"cancel", CTL_MUTATES, verb_cancel},
    {"lock", CTL_MUTATES, verb_lock},
    {"unlock", CTL_MUTATES, verb_unlock},
    {NULL, 0, NULL},
};

void dictd_on_certd(json_t *ev, void *ud)
{
	struct dictd *d = ud;
	const char *name = json_string_value(json_object_get(ev, "event"));
	const char *cert = json_string_value(json_object_get(ev, "certificate"));
	const char *reason = json_string_value(json_object_get(ev, "reason"));

	if (name && strcmp(name, "disconnected") == 0) {
		snprintf(d->cert_why, sizeof(d->cert_why), "iotsec-certd stopped answering");
		set_lock(d, &d->cert_locked, true, d->cert_why);
		return;
	}
	if (cert == NULL)
		return;
	if (strcmp(cert, "valid") == 0) {
		set_lock(d, &d->cert_locked, false, "certificate valid");
	} else {
		snprintf(d->cert_why, sizeof(d->cert_why), "certificate %s%s%s", cert,
			 reason ? ": " : "", reason ? reason : "");
		set_lock(d, &d->cert_locked, true, d->cert_why);
	}
}
