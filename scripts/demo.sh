#!/bin/sh
# make demo: the story so far, end to end, with real programs. Leaves its files in build/demo.
set -eu
: "${IOTSEC_BIN:?run through 'make demo'}"
PATH="$IOTSEC_BIN:$PATH"
D=$(pwd)/build/demo
rm -rf "$D"
mkdir -p "$D"
CERTD_PID=""
WATCH_PID=""
trap 'kill $CERTD_PID $WATCH_PID 2>/dev/null || true' EXIT

. "$(dirname "$0")/step.sh"
run() {
	printf '$ %s\n' "$*"
	"$@"
}

step "1. The household creates its home CA"
run iotsec-pki init --dir "$D/ca" --home smith-family

step "2. It enrols a controller and three devices"
run iotsec-pki enrol --dir "$D/ca" --device hub --role controller --out "$D/hub"
for pi in kitchen garage porch; do
	run iotsec-pki enrol --dir "$D/ca" --device $pi --role node --out "$D/$pi"
done
run iotsec-pki list --dir "$D/ca"

step "3. Each certificate verifies against the home CA and its CRL (as openssl agrees)"
for dev in hub kitchen garage porch; do
	run iotsec-pki verify --dir "$D/ca" "$D/$dev/$dev.crt" --key "$D/$dev/$dev.key"
done
run openssl verify -CAfile "$D/ca/ca.crt" -crl_check -CRLfile "$D/ca/crl.pem" "$D/kitchen/kitchen.crt"

step "4. The kitchen Pi starts its certificate watchdog"
cat >"$D/kitchen/iotsec.conf" <<CONF
device = {
  cert = "$D/kitchen/kitchen.crt";
  key = "$D/kitchen/kitchen.key";
  ca = "$D/ca/ca.crt";
  crl = "$D/ca/crl.pem";
  state_dir = "$D/kitchen/state";
  run_dir = "$D/kitchen/run";
};
certd = { interval = 5; };
CONF
run iotsec-certd -c "$D/kitchen/iotsec.conf" --check-config
iotsec-certd -c "$D/kitchen/iotsec.conf" 2>"$D/kitchen/certd.log" &
CERTD_PID=$!
for _ in $(seq 50); do [ -S "$D/kitchen/run/certd/certd.sock" ] && break; sleep 0.1; done
sleep 0.3
# Only certd runs on this Pi yet: status says so, and exits 1 (degraded), as it should.
run iotsecctl -c "$D/kitchen/iotsec.conf" status || true

step "5. The kitchen Pi is stolen: the household revokes it"
iotsecctl -c "$D/kitchen/iotsec.conf" watch certd --count 1 --timeout 10 >"$D/kitchen/events" &
WATCH_PID=$!
sleep 0.3
run iotsec-pki revoke --dir "$D/ca" --device kitchen
wait $WATCH_PID || true
WATCH_PID=""
echo "The watchdog noticed at once and told every subscriber:"
sed 's/^/    /' "$D/kitchen/events"
echo "Its log says:"
grep "out of the home" "$D/kitchen/certd.log" | sed 's/^/    /'
run iotsecctl -c "$D/kitchen/iotsec.conf" status || true
run iotsec-pki verify --dir "$D/ca" "$D/kitchen/kitchen.crt" || true

echo "(files of steps 1-5 are in $D)"

kill $CERTD_PID 2>/dev/null || true
CERTD_PID=""
if [ "$(id -u)" -eq 0 ] && command -v ip >/dev/null; then
	"$(dirname "$0")/demo-home.sh"
else
	step "6-19. The home network story needs root (network namespaces): run 'sudo make demo'"
fi
step "Done."
# The last thing to look at: what the doctor saw (step 19).
if [ -f "$D/relay-page.png" ]; then
	echo "the doctor's page: ${D#"$(pwd)/"}/relay-page.png"
fi
