/* resolve: getaddrinfo() off the loop (resolve.h). A numeric address is answered at once (from a
 * defer source, so the callback still runs on the loop, never inside resolve_start()); a name
 * goes to a thread that writes one struct resolve_result into its end of a SOCK_SEQPACKET pair,
 * one datagram, all or nothing, and ends. */
#include "resolve.h"

#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

struct resolve {
	sd_event_source *src;
	int fd; /* ours of the pair; -1 for a numeric address */
	resolve_cb cb;
	void *userdata;
	struct resolve_result res;
};

/* All the thread has, its own. */
struct job {
	int fd;
	char host[RESOLVE_HOST_MAX + 1];
};

/* getaddrinfo() into res: the addresses of host for TCP, numeric, in getaddrinfo()'s order (RFC
 * 6724: the one most likely to work first). */
static void lookup(const char *host, int flags, struct resolve_result *res)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
				 .ai_socktype = SOCK_STREAM,
				 .ai_flags = flags},
			*list = NULL;
	int rc;

	memset(res, 0, sizeof(*res));
	errno = 0;
	rc = getaddrinfo(host, NULL, &hints, &list);
	switch (rc) {
	case 0:
		break;
	case EAI_NONAME:
	case EAI_NODATA:
	case EAI_ADDRFAMILY:
		res->r = -ENOENT;
		break;
	case EAI_AGAIN:
		res->r = -EAGAIN;
		break;
	case EAI_MEMORY:
		res->r = -ENOMEM;
		break;
	default:
		res->r = -EIO;
		break;
	}
	if (rc != 0) {
		snprintf(res->why, sizeof(res->why), "%s",
			 rc == EAI_SYSTEM && errno != 0 ? strerror(errno) : gai_strerror(rc));
		goto out;
	}
	for (struct addrinfo *ai = list; ai != NULL && res->n < RESOLVE_ADDRS_MAX; ai = ai->ai_next)
		if (getnameinfo(ai->ai_addr, ai->ai_addrlen, res->addrs[res->n],
				sizeof(res->addrs[res->n]), NULL, 0, NI_NUMERICHOST) == 0)
			res->n++;
	if (res->n == 0) {
		res->r = -ENOENT;
		snprintf(res->why, sizeof(res->why), "no address of the name");
	}
out:
	freeaddrinfo(list);
}

static void *worker(void *arg)
{
	struct job *j = arg;
	struct resolve_result res;

	/* AI_ADDRCONFIG: no IPv6 address to try on a host without IPv6. */
	lookup(j->host, AI_ADDRCONFIG, &res);
	/* Nobody may be listening any more (the query was freed): MSG_NOSIGNAL, and the error is
	 * nobody's business. */
	(void)send(j->fd, &res, sizeof(res), MSG_NOSIGNAL);
	close(j->fd);
	free(j);
	return NULL;
}

/* The callback comes last: it may free q. */
static void answer(struct resolve *q)
{
	sd_event_source_set_enabled(q->src, SD_EVENT_OFF);
	q->cb(&q->res, q->userdata);
}

static int on_answer(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct resolve *q = userdata;
	ssize_t len;

	(void)s, (void)revents;
	len = recv(fd, &q->res, sizeof(q->res), MSG_DONTWAIT);
	if (len < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (len != (ssize_t)sizeof(q->res) || q->res.n > RESOLVE_ADDRS_MAX ||
	    (q->res.r == 0 && q->res.n == 0)) {
		memset(&q->res, 0, sizeof(q->res));
		q->res.r = -EIO;
		snprintf(q->res.why, sizeof(q->res.why), "the resolver's thread gave no answer");
	}
	q->res.why[sizeof(q->res.why) - 1] = '\0';
	for (unsigned i = 0; i < RESOLVE_ADDRS_MAX; i++)
		q->res.addrs[i][sizeof(q->res.addrs[i]) - 1] = '\0';
	answer(q);
	return 0;
}

static int on_numeric(sd_event_source *s, void *userdata)
{
	(void)s;
	answer(userdata);
	return 0;
}

/* The thread, detached, with every signal blocked: signals are the loop's (signalfd wants them
 * blocked in every thread). */
static int spawn(struct job *j)
{
	pthread_attr_t attr;
	pthread_t t;
	sigset_t all, old;
	int r;

	if ((r = pthread_attr_init(&attr)) != 0)
		return -r;
	r = pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	if (r == 0)
		r = pthread_create(&t, &attr, worker, j);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	return -r;
}

int resolve_start(sd_event *e, const char *host, resolve_cb cb, void *userdata,
		  struct resolve **ret)
{
	struct resolve *q = NULL;
	struct job *j = NULL;
	int pair[2] = {-1, -1}, r = -EINVAL;

	if (e == NULL || host == NULL || cb == NULL || ret == NULL || host[0] == '\0' ||
	    strlen(host) > RESOLVE_HOST_MAX)
		goto out;
	r = -ENOMEM;
	if ((q = calloc(1, sizeof(*q))) == NULL)
		goto out;
	q->fd = -1;
	q->cb = cb;
	q->userdata = userdata;
	/* An address needs no thread: AI_NUMERICHOST never asks anybody. */
	lookup(host, AI_NUMERICHOST, &q->res);
	if (q->res.r == 0) {
		if ((r = sd_event_add_defer(e, &q->src, on_numeric, q)) < 0)
			goto out;
		goto done;
	}
	if ((j = calloc(1, sizeof(*j))) == NULL)
		goto out;
	snprintf(j->host, sizeof(j->host), "%s", host);
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0) {
		r = -errno;
		goto out;
	}
	if ((r = sd_event_add_io(e, &q->src, pair[0], EPOLLIN, on_answer, q)) < 0)
		goto out;
	q->fd = pair[0];
	pair[0] = -1;
	j->fd = pair[1];
	if ((r = spawn(j)) < 0)
		goto out;
	pair[1] = -1;
	j = NULL;
done:
	*ret = q;
	q = NULL;
	r = 0;
out:
	if (pair[0] >= 0)
		close(pair[0]);
	if (pair[1] >= 0)
		close(pair[1]);
	free(j);
	resolve_free(q);
	return r;
}

void resolve_free(struct resolve *q)
{
	if (q == NULL)
		return;
	q->src = sd_event_source_disable_unref(q->src);
	if (q->fd >= 0)
		close(q->fd);
	free(q);
}
