#include "cert.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "clock.h"
#include "crl.h"
#include "file.h"
#include "log.h"

#define CERT_FILE_MAX (64 * 1024)

static const char *const role_names[] = {"node", "controller", "doctor", "relay"};

const char *cert_role_name(enum cert_role role)
{
	switch (role) {
	case CERT_ROLE_NODE:
		return role_names[0];
	case CERT_ROLE_CONTROLLER:
		return role_names[1];
	case CERT_ROLE_DOCTOR:
		return role_names[2];
	case CERT_ROLE_RELAY:
		return role_names[3];
	}
	return NULL;
}

int cert_role_parse(const char *name, enum cert_role *ret)
{
	if (strcmp(name, role_names[0]) == 0)
		*ret = CERT_ROLE_NODE;
	else if (strcmp(name, role_names[1]) == 0)
		*ret = CERT_ROLE_CONTROLLER;
	else if (strcmp(name, role_names[2]) == 0)
		*ret = CERT_ROLE_DOCTOR;
	else if (strcmp(name, role_names[3]) == 0)
		*ret = CERT_ROLE_RELAY;
	else
		return -EINVAL;
	return 0;
}

/* Copy the single entry nid of name into out; refuse absent, repeated, oversize or embedded-NUL
 * values, since these names decide identity. */
static int name_entry(X509_NAME *name, int nid, char out[CERT_NAME_MAX])
{
	int i = X509_NAME_get_index_by_NID(name, nid, -1);
	const ASN1_STRING *s;
	int len;

	if (i < 0 || X509_NAME_get_index_by_NID(name, nid, i) >= 0)
		return -EBADMSG;
	s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
	len = ASN1_STRING_length(s);
	if (len <= 0 || len >= CERT_NAME_MAX || memchr(ASN1_STRING_get0_data(s), 0, len))
		return -EBADMSG;
	memcpy(out, ASN1_STRING_get0_data(s), len);
	out[len] = '\0';
	return 0;
}

int cert_time(const ASN1_TIME *t, int64_t *ret)
{
	struct tm tm;

	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
		return -EBADMSG;
	*ret = (int64_t)timegm(&tm);
	return 0;
}

int cert_info_get(X509 *cert, struct cert_info *ret)
{
	X509_NAME *subj = X509_get_subject_name(cert);
	struct cert_info info = {0};
	char role[CERT_NAME_MAX];
	BIGNUM *bn = NULL;
	char *hex = NULL;
	unsigned fplen = 0;
	int r;

	if ((r = name_entry(subj, NID_commonName, info.name)) < 0 ||
	    (r = name_entry(subj, NID_organizationName, info.home)) < 0 ||
	    (r = name_entry(subj, NID_organizationalUnitName, role)) < 0)
		goto out;
	if (cert_role_parse(role, &info.role) < 0) {
		r = -EBADMSG;
		goto out;
	}
	if ((r = cert_time(X509_get0_notBefore(cert), &info.not_before)) < 0 ||
	    (r = cert_time(X509_get0_notAfter(cert), &info.not_after)) < 0)
		goto out;
	bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
	hex = bn ? BN_bn2hex(bn) : NULL;
	if (hex == NULL || strlen(hex) >= sizeof(info.serial)) {
		r = -EBADMSG;
		goto out;
	}
	for (size_t i = 0; hex[i]; i++)
		info.serial[i] =
		    (char)(hex[i] >= 'A' && hex[i] <= 'F' ? hex[i] - 'A' + 'a' : hex[i]);
	if (X509_digest(cert, EVP_sha256(), info.fp, &fplen) != 1 || fplen != CERT_FP_LEN) {
		r = -EBADMSG;
		goto out;
	}
	*ret = info;
	r = 0;
out:
	OPENSSL_free(hex);
	BN_free(bn);
	return r;
}

int cert_from_pem(const void *pem, size_t len, X509 **ret)
{
	BIO *bio = BIO_new_mem_buf(pem, (int)len);
	X509 *x = NULL;

	if (bio == NULL)
		return -ENOMEM;
	x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (x == NULL)
		return -EBADMSG;
	*ret = x;
	return 0;
}

