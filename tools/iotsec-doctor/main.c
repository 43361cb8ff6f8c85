/* iotsec-doctor: the doctor's side of a kit's doctor stream (SPEC 8, 9). The doctor keeps a key
 * and a certificate of the patient's home, draws the stream's root, grants it to the kit (a
 * signed DOCTOR_GRANT), acknowledges its emergencies (EMERGENCY_ACK) and opens its sealed
 * readings with the root kept here. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "encoding.h"
#include "file.h"
#include "iotsec-doctor.h"
#include "log.h"
#include "version.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: iotsec-doctor [-c FILE] COMMAND [ARGS]\n"
		"\n"
		"A doctor's keys for the readings of a patient's kit.\n"
		"\n"
		"commands:\n"
		"  init --dir D --name N [--home H]\n"
		"                     a key (D/doctor.key) and a certificate request\n"
		"                     (D/doctor.csr) for the home's iotsec-pki enrol --csr\n"
		"  grant --dir D --kit K --kit-cert FILE [--start E] --out FILE\n"
		"                     a new doctor stream for kit K: its root stays in\n"
		"                     D/roots/K.json, the signed grant goes to FILE\n"
		"  ack --dir D --kit K --seq N --out FILE\n"
		"                     acknowledge K's emergency records up to seq N\n"
		"  read --dir D [--json]\n"
		"                     open sealed readings, hex lines on standard input\n"
		"                     (mosquitto_sub -F %%x)\n"
		"\n"
		"options:\n"
		"  -c, --config FILE  the home's configuration, for the stream schedule and the\n"
		"                     broker (default %s, or the defaults)\n"
		"  -h, --help         this text (COMMAND --help: the command's)\n"
		"      --version      the version\n"
		"exit status: 0 done, 1 failed, 2 wrong command line\n",
		CONFIG_DEFAULT_PATH);
}

int usage_error(const char *cmd, const char *use, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "iotsec-doctor %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n%s", use);
	return DOCTOR_EXIT_USAGE;
}

const char *opt_value(int argc, char **argv, int *i)
{
	if (*i + 1 >= argc)
		return NULL;
	return argv[++*i];
}

bool is_help(const char *arg)
{
	return strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0;
}

static const char *config_path;

int doctor_config(const char *cmd, const char *path, struct iotsec_config *ret)
{
	char err[CONFIG_ERR_MAX];
	int r;

	path = path ? path : config_path;
	/* A doctor's machine need not have iotsec installed: the defaults are the home's unless
	 * its iotsec.conf says otherwise. */
	if (path == NULL && access(CONFIG_DEFAULT_PATH, F_OK) != 0)
		r = config_load_string("", "defaults", ret, err, sizeof(err));
	else
		r = config_load(path ? path : CONFIG_DEFAULT_PATH, ret, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "iotsec-doctor %s: %s\n", cmd, err);
		return -1;
	}
	return 0;
}

int doctor_dir_load(const char *cmd, const char *dir, struct doctor_dir *ret)
{
	struct doctor_dir d = {.dir = dir};
	char path[4096], buf[256];
	const char *why, *file = NULL;
	int r = 0;

	if (strlen(dir) > DOCTOR_DIR_MAX) {
		fprintf(stderr, "iotsec-doctor %s: --dir: at most %d characters\n", cmd,
			DOCTOR_DIR_MAX);
		return -1;
	}
	snprintf(path, sizeof(path), "%s", dir);
	if ((why = file_problem(path, true, buf, sizeof(buf))) != NULL) {
		fprintf(stderr, "iotsec-doctor %s: %s: %s%s\n", cmd, dir, why,
			strcmp(why, "missing") == 0 ? " (iotsec-doctor init --dir makes it)" : "");
		return -1;
	}
	snprintf(path, sizeof(path), "%.*s/doctor.crt", DOCTOR_DIR_MAX, dir);
	file = "doctor.crt";
	if ((why = file_problem(path, false, buf, sizeof(buf))) != NULL ||
	    (r = cert_load(path, &d.cert)) < 0)
		goto fail;
	snprintf(path, sizeof(path), "%.*s/ca.crt", DOCTOR_DIR_MAX, dir);
	file = "ca.crt";
	if ((why = file_problem(path, false, buf, sizeof(buf))) != NULL ||
	    (r = cert_load(path, &d.ca)) < 0)
		goto fail;
	snprintf(path, sizeof(path), "%.*s/doctor.key", DOCTOR_DIR_MAX, dir);
	file = "doctor.key";
	if ((why = file_problem(path, false, buf, sizeof(buf))) != NULL)
		goto fail;
	if ((r = crypto_load_private_key(path, &d.key)) < 0) {
		why = r == -IOTSEC_ESECRET ? "readable by others: chmod 600 it" : NULL;
		goto fail;
	}
	file = "doctor.crt";
	if (X509_verify(d.cert, X509_get0_pubkey(d.ca)) != 1) {
		why = "not issued by ca.crt (another home's CA?)";
		goto fail;
	}
	if ((r = cert_info_get(d.cert, &d.self)) < 0) {
		why = "not an iotsec certificate (no name, home or role)";
		goto fail;
	}
	/* A kit takes grants and acknowledgements from a doctor's certificate alone. */
	if (d.self.role != CERT_ROLE_DOCTOR) {
		why = "a certificate for a device, not a doctor (enrol with --role doctor)";
		goto fail;
	}
	if ((r = cert_key_matches(d.cert, d.key)) < 0) {
		file = "doctor.key";
		why = "not the key of doctor.crt";
		goto fail;
	}
	*ret = d;
	return 0;
fail:
	/* Right after init, the certificates are not there yet: say which step brings each. */
	if (why && strcmp(why, "missing") == 0)
		why = strcmp(file, "doctor.crt") == 0
			  ? "missing: copy here the certificate iotsec-pki enrol --role doctor "
			    "issued "
			    "(OUT/NAME.crt)"
			  : "missing: copy here the home's CA certificate iotsec-pki enrol wrote "
			    "beside it (OUT/ca.crt)";
	fprintf(stderr, "iotsec-doctor %s: %s/%s: %s\n", cmd, dir, file,
		why ? why : iotsec_strerror(r));
	doctor_dir_free(&d);
	return -1;
}

