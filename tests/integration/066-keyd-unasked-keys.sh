#!/bin/sh
# While the controller collects contributions after a rekey, a node insider that was never
# asked sends CLIENT_KEYS of 32 keys wrapped to the controller, on link after link. Unwrapping
# them is 32 private-key operations a message; keys nobody asked for are refused before any is
# unwrapped, so the attack costs the controller one signature check a message, and the rekey
# completes with the honest devices' keys.
. "$(dirname "$0")/common.sh"
need_netns
make_home
device 1 hub controller
device 2 pi1 node
device 4 evil node
for n in hub pi1; do sed -i 's/collect_ms = 1500;/collect_ms = 8000;/' "$T/$n/iotsec.conf"; done
run_all hub
run_all pi1
wait_until 30 same_epoch hub pi1 || fail "no ring"
e1=$(epoch hub)
HUB=$(pgrep -f "iotsec-keyd -c $T/hub/iotsec.conf")
# cpu PID: user and system time of PID so far, in clock ticks.
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }

r=$(iotsecctl -c "$T/hub/iotsec.conf" rekey) || fail "rekey refused: $r"
refused0=$(field hub keyd refused)
c0=$(cpu "$HUB")
on 4 $PY "$IT_DIR/rogue.py" keys "$T/evil/evil.crt" "$T/evil/evil.key" "$T/hub/hub.crt" "$NET.1" 5 \
	>"$T/evil.log" 2>&1 || fail "the attacker failed: $(cat "$T/evil.log")"
c1=$(cpu "$HUB")
sent=$(sed -n 's/.*sent \([0-9]*\) CLIENT_KEYS.*/\1/p' "$T/evil.log")
refused=$(($(field hub keyd refused) - refused0))
say "evil sent $sent CLIENT_KEYS; hub refused $refused messages using $((c1 - c0)) ticks of CPU"
[ "$sent" -ge 50 ] && [ "$refused" -ge $((sent / 2)) ] ||
	fail "too few of evil's messages reached hub to prove anything"
# Unwrapping 32 keys takes tens of milliseconds; a refusal before it takes well under one.
per=$(((c1 - c0) * 10000 / $(getconf CLK_TCK) / sent))
[ "$per" -lt 30 ] || fail "hub spent $per/10 ms on each unasked contribution"
grep -q "(evil): not asked for" "$T/hub/keyd.log" ||
	fail "hub never refused evil's keys as such: $(grep evil "$T/hub/keyd.log" | head -n 3)"
say "hub spent $per/10 ms on each"
moved() { same_epoch hub pi1 && [ "$(epoch hub)" -gt "$e1" ]; }
wait_until 30 moved || fail "the rekey did not finish: hub=$(epoch hub) pi1=$(epoch pi1)"
echo ok
