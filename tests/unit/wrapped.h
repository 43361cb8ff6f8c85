/* Real wrapped secrets for the tables of body tests (doctor, resync, ring): a template's "$X"
 * stands for one of them, so that a table can name a wrapped value the way it names any other
 * field. The secret is CRYPTO_KEY_LEN bytes of 0x42 unless said otherwise:
 *   $W wrapped to ours         $O wrapped to other          $T $W's blob cut short by a byte
 *   $S a 31-byte secret        $L a 33-byte secret          $P the secret in base64, not wrapped
 *   $B base64 of more bytes than RING_WRAPPED_MAX
 * Every failure is a cmocka assertion. */
#ifndef IOTSEC_TEST_WRAPPED_H
#define IOTSEC_TEST_WRAPPED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "fixture.h"

/* A cmocka group set-up's work: the test home in *fx (fixture.h), pi1's key in *ret_ours and
 * pi2's in *ret_other, and the values above for them. 0 on success. */
int wrapped_setup(struct fixture *fx, EVP_PKEY **ret_ours, EVP_PKEY **ret_other);
/* The matching group tear-down: frees all of it and removes the home. */
int wrapped_teardown(void **state);
/* The template with each $X replaced, parsed as JSON (NUL escapes allowed, so that the parser
 * sees them). */
json_t *wrapped_body(const char *tmpl);

/* Whether all len bytes at p are b. */
bool wrapped_all_bytes(const void *p, size_t len, uint8_t b);

/* A row of a body table: kind is the table's own enum. */
struct wrapped_row {
	int kind;
	const char *tmpl;
	int want;
};

/* A table's parser: kind is the table's own enum, out its own union of outputs. */
typedef int wrapped_parse_fn(int kind, json_t *body, void *out);
/* Case i of a body table: tmpl's body parsed by parse into out (size bytes, filled with 0xa5
 * first). Fails the test unless parse returns want, and unless a failed parse left out as it
 * was. Returns parse's result. */
int wrapped_case(size_t i, const char *tmpl, int want, wrapped_parse_fn *parse, int kind, void *out,
		 size_t size);
/* Every row of a table through wrapped_case(), out (size bytes) holding its result; a row that
 * parses goes on to check(kind, out), which builds it again and compares. Fails unless at least
 * as many rows are refused as parse. */
void wrapped_table(const struct wrapped_row *rows, size_t n, wrapped_parse_fn *parse,
		   void (*check)(int kind, void *out), void *out, size_t size);

#endif
