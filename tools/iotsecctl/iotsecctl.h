/* iotsecctl's commands, one file each. Each takes argv from the command name on and returns the
 * exit code. */
#ifndef IOTSECCTL_H
#define IOTSECCTL_H

#include <stdbool.h>

#include <jansson.h>

#include "config.h"

#define CALL_TIMEOUT_MS 3000

/* Call verb (args borrowed, may be NULL) on one daemon ("keyd"): its reply, or NULL and a
 * reason in *ret_why ("not running", "refused: ...") when it does not answer or refuses;
 * *ret_denied (may be NULL) says whether it turned this user away. */
json_t *ask(const char *run_dir, const char *daemon, const char *verb, json_t *args,
	    const char **ret_why, bool *ret_denied);

int cmd_pool(int argc, char **argv);
int cmd_peers(const struct iotsec_config *cfg, int argc, char **argv);
int cmd_quarantine(const struct iotsec_config *cfg, int argc, char **argv);
int cmd_readings(const struct iotsec_config *cfg, int argc, char **argv);
int cmd_relay(const struct iotsec_config *cfg, int argc, char **argv);

#endif
