/* crl: which of two CRLs is in force, the checks on a CRL a peer sends, and its installation.
 *
 * CRLs are made here, signed by the fixture's CA key (or another key under the CA's name), with
 * the CRL Number, lastUpdate and revocations each case needs. The administrator's file is a copy
 * of the fixture's CRL (number K) that the tests never rewrite; the received file is where pingd
 * would put one. */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "cert.h"
#include "clock.h"
#include "crl.h"
#include "crypto.h"
#include "file.h"
#include "fixture.h"
#include "log.h"

static struct fixture fx;
static X509 *ca;
static EVP_PKEY *ca_key, *other_key;
static uint64_t K; /* the number of the administrator's CRL */
static char admin[PATH_MAX + 32], received[PATH_MAX + 32];

enum num { NUM_NONE, NUM_VALUE, NUM_NEGATIVE, NUM_HUGE, NUM_TWICE };

struct crl_spec {
	enum num num;
	uint64_t number;
	int64_t last_offset; /* lastUpdate: now + this */
	const char *revoke;  /* a fixture device whose certificate it lists; NULL: none */
	EVP_PKEY *key;	     /* NULL: the CA's */
	X509_NAME *issuer;   /* NULL: the CA's subject */
};

static void add_number(X509_CRL *crl, enum num kind, uint64_t v)
{
	ASN1_INTEGER *n = ASN1_INTEGER_new();
	BIGNUM *bn = BN_new();

	assert_non_null(n);
	assert_non_null(bn);
	switch (kind) {
	case NUM_VALUE:
	case NUM_TWICE:
		assert_int_equal(ASN1_INTEGER_set_uint64(n, v), 1);
		break;
	case NUM_NEGATIVE:
		assert_int_equal(ASN1_INTEGER_set_int64(n, -5), 1);
		break;
	case NUM_HUGE: /* 2^64: one past what a uint64_t holds */
		assert_int_equal(BN_set_bit(bn, 64), 1);
		assert_non_null(BN_to_ASN1_INTEGER(bn, n));
		break;
	case NUM_NONE:
		break;
	}
	if (kind != NUM_NONE)
		assert_int_equal(X509_CRL_add1_ext_i2d(crl, NID_crl_number, n, 0, 0), 1);
	if (kind == NUM_TWICE)
		assert_int_equal(
		    X509_CRL_add1_ext_i2d(crl, NID_crl_number, n, 0, X509V3_ADD_APPEND), 1);
	BN_free(bn);
	ASN1_INTEGER_free(n);
}

/* A PEM CRL as spec says; *ret_len its length. */
static char *make_crl(const struct crl_spec *spec, size_t *ret_len)
{
	X509_CRL *crl = X509_CRL_new();
	time_t now = time(NULL);
	ASN1_TIME *last = ASN1_TIME_set(NULL, now + spec->last_offset);
	ASN1_TIME *next = ASN1_TIME_set(NULL, now + spec->last_offset + 30 * 86400);
	BIO *bio = BIO_new(BIO_s_mem());
	char *data, *out;
	long len;

	assert_non_null(crl);
	assert_int_equal(X509_CRL_set_version(crl, X509_CRL_VERSION_2), 1);
	assert_int_equal(
	    X509_CRL_set_issuer_name(crl, spec->issuer ? spec->issuer : X509_get_subject_name(ca)),
	    1);
	assert_int_equal(X509_CRL_set1_lastUpdate(crl, last), 1);
	assert_int_equal(X509_CRL_set1_nextUpdate(crl, next), 1);
	if (spec->revoke) {
		X509 *x = fixture_cert(&fx, spec->revoke);
		X509_REVOKED *rev = X509_REVOKED_new();

		assert_int_equal(X509_REVOKED_set_serialNumber(rev, X509_get_serialNumber(x)), 1);
		assert_int_equal(X509_REVOKED_set_revocationDate(rev, last), 1);
		assert_int_equal(X509_CRL_add0_revoked(crl, rev), 1);
		X509_free(x);
	}
	add_number(crl, spec->num, spec->number);
	assert_true(X509_CRL_sign(crl, spec->key ? spec->key : ca_key, EVP_sha256()) > 0);
	assert_int_equal(PEM_write_bio_X509_CRL(bio, crl), 1);
	len = BIO_get_mem_data(bio, &data);
	assert_true(len > 0);
	out = malloc((size_t)len + 1);
	assert_non_null(out);
	memcpy(out, data, (size_t)len);
	out[len] = '\0';
	*ret_len = (size_t)len;
	BIO_free(bio);
	ASN1_TIME_free(last);
	ASN1_TIME_free(next);
	X509_CRL_free(crl);
	return out;
}

