#!/bin/sh
# While iotsec-certd reports the certificate invalid, every lookup is refused; lookups work
# again once it reports the certificate valid. A lock asked for on the socket and certd's lock
# are separate: neither lifts the other.
. "$(dirname "$0")/common.sh"

one_device "certd = { interval = 2; };"
KEY=$(head -c 32 /dev/urandom | base64 -w0)
lookup() { ctl "$SOCK" '{"v":1,"verb":"lookup","name":"ring","indices":[7]}'; }
works() { lookup | grep -q "$KEY"; }
refused() { lookup | grep -q '"ok":false'; }

say "without certd the dictionary stays locked"
start dictd "$DEV/iotsec.conf"
wait_until 5 test -S "$SOCK" || fail "dictd did not start"
ctl "$SOCK" "{\"v\":1,\"verb\":\"store\",\"records\":[{\"name\":\"ring\",\"index\":7,\"epoch\":1,\"key\":\"$KEY\"}]}" |
	grep -q '"ok":true' || fail "store refused"
refused || fail "lookup served before certd said anything"

say "certd reports the certificate valid: lookups work"
start certd "$DEV/iotsec.conf"
CERTD=$LAST_PID
wait_until 5 works || fail "lookup still refused: $(lookup)"

say "the certificate is revoked: every lookup is refused"
iotsec-pki revoke --dir "$CA" --device pi1 >/dev/null 2>&1
wait_until 4 refused || fail "lookup still served after revocation"
lookup | grep -q "Permission denied" || fail "unclear refusal: $(lookup)"
ctl "$SOCK" '{"v":1,"verb":"status"}' | grep -q 'revoked' || fail "status does not say why"

say "an unlock request does not lift certd's lock"
ctl "$SOCK" '{"v":1,"verb":"unlock"}' | grep -q '"ok":true' || fail "unlock refused"
refused || fail "unlock lifted certd's lock"

say "a new certificate: lookups work again"
iotsec-pki enrol --dir "$CA" --device pi1 --role node --out "$DEV" >/dev/null 2>&1
wait_until 4 works || fail "lookup still refused after re-enrolment"

say "a lock asked for outlasts certd going away and coming back, until unlock"
ctl "$SOCK" '{"v":1,"verb":"lock"}' | grep -q '"ok":true' || fail "lock refused"
refused || fail "lookup served while locked by request"
kill "$CERTD"
wait "$CERTD" || true
start certd "$DEV/iotsec.conf"
CERTD=$LAST_PID
by_request() { ctl "$SOCK" '{"v":1,"verb":"status"}' | grep -q '"lock_reason":"locked by request"'; }
wait_until 5 by_request || fail "certd's word not taken: $(ctl "$SOCK" '{"v":1,"verb":"status"}')"
refused || fail "certd's valid lifted the requested lock"
ctl "$SOCK" '{"v":1,"verb":"unlock"}' | grep -q '"ok":true' || fail "unlock refused"
works || fail "lookup still refused after unlock"

say "certd stops: the dictionary locks"
kill "$CERTD"
wait "$CERTD" || true
wait_until 4 refused || fail "lookup served with certd gone"
echo ok
