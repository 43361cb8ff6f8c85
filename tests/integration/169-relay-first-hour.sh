#!/bin/sh
# iotsec-relayd and iotsec-doctor as a new operator and a doctor meet them: --check-config finds
# a store the relay could not write, before a start does; an HTTPS port another program holds is
# named in the error without -v; a doctor's mistyped --relay-name, a URL with a path and a relay
# that is down are each said in words with what to do, not as a TLS error or a 404.
. "$(dirname "$0")/common.sh"
. "$IT_DIR/sensord-common.sh"
. "$IT_DIR/relay-common.sh"
need_netns
make_home "$HOME_NAME"
# No broker: none of this needs one (the relay keeps trying to connect meanwhile).
# shellcheck disable=SC2034 # relay() (relay-common.sh) reads it
BROKER_IP=$NET.9
refused() { # refused WANT_STATUS WANT_TEXT COMMAND...: fails with that status, saying that
	_want=$1 _text=$2
	shift 2
	_st=0
	"$@" >"$T/out.txt" 2>"$T/err.txt" || _st=$?
	[ "$_st" -eq "$_want" ] || fail "'$*' exits $_st, want $_want: $(cat "$T/err.txt")"
	grep -qF -- "$_text" "$T/err.txt" || fail "'$*' says: $(cat "$T/err.txt"), want '$_text'"
}

relay 7 relay1
# A relay certificate that is over by the end of the test.
EXPIRES=$(($(date +%s) + 5))
iotsec-pki enrol --dir "$T/ca" --device relay9 --role relay --out "$T/relay9" \
	--not-before "@$(($(date +%s) - 60))" --not-after "@$EXPIRES" >"$T/relay9.log" 2>&1 ||
	fail "enrol relay9: $(cat "$T/relay9.log")"
sed "s|relay1|relay9|g" "$T/relay1/iotsec.conf" >"$T/relay9/iotsec.conf"
# A doctor whose certificate is over by then too.
iotsec-doctor init --dir "$T/drold" --name drold --home "$HOME_NAME" >"$T/drold.log" 2>&1 &&
	iotsec-pki enrol --dir "$T/ca" --device drold --role doctor --csr "$T/drold/doctor.csr" \
		--out "$T/drold/enrol" --not-before "@$(($(date +%s) - 60))" --not-after "@$EXPIRES" \
		>>"$T/drold.log" 2>&1 || fail "drold: $(cat "$T/drold.log")"
cp "$T/drold/enrol/drold.crt" "$T/drold/doctor.crt"
cp "$T/drold/enrol/ca.crt" "$T/drold/ca.crt"
iotsec-relayd -c "$T/relay1/iotsec.conf" --check-config >"$T/check.txt" 2>&1 ||
	fail "--check-config of a fresh relay: $(cat "$T/check.txt")"
grep -qx "configuration OK" "$T/check.txt" || fail "--check-config says $(cat "$T/check.txt")"

say "--check-config finds a store on a read-only file system"
RO=$T/ro
mkdir -p "$RO"
: >"$RO/relay.db"
sed "s|$T/relay1/state/relay.db|$RO/relay.db|" "$T/relay1/iotsec.conf" >"$T/relay1/ro.conf"
! cmp -s "$T/relay1/iotsec.conf" "$T/relay1/ro.conf" || fail "ro.conf names the same store"
mount --bind "$RO" "$RO" && mount -o remount,bind,ro "$RO" || fail "cannot mount $RO read-only"
st=0
iotsec-relayd -c "$T/relay1/ro.conf" --check-config >"$T/check.txt" 2>&1 || st=$?
on 7 timeout 10 iotsec-relayd -c "$T/relay1/ro.conf" >"$T/start.txt" 2>&1 && start=0 || start=$?
umount "$RO"
[ "$start" -eq 1 ] || fail "a relay with a read-only store exits $start: $(cat "$T/start.txt")"
[ $st -eq 1 ] || fail "--check-config of a read-only store exits $st: $(cat "$T/check.txt")"
grep -qF "$RO/relay.db: the store cannot be written by uid 0: Read-only file system" "$T/check.txt" ||
	fail "--check-config says: $(cat "$T/check.txt")"

say "an HTTPS port already taken is named, without -v"
run_relay relay1
wait_until 10 on 7 sh -c "ss -Hltn 'sport = :$RELAY_PORT' | grep -q ." || fail "relay1 does not listen on $RELAY_PORT"
# The same relay again, but its own run and state directories: only the port is in the way.
sed -e "s|$T/relay1/run|$T/relay1/run2|; s|$T/relay1/state|$T/relay1/state2|g" \
	"$T/relay1/iotsec.conf" >"$T/relay1/second.conf"
