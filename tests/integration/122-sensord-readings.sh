#!/bin/sh
# Sensor readings of a home, sealed end to end: a broker on a host of its own and three Pis that
# run every daemon plus iotsec-sensord with the replay driver (a CSV of known values). Each Pi
# opens the others' group readings: `iotsecctl readings --json` shows each device's values, the
# right ones, in the order of its file. While the broker is away the readings wait in each
# Pi's spool and arrive afterwards, none missing, none out of order. The broker and anyone
# subscribed to everything see only sealed bytes: no value, no sensor name.
. "$(dirname "$0")/common.sh"
IT_DIR=$(dirname "$0")
. "$IT_DIR/mqtt-common.sh"
need_netns
make_home smith
broker_host 1
device 2 pi2 controller
device 3 pi3 node
device 4 pi4 node
NAMES="pi2 pi3 pi4"
broker_start

# Each device's own values: distinct numbers no other text contains (a plaintext leak is seen).
i=0
for n in $NAMES; do
	i=$((i + 1))
	{
		echo "# sensor,value,unit: one row a reading"
		for k in $(seq 1 100); do
			printf 'room,%d.%04d,C\n' $((10 + i)) $((k * 37 + i))
		done
	} >"$T/$n/readings.csv"
	cat >>"$T/$n/iotsec.conf" <<CONF
sensord = { broker = "$BROKER_IP"; interval_ms = 300; sensors = "replay:$T/$n/readings.csv";
  alarm_output = "$T/$n/alarm"; resync_ms = 300; resync_tries = 2; spool_sync_ms = 50; };
CONF
done

say "every daemon of the home, and sensord, on each Pi"
# The raw subscriber, on pi3's host with a certificate of its own: pi3's sensord runs beside it,
# and the broker names a client by its certificate's CN (a second connection with one
# certificate closes the first).
mqtt_client raw 3
mqtt_sub_bg raw "$T/raw.out" -q 1 -t 'iotsec/#' -F '%t %x'
for n in $NAMES; do
	run_all "$n"
	run "$n" sensord
done
wait_until 30 same_epoch $NAMES || fail "rings not delivered"
for n in $NAMES; do
	st=$(ctl "$T/$n/run/sensord/sensord.sock" '{"v":1,"verb":"status"}')
	for f in device broker broker_name sync epoch pool group_start doctor published spooled \
		spool_dropped readings_opened refused refused_by alarm sensors; do
		echo "$st" | grep -q "\"$f\":" || fail "$n's sensord status has no $f: $st"
	done
done

# readings NAME: NAME's readings, as iotsecctl prints them with --json.
readings() {
	if iotsecctl -c "$T/$1/iotsec.conf" readings --json >"$T/$1.readings" 2>"$T/$1.readings.err"; then
		cat "$T/$1.readings"
	else
		ctl "$T/$1/run/sensord/sensord.sock" '{"v":1,"verb":"readings"}'
	fi
}

# sees NAME MIN: NAME holds at least MIN readings of each other device, and those of each are
# consecutive rows of that device's file, in order, with their unit, and nothing of its own.
sees() {
	readings "$1" | $PY -c '
import json, sys
name, want, T, names = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4].split()
d = json.load(sys.stdin)
rows = d["readings"]
for r in rows:
    if r["device"] == name:
        sys.exit("its own reading is listed: %r" % r)
for other in names:
    if other == name:
        continue
    csv = [l.strip().split(",") for l in open("%s/%s/readings.csv" % (T, other))
           if l.strip() and not l.startswith("#")]
    values = [float(c[1]) for c in csv]
    got = [r for r in rows if r["device"] == other]
    if len(got) < want:
        sys.exit("%d readings of %s" % (len(got), other))
    seen = [r["value"] for r in got]
    if seen[0] not in values:
        sys.exit("%s: %r is no value of its file" % (other, seen[0]))
    i = values.index(seen[0])
    if seen != values[i:i + len(seen)]:
        sys.exit("%s: %r are not consecutive rows of its file from row %d" % (other, seen, i))
    seqs = [r["seq"] for r in got]
    if seqs != sorted(seqs) or len(set(seqs)) != len(seqs):
        sys.exit("%s: seqs out of order: %r" % (other, seqs))
    for r in got:
        if r["sensor"] != "room" or r["unit"] != "C" or r["emergency"] or r["epoch"] < 1:
            sys.exit("%s: wrong fields %r" % (other, r))
