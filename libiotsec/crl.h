/* The home CA's revocation lists, and the one a device received from another (SPEC 7: a
 * revocation reaches every Pi).
 *
 * Two files may hold a CRL: device.crl, the administrator's, and crl_received_path(), where
 * pingd installs a newer one a peer sent (pingd runs unprivileged and cannot write device.crl).
 * The CRL in force is the newer of the two that is usable (it parses and the home CA signed it):
 * the higher CRL Number (iotsec-pki raises it at every change), or the later lastUpdate when
 * either has no number; a tie goes to the administrator's. A missing received file is the
 * normal case, an unusable one is ignored. cert_store (cert.h) applies this rule, so every daemon
 * that verifies a certificate follows the same CRL. */
#ifndef IOTSEC_CRL_H
#define IOTSEC_CRL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "cert.h"

#define CRL_PEM_MAX   (64 * 1024)   /* a CRL from a peer, or in the received file */
#define CRL_FILE_MAX  (1024 * 1024) /* the administrator's device.crl */
#define CRL_RECEIVED  "crl.pem"	    /* its name in pingd's state directory */
#define CRL_FILE_MODE 0644	    /* public: every daemon reads it */

/* Parse the first CRL in pem and check that ca issued it: -EBADMSG when there is none or its
 * CRL Number is malformed (see crl_number()), -IOTSEC_EUNKNOWNCA when it names another issuer,
 * -IOTSEC_EBADSIG when ca's key did not sign it. */
int crl_parse(const void *pem, size_t len, X509 *ca, X509_CRL **ret);
/* crl_parse() on a file of at most max bytes (-EFBIG past that, -errno when unreadable). */
int crl_load(const char *path, size_t max, X509 *ca, X509_CRL **ret);
/* The CRL Number extension: 0 and *ret; -ENODATA when the CRL has none; -EBADMSG when it does
 * not decode, is repeated, negative or past 64 bits. */
int crl_number(const X509_CRL *crl, uint64_t *ret);
/* Whether a is newer than b, as the rule above says; false when equal. Both must have passed
 * crl_parse(). */
bool crl_newer(const X509_CRL *a, const X509_CRL *b);

/* Whether pem (a peer's) should replace the CRL in force in s: 0 when it is a CRL of the store's
 * CA newer than the one in force, with its number in *ret_number (may be NULL; 0 when it has no
 * number). Refusals: -EMSGSIZE past CRL_PEM_MAX, -EBADMSG not a CRL, -IOTSEC_EUNKNOWNCA another
 * CA's, -IOTSEC_EBADSIG not signed by our CA's key, -EALREADY not newer than the one in force. */
int crl_check_newer(const struct cert_store *s, const char *pem, size_t len, uint64_t *ret_number);
/* Write pem to path atomically (file_write_atomic()), mode CRL_FILE_MODE. Checks nothing: call
 * crl_check_newer() first. -EMSGSIZE past CRL_PEM_MAX. */
int crl_install(const char *path, const char *pem, size_t len);
/* Where pingd installs a received CRL for a device whose state directory is state_dir:
 * daemon_dir(state_dir, "pingd")/CRL_RECEIVED. Every reader and pingd use this path. */
int crl_received_path(const char *state_dir, char *out, size_t len);

#endif
