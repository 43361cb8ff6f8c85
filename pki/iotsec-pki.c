/* iotsec-pki: the home certificate authority's command line (SPEC 3). Arguments and output only:
 * issuing, revoking and the CA files are ca.c's, verification is cert.c's. Exit status: 0 done,
 * 1 refused or failed, 2 bad usage. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ca.h"
#include "cert.h"
#include "clock.h"
#include "crypto.h"
#include "file.h"
#include "log.h"
#include "version.h"

#define PKI_EXIT_FAIL  1
#define PKI_EXIT_USAGE 2
#define PKI_DAYS_MAX   36500
#define PKI_TIME_LEN   sizeof("YYYY-MM-DDTHH:MM:SSZ")
/* The CA's CN is "NAME home CA" and a CN holds 64 characters; ca_init() has the last word. */
#define PKI_HOME_MAX (64 - (sizeof(" home CA") - 1))

struct pki_cmd {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *usage;
	const char *help;
};

static const struct pki_cmd *cmd; /* the subcommand running, for usage messages */

static const struct option pki_options[] = {
    {"dir", required_argument, NULL, 'd'},
    {"home", required_argument, NULL, 'H'},
    {"days", required_argument, NULL, 'n'},
    {"device", required_argument, NULL, 'D'},
    {"role", required_argument, NULL, 'r'},
    {"not-before", required_argument, NULL, 'b'},
    {"not-after", required_argument, NULL, 'a'},
    {"csr", required_argument, NULL, 'c'},
    {"out", required_argument, NULL, 'o'},
    {"json", no_argument, NULL, 'j'},
    {"key", required_argument, NULL, 'k'},
    {"serial", required_argument, NULL, 's'},
    {"ca", required_argument, NULL, 'A'},
    {"crl", required_argument, NULL, 'L'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* Everything a subcommand may be given; each one checks that it got only what it takes. */
struct pki_args {
	const char *dir, *home, *device, *role, *csr, *out, *key, *not_before, *not_after;
	const char *serial, *ca, *crl;
	const char *days;
	bool json;
	int npos;
	char **pos;
};

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "iotsec-pki %s: ", cmd->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nusage: iotsec-pki %s %s\n", cmd->name, cmd->usage);
	return PKI_EXIT_USAGE;
}

static const char *option_name(int c)
{
	for (const struct option *o = pki_options; o->name != NULL; o++)
		if (o->val == c)
			return o->name;
	return "?";
}

/* Parse argv into a; "allowed" lists the option letters this subcommand takes. Returns -1 to
 * go on, or the exit status (0 after --help). */
static int parse_args(int argc, char **argv, const char *allowed, struct pki_args *a)
{
	int c;

	optind = 0; /* glibc: start over on the subcommand's own argv */
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", pki_options, NULL)) != -1) {
		const char **slot = NULL;

		if (c == 'h') {
			printf("usage: iotsec-pki %s %s\n\n%s", cmd->name, cmd->usage, cmd->help);
			return 0;
		}
		if (c == '?')
			return usage_error("unknown option '%s'", argv[optind - 1]);
		if (c == ':')
			return usage_error("option '%s' needs a value", argv[optind - 1]);
		if (strchr(allowed, c) == NULL)
			return usage_error("option --%s does not apply here", option_name(c));
		switch (c) {
		case 'd':
			slot = &a->dir;
			break;
		case 'H':
			slot = &a->home;
			break;
		case 'n':
			slot = &a->days;
			break;
		case 'D':
			slot = &a->device;
			break;
		case 'r':
			slot = &a->role;
			break;
		case 'b':
			slot = &a->not_before;
			break;
		case 'a':
			slot = &a->not_after;
			break;
		case 'c':
			slot = &a->csr;
			break;
		case 'o':
			slot = &a->out;
			break;
		case 'k':
			slot = &a->key;
			break;
		case 's':
			slot = &a->serial;
			break;
		case 'A':
			slot = &a->ca;
			break;
		case 'L':
			slot = &a->crl;
			break;
		case 'j':
			a->json = true;
			break;
		}
		if (slot != NULL) {
			if (*slot != NULL)
				return usage_error("option --%s given twice", option_name(c));
			*slot = optarg;
		}
	}
	a->pos = argv + optind;
	a->npos = argc - optind;
	/* verify may be given the CA's two public files instead, as on a Pi. */
	if (a->dir == NULL && strchr(allowed, 'A') == NULL)
		return usage_error("--dir is required");
	return -1;
}

