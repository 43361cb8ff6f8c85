/* export: one opened reading in each format, byte for byte where the format is fixed (text, CSV)
 * and read back strictly where it is JSON; FHIR codes the three doctor sensors with LOINC and
 * UCUM, marks an emergency, and refuses to guess for a sensor or unit it does not know; times
 * before 1970 or past 9999 are refused, as are values that are not numbers. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "export.h"

#define STREAM_HEX "000102030405060708090a0b0c0d0e0f"

static struct reading_header head(int64_t time_ms, uint64_t seq)
{
	struct reading_header h = {
	    .kind = READING_DOCTOR, .epoch = 7, .seq = seq, .time_ms = time_ms};

	snprintf(h.device, sizeof(h.device), "kit1");
	for (int i = 0; i < STREAM_ID_LEN; i++)
		h.stream[i] = (uint8_t)i;
	return h;
}

static struct reading_value val(const char *sensor, double value, const char *unit)
{
	struct reading_value v = {.value = value};

	snprintf(v.sensor, sizeof(v.sensor), "%s", sensor);
	snprintf(v.unit, sizeof(v.unit), "%s", unit);
	return v;
}

/* 2026-01-01T00:00:00.123Z */
#define T0 1767225600123LL

static void test_format_parse(void **state)
{
	enum export_format f = EXPORT_TEXT;

	(void)state;
	assert_int_equal(export_format_parse("csv", &f), 0);
	assert_int_equal(f, EXPORT_CSV);
	assert_int_equal(export_format_parse("fhir", &f), 0);
	assert_int_equal(f, EXPORT_FHIR);
	assert_int_equal(export_format_parse("json", &f), 0);
	assert_int_equal(f, EXPORT_JSON);
	assert_int_equal(export_format_parse("text", &f), 0);
	assert_int_equal(f, EXPORT_TEXT);
	f = EXPORT_CSV;
	assert_int_equal(export_format_parse("FHIR", &f), -EINVAL);
	assert_int_equal(export_format_parse("fhir ", &f), -EINVAL);
	assert_int_equal(export_format_parse("", &f), -EINVAL);
	assert_int_equal(export_format_parse("xml", &f), -EINVAL);
	assert_int_equal(export_format_parse(NULL, &f), -EINVAL);
	assert_int_equal(f, EXPORT_CSV);
}

static void test_rfc3339(void **state)
{
	char out[EXPORT_TIME_MAX] = "untouched";

	(void)state;
	assert_int_equal(export_rfc3339(0, out), 0);
	assert_string_equal(out, "1970-01-01T00:00:00.000Z");
	assert_int_equal(export_rfc3339(T0, out), 0);
	assert_string_equal(out, "2026-01-01T00:00:00.123Z");
	assert_int_equal(export_rfc3339(951782400999LL, out), 0); /* a leap day */
	assert_string_equal(out, "2000-02-29T00:00:00.999Z");
	assert_int_equal(export_rfc3339(253402300799999LL, out), 0);
	assert_string_equal(out, "9999-12-31T23:59:59.999Z");
	snprintf(out, sizeof(out), "untouched");
	assert_int_equal(export_rfc3339(-1, out), -ERANGE);
	assert_int_equal(export_rfc3339(-86400000, out), -ERANGE);
	assert_int_equal(export_rfc3339(INT64_MIN, out), -ERANGE);
	assert_int_equal(export_rfc3339(253402300800000LL, out), -ERANGE);
	assert_int_equal(export_rfc3339(INT64_MAX, out), -ERANGE);
	assert_string_equal(out, "untouched");
}

/* The calendar arithmetic against the C library's, over days spread across 1970..9999 and
 * every day of a leap and a common year; where time_t has 32 bits (armhf) only up to 2038. */
static void test_rfc3339_calendar(void **state)
{
	int64_t last = sizeof(time_t) >= 8 ? 253402300799LL : INT32_MAX;
	char out[EXPORT_TIME_MAX], want[EXPORT_TIME_MAX];

	(void)state;
	for (int64_t s = 0; s <= last; s += s < 1000 * 86400 ? 86399 : 7919 * 86400 + 3601) {
		time_t t = (time_t)s;
		struct tm tm;

		assert_non_null(gmtime_r(&t, &tm));
		strftime(want, sizeof(want), "%Y-%m-%dT%H:%M:%S.000Z", &tm);
		assert_int_equal(export_rfc3339(s * 1000, out), 0);
		assert_string_equal(out, want);
	}
}

