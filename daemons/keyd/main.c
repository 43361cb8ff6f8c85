/* iotsec-keyd: the key pool, rings and pairwise keys (SPEC 5.3). */

#include "daemon.h"
#include "keyd.h"
#include "log.h"

int main(int argc, char **argv)
{
	static struct keyd keyd;
	struct iotsec_config cfg;
	sd_event *e = NULL;
	int r;

	daemon_setup(argc, argv, "iotsec-keyd", "share the home's key pool and pairwise keys",
		     DAEMON_NEEDS_DEVICE, &cfg);
	if ((r = daemon_loop_new(&e)) < 0)
		fatalx("event loop: %s", iotsec_strerror(r));
	keyd.ctl = daemon_ctl_server(e, &cfg, "keyd", keyd_verbs, &keyd, cfg.keyd.clients);
	if ((r = keyd_start(&keyd, &cfg, e)) >= 0)
		r = daemon_run(e, "sharing keys");

	keyd_stop(&keyd);
	ctl_server_free(keyd.ctl);
	sd_event_unref(e);
	config_free(&cfg);
	return r < 0 ? 1 : r;
}