static int parse_days(const char *s, int *ret)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < 1 || v > PKI_DAYS_MAX)
		return -EINVAL;
	*ret = (int)v;
	return 0;
}

/* "@EPOCH" or "YYYY-MM-DDTHH:MM:SSZ" (UTC); a date that does not exist is refused rather than
 * rolled over (2025-02-30 is not March 2nd). */
static int parse_time(const char *s, int64_t *ret)
{
	struct tm tm = {0}, back;
	char *end;
	long long v;
	time_t t;

	if (s[0] == '@') {
		errno = 0;
		v = strtoll(s + 1, &end, 10);
		if (errno != 0 || end == s + 1 || *end != '\0' || v < 0)
			return -EINVAL;
		*ret = v;
		return 0;
	}
	end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (end == NULL || *end != '\0')
		return -EINVAL;
	back = tm;
	t = timegm(&back);
	if (t < 0 || back.tm_year != tm.tm_year || back.tm_mon != tm.tm_mon ||
	    back.tm_mday != tm.tm_mday || back.tm_hour != tm.tm_hour || back.tm_min != tm.tm_min ||
	    back.tm_sec != tm.tm_sec)
		return -EINVAL;
	*ret = (int64_t)t;
	return 0;
}

static const char *format_time(int64_t t, char out[PKI_TIME_LEN])
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL ||
	    strftime(out, PKI_TIME_LEN, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, PKI_TIME_LEN, "@%lld", (long long)t);
	return out;
}

/* What keeps a file (dir false) or directory (dir true) we are given from being read; NULL when
 * nothing does. One line of output at a time needs one buffer. */
static const char *path_problem(const char *path, bool dir)
{
	static char buf[128];

	return file_problem(path, dir, buf, sizeof(buf));
}

/* The CA's files an operation needs, each there and readable: one line naming the first that is
 * not. ca.key only for the operations that sign. */
static bool ca_files_ok(const char *what, const char *dir, bool key)
{
	static const char *const names[] = {"ca.crt", "index.json", "ca.key"};
	char path[PATH_MAX];
	const char *why;

	if ((why = path_problem(dir, true)) != NULL) {
		log_errx("%s: %s: %s%s", what, dir, why,
			 strcmp(why, "missing") == 0 ? " (create a CA with 'iotsec-pki init')"
						     : "");
		return false;
	}
	for (size_t i = 0; i < (key ? 3 : 2); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		if ((why = path_problem(path, false)) != NULL) {
			log_errx("%s: %s: %s", what, path, why);
			return false;
		}
	}
	return true;
}

/* What a PEM file holds, by its label, when that is not what was asked for. */
static const char *pem_kind(const char *path)
{
	static const struct {
		const char *label, *kind;
	} kinds[] = {
	    {"-----BEGIN CERTIFICATE REQUEST-----", "a certificate request"},
	    {"-----BEGIN CERTIFICATE-----", "a certificate"},
	    {"PRIVATE KEY-----", "a private key"},
	    {"-----BEGIN X509 CRL-----", "a revocation list"},
	};
	const char *kind = NULL;
	char *text = NULL;
	size_t len;

	if (file_read(path, 1 << 20, &text, &len) == 0)
		for (size_t i = 0; kind == NULL && i < sizeof(kinds) / sizeof(kinds[0]); i++)
			if (strstr(text, kinds[i].label))
				kind = kinds[i].kind;
	free(text);
	return kind;
}

/* Which of the CA's files does not parse: the certificate, the key, or else the index. */
static const char *corrupt_file(const char *dir, char path[PATH_MAX])
{
	EVP_PKEY *key = NULL;
	X509 *x = NULL;
	const char *name = "index.json";

	snprintf(path, PATH_MAX, "%s/ca.crt", dir);
	if (cert_load(path, &x) == -EBADMSG)
		name = "ca.crt";
	snprintf(path, PATH_MAX, "%s/ca.key", dir);
	if (x != NULL && crypto_load_private_key(path, &key) == -EBADMSG)
		name = "ca.key";
	X509_free(x);
	EVP_PKEY_free(key);
	snprintf(path, PATH_MAX, "%s/%s", dir, name);
	return path;
}

