#!/bin/sh
# A kit whose sensord reaches the broker before certd has said its certificate is valid (at boot,
# or while certd restarts): the doctor's grant, retained on the broker, arrives while sensord is
# out of the home and judges nothing. Once certd says the certificate is valid, the kit takes
# the grant all the same, without waiting for its next connection to the broker.
. "$(dirname "$0")/common.sh"
. "$IT_DIR/sensord-common.sh"
need_netns
sensord_home
kit 1 kit1 node
doctor 5 drlee
grant drlee kit1

say "sensord alone, connected, out of the home: the grant is not taken"
run_sensord kit1
connected() { [ "$(sfield kit1 broker)" = connected ]; }
wait_until 10 connected || fail "kit1 does not connect: $(sstatus kit1)"
sleep 2 # the retained grant has long arrived
[ "$(sfield kit1 doctor)" = "" ] || fail "a kit out of the home took a grant: $(sstatus kit1)"

say "certd says the certificate is valid: the grant is taken, on the same connection"
run kit1 certd
wait_until 10 granted kit1 drlee || fail "kit1 never took drlee's grant: $(sstatus kit1); $(tail -n 5 "$T/kit1/sensord.log")"
[ "$(grep -c "connected to the broker" "$T/kit1/sensord.log")" = 1 ] ||
	fail "kit1 connected again to get it: $(grep "connected to the broker" "$T/kit1/sensord.log")"
grep -q "doctor drlee granted" "$T/kit1/sensord.log" || fail "no log line for the grant"
echo ok
