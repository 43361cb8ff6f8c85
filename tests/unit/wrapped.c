#include "wrapped.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "crypto.h"
#include "encoding.h"
#include "ring.h"

char *wrapped_b64(EVP_PKEY *to, const void *secret, size_t len, size_t cut)
{
	EVP_PKEY_CTX *wrap = crypto_rsa_wrap_ctx(to);
	uint8_t *blob = NULL;
	size_t blen = 0;
	char *text;

	assert_non_null(wrap);
	assert_int_equal(crypto_rsa_wrap(wrap, secret, len, &blob, &blen), 0);
	EVP_PKEY_CTX_free(wrap);
	text = b64_encode(blob, blen - cut);
	assert_non_null(text);
	free(blob);
	return text;
}

void wrapped_make(struct wrapped *w, EVP_PKEY *ours, EVP_PKEY *other)
{
	/* One byte more than a key: $L takes it. */
	uint8_t k[CRYPTO_KEY_LEN + 1], big[RING_WRAPPED_MAX + 1];

	memset(k, 0x42, sizeof(k));
	memset(big, 0x17, sizeof(big));
	w->b64[0] = wrapped_b64(ours, k, CRYPTO_KEY_LEN, 0);
	w->b64[1] = wrapped_b64(other, k, CRYPTO_KEY_LEN, 0);
	w->b64[2] = wrapped_b64(ours, k, CRYPTO_KEY_LEN, 1);
	w->b64[3] = wrapped_b64(ours, k, CRYPTO_KEY_LEN - 1, 0);
	w->b64[4] = wrapped_b64(ours, k, CRYPTO_KEY_LEN + 1, 0);
	w->b64[5] = b64_encode(k, CRYPTO_KEY_LEN);
	w->b64[6] = b64_encode(big, sizeof(big));
	assert_non_null(w->b64[5]);
	assert_non_null(w->b64[6]);
}

void wrapped_free(struct wrapped *w)
{
	for (size_t i = 0; i < WRAPPED_N; i++) {
		free(w->b64[i]);
		w->b64[i] = NULL;
	}
}

int wrapped_home(struct wrapped *w, struct fixture *fx)
{
	if (fixture_home(fx) < 0)
		return -1;
	w->ours = fixture_key(fx, "pi1");
	w->other = fixture_key(fx, "pi2");
	wrapped_make(w, w->ours, w->other);
	return 0;
}

void wrapped_home_remove(struct wrapped *w, struct fixture *fx)
{
	wrapped_free(w);
	EVP_PKEY_free(w->ours);
	EVP_PKEY_free(w->other);
	w->ours = w->other = NULL;
	fixture_remove(fx);
}

/* The letter's value after a '$' at p, or NULL where p starts no substitution. */
static const char *value_at(const struct wrapped *w, const char *p)
{
	const char *x = p[0] == '$' && p[1] ? strchr(WRAPPED_SUBST, p[1]) : NULL;

	return x == NULL ? NULL : w->b64[x - WRAPPED_SUBST];
}

json_t *wrapped_body(const struct wrapped *w, const char *tmpl)
{
	size_t size = 1;
	char *text, *o;
	json_t *j;

	/* Sized exactly, in a first pass, so that no template is too long for it. */
	for (const char *p = tmpl; *p; p++) {
		const char *v = value_at(w, p);

		size += v != NULL ? strlen(v) : 1;
		p += v != NULL;
	}
	text = o = malloc(size);
	assert_non_null(text);
	for (const char *p = tmpl; *p; p++) {
		const char *v = value_at(w, p);

		if (v != NULL) {
			strcpy(o, v);
			o += strlen(o), p++;
		} else {
			*o++ = *p;
		}
	}
	*o = 0;
	j = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
	free(text);
	assert_non_null(j);
	return j;
}
