/* file: atomic writes land whole with exactly the mode asked and leave no temporary behind,
 * reads are bounded and refuse what is not a regular file, and loose secrets are refused. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "file.h"
#include "log.h"
#include "tmpdir.h"

static int setup(void **state)
{
	return tmp_setup(state, "file");
}

/* The names in dir, sorted and joined with spaces: what a leftover temporary would show up in. */
static void listing(const char *dir, char *out, size_t size)
{
	struct dirent **names;
	int n = scandir(dir, &names, NULL, alphasort);

	assert_true(n >= 0);
	out[0] = '\0';
	for (int i = 0; i < n; i++) {
		if (strcmp(names[i]->d_name, ".") != 0 && strcmp(names[i]->d_name, "..") != 0) {
			strncat(out, out[0] ? " " : "", size - strlen(out) - 1);
			strncat(out, names[i]->d_name, size - strlen(out) - 1);
		}
		free(names[i]);
	}
	free(names);
}

static mode_t mode_of(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return st.st_mode & 07777;
}

static void test_write_read_round_trip(void **state)
{
	static const char data[] = "line one\n\0binary\xff after a NUL";
	struct tmp *t = *state;
	char *got = NULL;
	size_t len = 0;

	assert_int_equal(file_write_atomic(tmp_at(t, "a"), data, sizeof(data) - 1, 0644), 0);
	assert_int_equal(file_read(tmp_at(t, "a"), 1024, &got, &len), 0);
	assert_int_equal(len, sizeof(data) - 1);
	assert_memory_equal(got, data, len);
	assert_int_equal(got[len], '\0');
	free(got);

	assert_int_equal(file_write_atomic(tmp_at(t, "empty"), "", 0, 0600), 0);
	assert_int_equal(file_read(tmp_at(t, "empty"), 0, &got, &len), 0);
	assert_int_equal(len, 0);
	assert_int_equal(got[0], '\0');
	free(got);
}

/* umask 0 would leave a plain open() at 0666 & mode; 077 would strip a public file. */
static void test_write_mode_exact_whatever_the_umask(void **state)
{
	static const mode_t modes[] = {0600, 0640, 0644, 0400};
	static const mode_t masks[] = {0, 022, 077};
	struct tmp *t = *state;
	mode_t old = umask(0);

	for (size_t m = 0; m < sizeof(masks) / sizeof(masks[0]); m++) {
		umask(masks[m]);
		for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
			assert_int_equal(file_write_atomic(tmp_at(t, "m"), "x", 1, modes[i]), 0);
			assert_int_equal(mode_of(tmp_at(t, "m")), modes[i]);
		}
	}
	umask(old);
}

