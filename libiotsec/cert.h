/* Device certificates of one home, and their verification against the home CA and its CRL.
 *
 * A device certificate names the device in CN, the home in O and the device's role in OU
 * ("node", "controller"). It is valid when it chains to the home CA, is not on the CRL, is
 * inside its validity at clock_now(), belongs to this home and has an allowed role. */
#ifndef IOTSEC_CERT_H
#define IOTSEC_CERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#define CERT_NAME_MAX 64 /* device and home names, including the NUL */
#define CERT_FP_LEN   32 /* SHA-256 of the DER certificate */

enum cert_role {
	CERT_ROLE_NODE = 1 << 0,
	CERT_ROLE_CONTROLLER = 1 << 1,
	/* A patient's doctor (SPEC 9): grants a kit its doctor stream and acknowledges its
	 * emergencies; never a member of the home network. */
	CERT_ROLE_DOCTOR = 1 << 2,
	/* The cloud relay (SPEC 9): stores and forwards a home's doctor readings, sends kits their
	 * receipts and forwards doctors' grants and acknowledgements; never a member either. */
	CERT_ROLE_RELAY = 1 << 3,
};
/* Any device of the home: a doctor or a relay is not one. */
#define CERT_ROLES_ANY (CERT_ROLE_NODE | CERT_ROLE_CONTROLLER)
/* Every certificate the home CA issues. */
#define CERT_ROLES_ALL (CERT_ROLES_ANY | CERT_ROLE_DOCTOR | CERT_ROLE_RELAY)

/* "node" / "controller" / "doctor" / "relay"; NULL for anything else. */
const char *cert_role_name(enum cert_role role);
/* 0 and *ret on a known name, -EINVAL otherwise. */
int cert_role_parse(const char *name, enum cert_role *ret);

/* What a verified (or merely parsed) certificate says. */
struct cert_info {
	char name[CERT_NAME_MAX];
	char home[CERT_NAME_MAX];
	enum cert_role role;
	int64_t not_before, not_after;
	char serial[2 * 20 + 1]; /* hex */
	uint8_t fp[CERT_FP_LEN];
};

/* Fill info from the certificate's fields, without judging them. -EBADMSG when a field we need
 * (CN, O, OU with a known role) is missing or too long. */
int cert_info_get(X509 *cert, struct cert_info *ret);

int cert_load(const char *path, X509 **ret);
/* An ASN1_TIME (a certificate's or CRL's dates) in seconds since the epoch; -EBADMSG if unset. */
int cert_time(const ASN1_TIME *t, int64_t *ret);
int cert_from_pem(const void *pem, size_t len, X509 **ret);
int cert_from_der(const void *der, size_t len, X509 **ret);
/* *ret is malloc'd. */
int cert_to_der(X509 *cert, uint8_t **ret, size_t *ret_len);
/* 0 when key is the private key of cert's public key, -IOTSEC_EKEYMISMATCH otherwise. */
int cert_key_matches(X509 *cert, EVP_PKEY *key);

/* The trust anchor: the home CA certificate and the CRL in force, re-read when a file changes. */
struct cert_store;
/* Loads both files now; a missing or unusable CRL is an error (-IOTSEC_ECRL): without it a
 * revoked device would be accepted. */
int cert_store_load(const char *ca_path, const char *crl_path, struct cert_store **ret);
/* The same, and the CRL in force is the newer usable one of crl_path (the administrator's, which
 * must be usable as above) and received_path (NULL: none), a CRL received from another device
 * (crl.h says what newer means). A missing, unusable or older received file is no error: the
 * administrator's is in force, and cert_store_received_status() says why. Daemons load theirs
 * with daemon_cert_store_load() (daemon.h), which names both files of the configuration. */
int cert_store_load_received(const char *ca_path, const char *crl_path, const char *received_path,
			     struct cert_store **ret);
void cert_store_free(struct cert_store *s);
/* Re-read the CA or CRLs if any of their files changed since the last load (mtime, size, inode;
 * the received file appearing or going too). Keeps the previous state and returns an error when
 * the new files are unusable. *ret_changed tells whether anything was reloaded (may be NULL). */
int cert_store_refresh(struct cert_store *s, bool *ret_changed);
/* The CRL in force (borrowed), and the file it came from. */
X509_CRL *cert_store_crl(const struct cert_store *s);
const char *cert_store_crl_path(const struct cert_store *s);
/* The received CRL's path as loaded; NULL for none. */
const char *cert_store_received_path(const struct cert_store *s);
/* Why the received CRL is or is not in force: 0 it is; -ENOENT there is none (the normal case);
 * -EALREADY it is not newer than the administrator's (normal once the administrator installs
 * the same revocation); otherwise it is unusable (crl_parse()'s codes, -EFBIG, -EACCES...), a
 * thing to say once. */
int cert_store_received_status(const struct cert_store *s);
/* The CRL Number of the CRL in force (crl_number(): -ENODATA when it has none). */
int cert_store_crl_number(const struct cert_store *s, uint64_t *ret);
/* The CRL in force as PEM, to send to a peer: *ret is malloc'd and NUL-terminated, *ret_len
 * excludes the NUL. */
int cert_store_crl_pem(const struct cert_store *s, char **ret, size_t *ret_len);
/* The home named by the CA certificate (its O). */
const char *cert_store_home(const struct cert_store *s);
X509 *cert_store_ca(const struct cert_store *s);
/* Moves on at every reload: a verification made under another generation must be made again
 * (the CRL may now revoke the certificate). */
uint64_t cert_store_generation(const struct cert_store *s);
/* When the store can vouch for anything: the CA certificate's validity and the CRL's
 * lastUpdate..nextUpdate. A verification cached from this generation holds at a time t only
 * within this window and the certificate's own. */
void cert_store_window(const struct cert_store *s, int64_t *ret_from, int64_t *ret_until);

/* Verify cert at clock_now(): the CA's signature on it, then chain and CRL, validity, home,
 * then role (roles is a mask of enum cert_role). Distinct codes: -EKEYEXPIRED,
 * -IOTSEC_ENOTYETVALID, -EKEYREVOKED, -IOTSEC_EUNKNOWNCA, -IOTSEC_ESELFSIGNED, -IOTSEC_EHOME,
 * -IOTSEC_EROLE, -IOTSEC_ECRL, -IOTSEC_ECERT. ret_info may be NULL; it is filled only on
 * success. */
int cert_verify(struct cert_store *s, X509 *cert, unsigned roles, struct cert_info *ret_info);

#endif
