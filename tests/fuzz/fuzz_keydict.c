/* libFuzzer target: keydict_parse() on arbitrary bytes. Most inputs stop at the file MAC; the
 * fuzzer also gets a valid MAC over its own bytes so the JSON and record parsers are reached. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "encoding.h"
#include "keydict.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t dict_key[CRYPTO_KEY_LEN] = {42};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t file_key[CRYPTO_KEY_LEN], mac[CRYPTO_SHA256_LEN];
	struct keydict *d = NULL;
	char hex[2 * CRYPTO_SHA256_LEN + 1], *buf;

	if (keydict_parse(dict_key, data, size, &d) == 0)
		keydict_free(d);
	if (size > KEYDICT_FILE_MAX - 128)
		return 0;

	/* The same bytes as the body of a correctly authenticated file. */
	if (crypto_hkdf_sha256(NULL, 0, dict_key, sizeof(dict_key), "iotsec dict file", 16,
			       file_key, sizeof(file_key)) < 0 ||
	    crypto_hmac_sha256(file_key, sizeof(file_key), data, size, mac) < 0)
		return 0;
	hex_encode(mac, sizeof(mac), hex);
	if ((buf = malloc(size + 72)) == NULL)
		return 0;
	if (size)
		memcpy(buf, data, size);
	memcpy(buf + size, "\nhmac ", 6);
	memcpy(buf + size + 6, hex, 64);
	buf[size + 70] = '\n';
	d = NULL;
	if (keydict_parse(dict_key, buf, size + 71, &d) == 0)
		keydict_free(d);
	free(buf);
	return 0;
}
