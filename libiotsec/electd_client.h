/* Following iotsec-electd: who is the controller (SPEC 5.1), as every daemon that acts
 * differently on the controller sees it. electd gone, or not yet heard from, means no controller,
 * as electd saying "none" does. */
#ifndef IOTSEC_ELECTD_CLIENT_H
#define IOTSEC_ELECTD_CLIENT_H

#include <systemd/sd-event.h>

#define ELECTD_CLIENT_RETRY_MS 1000 /* between attempts to reach electd */

/* Called on every change of controller: its device name, "" for none. */
typedef void (*electd_client_fn)(const char *controller, void *userdata);

struct electd_client;
/* Follow electd at run_dir/electd/electd.sock; starts with no controller, and logs each change. */
int electd_client_new(sd_event *e, const char *run_dir, electd_client_fn fn, void *userdata,
		      struct electd_client **ret);
void electd_client_free(struct electd_client *c);
/* The controller's name, "" for none. */
const char *electd_client_controller(const struct electd_client *c);

#endif
