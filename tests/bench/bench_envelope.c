/* Envelope sign+verify per second: build, sign, parse and fully verify (chain and CRL through the
 * cache of verified certificates, role, signature, freshness, replay) one small message, as every
 * LAN message costs. Twice: with the sender's certificate in the message (a broadcast), and with
 * only its fingerprint (what peers that know each other send). Then the cost of refusing a forged
 * message that carries a real certificate: what a flood costs the receiver. The ceilings beside
 * them, from `openssl speed rsa2048` in the same run, are printed by tests/bench/run.sh. Last, the
 * cost of refusing a forged certificate never seen before (a flood where each is new). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../unit/fixture.h"
#include "cert.h"
#include "clock.h"
#include "encoding.h"
#include "envelope.h"
#include "log.h"
#include "timing.h"

/* Best of three one-second runs of seal then open. */
static int rate(struct envelope_ctx *tx, struct envelope_ctx *rx, json_t *body, bool with_cert,
		double *ret)
{
	double best = 0;

	for (int round = 0; round < 3; round++) {
		double t0 = bench_now(), t;
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
		} while ((t = bench_now() - t0) < 1.0);
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
		double t0 = bench_now(), t;
		long n = 0;

		do {
			if (envelope_open(rx, buf, len, &m, NULL) != -IOTSEC_EBADSIG) {
				free(buf);
				return -1;
			}
			n++;
		} while ((t = bench_now() - t0) < 1.0);
		if (n / t > best)
			best = n / t;
	}
	free(buf);
	*ret = best;
	return 0;
}

/* Best of three one-second runs refusing messages whose certificate is pi1's with one byte of
 * the CA's signature changed, a different byte each time: none is ever answered from memory. */
static int forgeries(struct envelope_ctx *tx, struct envelope_ctx *rx, json_t *body, X509 *cert,
		     double *ret)
{
	enum { N = 1024 };
	char *buf = NULL, *b64 = NULL, *at, *copy[N] = {0};
	uint8_t *der = NULL;
	struct envelope_msg m;
	double best = 0;
	size_t len, derlen;
	int r = -1;

	if (envelope_seal(tx, "BENCH", NULL, NULL, body, true, &buf, &len) < 0 ||
	    cert_to_der(cert, &der, &derlen) < 0 || (b64 = b64_encode(der, derlen)) == NULL ||
	    (at = strstr(buf, b64)) == NULL)
		goto out;
	for (int i = 0; i < N; i++) {
		char *f;

		der[derlen - 1 - i % 128] ^= (uint8_t)(1 + i / 128);
		f = b64_encode(der, derlen);
		der[derlen - 1 - i % 128] ^= (uint8_t)(1 + i / 128);
		if (f == NULL || (copy[i] = strdup(buf)) == NULL) {
			free(f);
			goto out;
		}
		memcpy(copy[i] + (at - buf), f, strlen(f)); /* the same length: the same DER size */
		free(f);
	}
	for (int round = 0; round < 3; round++) {
		double t0 = bench_now(), t;
		long n = 0;

		do {
			if (envelope_open(rx, copy[n % N], len, &m, NULL) != -IOTSEC_EUNKNOWNCA)
				goto out;
			n++;
		} while ((t = bench_now() - t0) < 1.0);
		if (n / t > best)
			best = n / t;
	}
	*ret = best;
	r = 0;
out:
	for (int i = 0; i < N; i++)
		free(copy[i]);
	free(buf), free(b64);
	OPENSSL_free(der);
	return r;
}

int main(void)
{
	static const struct envelope_rule rules[] = {{"BENCH", CERT_ROLES_ANY, false, false},
						     {NULL, 0, false, false}};
	struct envelope_ctx *tx = NULL, *rx = NULL;
	struct cert_store *store = NULL;
	struct fixture fx = {0};
	json_t *body = json_pack("{s:i, s:s}", "reading", 42, "unit", "bpm");
	double with_cert, fp_only, forged, new_certs;
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
	    refusals(tx, rx, body, &forged) < 0 || forgeries(tx, rx, body, cert, &new_certs) < 0)
		return 1;
	printf("envelope sign+verify with-cert: %.0f msgs/s\n", with_cert);
	printf("envelope sign+verify fp-only: %.0f msgs/s\n", fp_only);
	printf("envelope refusal forged-with-real-cert: %.0f msgs/s\n", forged);
	printf("envelope refusal forged-cert-each-new: %.0f msgs/s\n", new_certs);

	envelope_ctx_free(tx);
	envelope_ctx_free(rx);
	cert_store_free(store);
	X509_free(cert);
	EVP_PKEY_free(key);
	json_decref(body);
	fixture_remove(&fx);
	return 0;
}
