/* iotsec-pingd: missing, revoked and malicious devices (SPEC 5.5, 7). */

#include "daemon.h"
#include "log.h"
#include "pingd.h"

int main(int argc, char **argv)
{
	static struct pingd pingd;
	struct iotsec_config cfg;
	sd_event *e = NULL;
	int r;

	daemon_setup(argc, argv, "iotsec-pingd", "find missing, revoked and malicious devices",
		     DAEMON_NEEDS_DEVICE, &cfg);
	if ((r = daemon_loop_new(&e)) < 0)
		fatalx("event loop: %s", iotsec_strerror(r));
	pingd.ctl = daemon_ctl_server(e, &cfg, "pingd", pingd_verbs, &pingd, NULL);
	if ((r = pingd_start(&pingd, &cfg, e)) >= 0)
		r = daemon_run(e, "watching the home");

	pingd_stop(&pingd);
	ctl_server_free(pingd.ctl);
	sd_event_unref(e);
	config_free(&cfg);
	return r < 0 ? 1 : r;
}
