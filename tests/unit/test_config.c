/* config: the table-driven loader, with a small table of its own and with iotsec's real one. */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"

/* The example configuration, relative to the working directory (the repository's root under
 * make check); a build may point it elsewhere. */
#ifndef TEST_EXAMPLE_CONF
#define TEST_EXAMPLE_CONF "etc/iotsec.conf"
#endif

struct small {
	int n;
	int flag;
	char *s;
	int wide;
	int deep;
};

static const struct config_def small_table[] = {
    {"a.n", CONFIG_INT, 1, 10, 5, NULL, offsetof(struct small, n), "a number", NULL},
    {"a.flag", CONFIG_BOOL, 0, 1, 0, NULL, offsetof(struct small, flag), "a switch", NULL},
    {"a.s", CONFIG_STRING, 2, 32, 0, "dflt", offsetof(struct small, s), "a string", NULL},
    {"a.wide", CONFIG_INT, INT_MIN, INT_MAX, 0, NULL, offsetof(struct small, wide), "any int",
     NULL},
    {"b.c.deep", CONFIG_INT, -100, 100, 7, NULL, offsetof(struct small, deep), "nested", NULL},
};
#define SMALL_LEN (sizeof(small_table) / sizeof(small_table[0]))

static char dir[] = "/tmp/iotsec-test-config-XXXXXX";

static int parse_small(const char *text, struct small *out, char *err)
{
	return config_parse(text, "t.conf", small_table, SMALL_LEN, out, err, CONFIG_ERR_MAX);
}

static const char *write_file(const char *name, const char *data, size_t len)
{
	static char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
	return path;
}

/* ---- good input ---- */

static void test_full_file(void **state)
{
	struct small v;
	char err[CONFIG_ERR_MAX];

	(void)state;
	assert_int_equal(parse_small("a = {\n  n = 3;\n  flag = true;\n  s = \"hello\";\n"
				     "  wide = -7;\n};\nb = { c = { deep = -100; }; };\n",
				     &v, err),
			 0);
	assert_int_equal(v.n, 3);
	assert_int_equal(v.flag, 1);
	assert_string_equal(v.s, "hello");
	assert_int_equal(v.wide, -7);
	assert_int_equal(v.deep, -100);
	config_release(small_table, SMALL_LEN, &v);
	assert_null(v.s);
}

static void test_empty_file_takes_defaults(void **state)
{
	struct small v;
	char err[CONFIG_ERR_MAX];

	(void)state;
	assert_int_equal(parse_small("", &v, err), 0);
	assert_int_equal(v.n, 5);
	assert_int_equal(v.flag, 0);
	assert_string_equal(v.s, "dflt");
	assert_ptr_not_equal(v.s, small_table[2].def_str); /* ours to free */
	assert_int_equal(v.wide, 0);
	assert_int_equal(v.deep, 7);
	config_release(small_table, SMALL_LEN, &v);
}

static void test_comments_and_other_spellings(void **state)
{
	struct small v;
	char err[CONFIG_ERR_MAX];

	(void)state;
	/* What looks like an oversized a.n inside a comment or a string must not count. */
	assert_int_equal(parse_small("# n = 99999999999\n// a = { n = 99999999999; };\n"
				     "/* a = {\n n = 99999999999; }; */\n"
				     "a : { s = \"n = 99999999999\", n : 0xA, wide = 2L,\n"
				     "  flag = FALSE };  # trailing\n",
				     &v, err),
			 0);
	assert_int_equal(v.n, 10);
	assert_int_equal(v.flag, 0);
	assert_string_equal(v.s, "n = 99999999999");
	assert_int_equal(v.wide, 2);
	config_release(small_table, SMALL_LEN, &v);
}

static void test_range_ends_accepted(void **state)
{
	struct small v;
	char err[CONFIG_ERR_MAX];

	(void)state;
	assert_int_equal(parse_small("a = { n = 1; wide = -2147483648; s = \"ab\"; };\n"
				     "b = { c = { deep = 100; }; };",
				     &v, err),
			 0);
	assert_int_equal(v.n, 1);
	assert_int_equal(v.wide, INT_MIN);
	assert_int_equal(v.deep, 100);
	config_release(small_table, SMALL_LEN, &v);
	assert_int_equal(parse_small("a = { n = 10; wide = 2147483647; "
				     "s = \"0123456789abcdef0123456789abcdef\"; };",
				     &v, err),
			 0);
	assert_int_equal(v.n, 10);
	assert_int_equal(v.wide, INT_MAX);
	assert_int_equal(strlen(v.s), 32);
	config_release(small_table, SMALL_LEN, &v);
}

