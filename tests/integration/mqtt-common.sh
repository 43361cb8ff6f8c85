# Shared by the tests that need the home broker (12x-*.sh and sensord's): source it after
# common.sh. A real mosquitto runs on a host of its own with a copy of the shipped
# etc/mosquitto/iotsec-broker.conf in which only the paths are changed, so what the tests hold to
# is the file a household installs. Clients are Debian's mosquitto_pub and mosquitto_sub with a
# device's certificate.

MQTT_ETC=$(cd "$IT_DIR/../../etc/mosquitto" && pwd)
BROKER_DIR=$T/broker
BROKER_PORT=8883
BROKER_HOST=""
BROKER_IP=""
BROKER_PID=""

# broker_enrol [CADIR]: the broker's certificate (CN "broker") from the home CA in CADIR
# (default $T/ca, made by make_home) into $BROKER_DIR, as the README says.
broker_enrol() {
	iotsec-pki enrol --dir "${1:-$T/ca}" --device broker --role node --out "$BROKER_DIR" \
		>"$T/broker-enrol.log" 2>&1 || fail "enrol broker: $(cat "$T/broker-enrol.log")"
}

# broker_host I [CADIR]: broker_enrol, host I for the broker, and its configuration
# (broker_config). BROKER_IP is its address.
broker_host() {
	command -v mosquitto >/dev/null || fail "no mosquitto (scripts/deps.sh test installs it)"
	id mosquitto >/dev/null 2>&1 || fail "no user mosquitto (Debian's mosquitto package makes it)"
	broker_enrol "${2:-$T/ca}"
	add_host "$1"
	BROKER_HOST=$1
	BROKER_IP=$NET.$1
	broker_config ""
}

# broker_config [SED]: $BROKER_DIR/iotsec-broker.conf from the shipped file, its paths moved into
# $BROKER_DIR (persistence in $BROKER_DIR/db), with the sed expression SED applied after that (a
# test that wants a setting other than the shipped one; it fails unless SED changed a line).
# mosquitto drops root for its own user before it reads the certificate, the key and its
# database, as it does on a Pi: the files are given to that user, and $T may be passed through.
broker_config() {
	_c=$BROKER_DIR/iotsec-broker.conf
	mkdir -p "$BROKER_DIR/db"
	cp "$MQTT_ETC/iotsec.acl" "$BROKER_DIR/"
	sed -e "s|/etc/iotsec/mosquitto/|$BROKER_DIR/|g" -e "s|/var/lib/mosquitto/|$BROKER_DIR/db/|g" \
		"$MQTT_ETC/iotsec-broker.conf" >"$_c"
	if grep -n '^[^#]*\(/etc/\|/var/\)' "$_c" >&2; then
		fail "broker_config: a shipped path is left (above)"
	fi
	if [ -n "${1:-}" ]; then
		sed -e "$1" "$_c" >"$_c.new"
		! cmp -s "$_c" "$_c.new" || fail "broker_config: '$1' changed nothing"
		mv "$_c.new" "$_c"
	fi
	chmod 0711 "$T"
	chown -R mosquitto "$BROKER_DIR"
}

# broker_start: run mosquitto on the broker's host until broker_stop or the end of the test, its
# log in $BROKER_DIR/mosquitto.log; wait until it listens. The same database is used each time.
broker_start() {
	ip netns exec "$NS_PREFIX-h$BROKER_HOST" mosquitto -c "$BROKER_DIR/iotsec-broker.conf" \
		>>"$BROKER_DIR/mosquitto.log" 2>&1 &
	BROKER_PID=$!
	PIDS="$PIDS $!"
	DAEMONS="$DAEMONS $!"
	STARTED="$STARTED $!:broker/mosquitto"
	wait_until 10 broker_listens || fail "mosquitto does not listen on $BROKER_IP:$BROKER_PORT"
}

# broker_listens: something listens on the broker's port on its host.
broker_listens() {
	kill -0 "$BROKER_PID" 2>/dev/null &&
		on "$BROKER_HOST" ss -Hltn "sport = :$BROKER_PORT" | grep -q .
}

