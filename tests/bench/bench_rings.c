/* Ring distribution (SPEC 5.3): the controller's work to give every device of a home its ring,
 * for homes of 10, 50 and 200 devices simulated in one process, and one device's work to take
 * its ring in.
 *
 * Controller, per device, exactly what keyd's ask() and deliver() do: pick the ring, wrap each of
 * its keys and the pool's group root to the device with RSA-OAEP (one RSA public operation per
 * key), and sign the envelopes that carry them: CONTROLLER_NEEDS_KEYS, one CLIENT_RING_KEYS per
 * ring_keys_per_msg() keys (the first beside the controller's certificate, so fewer keys) and
 * CLIENT_RING_END (one RSA private operation each), all addressed to the device under a delivery
 * id. Every device has the same RSA-2048 key here: the cost of an operation does not depend on
 * whose key it is. The network is left out: a home LAN moves these few kilobytes per device far
 * faster than RSA makes them.
 *
 * Device: verify those envelopes (RSA public) and unwrap every key (RSA private).
 *
 * Each line gives the time and how many RSA operations of each kind it did, so tests/bench/run.sh
 * can set it beside the time `openssl speed rsa2048` needs for the same operations in this run. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../unit/fixture.h"
#include "envelope.h"
#include "keypool.h"
#include "ring.h"
#include "timing.h"

#define TARGET	       0.9 /* keyd.target_permille's default */
#define DEVICE_SAMPLES 3   /* devices whose receiving side is timed */
#define ROUNDS	       3

struct sent {
	char *buf[2 + RING_SIZE_MAX];
	size_t len[2 + RING_SIZE_MAX], n;
};

static void sent_clear(struct sent *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->buf[i]);
	s->n = 0;
}

static int seal(struct envelope_ctx *ctx, const char *type, const char *id, json_t *body,
		bool with_cert, struct sent *out)
{
	int r = body ? envelope_seal(ctx, type, "pi1", id, body, with_cert, &out->buf[out->n],
				     &out->len[out->n])
		     : -1;

	json_decref(body);
	if (r == 0)
		out->n++;
	return r;
}

/* The controller's side for one device, as keyd's ask() and deliver(): its messages go to out.
 * cert_len is the DER length of the controller's certificate. */
static int give_ring(struct envelope_ctx *ctl, EVP_PKEY *pub, size_t cert_len,
		     const struct keypool_plan *plan, uint8_t (*pool)[CRYPTO_KEY_LEN],
		     struct sent *out)
{
	struct ring_needs needs = {.epoch = 1, .pool = plan->pool, .ring = plan->ring, .share = 1};
	struct ring_end end = {.epoch = 1, .count = plan->ring, .pool = plan->pool, .start = 1};
	uint32_t ring[RING_SIZE_MAX];
	struct ring_keys batch;
	size_t per = ring_keys_per_msg(pub, 0), first = ring_keys_per_msg(pub, cert_len), n;
	char ask_id[ENVELOPE_ID_MAX + 1], id[ENVELOPE_ID_MAX + 1];
	json_t *body = NULL;
	int r = ring_pick(plan->pool, plan->ring, ring);

	if (r == 0 && first == 0)
		r = -EMSGSIZE;
	if (r == 0 && (r = envelope_new_id(ask_id)) == 0 && (r = envelope_new_id(id)) == 0 &&
	    (r = ring_needs_build(&needs, &body)) == 0)
		r = seal(ctl, RING_MSG_NEEDS_KEYS, ask_id, body, true, out);
	for (size_t off = 0; r == 0 && off < plan->ring; off += n) {
		n = off == 0 ? first : per;
		batch.epoch = 1;
		batch.n = n = plan->ring - off < n ? plan->ring - off : n;
		for (size_t i = 0; i < batch.n; i++) {
			batch.index[i] = ring[off + i];
			memcpy(batch.key[i], pool[ring[off + i]], CRYPTO_KEY_LEN);
		}
		body = NULL;
		if ((r = ring_ring_keys_build(&batch, plan->pool, pub, &body)) == 0)
			r = seal(ctl, RING_MSG_RING_KEYS, id, body, off == 0, out);
	}
	ring_keys_wipe(&batch);
	body = NULL;
	if (r == 0)
		r = crypto_random(end.group, sizeof(end.group));
	if (r == 0 && (r = ring_end_build(&end, pub, &body)) == 0)
		r = seal(ctl, RING_MSG_RING_END, id, body, false, out);
	crypto_wipe(&end, sizeof(end));
	return r;
}

/* The device's side: verify every envelope and unwrap every key; the count must match. */
static int take_ring(struct envelope_ctx *dev, EVP_PKEY *priv, const struct keypool_plan *plan,
		     const struct sent *in)
{
	struct ring_keys keys = {0};
	uint32_t got = 0;

	for (size_t i = 0; i < in->n; i++) {
		struct envelope_msg m;
		int r = envelope_open(dev, in->buf[i], in->len[i], &m, NULL);

		if (r < 0)
			return r;
		if (strcmp(m.type, RING_MSG_RING_KEYS) == 0 &&
		    (r = ring_ring_keys_parse(m.body, priv, plan->pool, RING_KEYS_PER_MSG,
					      &keys)) == 0)
			got += (uint32_t)keys.n;
		/* The end carries the group root: one more unwrap. */
		if (strcmp(m.type, RING_MSG_RING_END) == 0) {
			struct ring_end end;

			r = ring_end_parse(m.body, priv, RING_SIZE_MAX, &end);
			crypto_wipe(&end, sizeof(end));
		}
		ring_keys_wipe(&keys);
		envelope_msg_clear(&m);
		if (r < 0)
			return r;
	}
	return got == plan->ring ? 0 : -1;
}

