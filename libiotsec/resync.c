#include "resync.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "body.h"
#include "encoding.h"
#include "log.h"

/* ---- bodies ---- */

/* A body of the nonce and nothing else, as RQA and ACK carry. */
static int nonce_build(const uint8_t nonce[RESYNC_NONCE_LEN], json_t **ret)
{
	char *n = b64_encode(nonce, RESYNC_NONCE_LEN);
	json_t *o = n ? json_pack("{s:s}", "nonce", n) : NULL;

	free(n);
	if (o == NULL)
		return -ENOMEM;
	*ret = o;
	return 0;
}

static int nonce_parse(json_t *body, uint8_t ret_nonce[RESYNC_NONCE_LEN])
{
	uint8_t n[RESYNC_NONCE_LEN];

	if (!body_fields(body, 1) || !body_bytes(body, "nonce", n, sizeof(n)))
		return -EBADMSG;
	memcpy(ret_nonce, n, sizeof(n));
	return 0;
}

int resync_rqa_build(const uint8_t nonce[RESYNC_NONCE_LEN], json_t **ret)
{
	return nonce_build(nonce, ret);
}

int resync_rqa_parse(json_t *body, uint8_t ret_nonce[RESYNC_NONCE_LEN])
{
	return nonce_parse(body, ret_nonce);
}

int resync_ack_build(const uint8_t nonce[RESYNC_NONCE_LEN], json_t **ret)
{
	return nonce_build(nonce, ret);
}

int resync_ack_parse(json_t *body, uint8_t ret_nonce[RESYNC_NONCE_LEN])
{
	return nonce_parse(body, ret_nonce);
}

/* A peer that is not in sync may know no epoch at all (0); one that is names the epoch it is
 * in, which is at least 1. */
static bool rpa_valid(bool synced, uint32_t epoch)
{
	return !synced || epoch >= 1;
}

int resync_rpa_build(const uint8_t nonce[RESYNC_NONCE_LEN], bool synced, uint32_t epoch,
		     json_t **ret)
{
	char *n = NULL;
	json_t *o = NULL;
	int r = -EINVAL;

	if (!rpa_valid(synced, epoch))
		goto out;
	r = -ENOMEM;
	if ((n = b64_encode(nonce, RESYNC_NONCE_LEN)) == NULL ||
	    (o = json_pack("{s:s, s:b, s:I}", "nonce", n, "synced", synced, "epoch",
			   (json_int_t)epoch)) == NULL)
		goto out;
	*ret = o;
	r = 0;
out:
	free(n);
	return r;
}

int resync_rpa_parse(json_t *body, uint8_t ret_nonce[RESYNC_NONCE_LEN], bool *ret_synced,
		     uint32_t *ret_epoch)
{
	uint8_t n[RESYNC_NONCE_LEN];
	json_t *synced = json_object_get(body, "synced");
	uint32_t epoch;

	if (!body_fields(body, 3) || !body_bytes(body, "nonce", n, sizeof(n)) ||
	    !json_is_boolean(synced) || !body_u32(body, "epoch", 0, UINT32_MAX, &epoch) ||
	    !rpa_valid(json_is_true(synced), epoch))
		return -EBADMSG;
	memcpy(ret_nonce, n, sizeof(n));
	*ret_synced = json_is_true(synced);
	*ret_epoch = epoch;
	return 0;
}

void resync_state_wipe(struct resync_state *s)
{
	if (s != NULL)
		crypto_wipe(s, sizeof(*s));
}

/* What a STATE may say: a time and schedule from 1970 on, epochs from 1 (the group stream's key
 * comes with a pool, so a peer that has one has a pool epoch too). */
static bool state_valid(const struct resync_state *s)
{
	return s->time_ms >= 0 && s->schedule.start >= 0 && s->schedule.interval >= 1 &&
	       s->epoch >= 1 && s->pool >= 1;
}

