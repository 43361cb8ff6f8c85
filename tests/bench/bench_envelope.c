/* Envelope sign+verify per second: build, sign, parse and fully verify (chain and CRL through the
 * cache of verified certificates, role, signature, freshness, replay) one small message, as every
 * LAN message costs. Twice: with the sender's certificate in the message (a broadcast), and with
 * only its fingerprint (what peers that know each other send). Then the cost of refusing a forged
 * message that carries a real certificate: what a flood costs the receiver. The ceilings beside
 * them, from `openssl speed rsa2048` in the same run, are printed by tests/bench/run.sh. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../unit/fixture.h"
#include "clock.h"
#include "envelope.h"
#include "log.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Best of three one-second runs of seal then open. */
static int rate(struct envelope_ctx *tx, struct envelope_ctx *rx, json_t *body, bool with_cert,
		double *ret)
{
	double best = 0;

	for (int round = 0; round < 3; round++) {
		double t0 = now_s(), t;
		long n = 0;

		do {
			struct envelope_msg m;
			char *buf;
			size_t len;

			if (envelope_seal(tx, "BENCH", NULL, NULL, body, with_cert, &buf, &len) <
				0 ||
			    envelope_open(rx, buf, len, &m, NULL) < 0)
				return -1;
			envelope_msg_clear(&m);
			free(buf);
			n++;
		} while ((t = now_s() - t0) < 1.0);
		if (n / t > best)
			best = n / t;
	}
	*ret = best;
	return 0;
}

/* Best of three one-second runs refusing one forged message: a real certificate, a signature
 * that is not its key's (one base64 character of it changed). */
static int refusals(struct envelope_ctx *tx, struct envelope_ctx *rx, json_t *body, double *ret)
{
	struct envelope_msg m;
	char *buf = NULL, *sig;
	double best = 0;
	size_t len;

	if (envelope_seal(tx, "BENCH", NULL, NULL, body, true, &buf, &len) < 0 ||
	    (sig = strstr(buf, "\"sig\":\"")) == NULL)
		return -1;
	sig[7] = sig[7] == 'A' ? 'B' : 'A';
	for (int round = 0; round < 3; round++) {
		double t0 = now_s(), t;
		long n = 0;

		do {
			if (envelope_open(rx, buf, len, &m, NULL) != -IOTSEC_EBADSIG) {
				free(buf);
				return -1;
			}
			n++;
		} while ((t = now_s() - t0) < 1.0);
		if (n / t > best)
			best = n / t;
	}
	free(buf);
	*ret = best;
	return 0;
}

int main(void)
{
	static const struct envelope_rule rules[] = {{"BENCH", CERT_ROLES_ANY, false},
						     {NULL, 0, false}};
	struct envelope_ctx *tx = NULL, *rx = NULL;
	struct cert_store *store = NULL;
	struct fixture fx = {0};
	json_t *body = json_pack("{s:i, s:s}", "reading", 42, "unit", "bpm");
	double with_cert, fp_only, forged;
	X509 *cert = NULL;
	EVP_PKEY *key = NULL;

	fprintf(stderr, "bench_envelope: making a test home (RSA key generation)...\n");
	if (fixture_home(&fx) < 0)
		return 1;
	cert = fixture_cert(&fx, "pi1"), key = fixture_key(&fx, "pi1");
	if (cert_store_load(fx.ca_crt, fx.crl, &store) < 0 ||
	    envelope_ctx_new(store, cert, key, rules, 30, &tx) < 0 ||
	    envelope_ctx_new(store, cert, key, rules, 30, &rx) < 0)
		return 1;

	if (rate(tx, rx, body, true, &with_cert) < 0 || rate(tx, rx, body, false, &fp_only) < 0 ||
	    refusals(tx, rx, body, &forged) < 0)
		return 1;
	printf("envelope sign+verify with-cert: %.0f msgs/s\n", with_cert);
	printf("envelope sign+verify fp-only: %.0f msgs/s\n", fp_only);
	printf("envelope refusal forged-with-real-cert: %.0f msgs/s\n", forged);

	envelope_ctx_free(tx);
	envelope_ctx_free(rx);
	cert_store_free(store);
	X509_free(cert);
	EVP_PKEY_free(key);
	json_decref(body);
	fixture_remove(&fx);
	return 0;
}
