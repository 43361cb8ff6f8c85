#!/bin/sh
# What a device of the home learns from the broker without the group key: an eavesdropper with
# a valid certificate, subscribed to every topic, and the broker's own database hold sealed
# readings only, never a sensor's name or value. A reading captured and published again by its
# own sender is refused by the readers as a replay, and, once older than a reader's freshness
# window, as stale even by a reader that forgot it (restarted); each reading is opened once.
. "$(dirname "$0")/common.sh"
. "$IT_DIR/sensord-common.sh"
need_netns
sensord_home
kit 1 hub controller
kit 2 kitA node "sensors = \"replay:$T/kitA.csv\"; replay_loop = true;"
kit 3 kitB node "fresh_s = 3;"
device 4 spy node # a certificate and nothing else
# The eavesdropper's other clients, run while spy's is connected: the broker takes a client's id
# from its certificate, so each needs a certificate of its own (a second connection with spy's
# would close the first).
mqtt_client spyaway 4
mqtt_client spycap 4
# Values and names that cannot appear by chance in ciphertext, headers or topics.
write_csv "$T/kitA.csv" "# kitA's sensors" "attic_probe,73.125,C" "cellar_hygro,41.875,%"
SECRETS="73.125 41.875 attic_probe cellar_hygro"
for n in hub kitA kitB; do run_kit "$n"; done
home_ready hub kitA kitB
G=iotsec/$HOME_NAME/kitA/group

say "an eavesdropper with spy's certificate subscribes to #"
mqtt_sub_bg spy "$T/spy.out" -F '%t %x' -t '#'
# And a persistent session that goes away: the broker queues every reading for it, in memory
# and, at its next save, in its database.
mqtt_sub spyaway -c -i spyaway -q 1 -t 'iotsec/#' -C 1 -W 15 >/dev/null ||
	fail "the persistent subscriber got nothing"
for n in hub kitB; do
	wait_until 15 opened "$n" kitA attic_probe 73.125 || fail "$n did not open kitA's attic_probe: $(readings "$n" | tail -n 3)"
	wait_until 5 opened "$n" kitA cellar_hygro 41.875 || fail "$n did not open kitA's cellar_hygro"
done
sealed_from_kitA() { [ "$(headers "$T/spy.out" | grep -c "^$G kitA 1 0 ")" -ge 8 ]; }
wait_until 15 sealed_from_kitA || fail "the eavesdropper saw $(headers "$T/spy.out" | grep -c "^$G ") readings of kitA: $(tail -n 3 "$T/spy.out")"
say "hub and kitB open kitA's readings; the eavesdropper has $(headers "$T/spy.out" | grep -c "^$G ") of them"

# leaks FILE: the secrets found in FILE's bytes, in the hex payloads of its "TOPIC HEX" lines,
# and in its topics ("" when none).
leaks() {
	# shellcheck disable=SC2086 # the secrets are words without spaces
	$PY - "$1" $SECRETS <<'PY'
import sys
path, secrets = sys.argv[1], [s.encode() for s in sys.argv[2:]]
raw = open(path, "rb").read()
blobs = [raw]
for line in raw.decode("ascii", "replace").splitlines():
    parts = line.split()
    if len(parts) == 2:
        blobs.append(parts[0].encode())
        try:
            blobs.append(bytes.fromhex(parts[1]))
        except ValueError:
            pass
print(" ".join(sorted({s.decode() for s in secrets for b in blobs if s in b})))
PY
}
found=$(leaks "$T/spy.out")
[ -z "$found" ] || fail "the eavesdropper read $found"
# The check can fail: the same captures, opened, hold the values (readings at hub did).
headers "$T/spy.out" | grep "^$G " | grep -qv " kitA 1 0 " &&
	fail "a reading on kitA's topic that is not a group reading of kitA: $(headers "$T/spy.out" | grep "^$G " | grep -v " kitA 1 0 " | head -n 2)"
say "no sensor name or value in anything the eavesdropper received"

