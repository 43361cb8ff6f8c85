#include "ca.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include "clock.h"
#include "crypto.h"
#include "file.h"
#include "log.h"

#define CA_DAY	      86400
#define CA_DAYS_MAX   36500 /* a century is plenty and keeps every date inside ASN1_TIME */
#define CA_TIME_MAX   INT64_C(253402300799) /* 9999-12-31T23:59:59Z, the last X.509 time */
#define CA_SERIAL_LEN 16
#define CA_PEM_MAX    (64 * 1024)
#define CA_INDEX_MAX  (16 * 1024 * 1024)
#define CA_CN_SUFFIX  " home CA"
#define CA_CN_MAX     64 /* RFC 5280 ub-common-name; OpenSSL refuses longer */

static const char *const ca_files[] = {"ca.key", "ca.crt", "crl.pem", "index.json"};

/* One CA directory opened for an operation: locked, with what the operation needs loaded. */
struct ca {
	const char *dir;
	int lock_fd;
	X509 *cert;
	EVP_PKEY *key;
	json_t *index;
};

static const struct ca ca_null = {.lock_fd = -1};

static int ca_path(char out[PATH_MAX], const char *dir, const char *name, const char *ext)
{
	int n = snprintf(out, PATH_MAX, "%s/%s%s", dir, name, ext ? ext : "");

	return n < 0 || n >= PATH_MAX ? -ENAMETOOLONG : 0;
}

bool ca_name_valid(const char *name)
{
	size_t len;

	if (name == NULL)
		return false;
	len = strnlen(name, CERT_NAME_MAX);
	if (len == 0 || len >= CERT_NAME_MAX || name[0] == '.' || name[0] == '-')
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];

		/* Explicit ranges: isalnum() would follow the locale. */
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

/* Two writers at once would each append to the index they read and one record would be lost,
 * so every operation holds a lock on the directory itself (no lock file to leave behind). */
static int ca_lock(const char *dir, int op, int *ret_fd)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r;

	if (fd < 0)
		return -errno;
	if (flock(fd, op) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	*ret_fd = fd;
	return 0;
}

/* One directory, in a parent that exists (as openssl and ssh-keygen do): a mistyped path does
 * not grow a tree of directories somewhere. An existing directory is fine. */
static int make_dir(const char *path, mode_t mode)
{
	struct stat st;

	if (mkdir(path, mode) == 0)
		return 0;
	if (errno != EEXIST)
		return -errno;
	if (stat(path, &st) < 0)
		return -errno;
	return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

static int writable(const char *dir)
{
	return access(dir, W_OK) < 0 ? -errno : 0;
}

static void ca_close(struct ca *ca)
{
	if (ca->lock_fd >= 0)
		close(ca->lock_fd);
	X509_free(ca->cert);
	EVP_PKEY_free(ca->key);
	json_decref(ca->index);
	*ca = ca_null;
}

/* Serials as cert_info shows them: up to 20 bytes of hex. */
static bool serial_hex_valid(const char *s)
{
	size_t len = strlen(s);

	return len > 0 && len <= 40 && strspn(s, "0123456789abcdefABCDEF") == len;
}

/* The index is ours, but a hand-edited or damaged one must not make us sign nonsense. */
static int index_check(json_t *index)
{
	size_t i;
	json_t *rec;

	if (!json_is_array(index))
		return -EBADMSG;
	json_array_foreach(index, i, rec)
	{
		const char *serial, *device, *role;
		json_int_t nb, na, at = 0;
		int revoked;
		enum cert_role parsed;

		if (json_unpack(rec, "{s:s,s:s,s:s,s:I,s:I,s:b,s?I}", "serial", &serial, "device",
				&device, "role", &role, "not_before", &nb, "not_after", &na,
				"revoked", &revoked, "revoked_at", &at) != 0 ||
		    !ca_name_valid(device) || cert_role_parse(role, &parsed) < 0 || na <= nb ||
		    !serial_hex_valid(serial) ||
		    (revoked && json_object_get(rec, "revoked_at") == NULL))
			return -EBADMSG;
	}
	return 0;
}

static int index_load(const char *dir, json_t **ret)
{
	char path[PATH_MAX];
	char *text = NULL;
	size_t len;
	json_t *index = NULL;
	int r;

	if ((r = ca_path(path, dir, "index.json", NULL)) < 0 ||
	    (r = file_read(path, CA_INDEX_MAX, &text, &len)) < 0)
		goto out;
	if ((index = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL)) == NULL) {
		r = -EBADMSG;
		goto out;
	}
	if ((r = index_check(index)) < 0)
		goto out;
	*ret = index;
	index = NULL;
out:
	json_decref(index);
	free(text);
	return r;
}

