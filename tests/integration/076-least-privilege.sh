#!/bin/sh
# Least privilege, as the shipped units arrange it but without systemd: every daemon of two Pis
# runs as its own user, with run and state directories of its own (RuntimeDirectory=,
# StateDirectory=) and the device key handed over as a credential. The home still forms; each daemon's files are its own;
# the control sockets let in only whom iotsec.conf names (SPEC 5): keyd's rekey and quarantine
# root and keyd.clients (pingd's user), its send and inbox root alone; dictd's keys keyd's and
# sensord's users alone. On the relay's machine, relayd as its own user, its store its alone.
. "$(dirname "$0")/common.sh"
need_netns

# The users the sysusers.d file would make, by number: no account is added to this machine.
GROUP=4400 CERTD=4401 DICTD=4402 ELECTD=4403 KEYD=4404 PINGD=4405 SENSORD=4406 RELAYD=4407
OPERATORS=4410
OPERATOR=4411
STRANGER=4412
uid_of() { eval "echo \$$(echo "$1" | tr a-z A-Z)"; }
# as UID GID COMMAND...: run COMMAND as that user, with no other group.
as() {
	_u=$1 _g=$2
	shift 2
	setpriv --reuid="$_u" --regid="$_g" --clear-groups "$@"
}

make_home
chmod 0711 "$T"
for n in pi1 pi2; do
	device "${n#pi}" "$n" "$([ $n = pi1 ] && echo controller || echo node)"
	D=$T/$n
	# The CA's directory holds its key: each Pi gets copies of what it may read, as on a Pi.
	cp "$T/ca/ca.crt" "$T/ca/crl.pem" "$D/"
	sed -i "s|$T/ca/|$D/|" "$D/iotsec.conf"
	cat >>"$D/iotsec.conf" <<EOF
control = { readers = "@$OPERATORS @$GROUP"; };
sensord = { broker = "127.0.0.1"; broker_port = 9; };
EOF
	sed -i -e "s|key_file = \"$D/dict.key\"; };|key_file = \"$D/dict.key\"; clients = \"$KEYD $SENSORD\"; };|" \
		-e "s|$D/state/keys.dict|$D/state/dictd/keys.dict|" "$D/iotsec.conf"
	grep -q "clients = \"$KEYD $SENSORD\"" "$D/iotsec.conf" || fail "the configuration lacks dictd.clients"
	sed -i "s|announce_ms = 500; };|announce_ms = 500; clients = \"$PINGD\"; };|" "$D/iotsec.conf"
	grep -q "clients = \"$PINGD\"" "$D/iotsec.conf" || fail "the configuration lacks keyd.clients"
	chmod 0755 "$D"
	# What the units' RuntimeDirectory= and StateDirectory= make: root's parents, and below
	# them a directory for each daemon, its own (certd's state readable, for the clock).
	for d in certd dictd electd keyd pingd sensord; do
		mkdir -p "$D/state/$d" "$D/run/$d"
		chown "$(uid_of $d):$GROUP" "$D/state/$d" "$D/run/$d"
		chmod 0700 "$D/state/$d"
	done
	# certd's saved clock and pingd's received CRL are read by the others.
	chmod 0755 "$D/state/certd" "$D/state/pingd"

	say "$n: iotsec-dictd --make-key, as the unit before dictd runs it"
	"$IOTSEC_BIN/iotsec-dictd" -c "$D/iotsec.conf" --make-key >"$T/make-key.out" 2>&1 ||
		fail "--make-key: $(cat "$T/make-key.out")"
	[ "$(stat -c %a:%u "$D/dict.key")" = 600:0 ] || fail "key made $(stat -c %a:%u "$D/dict.key")"
	cp "$D/dict.key" "$T/$n-first.key"
	"$IOTSEC_BIN/iotsec-dictd" -c "$D/iotsec.conf" --make-key >/dev/null 2>&1 || fail "a second --make-key failed"
	cmp -s "$D/dict.key" "$T/$n-first.key" || fail "a second --make-key made another key"

	# LoadCredential=: a copy readable by the daemon's user alone, in a directory of its own.
	for d in certd dictd electd keyd pingd sensord; do
		mkdir -p "$D/creds/$d"
		if [ $d = dictd ]; then cp "$D/dict.key" "$D/creds/$d/dict.key"; else cp "$D/$n.key" "$D/creds/$d/device.key"; fi
		chown -R "$(uid_of $d):$GROUP" "$D/creds/$d"
		chmod 0500 "$D/creds/$d"
		chmod 0400 "$D/creds/$d/"*
	done
	chmod 0755 "$D/creds"
