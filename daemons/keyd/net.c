/* keyd's sockets: UDP broadcasts of I_AM_ON_THE_NETWORK and TCP exchanges of framed envelopes. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "frame.h"
#include "keyd.h"
#include "log.h"

struct keyd_conn {
	struct keyd *k;
	int fd;
	sd_event_source *io, *idle;
	struct frame_reader *fr;
	uint8_t *out;
	size_t out_len, out_off;
	bool connecting, finishing;
	struct sockaddr_in addr;
	char peer[CERT_NAME_MAX];
	void *session;
	void (*session_free)(void *);
	struct keyd_conn *next;
};

static uint16_t keyd_port(const struct keyd *k)
{
	return (uint16_t)(k->cfg->net.port + 1);
}

static void refuse(struct keyd *k, const struct sockaddr_in *from, const char *how, int r)
{
	if (refusals_note(&k->refused, from->sin_addr.s_addr, r))
		log_warnx("refused %s from %s: %s", how, inet_ntoa(from->sin_addr),
			  iotsec_strerror(r));
}

static void conn_free(struct keyd_conn *c)
{
	struct keyd_conn **p;

	for (p = &c->k->conns; *p && *p != c; p = &(*p)->next)
		;
	if (*p) {
		*p = c->next;
		c->k->n_conns--;
	}
	sd_event_source_disable_unref(c->io);
	sd_event_source_disable_unref(c->idle);
	if (c->fd >= 0)
		close(c->fd);
	frame_reader_free(c->fr);
	if (c->session && c->session_free)
		c->session_free(c->session);
	free(c->out);
	free(c);
}

static int on_idle(sd_event_source *s, uint64_t usec, void *ud)
{
	struct keyd_conn *c = ud;

	(void)s, (void)usec;
	log_debug("dropping an idle exchange with %s", c->peer[0] ? c->peer : "?");
	conn_free(c);
	return 0;
}

static int flush(struct keyd_conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);

		if (n < 0)
			return errno == EAGAIN ? 0 : -errno;
		c->out_off += (size_t)n;
	}
	c->out_off = c->out_len = 0;
	return 0;
}

static void update_events(struct keyd_conn *c)
{
	sd_event_source_set_io_events(c->io,
				      EPOLLIN | (c->out_len || c->connecting ? EPOLLOUT : 0));
}

/* Returns false when the connection was freed. */
static bool read_frames(struct keyd_conn *c)
{
	uint8_t buf[4096];
	const uint8_t *frame;
	size_t len;
	ssize_t n;
	int r;

	n = recv(c->fd, buf, sizeof(buf), 0);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		conn_free(c);
		return false;
	}
	if (n < 0)
		return true;
	if ((r = frame_reader_feed(c->fr, buf, (size_t)n)) < 0) {
		refuse(c->k, &c->addr, "a TCP stream", r);
		conn_free(c);
		return false;
	}
	while ((r = frame_reader_next(c->fr, &frame, &len)) == 0) {
		struct envelope_msg m;

		if ((r = envelope_open(c->k->env, frame, len, &m)) < 0) {
			refuse(c->k, &c->addr, "a message", r);
			conn_free(c);
			return false;
		}
		/* One connection, one peer: the device we dialled, or the first to speak on a
		 * connection it opened. Anyone else answering (a device that took the address)
		 * would otherwise be handed what was meant for the other. */
		if (c->peer[0] != '\0' && strcmp(c->peer, m.sender.name) != 0) {
			refuse(c->k, &c->addr, "a message by another device than the one dialled",
			       -IOTSEC_EIDENTITY);
			envelope_msg_clear(&m);
			conn_free(c);
			return false;
		}
		snprintf(c->peer, sizeof(c->peer), "%s", m.sender.name);
		keyd_on_message(c->k, c, &m);
		envelope_msg_clear(&m);
	}
	if (r != -EAGAIN) {
		refuse(c->k, &c->addr, "a TCP frame", r);
		conn_free(c);
		return false;
	}
	return true;
}

