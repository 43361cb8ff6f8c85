#include "envelope.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "crypto.h"
#include "encoding.h"
#include "log.h"

#define ENVELOPE_VERSION 1
/* Open addressing stays short with the table at most half full. */
#define REPLAY_SLOTS (2 * ENVELOPE_REPLAY_MAX)
#define REPLAY_KEY   16

struct replay_slot {
	uint8_t key[REPLAY_KEY]; /* SHA-256(sender fingerprint || nonce), truncated */
	int64_t expiry;		 /* 0: empty */
};

struct known_cert {
	uint8_t fp[CERT_FP_LEN];
	X509 *cert;
};

struct envelope_ctx {
	struct cert_store *store;
	X509 *cert;
	EVP_PKEY *key;
	struct cert_info self;
	char *cert_b64;
	char fp_hex[2 * CERT_FP_LEN + 1];
	const struct envelope_rule *rules;
	int delta_t;

	struct replay_slot replay[REPLAY_SLOTS];
	size_t replay_count;

	struct known_cert known[ENVELOPE_CERTS_MAX];
	size_t known_next; /* round-robin victim once full */
};

int envelope_ctx_new(struct cert_store *store, X509 *own_cert, EVP_PKEY *own_key,
		     const struct envelope_rule *rules, int delta_t, struct envelope_ctx **ret)
{
	struct envelope_ctx *ctx = calloc(1, sizeof(*ctx));
	uint8_t *der = NULL;
	size_t derlen;
	int r = -ENOMEM;

	if (ctx == NULL)
		goto out;
	if ((r = cert_info_get(own_cert, &ctx->self)) < 0 ||
	    (r = cert_key_matches(own_cert, own_key)) < 0 ||
	    (r = cert_to_der(own_cert, &der, &derlen)) < 0)
		goto out;
	if ((ctx->cert_b64 = b64_encode(der, derlen)) == NULL) {
		r = -ENOMEM;
		goto out;
	}
	hex_encode(ctx->self.fp, CERT_FP_LEN, ctx->fp_hex);
	X509_up_ref(own_cert);
	EVP_PKEY_up_ref(own_key);
	ctx->cert = own_cert, ctx->key = own_key;
	ctx->store = store, ctx->rules = rules, ctx->delta_t = delta_t;
	*ret = ctx;
	ctx = NULL;
	r = 0;
out:
	OPENSSL_free(der);
	envelope_ctx_free(ctx);
	return r;
}

void envelope_ctx_free(struct envelope_ctx *ctx)
{
	if (ctx == NULL)
		return;
	for (size_t i = 0; i < ENVELOPE_CERTS_MAX; i++)
		X509_free(ctx->known[i].cert);
	X509_free(ctx->cert);
	EVP_PKEY_free(ctx->key);
	free(ctx->cert_b64);
	free(ctx);
}

int envelope_seal(struct envelope_ctx *ctx, const char *type, json_t *body, bool with_cert,
		  char **ret, size_t *ret_len)
{
	uint8_t nonce[ENVELOPE_NONCE_LEN], *sig = NULL;
	char *nonce_b64 = NULL, *text = NULL, *msg_b64 = NULL, *sig_b64 = NULL, *out = NULL;
	json_t *inner = NULL, *outer = NULL;
	size_t siglen, len;
	int r;

	if (strlen(type) == 0 || strlen(type) >= ENVELOPE_TYPE_MAX)
		return -EINVAL;
	if ((r = crypto_random(nonce, sizeof(nonce))) < 0)
		return r;
	r = -ENOMEM;
	if ((nonce_b64 = b64_encode(nonce, sizeof(nonce))) == NULL)
		goto out;
	inner = json_pack("{s:s, s:s, s:s, s:I, s:s, s:o}", "type", type, "from", ctx->self.name,
			  "home", ctx->self.home, "ts", (json_int_t)clock_now(), "nonce", nonce_b64,
			  "body", body ? json_incref(body) : json_object());
	if (inner == NULL || (text = json_dumps(inner, JSON_COMPACT)) == NULL)
		goto out;
	if ((r = crypto_sign(ctx->key, text, strlen(text), &sig, &siglen)) < 0)
		goto out;
	r = -ENOMEM;
	if ((msg_b64 = b64_encode(text, strlen(text))) == NULL ||
	    (sig_b64 = b64_encode(sig, siglen)) == NULL)
		goto out;
	outer =
	    json_pack("{s:i, s:s, s:s, s:s}", "v", ENVELOPE_VERSION, "msg", msg_b64, "sig", sig_b64,
		      with_cert ? "cert" : "fp", with_cert ? ctx->cert_b64 : ctx->fp_hex);
	if (outer == NULL || (out = json_dumps(outer, JSON_COMPACT)) == NULL)
		goto out;
	len = strlen(out);
	if (len > ENVELOPE_MAX) {
		r = -EMSGSIZE;
		goto out;
	}
	*ret = out, *ret_len = len;
	out = NULL;
	r = 0;
out:
	free(out);
	free(sig_b64);
	free(msg_b64);
	free(sig);
	free(text);
	free(nonce_b64);
	json_decref(inner);
	json_decref(outer);
	return r;
}

