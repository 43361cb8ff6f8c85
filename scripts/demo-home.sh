#!/bin/sh
# make demo, part two: three Pis on their own network (namespaces on a bridge) elect a controller,
# receive key rings, find pairwise keys and exchange an encrypted message; a rogue Pi plugged into
# the same network is ignored; a Pi that vanishes is declared missing and the home rekeys without
# it until the household releases it. Uses the integration tests' host helpers.
IT_DIR=$(dirname "$0")/../tests/integration
. "$IT_DIR/common.sh"
. "$IT_DIR/pingd-common.sh"

. "$(dirname "$0")/step.sh"
# The Pis' files live in a scratch directory removed as the demo ends: show it as $T.
show() {
	printf '$ %s\n' "$*" | sed "s|$T|\$T|g"
	"$@"
}

step "6. Three Pis and a rogue on one network (namespaces joined by a bridge)"
echo "(their files are in a scratch directory, \$T below, removed as the demo ends)"
need_netns
make_home smith-family
device 1 hub controller
device 2 kitchen node
device 3 garage node
echo "hub, kitchen and garage are enrolled; the rogue makes its own CA with the same home name"
iotsec-pki init --dir "$T/rogue-ca" --home smith-family >/dev/null 2>&1
iotsec-pki enrol --dir "$T/rogue-ca" --device hub0 --role controller --out "$T/hub0" >/dev/null 2>&1
host_config 4 hub0
sed -i "s|$T/ca/|$T/rogue-ca/|g" "$T/hub0/iotsec.conf"
# pingd's fast profile: a missing Pi is found in seconds, not in the paper's 26 minutes.
for n in hub kitchen garage; do pingd_conf "$n"; done

step "7. Every Pi starts certd, dictd, electd, keyd and pingd"
for n in hub kitchen garage; do run_home "$n"; done
run_all hub0
ready() { for n in hub kitchen garage; do [ "$(field $n keyd ring_size)" -gt 0 ] 2>/dev/null || return 1; done; }
wait_until 20 ready || fail "the rings did not arrive"
for n in kitchen garage hub; do
	echo "--- $n"
	iotsecctl -c "$T/$n/iotsec.conf" status | grep -E "device|role|controller|certificate|key pool"
done

step "8. The rogue 'hub0' declared itself controller of its own CA's home; nobody believed it"
echo "hub0 thinks the controller is: $(field hub0 electd controller)"
echo "kitchen follows: $(field kitchen electd controller)"
grep -h "refused a message from $NET.4" "$T/kitchen/electd.log" | head -n 2
echo "hub0 built a pool of its own (it is its own controller); no device of the home lists it:"
ctl "$T/kitchen/run/keyd/keyd.sock" '{"v":1,"verb":"peers"}' | grep -q '"hub0"' && fail "kitchen lists hub0"
echo "    kitchen's peers: $(ctl "$T/kitchen/run/keyd/keyd.sock" '{"v":1,"verb":"peers"}' |
	$PY -c 'import json, sys; print(", ".join(p["name"] for p in json.load(sys.stdin)["peers"]))')"

step "9. The kitchen Pi knows its peers and the keys it shares with each"
show iotsecctl -c "$T/kitchen/iotsec.conf" peers

step "10. kitchen sends garage an encrypted message (AES-256-GCM under their pairwise key)"
send_msg kitchen garage "the freezer door is open" >/dev/null
wait_until 5 received garage "the freezer door is open" || fail "garage did not receive it"
grep -h "sent\|received" "$T/kitchen/keyd.log" "$T/garage/keyd.log"
echo "garage's inbox: $(ctl "$T/garage/run/keyd/keyd.sock" '{"v":1,"verb":"inbox"}' | json_get '["messages"][0]["text"]')"

step "11. The garage Pi is stolen: its cable is pulled"
e1=$(epoch hub)
echo "hub's pingd probes every Pi each second with a signed challenge (the fast profile:"
echo "$PINGD_FAST); every Pi is alive:"
show iotsecctl -c "$T/hub/iotsec.conf" peers
link_down garage
t0=$(date +%s)
wait_until 30 quarantined hub garage missing || fail "hub did not declare garage missing"
echo "After $(($(date +%s) - t0)) s of silence (its own probes, then kitchen's) hub declared it missing:"
grep -h "garage" "$T/hub/pingd.log" | tail -n 4 | sed 's/^/    /'
rekeyed() { same_epoch hub kitchen && [ "$(epoch hub)" -gt "$e1" ]; }
wait_until 20 rekeyed || fail "the home did not rekey"
echo "The home rekeyed without it: hub and kitchen hold rings of epoch $(epoch hub), the garage one of"
echo "epoch $(epoch garage), which opens nothing any more. The quarantine list, kept on every Pi:"
show iotsecctl -c "$T/kitchen/iotsec.conf" quarantine list

step "12. The garage Pi comes back: it gets nothing until the household releases it"
link_up garage
sleep 3
echo "garage still holds epoch $(epoch garage)"
show iotsecctl -c "$T/hub/iotsec.conf" quarantine release garage
back() { same_epoch hub kitchen garage; }
wait_until 20 back || fail "garage did not get its ring after the release"
echo "garage holds a ring of epoch $(epoch garage) again, and talks with kitchen:"
send_msg garage kitchen "back home" >/dev/null
wait_until 5 received kitchen "back home" || fail "kitchen did not receive garage's message"
echo "    kitchen's inbox: $(ctl "$T/kitchen/run/keyd/keyd.sock" '{"v":1,"verb":"inbox"}' | json_get '["messages"][-1]["text"]')"