/* One line for a refusal of the CA, naming the file and the cause in words a household
 * administrator can act on. */
static int ca_error(const char *what, const char *dir, int r)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/ca.crt", dir);
	if (r == -ENOENT && access(path, F_OK) != 0)
		log_errx("%s: no CA in %s (create one with 'iotsec-pki init')", what, dir);
	else if (r == -IOTSEC_ESECRET)
		log_errx("%s: %s/ca.key: %s", what, dir, iotsec_strerror(r));
	else if (r == -IOTSEC_EKEYMISMATCH)
		log_errx("%s: %s/ca.key does not belong to %s/ca.crt", what, dir, dir);
	else if (r == -EBADMSG)
		log_errx("%s: %s is corrupt (not as iotsec-pki wrote it); restore it from a backup",
			 what, corrupt_file(dir, path));
	else if (r == -EACCES || r == -EROFS)
		log_errx("%s: cannot write in %s (uid %u): %s", what, dir, (unsigned)geteuid(),
			 strerror(-r));
	else
		log_errx("%s: %s: %s", what, dir, iotsec_strerror(r));
	return PKI_EXIT_FAIL;
}

static int cmd_init(int argc, char **argv)
{
	struct pki_args a = {0};
	int days = 3650, r;

	if ((r = parse_args(argc, argv, "dHn", &a)) >= 0)
		return r;
	if (a.npos > 0)
		return usage_error("unexpected argument '%s'", a.pos[0]);
	if (a.home == NULL)
		return usage_error("--home is required");
	if (a.days != NULL && parse_days(a.days, &days) < 0)
		return usage_error("--days must be 1 to %d", PKI_DAYS_MAX);
	if (!ca_name_valid(a.home) || strlen(a.home) > PKI_HOME_MAX)
		return usage_error("bad home name '%s': 1-%zu of A-Z a-z 0-9 . _ -, not starting "
				   "with . or -",
				   a.home, PKI_HOME_MAX);
	if ((r = ca_init(a.dir, a.home, days)) == -EEXIST) {
		log_errx("init: %s already holds a CA (or part of one); refusing to replace it",
			 a.dir);
		return PKI_EXIT_FAIL;
	}
	if (r < 0)
		return ca_error("init", a.dir, r);
	printf("home CA '%s' created in %s, valid for %d days\n", a.home, a.dir, days);
	return 0;
}

static const char *record_status(json_t *rec, int64_t now)
{
	if (json_is_true(json_object_get(rec, "revoked")))
		return "revoked";
	if (json_integer_value(json_object_get(rec, "not_after")) <= now)
		return "expired";
	if (json_integer_value(json_object_get(rec, "not_before")) > now)
		return "not yet valid";
	return "valid";
}

static int enrol_times(const struct pki_args *a, int64_t *ret_from, int64_t *ret_to)
{
	int64_t from = clock_now(), to;
	int days = 365;

	if (a->days != NULL && a->not_after != NULL)
		return usage_error("give --days or --not-after, not both");
	if (a->days != NULL && parse_days(a->days, &days) < 0)
		return usage_error("--days must be 1 to %d", PKI_DAYS_MAX);
	if (a->not_before != NULL && parse_time(a->not_before, &from) < 0)
		return usage_error("--not-before: want @EPOCH or YYYY-MM-DDTHH:MM:SSZ");
	to = from + (int64_t)days * 86400;
	if (a->not_after != NULL && parse_time(a->not_after, &to) < 0)
		return usage_error("--not-after: want @EPOCH or YYYY-MM-DDTHH:MM:SSZ");
	if (to <= from)
		return usage_error("the certificate must end after it starts");
	if (to <= clock_now()) {
		log_errx("%s: the certificate would be over already (--not-after is past)",
			 cmd->name);
		return PKI_EXIT_FAIL;
	}
	*ret_from = from;
	*ret_to = to;
	return -1;
}

