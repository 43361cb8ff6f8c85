#!/bin/sh
# sensord (SPEC 5.6), on hosts in network namespaces with real daemons and a real mosquitto run
# with the shipped etc/mosquitto/iotsec-broker.conf (tests/integration/mqtt-common.sh):
#
# A reading a sensor interval is no throughput (sensord.interval_ms is 100 ms at least, and a
# device reads at most 16 sensors), so what is measured is what does need speed: the drain of a
# full spool, the backlog a kit sends when its broker comes back after an outage. pi2's sensord
# reads N readings of 16 replay sensors while no broker runs, so they wait in its spool, sealed;
# then the broker is started with a raw reader subscribed (mosquitto_sub on pi3's host with a
# certificate of its own, QoS 1, counting N), and sensord again, which publishes the spool with
# QoS 1 in order, taking each record off it at its PUBACK (fdatasync'd at most every
# sensord.spool_sync_ms).
#
# Beside it, in the same run, through the same broker, from the same host with the same
# certificate (sensord stopped first: one connection per certificate): mosquitto_pub moving N
# messages of the sealed reading's size at QoS 1 to the same kind of reader, read from stdin (-l,
# one connection, each line as it comes) and repeated (-m --repeat), with as many messages in
# flight as sensord (-M). tests/bench/mqtt.sh measures the MQTT glue alone the same way; this is
# the daemon, spool included. The rate is taken at the reader, from its first message to its
# N-th (mosquitto_sub's %U timestamps), so the start-up of either publisher (TLS, and for sensord certd's verdict and
# the connection) is left out; it is shown separately. sensord's subscription to the home's group
# topic brings its own readings back to it as well: that work is in its rate, as on a Pi.
#
# Then one round with pi3's sensord reading too, each reading opened and passed through the
# freshness and replay checks: when it has all N, after the raw reader's first (not beside
# mosquitto_pub: a second reader adds to the broker's work).
#
# Needs root, ip netns and mosquitto; without them it says so and stops (benchmarks never fail on
# speed). BENCH_SENSORD_N (default 5000) sets the number of readings; each is measured in
# 5 rounds (the same spool, put back), the median shown with the range.
if [ "$(id -u)" -ne 0 ] || ! command -v ip >/dev/null; then
	echo "sensord: skipped (needs root and ip netns)"
	exit 0
fi
if ! command -v mosquitto >/dev/null || ! command -v mosquitto_pub >/dev/null; then
	echo "sensord: skipped (needs mosquitto and mosquitto-clients: scripts/deps.sh test)"
	exit 0
fi
IT_DIR=$(dirname "$0")/../integration
. "$IT_DIR/common.sh"
. "$IT_DIR/mqtt-common.sh"
N=${BENCH_SENSORD_N:-5000}
ROUNDS=5
SENSORS=16 # SENSOR_MAX: as many as one device reads
INTERVAL_MS=100
INFLIGHT=100 # sensord.max_inflight's default; mosquitto_pub gets the same (-M)
[ "$N" -ge "$SENSORS" ] || fail "BENCH_SENSORD_N must be at least $SENSORS"
need_netns
make_home smith
broker_host 1
device 2 pi2 controller
device 3 pi3 node

# N readings in all: each replay sensor its share of rows, then "done".
list=""
for s in $(seq 1 $SENSORS); do
	name=$(printf 's%02d' "$s")
	rows=$((N / SENSORS + (s <= N % SENSORS ? 1 : 0)))
	awk -v n="$rows" -v s="$s" 'BEGIN { for (i = 1; i <= n; i++) printf "room,%d.%02d,C\n", 10 + s, i % 100 }' \
		>"$T/pi2/$name.csv"
	list="$list${list:+, }$name=replay:$T/pi2/$name.csv"
done
cat >>"$T/pi2/iotsec.conf" <<CONF
sensord = { broker = "$BROKER_IP"; interval_ms = $INTERVAL_MS; sensors = "$list";
  spool_max = $((N * 2)); max_inflight = $INFLIGHT; resync_ms = 300; resync_tries = 2; };
CONF

for n in pi2 pi3; do run_all "$n"; done
wait_until 30 same_epoch pi2 pi3 || fail "rings not delivered"

# sfield KEY: a field of pi2's sensord status ("" when it does not answer).
sfield() { field pi2 sensord "$1"; }
spooled_all() { [ "$(sfield spooled)" = "$N" ]; }

