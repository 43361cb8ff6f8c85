#!/bin/sh
# An enrolled device gone bad connects to the broker with another device's MQTT client id. Unless
# the broker takes the client id from the certificate (use_username_as_clientid), that takes the
# other's session over: the broker closes kitA's connection at each attempt, and a clean session
# under kitA's id throws away what was queued for it (a doctor's acknowledgement, say). kitA must
# stay connected and keep publishing whatever client id the spy claims.
. "$(dirname "$0")/common.sh"
. "$IT_DIR/sensord-common.sh"
need_netns
sensord_home
kit 1 hub controller
kit 2 kitA node "sensors = \"replay:$T/a.csv\"; replay_loop = true;"
device 4 spy node
write_csv "$T/a.csv" "attic,17.5,C"
for n in hub kitA; do run_kit "$n"; done
home_ready hub kitA
wait_until 15 opened hub kitA attic 17.5 || fail "hub does not open kitA's readings"

mark=$(wc -l <"$T/kitA/sensord.log")
published=$(sfield kitA published)
say "the spy connects again and again as client kitA, for 5 s"
end=$(($(date +%s) + 5))
n=0
while [ "$(date +%s)" -lt "$end" ]; do
	mqtt_sub spy -i kitA -t "iotsec/$HOME_NAME/spy/x" -W 1 >/dev/null 2>&1 || true
	n=$((n + 1))
done
say "$n connections made"
sleep 1
if tail -n "+$((mark + 1))" "$T/kitA/sensord.log" | grep -q "readings wait in the spool"; then
	fail "kitA lost its broker connection to the spy: $(tail -n "+$((mark + 1))" "$T/kitA/sensord.log" | grep -i broker | head -n 3)"
fi
[ "$(sfield kitA broker)" = connected ] || fail "kitA: $(sstatus kitA)"
now=$(sfield kitA published)
[ "$now" -gt "$published" ] || fail "kitA published nothing meanwhile ($published, then $now)"
say "kitA stayed connected and published $((now - published)) readings"
echo ok
