#!/bin/sh
# A controller-role device that was elected once cannot freeze the quarantine lists for good: it
# sends a list of the highest version (4294967295) that puts an honest device out, every device
# takes it from the controller of the time; once it is gone, the administrator releases the
# honest device on the next controller (the version wraps), and every device takes that list.
. "$(dirname "$0")/common.sh"
need_netns
make_home
device 1 hub controller
device 2 pi2 node
device 8 pi8 controller
for n in hub pi2; do
	cat >>"$T/$n/iotsec.conf" <<'CONF'
pingd = { interval_ms = 1000; retry_ms = 300; tries = 3; timeout_ms = 500; hello_ms = 300; };
CONF
done
with_certd hub pi2 pi8
say "pi8 is elected first; hub and pi2 follow it"
run pi8 electd
ELECTD_pi8=$LAST_PID
wait_until 10 follows pi8 pi8 || fail "pi8 is not the controller"
run pi2 electd
run hub electd
wait_until 10 follows pi2 pi8 || fail "pi2 follows $(field pi2 electd controller)"
wait_until 10 follows hub pi8 || fail "hub follows $(field hub electd controller)"
run hub pingd
run pi2 pingd
pingd() { ctl "$T/$1/run/pingd/pingd.sock" "$2"; }
knows() { [ "$(field "$1" pingd controller)" = "$2" ]; }
wait_until 10 knows hub pi8 || fail "hub's pingd: controller $(field hub pingd controller)"
wait_until 10 knows pi2 pi8 || fail "pi2's pingd: controller $(field pi2 pingd controller)"

say "pi8, controller, sends a list of version 4294967295 that puts pi2 out"
on 8 $PY "$IT_DIR/rogue.py" broadcast "$T/pi8/pi8.crt" "$T/pi8/pi8.key" "$NET.255" 7452 \
	PINGD_QUARANTINE \
	"{\"version\":4294967295,\"list\":[{\"name\":\"pi2\",\"reason\":\"malicious\",\"at\":$(date +%s)}]}" 2 ||
	fail "rogue"
frozen() { [ "$(field "$1" pingd quarantine_version)" = 4294967295 ]; }
wait_until 5 frozen hub || fail "hub holds version $(field hub pingd quarantine_version)"
wait_until 5 frozen pi2 || fail "pi2 holds version $(field pi2 pingd quarantine_version)"

say "pi8 goes; hub is elected"
stop "$ELECTD_pi8"
wait_until 15 follows pi2 hub || fail "pi2 follows $(field pi2 electd controller)"
role() { [ "$(field hub pingd role)" = controller ] && knows pi2 hub; }
wait_until 10 role || fail "hub's pingd: $(field hub pingd role); pi2's controller $(field pi2 pingd controller)"

say "the administrator releases pi2 on hub"
r=$(pingd hub '{"v":1,"verb":"release","name":"pi2"}')
echo "$r" | grep -q '"ok":true' || fail "release refused: $r"
echo "$r" | grep -q '"version":1[,}]' || fail "the version did not wrap to 1: $r"
out() { ! pingd "$1" '{"v":1,"verb":"quarantine"}' | grep -q '"name":"pi2"'; }
wait_until 5 out hub || fail "hub still lists pi2"
wait_until 5 out pi2 || fail "pi2 did not take hub's list: $(pingd pi2 '{"v":1,"verb":"quarantine"}')"
[ "$(field pi2 pingd quarantine_version)" = 1 ] || fail "pi2 holds version $(field pi2 pingd quarantine_version)"
say "pi2 holds hub's list, version 1"
echo ok