' "$1" "$2" "$T" "$NAMES"
}

# pi2's operator follows the readings as they come (the `reading` events).
iotsecctl -c "$T/pi2/iotsec.conf" readings --follow --json >"$T/follow.out" 2>&1 &
FOLLOW_PID=$!
PIDS="$PIDS $FOLLOW_PID"

say "each Pi opens the others' readings, in order"
for n in $NAMES; do
	wait_until 40 sees "$n" 10 || fail "$n: $(sees "$n" 10 2>&1 | tail -n 1)"
done
say "$(readings pi3 | $PY -c 'import json,sys; r=json.load(sys.stdin)["readings"]; print(len(r), "readings at pi3, the last:", r[-1])')"

for n in $NAMES; do
	st=$(ctl "$T/$n/run/sensord/sensord.sock" '{"v":1,"verb":"status"}')
	echo "$st" | $PY -c '
import json, sys
s = json.load(sys.stdin)
ok = (s["broker"] == "connected" and s["sync"] == "synced" and s["published"] > 0 and
      s["readings_opened"] > 0 and s["refused"] == 0 and s["group_start"] > 0 and
      s["alarm"]["set"] is False and s["sensors"][0]["stream"] == "group" and
      s["sensors"][0]["error"] == "")
sys.exit(0 if ok else "status: %r" % s)' || fail "$n's sensord: $st"
done

say "iotsecctl readings --follow shows them as they come"
followed() { [ "$(grep -c '"device":"pi3"' "$T/follow.out")" -ge 5 ] && [ "$(grep -c '"device":"pi4"' "$T/follow.out")" -ge 5 ]; }
wait_until 10 followed || fail "iotsecctl readings --follow: $(tail -n 3 "$T/follow.out")"
kill "$FOLLOW_PID" 2>/dev/null || true
! grep -q '"device":"pi2"' "$T/follow.out" || fail "pi2 follows its own readings"

say "the broker goes away for three seconds: the readings wait in the spools"
broker_stop
spooling() { [ "$(field "$1" sensord spooled)" -gt 0 ]; }
for n in $NAMES; do wait_until 5 spooling "$n" || fail "$n spools nothing while the broker is away"; done
sleep 2
broker_start
for n in $NAMES; do
	wait_until 60 sees "$n" 40 || fail "after the outage, $n: $(sees "$n" 40 2>&1 | tail -n 1)"
done
drained() { [ "$(field "$1" sensord spooled)" -eq 0 ] && [ "$(field "$1" sensord broker)" = connected ]; }
for n in $NAMES; do wait_until 30 drained "$n" || fail "$n's spool is not drained"; done

say "the broker's subscribers see sealed bytes only"
kill "$SUB_PID" 2>/dev/null || true
grep -q "^iotsec/smith/pi2/group " "$T/raw.out" || fail "no reading of pi2 on the broker"
grep -q "^iotsec/smith/pi4/group " "$T/raw.out" || fail "no reading of pi4 on the broker"
for n in $NAMES; do
	for v in $(sed -n 's/^room,\([0-9.]*\),C$/\1/p' "$T/$n/readings.csv" | head -n 5); do
		hex=$(printf '%s' "$v" | od -An -tx1 | tr -d ' \n')
		! grep -q "$hex" "$T/raw.out" || fail "$n's value $v crosses the broker in the clear"
	done
done
for word in room sensor value; do
	hex=$(printf '%s' "$word" | od -An -tx1 | tr -d ' \n')
	! grep -q "$hex" "$T/raw.out" || fail "'$word' crosses the broker in the clear"
done
for n in $NAMES; do
	! grep -a -q "room" "$T/$n/state/sensord/spool/log" 2>/dev/null ||
		fail "$n's spool holds a reading in the clear"
done
say "$(grep -c ' ' "$T/raw.out") sealed messages, none in the clear"
