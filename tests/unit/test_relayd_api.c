/* The relay's doctors' API (daemons/relayd/api.c, http.c): relayd_api() called directly on a
 * relay started as the daemon starts it (relayd_start(): relay1's certificate of the test home, a
 * real SQLite store in a fresh directory), with envelopes sealed by real doctor certificates.
 * No broker listens, so a grant or an acknowledgement passed on to the home's broker is a 503
 * (the doctor is told to try again) after the grant is filed.
 *
 * Logins: a challenge is one use and a minute; a login needs a doctor certificate of the home,
 * its signature, an outstanding nonce and us as the recipient, and each refusal is counted by
 * cause. Tokens: missing, malformed, unknown, expired and revoked are 401. Grants and acks: the
 * logged-in doctor's envelopes only, strict bodies, a stream kept by its first doctor (409).
 * Fetch: emergencies first, "more", expired rows; delivered marks only the caller's; history of
 * another doctor's stream is 403. Then the HTTPS port itself, through curl on a real socket: the
 * page's files with their headers, path traversal and symbolic links out refused, oversized
 * bodies 413, and a login. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <limits.h>
#include <setjmp.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "api.h"
#include "ca.h"
#include "clock.h"
#include "crypto.h"
#include "doctor.h"
#include "encoding.h"
#include "file.h"
#include "log.h"
#include "mqtt.h"
#include "relayd.h"

#include "fixture.h"
#include "tmpdir.h"

extern char **environ;

static struct fixture fx;

/* What doctors (and the rogues posing as them) seal. */
static const struct envelope_rule sender_rules[] = {
    {RELAY_MSG_LOGIN, CERT_ROLES_ALL, true, false},
    {DOCTOR_MSG_GRANT, CERT_ROLES_ALL, true, true},
    {DOCTOR_MSG_ACK, CERT_ROLES_ALL, true, true},
    {NULL, 0, false, false},
};

struct ctx {
	struct tmp *t;
	struct iotsec_config cfg;
	sd_event *loop;
	struct relayd d;
	struct cert_store *ca; /* the senders' */
	int port;	       /* HTTPS, 0: none */
};

static const uint8_t stream_a[STREAM_ID_LEN] = {0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa,
						0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa};
static const uint8_t stream_b[STREAM_ID_LEN] = {0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb,
						0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb};
#define HEX_A	"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define HEX_B	"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define HEX_C	"cccccccccccccccccccccccccccccccc"
#define WRAPPED "d3JhcHBlZCB0byB0aGUgZG9jdG9y" /* what the relay keeps as it comes */

static int group_setup(void **state)
{
	(void)state;
	return fixture_home(&fx) < 0 ? -1 : 0;
}

static int group_teardown(void **state)
{
	(void)state;
	fixture_remove(&fx);
	return 0;
}

/* A port nobody listens on now. */
static int free_port(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	close(fd);
	return ntohs(sa.sin_port);
}

static int setup_port(void **state, bool https)
{
	struct ctx *c = calloc(1, sizeof(*c));
	char *text = NULL, err[256];
	void *t = NULL;

	assert_non_null(c);
	assert_int_equal(tmp_setup(&t, "relayd-api"), 0);
	c->t = t;
	c->port = https ? free_port() : 0;
	/* The broker's port is one nobody listens on: relayd_forward() says -ENOTCONN. */
	assert_true(
	    asprintf(&text,
		     "device = { cert = \"%s\"; key = \"%s\"; ca = \"%s\"; crl = \"%s\"; "
		     "state_dir = \"%s\"; run_dir = \"%s\"; };\n"
		     "relay = { database = \"%s/relayd/relay.db\"; broker = \"127.0.0.1\"; "
		     "broker_port = %d; broker_name = \"pi1\"; http_port = %d; "
		     "http_address = \"127.0.0.1\"; web_dir = \"%s/web\"; session_s = 60; };\n",
		     fixture_path(&fx, "relay1", "crt"), fixture_path(&fx, "relay1", "key"),
		     fx.ca_crt, fx.crl, c->t->dir, c->t->dir, c->t->dir, free_port(), c->port,
		     c->t->dir) > 0);
	if (config_load_string(text, "relayd-api.conf", &c->cfg, err, sizeof(err)) < 0)
		fail_msg("configuration refused: %s", err);
	free(text);
	assert_int_equal(mkdir(tmp_at(c->t, "web"), 0755), 0);
	assert_int_equal(sd_event_new(&c->loop), 0);
	assert_int_equal(relayd_start(&c->d, &c->cfg, c->loop), 0);
	assert_int_equal(cert_store_load(fx.ca_crt, fx.crl, &c->ca), 0);
	*state = c;
	return 0;
}

static int setup(void **state)
{
	return setup_port(state, false);
}

static int teardown(void **state)
{
	struct ctx *c = *state;
	void *t = c->t;

	relayd_stop(&c->d);
	sd_event_unref(c->loop);
	cert_store_free(c->ca);
	config_free(&c->cfg);
	free(c);
	return tmp_teardown(&t);
}

/* ---- calls ---- */

/* One call; an error answer is {"error":text}. *ret (may be NULL) gets the answer. */
static int call_len(struct ctx *c, const char *method, const char *path, const char *query,
		    const char *auth, const char *body, size_t len, json_t **ret)
{
	json_t *o = NULL;
	int status = 0;

	relayd_api(&c->d, method, path, query, auth, body ? body : "", len, &status, &o);
	assert_non_null(o);
	if (status >= 400) {
		assert_true(json_is_string(json_object_get(o, "error")));
		assert_int_equal(json_object_size(o), 1);
	}
	if (ret)
		*ret = o;
	else
		json_decref(o);
	return status;
}

static int call(struct ctx *c, const char *method, const char *path, const char *query,
		const char *auth, const char *body, json_t **ret)
{
	return call_len(c, method, path, query, auth, body, body ? strlen(body) : 0, ret);
}

#define GET(c, path, query, auth, ret) call((c), "GET", (path), (query), (auth), NULL, (ret))
#define POST(c, path, auth, body, ret) call((c), "POST", (path), NULL, (auth), (body), (ret))

/* A context sealing as name (its certificate need not be valid: rogues seal too). */
static struct envelope_ctx *sender(struct ctx *c, const char *name)
{
	X509 *x = fixture_cert(&fx, name);
	EVP_PKEY *k = fixture_key(&fx, name);
	struct envelope_ctx *e = NULL;

	assert_int_equal(envelope_ctx_new(c->ca, x, k, sender_rules, 60, &e), 0);
	X509_free(x);
	EVP_PKEY_free(k);
	return e;
}

static char *seal_as(struct ctx *c, const char *name, const char *type, const char *to,
		     const char *id, json_t *body)
{
	struct envelope_ctx *e = sender(c, name);
	char *out = NULL;
	size_t len;

	assert_int_equal(envelope_seal(e, type, to, id, body, true, &out, &len), 0);
	envelope_ctx_free(e);
	return out;
}

/* A fresh challenge's nonce (malloc'd). */
static char *challenge(struct ctx *c)
{
	json_t *o;
	char *nonce;

	assert_int_equal(GET(c, "/api/challenge", NULL, NULL, &o), 200);
	assert_string_equal(json_string_value(json_object_get(o, "relay")), "relay1");
	nonce = strdup(json_string_value(json_object_get(o, "nonce")));
	assert_int_equal(strlen(nonce), RELAYD_NONCE_HEX);
	assert_int_equal(strspn(nonce, "0123456789abcdef"), RELAYD_NONCE_HEX);
	assert_int_equal(json_object_size(o), 2);
	json_decref(o);
	return nonce;
}

/* Log in as doctor: the "Bearer <token>" to send (malloc'd). */
static char *login(struct ctx *c, const char *doctor)
{
	char *nonce = challenge(c),
	     *env = seal_as(c, doctor, RELAY_MSG_LOGIN, "relay1", nonce, NULL), *auth;
	const char *token;
	json_t *o;

	assert_int_equal(POST(c, "/api/login", NULL, env, &o), 200);
	token = json_string_value(json_object_get(o, "token"));
	assert_non_null(token);
	assert_int_equal(strlen(token), RELAYD_TOKEN_HEX);
	assert_string_equal(json_string_value(json_object_get(o, "doctor")), doctor);
	assert_true(asprintf(&auth, "Bearer %s", token) > 0);
	json_decref(o);
	free(env), free(nonce);
	return auth;
}

