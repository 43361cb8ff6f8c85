/* dictd_client: reaching keys through iotsec-dictd without waiting, against a dictd this test
 * plays with a real ctl_server whose verbs (store, lookup, has, cancel) record each request for
 * the test to check its exact shape, and answer it: rightly from a table of keys, with a refusal,
 * or with a reply the test wrote (answers that do not fit the question). The fake dictd runs on
 * its own sd-event loop, turned from the test's loop unless paused: so a call can wait, sent and
 * unanswered, for as long as a case needs. Every wait is bounded. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "crypto.h"
#include "ctl.h"
#include "dictd_client.h"
#include "encoding.h"
#include "proto.h"

#include "ctl_peer.h"

/* Indices from MISSING_FROM on are not in the fake dictionary. */
#define MISSING_FROM 1000u
#define MISSING_TO   2000u

/* ---- the dictd played here ---- */

struct dictd {
	sd_event *e;	       /* its own loop */
	sd_event_source *turn; /* on the test's loop: turns e while enabled */
	struct ctl_server *s;
	json_t *requests; /* every request it received, in order */
	int refuse;	  /* < 0: refuse every request with this */
	json_t *canned;	  /* set: answer with these fields, whatever was asked */
};

/* The key dictd holds for (name, index). */
static void key_of(const char *name, uint32_t index, uint8_t out[CRYPTO_KEY_LEN])
{
	for (size_t j = 0; j < CRYPTO_KEY_LEN; j++)
		out[j] = (uint8_t)(index * 13u + j * 7u + (uint8_t)name[0]);
}

static char *key64_of(const char *name, uint32_t index)
{
	uint8_t k[CRYPTO_KEY_LEN];
	char *s;

	key_of(name, index, k);
	assert_non_null(s = b64_encode(k, sizeof(k)));
	return s;
}

static bool present(json_int_t index)
{
	return index < MISSING_FROM || index >= MISSING_TO;
}

/* Record the request; a refusal or a canned answer if the case asked for one. 1: answer it. */
static int take(struct dictd *d, json_t *req, json_t **ret)
{
	json_array_append_new(d->requests, json_deep_copy(req));
	if (d->refuse < 0)
		return d->refuse;
	if (d->canned) {
		*ret = json_deep_copy(d->canned);
		return 0;
	}
	return 1;
}

static int verb_store(json_t *req, json_t **ret, void *userdata)
{
	int r = take(userdata, req, ret);

	if (r == 1 && (*ret = json_pack(
			   "{s:I}", "stored",
			   (json_int_t)json_array_size(json_object_get(req, "records")))) != NULL)
		r = 0;
	return r;
}

static int verb_lookup(json_t *req, json_t **ret, void *userdata)
{
	const char *name = json_string_value(json_object_get(req, "name"));
	json_t *keys, *v;
	int r = take(userdata, req, ret);
	char *k;
	size_t i;

	if (r != 1)
		return r;
	if (name == NULL)
		return -EINVAL;
	keys = json_array();
	json_array_foreach(json_object_get(req, "indices"), i, v)
	{
		if (!present(json_integer_value(v)))
			continue;
		k = key64_of(name, (uint32_t)json_integer_value(v));
		json_array_append_new(keys, json_pack("{s:O, s:s}", "index", v, "key", k));
		free(k);
	}
	*ret = json_pack("{s:o}", "keys", keys);
	return 0;
}

static int verb_has(json_t *req, json_t **ret, void *userdata)
{
	json_t *list, *v;
	int r = take(userdata, req, ret);
	size_t i;

	if (r != 1)
		return r;
	list = json_array();
	json_array_foreach(json_object_get(req, "indices"), i, v)
	{
		if (present(json_integer_value(v)))
			json_array_append(list, v);
	}
	*ret = json_pack("{s:o}", "present", list);
	return 0;
}

static int verb_cancel(json_t *req, json_t **ret, void *userdata)
{
	int r = take(userdata, req, ret);

	if (r == 1 && (*ret = json_pack("{s:i}", "cancelled", 3)) != NULL)
		r = 0;
	return r;
}

static const struct ctl_verb dictd_verbs[] = {
    {PROTO_DICT_STORE, CTL_MUTATES, verb_store},
    {PROTO_DICT_LOOKUP, CTL_MUTATES, verb_lookup},
    {PROTO_DICT_HAS, CTL_MUTATES, verb_has},
    {PROTO_DICT_CANCEL, CTL_MUTATES, verb_cancel},
    {NULL, 0, NULL},
};

static int on_turn(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct dictd *d = userdata;

	(void)s, (void)fd, (void)revents;
	return sd_event_run(d->e, 0) < 0 ? -EIO : 0;
}

static void dictd_start(sd_event *e, struct dictd *d)
{
	memset(d, 0, sizeof(*d));
	assert_non_null(d->requests = json_array());
	assert_int_equal(sd_event_new(&d->e), 0);
	assert_true(mkdir(in_dir("dictd"), 0755) == 0 || errno == EEXIST);
	assert_int_equal(ctl_server_new(d->e, in_dir("dictd/dictd.sock"), dictd_verbs, d, &d->s), 0);
	assert_int_equal(sd_event_add_io(e, &d->turn, sd_event_get_fd(d->e), EPOLLIN, on_turn, d),
			 0);
}

/* A paused dictd takes nothing and answers nothing. */
static void dictd_pause(struct dictd *d, bool paused)
{
	assert_int_equal(sd_event_source_set_enabled(d->turn, paused ? SD_EVENT_OFF : SD_EVENT_ON),
			 0);
}

