/* Sensor drivers (sensor.h): the list in the configuration, sysfs files and the replay CSV.
 * Every value read is in degrees C for the sysfs drivers (their files hold millidegrees). */
#include "sensor.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ca.h"
#include "cert.h"
#include "file.h"

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

static bool name_valid(const char *p, size_t len)
{
	if (len == 0 || len > READING_SENSOR_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!name_char(p[i]))
			return false;
	return true;
}

/* The name a sysfs sensor has without NAME=: the zone, the 1-Wire id, or for hwmon the
 * directory and the file less "_input" ("hwmon0/temp1_input": "hwmon0_temp1"). */
static int default_name(struct sensor_spec *s)
{
	const char *arg = s->arg, *slash = strchr(arg, '/'), *file;
	size_t dlen, flen;

	if (s->driver != SENSOR_HWMON) {
		if (!name_valid(arg, strlen(arg)))
			return -EINVAL;
		memcpy(s->name, arg, strlen(arg) + 1);
		return 0;
	}
	if (slash == NULL)
		return -EINVAL;
	dlen = (size_t)(slash - arg);
	file = strrchr(arg, '/') + 1;
	flen = strlen(file);
	if (flen > 6 && strcmp(file + flen - 6, "_input") == 0)
		flen -= 6;
	if (!name_valid(arg, dlen) || !name_valid(file, flen) ||
	    dlen + 1 + flen > READING_SENSOR_MAX)
		return -EINVAL;
	memcpy(s->name, arg, dlen);
	s->name[dlen] = '_';
	memcpy(s->name + dlen + 1, file, flen);
	s->name[dlen + 1 + flen] = '\0';
	return 0;
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
	/* A sysfs ARG names a zone, an hwmon file or a 1-Wire id: anything else ("tz0;room=...",
	 * "thermal_zone0/temp") names a file that is never there, found out only at run time. */
	if (s.driver != SENSOR_REPLAY &&
	    (s.arg[strspn(s.arg,
			  "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-/")] !=
		 '\0' ||
	     (s.driver != SENSOR_HWMON && strchr(s.arg, '/') != NULL))) {
		*ret_err = "a sysfs sensor's ARG has only letters, digits, '.', '_' and '-' (and "
			   "'/' for hwmon's HWMON/FILE)";
		return -EINVAL;
	}
	if (s.driver == SENSOR_HWMON &&
	    (strchr(s.arg, '/') == NULL || s.arg[strlen(s.arg) - 1] == '/')) {
		*ret_err = "hwmon:HWMON/FILE, e.g. hwmon:hwmon0/temp1_input";
		return -EINVAL;
	}
	if (s.name[0] == '\0' && s.driver != SENSOR_REPLAY && default_name(&s) < 0) {
		*ret_err = "a sensor's ARG makes no name of 1 to 31 of a-z, 0-9, '_' and '-': "
			   "give NAME=";
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
		/* Two sensors of one name would be one sensor to every reader. */
		for (size_t i = 0; i < n; i++)
			if (spec[n].name[0] != '\0' && strcmp(spec[i].name, spec[n].name) == 0) {
				*ret_err = "two sensors have the same name: give one NAME=";
				return -EINVAL;
			}
		n++;
		p += len;
	}
	memcpy(ret, spec, n * sizeof(spec[0]));
	*ret_n = n;
	return 0;
}

/* ---- the parsers ---- */

#define SENSOR_TEMP_MIN	  (-60.0)
#define SENSOR_TEMP_MAX	  150.0
#define SENSOR_W1_POWERON 85000 /* what a DS18B20 holds before its first conversion */
#define SENSOR_SYSFS_MAX  256	/* bytes of a sysfs file we read; a w1_slave is about 75 */
#define SENSOR_REPLAY_MAX (1024 * 1024)

