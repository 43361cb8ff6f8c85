#include "session.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "encoding.h"
#include "log.h"

enum session_state {
	SESSION_STARTED,  /* initiator: START sent, waiting for COMMON_INDEX */
	SESSION_LOOKING,  /* either: waiting for the keys session_lookup() named */
	SESSION_ANSWERED, /* responder: COMMON_INDEX sent, waiting for the data */
	SESSION_DONE,
};

struct session {
	bool initiator;
	enum session_state state;
	uint32_t epoch, pool;
	char self[CERT_NAME_MAX], peer[CERT_NAME_MAX];
	uint8_t mine[PAIRWISE_CHALLENGE_LEN], theirs[PAIRWISE_CHALLENGE_LEN];
	uint8_t their_confirm[PAIRWISE_MAC_LEN]; /* initiator: the responder's proof */
	struct pairwise_session *ps;
	struct ring_indices ring, common;
	char text[SESSION_TEXT_MAX];
	size_t text_len;
};

void session_free(struct session *s)
{
	if (s == NULL)
		return;
	pairwise_session_free(s->ps);
	crypto_wipe(s, sizeof(*s));
	free(s);
}

static int add_b64(json_t *o, const char *field, const void *data, size_t len)
{
	char *text = b64_encode(data, len);
	int r = text && json_object_set_new(o, field, json_string(text)) == 0 ? 0 : -ENOMEM;

	free(text);
	return r;
}

/* The text of a string field, refused if a NUL inside would make it read shorter than sent. */
static const char *get_text(json_t *o, const char *field)
{
	json_t *v = json_object_get(o, field);
	const char *text = json_string_value(v);

	return text && strlen(text) == json_string_length(v) ? text : NULL;
}

/* A base64 field of exactly len bytes. */
static bool get_b64(json_t *o, const char *field, void *out, size_t len)
{
	const char *text = get_text(o, field);

	return text && b64_decode_exact(text, out, len) == 0;
}

/* The ring part of a body: a copy without the session's own fields, which must be there. */
static json_t *ring_part(json_t *body, bool with_confirm)
{
	json_t *core;

	if (!json_is_object(body) || !json_object_get(body, "challenge") ||
	    (with_confirm && !json_object_get(body, "confirm")))
		return NULL;
	if ((core = json_copy(body)) == NULL)
		return NULL;
	json_object_del(core, "challenge");
	json_object_del(core, "confirm");
	return core;
}

