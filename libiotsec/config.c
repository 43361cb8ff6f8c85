/* config: the table-driven loader of iotsec.conf over libconfig 1.5.
 *
 * libconfig parses; this file decides what is allowed. Two gaps of libconfig 1.5 are closed by a
 * small scan of the text before parsing: it keeps an integer that does not fit an int by silently
 * truncating it (4294967596 reads as 300), and it follows @include to any file. */
#include "config.h"
#include "sensor.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libconfig.h>

#include "ca.h"
#include "cert.h"
#include "file.h"
#include "keypool.h"
#include "log.h"

#define CONFIG_FILE_MAX	   (1024 * 1024)
#define CONFIG_LINES_MAX   USHRT_MAX /* libconfig keeps a setting's line in an unsigned short */
#define CONFIG_PATH_MAX	   256	     /* longest dotted name compared with the table */
#define CONFIG_DEPTH_MAX   8	     /* group nesting the scan follows; deeper than any row */
#define CONFIG_LITERAL_MAX 24	     /* an oversized integer as quoted in a message */

/* A row's value while parsing: the caller's struct sees nothing until the whole file passed. */
struct config_value {
	bool seen;
	bool overflow; /* written as an integer that does not fit an int */
	char literal[CONFIG_LITERAL_MAX];
	int i;
	char *s;
};

struct config_ctx {
	const char *name;
	const struct config_def *table;
	size_t n;
	struct config_value *v;
	char *err;
	size_t errlen;
};