static void dictd_stop(struct dictd *d)
{
	ctl_server_free(d->s);
	sd_event_source_disable_unref(d->turn);
	sd_event_unref(d->e);
	json_decref(d->requests);
	json_decref(d->canned);
	memset(d, 0, sizeof(*d));
}

/* The one request dictd received since the last check is want (consumed) plus "v", "verb" and
 * an integer "id". */
static void expect_request(struct dictd *d, const char *verb, json_t *want)
{
	json_t *req;

	assert_int_equal(json_array_size(d->requests), 1);
	req = json_incref(json_array_get(d->requests, 0));
	json_array_clear(d->requests);
	assert_int_equal(json_integer_value(json_object_get(req, "v")), CTL_PROTO_VERSION);
	assert_string_equal(json_string_value(json_object_get(req, "verb")), verb);
	assert_true(json_is_integer(json_object_get(req, "id")));
	json_object_del(req, "v"), json_object_del(req, "verb"), json_object_del(req, "id");
	if (!json_equal(req, want)) {
		char *a = json_dumps(req, JSON_COMPACT), *b = json_dumps(want, JSON_COMPACT);

		fail_msg("%s request %.300s, want %.300s", verb, a, b);
	}
	json_decref(req);
	json_decref(want);
}

/* ---- the client's side ---- */

struct rig {
	sd_event *e;
	struct dictd d;
	struct dictd_client *dc;
	json_t *got; /* every callback, in order */
};

/* A loop, dictd (unless !with_dictd) and a client connected to it. */
static void rig_open(struct rig *x, bool with_dictd)
{
	memset(x, 0, sizeof(*x));
	assert_int_equal(sd_event_new(&x->e), 0);
	assert_non_null(x->got = json_array());
	if (with_dictd)
		dictd_start(x->e, &x->d);
	assert_int_equal(dictd_client_new(x->e, scratch_dir(), &x->dc), 0);
	/* The first attempt to connect is the loop's first turn; a Unix connect is immediate. */
	loop_for(x->e, 30);
}

static void rig_close(struct rig *x)
{
	dictd_client_free(x->dc);
	if (x->d.e)
		dictd_stop(&x->d);
	json_decref(x->got);
	sd_event_unref(x->e);
}

static void on_done(int r, void *userdata)
{
	json_array_append_new(userdata, json_pack("{s:i}", "r", r));
}

static void on_count(int r, size_t n, void *userdata)
{
	json_array_append_new(userdata, json_pack("{s:i, s:I}", "r", r, "present", (json_int_t)n));
}

/* Keys callbacks know how many keys they asked for. */
struct asked {
	json_t *got;
	size_t n;
};

static void on_keys(int r, const uint8_t (*keys)[CRYPTO_KEY_LEN], void *userdata)
{
	struct asked *a = userdata;
	json_t *list = keys ? json_array() : json_null();
	char *k;

	for (size_t i = 0; keys && i < a->n; i++) {
		k = b64_encode(keys[i], CRYPTO_KEY_LEN);
		json_array_append_new(list, json_string(k));
		free(k);
	}
	json_array_append_new(a->got, json_pack("{s:i, s:o}", "r", r, "keys", list));
}

/* Turn the loop until n callbacks in all came, then a little more: not one more. */
static void run_until_n(struct rig *x, size_t n)
{
	loop_until(x->e, json_array_size(x->got) >= n);
	loop_for(x->e, 20);
	assert_int_equal(json_array_size(x->got), n);
}

static int got_r(struct rig *x, size_t i)
{
	json_t *o = json_array_get(x->got, i);

	if (o == NULL)
		fail_msg("no callback %zu", i);
	return (int)json_integer_value(json_object_get(o, "r"));
}

/* Callback i was a keys callback with r and, when r is 0, the keys of name at index[0..n). */
static void expect_keys(struct rig *x, size_t i, int r, const char *name, const uint32_t *index,
			size_t n)
{
	json_t *keys = json_object_get(json_array_get(x->got, i), "keys");
	char *k;

	assert_int_equal(got_r(x, i), r);
	if (r < 0) {
		assert_true(json_is_null(keys));
		return;
	}
	assert_int_equal(json_array_size(keys), n);
	for (size_t j = 0; j < n; j++) {
		k = key64_of(name, index[j]);
		assert_string_equal(json_string_value(json_array_get(keys, j)), k);
		free(k);
	}
}

static json_t *indices_json(const uint32_t *index, size_t n)
{
	json_t *list = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(list, json_integer(index[i]));
	return list;
}

/* ---- cases ---- */

static void test_new_bad_args(void **state)
{
	struct dictd_client *dc = (struct dictd_client *)&dc;
	char longdir[200];
	sd_event *e = NULL;

	(void)state;
	memset(longdir, 'd', sizeof(longdir) - 1);
	longdir[sizeof(longdir) - 1] = '\0';
	assert_int_equal(sd_event_new(&e), 0);
	assert_int_equal(dictd_client_new(e, NULL, &dc), -EINVAL);
	assert_int_equal(dictd_client_new(e, "", &dc), -EINVAL);
	assert_int_equal(dictd_client_new(e, longdir, &dc), -ENAMETOOLONG);
	assert_int_equal(dictd_client_new(NULL, scratch_dir(), &dc), -EINVAL);
	assert_ptr_equal(dc, (struct dictd_client *)&dc);
	assert_int_equal(sd_event_run(e, 0), 0);
	dictd_client_free(NULL);
	sd_event_unref(e);
}

