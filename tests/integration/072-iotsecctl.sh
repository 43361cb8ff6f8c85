#!/bin/sh
# iotsecctl as scripts use it: status exits 0 healthy, 1 degraded, 3 down, 4 when it cannot tell,
# and shows only the daemons iotsec has, each in its real state; options before or after the
# command; --version; watch prints the state first, says when it times out and refuses what it
# cannot parse; dict lock|unlock; rekey warns of a device nobody heard of; peers and quarantine
# say so when pingd is not running, and show what a pingd (a stand-in) answers; readings lists
# and follows what sensord opened, and sensord's alarm makes status degraded (a stand-in again).
# The relay: on a Pi, status shows relayd only when its socket is there; on the relay's machine (a
# relay certificate) relayd alone; relay shows what a relayd (a stand-in, then the real one)
# answers, and says so when none runs.
. "$(dirname "$0")/common.sh"
need_netns
make_home
device 1 pi1 controller
CONF=$T/pi1/iotsec.conf
# nobody plays an operator: a reader, who may not change anything.
echo 'control = { readers = "nobody"; };' >>"$CONF"
# No broker here: sensord must run all the same, "connecting" (and resolve no name meanwhile).
echo 'sensord = { broker = "127.0.0.1"; broker_port = 9; };' >>"$CONF"
status() { iotsecctl status -c "$CONF" "$@"; }

say "--help wherever it is asked for: usage on stdout, exit 0"
for cmd in "" status peers "watch certd" rekey dict "dict lock" "dict unlock" "pool plan" \
	quarantine "quarantine list" "quarantine release" readings "readings --follow" \
	"watch sensord" relay "relay --json" "watch relayd"; do
	# shellcheck disable=SC2086 # each command is its words
	iotsecctl $cmd --help >"$T/help" 2>"$T/help.err" || fail "iotsecctl $cmd --help exits $?"
	grep -qi "usage" "$T/help" || fail "iotsecctl $cmd --help prints no usage: $(cat "$T/help" "$T/help.err")"
done

say "nothing runs: exit 3"
st=0
status >"$T/out" || st=$?
[ $st -eq 3 ] || fail "status exits $st with nothing running: $(cat "$T/out")"
for d in certd electd keyd dictd pingd sensord; do grep -q "^  $d  *not running" "$T/out" || fail "no $d line"; done
[ "$(grep -c '^  [a-z]' "$T/out")" -eq 6 ] || fail "status lists daemons that do not exist: $(cat "$T/out")"
st=0
iotsecctl -c "$CONF" readings >"$T/out" 2>"$T/err" || st=$?
[ $st -eq 1 ] && grep -q "iotsec-sensord: not running" "$T/err" ||
	fail "readings without sensord: exit $st: $(cat "$T/err")"
st=0
iotsecctl -c "$CONF" relay >"$T/out" 2>"$T/err" || st=$?
[ $st -eq 1 ] && grep -q "iotsec-relayd: not running" "$T/err" ||
	fail "relay without relayd: exit $st: $(cat "$T/err")"
for bad in "relay --yaml" "relay extra"; do
	st=0
	# shellcheck disable=SC2086
	iotsecctl -c "$CONF" $bad >/dev/null 2>"$T/err" || st=$?
	[ $st -eq 2 ] && grep -q "usage: iotsecctl relay" "$T/err" || fail "$bad: exit $st: $(cat "$T/err")"
done

say "certd and dictd only: exit 1"
run pi1 certd
run pi1 dictd
wait_until 5 test -S "$T/pi1/run/dictd/dictd.sock" || fail "dictd did not start"
st=0
status --json >"$T/out" || st=$?
[ $st -eq 1 ] || fail "status exits $st with two daemons down"

