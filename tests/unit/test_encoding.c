/* encoding: RFC 4648 base64 both ways, and every non-canonical or malformed text refused with
 * the output untouched; hex in either case, exact lengths only. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "encoding.h"

/* RFC 4648 section 10. */
static const struct {
	const char *bin, *b64;
} rfc4648[] = {
    {"", ""},
    {"f", "Zg=="},
    {"fo", "Zm8="},
    {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="},
    {"fooba", "Zm9vYmE="},
    {"foobar", "Zm9vYmFy"},
};

static void test_b64_encode_rfc4648(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(rfc4648) / sizeof(rfc4648[0]); i++) {
		char *text = b64_encode(rfc4648[i].bin, strlen(rfc4648[i].bin));

		assert_non_null(text);
		assert_string_equal(text, rfc4648[i].b64);
		free(text);
	}
}

static void test_b64_decode_rfc4648(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(rfc4648) / sizeof(rfc4648[0]); i++) {
		uint8_t *out = NULL;
		size_t len = 99;

		assert_int_equal(b64_decode(rfc4648[i].b64, &out, &len), 0);
		assert_non_null(out);
		assert_int_equal(len, strlen(rfc4648[i].bin));
		assert_memory_equal(out, rfc4648[i].bin, len);
		free(out);
	}
}

/* Every byte value and every length modulo 3, through both directions. */
static void test_b64_round_trip(void **state)
{
	uint8_t data[300];

	(void)state;
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(255 - i);
	for (size_t n = 0; n <= sizeof(data); n += 37) {
		uint8_t *out = NULL;
		size_t len = 0;
		char *text = b64_encode(data, n);

		assert_non_null(text);
		assert_int_equal(strlen(text), (n + 2) / 3 * 4);
		assert_int_equal(b64_decode(text, &out, &len), 0);
		assert_int_equal(len, n);
		assert_memory_equal(out, data, n);
		free(out);
		free(text);
	}
}

static const struct {
	const char *text, *why;
} b64_bad[] = {
    {"Zg=", "length 3"},
    {"Z", "length 1"},
    {"Zm9vY", "length 5"},
    {"=", "padding alone"},
    {"==", "padding alone, length 2"},
    {"====", "a group of padding"},
    {"Zg==Zg==", "padding inside"},
    {"=Zg=", "padding first"},
    {"Z===", "three padding characters"},
    {"Zm9v=Zg=", "padding in the middle of a group"},
    {"Zg=a", "data after padding"},
    {" Zm9v", "leading space"},
    {"Zm9v ", "trailing space"},
    {"Zm9v\n", "trailing newline"},
    {"Zm 9v", "inner space"},
    {"Zm\t9v", "inner tab"},
    {"Zm9v\r\n", "CRLF"},
    {"Zm9-", "base64url '-'"},
    {"Zm9_", "base64url '_'"},
    {"Zm9v.A==", "'.'"},
    {"\xffZg=", "a byte above ASCII"},
    {"Zh==", "non-canonical \"Zg==\""},
    {"Zm9=", "non-canonical \"Zm8=\""},
    {"Zm9vYh==", "non-canonical \"Zm9vYg==\""},
    {"Zm9vYmF=", "non-canonical \"Zm9vYmE=\""},
};

static void test_b64_decode_refuses_bad_text(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(b64_bad) / sizeof(b64_bad[0]); i++) {
		uint8_t *out = (uint8_t *)&out;
		size_t len = 77;

		if (b64_decode(b64_bad[i].text, &out, &len) != -EBADMSG)
			fail_msg("accepted bad base64: %s", b64_bad[i].why);
		assert_ptr_equal(out, (uint8_t *)&out);
		assert_int_equal(len, 77);
	}
}

static void test_b64_decode_stops_at_nul(void **state)
{
	uint8_t *out = NULL;
	size_t len = 0;

	(void)state;
	assert_int_equal(b64_decode("Zg==\0Zg==", &out, &len), 0);
	assert_int_equal(len, 1);
	assert_int_equal(out[0], 'f');
	free(out);
}

static void test_b64_canonical_neighbours_accepted(void **state)
{
	uint8_t *out = NULL;
	size_t len = 0;

	(void)state;
	/* The canonical forms of the refused "Zh==" and "Zm9=". */
	assert_int_equal(b64_decode("Zg==", &out, &len), 0);
	free(out);
	assert_int_equal(b64_decode("Zm8=", &out, &len), 0);
	assert_int_equal(len, 2);
	assert_memory_equal(out, "fo", 2);
	free(out);
	assert_int_equal(b64_decode("+/+/", &out, &len), 0);
	assert_int_equal(len, 3);
	assert_memory_equal(out, "\xfb\xff\xbf", 3);
	free(out);
}