/* A decimal integer filling p[0..len): optional '-', then digits. -ERANGE past int64. */
static int parse_int(const char *p, size_t len, int64_t *ret)
{
	bool neg = len > 0 && p[0] == '-';
	uint64_t v = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	size_t i = neg ? 1 : 0;

	if (i == len)
		return -EBADMSG;
	for (; i < len; i++) {
		unsigned d = (unsigned)(unsigned char)p[i] - '0';

		if (d > 9)
			return -EBADMSG;
		if (v > (lim - d) / 10) {
			/* Still say "not a number" for what is not one, however long. */
			while (++i < len)
				if ((unsigned)(unsigned char)p[i] - '0' > 9)
					return -EBADMSG;
			return -ERANGE;
		}
		v = v * 10 + d;
	}
	*ret = neg ? (int64_t)(0 - v) : (int64_t)v;
	return 0;
}

/* Degrees C from a sysfs millidegree file: an integer and at most one newline after it. */
int sensor_parse_milli(const char *text, size_t len, double *ret)
{
	int64_t v;
	int r;

	if (len > 0 && text[len - 1] == '\n')
		len--;
	if ((r = parse_int(text, len, &v)) < 0)
		return r;
	*ret = (double)v / 1000.0;
	return 0;
}

static bool hex_char(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Does line (len bytes) end with " crc=XX WORD" (or start with "crc=XX WORD")? */
static bool crc_says(const char *line, size_t len, const char *word)
{
	size_t wlen = strlen(word), tail = 7 + wlen; /* "crc=XX " WORD */
	const char *t;

	if (len < tail)
		return false;
	t = line + len - tail;
	return (t == line || t[-1] == ' ') && memcmp(t, "crc=", 4) == 0 && hex_char(t[4]) &&
	       hex_char(t[5]) && t[6] == ' ' && memcmp(t + 7, word, wlen) == 0;
}

/* A DS18B20's w1_slave, as the kernel's w1_therm writes it:
 *   72 01 4b 46 7f ff 0e 10 57 : crc=57 YES
 *   72 01 4b 46 7f ff 0e 10 57 t=23125
 * Two lines of printable text; the first ends "crc=XX YES" (-EIO for "NO": the read was
 * garbled on the wire), the second "t=" and the millidegrees (-EAGAIN for the power-on 85000). */
int sensor_parse_w1(const char *text, size_t len, double *ret)
{
	const char *nl, *line2, *t;
	size_t len1, len2;
	int64_t v;
	int r;

	for (size_t i = 0; i < len; i++)
		if ((text[i] < 0x20 || text[i] > 0x7e) && text[i] != '\n')
			return -EBADMSG;
	if ((nl = memchr(text, '\n', len)) == NULL)
		return -EBADMSG;
	len1 = (size_t)(nl - text);
	line2 = nl + 1;
	len2 = len - len1 - 1;
	if (len2 > 0 && line2[len2 - 1] == '\n')
		len2--;
	if (len2 == 0 || memchr(line2, '\n', len2) != NULL)
		return -EBADMSG;
	if (crc_says(text, len1, "NO"))
		return -EIO;
	if (!crc_says(text, len1, "YES"))
		return -EBADMSG;
	if ((t = memmem(line2, len2, "t=", 2)) == NULL || (t != line2 && t[-1] != ' '))
		return -EBADMSG;
	t += 2;
	if ((r = parse_int(t, len2 - (size_t)(t - line2), &v)) < 0)
		return r;
	if (v == SENSOR_W1_POWERON)
		return -EAGAIN;
	*ret = (double)v / 1000.0;
	return 0;
}

static bool printable(char c)
{
	return c >= 0x20 && c <= 0x7e;
}

/* A replay row "sensor,value[,unit]"; *why says what is wrong with a bad one. */
static int parse_row(const char *line, size_t len, struct reading_value *ret, const char **why)
{
	struct reading_value v = {0};
	const char *f[3], *end = line + len, *p = line;
	size_t flen[3], n = 0;
	char num[64], *stop;

	for (size_t i = 0; i < len; i++)
		if (!printable(line[i])) {
			*why = "a control character or a byte beyond ASCII";
			return -EBADMSG;
		}
	for (;;) {
		const char *comma = memchr(p, ',', (size_t)(end - p));
		const char *fe = comma ? comma : end;

		if (n == 3) {
			*why = "more than 3 fields (sensor,value[,unit])";
			return -EBADMSG;
		}
		f[n] = p;
		flen[n++] = (size_t)(fe - p);
		if (comma == NULL)
			break;
		p = comma + 1;
	}
	if (n < 2) {
		*why = "not sensor,value[,unit]";
		return -EBADMSG;
	}
	if (!name_valid(f[0], flen[0])) {
		*why = "the sensor is 1 to 31 of a-z, 0-9, '_' and '-'";
		return -EBADMSG;
	}
	memcpy(v.sensor, f[0], flen[0]);
	/* strtod() would take spaces, hex, "nan" and "inf": only a plain decimal gets to it. */
	if (flen[1] == 0 || flen[1] >= sizeof(num)) {
		*why = "the value is not a decimal number";
		return -EBADMSG;
	}
	memcpy(num, f[1], flen[1]);
	num[flen[1]] = '\0';
	if (strspn(num, "0123456789+-.eE") < flen[1]) {
		*why = "the value is not a decimal number";
		return -EBADMSG;
	}
	v.value = strtod(num, &stop);
	if (stop != num + flen[1] || !isfinite(v.value)) {
		*why = "the value is not a finite decimal number";
		return -EBADMSG;
	}
	if (n == 3) {
		if (flen[2] > READING_UNIT_MAX) {
			*why = "the unit is longer than 15 characters";
			return -EBADMSG;
		}
		memcpy(v.unit, f[2], flen[2]);
	}
	*ret = v;
	return 0;
}

int sensor_parse_row(const char *line, size_t len, struct reading_value *ret)
{
	const char *why;

	return parse_row(line, len, ret, &why);
}

/* ---- the drivers ---- */

struct sensor {
	struct sensor_spec spec;
	char name[READING_SENSOR_MAX + 1];
	char path[PATH_MAX];
	bool loop;
	/* replay: the file, where the next row starts, its line number, whether any row (good or
	 * bad) came since the start (so a file of comments alone cannot loop forever) */
	char *data;
	size_t len, pos;
	unsigned line;
	bool row_seen;
	char err[PATH_MAX + 128];
};

static bool plausible(double c)
{
	return c >= SENSOR_TEMP_MIN && c <= SENSOR_TEMP_MAX;
}

int sensor_open(const struct sensor_spec *spec, const char *sysfs, bool loop, struct sensor **ret)
{
	static const char *const fmt[] = {
	    [SENSOR_THERMAL] = "%s/class/thermal/%s/temp",
	    [SENSOR_HWMON] = "%s/class/hwmon/%s",
	    [SENSOR_DS18B20] = "%s/bus/w1/devices/%s/w1_slave",
	    [SENSOR_REPLAY] = "%.0s%s",
	};
	struct sensor *s = NULL;
	int r = -EINVAL, n;

	if (spec == NULL || (size_t)spec->driver >= sizeof(fmt) / sizeof(fmt[0]) ||
	    spec->arg[0] == '\0' || strnlen(spec->arg, sizeof(spec->arg)) == sizeof(spec->arg) ||
	    strstr(spec->arg, "..") != NULL ||
	    (spec->name[0] != '\0' &&
	     !name_valid(spec->name, strnlen(spec->name, sizeof(spec->name)))))
		goto out;
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		r = -ENOMEM;
		goto out;
	}
	s->spec = *spec;
	s->loop = loop;
	if (spec->name[0] != '\0')
		memcpy(s->name, spec->name, sizeof(s->name));
	else if (spec->driver == SENSOR_REPLAY)
		snprintf(s->name, sizeof(s->name), "replay");
	else if ((r = default_name(&s->spec)) < 0)
		goto out;
	else
		memcpy(s->name, s->spec.name, sizeof(s->name));
	n = snprintf(s->path, sizeof(s->path), fmt[spec->driver], sysfs ? sysfs : "/sys",
		     spec->arg);
	if (n < 0 || (size_t)n >= sizeof(s->path)) {
		r = -ENAMETOOLONG;
		goto out;
	}
	if (spec->driver == SENSOR_REPLAY &&
	    (r = file_read(s->path, SENSOR_REPLAY_MAX, &s->data, &s->len)) < 0)
		goto out;
	*ret = s;
	s = NULL;
	r = 0;
out:
	sensor_close(s);
	return r;
}

