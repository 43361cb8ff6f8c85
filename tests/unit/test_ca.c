/* ca: the home CA's files, certificate profile, enrolment (generated key and CSR), revocation,
 * CRL and index, and every refusal. One CA (3072-bit key) and two CSR keys serve the group;
 * tests that need a damaged CA copy its files into a directory of their own. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include "ca.h"
#include "cert.h"
#include "clock.h"
#include "crypto.h"
#include "file.h"
#include "log.h"

static char base[64];	      /* scratch directory of the group */
static char ca_dir[PATH_MAX]; /* the group's CA */
static char out_dir[PATH_MAX];
static EVP_PKEY *csr_key; /* owner of csr.pem */
static EVP_PKEY *other_key;

/* BASE/fmt..., in one of a few rotating buffers so a test can hold several at once. */
static const char *pathf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *pathf(const char *fmt, ...)
{
	static char buf[8][PATH_MAX];
	static unsigned next;
	char *p = buf[next++ % 8];
	va_list ap;
	int n = snprintf(p, PATH_MAX, "%s/", base);

	va_start(ap, fmt);
	vsnprintf(p + n, PATH_MAX - n, fmt, ap);
	va_end(ap);
	return p;
}

static int mode_of(const char *path)
{
	struct stat st;

	return stat(path, &st) < 0 ? -errno : (int)(st.st_mode & 07777);
}

static bool exists(const char *path)
{
	return access(path, F_OK) == 0;
}

/* A PEM request for key with a subject of another home, and CN cn when not NULL. With swap, the
 * public key is replaced after signing, so the self-signature no longer verifies. */
static int csr_write(const char *path, EVP_PKEY *key, EVP_PKEY *swap, const char *cn)
{
	X509_REQ *req = X509_REQ_new();
	X509_NAME *n;
	FILE *f = NULL;
	int r = -1;

	if (req == NULL || X509_REQ_set_version(req, X509_REQ_VERSION_1) != 1)
		goto out;
	n = X509_REQ_get_subject_name(req);
	if ((cn != NULL && X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
						      (const unsigned char *)cn, -1, -1, 0) != 1) ||
	    X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC, (const unsigned char *)"otherhome", -1,
				       -1, 0) != 1 ||
	    X509_REQ_set_pubkey(req, key) != 1 || X509_REQ_sign(req, key, EVP_sha256()) <= 0)
		goto out;
	if (swap != NULL && X509_REQ_set_pubkey(req, swap) != 1)
		goto out;
	if ((f = fopen(path, "w")) == NULL || PEM_write_X509_REQ(f, req) != 1)
		goto out;
	r = 0;
out:
	if (f != NULL && fclose(f) != 0)
		r = -1;
	X509_REQ_free(req);
	return r;
}

static int copy_file(const char *from, const char *to, mode_t mode)
{
	char *data = NULL;
	size_t len;
	int r = file_read(from, 1 << 20, &data, &len);

	if (r == 0)
		r = file_write_atomic(to, data, len, mode);
	free(data);
	return r;
}

static int group_setup(void **state)
{
	char tmpl[] = "/tmp/iotsec-test-ca-XXXXXX";

	(void)state;
	if (mkdtemp(tmpl) == NULL)
		return -1;
	snprintf(base, sizeof(base), "%s", tmpl);
	snprintf(ca_dir, sizeof(ca_dir), "%s/ca", base);
	snprintf(out_dir, sizeof(out_dir), "%s/out", base);
	if (ca_init(ca_dir, "testhome", 3650) < 0 ||
	    crypto_rsa_generate(DEVICE_KEY_BITS, &csr_key) < 0 ||
	    crypto_rsa_generate(DEVICE_KEY_BITS, &other_key) < 0 ||
	    csr_write(pathf("csr.pem"), csr_key, NULL, NULL) < 0 ||
	    csr_write(pathf("named.pem"), csr_key, NULL, "evil") < 0 ||
	    csr_write(pathf("badsig.pem"), csr_key, other_key, NULL) < 0)
		return -1;
	return 0;
}

static int group_teardown(void **state)
{
	char cmd[PATH_MAX + 16];

	(void)state;
	EVP_PKEY_free(csr_key);
	EVP_PKEY_free(other_key);
	if (strncmp(base, "/tmp/iotsec-test-ca-", 20) == 0) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", base);
	}
	return 0;
}

/* Undo what a failed test may have left: a fake clock, a loosened key. */
static int test_teardown(void **state)
{
	(void)state;
	clock_set_fake(-1);
	clock_reset_floor();
	chmod(pathf("ca/ca.key"), 0600);
	return 0;
}

static int enrol(const char *dir, const char *device, enum cert_role role, int64_t from, int64_t to,
		 const char *csr)
{
	struct ca_enrol_req req = {.device = device,
				   .role = role,
				   .not_before = from,
				   .not_after = to,
				   .csr_path = csr,
				   .out_dir = out_dir};

	return ca_enrol(dir, &req);
}

static int enrol_csr(const char *device)
{
	int64_t now = clock_now();

	return enrol(ca_dir, device, CERT_ROLE_NODE, now - 60, now + 86400, pathf("csr.pem"));
}