static void test_text(void **state)
{
	struct reading_header h = head(T0, 42);
	struct reading_value v = val("pulse", 72, "/min");
	struct export_reading r = {&h, &v, -1};
	char out[EXPORT_LINE_MAX];

	(void)state;
	assert_int_equal(export_text(&r, out, sizeof(out)), 0);
	assert_string_equal(out, "2026-01-01 00:00:00 UTC kit1 pulse 72 /min");
	v = val("pulse", 25.5, "/min");
	v.emergency = true, v.threshold = 30;
	assert_int_equal(export_text(&r, out, sizeof(out)), 0);
	assert_string_equal(
	    out, "2026-01-01 00:00:00 UTC kit1 pulse 25.5 /min EMERGENCY (below 30; seq 42)");
	v = val("room", -3.25, "");
	assert_int_equal(export_text(&r, out, sizeof(out)), 0);
	assert_string_equal(out, "2026-01-01 00:00:00 UTC kit1 room -3.25 -");
	/* Too small a buffer, a time before 1970, a value that is not a number. */
	assert_int_equal(export_text(&r, out, 20), -EMSGSIZE);
	h.time_ms = -1;
	assert_int_equal(export_text(&r, out, sizeof(out)), -ERANGE);
	h.time_ms = T0;
	v.value = NAN;
	assert_int_equal(export_text(&r, out, sizeof(out)), -EINVAL);
	v.value = INFINITY;
	assert_int_equal(export_text(&r, out, sizeof(out)), -EINVAL);
}

static void test_csv(void **state)
{
	struct reading_header h = head(T0, 42);
	struct reading_value v = val("spo2", 97.25, "%");
	struct export_reading r = {&h, &v, T0 + 5000};
	char out[EXPORT_LINE_MAX];

	(void)state;
	assert_string_equal(export_csv_header(),
			    "time,device,sensor,value,unit,emergency,threshold,seq,epoch,stream,"
			    "received");
	assert_int_equal(export_csv(&r, out, sizeof(out)), 0);
	assert_string_equal(out,
			    "2026-01-01T00:00:00.123Z,kit1,spo2,97.25,%,false,,42,7," STREAM_HEX
			    ",2026-01-01T00:00:05.123Z");
	r.received_ms = -1;
	v = val("pulse", 25, "/min");
	v.emergency = true, v.threshold = 30;
	assert_int_equal(export_csv(&r, out, sizeof(out)), 0);
	assert_string_equal(
	    out, "2026-01-01T00:00:00.123Z,kit1,pulse,25,/min,true,30,42,7," STREAM_HEX ",");
	/* Odd units: a comma, quotes, spaces at the ends: quoted, quotes doubled. */
	v = val("x", 1, "mg,dl");
	assert_int_equal(export_csv(&r, out, sizeof(out)), 0);
	assert_non_null(strstr(out, ",x,1,\"mg,dl\",false,"));
	v = val("x", 1, "\"q\"");
	assert_int_equal(export_csv(&r, out, sizeof(out)), 0);
	assert_non_null(strstr(out, ",x,1,\"\"\"q\"\"\",false,"));
	v = val("x", 1, " m ");
	assert_int_equal(export_csv(&r, out, sizeof(out)), 0);
	assert_non_null(strstr(out, ",x,1,\" m \",false,"));
	v = val("x", 1, "a b");
	assert_int_equal(export_csv(&r, out, sizeof(out)), 0);
	assert_non_null(strstr(out, ",x,1,a b,false,"));
	/* Refused: too small, before 1970 (the reading's time or the relay's), not a number. */
	assert_int_equal(export_csv(&r, out, 40), -EMSGSIZE);
	h.time_ms = -1000;
	assert_int_equal(export_csv(&r, out, sizeof(out)), -ERANGE);
	h.time_ms = T0;
	r.received_ms = -2;
	assert_int_equal(export_csv(&r, out, sizeof(out)), -ERANGE);
	r.received_ms = -1;
	v.emergency = true, v.threshold = NAN;
	assert_int_equal(export_csv(&r, out, sizeof(out)), -EINVAL);
}