/* n records are one request: name, index, epoch, the key in base64 and "expires" only when it is
 * not 0; the callback hears 0 once. */
static void test_store(void **state)
{
	uint8_t k[3][CRYPTO_KEY_LEN];
	struct dictd_record rec[3] = {
	    {.name = "pi1", .index = 5, .epoch = 2, .key = k[0]},
	    {.name = "pi1", .index = 9, .epoch = 2, .key = k[1], .expires = 1900000000},
	    {.name = "ctl1", .index = UINT32_MAX, .epoch = UINT32_MAX, .key = k[2], .expires = -1},
	};
	char *k64[3];
	struct ctl_call *c = NULL;
	struct rig x;

	(void)state;
	rig_open(&x, true);
	for (size_t i = 0; i < 3; i++) {
		key_of(rec[i].name, rec[i].index, k[i]);
		k64[i] = key64_of(rec[i].name, rec[i].index);
	}
	assert_int_equal(dictd_client_store(x.dc, rec, 3, false, on_done, x.got, &c), 0);
	assert_non_null(c);
	assert_int_equal(json_array_size(x.got), 0);
	run_until_n(&x, 1);
	assert_int_equal(got_r(&x, 0), 0);
	expect_request(
	    &x.d, PROTO_DICT_STORE,
	    json_pack("{s:[{s:s, s:i, s:i, s:s}, {s:s, s:i, s:i, s:s, s:I}, {s:s, s:I, s:I, s:s, "
		      "s:I}]}",
		      "records", "name", "pi1", "index", 5, "epoch", 2, "key", k64[0], "name",
		      "pi1", "index", 9, "epoch", 2, "key", k64[1], "expires",
		      (json_int_t)1900000000, "name", "ctl1", "index", (json_int_t)UINT32_MAX,
		      "epoch", (json_int_t)UINT32_MAX, "key", k64[2], "expires", (json_int_t)-1));
	/* One record. */
	assert_int_equal(dictd_client_store(x.dc, rec, 1, false, on_done, x.got, NULL), 0);
	run_until_n(&x, 2);
	assert_int_equal(got_r(&x, 1), 0);
	expect_request(&x.d, PROTO_DICT_STORE,
		       json_pack("{s:[{s:s, s:i, s:i, s:s}]}", "records", "name", "pi1", "index", 5,
				 "epoch", 2, "key", k64[0]));
	for (size_t i = 0; i < 3; i++)
		free(k64[i]);
	rig_close(&x);
}

/* The largest batch the contract allows (PROTO_DICT_BATCH_MAX records, a whole ring of
 * KEYPOOL_RING_MAX keys and its group root) is still one request. */
static void test_store_largest_batch(void **state)
{
	struct dictd_record *rec = calloc(PROTO_DICT_BATCH_MAX, sizeof(*rec));
	uint8_t(*k)[CRYPTO_KEY_LEN] = calloc(PROTO_DICT_BATCH_MAX, CRYPTO_KEY_LEN);
	struct rig x;
	json_t *req;

	(void)state;
	assert_non_null(rec);
	assert_non_null(k);
	rig_open(&x, true);
	for (uint32_t i = 0; i < PROTO_DICT_BATCH_MAX; i++) {
		key_of("pi1", i, k[i]);
		rec[i] = (struct dictd_record){.name = "pi1",
					       .index = 4000000000u + i,
					       .epoch = 4000000000u,
					       .key = k[i],
					       .expires = 1900000000};
	}
	assert_int_equal(
	    dictd_client_store(x.dc, rec, PROTO_DICT_BATCH_MAX, false, on_done, x.got, NULL), 0);
	run_until_n(&x, 1);
	assert_int_equal(got_r(&x, 0), 0);
	assert_int_equal(json_array_size(x.d.requests), 1);
	req = json_array_get(x.d.requests, 0);
	assert_int_equal(json_array_size(json_object_get(req, "records")), PROTO_DICT_BATCH_MAX);
	free(rec);
	free(k);
	rig_close(&x);
}

static void test_store_bad_args(void **state)
{
	uint8_t k[CRYPTO_KEY_LEN] = {0};
	struct dictd_record *rec = calloc(PROTO_DICT_BATCH_MAX + 1, sizeof(*rec));
	struct ctl_call *c = (struct ctl_call *)&c;
	struct rig x;

	(void)state;
	assert_non_null(rec);
	for (size_t i = 0; i <= PROTO_DICT_BATCH_MAX; i++)
		rec[i] = (struct dictd_record){.name = "pi1", .index = (uint32_t)i, .key = k};
	rig_open(&x, true);
	assert_int_equal(dictd_client_store(x.dc, rec, 0, false, on_done, x.got, &c), -EINVAL);
	assert_int_equal(
	    dictd_client_store(x.dc, rec, PROTO_DICT_BATCH_MAX + 1, false, on_done, x.got, &c),
	    -EINVAL);
	assert_int_equal(dictd_client_store(x.dc, rec, SIZE_MAX, false, on_done, x.got, &c),
			 -EINVAL);
	assert_int_equal(dictd_client_store(x.dc, rec, 1, false, NULL, x.got, &c), -EINVAL);
	assert_ptr_equal(c, (struct ctl_call *)&c);
	loop_for(x.e, 50);
	assert_int_equal(json_array_size(x.d.requests), 0);
	assert_int_equal(json_array_size(x.got), 0);
	free(rec);
	rig_close(&x);
}

