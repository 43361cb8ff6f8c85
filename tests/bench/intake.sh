#!/bin/sh
# Ring intake end to end (SPEC 5.3), on hosts in network namespaces: from the controller wrapping
# the first key of a ring of 75 to the device's confirmation, which it sends once the ring is in
# its dictd (one store, fsynced) and every other epoch cancelled (another save). keyd logs each
# round trip; this takes the median over ROUNDS rekeys. run.sh sets it beside the ceiling of the
# same run: 75 RSA-OAEP unwraps at the bare EVP rate and one fsynced write. Needs root and ip
# netns; without them it says so and stops (benchmarks never fail on speed).
if [ "$(id -u)" -ne 0 ] || ! command -v ip >/dev/null; then
	echo "intake: skipped (needs root and ip netns)"
	exit 0
fi
IT_DIR=$(dirname "$0")/../integration
. "$IT_DIR/common.sh"
ROUNDS=9
need_netns
make_home
device 1 hub controller
device 2 pi2 node
for n in hub pi2; do run_all "$n"; done
wait_until 20 same_epoch hub pi2 || fail "no ring for pi2"
for r in $(seq 1 $ROUNDS); do
	e=$(epoch hub)
	ctl "$T/hub/run/keyd/keyd.sock" '{"v":1,"verb":"rekey"}' | grep -q '"ok":true' || fail "rekey refused"
	moved() { same_epoch hub pi2 && [ "$(epoch pi2)" -gt "$e" ]; }
	wait_until 20 moved || fail "rekey $r: pi2 at epoch $(epoch pi2)"
done
sed -n 's/.*pi2 confirmed its ring of epoch [0-9]* (\([0-9]*\) keys) in \([0-9.]*\) ms.*/\1 \2/p' \
	"$T/hub/keyd.log" | sort -k2 -n | awk '
	{ k = $1; t[++n] = $2 }
	END { if (n == 0) exit 1
		printf "ring intake %d keys: median %.1f ms over %d rings\n", k, t[int((n + 1) / 2)], n }' ||
	fail "keyd logged no confirmation time"
