#!/bin/sh
# make demo, part two: three Pis on their own network (namespaces on a bridge) elect a controller,
# receive key rings, find pairwise keys and exchange an encrypted message; a rogue Pi plugged into
# the same network is ignored; a Pi that vanishes is declared missing and the home rekeys without
# it until the household releases it. Then the Pis publish their sensor readings, sealed, through
# the home's broker: every Pi reads them, the broker cannot; a patient's pulse goes to the doctor
# alone, and a pulse too low raises an alarm only the doctor's signed acknowledgement clears. Last,
# the cloud relay keeps the doctor's readings while the doctor is offline; the doctor fetches them,
# then opens them in the page the relay serves (chromium, headless: its screenshot is kept in
# build/demo/relay-page.png). Uses the integration tests' host helpers.
IT_DIR=$(dirname "$0")/../tests/integration
. "$IT_DIR/common.sh"
. "$IT_DIR/pingd-common.sh"
. "$IT_DIR/mqtt-common.sh"
# The relay's (steps 17-19), before any of them sets anything.
. "$IT_DIR/sensord-common.sh"
. "$IT_DIR/relay-common.sh"
. "$IT_DIR/page-common.sh"

. "$(dirname "$0")/step.sh"
# The Pis' files live in a scratch directory removed as the demo ends: show it as $T.
show() {
	cmdline "$@"
	"$@"
}
# cmdline COMMAND...: print the command as show does, without running it.
cmdline() { printf '$ %s\n' "$*" | sed "s|$T|\$T|g"; }

step "6. Three Pis and a rogue on one network (namespaces joined by a bridge)"
echo "(their files are in a scratch directory, \$T below, removed as the demo ends)"
need_netns
make_home smith-family
device 1 hub controller
device 2 kitchen node
device 3 garage node
echo "hub, kitchen and garage are enrolled; the rogue makes its own CA with the same home name"
iotsec-pki init --dir "$T/rogue-ca" --home smith-family >/dev/null 2>&1
iotsec-pki enrol --dir "$T/rogue-ca" --device hub0 --role controller --out "$T/hub0" >/dev/null 2>&1
host_config 4 hub0
sed -i "s|$T/ca/|$T/rogue-ca/|g" "$T/hub0/iotsec.conf"
# pingd's fast profile: a missing Pi is found in seconds, not in the paper's 26 minutes.
for n in hub kitchen garage; do pingd_conf "$n"; done

step "7. Every Pi starts certd, dictd, electd, keyd and pingd"
for n in hub kitchen garage; do run_home "$n"; done
run_all hub0
ready() { for n in hub kitchen garage; do [ "$(field $n keyd ring_size)" -gt 0 ] 2>/dev/null || return 1; done; }
wait_until 20 ready || fail "the rings did not arrive"
for n in kitchen garage hub; do
	echo "--- $n"
	iotsecctl -c "$T/$n/iotsec.conf" status | grep -E "device|role|controller|certificate|key pool"
done

step "8. The rogue 'hub0' declared itself controller of its own CA's home; nobody believed it"
echo "hub0 thinks the controller is: $(field hub0 electd controller)"
echo "kitchen follows: $(field kitchen electd controller)"
grep -h "refused a message from $NET.4" "$T/kitchen/electd.log" | head -n 2
echo "hub0 built a pool of its own (it is its own controller); no device of the home lists it:"
ctl "$T/kitchen/run/keyd/keyd.sock" '{"v":1,"verb":"peers"}' | grep -q '"hub0"' && fail "kitchen lists hub0"
echo "    kitchen's peers: $(ctl "$T/kitchen/run/keyd/keyd.sock" '{"v":1,"verb":"peers"}' |
	$PY -c 'import json, sys; print(", ".join(p["name"] for p in json.load(sys.stdin)["peers"]))')"

step "9. The kitchen Pi knows its peers and the keys it shares with each"
show iotsecctl -c "$T/kitchen/iotsec.conf" peers

step "10. kitchen sends garage an encrypted message (AES-256-GCM under their pairwise key)"
send_msg kitchen garage "the freezer door is open" >/dev/null
wait_until 5 received garage "the freezer door is open" || fail "garage did not receive it"
grep -h "sent\|received" "$T/kitchen/keyd.log" "$T/garage/keyd.log"
echo "garage's inbox: $(ctl "$T/garage/run/keyd/keyd.sock" '{"v":1,"verb":"inbox"}' | json_get '["messages"][0]["text"]')"