done

# run_as NAME DAEMON: as run does, but as the daemon's own user, with its credentials.
run_as() {
	ip netns exec "$NS_PREFIX-h$(host_of "$1")" setpriv --reuid="$(uid_of "$2")" --regid=$GROUP \
		--clear-groups env CREDENTIALS_DIRECTORY="$T/$1/creds/$2" \
		"$IOTSEC_BIN/iotsec-$2" -c "$T/$1/iotsec.conf" -v >>"$T/$1/$2.log" 2>&1 &
	PIDS="$PIDS $!"
	DAEMONS="$DAEMONS $!"
	STARTED="$STARTED $!:$1/$2"
}

say "every daemon of two Pis, each as its own user"
for n in pi1 pi2; do
	for d in certd dictd electd keyd pingd sensord; do run_as $n $d; done
done
wait_until 30 same_epoch pi1 pi2 || fail "the home did not form with the daemons apart"
for n in pi1 pi2; do
	for d in certd dictd electd keyd pingd sensord; do
		wait_until 10 test -s "$T/$n/run/$d/$d.pid" || fail "$n's $d wrote no pid file"
		pid=$(sed -n 1p "$T/$n/run/$d/$d.pid")
		uid=$(awk '/^Uid:/ {print $2}' "/proc/$pid/status")
		[ "$uid" = "$(uid_of $d)" ] || fail "$n's $d runs as uid $uid"
	done
done
send_msg pi1 pi2 "apart" | grep -q '"ok":true' || fail "pi1 could not send"
wait_until 10 received pi2 "apart" || fail "pi2 did not receive under the pairwise key"

say "each daemon's files are its own, and the others cannot read them"
S=$T/pi1/state
[ "$(stat -c %a:%u "$S/dictd/keys.dict")" = "600:$DICTD" ] || fail "keys.dict is $(stat -c %a:%u "$S/dictd/keys.dict")"
[ "$(stat -c %a:%u "$S/keyd/keyd.state")" = "600:$KEYD" ] ||
	fail "keyd.state is $(stat -c %a:%u "$S/keyd/keyd.state")"
wait_until 10 test -f "$S/pingd/pingd.state" || fail "pingd kept no state"
[ "$(stat -c %a:%u "$S/pingd/pingd.state")" = "600:$PINGD" ] ||
	fail "pingd.state is $(stat -c %a:%u "$S/pingd/pingd.state")"
# pingd hands its quarantine list to keyd as keyd.clients: keyd let it in.
if grep -q "permission denied" "$T/pi1/pingd.log"; then fail "keyd refused pingd: $(grep -m1 'permission denied' "$T/pi1/pingd.log")"; fi
for d in certd electd keyd pingd sensord; do
	if as "$(uid_of $d)" $GROUP cat "$S/dictd/keys.dict" >/dev/null 2>&1; then fail "$d read the dictionary"; fi
	if as "$(uid_of $d)" $GROUP cat "$T/pi1/creds/dictd/dict.key" >/dev/null 2>&1; then
		fail "$d read the dictionary key"
	fi