static int cmd_enrol(int argc, char **argv)
{
	struct pki_args a = {0};
	struct ca_enrol_req req = {0};
	char what[CERT_NAME_MAX + 8], path[PATH_MAX], until[PKI_TIME_LEN];
	struct cert_info info;
	const char *why;
	X509 *x = NULL;
	int r;

	if ((r = parse_args(argc, argv, "dDrnbaco", &a)) >= 0)
		return r;
	if (a.npos > 0)
		return usage_error("unexpected argument '%s'", a.pos[0]);
	if (a.device == NULL || a.role == NULL || a.out == NULL)
		return usage_error("--device, --role and --out are required");
	if (!ca_name_valid(a.device) || strcmp(a.device, "ca") == 0)
		return usage_error("bad device name '%s': 1-63 of A-Z a-z 0-9 . _ -, not starting "
				   "with . or -, not \"ca\"",
				   a.device);
	if (cert_role_parse(a.role, &req.role) < 0)
		return usage_error("--role is node, controller, doctor or relay, not '%s'", a.role);
	if ((r = enrol_times(&a, &req.not_before, &req.not_after)) >= 0)
		return r;
	req.device = a.device;
	req.csr_path = a.csr;
	req.out_dir = a.out;

	snprintf(what, sizeof(what), "enrol %s", a.device);
	if (!ca_files_ok(what, a.dir, true))
		return PKI_EXIT_FAIL;
	if (a.csr && (why = path_problem(a.csr, false)) != NULL) {
		log_errx("%s: %s: %s", what, a.csr, why);
		return PKI_EXIT_FAIL;
	}
	if ((why = path_problem(a.out, true)) != NULL && strcmp(why, "missing") != 0) {
		log_errx("%s: %s: %s", what, a.out, why);
		return PKI_EXIT_FAIL;
	}
	r = ca_enrol(a.dir, &req);
	if (r == -EEXIST) {
		log_errx("%s: it already holds a valid certificate (revoke it first)", what);
		return PKI_EXIT_FAIL;
	}
	if (r == -EBADMSG && a.csr != NULL && (why = pem_kind(a.csr)) != NULL &&
	    strcmp(why, "a certificate request") != 0) {
		log_errx("%s: %s is %s, not a certificate request", what, a.csr, why);
		return PKI_EXIT_FAIL;
	}
	if (r == -EBADMSG && a.csr != NULL) {
		log_errx("%s: %s is not a PEM certificate request signed by its own key", what,
			 a.csr);
		return PKI_EXIT_FAIL;
	}
	if (r == -EKEYREJECTED) {
		log_errx("%s: the CSR's key must be RSA of %d to %d bits with exponent 65537", what,
			 DEVICE_KEY_BITS, DEVICE_KEY_BITS_MAX);
		return PKI_EXIT_FAIL;
	}
	if (r == -IOTSEC_EIDENTITY) {
		log_errx("%s: %s is a request for another device: its CN is not %s (make it with "
			 "-subj /CN=%s)",
			 what, a.csr, a.device, a.device);
		return PKI_EXIT_FAIL;
	}
	if (r == -ERANGE || r == -EKEYEXPIRED) {
		log_errx("%s: %s/ca.crt %s", what, a.dir,
			 r == -ERANGE
			     ? "ends before this certificate would start"
			     : "is over: no certificate it signs is any use (make a new CA)");
		return PKI_EXIT_FAIL;
	}
	if (r == -ENOENT && access(a.out, F_OK) != 0) {
		log_errx("%s: cannot make %s: its parent directory does not exist", what, a.out);
		return PKI_EXIT_FAIL;
	}
	/* Every file read was checked above: what is refused now is a directory written to, the
	 * CA's (checked first by ca_enrol) or --out. */
	if (r == -EACCES || r == -EROFS) {
		log_errx("%s: cannot write in %s (uid %u): %s", what,
			 access(a.dir, W_OK) < 0 ? a.dir : a.out, (unsigned)geteuid(),
			 strerror(-r));
		return PKI_EXIT_FAIL;
	}
	if (r < 0)
		return ca_error(what, a.dir, r);

	snprintf(path, sizeof(path), "%s/%s.crt", a.out, a.device);
	if (cert_load(path, &x) == 0 && cert_info_get(x, &info) == 0) {
		printf("issued %s (%s, serial %s, until %s): %s%s, ca.crt and crl.pem\n", a.device,
		       a.role, info.serial, format_time(info.not_after, until), path,
		       a.csr ? "" : ", its key");
		/* The CA's end, not what was asked for: say so rather than let it pass unseen. */
		if (info.not_after < req.not_after)
			printf("note: cut to the end of the CA's own certificate\n");
		/* A key left from an earlier enrolment is not this certificate's: copied to the Pi
		 * with the rest, it would keep the device out of the home. */
		snprintf(path, sizeof(path), "%s/%s.key", a.out, a.device);
		if (a.csr && access(path, F_OK) == 0)
			printf("note: %s is from an earlier enrolment, not this certificate's key: "
			       "delete it before copying %s to the device\n",
			       path, a.out);
	}
	X509_free(x);
	return 0;
}

