/* certd_client: the one policy for following iotsec-certd, against a certd this test plays with a
 * real ctl_server (a "status" verb, and events published with ctl_server_publish()) on the same
 * sd-event loop. Member only while certd runs and its latest word is "valid"; the callback hears
 * each change once and nothing else. Every wait is bounded. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "cert.h"
#include "certd_client.h"
#include "ctl.h"
#include "daemon.h"
#include "file.h"
#include "proto.h"

#include "ctl_peer.h"
#include "fixture.h"

#define WAITING "waiting for iotsec-certd"
#define STOPPED "iotsec-certd stopped answering"
#define VALID	"certificate valid"
#define UNKNOWN "iotsec-certd has not checked the certificate yet"

static struct fixture fx; /* certificates whose serials certd may vouch for */

static int group_setup(void **state)
{
	return scratch_setup(state) == 0 && fixture_home(&fx) == 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
	fixture_remove(&fx);
	return scratch_teardown(state);
}

/* ---- the certd played here ---- */

struct certd {
	struct ctl_server *s;
	json_t *status; /* the fields of its status reply */
	int refuse;	/* < 0: refuse "status" with this */
	unsigned asked; /* "status" requests answered or refused */
};

static int verb_status(json_t *request, json_t **ret_reply, void *userdata)
{
	struct certd *d = userdata;

	(void)request;
	d->asked++;
	if (d->refuse < 0)
		return d->refuse;
	*ret_reply = json_deep_copy(d->status);
	return 0;
}

static const struct ctl_verb certd_verbs[] = {
    {PROTO_STATUS, 0, verb_status},
    {NULL, 0, NULL},
};

/* Start certd with status {"daemon":"certd","certificate":cert, ...more (consumed, may be NULL)}.
 */
static void certd_start(sd_event *e, struct certd *d, const char *cert, json_t *more)
{
	d->status =
	    json_pack("{s:s, s:s, s:s}", "daemon", "certd", "certificate", cert, "device", "pi1");
	if (more) {
		json_object_update(d->status, more);
		json_decref(more);
	}
	assert_true(mkdir(in_dir("certd"), 0755) == 0 || errno == EEXIST);
	assert_int_equal(ctl_server_new(e, in_dir("certd/certd.sock"), certd_verbs, d, &d->s), 0);
}

static void certd_stop(struct certd *d)
{
	ctl_server_free(d->s);
	d->s = NULL;
	json_decref(d->status);
	d->status = NULL;
}

/* Publish an event with {"certificate":cert} and a reason when not NULL. */
static void certd_says(struct certd *d, const char *event, const char *cert, const char *reason)
{
	json_t *data = json_pack("{s:s, s:s}", "daemon", "certd", "certificate", cert);

	if (reason)
		json_object_set_new(data, "reason", json_string(reason));
	assert_int_equal(ctl_server_publish(d->s, event, data), 0);
	json_decref(data);
}

/* ---- what the client said ---- */

/* fn: note each change as {"member":b, "why":s} in the array userdata. */
static void on_change(bool member, const char *why, void *userdata)
{
	json_array_append_new(userdata, json_pack("{s:b, s:s}", "member", member, "why", why));
}

/* Change i was (member, why), and the client says so too when it is the latest. */
static void expect_change(json_t *got, size_t i, bool member, const char *why)
{
	json_t *c = json_array_get(got, i);

	if (c == NULL)
		fail_msg("change %zu: none", i);
	assert_int_equal(json_is_true(json_object_get(c, "member")), member);
	assert_string_equal(json_string_value(json_object_get(c, "why")), why);
}

static void expect_state(const struct certd_client *c, bool member, const char *why)
{
	assert_int_equal(certd_client_member(c), member);
	assert_string_equal(certd_client_why(c), why);
}

/* Turn the loop until there are n changes in all, then a little more: not one more. */
static void run_until_n(sd_event *e, json_t *got, size_t n)
{
	loop_until(e, json_array_size(got) >= n);
	loop_for(e, 30);
	assert_int_equal(json_array_size(got), n);
}

/* ---- cases ---- */