done
if as $ELECTD $GROUP cat "$T/pi1/creds/keyd/device.key" >/dev/null 2>&1; then fail "electd read keyd's key"; fi
if as $DICTD $GROUP cat "$S/keyd/keyd.state" >/dev/null 2>&1; then fail "dictd read keyd's state"; fi
if as $KEYD $GROUP cat "$S/pingd/pingd.state" >/dev/null 2>&1; then fail "keyd read pingd's state"; fi
# sensord's state (its doctor's keys, its seqs) and spool are its alone.
[ "$(stat -c %a:%u "$S/sensord")" = "700:$SENSORD" ] || fail "sensord's state directory is $(stat -c %a:%u "$S/sensord")"
for d in certd electd keyd pingd; do
	if as "$(uid_of $d)" $GROUP ls "$S/sensord" >/dev/null 2>&1; then fail "$d looked into sensord's state"; fi
	if as "$(uid_of $d)" $GROUP cat "$T/pi1/creds/sensord/device.key" >/dev/null 2>&1; then
		fail "$d read sensord's key"
	fi
done
if as $SENSORD $GROUP cat "$T/pi1/creds/keyd/device.key" >/dev/null 2>&1; then fail "sensord read keyd's key"; fi
say "nor remove, replace or plant any (a socket posing as dictd, a saved clock)"
for f in "$T/pi1/run/dictd/dictd.sock" "$T/pi1/run/dictd/dictd.pid" "$S/keyd/keyd.state" \
	"$S/certd/clock" "$S/pingd/pingd.state"; do
	[ -e "$f" ] || fail "$f is missing"
	if as $ELECTD $GROUP rm -f "$f" 2>/dev/null || [ ! -e "$f" ]; then fail "electd removed $f"; fi
	if as $ELECTD $GROUP mv "$f" "$f.x" 2>/dev/null; then fail "electd moved $f"; fi
	if as $ELECTD $GROUP sh -c "echo x > '$f'" 2>/dev/null; then fail "electd wrote $f"; fi
done
for d in certd dictd keyd pingd sensord; do
	for dir in "$S/$d" "$T/pi1/run/$d"; do
		if as $ELECTD $GROUP touch "$dir/planted" 2>/dev/null; then fail "electd planted a file in $dir"; fi
	done
done
if as $ELECTD $GROUP sh -c "echo x > '$S/dictd/keys.dict'" 2>/dev/null; then fail "electd wrote the dictionary"; fi

say "dictd's key verbs: keyd's and sensord's users alone"
LOOKUP='{"v":1,"verb":"lookup","name":"-ring","indices":[0]}'
ctl "$T/pi1/run/dictd/dictd.sock" "$LOOKUP" >"$T/root.out"
grep -q '"error":"permission denied"' "$T/root.out" || fail "root looked up a key: $(cat "$T/root.out")"
for d in certd electd pingd; do
	as "$(uid_of $d)" $GROUP $PY "$IT_DIR/ctl.py" "$T/pi1/run/dictd/dictd.sock" "$LOOKUP" >"$T/$d.out"
	grep -q '"error":"permission denied"' "$T/$d.out" || fail "$d looked up a key: $(cat "$T/$d.out")"
done
as $KEYD $GROUP $PY "$IT_DIR/ctl.py" "$T/pi1/run/dictd/dictd.sock" "$LOOKUP" >"$T/keyd.out"
grep -q "\"ok\":true" "$T/keyd.out" || fail "keyd was refused: $(cat "$T/keyd.out")"
# sensord looks up the group stream's root (dictd.clients names it).
as $SENSORD $GROUP $PY "$IT_DIR/ctl.py" "$T/pi1/run/dictd/dictd.sock" \
	'{"v":1,"verb":"lookup","name":"-group","indices":[1]}' >"$T/sensord.out"
grep -q "\"ok\":true" "$T/sensord.out" || fail "sensord was refused: $(cat "$T/sensord.out")"
if grep -q "permission denied" "$T/pi1/sensord.log"; then fail "a daemon refused sensord: $(grep -m1 'permission denied' "$T/pi1/sensord.log")"; fi

