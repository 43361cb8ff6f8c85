/* iotsec-doctor fetch: the readings the relay queued for this doctor (SPEC 9), opened here with
 * the roots this doctor granted, each once.
 *
 * A batch is GET /api/fetch (emergencies first: the relay orders them), each reading opened
 * and checked (roots.c), refused if its (stream, seq) was shown before (seen.c, kept across
 * runs) or if it was not fresh when the relay received it (SPEC 8: freshness is judged against
 * received_ms, not against now: the point is reading it days later), printed (export.h), and
 * only then, with the output flushed and the seen set saved, taken off the queue with POST
 * /api/delivered: a crash in between shows a reading twice at worst (the second time refused as
 * seen), never loses one. Refused readings leave the queue too, or they would come back first in
 * every batch: the relay keeps them in its history (GET /api/history) for its retention. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "encoding.h"
#include "export.h"
#include "file.h"
#include "iotsec-doctor.h"
#include "log.h"

#define FETCH_BATCH_MAX 1000 /* RELAYD_FETCH_MAX: readings in one answer */
#define FETCH_RETRY_S	3    /* --follow: a relay that does not answer is asked again after */

static const char fetch_usage[] =
    "usage: iotsec-doctor fetch --dir D --relay URL [--relay-name N]\n"
    "                           [--format text|csv|json|fhir] [--follow] [--max N]\n"
    "Fetch the readings the relay at URL (https://HOST[:PORT]) keeps for this doctor,\n"
    "open them with the roots of D/roots (or the relay's copy, wrapped to the doctor's\n"
    "key, for a root missing here), and print each once: emergencies first, marked.\n"
    "A reading seen before (D/seen.json), not fresh when the relay received it, or that\n"
    "does not open is refused on standard error. What was printed or refused is taken\n"
    "off the relay's queue. --follow asks again every second until interrupted;\n"
    "--max N stops after N readings. The relay's certificate must be the home CA's\n"
    "(D/ca.crt) and named N (default: the first of sensord.relay). Exit status 1 when\n"
    "the relay failed or any reading was refused (besides one seen before).\n";

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

struct fetch {
	struct doctor_dir *d;
	struct relay *relay;
	struct doctor_roots roots;
	struct doctor_seen *seen;
	struct export_out out;
	char seen_path[DOCTOR_DIR_MAX + 16];
	int64_t fresh_ms;
	bool streams_asked; /* /api/streams this batch */
	uint64_t printed, refused, duplicates;
	/* Expiries said already, so --follow says each once. */
	struct said {
		uint8_t stream[STREAM_ID_LEN];
		int64_t at_ms;
		int64_t count;
	} said[64];
	size_t n_said;
};

/* relay_call(), logging in again once when the login has expired (a long --follow). */
static int call(struct fetch *f, const char *method, const char *path, json_t *body, json_t **ret)
{
	int r = relay_call(f->relay, method, path, body, ret), l;

	/* A relay restarted has forgotten the login too. */
	if (r == -EACCES && (l = relay_relogin(f->relay, f->d)) == 0)
		r = relay_call(f->relay, method, path, body, ret);
	else if (r == -EACCES && l == -EHOSTUNREACH)
		return l;
	return r == -EACCES ? relay_logged_out(f->relay, method, path) : r;
}

static const char *kit_of(struct fetch *f, const uint8_t stream[STREAM_ID_LEN], char *hex)
{
	struct root_slot *slot = doctor_roots_find(&f->roots, stream);

	hex_encode(stream, STREAM_ID_LEN, hex);
	return slot ? slot->rt.kit : hex;
}