static void test_new_bad_args(void **state)
{
	struct certd_client *c = (struct certd_client *)&c;
	json_t *got = json_array();
	char longdir[200];
	sd_event *e = NULL;

	(void)state;
	memset(longdir, 'd', sizeof(longdir) - 1);
	longdir[sizeof(longdir) - 1] = '\0';
	assert_int_equal(sd_event_new(&e), 0);
	assert_int_equal(certd_client_new(e, scratch_dir(), NULL, got, &c), -EINVAL);
	assert_int_equal(certd_client_new(e, NULL, on_change, got, &c), -EINVAL);
	assert_int_equal(certd_client_new(e, "", on_change, got, &c), -EINVAL);
	assert_int_equal(certd_client_new(e, longdir, on_change, got, &c), -ENAMETOOLONG);
	assert_int_equal(certd_client_new(NULL, scratch_dir(), on_change, got, &c), -EINVAL);
	assert_ptr_equal(c, (struct certd_client *)&c);
	assert_int_equal(sd_event_run(e, 0), 0);
	assert_int_equal(json_array_size(got), 0);
	certd_client_free(NULL);
	json_decref(got);
	sd_event_unref(e);
}

/* Before certd has said anything the device is out, and the callback is not called: nothing
 * changed. certd never there (no socket, or a socket nobody listens on): it stays so. */
static void test_certd_never_there(void **state)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct certd_client *c = NULL;
	json_t *got = json_array();
	sd_event *e = NULL;
	int stale;

	(void)state;
	assert_int_equal(sd_event_new(&e), 0);
	assert_int_equal(certd_client_new(e, scratch_dir(), on_change, got, &c), 0);
	expect_state(c, false, WAITING);
	loop_for(e, CERTD_CLIENT_RETRY_MS + CERTD_CLIENT_RETRY_MS / 2);
	expect_state(c, false, WAITING);
	/* What a crashed certd leaves behind. */
	stale = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(mkdir(in_dir("certd"), 0755) == 0 || errno == EEXIST);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", in_dir("certd/certd.sock"));
	assert_int_equal(bind(stale, (struct sockaddr *)&sa, sizeof(sa)), 0);
	loop_for(e, CERTD_CLIENT_RETRY_MS + CERTD_CLIENT_RETRY_MS / 2);
	expect_state(c, false, WAITING);
	assert_int_equal(json_array_size(got), 0);
	certd_client_free(c);
	close(stale);
	unlink(sa.sun_path);
	json_decref(got);
	sd_event_unref(e);
}

/* A status snapshot "valid": a member, said once; certd saying it again changes nothing, and
 * events of other names are not listened to. */
static void test_valid(void **state)
{
	struct certd d = {0};
	struct certd_client *c = NULL;
	json_t *got = json_array();
	sd_event *e = NULL;

	(void)state;
	assert_int_equal(sd_event_new(&e), 0);
	certd_start(e, &d, PROTO_CERT_VALID, NULL);
	assert_int_equal(certd_client_new(e, scratch_dir(), on_change, got, &c), 0);
	/* Nothing from inside certd_client_new(). */
	assert_int_equal(json_array_size(got), 0);
	expect_state(c, false, WAITING);
	run_until_n(e, got, 1);
	expect_change(got, 0, true, VALID);
	expect_state(c, true, VALID);
	assert_int_equal(d.asked, 1);
	certd_says(&d, PROTO_EV_CERT_VALID, PROTO_CERT_VALID, NULL);
	certd_says(&d, PROTO_EV_CONTROLLER, PROTO_CERT_INVALID, "not ours to hear");
	certd_says(&d, "certificate-expiring", PROTO_CERT_INVALID, "not ours either");
	loop_for(e, 50);
	assert_int_equal(json_array_size(got), 1);
	expect_state(c, true, VALID);
	certd_client_free(c);
	certd_stop(&d);
	json_decref(got);
	sd_event_unref(e);
}

/* certificate-invalid with a reason: out, and why carries it; each new reason is a change, the
 * same one again is not; certificate-valid brings the device back. */
