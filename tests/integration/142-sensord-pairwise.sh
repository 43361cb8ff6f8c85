#!/bin/sh
# A reading for one device alone (sensord.pairwise): pi2 sends its sensor "secret" to pi3 only,
# sealed under a key drawn from the pairwise key the two share. pi3's `iotsecctl readings
# --json` shows it, with its values and "to":"pi3"; pi4, in the same home and opening pi2's group
# readings all along, never does (nor counts it opened), and a subscriber to everything sees
# sealed bytes only.
. "$(dirname "$0")/common.sh"
IT_DIR=$(dirname "$0")
. "$IT_DIR/mqtt-common.sh"
need_netns
# 143 runs this with PAIR_PATH=1: rings so small that pi2 and pi3 share no index, and the path
# key the controller gives them stands in (as in 051).
if [ "${PAIR_PATH:-0}" = 1 ]; then
	TEST_TIMINGS="$(printf '%s\n' "$TEST_TIMINGS" | grep -v '^keyd')
keyd = { ring_size = 2; pool_size = 400; collect_ms = 1500; announce_ms = 500; };"
fi
make_home smith
broker_host 1
device 2 pi2 controller
device 3 pi3 node
device 4 pi4 node
NAMES="pi2 pi3 pi4"
broker_start

# Distinct values no other text contains: a plaintext leak is seen.
for n in $NAMES; do
	{
		echo "# sensor,value,unit"
		for k in $(seq 1 200); do printf 'room,%d.%04d,C\n' 20 $((k * 41 + 7)); done
	} >"$T/$n/room.csv"
done
{
	echo "# sensor,value,unit"
	for k in $(seq 1 200); do printf 'secret,%d.%04d,u\n' 77 $((k * 53 + 9)); done
} >"$T/pi2/secret.csv"
for n in $NAMES; do
	extra=""
	[ "$n" = pi2 ] && extra="secret=replay:$T/pi2/secret.csv"
	cat >>"$T/$n/iotsec.conf" <<CONF
sensord = { broker = "$BROKER_IP"; interval_ms = 300;
  sensors = "replay:$T/$n/room.csv $extra"; pairwise = "secret>pi3";
  alarm_output = "$T/$n/alarm"; resync_ms = 300; resync_tries = 2; spool_sync_ms = 50; };
CONF
done

say "every daemon of the home, and sensord, on each Pi"
mqtt_client raw 4
mqtt_sub_bg raw "$T/raw.out" -q 1 -t 'iotsec/#' -F '%t %x'
for n in $NAMES; do
	run_all "$n"
	run "$n" sensord
done
wait_until 30 same_epoch $NAMES || fail "rings not delivered"

readings() { iotsecctl -c "$T/$1/iotsec.conf" readings --json; }

# secrets NAME MIN [POOL]: NAME holds at least MIN of pi2's secret readings (of pool epoch POOL
# alone, when given), consecutive rows of its file, each marked for NAME. Within a pool nothing
# is lost; a reading still spooled when a new pool starts is dropped (README says why).
secrets() {
	readings "$1" | $PY -c '
import json, sys
name, want, T = sys.argv[1], int(sys.argv[2]), sys.argv[3]
pool = int(sys.argv[4]) if len(sys.argv) > 4 else None
rows = json.load(sys.stdin)["readings"]
values = [float(l.split(",")[1]) for l in open(T + "/pi2/secret.csv") if not l.startswith("#")]
got = [r for r in rows if r["sensor"] == "secret" and pool in (None, r["epoch"])]
if len(got) < want:
    sys.exit("%d secret readings" % len(got))
for r in got:
    if r["device"] != "pi2" or r["to"] != name or r["unit"] != "u" or r["emergency"]:
        sys.exit("wrong fields %r" % r)
seen = [r["value"] for r in got]
if seen[0] not in values:
    sys.exit("%r is no value of the file" % seen[0])
i = values.index(seen[0])
if seen != values[i:i + len(seen)]:
    sys.exit("%r are not consecutive rows from row %d" % (seen, i))
for r in rows:
    if r["sensor"] == "room" and r["to"] != "":
        sys.exit("a group reading marked for one device: %r" % r)
' "$1" "$2" "$T" ${3:+"$3"}
}
# rooms NAME DEVICE: NAME opened some of DEVICE's group readings.
rooms() {
	[ "$(readings "$1" | $PY -c 'import json,sys; print(sum(1 for r in json.load(sys.stdin)["readings"] if r["device"] == sys.argv[1] and r["sensor"] == "room"))' "$2")" -ge 5 ]
}

if [ "${PAIR_PATH:-0}" = 1 ]; then
	kind() { ctl "$T/pi2/run/keyd/keyd.sock" '{"v":1,"verb":"peers"}' | $PY -c 'import json,sys; print(([p["pairwise"] for p in json.load(sys.stdin)["peers"] if p["name"] == "pi3"] + ["none"])[0])'; }
	keyed() { [ "$(kind)" != none ]; }
	wait_until 10 keyed || fail "pi2 has no key with pi3"
	kind=$(kind)
	[ "$kind" = path ] || fail "pi2 and pi3 share a ring key ($kind): the test proves nothing (rerun)"
	say "pi2 and pi3 share no ring key: their path key stands in"
