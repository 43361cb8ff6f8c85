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
#include "fixture.h"
#include "ring.h"

/* secret (len bytes) wrapped to `to`, its blob cut short by `cut` bytes, in base64. */
static char *wrapped_b64(EVP_PKEY *to, const void *secret, size_t len, size_t cut)
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

/* The letters a template may follow '$' with, and their values in that order. */
static const char subst[] = "WOTSLPB";
static char *values[sizeof(subst) - 1];
/* What wrapped_setup() made, for wrapped_teardown(). */
static struct fixture *home;
static EVP_PKEY *ours, *other;

int wrapped_setup(struct fixture *fx, EVP_PKEY **ret_ours, EVP_PKEY **ret_other)
{
	/* One byte more than a key: $L takes it. */
	uint8_t k[CRYPTO_KEY_LEN + 1], big[RING_WRAPPED_MAX + 1];

	memset(k, 0x42, sizeof(k));
	memset(big, 0x17, sizeof(big));
	if (fixture_home(fx) < 0)
		return -1;
	home = fx;
	ours = fixture_key(fx, "pi1");
	other = fixture_key(fx, "pi2");
	values[0] = wrapped_b64(ours, k, CRYPTO_KEY_LEN, 0);
	values[1] = wrapped_b64(other, k, CRYPTO_KEY_LEN, 0);
	values[2] = wrapped_b64(ours, k, CRYPTO_KEY_LEN, 1);
	values[3] = wrapped_b64(ours, k, CRYPTO_KEY_LEN - 1, 0);
	values[4] = wrapped_b64(ours, k, CRYPTO_KEY_LEN + 1, 0);
	values[5] = b64_encode(k, CRYPTO_KEY_LEN);
	values[6] = b64_encode(big, sizeof(big));
	assert_non_null(values[5]);
	assert_non_null(values[6]);
	*ret_ours = ours;
	*ret_other = other;
	return 0;
}

int wrapped_teardown(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		free(values[i]);
		values[i] = NULL;
	}
	EVP_PKEY_free(ours);
	EVP_PKEY_free(other);
	ours = other = NULL;
	if (home != NULL)
		fixture_remove(home);
	home = NULL;
	return 0;
}

/* The value of the substitution p starts, or NULL where it starts none. */
static const char *value_at(const char *p)
{
	const char *x = p[0] == '$' && p[1] ? strchr(subst, p[1]) : NULL;

	return x == NULL ? NULL : values[x - subst];
}

json_t *wrapped_body(const char *tmpl)
{
	size_t size = 1;
	char *text, *o;
	json_t *j;

	/* Sized exactly, in a first pass, so that no template is too long for it. */
	for (const char *p = tmpl; *p; p++) {
		const char *v = value_at(p);

		size += v != NULL ? strlen(v) : 1;
		p += v != NULL;
	}
	text = o = malloc(size);
	assert_non_null(text);
	for (const char *p = tmpl; *p; p++) {
		const char *v = value_at(p);

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

bool wrapped_all_bytes(const void *p, size_t len, uint8_t b)
{
	const uint8_t *x = p;

	for (size_t i = 0; i < len; i++)
		if (x[i] != b)
			return false;
	return true;
}

int wrapped_case(size_t i, const char *tmpl, int want, wrapped_parse_fn *parse, int kind, void *out,
		 size_t size)
{
	json_t *body = wrapped_body(tmpl);
	int r;

	memset(out, 0xa5, size);
	r = parse(kind, body, out);
	json_decref(body);
	if (r != want)
		fail_msg("case %zu (%s): got %d, want %d", i, tmpl, r, want);
	if (r < 0 && !wrapped_all_bytes(out, size, 0xa5))
		fail_msg("case %zu: output written on failure", i);
	return r;
}

void wrapped_table(const struct wrapped_row *rows, size_t n, wrapped_parse_fn *parse,
		   void (*check)(int kind, void *out), void *out, size_t size)
{
	size_t good = 0, bad = 0;

	for (size_t i = 0; i < n; i++) {
		if (wrapped_case(i, rows[i].tmpl, rows[i].want, parse, rows[i].kind, out, size) <
		    0) {
			bad++;
			continue;
		}
		good++;
		check(rows[i].kind, out);
	}
	assert_true(bad >= good);
}
