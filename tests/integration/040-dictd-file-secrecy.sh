#!/bin/sh
# iotsec-dictd keeps its file at 0600 and refuses looser modes; the file holds no key and no
# key index in the clear.
. "$(dirname "$0")/common.sh"

one_device
# A key and an index nobody could guess by accident.
KEY_HEX=8f1e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aabbccddeeff0
KEY_B64=$(printf '%s' "$KEY_HEX" | xxd -r -p | base64 -w0)
INDEX=48213

start certd "$DEV/iotsec.conf"
start dictd "$DEV/iotsec.conf"
DICTD=$LAST_PID
wait_until 5 test -S "$SOCK" || fail "dictd did not start: $(cat "$DEV/dictd.log")"
wait_until 5 unlocked ||
	fail "dictd did not unlock after certd: $(ctl "$SOCK" '{"v":1,"verb":"status"}')"

say "store a known key"
ctl "$SOCK" "{\"v\":1,\"verb\":\"store\",\"records\":[{\"name\":\"ring\",\"index\":$INDEX,\"epoch\":1,\"key\":\"$KEY_B64\"}]}" |
	grep -q '"ok":true' || fail "store refused"
ctl "$SOCK" "{\"v\":1,\"verb\":\"lookup\",\"name\":\"ring\",\"indices\":[$INDEX]}" | grep -q "$KEY_B64" ||
	fail "lookup does not return the stored key"

say "the files are 0600"
[ "$(stat -c %a "$DEV/keys.dict")" = 600 ] || fail "dictionary mode $(stat -c %a "$DEV/keys.dict")"
[ "$(stat -c %a "$DEV/dict.key")" = 600 ] || fail "key file mode $(stat -c %a "$DEV/dict.key")"

say "no key and no index in the clear, as text or as bytes"
for needle in "$KEY_HEX" "$KEY_B64" "$INDEX"; do
	if grep -qiF "$needle" "$DEV/keys.dict"; then fail "found $needle in the dictionary"; fi
done
if xxd -p "$DEV/keys.dict" | tr -d '\n' | grep -qi "$KEY_HEX"; then fail "key bytes in the file"; fi
# The key and the index (48213 = 0x0000bc55, big- or little-endian, as a careless format would
# write them) as bytes: in the file itself and inside every base64 or hex run it holds.
found=$($PY - "$DEV/keys.dict" "$KEY_HEX" <<'PY'
import base64, binascii, re, sys
data = open(sys.argv[1], "rb").read()
needles = [bytes.fromhex(sys.argv[2]), bytes.fromhex("0000bc55"), bytes.fromhex("55bc0000")]
blobs = [data]
for run in re.findall(rb"[A-Za-z0-9+/=_-]{6,}", data):
    for decode in (base64.b64decode, base64.urlsafe_b64decode, binascii.unhexlify):
        try:
            blobs.append(decode(run + b"=" * (-len(run) % 4) if decode != binascii.unhexlify else run))
        except (binascii.Error, ValueError):
            pass
print(" ".join(n.hex() for n in needles if any(n in b for b in blobs)))
PY
)
[ -z "$found" ] || fail "bytes $found found in the dictionary"
for f in "$DEV"/*.log; do
	if grep -qiF -e "$KEY_HEX" -e "$KEY_B64" "$f"; then fail "a key in $f"; fi
done

say "a looser mode is refused at start, with the reason"
kill "$DICTD"
wait "$DICTD" || true
for mode in 0640 0604 0644; do
	chmod "$mode" "$DEV/keys.dict"
	# timeout: a daemon that wrongly starts must fail the test, not hang it
	if timeout 10 iotsec-dictd -c "$DEV/iotsec.conf" 2>"$T/err"; then fail "started with mode $mode"; fi
	grep -q "must be mode 0600" "$T/err" || fail "unclear refusal: $(cat "$T/err")"
done
chmod 0600 "$DEV/keys.dict"
chmod 0644 "$DEV/dict.key"
if timeout 10 iotsec-dictd -c "$DEV/iotsec.conf" 2>"$T/err"; then fail "started with a 0644 key file"; fi
grep -q "dict.key" "$T/err" || fail "unclear refusal: $(cat "$T/err")"
echo ok
