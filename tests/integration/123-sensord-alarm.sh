#!/bin/sh
# The emergency, end to end with a real broker and a real doctor (iotsec-doctor): the kit reads
# no pulse until a doctor grants it a doctor stream (retained on the broker); a pulse below the
# threshold sets the alarm output and sends a doctor-sealed emergency record, which the doctor
# opens; the alarm survives a restart of sensord; another doctor's acknowledgement is refused,
# the granted doctor's clears it, and the same acknowledgement again is refused.
. "$(dirname "$0")/common.sh"
IT_DIR=$(dirname "$0")
. "$IT_DIR/mqtt-common.sh"
need_netns
make_home smith
broker_host 1
device 2 pi2 controller
device 3 kit node
broker_start

# The doctors work from host 5, with certificates of the home's doctor role.
add_host 5
for doc in doc1 doc2; do
	iotsec-doctor init --dir "$T/$doc" --name "$doc" --home smith >"$T/$doc.init" 2>&1 ||
		fail "doctor init $doc: $(cat "$T/$doc.init")"
	iotsec-pki enrol --dir "$T/ca" --device "$doc" --role doctor --csr "$T/$doc/doctor.csr" \
		--out "$T/$doc/out" >"$T/$doc.enrol" 2>&1 || fail "enrol $doc: $(cat "$T/$doc.enrol")"
	cp "$T/$doc/out/$doc.crt" "$T/$doc/doctor.crt"
	cp "$T/$doc/out/ca.crt" "$T/$doc/ca.crt"
	# As mqtt_tls names a device's files.
	cp "$T/$doc/doctor.crt" "$T/$doc/$doc.crt"
	cp "$T/$doc/doctor.key" "$T/$doc/$doc.key"
	eval "HOST_$doc=5"
done

{
	echo "# pulse per minute"
	for v in 72 71 70 69 68 67 66 65 64 63 62 22 61 62 63 64 65 66 67 68 69 70; do echo "pulse,$v,/min"; done
} >"$T/kit/pulse.csv"
for n in pi2 kit; do
	cat >>"$T/$n/iotsec.conf" <<CONF
sensord = { broker = "$BROKER_IP"; interval_ms = 300; sensors = "pulse=replay:$T/$n/pulse.csv";
  alarm_output = "$T/$n/alarm"; resync_ms = 300; resync_tries = 2; };
CONF
done
cp "$T/kit/pulse.csv" "$T/pi2/pulse.csv"
# On pi2's host with a certificate of its own: pi2's sensord runs beside it, and the broker
# names a client by its certificate's CN (a second connection with one certificate closes the
# first).
mqtt_client watcher 2
mqtt_sub_bg watcher "$T/emergency.out" -q 1 -t 'iotsec/smith/kit/emergency' -F '%x'
for n in pi2 kit; do
	run_all "$n"
	run "$n" sensord
	eval "SENSORD_$n=\$LAST_PID"
done
wait_until 30 same_epoch pi2 kit || fail "rings not delivered"

status() { ctl "$T/kit/run/sensord/sensord.sock" '{"v":1,"verb":"status"}'; }
sfield() { status | $PY -c "import json,sys; d=json.load(sys.stdin); print(json.dumps(eval('d' + sys.argv[1])))" "$1"; }
# is EXPR VALUE / above EXPR N: a status field now (for wait_until, which runs them again).
is() { [ "$(sfield "$1")" = "$2" ]; }
above() { [ "$(sfield "$1")" -gt "$2" ]; }

say "no doctor: the pulse is not read"
wait_until 10 above '["group_start"]' 0 || fail "kit has no group stream: $(status)"
sleep 1
[ "$(sfield '["sensors"][0]["stream"]')" = '"waiting"' ] || fail "the pulse is read without a doctor: $(status)"
[ "$(sfield '["published"]')" = 0 ] || fail "kit published without a doctor: $(status)"
[ ! -e "$T/kit/alarm" ] || fail "an alarm without a reading"

say "doc1 grants the kit a doctor stream (retained)"
iotsec-doctor grant --dir "$T/doc1" --kit kit --kit-cert "$T/kit/kit.crt" --out "$T/grant" \
	>"$T/grant.log" 2>&1 || fail "grant: $(cat "$T/grant.log")"