static int index_save(const char *dir, json_t *index)
{
	char path[PATH_MAX];
	char *text = NULL, *nl;
	size_t len;
	int r;

	if ((r = ca_path(path, dir, "index.json", NULL)) < 0)
		return r;
	r = -ENOMEM;
	if ((text = json_dumps(index, JSON_INDENT(2))) == NULL)
		goto out;
	/* A final newline keeps the file friendly to cat and diff. */
	len = strlen(text);
	if ((nl = realloc(text, len + 2)) == NULL)
		goto out;
	text = nl;
	memcpy(text + len, "\n", 2);
	r = file_write_atomic(path, text, len + 1, 0644);
out:
	free(text);
	return r;
}

/* Lock dir and load the CA certificate, its key and the index. The key file is refused when
 * others can read it (-IOTSEC_ESECRET), and must belong to the certificate. */
static int ca_open(const char *dir, struct ca *ret)
{
	struct ca ca = ca_null;
	char path[PATH_MAX];
	int r;

	ca.dir = dir;
	if ((r = ca_lock(dir, LOCK_EX, &ca.lock_fd)) < 0 ||
	    (r = ca_path(path, dir, "ca.crt", NULL)) < 0 || (r = cert_load(path, &ca.cert)) < 0 ||
	    (r = ca_path(path, dir, "ca.key", NULL)) < 0 ||
	    (r = crypto_load_private_key(path, &ca.key)) < 0 ||
	    (r = cert_key_matches(ca.cert, ca.key)) < 0 || (r = index_load(dir, &ca.index)) < 0)
		goto out;
	*ret = ca;
	ca = ca_null;
out:
	ca_close(&ca);
	return r;
}

static int name_new(const char *cn, const char *o, const char *ou, X509_NAME **ret)
{
	X509_NAME *n = X509_NAME_new();
	const struct {
		int nid;
		const char *v;
	} e[] = {{NID_commonName, cn}, {NID_organizationName, o}, {NID_organizationalUnitName, ou}};

	if (n == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < sizeof(e) / sizeof(e[0]); i++) {
		if (e[i].v != NULL &&
		    X509_NAME_add_entry_by_NID(n, e[i].nid, MBSTRING_UTF8,
					       (const unsigned char *)e[i].v, -1, -1, 0) != 1) {
			X509_NAME_free(n);
			return -EINVAL;
		}
	}
	*ret = n;
	return 0;
}

/* A v3 certificate without extensions or signature: a random positive serial (16 bytes, top
 * bit cleared), the given names, validity and public key. */
static int cert_skeleton(const X509_NAME *subject, const X509_NAME *issuer, int64_t not_before,
			 int64_t not_after, EVP_PKEY *pub, X509 **ret)
{
	uint8_t serial[CA_SERIAL_LEN];
	BIGNUM *bn = NULL;
	X509 *x = X509_new();
	int r;

	if ((r = crypto_random(serial, sizeof(serial))) < 0)
		goto out;
	serial[0] &= 0x7f;
	r = -ENOMEM;
	if (x == NULL || (bn = BN_bin2bn(serial, sizeof(serial), NULL)) == NULL ||
	    X509_set_version(x, X509_VERSION_3) != 1 ||
	    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) == NULL ||
	    X509_set_subject_name(x, subject) != 1 || X509_set_issuer_name(x, issuer) != 1 ||
	    ASN1_TIME_set(X509_getm_notBefore(x), (time_t)not_before) == NULL ||
	    ASN1_TIME_set(X509_getm_notAfter(x), (time_t)not_after) == NULL ||
	    X509_set_pubkey(x, pub) != 1)
		goto out;
	*ret = x;
	x = NULL;
	r = 0;
out:
	BN_free(bn);
	X509_free(x);
	return r;
}