static X509_CRL *parse_ok(const char *pem, size_t len)
{
	X509_CRL *crl = NULL;

	assert_int_equal(crl_parse(pem, len, ca, &crl), 0);
	return crl;
}

/* Write spec's CRL at path. */
static void put_crl(const char *path, const struct crl_spec *spec)
{
	size_t len;
	char *pem = make_crl(spec, &len);

	assert_int_equal(file_write_atomic(path, pem, len, 0644), 0);
	free(pem);
}

static int verify_name(struct cert_store *s, const char *name)
{
	X509 *x = fixture_cert(&fx, name);
	int r = cert_verify(s, x, CERT_ROLES_ANY, NULL);

	X509_free(x);
	return r;
}

static int group_setup(void **state)
{
	char key_path[PATH_MAX + 32], *pem = NULL;
	X509_CRL *crl = NULL;
	size_t len;

	(void)state;
	if (fixture_home(&fx) < 0 || cert_load(fx.ca_crt, &ca) < 0)
		return -1;
	snprintf(key_path, sizeof(key_path), "%s/ca.key", fx.ca_dir);
	if (crypto_load_private_key(key_path, &ca_key) < 0 ||
	    crypto_load_private_key(fixture_path(&fx, "pi1", "key"), &other_key) < 0)
		return -1;
	/* The administrator's file: the fixture's CRL as it was, never rewritten here. */
	snprintf(admin, sizeof(admin), "%s/admin-crl.pem", fx.dir);
	snprintf(received, sizeof(received), "%s/received-crl.pem", fx.dir);
	if (file_read(fx.crl, CRL_FILE_MAX, &pem, &len) < 0 ||
	    file_write_atomic(admin, pem, len, 0644) < 0 || crl_parse(pem, len, ca, &crl) < 0 ||
	    crl_number(crl, &K) < 0)
		return -1;
	free(pem);
	X509_CRL_free(crl);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	X509_free(ca);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(other_key);
	fixture_remove(&fx);
	return 0;
}

/* Each case starts without a received file, at the real time. */
static int setup(void **state)
{
	(void)state;
	unlink(received);
	clock_set_fake(-1);
	clock_reset_floor();
	return 0;
}

/* ---- numbers, parsing, order ---- */

static void test_number(void **state)
{
	static const struct {
		enum num num;
		uint64_t number;
		int r;
	} cases[] = {
	    {NUM_VALUE, 0, 0},	      {NUM_VALUE, 7, 0},	   {NUM_VALUE, UINT64_MAX, 0},
	    {NUM_NONE, 0, -ENODATA},  {NUM_NEGATIVE, 0, -EBADMSG}, {NUM_HUGE, 0, -EBADMSG},
	    {NUM_TWICE, 3, -EBADMSG},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct crl_spec spec = {.num = cases[i].num, .number = cases[i].number};
		BIO *bio;
		X509_CRL *crl;
		uint64_t got = 42;
		size_t len;
		char *pem = make_crl(&spec, &len);

		/* Read without crl_parse(), which refuses the bad numbers itself. */
		assert_non_null(bio = BIO_new_mem_buf(pem, (int)len));
		assert_non_null(crl = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL));
		if (crl_number(crl, &got) != cases[i].r)
			fail_msg("case %zu: %d", i, crl_number(crl, &got));
		assert_true(cases[i].r == 0 ? got == cases[i].number : got == 42);
		X509_CRL_free(crl);
		BIO_free(bio);
		crl = NULL;
		assert_int_equal(crl_parse(pem, len, ca, &crl),
				 cases[i].r == -EBADMSG ? -EBADMSG : 0);
		X509_CRL_free(crl);
		free(pem);
	}
}