static int cmd_revoke(int argc, char **argv)
{
	struct pki_args a = {0};
	char what[CERT_NAME_MAX + 48], serial[64];
	int r;

	if ((r = parse_args(argc, argv, "dDs", &a)) >= 0)
		return r;
	if (a.npos > 0)
		return usage_error("unexpected argument '%s'", a.pos[0]);
	if ((a.device == NULL) == (a.serial == NULL))
		return usage_error("give --device or --serial, not both");
	if (a.device != NULL && !ca_name_valid(a.device))
		return usage_error("bad device name '%s'", a.device);
	if (a.serial != NULL) {
		/* As 'list' shows it, or as openssl does (pairs of hex digits joined by ':'). */
		size_t n = 0;

		for (const char *p = a.serial; *p && n < sizeof(serial) - 1; p++)
			if (*p != ':')
				serial[n++] = *p;
		serial[n] = '\0';
		if (n == 0 || n > 40 || strspn(serial, "0123456789abcdefABCDEF") != n)
			return usage_error("--serial is the hex serial 'iotsec-pki list' shows");
	}
	snprintf(what, sizeof(what), "revoke %s", a.device ? a.device : serial);
	if (!ca_files_ok(what, a.dir, true))
		return PKI_EXIT_FAIL;
	r = a.device ? ca_revoke(a.dir, a.device) : ca_revoke_serial(a.dir, serial);
	if (r == -ENOENT) {
		log_errx("%s: no unrevoked certificate %s in %s", what,
			 a.device ? "of that device" : "with that serial", a.dir);
		return PKI_EXIT_FAIL;
	}
	if (r < 0)
		return ca_error(what, a.dir, r);
	printf("revoked %s; %s/crl.pem updated\n", a.device ? a.device : serial, a.dir);
	return 0;
}

static int cmd_crl(int argc, char **argv)
{
	struct pki_args a = {0};
	char until[PKI_TIME_LEN];
	int r;

	if ((r = parse_args(argc, argv, "d", &a)) >= 0)
		return r;
	if (a.npos > 0)
		return usage_error("unexpected argument '%s'", a.pos[0]);
	if (!ca_files_ok("crl", a.dir, true))
		return PKI_EXIT_FAIL;
	if ((r = ca_write_crl(a.dir)) < 0)
		return ca_error("crl", a.dir, r);
	printf("%s/crl.pem signed, valid until %s\n", a.dir,
	       format_time(clock_now() + (int64_t)CA_CRL_DAYS * 86400, until));
	return 0;
}

static int cmd_list(int argc, char **argv)
{
	struct pki_args a = {0};
	json_t *index = NULL, *rec;
	int64_t now = clock_now();
	int wdev = (int)strlen("DEVICE"), r;
	char until[PKI_TIME_LEN];
	size_t i;

	if ((r = parse_args(argc, argv, "dj", &a)) >= 0)
		return r;
	if (a.npos > 0)
		return usage_error("unexpected argument '%s'", a.pos[0]);
	if (!ca_files_ok("list", a.dir, false))
		return PKI_EXIT_FAIL;
	if ((r = ca_list(a.dir, &index)) < 0)
		return ca_error("list", a.dir, r);
	json_array_foreach(index, i, rec)
	{
		int w = (int)strlen(json_string_value(json_object_get(rec, "device")));

		wdev = w > wdev ? w : wdev;
		if (a.json)
			json_object_set_new(rec, "status", json_string(record_status(rec, now)));
	}
	if (a.json) {
		r = json_dumpf(index, stdout, JSON_INDENT(2)) == 0 ? 0 : PKI_EXIT_FAIL;
		putchar('\n');
		json_decref(index);
		return r;
	}
	printf("%-*s  %-10s  %-32s  %-20s  %s\n", wdev, "DEVICE", "ROLE", "SERIAL", "NOT AFTER",
	       "STATUS");
	json_array_foreach(index, i, rec)
	{
		printf("%-*s  %-10s  %-32s  %-20s  %s\n", wdev,
		       json_string_value(json_object_get(rec, "device")),
		       json_string_value(json_object_get(rec, "role")),
		       json_string_value(json_object_get(rec, "serial")),
		       format_time(json_integer_value(json_object_get(rec, "not_after")), until),
		       record_status(rec, now));
	}
	json_decref(index);
	return 0;
}

