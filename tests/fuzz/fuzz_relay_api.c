/* libFuzzer target: the relay's doctors' API (relayd_api(), daemons/relayd/api.c) on arbitrary
 * calls, against a real home CA and a real SQLite store. The input is
 *   METHOD \n PATH \n QUERY \n AUTHORIZATION \n BODY...
 * (an empty query or authorization line is none). So that the fuzzer gets past the login, "$T"
 * stands for "Bearer <token>" of a doctor logged in at start, "$E" for a real DOCTOR_GRANT
 * envelope of that doctor and "$A" for a real EMERGENCY_ACK one (both escaped for a JSON
 * string); the seeds use them. Every answer must be a status from 200 to 599 and a JSON object,
 * {"error":text} alone for 4xx and 5xx: anything else aborts. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "ca.h"
#include "cert.h"
#include "config.h"
#include "crypto.h"
#include "doctor.h"
#include "fuzzlib.h"
#include "log.h"
#include "relayd.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SUBST_MAX 8 /* each placeholder replaced at most this many times */

static const struct envelope_rule doctor_rules[] = {
    {RELAY_MSG_LOGIN, CERT_ROLE_DOCTOR, true, false},
    {DOCTOR_MSG_GRANT, CERT_ROLE_DOCTOR, true, true},
    {DOCTOR_MSG_ACK, CERT_ROLE_DOCTOR, true, true},
    {NULL, 0, false, false},
};

static struct iotsec_config cfg;
static struct relayd d;
static char auth[128], *grant_text, *ack_text;

static void need(bool ok)
{
	if (!ok)
		abort();
}

/* s as the inside of a JSON string (malloc'd). */
static char *escaped(const char *s)
{
	json_t *j = json_string(s);
	char *text = json_dumps(j, JSON_ENCODE_ANY), *inner;

	need(text != NULL);
	text[strlen(text) - 1] = '\0';
	need((inner = strdup(text + 1)) != NULL);
	free(text);
	json_decref(j);
	return inner;
}