static void config_err(struct config_ctx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void config_err(struct config_ctx *c, const char *fmt, ...)
{
	va_list ap;

	if (c->err == NULL || c->errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(c->err, c->errlen, fmt, ap);
	va_end(ap);
}

/* "FILE:LINE: setting 'PATH': PROBLEM"; returns -EINVAL for the caller to pass on. */
static int setting_err(struct config_ctx *c, unsigned line, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int setting_err(struct config_ctx *c, unsigned line, const char *path, const char *fmt, ...)
{
	char problem[CONFIG_ERR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(problem, sizeof(problem), fmt, ap);
	va_end(ap);
	config_err(c, "%s:%u: setting '%s': %s", c->name, line, path, problem);
	return -EINVAL;
}

static ssize_t find_row(const struct config_ctx *c, const char *path)
{
	for (size_t i = 0; i < c->n; i++)
		if (strcmp(c->table[i].name, path) == 0)
			return (ssize_t)i;
	return -1;
}

/* True when path names a group: some row lies below it. */
static bool is_group(const struct config_ctx *c, const char *path)
{
	size_t len = strlen(path);

	for (size_t i = 0; i < c->n; i++)
		if (strncmp(c->table[i].name, path, len) == 0 && c->table[i].name[len] == '.')
			return true;
	return false;
}

/* "prefix.name" (or "name" at the top) into out; false when it does not fit, and then it cannot
 * be a row either. */
static bool join_path(char *out, size_t outlen, const char *prefix, const char *name, size_t len)
{
	int n = prefix[0] != '\0' ? snprintf(out, outlen, "%s.%.*s", prefix, (int)len, name)
				  : snprintf(out, outlen, "%.*s", (int)len, name);

	return n >= 0 && (size_t)n < outlen;
}

/* "e5", "E+5", "e-5": what turns digits into a float for libconfig. */
static bool is_exponent(const char *p)
{
	return (p[0] == 'e' || p[0] == 'E') &&
	       (isdigit((unsigned char)p[1]) ||
		((p[1] == '+' || p[1] == '-') && isdigit((unsigned char)p[2])));
}

/* Skip one numeric literal as libconfig 1.5 reads it (decimal or hex integer with an optional L
 * or LL, or a float) and, when an integer does not fit an int and is the value of the row at
 * path, mark that row: libconfig would hand us a truncated value. */
static const char *scan_number(struct config_ctx *c, const char *p, const char *path)
{
	const char *start = p;
	unsigned long long v = 0;
	unsigned base = 10;
	bool neg = false;
	ssize_t row;

	if (*p == '+' || *p == '-')
		neg = *p++ == '-';
	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X') && isxdigit((unsigned char)p[2])) {
		base = 16;
		p += 2;
	}
	for (; base == 16 ? isxdigit((unsigned char)*p) : isdigit((unsigned char)*p); p++) {
		unsigned d = isdigit((unsigned char)*p)
				 ? (unsigned)(*p - '0')
				 : (unsigned)(tolower((unsigned char)*p) - 'a' + 10);
		v = v > (ULLONG_MAX - d) / base ? ULLONG_MAX : v * base + d;
	}
	if (base == 10 && (*p == '.' || is_exponent(p))) {
		/* A float: the walk refuses it by type wherever an integer is expected. */
		if (*p == '.')
			for (p++; isdigit((unsigned char)*p); p++)
				;
		if (is_exponent(p))
			for (p += 2; isdigit((unsigned char)*p); p++)
				;
		return p;
	}
	if (*p == 'L')
		p += p[1] == 'L' ? 2 : 1;

	if ((neg ? v <= (unsigned long long)INT_MAX + 1 : v <= INT_MAX) || path == NULL)
		return p;
	row = find_row(c, path);
	if (row >= 0 && c->table[row].type == CONFIG_INT) {
		struct config_value *val = &c->v[row];
		int len = (int)(p - start);

		val->overflow = true;
		if (len < CONFIG_LITERAL_MAX)
			snprintf(val->literal, sizeof(val->literal), "%.*s", len, start);
		else
			snprintf(val->literal, sizeof(val->literal), "%.*s...",
				 CONFIG_LITERAL_MAX - 4, start);
	}
	return p;
}

static unsigned line_at(const char *text, const char *p)
{
	unsigned line = 1;

	for (; text < p; text++)
		line += *text == '\n';
	return line;
}

/* Follow the tokens of libconfig 1.5 that matter here (comments, strings, names, groups, numbers)
 * to refuse @include and oversized integers, and refuse files libconfig would number wrongly. */
static int scan_text(struct config_ctx *c, const char *text)
{
	enum { SEEN_OTHER, SEEN_NAME, SEEN_ASSIGN } seen = SEEN_OTHER;
	char path[CONFIG_PATH_MAX] = "", value[CONFIG_PATH_MAX];
	size_t lens[CONFIG_DEPTH_MAX], name_len = 0;
	unsigned depth = 0, tracked = 0; /* tracked: the outer groups path names */
	const char *p = text, *name = NULL;

	if (line_at(text, text + strlen(text)) > CONFIG_LINES_MAX) {
		config_err(c, "%s: more than %u lines", c->name, CONFIG_LINES_MAX);
		return -EINVAL;
	}
	while (*p != '\0') {
		unsigned char ch = (unsigned char)*p;

		if (isspace(ch)) {
			p++;
			continue;
		}
		if (ch == '#' || (ch == '/' && p[1] == '/')) {
			p += strcspn(p, "\n");
			continue;
		}
		if (ch == '/' && p[1] == '*') {
			const char *end = strstr(p + 2, "*/");
			p = end != NULL ? end + 2 : p + strlen(p);
			continue;
		}
		if (ch == '=' || ch == ':') {
			seen = seen == SEEN_NAME ? SEEN_ASSIGN : SEEN_OTHER;
			p++;
			continue;
		}
		if (isalpha(ch) || ch == '*') {
			for (name = p++; isalnum((unsigned char)*p) ||
					 (*p != '\0' && strchr("-_*", *p) != NULL);
			     p++)
				;
			name_len = (size_t)(p - name);
			seen = SEEN_NAME;
			continue;
		}
		if (isdigit(ch) || ch == '.' ||
		    ((ch == '-' || ch == '+') && (isdigit((unsigned char)p[1]) || p[1] == '.'))) {
			bool named = seen == SEEN_ASSIGN && depth == tracked &&
				     join_path(value, sizeof(value), path, name, name_len);

			p = scan_number(c, p, named ? value : NULL);
			seen = SEEN_OTHER;
			continue;
		}
		if (ch == '"') {
			for (p++; *p != '\0' && *p != '"'; p++)
				if (*p == '\\' && p[1] != '\0')
					p++;
			p += *p == '"';
		} else if (ch == '{' || ch == '(' || ch == '[') {
			if (ch == '{' && seen == SEEN_ASSIGN && depth == tracked &&
			    tracked < CONFIG_DEPTH_MAX &&
			    join_path(value, sizeof(value), path, name, name_len)) {
				lens[tracked++] = strlen(path);
				memcpy(path, value, sizeof(path));
			}
			depth++;
			p++;
		} else if (ch == '}' || ch == ')' || ch == ']') {
			if (depth > 0 && depth-- == tracked)
				path[lens[--tracked]] = '\0';
			p++;
		} else if (ch == '@' && strncmp(p, "@include", 8) == 0) {
			/* One file for every daemon (SPEC 5): nothing else is read. */
			config_err(c, "%s:%u: @include is not supported", c->name,
				   line_at(text, p));
			return -EINVAL;
		} else {
			p++;
		}
		seen = SEEN_OTHER;
	}
	return 0;
}

/* Check one setting against its row and keep its value in c->v. */
static int take(struct config_ctx *c, size_t row, const config_setting_t *s, const char *path)
{
	const struct config_def *def = &c->table[row];
	struct config_value *v = &c->v[row];
	unsigned line = config_setting_source_line(s);
	int type = config_setting_type(s);
	long long ll;
	size_t len;
	const char *why;

	switch (def->type) {
	case CONFIG_INT:
		if (type != CONFIG_TYPE_INT && type != CONFIG_TYPE_INT64)
			return setting_err(c, line, path, "expected an integer");
		if (v->overflow)
			return setting_err(c, line, path, "%s is out of range %lld..%lld",
					   v->literal, def->min, def->max);
		ll = config_setting_get_int64(s);
		if (ll < def->min || ll > def->max || ll < INT_MIN || ll > INT_MAX)
			return setting_err(c, line, path, "%lld is out of range %lld..%lld", ll,
					   def->min, def->max);
		v->i = (int)ll;
		break;
	case CONFIG_BOOL:
		if (type != CONFIG_TYPE_BOOL)
			return setting_err(c, line, path, "expected true or false");
		v->i = config_setting_get_bool(s) != 0;
		break;
	case CONFIG_STRING:
		if (type != CONFIG_TYPE_STRING)
			return setting_err(c, line, path, "expected a string");
		len = strlen(config_setting_get_string(s));
		if ((long long)len > def->max)
			return setting_err(c, line, path, "string longer than %lld", def->max);
		if ((long long)len < def->min)
			return len == 0 ? setting_err(c, line, path, "must not be empty")
					: setting_err(c, line, path, "string shorter than %lld",
						      def->min);
		if (def->check && (why = def->check(config_setting_get_string(s))) != NULL)
			return setting_err(c, line, path, "%s", why);
		if ((v->s = strdup(config_setting_get_string(s))) == NULL)
			return -ENOMEM;
		break;
	}
	v->seen = true;
	return 0;
}

/* Every member of group must be a row or a group of rows; recursion ends with the table's depth. */
static int walk(struct config_ctx *c, const config_setting_t *group, const char *prefix)
{
	int count = config_setting_length(group);

	for (int i = 0; i < count; i++) {
		const config_setting_t *s = config_setting_get_elem(group, (unsigned)i);
		const char *name = config_setting_name(s) ? config_setting_name(s) : "";
		unsigned line = config_setting_source_line(s);
		char path[CONFIG_PATH_MAX];
		ssize_t row;
		int r;

		join_path(path, sizeof(path), prefix, name, strlen(name));
		if ((row = find_row(c, path)) >= 0)
			r = take(c, (size_t)row, s, path);
		else if (is_group(c, path))
			r = config_setting_is_group(s)
				? walk(c, s, path)
				: setting_err(c, line, path, "expected a group");
		else
			r = setting_err(c, line, path,
					config_setting_is_group(s) ? "unknown group"
								   : "unknown setting");
		if (r < 0)
			return r;
	}
	return 0;
}

static void values_free(struct config_value *v, size_t n)
{
	if (v == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i].s);
	free(v);
}

int config_parse(const char *text, const char *name, const struct config_def *table, size_t n,
		 void *dst, char *err, size_t errlen)
{
	struct config_ctx c = {
	    .name = name ? name : "-", .table = table, .n = n, .err = err, .errlen = errlen};
	config_t cf;
	int r;

	config_init(&cf);
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (text == NULL || (table == NULL && n > 0) || dst == NULL) {
		config_err(&c, "%s: nothing to parse", c.name);
		r = -EINVAL;
		goto out;
	}
	if ((c.v = calloc(n ? n : 1, sizeof(*c.v))) == NULL) {
		r = -ENOMEM;
		goto out;
	}
	if ((r = scan_text(&c, text)) < 0)
		goto out;
	if (config_read_string(&cf, text) != CONFIG_TRUE) {
		const char *why = config_error_text(&cf) ? config_error_text(&cf) : "unknown";

		/* libconfig's own word for most problems is already "syntax error". */
		if (strcmp(why, "syntax error") == 0)
			config_err(&c, "%s:%d: syntax error", c.name, config_error_line(&cf));
		/* The shipped file holds every group already: a group pasted in from the
		 * documentation at its end is the likely cause. */
		else if (strcmp(why, "duplicate setting name") == 0)
			config_err(&c,
				   "%s:%d: syntax error: a setting or group given twice (edit the "
				   "first one: the shipped file has every group already)",
				   c.name, config_error_line(&cf));
		else
			config_err(&c, "%s:%d: syntax error: %s", c.name, config_error_line(&cf),
				   why);
		r = -EINVAL;
		goto out;
	}
	if ((r = walk(&c, config_root_setting(&cf), "")) < 0)
		goto out;

	for (size_t i = 0; i < n; i++) {
		if (c.v[i].seen)
			continue;
		c.v[i].i = (int)table[i].def_int;
		if (table[i].type == CONFIG_STRING &&
		    (c.v[i].s = strdup(table[i].def_str ? table[i].def_str : "")) == NULL) {
			r = -ENOMEM;
			goto out;
		}
	}
	/* Everything passed: only now does dst change. */
	for (size_t i = 0; i < n; i++) {
		char *field = (char *)dst + table[i].offset;

		if (table[i].type == CONFIG_STRING) {
			memcpy(field, &c.v[i].s, sizeof(char *));
			c.v[i].s = NULL;
		} else {
			memcpy(field, &c.v[i].i, sizeof(int));
		}
	}
	r = 0;
out:
	if (r == -ENOMEM)
		config_err(&c, "%s: %s", c.name, strerror(ENOMEM));
	values_free(c.v, n);
	config_destroy(&cf);
	return r;
}

void config_release(const struct config_def *table, size_t n, void *dst)
{
	if (table == NULL || dst == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		char **field = (char **)((char *)dst + table[i].offset);

		if (table[i].type != CONFIG_STRING)
			continue;
		free(*field);
		*field = NULL;
	}
}

static const char *check_ipv4(const char *value)
{
	struct in_addr a;

	return inet_pton(AF_INET, value, &a) == 1 ? NULL : "not an IPv4 address";
}

/* The daemons run from / (systemd's working directory): a relative path would name a file
 * that depends on where --check-config was run, not where the daemon looks. */
static const char *check_absolute(const char *value)
{
	return value[0] == '/' ? NULL : "must be an absolute path";
}

/* Users and groups as the control sockets take them (ctl_server_allow): words such as "admin",
 * "@iotsec" or "@1002", separated by spaces; names as useradd takes them. */
static const char *check_ids(const char *value)
{
	static const char *const bad = "not a list of users and @groups, e.g. \"@iotsec admin\"";
	size_t len = 0;

	for (const char *p = value;; p++) {
		if (*p == ' ' || *p == '\0') {
			if (len > 32)
				return bad;
			len = 0;
			if (*p == '\0')
				return NULL;
			continue;
		}
		if (*p == '@' && len == 0 && (p[1] == ' ' || p[1] == '\0'))
			return bad;
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '_' || *p == '.' ||
		      (*p == '-' && len > 0 && p[-1] != '@') || (*p == '@' && len == 0)))
			return bad;
		len++;
	}
}

