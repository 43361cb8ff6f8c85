/* What iotsec-doctor's commands share: the command line's pieces, the configuration, the
 * doctor's directory and its root files. */
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

int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *ret)
{
	char *end;
	unsigned long long v;

	if (s == NULL || s[0] < '0' || s[0] > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -EINVAL;
	*ret = v;
	return 0;
}

bool is_help(const char *arg)
{
	return strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0;
}

const char *doctor_config_path;

int doctor_config(const char *cmd, const char *path, struct iotsec_config *ret)
{
	char err[CONFIG_ERR_MAX];
	int r;

	path = path ? path : doctor_config_path;
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
