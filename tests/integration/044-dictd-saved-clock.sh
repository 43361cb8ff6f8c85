#!/bin/sh
# Every daemon, not only certd, judges time by the saved last-known-good clock (SPEC 5.2): with
# a saved time ten days ahead of the wall clock, dictd treats a key that expires tomorrow as
# expired, and one that expires in twenty days as good.
. "$(dirname "$0")/common.sh"

one_device
NOW=$(date +%s)
mkdir -p "$DEV/state/certd"
echo $((NOW + 10 * 86400)) >"$DEV/state/certd/clock"

start certd "$DEV/iotsec.conf"
start dictd "$DEV/iotsec.conf"
wait_until 5 unlocked || fail "dictd did not unlock: $(ctl "$SOCK" '{"v":1,"verb":"status"}')"

store() {
	ctl "$SOCK" "{\"v\":1,\"verb\":\"store\",\"records\":[{\"name\":\"pi2\",\"index\":$1,\"epoch\":1,\"key\":\"$(head -c 32 /dev/urandom | base64 -w0)\",\"expires\":$2}]}" |
		grep -q '"ok":true' || fail "store refused"
}
store 1 $((NOW + 86400))
store 2 $((NOW + 20 * 86400))
keys=$(ctl "$SOCK" '{"v":1,"verb":"lookup","name":"pi2","indices":[1,2]}')
echo "$keys" | grep -q '"index":1' && fail "a key that expired by the saved clock was served: $keys"
echo "$keys" | grep -q '"index":2' || fail "the good key was not served: $keys"
say "dictd follows the saved clock: expired by it, refused; still valid by it, served"
echo ok
