# Shared by the sensord tests (130-135; the daemon's own 122-124 have theirs): source it after
# common.sh. A home of real daemons on hosts (common.sh), its broker (mqtt-common.sh, which this
# file sources) and iotsec-sensord on the kits, what sensord shows through its control socket and
# iotsecctl, the clear header of the sealed readings a client of the broker captures (sealed.py),
# and a doctor (iotsec-doctor).

. "$IT_DIR/mqtt-common.sh"

HOME_NAME=testhome
# Epoch 1 of the stream keys began a minute ago: epochs stay small numbers in the logs. A test
# that wants another schedule sets these before its first kit.
STREAM_START=$(($(date +%s) - 60))
STREAM_INTERVAL=3600
# A reading every half second; a resynchronizing kit asks three times a second.
SENSORD_FAST='interval_ms = 500; resync_ms = 300; spool_sync_ms = 50;'

# sensord_home: the home CA and its broker, on host 9, running.
sensord_home() {
	make_home "$HOME_NAME"
	broker_host 9
	broker_start
}

# settings_merge BASE SETTINGS: BASE's settings ("name = value; ...") with those of SETTINGS
# added or put in their place (libconfig refuses a setting given twice).
settings_merge() {
	_base=$1
	for _s in $(echo "$2" | tr ';' '\n' | sed -n 's/^ *\([a-z_]*\) *=.*/\1/p'); do
		_base=$(echo "$_base" | sed "s/ *$_s = [^;]*;//")
	done
	echo "$_base $2"
}

# kit I NAME ROLE [SETTINGS]: device NAME on host I (common.sh's `device`) with a sensord group
# (the broker's address, SENSORD_FAST, then SETTINGS) and the stream schedule.
kit() {
	device "$1" "$2" "$3"
	printf 'stream = { start = %s; interval_s = %s; };\nsensord = { %s };\n' \
		"$STREAM_START" "$STREAM_INTERVAL" \
		"$(settings_merge "broker = \"$BROKER_IP\"; $SENSORD_FAST" "${4:-}")" \
		>>"$T/$2/iotsec.conf"
}

# run_sensord NAME: start NAME's sensord; its pid in SENSORD_<NAME>.
run_sensord() {
	run "$1" sensord
	eval "SENSORD_$(echo "$1" | tr -c 'a-zA-Z0-9\n' _)=\$LAST_PID"
}
sensord_pid() { eval "echo \$SENSORD_$(echo "$1" | tr -c 'a-zA-Z0-9\n' _)"; }
# stop_sensord NAME: end NAME's sensord and wait until it is gone (its faketime wrapper too).
stop_sensord() {
	_p=$(sensord_pid "$1")
	_w=$(eval "echo \${FAKETIME_$(echo "$1" | tr -c 'a-zA-Z0-9\n' _):-}")
	if [ -n "$_w" ]; then
		kill "$_p" 2>/dev/null || true
		wait "$_w" 2>/dev/null || true
		while kill -0 "$_p" 2>/dev/null; do sleep 0.1; done
		eval "FAKETIME_$(echo "$1" | tr -c 'a-zA-Z0-9\n' _)="
	else
		stop "$_p"
	fi
}

