/* iotsec-dictd: the key dictionary (SPEC 5.4). The only process that reads or writes the key file;
 * other daemons reach keys through its control verbs, and only while certd says the device's
 * certificate is valid. */

#include "certd_client.h"
#include "daemon.h"
#include "dictd.h"
#include "log.h"

int main(int argc, char **argv)
{
	static struct dictd dictd;
	struct iotsec_config cfg;
	struct ctl_server *ctl = NULL;
	struct certd_client *certd = NULL;
	sd_event *e = NULL;
	int r;

	daemon_setup(argc, argv, "iotsec-dictd", "keep this device's keys, sealed, for the others",
		     DAEMON_NEEDS_DICTIONARY, &cfg);
	if (dictd_open(&dictd, &cfg) < 0)
		return 1;
	if ((r = daemon_loop_new(&e)) < 0)
		fatalx("event loop: %s", iotsec_strerror(r));
	ctl = daemon_ctl_server(e, &cfg, "dictd", dictd_verbs, &dictd, cfg.dictd.clients);
	if ((r = certd_client_new(e, cfg.device.run_dir, dictd_on_certd, &dictd, &certd)) < 0)
		fatalx("cannot follow iotsec-certd in %s: %s", cfg.device.run_dir,
		       iotsec_strerror(r));
	log_info("%zu records in %s; locked until iotsec-certd reports the certificate valid",
		 keydict_count(dictd.dict), cfg.dictd.path);
	r = daemon_run(e, "serving keys");

	certd_client_free(certd);
	ctl_server_free(ctl);
	dictd_close(&dictd);
	sd_event_unref(e);
	config_free(&cfg);
	return r < 0 ? 1 : 0;
}
