/* Sensor drivers (SPEC 5.6): Linux thermal zones and hwmon, DS18B20 1-Wire thermometers (all
 * through sysfs) and a replay driver that reads a CSV for tests and the demo.
 *
 * The configuration names sensors as a list (sensord.sensors) of items [NAME=]DRIVER:ARG,
 * separated by spaces or commas:
 *   thermal:thermal_zone0          SYSFS/class/thermal/thermal_zone0/temp, millidegrees C
 *   hwmon:hwmon0/temp1_input       SYSFS/class/hwmon/hwmon0/temp1_input, millidegrees C
 *   ds18b20:28-00000a1b2c3d        SYSFS/bus/w1/devices/28-.../w1_slave: "... YES" then "t=NNNNN"
 *   replay:/var/lib/iotsec/kit.csv rows "sensor,value[,unit]", one row per read; # comments
 * NAME defaults to the zone, "hwmon0_temp1" (directory and file less "_input"), the 1-Wire id, or,
 * for replay, each row's own sensor. ARG may not contain "..". Temperatures outside -60..150 C are
 * refused. */
#ifndef IOTSEC_SENSOR_H
#define IOTSEC_SENSOR_H

#include <stdbool.h>
#include <stddef.h>

#include "reading.h"

#define SENSOR_MAX	    16 /* sensors one device reads */
#define SENSOR_ARG_MAX	    255
#define SENSOR_CSV_LINE_MAX 256

enum sensor_driver {
	SENSOR_THERMAL,
	SENSOR_HWMON,
	SENSOR_DS18B20,
	SENSOR_REPLAY,
};

struct sensor_spec {
	char name[READING_SENSOR_MAX + 1]; /* "" for replay without NAME= */
	enum sensor_driver driver;
	char arg[SENSOR_ARG_MAX + 1];
};
/* Parse the list: -EINVAL with *ret_err (static text) naming the problem; at most SENSOR_MAX. */
int sensor_parse_list(const char *text, struct sensor_spec *ret, size_t *ret_n,
		      const char **ret_err);

/* sensord.pairwise: items SENSOR>PEER separated by spaces or commas (SENSOR as a reading names
 * it, PEER a device name as ca_name_valid() takes it, each sensor at most once). -EINVAL with
 * *ret_err saying why. */
int sensor_pairs_check(const char *text, const char **ret_err);
/* The device the readings of sensor are sealed for alone (ret_peer: CERT_NAME_MAX bytes), or
 * -ENOENT when sensor is in no item. text is one sensor_pairs_check() accepted. */
int sensor_pair_of(const char *text, const char *sensor, char *ret_peer);
const char *sensor_driver_name(enum sensor_driver d);

struct sensor;
/* sysfs is the root of the sysfs drivers ("/sys"); loop makes replay start again at its end. */
int sensor_open(const struct sensor_spec *spec, const char *sysfs, bool loop, struct sensor **ret);
void sensor_close(struct sensor *s);
/* Take one reading. Errors: -ENOENT (file missing), -EIO (1-Wire CRC says NO), -EAGAIN
 * (DS18B20's power-on 85000), -EBADMSG (not a number, bad row: replay skips the row and the next
 * read goes on; ret_err says path:line: why), -ERANGE (implausible value), -ENODATA (replay at
 * its end, without loop). ret_err (may be NULL) is a static or per-sensor text for the log. */
int sensor_read(struct sensor *s, struct reading_value *ret, const char **ret_err);
const char *sensor_name(const struct sensor *s);

/* The parsers, apart, for tests and fuzzing: a sysfs integer file (millidegrees), a DS18B20
 * w1_slave text, a replay row. */
int sensor_parse_milli(const char *text, size_t len, double *ret);
int sensor_parse_w1(const char *text, size_t len, double *ret);
int sensor_parse_row(const char *line, size_t len, struct reading_value *ret);

#endif
