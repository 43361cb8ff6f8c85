/* cert: every reason a device certificate is refused, each with its own code. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "ca.h"
#include "cert.h"
#include "clock.h"
#include "crypto.h"
#include "file.h"
#include "fixture.h"
#include "log.h"

static struct fixture fx;
static struct cert_store *store;

static int group_setup(void **state)
{
	(void)state;
	if (fixture_home(&fx) < 0)
		return -1;
	return cert_store_load(fx.ca_crt, fx.crl, &store);
}

static int group_teardown(void **state)
{
	(void)state;
	cert_store_free(store);
	fixture_remove(&fx);
	return 0;
}

static int reset_clock(void **state)
{
	(void)state;
	clock_set_fake(-1);
	clock_reset_floor();
	return 0;
}

static int verify_name(const char *name, unsigned roles, struct cert_info *info)
{
	X509 *x = fixture_cert(&fx, name);
	int r = cert_verify(store, x, roles, info);

	X509_free(x);
	return r;
}

static void test_valid_node(void **state)
{
	struct cert_info info;

	(void)state;
	assert_int_equal(verify_name("pi1", CERT_ROLES_ANY, &info), 0);
	assert_string_equal(info.name, "pi1");
	assert_string_equal(info.home, "testhome");
	assert_int_equal(info.role, CERT_ROLE_NODE);
	assert_true(strlen(info.serial) > 0);
	assert_true(info.not_after > info.not_before);
	assert_string_equal(cert_store_home(store), "testhome");
}

static void test_valid_controller(void **state)
{
	struct cert_info info;

	(void)state;
	assert_int_equal(verify_name("ctl1", CERT_ROLE_CONTROLLER, &info), 0);
	assert_int_equal(info.role, CERT_ROLE_CONTROLLER);
}

static void test_fingerprints_differ(void **state)
{
	struct cert_info a, b;

	(void)state;
	assert_int_equal(verify_name("pi1", CERT_ROLES_ANY, &a), 0);
	assert_int_equal(verify_name("pi2", CERT_ROLES_ANY, &b), 0);
	assert_memory_not_equal(a.fp, b.fp, CERT_FP_LEN);
	assert_string_not_equal(a.serial, b.serial);
}

/* One row per rejection: the certificate and the code it must get. */
static void test_rejections(void **state)
{
	static const struct {
		const char *name;
		unsigned roles;
		int code;
	} rows[] = {
	    {"pi1", CERT_ROLE_CONTROLLER, -IOTSEC_EROLE},
	    {"expired", CERT_ROLES_ANY, -EKEYEXPIRED},
	    {"future", CERT_ROLES_ANY, -IOTSEC_ENOTYETVALID},
	    {"revoked", CERT_ROLES_ANY, -EKEYREVOKED},
	    {"pi9", CERT_ROLES_ANY, -IOTSEC_EUNKNOWNCA},
	    {"selfsigned", CERT_ROLES_ANY, -IOTSEC_ESELFSIGNED},
	};
	struct cert_info info = {.name = "untouched"};

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		int r = verify_name(rows[i].name, rows[i].roles, &info);

		if (r != rows[i].code)
			fail_msg("%s: got %s, want %s", rows[i].name, iotsec_strerror(r),
				 iotsec_strerror(rows[i].code));
		assert_string_equal(info.name, "untouched");
	}
}

static void test_ca_cert_is_no_device(void **state)
{
	X509 *ca = NULL;

	(void)state;
	assert_int_equal(cert_load(fx.ca_crt, &ca), 0);
	assert_int_equal(cert_verify(store, ca, CERT_ROLES_ANY, NULL), -IOTSEC_ECERT);
	assert_int_equal(cert_info_get(ca, &(struct cert_info){0}), -EBADMSG); /* no role */
	X509_free(ca);
}

static void test_booted_in_1970(void **state)
{
	(void)state;
	/* At the build time, below a fresh certificate's start (and the CRL's), nothing
	 * verifies... */
	clock_set_fake(0);
	assert_int_not_equal(verify_name("pi1", CERT_ROLES_ANY, NULL), 0);
	/* ...until the last-known-good time is known: then valid is valid and expired expired. */
	clock_raise_floor(time(NULL));
	assert_int_equal(verify_name("pi1", CERT_ROLES_ANY, NULL), 0);
	assert_int_equal(verify_name("expired", CERT_ROLES_ANY, NULL), -EKEYEXPIRED);
}

