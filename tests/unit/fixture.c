#include "fixture.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include <openssl/pem.h>

#include "ca.h"
#include "clock.h"
#include "crypto.h"
#include "file.h"

static int enrol(struct fixture *f, const char *ca_dir, const char *name, enum cert_role role,
		 int64_t from, int64_t to)
{
	char out[PATH_MAX + 8];
	struct ca_enrol_req req = {
	    .device = name, .role = role, .not_before = from, .not_after = to, .out_dir = out};

	snprintf(out, sizeof(out), "%s/out", f->dir);
	return ca_enrol(ca_dir, &req);
}

/* A certificate that claims to be pi1 but signs itself: what a "parking lot" attacker makes. */
static int make_selfsigned(struct fixture *f)
{
	EVP_PKEY *key = NULL;
	X509 *x = X509_new();
	X509_NAME *n = X509_get_subject_name(x);
	FILE *fp = NULL;
	int r = -1;

	if (crypto_rsa_generate(2048, &key) < 0 || x == NULL)
		goto out;
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 4242);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400 * 30);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"pi1", -1, -1, 0);
	X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC, (const unsigned char *)"testhome", -1, -1,
				   0);
	X509_NAME_add_entry_by_txt(n, "OU", MBSTRING_ASC, (const unsigned char *)"node", -1, -1, 0);
	X509_set_issuer_name(x, n);
	X509_set_pubkey(x, key);
	if (X509_sign(x, key, EVP_sha256()) <= 0)
		goto out;
	if ((fp = fopen(fixture_path(f, "selfsigned", "crt"), "w")) == NULL ||
	    PEM_write_X509(fp, x) != 1)
		goto out;
	r = crypto_save_private_key(fixture_path(f, "selfsigned", "key"), key);
out:
	if (fp)
		fclose(fp);
	X509_free(x);
	EVP_PKEY_free(key);
	return r;
}

/* IOTSEC_FIXTURE_CACHE=DIR, an empty directory made for one run of the suite: the first test
 * binary builds the home as always and leaves a copy in DIR/home; every later one copies that
 * instead of making its own dozen RSA keys, waiting on DIR/lock while another makes it. For slow
 * runs only: under qemu-user one home takes a minute or more to make. The copy is the same code's
 * work, minutes old, so "ended a day ago" and "starts in a day" still hold. */
static int cache_cmd(const char *fmt, const char *cache, const char *dir)
{
	char cmd[3 * PATH_MAX];

	/* Paths go into single quotes: one with a quote in it gets no cache. */
	if (strchr(cache, '\'') != NULL || strchr(dir, '\'') != NULL)
		return -1;
	if (snprintf(cmd, sizeof(cmd), fmt, cache, dir) >= (int)sizeof(cmd))
		return -1;
	return system(cmd) == 0 ? 0 : -1;
}

static int fixture_from_cache(struct fixture *f, const char *cache)
{
	return cache_cmd("test -d '%1$s/home' && cp -a '%1$s/home/.' '%2$s/'", cache, f->dir);
}

/* Written under another name and renamed, so that a binary never copies half a home even without
 * the lock; of two racing that way, the second rename fails and its copy goes. */
static void fixture_to_cache(struct fixture *f, const char *cache)
{
	if (cache_cmd(
		"cp -a '%2$s' '%1$s/new.$$' && { mv -T '%1$s/new.$$' '%1$s/home' 2>/dev/null ||"
		" rm -rf '%1$s/new.$$'; }",
		cache, f->dir) < 0)
		fprintf(stderr, "fixture: could not leave a copy in %s\n", cache);
}

static int fixture_make(struct fixture *f);

