#!/bin/sh
# pingd (SPEC 5.5), on hosts in network namespaces with real daemons:
#
# 1. Detection: from a device's cable pulled (its link down, at a random point of the probe
#    cycle) to the controller's pingd putting it on the quarantine list, beside the bound its
#    settings give: interval + tries x retry + timeout (the controller's own probes), and the
#    worst case with every probe timing out and the indirect round after them:
#    interval + tries x timeout + (tries - 1) x retry + 2 x timeout. Three profiles: the paper's
#    (20 min, 3 min, 3 tries) with its durations divided by 600 (a minute becomes 0.1 s: the
#    paper's 26 minutes would not fit a benchmark; the ratios are kept, the timeout is the
#    scaled retry), the fast profile etc/iotsec.conf documents, and the tests' fast profile.
#
# 2. Declaration to completed rekey: from the declaration to every remaining device holding a
#    ring of the new epoch, for homes of 10 and 50 devices (one host each, every daemon), beside
#    the floor of the same work: keyd's collect window (a wait by design) plus, at openssl speed's
#    RSA-2048 rates measured in this run, the controller's private operations (one unwrap per
#    contributed key, one signature per message it sends) and public ones (one wrap per ring
#    key), and one device's unwraps: each device takes its own ring on its own CPU. Here they all
#    share this machine's cores, so a second floor charges every device's unwraps to them. The
#    controller's keyd log says how many rings it gave (more than devices: a confirmation came
#    late and the ring went again) and how long each device took to confirm. 200 devices would
#    be 1000 daemons whose broadcasts alone (every device verifies every other's) outweigh a
#    2-core machine: for 200 the line is a model, said to be one: the collect window plus
#    bench_rings' in-process time for the controller's rings and one device's intake.
#
# Needs root and ip netns; without them it says so and stops (benchmarks never fail on speed).
# BENCH_PINGD_SIZES (default "10 50") chooses the homes measured end to end.
if [ "$(id -u)" -ne 0 ] || ! command -v ip >/dev/null; then
	echo "pingd: skipped (needs root and ip netns)"
	exit 0
