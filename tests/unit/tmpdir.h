/* A fresh directory for the tests that work on real files (file, sensor, spool), as a cmocka
 * group state: made under /tmp, removed with all that is in it at the end. */
#ifndef IOTSEC_TEST_TMPDIR_H
#define IOTSEC_TEST_TMPDIR_H

struct tmp {
	char dir[64];
	char path[512]; /* the last tmp_at() */
};

/* *state becomes a struct tmp whose dir is a new /tmp/iotsec-test-NAME-XXXXXX. 0 on success. */
int tmp_setup(void **state, const char *name);
/* Removes the directory and frees the state; 0 on success. */
int tmp_teardown(void **state);
/* DIR/rel, in t->path. */
const char *tmp_at(struct tmp *t, const char *rel);

#endif