static void test_invalid_event(void **state)
{
	struct certd d = {0};
	struct certd_client *c = NULL;
	json_t *got = json_array();
	sd_event *e = NULL;

	(void)state;
	assert_int_equal(sd_event_new(&e), 0);
	certd_start(e, &d, PROTO_CERT_VALID, NULL);
	assert_int_equal(certd_client_new(e, scratch_dir(), on_change, got, &c), 0);
	run_until_n(e, got, 1);
	certd_says(&d, PROTO_EV_CERT_INVALID, PROTO_CERT_INVALID, "/x.crt: revoked");
	run_until_n(e, got, 2);
	expect_change(got, 1, false, "certificate invalid: /x.crt: revoked");
	expect_state(c, false, "certificate invalid: /x.crt: revoked");
	certd_says(&d, PROTO_EV_CERT_INVALID, PROTO_CERT_INVALID, "/x.crt: revoked");
	loop_for(e, 30);
	assert_int_equal(json_array_size(got), 2);
	certd_says(&d, PROTO_EV_CERT_INVALID, PROTO_CERT_INVALID, "/x.key: does not match");
	run_until_n(e, got, 3);
	expect_change(got, 2, false, "certificate invalid: /x.key: does not match");
	certd_says(&d, PROTO_EV_CERT_INVALID, PROTO_CERT_INVALID, NULL);
	run_until_n(e, got, 4);
	expect_change(got, 3, false, "certificate invalid");
	certd_says(&d, PROTO_EV_CERT_VALID, PROTO_CERT_VALID, NULL);
	run_until_n(e, got, 5);
	expect_change(got, 4, true, VALID);
	expect_state(c, true, VALID);
	certd_client_free(c);
	certd_stop(&d);
	json_decref(got);
	sd_event_unref(e);
}

/* "unknown" (certd has not checked yet) keeps the device out, with its own reason; so does a
 * status reply that starts out invalid. */
static void test_unknown_and_invalid_status(void **state)
{
	struct certd d = {0};
	struct certd_client *c = NULL;
	json_t *got = json_array();
	sd_event *e = NULL;

	(void)state;
	assert_int_equal(sd_event_new(&e), 0);
	certd_start(e, &d, "unknown", NULL);
	assert_int_equal(certd_client_new(e, scratch_dir(), on_change, got, &c), 0);
	run_until_n(e, got, 1);
	expect_change(got, 0, false, UNKNOWN);
	expect_state(c, false, UNKNOWN);
	certd_says(&d, PROTO_EV_CERT_VALID, PROTO_CERT_VALID, NULL);
	run_until_n(e, got, 2);
	expect_change(got, 1, true, VALID);
	certd_client_free(c);
	certd_stop(&d);

	json_array_clear(got);
	certd_start(e, &d, PROTO_CERT_INVALID, json_pack("{s:s}", "reason", "expired"));
	assert_int_equal(certd_client_new(e, scratch_dir(), on_change, got, &c), 0);
	run_until_n(e, got, 1);
	expect_change(got, 0, false, "certificate invalid: expired");
	certd_client_free(c);
	certd_stop(&d);
	json_decref(got);
	sd_event_unref(e);
}

/* certd going away takes the device out ("stopped answering"); certd coming back valid brings it
 * back; coming back invalid keeps it out with the new reason. */
static void test_certd_stops_and_returns(void **state)
{
	struct certd d = {0};
	struct certd_client *c = NULL;
	json_t *got = json_array();
	sd_event *e = NULL;

	(void)state;
	assert_int_equal(sd_event_new(&e), 0);
	certd_start(e, &d, PROTO_CERT_VALID, NULL);
	assert_int_equal(certd_client_new(e, scratch_dir(), on_change, got, &c), 0);
	run_until_n(e, got, 1);
	expect_state(c, true, VALID);
	certd_stop(&d);
	run_until_n(e, got, 2);
	expect_change(got, 1, false, STOPPED);
	expect_state(c, false, STOPPED);
	/* Away for a few attempts: no news is no change. */
	loop_for(e, CERTD_CLIENT_RETRY_MS + CERTD_CLIENT_RETRY_MS / 2);
	assert_int_equal(json_array_size(got), 2);
	certd_start(e, &d, PROTO_CERT_VALID, NULL);
	run_until_n(e, got, 3);
	expect_change(got, 2, true, VALID);
	expect_state(c, true, VALID);

	certd_stop(&d);
	run_until_n(e, got, 4);
	expect_change(got, 3, false, STOPPED);
	certd_start(e, &d, PROTO_CERT_INVALID, json_pack("{s:s}", "reason", "revoked"));
	run_until_n(e, got, 5);
	expect_change(got, 4, false, "certificate invalid: revoked");
	certd_client_free(c);
	/* Freed: certd going away is nobody's news. */
	certd_stop(&d);
	loop_for(e, 30);
	assert_int_equal(json_array_size(got), 5);
	json_decref(got);
	sd_event_unref(e);
}