/* An absolute path, or "" for none. */
static const char *check_optional_path(const char *value)
{
	return value[0] == '\0' ? NULL : check_absolute(value);
}

static const char *check_sensors(const char *value)
{
	struct sensor_spec spec[SENSOR_MAX];
	const char *err = NULL;
	size_t n;

	return sensor_parse_list(value, spec, &n, &err) < 0 ? err : NULL;
}

/* Names as a reading carries them (a-z, 0-9, '_', '-', 1 to 31), separated by spaces or commas:
 * sensord routes a reading to the doctor by comparing its name with these words, so a word no
 * sensor can be named ("Pulse") would quietly send the pulse to the whole home instead. */
static const char *check_doctor_sensors(const char *value)
{
	static const char *const bad =
	    "a sensor name has 1 to 31 of a-z, 0-9, '_' and '-' (names separated by spaces)";
	const char *p = value;

	while (*p) {
		size_t n;

		p += strspn(p, " \t,");
		n = strcspn(p, " \t,");
		if (n > READING_SENSOR_MAX)
			return bad;
		for (size_t i = 0; i < n; i++)
			if (!((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= '0' && p[i] <= '9') ||
			      p[i] == '_' || p[i] == '-'))
				return bad;
		p += n;
	}
	return NULL;
}

static const char *check_pairwise(const char *value)
{
	const char *err = NULL;

	return sensor_pairs_check(value, &err) < 0 ? err : NULL;
}

