#!/bin/sh
# A network that refuses every broadcast (no route to the broadcast address) is said once, not
# at every try: electd queries every try_ms and keyd announces every announce_ms.
. "$(dirname "$0")/common.sh"
need_netns
make_home
device 1 hub controller
# 192.0.2.255 (TEST-NET-1): no route from this host.
sed -i "s|broadcast = \"$NET.255\"|broadcast = \"192.0.2.255\"|" "$T/hub/iotsec.conf"
grep -q 192.0.2.255 "$T/hub/iotsec.conf" || fail "the configuration was not changed"
run_all hub
sleep 4
for d in electd keyd; do
	n=$(grep -c "cannot broadcast to 192.0.2.255" "$T/hub/$d.log" || true)
	[ "$n" -eq 1 ] || fail "$d said it cannot broadcast $n times in 4 s, want once"
done
say "each said it once: $(grep -h "cannot broadcast" "$T/hub/electd.log")"
echo ok
