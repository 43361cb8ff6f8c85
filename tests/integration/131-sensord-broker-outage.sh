#!/bin/sh
# The broker goes away for a minute in the middle of a stream of readings (two a second) and
# comes back: the sender's spool holds what it could not publish and sends it, in order, once the
# broker is back. Nothing is lost and the order is kept, at a reader of the home (its readings,
# seqs of the sender contiguous) and at a raw persistent subscriber (the sealed headers). The
# stream's epoch changes during the outage: readings sealed before it are opened after it.
. "$(dirname "$0")/common.sh"
. "$IT_DIR/sensord-common.sh"
need_netns
# Epochs of two minutes, the next one starting a minute from now: inside the outage, whatever
# the speed of the set-up.
STREAM_INTERVAL=120
STREAM_START=$(($(date +%s) + 60 - STREAM_INTERVAL))
OUTAGE=60
sensord_home
kit 1 hub controller
kit 2 kitA node "sensors = \"flow=replay:$T/flow.csv\"; replay_loop = true;"
write_csv "$T/flow.csv" "flow,1.5,l" "flow,2.5,l" "flow,3.5,l"
for n in hub kitA; do run_kit "$n"; done
home_ready hub kitA
G=iotsec/$HOME_NAME/kitA/group

# The raw subscriber's session is persistent (-c): what is published while it is away waits
# for it at the broker, which saves it when stopped.
# On hub's host with a certificate of its own: hub's sensord runs beside it, and the broker
# names a client, and its persistent session, by its certificate's CN.
mqtt_client raw 1
mqtt_sub_bg raw "$T/raw1.out" -c -i raw -q 1 -t "$G" -F '%t %x'
RAW=$SUB_PID
flowing() { [ "$(seqs_of hub kitA | wc -l)" -ge 10 ]; }
wait_until 20 flowing || fail "hub opened $(seqs_of hub kitA | wc -l) readings of kitA"
before=$(seqs_of hub kitA | tail -n 1)
pub0=$(sfield kitA published)
say "hub opens kitA's readings (seq $before); the broker stops for $OUTAGE s"

broker_stop TERM
t0=$(date +%s)
max=0
saw_connecting=no
while [ $(($(date +%s) - t0)) -lt $OUTAGE ]; do
	s=$(sfield kitA spooled)
	[ -n "$s" ] && [ "$s" -gt "$max" ] && max=$s
	[ "$(sfield kitA broker)" = connecting ] && saw_connecting=yes
	sleep 2
done
kill -0 "$(sensord_pid kitA)" || fail "kitA's sensord died without its broker"
[ "$saw_connecting" = yes ] || fail "kitA's status never said connecting: $(sstatus kitA)"
# Two readings a second for a minute; the first seconds may still have gone out.
[ "$max" -ge 80 ] || fail "kitA's spool held at most $max readings during the outage: $(sstatus kitA)"
grep -q "readings wait in the spool" "$T/kitA/sensord.log" || fail "kitA's log does not say where readings go"
say "kitA spooled up to $max readings; the broker starts again"

broker_start
t1=$(date +%s)
# mosquitto_sub reconnects by itself; if it gave up, the same session is taken up again.
if ! kill -0 "$RAW" 2>/dev/null; then
	mqtt_sub_bg raw "$T/raw2.out" -c -i raw -q 1 -t "$G" -F '%t %x'
	RAW=$SUB_PID
fi
drained() { [ "$(sfield kitA spooled)" = 0 ] && [ "$(sfield kitA broker)" = connected ]; }
# The daemons' reconnection backs off up to 30 s.
wait_until 60 drained || fail "kitA's spool did not drain: $(sstatus kitA)"
last=$(sfield kitA published)
[ "$last" -gt $((pub0 + max)) ] || fail "kitA published $((last - pub0)) readings since the outage began, spooled $max"
# raw_seqs: the seqs of kitA's readings the raw subscriber received, in its order.
raw_seqs() { cat "$T"/raw*.out | headers /dev/stdin | awk -v g="$G" '$1 == g && $2 == "kitA" {print $6}'; }
caught_up() {
	[ "$(seqs_of hub kitA | tail -n 1)" -gt $((before + max)) ] &&
		[ "$(raw_seqs | sort -n | tail -n 1)" -ge "$(seqs_of hub kitA | tail -n 1)" ]
}
wait_until 20 caught_up || fail "the readers did not catch up: hub at $(seqs_of hub kitA | tail -n 1), raw at $(raw_seqs | sort -n | tail -n 1)"
say "drained $(($(date +%s) - t1)) s after the broker came back"

# contiguous WHO: the seqs on stdin, repeats of a seq already seen dropped (QoS 1 may deliver
# twice), go up by one each, and span the outage.
contiguous() {
	$PY -c 'import sys
who, before, max_ = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
seen, seqs = set(), []
for l in sys.stdin:
    s = int(l)
    if s not in seen:
        seen.add(s)
        seqs.append(s)
gaps = [(a, b) for a, b in zip(seqs, seqs[1:]) if b != a + 1]
if gaps:
    sys.exit("%s: seqs not contiguous or out of order at %s" % (who, gaps[:5]))
if not seqs or seqs[0] > before or seqs[-1] < before + max_:
    sys.exit("%s: seqs %s..%s do not span the outage (%d..%d)" % (who, seqs[:1], seqs[-1:], before, before + max_))
print("%s: %d readings, seqs %d..%d" % (who, len(seqs), seqs[0], seqs[-1]))' "$@"
}
r=$(seqs_of hub kitA | contiguous hub "$before" "$max" 2>&1) || fail "$r"
say "$r"
r=$(raw_seqs | contiguous "raw subscriber" "$before" "$max" 2>&1) || fail "$r"
say "$r"
[ "$(sfield kitA spool_dropped)" = 0 ] || fail "kitA dropped readings: $(sstatus kitA)"
[ "$(refused_from hub kitA)" = 0 ] || fail "hub refused readings of kitA: $(sstatus hub)"
epochs=$(readings hub | $PY -c 'import json, sys
print(" ".join(sorted({str(json.loads(l)["epoch"]) for l in sys.stdin})))')
raw_epochs=$(cat "$T"/raw*.out | headers /dev/stdin | awk -v g="$G" '$1 == g {print $5}' | sort -u | tr '\n' ' ')
say "epochs of the readings hub opened: $epochs; the raw subscriber's: $raw_epochs"
# When the set-up was quick enough for the next epoch to begin well inside the outage (it
# nearly always is), readings of both were spooled, and both opened.
boundary=$((STREAM_START + STREAM_INTERVAL))
if [ "$boundary" -gt $((t0 + 5)) ] && [ "$boundary" -lt $((t0 + OUTAGE - 5)) ]; then
	[ "$epochs" = "1 2" ] || fail "epoch 2 began during the outage, yet hub opened readings of epochs $epochs"
	[ "$raw_epochs" = "1 2 " ] || fail "epoch 2 began during the outage, yet the raw subscriber got epochs $raw_epochs"
fi
echo ok
