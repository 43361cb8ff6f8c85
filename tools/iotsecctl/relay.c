/* iotsecctl relay: what the cloud relay (iotsec-relayd, SPEC 9) holds and how it keeps up, from
 * its control socket's relay verb, with the broker's state from its status verb when the relay
 * verb does not carry it. Never a reading, a grant's wrapped root or a key: counts and ages only.
 *
 * The relay verb's reply, as shown here (a field missing is shown as unknown, never guessed):
 *   "store":"sqlite"|"postgresql", "bytes":N (size on disk), "readings":N (kept),
 *   "undelivered":N, "emergencies_undelivered":N, "oldest_undelivered_ms":T (0: none),
 *   "expired":N (removed by retention so far), "rate":R (readings stored per second over the
 *   last RELAYD_RATE_WINDOW_S seconds), "queues":[{"doctor":NAME,"undelivered":N,"oldest_ms":T,
 *   "expired":N?}], "now_ms":T? (the relay's clock, for the ages), "broker":"connected"|...?,
 *   "broker_error":TEXT? */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "iotsecctl.h"

static void relay_usage(FILE *f)
{
	fprintf(f,
		"usage: iotsecctl relay [--json]\n"
		"On the relay's machine: what iotsec-relayd keeps for the doctors. The broker's\n"
		"state, the readings stored per second, how many readings the store holds and\n"
		"its size on disk, how many wait for a doctor (emergencies among them) and the\n"
		"oldest of them, how many retention removed (expired), then one line a doctor:\n"
		"the readings waiting for them and the age of the oldest. --json: the relay's\n"
		"answer as one JSON object. Exit status 1 when iotsec-relayd does not answer.\n");
}

/* "45 s", "12 min", "3 h 2 min", "2 d 4 h": how long ago, to the unit that matters. */
static void fmt_age(int64_t ms, char *out, size_t len)
{
	int64_t s = ms < 0 ? 0 : ms / 1000;

	if (s < 60)
		snprintf(out, len, "%" PRId64 " s", s);
	else if (s < 3600)
		snprintf(out, len, "%" PRId64 " min", s / 60);
	else if (s < 86400)
		snprintf(out, len, "%" PRId64 " h %" PRId64 " min", s / 3600, s % 3600 / 60);
	else
		snprintf(out, len, "%" PRId64 " d %" PRId64 " h", s / 86400, s % 86400 / 3600);
}

/* "812 B", "12.3 MiB". */
static void fmt_size(double bytes, char *out, size_t len)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	size_t u = 0;

	while (bytes >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
		bytes /= 1024;
		u++;
	}
	snprintf(out, len, u == 0 ? "%.0f %s" : "%.1f %s", bytes, units[u]);
}

/* A count, or "?" when the relay did not say. */
static const char *count(json_t *v, char *buf, size_t len)
{
	if (!json_is_integer(v))
		return "?";
	snprintf(buf, len, "%lld", (long long)json_integer_value(v));
	return buf;
}

/* The age of a unix-ms time T against now_ms; "-" when there is none (0 or missing). */
static const char *age_of(json_t *t, int64_t now_ms, char *buf, size_t len)
{
	if (!json_is_integer(t) || json_integer_value(t) <= 0)
		return "-";
	fmt_age(now_ms - (int64_t)json_integer_value(t), buf, len);
	return buf;
}