/* cert_verify of OUT/device.crt against the CA's files as they are now. */
static int verify(const char *device, struct cert_info *info)
{
	struct cert_store *s = NULL;
	X509 *x = NULL;
	int r;

	assert_int_equal(cert_store_load(pathf("ca/ca.crt"), pathf("ca/crl.pem"), &s), 0);
	assert_int_equal(cert_load(pathf("out/%s.crt", device), &x), 0);
	r = cert_verify(s, x, CERT_ROLES_ANY, info);
	X509_free(x);
	cert_store_free(s);
	return r;
}

/* The index record of device's n-th certificate (borrowed from *index), or NULL. */
static json_t *record(json_t **index, const char *device, int n)
{
	size_t i;
	json_t *rec;

	json_decref(*index);
	*index = NULL;
	assert_int_equal(ca_list(ca_dir, index), 0);
	json_array_foreach(*index, i, rec)
	{
		if (strcmp(json_string_value(json_object_get(rec, "device")), device) == 0 &&
		    n-- == 0)
			return rec;
	}
	return NULL;
}

static long crl_number(const char *dir)
{
	X509_CRL *crl = NULL;
	ASN1_INTEGER *num = NULL;
	FILE *f = fopen(pathf("%s/crl.pem", dir), "r");
	long v = -1;

	if (f != NULL && (crl = PEM_read_X509_CRL(f, NULL, NULL, NULL)) != NULL &&
	    (num = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL)) != NULL)
		v = ASN1_INTEGER_get(num);
	if (f != NULL)
		fclose(f);
	ASN1_INTEGER_free(num);
	X509_CRL_free(crl);
	return v;
}

static void test_init_files(void **state)
{
	X509 *x = NULL;
	EVP_PKEY *key = NULL;
	char cn[CERT_NAME_MAX], o[CERT_NAME_MAX];
	int i;

	(void)state;
	assert_int_equal(mode_of(pathf("ca/ca.key")), 0600);
	assert_int_equal(mode_of(pathf("ca/ca.crt")), 0644);
	assert_int_equal(mode_of(pathf("ca/crl.pem")), 0644);
	assert_int_equal(mode_of(pathf("ca/index.json")), 0644);

	assert_int_equal(cert_load(pathf("ca/ca.crt"), &x), 0);
	assert_int_equal(crypto_load_private_key(pathf("ca/ca.key"), &key), 0);
	assert_int_equal(cert_key_matches(x, key), 0);
	assert_int_equal(EVP_PKEY_get_bits(key), CA_KEY_BITS);
	assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn,
					      sizeof(cn)) > 0);
	assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_organizationName, o,
					      sizeof(o)) > 0);
	assert_string_equal(cn, "testhome home CA");
	assert_string_equal(o, "testhome");
	assert_int_equal(X509_verify(x, key), 1); /* self-signed */
	assert_int_equal(X509_get_signature_nid(x), NID_sha256WithRSAEncryption);
	assert_int_equal(X509_check_ca(x), 1);
	assert_int_equal(X509_get_key_usage(x), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
	i = X509_get_ext_by_NID(x, NID_basic_constraints, -1);
	assert_true(i >= 0 && X509_EXTENSION_get_critical(X509_get_ext(x, i)));
	i = X509_get_ext_by_NID(x, NID_key_usage, -1);
	assert_true(i >= 0 && X509_EXTENSION_get_critical(X509_get_ext(x, i)));
	assert_non_null(X509_get0_subject_key_id(x));
	X509_free(x);
	EVP_PKEY_free(key);

	assert_int_equal(crl_number("ca"), 1);
	{
		json_t *index = NULL;

		assert_int_equal(ca_list(ca_dir, &index), 0);
		assert_true(json_is_array(index));
		json_decref(index);
	}
}

static void test_init_twice(void **state)
{
	char *before = NULL, *after = NULL;
	size_t blen, alen;

	(void)state;
	assert_int_equal(file_read(pathf("ca/ca.crt"), 1 << 16, &before, &blen), 0);
	assert_int_equal(ca_init(ca_dir, "testhome", 3650), -EEXIST);
	assert_int_equal(ca_init(ca_dir, "another", 3650), -EEXIST);
	assert_int_equal(file_read(pathf("ca/ca.crt"), 1 << 16, &after, &alen), 0);
	assert_int_equal(alen, blen);
	assert_memory_equal(after, before, blen);
	free(before);
	free(after);
}

/* Any one CA file in the directory is enough to refuse: it may be the only copy of a key. */
static void test_init_partial_refused(void **state)
{
	static const char *const files[] = {"ca.key", "ca.crt", "crl.pem", "index.json"};

	(void)state;
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		assert_int_equal(file_mkdirs(pathf("partial%zu", i), 0700), 0);
		assert_int_equal(
		    file_write_atomic(pathf("partial%zu/%s", i, files[i]), "x", 1, 0600), 0);
		assert_int_equal(ca_init(pathf("partial%zu", i), "testhome", 3650), -EEXIST);
		assert_false(exists(pathf("partial%zu/%s", i, i == 1 ? "ca.key" : "ca.crt")));
	}
}

