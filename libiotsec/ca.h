/* The home certificate authority behind iotsec-pki.
 *
 * A CA directory holds ca.crt, ca.key (0600), crl.pem and index.json, the issuance database:
 * one record per certificate issued (serial, device, role, validity, revocation). Every file
 * is written atomically. */
#ifndef IOTSEC_CA_H
#define IOTSEC_CA_H

#include <stdint.h>

#include <jansson.h>
#include <openssl/x509.h>

#include "cert.h"

#define CA_KEY_BITS	    3072
#define DEVICE_KEY_BITS	    2048
#define DEVICE_KEY_BITS_MAX 4096 /* a CSR's key: 2048..4096 bits, exponent 65537 */
/* The CRL is re-signed on every change; between changes it stays valid this long. */
#define CA_CRL_DAYS 365

/* Create the CA in dir (made, mode 0700, if its parent exists). -EEXIST if dir already holds a
 * CA, -ENOENT if its parent does not exist. */
int ca_init(const char *dir, const char *home, int days);

struct ca_enrol_req {
	const char *device;
	enum cert_role role;
	int64_t not_before, not_after; /* seconds since the epoch */
	const char *csr_path;	       /* NULL: generate the device key */
	const char *out_dir; /* NAME.crt, NAME.key (0600, not with a CSR), ca.crt, crl.pem */
};
/* Issue a certificate, ending no later than the CA's own certificate. -EEXIST when the device
 * already holds a valid one (revoke it first), -EINVAL for a bad name, -EBADMSG for a CSR that
 * does not parse or is not self-signed, -IOTSEC_EIDENTITY for a CSR whose CN names another
 * device, -ERANGE when the CA ends before not_before, -EKEYEXPIRED when the CA's own certificate
 * is over, -EACCES when dir or out_dir is not writable, -ENOENT when out_dir's parent does not
 * exist (out_dir itself is made). All of these come before any key is generated, and out_dir
 * is made only once nothing else can fail. */
int ca_enrol(const char *dir, const struct ca_enrol_req *req);

/* Revoke every unrevoked certificate of device and rewrite the CRL. -ENOENT: none. */
int ca_revoke(const char *dir, const char *device);
/* Revoke the one certificate with this serial (hex, any case), if it is not revoked yet, and
 * rewrite the CRL. -ENOENT: no such unrevoked certificate. */
int ca_revoke_serial(const char *dir, const char *serial);
/* Re-sign the CRL (for example before it expires). */
int ca_write_crl(const char *dir);
/* The issuance database as a JSON array of records
 * {"serial","device","role","not_before","not_after","revoked"(bool),"revoked_at"}. */
int ca_list(const char *dir, json_t **ret);

/* A device name is 1-63 of [A-Za-z0-9._-], not starting with '.' or '-'. */
bool ca_name_valid(const char *name);

#endif
