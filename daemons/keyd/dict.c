/* keyd reaches keys only through iotsec-dictd's control verbs (SPEC 5.4). The calls are local,
 * short and bounded by DICT_TIMEOUT_MS. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "encoding.h"
#include "keyd.h"
#include "log.h"

#define DICT_TIMEOUT_MS 2000

/* One request to dictd, reconnecting once if the connection went away. */
static int call(struct keyd *k, const char *verb, json_t *args, json_t **ret)
{
	char path[PATH_MAX];
	json_t *reply = NULL;
	int r = 0;

	for (int attempt = 0; attempt < 2; attempt++) {
		if (k->dict == NULL && ((r = daemon_socket_path(k->cfg->device.run_dir, "dictd",
								path, sizeof(path))) < 0 ||
					(r = ctl_client_connect(path, &k->dict)) < 0))
			return r;
		if ((r = ctl_client_call(k->dict, verb, args, DICT_TIMEOUT_MS, &reply)) == 0)
			break;
		ctl_client_free(k->dict);
		k->dict = NULL;
	}
	if (r < 0)
		return r;
	if (ctl_reply_error(reply)) {
		log_debug("dictd refused %s: %s", verb, ctl_reply_error(reply));
		json_decref(reply);
		return -EACCES;
	}
	*ret = reply;
	return 0;
}

int keyd_dict_store(struct keyd *k, const char *name, uint32_t index, uint32_t epoch,
		    const uint8_t key[CRYPTO_KEY_LEN])
{
	char *key64 = b64_encode(key, CRYPTO_KEY_LEN);
	json_t *args = NULL, *reply = NULL;
	int r = -ENOMEM;

	if (key64 &&
	    (args = json_pack("{s:s, s:I, s:I, s:s}", "name", name, "index", (json_int_t)index,
			      "epoch", (json_int_t)epoch, "key", key64)) != NULL)
		r = call(k, "store", args, &reply);
	if (key64)
		crypto_wipe(key64, strlen(key64));
	free(key64);
	/* The request text held the key too: wipe it before it is freed. */
	if (args)
		json_string_set(json_object_get(args, "key"), "");
	json_decref(args);
	json_decref(reply);
	return r;
}

/* All n keys or an error: a pairwise key needs every shared key. */
int keyd_dict_lookup(struct keyd *k, const char *name, const uint32_t *index, size_t n,
		     uint8_t (*ret_keys)[CRYPTO_KEY_LEN])
{
	json_t *args = json_pack("{s:s, s:[]}", "name", name, "indices"), *reply = NULL, *keys, *v;
	size_t i, found = 0;
	int r = -ENOMEM;

	for (i = 0; args && i < n; i++)
		json_array_append_new(json_object_get(args, "indices"), json_integer(index[i]));
	if (args == NULL || (r = call(k, "lookup", args, &reply)) < 0)
		goto out;
	r = -ENOKEY;
	keys = json_object_get(reply, "keys");
	if (json_array_size(keys) != n)
		goto out;
	json_array_foreach(keys, i, v)
	{
		json_int_t idx = json_integer_value(json_object_get(v, "index"));
		const char *key64 = json_string_value(json_object_get(v, "key"));

		/* dictd answers in the order asked. */
		if (idx != (json_int_t)index[i] || key64 == NULL ||
		    b64_decode_exact(key64, ret_keys[i], CRYPTO_KEY_LEN) < 0)
			goto out;
		found++;
	}
	r = 0;
out:
	if (r < 0 && found)
		crypto_wipe(ret_keys, found * CRYPTO_KEY_LEN);
	json_decref(args);
	json_decref(reply);
	return r;
}

int keyd_dict_cancel_before(struct keyd *k, uint32_t epoch)
{
	json_t *args = json_pack("{s:I}", "epoch_below", (json_int_t)epoch), *reply = NULL;
	int r = args ? call(k, "cancel", args, &reply) : -ENOMEM;

	json_decref(args);
	json_decref(reply);
	return r;
}
