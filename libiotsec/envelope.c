#include "envelope.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ca.h"
#include "clock.h"
#include "crypto.h"
#include "encoding.h"
#include "log.h"
#include "replay.h"

#define ENVELOPE_VERSION 2

/* A certificate that verified, and the conditions under which that still holds. */
struct known_cert {
	uint8_t fp[CERT_FP_LEN];
	X509 *cert; /* NULL: empty slot */
	struct crypto_pss *verifier;
	struct cert_info info;
	uint64_t generation;		 /* of the store it verified under */
	int64_t valid_from, valid_until; /* certificate, CA and CRL all hold */
};

/* A certificate that failed to verify, and why. */
struct refused_cert {
	uint8_t fp[CERT_FP_LEN];
	int error; /* 0: empty slot */
	uint64_t generation;
	int64_t at; /* monotonic seconds: a wall clock set back must not make a verdict last */
};

#define REFUSED_FOR 60 /* seconds a failed verdict stands (one may become valid in time) */

struct envelope_ctx {
	struct cert_store *store;
	X509 *cert;
	struct crypto_pss *signer;
	struct cert_info self;
	char *cert_b64;
	char fp_hex[2 * CERT_FP_LEN + 1];
	const struct envelope_rule *rules;
	int delta_t;
	uint64_t last_seq;
	struct replay *replay;

	struct known_cert known[ENVELOPE_CERTS_MAX];
	size_t known_next; /* round-robin victim once full */
	/* A certificate just verified, cached only once a message signed with its key verifies:
	 * anyone can re-encode a real certificate outside what the CA signed, and each encoding
	 * has a fingerprint of its own, but no one else can sign with its key. */
	struct known_cert pending;
	struct refused_cert refused[ENVELOPE_REFUSED_MAX];
	size_t refused_next;
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
	    (r = cert_to_der(own_cert, &der, &derlen)) < 0 ||
	    (r = replay_new(delta_t, &ctx->replay)) < 0 ||
	    (r = crypto_pss_new(own_key, true, &ctx->signer)) < 0)
		goto out;
	if ((ctx->cert_b64 = b64_encode(der, derlen)) == NULL) {
		r = -ENOMEM;
		goto out;
	}
	hex_encode(ctx->self.fp, CERT_FP_LEN, ctx->fp_hex);
	X509_up_ref(own_cert);
	ctx->cert = own_cert;
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
	for (size_t i = 0; i < ENVELOPE_CERTS_MAX; i++) {
		X509_free(ctx->known[i].cert);
		crypto_pss_free(ctx->known[i].verifier);
	}
	X509_free(ctx->pending.cert);
	crypto_pss_free(ctx->pending.verifier);
	X509_free(ctx->cert);
	crypto_pss_free(ctx->signer);
	replay_free(ctx->replay);
	free(ctx->cert_b64);
	free(ctx);
}

const struct cert_info *envelope_self(const struct envelope_ctx *ctx)
{
	return &ctx->self;
}

static const struct envelope_rule *rule_find(const struct envelope_rule *rules, const char *type)
{
	for (; rules->type != NULL; rules++)
		if (strcmp(rules->type, type) == 0)
			return rules;
	return NULL;
}

/* A delivery id: 1..ENVELOPE_ID_MAX characters from [A-Za-z0-9_-]. */
static bool id_valid(const char *id)
{
	size_t n = strlen(id);

	if (n == 0 || n > ENVELOPE_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((id[i] >= 'a' && id[i] <= 'z') || (id[i] >= 'A' && id[i] <= 'Z') ||
		      (id[i] >= '0' && id[i] <= '9') || id[i] == '-' || id[i] == '_'))
			return false;
	return true;
}

int envelope_new_id(char out[ENVELOPE_ID_MAX + 1])
{
	uint8_t raw[8];
	int r = crypto_random(raw, sizeof(raw));

	if (r == 0)
		hex_encode(raw, sizeof(raw), out);
	return r;
}

/* Strictly increasing, and above anything an earlier run of ours can have sent while the
 * clock moved forward. */
static uint64_t next_seq(struct envelope_ctx *ctx)
{
	uint64_t now = (uint64_t)clock_now_us();

	ctx->last_seq = now > ctx->last_seq ? now : ctx->last_seq + 1;
	return ctx->last_seq;
}

