#!/bin/sh
# The MQTT glue (libiotsec/mqtt.c) beside Debian's own clients, through one real mosquitto on
# 127.0.0.1 with the shipped configuration (etc/mosquitto/iotsec-broker.conf, paths and the
# listener moved): N QoS 1 messages of SIZE bytes from one client to a subscriber, timed until the
# subscriber has them all, 100 in flight. bench_mqtt does it with two struct mqtt on one sd-event
# loop; mosquitto_pub -l -M 100 and mosquitto_sub move the same messages through the same broker
# in the same run, best of ROUNDS each, interleaved. Never fails on speed.
set -eu
: "${BENCH_DIR:?run through 'make bench'}"
: "${IOTSEC_BIN:?run through 'make bench'}"
N=${MQTT_BENCH_N:-5000}
SIZE=128
ROUNDS=3
if ! command -v mosquitto >/dev/null && [ ! -x /usr/sbin/mosquitto ]; then
	echo "mqtt: skipped (no mosquitto)"
	exit 0
fi
MOSQUITTO=$(command -v mosquitto || echo /usr/sbin/mosquitto)
ETC=$(cd "$(dirname "$0")/../../etc/mosquitto" && pwd)
D=$(mktemp -d /tmp/iotsec-bench-mqtt.XXXXXX)
BROKER=""
SUB=""
finish() {
	for p in $SUB $BROKER; do kill "$p" 2>/dev/null || true; done
	for p in $SUB $BROKER; do wait "$p" 2>/dev/null || true; done
	rm -rf "$D"
}
trap finish EXIT
trap 'exit 130' INT TERM

pki() { "$IOTSEC_BIN/iotsec-pki" "$@" >"$D/pki.log" 2>&1 || { cat "$D/pki.log" >&2; exit 1; }; }
pki init --dir "$D/ca" --home bench
for n in broker pub sub; do pki enrol --dir "$D/ca" --device "$n" --role node --out "$D/$n"; done

# A free port, then the shipped file with this run's paths and that port on the loopback.
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$D/db"
cp "$ETC/iotsec.acl" "$D/"
sed -e "s|/etc/iotsec/mosquitto/iotsec.acl|$D/iotsec.acl|" \
	-e "s|/etc/iotsec/mosquitto/|$D/broker/|" -e "s|/var/lib/mosquitto/|$D/db/|" \
	-e "s|^listener 8883$|listener $PORT 127.0.0.1|" "$ETC/iotsec-broker.conf" >"$D/broker.conf"
# Run as root, mosquitto becomes its own user before it reads the files.
if [ "$(id -u)" -eq 0 ]; then
	chmod 0755 "$D"
	chown -R mosquitto "$D/broker" "$D/db" "$D/iotsec.acl"
fi
"$MOSQUITTO" -c "$D/broker.conf" >"$D/mosquitto.log" 2>&1 &
BROKER=$!
i=0
until python3 -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' \
	"$PORT" 2>/dev/null; do
	i=$((i + 1))
	if [ $i -gt 50 ] || ! kill -0 "$BROKER" 2>/dev/null; then
		echo "mqtt: mosquitto did not start:" >&2
		tail -n 5 "$D/mosquitto.log" >&2
		exit 1
	fi
	sleep 0.1
done

tls() { echo "-h 127.0.0.1 -p $PORT --cafile $D/$1/ca.crt --cert $D/$1/$1.crt --key $D/$1/$1.key --insecure"; }
seq 1 "$N" | awk -v s=$SIZE '{ printf "%0" s "d\n", $1 }' >"$D/lines"

# clients: mosquitto_sub subscribed (its SUBACK seen), then mosquitto_pub -l with the N lines;
# seconds until the subscriber has all N.
clients() {
	: >"$D/sub.out"
	# shellcheck disable=SC2046 # the options are words without spaces
	stdbuf -oL mosquitto_sub $(tls sub) -i bench-csub -q 1 -t iotsec/bench/pub/group -d \
		-C "$N" -W 120 >"$D/sub.out" 2>&1 &
	SUB=$!
	_i=0
	until grep -q SUBACK "$D/sub.out"; do
		_i=$((_i + 1))
		[ $_i -lt 100 ] || { echo "mqtt: mosquitto_sub did not subscribe" >&2; exit 1; }
		sleep 0.05
	done
	_t0=$(date +%s.%N)
	# shellcheck disable=SC2046
	mosquitto_pub $(tls pub) -i bench-cpub -q 1 -M 100 -t iotsec/bench/pub/group -l <"$D/lines"
	wait "$SUB" || { echo "mqtt: mosquitto_sub got $(grep -c '^0' "$D/sub.out") of $N" >&2; exit 1; }
	SUB=""
	echo "$(date +%s.%N) $_t0" | awk '{ printf "%.3f\n", $1 - $2 }'
}

best_ours=""
best_clients=""
for _ in $(seq 1 $ROUNDS); do
	o=$("$BENCH_DIR/bench_mqtt" 127.0.0.1 "$PORT" broker "$D/pub/ca.crt" "$D/pub/pub.crt" \
		"$D/pub/pub.key" "$D/sub/sub.crt" "$D/sub/sub.key" "$N" $SIZE)
	s=$(echo "$o" | sed -n 's/.*: \([0-9.]*\) s, .*/\1/p')
	c=$(clients)
	best_ours=$(printf '%s\n%s\n' "$s" "$best_ours" | awk 'NF && (b == "" || $1 < b) { b = $1 } END { print b }')
	best_clients=$(printf '%s\n%s\n' "$c" "$best_clients" | awk 'NF && (b == "" || $1 < b) { b = $1 } END { print b }')
done
awk -v n="$N" -v s=$SIZE -v a="$best_ours" -v b="$best_clients" 'BEGIN {
	printf "mqtt glue, %d QoS 1 messages of %d bytes to a subscriber: %.3f s (%.0f msgs/s)\n", n, s, a, n / a
	printf "  beside mosquitto_pub -l to mosquitto_sub (same broker, same run; their time includes mosquitto_pub connecting): %.3f s (%.0f msgs/s)  ratio %.0f%%\n",
		b, n / b, 100 * b / a
}'