static const struct envelope_rule *rule_find(const struct envelope_rule *rules, const char *type)
{
	for (; rules->type != NULL; rules++)
		if (strcmp(rules->type, type) == 0)
			return rules;
	return NULL;
}

static X509 *known_find(struct envelope_ctx *ctx, const uint8_t fp[CERT_FP_LEN])
{
	for (size_t i = 0; i < ENVELOPE_CERTS_MAX; i++)
		if (ctx->known[i].cert && memcmp(ctx->known[i].fp, fp, CERT_FP_LEN) == 0)
			return ctx->known[i].cert;
	return NULL;
}

static void known_add(struct envelope_ctx *ctx, const uint8_t fp[CERT_FP_LEN], X509 *cert)
{
	struct known_cert *k;

	if (known_find(ctx, fp))
		return;
	k = &ctx->known[ctx->known_next];
	ctx->known_next = (ctx->known_next + 1) % ENVELOPE_CERTS_MAX;
	X509_free(k->cert);
	X509_up_ref(cert);
	memcpy(k->fp, fp, CERT_FP_LEN);
	k->cert = cert;
}

static size_t replay_home(const uint8_t key[REPLAY_KEY])
{
	size_t h;

	memcpy(&h, key, sizeof(h)); /* the key is already a hash */
	return h % REPLAY_SLOTS;
}

static void replay_place(struct replay_slot *table, const struct replay_slot *e)
{
	size_t i = replay_home(e->key);

	while (table[i].expiry != 0)
		i = (i + 1) % REPLAY_SLOTS;
	table[i] = *e;
}

/* Drop every entry whose message could no longer pass the freshness check anyway. */
static int replay_purge(struct envelope_ctx *ctx, int64_t now)
{
	struct replay_slot *fresh = calloc(REPLAY_SLOTS, sizeof(*fresh));
	size_t count = 0;

	if (fresh == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < REPLAY_SLOTS; i++)
		if (ctx->replay[i].expiry != 0 && ctx->replay[i].expiry >= now) {
			replay_place(fresh, &ctx->replay[i]);
			count++;
		}
	memcpy(ctx->replay, fresh, sizeof(ctx->replay));
	free(fresh);
	ctx->replay_count = count;
	return 0;
}

/* Record (sender, nonce) until expiry; -IOTSEC_EREPLAY if it is already there. */
static int replay_check(struct envelope_ctx *ctx, const uint8_t fp[CERT_FP_LEN],
			const uint8_t nonce[ENVELOPE_NONCE_LEN], int64_t expiry, int64_t now)
{
	uint8_t buf[CERT_FP_LEN + ENVELOPE_NONCE_LEN], digest[CRYPTO_SHA256_LEN];
	struct replay_slot e = {.expiry = expiry};
	int r;

	memcpy(buf, fp, CERT_FP_LEN);
	memcpy(buf + CERT_FP_LEN, nonce, ENVELOPE_NONCE_LEN);
	if ((r = crypto_sha256(buf, sizeof(buf), digest)) < 0)
		return r;
	memcpy(e.key, digest, REPLAY_KEY);
	for (size_t i = replay_home(e.key); ctx->replay[i].expiry != 0; i = (i + 1) % REPLAY_SLOTS)
		if (memcmp(ctx->replay[i].key, e.key, REPLAY_KEY) == 0 &&
		    ctx->replay[i].expiry >= now)
			return -IOTSEC_EREPLAY;
	if (ctx->replay_count >= ENVELOPE_REPLAY_MAX && (r = replay_purge(ctx, now)) < 0)
		return r;
	/* Full of entries still inside the window: forgetting one would let its replay through. */
	if (ctx->replay_count >= ENVELOPE_REPLAY_MAX)
		return -ENOBUFS;
	replay_place(ctx->replay, &e);
	ctx->replay_count++;
	return 0;
}

/* The outer object: exactly v, msg, sig and one of cert/fp. */
struct wire {
	const char *msg, *sig, *cert, *fp;
};

static int wire_parse(json_t *o, struct wire *w)
{
	json_int_t v;

	if (!json_is_object(o) || json_object_size(o) != 4 ||
	    !json_is_integer(json_object_get(o, "v")))
		return -EBADMSG;
	v = json_integer_value(json_object_get(o, "v"));
	w->msg = json_string_value(json_object_get(o, "msg"));
	w->sig = json_string_value(json_object_get(o, "sig"));
	w->cert = json_string_value(json_object_get(o, "cert"));
	w->fp = json_string_value(json_object_get(o, "fp"));
	if (v != ENVELOPE_VERSION || !w->msg || !w->sig || (w->cert == NULL) == (w->fp == NULL))
		return -EBADMSG;
	return 0;
}

