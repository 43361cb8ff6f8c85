/* iotsec-electd: controller election among the home's devices (SPEC 5.1). */
#include <errno.h>

#include "daemon.h"
#include "electd.h"
#include "log.h"

static struct electd electd;

static int verb_status(json_t *req, json_t **ret, void *ud)
{
	(void)req, (void)ud;
	*ret = electd_status(&electd);
	return *ret ? 0 : -ENOMEM;
}

static const struct ctl_verb verbs[] = {
    {"status", 0, verb_status},
    {NULL, 0, NULL},
};

int main(int argc, char **argv)
{
	struct iotsec_config cfg;
	sd_event *e = NULL;
	int r;

	daemon_setup(argc, argv, "iotsec-electd", "elect the home's controller among its devices",
		     DAEMON_NEEDS_DEVICE, &cfg);
	if ((r = daemon_loop_new(&e)) < 0)
		fatalx("event loop: %s", iotsec_strerror(r));
	electd.ctl = daemon_ctl_server(e, &cfg, "electd", verbs, NULL, NULL);
	/* A failed start still goes through the clean-up: the socket goes with the daemon. */
	if ((r = electd_start(&electd, &cfg, e)) >= 0)
		r = daemon_run(e, "electing");

	electd_stop(&electd);
	ctl_server_free(electd.ctl);
	sd_event_unref(e);
	config_free(&cfg);
	return r < 0 ? 1 : r;
}