static void test_clock_moves_validity(void **state)
{
	(void)state;
	clock_set_fake(time(NULL) + 2 * 86400);
	assert_int_equal(verify_name("future", CERT_ROLES_ANY, NULL), 0);
	clock_set_fake(time(NULL) + 31 * 86400);
	assert_int_equal(verify_name("short", CERT_ROLES_ANY, NULL), -EKEYEXPIRED);
	assert_int_equal(verify_name("pi1", CERT_ROLES_ANY, NULL), 0);
	/* Past the CRL's next update nothing verifies: revocations may be missing. */
	clock_set_fake(time(NULL) + (CA_CRL_DAYS + 1) * 86400LL);
	assert_int_equal(verify_name("pi1", CERT_ROLES_ANY, NULL), -IOTSEC_ECRL);
}

static void test_key_match(void **state)
{
	X509 *x = fixture_cert(&fx, "pi1");
	EVP_PKEY *own = fixture_key(&fx, "pi1"), *other = fixture_key(&fx, "pi2");

	(void)state;
	assert_int_equal(cert_key_matches(x, own), 0);
	assert_int_equal(cert_key_matches(x, other), -IOTSEC_EKEYMISMATCH);
	assert_int_equal(cert_key_matches(x, NULL), -IOTSEC_EKEYMISMATCH);
	X509_free(x);
	EVP_PKEY_free(own);
	EVP_PKEY_free(other);
}

static void test_der_round_trip_and_bad_der(void **state)
{
	X509 *x = fixture_cert(&fx, "pi1"), *y = NULL;
	uint8_t *der = NULL, *longer;
	size_t len;

	(void)state;
	assert_int_equal(cert_to_der(x, &der, &len), 0);
	assert_int_equal(cert_from_der(der, len, &y), 0);
	assert_int_equal(X509_cmp(x, y), 0);
	X509_free(y);
	y = NULL;
	assert_int_equal(cert_from_der(der, len - 1, &y), -EBADMSG); /* truncated */
	assert_int_equal(cert_from_der(der, 0, &y), -EBADMSG);	     /* empty */
	longer = malloc(len + 1);
	memcpy(longer, der, len);
	longer[len] = 0;
	assert_int_equal(cert_from_der(longer, len + 1, &y), -EBADMSG); /* trailing byte */
	der[0] ^= 0xff;
	assert_int_equal(cert_from_der(der, len, &y), -EBADMSG); /* not a SEQUENCE */
	assert_null(y);
	free(longer);
	OPENSSL_free(der);
	X509_free(x);
}

static void test_bad_pem(void **state)
{
	static const char junk[] = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
	X509 *x = NULL;

	(void)state;
	assert_int_equal(cert_from_pem(junk, strlen(junk), &x), -EBADMSG);
	assert_int_equal(cert_from_pem("hello", 5, &x), -EBADMSG);
	assert_int_equal(cert_load("/nonexistent/iotsec.crt", &x), -ENOENT);
	assert_null(x);
}

static void test_store_load_failures(void **state)
{
	char other_crl[PATH_MAX + 32], missing[PATH_MAX + 32];
	struct cert_store *s = NULL;

	(void)state;
	snprintf(other_crl, sizeof(other_crl), "%s/crl.pem", fx.other_ca_dir);
	snprintf(missing, sizeof(missing), "%s/none.pem", fx.dir);
	assert_int_equal(cert_store_load(fx.ca_crt, missing, &s), -IOTSEC_ECRL);
	assert_int_equal(cert_store_load(fx.ca_crt, other_crl, &s), -IOTSEC_ECRL);
	assert_int_equal(cert_store_load(fixture_path(&fx, "pi1", "crt"), fx.crl, &s),
			 -IOTSEC_ECERT);
	assert_int_equal(cert_store_load(missing, fx.crl, &s), -ENOENT);
	assert_int_equal(cert_store_load(fx.ca_crt, fixture_path(&fx, "pi1", "crt"), &s),
			 -IOTSEC_ECRL);
	assert_null(s);
}