/* Device names (ca_name_valid()) separated by spaces or commas: the relays a kit trusts. */
static const char *check_names(const char *value)
{
	const char *p = value;
	char name[CERT_NAME_MAX];

	while (*p) {
		size_t n;

		p += strspn(p, " \t,");
		if ((n = strcspn(p, " \t,")) == 0)
			break;
		if (n >= sizeof(name))
			return "a name is 1 to 63 characters";
		memcpy(name, p, n);
		name[n] = '\0';
		if (!ca_name_valid(name))
			return "not a name a certificate can carry (names separated by spaces)";
		p += n;
	}
	return NULL;
}

static const char *check_store(const char *value)
{
	return strcmp(value, "sqlite") == 0 || strcmp(value, "postgresql") == 0
		   ? NULL
		   : "sqlite or postgresql";
}

/* "", or a literal IPv4 or IPv6 address. */
static const char *check_address(const char *value)
{
	struct in6_addr a6;

	if (value[0] == '\0' || check_ipv4(value) == NULL || inet_pton(AF_INET6, value, &a6) == 1)
		return NULL;
	return "not an IPv4 or IPv6 address";
}

#define ROW_IDS(n, f, d, h)                                                                        \
	{                                                                                          \
		n, CONFIG_STRING, 0, 1024, 0, d, offsetof(struct iotsec_config, f), h, check_ids   \
	}
