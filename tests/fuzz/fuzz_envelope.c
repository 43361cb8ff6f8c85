/* libFuzzer target: envelope_open() on arbitrary bytes, with a real home CA behind it. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "ca.h"
#include "cert.h"
#include "crypto.h"
#include "envelope.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Broadcast and unicast types, so the recipient and delivery id checks are reached too. */
static const struct envelope_rule rules[] = {
    {"IS_THERE_CONTROLLER", CERT_ROLES_ANY, false, false},
    {"I_AM_CONTROLLER", CERT_ROLE_CONTROLLER, false, false},
    {"KEYS", CERT_ROLES_ANY, true, false},
    {NULL, 0, false, false},
};
static struct envelope_ctx *ctx;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char dir[] = "/tmp/iotsec-fuzz-XXXXXX", ca[64], out[64], a[128], b[128];
	struct ca_enrol_req req = {.device = "pi1", .role = CERT_ROLE_NODE};
	struct cert_store *store = NULL;
	X509 *cert = NULL;
	EVP_PKEY *key = NULL;

	(void)argc, (void)argv;
	if (mkdtemp(dir) == NULL)
		abort();
	snprintf(ca, sizeof(ca), "%s/ca", dir);
	snprintf(out, sizeof(out), "%s/out", dir);
	req.not_before = time(NULL) - 60, req.not_after = time(NULL) + 86400, req.out_dir = out;
	snprintf(a, sizeof(a), "%s/ca.crt", ca);
	snprintf(b, sizeof(b), "%s/crl.pem", ca);
	if (ca_init(ca, "fuzzhome", 30) < 0 || ca_enrol(ca, &req) < 0 ||
	    cert_store_load(a, b, &store) < 0)
		abort();
	snprintf(a, sizeof(a), "%s/pi1.crt", out);
	snprintf(b, sizeof(b), "%s/pi1.key", out);
	if (cert_load(a, &cert) < 0 || crypto_load_private_key(b, &key) < 0 ||
	    envelope_ctx_new(store, cert, key, rules, 30, &ctx) < 0)
		abort();
	X509_free(cert);
	EVP_PKEY_free(key);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char sender[CERT_NAME_MAX];
	struct envelope_msg m;

	if (envelope_open(ctx, data, size, &m, sender) == 0)
		envelope_msg_clear(&m);
	return 0;
}
