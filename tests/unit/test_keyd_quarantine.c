/* keyd's quarantine (quarantine.c, the verb in keyd.c, the state file, controller.c): which lists
 * the verb takes and which it refuses (refused ones change nothing), that the list survives a
 * restart in keyd.state and that a state file from before the quarantine still loads, that a pool
 * leaves the quarantined devices out from its start and as soon as the list changes, and gives a
 * device taken off the list its ring, but not one the rekey itself left out.
 *
 * The device is ctl1 (fixture.h), started with keyd_start() on 127.0.0.1; no other daemon runs
 * (keyd waits for them on its own loop, which the cases do not turn), and the pool is driven by
 * keyshare.h's own calls. */
#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "file.h"
#include "keyd.h"
#include "keyshare.h"
#include "log.h"
#include "proto.h"

#include "ctl_peer.h"
#include "fixture.h"

static struct fixture fx;
static char root[] = "/tmp/iotsec-keyd-quarantine-XXXXXX";
static char run_dir[PATH_MAX], state_dir[PATH_MAX], state_file[PATH_MAX + 64];
static sd_event *e;
static struct iotsec_config cfg;
static struct keyd dev;

static uint16_t free_port(void)
{
	for (int tries = 0; tries < 50; tries++) {
		struct sockaddr_in a = {.sin_family = AF_INET};
		socklen_t len = sizeof(a);
		int u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		int t = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		bool ok;

		assert_int_equal(bind(u, (struct sockaddr *)&a, sizeof(a)), 0);
		assert_int_equal(getsockname(u, (struct sockaddr *)&a, &len), 0);
		ok = ntohs(a.sin_port) > 1 && bind(t, (struct sockaddr *)&a, sizeof(a)) == 0;
		close(u);
		close(t);
		if (ok)
			return ntohs(a.sin_port);
	}
	fail_msg("no free port");
	return 0;
}

static void configure(void)
{
	char *text = NULL, err[CONFIG_ERR_MAX] = "", crt[PATH_MAX + 64], key[PATH_MAX + 64];

	snprintf(crt, sizeof(crt), "%s", fixture_path(&fx, "ctl1", "crt"));
	snprintf(key, sizeof(key), "%s", fixture_path(&fx, "ctl1", "key"));
	assert_true(asprintf(&text,
			     "device = {\n  cert = \"%s\";\n  key = \"%s\";\n  ca = \"%s\";\n"
			     "  crl = \"%s\";\n  state_dir = \"%s\";\n  run_dir = \"%s\";\n};\n"
			     "net = {\n  port = %u;\n  broadcast = \"127.0.0.1\";\n};\n"
			     "keyd = {\n  announce_ms = 600000;\n  collect_ms = 600000;\n};\n",
			     crt, key, fx.ca_crt, fx.crl, state_dir, run_dir,
			     (unsigned)(free_port() - 1)) > 0);
	memset(&cfg, 0, sizeof(cfg));
	if (config_load_string(text, "keyd-test.conf", &cfg, err, sizeof(err)) < 0)
		fail_msg("configuration refused: %s", err);
	free(text);
}

static int start(void)
{
	memset(&dev, 0, sizeof(dev));
	configure();
	return keyd_start(&dev, &cfg, e);
}

static void stop(void)
{
	keyd_stop(&dev);
	config_free(&cfg);
}

static void write_state(const char *text)
{
	assert_int_equal(file_write_atomic(state_file, text, strlen(text), 0600), 0);
}

/* Call keyd's verb with request (consumed): the handler's code, its fields in *fields (may be
 * NULL to drop them). */
static int verb(const char *name, json_t *req, json_t **fields)
{
	json_t *out = NULL;
	int r = -ENOSYS;

	for (const struct ctl_verb *v = keyd_verbs; v->name; v++)
		if (strcmp(v->name, name) == 0)
			r = v->fn(req, &out, &dev);
	json_decref(req);
	if (fields)
		*fields = out;
	else
		json_decref(out);
	return r;
}

static unsigned verb_flags(const char *name)
{
	for (const struct ctl_verb *v = keyd_verbs; v->name; v++)
		if (strcmp(v->name, name) == 0)
			return v->flags;
	fail_msg("no verb %s", name);
	return 0;
}

