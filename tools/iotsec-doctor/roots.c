/* The roots this doctor granted, and opening a kit's sealed readings with them (SPEC 8): each
 * reading's stream id names its root, the key of its epoch is computed from the root (the doctor
 * keeps it, so readings fetched days later still open), and what opens must be the kit's. */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "body.h"
#include "encoding.h"
#include "file.h"
#include "iotsec-doctor.h"
#include "log.h"

int doctor_roots_load(const char *cmd, const char *dir, struct doctor_roots *ret)
{
	char path[4096];
	struct root_slot *slots = NULL;
	size_t n = 0;
	struct dirent *de;
	DIR *dp;
	int r;

	snprintf(path, sizeof(path), "%.*s/roots", DOCTOR_DIR_MAX, dir);
	if ((dp = opendir(path)) == NULL) {
		fprintf(stderr, "iotsec-doctor %s: %s: %s (no grant made yet?)\n", cmd, path,
			strerror(errno));
		return -1;
	}
	if ((slots = calloc(DOCTOR_ROOTS_MAX, sizeof(*slots))) == NULL) {
		fprintf(stderr, "iotsec-doctor %s: %s\n", cmd, strerror(ENOMEM));
		closedir(dp);
		return -1;
	}
	while ((de = readdir(dp)) != NULL && n < DOCTOR_ROOTS_MAX) {
		size_t len = strlen(de->d_name);

		if (len < 6 || de->d_name[0] == '.' || strcmp(de->d_name + len - 5, ".json") != 0)
			continue;
		snprintf(path, sizeof(path), "%.*s/roots/%.255s", DOCTOR_DIR_MAX, dir, de->d_name);
		if ((r = doctor_root_load(path, &slots[n].rt)) < 0) {
			fprintf(stderr, "iotsec-doctor %s: skipping %s: %s\n", cmd, path,
				r == -EBADMSG ? "not a root file" : iotsec_strerror(r));
			continue;
		}
		n++;
	}
	closedir(dp);
	ret->slots = slots, ret->n = n;
	return 0;
}

void doctor_roots_free(struct doctor_roots *r)
{
	for (size_t i = 0; r->slots && i < r->n; i++) {
		stream_free(r->slots[i].s);
		crypto_wipe(&r->slots[i].rt, sizeof(r->slots[i].rt));
	}
	free(r->slots);
	r->slots = NULL;
	r->n = 0;
}

struct root_slot *doctor_roots_find(struct doctor_roots *r, const uint8_t id[STREAM_ID_LEN])
{
	for (size_t i = 0; i < r->n; i++)
		if (memcmp(r->slots[i].rt.id, id, STREAM_ID_LEN) == 0)
			return &r->slots[i];
	return NULL;
}

int doctor_roots_keep(struct doctor_roots *r, const char *dir, const struct doctor_root *rt)
{
	char roots[4096], path[4096], hex[2 * STREAM_ID_LEN + 1];
	int e;

	if (r->n >= DOCTOR_ROOTS_MAX)
		return -ENOBUFS;
	hex_encode(rt->id, STREAM_ID_LEN, hex);
	snprintf(roots, sizeof(roots), "%.*s/roots", DOCTOR_DIR_MAX, dir);
	/* KIT.json is what ack looks for: a doctor on a new machine gets it back with the first
	 * root the relay returns; any other goes beside it under its stream id. */
	snprintf(path, sizeof(path), "%.1100s/%.63s.json", roots, rt->kit);
	if (access(path, F_OK) == 0)
		snprintf(path, sizeof(path), "%.1100s/%.63s.%s.json", roots, rt->kit, hex);
	if ((e = file_mkdirs(roots, 0700)) < 0 || (e = doctor_root_save(path, rt)) < 0)
		return e;
	r->slots[r->n].rt = *rt;
	r->slots[r->n].s = NULL;
	r->n++;
	return 0;
}

/* The stream of slot at epoch e: the key of e, computed from the root. */
static int stream_at(struct root_slot *slot, uint32_t e, struct stream **ret)
{
	uint8_t key[CRYPTO_KEY_LEN];
	int r;

	if (slot->s && stream_current(slot->s) == e) {
		*ret = slot->s;
		return 0;
	}
	stream_free(slot->s);
	slot->s = NULL;
	if ((r = stream_key_at(slot->rt.root, slot->rt.start, e, key)) == 0 &&
	    (r = stream_from_key(slot->rt.id, e, key, NULL, &slot->s)) == 0)
		*ret = slot->s;
	crypto_wipe(key, sizeof(key));
	return r;
}

int doctor_open(struct doctor_roots *roots, const uint8_t *buf, size_t len,
		struct root_slot **ret_slot, struct reading_header *ret_h,
		struct reading_value *ret_v, const char **ret_why)
{
	uint8_t pt[READING_PLAIN_MAX];
	struct reading_header h, opened;
	struct reading_value v;
	struct root_slot *slot;
	struct stream *s = NULL;
	size_t hlen, ptlen = 0;
	int r;