/* A file that should hold a certificate and does not parse as one: say what it is. */
static void not_a_certificate(const char *path)
{
	const char *kind = pem_kind(path);

	if (kind == NULL || strcmp(kind, "a certificate") == 0)
		fprintf(stderr, "%s: not a PEM certificate\n", path);
	else
		fprintf(stderr, "%s: %s, not a certificate%s\n", path, kind,
			strcmp(kind, "a certificate request") == 0
			    ? " (issue one with 'iotsec-pki enrol --csr')"
			    : "");
}

/* The key given with a certificate: a private key, and that certificate's. */
static int verify_key(X509 *x, const char *path, const char *key_path)
{
	const char *kind = pem_kind(key_path), *why = path_problem(key_path, false);
	EVP_PKEY *key = NULL;
	int r;

	if (why == NULL && kind && strcmp(kind, "a private key") != 0)
		why = kind;
	if (why) {
		fprintf(stderr, "%s: key %s: %s%s\n", path, key_path, why,
			why == kind ? ", not a private key" : "");
		return -EINVAL;
	}
	if ((r = crypto_load_private_key(key_path, &key)) < 0)
		fprintf(stderr, "%s: key %s: %s\n", path, key_path,
			r == -EBADMSG ? "not a PEM private key" : iotsec_strerror(r));
	else if ((r = cert_key_matches(x, key)) < 0)
		fprintf(stderr, "%s: %s\n", path, iotsec_strerror(r));
	EVP_PKEY_free(key);
	return r;
}

/* One certificate judged as the devices judge it; 0 when good, the line said either way. */
static int verify_one(struct cert_store *store, X509 *ca, const char *path, const char *key_path)
{
	char until[PKI_TIME_LEN];
	struct cert_info info;
	const char *why;
	X509 *x = NULL;
	int r;

	if ((why = path_problem(path, false)) != NULL) {
		fprintf(stderr, "%s: %s\n", path, why);
		return -ENOENT;
	}
	if ((r = cert_load(path, &x)) < 0) {
		not_a_certificate(path);
		return r;
	}
	if (X509_cmp(x, ca) == 0) {
		fprintf(stderr, "%s: the home CA's own certificate, not a device's\n", path);
		X509_free(x);
		return -IOTSEC_ECERT;
	}
	if ((r = cert_verify(store, x, CERT_ROLES_ALL, &info)) < 0)
		fprintf(stderr, "%s: %s\n", path, iotsec_strerror(r));
	else if (key_path != NULL)
		r = verify_key(x, path, key_path);
	if (r == 0)
		printf("%s: OK (device %s, role %s, home %s, expires %s)\n", path, info.name,
		       cert_role_name(info.role), info.home, format_time(info.not_after, until));
	X509_free(x);
	return r;
}

/* The same judgement every daemon makes (cert_verify), so an administrator sees exactly why a
 * device would be refused: on the CA's machine (--dir) or on a Pi (--ca and --crl). */
