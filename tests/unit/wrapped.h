/* Real wrapped secrets for the tables of body tests (doctor, resync, ring): a template's "$X"
 * stands for one of them, so that a table can name a wrapped value the way it names any other
 * field. The secret is CRYPTO_KEY_LEN bytes of 0x42 unless said otherwise:
 *   $W wrapped to ours         $O wrapped to other          $T $W's blob cut short by a byte
 *   $S a 31-byte secret        $L a 33-byte secret          $P the secret in base64, not wrapped
 *   $B base64 of more bytes than RING_WRAPPED_MAX
 * Every failure is a cmocka assertion. */
#ifndef IOTSEC_TEST_WRAPPED_H
#define IOTSEC_TEST_WRAPPED_H

#include <stddef.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "fixture.h"

#define WRAPPED_N 7

struct wrapped {
	EVP_PKEY *ours, *other; /* pi1's and pi2's keys, once wrapped_home() made them */
	char *b64[WRAPPED_N];	/* in the order of WRAPPED_SUBST */
};

/* The letters a template may follow '$' with. */
#define WRAPPED_SUBST "WOTSLPB"

/* secret (len bytes) wrapped to `to`, its blob cut short by `cut` bytes, in base64. */
char *wrapped_b64(EVP_PKEY *to, const void *secret, size_t len, size_t cut);
/* Fills w with the values above for the two keys (the caller keeps them). */
void wrapped_make(struct wrapped *w, EVP_PKEY *ours, EVP_PKEY *other);
void wrapped_free(struct wrapped *w);
/* The test home (fixture.h) and, with pi1 as ours and pi2 as other, all of the above: a group
 * set-up's work. 0 on success; wrapped_home_remove() undoes it. */
int wrapped_home(struct wrapped *w, struct fixture *fx);
void wrapped_home_remove(struct wrapped *w, struct fixture *fx);
/* The template with each $X replaced, parsed as JSON (NUL escapes allowed, so that the parser
 * sees them). */
json_t *wrapped_body(const struct wrapped *w, const char *tmpl);

#endif