static void test_parse_refusals(void **state)
{
	static const char junk[] = "-----BEGIN X509 CRL-----\nnot base64\n-----END X509 CRL-----\n";
	struct crl_spec wrong_key = {.num = NUM_VALUE, .number = K + 1, .key = other_key};
	X509_NAME *other = X509_NAME_new();
	struct crl_spec wrong_name = {.num = NUM_VALUE, .number = K + 1, .issuer = other};
	X509_CRL *crl = (X509_CRL *)&crl;
	char *pem, *cert_pem = NULL, *other_ca = NULL, other_path[PATH_MAX + 32];
	size_t len, cert_len, other_len;

	(void)state;
	assert_int_equal(X509_NAME_add_entry_by_txt(other, "O", MBSTRING_ASC,
						    (const unsigned char *)"testhome", -1, -1, 0),
			 1);
	assert_int_equal(crl_parse("", 0, ca, &crl), -EBADMSG);
	assert_int_equal(crl_parse("hello", 5, ca, &crl), -EBADMSG);
	assert_int_equal(crl_parse(junk, strlen(junk), ca, &crl), -EBADMSG);
	/* A certificate is no CRL. */
	assert_int_equal(file_read(fx.ca_crt, 1 << 16, &cert_pem, &cert_len), 0);
	assert_int_equal(crl_parse(cert_pem, cert_len, ca, &crl), -EBADMSG);
	/* Truncated. */
	pem = make_crl(&(struct crl_spec){.num = NUM_VALUE, .number = K + 1}, &len);
	assert_int_equal(crl_parse(pem, len - 40, ca, &crl), -EBADMSG);
	free(pem);
	/* Another home's CA, another issuer under a name like ours, another key under ours. */
	snprintf(other_path, sizeof(other_path), "%s/crl.pem", fx.other_ca_dir);
	assert_int_equal(file_read(other_path, CRL_FILE_MAX, &other_ca, &other_len), 0);
	assert_int_equal(crl_parse(other_ca, other_len, ca, &crl), -IOTSEC_EUNKNOWNCA);
	pem = make_crl(&wrong_name, &len);
	assert_int_equal(crl_parse(pem, len, ca, &crl), -IOTSEC_EUNKNOWNCA);
	free(pem);
	pem = make_crl(&wrong_key, &len);
	assert_int_equal(crl_parse(pem, len, ca, &crl), -IOTSEC_EBADSIG);
	free(pem);
	assert_ptr_equal(crl, (X509_CRL *)&crl);
	assert_int_equal(crl_load("/nonexistent/crl.pem", CRL_PEM_MAX, ca, &crl), -ENOENT);
	assert_int_equal(crl_load(admin, 100, ca, &crl), -EFBIG);
	assert_int_equal(crl_load(admin, CRL_FILE_MAX, ca, &crl), 0);
	X509_CRL_free(crl);
	X509_NAME_free(other);
	free(cert_pem);
	free(other_ca);
}

static void test_newer(void **state)
{
	char *p5, *p6, *p5b, *none_old, *none_new;
	X509_CRL *c5, *c6, *c5b, *n_old, *n_new;
	size_t l;

	(void)state;
	p5 = make_crl(&(struct crl_spec){.num = NUM_VALUE, .number = 5}, &l);
	c5 = parse_ok(p5, l);
	p6 = make_crl(&(struct crl_spec){.num = NUM_VALUE, .number = 6, .last_offset = -3600}, &l);
	c6 = parse_ok(p6, l);
	p5b = make_crl(&(struct crl_spec){.num = NUM_VALUE, .number = 5, .last_offset = 60}, &l);
	c5b = parse_ok(p5b, l);
	none_old = make_crl(&(struct crl_spec){.num = NUM_NONE, .last_offset = -60}, &l);
	n_old = parse_ok(none_old, l);
	none_new = make_crl(&(struct crl_spec){.num = NUM_NONE, .last_offset = 60}, &l);
	n_new = parse_ok(none_new, l);
	/* Numbers decide, even against the dates. */
	assert_true(crl_newer(c6, c5));
	assert_false(crl_newer(c5, c6));
	/* The same number is not newer, whatever the date. */
	assert_false(crl_newer(c5b, c5));
	assert_false(crl_newer(c5, c5b));
	assert_false(crl_newer(c5, c5));
	/* Without a number on either, lastUpdate. */
	assert_true(crl_newer(n_new, n_old));
	assert_false(crl_newer(n_old, n_new));
	assert_false(crl_newer(n_old, n_old));
	assert_true(crl_newer(n_new, c5));  /* +60 s against now */
	assert_false(crl_newer(c6, n_old)); /* -3600 s against -60 s */
	X509_CRL_free(c5), X509_CRL_free(c6), X509_CRL_free(c5b);
	X509_CRL_free(n_old), X509_CRL_free(n_new);
	free(p5), free(p6), free(p5b), free(none_old), free(none_new);
}