/* Set the quarantine to the names given (NULL-terminated) through the verb. */
static void quarantine(const char *const *names)
{
	json_t *list = json_array();

	for (; *names; names++)
		json_array_append_new(list, json_string(*names));
	assert_int_equal(verb(PROTO_KEYD_QUARANTINE, json_pack("{s:o}", "names", list), NULL), 0);
}

static bool excluded(const char *name)
{
	const struct keyshare_device *d = keyshare_find(keyd_controller_pool(&dev), name);

	return d && d->excluded;
}

static int setup(void **state)
{
	(void)state;
	unlink(state_file);
	return start() < 0 ? -1 : 0;
}

static int teardown(void **state)
{
	(void)state;
	stop();
	return 0;
}

/* ---- cases ---- */

/* Lists the verb takes: any valid names, at most PROTO_QUARANTINE_MAX, and none at all. */
static void test_parse_good(void **state)
{
	struct keyd_quarantine q = {0};
	char why[128] = "", name[16];
	json_t *list = json_pack("[s, s, s]", "pi3", "kitchen-1", "a");

	(void)state;
	assert_int_equal(keyd_quarantine_parse(list, &q, why, sizeof(why)), 0);
	assert_int_equal(q.n, 3);
	assert_string_equal(q.name[0], "pi3");
	assert_string_equal(q.name[2], "a");
	json_array_clear(list);
	assert_int_equal(keyd_quarantine_parse(list, &q, why, sizeof(why)), 0);
	assert_int_equal(q.n, 0);
	for (int i = 0; i < PROTO_QUARANTINE_MAX; i++) {
		snprintf(name, sizeof(name), "pi%d", i);
		json_array_append_new(list, json_string(name));
	}
	assert_int_equal(keyd_quarantine_parse(list, &q, why, sizeof(why)), 0);
	assert_int_equal(q.n, PROTO_QUARANTINE_MAX);
	json_decref(list);
}

/* Every bad list is refused with a reason, and what was parsed before stays as it was. */
static void test_parse_bad(void **state)
{
	char long_name[CERT_NAME_MAX + 8], why[128], name[16];
	struct keyd_quarantine q = {0}, before;
	json_t *many = json_array(), *first;
	const struct {
		json_t *list;
		int code;
		const char *why;
	} cases[] = {
	    {NULL, -EINVAL, "names must be a list of device names"},
	    {json_object(), -EINVAL, "names must be a list of device names"},
	    {json_string("pi3"), -EINVAL, "names must be a list of device names"},
	    {json_integer(3), -EINVAL, "names must be a list of device names"},
	    {json_pack("[s, i]", "pi3", 4), -EINVAL, "names[1] is not a string"},
	    {json_pack("[n]"), -EINVAL, "names[0] is not a string"},
	    {json_pack("[[s]]", "pi3"), -EINVAL, "names[0] is not a string"},
	    {json_pack("[s]", ""), -EINVAL, "names[0] is not a device name"},
	    {json_pack("[s, s]", "pi3", "-ring"), -EINVAL, "names[1] is not a device name"},
	    {json_pack("[s]", "pi/3"), -EINVAL, "names[0] is not a device name"},
	    {json_pack("[s]", "pi 3"), -EINVAL, "names[0] is not a device name"},
	    {json_pack("[s]", "PI3\n"), -EINVAL, "names[0] is not a device name"},
	    {json_pack("[s#]", "pi3\0x", (size_t)5), -EINVAL, "names[0] is not a device name"},
	    {NULL, -EINVAL, "names[0] is not a device name"}, /* long_name, below */
	    {json_pack("[s, s, s]", "pi3", "pi4", "pi3"), -EINVAL, "names[2] repeats names[0]"},
	    {many, -E2BIG, "65 names, at most 64"},
	};

	(void)state;
	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	for (int i = 0; i <= PROTO_QUARANTINE_MAX; i++) {
		snprintf(name, sizeof(name), "pi%d", i);
		json_array_append_new(many, json_string(name));
	}
	first = json_pack("[s]", "pi7");
	assert_int_equal(keyd_quarantine_parse(first, &q, why, sizeof(why)), 0);
	json_decref(first);
	before = q;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *list = cases[i].list;

		if (i == 13)
			list = json_pack("[s]", long_name);
		why[0] = '\0';
		assert_int_equal(keyd_quarantine_parse(list, &q, why, sizeof(why)), cases[i].code);
		assert_string_equal(why, cases[i].why);
		assert_memory_equal(&q, &before, sizeof(q));
		json_decref(list);
	}
}

