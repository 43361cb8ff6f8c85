/* iotsec-doctor read: open a kit's sealed readings (reading.h) with the roots this doctor
 * granted. The readings come as hex, one a line (mosquitto_sub -F %x, or a topic first and the
 * hex last); each is opened with the key of its epoch, computed from the root (the doctor keeps
 * it, so readings fetched days later still open), and a (device, stream, seq) seen before in the
 * run is refused: a copy replayed from the relay or the broker shows once. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "encoding.h"
#include "iotsec-doctor.h"
#include "log.h"
#include "reading.h"

#define ROOTS_MAX    4096	       /* files in D/roots */
#define LINE_MAX_HEX (2 * READING_MAX) /* the hex of the longest reading */

static const char read_usage[] =
    "usage: iotsec-doctor read --dir D [--json]\n"
    "Open the sealed readings of the kits this doctor granted (D/roots), one reading a\n"
    "line of hex on standard input, the last word of the line (mosquitto_sub -F %x, or\n"
    "-F '%t %x'). Prints each as TIME DEVICE SENSOR VALUE UNIT, with EMERGENCY and its\n"
    "seq for an emergency record, or with --json one object a line. A reading that does\n"
    "not open, or that was seen before (same device, stream and seq), is refused with\n"
    "its line number on standard error. Exit status 1 when any was refused.\n";

struct root_slot {
	struct doctor_root rt;
	struct stream *s; /* at the epoch last asked for */
};

/* Readings already shown. A reading opens only under the root of its kit, so its root (its
 * slot) stands for its device and stream: (slot, seq) in open addressing, seq 0 an empty place
 * (a reading's seq is at least 1), grown at half full up to SEEN_MAX readings a run. */
#define SEEN_MAX (1u << 21)
struct seen_entry {
	uint64_t seq;
	uint32_t slot;
};
struct seen {
	struct seen_entry *e;
	size_t cap, n;
};

static struct seen_entry *seen_place(struct seen_entry *e, size_t cap, uint32_t slot, uint64_t seq)
{
	uint64_t x = (seq ^ ((uint64_t)slot << 40)) * 0x9e3779b97f4a7c15ULL;
	size_t i = (size_t)(x >> 20) & (cap - 1);

	while (e[i].seq != 0 && !(e[i].seq == seq && e[i].slot == slot))
		i = (i + 1) & (cap - 1);
	return &e[i];
}

/* 0 when new (and now remembered), -IOTSEC_EREPLAY when seen, -ENOBUFS past SEEN_MAX, -ENOMEM. */
static int seen_add(struct seen *t, uint32_t slot, uint64_t seq)
{
	struct seen_entry *place;

	if (2 * (t->n + 1) > t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 1024;
		struct seen_entry *e;

		if (t->n >= SEEN_MAX)
			return -ENOBUFS;
		if ((e = calloc(cap, sizeof(*e))) == NULL)
			return -ENOMEM;
		for (size_t i = 0; i < t->cap; i++)
			if (t->e[i].seq != 0)
				*seen_place(e, cap, t->e[i].slot, t->e[i].seq) = t->e[i];
		free(t->e);
		t->e = e, t->cap = cap;
	}
	place = seen_place(t->e, t->cap, slot, seq);
	if (place->seq != 0)
		return -IOTSEC_EREPLAY;
	place->seq = seq, place->slot = slot;
	t->n++;
	return 0;
}

/* Every root in D/roots: KIT.json (the kit's current grant) and KIT.<stream>.json (earlier
 * ones). A file that is not a root, or is readable by others, is named and skipped. */
