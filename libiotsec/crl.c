#include "crl.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "daemon.h"
#include "file.h"
#include "log.h"

int crl_number(const X509_CRL *crl, uint64_t *ret)
{
	ASN1_INTEGER *n;
	uint64_t v;
	int crit = 0, r = -EBADMSG;

	n = X509_CRL_get_ext_d2i(crl, NID_crl_number, &crit, NULL);
	if (n == NULL)
		/* -1: absent; -2: more than one; otherwise present but undecodable. */
		return crit == -1 ? -ENODATA : -EBADMSG;
	if (ASN1_INTEGER_get_uint64(&v, n) == 1) {
		*ret = v;
		r = 0;
	}
	ASN1_INTEGER_free(n);
	return r;
}

int crl_parse(const void *pem, size_t len, X509 *ca, X509_CRL **ret)
{
	BIO *bio = NULL;
	X509_CRL *crl = NULL;
	uint64_t number;
	int r = -EBADMSG;

	if (len > INT32_MAX)
		return -EMSGSIZE;
	if ((bio = BIO_new_mem_buf(pem, (int)len)) == NULL) {
		r = -ENOMEM;
		goto out;
	}
	if ((crl = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL)) == NULL)
		goto out;
	/* A number that cannot be compared cannot say which CRL is newer. */
	if (crl_number(crl, &number) == -EBADMSG)
		goto out;
	/* A CRL not signed by our CA could hide a revocation: refuse it outright. */
	if (X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(ca)) != 0) {
		r = -IOTSEC_EUNKNOWNCA;
		goto out;
	}
	if (X509_CRL_verify(crl, X509_get0_pubkey(ca)) != 1) {
		r = -IOTSEC_EBADSIG;
		goto out;
	}
	*ret = crl;
	crl = NULL;
	r = 0;
out:
	X509_CRL_free(crl);
	BIO_free(bio);
	return r;
}

int crl_load(const char *path, size_t max, X509 *ca, X509_CRL **ret)
{
	char *pem = NULL;
	size_t len;
	int r = file_read(path, max, &pem, &len);

	if (r == 0)
		r = crl_parse(pem, len, ca, ret);
	free(pem);
	return r;
}

bool crl_newer(const X509_CRL *a, const X509_CRL *b)
{
	uint64_t na, nb;

	if (crl_number(a, &na) == 0 && crl_number(b, &nb) == 0)
		return na > nb;
	/* Without numbers on both, the later issue is the newer (a CA re-signs at every change). */
	return ASN1_TIME_compare(X509_CRL_get0_lastUpdate(a), X509_CRL_get0_lastUpdate(b)) > 0;
}

int crl_check_newer(const struct cert_store *s, const char *pem, size_t len, uint64_t *ret_number)
{
	X509_CRL *crl = NULL;
	uint64_t number = 0;
	int r;

	if (len > CRL_PEM_MAX)
		return -EMSGSIZE;
	if ((r = crl_parse(pem, len, cert_store_ca(s), &crl)) < 0)
		return r;
	if (!crl_newer(crl, cert_store_crl(s))) {
		r = -EALREADY;
		goto out;
	}
	(void)crl_number(crl, &number);
	if (ret_number)
		*ret_number = number;
	r = 0;
out:
	X509_CRL_free(crl);
	return r;
}

int crl_install(const char *path, const char *pem, size_t len)
{
	if (len > CRL_PEM_MAX)
		return -EMSGSIZE;
	return file_write_atomic(path, pem, len, CRL_FILE_MODE);
}

int crl_received_path(const char *state_dir, char *out, size_t len)
{
	char dir[PATH_MAX];
	int r;

	if ((r = daemon_dir(state_dir, "pingd", dir, sizeof(dir))) < 0)
		return r;
	return snprintf(out, len, "%s/%s", dir, CRL_RECEIVED) < (int)len ? 0 : -ENAMETOOLONG;
}
