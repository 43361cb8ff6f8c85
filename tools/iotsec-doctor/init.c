/* iotsec-doctor init: the doctor's key, made here and never sent anywhere, and a request for a
 * certificate of the patient's home, which its administrator signs with iotsec-pki enrol --csr. */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "ca.h"
#include "file.h"
#include "iotsec-doctor.h"
#include "log.h"

static const char init_usage[] =
    "usage: iotsec-doctor init --dir D --name N [--home H]\n"
    "Make the doctor's key D/doctor.key (RSA 2048, mode 0600) and a certificate request\n"
    "D/doctor.csr for the name N (and the home H). The home's administrator issues the\n"
    "certificate with iotsec-pki enrol --csr; its N.crt goes to D/doctor.crt and the\n"
    "home's ca.crt to D/ca.crt. An existing key is never replaced.\n";

/* A PEM request for name (and home) signed by key. */
static int write_csr(const char *path, const char *name, const char *home, EVP_PKEY *key)
{
	X509_REQ *req = NULL;
	X509_NAME *subj;
	FILE *f = NULL;
	int r = -ENOMEM;

	if ((req = X509_REQ_new()) == NULL || (subj = X509_REQ_get_subject_name(req)) == NULL ||
	    X509_NAME_add_entry_by_txt(subj, "CN", MBSTRING_ASC, (const unsigned char *)name, -1,
				       -1, 0) != 1 ||
	    (home && X509_NAME_add_entry_by_txt(subj, "O", MBSTRING_ASC,
						(const unsigned char *)home, -1, -1, 0) != 1) ||
	    X509_REQ_set_pubkey(req, key) != 1 || X509_REQ_sign(req, key, EVP_sha256()) <= 0)
		goto out;
	if ((f = fopen(path, "wx")) == NULL) {
		r = -errno;
		goto out;
	}
	r = PEM_write_X509_REQ(f, req) == 1 ? 0 : -EIO;
	if (fclose(f) != 0 && r == 0)
		r = -errno;
	if (r < 0)
		unlink(path);
out:
	X509_REQ_free(req);
	return r;
}

int cmd_init(int argc, char **argv)
{
	const char *dir = NULL, *name = NULL, *home = NULL;
	char key_path[4096], csr_path[4096];
	EVP_PKEY *key = NULL;
	int r, rc = DOCTOR_EXIT_FAIL;

	for (int i = 1; i < argc; i++) {
		const char **slot = strcmp(argv[i], "--dir") == 0    ? &dir
				    : strcmp(argv[i], "--name") == 0 ? &name
				    : strcmp(argv[i], "--home") == 0 ? &home
								     : NULL;

		if (is_help(argv[i])) {
			fputs(init_usage, stdout);
			return DOCTOR_EXIT_OK;
		}
		if (slot == NULL)
			return usage_error("init", init_usage, "unknown argument '%s'", argv[i]);
		if ((*slot = opt_value(argc, argv, &i)) == NULL)
			return usage_error("init", init_usage, "%s needs a value", argv[i]);
	}
	if (dir == NULL || name == NULL)
		return usage_error("init", init_usage, "--dir and --name are required");
	if (strlen(dir) > DOCTOR_DIR_MAX)
		return usage_error("init", init_usage, "--dir: at most %d characters",
				   DOCTOR_DIR_MAX);
	if (!ca_name_valid(name))
		return usage_error("init", init_usage,
				   "bad name '%s': 1-63 of A-Z a-z 0-9 . _ -, not starting with . "
				   "or -",
				   name);
	if (home && !ca_name_valid(home))
		return usage_error("init", init_usage, "bad home name '%s'", home);
	snprintf(key_path, sizeof(key_path), "%s/doctor.key", dir);
	snprintf(csr_path, sizeof(csr_path), "%s/doctor.csr", dir);
	if ((r = file_mkdirs(dir, 0700)) < 0) {
		fprintf(stderr, "iotsec-doctor init: cannot make %s: %s\n", dir, strerror(-r));
		goto out;
	}
	if (access(key_path, F_OK) == 0) {
		/* Its certificate, and every grant signed with it, would be worth nothing. */
		fprintf(stderr,
			"iotsec-doctor init: %s exists: the doctor has a key already (remove it "
			"only to start again with a new certificate)\n",
			key_path);
		goto out;
	}
	unlink(csr_path);
	if ((r = crypto_rsa_generate(DEVICE_KEY_BITS, &key)) < 0 ||
	    (r = crypto_save_private_key(key_path, key)) < 0) {
		fprintf(stderr, "iotsec-doctor init: %s: %s\n", key_path, iotsec_strerror(r));
		goto out;
	}
	if ((r = write_csr(csr_path, name, home, key)) < 0) {
		fprintf(stderr, "iotsec-doctor init: %s: %s\n", csr_path, iotsec_strerror(r));
		unlink(key_path);
		goto out;
	}
	printf("made %s (keep it here) and %s\n"
	       "next, on the home's CA machine:\n"
	       "  iotsec-pki enrol --dir CA --device %s --role doctor --csr doctor.csr --out OUT\n"
	       "then copy OUT/%s.crt to %s/doctor.crt and OUT/ca.crt to %s/ca.crt\n",
	       key_path, csr_path, name, name, dir, dir);
	rc = DOCTOR_EXIT_OK;
out:
	EVP_PKEY_free(key);
	return rc;
}