/* The outer object, written by hand: every value is base64, hex or a digit, so nothing needs
 * escaping, and wire_parse() reads exactly this form. */
static char *wire_build(const char *msg, const char *sig, const char *key, const char *cred,
			size_t *ret_len)
{
	size_t n = strlen("{\"v\":2,\"msg\":\"\",\"sig\":\"\",\"\":\"\"}") + strlen(msg) +
		   strlen(sig) + strlen(key) + strlen(cred);
	char *out = malloc(n + 1);

	if (out && snprintf(out, n + 1, "{\"v\":%d,\"msg\":\"%s\",\"sig\":\"%s\",\"%s\":\"%s\"}",
			    ENVELOPE_VERSION, msg, sig, key, cred) != (int)n) {
		free(out);
		out = NULL;
	}
	if (out)
		*ret_len = n;
	return out;
}

int envelope_seal(struct envelope_ctx *ctx, const char *type, const char *to, const char *id,
		  json_t *body, bool with_cert, char **ret, size_t *ret_len)
{
	uint8_t nonce[ENVELOPE_NONCE_LEN], *sig = NULL;
	char *nonce_b64 = NULL, *text = NULL, *msg_b64 = NULL, *sig_b64 = NULL, *out = NULL;
	const struct envelope_rule *rule = rule_find(ctx->rules, type);
	json_t *inner = NULL;
	size_t siglen, len;
	int r;

	/* We never send what a peer of ours would refuse. */
	if (rule == NULL || strlen(type) >= ENVELOPE_TYPE_MAX || (to == NULL) != (id == NULL) ||
	    rule->unicast != (to != NULL) ||
	    (to && (to[0] == '\0' || strlen(to) >= CERT_NAME_MAX || !id_valid(id))))
		return -EINVAL;
	if ((r = crypto_random(nonce, sizeof(nonce))) < 0)
		return r;
	r = -ENOMEM;
	if ((nonce_b64 = b64_encode(nonce, sizeof(nonce))) == NULL)
		goto out;
	inner = json_pack("{s:s, s:s, s:s, s:I, s:I, s:s, s:o}", "type", type, "from",
			  ctx->self.name, "home", ctx->self.home, "ts", (json_int_t)clock_now(),
			  "seq", (json_int_t)next_seq(ctx), "nonce", nonce_b64, "body",
			  body ? json_incref(body) : json_object());
	if (inner == NULL || (to && (json_object_set_new(inner, "to", json_string(to)) < 0 ||
				     json_object_set_new(inner, "id", json_string(id)) < 0)))
		goto out;
	if ((text = json_dumps(inner, JSON_COMPACT)) == NULL)
		goto out;
	if ((r = crypto_pss_sign(ctx->signer, text, strlen(text), &sig, &siglen)) < 0)
		goto out;
	r = -ENOMEM;
	if ((msg_b64 = b64_encode(text, strlen(text))) == NULL ||
	    (sig_b64 = b64_encode(sig, siglen)) == NULL ||
	    (out = wire_build(msg_b64, sig_b64, with_cert ? "cert" : "fp",
			      with_cert ? ctx->cert_b64 : ctx->fp_hex, &len)) == NULL)
		goto out;
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
	return r;
}

static struct known_cert *known_find(struct envelope_ctx *ctx, const uint8_t fp[CERT_FP_LEN])
{
	for (size_t i = 0; i < ENVELOPE_CERTS_MAX; i++)
		if (ctx->known[i].cert && memcmp(ctx->known[i].fp, fp, CERT_FP_LEN) == 0)
			return &ctx->known[i];
	return NULL;
}

/* The cached verdict on k still stands at now. */
static bool known_current(const struct envelope_ctx *ctx, const struct known_cert *k, int64_t now)
{
	return k->generation == cert_store_generation(ctx->store) && now >= k->valid_from &&
	       now <= k->valid_until;
}

/* Verify cert (a reference is taken on success) into the slot k, or ctx->pending when k is NULL
 * (known_keep() caches it). */