static int cert_add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
	int ok = ext != NULL && X509_add_ext(x, ext, -1) == 1;

	X509_EXTENSION_free(ext);
	return ok ? 0 : -ENOMEM;
}

static int pem_save_cert(const char *path, X509 *x)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data;
	long len;
	int r = -ENOMEM;

	if (bio != NULL && PEM_write_bio_X509(bio, x) == 1 &&
	    (len = BIO_get_mem_data(bio, &data)) > 0)
		r = file_write_atomic(path, data, (size_t)len, 0644);
	BIO_free(bio);
	return r;
}

/* The number of the CRL now in dir plus one; 1 when there is none yet. A CRL that does not
 * verify under our key is refused rather than trusted for its number. */
static int crl_next_number(const struct ca *ca, ASN1_INTEGER **ret)
{
	char path[PATH_MAX];
	char *pem = NULL;
	size_t len;
	BIO *bio = NULL;
	X509_CRL *crl = NULL;
	ASN1_INTEGER *num = NULL;
	BIGNUM *bn = NULL;
	int r;

	if ((r = ca_path(path, ca->dir, "crl.pem", NULL)) < 0)
		goto out;
	r = file_read(path, CA_INDEX_MAX, &pem, &len);
	if (r == -ENOENT) {
		r = -ENOMEM;
		if ((bn = BN_new()) == NULL)
			goto out;
	} else if (r < 0) {
		goto out;
	} else {
		r = -EBADMSG;
		if ((bio = BIO_new_mem_buf(pem, (int)len)) == NULL ||
		    (crl = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL)) == NULL ||
		    X509_CRL_verify(crl, X509_get0_pubkey(ca->cert)) != 1 ||
		    (num = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL)) == NULL ||
		    (bn = ASN1_INTEGER_to_BN(num, NULL)) == NULL)
			goto out;
	}
	r = -ENOMEM;
	if (BN_add_word(bn, 1) != 1 || (*ret = BN_to_ASN1_INTEGER(bn, NULL)) == NULL)
		goto out;
	r = 0;
out:
	BN_free(bn);
	ASN1_INTEGER_free(num);
	X509_CRL_free(crl);
	BIO_free(bio);
	free(pem);
	return r;
}

static int crl_add_revoked(X509_CRL *crl, const char *serial_hex, int64_t when)
{
	X509_REVOKED *rev = X509_REVOKED_new();
	BIGNUM *bn = NULL;
	ASN1_INTEGER *serial = NULL;
	ASN1_TIME *t = ASN1_TIME_set(NULL, (time_t)when);
	int r = -ENOMEM;

	if (rev == NULL || t == NULL || BN_hex2bn(&bn, serial_hex) == 0 ||
	    (serial = BN_to_ASN1_INTEGER(bn, NULL)) == NULL ||
	    X509_REVOKED_set_serialNumber(rev, serial) != 1 ||
	    X509_REVOKED_set_revocationDate(rev, t) != 1 || X509_CRL_add0_revoked(crl, rev) != 1)
		goto out;
	rev = NULL; /* owned by crl now */
	r = 0;
out:
	ASN1_TIME_free(t);
	ASN1_INTEGER_free(serial);
	BN_free(bn);
	X509_REVOKED_free(rev);
	return r;
}

/* Sign and write a v2 CRL listing every revoked record of the index. The caller holds the lock
 * and the key. */
