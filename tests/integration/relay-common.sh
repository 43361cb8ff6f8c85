# Shared by the relay tests (160-169): source it after common.sh and sensord-common.sh. The
# relay (iotsec-relayd, a certificate of the home with the relay role) runs on a host of its own,
# subscribed to the home broker, with its SQLite store in its state directory and its HTTPS
# interface on RELAY_PORT serving the page from the build. A doctor reaches it from the doctor's
# host with iotsec-doctor; a kit trusts its receipts (sensord.relay).

RELAY_PORT=8443
WEB_DIR=$(cd "$IOTSEC_BIN/../web" 2>/dev/null && pwd || echo /nonexistent)
# A commit at least every 20 ms, so a test never waits on the group commit; a kit sends a doctor
# reading again 3 s after it went without a receipt.
RELAY_KIT='relay = "relay1"; receipt_s = 3;'

# relay I NAME [SETTINGS]: enrol NAME with the relay role, host I for it, and its configuration:
# the broker's address, its store in its state, the page, then SETTINGS.
relay() {
	iotsec-pki enrol --dir "$T/ca" --device "$2" --role relay --out "$T/$2" \
		>"$T/$2-enrol.log" 2>&1 || fail "enrol relay $2: $(cat "$T/$2-enrol.log")"
	host_config "$1" "$2"
	printf 'relay = { %s };\n' "$(settings_merge "broker = \"$BROKER_IP\"; database = \"$T/$2/state/relay.db\"; http_port = $RELAY_PORT; web_dir = \"$WEB_DIR\"; commit_ms = 20;" "${3:-}")" \
		>>"$T/$2/iotsec.conf"
}

# run_relay NAME: start NAME's relayd; its pid in RELAY_<NAME>.
run_relay() {
	run "$1" relayd
	eval "RELAY_$(echo "$1" | tr -c 'a-zA-Z0-9\n' _)=\$LAST_PID"
}
relay_pid() { eval "echo \$RELAY_$(echo "$1" | tr -c 'a-zA-Z0-9\n' _)"; }

# relay_call NAME VERB: one reply of NAME's relayd to VERB (status, relay); "" when it does not
# answer.
relay_call() { ctl "$T/$1/run/relayd/relayd.sock" "{\"v\":1,\"verb\":\"$2\"}" 2>/dev/null || true; }
# rfield NAME VERB KEY: one field of that reply.
rfield() { relay_call "$1" "$2" | json_get "[\"$3\"]" 2>/dev/null || true; }
relay_ready() { [ "$(rfield "$1" status broker)" = connected ]; }
relay_url() { echo "https://$NET.$(host_of "$1"):$RELAY_PORT"; }

# doctor_via RELAY NAME COMMAND ARGS...: iotsec-doctor COMMAND of doctor NAME, on its host,
# through RELAY.
doctor_via() {
	_r=$1
	_n=$2
	_c=$3
	shift 3
	on "$(host_of "$_n")" iotsec-doctor -c "$T/$_n/iotsec.conf" "$_c" --dir "$T/$_n" \
		--relay "$(relay_url "$_r")" --relay-name "$_r" "$@"
}

# grant_via RELAY DOCTOR KIT: DOCTOR grants KIT a doctor stream through RELAY.
grant_via() {
	doctor_via "$1" "$2" grant --kit "$3" --kit-cert "$T/$3/$3.crt" >"$T/$2/grant.log" 2>&1 ||
		fail "iotsec-doctor grant through $1: $(cat "$T/$2/grant.log")"
}

# fetch_json RELAY DOCTOR FILE: what the relay queued for DOCTOR, opened, one JSON object a line
# added to FILE; stderr in FILE.err.
fetch_json() {
	doctor_via "$1" "$2" fetch --format json >>"$3" 2>>"$3.err" ||
		fail "iotsec-doctor fetch: $(tail -n 5 "$3.err")"
}

# awaiting NAME: doctor readings NAME's sensord holds until a receipt comes (with those not yet
# sent: the spool).
awaiting() { sstatus "$1" | json_get '["spooled"]'; }

# store_dump NAME: everything in NAME's SQLite store, as sqlite3 .dump prints it (blobs in hex).
store_dump() {
	command -v sqlite3 >/dev/null || fail "no sqlite3 (scripts/deps.sh test installs it)"
	sqlite3 "$T/$1/state/relay.db" .dump
}

# --- Ten thousand readings (161, 162, 167) -----------------------------------------------------
BULK_SENSORS="d0 d1 d2 d3 d4 d5 d6 d7 d8 d9"
BULK_ROWS=1000
# The relays, on hosts 7, 8 ... (the first one is granted through and fetched from), and the
# settings each one gets (relay's SETTINGS). A test with several sets RELAY_KIT to name them all.
BULK_RELAYS="relay1"
BULK_RELAY_SETTINGS=""

