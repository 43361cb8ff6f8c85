#!/bin/sh
# One instance per daemon and run directory: a second start says who runs and exits non-zero,
# leaving the first one's socket alone; SIGHUP is logged and ignored; --check-config names what
# start-up would trip on.
. "$(dirname "$0")/common.sh"
one_device "certd = { interval = 2; };"
CONF=$DEV/iotsec.conf

for d in certd dictd; do
	start "$d" "$CONF"
	FIRST=$LAST_PID
	wait_until 5 test -S "$DEV/run/$d/$d.sock" || fail "$d did not start"
	say "a second $d"
	if timeout 10 "$IOTSEC_BIN/iotsec-$d" -c "$CONF" 2>"$T/second.err"; then
		fail "a second $d started"
	fi
	grep -q "already running (pid $FIRST)" "$T/second.err" || fail "second $d says: $(cat "$T/second.err")"
	test -S "$DEV/run/$d/$d.sock" || fail "the second $d removed the first one's socket"
	ctl "$DEV/run/$d/$d.sock" '{"v":1,"verb":"status"}' | grep -q '"ok":true' ||
		fail "the first $d no longer answers"

	say "a local user cannot take $d's lock (it would keep the next start out)"
	chmod 0755 "$T" "$DEV" "$DEV/run"
	if setpriv --reuid=nobody --regid=nogroup --clear-groups \
		flock -n "$DEV/run/$d/$d.pid" true 2>"$T/flock.err"; then
		fail "nobody could lock $DEV/run/$d/$d.pid"
	fi
	grep -q "Permission denied" "$T/flock.err" || fail "flock as nobody says: $(cat "$T/flock.err")"
	chmod 0700 "$T"

	say "SIGHUP to $d"
	kill -HUP "$FIRST"
	sleep 0.3
	kill -0 "$FIRST" 2>/dev/null || fail "SIGHUP ended $d"
	grep -q "SIGHUP ignored" "$DEV/$d.log" || fail "$d did not log the SIGHUP"
	ctl "$DEV/run/$d/$d.sock" '{"v":1,"verb":"status"}' | grep -q '"ok":true' || fail "$d stopped answering"
done
iotsecctl -c "$CONF" status --json | json_get '["daemons"]["dictd"]["running"]' | grep -q True ||
	fail "iotsecctl does not see dictd"

say "a mistyped dictd.key_file while the dictionary exists: an error, and no new key"
KEY=$(head -c 32 /dev/urandom | base64 -w0)
ctl "$DEV/run/dictd/dictd.sock" "{\"v\":1,\"verb\":\"store\",\"records\":[{\"name\":\"ring\",\"index\":1,\"epoch\":1,\"key\":\"$KEY\"}]}" |
	grep -q '"ok":true' || fail "store refused"
test -f "$DEV/keys.dict" || fail "no dictionary written"
stop "$(pgrep -f "iotsec-dictd -c $CONF")"
sed "s|$DEV/dict.key|$DEV/dict.kye|" "$CONF" >"$T/typo.conf"
if timeout 10 "$IOTSEC_BIN/iotsec-dictd" -c "$T/typo.conf" 2>"$T/err"; then fail "dictd started"; fi
grep -q "dictionary key $DEV/dict.kye: missing, while the dictionary .* exists" "$T/err" ||
	fail "dictd says: $(cat "$T/err")"
[ ! -e "$DEV/dict.kye" ] || fail "dictd left a stray key behind"
if iotsec-dictd -c "$T/typo.conf" --check-config 2>"$T/err"; then fail "--check-config passed the typo"; fi
grep -q "^$DEV/dict.kye: missing, while the dictionary" "$T/err" || fail "--check-config says: $(cat "$T/err")"

say "--check-config names the file and the cause"
chmod 0644 "$DEV/pi1.key"
if iotsec-electd -c "$CONF" --check-config >"$T/out" 2>"$T/err"; then fail "a 0644 key passed"; fi
grep -q "^$DEV/pi1.key: mode 0644 lets group or others read a secret" "$T/err" || fail "$(cat "$T/err")"
say "a daemon that cannot start says why in words, and leaves no socket behind"
if timeout 10 iotsec-electd -c "$CONF" 2>"$T/err"; then fail "electd started with a 0644 key"; fi
grep -q "pi1.key: a secret readable by group or others" "$T/err" || fail "electd says: $(cat "$T/err")"
[ ! -e "$DEV/run/electd/electd.sock" ] || fail "electd left its socket behind"
[ ! -s "$DEV/run/electd/electd.pid" ] || fail "electd left its pid behind"
chmod 0600 "$DEV/pi1.key"
mv "$DEV/pi1.crt" "$T/pi1.crt"
if iotsec-keyd -c "$CONF" --check-config 2>"$T/err"; then fail "a missing certificate passed"; fi
grep -q "^$DEV/pi1.crt: missing$" "$T/err" || fail "$(cat "$T/err")"
mv "$T/pi1.crt" "$DEV/pi1.crt"
iotsec-keyd -c "$CONF" --check-config | grep -q "configuration OK" || fail "the mended configuration fails"
echo ok