fi
IT_DIR=$(dirname "$0")/../integration
. "$IT_DIR/common.sh"
. "$IT_DIR/pingd-common.sh"
SIZES=${BENCH_PINGD_SIZES:-10 50}
ETC=$(dirname "$0")/../../etc/iotsec.conf
if [ -z "${RSA_SIGN:-}" ] || [ -z "${RSA_VERIFY:-}" ]; then
	_s=$(openssl speed -seconds 2 rsa2048 2>/dev/null | awk '/^rsa 2048 bits/ {print $6, $7}')
	RSA_SIGN=${_s% *}
	RSA_VERIFY=${_s#* }
fi
need_netns
make_home

# set_pingd NAME SETTINGS: NAME's pingd group is SETTINGS alone.
set_pingd() {
	sed -i '/^pingd = {/d' "$T/$1/iotsec.conf"
	pingd_only "$1" "$2"
}
# restart_pingd NAME: a new pingd for NAME, with its configuration as it is now.
restart_pingd() {
	for _p in $(pgrep -f "iotsec-pingd -c $T/$1/iotsec.conf"); do stop "$_p"; done
	run "$1" pingd
}
# setting TEXT NAME: the number NAME = N; in TEXT.
setting() { echo "$1" | tr ';' '\n' | sed -n "s/^ *$2 = \([0-9]*\).*/\1/p"; }

# watch_declared NAME VICTIM: wait (60 s at most) until NAME's pingd quarantines VICTIM; print
# the seconds since the file $T/t0 was written (its content: the start time).
watch_declared() {
	$PY - "$IT_DIR" "$T/$1/run/pingd/pingd.sock" "$2" "$T/t0" <<'PY'
import json, sys, time
sys.path.insert(0, sys.argv[1])
from ctl import call
sock, victim, t0f = sys.argv[2], sys.argv[3], sys.argv[4]
end = time.time() + 60
while time.time() < end:
    try:
        q = json.loads(call(sock, '{"v":1,"verb":"quarantine"}', timeout=1))
        if any(e["name"] == victim for e in q.get("quarantine", [])):
            now = time.time()
            print("%.3f" % (now - float(open(t0f).read())))
            sys.exit(0)
    except (OSError, ValueError):
        pass
    time.sleep(0.01)
sys.exit(1)
PY
}

echo "== pingd: detection of a missing device (hub and 3 nodes; pi4's cable pulled)"
device 1 hub controller
device 2 pi2 node
device 3 pi3 node
device 4 pi4 node
for n in hub pi2 pi3 pi4; do
	pingd_conf "$n" "helpers = 2; confirmations = 2;"
	run_home "$n"
done
wait_until 30 same_epoch hub pi2 pi3 pi4 || fail "rings not delivered"

PAPER='interval_ms = 2000; retry_ms = 300; tries = 3; timeout_ms = 300;'
README=$(sed -n 's/^ *# *\(interval_ms = [0-9]*; retry_ms = [0-9]*; tries = [0-9]*; timeout_ms = [0-9]*;\).*/\1/p' "$ETC" | head -n 1)
[ -n "$README" ] || fail "etc/iotsec.conf documents no fast profile"
detect() { # detect NAME ROUNDS SETTINGS
	_name=$1
	_rounds=$2
	for n in hub pi2 pi3 pi4; do set_pingd "$n" "$(pingd_merge "$3" "hello_ms = 300; helpers = 2; confirmations = 2;")"; done
	for n in hub pi2 pi3 pi4; do restart_pingd "$n"; done
	: >"$T/times"
	_iv=$(setting "$3" interval_ms)
	for _r in $(seq 1 "$_rounds"); do
		alive4() { [ "$(state hub pi4)" = alive ]; }
		wait_until 30 alive4 || fail "$_name: hub's pingd does not see pi4 alive"
		# A random point of the probe cycle.
		sleep "$($PY -c "import random; print(random.random() * $_iv / 1000)")"
		date +%s.%N >"$T/t0"
		link_down pi4
		watch_declared hub pi4 >>"$T/times" || fail "$_name: pi4 not declared missing within 60 s"
		link_up pi4
		ctl "$T/hub/run/pingd/pingd.sock" '{"v":1,"verb":"release","name":"pi4"}' | grep -q '"ok":true' ||
			fail "$_name: hub's pingd did not release pi4"
	done
	_tries=$(setting "$3" tries)
	_retry=$(setting "$3" retry_ms)
	_to=$(setting "$3" timeout_ms)
	sort -n "$T/times" | awk -v name="$_name" -v set="$3" \
		-v bound=$((_iv + _tries * _retry + _to)) \
		-v worst=$((_iv + _tries * _to + (_tries - 1) * _retry + 2 * _to)) '
		NF { t[++c] = $1 }
		END { printf "detection %s (%s): median %.2f s, max %.2f s over %d rounds; bound (interval + tries x retry + timeout) %.2f s: median %.2fx; worst case (every probe waits its timeout, then the indirect round) %.2f s: max %.2fx\n",
			name, set, t[int((c + 1) / 2)], t[c], c, bound / 1000, t[int((c + 1) / 2)] * 1000 / bound, worst / 1000, t[c] * 1000 / worst }'
}
detect "paper profile / 600" 3 "$PAPER"
detect "fast profile of etc/iotsec.conf" 2 "$README"
detect "fast profile of the tests" 3 "$PINGD_FAST"

# The RSA work of a rings line of bench_rings (the controller's, for N devices).
RINGS_OUT=${RINGS_OUT:-$([ -n "${BENCH_DIR:-}" ] && "$BENCH_DIR/bench_rings" 2>/dev/null || true)}

echo "== pingd: declaration to completed rekey"
for n in hub pi2 pi3 pi4; do
	for p in $(pids_of "$n"); do stop "$p"; done
	link_down "$n"
done
PIDS=""
for size in $SIZES; do
	# A home of its own for each size: hosts 11.. (the bridge holds 253).
	base=$((size == 10 ? 10 : 100))
	names=""
	for i in $(seq 1 "$size"); do
		n=s${size}d$i
		device $((base + i)) "$n" "$([ "$i" = 1 ] && echo controller || echo node)"
		# Few broadcasts: at 50 devices every HELLO and announcement is verified 49 times.
		sed -i 's/announce_ms = 500;/announce_ms = 3000;/' "$T/$n/iotsec.conf"
		pingd_conf "$n" "hello_ms = 3000; helpers = 3; confirmations = 2;"
		names="$names $n"
	done
	ctrl=s${size}d1
	victim=s${size}d$size
	for n in $names; do run_home "$n"; done
	# shellcheck disable=SC2086 # one name each
	wait_until $((30 + size)) same_epoch $names || fail "$size devices: rings not delivered"
	e1=$(epoch "$ctrl")
	rest=$(echo "$names" | sed "s/ $victim\$//")
	socks=""
	for n in $rest; do socks="$socks $T/$n/run/keyd/keyd.sock"; done
	link_down "$victim"
	# shellcheck disable=SC2086 # one socket each
	$PY - "$IT_DIR" "$T/$ctrl/run/pingd/pingd.sock" "$victim" "$e1" $socks >"$T/rekey" <<'PY' ||
import json, sys, time
sys.path.insert(0, sys.argv[1])
from ctl import call
psock, victim, e1, socks = sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5:]
def get(sock, verb):
    try:
        return json.loads(call(sock, '{"v":1,"verb":"%s"}' % verb, timeout=2))
    except (OSError, ValueError):
        return {}
