/* iotsecctl readings: the sensor readings of the home that iotsec-sensord opened (the group
 * stream, SPEC 5.6), the last ones or, with --follow, each as it comes. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ctl.h"
#include "daemon.h"
#include "iotsecctl.h"
#include "log.h"
#include "proto.h"

static void readings_usage(FILE *f)
{
	fprintf(f, "usage: iotsecctl readings [--follow] [--json]\n"
		   "The sensor readings of the home that iotsec-sensord opened, oldest first, one\n"
		   "a line: TIME DEVICE SENSOR VALUE UNIT, and EMERGENCY for an alarm record.\n"
		   "--follow: then each new reading as it comes, until interrupted. --json: the\n"
		   "reply as one JSON object; with --follow, one JSON object a line.\n");
}

/* "2026-01-02 10:00:00 UTC pi2 thermal0 41.5 C": the reading's own time (the sender's clock). */
static void print_reading(json_t *r, bool as_json)
{
	json_t *t = json_object_get(r, "time");
	const char *unit = json_string_value(json_object_get(r, "unit"));
	const char *to = json_string_value(json_object_get(r, "to"));
	char when[64] = "-";

	if (as_json) {
		json_t *o = json_deep_copy(r);

		/* An event carries its name; the line is the reading alone. */
		json_object_del(o, "event");
		json_dumpf(o, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
		putchar('\n');
		json_decref(o);
		return;
	}
	if (json_is_integer(t)) {
		long long ms = json_integer_value(t);
		time_t s = (time_t)(ms / 1000);
		struct tm tm;

		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", gmtime_r(&s, &tm));
	}
	printf("%s %s %s %.15g %s%s%s\n", when,
	       json_string_value(json_object_get(r, "device")) ?: "-",
	       json_string_value(json_object_get(r, "sensor")) ?: "-",
	       json_number_value(json_object_get(r, "value")), unit && unit[0] ? unit : "-",
	       json_is_true(json_object_get(r, "emergency")) ? " EMERGENCY" : "",
	       to && to[0] ? " (for us alone)" : "");
}

/* The same reading as one already printed: an event that came while the list was on its way. */
static bool already_listed(json_t *list, json_t *ev)
{
	static const char *const keys[] = {"device", "sensor", "seq", "epoch", "time"};
	json_t *r;
	size_t i;

	json_array_foreach(list, i, r)
	{
		bool same = true;

		for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]) && same; k++)
			same =
			    json_equal(json_object_get(r, keys[k]), json_object_get(ev, keys[k]));
		if (same)
			return true;
	}
	return false;
}

static const char *why_of(int r)
{
	return r == -ENOENT || r == -ECONNREFUSED ? "not running (is iotsec-sensord started?)"
						  : iotsec_strerror(r);
}

int cmd_readings(const struct iotsec_config *cfg, int argc, char **argv)
{
	static const char *const events[] = {PROTO_EV_READING, NULL};
	bool as_json = false, follow = false;
	struct ctl_client *c = NULL;
	json_t *reply = NULL, *r;
	char path[PATH_MAX];
	int rc = 1, e;
	size_t i;

	for (int a = 1; a < argc; a++) {
		if (strcmp(argv[a], "--json") == 0) {
			as_json = true;
		} else if (strcmp(argv[a], "--follow") == 0 || strcmp(argv[a], "-f") == 0) {
			follow = true;
		} else if (strcmp(argv[a], "-h") == 0 || strcmp(argv[a], "--help") == 0) {
			readings_usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "iotsecctl readings: unknown argument '%s'\n", argv[a]);
			readings_usage(stderr);
			return 2;
		}
	}
	if ((e = daemon_socket_path(cfg->device.run_dir, "sensord", path, sizeof(path))) < 0 ||
	    (e = ctl_client_connect(path, &c)) < 0) {
		fprintf(stderr, "iotsecctl readings: iotsec-sensord: %s\n", why_of(e));
		goto out;
	}
	/* Subscribed before asking, so that no reading falls between the list and the events. */
	if (follow && (e = ctl_client_subscribe(c, events, CALL_TIMEOUT_MS)) < 0) {
		fprintf(stderr, "iotsecctl readings: iotsec-sensord: %s\n", why_of(e));
		goto out;
	}
	if ((e = ctl_client_call(c, PROTO_SENSORD_READINGS, NULL, CALL_TIMEOUT_MS, &reply)) < 0 ||
	    ctl_reply_error(reply)) {
		fprintf(stderr, "iotsecctl readings: iotsec-sensord: %s\n",
			e < 0 ? why_of(e) : ctl_reply_error(reply));
		goto out;
	}
	if (as_json && !follow) {
		json_t *o = json_pack("{s:O}", "readings", json_object_get(reply, "readings"));

		json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		putchar('\n');
		json_decref(o);
		rc = 0;
		goto out;
	}
	if (!as_json && !follow && json_array_size(json_object_get(reply, "readings")) == 0)
		printf("no reading yet\n");
	json_array_foreach(json_object_get(reply, "readings"), i, r) print_reading(r, as_json);
	fflush(stdout);
	rc = 0;
	while (follow) {
		json_t *ev = NULL;

		if ((e = ctl_client_next_event(c, -1, &ev)) < 0) {
			fprintf(stderr, "iotsecctl readings: iotsec-sensord: %s\n",
				e == -ECONNRESET || e == -EPIPE ? "stopped" : iotsec_strerror(e));
			rc = 1;
			break;
		}
		if (strcmp(json_string_value(json_object_get(ev, "event")) ?: "",
			   PROTO_EV_READING) == 0 &&
		    !already_listed(json_object_get(reply, "readings"), ev)) {
			print_reading(ev, as_json);
			fflush(stdout);
		}
		json_decref(ev);
	}
out:
	json_decref(reply);
	ctl_client_free(c);
	return rc;
}