step "11. The garage Pi is stolen: its cable is pulled"
e1=$(epoch hub)
echo "hub's pingd probes every Pi each second with a signed challenge (the fast profile:"
echo "$PINGD_FAST); every Pi is alive:"
show iotsecctl -c "$T/hub/iotsec.conf" peers
link_down garage
t0=$(date +%s)
wait_until 30 quarantined hub garage missing || fail "hub did not declare garage missing"
echo "After $(($(date +%s) - t0)) s of silence (its own probes, then kitchen's) hub declared it missing:"
grep -h "garage" "$T/hub/pingd.log" | tail -n 4 | sed 's/^/    /'
rekeyed() { same_epoch hub kitchen && [ "$(epoch hub)" -gt "$e1" ]; }
wait_until 20 rekeyed || fail "the home did not rekey"
echo "The home rekeyed without it: hub and kitchen hold rings of epoch $(epoch hub), the garage one of"
echo "epoch $(epoch garage), which opens nothing any more. The quarantine list, kept on every Pi:"
show iotsecctl -c "$T/kitchen/iotsec.conf" quarantine list

step "12. The garage Pi comes back: it gets nothing until the household releases it"
link_up garage
sleep 3
echo "garage still holds epoch $(epoch garage)"
show iotsecctl -c "$T/hub/iotsec.conf" quarantine release garage
back() { same_epoch hub kitchen garage; }
wait_until 20 back || fail "garage did not get its ring after the release"
echo "garage holds a ring of epoch $(epoch garage) again, and talks with kitchen:"
send_msg garage kitchen "back home" >/dev/null
wait_until 5 received kitchen "back home" || fail "kitchen did not receive garage's message"
echo "    kitchen's inbox: $(ctl "$T/kitchen/run/keyd/keyd.sock" '{"v":1,"verb":"inbox"}' | json_get '["messages"][-1]["text"]')"

step "13. The home's broker: mosquitto, with the configuration iotsec ships"
if ! command -v mosquitto >/dev/null || ! command -v mosquitto_sub >/dev/null; then
	echo "(no mosquitto here: steps 13-19 need it; scripts/deps.sh test installs it)"
	exit 0
fi
broker_host 5
broker_start
echo "mosquitto runs on its own host, $BROKER_IP:8883, with etc/mosquitto/iotsec-broker.conf (paths"
echo "moved into \$T) and the certificate 'broker' of the home CA. Who may connect, and publish what:"
grep -E '^(require_certificate|use_identity_as_username|use_username_as_clientid|allow_anonymous|crlfile)' \
	"$BROKER_DIR/iotsec-broker.conf" | sed "s|$T|\$T|g; s/^/    /"
grep '^pattern' "$BROKER_DIR/iotsec.acl" | sed 's/^/    /'

step "14. Each Pi's sensord reads its sensors and publishes the readings, sealed"
# Replayed sensors (the replay driver reads a CSV, one row an interval): the same code path as a
# thermal zone or a DS18B20 probe, with values known in advance.
temps() { # temps FILE FROM: 120 rows of room temperature from FROM degrees, a little drift
	awk -v from="$2" 'BEGIN { print "# sensor,value,unit"
		for (i = 0; i < 120; i++) printf "temperature,%.1f,C\n", from + (i % 7) / 10 }' >"$1"
}
temps "$T/kitchen/temperature.csv" 21.4
temps "$T/garage/temperature.csv" 8.2
{
	echo "# the patient's pulse, per minute"
	for v in 72 74 73 71 70 72 69 68 25 64 66 68 70 71 72 73 72 71 70 72; do echo "pulse,$v,/min"; done
	for _ in $(seq 1 100); do echo "pulse,72,/min"; done
} >"$T/kitchen/pulse.csv"
cat >>"$T/kitchen/iotsec.conf" <<CONF
sensord = { broker = "$BROKER_IP"; interval_ms = 500; alarm_output = "$T/kitchen/alarm";
  sensors = "temperature=replay:$T/kitchen/temperature.csv, pulse=replay:$T/kitchen/pulse.csv"; };
