/* lan: the LAN transport on loopback, with the devices of a real home CA (fixture.h) on one real
 * sd-event loop. Each device is configured as a daemon would be, with config_load_string(), and
 * net.broadcast is 127.0.0.2: a datagram sent to 127.0.0.2 came to the broadcast address, one
 * sent to 127.0.0.1 to us alone. The far end of a link or a datagram is either another member or
 * the test itself over plain sockets (from 127.0.0.x source addresses), so that it can stay
 * silent, send junk, or sign as a device other than the one dialled. Every wait is bounded. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "ca.h"
#include "cert.h"
#include "clock.h"
#include "config.h"
#include "envelope.h"
#include "file.h"
#include "frame.h"
#include "lan.h"
#include "log.h"
#include "refusals.h"

#include "ctl_peer.h"
#include "fixture.h"

#define BROADCAST "127.0.0.2"
#define HELLO_MS  ((int)(LAN_HELLO_USEC / 1000))
#define IDLE_MS	  ((int)(LAN_IDLE_USEC / 1000))

/* The message types of this home: pi1 knows these; the others also know one more. */
static const struct envelope_rule rules[] = {
    {"ANNOUNCE", CERT_ROLES_ANY, false, false},
    {"CONTROLLER_ONLY", CERT_ROLE_CONTROLLER, false, false},
    {"DIRECT", CERT_ROLES_ANY, true, false},
    {NULL, 0, false, false},
};
static const struct envelope_rule rules_newer[] = {
    {"ANNOUNCE", CERT_ROLES_ANY, false, false},
    {"CONTROLLER_ONLY", CERT_ROLES_ANY, false, false},
    {"DIRECT", CERT_ROLES_ANY, true, false},
    {"NEWER", CERT_ROLES_ANY, false, false},
    {NULL, 0, false, false},
};

static struct fixture fx;
static sd_event *e;

/* ---- plain sockets ---- */

static struct sockaddr_in at(const char *ip, uint16_t port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};

	assert_int_equal(inet_pton(AF_INET, ip, &a.sin_addr), 1);
	return a;
}

/* A port free for both UDP and TCP. */
static uint16_t free_port(void)
{
	for (int tries = 0; tries < 50; tries++) {
		int u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		int t = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct sockaddr_in a = at("0.0.0.0", 0);
		socklen_t len = sizeof(a);
		bool ok;

		assert_int_equal(bind(u, (struct sockaddr *)&a, sizeof(a)), 0);
		assert_int_equal(getsockname(u, (struct sockaddr *)&a, &len), 0);
		ok = bind(t, (struct sockaddr *)&a, sizeof(a)) == 0;
		close(u);
		close(t);
		if (ok)
			return ntohs(a.sin_port);
	}
	fail_msg("no free port");
	return 0;
}

/* A TCP connection from src (127.0.0.x) to our port on 127.0.0.1, made non-blocking. */
static int raw_connect(const char *src, uint16_t port)
{
	struct sockaddr_in from = at(src, 0), to = at("127.0.0.1", port);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&from, sizeof(from)), 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&to, sizeof(to)), 0);
	assert_int_equal(fcntl(fd, F_SETFL, O_NONBLOCK), 0);
	return fd;
}

/* The far end has not closed (nothing to read counts as open). */
static bool raw_open(int fd)
{
	char b;
	ssize_t n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);

	return n > 0 || (n < 0 && errno == EAGAIN);
}

/* Turn the loop until nothing more is ready (accepts, reads), at most 200 turns. */
static void drain(void)
{
	for (int i = 0; i < 200 && sd_event_run(e, 0) > 0; i++)
		;
}

/* Milliseconds until the far end of fd closed, turning the loop; -1 if not within ms. */
static int closed_within(int fd, int ms)
{
	int64_t start = mono_ms(), now;

	while (raw_open(fd)) {
		now = mono_ms();
		if (now - start >= ms)
			return -1;
		assert_true(sd_event_run(e, 5000) >= 0);
	}
	return (int)(mono_ms() - start);
}

static void raw_send(int fd, const void *p, size_t len)
{
	struct pollfd pfd = {.fd = fd, .events = POLLOUT};
	const uint8_t *b = p;
	ssize_t n;

	while (len > 0) {
		n = send(fd, b, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EAGAIN) {
			assert_int_equal(poll(&pfd, 1, WAIT_MS), 1);
			continue;
		}
		assert_true(n > 0);
		b += n;
		len -= (size_t)n;
	}
}

/* ---- devices ---- */

/* What a device's callbacks do with a message on a link, besides noting it. */
enum act {
	ACT_TAG = 1 << 0,	   /* attach a tag (counted in in_freed when freed) */
	ACT_REPLY = 1 << 1,	   /* answer DIRECT on the same link and delivery, with our cert */
	ACT_REPLY_NOCERT = 1 << 2, /* the same with only our fingerprint */
	ACT_FINISH = 1 << 3,
	ACT_CLOSE = 1 << 4,
};

struct dev {
	struct iotsec_config cfg;
	struct lan_member *m;
	struct lan_udp *u;
	struct lan_tcp *t;
	json_t *heard;	       /* every message its callbacks got, in order */
	unsigned act;	       /* enum act */
	int in_freed;	       /* tags of ACT_TAG freed */
	int replied;	       /* what the last reply's lan_link_send() returned */
	struct lan_link *last; /* the link of the last message */
};

/* Caller state attached to a link: counts its own freeing. */
struct tag {
	int *freed;
};

static void tag_free(void *p)
{
	struct tag *t = p;

	(*t->freed)++;
	free(t);
}

static struct tag *tag_new(int *freed)
{
	struct tag *t = malloc(sizeof(*t));

	assert_non_null(t);
	t->freed = freed;
	return t;
}

static void on_datagram(struct envelope_msg *msg, const struct sockaddr_in *from, bool broadcast,
			void *userdata)
{
	struct dev *d = userdata;
	char addr[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &from->sin_addr, addr, sizeof(addr));
	json_array_append_new(d->heard,
			      json_pack("{s:s, s:s, s:s, s:b, s:s, s:O}", "type", msg->type, "from",
					msg->sender.name, "id", msg->id, "broadcast", broadcast,
					"addr", addr, "body", msg->body));
}

static void on_link(struct lan_link *l, struct envelope_msg *msg, void *userdata)
{
	struct dev *d = userdata;
	json_t *body;

	json_array_append_new(
	    d->heard, json_pack("{s:s, s:s, s:s, s:O, s:I, s:s?}", "type", msg->type, "from",
				msg->sender.name, "id", msg->id, "body", msg->body, "link",
				(json_int_t)(uintptr_t)l, "peer", lan_link_peer(l)));
	d->last = l;
	if ((d->act & ACT_TAG) && lan_link_data(l) == NULL)
		lan_link_set_data(l, tag_new(&d->in_freed), tag_free);
	if (d->act & (ACT_REPLY | ACT_REPLY_NOCERT)) {
		body = json_pack("{s:s}", "re", msg->type);
		d->replied =
		    lan_link_send(l, "DIRECT", msg->id, body, !(d->act & ACT_REPLY_NOCERT));
		json_decref(body);
	}
	if (d->act & ACT_FINISH)
		lan_link_finish(l);
	if (d->act & ACT_CLOSE)
		lan_link_close(l);
}

/* The configuration a daemon of device name would read, with files given explicitly. */
static int configure(struct iotsec_config *cfg, const char *cert, const char *key, const char *ca,
		     const char *crl, uint16_t port)
{
	char *text = NULL, err[CONFIG_ERR_MAX] = "";
	int r;

	assert_true(
	    asprintf(
		&text,
		"device = {\n  cert = \"%s\";\n  key = \"%s\";\n  ca = \"%s\";\n  crl = \"%s\";\n"
		"  state_dir = \"%s\";\n  run_dir = \"%s\";\n};\n"
		"net = {\n  port = %u;\n  broadcast = \"" BROADCAST "\";\n  delta_t = 30;\n};\n",
		cert, key, ca, crl, fx.dir, fx.dir, (unsigned)port) > 0);
	memset(cfg, 0, sizeof(*cfg));
	r = config_load_string(text, "lan-test.conf", cfg, err, sizeof(err));
	free(text);
	if (r < 0)
		fail_msg("configuration refused: %s", err);
	return r;
}

/* Device name as a member, with a UDP endpoint and a TCP listener on a port of its own. */
static void dev_open(struct dev *d, const char *name, const struct envelope_rule *r, bool udp,
		     bool tcp)
{
	const char *what = NULL;
	char crt[PATH_MAX], key[PATH_MAX];

	memset(d, 0, sizeof(*d));
	assert_non_null(d->heard = json_array());
	snprintf(crt, sizeof(crt), "%s", fixture_path(&fx, name, "crt"));
	snprintf(key, sizeof(key), "%s", fixture_path(&fx, name, "key"));
	configure(&d->cfg, crt, key, fx.ca_crt, fx.crl, free_port());
	assert_int_equal(lan_member_load(&d->cfg, r, &d->m, &what), 0);
	assert_null(what);
	if (udp)
		assert_int_equal(lan_udp_open(e, d->m, (uint16_t)d->cfg.net.port,
					      d->cfg.net.broadcast, on_datagram, d, &d->u),
				 0);
	if (tcp)
		assert_int_equal(
		    lan_tcp_open(e, d->m, (uint16_t)d->cfg.net.port, on_link, d, &d->t), 0);
}

static void dev_close(struct dev *d)
{
	lan_tcp_free(d->t);
	lan_udp_free(d->u);
	lan_member_free(d->m);
	config_free(&d->cfg);
	json_decref(d->heard);
	memset(d, 0, sizeof(*d));
}

static struct sockaddr_in dev_addr(const struct dev *d)
{
	return at("127.0.0.1", (uint16_t)d->cfg.net.port);
}

