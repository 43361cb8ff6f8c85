/* certd: the verdicts of iotsec-certd (certd_check, certd_status) on the certificates of a real
 * home CA (fixture.h). Each case installs a device's files where its configuration (read with
 * config_load_string(), as the daemon reads it) says they are, as an administrator would, then
 * checks. The clock runs normally (clock_set_fake() at the real time) except where a case sets
 * it to 1970, as on a Pi without a real-time clock. The events certd publishes go through a real
 * ctl_server on a scratch socket to a blocking ctl_client in a forked child, which relays each
 * event it reads to the test through a pipe. Every wait is bounded. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ca.h"
#include "cert.h"
#include "certd.h"
#include "clock.h"
#include "config.h"
#include "ctl.h"
#include "file.h"
#include "log.h"
#include "proto.h"

#include "ctl_peer.h"
#include "fixture.h"

static struct fixture fx;
static char root[] = "/tmp/iotsec-certd-verdicts-XXXXXX";
static int n_cases;
static int64_t now;

/* One case: its directory (device files, state_dir, the control socket), configuration and
 * certd; with events, a server and a subscriber. */
struct box {
	char dir[PATH_MAX];
	char crt[PATH_MAX + 16], key[PATH_MAX + 16], state[PATH_MAX + 16], clock[PATH_MAX + 32];
	char sock[PATH_MAX + 16];
	struct iotsec_config cfg;
	struct certd c;
	sd_event *e;
	pid_t sub;  /* the subscriber child */
	int sub_fd; /* its pipe */
	char line[8192];
	size_t line_len;
};

/* ---- files ---- */

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

static void copy_file(const char *from, const char *to, mode_t mode)
{
	char *buf = NULL;
	size_t len = 0;

	assert_int_equal(file_read(from, 1 << 20, &buf, &len), 0);
	assert_int_equal(file_write_atomic(to, buf, len, mode), 0);
	free(buf);
}

/* Put device crt's certificate and device key's key where the configuration says; NULL
 * removes the file. */
static void install(struct box *b, const char *crt, const char *key)
{
	unlink(b->crt);
	unlink(b->key);
	if (crt)
		copy_file(fixture_path(&fx, crt, "crt"), b->crt, 0644);
	if (key)
		copy_file(fixture_path(&fx, key, "key"), b->key, 0600);
}

static void configure(struct box *b, const char *name, const char *ca, const char *crl)
{
	char *text = NULL, err[CONFIG_ERR_MAX] = "";

	config_free(&b->cfg);
	assert_true(asprintf(&text,
			     "device = {\n  name = \"%s\";\n  cert = \"%s\";\n  key = \"%s\";\n"
			     "  ca = \"%s\";\n  crl = \"%s\";\n  state_dir = \"%s\";\n"
			     "  run_dir = \"%s\";\n};\ncertd = {\n  interval = 60;\n};\n",
			     name, b->crt, b->key, ca, crl, b->state, b->dir) > 0);
	memset(&b->cfg, 0, sizeof(b->cfg));
	if (config_load_string(text, "certd-test.conf", &b->cfg, err, sizeof(err)) < 0)
		fail_msg("configuration refused: %s", err);
	free(text);
	b->c.cfg = &b->cfg;
}

/* A fresh certd that has checked nothing. */
static void restart(struct box *b)
{
	struct ctl_server *srv = b->c.ctl;

	certd_release(&b->c);
	memset(&b->c, 0, sizeof(b->c));
	b->c.cfg = &b->cfg;
	b->c.ctl = srv;
}

static int setup(void **state)
{
	struct box *b = calloc(1, sizeof(*b));

	if (b == NULL)
		return -1;
	snprintf(b->dir, sizeof(b->dir), "%s/case%d", root, ++n_cases);
	snprintf(b->crt, sizeof(b->crt), "%s/device.crt", b->dir);
	snprintf(b->key, sizeof(b->key), "%s/device.key", b->dir);
	snprintf(b->state, sizeof(b->state), "%s/state", b->dir);
	if (mkdir(b->dir, 0700) < 0 || mkdir(b->state, 0700) < 0)
		return -1;
	/* state_dir/certd, as daemon_setup() makes it. */
	snprintf(b->clock, sizeof(b->clock), "%s/certd", b->state);
	if (mkdir(b->clock, 0755) < 0)
		return -1;
	snprintf(b->clock, sizeof(b->clock), "%s/certd/clock", b->state);
	snprintf(b->sock, sizeof(b->sock), "%s/certd.sock", b->dir);
	b->sub = -1;
	b->sub_fd = -1;
	clock_reset_floor();
	clock_set_fake(now);
	configure(b, "", fx.ca_crt, fx.crl);
	*state = b;
	return 0;
}

