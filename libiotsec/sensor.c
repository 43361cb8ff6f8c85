/* Sensor drivers (sensor.h): the list in the configuration, sysfs files and the replay CSV. */
#include "sensor.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char *const driver_names[] = {
    [SENSOR_THERMAL] = "thermal",
    [SENSOR_HWMON] = "hwmon",
    [SENSOR_DS18B20] = "ds18b20",
    [SENSOR_REPLAY] = "replay",
};

const char *sensor_driver_name(enum sensor_driver d)
{
	return (size_t)d < sizeof(driver_names) / sizeof(driver_names[0]) ? driver_names[d] : "?";
}

static bool name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

/* One item, [NAME=]DRIVER:ARG, of len bytes. */
static int parse_item(const char *p, size_t len, struct sensor_spec *ret, const char **ret_err)
{
	struct sensor_spec s = {0};
	const char *end = p + len, *colon = memchr(p, ':', len), *eq = memchr(p, '=', len);
	size_t dlen;
	bool found = false;

	if (colon == NULL) {
		*ret_err = "a sensor is DRIVER:ARG, e.g. thermal:thermal_zone0";
		return -EINVAL;
	}
	if (eq != NULL && eq < colon) {
		size_t nlen = (size_t)(eq - p);

		if (nlen == 0 || nlen > READING_SENSOR_MAX) {
			*ret_err = "a sensor's NAME= is 1 to 31 characters";
			return -EINVAL;
		}
		for (size_t i = 0; i < nlen; i++)
			if (!name_char(p[i])) {
				*ret_err = "a sensor's NAME= has only a-z, 0-9, '_' and '-'";
				return -EINVAL;
			}
		memcpy(s.name, p, nlen);
		p = eq + 1;
	}
	dlen = (size_t)(colon - p);
	for (size_t d = 0; d < sizeof(driver_names) / sizeof(driver_names[0]); d++)
		if (strlen(driver_names[d]) == dlen && memcmp(driver_names[d], p, dlen) == 0)
			s.driver = (enum sensor_driver)d, found = true;
	if (!found) {
		*ret_err = "unknown sensor driver (thermal, hwmon, ds18b20, replay)";
		return -EINVAL;
	}
	len = (size_t)(end - (colon + 1));
	if (len == 0 || len > SENSOR_ARG_MAX) {
		*ret_err = "a sensor's ARG is 1 to 255 characters";
		return -EINVAL;
	}
	memcpy(s.arg, colon + 1, len);
	if (strstr(s.arg, "..") != NULL) {
		*ret_err = "a sensor's ARG may not contain \"..\"";
		return -EINVAL;
	}
	if (s.driver == SENSOR_REPLAY ? s.arg[0] != '/' : s.arg[0] == '/') {
		*ret_err = s.driver == SENSOR_REPLAY
			       ? "replay:PATH takes an absolute path"
			       : "a sysfs sensor's ARG is relative to sensord.sysfs";
		return -EINVAL;
	}
	*ret = s;
	return 0;
}

int sensor_parse_list(const char *text, struct sensor_spec *ret, size_t *ret_n,
		      const char **ret_err)
{
	struct sensor_spec spec[SENSOR_MAX];
	size_t n = 0;
	int r;

	for (const char *p = text; *p != '\0';) {
		size_t len = strcspn(p, " ,\t");

		if (len == 0) {
			p++;
			continue;
		}
		if (n == SENSOR_MAX) {
			*ret_err = "more than 16 sensors";
			return -EINVAL;
		}
		r = parse_item(p, len, &spec[n], ret_err);
		if (r < 0)
			return r;
		n++;
		p += len;
	}
	memcpy(ret, spec, n * sizeof(spec[0]));
	*ret_n = n;
	return 0;
}