/* The verb on a node: kept and saved; a refused list changes neither; status shows it. */
static void test_verb_on_node(void **state)
{
	json_t *fields = NULL, *st, *want;
	char *text = NULL;
	size_t len;

	(void)state;
	/* rekey and quarantine are for root, keyd's own user and keyd.clients (pingd). */
	assert_int_equal(verb_flags(PROTO_KEYD_QUARANTINE), CTL_CONTROLS);
	assert_int_equal(verb_flags(PROTO_KEYD_REKEY), CTL_CONTROLS);
	assert_int_equal(verb_flags(PROTO_KEYD_SEND), CTL_MUTATES);
	assert_int_equal(verb_flags(PROTO_KEYD_INBOX), CTL_MUTATES);
	quarantine((const char *const[]){"pi3", "pi4", NULL});
	assert_true(keyd_quarantined(&dev, "pi3"));
	assert_true(keyd_quarantined(&dev, "pi4"));
	assert_false(keyd_quarantined(&dev, "pi2"));
	assert_int_equal(file_read(state_file, 1 << 16, &text, &len), 0);
	assert_non_null(strstr(text, "\"quarantine\":[\"pi3\",\"pi4\"]"));
	free(text);
	st = keyd_status(&dev);
	want = json_pack("[s, s]", "pi3", "pi4");
	assert_true(json_equal(json_object_get(st, "quarantine"), want));
	json_decref(want);
	json_decref(st);

	/* Refused: not an array, missing, too long an entry, duplicates; nothing changes. */
	assert_int_equal(verb(PROTO_KEYD_QUARANTINE, json_pack("{s:s}", "names", "pi2"), &fields),
			 -EINVAL);
	assert_string_equal(json_string_value(json_object_get(fields, "error")),
			    "names must be a list of device names");
	json_decref(fields);
	assert_int_equal(verb(PROTO_KEYD_QUARANTINE, json_object(), NULL), -EINVAL);
	assert_int_equal(
	    verb(PROTO_KEYD_QUARANTINE, json_pack("{s:[s, s]}", "names", "pi2", "pi2"), NULL),
	    -EINVAL);
	assert_int_equal(
	    verb(PROTO_KEYD_QUARANTINE, json_pack("{s:[s, b]}", "names", "pi2", 1), NULL), -EINVAL);
	assert_int_equal(dev.quarantine.n, 2);
	assert_true(keyd_quarantined(&dev, "pi3"));
	assert_false(keyd_quarantined(&dev, "pi2"));

	/* A node makes no pool, and says which device does. */
	snprintf(dev.controller, sizeof(dev.controller), "hub");
	assert_int_equal(verb(PROTO_KEYD_REKEY, json_object(), &fields), -EOPNOTSUPP);
	assert_string_equal(json_string_value(json_object_get(fields, "error")),
			    "not the controller (the controller is hub)");
	json_decref(fields);

	/* Emptied: kept empty. */
	quarantine((const char *const[]){NULL});
	assert_int_equal(dev.quarantine.n, 0);
	assert_int_equal(file_read(state_file, 1 << 16, &text, &len), 0);
	assert_non_null(strstr(text, "\"quarantine\":[]"));
	free(text);
}

/* Kept across restarts; a state file from before the quarantine loads with none; a damaged
 * quarantine in the file is an error, not an empty list. */
static void test_state_file(void **state)
{
	(void)state;
	quarantine((const char *const[]){"pi3", "pi9", NULL});
	stop();
	assert_int_equal(start(), 0);
	assert_int_equal(dev.quarantine.n, 2);
	assert_true(keyd_quarantined(&dev, "pi9"));
	stop();

	write_state("{\"floor\":7,\"epoch\":0,\"pool\":0,\"indices\":[],\"path\":[]}");
	assert_int_equal(start(), 0);
	assert_int_equal(dev.floor, 7);
	assert_int_equal(dev.quarantine.n, 0);
	stop();

	const char *const damaged[] = {
	    "{\"floor\":7,\"indices\":[],\"path\":[],\"quarantine\":\"pi3\"}",
	    "{\"floor\":7,\"indices\":[],\"path\":[],\"quarantine\":[\"pi3\",\"pi3\"]}",
	    "{\"floor\":7,\"indices\":[],\"path\":[],\"quarantine\":[\"-ring\"]}",
	    "{\"floor\":7,\"indices\":[],\"path\":[],\"quarantine\":[7]}",
	};
	for (size_t i = 0; i < sizeof(damaged) / sizeof(damaged[0]); i++) {
		write_state(damaged[i]);
		assert_true(start() < 0);
		stop();
	}
	unlink(state_file);
	assert_int_equal(start(), 0); /* for the teardown */
}