/* A login refused with status, counted under why. */
static void refused(struct ctx *c, const char *env, int status, enum relayd_login_refusal why)
{
	uint64_t before = c->d.http ? c->d.http->login_refused[why] : 0, logins;

	logins = c->d.http ? c->d.http->logins : 0;
	assert_int_equal(POST(c, "/api/login", NULL, env, NULL), status);
	assert_int_equal(c->d.http->login_refused[why], before + 1);
	assert_int_equal(c->d.http->logins, logins);
}

/* A DOCTOR_GRANT of doctor for kit, addressed to `to` (the kit, unless testing otherwise), its
 * root really wrapped to the kit's key. */
static char *grant_envelope(struct ctx *c, const char *doctor, const char *kit, const char *to)
{
	struct doctor_grant g = {.start = 3, .issued_ms = 1700000000000};
	X509 *x = fixture_cert(&fx, kit);
	json_t *body;
	char *env;

	snprintf(g.kit, sizeof(g.kit), "%s", kit);
	memset(g.root, 0x5a, sizeof(g.root));
	assert_int_equal(doctor_grant_build(&g, X509_get0_pubkey(x), &body), 0);
	env = seal_as(c, doctor, DOCTOR_MSG_GRANT, to, "g1", body);
	json_decref(body);
	X509_free(x);
	return env;
}

/* {"envelope":env,"stream":stream,"wrapped":wrapped} */
static char *grant_body(const char *env, const char *stream, const char *wrapped)
{
	json_t *o =
	    json_pack("{s:s, s:s, s:s}", "envelope", env, "stream", stream, "wrapped", wrapped);
	char *text = json_dumps(o, JSON_COMPACT);

	json_decref(o);
	return text;
}

static char *ack_body(const char *env)
{
	json_t *o = json_pack("{s:s}", "envelope", env);
	char *text = json_dumps(o, JSON_COMPACT);

	json_decref(o);
	return text;
}

/* Grant stream (hex) to doctor (auth) for pi1: filed, then 503 for want of a broker. */
static void grant(struct ctx *c, const char *doctor, const char *auth, const char *stream)
{
	char *env = grant_envelope(c, doctor, "pi1", "pi1"),
	     *body = grant_body(env, stream, WRAPPED);
	json_t *o;

	assert_int_equal(POST(c, "/api/grant", auth, body, &o), 503);
	assert_string_equal(json_string_value(json_object_get(o, "error")),
			    "the home's broker is not reachable; try again");
	json_decref(o);
	free(body), free(env);
}

/* ---- logins ---- */

static void test_login(void **state)
{
	struct ctx *c = *state;
	char *auth = login(c, "doc1"), *other = login(c, "doc1");
	int64_t now = clock_wall_ms();
	json_t *o;

	/* Two sessions of one doctor, each its own token. */
	assert_string_not_equal(auth, other);
	assert_int_equal(GET(c, "/api/streams", NULL, auth, &o), 200);
	assert_int_equal(json_array_size(json_object_get(o, "streams")), 0);
	json_decref(o);
	assert_int_equal(GET(c, "/api/streams", NULL, other, NULL), 200);
	assert_int_equal(c->d.http->logins, 2);
	/* expires_ms: session_s (60 s) from now. */
	{
		char *nonce = challenge(c),
		     *env = seal_as(c, "doc2", RELAY_MSG_LOGIN, "relay1", nonce, NULL);
		int64_t t;

		assert_int_equal(POST(c, "/api/login", NULL, env, &o), 200);
		t = json_integer_value(json_object_get(o, "expires_ms"));
		assert_true(t >= now + 59000 && t <= now + 62000);
		assert_int_equal(json_object_size(o), 3);
		json_decref(o);
		free(env), free(nonce);
	}
	free(auth), free(other);
}

static void test_login_refused(void **state)
{
	struct ctx *c = *state;
	char *nonce, *env, *junk;
	size_t n;

	/* A node's certificate posing as a doctor. */
	nonce = challenge(c);
	env = seal_as(c, "pi1", RELAY_MSG_LOGIN, "relay1", nonce, NULL);
	refused(c, env, 401, RELAYD_LOGIN_ROLE);
	free(env), free(nonce);
	/* The relay's own kind, and a controller. */
	nonce = challenge(c);
	env = seal_as(c, "ctl1", RELAY_MSG_LOGIN, "relay1", nonce, NULL);
	refused(c, env, 401, RELAYD_LOGIN_ROLE);
	free(env), free(nonce);
	/* A doctor of another home. */
	nonce = challenge(c);
	env = seal_as(c, "doc9", RELAY_MSG_LOGIN, "relay1", nonce, NULL);
	refused(c, env, 401, RELAYD_LOGIN_CERT);
	free(env), free(nonce);
	/* A revoked doctor. */
	nonce = challenge(c);
	env = seal_as(c, "docrev", RELAY_MSG_LOGIN, "relay1", nonce, NULL);
	refused(c, env, 401, RELAYD_LOGIN_CERT);
	free(env), free(nonce);
	/* A bad signature: one base64 digit of it changed. */
	nonce = challenge(c);
	env = seal_as(c, "doc1", RELAY_MSG_LOGIN, "relay1", nonce, NULL);
	junk = strstr(env, "\"sig\":\"") + 7 + 20;
	*junk = *junk == 'A' ? 'B' : 'A';
	refused(c, env, 401, RELAYD_LOGIN_SIGNATURE);
	free(env);
	/* The nonce was not used up by the forgery: the real one logs in. */
	env = seal_as(c, "doc1", RELAY_MSG_LOGIN, "relay1", nonce, NULL);
	assert_int_equal(POST(c, "/api/login", NULL, env, NULL), 200);
	free(env);
	/* Used once: a new envelope with the same nonce is refused. */
	env = seal_as(c, "doc1", RELAY_MSG_LOGIN, "relay1", nonce, NULL);
	refused(c, env, 401, RELAYD_LOGIN_NONCE);
	free(env), free(nonce);
	/* A nonce never given. */
	env =
	    seal_as(c, "doc1", RELAY_MSG_LOGIN, "relay1", "00112233445566778899aabbccddeeff", NULL);
	refused(c, env, 401, RELAYD_LOGIN_NONCE);
	free(env);
	/* An expired one (its minute passed): made as the relay makes them (api.c), with its
	 * key, its end a millisecond ago. */
	{
		uint8_t raw[RELAYD_NONCE_HEX / 2] = {0}, mac[CRYPTO_SHA256_LEN];
		uint64_t end = clock_mono_ms() - 1;

		for (n = 0; n < 6; n++)
			raw[n] = (uint8_t)(end >> (8 * (5 - n)));
		assert_int_equal(crypto_hmac_sha256(c->d.http->challenge_key,
						    sizeof(c->d.http->challenge_key), raw, 10, mac),
				 0);
		memcpy(raw + 10, mac, 6);
		nonce = calloc(1, RELAYD_NONCE_HEX + 1);
		assert_non_null(nonce);
		hex_encode(raw, sizeof(raw), nonce);
	}
	env = seal_as(c, "doc1", RELAY_MSG_LOGIN, "relay1", nonce, NULL);
	refused(c, env, 401, RELAYD_LOGIN_NONCE);
	free(env);
	/* ... and gone from the table since. */
	env = seal_as(c, "doc1", RELAY_MSG_LOGIN, "relay1", nonce, NULL);
	refused(c, env, 401, RELAYD_LOGIN_NONCE);
	free(env), free(nonce);
	/* Addressed to another relay. */
	nonce = challenge(c);
	env = seal_as(c, "doc1", RELAY_MSG_LOGIN, "relay2", nonce, NULL);
	refused(c, env, 401, RELAYD_LOGIN_RECIPIENT);
	free(env);
	/* Stale: sealed by a clock an hour ahead. */
	clock_set_fake(time(NULL) + 3600);
	env = seal_as(c, "doc1", RELAY_MSG_LOGIN, "relay1", nonce, NULL);
	clock_set_fake(-1);
	refused(c, env, 401, RELAYD_LOGIN_STALE);
	free(env);
	/* Replayed: the same envelope twice. */
	env = seal_as(c, "doc1", RELAY_MSG_LOGIN, "relay1", nonce, NULL);
	assert_int_equal(POST(c, "/api/login", NULL, env, NULL), 200);
	refused(c, env, 401, RELAYD_LOGIN_STALE);
	free(env), free(nonce);
	/* Malformed: nothing, junk, a body where {} belongs, another type, truncated. */
	refused(c, "", 400, RELAYD_LOGIN_MALFORMED);
	refused(c, "{\"v\":2}", 400, RELAYD_LOGIN_MALFORMED);
	nonce = challenge(c);
	{
		json_t *b = json_pack("{s:i}", "x", 1);

		env = seal_as(c, "doc1", RELAY_MSG_LOGIN, "relay1", nonce, b);
		json_decref(b);
	}
	refused(c, env, 400, RELAYD_LOGIN_MALFORMED);
	free(env);
	env = seal_as(c, "doc1", DOCTOR_MSG_ACK, "relay1", nonce, NULL);
	refused(c, env, 400, RELAYD_LOGIN_MALFORMED);
	env[strlen(env) - 5] = '\0';
	refused(c, env, 400, RELAYD_LOGIN_MALFORMED);
	free(env), free(nonce);
	/* Only the two good ones became sessions. */
	assert_int_equal(c->d.http->logins, 2);
	assert_int_equal(c->d.http->login_refused[RELAYD_LOGIN_ROLE], 2);
	assert_int_equal(c->d.http->login_refused[RELAYD_LOGIN_CERT], 2);
	assert_int_equal(c->d.http->login_refused[RELAYD_LOGIN_NONCE], 4);
	assert_int_equal(c->d.http->login_refused[RELAYD_LOGIN_MALFORMED], 5);
	/* The status verb's figures. */
	{
		json_t *o = json_object(), *x;

		assert_int_equal(relayd_api_status(&c->d, o), 0);
		x = json_object_get(o, "doctors");
		assert_int_equal(json_integer_value(json_object_get(x, "logins")), 2);
		assert_int_equal(json_integer_value(
				     json_object_get(json_object_get(x, "login_refused"), "nonce")),
				 4);
		json_decref(o);
	}
}

