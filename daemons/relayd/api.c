/* The doctors' API (relayd.h), without HTTP: challenges, logins and sessions, and the calls a
 * logged-in doctor makes on the store. Every request body is read strictly (body.h): an unknown
 * field, a wrong type or a missing field is a 400 that says which. Nothing secret (a token, a
 * nonce, a wrapped root, a stream's kit) reaches the log. */
#include "api.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "body.h"
#include "clock.h"
#include "crypto.h"
#include "daemon.h"
#include "doctor.h"
#include "encoding.h"
#include "log.h"
#include "receipt.h"
#include "relayd.h"

const struct envelope_rule relayd_rules[] = {
    {RELAY_MSG_LOGIN, CERT_ROLE_DOCTOR, true, false},
    /* Checked and passed on to the kit, which judges their age by their bodies. */
    {DOCTOR_MSG_GRANT, CERT_ROLE_DOCTOR, true, true},
    {DOCTOR_MSG_ACK, CERT_ROLE_DOCTOR, true, true},
    /* What we seal for kits (ingest.c). */
    {RECEIPT_MSG, CERT_ROLE_RELAY, true, true},
    {NULL, 0, false, false},
};

#define QUERY_MAX   256 /* characters of a query string */
#define QUERY_PARAM 3	/* parameters one call takes at most */
#define QVALUE_MAX  40	/* characters of one value */

static const char *const login_cause[RELAYD_LOGIN_REF_COUNT] = {
    [RELAYD_LOGIN_MALFORMED] = "malformed", [RELAYD_LOGIN_CERT] = "certificate",
    [RELAYD_LOGIN_ROLE] = "role",	    [RELAYD_LOGIN_SIGNATURE] = "signature",
    [RELAYD_LOGIN_STALE] = "stale",	    [RELAYD_LOGIN_RECIPIENT] = "recipient",
    [RELAYD_LOGIN_NONCE] = "nonce",
};

/* One call under way. */
struct call {
	struct relayd *d;
	struct relayd_http *h;
	const char *query;
	const void *body;
	size_t len;
	struct relayd_session *s; /* the caller's, once authenticated */
	int status;
	json_t *answer;
};

static void reply(struct call *c, int status, json_t *o)
{
	json_decref(c->answer);
	c->status = status;
	c->answer = o;
	if (o == NULL) {
		c->status = 500;
		c->answer = json_pack("{s:s}", "error", "out of memory");
	}
}

static void fail(struct call *c, int status, const char *text)
{
	reply(c, status, json_pack("{s:s}", "error", text));
}

int relayd_api_state(struct relayd *d)
{
	struct relayd_http *h;
	int r;

	if (d->http)
		return 0;
	if ((h = calloc(1, sizeof(*h))) == NULL)
		return -ENOMEM;
	if ((r = crypto_random(h->challenge_key, sizeof(h->challenge_key))) < 0) {
		free(h);
		return r;
	}
	h->web_fd = -1;
	daemon_ca_watch_start(d->ca, &h->ca);
	d->http = h;
	return 0;
}

static void session_end(struct relayd_http *h, struct relayd_session *s)
{
	X509_free(s->cert);
	crypto_wipe(s, sizeof(*s));
	h->sessions_ended++;
}

void relayd_api_clear(struct relayd_http *h)
{
	if (h == NULL)
		return;
	for (size_t i = 0; i < RELAYD_SESSIONS_MAX; i++)
		if (h->sessions[i].token[0])
			session_end(h, &h->sessions[i]);
	crypto_wipe(h->challenges, sizeof(h->challenges));
	crypto_wipe(h->challenge_key, sizeof(h->challenge_key));
}

/* ---- query strings: "name=value&...", each name known and at most once ---- */

struct query {
	const char *const *names; /* NULL-terminated, at most QUERY_PARAM */
	char values[QUERY_PARAM][QVALUE_MAX + 1];
	bool present[QUERY_PARAM];
};

