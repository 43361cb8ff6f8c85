/* iotsec-relayd: the cloud relay that keeps a home's doctor readings, sealed, for doctors who are
 * offline (SPEC 9). */

#include "daemon.h"
#include "log.h"
#include "relayd.h"

int main(int argc, char **argv)
{
	static struct relayd relayd;
	struct iotsec_config cfg;
	sd_event *e = NULL;
	int r;

	daemon_setup(argc, argv, "iotsec-relayd",
		     "keep a home's sealed doctor readings for its doctors",
		     DAEMON_NEEDS_DEVICE | DAEMON_NEEDS_RELAY, &cfg);
	if ((r = daemon_loop_new(&e)) < 0)
		fatalx("event loop: %s", iotsec_strerror(r));
	relayd.ctl = daemon_ctl_server(e, &cfg, "relayd", relayd_verbs, &relayd, NULL);
	if ((r = relayd_start(&relayd, &cfg, e)) >= 0)
		r = daemon_run(e, "relaying readings");

	relayd_stop(&relayd);
	ctl_server_free(relayd.ctl);
	sd_event_unref(e);
	config_free(&cfg);
	return r < 0 ? 1 : r;
}