/* Anyone may ask for challenges, as fast as the port takes them: a flood of them pushes out no
 * doctor's, which still logs in, once. */
static void test_challenges_bounded(void **state)
{
	struct ctx *c = *state;
	char *first = challenge(c), *env;

	for (size_t i = 0; i < 4 * RELAYD_NONCES_MAX; i++)
		free(challenge(c));
	env = seal_as(c, "doc1", RELAY_MSG_LOGIN, "relay1", first, NULL);
	assert_int_equal(POST(c, "/api/login", NULL, env, NULL), 200);
	free(env);
	env = seal_as(c, "doc1", RELAY_MSG_LOGIN, "relay1", first, NULL);
	refused(c, env, 401, RELAYD_LOGIN_NONCE);
	free(env), free(first);
	/* A nonce of the right form whose code is not the relay's. */
	first = challenge(c);
	first[RELAYD_NONCE_HEX - 1] = first[RELAYD_NONCE_HEX - 1] == '0' ? '1' : '0';
	env = seal_as(c, "doc1", RELAY_MSG_LOGIN, "relay1", first, NULL);
	refused(c, env, 401, RELAYD_LOGIN_NONCE);
	free(env), free(first);
}

/* One doctor's logins push out that doctor's oldest session, never another doctor's. */
static void test_sessions_bounded(void **state)
{
	struct ctx *c = *state;
	char *other = login(c, "doc2"), *first = login(c, "doc1"), *last = NULL;

	for (int i = 0; i < RELAYD_DOCTOR_SESSIONS; i++) {
		free(last);
		last = login(c, "doc1");
	}
	assert_int_equal(GET(c, "/api/streams", NULL, first, NULL), 401);
	assert_int_equal(GET(c, "/api/streams", NULL, last, NULL), 200);
	assert_int_equal(GET(c, "/api/streams", NULL, other, NULL), 200);
	free(other), free(first), free(last);
}

static void test_tokens(void **state)
{
	struct ctx *c = *state;
	char *auth = login(c, "doc1"), bad[128];
	struct relayd_session *s = NULL;

	assert_int_equal(GET(c, "/api/streams", NULL, NULL, NULL), 401);
	assert_int_equal(GET(c, "/api/streams", NULL, "", NULL), 401);
	assert_int_equal(GET(c, "/api/streams", NULL, "Bearer", NULL), 401);
	assert_int_equal(GET(c, "/api/streams", NULL, "Bearer ", NULL), 401);
	assert_int_equal(GET(c, "/api/streams", NULL, auth + 7, NULL), 401); /* no "Bearer " */
	snprintf(bad, sizeof(bad), "Basic %s", auth + 7);
	assert_int_equal(GET(c, "/api/streams", NULL, bad, NULL), 401);
	snprintf(bad, sizeof(bad), "%sa", auth); /* one digit too many */
	assert_int_equal(GET(c, "/api/streams", NULL, bad, NULL), 401);
	snprintf(bad, sizeof(bad), "%s", auth);
	bad[strlen(bad) - 1] = '\0'; /* one too few */
	assert_int_equal(GET(c, "/api/streams", NULL, bad, NULL), 401);
	snprintf(bad, sizeof(bad), "%s", auth);
	for (char *p = bad + 7; *p; p++)
		*p = (char)toupper((unsigned char)*p); /* ours are lower case */
	assert_int_equal(GET(c, "/api/streams", NULL, bad, NULL), 401);
	snprintf(bad, sizeof(bad), "%s", auth);
	bad[10] = bad[10] == '0' ? '1' : '0'; /* garbage of the right form */
	assert_int_equal(GET(c, "/api/streams", NULL, bad, NULL), 401);
	assert_int_equal(GET(c, "/api/streams", NULL, auth, NULL), 200);
	/* Expired: 401 now and after. */
	for (size_t i = 0; i < RELAYD_SESSIONS_MAX; i++)
		if (strcmp(c->d.http->sessions[i].token, auth + 7) == 0)
			s = &c->d.http->sessions[i];
	assert_non_null(s);
	s->expires_ms = clock_mono_ms() - 1;
	assert_int_equal(GET(c, "/api/streams", NULL, auth, NULL), 401);
	assert_string_equal(s->token, ""); /* the slot is wiped */
	assert_int_equal(GET(c, "/api/streams", NULL, auth, NULL), 401);
	/* Every authenticated call says so. */
	assert_int_equal(GET(c, "/api/fetch", NULL, NULL, NULL), 401);
	assert_int_equal(GET(c, "/api/history", "stream=" HEX_A, NULL, NULL), 401);
	assert_int_equal(POST(c, "/api/grant", NULL, "{}", NULL), 401);
	assert_int_equal(POST(c, "/api/ack", NULL, "{}", NULL), 401);
	assert_int_equal(POST(c, "/api/delivered", NULL, "{\"ids\":[]}", NULL), 401);
	free(auth);
	/* The doctor's certificate ends (a year from now) before the session would. */
	auth = login(c, "doc1");
	assert_int_equal(GET(c, "/api/streams", NULL, auth, NULL), 200);
	clock_set_fake(time(NULL) + 2 * 365 * 86400);
	assert_int_equal(GET(c, "/api/streams", NULL, auth, NULL), 401);
	clock_set_fake(-1);
	assert_int_equal(GET(c, "/api/streams", NULL, auth, NULL), 401);
	free(auth);
}