say "all six, certificate valid, a controller, no broker: exit 0"
run pi1 electd
run pi1 keyd
run pi1 pingd
PINGD=$LAST_PID
run pi1 sensord
SENSORD=$LAST_PID
healthy() { status >"$T/out"; }
wait_until 10 healthy || fail "status is not healthy: $(cat "$T/out")"
grep -q "^controller   pi1" "$T/out" || fail "controller line: $(cat "$T/out")"
# The broker away is shown, and why (port 9 refuses), and is no reason for exit 1: the readings
# wait in the spool.
refused() { status >"$T/out" && grep -q "^sensors      broker connecting ([^)]*refused[^)]*)," "$T/out"; }
wait_until 10 refused || fail "sensord's line does not say why it is connecting: $(cat "$T/out")"
grep -q "^sensors      broker connecting (.*), .*, epoch [0-9]*, doctor none, spool [0-9]* pending (0 dropped)" \
	"$T/out" || fail "no sensord line: $(cat "$T/out")"
if grep -q "^ALARM" "$T/out"; then fail "an alarm with none set: $(cat "$T/out")"; fi

say "readings with sensord running and nothing heard: an empty list, exit 0"
iotsecctl -c "$CONF" readings >"$T/out" 2>"$T/err" || fail "readings exits $?: $(cat "$T/err")"
[ "$(cat "$T/out")" = "no reading yet" ] || fail "readings prints: $(cat "$T/out")"
iotsecctl readings --json -c "$CONF" >"$T/out" || fail "readings --json exits $?"
$PY -c 'import json,sys; assert json.load(open(sys.argv[1])) == {"readings": []}' "$T/out" ||
	fail "readings --json prints: $(cat "$T/out")"
for bad in "readings --yaml" "readings extra" "readings --follow --max"; do
	st=0
	# shellcheck disable=SC2086
	iotsecctl -c "$CONF" $bad >/dev/null 2>"$T/err" || st=$?
	[ $st -eq 2 ] && grep -q "usage: iotsecctl readings" "$T/err" || fail "$bad: exit $st: $(cat "$T/err")"
done
iotsecctl -c "$CONF" watch sensord --count 0 >"$T/watch" || fail "watch sensord exits $?"
head -n 1 "$T/watch" | grep -q '"event":"status".*"broker":"connecting"' || fail "watch sensord: $(cat "$T/watch")"
st=0
iotsecctl -c "$T/none.conf" status 2>"$T/err" || st=$?
[ $st -eq 4 ] || fail "status exits $st when the configuration cannot be read"

say "status names the quarantine; a device on it is out of the home: exit 1"
# pingd, once controller, has given keyd its list (empty): set keyd's by hand after that.
pingd_leads() { [ "$(field pi1 pingd role)" = controller ]; }
wait_until 5 pingd_leads || fail "pingd is not the controller"
keyd_quarantine() {
	ctl "$T/pi1/run/keyd/keyd.sock" "{\"v\":1,\"verb\":\"quarantine\",\"names\":$1}" |
		grep -q '"ok":true' || fail "keyd did not take the quarantine $1"
}
keyd_quarantine '["pi9","kitchen"]'
status >"$T/out" || fail "status exits $? with other devices quarantined: $(cat "$T/out")"
grep -q "^quarantine   pi9, kitchen (iotsecctl quarantine list)" "$T/out" ||
	fail "no quarantine line: $(cat "$T/out")"
keyd_quarantine '["pi1"]'
st=0
status >"$T/out" || st=$?
[ $st -eq 1 ] || fail "status exits $st with this device quarantined: $(cat "$T/out")"
grep -q "^quarantine   THIS DEVICE: the home gives it no keys until it is released" "$T/out" ||
	fail "no quarantine line: $(cat "$T/out")"
keyd_quarantine '[]'
status >"$T/out" || fail "status exits $? after the quarantine is lifted: $(cat "$T/out")"
if grep -q "^quarantine" "$T/out"; then fail "a quarantine line with none: $(cat "$T/out")"; fi

say "--version, and -c after the command"
iotsecctl --version | grep -q "^iotsecctl (iotsec) " || fail "no --version"
iotsecctl peers -c "$CONF" >/dev/null || fail "-c after peers refused"

