/* Pairwise sessions (SPEC 5.3, 7): both devices derive the key from every ring key they share
 * (q-composite) or from the controller's path key, and each proves it holds it before any data
 * moves. START_SESSION and COMMON_INDEX carry a fresh challenge each; COMMON_INDEX and
 * MESSAGE_ENC_DATA carry the sender's confirmation over the other side's challenge. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "encoding.h"
#include "keyd.h"
#include "log.h"
#include "pairwise.h"

struct session {
	bool initiator;
	uint8_t mine[PAIRWISE_CHALLENGE_LEN], theirs[PAIRWISE_CHALLENGE_LEN];
	struct pairwise_session *ps;
	char text[KEYD_TEXT_MAX + 1];
};

static void session_free(void *p)
{
	struct session *s = p;

	pairwise_session_free(s->ps);
	crypto_wipe(s, sizeof(*s));
	free(s);
}

/* Split our extra fields off a ring body: the rest must parse as the ring module says. */
static json_t *take_extras(json_t *body, uint8_t challenge[PAIRWISE_CHALLENGE_LEN],
			   uint8_t confirm[PAIRWISE_MAC_LEN], bool *ret_confirm)
{
	json_t *core = json_copy(body);
	const char *ch = json_string_value(json_object_get(body, "challenge"));
	const char *cf = json_string_value(json_object_get(body, "confirm"));

	if (core == NULL || ch == NULL ||
	    b64_decode_exact(ch, challenge, PAIRWISE_CHALLENGE_LEN) < 0 ||
	    (cf && (ret_confirm == NULL || b64_decode_exact(cf, confirm, PAIRWISE_MAC_LEN) < 0))) {
		json_decref(core);
		return NULL;
	}
	json_object_del(core, "challenge");
	json_object_del(core, "confirm");
	if (ret_confirm)
		*ret_confirm = cf != NULL;
	return core;
}

static int add_b64(json_t *o, const char *field, const void *data, size_t len)
{
	char *text = b64_encode(data, len);
	int r = text && json_object_set_new(o, field, json_string(text)) == 0 ? 0 : -ENOMEM;

	free(text);
	return r;
}

/* The pairwise key with peer over the given shared indices (none: the controller's path key). */
static int derive(struct keyd *k, const char *peer, const uint32_t *common, size_t n,
		  uint8_t out[CRYPTO_KEY_LEN])
{
	static const uint32_t path_index = 0;
	uint8_t(*keys)[CRYPTO_KEY_LEN] = calloc(n ? n : 1, CRYPTO_KEY_LEN);
	int r = -ENOMEM;

	if (keys == NULL)
		return r;
	if (n > 0)
		r = keyd_dict_lookup(k, KEYD_RING_RECORD, common, n, keys);
	else
		r = keyd_dict_lookup(k, peer, &path_index, 1, keys);
	if (r == 0)
		r = pairwise_derive(keys[0], n ? n : 1, k->epoch, k->self.name, peer, out);
	crypto_wipe(keys, (n ? n : 1) * CRYPTO_KEY_LEN);
	free(keys);
	return r;
}

static int open_session(struct keyd *k, struct session *s, const char *peer, const uint32_t *common,
			size_t n)
{
	uint8_t key[CRYPTO_KEY_LEN];
	int r = derive(k, peer, common, n, key);

	if (r == 0)
		r = pairwise_session_new(key, k->epoch, k->self.name, peer, s->mine, s->theirs,
					 &s->ps);
	crypto_wipe(key, sizeof(key));
	return r;
}

