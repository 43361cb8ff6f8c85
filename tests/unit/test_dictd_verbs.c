/* dictd: the verbs of iotsec-dictd (dictd_verbs[]) and its lock that follows certd
 * (dictd_on_certd), on a real dictionary in a scratch directory. Each case opens a struct dictd
 * with dictd_open() on a configuration read by config_load_string(), as the daemon does, and
 * calls the handlers of the verb table with whole request objects ("v", "verb", "id" included),
 * as the control server does; one case goes through a real control socket. What reaches the disk
 * is checked on the file itself: its bytes, its renames (inotify sees every atomic save) and
 * keydict_load() with the key dictd made. The clock is fixed with clock_set_fake(). */
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "clock.h"
#include "config.h"
#include "crypto.h"
#include "ctl.h"
#include "dictd.h"
#include "encoding.h"
#include "file.h"
#include "keydict.h"
#include "log.h"
#include "proto.h"

#include "ctl_peer.h"

#define DICT_FILE "keys.dict"
#define KEY_FILE  "dict.key"

static char root[] = "/tmp/iotsec-dictd-verbs-XXXXXX";
static int n_cases;
static int64_t now; /* the fake clock of every case */

/* One case: its directory, configuration and dictd. */
struct box {
	char dir[PATH_MAX];
	char dict_path[PATH_MAX + 16], key_path[PATH_MAX + 16];
	struct iotsec_config cfg;
	struct dictd d;
	bool opened;
	int watch; /* inotify on dir */
};

/* ---- files ---- */

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

static void rm_tree(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* The whole file, or NULL when it is not there. */
static char *slurp(const char *path, size_t *ret_len)
{
	char *buf = NULL;
	size_t len = 0;

	if (file_read(path, KEYDICT_FILE_MAX, &buf, &len) < 0)
		return NULL;
	*ret_len = len;
	return buf;
}

static void put_file(const char *path, const void *data, size_t len, mode_t mode)
{
	FILE *f;

	unlink(path);
	assert_non_null(f = fopen(path, "w"));
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, mode), 0);
}

/* Atomic saves of the dictionary since the last call: each is one rename onto its name. */
static int saves(struct box *b)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	int n = 0;
	ssize_t len;

	while ((len = read(b->watch, buf, sizeof(buf))) > 0)
		for (char *p = buf; p < buf + len;) {
			struct inotify_event *ev = (struct inotify_event *)p;

			if ((ev->mask & IN_MOVED_TO) && ev->len && strcmp(ev->name, DICT_FILE) == 0)
				n++;
			p += sizeof(*ev) + ev->len;
		}
	return n;
}

/* The dictionary as the file holds it, opened with the key dictd keeps. */
static struct keydict *reload(struct box *b)
{
	uint8_t key[CRYPTO_KEY_LEN];
	struct keydict *kd = NULL;
	char *buf = NULL;
	size_t len = 0;

	assert_int_equal(file_read(b->key_path, 64, &buf, &len), 0);
	assert_int_equal(len, CRYPTO_KEY_LEN);
	memcpy(key, buf, sizeof(key));
	free(buf);
	assert_int_equal(keydict_load(key, b->dict_path, &kd), 0);
	return kd;
}

static const struct keydict_record *find(const struct keydict *kd, const char *name, uint32_t index)
{
	for (size_t i = 0; i < keydict_count(kd); i++) {
		const struct keydict_record *r = keydict_at(kd, i);

		if (r->index == index && strcmp(r->name, name) == 0)
			return r;
	}
	return NULL;
}

/* ---- keys and requests ---- */

/* The key a case stores for (seed): distinct per seed. */
static void key_of(uint32_t seed, uint8_t out[CRYPTO_KEY_LEN])
{
	for (size_t j = 0; j < CRYPTO_KEY_LEN; j++)
		out[j] = (uint8_t)(seed * 29u + j * 11u + (seed >> 8) + 0x33u);
}

static char *key64_of(uint32_t seed)
{
	uint8_t k[CRYPTO_KEY_LEN];
	char *s;

	key_of(seed, k);
	assert_non_null(s = b64_encode(k, sizeof(k)));
	return s;
}

/* {"name","index","epoch","key"} with the key of seed. */
static json_t *rec(const char *name, json_int_t index, json_int_t epoch, uint32_t seed)
{
	char *k = key64_of(seed);
	json_t *o = json_pack("{s:s, s:I, s:I, s:s}", "name", name, "index", index, "epoch", epoch,
			      "key", k);

	free(k);
	assert_non_null(o);
	return o;
}

static const struct ctl_verb *verb_named(const char *name)
{
	for (const struct ctl_verb *v = dictd_verbs; v->name; v++)
		if (strcmp(v->name, name) == 0)
			return v;
	fail_msg("dictd has no verb %s", name);
	return NULL;
}

/* Call verb's handler as the control server does: the whole request, with args (consumed, may
 * be NULL) beside "v", "verb" and "id". *ret (may be NULL) gets the reply fields on success. */
static int call(struct box *b, const char *verb, json_t *args, json_t **ret)
{
	static json_int_t serial;
	json_t *req =
	    json_pack("{s:i, s:s, s:I}", "v", CTL_PROTO_VERSION, "verb", verb, "id", ++serial);
	json_t *reply = NULL;
	int r;

	assert_non_null(req);
	if (args) {
		assert_int_equal(json_object_update(req, args), 0);
		json_decref(args);
	}
	r = verb_named(verb)->fn(req, &reply, &b->d);
	json_decref(req);
	if (r < 0) {
		json_decref(reply);
		reply = NULL;
	}
	if (ret)
		*ret = reply;
	else
		json_decref(reply);
	return r;
}

/* store {"records": list (consumed)} */
static int store(struct box *b, json_t *list, json_t **ret)
{
	return call(b, PROTO_DICT_STORE, json_pack("{s:o}", "records", list), ret);
}

/* A list of n records of name, indices first, first+1, ..., of epoch, keys seeded by index. */
static json_t *records(const char *name, uint32_t first, size_t n, uint32_t epoch)
{
	json_t *list = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(list, rec(name, first + i, epoch, first + (uint32_t)i));
	return list;
}

/* a with the records of more (consumed) after its own. */
static json_t *records_extend(json_t *a, json_t *more)
{
	assert_int_equal(json_array_extend(a, more), 0);
	json_decref(more);
	return a;
}

/* lookup or has of name at the indices in list (consumed). */
static int ask(struct box *b, const char *verb, const char *name, json_t *list, json_t **ret)
{
	return call(b, verb, json_pack("{s:s, s:o}", "name", name, "indices", list), ret);
}

/* The reply of a lookup is exactly these (index, seed) pairs, in this order. */
static void expect_keys(json_t *reply, size_t n, const uint32_t (*want)[2])
{
	json_t *keys = json_object_get(reply, "keys");

	assert_true(json_is_array(keys));
	if (json_array_size(keys) != n) {
		char *s = json_dumps(reply, JSON_COMPACT);

		fail_msg("want %zu keys, got %.400s", n, s ? s : "?");
	}
	for (size_t i = 0; i < n; i++) {
		json_t *o = json_array_get(keys, i);
		char *k = key64_of(want[i][1]);

		assert_int_equal(json_object_size(o), 2);
		assert_int_equal(json_integer_value(json_object_get(o, "index")), want[i][0]);
		assert_string_equal(json_string_value(json_object_get(o, "key")), k);
		free(k);
	}
}