/* lookup: {"name","indices"} in the order given; the keys come back in that order. */
static void test_lookup(void **state)
{
	static const uint32_t idx[] = {5, 2, 9, UINT32_MAX, 0};
	struct asked a;
	struct rig x;

	(void)state;
	rig_open(&x, true);
	a = (struct asked){x.got, 5};
	assert_int_equal(dictd_client_lookup(x.dc, "pi1", idx, 5, on_keys, &a, NULL), 0);
	assert_int_equal(json_array_size(x.got), 0);
	run_until_n(&x, 1);
	expect_keys(&x, 0, 0, "pi1", idx, 5);
	expect_request(&x.d, PROTO_DICT_LOOKUP,
		       json_pack("{s:s, s:o}", "name", "pi1", "indices", indices_json(idx, 5)));
	a.n = 1;
	assert_int_equal(dictd_client_lookup(x.dc, "ctl1", idx + 2, 1, on_keys, &a, NULL), 0);
	run_until_n(&x, 2);
	expect_keys(&x, 1, 0, "ctl1", idx + 2, 1);
	expect_request(&x.d, PROTO_DICT_LOOKUP,
		       json_pack("{s:s, s:[i]}", "name", "ctl1", "indices", 9));
	rig_close(&x);
}

/* A key asked for that dictd does not have (it leaves it out): -ENOKEY, and no keys. */
static void test_lookup_missing(void **state)
{
	static const uint32_t some[] = {5, MISSING_FROM + 500, 9}, none[] = {MISSING_FROM};
	struct asked a;
	struct rig x;

	(void)state;
	rig_open(&x, true);
	a = (struct asked){x.got, 3};
	assert_int_equal(dictd_client_lookup(x.dc, "pi1", some, 3, on_keys, &a, NULL), 0);
	run_until_n(&x, 1);
	expect_keys(&x, 0, -ENOKEY, NULL, NULL, 0);
	a.n = 1;
	assert_int_equal(dictd_client_lookup(x.dc, "pi1", none, 1, on_keys, &a, NULL), 0);
	run_until_n(&x, 2);
	expect_keys(&x, 1, -ENOKEY, NULL, NULL, 0);
	rig_close(&x);
}

/* Answers that do not fit the question asked for [5, 2] of pi1. */
static void test_lookup_bad_answers(void **state)
{
	static const uint32_t idx[] = {5, 2};
	uint8_t shorter[CRYPTO_KEY_LEN - 1] = {1}, longer[CRYPTO_KEY_LEN + 1] = {1};
	char *k5 = key64_of("pi1", 5), *k2 = key64_of("pi1", 2);
	char *k31 = b64_encode(shorter, sizeof(shorter)), *k33 = b64_encode(longer, sizeof(longer));
	json_t *answers[] = {
	    /* the wrong order */
	    json_pack("{s:[{s:i, s:s}, {s:i, s:s}]}", "keys", "index", 2, "key", k2, "index", 5,
		      "key", k5),
	    /* one index twice */
	    json_pack("{s:[{s:i, s:s}, {s:i, s:s}]}", "keys", "index", 5, "key", k5, "index", 5,
		      "key", k5),
	    /* not base64 */
	    json_pack("{s:[{s:i, s:s}, {s:i, s:s}]}", "keys", "index", 5, "key", k5, "index", 2,
		      "key", "!!!!not*base64!!!!"),
	    /* base64 with a line break inside */
	    json_pack("{s:[{s:i, s:s}, {s:i, s:s}]}", "keys", "index", 5, "key",
		      "AAAAAAAAAAAAAAAAAAAAAAAAAAAA\nAAAAAAAAAAAAAAA=", "index", 2, "key", k2),
	    /* a key one byte short, one byte long */
	    json_pack("{s:[{s:i, s:s}, {s:i, s:s}]}", "keys", "index", 5, "key", k31, "index", 2,
		      "key", k2),
	    json_pack("{s:[{s:i, s:s}, {s:i, s:s}]}", "keys", "index", 5, "key", k5, "index", 2,
		      "key", k33),
	    /* a key that is not a string, or not there */
	    json_pack("{s:[{s:i, s:i}, {s:i, s:s}]}", "keys", "index", 5, "key", 5, "index", 2,
		      "key", k2),
	    json_pack("{s:[{s:i}, {s:i, s:s}]}", "keys", "index", 5, "index", 2, "key", k2),
	    /* an index that is not a number, or not there */
	    json_pack("{s:[{s:s, s:s}, {s:i, s:s}]}", "keys", "index", "5", "key", k5, "index", 2,
		      "key", k2),
	    json_pack("{s:[{s:s}, {s:i, s:s}]}", "keys", "key", k5, "index", 2, "key", k2),
	    /* entries that are not objects */
	    json_pack("{s:[s, s]}", "keys", k5, k2),
	};
	size_t n = sizeof(answers) / sizeof(answers[0]);
	struct asked a;
	struct rig x;

	(void)state;
	rig_open(&x, true);
	a = (struct asked){x.got, 2};
	for (size_t i = 0; i < n; i++) {
		json_decref(x.d.canned);
		x.d.canned = answers[i];
		assert_int_equal(dictd_client_lookup(x.dc, "pi1", idx, 2, on_keys, &a, NULL), 0);
		run_until_n(&x, i + 1);
		if (got_r(&x, i) != -EBADMSG)
			fail_msg("answer %zu: r %d", i, got_r(&x, i));
		expect_keys(&x, i, -EBADMSG, NULL, NULL, 0);
	}
	/* The right answer still works after all that. */
	json_decref(x.d.canned);
	x.d.canned = NULL;
	assert_int_equal(dictd_client_lookup(x.dc, "pi1", idx, 2, on_keys, &a, NULL), 0);
	run_until_n(&x, n + 1);
	expect_keys(&x, n, 0, "pi1", idx, 2);
	free(k5), free(k2), free(k31), free(k33);
	rig_close(&x);
}