int resync_state_build(const struct resync_state *s, EVP_PKEY *pub, json_t **ret)
{
	char *nonce = NULL, *stream = NULL, *key = NULL;
	json_t *o = NULL;
	int r = -EINVAL;

	if (!state_valid(s))
		goto out;
	if ((r = body_key_wrap(pub, s->key, &key)) < 0)
		goto out;
	r = -ENOMEM;
	if ((nonce = b64_encode(s->nonce, sizeof(s->nonce))) == NULL ||
	    (stream = b64_encode(s->stream, sizeof(s->stream))) == NULL)
		goto out;
	o = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:s, s:s}", "nonce", nonce, "time",
		      (json_int_t)s->time_ms, "start", (json_int_t)s->schedule.start, "interval",
		      (json_int_t)s->schedule.interval, "epoch", (json_int_t)s->epoch, "pool",
		      (json_int_t)s->pool, "stream", stream, "key", key);
	if (o == NULL)
		goto out;
	*ret = o;
	r = 0;
out:
	free(nonce);
	free(stream);
	free(key);
	return r;
}

int resync_state_parse(json_t *body, EVP_PKEY *priv, struct resync_state *ret)
{
	struct resync_state s;
	int r = -EBADMSG;

	memset(&s, 0, sizeof(s));
	if (!body_fields(body, 8) || !body_bytes(body, "nonce", s.nonce, sizeof(s.nonce)) ||
	    !body_int(body, "time", 0, INT64_MAX, &s.time_ms) ||
	    !body_int(body, "start", 0, INT64_MAX, &s.schedule.start) ||
	    !body_int(body, "interval", 1, INT64_MAX, &s.schedule.interval) ||
	    !body_u32(body, "epoch", 1, UINT32_MAX, &s.epoch) ||
	    !body_u32(body, "pool", 1, UINT32_MAX, &s.pool) ||
	    !body_bytes(body, "stream", s.stream, sizeof(s.stream)))
		goto out;
	/* Last: the one costly step, only for a body that is otherwise right. */
	if ((r = body_key_unwrap(body, "key", priv, s.key)) < 0)
		goto out;
	*ret = s;
	r = 0;
out:
	resync_state_wipe(&s);
	return r;
}

void resync_id(const uint8_t nonce[RESYNC_NONCE_LEN], char ret[2 * RESYNC_NONCE_LEN + 1])
{
	hex_encode(nonce, RESYNC_NONCE_LEN, ret);
}

/* ---- the requester ---- */

static const char *const phase_names[] = {"idle", "asking", "acked", "done", "failed"};

static void become(struct resync *r, enum resync_phase p)
{
	if (r->phase != p)
		log_debug("resync: %s -> %s", phase_names[r->phase], phase_names[p]);
	r->phase = p;
}

void resync_init(struct resync *r, unsigned max_tries, uint64_t collect_ms)
{
	memset(r, 0, sizeof(*r));
	r->max_tries = max_tries > 0 ? max_tries : 1;
	r->collect_ms = collect_ms;
	r->phase = RESYNC_IDLE;
}

/* One request: a fresh nonce, so that only answers to it count, and nothing heard before. */
static enum resync_action ask(struct resync *r, uint64_t now)
{
	r->n_answers = 0;
	r->chosen[0] = '\0';
	memset(r->answers, 0, sizeof(r->answers));
	if (crypto_random(r->nonce, sizeof(r->nonce)) < 0) {
		/* Never expected; without a nonce no answer could be told fresh. */
		memset(r->nonce, 0, sizeof(r->nonce));
		become(r, RESYNC_FAILED);
		return RESYNC_GAVE_UP;
	}
	r->tries++;
	r->deadline = now + r->collect_ms;
	become(r, RESYNC_ASKING);
	return RESYNC_SEND_RQA;
}

enum resync_action resync_start(struct resync *r, uint64_t now)
{
	r->tries = 0;
	return ask(r, now);
}

static struct resync_answer *answer_find(struct resync *r, const char *peer)
{
	for (size_t i = 0; i < r->n_answers; i++)
		if (strcmp(r->answers[i].peer, peer) == 0)
			return &r->answers[i];
	return NULL;
}

