/* pingd's message bodies (ping.h): strict parsers, and builders that refuse what a parser would. */
#include <errno.h>
#include <string.h>

#include "ca.h"
#include "ping.h"

#define PEM_CRL_BEGIN "-----BEGIN X509 CRL-----"

const char *ping_reason_name(enum ping_reason r)
{
	switch (r) {
	case PING_REASON_MISSING:
		return "missing";
	case PING_REASON_MALICIOUS:
		return "malicious";
	}
	return NULL;
}

int ping_reason_parse(const char *name, enum ping_reason *ret)
{
	if (name && strcmp(name, "missing") == 0)
		*ret = PING_REASON_MISSING;
	else if (name && strcmp(name, "malicious") == 0)
		*ret = PING_REASON_MALICIOUS;
	else
		return -EINVAL;
	return 0;
}

/* Exactly n fields: anything more is refused, not ignored. */
static bool has_fields(json_t *body, size_t n)
{
	return json_is_object(body) && json_object_size(body) == n;
}

static bool get_uint(json_t *body, const char *key, uint64_t min, uint64_t max, uint64_t *ret)
{
	json_t *v = json_object_get(body, key);
	json_int_t i;

	if (!json_is_integer(v))
		return false;
	i = json_integer_value(v);
	if (i < 0 || (uint64_t)i < min || (uint64_t)i > max)
		return false;
	*ret = (uint64_t)i;
	return true;
}

/* A string that holds a device name; the length check refuses an embedded NUL. */
static bool name_ok(json_t *v)
{
	return json_is_string(v) && json_string_length(v) < CERT_NAME_MAX &&
	       strlen(json_string_value(v)) == json_string_length(v) &&
	       ca_name_valid(json_string_value(v));
}

static bool get_name(json_t *body, const char *key, char out[CERT_NAME_MAX])
{
	json_t *v = json_object_get(body, key);

	if (!name_ok(v))
		return false;
	memcpy(out, json_string_value(v), json_string_length(v) + 1);
	return true;
}

static bool id_valid(const char *id, size_t len)
{
	if (len == 0 || len > ENVELOPE_ID_MAX || strlen(id) != len)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
			return false;
	return true;
}

static bool get_id(json_t *body, const char *key, char out[ENVELOPE_ID_MAX + 1])
{
	json_t *v = json_object_get(body, key);

	if (!json_is_string(v) || !id_valid(json_string_value(v), json_string_length(v)))
		return false;
	memcpy(out, json_string_value(v), json_string_length(v) + 1);
	return true;
}

static int done(json_t *o, json_t **ret)
{
	if (o == NULL)
		return -ENOMEM;
	*ret = o;
	return 0;
}

/* ---- HELLO ---- */

int ping_hello_build(const struct ping_hello *h, json_t **ret)
{
	if (h->crl > PING_CRL_NUMBER_MAX)
		return -EINVAL;
	return done(json_pack("{s:I, s:I}", "crl", (json_int_t)h->crl, "qv", (json_int_t)h->qv),
		    ret);
}

int ping_hello_parse(json_t *body, struct ping_hello *ret)
{
	uint64_t crl, qv;

	if (!has_fields(body, 2) || !get_uint(body, "crl", 0, PING_CRL_NUMBER_MAX, &crl) ||
	    !get_uint(body, "qv", 0, PING_VERSION_MAX, &qv))
		return -EBADMSG;
	ret->crl = crl, ret->qv = (uint32_t)qv;
	return 0;
}

/* ---- SUSPECT, ALIVE ---- */

int ping_suspect_build(const struct ping_suspect *s, json_t **ret)
{
	if (!ca_name_valid(s->target) || !id_valid(s->id, strnlen(s->id, sizeof(s->id))))
		return -EINVAL;
	return done(json_pack("{s:s, s:s}", "target", s->target, "id", s->id), ret);
}

