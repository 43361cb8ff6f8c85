/* lan: the home network as the daemons see it (lan.h). This is a boundary between the library
 * and the daemons, like daemon.c: refusals are logged here, once, so that every daemon refuses
 * alike. */
#include "lan.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "crypto.h"
#include "clock.h"
#include "daemon.h"
#include "frame.h"
#include "log.h"

/* ---- member ---- */

int lan_member_load(const struct iotsec_config *cfg, const struct envelope_rule *rules,
		    struct lan_member **ret, const char **ret_what)
{
	struct lan_member *m = calloc(1, sizeof(*m));
	const char *what = cfg->device.cert;
	char key_path[PATH_MAX];
	int r = -ENOMEM;

	if (m == NULL)
		goto out;
	if ((r = cert_load(cfg->device.cert, &m->cert)) < 0 ||
	    (r = cert_info_get(m->cert, &m->self)) < 0)
		goto out;
	m->cert_len = (size_t)i2d_X509(m->cert, NULL);
	what = cfg->device.key;
	if ((r = daemon_secret_path("device.key", cfg->device.key, key_path, sizeof(key_path))) <
		0 ||
	    (r = crypto_load_private_key(key_path, &m->key)) < 0 ||
	    (r = cert_key_matches(m->cert, m->key)) < 0)
		goto out;
	what = cfg->device.ca;
	if ((r = daemon_cert_store_load(cfg, &m->store)) < 0) {
		if (r == -IOTSEC_ECRL)
			what = cfg->device.crl;
		goto out;
	}
	daemon_ca_watch_start(m->store, &m->ca);
	what = cfg->device.cert;
	if ((r = envelope_ctx_new(m->store, m->cert, m->key, rules, cfg->net.delta_t, &m->env)) < 0)
		goto out;
	*ret = m;
	m = NULL;
out:
	if (r < 0 && ret_what)
		*ret_what = what;
	lan_member_free(m);
	return r;
}

void lan_member_free(struct lan_member *m)
{
	if (m == NULL)
		return;
	envelope_ctx_free(m->env);
	cert_store_free(m->store);
	X509_free(m->cert);
	EVP_PKEY_free(m->key);
	free(m);
}

void lan_member_refresh(struct lan_member *m)
{
	daemon_ca_refresh(m->store, &m->ca, LAN_REFRESH_MS);
}

void lan_member_refuse(struct lan_member *m, const struct sockaddr_in *from, const char *sender,
		       int r)
{
	char addr[INET_ADDRSTRLEN] = "?", more[64] = "";
	unsigned long unlogged;

	if (!refusals_note(&m->refused, from->sin_addr.s_addr, sender, r, clock_mono_ms()))
		return;
	inet_ntop(AF_INET, &from->sin_addr, addr, sizeof(addr));
	if ((unlogged = refusals_take_unlogged(&m->refused)) > 0)
		snprintf(more, sizeof(more), " (%lu more refusals not logged)", unlogged);
	if (sender && sender[0])
		log_warnx("refused a message from %s (%s): %s%s", addr, sender, iotsec_strerror(r),
			  more);
	else
		log_warnx("refused a message from %s: %s%s", addr, iotsec_strerror(r), more);
}

int lan_member_status(const struct lan_member *m, json_t *status)
{
	json_t *by = json_object();

	for (size_t i = 0; by && i < m->refused.n_devices; i++)
		if (json_object_set_new(by, m->refused.device[i].name,
					json_integer((json_int_t)m->refused.device[i].count)) < 0) {
			json_decref(by);
			return -ENOMEM;
		}
	if (by == NULL ||
	    json_object_set_new(status, "refused", json_integer((json_int_t)m->refused.total)) <
		0 ||
	    json_object_set_new(status, "refused_by", by) < 0)
		return -ENOMEM;
	return 0;
}

/* ---- broadcasts ---- */