# run_sensord_at NAME TIME: NAME's sensord under faketime, its clock starting at TIME (faketime's
# -f form, '@1970-01-01 00:00:00'); monotonic time stays true, and so do the daemon's timers
# (faketime-timers.c, preloaded first). faketime forks: the daemon is its child, whose pid is
# SENSORD_<NAME> (and the wrapper's FAKETIME_<NAME>).
run_sensord_at() {
	command -v faketime >/dev/null || fail "no faketime (scripts/deps.sh test installs it)"
	# sd-event's timers need faketime-timers.c ahead of libfaketime (it says why).
	if [ ! -f "$T/faketime-timers.so" ]; then
		${CC:-cc} -shared -fPIC -o "$T/faketime-timers.so" "$IT_DIR/faketime-timers.c" \
			2>"$T/faketime-timers.err" || fail "faketime-timers.c: $(cat "$T/faketime-timers.err")"
	fi
	# Under ASan the preloaded libraries come before the sanitizer's runtime: allowed here.
	ip netns exec "$NS_PREFIX-h$(host_of "$1")" env FAKETIME_DONT_FAKE_MONOTONIC=1 \
		LD_PRELOAD="$T/faketime-timers.so" \
		ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
		faketime -f "$2" "$IOTSEC_BIN/iotsec-sensord" -c "$T/$1/iotsec.conf" -v \
		>>"$T/$1/sensord.log" 2>&1 &
	_w=$!
	PIDS="$PIDS $_w"
	DAEMONS="$DAEMONS $_w"
	# faketime's first child may be a short-lived date(1) reading the time given: wait for the
	# one that runs (or is about to exec) sensord, else $_c may be empty or that date.
	wait_until 5 pgrep -P "$_w" -f iotsec-sensord || fail "faketime started no sensord for $1"
	_c=$(pgrep -P "$_w" -f iotsec-sensord)
	PIDS="$PIDS $_c"
	STARTED="$STARTED $_w:$1/sensord(faketime)"
	eval "SENSORD_$(echo "$1" | tr -c 'a-zA-Z0-9\n' _)=$_c"
	eval "FAKETIME_$(echo "$1" | tr -c 'a-zA-Z0-9\n' _)=$_w"
}

# stop_device NAME: end every daemon this test started for NAME (sensord, under faketime too)
# and wait until they are gone.
stop_device() {
	for _p in $(pgrep -f "iotsec-[a-z]* -c $T/$1/iotsec.conf" || true); do
		kill "$_p" 2>/dev/null || true
	done
	for _p in $PIDS $DAEMONS; do
		kill -0 "$_p" 2>/dev/null || wait "$_p" 2>/dev/null || true
	done
	wait_until 10 sh -c "! pgrep -f 'iotsec-[a-z]* -c $T/$1/iotsec.conf'" || fail "the daemons of $1 do not stop"
}

# run_kit NAME: every daemon of NAME, sensord last, as systemd starts them.
run_kit() {
	run_all "$1"
	run_sensord "$1"
}

# sensord_call NAME JSON: one reply of NAME's sensord ("" when it does not answer).
sensord_call() { ctl "$T/$1/run/sensord/sensord.sock" "$2" 2>/dev/null || true; }
sstatus() { sensord_call "$1" '{"v":1,"verb":"status"}'; }
# sfield NAME KEY: one field of NAME's sensord status ("" when it does not answer).
sfield() { field "$1" sensord "$2"; }

# sensord_ready NAME: connected to the broker, holding a group stream, on the home's time.
sensord_ready() {
	sstatus "$1" | $PY -c 'import json, sys
s = json.load(sys.stdin)
sys.exit(not (s["broker"] == "connected" and s["group_start"] > 0 and s["sync"] == "synced"))'
}

# sync_is NAME STATE: NAME's sensord says sync STATE (synced, resyncing, own-clock).
sync_is() { [ "$(sfield "$1" sync)" = "$2" ]; }
# granted NAME DOCTOR: NAME's sensord holds DOCTOR's grant.
granted() { [ "$(sfield "$1" doctor)" = "$2" ]; }

# home_ready NAME...: rings delivered to all, and each one's sensord ready.
home_ready() {
	wait_until 40 same_epoch "$@" || fail "rings not delivered: $(for n in "$@"; do printf '%s=%s ' "$n" "$(epoch "$n")"; done)"
	for _n in "$@"; do
		wait_until 20 sensord_ready "$_n" || fail "sensord of $_n not ready: $(sstatus "$_n")"
	done
}

# readings NAME: the readings NAME's sensord opened, as iotsecctl readings --json gives them,
# one JSON object a line (oldest first).
readings() {
	iotsecctl -c "$T/$1/iotsec.conf" readings --json 2>"$T/readings.err" | $PY -c 'import json, sys
text = sys.stdin.read()
try:
    d = json.loads(text)
    rows = d["readings"] if isinstance(d, dict) else d
except ValueError:
    rows = [json.loads(l) for l in text.splitlines() if l.strip()]
for r in rows:
    print(json.dumps(r, sort_keys=True))'
}