/* lookup of name at indices answers nothing. */
static void expect_no_keys(struct box *b, const char *name, json_t *indices)
{
	json_t *reply = NULL;
	char *text;
	static char shown[512];

	assert_int_equal(ask(b, PROTO_DICT_LOOKUP, name, indices, &reply), 0);
	assert_true(json_is_array(json_object_get(reply, "keys")));
	if (json_array_size(json_object_get(reply, "keys")) == 0) {
		json_decref(reply);
		return;
	}
	text = json_dumps(reply, JSON_COMPACT);
	snprintf(shown, sizeof(shown), "%s", text ? text : "?");
	free(text);
	json_decref(reply);
	fail_msg("%s: want no keys, got %s", name, shown);
}

static json_t *status(struct box *b)
{
	json_t *s = NULL;

	assert_int_equal(call(b, PROTO_STATUS, NULL, &s), 0);
	assert_non_null(s);
	assert_string_equal(json_string_value(json_object_get(s, "daemon")), "dictd");
	return s;
}

static json_int_t status_int(struct box *b, const char *field)
{
	json_t *s = status(b);
	json_t *v = json_object_get(s, field);
	json_int_t x;

	assert_true(json_is_integer(v));
	x = json_integer_value(v);
	json_decref(s);
	return x;
}

/* ---- cases ---- */

static void configure(struct box *b)
{
	char *text = NULL, err[CONFIG_ERR_MAX] = "";

	assert_true(asprintf(&text,
			     "device = {\n  state_dir = \"%s\";\n  run_dir = \"%s\";\n};\n"
			     "dictd = {\n  path = \"%s\";\n  key_file = \"%s\";\n};\n",
			     b->dir, b->dir, b->dict_path, b->key_path) > 0);
	memset(&b->cfg, 0, sizeof(b->cfg));
	if (config_load_string(text, "dictd-test.conf", &b->cfg, err, sizeof(err)) < 0)
		fail_msg("configuration refused: %s", err);
	free(text);
}

static void box_open(struct box *b)
{
	assert_int_equal(dictd_open(&b->d, &b->cfg), 0);
	b->opened = true;
}

static void box_close(struct box *b)
{
	if (b->opened)
		dictd_close(&b->d);
	b->opened = false;
	memset(&b->d, 0, sizeof(b->d));
}

/* A fresh directory (0700) and configuration; dictd not opened yet. */
static int setup_closed(void **state)
{
	struct box *b = calloc(1, sizeof(*b));

	if (b == NULL)
		return -1;
	snprintf(b->dir, sizeof(b->dir), "%s/case%d", root, ++n_cases);
	snprintf(b->dict_path, sizeof(b->dict_path), "%s/%s", b->dir, DICT_FILE);
	snprintf(b->key_path, sizeof(b->key_path), "%s/%s", b->dir, KEY_FILE);
	/* state_dir/dictd, as daemon_setup() makes it: where the lock's file goes. */
	if (mkdir(b->dir, 0700) < 0 || snprintf(b->key_path, sizeof(b->key_path), "%s/dictd",
						b->dir) < 0 ||
	    mkdir(b->key_path, 0700) < 0)
		return -1;
	snprintf(b->key_path, sizeof(b->key_path), "%s/%s", b->dir, KEY_FILE);
	configure(b);
	b->watch = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (b->watch < 0 || inotify_add_watch(b->watch, b->dir, IN_MOVED_TO) < 0)
		return -1;
	clock_reset_floor();
	clock_set_fake(now);
	unsetenv("CREDENTIALS_DIRECTORY");
	*state = b;
	return 0;
}

/* The same, with dictd open (and locked: certd has not spoken). */
static int setup_open(void **state)
{
	struct box *b;

	if (setup_closed(state) < 0)
		return -1;
	b = *state;
	box_open(b);
	return 0;
}

static int teardown(void **state)
{
	struct box *b = *state;

	box_close(b);
	config_free(&b->cfg);
	close(b->watch);
	rm_tree(b->dir);
	free(b);
	clock_set_fake(now);
	unsetenv("CREDENTIALS_DIRECTORY");
	return 0;
}

/* Open for lookups: certd says the certificate is valid. */
static void admit(struct box *b)
{
	dictd_on_certd(true, "certificate valid", &b->d);
}

/* ---- the table ---- */

static void test_verb_table(void **state)
{
	/* clang-format off */
	static const struct {
		const char *name;
		unsigned flags;
	} want[] = {
	    {PROTO_STATUS, 0},
	    {PROTO_DICT_STORE, CTL_KEYS},
	    {PROTO_DICT_LOOKUP, CTL_KEYS},
	    {PROTO_DICT_HAS, CTL_KEYS},
	    {PROTO_DICT_CANCEL, CTL_KEYS},
	    {PROTO_DICT_LOCK, CTL_MUTATES},
	    {PROTO_DICT_UNLOCK, CTL_MUTATES},
	};
	/* clang-format on */
	size_t n = 0;

	(void)state;
	for (const struct ctl_verb *v = dictd_verbs; v->name; v++, n++) {
		size_t i;

		assert_non_null(v->fn);
		for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
			if (strcmp(want[i].name, v->name) == 0)
				break;
		if (i == sizeof(want) / sizeof(want[0]))
			fail_msg("unexpected verb %s", v->name);
		/* Keys go to key clients alone (not even root); the lock is root's; status is
		 * for readers. */
		assert_int_equal(v->flags, want[i].flags);
	}
	assert_int_equal(n, sizeof(want) / sizeof(want[0]));
}

/* ---- opening ---- */