/* "relay expired N readings of KIT (seq a..b), M of them undelivered", once per expiry. */
static void say_expired(struct fetch *f, json_t *expired)
{
	size_t i;
	json_t *e;

	json_array_foreach(expired, i, e)
	{
		const char *hex = json_string_value(json_object_get(e, "stream"));
		json_int_t count = json_integer_value(json_object_get(e, "count")),
			   undelivered = json_integer_value(json_object_get(e, "undelivered")),
			   first = json_integer_value(json_object_get(e, "first_seq")),
			   last = json_integer_value(json_object_get(e, "last_seq")),
			   at = json_integer_value(json_object_get(e, "at_ms"));
		uint8_t id[STREAM_ID_LEN];
		char name[2 * STREAM_ID_LEN + 1];
		bool again = false;

		if (hex == NULL || hex_decode(hex, id, STREAM_ID_LEN) < 0 || count <= 0)
			continue;
		for (size_t k = 0; k < f->n_said && !again; k++)
			again = memcmp(f->said[k].stream, id, STREAM_ID_LEN) == 0 &&
				f->said[k].at_ms == at && f->said[k].count == count;
		if (again)
			continue;
		if (f->n_said < sizeof(f->said) / sizeof(f->said[0])) {
			memcpy(f->said[f->n_said].stream, id, STREAM_ID_LEN);
			f->said[f->n_said].at_ms = at, f->said[f->n_said].count = count;
			f->n_said++;
		}
		fprintf(stderr,
			"iotsec-doctor fetch: relay expired %" PRId64
			" readings of %s (seq %" PRId64 "..%" PRId64 "), %" PRId64
			" of them undelivered\n",
			(int64_t)count, kit_of(f, id, name), (int64_t)first, (int64_t)last,
			(int64_t)undelivered);
	}
}

/* The roots the relay keeps for us (GET /api/streams), for those missing here: unwrapped with
 * the doctor's key, checked against their stream id, and kept in D/roots. Once a batch. */
static void roots_from_relay(struct fetch *f)
{
	json_t *o = NULL, *s;
	size_t i;

	if (f->streams_asked)
		return;
	f->streams_asked = true;
	if (call(f, "GET", "/api/streams", NULL, &o) < 0)
		return;
	json_array_foreach(json_object_get(o, "streams"), i, s)
	{
		const char *hex = json_string_value(json_object_get(s, "stream"));
		const char *wrapped = json_string_value(json_object_get(s, "wrapped"));
		json_t *granted = json_object_get(s, "granted_ms");
		uint8_t id[STREAM_ID_LEN];
		struct doctor_root rt;
		int r;

		if (hex == NULL || hex_decode(hex, id, STREAM_ID_LEN) < 0 ||
		    doctor_roots_find(&f->roots, id) != NULL)
			continue;
		if ((r = doctor_wrapped_open(f->d->key, wrapped, &rt)) < 0 ||
		    memcmp(rt.id, id, STREAM_ID_LEN) != 0) {
			fprintf(stderr,
				"iotsec-doctor fetch: the relay's copy of the root of stream %s "
				"does not open with %s/doctor.key (%s)\n",
				hex, f->d->dir,
				r < 0 ? "not wrapped to it" : "another stream's root");
			crypto_wipe(&rt, sizeof(rt));
			continue;
		}
		rt.issued_ms = json_is_integer(granted) ? json_integer_value(granted) : 0;
		if ((r = doctor_roots_keep(&f->roots, f->d->dir, &rt)) < 0)
			fprintf(stderr,
				"iotsec-doctor fetch: cannot keep the root of %s's stream %s: %s\n",
				rt.kit, hex, iotsec_strerror(r));
		else
			fprintf(stderr,
				"iotsec-doctor fetch: the root of %s's stream %s, missing here, "
				"taken from the relay\n",
				rt.kit, hex);
		crypto_wipe(&rt, sizeof(rt));
	}
	json_decref(o);
}

/* One reading of the answer. 0 printed, 1 refused as seen before, -1 refused (said); every one
 * of them leaves the queue. -EIO: the output failed (stop, nothing more leaves the queue). */