static int query_parse(const char *q, struct query *ret)
{
	char copy[QUERY_MAX + 1], *save = NULL, *part;
	size_t n = 0;

	memset(ret->present, 0, sizeof(ret->present));
	if (q == NULL || q[0] == '\0')
		return 0;
	if (strnlen(q, QUERY_MAX + 1) > QUERY_MAX)
		return -EMSGSIZE;
	memcpy(copy, q, strlen(q) + 1);
	/* strtok_r would take "a&&b" for "a&b": an empty part is an error here. */
	if (copy[0] == '&' || copy[strlen(copy) - 1] == '&' || strstr(copy, "&&"))
		return -EBADMSG;
	for (part = strtok_r(copy, "&", &save); part; part = strtok_r(NULL, "&", &save)) {
		char *eq = strchr(part, '=');
		size_t i;

		if (eq == NULL || strlen(eq + 1) > QVALUE_MAX)
			return -EBADMSG;
		*eq = '\0';
		for (i = 0; ret->names[i] && strcmp(ret->names[i], part) != 0; i++)
			;
		if (ret->names[i] == NULL || ret->present[i] || ++n > QUERY_PARAM)
			return -EBADMSG;
		ret->present[i] = true;
		memcpy(ret->values[i], eq + 1, strlen(eq + 1) + 1);
	}
	return 0;
}

/* Decimal digits only (no sign, no space), lo..hi. */
static bool number(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	uint64_t v = 0;

	if (s[0] == '\0' || strlen(s) > 20)
		return false;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9' || v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return false;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

static bool stream_hex(const char *s, uint8_t out[STREAM_ID_LEN])
{
	return strlen(s) == 2 * STREAM_ID_LEN && hex_decode(s, out, STREAM_ID_LEN) == 0;
}

/* ---- request bodies ---- */

/* The body as a JSON object of exactly n fields, or a 400 said. */
static json_t *body_object(struct call *c, size_t n)
{
	json_error_t e;
	json_t *o;

	if (c->len == 0) {
		fail(c, 400, "a JSON body is needed");
		return NULL;
	}
	if ((o = json_loadb(c->body, c->len, JSON_REJECT_DUPLICATES, &e)) == NULL ||
	    !json_is_object(o)) {
		json_decref(o);
		fail(c, 400, "the body is not a JSON object");
		return NULL;
	}
	if (json_object_size(o) != n) {
		json_decref(o);
		fail(c, 400, "the body has unknown or missing fields");
		return NULL;
	}
	return o;
}

/* o[field], a string of at most max bytes without a NUL in it. */
static const char *body_text(json_t *o, const char *field, size_t max)
{
	json_t *v = json_object_get(o, field);
	const char *s = json_string_value(v);

	if (s == NULL || json_string_length(v) != strlen(s) || strlen(s) > max)
		return NULL;
	return s;
}

/* ---- answers ---- */

static int reading_add(const struct store_reading *r, void *userdata)
{
	json_t *list = userdata, *o;
	char hex[2 * STREAM_ID_LEN + 1], *data;

	hex_encode(r->stream, STREAM_ID_LEN, hex);
	if ((data = b64_encode(r->data, r->len)) == NULL)
		return -ENOMEM;
	o = json_pack("{s:I, s:s, s:I, s:b, s:I, s:s}", "id", (json_int_t)r->id, "stream", hex,
		      "seq", (json_int_t)r->seq, "emergency", r->emergency, "received_ms",
		      (json_int_t)r->received_ms, "data", data);
	free(data);
	if (o == NULL || json_array_append_new(list, o) < 0)
		return -ENOMEM;
	return 0;
}

static int expired_add(const struct store_expired *e, void *userdata)
{
	json_t *list = userdata, *o;
	char hex[2 * STREAM_ID_LEN + 1];

	hex_encode(e->stream, STREAM_ID_LEN, hex);
	o = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I}", "stream", hex, "count",
		      (json_int_t)e->count, "undelivered", (json_int_t)e->undelivered, "first_seq",
		      (json_int_t)e->first_seq, "last_seq", (json_int_t)e->last_seq, "at_ms",
		      (json_int_t)e->at_ms);
	if (o == NULL || json_array_append_new(list, o) < 0)
		return -ENOMEM;
	return 0;
}

static int grant_add(const struct store_grant *g, void *userdata)
{
	json_t *list = userdata, *o;
	char hex[2 * STREAM_ID_LEN + 1], *wrapped;

	hex_encode(g->stream, STREAM_ID_LEN, hex);
	if ((wrapped = b64_encode(g->wrapped, g->wrapped_len)) == NULL)
		return -ENOMEM;
	o = json_pack("{s:s, s:I, s:s, s:I}", "stream", hex, "start", (json_int_t)g->e0, "wrapped",
		      wrapped, "granted_ms", (json_int_t)g->granted_ms);
	free(wrapped);
	if (o == NULL || json_array_append_new(list, o) < 0)
		return -ENOMEM;
	return 0;
}

