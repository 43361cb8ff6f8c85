#include "dictd_client.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "encoding.h"
#include "log.h"
#include "proto.h"

struct dictd_client {
	struct ctl_peer *peer;
};

/* What one call must remember until its reply. */
struct pending {
	union {
		dictd_done_fn done;
		dictd_keys_fn keys;
		dictd_count_fn count;
	} fn;
	void *userdata;
	size_t n;
	uint32_t index[]; /* lookup: the indices asked for, to check the answer's order */
};

int dictd_client_new(sd_event *e, const char *run_dir, struct dictd_client **ret)
{
	struct dictd_client *dc;
	char path[PATH_MAX];
	int r;

	if ((r = daemon_socket_path(run_dir, "dictd", path, sizeof(path))) < 0)
		return r;
	if ((dc = calloc(1, sizeof(*dc))) == NULL)
		return -ENOMEM;
	if ((r = ctl_peer_new(e, path, DICTD_CLIENT_RETRY_MS, NULL, NULL, NULL, &dc->peer)) < 0) {
		free(dc);
		return r;
	}
	*ret = dc;
	return 0;
}

void dictd_client_free(struct dictd_client *dc)
{
	if (dc == NULL)
		return;
	ctl_peer_free(dc->peer); /* ends every call with -ECANCELED */
	free(dc);
}

/* dictd's refusals become -EACCES: the caller cannot do better by knowing the text. */
static int outcome(int r, json_t *reply)
{
	if (r == -EPROTO) {
		log_debug("dictd refused: %s", ctl_reply_error(reply));
		return -EACCES;
	}
	return r;
}

static struct pending *pending_new(const uint32_t *index, size_t n, void *userdata)
{
	struct pending *p = calloc(1, sizeof(*p) + (index ? n * sizeof(uint32_t) : 0));

	if (p == NULL)
		return NULL;
	p->userdata = userdata;
	p->n = n;
	if (index)
		memcpy(p->index, index, n * sizeof(uint32_t));
	return p;
}

static int call(struct dictd_client *dc, const char *verb, json_t *args, ctl_reply_fn fn,
		struct pending *p, struct ctl_call **ret_call)
{
	int r = args ? ctl_peer_call(dc->peer, verb, args, DICTD_CLIENT_TIMEOUT_MS, fn, p, ret_call)
		     : -ENOMEM;

	if (r < 0)
		free(p);
	json_decref(args);
	return r;
}

static void on_done(int r, json_t *reply, void *userdata)
{
	struct pending *p = userdata;

	p->fn.done(outcome(r, reply), p->userdata);
	free(p);
}

int dictd_client_store(struct dictd_client *dc, const struct dictd_record *rec, size_t n,
		       bool cancel_others, dictd_done_fn fn, void *userdata,
		       struct ctl_call **ret_call)
{
	json_t *args = NULL, *list = json_array(), *o;
	struct pending *p = NULL;
	char *key64 = NULL;
	int r = -ENOMEM;