int fixture_home(struct fixture *f)
{
	char tmpl[] = "/tmp/iotsec-fixture-XXXXXX";
	const char *cache = getenv("IOTSEC_FIXTURE_CACHE");
	int lock = -1, r;

	if (mkdtemp(tmpl) == NULL)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "%s", tmpl);
	snprintf(f->ca_dir, sizeof(f->ca_dir), "%s/ca", f->dir);
	snprintf(f->other_ca_dir, sizeof(f->other_ca_dir), "%s/otherca", f->dir);
	snprintf(f->ca_crt, sizeof(f->ca_crt), "%s/ca.crt", f->ca_dir);
	snprintf(f->crl, sizeof(f->crl), "%s/crl.pem", f->ca_dir);

	if (cache != NULL && cache[0] != '\0') {
		char lock_path[PATH_MAX];

		snprintf(lock_path, sizeof(lock_path), "%s/lock", cache);
		/* Held until the home is in the cache (or could not be made): the others wait. */
		if ((lock = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) >= 0)
			(void)flock(lock, LOCK_EX);
		if (fixture_from_cache(f, cache) == 0) {
			if (lock >= 0)
				close(lock);
			return 0;
		}
	}
	r = fixture_make(f);
	if (r == 0 && cache != NULL && cache[0] != '\0')
		fixture_to_cache(f, cache);
	if (lock >= 0)
		close(lock);
	return r;
}

static int fixture_make(struct fixture *f)
{
	int64_t now = clock_now(), year = 365 * 86400;

	if (ca_init(f->ca_dir, "testhome", 3650) < 0 ||
	    ca_init(f->other_ca_dir, "otherhome", 3650) < 0 ||
	    enrol(f, f->ca_dir, "pi1", CERT_ROLE_NODE, now - 60, now + year) < 0 ||
	    enrol(f, f->ca_dir, "pi2", CERT_ROLE_NODE, now - 60, now + year) < 0 ||
	    enrol(f, f->ca_dir, "ctl1", CERT_ROLE_CONTROLLER, now - 60, now + year) < 0 ||
	    enrol(f, f->ca_dir, "doc1", CERT_ROLE_DOCTOR, now - 60, now + year) < 0 ||
	    enrol(f, f->ca_dir, "relay1", CERT_ROLE_RELAY, now - 60, now + year) < 0 ||
	    enrol(f, f->ca_dir, "doc2", CERT_ROLE_DOCTOR, now - 60, now + year) < 0 ||
	    enrol(f, f->ca_dir, "docrev", CERT_ROLE_DOCTOR, now - 60, now + year) < 0 ||
	    ca_revoke(f->ca_dir, "docrev") < 0 ||
	    enrol(f, f->ca_dir, "revoked", CERT_ROLE_NODE, now - 60, now + year) < 0 ||
	    ca_revoke(f->ca_dir, "revoked") < 0 ||
	    enrol(f, f->ca_dir, "expired", CERT_ROLE_NODE, now - 2 * 86400, now - 86400) < 0 ||
	    enrol(f, f->ca_dir, "future", CERT_ROLE_NODE, now + 86400, now + year) < 0 ||
	    enrol(f, f->ca_dir, "short", CERT_ROLE_NODE, now - 60, now + 30 * 86400) < 0 ||
	    enrol(f, f->other_ca_dir, "pi9", CERT_ROLE_NODE, now - 60, now + year) < 0 ||
	    enrol(f, f->other_ca_dir, "doc9", CERT_ROLE_DOCTOR, now - 60, now + year) < 0 ||
	    make_selfsigned(f) < 0)
		return -1;
	return 0;
}

void fixture_remove(struct fixture *f)
{
	char cmd[PATH_MAX + 16];

	if (f->dir[0] == '\0' || strncmp(f->dir, "/tmp/iotsec-fixture-", 20) != 0)
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", f->dir);
}

const char *fixture_path(const struct fixture *f, const char *name, const char *ext)
{
	static char path[4][PATH_MAX + 64];
	static int next;
	char *p = path[next++ % 4];

	snprintf(p, sizeof(path[0]), "%s/out/%s.%s", f->dir, name, ext);
	return p;
}

X509 *fixture_cert(const struct fixture *f, const char *name)
{
	X509 *x = NULL;

	if (cert_load(fixture_path(f, name, "crt"), &x) < 0) {
		fprintf(stderr, "fixture: cannot load %s certificate\n", name);
		abort();
	}
	return x;
}

EVP_PKEY *fixture_key(const struct fixture *f, const char *name)
{
	EVP_PKEY *k = NULL;

	if (crypto_load_private_key(fixture_path(f, name, "key"), &k) < 0) {
		fprintf(stderr, "fixture: cannot load %s key\n", name);
		abort();
	}
	return k;
}
