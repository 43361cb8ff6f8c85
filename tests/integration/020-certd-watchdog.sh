#!/bin/sh
# iotsec-certd takes the device out of the home when its certificate is deleted, replaced,
# revoked, expires or is not yet valid, says why within one check interval, and brings it back
# once restored.
. "$(dirname "$0")/common.sh"

INTERVAL=2
CA=$T/ca
DEV=$T/pi1
iotsec-pki init --dir "$CA" --home smith >/dev/null 2>&1
iotsec-pki enrol --dir "$CA" --device pi1 --role node --out "$DEV" >/dev/null 2>&1
iotsec-pki enrol --dir "$CA" --device pi2 --role node --out "$T/pi2" >/dev/null 2>&1
write_config "$DEV/iotsec.conf" "$DEV" "$CA" "certd = { interval = $INTERVAL; };"
cp "$DEV/pi1.crt" "$T/good.crt"

state() { iotsecctl -c "$DEV/iotsec.conf" status --json | json_get '["certificate"]["state"]'; }
reason() { iotsecctl -c "$DEV/iotsec.conf" status --json | json_get '["certificate"]["reason"]'; }

# expect STATE [REASON-SUBSTRING]: the status reaches STATE within one interval (plus the
# settle delay and process start-up) and names the reason.
is_state_why() { [ "$(state)" = "$1" ] && case "$(reason)" in *"$2"*) ;; *) false ;; esac; }
expect() {
	wait_until $((INTERVAL + 2)) is_state_why "$1" "${2:-}" ||
		fail "state is $(state) ($(reason)), want $1${2:+ ($2)}"
	say "$1${2:+: $(reason)}"
}

say "a bad configuration is refused with file, line and setting"
printf 'certd = { interval = 0; };\n' >"$T/bad.conf"
if iotsec-certd -c "$T/bad.conf" --check-config 2>"$T/bad.err"; then fail "bad config accepted"; fi
grep -q "bad.conf:1: setting 'certd.interval'" "$T/bad.err" || fail "$(cat "$T/bad.err")"
iotsec-certd -c "$DEV/iotsec.conf" --check-config | grep -q "configuration OK"

say "start the watchdog"
start certd "$DEV/iotsec.conf"
wait_until 5 test -S "$DEV/run/certd/certd.sock" || fail "no control socket"
expect valid
iotsecctl -c "$DEV/iotsec.conf" watch certd >"$T/events" 2>&1 &
PIDS="$PIDS $!"
sleep 0.3

say "delete the certificate"
rm "$DEV/pi1.crt"
expect invalid "No such file"
cp "$T/good.crt" "$DEV/pi1.crt"
expect valid

say "replace it with another device's certificate"
cp "$T/pi2/pi2.crt" "$DEV/pi1.crt"
expect invalid "does not match"
cp "$T/good.crt" "$DEV/pi1.crt"
expect valid

say "revoke it (only the CRL changes)"
iotsec-pki revoke --dir "$CA" --device pi1 >/dev/null 2>&1
expect invalid "revoked"

say "a new certificate that expires in a few seconds"
iotsec-pki enrol --dir "$CA" --device pi1 --role node --not-before "@$(($(date +%s) - 60))" \
	--not-after "@$(($(date +%s) + 4))" --out "$DEV" >/dev/null 2>&1
expect valid
sleep 4
expect invalid "expired"

say "a certificate that starts in 30 days: not yet valid, and the saved clock stays put"
iotsec-pki enrol --dir "$CA" --device pi1 --role node \
	--not-before "@$(($(date +%s) + 30 * 86400))" --out "$DEV" >/dev/null 2>&1
expect invalid "not yet valid"
saved=$(cat "$DEV/state/certd/clock")
[ "$saved" -le $(($(date +%s) + 5)) ] || fail "the saved clock moved to $saved"
iotsec-pki revoke --dir "$CA" --device pi1 >/dev/null 2>&1 # so that pi1 may be enrolled again
expect invalid "revoked"

say "restore a good certificate: the device is back"
iotsec-pki enrol --dir "$CA" --device pi1 --role node --out "$DEV" >/dev/null 2>&1
expect valid

say "every transition was pushed to subscribers, with its reason"
sleep 0.3
inv=$(grep -c '"event":"certificate-invalid"' "$T/events" || true)
val=$(grep -c '"event":"certificate-valid"' "$T/events" || true)
[ "$inv" -eq 6 ] || fail "$inv certificate-invalid events, want 6: $(cat "$T/events")"
[ "$val" -eq 4 ] || fail "$val certificate-valid events, want 4"
grep '"event":"certificate-invalid"' "$T/events" | grep -q revoked || fail "no revoked reason"

say "each failure was logged once, not at every check"
logged=$(grep -c "device out of the home" "$DEV/certd.log" || true)
[ "$logged" -eq 6 ] || fail "logged $logged times, want 6"

say "iotsecctl status shows the other daemons as not running"
iotsecctl -c "$DEV/iotsec.conf" status | tee "$T/status"
grep -q "certd    running" "$T/status" || fail "certd not shown running"
grep -q "electd   not running" "$T/status" || fail "electd not shown as not running"

say "SIGTERM stops it cleanly and removes its socket"
kill "$LAST_PID"
wait "$LAST_PID" || fail "certd exited non-zero"
[ ! -e "$DEV/run/certd/certd.sock" ] || fail "socket left behind"
iotsecctl -c "$DEV/iotsec.conf" status --json | json_get '["daemons"]["certd"]["running"]' |
	grep -q False || fail "certd still shown running"
echo "ok"
