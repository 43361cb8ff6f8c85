#include "electd_client.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca.h"
#include "cert.h"
#include "ctl.h"
#include "daemon.h"
#include "log.h"
#include "proto.h"

struct electd_client {
	struct ctl_peer *peer;
	char controller[CERT_NAME_MAX];
	electd_client_fn fn;
	void *userdata;
};

/* electd's status snapshot, its controller-changed events and the peer's "disconnected". */
static void on_event(json_t *ev, void *userdata)
{
	struct electd_client *c = userdata;
	const char *name = json_string_value(json_object_get(ev, "event"));
	const char *now = json_string_value(json_object_get(ev, "controller"));

	if (name && strcmp(name, "disconnected") == 0)
		now = "";
	if (now == NULL)
		return;
	/* A name no certificate can carry is no controller: taking it cut short would name
	 * another device. */
	if (now[0] != '\0' && !ca_name_valid(now)) {
		log_warnx("iotsec-electd names a controller no device can be called; none taken");
		now = "";
	}
	if (strcmp(now, c->controller) == 0)
		return;
	log_info("controller: %s", now[0] ? now : "none");
	snprintf(c->controller, sizeof(c->controller), "%s", now);
	c->fn(c->controller, c->userdata);
}

int electd_client_new(sd_event *e, const char *run_dir, electd_client_fn fn, void *userdata,
		      struct electd_client **ret)
{
	static const char *const events[] = {PROTO_EV_CONTROLLER, NULL};
	struct electd_client *c;
	char path[PATH_MAX];
	int r;

	if (fn == NULL)
		return -EINVAL;
	if ((r = daemon_socket_path(run_dir, "electd", path, sizeof(path))) < 0)
		return r;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return -ENOMEM;
	c->fn = fn, c->userdata = userdata;
	if ((r = ctl_peer_new(e, path, ELECTD_CLIENT_RETRY_MS, events, on_event, c, &c->peer)) <
	    0) {
		free(c);
		return r;
	}
	*ret = c;
	return 0;
}

void electd_client_free(struct electd_client *c)
{
	if (c == NULL)
		return;
	ctl_peer_free(c->peer);
	free(c);
}

const char *electd_client_controller(const struct electd_client *c)
{
	return c->controller;
}
