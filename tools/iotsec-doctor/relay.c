/* The relay's HTTPS API (daemons/relayd/relayd.h) as the doctor's tool uses it, with libcurl:
 * GET /api/challenge, a signed RELAY_LOGIN for its nonce to POST /api/login, then every call
 * with the bearer token it returns. Bodies are JSON both ways; a refusal is {"error":"text"}.
 *
 * Whom we talk to: the relay's HTTPS certificate is its relay certificate, issued by the home's
 * CA, named after the relay (CN relay1) and perhaps with no name a URL could hold (the URL's
 * host may be an address). So the home's CA (D/ca.crt) is the only trust anchor
 * (CURLOPT_CAINFO, and CURLOPT_CAPATH unset so the system's CAs count for nothing), and instead
 * of curl's host name check, the handshake itself checks that the peer's certificate is the
 * relay's the doctor named (--relay-name, or the configuration): its CN and its role. That runs
 * in OpenSSL's verify callback, set through CURLOPT_SSL_CTX_FUNCTION, so a server that is not
 * that relay fails the handshake before the login envelope or the token leave (checking the
 * certificate after the request, with CURLINFO_CERTINFO, would be too late for them). Another
 * device's certificate of the same home is refused by the role. The doctor holds no CRL: a
 * revoked relay is the home's to remove from the DNS and from sensord.relay. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/ssl.h>

#include "ca.h"
#include "iotsec-doctor.h"
#include "log.h"
#include "receipt.h"

#define RELAY_URL_MAX	 1024
#define RELAY_ANSWER_MAX (32u << 20) /* a fetch of 1000 readings is about 1 MB */
#define RELAY_TOKEN_LEN	 64
#define RELAY_NONCE_LEN	 32
#define RELAY_TIMEOUT_S	 60

struct relay {
	const char *cmd, *dir;
	CURL *curl;
	char base[RELAY_URL_MAX];
	char name[CERT_NAME_MAX];
	char auth[64 + RELAY_TOKEN_LEN];
	char err[CURL_ERROR_SIZE];
	struct curl_slist *headers;
	int ex_index; /* SSL_CTX ex_data slot holding name, for the verify callback */
	bool quiet;   /* a relay that does not answer is the caller's to say (--follow) */
};

struct answer {
	char *p;
	size_t len;
};

static size_t on_data(char *data, size_t size, size_t n, void *arg)
{
	struct answer *a = arg;
	char *grown;

	size *= n;
	if (size > RELAY_ANSWER_MAX - a->len)
		return 0; /* curl stops with CURLE_WRITE_ERROR */
	if ((grown = realloc(a->p, a->len + size + 1)) == NULL)
		return 0;
	a->p = grown;
	memcpy(a->p + a->len, data, size);
	a->len += size;
	a->p[a->len] = '\0';
	return size;
}

static int ex_index = -1;
/* The certificate the relay showed when it was not the one named: said in words, not as
 * OpenSSL's "hostname mismatch", so that a mistyped --relay-name is seen as one. */
static char shown_name[CERT_NAME_MAX];
static enum cert_role shown_role;

/* OpenSSL's verdict on each certificate of the chain, then ours on the relay's own (depth 0):
 * the home's, named as the doctor said, with the relay role. */
static int verify_relay(int ok, X509_STORE_CTX *x)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx());
	const char *name = ssl ? SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ex_index) : NULL;
	struct cert_info info;

	if (!ok || X509_STORE_CTX_get_error_depth(x) != 0)
		return ok;
	if (name == NULL || cert_info_get(X509_STORE_CTX_get_current_cert(x), &info) < 0 ||
	    strcmp(info.name, name) != 0 || info.role != CERT_ROLE_RELAY) {
		if (name)
			snprintf(shown_name, sizeof(shown_name), "%s", info.name);
		shown_role = info.role;
		X509_STORE_CTX_set_error(x, X509_V_ERR_HOSTNAME_MISMATCH);
		return 0;
	}
	return 1;
}

static CURLcode on_ssl_ctx(CURL *curl, void *ssl_ctx, void *arg)
{
	(void)curl;
	if (SSL_CTX_set_ex_data(ssl_ctx, ex_index, arg) != 1)
		return CURLE_SSL_CERTPROBLEM;
	SSL_CTX_set_verify(ssl_ctx, SSL_VERIFY_PEER, verify_relay);
	return CURLE_OK;
}