struct lan_udp {
	struct lan_member *m;
	int fd;
	sd_event_source *io;
	struct sockaddr_in bcast;
	lan_udp_fn fn;
	void *userdata;
	int send_error; /* of the last broadcast, said once until it changes */
};

/* Where the datagram was sent to, from its IP_PKTINFO; INADDR_ANY when unknown. */
static struct in_addr datagram_dest(struct msghdr *mh)
{
	struct in_addr none = {.s_addr = INADDR_ANY};

	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c))
		if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO)
			return ((struct in_pktinfo *)(void *)CMSG_DATA(c))->ipi_addr;
	return none;
}

static int on_datagram(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	static char buf[ENVELOPE_MAX + 1];
	struct lan_udp *u = userdata;
	union {
		char buf[CMSG_SPACE(sizeof(struct in_pktinfo))];
		struct cmsghdr align;
	} control;
	struct sockaddr_in from = {0};
	struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
	struct msghdr mh = {.msg_name = &from,
			    .msg_namelen = sizeof(from),
			    .msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = control.buf,
			    .msg_controllen = sizeof(control.buf)};
	char sender[CERT_NAME_MAX] = "";
	struct envelope_msg msg;
	struct in_addr dest;
	ssize_t n;
	int r;

	(void)s, (void)revents;
	/* One datagram a turn: the loop comes back while more wait, and other sources get
	 * theirs. */
	if ((n = recvmsg(fd, &mh, MSG_DONTWAIT)) < 0)
		return 0;
	dest = datagram_dest(&mh);
	lan_member_refresh(u->m);
	if ((size_t)n > ENVELOPE_MAX)
		r = -EMSGSIZE;
	else
		r = envelope_open(u->m->env, buf, (size_t)n, &msg, sender);
	if (r < 0) {
		lan_member_refuse(u->m, &from, sender, r);
		return 0;
	}
	u->fn(&msg, &from,
	      dest.s_addr == u->bcast.sin_addr.s_addr || dest.s_addr == htonl(INADDR_BROADCAST),
	      u->userdata);
	envelope_msg_clear(&msg);
	return 0;
}

int lan_udp_open(sd_event *e, struct lan_member *m, uint16_t port, const char *broadcast,
		 lan_udp_fn fn, void *userdata, struct lan_udp **ret)
{
	struct sockaddr_in any = {.sin_family = AF_INET, .sin_port = htons(port)};
	struct lan_udp *u = calloc(1, sizeof(*u));
	int one = 1, r;

	if (u == NULL)
		return -ENOMEM;
	u->m = m, u->fn = fn, u->userdata = userdata;
	u->bcast = any;
	u->fd = -1;
	if (inet_pton(AF_INET, broadcast, &u->bcast.sin_addr) != 1) {
		r = -EINVAL;
		goto out;
	}
	/* No SO_REUSEADDR: a second socket on our port would share our unicast datagrams. */
	if ((u->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0 ||
	    setsockopt(u->fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof(one)) < 0 ||
	    setsockopt(u->fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one)) < 0 ||
	    bind(u->fd, (struct sockaddr *)&any, sizeof(any)) < 0) {
		r = -errno;
		goto out;
	}
	if ((r = sd_event_add_io(e, &u->io, u->fd, EPOLLIN, on_datagram, u)) < 0)
		goto out;
	*ret = u;
	u = NULL;
out:
	lan_udp_free(u);
	return r;
}

void lan_udp_free(struct lan_udp *u)
{
	if (u == NULL)
		return;
	sd_event_source_disable_unref(u->io);
	if (u->fd >= 0)
		close(u->fd);
	free(u);
}