static void test_init_bad_args(void **state)
{
	static const char *const homes[] = {
	    "", "a b", "../x", "-x", ".x", "a/b",
	    /* 57: "NAME home CA" no longer fits a CN */
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
	static const int days[] = {0, -1, 36501};

	(void)state;
	for (size_t i = 0; i < sizeof(homes) / sizeof(homes[0]); i++)
		assert_int_equal(ca_init(pathf("badhome"), homes[i], 3650), -EINVAL);
	assert_int_equal(ca_init(pathf("badhome"), NULL, 3650), -EINVAL);
	for (size_t i = 0; i < sizeof(days) / sizeof(days[0]); i++)
		assert_int_equal(ca_init(pathf("badhome"), "testhome", days[i]), -EINVAL);
	assert_false(exists(pathf("badhome")));
}

static void test_enrol_generated(void **state)
{
	int64_t now = clock_now(), to = now + 30 * 86400;
	struct cert_info info;
	X509 *x = NULL, *ca = NULL;
	EVP_PKEY *key = NULL;
	BIGNUM *serial;
	json_t *index = NULL, *rec;
	char *a = NULL, *b = NULL;
	size_t alen, blen;

	(void)state;
	assert_int_equal(enrol(ca_dir, "gen1", CERT_ROLE_NODE, now - 60, to, NULL), 0);
	assert_int_equal(mode_of(pathf("out/gen1.crt")), 0644);
	assert_int_equal(mode_of(pathf("out/gen1.key")), 0600);
	assert_int_equal(mode_of(pathf("out/ca.crt")), 0644);
	assert_int_equal(file_read(pathf("out/ca.crt"), 1 << 16, &a, &alen), 0);
	assert_int_equal(file_read(pathf("ca/ca.crt"), 1 << 16, &b, &blen), 0);
	assert_int_equal(alen, blen);
	assert_memory_equal(a, b, alen);

	assert_int_equal(verify("gen1", &info), 0);
	assert_string_equal(info.name, "gen1");
	assert_string_equal(info.home, "testhome");
	assert_int_equal(info.role, CERT_ROLE_NODE);
	assert_int_equal(info.not_before, now - 60);
	assert_int_equal(info.not_after, to);

	assert_int_equal(cert_load(pathf("out/gen1.crt"), &x), 0);
	assert_int_equal(cert_load(pathf("ca/ca.crt"), &ca), 0);
	assert_int_equal(crypto_load_private_key(pathf("out/gen1.key"), &key), 0);
	assert_int_equal(cert_key_matches(x, key), 0);
	assert_int_equal(EVP_PKEY_get_bits(key), DEVICE_KEY_BITS);
	assert_int_equal(X509_check_ca(x), 0);
	assert_int_equal(X509_get_signature_nid(x), NID_sha256WithRSAEncryption);
	assert_int_equal(X509_get_key_usage(x), KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT);
	assert_int_equal(X509_get_extended_key_usage(x), XKU_SSL_CLIENT | XKU_SSL_SERVER);
	assert_non_null(X509_get0_subject_key_id(x));
	assert_non_null(X509_get0_authority_key_id(x));
	assert_int_equal(
	    ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(x), X509_get0_subject_key_id(ca)), 0);
	serial = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
	assert_non_null(serial);
	assert_false(BN_is_negative(serial));
	assert_false(BN_is_zero(serial));
	assert_true(BN_num_bytes(serial) <= 16);
	BN_free(serial);

	rec = record(&index, "gen1", 0);
	assert_non_null(rec);
	assert_string_equal(json_string_value(json_object_get(rec, "serial")), info.serial);
	assert_string_equal(json_string_value(json_object_get(rec, "role")), "node");
	assert_int_equal(json_integer_value(json_object_get(rec, "not_before")), now - 60);
	assert_int_equal(json_integer_value(json_object_get(rec, "not_after")), to);
	assert_true(json_is_false(json_object_get(rec, "revoked")));
	assert_null(json_object_get(rec, "revoked_at"));
	assert_null(record(&index, "gen1", 1));
	json_decref(index);
	free(a);
	free(b);
	X509_free(x);
	X509_free(ca);
	EVP_PKEY_free(key);
}

/* With a CSR only the key is taken: name, home and role are the CA's to say. */
static void test_enrol_csr(void **state)
{
	int64_t now = clock_now();
	struct cert_info info;
	X509 *x = NULL;

	(void)state;
	assert_int_equal(
	    enrol(ca_dir, "csr1", CERT_ROLE_CONTROLLER, now - 60, now + 86400, pathf("csr.pem")),
	    0);
	assert_false(exists(pathf("out/csr1.key")));
	assert_int_equal(mode_of(pathf("out/csr1.crt")), 0644);
	assert_int_equal(verify("csr1", &info), 0);
	assert_string_equal(info.name, "csr1");
	assert_string_equal(info.home, "testhome");
	assert_int_equal(info.role, CERT_ROLE_CONTROLLER);
	assert_int_equal(cert_load(pathf("out/csr1.crt"), &x), 0);
	assert_int_equal(cert_key_matches(x, csr_key), 0);
	assert_int_equal(cert_key_matches(x, other_key), -IOTSEC_EKEYMISMATCH);
	X509_free(x);
}

/* A request whose CN names another device is the wrong file: refused before anything is
 * issued; for the device it names, it is fine. */
static void test_enrol_csr_named(void **state)
{
	int64_t now = clock_now();
	json_t *index = NULL;

	(void)state;
	assert_int_equal(enrol(ca_dir, "named1", CERT_ROLE_NODE, now, now + 60, pathf("named.pem")),
			 -IOTSEC_EIDENTITY);
	assert_false(exists(pathf("out/named1.crt")));
	assert_null(record(&index, "named1", 0));
	assert_int_equal(enrol(ca_dir, "evil", CERT_ROLE_NODE, now, now + 60, pathf("named.pem")),
			 0);
	assert_int_equal(verify("evil", NULL), 0);
	json_decref(index);
}

