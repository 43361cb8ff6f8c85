#!/bin/sh
# A kit whose sensord reaches the broker before certd has said its certificate is valid (at boot,
# or while certd restarts): the doctor's grant, retained on the broker, arrives while sensord is
# out of the home and judges nothing. Once certd says the certificate is valid, the kit takes
# the grant all the same, without waiting for its next connection to the broker. Likewise the
# doctor's acknowledgement of an emergency, which is not retained: one that came while the kit
# was out of the home clears the alarm once it is back, not never.
. "$(dirname "$0")/common.sh"
. "$IT_DIR/sensord-common.sh"
need_netns
sensord_home
ALARM=$T/alarm
write_csv "$T/pulse.csv" "pulse,72,/min" "pulse,24,/min"
kit 1 kit1 node "sensors = \"pulse=replay:$T/pulse.csv\"; alarm_output = \"$ALARM\";"
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
CERTD=$LAST_PID
wait_until 10 granted kit1 drlee || fail "kit1 never took drlee's grant: $(sstatus kit1); $(tail -n 5 "$T/kit1/sensord.log")"
[ "$(grep -c "connected to the broker" "$T/kit1/sensord.log")" = 1 ] ||
	fail "kit1 connected again to get it: $(grep "connected to the broker" "$T/kit1/sensord.log")"
grep -q "doctor drlee granted" "$T/kit1/sensord.log" || fail "no log line for the grant"

say "a pulse of 24 raises the alarm; certd goes; drlee's acknowledgement waits"
alarm_is() { [ "$(cat "$ALARM" 2>/dev/null)" = "$1" ]; }
wait_until 15 alarm_is 1 || fail "no alarm: $(sstatus kit1)"
SEQ=$(sstatus kit1 | json_get '["alarm"]["seq"]')
[ -n "$SEQ" ] && [ "$SEQ" -gt 0 ] || fail "no alarm seq: $(sstatus kit1)"
stop "$CERTD"
wait_until 10 grep -q "out of the home" "$T/kit1/sensord.log" || fail "kit1 did not leave the home without certd"
doctor_cmd drlee ack --kit kit1 --seq "$SEQ" --out "$T/ack" >"$T/ack.log" 2>&1 ||
	fail "iotsec-doctor ack: $(cat "$T/ack.log")"
mqtt_pub drlee -q 1 -t "iotsec/$HOME_NAME/drlee/ack/kit1" -f "$T/ack" || fail "drlee could not publish"
wait_until 10 grep -q "acknowledgement from drlee waits until we are in the home" "$T/kit1/sensord.log" ||
	fail "kit1 does not say it holds the acknowledgement: $(tail -n 5 "$T/kit1/sensord.log")"
alarm_is 1 || fail "a kit out of the home cleared its alarm"

say "certd is back: the acknowledgement held clears the alarm"
run kit1 certd
wait_until 10 alarm_is 0 || fail "the alarm stays $(cat "$ALARM"): $(sstatus kit1); $(tail -n 5 "$T/kit1/sensord.log")"
grep -q "doctor drlee acknowledged the emergency (seq $SEQ): alarm cleared" "$T/kit1/sensord.log" ||
	fail "kit1's log does not say who cleared the alarm"
echo ok