say "dict lock: degraded; then unlock"
iotsecctl -c "$CONF" dict lock | grep -q "^dictionary locked: locked by request" || fail "dict lock"
field pi1 dictd locked | grep -q True || fail "dictd not locked"
st=0
status >"$T/out" || st=$?
[ $st -eq 1 ] || fail "status exits $st with the dictionary locked"
grep -q "^dictionary   LOCKED: locked by request" "$T/out" || fail "no dictionary line: $(cat "$T/out")"
iotsecctl dict unlock -c "$CONF" | grep -q "^dictionary unlocked" || fail "dict unlock"
field pi1 dictd locked | grep -q False || fail "dictd still locked"
if iotsecctl -c "$CONF" dict open 2>"$T/err"; then fail "dict open accepted"; fi
grep -q "usage: iotsecctl dict lock|unlock" "$T/err" || fail "dict open: $(cat "$T/err")"

say "rekey of a device nobody heard of: done, with a warning"
iotsecctl -c"$CONF" rekey --exclude kitchn >"$T/out" 2>"$T/err" || fail "rekey: $(cat "$T/err")"
grep -q "^new key pool: epoch" "$T/out" || fail "rekey says: $(cat "$T/out")"
grep -q "never heard of 'kitchn'" "$T/err" || fail "no warning for kitchn: $(cat "$T/err")"
st=0
iotsecctl -c "$CONF" rekey --exclude 2>"$T/err" || st=$?
[ $st -eq 2 ] && grep -q "needs a device name" "$T/err" || fail "rekey --exclude alone: $st $(cat "$T/err")"

say "quarantine release of a device not on the list: says so, exit 1"
st=0
iotsecctl -c "$CONF" quarantine release kitchen >"$T/out" 2>"$T/err" || st=$?
[ $st -eq 1 ] && grep -q "refused: .*kitchen is not quarantined" "$T/err" ||
	fail "release of kitchen: exit $st: $(cat "$T/err")"

say "an operator (control.readers) asking for a change is told it needs root, exit 1"
chmod o+x "$T" "$T/pi1" "$T/pi1/run" "$T/pi1/run/pingd" "$T/pi1/run/keyd" "$T/pi1/run/dictd"
chmod o+r "$CONF"
for cmd in "quarantine release kitchen" "rekey" "dict lock"; do
	st=0
	# shellcheck disable=SC2086 # each command is its words
	setpriv --reuid=nobody --regid=nogroup --clear-groups iotsecctl -c "$CONF" $cmd \
		>"$T/out" 2>"$T/err" || st=$?
	[ $st -eq 1 ] && grep -q "refused: permission denied (only root may change this: run it with sudo)" "$T/err" ||
		fail "$cmd as an operator: exit $st: $(cat "$T/err")"
done
field pi1 dictd locked | grep -q False || fail "an operator locked the dictionary"

say "without pingd: peers shows keyd's part and says pingd is missing; quarantine fails"
stop "$PINGD"
iotsecctl -c "$CONF" peers >"$T/out" 2>"$T/err" || fail "peers without pingd exits $?: $(cat "$T/err")"
grep -q "^NAME  *ADDRESS  *STATE  *TRUST (h/R)  *FLAGS  *BANNED  *AUTH-FAILURES  *KEY" "$T/out" ||
	fail "peers prints: $(cat "$T/out")"
grep -q "iotsec-pingd: not running" "$T/err" || fail "peers does not say pingd is missing: $(cat "$T/err")"
iotsecctl -c "$CONF" peers --json >"$T/out" 2>/dev/null || fail "peers --json without pingd"
$PY -c 'import json,sys; assert isinstance(json.load(open(sys.argv[1])), list)' "$T/out" ||
	fail "peers --json prints no list: $(cat "$T/out")"
for cmd in "quarantine list" "quarantine list --json" "quarantine release pi2"; do
	st=0
	# shellcheck disable=SC2086
	iotsecctl -c "$CONF" $cmd >"$T/out" 2>"$T/err" || st=$?
	[ $st -eq 1 ] && grep -q "iotsec-pingd: not running" "$T/err" ||
		fail "$cmd without pingd: exit $st: $(cat "$T/err")"
