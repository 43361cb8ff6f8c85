/* libFuzzer target: ctl_request_parse(), the server's decoding of a request line, on arbitrary
 * bytes. Every outcome must be a request or a refusal the server can send back. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *req = NULL, *refusal = NULL;
	const char *verb;
	char *line;
	int r;

	r = ctl_request_parse((const char *)data, size, &req, &refusal);
	if (r == 0) {
		verb = json_string_value(json_object_get(req, "verb"));
		if (refusal != NULL || verb == NULL ||
		    json_integer_value(json_object_get(req, "v")) != CTL_PROTO_VERSION)
			abort();
		json_decref(req);
		return 0;
	}
	if (req != NULL || refusal == NULL || ctl_reply_error(refusal) == NULL)
		abort();
	/* The refusal must encode (valid UTF-8 even when it quotes the input). */
	if ((line = json_dumps(refusal, JSON_COMPACT)) == NULL || strchr(line, '\n') != NULL)
		abort();
	free(line);
	json_decref(refusal);
	return 0;
}