static void store_failed(struct call *c, const char *what, int r)
{
	if (r == -ENOMEM) {
		fail(c, 500, "out of memory");
		return;
	}
	log_warnx("store: %s: %s", what, iotsec_strerror(r));
	fail(c, 500, "the store failed");
}

/* ---- login ---- */

static enum relayd_login_refusal login_cause_of(int r)
{
	switch (r) {
	case -EMSGSIZE:
	case -EBADMSG:
	case -IOTSEC_ETYPE:
		return RELAYD_LOGIN_MALFORMED;
	case -IOTSEC_EROLE:
		return RELAYD_LOGIN_ROLE;
	case -IOTSEC_EBADSIG:
		return RELAYD_LOGIN_SIGNATURE;
	case -IOTSEC_ESTALE:
	case -IOTSEC_EREPLAY:
	case -ENOBUFS:
		return RELAYD_LOGIN_STALE;
	case -IOTSEC_ENOTFORUS:
		return RELAYD_LOGIN_RECIPIENT;
	case -IOTSEC_EUNASKED:
	case -ETIME:
		return RELAYD_LOGIN_NONCE;
	default: /* the certificate's codes, and who it claims to be */
		return RELAYD_LOGIN_CERT;
	}
}

/* Count a refused login, and say it the first time its reason comes. */
static void login_refused(struct call *c, const char *sender, int r)
{
	struct relayd_http *h = c->h;
	enum relayd_login_refusal why = login_cause_of(r);
	size_t i;

	h->login_refused[why]++;
	for (i = 0; i < h->n_said && h->said[i] != r; i++)
		;
	if (i == h->n_said && h->n_said < RELAYD_SAID_MAX) {
		h->said[h->n_said++] = r;
		log_warnx("refused a doctor's login%s%s (%s): %s; said once",
			  sender[0] ? " from " : "", sender, login_cause[why],
			  r == -ETIME ? "the challenge has expired" : iotsec_strerror(r));
	}
	fail(c, why == RELAYD_LOGIN_MALFORMED ? 400 : 401,
	     why == RELAYD_LOGIN_NONCE	     ? "login refused: no such challenge outstanding"
	     : why == RELAYD_LOGIN_MALFORMED ? "login refused: not a RELAY_LOGIN envelope"
					     : iotsec_strerror(r));
}

/* A challenge is its own record, so that anyone asking for them as fast as the port answers
 * pushes out no doctor's: 6 bytes of its end (clock_mono_ms(), big-endian), 4 random, and 6 of
 * HMAC-SHA256 under h->challenge_key over those ten. Only a used one is kept (h->challenges),
 * until its end, and only logins signed by a doctor of the home use one. */
#define CHALLENGE_END  6
#define CHALLENGE_RAND 4
#define CHALLENGE_CODE (RELAYD_NONCE_HEX / 2 - CHALLENGE_END - CHALLENGE_RAND)

static int challenge_code(const struct relayd_http *h, const uint8_t *raw,
			  uint8_t code[CRYPTO_SHA256_LEN])
{
	return crypto_hmac_sha256(h->challenge_key, sizeof(h->challenge_key), raw,
				  CHALLENGE_END + CHALLENGE_RAND, code);
}

static void api_challenge(struct call *c)
{
	uint8_t raw[RELAYD_NONCE_HEX / 2], code[CRYPTO_SHA256_LEN];
	char nonce[RELAYD_NONCE_HEX + 1];
	uint64_t end = clock_mono_ms() + RELAYD_CHALLENGE_MS;

	for (int i = 0; i < CHALLENGE_END; i++)
		raw[i] = (uint8_t)(end >> (8 * (CHALLENGE_END - 1 - i)));
	if (crypto_random(raw + CHALLENGE_END, CHALLENGE_RAND) < 0 ||
	    challenge_code(c->h, raw, code) < 0) {
		fail(c, 500, "no random numbers");
		return;
	}
	memcpy(raw + CHALLENGE_END + CHALLENGE_RAND, code, CHALLENGE_CODE);
	hex_encode(raw, sizeof(raw), nonce);
	reply(c, 200, json_pack("{s:s, s:s}", "relay", c->d->self.name, "nonce", nonce));
}