/* Last of its group: it revokes doc2 in the test home. */
static void test_revoked_session_ends(void **state)
{
	struct ctx *c = *state;
	char *auth = login(c, "doc2"), *other = login(c, "doc1"), *nonce, *env;

	assert_int_equal(GET(c, "/api/streams", NULL, auth, NULL), 200);
	assert_int_equal(ca_revoke(fx.ca_dir, "doc2"), 0);
	c->d.http->ca.refreshed_ms = 0; /* a second has passed, as far as the relay knows */
	assert_int_equal(GET(c, "/api/streams", NULL, auth, NULL), 401);
	assert_int_equal(GET(c, "/api/streams", NULL, auth, NULL), 401);
	/* Another doctor's session goes on. */
	assert_int_equal(GET(c, "/api/streams", NULL, other, NULL), 200);
	/* And doc2 cannot log in again. */
	nonce = challenge(c);
	env = seal_as(c, "doc2", RELAY_MSG_LOGIN, "relay1", nonce, NULL);
	refused(c, env, 401, RELAYD_LOGIN_CERT);
	free(env), free(nonce), free(auth), free(other);
}

/* ---- grants and acks ---- */

static void test_grant(void **state)
{
	struct ctx *c = *state;
	char *doc1 = login(c, "doc1"), *doc2 = login(c, "doc2");
	json_t *o, *s;

	grant(c, "doc1", doc1, HEX_A);
	assert_int_equal(GET(c, "/api/streams", NULL, doc1, &o), 200);
	assert_int_equal(json_array_size(json_object_get(o, "streams")), 1);
	s = json_array_get(json_object_get(o, "streams"), 0);
	assert_string_equal(json_string_value(json_object_get(s, "stream")), HEX_A);
	assert_int_equal(json_integer_value(json_object_get(s, "start")), 3);
	assert_string_equal(json_string_value(json_object_get(s, "wrapped")), WRAPPED);
	assert_true(json_integer_value(json_object_get(s, "granted_ms")) > 0);
	json_decref(o);
	/* The same doctor again: the grant is replaced, not refused. */
	grant(c, "doc1", doc1, HEX_A);
	/* Another doctor's claim on the stream. */
	{
		char *env = grant_envelope(c, "doc2", "pi1", "pi1"),
		     *body = grant_body(env, HEX_A, WRAPPED);

		assert_int_equal(POST(c, "/api/grant", doc2, body, NULL), 409);
		free(body), free(env);
	}
	assert_int_equal(GET(c, "/api/streams", NULL, doc2, &o), 200);
	assert_int_equal(json_array_size(json_object_get(o, "streams")), 0);
	json_decref(o);
	/* doc2's own stream. */
	grant(c, "doc2", doc2, HEX_B);
	/* An envelope of doc2's sent in doc1's session. */
	{
		char *env = grant_envelope(c, "doc2", "pi1", "pi1"),
		     *body = grant_body(env, HEX_C, WRAPPED);

		assert_int_equal(POST(c, "/api/grant", doc1, body, NULL), 403);
		free(body), free(env);
	}
	assert_int_equal(GET(c, "/api/streams", NULL, doc1, &o), 200);
	assert_int_equal(json_array_size(json_object_get(o, "streams")), 1);
	json_decref(o);
	free(doc1), free(doc2);
}

