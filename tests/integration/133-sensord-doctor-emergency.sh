#!/bin/sh
# The doctor stream and the emergency. A doctor with a certificate of the home (role doctor)
# grants kit1 a stream (retained on the broker): kit1 starts reading its doctor sensors, seals
# them for the doctor alone (iotsec-doctor read opens them; the home's devices never see their
# values). A pulse of 25 raises the alarm output and sends an emergency record at once; the
# alarm survives a restart; acknowledgements signed by a node, by a doctor of another home, or
# for a seq below the alarm's are refused and logged, the alarm staying up; the doctor's own
# clears it, and the same acknowledgement again is refused.
. "$(dirname "$0")/common.sh"
. "$IT_DIR/sensord-common.sh"
need_netns
sensord_home
ALARM=$T/kit1/alarm
kit 1 hub controller
kit 2 kit1 node "sensors = \"room=replay:$T/room.csv pulse=replay:$T/pulse.csv spo2=replay:$T/spo2.csv\"; alarm_output = \"$ALARM\";"
# rows N ROW: ROW N times.
rows() { _i=0; while [ $_i -lt "$1" ]; do echo "$2"; _i=$((_i + 1)); done; }
rows 400 "room,21.625,C" >"$T/room.csv"
rows 400 "pulse,64.5,/min" >"$T/pulse.csv"
rows 400 "spo2,97.25,%" >"$T/spo2.csv"
echo 0 >"$ALARM"
doctor 5 drwho
for n in hub kit1; do run_kit "$n"; done
home_ready hub kit1
wait_until 10 opened hub kit1 room 21.625 || fail "hub does not open kit1's room readings"
stream_of() {
	sstatus kit1 | $PY -c 'import json, sys
print(" ".join(s["stream"] for s in json.load(sys.stdin)["sensors"] if s["name"] == sys.argv[1]))' "$1"
}
[ "$(stream_of pulse)" = waiting ] || fail "kit1's pulse, with no doctor, is $(stream_of pulse): $(sstatus kit1)"
say "no doctor yet: kit1's pulse waits"

D=iotsec/$HOME_NAME/kit1
# drwho's reader, on its host with a certificate of its own: drwho's publishes below would
# otherwise close it (the broker names a client by its certificate's CN).
mqtt_client drwhoreader 5
mqtt_sub_bg drwhoreader "$T/doctor.out" -q 1 -t "$D/doctor" -t "$D/emergency" -F '%t %x'
grant drwho kit1
wait_until 15 granted kit1 drwho || fail "kit1 did not install the grant: $(sstatus kit1)"
grep -q "doctor drwho granted" "$T/kit1/sensord.log" || fail "kit1's log does not say"
pulse_for_doctor() { [ "$(stream_of pulse)" = doctor ]; }
wait_until 5 pulse_for_doctor ||
	fail "kit1's pulse stream: $(stream_of pulse)"
doctor_lines() { grep "^$D/$1 " "$T/doctor.out" || true; }
some() { [ "$(doctor_lines doctor | wc -l)" -ge 6 ]; }
wait_until 15 some || fail "no doctor readings on $D/doctor: $(tail -n 3 "$T/doctor.out")"
doctor_lines doctor | doctor_cmd drwho read --json >"$T/read.out" 2>"$T/read.err" ||
	fail "iotsec-doctor read refused some: $(head -n 3 "$T/read.err")"
# got SENSOR DEVICE VALUE FILE: readings of DEVICE's SENSOR of VALUE in FILE (read --json).
got() {
	$PY -c 'import json, sys
sensor, device, value = sys.argv[1], sys.argv[2], float(sys.argv[3])
rows = [json.loads(l) for l in open(sys.argv[4])]
print(sum(1 for r in rows if (r["sensor"], r["device"], r["value"]) == (sensor, device, value)))' "$@"
}
[ "$(got pulse kit1 64.5 "$T/read.out")" -ge 1 ] || fail "the doctor did not read kit1's pulse: $(head -n 3 "$T/read.out")"
[ "$(got spo2 kit1 97.25 "$T/read.out")" -ge 1 ] || fail "the doctor did not read kit1's spo2: $(head -n 3 "$T/read.out")"
# The same lines again: every one a replay to the doctor's tool.
if doctor_lines doctor | sed -n '1p;1p' | doctor_cmd drwho read >/dev/null 2>"$T/read2.err"; then
	fail "iotsec-doctor read took the same reading twice"