/* Use the challenge id: 0, -ETIME when it has expired, -IOTSEC_EUNASKED when it was never given
 * or is used. Past RELAYD_NONCES_MAX logins within a challenge's minute the used one closest to
 * its end is forgotten: only a doctor of the home could sign a login with it again, which it may
 * do with a new challenge anyway, and the envelope itself is refused as replayed. */
static int challenge_take(struct relayd_http *h, const char *id)
{
	uint8_t raw[RELAYD_NONCE_HEX / 2], code[CRYPTO_SHA256_LEN];
	struct relayd_challenge *slot = NULL;
	uint64_t now = clock_mono_ms(), end = 0;

	if (strlen(id) != RELAYD_NONCE_HEX || strspn(id, "0123456789abcdef") != RELAYD_NONCE_HEX ||
	    hex_decode(id, raw, sizeof(raw)) < 0 || challenge_code(h, raw, code) < 0 ||
	    crypto_memcmp(code, raw + CHALLENGE_END + CHALLENGE_RAND, CHALLENGE_CODE) != 0)
		return -IOTSEC_EUNASKED;
	for (int i = 0; i < CHALLENGE_END; i++)
		end = end << 8 | raw[i];
	if (end <= now)
		return -ETIME;
	for (size_t i = 0; i < RELAYD_NONCES_MAX; i++) {
		struct relayd_challenge *x = &h->challenges[i];

		if (x->nonce[0] && x->expires_ms > now &&
		    crypto_memcmp(x->nonce, id, RELAYD_NONCE_HEX) == 0)
			return -IOTSEC_EUNASKED;
		/* A free or ended slot, else the one closest to its end. */
		if (slot == NULL || (slot->nonce[0] && slot->expires_ms > now &&
				     (x->nonce[0] == '\0' || x->expires_ms < slot->expires_ms)))
			slot = x;
	}
	memcpy(slot->nonce, id, RELAYD_NONCE_HEX + 1);
	slot->expires_ms = end;
	return 0;
}

/* A slot for a new session of doctor: when the doctor has RELAYD_DOCTOR_SESSIONS already, the
 * doctor's own that would end first (one doctor's logins never push out another's); else a free
 * or expired one; else the one of all that would end first. */
static struct relayd_session *session_slot(struct relayd_http *h, const char *doctor)
{
	struct relayd_session *free_slot = NULL, *own = NULL, *any = NULL, *s;
	uint64_t now = clock_mono_ms();
	size_t n_own = 0;

	for (size_t i = 0; i < RELAYD_SESSIONS_MAX; i++) {
		s = &h->sessions[i];
		if (s->token[0] && s->expires_ms <= now)
			session_end(h, s);
		if (s->token[0] == '\0') {
			free_slot = free_slot ? free_slot : s;
			continue;
		}
		if (strcmp(s->doctor, doctor) == 0) {
			n_own++;
			if (own == NULL || s->expires_ms < own->expires_ms)
				own = s;
		}
		if (any == NULL || s->expires_ms < any->expires_ms)
			any = s;
	}
	if (n_own >= RELAYD_DOCTOR_SESSIONS)
		s = own;
	else if (free_slot)
		return free_slot;
	else
		s = any;
	session_end(h, s);
	return s;
}