/* A pool leaves the quarantine out from its start; a change reaches the pool under way at once;
 * a device taken off the list is asked (collecting) or given its ring (ready), but one the rekey
 * left out stays out. */
static void test_pool_enforces(void **state)
{
	struct keyshare *ks;
	struct keyshare_device *d;

	(void)state;
	quarantine((const char *const[]){"pi3", NULL});
	assert_int_equal(keyd_controller_begin(&dev, (const char *const[]){"pi5"}, 1), 0);
	assert_non_null(ks = keyd_controller_pool(&dev));
	assert_true(excluded("pi3"));
	assert_true(excluded("pi5"));
	d = keyshare_device(ks, "pi2");
	assert_int_equal(keyshare_on_seen(ks, d, 0, 1), KEYSHARE_ASK);

	/* Quarantined while the pool is collecting: neither asked nor given anything. */
	quarantine((const char *const[]){"pi3", "pi4", "pi2", NULL});
	assert_true(excluded("pi2"));
	assert_true(excluded("pi4"));
	assert_int_equal(keyshare_on_seen(ks, keyshare_device(ks, "pi4"), 0, 1), KEYSHARE_NOTHING);

	/* Off the list while collecting: asked when next heard. */
	quarantine((const char *const[]){"pi3", "pi2", NULL});
	assert_false(excluded("pi4"));
	assert_int_equal(keyshare_on_seen(ks, keyshare_device(ks, "pi4"), 0, 1), KEYSHARE_ASK);

	/* Ready: off the list, given its ring; on it, nothing. */
	assert_int_equal(keyshare_build(ks, 1), 0);
	keyshare_stored(ks, 0);
	assert_int_equal(keyshare_on_seen(ks, keyshare_device(ks, "pi3"), 0, 1), KEYSHARE_NOTHING);
	assert_true(keyshare_deliver(ks, keyshare_device(ks, "pi3"), 1) < 0);
	quarantine((const char *const[]){"pi2", NULL});
	assert_false(excluded("pi3"));
	assert_true(excluded("pi2"));
	assert_true(
	    excluded("pi5")); /* the rekey left it out: not the quarantine's to bring back */
	assert_int_equal(keyshare_on_seen(ks, keyshare_device(ks, "pi3"), 0, 1), KEYSHARE_DELIVER);

	/* The next pool: whom the quarantine names, not whom the last rekey left out. */
	assert_int_equal(keyd_controller_begin(&dev, NULL, 0), 0);
	assert_true(keyd_controller_pool(&dev) != ks);
	assert_true(excluded("pi2"));
	assert_false(excluded("pi5"));
	assert_false(excluded("pi3"));
	quarantine((const char *const[]){NULL});
	assert_false(excluded("pi2"));
}

/* ---- the group ---- */

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

static int group_setup(void **state)
{
	char path[PATH_MAX + 32];

	(void)state;
	if (fixture_home(&fx) < 0 || mkdtemp(root) == NULL)
		return -1;
	snprintf(run_dir, sizeof(run_dir), "%s/run", root);
	snprintf(state_dir, sizeof(state_dir), "%s/state", root);
	snprintf(state_file, sizeof(state_file), "%s/keyd/%s", state_dir, KEYD_STATE_FILE);
	snprintf(path, sizeof(path), "%s/keyd", state_dir);
	if (mkdir(run_dir, 0755) < 0 || mkdir(state_dir, 0700) < 0 || mkdir(path, 0700) < 0)
		return -1;
	log_set_level(LOG_WARNING);
	return sd_event_new(&e) < 0 ? -1 : 0;
}

static int group_teardown(void **state)
{
	(void)state;
	sd_event_unref(e);
	fixture_remove(&fx);
	nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

#define CASE(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_good), cmocka_unit_test(test_parse_bad),
	    CASE(test_verb_on_node),	       CASE(test_state_file),
	    CASE(test_pool_enforces),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
