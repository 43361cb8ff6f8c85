/* A home for tests, made with the real CA code: home "testhome" with devices
 *   pi1, pi2 (node), ctl1 (controller), doc1, doc2 (doctor), docrev (doctor, revoked),
 *   relay1 (relay), revoked (node, revoked), expired (node, ended a day ago),
 *   future (node, starts in a day), short (node, ends in 30 days)
 * plus "pi9" (node) and "doc9" (doctor) of another home "otherhome" and "selfsigned": a
 * self-signed certificate whose subject is pi1's. Files: DIR/ca/{ca.crt,crl.pem,...},
 * DIR/out/NAME.{crt,key}. */
#ifndef IOTSEC_TEST_FIXTURE_H
#define IOTSEC_TEST_FIXTURE_H

#include <limits.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "cert.h"

struct fixture {
	char dir[PATH_MAX];
	char ca_dir[PATH_MAX + 8];
	char ca_crt[PATH_MAX + 16];
	char crl[PATH_MAX + 16];
	char other_ca_dir[PATH_MAX + 16];
};

/* Builds everything (a few seconds of RSA key generation). 0 on success. */
int fixture_home(struct fixture *f);
void fixture_remove(struct fixture *f);
/* DIR/out/NAME.EXT */
const char *fixture_path(const struct fixture *f, const char *name, const char *ext);
/* Load a device's certificate and key; aborts the test on failure. */
X509 *fixture_cert(const struct fixture *f, const char *name);
EVP_PKEY *fixture_key(const struct fixture *f, const char *name);

#endif