enum resync_action resync_on_rpa(struct resync *r, const char *peer,
				 const uint8_t nonce[RESYNC_NONCE_LEN], bool synced, uint32_t epoch,
				 uint64_t now)
{
	struct resync_answer *a;

	(void)now;
	/* Answers keep coming while we wait for a STATE: later ones are candidates too. */
	if ((r->phase != RESYNC_ASKING && r->phase != RESYNC_ACKED) ||
	    crypto_memcmp(nonce, r->nonce, RESYNC_NONCE_LEN) != 0 || !synced || epoch == 0 ||
	    peer == NULL || peer[0] == '\0' || strnlen(peer, CERT_NAME_MAX) == CERT_NAME_MAX)
		return RESYNC_NOTHING;
	/* One answer per peer: a second one cannot move it up the list. */
	if (answer_find(r, peer) != NULL || r->n_answers == RESYNC_PEERS_MAX)
		return RESYNC_NOTHING;
	a = &r->answers[r->n_answers++];
	memcpy(a->peer, peer, strlen(peer) + 1);
	a->epoch = epoch;
	a->tried = false;
	log_debug("resync: %s is in sync at epoch %u", peer, epoch);
	return RESYNC_NOTHING;
}

static int epoch_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* The next peer to ask for the state. Honest synced peers name the same epoch, or one apart
 * across a boundary; a lying one may name any, and "the highest wins" would hand every request
 * to a single liar claiming a far epoch (it then sets our clock and chains that far ahead).
 * So the lower median m of all answers decides: the untried peer with the highest epoch in
 * [m, m + 1] (the first heard on a tie), else the highest one below m; one above m + 1 is
 * never asked. A liar must outnumber the honest answers to be chosen. */
static struct resync_answer *best(struct resync *r)
{
	uint32_t sorted[RESYNC_PEERS_MAX], m;
	struct resync_answer *in = NULL, *below = NULL;

	if (r->n_answers == 0)
		return NULL;
	for (size_t i = 0; i < r->n_answers; i++)
		sorted[i] = r->answers[i].epoch;
	qsort(sorted, r->n_answers, sizeof(sorted[0]), epoch_cmp);
	m = sorted[(r->n_answers - 1) / 2];
	for (size_t i = 0; i < r->n_answers; i++) {
		struct resync_answer *a = &r->answers[i];

		if (a->tried)
			continue;
		if (a->epoch >= m && a->epoch - m <= 1) {
			if (in == NULL || a->epoch > in->epoch)
				in = a;
		} else if (a->epoch < m && (below == NULL || a->epoch > below->epoch)) {
			below = a;
		}
	}
	return in ? in : below;
}

/* A STATE must say what its peer's RPA said: the epoch it announced (or the next, turned
 * meanwhile), and a time inside that epoch by the schedule it sends (one epoch either side:
 * its chain moves at its tick, not at the boundary). Else the announced epoch was a decoy. */
static bool state_agrees(const struct resync_answer *a, const struct resync_state *s)
{
	uint32_t e = stream_epoch(&s->schedule, s->time_ms / 1000);

	return s->epoch >= a->epoch && s->epoch - a->epoch <= 1 &&
	       (e >= s->epoch ? e - s->epoch : s->epoch - e) <= 1;
}

int resync_on_state(struct resync *r, const char *peer, const struct resync_state *s)
{
	struct resync_answer *a;

	/* From a peer we acknowledged under this request: the one chosen last, or one before it
	 * whose STATE was late. */
	if (r->phase != RESYNC_ACKED || peer == NULL ||
	    crypto_memcmp(s->nonce, r->nonce, RESYNC_NONCE_LEN) != 0 ||
	    (a = answer_find(r, peer)) == NULL || !a->tried)
		return -EPERM;
	if (!state_agrees(a, s))
		return -EBADMSG; /* still ACKED: the timer moves on to the next peer */
	snprintf(r->chosen, sizeof(r->chosen), "%s", a->peer);
	become(r, RESYNC_DONE);
	return 0;
}

enum resync_action resync_on_timer(struct resync *r, uint64_t now)
{
	struct resync_answer *a;

	if ((r->phase != RESYNC_ASKING && r->phase != RESYNC_ACKED) || now < r->deadline)
		return RESYNC_NOTHING;
	if ((a = best(r)) != NULL) {
		a->tried = true;
		snprintf(r->chosen, sizeof(r->chosen), "%s", a->peer);
		r->deadline = now + r->collect_ms;
		become(r, RESYNC_ACKED);
		return RESYNC_SEND_ACK;
	}
	if (r->tries < r->max_tries)
		return ask(r, now);
	become(r, RESYNC_FAILED);
	return RESYNC_GAVE_UP;
}