void sensor_close(struct sensor *s)
{
	if (s == NULL)
		return;
	free(s->data);
	free(s);
}

const char *sensor_name(const struct sensor *s)
{
	return s->name;
}

/* A fresh open, read and close each time: sysfs computes the value at read (a w1_slave read
 * starts a conversion), and a file that vanished (an unplugged probe) must say so. */
static int sysfs_read(const char *path, char *buf, size_t cap, size_t *ret_len)
{
	size_t len = 0;
	int fd, r = 0;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0)
		return -errno;
	/* One byte more than we take: a longer file is no value of ours. */
	while (len < cap + 1) {
		ssize_t n = read(fd, buf + len, cap + 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			break;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	if (r == 0 && len > cap)
		r = -EBADMSG;
	if (r == 0)
		*ret_len = len;
	return r;
}

static int read_sysfs(struct sensor *s, struct reading_value *ret, const char **ret_err)
{
	char buf[SENSOR_SYSFS_MAX + 1];
	const char *why;
	size_t len = 0;
	double c = 0;
	int r;

	if ((r = sysfs_read(s->path, buf, SENSOR_SYSFS_MAX, &len)) == 0)
		r = s->spec.driver == SENSOR_DS18B20 ? sensor_parse_w1(buf, len, &c)
						     : sensor_parse_milli(buf, len, &c);
	if (r == 0 && !plausible(c))
		r = -ERANGE;
	switch (r) {
	case 0:
		memset(ret, 0, sizeof(*ret));
		memcpy(ret->sensor, s->name, sizeof(ret->sensor));
		ret->value = c;
		memcpy(ret->unit, "C", 2);
		return 0;
	case -ENOENT:
		why = "missing";
		break;
	case -EBADMSG:
		why = s->spec.driver == SENSOR_DS18B20 ? "not a DS18B20 reading (w1_slave)"
						       : "not a number of millidegrees";
		break;
	case -EIO:
		why = s->spec.driver == SENSOR_DS18B20
			  ? "CRC check failed (\"NO\"): noise on the wire"
			  : strerror(EIO);
		break;
	case -EAGAIN:
		why = "85000, the power-on value: no conversion yet";
		break;
	case -ERANGE:
		why = "outside -60..150 C: no plausible temperature";
		break;
	default:
		why = strerror(-r);
		break;
	}
	snprintf(s->err, sizeof(s->err), "%s: %s", s->path, why);
	if (ret_err != NULL)
		*ret_err = s->err;
	return r;
}

static bool blank_or_comment(const char *p, size_t len)
{
	size_t i = 0;

	while (i < len && (p[i] == ' ' || p[i] == '\t'))
		i++;
	return i == len || p[i] == '#';
}

/* The next row; blank lines and comments pass unseen, a bad row costs one read. */
static int read_replay(struct sensor *s, struct reading_value *ret, const char **ret_err)
{
	struct reading_value v;
	const char *why = NULL, *line, *nl;
	size_t len;
	int r = 0;

	for (;;) {
		if (s->pos >= s->len) {
			if (!s->loop || !s->row_seen) {
				snprintf(s->err, sizeof(s->err), "%s: at its end", s->path);
				r = -ENODATA;
				break;
			}
			s->pos = 0, s->line = 0, s->row_seen = false;
		}
		line = s->data + s->pos;
		nl = memchr(line, '\n', s->len - s->pos);
		len = nl ? (size_t)(nl - line) : s->len - s->pos;
		s->pos += len + (nl ? 1 : 0);
		s->line++;
		if (len > 0 && line[len - 1] == '\r')
			len--;
		if (len <= SENSOR_CSV_LINE_MAX && blank_or_comment(line, len))
			continue;
		s->row_seen = true;
		if (len > SENSOR_CSV_LINE_MAX) {
			why = "longer than 256 bytes";
			r = -EBADMSG;
		} else if ((r = parse_row(line, len, &v, &why)) == 0 && strcmp(v.unit, "C") == 0 &&
			   !plausible(v.value)) {
			why = "outside -60..150 C: no plausible temperature";
			r = -ERANGE;
		}
		if (r < 0)
			snprintf(s->err, sizeof(s->err), "%s:%u: %s", s->path, s->line, why);
		break;
	}
	if (r < 0) {
		if (ret_err != NULL)
			*ret_err = s->err;
		return r;
	}
	if (s->spec.name[0] != '\0')
		memcpy(v.sensor, s->spec.name, sizeof(v.sensor));
	*ret = v;
	return 0;
}

int sensor_read(struct sensor *s, struct reading_value *ret, const char **ret_err)
{
	return s->spec.driver == SENSOR_REPLAY ? read_replay(s, ret, ret_err)
					       : read_sysfs(s, ret, ret_err);
}

/* ---- sensord.pairwise ---- */

/* The next item of text from *p: its sensor and peer spans; false at the end. */
static bool pair_next(const char **p, const char **sensor, size_t *slen, const char **peer,
		      size_t *plen)
{
	const char *q = *p + strspn(*p, " \t,");
	size_t n = strcspn(q, " \t,");
	const char *gt;

	if (n == 0)
		return false;
	*p = q + n;
	gt = memchr(q, '>', n);
	*sensor = q, *slen = gt ? (size_t)(gt - q) : n;
	*peer = gt ? gt + 1 : q + n, *plen = gt ? n - *slen - 1 : 0;
	return true;
}

static bool sensor_word_ok(const char *s, size_t n)
{
	if (n == 0 || n > READING_SENSOR_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
		      s[i] == '-'))
			return false;
	return true;
}