/* More keys than asked, or no list of keys at all, is not "a key is missing" (-ENOKEY) but an
 * answer that does not fit the question (-EBADMSG, dictd_client.h). */
static void test_lookup_answer_not_fitting(void **state)
{
	static const uint32_t idx[] = {5};
	char *k5 = key64_of("pi1", 5), *k6 = key64_of("pi1", 6);
	json_t *answers[] = {
	    json_pack("{s:[{s:i, s:s}, {s:i, s:s}]}", "keys", "index", 5, "key", k5, "index", 6,
		      "key", k6),
	    json_pack("{s:i}", "stored", 1),
	    json_pack("{s:{s:i, s:s}}", "keys", "index", 5, "key", k5),
	};
	size_t n = sizeof(answers) / sizeof(answers[0]);
	struct asked a;
	struct rig x;

	(void)state;
	rig_open(&x, true);
	a = (struct asked){x.got, 1};
	for (size_t i = 0; i < n; i++) {
		json_decref(x.d.canned);
		x.d.canned = answers[i];
		assert_int_equal(dictd_client_lookup(x.dc, "pi1", idx, 1, on_keys, &a, NULL), 0);
		run_until_n(&x, i + 1);
		if (got_r(&x, i) != -EBADMSG)
			fail_msg("answer %zu: r %d, want -EBADMSG", i, got_r(&x, i));
	}
	free(k5), free(k6);
	rig_close(&x);
}

/* The most indices the contract allows in one lookup (PROTO_DICT_INDEX_MAX), each a large
 * index: dictd's answer with every key is still one answer the client can take. */
static void test_lookup_largest_batch(void **state)
{
	uint32_t *idx = calloc(PROTO_DICT_INDEX_MAX, sizeof(*idx));
	struct asked a;
	struct rig x;

	(void)state;
	assert_non_null(idx);
	for (uint32_t i = 0; i < PROTO_DICT_INDEX_MAX; i++)
		idx[i] = 4000000000u + i;
	rig_open(&x, true);
	a = (struct asked){x.got, PROTO_DICT_INDEX_MAX};
	assert_int_equal(
	    dictd_client_lookup(x.dc, "pi1", idx, PROTO_DICT_INDEX_MAX, on_keys, &a, NULL), 0);
	run_until_n(&x, 1);
	expect_keys(&x, 0, 0, "pi1", idx, PROTO_DICT_INDEX_MAX);
	free(idx);
	rig_close(&x);
}

static void test_lookup_has_bad_args(void **state)
{
	uint32_t *idx = calloc(PROTO_DICT_INDEX_MAX + 1, sizeof(*idx));
	struct ctl_call *c = (struct ctl_call *)&c;
	struct asked a;
	struct rig x;

	(void)state;
	assert_non_null(idx);
	rig_open(&x, true);
	a = (struct asked){x.got, 1};
	assert_int_equal(dictd_client_lookup(x.dc, "pi1", idx, 0, on_keys, &a, &c), -EINVAL);
	assert_int_equal(
	    dictd_client_lookup(x.dc, "pi1", idx, PROTO_DICT_INDEX_MAX + 1, on_keys, &a, &c),
	    -EINVAL);
	assert_int_equal(dictd_client_lookup(x.dc, "pi1", idx, SIZE_MAX, on_keys, &a, &c), -EINVAL);
	assert_int_equal(dictd_client_lookup(x.dc, "pi1", idx, 1, NULL, &a, &c), -EINVAL);
	assert_int_equal(dictd_client_has(x.dc, "pi1", idx, 0, on_count, x.got, &c), -EINVAL);
	assert_int_equal(
	    dictd_client_has(x.dc, "pi1", idx, PROTO_DICT_INDEX_MAX + 1, on_count, x.got, &c),
	    -EINVAL);
	assert_int_equal(dictd_client_has(x.dc, "pi1", idx, SIZE_MAX, on_count, x.got, &c),
			 -EINVAL);
	assert_int_equal(dictd_client_has(x.dc, "pi1", idx, 1, NULL, x.got, &c), -EINVAL);
	/* Records of two epochs have no "every other epoch" to cancel. */
	{
		uint8_t k2[2][CRYPTO_KEY_LEN] = {{0}};
		struct dictd_record two[2] = {
		    {.name = "pi1", .index = 1, .epoch = 1, .key = k2[0]},
		    {.name = "pi1", .index = 2, .epoch = 2, .key = k2[1]}};

		assert_int_equal(dictd_client_store(x.dc, two, 2, true, on_done, x.got, &c),
				 -EINVAL);
	}
	assert_ptr_equal(c, (struct ctl_call *)&c);
	loop_for(x.e, 50);
	assert_int_equal(json_array_size(x.d.requests), 0);
	assert_int_equal(json_array_size(x.got), 0);
	free(idx);
	rig_close(&x);
}

