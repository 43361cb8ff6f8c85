/* Pairwise sessions (session.h) on links: each end looks up the keys the session names in dictd,
 * without waiting, and every message of a session carries the id its initiator chose. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "keyd.h"
#include "log.h"

/* A session on a link (the link's data). */
struct keyd_talk {
	struct keyd_link h;
	struct keyd *k;
	struct lan_link *link;
	struct session *s;
	struct ctl_call *call; /* a dictd lookup under way */
	char id[ENVELOPE_ID_MAX + 1];
	char peer[CERT_NAME_MAX];
	const char *reply_type; /* what session_keyed()'s body is */
};

static void talk_free(void *p)
{
	struct keyd_talk *t = p;

	ctl_call_cancel(t->call);
	session_free(t->s);
	free(t);
}

static struct keyd_talk *talk_new(struct keyd *k, struct lan_link *l, const char *peer,
				  const char *id)
{
	struct keyd_talk *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	t->h.kind = KEYD_LINK_SESSION, t->k = k, t->link = l;
	snprintf(t->id, sizeof(t->id), "%s", id);
	snprintf(t->peer, sizeof(t->peer), "%s", peer);
	lan_link_set_data(l, t, talk_free);
	return t;
}

/* The link's session, if it is one and the message belongs to it. */
static struct keyd_talk *talk_of(struct keyd *k, struct lan_link *l, struct envelope_msg *m)
{
	struct keyd_talk *t = lan_link_data(l);

	if (t == NULL || t->h.kind != KEYD_LINK_SESSION) {
		keyd_link_refuse(k, l, m, -EPROTO);
		return NULL;
	}
	if (strcmp(t->id, m->id) != 0) {
		keyd_link_refuse(k, l, m, -IOTSEC_EDELIVERY);
		return NULL;
	}
	return t;
}

/* A session that cannot go on: said within the refusal budget, since a peer can make it
 * happen as often as it likes, and counted against the peer only when theirs is the fault (not
 * when our dictd lacks a key, say). */
static void give_up(struct keyd_talk *t, const char *why, int r, bool theirs)
{
	log_debug("no session with %s: %s: %s", t->peer, why, iotsec_strerror(r));
	lan_member_refuse(t->k->member, lan_link_addr(t->link), theirs ? t->peer : "", r);
	lan_link_close(t->link);
}

static void on_keys(int r, const uint8_t (*keys)[CRYPTO_KEY_LEN], void *userdata)
{
	struct keyd_talk *t = userdata;
	const uint32_t *index;
	json_t *body = NULL;
	size_t n;

	if (r == -ECANCELED)
		return; /* the link went: talk_free() is under way */
	t->call = NULL;
	session_lookup(t->s, &index, &n);
	if (r < 0) {
		give_up(t, n ? "no ring keys" : "no path key", r, false);
		return;
	}
	if ((r = session_keyed(t->s, keys[0], n ? n : 1, &body)) < 0 ||
	    (r = lan_link_send(t->link, t->reply_type, t->id, body, false)) < 0) {
		json_decref(body);
		give_up(t,
			r == -EKEYREJECTED ? "it could not prove it holds the pairwise key"
					   : "cannot answer",
			r, r == -EKEYREJECTED);
		return;
	}
	json_decref(body);
	if (strcmp(t->reply_type, SESSION_MSG_DATA) == 0) {
		t->k->sent++;
		log_info("sent to %s under a %s key", t->peer, n ? "ring" : "path");
		lan_link_finish(t->link);
	}
}

/* Fetch the keys the session needs: the shared ring keys, or the path key for the peer. */
static void lookup(struct keyd_talk *t)
{
	static const uint32_t path_index = KEYD_PATH_INDEX;
	const uint32_t *index;
	size_t n;
	int r;

	session_lookup(t->s, &index, &n);
	r = n ? dictd_client_lookup(t->k->dict, KEYD_RING_RECORD, index, n, on_keys, t, &t->call)
	      : dictd_client_lookup(t->k->dict, t->peer, &path_index, 1, on_keys, t, &t->call);
	if (r < 0) {
		t->call = NULL;
		give_up(t, "dictd", r, false);
	}
}

