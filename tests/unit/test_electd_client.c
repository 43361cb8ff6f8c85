/* electd_client: who the controller is, against an electd this test plays with a real ctl_server
 * (a "status" verb, and controller-changed events) on the same sd-event loop. No controller while
 * electd is gone or has not spoken; the callback hears each change once and nothing else; a name
 * no device can have is no controller. Every wait is bounded. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "ctl.h"
#include "electd_client.h"
#include "proto.h"

#include "ctl_peer.h"

struct electd {
	struct ctl_server *s;
	char controller[128];
};

static int verb_status(json_t *request, json_t **ret_reply, void *userdata)
{
	struct electd *d = userdata;

	(void)request;
	*ret_reply = json_pack("{s:s, s:s}", "daemon", "electd", "controller", d->controller);
	return *ret_reply ? 0 : -ENOMEM;
}

static const struct ctl_verb electd_verbs[] = {
    {PROTO_STATUS, 0, verb_status},
    {NULL, 0, NULL},
};

static void electd_start(sd_event *e, struct electd *d, const char *controller)
{
	snprintf(d->controller, sizeof(d->controller), "%s", controller);
	assert_true(mkdir(in_dir("electd"), 0755) == 0 || errno == EEXIST);
	assert_int_equal(ctl_server_new(e, in_dir("electd/electd.sock"), electd_verbs, d, &d->s),
			 0);
}

static void electd_says(struct electd *d, const char *event, json_t *data)
{
	assert_int_equal(ctl_server_publish(d->s, event, data), 0);
	json_decref(data);
}

/* fn: each change appended to the array userdata. */
static void on_change(const char *controller, void *userdata)
{
	json_array_append_new(userdata, json_string(controller));
}

/* n changes in all, then a little more turning: not one more; the last was `last`. */
static void expect_changes(sd_event *e, json_t *got, size_t n, const char *last)
{
	loop_until(e, json_array_size(got) >= n);
	loop_for(e, 30);
	assert_int_equal(json_array_size(got), n);
	if (n > 0)
		assert_string_equal(json_string_value(json_array_get(got, n - 1)), last);
}

static void test_new_bad_args(void **state)
{
	struct electd_client *c = (struct electd_client *)&c;
	json_t *got = json_array();
	sd_event *e = NULL;

	(void)state;
	assert_int_equal(sd_event_new(&e), 0);
	assert_int_equal(electd_client_new(e, scratch_dir(), NULL, got, &c), -EINVAL);
	assert_int_equal(electd_client_new(e, NULL, on_change, got, &c), -EINVAL);
	assert_int_equal(electd_client_new(e, "", on_change, got, &c), -EINVAL);
	assert_ptr_equal(c, (struct electd_client *)&c);
	electd_client_free(NULL);
	json_decref(got);
	sd_event_unref(e);
}

/* Nobody there: no controller, and nothing said. */
static void test_electd_never_there(void **state)
{
	struct electd_client *c = NULL;
	json_t *got = json_array();
	sd_event *e = NULL;

	(void)state;
	assert_int_equal(sd_event_new(&e), 0);
	assert_int_equal(electd_client_new(e, scratch_dir(), on_change, got, &c), 0);
	loop_for(e, ELECTD_CLIENT_RETRY_MS + ELECTD_CLIENT_RETRY_MS / 2);
	assert_string_equal(electd_client_controller(c), "");
	assert_int_equal(json_array_size(got), 0);
	electd_client_free(c);
	json_decref(got);
	sd_event_unref(e);
}

/* The status snapshot names hub; an event moves it to pi2, said once though repeated; "" is
 * none; electd stopping is none too, and its return is heard. */
static void test_follows_changes(void **state)
{
	struct electd_client *c = NULL;
	struct electd d = {0};
	json_t *got = json_array();
	sd_event *e = NULL;

	(void)state;
	assert_int_equal(sd_event_new(&e), 0);
	electd_start(e, &d, "hub");
	assert_int_equal(electd_client_new(e, scratch_dir(), on_change, got, &c), 0);
	expect_changes(e, got, 1, "hub");
	assert_string_equal(electd_client_controller(c), "hub");

	snprintf(d.controller, sizeof(d.controller), "pi2");
	electd_says(&d, PROTO_EV_CONTROLLER, json_pack("{s:s}", "controller", "pi2"));
	electd_says(&d, PROTO_EV_CONTROLLER, json_pack("{s:s}", "controller", "pi2"));
	expect_changes(e, got, 2, "pi2");
	/* An event without a controller says nothing about it. */
	electd_says(&d, PROTO_EV_CONTROLLER, json_pack("{s:s}", "state", "node"));
	electd_says(&d, PROTO_EV_CONTROLLER, json_pack("{s:i}", "controller", 7));
	expect_changes(e, got, 2, "pi2");
	electd_says(&d, PROTO_EV_CONTROLLER, json_pack("{s:s}", "controller", ""));
	expect_changes(e, got, 3, "");

	snprintf(d.controller, sizeof(d.controller), "hub");
	electd_says(&d, PROTO_EV_CONTROLLER, json_pack("{s:s}", "controller", "hub"));
	expect_changes(e, got, 4, "hub");
	ctl_server_free(d.s);
	d.s = NULL;
	expect_changes(e, got, 5, "");
	assert_string_equal(electd_client_controller(c), "");
	electd_start(e, &d, "pi3");
	expect_changes(e, got, 6, "pi3");

	electd_client_free(c);
	ctl_server_free(d.s);
	json_decref(got);
	sd_event_unref(e);
}

/* A name longer than any device's, or one no certificate can carry, is no controller: cut short,
 * it could name another device. */
static void test_bad_names(void **state)
{
	static const char *const bad[] = {
	    "-ring",
	    "a b",
	    "pi/2",
	    "0123456789012345678901234567890123456789012345678901234567890123",
	};
	struct electd_client *c = NULL;
	struct electd d = {0};
	json_t *got = json_array();
	sd_event *e = NULL;

	(void)state;
	assert_int_equal(sd_event_new(&e), 0);
	electd_start(e, &d, "hub");
	assert_int_equal(electd_client_new(e, scratch_dir(), on_change, got, &c), 0);
	expect_changes(e, got, 1, "hub");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		electd_says(&d, PROTO_EV_CONTROLLER, json_pack("{s:s}", "controller", bad[i]));
		expect_changes(e, got, 2, "");
		assert_string_equal(electd_client_controller(c), "");
	}
	electd_client_free(c);
	ctl_server_free(d.s);
	json_decref(got);
	sd_event_unref(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_new_bad_args),
	    cmocka_unit_test(test_electd_never_there),
	    cmocka_unit_test(test_follows_changes),
	    cmocka_unit_test(test_bad_names),
	};

	return cmocka_run_group_tests(tests, scratch_setup, scratch_teardown);
}