/* A certificate never outlives the CA's own; nothing is issued once that has ended, nor when it
 * ends before the certificate would start. */
static void test_enrol_validity_within_ca(void **state)
{
	int64_t now = clock_now(), ca_end;
	struct cert_info info;
	json_t *index = NULL;
	X509 *ca = NULL;

	(void)state;
	assert_int_equal(cert_load(pathf("ca/ca.crt"), &ca), 0);
	assert_int_equal(cert_time(X509_get0_notAfter(ca), &ca_end), 0);
	X509_free(ca);
	assert_int_equal(enrol(ca_dir, "long1", CERT_ROLE_NODE, now, ca_end + 86400, NULL), 0);
	assert_int_equal(verify("long1", &info), 0);
	assert_int_equal(info.not_after, ca_end);
	assert_int_equal(
	    json_integer_value(json_object_get(record(&index, "long1", 0), "not_after")), ca_end);
	assert_int_equal(enrol(ca_dir, "late1", CERT_ROLE_NODE, ca_end, ca_end + 60, NULL),
			 -ERANGE);
	clock_set_fake(ca_end);
	assert_int_equal(enrol(ca_dir, "late2", CERT_ROLE_NODE, ca_end - 60, ca_end + 60, NULL),
			 -EKEYEXPIRED);
	clock_set_fake(-1);
	assert_null(record(&index, "late1", 0));
	assert_null(record(&index, "late2", 0));
	json_decref(index);
}

/* The device gets what it checks the others with: the CA's certificate and its CRL, as they are
 * in the CA's directory. */
static void test_enrol_hands_out_ca_and_crl(void **state)
{
	char *a = NULL, *b = NULL;
	size_t alen, blen;

	(void)state;
	assert_int_equal(enrol_csr("hand1"), 0);
	for (int i = 0; i < 2; i++) {
		const char *name = i ? "crl.pem" : "ca.crt";

		assert_int_equal(file_read(pathf("ca/%s", name), 1 << 20, &a, &alen), 0);
		assert_int_equal(file_read(pathf("out/%s", name), 1 << 20, &b, &blen), 0);
		assert_int_equal(alen, blen);
		assert_memory_equal(a, b, alen);
		assert_int_equal(mode_of(pathf("out/%s", name)), 0644);
		free(a), free(b);
	}
}

static void test_enrol_csr_refused(void **state)
{
	int64_t now = clock_now();
	EVP_PKEY *weak = NULL;
	X509_REQ *req = NULL;
	FILE *f;
	json_t *index = NULL;

	(void)state;
	/* The tampered request really does fail its own signature check. */
	assert_non_null(f = fopen(pathf("badsig.pem"), "r"));
	assert_non_null(req = PEM_read_X509_REQ(f, NULL, NULL, NULL));
	fclose(f);
	assert_int_not_equal(X509_REQ_verify(req, X509_REQ_get0_pubkey(req)), 1);
	X509_REQ_free(req);

	assert_int_equal(enrol_csr("badcsr"), 0); /* the good one passes: the setup is right */
	assert_int_equal(ca_revoke(ca_dir, "badcsr"), 0);
	assert_int_equal(
	    enrol(ca_dir, "badcsr", CERT_ROLE_NODE, now, now + 60, pathf("badsig.pem")), -EBADMSG);
	assert_int_equal(file_write_atomic(pathf("garbage.pem"), "hello\n", 6, 0644), 0);
	assert_int_equal(
	    enrol(ca_dir, "badcsr", CERT_ROLE_NODE, now, now + 60, pathf("garbage.pem")), -EBADMSG);
	/* A certificate is not a request. */
	assert_int_equal(enrol(ca_dir, "badcsr", CERT_ROLE_NODE, now, now + 60, pathf("ca/ca.crt")),
			 -EBADMSG);
	assert_int_equal(enrol(ca_dir, "badcsr", CERT_ROLE_NODE, now, now + 60, pathf("nothere")),
			 -ENOENT);
	assert_non_null(weak = EVP_RSA_gen(1024));
	assert_int_equal(csr_write(pathf("weak.pem"), weak, NULL, NULL), 0);
	assert_int_equal(enrol(ca_dir, "badcsr", CERT_ROLE_NODE, now, now + 60, pathf("weak.pem")),
			 -EKEYREJECTED);
	EVP_PKEY_free(weak);
	/* An exponent other than 65537 (here 3; a huge one makes every verify costly). */
	{
		EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
		BIGNUM *three = BN_new();

		weak = NULL;
		assert_non_null(ctx);
		assert_non_null(three);
		assert_int_equal(BN_set_word(three, 3), 1);
		assert_int_equal(EVP_PKEY_keygen_init(ctx), 1);
		assert_int_equal(EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, 2048), 1);
		assert_int_equal(EVP_PKEY_CTX_set1_rsa_keygen_pubexp(ctx, three), 1);
		assert_int_equal(EVP_PKEY_generate(ctx, &weak), 1);
		BN_free(three);
		EVP_PKEY_CTX_free(ctx);
	}
	assert_int_equal(csr_write(pathf("exp3.pem"), weak, NULL, NULL), 0);
	assert_int_equal(enrol(ca_dir, "badcsr", CERT_ROLE_NODE, now, now + 60, pathf("exp3.pem")),
			 -EKEYREJECTED);
	EVP_PKEY_free(weak);
	/* Nothing was issued for any of them. */
	assert_non_null(record(&index, "badcsr", 0));
	assert_null(record(&index, "badcsr", 1));
	json_decref(index);
}

