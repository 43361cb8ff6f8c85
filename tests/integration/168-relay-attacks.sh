#!/bin/sh
# A device of the home gone bad against the relay. It reads every reading on the broker, stream
# ids included, and publishes under its own name readings of its own under kit1's stream and the
# seqs kit1 has yet to send. kit1's stream is bound to kit1 (it stored its first reading), so the
# relay refuses hub's readings ("stream") and stores none of them; kit1's real readings of those
# seqs are stored and receipted like all the others, and drwho fetches every one of them.
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

# hub's are refused at once, and none is receipted or stored.
refused_stream() {
	relay_call relay1 status | $PY -c 'import json, sys
sys.exit(not json.load(sys.stdin)["refused_by"].get("stream", 0) >= 25)'
}
wait_until 10 refused_stream || fail "relay1 did not refuse hub's readings under kit1's stream: $(relay_call relay1 status)"

# kit1 comes to them (in some 13 s): stored and receipted as usual, kit1 keeps nothing back.
relay_call relay1 status | $PY -c 'import json, sys
s = json.load(sys.stdin)["refused_by"]
sys.exit(not (s.get("stream", 0) == 25 and s.get("taken", 0) == 0))' ||
	fail "relay1's refusals are not hub's 25 alone: $(relay_call relay1 status)"
past_last() {
	fetch_json relay1 drwho "$T/fetch.out"
	$PY - "$T/fetch.out" "$last" <<'PYEOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
sys.exit(not any(r["device"] == "kit1" and r["seq"] > int(sys.argv[2]) + 5 for r in rows))
PYEOF
}
wait_until 40 past_last || fail "drwho has no reading of kit1 past hub's seqs: $(relay_call relay1 relay)"
drained() { [ "$(awaiting kit1)" -le 10 ]; }
wait_until 15 drained || fail "kit1 holds readings the relay did not receipt: $(sstatus kit1)"
$PY - "$T/fetch.out" "$first" "$last" <<'PYEOF' || fail "what drwho fetched is wrong (above)"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
first, last = int(sys.argv[2]), int(sys.argv[3])
bad = [r for r in rows if r.get("device") != "kit1"]
if bad:
    print("fetch: readings not kit1's:", bad[:3])
    sys.exit(1)
seqs = sorted(r["seq"] for r in rows)
missing = [s for s in range(seqs[0], seqs[-1] + 1) if s not in set(seqs)]
if missing or len(seqs) != len(set(seqs)):
    print("fetch: missing %r, %d twice" % (missing[:10], len(seqs) - len(set(seqs))))
    sys.exit(1)
if not (seqs[0] <= first and seqs[-1] > last):
    print("fetch: seqs %d..%d do not cover hub's %d..%d" % (seqs[0], seqs[-1], first, last))
    sys.exit(1)
PYEOF
[ ! -s "$T/fetch.out.err" ] || ! grep -qi "error\|cannot\|fail" "$T/fetch.out.err" ||
	fail "drwho's fetch complained: $(tail -n 5 "$T/fetch.out.err")"
kill -0 "$(relay_pid relay1)" || fail "relay1 died"
n=$(grep -c "another device's stream" "$T/relay1/relayd.log" || true)
[ "$n" -le 2 ] || fail "relay1's log says the refusals $n times (once wanted)"
say "hub's readings under kit1's stream refused; kit1's own of those seqs stored, receipted and fetched"
