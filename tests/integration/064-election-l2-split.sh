#!/bin/sh
# A controller-role insider sends its heartbeats and answers to the broadcast address, but in
# frames for one device's MAC address alone: that device would follow it while the others never
# hear of it, splitting the home. A broadcast that did not reach everyone is dropped before
# electd sees it, so every device stays with the same controller.
. "$(dirname "$0")/common.sh"
need_netns
make_home
device 1 hub-b controller
device 2 pi1 node
device 3 pi2 node
iotsec-pki enrol --dir "$T/ca" --device hub-a --role controller --out "$T/hub-a" >/dev/null 2>&1
add_host 4
with_certd hub-b pi1 pi2
run hub-b electd
sleep 1
for n in pi1 pi2; do run "$n" electd; done
wait_until 5 follows pi1 hub-b || fail "pi1 does not follow hub-b"
wait_until 5 follows pi2 hub-b || fail "pi2 does not follow hub-b"
MAC=$(ip -n "$NS_PREFIX-h2" -o link show eth0 | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p')
[ -n "$MAC" ] || fail "no MAC address for pi1"

say "hub-a (host 4) sends I_AM_CONTROLLER to $NET.255 in frames for pi1 ($MAC) alone, for 6 s"
on 4 $PY "$IT_DIR/rogue.py" l2split "$T/hub-a/hub-a.crt" "$T/hub-a/hub-a.key" eth0 "$MAC" \
	"$NET.255" 6 >"$T/rogue.log" 2>&1 &
RP=$!
PIDS="$PIDS $RP"
split=0
while kill -0 $RP 2>/dev/null; do
	follows pi1 hub-b || split=$((split + 1))
	sleep 0.2
done
[ $split -eq 0 ] || fail "pi1 left hub-b $split times: $(grep -c hub-a "$T/pi1/electd.log") lines about hub-a"
grep -q "from hub-a" "$T/pi1/electd.log" && fail "pi1's electd heard hub-a"
follows pi2 hub-b || fail "pi2 follows '$(field pi2 electd controller)'"
[ "$(field hub-b electd state)" = controller ] || fail "hub-b is no longer controller"
say "pi1 never heard hub-a; every device follows hub-b"
echo ok
