#!/bin/sh
# Who the relay turns away. A doctor certificate of another home (same names), a revoked doctor
# and a node's certificate posing as a doctor cannot log in, so they can neither fetch nor grant;
# each refusal says why. Malformed, oversized and mislabelled publishes on the reading topics are
# refused and counted by reason, and the kit's readings go on being stored.
. "$(dirname "$0")/common.sh"
. "$IT_DIR/sensord-common.sh"
. "$IT_DIR/relay-common.sh"
need_netns
sensord_home
write_csv "$T/pulse.csv" $(seq 1 400 | sed 's/.*/pulse,70,\/min/')
kit 1 hub controller
kit 2 kit1 node "sensors = \"pulse=replay:$T/pulse.csv\"; interval_ms = 200; $RELAY_KIT"
relay 7 relay1
doctor 5 drwho
doctor 6 drgone
run_relay relay1
wait_until 10 relay_ready relay1 || fail "relay1 not connected: $(relay_call relay1 status)"
run_all hub
run_kit kit1
home_ready kit1
grant_via relay1 drwho kit1
wait_until 15 granted kit1 drwho || fail "kit1 did not install the grant: $(sstatus kit1)"
stored() { [ "$(rfield relay1 relay readings)" -ge "$1" ]; }
wait_until 15 stored 5 || fail "relay1 stores nothing of kit1: $(relay_call relay1 relay)"

# refused_login WHAT DIR WORDS: iotsec-doctor fetch with the doctor in DIR fails, and its error
# says WORDS.
refused_login() {
	if on "$(host_of drwho)" iotsec-doctor -c "$T/drwho/iotsec.conf" fetch --dir "$2" \
		--relay "$(relay_url relay1)" --relay-name relay1 >"$T/refused.out" 2>"$T/refused.err"; then
		fail "$1 fetched from relay1: $(head -n 3 "$T/refused.out")"
	fi
	grep -qi "$3" "$T/refused.err" || fail "$1: the error does not say '$3': $(cat "$T/refused.err")"
	[ ! -s "$T/refused.out" ] || fail "$1 got readings: $(head -n 3 "$T/refused.out")"
	say "refused: $1 ($(tail -n 1 "$T/refused.err"))"
}

# A doctor of another home, with the same home and doctor names.
iotsec-pki init --dir "$T/other" --home "$HOME_NAME" >/dev/null 2>&1 || fail "pki init (other home)"
iotsec-doctor init --dir "$T/evil" --name drwho --home "$HOME_NAME" >/dev/null 2>&1 || fail "init evil doctor"
iotsec-pki enrol --dir "$T/other" --device drwho --role doctor --csr "$T/evil/doctor.csr" \
	--out "$T/evil/enrol" >/dev/null 2>&1 || fail "enrol evil doctor"
cp "$T/evil/enrol/drwho.crt" "$T/evil/doctor.crt"
cp "$T/drwho/ca.crt" "$T/evil/ca.crt" # it trusts our relay: only the relay's refusal protects
refused_login "a doctor of another home" "$T/evil" "refused\|not issued\|CA"

# A node's certificate and key in a doctor's directory.
mkdir -p "$T/posing"
cp "$T/hub/hub.crt" "$T/posing/doctor.crt"
cp "$T/hub/hub.key" "$T/posing/doctor.key"
cp "$T/drwho/ca.crt" "$T/posing/ca.crt"
refused_login "a node posing as a doctor" "$T/posing" "role"

# drgone logs in, then is revoked: refused from then on.
doctor_via relay1 drgone fetch --format json >"$T/gone.out" 2>"$T/gone.err" ||
	fail "drgone, not yet revoked, cannot log in: $(cat "$T/gone.err")"
iotsec-pki revoke --dir "$T/ca" --device drgone >/dev/null 2>&1 || fail "revoke drgone"
sleep 1.1 # the CRL's file time moves on: relay1 reads it again
refused_login "a revoked doctor" "$T/drgone" "revoked"

# Publishes on reading topics that are not readings: hub (a device of the home may publish under
# its own name) sends junk; relay1 counts each by reason and goes on storing kit1's readings.
H=iotsec/$HOME_NAME/hub
head -c 9 /dev/urandom >"$T/short"
head -c 5000 /dev/zero >"$T/big"
# A real reading of kit1's, captured, then sent by hub under its own name: its device is not the
# topic's.
mqtt_client snoop 5
mqtt_sub snoop "$T/cap" -C 1 -q 1 -t "iotsec/$HOME_NAME/kit1/doctor" -F '%x' ||
	fail "no reading of kit1 captured"
xxd -r -p "$T/cap" >"$T/captured"
stop_sensord hub 2>/dev/null || true
mqtt_pub hub -q 1 -t "$H/doctor" -f "$T/short" || fail "hub cannot publish"
mqtt_pub hub -q 1 -t "$H/doctor" -f "$T/big" || fail "hub cannot publish"
mqtt_pub hub -q 1 -t "$H/doctor" -f "$T/captured" || fail "hub cannot publish"
mqtt_pub hub -q 1 -t "$H/emergency" -f "$T/captured" || fail "hub cannot publish"
counted() {
	relay_call relay1 status | $PY -c 'import json, sys
r = json.load(sys.stdin)["refused_by"]
sys.exit(not (r.get("malformed", 0) >= 1 and r.get("oversize", 0) >= 1 and r.get("device", 0) >= 2))'
}
wait_until 10 counted || fail "relay1 did not count the junk by reason: $(relay_call relay1 status)"
before=$(rfield relay1 relay readings)
wait_until 10 stored $((before + 3)) || fail "relay1 stopped storing kit1's readings: $(relay_call relay1 relay)"
kill -0 "$(relay_pid relay1)" || fail "relay1 died"
n=$(grep -c "hub" "$T/relay1/relayd.log" || true)
[ "$n" -ge 1 ] && [ "$n" -le 8 ] || fail "relay1's log names hub $n times (once per reason wanted)"
say "junk on the reading topics refused and counted by reason; kit1's readings still stored"
