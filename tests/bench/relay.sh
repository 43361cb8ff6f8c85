#!/bin/sh
# The relay (iotsec-relayd) end to end, on hosts in network namespaces with a real mosquitto run
# with the shipped configuration (tests/integration/mqtt-common.sh) and the relay set up as the
# relay tests set it up (relay-common.sh: its own host, relay.commit_ms 20, relay.batch_max's
# default):
#
# Ingest. kit1 (a certificate of the home, host 2) publishes BENCH_RELAY_N real sealed doctor
# readings (kind doctor, device kit1, sealed under the stream drwho granted through the relay,
# about 120 bytes) on iotsec/<home>/kit1/doctor at QoS 1, 100 in flight, in ROUNDS (4) bursts;
# bench_relay_kit publishes them, the readings sealed before the clock starts. Timed from the
# publisher's start (its TLS connection included) to the moment the relay's status counts them
# all committed to its store (polled every 5 ms). Beside it, in the same run through the same
# broker, interleaved round by round:
#   - the broker's own QoS 1 rate: mosquitto_pub -l -M 100 from kit1's host with kit1's
#     certificate to a mosquitto_sub -q 1 -C N on a host of its own, timed from mosquitto_pub's
#     start until the subscriber has them all (the ceiling of the ratio);
#   - the same publisher as the relay's (bench_relay_kit, the same sealed payloads) to that
#     mosquitto_sub: whatever differs between the two publishers shows here, not in the ratio;
#   - raw SQLite batched inserts: bench_relay_store's bare figure, printed by run.sh just
#     before this script (RELAY_STORE_OUT), or measured here when run alone.
# Each figure is the best of the ROUNDS rounds, the range beside it; the CPU time the relay and
# the broker used in the relay's rounds is shown per reading, beside the bare subscriber's per
# message, as what limits the rate on a small machine is what the processes on it cost (and CPU
# time per message moves far less than a rate when other work shares the machine).
# Delivery. drwho catches up on those readings through the relay's HTTPS API with
# iotsec-doctor fetch --format json > /dev/null (each reading opened, checked and printed, then
# marked delivered), beside a bare scan of the same rows with the sqlite3 CLI on the relay's file,
# and beside the store's own catch-up without HTTP (bench_relay_store), with the CPU time of
# the relay and of the doctor's tool per reading.
# PostgreSQL. The same two with relay.store = "postgresql" and two relay instances sharing one
# subscription (relay.share) and one database (tests/integration/pg-common.sh), the doctor
# catching up through one of them; the scan is psql's, and the raw figures bench_relay_pg's
# when run.sh ran it (RELAY_PG_OUT: it takes a minute and more, so it is not run here).
#
# Needs root, ip netns and mosquitto (PostgreSQL for the last part); without them it says so and
# stops. Never fails on speed. BENCH_RELAY_N (default 100000) sets the number of readings.
if [ "$(id -u)" -ne 0 ] || ! command -v ip >/dev/null; then
	echo "relay: skipped (needs root and ip netns)"
	exit 0
fi
if ! command -v mosquitto >/dev/null || ! command -v mosquitto_pub >/dev/null ||
	! command -v sqlite3 >/dev/null; then
	echo "relay: skipped (needs mosquitto, mosquitto-clients and sqlite3: scripts/deps.sh test)"
	exit 0