int relay_name_of(const char *cmd, const char *opt, const struct iotsec_config *cfg,
		  char ret[CERT_NAME_MAX])
{
	const char *list = cfg->sensord.relay ? cfg->sensord.relay : "";
	size_t skip = strspn(list, " \t,"), len = strcspn(list + skip, " \t,");
	char name[CERT_NAME_MAX];

	if (opt) {
		if (!ca_name_valid(opt)) {
			fprintf(stderr, "iotsec-doctor %s: bad relay name '%s'\n", cmd, opt);
			return -1;
		}
		snprintf(ret, CERT_NAME_MAX, "%s", opt);
		return 0;
	}
	if (len == 0 || len >= CERT_NAME_MAX) {
		fprintf(stderr,
			"iotsec-doctor %s: which relay? --relay-name N (the relay's certificate "
			"name), or sensord.relay in the configuration\n",
			cmd);
		return -1;
	}
	snprintf(name, sizeof(name), "%.*s", (int)len, list + skip);
	if (!ca_name_valid(name)) {
		fprintf(stderr, "iotsec-doctor %s: sensord.relay: bad relay name '%s'\n", cmd,
			name);
		return -1;
	}
	memcpy(ret, name, sizeof(name));
	return 0;
}

/* method path with body (NULL: none): the HTTP status and the answer's JSON object. -EIO when
 * nothing usable came back (said). */