int keyd_session_send(struct keyd *k, const char *peer, const char *text)
{
	struct keyd_peer *p = keyd_peer_find(k, peer);
	struct ring_indices *x = NULL;
	struct session *s = NULL;
	struct keyd_conn *c;
	json_t *body = NULL;
	int r = -ENOMEM;

	if (k->epoch == 0)
		return -ENOKEY; /* no ring yet */
	if (p == NULL || p->epoch != k->epoch) {
		log_debug("send to %s: peer %s, its epoch %u, ours %u", peer,
			  p ? "known" : "unknown", p ? p->epoch : 0, k->epoch);
		return -EHOSTUNREACH; /* unknown, or not on our epoch yet */
	}
	if (strlen(text) > KEYD_TEXT_MAX)
		return -EMSGSIZE;
	if ((s = calloc(1, sizeof(*s))) == NULL || (x = calloc(1, sizeof(*x))) == NULL)
		goto out;
	s->initiator = true;
	snprintf(s->text, sizeof(s->text), "%s", text);
	x->epoch = k->epoch, x->n = k->n_index;
	memcpy(x->index, k->index, k->n_index * sizeof(x->index[0]));
	if ((r = crypto_random(s->mine, sizeof(s->mine))) < 0 ||
	    (r = ring_start_build(x, k->pool, &body)) < 0 ||
	    (r = add_b64(body, "challenge", s->mine, sizeof(s->mine))) < 0)
		goto out;
	r = -EHOSTUNREACH;
	if ((c = keyd_conn_to(k, p)) == NULL) {
		log_debug("send to %s: cannot open a connection", peer);
		goto out;
	}
	keyd_conn_set_session(c, s, session_free);
	s = NULL;
	r = keyd_conn_send(c, RING_MSG_START_SESSION, body, true);
out:
	if (s)
		session_free(s);
	free(x);
	json_decref(body);
	return r;
}

static void give_up(struct keyd_conn *c, const char *peer, const char *why)
{
	log_warnx("no session with %s: %s", peer, why);
	keyd_conn_finish(c);
}

/* Responder: answer with the shared indices, our challenge and our proof. */
void keyd_session_on_start(struct keyd *k, struct keyd_conn *c, struct envelope_msg *m)
{
	struct ring_indices *theirs = calloc(1, sizeof(*theirs)),
			    *common = calloc(1, sizeof(*common));
	uint8_t mac[PAIRWISE_MAC_LEN];
	struct session *s = calloc(1, sizeof(*s));
	json_t *core = NULL, *body = NULL;

	if (!theirs || !common || !s)
		goto out;
	if ((core = take_extras(m->body, s->theirs, NULL, NULL)) == NULL || k->epoch == 0 ||
	    ring_start_parse(core, k->pool, RING_SIZE_MAX, theirs) < 0 ||
	    theirs->epoch != k->epoch) {
		give_up(c, m->sender.name, "malformed start, or another epoch");
		goto out;
	}
	common->epoch = k->epoch;
	common->n = ring_common(k->index, k->n_index, theirs->index, theirs->n, common->index);
	if (crypto_random(s->mine, sizeof(s->mine)) < 0 ||
	    open_session(k, s, m->sender.name, common->index, common->n) < 0 ||
	    pairwise_confirm(s->ps, s->theirs, mac) < 0 ||
	    ring_common_index_build(common, k->pool, &body) < 0 ||
	    add_b64(body, "challenge", s->mine, sizeof(s->mine)) < 0 ||
	    add_b64(body, "confirm", mac, sizeof(mac)) < 0) {
		give_up(c, m->sender.name, "no pairwise key");
		goto out;
	}
	keyd_conn_send(c, RING_MSG_COMMON_INDEX, body, true);
	keyd_conn_set_session(c, s, session_free);
	s = NULL;
out:
	if (s)
		session_free(s);
	free(theirs);
	free(common);
	json_decref(core);
	json_decref(body);
}