/* got is want (consumed). */
static void expect_json(const json_t *got, json_t *want)
{
	if (!json_equal(got, want)) {
		char *a = got ? json_dumps(got, JSON_COMPACT) : NULL;

		fail_msg("got %.300s", a ? a : "nothing");
	}
	json_decref(want);
}

/* Heard message i was of type from sender. */
static json_t *heard(const struct dev *d, size_t i, const char *type, const char *from)
{
	json_t *o = json_array_get(d->heard, i);

	if (o == NULL)
		fail_msg("message %zu: none", i);
	assert_string_equal(json_string_value(json_object_get(o, "type")), type);
	assert_string_equal(json_string_value(json_object_get(o, "from")), from);
	return o;
}

/* A context that signs as device name, valid or not: rogues speak too. */
static struct envelope_ctx *signer(const struct dev *d, const char *name)
{
	X509 *x = fixture_cert(&fx, name);
	EVP_PKEY *k = fixture_key(&fx, name);
	struct envelope_ctx *ctx = NULL;

	assert_int_equal(envelope_ctx_new(d->m->store, x, k, rules_newer, 30, &ctx), 0);
	X509_free(x);
	EVP_PKEY_free(k);
	return ctx;
}

static char *seal(struct envelope_ctx *ctx, const char *type, const char *to, const char *id,
		  size_t *ret_len)
{
	json_t *body = json_pack("{s:s}", "hello", "world");
	char *out = NULL;

	assert_int_equal(envelope_seal(ctx, type, to, id, body, true, &out, ret_len), 0);
	json_decref(body);
	return out;
}

/* Send a signed message as one frame on fd. */
static void send_framed(int fd, struct envelope_ctx *ctx, const char *type, const char *to,
			const char *id)
{
	uint8_t *frame = NULL;
	size_t len, flen;
	char *env = seal(ctx, type, to, id, &len);

	assert_int_equal(frame_encode(env, len, &frame, &flen), 0);
	raw_send(fd, frame, flen);
	free(frame);
	free(env);
}

static void send_datagram(const char *to_ip, uint16_t port, const void *buf, size_t len)
{
	struct sockaddr_in to = at(to_ip, port);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(sendto(fd, buf, len, 0, (struct sockaddr *)&to, sizeof(to)), (ssize_t)len);
	close(fd);
}

static int loop_setup(void **state)
{
	(void)state;
	return sd_event_new(&e) < 0 ? -1 : 0;
}

static int loop_teardown(void **state)
{
	(void)state;
	e = sd_event_unref(e);
	return 0;
}

static int group_setup(void **state)
{
	(void)state;
	signal(SIGPIPE, SIG_IGN);
	return fixture_home(&fx) < 0 ? -1 : 0;
}

static int group_teardown(void **state)
{
	(void)state;
	fixture_remove(&fx);
	return 0;
}

/* ---- members ---- */

static void test_member_load(void **state)
{
	struct iotsec_config cfg;
	struct lan_member *m = NULL;
	const char *what = "untouched";
	json_t *status = json_object();

	(void)state;
	configure(&cfg, fixture_path(&fx, "pi1", "crt"), fixture_path(&fx, "pi1", "key"), fx.ca_crt,
		  fx.crl, 7450);
	assert_int_equal(lan_member_load(&cfg, rules, &m, &what), 0);
	assert_string_equal(what, "untouched");
	assert_string_equal(m->self.name, "pi1");
	assert_string_equal(m->self.home, "testhome");
	assert_int_equal(m->self.role, CERT_ROLE_NODE);
	assert_int_equal(m->refused.total, 0);
	assert_int_equal(lan_member_status(m, status), 0);
	expect_json(status, json_pack("{s:i, s:{}}", "refused", 0, "refused_by"));
	lan_member_free(m);
	config_free(&cfg);

	configure(&cfg, fixture_path(&fx, "ctl1", "crt"), fixture_path(&fx, "ctl1", "key"),
		  fx.ca_crt, fx.crl, 7450);
	assert_int_equal(lan_member_load(&cfg, rules, &m, NULL), 0);
	assert_int_equal(m->self.role, CERT_ROLE_CONTROLLER);
	lan_member_free(m);
	config_free(&cfg);
	lan_member_free(NULL);
	json_decref(status);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
}

static void copy_file(const char *from, const char *to, mode_t mode)
{
	char buf[16384];
	FILE *in = fopen(from, "r");
	size_t n;

	assert_non_null(in);
	n = fread(buf, 1, sizeof(buf) - 1, in);
	fclose(in);
	buf[n] = '\0';
	write_file(to, buf, mode);
}

/* Each file at fault is named in *ret_what; nothing is returned. */
static void test_member_load_bad(void **state)
{
	char junk[PATH_MAX + 32], loose[PATH_MAX + 32], junk_key[PATH_MAX + 32];
	char missing[PATH_MAX + 32];
	char other_crl[PATH_MAX + 32], pi1_crt[PATH_MAX], pi1_key[PATH_MAX], pi2_crt[PATH_MAX];
	char pi2_key[PATH_MAX];
	struct {
		const char *cert, *key, *ca, *crl;
		int field; /* 0 cert, 1 key, 2 ca, 3 crl */
		int r;	   /* 0: any error */
	} cases[] = {
	    {missing, pi1_key, fx.ca_crt, fx.crl, 0, -ENOENT},
	    {junk, pi1_key, fx.ca_crt, fx.crl, 0, 0},
	    {pi1_key, pi1_key, fx.ca_crt, fx.crl, 0, 0},
	    {pi1_crt, missing, fx.ca_crt, fx.crl, 1, -ENOENT},
	    {pi1_crt, pi2_key, fx.ca_crt, fx.crl, 1, -IOTSEC_EKEYMISMATCH},
	    {pi1_crt, loose, fx.ca_crt, fx.crl, 1, 0},
	    {pi1_crt, junk_key, fx.ca_crt, fx.crl, 1, 0},
	    {pi1_crt, pi1_key, missing, fx.crl, 2, 0},
	    {pi1_crt, pi1_key, junk, fx.crl, 2, 0},
	    {pi1_crt, pi1_key, pi2_crt, fx.crl, 2, 0},
	    {pi1_crt, pi1_key, fx.ca_crt, missing, 3, 0},
	    {pi1_crt, pi1_key, fx.ca_crt, junk, 3, 0},
	    {pi1_crt, pi1_key, fx.ca_crt, other_crl, 3, 0},
	};
	struct lan_member *m = (struct lan_member *)&m;
	struct iotsec_config cfg;
	const char *what;

	(void)state;
	snprintf(pi1_crt, sizeof(pi1_crt), "%s", fixture_path(&fx, "pi1", "crt"));
	snprintf(pi1_key, sizeof(pi1_key), "%s", fixture_path(&fx, "pi1", "key"));
	snprintf(pi2_crt, sizeof(pi2_crt), "%s", fixture_path(&fx, "pi2", "crt"));
	snprintf(pi2_key, sizeof(pi2_key), "%s", fixture_path(&fx, "pi2", "key"));
	snprintf(junk, sizeof(junk), "%s/junk.pem", fx.dir);
	snprintf(junk_key, sizeof(junk_key), "%s/junk.key", fx.dir);
	snprintf(loose, sizeof(loose), "%s/loose.key", fx.dir);
	snprintf(missing, sizeof(missing), "%s/missing.pem", fx.dir);
	snprintf(other_crl, sizeof(other_crl), "%s/crl.pem", fx.other_ca_dir);
	write_file(junk,
		   "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n",
		   0644);
	write_file(junk_key, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
		   0600);
	copy_file(pi1_key, loose, 0644);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *want[] = {cases[i].cert, cases[i].key, cases[i].ca, cases[i].crl};
		int r;

		configure(&cfg, cases[i].cert, cases[i].key, cases[i].ca, cases[i].crl, 7450);
		what = "untouched";
		r = lan_member_load(&cfg, rules, &m, &what);
		if (r >= 0 || (cases[i].r && r != cases[i].r))
			fail_msg("case %zu: r %d (%s)", i, r, iotsec_strerror(r));
		if (strcmp(what, want[cases[i].field]) != 0)
			fail_msg("case %zu: %s named, not %s", i, what, want[cases[i].field]);
		assert_ptr_equal(m, (struct lan_member *)&m);
		/* Without a place to name the file, the error still comes back. */
		assert_true(lan_member_load(&cfg, rules, &m, NULL) < 0);
		config_free(&cfg);
	}
	unlink(junk), unlink(junk_key), unlink(loose);
}

/* A member follows the CRL received from a peer (state_dir/pingd/crl.pem) when it is newer than
 * device.crl, as every daemon does: pi2, revoked by it, is refused within LAN_REFRESH_MS, and
 * accepted again once it is gone. */
