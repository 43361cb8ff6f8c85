#!/bin/sh
# A node insider sends pi1 session starts of an epoch nobody has, on link after link, as fast
# as it can sign. Each is refused and counted; the log says so a few times a second at most,
# so the journal of a Pi's SD card is not what the insider fills.
. "$(dirname "$0")/common.sh"
need_netns
make_home
device 1 hub controller
device 2 pi1 node
device 4 evil node
run_all hub
run_all pi1
wait_until 20 same_epoch hub pi1 || fail "no ring"
lines0=$(wc -l <"$T/pi1/keyd.log")
refused0=$(field pi1 keyd refused)
on 4 $PY "$IT_DIR/rogue.py" sessions "$T/evil/evil.crt" "$T/evil/evil.key" "$NET.2" pi1 5 \
	>"$T/evil.log" 2>&1 || fail "the attacker failed: $(cat "$T/evil.log")"
sleep 1
lines=$(($(wc -l <"$T/pi1/keyd.log") - lines0))
refused=$(($(field pi1 keyd refused) - refused0))
say "$(cat "$T/evil.log"); pi1 refused $refused and wrote $lines log lines"
[ "$refused" -ge 100 ] || fail "pi1 refused only $refused: the attack did not reach it"
[ "$lines" -le 60 ] || fail "pi1 wrote $lines log lines in 6 s"
grep -q "evil" "$T/pi1/keyd.log" || fail "pi1 never said who it refused"
same_epoch hub pi1 || fail "pi1 lost its ring"
echo ok
