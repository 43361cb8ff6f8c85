#include "certd_client.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "daemon.h"
#include "proto.h"

struct certd_client {
	struct ctl_peer *peer;
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

/* A "status" snapshot, certificate-valid or certificate-invalid (all carry "certificate"), or
 * the connection going away. */
static void on_event(json_t *ev, void *userdata)
{
	struct certd_client *c = userdata;
	const char *name = json_string_value(json_object_get(ev, "event"));
	const char *cert = json_string_value(json_object_get(ev, "certificate"));
	const char *reason = json_string_value(json_object_get(ev, "reason"));
	char why[sizeof(c->why)];

	if (name && strcmp(name, "disconnected") == 0) {
		set(c, false, "iotsec-certd stopped answering");
	} else if (cert && strcmp(cert, PROTO_CERT_VALID) == 0) {
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
	c->fn = fn, c->userdata = userdata;
	snprintf(c->why, sizeof(c->why), "waiting for iotsec-certd");
	if ((r = ctl_peer_new(e, path, CERTD_CLIENT_RETRY_MS, events, on_event, c, &c->peer)) < 0) {
		free(c);
		return r;
	}
	*ret = c;
	return 0;
}

void certd_client_free(struct certd_client *c)
{
	if (c == NULL)
		return;
	ctl_peer_free(c->peer);
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