fi
: "${BENCH_DIR:?run through 'make bench'}"
IT_DIR=$(cd "$(dirname "$0")/../integration" && pwd)
. "$IT_DIR/common.sh"
. "$IT_DIR/sensord-common.sh"
. "$IT_DIR/relay-common.sh"
. "$IT_DIR/pg-common.sh"
# pg-common.sh's trap stops the server, then common.sh's cleanup: the hosts must go too.
# set +e: the trap runs under set -e, and "(exit 1)" would end it before the cleanup.
# shellcheck disable=SC2154 # _st is assigned in the trap itself
trap '_st=$?; set +e; stop_pg fast || stop_pg immediate; (exit $_st); cleanup_hosts_then_files' EXIT
N=${BENCH_RELAY_N:-100000}
ROUNDS=4
INFLIGHT=100 # sensord.max_inflight's default; mosquitto_pub gets the same (-M)
M=$((N / ROUNDS))
[ "$M" -ge 100 ] || fail "BENCH_RELAY_N must be at least $((100 * ROUNDS))"
N=$((M * ROUNDS))
need_netns
sensord_home
device 2 kit1 node
mqtt_client reader 3
add_host 3
relay 7 relay1
doctor 5 drwho
run_relay relay1
wait_until 10 relay_ready relay1 || fail "relay1 not connected: $(relay_call relay1 status)"
grant_via relay1 drwho kit1
KIT_TOPIC=iotsec/$HOME_NAME/kit1/doctor
RAW_TOPIC=iotsec/$HOME_NAME/kit1/bench