done
for bad in "quarantine" "quarantine open" "quarantine release" "quarantine release a b" \
	"quarantine list --yaml" "peers --yaml"; do
	st=0
	# shellcheck disable=SC2086
	iotsecctl -c "$CONF" $bad >/dev/null 2>"$T/err" || st=$?
	[ $st -eq 2 ] && grep -q "usage: iotsecctl" "$T/err" || fail "$bad: exit $st: $(cat "$T/err")"
done

say "pingd's answers, as iotsecctl shows them (a stand-in serves pingd's socket)"
mkdir -p "$T/pi1/run/pingd"
rm -f "$T/pi1/run/pingd/pingd.sock"
$PY - "$T/pi1/run/pingd/pingd.sock" <<'PY' &
import json, os, socket, sys, time
now = int(time.time())
peers = [{"name": "pi2", "address": "10.0.0.2", "state": "alive", "last_seen": now,
          "direct": 0.9, "reputation": 0.8, "trust": 0.85, "flags": [], "banned_until": 0,
          "auth_failures": 0},
         {"name": "pi9", "address": "10.0.0.9", "state": "quarantined", "last_seen": now - 600,
          "direct": 0.1, "reputation": 0.2, "trust": 0.15, "flags": ["bad-mouthing", "malicious"],
          "banned_until": now + 600, "auth_failures": 12}]
quarantine = [{"name": "pi9", "reason": "malicious", "at": 1700000000}]
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1]); s.listen(8)
for _ in range(6):
    c, _ = s.accept()
    f = c.makefile("rwb")
    req = json.loads(f.readline())
    rep = {"v": 1, "ok": True}
    if req["verb"] == "peers":
        rep["peers"] = peers
    elif req["verb"] == "quarantine":
        rep.update(version=3, quarantine=quarantine)
    elif req["verb"] == "release" and req.get("name") == "pi9":
        rep["version"] = 4
    else:
        rep = {"v": 1, "ok": False, "error": "Operation not supported: not the controller (the controller is hub)"}
    f.write((json.dumps(rep) + "\n").encode()); f.flush(); c.close()
PY
FAKE=$!
PIDS="$PIDS $FAKE"
wait_until 5 test -S "$T/pi1/run/pingd/pingd.sock" || fail "the stand-in did not start"
iotsecctl -c "$CONF" peers >"$T/out" 2>"$T/err" || fail "peers: $(cat "$T/err")"
grep -q "^pi2  *10.0.0.2  *alive  *0.85 (0.90/0.80)  *-  *no  *0 " "$T/out" || fail "pi2's row: $(cat "$T/out")"
grep -q "^pi9  *10.0.0.9  *quarantined  *0.15 (0.10/0.20)  *bad-mouthing,malicious  *10min  *12 " "$T/out" ||
	fail "pi9's row: $(cat "$T/out")"
[ ! -s "$T/err" ] || fail "peers complains with pingd and keyd running: $(cat "$T/err")"
iotsecctl -c "$CONF" peers --json >"$T/out" || fail "peers --json"
$PY -c 'import json,sys; d = json.load(open(sys.argv[1])); assert [p["name"] for p in d] == ["pi2", "pi9"] and d[1]["auth_failures"] == 12, d' "$T/out" ||
	fail "peers --json: $(cat "$T/out")"
iotsecctl -c "$CONF" quarantine list >"$T/out" || fail "quarantine list"
grep -q "^pi9  *malicious  *2023-11-14 22:13 UTC" "$T/out" && grep -q "^(version 3)" "$T/out" ||
	fail "quarantine list: $(cat "$T/out")"
iotsecctl -c "$CONF" quarantine list --json >"$T/out" || fail "quarantine list --json"
$PY -c 'import json,sys; d = json.load(open(sys.argv[1])); assert d["version"] == 3 and d["quarantine"][0]["name"] == "pi9", d' "$T/out" ||
	fail "quarantine list --json: $(cat "$T/out")"