static int known_verify(struct envelope_ctx *ctx, struct known_cert *k, X509 *cert,
			const uint8_t fp[CERT_FP_LEN], struct known_cert **ret)
{
	struct cert_info info;
	int64_t from, until;
	int r;

	if ((r = cert_verify(ctx->store, cert, CERT_ROLES_ALL, &info)) < 0) {
		if (k) { /* revoked or expired since: forget it */
			X509_free(k->cert);
			crypto_pss_free(k->verifier);
			k->cert = NULL;
			k->verifier = NULL;
		}
		return r;
	}
	if (k == NULL)
		k = &ctx->pending;
	if (k->cert != cert) {
		struct crypto_pss *verifier = NULL;

		if ((r = crypto_pss_new(X509_get0_pubkey(cert), false, &verifier)) < 0)
			return r;
		X509_up_ref(cert);
		X509_free(k->cert);
		crypto_pss_free(k->verifier);
		k->cert = cert;
		k->verifier = verifier;
	}
	cert_store_window(ctx->store, &from, &until);
	memcpy(k->fp, fp, CERT_FP_LEN);
	k->info = info;
	k->generation = cert_store_generation(ctx->store);
	k->valid_from = info.not_before > from ? info.not_before : from;
	k->valid_until = info.not_after < until ? info.not_after : until;
	*ret = k;
	return 0;
}

/* A message signed with the key of the pending certificate verified: cache it, and return its
 * slot there. */
static struct known_cert *known_keep(struct envelope_ctx *ctx)
{
	struct known_cert *k = &ctx->known[ctx->known_next];

	ctx->known_next = (ctx->known_next + 1) % ENVELOPE_CERTS_MAX;
	X509_free(k->cert);
	crypto_pss_free(k->verifier);
	*k = ctx->pending;
	memset(&ctx->pending, 0, sizeof(ctx->pending));
	return k;
}

/* The outer object, in the one form wire_build() writes:
 *   {"v":2,"msg":"<base64>","sig":"<base64>","cert":"<base64>"}   or   ...,"fp":"<hex>"}
 * no spaces, this order, and nothing but base64 or hex between the quotes, so no escape can
 * change what a value means. It is scanned here rather than by jansson, which takes longer over
 * a certificate's 1.3 KB of base64 than the RSA verify it guards. The values are cut out of buf
 * (a writable copy) in place. */
struct wire {
	char *msg, *sig, *cert, *fp;
};

static bool b64_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '+' || c == '/' || c == '=';
}

/* The value after prefix at *p, up to its closing quote; NULL when it is not there. */
static char *wire_value(char **p, const char *end, const char *prefix)
{
	size_t n = strlen(prefix);
	char *v, *q;

	if ((size_t)(end - *p) < n || memcmp(*p, prefix, n) != 0)
		return NULL;
	for (v = q = *p + n; q < end && b64_char(*q); q++)
		;
	if (q == end || *q != '"')
		return NULL;
	*q = '\0';
	*p = q + 1;
	return v;
}

static int wire_parse(char *buf, size_t len, struct wire *w)
{
	char *p = buf, *end = buf + len;

	memset(w, 0, sizeof(*w));
	if ((w->msg = wire_value(&p, end, "{\"v\":2,\"msg\":\"")) == NULL ||
	    (w->sig = wire_value(&p, end, ",\"sig\":\"")) == NULL)
		return -EBADMSG;
	if ((w->cert = wire_value(&p, end, ",\"cert\":\"")) == NULL &&
	    (w->fp = wire_value(&p, end, ",\"fp\":\"")) == NULL)
		return -EBADMSG;
	return end - p == 1 && *p == '}' ? 0 : -EBADMSG;
}

/* The signed object: exactly type, from, home, ts, seq, nonce, an object body, and either both
 * or neither of to and id. */
struct inner {
	const char *type, *from, *home, *to, *id;
	json_int_t ts, seq;
	json_t *body;
};

static int inner_parse(json_t *o, struct inner *in)
{
	const char *nonce;
	uint8_t raw[ENVELOPE_NONCE_LEN];
	size_t fields;

	if (!json_is_object(o) || !json_is_integer(json_object_get(o, "ts")) ||
	    !json_is_integer(json_object_get(o, "seq")) ||
	    !json_is_object(json_object_get(o, "body")))
		return -EBADMSG;
	in->type = json_string_value(json_object_get(o, "type"));
	in->from = json_string_value(json_object_get(o, "from"));
	in->home = json_string_value(json_object_get(o, "home"));
	in->to = json_string_value(json_object_get(o, "to"));
	in->id = json_string_value(json_object_get(o, "id"));
	nonce = json_string_value(json_object_get(o, "nonce"));
	in->ts = json_integer_value(json_object_get(o, "ts"));
	in->seq = json_integer_value(json_object_get(o, "seq"));
	in->body = json_object_get(o, "body");
	fields = in->to ? 9 : 7;
	if (json_object_size(o) != fields || !in->type || !in->from || !in->home || !nonce ||
	    (in->to == NULL) != (in->id == NULL) || (in->id && !id_valid(in->id)) ||
	    strlen(in->type) == 0 || strlen(in->type) >= ENVELOPE_TYPE_MAX || in->seq < 1)
		return -EBADMSG;
	return b64_decode_exact(nonce, raw, sizeof(raw)) < 0 ? -EBADMSG : 0;
}

