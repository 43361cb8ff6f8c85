#!/bin/sh
# iotsec-doctor, checked against the formats themselves (SPEC 8, DESIGN: the stream keys, the
# sealed reading, the doctor's envelopes), rebuilt here in Python: init makes a key only the
# doctor reads and a request iotsec-pki signs; grant keeps the root (0600, an earlier one beside
# it) and writes a grant signed by the doctor whose root the kit's key unwraps, with the stream
# id the root names; ack signs the seq; read opens readings of any epoch from either root, and
# refuses whatever is forged, damaged, replayed, of another stream, device or epoch, or not a
# reading, going on with the next line. Wrong command lines exit 2, failures 1.
. "$(dirname "$0")/common.sh"

D=$T/doctor
INTERVAL=60
# The schedule began 10 intervals and a bit ago: the current epoch is 11.
START=$(($(date +%s) - 10 * INTERVAL - 5))
CONF=$T/iotsec.conf
printf 'stream = { start = %d; interval_s = %d; };\nsensord = { broker = "broker.lan"; broker_port = 8884; };\n' \
	"$START" "$INTERVAL" >"$CONF"
doc() { iotsec-doctor -c "$CONF" "$@"; }

say "--help everywhere: usage on stdout, exit 0"
for cmd in "" init grant ack read; do
	# shellcheck disable=SC2086 # each command is its words
	iotsec-doctor $cmd --help >"$T/help" 2>"$T/help.err" || fail "iotsec-doctor $cmd --help exits $?"
	grep -q "^usage: iotsec-doctor" "$T/help" || fail "$cmd --help prints: $(cat "$T/help" "$T/help.err")"
done
iotsec-doctor --version | grep -q "^iotsec-doctor (iotsec) " || fail "no --version"

say "wrong command lines: exit 2, saying what is wrong"
usage2() {
	_want=$1
	shift
	st=0
	doc "$@" >"$T/out" 2>"$T/err" || st=$?
	[ $st -eq 2 ] || fail "iotsec-doctor $*: exit $st, not 2: $(cat "$T/err")"
	grep -q -- "$_want" "$T/err" || fail "iotsec-doctor $*: says $(cat "$T/err"), not '$_want'"
}
usage2 "usage: iotsec-doctor"
usage2 "unknown command 'frobnicate'" frobnicate
usage2 "unknown option '--bogus'" --bogus init
usage2 "are required" init --dir "$D"
usage2 "needs a value" init --dir "$D" --name
usage2 "bad name '-x'" init --dir "$D" --name -x
usage2 "bad name 'a/b'" init --dir "$D" --name a/b
usage2 "bad home name" init --dir "$D" --name drlee --home "a b"
usage2 "unknown argument '--role'" init --dir "$D" --name drlee --role doctor
usage2 "are required" grant --dir "$D" --kit kit1 --out "$T/g"
usage2 "whole number from 1, not 'abc'" grant --dir "$D" --kit kit1 --kit-cert x --start abc --out "$T/g"
usage2 "whole number from 1, not '0'" grant --dir "$D" --kit kit1 --kit-cert x --start 0 --out "$T/g"
usage2 "whole number from 1, not '4294967296'" grant --dir "$D" --kit kit1 --kit-cert x --start 4294967296 --out "$T/g"
usage2 "bad kit name" grant --dir "$D" --kit "../x" --kit-cert x --out "$T/g"
usage2 "whole number from 1, not '0'" ack --dir "$D" --kit kit1 --seq 0 --out "$T/a"
usage2 "whole number from 1, not '-3'" ack --dir "$D" --kit kit1 --seq -3 --out "$T/a"
usage2 "whole number from 1, not '1x'" ack --dir "$D" --kit kit1 --seq 1x --out "$T/a"
usage2 "are required" ack --dir "$D" --kit kit1 --out "$T/a"
usage2 "--dir is required" read
usage2 "unknown argument '--csv'" read --dir "$D" --csv
[ ! -e "$D" ] || fail "a refused command line made $D"

say "init: the doctor's key (0600, in a 0700 directory) and a request for the home's CA"
doc init --dir "$D" --name drlee >"$T/out" || fail "init exits $?"
[ "$(stat -c %a "$D/doctor.key")" = 600 ] || fail "doctor.key is $(stat -c %a "$D/doctor.key")"
[ "$(stat -c %a "$D")" = 700 ] || fail "$D is $(stat -c %a "$D")"
openssl req -in "$D/doctor.csr" -noout -verify >/dev/null 2>&1 || fail "doctor.csr does not verify"
openssl req -in "$D/doctor.csr" -noout -subject | grep -q "CN *= *drlee" || fail "CSR subject: $(openssl req -in "$D/doctor.csr" -noout -subject)"
grep -q "iotsec-pki enrol --dir CA --device drlee --role doctor --csr doctor.csr" "$T/out" ||
	fail "init does not say how to enrol: $(cat "$T/out")"