static int teardown(void **state)
{
	struct box *b = *state;
	int status;

	if (b->sub > 0) {
		kill(b->sub, SIGKILL);
		waitpid(b->sub, &status, 0);
	}
	if (b->sub_fd >= 0)
		close(b->sub_fd);
	certd_release(&b->c);
	ctl_server_free(b->c.ctl);
	sd_event_unref(b->e);
	config_free(&b->cfg);
	nftw(b->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(b);
	clock_reset_floor();
	clock_set_fake(now);
	return 0;
}

/* ---- verdicts ---- */

/* Check now: valid (code 0), or invalid for code with a reason naming path and the cause, in
 * certd's state and in its status reply. */
static void expect_verdict(struct box *b, int code, const char *path)
{
	char want[PATH_MAX + 256], daemon[16] = "", cert[16] = "", reason[512] = "";
	json_int_t checked_at;
	bool has_reason;
	json_t *s;

	certd_check(&b->c);
	/* The status as certd says it, copied out so a failed check leaks nothing. */
	s = certd_status(&b->c);
	assert_non_null(s);
	snprintf(daemon, sizeof(daemon), "%s",
		 json_string_value(json_object_get(s, "daemon")) ?: "");
	snprintf(cert, sizeof(cert), "%s",
		 json_string_value(json_object_get(s, "certificate")) ?: "");
	has_reason = json_object_get(s, "reason") != NULL;
	snprintf(reason, sizeof(reason), "%s",
		 json_string_value(json_object_get(s, "reason")) ?: "");
	checked_at = json_integer_value(json_object_get(s, "checked_at"));
	json_decref(s);

	assert_string_equal(daemon, "certd");
	assert_int_equal(checked_at, clock_now());
	if (code == 0) {
		if (b->c.state != CERTD_VALID)
			fail_msg("want valid, got: %s", b->c.reason);
		assert_int_equal(b->c.error, 0);
		assert_string_equal(b->c.reason, "");
		assert_string_equal(cert, PROTO_CERT_VALID);
		assert_false(has_reason);
	} else {
		snprintf(want, sizeof(want), "%s: %s", path, iotsec_strerror(code));
		if (b->c.state != CERTD_INVALID)
			fail_msg("want invalid (%s), got valid", want);
		if (b->c.error != code)
			fail_msg("want %s, got %s (%s)", iotsec_strerror(code),
				 iotsec_strerror(b->c.error), b->c.reason);
		assert_string_equal(b->c.reason, want);
		assert_string_equal(cert, PROTO_CERT_INVALID);
		assert_string_equal(reason, want);
	}
}

/* A fresh certd checks crt and key once. */
static void verdict_of(struct box *b, const char *crt, const char *key, int code, const char *path)
{
	restart(b);
	install(b, crt, key);
	expect_verdict(b, code, path);
}

static void test_valid(void **state)
{
	struct box *b = *state;
	struct cert_info info;
	X509 *x = fixture_cert(&fx, "pi1");
	json_t *s;

	assert_int_equal(cert_info_get(x, &info), 0);
	X509_free(x);
	verdict_of(b, "pi1", "pi1", 0, NULL);
	s = certd_status(&b->c);
	assert_string_equal(json_string_value(json_object_get(s, "device")), "pi1");
	assert_string_equal(json_string_value(json_object_get(s, "home")), "testhome");
	assert_string_equal(json_string_value(json_object_get(s, "role")), "node");
	assert_string_equal(json_string_value(json_object_get(s, "serial")), info.serial);
	assert_int_equal(json_integer_value(json_object_get(s, "not_before")), info.not_before);
	assert_int_equal(json_integer_value(json_object_get(s, "not_after")), info.not_after);
	assert_int_equal(json_integer_value(json_object_get(s, "interval")), 60);
	assert_int_equal(json_object_size(s), 10);
	json_decref(s);
	/* A controller's certificate is a member too. */
	verdict_of(b, "ctl1", "ctl1", 0, NULL);
	/* So is a device whose configuration names it. */
	configure(b, "pi1", fx.ca_crt, fx.crl);
	verdict_of(b, "pi1", "pi1", 0, NULL);
}

/* Before the first check: unknown, which keeps the device out like invalid. */
static void test_status_unknown(void **state)
{
	struct box *b = *state;
	json_t *s = certd_status(&b->c);

	assert_string_equal(json_string_value(json_object_get(s, "certificate")), "unknown");
	assert_null(json_object_get(s, "reason"));
	assert_null(json_object_get(s, "device"));
	assert_int_equal(json_object_size(s), 4);
	json_decref(s);
}

static void test_missing_certificate(void **state)
{
	struct box *b = *state;

	verdict_of(b, NULL, "pi1", -ENOENT, b->crt);
}

static void test_missing_key(void **state)
{
	struct box *b = *state;

	verdict_of(b, "pi1", NULL, -ENOENT, b->key);
}

static void test_key_mismatch(void **state)
{
	struct box *b = *state;

	verdict_of(b, "pi1", "pi2", -IOTSEC_EKEYMISMATCH, b->key);
	verdict_of(b, "pi2", "ctl1", -IOTSEC_EKEYMISMATCH, b->key);
}

/* The key as systemd hands it over (LoadCredential=): read from the credential, and a
 * certificate that stops matching it later (re-enrolment) makes certd start afresh, exit 75, to
 * be handed the new key. A mismatch at the first check is only said. */
static void test_key_credential(void **state)
{
	struct box *b = *state;
	char creds[PATH_MAX + 8], cred[PATH_MAX + 32];
	int code = 0;

	snprintf(creds, sizeof(creds), "%s/creds", b->dir);
	snprintf(cred, sizeof(cred), "%s/device.key", creds);
	assert_int_equal(mkdir(creds, 0700), 0);
	copy_file(fixture_path(&fx, "pi1", "key"), cred, 0400);
	assert_int_equal(setenv("CREDENTIALS_DIRECTORY", creds, 1), 0);
	assert_int_equal(sd_event_new(&b->e), 0);

	/* No key at the configured path: the credential is the key. */
	verdict_of(b, "pi1", NULL, 0, NULL);
	/* A first check that mismatches stays up, saying so under the file people know. */
	b->c.loop = b->e;
	verdict_of(b, "pi2", "pi2", -IOTSEC_EKEYMISMATCH, b->key);
	assert_int_equal(sd_event_get_exit_code(b->e, &code), -ENODATA);
	/* Re-enrolment under a running certd: out, to start with the new key. */
	restart(b);
	b->c.loop = b->e;
	install(b, "pi1", NULL);
	expect_verdict(b, 0, NULL);
	install(b, "pi2", "pi2");
	expect_verdict(b, -IOTSEC_EKEYMISMATCH, b->key);
	assert_int_equal(sd_event_get_exit_code(b->e, &code), 0);
	assert_int_equal(code, 75);

	/* Without credentials the key file is read at every check: no fresh start is needed. */
	assert_int_equal(unsetenv("CREDENTIALS_DIRECTORY"), 0);
	sd_event_unref(b->e);
	assert_int_equal(sd_event_new(&b->e), 0);
	restart(b);
	b->c.loop = b->e;
	install(b, "pi1", "pi1");
	expect_verdict(b, 0, NULL);
	install(b, "pi2", "pi1");
	expect_verdict(b, -IOTSEC_EKEYMISMATCH, b->key);
	assert_int_equal(sd_event_get_exit_code(b->e, &code), -ENODATA);
}

static void test_revoked(void **state)
{
	struct box *b = *state;

	verdict_of(b, "revoked", "revoked", -EKEYREVOKED, b->crt);
}

static void test_expired(void **state)
{
	struct box *b = *state;

	verdict_of(b, "expired", "expired", -EKEYEXPIRED, b->crt);
}

/* With a running clock, a certificate that starts tomorrow is not valid today, and the floor
 * of the clock does not move to its start. */
static void test_not_yet_valid(void **state)
{
	struct box *b = *state;
	int64_t floor = clock_floor();

	assert_false(clock_unset());
	verdict_of(b, "future", "future", -IOTSEC_ENOTYETVALID, b->crt);
	assert_int_equal(clock_floor(), floor);
	assert_int_equal(clock_now(), now);
}

static void test_other_home(void **state)
{
	struct box *b = *state;

	verdict_of(b, "pi9", "pi9", -IOTSEC_EUNKNOWNCA, b->crt);
}

static void test_self_signed(void **state)
{
	struct box *b = *state;

	verdict_of(b, "selfsigned", "selfsigned", -IOTSEC_ESELFSIGNED, b->crt);
}

/* device.name says who this device is: a certificate of another name is not ours. */
static void test_name_differs(void **state)
{
	struct box *b = *state;

	configure(b, "pi2", fx.ca_crt, fx.crl);
	verdict_of(b, "pi1", "pi1", -IOTSEC_EIDENTITY, b->crt);
	configure(b, "pi", fx.ca_crt, fx.crl);
	verdict_of(b, "pi1", "pi1", -IOTSEC_EIDENTITY, b->crt);
	configure(b, "pi10", fx.ca_crt, fx.crl);
	verdict_of(b, "pi1", "pi1", -IOTSEC_EIDENTITY, b->crt);
	configure(b, "ctl1", fx.ca_crt, fx.crl);
	verdict_of(b, "pi1", "pi1", -IOTSEC_EIDENTITY, b->crt);
}

/* Files that are there but are not what they must be. */
static void test_bad_files(void **state)
{
	struct box *b = *state;
	char ca_key[PATH_MAX + 32], other_crl[PATH_MAX + 32], missing[PATH_MAX + 32];

	/* A certificate that is junk, empty, or a key. */
	restart(b);
	install(b, "pi1", "pi1");
	assert_int_equal(file_write_atomic(b->crt, "not a certificate\n", 18, 0644), 0);
	expect_verdict(b, -EBADMSG, b->crt);
	restart(b);
	assert_int_equal(file_write_atomic(b->crt, "", 0, 0644), 0);
	expect_verdict(b, -EBADMSG, b->crt);
	restart(b);
	copy_file(fixture_path(&fx, "pi1", "key"), b->crt, 0644);
	expect_verdict(b, -EBADMSG, b->crt);

	/* A key that is junk, or that others can read. */
	restart(b);
	install(b, "pi1", "pi1");
	assert_int_equal(file_write_atomic(b->key, "not a key\n", 10, 0600), 0);
	expect_verdict(b, -EBADMSG, b->key);
	restart(b);
	install(b, "pi1", "pi1");
	assert_int_equal(chmod(b->key, 0644), 0);
	expect_verdict(b, -IOTSEC_ESECRET, b->key);
	restart(b);
	assert_int_equal(chmod(b->key, 0640), 0);
	expect_verdict(b, -IOTSEC_ESECRET, b->key);

	/* The home CA's own certificate, with its key: no device. */
	snprintf(ca_key, sizeof(ca_key), "%s/ca.key", fx.ca_dir);
	restart(b);
	copy_file(fx.ca_crt, b->crt, 0644);
	copy_file(ca_key, b->key, 0600);
	expect_verdict(b, -IOTSEC_ECERT, b->crt);

	/* No CRL, or the CRL of another home: nothing can be trusted, and the CRL is named. */
	snprintf(missing, sizeof(missing), "%s/nothing.pem", b->dir);
	snprintf(other_crl, sizeof(other_crl), "%s/crl.pem", fx.other_ca_dir);
	configure(b, "", fx.ca_crt, missing);
	verdict_of(b, "pi1", "pi1", -IOTSEC_ECRL, missing);
	configure(b, "", fx.ca_crt, other_crl);
	verdict_of(b, "pi1", "pi1", -IOTSEC_ECRL, other_crl);
	/* No CA certificate. */
	configure(b, "", missing, fx.crl);
	restart(b);
	install(b, "pi1", "pi1");
	certd_check(&b->c);
	assert_int_equal(b->c.state, CERTD_INVALID);
	assert_int_equal(strncmp(b->c.reason, missing, strlen(missing)), 0);
	assert_true(b->c.error < 0);
}

/* A new CRL that revokes this device is read at the next check, without a restart. */
static void test_crl_change(void **state)
{
	struct box *b = *state;

	verdict_of(b, "short", "short", 0, NULL);
	sleep_ms(10); /* the CRL's mtime moves on even on a coarse clock */
	assert_int_equal(ca_revoke(fx.ca_dir, "short"), 0);
	expect_verdict(b, -EKEYREVOKED, b->crt);
	/* The same CA still vouches for the others. */
	install(b, "pi2", "pi2");
	expect_verdict(b, 0, NULL);
}

/* ---- the clock ---- */

static int64_t saved_clock(struct box *b)
{
	char *text = NULL;
	size_t len = 0;
	long long t;
	char end;

	if (file_read(b->clock, 64, &text, &len) < 0)
		return -1;
	assert_int_equal(sscanf(text, "%lld%c", &t, &end), 2);
	assert_int_equal(end, '\n');
	free(text);
	return t;
}

/* The time we trust is saved on every valid check, and only then. */
static void test_clock_saved(void **state)
{
	struct box *b = *state;

	verdict_of(b, "revoked", "revoked", -EKEYREVOKED, b->crt);
	assert_int_equal(access(b->clock, F_OK), -1);
	verdict_of(b, "pi1", "pi1", 0, NULL);
	assert_int_equal(saved_clock(b), now);
	clock_set_fake(now + 100);
	expect_verdict(b, 0, NULL);
	assert_int_equal(saved_clock(b), now + 100);
	clock_set_fake(now + 200);
	install(b, "expired", "expired");
	expect_verdict(b, -EKEYEXPIRED, b->crt);
	assert_int_equal(saved_clock(b), now + 100);
}

/* A Pi that boots in 1970 takes its certificate's start as the earliest "now", and saves it:
 * its own valid certificate is not refused for want of a clock, even beside a CRL issued after
 * the build (every CRL is: the CA re-signs it at each revocation). */
static void test_clock_unset(void **state)
{
	struct box *b = *state;
	X509 *x = fixture_cert(&fx, "pi1");
	struct cert_info info;

	assert_int_equal(cert_info_get(x, &info), 0);
	X509_free(x);
	clock_set_fake(1000);
	assert_true(clock_unset());
	verdict_of(b, "pi1", "pi1", 0, NULL);
	assert_true(clock_floor() >= info.not_before);
	assert_int_equal(saved_clock(b), clock_now());
}

/* What does not chain, or is revoked, stays out at 1970 too. */
static void test_clock_unset_still_refuses(void **state)
{
	static const char *const out[] = {"revoked", "pi9", "selfsigned"};
	struct box *b = *state;

	clock_set_fake(1000);
	for (size_t i = 0; i < sizeof(out) / sizeof(out[0]); i++) {
		restart(b);
		install(b, out[i], out[i]);
		certd_check(&b->c);
		if (b->c.state != CERTD_INVALID)
			fail_msg("%s was taken at 1970", out[i]);
		assert_int_equal(strncmp(b->c.reason, b->crt, strlen(b->crt)), 0);
	}
	assert_int_equal(access(b->clock, F_OK), -1);
}

/* A CRL that has run out (never re-signed for a year) makes every verdict invalid, and the
 * reason names the CRL, which is what the administrator must replace. */
static void test_crl_expired(void **state)
{
	struct box *b = *state;

	verdict_of(b, "pi1", "pi1", 0, NULL);
	clock_set_fake(now + (CA_CRL_DAYS + 1) * 86400LL);
	expect_verdict(b, -IOTSEC_ECRL, fx.crl);
}

/* The clock saved by a valid check keeps an expired certificate out after a reboot in 1970
 * (daemon_setup() raises the floor from it, as here). */
static void test_saved_clock_refuses_expired(void **state)
{
	struct box *b = *state;

	verdict_of(b, "pi1", "pi1", 0, NULL);
	assert_int_equal(saved_clock(b), now);
	clock_reset_floor();
	clock_set_fake(1000);
	assert_int_equal(clock_load(b->clock), 0);
	assert_int_equal(clock_now(), now);
	verdict_of(b, "expired", "expired", -EKEYEXPIRED, b->crt);
}

/* ---- events ---- */

static const char *const cert_events[] = {PROTO_EV_CERT_VALID, PROTO_EV_CERT_INVALID, NULL};

/* The subscriber: a blocking client in a child, writing "subscribed" and then each event as one
 * line to fd. It exits when nothing comes for a while, or when killed. */
static void subscriber_main(const char *sock, int fd)
{
	struct ctl_client *c = NULL;
	json_t *ev = NULL;
	char *text;

	if (ctl_client_connect(sock, &c) < 0 || ctl_client_subscribe(c, cert_events, WAIT_MS) < 0)
		_exit(2);
	if (dprintf(fd, "subscribed\n") < 0)
		_exit(3);
	while (ctl_client_next_event(c, 5 * WAIT_MS, &ev) == 0) {
		if ((text = json_dumps(ev, JSON_COMPACT)) == NULL || dprintf(fd, "%s\n", text) < 0)
			_exit(4);
		free(text);
		json_decref(ev);
	}
	_exit(0);
}

/* The next line from the subscriber, turning the loop while it has none; NULL past WAIT_MS. */
static char *sub_line(struct box *b)
{
	int64_t end = mono_ms() + WAIT_MS;
	char *nl;

	for (;;) {
		ssize_t n;

		if ((nl = memchr(b->line, '\n', b->line_len)) != NULL) {
			size_t len = (size_t)(nl - b->line);
			char *out = strndup(b->line, len);

			memmove(b->line, nl + 1, b->line_len - len - 1);
			b->line_len -= len + 1;
			return out;
		}
		assert_true(b->line_len < sizeof(b->line));
		n = read(b->sub_fd, b->line + b->line_len, sizeof(b->line) - b->line_len);
		if (n > 0) {
			b->line_len += (size_t)n;
			continue;
		}
		assert_true(n < 0 && errno == EAGAIN); /* the child must not have gone */
		if (mono_ms() >= end)
			return NULL;
		assert_true(sd_event_run(b->e, 20 * 1000) >= 0);
	}
}

/* certd's status verb, as its main serves it. */
static int verb_status(json_t *req, json_t **ret, void *userdata)
{
	(void)req;
	*ret = certd_status(userdata);
	return *ret ? 0 : -ENOMEM;
}

static const struct ctl_verb verbs[] = {
    {PROTO_STATUS, 0, verb_status},
    {NULL, 0, NULL},
};

/* certd's control socket on a loop of the case's own, and a subscriber to its verdicts. */
static void serve_and_subscribe(struct box *b)
{
	int fds[2];
	char *line;

	assert_int_equal(sd_event_new(&b->e), 0);
	assert_int_equal(ctl_server_new(b->e, b->sock, verbs, &b->c, &b->c.ctl), 0);
	assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
	b->sub = fork();
	assert_true(b->sub >= 0);
	if (b->sub == 0) {
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() == 1)
			_exit(1);
		close(fds[0]);
		subscriber_main(b->sock, fds[1]);
	}
	close(fds[1]);
	b->sub_fd = fds[0];
	assert_int_equal(fcntl(b->sub_fd, F_SETFL, O_NONBLOCK), 0);
	line = sub_line(b);
	if (line == NULL || strcmp(line, "subscribed") != 0)
		fail_msg("the subscriber did not subscribe (%s)", line ? line : "nothing");
	free(line);
}

