/* iotsecctl peers: the devices this one knows, from the two daemons that know them: pingd
 * (whether each answers, its trust, flags and bans) and keyd (the key shared with each). Never a
 * key. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "iotsecctl.h"

static void peers_usage(FILE *f)
{
	fprintf(f, "usage: iotsecctl peers [--json]\n"
		   "List the devices this one knows: whether each answers the controller's probes\n"
		   "(alive, suspect, missing, quarantined), its trust T with direct experience h\n"
		   "and reputation R, its flags (bad-mouthing, good-mouthing, ballot-stuffing,\n"
		   "malicious), how long it is banned from reporting, its authentication\n"
		   "failures, and the key this device shares with it. A daemon that does not\n"
		   "answer is named on standard error and its columns show '-'.\n");
}

/* The row of name in list (an array of objects with "name"), NULL when none. */
static json_t *row_of(json_t *list, const char *name)
{
	size_t i;
	json_t *p;

	json_array_foreach(list, i, p)
	{
		if (json_is_string(json_object_get(p, "name")) &&
		    strcmp(json_string_value(json_object_get(p, "name")), name) == 0)
			return p;
	}
	return NULL;
}

/* pingd's rows, each with keyd's fields of the same device, then the devices only keyd knows. */
static json_t *merge(json_t *pingd, json_t *keyd)
{
	json_t *all = json_array(), *p, *k;
	size_t i;

	json_array_foreach(pingd, i, p)
	{
		json_t *row = json_deep_copy(p);

		if (row && json_is_string(json_object_get(p, "name")) &&
		    (k = row_of(keyd, json_string_value(json_object_get(p, "name")))) != NULL)
			json_object_update_missing(row, k);
		json_array_append_new(all, row);
	}
	json_array_foreach(keyd, i, k)
	{
		if (json_is_string(json_object_get(k, "name")) &&
		    row_of(pingd, json_string_value(json_object_get(k, "name"))) == NULL)
			json_array_append(all, k);
	}
	return all;
}

static const char *text_or_dash(json_t *v)
{
	return json_is_string(v) && json_string_length(v) > 0 ? json_string_value(v) : "-";
}

static void print_row(json_t *p, time_t now)
{
	json_t *t = json_object_get(p, "trust"), *flags = json_object_get(p, "flags"), *f;
	json_int_t banned = json_integer_value(json_object_get(p, "banned_until"));
	const char *kind = json_string_value(json_object_get(p, "pairwise"));
	char trust[32] = "-", flagtext[96] = "", ban[32] = "-", fails[24] = "-";
	size_t i;

	if (json_is_number(t))
		snprintf(trust, sizeof(trust), "%.2f (%.2f/%.2f)", json_number_value(t),
			 json_number_value(json_object_get(p, "direct")),
			 json_number_value(json_object_get(p, "reputation")));
	json_array_foreach(flags, i, f)
	{
		size_t used = strlen(flagtext);

		snprintf(flagtext + used, sizeof(flagtext) - used, "%s%s", used ? "," : "",
			 text_or_dash(f));
	}
	/* How long it stays banned: seconds for the last two minutes, then whole minutes. */
	if (banned > (json_int_t)now && banned - now < 120)
		snprintf(ban, sizeof(ban), "%llds", (long long)(banned - now));
	else if (banned > (json_int_t)now)
		snprintf(ban, sizeof(ban), "%lldmin", (long long)((banned - now + 59) / 60));
	else if (json_is_integer(json_object_get(p, "banned_until")))
		snprintf(ban, sizeof(ban), "no");
	if (json_is_integer(json_object_get(p, "auth_failures")))
		snprintf(fails, sizeof(fails), "%lld",
			 (long long)json_integer_value(json_object_get(p, "auth_failures")));
	printf("%-16s %-15s %-11s %-17s %-22s %-7s %-13s %s\n",
	       text_or_dash(json_object_get(p, "name")),
	       text_or_dash(json_object_get(p, "address")),
	       text_or_dash(json_object_get(p, "state")), trust, flagtext[0] ? flagtext : "-", ban,
	       fails,
	       kind == NULL		   ? "-"
	       : strcmp(kind, "ring") == 0 ? "ring keys"
	       : strcmp(kind, "path") == 0 ? "path key"
					   : "none");
}

int cmd_peers(const struct iotsec_config *cfg, int argc, char **argv)
{
	bool as_json = argc > 1 && strcmp(argv[1], "--json") == 0;
	const char *pingd_why = NULL, *keyd_why = NULL;
	json_t *pingd, *keyd, *all;
	size_t i;
	json_t *p;

	if (argc > 2 || (argc > 1 && !as_json)) {
		bool help = strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0;

		if (!help)
			fprintf(stderr, "iotsecctl peers: unknown argument '%s'\n", argv[argc - 1]);
		peers_usage(help ? stdout : stderr);
		return help ? 0 : 2;
	}
	pingd = ask(cfg->device.run_dir, "pingd", "peers", NULL, &pingd_why, NULL);
	if (pingd == NULL)
		fprintf(stderr,
			"iotsecctl peers: iotsec-pingd: %s (whether devices answer, trust and "
			"flags unknown)\n",
			pingd_why);
	keyd = ask(cfg->device.run_dir, "keyd", "peers", NULL, &keyd_why, NULL);
	if (keyd == NULL)
		fprintf(stderr, "iotsecctl peers: iotsec-keyd: %s (shared keys unknown)\n",
			keyd_why);
	if (pingd == NULL && keyd == NULL)
		return 1;
	all = merge(json_object_get(pingd, "peers"), json_object_get(keyd, "peers"));
	if (as_json) {
		json_dumpf(all, stdout, JSON_INDENT(2));
		putchar('\n');
	} else {
		time_t now = time(NULL);

		printf("%-16s %-15s %-11s %-17s %-22s %-7s %-13s %s\n", "NAME", "ADDRESS", "STATE",
		       "TRUST (h/R)", "FLAGS", "BANNED", "AUTH-FAILURES", "KEY");
		json_array_foreach(all, i, p) print_row(p, now);
	}
	json_decref(all);
	json_decref(pingd);
	json_decref(keyd);
	return 0;
}