static int request(struct relay *r, const char *method, const char *path, const char *body,
		   long *ret_status, json_t **ret)
{
	char url[RELAY_URL_MAX + 256];
	struct answer a = {0};
	json_error_t e;
	json_t *o = NULL;
	CURLcode c;
	int rc = -EIO;

	snprintf(url, sizeof(url), "%s%s", r->base, path);
	r->err[0] = '\0';
	shown_name[0] = '\0';
	curl_easy_setopt(r->curl, CURLOPT_URL, url);
	curl_easy_setopt(r->curl, CURLOPT_CUSTOMREQUEST, NULL);
	if (body) {
		curl_easy_setopt(r->curl, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(r->curl, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	} else {
		curl_easy_setopt(r->curl, CURLOPT_HTTPGET, 1L);
	}
	curl_easy_setopt(r->curl, CURLOPT_WRITEDATA, &a);
	if ((c = curl_easy_perform(r->curl)) != CURLE_OK && shown_name[0] != '\0') {
		fprintf(stderr,
			"iotsec-doctor %s: the relay at %s shows the certificate of %s (role %s), "
			"not of the relay %s: check --relay-name (or sensord.relay) and the URL\n",
			r->cmd, r->base, shown_name, cert_role_name(shown_role), r->name);
		goto out;
	}
	/* Nothing answered, or the line broke: a relay restarting, a network away. Not its
	 * refusal, nor another server: a --follow waits for it. */
	if (c == CURLE_COULDNT_CONNECT || c == CURLE_OPERATION_TIMEDOUT ||
	    c == CURLE_COULDNT_RESOLVE_HOST || c == CURLE_GOT_NOTHING || c == CURLE_SEND_ERROR ||
	    c == CURLE_RECV_ERROR)
		rc = -EHOSTUNREACH;
	if (c != CURLE_OK && r->quiet && rc == -EHOSTUNREACH)
		goto out;
	if (c != CURLE_OK) {
		fprintf(stderr, "iotsec-doctor %s: relay %s (%s): %s %s: %s\n", r->cmd, r->name,
			r->base, method, path, r->err[0] ? r->err : curl_easy_strerror(c));
		if (c == CURLE_COULDNT_CONNECT || c == CURLE_OPERATION_TIMEDOUT)
			fprintf(stderr,
				"iotsec-doctor %s: (nothing answers there: is the relay down, or "
				"is the URL's port not its relay.http_port? try again later, or "
				"ask the relay's operator)\n",
				r->cmd);
		if (c == CURLE_PEER_FAILED_VERIFICATION || c == CURLE_SSL_CONNECT_ERROR)
			fprintf(
			    stderr,
			    "iotsec-doctor %s: (the relay must show a certificate of the home's "
			    "CA, %s/ca.crt's, named %s with the relay role)\n",
			    r->cmd, r->dir, r->name);
		goto out;
	}
	curl_easy_getinfo(r->curl, CURLINFO_RESPONSE_CODE, ret_status);
	if (a.p == NULL || (o = json_loadb(a.p, a.len, JSON_REJECT_DUPLICATES, &e)) == NULL ||
	    !json_is_object(o)) {
		fprintf(stderr, "iotsec-doctor %s: relay %s: %s %s: HTTP %ld, not a JSON object\n",
			r->cmd, r->name, method, path, *ret_status);
		goto out;
	}
	*ret = o;
	o = NULL;
	rc = 0;
out:
	json_decref(o);
	free(a.p);
	return rc;
}

int relay_call(struct relay *r, const char *method, const char *path, json_t *body, json_t **ret)
{
	char *text = NULL;
	long status = 0;
	json_t *o = NULL;
	int rc = -ENOMEM;

	if (body && (text = json_dumps(body, JSON_COMPACT)) == NULL)
		goto out;
	if ((rc = request(r, method, path, text, &status, &o)) < 0)
		goto out;
	if (status < 200 || status > 299) {
		const char *why = json_string_value(json_object_get(o, "error"));

		/* 401: logged out; the caller logs in again, or says so. */
		if (status != 401)
			fprintf(stderr, "iotsec-doctor %s: relay %s refused %s %s: %ld %s\n",
				r->cmd, r->name, method, path, status,
				why ? why : "(no reason given)");
		rc = status == 401 ? -EACCES : -EIO;
		goto out;
	}
	*ret = o;
	o = NULL;
	rc = 0;
out:
	json_decref(o);
	free(text);
	return rc;
}

/* GET /api/challenge, POST /api/login: the bearer token in r->auth. */
int relay_logged_out(struct relay *r, const char *method, const char *path)
{
	fprintf(stderr, "iotsec-doctor %s: relay %s refused %s %s: not logged in (401)\n", r->cmd,
		r->name, method, path);
	return -EACCES;
}

int relay_relogin(struct relay *r, struct doctor_dir *d)
{
	json_t *o = NULL, *done = NULL;
	const char *relay, *nonce, *token, *doctor;
	char *env = NULL;
	size_t len;
	long status = 0;
	int rc = -EIO;

	if ((rc = relay_call(r, "GET", "/api/challenge", NULL, &o)) < 0) {
		if (rc == -EACCES)
			relay_logged_out(r, "GET", "/api/challenge");
		if (rc != -EHOSTUNREACH)
			rc = -EIO;
		goto out;
	}
	relay = json_string_value(json_object_get(o, "relay"));
	nonce = json_string_value(json_object_get(o, "nonce"));
	if (relay == NULL || nonce == NULL || strlen(nonce) != RELAY_NONCE_LEN ||
	    strspn(nonce, "0123456789abcdef") != RELAY_NONCE_LEN) {
		fprintf(stderr,
			"iotsec-doctor %s: relay %s: a challenge without its name or nonce\n",
			r->cmd, r->name);
		goto out;
	}
	/* The handshake showed its certificate is r->name's: the login is addressed to that. */
	if (strcmp(relay, r->name) != 0) {
		fprintf(
		    stderr,
		    "iotsec-doctor %s: the relay with %s's certificate calls itself %s: refused\n",
		    r->cmd, r->name, relay);
		goto out;
	}
	if ((rc = doctor_seal(d, RELAY_MSG_LOGIN, r->name, nonce, NULL, &env, &len)) < 0) {
		fprintf(stderr, "iotsec-doctor %s: cannot sign the login: %s\n", r->cmd,
			iotsec_strerror(rc));
		goto out;
	}
	rc = -EIO;
	if (request(r, "POST", "/api/login", env, &status, &done) < 0)
		goto out;
	token = json_string_value(json_object_get(done, "token"));
	doctor = json_string_value(json_object_get(done, "doctor"));
	if (status != 200) {
		const char *why = json_string_value(json_object_get(done, "error"));

		fprintf(stderr, "iotsec-doctor %s: relay %s refused the login of %s: %ld %s\n",
			r->cmd, r->name, d->self.name, status, why ? why : "(no reason given)");
		/* The relay judges the doctor's certificate: a new one is the administrator's. */
		if (status == 401)
			fprintf(
			    stderr,
			    "iotsec-doctor %s: (%s/doctor.crt must be valid, of the relay's "
			    "home, with the doctor role: ask the home's administrator for a new "
			    "one, iotsec-pki enrol --device %s --role doctor --csr doctor.csr, "
			    "and copy it to %s/doctor.crt)\n",
			    r->cmd, d->dir, d->self.name, d->dir);
		goto out;
	}
	if (token == NULL || strlen(token) != RELAY_TOKEN_LEN ||
	    strspn(token, "0123456789abcdefABCDEF") != RELAY_TOKEN_LEN || doctor == NULL ||
	    strcmp(doctor, d->self.name) != 0) {
		fprintf(stderr, "iotsec-doctor %s: relay %s: a login answer without %s's token\n",
			r->cmd, r->name, d->self.name);
		goto out;
	}
	snprintf(r->auth, sizeof(r->auth), "Authorization: Bearer %s", token);
	curl_slist_free_all(r->headers);
	curl_easy_setopt(r->curl, CURLOPT_HTTPHEADER, NULL);
	if ((r->headers = curl_slist_append(NULL, "Content-Type: application/json")) == NULL ||
	    !curl_slist_append(r->headers, r->auth)) {
		rc = -ENOMEM;
		goto out;
	}
	curl_easy_setopt(r->curl, CURLOPT_HTTPHEADER, r->headers);
	rc = 0;
out:
	free(env);
	json_decref(o);
	json_decref(done);
	return rc;
}

int relay_open(const char *cmd, struct doctor_dir *d, const char *url, const char *name,
	       struct relay **ret)
{
	char ca[DOCTOR_DIR_MAX + 16];
	struct relay *r = NULL;
	size_t len = strlen(url);
	int rc = -1;

	if (strncmp(url, "https://", 8) != 0 || len <= 8 || len >= RELAY_URL_MAX ||
	    strpbrk(url, " \t\r\n?#") != NULL) {
		fprintf(stderr, "iotsec-doctor %s: --relay takes https://HOST[:PORT], not '%s'\n",
			cmd, url);
		return -1;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
	    (r = calloc(1, sizeof(*r))) == NULL || (r->curl = curl_easy_init()) == NULL) {
		fprintf(stderr, "iotsec-doctor %s: cannot start libcurl\n", cmd);
		goto out;
	}
	if (ex_index < 0 && (ex_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL)) < 0) {
		fprintf(stderr, "iotsec-doctor %s: cannot set up TLS\n", cmd);
		goto out;
	}
	r->cmd = cmd, r->dir = d->dir;
	snprintf(r->base, sizeof(r->base), "%s", url);
	while (strlen(r->base) > 8 && r->base[strlen(r->base) - 1] == '/')
		r->base[strlen(r->base) - 1] = '\0';
	/* The calls' paths are ours to add: a URL with one (https://relay/api) would 404. */
	if (strchr(r->base + 8, '/') != NULL) {
		fprintf(stderr,
			"iotsec-doctor %s: --relay takes https://HOST[:PORT], without a path, not "
			"'%s'\n",
			cmd, url);
		goto out;
	}
	snprintf(r->name, sizeof(r->name), "%s", name);
	snprintf(ca, sizeof(ca), "%s/ca.crt", d->dir);
	if (curl_easy_setopt(r->curl, CURLOPT_PROTOCOLS_STR, "https") != CURLE_OK ||
	    curl_easy_setopt(r->curl, CURLOPT_CAINFO, ca) != CURLE_OK ||
	    curl_easy_setopt(r->curl, CURLOPT_CAPATH, NULL) != CURLE_OK ||
	    curl_easy_setopt(r->curl, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK ||
	    /* The name is checked in the handshake, by verify_relay(): see the top. */
	    curl_easy_setopt(r->curl, CURLOPT_SSL_VERIFYHOST, 0L) != CURLE_OK ||
	    curl_easy_setopt(r->curl, CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx) != CURLE_OK ||
	    curl_easy_setopt(r->curl, CURLOPT_SSL_CTX_DATA, r->name) != CURLE_OK ||
	    curl_easy_setopt(r->curl, CURLOPT_ERRORBUFFER, r->err) != CURLE_OK ||
	    curl_easy_setopt(r->curl, CURLOPT_WRITEFUNCTION, on_data) != CURLE_OK ||
	    curl_easy_setopt(r->curl, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    curl_easy_setopt(r->curl, CURLOPT_CONNECTTIMEOUT, 10L) != CURLE_OK ||
	    curl_easy_setopt(r->curl, CURLOPT_TIMEOUT, (long)RELAY_TIMEOUT_S) != CURLE_OK) {
		/* Without the handshake check (a TLS library other than OpenSSL) we would not know
		 * whom we talk to: refuse rather than fall back. */
		fprintf(stderr,
			"iotsec-doctor %s: this libcurl cannot check the relay's certificate as "
			"needed (OpenSSL build required)\n",
			cmd);
		goto out;
	}
	if ((r->headers = curl_slist_append(NULL, "Content-Type: application/json")) == NULL) {
		fprintf(stderr, "iotsec-doctor %s: %s\n", cmd, strerror(ENOMEM));
		goto out;
	}
	curl_easy_setopt(r->curl, CURLOPT_HTTPHEADER, r->headers);
	*ret = r;
	r = NULL;
	rc = 0;
out:
	relay_free(r);
	return rc;
}

int relay_login(const char *cmd, struct doctor_dir *d, const char *url, const char *name,
		struct relay **ret)
{
	struct relay *r = NULL;

	if (relay_open(cmd, d, url, name, &r) < 0)
		return -1;
	if (relay_relogin(r, d) < 0) {
		relay_free(r);
		return -1;
	}
	*ret = r;
	return 0;
}

void relay_quiet(struct relay *r, bool quiet)
{
	r->quiet = quiet;
}

void relay_free(struct relay *r)
{
	if (r == NULL)
		return;
	curl_slist_free_all(r->headers);
	if (r->curl)
		curl_easy_cleanup(r->curl);
	crypto_wipe(r->auth, sizeof(r->auth));
	free(r);
}