static void test_enrol_duplicate(void **state)
{
	int64_t now = clock_now();
	char *before = NULL, *after = NULL;
	size_t blen, alen;
	json_t *index = NULL;

	(void)state;
	assert_int_equal(enrol_csr("dup1"), 0);
	assert_int_equal(file_read(pathf("out/dup1.crt"), 1 << 16, &before, &blen), 0);
	assert_int_equal(enrol_csr("dup1"), -EEXIST);
	assert_int_equal(enrol(ca_dir, "dup1", CERT_ROLE_CONTROLLER, now, now + 60, NULL), -EEXIST);
	assert_int_equal(file_read(pathf("out/dup1.crt"), 1 << 16, &after, &alen), 0);
	assert_int_equal(alen, blen);
	assert_memory_equal(before, after, blen);
	assert_null(record(&index, "dup1", 1));

	/* A certificate that has not started yet still counts. */
	assert_int_equal(
	    enrol(ca_dir, "dup2", CERT_ROLE_NODE, now + 86400, now + 2 * 86400, pathf("csr.pem")),
	    0);
	assert_int_equal(enrol_csr("dup2"), -EEXIST);
	json_decref(index);
	free(before);
	free(after);
}

/* Once the old certificate has expired, or been revoked, the device may be enrolled again. */
static void test_enrol_again(void **state)
{
	int64_t now = clock_now();
	json_t *index = NULL;

	(void)state;
	assert_int_equal(
	    enrol(ca_dir, "again1", CERT_ROLE_NODE, now - 60, now + 100, pathf("csr.pem")), 0);
	clock_set_fake(now + 101);
	assert_int_equal(enrol_csr("again1"), 0);
	assert_int_equal(verify("again1", NULL), 0);
	assert_non_null(record(&index, "again1", 1));
	clock_set_fake(-1);

	assert_int_equal(enrol_csr("again2"), 0);
	assert_int_equal(ca_revoke(ca_dir, "again2"), 0);
	assert_int_equal(enrol_csr("again2"), 0);
	assert_int_equal(verify("again2", NULL), 0);
	json_decref(index);
}

static const char *const bad_names[] = {
    "",
    "../x",
    "-x",
    ".x",
    "a b",
    "a/b",
    "pi1\n",
    "caf\xc3\xa9",
    "x;rm",
    "a\\b",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", /* 64 */
};

static void test_name_valid(void **state)
{
	static const char *const good[] = {
	    "a",
	    "pi1",
	    "pi-1.home_2",
	    "A9",
	    "x-",
	    "x.",
	    "_x",
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", /* 63 */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_true(ca_name_valid(good[i]));
	for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++)
		assert_false(ca_name_valid(bad_names[i]));
	assert_false(ca_name_valid(NULL));
}

static void test_enrol_bad_names(void **state)
{
	int64_t now = clock_now();

	(void)state;
	for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++)
		assert_int_equal(
		    enrol(ca_dir, bad_names[i], CERT_ROLE_NODE, now, now + 60, pathf("csr.pem")),
		    -EINVAL);
	/* Valid as a name, but OUT/ca.crt is the CA's copy. */
	assert_int_equal(enrol(ca_dir, "ca", CERT_ROLE_NODE, now, now + 60, pathf("csr.pem")),
			 -EINVAL);
	assert_int_equal(enrol(ca_dir, NULL, CERT_ROLE_NODE, now, now + 60, pathf("csr.pem")),
			 -EINVAL);
	assert_false(exists(pathf("out/-x.crt")));
}

static void test_enrol_bad_request(void **state)
{
	int64_t now = clock_now();
	struct ca_enrol_req req = {.device = "badreq",
				   .role = CERT_ROLE_NODE,
				   .not_before = now,
				   .not_after = now + 60,
				   .csr_path = pathf("csr.pem")};

	(void)state;
	assert_int_equal(enrol(ca_dir, "badreq", CERT_ROLE_NODE, now, now, NULL), -EINVAL);
	assert_int_equal(enrol(ca_dir, "badreq", CERT_ROLE_NODE, now, now - 1, NULL), -EINVAL);
	assert_int_equal(enrol(ca_dir, "badreq", CERT_ROLE_NODE, -10, now, NULL), -EINVAL);
	assert_int_equal(enrol(ca_dir, "badreq", CERT_ROLE_NODE, now, INT64_MAX, NULL), -EINVAL);
	assert_int_equal(enrol(ca_dir, "badreq", 0, now, now + 60, NULL), -EINVAL);
	assert_int_equal(enrol(ca_dir, "badreq", CERT_ROLES_ANY, now, now + 60, NULL), -EINVAL);
	assert_int_equal(enrol(ca_dir, "badreq", 1 << 5, now, now + 60, NULL), -EINVAL);
	assert_int_equal(ca_enrol(ca_dir, &req), -EINVAL); /* no out_dir */
	assert_false(exists(pathf("out/badreq.crt")));
	/* No CA there. */
	assert_int_equal(enrol(pathf("noca"), "badreq", CERT_ROLE_NODE, now, now + 60, NULL),
			 -ENOENT);
}

