/* envelope-open: open the envelopes on standard input (one a line) with envelope_open(), as the
 * relay (a RELAY_LOGIN) and a kit (an EMERGENCY_ACK) open what the doctor's page builds.
 *
 *   envelope-open CA.crt CRL.pem SELF.crt SELF.key
 *
 * For each line: "ok TYPE FROM ID BODY" (BODY compact JSON), or "refused REASON". The rules are
 * the ones those receivers apply: both types from a doctor, unicast to SELF; RELAY_LOGIN judged
 * by its age, EMERGENCY_ACK any time. Exit 0 when every line opened, 1 otherwise. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cert.h"
#include "crypto.h"
#include "envelope.h"
#include "log.h"

static const struct envelope_rule rules[] = {
    {"RELAY_LOGIN", CERT_ROLE_DOCTOR, true, false},
    {"EMERGENCY_ACK", CERT_ROLE_DOCTOR, true, true},
    {NULL, 0, false, false},
};

int main(int argc, char **argv)
{
	struct cert_store *store = NULL;
	struct envelope_ctx *ctx = NULL;
	X509 *self = NULL;
	EVP_PKEY *key = NULL;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int r, status = 0;

	if (argc != 5) {
		fputs("usage: envelope-open CA.crt CRL.pem SELF.crt SELF.key\n", stderr);
		return 2;
	}
	if ((r = cert_store_load(argv[1], argv[2], &store)) < 0 ||
	    (r = cert_load(argv[3], &self)) < 0 ||
	    (r = crypto_load_private_key(argv[4], &key)) < 0 ||
	    (r = envelope_ctx_new(store, self, key, rules, 60, &ctx)) < 0) {
		fprintf(stderr, "envelope-open: %s\n", iotsec_strerror(r));
		status = 2;
		goto out;
	}
	while ((n = getline(&line, &cap, stdin)) > 0) {
		struct envelope_msg m = {0};
		char sender[CERT_NAME_MAX] = "";
		char *body;

		if (line[n - 1] == '\n')
			line[--n] = '\0';
		if ((r = envelope_open(ctx, line, (size_t)n, &m, sender)) < 0) {
			printf("refused %s\n", iotsec_strerror(r));
			status = 1;
			continue;
		}
		body = json_dumps(m.body, JSON_COMPACT | JSON_SORT_KEYS);
		printf("ok %s %s %s %s\n", m.type, m.sender.name, m.id, body ? body : "?");
		free(body);
		envelope_msg_clear(&m);
	}
out:
	free(line);
	envelope_ctx_free(ctx);
	X509_free(self);
	EVP_PKEY_free(key);
	cert_store_free(store);
	return status;
}