/* A device name is required: its absence is a bad argument, not a lack of memory. */
static void test_no_name(void **state)
{
	static const uint32_t idx[] = {5};
	uint8_t k[CRYPTO_KEY_LEN] = {0};
	struct dictd_record rec = {.name = NULL, .index = 1, .epoch = 1, .key = k};
	struct asked a;
	struct rig x;

	(void)state;
	rig_open(&x, true);
	a = (struct asked){x.got, 1};
	assert_int_equal(dictd_client_lookup(x.dc, NULL, idx, 1, on_keys, &a, NULL), -EINVAL);
	assert_int_equal(dictd_client_has(x.dc, NULL, idx, 1, on_count, x.got, NULL), -EINVAL);
	assert_int_equal(dictd_client_store(x.dc, &rec, 1, false, on_done, x.got, NULL), -EINVAL);
	loop_for(x.e, 30);
	assert_int_equal(json_array_size(x.d.requests), 0);
	assert_int_equal(json_array_size(x.got), 0);
	rig_close(&x);
}

/* has: how many of the keys asked for exist. */
static void test_has(void **state)
{
	static const uint32_t some[] = {1, 2, MISSING_FROM, UINT32_MAX},
			      none[] = {MISSING_FROM + 1};
	struct rig x;

	(void)state;
	rig_open(&x, true);
	assert_int_equal(dictd_client_has(x.dc, "pi2", some, 4, on_count, x.got, NULL), 0);
	run_until_n(&x, 1);
	assert_int_equal(got_r(&x, 0), 0);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(x.got, 0), "present")),
			 3);
	expect_request(&x.d, PROTO_DICT_HAS,
		       json_pack("{s:s, s:o}", "name", "pi2", "indices", indices_json(some, 4)));
	assert_int_equal(dictd_client_has(x.dc, "pi2", none, 1, on_count, x.got, NULL), 0);
	run_until_n(&x, 2);
	assert_int_equal(got_r(&x, 1), 0);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(x.got, 1), "present")),
			 0);
	expect_request(
	    &x.d, PROTO_DICT_HAS,
	    json_pack("{s:s, s:[I]}", "name", "pi2", "indices", (json_int_t)(MISSING_FROM + 1)));
	rig_close(&x);
}

/* Answers to has [1, 2] that cannot be counted: -EBADMSG and a count of 0. */
static void test_has_bad_answers(void **state)
{
	static const uint32_t idx[] = {1, 2};
	json_t *answers[] = {
	    json_pack("{s:[i, i, i]}", "present", 1, 2, 3),
	    json_pack("{s:i}", "present", 2),
	    json_pack("{s:s}", "present", "1,2"),
	    json_pack("{s:{s:i}}", "present", "1", 1),
	    json_pack("{s:[i]}", "keys", 1),
	};
	size_t n = sizeof(answers) / sizeof(answers[0]);
	struct rig x;

	(void)state;
	rig_open(&x, true);
	for (size_t i = 0; i < n; i++) {
		json_decref(x.d.canned);
		x.d.canned = answers[i];
		assert_int_equal(dictd_client_has(x.dc, "pi1", idx, 2, on_count, x.got, NULL), 0);
		run_until_n(&x, i + 1);
		if (got_r(&x, i) != -EBADMSG)
			fail_msg("answer %zu: r %d", i, got_r(&x, i));
		assert_int_equal(
		    json_integer_value(json_object_get(json_array_get(x.got, i), "present")), 0);
	}
	rig_close(&x);
}

/* "present" lists which of the indices asked exist: an index not asked, the same one twice or
 * something that is not an index does not fit the question. */
static void test_has_answer_not_fitting(void **state)
{
	static const uint32_t idx[] = {1, 2};
	json_t *answers[] = {
	    json_pack("{s:[i]}", "present", 7),
	    json_pack("{s:[i, i]}", "present", 1, 1),
	    json_pack("{s:[s]}", "present", "1"),
	};
	size_t n = sizeof(answers) / sizeof(answers[0]);
	struct rig x;

	(void)state;
	rig_open(&x, true);
	for (size_t i = 0; i < n; i++) {
		json_decref(x.d.canned);
		x.d.canned = answers[i];
		assert_int_equal(dictd_client_has(x.dc, "pi1", idx, 2, on_count, x.got, NULL), 0);
		run_until_n(&x, i + 1);
		if (got_r(&x, i) != -EBADMSG)
			fail_msg("answer %zu: r %d, want -EBADMSG", i, got_r(&x, i));
	}
	rig_close(&x);
}

/* With cancel_others, the store asks dictd to cancel every other epoch in the same save. */
static void test_store_cancel_others(void **state)
{
	static const uint32_t epochs[] = {7, 0, UINT32_MAX};
	uint8_t k[CRYPTO_KEY_LEN];
	struct rig x;

	(void)state;
	rig_open(&x, true);
	for (size_t i = 0; i < 3; i++) {
		struct dictd_record rec = {
		    .name = "-ring", .index = 4, .epoch = epochs[i], .key = k};

		char *k64 = key64_of("-ring", 4);

		key_of(rec.name, rec.index, k);
		assert_int_equal(dictd_client_store(x.dc, &rec, 1, true, on_done, x.got, NULL), 0);
		run_until_n(&x, i + 1);
		assert_int_equal(got_r(&x, i), 0);
		expect_request(&x.d, PROTO_DICT_STORE,
			       json_pack("{s:[{s:s, s:i, s:I, s:s}], s:b}", "records", "name",
					 "-ring", "index", 4, "epoch", (json_int_t)epochs[i], "key",
					 k64, "cancel_others", 1));
		free(k64);
	}
	rig_close(&x);
}

/* Whatever dictd's reason for refusing (locked, not allowed, a bad request), the caller hears
 * -EACCES, from every verb. */