/* What certd should never say changes nothing or keeps the device out: a refused status, a
 * status without a verdict or with one of another type, an unknown verdict, a reason of the
 * wrong type or far too long. */
static void test_bad_words(void **state)
{
	char reason[600], why[sizeof(reason) + 32];
	struct certd d = {0};
	struct certd_client *c = NULL;
	json_t *got = json_array(), *data;
	sd_event *e = NULL;

	(void)state;
	assert_int_equal(sd_event_new(&e), 0);
	/* status refused: no snapshot, but the subscription holds. */
	certd_start(e, &d, PROTO_CERT_VALID, NULL);
	d.refuse = -EACCES;
	assert_int_equal(certd_client_new(e, scratch_dir(), on_change, got, &c), 0);
	loop_until(e, d.asked == 1);
	loop_for(e, 50);
	assert_int_equal(json_array_size(got), 0);
	expect_state(c, false, WAITING);
	/* Events without a verdict, or with a verdict that is not a string. */
	data = json_pack("{s:s}", "daemon", "certd");
	assert_int_equal(ctl_server_publish(d.s, PROTO_EV_CERT_VALID, data), 0);
	json_decref(data);
	data = json_pack("{s:b}", "certificate", 1);
	assert_int_equal(ctl_server_publish(d.s, PROTO_EV_CERT_VALID, data), 0);
	json_decref(data);
	assert_int_equal(ctl_server_publish(d.s, PROTO_EV_CERT_VALID, NULL), 0);
	loop_for(e, 50);
	assert_int_equal(json_array_size(got), 0);
	expect_state(c, false, WAITING);
	/* A verdict nobody knows, in any case: out. */
	certd_says(&d, PROTO_EV_CERT_VALID, "VALID", NULL);
	run_until_n(e, got, 1);
	expect_change(got, 0, false, UNKNOWN);
	certd_says(&d, PROTO_EV_CERT_VALID, "", NULL);
	certd_says(&d, PROTO_EV_CERT_VALID, "valid ", NULL);
	loop_for(e, 30);
	assert_int_equal(json_array_size(got), 1);
	/* A reason that is not a string is no reason. */
	data = json_pack("{s:s, s:i}", "certificate", PROTO_CERT_INVALID, "reason", 5);
	assert_int_equal(ctl_server_publish(d.s, PROTO_EV_CERT_INVALID, data), 0);
	json_decref(data);
	run_until_n(e, got, 2);
	expect_change(got, 1, false, "certificate invalid");
	/* A reason far too long is cut, not overrun. */
	memset(reason, 'r', sizeof(reason) - 1);
	reason[sizeof(reason) - 1] = '\0';
	certd_says(&d, PROTO_EV_CERT_INVALID, PROTO_CERT_INVALID, reason);
	run_until_n(e, got, 3);
	snprintf(why, sizeof(why), "certificate invalid: %s", reason);
	why[255] = '\0';
	expect_change(got, 2, false, why);
	assert_int_equal(strlen(certd_client_why(c)), 255);
	certd_client_free(c);
	certd_stop(&d);

	/* A status without a verdict, or with a number for one: still waiting. */
	json_array_clear(got);
	certd_start(e, &d, PROTO_CERT_VALID, NULL);
	json_object_del(d.status, "certificate");
	assert_int_equal(certd_client_new(e, scratch_dir(), on_change, got, &c), 0);
	loop_until(e, d.asked == 1);
	loop_for(e, 50);
	assert_int_equal(json_array_size(got), 0);
	certd_client_free(c);
	json_object_set_new(d.status, "certificate", json_integer(1));
	assert_int_equal(certd_client_new(e, scratch_dir(), on_change, got, &c), 0);
	loop_until(e, d.asked == 2);
	loop_for(e, 50);
	assert_int_equal(json_array_size(got), 0);
	expect_state(c, false, WAITING);
	certd_client_free(c);
	certd_stop(&d);
	json_decref(got);
	sd_event_unref(e);
}