static void test_store_refresh_sees_new_revocation(void **state)
{
	struct ca_enrol_req req = {.device = "pi3",
				   .role = CERT_ROLE_NODE,
				   .not_before = time(NULL) - 60,
				   .not_after = time(NULL) + 86400};
	char out[PATH_MAX + 8], *saved = NULL;
	size_t len;
	bool changed = true;

	(void)state;
	snprintf(out, sizeof(out), "%s/out", fx.dir);
	req.out_dir = out;
	assert_int_equal(ca_enrol(fx.ca_dir, &req), 0);
	assert_int_equal(cert_store_refresh(store, &changed), 0);
	assert_false(changed);
	assert_int_equal(verify_name("pi3", CERT_ROLES_ANY, NULL), 0);

	assert_int_equal(ca_revoke(fx.ca_dir, "pi3"), 0);
	assert_int_equal(cert_store_refresh(store, &changed), 0);
	assert_true(changed);
	assert_int_equal(verify_name("pi3", CERT_ROLES_ANY, NULL), -EKEYREVOKED);

	/* A broken CRL replacing a good one: refused, and the old one stays in force. */
	assert_int_equal(file_read(fx.crl, 1 << 20, &saved, &len), 0);
	assert_int_equal(file_write_atomic(fx.crl, "garbage\n", 8, 0644), 0);
	assert_int_equal(cert_store_refresh(store, &changed), -IOTSEC_ECRL);
	assert_int_equal(verify_name("pi3", CERT_ROLES_ANY, NULL), -EKEYREVOKED);
	assert_int_equal(verify_name("pi1", CERT_ROLES_ANY, NULL), 0);
	assert_int_equal(file_write_atomic(fx.crl, saved, len, 0644), 0);
	free(saved);
}

static void test_role_names(void **state)
{
	enum cert_role role = CERT_ROLE_NODE;

	(void)state;
	assert_int_equal(cert_role_parse("controller", &role), 0);
	assert_int_equal(role, CERT_ROLE_CONTROLLER);
	assert_string_equal(cert_role_name(CERT_ROLE_NODE), "node");
	assert_int_equal(cert_role_parse("Controller", &role), -EINVAL);
	assert_int_equal(cert_role_parse("", &role), -EINVAL);
	assert_int_equal(cert_role_parse("admin", &role), -EINVAL);
	assert_int_equal(cert_role_parse("doctors", &role), -EINVAL);
	assert_int_equal(role, CERT_ROLE_CONTROLLER);
	assert_null(cert_role_name(0));
	assert_null(cert_role_name(CERT_ROLE_NODE | CERT_ROLE_DOCTOR));
	/* A doctor is no device of the home: no daemon's "any device" admits one. */
	assert_int_equal(cert_role_parse("doctor", &role), 0);
	assert_int_equal(role, CERT_ROLE_DOCTOR);
	assert_string_equal(cert_role_name(CERT_ROLE_DOCTOR), "doctor");
	assert_int_equal(CERT_ROLES_ANY & CERT_ROLE_DOCTOR, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_valid_node, reset_clock),
	    cmocka_unit_test_setup(test_valid_controller, reset_clock),
	    cmocka_unit_test_setup(test_fingerprints_differ, reset_clock),
	    cmocka_unit_test_setup(test_rejections, reset_clock),
	    cmocka_unit_test_setup(test_ca_cert_is_no_device, reset_clock),
	    cmocka_unit_test_setup_teardown(test_booted_in_1970, reset_clock, reset_clock),
	    cmocka_unit_test_setup_teardown(test_clock_moves_validity, reset_clock, reset_clock),
	    cmocka_unit_test_setup(test_key_match, reset_clock),
	    cmocka_unit_test_setup(test_der_round_trip_and_bad_der, reset_clock),
	    cmocka_unit_test_setup(test_bad_pem, reset_clock),
	    cmocka_unit_test_setup(test_store_load_failures, reset_clock),
	    cmocka_unit_test_setup(test_store_refresh_sees_new_revocation, reset_clock),
	    cmocka_unit_test_setup(test_role_names, reset_clock),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