iotsecctl -c "$CONF" quarantine release pi9 >"$T/out" || fail "quarantine release pi9"
grep -q "^pi9 released (quarantine version 4)" "$T/out" || fail "release says: $(cat "$T/out")"
st=0
iotsecctl -c "$CONF" quarantine release pi2 >"$T/out" 2>"$T/err" || st=$?
[ $st -eq 1 ] && grep -q "not the controller (the controller is hub)" "$T/err" ||
	fail "release refused: exit $st: $(cat "$T/err")"
wait "$FAKE" || fail "the stand-in for pingd was not asked six times"
rm -f "$T/pi1/run/pingd/pingd.sock"

say "sensord's answers, as iotsecctl shows them (a stand-in serves sensord's socket)"
stop "$SENSORD"
mkdir -p "$T/pi1/run/sensord"
rm -f "$T/pi1/run/sensord/sensord.sock"
$PY - "$T/pi1/run/sensord/sensord.sock" <<'PY' &
import json, socket, sys
r1 = {"device": "pi2", "sensor": "room", "value": 21.5, "unit": "C", "time": 1767229200000,
      "seq": 7, "epoch": 2, "emergency": False}
r2 = {"device": "pi3", "sensor": "pulse", "value": 25, "unit": "/min", "time": 1767229201500,
      "seq": 3, "epoch": 2, "emergency": True}
r3 = {"device": "pi2", "sensor": "room", "value": 21.75, "unit": "", "time": 1767229260000,
      "seq": 8, "epoch": 2, "emergency": False}
status = {"device": "pi1", "broker": "connected", "broker_name": "broker", "sync": "synced",
          "epoch": 2, "pool": 1, "group_start": 1, "doctor": "dr-lee", "published": 10,
          "spooled": 4, "spool_dropped": 2, "awaiting_receipt": 3, "receipts": 0,
          "readings_opened": 2, "refused": 0, "refused_by": {},
          "alarm": {"set": True, "seq": 3, "value": 25, "at": 1767229201},
          "sensors": []}
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1]); s.listen(8)
while True:
    c, _ = s.accept()
    f = c.makefile("rwb")
    subscribed = False
    for line in f:
        req = json.loads(line)
        rep = {"v": 1, "id": req.get("id"), "ok": True}
        if req["verb"] == "status":
            rep.update(status)
        elif req["verb"] == "subscribe":
            subscribed = req.get("events") == ["reading"]
        elif req["verb"] == "readings":
            rep["readings"] = [r1, r2]
        else:
            rep = {"v": 1, "id": req.get("id"), "ok": False, "error": "unknown verb"}
        f.write((json.dumps(rep) + "\n").encode()); f.flush()
        if req["verb"] == "readings" and subscribed:
            # r2 came while the list was on its way: the follower shows it once.
            for r in (r2, r3):
                f.write((json.dumps(dict(r, event="reading")) + "\n").encode())
            f.flush()
            break
    # Both, or the connection stays open: the follower must see sensord go.
    f.close()
    c.close()
PY
FAKE=$!
PIDS="$PIDS $FAKE"
wait_until 5 test -S "$T/pi1/run/sensord/sensord.sock" || fail "the stand-in did not start"
st=0
status >"$T/out" || st=$?
[ $st -eq 1 ] || fail "status exits $st with the alarm set: $(cat "$T/out")"
# Doctor readings held for a relay's receipt, none ever taken: a relay down or misnamed.
grep -q "^sensors      broker connected, synced, epoch 2, doctor dr-lee, spool 4 pending (2 dropped), 3 awaiting a relay's receipt (0 receipts taken)$" "$T/out" ||
	fail "sensord's line: $(cat "$T/out")"
grep -q "^ALARM        pulse 25 since 2026-01-01 01:00:01 UTC (emergency record 3)" "$T/out" ||
	fail "no alarm line: $(cat "$T/out")"