cp "$D/doctor.key" "$T/first.key"
st=0
doc init --dir "$D" --name drlee >"$T/out" 2>"$T/err" || st=$?
[ $st -eq 1 ] && grep -q "exists: the doctor has a key already" "$T/err" || fail "init again: exit $st: $(cat "$T/err")"
cmp -s "$D/doctor.key" "$T/first.key" || fail "init again replaced the key"

say "the home's CA issues the doctor's certificate from the request; the kit is enrolled"
make_home
iotsec-pki enrol --dir "$T/ca" --device drlee --role doctor --csr "$D/doctor.csr" --out "$T/drlee" \
	>"$T/enrol.out" 2>&1 || fail "iotsec-pki enrol --role doctor --csr: $(cat "$T/enrol.out")"
st=0
doc grant --dir "$D" --kit kit1 --kit-cert "$T/kit1/kit1.crt" --out "$T/g" >/dev/null 2>"$T/err" || st=$?
# Right after init the certificates are not there yet: each message says which step brings it.
[ $st -eq 1 ] && grep -q "doctor.crt: missing: copy here the certificate iotsec-pki enrol --role doctor issued" "$T/err" ||
	fail "grant without doctor.crt: exit $st: $(cat "$T/err")"
cp "$T/drlee/drlee.crt" "$D/doctor.crt"
st=0
doc grant --dir "$D" --kit kit1 --kit-cert "$T/kit1/kit1.crt" --out "$T/g" >/dev/null 2>"$T/err" || st=$?
[ $st -eq 1 ] && grep -q "ca.crt: missing: copy here the home's CA certificate" "$T/err" ||
	fail "grant without ca.crt: exit $st: $(cat "$T/err")"
st=0
doc ack --dir "$T/no-doctor" --kit kit1 --seq 1 --out "$T/g" >/dev/null 2>"$T/err" || st=$?
[ $st -eq 1 ] && grep -q "no-doctor: missing (iotsec-doctor init --dir makes it)" "$T/err" ||
	fail "ack without the doctor's directory: exit $st: $(cat "$T/err")"
cp "$T/drlee/ca.crt" "$D/ca.crt"
for k in kit1 kit2; do
	iotsec-pki enrol --dir "$T/ca" --device $k --role node --out "$T/$k" >/dev/null 2>&1 || fail "enrol $k"
done
iotsec-pki init --dir "$T/ca2" --home otherhome >/dev/null 2>&1 || fail "pki init of another home"
iotsec-pki enrol --dir "$T/ca2" --device kit1 --role node --out "$T/stranger" >/dev/null 2>&1 ||
	fail "enrol kit1 in another home"

