/* sensor: the configured list, the three parsers (tables of good and bad text), and the drivers
 * over a fake sysfs tree and replay files in a temporary directory. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "file.h"
#include "sensor.h"
#include "tmpdir.h"

static int setup(void **state)
{
	return tmp_setup(state, "sensor");
}

/* Write DIR/rel (parents made) with len bytes of text (strlen when len is -1). */
static const char *put(struct tmp *t, const char *rel, const char *text, ssize_t len)
{
	char *slash;

	tmp_at(t, rel);
	slash = strrchr(t->path, '/');
	*slash = '\0';
	assert_int_equal(file_mkdirs(t->path, 0700), 0);
	*slash = '/';
	assert_int_equal(
	    file_write_atomic(t->path, text, len < 0 ? strlen(text) : (size_t)len, 0600), 0);
	return t->path;
}

/* ---- the list ---- */

static void test_list_good(void **state)
{
	struct sensor_spec s[SENSOR_MAX];
	const char *err = NULL;
	char many[SENSOR_MAX * 24 + 1] = "";
	size_t n = 99;

	(void)state;
	assert_int_equal(sensor_parse_list("", s, &n, &err), 0);
	assert_int_equal(n, 0);
	assert_int_equal(sensor_parse_list(" ,\t, ", s, &n, &err), 0);
	assert_int_equal(n, 0);
	assert_int_equal(sensor_parse_list("thermal:thermal_zone0, hwmon:hwmon1/temp2_input\t"
					   "ds18b20:28-00000a1b2c3d,,body_temp=ds18b20:28-ff "
					   "replay:/var/lib/iotsec/kit.csv pulse=replay:/p.csv "
					   "x=hwmon:hwmon0/device/temp1_input",
					   s, &n, &err),
			 0);
	assert_int_equal(n, 7);
	assert_int_equal(s[0].driver, SENSOR_THERMAL);
	assert_string_equal(s[0].name, "thermal_zone0");
	assert_string_equal(s[0].arg, "thermal_zone0");
	assert_int_equal(s[1].driver, SENSOR_HWMON);
	assert_string_equal(s[1].name, "hwmon1_temp2");
	assert_string_equal(s[1].arg, "hwmon1/temp2_input");
	assert_int_equal(s[2].driver, SENSOR_DS18B20);
	assert_string_equal(s[2].name, "28-00000a1b2c3d");
	assert_string_equal(s[3].name, "body_temp");
	assert_string_equal(s[3].arg, "28-ff");
	assert_int_equal(s[4].driver, SENSOR_REPLAY);
	assert_string_equal(s[4].name, "");
	assert_string_equal(s[4].arg, "/var/lib/iotsec/kit.csv");
	assert_string_equal(s[5].name, "pulse");
	assert_string_equal(s[6].name, "x");
	assert_string_equal(sensor_driver_name(SENSOR_HWMON), "hwmon");
	assert_string_equal(sensor_driver_name((enum sensor_driver)9), "?");

	/* Sixteen is the limit, and allowed; two unnamed replays are allowed too. */
	for (int i = 0; i < SENSOR_MAX; i++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many), "thermal:tz%d ", i);
	assert_int_equal(sensor_parse_list(many, s, &n, &err), 0);
	assert_int_equal(n, SENSOR_MAX);
	assert_int_equal(sensor_parse_list("replay:/a replay:/b", s, &n, &err), 0);
	assert_int_equal(n, 2);
}

