#!/bin/sh
# The doctor's page, end to end. kit1 sends its pulse, spo2 and body temperature through relay1
# to drwho, granted through the relay; a pulse of 25 among them raises an emergency. drwho opens
# the page the relay serves in a browser (Debian's chromium, headless, driven by playwright-core:
# tests/web/page.test.mjs) on its own host, with its key and certificate files: the charts show
# exactly the readings kit1 sent, the emergency is at the top of the page, and acknowledging it
# there clears kit1's alarm output. No request the browser made carries the key, the root of
# kit1's stream, a reading's plaintext or a value. The screenshot is kept in the test logs
# (relay-page.png) for a person to look at. Skipped when node or chromium is missing.
. "$(dirname "$0")/common.sh"
. "$IT_DIR/sensord-common.sh"
. "$IT_DIR/relay-common.sh"
. "$IT_DIR/page-common.sh"
why=$(page_missing)
if [ -n "$why" ]; then
	echo "skipped: $why"
	exit 77
fi
page_install
need_netns
sensord_home
# Values with three decimals (exact in binary) cannot be mistaken for a seq, a time or a
# browser's version in a request; the 21st pulse is the emergency.
N=40
i=1
: >"$T/pulse.csv"
: >"$T/spo2.csv"
: >"$T/body_temp.csv"
while [ $i -le $N ]; do
	if [ $i -eq 21 ]; then echo "pulse,25,/min"; else echo "pulse,$((60 + i % 25)).125,/min"; fi >>"$T/pulse.csv"
	echo "spo2,$((90 + i % 9)).375,%" >>"$T/spo2.csv"
	echo "body_temp,$((36 + i % 3)).625,C" >>"$T/body_temp.csv"
	i=$((i + 1))
done
kit 1 hub controller
kit 2 kit1 node "sensors = \"pulse=replay:$T/pulse.csv spo2=replay:$T/spo2.csv body_temp=replay:$T/body_temp.csv\"; interval_ms = 100; alarm_output = \"$T/alarm\"; $RELAY_KIT"
echo 0 >"$T/alarm"
relay 7 relay1
doctor 5 drwho
run_relay relay1
wait_until 10 relay_ready relay1 || fail "relay1 not connected: $(relay_call relay1 status)"
for n in hub kit1; do run_kit "$n"; done
home_ready hub kit1
grant_via relay1 drwho kit1
wait_until 15 granted kit1 drwho || fail "kit1 did not install the grant sent through relay1: $(sstatus kit1)"
say "drwho granted kit1 through relay1"

replay_done() {
	sstatus kit1 | $PY -c 'import json, sys
s = json.load(sys.stdin)
sys.exit(not (all(x.get("error") == "done" for x in s["sensors"]) and s["spooled"] == 0))'
}
wait_until 60 replay_done || fail "kit1 still holds readings: $(sstatus kit1)"
wait_until 5 sh -c "[ \"\$(cat '$T/alarm')\" = 1 ]" || fail "no alarm on kit1"
SEQ=$(sstatus kit1 | json_get '["alarm"]["seq"]')
say "kit1 sent $((3 * N)) readings and an emergency (seq $SEQ) through relay1"

# What the page must chart: the readings of the replay files, each with the time kit1 read it,
# which drwho's tool tells (the page reads the relay's history, which a fetch leaves as it is).
fetch_json relay1 drwho "$T/fetch.out"
$PY - "$T/fetch.out" "$SEQ" "$T/pulse.csv" "$T/spo2.csv" "$T/body_temp.csv" <<'PY' || fail "what drwho fetched is not what kit1 sent (above)"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
ok = True
em = [r for r in rows if r["emergency"]]
if [(r["sensor"], r["value"], r["seq"]) for r in em] != [("pulse", 25, int(sys.argv[2]))]:
    print("emergency records:", em)
    ok = False
for path in sys.argv[3:]:
    want = [(l.split(",")[0], float(l.split(",")[1])) for l in open(path) if l.strip()]
    got = [(r["sensor"], r["value"]) for r in rows if r["sensor"] == want[0][0] and not r["emergency"]]
    if got != want or any(r["device"] != "kit1" for r in rows):
        print("%s: %d readings, %d sent" % (want[0][0], len(got), len(want)))
        ok = False
sys.exit(not ok)
PY
page_files "$T/fetch.out" "$T/drwho" "$T/drwho/roots/kit1.json"
say "drwho's tool fetched every reading kit1 sent and the emergency: the page must chart $(grep -c . "$T/fetch.out")"

SHOT=$T/relay-page.png
LOGS=${TEST_LOG_DIR:-$(cd "$IT_DIR/../.." && pwd)/build/test-logs}
page_run "$(host_of drwho)" "$(relay_url relay1)" "$T/drwho" "$SHOT" "kit1:$SEQ" || {
	sed 's/^/    page: /' "$T/page.log" >&2
	[ ! -f "$SHOT" ] || { mkdir -p "$LOGS" && cp "$SHOT" "$LOGS/relay-page.png"; }
	fail "the page's checks failed (above; the screenshot, if any, in $LOGS/relay-page.png)"
}
sed 's/^/    page: /' "$T/page.log"
[ -s "$SHOT" ] || fail "no screenshot"
mkdir -p "$LOGS"
cp "$SHOT" "$LOGS/relay-page.png"
say "the page charted every reading, the emergency at the top; no key, root or value in any request"
say "screenshot: $SHOT, kept as $LOGS/relay-page.png"

wait_until 15 sh -c "[ \"\$(cat '$T/alarm')\" = 0 ]" || fail "kit1's alarm still set after the page's acknowledgement: $(sstatus kit1)"
grep -q "acknowledged" "$T/kit1/sensord.log" || fail "kit1's log does not say it was acknowledged"
say "the acknowledgement sent from the page, through relay1, cleared kit1's alarm"
