#!/bin/sh
# iotsec-pki as a new administrator meets it: nothing issued outliving the CA or already over, a
# CSR for another device refused, crl.pem handed out with the certificate, verify on a Pi with
# only the CA's public files and several certificates at once, revoke by serial, and every
# refusal naming the file and the cause, before any slow key generation.
. "$(dirname "$0")/common.sh"
CA=$T/ca
OUT=$T/out
serial_of() { iotsec-pki list --dir "$CA" --json | $PY -c 'import json, sys
print([r["serial"] for r in json.load(sys.stdin) if r["device"] == sys.argv[1]][-1])' "$1"; }
status_of() { iotsec-pki list --dir "$CA" --json | $PY -c 'import json, sys
print([r.get("revoked") for r in json.load(sys.stdin) if r["serial"] == sys.argv[1]][0])' "$1"; }
refused() { # refused WANT_STATUS WANT_TEXT COMMAND...: fails with that status, saying that
	_want=$1 _text=$2
	shift 2
	_st=0
	"$@" >"$T/out.txt" 2>"$T/err.txt" || _st=$?
	[ "$_st" -eq "$_want" ] || fail "'$*' exits $_st, want $_want: $(cat "$T/err.txt")"
	grep -qF -- "$_text" "$T/err.txt" || fail "'$*' says: $(cat "$T/err.txt"), want '$_text'"
	if grep -q "generating" "$T/err.txt"; then fail "'$*' made a key before refusing"; fi
}

say "--version"
iotsec-pki --version | grep -q "^iotsec-pki (iotsec) " || fail "no --version"

say "a CA of 30 days: a certificate asked for 365 ends with the CA"
iotsec-pki init --dir "$CA" --home smith --days 30 >/dev/null 2>&1 || fail "init"
iotsec-pki enrol --dir "$CA" --device pi1 --role node --out "$OUT" >"$T/enrol.txt" 2>&1 || fail "enrol"
grep -q "^note: cut to the end of the CA's own certificate" "$T/enrol.txt" || fail "no note: $(cat "$T/enrol.txt")"
[ "$(openssl x509 -in "$OUT/pi1.crt" -noout -enddate)" = "$(openssl x509 -in "$CA/ca.crt" -noout -enddate)" ] ||
	fail "pi1's certificate does not end with the CA's"
cmp -s "$OUT/crl.pem" "$CA/crl.pem" || fail "enrol did not hand out crl.pem"
cmp -s "$OUT/ca.crt" "$CA/ca.crt" || fail "enrol did not hand out ca.crt"

say "refusals, each before a key is made"
refused 1 "would be over already" iotsec-pki enrol --dir "$CA" --device pi2 --role node --out "$OUT" \
	--not-before @1000 --not-after @2000
refused 1 "ca.crt ends before this certificate would start" iotsec-pki enrol --dir "$CA" \
	--device pi2 --role node --out "$OUT" --not-before "@$(($(date +%s) + 40 * 86400))" --days 5
openssl req -new -newkey rsa:2048 -nodes -subj "/CN=kitchen" -keyout "$T/k.key" -out "$T/k.csr" 2>/dev/null
refused 1 "$T/k.csr is a request for another device: its CN is not pi2" \
	iotsec-pki enrol --dir "$CA" --device pi2 --role node --out "$OUT" --csr "$T/k.csr"
[ ! -e "$OUT/pi2.crt" ] || fail "pi2 was issued a certificate anyway"
touch "$T/ro"
refused 1 "$T/ro/sub: Not a directory" iotsec-pki enrol --dir "$CA" --device pi2 --role node --out "$T/ro/sub"
refused 1 "cannot make $T/none/pi2: its parent directory does not exist" \
	iotsec-pki enrol --dir "$CA" --device pi2 --role node --out "$T/none/pi2"
[ ! -e "$T/none" ] || fail "enrol made a tree of directories for a mistyped --out"
refused 1 "$T/pi2.csr: missing" iotsec-pki enrol --dir "$CA" --device pi2 --role node --out "$T/o2" --csr "$T/pi2.csr"
[ ! -e "$T/o2" ] || fail "a refused enrolment left its --out directory behind"
mkdir -m 0755 "$T/locked"
refused 1 "init: cannot write in $T/locked/ca (uid 65534)" \
	setpriv --reuid=nobody --regid=nogroup --clear-groups iotsec-pki init --dir "$T/locked/ca" --home x

say "a CSR made on the device: the key never leaves it"
openssl req -new -newkey rsa:2048 -nodes -subj "/CN=pi2" -keyout "$T/pi2.key" -out "$T/pi2.csr" 2>/dev/null
iotsec-pki enrol --dir "$CA" --device pi2 --role controller --csr "$T/pi2.csr" --out "$OUT" >/dev/null 2>&1 ||
	fail "enrol pi2 with its CSR"
[ ! -e "$OUT/pi2.key" ] || fail "a key was written for a CSR enrolment"
iotsec-pki verify --dir "$CA" "$OUT/pi2.crt" --key "$T/pi2.key" | grep -q "OK (device pi2, role controller" ||
	fail "pi2's certificate does not verify with its own key"

say "revoke by serial; verify on a Pi, several at once"
iotsec-pki enrol --dir "$CA" --device pi3 --role node --out "$OUT" >/dev/null 2>&1 || fail "enrol pi3"
s3=$(serial_of pi3)
# As openssl prints it: pairs of hex digits joined by ':'.
colons=$(echo "$s3" | sed 's/../&:/g; s/:$//')
iotsec-pki revoke --dir "$CA" --serial "$colons" | grep -q "^revoked $s3" || fail "revoke --serial $colons"
[ "$(status_of "$s3")" = True ] || fail "list does not show $s3 revoked"
[ "$(status_of "$(serial_of pi1)")" = False ] || fail "revoking pi3 by serial touched pi1"
refused 1 "no unrevoked certificate with that serial" iotsec-pki revoke --dir "$CA" --serial "$s3"
refused 2 "--serial is the hex serial" iotsec-pki revoke --dir "$CA" --serial "xyz"
refused 2 "give --device or --serial, not both" iotsec-pki revoke --dir "$CA" --device pi1 --serial "$s3"
# On the Pi: the files enrol handed out, with the CRL the CA signed since.
cp "$CA/crl.pem" "$OUT/crl.pem"
st=0
iotsec-pki verify --ca "$OUT/ca.crt" --crl "$OUT/crl.pem" "$OUT/pi1.crt" "$OUT/pi3.crt" "$OUT/pi2.crt" \
	>"$T/v.out" 2>"$T/v.err" || st=$?
[ $st -eq 1 ] || fail "verify of a revoked certificate among good ones exits $st"
grep -q "^$OUT/pi1.crt: OK" "$T/v.out" && grep -q "^$OUT/pi2.crt: OK" "$T/v.out" ||
	fail "good certificates not shown OK: $(cat "$T/v.out")"
grep -q "^$OUT/pi3.crt: certificate revoked$" "$T/v.err" || fail "pi3: $(cat "$T/v.err")"
refused 2 "give --dir, or --ca and --crl" iotsec-pki verify --ca "$OUT/ca.crt" "$OUT/pi1.crt"
refused 2 "--key goes with one certificate only" iotsec-pki verify --dir "$CA" "$OUT/pi1.crt" "$OUT/pi2.crt" --key "$OUT/pi1.key"

say "what is not a device's certificate says what it is"
refused 1 "$T/pi2.csr: a certificate request, not a certificate" iotsec-pki verify --dir "$CA" "$T/pi2.csr"
refused 1 "$CA/ca.crt: the home CA's own certificate, not a device's" iotsec-pki verify --dir "$CA" "$CA/ca.crt"
refused 1 "$OUT/pi1.key: a private key, not a certificate" iotsec-pki verify --dir "$CA" "$OUT/pi1.key"
refused 1 "$T/none.crt: missing" iotsec-pki verify --dir "$CA" "$T/none.crt"
refused 1 "$OUT/ca.crt: not a revocation list signed by this CA" iotsec-pki verify --ca "$OUT/ca.crt" --crl "$OUT/ca.crt" "$OUT/pi1.crt"
refused 1 "key $OUT/pi1.crt: a certificate, not a private key" iotsec-pki verify --dir "$CA" "$OUT/pi1.crt" --key "$OUT/pi1.crt"
refused 1 "$T/o3: a directory, not a file" sh -c "mkdir -p '$T/o3'; iotsec-pki verify --dir '$CA' '$T/o3'"
mv "$CA/crl.pem" "$T/crl.pem"
refused 1 "$CA/crl.pem: missing" iotsec-pki verify --dir "$CA" "$OUT/pi1.crt"
mv "$T/crl.pem" "$CA/crl.pem"
mv "$CA/ca.key" "$T/ca.key"
refused 1 "revoke pi1: $CA/ca.key: missing" iotsec-pki revoke --dir "$CA" --device pi1
refused 1 "crl: $CA/ca.key: missing" iotsec-pki crl --dir "$CA"
mv "$T/ca.key" "$CA/ca.key"
echo '[{"serial": 1}' >"$CA/index.json"
refused 1 "list: $CA/index.json is corrupt" iotsec-pki list --dir "$CA"
rm "$CA/index.json"
refused 1 "list: $CA/index.json: missing" iotsec-pki list --dir "$CA"
echo ok
