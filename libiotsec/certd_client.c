#include "certd_client.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cert.h"
#include "ctl.h"
#include "daemon.h"
#include "log.h"
#include "proto.h"

struct certd_client {
	sd_event *loop;
	struct ctl_peer *peer;
	char cert_path[PATH_MAX]; /* "" unless certd_client_signs_with() */
	char serial[sizeof(((struct cert_info *)NULL)->serial)];
	char vouched[sizeof(((struct cert_info *)NULL)->serial)]; /* while waiting, certd's */
	sd_event_source *again;					  /* looks at the disk again */
	bool member;
	char why[256];
	certd_client_fn fn;
	void *userdata;
};

static void set(struct certd_client *c, bool member, const char *why)
{
	if (c->member == member && strcmp(c->why, why) == 0)
		return;
	c->member = member;
	snprintf(c->why, sizeof(c->why), "%s", why);
	c->fn(member, c->why, c->userdata);
}

static int look_again(sd_event_source *s, uint64_t usec, void *userdata);

/* certd vouches for the certificate with serial theirs, not ours. If that is the one on disk
 * now, it was replaced under us (re-enrolment, renewal): the key and role may have changed with
 * it, and a fresh start is the one way every daemon takes all of that up alike. Otherwise certd
 * has not looked at the file we loaded yet (it will say so at its next check), or the file was
 * caught changing: look again every CERTD_CLIENT_RETRY_MS until certd's next word, which a file
 * settling back to what certd saw would never bring. */
static void other_certificate(struct certd_client *c, const char *theirs)
{
	struct cert_info disk;
	X509 *x = NULL;
	bool replaced = cert_load(c->cert_path, &x) == 0 && cert_info_get(x, &disk) == 0 &&
			strcmp(disk.serial, theirs) == 0;

	X509_free(x);
	if (!replaced) {
		set(c, false, "iotsec-certd has not checked our certificate yet");
		snprintf(c->vouched, sizeof(c->vouched), "%s", theirs);
		if (c->again == NULL &&
		    sd_event_add_time_relative(c->loop, &c->again, CLOCK_MONOTONIC, 0, 0,
					       look_again, c) < 0) {
			log_warnx("cannot look at %s again: out of memory", c->cert_path);
			return;
		}
		sd_event_source_set_time_relative(c->again, CERTD_CLIENT_RETRY_MS * 1000ULL);
		sd_event_source_set_enabled(c->again, SD_EVENT_ONESHOT);
		return;
	}
	log_notice("%s was replaced (serial %s, we run with %s): exiting to start with it",
		   c->cert_path, theirs, c->serial);
	set(c, false, "certificate replaced");
	sd_event_exit(c->loop, DAEMON_EXIT_RESTART);
}

static int look_again(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct certd_client *c = userdata;

	char vouched[sizeof(c->vouched)];

	(void)s, (void)usec;
	/* A copy: other_certificate() writes c->vouched. */
	memcpy(vouched, c->vouched, sizeof(vouched));
	if (vouched[0] != '\0')
		other_certificate(c, vouched);
	return 0;
}

/* A "status" snapshot, certificate-valid or certificate-invalid (all carry "certificate"), or
 * the connection going away. */
static void on_event(json_t *ev, void *userdata)
{
	struct certd_client *c = userdata;
	const char *name = json_string_value(json_object_get(ev, "event"));
	const char *cert = json_string_value(json_object_get(ev, "certificate"));
	const char *reason = json_string_value(json_object_get(ev, "reason"));
	const char *serial = json_string_value(json_object_get(ev, "serial"));
	char why[sizeof(c->why)];

	/* certd's latest word replaces whatever we were waiting to see on disk. */
	c->vouched[0] = '\0';
	sd_event_source_set_enabled(c->again, SD_EVENT_OFF);
	if (name && strcmp(name, "disconnected") == 0) {
		set(c, false, "iotsec-certd stopped answering");
	} else if (cert && strcmp(cert, PROTO_CERT_VALID) == 0) {
		if (c->cert_path[0] != '\0' && serial && strcmp(serial, c->serial) != 0)
			other_certificate(c, serial);
		else
			set(c, true, "certificate valid");
	} else if (cert && strcmp(cert, PROTO_CERT_INVALID) == 0) {
		snprintf(why, sizeof(why), "certificate invalid%s%s", reason ? ": " : "",
			 reason ? reason : "");
		set(c, false, why);
	} else if (cert) {
		set(c, false, "iotsec-certd has not checked the certificate yet");
	}
}

int certd_client_new(sd_event *e, const char *run_dir, certd_client_fn fn, void *userdata,
		     struct certd_client **ret)
{
	static const char *const events[] = {PROTO_EV_CERT_INVALID, PROTO_EV_CERT_VALID, NULL};
	struct certd_client *c;
	char path[PATH_MAX];
	int r;

	if (fn == NULL)
		return -EINVAL;
	if ((r = daemon_socket_path(run_dir, "certd", path, sizeof(path))) < 0)
		return r;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return -ENOMEM;
	c->loop = e, c->fn = fn, c->userdata = userdata;
	snprintf(c->why, sizeof(c->why), "waiting for iotsec-certd");
	if ((r = ctl_peer_new(e, path, CERTD_CLIENT_RETRY_MS, events, on_event, c, &c->peer)) < 0) {
		free(c);
		return r;
	}
	*ret = c;
	return 0;
}

int certd_client_signs_with(struct certd_client *c, const char *cert_path, const char *serial)
{
	if (cert_path == NULL || serial == NULL ||
	    snprintf(c->cert_path, sizeof(c->cert_path), "%s", cert_path) >=
		(int)sizeof(c->cert_path) ||
	    snprintf(c->serial, sizeof(c->serial), "%s", serial) >= (int)sizeof(c->serial)) {
		c->cert_path[0] = '\0';
		return -EINVAL;
	}
	return 0;
}

void certd_client_free(struct certd_client *c)
{
	if (c == NULL)
		return;
	ctl_peer_free(c->peer);
	sd_event_source_disable_unref(c->again);
	free(c);
}

bool certd_client_member(const struct certd_client *c)
{
	return c->member;
}

const char *certd_client_why(const struct certd_client *c)
{
	return c->why;
}