# seal FILE FIRST COUNT: COUNT readings of kit1, seqs FIRST.., sealed under the newest root drwho
# granted to kit1 (its roots folder), as kit1's sensord seals them (libiotsec/reading.h), now;
# each preceded by its length (u16, big-endian) for bench_relay_kit. Prints their size.
seal() {
	$PY - "$T/drwho/roots" "$STREAM_START" "$STREAM_INTERVAL" "$@" <<'PY'
import base64, glob, hashlib, hmac, json, os, struct, sys, time
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
roots, start, interval, out, first, count = sys.argv[1:7]
path = max((p for p in glob.glob(roots + "/kit1*.json")), key=os.path.getmtime)
r = json.load(open(path))
root = base64.b64decode(r["root"])
now = time.time()
epoch = max(r["start"], int((now - int(start)) // int(interval)) + 1)
key = root
for i in range(r["start"], epoch + 1):
    key = HKDF(hashes.SHA256(), 32, b"iotsec stream v1", struct.pack(">I", i)).derive(key)
stream = hmac.new(root, b"iotsec stream id v1", hashlib.sha256).digest()[:16]
aead, dev, ms = AESGCM(key), b"kit1", int(now * 1000)
with open(out, "wb") as f:
    for seq in range(int(first), int(first) + int(count)):
        pt = json.dumps({"sensor": "pulse", "value": 60 + seq % 40 + 0.5, "unit": "/min"},
                        separators=(",", ":")).encode()
        head = bytes([1, 2, 0, len(dev)]) + dev + stream + struct.pack(">IQq", epoch, seq, ms)
        head += os.urandom(12)
        b = head + aead.encrypt(head[-12:], pt, head)
        f.write(struct.pack(">H", len(b)) + b)
print(len(b))
PY
}

# timed_ingest TARGET SOCKET... -- COMMAND...: run COMMAND (the publisher) and print the seconds
# from its start until the relays of the control SOCKETs count TARGET readings stored between
# them (their status' "stored"), polled every 5 ms; fails after 120 s or when COMMAND fails.
timed_ingest() {
	$PY - "$IT_DIR" "$@" <<'PY'
import json, subprocess, sys, time
sys.path.insert(0, sys.argv[1])
from ctl import call
target, args = int(sys.argv[2]), sys.argv[3:]
socks, cmd = args[:args.index("--")], args[args.index("--") + 1:]
def stored():
    n = 0
    for s in socks:
        try:
            n += json.loads(call(s, '{"v":1,"verb":"status"}', timeout=2))["stored"]
        except (OSError, ValueError, KeyError):
            pass
    return n
t0 = time.time()
p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
while True:
    n = stored()
    if n >= target:
        t1 = time.time()
        break
    if time.time() - t0 > 120:
        sys.exit("the relays stored %d of %d in 120 s" % (n, target))
    time.sleep(0.005)
if p.wait() != 0:
    sys.exit("the publisher failed")
print("%.3f" % (t1 - t0))
PY
}

# broker_only LINESFILE|SEALEDFILE KIND: M messages through the broker alone, from kit1's host
# with kit1's certificate to mosquitto_sub -C M on the reader's host; KIND "pub" sends the lines
# of the file with mosquitto_pub -l, "kit" the sealed readings with bench_relay_kit. Prints the
# seconds from the publisher's start until the subscriber has them all, and the CPU seconds the
# subscriber used (the shell's times in the subshell that waits for it).
broker_only() {
	: >"$T/sub.out"
	(
		# shellcheck disable=SC2046 # the options are words without spaces
		on "$(host_of reader)" stdbuf -oL mosquitto_sub $(mqtt_tls reader) -d -q 1 -C "$M" \
			-W 120 -t "$RAW_TOPIC" >"$T/sub.out" 2>&1
		_s=$?
		times >"$T/sub.cpu"
		exit $_s
	) &
	_sub=$!
	wait_until 10 grep -q SUBACK "$T/sub.out" || fail "mosquitto_sub did not subscribe: $(tail -n 3 "$T/sub.out")"
	t0=$(date +%s.%N)
	if [ "$2" = pub ]; then
		# shellcheck disable=SC2046
		on 2 mosquitto_pub $(mqtt_tls kit1) -q 1 -M $INFLIGHT -t "$RAW_TOPIC" -l <"$1" ||
			fail "mosquitto_pub -l failed"
	else
		on 2 "$BENCH_DIR/bench_relay_kit" "$BROKER_IP" "$BROKER_PORT" "$T/kit1/ca.crt" \
			"$T/kit1/kit1.crt" "$T/kit1/kit1.key" "$RAW_TOPIC" "$1" $INFLIGHT >/dev/null ||
			fail "bench_relay_kit failed"
	fi
	wait "$_sub" || fail "mosquitto_sub got $(grep -c 'PUBLISH' "$T/sub.out") of $M"
	t1=$(date +%s.%N)
	# times: "0m1.230000s 0m0.450000s" (user, system), the children's on the second line
	tail -n 1 "$T/sub.cpu" | awk -v t0="$t0" -v t1="$t1" '{
		for (i = 1; i <= 2; i++) { split($i, p, "m"); sub(/s$/, "", p[2]); c += 60 * p[1] + p[2] }
		printf "%.3f %.3f\n", t1 - t0, c }'
}

# cpu_ticks PID...: the CPU time (user and system, in clock ticks) the processes have used.
cpu_ticks() {
	for _p in "$@"; do cat "/proc/$_p/stat" 2>/dev/null || true; done |
		awk '{ n += $14 + $15 } END { print n + 0 }'
}

# ingest_rounds LABEL FIRSTSEQ PIDS SOCKET...: ROUNDS rounds, each M sealed readings to the
# relays of the SOCKETs (their processes PIDS, quoted), mosquitto_pub -l and bench_relay_kit to
# mosquitto_sub; the seconds of each in $T/LABEL.times as lines "WHAT SECONDS", and the CPU
# ticks the relays and the broker used in each relay round as "cpu RELAYS BROKER".
ingest_rounds() {
	_label=$1
	_seq=$2
	_pids=$3
	shift 3
	: >"$T/$_label.times"
	_base=0
	for _s in "$@"; do
		_base=$((_base + $(ctl "$_s" '{"v":1,"verb":"status"}' | json_get '["stored"]')))
	done
	for _r in $(seq 1 $ROUNDS); do
		SIZE=$(seal "$T/sealed" "$_seq" "$M") || fail "cannot seal readings"
		_seq=$((_seq + M))
		_base=$((_base + M))
		# shellcheck disable=SC2086 # a list of pids
		_c0=$(cpu_ticks $_pids)
		_b0=$(cpu_ticks "$BROKER_PID")
		_t=$(timed_ingest "$_base" "$@" -- ip netns exec "$NS_PREFIX-h2" \
			"$BENCH_DIR/bench_relay_kit" "$BROKER_IP" "$BROKER_PORT" "$T/kit1/ca.crt" \
			"$T/kit1/kit1.crt" "$T/kit1/kit1.key" "$KIT_TOPIC" "$T/sealed" $INFLIGHT) ||
			fail "round $_r: $_t"
		echo "relay $_t" >>"$T/$_label.times"
		# shellcheck disable=SC2086
		echo "cpu $(($(cpu_ticks $_pids) - _c0)) $(($(cpu_ticks "$BROKER_PID") - _b0))" >>"$T/$_label.times"
		[ -f "$T/lines" ] ||
			awk -v n="$M" -v s="$SIZE" 'BEGIN { l = sprintf("%*s", s, ""); gsub(/ /, "x", l); for (i = 0; i < n; i++) print l }' >"$T/lines"
		echo "broker $(broker_only "$T/lines" pub)" >>"$T/$_label.times"
		echo "kit $(broker_only "$T/sealed" kit)" >>"$T/$_label.times"
	done
}

# ingest_report LABEL WHO: the best round of each, with the range, and the ratio.
ingest_report() {
	awk -v m="$M" -v rounds=$ROUNDS -v size="$SIZE" -v who="$2" -v raw="${3:-}" -v rawname="${4:-raw SQLite batched inserts (bench_relay_store, bare, 1,000 a transaction)}" -v hz="$(getconf CLK_TCK)" -v cores="$(nproc)" '
		$1 == "cpu" { relay_cpu += $2; broker_cpu += $3; next }
		$1 == "kit" { sub_cpu += $3 }
		{ t = $2; if (!($1 in best) || t < best[$1]) best[$1] = t; if (t > worst[$1]) worst[$1] = t }
		END {
			r = m / best["relay"]; b = m / best["broker"]; k = m / best["kit"]
			printf "%s ingest, %d QoS 1 sealed readings of %d bytes a round: %.0f readings/s committed (best of %d rounds, %.0f-%.0f)\n",
				who, m, size, r, rounds, m / worst["relay"], r
			printf "  ceiling, the broker alone: mosquitto_pub -l -M 100 to mosquitto_sub -q 1 -C %d, same hosts: %.0f msgs/s (%.0f-%.0f)  ratio %.0f%%\n",
				m, b, m / worst["broker"], b, 100 * r / b
			printf "  the relay'"'"'s publisher (bench_relay_kit, the same sealed readings) to that mosquitto_sub: %.0f msgs/s (%.0f-%.0f); the relay at %.0f%% of it\n",
				k, m / worst["kit"], k, 100 * r / k
			printf "  CPU in the relay rounds, per reading: the relay%s %.1f us, the broker %.1f us (%d cores shared by broker, publisher, relay and this script'"'"'s poll)\n",
				who ~ /two/ ? "s" : "", 1e6 * relay_cpu / hz / (m * rounds), 1e6 * broker_cpu / hz / (m * rounds), cores
			printf "  CPU per message of the bare subscriber (mosquitto_sub -d, printing each, in the bench_relay_kit rounds): %.1f us; the relay%s CPU at %.0f%% of it\n",
				1e6 * sub_cpu / (m * rounds), who ~ /two/ ? "s'"'"'" : "'"'"'s", 100 * (relay_cpu / hz) / sub_cpu
			if (raw != "")
				printf "  %s: %.0f rows/s; the relay%s at %.0f%% of it\n",
					rawname, raw, who ~ /two/ ? "s" : "", 100 * r / raw
		}' "$T/$1.times"
}

