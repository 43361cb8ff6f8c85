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

#include <jansson.h>

#include "cert.h"
#include "config.h"
#include "crypto.h"
#include "envelope.h"
#include "reading.h"
#include "stream.h"

/* Exit codes: done, failed (for read and fetch: a reading refused, besides), the command line is
 * wrong. */
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
/* A whole number in [min, max], all of s (digits only: no sign, no space); -EINVAL otherwise. */
int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *ret);
/* The configuration at path, or the system's, or the defaults without either: the stream
 * schedule and the broker. Prints the problem and returns -1. */
int doctor_config(const char *cmd, const char *path, struct iotsec_config *ret);
extern const char *doctor_config_path; /* -c */

/* roots.c: every root of D/roots (KIT.json, a kit's current grant, and KIT.<stream>.json, the
 * earlier ones), each with the stream at the epoch last opened. */
struct root_slot {
	struct doctor_root rt;
	struct stream *s;
};
struct doctor_roots {
	struct root_slot *slots;
	size_t n;
};
#define DOCTOR_ROOTS_MAX 4096
/* A file that is not a root is named on stderr and skipped; -1 (said) when D/roots cannot be
 * read. */
int doctor_roots_load(const char *cmd, const char *dir, struct doctor_roots *ret);
void doctor_roots_free(struct doctor_roots *r);
struct root_slot *doctor_roots_find(struct doctor_roots *r, const uint8_t id[STREAM_ID_LEN]);
/* Keep rt in D/roots (as KIT.json when the kit has none, else KIT.<stream>.json) and in r. */
int doctor_roots_keep(struct doctor_roots *r, const char *dir, const struct doctor_root *rt);
/* Open one sealed reading with the root its stream id names and check it (the kit's device, the
 * emergency flag and record agree). 0 with *ret_slot, *ret_h and *ret_v; otherwise an error and
 * *ret_why, the reason in words (NULL: iotsec_strerror() of the error says it). -ENOKEY: no
 * root for its stream. */
int doctor_open(struct doctor_roots *r, const uint8_t *buf, size_t len, struct root_slot **ret_slot,
		struct reading_header *ret_h, struct reading_value *ret_v, const char **ret_why);

/* The doctor's own copy of a root, which the relay keeps for a doctor on another machine (or
 * the page): RSA-OAEP-SHA256 to the doctor's certificate key of
 * {"kit":K,"start":e0,"root":"<b64>"}, in base64. */
int doctor_wrapped_build(EVP_PKEY *pub, const struct doctor_root *rt, char **ret);
/* Strict: exactly those fields; the stream id computed from the root. -EBADMSG otherwise. */
int doctor_wrapped_open(EVP_PKEY *priv, const char *b64, struct doctor_root *ret);

/* seen.c: the (stream, seq) of every reading fetch has shown, kept in D/seen.json across runs
 * (a reading opens only under its kit's root, so its stream stands for its device too), as
 * ranges of seqs per stream. */
struct doctor_seen;
#define DOCTOR_SEEN_STREAMS_MAX 4096
#define DOCTOR_SEEN_RANGES_MAX	4096 /* per stream; past it the two closest ranges merge */
#define DOCTOR_SEEN_FILE_MAX	(64u << 20)
/* An empty set when path is missing; -EBADMSG for a file that is not one, -IOTSEC_ESECRET for
 * one others can read. */
int doctor_seen_load(const char *path, struct doctor_seen **ret);
void doctor_seen_free(struct doctor_seen *s);
bool doctor_seen_has(const struct doctor_seen *s, const uint8_t stream[STREAM_ID_LEN],
		     uint64_t seq);
/* 0 when new (now remembered), -IOTSEC_EREPLAY when seen, -ENOBUFS past
 * DOCTOR_SEEN_STREAMS_MAX streams, -EINVAL for seq 0, -ENOMEM. */
int doctor_seen_add(struct doctor_seen *s, const uint8_t stream[STREAM_ID_LEN], uint64_t seq);
/* Written atomically, mode 0600. */
int doctor_seen_save(const struct doctor_seen *s, const char *path);

/* seal.c: the envelopes a doctor signs, as the kit's and the relay's tables have them:
 * DOCTOR_GRANT and EMERGENCY_ACK to a kit (any_time), RELAY_LOGIN to the relay (fresh). */
extern const struct envelope_rule doctor_rules[];
/* Seal body (NULL: {}) as type to "to" with delivery id (NULL: a random one); *ret malloc'd. */
int doctor_seal(struct doctor_dir *d, const char *type, const char *to, const char *id,
		json_t *body, char **ret, size_t *ret_len);

/* relay.c: the relay's HTTPS API (daemons/relayd/relayd.h) with libcurl. */
struct relay;
/* The relay's name: --relay-name, or the first of the configuration's sensord.relay. Prints
 * the problem and returns -1. */
int relay_name_of(const char *cmd, const char *opt, const struct iotsec_config *cfg,
		  char ret[CERT_NAME_MAX]);
/* Talk to url (https://HOST[:PORT]), trusting only a certificate of the home's CA (D/ca.crt)
 * whose name is name and role relay; not logged in yet. Prints the problem, -1. */
int relay_open(const char *cmd, struct doctor_dir *d, const char *url, const char *name,
	       struct relay **ret);
/* relay_open(), then log in as the doctor. */
int relay_login(const char *cmd, struct doctor_dir *d, const char *url, const char *name,
		struct relay **ret);
/* One API call: body (NULL for none) as JSON; *ret the answer's JSON (2xx). A refusal
 * ({"error":...}, a 4xx or 5xx) is printed, -EIO; but -EACCES for 401 (logged out), unsaid:
 * the caller logs in again, or says it with relay_logged_out(). -EHOSTUNREACH when nothing
 * answered (said unless relay_quiet()). */
int relay_call(struct relay *r, const char *method, const char *path, json_t *body, json_t **ret);
/* Log in again (a --follow that outlived its token, or a relay restarted). */
int relay_relogin(struct relay *r, struct doctor_dir *d);
/* Whether a relay that does not answer goes unsaid: a --follow says it once, and waits. */
void relay_quiet(struct relay *r, bool quiet);
/* Say that method path was refused for want of a login; -EACCES. */
int relay_logged_out(struct relay *r, const char *method, const char *path);
void relay_free(struct relay *r);

int cmd_init(int argc, char **argv);
int cmd_grant(int argc, char **argv);
int cmd_ack(int argc, char **argv);
int cmd_read(int argc, char **argv);
int cmd_fetch(int argc, char **argv);

#endif
