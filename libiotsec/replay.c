#include "replay.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cert.h"
#include "log.h"

struct sender {
	char name[CERT_NAME_MAX];
	int64_t newest_ts; /* clamped to the receiver's now + delta_t */
	uint64_t floor;	   /* every seq <= floor is refused */
	size_t n;	   /* seqs in window[], unordered */
	uint64_t window[REPLAY_WINDOW];
};

/* Senders sorted by name, so a lookup is a binary search. */
struct replay {
	int delta_t;
	struct sender **s;
	size_t n, cap;
};

int replay_new(int delta_t, struct replay **ret)
{
	struct replay *r;

	if (delta_t <= 0)
		return -EINVAL;
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return -ENOMEM;
	r->delta_t = delta_t;
	*ret = r;
	return 0;
}

void replay_free(struct replay *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->n; i++)
		free(r->s[i]);
	free(r->s);
	free(r);
}

size_t replay_senders(const struct replay *r)
{
	return r->n;
}

/* The position of name, or where it would go; *found says which. */
static size_t find(const struct replay *r, const char *name, bool *found)
{
	size_t lo = 0, hi = r->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(r->s[mid]->name, name);

		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}

/* Forget every sender none of whose messages could still be fresh. */
static void forget_stale(struct replay *r, int64_t now)
{
	size_t kept = 0;

	for (size_t i = 0; i < r->n; i++) {
		if (r->s[i]->newest_ts < now - r->delta_t)
			free(r->s[i]);
		else
			r->s[kept++] = r->s[i];
	}
	r->n = kept;
}

static int insert(struct replay *r, size_t at, const char *name, int64_t now, struct sender **ret)
{
	struct sender *s, **grown;
	bool found;

	if (r->n == r->cap) {
		forget_stale(r, now);
		at = find(r, name, &found);
	}
	if (r->n == r->cap) {
		size_t cap = r->cap ? 2 * r->cap : 16;

		if (r->n >= REPLAY_SENDERS_MAX)
			return -ENOBUFS;
		if (cap > REPLAY_SENDERS_MAX)
			cap = REPLAY_SENDERS_MAX;
		if ((grown = realloc(r->s, cap * sizeof(*grown))) == NULL)
			return -ENOMEM;
		r->s = grown;
		r->cap = cap;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return -ENOMEM;
	memcpy(s->name, name, strlen(name) + 1);
	memmove(r->s + at + 1, r->s + at, (r->n - at) * sizeof(*r->s));
	r->s[at] = s;
	r->n++;
	*ret = s;
	return 0;
}

int replay_check(struct replay *r, const char *sender, uint64_t seq, int64_t ts, int64_t now)
{
	struct sender *s;
	size_t at, lowest = 0;
	bool found;
	int err;

	if (sender == NULL || sender[0] == '\0' || strlen(sender) >= CERT_NAME_MAX)
		return -EINVAL;
	if (seq == 0) /* numbers start at 1: 0 is every floor's first value */
		return -IOTSEC_EREPLAY;
	at = find(r, sender, &found);
	if (found)
		s = r->s[at];
	else if ((err = insert(r, at, sender, now, &s)) < 0)
		return err;

	if (seq <= s->floor)
		return -IOTSEC_EREPLAY;
	for (size_t i = 0; i < s->n; i++) {
		if (s->window[i] == seq)
			return -IOTSEC_EREPLAY;
		if (s->window[i] < s->window[lowest])
			lowest = i;
	}
	if (s->n < REPLAY_WINDOW) {
		s->window[s->n++] = seq;
	} else {
		/* Older than everything the window holds: we can no longer tell it apart from a
		 * replay, so it is one (as in IPsec, a packet left of the window is dropped). */
		if (seq < s->window[lowest])
			return -IOTSEC_EREPLAY;
		s->floor = s->window[lowest];
		s->window[lowest] = seq;
	}
	if (ts > now + r->delta_t)
		ts = now + r->delta_t;
	if (ts > s->newest_ts)
		s->newest_ts = ts;
	return 0;
}
