/* What the libFuzzer targets share: the check that a failed parse left its output alone, the
 * expansion of a placeholder in the input into a real value (so that the fuzzer reaches the
 * success paths the value guards), and a real RSA key with a key wrapped to it. Every failure
 * aborts, which is how a target reports one. */
#ifndef IOTSEC_FUZZ_FUZZLIB_H
#define IOTSEC_FUZZ_FUZZLIB_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

/* Aborts unless all len bytes at p are still 0xa5, what the targets fill outputs with. */
void fuzz_untouched(const void *p, size_t len);
/* The input with "$" letter replaced by value, at most max times; NUL-terminated, length in
 * *ret_len. The caller frees it. */
char *fuzz_expand(const uint8_t *data, size_t size, char letter, const char *value, size_t max,
		  size_t *ret_len);
/* The input, expanded as by fuzz_expand(), parsed as JSON (NUL escapes allowed, so that the
 * parsers see them); NULL where it is not JSON. */
json_t *fuzz_json(const uint8_t *data, size_t size, char letter, const char *value, size_t max);
/* A new RSA-2048 key in *ret_key, and base64 of a key wrapped to it (the caller keeps both). */
char *fuzz_wrapped_key(EVP_PKEY **ret_key);

#endif