/* Initiator: check the responder's proof, then send the data with ours. */
void keyd_session_on_common(struct keyd *k, struct keyd_conn *c, struct envelope_msg *m)
{
	struct session *s = keyd_conn_session(c);
	struct ring_indices *common = calloc(1, sizeof(*common));
	uint32_t check[RING_SIZE_MAX];
	uint8_t mac[PAIRWISE_MAC_LEN], *sealed = NULL;
	json_t *core = NULL, *body = NULL;
	bool has_confirm = false;
	size_t len;

	if (common == NULL || s == NULL || !s->initiator || s->ps != NULL) {
		keyd_conn_finish(c);
		goto out;
	}
	if ((core = take_extras(m->body, s->theirs, mac, &has_confirm)) == NULL || !has_confirm ||
	    ring_common_index_parse(core, k->pool, RING_SIZE_MAX, common) < 0 ||
	    common->epoch != k->epoch ||
	    ring_common(k->index, k->n_index, common->index, common->n, check) != common->n) {
		give_up(c, m->sender.name, "malformed answer, or indices we do not hold");
		goto out;
	}
	if (open_session(k, s, m->sender.name, common->index, common->n) < 0) {
		give_up(c, m->sender.name, "no pairwise key (no shared index and no path key)");
		goto out;
	}
	if (pairwise_check_confirm(s->ps, s->mine, mac) < 0) {
		give_up(c, m->sender.name, "it could not prove it holds the pairwise key");
		goto out;
	}
	len = strlen(s->text);
	if ((sealed = malloc(len + PAIRWISE_OVERHEAD)) == NULL ||
	    pairwise_seal(s->ps, s->text, len, sealed) < 0 ||
	    pairwise_confirm(s->ps, s->theirs, mac) < 0 ||
	    (body = json_pack("{s:I}", "epoch", (json_int_t)k->epoch)) == NULL ||
	    add_b64(body, "confirm", mac, sizeof(mac)) < 0 ||
	    add_b64(body, "data", sealed, len + PAIRWISE_OVERHEAD) < 0) {
		give_up(c, m->sender.name, "cannot seal the message");
		goto out;
	}
	if (keyd_conn_send(c, KEYD_MSG_DATA, body, false) == 0) {
		k->sent++;
		log_info("sent %zu bytes to %s under a %s key", len, m->sender.name,
			 common->n ? "ring" : "path");
	}
	keyd_conn_finish(c);
out:
	free(sealed);
	free(common);
	json_decref(core);
	json_decref(body);
}

/* Responder: check the initiator's proof, then open the data. */
void keyd_session_on_data(struct keyd *k, struct keyd_conn *c, struct envelope_msg *m)
{
	struct session *s = keyd_conn_session(c);
	const char *cf = json_string_value(json_object_get(m->body, "confirm"));
	const char *d64 = json_string_value(json_object_get(m->body, "data"));
	uint8_t mac[PAIRWISE_MAC_LEN], *data = NULL, *plain = NULL;
	size_t len = 0, plen = 0, slot;

	keyd_conn_finish(c);
	if (s == NULL || s->initiator || s->ps == NULL || !cf || !d64 ||
	    json_object_size(m->body) != 3 ||
	    json_integer_value(json_object_get(m->body, "epoch")) != k->epoch ||
	    b64_decode_exact(cf, mac, sizeof(mac)) < 0 || b64_decode(d64, &data, &len) < 0 ||
	    len > KEYD_TEXT_MAX + PAIRWISE_OVERHEAD) {
		log_warnx("refused %s from %s: malformed", m->type, m->sender.name);
		goto out;
	}
	if (pairwise_check_confirm(s->ps, s->mine, mac) < 0) {
		log_warnx("refused %s from %s: it could not prove it holds the pairwise key",
			  m->type, m->sender.name);
		goto out;
	}
	if ((plain = malloc(len)) == NULL || pairwise_open(s->ps, data, len, plain, &plen) < 0) {
		log_warnx("refused %s from %s: it does not open", m->type, m->sender.name);
		goto out;
	}
	slot = k->n_inbox++ % KEYD_INBOX_MAX;
	snprintf(k->inbox[slot].from, sizeof(k->inbox[slot].from), "%s", m->sender.name);
	memcpy(k->inbox[slot].text, plain, plen);
	k->inbox[slot].text[plen] = '\0';
	k->inbox[slot].at = clock_now();
	log_info("received %zu bytes from %s", plen, m->sender.name);
out:
	free(plain);
	free(data);
}

const char *keyd_pairwise_kind(struct keyd *k, const struct keyd_peer *p)
{
	static const uint32_t path_index = 0;
	uint32_t scratch[RING_SIZE_MAX];
	uint8_t key[1][CRYPTO_KEY_LEN];

	if (k->epoch == 0 || p->epoch != k->epoch)
		return "none";
	if (ring_common(k->index, k->n_index, p->index, p->n_index, scratch) > 0)
		return "ring";
	if (keyd_dict_lookup(k, p->name, &path_index, 1, key) == 0) {
		crypto_wipe(key, sizeof(key));
		return "path";
	}
	return "none";
}
