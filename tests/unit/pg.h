/* A real PostgreSQL server for the tests and the bench (Debian's postgresql package): its own
 * cluster in a fresh directory under /tmp, listening only on a unix socket in that directory,
 * fsync on (the store's commits are real ones), run by an unprivileged user when we are root
 * (the server refuses root). The cluster is copied from a template made once by initdb and kept
 * beside the build (IOTSEC_BUILD, or the parent of the test binary's directory:
 * build/pg-template-VERSION), so that the plain and the sanitizer runs share it. Everything is
 * stopped and removed by pg_remove(), or by a watchdog process when the test dies first. */
#ifndef IOTSEC_TEST_PG_H
#define IOTSEC_TEST_PG_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define PG_USER "iotsec" /* the cluster's superuser; trust authentication on the socket */

struct pg_server {
	char bin[256];	    /* the directory of initdb, pg_ctl, createdb */
	char dir[64];	    /* the temporary directory, its socket; "" when none */
	char data[128];	    /* the cluster */
	char log[128];	    /* what the server and the tools said */
	char conninfo[256]; /* the last pg_createdb()'s database, for libpq */
	char why[256];	    /* why pg_start() failed or found nothing to start */
	uid_t uid;	    /* who runs the server */
	gid_t gid;
	bool running;
	pid_t watchdog; /* stops and removes it all if we die first; 0: none */
	int watchdog_fd;
};

/* Make a cluster and start it, with a database "iotsec" in pg->conninfo. 0 on success; -ENOENT
 * when PostgreSQL is not installed (the test skips, pg->why says so); another negative errno
 * when something failed (pg->why and pg->log say what). On failure nothing is left behind. */
int pg_start(struct pg_server *pg);
/* Stop the server: mode "fast" (sessions ended, a clean shutdown) or "immediate" (the
 * processes killed, recovery at the next start). The cluster stays. 0 on success. */
int pg_stop(struct pg_server *pg, const char *mode);
/* Start the stopped server again. 0 on success. */
int pg_restart(struct pg_server *pg);
/* A new database NAME; its connection string into pg->conninfo. 0 on success. */
int pg_createdb(struct pg_server *pg, const char *name);
/* Stop the server if it runs and remove the directory. Accepts a zeroed struct. */
void pg_remove(struct pg_server *pg);
/* The end of the server's log on stderr (a failing test shows why). */
void pg_show_log(const struct pg_server *pg);

#endif
