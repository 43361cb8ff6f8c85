#!/bin/sh
# Rogue hosts receive nothing usable from keyd: a self-signed certificate bearing a real
# device's name, a revoked device (running with the CRL from before its revocation), and a device
# of another home. None gets a ring, none is listed as a peer, and each refusal is logged once.
. "$(dirname "$0")/common.sh"
need_netns
make_home
device 1 hub controller
device 2 pi2 node
iotsec-pki enrol --dir "$T/ca" --device pi3 --role node --out "$T/pi3" >/dev/null 2>&1 # offline

say "rogue (host 5): pi5, revoked, keeps the CRL from before its revocation"
device 5 pi5 node
cp "$T/ca/crl.pem" "$T/pi5/stale-crl.pem"
sed -i "s|$T/ca/crl.pem|$T/pi5/stale-crl.pem|" "$T/pi5/iotsec.conf"
iotsec-pki revoke --dir "$T/ca" --device pi5 >/dev/null 2>&1

say "rogue (host 6): pi9 of another home, trusting its own CA"
iotsec-pki init --dir "$T/otherca" --home testhome >/dev/null 2>&1
iotsec-pki enrol --dir "$T/otherca" --device pi9 --role node --out "$T/pi9" >/dev/null 2>&1
host_config 6 pi9
sed -i "s|$T/ca/|$T/otherca/|g" "$T/pi9/iotsec.conf"

say "rogue (host 4): a self-signed 'pi3' broadcasting signed I_AM_ON_THE_NETWORK"
mkdir -p "$T/rogue"
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=pi3/O=testhome/OU=node" \
	-addext basicConstraints=CA:FALSE -keyout "$T/rogue/key.pem" -out "$T/rogue/cert.pem" 2>/dev/null
add_host 4
on 4 $PY "$IT_DIR/rogue.py" broadcast "$T/rogue/cert.pem" "$T/rogue/key.pem" "$NET.255" 7451 \
	I_AM_ON_THE_NETWORK '{}' 30 >"$T/rogue/rogue.log" 2>&1 &
PIDS="$PIDS $!"

for n in hub pi2 pi5 pi9; do run_all "$n"; done
good() { [ "$(epoch pi2)" -gt 0 ] 2>/dev/null && [ "$(epoch pi2)" = "$(epoch hub)" ]; }
wait_until 20 good || fail "the good devices got no ring"
sleep 2 # several more announcements from every rogue

for n in pi5 pi9; do
	[ "$(epoch $n)" = 0 ] || fail "rogue $n holds a ring of epoch $(epoch $n)"
	[ "$(ctl "$T/$n/run/dictd/dictd.sock" '{"v":1,"verb":"status"}' | json_get '["records"]')" = 0 ] ||
		fail "rogue $n has keys in its dictionary"
done
say "no rogue holds a ring or a key"

for n in hub pi2; do
	peers=$(ctl "$T/$n/run/keyd/keyd.sock" '{"v":1,"verb":"peers"}')
	for rogue in pi3 pi5 pi9; do
		echo "$peers" | grep -q "\"name\":\"$rogue\"" && fail "$n lists rogue $rogue as a peer"
	done
done
say "no rogue is listed as a peer"

once() {
	n=$(grep -c "refused a message from $NET.$1: $2" "$T/hub/keyd.log" || true)
	[ "$n" -eq 1 ] || fail "hub logged '$2' from host $1 $n times, want 1"
	say "hub refused host $1 once: $2"
}
once 4 "self-signed certificate"
once 5 "certificate revoked"
once 6 "certificate not issued by this home's CA"

say "the revoked rogue holds no key to open a session with (055 tries one that does)"
r=$(send_msg pi5 pi2 "let me in")
echo "$r" | grep -q '"ok":false.*Required key not available' || fail "pi5 could start a session: $r"
echo ok