static void test_grant_malformed(void **state)
{
	struct ctx *c = *state;
	char *auth = login(c, "doc1"), *env = grant_envelope(c, "doc1", "pi1", "pi1"), *body;
	char *big = malloc(2 * STORE_WRAPPED_MAX), *b64;
	uint8_t raw[STORE_WRAPPED_MAX + 1];
	json_t *o;

	/* Not JSON, not an object, trailing junk, duplicate fields. */
	assert_int_equal(POST(c, "/api/grant", auth, "", NULL), 400);
	assert_int_equal(POST(c, "/api/grant", auth, "nonsense", NULL), 400);
	assert_int_equal(POST(c, "/api/grant", auth, "[1,2,3]", NULL), 400);
	assert_int_equal(POST(c, "/api/grant", auth, "{} {}", NULL), 400);
	assert_int_equal(POST(c, "/api/grant", auth,
			      "{\"stream\":\"" HEX_A "\",\"stream\":\"" HEX_A
			      "\",\"wrapped\":\"" WRAPPED "\"}",
			      NULL),
			 400);
	/* Missing and extra fields. */
	o = json_pack("{s:s, s:s}", "envelope", env, "stream", HEX_A);
	body = json_dumps(o, JSON_COMPACT);
	assert_int_equal(POST(c, "/api/grant", auth, body, NULL), 400);
	free(body);
	json_object_set_new(o, "wrapped", json_string(WRAPPED));
	json_object_set_new(o, "extra", json_true());
	body = json_dumps(o, JSON_COMPACT);
	assert_int_equal(POST(c, "/api/grant", auth, body, NULL), 400);
	free(body);
	json_decref(o);
	/* Wrong types. */
	o = json_pack("{s:i, s:s, s:s}", "envelope", 1, "stream", HEX_A, "wrapped", WRAPPED);
	body = json_dumps(o, JSON_COMPACT);
	assert_int_equal(POST(c, "/api/grant", auth, body, NULL), 400);
	free(body), json_decref(o);
	o = json_pack("{s:s, s:[s], s:s}", "envelope", env, "stream", HEX_A, "wrapped", WRAPPED);
	body = json_dumps(o, JSON_COMPACT);
	assert_int_equal(POST(c, "/api/grant", auth, body, NULL), 400);
	free(body), json_decref(o);
	o = json_pack("{s:s, s:s, s:n}", "envelope", env, "stream", HEX_A, "wrapped");
	body = json_dumps(o, JSON_COMPACT);
	assert_int_equal(POST(c, "/api/grant", auth, body, NULL), 400);
	free(body), json_decref(o);
	/* Bad hex: short, long, not hex. */
	const char *streams[] = {"aaaa", HEX_A "aa", "zzaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
				 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa ", ""};
	for (size_t i = 0; i < sizeof(streams) / sizeof(streams[0]); i++) {
		body = grant_body(env, streams[i], WRAPPED);
		assert_int_equal(POST(c, "/api/grant", auth, body, NULL), 400);
		free(body);
	}
	/* Wrapped: not base64, empty, oversize (STORE_WRAPPED_MAX + 1 bytes). */
	const char *wrappeds[] = {"not base64!", "", "QQ", "QQ==\n"};
	for (size_t i = 0; i < sizeof(wrappeds) / sizeof(wrappeds[0]); i++) {
		body = grant_body(env, HEX_A, wrappeds[i]);
		assert_int_equal(POST(c, "/api/grant", auth, body, NULL), 400);
		free(body);
	}
	memset(raw, 7, sizeof(raw));
	b64 = b64_encode(raw, sizeof(raw));
	body = grant_body(env, HEX_A, b64);
	assert_int_equal(POST(c, "/api/grant", auth, body, NULL), 400);
	free(body), free(b64);
	/* ... while STORE_WRAPPED_MAX bytes are fine. */
	b64 = b64_encode(raw, STORE_WRAPPED_MAX);
	body = grant_body(env, HEX_A, b64);
	assert_int_equal(POST(c, "/api/grant", auth, body, NULL), 503);
	free(body), free(b64);
	/* The envelope: junk, another type, to another kit than its body names. */
	body = grant_body("{\"v\":2}", HEX_A, WRAPPED);
	assert_int_equal(POST(c, "/api/grant", auth, body, NULL), 400);
	free(body);
	{
		json_t *b;
		char *e;

		assert_int_equal(doctor_ack_build("pi1", 5, &b), 0);
		e = seal_as(c, "doc1", DOCTOR_MSG_ACK, "pi1", "a1", b);
		json_decref(b);
		body = grant_body(e, HEX_A, WRAPPED);
		assert_int_equal(POST(c, "/api/grant", auth, body, NULL), 400);
		free(body), free(e);
		e = grant_envelope(c, "doc1", "pi1", "pi2");
		body = grant_body(e, HEX_A, WRAPPED);
		assert_int_equal(POST(c, "/api/grant", auth, body, NULL), 400);
		free(body), free(e);
		/* A grant body that is no grant body. */
		b = json_pack("{s:s, s:i}", "kit", "pi1", "start", 1);
		e = seal_as(c, "doc1", DOCTOR_MSG_GRANT, "pi1", "g2", b);
		json_decref(b);
		body = grant_body(e, HEX_A, WRAPPED);
		assert_int_equal(POST(c, "/api/grant", auth, body, NULL), 400);
		free(body), free(e);
		b = json_pack("{s:s, s:i, s:I, s:i}", "kit", "pi1", "start", 1, "issued",
			      (json_int_t)1, "root", 5);
		e = seal_as(c, "doc1", DOCTOR_MSG_GRANT, "pi1", "g3", b);
		json_decref(b);
		body = grant_body(e, HEX_A, WRAPPED);
		assert_int_equal(POST(c, "/api/grant", auth, body, NULL), 400);
		free(body), free(e);
		/* A node posing as a doctor. */
		e = grant_envelope(c, "pi2", "pi1", "pi1");
		body = grant_body(e, HEX_A, WRAPPED);
		assert_int_equal(POST(c, "/api/grant", auth, body, NULL), 403);
		free(body), free(e);
	}
	/* None of it was filed but the good one. */
	assert_int_equal(GET(c, "/api/streams", NULL, auth, &o), 200);
	assert_int_equal(json_array_size(json_object_get(o, "streams")), 1);
	json_decref(o);
	free(big), free(env), free(auth);
}

static void test_ack(void **state)
{
	struct ctx *c = *state;
	char *auth = login(c, "doc1"), *env, *body;
	json_t *b;

	assert_int_equal(doctor_ack_build("pi1", 5, &b), 0);
	env = seal_as(c, "doc1", DOCTOR_MSG_ACK, "pi1", "a1", b);
	body = ack_body(env);
	assert_int_equal(POST(c, "/api/ack", auth, body, NULL), 503);
	free(body), free(env);
	/* Another doctor's. */
	env = seal_as(c, "doc2", DOCTOR_MSG_ACK, "pi1", "a1", b);
	body = ack_body(env);
	assert_int_equal(POST(c, "/api/ack", auth, body, NULL), 403);
	free(body), free(env);
	/* Addressed to another kit than its body names. */
	env = seal_as(c, "doc1", DOCTOR_MSG_ACK, "pi2", "a1", b);
	body = ack_body(env);
	assert_int_equal(POST(c, "/api/ack", auth, body, NULL), 400);
	free(body), free(env);
	json_decref(b);
	/* A body that is no ack body. */
	b = json_pack("{s:s, s:i}", "kit", "pi1", "seq", 0);
	env = seal_as(c, "doc1", DOCTOR_MSG_ACK, "pi1", "a1", b);
	body = ack_body(env);
	assert_int_equal(POST(c, "/api/ack", auth, body, NULL), 400);
	free(body), free(env);
	json_decref(b);
	/* A grant where an ack belongs. */
	env = grant_envelope(c, "doc1", "pi1", "pi1");
	body = ack_body(env);
	assert_int_equal(POST(c, "/api/ack", auth, body, NULL), 400);
	free(body);
	/* Strict bodies. */
	assert_int_equal(POST(c, "/api/ack", auth, "{}", NULL), 400);
	assert_int_equal(POST(c, "/api/ack", auth, "{\"envelope\":1}", NULL), 400);
	assert_int_equal(POST(c, "/api/ack", auth, "{\"envelope\":\"x\",\"more\":1}", NULL), 400);
	assert_int_equal(POST(c, "/api/ack", auth, "{\"envelope\":\"a\\u0000b\"}", NULL), 400);
	free(env), free(auth);
}

/* ---- the queue ---- */

static void put(struct ctx *c, const uint8_t *stream, uint64_t seq, bool emergency)
{
	char data[32];
	struct store_reading r = {.seq = seq, .emergency = emergency, .received_ms = 1000 + seq};
	size_t n;

	snprintf(data, sizeof(data), "sealed %02x %llu", stream[0], (unsigned long long)seq);
	memcpy(r.stream, stream, STREAM_ID_LEN);
	r.data = (const uint8_t *)data;
	r.len = strlen(data);
	assert_int_equal(store_insert(c->d.store, &r, 1, &n), 0);
	assert_int_equal(n, 1);
}

/* The answer's readings as "streambyte:seq" words, and their ids. */
static void readings_of(json_t *o, char *out, size_t outlen, int64_t *ids)
{
	json_t *list = json_object_get(o, "readings"), *r;
	size_t i;

	out[0] = '\0';
	json_array_foreach(list, i, r)
	{
		const char *hex = json_string_value(json_object_get(r, "stream"));
		uint8_t *data;
		size_t len;
		char word[64], want[32];
		unsigned long long seq =
		    (unsigned long long)json_integer_value(json_object_get(r, "seq"));

		assert_int_equal(json_object_size(r), 6);
		assert_int_equal(
		    b64_decode(json_string_value(json_object_get(r, "data")), &data, &len), 0);
		snprintf(want, sizeof(want), "sealed %.2s %llu", hex, seq);
		assert_int_equal(len, strlen(want));
		assert_memory_equal(data, want, len);
		free(data);
		assert_int_equal(json_integer_value(json_object_get(r, "received_ms")),
				 1000 + (json_int_t)seq);
		snprintf(word, sizeof(word), "%s%.2s:%llu%s", i ? " " : "", hex, seq,
			 json_is_true(json_object_get(r, "emergency")) ? "!" : "");
		strncat(out, word, outlen - strlen(out) - 1);
		if (ids)
			ids[i] = json_integer_value(json_object_get(r, "id"));
	}
}

static void test_fetch_and_delivered(void **state)
{
	struct ctx *c = *state;
	char *doc1 = login(c, "doc1"), *doc2 = login(c, "doc2"), got[512], body[256];
	int64_t ids[16], ids2[16];
	json_t *o;

	grant(c, "doc1", doc1, HEX_A);
	grant(c, "doc2", doc2, HEX_B);
	put(c, stream_a, 1, false);
	put(c, stream_b, 1, false);
	put(c, stream_a, 2, false);
	put(c, stream_a, 3, true);
	put(c, stream_a, 4, false);
	/* Emergencies first, then by seq; only the caller's streams. */
	assert_int_equal(GET(c, "/api/fetch", NULL, doc1, &o), 200);
	readings_of(o, got, sizeof(got), ids);
	assert_string_equal(got, "aa:3! aa:1 aa:2 aa:4");
	assert_false(json_is_true(json_object_get(o, "more")));
	assert_int_equal(json_array_size(json_object_get(o, "expired")), 0);
	assert_int_equal(json_object_size(o), 3);
	json_decref(o);
	/* max: two, and more wait. */
	assert_int_equal(GET(c, "/api/fetch", "max=2", doc1, &o), 200);
	readings_of(o, got, sizeof(got), NULL);
	assert_string_equal(got, "aa:3! aa:1");
	assert_true(json_is_true(json_object_get(o, "more")));
	json_decref(o);
	/* Past the cap is the cap. */
	assert_int_equal(GET(c, "/api/fetch", "max=1000000", doc1, NULL), 200);
	assert_int_equal(GET(c, "/api/fetch", "max=4", doc1, &o), 200);
	assert_false(json_is_true(json_object_get(o, "more")));
	json_decref(o);
	/* Bad queries. */
	const char *queries[] = {
	    "max=0",	   "max=-1", "max=abc", "max=",	  "max",
	    "max=1&max=2", "foo=1",  "max=1&",	"&max=1", "max=99999999999999999999999"};
	for (size_t i = 0; i < sizeof(queries) / sizeof(queries[0]); i++)
		assert_int_equal(GET(c, "/api/fetch", queries[i], doc1, NULL), 400);
	/* doc2 marks doc1's readings: nothing happens to them. */
	assert_int_equal(GET(c, "/api/fetch", NULL, doc2, &o), 200);
	readings_of(o, got, sizeof(got), ids2);
	assert_string_equal(got, "bb:1");
	json_decref(o);
	snprintf(body, sizeof(body), "{\"ids\":[%lld,%lld]}", (long long)ids[0], (long long)ids[1]);
	assert_int_equal(POST(c, "/api/delivered", doc2, body, &o), 200);
	assert_int_equal(json_integer_value(json_object_get(o, "marked")), 0);
	json_decref(o);
	/* doc1 marks its first two and doc2's one: two marked. */
	snprintf(body, sizeof(body), "{\"ids\":[%lld,%lld,%lld]}", (long long)ids[0],
		 (long long)ids[1], (long long)ids2[0]);
	assert_int_equal(POST(c, "/api/delivered", doc1, body, &o), 200);
	assert_int_equal(json_integer_value(json_object_get(o, "marked")), 2);
	json_decref(o);
	assert_int_equal(GET(c, "/api/fetch", NULL, doc1, &o), 200);
	readings_of(o, got, sizeof(got), NULL);
	assert_string_equal(got, "aa:2 aa:4");
	json_decref(o);
	assert_int_equal(GET(c, "/api/fetch", NULL, doc2, &o), 200);
	readings_of(o, got, sizeof(got), NULL);
	assert_string_equal(got, "bb:1");
	json_decref(o);
	/* Nothing to mark is no error. */
	assert_int_equal(POST(c, "/api/delivered", doc1, "{\"ids\":[]}", &o), 200);
	assert_int_equal(json_integer_value(json_object_get(o, "marked")), 0);
	json_decref(o);
	/* Strict: integers from 1 only, a list, that field alone, at most RELAYD_FETCH_MAX. */
	const char *bodies[] = {"{\"ids\":[1.5]}",
				"{\"ids\":[\"1\"]}",
				"{\"ids\":[0]}",
				"{\"ids\":[-3]}",
				"{\"ids\":[true]}",
				"{\"ids\":[null]}",
				"{\"ids\":1}",
				"{\"ids\":[1],\"more\":[2]}",
				"{}",
				"{\"id\":[1]}",
				"[1]",
				"{\"ids\":[[1]]}",
				"{\"ids\":[1]} x",
				"{\"ids\":[1e3]}"};
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
		assert_int_equal(POST(c, "/api/delivered", doc1, bodies[i], NULL), 400);
	{
		json_t *list = json_array();
		char *text;

		for (int i = 0; i <= RELAYD_FETCH_MAX; i++)
			json_array_append_new(list, json_integer(i + 1));
		o = json_pack("{s:o}", "ids", list);
		text = json_dumps(o, JSON_COMPACT);
		assert_int_equal(POST(c, "/api/delivered", doc1, text, NULL), 400);
		json_array_remove(list, 0);
		free(text);
		text = json_dumps(o, JSON_COMPACT);
		assert_int_equal(POST(c, "/api/delivered", doc1, text, NULL), 200);
		free(text);
		json_decref(o);
	}
	free(doc1), free(doc2);
}

static void test_history_and_expired(void **state)
{
	struct ctx *c = *state;
	char *doc1 = login(c, "doc1"), *doc2 = login(c, "doc2"), got[512], body[64];
	int64_t ids[16];
	size_t removed;
	json_t *o, *e;

	grant(c, "doc1", doc1, HEX_A);
	grant(c, "doc2", doc2, HEX_B);
	for (uint64_t s = 1; s <= 5; s++)
		put(c, stream_a, s, s == 4);
	put(c, stream_b, 1, false);
	/* Delivered readings (aa:1 here) stay in the history. */
	assert_int_equal(GET(c, "/api/fetch", NULL, doc1, &o), 200);
	readings_of(o, got, sizeof(got), ids);
	assert_string_equal(got, "aa:4! aa:1 aa:2 aa:3 aa:5");
	json_decref(o);
	snprintf(body, sizeof(body), "{\"ids\":[%lld]}", (long long)ids[1]);
	assert_int_equal(POST(c, "/api/delivered", doc1, body, NULL), 200);
	assert_int_equal(GET(c, "/api/history", "stream=" HEX_A, doc1, &o), 200);
	readings_of(o, got, sizeof(got), NULL);
	assert_string_equal(got, "aa:1 aa:2 aa:3 aa:4! aa:5");
	assert_int_equal(json_object_size(o), 1);
	json_decref(o);
	assert_int_equal(GET(c, "/api/history", "stream=" HEX_A "&after=2&max=2", doc1, &o), 200);
	readings_of(o, got, sizeof(got), NULL);
	assert_string_equal(got, "aa:3 aa:4!");
	json_decref(o);
	assert_int_equal(GET(c, "/api/history", "after=4&stream=" HEX_A, doc1, &o), 200);
	readings_of(o, got, sizeof(got), NULL);
	assert_string_equal(got, "aa:5");
	json_decref(o);
	/* Another doctor's stream, and one nobody was granted. */
	assert_int_equal(GET(c, "/api/history", "stream=" HEX_B, doc1, NULL), 403);
	assert_int_equal(GET(c, "/api/history", "stream=" HEX_C, doc1, NULL), 403);
	assert_int_equal(GET(c, "/api/history", "stream=" HEX_B, doc2, NULL), 200);
	/* Bad queries. */
	const char *queries[] = {"",
				 "after=1",
				 "stream=abc",
				 "stream=" HEX_A "&stream=" HEX_A,
				 "stream=" HEX_A "&after=-1",
				 "stream=" HEX_A "&after=x",
				 "stream=" HEX_A "&max=0",
				 "stream=" HEX_A "&other=1",
				 "stream=" HEX_A "&after=1&max=2&more=3",
				 "stream=zz" HEX_A};
	for (size_t i = 0; i < sizeof(queries) / sizeof(queries[0]); i++)
		assert_int_equal(GET(c, "/api/history", queries[i], doc1, NULL), 400);
	/* Retention: a cap of 2 per stream removes aa:1..3 (one of them delivered). */
	assert_int_equal(store_expire(c->d.store, clock_wall_ms(), INT64_MAX / 2, 2, 100, &removed),
			 0);
	assert_int_equal(removed, 3);
	assert_int_equal(GET(c, "/api/fetch", NULL, doc1, &o), 200);
	readings_of(o, got, sizeof(got), NULL);
	assert_string_equal(got, "aa:4! aa:5");
	assert_int_equal(json_array_size(json_object_get(o, "expired")), 1);
	e = json_array_get(json_object_get(o, "expired"), 0);
	assert_string_equal(json_string_value(json_object_get(e, "stream")), HEX_A);
	assert_int_equal(json_integer_value(json_object_get(e, "count")), 3);
	assert_int_equal(json_integer_value(json_object_get(e, "undelivered")), 2);
	assert_int_equal(json_integer_value(json_object_get(e, "first_seq")), 1);
	assert_int_equal(json_integer_value(json_object_get(e, "last_seq")), 3);
	assert_true(json_integer_value(json_object_get(e, "at_ms")) > 0);
	assert_int_equal(json_object_size(e), 6);
	json_decref(o);
	/* doc2 sees none of doc1's. */
	assert_int_equal(GET(c, "/api/fetch", NULL, doc2, &o), 200);
	assert_int_equal(json_array_size(json_object_get(o, "expired")), 0);
	json_decref(o);
	free(doc1), free(doc2);
}

static void test_routes(void **state)
{
	struct ctx *c = *state;
	char *auth = login(c, "doc1"), *big;

	assert_int_equal(GET(c, "/api/nothing", NULL, auth, NULL), 404);
	assert_int_equal(GET(c, "/api", NULL, auth, NULL), 404);
	assert_int_equal(GET(c, "/api/", NULL, auth, NULL), 404);
	assert_int_equal(GET(c, "/api/fetch/", NULL, auth, NULL), 404);
	assert_int_equal(GET(c, "/API/FETCH", NULL, auth, NULL), 404);
	assert_int_equal(POST(c, "/api/fetch", auth, "{}", NULL), 405);
	assert_int_equal(GET(c, "/api/login", NULL, NULL, NULL), 405);
	assert_int_equal(call(c, "DELETE", "/api/streams", NULL, auth, NULL, NULL), 405);
	assert_int_equal(call(c, "PUT", "/api/grant", NULL, auth, "{}", NULL), 405);
	/* A body where none belongs, a query where none belongs. */
	assert_int_equal(call(c, "GET", "/api/streams", NULL, auth, "{}", NULL), 400);
	assert_int_equal(GET(c, "/api/challenge", "x=1", NULL, NULL), 400);
	assert_int_equal(GET(c, "/api/streams", "max=1", auth, NULL), 400);
	assert_int_equal(call(c, "POST", "/api/delivered", "max=1", auth, "{\"ids\":[]}", NULL),
			 400);
	/* Past RELAYD_BODY_MAX, before anything else is looked at. */
	assert_non_null(big = malloc(RELAYD_BODY_MAX + 1));
	memset(big, ' ', RELAYD_BODY_MAX + 1);
	assert_int_equal(
	    call_len(c, "POST", "/api/login", NULL, NULL, big, RELAYD_BODY_MAX + 1, NULL), 413);
	free(big), free(auth);
}

/* ---- HTTPS through curl ---- */

static int setup_https(void **state)
{
	return setup_port(state, true);
}

struct answer {
	int status;
	char *headers, *body;
	size_t body_len;
};

static void answer_clear(struct answer *a)
{
	free(a->headers), free(a->body);
	memset(a, 0, sizeof(*a));
}

/* Run argv (its stdout into out) while the relay's loop turns, as the daemon's would: the
 * program is a client of the relay, or of its broker. */
static void spawn_run(struct ctx *c, const char *const *argv, const char *out)
{
	int64_t end = (int64_t)time(NULL) + 30;
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int st;

	assert_int_equal(posix_spawn_file_actions_init(&fa), 0);
	assert_int_equal(
	    posix_spawn_file_actions_addopen(&fa, 1, out, O_WRONLY | O_CREAT | O_TRUNC, 0600), 0);
	assert_int_equal(posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv, environ), 0);
	posix_spawn_file_actions_destroy(&fa);
	while (waitpid(pid, &st, WNOHANG) == 0) {
		assert_true(sd_event_run(c->loop, 20000) >= 0);
		if ((int64_t)time(NULL) > end) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			fail_msg("%s did not end", argv[0]);
		}
	}
}

