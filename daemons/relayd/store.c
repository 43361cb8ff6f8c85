/* The store's public functions (store.h): the checks every back end shares, then the back end's
 * own function through s->ops (store_impl.h). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"

#include "store_impl.h"

/* A doctor's name as a certificate carries it: not empty, and fits a grant's field. */
static bool doctor_ok(const char *doctor)
{
	return doctor != NULL && doctor[0] != '\0' &&
	       strnlen(doctor, CERT_NAME_MAX) < CERT_NAME_MAX;
}

int store_open(const struct store_opts *o, struct store **ret)
{
	if (o == NULL || ret == NULL)
		return -EINVAL;
	switch (o->kind) {
	case STORE_SQLITE:
		if (o->path == NULL || o->path[0] == '\0')
			return -EINVAL;
		return store_sqlite_open(o, ret);
	case STORE_POSTGRESQL:
		if (o->conninfo == NULL)
			return -EINVAL;
		return store_pg_open(o, ret);
	}
	return -EINVAL;
}

void store_close(struct store *s)
{
	if (s != NULL)
		s->ops->close(s);
}

int store_insert_each(struct store *s, const struct store_reading *rs, size_t n, size_t *ret_new,
		      enum store_outcome *ret_each)
{
	enum store_outcome *each = ret_each;
	int r;

	if (s == NULL || (rs == NULL && n > 0))
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (rs[i].data == NULL || rs[i].len == 0 || rs[i].seq > INT64_MAX)
			return -EINVAL;
	if (n == 0) {
		if (ret_new != NULL)
			*ret_new = 0;
		return 0;
	}
	if (each == NULL && (each = calloc(n, sizeof(*each))) == NULL)
		return -ENOMEM;
	r = s->ops->insert(s, rs, n, ret_new, each);
	if (each != ret_each)
		free(each);
	return r;
}

int store_insert(struct store *s, const struct store_reading *rs, size_t n, size_t *ret_new)
{
	return store_insert_each(s, rs, n, ret_new, NULL);
}

/* The label is fixed: the hash only keeps names out of a dump of the store (see store.h). */
int store_device_id(const char *home, const char *name, uint8_t ret[STORE_DEVICE_LEN])
{
	static const char label[] = "iotsec relay stream owner v1";
	uint8_t mac[CRYPTO_SHA256_LEN];
	char text[2 * CERT_NAME_MAX + 2];
	int n, r;

	if (home == NULL || name == NULL || ret == NULL || home[0] == '\0' || name[0] == '\0')
		return -EINVAL;
	n = snprintf(text, sizeof(text), "%s/%s", home, name);
	if (n < 0 || (size_t)n >= sizeof(text))
		return -EINVAL;
	if ((r = crypto_hmac_sha256(label, sizeof(label) - 1, text, (size_t)n, mac)) < 0)
		return r;
	memcpy(ret, mac, STORE_DEVICE_LEN);
	return 0;
}

int store_holds(struct store *s, const struct store_reading *r)
{
	if (s == NULL || r == NULL || r->data == NULL || r->len == 0 || r->seq > INT64_MAX)
		return -EINVAL;
	return s->ops->holds(s, r);
}

int store_grant_put(struct store *s, const struct store_grant *g)
{
	if (s == NULL || g == NULL || !doctor_ok(g->doctor))
		return -EINVAL;
	if (g->wrapped_len > STORE_WRAPPED_MAX)
		return -EMSGSIZE;
	return s->ops->grant_put(s, g);
}

int store_grants(struct store *s, const char *doctor,
		 int (*fn)(const struct store_grant *g, void *userdata), void *userdata)
{
	if (s == NULL || !doctor_ok(doctor) || fn == NULL)
		return -EINVAL;
	return s->ops->grants(s, doctor, fn, userdata);
}

int store_queue(struct store *s, const char *doctor, size_t max,
		int (*fn)(const struct store_reading *r, void *userdata), void *userdata)
{
	if (s == NULL || !doctor_ok(doctor) || fn == NULL)
		return -EINVAL;
	if (max == 0)
		return 0;
	return s->ops->queue(s, doctor, max, fn, userdata);
}

int store_delivered(struct store *s, const char *doctor, const int64_t *ids, size_t n,
		    size_t *ret_marked)
{
	if (s == NULL || !doctor_ok(doctor) || (ids == NULL && n > 0))
		return -EINVAL;
	if (n == 0) {
		if (ret_marked != NULL)
			*ret_marked = 0;
		return 0;
	}
	return s->ops->delivered(s, doctor, ids, n, ret_marked);
}

int store_history(struct store *s, const char *doctor, const uint8_t stream[STREAM_ID_LEN],
		  uint64_t after_seq, size_t max,
		  int (*fn)(const struct store_reading *r, void *userdata), void *userdata)
{
	if (s == NULL || !doctor_ok(doctor) || stream == NULL || fn == NULL)
		return -EINVAL;
	/* The grant is checked even when nothing could follow (-EACCES says whose it is not). */
	if (after_seq > INT64_MAX)
		after_seq = INT64_MAX;
	return s->ops->history(s, doctor, stream, after_seq, max, fn, userdata);
}

int store_expire(struct store *s, int64_t now_ms, int64_t retention_ms, uint64_t cap, size_t max,
		 size_t *ret_removed)
{
	if (s == NULL || now_ms < 0 || retention_ms < 0)
		return -EINVAL;
	if (max == 0) {
		if (ret_removed != NULL)
			*ret_removed = 0;
		return 0;
	}
	/* Both are >= 0, so the difference cannot overflow; a retention longer than the epoch
	 * keeps everything (received_ms >= 0). */
	return s->ops->expire(s, now_ms, now_ms - retention_ms, cap > INT64_MAX ? INT64_MAX : cap,
			      max, ret_removed);
}

int store_expired_of(struct store *s, const char *doctor,
		     int (*fn)(const struct store_expired *e, void *userdata), void *userdata)
{
	if (s == NULL || !doctor_ok(doctor) || fn == NULL)
		return -EINVAL;
	return s->ops->expired_of(s, doctor, fn, userdata);
}

int store_stats(struct store *s, struct store_stats *ret)
{
	if (s == NULL || ret == NULL)
		return -EINVAL;
	return s->ops->stats(s, ret);
}

int store_queues(struct store *s, int (*fn)(const struct store_queue *q, void *userdata),
		 void *userdata)
{
	if (s == NULL || fn == NULL)
		return -EINVAL;
	return s->ops->queues(s, fn, userdata);
}