iotsecctl -c "$CONF" readings >"$T/out" || fail "readings exits $?"
[ "$(cat "$T/out")" = "2026-01-01 01:00:00 UTC pi2 room 21.5 C
2026-01-01 01:00:01 UTC pi3 pulse 25 /min EMERGENCY" ] || fail "readings prints: $(cat "$T/out")"
iotsecctl -c "$CONF" readings --json >"$T/out" || fail "readings --json exits $?"
$PY -c 'import json,sys; d = json.load(open(sys.argv[1])); assert [r["seq"] for r in d["readings"]] == [7, 3] and d["readings"][1]["emergency"] is True, d' "$T/out" ||
	fail "readings --json: $(cat "$T/out")"
say "readings --follow: the list, then each new one once; the daemon gone ends it, exit 1"
st=0
iotsecctl -c "$CONF" readings --follow >"$T/out" 2>"$T/err" || st=$?
[ $st -eq 1 ] && grep -q "iotsec-sensord: stopped" "$T/err" || fail "readings --follow: exit $st: $(cat "$T/err")"
[ "$(cat "$T/out")" = "2026-01-01 01:00:00 UTC pi2 room 21.5 C
2026-01-01 01:00:01 UTC pi3 pulse 25 /min EMERGENCY
2026-01-01 01:01:00 UTC pi2 room 21.75 -" ] || fail "readings --follow prints: $(cat "$T/out")"
st=0
iotsecctl -c "$CONF" readings --follow --json >"$T/out" 2>/dev/null || st=$?
$PY -c '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert [r["seq"] for r in rows] == [7, 3, 8] and all("event" not in r for r in rows), rows' "$T/out" ||
	fail "readings --follow --json: $(cat "$T/out")"
kill "$FAKE"
rm -f "$T/pi1/run/sensord/sensord.sock"

say "watch refuses what it cannot parse"
for bad in "certd --count abc" "certd --count -1" "certd --timeout 1.5" "bogus" "iotsec-certd"; do
	st=0
	# shellcheck disable=SC2086
	iotsecctl -c "$CONF" watch $bad 2>"$T/err" >/dev/null || st=$?
	[ $st -eq 2 ] || fail "watch $bad exits $st: $(cat "$T/err")"
done

say "watch: the state first, then a word when it times out"
st=0
iotsecctl -c "$CONF" watch certd --timeout 1 >"$T/watch" 2>"$T/err" || st=$?
[ $st -eq 1 ] || fail "watch exits $st after its timeout"
head -n 1 "$T/watch" | grep -q '"event":"status".*"certificate":"valid"' || fail "first line: $(cat "$T/watch")"
grep -q "certd: no event for 1 s" "$T/err" || fail "watch did not say it timed out: $(cat "$T/err")"

say "revoked: out of the home, exit 1"
iotsec-pki revoke --dir "$T/ca" --device pi1 >/dev/null 2>&1 || fail "revoke"
out() { [ "$(field pi1 electd state)" = out ]; }
wait_until 6 out || fail "electd is '$(field pi1 electd state)' after revocation"
st=0
status >"$T/out" || st=$?
[ $st -eq 1 ] || fail "status exits $st with the certificate revoked"
grep -q "^controller   - (this device is out of the home)" "$T/out" || fail "controller line: $(cat "$T/out")"
grep -q "^certificate  INVALID: .*revoked" "$T/out" || fail "certificate line: $(cat "$T/out")"

# A stand-in for relayd's socket: its status and relay verbs, as iotsecctl reads them.
cat >"$T/relayd-standin.py" <<'PY'
import json, socket, sys, time
now = int(time.time() * 1000)
status = {"daemon": "relayd", "device": "relay1", "broker": "connected", "broker_error": "",
          "received": 1210, "stored": 1200, "duplicates": 10, "receipts": 300,
          "commit_failures": 0, "commit_failing": sys.argv[2:] == ["failing"]}
relay = {"store": "sqlite", "bytes": 12897485, "readings": 1200, "undelivered": 35,
         "emergencies_undelivered": 2, "oldest_undelivered_ms": now - (3 * 3600 + 150) * 1000,
         "expired": 17, "rate": 4.5, "now_ms": now,
         "queues": [{"doctor": "dr-lee", "undelivered": 30,
                     "oldest_ms": now - (3 * 3600 + 150) * 1000},
                    {"doctor": "dr-kim", "undelivered": 5, "oldest_ms": now - 12000},
                    {"doctor": "dr-new", "undelivered": 0, "oldest_ms": 0}]}
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1]); s.listen(8)
while True:
    c, _ = s.accept()
    f = c.makefile("rwb")
    for line in f:
        req = json.loads(line)
        rep = {"v": 1, "id": req.get("id"), "ok": True}
        if req["verb"] == "status":
            rep.update(status)
        elif req["verb"] == "relay":
            rep.update(relay)
        else:
            rep = {"v": 1, "id": req.get("id"), "ok": False, "error": "unknown verb"}
        f.write((json.dumps(rep) + "\n").encode()); f.flush()
    f.close()
    c.close()
