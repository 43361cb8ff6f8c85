/* keyd's quarantine: the devices pingd put out of the home, which no pool of ours gives anything
 * until they are taken off the list. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca.h"
#include "keyd.h"
#include "log.h"

int keyd_quarantine_parse(const json_t *list, struct keyd_quarantine *out, char *why,
			  size_t why_len)
{
	struct keyd_quarantine *q;
	size_t i, j;
	json_t *v;
	int r = 0;

	if (!json_is_array(list)) {
		snprintf(why, why_len, "names must be a list of device names");
		return -EINVAL;
	}
	if (json_array_size(list) > KEYD_QUARANTINE_MAX) {
		snprintf(why, why_len, "%zu names, at most %d", json_array_size(list),
			 KEYD_QUARANTINE_MAX);
		return -E2BIG;
	}
	/* Parsed aside: a refused list changes nothing. */
	if ((q = calloc(1, sizeof(*q))) == NULL)
		return -ENOMEM;
	json_array_foreach(list, i, v)
	{
		/* The name is not quoted back: it may be anything, of any length. */
		if (!json_is_string(v)) {
			snprintf(why, why_len, "names[%zu] is not a string", i);
			r = -EINVAL;
			break;
		}
		if (json_string_length(v) >= CERT_NAME_MAX ||
		    strlen(json_string_value(v)) != json_string_length(v) ||
		    !ca_name_valid(json_string_value(v))) {
			snprintf(why, why_len, "names[%zu] is not a device name", i);
			r = -EINVAL;
			break;
		}
		for (j = 0; j < q->n && strcmp(q->name[j], json_string_value(v)) != 0; j++)
			;
		if (j < q->n) {
			snprintf(why, why_len, "names[%zu] repeats names[%zu]", i, j);
			r = -EINVAL;
			break;
		}
		snprintf(q->name[q->n++], CERT_NAME_MAX, "%s", json_string_value(v));
	}
	if (r == 0)
		*out = *q;
	free(q);
	return r;
}

json_t *keyd_quarantine_json(const struct keyd_quarantine *q)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < q->n; i++)
		if (json_array_append_new(a, json_string(q->name[i])) < 0) {
			json_decref(a);
			return NULL;
		}
	return a;
}

static bool listed(const struct keyd_quarantine *q, const char *name)
{
	for (size_t i = 0; i < q->n; i++)
		if (strcmp(q->name[i], name) == 0)
			return true;
	return false;
}

bool keyd_quarantined(const struct keyd *k, const char *name)
{
	return listed(&k->quarantine, name);
}

/* The same devices, in whatever order: pingd pushes its list again at every change. */
static bool same(const struct keyd_quarantine *a, const struct keyd_quarantine *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (!listed(b, a->name[i]))
			return false;
	return true;
}

/* "pi3, pi7" or "none", cut short (with "...") when it does not fit. */
static void names_text(const struct keyd_quarantine *q, char *out, size_t len)
{
	size_t used = 0;

	snprintf(out, len, "none");
	for (size_t i = 0; i < q->n; i++) {
		int n = snprintf(out + used, len - used, "%s%s", i ? ", " : "", q->name[i]);

		if (n < 0 || (size_t)n >= len - used) {
			snprintf(out + (len > 4 ? len - 4 : 0), len > 4 ? 4 : len, "...");
			return;
		}
		used += (size_t)n;
	}
}

void keyd_quarantine_set(struct keyd *k, const struct keyd_quarantine *q)
{
	char now[512], was[512];

	if (same(&k->quarantine, q))
		return;
	names_text(q, now, sizeof(now));
	names_text(&k->quarantine, was, sizeof(was));
	log_notice("quarantine: %s (was: %s)", now, was);
	k->quarantine = *q;
	keyd_state_save(k);
	keyd_controller_quarantine(k);
}
