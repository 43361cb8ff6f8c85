# Shared by the integration tests: source it first. It makes a scratch directory, starts real
# daemons, and removes everything on exit, even when a test fails or is interrupted.
set -eu

: "${IOTSEC_BIN:?run integration tests through 'make check' (IOTSEC_BIN unset)}"
PATH="$IOTSEC_BIN:$PATH"
# This folder: scripts that source us from elsewhere set it first.
IT_DIR=${IT_DIR:-$(dirname "$0")}
# Debian's Python, with Debian's python3-cryptography (scripts/deps.sh), whatever else is on PATH.
PY=/usr/bin/python3
T=$(mktemp -d /tmp/iotsec-it.XXXXXX)
PIDS=""
DAEMONS="" # every daemon started, PIDS or not: each is waited for, and its log read, at the end
STARTED="" # PID:DEVICE/DAEMON for each of them, so that a failure can name the ones that died

# sanitizer_reports: under make check SANITIZE=1 a daemon's sanitizer report ends up in its log,
# where no assertion looks: any report fails the test, whatever else it checked.
sanitizer_reports() {
	_found=$(grep -l -E "ERROR: (Address|Leak)Sanitizer|runtime error:" "$T"/*/*.log "$T"/*.log \
		2>/dev/null || true)
	[ -z "$_found" ] && return 0
	for _f in $_found; do
		printf -- '--- sanitizer report in %s\n' "${_f#"$T"/}" >&2
		grep -A 20 -E "ERROR: (Address|Leak)Sanitizer|runtime error:" "$_f" | head -n 40 >&2
	done
	return 1
}

# cleanup [STATUS]: the test's exit status, as the EXIT trap found it.
cleanup() {
	_status=${1:-$?}
	for p in $PIDS $DAEMONS; do kill "$p" 2>/dev/null || true; done
	# Waited for, so that what a daemon says as it exits (a leak report) is in its log.
	for p in $PIDS $DAEMONS; do wait "$p" 2>/dev/null || true; done
	if ! sanitizer_reports && [ "$_status" -eq 0 ]; then
		printf 'FAIL: a daemon'"'"'s sanitizer report (above)\n' >&2
		_status=1
	fi
	rm -rf "$T"
	exit $_status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '== %s\n' "$*"; }
# fail MESSAGE: stop the test, showing the end of every daemon's log.
fail() {
	printf 'FAIL: %s\n' "$*" >&2
	for _s in $STARTED; do
		kill -0 "${_s%%:*}" 2>/dev/null && continue
		_st=0
		wait "${_s%%:*}" 2>/dev/null || _st=$?
		# Stopped on purpose or not, it is gone: beyond 128 a signal ended it (139 is SIGSEGV).
		printf -- '--- %s is not running (exit status %s)\n' "${_s#*:}" "$_st" >&2
	done
	for _f in "$T"/*/*.log; do
		[ -f "$_f" ] || continue
		printf -- '--- %s\n' "${_f#"$T"/}" >&2
		tail -n 12 "$_f" >&2
	done
	exit 1
}

# wait_until SECONDS COMMAND...: poll every 0.1 s until COMMAND succeeds; fail after SECONDS.
wait_until() {
	_limit=$(($1 * 10))
	shift
	_i=0
	until "$@" >/dev/null 2>&1; do
		_i=$((_i + 1))
		[ $_i -lt $_limit ] || return 1
		sleep 0.1
	done
}

# write_config FILE DEVDIR CADIR [extra libconfig text]: a configuration for one device whose
# certificate and key are DEVDIR/NAME.{crt,key}, NAME being DEVDIR's last component.
write_config() {
	_name=$(basename "$2")
	cat >"$1" <<CONF
device = {
  name = "$_name";
  cert = "$2/$_name.crt";
  key = "$2/$_name.key";
  ca = "$3/ca.crt";
  crl = "$3/crl.pem";
  state_dir = "$2/state";
  run_dir = "$2/run";
};
${4:-}
CONF
}

# start DAEMON CONFIG: run iotsec-DAEMON in the background, its log in CONFIG's directory.
start() {
	"$IOTSEC_BIN/iotsec-$1" -c "$2" -v >"$(dirname "$2")/$1.log" 2>&1 &
	PIDS="$PIDS $!"
	DAEMONS="$DAEMONS $!"
	STARTED="$STARTED $!:$(basename "$(dirname "$2")")/$1"
	LAST_PID=$!
}

# stop PID: end a daemon started by this script and wait until it is gone, so that its lock on
# the run directory is free for the next one.
stop() {
	kill "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

# json_get FILTER: a field of the JSON document on stdin, via python3 (always on Debian).
json_get() {
	$PY -c 'import json,sys; d=json.load(sys.stdin); print(eval("d"+sys.argv[1]))' "$1"
}

# ctl SOCKET JSON: send one control request, print the one-line reply (see ctl.py).
ctl() { $PY "$IT_DIR/ctl.py" "$1" "$2"; }

# one_device [EXTRA]: home "smith" in $CA with one node, pi1, in $DEV: the daemons of one Pi,
# which talk over Unix sockets only. Its configuration keeps dictd's files in $DEV, plus the
# libconfig text EXTRA. SOCK is its dictd socket.
one_device() {
	CA=$T/ca
	DEV=$T/pi1
	SOCK=$DEV/run/dictd/dictd.sock
	iotsec-pki init --dir "$CA" --home smith >/dev/null 2>&1 || fail "pki init"
	iotsec-pki enrol --dir "$CA" --device pi1 --role node --out "$DEV" >/dev/null 2>&1 ||
		fail "enrol pi1"
	write_config "$DEV/iotsec.conf" "$DEV" "$CA" "dictd = { path = \"$DEV/keys.dict\"; key_file = \"$DEV/dict.key\"; };
${1:-}"
}

# unlocked: pi1's dictd serves lookups (certd has said the certificate is valid).
unlocked() { ctl "$SOCK" '{"v":1,"verb":"status"}' | grep -q '"locked":false'; }

# --- Hosts: network namespaces on one bridge (SPEC 10, "local containers") ---------------------
# The bridge lives in a namespace of its own, so no packet ever reaches a real interface. Host i
# is namespace $NS_PREFIX-hi with address $NET.i on interface eth0.
NET=10.213.0
NS_PREFIX=iot$$
NS_BRIDGE=$NS_PREFIX-br
HOSTS=""

# need_netns: fail clearly unless we are root with a working `ip netns`.
need_netns() {
	[ "$(id -u)" -eq 0 ] || fail "multi-host tests need root (run 'make check' as root, or INTEGRATION=0 to skip them on purpose)"
	command -v ip >/dev/null || fail "multi-host tests need iproute2's ip (apt-get install iproute2)"
	ip netns add "$NS_BRIDGE" 2>"$T/netns.err" || fail "cannot create a network namespace: $(cat "$T/netns.err")"
	ip -n "$NS_BRIDGE" link add br0 type bridge
	ip -n "$NS_BRIDGE" link set br0 up
	ip -n "$NS_BRIDGE" link set lo up
}

# add_host I: namespace $NS_PREFIX-hI joined to the bridge with address $NET.I/24.
add_host() {
	_ns=$NS_PREFIX-h$1
	ip netns add "$_ns"
	ip link add "v$$h$1" netns "$_ns" type veth peer name "b$$h$1" netns "$NS_BRIDGE"
	ip -n "$_ns" link set "v$$h$1" name eth0
	ip -n "$_ns" addr add "$NET.$1/24" broadcast "$NET.255" dev eth0
	ip -n "$_ns" link set eth0 up
	ip -n "$_ns" link set lo up
	ip -n "$NS_BRIDGE" link set "b$$h$1" master br0 up
	HOSTS="$HOSTS $1"
}

# on I COMMAND...: run COMMAND inside host I.
on() {
	_h=$1
	shift
	ip netns exec "$NS_PREFIX-h$_h" "$@"
}

# start_on I DAEMON CONFIG: start iotsec-DAEMON inside host I, its log beside CONFIG.
start_on() {
	ip netns exec "$NS_PREFIX-h$1" "$IOTSEC_BIN/iotsec-$2" -c "$3" -v \
		>>"$(dirname "$3")/$2.log" 2>&1 &
	PIDS="$PIDS $!"
	DAEMONS="$DAEMONS $!"
	STARTED="$STARTED $!:$(basename "$(dirname "$3")")/$2"
	LAST_PID=$!
}

# respawn LOG COMMAND...: run COMMAND in the background, its output added to LOG, and run it again
# whenever it exits non-zero (not when a signal ended it), as a unit's Restart=on-failure does: a
# daemon exits 75 to take up a replaced certificate. SIGTERM to the loop ends the command too.
respawn() {
	_log=$1
	shift
	sh -c '
		trap "kill \$child 2>/dev/null; wait \$child; exit 0" TERM INT
		while :; do
			"$@" &
			child=$!
			wait $child && exit 0
			st=$?
			[ $st -lt 128 ] || exit $st
			echo "== respawn: exit status $st, starting again"
			sleep 0.2
		done' respawn "$@" >>"$_log" 2>&1 &
	PIDS="$PIDS $!"
	DAEMONS="$DAEMONS $!"
	STARTED="$STARTED $!:${_log#"$T"/}"
}

# supervise NAME DAEMON: as run, but under respawn.
supervise() {
	respawn "$T/$1/$2.log" ip netns exec "$NS_PREFIX-h$(host_of "$1")" "$IOTSEC_BIN/iotsec-$2" \
		-c "$T/$1/iotsec.conf" -v
}

remove_hosts() {
	for _h in $HOSTS; do
		for _p in $(ip netns pids "$NS_PREFIX-h$_h" 2>/dev/null); do kill "$_p" 2>/dev/null || true; done
		ip netns del "$NS_PREFIX-h$_h" 2>/dev/null || true
	done
	ip netns del "$NS_BRIDGE" 2>/dev/null || true
}

# cleanup_hosts_then_files [STATUS]: the test's exit status, as the EXIT trap found it.
cleanup_hosts_then_files() {
	_st=${1:-$?}
	for p in $PIDS; do kill "$p" 2>/dev/null || true; done
	remove_hosts
	cleanup "$_st"
}
trap cleanup_hosts_then_files EXIT

# --- A home of devices on hosts -----------------------------------------------------------------
# Timings short enough for tests that run in seconds; every one is a configuration setting.
TEST_TIMINGS='certd = { interval = 2; };
electd = { tries = 2; try_ms = 200; heartbeat_ms = 300; timeout_ms = 1500; hold_ms = 3000; };
keyd = { collect_ms = 1500; announce_ms = 500; };'
DELTA_T=3

# make_home [HOME]: the home CA in $T/ca.
make_home() {
	iotsec-pki init --dir "$T/ca" --home "${1:-testhome}" >/dev/null 2>&1 || fail "pki init"
}

# device I NAME ROLE: enrol NAME, make host I for it with a configuration in $T/NAME/iotsec.conf.
device() {
	iotsec-pki enrol --dir "$T/ca" --device "$2" --role "$3" --out "$T/$2" >/dev/null 2>&1 ||
		fail "enrol $2"
	host_config "$1" "$2"
}

# host_config I NAME: host I and a configuration for the files already in $T/NAME.
host_config() {
	add_host "$1"
	write_config "$T/$2/iotsec.conf" "$T/$2" "$T/ca" "net = { broadcast = \"$NET.255\"; delta_t = $DELTA_T; };
dictd = { path = \"$T/$2/state/keys.dict\"; key_file = \"$T/$2/dict.key\"; };
$TEST_TIMINGS"
	eval "HOST_$(echo "$2" | tr -c 'a-zA-Z0-9\n' _)=$1"
}

# host_of NAME: the host number of device NAME.
host_of() { eval "echo \$HOST_$(echo "$1" | tr -c 'a-zA-Z0-9\n' _)"; }

# run NAME DAEMON: start iotsec-DAEMON for device NAME on its host.
run() { start_on "$(host_of "$1")" "$2" "$T/$1/iotsec.conf"; }

# field NAME DAEMON KEY: one field of a daemon's status, "" when it does not answer.
field() {
	ctl "$T/$1/run/$2/$2.sock" '{"v":1,"verb":"status"}' 2>/dev/null | json_get "[\"$3\"]" 2>/dev/null || true
}

# follows NAME CONTROLLER: NAME's electd names CONTROLLER.
follows() { [ "$(field "$1" electd controller)" = "$2" ]; }

# with_certd NAME...: certd for each device, running until the hosts go (not in PIDS, so tests
# that stop and start other daemons in rounds leave it be): no daemon takes part in the home
# before certd says its certificate is valid.
with_certd() {
	_keep=$PIDS
	for _n in "$@"; do run "$_n" certd; done
	PIDS=$_keep
	for _n in "$@"; do
		wait_until 5 test -S "$T/$_n/run/certd/certd.sock" || fail "certd of $_n did not start"
	done
}

# run_all NAME: every daemon of device NAME, in the order systemd would start them.
run_all() {
	for _d in certd dictd electd keyd; do run "$1" "$_d"; done
}

# epoch NAME: the pool epoch of NAME's keyd (0 before its first ring, "" when not answering).
epoch() { field "$1" keyd epoch; }

# same_epoch NAME...: all of them hold a ring of the first one's epoch (and it is not 0).
same_epoch() {
	_e=$(epoch "$1")
	[ -n "$_e" ] && [ "$_e" -gt 0 ] || return 1
	for _n in "$@"; do
		[ "$(epoch "$_n")" = "$_e" ] && [ "$(field "$_n" keyd ring_size)" -gt 0 ] || return 1
	done
}

# send FROM TO TEXT: FROM's keyd sends TEXT to TO under their pairwise key.
send_msg() {
	ctl "$T/$1/run/keyd/keyd.sock" "{\"v\":1,\"verb\":\"send\",\"peer\":\"$2\",\"text\":\"$3\"}"
}

# received TO TEXT: TO's keyd has received TEXT.
received() {
	ctl "$T/$1/run/keyd/keyd.sock" '{"v":1,"verb":"inbox"}' | grep -qF "\"text\":\"$2\""
}