fi
say "the doctor reads kit1's pulse and spo2 ($(wc -l <"$T/read.out") readings)"
for s in pulse spo2; do
	[ "$(count_readings hub kit1 "$s")" = 0 ] || fail "hub opened kit1's $s: $(readings hub | grep "$s" | head -n 2)"
done
if readings hub | grep -Eq '64\.5|97\.25'; then fail "a doctor value in hub's readings"; fi
opened hub kit1 room 21.625 || fail "hub no longer opens kit1's room readings"
say "hub opens kit1's room readings and none of the doctor's"

say "a pulse of 25: the alarm"
stop_sensord kit1
{ echo "pulse,25,/min"; rows 400 "pulse,63,/min"; } >"$T/pulse.csv"
run_sensord kit1
alarm_is() { [ "$(cat "$ALARM")" = "$1" ]; }
wait_until 15 alarm_is 1 || fail "the alarm output is $(cat "$ALARM"): $(sstatus kit1)"
# At once: the emergency record does not wait behind the spool.
wait_until 3 sh -c "grep -q '^$D/emergency ' '$T/doctor.out'" ||
	fail "no emergency record on $D/emergency within 3 s of the alarm"
doctor_lines emergency | doctor_cmd drwho read --json >"$T/emergency.out" 2>"$T/emergency.err" ||
	fail "the doctor cannot read the emergency record: $(cat "$T/emergency.err")"
SEQ=$(sstatus kit1 | json_get '["alarm"]["seq"]')
$PY -c 'import json, sys
r = json.loads(open(sys.argv[1]).readline())
ok = r["emergency"] and r["sensor"] == "pulse" and r["value"] == 25 and r["seq"] == int(sys.argv[2])
sys.exit(not ok)' "$T/emergency.out" "$SEQ" || fail "the emergency record reads $(cat "$T/emergency.out"), the alarm's seq is $SEQ"
[ "$(sstatus kit1 | json_get '["alarm"]["set"]')" = True ] || fail "kit1's status: $(sstatus kit1)"
[ "$SEQ" -gt 1 ] || fail "the alarm's seq is $SEQ"
say "alarm set, emergency record seq $SEQ read by the doctor"

say "kit1 restarts (its alarm output reset by hand, no low pulse left): the alarm stays"
stop_sensord kit1
rows 400 "pulse,62,/min" >"$T/pulse.csv"
echo 0 >"$ALARM"
run_sensord kit1
wait_until 10 alarm_is 1 || fail "after a restart the alarm output is $(cat "$ALARM")"
wait_until 20 sensord_ready kit1 || fail "kit1 not ready: $(sstatus kit1)"
[ "$(sstatus kit1 | json_get '["alarm"]["seq"]')" = "$SEQ" ] || fail "kit1's alarm after restart: $(sstatus kit1)"
grep -q "the alarm raised at seq $SEQ (pulse 25) is still set" "$T/kit1/sensord.log" ||
	fail "kit1's log does not say the alarm is still set"

# forged WHY FROM FILE LOGLINE: FILE published by FROM's client on FROM's ack topic for kit1 is
# refused by kit1 (its refusals from FROM go up, LOGLINE logged) and the alarm stays up.
forged() {
	_from=$2
	_before=$(refused_from kit1 "$_from")
	mqtt_pub "$2" -q 1 -t "iotsec/$HOME_NAME/$2/ack/kit1" -f "$3" || fail "$2 could not publish"
	_more() { [ "$(refused_from kit1 "$_from")" -gt "$_before" ]; }
	wait_until 10 _more || fail "kit1 did not refuse $1: $(sstatus kit1)"
	grep -q "refused an emergency acknowledgement.* from $2: $4" "$T/kit1/sensord.log" ||
		fail "kit1's log does not say why it refused $1: $(grep -i "refused\|$_from" "$T/kit1/sensord.log" | tail -n 6)"
	sleep 1
	alarm_is 1 || fail "$1 cleared the alarm"
	[ "$(sstatus kit1 | json_get '["alarm"]["set"]')" = True ] || fail "$1 cleared the alarm: $(sstatus kit1)"
	say "refused: $1"
}
# sign_ack CERT KEY: an EMERGENCY_ACK of the alarm's seq for kit1, signed with KEY.
sign_ack() {
	$PY -c 'import os, sys; sys.path.insert(0, sys.argv[1]); from envelope import Device
d = Device(sys.argv[2], sys.argv[3])
sys.stdout.buffer.write(d.seal("EMERGENCY_ACK", {"kit": "kit1", "seq": int(sys.argv[4])}, to="kit1", id=os.urandom(8).hex()))' \
		"$IT_DIR" "$1" "$2" "$SEQ"
}
sign_ack "$T/hub/hub.crt" "$T/hub/hub.key" >"$T/ack-node" || fail "cannot sign as hub"
# Published with hub's certificate: hub's sensord is stopped first, since a second connection with
# its certificate would close sensord's (the broker names both by the CN). Nothing below needs it.
stop_sensord hub
forged "an acknowledgement signed by a node" hub "$T/ack-node" "certificate role not allowed"