static int on_conn_io(sd_event_source *s, int fd, uint32_t revents, void *ud)
{
	struct keyd_conn *c = ud;
	int err = 0;
	socklen_t len = sizeof(err);

	(void)s, (void)fd;
	if (c->connecting && (revents & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) {
			log_debug("cannot reach %s: %s", inet_ntoa(c->addr.sin_addr),
				  strerror(err));
			conn_free(c);
			return 0;
		}
		c->connecting = false;
	}
	if ((revents & EPOLLIN) && !read_frames(c))
		return 0;
	if (!c->connecting && flush(c) < 0) {
		conn_free(c);
		return 0;
	}
	if (c->finishing && c->out_len == 0) {
		conn_free(c);
		return 0;
	}
	update_events(c);
	return 0;
}

static struct keyd_conn *conn_new(struct keyd *k, int fd, const struct sockaddr_in *addr)
{
	struct keyd_conn *c = NULL;

	if (k->n_conns >= KEYD_CONNS_MAX || (c = calloc(1, sizeof(*c))) == NULL) {
		close(fd);
		return NULL;
	}
	c->k = k, c->fd = fd, c->addr = *addr;
	if (frame_reader_new(&c->fr) < 0 ||
	    sd_event_add_io(k->loop, &c->io, fd, EPOLLIN | EPOLLOUT, on_conn_io, c) < 0 ||
	    sd_event_add_time_relative(k->loop, &c->idle, CLOCK_MONOTONIC, KEYD_IDLE_USEC, 0,
				       on_idle, c) < 0) {
		c->next = NULL;
		conn_free(c);
		return NULL;
	}
	c->next = k->conns;
	k->conns = c;
	k->n_conns++;
	return c;
}

struct keyd_conn *keyd_conn_to(struct keyd *k, const struct keyd_peer *peer)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	struct keyd_conn *c;

	if (fd < 0)
		return NULL;
	if (connect(fd, (const struct sockaddr *)&peer->addr, sizeof(peer->addr)) < 0 &&
	    errno != EINPROGRESS) {
		close(fd);
		return NULL;
	}
	if ((c = conn_new(k, fd, &peer->addr)) == NULL)
		return NULL;
	c->connecting = true;
	snprintf(c->peer, sizeof(c->peer), "%s", peer->name);
	return c;
}

int keyd_conn_send(struct keyd_conn *c, const char *type, json_t *body, bool with_cert)
{
	char *env = NULL;
	uint8_t *frame = NULL, *grown;
	size_t envlen, flen;
	int r;

	if ((r = envelope_seal(c->k->env, type, body, with_cert, &env, &envlen)) < 0 ||
	    (r = frame_encode(env, envlen, &frame, &flen)) < 0)
		goto out;
	if ((grown = realloc(c->out, c->out_len + flen)) == NULL) {
		r = -ENOMEM;
		goto out;
	}
	memcpy(grown + c->out_len, frame, flen);
	c->out = grown;
	c->out_len += flen;
	update_events(c);
out:
	if (r < 0)
		log_warnx("cannot send %s to %s: %s", type, c->peer, iotsec_strerror(r));
	free(frame);
	free(env);
	return r;
}

void keyd_conn_finish(struct keyd_conn *c)
{
	c->finishing = true;
	update_events(c);
}

const char *keyd_conn_peer(const struct keyd_conn *c)
{
	return c->peer[0] ? c->peer : NULL;
}

void *keyd_conn_session(struct keyd_conn *c)
{
	return c->session;
}

void keyd_conn_set_session(struct keyd_conn *c, void *session, void (*free_fn)(void *))
{
	if (c->session && c->session_free)
		c->session_free(c->session);
	c->session = session;
	c->session_free = free_fn;
}

