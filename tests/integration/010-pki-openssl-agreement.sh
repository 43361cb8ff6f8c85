#!/bin/bash
# iotsec-pki verify and `openssl verify -crl_check` agree on every kind of certificate a home
# meets (SPEC 3): valid, revoked, expired, not yet valid, another home's, a self-signed impostor,
# a key that is not the certificate's; and iotsec-pki names the right reason for each refusal.
set -eu
. "$(dirname "$0")/common.sh"

A=$T/A # home "smith": the CA under test
B=$T/B # home "jones": a neighbour's CA
OUT=$T/out
now=$(date +%s)
day=86400
disagreements=0

say "make two homes' CAs and their certificates"
iotsec-pki init --dir "$A" --home smith
iotsec-pki init --dir "$B" --home jones
iotsec-pki enrol --dir "$A" --device pi1 --role node --out "$OUT"
iotsec-pki enrol --dir "$A" --device pi2 --role node --out "$OUT"
iotsec-pki enrol --dir "$A" --device ctl1 --role controller --days 30 --out "$OUT"
iotsec-pki enrol --dir "$A" --device gone --role node --out "$OUT"
iotsec-pki revoke --dir "$A" --device gone
# iotsec-pki issues nothing already over: "old" ends two seconds from now (awaited below).
over=$(($(date +%s) + 2))
iotsec-pki enrol --dir "$A" --device old --role node \
	--not-before "@$((now - 2 * day))" --not-after "@$over" --out "$OUT"
iotsec-pki enrol --dir "$A" --device early --role node \
	--not-before "@$((now + day))" --not-after "$(date -u -d "@$((now + 2 * day))" +%Y-%m-%dT%H:%M:%SZ)" \
	--out "$OUT"
iotsec-pki enrol --dir "$B" --device pi9 --role node --out "$T/outB"
# A device that keeps its key: a standard openssl CSR.
openssl req -new -newkey rsa:2048 -nodes -subj "/CN=csrdev" -keyout "$T/csrdev.key" \
	-out "$T/csrdev.csr" 2>/dev/null
iotsec-pki enrol --dir "$A" --device csrdev --role node --csr "$T/csrdev.csr" --out "$OUT"
[ ! -e "$OUT/csrdev.key" ] || fail "a key file was written for a CSR enrolment"
# The parking-lot attacker: a certificate naming pi1 of smith, signed by itself.
openssl req -x509 -newkey rsa:2048 -subj "/CN=pi1/O=smith/OU=node" -nodes -days 30 \
	-keyout "$T/impostor.key" -out "$T/impostor.crt" 2>/dev/null

while [ "$(date +%s)" -le "$over" ]; do sleep 0.2; done

verdict() { if [ "$1" -eq 0 ]; then echo valid; else echo invalid; fi; }

# check NAME CERT KEY EXPECTED: run both verifiers; EXPECTED is "OK" or iotsec-pki's reason.
check() {
	local name=$1 cert=$2 key=$3 expected=$4 ours theirs rc orc ok
	if [ -n "$key" ]; then
		ours=$(iotsec-pki verify --dir "$A" "$cert" --key "$key" 2>&1) && rc=0 || rc=$?
	else
		ours=$(iotsec-pki verify --dir "$A" "$cert" 2>&1) && rc=0 || rc=$?
	fi
	theirs=$(openssl verify -CAfile "$A/ca.crt" -crl_check -CRLfile "$A/crl.pem" "$cert" 2>&1) &&
		orc=0 || orc=$?
	# openssl verify does not look at keys: compare the public halves as an administrator would.
	if [ $orc -eq 0 ] && [ -n "$key" ] &&
		[ "$(openssl x509 -in "$cert" -noout -pubkey)" != "$(openssl pkey -in "$key" -pubout)" ]; then
		theirs="$theirs; public key of $key differs"
		orc=1
	fi

	ok=1
	case "$rc:$orc" in
	0:0 | [1-9]*:[1-9]*) ;;
	*) ok=0 ;;
	esac
	if [ "$expected" = OK ]; then
		case "$ours" in "$cert: OK ("*) ;; *) ok=0 ;; esac
		[ $rc -eq 0 ] || ok=0
	else
		[ "$ours" = "$cert: $expected" ] || ok=0
		[ $rc -eq 1 ] || ok=0
	fi
	if [ $ok -eq 1 ]; then
		printf 'agree  %-14s both %s; iotsec-pki: %s\n' "$name" "$(verdict $rc)" "${ours#"$cert": }"
	else
		printf 'DIFFER %-14s want %s\n       iotsec-pki (exit %s): %s\n       openssl (exit %s): %s\n' \
			"$name" "$expected" "$rc" "$ours" "$orc" "$(echo "$theirs" | tr '\n' ' ')"
		disagreements=$((disagreements + 1))
	fi
}

say "iotsec-pki verify against openssl verify -crl_check"
check valid "$OUT/pi1.crt" "" OK
check controller "$OUT/ctl1.crt" "" OK
check csr "$OUT/csrdev.crt" "$T/csrdev.key" OK
check key-matches "$OUT/pi1.crt" "$OUT/pi1.key" OK
check revoked "$OUT/gone.crt" "" "certificate revoked"
check expired "$OUT/old.crt" "" "certificate expired"
check not-yet-valid "$OUT/early.crt" "" "certificate not yet valid"
check other-home "$T/outB/pi9.crt" "" "certificate not issued by this home's CA"
check self-signed "$T/impostor.crt" "" "self-signed certificate"
check key-mismatch "$OUT/pi1.crt" "$OUT/pi2.key" "private key does not match the certificate"

say "list shows the same story"
iotsec-pki list --dir "$A"
iotsec-pki list --dir "$A" --json >"$T/list.json"
status() {
	$PY -c 'import json, sys
print(*[r["status"] for r in json.load(sys.stdin) if r["device"] == sys.argv[1]])' "$1" <"$T/list.json"
}
for pair in pi1:valid gone:revoked old:expired early:"not yet valid"; do
	[ "$(status "${pair%%:*}")" = "${pair#*:}" ] || fail "list says $(status "${pair%%:*}") for ${pair%%:*}"
done

[ $disagreements -eq 0 ] || fail "$disagreements case(s) where iotsec-pki and openssl disagree"
say "iotsec-pki and openssl agree on all 10 cases"