static int one(struct fetch *f, json_t *item, json_int_t *ret_id)
{
	struct reading_guard *guard = NULL;
	struct reading_header h;
	struct reading_value v;
	struct root_slot *slot = NULL;
	uint8_t *data = NULL, stream[STREAM_ID_LEN];
	const char *hex, *b64, *why = NULL;
	json_int_t id, seq, received;
	json_t *em;
	size_t len = 0;
	int r;

	*ret_id = 0;
	if (json_unpack(item, "{s:I, s:s, s:I, s:o, s:I, s:s !}", "id", &id, "stream", &hex, "seq",
			&seq, "emergency", &em, "received_ms", &received, "data", &b64) < 0 ||
	    id < 1 || !json_is_boolean(em) || seq < 1 || received < 0 ||
	    hex_decode(hex, stream, STREAM_ID_LEN) < 0) {
		fprintf(stderr,
			"iotsec-doctor fetch: the relay sent a malformed reading: skipped\n");
		return -1;
	}
	*ret_id = id;
	if (strlen(b64) > 2 * READING_MAX || b64_decode(b64, &data, &len) < 0 || len == 0 ||
	    len > READING_MAX) {
		why = "its data is not a reading in base64";
		r = -EBADMSG;
		goto out;
	}
	r = doctor_open(&f->roots, data, len, &slot, &h, &v, &why);
	if (r == -ENOKEY && !f->streams_asked) {
		roots_from_relay(f);
		r = doctor_open(&f->roots, data, len, &slot, &h, &v, &why);
	}
	if (r < 0)
		goto out;
	/* The relay files what it stores by the header it read: it must be this reading's. */
	if (memcmp(h.stream, stream, STREAM_ID_LEN) != 0 || (uint64_t)seq != h.seq ||
	    json_is_true(em) != ((h.flags & READING_F_EMERGENCY) != 0)) {
		why = "the relay's stream, seq or emergency flag are not the reading's";
		r = -EBADMSG;
		goto out;
	}
	if (doctor_seen_has(f->seen, h.stream, h.seq)) {
		why = "seen before (same device, stream and seq)";
		r = 1;
		goto out;
	}
	/* A guard for this reading alone: the seen set refuses the copies, across runs; the
	 * guard's own window of seqs would refuse an old reading fetched late. */
	if ((r = reading_guard_new(f->fresh_ms, &guard)) < 0 ||
	    (r = reading_guard_check(guard, &h, received)) < 0) {
		why = r == -IOTSEC_ESTALE ? "not fresh when the relay received it (its time and "
					    "the relay's differ by more than sensord.fresh_s)"
					  : NULL;
		goto out;
	}
	if ((r = export_put(&f->out, &(struct export_reading){&h, &v, received})) < 0) {
		if (r == -ENOTSUP) /* counted in f->out.unmapped, said at the end */
			r = doctor_seen_add(f->seen, h.stream, h.seq) < 0 ? -1 : 0;
		else
			r = -EIO;
		goto out;
	}
	if ((r = doctor_seen_add(f->seen, h.stream, h.seq)) < 0)
		why = NULL;
out:
	if (r != 0 && r != -EIO) {
		char name[2 * STREAM_ID_LEN + 1];

		fprintf(stderr,
			"iotsec-doctor fetch: reading %" PRId64 " (%s seq %" PRId64
			"): refused: %s\n",
			(int64_t)id, kit_of(f, stream, name), (int64_t)seq,
			why ? why : iotsec_strerror(r));
		r = r == 1 ? 1 : -1;
	}
	reading_guard_free(guard);
	free(data);
	return r;
}

/* One batch of at most max: printed, saved, then taken off the queue. *ret_more when the relay
 * holds more; *ret_n the readings it sent. -1 on a failure (said). */
