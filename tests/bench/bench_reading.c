/* Sealed readings (reading.h) beside the ceiling measured in the same binary: a bare EVP
 * AES-256-GCM loop, cipher fetched once and contexts reused, doing the same seal (or open) of
 * 64 bytes under the same length of AAD. reading_seal adds the header, the random nonce and the
 * checks; reading_open adds the parse, and the guard its freshness and replay checks. Then
 * what moving the stream key costs: one stream_advance() (an HKDF and a new AES key schedule)
 * times the advances of an hour at the shortest interval the configuration allows
 * (stream.interval_s = 1), as a share of the readings the same hour could seal. Each figure is
 * the best of 3 runs of about a second. Never fails on speed: only a broken operation makes it
 * exit non-zero. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>

#include "log.h"
#include "reading.h"
#include "timing.h"

#define PLAIN_LEN    64
#define BATCH	     256 /* operations between clock reads */
#define INTERVAL_MIN 1	 /* seconds: the least stream.interval_s */
#define EPOCH	     10
#define NOW_MS	     1767225600000LL

struct ctx {
	struct stream *s;
	struct reading_guard *g;
	struct reading_header h;
	char plain[PLAIN_LEN + 1];
	uint8_t sealed[READING_MAX];
	size_t sealed_len, hlen;
	/* the ceiling's own state */
	EVP_CIPHER_CTX *enc, *dec;
	uint8_t nonce[CRYPTO_NONCE_LEN], open_nonce[CRYPTO_NONCE_LEN],
	    bare_sealed[PLAIN_LEN + CRYPTO_TAG_LEN];
};

static int seal(long batch, uint64_t *ctr, void *arg)
{
	struct ctx *c = arg;
	uint8_t out[READING_MAX];
	size_t len;

	for (long i = 0; i < batch; i++) {
		c->h.seq = ++*ctr;
		if (reading_seal(c->s, &c->h, c->plain, PLAIN_LEN, out, sizeof(out), &len) < 0)
			return -1;
	}
	return 0;
}

/* The same seal written straight against EVP: the header (the AAD) as it is, a counter nonce. */
static int bare_seal(long batch, uint64_t *ctr, void *arg)
{
	struct ctx *c = arg;
	uint8_t out[PLAIN_LEN + CRYPTO_TAG_LEN];
	OSSL_PARAM get[2];
	int n;

	get[0] = OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, out + PLAIN_LEN,
						   CRYPTO_TAG_LEN);
	get[1] = OSSL_PARAM_construct_end();
	for (long i = 0; i < batch; i++) {
		uint64_t n64 = ++*ctr;

		memcpy(c->nonce + 4, &n64, sizeof(n64));
		if (EVP_EncryptInit_ex2(c->enc, NULL, NULL, c->nonce, NULL) != 1 ||
		    EVP_EncryptUpdate(c->enc, NULL, &n, c->sealed, (int)c->hlen) != 1 ||
		    EVP_EncryptUpdate(c->enc, out, &n, (const uint8_t *)c->plain, PLAIN_LEN) != 1 ||
		    EVP_EncryptFinal_ex(c->enc, out + n, &n) != 1 ||
		    EVP_CIPHER_CTX_get_params(c->enc, get) != 1)
			return -1;
	}
	return 0;
}

/* Open one reading and pass it through the guard as a new seq each time (the guard sees only
 * the header; the bytes opened are the same work whatever the seq). */
static int open_guard(long batch, uint64_t *ctr, void *arg)
{
	struct ctx *c = arg;
	struct reading_header h;
	uint8_t pt[READING_PLAIN_MAX];
	size_t len;

	for (long i = 0; i < batch; i++) {
		if (reading_open(c->s, c->sealed, c->sealed_len, &h, pt, &len) < 0)
			return -1;
		h.seq = ++*ctr;
		if (reading_guard_check(c->g, &h, NOW_MS) < 0)
			return -1;
	}
	return 0;
}

static int bare_open(long batch, uint64_t *ctr, void *arg)
{
	struct ctx *c = arg;
	uint8_t pt[PLAIN_LEN];
	OSSL_PARAM set[2];
	int n;

	set[0] = OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG,
						   c->bare_sealed + PLAIN_LEN, CRYPTO_TAG_LEN);
	set[1] = OSSL_PARAM_construct_end();
	for (long i = 0; i < batch; i++, (*ctr)++)
		if (EVP_DecryptInit_ex2(c->dec, NULL, NULL, c->open_nonce, NULL) != 1 ||
		    EVP_DecryptUpdate(c->dec, NULL, &n, c->sealed, (int)c->hlen) != 1 ||
		    EVP_DecryptUpdate(c->dec, pt, &n, c->bare_sealed, PLAIN_LEN) != 1 ||
		    EVP_CIPHER_CTX_set_params(c->dec, set) != 1 ||
		    EVP_DecryptFinal_ex(c->dec, pt + n, &n) != 1)
			return -1;
	return 0;
}

static int advance(long batch, uint64_t *ctr, void *arg)
{
	struct stream *s = arg;

	for (long i = 0; i < batch; i++, (*ctr)++)
		if (stream_advance(s, stream_current(s) + 1) < 0)
			return -1;
	return 0;
}