# The spool fills with no broker to take it (and so no reader).
run pi2 sensord
SENSORD=$LAST_PID
wait_until $((N * INTERVAL_MS / SENSORS / 1000 + 60)) spooled_all ||
	fail "pi2's spool holds $(sfield spooled) readings, not $N: $(ctl "$T/pi2/run/sensord/sensord.sock" '{"v":1,"verb":"status"}')"
stop "$SENSORD"
SENSORD=""
# Nothing more to read: the drain is the spool alone.
for f in "$T"/pi2/s*.csv; do echo "# read" >"$f"; done

broker_start

# drain_rate OUT LABEL T0: from OUT (mosquitto_sub -F '%U %l' lines, among its -d lines) print
# "LABEL RATE SIZE ELAPSED": messages a second from the first to the last, their most common size,
# and the seconds from T0 (unix time) to the last. Fails, saying why, unless all N arrived.
drain_rate() {
	grep -E '^[0-9]+\.[0-9]+ [0-9]+$' "$1" | awk -v n="$N" -v label="$2" -v t0="$3" '
		{ t[++c] = $1; size[$2]++ }
		END {
			if (c != n) { printf "%s: the reader got %d messages of %d\n", label, c, n; exit 1 }
			for (s in size) if (size[s] > best) { best = size[s]; sz = s }
			printf "%s %.1f %d %.3f\n", label, (c - 1) / (t[c] - t[1]), sz, t[c] - t0
		}'
}

# The reader: mosquitto_sub on pi3's host, QoS 1, until it has N messages (or 120 s went by).
# Its certificate is its own: the broker names a client by its certificate's CN, and a second
# connection with pi3's would close pi3's sensord's (the last round runs both).
mqtt_client reader 3
reader() { mqtt_sub_bg reader "$T/$1.out" -q 1 -C "$N" -W 120 -t "$2" -F '%U %l'; }

# Every round drains the same full spool (a copy of it as it was, put back each time), then
# mosquitto_pub moves the same number of messages of the same size (known after the first drain)
# from the same host with pi2's certificate: interleaved, so that a busy moment of this machine
# falls on both alike.
SPOOL=$T/pi2/state/sensord/spool
cp -a "$SPOOL" "$T/spool.full"
: >"$T/results"
for round in $(seq 1 "$ROUNDS"); do
	[ -z "$SENSORD" ] || stop "$SENSORD"
	rm -rf "$SPOOL"
	cp -a "$T/spool.full" "$SPOOL"
	reader sensord iotsec/smith/pi2/group
	t0=$(date +%s.%N)
	run pi2 sensord
	SENSORD=$LAST_PID
	wait "$SUB_PID" || true
	drain_rate "$T/sensord.out" sensord "$t0" >>"$T/results" || fail "round $round: $(tail -n 1 "$T/results")"
	drained() { [ "$(sfield spooled)" = 0 ] && [ "$(sfield published)" = "$N" ]; }
	wait_until 10 drained || fail "pi2's spool: $(sfield spooled) left, $(sfield published) published"
	# mosquitto_pub below has pi2's certificate: with sensord still connected, each would close
	# the other's connection (the broker names both by the CN).
	stop "$SENSORD"
	SENSORD=""

	if [ "$round" = 1 ]; then
		size=$(awk '{ print $3; exit }' "$T/results")
		awk -v n="$N" -v s="$size" 'BEGIN { l = sprintf("%*s", s, ""); gsub(/ /, "x", l); for (i = 0; i < n; i++) print l }' \
			>"$T/lines"
	fi
	reader pub_l iotsec/smith/pi2/bench
	t0=$(date +%s.%N)
	# shellcheck disable=SC2046 # the options are words without spaces
	on 2 mosquitto_pub $(mqtt_tls pi2) -q 1 -M "$INFLIGHT" -t iotsec/smith/pi2/bench -l <"$T/lines" ||
		fail "mosquitto_pub -l failed"
	wait "$SUB_PID" || true
	drain_rate "$T/pub_l.out" mosquitto_pub_l "$t0" >>"$T/results" || fail "$(tail -n 1 "$T/results")"

	reader pub_r iotsec/smith/pi2/bench
	t0=$(date +%s.%N)
	# shellcheck disable=SC2046
	on 2 mosquitto_pub $(mqtt_tls pi2) -q 1 -M "$INFLIGHT" -t iotsec/smith/pi2/bench -m "$(head -n 1 "$T/lines")" \
		--repeat "$N" || fail "mosquitto_pub --repeat failed"
	wait "$SUB_PID" || true
	drain_rate "$T/pub_r.out" mosquitto_pub_r "$t0" >>"$T/results" || fail "$(tail -n 1 "$T/results")"
