#!/bin/sh
# Election convergence (SPEC 5.1): N controller-capable hosts on one bridge start their electd
# together; the time until every one of them names the same controller, and exactly one is it.
# Beside it, the protocol's own floor: a device claims the role only after asking tries times,
# try_ms apart, so no election can finish sooner than tries x try_ms. Needs root and ip netns;
# without them it says so and stops (benchmarks never fail on speed, or on a missing namespace).
if [ "$(id -u)" -ne 0 ] || ! command -v ip >/dev/null; then
	echo "election: skipped (needs root and ip netns)"
	exit 0
fi
IT_DIR=$(dirname "$0")/../integration
. "$IT_DIR/common.sh"
ROUNDS=5
# The hosts run with the test timings; the floor comes from the same text.
TRIES=$(echo "$TEST_TIMINGS" | sed -n 's/.*electd = {.* tries = \([0-9]*\);.*/\1/p')
TRY_MS=$(echo "$TEST_TIMINGS" | sed -n 's/.*electd = {.* try_ms = \([0-9]*\);.*/\1/p')
[ -n "$TRIES" ] && [ -n "$TRY_MS" ] || fail "cannot read electd timings from TEST_TIMINGS"
need_netns
make_home

# converge N: start electd on hosts 1..N at once (their certd already runs: a device takes part
# once certd has said its certificate is valid); add the milliseconds until all agree to $T/ms.
converge() {
	_socks=""
	for _i in $(seq 1 "$1"); do
		rm -f "$T/hub$_i/run/electd/electd.sock"
		_socks="$_socks $T/hub$_i/run/electd/electd.sock"
	done
	_t0=$(date +%s.%N)
	for _i in $(seq 1 "$1"); do run "hub$_i" electd; done
	# One poller for every socket: a python start per poll would be slower than the election.
	$PY - "$IT_DIR" "$_t0" $_socks >>"$T/ms" <<'PY' || fail "$1 hosts did not agree within 10 s"
import json, sys, time
sys.path.insert(0, sys.argv[1])
from ctl import call
t0, socks = float(sys.argv[2]), sys.argv[3:]
def status(path):
    try:
        return json.loads(call(path, '{"v":1,"verb":"status"}', timeout=1))
    except (OSError, ValueError):
        return {}
while time.time() - t0 < 10:
    st = [status(p) for p in socks]
    leaders = [s for s in st if s.get("state") == "controller"]
    named = {s.get("controller") for s in st}
    if len(leaders) == 1 and len(named) == 1 and None not in named and "" not in named:
        print(round((time.time() - t0) * 1000))
        sys.exit(0)
    time.sleep(0.005)
sys.exit(1)
PY
	for _p in $PIDS; do kill "$_p" 2>/dev/null || true; done
	for _p in $PIDS; do wait "$_p" 2>/dev/null || true; done
	PIDS=""
}

for n in 3 10; do
	for i in $(seq 1 "$n"); do
		[ -d "$T/hub$i" ] || { device "$i" "hub$i" controller && with_certd "hub$i"; }
	done
	: >"$T/ms"
	for r in $(seq 1 $ROUNDS); do converge "$n"; done
	sort -n "$T/ms" | awk -v n="$n" -v floor=$((TRIES * TRY_MS)) '
		NF { t[++c] = $1 }
		END { printf "election %d hosts: median %d ms, max %d ms over %d rounds; floor (tries x try_ms) %d ms: median %.2fx the floor\n",
			n, t[int((c + 1) / 2)], t[c], c, floor, t[int((c + 1) / 2)] / floor }'
done