# count_readings NAME DEVICE SENSOR [VALUE]: how many of NAME's readings came from DEVICE's
# SENSOR (with VALUE).
count_readings() {
	readings "$1" | $PY -c 'import json, sys
dev, sensor, value = sys.argv[1], sys.argv[2], sys.argv[3]
n = 0
for l in sys.stdin:
    r = json.loads(l)
    if r["device"] == dev and r["sensor"] == sensor and (value == "" or r["value"] == float(value)):
        n += 1
print(n)' "$2" "$3" "${4:-}"
}
# opened NAME DEVICE SENSOR [VALUE]: NAME opened at least one such reading.
opened() { [ "$(count_readings "$@")" -gt 0 ]; }

# seqs_of NAME DEVICE: the seqs of DEVICE's readings NAME holds, in NAME's order, one a line.
seqs_of() {
	readings "$1" | $PY -c 'import json, sys
for l in sys.stdin:
    r = json.loads(l)
    if r["device"] == sys.argv[1]:
        print(r["seq"])' "$2"
}

# refused_from NAME DEVICE: readings and messages of DEVICE that NAME's sensord refused.
refused_from() {
	sstatus "$1" | $PY -c 'import json, sys
print(json.load(sys.stdin).get("refused_by", {}).get(sys.argv[1], 0))' "$2" 2>/dev/null || echo 0
}

# headers FILE: the clear headers of the sealed readings in FILE (lines "TOPIC HEX" as
# mosquitto_sub -F '%t %x' prints them, other lines skipped): "TOPIC DEVICE KIND FLAGS EPOCH
# SEQ TIME STREAM" a line.
headers() { $PY "$IT_DIR/sealed.py" <"$1"; }

# write_csv FILE ROW...: a replay file, one row an argument.
write_csv() {
	_f=$1
	shift
	printf '%s\n' "$@" >"$_f"
}

# --- A doctor (iotsec-doctor) ----------------------------------------------------------------------
# doctor I NAME: a doctor's directory $T/NAME made by iotsec-doctor init, its request certified
# by the home CA with the doctor role (iotsec-pki enrol --csr), and host I for its MQTT clients
# (mqtt_pub NAME works: $T/NAME/NAME.crt and .key). DOCTOR_CONF gives the home's schedule.
doctor() {
	_d=$T/$2
	iotsec-doctor init --dir "$_d" --name "$2" --home "$HOME_NAME" >"$T/$2-init.log" 2>&1 ||
		fail "iotsec-doctor init: $(cat "$T/$2-init.log")"
	iotsec-pki enrol --dir "$T/ca" --device "$2" --role doctor --csr "$_d/doctor.csr" \
		--out "$_d/enrol" >"$T/$2-enrol.log" 2>&1 || fail "enrol doctor $2: $(cat "$T/$2-enrol.log")"
	cp "$_d/enrol/$2.crt" "$_d/doctor.crt"
	cp "$_d/enrol/ca.crt" "$_d/ca.crt"
	cp "$_d/enrol/$2.crt" "$_d/$2.crt"
	ln -sf doctor.key "$_d/$2.key"
	add_host "$1"
	eval "HOST_$(echo "$2" | tr -c 'a-zA-Z0-9\n' _)=$1"
	printf 'stream = { start = %s; interval_s = %s; };\n' "$STREAM_START" "$STREAM_INTERVAL" \
		>"$_d/iotsec.conf"
}

# doctor_cmd NAME COMMAND ARGS...: iotsec-doctor COMMAND of doctor NAME (its --dir and schedule).
doctor_cmd() {
	_n=$1
	_c=$2
	shift 2
	iotsec-doctor -c "$T/$_n/iotsec.conf" "$_c" --dir "$T/$_n" "$@"
}

# grant DOCTOR KIT: DOCTOR grants KIT a doctor stream, published retained where KIT looks.
grant() {
	doctor_cmd "$1" grant --kit "$2" --kit-cert "$T/$2/$2.crt" --out "$T/$1/grant-$2" \
		>"$T/$1/grant.log" 2>&1 || fail "iotsec-doctor grant: $(cat "$T/$1/grant.log")"
	mqtt_pub "$1" -q 1 -r -t "iotsec/$HOME_NAME/$1/grant/$2" -f "$T/$1/grant-$2" ||
		fail "$1 could not publish its grant"
}
