/* libFuzzer target: arbitrary bytes as JSON, given to every pingd body parser (ping.h). A body
 * that parses must come back identical through its build function, and a parse that fails must
 * leave its output as it was: anything else aborts. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fuzzlib.h"
#include "ping.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct ping_quarantine q, q2; /* 5 KiB each: kept off the stack */

/* Parse body into out (len bytes, poisoned first); on success build it again with build and
 * parse that into out2, which must equal out. */
#define ROUND_TRIP(parse_call, build_call, parse_again, out, out2)                                 \
	do {                                                                                       \
		json_t *again_ = NULL;                                                             \
		memset(&(out), 0xa5, sizeof(out));                                                 \
		if ((parse_call) == 0) {                                                           \
			memset(&(out2), 0xa5, sizeof(out2));                                       \
			if ((build_call) < 0 || (parse_again) < 0 ||                               \
			    memcmp(&(out), &(out2), sizeof(out)) != 0)                             \
				abort();                                                           \
			json_decref(again_);                                                       \
		} else {                                                                           \
			fuzz_untouched(&(out), sizeof(out));                                       \
		}                                                                                  \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *body = json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
	struct ping_hello h, h2;
	struct ping_suspect s, s2;
	struct ping_report r, r2;
	struct ping_malicious m, m2;
	char id[ENVELOPE_ID_MAX + 1], id2[ENVELOPE_ID_MAX + 1];
	char t[CERT_NAME_MAX], t2[CERT_NAME_MAX];
	uint64_t n, n2;
	const char *pem;
	size_t len;

	if (body == NULL)
		return 0;
	ROUND_TRIP(ping_hello_parse(body, &h), ping_hello_build(&h, &again_),
		   ping_hello_parse(again_, &h2), h, h2);
	ROUND_TRIP(ping_suspect_parse(body, &s), ping_suspect_build(&s, &again_),
		   ping_suspect_parse(again_, &s2), s, s2);
	ROUND_TRIP(ping_alive_parse(body, id), ping_alive_build(id, &again_),
		   ping_alive_parse(again_, id2), id, id2);
	ROUND_TRIP(ping_quarantine_parse(body, &q), ping_quarantine_build(&q, &again_),
		   ping_quarantine_parse(again_, &q2), q, q2);
	ROUND_TRIP(ping_req_parse(body, t), ping_req_build(t, &again_), ping_req_parse(again_, t2),
		   t, t2);
	ROUND_TRIP(ping_report_parse(body, &r), ping_report_build(&r, &again_),
		   ping_report_parse(again_, &r2), r, r2);
	ROUND_TRIP(ping_malicious_parse(body, &m), ping_malicious_build(&m, &again_),
		   ping_malicious_parse(again_, &m2), m, m2);
	ROUND_TRIP(ping_crl_get_parse(body, &n), ping_crl_get_build(n, &again_),
		   ping_crl_get_parse(again_, &n2), n, n2);

	if (ping_empty_parse(body) == 0 && json_object_size(body) != 0)
		abort();
	if (ping_crl_parse(body, &pem, &len) == 0) {
		json_t *again = NULL;
		const char *pem2;
		size_t len2;

		if (strlen(pem) != len || ping_crl_build(pem, &again) < 0 ||
		    ping_crl_parse(again, &pem2, &len2) < 0 || len2 != len ||
		    memcmp(pem, pem2, len) != 0)
			abort();
		json_decref(again);
	}
	json_decref(body);
	return 0;
}
