/* iotsec-pingd's messages (SPEC 5.5, 7): the JSON bodies of the liveness, quarantine, report and
 * CRL messages between devices. envelope.h signs and verifies them; this module does not.
 *
 * Broadcast (UDP, any role unless said):
 *   PINGD_HELLO      {"crl":N,"qv":V}        the CRL number in force, the quarantine version held
 *   PINGD_SUSPECT    {"target":name,"id":id} the controller suspects target; id names the round
 *   PINGD_ALIVE      {"suspect_id":id}       the target's refutation of round id
 *   PINGD_QUARANTINE {"version":V,"list":[{"name","reason":"missing"|"malicious","at"},...]}
 * Unicast (TCP links; the envelope names the recipient and the delivery id):
 *   PINGD_PING {} -> PINGD_PONG {}           the delivery id is the prober's fresh nonce
 *   PINGD_PING_REQ {"target":name} -> PINGD_REPORT {"target":name,"alive":bool}
 *   PINGD_REPORT may also come unsolicited (a fresh id)
 *   PINGD_MALICIOUS  {"target":name,"failures":n}
 *   PINGD_CRL_GET    {"number":N} -> PINGD_CRL {"pem":text}
 *
 * Parsing is strict: exactly the listed fields, integers only where a number is meant, names
 * that ca_name_valid() accepts (1..CERT_NAME_MAX-1 bytes, no NUL), ids of hex digits
 * (envelope_new_id()), lists within PROTO_QUARANTINE_MAX, no duplicate names. A refusal is
 * -EBADMSG with the output untouched. Build functions apply the same rules to their input
 * (-EINVAL), so we never send what a peer refuses. */
#ifndef IOTSEC_PING_H
#define IOTSEC_PING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cert.h"
#include "envelope.h"
#include "proto.h"

#define PING_MSG_HELLO	    "PINGD_HELLO"
#define PING_MSG_SUSPECT    "PINGD_SUSPECT"
#define PING_MSG_ALIVE	    "PINGD_ALIVE"
#define PING_MSG_QUARANTINE "PINGD_QUARANTINE"
#define PING_MSG_PING	    "PINGD_PING"
#define PING_MSG_PONG	    "PINGD_PONG"
#define PING_MSG_PING_REQ   "PINGD_PING_REQ"
#define PING_MSG_REPORT	    "PINGD_REPORT"
#define PING_MSG_MALICIOUS  "PINGD_MALICIOUS"
#define PING_MSG_CRL_GET    "PINGD_CRL_GET"
#define PING_MSG_CRL	    "PINGD_CRL"

#define PING_CRL_NUMBER_MAX ((uint64_t)INT64_MAX) /* a JSON integer as jansson holds it */
#define PING_VERSION_MAX    UINT32_MAX
#define PING_FAILURES_MAX   1000000
#define PING_AT_MAX	    ((int64_t)1 << 40) /* unix seconds: far beyond any device's life */
/* Bytes of a CRL in PEM: room in one envelope (ENVELOPE_MAX) for the JSON escapes of its line
 * ends, base64 (4/3), the signed header and the signature. A home's CRL of 64 revocations is
 * about 3 KiB. */
#define PING_CRL_PEM_MAX 8192

enum ping_reason {
	PING_REASON_MISSING = 1,
	PING_REASON_MALICIOUS = 2,
};
/* "missing" / "malicious"; NULL for anything else. */
const char *ping_reason_name(enum ping_reason r);
int ping_reason_parse(const char *name, enum ping_reason *ret);

struct ping_hello {
	uint64_t crl; /* 0..PING_CRL_NUMBER_MAX; 0: none known */
	uint32_t qv;  /* 0: no quarantine list yet */
};
int ping_hello_build(const struct ping_hello *h, json_t **ret);
int ping_hello_parse(json_t *body, struct ping_hello *ret);

/* PINGD_SUSPECT and PINGD_PING_REQ name a target; SUSPECT also the round's id. */
struct ping_suspect {
	char target[CERT_NAME_MAX];
	char id[ENVELOPE_ID_MAX + 1];
};
int ping_suspect_build(const struct ping_suspect *s, json_t **ret);
int ping_suspect_parse(json_t *body, struct ping_suspect *ret);

int ping_alive_build(const char *suspect_id, json_t **ret);
int ping_alive_parse(json_t *body, char ret_id[ENVELOPE_ID_MAX + 1]);

struct ping_entry {
	char name[CERT_NAME_MAX];
	enum ping_reason reason;
	int64_t at; /* unix seconds, 0..PING_AT_MAX */
};
struct ping_quarantine {
	uint32_t version; /* 1..PING_VERSION_MAX */
	size_t n;	  /* 0..PROTO_QUARANTINE_MAX */
	struct ping_entry entry[PROTO_QUARANTINE_MAX];
};
int ping_quarantine_build(const struct ping_quarantine *q, json_t **ret);
int ping_quarantine_parse(json_t *body, struct ping_quarantine *ret);
/* The list alone ({"list":[...]} without "version" is not a body: this is for the state file
 * and the control verbs): a json array of entries, checked as the body's. */
json_t *ping_list_build(const struct ping_entry *e, size_t n);
int ping_list_parse(json_t *list, struct ping_entry *ret, size_t *ret_n);

/* PINGD_PING and PINGD_PONG: the empty object, nothing else. */
int ping_empty_build(json_t **ret);
int ping_empty_parse(json_t *body);

int ping_req_build(const char *target, json_t **ret);
int ping_req_parse(json_t *body, char ret_target[CERT_NAME_MAX]);

struct ping_report {
	char target[CERT_NAME_MAX];
	bool alive;
};
int ping_report_build(const struct ping_report *r, json_t **ret);
int ping_report_parse(json_t *body, struct ping_report *ret);

struct ping_malicious {
	char target[CERT_NAME_MAX];
	uint32_t failures; /* 1..PING_FAILURES_MAX */
};
int ping_malicious_build(const struct ping_malicious *m, json_t **ret);
int ping_malicious_parse(json_t *body, struct ping_malicious *ret);

int ping_crl_get_build(uint64_t number, json_t **ret);
int ping_crl_get_parse(json_t *body, uint64_t *ret_number);

/* PINGD_CRL: a PEM X509 CRL, 1..PING_CRL_PEM_MAX bytes of printable ASCII and line ends,
 * starting "-----BEGIN X509 CRL-----". Whether it is the CA's and newer is the caller's to
 * check. *ret_pem points into body. */
int ping_crl_build(const char *pem, json_t **ret);
int ping_crl_parse(json_t *body, const char **ret_pem, size_t *ret_len);

#endif
