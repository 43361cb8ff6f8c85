#include "encoding.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

/* EVP_EncodeBlock and EVP_DecodeBlock take an int length: work in chunks well below that,
 * whole groups at a time (3 bytes in, 4 characters out). */
#define B64_CHUNK_IN  (3u << 20)
#define B64_CHUNK_OUT (4u << 20)

char *b64_encode(const void *data, size_t len)
{
	const unsigned char *in = data;
	char *text, *p;

	if (len > (SIZE_MAX - 1) / 4 * 3 - 3)
		return NULL;
	if ((text = malloc((len + 2) / 3 * 4 + 1)) == NULL)
		return NULL;
	p = text;
	*p = '\0';
	while (len > 0) {
		size_t n = len < B64_CHUNK_IN ? len : B64_CHUNK_IN;

		p += EVP_EncodeBlock((unsigned char *)p, in, (int)n); /* NUL-terminates */
		in += n;
		len -= n;
	}
	return text;
}

/* The value of a base64 character, or -1 for anything outside the standard alphabet ('=' too). */
static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Checks what EVP_DecodeBlock lets through (whitespace, padding anywhere, stray bits) and
 * returns the number of padding characters, or -EBADMSG. */
static int b64_check(const char *text, size_t n)
{
	size_t pad = 0;
	int last;

	if (n % 4 != 0)
		return -EBADMSG;
	if (n == 0)
		return 0;
	if (text[n - 1] == '=')
		pad = text[n - 2] == '=' ? 2 : 1;
	for (size_t i = 0; i < n - pad; i++)
		if (b64_value((unsigned char)text[i]) < 0)
			return -EBADMSG;
	/* Canonical: bits past the last whole byte are zero, so each input has one encoding. */
	last = b64_value((unsigned char)text[n - pad - 1]);
	if ((pad == 2 && (last & 0x0f) != 0) || (pad == 1 && (last & 0x03) != 0))
		return -EBADMSG;
	return (int)pad;
}

int b64_decode(const char *text, uint8_t **ret, size_t *ret_len)
{
	size_t n = strlen(text), done = 0, outlen = 0;
	uint8_t *out;
	int pad;

	if ((pad = b64_check(text, n)) < 0)
		return pad;
	/* EVP_DecodeBlock writes a zero byte for each '=' as well, hence the whole groups. */
	if ((out = malloc(n / 4 * 3 + 1)) == NULL)
		return -ENOMEM;
	while (done < n) {
		size_t chunk = n - done < B64_CHUNK_OUT ? n - done : B64_CHUNK_OUT;
		int got =
		    EVP_DecodeBlock(out + outlen, (const unsigned char *)text + done, (int)chunk);

		if (got < 0 || (size_t)got != chunk / 4 * 3) {
			explicit_bzero(out, n / 4 * 3 + 1);
			free(out);
			return -EBADMSG;
		}
		done += chunk;
		outlen += (size_t)got;
	}
	*ret = out;
	*ret_len = outlen - (size_t)pad;
	return 0;
}

/* Decoded material is often a key: the scratch copy is wiped. */
int b64_decode_exact(const char *text, void *out, size_t len)
{
	uint8_t *buf = NULL;
	size_t got = 0;
	int r;

	if ((r = b64_decode(text, &buf, &got)) < 0)
		return r;
	if (got == len)
		memcpy(out, buf, len);
	else
		r = -EMSGSIZE;
	explicit_bzero(buf, got);
	free(buf);
	return r;
}

void hex_encode(const void *data, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	const uint8_t *p = data;

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 0x0f];
	}
	out[2 * len] = '\0';
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Checks every digit before writing any, so out is untouched on bad input. */
int hex_decode(const char *text, void *out, size_t len)
{
	uint8_t *p = out;

	if (strnlen(text, 2 * len + 1) != 2 * len)
		return -EBADMSG;
	for (size_t i = 0; i < 2 * len; i++)
		if (hex_value(text[i]) < 0)
			return -EBADMSG;
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(hex_value(text[2 * i]) << 4 | hex_value(text[2 * i + 1]));
	return 0;
}
