#!/bin/sh
# Retention is explicit. relay1 keeps at most 50 readings of a patient (relay.cap); kit1 sends
# 120 while the doctor is offline. The 70 oldest expire (at the first retention run, a second
# after relay1 starts, and every minute after), and the doctor is told how many and which seqs,
# instead of finding a silent gap: the expired count shows in the relay's figures (`iotsecctl relay`) and in
# what iotsec-doctor fetch says, and the 50 kept arrive in order.
. "$(dirname "$0")/common.sh"
. "$IT_DIR/sensord-common.sh"
. "$IT_DIR/relay-common.sh"
need_netns
sensord_home
seq 1 120 | sed 's/^/pulse,/; s/$/,\/min/' >"$T/pulse.csv"
kit 1 hub controller
kit 2 kit1 node "sensors = \"pulse=replay:$T/pulse.csv\"; interval_ms = 50; alarm_below = 0; $RELAY_KIT"
relay 7 relay1 "cap = 50;"
doctor 5 drwho
run_relay relay1
wait_until 10 relay_ready relay1 || fail "relay1 not connected: $(relay_call relay1 status)"
run_all hub
run_kit kit1
home_ready kit1
grant_via relay1 drwho kit1
wait_until 15 granted kit1 drwho || fail "kit1 did not install the grant: $(sstatus kit1)"
done_sending() {
	sstatus kit1 | $PY -c 'import json, sys
s = json.load(sys.stdin)
sys.exit(not (all(x.get("error") == "done" for x in s["sensors"]) and s["spooled"] == 0))'
}
wait_until 60 done_sending || fail "kit1 still holds readings: $(sstatus kit1)"
say "kit1 sent 120 readings; relay1 holds $(rfield relay1 relay readings)"

# Restarted, relay1 runs retention a second later.
stop "$(relay_pid relay1)"
run_relay relay1
expired_is() { [ "$(rfield relay1 relay expired)" = 70 ]; }
wait_until 10 expired_is || fail "relay1's expired count: $(relay_call relay1 relay)"
[ "$(rfield relay1 relay readings)" = 50 ] || fail "relay1 keeps $(rfield relay1 relay readings), not 50"
grep -q "retention: 70 readings expired" "$T/relay1/relayd.log" || fail "relay1's log does not say"
say "relay1: 70 expired, 50 kept"

fetch_json relay1 drwho "$T/fetch.out"
$PY - "$T/fetch.out" <<'PY' || fail "what drwho fetched is wrong"
import json, sys
vals = [json.loads(l)["value"] for l in open(sys.argv[1]) if l.strip()]
want = [float(v) for v in range(71, 121)]
if vals != want:
    print("fetched", vals[:5], "...", len(vals), "readings; wanted 71..120")
    sys.exit(1)
PY
grep -q "expired 70 readings" "$T/fetch.out.err" || fail "iotsec-doctor fetch does not say 70 expired: $(cat "$T/fetch.out.err")"
grep "expired 70" "$T/fetch.out.err" | grep -q "70 of them undelivered\|undelivered" ||
	fail "fetch does not say the expired ones were never delivered: $(cat "$T/fetch.out.err")"
say "drwho got the 50 kept in order and was told: $(grep expired "$T/fetch.out.err" | head -n 1)"
