#include "fuzzlib.h"

#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "encoding.h"

void fuzz_untouched(const void *p, size_t len)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < len; i++)
		if (b[i] != 0xa5)
			abort();
}

char *fuzz_expand(const uint8_t *data, size_t size, char letter, const char *value, size_t max,
		  size_t *ret_len)
{
	size_t n = 0, len = 0, vlen = strlen(value);
	char *out;

	for (size_t i = 0; i + 1 < size; i++)
		if (data[i] == '$' && data[i + 1] == (uint8_t)letter)
			n++;
	if (n > max)
		n = max;
	if ((out = malloc(size + n * vlen + 1)) == NULL)
		abort();
	for (size_t i = 0; i < size; i++) {
		if (n > 0 && i + 1 < size && data[i] == '$' && data[i + 1] == (uint8_t)letter) {
			memcpy(out + len, value, vlen);
			len += vlen, i++, n--;
		} else {
			out[len++] = (char)data[i];
		}
	}
	out[len] = '\0';
	*ret_len = len;
	return out;
}

json_t *fuzz_json(const uint8_t *data, size_t size, char letter, const char *value, size_t max)
{
	size_t len;
	char *text = fuzz_expand(data, size, letter, value, max, &len);
	json_t *j = json_loadb(text, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);

	free(text);
	return j;
}

char *fuzz_wrapped_key(EVP_PKEY **ret_key)
{
	uint8_t secret[CRYPTO_KEY_LEN] = {1, 2, 3}, *blob = NULL;
	EVP_PKEY_CTX *wrap = NULL;
	char *wrapped = NULL;
	size_t len;

	if (crypto_rsa_generate(2048, ret_key) < 0 ||
	    (wrap = crypto_rsa_wrap_ctx(*ret_key)) == NULL ||
	    crypto_rsa_wrap(wrap, secret, sizeof(secret), &blob, &len) < 0 ||
	    (wrapped = b64_encode(blob, len)) == NULL)
		abort();
	EVP_PKEY_CTX_free(wrap);
	free(blob);
	return wrapped;
}
