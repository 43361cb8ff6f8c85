#include "export.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "encoding.h"
#include "stream.h"

/* 9999-12-31T23:59:59.999Z: RFC 3339 has four digits of year. */
#define TIME_LAST_MS 253402300799999LL
/* Values to 15 significant digits, as the text line shows them: a sensor's value has nowhere
 * near that many, and 17 would print 36.6 as 36.600000000000001. */
#define DUMP_FLAGS (JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15))

#define LOINC  "http://loinc.org"
#define UCUM   "http://unitsofmeasure.org"
#define INTERP "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
#define CATEG  "http://terminology.hl7.org/CodeSystem/observation-category"
/* The subject is a logical reference: the stream's pseudonym, under a system of our own. */
#define STREAM_SYSTEM "urn:iotsec:doctor-stream"

/* What FHIR knows of a sensor: its LOINC code, and the units (as sensors write them) it may be
 * in, all meaning the one UCUM unit. */
static const struct loinc {
	const char *sensor, *code, *display, *ucum;
	const char *units[3];
} loincs[] = {
    {"pulse", "8867-4", "Heart rate", "/min", {"/min", "bpm", NULL}},
    {"body_temp", "8310-5", "Body temperature", "Cel", {"C", "Cel", NULL}},
    {"spo2", "59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry", "%", {"%"}},
};

int export_format_parse(const char *name, enum export_format *ret)
{
	static const char *names[] = {"text", "csv", "json", "fhir"};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (name && strcmp(name, names[i]) == 0) {
			*ret = (enum export_format)i;
			return 0;
		}
	return -EINVAL;
}

/* The UTC calendar of ms since 1970 (0..TIME_LAST_MS), without time_t: a 32-bit Pi's time_t
 * (armhf) ends in 2038, and a reading may carry any time up to 9999. Days to a civil date as in
 * H. Hinnant's "chrono-compatible low-level date algorithms" (eras of 400 years). */
static void utc_fields(int64_t ms, int *y, int *mo, int *d, int *h, int *mi, int *sec)
{
	int64_t s = ms / 1000, days = s / 86400, rest = s % 86400;
	int64_t z = days + 719468, era = z / 146097, doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;

	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*mo = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = (int)(yoe + era * 400 + (*mo <= 2));
	*h = (int)(rest / 3600), *mi = (int)(rest / 60 % 60), *sec = (int)(rest % 60);
}

int export_rfc3339(int64_t ms, char out[EXPORT_TIME_MAX])
{
	int y, mo, d, h, mi, s;

	if (ms < 0 || ms > TIME_LAST_MS)
		return -ERANGE;
	utc_fields(ms, &y, &mo, &d, &h, &mi, &s);
	snprintf(out, EXPORT_TIME_MAX, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", y, mo, d, h, mi, s,
		 (int)(ms % 1000));
	return 0;
}

static int check(const struct export_reading *r)
{
	if (r->h->time_ms < 0 || r->h->time_ms > TIME_LAST_MS || r->received_ms < -1 ||
	    r->received_ms > TIME_LAST_MS)
		return -ERANGE;
	if (!isfinite(r->v->value) || (r->v->emergency && !isfinite(r->v->threshold)))
		return -EINVAL;
	return 0;
}

int export_text(const struct export_reading *r, char *out, size_t cap)
{
	const struct reading_value *v = r->v;
	int y, mo, d, h, mi, s, n, r2;

	if ((r2 = check(r)) < 0)
		return r2;
	utc_fields(r->h->time_ms, &y, &mo, &d, &h, &mi, &s);
	n = snprintf(out, cap, "%04d-%02d-%02d %02d:%02d:%02d UTC %s %s %.15g %s", y, mo, d, h, mi,
		     s, r->h->device, v->sensor, v->value, v->unit[0] ? v->unit : "-");
	if (n >= 0 && (size_t)n < cap && v->emergency)
		n += snprintf(out + n, cap - (size_t)n, " EMERGENCY (below %.15g; seq %" PRIu64 ")",
			      v->threshold, r->h->seq);
	return n < 0 || (size_t)n >= cap ? -EMSGSIZE : 0;
}

const char *export_csv_header(void)
{
	return "time,device,sensor,value,unit,emergency,threshold,seq,epoch,stream,received";
}