int cert_load(const char *path, X509 **ret)
{
	char *pem = NULL;
	size_t len;
	int r = file_read(path, CERT_FILE_MAX, &pem, &len);

	if (r < 0)
		return r;
	r = cert_from_pem(pem, len, ret);
	free(pem);
	return r;
}

int cert_from_der(const void *der, size_t len, X509 **ret)
{
	const unsigned char *p = der;
	X509 *x;

	if (len == 0 || len > CERT_FILE_MAX)
		return -EBADMSG;
	x = d2i_X509(NULL, &p, (long)len);
	/* Trailing bytes after the certificate mean the input is not what it claims to be. */
	if (x == NULL || p != (const unsigned char *)der + len) {
		X509_free(x);
		return -EBADMSG;
	}
	*ret = x;
	return 0;
}

int cert_to_der(X509 *cert, uint8_t **ret, size_t *ret_len)
{
	unsigned char *der = NULL;
	int len = i2d_X509(cert, &der);

	if (len <= 0)
		return -EBADMSG;
	*ret = der; /* allocated by OPENSSL_malloc, which is malloc unless reconfigured */
	*ret_len = (size_t)len;
	return 0;
}

int cert_key_matches(X509 *cert, EVP_PKEY *key)
{
	EVP_PKEY *pub = X509_get0_pubkey(cert);

	return pub != NULL && key != NULL && EVP_PKEY_eq(pub, key) == 1 ? 0 : -IOTSEC_EKEYMISMATCH;
}

struct file_id {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
};

struct cert_store {
	char *ca_path, *crl_path, *received_path;  /* received_path: NULL for none */
	struct file_id ca_id, crl_id, received_id; /* received_id: zero while it is absent */
	X509 *ca;
	X509_CRL *crl; /* in force: the newer usable one of the two files (crl.h) */
	bool received_in_force;
	int received_status; /* cert_store_received_status() */
	X509_STORE *store;
	char home[CERT_NAME_MAX];
	uint64_t generation;
	int64_t valid_from, valid_until; /* when CA and CRL both hold */
};

static int file_id_get(const char *path, struct file_id *ret)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return -errno;
	*ret = (struct file_id){st.st_dev, st.st_ino, st.st_size, st.st_mtim};
	return 0;
}

/* The received file's identity, all zero when it is absent or cannot be looked at: a change
 * between those states and a file is a change to act on. */
static int received_id_get(const char *path, struct file_id *ret)
{
	int r = path ? file_id_get(path, ret) : -ENOENT;

	if (r < 0)
		*ret = (struct file_id){0};
	return r;
}

static bool file_id_eq(const struct file_id *a, const struct file_id *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec;
}

/* The received CRL at path when it is usable and newer than crl (-EALREADY when not newer). */
static int received_load(const char *path, X509 *ca, const X509_CRL *crl, X509_CRL **ret)
{
	X509_CRL *got = NULL;
	int r = crl_load(path, CRL_PEM_MAX, ca, &got);

	if (r == 0 && !crl_newer(got, crl)) {
		X509_CRL_free(got);
		return -EALREADY;
	}
	if (r == 0)
		*ret = got;
	return r;
}

/* Load CA and CRLs from the paths in s into a fresh X509_STORE, replacing the current one only
 * when everything needed loaded. The received CRL is never needed: without it, or with one that
 * is unusable or not newer, the administrator's is in force. */
