#!/bin/sh
# Rogue hosts never become controller nor change who is: a self-signed certificate bearing a
# real device's name, a revoked certificate, another home's certificate, and a host replaying an
# I_AM_CONTROLLER it captured. Each refusal is logged once, with its reason. Every rogue has a
# name that sorts before the real controller's, so believing it would change the controller.
. "$(dirname "$0")/common.sh"
need_netns
make_home
device 1 hub-b controller
device 2 pi1 node
# hub-a is a real, enrolled controller that is switched off: the self-signed rogue borrows its name.
iotsec-pki enrol --dir "$T/ca" --device hub-a --role controller --out "$T/hub-a" >/dev/null 2>&1

say "rogue 1 (host 4): self-signed certificate named hub-a"
mkdir -p "$T/rogue-ss"
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=hub-a/O=testhome/OU=controller" \
	-keyout "$T/rogue-ss/rogue-ss.key" -out "$T/rogue-ss/rogue-ss.crt" 2>/dev/null
add_host 4

say "rogue 2 (host 5): hub-0, enrolled then revoked, running with the CRL from before"
device 5 hub-0 controller
cp "$T/ca/crl.pem" "$T/hub-0/stale-crl.pem"
sed -i "s|$T/ca/crl.pem|$T/hub-0/stale-crl.pem|" "$T/hub-0/iotsec.conf"
iotsec-pki revoke --dir "$T/ca" --device hub-0 >/dev/null 2>&1

say "rogue 3 (host 6): hub-00 of another home, trusting its own CA"
iotsec-pki init --dir "$T/otherca" --home testhome >/dev/null 2>&1 # same home name, other CA
iotsec-pki enrol --dir "$T/otherca" --device hub-00 --role controller --out "$T/hub-00" >/dev/null 2>&1
host_config 6 hub-00
sed -i "s|$T/ca/|$T/otherca/|g" "$T/hub-00/iotsec.conf"

say "rogue 4 (host 7): captures the real controller's I_AM_CONTROLLER, replays it later"
add_host 7
on 7 $PY - "$T" >"$T/replayer.log" 2>&1 <<'PY' &
import base64, json, os, socket, sys, time
t = sys.argv[1]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
s.bind(("0.0.0.0", 7450))
s.settimeout(0.05)
data = None
# Keep the newest announcement from hub-b until told to replay: the first replays are then
# still fresh (refused as replays), the later ones stale.
while not (data and os.path.exists(t + "/go")):
    try:
        d, _ = s.recvfrom(65536)
        m = json.loads(base64.b64decode(json.loads(d)["msg"]))
        if m["type"] == "I_AM_CONTROLLER" and m["from"] == "hub-b":
            if data is None:
                open(t + "/captured", "wb").write(d)
            data = d
    except (OSError, ValueError, KeyError):
        pass
end = time.time() + 8
while time.time() < end:
    s.sendto(data, ("10.213.0.255", 7450))
    time.sleep(0.3)
print("done", flush=True)
PY
PIDS="$PIDS $!"

# The self-signed rogue speaks for itself; the others run our daemons, each satisfied with its
# own certificate (certd checks it against the CA and CRL it was given).
on 4 $PY "$IT_DIR/rogue.py" broadcast "$T/rogue-ss/rogue-ss.crt" "$T/rogue-ss/rogue-ss.key" "$NET.255" \
	7450 I_AM_CONTROLLER '{}' 30 >"$T/rogue-ss/rogue.log" 2>&1 &
PIDS="$PIDS $!"
with_certd hub-0 hub-00 hub-b pi1
for n in hub-0 hub-00; do run "$n" electd; done
sleep 1
run hub-b electd
run pi1 electd
wait_until 5 follows pi1 hub-b || fail "pi1 follows '$(field pi1 electd controller)', not hub-b"
sleep 3 # rogues keep announcing themselves every 300 ms
follows pi1 hub-b || fail "pi1 switched to '$(field pi1 electd controller)'"
follows hub-b hub-b || fail "hub-b lost control to '$(field hub-b electd controller)'"
[ "$(field hub-b electd state)" = controller ] || fail "hub-b is no longer controller"

# once HOST REASON: pi1 logged a refusal from HOST with REASON exactly once.
once() {
	n=$(grep -cE "refused a message from $NET.$1( \([^)]*\))?: $2" "$T/pi1/electd.log" || true)
	[ "$n" -eq 1 ] || fail "pi1 logged '$2' from host $1 $n times, want 1"
	say "refused once from host $1: $2"
}
once 4 "self-signed certificate"
once 5 "certificate revoked"
once 6 "certificate not issued by this home's CA"

say "the controller dies; the replayed I_AM_CONTROLLER must not keep it alive"
wait_until 5 test -f "$T/captured" || fail "the replayer captured nothing: $(cat "$T/replayer.log")"
kill "$(pgrep -f "iotsec-electd -c $T/hub-b/iotsec.conf")"
touch "$T/go"
# pi1 cannot lead (node role): it must give up on hub-b after timeout_ms despite the replays.
gone() { [ "$(field pi1 electd controller)" = "" ]; }
wait_until 5 gone || fail "pi1 still follows '$(field pi1 electd controller)' during the replays"
sleep 4 # replays continue past the freshness window (delta_t = 3 s)
gone || fail "a replay brought back '$(field pi1 electd controller)'"
once 7 "replayed message"
once 7 "timestamp outside the freshness window"
refused=$(field pi1 electd refused)
[ "$refused" -gt 10 ] || fail "pi1 counted only $refused refusals"
say "pi1 counted $refused refused messages"
# Signed by hub-b, sent by host 7: replays are not hub-b's doing, and are not counted against it
# (a count an administrator would read as hub-b misbehaving).
blamed=$(ctl "$T/pi1/run/electd/electd.sock" '{"v":1,"verb":"status"}' |
	json_get '["refused_by"].get("hub-b", 0)')
[ "$blamed" -eq 0 ] || fail "pi1 counts $blamed refusals against hub-b for host 7's replays"
grep -q "refused a message from $NET.7 (hub-b)" "$T/pi1/electd.log" &&
	fail "pi1 names hub-b as the sender of host 7's replays"
echo ok