static int crl_write(const struct ca *ca)
{
	int64_t now = clock_now();
	X509_CRL *crl = X509_CRL_new();
	ASN1_TIME *last = ASN1_TIME_set(NULL, (time_t)now);
	ASN1_TIME *next = ASN1_TIME_set(NULL, (time_t)(now + (int64_t)CA_CRL_DAYS * CA_DAY));
	ASN1_INTEGER *number = NULL;
	X509_EXTENSION *aki = NULL;
	X509V3_CTX ctx;
	BIO *bio = NULL;
	char path[PATH_MAX], *data;
	long len;
	size_t i;
	json_t *rec;
	int r;

	if ((r = ca_path(path, ca->dir, "crl.pem", NULL)) < 0 ||
	    (r = crl_next_number(ca, &number)) < 0)
		goto out;
	r = -ENOMEM;
	if (crl == NULL || last == NULL || next == NULL ||
	    X509_CRL_set_version(crl, X509_CRL_VERSION_2) != 1 ||
	    X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca->cert)) != 1 ||
	    X509_CRL_set1_lastUpdate(crl, last) != 1 || X509_CRL_set1_nextUpdate(crl, next) != 1)
		goto out;
	json_array_foreach(ca->index, i, rec)
	{
		if (!json_is_true(json_object_get(rec, "revoked")))
			continue;
		if ((r = crl_add_revoked(crl, json_string_value(json_object_get(rec, "serial")),
					 json_integer_value(json_object_get(rec, "revoked_at")))) <
		    0)
			goto out;
	}
	r = -ENOMEM;
	X509V3_set_ctx(&ctx, ca->cert, NULL, NULL, crl, 0);
	if (X509_CRL_sort(crl) != 1 ||
	    X509_CRL_add1_ext_i2d(crl, NID_crl_number, number, 0, 0) != 1 ||
	    (aki = X509V3_EXT_conf_nid(NULL, &ctx, NID_authority_key_identifier, "keyid:always")) ==
		NULL ||
	    X509_CRL_add_ext(crl, aki, -1) != 1 || X509_CRL_sign(crl, ca->key, EVP_sha256()) <= 0 ||
	    (bio = BIO_new(BIO_s_mem())) == NULL || PEM_write_bio_X509_CRL(bio, crl) != 1 ||
	    (len = BIO_get_mem_data(bio, &data)) <= 0)
		goto out;
	r = file_write_atomic(path, data, (size_t)len, 0644);
out:
	BIO_free(bio);
	X509_EXTENSION_free(aki);
	ASN1_INTEGER_free(number);
	ASN1_TIME_free(next);
	ASN1_TIME_free(last);
	X509_CRL_free(crl);
	return r;
}

/* Refuse to touch a directory that holds any part of a CA: a stray ca.key may be the only copy
 * of a home's key. */
static int ca_absent(const char *dir)
{
	char path[PATH_MAX];
	struct stat st;
	int r;

	for (size_t i = 0; i < sizeof(ca_files) / sizeof(ca_files[0]); i++) {
		if ((r = ca_path(path, dir, ca_files[i], NULL)) < 0)
			return r;
		if (lstat(path, &st) == 0)
			return -EEXIST;
		if (errno != ENOENT)
			return -errno;
	}
	return 0;
}