static void test_refused(void **state)
{
	static const int reasons[] = {-ENOLCK, -EPERM, -EINVAL};
	static const uint32_t idx[] = {5};
	uint8_t k[CRYPTO_KEY_LEN] = {0};
	struct dictd_record rec = {.name = "pi1", .index = 5, .epoch = 1, .key = k};
	struct asked a;
	struct rig x;
	size_t n = 0;

	(void)state;
	rig_open(&x, true);
	a = (struct asked){x.got, 1};
	for (size_t i = 0; i < 3; i++) {
		x.d.refuse = reasons[i];
		assert_int_equal(dictd_client_store(x.dc, &rec, 1, false, on_done, x.got, NULL), 0);
		assert_int_equal(dictd_client_lookup(x.dc, "pi1", idx, 1, on_keys, &a, NULL), 0);
		assert_int_equal(dictd_client_has(x.dc, "pi1", idx, 1, on_count, x.got, NULL), 0);
		assert_int_equal(dictd_client_store(x.dc, &rec, 1, true, on_done, x.got, NULL), 0);
		n += 4;
		run_until_n(&x, n);
		for (size_t j = n - 4; j < n; j++)
			if (got_r(&x, j) != -EACCES)
				fail_msg("callback %zu: r %d", j, got_r(&x, j));
		expect_keys(&x, n - 3, -EACCES, NULL, NULL, 0);
	}
	rig_close(&x);
}

/* dictd not running: every call returns -ENOTCONN and never calls back; once dictd starts the
 * client reaches it by itself. */
static void test_dictd_away(void **state)
{
	static const uint32_t idx[] = {5};
	uint8_t k[CRYPTO_KEY_LEN] = {0};
	struct dictd_record rec = {.name = "pi1", .index = 5, .epoch = 1, .key = k};
	struct ctl_call *c = (struct ctl_call *)&c;
	struct asked a;
	struct rig x;
	int r = -ENOTCONN;
	int64_t end;

	(void)state;
	rig_open(&x, false);
	a = (struct asked){x.got, 1};
	assert_int_equal(dictd_client_store(x.dc, &rec, 1, false, on_done, x.got, &c), -ENOTCONN);
	assert_int_equal(dictd_client_lookup(x.dc, "pi1", idx, 1, on_keys, &a, &c), -ENOTCONN);
	assert_int_equal(dictd_client_has(x.dc, "pi1", idx, 1, on_count, x.got, &c), -ENOTCONN);
	assert_int_equal(dictd_client_store(x.dc, &rec, 1, true, on_done, x.got, &c), -ENOTCONN);
	assert_ptr_equal(c, (struct ctl_call *)&c);
	loop_for(x.e, 100);
	assert_int_equal(json_array_size(x.got), 0);

	dictd_start(x.e, &x.d);
	end = mono_ms() + DICTD_CLIENT_RETRY_MS + WAIT_MS;
	while (r == -ENOTCONN && mono_ms() < end) {
		loop_for(x.e, 20);
		r = dictd_client_has(x.dc, "pi1", idx, 1, on_count, x.got, NULL);
	}
	assert_int_equal(r, 0);
	run_until_n(&x, 1);
	assert_int_equal(got_r(&x, 0), 0);
	rig_close(&x);
}

/* Callback i of got was -ECANCELED with nothing: no keys, no count. */
static void expect_cancelled(json_t *got, size_t i)
{
	json_t *o = json_array_get(got, i), *v;
	const char *field;

	if (o == NULL)
		fail_msg("no callback %zu", i);
	assert_int_equal(json_integer_value(json_object_get(o, "r")), -ECANCELED);
	json_object_foreach(o, field, v)
	{
		if (strcmp(field, "keys") == 0)
			assert_true(json_is_null(v));
		else if (strcmp(field, "present") == 0)
			assert_int_equal(json_integer_value(v), 0);
		else
			assert_string_equal(field, "r");
	}
}

/* A call cancelled with ctl_call_cancel() on its handle, before or after its request went out:
 * its callback runs at once with -ECANCELED, and never again when dictd's answer comes; the
 * other calls are answered. */
static void test_cancel_call(void **state)
{
	static const uint32_t idx[] = {5};
	uint8_t k[CRYPTO_KEY_LEN] = {0};
	struct dictd_record rec = {.name = "pi1", .index = 5, .epoch = 1, .key = k};
	struct ctl_call *lookup = NULL, *has = NULL, *store = NULL, *cancel = NULL;
	json_t *dropped = json_array();
	struct asked a;
	struct rig x;

	(void)state;
	rig_open(&x, true);
	a = (struct asked){dropped, 1};
	dictd_pause(&x.d, true);
	assert_int_equal(dictd_client_lookup(x.dc, "pi1", idx, 1, on_keys, &a, &lookup), 0);
	assert_int_equal(dictd_client_has(x.dc, "pi1", idx, 1, on_count, dropped, &has), 0);
	assert_int_equal(dictd_client_store(x.dc, &rec, 1, true, on_done, x.got, &cancel), 0);
	assert_int_equal(dictd_client_store(x.dc, &rec, 1, false, on_done, dropped, &store), 0);
	assert_non_null(lookup), assert_non_null(has), assert_non_null(store);
	assert_non_null(cancel);
	/* The store is cancelled before it was sent; the others once they wait, sent and
	 * unanswered. */
	ctl_call_cancel(store);
	assert_int_equal(json_array_size(dropped), 1);
	expect_cancelled(dropped, 0);
	loop_for(x.e, 30);
	assert_int_equal(json_array_size(dropped), 1);
	ctl_call_cancel(lookup);
	ctl_call_cancel(has);
	assert_int_equal(json_array_size(dropped), 3);
	expect_cancelled(dropped, 1);
	expect_cancelled(dropped, 2);
	assert_int_equal(json_array_size(x.got), 0);
	dictd_pause(&x.d, false);
	run_until_n(&x, 1);
	assert_int_equal(got_r(&x, 0), 0);
	loop_for(x.e, 50);
	assert_int_equal(json_array_size(dropped), 3);
	/* dictd heard all four; only the cancel's answer had anyone to go to. */
	assert_int_equal(json_array_size(x.d.requests), 4);
	json_decref(dropped);
	rig_close(&x);
}