static struct session *session_new(bool initiator, uint32_t epoch, uint32_t pool, const char *self,
				   const char *peer, const uint32_t *ring, size_t n)
{
	struct session *s;

	if (epoch == 0 || pool == 0 || n == 0 || n > RING_SIZE_MAX || !self || !peer ||
	    strlen(self) >= CERT_NAME_MAX || strlen(peer) >= CERT_NAME_MAX ||
	    (s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->initiator = initiator;
	s->epoch = epoch, s->pool = pool;
	memcpy(s->self, self, strlen(self) + 1);
	memcpy(s->peer, peer, strlen(peer) + 1);
	s->ring.epoch = epoch, s->ring.n = n;
	memcpy(s->ring.index, ring, n * sizeof(*ring));
	if (crypto_random(s->mine, sizeof(s->mine)) < 0) {
		session_free(s);
		return NULL;
	}
	return s;
}

int session_initiate(uint32_t epoch, uint32_t pool, const char *self, const char *peer,
		     const uint32_t *ring, size_t n, const char *text, size_t len,
		     struct session **ret, json_t **ret_body)
{
	struct session *s = NULL;
	json_t *body = NULL;
	int r = -EINVAL;

	if (len == 0 || len > SESSION_TEXT_MAX)
		return len ? -EMSGSIZE : -EINVAL;
	if ((s = session_new(true, epoch, pool, self, peer, ring, n)) == NULL)
		goto out;
	memcpy(s->text, text, len);
	s->text_len = len;
	if ((r = ring_start_build(&s->ring, pool, &body)) < 0 ||
	    (r = add_b64(body, "challenge", s->mine, sizeof(s->mine))) < 0)
		goto out;
	s->state = SESSION_STARTED;
	*ret = s, *ret_body = body;
	s = NULL, body = NULL;
out:
	session_free(s);
	json_decref(body);
	return r;
}

int session_respond(json_t *body, uint32_t epoch, uint32_t pool, const char *self, const char *peer,
		    const uint32_t *ring, size_t n, struct session **ret)
{
	struct session *s = session_new(false, epoch, pool, self, peer, ring, n);
	struct ring_indices *theirs = calloc(1, sizeof(*theirs));
	json_t *core = NULL;
	int r = -ENOMEM;

	if (s == NULL || theirs == NULL)
		goto out;
	r = -EBADMSG;
	if ((core = ring_part(body, false)) == NULL || json_object_size(body) != 3 ||
	    !get_b64(body, "challenge", s->theirs, sizeof(s->theirs)) ||
	    ring_start_parse(core, pool, RING_SIZE_MAX, theirs) < 0)
		goto out;
	if (theirs->epoch != epoch) {
		r = -IOTSEC_EEPOCH;
		goto out;
	}
	s->common.epoch = epoch;
	s->common.n =
	    ring_common(s->ring.index, s->ring.n, theirs->index, theirs->n, s->common.index);
	s->state = SESSION_LOOKING;
	*ret = s;
	s = NULL;
	r = 0;
out:
	session_free(s);
	free(theirs);
	json_decref(core);
	return r;
}

int session_on_common(struct session *s, json_t *body)
{
	uint32_t check[RING_SIZE_MAX];
	json_t *core = NULL;
	int r = -EBADMSG;

	if (!s->initiator || s->state != SESSION_STARTED)
		return -EPROTO;
	if ((core = ring_part(body, true)) == NULL || json_object_size(body) != 4 ||
	    !get_b64(body, "challenge", s->theirs, sizeof(s->theirs)) ||
	    !get_b64(body, "confirm", s->their_confirm, sizeof(s->their_confirm)) ||
	    ring_common_index_parse(core, s->pool, RING_SIZE_MAX, &s->common) < 0)
		goto out;
	if (s->common.epoch != s->epoch) {
		r = -IOTSEC_EEPOCH;
		goto out;
	}
	/* Indices we do not hold would name keys we cannot have: a lie or a mix-up. */
	if (ring_common(s->ring.index, s->ring.n, s->common.index, s->common.n, check) !=
	    s->common.n)
		goto out;
	s->state = SESSION_LOOKING;
	r = 0;
out:
	json_decref(core);
	return r;
}

void session_lookup(const struct session *s, const uint32_t **ret_index, size_t *ret_n)
{
	*ret_index = s->common.index;
	*ret_n = s->common.n;
}

/* Responder: our indices in common, our challenge and our proof over theirs. */
static int answer(struct session *s, json_t **ret_body)
{
	uint8_t mac[PAIRWISE_MAC_LEN];
	json_t *body = NULL;
	int r;

	if ((r = pairwise_confirm(s->ps, s->theirs, mac)) < 0 ||
	    (r = ring_common_index_build(&s->common, s->pool, &body)) < 0 ||
	    (r = add_b64(body, "challenge", s->mine, sizeof(s->mine))) < 0 ||
	    (r = add_b64(body, "confirm", mac, sizeof(mac))) < 0) {
		json_decref(body);
		return r;
	}
	s->state = SESSION_ANSWERED;
	*ret_body = body;
	return 0;
}

/* Initiator: the responder proved it holds the key; seal the text with our own proof. */
static int send_text(struct session *s, json_t **ret_body)
{
	uint8_t mac[PAIRWISE_MAC_LEN], sealed[SESSION_TEXT_MAX + PAIRWISE_OVERHEAD];
	size_t len = s->text_len + PAIRWISE_OVERHEAD;
	json_t *body = NULL;
	int r;

	if ((r = pairwise_check_confirm(s->ps, s->mine, s->their_confirm)) < 0)
		return r;
	if ((r = pairwise_seal(s->ps, s->text, s->text_len, sealed)) < 0 ||
	    (r = pairwise_confirm(s->ps, s->theirs, mac)) < 0)
		return r;
	r = -ENOMEM;
	if ((body = json_pack("{s:I}", "epoch", (json_int_t)s->epoch)) == NULL ||
	    add_b64(body, "confirm", mac, sizeof(mac)) < 0 ||
	    add_b64(body, "data", sealed, len) < 0) {
		json_decref(body);
		return r;
	}
	s->state = SESSION_DONE;
	*ret_body = body;
	return 0;
}

int session_keyed(struct session *s, const uint8_t *keys, size_t n, json_t **ret_body)
{
	uint8_t key[CRYPTO_KEY_LEN];
	int r;

	if (s->state != SESSION_LOOKING || n != (s->common.n ? s->common.n : 1))
		return -EPROTO;
	/* One try: whatever the outcome, the session is done with its keys after this. */
	s->state = SESSION_DONE;
	if ((r = pairwise_derive(keys, n, s->epoch, s->self, s->peer, key)) < 0 ||
	    (r = pairwise_session_new(key, s->epoch, s->self, s->peer, s->mine, s->theirs,
				      &s->ps)) < 0)
		goto out;
	r = s->initiator ? send_text(s, ret_body) : answer(s, ret_body);
out:
	crypto_wipe(key, sizeof(key));
	return r;
}

int session_on_data(struct session *s, json_t *body, char *text, size_t *ret_len)
{
	uint8_t mac[PAIRWISE_MAC_LEN], *data = NULL, plain[SESSION_TEXT_MAX + PAIRWISE_OVERHEAD];
	const char *d64 = get_text(body, "data");
	json_t *epoch = json_object_get(body, "epoch");
	size_t len = 0, plen = 0;
	int r = -EBADMSG;

	if (s->initiator || s->state != SESSION_ANSWERED)
		return -EPROTO;
	if (!json_is_object(body) || json_object_size(body) != 3 || !json_is_integer(epoch) ||
	    !get_b64(body, "confirm", mac, sizeof(mac)) || d64 == NULL ||
	    b64_decode(d64, &data, &len) < 0 || len <= PAIRWISE_OVERHEAD ||
	    len > SESSION_TEXT_MAX + PAIRWISE_OVERHEAD)
		goto out;
	if (json_integer_value(epoch) != (json_int_t)s->epoch) {
		r = -IOTSEC_EEPOCH;
		goto out;
	}
	if ((r = pairwise_check_confirm(s->ps, s->mine, mac)) < 0)
		goto out;
	/* pairwise_open() writes as many bytes as it reads, tag included: plain has room. */
	if ((r = pairwise_open(s->ps, data, len, plain, &plen)) < 0)
		goto out;
	memcpy(text, plain, plen);
	text[plen] = '\0';
	s->state = SESSION_DONE;
	*ret_len = plen;
	r = 0;
out:
	crypto_wipe(plain, sizeof(plain));
	free(data);
	return r;
}