	if (n == 0 || n > PROTO_DICT_BATCH_MAX || fn == NULL) {
		r = -EINVAL;
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		if (rec[i].name == NULL || rec[i].key == NULL ||
		    (cancel_others && rec[i].epoch != rec[0].epoch)) {
			r = -EINVAL;
			goto out;
		}
	for (size_t i = 0; list && i < n; i++) {
		if ((key64 = b64_encode(rec[i].key, CRYPTO_KEY_LEN)) == NULL ||
		    (o = json_pack("{s:s, s:I, s:I, s:s}", "name", rec[i].name, "index",
				   (json_int_t)rec[i].index, "epoch", (json_int_t)rec[i].epoch,
				   "key", key64)) == NULL ||
		    json_array_append_new(list, o) < 0 ||
		    (rec[i].expires &&
		     json_object_set_new(o, "expires", json_integer(rec[i].expires)) < 0))
			goto out;
		crypto_wipe(key64, strlen(key64));
		free(key64);
		key64 = NULL;
	}
	if ((args = json_pack("{s:O}", "records", list)) == NULL ||
	    (cancel_others && json_object_set_new(args, "cancel_others", json_true()) < 0) ||
	    (p = pending_new(NULL, n, userdata)) == NULL)
		goto out;
	p->fn.done = fn;
	r = call(dc, PROTO_DICT_STORE, args, on_done, p, ret_call);
	args = NULL, p = NULL;
out:
	if (key64)
		crypto_wipe(key64, strlen(key64));
	free(key64);
	free(p);
	json_decref(args);
	json_decref(list); /* the key strings are wiped when freed: see crypto_wipe_json() */
	return r;
}

static json_t *indices_args(const char *name, const uint32_t *index, size_t n)
{
	json_t *args = json_pack("{s:s, s:[]}", "name", name, "indices"), *list;

	list = json_object_get(args, "indices");
	for (size_t i = 0; args && i < n; i++)
		if (json_array_append_new(list, json_integer(index[i])) < 0) {
			json_decref(args);
			return NULL;
		}
	return args;
}

static void on_keys(int r, json_t *reply, void *userdata)
{
	struct pending *p = userdata;
	json_t *keys = json_object_get(reply, "keys"), *v;
	uint8_t(*out)[CRYPTO_KEY_LEN] = NULL;
	size_t i;

	r = outcome(r, reply);
	if (r == 0 && (!json_is_array(keys) || json_array_size(keys) > p->n))
		r = -EBADMSG;
	else if (r == 0 && json_array_size(keys) < p->n)
		r = -ENOKEY; /* dictd leaves out what it does not have */
	if (r == 0 && (out = calloc(p->n, CRYPTO_KEY_LEN)) == NULL)
		r = -ENOMEM;
	json_array_foreach(r == 0 ? keys : NULL, i, v)
	{
		const char *key64 = json_string_value(json_object_get(v, "key"));

		/* dictd answers in the order asked. */
		if (json_integer_value(json_object_get(v, "index")) != (json_int_t)p->index[i] ||
		    key64 == NULL || b64_decode_exact(key64, out[i], CRYPTO_KEY_LEN) < 0) {
			r = -EBADMSG;
			break;
		}
	}
	p->fn.keys(r, r == 0 ? (const uint8_t(*)[CRYPTO_KEY_LEN])out : NULL, p->userdata);
	if (out)
		crypto_wipe(out, p->n * CRYPTO_KEY_LEN);
	free(out);
	free(p);
}

int dictd_client_lookup(struct dictd_client *dc, const char *name, const uint32_t *index, size_t n,
			dictd_keys_fn fn, void *userdata, struct ctl_call **ret_call)
{
	struct pending *p;

	if (n == 0 || n > PROTO_DICT_INDEX_MAX || fn == NULL || name == NULL)
		return -EINVAL;
	if ((p = pending_new(index, n, userdata)) == NULL)
		return -ENOMEM;
	p->fn.keys = fn;
	return call(dc, PROTO_DICT_LOOKUP, indices_args(name, index, n), on_keys, p, ret_call);
}

/* Each entry of present is one of the indices asked, at most once. */
static bool present_fits(const struct pending *p, json_t *present)
{
	bool seen[PROTO_DICT_INDEX_MAX] = {false};
	json_t *v;
	size_t i, j;

	if (!json_is_array(present) || json_array_size(present) > p->n)
		return false;
	json_array_foreach(present, i, v)
	{
		for (j = 0; j < p->n; j++)
			if (json_is_integer(v) &&
			    json_integer_value(v) == (json_int_t)p->index[j] && !seen[j])
				break;
		if (j == p->n)
			return false;
		seen[j] = true;
	}
	return true;
}

static void on_count(int r, json_t *reply, void *userdata)
{
	struct pending *p = userdata;
	json_t *present = json_object_get(reply, "present");

	r = outcome(r, reply);
	if (r == 0 && !present_fits(p, present))
		r = -EBADMSG;
	p->fn.count(r, r == 0 ? json_array_size(present) : 0, p->userdata);
	free(p);
}

int dictd_client_has(struct dictd_client *dc, const char *name, const uint32_t *index, size_t n,
		     dictd_count_fn fn, void *userdata, struct ctl_call **ret_call)
{
	struct pending *p;

	if (n == 0 || n > PROTO_DICT_INDEX_MAX || fn == NULL || name == NULL)
		return -EINVAL;
	if ((p = pending_new(index, n, userdata)) == NULL)
		return -ENOMEM;
	p->fn.count = fn;
	return call(dc, PROTO_DICT_HAS, indices_args(name, index, n), on_count, p, ret_call);
}
