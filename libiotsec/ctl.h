/* The control socket: how iotsecctl and the daemons on one Pi talk to a daemon.
 *
 * A Unix stream socket carrying one JSON object per line, each way. A request is
 *   {"v":1,"verb":"status", ...arguments}
 * and its reply {"v":1,"ok":true, ...fields} or {"v":1,"ok":false,"error":"reason"}.
 * The built-in verb "subscribe" {"events":["certificate-invalid",...]} (or ["*"]) turns the
 * connection into an event stream: after its reply the server pushes
 *   {"v":1,"event":"certificate-invalid", ...fields}
 * Who may do what is decided from the peer's credentials (SO_PEERCRED, SO_PEERGROUPS) when it
 * connects: root and the daemon's own user may read and call CTL_MUTATES verbs; the daemon's own
 * user and its clients may call CTL_KEYS verbs; root, the daemon's own user and its clients may
 * call CTL_CONTROLS verbs; its readers may read (verbs without flags, subscribe); anyone else is
 * refused at once. Lines are bounded (CTL_LINE_MAX) and so are
 * connections (CTL_MAX_CLIENTS, of which readers may hold all but CTL_PRIVILEGED_SLOTS, each
 * user at most CTL_USER_SLOTS). */
#ifndef IOTSEC_CTL_H
#define IOTSEC_CTL_H

#include <stdbool.h>

#include <jansson.h>
#include <systemd/sd-event.h>

#define CTL_PROTO_VERSION    1
#define CTL_LINE_MAX	     (256 * 1024) /* a store of a whole ring of 1024 keys is one line */
#define CTL_MAX_CLIENTS	     32
#define CTL_PRIVILEGED_SLOTS 8 /* of those, kept for root and the daemon's own user */
/* Of the others, what one user may hold: the daemons follow one another as mere readers (the
 * group iotsecd), so one reader, an operator or a compromised daemon, must not take every
 * reader's slot and keep the daemons from following each other. */
#define CTL_USER_SLOTS 4
/* Events a blocking client holds while in a call; beyond it drops the oldest. */
#define CTL_CLIENT_EVENTS_MAX 1024

enum ctl_flags {
	CTL_MUTATES = 1 << 0, /* changes state: root and the daemon's own user */
	CTL_KEYS = 1 << 1,    /* hands out or takes keys: the daemon's own user and its clients */
	/* steers what the daemon does (a new pool, a quarantine): root, the daemon's own user and
	 * its clients, the daemons whose work it is to ask */
	CTL_CONTROLS = 1 << 2,
};

/* What a peer may do. */
enum ctl_may {
	CTL_MAY_READ = 1 << 0,
	CTL_MAY_CHANGE = 1 << 1,
	CTL_MAY_CLIENT = 1 << 2, /* one of the daemon's clients (CTL_KEYS, CTL_CONTROLS) */
};

/* A verb handler gets the whole request object. It returns 0 and sets *ret_reply to an object
 * whose fields are added to the reply (or leaves it NULL), or a negative code whose
 * iotsec_strerror() becomes the error; a handler that then sets *ret_reply to {"error": text}
 * has the text follow it ("Invalid argument: names[2] is not a device name"). */
typedef int (*ctl_handler)(json_t *request, json_t **ret_reply, void *userdata);

struct ctl_verb {
	const char *name;
	unsigned flags;
	ctl_handler fn;
};

struct ctl_server;
/* Listen on path (replacing a stale socket) with mode 0666: who may connect is decided by the
 * peer's credentials (above), not by the file's mode. verbs ends with a {NULL} row. */
int ctl_server_new(sd_event *e, const char *path, const struct ctl_verb *verbs, void *userdata,
		   struct ctl_server **ret);
/* Let more peers in: with CTL_MAY_READ the readers, with CTL_MAY_CLIENT the clients (who may
 * also read), each named by list: words separated by spaces, "user", "@group", "1001" (a uid)
 * or "@1002" (a gid); it replaces the previous list of that kind. Names unknown here are skipped
 * and, when missing is given, written there (space-separated) for the caller to report. Applies
 * to connections made from then on. -EINVAL for a word that cannot name a user or group. */
int ctl_server_allow(struct ctl_server *s, enum ctl_may may, const char *list, char *missing,
		     size_t missing_len);