static void check_defaults(const struct iotsec_config *c)
{
	assert_string_equal(c->device.name, "");
	assert_string_equal(c->device.cert, "/etc/iotsec/device.crt");
	assert_string_equal(c->device.key, "/etc/iotsec/device.key");
	assert_string_equal(c->device.ca, "/etc/iotsec/ca.crt");
	assert_string_equal(c->device.crl, "/etc/iotsec/crl.pem");
	assert_string_equal(c->device.state_dir, "/var/lib/iotsec");
	assert_string_equal(c->device.run_dir, "/run/iotsec");
	assert_int_equal(c->certd.interval, 300);
	assert_int_equal(c->net.port, 7450);
	assert_int_equal(c->net.delta_t, 30);
	assert_string_equal(c->net.broadcast, "255.255.255.255");
	assert_int_equal(c->electd.tries, 3);
	assert_int_equal(c->electd.try_ms, 1000);
	assert_int_equal(c->electd.heartbeat_ms, 5000);
	assert_int_equal(c->electd.timeout_ms, 15000);
	assert_int_equal(c->electd.hold_ms, 60000);
	assert_int_equal(c->keyd.ring_size, 75);
	assert_int_equal(c->keyd.pool_size, 0);
	assert_int_equal(c->keyd.target_permille, 900);
	assert_int_equal(c->keyd.collect_ms, 3000);
	assert_string_equal(c->dictd.path, "/var/lib/iotsec/dictd/keys.dict");
	assert_string_equal(c->dictd.key_file, "/etc/credstore/iotsec-dict.key");
}

static void test_real_table_defaults(void **state)
{
	struct iotsec_config c;
	char err[CONFIG_ERR_MAX];

	(void)state;
	assert_int_equal(config_load_string("", "empty", &c, err, sizeof(err)), 0);
	check_defaults(&c);
	config_free(&c);
	assert_null(c.device.cert);
	assert_null(c.dictd.key_file);
	config_free(&c); /* twice, and NULL: nothing happens */
	config_free(NULL);
}