/* o dumped and read back: strict JSON (no duplicate keys, nothing but the one value). */
static json_t *reparse(json_t *o)
{
	char *text = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(15));
	json_error_t e;
	json_t *back;

	assert_non_null(text);
	back = json_loads(text, JSON_REJECT_DUPLICATES, &e);
	assert_non_null(back);
	free(text);
	json_decref(o);
	return back;
}

static void test_json(void **state)
{
	struct reading_header h = head(T0, 9);
	struct reading_value v = val("body_temp", 36.6, "C");
	struct export_reading r = {&h, &v, -1};
	json_t *o = NULL;

	(void)state;
	assert_int_equal(export_json(&r, &o), 0);
	o = reparse(o);
	assert_int_equal(json_object_size(o), 9);
	assert_string_equal(json_string_value(json_object_get(o, "device")), "kit1");
	assert_string_equal(json_string_value(json_object_get(o, "sensor")), "body_temp");
	assert_true(json_real_value(json_object_get(o, "value")) == 36.6);
	assert_string_equal(json_string_value(json_object_get(o, "unit")), "C");
	assert_int_equal(json_integer_value(json_object_get(o, "time")), T0);
	assert_int_equal(json_integer_value(json_object_get(o, "seq")), 9);
	assert_int_equal(json_integer_value(json_object_get(o, "epoch")), 7);
	assert_true(json_is_false(json_object_get(o, "emergency")));
	assert_string_equal(json_string_value(json_object_get(o, "stream")), STREAM_HEX);
	assert_null(json_object_get(o, "threshold"));
	assert_null(json_object_get(o, "received"));
	json_decref(o);
	/* An emergency adds its threshold; a relay's reading its reception time. */
	v = val("pulse", 25, "/min");
	v.emergency = true, v.threshold = 30;
	r.received_ms = T0 + 1;
	o = NULL;
	assert_int_equal(export_json(&r, &o), 0);
	o = reparse(o);
	assert_int_equal(json_object_size(o), 11);
	assert_true(json_is_true(json_object_get(o, "emergency")));
	assert_true(json_real_value(json_object_get(o, "threshold")) == 30);
	assert_int_equal(json_integer_value(json_object_get(o, "received")), T0 + 1);
	json_decref(o);
	/* A unit with quotes and a backslash comes back as it was. */
	v = val("x", 1, "\"\\u");
	o = NULL;
	assert_int_equal(export_json(&r, &o), 0);
	o = reparse(o);
	assert_string_equal(json_string_value(json_object_get(o, "unit")), "\"\\u");
	json_decref(o);
	/* Refused, nothing made: not a number (JSON has none), before 1970. */
	o = NULL;
	v.value = NAN;
	assert_int_equal(export_json(&r, &o), -EINVAL);
	v.value = 1;
	h.time_ms = -1;
	assert_int_equal(export_json(&r, &o), -ERANGE);
	assert_null(o);
}

static const char *path_str(json_t *o, const char *path)
{
	char buf[256], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *k = strtok_r(buf, ".", &save); k && o; k = strtok_r(NULL, ".", &save))
		o = (k[0] >= '0' && k[0] <= '9') ? json_array_get(o, (size_t)atoi(k))
						 : json_object_get(o, k);
	return json_string_value(o);
}

static void fhir_case(const char *sensor, double value, const char *unit, const char *loinc,
		      const char *ucum)
{
	struct reading_header h = head(T0, 12);
	struct reading_value v = val(sensor, value, unit);
	struct export_reading r = {&h, &v, T0 + 10};
	json_t *o = NULL, *q;

	assert_int_equal(export_fhir(&r, &o), 0);
	o = reparse(o);
	assert_string_equal(path_str(o, "resourceType"), "Observation");
	assert_string_equal(path_str(o, "id"), STREAM_HEX "-12");
	assert_string_equal(path_str(o, "status"), "final");
	assert_string_equal(path_str(o, "category.0.coding.0.code"), "vital-signs");
	assert_string_equal(path_str(o, "code.coding.0.system"), "http://loinc.org");
	assert_string_equal(path_str(o, "code.coding.0.code"), loinc);
	assert_string_equal(path_str(o, "subject.identifier.value"), STREAM_HEX);
	assert_null(json_object_get(json_object_get(o, "subject"), "reference"));
	assert_string_equal(path_str(o, "effectiveDateTime"), "2026-01-01T00:00:00.123Z");
	q = json_object_get(o, "valueQuantity");
	assert_string_equal(path_str(q, "system"), "http://unitsofmeasure.org");
	assert_string_equal(path_str(q, "code"), ucum);
	assert_true(json_number_value(json_object_get(q, "value")) == value);
	/* A whole value is an integer, not 72.0: a FHIR decimal's digits are its precision. */
	assert_true(value == trunc(value) ? json_is_integer(json_object_get(q, "value"))
					  : json_is_real(json_object_get(q, "value")));
	assert_null(json_object_get(o, "interpretation"));
	json_decref(o);
}