end = time.time() + 120
while time.time() < end:
    if any(e["name"] == victim for e in get(psock, "quarantine").get("quarantine", [])):
        break
    time.sleep(0.01)
else:
    sys.exit("never declared")
t_decl = time.time()
left = list(socks)
while left and time.time() < end:
    left = [s for s in left if not (get(s, "status").get("epoch", 0) > e1
                                    and get(s, "status").get("ring_size", 0) > 0)]
    time.sleep(0.02)
if left:
    sys.exit("%d devices without a new ring" % len(left))
print("%.3f" % (time.time() - t_decl))
PY
		fail "$size devices: $(cat "$T/rekey")"
	took=$(cat "$T/rekey")
	collect=$(sed -n 's/.*collect_ms = \([0-9]*\);.*/\1/p' "$T/$ctrl/iotsec.conf")
	# What the controller's keyd did for the new pool, from its log: contributed keys (each an
	# RSA unwrap) and the ring size (each ring key an RSA wrap to its device).
	line=$(grep "pool of epoch .* keys (.* contributed), rings of" "$T/$ctrl/keyd.log" | tail -n 1)
	contributed=$(echo "$line" | sed -n 's/.*(\([0-9]*\) contributed).*/\1/p')
	ring=$(echo "$line" | sed -n 's/.*rings of \([0-9]*\).*/\1/p')
	[ -n "$contributed" ] && [ -n "$ring" ] || fail "$size devices: keyd logged no pool: $line"
	# Messages per device: from bench_rings (its private operations over its devices), else 3.
	per=$(echo "$RINGS_OUT" | awk '/^rings controller 10 devices/ { for (i = 1; i <= NF; i++) if ($i == "rsa_private") print $(i + 1) / 10 }')
	# Where the time went: the rings of the new epoch given (again, when a confirmation was
	# late) and how long each device took to confirm its own.
	e2=$(epoch "$ctrl")
	gave=$(grep -c "a ring of [0-9]* keys (epoch $e2)" "$T/$ctrl/keyd.log" || true)
	confirm=$(sed -n "s/.* confirmed its ring of epoch $e2 ([0-9]* keys) in \([0-9.]*\) ms.*/\1/p" \
		"$T/$ctrl/keyd.log" | sort -n | awk '{ t[++c] = $1 } END { if (c) printf "median %.0f ms, max %.0f ms", t[int((c + 1) / 2)], t[c] }')
	echo "$took" | awk -v n="$size" -v c="$collect" -v k="$ring" -v got="$contributed" \
		-v per="${per:-3}" -v s="$RSA_SIGN" -v v="$RSA_VERIFY" -v cores="$(nproc)" \
		-v gave="$gave" -v confirm="$confirm" '{
		d = n - 2 # rings sent: every device but the missing one and the controller itself
		priv = got + d * per
		pub = d * k
		floor = c / 1000 + priv / s + pub / v + k / s
		# Here every device unwraps its ring on the same cores as all the others.
		here = c / 1000 + (priv + d * k) / (s * cores) + pub / (v * cores)
		printf "rekey %d devices (end to end, %d hosts): %.2f s from declaration until the %d left hold rings of %d keys\n", n, n, $1, n - 1, k
		printf "  floor on separate Pis %.2f s: collect window %.1f s + %d RSA private ops at %.0f/s + %d public at %.0f/s + one device'"'"'s %d unwraps; %.0f%% of the time measured\n",
			floor, c / 1000, priv, s, pub, v, k, 100 * floor / $1
		printf "  floor on this machine %.2f s (every device'"'"'s unwraps too, on its %d cores): %.0f%% of the time measured\n",
			here, cores, 100 * here / $1
		printf "  rings sent %d for %d devices (more: a confirmation came late), confirmations %s\n",
			gave, d, confirm
	}'
	for n in $names; do for p in $(pids_of "$n"); do stop "$p"; done; done
	for n in $names; do link_down "$n"; done
	PIDS=""
done
collect=$(echo "$TEST_TIMINGS" | sed -n 's/.*collect_ms = \([0-9]*\);.*/\1/p')
echo "$RINGS_OUT" | awk -v s="$RSA_SIGN" -v v="$RSA_VERIFY" -v c="$collect" '
	/^rings controller 200 devices/ { ctl = $5; k = $10; pub = $12; priv = $14 }
	/^rings device \(one ring\)/ { dev = $5 }
	END { if (ctl == "") { print "rekey 200 devices: no bench_rings line"; exit }
		floor = c / 1000 + priv / s + pub / v + k / s
		printf "rekey 200 devices (MODEL, not end to end: 1000 daemons do not fit this machine): collect window %.1f s + bench_rings controller %.2f s + one device %.3f s = %.2f s; floor (same RSA operations at openssl speed, contributions not counted) %.2f s\n",
			c / 1000, ctl, dev, c / 1000 + ctl + dev, floor }'
