#!/bin/sh
# The doctor's page's crypto module (web/iotsec.js) in node, against what the C side makes and
# opens: a home with a doctor (iotsec-doctor init, enrolled by iotsec-pki), two roots granted
# by iotsec-doctor grant, sealed readings that iotsec-doctor read opens (tests/web/vectors.py),
# and the envelopes the module builds, opened by envelope_open() (tests/web/envelope-open.c, built
# here against the library) and checked by python3-cryptography as tests/integration/envelope.py
# signs them.
#   IOTSEC_BIN=build/bin tests/web/run-node-tests.sh      (make check runs it as 165-web-crypto)
# Needs node (18 or later; no npm package: node has WebCrypto).
IT_DIR=$(cd "$(dirname "$0")/../integration" && pwd)
WEB_TESTS=$(cd "$(dirname "$0")" && pwd)
: "${IOTSEC_BIN:=$(cd "$WEB_TESTS/../.." && pwd)/build/bin}"
export IOTSEC_BIN
. "$IT_DIR/common.sh"

command -v node >/dev/null || fail "no node on PATH"

say "a home, a doctor with the key iotsec-doctor init made, a kit and a relay"
make_home
D=$T/doctor
iotsec-doctor init --dir "$D" --name drlee >/dev/null || fail "iotsec-doctor init"
iotsec-pki enrol --dir "$T/ca" --device drlee --role doctor --csr "$D/doctor.csr" --out "$T/drlee" \
	>/dev/null 2>&1 || fail "enrol the doctor"
cp "$T/drlee/drlee.crt" "$D/doctor.crt"
cp "$T/drlee/ca.crt" "$D/ca.crt"
for d in kit1:node relay1:relay; do
	iotsec-pki enrol --dir "$T/ca" --device "${d%:*}" --role "${d#*:}" --out "$T/${d%:*}" \
		>"$T/enrol.out" 2>&1 || fail "enrol ${d%:*}: $(cat "$T/enrol.out")"
done
head -n 1 "$D/doctor.key" | grep -qx -- "-----BEGIN PRIVATE KEY-----" ||
	fail "doctor.key is not PKCS#8: $(head -n 1 "$D/doctor.key")"

say "two roots granted to kit1 (the first kept beside the second)"
iotsec-doctor grant --dir "$D" --kit kit1 --kit-cert "$T/kit1/kit1.crt" --start 11 \
	--out "$T/grant1" >/dev/null || fail "grant 1"
iotsec-doctor grant --dir "$D" --kit kit1 --kit-cert "$T/kit1/kit1.crt" --start 3 \
	--out "$T/grant2" >/dev/null || fail "grant 2"
[ "$(find "$D/roots" -name '*.json' | wc -l)" -eq 2 ] || fail "roots: $(ls "$D/roots")"

say "vectors: readings that iotsec-doctor read opens, and some it refuses"
GOOD_LINES=$T/good.lines $PY "$WEB_TESTS/vectors.py" "$D/roots" "$D/doctor.crt" "$T/kit1/kit1.crt" \
	"$(($(date +%s) * 1000))" >"$T/vectors.json" || fail "vectors.py"
iotsec-doctor read --dir "$D" --json <"$T/good.lines" >"$T/c-opened" 2>"$T/c-err" ||
	fail "iotsec-doctor read refuses a good vector: $(cat "$T/c-err")"
$PY - "$T/vectors.json" "$T/c-opened" <<'PY' || fail "the C opens other values than the vectors say"
import json, sys
v = json.load(open(sys.argv[1]))
rows = [json.loads(l) for l in open(sys.argv[2])]
assert len(rows) == len(v["good"]), (len(rows), len(v["good"]))
for r, g in zip(rows, v["good"]):
    want = g["value"]
    assert (r["stream"], r["seq"], r["epoch"]) == (g["stream"], g["seq"], g["epoch"]), (r, g)
    assert (r["sensor"], r["value"], r["unit"]) == (want["sensor"], want["value"], want["unit"]), (r, g)
    assert bool(r.get("emergency")) == want["emergency"], (r, g)
PY
# iotsec-doctor read does not look at the kind (the relay stores only doctor readings): the page
# does, and the group-kind vector is for it alone.
$PY -c 'import json,sys; [print(b["hex"]) for b in json.load(open(sys.argv[1]))["bad"] if b["why"] != "group kind"]' \
	"$T/vectors.json" >"$T/bad.lines"