/* Closes every connection and removes the socket file. */
void ctl_server_free(struct ctl_server *s);
/* Push an event to every connection subscribed to it; data (borrowed, may be NULL) holds its
 * fields, which may not be "ok" or "id" (a reply's: -EINVAL). A subscriber that cannot keep up
 * is disconnected rather than blocking the daemon. */
int ctl_server_publish(struct ctl_server *s, const char *event, json_t *data);

/* The server's decoding of one request line (without its newline), public for fuzzing: 0 and a
 * request with "v" == CTL_PROTO_VERSION and a string "verb" in *ret_request, or -EBADMSG /
 * -EPROTONOSUPPORT and the refusal to send back (echoing any "id") in *ret_refusal. */
int ctl_request_parse(const char *line, size_t len, json_t **ret_request, json_t **ret_refusal);

/* Blocking client, for tools and tests. */
struct ctl_client;
/* -ENOENT or -ECONNREFUSED mean the daemon is not running. */
int ctl_client_connect(const char *path, struct ctl_client **ret);
void ctl_client_free(struct ctl_client *c);
/* Send a request (args borrowed, may be NULL) and wait up to timeout_ms for its reply. Returns 0
 * when a reply arrived, whatever its "ok"; -ETIMEDOUT, -EBADMSG, -ECONNRESET otherwise. */
int ctl_client_call(struct ctl_client *c, const char *verb, json_t *args, int timeout_ms,
		    json_t **ret_reply);
/* The error text of a reply with "ok": false, NULL when it is ok. */
const char *ctl_reply_error(json_t *reply);
/* Subscribe to events (NULL-terminated names, or {"*", NULL}). */
int ctl_client_subscribe(struct ctl_client *c, const char *const *events, int timeout_ms);
/* Wait up to timeout_ms for the next pushed event. */
int ctl_client_next_event(struct ctl_client *c, int timeout_ms, json_t **ret_event);

/* The asynchronous peer, for daemons: one connection to another daemon's control socket, kept on
 * the caller's sd-event loop and reconnected every retry_ms while that daemon is away. Daemons
 * never wait on one another (SPEC 5): a call's reply, its timeout and a lost connection all come
 * back through the loop.
 *
 * With events (NULL-terminated names, or {"*", NULL}) the peer also holds a subscription: on every
 * (re)connection fn first gets the daemon's current state as {"event":"status", ...the fields of
 * its status reply}, then each event; a dropped connection gives a synthetic
 * {"event":"disconnected"}. A daemon that refuses the subscription is asked again every retry_ms
 * (the refusal is logged once), and fn hears nothing from it meanwhile.
 *
 * Callbacks must not free the peer. */
typedef void (*ctl_event_fn)(json_t *event, void *userdata);
/* How a call ended: 0 and the daemon's reply {"ok":true,...}; -EPROTO and its refusal
 * {"ok":false,"error":...}; or, with reply NULL, -ETIMEDOUT, -ECONNRESET (the connection was
 * lost) or -ECANCELED (ctl_call_cancel() or ctl_peer_free(): only release what the call held).
 * reply is borrowed. */
typedef void (*ctl_reply_fn)(int r, json_t *reply, void *userdata);
struct ctl_peer;
struct ctl_call;
int ctl_peer_new(sd_event *e, const char *path, int retry_ms, const char *const *events,
		 ctl_event_fn fn, void *userdata, struct ctl_peer **ret);
/* Ends every call with -ECANCELED. */
void ctl_peer_free(struct ctl_peer *p);
/* Connected, so a call can be sent. */
bool ctl_peer_connected(const struct ctl_peer *p);
/* Send {"verb":verb, ...args (borrowed, may be NULL)}; fn is called exactly once, from the loop,
 * with its outcome. -ENOTCONN while the daemon is away (fn is not called: try again later);
 * ret_call (may be NULL) is for ctl_call_cancel(), valid until fn is called. */
int ctl_peer_call(struct ctl_peer *p, const char *verb, json_t *args, int timeout_ms,
		  ctl_reply_fn fn, void *userdata, struct ctl_call **ret_call);
/* End a call now: fn gets -ECANCELED. */
void ctl_call_cancel(struct ctl_call *c);

#endif
