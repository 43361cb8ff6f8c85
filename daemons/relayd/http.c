/* The doctors' HTTPS port (relayd.h): libmicrohttpd with GnuTLS, driven by the daemon's sd-event
 * loop (no thread of its own): its epoll descriptor is an IO source, and MHD_run() runs on its
 * events and on a timer set from MHD_get_timeout() after each run. /api/... goes to relayd_api();
 * everything else is a plain file under relay.web_dir (the doctor's page). */
#include "api.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <microhttpd.h>
#include <openssl/bio.h>
#include <openssl/pem.h>

#include "crypto.h"
#include "log.h"
#include "relayd.h"

#define HTTP_CONNECTIONS_MAX 128	 /* connections at once */
#define HTTP_PER_IP_MAX	     16		 /* of one address */
#define HTTP_TIMEOUT_S	     30		 /* a connection idle this long is closed */
#define HTTP_MEMORY	     (64 * 1024) /* libmicrohttpd's buffer per connection */
#define HTTP_QUERY_MAX	     1024	 /* bytes of a query string */
#define HTTP_PATH_MAX	     256	 /* bytes of a static file's path */
/* An oversized body of unknown length (chunked) is read and dropped up to this much, so the
 * client can read its 413; past it the connection is closed. */
#define HTTP_DISCARD_MAX    (4 * RELAYD_BODY_MAX)
#define HTTP_TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

/* Every answer carries these: the page loads nothing from elsewhere and runs no inline script. */
static const char *const security_headers[][2] = {
    {"Content-Security-Policy",
     "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"},
    {"X-Content-Type-Options", "nosniff"},
    {"Referrer-Policy", "no-referrer"},
    {"X-Frame-Options", "DENY"},
    {"Strict-Transport-Security", "max-age=31536000"},
};

static const struct {
	const char *ext, *type;
} content_types[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".json", "application/json"},
    {".map", "application/json"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".ico", "image/x-icon"},
    {".txt", "text/plain; charset=utf-8"},
    {".woff2", "font/woff2"},
    {".wasm", "application/wasm"},
};

/* One request under way (libmicrohttpd's con_cls). */
struct request {
	char *query; /* what follows '?' in the URI, NULL: none */
	bool query_too_long;
	bool started;	/* the first call (headers only) is done */
	bool too_large; /* the body passed RELAYD_BODY_MAX: dropped, 413 at the end */
	size_t discarded;
	char *body;
	size_t len, cap;
};

static void request_free(struct request *r)
{
	if (r == NULL)
		return;
	free(r->query);
	free(r->body);
	free(r);
}

/* libmicrohttpd's last word, for the one error it causes that is ours to report: a failed start
 * (the port taken, an address not ours), which it says only to its logger. */
static char mhd_last[256];

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[512];
	size_t n;

	(void)cls;
	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n > 0 && line[n - 1] == '\n')
		line[--n] = '\0';
	snprintf(mhd_last, sizeof(mhd_last), "%s", line);
	/* What it says is mostly a client's doing (a failed handshake): not worth more. */
	log_debug("http: %s", line);
}

/* Before the headers are parsed: the URI as sent, whose query MHD would otherwise take apart. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
	struct request *r = calloc(1, sizeof(*r));
	const char *q;

	(void)cls, (void)conn;
	if (r && (q = strchr(uri, '?')) != NULL) {
		if (strlen(q + 1) > HTTP_QUERY_MAX)
			r->query_too_long = true;
		else if ((r->query = strdup(q + 1)) == NULL)
			r->query_too_long = true; /* out of memory: refused all the same */
	}
	return r;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode why)
{
	(void)cls, (void)conn, (void)why;
	request_free(*con_cls);
	*con_cls = NULL;
}

static enum MHD_Result respond(struct MHD_Connection *conn, unsigned status,
			       struct MHD_Response *resp, const char *type, bool api)
{
	enum MHD_Result ok;

	if (resp == NULL)
		return MHD_NO;
	for (size_t i = 0; i < sizeof(security_headers) / sizeof(security_headers[0]); i++)
		MHD_add_response_header(resp, security_headers[i][0], security_headers[i][1]);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	/* Readings and tokens stay out of every cache; the page is checked again each time. */
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, api ? "no-store" : "no-cache");
	ok = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ok;
}

static enum MHD_Result respond_text(struct MHD_Connection *conn, unsigned status, const char *text)
{
	return respond(
	    conn, status,
	    MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT),
	    "text/plain; charset=utf-8", false);
}

