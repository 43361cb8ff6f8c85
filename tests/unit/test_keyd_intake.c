/* keyd: a device taking its ring and its path keys (node.c: keyd_on_ring_piece,
 * keyd_on_ring_end, keyd_on_path_key, reached through keyd_on_link) end to end, with no network
 * but loopback and no daemon played by the test but certd.
 *
 * The device is pi1, started with keyd_start() on a configuration read by config_load_string():
 * its member, its UDP and TCP endpoints on 127.0.0.1, its dictd client. Its keys go to the real
 * iotsec-dictd binary, run as a child process ($IOTSEC_BIN, or ../bin beside this test), through
 * a relay served here on keyd's run_dir: the relay passes every request on to dictd as it is and
 * its answer back, and notes each one with the device's epoch at that moment (so the test sees
 * what keyd asked, when), or refuses one verb when a case says so. certd is a ctl_server here
 * whose status says the certificate is valid, for keyd and for dictd (which unlocks lookups on
 * that word). electd is absent: the controller's name is set in struct keyd, as electd's event
 * would set it. The controller is ctl1 (fixture.h) on a lan_tcp endpoint of its own, sending
 * real CLIENT_RING_KEYS / CLIENT_RING_END / CONTROLLER_PATH_KEY envelopes built with ring.h on
 * links to the device. Every wait is bounded (loop_until, WAIT_MS). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <limits.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "crypto.h"
#include "ctl.h"
#include "encoding.h"
#include "envelope.h"
#include "file.h"
#include "keyd.h"
#include "lan.h"
#include "log.h"
#include "proto.h"
#include "refusals.h"
#include "keyshare.h"
#include "ring.h"

#include "ctl_peer.h"
#include "fixture.h"

#define START_MS 10000 /* the longest dictd may take to start (under a sanitizer too) */
#define POOL	 1000

static struct fixture fx;
static char root[] = "/tmp/iotsec-keyd-intake-XXXXXX";
static char keyd_run[PATH_MAX], dictd_run[PATH_MAX], keyd_state[PATH_MAX];
static sd_event *e;
static X509 *pi1_x, *pi2_x;

/* ---- certd, as far as keyd and dictd need it ---- */

static int certd_status(json_t *req, json_t **ret, void *userdata)
{
	(void)req, (void)userdata;
	*ret = json_pack("{s:s, s:s}", "daemon", "certd", "certificate", PROTO_CERT_VALID);
	return *ret ? 0 : -ENOMEM;
}

static const struct ctl_verb certd_verbs[] = {
    {PROTO_STATUS, 0, certd_status},
    {NULL, 0, NULL},
};
static struct ctl_server *certd_keyd, *certd_dictd;

/* ---- dictd: the real one, and the relay keyd reaches it through ---- */

static pid_t dictd_pid;
static struct ctl_client *dictd; /* the relay's (and the checks') connection to dictd */
static struct ctl_server *relay;
static struct {
	json_t *log;	  /* {"verb", "epoch", "n_index", "req"}: what keyd asked, and when */
	const char *fail; /* refuse this verb (without passing it on) */
} relayed;
static struct keyd dev; /* the device: pi1 */

/* A call of our own to dictd (args consumed). */
static json_t *dictd_call(const char *verb, json_t *args)
{
	json_t *reply = NULL;
	int r = ctl_client_call(dictd, verb, args, 5 * WAIT_MS, &reply);

	json_decref(args);
	if (r < 0)
		fail_msg("dictd %s: %s", verb, iotsec_strerror(r));
	return reply;
}

/* Note the request, then pass it on; a refusal by dictd is one for keyd too. */
static int relay_pass(const char *verb, json_t *req, json_t **ret)
{
	json_t *reply = NULL, *fields;
	int r;

	json_array_append_new(relayed.log, json_pack("{s:s, s:I, s:I, s:O}", "verb", verb, "epoch",
						     (json_int_t)dev.epoch, "n_index",
						     (json_int_t)dev.n_index, "req", req));
	if (relayed.fail && strcmp(relayed.fail, verb) == 0)
		return -EIO;
	if ((r = ctl_client_call(dictd, verb, req, 5 * WAIT_MS, &reply)) < 0)
		return r;
	if (ctl_reply_error(reply)) {
		json_decref(reply);
		return -EACCES;
	}
	fields = json_deep_copy(reply);
	json_decref(reply);
	json_object_del(fields, "v");
	json_object_del(fields, "ok");
	json_object_del(fields, "id");
	*ret = fields;
	return 0;
}

static int relay_store(json_t *req, json_t **ret, void *ud)
{
	(void)ud;
	return relay_pass(PROTO_DICT_STORE, req, ret);
}

static int relay_lookup(json_t *req, json_t **ret, void *ud)
{
	(void)ud;
	return relay_pass(PROTO_DICT_LOOKUP, req, ret);
}

static int relay_has(json_t *req, json_t **ret, void *ud)
{
	(void)ud;
	return relay_pass(PROTO_DICT_HAS, req, ret);
}

static int relay_cancel(json_t *req, json_t **ret, void *ud)
{
	(void)ud;
	return relay_pass(PROTO_DICT_CANCEL, req, ret);
}

/* clang-format off */
static const struct ctl_verb relay_verbs[] = {
    {PROTO_DICT_STORE, CTL_MUTATES, relay_store},
    {PROTO_DICT_LOOKUP, CTL_MUTATES, relay_lookup},
    {PROTO_DICT_HAS, CTL_MUTATES, relay_has},
    {PROTO_DICT_CANCEL, CTL_MUTATES, relay_cancel},
    {NULL, 0, NULL},
};
/* clang-format on */

/* The requests for verb keyd made since log entry `from`. */
static size_t asked(const char *verb, size_t from)
{
	size_t n = 0;

	for (size_t i = from; i < json_array_size(relayed.log); i++)
		n += strcmp(
			 json_string_value(json_object_get(json_array_get(relayed.log, i), "verb")),
			 verb) == 0;
	return n;
}

/* The i-th request for verb since `from`. */
static json_t *asked_at(const char *verb, size_t from, size_t i)
{
	for (size_t j = from; j < json_array_size(relayed.log); j++) {
		json_t *o = json_array_get(relayed.log, j);

		if (strcmp(json_string_value(json_object_get(o, "verb")), verb) == 0 && i-- == 0)
			return o;
	}
	fail_msg("no request %s", verb);
	return NULL;
}