static void test_example_file_lists_every_default(void **state)
{
	char path[PATH_MAX], err[CONFIG_ERR_MAX];
	struct iotsec_config c;

	(void)state;
	/* Run from a subdirectory of the repository, look a few levels up. */
	for (int up = 0; up < 4; up++) {
		snprintf(path, sizeof(path), "%.*s%s", TEST_EXAMPLE_CONF[0] == '/' ? 0 : 3 * up,
			 "../../../", TEST_EXAMPLE_CONF);
		if (access(path, R_OK) == 0)
			break;
	}
	if (config_load(path, &c, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	check_defaults(&c);
	config_free(&c);
}

static void test_load_from_file(void **state)
{
	static const char text[] = "device = {\n  name = \"pi1\";\n  cert = \"/d/pi1.crt\";\n"
				   "  run_dir = \"/d/run\";\n};\ncertd = { interval = 2; };\n"
				   "net = { port = 1; broadcast = \"10.0.0.255\"; };\n"
				   "dictd = { path = \"/d/keys.dict\"; };\n";
	struct iotsec_config c;
	char err[CONFIG_ERR_MAX];

	(void)state;
	assert_int_equal(
	    config_load(write_file("good.conf", text, strlen(text)), &c, err, sizeof(err)), 0);
	assert_string_equal(c.device.name, "pi1");
	assert_string_equal(c.device.cert, "/d/pi1.crt");
	assert_string_equal(c.device.key, "/etc/iotsec/device.key");
	assert_string_equal(c.device.run_dir, "/d/run");
	assert_int_equal(c.certd.interval, 2);
	assert_int_equal(c.net.port, 1);
	assert_int_equal(c.net.delta_t, 30);
	assert_string_equal(c.net.broadcast, "10.0.0.255");
	assert_string_equal(c.dictd.path, "/d/keys.dict");
	config_free(&c);
}

/* ---- bad input: every case checks the exact message and that dst did not change ---- */

struct bad {
	const char *name, *text, *err;
};

/* With the small table, named "t.conf". */
static const struct bad small_bad[] = {
    {"unknown key", "a = { n = 3;\n bogus = 1; };", "t.conf:2: setting 'a.bogus': unknown setting"},
    {"unknown group", "a = { n = 3; };\nzz = { n = 1; };", "t.conf:2: setting 'zz': unknown group"},
    {"unknown key at the top", "\n\nn = 3;", "t.conf:3: setting 'n': unknown setting"},
    {"unknown nested group", "b = { d = { deep = 1; }; };",
     "t.conf:1: setting 'b.d': unknown group"},
    {"value where a group is", "b = \"x\";", "t.conf:1: setting 'b': expected a group"},
    {"group where an int is", "a = { n = { }; };", "t.conf:1: setting 'a.n': expected an integer"},
    {"int where a string is", "a = { s = 12; };", "t.conf:1: setting 'a.s': expected a string"},
    {"string where an int is", "a = { n = \"3\"; };",
     "t.conf:1: setting 'a.n': expected an integer"},
    {"float where an int is", "a = { n = 3.0; };", "t.conf:1: setting 'a.n': expected an integer"},
    {"exponent where an int is", "a = { n = 1e1; };",
     "t.conf:1: setting 'a.n': expected an integer"},
    {"list where an int is", "a = { n = ( 3 ); };", "t.conf:1: setting 'a.n': expected an integer"},
    {"array where an int is", "a = { n = [ 3 ]; };",
     "t.conf:1: setting 'a.n': expected an integer"},
    {"bool where an int is", "a = { n = true; };", "t.conf:1: setting 'a.n': expected an integer"},
    {"int where a bool is", "a = { flag = 1; };",
     "t.conf:1: setting 'a.flag': expected true or false"},
    {"string where a bool is", "a = {\n flag = \"yes\"; };",
     "t.conf:2: setting 'a.flag': expected true or false"},
    {"below the range", "a = { n = 0; };", "t.conf:1: setting 'a.n': 0 is out of range 1..10"},
    {"above the range", "a = { n = 11; };", "t.conf:1: setting 'a.n': 11 is out of range 1..10"},
    {"below a negative range", "b = { c = { deep = -101; }; };",
     "t.conf:1: setting 'b.c.deep': -101 is out of range -100..100"},
    {"int64 above the range", "a = { n = 11L; };",
     "t.conf:1: setting 'a.n': 11 is out of range 1..10"},
    {"beyond int, 64-bit", "a = { wide = 5000000000L; };",
     "t.conf:1: setting 'a.wide': 5000000000L is out of range -2147483648..2147483647"},
    {"beyond int, just", "a = { wide = 2147483648; };",
     "t.conf:1: setting 'a.wide': 2147483648 is out of range -2147483648..2147483647"},
    {"beyond int, negative", "a = { wide = -2147483649; };",
     "t.conf:1: setting 'a.wide': -2147483649 is out of range -2147483648..2147483647"},
    /* libconfig 1.5 alone would read these as 5, in range. */
    {"truncated by libconfig", "a = { n = 4294967301; };",
     "t.conf:1: setting 'a.n': 4294967301 is out of range 1..10"},
    {"truncated hex", "a = { n = 0x100000005; };",
     "t.conf:1: setting 'a.n': 0x100000005 is out of range 1..10"},
    {"huge literal", "a = { n = 123456789012345678901234567890; };",
     "t.conf:1: setting 'a.n': 12345678901234567890... is out of range 1..10"},
    {"oversized after a comment brace", "a = { flag = true; /* } */ n = 99999999999; };",
     "t.conf:1: setting 'a.n': 99999999999 is out of range 1..10"},
    {"oversized in a nested group", "a = { n = 3; }; b = { c = { deep = 99999999999; }; };",
     "t.conf:1: setting 'b.c.deep': 99999999999 is out of range -100..100"},
    {"string too long", "a = { s = \"0123456789abcdef0123456789abcdefX\"; };",
     "t.conf:1: setting 'a.s': string longer than 32"},
    {"string too short", "a = { s = \"x\"; };", "t.conf:1: setting 'a.s': string shorter than 2"},
    {"empty string", "a = { s = \"\"; };", "t.conf:1: setting 'a.s': must not be empty"},
    {"syntax error", "a = { n = 3; };\nb = { c = ; };", "t.conf:2: syntax error"},
    {"name at the very end", "a = { n = 3; };\nzz", "t.conf:2: syntax error"},
    {"unterminated group", "a = { n = 3;\n", "t.conf:2: syntax error"},
    {"duplicate setting", "a = { n = 3;\n n = 4; };",
     "t.conf:2: syntax error: a setting or group given twice (edit the first one: the shipped "
     "file has every group already)"},
    {"duplicate group", "a = {\n n = 3;\n};\na = {\n m = 4;\n};\n",
     "t.conf:4: syntax error: a setting or group given twice (edit the first one: the shipped "
     "file has every group already)"},
    {"@include", "a = { n = 3; };\n@include \"/etc/passwd\"\n",
     "t.conf:2: @include is not supported"},
};

/* With iotsec's table, named "bad.conf". */
static const struct bad real_bad[] = {
    {"interval below the range", "certd = { interval = 0; };\n",
     "bad.conf:1: setting 'certd.interval': 0 is out of range 1..86400"},
    {"interval above the range", "certd = {\n interval = 86401; };",
     "bad.conf:2: setting 'certd.interval': 86401 is out of range 1..86400"},
    {"interval truncated", "certd = { interval = 4294967596; };",
     "bad.conf:1: setting 'certd.interval': 4294967596 is out of range 1..86400"},
    {"port as a string", "net = { port = \"7450\"; };",
     "bad.conf:1: setting 'net.port': expected an integer"},
    {"port leaves no room for keyd's", "net = { port = 65535; };",
     "bad.conf:1: setting 'net.port': 65535 is out of range 1..65532"},
    {"broadcast not an address", "net = { broadcast = \"abcdefgh\"; };",
     "bad.conf:1: setting 'net.broadcast': not an IPv4 address"},
    {"broadcast out of range", "net = { broadcast = \"10.0.0.256\"; };",
     "bad.conf:1: setting 'net.broadcast': not an IPv4 address"},
    {"broadcast too short", "net = { broadcast = \"1.2.3\"; };",
     "bad.conf:1: setting 'net.broadcast': not an IPv4 address"},
    {"broadcast a host name", "net = { broadcast = \"broadcast.example\"; };",
     "bad.conf:1: setting 'net.broadcast': not an IPv4 address"},
    {"relative cert path", "device = { cert = \"device.crt\"; };",
     "bad.conf:1: setting 'device.cert': must be an absolute path"},
    {"relative state_dir", "device = {\n state_dir = \"./state\"; };",
     "bad.conf:2: setting 'device.state_dir': must be an absolute path"},
    {"relative dictionary key", "dictd = { key_file = \"dict.key\"; };",
     "bad.conf:1: setting 'dictd.key_file': must be an absolute path"},
    {"empty cert path", "device = { cert = \"\"; };",
     "bad.conf:1: setting 'device.cert': must not be empty"},
    {"name too long",
     "device = { name = \"0123456789012345678901234567890123456789012345678901234567890123\"; };",
     "bad.conf:1: setting 'device.name': string longer than 63"},
    {"unknown daemon", "relayd = { interval = 5; };",
     "bad.conf:1: setting 'relayd': unknown group"},
    {"misspelt", "device = {\n cert = \"/a\";\n certs = \"b\";\n};",
     "bad.conf:3: setting 'device.certs': unknown setting"},
    {"doctor sensor in capitals", "sensord = { doctor_sensors = \"Pulse spo2\"; };",
     "bad.conf:1: setting 'sensord.doctor_sensors': a sensor name has 1 to 31 of a-z, 0-9, "
     "'_' and '-' (names separated by spaces)"},
    {"doctor sensor with a stray character", "sensord = {\n doctor_sensors = \"pulse;spo2\"; };",
     "bad.conf:2: setting 'sensord.doctor_sensors': a sensor name has 1 to 31 of a-z, 0-9, "
     "'_' and '-' (names separated by spaces)"},
    {"doctor sensor name too long",
     "sensord = { doctor_sensors = \"pulse a23456789012345678901234567890123\"; };",
     "bad.conf:1: setting 'sensord.doctor_sensors': a sensor name has 1 to 31 of a-z, 0-9, "
     "'_' and '-' (names separated by spaces)"},
    {"pairwise item without a device", "sensord = { pairwise = \"secret\"; };",
     "bad.conf:1: setting 'sensord.pairwise': an item is SENSOR>DEVICE (sensor: 1 to 31 of a-z, "
     "0-9, '_' and '-'), items separated by spaces or commas"},
    {"pairwise item with an empty device", "sensord = { pairwise = \"secret>\"; };",
     "bad.conf:1: setting 'sensord.pairwise': an item is SENSOR>DEVICE (sensor: 1 to 31 of a-z, "
     "0-9, '_' and '-'), items separated by spaces or commas"},
    {"pairwise item without a sensor", "sensord = { pairwise = \">kitB\"; };",
     "bad.conf:1: setting 'sensord.pairwise': an item is SENSOR>DEVICE (sensor: 1 to 31 of a-z, "
     "0-9, '_' and '-'), items separated by spaces or commas"},
    {"pairwise sensor in capitals", "sensord = { pairwise = \"Secret>kitB\"; };",
     "bad.conf:1: setting 'sensord.pairwise': an item is SENSOR>DEVICE (sensor: 1 to 31 of a-z, "
     "0-9, '_' and '-'), items separated by spaces or commas"},
    {"pairwise item with two arrows", "sensord = { pairwise = \"secret>kitB>kitC\"; };",
     "bad.conf:1: setting 'sensord.pairwise': an item is SENSOR>DEVICE (sensor: 1 to 31 of a-z, "
     "0-9, '_' and '-'), items separated by spaces or commas"},
    {"pairwise device name not a device's", "sensord = { pairwise = \"secret>-kitB\"; };",
     "bad.conf:1: setting 'sensord.pairwise': a device name is 1 to 63 of A-Z, a-z, 0-9, '.', "
     "'_' and '-'"},
    {"pairwise sensor named twice", "sensord = { pairwise = \"secret>kitB, secret>kitC\"; };",
     "bad.conf:1: setting 'sensord.pairwise': a sensor is sealed for one device only: named "
     "twice"},
};

static void check_bad(const struct bad *b, int real)
{
	char err[CONFIG_ERR_MAX];
	union {
		struct small s;
		struct iotsec_config c;
	} v, before;

	memset(&v, 0xa5, sizeof(v));
	memcpy(&before, &v, sizeof(v));
	if (real)
		assert_int_equal(config_load_string(b->text, "bad.conf", &v.c, err, sizeof(err)),
				 -EINVAL);
	else
		assert_int_equal(parse_small(b->text, &v.s, err), -EINVAL);
	assert_string_equal(err, b->err);
	assert_memory_equal(&v, &before, sizeof(v));
}

static void test_small_bad(void **state)
{
	check_bad(*state, 0);
}

static void test_real_bad(void **state)
{
	check_bad(*state, 1);
}

/* Every spelling sensord itself takes: spaces, commas, tabs, none at all. */
static void test_doctor_sensors_good(void **state)
{
	static const char *const good[] = {
	    "sensord = { doctor_sensors = \"\"; };",
	    "sensord = { doctor_sensors = \"pulse\"; };",
	    "sensord = { doctor_sensors = \"pulse, spo2,body_temp\"; };",
	    "sensord = { doctor_sensors = \" heart-rate\tspo2 \"; };",
	    "sensord = { doctor_sensors = \"a234567890123456789012345678901\"; };",
	    "sensord = { pairwise = \"\"; };",
	    "sensord = { pairwise = \"secret>kitB\"; };",
	    "sensord = { pairwise = \" secret>kitB,\tpulse-2>kit.C_1 \"; };",
	};
	char err[CONFIG_ERR_MAX];

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct iotsec_config c;

		assert_int_equal(config_load_string(good[i], "good.conf", &c, err, sizeof(err)), 0);
		config_free(&c);
	}
}

static void test_too_many_lines(void **state)
{
	char *text = malloc(70001), err[CONFIG_ERR_MAX];
	struct small v;

	(void)state;
	assert_non_null(text);
	memset(text, '\n', 70000);
	text[70000] = '\0';
	assert_int_equal(parse_small(text, &v, err), -EINVAL);
	assert_string_equal(err, "t.conf: more than 65535 lines");
	free(text);
}

static void test_missing_file(void **state)
{
	char path[PATH_MAX + 16], want[PATH_MAX + 80], err[CONFIG_ERR_MAX];
	struct iotsec_config c;

	(void)state;
	snprintf(path, sizeof(path), "%s/missing.conf", dir);
	snprintf(want, sizeof(want), "%s: cannot read: No such file or directory", path);
	assert_int_equal(config_load(path, &c, err, sizeof(err)), -ENOENT);
	assert_string_equal(err, want);
}

static void test_nul_in_file(void **state)
{
	static const char text[] = "certd = { interval = 5; };\n\0certd = { interval = 0; };\n";
	char want[PATH_MAX + 80], err[CONFIG_ERR_MAX];
	struct iotsec_config c;
	const char *path = write_file("nul.conf", text, sizeof(text) - 1);

	(void)state;
	snprintf(want, sizeof(want), "%s:2: NUL byte in the file", path);
	assert_int_equal(config_load(path, &c, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, want);
}

static void test_oversized_file(void **state)
{
	size_t len = 1024 * 1024 + 1;
	char *text = malloc(len), want[PATH_MAX + 80], err[CONFIG_ERR_MAX];
	struct iotsec_config c;
	const char *path;

	(void)state;
	assert_non_null(text);
	memset(text, '#', len);
	path = write_file("big.conf", text, len);
	free(text);
	snprintf(want, sizeof(want), "%s: cannot read: too large for a configuration", path);
	assert_int_equal(config_load(path, &c, err, sizeof(err)), -EFBIG);
	assert_string_equal(err, want);
}

/* A reload that fails keeps the configuration in force, pointers and all. */
static void test_failed_reload_keeps_old(void **state)
{
	struct iotsec_config c, before;
	char err[CONFIG_ERR_MAX];

	(void)state;
	assert_int_equal(
	    config_load_string("certd = { interval = 7; };", "a", &c, err, sizeof(err)), 0);
	before = c;
	assert_int_equal(config_load_string("device = { cert = \"/x\"; };\ncertd = { interval = "
					    "-1; };",
					    "b", &c, err, sizeof(err)),
			 -EINVAL);
	assert_string_equal(err, "b:2: setting 'certd.interval': -1 is out of range 1..86400");
	assert_memory_equal(&c, &before, sizeof(c));
	assert_string_equal(c.device.cert, "/etc/iotsec/device.crt");
	assert_int_equal(c.certd.interval, 7);
	config_free(&c);
}

static int setup(void **state)
{
	(void)state;
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[PATH_MAX + 16];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	static const struct CMUnitTest fixed[] = {
	    cmocka_unit_test(test_full_file),
	    cmocka_unit_test(test_empty_file_takes_defaults),
	    cmocka_unit_test(test_comments_and_other_spellings),
	    cmocka_unit_test(test_range_ends_accepted),
	    cmocka_unit_test(test_real_table_defaults),
	    cmocka_unit_test(test_example_file_lists_every_default),
	    cmocka_unit_test(test_load_from_file),
	    cmocka_unit_test(test_doctor_sensors_good),
	    cmocka_unit_test(test_too_many_lines),
	    cmocka_unit_test(test_missing_file),
	    cmocka_unit_test(test_nul_in_file),
	    cmocka_unit_test(test_oversized_file),
	    cmocka_unit_test(test_failed_reload_keeps_old),
	};
	enum {
		N_FIXED = sizeof(fixed) / sizeof(fixed[0]),
		N_SMALL = sizeof(small_bad) / sizeof(small_bad[0]),
		N_REAL = sizeof(real_bad) / sizeof(real_bad[0]),
	};
	struct CMUnitTest tests[N_FIXED + N_SMALL + N_REAL];
	size_t n = 0;

	/* One case per bad input, named after it. */
	for (size_t i = 0; i < N_FIXED; i++)
		tests[n++] = fixed[i];
	for (size_t i = 0; i < N_SMALL; i++)
		tests[n++] = (struct CMUnitTest){.name = small_bad[i].name,
						 .test_func = test_small_bad,
						 .initial_state = (void *)&small_bad[i]};
	for (size_t i = 0; i < N_REAL; i++)
		tests[n++] = (struct CMUnitTest){.name = real_bad[i].name,
						 .test_func = test_real_bad,
						 .initial_state = (void *)&real_bad[i]};
	return _cmocka_run_group_tests("config", tests, n, setup, teardown);
}