mqtt_pub doc1 -q 1 -r -t iotsec/smith/doc1/grant/kit -f "$T/grant" || fail "doc1 cannot publish its grant"
wait_until 10 is '["doctor"]' '"doc1"' || fail "kit did not install doc1's grant: $(status)"

say "a pulse of 22: the alarm, and an emergency record for the doctor"
wait_until 20 grep -qx 1 "$T/kit/alarm" || fail "no alarm: $(status)"
[ "$(sfield '["alarm"]["set"]')" = true ] || fail "status shows no alarm: $(status)"
seq=$(sfield '["alarm"]["seq"]')
wait_until 10 grep -q . "$T/emergency.out" || fail "no emergency record on the broker"
grep -v '^Client\|^Subscribed' "$T/emergency.out" | grep -E '^[0-9a-f]+$' >"$T/emergency.hex"
iotsec-doctor read --dir "$T/doc1" --json <"$T/emergency.hex" >"$T/emergency.json" 2>"$T/read.err" ||
	fail "the doctor cannot open the emergency record: $(cat "$T/read.err")"
grep -q '"emergency":true' "$T/emergency.json" || fail "not an emergency: $(cat "$T/emergency.json")"
grep -qE '"value":22(\.0+)?[,}]' "$T/emergency.json" || fail "not the pulse of 22: $(cat "$T/emergency.json")"
# The home's readers cannot open it: pi2 holds no doctor key.
[ "$(ctl "$T/pi2/run/sensord/sensord.sock" '{"v":1,"verb":"readings"}' | grep -c '"sensor":"pulse"')" = 0 ] ||
	fail "pi2 reads the kit's pulse"

say "the alarm survives a restart"
eval "stop \$SENSORD_kit"
run kit sensord
wait_until 10 is '["alarm"]["set"]' true || fail "the alarm is gone after a restart: $(status)"
grep -qx 1 "$T/kit/alarm" || fail "the alarm output is off after a restart"

say "doc2's acknowledgement is refused"
# doc2's own grant, never published: the kit's doctor is doc1.
iotsec-doctor grant --dir "$T/doc2" --kit kit --kit-cert "$T/kit/kit.crt" --out "$T/grant2" \
	>"$T/grant2.log" 2>&1 || fail "grant doc2: $(cat "$T/grant2.log")"
iotsec-doctor ack --dir "$T/doc2" --kit kit --seq "$seq" --out "$T/ack2" >"$T/ack2.log" 2>&1 ||
	fail "ack doc2: $(cat "$T/ack2.log")"
mqtt_pub doc2 -q 1 -t iotsec/smith/doc2/ack/kit -f "$T/ack2" || fail "doc2 cannot publish"
wait_until 10 above '["refused_by"].get("doc2", 0)' 0 || fail "doc2's ack not refused: $(status)"
[ "$(sfield '["alarm"]["set"]')" = true ] || fail "doc2 cleared the alarm"

say "doc1's acknowledgement clears it"
iotsec-doctor ack --dir "$T/doc1" --kit kit --seq "$seq" --out "$T/ack1" >"$T/ack1.log" 2>&1 ||
	fail "ack doc1: $(cat "$T/ack1.log")"
mqtt_pub doc1 -q 1 -t iotsec/smith/doc1/ack/kit -f "$T/ack1" || fail "doc1 cannot publish"
wait_until 10 grep -qx 0 "$T/kit/alarm" || fail "the alarm output is still on: $(status)"
[ "$(sfield '["alarm"]["set"]')" = false ] || fail "status still shows the alarm"
grep -q "doc1 acknowledged the emergency" "$T/kit/sensord.log" || fail "the kit does not say who cleared it"

say "the same acknowledgement again: refused"
before=$(sfield '["refused_by"].get("doc1", 0)')
mqtt_pub doc1 -q 1 -t iotsec/smith/doc1/ack/kit -f "$T/ack1" || fail "doc1 cannot publish"
wait_until 10 above '["refused_by"].get("doc1", 0)' "$before" || fail "the replayed ack was not refused: $(status)"
grep -qx 0 "$T/kit/alarm" || fail "the replayed ack changed the alarm"
say "the kit publishes its pulse to doc1: $(sfield '["published"]') readings"