int ping_suspect_parse(json_t *body, struct ping_suspect *ret)
{
	struct ping_suspect s = {0};

	if (!has_fields(body, 2) || !get_name(body, "target", s.target) ||
	    !get_id(body, "id", s.id))
		return -EBADMSG;
	*ret = s;
	return 0;
}

int ping_alive_build(const char *suspect_id, json_t **ret)
{
	if (suspect_id == NULL || !id_valid(suspect_id, strnlen(suspect_id, ENVELOPE_ID_MAX + 1)))
		return -EINVAL;
	return done(json_pack("{s:s}", "suspect_id", suspect_id), ret);
}

int ping_alive_parse(json_t *body, char ret_id[ENVELOPE_ID_MAX + 1])
{
	char id[ENVELOPE_ID_MAX + 1] = {0};

	if (!has_fields(body, 1) || !get_id(body, "suspect_id", id))
		return -EBADMSG;
	memcpy(ret_id, id, sizeof(id));
	return 0;
}

/* ---- QUARANTINE ---- */

static bool entry_valid(const struct ping_entry *e)
{
	return ca_name_valid(e->name) && ping_reason_name(e->reason) != NULL && e->at >= 0 &&
	       e->at <= PING_AT_MAX;
}

json_t *ping_list_build(const struct ping_entry *e, size_t n)
{
	json_t *list;

	if (n > PROTO_QUARANTINE_MAX)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (!entry_valid(&e[i]))
			return NULL;
		for (size_t j = 0; j < i; j++)
			if (strcmp(e[i].name, e[j].name) == 0)
				return NULL;
	}
	if ((list = json_array()) == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (json_array_append_new(list, json_pack("{s:s, s:s, s:I}", "name", e[i].name,
							  "reason", ping_reason_name(e[i].reason),
							  "at", (json_int_t)e[i].at)) < 0) {
			json_decref(list);
			return NULL;
		}
	}
	return list;
}

int ping_list_parse(json_t *list, struct ping_entry *ret, size_t *ret_n)
{
	struct ping_entry e[PROTO_QUARANTINE_MAX] = {0}; /* no stack bytes after the names */
	size_t i, n;
	json_t *v;

	if (!json_is_array(list) || (n = json_array_size(list)) > PROTO_QUARANTINE_MAX)
		return -EBADMSG;
	json_array_foreach(list, i, v)
	{
		json_t *reason = json_object_get(v, "reason");
		uint64_t at;

		if (!has_fields(v, 3) || !get_name(v, "name", e[i].name) ||
		    !get_uint(v, "at", 0, (uint64_t)PING_AT_MAX, &at) || !json_is_string(reason) ||
		    ping_reason_parse(json_string_value(reason), &e[i].reason) < 0)
			return -EBADMSG;
		e[i].at = (int64_t)at;
		for (size_t j = 0; j < i; j++)
			if (strcmp(e[i].name, e[j].name) == 0)
				return -EBADMSG;
	}
	memcpy(ret, e, n * sizeof(e[0]));
	*ret_n = n;
	return 0;
}

int ping_quarantine_build(const struct ping_quarantine *q, json_t **ret)
{
	json_t *list;

	if (q->version == 0 || (list = ping_list_build(q->entry, q->n)) == NULL)
		return -EINVAL;
	return done(json_pack("{s:I, s:o}", "version", (json_int_t)q->version, "list", list), ret);
}

int ping_quarantine_parse(json_t *body, struct ping_quarantine *ret)
{
	uint64_t v;
	size_t n;

	if (!has_fields(body, 2) || !get_uint(body, "version", 1, PING_VERSION_MAX, &v) ||
	    ping_list_parse(json_object_get(body, "list"), ret->entry, &n) < 0)
		return -EBADMSG;
	ret->version = (uint32_t)v, ret->n = n;
	return 0;
}

/* ---- PING, PONG ---- */

int ping_empty_build(json_t **ret)
{
	return done(json_object(), ret);
}

