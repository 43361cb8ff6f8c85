#!/bin/sh
# A device that says HELLO from another address each time (it holds several, or forges the
# source) does not make every pingd rewrite (and fsync) its state file at each datagram: the
# address a device was last heard from is saved at most once a hello_ms. On a Pi's SD card a
# write per datagram is a flood's best lever: the loop that answers probes waits on the disk.
. "$(dirname "$0")/common.sh"
need_netns
make_home
device 1 hub controller
device 9 pi9 node
cat >>"$T/hub/iotsec.conf" <<'CONF'
pingd = { interval_ms = 1000; retry_ms = 300; tries = 3; timeout_ms = 500; hello_ms = 300; };
CONF
run hub certd
run hub pingd
on 9 ip addr add "$NET.90/24" dev eth0
on 9 ip addr add "$NET.91/24" dev eth0
STATE=$T/hub/state/pingd/pingd.state
in_home() { [ "$(field hub pingd sent)" -ge 1 ] 2>/dev/null; }
wait_until 10 in_home || fail "hub's pingd says no HELLO"

say "pi9 says HELLO from $NET.90 and $NET.91 in turn, as fast as it can sign, for 3 s"
$PY "$IT_DIR/rogue_pingd.py" writes "$STATE" 4 >"$T/writes" &
WATCH=$!
on 9 $PY "$IT_DIR/rogue_pingd.py" hellos "$T/pi9/pi9.crt" "$T/pi9/pi9.key" "$NET.255" \
	"$NET.90,$NET.91" 3 >"$T/rogue.log" 2>&1 || fail "rogue: $(cat "$T/rogue.log")"
wait "$WATCH"
sent=$(sed -n 's/.*sent \([0-9]*\) hellos/\1/p' "$T/rogue.log")
writes=$(cat "$T/writes")
say "$sent HELLOs; hub wrote its state file $writes times"
[ "$sent" -ge 100 ] || fail "the rogue sent only $sent HELLOs"
# 4 s watched at one save a hello_ms (300 ms) at most: 14, and room for a slow loop.
[ "$writes" -le 25 ] || fail "hub wrote pingd.state $writes times for $sent HELLOs"
grep -q '"name":"pi9","address":"10.213.0.9[01]"' "$STATE" || fail "hub saved: $(cat "$STATE")"
echo ok
