#!/bin/sh
# The home broker as shipped (etc/mosquitto/): a real mosquitto on a host of its own, devices on
# others. Only the home's certificates connect (none, another home's, a revoked one are refused);
# a device publishes under its own name only; queued QoS 1 messages survive a restart of the
# broker; and a reader away for 5,000 messages gets all of them, where mosquitto's default queue
# limit (1000) drops some without a word.
. "$(dirname "$0")/common.sh"
IT_DIR=$(dirname "$0")
. "$IT_DIR/mqtt-common.sh"
need_netns
make_home smith
broker_host 1
device 2 pi2 node
device 3 pi3 node
device 4 pi4 node
# The persistent readers below, on pi3's host: a session is its certificate's (the broker takes
# the client id from the CN), so each needs one of its own.
for c in keeper bulk bulkdef; do mqtt_client "$c" 3; done
broker_start
# A fifth host with no device of this home on it.
add_host 5

say "the broker shows the name the devices expect"
[ "$(broker_cn pi2)" = broker ] || fail "the broker's certificate names '$(broker_cn pi2)', not broker"

say "a device of the home connects, from any host"
mqtt_pub pi2 -t iotsec/smith/pi2/group -m hello -q 1 || fail "pi2 cannot publish"
# pi2's files used from host 5: the host is not what is checked, the certificate is.
# shellcheck disable=SC2046
on 5 mosquitto_pub $(mqtt_tls pi2) -t iotsec/smith/pi2/group -m hello -q 1 ||
	fail "pi2's certificate does not connect from host 5"

say "no certificate: refused"
if on 5 mosquitto_pub -h "$BROKER_IP" -p $BROKER_PORT --cafile "$T/ca/ca.crt" --insecure \
	-t iotsec/smith/pi2/group -m nocert -q 1 >"$T/nocert.out" 2>&1; then
	fail "a client without a certificate published"
fi
if on 5 mosquitto_pub -h "$BROKER_IP" -p $BROKER_PORT -t iotsec/smith/pi2/group -m plain \
	-q 1 >"$T/plain.out" 2>&1; then
	fail "a client without TLS published"
fi

say "a certificate of another home's CA: refused, even with this home's CA to trust the broker"
iotsec-pki init --dir "$T/ca2" --home jones >/dev/null 2>&1 || fail "pki init jones"
iotsec-pki enrol --dir "$T/ca2" --device pi2 --role node --out "$T/stranger" >/dev/null 2>&1 ||
	fail "enrol jones's pi2"
cp "$T/ca/ca.crt" "$T/stranger/ca.crt"
if on 5 mosquitto_pub -h "$BROKER_IP" -p $BROKER_PORT --cafile "$T/stranger/ca.crt" \
	--cert "$T/stranger/pi2.crt" --key "$T/stranger/pi2.key" --insecure \
	-t iotsec/smith/pi2/group -m stranger -q 1 >"$T/stranger.out" 2>&1; then
	fail "a certificate of another home published"
fi
if on 5 mosquitto_sub -h "$BROKER_IP" -p $BROKER_PORT --cafile "$T/stranger/ca.crt" \
	--cert "$T/stranger/pi2.crt" --key "$T/stranger/pi2.key" --insecure \
	-t 'iotsec/#' -E >"$T/stranger-sub.out" 2>&1; then
	fail "a certificate of another home subscribed"
fi

say "a device publishes under its own name only (a reader of # sees no other)"
mqtt_sub_bg pi3 "$T/all.out" -v -q 1 -t '#'
mqtt_pub pi2 -q 1 -t iotsec/smith/pi3/group -m forged-by-pi2 || fail "pi2's publish failed"
mqtt_pub pi2 -q 1 -t iotsec/smith/pi4/emergency -m forged-alarm || fail "pi2's publish failed"
mqtt_pub pi2 -q 1 -t iotsec/smith -m above-the-devices || fail "pi2's publish failed"
mqtt_pub pi2 -q 1 -t other/pi2/group -m outside || fail "pi2's publish failed"
# The same connection path, after the forgeries: once this is in, they would be too.
mqtt_pub pi2 -q 1 -t iotsec/smith/pi2/group -m own-reading || fail "pi2's own publish failed"
mqtt_pub pi4 -q 1 -t iotsec/smith/pi4/doctor -m pi4-reading || fail "pi4's own publish failed"
wait_until 10 mqtt_received "$T/all.out" iotsec/smith/pi2/group own-reading ||
	fail "pi2's reading under its own name did not reach pi3: $(tail -n 5 "$T/all.out")"