static void test_list_bad(void **state)
{
	static const char *const bad[] = {
	    "thermal",
	    "thermal_zone0",
	    "=thermal:thermal_zone0",
	    "abcdefghijklmnopqrstuvwxyz012345=thermal:tz0",
	    "Pulse=replay:/p.csv",
	    "pu.lse=replay:/p.csv",
	    "gpio:17",
	    ":thermal_zone0",
	    "x=:thermal_zone0",
	    "thermal:",
	    "thermal:../../etc/passwd",
	    "replay:/var/../etc/shadow",
	    "replay:relative.csv",
	    "thermal:/sys/class/thermal/thermal_zone0",
	    "thermal:Zone0",  /* no name of its own */
	    "hwmon:hwmon0",   /* no FILE */
	    "hwmon:hwmon0/",  /* empty FILE */
	    "x=hwmon:hwmon0", /* a directory, named or not */
	    "x=hwmon:hwmon0/",
	    "x=hwmon:hwmon0/temp1_input/",
	    "ds18b20:28-00000A1B2C3D",			 /* upper case: give NAME= */
	    "thermal:abcdefghijklmnopqrstuvwxyz0123456", /* 32 */
	    "thermal:tz0 thermal:tz0",
	    "a=thermal:tz0 a=thermal:tz1",
	    "thermal:tz0 tz0=hwmon:hwmon0/temp1_input",
	    /* A sysfs ARG of characters no zone, hwmon file or 1-Wire id has, named or not. */
	    "cpu=thermal:tz0;room=thermal:tz1",
	    "cpu=thermal:thermal_zone0/temp",
	    "room=ds18b20:28-0000075b1f2a/w1_slave",
	    "x=hwmon:hwmon0/temp1_input;y",
	    "x=thermal:tz0=1",
	    "x=ds18b20:28-00:ff",
	};
	struct sensor_spec s[SENSOR_MAX];
	char many[(SENSOR_MAX + 1) * 24 + 1] = "", long_arg[300];
	const char *err;
	size_t n;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err = NULL;
		n = 77;
		assert_int_equal(sensor_parse_list(bad[i], s, &n, &err), -EINVAL);
		assert_non_null(err);
		assert_int_equal(n, 77);
	}
	for (int i = 0; i <= SENSOR_MAX; i++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many), "thermal:tz%d ", i);
	assert_int_equal(sensor_parse_list(many, s, &n, &err), -EINVAL);
	assert_string_equal(err, "more than 16 sensors");
	snprintf(long_arg, sizeof(long_arg), "x=replay:/%0255d", 0);
	assert_int_equal(sensor_parse_list(long_arg, s, &n, &err), -EINVAL);
	long_arg[strlen(long_arg) - 1] = '\0'; /* 255: fits */
	assert_int_equal(sensor_parse_list(long_arg, s, &n, &err), 0);
}

/* ---- the parsers ---- */

static void test_milli_good(void **state)
{
	static const struct {
		const char *text;
		double want;
	} good[] = {
	    {"23125\n", 23.125},
	    {"23125", 23.125},
	    {"-1250\n", -1.25},
	    {"0\n", 0},
	    {"-0", 0},
	    {"007", 0.007},
	    {"150000\n", 150},
	    {"9223372036854775807", 9223372036854775.807},
	    {"-9223372036854775808\n", -9223372036854775.808},
	};
	double v;

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		v = -1000;
		assert_int_equal(sensor_parse_milli(good[i].text, strlen(good[i].text), &v), 0);
		assert_float_equal(v, good[i].want, 1e-9 * fabs(good[i].want) + 1e-12);
	}
}

static void test_milli_bad(void **state)
{
	static const struct {
		const char *text;
		size_t len; /* 0: strlen */
		int want;
	} bad[] = {
	    {"", 0, -EBADMSG},
	    {"\n", 0, -EBADMSG},
	    {"-", 0, -EBADMSG},
	    {"-\n", 0, -EBADMSG},
	    {"23125\n\n", 0, -EBADMSG},
	    {" 23125", 0, -EBADMSG},
	    {"23125 ", 0, -EBADMSG},
	    {"+5", 0, -EBADMSG},
	    {"2.5", 0, -EBADMSG},
	    {"abc", 0, -EBADMSG},
	    {"0x10", 0, -EBADMSG},
	    {"12a\n", 0, -EBADMSG},
	    {"--1", 0, -EBADMSG},
	    {"1\r\n", 0, -EBADMSG},
	    {"23125\0", 6, -EBADMSG},
	    {"\0"
	     "23125",
	     6, -EBADMSG},
	    {"9223372036854775808", 0, -ERANGE},
	    {"-9223372036854775809", 0, -ERANGE},
	    {"99999999999999999999999999999999\n", 0, -ERANGE},
	    {"99999999999999999999999999999999x", 0, -EBADMSG},
	};
	double v = 42;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t len = bad[i].len ? bad[i].len : strlen(bad[i].text);

		assert_int_equal(sensor_parse_milli(bad[i].text, len, &v), bad[i].want);
		assert_true(v == 42);
	}
}