static int store_reload(struct cert_store *s)
{
	struct file_id ca_id = {0}, crl_id = {0}, received_id = {0};
	X509 *ca = NULL;
	X509_CRL *crl = NULL, *received = NULL;
	X509_STORE *store = NULL;
	char home[CERT_NAME_MAX];
	int64_t from, until, t;
	int r, received_status;

	if ((r = file_id_get(s->ca_path, &ca_id)) < 0 || (r = cert_load(s->ca_path, &ca)) < 0)
		goto out;
	if (X509_check_ca(ca) == 0 ||
	    (r = name_entry(X509_get_subject_name(ca), NID_organizationName, home)) < 0) {
		r = -IOTSEC_ECERT;
		goto out;
	}
	if ((r = file_id_get(s->crl_path, &crl_id)) < 0 ||
	    (r = crl_load(s->crl_path, CRL_FILE_MAX, ca, &crl)) < 0) {
		r = r == -ENOENT || r == -EBADMSG || r == -IOTSEC_EUNKNOWNCA || r == -IOTSEC_EBADSIG
			? -IOTSEC_ECRL
			: r;
		goto out;
	}
	received_status = received_id_get(s->received_path, &received_id);
	if (received_status == 0)
		received_status = received_load(s->received_path, ca, crl, &received);
	if (received) {
		X509_CRL_free(crl);
		crl = received;
	}
	if ((r = cert_time(X509_get0_notBefore(ca), &from)) < 0 ||
	    (r = cert_time(X509_get0_notAfter(ca), &until)) < 0 ||
	    (r = cert_time(X509_CRL_get0_lastUpdate(crl), &t)) < 0) {
		r = r == -EBADMSG ? -IOTSEC_ECRL : r;
		goto out;
	}
	from = t > from ? t : from;
	/* A CRL without nextUpdate never ages out. */
	if (X509_CRL_get0_nextUpdate(crl) != NULL &&
	    cert_time(X509_CRL_get0_nextUpdate(crl), &t) == 0 && t < until)
		until = t;
	r = -ENOMEM;
	if ((store = X509_STORE_new()) == NULL || X509_STORE_add_cert(store, ca) != 1 ||
	    X509_STORE_add_crl(store, crl) != 1 ||
	    X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK) != 1)
		goto out;

	X509_free(s->ca);
	X509_CRL_free(s->crl);
	X509_STORE_free(s->store);
	s->ca = ca, s->crl = crl, s->store = store;
	s->ca_id = ca_id, s->crl_id = crl_id, s->received_id = received_id;
	s->received_in_force = received != NULL;
	s->received_status = received_status;
	s->valid_from = from, s->valid_until = until;
	s->generation++;
	memcpy(s->home, home, sizeof(home));
	ca = NULL, crl = NULL, store = NULL;
	r = 0;
out:
	X509_free(ca);
	X509_CRL_free(crl);
	X509_STORE_free(store);
	return r;
}

int cert_store_load(const char *ca_path, const char *crl_path, struct cert_store **ret)
{
	return cert_store_load_received(ca_path, crl_path, NULL, ret);
}

int cert_store_load_received(const char *ca_path, const char *crl_path, const char *received_path,
			     struct cert_store **ret)
{
	struct cert_store *s = calloc(1, sizeof(*s));
	int r = -ENOMEM;

	if (s == NULL || (s->ca_path = strdup(ca_path)) == NULL ||
	    (s->crl_path = strdup(crl_path)) == NULL ||
	    (received_path && (s->received_path = strdup(received_path)) == NULL))
		goto out;
	if ((r = store_reload(s)) < 0)
		goto out;
	*ret = s;
	s = NULL;
out:
	cert_store_free(s);
	return r;
}

void cert_store_free(struct cert_store *s)
{
	if (s == NULL)
		return;
	X509_free(s->ca);
	X509_CRL_free(s->crl);
	X509_STORE_free(s->store);
	free(s->ca_path);
	free(s->crl_path);
	free(s->received_path);
	free(s);
}

int cert_store_refresh(struct cert_store *s, bool *ret_changed)
{
	struct file_id ca_id = {0}, crl_id = {0}, received_id = {0};
	int r;

	if ((r = file_id_get(s->ca_path, &ca_id)) < 0 ||
	    (r = file_id_get(s->crl_path, &crl_id)) < 0)
		return r == -ENOENT ? -IOTSEC_ECRL : r;
	(void)received_id_get(s->received_path, &received_id);
	if (file_id_eq(&ca_id, &s->ca_id) && file_id_eq(&crl_id, &s->crl_id) &&
	    file_id_eq(&received_id, &s->received_id)) {
		if (ret_changed)
			*ret_changed = false;
		return 0;
	}
	if ((r = store_reload(s)) < 0)
		return r;
	if (ret_changed)
		*ret_changed = true;
	return 0;
}

const char *cert_store_home(const struct cert_store *s)
{
	return s->home;
}

X509 *cert_store_ca(const struct cert_store *s)
{
	return s->ca;
}