# --- SQLite, one relay -------------------------------------------------------------------------
RELAY1_SOCK=$T/relay1/run/relayd/relayd.sock
ingest_rounds sqlite 1 "$(relay_pid relay1)" "$RELAY1_SOCK"
[ "$(rfield relay1 relay readings)" = "$N" ] || fail "relay1 stores $(rfield relay1 relay readings), not $N"
# The store's figures: run.sh's run of bench_relay_store, or one of our own.
STORE_OUT=${RELAY_STORE_OUT:-}
[ -n "$STORE_OUT" ] || STORE_OUT=$(BENCH_TMP=/tmp "$BENCH_DIR/bench_relay_store") ||
	fail "bench_relay_store failed"
RAW=$(echo "$STORE_OUT" | awk '/^relay store insert/ { for (i = 1; i <= NF; i++) if ($i == "rows/s") print $(i - 1) }')
ingest_report sqlite "relay (SQLite)" "$RAW"
# Each commit is receipted to the kit: an RSA-2048 signature per (kit, stream) and commit.
echo "  receipts the relay signed and sent (one per commit here: a single kit and stream): $(rfield relay1 status receipts) for $N readings"

# delivery WHO RELAY SCAN STORE: drwho catches up on everything RELAY queues for it, timed, with
# the CPU the doctor's tool and the relays used; then SCAN (a command printing the rows, one a
# line) timed as the ceiling. STORE: the store's own catch-up rate (queue + mark delivered, no
# HTTP), when known.
delivery() {
	_who=$1
	_relay=$2
	shift 2
	# shellcheck disable=SC2086 # a list of pids
	_r0=$(cpu_ticks $RELAY_PIDS)
	_t0=$(date +%s.%N)
	# The subshell's children are the fetch alone: times' second line is their CPU time (times
	# run in a pipe would be a subshell of its own, with no children).
	_dc=$(on "$(host_of drwho)" iotsec-doctor -c "$T/drwho/iotsec.conf" fetch --dir "$T/drwho" \
		--relay "$(relay_url "$_relay")" --relay-name "$_relay" --format json \
		>/dev/null 2>"$T/fetch.err" && times) ||
		fail "iotsec-doctor fetch: $(tail -n 3 "$T/fetch.err")"
	_tf=$(echo "$(date +%s.%N) $_t0" | awk '{ printf "%.3f\n", $1 - $2 }')
	# shellcheck disable=SC2086
	_rc=$(($(cpu_ticks $RELAY_PIDS) - _r0))
	_u=$(rfield "$_relay" relay undelivered)
	[ "$_u" = 0 ] || fail "$_relay still queues $_u readings after the fetch"
	_t0=$(date +%s.%N)
	_rows=$("$@" 2>/dev/null | wc -l)
	_ts=$(echo "$(date +%s.%N) $_t0" | awk '{ printf "%.3f\n", $1 - $2 }')
	awk -v who="$_who" -v n="$N" -v f="$_tf" -v s="$_ts" -v rows="$_rows" -v scan="$SCAN_NAME" \
		-v store="${STORE_RATE:-}" -v store_name="$STORE_NAME" -v rc="$_rc" -v hz="$(getconf CLK_TCK)" -v dc="$(echo "$_dc" | tail -n 1)" 'BEGIN {
		# "0m1.230000s 0m0.450000s": user and system
		split(dc, d, " ")
		for (i = 1; i <= 2; i++) { split(d[i], p, "m"); sub(/s$/, "", p[2]); d[i] = 60 * p[1] + p[2] }
		printf "%s delivery, a doctor catching up on %d readings (iotsec-doctor fetch --format json over HTTPS: each opened, checked, printed, then marked delivered): %.2f s, %.0f readings/s\n", who, n, f, n / f
		printf "  ceiling, a bare scan of the same rows (%s, %d rows): %.2f s, %.0f rows/s  ratio %.1f%%\n", scan, rows, s, rows / s, 100 * (n / f) / (rows / s)
		if (store != "")
			printf "  the store'"'"'s own catch-up (%s: queue 1,000 + mark delivered, no HTTP): %.0f readings/s; the fetch at %.0f%% of it\n", store_name, store, 100 * (n / f) / store
		printf "  CPU per reading: the relay%s %.1f us, the doctor'"'"'s tool %.1f us\n", who ~ /two/ ? "s" : "", 1e6 * rc / hz / n, 1e6 * (d[1] + d[2]) / n
	}'
}
SCAN_NAME="sqlite3 CLI -quote on the relay's file"
STORE_NAME=bench_relay_store
RELAY_PIDS=$(relay_pid relay1)
STORE_RATE=$(echo "$STORE_OUT" | awk '/^relay store delivery of [0-9]+ \(queue/ { for (i = 1; i <= NF; i++) if ($i == "readings/s") { print $(i - 1); exit } }')
# -quote: each blob whole, in hex, and each row one line (list mode would print the blobs raw, cut
# at their first zero byte and split at a newline byte).
delivery "relay (SQLite)" relay1 sqlite3 -readonly -quote "$T/relay1/state/relay.db" \
	'SELECT id, stream, seq, emergency, received_ms, data FROM readings'

