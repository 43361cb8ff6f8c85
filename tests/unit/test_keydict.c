/* keydict: the dictionary file keeps keys sealed, indices keyed, and refuses any tampering. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "encoding.h"
#include "file.h"
#include "log.h"
#include "keydict.h"

static char dir[] = "/tmp/iotsec-test-keydict-XXXXXX";
static char path[256];
static const uint8_t dict_key[CRYPTO_KEY_LEN] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
static uint8_t secret[CRYPTO_KEY_LEN];

static void fill(uint8_t *k, uint8_t seed)
{
	for (int i = 0; i < CRYPTO_KEY_LEN; i++)
		k[i] = (uint8_t)(seed * 31 + i * 7 + 0x5a);
}

static struct keydict *sample(void)
{
	struct keydict *d = NULL;
	uint8_t k[CRYPTO_KEY_LEN];

	assert_int_equal(keydict_new(dict_key, &d), 0);
	assert_int_equal(keydict_put(d, "ring", 4242, 1, secret, 0, 1000), 0);
	fill(k, 2);
	assert_int_equal(keydict_put(d, "pi2", 7, 1, k, 5000, 1000), 0);
	fill(k, 3);
	assert_int_equal(keydict_put(d, "ring", 9, 1, k, 0, 1000), 0);
	return d;
}

static void test_put_get(void **state)
{
	struct keydict *d = sample();
	uint8_t out[CRYPTO_KEY_LEN], k[CRYPTO_KEY_LEN];

	(void)state;
	assert_int_equal(keydict_count(d), 3);
	assert_int_equal(keydict_get(d, "ring", 4242, 2000, out), 0);
	assert_memory_equal(out, secret, sizeof(out));
	assert_int_equal(keydict_get(d, "pi2", 7, 2000, out), 0);
	fill(k, 2);
	assert_memory_equal(out, k, sizeof(out));
	/* Replacing a record keeps one record. */
	fill(k, 9);
	assert_int_equal(keydict_put(d, "pi2", 7, 2, k, 0, 1100), 0);
	assert_int_equal(keydict_count(d), 3);
	assert_int_equal(keydict_get(d, "pi2", 7, 2000, out), 0);
	assert_memory_equal(out, k, sizeof(out));
	keydict_free(d);
}

static void test_absent_expired_cancelled(void **state)
{
	struct keydict *d = sample();
	uint8_t out[CRYPTO_KEY_LEN] = {0}, zero[CRYPTO_KEY_LEN] = {0};

	(void)state;
	assert_int_equal(keydict_get(d, "ring", 1, 2000, out), -ENOKEY);
	assert_int_equal(keydict_get(d, "pi3", 7, 2000, out), -ENOKEY);
	assert_int_equal(keydict_get(d, "pi2", 7, 5000, out), -ENOKEY); /* expired */
	assert_int_equal(keydict_cancel_name(d, "ring", 3000), 2);
	assert_int_equal(keydict_get(d, "ring", 4242, 3000, out), -ENOKEY);
	assert_memory_equal(out, zero, sizeof(out));
	assert_int_equal(keydict_purge(d, 6000), 3);
	assert_int_equal(keydict_count(d), 0);
	keydict_free(d);
}

static void test_new_epoch_cancels_every_other(void **state)
{
	struct keydict *d = sample();
	uint8_t out[CRYPTO_KEY_LEN];

	(void)state;
	assert_int_equal(keydict_put(d, "ring", 11, 2, secret, 0, 1500), 0);
	assert_int_equal(keydict_put(d, "ring", 12, 3, secret, 0, 1500), 0); /* a newer one */
	assert_int_equal(keydict_cancel_others(d, 2, 1600), 4);
	assert_int_equal(keydict_get(d, "ring", 9, 1700, out), -ENOKEY);
	assert_int_equal(keydict_get(d, "ring", 12, 1700, out), -ENOKEY);
	assert_int_equal(keydict_get(d, "ring", 11, 1700, out), 0);
	assert_int_equal(keydict_cancel_others(d, 2, 1600), 0); /* already cancelled */
	keydict_free(d);
}