static int batch(struct fetch *f, uint64_t max, bool *ret_more, size_t *ret_n)
{
	char path[64];
	json_t *o = NULL, *readings, *ids = NULL, *body = NULL, *done = NULL, *item;
	size_t i;
	int r, rc = -1;

	snprintf(path, sizeof(path), "/api/fetch?max=%" PRIu64, max);
	f->streams_asked = false;
	if ((r = call(f, "GET", path, NULL, &o)) < 0) {
		rc = r == -EHOSTUNREACH ? r : -1;
		goto out;
	}
	if (!json_is_array(readings = json_object_get(o, "readings")) ||
	    json_array_size(readings) > FETCH_BATCH_MAX) {
		fprintf(stderr,
			"iotsec-doctor fetch: the relay's answer has no list of readings\n");
		goto out;
	}
	if ((ids = json_array()) == NULL)
		goto out;
	json_array_foreach(readings, i, item)
	{
		json_int_t id;

		r = one(f, item, &id);
		if (r == -EIO) {
			fprintf(stderr, "iotsec-doctor fetch: cannot write the readings: %s\n",
				strerror(errno ? errno : EIO));
			goto out;
		}
		f->printed += r == 0, f->duplicates += r == 1, f->refused += r < 0;
		if (id > 0 && json_array_append_new(ids, json_integer(id)) < 0)
			goto out;
	}
	/* After the readings: a root taken from the relay names its kit. */
	say_expired(f, json_object_get(o, "expired"));
	/* Only what is printed and remembered leaves the queue. */
	if ((r = doctor_seen_save(f->seen, f->seen_path)) < 0) {
		fprintf(stderr, "iotsec-doctor fetch: %s: %s\n", f->seen_path, iotsec_strerror(r));
		goto out;
	}
	if (json_array_size(ids) > 0) {
		if ((body = json_pack("{s:O}", "ids", ids)) == NULL)
			goto out;
		/* Not marked, they come again, and are then refused as seen before. */
		if ((r = call(f, "POST", "/api/delivered", body, &done)) < 0) {
			rc = r == -EHOSTUNREACH ? r : -1;
			goto out;
		}
	}
	*ret_more = json_is_true(json_object_get(o, "more"));
	*ret_n = json_array_size(readings);
	rc = 0;
out:
	json_decref(o);
	json_decref(ids);
	json_decref(body);
	json_decref(done);
	return rc;
}