/* ---- a peer's CRL ---- */

static void test_check_newer(void **state)
{
	struct cert_store *s = NULL;
	uint64_t n = 99;
	char *pem, *big, *other_ca = NULL, other_path[PATH_MAX + 32];
	size_t len, other_len;

	(void)state;
	assert_int_equal(cert_store_load_received(fx.ca_crt, admin, received, &s), 0);
	pem = make_crl(&(struct crl_spec){.num = NUM_VALUE, .number = K + 3}, &len);
	assert_int_equal(crl_check_newer(s, pem, len, &n), 0);
	assert_int_equal(n, K + 3);
	assert_int_equal(crl_check_newer(s, pem, len, NULL), 0);
	free(pem);

	n = 99;
	/* The same number, and an older one. */
	pem = make_crl(&(struct crl_spec){.num = NUM_VALUE, .number = K}, &len);
	assert_int_equal(crl_check_newer(s, pem, len, &n), -EALREADY);
	free(pem);
	pem = make_crl(&(struct crl_spec){.num = NUM_VALUE, .number = K - 1}, &len);
	assert_int_equal(crl_check_newer(s, pem, len, &n), -EALREADY);
	free(pem);
	/* Not a CRL, truncated, empty. */
	assert_int_equal(crl_check_newer(s, "hello", 5, &n), -EBADMSG);
	assert_int_equal(crl_check_newer(s, "", 0, &n), -EBADMSG);
	pem = make_crl(&(struct crl_spec){.num = NUM_VALUE, .number = K + 1}, &len);
	assert_int_equal(crl_check_newer(s, pem, len / 2, &n), -EBADMSG);
	free(pem);
	/* Another CA's, ours by name but not by key, a number that does not fit. */
	snprintf(other_path, sizeof(other_path), "%s/crl.pem", fx.other_ca_dir);
	assert_int_equal(file_read(other_path, CRL_FILE_MAX, &other_ca, &other_len), 0);
	assert_int_equal(crl_check_newer(s, other_ca, other_len, &n), -IOTSEC_EUNKNOWNCA);
	pem =
	    make_crl(&(struct crl_spec){.num = NUM_VALUE, .number = K + 1, .key = other_key}, &len);
	assert_int_equal(crl_check_newer(s, pem, len, &n), -IOTSEC_EBADSIG);
	free(pem);
	pem = make_crl(&(struct crl_spec){.num = NUM_HUGE}, &len);
	assert_int_equal(crl_check_newer(s, pem, len, &n), -EBADMSG);
	free(pem);
	/* Oversize: refused before parsing, even a real CRL padded. */
	pem = make_crl(&(struct crl_spec){.num = NUM_VALUE, .number = K + 1}, &len);
	assert_non_null(big = calloc(1, CRL_PEM_MAX + 2));
	memcpy(big, pem, len);
	memset(big + len, '\n', CRL_PEM_MAX + 1 - len);
	assert_int_equal(crl_check_newer(s, big, CRL_PEM_MAX + 1, &n), -EMSGSIZE);
	assert_int_equal(crl_check_newer(s, big, CRL_PEM_MAX, &n), 0); /* the bound is inclusive */
	assert_int_equal(n, K + 1);
	free(big);
	free(pem);
	free(other_ca);
	cert_store_free(s);
}

static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

/* Whole, 0644 whatever the umask (every daemon reads it), by rename (a reader sees the old file
 * or the new one), nothing left beside it; oversize refused with the old file untouched. */
