#include "body.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ca.h"
#include "encoding.h"
#include "ring.h"

/* The base64 text of n bytes, with its padding. */
#define B64_LEN(n) (4 * (((n) + 2) / 3))

bool body_fields(json_t *o, size_t n)
{
	return json_is_object(o) && json_object_size(o) == n;
}

bool body_int(json_t *o, const char *field, int64_t lo, int64_t hi, int64_t *out)
{
	json_t *v = json_object_get(o, field);
	json_int_t x;

	if (!json_is_integer(v))
		return false;
	x = json_integer_value(v);
	if (x < lo || x > hi)
		return false;
	*out = x;
	return true;
}

bool body_u32(json_t *o, const char *field, uint32_t lo, uint32_t hi, uint32_t *out)
{
	int64_t x;

	if (!body_int(o, field, lo, hi, &x))
		return false;
	*out = (uint32_t)x;
	return true;
}

/* The text of a string with no embedded NUL (which would make C see a shorter one than was
 * sent), at most max bytes; NULL otherwise. */
static const char *text_of(json_t *v, size_t max)
{
	if (!json_is_string(v) || json_string_length(v) > max ||
	    strlen(json_string_value(v)) != json_string_length(v))
		return NULL;
	return json_string_value(v);
}

bool body_name(json_t *o, const char *field, char out[CERT_NAME_MAX])
{
	const char *s = text_of(json_object_get(o, field), CERT_NAME_MAX - 1);

	if (s == NULL || !ca_name_valid(s))
		return false;
	memcpy(out, s, strlen(s) + 1);
	return true;
}

bool body_bytes(json_t *o, const char *field, void *out, size_t len)
{
	const char *s = text_of(json_object_get(o, field), B64_LEN(len));

	return s != NULL && b64_decode_exact(s, out, len) == 0;
}

int body_key_wrap(EVP_PKEY *pub, const uint8_t key[CRYPTO_KEY_LEN], char **ret)
{
	EVP_PKEY_CTX *ctx = pub ? crypto_rsa_wrap_ctx(pub) : NULL;
	uint8_t *blob = NULL;
	char *text = NULL;
	size_t len = 0;
	int r = -EINVAL;

	if (ctx == NULL)
		goto out;
	if ((r = crypto_rsa_wrap(ctx, key, CRYPTO_KEY_LEN, &blob, &len)) < 0)
		goto out;
	r = -EMSGSIZE;
	if (len > RING_WRAPPED_MAX) /* no peer of ours would take it */
		goto out;
	r = -ENOMEM;
	if ((text = b64_encode(blob, len)) == NULL)
		goto out;
	*ret = text;
	r = 0;
out:
	free(blob);
	EVP_PKEY_CTX_free(ctx);
	return r;
}

int body_key_unwrap(json_t *o, const char *field, EVP_PKEY *priv, uint8_t ret[CRYPTO_KEY_LEN])
{
	return body_key_unwrap_value(json_object_get(o, field), priv, ret);
}

int body_key_unwrap_value(json_t *v, EVP_PKEY *priv, uint8_t ret[CRYPTO_KEY_LEN])
{
	const char *text = text_of(v, B64_LEN(RING_WRAPPED_MAX));
	uint8_t *blob = NULL, plain[RING_WRAPPED_MAX];
	size_t len = 0, plen = 0;
	int r = -EBADMSG;

	if (text == NULL || priv == NULL)
		goto out;
	if ((r = b64_decode(text, &blob, &len)) < 0)
		goto out;
	r = -EBADMSG;
	if (len == 0 || len > RING_WRAPPED_MAX)
		goto out;
	if ((r = crypto_rsa_unwrap(priv, blob, len, plain, sizeof(plain), &plen)) < 0)
		goto out;
	r = -EBADMSG;
	if (plen != CRYPTO_KEY_LEN)
		goto out;
	memcpy(ret, plain, CRYPTO_KEY_LEN);
	r = 0;
out:
	crypto_wipe(plain, sizeof(plain));
	free(blob);
	return r == -ENOMEM ? r : r < 0 ? -EBADMSG : 0;
}
