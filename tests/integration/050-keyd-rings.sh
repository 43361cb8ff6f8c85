#!/bin/sh
# Five hosts receive their rings from the elected controller, and every pair exchanges
# MESSAGE_ENC_DATA both ways under its pairwise key.
. "$(dirname "$0")/common.sh"
need_netns
make_home
device 1 hub controller
NAMES="hub"
for i in 2 3 4 5; do
	device $i pi$i node
	NAMES="$NAMES pi$i"
done
for n in $NAMES; do run_all "$n"; done

wait_until 20 same_epoch $NAMES || fail "rings not delivered: $(for n in $NAMES; do printf '%s=%s ' $n "$(epoch $n)"; done)"
say "every device holds a ring of epoch $(epoch hub), size $(field pi2 keyd ring_size)"
[ "$(field hub keyd role)" = controller ] || fail "hub is not the keyd controller"

say "every pair exchanges MESSAGE_ENC_DATA both ways"
for a in $NAMES; do
	for b in $NAMES; do
		[ "$a" = "$b" ] && continue
		send_msg "$a" "$b" "hello $b from $a" | grep -q '"ok":true' ||
			fail "$a cannot send to $b: $(send_msg "$a" "$b" "again $b from $a") $(ctl "$T/$a/run/keyd/keyd.sock" "{\"v\":1,\"verb\":\"peers\"}")"
	done
done
for a in $NAMES; do
	for b in $NAMES; do
		[ "$a" = "$b" ] && continue
		wait_until 5 received "$b" "hello $b from $a" || fail "$b did not receive from $a"
	done
done
say "20 messages delivered and opened"
iotsecctl -c "$T/pi2/iotsec.conf" peers
echo ok