say "grant refuses a certificate that is not the kit's, or a key others can read: exit 1"
fail1() {
	_want=$1
	shift
	st=0
	doc "$@" >"$T/out" 2>"$T/err" || st=$?
	[ $st -eq 1 ] || fail "iotsec-doctor $*: exit $st, not 1: $(cat "$T/err")"
	grep -q -- "$_want" "$T/err" || fail "iotsec-doctor $*: says $(cat "$T/err"), not '$_want'"
}
fail1 "kit1.crt: not a certificate of home testhome" grant --dir "$D" --kit kit1 --kit-cert "$T/stranger/kit1.crt" --out "$T/g"
fail1 "is kit2's certificate, not kit1's" grant --dir "$D" --kit kit1 --kit-cert "$T/kit2/kit2.crt" --out "$T/g"
fail1 "not a PEM certificate" grant --dir "$D" --kit kit1 --kit-cert "$D/doctor.key" --out "$T/g"
fail1 "nothing.crt: missing$" grant --dir "$D" --kit kit1 --kit-cert "$T/nothing.crt" --out "$T/g"
chmod 0640 "$D/doctor.key"
fail1 "doctor.key: readable by others" grant --dir "$D" --kit kit1 --kit-cert "$T/kit1/kit1.crt" --out "$T/g"
chmod 0600 "$D/doctor.key"
cp "$T/ca2/ca.crt" "$D/ca.crt"
fail1 "doctor.crt: not issued by ca.crt" grant --dir "$D" --kit kit1 --kit-cert "$T/kit1/kit1.crt" --out "$T/g"
cp "$T/drlee/ca.crt" "$D/ca.crt"
mv "$D/doctor.key" "$T/doctor.key.away"
install -m 0600 "$T/kit2/kit2.key" "$D/doctor.key"
fail1 "not the key of doctor.crt" grant --dir "$D" --kit kit1 --kit-cert "$T/kit1/kit1.crt" --out "$T/g"
# A device's certificate (kit2's, with its key) is no doctor's.
mv "$D/doctor.crt" "$T/doctor.crt.away"
cp "$T/kit2/kit2.crt" "$D/doctor.crt"
install -m 0600 "$T/kit2/kit2.key" "$D/doctor.key"
fail1 "doctor.crt: a certificate for a device, not a doctor" grant --dir "$D" --kit kit1 --kit-cert "$T/kit1/kit1.crt" --out "$T/g"
mv "$T/doctor.crt.away" "$D/doctor.crt"
mv "$T/doctor.key.away" "$D/doctor.key"
fail1 "has no grant from this doctor" ack --dir "$D" --kit kit1 --seq 1 --out "$T/a"
[ ! -e "$D/roots/kit1.json" ] && [ ! -e "$T/g" ] && [ ! -e "$T/a" ] || fail "a refused command wrote a file"

say "grant: the root kept (0600), the grant signed by the doctor, its root the kit's alone"
doc grant --dir "$D" --kit kit1 --kit-cert "$T/kit1/kit1.crt" --out "$T/grant1" >"$T/out" ||
	fail "grant exits $?"
cat "$T/out"
[ "$(stat -c %a "$D/roots")" = 700 ] && [ "$(stat -c %a "$D/roots/kit1.json")" = 600 ] ||
	fail "roots: $(stat -c %a "$D/roots") $(stat -c %a "$D/roots/kit1.json")"
grep -q "^granted kit1 a doctor stream from epoch 11 " "$T/out" || fail "grant says: $(cat "$T/out")"
grep -q "mosquitto_pub -h broker.lan -p 8884 --cafile $D/ca.crt --cert $D/doctor.crt --key $D/doctor.key -q 1 -r -t 'iotsec/testhome/drlee/grant/kit1' -f $T/grant1" "$T/out" ||
	fail "no mosquitto_pub line: $(cat "$T/out")"
# check_msg FILE TYPE BODY_CHECK: the envelope is signed by the doctor's certificate, addressed to
# kit1, of TYPE; BODY_CHECK (Python, with body, root and kit_key) holds.
check_msg() {
	$PY - "$1" "$2" "$D/doctor.crt" "$D/roots/kit1.json" "$T/kit1/kit1.key" "$3" <<'PY' ||
import base64, hashlib, hmac, json, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
wire, want_type, crt, roots, key, check = sys.argv[1:]
env = json.load(open(wire))
assert list(env) == ["v", "msg", "sig", "cert"], list(env)
msg = base64.b64decode(env["msg"])
cert = x509.load_pem_x509_certificate(open(crt, "rb").read())
assert base64.b64decode(env["cert"]) == cert.public_bytes(serialization.Encoding.DER)
cert.public_key().verify(base64.b64decode(env["sig"]), msg,
    padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())
inner = json.loads(msg)
assert inner["type"] == want_type and inner["from"] == "drlee" and inner["home"] == "testhome", inner
assert inner["to"] == "kit1" and 1 <= len(inner["id"]) <= 32, inner
body = inner["body"]
kept = json.load(open(roots))
root = base64.b64decode(kept["root"])
kit_key = serialization.load_pem_private_key(open(key, "rb").read(), None)
assert hmac.new(root, b"iotsec stream id v1", hashlib.sha256).digest()[:16].hex() == kept["stream"]
exec(check)
PY
		fail "$2 in $1 is not as it should be"
}
check_msg "$T/grant1" DOCTOR_GRANT '
assert sorted(body) == ["issued", "kit", "root", "start"] and body["kit"] == "kit1", body
assert body["start"] == 11 == kept["start"] and body["issued"] == kept["issued"], (body, kept)
unwrapped = kit_key.decrypt(base64.b64decode(body["root"]), padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None))
assert unwrapped == root and len(root) == 32
'
ROOT1=$(json_get '["root"]' <"$D/roots/kit1.json")
STREAM1=$(json_get '["stream"]' <"$D/roots/kit1.json")
grep -q "(stream $STREAM1)" "$T/out" || fail "grant does not name stream $STREAM1"
if grep -rqF "$ROOT1" "$T/grant1" "$T/out"; then fail "the root travels in the clear"; fi

