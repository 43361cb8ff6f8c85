/* iotsec-sensord: sensor readings over MQTT, sealed end to end (SPEC 5.6, 8). */

#include "daemon.h"
#include "log.h"
#include "sensord.h"

int main(int argc, char **argv)
{
	static struct sensord sensord;
	struct iotsec_config cfg;
	sd_event *e = NULL;
	int r;

	daemon_setup(argc, argv, "iotsec-sensord", "publish sealed sensor readings over MQTT",
		     DAEMON_NEEDS_DEVICE | DAEMON_NEEDS_ALARM, &cfg);
	if ((r = daemon_loop_new(&e)) < 0)
		fatalx("event loop: %s", iotsec_strerror(r));
	sensord.ctl = daemon_ctl_server(e, &cfg, "sensord", sensord_verbs, &sensord, NULL);
	if ((r = sensord_start(&sensord, &cfg, e)) >= 0)
		r = daemon_run(e, "publishing readings");

	sensord_stop(&sensord);
	ctl_server_free(sensord.ctl);
	sd_event_unref(e);
	config_free(&cfg);
	return r < 0 ? 1 : r;
}