static void api_login(struct call *c)
{
	char sender[CERT_NAME_MAX] = "";
	struct envelope_msg m = {0};
	struct relayd_session *s;
	uint8_t raw[RELAYD_TOKEN_HEX / 2];
	bool opened = false;
	int r;

	daemon_ca_refresh(c->d->ca, &c->d->http->ca, RELAYD_REFRESH_MS);
	if ((r = envelope_open(c->d->env, c->body, c->len, &m, sender)) < 0) {
		if (r == -ENOMEM)
			fail(c, 500, "out of memory");
		else
			login_refused(c, sender, r);
		goto out;
	}
	opened = true;
	if (strcmp(m.type, RELAY_MSG_LOGIN) != 0) {
		login_refused(c, sender, -IOTSEC_ETYPE);
		goto out;
	}
	/* The rules let only a doctor send it; said again here, where it matters most. */
	if (m.sender.role != CERT_ROLE_DOCTOR) {
		login_refused(c, sender, -IOTSEC_EROLE);
		goto out;
	}
	if (json_object_size(m.body) != 0) {
		login_refused(c, sender, -EBADMSG);
		goto out;
	}
	if ((r = challenge_take(c->h, m.id)) < 0) {
		login_refused(c, sender, r);
		goto out;
	}
	if ((r = crypto_random(raw, sizeof(raw))) < 0) {
		fail(c, 500, "no random numbers");
		goto out;
	}
	s = session_slot(c->h, m.sender.name);
	hex_encode(raw, sizeof(raw), s->token);
	crypto_wipe(raw, sizeof(raw));
	memcpy(s->doctor, m.sender.name, sizeof(s->doctor));
	s->cert = m.cert;
	m.cert = NULL;
	s->generation = cert_store_generation(c->d->ca);
	s->not_after = m.sender.not_after;
	s->expires_ms = clock_mono_ms() + (uint64_t)c->d->cfg->relay.session_s * 1000;
	s->expires_wall_ms = clock_wall_ms() + (int64_t)c->d->cfg->relay.session_s * 1000;
	c->h->logins++;
	log_info("doctor %s logged in", s->doctor);
	reply(c, 200,
	      json_pack("{s:s, s:s, s:I}", "token", s->token, "doctor", s->doctor, "expires_ms",
			(json_int_t)s->expires_wall_ms));
out:
	if (opened)
		envelope_msg_clear(&m);
}

/* The caller's session, from "Bearer <token>"; a 401 said otherwise. A session ends when it
 * expires, and when its doctor's certificate no longer verifies under a new CRL. */
static bool authenticate(struct call *c, const char *auth)
{
	static const char prefix[] = "Bearer ";
	struct relayd_http *h = c->h;
	struct relayd_session *found = NULL;
	const char *token;
	int r;

	if (auth == NULL) {
		fail(c, 401, "log in first: no bearer token");
		return false;
	}
	token = auth + strlen(prefix);
	if (strncmp(auth, prefix, strlen(prefix)) != 0 || strlen(token) != RELAYD_TOKEN_HEX ||
	    strspn(token, "0123456789abcdef") != RELAYD_TOKEN_HEX) {
		fail(c, 401, "malformed bearer token");
		return false;
	}
	/* Every slot compared in constant time: how far a guess matched tells nothing. */
	for (size_t i = 0; i < RELAYD_SESSIONS_MAX; i++) {
		struct relayd_session *s = &h->sessions[i];

		if (s->token[0] && crypto_memcmp(s->token, token, RELAYD_TOKEN_HEX) == 0)
			found = s;
	}
	if (found == NULL) {
		fail(c, 401, "unknown or expired token: log in again");
		return false;
	}
	if (found->expires_ms <= clock_mono_ms()) {
		session_end(h, found);
		fail(c, 401, "unknown or expired token: log in again");
		return false;
	}
	daemon_ca_refresh(c->d->ca, &c->d->http->ca, RELAYD_REFRESH_MS);
	/* A new CRL, or the certificate's end: verified again, as a login would verify it. */
	if (found->generation != cert_store_generation(c->d->ca) ||
	    clock_now() > found->not_after) {
		if ((r = cert_verify(c->d->ca, found->cert, CERT_ROLE_DOCTOR, NULL)) < 0) {
			log_warnx("session of doctor %s ended: %s", found->doctor,
				  iotsec_strerror(r));
			session_end(h, found);
			fail(c, 401, iotsec_strerror(r));
			return false;
		}
		found->generation = cert_store_generation(c->d->ca);
	}
	c->s = found;
	return true;
}

/* ---- a logged-in doctor's calls ---- */

/* Open a doctor's envelope for a kit (a grant or an acknowledgement), signed by the caller.
 * 0, or a 4xx said. */
static int doctor_envelope(struct call *c, const char *text, const char *type,
			   struct envelope_msg *m, char kit[CERT_NAME_MAX])
{
	char sender[CERT_NAME_MAX] = "";
	int r;

	if ((r = envelope_open_relayed(c->d->env, text, strlen(text), m, sender, kit)) < 0) {
		fail(c, r == -EBADMSG || r == -EMSGSIZE ? 400 : 403, iotsec_strerror(r));
		return r;
	}
	if (strcmp(m->type, type) != 0) {
		fail(c, 400,
		     strcmp(type, DOCTOR_MSG_GRANT) == 0 ? "not a DOCTOR_GRANT envelope"
							 : "not an EMERGENCY_ACK envelope");
		envelope_msg_clear(m);
		return -IOTSEC_ETYPE;
	}
	if (m->sender.role != CERT_ROLE_DOCTOR || strcmp(m->sender.name, c->s->doctor) != 0) {
		fail(c, 403, "the envelope is not the logged-in doctor's");
		envelope_msg_clear(m);
		return -IOTSEC_EIDENTITY;
	}
	return 0;
}