static void check(int status, json_t *o)
{
	need(o != NULL && json_is_object(o) && status >= 200 && status <= 599);
	if (status >= 400)
		need(json_object_size(o) == 1 && json_is_string(json_object_get(o, "error")));
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char dir[] = "/tmp/iotsec-fuzz-relay-XXXXXX", ca[64], out[64], *text = NULL, err[256];
	const char *devices[] = {"relay1", "doc1", "pi1"};
	const enum cert_role roles[] = {CERT_ROLE_RELAY, CERT_ROLE_DOCTOR, CERT_ROLE_NODE};
	struct ca_enrol_req req = {.not_before = time(NULL) - 60, .not_after = time(NULL) + 86400};
	struct store_opts so = {.kind = STORE_SQLITE};
	struct envelope_ctx *doc = NULL;
	struct doctor_grant g = {.kit = "pi1", .start = 1, .issued_ms = 1};
	char path[128], path2[128], db[128], *env, *nonce;
	X509 *x = NULL;
	EVP_PKEY *k = NULL;
	json_t *o = NULL, *body = NULL;
	size_t len;
	int status;

	(void)argc, (void)argv;
	log_init("fuzz_relay_api", LOG_CRIT);
	need(mkdtemp(dir) != NULL);
	snprintf(ca, sizeof(ca), "%s/ca", dir);
	snprintf(out, sizeof(out), "%s/out", dir);
	req.out_dir = out;
	need(ca_init(ca, "fuzzhome", 30) == 0);
	for (size_t i = 0; i < 3; i++) {
		req.device = devices[i], req.role = roles[i];
		need(ca_enrol(ca, &req) == 0);
	}
	snprintf(db, sizeof(db), "%s/relay.db", dir);
	need(asprintf(&text,
		      "device = { cert = \"%s/relay1.crt\"; key = \"%s/relay1.key\"; "
		      "ca = \"%s/ca.crt\"; crl = \"%s/crl.pem\"; state_dir = \"%s\"; "
		      "run_dir = \"%s\"; };\n"
		      "relay = { database = \"%s\"; session_s = 604800; http_port = 0; };\n",
		      out, out, ca, ca, dir, dir, db) > 0);
	need(config_load_string(text, "fuzz.conf", &cfg, err, sizeof(err)) == 0);
	free(text);

	/* The relay as relayd_start() would make it, without its broker: relayd_forward() is
	 * -ENOTCONN, a 503. */
	d.cfg = &cfg;
	need(cert_store_load(cfg.device.ca, cfg.device.crl, &d.ca) == 0);
	need(cert_load(cfg.device.cert, &d.cert) == 0);
	need(crypto_load_private_key(cfg.device.key, &d.key) == 0);
	need(cert_info_get(d.cert, &d.self) == 0);
	need(envelope_ctx_new(d.ca, d.cert, d.key, relayd_rules, 30, &d.env) == 0);
	so.path = db;
	need(store_open(&so, &d.store) == 0);

	/* doc1 logs in; its grant and ack envelopes. */
	snprintf(path, sizeof(path), "%s/doc1.crt", out);
	snprintf(path2, sizeof(path2), "%s/doc1.key", out);
	need(cert_load(path, &x) == 0 && crypto_load_private_key(path2, &k) == 0);
	need(envelope_ctx_new(d.ca, x, k, doctor_rules, 30, &doc) == 0);
	X509_free(x), EVP_PKEY_free(k);
	relayd_api(&d, "GET", "/api/challenge", NULL, NULL, "", 0, &status, &o);
	need(status == 200);
	need((nonce = strdup(json_string_value(json_object_get(o, "nonce")))) != NULL);
	json_decref(o);
	need(envelope_seal(doc, RELAY_MSG_LOGIN, "relay1", nonce, NULL, true, &env, &len) == 0);
	relayd_api(&d, "POST", "/api/login", NULL, NULL, env, len, &status, &o);
	need(status == 200);
	snprintf(auth, sizeof(auth), "Bearer %s", json_string_value(json_object_get(o, "token")));
	json_decref(o), free(env), free(nonce);

	snprintf(path, sizeof(path), "%s/pi1.crt", out);
	need(cert_load(path, &x) == 0);
	need(doctor_grant_build(&g, X509_get0_pubkey(x), &body) == 0);
	X509_free(x);
	need(envelope_seal(doc, DOCTOR_MSG_GRANT, "pi1", "g1", body, true, &env, &len) == 0);
	grant_text = escaped(env);
	free(env), json_decref(body);
	need(doctor_ack_build("pi1", 7, &body) == 0);
	need(envelope_seal(doc, DOCTOR_MSG_ACK, "pi1", "a1", body, true, &env, &len) == 0);
	ack_text = escaped(env);
	free(env), json_decref(body);
	envelope_ctx_free(doc);

	/* Readings for the queue and the history: a stream granted to doc1, another nobody's. */
	{
		char *call;
		struct store_reading r = {.data = (const uint8_t *)"sealed", .len = 6};
		size_t n;

		need(
		    asprintf(&call,
			     "{\"envelope\":\"%s\",\"stream\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\","
			     "\"wrapped\":\"QUJD\"}",
			     grant_text) > 0);
		relayd_api(&d, "POST", "/api/grant", NULL, auth, call, strlen(call), &status, &o);
		need(status == 503);
		json_decref(o), free(call);
		for (uint64_t s = 1; s <= 20; s++) {
			memset(r.stream, s % 2 ? 0xaa : 0xbb, sizeof(r.stream));
			r.seq = s, r.emergency = s % 7 == 0, r.received_ms = (int64_t)s;
			need(store_insert(d.store, &r, 1, &n) == 0);
		}
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *a, *b, *text, *line[4], *p;
	size_t len;
	json_t *o = NULL;
	int status = 0;

	a = fuzz_expand(data, size, 'T', auth, SUBST_MAX, &len);
	b = fuzz_expand((const uint8_t *)a, len, 'E', grant_text, SUBST_MAX, &len);
	free(a);
	text = fuzz_expand((const uint8_t *)b, len, 'A', ack_text, SUBST_MAX, &len);
	free(b);
	p = text;
	for (size_t i = 0; i < 4; i++) {
		char *nl = memchr(p, '\n', len - (size_t)(p - text));

		if (nl == NULL) {
			free(text);
			return 0;
		}
		*nl = '\0';
		line[i] = p;
		p = nl + 1;
	}
	relayd_api(&d, line[0], line[1], line[2][0] ? line[2] : NULL, line[3][0] ? line[3] : NULL,
		   p, len - (size_t)(p - text), &status, &o);
	check(status, o);
	json_decref(o);
	free(text);
	return 0;
}