static enum MHD_Result respond_json(struct MHD_Connection *conn, unsigned status, json_t *o)
{
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;

	if (text == NULL)
		return respond(conn, 500,
			       MHD_create_response_from_buffer(
				   strlen("{\"error\":\"out of memory\"}"),
				   (void *)"{\"error\":\"out of memory\"}", MHD_RESPMEM_PERSISTENT),
			       "application/json", true);
	/* A login's answer holds its token: wiped when sent. */
	return respond(conn, status,
		       MHD_create_response_from_buffer_with_free_callback(strlen(text), text,
									  crypto_wipe_free),
		       "application/json", true);
}

/* ---- static files ---- */

/* A path of the page: components of letters, digits, '.', '_' and '-', none empty and none
 * starting with '.' (no "..", no hidden files). "/" is the index. */
static bool page_path(const char *url, char out[HTTP_PATH_MAX])
{
	const char *p;

	if (url[0] != '/')
		return false;
	if (strcmp(url, "/") == 0) {
		snprintf(out, HTTP_PATH_MAX, "index.html");
		return true;
	}
	p = url + 1;
	if (strlen(p) >= HTTP_PATH_MAX)
		return false;
	for (const char *c = p; *c; c++) {
		bool start = c == p || c[-1] == '/';

		if (start && (*c == '.' || *c == '/'))
			return false;
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9') || *c == '.' || *c == '_' || *c == '-' || *c == '/'))
			return false;
	}
	if (p[strlen(p) - 1] == '/')
		return false;
	memcpy(out, p, strlen(p) + 1);
	return true;
}

static const char *content_type(const char *path)
{
	const char *dot = strrchr(path, '.');

	for (size_t i = 0; dot && i < sizeof(content_types) / sizeof(content_types[0]); i++)
		if (strcmp(dot, content_types[i].ext) == 0)
			return content_types[i].type;
	return "application/octet-stream";
}

/* rel under dirfd: never above it, whatever its symbolic links say (openat2's RESOLVE_BENEATH;
 * where the kernel has no openat2, no symbolic link at all). */
static int open_beneath(int dirfd, const char *rel)
{
	struct open_how how = {
	    .flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
	    .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV,
	};
	char copy[HTTP_PATH_MAX], *save = NULL, *part, *next;
	int fd, at;

	fd = (int)syscall(SYS_openat2, dirfd, rel, &how, sizeof(how));
	if (fd >= 0 || errno != ENOSYS)
		return fd;
	snprintf(copy, sizeof(copy), "%s", rel);
	at = dup(dirfd);
	for (part = strtok_r(copy, "/", &save); at >= 0 && part; part = next) {
		next = strtok_r(NULL, "/", &save);
		fd = openat(at, part,
			    O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW |
				(next ? O_DIRECTORY : 0));
		close(at);
		at = fd;
	}
	return at;
}

static enum MHD_Result serve_file(struct relayd *d, struct MHD_Connection *conn, const char *url,
				  const char *method)
{
	char rel[HTTP_PATH_MAX];
	struct MHD_Response *resp;
	struct stat st;
	int fd;

	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return respond_text(conn, 405, "method not allowed\n");
	if (d->http->web_fd < 0 || !page_path(url, rel) ||
	    (fd = open_beneath(d->http->web_fd, rel)) < 0)
		return respond_text(conn, 404, "not found\n");
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return respond_text(conn, 404, "not found\n");
	}
	/* The response owns fd from here, on failure too. */
	if ((resp = MHD_create_response_from_fd64((uint64_t)st.st_size, fd)) == NULL)
		close(fd);
	return respond(conn, 200, resp, content_type(rel), false);
}

/* ---- requests ---- */

static bool is_api(const char *url)
{
	return strcmp(url, "/api") == 0 || strncmp(url, "/api/", 5) == 0;
}

static enum MHD_Result too_large(struct relayd *d, struct MHD_Connection *conn)
{
	json_t *o = json_pack("{s:s}", "error", "the body is too large");
	enum MHD_Result ok = respond_json(conn, 413, o);

	d->http->too_large++;
	json_decref(o);
	return ok;
}