static void test_revoke(void **state)
{
	int64_t now = clock_now();
	long before = crl_number("ca");
	json_t *index = NULL, *rec;
	X509_CRL *crl = NULL;
	X509_REVOKED *rev = NULL;
	X509 *x = NULL;
	FILE *f;

	(void)state;
	assert_int_equal(enrol_csr("rev1"), 0);
	assert_int_equal(enrol_csr("rev2"), 0);
	assert_int_equal(verify("rev1", NULL), 0);
	clock_set_fake(now); /* so revoked_at is known */
	assert_int_equal(ca_revoke(ca_dir, "rev1"), 0);
	assert_int_equal(verify("rev1", NULL), -EKEYREVOKED);
	assert_int_equal(verify("rev2", NULL), 0);

	rec = record(&index, "rev1", 0);
	assert_non_null(rec);
	assert_true(json_is_true(json_object_get(rec, "revoked")));
	assert_int_equal(json_integer_value(json_object_get(rec, "revoked_at")), now);
	assert_true(json_is_false(json_object_get(record(&index, "rev2", 0), "revoked")));

	assert_int_equal(crl_number("ca"), before + 1);
	assert_non_null(f = fopen(pathf("ca/crl.pem"), "r"));
	assert_non_null(crl = PEM_read_X509_CRL(f, NULL, NULL, NULL));
	fclose(f);
	assert_int_equal(X509_CRL_get_version(crl), X509_CRL_VERSION_2);
	assert_int_equal(cert_load(pathf("out/rev1.crt"), &x), 0);
	assert_int_equal(X509_CRL_get0_by_serial(crl, &rev, X509_get0_serialNumber(x)), 1);
	assert_int_equal(ASN1_TIME_cmp_time_t(X509_REVOKED_get0_revocationDate(rev), now), 0);
	X509_free(x);
	X509_CRL_free(crl);
	json_decref(index);
}

/* By serial: that one certificate only, in any case of hex; once, and never an unknown one. */
static void test_revoke_serial(void **state)
{
	json_t *index = NULL;
	char serial[64], upper[64];
	long before;

	(void)state;
	assert_int_equal(enrol_csr("ser1"), 0);
	assert_int_equal(ca_revoke(ca_dir, "ser1"), 0);
	assert_int_equal(enrol_csr("ser1"), 0); /* enrolled again: a second certificate */
	snprintf(serial, sizeof(serial), "%s",
		 json_string_value(json_object_get(record(&index, "ser1", 1), "serial")));
	for (size_t i = 0; i <= strlen(serial); i++)
		upper[i] = (char)toupper((unsigned char)serial[i]);
	assert_int_equal(verify("ser1", NULL), 0);
	assert_int_equal(ca_revoke_serial(ca_dir, upper), 0);
	assert_int_equal(verify("ser1", NULL), -EKEYREVOKED);
	assert_true(json_is_true(json_object_get(record(&index, "ser1", 1), "revoked")));
	before = crl_number("ca");
	assert_int_equal(ca_revoke_serial(ca_dir, serial), -ENOENT);
	assert_int_equal(ca_revoke_serial(ca_dir, "00"), -ENOENT);
	assert_int_equal(ca_revoke_serial(ca_dir, ""), -EINVAL);
	assert_int_equal(ca_revoke_serial(ca_dir, NULL), -EINVAL);
	assert_int_equal(crl_number("ca"), before);
	json_decref(index);
}

static void test_revoke_refused(void **state)
{
	long before;

	(void)state;
	assert_int_equal(enrol_csr("rev3"), 0);
	assert_int_equal(ca_revoke(ca_dir, "rev3"), 0);
	before = crl_number("ca");
	assert_int_equal(ca_revoke(ca_dir, "rev3"), -ENOENT); /* nothing left to revoke */
	assert_int_equal(ca_revoke(ca_dir, "nobody"), -ENOENT);
	assert_int_equal(ca_revoke(ca_dir, "../x"), -EINVAL);
	assert_int_equal(ca_revoke(ca_dir, ""), -EINVAL);
	assert_int_equal(ca_revoke(pathf("noca"), "rev3"), -ENOENT);
	assert_int_equal(crl_number("ca"), before);
}

static void test_write_crl(void **state)
{
	int64_t now = clock_now();
	long n = crl_number("ca");
	X509_CRL *crl = NULL;
	FILE *f;

	(void)state;
	clock_set_fake(now + 1000);
	assert_int_equal(ca_write_crl(ca_dir), 0);
	assert_int_equal(ca_write_crl(ca_dir), 0);
	clock_set_fake(-1);
	assert_int_equal(crl_number("ca"), n + 2);
	assert_int_equal(mode_of(pathf("ca/crl.pem")), 0644);
	assert_non_null(f = fopen(pathf("ca/crl.pem"), "r"));
	assert_non_null(crl = PEM_read_X509_CRL(f, NULL, NULL, NULL));
	fclose(f);
	assert_int_equal(ASN1_TIME_cmp_time_t(X509_CRL_get0_lastUpdate(crl), now + 1000), 0);
	assert_int_equal(
	    ASN1_TIME_cmp_time_t(X509_CRL_get0_nextUpdate(crl), now + 1000 + CA_CRL_DAYS * 86400),
	    0);
	assert_int_equal(X509_CRL_get_signature_nid(crl), NID_sha256WithRSAEncryption);
	X509_CRL_free(crl);
	assert_int_equal(ca_write_crl(pathf("noca")), -ENOENT);
	/* A CRL dated in the future would fail every later verification. */
	assert_int_equal(ca_write_crl(ca_dir), 0);
}