say "a reading captured and published again by kitA is a replay"
capture() {
	mqtt_sub spycap -t "$G" -F '%t %x' -C 1 -W 10 >"$T/$1.hex" || fail "no reading of kitA captured"
	headers "$T/$1.hex" | grep "^$G kitA 1 0 " | awk '{print $6}'
}
S1=$(capture cap1)
[ -n "$S1" ] || fail "the capture is no sealed reading: $(cat "$T/cap1.hex")"
cut -d' ' -f2 "$T/cap1.hex" | xxd -r -p >"$T/cap1.bin"
# republish FILE: kitA's certificate publishes FILE on kitA's topic (the broker takes nothing on
# it from another certificate). kitA's sensord is stopped first: a second connection with its
# certificate would close sensord's (the broker names both by the CN), and the refusals counted
# below are then the replay's alone. sensord subscribes again at each connection, so the clean
# session of this publisher under its name costs it nothing.
republish() {
	stop_sensord kitA
	mqtt_pub kitA -q 1 -t "$G" -f "$1"
}
rh=$(refused_from hub kitA)
rb=$(refused_from kitB kitA)
republish "$T/cap1.bin" || fail "kitA could not publish under its own name"
more_refused() { [ "$(refused_from "$1" kitA)" -gt "$2" ]; }
wait_until 10 more_refused hub "$rh" || fail "hub did not refuse the replay: $(sstatus hub)"
wait_until 10 more_refused kitB "$rb" || fail "kitB did not refuse the replay: $(sstatus kitB)"
grep -q "refused a group reading from kitA: replayed message" "$T/hub/sensord.log" ||
	fail "hub's log does not say why: $(grep refused "$T/hub/sensord.log" | tail -n 3)"
grep -Eq "refused a group reading from kitA: (replayed message|timestamp outside the freshness window)" \
	"$T/kitB/sensord.log" || fail "kitB's log does not say why: $(grep refused "$T/kitB/sensord.log" | tail -n 3)"
for n in hub kitB; do
	c=$(seqs_of "$n" kitA | grep -cx "$S1" || true)
	[ "$c" = 1 ] || fail "$n holds kitA's reading $S1 $c times"
done
say "refused by hub and kitB; seq $S1 opened once by each"
run_sensord kitA
wait_until 20 sensord_ready kitA || fail "kitA's sensord did not come back: $(sstatus kitA)"

say "a reading older than kitB's window (3 s), published again after kitB restarted"
S2=$(capture cap2)
[ -n "$S2" ] || fail "the capture is no sealed reading: $(cat "$T/cap2.hex")"
cut -d' ' -f2 "$T/cap2.hex" | xxd -r -p >"$T/cap2.bin"
has_seq() { seqs_of "$1" kitA | grep -qx "$2"; }
wait_until 5 has_seq kitB "$S2" || fail "kitB did not open seq $S2 in the first place"
stop_sensord kitB
: >"$T/kitB/sensord.log"
run_sensord kitB
wait_until 20 sensord_ready kitB || fail "kitB's sensord did not come back: $(sstatus kitB)"
wait_until 10 opened kitB kitA attic_probe 73.125 || fail "kitB, restarted, opens nothing of kitA"
has_seq kitB "$S2" && fail "kitB, restarted, holds seq $S2 already"
sleep 3 # cap2 is more than 3 s old by now
rh=$(refused_from hub kitA)
rb=$(refused_from kitB kitA)
republish "$T/cap2.bin" || fail "kitA could not publish"
wait_until 10 more_refused kitB "$rb" || fail "kitB did not refuse the stale reading: $(sstatus kitB)"
wait_until 10 more_refused hub "$rh" || fail "hub did not refuse the replay: $(sstatus hub)"
grep -q "refused a group reading from kitA: timestamp outside the freshness window" \
	"$T/kitB/sensord.log" || fail "kitB's log does not say stale: $(grep refused "$T/kitB/sensord.log" | tail -n 3)"
has_seq kitB "$S2" && fail "kitB opened the stale reading $S2"
c=$(seqs_of hub kitA | grep -cx "$S2" || true)
[ "$c" = 1 ] || fail "hub holds kitA's reading $S2 $c times"
kill -0 "$(sensord_pid kitB)" || fail "kitB's sensord died"
say "kitB refused it as stale, hub as a replay"

say "the broker saves its database: sealed readings only"
stop "$SUB_PID"
broker_stop TERM
DB=$BROKER_DIR/db/mosquitto.db
[ -s "$DB" ] || fail "no database in $BROKER_DIR/db: $(ls -l "$BROKER_DIR/db")"
# It holds what waits for spyaway's session: readings of kitA, their headers naming it.
grep -q "$G" "$DB" || fail "the database holds no reading of kitA: the search below would prove nothing"
n=$($PY -c 'import sys; print(open(sys.argv[1], "rb").read().count(b"\x01\x01\x00\x04kitA"))' "$DB")
[ "$n" -ge 5 ] || fail "the database holds $n sealed readings of kitA"
found=$(leaks "$DB")
[ -z "$found" ] || fail "the broker's database holds $found"
say "$n sealed readings of kitA in the database, no name or value"
echo ok