static void print_relay(json_t *r)
{
	const char *broker = json_string_value(json_object_get(r, "broker"));
	const char *why = json_string_value(json_object_get(r, "broker_error"));
	const char *store = json_string_value(json_object_get(r, "store"));
	json_t *queues = json_object_get(r, "queues"), *q;
	char a[32], b[32], c[32], age[48], size[32];
	const char *old;
	struct timespec ts;
	int64_t now_ms;
	size_t i;

	/* Ages on the relay's clock when it says, ours otherwise (the same machine). */
	clock_gettime(CLOCK_REALTIME, &ts);
	now_ms = json_is_integer(json_object_get(r, "now_ms"))
		     ? (int64_t)json_integer_value(json_object_get(r, "now_ms"))
		     : (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	printf("broker       %s%s%s%s\n", broker ? broker : "?", why && why[0] ? " (" : "",
	       why && why[0] ? why : "", why && why[0] ? ")" : "");
	if (json_is_number(json_object_get(r, "rate")))
		printf("ingest       %.1f readings/s\n",
		       json_number_value(json_object_get(r, "rate")));
	else
		printf("ingest       ? readings/s\n");
	if (json_is_number(json_object_get(r, "bytes")))
		fmt_size(json_number_value(json_object_get(r, "bytes")), size, sizeof(size));
	else
		snprintf(size, sizeof(size), "?");
	printf("store        %s, %s, %s readings\n", store ? store : "?", size,
	       count(json_object_get(r, "readings"), a, sizeof(a)));
	old = age_of(json_object_get(r, "oldest_undelivered_ms"), now_ms, age, sizeof(age));
	printf("undelivered  %s (%s emergencies), oldest %s%s\n",
	       count(json_object_get(r, "undelivered"), a, sizeof(a)),
	       count(json_object_get(r, "emergencies_undelivered"), b, sizeof(b)), old,
	       strcmp(old, "-") != 0 ? " ago" : "");
	printf("expired      %s (removed by retention: relay.retention_s, relay.cap)\n",
	       count(json_object_get(r, "expired"), a, sizeof(a)));
	if (json_array_size(queues) == 0) {
		printf("no doctor granted yet\n");
		return;
	}
	printf("%-20s %10s %-16s %s\n", "DOCTOR", "WAITING", "OLDEST", "EXPIRED");
	json_array_foreach(queues, i, q)
	{
		const char *doctor = json_string_value(json_object_get(q, "doctor"));

		printf("%-20s %10s %-16s %s\n", doctor && doctor[0] ? doctor : "-",
		       count(json_object_get(q, "undelivered"), a, sizeof(a)),
		       age_of(json_object_get(q, "oldest_ms"), now_ms, age, sizeof(age)),
		       json_is_integer(json_object_get(q, "expired"))
			   ? count(json_object_get(q, "expired"), c, sizeof(c))
			   : "-");
	}
}

int cmd_relay(const struct iotsec_config *cfg, int argc, char **argv)
{
	bool as_json = false;
	const char *why = NULL;
	json_t *reply, *st;

	for (int a = 1; a < argc; a++) {
		if (strcmp(argv[a], "--json") == 0) {
			as_json = true;
		} else if (strcmp(argv[a], "-h") == 0 || strcmp(argv[a], "--help") == 0) {
			relay_usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "iotsecctl relay: unknown argument '%s'\n", argv[a]);
			relay_usage(stderr);
			return 2;
		}
	}
	if ((reply = ask(cfg->device.run_dir, "relayd", "relay", NULL, &why, NULL)) == NULL) {
		fprintf(stderr, "iotsecctl relay: iotsec-relayd: %s%s\n", why,
			strcmp(why, "not running") == 0
			    ? " (the relay runs on its own machine, not on a Pi)"
			    : "");
		return 1;
	}
	json_object_del(reply, "ok");
	json_object_del(reply, "v");
	json_object_del(reply, "id");
	/* The broker is the status verb's; take it from there when the relay verb leaves it out. */
	if (!json_is_string(json_object_get(reply, "broker")) &&
	    (st = ask(cfg->device.run_dir, "relayd", "status", NULL, &why, NULL)) != NULL) {
		if (json_is_string(json_object_get(st, "broker")))
			json_object_set(reply, "broker", json_object_get(st, "broker"));
		if (json_is_string(json_object_get(st, "broker_error")))
			json_object_set(reply, "broker_error", json_object_get(st, "broker_error"));
		json_decref(st);
	}
	if (as_json) {
		json_dumpf(reply, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		putchar('\n');
	} else {
		print_relay(reply);
	}
	json_decref(reply);
	return 0;
}