wait_until 10 mqtt_received "$T/all.out" iotsec/smith/pi4/doctor pi4-reading ||
	fail "pi4's reading did not reach pi3"
for m in forged-by-pi2 forged-alarm above-the-devices outside; do
	! grep -q "$m" "$T/all.out" || fail "the broker forwarded '$m' from pi2: $(grep "$m" "$T/all.out")"
done
kill "$SUB_PID" 2>/dev/null || true

say "a revoked device is refused once the broker has the new CRL"
iotsec-pki revoke --dir "$T/ca" --device pi4 >/dev/null 2>&1 || fail "revoke pi4"
mqtt_pub pi4 -q 1 -t iotsec/smith/pi4/group -m before-crl || fail "pi4 refused before the new CRL"
broker_stop
cp "$T/ca/crl.pem" "$BROKER_DIR/crl.pem"
chown mosquitto "$BROKER_DIR/crl.pem"
broker_start
if mqtt_pub pi4 -q 1 -t iotsec/smith/pi4/group -m after-crl >"$T/revoked.out" 2>&1; then
	fail "revoked pi4 still publishes"
fi
mqtt_pub pi2 -q 1 -t iotsec/smith/pi2/group -m after-crl || fail "pi2 refused with the new CRL"

say "QoS 1 messages queued for an absent reader survive a restart of the broker"
# -i is what mosquitto_sub needs for -c; the broker names the session by the CN all the same.
mqtt_sub keeper -c -i keeper -q 1 -t 'iotsec/smith/+/group' -E || fail "keeper cannot subscribe"
seq 1 20 | sed 's/^/kept-/' | mqtt_pub pi2 -q 1 -t iotsec/smith/pi2/group -l ||
	fail "pi2 cannot publish"
broker_stop
broker_start
mqtt_sub keeper -c -i keeper -q 1 -t 'iotsec/smith/+/group' -v -C 20 -W 20 >"$T/kept.out" 2>&1 ||
	fail "keeper got $(grep -c kept- "$T/kept.out") of 20 messages after the restart"
[ "$(grep -c '^iotsec/smith/pi2/group kept-' "$T/kept.out")" -eq 20 ] || fail "not the 20 messages"

# queued N SESSION: publish N QoS 1 messages while SESSION (the persistent session of the
# certificate SESSION) is away, then bring it back; print how many distinct messages it gets
# (waiting until 5 s pass without one).
queued() {
	mqtt_sub "$2" -c -i "$2" -q 1 -t iotsec/smith/pi2/bulk -E || fail "$2 cannot subscribe"
	seq 1 "$1" | mqtt_pub pi2 -q 1 -t iotsec/smith/pi2/bulk -l || fail "pi2 cannot publish $1"
	mqtt_sub "$2" -c -i "$2" -q 1 -t iotsec/smith/pi2/bulk -C "$1" -W 60 >"$T/$2.out" 2>&1 &
	_p=$!
	PIDS="$PIDS $_p"
	# -W bounds the whole run; the count stops growing once the queue is drained.
	_last=-1
	_n=0
	while kill -0 "$_p" 2>/dev/null && [ "$_n" != "$_last" ]; do
		_last=$_n
		sleep 5
		_n=$(sort -u "$T/$2.out" | grep -c '^[0-9]*$')
	done
	kill "$_p" 2>/dev/null || true
	wait "$_p" 2>/dev/null || true
	sort -u "$T/$2.out" | grep -c '^[0-9]*$' || true
}

say "5,000 QoS 1 messages for an absent reader: all delivered when it returns"
n=$(queued 5000 bulk)
[ "$n" -eq 5000 ] || fail "the returning reader got $n of 5000 messages"

say "control: with mosquitto's default queue limit (1000) the same reader loses messages"
broker_stop
broker_config 's/^max_queued_messages 0$/max_queued_messages 1000/'
broker_start
n=$(queued 5000 bulkdef)
say "with max_queued_messages 1000 the reader got $n of 5000"
[ "$n" -lt 5000 ] || fail "the default limit dropped nothing: the test above shows nothing"
say "done"