PY
# relayd_standin DEVICE [failing]: the stand-in on DEVICE's relayd socket, until it is killed
# ($STANDIN); with failing, its commits fail.
relayd_standin() {
	mkdir -p "$T/$1/run/relayd"
	rm -f "$T/$1/run/relayd/relayd.sock"
	$PY "$T/relayd-standin.py" "$T/$1/run/relayd/relayd.sock" ${2:-} &
	PIDS="$PIDS $!"
	STANDIN=$!
	wait_until 5 test -S "$T/$1/run/relayd/relayd.sock" || fail "the stand-in for $1's relayd did not start"
}

say "a Pi with a relayd socket: status shows relayd too; without it, the six again"
st=0
status >"$T/out" || st=$?
relayd_standin pi1
st2=0
status >"$T/out" || st2=$?
[ $st2 -eq $st ] || fail "status exits $st2 with a relayd running, $st without: $(cat "$T/out")"
grep -q "^  relayd   running" "$T/out" || fail "no relayd line: $(cat "$T/out")"
[ "$(grep -c '^  [a-z]' "$T/out")" -eq 7 ] || fail "status lists: $(cat "$T/out")"
grep -q "^relay        broker connected, 1210 received, 1200 stored, 10 duplicates, 300 receipts, 0 failed commits (iotsecctl relay)" \
	"$T/out" || fail "relayd's line: $(cat "$T/out")"
kill "$STANDIN"
rm -f "$T/pi1/run/relayd/relayd.sock"
st2=0
status >"$T/out" || st2=$?
[ $st2 -eq $st ] || fail "status exits $st2 without relayd's socket, $st before: $(cat "$T/out")"
if grep -qE "^  relayd|^relay " "$T/out"; then fail "a Pi without a relay lists relayd: $(cat "$T/out")"; fi

say "the relay's machine (a relay certificate), nothing running: relayd alone, exit 3"
device 2 relay1 relay
RCONF=$T/relay1/iotsec.conf
# No broker here either (port 9 refuses), and no HTTPS: the relay runs all the same.
echo "relay = { broker = \"127.0.0.1\"; broker_port = 9; http_port = 0;
  database = \"$T/relay1/state/relayd/relay.db\"; };" >>"$RCONF"
rstatus() { iotsecctl status -c "$RCONF" "$@"; }
st=0
rstatus >"$T/out" || st=$?
[ $st -eq 3 ] || fail "status on the relay's machine exits $st with nothing running: $(cat "$T/out")"
[ "$(grep -c '^  [a-z]' "$T/out")" -eq 1 ] && grep -q "^  relayd   not running" "$T/out" ||
	fail "status on the relay's machine lists: $(cat "$T/out")"
grep -q "^role         relay" "$T/out" && grep -q "^device       relay1" "$T/out" ||
	fail "status on the relay's machine: $(cat "$T/out")"
grep -q "^certificate  in date, expires " "$T/out" || fail "certificate line: $(cat "$T/out")"
st=0
iotsecctl -c "$RCONF" relay >"$T/out" 2>"$T/err" || st=$?
[ $st -eq 1 ] && grep -q "iotsec-relayd: not running" "$T/err" || fail "relay: exit $st: $(cat "$T/err")"

