/* libFuzzer target: arbitrary bytes given to every sensor parser (sensor.h): the configured
 * list, a sysfs millidegree file, a DS18B20 w1_slave and a replay row. A parse that fails must
 * leave its output as it was and give one of its documented codes; what parses must hold only
 * what the format allows (names, units, finite values), and a row must come back the same
 * through its own text. Anything else aborts. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzzlib.h"
#include "sensor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int name_ok(const char *s)
{
	size_t len = strlen(s);

	if (len == 0 || len > READING_SENSOR_MAX)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
		      s[i] == '-'))
			return 0;
	return 1;
}

static void fuzz_list(const uint8_t *data, size_t size)
{
	static struct sensor_spec spec[SENSOR_MAX];
	char *text = malloc(size + 1);
	const char *err = NULL;
	size_t n = 0xa5a5;

	if (text == NULL)
		return;
	memcpy(text, data, size);
	text[size] = '\0';
	memset(spec, 0xa5, sizeof(spec));
	if (sensor_parse_list(text, spec, &n, &err) == 0) {
		if (n > SENSOR_MAX)
			abort();
		for (size_t i = 0; i < n; i++) {
			const struct sensor_spec *s = &spec[i];
			size_t alen = strnlen(s->arg, sizeof(s->arg));

			if (alen == 0 || alen == sizeof(s->arg) || strstr(s->arg, "..") != NULL ||
			    strcmp(sensor_driver_name(s->driver), "?") == 0)
				abort();
			if (s->name[0] == '\0' ? s->driver != SENSOR_REPLAY : !name_ok(s->name))
				abort();
			for (size_t j = 0; j < i; j++)
				if (s->name[0] != '\0' && strcmp(s->name, spec[j].name) == 0)
					abort();
		}
	} else {
		if (err == NULL || n != 0xa5a5)
			abort();
		fuzz_untouched(spec, sizeof(spec));
	}
	free(text);
}

static void fuzz_number(const uint8_t *data, size_t size)
{
	double v;
	int r;

	memset(&v, 0xa5, sizeof(v));
	r = sensor_parse_milli((const char *)data, size, &v);
	if (r == 0 ? !isfinite(v) || fabs(v) > 9.3e15 : r != -EBADMSG && r != -ERANGE)
		abort();
	if (r < 0)
		fuzz_untouched(&v, sizeof(v));

	memset(&v, 0xa5, sizeof(v));
	r = sensor_parse_w1((const char *)data, size, &v);
	if (r == 0 ? !isfinite(v) || v == 85.0
		   : r != -EBADMSG && r != -ERANGE && r != -EIO && r != -EAGAIN)
		abort();
	if (r < 0)
		fuzz_untouched(&v, sizeof(v));
}

static void fuzz_row(const uint8_t *data, size_t size)
{
	struct reading_value v, again;
	char text[READING_SENSOR_MAX + 32 + READING_UNIT_MAX + 4];
	int len;

	memset(&v, 0xa5, sizeof(v));
	if (sensor_parse_row((const char *)data, size, &v) < 0) {
		fuzz_untouched(&v, sizeof(v));
		return;
	}
	if (!name_ok(v.sensor) || !isfinite(v.value) || v.emergency ||
	    strnlen(v.unit, sizeof(v.unit)) > READING_UNIT_MAX || strchr(v.unit, ',') != NULL)
		abort();
	for (const char *u = v.unit; *u; u++)
		if (*u < 0x20 || *u > 0x7e)
			abort();
	len = snprintf(text, sizeof(text), "%s,%.17g,%s", v.sensor, v.value, v.unit);
	if (len < 0 || (size_t)len >= sizeof(text) ||
	    sensor_parse_row(text, (size_t)len, &again) < 0 ||
	    strcmp(again.sensor, v.sensor) != 0 || again.value != v.value ||
	    strcmp(again.unit, v.unit) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_list(data, size);
	fuzz_number(data, size);
	fuzz_row(data, size);
	return 0;
}
