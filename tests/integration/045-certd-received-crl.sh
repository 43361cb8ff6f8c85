#!/bin/sh
# iotsec-certd follows the CRL another device sent (state_dir/pingd/crl.pem, where pingd installs
# it) when it is newer than the administrator's: a received CRL that revokes this device takes it
# out of the home at once, even when pingd's directory appears after certd started. An older,
# garbage or foreign file there is ignored, said once, and the administrator's CRL stays in force.
. "$(dirname "$0")/common.sh"

# A long interval: only the watch on the files can bring each change in time.
INTERVAL=600
CA=$T/ca
DEV=$T/pi1
ETC=$T/etc # the administrator's copies of the CA certificate and CRL, as in /etc/iotsec
RECEIVED=$DEV/state/pingd/crl.pem
iotsec-pki init --dir "$CA" --home smith >/dev/null 2>&1
iotsec-pki init --dir "$T/otherca" --home jones >/dev/null 2>&1
iotsec-pki enrol --dir "$CA" --device pi1 --role node --out "$DEV" >/dev/null 2>&1
iotsec-pki enrol --dir "$CA" --device pi2 --role node --out "$T/pi2" >/dev/null 2>&1
mkdir "$ETC"
cp "$CA/ca.crt" "$CA/crl.pem" "$ETC/"
write_config "$DEV/iotsec.conf" "$DEV" "$ETC" "certd = { interval = $INTERVAL; };"

state() { iotsecctl -c "$DEV/iotsec.conf" status --json | json_get '["certificate"]["state"]'; }
reason() { iotsecctl -c "$DEV/iotsec.conf" status --json | json_get '["certificate"]["reason"]'; }
is_state_why() { [ "$(state)" = "$1" ] && case "$(reason)" in *"$2"*) ;; *) false ;; esac; }
expect() {
	wait_until 3 is_state_why "$1" "${2:-}" ||
		fail "state is $(state) ($(reason)), want $1${2:+ ($2)}"
	say "$1${2:+: $(reason)}"
}
# install FILE: what pingd does (crl_install()): a temporary file renamed over the received one.
install_received() {
	cp "$1" "$RECEIVED.tmp"
	mv "$RECEIVED.tmp" "$RECEIVED"
}
number() { printf '%d' "$(openssl crl -in "$1" -noout -crlnumber | sed 's/.*=//')"; }

say "start certd before pingd's directory exists"
[ ! -e "$DEV/state/pingd" ] || fail "pingd's directory already there"
start certd "$DEV/iotsec.conf"
wait_until 5 test -S "$DEV/run/certd/certd.sock" || fail "no control socket"
expect valid

say "pingd's directory appears, with a newer CRL that revokes another device"
iotsec-pki revoke --dir "$CA" --device pi2 >/dev/null 2>&1
cp "$CA/crl.pem" "$T/crl-pi2.pem"
mkdir -m 0755 "$DEV/state/pingd"
install_received "$T/crl-pi2.pem"
wait_until 3 grep -q "CRL in force: $RECEIVED (number $(number "$T/crl-pi2.pem"))" \
	"$DEV/certd.log" || fail "the received CRL was not taken up"
expect valid

say "garbage, then another home's CRL, in its place: ignored, said once each"
printf 'not a CRL\n' >"$RECEIVED.tmp"
mv "$RECEIVED.tmp" "$RECEIVED"
wait_until 3 grep -q "ignoring the received CRL $RECEIVED: malformed message" "$DEV/certd.log" ||
	fail "garbage not reported"
iotsec-certd -c "$DEV/iotsec.conf" --check-config >"$T/check.out" 2>&1 ||
	fail "--check-config refused an ignored received CRL: $(cat "$T/check.out")"
grep -q "$RECEIVED: note: ignored" "$T/check.out" || fail "no note: $(cat "$T/check.out")"
install_received "$T/otherca/crl.pem"
wait_until 3 grep -q "ignoring the received CRL $RECEIVED: certificate not issued" \
	"$DEV/certd.log" || fail "another home's CRL not reported"
touch "$RECEIVED" # the same file again: nothing new to say
sleep 1
[ "$(grep -c "ignoring the received CRL" "$DEV/certd.log")" -eq 2 ] ||
	fail "ignoring said more than once per file: $(grep "ignoring" "$DEV/certd.log")"
expect valid

say "a newer CRL revoking this device arrives: out of the home at once"
iotsec-pki revoke --dir "$CA" --device pi1 >/dev/null 2>&1
cp "$CA/crl.pem" "$T/crl-pi1.pem"
install_received "$T/crl-pi1.pem"
expect invalid "revoked"
iotsecctl -c "$DEV/iotsec.conf" status --json | json_get '["certificate"]["reason"]'

say "an older one in its place no longer revokes it (the administrator's does not either)"
install_received "$T/crl-pi2.pem"
expect valid
rm "$RECEIVED"
expect valid

say "the administrator installs the newest CRL: an older received one is ignored, quietly"
install_received "$T/crl-pi2.pem"
cp "$T/crl-pi1.pem" "$ETC/crl.pem.tmp"
mv "$ETC/crl.pem.tmp" "$ETC/crl.pem"
expect invalid "revoked"
sleep 0.5
[ "$(grep -c "ignoring the received CRL" "$DEV/certd.log")" -eq 2 ] ||
	fail "an older received CRL was reported as a problem"

say "each transition was logged once"
logged=$(grep -c "device out of the home" "$DEV/certd.log" || true)
[ "$logged" -eq 2 ] || fail "logged $logged times, want 2"
kill "$LAST_PID"
wait "$LAST_PID" || fail "certd exited non-zero"
echo "ok"