static void test_fhir_codes(void **state)
{
	(void)state;
	fhir_case("pulse", 72, "/min", "8867-4", "/min");
	fhir_case("pulse", 64.5, "bpm", "8867-4", "/min");
	fhir_case("body_temp", 36.6, "C", "8310-5", "Cel");
	fhir_case("body_temp", 38, "Cel", "8310-5", "Cel");
	fhir_case("spo2", 97.25, "%", "59408-5", "%");
}

static void test_fhir_emergency(void **state)
{
	struct reading_header h = head(T0, 5);
	struct reading_value v = val("pulse", 25, "/min");
	struct export_reading r = {&h, &v, -1};
	json_t *o = NULL;

	(void)state;
	v.emergency = true, v.threshold = 30;
	assert_int_equal(export_fhir(&r, &o), 0);
	o = reparse(o);
	assert_string_equal(path_str(o, "interpretation.0.coding.0.system"),
			    "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation");
	assert_string_equal(path_str(o, "interpretation.0.coding.0.code"), "LL");
	assert_string_equal(path_str(o, "interpretation.0.text"), "emergency: below 30");
	json_decref(o);
}

static void test_fhir_refused(void **state)
{
	struct reading_header h = head(T0, 5);
	struct reading_value v = val("room", 21.5, "C");
	struct export_reading r = {&h, &v, -1};
	json_t *o = NULL;

	(void)state;
	/* No code is invented for a sensor FHIR export does not know ... */
	assert_int_equal(export_fhir(&r, &o), -ENOTSUP);
	v = val("glucose", 5.5, "mmol/L");
	assert_int_equal(export_fhir(&r, &o), -ENOTSUP);
	/* ... nor for a known one in a unit it cannot vouch for. */
	v = val("body_temp", 98.6, "F");
	assert_int_equal(export_fhir(&r, &o), -ENOTSUP);
	v = val("pulse", 72, "");
	assert_int_equal(export_fhir(&r, &o), -ENOTSUP);
	v = val("spo2", 0.97, "1");
	assert_int_equal(export_fhir(&r, &o), -ENOTSUP);
	v = val("Pulse", 72, "/min");
	assert_int_equal(export_fhir(&r, &o), -ENOTSUP);
	/* Times out of range, values that are not numbers. */
	v = val("pulse", 72, "/min");
	h.time_ms = -1;
	assert_int_equal(export_fhir(&r, &o), -ERANGE);
	h.time_ms = 253402300800000LL;
	assert_int_equal(export_fhir(&r, &o), -ERANGE);
	h.time_ms = T0;
	v.value = NAN;
	assert_int_equal(export_fhir(&r, &o), -EINVAL);
	assert_null(o);
}

/* The whole output of readings in format, as a string. */
static char *run_out(enum export_format format, const struct export_reading *rs, size_t n,
		     size_t *ret_unmapped)
{
	struct export_out o;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	export_out_init(&o, f, format);
	for (size_t i = 0; i < n; i++) {
		int r = export_put(&o, &rs[i]);

		assert_true(r == 0 || r == -ENOTSUP);
	}
	assert_int_equal(export_end(&o), 0);
	*ret_unmapped = o.unmapped;
	fclose(f);
	return buf;
}