static void test_member_follows_received_crl(void **state)
{
	char cmd[3 * PATH_MAX], ca_copy[PATH_MAX + 16], pingd[PATH_MAX + 16],
	    received[PATH_MAX + 32], newer[PATH_MAX + 32];
	struct envelope_ctx *pi2;
	unsigned long refused;
	struct dev a;
	char *env;
	size_t len;

	(void)state;
	/* A newer CRL of the same CA revoking pi2, made in a copy of the CA: the fixture's own
	 * CRL, every other test's device.crl, stays as it is. */
	snprintf(ca_copy, sizeof(ca_copy), "%s/ca-copy", fx.dir);
	snprintf(cmd, sizeof(cmd), "cp -a '%s' '%s'", fx.ca_dir, ca_copy);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(ca_revoke(ca_copy, "pi2"), 0);
	snprintf(newer, sizeof(newer), "%s/crl.pem", ca_copy);
	snprintf(pingd, sizeof(pingd), "%s/pingd", fx.dir);
	snprintf(received, sizeof(received), "%s/crl.pem", pingd);
	assert_int_equal(file_mkdirs(pingd, 0755), 0);

	dev_open(&a, "pi1", rules, true, false);
	pi2 = signer(&a, "pi2");
	env = seal(pi2, "ANNOUNCE", NULL, NULL, &len);
	send_datagram(BROADCAST, (uint16_t)a.cfg.net.port, env, len);
	free(env);
	loop_until(e, json_array_size(a.heard) == 1);

	copy_file(newer, received, 0644);
	loop_for(e, LAN_REFRESH_MS + 100);
	refused = a.m->refused.total;
	env = seal(pi2, "ANNOUNCE", NULL, NULL, &len);
	send_datagram(BROADCAST, (uint16_t)a.cfg.net.port, env, len);
	free(env);
	loop_until(e, a.m->refused.total == refused + 1);
	assert_int_equal(json_array_size(a.heard), 1);

	assert_int_equal(unlink(received), 0);
	loop_for(e, LAN_REFRESH_MS + 100);
	env = seal(pi2, "ANNOUNCE", NULL, NULL, &len);
	send_datagram(BROADCAST, (uint16_t)a.cfg.net.port, env, len);
	free(env);
	loop_until(e, json_array_size(a.heard) == 2);
	envelope_ctx_free(pi2);
	dev_close(&a);
	rmdir(pingd);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", ca_copy);
	assert_int_equal(system(cmd), 0);
}

/* ---- broadcasts ---- */

/* A signed datagram from another member: to the broadcast address it arrives with broadcast
 * true, to 127.0.0.1 with broadcast false; its sender, body and source address come with it. */
static void test_udp_broadcast_and_unicast(void **state)
{
	struct envelope_ctx *pi2, *ctl1;
	struct dev a;
	json_t *o;
	char *env;
	size_t len;

	(void)state;
	dev_open(&a, "pi1", rules, true, false);
	pi2 = signer(&a, "pi2");
	ctl1 = signer(&a, "ctl1");
	env = seal(pi2, "ANNOUNCE", NULL, NULL, &len);
	send_datagram(BROADCAST, (uint16_t)a.cfg.net.port, env, len);
	free(env);
	loop_until(e, json_array_size(a.heard) == 1);
	o = heard(&a, 0, "ANNOUNCE", "pi2");
	assert_true(json_is_true(json_object_get(o, "broadcast")));
	assert_string_equal(json_string_value(json_object_get(o, "addr")), "127.0.0.1");
	assert_string_equal(json_string_value(json_object_get(o, "id")), "");
	expect_json(json_object_get(o, "body"), json_pack("{s:s}", "hello", "world"));

	env = seal(pi2, "ANNOUNCE", NULL, NULL, &len);
	send_datagram("127.0.0.1", (uint16_t)a.cfg.net.port, env, len);
	free(env);
	loop_until(e, json_array_size(a.heard) == 2);
	assert_true(json_is_false(json_object_get(heard(&a, 1, "ANNOUNCE", "pi2"), "broadcast")));

	/* The controller's own type, from the controller. */
	env = seal(ctl1, "CONTROLLER_ONLY", NULL, NULL, &len);
	send_datagram(BROADCAST, (uint16_t)a.cfg.net.port, env, len);
	free(env);
	loop_until(e, json_array_size(a.heard) == 3);
	assert_true(
	    json_is_true(json_object_get(heard(&a, 2, "CONTROLLER_ONLY", "ctl1"), "broadcast")));
	loop_for(e, 30);
	assert_int_equal(json_array_size(a.heard), 3);
	assert_int_equal(a.m->refused.total, 0);
	envelope_ctx_free(pi2);
	envelope_ctx_free(ctl1);
	dev_close(&a);
}

/* lan_udp_broadcast() sends to net.broadcast on our port: on loopback we hear ourselves, as on a
 * real network, with broadcast true. It signs only broadcast types it knows. */
static void test_udp_broadcast_send(void **state)
{
	json_t *body = json_pack("{s:i}", "n", 7);
	struct dev b;

	(void)state;
	dev_open(&b, "pi2", rules_newer, true, false);
	assert_int_equal(lan_udp_broadcast(b.u, "ANNOUNCE", body), 0);
	loop_until(e, json_array_size(b.heard) == 1);
	assert_true(json_is_true(json_object_get(heard(&b, 0, "ANNOUNCE", "pi2"), "broadcast")));
	expect_json(json_object_get(json_array_get(b.heard, 0), "body"), json_incref(body));
	assert_int_equal(lan_udp_broadcast(b.u, "NEWER", NULL), 0);
	loop_until(e, json_array_size(b.heard) == 2);
	heard(&b, 1, "NEWER", "pi2");
	/* A unicast type, an unknown type, a type too long: refused before anything is sent. */
	assert_true(lan_udp_broadcast(b.u, "DIRECT", body) < 0);
	assert_true(lan_udp_broadcast(b.u, "NOSUCHTYPE", body) < 0);
	assert_true(lan_udp_broadcast(b.u, "ANNOUNCE_ANNOUNCE_ANNOUNCE_ANNOUNCE", body) < 0);
	loop_for(e, 50);
	assert_int_equal(json_array_size(b.heard), 2);
	assert_int_equal(b.m->refused.total, 0);
	json_decref(body);
	dev_close(&b);
}

/* What is refused is counted, never delivered: junk and forgeries against nobody (a
 * self-signed pi1 is not pi1), a verified sender's bad messages against it. */
static void test_udp_refused(void **state)
{
	static const char *const rogues[] = {"selfsigned", "revoked", "pi9", "expired", "future"};
	static const char *const junk[] = {
	    "hello",							     /* not JSON */
	    "{}",							     /* no fields */
	    "{\"v\":2,\"msg\":\"AAAA\",\"sig\":\"AAAA\",\"cert\":\"AAAA\"}", /* no sense */
	    "[]",							     /* no object */
	    "\"\xff\"",							     /* no UTF-8 */
	};
	struct envelope_ctx *ctx;
	unsigned long total = 0;
	json_t *status = json_object();
	struct dev a;
	char *env;
	size_t len;

	(void)state;
	dev_open(&a, "pi1", rules, true, false);
	for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++)
		send_datagram(BROADCAST, (uint16_t)a.cfg.net.port, junk[i], strlen(junk[i]));
	total += sizeof(junk) / sizeof(junk[0]);
	/* Half an envelope. */
	ctx = signer(&a, "pi2");
	env = seal(ctx, "ANNOUNCE", NULL, NULL, &len);
	send_datagram(BROADCAST, (uint16_t)a.cfg.net.port, env, len / 2);
	total++;
	free(env);
	envelope_ctx_free(ctx);
	for (size_t i = 0; i < sizeof(rogues) / sizeof(rogues[0]); i++) {
		ctx = signer(&a, rogues[i]);
		env = seal(ctx, "ANNOUNCE", NULL, NULL, &len);
		send_datagram(BROADCAST, (uint16_t)a.cfg.net.port, env, len);
		free(env);
		envelope_ctx_free(ctx);
		total++;
	}
	loop_until(e, a.m->refused.total == total);
	assert_int_equal(a.m->refused.n_devices, 0);
	assert_int_equal(refusals_of(&a.m->refused, "pi1"), 0);

	/* pi2, verified: a replay (anyone may send one: not counted on pi2), a type it may not
	 * send and a type we do not know (its own doing: counted on it). */
	ctx = signer(&a, "pi2");
	env = seal(ctx, "ANNOUNCE", NULL, NULL, &len);
	send_datagram(BROADCAST, (uint16_t)a.cfg.net.port, env, len);
	loop_until(e, json_array_size(a.heard) == 1);
	send_datagram(BROADCAST, (uint16_t)a.cfg.net.port, env, len);
	free(env);
	envelope_ctx_free(ctx);
	ctx = signer(&a, "pi2");
	/* pi2's own rules let it sign CONTROLLER_ONLY; pi1's refuse a node sending it. */
	env = seal(ctx, "CONTROLLER_ONLY", NULL, NULL, &len);
	send_datagram(BROADCAST, (uint16_t)a.cfg.net.port, env, len);
	free(env);
	env = seal(ctx, "NEWER", NULL, NULL, &len);
	send_datagram("127.0.0.1", (uint16_t)a.cfg.net.port, env, len);
	free(env);
	envelope_ctx_free(ctx);
	total += 3;
	loop_until(e, a.m->refused.total == total);
	loop_for(e, 30);
	assert_int_equal(a.m->refused.total, total);
	assert_int_equal(refusals_of(&a.m->refused, "pi2"), 2);
	assert_int_equal(refusals_of(&a.m->refused, "pi1"), 0);
	assert_int_equal(json_array_size(a.heard), 1);
	assert_int_equal(lan_member_status(a.m, status), 0);
	expect_json(status, json_pack("{s:I, s:{s:i}}", "refused", (json_int_t)total, "refused_by",
				      "pi2", 2));
	json_decref(status);
	dev_close(&a);
}

/* A datagram too large for an envelope is refused, and counted against nobody: no certificate
 * was looked at, whoever sent something before it. */
static void test_udp_oversize(void **state)
{
	size_t big = ENVELOPE_MAX + 100;
	char *junk = malloc(big);
	struct envelope_ctx *ctx;
	struct dev a;
	char *env;
	size_t len;

	(void)state;
	assert_non_null(junk);
	memset(junk, '{', big);
	dev_open(&a, "pi1", rules, true, false);
	/* pi2 is refused once (a type we do not know), then the oversize datagrams come. */
	ctx = signer(&a, "pi2");
	env = seal(ctx, "NEWER", NULL, NULL, &len);
	send_datagram(BROADCAST, (uint16_t)a.cfg.net.port, env, len);
	free(env);
	envelope_ctx_free(ctx);
	loop_until(e, a.m->refused.total == 1);
	assert_int_equal(refusals_of(&a.m->refused, "pi2"), 1);
	for (int i = 0; i < 3; i++)
		send_datagram(BROADCAST, (uint16_t)a.cfg.net.port, junk, big);
	loop_until(e, a.m->refused.total == 4);
	assert_int_equal(refusals_of(&a.m->refused, "pi2"), 1);
	assert_int_equal(a.m->refused.n_devices, 1);
	assert_int_equal(json_array_size(a.heard), 0);
	free(junk);
	dev_close(&a);
}