/* The next event is name, with reason (NULL: none) and the status fields; returned for more
 * checks. */
static json_t *expect_event(struct box *b, const char *name, const char *reason)
{
	char *line = sub_line(b);
	json_t *ev;

	if (line == NULL)
		fail_msg("no event (want %s)", name);
	ev = json_loads(line, 0, NULL);
	free(line);
	assert_non_null(ev);
	assert_string_equal(json_string_value(json_object_get(ev, "event")), name);
	assert_string_equal(json_string_value(json_object_get(ev, "daemon")), "certd");
	assert_string_equal(json_string_value(json_object_get(ev, "certificate")),
			    strcmp(name, PROTO_EV_CERT_VALID) == 0 ? PROTO_CERT_VALID
								   : PROTO_CERT_INVALID);
	if (reason)
		assert_string_equal(json_string_value(json_object_get(ev, "reason")), reason);
	else
		assert_null(json_object_get(ev, "reason"));
	assert_int_equal(json_integer_value(json_object_get(ev, "checked_at")), clock_now());
	return ev;
}

static const char *reason_of(const char *path, int code)
{
	static char s[PATH_MAX + 256];

	snprintf(s, sizeof(s), "%s: %s", path, iotsec_strerror(code));
	return s;
}

/* Each change of verdict (or of its reason) is published once; the same verdict again is not. */
static void test_events(void **state)
{
	struct box *b = *state;
	json_t *ev;

	serve_and_subscribe(b);
	install(b, "pi1", "pi1");
	certd_check(&b->c);
	ev = expect_event(b, PROTO_EV_CERT_VALID, NULL);
	assert_string_equal(json_string_value(json_object_get(ev, "device")), "pi1");
	json_decref(ev);
	certd_check(&b->c); /* valid again: nothing */

	install(b, "revoked", "revoked");
	certd_check(&b->c);
	json_decref(expect_event(b, PROTO_EV_CERT_INVALID, reason_of(b->crt, -EKEYREVOKED)));
	certd_check(&b->c); /* the same reason: nothing */
	certd_check(&b->c);

	/* Another reason is news, once. */
	install(b, "expired", "expired");
	certd_check(&b->c);
	json_decref(expect_event(b, PROTO_EV_CERT_INVALID, reason_of(b->crt, -EKEYEXPIRED)));
	certd_check(&b->c);

	/* Back to valid: the next event is that one, so nothing came in between. */
	install(b, "pi1", "pi1");
	certd_check(&b->c);
	json_decref(expect_event(b, PROTO_EV_CERT_VALID, NULL));
	certd_check(&b->c);
	install(b, "pi1", NULL);
	certd_check(&b->c);
	json_decref(expect_event(b, PROTO_EV_CERT_INVALID, reason_of(b->key, -ENOENT)));
}