#define W1_YES "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n"
#define W1_NO  "72 01 4b 46 7f ff 0e 10 57 : crc=57 NO\n"

static void test_w1_good(void **state)
{
	static const struct {
		const char *text;
		double want;
	} good[] = {
	    {W1_YES "72 01 4b 46 7f ff 0e 10 57 t=23125\n", 23.125},
	    {W1_YES "72 01 4b 46 7f ff 0e 10 57 t=23125", 23.125},
	    {"5e ff 4b 46 7f ff 02 10 1c : crc=1C YES\n5e ff 4b 46 7f ff 02 10 1c t=-10125\n",
	     -10.125},
	    {"crc=00 YES\nt=0\n", 0},
	    {W1_YES "t=84999\n", 84.999},
	    {W1_YES "t=85001\n", 85.001},
	};
	double v;

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		v = -1000;
		assert_int_equal(sensor_parse_w1(good[i].text, strlen(good[i].text), &v), 0);
		assert_float_equal(v, good[i].want, 1e-9);
	}
}

static void test_w1_bad(void **state)
{
	static const struct {
		const char *text;
		size_t len;
		int want;
	} bad[] = {
	    {W1_NO "72 01 4b 46 7f ff 0e 10 57 t=23125\n", 0, -EIO},
	    {W1_NO "garbage after a failed CRC\n", 0, -EIO},
	    {W1_YES "72 01 4b 46 7f ff 0e 10 57 t=85000\n", 0, -EAGAIN},
	    {"", 0, -EBADMSG},
	    {"\n", 0, -EBADMSG},
	    {W1_YES, 0, -EBADMSG},
	    {W1_YES "\n", 0, -EBADMSG},
	    {"72 01 4b 46 7f ff 0e 10 57 t=23125\n", 0, -EBADMSG},
	    {W1_YES "t=1\nt=2\n", 0, -EBADMSG},
	    {W1_YES "t=1\n\n", 0, -EBADMSG},
	    {W1_YES "72 01 4b 46 7f ff 0e 10 57\n", 0, -EBADMSG},
	    {W1_YES "72 01 4b 46 7f ff 0e 10 57 t=\n", 0, -EBADMSG},
	    {W1_YES "72 01 t=abc\n", 0, -EBADMSG},
	    {W1_YES "72 01 t=23125 \n", 0, -EBADMSG},
	    {W1_YES "72 01 t=23.1\n", 0, -EBADMSG},
	    {W1_YES "72 01xt=23125\n", 0, -EBADMSG},
	    {W1_YES "t=99999999999999999999999\n", 0, -ERANGE},
	    {"72 01 : crc=57 MAYBE\nt=1\n", 0, -EBADMSG},
	    {"72 01 : crc=5 YES\nt=1\n", 0, -EBADMSG},
	    {"72 01 : crc=5g YES\nt=1\n", 0, -EBADMSG},
	    {"72 01 : YES\nt=1\n", 0, -EBADMSG},
	    {"72 01 :crc=57 YES\nt=1\n", 0, -EBADMSG},
	    {"72 01 : crc=57 YES \nt=1\n", 0, -EBADMSG},
	    {"72 01 : crc=57 yes\nt=1\n", 0, -EBADMSG},
	    {"72 01 : crc=57 YES\r\nt=1\n", 0, -EBADMSG},
	    {"72 01 : crc=57 YES\nt=1\0\n", 24, -EBADMSG},
	    {"72 01 : crc=57 YES\nt=\x85"
	     "1\n",
	     0, -EBADMSG},
	};
	double v = 42;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t len = bad[i].len ? bad[i].len : strlen(bad[i].text);

		assert_int_equal(sensor_parse_w1(bad[i].text, len, &v), bad[i].want);
		assert_true(v == 42);
	}
}