int keyd_talk_send(struct keyd *k, const char *peer, const char *text)
{
	struct keyd_peer *p = keyd_peer_find(k, peer);
	char id[ENVELOPE_ID_MAX + 1];
	struct keyd_talk *t;
	struct session *s = NULL;
	struct lan_link *l;
	json_t *body = NULL;
	int r;

	if (k->n_index == 0)
		return -ENOKEY; /* no ring yet */
	if (p == NULL || p->epoch != k->epoch) {
		log_debug("send to %s: peer %s, its epoch %u, ours %u", peer,
			  p ? "known" : "unknown", p ? p->epoch : 0, k->epoch);
		return -EHOSTUNREACH; /* unknown, or not on our epoch yet */
	}
	if ((r = session_initiate(k->epoch, k->pool, k->member->self.name, peer, k->index,
				  k->n_index, text, strlen(text), &s, &body)) < 0 ||
	    (r = envelope_new_id(id)) < 0)
		goto out;
	if ((l = keyd_link_to(k, p)) == NULL) {
		r = -EHOSTUNREACH;
		goto out;
	}
	if ((t = talk_new(k, l, peer, id)) == NULL) {
		lan_link_close(l);
		r = -ENOMEM;
		goto out;
	}
	t->s = s, t->reply_type = SESSION_MSG_DATA;
	s = NULL;
	if ((r = lan_link_send(l, RING_MSG_START_SESSION, id, body, true)) < 0)
		lan_link_close(l);
out:
	session_free(s);
	json_decref(body);
	return r;
}

/* Responder: answer with the shared indices, our challenge and our proof. */
void keyd_talk_on_start(struct keyd *k, struct lan_link *l, struct envelope_msg *m)
{
	struct keyd_talk *t;
	struct session *s = NULL;
	int r;

	if (lan_link_data(l) != NULL) {
		keyd_link_refuse(k, l, m, -EPROTO); /* one session per link */
		return;
	}
	if (k->n_index == 0) {
		keyd_link_refuse(k, l, m, -ENOKEY); /* no ring yet */
		return;
	}
	if ((r = session_respond(m->body, k->epoch, k->pool, k->member->self.name, m->sender.name,
				 k->index, k->n_index, &s)) < 0) {
		keyd_link_refuse(k, l, m, r);
		return;
	}
	if ((t = talk_new(k, l, m->sender.name, m->id)) == NULL) {
		session_free(s);
		lan_link_close(l);
		return;
	}
	t->s = s, t->reply_type = RING_MSG_COMMON_INDEX;
	lookup(t);
}

/* Initiator: the responder's answer; fetch the keys it names. */
void keyd_talk_on_common(struct keyd *k, struct lan_link *l, struct envelope_msg *m)
{
	struct keyd_talk *t = talk_of(k, l, m);
	int r;

	if (t == NULL)
		return;
	if ((r = session_on_common(t->s, m->body)) < 0) {
		give_up(t, "its answer is malformed, or names indices we do not hold", r, true);
		return;
	}
	lookup(t);
}

/* Responder: the data, with the initiator's proof. */
void keyd_talk_on_data(struct keyd *k, struct lan_link *l, struct envelope_msg *m)
{
	struct keyd_talk *t = talk_of(k, l, m);
	size_t slot, len;
	int r;

	if (t == NULL)
		return;
	slot = k->n_inbox % KEYD_INBOX_MAX;
	if ((r = session_on_data(t->s, m->body, k->inbox[slot].text, &len)) < 0) {
		keyd_link_refuse(k, l, m, r);
		return;
	}
	k->n_inbox++;
	snprintf(k->inbox[slot].from, sizeof(k->inbox[slot].from), "%s", m->sender.name);
	k->inbox[slot].at = clock_now();
	log_info("received %zu bytes from %s", len, m->sender.name);
	lan_link_finish(l);
}

const char *keyd_pairwise_kind(const struct keyd *k, const struct keyd_peer *p)
{
	uint32_t scratch[RING_SIZE_MAX];

	if (k->n_index == 0 || p->epoch != k->epoch)
		return "none";
	if (ring_common(k->index, k->n_index, p->index, p->n_index, scratch) > 0)
		return "ring";
	return keyd_has_path(k, p->name) ? "path" : "none";
}