/* Called first with the headers, then with each piece of the body, then once more with none. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_len, void **con_cls)
{
	struct relayd *d = cls;
	struct request *r = *con_cls;
	const char *length;
	json_t *answer = NULL;
	enum MHD_Result ok;
	int status;

	(void)version;
	if (r == NULL) /* on_uri() found no memory */
		return MHD_NO;
	if (!r->started) {
		r->started = true;
		d->http->requests++;
		if (r->query_too_long)
			return respond_text(conn, 414, "the URI is too long\n");
		if (!is_api(url))
			return serve_file(d, conn, url, method);
		/* Said before the body is sent, when its length is known. */
		length = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
						     MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (length && (strlen(length) > 9 || strtoul(length, NULL, 10) > RELAYD_BODY_MAX))
			return too_large(d, conn);
		return MHD_YES;
	}
	if (*upload_len > 0) {
		size_t n = *upload_len;

		*upload_len = 0;
		if (!r->too_large && r->len + n > RELAYD_BODY_MAX) {
			r->too_large = true;
			free(r->body);
			r->body = NULL;
		}
		if (r->too_large) {
			r->discarded += n;
			return r->discarded > HTTP_DISCARD_MAX ? MHD_NO : MHD_YES;
		}
		if (r->len + n > r->cap) {
			size_t cap = r->cap ? r->cap : 1024;
			char *body;

			while (cap < r->len + n)
				cap *= 2;
			cap = cap > RELAYD_BODY_MAX ? RELAYD_BODY_MAX : cap;
			if ((body = realloc(r->body, cap)) == NULL)
				return MHD_NO;
			r->body = body, r->cap = cap;
		}
		memcpy(r->body + r->len, upload, n);
		r->len += n;
		return MHD_YES;
	}
	if (r->too_large)
		return too_large(d, conn);
	relayd_api(
	    d, method, url, r->query,
	    MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION),
	    r->body ? r->body : "", r->len, &status, &answer);
	ok = respond_json(conn, (unsigned)status, answer);
	json_decref(answer);
	return ok;
}

/* ---- the loop ---- */

static void rearm(struct relayd *d)
{
	struct relayd_http *h = d->http;
	MHD_UNSIGNED_LONG_LONG ms;
	uint64_t now;

	if (MHD_get_timeout(h->mhd, &ms) != MHD_YES) {
		sd_event_source_set_enabled(h->timer, SD_EVENT_OFF);
		return;
	}
	sd_event_now(d->loop, CLOCK_MONOTONIC, &now);
	sd_event_source_set_time(h->timer, now + (uint64_t)ms * 1000);
	sd_event_source_set_enabled(h->timer, SD_EVENT_ONESHOT);
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct relayd *d = userdata;

	(void)s, (void)fd, (void)revents;
	MHD_run(d->http->mhd);
	rearm(d);
	return 0;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct relayd *d = userdata;

	(void)s, (void)usec;
	MHD_run(d->http->mhd);
	rearm(d);
	return 0;
}

/* PEM of the certificate or key, malloc'd and NUL-terminated (the key's in secure memory while
 * it is written). */
static char *pem_of(X509 *cert, EVP_PKEY *key)
{
	BIO *b = key ? BIO_new(BIO_s_secmem()) : BIO_new(BIO_s_mem());
	char *data, *out = NULL;
	long n;

	if (b == NULL)
		return NULL;
	if ((key ? PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL)
		 : PEM_write_bio_X509(b, cert)) != 1 ||
	    (n = BIO_get_mem_data(b, &data)) <= 0 || (out = malloc((size_t)n + 1)) == NULL)
		goto out;
	memcpy(out, data, (size_t)n);
	out[n] = '\0';
out:
	BIO_free(b);
	return out;
}

/* Start libmicrohttpd on the configured address: "" is every address, IPv6 and IPv4 where the
 * system has IPv6, IPv4 alone where it has not. */
static struct MHD_Daemon *start_mhd(struct relayd *d, const char *key, const char *cert)
{
	const struct iotsec_config *cfg = d->cfg;
	unsigned flags = MHD_USE_EPOLL | MHD_USE_TLS | MHD_USE_ERROR_LOG;
	uint16_t port = (uint16_t)cfg->relay.http_port;
	struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
	struct sockaddr_in a4 = {.sin_family = AF_INET, .sin_port = htons(port)};
	const struct sockaddr *addr = NULL;
	struct MHD_Daemon *mhd;
	bool any = cfg->relay.http_address[0] == '\0';