say "a second grant, from a given epoch: a new root, the first kept beside it"
doc grant --dir "$D" --kit kit1 --kit-cert "$T/kit1/kit1.crt" --start 3 --out "$T/grant2" >"$T/out" ||
	fail "grant --start 3 exits $?"
[ "$(json_get '["start"]' <"$D/roots/kit1.json")" = 3 ] || fail "the new root does not start at 3"
[ "$(json_get '["root"]' <"$D/roots/kit1.json")" != "$ROOT1" ] || fail "the same root twice"
[ "$(json_get '["root"]' <"$D/roots/kit1.$STREAM1.json")" = "$ROOT1" ] || fail "the first root was not kept"
[ "$(stat -c %a "$D/roots/kit1.$STREAM1.json")" = 600 ] || fail "the kept root is $(stat -c %a "$D/roots/kit1.$STREAM1.json")"
check_msg "$T/grant2" DOCTOR_GRANT '
assert body["start"] == 3 == kept["start"] and body["issued"] == kept["issued"], (body, kept)
unwrapped = kit_key.decrypt(base64.b64decode(body["root"]), padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None))
assert unwrapped == root
'
STREAM2=$(json_get '["stream"]' <"$D/roots/kit1.json")

say "ack: the seq, signed, for the kit granted"
doc ack --dir "$D" --kit kit1 --seq 42 --out "$T/ack" >"$T/out" || fail "ack exits $?"
grep -q "^acknowledged kit1's emergency records up to seq 42" "$T/out" || fail "ack says: $(cat "$T/out")"
grep -q -- "-q 1 -t 'iotsec/testhome/drlee/ack/kit1' -f $T/ack" "$T/out" || fail "no ack line: $(cat "$T/out")"
if grep -q -- " -r " "$T/out"; then fail "an ack published retained: $(cat "$T/out")"; fi
check_msg "$T/ack" EMERGENCY_ACK 'assert body == {"kit": "kit1", "seq": 42}, body'
fail1 "has no grant from this doctor" ack --dir "$D" --kit kit2 --seq 1 --out "$T/a2"

say "read: readings of both streams, any epoch, opened; everything else refused with its line"
NOW_MS=$(($(date +%s) * 1000))
$PY - "$D/roots" "$NOW_MS" >"$T/lines" <<'PY'
import base64, glob, json, os, struct, sys
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
roots_dir, now = sys.argv[1], int(sys.argv[2])
roots = {}
for p in glob.glob(roots_dir + "/*.json"):
    r = json.load(open(p))
    roots["new" if os.path.basename(p) == "kit1.json" else "old"] = r

def key_at(r, e):
    k = base64.b64decode(r["root"])
    for i in range(r["start"], e + 1):
        k = HKDF(hashes.SHA256(), 32, b"iotsec stream v1", struct.pack(">I", i)).derive(k)
    return k

def seal(r, epoch, seq, plain, device="kit1", flags=0, kind=2, key=None, stream=None):
    dev = device.encode()
    head = bytes([1, kind, flags, len(dev)]) + dev + bytes.fromhex(stream or r["stream"])
    head += struct.pack(">IQq", epoch, seq, now - 1000 * seq) + os.urandom(12)
    return head + AESGCM(key or key_at(r, epoch)).encrypt(head[-12:], plain, head)

def pt(sensor, value, unit, emergency=False):
    d = {"sensor": sensor, "value": value, "unit": unit}
    if emergency:
        d.update(emergency=True, threshold=30)
    return json.dumps(d, separators=(",", ":")).encode()