# broker_stop [SIGNAL]: end mosquitto (SIGTERM: it saves its database first; KILL: a power cut)
# and wait until it is gone.
broker_stop() {
	kill "-${1:-TERM}" "$BROKER_PID" 2>/dev/null || true
	wait "$BROKER_PID" 2>/dev/null || true
	BROKER_PID=""
}

# broker_cn NAME: the CN of the certificate the broker shows to device NAME, checked against the
# home CA (the clients below connect by address with --insecure: the name is checked here, as
# libiotsec/mqtt.c checks it, not by DNS). Empty when the handshake fails.
broker_cn() {
	on "$(host_of "$1")" openssl s_client -connect "$BROKER_IP:$BROKER_PORT" \
		-CAfile "$T/$1/ca.crt" -cert "$T/$1/$1.crt" -key "$T/$1/$1.key" -verify_return_error \
		</dev/null 2>/dev/null | openssl x509 -noout -subject -nameopt RFC2253 2>/dev/null |
		sed -n 's/.*CN=\([^,]*\).*/\1/p'
}

# mqtt_client NAME I: a certificate of the home CA for NAME, in $T/NAME, for clients run on host I
# (already made) and nothing else. The broker names a client by its certificate's CN, whatever
# client id it gives (use_username_as_clientid): a second connection with the same certificate
# closes the first, and a persistent session is the certificate's. So each client that runs
# beside another, and each persistent session, needs a certificate of its own.
mqtt_client() {
	iotsec-pki enrol --dir "$T/ca" --device "$1" --role node --out "$T/$1" >"$T/$1-enrol.log" 2>&1 ||
		fail "enrol $1: $(cat "$T/$1-enrol.log")"
	eval "HOST_$(echo "$1" | tr -c 'a-zA-Z0-9\n' _)=$2"
}

# mqtt_pub NAME ARGS...: mosquitto_pub on NAME's host with NAME's certificate (files
# $T/NAME/NAME.crt, .key and ca.crt as `device` enrols them), ARGS being -t, -m, -q and so on.
mqtt_pub() {
	_n=$1
	shift
	# shellcheck disable=SC2046 # the options are words without spaces
	on "$(host_of "$_n")" mosquitto_pub $(mqtt_tls "$_n") "$@"
}

# mqtt_sub NAME ARGS...: mosquitto_sub likewise, in the foreground (give it -C or -W).
mqtt_sub() {
	_n=$1
	shift
	# shellcheck disable=SC2046
	on "$(host_of "$_n")" mosquitto_sub $(mqtt_tls "$_n") "$@"
}

# mqtt_sub_bg NAME OUT ARGS...: mosquitto_sub in the background, what it prints in OUT, its pid
# in SUB_PID (ended at the end of the test if not before). Returns once it has subscribed (its
# debug lines, line-buffered, say so).
mqtt_sub_bg() {
	_n=$1
	_out=$2
	shift 2
	: >"$_out"
	# shellcheck disable=SC2046
	on "$(host_of "$_n")" stdbuf -oL mosquitto_sub $(mqtt_tls "$_n") -d "$@" >"$_out" 2>&1 &
	# shellcheck disable=SC2034 # for the test that sources us
	SUB_PID=$!
	PIDS="$PIDS $!"
	wait_until 10 grep -q "SUBACK" "$_out" || fail "$_n could not subscribe: $(tail -n 3 "$_out")"
}

# mqtt_tls NAME: the connection options of NAME's clients. --insecure only skips the check of
# the broker's name against the address (broker_cn checks the name); the chain to the home CA is
# still verified.
mqtt_tls() {
	echo "-h $BROKER_IP -p $BROKER_PORT --cafile $T/$1/ca.crt --cert $T/$1/$1.crt --key $T/$1/$1.key --insecure"
}

# mqtt_received OUT TOPIC PAYLOAD: the subscriber whose output is OUT (mosquitto_sub -d -v) got
# PAYLOAD on TOPIC.
mqtt_received() { grep -qxF "$2 $3" "$1"; }