CONF
cat >>"$T/garage/iotsec.conf" <<CONF
sensord = { broker = "$BROKER_IP"; interval_ms = 500; sensors = "temperature=replay:$T/garage/temperature.csv"; };
CONF
# hub has no sensor: its sensord only reads the others'.
cat >>"$T/hub/iotsec.conf" <<CONF
sensord = { broker = "$BROKER_IP"; };
CONF
echo "kitchen's sensord settings (garage's alike, with its temperature alone):"
sed -n '/^sensord = {/,/};/p' "$T/kitchen/iotsec.conf" | sed "s|$T|\$T|g; s/^/    /"
echo "its temperature file begins:"
sed -n 2,4p "$T/kitchen/temperature.csv" | sed 's/^/    /'
for n in hub kitchen garage; do run "$n" sensord; done
both() { readings_of hub | grep -q " kitchen temperature " && readings_of hub | grep -q " garage temperature "; }
readings_of() { iotsecctl -c "$T/$1/iotsec.conf" readings 2>/dev/null; }
wait_until 30 both || fail "hub reads no temperature of kitchen and garage"
sleep 1
echo "hub opens the home's readings (the group stream, whose key came with its ring):"
printf '$ iotsecctl -c $T/hub/iotsec.conf readings | tail -n 4\n'
readings_of hub | tail -n 4
echo "The kitchen's pulse is not read at all: it is for the patient's doctor, and none is granted yet."
cmdline iotsecctl -c "$T/kitchen/iotsec.conf" status
iotsecctl -c "$T/kitchen/iotsec.conf" status | grep -E '^sensors' || true
echo "and its sensors, from sensord's status: $(ctl "$T/kitchen/run/sensord/sensord.sock" '{"v":1,"verb":"status"}' |
	$PY -c 'import json, sys; print(", ".join("%s: %s" % (s["name"], s["stream"]) for s in json.load(sys.stdin)["sensors"]))')"

step "15. What the broker and anyone subscribed to everything see: sealed bytes"
# A certificate of its own, on hub's host: the broker names a client by its certificate's CN, and
# a second connection with hub's would close hub's sensord's.
mqtt_client onlooker "$(host_of hub)"
printf '$ mosquitto_sub -t '"'"'iotsec/#'"'"' -F '"'"'%%t %%x'"'"' -C 4   (a certificate of the home, '"'"'onlooker'"'"'; its TLS options left out)\n'
mqtt_sub onlooker -q 1 -t 'iotsec/#' -F '%t %x' -C 4 -W 10 >"$T/raw.out" || true
awk '{ printf "%s %s...%s (%d bytes)\n", $1, substr($2, 1, 72), substr($2, length($2) - 7), length($2) / 2 }' \
	"$T/raw.out" | sed 's/^/    /'
echo "In the clear, but authenticated: version 01, kind 01 (group), flags, the sender's name"
echo "('kitchen' is 6b69746368656e), the stream id, the epoch, the seq, the time and the nonce; the rest"
echo "is AES-256-GCM ciphertext and its tag. No value, no sensor name:"
hex() { printf '%s' "$1" | od -An -tx1 | tr -d ' \n'; }
for w in temperature 21.4 8.2; do
	if grep -q "$(hex "$w")" "$T/raw.out"; then fail "'$w' crosses the broker in the clear"; fi
	echo "    '$w' ($(hex "$w")): in none of them"
done

step "16. The patient's doctor: a grant, an emergency, the doctor's acknowledgement"
add_host 6
eval "HOST_dr_lee=6"
DOC=$T/dr-lee
echo "The doctor makes a key and a request; the household's CA signs it with the doctor role:"
cmdline iotsec-doctor init --dir "$DOC" --name dr-lee --home smith-family
iotsec-doctor init --dir "$DOC" --name dr-lee --home smith-family >/dev/null
cmdline iotsec-pki enrol --dir "$T/ca" --device dr-lee --role doctor --csr "$DOC/doctor.csr" --out "$DOC/out"
iotsec-pki enrol --dir "$T/ca" --device dr-lee --role doctor --csr "$DOC/doctor.csr" --out "$DOC/out" >/dev/null
cp "$DOC/out/dr-lee.crt" "$DOC/doctor.crt"
cp "$DOC/out/ca.crt" "$DOC/ca.crt"
# As mqtt_pub names a device's files.
cp "$DOC/doctor.crt" "$DOC/dr-lee.crt"
cp "$DOC/doctor.key" "$DOC/dr-lee.key"
echo "It grants the kitchen's kit a stream of its own (the root wrapped to the kit's key) and publishes"
echo "the grant, retained, so that the kit finds it whenever it connects:"
cmdline iotsec-doctor grant --dir "$DOC" --kit kitchen --kit-cert "$T/kitchen/kitchen.crt" --out "$DOC/grant"
iotsec-doctor grant --dir "$DOC" --kit kitchen --kit-cert "$T/kitchen/kitchen.crt" --out "$DOC/grant" >/dev/null
printf '$ mosquitto_pub -q 1 -r -t iotsec/smith-family/dr-lee/grant/kitchen -f $T/dr-lee/grant\n'
mqtt_pub dr-lee -q 1 -r -t iotsec/smith-family/dr-lee/grant/kitchen -f "$DOC/grant" ||
	fail "the doctor cannot publish its grant"