static void test_install(void **state)
{
	char dir[PATH_MAX + 32], path[PATH_MAX + 48], *got = NULL, *pem, *big;
	struct stat before, after;
	mode_t old_mask = umask(077);
	size_t len, got_len;

	(void)state;
	snprintf(dir, sizeof(dir), "%s/pingd", fx.dir);
	assert_int_equal(mkdir(dir, 0755), 0);
	snprintf(path, sizeof(path), "%s/crl.pem", dir);
	pem = make_crl(&(struct crl_spec){.num = NUM_VALUE, .number = K + 1}, &len);
	assert_int_equal(crl_install(path, pem, len), 0);
	assert_int_equal(stat(path, &before), 0);
	assert_int_equal(before.st_mode & 07777, CRL_FILE_MODE);
	assert_int_equal(file_read(path, CRL_PEM_MAX, &got, &got_len), 0);
	assert_int_equal(got_len, len);
	assert_memory_equal(got, pem, len);
	free(got), free(pem);

	pem = make_crl(&(struct crl_spec){.num = NUM_VALUE, .number = K + 2}, &len);
	assert_int_equal(crl_install(path, pem, len), 0);
	assert_int_equal(stat(path, &after), 0);
	assert_int_not_equal(before.st_ino, after.st_ino);
	assert_int_equal(after.st_mode & 07777, CRL_FILE_MODE);
	assert_int_equal(count_entries(dir), 1);

	assert_non_null(big = calloc(1, CRL_PEM_MAX + 1));
	assert_int_equal(crl_install(path, big, CRL_PEM_MAX + 1), -EMSGSIZE);
	assert_int_equal(file_read(path, CRL_PEM_MAX, &got, &got_len), 0);
	assert_int_equal(got_len, len);
	assert_memory_equal(got, pem, len);
	assert_int_equal(count_entries(dir), 1);
	assert_true(crl_install("/nonexistent/dir/crl.pem", pem, len) < 0);
	free(got), free(pem), free(big);
	umask(old_mask);
	unlink(path);
	rmdir(dir);
}

static void test_received_path(void **state)
{
	char out[PATH_MAX], small[20] = "untouched";
	char longdir[PATH_MAX];

	(void)state;
	assert_int_equal(crl_received_path("/var/lib/iotsec", out, sizeof(out)), 0);
	assert_string_equal(out, "/var/lib/iotsec/pingd/crl.pem");
	assert_int_equal(crl_received_path("/var/lib/iotsec", small, sizeof(small)), -ENAMETOOLONG);
	assert_int_equal(crl_received_path(NULL, out, sizeof(out)), -EINVAL);
	memset(longdir, 'd', sizeof(longdir) - 1);
	longdir[sizeof(longdir) - 1] = '\0';
	assert_true(crl_received_path(longdir, out, sizeof(out)) < 0);
}

/* ---- the CRL in force ---- */

/* A newer received CRL revoking pi2 is in force; the administrator's, which does not, is not. */
static void test_store_received_newer_wins(void **state)
{
	struct cert_store *s = NULL;
	X509_CRL *crl = NULL;
	uint64_t n = 0;
	char *pem = NULL;
	size_t len;

	(void)state;
	put_crl(received, &(struct crl_spec){.num = NUM_VALUE, .number = K + 1, .revoke = "pi2"});
	assert_int_equal(cert_store_load_received(fx.ca_crt, admin, received, &s), 0);
	assert_int_equal(cert_store_received_status(s), 0);
	assert_string_equal(cert_store_crl_path(s), received);
	assert_string_equal(cert_store_received_path(s), received);
	assert_int_equal(cert_store_crl_number(s, &n), 0);
	assert_int_equal(n, K + 1);
	assert_int_equal(verify_name(s, "pi2"), -EKEYREVOKED);
	assert_int_equal(verify_name(s, "pi1"), 0);
	/* What the administrator's CRL revoked stays revoked only if the newer one says so: the
	 * newer one is the whole list, as the CA writes it. */
	assert_int_equal(verify_name(s, "revoked"), 0);
	/* The PEM to send on is the CRL in force. */
	assert_int_equal(cert_store_crl_pem(s, &pem, &len), 0);
	assert_int_equal(strlen(pem), len);
	assert_int_equal(crl_parse(pem, len, ca, &crl), 0);
	assert_int_equal(crl_number(crl, &n), 0);
	assert_int_equal(n, K + 1);
	X509_CRL_free(crl);
	free(pem);
	cert_store_free(s);
}

/* Older or equal, another CA's, another key's, garbage, oversize, unreadable: ignored, and the
 * administrator's is in force, each with its reason. */