static int64_t mono_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static const struct refused_cert *refused_find(const struct envelope_ctx *ctx,
					       const uint8_t fp[CERT_FP_LEN])
{
	int64_t now = mono_seconds();

	for (size_t i = 0; i < ENVELOPE_REFUSED_MAX; i++) {
		const struct refused_cert *x = &ctx->refused[i];

		if (x->error && memcmp(x->fp, fp, CERT_FP_LEN) == 0 &&
		    x->generation == cert_store_generation(ctx->store) && now - x->at < REFUSED_FOR)
			return x;
	}
	return NULL;
}

static void refused_add(struct envelope_ctx *ctx, const uint8_t fp[CERT_FP_LEN], int error)
{
	struct refused_cert *x = &ctx->refused[ctx->refused_next];

	ctx->refused_next = (ctx->refused_next + 1) % ENVELOPE_REFUSED_MAX;
	memcpy(x->fp, fp, CERT_FP_LEN);
	x->error = error;
	x->generation = cert_store_generation(ctx->store);
	x->at = mono_seconds();
}

/* Step 1: the sender's certificate, from the cache when its verdict still stands. */
static int sender_cert(struct envelope_ctx *ctx, const struct wire *w, int64_t now,
		       struct known_cert **ret)
{
	uint8_t *der = NULL, fp[CERT_FP_LEN];
	const struct refused_cert *x;
	size_t derlen;
	struct known_cert *k = NULL;
	X509 *cert = NULL;
	int r = -EBADMSG;

	if (w->cert) {
		if (b64_decode(w->cert, &der, &derlen) < 0 || derlen == 0 ||
		    crypto_sha256(der, derlen, fp) < 0)
			goto out;
	} else if (hex_decode(w->fp, fp, sizeof(fp)) < 0) {
		goto out;
	}
	k = known_find(ctx, fp);
	if (k && known_current(ctx, k, now)) {
		*ret = k;
		r = 0;
		goto out;
	}
	if (k == NULL && w->fp) {
		r = -IOTSEC_EUNKNOWNCERT;
		goto out;
	}
	/* One we know again (a new CRL, say) is always checked; one refused lately is not. */
	if (k == NULL && (x = refused_find(ctx, fp)) != NULL) {
		r = x->error;
		goto out;
	}
	if (k == NULL && (r = cert_from_der(der, derlen, &cert)) < 0)
		goto out;
	if ((r = known_verify(ctx, k, k ? k->cert : cert, fp, ret)) < 0 && r != -ENOMEM)
		refused_add(ctx, fp, r);
out:
	X509_free(cert);
	free(der);
	return r;
}

/* envelope_open() and envelope_open_relayed(): with ret_to, a unicast message may name any
 * device, whose name goes into ret_to. */
