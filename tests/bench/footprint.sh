#!/bin/sh
# Memory of each daemon (goal: under 8 MB resident each on an arm64 Pi): VmRSS (/proc/PID/status,
# every page the process has in memory) and Pss (/proc/PID/smaps_rollup: shared pages divided
# among the processes that map them, so the four daemons' Pss add up to what they cost together).
# The four daemons of one controller, after start-up and after 1,000 control requests each, run
# natively and then as the arm64 build under qemu-user; beside them mosquitto, the broker a Pi
# runs anyway, measured the same way in the same run (natively), after start-up and after 1,000
# messages. Under qemu-user the process is the emulator with the program inside it, so three
# figures: raw; minus a baseline, qemu running an arm64 program that only waits (idle.c), measured
# alongside; and the program's own mappings alone (its binary, its arm64 libraries, its heap and
# stack: everything qemu mapped below its own image), which is what the program would hold on a
# Pi, give or take the pages a real CPU's execution touches that emulation reads differently.
# Needs root and ip netns (electd and keyd talk on a LAN); without them it says so and stops.
if [ "$(id -u)" -ne 0 ] || ! command -v ip >/dev/null; then
	echo "footprint: skipped (needs root and ip netns)"
	exit 0
fi
IT_DIR=$(dirname "$0")/../integration
. "$IT_DIR/common.sh"
N=1000
GOAL_KB=8192
QEMU=qemu-aarch64
need_netns
make_home
: >"$T/mem"

# mem KEY PHASE PID: its VmRSS and Pss in kB, as "KEY PHASE RSS PSS" into $T/mem.
mem() {
	_rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$3/status" 2>/dev/null)
	_pss=$(awk '/^Pss:/ {print $2}' "/proc/$3/smaps_rollup" 2>/dev/null)
	if [ -z "$_rss" ] || [ -z "$_pss" ]; then fail "$1 (pid $3) is not running"; fi
	echo "$1 $2 $_rss $_pss" >>"$T/mem"
}

# guest_mem KEY PHASE PID: the same for the mappings of the program qemu-user runs in PID. qemu
# maps the guest (at 0x5500000000 for arm64) far below its own image (a host PIE, at 0x55..
# with 12 hex digits or more) and host libraries; summed from /proc/PID/smaps.
guest_mem() {
	_img=$(awk '/\/qemu-[a-z0-9]*$/ {split($1, a, "-"); print a[1]; exit}' "/proc/$3/maps")
	[ -n "$_img" ] || fail "$1 (pid $3): no qemu image in its maps"
	awk -v img="$_img" -v key="$1" -v phase="$2" '
		function pad(h) { h = sprintf("%16s", h); gsub(/ /, "0", h); return h }
		BEGIN { img = pad(img) }
		/^[0-9a-f]+-[0-9a-f]+ / { split($1, a, "-"); inside = pad(a[2]) <= img; next }
		inside && /^Rss:/ { r += $2 }
		inside && /^Pss:/ { p += $2 }
		END { print key, phase, r + 0, p + 0 }' "/proc/$3/smaps" >>"$T/mem"
}