/* First start: a fresh key, 0600, kept for the next start; no dictionary file until a save. */
static void test_open_creates_key(void **state)
{
	struct box *b = *state;
	char *first = NULL, *again = NULL;
	size_t len = 0, len2 = 0;
	struct stat st;
	json_t *s;

	box_open(b);
	assert_int_equal(stat(b->key_path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(st.st_size, CRYPTO_KEY_LEN);
	assert_int_equal(file_check_secret(b->key_path), 0);
	assert_int_equal(access(b->dict_path, F_OK), -1);
	s = status(b);
	assert_int_equal(json_integer_value(json_object_get(s, "records")), 0);
	assert_true(json_is_true(json_object_get(s, "locked")));
	assert_string_equal(json_string_value(json_object_get(s, "lock_reason")),
			    "waiting for iotsec-certd");
	json_decref(s);

	assert_non_null(first = slurp(b->key_path, &len));
	assert_int_equal(store(b, records("pi2", 1, 2, 1), NULL), 0);
	box_close(b);
	box_open(b);
	assert_non_null(again = slurp(b->key_path, &len2));
	assert_int_equal(len2, len);
	assert_memory_equal(first, again, len);
	assert_int_equal(status_int(b, "records"), 2);
	crypto_wipe(first, len);
	crypto_wipe(again, len2);
	free(first);
	free(again);
}

/* A dictionary sealed under another key is refused and left as it is, never replaced. */
static void test_open_refuses_other_key(void **state)
{
	struct box *b = *state;
	uint8_t other[CRYPTO_KEY_LEN];
	char *before = NULL, *after = NULL;
	size_t len = 0, len2 = 0;

	box_open(b);
	assert_int_equal(store(b, records("pi2", 1, 3, 1), NULL), 0);
	box_close(b);
	assert_non_null(before = slurp(b->dict_path, &len));

	assert_int_equal(crypto_random(other, sizeof(other)), 0);
	put_file(b->key_path, other, sizeof(other), 0600);
	assert_int_equal(dictd_open(&b->d, &b->cfg), -EBADMSG);
	dictd_close(&b->d);
	assert_non_null(after = slurp(b->dict_path, &len2));
	assert_int_equal(len2, len);
	assert_memory_equal(before, after, len);
	free(before);
	free(after);
}

/* Keys and dictionaries that cannot be trusted: loose modes, wrong sizes, one flipped byte. */
static void test_open_refuses_bad_files(void **state)
{
	struct box *b = *state;
	static const mode_t loose[] = {0644, 0640, 0604, 0660, 0606};
	uint8_t key[CRYPTO_KEY_LEN + 1];
	char *dict = NULL, *k = NULL;
	size_t dlen = 0, klen = 0;

	box_open(b);
	assert_int_equal(store(b, records("pi2", 1, 3, 1), NULL), 0);
	box_close(b);
	assert_non_null(dict = slurp(b->dict_path, &dlen));
	assert_non_null(k = slurp(b->key_path, &klen));

	for (size_t i = 0; i < sizeof(loose) / sizeof(loose[0]); i++) {
		assert_int_equal(chmod(b->key_path, loose[i]), 0);
		assert_int_equal(dictd_open(&b->d, &b->cfg), -IOTSEC_ESECRET);
		dictd_close(&b->d);
	}
	assert_int_equal(chmod(b->key_path, 0600), 0);
	/* A key one byte short or long. */
	memcpy(key, k, CRYPTO_KEY_LEN);
	key[CRYPTO_KEY_LEN] = 0x42;
	put_file(b->key_path, key, CRYPTO_KEY_LEN - 1, 0600);
	assert_int_equal(dictd_open(&b->d, &b->cfg), -EBADMSG);
	dictd_close(&b->d);
	put_file(b->key_path, key, CRYPTO_KEY_LEN + 1, 0600);
	assert_int_equal(dictd_open(&b->d, &b->cfg), -EBADMSG);
	dictd_close(&b->d);
	put_file(b->key_path, "", 0, 0600);
	assert_int_equal(dictd_open(&b->d, &b->cfg), -EBADMSG);
	dictd_close(&b->d);
	put_file(b->key_path, k, klen, 0600);

	for (size_t i = 0; i < sizeof(loose) / sizeof(loose[0]); i++) {
		assert_int_equal(chmod(b->dict_path, loose[i]), 0);
		assert_int_equal(dictd_open(&b->d, &b->cfg), -IOTSEC_ESECRET);
		dictd_close(&b->d);
	}
	/* One flipped byte at the start, in the middle, in the MAC line; then cut short. */
	for (size_t at = 0; at < 3; at++) {
		size_t pos = at == 0 ? 2 : at == 1 ? dlen / 2 : dlen - 5;

		dict[pos] ^= 0x01;
		put_file(b->dict_path, dict, dlen, 0600);
		assert_int_equal(dictd_open(&b->d, &b->cfg), -EBADMSG);
		dictd_close(&b->d);
		dict[pos] ^= 0x01;
	}
	put_file(b->dict_path, dict, dlen - 1, 0600);
	assert_int_equal(dictd_open(&b->d, &b->cfg), -EBADMSG);
	dictd_close(&b->d);

	/* The good files still open, with their records. */
	put_file(b->dict_path, dict, dlen, 0600);
	box_open(b);
	assert_int_equal(status_int(b, "records"), 3);
	crypto_wipe(k, klen);
	free(k);
	free(dict);
}

/* A dictionary whose key file went missing is refused, and no new key takes the old one's
 * place: the dictionary was sealed under a key that exists somewhere (a backup, a credential)
 * and "first start" is the wrong reading of a missing key. */
static void test_open_missing_key_with_dictionary(void **state)
{
	struct box *b = *state;
	char *before = NULL, *after = NULL;
	size_t len = 0, len2 = 0;

	box_open(b);
	assert_int_equal(store(b, records("pi2", 1, 3, 1), NULL), 0);
	box_close(b);
	assert_non_null(before = slurp(b->dict_path, &len));
	assert_int_equal(unlink(b->key_path), 0);

	assert_true(dictd_open(&b->d, &b->cfg) < 0);
	dictd_close(&b->d);
	assert_non_null(after = slurp(b->dict_path, &len2));
	assert_int_equal(len2, len);
	assert_memory_equal(before, after, len);
	free(before);
	free(after);
	/* What dictd does today: it writes a fresh key, then calls the dictionary tampered with. */
	if (access(b->key_path, F_OK) == 0)
		fail_msg("a missing dictionary key was replaced by a new one in %s", b->key_path);
}

/* systemd's credential dict.key wins over key_file, and is held to the same rules. */
static void test_open_credential(void **state)
{
	struct box *b = *state;
	char creds[PATH_MAX + 8], cred[PATH_MAX + 32];
	uint8_t key[CRYPTO_KEY_LEN];
	struct keydict *kd = NULL;

	snprintf(creds, sizeof(creds), "%s/creds", b->dir);
	snprintf(cred, sizeof(cred), "%s/dict.key", creds);
	assert_int_equal(mkdir(creds, 0700), 0);
	assert_int_equal(crypto_random(key, sizeof(key)), 0);
	put_file(cred, key, sizeof(key), 0600);
	assert_int_equal(setenv("CREDENTIALS_DIRECTORY", creds, 1), 0);

	box_open(b);
	assert_int_equal(access(b->key_path, F_OK), -1); /* key_file neither read nor made */
	assert_int_equal(store(b, records("pi2", 1, 2, 1), NULL), 0);
	box_close(b);
	assert_int_equal(keydict_load(key, b->dict_path, &kd), 0);
	assert_int_equal(keydict_count(kd), 2);
	keydict_free(kd);

	assert_int_equal(chmod(cred, 0644), 0);
	assert_int_equal(dictd_open(&b->d, &b->cfg), -IOTSEC_ESECRET);
	dictd_close(&b->d);
	assert_int_equal(access(b->key_path, F_OK), -1);
	/* An empty credentials directory: key_file is used (and made). */
	assert_int_equal(unlink(cred), 0);
	rm_tree(b->dict_path);
	box_open(b);
	assert_int_equal(access(b->key_path, F_OK), 0);
	crypto_wipe(key, sizeof(key));
}

/* ---- store ---- */

/* A batch is written with one save, and the file holds every record as given. */
static void test_store_batch_one_save(void **state)
{
	struct box *b = *state;
	json_t *list = records("-ring", 100, 40, 7), *reply = NULL;
	struct keydict *kd;
	struct stat st;

	json_array_append_new(list, rec("pi2", 0, 7, 5000));
	json_array_append_new(list, rec("pi3", 0, 7, 5001));
	json_object_set_new(json_array_get(list, 41), "expires", json_integer(now + 3600));
	assert_int_equal(saves(b), 0);
	assert_int_equal(store(b, list, &reply), 0);
	assert_int_equal(json_integer_value(json_object_get(reply, "stored")), 42);
	assert_int_equal(json_integer_value(json_object_get(reply, "cancelled")), 0);
	assert_int_equal(json_object_size(reply), 2);
	json_decref(reply);
	assert_int_equal(saves(b), 1);
	assert_int_equal(stat(b->dict_path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);

	kd = reload(b);
	assert_int_equal(keydict_count(kd), 42);
	for (uint32_t i = 0; i < 40; i++) {
		const struct keydict_record *r = find(kd, "-ring", 100 + i);
		uint8_t k[CRYPTO_KEY_LEN];

		assert_non_null(r);
		key_of(100 + i, k);
		assert_memory_equal(r->key, k, sizeof(k));
		assert_int_equal(r->epoch, 7);
		assert_int_equal(r->expires, 0);
		assert_false(r->cancelled);
		assert_int_equal(r->changed, now);
	}
	assert_non_null(find(kd, "pi2", 0));
	assert_int_equal(find(kd, "pi3", 0)->expires, now + 3600);
	keydict_free(kd);

	/* And lookups see them all, once certd speaks. */
	admit(b);
	assert_int_equal(status_int(b, "usable"), 42);
}

/* Bad records, each of which must refuse the whole batch it is in. */
static json_t *bad_record(size_t i)
{
	char long_name[CERT_NAME_MAX + 1], *k31 = NULL, *k33 = NULL;
	uint8_t raw[CRYPTO_KEY_LEN + 1] = {0};
	json_t *o = NULL;

	memset(long_name, 'a', CERT_NAME_MAX);
	long_name[CERT_NAME_MAX] = '\0';
	k31 = b64_encode(raw, CRYPTO_KEY_LEN - 1);
	k33 = b64_encode(raw, CRYPTO_KEY_LEN + 1);
	/* One bad record a line. */
	/* clang-format off */
	switch (i) {
	/* names */
	case 0: o = rec("", 1, 1, 1); break;
	case 1: o = rec(long_name, 1, 1, 1); break;
	case 2: o = rec("pi2", 1, 1, 1), json_object_set_new(o, "name", json_integer(5)); break;
	case 3: o = rec("pi2", 1, 1, 1), json_object_set_new(o, "name", json_null()); break;
	case 4: o = rec("pi2", 1, 1, 1), json_object_del(o, "name"); break;
	/* indices */
	case 5: o = rec("pi2", -1, 1, 1); break;
	case 6: o = rec("pi2", (json_int_t)UINT32_MAX + 1, 1, 1); break;
	case 7: o = rec("pi2", 1, 1, 1), json_object_set_new(o, "index", json_string("1")); break;
	case 8: o = rec("pi2", 1, 1, 1), json_object_set_new(o, "index", json_real(1.0)); break;
	case 9: o = rec("pi2", 1, 1, 1), json_object_del(o, "index"); break;
	/* epochs */
	case 10: o = rec("pi2", 1, -1, 1); break;
	case 11: o = rec("pi2", 1, (json_int_t)UINT32_MAX + 1, 1); break;
	case 12: o = rec("pi2", 1, 1, 1), json_object_set_new(o, "epoch", json_string("1")); break;
	case 13: o = rec("pi2", 1, 1, 1), json_object_set_new(o, "epoch", json_true()); break;
	case 14: o = rec("pi2", 1, 1, 1), json_object_del(o, "epoch"); break;
	/* keys */
	case 15: o = rec("pi2", 1, 1, 1), json_object_set_new(o, "key", json_string(k31)); break;
	case 16: o = rec("pi2", 1, 1, 1), json_object_set_new(o, "key", json_string(k33)); break;
	case 17: o = rec("pi2", 1, 1, 1), json_object_set_new(o, "key", json_string("")); break;
	case 18:
		o = rec("pi2", 1, 1, 1);
		json_object_set_new(o, "key", json_string("!!!!not base64 at all, not 32 bytes!!!!!!"));
		break;
	case 19: o = rec("pi2", 1, 1, 1), json_object_set_new(o, "key", json_integer(0)); break;
	case 20: o = rec("pi2", 1, 1, 1), json_object_del(o, "key"); break;
	/* expires */
	case 21: o = rec("pi2", 1, 1, 1), json_object_set_new(o, "expires", json_integer(-1)); break;
	case 22: o = rec("pi2", 1, 1, 1), json_object_set_new(o, "expires", json_string("9")); break;
	case 23: o = rec("pi2", 1, 1, 1), json_object_set_new(o, "expires", json_real(1e12)); break;
	case 24: o = rec("pi2", 1, 1, 1), json_object_set_new(o, "expires", json_null()); break;
	/* unknown fields, or fields only dictd sets */
	case 25: o = rec("pi2", 1, 1, 1), json_object_set_new(o, "bogus", json_integer(1)); break;
	case 26: o = rec("pi2", 1, 1, 1), json_object_set_new(o, "cancelled", json_false()); break;
	case 27: o = rec("pi2", 1, 1, 1), json_object_set_new(o, "changed", json_integer(now)); break;
	case 28:
		o = rec("pi2", 1, 1, 1);
		json_object_set_new(o, "expires", json_integer(0));
		json_object_set_new(o, "salt", json_string("AAAA"));
		break;
	/* not a record */
	case 29: o = json_string("pi2"); break;
	case 30: o = json_pack("[s, i, i]", "pi2", 1, 1); break;
	case 31: o = json_object(); break;
	case 32: o = json_null(); break;
	default: break;
	}
	/* clang-format on */
	free(k31);
	free(k33);
	return o;
}
#define BAD_RECORDS 33

/* One bad record in the middle of a batch: -EINVAL, nothing stored or replaced, no save. */
static void test_store_bad_record_in_middle(void **state)
{
	struct box *b = *state;
	char *before = NULL, *after = NULL;
	size_t len = 0, len2 = 0;
	struct stat st0, st1;

	admit(b);
	/* What is there already: pi2 index 3, which the bad batches try to replace. */
	assert_int_equal(store(b, records("pi2", 3, 1, 1), NULL), 0);
	assert_int_equal(saves(b), 1);
	assert_non_null(before = slurp(b->dict_path, &len));
	assert_int_equal(stat(b->dict_path, &st0), 0);

	for (size_t i = 0; i < BAD_RECORDS; i++) {
		json_t *list = json_array();
		json_t *bad = bad_record(i);

		assert_non_null(bad);
		json_array_append_new(list, rec("pi4", 10, 2, 10));
		json_array_append_new(list, rec("pi2", 3, 2, 999)); /* would replace pi2/3 */
		json_array_append_new(list, bad);
		json_array_append_new(list, rec("pi4", 11, 2, 11));
		if (store(b, list, NULL) != -EINVAL)
			fail_msg("bad record %zu was not refused", i);
		assert_int_equal(saves(b), 0);
		assert_int_equal(status_int(b, "records"), 1);
	}
	assert_int_equal(stat(b->dict_path, &st1), 0);
	assert_int_equal(st1.st_ino, st0.st_ino);
	assert_non_null(after = slurp(b->dict_path, &len2));
	assert_int_equal(len2, len);
	assert_memory_equal(before, after, len);
	expect_no_keys(b, "pi4", json_pack("[i, i]", 10, 11));
	{
		json_t *reply = NULL;
		const uint32_t want[][2] = {{3, 3}};

		assert_int_equal(ask(b, PROTO_DICT_LOOKUP, "pi2", json_pack("[i]", 3), &reply), 0);
		expect_keys(reply, 1, want);
		json_decref(reply);
	}
	free(before);
	free(after);
}

/* The same bad records alone, and the good values at the edges of each field. */
static void test_store_fields(void **state)
{
	struct box *b = *state;
	char name63[CERT_NAME_MAX];
	json_t *list;

	for (size_t i = 0; i < BAD_RECORDS; i++) {
		json_t *one = json_array();

		json_array_append_new(one, bad_record(i));
		if (store(b, one, NULL) != -EINVAL)
			fail_msg("bad record %zu was not refused", i);
	}
	assert_int_equal(saves(b), 0);
	assert_int_equal(access(b->dict_path, F_OK), -1);

	memset(name63, 'n', sizeof(name63) - 1);
	name63[sizeof(name63) - 1] = '\0';
	list = json_array();
	json_array_append_new(list, rec(name63, 0, 1, 1));
	json_array_append_new(list, rec("x", UINT32_MAX, UINT32_MAX, 2));
	json_array_append_new(list, rec("-ring", 0, 1, 3));
	json_array_append_new(list, rec("pi2", 7, 1, 4));
	json_object_set_new(json_array_get(list, 3), "expires", json_integer(0));
	json_array_append_new(list, rec("pi3", 7, 1, 5));
	json_object_set_new(json_array_get(list, 4), "expires", json_integer(now + 1));
	assert_int_equal(store(b, list, NULL), 0);
	assert_int_equal(saves(b), 1);
	assert_int_equal(status_int(b, "records"), 5);
}

/* 1..PROTO_DICT_BATCH_MAX records, in a "records" array. */
static void test_store_batch_limits(void **state)
{
	struct box *b = *state;
	json_t *reply = NULL;

	assert_int_equal(store(b, records("-ring", 0, PROTO_DICT_BATCH_MAX + 1, 1), NULL), -EINVAL);
	assert_int_equal(store(b, json_array(), NULL), -EINVAL);
	assert_int_equal(call(b, PROTO_DICT_STORE, NULL, NULL), -EINVAL);
	assert_int_equal(
	    call(b, PROTO_DICT_STORE, json_pack("{s:o}", "records", rec("a", 1, 1, 1)), NULL),
	    -EINVAL);
	assert_int_equal(call(b, PROTO_DICT_STORE, json_pack("{s:s}", "records", "all"), NULL),
			 -EINVAL);
	assert_int_equal(call(b, PROTO_DICT_STORE, json_pack("{s:n}", "records"), NULL), -EINVAL);
	assert_int_equal(saves(b), 0);
	assert_int_equal(access(b->dict_path, F_OK), -1);

	assert_int_equal(store(b, records("-ring", 0, PROTO_DICT_BATCH_MAX, 1), &reply), 0);
	assert_int_equal(json_integer_value(json_object_get(reply, "stored")),
			 PROTO_DICT_BATCH_MAX);
	json_decref(reply);
	assert_int_equal(saves(b), 1);
	assert_int_equal(status_int(b, "records"), PROTO_DICT_BATCH_MAX);
}

/* Storing (name, index) again replaces its key and epoch. */
static void test_store_replaces(void **state)
{
	struct box *b = *state;
	const uint32_t want[][2] = {{1, 77}, {2, 2}};
	json_t *reply = NULL;
	struct keydict *kd;

	admit(b);
	assert_int_equal(store(b, records("pi2", 1, 2, 1), NULL), 0);
	assert_int_equal(store(b, json_pack("[o]", rec("pi2", 1, 2, 77)), NULL), 0);
	assert_int_equal(ask(b, PROTO_DICT_LOOKUP, "pi2", json_pack("[i, i]", 1, 2), &reply), 0);
	expect_keys(reply, 2, want);
	json_decref(reply);
	kd = reload(b);
	assert_int_equal(keydict_count(kd), 2);
	assert_int_equal(find(kd, "pi2", 1)->epoch, 2);
	keydict_free(kd);
}

/* A store whose save fails is refused, and leaves nothing behind in memory either: all or
 * none holds for what lookups see, not only for the file. */
static void test_store_failed_save(void **state)
{
	struct box *b = *state;
	char blocker[PATH_MAX + 32];

	admit(b);
	/* The dictionary's name is taken by a directory that cannot be renamed over. */
	snprintf(blocker, sizeof(blocker), "%s/x", b->dict_path);
	assert_int_equal(mkdir(b->dict_path, 0700), 0);
	put_file(blocker, "x", 1, 0600);
	assert_true(store(b, records("pi2", 1, 3, 1), NULL) < 0);
	assert_int_equal(saves(b), 0);
	expect_no_keys(b, "pi2", json_pack("[i, i, i]", 1, 2, 3));
	assert_int_equal(status_int(b, "records"), 0);
}

/* ---- the lock ---- */

static void expect_locked(struct box *b, const char *reason)
{
	json_t *s;

	assert_int_equal(ask(b, PROTO_DICT_LOOKUP, "pi2", json_pack("[i]", 1), NULL), -EACCES);
	assert_int_equal(ask(b, PROTO_DICT_HAS, "pi2", json_pack("[i]", 1), NULL), -EACCES);
	/* Even a malformed request learns nothing but the lock. */
	assert_int_equal(call(b, PROTO_DICT_LOOKUP, NULL, NULL), -EACCES);
	s = status(b);
	assert_true(json_is_true(json_object_get(s, "locked")));
	assert_string_equal(json_string_value(json_object_get(s, "lock_reason")), reason);
	json_decref(s);
}

static void expect_open(struct box *b)
{
	const uint32_t want[][2] = {{1, 1}};
	json_t *reply = NULL, *s;

	assert_int_equal(ask(b, PROTO_DICT_LOOKUP, "pi2", json_pack("[i]", 1), &reply), 0);
	expect_keys(reply, 1, want);
	json_decref(reply);
	s = status(b);
	assert_true(json_is_false(json_object_get(s, "locked")));
	assert_null(json_object_get(s, "lock_reason"));
	json_decref(s);
}

/* Lookups wait for certd's word, and stop again whenever it takes it back. */
static void test_lock_follows_certd(void **state)
{
	struct box *b = *state;

	assert_int_equal(store(b, records("pi2", 1, 1, 1), NULL), 0); /* storing needs no word */
	expect_locked(b, "waiting for iotsec-certd");
	assert_int_equal(status_int(b, "refused"), 3);
	assert_int_equal(status_int(b, "lookups"), 0);

	dictd_on_certd(false, "certificate invalid: /x/device.crt: certificate revoked", &b->d);
	expect_locked(b, "certificate invalid: /x/device.crt: certificate revoked");
	dictd_on_certd(true, "certificate valid", &b->d);
	expect_open(b);
	assert_int_equal(status_int(b, "lookups"), 1);
	dictd_on_certd(false, "waiting for iotsec-certd", &b->d);
	expect_locked(b, "waiting for iotsec-certd");
	dictd_on_certd(true, "certificate valid", &b->d);
	expect_open(b);
}

/* lock and unlock: a lock of the caller's own, counted once however often it is asked. */
static void test_lock_by_request(void **state)
{
	struct box *b = *state;

	assert_int_equal(store(b, records("pi2", 1, 1, 1), NULL), 0);
	admit(b);
	expect_open(b);
	assert_int_equal(call(b, PROTO_DICT_LOCK, NULL, NULL), 0);
	expect_locked(b, "locked by request");
	assert_int_equal(call(b, PROTO_DICT_LOCK, NULL, NULL), 0);
	assert_int_equal(call(b, PROTO_DICT_UNLOCK, NULL, NULL), 0);
	expect_open(b);
	assert_int_equal(call(b, PROTO_DICT_UNLOCK, NULL, NULL), 0);
	expect_open(b);
}

/* The lock asked for outlives dictd (a crash, a restart): it holds again at the next start,
 * until unlock, which also outlives it. A lock that cannot be saved is an error. */
static void test_lock_survives_restart(void **state)
{
	struct box *b = *state;
	char held[PATH_MAX + 32];

	assert_int_equal(store(b, records("pi2", 1, 1, 1), NULL), 0);
	admit(b);
	assert_int_equal(call(b, PROTO_DICT_LOCK, NULL, NULL), 0);
	box_close(b);
	box_open(b);
	admit(b);
	expect_locked(b, "locked by request");
	assert_int_equal(call(b, PROTO_DICT_UNLOCK, NULL, NULL), 0);
	box_close(b);
	box_open(b);
	admit(b);
	expect_open(b);

	/* A directory where the lock's file goes: it cannot be saved, and the caller hears so. */
	snprintf(held, sizeof(held), "%s/dictd/dict.locked", b->dir);
	assert_int_equal(mkdir(held, 0700), 0);
	assert_true(call(b, PROTO_DICT_LOCK, NULL, NULL) < 0);
	expect_locked(b, "locked by request"); /* in force all the same, for this run */
	assert_true(call(b, PROTO_DICT_UNLOCK, NULL, NULL) < 0);
	expect_locked(b, "locked by request");
	assert_int_equal(rmdir(held), 0);
	assert_int_equal(call(b, PROTO_DICT_UNLOCK, NULL, NULL), 0);
	expect_open(b);
}

/* "unlock" never lifts certd's lock; certd's word never lifts a lock asked for. */
static void test_unlock_never_lifts_certd(void **state)
{
	struct box *b = *state;

	assert_int_equal(store(b, records("pi2", 1, 1, 1), NULL), 0);
	assert_int_equal(call(b, PROTO_DICT_UNLOCK, NULL, NULL), 0);
	expect_locked(b, "waiting for iotsec-certd");

	dictd_on_certd(false, "certificate invalid: expired", &b->d);
	assert_int_equal(call(b, PROTO_DICT_UNLOCK, NULL, NULL), 0);
	expect_locked(b, "certificate invalid: expired");

	/* Both locks: certd's reason is the one shown, and each must be lifted by its owner. */
	assert_int_equal(call(b, PROTO_DICT_LOCK, NULL, NULL), 0);
	expect_locked(b, "certificate invalid: expired");
	dictd_on_certd(true, "certificate valid", &b->d);
	expect_locked(b, "locked by request");
	dictd_on_certd(false, "certificate invalid: revoked", &b->d);
	assert_int_equal(call(b, PROTO_DICT_UNLOCK, NULL, NULL), 0);
	expect_locked(b, "certificate invalid: revoked");
	dictd_on_certd(true, "certificate valid", &b->d);
	expect_open(b);
}

/* ---- lookup and has ---- */

/* Only usable keys, in the order asked; other names', expired and missing ones are left out. */
static void test_lookup_order_and_usable(void **state)
{
	struct box *b = *state;
	json_t *list = json_array(), *reply = NULL;

	admit(b);
	json_array_append_new(list, rec("pi2", 5, 1, 5));
	json_array_append_new(list, rec("pi2", 1, 1, 1));
	json_array_append_new(list, rec("pi2", 9, 1, 9));
	json_object_set_new(json_array_get(list, 2), "expires", json_integer(now + 10));
	json_array_append_new(list, rec("pi2", 3, 1, 3));
	json_array_append_new(list, rec("pi3", 7, 1, 70)); /* another name's index 7 */
	assert_int_equal(store(b, list, NULL), 0);

	{
		const uint32_t want[][2] = {{9, 9}, {3, 3}, {1, 1}, {5, 5}};

		assert_int_equal(ask(b, PROTO_DICT_LOOKUP, "pi2",
				     json_pack("[i, i, i, i, i]", 9, 3, 1, 5, 7), &reply),
				 0);
		expect_keys(reply, 4, want);
		json_decref(reply);
	}
	{
		const uint32_t want[][2] = {{5, 5}, {1, 1}, {5, 5}};

		assert_int_equal(
		    ask(b, PROTO_DICT_LOOKUP, "pi2", json_pack("[i, i, i]", 5, 1, 5), &reply), 0);
		expect_keys(reply, 3, want);
		json_decref(reply);
	}
	/* The expiry is a moment: usable just before it, never at it. */
	clock_set_fake(now + 9);
	{
		const uint32_t want[][2] = {{9, 9}};

		assert_int_equal(ask(b, PROTO_DICT_LOOKUP, "pi2", json_pack("[i]", 9), &reply), 0);
		expect_keys(reply, 1, want);
		json_decref(reply);
	}
	clock_set_fake(now + 10);
	{
		const uint32_t want[][2] = {{3, 3}, {1, 1}};

		assert_int_equal(
		    ask(b, PROTO_DICT_LOOKUP, "pi2", json_pack("[i, i, i]", 9, 3, 1), &reply), 0);
		expect_keys(reply, 2, want);
		json_decref(reply);
	}
	assert_int_equal(status_int(b, "records"), 5);
	assert_int_equal(status_int(b, "usable"), 4);
	expect_no_keys(b, "pi3", json_pack("[i, i]", 5, 1));
	expect_no_keys(b, "nobody", json_pack("[i]", 7));
	expect_no_keys(b, "pi2", json_array());
}

/* Requests lookup and has refuse, and the limit on indices. */
static void test_lookup_bad_requests(void **state)
{
	static const char *const verbs[] = {PROTO_DICT_LOOKUP, PROTO_DICT_HAS};
	struct box *b = *state;

	admit(b);
	assert_int_equal(store(b, records("pi2", 0, 4, 1), NULL), 0);
	for (size_t v = 0; v < 2; v++) {
		const char *verb = verbs[v];
		json_t *big = json_array(), *max = json_array(), *reply = NULL;

		assert_int_equal(call(b, verb, NULL, NULL), -EINVAL);
		assert_int_equal(call(b, verb, json_pack("{s:[i]}", "indices", 1), NULL), -EINVAL);
		assert_int_equal(
		    call(b, verb, json_pack("{s:i, s:[i]}", "name", 2, "indices", 1), NULL),
		    -EINVAL);
		assert_int_equal(
		    call(b, verb, json_pack("{s:n, s:[i]}", "name", "indices", 1), NULL), -EINVAL);
		assert_int_equal(call(b, verb, json_pack("{s:s}", "name", "pi2"), NULL), -EINVAL);
		assert_int_equal(ask(b, verb, "pi2", json_integer(1), NULL), -EINVAL);
		assert_int_equal(ask(b, verb, "pi2", json_pack("{s:i}", "i", 1), NULL), -EINVAL);
		assert_int_equal(ask(b, verb, "pi2", json_pack("[i, i]", 1, -1), NULL), -EINVAL);
		assert_int_equal(
		    ask(b, verb, "pi2", json_pack("[i, I]", 1, (json_int_t)UINT32_MAX + 1), NULL),
		    -EINVAL);
		assert_int_equal(ask(b, verb, "pi2", json_pack("[i, s]", 1, "2"), NULL), -EINVAL);
		assert_int_equal(ask(b, verb, "pi2", json_pack("[i, f]", 1, 2.0), NULL), -EINVAL);
		assert_int_equal(ask(b, verb, "pi2", json_pack("[i, n]", 1), NULL), -EINVAL);
		assert_int_equal(ask(b, verb, "pi2", json_pack("[[i]]", 1), NULL), -EINVAL);
		for (int i = 0; i <= PROTO_DICT_INDEX_MAX; i++)
			json_array_append_new(big, json_integer(i % 4));
		assert_int_equal(ask(b, verb, "pi2", big, NULL), -EINVAL);
		/* Exactly the limit is fine. */
		for (int i = 0; i < PROTO_DICT_INDEX_MAX; i++)
			json_array_append_new(max, json_integer(i));
		assert_int_equal(ask(b, verb, "pi2", max, &reply), 0);
		assert_int_equal(
		    json_array_size(json_object_get(reply, v == 0 ? "keys" : "present")), 4);
		json_decref(reply);
	}
}

/* has: which usable keys exist, in the order asked, and no key anywhere in the reply. */
static void test_has_without_keys(void **state)
{
	struct box *b = *state;
	json_t *list = records("-ring", 10, 5, 3), *reply = NULL, *want;
	char *text;

	admit(b);
	json_object_set_new(json_array_get(list, 4), "expires", json_integer(now - 1)); /* 14 */
	assert_int_equal(store(b, list, NULL), 0);
	assert_int_equal(ask(b, PROTO_DICT_HAS, "-ring",
			     json_pack("[i, i, i, i, i, i]", 12, 99, 10, 14, 11, 12), &reply),
			 0);
	assert_int_equal(json_object_size(reply), 1);
	want = json_pack("[i, i, i, i]", 12, 10, 11, 12);
	assert_true(json_equal(json_object_get(reply, "present"), want));
	json_decref(want);
	assert_non_null(text = json_dumps(reply, JSON_COMPACT));
	assert_null(strstr(text, "key"));
	for (uint32_t i = 10; i < 15; i++) {
		char *k = key64_of(i);

		assert_null(strstr(text, k));
		free(k);
	}
	free(text);
	json_decref(reply);
	assert_int_equal(ask(b, PROTO_DICT_HAS, "pi2", json_pack("[i, i]", 10, 11), &reply), 0);
	assert_int_equal(json_array_size(json_object_get(reply, "present")), 0);
	json_decref(reply);
	/* has reads no key: it is not counted as a lookup. */
	assert_int_equal(status_int(b, "lookups"), 0);
}

/* ---- cancel ---- */

/* A store with "cancel_others" (how a new pool's ring goes in) cancels every other epoch, older
 * and newer, in the same save; the cancelled records leave the file. */
static void test_store_cancels_others(void **state)
{
	struct box *b = *state;
	json_t *list = records("-ring", 0, 4, 3), *reply = NULL;
	struct keydict *kd;

	admit(b);
	list = records_extend(list, records("-ring", 20, 4, 5));
	json_array_append_new(list, rec("pi2", 0, 3, 500)); /* a path key of epoch 3 */
	json_array_append_new(list, rec("pi3", 0, 4, 501)); /* and one of epoch 4 */
	assert_int_equal(store(b, list, NULL), 0);
	assert_int_equal(saves(b), 1);

	assert_int_equal(
	    call(b, PROTO_DICT_STORE,
		 json_pack("{s:o, s:b}", "records", records("-ring", 10, 4, 4), "cancel_others", 1),
		 &reply),
	    0);
	assert_int_equal(json_integer_value(json_object_get(reply, "stored")), 4);
	assert_int_equal(json_integer_value(json_object_get(reply, "cancelled")), 9);
	json_decref(reply);
	assert_int_equal(saves(b), 1); /* one save for both */
	expect_no_keys(b, "-ring", json_pack("[i, i, i, i, i, i]", 0, 1, 2, 3, 20, 23));
	expect_no_keys(b, "pi2", json_pack("[i]", 0));
	{
		const uint32_t want[][2] = {{13, 13}, {10, 10}};
		const uint32_t want_path[][2] = {{0, 501}};

		assert_int_equal(
		    ask(b, PROTO_DICT_LOOKUP, "-ring", json_pack("[i, i, i]", 13, 3, 10), &reply),
		    0);
		expect_keys(reply, 2, want);
		json_decref(reply);
		assert_int_equal(ask(b, PROTO_DICT_LOOKUP, "pi3", json_pack("[i]", 0), &reply), 0);
		expect_keys(reply, 1, want_path);
		json_decref(reply);
	}
	kd = reload(b);
	assert_int_equal(keydict_count(kd), 5);
	for (size_t i = 0; i < keydict_count(kd); i++)
		assert_int_equal(keydict_at(kd, i)->epoch, 4);
	keydict_free(kd);
	assert_int_equal(status_int(b, "records"), 5);

	/* Records of two epochs leave "every other epoch" undefined: refused, nothing changed. */
	list = records("-ring", 30, 2, 4);
	json_array_append_new(list, rec("-ring", 40, 6, 40));
	assert_int_equal(call(b, PROTO_DICT_STORE,
			      json_pack("{s:o, s:b}", "records", list, "cancel_others", 1), NULL),
			 -EINVAL);
	assert_int_equal(
	    call(b, PROTO_DICT_STORE,
		 json_pack("{s:o, s:i}", "records", records("-ring", 30, 1, 4), "cancel_others", 1),
		 NULL),
	    -EINVAL);
	assert_int_equal(saves(b), 0);
	assert_int_equal(status_int(b, "records"), 5);
}

/* {"name":N} cancels every record of N, whatever its epoch, and nothing else. */
static void test_cancel_name(void **state)
{
	struct box *b = *state;
	json_t *list = records("pi2", 0, 3, 4), *reply = NULL;
	const uint32_t want[][2] = {{0, 0}, {1, 1}};

	admit(b);
	list = records_extend(list, records("pi2", 5, 2, 5));
	list = records_extend(list, records("pi3", 0, 2, 4));
	list = records_extend(list, records("-ring", 0, 2, 4));
	assert_int_equal(store(b, list, NULL), 0);
	assert_int_equal(saves(b), 1);
	assert_int_equal(call(b, PROTO_DICT_CANCEL, json_pack("{s:s}", "name", "pi2"), &reply), 0);
	assert_int_equal(json_integer_value(json_object_get(reply, "cancelled")), 5);
	json_decref(reply);
	assert_int_equal(saves(b), 1);
	expect_no_keys(b, "pi2", json_pack("[i, i, i, i, i]", 0, 1, 2, 5, 6));
	assert_int_equal(ask(b, PROTO_DICT_LOOKUP, "pi3", json_pack("[i, i]", 0, 1), &reply), 0);
	expect_keys(reply, 2, want);
	json_decref(reply);
	assert_int_equal(ask(b, PROTO_DICT_LOOKUP, "-ring", json_pack("[i, i]", 0, 1), &reply), 0);
	expect_keys(reply, 2, want);
	json_decref(reply);
	assert_int_equal(status_int(b, "records"), 4);
	assert_int_equal(call(b, PROTO_DICT_CANCEL, json_pack("{s:s}", "name", "nobody"), &reply),
			 0);
	assert_int_equal(json_integer_value(json_object_get(reply, "cancelled")), 0);
	json_decref(reply);
	assert_int_equal(status_int(b, "records"), 4);
}

/* No name, or a name that is not a string: -EINVAL, nothing cancelled, nothing saved. */
static void test_cancel_bad(void **state)
{
	struct box *b = *state;
	json_t *bad[] = {
	    NULL,
	    json_pack("{s:i}", "keep_epoch", 4), /* no longer a way to cancel: see the store */
	    json_pack("{s:i}", "name", 4),
	    json_pack("{s:n}", "name"),
	    json_pack("{s:[s]}", "name", "pi2"),
	    json_pack("{s:b}", "name", 1),
	    json_pack("{s:{}}", "name"),
	};

	admit(b);
	assert_int_equal(store(b, records("pi2", 0, 2, 3), NULL), 0);
	assert_int_equal(saves(b), 1);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (call(b, PROTO_DICT_CANCEL, bad[i], NULL) != -EINVAL)
			fail_msg("cancel %zu was not refused", i);
	assert_int_equal(saves(b), 0);
	assert_int_equal(status_int(b, "records"), 2);
	assert_int_equal(status_int(b, "usable"), 2);
}

/* ---- status ---- */

static void test_status_fields(void **state)
{
	struct box *b = *state;
	json_t *list = records("pi2", 0, 3, 1), *s;

	json_object_set_new(json_array_get(list, 0), "expires", json_integer(now + 5));
	assert_int_equal(store(b, list, NULL), 0);
	s = status(b);
	assert_int_equal(json_object_size(s), 7);
	assert_int_equal(json_integer_value(json_object_get(s, "records")), 3);
	assert_int_equal(json_integer_value(json_object_get(s, "usable")), 3);
	assert_true(json_is_true(json_object_get(s, "locked")));
	assert_true(json_is_string(json_object_get(s, "lock_reason")));
	assert_int_equal(json_integer_value(json_object_get(s, "lookups")), 0);
	assert_int_equal(json_integer_value(json_object_get(s, "refused")), 0);
	json_decref(s);

	admit(b);
	clock_set_fake(now + 5);
	expect_no_keys(b, "pi2", json_pack("[i]", 0));
	s = status(b);
	assert_int_equal(json_object_size(s), 6); /* no lock_reason */
	assert_int_equal(json_integer_value(json_object_get(s, "records")), 3);
	assert_int_equal(json_integer_value(json_object_get(s, "usable")), 2);
	assert_true(json_is_false(json_object_get(s, "locked")));
	assert_int_equal(json_integer_value(json_object_get(s, "lookups")), 1);
	json_decref(s);
	/* The status holds no key. */
	{
		char *text, *k;

		assert_non_null(s = status(b));
		assert_non_null(text = json_dumps(s, JSON_COMPACT));
		for (uint32_t i = 0; i < 3; i++) {
			k = key64_of(i);
			assert_null(strstr(text, k));
			free(k);
		}
		free(text);
		json_decref(s);
	}
}

/* ---- through a control socket ---- */

struct outcome {
	bool done;
	int r;
	json_t *reply;
};

static void on_reply(int r, json_t *reply, void *userdata)
{
	struct outcome *o = userdata;

	o->done = true;
	o->r = r;
	o->reply = json_incref(reply);
}

static json_t *peer_call(sd_event *e, struct ctl_peer *p, const char *verb, json_t *args, int want)
{
	struct outcome o = {0};

	assert_int_equal(ctl_peer_call(p, verb, args, WAIT_MS, on_reply, &o, NULL), 0);
	json_decref(args);
	loop_until(e, o.done);
	if (o.r != want)
		fail_msg("%s: %d, want %d (%s)", verb, o.r, want,
			 o.reply ? ctl_reply_error(o.reply) ?: "ok" : "no reply");
	return o.reply;
}

/* The handlers under the real control server: its framing, and its refusals as text. */
static void test_over_socket(void **state)
{
	struct box *b = *state;
	char path[PATH_MAX + 16];
	struct ctl_server *srv = NULL;
	struct ctl_peer *p = NULL;
	sd_event *e = NULL;
	json_t *reply;
	char *k = key64_of(1);

	snprintf(path, sizeof(path), "%s/dictd.sock", b->dir);
	assert_int_equal(sd_event_new(&e), 0);
	assert_int_equal(ctl_server_new(e, path, dictd_verbs, &b->d, &srv), 0);
	assert_int_equal(ctl_peer_new(e, path, 100, NULL, NULL, NULL, &p), 0);
	loop_until(e, ctl_peer_connected(p));

	reply = peer_call(e, p, PROTO_DICT_STORE,
			  json_pack("{s:o}", "records", records("pi2", 1, 2, 1)), 0);
	assert_int_equal(json_integer_value(json_object_get(reply, "stored")), 2);
	json_decref(reply);
	reply = peer_call(e, p, PROTO_DICT_LOOKUP,
			  json_pack("{s:s, s:[i]}", "name", "pi2", "indices", 1), -EPROTO);
	assert_string_equal(ctl_reply_error(reply), iotsec_strerror(-EACCES));
	json_decref(reply);
	admit(b);
	reply = peer_call(e, p, PROTO_DICT_LOOKUP,
			  json_pack("{s:s, s:[i, i]}", "name", "pi2", "indices", 2, 1), 0);
	assert_int_equal(json_array_size(json_object_get(reply, "keys")), 2);
	assert_string_equal(json_string_value(json_object_get(
				json_array_get(json_object_get(reply, "keys"), 1), "key")),
			    k);
	json_decref(reply);
	reply = peer_call(e, p, PROTO_DICT_STORE, json_pack("{s:[o]}", "records", bad_record(25)),
			  -EPROTO);
	assert_string_equal(ctl_reply_error(reply), iotsec_strerror(-EINVAL));
	json_decref(reply);
	reply = peer_call(e, p, PROTO_STATUS, NULL, 0);
	assert_int_equal(json_integer_value(json_object_get(reply, "records")), 2);
	assert_true(json_is_false(json_object_get(reply, "locked")));
	json_decref(reply);

	free(k);
	ctl_peer_free(p);
	ctl_server_free(srv);
	sd_event_unref(e);
}

static int group_setup(void **state)
{
	(void)state;
	if (mkdtemp(root) == NULL || chmod(root, 0700) < 0)
		return -1;
	log_set_level(LOG_ERR);
	now = (int64_t)time(NULL);
	if (now < clock_floor())
		now = clock_floor() + 1;
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	rm_tree(root);
	clock_set_fake(-1);
	return 0;
}

#define CASE(f)	       cmocka_unit_test_setup_teardown(f, setup_open, teardown)
#define CASE_CLOSED(f) cmocka_unit_test_setup_teardown(f, setup_closed, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_verb_table),
	    CASE_CLOSED(test_open_creates_key),
	    CASE_CLOSED(test_open_refuses_other_key),
	    CASE_CLOSED(test_open_refuses_bad_files),
	    CASE_CLOSED(test_open_missing_key_with_dictionary),
	    CASE_CLOSED(test_open_credential),
	    CASE(test_store_batch_one_save),
	    CASE(test_store_bad_record_in_middle),
	    CASE(test_store_fields),
	    CASE(test_store_batch_limits),
	    CASE(test_store_replaces),
	    CASE(test_store_failed_save),
	    CASE(test_lock_follows_certd),
	    CASE(test_lock_by_request),
	    CASE(test_lock_survives_restart),
	    CASE(test_unlock_never_lifts_certd),
	    CASE(test_lookup_order_and_usable),
	    CASE(test_lookup_bad_requests),
	    CASE(test_has_without_keys),
	    CASE(test_store_cancels_others),
	    CASE(test_cancel_name),
	    CASE(test_cancel_bad),
	    CASE(test_status_fields),
	    CASE(test_over_socket),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
