#include "doctor.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "body.h"
#include "ca.h"

/* An emergency record's seq is at least 1 and fits the JSON integer. */
#define SEQ_MAX ((uint64_t)INT64_MAX)

int doctor_grant_build(const struct doctor_grant *g, EVP_PKEY *kit_pub, json_t **ret)
{
	char *root = NULL;
	json_t *o = NULL;
	int r = -EINVAL;

	if (strnlen(g->kit, CERT_NAME_MAX) == CERT_NAME_MAX || !ca_name_valid(g->kit) ||
	    g->start == 0 || g->issued_ms < 0)
		goto out;
	if ((r = body_key_wrap(kit_pub, g->root, &root)) < 0)
		goto out;
	r = -ENOMEM;
	if ((o = json_pack("{s:s, s:I, s:I, s:s}", "kit", g->kit, "start", (json_int_t)g->start,
			   "issued", (json_int_t)g->issued_ms, "root", root)) == NULL)
		goto out;
	*ret = o;
	r = 0;
out:
	free(root);
	return r;
}

int doctor_grant_parse(json_t *body, EVP_PKEY *kit_priv, struct doctor_grant *ret)
{
	struct doctor_grant g;
	int r = -EBADMSG;

	memset(&g, 0, sizeof(g));
	if (!body_fields(body, 4) || !body_name(body, "kit", g.kit) ||
	    !body_u32(body, "start", 1, UINT32_MAX, &g.start) ||
	    !body_int(body, "issued", 0, INT64_MAX, &g.issued_ms))
		goto out;
	/* Last: the one costly step, only for a body that is otherwise right. */
	if ((r = body_key_unwrap(body, "root", kit_priv, g.root)) < 0)
		goto out;
	*ret = g;
	r = 0;
out:
	crypto_wipe(&g, sizeof(g));
	return r;
}

int doctor_ack_build(const char *kit, uint64_t seq, json_t **ret)
{
	json_t *o;

	if (kit == NULL || strnlen(kit, CERT_NAME_MAX) == CERT_NAME_MAX || !ca_name_valid(kit) ||
	    seq == 0 || seq > SEQ_MAX)
		return -EINVAL;
	if ((o = json_pack("{s:s, s:I}", "kit", kit, "seq", (json_int_t)seq)) == NULL)
		return -ENOMEM;
	*ret = o;
	return 0;
}

int doctor_ack_parse(json_t *body, char ret_kit[CERT_NAME_MAX], uint64_t *ret_seq)
{
	char kit[CERT_NAME_MAX];
	int64_t seq;

	if (!body_fields(body, 2) || !body_name(body, "kit", kit) ||
	    !body_int(body, "seq", 1, INT64_MAX, &seq))
		return -EBADMSG;
	memcpy(ret_kit, kit, strlen(kit) + 1);
	*ret_seq = (uint64_t)seq;
	return 0;
}