/* The very first verdict is news too, even an invalid one: subscribers start from "unknown". */
static void test_first_event_invalid(void **state)
{
	struct box *b = *state;

	serve_and_subscribe(b);
	install(b, "selfsigned", "selfsigned");
	certd_check(&b->c);
	json_decref(expect_event(b, PROTO_EV_CERT_INVALID, reason_of(b->crt, -IOTSEC_ESELFSIGNED)));
	certd_check(&b->c);
	install(b, "pi2", "pi2");
	certd_check(&b->c);
	json_decref(expect_event(b, PROTO_EV_CERT_VALID, NULL));
}

static int group_setup(void **state)
{
	(void)state;
	if (fixture_home(&fx) < 0 || mkdtemp(root) == NULL)
		return -1;
	log_set_level(LOG_ERR);
	now = (int64_t)time(NULL);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	fixture_remove(&fx);
	nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	clock_set_fake(-1);
	return 0;
}

#define CASE(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    CASE(test_status_unknown),
	    CASE(test_valid),
	    CASE(test_missing_certificate),
	    CASE(test_missing_key),
	    CASE(test_key_mismatch),
	    CASE(test_key_credential),
	    CASE(test_revoked),
	    CASE(test_expired),
	    CASE(test_not_yet_valid),
	    CASE(test_other_home),
	    CASE(test_self_signed),
	    CASE(test_name_differs),
	    CASE(test_bad_files),
	    CASE(test_clock_saved),
	    CASE(test_clock_unset),
	    CASE(test_clock_unset_still_refuses),
	    CASE(test_crl_expired),
	    CASE(test_saved_clock_refuses_expired),
	    CASE(test_events),
	    CASE(test_first_event_invalid),
	    CASE(test_crl_change),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