# Then it reads: one connection per certificate at the broker (the client id is the CN), so the
# doctor's reader runs between its publishes, not beside them. The pulse is read from the grant
# on, the emergency comes seconds later.
mqtt_sub_bg dr-lee "$T/doctor.out" -q 1 -t iotsec/smith-family/kitchen/doctor \
	-t iotsec/smith-family/kitchen/emergency -F %x
DOC_SUB=$SUB_PID
sfield() { field kitchen sensord "$1"; }
granted() { [ "$(sfield doctor)" = dr-lee ]; }
wait_until 10 granted || fail "kitchen did not take dr-lee's grant"
grep -h "dr-lee" "$T/kitchen/sensord.log" | head -n 2 | sed 's/^/    /'
echo "The pulse is read now, sealed for dr-lee alone. Then it falls to 25 a minute:"
wait_until 30 grep -qx 1 "$T/kitchen/alarm" || fail "no alarm on kitchen"
echo "    the alarm output (\$T/kitchen/alarm, a GPIO's value file on a Pi) reads $(cat "$T/kitchen/alarm")"
cmdline iotsecctl -c "$T/kitchen/iotsec.conf" status
iotsecctl -c "$T/kitchen/iotsec.conf" status | grep -E '^(sensors|ALARM)' || true
seq=$(ctl "$T/kitchen/run/sensord/sensord.sock" '{"v":1,"verb":"status"}' | json_get '["alarm"]["seq"]')
opened() { grep -E '^[0-9a-f]+$' "$T/doctor.out" | iotsec-doctor read --dir "$DOC" 2>/dev/null | grep -q EMERGENCY; }
wait_until 10 opened || fail "the doctor got no emergency record"
echo "The doctor opens what the kit sent (hex lines from mosquitto_sub -F %x); hub could not. The"
echo "emergency record (on .../emergency, sent ahead of anything spooled) and the reading itself:"
printf '$ mosquitto_sub -t iotsec/smith-family/kitchen/doctor -t .../emergency -F %%x | iotsec-doctor read --dir $T/dr-lee\n'
grep -E '^[0-9a-f]+$' "$T/doctor.out" | iotsec-doctor read --dir "$DOC" 2>/dev/null | sed 's/^/    /'
readings_of hub | grep -q " pulse " && fail "hub reads the kitchen's pulse"
echo "    (hub's readings hold no pulse: $(readings_of hub | grep -c ' pulse ' || true) of them)"
echo "The doctor acknowledges the emergency: an envelope signed with the doctor's certificate."
kill "$DOC_SUB" 2>/dev/null || true
cmdline iotsec-doctor ack --dir "$DOC" --kit kitchen --seq "$seq" --out "$DOC/ack"
iotsec-doctor ack --dir "$DOC" --kit kitchen --seq "$seq" --out "$DOC/ack" >/dev/null
printf '$ mosquitto_pub -q 1 -t iotsec/smith-family/dr-lee/ack/kitchen -f $T/dr-lee/ack\n'
mqtt_pub dr-lee -q 1 -t iotsec/smith-family/dr-lee/ack/kitchen -f "$DOC/ack" || fail "the doctor cannot publish its ack"
wait_until 10 grep -qx 0 "$T/kitchen/alarm" || fail "the alarm is still on"
echo "    the alarm output reads $(cat "$T/kitchen/alarm") again; kitchen's log:"
grep -h "acknowledged" "$T/kitchen/sensord.log" | tail -n 1 | sed 's/^/    /'
echo "The same acknowledgement sent again is refused (its seq is not above the last one acknowledged):"
mqtt_pub dr-lee -q 1 -t iotsec/smith-family/dr-lee/ack/kitchen -f "$DOC/ack" || true
refused() { field kitchen sensord refused_by | grep -q "dr-lee"; }
wait_until 10 refused || fail "the replayed acknowledgement was not refused"
echo "    kitchen's sensord, refusals by sender: $(ctl "$T/kitchen/run/sensord/sensord.sock" '{"v":1,"verb":"status"}' |
	$PY -c 'import json, sys; print(", ".join("%s %d" % kv for kv in json.load(sys.stdin)["refused_by"].items()))')"