#define ROW_IPV4(n, f, d, h)                                                                       \
	{                                                                                          \
		n, CONFIG_STRING, 1, 4095, 0, d, offsetof(struct iotsec_config, f), h, check_ipv4  \
	}
#define ROW_PATH(n, f, d, h)                                                                       \
	{                                                                                          \
		n, CONFIG_STRING, 1, 4095, 0, d, offsetof(struct iotsec_config, f), h,             \
		    check_absolute                                                                 \
	}
#define ROW_STR(n, f, lo, hi, d, h)                                                                \
	{                                                                                          \
		n, CONFIG_STRING, lo, hi, 0, d, offsetof(struct iotsec_config, f), h, NULL         \
	}
#define ROW_INT(n, f, lo, hi, d, h)                                                                \
	{                                                                                          \
		n, CONFIG_INT, lo, hi, d, NULL, offsetof(struct iotsec_config, f), h, NULL         \
	}

const struct config_def iotsec_config_table[] = {
    ROW_STR("device.name", device.name, 0, 63, "",
	    "this device's name; empty: the name in its certificate"),
    ROW_PATH("device.cert", device.cert, "/etc/iotsec/device.crt",
	     "this device's certificate (PEM)"),
    ROW_PATH("device.key", device.key, "/etc/iotsec/device.key",
	     "this device's private key (PEM, mode 0600)"),
    ROW_PATH("device.ca", device.ca, "/etc/iotsec/ca.crt", "the home CA's certificate"),
    ROW_PATH("device.crl", device.crl, "/etc/iotsec/crl.pem", "the home CA's revocation list"),
    ROW_PATH("device.state_dir", device.state_dir, "/var/lib/iotsec",
	     "persistent state: the saved clock, the key dictionary"),
    ROW_PATH("device.run_dir", device.run_dir, "/run/iotsec", "the daemons' control sockets"),
    ROW_IDS("control.readers", control.readers, "@iotsec @iotsecd",
	    "users and @groups who may read the daemons' status, beside root"),
    ROW_INT("certd.interval", certd.interval, 1, 86400, 300,
	    "seconds between two checks of the certificate, key, CA and CRL"),
    ROW_INT("net.port", net.port, 1, 65532, 7450,
	    "UDP port of electd's broadcasts; keyd uses this port + 1, pingd + 2, sensord + 3"),
    ROW_INT("net.delta_t", net.delta_t, 1, 3600, 30,
	    "freshness window of signed messages, seconds"),
    ROW_IPV4("net.broadcast", net.broadcast, "255.255.255.255",
	     "IPv4 broadcast address of the home network"),
    ROW_INT("electd.tries", electd.tries, 1, 100, 3,
	    "IS_THERE_CONTROLLER queries before a device declares itself controller"),
    ROW_INT("electd.try_ms", electd.try_ms, 10, 60000, 1000, "milliseconds between two queries"),
    ROW_INT("electd.heartbeat_ms", electd.heartbeat_ms, 10, 600000, 5000,
	    "milliseconds between two announcements of the controller"),
    ROW_INT("electd.timeout_ms", electd.timeout_ms, 10, 3600000, 15000,
	    "milliseconds of silence after which nodes elect again"),
    ROW_INT("electd.hold_ms", electd.hold_ms, 0, 3600000, 60000,
	    "milliseconds a device keeps its controller after changing to it"),
    ROW_INT("keyd.ring_size", keyd.ring_size, 1, KEYPOOL_RING_MAX, KEYPOOL_RING_DEFAULT,
	    "keys in each device's ring (k)"),
    ROW_INT("keyd.pool_size", keyd.pool_size, 0, KEYPOOL_POOL_MAX, 0,
	    "keys in the pool (P); 0: the largest that meets the target"),
    ROW_INT("keyd.target_permille", keyd.target_permille, 1, 1000, 900,
	    "wanted probability, x 1000, that two rings share a key"),
    ROW_INT("keyd.collect_ms", keyd.collect_ms, 10, 600000, 3000,
	    "milliseconds the controller waits for contributed keys"),
    ROW_INT("keyd.announce_ms", keyd.announce_ms, 100, 600000, 5000,
	    "milliseconds between I_AM_ON_THE_NETWORK broadcasts"),
    ROW_IDS("keyd.clients", keyd.clients, "iotsec-pingd",
	    "users and @groups who may ask keyd for a new pool or set its quarantine, beside root"),
    ROW_INT("pingd.interval_ms", pingd.interval_ms, 100, 86400000, 1200000,
	    "milliseconds between two rounds of probes by the controller"),
    ROW_INT("pingd.retry_ms", pingd.retry_ms, 50, 3600000, 180000,
	    "milliseconds before a device that failed a probe is probed again"),
    ROW_INT("pingd.tries", pingd.tries, 1, 100, 3,
	    "failed probes before a device is suspected and other devices asked"),
    ROW_INT("pingd.timeout_ms", pingd.timeout_ms, 50, 600000, 3000,
	    "milliseconds a probe waits for its answer"),
    ROW_INT("pingd.helpers", pingd.helpers, 0, 16, 3,
	    "devices asked to probe a suspected device (indirect probes)"),
    ROW_INT("pingd.confirmations", pingd.confirmations, 0, 16, 2,
	    "signed confirmations by distinct devices an eviction needs (at most those asked)"),
    ROW_INT("pingd.hello_ms", pingd.hello_ms, 100, 600000, 5000,
	    "milliseconds between PINGD_HELLO broadcasts"),
    ROW_INT("pingd.auth_failures", pingd.auth_failures, 1, 100000, 5,
	    "authentication failures after which a device is labelled malicious"),
    ROW_INT("pingd.trust_weight_permille", pingd.trust_weight_permille, 0, 1000, 500,
	    "weight a of reputation in trust T = (1 - a) h + a R, x 1000"),
    ROW_INT("pingd.report_window_ms", pingd.report_window_ms, 100, 86400000, 1200000,
	    "milliseconds over which reports are counted for ballot stuffing"),
    ROW_INT("pingd.ban_ms", pingd.ban_ms, 100, 604800000, 3600000,
	    "milliseconds a flagged reporter is not heard"),
    ROW_INT("stream.start", stream.start, 0, INT32_MAX, 1767225600,
	    "unix time at which epoch 1 of every stream key begins (the same on every device)"),
    ROW_INT("stream.interval_s", stream.interval_s, 1, 2592000, 3600,
	    "seconds of one stream-key epoch (the same on every device)"),
    ROW_STR("sensord.broker", sensord.broker, 1, 255, "broker",
	    "the home broker's host name or address"),
    ROW_INT("sensord.broker_port", sensord.broker_port, 1, 65535, 8883,
	    "the home broker's TLS port"),
    ROW_STR("sensord.broker_name", sensord.broker_name, 1, 63, "broker",
	    "the name the broker's certificate must carry"),
    {"sensord.sensors", CONFIG_STRING, 0, 4095, 0, "",
     offsetof(struct iotsec_config, sensord.sensors),
     "sensors read, as [NAME=]DRIVER:ARG items (thermal, hwmon, ds18b20, replay)", check_sensors},
    ROW_PATH("sensord.sysfs", sensord.sysfs, "/sys", "root of the sysfs sensor drivers"),
    ROW_INT("sensord.interval_ms", sensord.interval_ms, 10, 86400000, 60000,
	    "milliseconds between two readings of each sensor"),
    {"sensord.doctor_sensors", CONFIG_STRING, 0, 1024, 0, "pulse spo2 body_temp",
     offsetof(struct iotsec_config, sensord.doctor_sensors),
     "sensors whose readings only the doctor may read", check_doctor_sensors},
    {"sensord.pairwise", CONFIG_STRING, 0, 4095, 0, "",
     offsetof(struct iotsec_config, sensord.pairwise),
     "sensors whose readings one device alone may read, as SENSOR>DEVICE items", check_pairwise},
    ROW_INT("sensord.alarm_below", sensord.alarm_below, 0, 300, 30,
	    "pulse per minute below which an emergency is raised"),
    {"sensord.alarm_output", CONFIG_STRING, 0, 4095, 0, "",
     offsetof(struct iotsec_config, sensord.alarm_output),
     "the alarm output: a GPIO value file (or any file) set to 1; empty: none",
     check_optional_path},
    {"sensord.replay_loop", CONFIG_BOOL, 0, 1, 0, NULL,
     offsetof(struct iotsec_config, sensord.replay_loop),
     "the replay driver starts its file again at the end", NULL},
    ROW_INT("sensord.spool_max", sensord.spool_max, 10, 10000000, 100000,
	    "readings the spool keeps while the broker is away"),
    ROW_INT("sensord.spool_sync_ms", sensord.spool_sync_ms, 0, 10000, 200,
	    "longest a spooled reading waits before it is on disk"),
    ROW_INT("sensord.fresh_s", sensord.fresh_s, 1, 86400, 300,
	    "readers refuse a reading timed further than this from their clock"),
    ROW_INT("sensord.resync_ms", sensord.resync_ms, 50, 600000, 1000,
	    "milliseconds a resynchronizing device waits for its neighbours"),
    ROW_INT("sensord.resync_tries", sensord.resync_tries, 1, 100, 5,
	    "requests to neighbours before a device keeps its own clock"),
    ROW_INT("sensord.max_inflight", sensord.max_inflight, 1, 65535, 100,
	    "readings awaiting the broker's acknowledgement at once"),
    {"sensord.relay", CONFIG_STRING, 0, 1024, 0, "", offsetof(struct iotsec_config, sensord.relay),
     "relays (their certificates' names) whose receipts take doctor readings off the spool; "
     "empty: the broker's acknowledgement does",
     check_names},
    ROW_INT("sensord.receipt_s", sensord.receipt_s, 1, 86400, 30,
	    "seconds after which a doctor reading without a relay's receipt is sent again"),
    ROW_STR("relay.broker", relay.broker, 1, 255, "broker",
	    "the home broker's host name or address (iotsec-relayd)"),
    ROW_INT("relay.broker_port", relay.broker_port, 1, 65535, 8883, "the home broker's TLS port"),
    ROW_STR("relay.broker_name", relay.broker_name, 1, 63, "broker",
	    "the name the broker's certificate must carry"),
    {"relay.share", CONFIG_STRING, 0, 63, 0, "", offsetof(struct iotsec_config, relay.share),
     "MQTT shared subscription group of several relays on one PostgreSQL store; empty: none",
     check_names},
    {"relay.store", CONFIG_STRING, 1, 15, 0, "sqlite", offsetof(struct iotsec_config, relay.store),
     "where readings are kept: sqlite or postgresql", check_store},
    ROW_PATH("relay.database", relay.database, "/var/lib/iotsec/relayd/relay.db",
	     "the SQLite store (relay.store = \"sqlite\")"),
    ROW_STR("relay.pg", relay.pg, 1, 1023, "dbname=iotsec",
	    "libpq connection string of the PostgreSQL store (relay.store = \"postgresql\")"),
    ROW_INT("relay.commit_ms", relay.commit_ms, 1, 10000, 20,
	    "milliseconds a received reading waits at most for its group commit"),
    ROW_INT("relay.batch_max", relay.batch_max, 1, 100000, 1000,
	    "readings committed in one transaction at most"),
    ROW_INT("relay.retention_s", relay.retention_s, 60, INT32_MAX, 2592000,
	    "seconds a reading is kept; older ones expire and are counted"),
    ROW_INT("relay.cap", relay.cap, 1, INT32_MAX, 1000000,
	    "readings kept per patient at most; the oldest expire and are counted"),
    ROW_INT("relay.http_port", relay.http_port, 0, 65535, 8443,
	    "TCP port of the doctors' HTTPS interface and page; 0: none"),
    {"relay.http_address", CONFIG_STRING, 0, 63, 0, "",
     offsetof(struct iotsec_config, relay.http_address),
     "address the HTTPS interface listens on; empty: every address", check_address},
    ROW_PATH("relay.web_dir", relay.web_dir, "/usr/share/iotsec/web",
	     "the doctor's page: static files served as they are"),
    ROW_INT("relay.session_s", relay.session_s, 60, 604800, 28800,
	    "seconds a doctor's login lasts"),
    ROW_PATH("dictd.path", dictd.path, "/var/lib/iotsec/dictd/keys.dict",
	     "the key dictionary (only iotsec-dictd opens it)"),
    ROW_PATH("dictd.key_file", dictd.key_file, "/etc/credstore/iotsec-dict.key",
	     "the dictionary key, 32 bytes, root-only; a systemd credential dict.key wins"),
    ROW_IDS("dictd.clients", dictd.clients, "iotsec-keyd iotsec-sensord",
	    "users and @groups who may store and look up keys in the dictionary"),
};