static int bench_home(struct envelope_ctx *ctl, size_t cert_len, struct envelope_ctx *dev,
		      EVP_PKEY *dev_key, unsigned devices)
{
	struct keypool_plan plan;
	uint8_t(*pool)[CRYPTO_KEY_LEN] = NULL;
	struct sent *out = calloc(devices, sizeof(*out));
	size_t msgs = 0;
	double t0, t, t_ctl = 0, t_dev = 0;
	int r = keypool_plan(devices, TARGET, KEYPOOL_RING_DEFAULT, 0, &plan);

	if (r == 0 && (out == NULL || (pool = calloc(plan.pool, CRYPTO_KEY_LEN)) == NULL))
		r = -ENOMEM;
	if (r == 0)
		r = crypto_random(pool, (size_t)plan.pool * CRYPTO_KEY_LEN);

	/* Best of ROUNDS: a shared machine only ever makes a run slower. */
	for (int round = 0; round < ROUNDS && r == 0; round++) {
		for (unsigned d = 0; d < devices; d++)
			sent_clear(&out[d]);
		t0 = bench_now();
		for (unsigned d = 0; d < devices && r == 0; d++)
			r = give_ring(ctl, dev_key, cert_len, &plan, pool, &out[d]);
		t = bench_now() - t0;
		t_ctl = round == 0 || t < t_ctl ? t : t_ctl;
	}
	if (r < 0)
		goto out;
	for (unsigned d = 0; d < devices; d++)
		msgs += out[d].n;
	printf("rings controller %u devices: %.3f s  pool %u ring %u  rsa_public %lu rsa_private "
	       "%zu\n",
	       devices, t_ctl, plan.pool, plan.ring, (unsigned long)devices * (plan.ring + 1),
	       msgs);

	/* A device takes only its own ring, and only once (a second time would be a replay):
	 * the best of DEVICE_SAMPLES devices. */
	for (unsigned d = 0; d < DEVICE_SAMPLES && d < devices && r == 0; d++) {
		t0 = bench_now();
		r = take_ring(dev, dev_key, &plan, &out[d]);
		t = bench_now() - t0;
		t_dev = d == 0 || t < t_dev ? t : t_dev;
	}
	if (r == 0 && devices == 10)
		printf("rings device (one ring): %.4f s  rsa_public %zu rsa_private %u\n", t_dev,
		       out[0].n, plan.ring + 1);
out:
	for (unsigned d = 0; out && d < devices; d++)
		sent_clear(&out[d]);
	if (pool)
		crypto_wipe(pool, (size_t)plan.pool * CRYPTO_KEY_LEN);
	free(pool);
	free(out);
	return r < 0 ? -1 : 0;
}

int main(void)
{
	static const struct envelope_rule rules[] = {
	    {RING_MSG_NEEDS_KEYS, CERT_ROLE_CONTROLLER, true, false},
	    {RING_MSG_RING_KEYS, CERT_ROLE_CONTROLLER, true, false},
	    {RING_MSG_RING_END, CERT_ROLE_CONTROLLER, true, false},
	    {NULL, 0, false, false}};
	static const unsigned sizes[] = {10, 50, 200};
	struct envelope_ctx *ctl = NULL, *dev = NULL;
	struct cert_store *store = NULL;
	struct fixture fx = {0};
	X509 *ctl_cert = NULL, *dev_cert = NULL;
	EVP_PKEY *ctl_key = NULL, *dev_key = NULL;
	size_t cert_len = 0;
	int r = -1;

	fprintf(stderr, "bench_rings: making a test home (RSA key generation)...\n");
	if (fixture_home(&fx) < 0)
		goto out;
	ctl_cert = fixture_cert(&fx, "ctl1"), ctl_key = fixture_key(&fx, "ctl1");
	dev_cert = fixture_cert(&fx, "pi1"), dev_key = fixture_key(&fx, "pi1");
	if (cert_store_load(fx.ca_crt, fx.crl, &store) < 0 ||
	    envelope_ctx_new(store, ctl_cert, ctl_key, rules, 30, &ctl) < 0 ||
	    envelope_ctx_new(store, dev_cert, dev_key, rules, 30, &dev) < 0)
		goto out;
	r = (cert_len = (size_t)i2d_X509(ctl_cert, NULL)) > 0 ? 0 : -1;
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]) && r == 0; i++) {
		fprintf(stderr, "bench_rings: %u devices...\n", sizes[i]);
		r = bench_home(ctl, cert_len, dev, dev_key, sizes[i]);
	}
out:
	if (r < 0)
		fprintf(stderr, "bench_rings: failed\n");
	envelope_ctx_free(ctl);
	envelope_ctx_free(dev);
	cert_store_free(store);
	X509_free(ctl_cert);
	X509_free(dev_cert);
	EVP_PKEY_free(ctl_key);
	EVP_PKEY_free(dev_key);
	fixture_remove(&fx);
	return r < 0 ? 1 : 0;
}