/* The signed object: exactly type, from, home, ts, nonce and an object body. */
struct inner {
	const char *type, *from, *home;
	json_int_t ts;
	uint8_t nonce[ENVELOPE_NONCE_LEN];
	json_t *body;
};

static int inner_parse(json_t *o, struct inner *in)
{
	const char *nonce;

	if (!json_is_object(o) || json_object_size(o) != 6 ||
	    !json_is_integer(json_object_get(o, "ts")) ||
	    !json_is_object(json_object_get(o, "body")))
		return -EBADMSG;
	in->type = json_string_value(json_object_get(o, "type"));
	in->from = json_string_value(json_object_get(o, "from"));
	in->home = json_string_value(json_object_get(o, "home"));
	nonce = json_string_value(json_object_get(o, "nonce"));
	in->ts = json_integer_value(json_object_get(o, "ts"));
	in->body = json_object_get(o, "body");
	if (!in->type || !in->from || !in->home || !nonce || strlen(in->type) == 0 ||
	    strlen(in->type) >= ENVELOPE_TYPE_MAX)
		return -EBADMSG;
	return b64_decode_exact(nonce, in->nonce, ENVELOPE_NONCE_LEN) < 0 ? -EBADMSG : 0;
}

int envelope_open(struct envelope_ctx *ctx, const void *buf, size_t len, struct envelope_msg *ret)
{
	json_t *outer = NULL, *signed_obj = NULL;
	uint8_t *text = NULL, *sig = NULL, *der = NULL, fp[CERT_FP_LEN];
	size_t textlen, siglen, derlen;
	const struct envelope_rule *rule;
	struct cert_info info;
	struct inner in;
	struct wire w;
	X509 *cert = NULL;
	int64_t now;
	int r;

	if (len > ENVELOPE_MAX)
		return -EMSGSIZE;
	r = -EBADMSG;
	if ((outer = json_loadb(buf, len, JSON_REJECT_DUPLICATES, NULL)) == NULL ||
	    wire_parse(outer, &w) < 0 || b64_decode(w.msg, &text, &textlen) < 0 ||
	    b64_decode(w.sig, &sig, &siglen) < 0 ||
	    (signed_obj = json_loadb((char *)text, textlen, JSON_REJECT_DUPLICATES, NULL)) ==
		NULL ||
	    inner_parse(signed_obj, &in) < 0)
		goto out;

	/* 1. the sender's certificate: chain to our CA, CRL, validity, home. */
	if (w.cert) {
		if (b64_decode(w.cert, &der, &derlen) < 0 || cert_from_der(der, derlen, &cert) < 0)
			goto out;
	} else {
		if (hex_decode(w.fp, fp, sizeof(fp)) < 0)
			goto out;
		if ((cert = known_find(ctx, fp)) == NULL) {
			r = -IOTSEC_EUNKNOWNCERT;
			goto out;
		}
		X509_up_ref(cert);
	}
	if ((r = cert_verify(ctx->store, cert, CERT_ROLES_ANY, &info)) < 0)
		goto out;
	/* 2. the role this message type needs. */
	if ((rule = rule_find(ctx->rules, in.type)) == NULL) {
		r = -IOTSEC_ETYPE;
		goto out;
	}
	if ((info.role & rule->roles) == 0) {
		r = -IOTSEC_EROLE;
		goto out;
	}
	if (strcmp(in.from, info.name) != 0 || strcmp(in.home, info.home) != 0) {
		r = -IOTSEC_EIDENTITY;
		goto out;
	}
	/* 3. the signature over the exact bytes carried. */
	if ((r = crypto_verify(X509_get0_pubkey(cert), text, textlen, sig, siglen)) < 0)
		goto out;
	/* 4. freshness, then 5. replay: only authenticated messages may occupy the cache. */
	now = clock_now();
	if (in.ts < now - ctx->delta_t || in.ts > now + ctx->delta_t) {
		r = -IOTSEC_ESTALE;
		goto out;
	}
	if ((r = replay_check(ctx, info.fp, in.nonce, in.ts + ctx->delta_t, now)) < 0)
		goto out;

	known_add(ctx, info.fp, cert);
	memset(ret, 0, sizeof(*ret));
	memcpy(ret->type, in.type, strlen(in.type) + 1);
	ret->ts = in.ts;
	ret->sender = info;
	ret->cert = cert;
	cert = NULL;
	ret->body = json_incref(in.body);
	r = 0;
out:
	X509_free(cert);
	free(der);
	free(sig);
	free(text);
	json_decref(signed_obj);
	json_decref(outer);
	return r;
}

void envelope_msg_clear(struct envelope_msg *m)
{
	json_decref(m->body);
	X509_free(m->cert);
	m->body = NULL;
	m->cert = NULL;
}