int sensor_pairs_check(const char *text, const char **ret_err)
{
	const char *p = text, *sensor, *peer;
	size_t slen, plen;
	char name[CERT_NAME_MAX];

	while (pair_next(&p, &sensor, &slen, &peer, &plen)) {
		const char *q = p, *s2, *p2;
		size_t s2len, p2len;

		if (!sensor_word_ok(sensor, slen) || plen == 0 || plen >= sizeof(name) ||
		    memchr(peer, '>', plen)) {
			*ret_err = "an item is SENSOR>DEVICE (sensor: 1 to 31 of a-z, 0-9, '_' and "
				   "'-'), items separated by spaces or commas";
			return -EINVAL;
		}
		memcpy(name, peer, plen);
		name[plen] = '\0';
		if (!ca_name_valid(name)) {
			*ret_err = "a device name is 1 to 63 of A-Z, a-z, 0-9, '.', '_' and '-'";
			return -EINVAL;
		}
		while (pair_next(&q, &s2, &s2len, &p2, &p2len))
			if (s2len == slen && memcmp(s2, sensor, slen) == 0) {
				*ret_err = "a sensor is sealed for one device only: named twice";
				return -EINVAL;
			}
	}
	return 0;
}

int sensor_pair_of(const char *text, const char *sensor, char *ret_peer)
{
	const char *p = text, *s, *peer;
	size_t slen, plen, len = strlen(sensor);

	while (p && pair_next(&p, &s, &slen, &peer, &plen))
		if (slen == len && memcmp(s, sensor, len) == 0 && plen > 0 &&
		    plen < CERT_NAME_MAX) {
			memcpy(ret_peer, peer, plen);
			ret_peer[plen] = '\0';
			return 0;
		}
	return -ENOENT;
}