/* curl ARGS... https://relay1:PORT<path> */
static void curl_run(struct ctx *c, struct answer *ret, const char *path, ...)
{
	const char *argv[40];
	char url[4096], resolve[128], hdr[600], out[600], status[600];
	size_t n = 0, len;
	const char *a;
	char *text;
	va_list ap;

	snprintf(url, sizeof(url), "https://relay1:%d%s", c->port, path);
	snprintf(resolve, sizeof(resolve), "relay1:%d:127.0.0.1", c->port);
	snprintf(hdr, sizeof(hdr), "%s", tmp_at(c->t, "curl.headers"));
	snprintf(out, sizeof(out), "%s", tmp_at(c->t, "curl.body"));
	snprintf(status, sizeof(status), "%s", tmp_at(c->t, "curl.status"));
	unlink(hdr), unlink(out);
	argv[n++] = "curl";
	argv[n++] = "-sS";
	argv[n++] = "--max-time";
	argv[n++] = "20";
	argv[n++] = "--cacert";
	argv[n++] = fx.ca_crt;
	argv[n++] = "--resolve";
	argv[n++] = resolve;
	argv[n++] = "-D";
	argv[n++] = hdr;
	argv[n++] = "-o";
	argv[n++] = out;
	argv[n++] = "-w";
	argv[n++] = "%{http_code}";
	va_start(ap, path);
	while ((a = va_arg(ap, const char *)) != NULL && n < 36)
		argv[n++] = a;
	va_end(ap);
	argv[n++] = url;
	argv[n] = NULL;
	spawn_run(c, argv, status);
	assert_int_equal(file_read(status, 64, &text, &len), 0);
	ret->status = atoi(text);
	free(text);
	if (file_read(hdr, 65536, &ret->headers, &len) < 0)
		ret->headers = strdup("");
	if (file_read(out, 1 << 20, &ret->body, &ret->body_len) < 0)
		ret->body = strdup(""), ret->body_len = 0;
}

