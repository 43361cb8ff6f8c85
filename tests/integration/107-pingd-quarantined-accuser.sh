#!/bin/sh
# A device the controller has quarantined has no say any more: its PINGD_MALICIOUS reports, and
# its unasked PINGD_REPORTs, count for nothing, even where one report would be enough
# (confirmations = 1). Otherwise a device put out as malicious, which keeps its certificate until
# the administrator revokes it, could go on putting honest devices out, one rekey each.
. "$(dirname "$0")/common.sh"
need_netns
make_home
device 1 hub controller
device 2 pi2 node
device 9 pi9 node
for n in hub pi2; do
	cat >>"$T/$n/iotsec.conf" <<'CONF'
pingd = { interval_ms = 1000; retry_ms = 300; tries = 3; timeout_ms = 500; hello_ms = 300;
          confirmations = 1; };
CONF
done
# The controller put pi9 out as malicious before it restarted.
mkdir -p "$T/hub/state/pingd"
# Now: pi9's certificate is older than its quarantine (a newer one would release it, 108).
printf '{"version":1,"devices":[],"quarantine":[{"name":"pi9","reason":"malicious","at":%s}]}' "$(date +%s)" \
	>"$T/hub/state/pingd/pingd.state"
chmod 600 "$T/hub/state/pingd/pingd.state"
run hub certd
run hub electd
run hub pingd
run pi2 certd
run pi2 pingd
pingd() { ctl "$T/$1/run/pingd/pingd.sock" "$2"; }
ready() { [ "$(field hub pingd role)" = controller ] && [ "$(field hub pingd peers)" -ge 1 ]; }
wait_until 15 ready || fail "hub's pingd: role $(field hub pingd role), $(field hub pingd peers) peers"
alive() { pingd hub '{"v":1,"verb":"peers"}' | grep -q '"name":"pi2"[^}]*"state":"alive"'; }
wait_until 10 alive || fail "hub does not see pi2 alive: $(pingd hub '{"v":1,"verb":"peers"}')"

say "quarantined pi9 reports pi2 malicious to hub, again and again"
on 9 $PY "$IT_DIR/rogue_pingd.py" accuse "$T/pi9/pi9.crt" "$T/pi9/pi9.key" "$NET.1" hub pi2 4 \
	>"$T/rogue.log" 2>&1 || fail "rogue: $(cat "$T/rogue.log")"
grep -q "accused pi2 [1-9]" "$T/rogue.log" || fail "rogue: $(cat "$T/rogue.log")"
list=$(pingd hub '{"v":1,"verb":"quarantine"}')
echo "$list" | grep -q '"name":"pi2"' && fail "hub quarantined pi2 on quarantined pi9's word: $list"
echo "$list" | grep -q '"version":1' || fail "hub's list changed: $list"
st=$(pingd hub '{"v":1,"verb":"status"}')
refused=$(echo "$st" | json_get '["refused_by"].get("pi9", 0)')
[ "$refused" -ge 1 ] || fail "hub did not count pi9's reports as refused: $st"
say "pi2 still in; pi9's reports refused ($refused)"
echo ok
