#include "file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

#define FILE_TMP_TRIES 16
#define FILE_READ_MIN  4096 /* first buffer for files whose size stat cannot tell (procfs) */

/* path's directory, malloc'd: "." for a bare name, "/" for a file in the root. */
static char *file_dirname(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		return strdup(".");
	if (slash == path)
		return strdup("/");
	return strndup(path, (size_t)(slash - path));
}

/* Create "DIR/.BASE.XXXXXXXX" exclusively with mode; a hidden name keeps it out of globs. */
static int file_open_tmp(const char *path, mode_t mode, char **ret_tmp)
{
	static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
	const char *slash = strrchr(path, '/');
	size_t dirlen = slash != NULL ? (size_t)(slash - path) + 1 : 0;
	size_t size = strlen(path) + 2 + 1 + 8 + 1;
	char *tmp = malloc(size);
	int fd = -ENOMEM;

	if (tmp == NULL)
		goto out;
	for (int i = 0; i < FILE_TMP_TRIES; i++) {
		uint8_t rnd[8];
		char suffix[9];

		if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd)) {
			fd = -errno;
			goto out;
		}
		for (size_t j = 0; j < sizeof(rnd); j++)
			suffix[j] = digits[rnd[j] % (sizeof(digits) - 1)];
		suffix[8] = '\0';
		snprintf(tmp, size, "%.*s.%s.%s", (int)dirlen, path, path + dirlen, suffix);
		fd = open(tmp, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOCTTY, mode);
		if (fd >= 0 || errno != EEXIST)
			break;
	}
	if (fd < 0) {
		fd = -errno;
		goto out;
	}
	*ret_tmp = tmp;
	tmp = NULL;
out:
	free(tmp);
	return fd;
}

static int file_write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int file_fsync_dir(const char *path)
{
	char *dir = file_dirname(path);
	int fd = -1, r = -ENOMEM;

	if (dir == NULL)
		goto out;
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 || fsync(fd) < 0) {
		r = -errno;
		goto out;
	}
	r = 0;
out:
	if (fd >= 0)
		close(fd);
	free(dir);
	return r;
}

int file_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
	char *tmp = NULL;
	int fd, r;

	if ((fd = file_open_tmp(path, mode & 07777, &tmp)) < 0) {
		r = fd;
		goto out;
	}
	/* The umask may only have taken bits away; make the mode exactly what was asked. */
	if (fchmod(fd, mode & 07777) < 0)
		r = -errno;
	else if ((r = file_write_all(fd, data, len)) == 0 && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0) {
		unlink(tmp);
		goto out;
	}
	/* Without this the rename itself may not survive a power cut. */
	r = file_fsync_dir(path);
out:
	if (r < 0)
		log_debug("file: writing %s failed: %s", path, iotsec_strerror(r));
	free(tmp);
	return r;
}

/* Grow a buffer that may hold a secret without leaving the old copy behind in freed memory. */
static int file_grow(char **buf, size_t len, size_t newcap)
{
	char *p = malloc(newcap);

	if (p == NULL)
		return -ENOMEM;
	if (len > 0)
		memcpy(p, *buf, len);
	explicit_bzero(*buf, len);
	free(*buf);
	*buf = p;
	return 0;
}

/* Symlinks are followed on purpose (a configuration may be one); the target must be a regular
 * file. O_NONBLOCK keeps a FIFO from blocking the open; it means nothing for a regular file. */
int file_read(const char *path, size_t max, char **ret, size_t *ret_len)
{
	struct stat st;
	char *buf = NULL;
	size_t len = 0, cap, newcap;
	int fd, r;

	if (max > SSIZE_MAX - 1)
		max = SSIZE_MAX - 1;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)) < 0 ||
	    fstat(fd, &st) < 0) {
		r = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		r = S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
		goto out;
	}
	if ((uintmax_t)st.st_size > max) {
		r = -EFBIG;
		goto out;
	}
	/* One byte over the size, so a file that grew meanwhile is noticed and the NUL fits. */
	cap = st.st_size > 0 ? (size_t)st.st_size : FILE_READ_MIN;
	cap = (cap < max ? cap : max) + 1;
	if ((buf = malloc(cap)) == NULL) {
		r = -ENOMEM;
		goto out;
	}
	for (;;) {
		ssize_t n;

		if (len == cap) {
			if (len > max)
				break;
			newcap = cap <= max / 2 ? cap * 2 : max + 1;
			if ((r = file_grow(&buf, len, newcap)) < 0)
				goto out;
			cap = newcap;
		}
		if ((n = read(fd, buf + len, cap - len)) < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > max) {
		r = -EFBIG;
		goto out;
	}
	if (len == cap && (r = file_grow(&buf, len, len + 1)) < 0)
		goto out;
	buf[len] = '\0';
	*ret = buf;
	*ret_len = len;
	buf = NULL;
	r = 0;
out:
	if (buf != NULL) {
		explicit_bzero(buf, len);
		free(buf);
	}
	if (fd >= 0)
		close(fd);
	return r;
}

const char *file_problem(const char *path, bool dir, char *buf, size_t len)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		if (errno == ENOENT)
			return "missing";
		snprintf(buf, len, "%s", strerror(errno));
		return buf;
	}
	if (dir && !S_ISDIR(st.st_mode))
		return "not a directory";
	if (!dir && S_ISDIR(st.st_mode))
		return "a directory, not a file";
	if (!dir && !S_ISREG(st.st_mode))
		return "not a regular file";
	if (access(path, dir ? R_OK | X_OK : R_OK) < 0) {
		snprintf(buf, len, "cannot read it (uid %u): %s", (unsigned)geteuid(),
			 strerror(errno));
		return buf;
	}
	return NULL;
}

int file_check_secret(const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
	if ((st.st_mode & 077) != 0 || (st.st_uid != 0 && st.st_uid != geteuid())) {
		log_debug("file: %s has mode %04o and owner %u: too open for a secret", path,
			  (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid);
		return -IOTSEC_ESECRET;
	}
	return 0;
}

/* Make one directory; an existing directory is fine, anything else in the way is not. */
static int file_mkdir_one(const char *dir, mode_t mode)
{
	struct stat st;

	if (mkdir(dir, mode) == 0)
		return chmod(dir, mode) < 0 ? -errno : 0;
	if (errno != EEXIST)
		return -errno;
	if (stat(dir, &st) < 0)
		return -errno;
	return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

int file_mkdirs(const char *path, mode_t mode)
{
	char *p = NULL;
	size_t len;
	int r = -EINVAL;

	if (path == NULL || (len = strlen(path)) == 0)
		goto out;
	if ((p = strdup(path)) == NULL) {
		r = -ENOMEM;
		goto out;
	}
	/* Each '/' after a name ends a prefix to create; the full path is the last one. */
	for (size_t i = 1; i <= len; i++) {
		if (p[i] != '/' && p[i] != '\0')
			continue;
		if (p[i - 1] == '/')
			continue;
		p[i] = '\0';
		r = file_mkdir_one(p, mode & 07777);
		p[i] = path[i];
		if (r < 0)
			goto out;
	}
	r = 0;
out:
	if (r < 0)
		log_debug("file: creating %s failed: %s", path, iotsec_strerror(r));
	free(p);
	return r;
}
