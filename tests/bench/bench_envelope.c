/* Envelope sign+verify per second: build, sign, parse and fully verify (chain, CRL, role,
 * signature, freshness, replay) one small message, as every LAN message costs. The ceiling beside
 * it, from `openssl speed rsa2048` in the same run, is printed by tests/bench/run.sh. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ca.h"
#include "cert.h"
#include "clock.h"
#include "crypto.h"
#include "envelope.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(void)
{
	static const struct envelope_rule rules[] = {{"BENCH", CERT_ROLES_ANY}, {NULL, 0}};
	char dir[] = "/tmp/iotsec-bench-XXXXXX", ca[64], out[64], path[128], cmd[160];
	struct ca_enrol_req req = {.device = "pi1", .role = CERT_ROLE_NODE};
	struct envelope_ctx *tx = NULL, *rx = NULL;
	struct cert_store *store = NULL;
	json_t *body = json_pack("{s:i, s:s}", "reading", 42, "unit", "bpm");
	double best = 0;
	X509 *cert = NULL;
	EVP_PKEY *key = NULL;
	int64_t fake = time(NULL);

	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(ca, sizeof(ca), "%s/ca", dir);
	snprintf(out, sizeof(out), "%s/out", dir);
	req.not_before = fake - 60, req.not_after = fake + 86400, req.out_dir = out;
	fprintf(stderr, "bench_envelope: making a test home (RSA key generation)...\n");
	if (ca_init(ca, "bench", 30) < 0 || ca_enrol(ca, &req) < 0)
		return 1;
	snprintf(path, sizeof(path), "%s/pi1.crt", out);
	if (cert_load(path, &cert) < 0)
		return 1;
	snprintf(path, sizeof(path), "%s/pi1.key", out);
	if (crypto_load_private_key(path, &key) < 0)
		return 1;
	snprintf(path, sizeof(path), "%s/ca.crt", ca);
	snprintf(cmd, sizeof(cmd), "%s/crl.pem", ca);
	if (cert_store_load(path, cmd, &store) < 0 ||
	    envelope_ctx_new(store, cert, key, rules, 30, &tx) < 0 ||
	    envelope_ctx_new(store, cert, key, rules, 30, &rx) < 0)
		return 1;

	for (int round = 0; round < 3; round++) {
		double t0 = now_s(), t;
		long n = 0;

		do {
			struct envelope_msg m;
			char *buf;
			size_t len;

			/* Keep the replay cache from filling: move time on past the window. */
			if (n % 2000 == 0)
				clock_set_fake(fake += 31);
			if (envelope_seal(tx, "BENCH", body, true, &buf, &len) < 0 ||
			    envelope_open(rx, buf, len, &m) < 0)
				return 1;
			envelope_msg_clear(&m);
			free(buf);
			n++;
		} while ((t = now_s() - t0) < 1.0);
		if (n / t > best)
			best = n / t;
	}
	printf("envelope sign+verify: %.0f msgs/s\n", best);

	envelope_ctx_free(tx);
	envelope_ctx_free(rx);
	cert_store_free(store);
	X509_free(cert);
	EVP_PKEY_free(key);
	json_decref(body);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : 1;
}
