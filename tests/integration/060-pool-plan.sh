#!/bin/sh
# iotsecctl pool plan reproduces the published figures of SPEC 6 and refuses nonsense.
. "$(dirname "$0")/common.sh"

plan() { iotsecctl pool plan "$@" --json; }
near() { $PY -c "import sys; sys.exit(abs($1 - $2) > $3)"; }

out=$(plan --nodes 10 --probability 0.4 --ring 75 --pool 10000)
p=$(echo "$out" | json_get '["p_share"]')
near "$p" 0.4326 0.0005 || fail "pool 10000, ring 75: p_share $p, want about 0.43 (~0.5 in the paper's plot)"
say "pool 10000, ring 75: p_share $p"

out=$(plan --nodes 2 --probability 0.8 --ring 40 --pool 1000)
p=$(echo "$out" | json_get '["p_share"]')
c=$(echo "$out" | json_get '["p_connected"]')
near "$p" 0.8111 0.0005 || fail "pool 1000, ring 40: p_share $p, want about 0.81"
near "$c" "$p" 0.0000001 || fail "two devices: p_connected $c must equal p_share $p"
say "pool 1000, ring 40: p_share $p; two devices connected with the same probability"

out=$(plan --nodes 10 --probability 0.9)
for k in ring pool p_share p_connected; do echo "$out" | json_get "[\"$k\"]" >/dev/null || fail "no $k"; done
p=$(echo "$out" | json_get '["p_share"]')
$PY -c "import sys; sys.exit(not $p >= 0.9)" || fail "chosen pool misses the target: $p"
say "target 0.9 with rings of 75: pool $(echo "$out" | json_get '["pool"]'), p_share $p"
iotsecctl pool plan --nodes 10 --probability 0.9 | grep -q "^p_connected" || fail "no human output"

bad() {
	rc=0
	iotsecctl pool plan "$@" >/dev/null 2>"$T/err" || rc=$?
	[ $rc -eq 2 ] || fail "'$*' exited $rc, want 2"
	[ -s "$T/err" ] || fail "'$*' gave no reason"
	say "refused '$*': $(cat "$T/err")"
}
bad --nodes 0 --probability 0.9
bad --nodes 10 --probability 1.5
bad --nodes 10 --probability 0
bad --nodes abc --probability 0.9
bad --nodes 10 --probability 0.9 --ring 75 --pool 10
bad --nodes 10 --probability 0.9 --ring 0
bad --nodes 10
bad --probability 0.9
bad --nodes 10 --probability 0.9 --bogus
iotsecctl pool plan --help | grep -q "usage" || fail "no help"
echo ok