static int cmd_verify(int argc, char **argv)
{
	struct pki_args a = {0};
	char ca_path[PATH_MAX], crl_path[PATH_MAX];
	struct cert_store *store = NULL;
	X509 *ca = NULL;
	int r, bad = 0;

	if ((r = parse_args(argc, argv, "dkAL", &a)) >= 0)
		return r;
	if ((a.dir != NULL) == (a.ca != NULL || a.crl != NULL) ||
	    (a.dir == NULL && (a.ca == NULL || a.crl == NULL)))
		return usage_error("give --dir, or --ca and --crl");
	if (a.npos < 1)
		return usage_error("give one certificate file or more");
	if (a.key != NULL && a.npos != 1)
		return usage_error("--key goes with one certificate only");
	snprintf(ca_path, sizeof(ca_path), "%s%s", a.dir ? a.dir : a.ca, a.dir ? "/ca.crt" : "");
	snprintf(crl_path, sizeof(crl_path), "%s%s", a.dir ? a.dir : a.crl,
		 a.dir ? "/crl.pem" : "");
	for (int i = 0; i < 2; i++) {
		const char *path = i ? crl_path : ca_path, *why = path_problem(path, false);

		if (why) {
			fprintf(stderr, "iotsec-pki verify: %s: %s\n", path, why);
			return PKI_EXIT_FAIL;
		}
	}
	if (cert_load(ca_path, &ca) < 0) {
		not_a_certificate(ca_path);
		return PKI_EXIT_FAIL;
	}
	if ((r = cert_store_load(ca_path, crl_path, &store)) < 0) {
		fprintf(stderr, "iotsec-pki verify: %s: %s\n",
			r == -IOTSEC_ECRL ? crl_path : ca_path,
			r == -IOTSEC_ECRL ? "not a revocation list signed by this CA"
					  : iotsec_strerror(r));
		X509_free(ca);
		return PKI_EXIT_FAIL;
	}
	for (int i = 0; i < a.npos; i++)
		bad += verify_one(store, ca, a.pos[i], a.key) < 0;
	cert_store_free(store);
	X509_free(ca);
	return bad ? PKI_EXIT_FAIL : 0;
}

static const struct pki_cmd cmds[] = {
    {"init", cmd_init, "--dir D --home NAME [--days N]",
     "Create the home CA in D: an RSA-3072 key (ca.key, mode 0600), its self-signed certificate\n"
     "(ca.crt), an empty revocation list (crl.pem) and the issuance database (index.json).\n"
     "--days: validity of the CA certificate (default 3650).\n"},
    {"enrol", cmd_enrol,
     "--dir D --device NAME --role node|controller|doctor|relay [--days N | --not-before T --not-after T] "
     "[--csr FILE] --out O",
     "Issue a certificate for device NAME into O: NAME.crt, NAME.key (mode 0600; not with --csr)\n"
     "and copies of ca.crt and crl.pem. --csr FILE: certify the key of a PEM request made on\n"
     "the device instead of making one (its CN, if any, must be NAME). --days: validity from\n"
     "now (default 365), cut to the CA's own end. T is @EPOCH or YYYY-MM-DDTHH:MM:SSZ (UTC).\n"
     "A device holding a valid certificate must be revoked before it is enrolled again.\n"},
    {"revoke", cmd_revoke, "--dir D --device NAME | --serial HEX",
     "Revoke every certificate of device NAME, or the one certificate with that serial (as\n"
     "'list' shows it), and re-sign the revocation list.\n"},
    {"crl", cmd_crl, "--dir D",
     "Re-sign the revocation list (it is valid for 365 days after each change).\n"},
    {"list", cmd_list, "--dir D [--json]",
     "List every certificate issued: device, role, serial, end of validity and status (valid,\n"
     "revoked, expired, not yet valid). --json: the same as one JSON document.\n"},
    {"verify", cmd_verify, "--dir D | --ca CA.CRT --crl CRL.PEM  CERT... [--key KEY]",
     "Check each CERT as the devices do: issued by this home's CA, not revoked, inside its\n"
     "validity. On a Pi, give the CA's certificate and revocation list (--ca, --crl) instead\n"
     "of the CA's directory. --key (with one CERT): also check that KEY is its private key.\n"
     "Prints \"CERT: OK (...)\" for each good one, \"CERT: reason\" on stderr for each bad\n"
     "one, and exits 1 if any was bad.\n"},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: iotsec-pki COMMAND [OPTIONS]   (iotsec-pki COMMAND --help for more)\n\n"
		   "The home certificate authority. Commands:\n");
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		fprintf(f, "  %-7s %s\n", cmds[i].name, cmds[i].usage);
}

int main(int argc, char **argv)
{
	log_init("iotsec-pki", LOG_INFO);
	if (argc < 2) {
		usage(stderr);
		return PKI_EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("iotsec-pki (iotsec) %s\n", IOTSEC_VERSION);
		return 0;
	}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (strcmp(argv[1], cmds[i].name) == 0) {
			cmd = &cmds[i];
			return cmd->run(argc - 1, argv + 1);
		}
	}
	fprintf(stderr, "iotsec-pki: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return PKI_EXIT_USAGE;
}