static void test_row_good(void **state)
{
	static const struct {
		const char *line, *sensor, *unit;
		double value;
	} good[] = {
	    {"pulse,72,/min", "pulse", "/min", 72},
	    {"body_temp,36.6,C", "body_temp", "C", 36.6},
	    {"spo2,97", "spo2", "", 97},
	    {"x,-1.5e2,", "x", "", -150},
	    {"a_b-c9,+.5,unit with sp", "a_b-c9", "unit with sp", 0.5},
	    {"abcdefghijklmnopqrstuvwxyz01234,1E3,0123456789abcde",
	     "abcdefghijklmnopqrstuvwxyz01234", "0123456789abcde", 1000},
	    {"t,1e308,~!@#$%^&*()", "t", "~!@#$%^&*()", 1e308},
	};
	struct reading_value v;

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		memset(&v, 0xa5, sizeof(v));
		assert_int_equal(sensor_parse_row(good[i].line, strlen(good[i].line), &v), 0);
		assert_string_equal(v.sensor, good[i].sensor);
		assert_string_equal(v.unit, good[i].unit);
		assert_float_equal(v.value, good[i].value, 1e-9 * fabs(good[i].value));
		assert_false(v.emergency);
	}
	/* The length counts, not a NUL: a row inside a longer buffer. */
	assert_int_equal(sensor_parse_row("pulse,72,/minute", 12, &v), 0);
	assert_string_equal(v.unit, "/mi");
}

static void test_row_bad(void **state)
{
	static const struct {
		const char *line;
		size_t len;
	} bad[] = {
	    {"", 0},
	    {"pulse", 0},
	    {"pulse,72,/min,extra", 0},
	    {"pulse,72,,", 0},
	    {"Pulse,72", 0},
	    {",72", 0},
	    {" pulse,72", 0},
	    {"abcdefghijklmnopqrstuvwxyz012345,1", 0},
	    {"pulse,", 0},
	    {"pulse,,/min", 0},
	    {"pulse,nan", 0},
	    {"pulse,NaN", 0},
	    {"pulse,inf", 0},
	    {"pulse,-inf", 0},
	    {"pulse,infinity", 0},
	    {"pulse,1e999", 0},
	    {"pulse,-1e999", 0},
	    {"pulse,0x10", 0},
	    {"pulse, 72", 0},
	    {"pulse,72 ", 0},
	    {"pulse,7 2", 0},
	    {"pulse,1e", 0},
	    {"pulse,-", 0},
	    {"pulse,.", 0},
	    {"pulse,1..2", 0},
	    {"pulse,72,0123456789abcdef", 0},
	    {"pulse,72,\t", 0},
	    {"pulse,72\r", 0},
	    {"pulse,72,\xc2\xb5", 0},
	    {"pulse,72\0", 9},
	    {"pu\0se,72", 8},
	    {"pulse,000000000000000000000000000000000000000000000000000000000000000001", 0},
	};
	struct reading_value v;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t len = bad[i].len ? bad[i].len : strlen(bad[i].line);

		memset(&v, 0xa5, sizeof(v));
		assert_int_equal(sensor_parse_row(bad[i].line, len, &v), -EBADMSG);
		for (size_t b = 0; b < sizeof(v); b++)
			assert_int_equal(((uint8_t *)&v)[b], 0xa5);
	}
}

/* ---- the sysfs drivers ---- */

static struct sensor *open_one(struct tmp *t, const char *item)
{
	struct sensor_spec spec;
	struct sensor *s = NULL;
	const char *err = NULL;
	char root[128];
	size_t n = 0;

	assert_int_equal(sensor_parse_list(item, &spec, &n, &err), 0);
	assert_int_equal(n, 1);
	snprintf(root, sizeof(root), "%s/sys", t->dir);
	assert_int_equal(sensor_open(&spec, root, false, &s), 0);
	return s;
}

