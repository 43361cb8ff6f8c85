/* libFuzzer target: crl_check_newer() on arbitrary bytes, as a peer's CRL, against a real home
 * CA and its CRL. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "ca.h"
#include "cert.h"
#include "crl.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct cert_store *store;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char dir[] = "/tmp/iotsec-fuzz-XXXXXX", ca[64], a[128], b[128];

	(void)argc, (void)argv;
	if (mkdtemp(dir) == NULL)
		abort();
	snprintf(ca, sizeof(ca), "%s/ca", dir);
	snprintf(a, sizeof(a), "%s/ca.crt", ca);
	snprintf(b, sizeof(b), "%s/crl.pem", ca);
	if (ca_init(ca, "fuzzhome", 30) < 0 || cert_store_load(a, b, &store) < 0)
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t number;

	(void)crl_check_newer(store, (const char *)data, size, &number);
	return 0;
}