/* The port is ours alone: another socket cannot bind it, even with SO_REUSEADDR or
 * SO_REUSEPORT, on any address; a second endpoint neither. */
static void test_udp_port_not_shared(void **state)
{
	static const int opts[] = {SO_REUSEADDR, SO_REUSEPORT};
	static const char *const addrs[] = {"0.0.0.0", "127.0.0.1", BROADCAST};
	struct lan_udp *u2 = (struct lan_udp *)&u2;
	struct dev a;
	int one = 1;

	(void)state;
	dev_open(&a, "pi1", rules, true, false);
	for (size_t i = 0; i < 2; i++)
		for (size_t j = 0; j < 3; j++) {
			struct sockaddr_in sa = at(addrs[j], (uint16_t)a.cfg.net.port);
			int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

			assert_int_equal(setsockopt(fd, SOL_SOCKET, opts[i], &one, sizeof(one)), 0);
			errno = 0;
			assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), -1);
			assert_int_equal(errno, EADDRINUSE);
			close(fd);
		}
	assert_int_equal(
	    lan_udp_open(e, a.m, (uint16_t)a.cfg.net.port, BROADCAST, on_datagram, &a, &u2),
	    -EADDRINUSE);
	assert_int_equal(lan_udp_open(e, a.m, free_port(), "not-an-address", on_datagram, &a, &u2),
			 -EINVAL);
	assert_int_equal(lan_udp_open(e, a.m, free_port(), "", on_datagram, &a, &u2), -EINVAL);
	assert_ptr_equal(u2, (struct lan_udp *)&u2);
	lan_udp_free(NULL);
	dev_close(&a);
}

/* ---- links ---- */

/* pi1 dials pi2 and delivers a unicast message (msg.id is the delivery id); pi2's reply on the
 * incoming link reaches pi1 on the link it opened. */
static void test_link_delivery_and_reply(void **state)
{
	struct sockaddr_in to;
	struct lan_link *l = NULL;
	json_t *body = json_pack("{s:i, s:s}", "n", 1, "text", "hi"), *o;
	struct dev a, b;

	(void)state;
	dev_open(&a, "pi1", rules, false, true);
	dev_open(&b, "pi2", rules, false, true);
	b.act = ACT_REPLY;
	to = dev_addr(&b);
	assert_int_equal(lan_link_open(a.t, "pi2", &to, &l), 0);
	assert_string_equal(lan_link_peer(l), "pi2");
	assert_int_equal(lan_link_addr(l)->sin_port, to.sin_port);
	assert_int_equal(lan_link_addr(l)->sin_addr.s_addr, to.sin_addr.s_addr);
	/* Queued before the connection is made. */
	assert_int_equal(lan_link_send(l, "DIRECT", "delivery-1", body, true), 0);
	loop_until(e, json_array_size(b.heard) == 1);
	o = heard(&b, 0, "DIRECT", "pi1");
	assert_string_equal(json_string_value(json_object_get(o, "id")), "delivery-1");
	assert_string_equal(json_string_value(json_object_get(o, "peer")), "pi1");
	expect_json(json_object_get(o, "body"), json_incref(body));
	assert_int_equal(b.replied, 0);
	loop_until(e, json_array_size(a.heard) == 1);
	o = heard(&a, 0, "DIRECT", "pi2");
	assert_string_equal(json_string_value(json_object_get(o, "id")), "delivery-1");
	assert_int_equal(json_integer_value(json_object_get(o, "link")), (json_int_t)(uintptr_t)l);
	/* The same link carries the next delivery both ways. */
	assert_int_equal(lan_link_send(l, "DIRECT", "delivery-2", NULL, false), 0);
	loop_until(e, json_array_size(a.heard) == 2);
	assert_string_equal(json_string_value(json_object_get(heard(&b, 1, "DIRECT", "pi1"), "id")),
			    "delivery-2");
	assert_string_equal(json_string_value(json_object_get(heard(&a, 1, "DIRECT", "pi2"), "id")),
			    "delivery-2");
	assert_int_equal(a.m->refused.total + b.m->refused.total, 0);
	json_decref(body);
	dev_close(&a);
	dev_close(&b);
}

/* What lan_link_open() and lan_link_send() refuse, with nothing sent. */
static void test_link_bad_args(void **state)
{
	char longname[CERT_NAME_MAX + 1];
	struct lan_link *l = (struct lan_link *)&l, *ok = NULL;
	struct sockaddr_in to;
	struct dev a, b;

	(void)state;
	memset(longname, 'n', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	dev_open(&a, "pi1", rules, false, true);
	dev_open(&b, "pi2", rules, false, true);
	to = dev_addr(&b);
	assert_int_equal(lan_link_open(a.t, NULL, &to, &l), -EINVAL);
	assert_int_equal(lan_link_open(a.t, "", &to, &l), -EINVAL);
	assert_int_equal(lan_link_open(a.t, longname, &to, &l), -EINVAL);
	assert_ptr_equal(l, (struct lan_link *)&l);
	assert_int_equal(lan_link_open(a.t, "pi2", &to, &ok), 0);
	/* A broadcast type, an unknown type, no delivery id, an id too long or not of its
	 * alphabet. */
	assert_true(lan_link_send(ok, "ANNOUNCE", "d1", NULL, true) < 0);
	assert_true(lan_link_send(ok, "NOSUCHTYPE", "d1", NULL, true) < 0);
	assert_true(lan_link_send(ok, "DIRECT", NULL, NULL, true) < 0);
	assert_true(lan_link_send(ok, "DIRECT", "", NULL, true) < 0);
	assert_true(lan_link_send(ok, "DIRECT", "012345678901234567890123456789012", NULL, true) <
		    0);
	assert_true(lan_link_send(ok, "DIRECT", "no spaces", NULL, true) < 0);
	loop_for(e, 50);
	assert_int_equal(json_array_size(b.heard), 0);
	/* The longest id is fine. */
	assert_int_equal(
	    lan_link_send(ok, "DIRECT", "01234567890123456789012345678901", NULL, true), 0);
	loop_until(e, json_array_size(b.heard) == 1);
	dev_close(&a);
	dev_close(&b);
}

/* A reply carrying only the fingerprint of a certificate pi1 has never seen is refused and drops
 * the link; once pi1 has seen it, the fingerprint is enough. */
static void test_link_fingerprint(void **state)
{
	struct sockaddr_in to;
	struct lan_link *l = NULL;
	int freed = 0;
	struct dev a, b;

	(void)state;
	dev_open(&a, "pi1", rules, false, true);
	dev_open(&b, "pi2", rules, false, true);
	b.act = ACT_REPLY_NOCERT;
	to = dev_addr(&b);
	assert_int_equal(lan_link_open(a.t, "pi2", &to, &l), 0);
	lan_link_set_data(l, tag_new(&freed), tag_free);
	assert_int_equal(lan_link_send(l, "DIRECT", "d1", NULL, true), 0);
	loop_until(e, freed == 1);
	assert_int_equal(json_array_size(a.heard), 0);
	assert_int_equal(a.m->refused.total, 1);

	/* With the certificate once, then without. */
	b.act = ACT_REPLY;
	assert_int_equal(lan_link_open(a.t, "pi2", &to, &l), 0);
	assert_int_equal(lan_link_send(l, "DIRECT", "d2", NULL, true), 0);
	loop_until(e, json_array_size(a.heard) == 1);
	b.act = ACT_REPLY_NOCERT;
	assert_int_equal(lan_link_send(l, "DIRECT", "d3", NULL, false), 0);
	loop_until(e, json_array_size(a.heard) == 2);
	assert_string_equal(json_string_value(json_object_get(heard(&a, 1, "DIRECT", "pi2"), "id")),
			    "d3");
	assert_int_equal(a.m->refused.total, 1);
	dev_close(&a);
	dev_close(&b);
}

/* A listening socket on 127.0.0.1 for the test to play the device dialled. */
static int raw_listen(uint16_t *ret_port)
{
	struct sockaddr_in sa = at("127.0.0.1", 0);
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 8), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	*ret_port = ntohs(sa.sin_port);
	return fd;
}

/* The link's connection, accepted while the loop turns (the dialler is on it). */
static int raw_accept(int lfd)
{
	int64_t end = mono_ms() + WAIT_MS;
	struct pollfd p = {.fd = lfd, .events = POLLIN};
	int fd;

	while (poll(&p, 1, 0) == 0) {
		assert_true(mono_ms() < end);
		assert_true(sd_event_run(e, 5000) >= 0);
	}
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	assert_true(fd >= 0);
	return fd;
}

/* One link, one device: on a link pi1 opened to pi2, a message signed by ctl1 (a valid member
 * that took pi2's address) drops the link, counted against ctl1; so it does on a link that came
 * in and spoke as pi2 first. */
