#!/bin/sh
# A doctor who is offline. drwho grants kit1 a doctor stream through the relay and goes away;
# kit1 sends its pulse and spo2 readings, each kept in its spool until the relay's receipt says
# it is committed; a pulse of 25 in the middle raises an emergency. Later drwho fetches: the
# emergency comes first, then every reading kit1 sent, each once, in kit1's order; fetching again
# gives nothing new. The relay's store and log hold no value and no key. drwho's acknowledgement,
# sent through the relay, clears kit1's alarm.
. "$(dirname "$0")/common.sh"
. "$IT_DIR/sensord-common.sh"
. "$IT_DIR/relay-common.sh"
need_netns
sensord_home
N=120 # rows of each sensor; the 61st pulse is the emergency
i=1
: >"$T/pulse.csv"
: >"$T/spo2.csv"
while [ $i -le $N ]; do
	if [ $i -eq 61 ]; then echo "pulse,25,/min"; else echo "pulse,$((60 + i % 30)).5,/min"; fi >>"$T/pulse.csv"
	echo "spo2,$((90 + i % 9)).25,%" >>"$T/spo2.csv"
	i=$((i + 1))
done
kit 1 hub controller
kit 2 kit1 node "sensors = \"pulse=replay:$T/pulse.csv spo2=replay:$T/spo2.csv\"; interval_ms = 100; alarm_output = \"$T/alarm\"; $RELAY_KIT"
echo 0 >"$T/alarm"
relay 7 relay1
doctor 5 drwho
run_relay relay1
wait_until 10 relay_ready relay1 || fail "relay1 not connected: $(relay_call relay1 status)"
for n in hub kit1; do run_kit "$n"; done
home_ready hub kit1

grant_via relay1 drwho kit1
wait_until 15 granted kit1 drwho || fail "kit1 did not install the grant sent through relay1: $(sstatus kit1)"
say "drwho granted kit1 through relay1, and is now offline"

# Every row read, and nothing left waiting for a receipt.
replay_done() {
	sstatus kit1 | $PY -c 'import json, sys
s = json.load(sys.stdin)
sys.exit(not (all(x.get("error") == "done" for x in s["sensors"]) and s["spooled"] == 0))'
}
wait_until 60 replay_done || fail "kit1 still holds readings: $(sstatus kit1)"
wait_until 5 sh -c "[ \"\$(cat '$T/alarm')\" = 1 ]" || fail "no alarm on kit1"
SEQ=$(sstatus kit1 | json_get '["alarm"]["seq"]')
STORED=$(rfield relay1 relay readings)
[ "$STORED" -ge $((2 * N)) ] || fail "relay1 stores $STORED readings, kit1 sent $((2 * N)) and an emergency: $(relay_call relay1 relay)"
[ "$(rfield relay1 status refused)" = 0 ] || fail "relay1 refused some: $(relay_call relay1 status)"
say "kit1 sent $((2 * N)) readings and an emergency (seq $SEQ); relay1 stored $STORED, every one receipted"

fetch_json relay1 drwho "$T/fetch.out"
$PY - "$T/fetch.out" "$T/pulse.csv" "$T/spo2.csv" "$SEQ" <<'PY' || fail "what drwho fetched is wrong (above)"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
ok = True
def bad(why):
    global ok
    ok = False
    print("fetch:", why)
first = rows[0] if rows else {}
if not (first.get("emergency") and first.get("seq") == int(sys.argv[4]) and first.get("value") == 25):
    bad("the first reading is not the emergency record: %r" % first)
keys = [(r["device"], r["seq"]) for r in rows]
if len(keys) != len(set(keys)):
    bad("a (device, seq) came twice")
for sensor, path in (("pulse", sys.argv[2]), ("spo2", sys.argv[3])):
    want = [float(l.split(",")[1]) for l in open(path) if l.strip()]
    got = [r for r in rows if r["sensor"] == sensor and not r["emergency"] and r["device"] == "kit1"]
    seqs = [r["seq"] for r in got]
    if seqs != sorted(seqs):
        bad("%s out of order" % sensor)
    vals = [r["value"] for r in got]
    if vals != want:
        bad("%s: %d readings, %d sent; first differences %r" % (sensor, len(vals), len(want),
            [(a, b) for a, b in zip(vals, want) if a != b][:3]))
sys.exit(not ok)
PY
say "drwho fetched the emergency first, then all $((2 * N)) readings in order, each once"

fetch_json relay1 drwho "$T/fetch2.out"
[ ! -s "$T/fetch2.out" ] || fail "a second fetch gave $(wc -l <"$T/fetch2.out") readings again"
[ "$(rfield relay1 relay undelivered)" = 0 ] || fail "relay1 still queues: $(relay_call relay1 relay)"
say "a second fetch gives nothing: the queue is empty"

# No value and no key in the store or the log: the root drwho keeps, and values as text.
ROOT_HEX=$($PY -c 'import base64, json, sys
print(base64.b64decode(json.load(open(sys.argv[1]))["root"]).hex())' "$T/drwho/roots/kit1.json" 2>/dev/null ||
	find "$T/drwho/roots" -type f | head -n 1 | xargs cat | $PY -c 'import base64, json, re, sys
t = sys.stdin.read(); m = re.search(r"\"root\"\s*:\s*\"([^\"]+)\"", t); print(base64.b64decode(m.group(1)).hex())')
[ -n "$ROOT_HEX" ] || fail "cannot read drwho's root of kit1"
store_dump relay1 >"$T/dump.sql"
[ -s "$T/dump.sql" ] || fail "empty dump"
for needle in "$ROOT_HEX" pulse spo2 '/min' '60.5' '97.25' kit1; do
	n=$(printf '%s' "$needle" | tr 'a-f' 'A-F')
	if grep -qiF "$needle" "$T/dump.sql"; then fail "relay1's store holds '$needle'"; fi
	if grep -qF "$n" "$T/dump.sql" && [ "$needle" = "$ROOT_HEX" ]; then fail "relay1's store holds the root"; fi
	if grep -qF "$needle" "$T/relay1/relayd.log"; then fail "relay1's log holds '$needle'"; fi
done
# sqlite3 prints blobs in hex: a value in the clear would show there as its bytes' hex.
for word in pulse spo2 /min; do
	hex=$(printf '%s' "$word" | od -An -tx1 | tr -d ' \n')
	if grep -qiF "$hex" "$T/dump.sql"; then fail "relay1's store holds '$word' in a blob"; fi
done
say "relay1's store and log hold no value and no key"

doctor_via relay1 drwho ack --kit kit1 --seq "$SEQ" >"$T/ack.log" 2>&1 || fail "ack: $(cat "$T/ack.log")"
wait_until 15 sh -c "[ \"\$(cat '$T/alarm')\" = 0 ]" || fail "kit1's alarm still set after the ack through relay1: $(sstatus kit1)"
say "drwho's acknowledgement through relay1 cleared kit1's alarm"