static int on_accept(sd_event_source *s, int fd, uint32_t revents, void *ud)
{
	struct keyd *k = ud;
	struct sockaddr_in from;
	socklen_t len = sizeof(from);
	int cfd;

	(void)s, (void)revents;
	cfd = accept4(fd, (struct sockaddr *)&from, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (cfd >= 0 && conn_new(k, cfd, &from) == NULL)
		log_warnx("dropping a connection from %s: too many exchanges",
			  inet_ntoa(from.sin_addr));
	return 0;
}

static int on_datagram(sd_event_source *s, int fd, uint32_t revents, void *ud)
{
	struct keyd *k = ud;
	static char buf[ENVELOPE_MAX + 1];
	struct sockaddr_in from;
	socklen_t fromlen = sizeof(from);
	struct envelope_msg m;
	struct keyd_peer *p;
	ssize_t n;
	int r;

	(void)s, (void)revents;
	if ((n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fromlen)) < 0)
		return 0;
	if ((r = cert_store_refresh(k->store, NULL)) < 0)
		log_warnx("keeping the previous CA and CRL: %s", iotsec_strerror(r));
	if ((r = envelope_open(k->env, buf, (size_t)n, &m)) < 0) {
		refuse(k, &from, "an announcement", r);
		return 0;
	}
	if (strcmp(m.type, KEYD_MSG_ANNOUNCE) != 0) {
		refuse(k, &from, "an announcement", -IOTSEC_ETYPE);
	} else if (strcmp(m.sender.name, k->self.name) != 0) {
		from.sin_port = htons(keyd_port(k));
		if ((p = keyd_peer_update(k, &m, &from)) == NULL)
			refuse(k, &from, "an announcement", -EBADMSG);
		else if (k->pool_state)
			keyd_controller_on_announce(k, p);
	}
	envelope_msg_clear(&m);
	return 0;
}

void keyd_announce(struct keyd *k)
{
	struct ring_indices *x = NULL;
	json_t *body = NULL;
	char *buf = NULL;
	size_t len;
	int r;

	if (!k->cert_ok)
		return;
	/* Before its first ring a device announces an empty body: it has nothing to match yet. */
	if (k->epoch == 0)
		body = json_object();
	else if ((x = calloc(1, sizeof(*x))) != NULL) {
		x->epoch = k->epoch, x->n = k->n_index;
		memcpy(x->index, k->index, k->n_index * sizeof(x->index[0]));
		if (ring_start_build(x, k->pool, &body) < 0)
			body = NULL;
	}
	if (body == NULL ||
	    (r = envelope_seal(k->env, KEYD_MSG_ANNOUNCE, body, true, &buf, &len)) < 0)
		log_warnx("cannot build %s", KEYD_MSG_ANNOUNCE);
	else if (sendto(k->udp, buf, len, 0, (struct sockaddr *)&k->bcast, sizeof(k->bcast)) < 0)
		log_warn("cannot broadcast %s", KEYD_MSG_ANNOUNCE);
	free(buf);
	free(x);
	json_decref(body);
}

int keyd_net_open(struct keyd *k)
{
	struct sockaddr_in any = {.sin_family = AF_INET, .sin_port = htons(keyd_port(k))};
	int one = 1, r;

	k->bcast = any;
	if (inet_pton(AF_INET, k->cfg->net.broadcast, &k->bcast.sin_addr) != 1)
		return -EINVAL;
	k->udp = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	k->tcp = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (k->udp < 0 || k->tcp < 0 ||
	    setsockopt(k->udp, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    setsockopt(k->udp, SOL_SOCKET, SO_BROADCAST, &one, sizeof(one)) < 0 ||
	    setsockopt(k->tcp, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(k->udp, (struct sockaddr *)&any, sizeof(any)) < 0 ||
	    bind(k->tcp, (struct sockaddr *)&any, sizeof(any)) < 0 || listen(k->tcp, 64) < 0)
		return -errno;
	if ((r = sd_event_add_io(k->loop, NULL, k->udp, EPOLLIN, on_datagram, k)) < 0 ||
	    (r = sd_event_add_io(k->loop, NULL, k->tcp, EPOLLIN, on_accept, k)) < 0)
		return r;
	return 0;
}

void keyd_net_close(struct keyd *k)
{
	while (k->conns)
		conn_free(k->conns);
	if (k->udp >= 0)
		close(k->udp);
	if (k->tcp >= 0)
		close(k->tcp);
}