	*ret_why = NULL;
	if ((r = reading_header_parse(buf, len, &h, &hlen)) < 0) {
		*ret_why = "not a sealed reading (malformed header)";
		return r;
	}
	if ((slot = doctor_roots_find(roots, h.stream)) == NULL) {
		*ret_why = h.kind == READING_DOCTOR ? "of a stream this doctor did not grant"
						    : "not a doctor stream (the home's group)";
		return -ENOKEY;
	}
	if (h.epoch < slot->rt.start) {
		*ret_why = "of an epoch before the grant's start";
		return -ERANGE;
	}
	if ((r = stream_at(slot, h.epoch, &s)) < 0)
		return r;
	if ((r = reading_open(s, buf, len, &opened, pt, &ptlen)) < 0) {
		*ret_why = r == -EBADMSG ? "does not open (forged, damaged or another key)" : NULL;
		return r;
	}
	r = reading_value_parse(pt, ptlen, &v);
	crypto_wipe(pt, sizeof(pt));
	if (r < 0) {
		*ret_why = "opens, but its record is malformed";
		return r;
	}
	/* Only the kit and this doctor hold the key: a reading in another name is not the kit's. */
	if (strcmp(opened.device, slot->rt.kit) != 0) {
		*ret_why = "sealed in the name of another device than the kit granted";
		return -IOTSEC_EIDENTITY;
	}
	if (v.emergency != ((opened.flags & READING_F_EMERGENCY) != 0)) {
		*ret_why = "its emergency flag and its record disagree";
		return -EBADMSG;
	}
	*ret_slot = slot, *ret_h = opened, *ret_v = v;
	return 0;
}

/* {"kit":K,"start":e0,"root":"<b64>"} fits one RSA-2048 OAEP-SHA256 block (190 bytes): a kit
 * name is at most 63 characters. */
#define WRAPPED_PLAIN_MAX 256

int doctor_wrapped_build(EVP_PKEY *pub, const struct doctor_root *rt, char **ret)
{
	EVP_PKEY_CTX *ctx = NULL;
	char *root = NULL, *text = NULL, *b64 = NULL;
	uint8_t *blob = NULL;
	size_t blob_len;
	json_t *o = NULL;
	int r = -ENOMEM;

	if ((root = b64_encode(rt->root, CRYPTO_KEY_LEN)) == NULL ||
	    (o = json_pack("{s:s, s:I, s:s}", "kit", rt->kit, "start", (json_int_t)rt->start,
			   "root", root)) == NULL ||
	    (text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER)) == NULL)
		goto out;
	if ((ctx = crypto_rsa_wrap_ctx(pub)) == NULL) {
		r = -EINVAL;
		goto out;
	}
	if ((r = crypto_rsa_wrap(ctx, text, strlen(text), &blob, &blob_len)) < 0)
		goto out;
	r = -ENOMEM;
	if ((b64 = b64_encode(blob, blob_len)) == NULL)
		goto out;
	*ret = b64;
	r = 0;
out:
	EVP_PKEY_CTX_free(ctx);
	free(blob);
	crypto_wipe_free(text);
	crypto_wipe_free(root);
	json_decref(o);
	return r;
}

int doctor_wrapped_open(EVP_PKEY *priv, const char *b64, struct doctor_root *ret)
{
	struct doctor_root rt = {0};
	uint8_t *blob = NULL;
	char plain[WRAPPED_PLAIN_MAX + 1];
	size_t blob_len = 0, len = 0;
	json_t *o = NULL;
	int r = -EBADMSG;

	/* Two RSA-4096 blocks at most: the doctor's key is 2048 bits. */
	if (b64 == NULL || strlen(b64) > 1024 || b64_decode(b64, &blob, &blob_len) < 0)
		goto out;
	if ((r = crypto_rsa_unwrap(priv, blob, blob_len, plain, WRAPPED_PLAIN_MAX, &len)) < 0) {
		r = -EBADMSG;
		goto out;
	}
	plain[len] = '\0';
	r = -EBADMSG;
	if (memchr(plain, '\0', len) != NULL ||
	    (o = json_loadb(plain, len, JSON_REJECT_DUPLICATES, NULL)) == NULL ||
	    !body_fields(o, 3) || !body_name(o, "kit", rt.kit) ||
	    !body_u32(o, "start", 1, UINT32_MAX, &rt.start) ||
	    !body_bytes(o, "root", rt.root, CRYPTO_KEY_LEN))
		goto out;
	if ((r = stream_id(rt.root, rt.id)) < 0)
		goto out;
	*ret = rt;
	r = 0;
out:
	crypto_wipe(plain, sizeof(plain));
	crypto_wipe(&rt, sizeof(rt));
	free(blob);
	json_decref(o);
	return r;
}