static void forward_failed(struct call *c, int r)
{
	if (r == -ENOTCONN) {
		fail(c, 503, "the home's broker is not reachable; try again");
		return;
	}
	log_warnx("could not forward a doctor's envelope: %s", iotsec_strerror(r));
	fail(c, 502, "could not pass the envelope on to the home's broker");
}

static void api_grant(struct call *c)
{
	struct store_grant g = {0};
	struct envelope_msg m = {0};
	const char *env, *stream, *wrapped, *root;
	char kit[CERT_NAME_MAX], body_kit[CERT_NAME_MAX];
	uint8_t *raw = NULL;
	size_t rawlen = 0;
	int64_t issued;
	bool opened = false;
	json_t *o;
	int r;

	if ((o = body_object(c, 3)) == NULL)
		return;
	if ((env = body_text(o, "envelope", ENVELOPE_MAX)) == NULL) {
		fail(c, 400, "\"envelope\": a string of at most 16384 bytes is needed");
		goto out;
	}
	if ((stream = body_text(o, "stream", 2 * STREAM_ID_LEN)) == NULL ||
	    !stream_hex(stream, g.stream)) {
		fail(c, 400, "\"stream\": 32 hex digits are needed");
		goto out;
	}
	if ((wrapped = body_text(o, "wrapped", 4 * STORE_WRAPPED_MAX)) == NULL ||
	    b64_decode(wrapped, &raw, &rawlen) < 0 || rawlen == 0 || rawlen > STORE_WRAPPED_MAX) {
		fail(c, 400, "\"wrapped\": base64 of 1 to 1024 bytes is needed");
		goto out;
	}
	if (doctor_envelope(c, env, DOCTOR_MSG_GRANT, &m, kit) < 0)
		goto out;
	opened = true;
	/* The root is wrapped to the kit's key, which we do not hold: the rest is read as
	 * doctor_grant_parse() reads it, and the kit checks the root. */
	if (!body_fields(m.body, 4) || !body_name(m.body, "kit", body_kit) ||
	    !body_u32(m.body, "start", 1, UINT32_MAX, &g.e0) ||
	    !body_int(m.body, "issued", 0, INT64_MAX, &issued) ||
	    (root = body_text(m.body, "root", ENVELOPE_MAX)) == NULL || root[0] == '\0') {
		fail(c, 400, "the envelope's body is not a DOCTOR_GRANT body");
		goto out;
	}
	if (strcmp(kit, body_kit) != 0) {
		fail(c, 400, "the envelope is addressed to another kit than its body names");
		goto out;
	}
	memcpy(g.doctor, c->s->doctor, sizeof(g.doctor));
	memcpy(g.wrapped, raw, rawlen);
	g.wrapped_len = rawlen;
	g.granted_ms = clock_wall_ms();
	if ((r = store_grant_put(c->d->store, &g)) == -EEXIST) {
		fail(c, 409, "the stream is another doctor's");
		goto out;
	} else if (r < 0) {
		store_failed(c, "grant", r);
		goto out;
	}
	if ((r = relayd_forward(c->d, "grant", kit, env, strlen(env))) < 0) {
		forward_failed(c, r);
		goto out;
	}
	reply(c, 200, json_pack("{s:s, s:s}", "stream", stream, "kit", kit));
out:
	if (opened)
		envelope_msg_clear(&m);
	free(raw);
	json_decref(o);
}

static void api_ack(struct call *c)
{
	struct envelope_msg m = {0};
	char kit[CERT_NAME_MAX], body_kit[CERT_NAME_MAX];
	const char *env;
	bool opened = false;
	uint64_t seq;
	json_t *o;
	int r;

	if ((o = body_object(c, 1)) == NULL)
		return;
	if ((env = body_text(o, "envelope", ENVELOPE_MAX)) == NULL) {
		fail(c, 400, "\"envelope\": a string of at most 16384 bytes is needed");
		goto out;
	}
	if (doctor_envelope(c, env, DOCTOR_MSG_ACK, &m, kit) < 0)
		goto out;
	opened = true;
	if (doctor_ack_parse(m.body, body_kit, &seq) < 0) {
		fail(c, 400, "the envelope's body is not an EMERGENCY_ACK body");
		goto out;
	}
	if (strcmp(kit, body_kit) != 0) {
		fail(c, 400, "the envelope is addressed to another kit than its body names");
		goto out;
	}
	if ((r = relayd_forward(c->d, "ack", kit, env, strlen(env))) < 0) {
		forward_failed(c, r);
		goto out;
	}
	reply(c, 200, json_pack("{s:s, s:I}", "kit", kit, "seq", (json_int_t)seq));
out:
	if (opened)
		envelope_msg_clear(&m);
	json_decref(o);
}