/* field, quoted when a reader would take it apart otherwise, appended at *at. */
static void csv_field(char *out, size_t cap, size_t *at, const char *field, bool first)
{
	size_t len = strlen(field);
	bool quote = strpbrk(field, ",\"\r\n") != NULL ||
		     (len > 0 && (field[0] == ' ' || field[len - 1] == ' '));

	if (!first && *at < cap)
		out[(*at)++] = ',';
	if (quote && *at < cap)
		out[(*at)++] = '"';
	for (; *field != '\0' && *at < cap; field++) {
		if (*field == '"' && *at + 1 < cap)
			out[(*at)++] = '"';
		out[(*at)++] = *field;
	}
	if (quote && *at < cap)
		out[(*at)++] = '"';
}

int export_csv(const struct export_reading *r, char *out, size_t cap)
{
	char when[EXPORT_TIME_MAX], received[EXPORT_TIME_MAX] = "", value[32], threshold[32] = "";
	char seq[24], epoch[16], stream[2 * STREAM_ID_LEN + 1];
	const char *fields[11];
	size_t at = 0;
	int r2;

	if ((r2 = check(r)) < 0 || (r2 = export_rfc3339(r->h->time_ms, when)) < 0 ||
	    (r->received_ms >= 0 && (r2 = export_rfc3339(r->received_ms, received)) < 0))
		return r2;
	snprintf(value, sizeof(value), "%.15g", r->v->value);
	if (r->v->emergency)
		snprintf(threshold, sizeof(threshold), "%.15g", r->v->threshold);
	snprintf(seq, sizeof(seq), "%" PRIu64, r->h->seq);
	snprintf(epoch, sizeof(epoch), "%" PRIu32, r->h->epoch);
	hex_encode(r->h->stream, STREAM_ID_LEN, stream);
	fields[0] = when, fields[1] = r->h->device, fields[2] = r->v->sensor, fields[3] = value;
	fields[4] = r->v->unit, fields[5] = r->v->emergency ? "true" : "false";
	fields[6] = threshold, fields[7] = seq, fields[8] = epoch, fields[9] = stream;
	fields[10] = received;
	for (size_t i = 0; i < 11; i++)
		csv_field(out, cap, &at, fields[i], i == 0);
	if (at >= cap)
		return -EMSGSIZE;
	out[at] = '\0';
	return 0;
}

int export_json(const struct export_reading *r, json_t **ret)
{
	char stream[2 * STREAM_ID_LEN + 1];
	json_t *o;
	int r2;

	if ((r2 = check(r)) < 0)
		return r2;
	hex_encode(r->h->stream, STREAM_ID_LEN, stream);
	o = json_pack("{s:s, s:s, s:f, s:s, s:I, s:I, s:I, s:b, s:s}", "device", r->h->device,
		      "sensor", r->v->sensor, "value", r->v->value, "unit", r->v->unit, "time",
		      (json_int_t)r->h->time_ms, "seq", (json_int_t)r->h->seq, "epoch",
		      (json_int_t)r->h->epoch, "emergency", r->v->emergency, "stream", stream);
	if (o == NULL ||
	    (r->v->emergency &&
	     json_object_set_new(o, "threshold", json_real(r->v->threshold)) < 0) ||
	    (r->received_ms >= 0 &&
	     json_object_set_new(o, "received", json_integer(r->received_ms)) < 0)) {
		json_decref(o);
		return -ENOMEM;
	}
	*ret = o;
	return 0;
}

static const struct loinc *loinc_of(const struct reading_value *v)
{
	for (size_t i = 0; i < sizeof(loincs) / sizeof(loincs[0]); i++) {
		if (strcmp(v->sensor, loincs[i].sensor) != 0)
			continue;
		for (size_t u = 0; u < 3 && loincs[i].units[u]; u++)
			if (strcmp(v->unit, loincs[i].units[u]) == 0)
				return &loincs[i];
		return NULL; /* a known sensor in a unit we cannot vouch for */
	}
	return NULL;
}

/* A whole number as an integer, so 72 reads "72" and not "72.0" (FHIR: a decimal's digits are
 * its precision). */
static json_t *decimal(double v)
{
	if (v == trunc(v) && fabs(v) < 1e15)
		return json_integer((json_int_t)v);
	return json_real(v);
}