uint64_t cert_store_generation(const struct cert_store *s)
{
	return s->generation;
}

X509_CRL *cert_store_crl(const struct cert_store *s)
{
	return s->crl;
}

const char *cert_store_crl_path(const struct cert_store *s)
{
	return s->received_in_force ? s->received_path : s->crl_path;
}

const char *cert_store_received_path(const struct cert_store *s)
{
	return s->received_path;
}

int cert_store_received_status(const struct cert_store *s)
{
	return s->received_in_force ? 0 : s->received_status;
}

int cert_store_crl_number(const struct cert_store *s, uint64_t *ret)
{
	return crl_number(s->crl, ret);
}

int cert_store_crl_pem(const struct cert_store *s, char **ret, size_t *ret_len)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data, *copy;
	long len;
	int r = -ENOMEM;

	if (bio == NULL || PEM_write_bio_X509_CRL(bio, s->crl) != 1 ||
	    (len = BIO_get_mem_data(bio, &data)) <= 0 || (copy = malloc((size_t)len + 1)) == NULL)
		goto out;
	memcpy(copy, data, (size_t)len);
	copy[len] = '\0';
	*ret = copy;
	*ret_len = (size_t)len;
	r = 0;
out:
	BIO_free(bio);
	return r;
}

void cert_store_window(const struct cert_store *s, int64_t *ret_from, int64_t *ret_until)
{
	*ret_from = s->valid_from;
	*ret_until = s->valid_until;
}

static int verify_error(int err)
{
	switch (err) {
	case X509_V_ERR_CERT_HAS_EXPIRED:
		return -EKEYEXPIRED;
	case X509_V_ERR_CERT_NOT_YET_VALID:
		return -IOTSEC_ENOTYETVALID;
	case X509_V_ERR_CERT_REVOKED:
		return -EKEYREVOKED;
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
		return -IOTSEC_ESELFSIGNED;
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_V_ERR_CERT_SIGNATURE_FAILURE:
		return -IOTSEC_EUNKNOWNCA;
	case X509_V_ERR_UNABLE_TO_GET_CRL:
	case X509_V_ERR_CRL_HAS_EXPIRED:
	case X509_V_ERR_CRL_NOT_YET_VALID:
	case X509_V_ERR_CRL_SIGNATURE_FAILURE:
	case X509_V_ERR_UNABLE_TO_DECRYPT_CRL_SIGNATURE:
		return -IOTSEC_ECRL;
	default:
		return -IOTSEC_ECERT;
	}
}

int cert_verify(struct cert_store *s, X509 *cert, unsigned roles, struct cert_info *ret_info)
{
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	struct cert_info info;
	int r = -ENOMEM;

	if (ctx == NULL || X509_STORE_CTX_init(ctx, s->store, cert, NULL) != 1)
		goto out;
	/* A certificate naming our CA as issuer is forged unless the CA's signature on it holds:
	 * one RSA verify says so, before the chain check, which also verifies the CRL's signature
	 * each time. So a stream of new forgeries costs what a stream of forged messages does. */
	if (X509_check_issued(s->ca, cert) == X509_V_OK &&
	    X509_verify(cert, X509_get0_pubkey(s->ca)) != 1) {
		r = -IOTSEC_EUNKNOWNCA;
		goto out;
	}
	/* Validity is judged at our clock, which never runs below the last-known-good time. */
	X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx), (time_t)clock_now());
	if (X509_verify_cert(ctx) != 1) {
		r = verify_error(X509_STORE_CTX_get_error(ctx));
		goto out;
	}
	/* The CA's own certificate verifies against itself but is no device. */
	if (X509_check_ca(cert) != 0 || cert_info_get(cert, &info) < 0) {
		r = -IOTSEC_ECERT;
		goto out;
	}
	if (strcmp(info.home, s->home) != 0) {
		r = -IOTSEC_EHOME;
		goto out;
	}
	if ((info.role & roles) == 0) {
		r = -IOTSEC_EROLE;
		goto out;
	}
	if (ret_info)
		*ret_info = info;
	r = 0;
out:
	X509_STORE_CTX_free(ctx);
	return r;
}