old, new = roots["old"], roots["new"]
good1 = seal(old, 11, 1, pt("pulse", 72, "/min")).hex()
print(good1)                                                            # 1 ok
print("iotsec/testhome/kit1/doctor " + seal(old, 19, 2, pt("spo2", 97.5, "%")).hex())  # 2 ok
print(seal(new, 3, 1, pt("pulse", 25, "/min", True), flags=1).hex())   # 3 ok, emergency
print(good1)                                                            # 4 replayed
print("")                                                               # blank: skipped
b = bytearray(seal(new, 4, 2, pt("pulse", 70, "/min"))); b[-20] ^= 1
print(b.hex())                                                          # 6 damaged
print(seal(new, 4, 3, pt("pulse", 70, "/min"), stream="ab" * 16).hex()) # 7 another stream
print(seal(old, 5, 3, pt("pulse", 70, "/min"), key=key_at(old, 11)).hex())  # 8 before start
print(seal(new, 5, 4, pt("pulse", 70, "/min"), device="kit2").hex())    # 9 another device
print(seal(new, 5, 5, pt("pulse", 70, "/min"), flags=1).hex())          # 10 flag, no record
print(seal(new, 5, 6, pt("pulse", 70, "/min", True)).hex())             # 11 record, no flag
print(seal(new, 5, 7, b'{"sensor":"pulse","value":"70","unit":"/min"}').hex())  # 12 bad record
print(seal(new, 6, 8, pt("pulse", 71, "/min"), key=key_at(new, 5)).hex())  # 13 wrong epoch key
print("not hex at all")                                                 # 14
print(good1[:-1])                                                       # 15 odd length
print(good1[:40])                                                       # 16 truncated
print("ff" * 600)                                                       # 17 too long
print(seal(new, 7, 9, pt("body_temp", 36.6, "C")).hex())                # 18 ok
print(seal(new, 7, 9, pt("body_temp", 36.6, "C")).hex())                # 19 same seq again
PY
st=0
iotsec-doctor read --dir "$D" <"$T/lines" >"$T/out" 2>"$T/err" || st=$?
[ $st -eq 1 ] || fail "read exits $st with refusals among the lines"
cat "$T/out"
sed 's/^/  /' "$T/err"
[ "$(wc -l <"$T/out")" -eq 4 ] || fail "read printed $(wc -l <"$T/out") readings, not 4: $(cat "$T/out")"
sed -n 1p "$T/out" | grep -q "UTC kit1 pulse 72 /min$" || fail "line 1: $(sed -n 1p "$T/out")"
sed -n 2p "$T/out" | grep -q "UTC kit1 spo2 97.5 %$" || fail "line 2: $(sed -n 2p "$T/out")"
sed -n 3p "$T/out" | grep -q "UTC kit1 pulse 25 /min EMERGENCY (below 30; seq 1)$" || fail "line 3: $(sed -n 3p "$T/out")"
sed -n 4p "$T/out" | grep -q "UTC kit1 body_temp 36.6 C$" || fail "line 4: $(sed -n 4p "$T/out")"
for n in 4 6 7 8 9 10 11 12 13 14 15 16 17 19; do
	grep -q "^iotsec-doctor read: line $n: refused: " "$T/err" || fail "line $n was not refused: $(cat "$T/err")"
done
[ "$(wc -l <"$T/err")" -eq 14 ] || fail "$(wc -l <"$T/err") refusals, not 14: $(cat "$T/err")"
grep -q "line 4: refused: seen before" "$T/err" || fail "the replay is not named: $(cat "$T/err")"
grep -q "line 7: refused: of a stream this doctor did not grant" "$T/err" || fail "line 7: $(cat "$T/err")"
grep -q "line 9: refused: sealed in the name of another device" "$T/err" || fail "line 9: $(cat "$T/err")"

say "read --json: one object a line; only good lines: exit 0"
sed -n '1,3p;18p' "$T/lines" | iotsec-doctor read --dir "$D" --json >"$T/out" 2>"$T/err" ||
	fail "read --json exits $?: $(cat "$T/err")"
$PY - "$T/out" "$STREAM1" "$STREAM2" <<'PY' || fail "read --json: $(cat "$T/out")"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert [(r["sensor"], r["seq"], r["epoch"]) for r in rows] == [("pulse", 1, 11), ("spo2", 2, 19), ("pulse", 1, 3), ("body_temp", 9, 7)], rows
assert rows[0]["stream"] == sys.argv[2] and rows[2]["stream"] == sys.argv[3], rows
assert rows[2]["emergency"] is True and rows[2]["threshold"] == 30 and "threshold" not in rows[0], rows
assert rows[1]["value"] == 97.5 and rows[1]["unit"] == "%" and rows[0]["device"] == "kit1", rows
PY
[ ! -s "$T/err" ] || fail "read --json complained: $(cat "$T/err")"

say "read without any root: says so"
st=0
iotsec-doctor read --dir "$T/nowhere" </dev/null >/dev/null 2>"$T/err" || st=$?
[ $st -eq 1 ] && grep -q "no grant made yet" "$T/err" || fail "read without roots: exit $st: $(cat "$T/err")"
echo ok