void doctor_dir_free(struct doctor_dir *d)
{
	X509_free(d->cert);
	X509_free(d->ca);
	EVP_PKEY_free(d->key);
	d->cert = d->ca = NULL;
	d->key = NULL;
}

int doctor_root_save(const char *path, const struct doctor_root *rt)
{
	char id_hex[2 * STREAM_ID_LEN + 1], *root_b64 = NULL, *text = NULL;
	json_t *o = NULL;
	int r = -ENOMEM;

	hex_encode(rt->id, STREAM_ID_LEN, id_hex);
	if ((root_b64 = b64_encode(rt->root, CRYPTO_KEY_LEN)) == NULL ||
	    (o = json_pack("{s:s, s:I, s:I, s:s, s:s}", "kit", rt->kit, "start",
			   (json_int_t)rt->start, "issued", (json_int_t)rt->issued_ms, "stream",
			   id_hex, "root", root_b64)) == NULL ||
	    (text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER)) == NULL)
		goto out;
	r = file_write_atomic(path, text, strlen(text), 0600);
out:
	crypto_wipe_free(text);
	crypto_wipe_free(root_b64);
	json_decref(o);
	return r;
}

int doctor_root_load(const char *path, struct doctor_root *ret)
{
	struct doctor_root rt = {0};
	const char *kit, *id_hex, *root_b64;
	json_int_t start, issued;
	char *text = NULL;
	json_t *o = NULL;
	size_t len;
	int r;

	if ((r = file_check_secret(path)) < 0 || (r = file_read(path, 4096, &text, &len)) < 0)
		goto out;
	r = -EBADMSG;
	if ((o = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL)) == NULL ||
	    json_unpack(o, "{s:s, s:I, s:I, s:s, s:s !}", "kit", &kit, "start", &start, "issued",
			&issued, "stream", &id_hex, "root", &root_b64) < 0 ||
	    strlen(kit) >= CERT_NAME_MAX || start < 1 || start > UINT32_MAX ||
	    hex_decode(id_hex, rt.id, STREAM_ID_LEN) < 0 ||
	    b64_decode_exact(root_b64, rt.root, CRYPTO_KEY_LEN) < 0)
		goto out;
	snprintf(rt.kit, sizeof(rt.kit), "%s", kit);
	rt.start = (uint32_t)start;
	rt.issued_ms = issued;
	*ret = rt;
	r = 0;
out:
	crypto_wipe(&rt, sizeof(rt));
	crypto_wipe_free(text);
	json_decref(o);
	return r;
}

int main(int argc, char **argv)
{
	int n = 1;

	crypto_wipe_json();
	log_init("iotsec-doctor", LOG_WARNING);
	/* -c anywhere before the command; what is left is the command and its own arguments. */
	for (int i = 1; i < argc; i++) {
		if (n == 1 && (strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0)) {
			if (i + 1 == argc) {
				fprintf(stderr, "iotsec-doctor: %s needs a file\n", argv[i]);
				return DOCTOR_EXIT_USAGE;
			}
			config_path = argv[++i];
		} else if (n == 1 && strncmp(argv[i], "--config=", 9) == 0) {
			config_path = argv[i] + 9;
		} else if (n == 1 && strcmp(argv[i], "--version") == 0) {
			printf("iotsec-doctor (iotsec) %s\n", IOTSEC_VERSION);
			return DOCTOR_EXIT_OK;
		} else if (n == 1 && is_help(argv[i])) {
			usage(stdout);
			return DOCTOR_EXIT_OK;
		} else if (n == 1 && argv[i][0] == '-') {
			fprintf(stderr, "iotsec-doctor: unknown option '%s'\n", argv[i]);
			usage(stderr);
			return DOCTOR_EXIT_USAGE;
		} else {
			argv[n++] = argv[i];
		}
	}
	if (n < 2) {
		usage(stderr);
		return DOCTOR_EXIT_USAGE;
	}
	argc = n - 1, argv++;
	if (strcmp(argv[0], "init") == 0)
		return cmd_init(argc, argv);
	if (strcmp(argv[0], "grant") == 0)
		return cmd_grant(argc, argv);
	if (strcmp(argv[0], "ack") == 0)
		return cmd_ack(argc, argv);
	if (strcmp(argv[0], "read") == 0)
		return cmd_read(argc, argv);
	fprintf(stderr, "iotsec-doctor: unknown command '%s' (try --help)\n", argv[0]);
	return DOCTOR_EXIT_USAGE;
}