static void api_streams(struct call *c)
{
	json_t *list = json_array();
	int r;

	if (list == NULL) {
		fail(c, 500, "out of memory");
		return;
	}
	if ((r = store_grants(c->d->store, c->s->doctor, grant_add, list)) < 0) {
		json_decref(list);
		store_failed(c, "grants", r);
		return;
	}
	reply(c, 200, json_pack("{s:o}", "streams", list));
}

/* max=N of a query: 1..RELAYD_FETCH_MAX, more is taken as the most; RELAYD_FETCH_MAX when not
 * given. */
static bool query_max(struct call *c, const struct query *q, size_t i, size_t *out)
{
	uint64_t v = RELAYD_FETCH_MAX;

	if (q->present[i] && !number(q->values[i], 1, UINT64_MAX, &v)) {
		fail(c, 400, "\"max\": a number from 1 is needed");
		return false;
	}
	*out = v > RELAYD_FETCH_MAX ? RELAYD_FETCH_MAX : (size_t)v;
	return true;
}

static void api_fetch(struct call *c)
{
	static const char *const names[] = {"max", NULL};
	struct query q = {.names = names};
	json_t *readings = NULL, *expired = NULL;
	size_t max, n;
	int r;

	if (query_parse(c->query, &q) < 0) {
		fail(c, 400, "the query takes max=N alone");
		return;
	}
	if (!query_max(c, &q, 0, &max))
		return;
	if ((readings = json_array()) == NULL || (expired = json_array()) == NULL) {
		fail(c, 500, "out of memory");
		goto out;
	}
	/* One more than asked for says whether more wait. */
	if ((r = store_queue(c->d->store, c->s->doctor, max + 1, reading_add, readings)) < 0) {
		store_failed(c, "queue", r);
		goto out;
	}
	if ((n = json_array_size(readings)) > max)
		json_array_remove(readings, n - 1);
	if ((r = store_expired_of(c->d->store, c->s->doctor, expired_add, expired)) < 0) {
		store_failed(c, "expired", r);
		goto out;
	}
	reply(c, 200,
	      json_pack("{s:O, s:b, s:O}", "readings", readings, "more", n > max, "expired",
			expired));
out:
	json_decref(readings);
	json_decref(expired);
}

static void api_delivered(struct call *c)
{
	int64_t ids[RELAYD_FETCH_MAX];
	size_t n, marked = 0;
	json_t *o, *list;
	int r;

	if ((o = body_object(c, 1)) == NULL)
		return;
	list = json_object_get(o, "ids");
	if (!json_is_array(list) || (n = json_array_size(list)) > RELAYD_FETCH_MAX) {
		fail(c, 400, "\"ids\": a list of at most 1000 reading ids is needed");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		json_t *v = json_array_get(list, i);

		if (!json_is_integer(v) || json_integer_value(v) < 1) {
			fail(c, 400, "\"ids\": reading ids are integers from 1");
			goto out;
		}
		ids[i] = json_integer_value(v);
	}
	if (n > 0 && (r = store_delivered(c->d->store, c->s->doctor, ids, n, &marked)) < 0) {
		store_failed(c, "delivered", r);
		goto out;
	}
	reply(c, 200, json_pack("{s:I}", "marked", (json_int_t)marked));
out:
	json_decref(o);
}

