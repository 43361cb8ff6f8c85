/* iotsec-doctor's subcommands, one file each, and what they share: the doctor's directory
 * (doctor.key, doctor.crt, ca.crt, roots/). Each command takes argv from its name on and
 * returns the exit code. */
#ifndef IOTSEC_DOCTOR_TOOL_H
#define IOTSEC_DOCTOR_TOOL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "cert.h"
#include "config.h"
#include "crypto.h"
#include "stream.h"

/* Exit codes: done, failed, the command line is wrong. */
enum {
	DOCTOR_EXIT_OK = 0,
	DOCTOR_EXIT_FAIL = 1,
	DOCTOR_EXIT_USAGE = 2,
};

/* Longest --dir taken: the files in it have room beside it. */
#define DOCTOR_DIR_MAX 1000

/* The doctor's own identity, as D holds it. */
struct doctor_dir {
	const char *dir;
	X509 *cert, *ca;
	EVP_PKEY *key;
	struct cert_info self; /* name and home, from doctor.crt */
};
/* Load D/doctor.crt, D/doctor.key (which must be 0600) and D/ca.crt, and check that the
 * certificate is the CA's and the key its own. Prints the problem and returns -1 otherwise. */
int doctor_dir_load(const char *cmd, const char *dir, struct doctor_dir *ret);
void doctor_dir_free(struct doctor_dir *d);

/* One root this doctor granted, as D/roots/KIT.json keeps it. */
struct doctor_root {
	char kit[CERT_NAME_MAX];
	uint32_t start;
	int64_t issued_ms;
	uint8_t root[CRYPTO_KEY_LEN];
	uint8_t id[STREAM_ID_LEN];
};
int doctor_root_save(const char *path, const struct doctor_root *r);
/* -EBADMSG for a file that is not one (message in why). */
int doctor_root_load(const char *path, struct doctor_root *ret);

/* "usage: ..." for a wrong command line: the message, then the command's usage, exit 2. */
int usage_error(const char *cmd, const char *usage, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The value after argv[*i] (the option's), or NULL when it is missing. */
const char *opt_value(int argc, char **argv, int *i);
bool is_help(const char *arg);
/* The configuration at path, or the system's, or the defaults without either: the stream
 * schedule and the broker. Prints the problem and returns -1. */
int doctor_config(const char *cmd, const char *path, struct iotsec_config *ret);

int cmd_init(int argc, char **argv);
int cmd_grant(int argc, char **argv);
int cmd_ack(int argc, char **argv);
int cmd_read(int argc, char **argv);

#endif