static void test_store_received_ignored(void **state)
{
	struct crl_spec older = {.num = NUM_VALUE, .number = K - 1, .revoke = "pi2"};
	struct crl_spec same = {.num = NUM_VALUE, .number = K, .revoke = "pi2", .last_offset = 60};
	struct crl_spec badsig = {
	    .num = NUM_VALUE, .number = K + 5, .revoke = "pi2", .key = other_key};
	char other_path[PATH_MAX + 32], *other_pem = NULL, *big;
	struct cert_store *s = NULL;
	size_t other_len;
	uint64_t n;
	struct {
		const struct crl_spec *spec;
		const char *text;
		int status;
	} cases[] = {
	    {NULL, NULL, -ENOENT},
	    {&older, NULL, -EALREADY},
	    {&same, NULL, -EALREADY},
	    {&badsig, NULL, -IOTSEC_EBADSIG},
	    {NULL, "garbage\n", -EBADMSG},
	    {NULL, "", -EBADMSG},
	    {NULL, "other", -IOTSEC_EUNKNOWNCA},
	    {NULL, "big", -EFBIG},
	};

	(void)state;
	snprintf(other_path, sizeof(other_path), "%s/crl.pem", fx.other_ca_dir);
	assert_int_equal(file_read(other_path, CRL_FILE_MAX, &other_pem, &other_len), 0);
	assert_non_null(big = malloc(CRL_PEM_MAX + 1));
	memset(big, '\n', CRL_PEM_MAX + 1);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		unlink(received);
		if (cases[i].spec)
			put_crl(received, cases[i].spec);
		else if (cases[i].text && strcmp(cases[i].text, "other") == 0)
			assert_int_equal(file_write_atomic(received, other_pem, other_len, 0644),
					 0);
		else if (cases[i].text && strcmp(cases[i].text, "big") == 0)
			assert_int_equal(file_write_atomic(received, big, CRL_PEM_MAX + 1, 0644),
					 0);
		else if (cases[i].text)
			assert_int_equal(
			    file_write_atomic(received, cases[i].text, strlen(cases[i].text), 0644),
			    0);
		assert_int_equal(cert_store_load_received(fx.ca_crt, admin, received, &s), 0);
		if (cert_store_received_status(s) != cases[i].status)
			fail_msg("case %zu: %s", i, iotsec_strerror(cert_store_received_status(s)));
		assert_string_equal(cert_store_crl_path(s), admin);
		assert_int_equal(cert_store_crl_number(s, &n), 0);
		assert_int_equal(n, K);
		assert_int_equal(verify_name(s, "pi2"), 0);
		assert_int_equal(verify_name(s, "revoked"), -EKEYREVOKED);
		cert_store_free(s);
		s = NULL;
	}
	/* Unreadable (a directory where the file should be). */
	unlink(received);
	assert_int_equal(mkdir(received, 0755), 0);
	assert_int_equal(cert_store_load_received(fx.ca_crt, admin, received, &s), 0);
	assert_int_equal(cert_store_received_status(s), -EISDIR);
	assert_string_equal(cert_store_crl_path(s), admin);
	cert_store_free(s);
	rmdir(received);
	/* Without a received path at all. */
	assert_int_equal(cert_store_load(fx.ca_crt, admin, &s), 0);
	assert_int_equal(cert_store_received_status(s), -ENOENT);
	assert_null(cert_store_received_path(s));
	cert_store_free(s);
	free(big);
	free(other_pem);
}

/* The administrator's CRL is still required: a good received one does not stand in for it. */
static void test_store_admin_required(void **state)
{
	char missing[PATH_MAX + 32];
	struct cert_store *s = NULL;

	(void)state;
	snprintf(missing, sizeof(missing), "%s/none.pem", fx.dir);
	put_crl(received, &(struct crl_spec){.num = NUM_VALUE, .number = K + 1});
	assert_int_equal(cert_store_load_received(fx.ca_crt, missing, received, &s), -IOTSEC_ECRL);
	assert_int_equal(cert_store_load_received(fx.ca_crt, received, received, &s), 0);
	cert_store_free(s);
	s = NULL;
	assert_int_equal(cert_store_load_received(fx.ca_crt, fx.ca_crt, received, &s),
			 -IOTSEC_ECRL);
	assert_null(s);
}

