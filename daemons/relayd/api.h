/* The doctors' side of the relay (relayd.h): the envelope rules d->env opens and seals with, and
 * the state of the HTTP API (api.c: challenges and sessions; http.c: libmicrohttpd).
 *
 * d->http holds both. relayd_api() makes it at its first call when relayd_http_start() has not
 * (the unit tests and the fuzz target call the API without HTTP); relayd_http_stop() releases
 * it either way, and is a no-op without it. */
#ifndef IOTSEC_RELAYD_API_H
#define IOTSEC_RELAYD_API_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/x509.h>
#include <systemd/sd-event.h>

#include "cert.h"
#include "crypto.h"
#include "envelope.h"
#include "daemon.h"
#include "relayd.h"

/* What the relay opens (RELAY_LOGIN, to it; DOCTOR_GRANT and EMERGENCY_ACK, which it checks and
 * passes on to the kit they name) and what it seals (RELAY_RECEIPT). relayd_start() creates d->env
 * with it. */
extern const struct envelope_rule relayd_rules[];

#define RELAYD_NONCE_HEX       (2 * 16)
#define RELAYD_TOKEN_HEX       (2 * 32)
#define RELAYD_REFRESH_MS      1000 /* the CA and CRL files are looked at no more often */
#define RELAYD_DOCTOR_SESSIONS 8    /* sessions of one doctor at once */
#define RELAYD_SAID_MAX	       16   /* refusal causes remembered as already logged */

/* Why a login was refused: counted, and each said once. */
enum relayd_login_refusal {
	RELAYD_LOGIN_MALFORMED, /* not an envelope, or not a RELAY_LOGIN with an empty body */
	RELAYD_LOGIN_CERT,	/* the certificate: another home, revoked, expired, unknown CA */
	RELAYD_LOGIN_ROLE,	/* not a doctor's */
	RELAYD_LOGIN_SIGNATURE,
	RELAYD_LOGIN_STALE,	/* outside the freshness window, or replayed */
	RELAYD_LOGIN_RECIPIENT, /* addressed to another device */
	RELAYD_LOGIN_NONCE,	/* no such challenge outstanding: unknown, used or expired */
	RELAYD_LOGIN_REF_COUNT
};

/* A challenge used by a login, remembered until its end so that it is used once. A challenge
 * given is not remembered: it carries its end and the relay's code over it (api.c). */
struct relayd_challenge {
	char nonce[RELAYD_NONCE_HEX + 1]; /* "": free slot */
	uint64_t expires_ms;		  /* clock_mono_ms() */
};

struct relayd_session {
	char token[RELAYD_TOKEN_HEX + 1]; /* "": free slot */
	char doctor[CERT_NAME_MAX];
	X509 *cert;	     /* the doctor's, verified again when the CRL changes */
	uint64_t generation; /* cert_store_generation() it was last verified under */
	int64_t not_after;   /* the certificate's end (clock_now() seconds) */
	uint64_t expires_ms; /* clock_mono_ms() */
	int64_t expires_wall_ms;
};

struct relayd_http {
	/* api.c */
	uint8_t challenge_key[CRYPTO_KEY_LEN]; /* codes the challenges given; random at start */
	struct relayd_challenge challenges[RELAYD_NONCES_MAX]; /* used */
	struct relayd_session sessions[RELAYD_SESSIONS_MAX];
	uint64_t logins, sessions_ended;
	uint64_t login_refused[RELAYD_LOGIN_REF_COUNT];
	int said[RELAYD_SAID_MAX]; /* error codes of refused logins already logged */
	size_t n_said;
	struct daemon_ca_watch ca; /* the CA and CRL files, looked at every RELAYD_REFRESH_MS */

	/* http.c */
	struct MHD_Daemon *mhd;
	sd_event_source *io, *timer;
	int web_fd; /* relay.web_dir, -1: none */
	uint64_t requests, too_large;
};

/* d->http, made when missing (-ENOMEM). */
int relayd_api_state(struct relayd *d);
/* Ends every session and forgets every challenge (relayd_http_stop() calls it). */
void relayd_api_clear(struct relayd_http *h);
/* The doctors' figures for the status verb: logins, refusals by cause, sessions open. */
int relayd_api_status(struct relayd *d, json_t *o);

#endif