int ping_empty_parse(json_t *body)
{
	return has_fields(body, 0) ? 0 : -EBADMSG;
}

/* ---- PING_REQ, REPORT, MALICIOUS ---- */

int ping_req_build(const char *target, json_t **ret)
{
	if (!ca_name_valid(target))
		return -EINVAL;
	return done(json_pack("{s:s}", "target", target), ret);
}

int ping_req_parse(json_t *body, char ret_target[CERT_NAME_MAX])
{
	char t[CERT_NAME_MAX] = {0};

	if (!has_fields(body, 1) || !get_name(body, "target", t))
		return -EBADMSG;
	memcpy(ret_target, t, sizeof(t));
	return 0;
}

int ping_report_build(const struct ping_report *r, json_t **ret)
{
	if (!ca_name_valid(r->target))
		return -EINVAL;
	return done(json_pack("{s:s, s:b}", "target", r->target, "alive", r->alive), ret);
}

int ping_report_parse(json_t *body, struct ping_report *ret)
{
	struct ping_report r = {0};
	json_t *alive = json_object_get(body, "alive");

	if (!has_fields(body, 2) || !get_name(body, "target", r.target) || !json_is_boolean(alive))
		return -EBADMSG;
	r.alive = json_is_true(alive);
	*ret = r;
	return 0;
}

int ping_malicious_build(const struct ping_malicious *m, json_t **ret)
{
	if (!ca_name_valid(m->target) || m->failures == 0 || m->failures > PING_FAILURES_MAX)
		return -EINVAL;
	return done(
	    json_pack("{s:s, s:I}", "target", m->target, "failures", (json_int_t)m->failures), ret);
}

int ping_malicious_parse(json_t *body, struct ping_malicious *ret)
{
	struct ping_malicious m = {0};
	uint64_t f;

	if (!has_fields(body, 2) || !get_name(body, "target", m.target) ||
	    !get_uint(body, "failures", 1, PING_FAILURES_MAX, &f))
		return -EBADMSG;
	m.failures = (uint32_t)f;
	*ret = m;
	return 0;
}

/* ---- CRL_GET, CRL ---- */

int ping_crl_get_build(uint64_t number, json_t **ret)
{
	if (number > PING_CRL_NUMBER_MAX)
		return -EINVAL;
	return done(json_pack("{s:I}", "number", (json_int_t)number), ret);
}

int ping_crl_get_parse(json_t *body, uint64_t *ret_number)
{
	uint64_t n;

	if (!has_fields(body, 1) || !get_uint(body, "number", 0, PING_CRL_NUMBER_MAX, &n))
		return -EBADMSG;
	*ret_number = n;
	return 0;
}

static bool pem_valid(const char *pem, size_t len)
{
	if (len < sizeof(PEM_CRL_BEGIN) - 1 || len > PING_CRL_PEM_MAX ||
	    strncmp(pem, PEM_CRL_BEGIN, sizeof(PEM_CRL_BEGIN) - 1) != 0)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((pem[i] >= ' ' && pem[i] <= '~') || pem[i] == '\n' || pem[i] == '\r'))
			return false; /* a NUL, a control character or a byte beyond ASCII */
	return true;
}

int ping_crl_build(const char *pem, json_t **ret)
{
	if (pem == NULL || !pem_valid(pem, strnlen(pem, PING_CRL_PEM_MAX + 1)))
		return -EINVAL;
	return done(json_pack("{s:s}", "pem", pem), ret);
}

int ping_crl_parse(json_t *body, const char **ret_pem, size_t *ret_len)
{
	json_t *pem = json_object_get(body, "pem");

	if (!has_fields(body, 1) || !json_is_string(pem) ||
	    !pem_valid(json_string_value(pem), json_string_length(pem)))
		return -EBADMSG;
	*ret_pem = json_string_value(pem);
	*ret_len = json_string_length(pem);
	return 0;
}