done

# One round more, not set beside mosquitto_pub (a second reader adds to the broker's work): pi3's
# sensord reads too, opening each reading and passing it through the freshness and replay checks.
rm -rf "$SPOOL"
cp -a "$T/spool.full" "$SPOOL"
cat >>"$T/pi3/iotsec.conf" <<CONF
sensord = { broker = "$BROKER_IP"; };
CONF
run pi3 sensord
READER=$LAST_PID
pi3_ready() { [ "$(field pi3 sensord broker)" = connected ] && [ "$(field pi3 sensord group_start)" -gt 0 ]; }
wait_until 30 pi3_ready || fail "pi3's sensord: not connected or no group stream"
reader sensord iotsec/smith/pi2/group
run pi2 sensord
SENSORD=$LAST_PID
# The moment pi3's sensord has opened all N (unix time), from its status polled every 10 ms.
opened_at=$($PY - "$IT_DIR" "$T/pi3/run/sensord/sensord.sock" "$N" <<'PY'
import json, sys, time
sys.path.insert(0, sys.argv[1])
from ctl import call
sock, n = sys.argv[2], int(sys.argv[3])
end = time.time() + 120
while time.time() < end:
    try:
        s = json.loads(call(sock, '{"v":1,"verb":"status"}', timeout=1))
        if s["readings_opened"] >= n:
            print("%.6f %d %d" % (time.time(), s["readings_opened"], s["refused"]))
            sys.exit(0)
    except (OSError, ValueError, KeyError):
        pass
    time.sleep(0.01)
sys.exit("pi3's sensord opened fewer than %d readings in 120 s" % n)
PY
) || fail "$opened_at"
wait "$SUB_PID" || true
first=$(grep -E '^[0-9]+\.[0-9]+ [0-9]+$' "$T/sensord.out" | head -n 1 | cut -d' ' -f1)
echo "$opened_at" | awk -v n="$N" -v first="$first" '{
	printf "READER %.1f %.3f %d\n", n / ($1 - first), $1 - first, $3 }' >>"$T/results"
stop "$READER"

# The median round of each, by rate.
sort -k1,1 -k2,2n "$T/results" | awk -v n="$N" -v rounds="$ROUNDS" '
	$1 == "READER" { reader_rate = $2; reader_took = $3; reader_refused = $4; next }
	{ r[$1, ++c[$1]] = $2; size[$1] = $3; took[$1, c[$1]] = $4 }
	END {
		split("sensord mosquitto_pub_l mosquitto_pub_r", k, " ")
		for (i = 1; i <= 3; i++) {
			m = int((c[k[i]] + 1) / 2)
			rate[k[i]] = r[k[i], m]
			range[k[i]] = sprintf("%.0f-%.0f", r[k[i], 1], r[k[i], c[k[i]]])
			t[k[i]] = took[k[i], m]
		}
		printf "sensord drains a full spool of %d sealed readings (%d bytes each, QoS 1, to a reader on another host): %.0f msgs/s (median of %d rounds, %s); %.2f s from its start to the last at the reader\n",
			n, size["sensord"], rate["sensord"], rounds, range["sensord"], t["sensord"]
		printf "  mosquitto_pub -l, the same %d messages of %d bytes, same broker and hosts: %.0f msgs/s (%s; %.2f s from its start)\n",
			n, size["mosquitto_pub_l"], rate["mosquitto_pub_l"], range["mosquitto_pub_l"], t["mosquitto_pub_l"]
		printf "  mosquitto_pub -m --repeat %d: %.0f msgs/s (%s; %.2f s from its start)\n",
			n, rate["mosquitto_pub_r"], range["mosquitto_pub_r"], t["mosquitto_pub_r"]
		best = rate["mosquitto_pub_l"] > rate["mosquitto_pub_r"] ? "l" : "r"
		printf "  sensord vs the faster mosquitto_pub (%s): ratio %.0f%%\n",
			best == "l" ? "-l" : "-m --repeat", 100 * rate["sensord"] / rate["mosquitto_pub_" best]
		printf "  one round with a sensord reader too (pi3: each reading opened, fresh and not replayed): all %d opened %.2f s after the raw reader'"'"'s first, %.0f readings/s; %d refused\n",
			n, reader_took, reader_rate, reader_refused
	}'
