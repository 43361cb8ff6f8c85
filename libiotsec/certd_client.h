/* Following iotsec-certd: the one policy every daemon applies to its word (SPEC 5). The device is
 * a member of the home only while certd runs and its latest verdict is "valid": certd gone, or
 * not yet heard from, means out, exactly as an invalid certificate does. */
#ifndef IOTSEC_CERTD_CLIENT_H
#define IOTSEC_CERTD_CLIENT_H

#include <stdbool.h>

#include <systemd/sd-event.h>

#define CERTD_CLIENT_RETRY_MS 1000 /* between attempts to reach certd */

/* Called on every change of membership or of its reason; why is a sentence for a log line
 * ("certificate valid", "waiting for iotsec-certd", "certificate invalid: /x.crt: revoked"). */
typedef void (*certd_client_fn)(bool member, const char *why, void *userdata);

struct certd_client;
/* Follow certd at run_dir/certd.sock; starts out of the home and says so only on a change. */
int certd_client_new(sd_event *e, const char *run_dir, certd_client_fn fn, void *userdata,
		     struct certd_client **ret);
/* This daemon signs with the certificate at cert_path whose serial it loaded. When certd then
 * vouches for another certificate, the one now at cert_path, the client says so in the log and
 * ends the loop with DAEMON_EXIT_RESTART: systemd (Restart=on-failure) starts the daemon again
 * with the new certificate, key and role. Until certd has checked the file we loaded, we are
 * out of the home. */
int certd_client_signs_with(struct certd_client *c, const char *cert_path, const char *serial);
void certd_client_free(struct certd_client *c);
bool certd_client_member(const struct certd_client *c);
const char *certd_client_why(const struct certd_client *c);

#endif