const size_t iotsec_config_table_len = sizeof(iotsec_config_table) / sizeof(iotsec_config_table[0]);

int config_load(const char *path, struct iotsec_config *cfg, char *err, size_t errlen)
{
	char *text = NULL;
	size_t len = 0;
	int r;

	if ((r = file_read(path, CONFIG_FILE_MAX, &text, &len)) < 0) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "%s: cannot read: %s", path,
				 r == -EINVAL  ? "not a regular file" /* file_read's word for it */
				 : r == -EFBIG ? "too large for a configuration"
					       : iotsec_strerror(r));
		goto out;
	}
	if (strlen(text) != len) {
		/* libconfig would stop at the NUL and ignore the rest without a word. */
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "%s:%u: NUL byte in the file", path,
				 line_at(text, text + strlen(text)));
		r = -EINVAL;
		goto out;
	}
	r = config_load_string(text, path, cfg, err, errlen);
out:
	free(text);
	return r;
}

int config_load_string(const char *text, const char *name, struct iotsec_config *cfg, char *err,
		       size_t errlen)
{
	return config_parse(text, name, iotsec_config_table, iotsec_config_table_len, cfg, err,
			    errlen);
}

void config_free(struct iotsec_config *cfg)
{
	config_release(iotsec_config_table, iotsec_config_table_len, cfg);
}