static void test_b64_decode_exact(void **state)
{
	uint8_t out[6];

	(void)state;
	memset(out, 0xaa, sizeof(out));
	assert_int_equal(b64_decode_exact("Zm9vYmFy", out, 6), 0);
	assert_memory_equal(out, "foobar", 6);
	assert_int_equal(b64_decode_exact("", out, 0), 0);
}

static void test_b64_decode_exact_refuses(void **state)
{
	uint8_t out[8];

	(void)state;
	memset(out, 0xaa, sizeof(out));
	assert_int_equal(b64_decode_exact("Zm9vYmFy", out, 5), -EMSGSIZE);
	assert_int_equal(b64_decode_exact("Zm9vYmFy", out, 7), -EMSGSIZE);
	assert_int_equal(b64_decode_exact("", out, 1), -EMSGSIZE);
	assert_int_equal(b64_decode_exact("Zm9vYmF", out, 5), -EBADMSG);
	assert_int_equal(b64_decode_exact("Zh==", out, 1), -EBADMSG);
	assert_int_equal(b64_decode_exact("Zm9v\n", out, 3), -EBADMSG);
	for (size_t i = 0; i < sizeof(out); i++)
		assert_int_equal(out[i], 0xaa);
}

static void test_hex_encode(void **state)
{
	static const uint8_t data[] = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xff};
	char out[2 * sizeof(data) + 1];

	(void)state;
	memset(out, 'x', sizeof(out));
	hex_encode(data, sizeof(data), out);
	assert_string_equal(out, "00017f80abff");
	hex_encode(data, 0, out);
	assert_string_equal(out, "");
}

static void test_hex_decode_either_case(void **state)
{
	static const uint8_t want[] = {0xde, 0xad, 0xbe, 0xef, 0x09};
	uint8_t out[5];

	(void)state;
	assert_int_equal(hex_decode("deadbeef09", out, sizeof(out)), 0);
	assert_memory_equal(out, want, sizeof(want));
	memset(out, 0, sizeof(out));
	assert_int_equal(hex_decode("DEADBEEF09", out, sizeof(out)), 0);
	assert_memory_equal(out, want, sizeof(want));
	memset(out, 0, sizeof(out));
	assert_int_equal(hex_decode("DeAdBeEf09", out, sizeof(out)), 0);
	assert_memory_equal(out, want, sizeof(want));
	assert_int_equal(hex_decode("", out, 0), 0);
}

static void test_hex_decode_refuses(void **state)
{
	static const struct {
		const char *text;
		size_t len;
	} bad[] = {
	    {"abc", 2},	     /* odd length */
	    {"abcde", 2},    /* odd and long */
	    {"ab", 2},	     /* too short */
	    {"abcdef", 2},   /* too long */
	    {"", 1},	     /* empty */
	    {"abcg", 2},     /* not hex */
	    {"0x12", 2},     /* prefix */
	    {"ab d", 2},     /* space */
	    {"abcd\n", 2},   /* newline */
	    {"-1", 1},	     /* sign */
	    {"\xff\xff", 1}, /* high bytes */
	    {"ab\0cd", 2},   /* NUL ends the text */
	};
	uint8_t out[4];

	(void)state;
	memset(out, 0x5a, sizeof(out));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(hex_decode(bad[i].text, out, bad[i].len), -EBADMSG);
	for (size_t i = 0; i < sizeof(out); i++)
		assert_int_equal(out[i], 0x5a);
}

static void test_hex_round_trip(void **state)
{
	uint8_t data[256], back[256];
	char text[2 * sizeof(data) + 1];

	(void)state;
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)i;
	hex_encode(data, sizeof(data), text);
	assert_int_equal(strlen(text), 2 * sizeof(data));
	assert_int_equal(hex_decode(text, back, sizeof(back)), 0);
	assert_memory_equal(back, data, sizeof(data));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_b64_encode_rfc4648),
	    cmocka_unit_test(test_b64_decode_rfc4648),
	    cmocka_unit_test(test_b64_round_trip),
	    cmocka_unit_test(test_b64_decode_refuses_bad_text),
	    cmocka_unit_test(test_b64_decode_stops_at_nul),
	    cmocka_unit_test(test_b64_canonical_neighbours_accepted),
	    cmocka_unit_test(test_b64_decode_exact),
	    cmocka_unit_test(test_b64_decode_exact_refuses),
	    cmocka_unit_test(test_hex_encode),
	    cmocka_unit_test(test_hex_decode_either_case),
	    cmocka_unit_test(test_hex_decode_refuses),
	    cmocka_unit_test(test_hex_round_trip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
