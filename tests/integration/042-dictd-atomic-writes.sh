#!/bin/sh
# The writer killed at random points during 200 rewrites leaves the old or the new dictionary,
# never a broken one.
. "$(dirname "$0")/common.sh"

one_device

# Pad the dictionary so each rewrite takes long enough to be interrupted part-way.
start dictd "$DEV/iotsec.conf"
wait_until 5 test -S "$SOCK" || fail "dictd did not start"
$PY - "$SOCK" <<'PY'
import base64, json, os, socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); f = s.makefile("rwb")
records = [{"name": "pad", "index": i, "epoch": 1, "key": base64.b64encode(os.urandom(32)).decode()}
           for i in range(1000)]
f.write(json.dumps({"v": 1, "verb": "store", "records": records}).encode() + b"\n"); f.flush()
assert b'"ok":true' in f.readline()
PY
kill "$LAST_PID"
wait "$LAST_PID" || true

say "200 rewrites, the writer killed at a random moment of each"
n=0
kills=0
while [ $n -lt 200 ]; do
	iotsec-dictd -c "$DEV/iotsec.conf" 2>>"$T/dictd.log" &
	pid=$!
	wait_until 5 test -S "$SOCK" || fail "round $n: dictd refused its own file: $(tail -n 3 "$T/dictd.log")"
	# Fire stores without waiting for replies, and kill somewhere in the middle of them.
	$PY - "$SOCK" "$n" <<'PY' &
import base64, os, socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
n = int(sys.argv[2])
try:
    for j in range(5):
        k = base64.b64encode(os.urandom(32)).decode()
        s.sendall(('{"v":1,"verb":"store","records":[{"name":"w","index":%d,"epoch":1,"key":"%s"}]}\n' % (n * 5 + j, k)).encode())
    s.recv(1 << 16)
except OSError:
    pass
PY
	client=$!
	sleep "0.00$(od -An -N1 -tu1 /dev/urandom | tr -d ' ')"
	kill -9 $pid 2>/dev/null && kills=$((kills + 1))
	wait $pid 2>/dev/null || true
	wait $client 2>/dev/null || true
	rm -f "$SOCK"
	n=$((n + 1))
done
say "$kills kills; the dictionary must still load"
start dictd "$DEV/iotsec.conf"
wait_until 5 test -S "$SOCK" || fail "dictionary broken after the kills: $(cat "$DEV/dictd.log")"
records=$(ctl "$SOCK" '{"v":1,"verb":"status"}' | json_get '["records"]')
[ "$records" -ge 1000 ] || fail "only $records records: the padding was lost"
say "$records records survive"
echo ok