static void test_link_other_device(void **state)
{
	struct envelope_ctx *pi2, *ctl1;
	struct lan_link *l = NULL;
	struct sockaddr_in to;
	int lfd, fd, freed = 0;
	uint16_t port;
	struct dev a;

	(void)state;
	dev_open(&a, "pi1", rules, false, true);
	pi2 = signer(&a, "pi2");
	ctl1 = signer(&a, "ctl1");
	lfd = raw_listen(&port);
	to = at("127.0.0.1", port);
	assert_int_equal(lan_link_open(a.t, "pi2", &to, &l), 0);
	lan_link_set_data(l, tag_new(&freed), tag_free);
	fd = raw_accept(lfd);
	send_framed(fd, pi2, "DIRECT", "pi1", "d1");
	loop_until(e, json_array_size(a.heard) == 1);
	send_framed(fd, ctl1, "DIRECT", "pi1", "d1");
	assert_true(closed_within(fd, WAIT_MS) >= 0);
	assert_int_equal(freed, 1);
	assert_int_equal(json_array_size(a.heard), 1);
	assert_int_equal(refusals_of(&a.m->refused, "ctl1"), 1);
	close(fd);

	/* The first word already from someone else: nothing delivered. */
	assert_int_equal(lan_link_open(a.t, "pi2", &to, &l), 0);
	lan_link_set_data(l, tag_new(&freed), tag_free);
	fd = raw_accept(lfd);
	send_framed(fd, ctl1, "DIRECT", "pi1", "d2");
	assert_true(closed_within(fd, WAIT_MS) >= 0);
	assert_int_equal(freed, 2);
	assert_int_equal(json_array_size(a.heard), 1);
	assert_int_equal(refusals_of(&a.m->refused, "ctl1"), 2);
	close(fd);

	/* Incoming: pi2 speaks first, then ctl1 on the same connection. */
	fd = raw_connect("127.0.0.1", (uint16_t)a.cfg.net.port);
	send_framed(fd, pi2, "DIRECT", "pi1", "d3");
	loop_until(e, json_array_size(a.heard) == 2);
	assert_string_equal(
	    json_string_value(json_object_get(heard(&a, 1, "DIRECT", "pi2"), "peer")), "pi2");
	send_framed(fd, ctl1, "DIRECT", "pi1", "d3");
	assert_true(closed_within(fd, WAIT_MS) >= 0);
	assert_int_equal(refusals_of(&a.m->refused, "ctl1"), 3);
	assert_int_equal(refusals_of(&a.m->refused, "pi2"), 0);
	assert_int_equal(json_array_size(a.heard), 2);
	close(fd);
	close(lfd);
	envelope_ctx_free(pi2);
	envelope_ctx_free(ctl1);
	dev_close(&a);
}

/* Bad input on an incoming link drops it at once (long before LAN_HELLO_USEC), one refusal each,
 * nothing delivered: junk in a frame, a zero length, a length past FRAME_PAYLOAD_MAX, a message
 * for another device, one from a revoked device, a replayed one. */
static void test_link_bad_input(void **state)
{
	static const uint8_t zero[] = {0, 0, 0, 0, 'x'}, huge[] = {0, 1, 0, 0, '{'};
	static const uint8_t junk[] = {0, 0, 0, 5, 'h', 'e', 'l', 'l', 'o'};
	struct envelope_ctx *ctl1, *revoked, *pi2;
	unsigned long total;
	uint8_t *frame;
	size_t len, flen;
	struct dev a;
	char *env;
	int fd;

	(void)state;
	dev_open(&a, "pi1", rules, false, true);
	ctl1 = signer(&a, "ctl1");
	revoked = signer(&a, "revoked");
	pi2 = signer(&a, "pi2");
	fd = raw_connect("127.0.0.1", (uint16_t)a.cfg.net.port);
	raw_send(fd, junk, sizeof(junk));
	assert_true(closed_within(fd, HELLO_MS / 2) >= 0);
	close(fd);
	fd = raw_connect("127.0.0.1", (uint16_t)a.cfg.net.port);
	raw_send(fd, zero, sizeof(zero));
	assert_true(closed_within(fd, HELLO_MS / 2) >= 0);
	close(fd);
	fd = raw_connect("127.0.0.1", (uint16_t)a.cfg.net.port);
	raw_send(fd, huge, sizeof(huge));
	assert_true(closed_within(fd, HELLO_MS / 2) >= 0);
	close(fd);
	fd = raw_connect("127.0.0.1", (uint16_t)a.cfg.net.port);
	send_framed(fd, ctl1, "DIRECT", "pi2", "d1");
	assert_true(closed_within(fd, HELLO_MS / 2) >= 0);
	close(fd);
	fd = raw_connect("127.0.0.1", (uint16_t)a.cfg.net.port);
	send_framed(fd, revoked, "DIRECT", "pi1", "d1");
	assert_true(closed_within(fd, HELLO_MS / 2) >= 0);
	close(fd);
	assert_int_equal(a.m->refused.total, 5);
	/* A message for another device may be a copy anyone sent on: not counted on ctl1. */
	assert_int_equal(refusals_of(&a.m->refused, "ctl1"), 0);
	assert_int_equal(refusals_of(&a.m->refused, "revoked"), 0);
	/* The same frame twice on one link: the second is a replay. */
	env = seal(pi2, "DIRECT", "pi1", "d2", &len);
	assert_int_equal(frame_encode(env, len, &frame, &flen), 0);
	fd = raw_connect("127.0.0.1", (uint16_t)a.cfg.net.port);
	raw_send(fd, frame, flen);
	raw_send(fd, frame, flen);
	assert_true(closed_within(fd, HELLO_MS / 2) >= 0);
	close(fd);
	total = a.m->refused.total;
	assert_int_equal(total, 6);
	assert_int_equal(refusals_of(&a.m->refused, "pi2"), 0); /* a replay is anyone's doing */
	assert_int_equal(json_array_size(a.heard), 1);
	free(frame);
	free(env);
	envelope_ctx_free(ctl1);
	envelope_ctx_free(revoked);
	envelope_ctx_free(pi2);
	dev_close(&a);
}

/* An incoming connection that says nothing, or only part of a frame, is closed after
 * LAN_HELLO_USEC, and counted. */
static void test_link_hello_timeout(void **state)
{
	static const uint8_t part[] = {0, 0, 1, 0, '{', '"'};
	int silent, partial, t1, t2;
	struct dev a;

	(void)state;
	dev_open(&a, "pi1", rules, false, true);
	silent = raw_connect("127.0.0.1", (uint16_t)a.cfg.net.port);
	partial = raw_connect("127.0.0.1", (uint16_t)a.cfg.net.port);
	raw_send(partial, part, sizeof(part));
	t1 = closed_within(silent, HELLO_MS + 1000);
	t2 = closed_within(partial, 1000);
	assert_true(t1 >= HELLO_MS - 100);
	assert_true(t1 < HELLO_MS + 1000);
	assert_true(t2 >= 0);
	assert_int_equal(a.m->refused.total, 2);
	close(silent);
	close(partial);
	dev_close(&a);
}

/* Connect n silent connections from src, each accepted before the next; all must stay. */
static void silent_from(int *fds, size_t n, const char *src, uint16_t port)
{
	for (size_t i = 0; i < n; i++) {
		fds[i] = raw_connect(src, port);
		drain();
	}
}

static void expect_open(const int *fds, size_t n, bool open)
{
	for (size_t i = 0; i < n; i++)
		if (raw_open(fds[i]) != open)
			fail_msg("connection %zu: %s", i, open ? "closed" : "still open");
}

