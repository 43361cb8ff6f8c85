#!/bin/sh
# A quarantined device is taken off the list when it comes back enrolled again (a certificate the
# home CA issued after its quarantine), and not before: coming back with the certificate it was
# put out with, it stays out. Then it is given the ring of the current epoch (the revocation of
# its old certificate made another), with no release by hand.
. "$(dirname "$0")/common.sh"
need_netns
make_home
device 1 hub controller
device 2 pi2 node
device 3 pi3 node
NAMES="hub pi2 pi3"
for n in $NAMES; do
	cat >>"$T/$n/iotsec.conf" <<'CONF'
pingd = { interval_ms = 1000; retry_ms = 300; tries = 3; timeout_ms = 500; hello_ms = 300; };
CONF
done
for n in $NAMES; do
	run_all "$n"
	run "$n" pingd
done
wait_until 30 same_epoch $NAMES || fail "rings not delivered"
# pi3's daemons that sign exit 75 on its new certificate, as under systemd: their pids.
OLD=$(cat "$T/pi3/run/electd/electd.pid" "$T/pi3/run/keyd/keyd.pid" "$T/pi3/run/pingd/pingd.pid")
e1=$(epoch hub)
pingd() { ctl "$T/$1/run/pingd/pingd.sock" "$2"; }
quarantined() { pingd "$1" '{"v":1,"verb":"quarantine"}' | grep -q '"name":"pi3"'; }
knows_all() { [ "$(field hub pingd role)" = controller ] && [ "$(field hub pingd peers)" = 2 ]; }
wait_until 10 knows_all || fail "hub's pingd: role $(field hub pingd role), $(field hub pingd peers) peers"

say "pi3's network goes down: quarantined, the home rekeys"
on 3 ip link set eth0 down
wait_until 20 quarantined hub || fail "hub did not quarantine pi3"
rekeyed() { same_epoch hub pi2 && [ "$(epoch hub)" -gt "$e1" ]; }
wait_until 20 rekeyed || fail "no new pool without pi3"

say "pi3 comes back with the certificate it was put out with: it stays out"
on 3 ip link set eth0 up
wait_until 10 quarantined pi3 || fail "pi3 did not take the list that names it"
sleep 2 # several of its hellos
quarantined hub || fail "pi3 left the quarantine with its old certificate"
[ "$(epoch pi3)" = "$e1" ] || fail "pi3, quarantined, moved to epoch $(epoch pi3)"
if grep -q "pi3 enrolled again" "$T/hub/pingd.log"; then fail "hub took pi3's old certificate for a new one"; fi

say "pi3 is revoked and enrolled again, as README says"
sleep 1 # a certificate issued in a later second than the quarantine
iotsec-pki revoke --dir "$T/ca" --device pi3 >/dev/null 2>&1 || fail "revoke"
iotsec-pki enrol --dir "$T/ca" --device pi3 --role node --out "$T/new" >/dev/null 2>&1 ||
	fail "enrol pi3 again"
install -m 0600 "$T/new/pi3.key" "$T/pi3/pi3.key"
install -m 0644 "$T/new/pi3.crt" "$T/pi3/pi3.crt"
# Those that signed with the old certificate exit (75); start them again, as systemd would.
gone() { ! kill -0 "$1" 2>/dev/null; }
for p in $OLD; do wait_until 15 gone "$p" || fail "pi3's daemon $p did not exit on its new certificate"; done
for d in electd keyd pingd; do run pi3 "$d"; done
released() { ! quarantined "$1"; }
wait_until 15 released hub || fail "hub keeps pi3 quarantined after it was enrolled again"
grep -q "pi3 enrolled again (certificate serial [0-9A-Fa-f]*, issued after its quarantine)" \
	"$T/hub/pingd.log" || fail "hub does not say why it released pi3"
wait_until 5 released pi2 || fail "pi2 still holds a list that names pi3"
wait_until 20 same_epoch hub pi2 pi3 || fail "pi3 has no ring of the current epoch: hub=$(epoch hub) pi3=$(epoch pi3)"
say "pi3 at epoch $(epoch pi3), with the others"
echo ok