int lan_udp_broadcast(struct lan_udp *u, const char *type, json_t *body)
{
	char *buf = NULL;
	size_t len;
	int r;

	if ((r = envelope_seal(u->m->env, type, NULL, NULL, body, true, &buf, &len)) < 0)
		return r;
	if (sendto(u->fd, buf, len, 0, (struct sockaddr *)&u->bcast, sizeof(u->bcast)) < 0)
		r = -errno;
	free(buf);
	/* A network that is down fails every broadcast, every try_ms: one line when it starts
	 * failing (or fails otherwise), one when it works again. */
	if (r != u->send_error) {
		if (r < 0)
			log_warnx("cannot broadcast to %s: %s (said once until it changes)",
				  inet_ntoa(u->bcast.sin_addr), iotsec_strerror(r));
		else
			log_notice("broadcasting to %s again", inet_ntoa(u->bcast.sin_addr));
		u->send_error = r;
	}
	return r;
}

/* ---- links ---- */

struct lan_link {
	struct lan_tcp *t;
	struct lan_link *prev, *next;
	int fd;
	bool incoming, authenticated, connecting, finishing;
	bool verified; /* carried a verified unicast from peer: its failures are peer's (lan.h) */
	bool dispatching, doomed; /* closed from inside its own callback: freed after it */
	sd_event_source *io, *timer;
	struct frame_reader *fr;
	uint8_t *out;
	size_t out_len, out_off;
	struct sockaddr_in addr;
	char peer[CERT_NAME_MAX];
	void *data;
	void (*data_free)(void *);
};

struct lan_tcp {
	struct lan_member *m;
	sd_event *e;
	int fd;
	sd_event_source *io;
	lan_link_fn fn;
	void *userdata;
	lan_failure_fn failure_fn;
	void *failure_userdata;
	struct lan_link *links; /* newest first */
	size_t n_in, n_out;
};

static void link_free(struct lan_link *l)
{
	struct lan_tcp *t = l->t;

	if (l->prev)
		l->prev->next = l->next;
	else
		t->links = l->next;
	if (l->next)
		l->next->prev = l->prev;
	if (l->incoming)
		t->n_in--;
	else
		t->n_out--;
	/* First: whatever waits on the link must learn it is gone before anything else runs. */
	if (l->data && l->data_free)
		l->data_free(l->data);
	sd_event_source_disable_unref(l->io);
	sd_event_source_disable_unref(l->timer);
	if (l->fd >= 0)
		close(l->fd);
	frame_reader_free(l->fr);
	free(l->out);
	free(l);
}

void lan_link_close(struct lan_link *l)
{
	if (l->dispatching)
		l->doomed = true;
	else
		link_free(l);
}

static void link_update(struct lan_link *l)
{
	/* A finishing link wants EPOLLOUT even with nothing to send: that is when it closes. */
	sd_event_source_set_io_events(
	    l->io, EPOLLIN | (l->out_len || l->connecting || l->finishing ? EPOLLOUT : 0));
}

static void link_refuse(struct lan_link *l, const char *sender, int r)
{
	lan_member_refuse(l->t->m, &l->addr, sender, r);
	lan_link_close(l);
}

/* The refusals lan.h counts against a link's device: what it sent that fails authentication or
 * is wrong in itself. Not the state of a certificate (revoked, expired, a CRL that lapsed: the
 * administrator's doing), nor an unknown type (what a newer version of a daemon sends), nor our
 * own lack of room. */
static bool attributable(int r)
{
	switch (-r) {
	case EBADMSG:
	case EMSGSIZE:
	case IOTSEC_EBADSIG:
	case IOTSEC_EREPLAY:
	case IOTSEC_ESTALE:
	case IOTSEC_ENOTFORUS:
	case IOTSEC_EROLE:
	case IOTSEC_EIDENTITY:
	case IOTSEC_EUNKNOWNCERT:
	case IOTSEC_EUNKNOWNCA:
	case IOTSEC_ESELFSIGNED:
	case IOTSEC_EHOME:
		return true;
	default:
		return false;
	}
}

/* Refuse what came on l and drop the link; then, when the link had carried a verified message
 * addressed to us from its device, tell the owner of the transport it was that device's. Called
 * once the link is gone, the callback may close any other link. */
