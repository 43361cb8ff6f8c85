/* iotsecctl quarantine list|release: the devices pingd put out of the home (missing, or
 * malicious), and taking one off the list (SPEC 5.5). */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "iotsecctl.h"

static void quarantine_usage(FILE *f)
{
	fprintf(
	    f, "usage: iotsecctl quarantine list [--json]\n"
	       "       iotsecctl quarantine release DEVICE\n"
	       "list: the devices put out of the home (missing, or malicious), since when, and\n"
	       "the list's version. release (on the controller, root): take DEVICE off the\n"
	       "list; it is given a ring of the current key pool when it next announces itself.\n");
}

static int quarantine_list(const struct iotsec_config *cfg, bool as_json)
{
	const char *why = NULL;
	json_t *reply, *q;
	size_t i;

	if ((reply = ask(cfg->device.run_dir, "pingd", "quarantine", NULL, &why, NULL)) == NULL) {
		fprintf(stderr, "iotsecctl quarantine list: iotsec-pingd: %s\n", why);
		return 1;
	}
	if (as_json) {
		json_t *o = json_pack("{s:O, s:O}", "version", json_object_get(reply, "version"),
				      "quarantine", json_object_get(reply, "quarantine"));

		json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		putchar('\n');
		json_decref(o);
	} else if (json_array_size(json_object_get(reply, "quarantine")) == 0) {
		printf("no device quarantined (version %lld)\n",
		       (long long)json_integer_value(json_object_get(reply, "version")));
	} else {
		printf("%-16s %-10s %s\n", "NAME", "REASON", "SINCE");
		json_array_foreach(json_object_get(reply, "quarantine"), i, q)
		{
			time_t at = (time_t)json_integer_value(json_object_get(q, "at"));
			char when[64] = "-";
			struct tm tm;

			if (at > 0)
				strftime(when, sizeof(when), "%Y-%m-%d %H:%M UTC",
					 gmtime_r(&at, &tm));
			printf("%-16s %-10s %s\n",
			       json_string_value(json_object_get(q, "name")) ?: "-",
			       json_string_value(json_object_get(q, "reason")) ?: "-", when);
		}
		printf("(version %lld)\n",
		       (long long)json_integer_value(json_object_get(reply, "version")));
	}
	json_decref(reply);
	return 0;
}

static int quarantine_release(const struct iotsec_config *cfg, const char *name)
{
	json_t *args = json_pack("{s:s}", "name", name), *reply;
	const char *why = NULL;

	reply = args ? ask(cfg->device.run_dir, "pingd", "release", args, &why, NULL) : NULL;
	json_decref(args);
	if (reply == NULL) {
		/* On a node, pingd's refusal names the controller to ask. */
		fprintf(stderr, "iotsecctl quarantine release: iotsec-pingd: %s\n",
			why ? why : "out of memory");
		return 1;
	}
	printf("%s released (quarantine version %lld): it is given a ring when it next announces "
	       "itself\n",
	       name, (long long)json_integer_value(json_object_get(reply, "version")));
	json_decref(reply);
	return 0;
}

int cmd_quarantine(const struct iotsec_config *cfg, int argc, char **argv)
{
	bool help = false;

	/* --help anywhere, as with the other commands: "quarantine list --help" too. */
	for (int i = 1; i < argc; i++)
		help = help || strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0;
	if (help) {
		quarantine_usage(stdout);
		return 0;
	}
	if (argc >= 2 && strcmp(argv[1], "list") == 0 &&
	    (argc == 2 || (argc == 3 && strcmp(argv[2], "--json") == 0)))
		return quarantine_list(cfg, argc == 3);
	if (argc == 3 && strcmp(argv[1], "release") == 0 && argv[2][0] != '-')
		return quarantine_release(cfg, argv[2]);
	if (argc < 2)
		fprintf(stderr, "iotsecctl quarantine: list or release?\n");
	else if (strcmp(argv[1], "release") == 0)
		fprintf(stderr, "iotsecctl quarantine release: which device? (one name)\n");
	else if (strcmp(argv[1], "list") == 0)
		fprintf(stderr, "iotsecctl quarantine list: unknown argument '%s'\n",
			argv[argc - 1]);
	else
		fprintf(stderr, "iotsecctl quarantine: want list or release, not '%s'\n", argv[1]);
	quarantine_usage(stderr);
	return 2;
}