static void test_list(void **state)
{
	json_t *index = NULL, *rec, *l1, *l2;
	struct cert_info i1, i2;
	size_t i;

	(void)state;
	assert_int_equal(enrol_csr("list1"), 0);
	assert_int_equal(enrol(ca_dir, "list2", CERT_ROLE_CONTROLLER, clock_now(),
			       clock_now() + 600, pathf("csr.pem")),
			 0);
	assert_int_equal(ca_revoke(ca_dir, "list2"), 0);
	assert_int_equal(verify("list1", &i1), 0);
	assert_int_equal(verify("list2", &i2), -EKEYREVOKED);
	{
		X509 *x = NULL;

		assert_int_equal(cert_load(pathf("out/list2.crt"), &x), 0);
		assert_int_equal(cert_info_get(x, &i2), 0);
		X509_free(x);
	}
	l1 = record(&index, "list1", 0);
	assert_non_null(l1);
	l2 = json_incref(record(&index, "list2", 0));
	assert_non_null(l2);
	assert_null(record(&index, "list1", 1));
	assert_null(record(&index, "list2", 1));
	l1 = record(&index, "list1", 0);
	assert_string_equal(json_string_value(json_object_get(l1, "serial")), i1.serial);
	assert_string_equal(json_string_value(json_object_get(l2, "serial")), i2.serial);
	assert_string_not_equal(i1.serial, i2.serial);
	assert_string_equal(json_string_value(json_object_get(l1, "role")), "node");
	assert_string_equal(json_string_value(json_object_get(l2, "role")), "controller");
	assert_int_equal(json_integer_value(json_object_get(l2, "not_after")), i2.not_after);
	assert_true(json_is_false(json_object_get(l1, "revoked")));
	assert_true(json_is_true(json_object_get(l2, "revoked")));
	assert_true(json_is_integer(json_object_get(l2, "revoked_at")));
	assert_int_equal(json_object_size(l1), 6);
	assert_int_equal(json_object_size(l2), 7);
	/* Every serial issued is distinct. */
	json_array_foreach(index, i, rec)
	{
		size_t j;
		json_t *other;

		json_array_foreach(index, j, other)
		{
			if (j != i)
				assert_string_not_equal(
				    json_string_value(json_object_get(rec, "serial")),
				    json_string_value(json_object_get(other, "serial")));
		}
	}
	json_decref(l2);
	json_decref(index);
	assert_int_equal(ca_list(pathf("noca"), &index), -ENOENT);
}

static void test_loose_key(void **state)
{
	(void)state;
	assert_int_equal(chmod(pathf("ca/ca.key"), 0644), 0);
	assert_int_equal(enrol_csr("loose1"), -IOTSEC_ESECRET);
	assert_int_equal(ca_write_crl(ca_dir), -IOTSEC_ESECRET);
	assert_int_equal(chmod(pathf("ca/ca.key"), 0640), 0);
	assert_int_equal(enrol_csr("loose1"), -IOTSEC_ESECRET);
	assert_false(exists(pathf("out/loose1.crt")));
	assert_int_equal(chmod(pathf("ca/ca.key"), 0600), 0);
	assert_int_equal(enrol_csr("loose1"), 0);
}

/* A copy of the group CA in BASE/name, with index (if not NULL) replacing its index. */
static const char *ca_copy(const char *name, const char *index)
{
	static const char *const files[] = {"ca.key", "ca.crt", "crl.pem", "index.json"};
	static char dir[PATH_MAX];

	snprintf(dir, sizeof(dir), "%s/%s", base, name);

	assert_int_equal(file_mkdirs(dir, 0700), 0);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		assert_int_equal(copy_file(pathf("ca/%s", files[i]), pathf("%s/%s", name, files[i]),
					   i == 0 ? 0600 : 0644),
				 0);
	if (index != NULL)
		assert_int_equal(
		    file_write_atomic(pathf("%s/index.json", name), index, strlen(index), 0644), 0);
	return dir;
}