static int ca_self_sign(const char *home, int days, EVP_PKEY *key, X509 **ret)
{
	char cn[CA_CN_MAX + 1];
	int64_t now = clock_now();
	X509_NAME *name = NULL;
	X509 *x = NULL;
	X509V3_CTX ctx;
	int r;

	snprintf(cn, sizeof(cn), "%s%s", home, CA_CN_SUFFIX);
	if ((r = name_new(cn, home, NULL, &name)) < 0 ||
	    (r = cert_skeleton(name, name, now, now + (int64_t)days * CA_DAY, key, &x)) < 0)
		goto out;
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	if ((r = cert_add_ext(x, &ctx, NID_basic_constraints, "critical,CA:TRUE")) < 0 ||
	    (r = cert_add_ext(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign")) < 0 ||
	    (r = cert_add_ext(x, &ctx, NID_subject_key_identifier, "hash")) < 0)
		goto out;
	if (X509_sign(x, key, EVP_sha256()) <= 0) {
		r = -ENOMEM;
		goto out;
	}
	*ret = x;
	x = NULL;
out:
	X509_free(x);
	X509_NAME_free(name);
	return r;
}

int ca_init(const char *dir, const char *home, int days)
{
	struct ca ca = ca_null;
	char path[PATH_MAX];
	size_t written = 0; /* how many of ca_files this call has created, in order */
	int r;

	if (!ca_name_valid(home) || strlen(home) + strlen(CA_CN_SUFFIX) > CA_CN_MAX || days < 1 ||
	    days > CA_DAYS_MAX)
		return -EINVAL;
	ca.dir = dir;
	/* Writable first: seconds of key generation must not end in "Permission denied". */
	if ((r = make_dir(dir, 0700)) < 0 || (r = ca_lock(dir, LOCK_EX, &ca.lock_fd)) < 0 ||
	    (r = ca_absent(dir)) < 0 || (r = writable(dir)) < 0)
		goto out;
	log_info("generating %d-bit CA key...", CA_KEY_BITS);
	if ((r = crypto_rsa_generate(CA_KEY_BITS, &ca.key)) < 0 ||
	    (r = ca_self_sign(home, days, ca.key, &ca.cert)) < 0)
		goto out;
	if ((ca.index = json_array()) == NULL) {
		r = -ENOMEM;
		goto out;
	}
	/* In the order of ca_files, counting each one written. */
	if ((r = ca_path(path, dir, "ca.key", NULL)) < 0 ||
	    (r = crypto_save_private_key(path, ca.key)) < 0)
		goto out;
	written++;
	if ((r = ca_path(path, dir, "ca.crt", NULL)) < 0 || (r = pem_save_cert(path, ca.cert)) < 0)
		goto out;
	written++;
	if ((r = crl_write(&ca)) < 0)
		goto out;
	written++;
	if ((r = index_save(dir, ca.index)) < 0)
		goto out;
	r = 0;
out:
	/* A half-made CA would make the next init refuse: remove what this call wrote, and only
	 * that. */
	for (size_t i = 0; r < 0 && i < written; i++)
		if (ca_path(path, dir, ca_files[i], NULL) == 0)
			unlink(path);
	ca_close(&ca);
	return r;
}

static int enrol_check(const struct ca_enrol_req *req)
{
	/* "ca" would put the device's certificate on top of the CA copy in the output directory. */
	if (!ca_name_valid(req->device) || strcmp(req->device, "ca") == 0 ||
	    cert_role_name(req->role) == NULL || req->out_dir == NULL || req->not_before < 0 ||
	    req->not_after <= req->not_before || req->not_after > CA_TIME_MAX)
		return -EINVAL;
	return 0;
}

/* Whether device holds a certificate that is neither revoked nor expired (or not yet valid). */
static bool index_has_valid(json_t *index, const char *device, int64_t now)
{
	size_t i;
	json_t *rec;

	json_array_foreach(index, i, rec)
	{
		if (strcmp(json_string_value(json_object_get(rec, "device")), device) == 0 &&
		    !json_is_true(json_object_get(rec, "revoked")) &&
		    json_integer_value(json_object_get(rec, "not_after")) > now)
			return true;
	}
	return false;
}

/* A CSR's public key, once its self-signature proves the requester holds the private key. The
 * key is all we take from it; a CN naming another device than the one enrolled is refused, as a
 * sign of the wrong file (-IOTSEC_EIDENTITY). */
static int csr_load(const char *path, const char *device, X509_REQ **ret)
{
	char cn[CERT_NAME_MAX];
	char *pem = NULL;
	size_t len;
	BIO *bio = NULL;
	X509_REQ *csr = NULL;
	EVP_PKEY *pub;
	int r;

	if ((r = file_read(path, CA_PEM_MAX, &pem, &len)) < 0)
		goto out;
	r = -EBADMSG;
	if ((bio = BIO_new_mem_buf(pem, (int)len)) == NULL ||
	    (csr = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL)) == NULL ||
	    (pub = X509_REQ_get0_pubkey(csr)) == NULL || X509_REQ_verify(csr, pub) != 1)
		goto out;
	if (X509_NAME_get_text_by_NID(X509_REQ_get_subject_name(csr), NID_commonName, cn,
				      sizeof(cn)) >= 0 &&
	    strcmp(cn, device) != 0) {
		r = -IOTSEC_EIDENTITY;
		goto out;
	}
	*ret = csr;
	csr = NULL;
	r = 0;
out:
	X509_REQ_free(csr);
	BIO_free(bio);
	free(pem);
	return r;
}

/* Devices sign with RSA-PSS and receive keys by RSA-OAEP: anything else is of no use. The
 * modulus and exponent are bounded too: every device verifies this key's signatures, and a
 * request with a huge exponent or modulus would make each verify cost many ordinary ones. */
static int device_key_check(EVP_PKEY *pub)
{
	BIGNUM *e = NULL;
	int bits = EVP_PKEY_get_bits(pub), r = -EKEYREJECTED;

	if (EVP_PKEY_is_a(pub, "RSA") && bits >= DEVICE_KEY_BITS && bits <= DEVICE_KEY_BITS_MAX &&
	    EVP_PKEY_get_bn_param(pub, "e", &e) == 1 && BN_is_word(e, RSA_F4))
		r = 0;
	BN_free(e);
	return r;
}

static int device_sign(const struct ca *ca, const struct ca_enrol_req *req, int64_t until,
		       EVP_PKEY *pub, X509 **ret)
{
	char home[CERT_NAME_MAX];
	X509_NAME *subject = NULL;
	X509 *x = NULL;
	X509V3_CTX ctx;
	int r;

	/* The home is the CA's O; the CN is the device enrolled, whatever the CSR said. */
	if (X509_NAME_get_text_by_NID(X509_get_subject_name(ca->cert), NID_organizationName, home,
				      sizeof(home)) <= 0) {
		r = -EBADMSG;
		goto out;
	}
	if ((r = name_new(req->device, home, cert_role_name(req->role), &subject)) < 0 ||
	    (r = cert_skeleton(subject, X509_get_subject_name(ca->cert), req->not_before, until,
			       pub, &x)) < 0)
		goto out;
	X509V3_set_ctx(&ctx, ca->cert, x, NULL, NULL, 0);
	if ((r = cert_add_ext(x, &ctx, NID_basic_constraints, "CA:FALSE")) < 0 ||
	    (r = cert_add_ext(x, &ctx, NID_key_usage,
			      "critical,digitalSignature,keyEncipherment")) < 0 ||
	    (r = cert_add_ext(x, &ctx, NID_ext_key_usage, "clientAuth,serverAuth")) < 0 ||
	    (r = cert_add_ext(x, &ctx, NID_subject_key_identifier, "hash")) < 0 ||
	    (r = cert_add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always")) < 0)
		goto out;
	if (X509_sign(x, ca->key, EVP_sha256()) <= 0) {
		r = -ENOMEM;
		goto out;
	}
	*ret = x;
	x = NULL;
out:
	X509_free(x);
	X509_NAME_free(subject);
	return r;
}

/* Write OUT/NAME.key (when we made it), OUT/NAME.crt and OUT/ca.crt. */
/* Everything the device needs in out_dir: its key (unless it made its own), its certificate,
 * and the home's CA certificate and CRL, which it checks the others against. */
static int enrol_write(const struct ca *ca, const struct ca_enrol_req *req, X509 *x, EVP_PKEY *key)
{
	static const char *const shared[] = {"ca.crt", "crl.pem"};
	char path[PATH_MAX];
	char *pem = NULL;
	size_t len;
	int r;

	if (key != NULL && ((r = ca_path(path, req->out_dir, req->device, ".key")) < 0 ||
			    (r = crypto_save_private_key(path, key)) < 0))
		return r;
	if ((r = ca_path(path, req->out_dir, req->device, ".crt")) < 0 ||
	    (r = pem_save_cert(path, x)) < 0)
		return r;
	for (size_t i = 0; i < sizeof(shared) / sizeof(shared[0]); i++) {
		if ((r = ca_path(path, ca->dir, shared[i], NULL)) < 0 ||
		    (r = file_read(path, CA_PEM_MAX, &pem, &len)) < 0)
			return r;
		if ((r = ca_path(path, req->out_dir, shared[i], NULL)) == 0)
			r = file_write_atomic(path, pem, len, 0644);
		free(pem);
		if (r < 0)
			return r;
	}
	return 0;
}

/* The validity the CA can give: no later than its own end (a certificate outliving its issuer
 * would be refused by every device then anyway), and nothing once the CA itself is over. */
static int enrol_validity(const struct ca *ca, const struct ca_enrol_req *req, int64_t *ret_until)
{
	int64_t ca_end, until = req->not_after;
	int r;

	if ((r = cert_time(X509_get0_notAfter(ca->cert), &ca_end)) < 0)
		return r;
	if (ca_end <= clock_now())
		return -EKEYEXPIRED;
	if (until > ca_end)
		until = ca_end;
	if (until <= req->not_before)
		return -ERANGE; /* the CA ends before the certificate would start */
	*ret_until = until;
	return 0;
}

int ca_enrol(const char *dir, const struct ca_enrol_req *req)
{
	struct ca ca = ca_null;
	X509_REQ *csr = NULL;
	EVP_PKEY *key = NULL, *pub;
	X509 *x = NULL;
	struct cert_info info;
	json_t *rec = NULL;
	int64_t until;
	int r;

	if ((r = enrol_check(req)) < 0 || (r = ca_open(dir, &ca)) < 0)
		goto out;
	if (index_has_valid(ca.index, req->device, clock_now())) {
		r = -EEXIST;
		goto out;
	}
	/* Every check that can fail before the key is made (it takes a second or more), and the
	 * output directory made only once nothing else can fail. */
	if ((r = enrol_validity(&ca, req, &until)) < 0 || (r = writable(dir)) < 0 ||
	    (req->csr_path && (r = csr_load(req->csr_path, req->device, &csr)) < 0) ||
	    (r = make_dir(req->out_dir, 0755)) < 0 || (r = writable(req->out_dir)) < 0)
		goto out;
	if (csr != NULL) {
		pub = X509_REQ_get0_pubkey(csr);
	} else {
		log_info("generating %d-bit key for %s...", DEVICE_KEY_BITS, req->device);
		if ((r = crypto_rsa_generate(DEVICE_KEY_BITS, &key)) < 0)
			goto out;
		pub = key;
	}
	if ((r = device_key_check(pub)) < 0 || (r = device_sign(&ca, req, until, pub, &x)) < 0 ||
	    (r = cert_info_get(x, &info)) < 0)
		goto out;
	rec =
	    json_pack("{s:s,s:s,s:s,s:I,s:I,s:b}", "serial", info.serial, "device", req->device,
		      "role", cert_role_name(req->role), "not_before", (json_int_t)info.not_before,
		      "not_after", (json_int_t)info.not_after, "revoked", 0);
	if (rec == NULL || json_array_append_new(ca.index, rec) != 0) {
		r = -ENOMEM;
		goto out;
	}
	/* Record before handing out: a certificate missing from the index could never be revoked,
	 * while a recorded one that failed to reach OUT only needs revoking before a retry. */
	if ((r = index_save(dir, ca.index)) < 0 || (r = enrol_write(&ca, req, x, key)) < 0)
		goto out;
out:
	X509_free(x);
	X509_REQ_free(csr);
	EVP_PKEY_free(key);
	ca_close(&ca);
	return r;
}

/* Revoke the unrevoked certificates of device (NULL: any) with serial (NULL: any). */
static int revoke_where(const char *dir, const char *device, const char *serial)
{
	struct ca ca = ca_null;
	int64_t now = clock_now();
	unsigned revoked = 0;
	size_t i;
	json_t *rec;
	int r;

	if ((r = ca_open(dir, &ca)) < 0)
		goto out;
	json_array_foreach(ca.index, i, rec)
	{
		if ((device && strcmp(json_string_value(json_object_get(rec, "device")), device)) ||
		    (serial &&
		     strcasecmp(json_string_value(json_object_get(rec, "serial")), serial)) ||
		    json_is_true(json_object_get(rec, "revoked")))
			continue;
		if (json_object_set_new(rec, "revoked", json_true()) != 0 ||
		    json_object_set_new(rec, "revoked_at", json_integer(now)) != 0) {
			r = -ENOMEM;
			goto out;
		}
		revoked++;
	}
	if (revoked == 0) {
		r = -ENOENT;
		goto out;
	}
	/* Index first: if the CRL then fails, the next ca_write_crl() still lists the serial;
	 * the other order could lose a revocation. */
	if ((r = index_save(dir, ca.index)) < 0 || (r = crl_write(&ca)) < 0)
		goto out;
out:
	ca_close(&ca);
	return r;
}

int ca_revoke(const char *dir, const char *device)
{
	return ca_name_valid(device) ? revoke_where(dir, device, NULL) : -EINVAL;
}

int ca_revoke_serial(const char *dir, const char *serial)
{
	return serial && serial[0] ? revoke_where(dir, NULL, serial) : -EINVAL;
}

int ca_write_crl(const char *dir)
{
	struct ca ca = ca_null;
	int r;

	if ((r = ca_open(dir, &ca)) < 0)
		goto out;
	r = crl_write(&ca);
out:
	ca_close(&ca);
	return r;
}

int ca_list(const char *dir, json_t **ret)
{
	int fd = -1;
	int r;

	if ((r = ca_lock(dir, LOCK_SH, &fd)) < 0)
		return r;
	r = index_load(dir, ret);
	close(fd);
	return r;
}