/* A reader holding the old file keeps the old bytes: the new content arrives by rename. */
static void test_overwrite_replaces_atomically(void **state)
{
	struct tmp *t = *state;
	struct stat before, after;
	char buf[16] = {0}, *got = NULL;
	size_t len = 0;
	int fd;

	assert_int_equal(file_write_atomic(tmp_at(t, "o"), "old", 3, 0644), 0);
	assert_int_equal(stat(t->path, &before), 0);
	fd = open(t->path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(file_write_atomic(tmp_at(t, "o"), "new content", 11, 0600), 0);
	assert_int_equal(stat(t->path, &after), 0);
	assert_int_not_equal(before.st_ino, after.st_ino);
	assert_int_equal(after.st_mode & 07777, 0600);
	assert_int_equal(read(fd, buf, sizeof(buf) - 1), 3);
	assert_string_equal(buf, "old");
	close(fd);
	assert_int_equal(file_read(tmp_at(t, "o"), 64, &got, &len), 0);
	assert_int_equal(len, 11);
	assert_memory_equal(got, "new content", 11);
	free(got);
}

static void test_no_temporaries_left(void **state)
{
	struct tmp *t = *state;
	char names[256];

	for (int i = 0; i < 20; i++)
		assert_int_equal(file_write_atomic(tmp_at(t, "state"), &i, sizeof(i), 0600), 0);
	assert_int_equal(file_write_atomic(tmp_at(t, ".hidden"), "h", 1, 0600), 0);
	listing(t->dir, names, sizeof(names));
	assert_string_equal(names, ".hidden state");
}

static void test_write_into_missing_dir_fails_cleanly(void **state)
{
	struct tmp *t = *state;
	char names[256];

	assert_int_equal(file_write_atomic(tmp_at(t, "nodir/x"), "x", 1, 0600), -ENOENT);
	listing(t->dir, names, sizeof(names));
	assert_string_equal(names, "");
}

/* The rename fails after the temporary was written: it must be removed. */
static void test_write_over_directory_leaves_nothing(void **state)
{
	struct tmp *t = *state;
	char names[256];

	assert_int_equal(mkdir(tmp_at(t, "d"), 0700), 0);
	assert_int_equal(file_write_atomic(tmp_at(t, "d"), "x", 1, 0600), -EISDIR);
	listing(t->dir, names, sizeof(names));
	assert_string_equal(names, "d");
	listing(tmp_at(t, "d"), names, sizeof(names));
	assert_string_equal(names, "");
}

static void test_read_bounded(void **state)
{
	struct tmp *t = *state;
	char data[100], *got = (char *)&got;
	size_t len = 7;

	memset(data, 'r', sizeof(data));
	assert_int_equal(file_write_atomic(tmp_at(t, "big"), data, sizeof(data), 0644), 0);
	assert_int_equal(file_read(t->path, 99, &got, &len), -EFBIG);
	assert_int_equal(file_read(t->path, 0, &got, &len), -EFBIG);
	assert_ptr_equal(got, (char *)&got);
	assert_int_equal(len, 7);
	assert_int_equal(file_read(t->path, 100, &got, &len), 0);
	assert_int_equal(len, 100);
	free(got);
}

/* procfs reports a size of 0: the read must not trust stat, and must still bound what it reads. */
static void test_read_file_with_unknown_size(void **state)
{
	char *got = NULL;
	size_t len = 0;

	(void)state;
	assert_int_equal(file_read("/proc/self/status", 1 << 20, &got, &len), 0);
	assert_true(len > 16);
	assert_int_equal(strlen(got), len);
	assert_memory_equal(got, "Name:", 5);
	free(got);
	assert_int_equal(file_read("/proc/self/status", 16, &got, &len), -EFBIG);
}

static void test_read_refuses_non_files(void **state)
{
	struct tmp *t = *state;
	char *got = (char *)&got;
	size_t len = 7;

	assert_int_equal(file_read(t->dir, 1024, &got, &len), -EISDIR);
	assert_int_equal(file_read(tmp_at(t, "missing"), 1024, &got, &len), -ENOENT);
	assert_int_equal(mkfifo(tmp_at(t, "fifo"), 0600), 0);
	/* An open that waited for a writer would block forever: let SIGALRM fail the test. */
	alarm(10);
	assert_int_equal(file_read(t->path, 1024, &got, &len), -EINVAL);
	alarm(0);
	assert_int_equal(file_read("/dev/null", 1024, &got, &len), -EINVAL);
	assert_int_equal(symlink("missing", tmp_at(t, "dangling")), 0);
	assert_int_equal(file_read(t->path, 1024, &got, &len), -ENOENT);
	assert_ptr_equal(got, (char *)&got);
	assert_int_equal(len, 7);
}

static void test_read_follows_symlink(void **state)
{
	struct tmp *t = *state;
	char *got = NULL;
	size_t len = 0;

	assert_int_equal(file_write_atomic(tmp_at(t, "target"), "cfg", 3, 0644), 0);
	assert_int_equal(symlink("target", tmp_at(t, "link")), 0);
	assert_int_equal(file_read(t->path, 64, &got, &len), 0);
	assert_int_equal(len, 3);
	assert_string_equal(got, "cfg");
	free(got);
}

static void test_secret_tight_modes_accepted(void **state)
{
	static const mode_t ok[] = {0600, 0400, 0700, 0200};
	struct tmp *t = *state;

	assert_int_equal(file_write_atomic(tmp_at(t, "key"), "k", 1, 0600), 0);
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_int_equal(chmod(t->path, ok[i]), 0);
		assert_int_equal(file_check_secret(t->path), 0);
	}
}

static void test_secret_loose_modes_refused(void **state)
{
	static const mode_t bad[] = {0640, 0604, 0644, 0620, 0602, 0610, 0601, 0660, 0666, 0777};
	struct tmp *t = *state;

	assert_int_equal(file_write_atomic(tmp_at(t, "key"), "k", 1, 0600), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(chmod(t->path, bad[i]), 0);
		assert_int_equal(file_check_secret(t->path), -IOTSEC_ESECRET);
	}
	/* A secret written with a loose mode is refused as it stands. */
	assert_int_equal(file_write_atomic(tmp_at(t, "loose"), "k", 1, 0640), 0);
	assert_int_equal(file_check_secret(t->path), -IOTSEC_ESECRET);
	assert_int_equal(file_check_secret(tmp_at(t, "missing")), -ENOENT);
}