refused 1 "cannot serve HTTPS on port $RELAY_PORT: Failed to bind to port $RELAY_PORT: Address already in use" \
	on 7 iotsec-relayd -c "$T/relay1/second.conf"

say "a PostgreSQL store that cannot be reached says what to check, not only \"Connection refused\""
sed "s|relay = {|relay = { store = \"postgresql\"; pg = \"host=127.0.0.1 port=1 dbname=iotsec\";|" \
	"$T/relay1/second.conf" >"$T/relay1/pg.conf"
refused 1 "store postgresql: cannot connect with relay.pg (why on the line before): check that the server runs" \
	on 7 iotsec-relayd -c "$T/relay1/pg.conf"
grep -q 'connection to server at "127.0.0.1", port 1 failed' "$T/err.txt" || fail "libpq's reason not said: $(cat "$T/err.txt")"

say "a doctor's mistakes"
# The summary names every option a relay command takes, as each command's --help does.
iotsec-doctor --help >"$T/help.txt"
[ "$(grep -c -- "--relay URL \[--relay-name N\]" "$T/help.txt")" -eq 3 ] ||
	fail "iotsec-doctor --help: --relay-name not with grant, ack and fetch: $(cat "$T/help.txt")"
doctor 5 drwho
URL=$(relay_url relay1)
dr() { on 5 iotsec-doctor -c "$T/drwho/iotsec.conf" fetch --dir "$T/drwho" "$@"; }
dr --relay "$URL" --relay-name relay1 >"$T/fetch.txt" 2>&1 || fail "fetch: $(cat "$T/fetch.txt")"
refused 1 "the relay at $URL shows the certificate of relay1 (role relay), not of the relay relay2: check --relay-name" \
	dr --relay "$URL" --relay-name relay2
if grep -q "hostname mismatch" "$T/err.txt"; then fail "a wrong --relay-name is told as a TLS error"; fi
refused 1 "--relay takes https://HOST[:PORT], without a path, not '$URL/api'" \
	dr --relay "$URL/api" --relay-name relay1

say "a relay restarted ends no --follow: it waits, says so once, and goes on"
# Not through dr: the signal goes to the tool itself, not to a subshell running it.
ip netns exec "$NS_PREFIX-h5" iotsec-doctor -c "$T/drwho/iotsec.conf" fetch --dir "$T/drwho" \
	--relay "$URL" --relay-name relay1 --follow >"$T/follow.out" 2>"$T/follow.err" &
FOLLOW=$!
PIDS="$PIDS $FOLLOW"
sleep 1
stop "$(relay_pid relay1)"
wait_until 10 grep -q "relay relay1 does not answer; trying again every 3 s" "$T/follow.err" ||
	fail "--follow with the relay gone: $(cat "$T/follow.err")"
sleep 4
kill -0 "$FOLLOW" 2>/dev/null || fail "--follow ended when the relay went away: $(cat "$T/follow.err")"
[ "$(grep -c "does not answer" "$T/follow.err")" -eq 1 ] || fail "said more than once: $(cat "$T/follow.err")"
run_relay relay1
wait_until 15 grep -q "relay relay1 answers again" "$T/follow.err" ||
	fail "--follow did not take up the relay again: $(cat "$T/follow.err")"
kill -INT "$FOLLOW"
st=0
wait "$FOLLOW" || st=$?
[ $st -eq 0 ] || fail "--follow interrupted exits $st: $(cat "$T/follow.err")"

stop "$(relay_pid relay1)"
refused 1 "nothing answers there: is the relay down" dr --relay "$URL" --relay-name relay1

say "an expired relay certificate is refused, not run into a broker that hangs up"
while [ "$(date +%s)" -le "$EXPIRES" ]; do sleep 0.5; done
refused 1 "$T/relay9/relay9.crt: certificate expired; a relay needs a valid certificate (iotsec-pki enrol --role relay)" \
	iotsec-relayd -c "$T/relay9/iotsec.conf" --check-config
refused 1 "$T/relay9/relay9.crt: certificate expired: neither the broker nor the doctors will take it; issue a new one" \
	on 7 iotsec-relayd -c "$T/relay9/iotsec.conf"

say "a doctor whose certificate expired is told to ask for a new one"
run_relay relay1
wait_until 10 on 7 sh -c "ss -Hltn 'sport = :$RELAY_PORT' | grep -q ." || fail "relay1 does not listen again"
refused 1 "relay relay1 refused the login of drold: 401 certificate expired" \
	on 5 iotsec-doctor -c "$T/drwho/iotsec.conf" fetch --dir "$T/drold" --relay "$URL" --relay-name relay1
grep -qF "ask the home's administrator for a new one, iotsec-pki enrol --device drold --role doctor --csr doctor.csr, and copy it to $T/drold/doctor.crt" \
	"$T/err.txt" || fail "no word of what to do: $(cat "$T/err.txt")"
echo ok