static void dictd_binary(char *out, size_t len)
{
	const char *bin = getenv("IOTSEC_BIN");
	char self[PATH_MAX] = "";
	ssize_t n;

	if (bin && bin[0]) {
		snprintf(out, len, "%s/iotsec-dictd", bin);
		return;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	self[n > 0 ? n : 0] = '\0';
	snprintf(out, len, "%s/../bin/iotsec-dictd", dirname(self));
}

/* Start iotsec-dictd with a configuration of its own; it is ready once it serves lookups. */
static int dictd_start(void)
{
	char bin[PATH_MAX + 32], conf[PATH_MAX], logf[PATH_MAX], sock[PATH_MAX + 32];
	char *text = NULL;
	const char *runner = getenv("TEST_RUNNER");
	int64_t end;
	json_t *s;

	dictd_binary(bin, sizeof(bin));
	if (access(bin, X_OK) < 0) {
		fprintf(stderr, "no %s: build the programs first (make)\n", bin);
		return -1;
	}
	snprintf(conf, sizeof(conf), "%s/dictd.conf", root);
	snprintf(logf, sizeof(logf), "%s/dictd.log", root);
	if (asprintf(
		&text,
		"device = {\n  cert = \"%s\";\n  key = \"%s\";\n  ca = \"%s\";\n  crl = \"%s\";\n"
		"  state_dir = \"%s/dictd-state\";\n  run_dir = \"%s\";\n};\n"
		"dictd = {\n  path = \"%s/dictd-state/keys.dict\";\n"
		"  key_file = \"%s/dictd-state/dict.key\";\n};\n",
		fixture_path(&fx, "pi1", "crt"), fixture_path(&fx, "pi1", "key"), fx.ca_crt, fx.crl,
		root, dictd_run, root, root) < 0 ||
	    file_write_atomic(conf, text, strlen(text), 0600) < 0)
		return -1;
	free(text);
	if ((dictd_pid = fork()) < 0)
		return -1;
	if (dictd_pid == 0) {
		int fd = open(logf, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

		if (fd >= 0) {
			dup2(fd, STDOUT_FILENO);
			dup2(fd, STDERR_FILENO);
		}
		/* It goes when the test goes, however the test ends. */
		if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() == 1)
			_exit(126);
		unsetenv("CREDENTIALS_DIRECTORY");
		unsetenv("NOTIFY_SOCKET");
		unsetenv("WATCHDOG_USEC");
		/* A cross build's test runs under qemu-user (tests/run.sh's TEST_RUNNER), which
		 * cannot start another ARM program by itself without binfmt_misc: the same runner
		 * starts dictd. */
		if (runner && runner[0])
			execlp(runner, runner, bin, "-c", conf, (char *)NULL);
		else
			execl(bin, "iotsec-dictd", "-c", conf, (char *)NULL);
		_exit(127);
	}
	snprintf(sock, sizeof(sock), "%s/dictd/dictd.sock", dictd_run);
	/* Its socket, then certd's word (served on our loop) so that lookups are open. */
	for (end = mono_ms() + START_MS; mono_ms() < end;) {
		json_t *reply = NULL;

		if (waitpid(dictd_pid, NULL, WNOHANG) == dictd_pid) {
			dictd_pid = 0;
			fprintf(stderr, "iotsec-dictd exited: see %s\n", logf);
			return -1;
		}
		sd_event_run(e, 20 * 1000);
		if (dictd == NULL && ctl_client_connect(sock, &dictd) < 0) {
			dictd = NULL;
			continue;
		}
		if (ctl_client_call(dictd, PROTO_STATUS, NULL, WAIT_MS, &reply) < 0) {
			ctl_client_free(dictd);
			dictd = NULL;
			continue;
		}
		s = reply;
		if (json_is_false(json_object_get(s, "locked"))) {
			json_decref(s);
			return 0;
		}
		json_decref(s);
	}
	fprintf(stderr, "iotsec-dictd did not open within %d ms: see %s\n", START_MS, logf);
	return -1;
}

/* Stop dictd as systemd would (SIGTERM); 0 when it ended cleanly, else its log is shown. */
static int dictd_stop(void)
{
	int64_t end = mono_ms() + 5 * WAIT_MS;
	char logf[PATH_MAX], *text = NULL;
	size_t len = 0;
	int status = 0;
	pid_t r;

	ctl_client_free(dictd);
	dictd = NULL;
	if (dictd_pid <= 0)
		return 0;
	kill(dictd_pid, SIGTERM);
	while ((r = waitpid(dictd_pid, &status, WNOHANG)) == 0) {
		if (mono_ms() >= end) {
			kill(dictd_pid, SIGKILL);
			waitpid(dictd_pid, &status, 0);
			break;
		}
		sleep_ms(10);
	}
	dictd_pid = 0;
	if (r == 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		snprintf(logf, sizeof(logf), "%s/dictd.log", root);
		if (file_read(logf, 1 << 20, &text, &len) == 0)
			fprintf(stderr, "iotsec-dictd did not end cleanly (status %#x):\n%s",
				status, text);
		free(text);
		return -1;
	}
	return 0;
}

/* ---- keys ---- */

static void key_of(uint32_t epoch, uint32_t index, uint8_t out[CRYPTO_KEY_LEN])
{
	for (size_t j = 0; j < CRYPTO_KEY_LEN; j++)
		out[j] = (uint8_t)(epoch * 131u + index * 7u + j * 13u + (index >> 8) + 1u);
}

/* dictd holds exactly these keys of name at these indices. */
static void expect_in_dictd(const char *name, const uint32_t *index, size_t n,
			    const uint8_t (*keys)[CRYPTO_KEY_LEN])
{
	json_t *list = json_array(), *reply, *got;
	char why[256] = "";

	for (size_t i = 0; i < n; i++)
		json_array_append_new(list, json_integer(index[i]));
	reply =
	    dictd_call(PROTO_DICT_LOOKUP, json_pack("{s:s, s:o}", "name", name, "indices", list));
	got = json_object_get(reply, "keys");
	if (ctl_reply_error(reply) || json_array_size(got) != n)
		snprintf(why, sizeof(why), "dictd has %zu of %zu keys of %s (%s)",
			 json_array_size(got), n, name, ctl_reply_error(reply) ?: "ok");
	for (size_t i = 0; why[0] == '\0' && i < n; i++) {
		char *k64 = b64_encode(keys[i], CRYPTO_KEY_LEN);
		json_t *o = json_array_get(got, i);
		const char *key = json_string_value(json_object_get(o, "key"));

		assert_non_null(k64);
		if (json_integer_value(json_object_get(o, "index")) != index[i] || key == NULL ||
		    strcmp(key, k64) != 0)
			snprintf(why, sizeof(why), "%s %u: another key in dictd", name, index[i]);
		free(k64);
	}
	json_decref(reply);
	if (why[0])
		fail_msg("%s", why);
}

/* dictd gives no key of name at index (none, or cancelled). */
static void expect_not_in_dictd(const char *name, uint32_t index)
{
	json_t *reply = dictd_call(PROTO_DICT_LOOKUP, json_pack("{s:s, s:[I]}", "name", name,
								"indices", (json_int_t)index));

	assert_null(ctl_reply_error(reply));
	if (json_array_size(json_object_get(reply, "keys")) != 0)
		fail_msg("dictd still gives %s %u", name, index);
	json_decref(reply);
}

/* ---- rings ---- */

struct ring {
	char id[ENVELOPE_ID_MAX + 1];
	uint32_t epoch, pool;
	uint32_t start;		       /* the group stream's e0 */
	uint8_t group[CRYPTO_KEY_LEN]; /* and its root */
	size_t n;
	uint32_t index[RING_SIZE_MAX];
	uint8_t key[RING_SIZE_MAX][CRYPTO_KEY_LEN];
};
/* Rings the cases build (too big for the stack of a case), one case at a time. */
static struct ring ring_a, ring_b, ring_c;

/* n indices first, first + step, ... of epoch, with their keys, and a new delivery id. */
static void ring_make(struct ring *r, uint32_t epoch, size_t n, uint32_t first, uint32_t step)
{
	memset(r, 0, sizeof(*r));
	assert_int_equal(envelope_new_id(r->id), 0);
	r->epoch = epoch, r->pool = POOL, r->n = n;
	/* An e0 and a root of each epoch's own, so that one pool's are told from another's. */
	r->start = epoch * 1000 + 17;
	key_of(epoch, UINT32_MAX, r->group);
	for (size_t i = 0; i < n; i++) {
		r->index[i] = first + (uint32_t)i * step;
		key_of(epoch, r->index[i], r->key[i]);
	}
	assert_true(r->index[n - 1] < POOL);
}

/* CLIENT_RING_KEYS of keys [from, from + n) of r, wrapped to pub. */
static json_t *piece_body(const struct ring *r, size_t from, size_t n, EVP_PKEY *pub)
{
	struct ring_keys piece = {.epoch = r->epoch, .n = n};
	json_t *body = NULL;

	memcpy(piece.index, r->index + from, n * sizeof(piece.index[0]));
	memcpy(piece.key, r->key + from, n * CRYPTO_KEY_LEN);
	assert_int_equal(ring_ring_keys_build(&piece, r->pool, pub, &body), 0);
	ring_keys_wipe(&piece);
	return body;
}

/* CLIENT_RING_END of r's group stream, with these epoch, count and pool, to pi1. */
static json_t *end_body(const struct ring *r, uint32_t epoch, uint32_t count, uint32_t pool)
{
	struct ring_end end = {.epoch = epoch, .count = count, .pool = pool, .start = r->start};
	json_t *body = NULL;

	memcpy(end.group, r->group, sizeof(end.group));
	assert_int_equal(ring_end_build(&end, X509_get0_pubkey(pi1_x), &body), 0);
	crypto_wipe(&end, sizeof(end));
	return body;
}

/* ---- the controller ---- */

/* What a controller (or any device) on the other end of the links hears. */
struct side {
	struct iotsec_config cfg;
	struct lan_member *m;
	struct lan_tcp *t;
	json_t *heard; /* {"type", "id", "body", "link"} */
};

/* clang-format off */
static const struct envelope_rule side_rules[] = {
    {KEYD_MSG_ANNOUNCE, CERT_ROLES_ANY, false, false},
    {RING_MSG_NEEDS_KEYS, CERT_ROLES_ANY, true, false},
    {RING_MSG_RING_KEYS, CERT_ROLES_ANY, true, false},
    {RING_MSG_RING_END, CERT_ROLES_ANY, true, false},
    {RING_MSG_PATH_KEY, CERT_ROLES_ANY, true, false},
    {RING_MSG_CLIENT_KEYS, CERT_ROLES_ANY, true, false},
    {RING_MSG_RING_ACK, CERT_ROLES_ANY, true, false},
    {NULL, 0, false, false},
};
/* clang-format on */

static struct side ctl1, pi2;

/* A link's end, seen from the side that opened it: gone once the transport has let it go.
 * Tags live as long as the case and its teardown, whatever becomes of their links. */
struct tag {
	bool gone;
};
static struct tag tags[64];
static size_t n_tags;

static void tag_free(void *p)
{
	((struct tag *)p)->gone = true;
}

static void side_on_link(struct lan_link *l, struct envelope_msg *m, void *userdata)
{
	struct side *s = userdata;

	json_array_append_new(s->heard,
			      json_pack("{s:s, s:s, s:O, s:I}", "type", m->type, "id", m->id,
					"body", m->body, "link", (json_int_t)(uintptr_t)l));
}

static uint16_t free_port(void)
{
	for (int tries = 0; tries < 50; tries++) {
		struct sockaddr_in a = {.sin_family = AF_INET};
		socklen_t len = sizeof(a);
		int u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		int t = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		bool ok;

		assert_int_equal(bind(u, (struct sockaddr *)&a, sizeof(a)), 0);
		assert_int_equal(getsockname(u, (struct sockaddr *)&a, &len), 0);
		ok = ntohs(a.sin_port) > 1 && bind(t, (struct sockaddr *)&a, sizeof(a)) == 0;
		close(u);
		close(t);
		if (ok)
			return ntohs(a.sin_port);
	}
	fail_msg("no free port");
	return 0;
}

/* The configuration device name's daemons would read. */
static void configure(struct iotsec_config *cfg, const char *name, uint16_t port)
{
	char *text = NULL, err[CONFIG_ERR_MAX] = "", crt[PATH_MAX + 64], key[PATH_MAX + 64];

	snprintf(crt, sizeof(crt), "%s", fixture_path(&fx, name, "crt"));
	snprintf(key, sizeof(key), "%s", fixture_path(&fx, name, "key"));
	assert_true(
	    asprintf(&text,
		     "device = {\n  cert = \"%s\";\n  key = \"%s\";\n  ca = \"%s\";\n"
		     "  crl = \"%s\";\n  state_dir = \"%s\";\n  run_dir = \"%s\";\n};\n"
		     "net = {\n  port = %u;\n  broadcast = \"127.0.0.1\";\n  delta_t = 30;\n};\n"
		     "keyd = {\n  announce_ms = 600000;\n};\n",
		     crt, key, fx.ca_crt, fx.crl, keyd_state, keyd_run, (unsigned)port) > 0);
	memset(cfg, 0, sizeof(*cfg));
	if (config_load_string(text, "keyd-test.conf", cfg, err, sizeof(err)) < 0)
		fail_msg("configuration refused: %s", err);
	free(text);
}

static void side_open(struct side *s, const char *name)
{
	const char *what = NULL;

	memset(s, 0, sizeof(*s));
	configure(&s->cfg, name, free_port());
	assert_int_equal(lan_member_load(&s->cfg, side_rules, &s->m, &what), 0);
	assert_int_equal(lan_tcp_open(e, s->m, (uint16_t)s->cfg.net.port, side_on_link, s, &s->t),
			 0);
	assert_non_null(s->heard = json_array());
}

static void side_close(struct side *s)
{
	lan_tcp_free(s->t);
	lan_member_free(s->m);
	config_free(&s->cfg);
	json_decref(s->heard);
	memset(s, 0, sizeof(*s));
}

/* The side has heard the device's announcement (with its certificate), as a controller has
 * before it gives a ring: the device's answers carry only its fingerprint. */
static void side_knows(struct side *s, struct keyd *k)
{
	char sender[CERT_NAME_MAX];
	struct envelope_msg msg;
	char *buf = NULL;
	size_t len;

	assert_int_equal(
	    envelope_seal(k->member->env, KEYD_MSG_ANNOUNCE, NULL, NULL, NULL, true, &buf, &len),
	    0);
	assert_int_equal(envelope_open(s->m->env, buf, len, &msg, sender), 0);
	envelope_msg_clear(&msg);
	free(buf);
}

/* A link from side to the device (keyd's port on 127.0.0.1), addressed to `to`: the device
 * itself, or another name. */
static struct lan_link *side_link(struct side *s, uint16_t port, const char *to,
				  struct tag **ret_tag)
{
	struct sockaddr_in at = {.sin_family = AF_INET, .sin_port = htons(port)};
	struct lan_link *l = NULL;
	struct tag *t;

	assert_true(n_tags < sizeof(tags) / sizeof(tags[0]));
	t = &tags[n_tags++];
	t->gone = false;
	at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(lan_link_open(s->t, to, &at, &l), 0);
	lan_link_set_data(l, t, tag_free);
	*ret_tag = t;
	return l;
}

static void send_body(struct lan_link *l, const char *type, const char *id, json_t *body)
{
	assert_int_equal(lan_link_send(l, type, id, body, true), 0);
	json_decref(body);
}

/* Keys that fit one CLIENT_RING_KEYS from side to the device. */
static size_t per_msg(struct side *s)
{
	size_t n = ring_keys_per_msg(X509_get0_pubkey(pi1_x), s->m->cert_len);

	assert_true(n >= 2);
	return n;
}

/* Keys [from, to) of r in as many pieces as they need, wrapped to pub. */
static void send_pieces(struct side *s, struct lan_link *l, const struct ring *r, size_t from,
			size_t to, EVP_PKEY *pub)
{
	size_t per = per_msg(s);

	for (size_t i = from; i < to; i += per)
		send_body(l, RING_MSG_RING_KEYS, r->id,
			  piece_body(r, i, to - i < per ? to - i : per, pub));
}

static void send_end(struct lan_link *l, const struct ring *r)
{
	send_body(l, RING_MSG_RING_END, r->id, end_body(r, r->epoch, (uint32_t)r->n, r->pool));
}

/* The acknowledgement side heard for delivery id; NULL when none. */
static json_t *ack_of(struct side *s, const char *id)
{
	size_t i;
	json_t *o;

	json_array_foreach(
	    s->heard, i,
	    o) if (strcmp(json_string_value(json_object_get(o, "type")), RING_MSG_RING_ACK) == 0 &&
		   strcmp(json_string_value(json_object_get(o, "id")), id) == 0) return o;
	return NULL;
}

static size_t acks(struct side *s)
{
	size_t i, n = 0;
	json_t *o;

	json_array_foreach(s->heard, i, o) n +=
	    strcmp(json_string_value(json_object_get(o, "type")), RING_MSG_RING_ACK) == 0;
	return n;
}

/* ---- the device ---- */

static struct iotsec_config kcfg;

/* A link from side to the device. */
#define LINK(side, to, tag) side_link((side), (uint16_t)(kcfg.net.port + 1), (to), (tag))

/* The device holds exactly ring r. */
static void expect_ring(const struct ring *r)
{
	assert_int_equal(dev.epoch, r->epoch);
	assert_int_equal(dev.pool, r->pool);
	assert_int_equal(dev.n_index, r->n);
	assert_memory_equal(dev.index, r->index, r->n * sizeof(r->index[0]));
	assert_int_equal(dev.group_start, r->start);
	assert_true(dev.floor >= r->epoch);
	assert_null(dev.storing);
}

/* Give ring r on a new link and wait for its acknowledgement. */
static void deliver(struct side *s, const struct ring *r)
{
	struct tag *t;
	struct lan_link *l = LINK(s, "pi1", &t);

	send_pieces(s, l, r, 0, r->n, X509_get0_pubkey(pi1_x));
	send_end(l, r);
	loop_until(e, ack_of(s, r->id) != NULL && dev.storing == NULL);
	expect_ring(r);
	if (!t->gone)
		lan_link_close(l);
}

/* Refusals of code the device counted (each case has a device of its own). */
static unsigned long refused(int code)
{
	unsigned long n = 0;

	for (size_t i = 0; i < dev.member->refused.n; i++)
		if (dev.member->refused.seen[i].code == code)
			n += dev.member->refused.seen[i].count;
	return n;
}

static int setup(void **state)
{
	char path[PATH_MAX + 32];

	(void)state;
	snprintf(path, sizeof(path), "%s/keyd/%s", keyd_state, KEYD_STATE_FILE);
	unlink(path);
	json_array_clear(relayed.log);
	relayed.fail = NULL;
	n_tags = 0;
	memset(&dev, 0, sizeof(dev));
	configure(&kcfg, "pi1", (uint16_t)(free_port() - 1)); /* keyd takes port + 1 */
	if (keyd_start(&dev, &kcfg, e) < 0)
		return -1;
	loop_until(e, dev.in_home);
	snprintf(dev.controller, sizeof(dev.controller), "ctl1");
	side_open(&ctl1, "ctl1");
	side_knows(&ctl1, &dev);
	side_open(&pi2, "pi2");
	side_knows(&pi2, &dev);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	side_close(&ctl1);
	side_close(&pi2);
	keyd_stop(&dev);
	config_free(&kcfg);
	/* Let dictd's side of the dropped connections settle before the next case connects. */
	loop_for(e, 20);
	return 0;
}

/* ---- cases ---- */

/* A whole ring goes to dictd in one store; the device's epoch, pool and indices change only
 * once dictd has stored it and cancelled the other epochs; then the ring is acknowledged on its
 * link, naming the delivery. */
static void test_ring_stored(void **state)
{
	struct ring *r = &ring_a;
	struct lan_link *l;
	json_t *store, *ack, *rec;
	struct tag *t;
	uint32_t epoch = 0;
	size_t i;

	(void)state;
	ring_make(r, 5, 3 * per_msg(&ctl1) / 2 + 1, 0, 7); /* two pieces; index 0 included */
	l = LINK(&ctl1, "pi1", &t);
	send_pieces(&ctl1, l, r, 0, r->n, X509_get0_pubkey(pi1_x));
	send_end(l, r);
	loop_until(e, ack_of(&ctl1, r->id) != NULL && dev.storing == NULL);

	/* One store, with the whole ring, asked before the device moved on. */
	assert_int_equal(asked(PROTO_DICT_STORE, 0), 1);
	store = asked_at(PROTO_DICT_STORE, 0, 0);
	assert_int_equal(json_integer_value(json_object_get(store, "epoch")), 0);
	assert_int_equal(json_integer_value(json_object_get(store, "n_index")), 0);
	/* The ring and, in the same store, the group root at index e0. */
	assert_int_equal(json_array_size(json_object_get(json_object_get(store, "req"), "records")),
			 r->n + 1);
	json_array_foreach(json_object_get(json_object_get(store, "req"), "records"), i, rec)
	{
		bool group = i == r->n;
		char *k64 = b64_encode(group ? r->group : r->key[i], CRYPTO_KEY_LEN);

		assert_string_equal(json_string_value(json_object_get(rec, "name")),
				    group ? KEYD_GROUP_RECORD : KEYD_RING_RECORD);
		assert_int_equal(json_integer_value(json_object_get(rec, "index")),
				 group ? r->start : r->index[i]);
		assert_int_equal(json_integer_value(json_object_get(rec, "epoch")), 5);
		assert_string_equal(json_string_value(json_object_get(rec, "key")), k64);
		free(k64);
	}
	/* The same store cancels every other epoch: one call, one save. */
	assert_true(json_is_true(json_object_get(json_object_get(store, "req"), "cancel_others")));
	assert_int_equal(asked(PROTO_DICT_CANCEL, 0), 0);
	expect_ring(r);

	/* The acknowledgement, once, on the link the ring came on. */
	ack = ack_of(&ctl1, r->id);
	assert_int_equal(json_integer_value(json_object_get(ack, "link")),
			 (json_int_t)(uintptr_t)l);
	assert_int_equal(ring_ack_parse(json_object_get(ack, "body"), &epoch), 0);
	assert_int_equal(epoch, 5);
	assert_int_equal(acks(&ctl1), 1);

	expect_in_dictd(KEYD_RING_RECORD, r->index, r->n, (const uint8_t(*)[CRYPTO_KEY_LEN])r->key);
	expect_in_dictd(KEYD_GROUP_RECORD, &r->start, 1,
			(const uint8_t(*)[CRYPTO_KEY_LEN])r->group);
	/* keyd's status (and so its epoch-changed event) says e0. */
	{
		json_t *st = keyd_status(&dev);

		assert_int_equal(json_integer_value(json_object_get(st, "group_start")), r->start);
		json_decref(st);
	}
	/* And keyd remembers it across a restart. */
	{
		char path[PATH_MAX + 32], *text = NULL;
		size_t len;
		json_t *o;

		snprintf(path, sizeof(path), "%s/keyd/%s", keyd_state, KEYD_STATE_FILE);
		assert_int_equal(file_read(path, 1 << 16, &text, &len), 0);
		assert_non_null(o = json_loads(text, 0, NULL));
		assert_int_equal(json_integer_value(json_object_get(o, "epoch")), 5);
		assert_int_equal(json_array_size(json_object_get(o, "indices")), r->n);
		assert_int_equal(json_integer_value(json_object_get(o, "group_start")), r->start);
		/* The root itself is in dictd only. */
		{
			char *g64 = b64_encode(r->group, CRYPTO_KEY_LEN);

			assert_null(strstr(text, g64));
			free(g64);
		}
		json_decref(o);
		free(text);
	}
	if (!t->gone)
		lan_link_close(l);
}

/* A store that dictd refuses leaves the device as it was, unacknowledged; the ring given again
 * is taken. */
static void test_ring_not_stored(void **state)
{
	static const char *const fail[] = {PROTO_DICT_STORE};
	struct ring *r = &ring_a;

	(void)state;
	ring_make(r, 3, 10, 2, 11);
	for (size_t f = 0; f < sizeof(fail) / sizeof(fail[0]); f++) {
		struct tag *t;
		struct lan_link *l = LINK(&ctl1, "pi1", &t);
		size_t from = json_array_size(relayed.log);

		relayed.fail = fail[f];
		send_pieces(&ctl1, l, r, 0, r->n, X509_get0_pubkey(pi1_x));
		send_end(l, r);
		loop_until(e, asked(fail[f], from) == 1 && dev.storing == NULL);
		assert_int_equal(asked(PROTO_DICT_CANCEL, from), 0);
		assert_int_equal(dev.epoch, 0);
		assert_int_equal(dev.n_index, 0);
		assert_int_equal(dev.pool, 0);
		assert_null(ack_of(&ctl1, r->id));
		if (!t->gone)
			lan_link_close(l);
		assert_int_equal(envelope_new_id(r->id), 0); /* given again: a new delivery */
	}
	relayed.fail = NULL;
	deliver(&ctl1, r);
	assert_int_equal(acks(&ctl1), 1);
}

/* A ring of an epoch below the device's is refused at its first piece and changes nothing;
 * one of the same epoch (given again) is taken. */
static void test_lower_epoch_refused(void **state)
{
	struct ring *r = &ring_a;
	struct ring *old = &ring_b;
	struct lan_link *l;
	struct tag *t;
	size_t from;
	unsigned long stale;

	(void)state;
	ring_make(r, 5, 12, 1, 3);
	deliver(&ctl1, r);
	from = json_array_size(relayed.log);
	stale = refused(-IOTSEC_EEPOCH);

	ring_make(old, 4, 12, 2, 3);
	l = LINK(&ctl1, "pi1", &t);
	send_pieces(&ctl1, l, old, 0, old->n, X509_get0_pubkey(pi1_x));
	send_end(l, old);
	loop_until(e, t->gone);
	assert_int_equal(refused(-IOTSEC_EEPOCH), stale + 1);
	assert_int_equal(asked(PROTO_DICT_STORE, from), 0);
	assert_int_equal(asked(PROTO_DICT_CANCEL, from), 0);
	assert_null(ack_of(&ctl1, old->id));
	expect_ring(r);
	expect_in_dictd(KEYD_RING_RECORD, r->index, r->n, (const uint8_t(*)[CRYPTO_KEY_LEN])r->key);

	/* Epoch 1, the lowest there is, after epoch 5: refused as well. */
	ring_make(old, 1, 3, 0, 1);
	l = LINK(&ctl1, "pi1", &t);
	send_pieces(&ctl1, l, old, 0, old->n, X509_get0_pubkey(pi1_x));
	loop_until(e, t->gone);
	assert_int_equal(asked(PROTO_DICT_STORE, from), 0);
	expect_ring(r);

	/* The same epoch again, another ring: taken. */
	ring_make(old, 5, 8, 100, 5);
	deliver(&ctl1, old);
	assert_int_equal(asked(PROTO_DICT_STORE, from), 1);
}

/* The device hears side announce a ring of epoch (one index), as keyd's UDP endpoint would
 * pass it on. */
static void announces(struct side *s, uint32_t epoch)
{
	struct ring_indices x = {.epoch = epoch, .n = 1, .index = {1}};
	struct sockaddr_in at = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	char sender[CERT_NAME_MAX];
	struct envelope_msg msg;
	json_t *body = NULL;
	char *buf = NULL;
	size_t len;
	int r = 0;

	assert_int_equal(ring_start_build(&x, 100, &body), 0);
	assert_int_equal(
	    envelope_seal(s->m->env, KEYD_MSG_ANNOUNCE, NULL, NULL, body, true, &buf, &len), 0);
	assert_int_equal(envelope_open(dev.member->env, buf, len, &msg, sender), 0);
	assert_non_null(keyd_peer_update(&dev, &msg, &at, &r));
	envelope_msg_clear(&msg);
	json_decref(body);
	free(buf);
}

/* Give ring r on a new link and wait for the device to drop it. */
static void refused_ring(struct side *s, const struct ring *r)
{
	struct tag *t;
	struct lan_link *l = LINK(s, "pi1", &t);

	send_pieces(s, l, r, 0, r->n, X509_get0_pubkey(pi1_x));
	send_end(l, r);
	loop_until(e, t->gone);
}

/* A device that never held a ring judges its first one by what the other devices announce, not
 * by the word of the controller giving it: a controller gone bad cannot hand it the top of the
 * counter, where no honest ring could follow. */
static void test_first_ring_far_ahead(void **state)
{
	struct ring *r = &ring_a;
	unsigned long stale = refused(-IOTSEC_EEPOCH);

	(void)state;
	ring_make(r, KEYSHARE_EPOCH_JUMP + 9, 12, 1, 3);
	/* Nobody heard: a jump from the start of the counter at most. */
	refused_ring(&ctl1, r);
	assert_int_equal(refused(-IOTSEC_EEPOCH), stale + 1);
	/* pi2 is at epoch 3; the controller claims the far epoch itself: pi2 counts, not it. */
	announces(&pi2, 3);
	announces(&ctl1, r->epoch);
	refused_ring(&ctl1, r);
	assert_int_equal(refused(-IOTSEC_EEPOCH), stale + 2);
	assert_int_equal(asked(PROTO_DICT_STORE, 0), 0);
	assert_int_equal(dev.epoch, 0);
	/* The home is there (pi2 says so too): taken. */
	announces(&pi2, r->epoch - 1);
	deliver(&ctl1, r);
}

/* A piece of another delivery on a link drops that link, and only that one: a ring under way on
 * another link completes. */
static void test_other_delivery_drops_link(void **state)
{
	struct ring *a = &ring_a;
	struct ring *b = &ring_b;
	struct lan_link *la, *lb, *lc;
	struct tag *ta, *tb, *tc;
	char other[ENVELOPE_ID_MAX + 1];
	unsigned long wrong;

	(void)state;
	wrong = refused(-IOTSEC_EDELIVERY);
	ring_make(a, 6, 2 * per_msg(&ctl1), 0, 2);
	ring_make(b, 6, 2 * per_msg(&ctl1), 1, 2);
	la = LINK(&ctl1, "pi1", &ta);
	lb = LINK(&ctl1, "pi1", &tb);
	lc = LINK(&ctl1, "pi1", &tc);
	send_pieces(&ctl1, la, a, 0, per_msg(&ctl1), X509_get0_pubkey(pi1_x));
	/* b's first piece, then its second under another delivery id. */
	send_pieces(&ctl1, lb, b, 0, per_msg(&ctl1), X509_get0_pubkey(pi1_x));
	assert_int_equal(envelope_new_id(other), 0);
	send_body(lb, RING_MSG_RING_KEYS, other,
		  piece_body(b, per_msg(&ctl1), per_msg(&ctl1), X509_get0_pubkey(pi1_x)));
	/* c's pieces, then the end of another delivery. */
	send_pieces(&ctl1, lc, b, 0, b->n, X509_get0_pubkey(pi1_x));
	send_body(lc, RING_MSG_RING_END, other, end_body(b, b->epoch, (uint32_t)b->n, b->pool));
	loop_until(e, tb->gone && tc->gone);
	assert_false(ta->gone);
	assert_int_equal(refused(-IOTSEC_EDELIVERY), wrong + 2);
	assert_int_equal(asked(PROTO_DICT_STORE, 0), 0);

	send_pieces(&ctl1, la, a, per_msg(&ctl1), a->n, X509_get0_pubkey(pi1_x));
	send_end(la, a);
	loop_until(e, ack_of(&ctl1, a->id) != NULL && dev.storing == NULL);
	expect_ring(a);
	assert_int_equal(asked(PROTO_DICT_STORE, 0), 1);
	assert_int_equal(acks(&ctl1), 1);
	if (!ta->gone)
		lan_link_close(la);
}

/* A ring piece sealed to pi2 (its keys wrapped to pi2), replayed to pi1: refused as addressed
 * to another device, and pi1's intake on its other link is untouched. */
static void test_replay_to_other_device(void **state)
{
	struct ring *mine = &ring_a;
	struct ring *theirs = &ring_b;
	struct lan_link *good, *replay;
	struct tag *tg, *tr;
	unsigned long notforus;

	(void)state;
	notforus = refused(-IOTSEC_ENOTFORUS);
	ring_make(mine, 8, 2 * per_msg(&ctl1) - 1, 4, 9);
	memcpy(theirs, mine, sizeof(*theirs)); /* the same ring and delivery, to pi2 */
	good = LINK(&ctl1, "pi1", &tg);
	send_pieces(&ctl1, good, mine, 0, per_msg(&ctl1), X509_get0_pubkey(pi1_x));
	/* What went to pi2, sent to pi1's address. */
	replay = LINK(&ctl1, "pi2", &tr);
	send_pieces(&ctl1, replay, theirs, 0, theirs->n, X509_get0_pubkey(pi2_x));
	send_end(replay, theirs);
	loop_until(e, tr->gone);
	assert_int_equal(refused(-IOTSEC_ENOTFORUS), notforus + 1);
	assert_false(tg->gone);
	assert_int_equal(asked(PROTO_DICT_STORE, 0), 0);
	assert_int_equal(dev.epoch, 0);

	send_pieces(&ctl1, good, mine, per_msg(&ctl1), mine->n, X509_get0_pubkey(pi1_x));
	send_end(good, mine);
	loop_until(e, ack_of(&ctl1, mine->id) != NULL && dev.storing == NULL);
	expect_ring(mine);
	assert_int_equal(asked(PROTO_DICT_STORE, 0), 1);
	expect_in_dictd(KEYD_RING_RECORD, mine->index, mine->n,
			(const uint8_t(*)[CRYPTO_KEY_LEN])mine->key);
	if (!tg->gone)
		lan_link_close(good);
}

/* A ring from a controller-role device other than the one electd names is ignored: its link
 * dropped at the first message, nothing stored, nothing acknowledged. So is one before electd
 * named any controller. */
static void test_not_the_controller(void **state)
{
	static const char *const named[] = {"ctl9", "", "pi2"};
	struct ring *r = &ring_a;

	(void)state;
	ring_make(r, 4, 6, 10, 10);
	for (size_t i = 0; i < sizeof(named) / sizeof(named[0]); i++) {
		struct tag *t;
		struct lan_link *l;
		json_t *path = NULL;

		snprintf(dev.controller, sizeof(dev.controller), "%s", named[i]);
		l = LINK(&ctl1, "pi1", &t);
		send_pieces(&ctl1, l, r, 0, r->n, X509_get0_pubkey(pi1_x));
		send_end(l, r);
		loop_until(e, t->gone);
		/* Nor a path key. */
		l = LINK(&ctl1, "pi1", &t);
		assert_int_equal(ring_path_key_build(&(struct ring_path_key){4, "pi2", {1, 2, 3}},
						     X509_get0_pubkey(pi1_x), &path),
				 0);
		send_body(l, RING_MSG_PATH_KEY, r->id, path);
		loop_until(e, t->gone);
	}
	assert_int_equal(asked(PROTO_DICT_STORE, 0), 0);
	assert_int_equal(acks(&ctl1), 0);
	assert_int_equal(dev.epoch, 0);
	assert_int_equal(dev.n_index, 0);
	assert_false(keyd_has_path(&dev, "pi2"));

	snprintf(dev.controller, sizeof(dev.controller), "ctl1");
	deliver(&ctl1, r);
}

/* A node's certificate cannot give rings, even when electd names it. */
static void test_node_cannot_give_rings(void **state)
{
	struct ring *r = &ring_a;
	struct lan_link *l;
	struct tag *t;
	unsigned long role;

	(void)state;
	role = refused(-IOTSEC_EROLE);
	snprintf(dev.controller, sizeof(dev.controller), "pi2");
	ring_make(r, 4, 6, 10, 10);
	l = LINK(&pi2, "pi1", &t);
	send_pieces(&pi2, l, r, 0, r->n, X509_get0_pubkey(pi1_x));
	send_end(l, r);
	loop_until(e, t->gone);
	assert_int_equal(refused(-IOTSEC_EROLE), role + 1);
	assert_int_equal(asked(PROTO_DICT_STORE, 0), 0);
	assert_int_equal(acks(&pi2), 0);
	assert_int_equal(dev.epoch, 0);
}

/* One link per bad ring: each is dropped at its bad message, and nothing is stored. */
static void test_bad_rings(void **state)
{
	enum { N_BAD = 15 };
	struct ring *r = &ring_a;
	struct tag *t[N_BAD];
	size_t per = per_msg(&ctl1);
	EVP_PKEY *pub = X509_get0_pubkey(pi1_x);

	(void)state;
	ring_make(r, 9, per + 4, 3, 4);
	for (int c = 0; c < N_BAD; c++) {
		struct lan_link *l = LINK(&ctl1, "pi1", &t[c]);
		json_t *body, *more;

		assert_int_equal(envelope_new_id(r->id), 0);
		switch (c) {
		case 0: /* an end without a ring */
			send_end(l, r);
			break;
		case 1: /* an end that counts one key more */
			send_pieces(&ctl1, l, r, 0, r->n, pub);
			send_body(l, RING_MSG_RING_END, r->id,
				  end_body(r, r->epoch, (uint32_t)r->n + 1, r->pool));
			break;
		case 2: /* a pool that does not hold the last index */
			send_pieces(&ctl1, l, r, 0, r->n, pub);
			send_body(l, RING_MSG_RING_END, r->id,
				  end_body(r, r->epoch, (uint32_t)r->n, r->index[r->n - 1]));
			break;
		case 3: /* an end of another epoch */
			send_pieces(&ctl1, l, r, 0, r->n, pub);
			send_body(l, RING_MSG_RING_END, r->id,
				  end_body(r, r->epoch + 1, (uint32_t)r->n, r->pool));
			break;
		case 4: /* pieces given again: indices going back */
			send_pieces(&ctl1, l, r, 0, per, pub);
			send_pieces(&ctl1, l, r, 0, per, pub);
			break;
		case 5: { /* a second piece of another epoch */
			struct ring *r2 = &ring_b;

			memcpy(r2, r, sizeof(*r2));
			r2->epoch++;
			send_pieces(&ctl1, l, r, 0, per, pub);
			send_pieces(&ctl1, l, r2, per, r->n, pub);
			break;
		}
		case 6: /* keys wrapped to another device's key */
			send_pieces(&ctl1, l, r, 0, r->n, X509_get0_pubkey(pi2_x));
			break;
		case 7: /* indices descending within a piece */
			body = piece_body(r, 1, 1, pub);
			more = piece_body(r, 0, 1, pub);
			json_array_extend(json_object_get(body, "keys"),
					  json_object_get(more, "keys"));
			json_decref(more);
			send_body(l, RING_MSG_RING_KEYS, r->id, body);
			break;
		case 8: /* a field too many */
			body = piece_body(r, 0, per, pub);
			json_object_set_new(body, "pool", json_integer(r->pool));
			send_body(l, RING_MSG_RING_KEYS, r->id, body);
			break;
		case 9: /* epoch 0 */
			body = piece_body(r, 0, per, pub);
			json_object_set_new(body, "epoch", json_integer(0));
			send_body(l, RING_MSG_RING_KEYS, r->id, body);
			break;
		case 10: /* an end with a field too many */
			send_pieces(&ctl1, l, r, 0, r->n, pub);
			body = end_body(r, r->epoch, (uint32_t)r->n, r->pool);
			json_object_set_new(body, "keys", json_array());
			send_body(l, RING_MSG_RING_END, r->id, body);
			break;
		case 11: /* an end without its group root */
			send_pieces(&ctl1, l, r, 0, r->n, pub);
			body = end_body(r, r->epoch, (uint32_t)r->n, r->pool);
			json_object_del(body, "group");
			send_body(l, RING_MSG_RING_END, r->id, body);
			break;
		case 12: /* a group stream from epoch 0 */
			send_pieces(&ctl1, l, r, 0, r->n, pub);
			body = end_body(r, r->epoch, (uint32_t)r->n, r->pool);
			json_object_set_new(body, "start", json_integer(0));
			send_body(l, RING_MSG_RING_END, r->id, body);
			break;
		case 13: /* a group root wrapped to another device */
			send_pieces(&ctl1, l, r, 0, r->n, pub);
			body = end_body(r, r->epoch, (uint32_t)r->n, r->pool);
			more = NULL;
			assert_int_equal(ring_end_build(
					     &(struct ring_end){
						 r->epoch, (uint32_t)r->n, r->pool, r->start, {1}},
					     X509_get0_pubkey(pi2_x), &more),
					 0);
			json_object_set(body, "group", json_object_get(more, "group"));
			json_decref(more);
			send_body(l, RING_MSG_RING_END, r->id, body);
			break;
		case 14: { /* a group root in the clear */
			char *clear = b64_encode(r->group, CRYPTO_KEY_LEN);

			send_pieces(&ctl1, l, r, 0, r->n, pub);
			body = end_body(r, r->epoch, (uint32_t)r->n, r->pool);
			json_object_set_new(body, "group", json_string(clear));
			free(clear);
			send_body(l, RING_MSG_RING_END, r->id, body);
			break;
		}
		}
		loop_until(e, t[c]->gone);
	}
	assert_int_equal(asked(PROTO_DICT_STORE, 0), 0);
	assert_int_equal(acks(&ctl1), 0);
	assert_int_equal(dev.epoch, 0);
	assert_int_equal(dev.n_index, 0);
	/* The ring itself, whole and right, is taken. */
	assert_int_equal(envelope_new_id(r->id), 0);
	deliver(&ctl1, r);
}

/* A path key of another epoch than ours is refused; so is one before we have any ring. */
static void test_path_key_other_epoch(void **state)
{
	static const uint32_t epochs[] = {6, 4, 1, 7};
	struct ring *r = &ring_a;
	struct lan_link *l;
	struct tag *t;
	json_t *body = NULL;
	unsigned long stale = refused(-IOTSEC_EEPOCH);

	(void)state;
	/* No ring yet. */
	l = LINK(&ctl1, "pi1", &t);
	assert_int_equal(ring_path_key_build(&(struct ring_path_key){1, "pi2", {9}},
					     X509_get0_pubkey(pi1_x), &body),
			 0);
	send_body(l, RING_MSG_PATH_KEY, "p0", body);
	loop_until(e, t->gone);

	ring_make(r, 5, 6, 0, 3);
	deliver(&ctl1, r);
	for (size_t i = 0; i < sizeof(epochs) / sizeof(epochs[0]); i++) {
		l = LINK(&ctl1, "pi1", &t);
		assert_int_equal(ring_path_key_build(&(struct ring_path_key){epochs[i], "pi2", {9}},
						     X509_get0_pubkey(pi1_x), &body),
				 0);
		send_body(l, RING_MSG_PATH_KEY, "p1", body);
		loop_until(e, t->gone);
	}
	assert_int_equal(refused(-IOTSEC_EEPOCH), stale + 5);
	assert_int_equal(asked(PROTO_DICT_STORE, 0), 1); /* the ring's only */
	assert_false(keyd_has_path(&dev, "pi2"));
}

/* A path key of our epoch goes to dictd under the peer's name, and keyd knows it has one. */
static void test_path_key_stored(void **state)
{
	struct ring *r = &ring_a;
	struct ring_path_key p = {.epoch = 5, .peer = "pi2"};
	struct lan_link *l;
	struct tag *t;
	json_t *body = NULL, *store;
	uint32_t zero = KEYD_PATH_INDEX;
	size_t from;

	(void)state;
	ring_make(r, 5, 6, 0, 3);
	deliver(&ctl1, r);
	from = json_array_size(relayed.log);
	key_of(77, 77, p.key);
	l = LINK(&ctl1, "pi1", &t);
	assert_int_equal(ring_path_key_build(&p, X509_get0_pubkey(pi1_x), &body), 0);
	send_body(l, RING_MSG_PATH_KEY, r->id, body);
	loop_until(e, keyd_has_path(&dev, "pi2"));

	assert_int_equal(asked(PROTO_DICT_STORE, from), 1);
	store = json_object_get(asked_at(PROTO_DICT_STORE, from, 0), "req");
	assert_int_equal(json_array_size(json_object_get(store, "records")), 1);
	store = json_array_get(json_object_get(store, "records"), 0);
	assert_string_equal(json_string_value(json_object_get(store, "name")), "pi2");
	assert_int_equal(json_integer_value(json_object_get(store, "index")), KEYD_PATH_INDEX);
	assert_int_equal(json_integer_value(json_object_get(store, "epoch")), 5);
	expect_in_dictd("pi2", &zero, 1, (const uint8_t(*)[CRYPTO_KEY_LEN])p.key);
	assert_false(keyd_has_path(&dev, "pi3"));
	expect_ring(r); /* the ring is as it was */
	if (!t->gone)
		lan_link_close(l);
	crypto_wipe(&p, sizeof(p));
}

/* A path key that names keyd's own ring record is refused: stored, it would take the place of
 * the ring's key at index 0. */
static void test_path_key_cannot_shadow_ring(void **state)
{
	struct ring *r = &ring_a;
	struct ring_path_key p = {.epoch = 5, .peer = KEYD_RING_RECORD};
	struct lan_link *l;
	struct tag *t;
	json_t *body = NULL;
	uint32_t zero = 0;
	size_t from;

	(void)state;
	ring_make(r, 5, 6, 0, 3); /* index 0 is in the ring */
	deliver(&ctl1, r);
	from = json_array_size(relayed.log);
	key_of(66, 66, p.key);
	l = LINK(&ctl1, "pi1", &t);
	assert_int_equal(ring_path_key_build(&p, X509_get0_pubkey(pi1_x), &body), 0);
	send_body(l, RING_MSG_PATH_KEY, r->id, body);
	loop_until(e, t->gone || keyd_has_path(&dev, KEYD_RING_RECORD));
	expect_in_dictd(KEYD_RING_RECORD, &zero, 1, (const uint8_t(*)[CRYPTO_KEY_LEN])r->key);
	assert_int_equal(asked(PROTO_DICT_STORE, from), 0);
	assert_false(keyd_has_path(&dev, KEYD_RING_RECORD));
	assert_true(t->gone);
}

/* A ring whose pieces came while the device was at epoch 7 must not be taken once a ring of
 * epoch 9 is stored: at its end it is below the device's epoch, and taking it would cancel the
 * newer ring in dictd and move the epoch back. */
static void test_stale_end_after_newer_ring(void **state)
{
	struct ring *r7 = &ring_a;
	struct ring *r8 = &ring_b;
	struct ring *r9 = &ring_c;
	struct lan_link *l8;
	struct tag *t8;
	unsigned long stale;
	size_t from;

	(void)state;
	ring_make(r7, 7, 5, 0, 2);
	ring_make(r8, 8, 5, 1, 2);
	ring_make(r9, 9, 5, 2, 2);
	deliver(&ctl1, r7);

	stale = refused(-IOTSEC_EEPOCH);
	l8 = LINK(&ctl1, "pi1", &t8);
	send_pieces(&ctl1, l8, r8, 0, r8->n, X509_get0_pubkey(pi1_x));
	loop_for(e, 200); /* its pieces are taken now, at epoch 7 */
	deliver(&ctl1, r9);
	loop_for(e, 50);
	/* Still open: its pieces were taken before epoch 9 (after it they are refused). */
	assert_false(t8->gone);
	assert_int_equal(refused(-IOTSEC_EEPOCH), stale);

	from = json_array_size(relayed.log);
	send_end(l8, r8);
	loop_until(e, t8->gone || (ack_of(&ctl1, r8->id) != NULL && dev.storing == NULL));
	expect_ring(r9);
	expect_in_dictd(KEYD_RING_RECORD, r9->index, r9->n,
			(const uint8_t(*)[CRYPTO_KEY_LEN])r9->key);
	/* One group root, the newest pool's: the one before went with its epoch. */
	expect_in_dictd(KEYD_GROUP_RECORD, &r9->start, 1,
			(const uint8_t(*)[CRYPTO_KEY_LEN])r9->group);
	expect_not_in_dictd(KEYD_GROUP_RECORD, r7->start);
	expect_not_in_dictd(KEYD_GROUP_RECORD, r8->start);
	assert_int_equal(asked(PROTO_DICT_STORE, from), 0);
	assert_null(ack_of(&ctl1, r8->id));
}

/* Restart the device on the state file it has (or the one a case wrote): 0, or keyd_start()'s
 * error. */
static int restart(void)
{
	int r;

	keyd_stop(&dev);
	memset(&dev, 0, sizeof(dev));
	if ((r = keyd_start(&dev, &kcfg, e)) < 0)
		return r;
	loop_until(e, dev.in_home);
	snprintf(dev.controller, sizeof(dev.controller), "ctl1");
	return 0;
}

/* The group stream's e0 survives a restart (keyd.state); a state file from before the group
 * root loads, but its ring, which has no root beside it, is asked for again; a damaged e0 is an
 * error, not a ring without a root. */
static void test_group_start_kept(void **state)
{
	static const char *const damaged[] = {"-1", "\"5017\"", "4294967296", "5017.0", "null"};
	struct ring *r = &ring_a;
	char path[PATH_MAX + 32], *text = NULL, *old = NULL;
	size_t len;
	json_t *o;

	(void)state;
	snprintf(path, sizeof(path), "%s/keyd/%s", keyd_state, KEYD_STATE_FILE);
	ring_make(r, 5, 6, 3, 9);
	deliver(&ctl1, r);
	assert_int_equal(restart(), 0);
	loop_until(e, dev.ring_checked);
	expect_ring(r);

	/* The same file without "group_start", as a keyd before the group root wrote it. */
	assert_int_equal(file_read(path, 1 << 16, &text, &len), 0);
	assert_non_null(o = json_loads(text, 0, NULL));
	assert_int_equal(json_object_del(o, "group_start"), 0);
	assert_non_null(old = json_dumps(o, JSON_COMPACT));
	json_decref(o);
	assert_int_equal(file_write_atomic(path, old, strlen(old), 0600), 0);
	assert_int_equal(restart(), 0);
	assert_int_equal(dev.epoch, 5);
	assert_int_equal(dev.n_index, r->n);
	assert_int_equal(dev.group_start, 0);
	loop_until(e, dev.ring_checked);
	/* Announced as none: the controller gives a ring (and a root) again. */
	assert_int_equal(dev.n_index, 0);
	assert_int_equal(dev.group_start, 0);
	ring_make(r, 6, 6, 3, 9);
	deliver(&ctl1, r);

	for (size_t i = 0; i < sizeof(damaged) / sizeof(damaged[0]); i++) {
		char *bad = NULL;

		assert_true(asprintf(&bad, "%.*s,\"group_start\":%s}", (int)(strlen(old) - 1), old,
				     damaged[i]) > 0);
		assert_int_equal(file_write_atomic(path, bad, strlen(bad), 0600), 0);
		free(bad);
		if (restart() >= 0)
			fail_msg("a state file with group_start %s was taken", damaged[i]);
	}
	free(text);
	free(old);
	unlink(path);
	assert_int_equal(restart(), 0); /* for the teardown */
}

/* ---- the group ---- */

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

static int group_setup(void **state)
{
	char path[PATH_MAX + 32];

	(void)state;
	if (fixture_home(&fx) < 0 || mkdtemp(root) == NULL)
		return -1;
	snprintf(keyd_run, sizeof(keyd_run), "%s/run-keyd", root);
	snprintf(dictd_run, sizeof(dictd_run), "%s/run-dictd", root);
	snprintf(keyd_state, sizeof(keyd_state), "%s/keyd-state", root);
	if (mkdir(keyd_run, 0755) < 0 || mkdir(dictd_run, 0755) < 0 || mkdir(keyd_state, 0700) < 0)
		return -1;
	/* Each daemon's own directories, as daemon_setup() makes them. */
	const char *const own[][2] = {
	    {keyd_run, "certd"}, {keyd_run, "dictd"}, {dictd_run, "certd"}, {keyd_state, "keyd"}};
	for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", own[i][0], own[i][1]);
		if (mkdir(path, 0755) < 0)
			return -1;
	}
	log_set_level(LOG_WARNING);
	pi1_x = fixture_cert(&fx, "pi1");
	pi2_x = fixture_cert(&fx, "pi2");
	if ((relayed.log = json_array()) == NULL || sd_event_new(&e) < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/certd/certd.sock", keyd_run);
	if (ctl_server_new(e, path, certd_verbs, NULL, &certd_keyd) < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/certd/certd.sock", dictd_run);
	if (ctl_server_new(e, path, certd_verbs, NULL, &certd_dictd) < 0)
		return -1;
	if (dictd_start() < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/dictd/dictd.sock", keyd_run);
	return ctl_server_new(e, path, relay_verbs, NULL, &relay) < 0 ? -1 : 0;
}

static int group_teardown(void **state)
{
	int r;

	(void)state;
	r = dictd_stop();
	ctl_server_free(relay);
	ctl_server_free(certd_keyd);
	ctl_server_free(certd_dictd);
	sd_event_unref(e);
	json_decref(relayed.log);
	X509_free(pi1_x);
	X509_free(pi2_x);
	fixture_remove(&fx);
	nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return r;
}

#define CASE(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    CASE(test_ring_stored),
	    CASE(test_ring_not_stored),
	    CASE(test_lower_epoch_refused),
	    CASE(test_first_ring_far_ahead),
	    CASE(test_other_delivery_drops_link),
	    CASE(test_replay_to_other_device),
	    CASE(test_not_the_controller),
	    CASE(test_node_cannot_give_rings),
	    CASE(test_bad_rings),
	    CASE(test_path_key_other_epoch),
	    CASE(test_path_key_stored),
	    CASE(test_path_key_cannot_shadow_ring),
	    CASE(test_stale_end_after_newer_ring),
	    CASE(test_group_start_kept),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