static int load_roots(const char *dir, struct root_slot **ret, size_t *ret_n)
{
	char path[4096];
	struct root_slot *slots = NULL;
	size_t n = 0;
	struct dirent *de;
	DIR *dp;
	int r;

	snprintf(path, sizeof(path), "%.*s/roots", DOCTOR_DIR_MAX, dir);
	if ((dp = opendir(path)) == NULL) {
		fprintf(stderr, "iotsec-doctor read: %s: %s (no grant made yet?)\n", path,
			strerror(errno));
		return -1;
	}
	if ((slots = calloc(ROOTS_MAX, sizeof(*slots))) == NULL) {
		closedir(dp);
		return -1;
	}
	while ((de = readdir(dp)) != NULL && n < ROOTS_MAX) {
		size_t len = strlen(de->d_name);

		if (len < 6 || de->d_name[0] == '.' || strcmp(de->d_name + len - 5, ".json") != 0)
			continue;
		snprintf(path, sizeof(path), "%.*s/roots/%.255s", DOCTOR_DIR_MAX, dir, de->d_name);
		if ((r = doctor_root_load(path, &slots[n].rt)) < 0) {
			fprintf(stderr, "iotsec-doctor read: skipping %s: %s\n", path,
				r == -EBADMSG ? "not a root file" : iotsec_strerror(r));
			continue;
		}
		n++;
	}
	closedir(dp);
	if (n == 0)
		fprintf(stderr, "iotsec-doctor read: no root in %s/roots: no reading will open\n",
			dir);
	*ret = slots, *ret_n = n;
	return 0;
}

static void free_roots(struct root_slot *slots, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		stream_free(slots[i].s);
		crypto_wipe(&slots[i].rt, sizeof(slots[i].rt));
	}
	free(slots);
}

/* The stream of root slot at epoch e: the key of e, computed from the root. */
static int stream_at(struct root_slot *slot, uint32_t e, struct stream **ret)
{
	uint8_t key[CRYPTO_KEY_LEN];
	int r;

	if (slot->s && stream_current(slot->s) == e) {
		*ret = slot->s;
		return 0;
	}
	stream_free(slot->s);
	slot->s = NULL;
	if ((r = stream_key_at(slot->rt.root, slot->rt.start, e, key)) == 0 &&
	    (r = stream_from_key(slot->rt.id, e, key, NULL, &slot->s)) == 0)
		*ret = slot->s;
	crypto_wipe(key, sizeof(key));
	return r;
}

