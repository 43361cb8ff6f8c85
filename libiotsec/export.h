/* One opened doctor reading (reading.h) in the forms a doctor takes away (SPEC 9): a text line,
 * a CSV row (after one header row), a JSON object a line, and a FHIR R4 Observation resource in
 * a Bundle of type collection, the form clinics import.
 *
 * FHIR: a sensor is coded only when it is known, never guessed:
 *   pulse      LOINC 8867-4  Heart rate          UCUM /min  (unit "/min", "bpm")
 *   body_temp  LOINC 8310-5  Body temperature    UCUM Cel   (unit "C", "Cel")
 *   spo2       LOINC 59408-5 Oxygen saturation   UCUM %     (unit "%")
 *                            in Arterial blood by Pulse oximetry
 * Any other sensor, or a known one in another unit, is refused (-ENOTSUP): the caller skips it
 * and says how many. The subject is the stream's pseudonym (its id), not a patient: the export
 * names nobody the relay could not. An emergency record carries the interpretation "LL"
 * (critical low: the kit raises it for a value below its threshold).
 *
 * Times are RFC 3339 UTC with milliseconds; a time before 1970 or after 9999 is refused
 * (-ERANGE): a sealed reading cannot carry one (reading_header_parse()). */
#ifndef IOTSEC_EXPORT_H
#define IOTSEC_EXPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "reading.h"

#define EXPORT_TIME_MAX 32  /* "9999-12-31T23:59:59.999Z" and its NUL, with room */
#define EXPORT_LINE_MAX 512 /* a text line or a CSV row, with its NUL */

enum export_format {
	EXPORT_TEXT,
	EXPORT_CSV,
	EXPORT_JSON,
	EXPORT_FHIR,
};

/* One opened reading. received_ms is when the relay received it, or -1 when unknown (a reading
 * read from the broker). */
struct export_reading {
	const struct reading_header *h;
	const struct reading_value *v;
	int64_t received_ms;
};

/* "text", "csv", "json" or "fhir"; -EINVAL otherwise. */
int export_format_parse(const char *name, enum export_format *ret);
/* ms since 1970 as "2026-12-02T14:16:03.123Z"; -ERANGE outside 1970..9999. */
int export_rfc3339(int64_t ms, char out[EXPORT_TIME_MAX]);

/* "2026-12-02 14:16:03 UTC kit1 pulse 72 /min", and " EMERGENCY (below 30; seq 7)" for an
 * emergency record; no newline. -EMSGSIZE when out (cap bytes) is too small. */
int export_text(const struct export_reading *r, char *out, size_t cap);
/* The CSV header row and one row (RFC 4180: a field with a comma, a quote or a space at either
 * end is quoted, its quotes doubled; no newline). Columns: time, device, sensor, value, unit,
 * emergency, threshold (empty but for an emergency), seq, epoch, stream, received (empty when
 * unknown). */
const char *export_csv_header(void);
int export_csv(const struct export_reading *r, char *out, size_t cap);
/* {"device","sensor","value","unit","time" (unix ms),"seq","epoch","emergency","stream"}, with
 * "threshold" for an emergency record and "received" when known. */
int export_json(const struct export_reading *r, json_t **ret);
/* The Observation resource; -ENOTSUP for a sensor (or unit) it cannot map. */
int export_fhir(const struct export_reading *r, json_t **ret);

/* A stream of readings in one format to f: the CSV header first, the FHIR Bundle opened at the
 * first reading and closed by export_end() (an empty Bundle when there was none). */
struct export_out {
	FILE *f;
	enum export_format format;
	bool begun;
	size_t written;	 /* readings written */
	size_t unmapped; /* readings FHIR could not map, skipped */
};
void export_out_init(struct export_out *o, FILE *f, enum export_format format);
/* Write one reading and flush. 0, -ENOTSUP when skipped (counted in unmapped), -ERANGE for a
 * time out of range, -EIO when f fails. */
int export_put(struct export_out *o, const struct export_reading *r);
/* Close what export_put() opened; -EIO when f fails. */
int export_end(struct export_out *o);

#endif
