/* A host name resolved without holding the daemon's loop: getaddrinfo() runs in a thread of its
 * own (one per query, detached), and its answer comes back on the loop through a socket pair, so
 * the callback runs on the loop like any other event. getaddrinfo() rather than a DNS client of
 * our own: it reads /etc/hosts and whatever nsswitch.conf names (mDNS on a home network), as
 * every other program on the device does.
 *
 * The thread owns all it uses and shares no memory with the caller: a query freed while
 * getaddrinfo() is still waiting on a slow resolver costs nothing more than that thread, which
 * ends when getaddrinfo() returns and finds nobody to tell. */
#ifndef IOTSEC_RESOLVE_H
#define IOTSEC_RESOLVE_H

#include <netinet/in.h>

#include <systemd/sd-event.h>

#define RESOLVE_ADDRS_MAX 8   /* addresses kept of one answer, in getaddrinfo()'s order */
#define RESOLVE_HOST_MAX  253 /* the longest DNS name */

struct resolve_result {
	/* 0; -ENOENT: no such name (or no address of it); -EAGAIN: the resolver did not answer
	 * (try again later); -ENOMEM; -EIO: anything else. */
	int r;
	char why[64]; /* what getaddrinfo() said, for a log line; "" when r is 0 */
	unsigned n;   /* 1..RESOLVE_ADDRS_MAX when r is 0 */
	char addrs[RESOLVE_ADDRS_MAX][INET6_ADDRSTRLEN]; /* numeric, IPv4 or IPv6 */
};

/* Called once on the loop with the answer; never after resolve_free(). The query may be freed
 * from inside it. */
typedef void (*resolve_cb)(const struct resolve_result *res, void *userdata);

struct resolve;
/* Resolves host, a name or a numeric address (which takes no lookup), for a TCP connection.
 * -EINVAL for an empty host or one longer than RESOLVE_HOST_MAX; -ENOMEM, -EMFILE, -EAGAIN when
 * the socket pair or the thread cannot be had. */
int resolve_start(sd_event *e, const char *host, resolve_cb cb, void *userdata,
		  struct resolve **ret);
/* Cancels a query (its callback is not called) or frees an answered one. NULL is allowed. */
void resolve_free(struct resolve *q);

#endif
