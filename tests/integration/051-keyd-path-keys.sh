#!/bin/sh
# With rings so small that some pairs share no index, every pair still gets a working key: the
# controller's path key.
. "$(dirname "$0")/common.sh"
need_netns
TEST_TIMINGS="$(printf '%s\n' "$TEST_TIMINGS" | grep -v '^keyd')
keyd = { ring_size = 2; pool_size = 400; collect_ms = 1500; announce_ms = 500; };"
make_home
device 1 hub controller
NAMES="hub"
for i in 2 3 4; do
	device $i pi$i node
	NAMES="$NAMES pi$i"
done
for n in $NAMES; do run_all "$n"; done
ready() { for n in $NAMES; do [ "$(field $n keyd ring_size)" = 2 ] || return 1; done; }
wait_until 20 ready || fail "rings not delivered"

# Wait for every device to know every other's epoch, then count the pairs sharing nothing.
known() { for n in $NAMES; do [ "$(field $n keyd peers)" = 3 ] || return 1; done; }
wait_until 5 known || fail "devices do not know each other"
paths=0
for n in $NAMES; do
	ctl "$T/$n/run/keyd/keyd.sock" '{"v":1,"verb":"peers"}' >"$T/$n.peers"
	p=$(grep -o '"pairwise":"path"' "$T/$n.peers" | wc -l)
	grep -q '"pairwise":"none"' "$T/$n.peers" && fail "$n lacks a key: $(cat "$T/$n.peers")"
	paths=$((paths + p))
done
say "$paths of 12 directions rely on a path key"
# peers names the shared indices (both ends the same, ascending) or says a path key stands in.
$PY - "$T" $NAMES <<'PYEOF' || fail "keyd peers: indices or path wrong"
import json, sys
T, names = sys.argv[1], sys.argv[2:]
got = {n: json.load(open("%s/%s.peers" % (T, n))) for n in names}
for n, d in got.items():
    if not isinstance(d.get("epoch"), int) or d["epoch"] < 1:
        sys.exit("%s: no epoch: %r" % (n, d))
    for p in d["peers"]:
        ind = p["indices"]
        if ind != sorted(set(ind)) or len(ind) != p["shared"]:
            sys.exit("%s: indices %r for %r" % (n, ind, p))
        if p["path"] != (p["pairwise"] == "path") or (p["path"] and ind):
            sys.exit("%s: path %r for %r" % (n, p["path"], p))
        back = [q for q in got[p["name"]]["peers"] if q["name"] == n][0]
        if back["indices"] != ind or back["path"] != p["path"]:
            sys.exit("%s and %s disagree: %r, %r" % (n, p["name"], p, back))
PYEOF
[ "$paths" -gt 0 ] || fail "every pair shares a ring key: the test proves nothing (rerun)"

for a in $NAMES; do
	for b in $NAMES; do
		[ "$a" = "$b" ] && continue
		send_msg "$a" "$b" "path $a to $b" | grep -q '"ok":true' || fail "$a cannot send to $b"
	done
done
for a in $NAMES; do
	for b in $NAMES; do
		[ "$a" = "$b" ] && continue
		wait_until 5 received "$b" "path $a to $b" || fail "$b did not receive from $a"
	done
done
grep -h "under a path key" "$T"/*/keyd.log | head -n 3
grep -q "under a path key" "$T"/*/keyd.log || fail "no message went under a path key"
echo ok