static void link_fail(struct lan_link *l, const char *sender, int r)
{
	struct lan_tcp *t = l->t;
	char device[CERT_NAME_MAX] = "";

	if (l->verified && attributable(r))
		memcpy(device, l->peer, sizeof(device));
	link_refuse(l, sender, r);
	if (device[0] != '\0' && t->failure_fn) {
		log_debug("%s answers for a failure on its link: %s", device, iotsec_strerror(r));
		t->failure_fn(device, r, t->failure_userdata);
	}
}

static int on_link_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct lan_link *l = userdata;

	(void)s, (void)usec;
	if (l->incoming && !l->authenticated)
		link_refuse(l, "", -ETIMEDOUT); /* nothing authentic in LAN_HELLO_USEC */
	else {
		log_debug("dropping an idle link with %s", l->peer[0] ? l->peer : "?");
		link_free(l);
	}
	return 0;
}

static void link_touch(struct lan_link *l)
{
	sd_event_source_set_time_relative(l->timer, LAN_IDLE_USEC);
	sd_event_source_set_enabled(l->timer, SD_EVENT_ONESHOT);
}

/* A device speaks on at most LAN_PER_DEVICE_MAX incoming links at once: past that, its oldest
 * one goes (one device cannot hold every slot by speaking on each, nor keep others out). l, the
 * link it has just spoken on, stays. */
static void make_room(struct lan_link *l, const char *device)
{
	struct lan_link *x, *oldest = NULL;
	size_t n = 0;

	if (!l->incoming)
		return;
	for (x = l->t->links; x; x = x->next)
		if (x != l && x->incoming && x->authenticated && strcmp(x->peer, device) == 0) {
			n++;
			oldest = x; /* the list is newest first */
		}
	if (n < LAN_PER_DEVICE_MAX)
		return;
	log_debug("%s holds %zu links already: dropping its oldest", device, n);
	lan_link_close(oldest);
}

/* One verified frame; false when the link was dropped. */
static bool link_message(struct lan_link *l, const uint8_t *frame, size_t len)
{
	char sender[CERT_NAME_MAX];
	struct envelope_msg msg;
	int r;

	if ((r = envelope_open(l->t->m->env, frame, len, &msg, sender)) < 0) {
		link_fail(l, sender, r);
		return false;
	}
	/* One link, one device: anyone else answering (one that took the address) would otherwise
	 * be handed what was meant for the other. */
	if (l->peer[0] != '\0' && strcmp(l->peer, msg.sender.name) != 0) {
		envelope_msg_clear(&msg);
		link_fail(l, sender, -IOTSEC_EIDENTITY);
		return false;
	}
	if (l->peer[0] == '\0')
		make_room(l, msg.sender.name);
	snprintf(l->peer, sizeof(l->peer), "%s", msg.sender.name);
	l->authenticated = true;
	/* Only a message addressed to us binds the stream to its device: a broadcast anyone
	 * overheard (and we missed) could be relayed on a link of the relayer's. */
	if (msg.id[0] != '\0')
		l->verified = true;
	link_touch(l);
	l->dispatching = true;
	l->t->fn(l, &msg, l->t->userdata);
	l->dispatching = false;
	envelope_msg_clear(&msg);
	if (l->doomed) {
		link_free(l);
		return false;
	}
	return true;
}

/* Read what is there and hand out every whole frame; false when the link was dropped. */
static bool link_read(struct lan_link *l)
{
	uint8_t buf[FRAME_READ_MAX];
	const uint8_t *frame;
	size_t len;
	ssize_t n;
	int r;

	n = recv(l->fd, buf, sizeof(buf), 0);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		link_free(l);
		return false;
	}
	if (n < 0)
		return true;
	if ((r = frame_reader_feed(l->fr, buf, (size_t)n)) < 0) {
		link_fail(l, "", r);
		return false;
	}
	while ((r = frame_reader_next(l->fr, &frame, &len)) == 0)
		if (!link_message(l, frame, len))
			return false;
	if (r != -EAGAIN) {
		link_fail(l, "", r);
		return false;
	}
	return true;
}