/* Without numbers, the later lastUpdate wins. */
static void test_store_unnumbered(void **state)
{
	char unnumbered[PATH_MAX + 32];
	struct cert_store *s = NULL;
	uint64_t n = 7;

	(void)state;
	snprintf(unnumbered, sizeof(unnumbered), "%s/unnumbered.pem", fx.dir);
	put_crl(unnumbered, &(struct crl_spec){.num = NUM_NONE, .last_offset = -120});
	put_crl(received, &(struct crl_spec){.num = NUM_NONE, .last_offset = -60, .revoke = "pi2"});
	assert_int_equal(cert_store_load_received(fx.ca_crt, unnumbered, received, &s), 0);
	assert_int_equal(cert_store_received_status(s), 0);
	assert_int_equal(cert_store_crl_number(s, &n), -ENODATA);
	assert_int_equal(n, 7);
	assert_int_equal(verify_name(s, "pi2"), -EKEYREVOKED);
	cert_store_free(s);
	s = NULL;
	put_crl(received,
		&(struct crl_spec){.num = NUM_NONE, .last_offset = -180, .revoke = "pi2"});
	assert_int_equal(cert_store_load_received(fx.ca_crt, unnumbered, received, &s), 0);
	assert_int_equal(cert_store_received_status(s), -EALREADY);
	assert_int_equal(verify_name(s, "pi2"), 0);
	cert_store_free(s);
	unlink(unnumbered);
}

/* cert_store_refresh() sees the received file appear, change, turn bad and go. */
static void test_store_refresh_received(void **state)
{
	struct cert_store *s = NULL;
	bool changed = false;
	uint64_t gen, n;

	(void)state;
	assert_int_equal(cert_store_load_received(fx.ca_crt, admin, received, &s), 0);
	assert_int_equal(cert_store_refresh(s, &changed), 0);
	assert_false(changed);
	assert_int_equal(verify_name(s, "pi2"), 0);

	put_crl(received, &(struct crl_spec){.num = NUM_VALUE, .number = K + 1, .revoke = "pi2"});
	gen = cert_store_generation(s);
	assert_int_equal(cert_store_refresh(s, &changed), 0);
	assert_true(changed);
	assert_true(cert_store_generation(s) > gen);
	assert_int_equal(verify_name(s, "pi2"), -EKEYREVOKED);
	assert_int_equal(cert_store_refresh(s, &changed), 0);
	assert_false(changed);

	/* A newer one that lists ctl1 instead. */
	put_crl(received, &(struct crl_spec){.num = NUM_VALUE, .number = K + 2, .revoke = "ctl1"});
	assert_int_equal(cert_store_refresh(s, &changed), 0);
	assert_true(changed);
	assert_int_equal(cert_store_crl_number(s, &n), 0);
	assert_int_equal(n, K + 2);
	assert_int_equal(verify_name(s, "pi2"), 0);
	assert_int_equal(verify_name(s, "ctl1"), -EKEYREVOKED);

	/* Garbage in its place: ignored, no error, the administrator's in force. */
	assert_int_equal(file_write_atomic(received, "junk\n", 5, 0644), 0);
	assert_int_equal(cert_store_refresh(s, &changed), 0);
	assert_true(changed);
	assert_int_equal(cert_store_received_status(s), -EBADMSG);
	assert_string_equal(cert_store_crl_path(s), admin);
	assert_int_equal(verify_name(s, "ctl1"), 0);
	assert_int_equal(verify_name(s, "revoked"), -EKEYREVOKED);

	/* Good again, then gone. */
	put_crl(received, &(struct crl_spec){.num = NUM_VALUE, .number = K + 3, .revoke = "pi2"});
	assert_int_equal(cert_store_refresh(s, &changed), 0);
	assert_true(changed);
	assert_int_equal(verify_name(s, "pi2"), -EKEYREVOKED);
	assert_int_equal(unlink(received), 0);
	assert_int_equal(cert_store_refresh(s, &changed), 0);
	assert_true(changed);
	assert_int_equal(cert_store_received_status(s), -ENOENT);
	assert_int_equal(verify_name(s, "pi2"), 0);
	cert_store_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_number, setup),
	    cmocka_unit_test_setup(test_parse_refusals, setup),
	    cmocka_unit_test_setup(test_newer, setup),
	    cmocka_unit_test_setup(test_check_newer, setup),
	    cmocka_unit_test_setup(test_install, setup),
	    cmocka_unit_test_setup(test_received_path, setup),
	    cmocka_unit_test_setup(test_store_received_newer_wins, setup),
	    cmocka_unit_test_setup(test_store_received_ignored, setup),
	    cmocka_unit_test_setup(test_store_admin_required, setup),
	    cmocka_unit_test_setup(test_store_unnumbered, setup),
	    cmocka_unit_test_setup(test_store_refresh_received, setup),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
