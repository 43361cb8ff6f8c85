#!/bin/sh
# A device of the home gone bad against the relay. It reads every reading on the broker, stream
# ids included, and publishes under its own name readings of its own under kit1's stream and the
# seqs kit1 has yet to send. The relay must not take kit1's real readings of those seqs for
# duplicates and receipt them (kit1 would drop what was never stored): it refuses them as
# "taken" and kit1 keeps them, while kit1's other readings are stored and receipted as before.
. "$(dirname "$0")/common.sh"
. "$IT_DIR/sensord-common.sh"
. "$IT_DIR/relay-common.sh"
need_netns
sensord_home
write_csv "$T/pulse.csv" $(seq 1 400 | sed 's/.*/pulse,70,\/min/')
kit 1 hub controller
kit 2 kit1 node "sensors = \"pulse=replay:$T/pulse.csv\"; interval_ms = 200; $RELAY_KIT"
relay 7 relay1
doctor 5 drwho
run_relay relay1
wait_until 10 relay_ready relay1 || fail "relay1 not connected: $(relay_call relay1 status)"
run_all hub
run_kit kit1
home_ready kit1
grant_via relay1 drwho kit1
wait_until 15 granted kit1 drwho || fail "kit1 did not install the grant: $(sstatus kit1)"
stored() { [ "$(rfield relay1 relay readings)" -ge "$1" ]; }
wait_until 15 stored 5 || fail "relay1 stores nothing of kit1: $(relay_call relay1 relay)"

# hub sees one of kit1's readings and makes 25 of its own name under kit1's stream, from 40 seqs
# ahead (kit1 sends 5 a second: 8 s to publish them): the header as it is, but the device and the seq.
mqtt_client snoop 5
mqtt_sub snoop -C 1 -W 10 -q 1 -t "iotsec/$HOME_NAME/kit1/doctor" -F '%x' >"$T/cap" ||
	fail "no reading of kit1 captured"
first=$($PY - "$T/cap" "$T/squat" <<'PYEOF'
import struct, sys
b = bytes.fromhex(open(sys.argv[1]).read().split()[0])
n = b[3]
rest = b[4 + n:]
seq = struct.unpack(">Q", rest[20:28])[0]
for k in range(25):
    s = seq + 40 + k
    out = b[:3] + bytes([3]) + b"hub" + rest[:20] + struct.pack(">Q", s) + rest[28:]
    open("%s.%d" % (sys.argv[2], k), "wb").write(out)
print(seq + 40)
PYEOF
) || fail "could not make hub's readings"
last=$((first + 24))
stop_sensord hub 2>/dev/null || true # hub's client id is its name: its sensord would be pushed off
k=0
while [ $k -lt 25 ]; do
	mqtt_pub hub -q 1 -t "iotsec/$HOME_NAME/hub/doctor" -f "$T/squat.$k" || fail "hub cannot publish"
	k=$((k + 1))
done
say "hub published seqs $first..$last of kit1's stream under its own name"

# kit1 comes to them (in some 13 s), and sends them again without a receipt (receipt_s = 3).
taken() {
	relay_call relay1 status | $PY -c 'import json, sys
sys.exit(not json.load(sys.stdin)["refused_by"].get("taken", 0) >= 1)'
}
held() { [ "$(awaiting kit1)" -ge 25 ]; }
wait_until 40 held || fail "kit1 let go of readings the relay never stored: $(sstatus kit1)"
taken || fail "relay1 did not count kit1's readings under hub's seqs as taken: $(relay_call relay1 status)"
before=$(rfield relay1 relay readings)
wait_until 10 stored $((before + 5)) || fail "relay1 stopped storing kit1's readings: $(relay_call relay1 relay)"
kill -0 "$(relay_pid relay1)" || fail "relay1 died"
n=$(grep -c "hub\|kit1.*taken\|another reading" "$T/relay1/relayd.log" || true)
[ "$n" -le 8 ] || fail "relay1's log says the refusals $n times (once wanted)"
say "kit1's readings under the seqs hub took: refused as taken, kept by kit1; the rest stored"
