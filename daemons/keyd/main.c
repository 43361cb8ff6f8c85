/* iotsec-keyd: the key pool, rings and pairwise keys (SPEC 5.3). */
#include <limits.h>

#include "daemon.h"
#include "keyd.h"
#include "log.h"

int main(int argc, char **argv)
{
	static struct keyd keyd;
	struct iotsec_config cfg;
	char path[PATH_MAX];
	sd_event *e = NULL;
	int r;

	daemon_setup(argc, argv, "iotsec-keyd", "share the home's key pool and pairwise keys",
		     DAEMON_NEEDS_DEVICE, &cfg);
	if ((r = daemon_loop_new(&e)) < 0)
		fatalx("event loop: %s", iotsec_strerror(r));
	if ((r = daemon_socket_path(cfg.device.run_dir, "keyd", path, sizeof(path))) < 0 ||
	    (r = ctl_server_new(e, path, keyd_verbs, &keyd, &keyd.ctl)) < 0)
		fatalx("control socket %s: %s", path, iotsec_strerror(r));
	if ((r = keyd_start(&keyd, &cfg, e)) >= 0)
		r = daemon_run(e, "sharing keys");

	keyd_stop(&keyd);
	ctl_server_free(keyd.ctl);
	sd_event_unref(e);
	config_free(&cfg);
	return r < 0 ? 1 : r;
}
