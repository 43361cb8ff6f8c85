#!/bin/sh
# No log line, status output or file outside the dictionary contains a key: take every key the
# devices hold (through dictd, as keyd does: ring, path keys and the group root) and grep all
# logs, state files and status outputs for its hex and base64.
. "$(dirname "$0")/common.sh"
need_netns
make_home
device 1 hub controller
device 2 pi2 node
device 3 pi3 node
NAMES="hub pi2 pi3"
# pingd and sensord too: their status and logs are searched like the others', and without them
# status says the device is degraded. sensord has no broker here; it still looks the group root
# up in dictd, and its state and log are searched for it too.
for n in $NAMES; do
	echo 'sensord = { broker = "127.0.0.1"; broker_port = 9; };' >>"$T/$n/iotsec.conf"
	run_all "$n"
	run "$n" pingd
	run "$n" sensord
done
ready() { for n in $NAMES; do [ "$(field $n keyd ring_size)" -gt 0 ] 2>/dev/null || return 1; done; }
wait_until 20 ready || fail "rings not delivered"
for a in $NAMES; do for b in $NAMES; do
	[ "$a" = "$b" ] || send_msg "$a" "$b" "leak test $a $b" >/dev/null
done; done
sleep 1

say "collect every status output"
for n in $NAMES; do
	iotsecctl -c "$T/$n/iotsec.conf" status --json >"$T/$n/out.status.json"
	iotsecctl -c "$T/$n/iotsec.conf" status >"$T/$n/out.status.txt"
	iotsecctl -c "$T/$n/iotsec.conf" peers --json >"$T/$n/out.peers.json"
	for d in certd electd keyd dictd pingd sensord; do
		ctl "$T/$n/run/$d/$d.sock" '{"v":1,"verb":"status"}' >"$T/$n/out.$d.json"
	done
done

say "collect every key the devices hold, and search everything else for them"
$PY - "$T" $NAMES <<'PY'
import base64, json, os, socket, sys
t, names = sys.argv[1], sys.argv[2:]

def call(sock, req):
    s = socket.socket(socket.AF_UNIX); s.connect(sock); f = s.makefile("rwb")
    f.write((json.dumps(req) + "\n").encode()); f.flush()
    return json.loads(f.readline())

keys = set()
for n in names:
    status = call(f"{t}/{n}/run/keyd/keyd.sock", {"v": 1, "verb": "status"})
    pool, e0 = status["pool"], status["group_start"]
    dict_sock = f"{t}/{n}/run/dictd/dictd.sock"
    # The group root (SPEC 8), which came with the ring.
    r = call(dict_sock, {"v": 1, "verb": "lookup", "name": "-group", "indices": [e0]})
    assert len(r["keys"]) == 1, f"{n}: no group root at {e0}"
    keys.update(base64.b64decode(k["key"]) for k in r["keys"])
    for lo in range(0, pool, 1024):
        r = call(dict_sock, {"v": 1, "verb": "lookup", "name": "-ring",
                             "indices": list(range(lo, min(pool, lo + 1024)))})
        keys.update(base64.b64decode(k["key"]) for k in r["keys"])
    for peer in names:
        r = call(dict_sock, {"v": 1, "verb": "lookup", "name": peer, "indices": [0]})
        keys.update(base64.b64decode(k["key"]) for k in r["keys"])
assert len(keys) >= 2 * 75, f"only {len(keys)} keys found"  # rings overlap
needles = []
for k in keys:
    needles += [k.hex().encode(), k.hex().upper().encode(), base64.b64encode(k), k]
bad = []
scanned = 0
for root, _, files in os.walk(t):
    for f in files:
        p = os.path.join(root, f)
        # The dictionary is where keys belong; sockets are not files.
        if f in ("keys.dict",) or not os.path.isfile(p):
            continue
        data = open(p, "rb").read()
        scanned += 1
        bad += [p for n in needles if n in data]
print(f"{len(keys)} keys, {scanned} files scanned")
if bad:
    sys.exit("keys found in: " + ", ".join(sorted(set(bad))))
PY
echo ok