/* dictd_client_free() with calls waiting (sent, or not even sent): each callback runs once, then
 * and there, with -ECANCELED; none later. */
static void test_free_with_calls_waiting(void **state)
{
	static const uint32_t idx[] = {5};
	uint8_t k[CRYPTO_KEY_LEN] = {0};
	struct dictd_record rec = {.name = "pi1", .index = 5, .epoch = 1, .key = k};
	struct asked a;
	struct rig x;

	(void)state;
	rig_open(&x, true);
	a = (struct asked){x.got, 1};
	dictd_pause(&x.d, true);
	assert_int_equal(dictd_client_store(x.dc, &rec, 1, false, on_done, x.got, NULL), 0);
	assert_int_equal(dictd_client_lookup(x.dc, "pi1", idx, 1, on_keys, &a, NULL), 0);
	assert_int_equal(dictd_client_has(x.dc, "pi1", idx, 1, on_count, x.got, NULL), 0);
	assert_int_equal(dictd_client_store(x.dc, &rec, 1, true, on_done, x.got, NULL), 0);
	loop_for(x.e, 30);
	assert_int_equal(json_array_size(x.d.requests), 0);
	/* One more that has not even been sent. */
	assert_int_equal(dictd_client_has(x.dc, "pi1", idx, 1, on_count, x.got, NULL), 0);
	assert_int_equal(json_array_size(x.got), 0);
	dictd_client_free(x.dc);
	x.dc = NULL;
	assert_int_equal(json_array_size(x.got), 5);
	for (size_t i = 0; i < 5; i++)
		expect_cancelled(x.got, i);
	dictd_pause(&x.d, false);
	loop_for(x.e, 100);
	assert_int_equal(json_array_size(x.got), 5);
	rig_close(&x);
}

/* dictd going away with a call waiting: -ECONNRESET, and no keys. */
static void test_connection_lost(void **state)
{
	static const uint32_t idx[] = {5};
	uint8_t k[CRYPTO_KEY_LEN] = {0};
	struct dictd_record rec = {.name = "pi1", .index = 5, .epoch = 1, .key = k};
	struct asked a;
	struct rig x;

	(void)state;
	rig_open(&x, true);
	a = (struct asked){x.got, 1};
	dictd_pause(&x.d, true);
	assert_int_equal(dictd_client_lookup(x.dc, "pi1", idx, 1, on_keys, &a, NULL), 0);
	assert_int_equal(dictd_client_store(x.dc, &rec, 1, true, on_done, x.got, NULL), 0);
	loop_for(x.e, 30);
	assert_int_equal(json_array_size(x.got), 0);
	dictd_stop(&x.d);
	run_until_n(&x, 2);
	for (size_t i = 0; i < 2; i++) {
		json_t *o = json_array_get(x.got, i);

		assert_int_equal(got_r(&x, i), -ECONNRESET);
		/* The lookup's callback is the one with "keys": there are none. */
		if (json_object_get(o, "keys"))
			assert_true(json_is_null(json_object_get(o, "keys")));
	}
	rig_close(&x);
}

/* Each case starts without a dictd, whatever a failed case before it left behind. */
static int no_dictd(void **state)
{
	(void)state;
	unlink(in_dir("dictd/dictd.sock"));
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_new_bad_args, no_dictd),
	    cmocka_unit_test_setup(test_store, no_dictd),
	    cmocka_unit_test_setup(test_store_largest_batch, no_dictd),
	    cmocka_unit_test_setup(test_store_bad_args, no_dictd),
	    cmocka_unit_test_setup(test_lookup, no_dictd),
	    cmocka_unit_test_setup(test_lookup_missing, no_dictd),
	    cmocka_unit_test_setup(test_lookup_bad_answers, no_dictd),
	    cmocka_unit_test_setup(test_lookup_answer_not_fitting, no_dictd),
	    cmocka_unit_test_setup(test_lookup_largest_batch, no_dictd),
	    cmocka_unit_test_setup(test_lookup_has_bad_args, no_dictd),
	    cmocka_unit_test_setup(test_no_name, no_dictd),
	    cmocka_unit_test_setup(test_has, no_dictd),
	    cmocka_unit_test_setup(test_has_bad_answers, no_dictd),
	    cmocka_unit_test_setup(test_has_answer_not_fitting, no_dictd),
	    cmocka_unit_test_setup(test_store_cancel_others, no_dictd),
	    cmocka_unit_test_setup(test_refused, no_dictd),
	    cmocka_unit_test_setup(test_dictd_away, no_dictd),
	    cmocka_unit_test_setup(test_cancel_call, no_dictd),
	    cmocka_unit_test_setup(test_free_with_calls_waiting, no_dictd),
	    cmocka_unit_test_setup(test_connection_lost, no_dictd),
	};

	signal(SIGPIPE, SIG_IGN);
	/* As the daemons do: jansson wipes what it frees (keys travel as base64 strings). */
	crypto_wipe_json();
	return cmocka_run_group_tests(tests, scratch_setup, scratch_teardown);
}