grep -h "dr-lee" "$T/kitchen/sensord.log" | tail -n 1 | sed 's/^/    /'

step "17. The cloud relay: the kitchen's doctor readings wait there while dr-lee is offline"
# The relay tests' helpers (relay-common.sh): a relay on a host of its own, subscribed to the
# home's broker.
relay 7 relay1
echo "relay1 has a certificate of the home with the relay role; its settings:"
sed -n '/^relay = {/p' "$T/relay1/iotsec.conf" | sed "s|$T|\$T|g; s/;  *};/; };/; s/; \([a-z]\)/;\n    \1/g; s/^/    /"
run_relay relay1
wait_until 10 relay_ready relay1 || fail "relay1 did not connect to the broker"
echo "It is connected to the broker, subscribed to every kit's doctor and emergency topics."
# The kitchen's sensord again, now trusting relay1's receipts and its sensors (first without the
# patient's, so that none is read under the old grant before relay1's arrives).
stop_kitchen() {
	_p=$(pgrep -f "iotsec-sensord -c $T/kitchen/iotsec.conf" || true)
	[ -n "$_p" ] || return 0
	kill "$_p"
	wait_until 10 sh -c "! kill -0 $_p 2>/dev/null" || fail "kitchen's sensord does not stop"
}
# kitchen_sensord SENSORS: the kitchen's sensord settings, with relay1 and SENSORS.
kitchen_sensord() {
	sed -i '/^sensord = {/,/};/d' "$T/kitchen/iotsec.conf"
	cat >>"$T/kitchen/iotsec.conf" <<CONF
sensord = { broker = "$BROKER_IP"; interval_ms = 200; alarm_output = "$T/kitchen/alarm";
  relay = "relay1"; receipt_s = 3;
  sensors = "$1"; };
CONF
}
stop_kitchen
kitchen_sensord "temperature=replay:$T/kitchen/temperature.csv"
grants=$(grep -c "doctor dr-lee granted (" "$T/kitchen/sensord.log")
run_sensord kitchen
echo "dr-lee grants the kitchen's kit a new stream through relay1 (HTTPS, signed in with its key);"
echo "relay1 keeps the grant, publishes it where the kit looks, and files the stream under dr-lee:"
cmdline iotsec-doctor grant --dir "$DOC" --kit kitchen --kit-cert "$T/kitchen/kitchen.crt" \
	--relay "$(relay_url relay1)" --relay-name relay1
on "$(host_of dr-lee)" iotsec-doctor grant --dir "$DOC" --kit kitchen --kit-cert "$T/kitchen/kitchen.crt" \
	--relay "$(relay_url relay1)" --relay-name relay1 >"$T/grant-relay.log" 2>&1 ||
	fail "grant through relay1: $(cat "$T/grant-relay.log")"
wait_until 15 sh -c "[ \$(grep -c 'doctor dr-lee granted (' '$T/kitchen/sensord.log') -gt $grants ]" ||
	fail "kitchen did not take the grant sent through relay1"
grep -h "doctor dr-lee granted (" "$T/kitchen/sensord.log" | tail -n 1 | sed 's/^/    /'
stop_kitchen
awk 'BEGIN { for (i = 0; i < 30; i++) {
		printf "pulse,%s,/min\n", i == 20 ? 27 : 70 + (i % 9) - 4
		printf "spo2,%.1f,%%\n", 97 + (i % 5) / 5 - 0.4 >"'"$T"'/kitchen/spo2.csv"
		printf "body_temp,%.1f,C\n", 36.8 + (i % 4) / 10 >"'"$T"'/kitchen/body_temp.csv" } }' \
	>"$T/kitchen/pulse.csv"
