/* Text encodings for bytes in JSON: standard base64 (with padding) and lower-case hex.
 * Never use these on secrets meant for a log: log.h has no way to print bytes on purpose. */
#ifndef IOTSEC_ENCODING_H
#define IOTSEC_ENCODING_H

#include <stddef.h>
#include <stdint.h>

/* Returns a malloc'd NUL-terminated string, or NULL on allocation failure. */
char *b64_encode(const void *data, size_t len);
/* Strict: rejects whitespace, bad characters, bad padding and non-canonical trailing bits.
 * *ret is malloc'd (never NULL on success, even for empty input). -EBADMSG on bad input. */
int b64_decode(const char *text, uint8_t **ret, size_t *ret_len);
/* Decodes into a caller buffer; -EMSGSIZE when the result would not be exactly len bytes. */
int b64_decode_exact(const char *text, void *out, size_t len);

/* out must hold 2 * len + 1 bytes. */
void hex_encode(const void *data, size_t len, char *out);
/* Exactly 2 * len hex digits, either case; -EBADMSG otherwise. */
int hex_decode(const char *text, void *out, size_t len);

#endif
