/* iotsec-doctor read: open a kit's sealed readings (reading.h) with the roots this doctor
 * granted. The readings come as hex, one a line (mosquitto_sub -F %x, or a topic first and the
 * hex last); each is opened with the key of its epoch, computed from the root (the doctor keeps
 * it, so readings fetched days later still open), and a (device, stream, seq) seen before in the
 * run is refused: a copy replayed from the relay or the broker shows once. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "encoding.h"
#include "export.h"
#include "iotsec-doctor.h"
#include "log.h"
#include "reading.h"

#define LINE_MAX_HEX (2 * READING_MAX) /* the hex of the longest reading */

static const char read_usage[] =
    "usage: iotsec-doctor read --dir D [--json]\n"
    "Open the sealed readings of the kits this doctor granted (D/roots), one reading a\n"
    "line of hex on standard input, the last word of the line (mosquitto_sub -F %x, or\n"
    "-F '%t %x'). Prints each as TIME DEVICE SENSOR VALUE UNIT, with EMERGENCY and its\n"
    "seq for an emergency record, or with --json one object a line. A reading that does\n"
    "not open, or that was seen before (same device, stream and seq), is refused with\n"
    "its line number on standard error. Exit status 1 when any was refused.\n";

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

/* One line: its last word is the reading's hex. 0 and printed, or why it is refused. */
static int read_one(char *line, struct doctor_roots *roots, struct seen *seen,
		    struct export_out *out, const char **ret_why)
{
	uint8_t buf[READING_MAX];
	struct reading_header h;
	struct reading_value v;
	struct root_slot *slot = NULL;
	char *word, *end;
	size_t len;
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
	if ((r = doctor_open(roots, buf, len, &slot, &h, &v, ret_why)) < 0)
		return r;
	if ((r = seen_add(seen, (uint32_t)(slot - roots->slots), h.seq)) < 0) {
		*ret_why = r == -IOTSEC_EREPLAY ? "seen before (same device, stream and seq)"
			   : r == -ENOBUFS	? "this run has shown as many readings as it "
						  "remembers: start read again for more"
						: NULL;
		return r;
	}
	return export_put(out, &(struct export_reading){&h, &v, -1});
}

int cmd_read(int argc, char **argv)
{
	struct doctor_roots roots = {0};
	struct export_out out;
	struct seen seen = {0};
	const char *dir = NULL;
	bool as_json = false;
	char *line = NULL;
	size_t cap = 0;
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
	if (doctor_roots_load("read", dir, &roots) < 0)
		return DOCTOR_EXIT_FAIL;
	if (roots.n == 0)
		fprintf(stderr, "iotsec-doctor read: no root in %s/roots: no reading will open\n",
			dir);
	export_out_init(&out, stdout, as_json ? EXPORT_JSON : EXPORT_TEXT);
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
		if ((r = read_one(line, &roots, &seen, &out, &why)) < 0) {
			fprintf(stderr, "iotsec-doctor read: line %lu: refused: %s\n", lineno,
				why ? why : iotsec_strerror(r));
			refused++;
		}
	}
	free(line);
	free(seen.e);
	doctor_roots_free(&roots);
	return refused ? DOCTOR_EXIT_FAIL : DOCTOR_EXIT_OK;
}