kitchen_sensord "temperature=replay:$T/kitchen/temperature.csv, pulse=replay:$T/kitchen/pulse.csv, spo2=replay:$T/kitchen/spo2.csv, body_temp=replay:$T/kitchen/body_temp.csv"
echo "The kitchen's kit now sends its doctor readings through relay1: each stays in its spool"
echo "until relay1's signed receipt says it is stored. Its sensord settings:"
sed -n '/^sensord = {/,/};/p' "$T/kitchen/iotsec.conf" | sed "s|$T|\$T|g; s/^/    /"
run_sensord kitchen
kitchen_done() {
	sstatus kitchen | $PY -c 'import json, sys
s = json.load(sys.stdin)
sys.exit(not (all(x.get("error") == "done" for x in s["sensors"] if x["name"] != "temperature") and s["spooled"] == 0))'
}
wait_until 40 kitchen_done || fail "kitchen still holds readings: $(sstatus kitchen)"
seq=$(sstatus kitchen | json_get '["alarm"]["seq"]')
echo "A pulse of 27 among them: the alarm output reads $(cat "$T/kitchen/alarm"), the emergency record (seq $seq)"
echo "went to relay1 too. dr-lee is offline; relay1 holds everything, sealed:"
relay_call relay1 relay | $PY -c 'import json, sys
r = json.load(sys.stdin)
print("    " + ", ".join("%s %s" % (k, r[k]) for k in ("readings", "undelivered", "emergencies_undelivered", "expired") if k in r))'
echo "    kitchen's sensord: $(field kitchen sensord spooled) readings waiting for a receipt"

step "18. dr-lee comes back online and fetches: emergencies first, each reading once"
url=$(relay_url relay1)
fetch() { on "$(host_of dr-lee)" iotsec-doctor fetch --dir "$DOC" --relay "$url" --relay-name relay1 "$@"; }
cmdline iotsec-doctor fetch --dir "$DOC" --relay "$url" --max 4
fetch --max 4 >"$T/fetch.txt" 2>"$T/fetch.err" || fail "fetch: $(cat "$T/fetch.err")"
sed 's/^/    /' "$T/fetch.txt"
echo "Or as FHIR R4 Observations (LOINC-coded) for the clinic's records, the next one:"
cmdline iotsec-doctor fetch --dir "$DOC" --relay "$url" --max 1 --format fhir
fetch --max 1 --format fhir >"$T/fetch.fhir" 2>>"$T/fetch.err" || fail "fetch: $(cat "$T/fetch.err")"
$PY -c 'import json, sys
o = json.load(open(sys.argv[1]))["entry"][0]["resource"]
q = o["valueQuantity"]
print("    Observation: %s (LOINC %s), %s %s at %s" % (o["code"]["coding"][0]["display"],
      o["code"]["coding"][0]["code"], q["value"], q.get("unit", q.get("code")), o["effectiveDateTime"]))' \
	"$T/fetch.fhir" || sed -n 1,12p "$T/fetch.fhir" | sed 's/^/    /'
fetch --format json >"$T/fetch.json" 2>>"$T/fetch.err" || fail "fetch: $(cat "$T/fetch.err")"
echo "    ... and the $(grep -c . "$T/fetch.json") others (--format text, csv, json or fhir). The queue is empty now:"
echo "    relay1 undelivered: $(rfield relay1 relay undelivered)"

step "19. The doctor's page: relay1 serves it, the browser opens the readings with dr-lee's key"
why=$(page_missing)
if [ -n "$why" ]; then
	echo "(no page here: $why)"
	exit 0
fi
page_install
# What the page must chart: everything relay1 stores, opened here by the doctor's own tool.
$PY -c 'import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
for (d,) in db.execute("SELECT hex(data) FROM readings WHERE stream IN (SELECT stream FROM grants) ORDER BY id"):
    print(d)' "$T/relay1/state/relay.db" | iotsec-doctor read --dir "$DOC" --json >"$T/stored.json" 2>"$T/read.err" ||
	fail "iotsec-doctor read of relay1's store: $(cat "$T/read.err")"
page_files "$T/stored.json" "$DOC" "$DOC/roots/kitchen.json"
echo "dr-lee opens $url/ in a browser (chromium, headless, on dr-lee's host) and chooses its"
echo "doctor.key and doctor.crt: the page signs in with the key, unwraps the stream's root and"
echo "opens $(grep -o '"kit"' "$T/expected.json" | wc -l) readings in the browser; then acknowledges the emergency from the page."
SHOT=$(cd "$(dirname "$0")/.." && pwd)/build/demo/relay-page.png
page_run "$(host_of dr-lee)" "$url" "$DOC" "$SHOT" "kitchen:$seq" || {
	sed 's/^/    /' "$T/page.log"
	fail "the page's checks failed"
}
grep -E '^== (look|wait)|^ok' "$T/page.log" | sed 's/^/    /'
wait_until 15 grep -qx 0 "$T/kitchen/alarm" || fail "the page's acknowledgement did not clear the alarm"
echo "No request the browser made held the key, the root or a reading in the clear; the alarm output"
echo "reads $(cat "$T/kitchen/alarm") again:"
grep -h "acknowledged" "$T/kitchen/sensord.log" | tail -n 1 | sed 's/^/    /'