/* Ownership can only be handed to someone else by root; elsewhere this case is skipped. */
static void test_secret_other_owner_refused(void **state)
{
	struct tmp *t = *state;

	if (geteuid() != 0) {
		skip();
		return;
	}
	assert_int_equal(file_write_atomic(tmp_at(t, "theirs"), "k", 1, 0600), 0);
	assert_int_equal(chown(t->path, 65534, 65534), 0);
	assert_int_equal(file_check_secret(t->path), -IOTSEC_ESECRET);
	assert_int_equal(chown(t->path, 0, 65534), 0);
	assert_int_equal(file_check_secret(t->path), 0);
}

/* Each thing that keeps a path from being read as what it should be, in words. */
static void test_problem(void **state)
{
	struct tmp *t = *state;
	char buf[128], file[PATH_MAX], dir[PATH_MAX + 8];

	snprintf(file, sizeof(file), "%s", tmp_at(t, "f"));
	snprintf(dir, sizeof(dir), "%s", tmp_at(t, "d"));
	assert_int_equal(file_write_atomic(file, "x", 1, 0600), 0);
	assert_int_equal(mkdir(dir, 0700), 0);
	assert_null(file_problem(file, false, buf, sizeof(buf)));
	assert_null(file_problem(dir, true, buf, sizeof(buf)));
	assert_string_equal(file_problem(tmp_at(t, "none"), false, buf, sizeof(buf)), "missing");
	assert_string_equal(file_problem(dir, false, buf, sizeof(buf)), "a directory, not a file");
	assert_string_equal(file_problem(file, true, buf, sizeof(buf)), "not a directory");
	assert_string_equal(file_problem("/dev/null", false, buf, sizeof(buf)),
			    "not a regular file");
	snprintf(dir, sizeof(dir), "%s/under", file);
	assert_string_equal(file_problem(dir, false, buf, sizeof(buf)), "Not a directory");
}

/* A directory (mode 0700 or not) is no secret file: said as such, not as a loose mode. */
static void test_secret_not_a_file(void **state)
{
	struct tmp *t = *state;

	assert_int_equal(mkdir(tmp_at(t, "dir"), 0700), 0);
	assert_int_equal(file_check_secret(t->path), -EISDIR);
	assert_int_equal(file_check_secret("/dev/null"), -EINVAL);
}

static void test_mkdirs(void **state)
{
	struct tmp *t = *state;
	mode_t old = umask(077);

	assert_int_equal(file_mkdirs(tmp_at(t, "a/b//c/"), 0755), 0);
	assert_int_equal(mode_of(tmp_at(t, "a")), 0755);
	assert_int_equal(mode_of(tmp_at(t, "a/b/c")), 0755);
	/* Existing directories are fine and keep their mode. */
	assert_int_equal(chmod(tmp_at(t, "a"), 0700), 0);
	assert_int_equal(file_mkdirs(tmp_at(t, "a/b/c/d"), 0750), 0);
	assert_int_equal(mode_of(tmp_at(t, "a")), 0700);
	assert_int_equal(mode_of(tmp_at(t, "a/b/c/d")), 0750);
	umask(old);
}

static void test_mkdirs_refuses(void **state)
{
	struct tmp *t = *state;

	assert_int_equal(file_write_atomic(tmp_at(t, "f"), "x", 1, 0644), 0);
	assert_int_equal(file_mkdirs(t->path, 0755), -ENOTDIR);
	assert_int_equal(file_mkdirs(tmp_at(t, "f/sub"), 0755), -ENOTDIR);
	assert_int_equal(file_mkdirs("", 0755), -EINVAL);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, tmp_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_write_read_round_trip),
	    T(test_write_mode_exact_whatever_the_umask),
	    T(test_overwrite_replaces_atomically),
	    T(test_no_temporaries_left),
	    T(test_write_into_missing_dir_fails_cleanly),
	    T(test_write_over_directory_leaves_nothing),
	    T(test_read_bounded),
	    T(test_read_file_with_unknown_size),
	    T(test_read_refuses_non_files),
	    T(test_read_follows_symlink),
	    T(test_secret_tight_modes_accepted),
	    T(test_secret_loose_modes_refused),
	    T(test_secret_other_owner_refused),
	    T(test_secret_not_a_file),
	    T(test_problem),
	    T(test_mkdirs),
	    T(test_mkdirs_refuses),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