say "the relay's machine with a relayd (a stand-in): exit 0, and iotsecctl relay"
relayd_standin relay1
rstatus >"$T/out" || fail "status exits $? with relayd running: $(cat "$T/out")"
grep -q "^relay        broker connected, 1210 received" "$T/out" || fail "relayd's line: $(cat "$T/out")"
rstatus --json >"$T/out" || fail "status --json exits $?"
$PY -c 'import json,sys; d = json.load(open(sys.argv[1])); assert list(d["daemons"]) == ["relayd"] and d["daemons"]["relayd"]["running"] and d["role"] == "relay", d' "$T/out" ||
	fail "status --json: $(cat "$T/out")"
iotsecctl -c "$RCONF" relay >"$T/out" || fail "relay exits $?"
[ "$(cat "$T/out")" = "broker       connected
ingest       4.5 readings/s
store        sqlite, 12.3 MiB, 1200 readings
undelivered  35 (2 emergencies), oldest 3 h 2 min ago
expired      17 (removed by retention: relay.retention_s, relay.cap)
DOCTOR                  WAITING OLDEST           EXPIRED
dr-lee                       30 3 h 2 min        -
dr-kim                        5 12 s             -
dr-new                        0 -                -" ] || fail "relay prints: $(cat "$T/out")"
iotsecctl -c "$RCONF" relay --json >"$T/out" || fail "relay --json exits $?"
$PY -c 'import json,sys; d = json.load(open(sys.argv[1])); assert d["undelivered"] == 35 and [q["doctor"] for q in d["queues"]] == ["dr-lee", "dr-kim", "dr-new"] and "ok" not in d, d' "$T/out" ||
	fail "relay --json: $(cat "$T/out")"
kill "$STANDIN"
say "a relayd whose store fails: degraded, exit 1, and said"
relayd_standin relay1 failing
st=0
rstatus >"$T/out" || st=$?
[ $st -eq 1 ] && grep -q "^STORE        FAILING: readings are neither stored nor receipted" "$T/out" ||
	fail "status with the store failing: exit $st: $(cat "$T/out")"
kill "$STANDIN"
rm -f "$T/relay1/run/relayd/relayd.sock"

say "the real iotsec-relayd, no broker: status exit 0, relay shows an empty store"
run relay1 relayd
RELAYD=$LAST_PID
rhealthy() { rstatus >"$T/out"; }
wait_until 10 rhealthy || fail "status with relayd running: $(cat "$T/out")"
grep -q "^relay        broker connecting" "$T/out" || fail "relayd's line: $(cat "$T/out")"
iotsecctl -c "$RCONF" relay >"$T/out" || fail "relay exits $?: $(cat "$T/out")"
grep -q "^broker       connecting" "$T/out" && grep -q "^store        sqlite, .*, 0 readings" "$T/out" &&
	grep -q "^undelivered  0 (0 emergencies), oldest -$" "$T/out" && grep -q "^expired      0 " "$T/out" &&
	grep -q "^no doctor granted yet" "$T/out" || fail "relay prints: $(cat "$T/out")"
iotsecctl -c "$RCONF" relay --json >"$T/out" || fail "relay --json exits $?"
$PY -c '
import json, sys
d = json.load(open(sys.argv[1]))
for k in ("store", "bytes", "readings", "undelivered", "emergencies_undelivered",
          "oldest_undelivered_ms", "expired", "rate", "queues", "broker"):
    assert k in d, (k, d)' "$T/out" || fail "relay --json lacks a field: $(cat "$T/out")"
iotsecctl -c "$RCONF" watch relayd --count 0 >"$T/watch" || fail "watch relayd exits $?"
head -n 1 "$T/watch" | grep -q '"event":"status".*"broker":"connecting"' || fail "watch relayd: $(cat "$T/watch")"
stop "$RELAYD"
st=0
rstatus >"$T/out" || st=$?
[ $st -eq 3 ] || fail "status exits $st with relayd stopped: $(cat "$T/out")"
echo ok
