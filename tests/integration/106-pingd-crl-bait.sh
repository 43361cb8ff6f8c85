#!/bin/sh
# An enrolled device that claims a CRL far newer than any (in every PINGD_HELLO, many a second)
# and never gives it cannot hold a revocation back: a device asks it, waits no longer than a
# probe, leaves it be for a while, and asks the device that has the newer CRL.
. "$(dirname "$0")/common.sh"
need_netns
make_home
device 1 hub controller
device 2 pi2 node
device 3 pi3 node
device 9 pi9 node
# pi2 keeps a CRL of its own: the administrator's new one reaches it only through pingd.
cp "$T/ca/crl.pem" "$T/pi2/crl.pem"
sed -i "s|crl = \"$T/ca/crl.pem\"|crl = \"$T/pi2/crl.pem\"|" "$T/pi2/iotsec.conf"
grep -q "$T/pi2/crl.pem" "$T/pi2/iotsec.conf" || fail "pi2's configuration names no CRL of its own"
for n in hub pi2; do
	cat >>"$T/$n/iotsec.conf" <<'CONF'
pingd = { interval_ms = 1000; retry_ms = 300; tries = 3; timeout_ms = 500; hello_ms = 300; };
CONF
	run "$n" certd
	run "$n" pingd
done
in_home() { [ -n "$(field "$1" pingd crl_number)" ] && [ "$(field "$1" pingd peers)" -ge 1 ]; }
wait_until 10 in_home hub || fail "hub's pingd: $(field hub pingd peers) peers"
wait_until 10 in_home pi2 || fail "pi2's pingd: $(field pi2 pingd peers) peers"
n0=$(field pi2 pingd crl_number)

say "pi9 claims CRL number 2^62 many times a second, and holds every link that asks for it"
on 9 $PY "$IT_DIR/rogue_pingd.py" crlbait "$T/pi9/pi9.crt" "$T/pi9/pi9.key" "$NET.255" 25 \
	>"$T/rogue.log" 2>&1 &
PIDS="$PIDS $!"
ROGUE=$!
wait_until 5 grep -q "pi9 holds CRL number" "$T/pi2/pingd.log" || fail "pi2 never asked pi9"

say "the administrator revokes pi3 on hub"
iotsec-pki revoke --dir "$T/ca" --device pi3 >/dev/null 2>&1 || fail "revoke"
n1=$(printf '%d' "$(openssl crl -in "$T/ca/crl.pem" -noout -crlnumber | sed 's/.*=//')")
[ "$n1" -gt "$n0" ] || fail "the new CRL's number $n1 is not above $n0"
holds() { [ "$(field "$1" pingd crl_number)" = "$n1" ]; }
wait_until 5 holds hub || fail "hub does not hold CRL $n1"
wait_until 10 holds pi2 || fail "pi2 holds CRL $(field pi2 pingd crl_number), not $n1: pi9 held it back ($(grep -c 'pi9 holds CRL' "$T/pi2/pingd.log") questions to pi9, $(grep -c 'hub holds CRL' "$T/pi2/pingd.log") to hub)"
grep -q "installed CRL number $n1 from hub" "$T/pi2/pingd.log" || fail "pi2 did not take it from hub"
say "pi2 took CRL $n1 from hub despite pi9"
kill "$ROGUE" 2>/dev/null || true
echo ok