int export_fhir(const struct export_reading *r, json_t **ret)
{
	const struct loinc *l;
	char when[EXPORT_TIME_MAX], stream[2 * STREAM_ID_LEN + 1], id[64], text[64];
	json_t *o = NULL, *interp = NULL;
	int r2;

	if ((r2 = check(r)) < 0 || (r2 = export_rfc3339(r->h->time_ms, when)) < 0)
		return r2;
	if ((l = loinc_of(r->v)) == NULL)
		return -ENOTSUP;
	hex_encode(r->h->stream, STREAM_ID_LEN, stream);
	/* [A-Za-z0-9-.]{1,64}: 32 + 1 + 20 at most. */
	snprintf(id, sizeof(id), "%s-%" PRIu64, stream, r->h->seq);
	o = json_pack("{s:s, s:s, s:s, s:[{s:[{s:s, s:s, s:s}]}], s:{s:[{s:s, s:s, s:s}], s:s},"
		      " s:{s:{s:s, s:s}}, s:{s:s}, s:s, s:{s:o, s:s, s:s, s:s}}",
		      "resourceType", "Observation", "id", id, "status", "final", "category",
		      "coding", "system", CATEG, "code", "vital-signs", "display", "Vital Signs",
		      "code", "coding", "system", LOINC, "code", l->code, "display", l->display,
		      "text", l->sensor, "subject", "identifier", "system", STREAM_SYSTEM, "value",
		      stream, "device", "display", r->h->device, "effectiveDateTime", when,
		      "valueQuantity", "value", decimal(r->v->value), "unit", l->ucum, "system",
		      UCUM, "code", l->ucum);
	if (o == NULL)
		return -ENOMEM;
	if (r->v->emergency) {
		snprintf(text, sizeof(text), "emergency: below %.15g", r->v->threshold);
		interp = json_pack("[{s:[{s:s, s:s, s:s}], s:s}]", "coding", "system", INTERP,
				   "code", "LL", "display", "Critical low", "text", text);
		if (interp == NULL || json_object_set_new(o, "interpretation", interp) < 0) {
			json_decref(o);
			return -ENOMEM;
		}
	}
	*ret = o;
	return 0;
}

void export_out_init(struct export_out *o, FILE *f, enum export_format format)
{
	memset(o, 0, sizeof(*o));
	o->f = f;
	o->format = format;
}

static int begin(struct export_out *o)
{
	if (o->begun)
		return 0;
	o->begun = true;
	if (o->format == EXPORT_CSV)
		fprintf(o->f, "%s\r\n", export_csv_header());
	else if (o->format == EXPORT_FHIR)
		fputs("{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"entry\":[", o->f);
	return 0;
}

int export_put(struct export_out *o, const struct export_reading *r)
{
	char line[EXPORT_LINE_MAX];
	json_t *j = NULL;
	char *text = NULL;
	int r2;

	switch (o->format) {
	case EXPORT_TEXT:
	case EXPORT_CSV:
		r2 = o->format == EXPORT_TEXT ? export_text(r, line, sizeof(line))
					      : export_csv(r, line, sizeof(line));
		if (r2 < 0)
			return r2;
		begin(o);
		/* RFC 4180 ends CSV rows with CRLF. */
		fprintf(o->f, "%s%s", line, o->format == EXPORT_CSV ? "\r\n" : "\n");
		break;
	case EXPORT_JSON:
	case EXPORT_FHIR:
		r2 = o->format == EXPORT_JSON ? export_json(r, &j) : export_fhir(r, &j);
		if (r2 == -ENOTSUP)
			o->unmapped++;
		if (r2 < 0)
			return r2;
		if (o->format == EXPORT_FHIR) {
			json_t *entry = json_pack("{s:o}", "resource", j);

			j = entry;
		}
		if (j == NULL || (text = json_dumps(j, DUMP_FLAGS)) == NULL) {
			json_decref(j);
			return -ENOMEM;
		}
		json_decref(j);
		begin(o);
		if (o->format == EXPORT_FHIR)
			fprintf(o->f, "%s\n%s", o->written ? "," : "", text);
		else
			fprintf(o->f, "%s\n", text);
		free(text);
		break;
	}
	o->written++;
	return fflush(o->f) != 0 || ferror(o->f) ? -EIO : 0;
}

int export_end(struct export_out *o)
{
	/* A CSV export without a reading still names its columns; a Bundle is still one. */
	begin(o);
	if (o->format == EXPORT_FHIR)
		fputs("]}\n", o->f);
	return fflush(o->f) != 0 || ferror(o->f) ? -EIO : 0;
}