static void test_out(void **state)
{
	struct reading_header h1 = head(T0, 1), h2 = head(T0 + 1000, 2), h3 = head(T0 + 2000, 3);
	struct reading_value v1 = val("pulse", 72, "/min"), v2 = val("room", 21, "C"),
			     v3 = val("spo2", 90, "%");
	struct export_reading rs[] = {{&h1, &v1, -1}, {&h2, &v2, -1}, {&h3, &v3, T0 + 3000}};
	json_error_t e;
	json_t *b;
	size_t unmapped;
	char *s;

	(void)state;
	/* FHIR: one Bundle (collection) of the two it can map; the room reading skipped, counted.
	 */
	s = run_out(EXPORT_FHIR, rs, 3, &unmapped);
	assert_int_equal(unmapped, 1);
	assert_non_null(b = json_loads(s, JSON_REJECT_DUPLICATES, &e));
	assert_string_equal(path_str(b, "resourceType"), "Bundle");
	assert_string_equal(path_str(b, "type"), "collection");
	assert_int_equal(json_array_size(json_object_get(b, "entry")), 2);
	assert_string_equal(path_str(b, "entry.0.resource.code.coding.0.code"), "8867-4");
	assert_string_equal(path_str(b, "entry.1.resource.code.coding.0.code"), "59408-5");
	json_decref(b);
	free(s);
	/* No reading: still one Bundle, empty. */
	s = run_out(EXPORT_FHIR, rs, 0, &unmapped);
	assert_non_null(b = json_loads(s, JSON_REJECT_DUPLICATES, &e));
	assert_int_equal(json_array_size(json_object_get(b, "entry")), 0);
	json_decref(b);
	free(s);
	/* CSV: the header once, CRLF rows; nothing is unmapped outside FHIR. */
	s = run_out(EXPORT_CSV, rs, 3, &unmapped);
	assert_int_equal(unmapped, 0);
	assert_int_equal(strncmp(s, "time,device,", 12), 0);
	assert_null(strstr(s + 1, "time,device,"));
	assert_non_null(strstr(s, "\r\n2026-01-01T00:00:01.123Z,kit1,room,21,C,false,,2,"));
	free(s);
	s = run_out(EXPORT_CSV, rs, 0, &unmapped);
	assert_string_equal(s, "time,device,sensor,value,unit,emergency,threshold,seq,epoch,stream,"
			       "received\r\n");
	free(s);
	/* JSON: one object a line, each strict on its own. */
	s = run_out(EXPORT_JSON, rs, 3, &unmapped);
	{
		char *save = NULL;
		int lines = 0;

		for (char *l = strtok_r(s, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
			assert_non_null(b = json_loads(l, JSON_REJECT_DUPLICATES, &e));
			assert_int_equal(json_integer_value(json_object_get(b, "seq")), ++lines);
			json_decref(b);
		}
		assert_int_equal(lines, 3);
	}
	free(s);
	s = run_out(EXPORT_TEXT, rs, 2, &unmapped);
	assert_string_equal(s, "2026-01-01 00:00:00 UTC kit1 pulse 72 /min\n"
			       "2026-01-01 00:00:01 UTC kit1 room 21 C\n");
	free(s);
}

/* A reading export refuses writes nothing, and the output stays whole around it. */
static void test_out_refused(void **state)
{
	struct reading_header h1 = head(T0, 1), h2 = head(-5, 2);
	struct reading_value v1 = val("pulse", 72, "/min");
	struct export_reading good = {&h1, &v1, -1}, bad = {&h2, &v1, -1};
	struct export_out o;
	char *buf = NULL;
	size_t len = 0;
	json_error_t e;
	json_t *b;
	FILE *f = open_memstream(&buf, &len);

	(void)state;
	export_out_init(&o, f, EXPORT_FHIR);
	assert_int_equal(export_put(&o, &bad), -ERANGE);
	assert_int_equal(export_put(&o, &good), 0);
	assert_int_equal(export_put(&o, &bad), -ERANGE);
	assert_int_equal(export_end(&o), 0);
	fclose(f);
	assert_int_equal(o.written, 1);
	assert_int_equal(o.unmapped, 0);
	assert_non_null(b = json_loads(buf, JSON_REJECT_DUPLICATES, &e));
	assert_int_equal(json_array_size(json_object_get(b, "entry")), 1);
	json_decref(b);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_format_parse),
	    cmocka_unit_test(test_rfc3339),
	    cmocka_unit_test(test_rfc3339_calendar),
	    cmocka_unit_test(test_text),
	    cmocka_unit_test(test_csv),
	    cmocka_unit_test(test_json),
	    cmocka_unit_test(test_fhir_codes),
	    cmocka_unit_test(test_fhir_emergency),
	    cmocka_unit_test(test_fhir_refused),
	    cmocka_unit_test(test_out),
	    cmocka_unit_test(test_out_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