static void close_all(int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

/* LAN_PER_ADDR_MAX silent connections from one address are taken; the next from it is refused
 * at once, while another address is still welcome. */
static void test_link_per_address(void **state)
{
	int fds[LAN_PER_ADDR_MAX], extra, other;
	struct dev a;

	(void)state;
	dev_open(&a, "pi1", rules, false, true);
	silent_from(fds, LAN_PER_ADDR_MAX, "127.0.0.5", (uint16_t)a.cfg.net.port);
	loop_for(e, 30);
	expect_open(fds, LAN_PER_ADDR_MAX, true);
	extra = raw_connect("127.0.0.5", (uint16_t)a.cfg.net.port);
	assert_true(closed_within(extra, 500) >= 0);
	assert_int_equal(a.m->refused.total, 1);
	other = raw_connect("127.0.0.6", (uint16_t)a.cfg.net.port);
	drain();
	loop_for(e, 30);
	assert_true(raw_open(other));
	expect_open(fds, LAN_PER_ADDR_MAX, true);
	assert_int_equal(a.m->refused.total, 1);
	close(extra);
	close(other);
	close_all(fds, LAN_PER_ADDR_MAX);
	dev_close(&a);
}

/* LAN_IN_MAX silent connections (from 4 addresses) fill the incoming slots; each newcomer
 * evicts the oldest silent one. */
static void test_link_evicts_oldest_silent(void **state)
{
	static const char *const src[] = {"127.0.0.10", "127.0.0.11", "127.0.0.12", "127.0.0.13"};
	int fds[LAN_IN_MAX], n1, n2;
	struct dev a;

	(void)state;
	assert_int_equal(LAN_IN_MAX, 4 * LAN_PER_ADDR_MAX);
	dev_open(&a, "pi1", rules, false, true);
	for (size_t i = 0; i < 4; i++)
		silent_from(fds + i * LAN_PER_ADDR_MAX, LAN_PER_ADDR_MAX, src[i],
			    (uint16_t)a.cfg.net.port);
	loop_for(e, 30);
	expect_open(fds, LAN_IN_MAX, true);
	n1 = raw_connect("127.0.0.14", (uint16_t)a.cfg.net.port);
	assert_true(closed_within(fds[0], 500) >= 0);
	loop_for(e, 30);
	assert_true(raw_open(n1));
	expect_open(fds + 1, LAN_IN_MAX - 1, true);
	n2 = raw_connect("127.0.0.14", (uint16_t)a.cfg.net.port);
	assert_true(closed_within(fds[1], 500) >= 0);
	loop_for(e, 30);
	assert_true(raw_open(n1));
	assert_true(raw_open(n2));
	expect_open(fds + 2, LAN_IN_MAX - 2, true);
	/* Eviction is no refusal of the newcomer. */
	assert_int_equal(a.m->refused.total, 0);
	close(n1), close(n2);
	close_all(fds, LAN_IN_MAX);
	dev_close(&a);
}

/* An incoming link that spoke is never evicted for a silent newcomer: the oldest silent one goes
 * instead; and one device speaks on a few links at most. */
static void test_link_authenticated_stays(void **state)
{
	static const char *const src[] = {"127.0.0.20", "127.0.0.21", "127.0.0.22", "127.0.0.23"};
	struct envelope_ctx *pi2;
	int fds[LAN_IN_MAX], n1;
	struct dev a;

	(void)state;
	dev_open(&a, "pi1", rules, false, true);
	pi2 = signer(&a, "pi2");
	/* The oldest of all speaks; the 31 others stay silent. */
	fds[0] = raw_connect(src[0], (uint16_t)a.cfg.net.port);
	send_framed(fds[0], pi2, "DIRECT", "pi1", "hello");
	loop_until(e, json_array_size(a.heard) == 1);
	silent_from(fds + 1, LAN_PER_ADDR_MAX - 1, src[0], (uint16_t)a.cfg.net.port);
	for (size_t i = 1; i < 4; i++)
		silent_from(fds + i * LAN_PER_ADDR_MAX, LAN_PER_ADDR_MAX, src[i],
			    (uint16_t)a.cfg.net.port);
	loop_for(e, 30);
	expect_open(fds, LAN_IN_MAX, true);
	n1 = raw_connect("127.0.0.24", (uint16_t)a.cfg.net.port);
	assert_true(closed_within(fds[1], 500) >= 0);
	loop_for(e, 30);
	assert_true(raw_open(fds[0]));
	assert_true(raw_open(n1));
	/* Still a working link. */
	send_framed(fds[0], pi2, "DIRECT", "pi1", "again");
	loop_until(e, json_array_size(a.heard) == 2);
	close_all(fds, LAN_IN_MAX);
	close(n1);
	loop_for(e, 50);

	/* One device speaks on at most LAN_PER_DEVICE_MAX incoming links: each one more closes
	 * its oldest, and nobody else's. */
	{
		struct envelope_ctx *ctl1 = signer(&a, "ctl1");
		int mine[LAN_PER_DEVICE_MAX + 3], other;
		size_t heard = json_array_size(a.heard), n = sizeof(mine) / sizeof(mine[0]);

		other = raw_connect("127.0.0.25", (uint16_t)a.cfg.net.port);
		send_framed(other, ctl1, "DIRECT", "pi1", "ctl1");
		heard++;
		loop_until(e, json_array_size(a.heard) == heard);
		for (size_t i = 0; i < n; i++) {
			/* From two addresses: the cap per address is not what is tested. */
			mine[i] = raw_connect(i % 2 ? "127.0.0.27" : "127.0.0.26",
					      (uint16_t)a.cfg.net.port);
			send_framed(mine[i], pi2, "DIRECT", "pi1", "hello");
			heard++;
			loop_until(e, json_array_size(a.heard) == heard);
			if (i >= LAN_PER_DEVICE_MAX)
				assert_true(closed_within(mine[i - LAN_PER_DEVICE_MAX], 500) >= 0);
		}
		loop_for(e, 30);
		for (size_t i = n - LAN_PER_DEVICE_MAX; i < n; i++)
			assert_true(raw_open(mine[i]));
		assert_true(raw_open(other));
		assert_int_equal(a.m->refused.total, 0); /* making room is no refusal */
		close_all(mine, n);
		close(other);
		envelope_ctx_free(ctl1);
	}
	envelope_ctx_free(pi2);
	dev_close(&a);
}

/* Outgoing links have slots of their own: with every incoming slot held by a silent
 * connection, pi1 still dials pi2 and delivers. */
static void test_link_outgoing_slots(void **state)
{
	static const char *const src[] = {"127.0.0.30", "127.0.0.31", "127.0.0.32", "127.0.0.33"};
	struct sockaddr_in to;
	struct lan_link *l = NULL;
	int fds[LAN_IN_MAX];
	struct dev a, b;

	(void)state;
	dev_open(&a, "pi1", rules, false, true);
	dev_open(&b, "pi2", rules, false, true);
	b.act = ACT_REPLY;
	for (size_t i = 0; i < 4; i++)
		silent_from(fds + i * LAN_PER_ADDR_MAX, LAN_PER_ADDR_MAX, src[i],
			    (uint16_t)a.cfg.net.port);
	to = dev_addr(&b);
	assert_int_equal(lan_link_open(a.t, "pi2", &to, &l), 0);
	assert_int_equal(lan_link_send(l, "DIRECT", "out", NULL, true), 0);
	loop_until(e, json_array_size(b.heard) == 1);
	loop_until(e, json_array_size(a.heard) == 1);
	/* Nothing was evicted to make room for it. */
	expect_open(fds, LAN_IN_MAX, true);
	close_all(fds, LAN_IN_MAX);
	dev_close(&a);
	dev_close(&b);
}

/* lan_link_finish(): everything queued is delivered, in order, then the link closes (its data
 * freed once, and pi2's end of it too); a queue past LAN_QUEUE_MAX is refused. */
static void test_link_finish(void **state)
{
	enum { N = 40 };
	char pad[8192];
	struct sockaddr_in to;
	struct lan_link *l = NULL;
	int freed = 0, lfd, r = 0, sent = 0;
	uint16_t port;
	struct dev a, b;
	json_t *body;

	(void)state;
	memset(pad, 'p', sizeof(pad) - 1);
	pad[sizeof(pad) - 1] = '\0';
	dev_open(&a, "pi1", rules, false, true);
	dev_open(&b, "pi2", rules, false, true);
	b.act = ACT_TAG;
	to = dev_addr(&b);
	assert_int_equal(lan_link_open(a.t, "pi2", &to, &l), 0);
	lan_link_set_data(l, tag_new(&freed), tag_free);
	for (int i = 0; i < N; i++) {
		body = json_pack("{s:i, s:s}", "n", i, "pad", pad);
		assert_int_equal(lan_link_send(l, "DIRECT", "bulk", body, true), 0);
		json_decref(body);
	}
	lan_link_finish(l);
	assert_int_equal(freed, 0);
	loop_until(e, freed == 1);
	loop_until(e, json_array_size(b.heard) == N);
	for (int i = 0; i < N; i++)
		assert_int_equal(
		    json_integer_value(json_object_get(
			json_object_get(json_array_get(b.heard, (size_t)i), "body"), "n")),
		    i);
	loop_until(e, b.in_freed == 1);
	loop_for(e, 30);
	assert_int_equal(freed, 1);
	assert_int_equal(b.in_freed, 1);

	/* Finishing an empty link closes it as soon as it is connected. */
	assert_int_equal(lan_link_open(a.t, "pi2", &to, &l), 0);
	lan_link_set_data(l, tag_new(&freed), tag_free);
	lan_link_finish(l);
	loop_until(e, freed == 2);

	/* A peer that reads nothing: the queue stops at LAN_QUEUE_MAX. */
	lfd = raw_listen(&port);
	to = at("127.0.0.1", port);
	assert_int_equal(lan_link_open(a.t, "pi2", &to, &l), 0);
	body = json_pack("{s:s}", "pad", pad);
	while (sent < LAN_QUEUE_MAX / (int)sizeof(pad) + 2 &&
	       (r = lan_link_send(l, "DIRECT", "bulk", body, true)) == 0)
		sent++;
	json_decref(body);
	assert_int_equal(r, -ENOBUFS);
	assert_true(sent >= LAN_QUEUE_MAX / (2 * (int)sizeof(pad)));
	close(lfd);
	dev_close(&a);
	dev_close(&b);
}

/* lan_link_close() from inside the callback: the link goes after the callback returns, the rest
 * of what was read with it is not delivered, its data is freed once, and the dialler sees the
 * link go. */
static void test_link_close_in_callback(void **state)
{
	struct sockaddr_in to;
	struct lan_link *l = NULL;
	size_t heard;
	int freed = 0;
	struct dev a, b;

	(void)state;
	dev_open(&a, "pi1", rules, false, true);
	dev_open(&b, "pi2", rules, false, true);
	b.act = ACT_TAG | ACT_REPLY | ACT_CLOSE;
	to = dev_addr(&b);
	assert_int_equal(lan_link_open(a.t, "pi2", &to, &l), 0);
	lan_link_set_data(l, tag_new(&freed), tag_free);
	assert_int_equal(lan_link_send(l, "DIRECT", "one", NULL, true), 0);
	assert_int_equal(lan_link_send(l, "DIRECT", "two", NULL, true), 0);
	loop_until(e, freed == 1);
	loop_for(e, 50);
	assert_int_equal(json_array_size(b.heard), 1);
	assert_int_equal(b.in_freed, 1);
	assert_int_equal(b.replied, 0);
	assert_int_equal(b.m->refused.total, 0);

	/* The dialler closing its own link from inside its callback. (B's reply above went out at
	 * once, before its close: A may have heard it on the first link.) */
	b.act = ACT_REPLY;
	a.act = ACT_CLOSE;
	heard = json_array_size(a.heard);
	assert_true(heard <= 1);
	assert_int_equal(lan_link_open(a.t, "pi2", &to, &l), 0);
	lan_link_set_data(l, tag_new(&freed), tag_free);
	assert_int_equal(lan_link_send(l, "DIRECT", "three", NULL, true), 0);
	loop_until(e, freed == 2);
	assert_int_equal(json_array_size(a.heard), heard + 1);
	loop_for(e, 30);
	assert_int_equal(freed, 2);
	dev_close(&a);
	dev_close(&b);
}

/* The data free function runs exactly once when the link goes, however it goes: closed,
 * replaced, the peer going away, the transport freed, a dial nobody answers (a non-blocking
 * connect on loopback reports the refusal later, from the loop). */
static void test_link_data_freed_once(void **state)
{
	int closed = 0, first = 0, second = 0, gone = 0, with_tcp = 0, unreached = 0;
	struct sockaddr_in to, nowhere;
	struct lan_link *l = NULL;
	uint16_t dead_port;
	struct dev a, b;

	(void)state;
	dev_open(&a, "pi1", rules, false, true);
	dev_open(&b, "pi2", rules, false, true);
	b.act = ACT_TAG;
	to = dev_addr(&b);
	/* Closed outside any callback: at once. */
	assert_int_equal(lan_link_open(a.t, "pi2", &to, &l), 0);
	lan_link_set_data(l, tag_new(&closed), tag_free);
	assert_ptr_not_equal(lan_link_data(l), NULL);
	lan_link_close(l);
	assert_int_equal(closed, 1);
	/* Replaced: the old data at once, the new one when the link goes; NULL clears. */
	assert_int_equal(lan_link_open(a.t, "pi2", &to, &l), 0);
	lan_link_set_data(l, tag_new(&first), tag_free);
	lan_link_set_data(l, tag_new(&second), tag_free);
	assert_int_equal(first, 1);
	assert_int_equal(second, 0);
	lan_link_set_data(l, NULL, NULL);
	assert_int_equal(second, 1);
	assert_null(lan_link_data(l));
	lan_link_close(l);
	/* pi2 going away: its end freed with its transport, ours when we see it go. */
	assert_int_equal(lan_link_open(a.t, "pi2", &to, &l), 0);
	lan_link_set_data(l, tag_new(&gone), tag_free);
	assert_int_equal(lan_link_send(l, "DIRECT", "d1", NULL, true), 0);
	loop_until(e, json_array_size(b.heard) == 1);
	lan_tcp_free(b.t);
	b.t = NULL;
	assert_int_equal(b.in_freed, 1);
	loop_until(e, gone == 1);
	/* The transport freed with links still open. */
	assert_int_equal(lan_tcp_open(e, b.m, (uint16_t)b.cfg.net.port, on_link, &b, &b.t), 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(lan_link_open(a.t, "pi2", &to, &l), 0);
		lan_link_set_data(l, tag_new(&with_tcp), tag_free);
	}
	loop_for(e, 30);
	lan_tcp_free(a.t);
	a.t = NULL;
	assert_int_equal(with_tcp, 3);
	/* A dial nobody answers: the link goes by itself (or is never made). */
	assert_int_equal(lan_tcp_open(e, a.m, (uint16_t)a.cfg.net.port, on_link, &a, &a.t), 0);
	dead_port = free_port();
	nowhere = at("127.0.0.1", dead_port);
	assert_int_equal(lan_link_open(a.t, "pi2", &nowhere, &l), 0);
	lan_link_set_data(l, tag_new(&unreached), tag_free);
	loop_until(e, unreached == 1);
	loop_for(e, 50);
	assert_int_equal(closed, 1);
	assert_int_equal(first, 1);
	assert_int_equal(second, 1);
	assert_int_equal(gone, 1);
	assert_int_equal(with_tcp, 3);
	assert_int_equal(unreached, 1);
	dev_close(&a);
	dev_close(&b);
}

/* A link quiet for LAN_IDLE_USEC is dropped at both ends, and its data freed once. */
static void test_link_idle(void **state)
{
	struct sockaddr_in to;
	struct lan_link *l = NULL;
	int freed = 0;
	int64_t t;
	struct dev a, b;

	(void)state;
	dev_open(&a, "pi1", rules, false, true);
	dev_open(&b, "pi2", rules, false, true);
	b.act = ACT_TAG | ACT_REPLY;
	to = dev_addr(&b);
	assert_int_equal(lan_link_open(a.t, "pi2", &to, &l), 0);
	lan_link_set_data(l, tag_new(&freed), tag_free);
	assert_int_equal(lan_link_send(l, "DIRECT", "d1", NULL, true), 0);
	loop_until(e, json_array_size(a.heard) == 1);
	t = mono_ms();
	loop_for(e, IDLE_MS - 1000);
	assert_int_equal(freed, 0);
	assert_int_equal(b.in_freed, 0);
	while ((freed == 0 || b.in_freed == 0) && mono_ms() - t < IDLE_MS + 1500)
		assert_true(sd_event_run(e, 10000) >= 0);
	assert_int_equal(freed, 1);
	assert_int_equal(b.in_freed, 1);
	loop_for(e, 30);
	assert_int_equal(freed, 1);
	assert_int_equal(b.in_freed, 1);
	dev_close(&a);
	dev_close(&b);
}

/* ---- failures a device answers for ---- */

struct failures {
	int n;
	char device[16][CERT_NAME_MAX];
	int reason[16];
	struct lan_link *close; /* closed from inside the callback, when set */
};

static void on_failure(const char *device, int reason, void *userdata)
{
	struct failures *f = userdata;

	if (f->n < 16) {
		snprintf(f->device[f->n], CERT_NAME_MAX, "%s", device);
		f->reason[f->n] = reason;
	}
	f->n++;
	if (f->close) {
		lan_link_close(f->close);
		f->close = NULL;
	}
}

/* An envelope of ctx's whose signature no longer verifies: one base64 character of it changed. */
static char *seal_badsig(struct envelope_ctx *ctx, const char *type, const char *to, const char *id,
			 size_t *ret_len)
{
	char *env = seal(ctx, type, to, id, ret_len), *sig = strstr(env, "\"sig\":\"");

	assert_non_null(sig);
	sig += 7;
	*sig = *sig == 'A' ? 'B' : 'A';
	return env;
}

static void send_env(int fd, const char *env, size_t len)
{
	uint8_t *frame = NULL;
	size_t flen;

	assert_int_equal(frame_encode(env, len, &frame, &flen), 0);
	raw_send(fd, frame, flen);
	free(frame);
}

/* Milliseconds until the far end of fd closed, reading (and dropping) what it sent first. */
static int closed_reading(int fd, int ms)
{
	int64_t start = mono_ms();
	char buf[4096];
	ssize_t n;

	while ((n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) != 0) {
		if (n < 0 && errno != EAGAIN)
			break; /* reset: closed too */
		if (n < 0 && mono_ms() - start >= ms)
			return -1;
		if (n < 0)
			assert_true(sd_event_run(e, 5000) >= 0);
	}
	return (int)(mono_ms() - start);
}

/* A link from pi2 that has carried one message for us, verified and delivered. */
static int pi2_link(struct dev *a, struct envelope_ctx *pi2, const char *id)
{
	size_t before = json_array_size(a->heard);
	int fd = raw_connect("127.0.0.1", (uint16_t)a->cfg.net.port);

	send_framed(fd, pi2, "DIRECT", "pi1", id);
	loop_until(e, json_array_size(a->heard) == before + 1);
	return fd;
}

/* After a verified message from pi2 on a link, each failure on it is pi2's, once, with its
 * reason, and the link is dropped: a bad signature, a replay, a stale time, a message for another
 * device, one from another device, a role pi2 may not use, junk, a zero-length frame, a frame
 * too long. */
static void test_failure_attributed(void **state)
{
	static const uint8_t zero[] = {0, 0, 0, 0, 'x'}, huge[] = {0, 1, 0, 0, '{'};
	static const uint8_t junk[] = {0, 0, 0, 5, 'h', 'e', 'l', 'l', 'o'};
	struct envelope_ctx *pi2, *ctl1;
	struct failures f = {0};
	struct dev a;
	int fd, want = 0;
	char *env;
	size_t len;
	char id[16];

	(void)state;
	dev_open(&a, "pi1", rules, false, true);
	lan_tcp_on_failure(a.t, on_failure, &f);
	pi2 = signer(&a, "pi2");
	ctl1 = signer(&a, "ctl1");
	for (int i = 0; i < 9; i++) {
		snprintf(id, sizeof(id), "d%d", i);
		fd = pi2_link(&a, pi2, id);
		switch (i) {
		case 0:
			env = seal_badsig(pi2, "DIRECT", "pi1", "x", &len);
			send_env(fd, env, len);
			free(env);
			want = -IOTSEC_EBADSIG;
			break;
		case 1:
			env = seal(pi2, "DIRECT", "pi1", "x", &len);
			send_env(fd, env, len);
			send_env(fd, env, len);
			free(env);
			loop_until(e, json_array_size(a.heard) == 3);
			want = -IOTSEC_EREPLAY;
			break;
		case 2:
			/* Signed a minute ahead of our clock: delta_t is 30 s. */
			clock_set_fake(clock_now() + 60);
			env = seal(pi2, "DIRECT", "pi1", "x", &len);
			clock_set_fake(-1);
			send_env(fd, env, len);
			free(env);
			want = -IOTSEC_ESTALE;
			break;
		case 3:
			send_framed(fd, pi2, "DIRECT", "ctl1", "x");
			want = -IOTSEC_ENOTFORUS;
			break;
		case 4:
			send_framed(fd, ctl1, "DIRECT", "pi1", "x");
			want = -IOTSEC_EIDENTITY;
			break;
		case 5:
			send_framed(fd, pi2, "CONTROLLER_ONLY", NULL, NULL);
			want = -IOTSEC_EROLE;
			break;
		case 6:
			raw_send(fd, junk, sizeof(junk));
			want = -EBADMSG;
			break;
		case 7:
			raw_send(fd, zero, sizeof(zero));
			want = -EBADMSG;
			break;
		case 8:
			raw_send(fd, huge, sizeof(huge));
			want = -EMSGSIZE;
			break;
		}
		assert_true(closed_within(fd, WAIT_MS) >= 0);
		if (f.n != i + 1)
			fail_msg("case %d: %d failures attributed", i, f.n);
		assert_string_equal(f.device[i], "pi2");
		if (f.reason[i] != want)
			fail_msg("case %d: %s, not %s", i, iotsec_strerror(f.reason[i]),
				 iotsec_strerror(want));
		close(fd);
	}
	envelope_ctx_free(pi2);
	envelope_ctx_free(ctl1);
	dev_close(&a);
}

/* Nothing is pinned on a device that has not spoken to us on the link, nor for what is not its
 * doing: a failure as the first word of a link (even one carrying pi2's certificate), on a link
 * that carried only a broadcast (one anyone may have overheard), on UDP after pi2's datagrams, a
 * certificate that is revoked, a type we do not know. Each is still refused and drops the link. */
static void test_failure_not_attributed(void **state)
{
	static const uint8_t junk[] = {0, 0, 0, 5, 'h', 'e', 'l', 'l', 'o'};
	struct envelope_ctx *pi2, *revoked;
	struct failures f = {0};
	struct dev a, u;
	unsigned long refused;
	char *env;
	size_t len;
	int fd;

	(void)state;
	dev_open(&a, "pi1", rules, false, true);
	lan_tcp_on_failure(a.t, on_failure, &f);
	pi2 = signer(&a, "pi2");
	revoked = signer(&a, "revoked");

	/* The first word fails: a forgery under pi2's certificate, a replay of pi2's message. */
	fd = raw_connect("127.0.0.1", (uint16_t)a.cfg.net.port);
	env = seal_badsig(pi2, "DIRECT", "pi1", "x", &len);
	send_env(fd, env, len);
	free(env);
	assert_true(closed_within(fd, WAIT_MS) >= 0);
	close(fd);
	env = seal(pi2, "DIRECT", "pi1", "y", &len);
	fd = raw_connect("127.0.0.1", (uint16_t)a.cfg.net.port);
	send_env(fd, env, len);
	loop_until(e, json_array_size(a.heard) == 1);
	close(fd);
	fd = raw_connect("127.0.0.1", (uint16_t)a.cfg.net.port);
	send_env(fd, env, len);
	assert_true(closed_within(fd, WAIT_MS) >= 0);
	close(fd);
	free(env);
	fd = raw_connect("127.0.0.1", (uint16_t)a.cfg.net.port);
	raw_send(fd, junk, sizeof(junk));
	assert_true(closed_within(fd, WAIT_MS) >= 0);
	close(fd);

	/* Only a broadcast before the failure. */
	fd = raw_connect("127.0.0.1", (uint16_t)a.cfg.net.port);
	send_framed(fd, pi2, "ANNOUNCE", NULL, NULL);
	loop_until(e, json_array_size(a.heard) == 2);
	raw_send(fd, junk, sizeof(junk));
	assert_true(closed_within(fd, WAIT_MS) >= 0);
	close(fd);

	/* Verified first, then what is not pi2's doing. */
	fd = pi2_link(&a, pi2, "d1");
	send_framed(fd, pi2, "NEWER", NULL, NULL);
	assert_true(closed_within(fd, WAIT_MS) >= 0);
	close(fd);
	fd = pi2_link(&a, pi2, "d2");
	send_framed(fd, revoked, "DIRECT", "pi1", "x");
	assert_true(closed_within(fd, WAIT_MS) >= 0);
	close(fd);
	refused = a.m->refused.total;
	assert_int_equal(refused, 6);
	assert_int_equal(f.n, 0);

	/* UDP: pi2's datagram, then a replay of it and a forgery: refused, never attributed. */
	dev_open(&u, "ctl1", rules, true, true);
	lan_tcp_on_failure(u.t, on_failure, &f);
	env = seal(pi2, "ANNOUNCE", NULL, NULL, &len);
	send_datagram("127.0.0.1", (uint16_t)u.cfg.net.port, env, len);
	loop_until(e, json_array_size(u.heard) == 1);
	send_datagram("127.0.0.1", (uint16_t)u.cfg.net.port, env, len);
	free(env);
	env = seal_badsig(pi2, "ANNOUNCE", NULL, NULL, &len);
	send_datagram("127.0.0.1", (uint16_t)u.cfg.net.port, env, len);
	free(env);
	send_datagram("127.0.0.1", (uint16_t)u.cfg.net.port, "junk", 4);
	loop_until(e, u.m->refused.total == 3);
	assert_int_equal(f.n, 0);
	envelope_ctx_free(pi2);
	envelope_ctx_free(revoked);
	dev_close(&u);
	dev_close(&a);
}

/* On a link we dialled: nothing before the device answered (whoever took its address may be
 * answering), its failures once it has. The callback may close another link; with no callback
 * set, or one cleared, the refusal alone. */
static void test_failure_outgoing(void **state)
{
	static const uint8_t junk[] = {0, 0, 0, 5, 'h', 'e', 'l', 'l', 'o'};
	struct envelope_ctx *pi2;
	struct failures f = {0};
	struct lan_link *l = NULL, *other = NULL;
	struct sockaddr_in to;
	int lfd, fd, other_fd, freed = 0;
	uint16_t port;
	struct dev a;
	char *env;
	size_t len;

	(void)state;
	dev_open(&a, "pi1", rules, false, true);
	lan_tcp_on_failure(a.t, on_failure, &f);
	pi2 = signer(&a, "pi2");
	lfd = raw_listen(&port);
	to = at("127.0.0.1", port);

	/* Junk before pi2 said anything. */
	assert_int_equal(lan_link_open(a.t, "pi2", &to, &l), 0);
	assert_int_equal(lan_link_send(l, "DIRECT", "d1", NULL, true), 0);
	fd = raw_accept(lfd);
	raw_send(fd, junk, sizeof(junk));
	assert_true(closed_reading(fd, WAIT_MS) >= 0);
	close(fd);
	assert_int_equal(f.n, 0);

	/* pi2 answers, then forges: pi2's; the callback closes another link, which goes at once. */
	assert_int_equal(lan_link_open(a.t, "pi2", &to, &other), 0);
	lan_link_set_data(other, tag_new(&freed), tag_free);
	other_fd = raw_accept(lfd);
	assert_int_equal(lan_link_open(a.t, "pi2", &to, &l), 0);
	assert_int_equal(lan_link_send(l, "DIRECT", "d2", NULL, true), 0);
	fd = raw_accept(lfd);
	send_framed(fd, pi2, "DIRECT", "pi1", "d2");
	loop_until(e, json_array_size(a.heard) == 1);
	f.close = other;
	env = seal_badsig(pi2, "DIRECT", "pi1", "d2", &len);
	send_env(fd, env, len);
	free(env);
	assert_true(closed_reading(fd, WAIT_MS) >= 0);
	close(fd);
	assert_int_equal(f.n, 1);
	assert_string_equal(f.device[0], "pi2");
	assert_int_equal(f.reason[0], -IOTSEC_EBADSIG);
	assert_int_equal(freed, 1);
	assert_true(closed_reading(other_fd, WAIT_MS) >= 0);
	close(other_fd);

	/* Cleared: refused, not attributed. */
	lan_tcp_on_failure(a.t, NULL, NULL);
	assert_int_equal(lan_link_open(a.t, "pi2", &to, &l), 0);
	assert_int_equal(lan_link_send(l, "DIRECT", "d3", NULL, true), 0);
	fd = raw_accept(lfd);
	send_framed(fd, pi2, "DIRECT", "pi1", "d3");
	loop_until(e, json_array_size(a.heard) == 2);
	raw_send(fd, junk, sizeof(junk));
	assert_true(closed_reading(fd, WAIT_MS) >= 0);
	close(fd);
	assert_int_equal(f.n, 1);
	close(lfd);
	envelope_ctx_free(pi2);
	dev_close(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_member_load),
	    cmocka_unit_test(test_member_load_bad),
	    cmocka_unit_test_setup_teardown(test_member_follows_received_crl, loop_setup,
					    loop_teardown),
	    cmocka_unit_test_setup_teardown(test_udp_broadcast_and_unicast, loop_setup,
					    loop_teardown),
	    cmocka_unit_test_setup_teardown(test_udp_broadcast_send, loop_setup, loop_teardown),
	    cmocka_unit_test_setup_teardown(test_udp_refused, loop_setup, loop_teardown),
	    cmocka_unit_test_setup_teardown(test_udp_oversize, loop_setup, loop_teardown),
	    cmocka_unit_test_setup_teardown(test_udp_port_not_shared, loop_setup, loop_teardown),
	    cmocka_unit_test_setup_teardown(test_link_delivery_and_reply, loop_setup,
					    loop_teardown),
	    cmocka_unit_test_setup_teardown(test_link_bad_args, loop_setup, loop_teardown),
	    cmocka_unit_test_setup_teardown(test_link_fingerprint, loop_setup, loop_teardown),
	    cmocka_unit_test_setup_teardown(test_link_other_device, loop_setup, loop_teardown),
	    cmocka_unit_test_setup_teardown(test_link_bad_input, loop_setup, loop_teardown),
	    cmocka_unit_test_setup_teardown(test_link_hello_timeout, loop_setup, loop_teardown),
	    cmocka_unit_test_setup_teardown(test_link_per_address, loop_setup, loop_teardown),
	    cmocka_unit_test_setup_teardown(test_link_evicts_oldest_silent, loop_setup,
					    loop_teardown),
	    cmocka_unit_test_setup_teardown(test_link_authenticated_stays, loop_setup,
					    loop_teardown),
	    cmocka_unit_test_setup_teardown(test_link_outgoing_slots, loop_setup, loop_teardown),
	    cmocka_unit_test_setup_teardown(test_link_finish, loop_setup, loop_teardown),
	    cmocka_unit_test_setup_teardown(test_link_close_in_callback, loop_setup, loop_teardown),
	    cmocka_unit_test_setup_teardown(test_link_data_freed_once, loop_setup, loop_teardown),
	    cmocka_unit_test_setup_teardown(test_link_idle, loop_setup, loop_teardown),
	    cmocka_unit_test_setup_teardown(test_failure_attributed, loop_setup, loop_teardown),
	    cmocka_unit_test_setup_teardown(test_failure_not_attributed, loop_setup, loop_teardown),
	    cmocka_unit_test_setup_teardown(test_failure_outgoing, loop_setup, loop_teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
