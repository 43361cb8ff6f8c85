/* Files that must never be left half-written or readable by others. */
#ifndef IOTSEC_FILE_H
#define IOTSEC_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Write data to a temporary file beside path, fsync it, rename it over path and fsync the
 * directory: a power cut leaves the old or the new file, never a mix. mode applies to the new
 * file from its creation (a secret is never briefly readable). */
int file_write_atomic(const char *path, const void *data, size_t len, mode_t mode);
/* Read a whole regular file of at most max bytes; -EFBIG past that, -EISDIR for a directory,
 * -EINVAL for anything else that is not a regular file (a device, a pipe). *ret is malloc'd with a
 * NUL after the data (so text can be parsed in place); *ret_len excludes it. */
int file_read(const char *path, size_t max, char **ret, size_t *ret_len);
/* -IOTSEC_ESECRET when path is group- or world-accessible or not owned by us or root (as ssh's
 * sshkey_perm_ok()), -EISDIR or -EINVAL when it is not a regular file, -errno when it cannot be
 * examined. */
int file_check_secret(const char *path);
/* What keeps path from being read as a file (dir false) or as a directory (dir true), in words
 * for a person ("missing", "a directory, not a file", "cannot read it (uid 1000): ..."), or NULL
 * when nothing does. Words that carry a cause are written into buf. */
const char *file_problem(const char *path, bool dir, char *buf, size_t len);
/* mkdir -p with the given mode for the directories it creates. */
int file_mkdirs(const char *path, mode_t mode);

#endif