static void test_sysfs_good(void **state)
{
	struct tmp *t = *state;
	struct reading_value v;
	struct sensor *s;
	const char *err = NULL;

	put(t, "sys/class/thermal/thermal_zone0/temp", "45000\n", -1);
	s = open_one(t, "thermal:thermal_zone0");
	assert_string_equal(sensor_name(s), "thermal_zone0");
	assert_int_equal(sensor_read(s, &v, &err), 0);
	assert_string_equal(v.sensor, "thermal_zone0");
	assert_float_equal(v.value, 45.0, 1e-9);
	assert_string_equal(v.unit, "C");
	assert_false(v.emergency);
	/* sysfs files change under us: each read opens the file afresh. */
	put(t, "sys/class/thermal/thermal_zone0/temp", "-12500\n", -1);
	assert_int_equal(sensor_read(s, &v, &err), 0);
	assert_float_equal(v.value, -12.5, 1e-9);
	assert_null(err);
	sensor_close(s);

	put(t, "sys/class/hwmon/hwmon0/temp1_input", "30500\n", -1);
	s = open_one(t, "hwmon:hwmon0/temp1_input");
	assert_string_equal(sensor_name(s), "hwmon0_temp1");
	assert_int_equal(sensor_read(s, &v, &err), 0);
	assert_string_equal(v.sensor, "hwmon0_temp1");
	assert_float_equal(v.value, 30.5, 1e-9);
	sensor_close(s);

	put(t, "sys/bus/w1/devices/28-00000a1b2c3d/w1_slave",
	    W1_YES "72 01 4b 46 7f ff 0e 10 57 t=36625\n", -1);
	s = open_one(t, "body_temp=ds18b20:28-00000a1b2c3d");
	assert_string_equal(sensor_name(s), "body_temp");
	assert_int_equal(sensor_read(s, &v, &err), 0);
	assert_string_equal(v.sensor, "body_temp");
	assert_float_equal(v.value, 36.625, 1e-9);
	assert_string_equal(v.unit, "C");
	sensor_close(s);
	sensor_close(NULL);
}

/* Each failure: its code, and a text naming the file and why. */
static void test_sysfs_bad(void **state)
{
	static const struct {
		const char *item, *file, *text;
		int want;
		const char *why;
	} bad[] = {
	    {"thermal:tz1", NULL, NULL, -ENOENT, "missing"},
	    {"thermal:tz1", "class/thermal/tz1/temp", "", -EBADMSG, "not a number"},
	    {"thermal:tz1", "class/thermal/tz1/temp", "hot\n", -EBADMSG, "not a number"},
	    {"thermal:tz1", "class/thermal/tz1/temp", "45000\n\n", -EBADMSG, "not a number"},
	    {"thermal:tz1", "class/thermal/tz1/temp", "99999999999999999999999\n", -ERANGE,
	     "-60..150"},
	    {"thermal:tz1", "class/thermal/tz1/temp", "150001\n", -ERANGE, "-60..150"},
	    {"thermal:tz1", "class/thermal/tz1/temp", "-60001\n", -ERANGE, "-60..150"},
	    {"hwmon:hwmon2/temp3_input", "class/hwmon/hwmon2/temp3_input", "2e4\n", -EBADMSG,
	     "not a number"},
	    {"hwmon:hwmon2/temp3_input", NULL, NULL, -ENOENT, "missing"},
	    {"ds18b20:28-1", "bus/w1/devices/28-1/w1_slave", W1_NO "t=20000\n", -EIO, "CRC"},
	    {"ds18b20:28-1", "bus/w1/devices/28-1/w1_slave", W1_YES "t=85000\n", -EAGAIN,
	     "power-on"},
	    {"ds18b20:28-1", "bus/w1/devices/28-1/w1_slave", W1_YES "t=200000\n", -ERANGE,
	     "-60..150"},
	    {"ds18b20:28-1", "bus/w1/devices/28-1/w1_slave", "", -EBADMSG, "not a DS18B20"},
	    {"ds18b20:28-1", "bus/w1/devices/28-1/w1_slave", "20000\n", -EBADMSG, "not a DS18B20"},
	};
	struct tmp *t = *state;
	struct reading_value v;
	char rel[256], big[400];
	const char *err;
	struct sensor *s;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(rel, sizeof(rel), "rm -rf '%s/sys'", t->dir);
		assert_int_equal(system(rel), 0);
		if (bad[i].file != NULL) {
			snprintf(rel, sizeof(rel), "sys/%s", bad[i].file);
			put(t, rel, bad[i].text, -1);
		}
		s = open_one(t, bad[i].item);
		memset(&v, 0xa5, sizeof(v));
		err = NULL;
		assert_int_equal(sensor_read(s, &v, &err), bad[i].want);
		assert_non_null(err);
		assert_non_null(strstr(err, t->dir));
		assert_non_null(strstr(err, bad[i].why));
		assert_int_equal(((uint8_t *)&v)[0], 0xa5);
		/* NULL for the text is allowed. */
		assert_int_equal(sensor_read(s, &v, NULL), bad[i].want);
		sensor_close(s);
	}

	/* More than a sysfs value can be, and a directory where the file should be. */
	memset(big, '1', sizeof(big));
	put(t, "sys/class/thermal/tz2/temp", big, sizeof(big));
	s = open_one(t, "thermal:tz2");
	assert_int_equal(sensor_read(s, &v, &err), -EBADMSG);
	sensor_close(s);
	put(t, "sys/class/thermal/tz3/temp/x", "1", -1);
	s = open_one(t, "thermal:tz3");
	assert_int_equal(sensor_read(s, &v, &err), -EISDIR);
	sensor_close(s);
}