static void test_save_load_round_trip(void **state)
{
	struct keydict *d = sample(), *e = NULL;
	const struct keydict_record *r;
	uint8_t out[CRYPTO_KEY_LEN];
	struct stat st;

	(void)state;
	keydict_cancel_name(d, "pi2", 1200);
	assert_int_equal(keydict_save(d, path), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(keydict_load(dict_key, path, &e), 0);
	assert_int_equal(keydict_count(e), 3);
	assert_int_equal(keydict_get(e, "ring", 4242, 2000, out), 0);
	assert_memory_equal(out, secret, sizeof(out));
	assert_int_equal(keydict_get(e, "pi2", 7, 2000, out), -ENOKEY);
	r = keydict_at(e, 1);
	assert_string_equal(r->name, "pi2");
	assert_true(r->cancelled);
	assert_int_equal(r->changed, 1200);
	assert_int_equal(r->expires, 5000);
	assert_null(keydict_at(e, 3));
	keydict_free(d);
	keydict_free(e);
}

static void test_empty_dictionary(void **state)
{
	struct keydict *d = NULL, *e = NULL;

	(void)state;
	assert_int_equal(keydict_new(dict_key, &d), 0);
	assert_int_equal(keydict_save(d, path), 0);
	assert_int_equal(keydict_load(dict_key, path, &e), 0);
	assert_int_equal(keydict_count(e), 0);
	keydict_free(d);
	keydict_free(e);
}

/* No key, no index, neither as text nor as bytes, is in the file. */
static void test_file_holds_nothing_in_clear(void **state)
{
	struct keydict *d = sample();
	char *buf, hex[2 * CRYPTO_KEY_LEN + 1], *b64 = b64_encode(secret, sizeof(secret));
	uint8_t be[4] = {0, 0, 0x10, 0x92}; /* 4242 */
	char *be64 = b64_encode(be, sizeof(be)), behex[9];
	size_t len;

	(void)state;
	assert_int_equal(keydict_save(d, path), 0);
	assert_int_equal(file_read(path, 1 << 20, &buf, &len), 0);
	hex_encode(secret, sizeof(secret), hex);
	assert_null(strstr(buf, hex));
	assert_null(strstr(buf, b64));
	assert_null(memmem(buf, len, secret, sizeof(secret)));
	assert_null(strstr(buf, "4242"));
	assert_null(memmem(buf, len, be, sizeof(be)));
	/* The text is ASCII: the index could only hide in it encoded. */
	hex_encode(be, sizeof(be), behex);
	assert_non_null(be64);
	assert_null(strstr(buf, be64));
	assert_null(strstr(buf, behex));
	assert_non_null(strstr(buf, "\"pi2\"")); /* names are in the clear, as SPEC says */
	free(buf);
	free(b64);
	free(be64);
	keydict_free(d);
}

/* One flipped bit anywhere in the file: refused, never a crash or a wrong key. */
static void test_every_flipped_byte_refused(void **state)
{
	struct keydict *d = sample(), *e;
	char *buf;
	size_t len;

	(void)state;
	assert_int_equal(keydict_save(d, path), 0);
	assert_int_equal(file_read(path, 1 << 20, &buf, &len), 0);
	for (size_t i = 0; i < len; i++) {
		/* Low bit, letter case, high bit. */
		for (int bit = 0; bit < 8; bit += bit == 0 ? 5 : 2) {
			e = NULL;
			buf[i] ^= (char)(1 << bit);
			if (keydict_parse(dict_key, buf, len, &e) != -EBADMSG)
				fail_msg("byte %zu bit %d accepted", i, bit);
			assert_null(e);
			buf[i] ^= (char)(1 << bit);
		}
	}
	assert_int_equal(keydict_parse(dict_key, buf, len, &e), 0);
	keydict_free(e);
	free(buf);
	keydict_free(d);
}

static void test_bad_files(void **state)
{
	struct keydict *d = sample(), *e = NULL;
	uint8_t other_key[CRYPTO_KEY_LEN] = {9};
	char *buf;
	size_t len;

	(void)state;
	assert_int_equal(keydict_save(d, path), 0);
	assert_int_equal(file_read(path, 1 << 20, &buf, &len), 0);
	assert_int_equal(keydict_parse(other_key, buf, len, &e), -EBADMSG);    /* wrong key */
	assert_int_equal(keydict_parse(dict_key, buf, len - 1, &e), -EBADMSG); /* truncated */
	assert_int_equal(keydict_parse(dict_key, buf, 10, &e), -EBADMSG);
	assert_int_equal(keydict_parse(dict_key, "", 0, &e), -EBADMSG);
	assert_int_equal(keydict_parse(dict_key, buf, KEYDICT_FILE_MAX + 1, &e), -EFBIG);
	assert_null(e);
	free(buf);

	/* Looser than 0600: refused before it is read. */
	assert_int_equal(chmod(path, 0640), 0);
	assert_int_equal(keydict_load(dict_key, path, &e), -IOTSEC_ESECRET);
	assert_int_equal(chmod(path, 0604), 0);
	assert_int_equal(keydict_load(dict_key, path, &e), -IOTSEC_ESECRET);
	assert_int_equal(chmod(path, 0600), 0);
	assert_int_equal(keydict_load(dict_key, path, &e), 0);
	keydict_free(e);
	unlink(path);
	assert_int_equal(keydict_load(dict_key, path, &e), -ENOENT);
	keydict_free(d);
}

static void test_put_refuses_bad_names(void **state)
{
	struct keydict *d = NULL;
	char longname[CERT_NAME_MAX + 1];

	(void)state;
	memset(longname, 'a', CERT_NAME_MAX);
	longname[CERT_NAME_MAX] = '\0';
	assert_int_equal(keydict_new(dict_key, &d), 0);
	assert_int_equal(keydict_put(d, "", 1, 1, secret, 0, 1), -EINVAL);
	assert_int_equal(keydict_put(d, longname, 1, 1, secret, 0, 1), -EINVAL);
	assert_int_equal(keydict_count(d), 0);
	keydict_free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_put_get),
	    cmocka_unit_test(test_absent_expired_cancelled),
	    cmocka_unit_test(test_new_epoch_cancels_every_other),
	    cmocka_unit_test(test_save_load_round_trip),
	    cmocka_unit_test(test_empty_dictionary),
	    cmocka_unit_test(test_file_holds_nothing_in_clear),
	    cmocka_unit_test(test_every_flipped_byte_refused),
	    cmocka_unit_test(test_bad_files),
	    cmocka_unit_test(test_put_refuses_bad_names),
	};
	int r;

	fill(secret, 1);
	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(path, sizeof(path), "%s/keys.dict", dir);
	r = cmocka_run_group_tests(tests, NULL, NULL);
	unlink(path);
	rmdir(dir);
	return r;
}