static int link_flush(struct lan_link *l)
{
	while (l->out_off < l->out_len) {
		ssize_t n = send(l->fd, l->out + l->out_off, l->out_len - l->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -errno;
		l->out_off += (size_t)n;
	}
	l->out_off = l->out_len = 0;
	return 0;
}

static int on_link_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct lan_link *l = userdata;
	socklen_t len = sizeof(int);
	int err = 0;

	(void)s, (void)fd;
	if (l->connecting && (revents & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
		if (getsockopt(l->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) {
			log_debug("cannot reach %s (%s): %s", l->peer, inet_ntoa(l->addr.sin_addr),
				  strerror(err));
			link_free(l);
			return 0;
		}
		l->connecting = false;
	}
	if ((revents & (EPOLLIN | EPOLLHUP | EPOLLERR)) && !l->connecting && !link_read(l))
		return 0;
	if (!l->connecting && link_flush(l) < 0) {
		link_free(l);
		return 0;
	}
	if (l->finishing && l->out_len == 0) {
		link_free(l);
		return 0;
	}
	link_update(l);
	return 0;
}

static int link_new(struct lan_tcp *t, int fd, const struct sockaddr_in *addr, bool incoming,
		    struct lan_link **ret)
{
	struct lan_link *l = calloc(1, sizeof(*l));
	int r;

	if (l == NULL) {
		close(fd);
		return -ENOMEM;
	}
	l->t = t, l->fd = fd, l->addr = *addr, l->incoming = incoming;
	l->next = t->links;
	if (t->links)
		t->links->prev = l;
	t->links = l;
	if (incoming)
		t->n_in++;
	else
		t->n_out++;
	if ((r = frame_reader_new(&l->fr)) < 0 ||
	    (r = sd_event_add_io(t->e, &l->io, fd, EPOLLIN | EPOLLOUT, on_link_io, l)) < 0 ||
	    (r = sd_event_add_time_relative(t->e, &l->timer, CLOCK_MONOTONIC,
					    incoming ? LAN_HELLO_USEC : LAN_IDLE_USEC, 0,
					    on_link_timer, l)) < 0) {
		link_free(l);
		return r;
	}
	*ret = l;
	return 0;
}

/* Room for one more incoming link from addr, making it if need be by dropping the oldest link
 * that has not said anything authentic yet. */
static bool room_for(struct lan_tcp *t, const struct sockaddr_in *addr)
{
	struct lan_link *l, *victim = NULL;
	size_t same = 0;

	for (l = t->links; l; l = l->next) {
		if (!l->incoming)
			continue;
		same += l->addr.sin_addr.s_addr == addr->sin_addr.s_addr;
		if (!l->authenticated)
			victim = l; /* the list is newest first: the last one seen is the oldest */
	}
	if (same >= LAN_PER_ADDR_MAX)
		return false;
	if (t->n_in < LAN_IN_MAX)
		return true;
	if (victim == NULL)
		return false;
	log_debug("dropping a silent link from %s to make room", inet_ntoa(victim->addr.sin_addr));
	link_free(victim);
	return true;
}

static int on_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct lan_tcp *t = userdata;
	struct sockaddr_in from;
	socklen_t len = sizeof(from);
	struct lan_link *l;
	int cfd;

	(void)s, (void)revents;
	if ((cfd = accept4(fd, (struct sockaddr *)&from, &len, SOCK_NONBLOCK | SOCK_CLOEXEC)) < 0)
		return 0;
	if (!room_for(t, &from)) {
		lan_member_refuse(t->m, &from, "", -EBUSY);
		close(cfd);
		return 0;
	}
	if (link_new(t, cfd, &from, true, &l) < 0)
		log_warnx("cannot take a link from %s", inet_ntoa(from.sin_addr));
	return 0;
}

int lan_tcp_open(sd_event *e, struct lan_member *m, uint16_t port, lan_link_fn fn, void *userdata,
		 struct lan_tcp **ret)
{
	struct sockaddr_in any = {.sin_family = AF_INET, .sin_port = htons(port)};
	struct lan_tcp *t = calloc(1, sizeof(*t));
	int one = 1, r;

	if (t == NULL)
		return -ENOMEM;
	t->m = m, t->e = e, t->fn = fn, t->userdata = userdata;
	/* On a listening TCP socket SO_REUSEADDR only lets us restart past TIME_WAIT: no second
	 * listener can share the port. */
	if ((t->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0 ||
	    setsockopt(t->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(t->fd, (struct sockaddr *)&any, sizeof(any)) < 0 || listen(t->fd, 64) < 0) {
		r = -errno;
		goto out;
	}
	if ((r = sd_event_add_io(e, &t->io, t->fd, EPOLLIN, on_accept, t)) < 0)
		goto out;
	*ret = t;
	t = NULL;
out:
	lan_tcp_free(t);
	return r;
}

void lan_tcp_on_failure(struct lan_tcp *t, lan_failure_fn fn, void *userdata)
{
	t->failure_fn = fn;
	t->failure_userdata = userdata;
}

void lan_tcp_free(struct lan_tcp *t)
{
	if (t == NULL)
		return;
	while (t->links)
		link_free(t->links);
	sd_event_source_disable_unref(t->io);
	if (t->fd >= 0)
		close(t->fd);
	free(t);
}

int lan_link_open(struct lan_tcp *t, const char *peer, const struct sockaddr_in *addr,
		  struct lan_link **ret)
{
	struct lan_link *l;
	int fd, r;

	if (peer == NULL || peer[0] == '\0' || strlen(peer) >= CERT_NAME_MAX)
		return -EINVAL;
	if (t->n_out >= LAN_OUT_MAX)
		return -EBUSY;
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
		return -errno;
	if (connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) < 0 && errno != EINPROGRESS) {
		r = -errno;
		close(fd);
		return r;
	}
	if ((r = link_new(t, fd, addr, false, &l)) < 0)
		return r;
	l->connecting = true;
	l->authenticated = true; /* we chose whom to dial */
	snprintf(l->peer, sizeof(l->peer), "%s", peer);
	*ret = l;
	return 0;
}

int lan_link_send(struct lan_link *l, const char *type, const char *id, json_t *body,
		  bool with_cert)
{
	char *env = NULL;
	uint8_t *frame = NULL, *grown;
	size_t envlen, flen;
	int r;

	if (l->peer[0] == '\0')
		return -ENOTCONN;
	if ((r = envelope_seal(l->t->m->env, type, l->peer, id, body, with_cert, &env, &envlen)) <
		0 ||
	    (r = frame_encode(env, envlen, &frame, &flen)) < 0)
		goto out;
	if (l->out_len + flen > LAN_QUEUE_MAX) {
		r = -ENOBUFS;
		goto out;
	}
	if ((grown = realloc(l->out, l->out_len + flen)) == NULL) {
		r = -ENOMEM;
		goto out;
	}
	memcpy(grown + l->out_len, frame, flen);
	l->out = grown;
	l->out_len += flen;
	/* Out now if the socket takes it: the caller may have slow work to do before the loop
	 * turns again. An error shows at the next turn, which drops the link. */
	if (!l->connecting)
		(void)link_flush(l);
	link_update(l);
out:
	free(frame);
	free(env);
	return r;
}

void lan_link_finish(struct lan_link *l)
{
	l->finishing = true;
	link_update(l);
}

const char *lan_link_peer(const struct lan_link *l)
{
	return l->peer[0] ? l->peer : NULL;
}

const struct sockaddr_in *lan_link_addr(const struct lan_link *l)
{
	return &l->addr;
}

void *lan_link_data(const struct lan_link *l)
{
	return l->data;
}

void lan_link_set_data(struct lan_link *l, void *data, void (*free_fn)(void *))
{
	if (l->data && l->data_free)
		l->data_free(l->data);
	l->data = data;
	l->data_free = free_fn;
}