static int open_any(struct envelope_ctx *ctx, const void *buf, size_t len, struct envelope_msg *ret,
		    char ret_sender[CERT_NAME_MAX], char ret_to[CERT_NAME_MAX])
{
	json_t *signed_obj = NULL;
	uint8_t *text = NULL, *sig = NULL;
	char *copy = NULL;
	size_t textlen, siglen;
	const struct envelope_rule *rule;
	const struct cert_info *info;
	struct known_cert *k = NULL;
	struct inner in;
	struct wire w;
	int64_t now = clock_now();
	int r;

	if (ret_sender)
		ret_sender[0] = '\0';
	if (len > ENVELOPE_MAX)
		return -EMSGSIZE;
	if ((copy = malloc(len + 1)) == NULL)
		return -ENOMEM;
	memcpy(copy, buf, len);
	r = -EBADMSG;
	if (wire_parse(copy, len, &w) < 0 || b64_decode(w.msg, &text, &textlen) < 0 ||
	    b64_decode(w.sig, &sig, &siglen) < 0 ||
	    (signed_obj = json_loadb((char *)text, textlen, JSON_REJECT_DUPLICATES, NULL)) ==
		NULL ||
	    inner_parse(signed_obj, &in) < 0)
		goto out;

	/* 1. the sender's certificate: chain to our CA, CRL, validity, home. */
	if ((r = sender_cert(ctx, &w, now, &k)) < 0)
		goto out;
	info = &k->info;
	/* 2. the role this message type needs, the sender's identity and the recipient. */
	if ((rule = rule_find(ctx->rules, in.type)) == NULL)
		r = -IOTSEC_ETYPE;
	else if ((info->role & rule->roles) == 0)
		r = -IOTSEC_EROLE;
	else if (strcmp(in.from, info->name) != 0 || strcmp(in.home, info->home) != 0)
		r = -IOTSEC_EIDENTITY;
	else if (rule->unicast != (in.to != NULL))
		r = -EBADMSG;
	else if (in.to && ret_to == NULL && strcmp(in.to, ctx->self.name) != 0)
		r = -IOTSEC_ENOTFORUS;
	else if (ret_to &&
		 (in.to == NULL || strlen(in.to) >= CERT_NAME_MAX || !ca_name_valid(in.to)))
		r = -EBADMSG;
	/* 3. the signature over the exact bytes carried. Certificates are public, and so is
	 * anything once sent: a refusal is counted against the sender only for what it signed and
	 * is wrong in itself, so a message refused at step 2 is verified before it is blamed on
	 * anyone, and one addressed elsewhere (which anyone may replay to us), stale or replayed
	 * is blamed on no one. */
	if (r < 0) {
		if (ret_sender && r != -IOTSEC_ENOTFORUS &&
		    crypto_pss_verify(k->verifier, text, textlen, sig, siglen) == 0)
			memcpy(ret_sender, info->name, sizeof(info->name));
		goto out;
	}
	if ((r = crypto_pss_verify(k->verifier, text, textlen, sig, siglen)) < 0)
		goto out;
	if (k == &ctx->pending)
		k = known_keep(ctx);
	info = &k->info;
	/* 4. freshness, then 5. replay: only authenticated messages reach the sender's window. An
	 * any_time type is judged by its body instead (an echoed nonce, an issue time, a sequence
	 * that only goes up): it may be hours old, or reach us while our clock is at 1970, and
	 * its seq, stamped by a clock we cannot judge, must not move the sender's window. */
	if (!rule->any_time && (in.ts < now - ctx->delta_t || in.ts > now + ctx->delta_t)) {
		r = -IOTSEC_ESTALE;
		goto out;
	}
	if (!rule->any_time &&
	    (r = replay_check(ctx->replay, info->name, (uint64_t)in.seq, in.ts, now)) < 0)
		goto out;

	if (ret_sender)
		memcpy(ret_sender, info->name, sizeof(info->name));
	memset(ret, 0, sizeof(*ret));
	memcpy(ret->type, in.type, strlen(in.type) + 1);
	if (in.id)
		memcpy(ret->id, in.id, strlen(in.id) + 1);
	ret->ts = in.ts;
	ret->seq = (uint64_t)in.seq;
	ret->sender = *info;
	X509_up_ref(k->cert);
	ret->cert = k->cert;
	ret->body = json_incref(in.body);
	if (ret_to)
		memcpy(ret_to, in.to, strlen(in.to) + 1);
	r = 0;
out:
	free(sig);
	free(text);
	free(copy);
	json_decref(signed_obj);
	return r;
}

int envelope_open(struct envelope_ctx *ctx, const void *buf, size_t len, struct envelope_msg *ret,
		  char ret_sender[CERT_NAME_MAX])
{
	return open_any(ctx, buf, len, ret, ret_sender, NULL);
}

int envelope_open_relayed(struct envelope_ctx *ctx, const void *buf, size_t len,
			  struct envelope_msg *ret, char ret_sender[CERT_NAME_MAX],
			  char ret_to[CERT_NAME_MAX])
{
	return open_any(ctx, buf, len, ret, ret_sender, ret_to);
}

void envelope_msg_clear(struct envelope_msg *m)
{
	json_decref(m->body);
	X509_free(m->cert);
	m->body = NULL;
	m->cert = NULL;
}