# requests NAME: N status requests to each daemon of NAME, one connection each, as `iotsecctl
# status` makes them; every reply must say ok.
requests() {
	$PY - "$IT_DIR" "$N" "$T/$1/run/"*/*.sock <<'PY' || fail "status requests to $1's daemons failed"
import sys
sys.path.insert(0, sys.argv[1])
from ctl import call
n = int(sys.argv[2])
for path in sys.argv[3:]:
    for i in range(n):
        reply = call(path, '{"v":1,"verb":"status"}', timeout=10)
        if '"ok":true' not in reply:
            sys.exit("%s: reply %d: %s" % (path, i, reply))
PY
}

# ready NAME: every daemon of NAME answers, electd leads and keyd knows it.
ready() {
	for _d in certd dictd electd keyd; do
		ctl "$T/$1/run/$_d/$_d.sock" '{"v":1,"verb":"status"}' | grep -q '"ok":true' || return 1
	done
	[ "$(field "$1" electd state)" = controller ] && [ "$(field "$1" keyd controller)" = "$1" ]
}

# measure NAME KIND [IDLE]: start NAME's daemons (KIND native or arm64), measure them (and the
# idle program IDLE, at the same moments) after start-up and after N requests each, then stop them.
measure() {
	_pids=""
	for _d in certd dictd electd keyd; do
		if [ "$2" = native ]; then
			run "$1" "$_d"
		else
			# As run does, with the arm64 program under qemu-user: ip netns exec becomes qemu,
			# so the pid is the emulator's, guest and all.
			ip netns exec "$NS_PREFIX-h$(host_of "$1")" "$QEMU" "$PI_BIN/iotsec-$_d" \
				-c "$T/$1/iotsec.conf" -v >>"$T/$1/$_d.log" 2>&1 &
			LAST_PID=$!
			PIDS="$PIDS $!"
			DAEMONS="$DAEMONS $!"
			STARTED="$STARTED $!:$1/$_d"
		fi
		_pids="$_pids $_d:$LAST_PID"
		# systemd's order: each after the one before is up (certd first: the others ask it).
		wait_until 60 test -S "$T/$1/run/$_d/$_d.sock" || fail "$2 $_d did not start"
	done
	wait_until 60 ready "$1" || fail "$2 daemons of $1 not ready"
	sleep 2
	for _phase in start after; do
		if [ $_phase = after ]; then
			requests "$1"
			sleep 1
		fi
		for _p in $_pids; do
			mem "${_p%%:*}/$2" $_phase "${_p#*:}"
			[ "$2" = native ] || guest_mem "${_p%%:*}/$2-guest" $_phase "${_p#*:}"
		done
		[ -z "${3:-}" ] || mem "idle/$2" $_phase "$3"
	done
	for _p in $_pids; do stop "${_p#*:}"; done
}

say "mosquitto: start-up, then $N messages from mosquitto_pub to mosquitto_sub (QoS 1)"
device 1 hub controller
cat >"$T/mosquitto.conf" <<CONF
listener 1883 127.0.0.1
allow_anonymous true
persistence false
CONF
# Not through on(): a function in the background is a subshell, and $! would be its pid.
ip netns exec "$NS_PREFIX-h1" mosquitto -c "$T/mosquitto.conf" >"$T/mosquitto.log" 2>&1 &
MPID=$!
PIDS="$PIDS $MPID"
wait_until 10 on 1 mosquitto_pub -h 127.0.0.1 -t hello -m up || fail "mosquitto did not start"
sleep 2
mem mosquitto/native start "$MPID"
on 1 timeout 60 mosquitto_sub -h 127.0.0.1 -t home/readings -q 1 -C "$N" >"$T/sub.out" &
SUB=$!
sleep 0.5
# A sensor reading's size: about 60 bytes of JSON.
seq "$N" | awk '{printf "{\"sensor\":\"door-%d\",\"seq\":%d,\"open\":false,\"battery\":97}\n", $1 % 8, $1}' |
	on 1 mosquitto_pub -h 127.0.0.1 -t home/readings -q 1 -l || fail "mosquitto_pub failed"
wait "$SUB" || fail "mosquitto_sub did not get $N messages: $(wc -l <"$T/sub.out")"
[ "$(wc -l <"$T/sub.out")" -eq "$N" ] || fail "mosquitto_sub got $(wc -l <"$T/sub.out") messages"
sleep 1
mem mosquitto/native after "$MPID"

say "the daemons, native"
measure hub native

PI_BIN=${PI_BIN:-}
PI_IDLE=${PI_IDLE:-}
if [ -x "$PI_BIN/iotsec-certd" ] && [ -x "$PI_IDLE" ] && command -v "$QEMU" >/dev/null; then
	say "the daemons, arm64 under $QEMU, and beside them $QEMU running an arm64 program that only waits"
	"$QEMU" "$PI_IDLE" &
	IDLE=$!
	PIDS="$PIDS $IDLE"
	device 2 hub64 controller
	measure hub64 arm64 "$IDLE"
	stop "$IDLE"
else
	echo "footprint: no arm64 build or no $QEMU (make bench builds it as root): native figures only"
fi

# The table: kB; ratios to mosquitto's figure at the same point.
echo "kB; work: $N control requests (status, one connection each) to each daemon;" \
	"mosquitto: $N messages of about 60 bytes at QoS 1, one publisher, one subscriber"
awk -v goal="$GOAL_KB" -v q="$QEMU" -v n="$N" '
	{ rss[$1, $2] = $3; pss[$1, $2] = $4; have[$1] = 1 }
	function row(label, key, base,    r0, p0, r1, p1) {
		r0 = rss[key, "start"] - rss[base, "start"]; p0 = pss[key, "start"] - pss[base, "start"]
		r1 = rss[key, "after"] - rss[base, "after"]; p1 = pss[key, "after"] - pss[base, "after"]
		printf "%-46s %7d %7d   %7d %7d   %5.2f %5.2f\n", label, r0, p0, r1, p1,
			r1 / rss["mosquitto/native", "after"], p1 / pss["mosquitto/native", "after"]
		tr += r1; tp += p1
		return r1
	}
	function total(label) {
		printf "%-46s %7s %7s   %7d %7d\n", label, "", "", tr, tp
		tr = tp = 0
	}
	END {
		split("certd dictd electd keyd", d, " ")
		printf "%-46s %15s   %15s   %s\n", "", "start-up", "after " n, "x mosquitto"
		printf "%-46s %7s %7s   %7s %7s   %5s %5s\n", "", "RSS", "Pss", "RSS", "Pss", "RSS", "Pss"
		row("mosquitto, native", "mosquitto/native", "none")
		tr = tp = 0
		for (i = 1; i <= 4; i++) row("iotsec-" d[i] ", native", d[i] "/native", "none")
		total("all four, native")
		if (!("idle/arm64" in have)) exit
		row("baseline: " q ", an idle arm64 program", "idle/arm64", "none")
		tr = tp = 0
		for (i = 1; i <= 4; i++) row("iotsec-" d[i] ", arm64 under qemu, raw", d[i] "/arm64", "none")
		total("all four, raw")
		for (i = 1; i <= 4; i++) {
			r = row("iotsec-" d[i] ", arm64, raw minus baseline", d[i] "/arm64", "idle/arm64")
			minus = minus sprintf(" %s %s;", d[i], r < goal ? "yes" : "NO")
		}
		total("all four, raw minus baseline")
		for (i = 1; i <= 4; i++) {
			r = row("iotsec-" d[i] ", arm64, its own mappings", d[i] "/arm64-guest", "none")
			own = own sprintf(" %s %s;", d[i], r < goal ? "yes" : "NO")
		}
		total("all four, their own mappings")
		printf "goal, under %d kB RSS each on arm64 after the work: its own mappings:%s" \
			" raw minus baseline:%s\n", goal, own, minus
	}' "$T/mem"
[ -z "${IDLE:-}" ] ||
	echo "raw: the qemu process, emulator and program. raw minus baseline: that less qemu running a" \
		"program that only waits; it keeps the emulator's translated code for the daemon's work" \
		"(megabytes), so it overstates. its own mappings: the program's binary, arm64 libraries," \
		"heap and stack inside the emulator, the closest to what a Pi holds."