int cmd_fetch(int argc, char **argv)
{
	const char *dir = NULL, *url = NULL, *name_opt = NULL, *format = "text", *max_opt = NULL;
	struct iotsec_config cfg = {0};
	struct doctor_dir d = {0};
	struct fetch f = {0};
	struct sigaction sa = {0};
	char name[CERT_NAME_MAX], roots[DOCTOR_DIR_MAX + 16];
	enum export_format fmt;
	bool follow = false, have_cfg = false, begun = false, away = false;
	uint64_t max = UINT64_MAX, left;
	int r, rc = DOCTOR_EXIT_FAIL;

	for (int i = 1; i < argc; i++) {
		const char **slot = strcmp(argv[i], "--dir") == 0	   ? &dir
				    : strcmp(argv[i], "--relay") == 0	   ? &url
				    : strcmp(argv[i], "--relay-name") == 0 ? &name_opt
				    : strcmp(argv[i], "--format") == 0	   ? &format
				    : strcmp(argv[i], "--max") == 0	   ? &max_opt
									   : NULL;

		if (is_help(argv[i])) {
			fputs(fetch_usage, stdout);
			return DOCTOR_EXIT_OK;
		}
		if (strcmp(argv[i], "--follow") == 0) {
			follow = true;
			continue;
		}
		if (slot == NULL)
			return usage_error("fetch", fetch_usage, "unknown argument '%s'", argv[i]);
		if ((*slot = opt_value(argc, argv, &i)) == NULL)
			return usage_error("fetch", fetch_usage, "%s needs a value", argv[i]);
	}
	if (dir == NULL || url == NULL)
		return usage_error("fetch", fetch_usage, "--dir and --relay are required");
	if (strlen(dir) > DOCTOR_DIR_MAX)
		return usage_error("fetch", fetch_usage, "--dir: at most %d characters",
				   DOCTOR_DIR_MAX);
	if (export_format_parse(format, &fmt) < 0)
		return usage_error("fetch", fetch_usage,
				   "--format takes text, csv, json or fhir, not '%s'", format);
	if (max_opt && parse_u64(max_opt, 1, INT64_MAX, &max) < 0)
		return usage_error("fetch", fetch_usage,
				   "--max takes a whole number from 1, not '%s'", max_opt);
	if (strncmp(url, "https://", 8) != 0)
		return usage_error("fetch", fetch_usage,
				   "--relay takes https://HOST[:PORT], not '%s'", url);
	if (doctor_config("fetch", NULL, &cfg) < 0)
		goto out;
	have_cfg = true;
	if (relay_name_of("fetch", name_opt, &cfg, name) < 0 ||
	    doctor_dir_load("fetch", dir, &d) < 0)
		goto out;
	f.d = &d;
	f.fresh_ms = (int64_t)cfg.sensord.fresh_s * 1000;
	snprintf(roots, sizeof(roots), "%s/roots", dir);
	snprintf(f.seen_path, sizeof(f.seen_path), "%s/seen.json", dir);
	/* A doctor on a new machine has no roots yet: the relay's copies fill the folder. */
	if ((r = file_mkdirs(roots, 0700)) < 0) {
		fprintf(stderr, "iotsec-doctor fetch: %s: %s\n", roots, iotsec_strerror(r));
		goto out;
	}
	if (doctor_roots_load("fetch", dir, &f.roots) < 0)
		goto out;
	if ((r = doctor_seen_load(f.seen_path, &f.seen)) < 0) {
		fprintf(stderr, "iotsec-doctor fetch: %s: %s\n", f.seen_path,
			r == -EBADMSG ? "not a seen-readings file (move it away to start afresh: "
					"every reading the relay still queues would show again)"
				      : iotsec_strerror(r));
		goto out;
	}
	if (relay_login("fetch", &d, url, name, &f.relay) < 0)
		goto out;
	/* Interrupted, fetch ends between two batches, its output whole (the Bundle closed). */
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	export_out_init(&f.out, stdout, fmt);
	begun = true;
	for (left = max; left > 0 && !stop;) {
		bool more = false;
		size_t n = 0;

		r = batch(&f, left < FETCH_BATCH_MAX ? left : FETCH_BATCH_MAX, &more, &n);
		if (r == -EHOSTUNREACH && follow) {
			/* A relay restarted or a network away ends no --follow: what it keeps
			 * waits for us. Said once, not every few seconds all night. */
			if (!away)
				fprintf(
				    stderr,
				    "iotsec-doctor fetch: relay %s does not answer; trying again "
				    "every %d s (Ctrl-C to stop)\n",
				    name, FETCH_RETRY_S);
			away = true;
			relay_quiet(f.relay, true);
			nanosleep(&(struct timespec){FETCH_RETRY_S, 0}, NULL);
			continue;
		}
		if (r < 0)
			goto out;
		if (away)
			fprintf(stderr, "iotsec-doctor fetch: relay %s answers again\n", name);
		away = false;
		relay_quiet(f.relay, false);
		left -= n < left ? n : left;
		if (more)
			continue;
		if (!follow)
			break;
		/* Every second; a signal cuts the sleep short. */
		nanosleep(&(struct timespec){1, 0}, NULL);
	}
	rc = f.refused ? DOCTOR_EXIT_FAIL : DOCTOR_EXIT_OK;
out:
	if (begun && export_end(&f.out) < 0) {
		fprintf(stderr, "iotsec-doctor fetch: cannot write the readings\n");
		rc = DOCTOR_EXIT_FAIL;
	}
	if (f.out.unmapped)
		fprintf(stderr,
			"iotsec-doctor fetch: %zu readings of sensors FHIR has no code for were "
			"skipped (the relay's history keeps them)\n",
			f.out.unmapped);
	if (f.refused || f.duplicates)
		fprintf(stderr,
			"iotsec-doctor fetch: %" PRIu64 " readings shown, %" PRIu64
			" refused, %" PRIu64 " seen before\n",
			f.printed - f.out.unmapped, f.refused, f.duplicates);
	relay_free(f.relay);
	doctor_seen_free(f.seen);
	doctor_roots_free(&f.roots);
	doctor_dir_free(&d);
	if (have_cfg)
		config_free(&cfg);
	return rc;
}