/* The serial of a fixture device's certificate, and the certificate copied to DIR/device.crt. */
static const char *install_cert(const char *name, char serial[64])
{
	struct cert_info info;
	char *pem = NULL;
	size_t len;
	X509 *x = fixture_cert(&fx, name);

	assert_int_equal(cert_info_get(x, &info), 0);
	snprintf(serial, 64, "%s", info.serial);
	X509_free(x);
	assert_int_equal(file_read(fixture_path(&fx, name, "crt"), 1 << 20, &pem, &len), 0);
	assert_int_equal(file_write_atomic(in_dir("device.crt"), pem, len, 0644), 0);
	free(pem);
	return in_dir("device.crt");
}

/* A daemon that signs: certd vouching for its certificate keeps it in; for another one, which is
 * on disk, ends the loop with DAEMON_EXIT_RESTART; for one not on disk (yet), keeps it out and
 * looks at the disk again until the new one is there, with no further word from certd. */
static void test_replaced_certificate(void **state)
{
	struct certd d = {0};
	struct certd_client *c = NULL;
	json_t *got = json_array(), *data;
	char ours[64], theirs[64];
	sd_event *e = NULL;
	int code = -1;

	(void)state;
	assert_int_equal(sd_event_new(&e), 0);
	install_cert("pi2", theirs);
	certd_start(e, &d, PROTO_CERT_VALID, NULL);
	assert_int_equal(certd_client_new(e, scratch_dir(), on_change, got, &c), 0);
	assert_int_equal(certd_client_signs_with(c, install_cert("pi1", ours), ours), 0);
	json_object_set_new(d.status, "serial", json_string(ours));
	run_until_n(e, got, 1);
	expect_state(c, true, VALID);

	/* certd vouches for pi2's certificate while pi1's is still on disk. */
	data = json_pack("{s:s, s:s, s:s}", "daemon", "certd", "certificate", PROTO_CERT_VALID,
			 "serial", theirs);
	assert_int_equal(ctl_server_publish(d.s, PROTO_EV_CERT_VALID, data), 0);
	json_decref(data);
	run_until_n(e, got, 2);
	expect_state(c, false, "iotsec-certd has not checked our certificate yet");
	loop_for(e, CERTD_CLIENT_RETRY_MS + 200);
	assert_int_equal(sd_event_get_state(e), SD_EVENT_INITIAL);

	/* Then it is there, with no new word from certd: the daemon starts again to take it. */
	install_cert("pi2", theirs);
	loop_until(e, sd_event_get_state(e) == SD_EVENT_FINISHED);
	assert_int_equal(sd_event_get_exit_code(e, &code), 0);
	assert_int_equal(code, DAEMON_EXIT_RESTART);
	expect_state(c, false, "certificate replaced");
	certd_client_free(c);
	certd_stop(&d);
	json_decref(got);
	sd_event_unref(e);
}

/* Each case starts without a certd, whatever a failed case before it left behind. */
static int no_certd(void **state)
{
	(void)state;
	unlink(in_dir("certd/certd.sock"));
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_new_bad_args, no_certd),
	    cmocka_unit_test_setup(test_certd_never_there, no_certd),
	    cmocka_unit_test_setup(test_valid, no_certd),
	    cmocka_unit_test_setup(test_invalid_event, no_certd),
	    cmocka_unit_test_setup(test_unknown_and_invalid_status, no_certd),
	    cmocka_unit_test_setup(test_certd_stops_and_returns, no_certd),
	    cmocka_unit_test_setup(test_bad_words, no_certd),
	    cmocka_unit_test_setup(test_replaced_certificate, no_certd),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
