#include "dictd.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "daemon.h"
#include "encoding.h"
#include "file.h"
#include "log.h"
#include "proto.h"

/* The administrator's lock outlives the process (a crash, a restart, a reboot): it is a file in
 * state_dir while it holds. */
static int held_path(const struct dictd *d, char *out, size_t len)
{
	return snprintf(out, len, "%s/dictd/dict.locked", d->cfg->device.state_dir) < (int)len
		   ? 0
		   : -ENAMETOOLONG;
}

int dictd_open(struct dictd *d, const struct iotsec_config *cfg)
{
	uint8_t key[CRYPTO_KEY_LEN];
	char path[PATH_MAX];
	int r;

	d->cfg = cfg;
	d->cert_locked = true;
	snprintf(d->cert_why, sizeof(d->cert_why), "waiting for iotsec-certd");
	if (held_path(d, path, sizeof(path)) == 0 && access(path, F_OK) == 0) {
		d->held = true;
		log_notice("dictionary locked by request (%s): iotsecctl dict unlock lifts it",
			   path);
	}
	if ((r = daemon_secret_path("dict.key", cfg->dictd.key_file, path, sizeof(path))) < 0) {
		log_errx("dictionary key %s: %s", cfg->dictd.key_file, iotsec_strerror(r));
		goto out;
	}
	if ((r = daemon_dict_key_load(cfg, path, key)) < 0)
		goto out;
	r = keydict_load(key, cfg->dictd.path, &d->dict);
	if (r == -ENOENT)
		r = keydict_new(key, &d->dict);
	if (r < 0)
		log_errx("refusing the dictionary %s: %s%s", cfg->dictd.path, iotsec_strerror(r),
			 r == -EBADMSG ? " (corrupt, tampered with, or sealed under another key)"
			 : r == -IOTSEC_ESECRET ? " (it must be mode 0600, ours or root's)"
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

/* Save, or put the records back as they were before the change (snap, consumed): what a caller
 * was told failed must not be found in memory either. */
static int save(struct dictd *d, struct keydict_snapshot *snap)
{
	int r = keydict_save(d->dict, d->cfg->dictd.path);

	if (r < 0) {
		log_errx("cannot write %s: %s", d->cfg->dictd.path, iotsec_strerror(r));
		keydict_restore(d->dict, snap);
	} else {
		keydict_snapshot_free(snap);
	}
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

/* One record of a store request, checked whole before anything is changed. */
struct record_in {
	const char *name;
	uint32_t index, epoch;
	int64_t expires;
	uint8_t key[CRYPTO_KEY_LEN];
};

static bool get_u32(json_t *v, uint32_t *ret)
{
	if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > UINT32_MAX)
		return false;
	*ret = (uint32_t)json_integer_value(v);
	return true;
}

static int record_parse(json_t *o, struct record_in *ret)
{
	const char *key64 = json_string_value(json_object_get(o, "key"));
	json_t *expires = json_object_get(o, "expires");

	ret->name = json_string_value(json_object_get(o, "name"));
	if (!json_is_object(o) || json_object_size(o) != (expires ? 5u : 4u) || !ret->name ||
	    ret->name[0] == '\0' || strlen(ret->name) >= CERT_NAME_MAX || !key64 ||
	    !get_u32(json_object_get(o, "index"), &ret->index) ||
	    !get_u32(json_object_get(o, "epoch"), &ret->epoch) ||
	    (expires && (!json_is_integer(expires) || json_integer_value(expires) < 0)) ||
	    b64_decode_exact(key64, ret->key, sizeof(ret->key)) < 0)
		return -EINVAL;
	ret->expires = expires ? json_integer_value(expires) : 0;
	return 0;
}

/* {"records":[...], "cancel_others":true?}: all or none, with one save (a ring is one write,
 * not one per key, and its epoch cancels the others in the same write). */
static int verb_store(json_t *req, json_t **ret, void *ud)
{
	struct dictd *d = self(ud);
	json_t *list = json_object_get(req, "records"), *o;
	json_t *others = json_object_get(req, "cancel_others");
	size_t n = json_array_size(list), i;
	struct record_in *in = NULL;
	struct keydict_snapshot *snap = NULL;
	int64_t now = clock_now();
	int r = -EINVAL, cancelled = 0;

	if (!json_is_array(list) || n == 0 || n > PROTO_DICT_BATCH_MAX ||
	    (others && !json_is_boolean(others)))
		return -EINVAL;
	if ((in = calloc(n, sizeof(*in))) == NULL)
		return -ENOMEM;
	json_array_foreach(list, i, o)
	{
		if ((r = record_parse(o, &in[i])) < 0)
			goto out;
		/* "Every other epoch" needs one epoch to keep. */
		if (json_is_true(others) && in[i].epoch != in[0].epoch) {
			r = -EINVAL;
			goto out;
		}
	}
	if ((r = keydict_snapshot(d->dict, &snap)) < 0)
		goto out;
	for (i = 0; i < n && r == 0; i++)
		r = keydict_put(d->dict, in[i].name, in[i].index, in[i].epoch, in[i].key,
				in[i].expires, now);
	if (r < 0) {
		keydict_restore(d->dict, snap);
		goto out;
	}
	if (json_is_true(others)) {
		cancelled = keydict_cancel_others(d->dict, in[0].epoch, now);
		keydict_purge(d->dict, now);
	}
	if ((r = save(d, snap)) == 0 && (*ret = json_pack("{s:I, s:i}", "stored", (json_int_t)n,
							  "cancelled", cancelled)) == NULL)
		r = -ENOMEM;
out:
	crypto_wipe(in, n * sizeof(*in));
	free(in);
	return r;
}

/* The name and indices of a lookup or has; -EACCES while locked. */
static int indices_parse(struct dictd *d, json_t *req, const char **ret_name, json_t **ret_list)
{
	const char *name = json_string_value(json_object_get(req, "name"));
	json_t *indices = json_object_get(req, "indices"), *v;
	uint32_t x;
	size_t i;

	if (locked(d)) {
		d->refused++;
		return -EACCES;
	}
	if (!name || !json_is_array(indices) || json_array_size(indices) > PROTO_DICT_INDEX_MAX)
		return -EINVAL;
	json_array_foreach(indices, i, v)
	{
		if (!get_u32(v, &x))
			return -EINVAL;
	}
	*ret_name = name;
	*ret_list = indices;
	return 0;
}

/* {"name","indices":[...]} -> {"keys":[{"index","key"}...]}: only usable keys are returned. */
static int verb_lookup(json_t *req, json_t **ret, void *ud)
{
	struct dictd *d = self(ud);
	json_t *indices, *v, *keys;
	int64_t now = clock_now();
	const char *name;
	size_t i;
	int r;

	if ((r = indices_parse(d, req, &name, &indices)) < 0)
		return r;
	if ((keys = json_array()) == NULL)
		return -ENOMEM;
	d->lookups++;
	json_array_foreach(indices, i, v)
	{
		uint8_t key[CRYPTO_KEY_LEN];
		char *key64;

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

/* {"name","indices":[...]} -> {"present":[...]}: which usable keys exist, without them. */
static int verb_has(json_t *req, json_t **ret, void *ud)
{
	struct dictd *d = self(ud);
	json_t *indices, *v, *present;
	int64_t now = clock_now();
	uint8_t key[CRYPTO_KEY_LEN];
	const char *name;
	size_t i;
	int r;

	if ((r = indices_parse(d, req, &name, &indices)) < 0)
		return r;
	if ((present = json_array()) == NULL)
		return -ENOMEM;
	json_array_foreach(indices, i, v)
	{
		if (keydict_get(d->dict, name, (uint32_t)json_integer_value(v), now, key) == 0)
			json_array_append(present, v);
	}
	crypto_wipe(key, sizeof(key));
	*ret = json_pack("{s:o}", "present", present);
	return *ret ? 0 : -ENOMEM;
}

/* {"name":N}: cancel every record of N, then forget them for good. */
static int verb_cancel(json_t *req, json_t **ret, void *ud)
{
	struct dictd *d = self(ud);
	const char *name = json_string_value(json_object_get(req, "name"));
	struct keydict_snapshot *snap = NULL;
	int64_t now = clock_now();
	int n, r;

	if (name == NULL)
		return -EINVAL;
	if ((r = keydict_snapshot(d->dict, &snap)) < 0)
		return r;
	n = keydict_cancel_name(d->dict, name, now);
	keydict_purge(d->dict, now);
	if ((r = save(d, snap)) < 0)
		return r;
	*ret = json_pack("{s:i}", "cancelled", n);
	return *ret ? 0 : -ENOMEM;
}

/* Change one of the two locks, logging when the dictionary as a whole changes. */
static void set_lock(struct dictd *d, bool *which, bool on, const char *why)
{
	bool was = locked(d);

	*which = on;
	if (locked(d) != was)
		log_notice("dictionary %s: %s", locked(d) ? "locked" : "unlocked", why);
}

/* Locked at once; an error when the lock could not be saved, so that whoever asked knows it
 * would not survive a restart. */
static int verb_lock(json_t *req, json_t **ret, void *ud)
{
	static const char text[] = "locked by request (iotsecctl dict unlock lifts it)\n";
	struct dictd *d = self(ud);
	char path[PATH_MAX];
	int r;

	(void)req, (void)ret;
	set_lock(d, &d->held, true, "locked by request");
	if ((r = held_path(d, path, sizeof(path))) < 0 ||
	    (r = file_write_atomic(path, text, sizeof(text) - 1, 0600)) < 0)
		log_errx("cannot save the lock in %s: %s", path, iotsec_strerror(r));
	return r;
}

/* Lifts only a lock asked for here: certd's lock stays until certd says the certificate is
 * valid. The lock stays when its file cannot be removed: it would come back at the next start. */
static int verb_unlock(json_t *req, json_t **ret, void *ud)
{
	struct dictd *d = self(ud);
	char path[PATH_MAX];
	int r;

	(void)req, (void)ret;
	if ((r = held_path(d, path, sizeof(path))) < 0 ||
	    (r = unlink(path) < 0 && errno != ENOENT ? -errno : 0) < 0) {
		log_errx("cannot remove the lock %s: %s", path, iotsec_strerror(r));
		return r;
	}
	set_lock(d, &d->held, false, "unlocked by request");
	return 0;
}

/* Reading a key is as privileged as changing one. */
/* clang-format off */
const struct ctl_verb dictd_verbs[] = {
    {PROTO_STATUS, 0, verb_status},
    {PROTO_DICT_STORE, CTL_KEYS, verb_store},
    {PROTO_DICT_LOOKUP, CTL_KEYS, verb_lookup},
    {PROTO_DICT_HAS, CTL_KEYS, verb_has},
    {PROTO_DICT_CANCEL, CTL_KEYS, verb_cancel},
    {PROTO_DICT_LOCK, CTL_MUTATES, verb_lock},
    {PROTO_DICT_UNLOCK, CTL_MUTATES, verb_unlock},
    {NULL, 0, NULL},
};
/* clang-format on */

void dictd_on_certd(bool member, const char *why, void *ud)
{
	struct dictd *d = ud;

	snprintf(d->cert_why, sizeof(d->cert_why), "%s", why);
	set_lock(d, &d->cert_locked, !member, why);
}