static void test_bad_index(void **state)
{
	static const char *const bad[] = {
	    "",
	    "not json",
	    "{}",
	    "[1]",
	    "[[]]",
	    "[] []",
	    "[{\"device\":\"x\",\"role\":\"node\",\"not_before\":1,\"not_after\":2,"
	    "\"revoked\":false}]",
	    "[{\"serial\":\"ab\",\"device\":\"x\",\"role\":\"admin\",\"not_before\":1,"
	    "\"not_after\":2,\"revoked\":false}]",
	    "[{\"serial\":\"ab\",\"device\":\"../x\",\"role\":\"node\",\"not_before\":1,"
	    "\"not_after\":2,\"revoked\":false}]",
	    "[{\"serial\":\"xyz\",\"device\":\"x\",\"role\":\"node\",\"not_before\":1,"
	    "\"not_after\":2,\"revoked\":false}]",
	    "[{\"serial\":\"ab\",\"device\":\"x\",\"role\":\"node\",\"not_before\":1,"
	    "\"not_after\":2,\"revoked\":true}]",
	    "[{\"serial\":\"ab\",\"device\":\"x\",\"role\":\"node\",\"not_before\":3,"
	    "\"not_after\":2,\"revoked\":false}]",
	    "[{\"serial\":\"ab\",\"device\":\"x\",\"role\":\"node\",\"not_before\":\"1\","
	    "\"not_after\":2,\"revoked\":false}]",
	};
	json_t *index = NULL;
	int64_t now = clock_now();

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *dir = ca_copy("badindex", bad[i]);

		assert_int_equal(ca_list(dir, &index), -EBADMSG);
		assert_int_equal(enrol(dir, "bi1", CERT_ROLE_NODE, now, now + 60, pathf("csr.pem")),
				 -EBADMSG);
		assert_int_equal(ca_write_crl(dir), -EBADMSG);
	}
	assert_null(index);
	/* And a good one, so the copies above were otherwise usable. */
	ca_copy("badindex", "[]");
	assert_int_equal(
	    enrol(pathf("badindex"), "bi1", CERT_ROLE_NODE, now, now + 60, pathf("csr.pem")), 0);
}

/* A CRL that is garbage or not signed by our key must not lend its number to the next one. */
static void test_bad_crl(void **state)
{
	X509_CRL *crl = X509_CRL_new();
	X509 *ca = NULL;
	ASN1_TIME *now = ASN1_TIME_set(NULL, time(NULL));
	FILE *f;
	const char *dir;

	(void)state;
	dir = ca_copy("badcrl", NULL);
	assert_int_equal(file_write_atomic(pathf("badcrl/crl.pem"), "junk", 4, 0644), 0);
	assert_int_equal(ca_write_crl(dir), -EBADMSG);

	/* Names our CA as issuer, but another key signed it. */
	assert_non_null(crl);
	assert_int_equal(cert_load(pathf("ca/ca.crt"), &ca), 0);
	assert_int_equal(X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca)), 1);
	assert_int_equal(X509_CRL_set1_lastUpdate(crl, now), 1);
	assert_int_equal(X509_CRL_sign(crl, other_key, EVP_sha256()) > 0, 1);
	X509_free(ca);
	ASN1_TIME_free(now);
	assert_non_null(f = fopen(pathf("badcrl/crl.pem"), "w"));
	assert_int_equal(PEM_write_X509_CRL(f, crl), 1);
	fclose(f);
	X509_CRL_free(crl);
	assert_int_equal(ca_write_crl(dir), -EBADMSG);

	/* With no CRL at all, numbering starts again at 1. */
	assert_int_equal(unlink(pathf("badcrl/crl.pem")), 0);
	assert_int_equal(ca_write_crl(dir), 0);
	assert_int_equal(crl_number("badcrl"), 1);
}

static void test_wrong_ca_key(void **state)
{
	const char *dir = ca_copy("wrongkey", NULL);

	(void)state;
	assert_int_equal(crypto_save_private_key(pathf("wrongkey/ca.key"), other_key), 0);
	assert_int_equal(
	    enrol(dir, "wk1", CERT_ROLE_NODE, clock_now(), clock_now() + 60, pathf("csr.pem")),
	    -IOTSEC_EKEYMISMATCH);
	assert_int_equal(ca_revoke(dir, "wk1"), -IOTSEC_EKEYMISMATCH);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_init_files, test_teardown),
	    cmocka_unit_test_teardown(test_init_twice, test_teardown),
	    cmocka_unit_test_teardown(test_init_partial_refused, test_teardown),
	    cmocka_unit_test_teardown(test_init_bad_args, test_teardown),
	    cmocka_unit_test_teardown(test_enrol_generated, test_teardown),
	    cmocka_unit_test_teardown(test_enrol_csr, test_teardown),
	    cmocka_unit_test_teardown(test_enrol_csr_named, test_teardown),
	    cmocka_unit_test_teardown(test_enrol_validity_within_ca, test_teardown),
	    cmocka_unit_test_teardown(test_enrol_hands_out_ca_and_crl, test_teardown),
	    cmocka_unit_test_teardown(test_enrol_csr_refused, test_teardown),
	    cmocka_unit_test_teardown(test_enrol_duplicate, test_teardown),
	    cmocka_unit_test_teardown(test_enrol_again, test_teardown),
	    cmocka_unit_test_teardown(test_name_valid, test_teardown),
	    cmocka_unit_test_teardown(test_enrol_bad_names, test_teardown),
	    cmocka_unit_test_teardown(test_enrol_bad_request, test_teardown),
	    cmocka_unit_test_teardown(test_revoke, test_teardown),
	    cmocka_unit_test_teardown(test_revoke_serial, test_teardown),
	    cmocka_unit_test_teardown(test_revoke_refused, test_teardown),
	    cmocka_unit_test_teardown(test_write_crl, test_teardown),
	    cmocka_unit_test_teardown(test_list, test_teardown),
	    cmocka_unit_test_teardown(test_loose_key, test_teardown),
	    cmocka_unit_test_teardown(test_bad_index, test_teardown),
	    cmocka_unit_test_teardown(test_bad_crl, test_teardown),
	    cmocka_unit_test_teardown(test_wrong_ca_key, test_teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