st=0
iotsec-doctor read --dir "$D" --json <"$T/bad.lines" >"$T/c-opened" 2>"$T/c-err" || st=$?
[ $st -eq 1 ] && [ ! -s "$T/c-opened" ] || fail "iotsec-doctor read opened a bad vector: $(cat "$T/c-opened")"

say "node: the page's module against them"
VECTORS=$T/vectors.json KEY=$D/doctor.key CERT=$D/doctor.crt OTHER_KEY=$T/kit1/kit1.key \
	OTHER_CERT=$T/kit1/kit1.crt ENVELOPES_OUT=$T/envelopes RELAY=relay1 \
	node --test "$WEB_TESTS/crypto.test.mjs" >"$T/node.out" 2>&1 || {
	cat "$T/node.out"
	fail "node --test crypto.test.mjs"
}
grep -E "^# (tests|pass|fail)" "$T/node.out"
[ "$(wc -l <"$T/envelopes")" -eq 3 ] || fail "node wrote $(wc -l <"$T/envelopes") envelopes, not 3"

say "python3-cryptography: the signature (RSA-PSS-SHA256, salt 32) over the exact text"
$PY - "$T/envelopes" "$D/doctor.crt" <<'PY' || fail "an envelope is not as envelope.py signs them"
import base64, json, sys
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
cert = x509.load_pem_x509_certificate(open(sys.argv[2], "rb").read())
lines = open(sys.argv[1]).read().splitlines()
for i, wire in enumerate(lines):
    env = json.loads(wire)
    assert list(env) == ["v", "msg", "sig", "cert"] and env["v"] == 2, list(env)
    assert base64.b64decode(env["cert"]) == cert.public_bytes(serialization.Encoding.DER)
    msg = base64.b64decode(env["msg"])
    try:
        cert.public_key().verify(base64.b64decode(env["sig"]), msg,
                                 padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())
        assert i < 2, "the changed envelope verifies"
    except InvalidSignature:
        assert i == 2, "envelope %d does not verify" % i
PY

say "envelope_open(): the relay opens the login, the kit the acknowledgement; the changed one is refused"
OPENER=$T/envelope-open
LIB=$IOTSEC_BIN/../libiotsec.a
SAN=""
[ "${SANITIZE:-0}" != 1 ] || SAN="-fsanitize=address,undefined -fno-sanitize-recover=all"
# shellcheck disable=SC2046,SC2086 # pkg-config's words, the sanitizer's flags
${CC:-cc} -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
	-Wmissing-prototypes $SAN -I"$IT_DIR/../../libiotsec" -o "$OPENER" \
	"$WEB_TESTS/envelope-open.c" "$LIB" \
	$(pkg-config --cflags --libs openssl libmosquitto sqlite3 libconfig jansson libsystemd) \
	-lm -pthread 2>"$T/cc.err" || fail "building envelope-open: $(cat "$T/cc.err")"
sed -n 1p "$T/envelopes" | "$OPENER" "$T/ca/ca.crt" "$T/ca/crl.pem" "$T/relay1/relay1.crt" \
	"$T/relay1/relay1.key" >"$T/opened" 2>&1 || fail "the relay refuses the login: $(cat "$T/opened")"
grep -qx "ok RELAY_LOGIN drlee 0123456789abcdef0123456789abcdef {}" "$T/opened" ||
	fail "login opened as: $(cat "$T/opened")"
st=0
sed -n '2,3p' "$T/envelopes" | "$OPENER" "$T/ca/ca.crt" "$T/ca/crl.pem" "$T/kit1/kit1.crt" \
	"$T/kit1/kit1.key" >"$T/opened" 2>&1 || st=$?
cat "$T/opened"
[ $st -eq 1 ] || fail "envelope-open exits $st on a good and a changed acknowledgement"
sed -n 1p "$T/opened" | grep -qE '^ok EMERGENCY_ACK drlee [0-9a-f]{32} \{"kit":"kit1","seq":42\}$' ||
	fail "the acknowledgement opened as: $(sed -n 1p "$T/opened")"
sed -n 2p "$T/opened" | grep -q "^refused " || fail "the changed acknowledgement was not refused"
# The login is for relay1 alone: kit1 refuses it.
st=0
sed -n 1p "$T/envelopes" | "$OPENER" "$T/ca/ca.crt" "$T/ca/crl.pem" "$T/kit1/kit1.crt" \
	"$T/kit1/kit1.key" >"$T/opened" 2>&1 || st=$?
[ $st -eq 1 ] && grep -q "^refused " "$T/opened" || fail "kit1 opened the relay's login: $(cat "$T/opened")"
echo ok