# bulk_home: the home, the relays of BULK_RELAYS (running), drwho, and kit1 with ten doctor
# sensors of BULK_ROWS rows each, every value its row number (so each reading names itself),
# sending every 20 ms: 10,000 readings in about 20 s. kit1 is granted and running when it
# returns.
bulk_home() {
	sensord_home
	_sensors=""
	for _s in $BULK_SENSORS; do
		seq 1 $BULK_ROWS | sed "s/^/$_s,/; s/\$/,\/min/" >"$T/$_s.csv"
		_sensors="$_sensors $_s=replay:$T/$_s.csv"
	done
	kit 1 hub controller
	kit 2 kit1 node "sensors = \"${_sensors# }\"; doctor_sensors = \"$BULK_SENSORS\"; interval_ms = 20; spool_sync_ms = 20; $RELAY_KIT"
	_h=7
	for _r in $BULK_RELAYS; do
		relay $_h "$_r" "$BULK_RELAY_SETTINGS"
		_h=$((_h + 1))
	done
	doctor 5 drwho
	for _r in $BULK_RELAYS; do
		run_relay "$_r"
		wait_until 10 relay_ready "$_r" || fail "$_r not connected: $(relay_call "$_r" status)"
	done
	run_all hub
	run_all kit1
	wait_until 40 same_epoch hub kit1 || fail "rings not delivered"
	# The grant first: kit1's sensord starts with it, so no row is read before the doctor stream
	# exists (a doctor row read with no doctor is not sent: it is the doctor's alone).
	grant_via "${BULK_RELAYS%% *}" drwho kit1
	run_sensord hub
	run_sensord kit1
	wait_until 20 granted kit1 drwho || fail "kit1 did not install the grant: $(sstatus kit1)"
}

# bulk_done: every row of kit1 read, and nothing waiting for a receipt.
bulk_done() {
	sstatus kit1 | $PY -c 'import json, sys
s = json.load(sys.stdin)
sys.exit(not (all(x.get("error") == "done" for x in s["sensors"]) and s["spooled"] == 0))'
}

# bulk_check: drwho fetches everything through the first relay: each of the 10,000 readings
# exactly once, each sensor's in its order, and that relay's store holds exactly 10,000.
bulk_check() {
	_r=${BULK_RELAYS%% *}
	wait_until 120 bulk_done || fail "kit1 still holds readings: $(sstatus kit1)"
	_stored=$(rfield "$_r" relay readings)
	[ "$_stored" = $((10 * BULK_ROWS)) ] || fail "$_r stores $_stored readings, not $((10 * BULK_ROWS)): $(relay_call "$_r" relay)"
	: >"$T/bulk.out"
	_i=0
	while :; do
		_before=$(wc -l <"$T/bulk.out")
		fetch_json "$_r" drwho "$T/bulk.out"
		[ "$(wc -l <"$T/bulk.out")" -gt "$_before" ] || break
		_i=$((_i + 1))
		[ $_i -lt 100 ] || fail "fetch does not end"
	done
	$PY - "$T/bulk.out" "$BULK_ROWS" $BULK_SENSORS <<'PY' || fail "what drwho fetched is wrong (above)"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
n = int(sys.argv[2])
ok = True
keys = [(r["device"], r["seq"]) for r in rows]
if len(keys) != len(set(keys)):
    print("duplicates delivered:", len(keys) - len(set(keys)))
    ok = False
for s in sys.argv[3:]:
    vals = [r["value"] for r in rows if r["sensor"] == s]
    if vals != [float(i) for i in range(1, n + 1)]:
        missing = sorted(set(range(1, n + 1)) - set(int(v) for v in vals))
        print("%s: %d readings; missing %r; in order: %s" % (s, len(vals), missing[:5], vals == sorted(vals)))
        ok = False
sys.exit(not ok)
PY
}

# raw_login RELAY HOST CERT KEY: log in to RELAY from host HOST with CERT and KEY, as a client of
# our own that checks nothing itself (the doctor's tool refuses a certificate it knows is wrong
# before the relay sees it; this asks the relay). Prints "STATUS BODY" of POST /api/login.
raw_login() {
	on "$2" $PY - "$IT_DIR" "$(relay_url "$1")" "$3" "$4" "$T/ca/ca.crt" <<'PY'
import json, ssl, sys, urllib.error, urllib.request
sys.path.insert(0, sys.argv[1])
from envelope import Device
url, cert, key, ca = sys.argv[2:6]
ctx = ssl.create_default_context(cafile=ca)
ctx.check_hostname = False  # the relay is reached by address; the chain is still checked
ch = json.load(urllib.request.urlopen(url + "/api/challenge", context=ctx))
env = Device(cert, key).seal("RELAY_LOGIN", {}, to=ch["relay"], id=ch["nonce"])
req = urllib.request.Request(url + "/api/login", data=env, method="POST",
                             headers={"Content-Type": "application/json"})
try:
    with urllib.request.urlopen(req, context=ctx) as r:
        print(r.status, r.read().decode())
except urllib.error.HTTPError as e:
    print(e.code, e.read().decode())
PY
}