/* The header line "name: value" is in a's headers (names in any case). */
static bool has_header(const struct answer *a, const char *line)
{
	const char *p = a->headers;
	size_t n = strlen(line);

	for (; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (strncasecmp(p, line, n) == 0 && (p[n] == '\r' || p[n] == '\n'))
			return true;
	return false;
}

static void web_file(struct ctx *c, const char *rel, const char *text)
{
	assert_int_equal(file_write_atomic(tmp_at(c->t, rel), text, strlen(text), 0644), 0);
}

static void test_https(void **state)
{
	struct ctx *c = *state;
	struct answer a = {0};
	char *nonce, *env, *big, token[RELAYD_TOKEN_HEX + 32];
	json_t *o;

	web_file(c, "web/index.html", "<!doctype html><title>relay</title>\n");
	web_file(c, "web/app.js", "console.log(1);\n");
	assert_int_equal(mkdir(tmp_at(c->t, "web/lib"), 0755), 0);
	web_file(c, "web/lib/chart.css", "body{}\n");
	web_file(c, "web/.hidden", "secret\n");
	web_file(c, "secret.txt", "outside the page\n");
	assert_int_equal(symlink("../secret.txt", tmp_at(c->t, "web/out.txt")), 0);
	assert_int_equal(symlink("/etc/passwd", tmp_at(c->t, "web/passwd.txt")), 0);
	assert_int_equal(symlink("index.html", tmp_at(c->t, "web/alias.html")), 0);

	/* The page, with its headers. */
	curl_run(c, &a, "/", NULL);
	assert_int_equal(a.status, 200);
	assert_string_equal(a.body, "<!doctype html><title>relay</title>\n");
	assert_true(has_header(&a, "Content-Type: text/html; charset=utf-8"));
	assert_true(has_header(&a, "Content-Security-Policy: default-src 'self'; base-uri 'none'; "
				   "form-action 'self'; frame-ancestors 'none'"));
	assert_true(has_header(&a, "X-Content-Type-Options: nosniff"));
	assert_true(has_header(&a, "Referrer-Policy: no-referrer"));
	answer_clear(&a);
	curl_run(c, &a, "/app.js", NULL);
	assert_int_equal(a.status, 200);
	assert_true(has_header(&a, "Content-Type: text/javascript; charset=utf-8"));
	answer_clear(&a);
	curl_run(c, &a, "/lib/chart.css", NULL);
	assert_int_equal(a.status, 200);
	assert_string_equal(a.body, "body{}\n");
	assert_true(has_header(&a, "Content-Type: text/css; charset=utf-8"));
	answer_clear(&a);
	curl_run(c, &a, "/alias.html", NULL); /* a link that stays inside */
	assert_int_equal(a.status, 200);
	answer_clear(&a);
	curl_run(c, &a, "/index.html", "-I", NULL); /* HEAD: headers alone */
	assert_int_equal(a.status, 200);
	assert_true(has_header(&a, "Content-Length: 36"));
	assert_null(strstr(a.body, "<!doctype"));
	answer_clear(&a);
	/* Out of the page: traversal as sent and as escaped, links out, hidden, directories. */
	const char *outside[] = {"/../secret.txt",
				 "/%2e%2e/secret.txt",
				 "/lib/../../secret.txt",
				 "/..%2fsecret.txt",
				 "/out.txt",
				 "/passwd.txt",
				 "/.hidden",
				 "/lib",
				 "/lib/",
				 "/nothing.html",
				 "//etc/passwd",
				 "/lib/./chart.css"};
	for (size_t i = 0; i < sizeof(outside) / sizeof(outside[0]); i++) {
		curl_run(c, &a, outside[i], "--path-as-is", NULL);
		if (a.status != 404)
			fail_msg("%s: %d", outside[i], a.status);
		assert_null(strstr(a.body, "outside the page"));
		assert_null(strstr(a.body, "root:"));
		answer_clear(&a);
	}
	curl_run(c, &a, "/index.html", "-X", "DELETE", NULL);
	assert_int_equal(a.status, 405);
	answer_clear(&a);

	/* The API: JSON, never cached. */
	curl_run(c, &a, "/api/challenge", NULL);
	assert_int_equal(a.status, 200);
	assert_true(has_header(&a, "Cache-Control: no-store"));
	assert_true(has_header(&a, "Content-Type: application/json"));
	assert_true(has_header(&a, "X-Content-Type-Options: nosniff"));
	assert_non_null(o = json_loads(a.body, 0, NULL));
	nonce = strdup(json_string_value(json_object_get(o, "nonce")));
	json_decref(o);
	answer_clear(&a);
	/* A login over HTTPS, then a call with its token. */
	env = seal_as(c, "doc1", RELAY_MSG_LOGIN, "relay1", nonce, NULL);
	web_file(c, "login.json", env);
	snprintf(token, sizeof(token), "@%s", tmp_at(c->t, "login.json"));
	curl_run(c, &a, "/api/login", "--data-binary", token, NULL);
	assert_int_equal(a.status, 200);
	assert_non_null(o = json_loads(a.body, 0, NULL));
	snprintf(token, sizeof(token), "Authorization: Bearer %s",
		 json_string_value(json_object_get(o, "token")));
	json_decref(o);
	answer_clear(&a);
	curl_run(c, &a, "/api/fetch?max=10", "-H", token, NULL);
	assert_int_equal(a.status, 200);
	assert_non_null(strstr(a.body, "\"readings\":[]"));
	answer_clear(&a);
	curl_run(c, &a, "/api/fetch?max=0", "-H", token, NULL);
	assert_int_equal(a.status, 400);
	answer_clear(&a);
	curl_run(c, &a, "/api/fetch", NULL);
	assert_int_equal(a.status, 401);
	answer_clear(&a);
	curl_run(c, &a, "/api/nothing", NULL);
	assert_int_equal(a.status, 404);
	answer_clear(&a);
	/* Oversized bodies: by their length, and chunked without one. */
	assert_non_null(big = malloc(RELAYD_BODY_MAX + 1));
	memset(big, 'x', RELAYD_BODY_MAX + 1);
	assert_int_equal(
	    file_write_atomic(tmp_at(c->t, "big.json"), big, RELAYD_BODY_MAX + 1, 0644), 0);
	free(big);
	snprintf(token, sizeof(token), "@%s", tmp_at(c->t, "big.json"));
	curl_run(c, &a, "/api/login", "--data-binary", token, NULL);
	assert_int_equal(a.status, 413);
	answer_clear(&a);
	curl_run(c, &a, "/api/login", "--data-binary", token, "-H", "Transfer-Encoding: chunked",
		 NULL);
	assert_int_equal(a.status, 413);
	answer_clear(&a);
	/* A query past the bound. */
	{
		char path[2100] = "/api/fetch?max=1";

		memset(path + strlen(path), '1', 1100);
		curl_run(c, &a, path, NULL);
		assert_int_equal(a.status, 414);
		answer_clear(&a);
	}
	/* Still serving. */
	curl_run(c, &a, "/api/challenge", NULL);
	assert_int_equal(a.status, 200);
	answer_clear(&a);
	free(env), free(nonce);
}

/* ---- through a real broker ---- */

static pid_t broker = -1;

/* mosquitto on 127.0.0.1:port as pi1 (the relay's broker_name), clients of the home CA only. */
static void broker_start(struct ctx *c, int port)
{
	char conf[600];
	const char *path;
	FILE *f;
	int log;

	snprintf(conf, sizeof(conf), "%s", tmp_at(c->t, "mosquitto.conf"));
	assert_non_null(f = fopen(conf, "w"));
	fprintf(f,
		"listener %d 127.0.0.1\ncafile %s\ncertfile %s\nkeyfile %s\n"
		"require_certificate true\nuse_identity_as_username true\nallow_anonymous false\n"
		"persistence false\nlog_dest stderr\n%s",
		port, fx.ca_crt, fixture_path(&fx, "pi1", "crt"), fixture_path(&fx, "pi1", "key"),
		geteuid() == 0 ? "user root\n" : "");
	assert_int_equal(fclose(f), 0);
	path = tmp_at(c->t, "mosquitto.log");
	assert_true((log = open(path, O_WRONLY | O_CREAT | O_APPEND, 0600)) >= 0);
	broker = fork();
	assert_true(broker >= 0);
	if (broker == 0) {
		dup2(log, 1);
		dup2(log, 2);
		execlp("mosquitto", "mosquitto", "-c", conf, (char *)NULL);
		_exit(127);
	}
	close(log);
}

static int setup_broker(void **state)
{
	struct ctx *c;
	int64_t end;

	if (access("/usr/sbin/mosquitto", X_OK) != 0 && access("/usr/bin/mosquitto", X_OK) != 0) {
		print_message("mosquitto is not installed (scripts/deps.sh test): skipped\n");
		*state = NULL;
		return 0;
	}
	assert_int_equal(setup_port(state, false), 0);
	c = *state;
	broker_start(c, c->cfg.relay.broker_port);
	/* The relay connects (again, after its first try found nobody). */
	for (end = (int64_t)time(NULL) + 20; !mqtt_connected(c->d.mqtt);) {
		assert_true(sd_event_run(c->loop, 50000) >= 0);
		assert_int_equal(waitpid(broker, NULL, WNOHANG), 0);
		if ((int64_t)time(NULL) > end)
			fail_msg("the relay did not connect to mosquitto");
	}
	return 0;
}

static int teardown_broker(void **state)
{
	if (broker > 0) {
		kill(broker, SIGTERM);
		waitpid(broker, NULL, 0);
		broker = -1;
	}
	return *state ? teardown(state) : 0;
}

/* With the broker there, a grant and an ack are 200, and the grant waits retained on the
 * relay's grant topic for the kit, exactly as the doctor signed it. */
static void test_forward_through_broker(void **state)
{
	struct ctx *c = *state;
	char *auth, *env, *body, port[16], *got;
	const char *argv[32];
	size_t n = 0, len;
	json_t *o, *b;

	if (c == NULL)
		skip();
	auth = login(c, "doc1");
	env = grant_envelope(c, "doc1", "pi1", "pi1");
	body = grant_body(env, HEX_A, WRAPPED);
	assert_int_equal(POST(c, "/api/grant", auth, body, &o), 200);
	assert_string_equal(json_string_value(json_object_get(o, "stream")), HEX_A);
	assert_string_equal(json_string_value(json_object_get(o, "kit")), "pi1");
	json_decref(o);
	free(body);
	assert_int_equal(doctor_ack_build("pi1", 5, &b), 0);
	{
		char *ack = seal_as(c, "doc1", DOCTOR_MSG_ACK, "pi1", "a1", b), *ab = ack_body(ack);

		assert_int_equal(POST(c, "/api/ack", auth, ab, &o), 200);
		assert_string_equal(json_string_value(json_object_get(o, "kit")), "pi1");
		assert_int_equal(json_integer_value(json_object_get(o, "seq")), 5);
		json_decref(o);
		free(ab), free(ack);
	}
	json_decref(b);
	/* What the kit (pi2's certificate stands in for it) finds on the topic. */
	snprintf(port, sizeof(port), "%d", c->cfg.relay.broker_port);
	argv[n++] = "mosquitto_sub";
	argv[n++] = "-h";
	argv[n++] = "127.0.0.1";
	argv[n++] = "-p";
	argv[n++] = port;
	argv[n++] = "--cafile";
	argv[n++] = fx.ca_crt;
	argv[n++] = "--cert";
	argv[n++] = fixture_path(&fx, "pi2", "crt");
	argv[n++] = "--key";
	argv[n++] = fixture_path(&fx, "pi2", "key");
	argv[n++] = "--insecure"; /* the broker's certificate names pi1, not 127.0.0.1 */
	argv[n++] = "-t";
	argv[n++] = "iotsec/testhome/relay1/grant/pi1";
	argv[n++] = "-C";
	argv[n++] = "1";
	argv[n++] = "-W";
	argv[n++] = "10";
	argv[n] = NULL;
	spawn_run(c, argv, tmp_at(c->t, "sub.out"));
	assert_int_equal(file_read(tmp_at(c->t, "sub.out"), 65536, &got, &len), 0);
	assert_int_equal(len, strlen(env) + 1);
	assert_memory_equal(got, env, strlen(env));
	free(got), free(env), free(auth);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_login, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_login_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_challenges_bounded, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sessions_bounded, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tokens, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_grant, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_grant_malformed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ack, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fetch_and_delivered, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_history_and_expired, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_routes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_https, setup_https, teardown),
	    cmocka_unit_test_setup_teardown(test_forward_through_broker, setup_broker,
					    teardown_broker),
	    /* Last: it revokes doc2. */
	    cmocka_unit_test_setup_teardown(test_revoked_session_ends, setup, teardown),
	};

	log_init("test_relayd_api", LOG_WARNING);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
