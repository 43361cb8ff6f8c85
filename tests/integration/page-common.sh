# The doctor's page in a browser (tests/web/page.test.mjs, Debian's chromium driven by
# playwright-core), run on a doctor's host against a relay: 166 and make demo source this after
# common.sh. The browser runs inside the host's network namespace, which has no way out: the
# npm package is installed before (tests/web/page-test.sh --install).

PAGE_TEST=$(cd "$IT_DIR/../web" && pwd)/page-test.sh

# page_missing: why the page cannot run here ("" when it can).
page_missing() {
	if ! command -v node >/dev/null 2>&1; then
		echo "node is not installed (scripts/deps.sh build installs Debian's nodejs)"
	elif ! command -v "${CHROMIUM:-/usr/bin/chromium}" >/dev/null 2>&1; then
		echo "chromium is not installed (scripts/deps.sh test installs Debian's chromium)"
	fi
}

# page_install: playwright-core for page.test.mjs, from outside any namespace; its output in
# $T/page-install.log.
page_install() {
	"$PAGE_TEST" --install >"$T/page-install.log" 2>&1 ||
		fail "npm ci for the page test: $(tail -n 5 "$T/page-install.log")"
}

# page_files FETCHED DOCTOR_DIR ROOT_FILE... : from FETCHED (iotsec-doctor fetch --format json,
# one reading a line: what the page must chart, no more, no less) write $T/expected.json, and
# $T/secrets.json with each ROOT_FILE's root (iotsec-doctor's roots/KIT.json), each reading's
# plaintext as the kit sealed it (reading.h), each value as text when it cannot be mistaken for
# a seq or a time (it has a decimal point), and the doctor key's PEM and DER in base64: none of
# them may be in any request the browser makes.
page_files() {
	$PY - "$T" "$@" <<'PY'
import base64, json, sys
t, fetched, ddir, roots = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
rows = [json.loads(l) for l in open(fetched) if l.strip()]

def num(v):
    # reading.c's format_number: a whole number as an integer, else the shortest round trip.
    return "%.0f" % v if v == int(v) else repr(v)

expected, plain, texts = [], [], set()
for r in rows:
    expected.append({"kit": r["device"], "sensor": r["sensor"], "time_ms": r["time"],
                     "value": r["value"], "emergency": r["emergency"]})
    p = '{"sensor":"%s","value":%s,"unit":"%s"' % (r["sensor"], num(r["value"]), r["unit"])
    if r["emergency"]:
        p += ',"emergency":true,"threshold":%s' % num(r["threshold"])
    plain.append(p + "}")
    if "." in num(r["value"]):
        texts.add(num(r["value"]))
pem = open(ddir + "/doctor.key").read()
der = base64.b64encode(base64.b64decode("".join(l for l in pem.splitlines() if "-----" not in l))).decode()
secrets = {"roots": [json.load(open(f))["root"] for f in roots],
           "plaintexts": sorted(set(plain)) + sorted(texts) + [pem, der]}
json.dump(expected, open(t + "/expected.json", "w"))
json.dump(secrets, open(t + "/secrets.json", "w"))
PY
}

# page_run HOST URL DOCTOR_DIR SCREENSHOT [ACK]: page.test.mjs on HOST against the page at URL
# with DOCTOR_DIR's doctor.key and doctor.crt, $T/expected.json and $T/secrets.json, the
# screenshot saved in SCREENSHOT, then (ACK = KIT:SEQ) that emergency acknowledged from the page.
# Its output in $T/page.log; non-zero when a check failed.
page_run() {
	on "$1" "$PAGE_TEST" --url "$2/" --key "$3/doctor.key" --cert "$3/doctor.crt" \
		--expect "$T/expected.json" --secrets "$T/secrets.json" --screenshot "$4" \
		${5:+--ack "$5"} --timeout 60 >"$T/page.log" 2>&1
}
