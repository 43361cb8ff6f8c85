/* libFuzzer target: config_load_string() with iotsec's table on arbitrary text. Besides crashes
 * and leaks it checks the loader's promises: on success every value lies inside its row's range,
 * on failure the destination is untouched and the message names the input. */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
const char *__lsan_default_suppressions(void);

/* libconfig 1.5's grammar never frees a string token it discards at a syntax error (`a "x"`
 * leaks "x"; an empty string is allocated by the scanner itself). The leak is libconfig's,
 * bounded by the input, and not what this target looks for. The suppressions name only where
 * libconfig allocates string tokens, so a missing config_destroy() of ours would still show: the
 * settings themselves are allocated elsewhere. */
const char *__lsan_default_suppressions(void)
{
	return "leak:strbuf_append\nleak:libconfig_yylex\n";
}

static void check_values(const struct iotsec_config *cfg)
{
	for (size_t i = 0; i < iotsec_config_table_len; i++) {
		const struct config_def *def = &iotsec_config_table[i];
		const char *field = (const char *)cfg + def->offset;
		long long v;
		char *s;

		switch (def->type) {
		case CONFIG_STRING:
			memcpy(&s, field, sizeof(s));
			if (s == NULL)
				abort();
			v = (long long)strlen(s);
			break;
		case CONFIG_INT:
		case CONFIG_BOOL:
		default: {
			int n;
			memcpy(&n, field, sizeof(n));
			v = n;
			break;
		}
		}
		if (v < def->min || v > def->max)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct iotsec_config cfg, before;
	char err[CONFIG_ERR_MAX];
	char *text = malloc(size + 1);

	if (text == NULL)
		return 0;
	if (size > 0)
		memcpy(text, data, size);
	text[size] = '\0';
	memset(&cfg, 0x5a, sizeof(cfg));
	before = cfg;
	if (config_load_string(text, "fuzz.conf", &cfg, err, sizeof(err)) == 0) {
		check_values(&cfg);
		config_free(&cfg);
	} else if (memcmp(&cfg, &before, sizeof(cfg)) != 0 ||
		   strncmp(err, "fuzz.conf", strlen("fuzz.conf")) != 0) {
		abort();
	}
	free(text);
	return 0;
}
