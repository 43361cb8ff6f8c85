/* iotsec-certd: the certificate watchdog (SPEC 5.2). Checks this device's certificate, key, CA and
 * the CRL in force (device.crl, or a newer one received from a peer: crl.h) every certd.interval
 * seconds and whenever one of their files changes, and announces on its control socket when the
 * device falls out of the home or comes back. */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>

#include "certd.h"
#include "crl.h"
#include "daemon.h"
#include "file.h"
#include "log.h"

/* Editors and iotsec-pki replace files in several steps: check once the burst is over. */
#define CERTD_SETTLE_USEC (200 * 1000)

static struct certd certd;
static sd_event_source *settle;

static int on_settled(sd_event_source *s, uint64_t usec, void *ud)
{
	(void)s, (void)usec, (void)ud;
	certd_check(&certd);
	return 0;
}

static int on_file_change(sd_event_source *s, const struct inotify_event *ev, void *ud)
{
	(void)s, (void)ev, (void)ud;
	return sd_event_source_set_time_relative(settle, CERTD_SETTLE_USEC) < 0
		   ? 0
		   : sd_event_source_set_enabled(settle, SD_EVENT_ONESHOT);
}

static int on_tick(sd_event_source *s, uint64_t usec, void *ud)
{
	(void)s, (void)usec, (void)ud;
	certd_check(&certd);
	return 0;
}

static int verb_status(json_t *req, json_t **ret, void *ud)
{
	(void)req, (void)ud;
	*ret = certd_status(&certd);
	return *ret ? 0 : -ENOMEM;
}

static int verb_check(json_t *req, json_t **ret, void *ud)
{
	certd_check(&certd);
	return verb_status(req, ret, ud);
}

static const struct ctl_verb verbs[] = {
    {"status", 0, verb_status},
    {"check", CTL_MUTATES, verb_check},
    {NULL, 0, NULL},
};

#define WATCH_MASK                                                                                 \
	(IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_ATTRIB)

/* The directory of the CRL a peer sent (crl_received_path()) is pingd's, which may be made after
 * we start: until it exists, state_dir is watched for it. */
static char received_dir[PATH_MAX];
static sd_event_source *received_watch, *state_watch;

static bool watch_received(sd_event *e)
{
	if (received_watch == NULL && sd_event_add_inotify(e, &received_watch, received_dir,
							   WATCH_MASK, on_file_change, NULL) < 0)
		return false;
	state_watch = sd_event_source_disable_unref(state_watch);
	return true;
}

static int on_state_dir_change(sd_event_source *s, const struct inotify_event *ev, void *ud)
{
	if (watch_received(sd_event_source_get_event(s)))
		return on_file_change(s, ev, ud); /* it may hold a CRL already */
	return 0;
}

/* Watch the directories, not the files: a certificate is replaced by rename. */
static void watch_dirs(sd_event *e)
{
	const char *files[] = {certd.cfg->device.cert, certd.cfg->device.key, certd.cfg->device.ca,
			       certd.cfg->device.crl};
	char dirs[4][PATH_MAX], copy[PATH_MAX];
	int r;

	if (crl_received_path(certd.cfg->device.state_dir, copy, sizeof(copy)) == 0) {
		snprintf(received_dir, sizeof(received_dir), "%s", dirname(copy));
		if (!watch_received(e) &&
		    (r = sd_event_add_inotify(e, &state_watch, certd.cfg->device.state_dir,
					      IN_CREATE | IN_MOVED_TO, on_state_dir_change, NULL)) <
			0)
			log_warnx("not watching %s (%s): a received CRL is seen at the next check",
				  certd.cfg->device.state_dir, iotsec_strerror(r));
	}
	for (size_t i = 0; i < 4; i++) {
		bool seen = false;

		/* dirname() may return a pointer into its argument: never copy it onto itself. */
		snprintf(copy, sizeof(copy), "%s", files[i]);
		snprintf(dirs[i], sizeof(dirs[i]), "%s", dirname(copy));
		for (size_t j = 0; j < i; j++)
			seen = seen || strcmp(dirs[i], dirs[j]) == 0;
		if (seen)
			continue;
		r = sd_event_add_inotify(e, NULL, dirs[i], WATCH_MASK, on_file_change, NULL);
		if (r < 0)
			log_warnx("not watching %s (%s): changes are seen at the next check",
				  dirs[i], iotsec_strerror(r));
	}
}

int main(int argc, char **argv)
{
	struct iotsec_config cfg;
	sd_event *e = NULL;
	int r;

	daemon_setup(argc, argv, "iotsec-certd",
		     "watch this device's certificate and take it out of the home when it fails",
		     DAEMON_NEEDS_DEVICE, &cfg);
	certd.cfg = &cfg;

	if ((r = daemon_loop_new(&e)) < 0)
		fatalx("event loop: %s", iotsec_strerror(r));
	certd.loop = e;
	certd.ctl = daemon_ctl_server(e, &cfg, "certd", verbs, NULL, NULL);
	if ((r = sd_event_add_time_relative(e, &settle, CLOCK_MONOTONIC, CERTD_SETTLE_USEC, 0,
					    on_settled, NULL)) < 0 ||
	    (r = sd_event_source_set_enabled(settle, SD_EVENT_OFF)) < 0 ||
	    (r = daemon_add_periodic(e, (uint64_t)cfg.certd.interval * 1000000, on_tick, NULL,
				     NULL)) < 0)
		fatalx("timers: %s", iotsec_strerror(r));
	watch_dirs(e);

	certd_check(&certd);
	r = daemon_run(e, certd.state == CERTD_VALID ? "certificate valid" : certd.reason);

	sd_event_source_disable_unref(received_watch);
	sd_event_source_disable_unref(state_watch);
	ctl_server_free(certd.ctl);
	certd_release(&certd);
	sd_event_source_unref(settle);
	sd_event_unref(e);
	config_free(&cfg);
	/* DAEMON_EXIT_RESTART (a re-enrolment's new key) must reach systemd as it is: a plain 0
	 * is a clean stop, which Restart=on-failure leaves stopped, and the home with it. */
	return r < 0 ? 1 : r;
}