# A doctor of another home that took the same names: home testhome, doctor drwho.
iotsec-pki init --dir "$T/other" --home "$HOME_NAME" >/dev/null 2>&1 || fail "pki init (other home)"
iotsec-doctor init --dir "$T/evil" --name drwho --home "$HOME_NAME" >/dev/null 2>&1 || fail "init evil doctor"
iotsec-pki enrol --dir "$T/other" --device drwho --role doctor --csr "$T/evil/doctor.csr" \
	--out "$T/evil/enrol" >/dev/null 2>&1 || fail "enrol evil doctor"
cp "$T/evil/enrol/drwho.crt" "$T/evil/doctor.crt"
cp "$T/evil/enrol/ca.crt" "$T/evil/ca.crt"
sign_ack "$T/evil/doctor.crt" "$T/evil/doctor.key" >"$T/ack-evil" || fail "cannot sign as the other drwho"
# Carried by the relay, it reaches the broker on drwho's topic.
forged "an acknowledgement from a doctor of another home" drwho "$T/ack-evil" "certificate not issued by this home's CA"

doctor_cmd drwho ack --kit kit1 --seq $((SEQ - 1)) --out "$T/ack-low" >"$T/ack.log" 2>&1 ||
	fail "iotsec-doctor ack: $(cat "$T/ack.log")"
forged "drwho's acknowledgement of seq $((SEQ - 1))" drwho "$T/ack-low" "replayed message"
# A wrong --seq is the doctor's likely mistake, not an attack: the log says which seq would do.
grep -q "refused an emergency acknowledgement (seq $((SEQ - 1)), below the alarm's emergency record, seq $SEQ) from drwho" \
	"$T/kit1/sensord.log" || fail "kit1's log does not say the seq is too low: $(grep "refused an emergency" "$T/kit1/sensord.log" | tail -n 3)"

say "drwho acknowledges seq $SEQ"
doctor_cmd drwho ack --kit kit1 --seq "$SEQ" --out "$T/ack-good" >"$T/ack.log" 2>&1 ||
	fail "iotsec-doctor ack: $(cat "$T/ack.log")"
mqtt_pub drwho -q 1 -t "iotsec/$HOME_NAME/drwho/ack/kit1" -f "$T/ack-good" || fail "drwho could not publish"
wait_until 10 alarm_is 0 || fail "the alarm output stays $(cat "$ALARM"): $(sstatus kit1)"
[ "$(sstatus kit1 | json_get '["alarm"]["set"]')" = False ] || fail "kit1's status: $(sstatus kit1)"
grep -q "doctor drwho acknowledged the emergency (seq $SEQ): alarm cleared" "$T/kit1/sensord.log" ||
	fail "kit1's log does not say who cleared the alarm"
before=$(refused_from kit1 drwho)
mqtt_pub drwho -q 1 -t "iotsec/$HOME_NAME/drwho/ack/kit1" -f "$T/ack-good" || fail "drwho could not publish"
more() { [ "$(refused_from kit1 drwho)" -gt "$before" ]; }
wait_until 10 more || fail "kit1 took the same acknowledgement twice: $(sstatus kit1)"
alarm_is 0 || fail "the alarm output is $(cat "$ALARM")"
kill -0 "$(sensord_pid kit1)" || fail "kit1's sensord died"
say "alarm cleared by drwho; the same acknowledgement again refused"
echo ok