static void test_open_bad(void **state)
{
	struct tmp *t = *state;
	struct sensor_spec spec = {.driver = SENSOR_THERMAL};
	struct sensor *s = (struct sensor *)&s, *orig = s;

	(void)t;
	assert_int_equal(sensor_open(&spec, "/sys", false, &s), -EINVAL); /* empty ARG */
	snprintf(spec.arg, sizeof(spec.arg), "tz0/../../x");
	assert_int_equal(sensor_open(&spec, "/sys", false, &s), -EINVAL);
	snprintf(spec.arg, sizeof(spec.arg), "Zone0");
	assert_int_equal(sensor_open(&spec, "/sys", false, &s), -EINVAL); /* no default name */
	snprintf(spec.name, sizeof(spec.name), "Bad");
	snprintf(spec.arg, sizeof(spec.arg), "tz0");
	assert_int_equal(sensor_open(&spec, "/sys", false, &s), -EINVAL);
	spec.name[0] = '\0';
	spec.driver = (enum sensor_driver)7;
	assert_int_equal(sensor_open(&spec, "/sys", false, &s), -EINVAL);
	spec.driver = SENSOR_REPLAY;
	snprintf(spec.arg, sizeof(spec.arg), "%s/none.csv", t->dir);
	assert_int_equal(sensor_open(&spec, "/sys", false, &s), -ENOENT);
	assert_ptr_equal(s, orig);
	/* A default name from a good ARG, with no sysfs given: /sys. */
	spec.driver = SENSOR_THERMAL;
	snprintf(spec.arg, sizeof(spec.arg), "tz0");
	assert_int_equal(sensor_open(&spec, NULL, false, &s), 0);
	assert_string_equal(sensor_name(s), "tz0");
	sensor_close(s);
}

/* ---- replay ---- */

static struct sensor *open_replay(struct tmp *t, const char *name, const char *csv, bool loop)
{
	struct sensor_spec spec = {.driver = SENSOR_REPLAY};
	struct sensor *s = NULL;

	snprintf(spec.name, sizeof(spec.name), "%s", name);
	snprintf(spec.arg, sizeof(spec.arg), "%s", put(t, "kit.csv", csv, -1));
	assert_int_equal(sensor_open(&spec, "/sys", loop, &s), 0);
	return s;
}

static const char replay_csv[] = "# a kit's morning\n"
				 "\n"
				 "pulse,72,/min\r\n"
				 "   \t\n"
				 "  # indented comment\n"
				 "body_temp,36.6,C\n"
				 "pulse,72,/min,extra\n"
				 "Pulse,70\n"
				 "spo2,nan,%\n"
				 "spo2,inf,%\n"
				 "spo2,,%\n"
				 "body_temp,250,C\n"
				 "spo2,97,%"; /* no newline at the end */

static void expect_row(struct sensor *s, const char *sensor, double value, const char *unit)
{
	struct reading_value v;
	const char *err = NULL;

	assert_int_equal(sensor_read(s, &v, &err), 0);
	assert_string_equal(v.sensor, sensor);
	assert_float_equal(v.value, value, 1e-9);
	assert_string_equal(v.unit, unit);
}

static void expect_bad(struct sensor *s, int want, const char *where, const char *why)
{
	struct reading_value v;
	const char *err = NULL;

	memset(&v, 0xa5, sizeof(v));
	assert_int_equal(sensor_read(s, &v, &err), want);
	assert_non_null(err);
	assert_non_null(strstr(err, where));
	assert_non_null(strstr(err, why));
	assert_int_equal(((uint8_t *)&v)[0], 0xa5);
}