static void print_value(const struct reading_header *h, const struct reading_value *v, bool as_json)
{
	char hex[2 * STREAM_ID_LEN + 1];

	if (as_json) {
		json_t *o;

		hex_encode(h->stream, STREAM_ID_LEN, hex);
		o = json_pack("{s:s, s:s, s:f, s:s, s:I, s:I, s:I, s:b, s:s}", "device", h->device,
			      "sensor", v->sensor, "value", v->value, "unit", v->unit, "time",
			      (json_int_t)h->time_ms, "seq", (json_int_t)h->seq, "epoch",
			      (json_int_t)h->epoch, "emergency", v->emergency, "stream", hex);
		if (o && v->emergency)
			json_object_set_new(o, "threshold", json_real(v->threshold));
		if (o) {
			json_dumpf(o, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
			putchar('\n');
		}
		json_decref(o);
	} else {
		time_t s = (time_t)(h->time_ms / 1000);
		char when[64];
		struct tm tm;

		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", gmtime_r(&s, &tm));
		printf("%s %s %s %.15g %s", when, h->device, v->sensor, v->value,
		       v->unit[0] ? v->unit : "-");
		if (v->emergency)
			printf(" EMERGENCY (below %.15g; seq %" PRIu64 ")", v->threshold, h->seq);
		putchar('\n');
	}
	fflush(stdout);
}

/* One line: its last word is the reading's hex. 0 and printed, or why it is refused. */
static int read_one(char *line, struct root_slot *slots, size_t n, struct seen *seen, bool as_json,
		    const char **ret_why)
{
	uint8_t buf[READING_MAX], pt[READING_PLAIN_MAX];
	struct reading_header h, opened;
	struct reading_value v;
	struct root_slot *slot = NULL;
	struct stream *s = NULL;
	char *word, *end;
	size_t len, hlen, ptlen = 0;
	int r;

	end = line + strlen(line);
	while (end > line &&
	       (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' ' || end[-1] == '\t'))
		*--end = '\0';
	for (word = end; word > line && word[-1] != ' ' && word[-1] != '\t'; word--)
		;
	len = strlen(word) / 2;
	*ret_why = NULL;
	if (strlen(word) % 2 != 0 || len == 0 || len > sizeof(buf) ||
	    hex_decode(word, buf, len) < 0) {
		*ret_why = len > sizeof(buf) ? "longer than any reading" : "not a reading in hex";
		return -EBADMSG;
	}
	if ((r = reading_header_parse(buf, len, &h, &hlen)) < 0) {
		*ret_why = "not a sealed reading (malformed header)";
		return r;
	}
	for (size_t i = 0; i < n && slot == NULL; i++)
		if (memcmp(slots[i].rt.id, h.stream, STREAM_ID_LEN) == 0)
			slot = &slots[i];
	if (slot == NULL) {
		*ret_why = h.kind == READING_DOCTOR ? "of a stream this doctor did not grant"
						    : "not a doctor stream (the home's group)";
		return -ENOKEY;
	}
	if (h.epoch < slot->rt.start) {
		*ret_why = "of an epoch before the grant's start";
		return -ERANGE;
	}
	if ((r = stream_at(slot, h.epoch, &s)) < 0)
		return r;
	if ((r = reading_open(s, buf, len, &opened, pt, &ptlen)) < 0) {
		*ret_why = r == -EBADMSG ? "does not open (forged, damaged or another key)" : NULL;
		return r;
	}
	r = reading_value_parse(pt, ptlen, &v);
	crypto_wipe(pt, sizeof(pt));
	if (r < 0) {
		*ret_why = "opens, but its record is malformed";
		return r;
	}
	/* Only the kit and this doctor hold the key: a reading in another name is not the kit's. */
	if (strcmp(opened.device, slot->rt.kit) != 0) {
		*ret_why = "sealed in the name of another device than the kit granted";
		return -IOTSEC_EIDENTITY;
	}
	if (v.emergency != ((opened.flags & READING_F_EMERGENCY) != 0)) {
		*ret_why = "its emergency flag and its record disagree";
		return -EBADMSG;
	}
	if ((r = seen_add(seen, (uint32_t)(slot - slots), opened.seq)) < 0) {
		*ret_why = r == -IOTSEC_EREPLAY ? "seen before (same device, stream and seq)"
			   : r == -ENOBUFS	? "this run has shown as many readings as it "
						  "remembers: start read again for more"
						: NULL;
		return r;
	}
	print_value(&opened, &v, as_json);
	return 0;
}

int cmd_read(int argc, char **argv)
{
	struct root_slot *slots = NULL;
	struct seen seen = {0};
	const char *dir = NULL;
	bool as_json = false;
	char *line = NULL;
	size_t cap = 0, n = 0;
	unsigned long lineno = 0, refused = 0;
	ssize_t got;

	for (int i = 1; i < argc; i++) {
		if (is_help(argv[i])) {
			fputs(read_usage, stdout);
			return DOCTOR_EXIT_OK;
		}
		if (strcmp(argv[i], "--json") == 0)
			as_json = true;
		else if (strcmp(argv[i], "--dir") == 0) {
			if ((dir = opt_value(argc, argv, &i)) == NULL)
				return usage_error("read", read_usage, "--dir needs a value");
		} else
			return usage_error("read", read_usage, "unknown argument '%s'", argv[i]);
	}
	if (dir == NULL)
		return usage_error("read", read_usage, "--dir is required");
	if (strlen(dir) > DOCTOR_DIR_MAX)
		return usage_error("read", read_usage, "--dir: at most %d characters",
				   DOCTOR_DIR_MAX);
	if (load_roots(dir, &slots, &n) < 0)
		return DOCTOR_EXIT_FAIL;
	while ((got = getline(&line, &cap, stdin)) >= 0) {
		const char *why = NULL;
		int r;

		lineno++;
		/* A line past any reading's length is refused without holding it all. */
		if ((size_t)got > LINE_MAX_HEX + 1024) {
			fprintf(stderr,
				"iotsec-doctor read: line %lu: refused: longer than any "
				"reading\n",
				lineno);
			refused++;
			continue;
		}
		if (strspn(line, " \t\r\n") == (size_t)got)
			continue;
		if ((r = read_one(line, slots, n, &seen, as_json, &why)) < 0) {
			fprintf(stderr, "iotsec-doctor read: line %lu: refused: %s\n", lineno,
				why ? why : iotsec_strerror(r));
			refused++;
		}
	}
	free(line);
	free(seen.e);
	free_roots(slots, n);
	return refused ? DOCTOR_EXIT_FAIL : DOCTOR_EXIT_OK;
}