fi
say "pi3 opens pi2's secret readings"
wait_until 40 secrets pi3 10 || fail "pi3: $(secrets pi3 10 2>&1 | tail -n 1)"
say "$(readings pi3 | $PY -c 'import json,sys; r=[x for x in json.load(sys.stdin)["readings"] if x["sensor"]=="secret"]; print(len(r), "secret readings at pi3, the last:", r[-1])')"
st=$(ctl "$T/pi2/run/sensord/sensord.sock" '{"v":1,"verb":"status"}')
echo "$st" | $PY -c '
import json, sys
s = json.load(sys.stdin)
st = {x["name"]: x for x in s["sensors"]}
ok = st["secret"]["stream"] == "pair" and st["secret"]["error"] == "" and st["room"]["stream"] == "group"
sys.exit(0 if ok else "status: %r" % s["sensors"])' || fail "pi2's sensord: $st"

say "pi4 opens pi2's group readings, never its secret ones"
wait_until 20 rooms pi4 pi2 || fail "pi4 opens no group reading of pi2"
secrets pi4 1 2>/dev/null && fail "pi4 shows a secret reading: $(readings pi4)"
readings pi4 | grep -q secret && fail "pi4's readings name the secret sensor"
rooms pi3 pi2 || fail "pi3 opens no group reading of pi2"
# pi4's count of opened readings is its group readings, no more (counted first: more come).
opened=$(field pi4 sensord readings_opened)
n_room=$(readings pi4 | $PY -c 'import json,sys; print(sum(1 for r in json.load(sys.stdin)["readings"] if r["sensor"] == "room"))')
[ "$n_room" -lt 256 ] && [ "$opened" -gt "$n_room" ] && fail "pi4 opened $opened readings but lists $n_room group readings"
[ "$(field pi4 sensord refused)" -eq 0 ] || fail "pi4 refused something: $(ctl "$T/pi4/run/sensord/sensord.sock" '{"v":1,"verb":"status"}')"
[ "$(field pi3 sensord refused)" -eq 0 ] || fail "pi3 refused something: $(ctl "$T/pi3/run/sensord/sensord.sock" '{"v":1,"verb":"status"}')"

say "a new pool: both ends draw the keys again from the new rings"
e0=$(epoch pi2)
r=$(iotsecctl -c "$T/pi2/iotsec.conf" rekey) || fail "rekey refused: $r"
moved() { for n in $NAMES; do [ "$(epoch "$n")" -gt "$e0" ] || return 1; done; same_epoch $NAMES; }
wait_until 30 moved || fail "after the rekey: $(for n in $NAMES; do printf '%s=%s ' $n "$(epoch $n)"; done)"
e1=$(epoch pi2)
# new_pool NAME: NAME opened a secret reading sealed under the new pool's epoch.
new_pool() { readings "$1" | $PY -c 'import json,sys; sys.exit(0 if any(r["sensor"] == "secret" and r["epoch"] == int(sys.argv[1]) for r in json.load(sys.stdin)["readings"]) else 1)' "$e1"; }
wait_until 30 new_pool pi3 || fail "pi3 opens no secret reading of pool $e1: $(readings pi3 | tail -n 20)"
wait_until 20 secrets pi3 20 "$e1" || fail "after the rekey, pi3: $(secrets pi3 20 "$e1" 2>&1 | tail -n 1)"
secrets pi3 1 "$e0" || fail "before the rekey, pi3: $(secrets pi3 1 "$e0" 2>&1 | tail -n 1)"
! readings pi4 | grep -q secret || fail "pi4's readings name the secret sensor after the rekey"
# A reading sealed under the old pool is not the sender's fault: nothing is refused.
[ "$(field pi3 sensord refused)" -eq 0 ] || fail "pi3 refused something after the rekey: $(ctl "$T/pi3/run/sensord/sensord.sock" '{"v":1,"verb":"status"}')"

say "the broker's subscribers see sealed bytes only"
kill "$SUB_PID" 2>/dev/null || true
grep -q "^iotsec/smith/pi2/to/pi3 " "$T/raw.out" || fail "no reading of pi2 for pi3 on the broker"
grep -q "^iotsec/smith/pi2/to/pi4 " "$T/raw.out" && fail "a reading of pi2 for pi4"
grep -q "^iotsec/smith/pi2/group 0.*$(printf secret | od -An -tx1 | tr -d ' \n')" "$T/raw.out" &&
	fail "the secret sensor on the group stream"
for v in $(sed -n 's/^secret,\([0-9.]*\),u$/\1/p' "$T/pi2/secret.csv" | head -n 10); do
	hex=$(printf '%s' "$v" | od -An -tx1 | tr -d ' \n')
	! grep -q "$hex" "$T/raw.out" || fail "the secret value $v crosses the broker in the clear"
done
hex=$(printf secret | od -An -tx1 | tr -d ' \n')
! grep -q "$hex" "$T/raw.out" || fail "'secret' crosses the broker in the clear"
! grep -a -q "secret" "$T/pi2/state/sensord/spool/log" 2>/dev/null ||
	fail "pi2's spool holds a secret reading in the clear"
say "$(grep -c '/to/pi3 ' "$T/raw.out") sealed readings for pi3 alone"