static void one_pass(struct tmp *t, struct sensor *s)
{
	char where[128];

	expect_row(s, "pulse", 72, "/min");
	expect_row(s, "body_temp", 36.6, "C");
	snprintf(where, sizeof(where), "%s/kit.csv:7: ", t->dir);
	expect_bad(s, -EBADMSG, where, "more than 3 fields");
	snprintf(where, sizeof(where), "%s/kit.csv:8: ", t->dir);
	expect_bad(s, -EBADMSG, where, "sensor");
	expect_bad(s, -EBADMSG, "kit.csv:9: ", "not a decimal number");
	expect_bad(s, -EBADMSG, "kit.csv:10: ", "not a decimal number");
	expect_bad(s, -EBADMSG, "kit.csv:11: ", "not a decimal number");
	expect_bad(s, -ERANGE, "kit.csv:12: ", "-60..150");
	expect_row(s, "spo2", 97, "%");
}

static void test_replay_to_the_end(void **state)
{
	struct tmp *t = *state;
	struct sensor *s = open_replay(t, "", replay_csv, false);

	assert_string_equal(sensor_name(s), "replay");
	one_pass(t, s);
	expect_bad(s, -ENODATA, "kit.csv", "end");
	expect_bad(s, -ENODATA, "kit.csv", "end");
	sensor_close(s);
}

static void test_replay_loops(void **state)
{
	struct tmp *t = *state;
	struct sensor *s = open_replay(t, "", replay_csv, true);

	one_pass(t, s);
	one_pass(t, s); /* line numbers start again too */
	expect_row(s, "pulse", 72, "/min");
	sensor_close(s);
}

/* NAME= renames every row. */
static void test_replay_named(void **state)
{
	struct tmp *t = *state;
	struct sensor *s = open_replay(t, "kitchen", "pulse,72,/min\nroom,20,C\n", false);

	assert_string_equal(sensor_name(s), "kitchen");
	expect_row(s, "kitchen", 72, "/min");
	expect_row(s, "kitchen", 20, "C");
	expect_bad(s, -ENODATA, "kit.csv", "end");
	sensor_close(s);
}

/* Files with no row: the end at once, looping or not (a loop over nothing would never end). */
static void test_replay_empty(void **state)
{
	static const char *const empty[] = {"", "\n", "# only\n# comments\n\n", "   "};
	struct tmp *t = *state;

	for (size_t i = 0; i < sizeof(empty) / sizeof(empty[0]); i++)
		for (int loop = 0; loop < 2; loop++) {
			struct sensor *s = open_replay(t, "", empty[i], loop);

			expect_bad(s, -ENODATA, "kit.csv", "end");
			expect_bad(s, -ENODATA, "kit.csv", "end");
			sensor_close(s);
		}
}

/* A file of bad rows alone still loops row by row: each read reports one. */
static void test_replay_bad_only_loops(void **state)
{
	struct tmp *t = *state;
	struct sensor *s = open_replay(t, "", "#\nbad row\n", true);

	for (int i = 0; i < 3; i++)
		expect_bad(s, -EBADMSG, "kit.csv:2: ", "sensor,value");
	sensor_close(s);
}

static void test_replay_long_lines(void **state)
{
	struct tmp *t = *state;
	char csv[1024], row[SENSOR_CSV_LINE_MAX + 2];
	struct sensor *s;

	/* 256 bytes: a (bad) row; 257: too long, even as a comment. */
	memset(row, 'a', sizeof(row));
	memcpy(row, "x,1,", 4);
	row[SENSOR_CSV_LINE_MAX] = '\0';
	snprintf(csv, sizeof(csv), "%s\n#%s\npulse,1\n%s\n", row, row, row);
	s = open_replay(t, "", csv, false);
	expect_bad(s, -EBADMSG, "kit.csv:1: ", "unit");
	expect_bad(s, -EBADMSG, "kit.csv:2: ", "longer than");
	expect_row(s, "pulse", 1, "");
	expect_bad(s, -EBADMSG, "kit.csv:4: ", "unit");
	expect_bad(s, -ENODATA, "kit.csv", "end");
	sensor_close(s);
}

