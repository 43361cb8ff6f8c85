#!/bin/sh
# README's re-enrolment: a revoked device, enrolled again, with its new certificate and key put in
# place, is back in the home (election, sessions, the next key pool) with no restart by hand.
# certd vouches for the new certificate; electd and keyd, which sign with the old one, exit 75 and
# start again (here under a loop standing in for the units' Restart=on-failure).
. "$(dirname "$0")/common.sh"
need_netns
make_home
device 1 hub controller
device 2 pi1 node
device 3 pi5 node
for n in hub pi1; do run_all "$n"; done
for d in certd dictd electd keyd; do supervise pi5 "$d"; done
wait_until 20 same_epoch hub pi1 pi5 || fail "rings not delivered"
wait_until 5 follows pi5 hub || fail "pi5 does not follow hub"
send_msg hub pi5 "before" | grep -q '"ok":true' || fail "hub cannot send to pi5"
wait_until 5 received pi5 "before" || fail "pi5 did not receive from hub"
say "epoch $(epoch hub) everywhere; pi5 follows hub"

say "pi5 is revoked: it is out of the home"
iotsec-pki revoke --dir "$T/ca" --device pi5 >/dev/null 2>&1 || fail "revoke"
out() { [ "$(field pi5 electd state)" = out ]; }
wait_until 6 out || fail "pi5's electd is '$(field pi5 electd state)' after revocation"
send_msg hub pi5 "revoked" >/dev/null 2>&1 || true
sleep 1
if received pi5 "revoked"; then fail "pi5 received from hub while revoked"; fi

say "pi5 is enrolled again; its new certificate and key are put in place"
old_serial=$(field pi5 certd serial)
iotsec-pki enrol --dir "$T/ca" --device pi5 --role node --out "$T/new" >/dev/null 2>&1 ||
	fail "enrol pi5 again"
# As an administrator would: the key first, with its mode, then the certificate.
install -m 0600 "$T/new/pi5.key" "$T/pi5/pi5.key"
install -m 0644 "$T/new/pi5.crt" "$T/pi5/pi5.crt"
new_serial() { s=$(field pi5 certd serial); [ -n "$s" ] && [ "$s" != "$old_serial" ]; }
wait_until 6 new_serial || fail "certd still reports serial $(field pi5 certd serial)"
for d in electd keyd; do
	took_up() { grep -q "pi5.crt was replaced (serial $(field pi5 certd serial)" "$T/pi5/$d.log"; }
	wait_until 5 took_up || fail "pi5's $d did not take up the new certificate"
done

say "pi5 is back: it follows hub, hub talks to it, and it gets the next pool"
wait_until 10 follows pi5 hub || fail "pi5 follows '$(field pi5 electd controller)' after re-enrolment"
back() { send_msg hub pi5 "after" | grep -q '"ok":true' && received pi5 "after"; }
wait_until 10 back || fail "hub cannot reach pi5 after re-enrolment"
before=$(epoch hub)
r=$(iotsecctl -c "$T/hub/iotsec.conf" rekey) || fail "rekey refused: $r"
moved() { same_epoch hub pi1 pi5 && [ "$(epoch hub)" -gt "$before" ]; }
wait_until 20 moved || fail "after the rekey: hub=$(epoch hub) pi1=$(epoch pi1) pi5=$(epoch pi5)"
grep -q "starting again" "$T/pi5/keyd.log" || fail "keyd was not started again"
say "epoch $(epoch pi5) on pi5 too; $(grep -c "starting again" "$T/pi5/electd.log") restart of electd"
echo ok