say "an operator (group $OPERATORS) reads status, and changes nothing"
as $OPERATOR $OPERATORS iotsecctl -c "$T/pi1/iotsec.conf" status >"$T/op.out" 2>&1 && st=0 || st=$?
[ $st -le 1 ] || fail "iotsecctl status as an operator: exit $st: $(cat "$T/op.out")"
for d in certd dictd electd keyd pingd sensord; do
	grep -q "$d.*running" "$T/op.out" || fail "the operator does not see $d running: $(cat "$T/op.out")"
done
if as $OPERATOR $OPERATORS iotsecctl -c "$T/pi1/iotsec.conf" dict lock >"$T/op-lock.out" 2>&1; then
	fail "an operator locked the dictionary"
fi
grep -q "permission denied" "$T/op-lock.out" || fail "lock as an operator says: $(cat "$T/op-lock.out")"

say "anyone else is turned away, told why"
as $STRANGER $STRANGER iotsecctl -c "$T/pi1/iotsec.conf" status >"$T/stranger.out" 2>&1 && st=0 || st=$?
[ $st -gt 1 ] || fail "a stranger read the status (exit $st)"
grep -q "uid $STRANGER is not among this socket's users" "$T/stranger.out" ||
	fail "the stranger is told: $(cat "$T/stranger.out")"
# Every daemon runs: 4 (cannot tell) and how to be let in, never 3 and "not running", which
# would send the user off to start daemons that run.
[ $st -eq 4 ] || fail "status exits $st for a user it turns away, not 4: $(cat "$T/stranger.out")"
if grep -q "not running" "$T/stranger.out"; then fail "the stranger is told a daemon is not running"; fi
grep -q "join a group of control.readers" "$T/stranger.out" ||
	fail "the stranger is not told how to be let in: $(cat "$T/stranger.out")"
for d in certd dictd electd keyd pingd sensord; do
	out=$(as $STRANGER $STRANGER $PY "$IT_DIR/ctl.py" "$T/pi1/run/$d/$d.sock" '{"v":1,"verb":"status"}')
	echo "$out" | grep -q "permission denied: uid $STRANGER" || fail "$d let a stranger in: $out"
done

say "keyd's rekey and quarantine: root and keyd.clients (pingd's user); send and inbox: not them"
K=$T/pi1/run/keyd/keyd.sock
keyd_as() { as "$1" "$2" $PY "$IT_DIR/ctl.py" "$K" "$3"; }
out=$(keyd_as $PINGD $GROUP '{"v":1,"verb":"quarantine","names":["pi9"]}')
echo "$out" | grep -q '"ok":true' || fail "keyd.clients could not set the quarantine: $out"
ctl "$K" '{"v":1,"verb":"status"}' | grep -q '"quarantine": *\["pi9"\]' || fail "quarantine not taken"
for who in "$OPERATOR $OPERATORS" "$ELECTD $GROUP"; do
	# shellcheck disable=SC2086 # uid and gid
	out=$(keyd_as $who '{"v":1,"verb":"quarantine","names":[]}')
	echo "$out" | grep -q '"error":"permission denied"' || fail "a reader ($who) set the quarantine: $out"
	# shellcheck disable=SC2086
	out=$(keyd_as $who '{"v":1,"verb":"rekey"}')
	echo "$out" | grep -q '"error":"permission denied"' || fail "a reader ($who) asked for a rekey: $out"
done
ctl "$K" '{"v":1,"verb":"status"}' | grep -q '"quarantine": *\["pi9"\]' || fail "a refused call changed the quarantine"
for verb in send inbox; do
	out=$(keyd_as $PINGD $GROUP "{\"v\":1,\"verb\":\"$verb\",\"peer\":\"pi2\",\"text\":\"x\"}")
	echo "$out" | grep -q '"error":"permission denied"' || fail "keyd.clients may $verb: $out"
done
e0=$(epoch pi1)
out=$(keyd_as $PINGD $GROUP '{"v":1,"verb":"rekey"}')
echo "$out" | grep -q '"ok":true' || fail "keyd.clients could not ask for a rekey: $out"
out=$(ctl "$K" '{"v":1,"verb":"quarantine","names":[]}')
echo "$out" | grep -q '"ok":true' || fail "root could not set the quarantine: $out"
newer() { [ "$(epoch pi1)" -gt "$e0" ] && same_epoch pi1 pi2; }
wait_until 30 newer || fail "no new pool after the rekey: $(epoch pi1) $(epoch pi2)"