static void test_replay_file_bounds(void **state)
{
	struct tmp *t = *state;
	struct sensor_spec spec = {.driver = SENSOR_REPLAY};
	struct sensor *s = NULL;
	char *big = malloc(1024 * 1024 + 1);

	assert_non_null(big);
	memset(big, '\n', 1024 * 1024 + 1);
	snprintf(spec.arg, sizeof(spec.arg), "%s", put(t, "big.csv", big, 1024 * 1024 + 1));
	assert_int_equal(sensor_open(&spec, "/sys", false, &s), -EFBIG);
	assert_null(s);
	snprintf(spec.arg, sizeof(spec.arg), "%s", put(t, "big.csv", big, 1024 * 1024));
	assert_int_equal(sensor_open(&spec, "/sys", false, &s), 0);
	expect_bad(s, -ENODATA, "big.csv", "end");
	sensor_close(s);
	snprintf(spec.arg, sizeof(spec.arg), "%s", t->dir);
	assert_int_equal(sensor_open(&spec, "/sys", false, &s), -EISDIR);
	free(big);
}

/* sensord.pairwise: the device a sensor's readings are for, whatever the separators. */
static void test_pairs_good(void **state)
{
	const char *list = " secret>kitB,\tpulse-2>kit.C_1 , room_a>pi3";
	char peer[CERT_NAME_MAX];
	const char *err = NULL;

	(void)state;
	assert_int_equal(sensor_pairs_check(list, &err), 0);
	assert_int_equal(sensor_pairs_check("", &err), 0);
	assert_int_equal(sensor_pair_of(list, "secret", peer), 0);
	assert_string_equal(peer, "kitB");
	assert_int_equal(sensor_pair_of(list, "pulse-2", peer), 0);
	assert_string_equal(peer, "kit.C_1");
	assert_int_equal(sensor_pair_of(list, "room_a", peer), 0);
	assert_string_equal(peer, "pi3");
	/* a prefix or an extension of a listed name is another sensor */
	assert_int_equal(sensor_pair_of(list, "secre", peer), -ENOENT);
	assert_int_equal(sensor_pair_of(list, "secrets", peer), -ENOENT);
	assert_int_equal(sensor_pair_of(list, "kitB", peer), -ENOENT);
	assert_int_equal(sensor_pair_of("", "secret", peer), -ENOENT);
	assert_string_equal(peer, "pi3"); /* untouched */
}

static void test_pairs_bad(void **state)
{
	static const char *const bad[] = {
	    "secret",
	    "secret>",
	    ">kitB",
	    "Secret>kitB",
	    "se;cret>kitB",
	    "secret>kitB>pi4",
	    "secret>-kitB",
	    "secret>.kitB",
	    "secret>ki/tB",
	    "a23456789012345678901234567890123>kitB",
	    "secret>kitB secret>pi4",
	};
	char name[CERT_NAME_MAX + 8];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *err = NULL;

		assert_int_equal(sensor_pairs_check(bad[i], &err), -EINVAL);
		assert_non_null(err);
	}
	/* a device name of 64 bytes is one too many */
	memcpy(name, "s>", 2);
	memset(name + 2, 'a', CERT_NAME_MAX);
	name[2 + CERT_NAME_MAX] = '\0';
	{
		const char *err = NULL;

		assert_int_equal(sensor_pairs_check(name, &err), -EINVAL);
		name[2 + CERT_NAME_MAX - 1] = '\0';
		assert_int_equal(sensor_pairs_check(name, &err), 0);
	}
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, tmp_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_list_good),	       T(test_list_bad),
	    T(test_milli_good),	       T(test_milli_bad),
	    T(test_w1_good),	       T(test_w1_bad),
	    T(test_row_good),	       T(test_row_bad),
	    T(test_sysfs_good),	       T(test_sysfs_bad),
	    T(test_open_bad),	       T(test_replay_to_the_end),
	    T(test_replay_loops),      T(test_replay_named),
	    T(test_replay_empty),      T(test_replay_bad_only_loops),
	    T(test_replay_long_lines), T(test_replay_file_bounds),
	    T(test_pairs_good),	       T(test_pairs_bad),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
