#!/bin/sh
# Two relays on one PostgreSQL database, sharing the home's readings (relay.share: an MQTT shared
# subscription, each reading to one of them). kit1 trusts the receipts of both and sends 10,000
# readings; both store some, then relay2 is killed with SIGKILL and started again a few seconds
# later, while relay1 goes on. What relay2 had not receipted comes again from kit1, through
# relay1 or relay2's own backlog at the broker: the database holds each reading once, drwho
# fetches through relay1 all 10,000 once, each sensor's in order, and kit1 holds nothing at the
# end. A dump of the database holds no value and no key.
#
# The shipped broker configuration needs nothing for $share: mosquitto (2.0) checks each message
# against the ACL as it delivers it, under the message's own topic (iotsec/<home>/<kit>/doctor,
# which `pattern read iotsec/#` allows), not the subscription's $share/<group>/ form. A member
# that is gone keeps its share while its persistent session lasts (mosquitto gives each reading to
# the next member in turn, connected or not): what it is given waits at the broker for it, and
# the kit sends it again after receipt_s, to the next member in turn. relay2 comes back here; had
# it not, the readings still all arrive, later (about 30 s more in this test).
. "$(dirname "$0")/common.sh"
. "$IT_DIR/sensord-common.sh"
. "$IT_DIR/relay-common.sh"
. "$IT_DIR/pg-common.sh"
need_pg
need_netns
# The server listens only on a unix socket in $T/pg: the relays' hosts are network namespaces,
# which share the file system, so each reaches it there.
start_pg "$T/pg"
BULK_RELAYS="relay1 relay2"
BULK_RELAY_SETTINGS="store = \"postgresql\"; pg = \"$PG_CONNINFO\"; share = \"relays\";"
RELAY_KIT='relay = "relay1 relay2"; receipt_s = 3;'
bulk_home
for r in relay1 relay2; do
	[ "$(rfield "$r" relay store)" = postgresql ] || fail "$r does not use PostgreSQL: $(relay_call "$r" relay)"
done
say "kit1 sends 10,000 readings to relay1 and relay2, which share them"

# Both take part: the shared subscription gives each instance some of the readings.
both_store() { [ "$(rfield relay1 status stored)" -gt 0 ] && [ "$(rfield relay2 status stored)" -gt 0 ]; }
wait_until 10 both_store || fail "the readings are not shared: relay1 stored $(rfield relay1 status stored), relay2 $(rfield relay2 status stored)"
# 2 to 5 s into the sending, relay2 dies; it is away 4 s.
sleep "$(awk -v r="$(od -An -N2 -tu2 /dev/urandom)" 'BEGIN { printf "%.2f", 2 + 3 * r / 65535 }')"
S1=$(rfield relay1 status stored)
S2=$(rfield relay2 status stored)
if [ "$S1" -eq 0 ] || [ "$S2" -eq 0 ]; then fail "the readings are not shared: relay1 stored $S1, relay2 $S2"; fi
# And each reading went to one of them: two plain subscribers would each receive every reading,
# and one of the two copies would be a duplicate. Here none is, but for a rare one sent again
# after receipt_s (a reading whose receipt the kit was slow to take).
D=$(($(rfield relay1 status duplicates) + $(rfield relay2 status duplicates)))
[ $((D * 20)) -le $((S1 + S2)) ] ||
	fail "$D duplicates for $((S1 + S2)) stored: each reading went to both relays: $(relay_call relay1 status) $(relay_call relay2 status)"
kill -KILL "$(relay_pid relay2)"
wait "$(relay_pid relay2)" 2>/dev/null || true
say "relay2 killed; it had stored $S2 readings, relay1 $S1, $D duplicates"
sleep 4
run_relay relay2
wait_until 10 relay_ready relay2 || fail "relay2 did not come back: $(relay_call relay2 status)"
say "relay2 is back"

bulk_check
say "drwho fetched through relay1 all 10,000 readings, each once, each sensor's in order"

R=$(pg_sql "SELECT count(*), count(DISTINCT (stream, seq)), count(*) FILTER (WHERE NOT delivered) FROM readings") ||
	fail "cannot count the readings"
[ "$R" = "$((10 * BULK_ROWS))|$((10 * BULK_ROWS))|0" ] ||
	fail "the database holds (readings, distinct, undelivered) $R, not $((10 * BULK_ROWS)) once each, all delivered"
# Two instances inserting into one table at once wait for each other, never deadlock or fail a
# commit (store_pg.c sorts each batch); and nothing of kit1's is refused.
for r in relay1 relay2; do
	if [ "$(rfield "$r" status commit_failures)" != 0 ] || [ "$(rfield "$r" status refused)" != 0 ]; then
		fail "$r failed commits or refused readings: $(relay_call "$r" status)"
	fi
done
say "the database holds each reading once (relay1 stored $(rfield relay1 status stored), relay2 since its start $(rfield relay2 status stored); duplicates $(rfield relay1 status duplicates) and $(rfield relay2 status duplicates))"

# No value and no key in the database or in the relays' logs: the root drwho keeps (its bytes,
# as a bytea would show them in hex, and its base64), the plaintext's JSON (sensor names, values,
# the unit) as text and as the hex of a bytea. A bare value or sensor name ("d0", "17") is too
# short to look for in hex: its JSON around it is what a leak would show.
ROOT_B64=$($PY -c 'import json, sys; print(json.load(open(sys.argv[1]))["root"])' "$T/drwho/roots/kit1.json") ||
	fail "cannot read drwho's root of kit1"
ROOT_HEX=$($PY -c 'import base64, sys; print(base64.b64decode(sys.argv[1]).hex())' "$ROOT_B64")
[ ${#ROOT_HEX} -ge 32 ] || fail "drwho's root of kit1 is too short: $ROOT_HEX"
"$PG_BIN/pg_dump" -h "$PG_DIR" -U "$PG_USER" "$PG_DB" >"$T/dump.sql" 2>"$T/dump.err" ||
	fail "pg_dump: $(cat "$T/dump.err")"
grep -q "^COPY public.readings" "$T/dump.sql" || fail "the dump holds no readings"
for needle in "$ROOT_HEX" "$ROOT_B64" '"sensor"' '"value"' '"unit"' '/min' kit1; do
	if grep -qiF -- "$needle" "$T/dump.sql"; then fail "the database holds '$needle'"; fi
	for r in relay1 relay2; do
		if grep -qiF -- "$needle" "$T/$r/relayd.log"; then fail "$r's log holds '$needle'"; fi
	done
done
for s in $BULK_SENSORS; do
	if grep -qw -- "$s" "$T/dump.sql"; then fail "the database holds the sensor name $s"; fi
	for word in "\"sensor\":\"$s\"" "{\"sensor\":\"$s\",\"value\":"; do
		hex=$(printf '%s' "$word" | od -An -tx1 | tr -d ' \n')
		if grep -qiF "$hex" "$T/dump.sql"; then fail "the database holds '$word' in a bytea"; fi
	done
done
for word in '"value":' '"unit":"/min"' '/min'; do
	hex=$(printf '%s' "$word" | od -An -tx1 | tr -d ' \n')
	if grep -qiF "$hex" "$T/dump.sql"; then fail "the database holds '$word' in a bytea"; fi
done
say "the database and the relays' logs hold no value and no key"