say "the home still works after all that"
send_msg pi2 pi1 "still" | grep -q '"ok":true' || fail "pi2 could not send"
wait_until 10 received pi1 "still" || fail "pi1 did not receive"

say "the relay's machine: iotsec-relayd as its own user, its store its alone"
device 3 relay1 relay
D=$T/relay1
cp "$T/ca/ca.crt" "$T/ca/crl.pem" "$D/"
sed -i "s|$T/ca/|$D/|" "$D/iotsec.conf"
# No broker here (port 9 refuses) and no HTTPS: the relay runs all the same.
cat >>"$D/iotsec.conf" <<EOF
control = { readers = "@$OPERATORS @$GROUP"; };
relay = { broker = "127.0.0.1"; broker_port = 9; http_port = 0;
  database = "$D/state/relayd/relay.db"; };
EOF
chmod 0755 "$D"
mkdir -p "$D/state/relayd" "$D/run/relayd" "$D/creds/relayd"
chown "$RELAYD:$GROUP" "$D/state/relayd" "$D/run/relayd"
chmod 0700 "$D/state/relayd"
cp "$D/relay1.key" "$D/creds/relayd/device.key"
chown -R "$RELAYD:$GROUP" "$D/creds/relayd"
chmod 0500 "$D/creds/relayd"
chmod 0400 "$D/creds/relayd/device.key"
chmod 0755 "$D/creds"
run_as relay1 relayd
wait_until 10 test -s "$D/run/relayd/relayd.pid" || fail "relayd wrote no pid file"
pid=$(sed -n 1p "$D/run/relayd/relayd.pid")
uid=$(awk '/^Uid:/ {print $2}' "/proc/$pid/status")
[ "$uid" = "$RELAYD" ] || fail "relayd runs as uid $uid"
wait_until 10 test -f "$D/state/relayd/relay.db" || fail "relayd made no store"
[ "$(stat -c %a:%u "$D/state/relayd/relay.db")" = "600:$RELAYD" ] ||
	fail "relay.db is $(stat -c %a:%u "$D/state/relayd/relay.db")"
for d in certd electd keyd pingd sensord; do
	if as "$(uid_of $d)" $GROUP ls "$D/state/relayd" >/dev/null 2>&1; then fail "$d looked into the relay's state"; fi
	if as "$(uid_of $d)" $GROUP cat "$D/state/relayd/relay.db" >/dev/null 2>&1; then fail "$d read the relay's store"; fi
	if as "$(uid_of $d)" $GROUP cat "$D/creds/relayd/device.key" >/dev/null 2>&1; then fail "$d read the relay's key"; fi
	if as "$(uid_of $d)" $GROUP touch "$D/run/relayd/planted" 2>/dev/null; then fail "$d planted a file in the relay's run directory"; fi
done
say "an operator reads the relay's status and figures; anyone else is turned away"
wait_until 10 as $OPERATOR $OPERATORS iotsecctl -c "$D/iotsec.conf" status ||
	fail "iotsecctl status on the relay's machine as an operator: $(as $OPERATOR $OPERATORS iotsecctl -c "$D/iotsec.conf" status 2>&1)"
as $OPERATOR $OPERATORS iotsecctl -c "$D/iotsec.conf" relay >"$T/op-relay.out" 2>&1 ||
	fail "iotsecctl relay as an operator: $(cat "$T/op-relay.out")"
st=0
as $STRANGER $STRANGER iotsecctl -c "$D/iotsec.conf" relay >"$T/stranger-relay.out" 2>&1 || st=$?
[ $st -eq 1 ] && grep -q "uid $STRANGER is not among this socket's users" "$T/stranger-relay.out" ||
	fail "iotsecctl relay as a stranger: exit $st: $(cat "$T/stranger-relay.out")"
say "PASS"
