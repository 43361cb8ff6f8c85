#include "tmpdir.h"

#include <stdio.h>
#include <stdlib.h>

int tmp_setup(void **state, const char *name)
{
	struct tmp *t = calloc(1, sizeof(*t));
	int r = -1;

	if (t == NULL)
		goto out;
	snprintf(t->dir, sizeof(t->dir), "/tmp/iotsec-test-%s-XXXXXX", name);
	if (mkdtemp(t->dir) == NULL)
		goto out;
	*state = t;
	t = NULL;
	r = 0;
out:
	free(t);
	return r;
}

int tmp_teardown(void **state)
{
	struct tmp *t = *state;
	char cmd[96];
	int r;

	/* The tests leave trees of files and directories behind: rm walks them. */
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->dir);
	r = system(cmd) == 0 ? 0 : -1;
	free(t);
	return r;
}

const char *tmp_at(struct tmp *t, const char *rel)
{
	snprintf(t->path, sizeof(t->path), "%s/%s", t->dir, rel);
	return t->path;
}
