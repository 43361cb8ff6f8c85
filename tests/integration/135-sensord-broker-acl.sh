#!/bin/sh
# The broker's rules as the home sees them. A kit publishes only under its own name: what kitA
# publishes on kitB's topics (a reading of kitB it captured, one of its own, junk) reaches no
# subscriber, and kitB's readers never see it (nothing from "kitB" is even refused), while what
# kitA publishes under its own name does go through. A host without a certificate of the home
# CA (none, or one of another CA with the same names) cannot connect at all.
. "$(dirname "$0")/common.sh"
. "$IT_DIR/sensord-common.sh"
need_netns
sensord_home
kit 1 hub controller
kit 2 kitA node "sensors = \"replay:$T/a.csv\"; replay_loop = true;"
kit 3 kitB node "sensors = \"replay:$T/b.csv\"; replay_loop = true;"
device 4 spy node
# The spy's captures, made while its subscriber runs: the broker takes a client's id from its
# certificate, so a second connection with spy's would close the first.
mqtt_client spycap 4
add_host 6 # a stranger
write_csv "$T/a.csv" "attic,17.5,C"
write_csv "$T/b.csv" "cellar,11.5,C"
for n in hub kitA kitB; do run_kit "$n"; done
home_ready hub kitA kitB
mqtt_sub_bg spy "$T/spy.out" -F '%t %x' -t '#'
wait_until 15 opened hub kitA attic 17.5 || fail "hub does not open kitA's readings"
wait_until 10 opened hub kitB cellar 11.5 || fail "hub does not open kitB's readings"

# capture DEVICE: one sealed reading of DEVICE, in hex.
capture() {
	mqtt_sub spycap -t "iotsec/$HOME_NAME/$1/group" -F %x -C 1 -W 10 || fail "no reading of $1 captured"
}
hexb=$(capture kitB)
hexa=$(capture kitA)
sb=$(echo "iotsec/$HOME_NAME/kitB/group $hexb" | headers /dev/stdin | awk '{print $6}')
[ -n "$sb" ] || fail "the capture is no sealed reading: $hexb"
echo "$hexb" | xxd -r -p >"$T/b.bin"
echo "$hexa" | xxd -r -p >"$T/a.bin"
refused_b=$(refused_from hub kitB)

say "kitA publishes on kitB's topics"
B=iotsec/$HOME_NAME/kitB
# With kitA's certificate, its sensord stopped: a second connection with the certificate would
# close sensord's (the broker names both by the CN).
stop_sensord kitA
mqtt_pub kitA -q 1 -t "$B/group" -f "$T/b.bin" || true
mqtt_pub kitA -q 1 -t "$B/group" -f "$T/a.bin" || true
mqtt_pub kitA -q 1 -t "$B/group" -m "forged-by-kitA-1" || true
mqtt_pub kitA -q 1 -t "$B/emergency" -m "forged-by-kitA-2" || true
mqtt_pub kitA -q 1 -r -t "iotsec/$HOME_NAME/drwho/grant/kitB" -m "forged-by-kitA-3" || true
# Under its own name it may: the check below can fail.
mqtt_pub kitA -q 1 -t "iotsec/$HOME_NAME/kitA/note" -m "kitA-own-note" ||
	fail "kitA cannot publish under its own name"
marker=$(printf 'kitA-own-note' | xxd -p)
wait_until 10 grep -q "^iotsec/$HOME_NAME/kitA/note $marker\$" "$T/spy.out" ||
	fail "the spy did not see kitA's own note: $(tail -n 3 "$T/spy.out")"
sleep 1
for m in 1 2 3; do
	h=$(printf 'forged-by-kitA-%s' "$m" | xxd -p)
	grep -q "$h" "$T/spy.out" && fail "the spy received kitA's forged message $m: $(grep "$h" "$T/spy.out")"
done
n=$(grep -c " $hexb\$" "$T/spy.out" || true)
[ "$n" = 1 ] || fail "kitB's reading $sb reached the spy $n times"
grep -q "^$B/group $hexa\$" "$T/spy.out" && fail "kitA's reading reached the spy on kitB's topic"
# No retained message was kept on a topic that is not kitA's.
mqtt_sub spycap -t "iotsec/$HOME_NAME/drwho/grant/kitB" -C 1 -W 2 >"$T/retained" 2>/dev/null || true
[ -s "$T/retained" ] && fail "a retained forged grant: $(cat "$T/retained")"
say "no subscriber got any of them"

c=$(seqs_of hub kitB | grep -cx "$sb" || true)
[ "$c" = 1 ] || fail "hub holds kitB's reading $sb $c times"
[ "$(refused_from hub kitB)" = "$refused_b" ] || fail "hub had something from kitB to refuse: $(sstatus hub)"
[ "$(refused_from kitB kitB)" = 0 ] || fail "kitB: $(sstatus kitB)"
bad=$(readings hub | $PY -c 'import json, sys
print(" ".join("%s/%s" % (r["device"], r["sensor"]) for r in map(json.loads, sys.stdin)
               if (r["device"], r["sensor"]) not in {("kitA", "attic"), ("kitB", "cellar")}))')
[ -z "$bad" ] || fail "hub opened $bad"
say "hub opened kitB's reading $sb once and refused nothing of kitB"

say "a host without a certificate of the home cannot connect"
NOCERT="-h $BROKER_IP -p $BROKER_PORT --cafile $T/ca/ca.crt --insecure"
# shellcheck disable=SC2086
if on 6 timeout 10 mosquitto_pub $NOCERT -q 1 -t "iotsec/$HOME_NAME/stranger/group" -m "stranger-1" \
	>"$T/stranger.out" 2>&1; then
	fail "a client without a certificate published: $(cat "$T/stranger.out")"
fi
# shellcheck disable=SC2086
if on 6 timeout 10 mosquitto_sub $NOCERT -t '#' -C 1 -W 5 >"$T/stranger-sub.out" 2>&1; then
	fail "a client without a certificate subscribed: $(cat "$T/stranger-sub.out")"
fi
# Without TLS at all.
if on 6 timeout 10 mosquitto_pub -h "$BROKER_IP" -p "$BROKER_PORT" -q 1 -t "iotsec/$HOME_NAME/x/group" \
	-m "stranger-2" >"$T/plain.out" 2>&1; then
	fail "a client without TLS published: $(cat "$T/plain.out")"
fi
# A certificate of another CA, with this home's name and kitA's.
iotsec-pki init --dir "$T/other" --home "$HOME_NAME" >/dev/null 2>&1 || fail "pki init (other CA)"
iotsec-pki enrol --dir "$T/other" --device kitA --role node --out "$T/fake" >/dev/null 2>&1 ||
	fail "enrol (other CA)"
if on 6 timeout 10 mosquitto_pub -h "$BROKER_IP" -p "$BROKER_PORT" --cafile "$T/ca/ca.crt" --insecure \
	--cert "$T/fake/kitA.crt" --key "$T/fake/kitA.key" -q 1 -t "iotsec/$HOME_NAME/kitA/group" \
	-m "stranger-3" >"$T/fake.out" 2>&1; then
	fail "a certificate of another CA published: $(cat "$T/fake.out")"
fi
sleep 1
for m in 1 2 3; do
	h=$(printf 'stranger-%s' "$m" | xxd -p)
	grep -q "$h" "$T/spy.out" && fail "the spy received the stranger's message $m"
done
kill -0 "$SUB_PID" || fail "the spy's connection went"
opened hub kitA attic 17.5 || fail "hub lost kitA"
say "refused: no certificate, no TLS, another CA's certificate"
echo ok