	if (inet_pton(AF_INET6, cfg->relay.http_address, &a6.sin6_addr) == 1) {
		flags |= MHD_USE_IPv6;
		addr = (const struct sockaddr *)&a6;
	} else if (inet_pton(AF_INET, cfg->relay.http_address, &a4.sin_addr) == 1) {
		addr = (const struct sockaddr *)&a4;
	} else if (!any) {
		log_warnx("relay.http_address %s is no IPv4 or IPv6 address",
			  cfg->relay.http_address);
		return NULL;
	}
	for (int attempt = 0; attempt < 2; attempt++) {
		unsigned f = flags | (any && attempt == 0 ? MHD_USE_DUAL_STACK : 0);

		/* Strict HTTP: a request without Host, or with a space in its URL, is refused
		 * (browsers and curl send neither). */
		mhd = MHD_start_daemon(
		    f, port, NULL, NULL, on_request, d, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
		    MHD_OPTION_HTTPS_MEM_KEY, key, MHD_OPTION_HTTPS_MEM_CERT, cert,
		    MHD_OPTION_HTTPS_PRIORITIES, HTTP_TLS_PRIORITIES, MHD_OPTION_CONNECTION_LIMIT,
		    (unsigned)HTTP_CONNECTIONS_MAX, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
		    (unsigned)HTTP_PER_IP_MAX, MHD_OPTION_CONNECTION_TIMEOUT,
		    (unsigned)HTTP_TIMEOUT_S, MHD_OPTION_STRICT_FOR_CLIENT, 1,
		    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_MEMORY,
		    MHD_OPTION_URI_LOG_CALLBACK, on_uri, NULL, MHD_OPTION_NOTIFY_COMPLETED,
		    on_completed, NULL,
		    /* Last: without an address, the list ends here. */
		    addr ? MHD_OPTION_SOCK_ADDR : MHD_OPTION_END, addr, MHD_OPTION_END);
		if (mhd || !any)
			break;
	}
	return mhd;
}

int relayd_http_start(struct relayd *d)
{
	const struct iotsec_config *cfg = d->cfg;
	const union MHD_DaemonInfo *info;
	struct relayd_http *h;
	char *key = NULL, *cert = NULL;
	int r;

	if ((r = relayd_api_state(d)) < 0)
		return r;
	h = d->http;
	if (cfg->relay.http_port == 0) {
		log_info("relay.http_port is 0: no HTTPS for doctors");
		return 0;
	}
	if ((h->web_fd = open(cfg->relay.web_dir, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
		log_warn("%s: the doctor's page is not served", cfg->relay.web_dir);
	r = -ENOMEM;
	if ((key = pem_of(NULL, d->key)) == NULL || (cert = pem_of(d->cert, NULL)) == NULL)
		goto out;
	mhd_last[0] = '\0';
	if ((h->mhd = start_mhd(d, key, cert)) == NULL) {
		/* Said without -v too: the debug lines before are not shown by default. */
		log_warnx("cannot serve HTTPS on port %d: %s (another program listening there? "
			  "see relay.http_port and relay.http_address)",
			  cfg->relay.http_port, mhd_last[0] ? mhd_last : "see the line before");
		r = -EADDRNOTAVAIL;
		goto out;
	}
	if ((info = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_EPOLL_FD)) == NULL) {
		r = -EINVAL;
		goto out;
	}
	/* Accuracy 1 ms: MHD_get_timeout() says 0 while it has more to send (a fetch answer of
	 * 1,000 readings goes out in pieces), and sd-event's default slack of 250 ms would hold
	 * each piece that long. */
	if ((r = sd_event_add_io(d->loop, &h->io, info->epoll_fd, EPOLLIN, on_io, d)) < 0 ||
	    (r = sd_event_add_time(d->loop, &h->timer, CLOCK_MONOTONIC, UINT64_MAX, 1000, on_timer,
				   d)) < 0)
		goto out;
	sd_event_source_set_description(h->io, "relayd-http");
	sd_event_source_set_description(h->timer, "relayd-http-timer");
	rearm(d);
	log_info("serving doctors on HTTPS port %d", cfg->relay.http_port);
	r = 0;
out:
	crypto_wipe_free(key);
	free(cert);
	return r;
}

void relayd_http_stop(struct relayd *d)
{
	struct relayd_http *h = d->http;

	if (h == NULL)
		return;
	h->io = sd_event_source_disable_unref(h->io);
	h->timer = sd_event_source_disable_unref(h->timer);
	if (h->mhd)
		MHD_stop_daemon(h->mhd);
	if (h->web_fd >= 0)
		close(h->web_fd);
	relayd_api_clear(h);
	free(h);
	d->http = NULL;
}
