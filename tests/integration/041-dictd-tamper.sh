#!/bin/sh
# One flipped byte anywhere in the dictionary file: iotsec-dictd refuses it with a clear error,
# never crashes, never serves a wrong key, and leaves the file as it found it.
. "$(dirname "$0")/common.sh"

one_device

start dictd "$DEV/iotsec.conf"
DICTD=$LAST_PID
wait_until 5 test -S "$SOCK" || fail "dictd did not start"
for i in 1 2 3 4 5; do
	key=$(head -c 32 /dev/urandom | base64 -w0)
	ctl "$SOCK" "{\"v\":1,\"verb\":\"store\",\"records\":[{\"name\":\"pi$i\",\"index\":$i,\"epoch\":1,\"key\":\"$key\"}]}" |
		grep -q '"ok":true' || fail "store refused"
done
kill "$DICTD"
wait "$DICTD" || true
cp "$DEV/keys.dict" "$T/good.dict"
size=$(stat -c %s "$T/good.dict")
say "dictionary of $size bytes; flipping one byte at 40 places across it"

i=0
while [ $i -lt 40 ]; do
	off=$((i * (size - 1) / 39))
	cp "$T/good.dict" "$DEV/keys.dict"
	chmod 0600 "$DEV/keys.dict"
	orig=$(xxd -s "$off" -l 1 -p "$DEV/keys.dict")
	printf "$(printf '\\%03o' $((0x$orig ^ 0x01)))" |
		dd of="$DEV/keys.dict" bs=1 seek="$off" conv=notrunc 2>/dev/null
	cp "$DEV/keys.dict" "$T/flipped.dict"
	rc=0
	timeout 10 iotsec-dictd -c "$DEV/iotsec.conf" 2>"$T/err" || rc=$?
	[ $rc -eq 1 ] || fail "offset $off: exit $rc (want 1, a refusal): $(cat "$T/err")"
	grep -q "refusing the dictionary .*: malformed message (corrupt, tampered with" "$T/err" ||
		fail "offset $off: unclear error: $(cat "$T/err")"
	cmp -s "$DEV/keys.dict" "$T/flipped.dict" || fail "offset $off: the refused file was changed"
	i=$((i + 1))
done

say "the untouched file still loads"
cp "$T/good.dict" "$DEV/keys.dict"
start dictd "$DEV/iotsec.conf"
wait_until 5 test -S "$SOCK" || fail "dictd refused the good file: $(cat "$DEV/dictd.log")"
ctl "$SOCK" '{"v":1,"verb":"status"}' | grep -q '"records":5' || fail "records lost"
echo ok