static int setup(struct ctx *c, EVP_CIPHER *gcm)
{
	const struct reading_value v = {"living_room_temperature_2nd", 21.5, "C", false, 0};
	uint8_t root[CRYPTO_KEY_LEN];
	size_t len = 0;
	int n, r = -1;

	c->h = (struct reading_header){
	    .kind = READING_GROUP, .epoch = EPOCH, .seq = 1, .time_ms = NOW_MS};
	memcpy(c->h.device, "kitchen-pi", sizeof("kitchen-pi"));
	if (crypto_random(root, sizeof(root)) < 0 ||
	    crypto_random(c->nonce, sizeof(c->nonce)) < 0 || stream_from_root(root, 1, &c->s) < 0 ||
	    stream_advance(c->s, EPOCH) < 0 || reading_guard_new(300000, &c->g) < 0 ||
	    reading_value_build(&v, c->plain, sizeof(c->plain), &len) < 0 || len != PLAIN_LEN ||
	    reading_seal(c->s, &c->h, c->plain, PLAIN_LEN, c->sealed, sizeof(c->sealed),
			 &c->sealed_len) < 0 ||
	    reading_header_parse(c->sealed, c->sealed_len, &c->h, &c->hlen) < 0)
		goto out;
	/* The ceiling under the same key, and one bare-sealed message for its open loop. */
	if ((c->enc = EVP_CIPHER_CTX_new()) == NULL || (c->dec = EVP_CIPHER_CTX_new()) == NULL ||
	    EVP_EncryptInit_ex2(c->enc, gcm, stream_key(c->s, false), NULL, NULL) != 1 ||
	    EVP_DecryptInit_ex2(c->dec, gcm, stream_key(c->s, false), NULL, NULL) != 1)
		goto out;
	{
		OSSL_PARAM get[2] = {
		    OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG,
						      c->bare_sealed + PLAIN_LEN, CRYPTO_TAG_LEN),
		    OSSL_PARAM_construct_end(),
		};

		memcpy(c->open_nonce, c->nonce, sizeof(c->nonce));
		if (EVP_EncryptInit_ex2(c->enc, NULL, NULL, c->open_nonce, NULL) != 1 ||
		    EVP_EncryptUpdate(c->enc, NULL, &n, c->sealed, (int)c->hlen) != 1 ||
		    EVP_EncryptUpdate(c->enc, c->bare_sealed, &n, (const uint8_t *)c->plain,
				      PLAIN_LEN) != 1 ||
		    EVP_EncryptFinal_ex(c->enc, c->bare_sealed + n, &n) != 1 ||
		    EVP_CIPHER_CTX_get_params(c->enc, get) != 1)
			goto out;
	}
	r = 0;
out:
	crypto_wipe(root, sizeof(root));
	return r;
}

int main(void)
{
	struct ctx c = {0};
	struct stream *adv = NULL;
	EVP_CIPHER *gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
	uint8_t root[CRYPTO_KEY_LEN] = {1};
	double s, sc, o, oc, a, per_hour, lost;
	int rc = 1;

	if (gcm == NULL || setup(&c, gcm) < 0 || stream_from_root(root, 1, &adv) < 0) {
		fprintf(stderr, "bench_reading: setup failed\n");
		goto out;
	}
	/* Warm both paths (page faults, CPU frequency) before timing either. */
	if (bench_run(seal, &c, BATCH, 0.2) < 0 || bench_run(bare_seal, &c, BATCH, 0.2) < 0 ||
	    bench_best_of(seal, &c, &s, bare_seal, &c, &sc, BATCH) < 0 ||
	    bench_best_of(open_guard, &c, &o, bare_open, &c, &oc, BATCH) < 0 ||
	    bench_best_of(advance, adv, &a, NULL, NULL, NULL, 64) < 0) {
		fprintf(stderr, "bench_reading: an operation failed\n");
		goto out;
	}
	printf(
	    "reading seal 64B: %.0f readings/s  ceiling (bare EVP AES-256-GCM seal, ctx reused): "
	    "%.0f/s  ratio %.0f%%\n",
	    s, sc, sc > 0 ? 100 * s / sc : 0);
	printf("reading open+guard 64B: %.0f readings/s  ceiling (bare EVP AES-256-GCM open, ctx "
	       "reused): %.0f/s  ratio %.0f%%\n",
	       o, oc, oc > 0 ? 100 * o / oc : 0);
	/* An hour of advances at the shortest interval, in readings the same time would seal,
	 * out of the readings an hour of sealing gives. */
	per_hour = 3600.0 / INTERVAL_MIN;
	lost = per_hour / a * s;
	printf("stream advance: %.2f us each; %.0f advances/hour (interval %d s) = %.0f readings' "
	       "worth of sealing of %.0f/hour: %.4f%% (goal < 1%%)\n",
	       1e6 / a, per_hour, INTERVAL_MIN, lost, s * 3600, 100 * lost / (s * 3600));
	rc = 0;
out:
	stream_free(c.s);
	stream_free(adv);
	reading_guard_free(c.g);
	EVP_CIPHER_CTX_free(c.enc);
	EVP_CIPHER_CTX_free(c.dec);
	EVP_CIPHER_free(gcm);
	return rc;
}
