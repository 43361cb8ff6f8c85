#include "pg.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libgen.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef PG_ROOT
#define PG_ROOT "/usr/lib/postgresql"
#endif

/* The newest installed version's bin directory (Debian keeps one per major version). */
static int find_bin(struct pg_server *pg, char *ret_version, size_t len)
{
	DIR *d = opendir(PG_ROOT);
	struct dirent *e;
	long best = -1;
	char path[PATH_MAX];

	if (d == NULL)
		return -ENOENT;
	while ((e = readdir(d)) != NULL) {
		char *end;
		long v = strtol(e->d_name, &end, 10);

		if (end == e->d_name || *end != '\0' || v <= best)
			continue;
		snprintf(path, sizeof(path), "%s/%s/bin/pg_ctl", PG_ROOT, e->d_name);
		if (access(path, X_OK) == 0)
			best = v;
	}
	closedir(d);
	if (best < 0)
		return -ENOENT;
	snprintf(pg->bin, sizeof(pg->bin), "%s/%ld/bin", PG_ROOT, best);
	snprintf(ret_version, len, "%ld", best);
	return 0;
}

/* Run argv[0] with its output appended to the log, in the server's directory; as the server's
 * user when drop (and we are root). 0 when it exited 0. */
static int run(const struct pg_server *pg, bool drop, char *const argv[])
{
	pid_t pid;
	int status;

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int out = open(pg->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		int in = open("/dev/null", O_RDONLY | O_CLOEXEC);

		if (out < 0 || in < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
			_exit(126);
		/* initdb and pg_ctl resolve the current directory: it must be theirs to read. */
		if (chdir(pg->dir) < 0)
			_exit(126);
		if (drop && geteuid() == 0 &&
		    (setgroups(0, NULL) < 0 || setgid(pg->gid) < 0 || setuid(pg->uid) < 0))
			_exit(126);
		setenv("LC_ALL", "C", 1);
		unsetenv("PGDATA");
		unsetenv("PGHOST");
		unsetenv("PGPORT");
		execv(argv[0], argv);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

static int tool(const struct pg_server *pg, const char *name, char *buf, size_t len)
{
	return snprintf(buf, len, "%s/%s", pg->bin, name) < (int)len ? 0 : -ENAMETOOLONG;
}

/* Where the template cluster is kept: beside the build, shared by its runs. */
static int template_path(const char *version, char *buf, size_t len)
{
	const char *build = getenv("IOTSEC_BUILD");
	char exe[PATH_MAX];
	ssize_t n;

	if (build == NULL || build[0] == '\0') {
		/* build/tests/test_X or build/bench/bench_X: the build is two levels up. */
		n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		if (n <= 0)
			return -ENOENT;
		exe[n] = '\0';
		build = dirname(dirname(exe));
	}
	return snprintf(buf, len, "%s/pg-template-%s", build, version) < (int)len ? 0
										  : -ENAMETOOLONG;
}

static int copy_tree(const struct pg_server *pg, const char *from, const char *to)
{
	char *cp[] = {"/bin/cp", "-a", (char *)from, (char *)to, NULL};

	return run(pg, false, cp);
}

static void remove_tree(const struct pg_server *pg, const char *path)
{
	char *rm[] = {"/bin/rm", "-rf", (char *)path, NULL};

	run(pg, false, rm);
}

/* The cluster in pg->data: a copy of the template, or a new one (then kept as the template). */
static int make_cluster(struct pg_server *pg, const char *version)
{
	char tpl[PATH_MAX], tmp[PATH_MAX + 32], initdb[PATH_MAX], marker[PATH_MAX + 16];
	bool have_tpl;
	int r;

	have_tpl = template_path(version, tpl, sizeof(tpl)) == 0;
	snprintf(marker, sizeof(marker), "%s/PG_VERSION", tpl);
	if (have_tpl && access(marker, R_OK) == 0 && copy_tree(pg, tpl, pg->data) == 0) {
		if (geteuid() == 0) {
			char owner[64];
			char *chown[] = {"/bin/chown", "-R", owner, pg->data, NULL};

			snprintf(owner, sizeof(owner), "%u:%u", (unsigned)pg->uid,
				 (unsigned)pg->gid);
			if ((r = run(pg, false, chown)) < 0)
				return r;
		}
		return 0;
	}
	remove_tree(pg, pg->data);
	if ((r = tool(pg, "initdb", initdb, sizeof(initdb))) < 0)
		return r;
	{
		/* --no-sync: only initdb's own files; the server runs with fsync on. */
		char *argv[] = {initdb, "-D",	pg->data,     "-U",	   PG_USER, "--auth=trust",
				"-E",	"UTF8", "--locale=C", "--no-sync", NULL};

		if ((r = run(pg, true, argv)) < 0) {
			snprintf(pg->why, sizeof(pg->why), "initdb failed");
			return r;
		}
	}
	/* Published whole by rename(): two runs at once both make one, the first one stays. */
	if (have_tpl) {
		snprintf(tmp, sizeof(tmp), "%s.tmp.%d", tpl, (int)getpid());
		if (copy_tree(pg, pg->data, tmp) == 0 && rename(tmp, tpl) == 0)
			return 0;
		remove_tree(pg, tmp);
	}
	return 0;
}

/* Our settings, appended to the copy's postgresql.conf (the last one read wins). */
static int configure(const struct pg_server *pg)
{
	char path[PATH_MAX];
	FILE *f;
	int r = 0;

	snprintf(path, sizeof(path), "%s/postgresql.conf", pg->data);
	if ((f = fopen(path, "ae")) == NULL)
		return -errno;
	fprintf(f,
		"\n# iotsec tests\n"
		"listen_addresses = ''\n"
		"unix_socket_directories = '%s'\n"
		"fsync = on\n"
		"synchronous_commit = on\n"
		"max_connections = 30\n"
		"shared_buffers = 32MB\n",
		pg->dir);
	if (fclose(f) != 0)
		r = -errno;
	return r;
}

static int ctl(struct pg_server *pg, const char *verb, const char *mode)
{
	char pg_ctl[PATH_MAX];
	char *argv[] = {pg_ctl, "-D", pg->data, "-l",	      pg->log,	    "-w",
			"-t",	"60", "-m",	(char *)mode, (char *)verb, NULL};
	int r;

	if ((r = tool(pg, "pg_ctl", pg_ctl, sizeof(pg_ctl))) < 0)
		return r;
	if (mode == NULL) {
		argv[8] = (char *)verb;
		argv[9] = NULL;
	}
	return run(pg, true, argv);
}

/* A child that outlives a crash of ours (an abort, a sanitizer's report, a signal): when the
 * pipe's write end closes without a word from pg_remove(), it stops the server and removes
 * the directory. */
static void watchdog(struct pg_server *pg)
{
	int fds[2];
	ssize_t n;
	pid_t pid;
	char c;

	if (pipe2(fds, O_CLOEXEC) < 0)
		return;
	fflush(NULL);
	if ((pid = fork()) < 0) {
		close(fds[0]);
		close(fds[1]);
		return;
	}
	if (pid == 0) {
		/* A ^C or a kill of the test's process group ends the test, not the cleanup. */
		signal(SIGINT, SIG_IGN);
		signal(SIGTERM, SIG_IGN);
		signal(SIGHUP, SIG_IGN);
		close(fds[1]);
		while ((n = read(fds[0], &c, 1)) < 0 && errno == EINTR)
			;
		if (n == 0) {
			pg->running = true;
			pg_stop(pg, "immediate");
			remove_tree(pg, pg->dir);
		}
		_exit(0);
	}
	close(fds[0]);
	pg->watchdog = pid;
	pg->watchdog_fd = fds[1];
}

int pg_start(struct pg_server *pg)
{
	char version[24];
	struct passwd *pw;
	int r;

	memset(pg, 0, sizeof(*pg));
	if (find_bin(pg, version, sizeof(version)) < 0) {
		snprintf(pg->why, sizeof(pg->why),
			 "PostgreSQL is not installed (no %s/*/bin/pg_ctl; apt-get install "
			 "postgresql)",
			 PG_ROOT);
		return -ENOENT;
	}
	pg->uid = geteuid();
	pg->gid = getegid();
	if (pg->uid == 0) {
		/* PostgreSQL refuses to run as root. */
		if ((pw = getpwnam("nobody")) == NULL) {
			snprintf(pg->why, sizeof(pg->why), "no user nobody to run PostgreSQL as");
			return -ESRCH;
		}
		pg->uid = pw->pw_uid;
		pg->gid = pw->pw_gid;
	}
	snprintf(pg->dir, sizeof(pg->dir), "/tmp/iotsec-pg-XXXXXX");
	if (mkdtemp(pg->dir) == NULL) {
		r = -errno;
		pg->dir[0] = '\0';
		snprintf(pg->why, sizeof(pg->why), "mkdtemp: %s", strerror(-r));
		return r;
	}
	snprintf(pg->data, sizeof(pg->data), "%s/data", pg->dir);
	snprintf(pg->log, sizeof(pg->log), "%s/log", pg->dir);
	if (chown(pg->dir, pg->uid, pg->gid) < 0 || chmod(pg->dir, 0700) < 0) {
		r = -errno;
		snprintf(pg->why, sizeof(pg->why), "chown %s: %s", pg->dir, strerror(-r));
		goto fail;
	}
	/* The log first, so the server's user may append to it. */
	if ((r = open(pg->log, O_WRONLY | O_CREAT | O_CLOEXEC, 0644)) < 0 || close(r) < 0 ||
	    chown(pg->log, pg->uid, pg->gid) < 0) {
		r = -errno;
		goto fail;
	}
	if ((r = make_cluster(pg, version)) < 0)
		goto fail;
	if ((r = configure(pg)) < 0) {
		snprintf(pg->why, sizeof(pg->why), "cannot configure the cluster");
		goto fail;
	}
	if ((r = ctl(pg, "start", NULL)) < 0) {
		snprintf(pg->why, sizeof(pg->why), "pg_ctl start failed");
		goto fail;
	}
	pg->running = true;
	watchdog(pg);
	if ((r = pg_createdb(pg, "iotsec")) < 0) {
		snprintf(pg->why, sizeof(pg->why), "createdb failed");
		goto fail;
	}
	return 0;
fail:
	if (pg->why[0] == '\0')
		snprintf(pg->why, sizeof(pg->why), "%s", strerror(-r));
	pg_show_log(pg);
	pg_remove(pg);
	return r;
}

int pg_stop(struct pg_server *pg, const char *mode)
{
	int r;

	if (!pg->running)
		return 0;
	if ((r = ctl(pg, "stop", mode)) == 0)
		pg->running = false;
	return r;
}

int pg_restart(struct pg_server *pg)
{
	int r;

	if (pg->running)
		return 0;
	if ((r = ctl(pg, "start", NULL)) == 0)
		pg->running = true;
	return r;
}

int pg_createdb(struct pg_server *pg, const char *name)
{
	char createdb[PATH_MAX];
	char *argv[] = {createdb, "-h", pg->dir, "-U", PG_USER, (char *)name, NULL};
	int r;

	if ((r = tool(pg, "createdb", createdb, sizeof(createdb))) < 0)
		return r;
	if ((r = run(pg, false, argv)) < 0)
		return r;
	snprintf(pg->conninfo, sizeof(pg->conninfo), "host=%s dbname=%s user=%s", pg->dir, name,
		 PG_USER);
	return 0;
}

void pg_remove(struct pg_server *pg)
{
	if (pg->watchdog > 0) {
		/* A byte: we clean up ourselves. */
		if (write(pg->watchdog_fd, "x", 1) != 1)
			kill(pg->watchdog, SIGKILL);
		close(pg->watchdog_fd);
		waitpid(pg->watchdog, NULL, 0);
		pg->watchdog = 0;
	}
	if (pg->dir[0] == '\0')
		return;
	if (pg->running && pg_stop(pg, "fast") < 0)
		pg_stop(pg, "immediate");
	remove_tree(pg, pg->dir);
	pg->dir[0] = '\0';
}

void pg_show_log(const struct pg_server *pg)
{
	char line[512];
	long pos;
	FILE *f;

	if (pg->log[0] == '\0' || (f = fopen(pg->log, "re")) == NULL)
		return;
	/* The last few kilobytes are enough to say why. */
	if (fseek(f, 0, SEEK_END) == 0 && (pos = ftell(f)) > 3000)
		fseek(f, pos - 3000, SEEK_SET);
	else
		rewind(f);
	fprintf(stderr, "--- %s\n", pg->log);
	while (fgets(line, sizeof(line), f) != NULL)
		fputs(line, stderr);
	fclose(f);
}