# --- PostgreSQL, two relays ----------------------------------------------------------------------
if ! pg_find; then
	echo "relay (PostgreSQL, two relays): skipped (PostgreSQL is not installed: apt-get install postgresql)"
	exit 0
fi
stop "$(relay_pid relay1)"
# relay1's persistent session would keep every reading of what follows queued at the broker.
mqtt_sub relay1 -t "iotsec/$HOME_NAME/none" -W 1 >/dev/null 2>&1 || true
start_pg "$T/pg"
for i in 2 3; do
	relay $((4 + 2 * i)) relay$i "store = \"postgresql\"; pg = \"$PG_CONNINFO\"; share = \"bench\";"
	run_relay relay$i
done
for i in 2 3; do
	wait_until 10 relay_ready relay$i || fail "relay$i not connected: $(relay_call relay$i status)"
done
# Both subscribed (the subscription follows the connection at once), then a new stream for
# kit1 filed in the shared database.
sleep 0.5
grant_via relay2 drwho kit1
rm -f "$T/lines"
ingest_rounds pg 1 "$(relay_pid relay2) $(relay_pid relay3)" "$T/relay2/run/relayd/relayd.sock" "$T/relay3/run/relayd/relayd.sock"
stored=$(rfield relay2 relay readings)
[ "$stored" = "$N" ] || fail "PostgreSQL holds $stored readings, not $N"
# bench_relay_pg's figures when run.sh ran it (it takes a server of its own and over a minute).
RAW_PG=$(echo "${RELAY_PG_OUT:-}" | awk '/^relay store \(postgresql\) insert [0-9]/ { for (i = 1; i <= NF; i++) if ($i == "rows/s") { print $(i - 1); exit } }')
ingest_report pg "two relays (PostgreSQL, one shared subscription)" "$RAW_PG" "raw PostgreSQL batched inserts (bench_relay_pg, bare libpq, 1,000 a transaction, fsync on)"
echo "  shared between them: relay2 stored $(rfield relay2 status stored), relay3 $(rfield relay3 status stored); receipts $(rfield relay2 status receipts) and $(rfield relay3 status receipts)"
SCAN_NAME=psql
RELAY_PIDS="$(relay_pid relay2) $(relay_pid relay3)"
STORE_RATE=$(echo "${RELAY_PG_OUT:-}" | awk '/^relay store \(postgresql\) delivery of [0-9]+ \(queue/ { for (i = 1; i <= NF; i++) if ($i == "readings/s") { print $(i - 1); exit } }')
STORE_NAME=bench_relay_pg
delivery "two relays (PostgreSQL)" relay2 "$PG_BIN/psql" -X -q -A -t -h "$PG_DIR" -U "$PG_USER" \
	-d "$PG_DB" -c 'SELECT id, stream, seq, emergency, received_ms, data FROM readings'