static void api_history(struct call *c)
{
	static const char *const names[] = {"stream", "after", "max", NULL};
	struct query q = {.names = names};
	uint8_t stream[STREAM_ID_LEN];
	uint64_t after = 0;
	json_t *readings;
	size_t max;
	int r;

	if (query_parse(c->query, &q) < 0) {
		fail(c, 400, "the query takes stream=HEX, after=SEQ and max=N");
		return;
	}
	if (!q.present[0] || !stream_hex(q.values[0], stream)) {
		fail(c, 400, "\"stream\": 32 hex digits are needed");
		return;
	}
	if (q.present[1] && !number(q.values[1], 0, INT64_MAX, &after)) {
		fail(c, 400, "\"after\": a sequence number is needed");
		return;
	}
	if (!query_max(c, &q, 2, &max))
		return;
	if ((readings = json_array()) == NULL) {
		fail(c, 500, "out of memory");
		return;
	}
	r = store_history(c->d->store, c->s->doctor, stream, after, max, reading_add, readings);
	if (r == -EACCES)
		fail(c, 403, "the stream is not yours");
	else if (r < 0)
		store_failed(c, "history", r);
	else
		reply(c, 200, json_pack("{s:O}", "readings", readings));
	json_decref(readings);
}

/* ---- routing ---- */

/* What a call takes besides its path. */
enum takes {
	TAKES_NOTHING,
	TAKES_QUERY,
	TAKES_BODY,
};

static const struct route {
	const char *path, *method;
	bool auth;
	enum takes takes;
	void (*fn)(struct call *c);
} routes[] = {
    {"/api/challenge", "GET", false, TAKES_NOTHING, api_challenge},
    {"/api/login", "POST", false, TAKES_BODY, api_login},
    {"/api/grant", "POST", true, TAKES_BODY, api_grant},
    {"/api/ack", "POST", true, TAKES_BODY, api_ack},
    {"/api/streams", "GET", true, TAKES_NOTHING, api_streams},
    {"/api/fetch", "GET", true, TAKES_QUERY, api_fetch},
    {"/api/delivered", "POST", true, TAKES_BODY, api_delivered},
    {"/api/history", "GET", true, TAKES_QUERY, api_history},
};

void relayd_api(struct relayd *d, const char *method, const char *path, const char *query,
		const char *auth, const void *body, size_t len, int *ret_status, json_t **ret)
{
	struct call c = {.d = d, .query = query, .body = body, .len = len};
	const struct route *rt = NULL;
	bool path_known = false;

	if (relayd_api_state(d) < 0) {
		fail(&c, 500, "out of memory");
		goto out;
	}
	c.h = d->http;
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (strcmp(routes[i].path, path) != 0)
			continue;
		path_known = true;
		if (strcmp(routes[i].method, method) == 0)
			rt = &routes[i];
	}
	if (rt == NULL) {
		fail(&c, path_known ? 405 : 404,
		     path_known ? "method not allowed" : "no such call");
		goto out;
	}
	if (len > RELAYD_BODY_MAX) {
		fail(&c, 413, "the body is too large");
		goto out;
	}
	if (rt->takes != TAKES_BODY && len > 0) {
		fail(&c, 400, "this call takes no body");
		goto out;
	}
	if (rt->takes != TAKES_QUERY && query && query[0]) {
		fail(&c, 400, "this call takes no query");
		goto out;
	}
	if (rt->auth && !authenticate(&c, auth))
		goto out;
	rt->fn(&c);
out:
	*ret_status = c.status;
	*ret = c.answer;
}

int relayd_api_status(struct relayd *d, json_t *o)
{
	struct relayd_http *h = d->http;
	json_t *refused = json_object(), *x;
	uint64_t now = clock_mono_ms();
	size_t open = 0;

	if (refused == NULL)
		return -ENOMEM;
	for (int i = 0; i < RELAYD_LOGIN_REF_COUNT; i++)
		if (json_object_set_new(refused, login_cause[i],
					json_integer(h ? (json_int_t)h->login_refused[i] : 0)) < 0)
			goto fail;
	for (size_t i = 0; h && i < RELAYD_SESSIONS_MAX; i++)
		if (h->sessions[i].token[0] && h->sessions[i].expires_ms > now)
			open++;
	x = json_pack("{s:I, s:I, s:o, s:I, s:I}", "logins", (json_int_t)(h ? h->logins : 0),
		      "sessions", (json_int_t)open, "login_refused", refused, "requests",
		      (json_int_t)(h ? h->requests : 0), "too_large",
		      (json_int_t)(h ? h->too_large : 0));
	refused = NULL;
	if (x == NULL || json_object_set_new(o, "doctors", x) < 0)
		return -ENOMEM;
	return 0;
fail:
	json_decref(refused);
	return -ENOMEM;
}
