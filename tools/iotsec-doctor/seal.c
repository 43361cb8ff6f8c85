/* The envelopes a doctor signs (envelope.h): to a kit, its grant and its acknowledgements, and to
 * the relay, its login. */
#include <errno.h>
#include <stdlib.h>

#include "doctor.h"
#include "iotsec-doctor.h"
#include "receipt.h"

/* As the kit's and the relay's tables have them. A kit judges a grant or an acknowledgement by
 * its body (issued, seq), not by the time: either may wait retained on the broker or queued on
 * the relay. A login is fresh by ts, and its delivery id is the relay's one-use nonce. */
const struct envelope_rule doctor_rules[] = {
    {DOCTOR_MSG_GRANT, CERT_ROLE_DOCTOR, true, true},
    {DOCTOR_MSG_ACK, CERT_ROLE_DOCTOR, true, true},
    {RELAY_MSG_LOGIN, CERT_ROLE_DOCTOR, true, false},
    {NULL, 0, false, false},
};

int doctor_seal(struct doctor_dir *d, const char *type, const char *to, const char *id,
		json_t *body, char **ret, size_t *ret_len)
{
	struct envelope_ctx *ctx = NULL;
	char fresh[ENVELOPE_ID_MAX + 1];
	int r;

	if ((r = envelope_ctx_new(NULL, d->cert, d->key, doctor_rules, 60, &ctx)) < 0)
		goto out;
	if (id == NULL && (r = envelope_new_id(fresh)) < 0)
		goto out;
	/* The certificate travels: neither the kit nor the relay need have seen it. */
	r = envelope_seal(ctx, type, to, id ? id : fresh, body, true, ret, ret_len);
out:
	envelope_ctx_free(ctx);
	return r;
}
