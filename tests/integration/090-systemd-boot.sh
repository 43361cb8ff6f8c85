#!/bin/sh
# The shipped units under a real systemd: a throw-away Debian bookworm (see bookworm.sh) with
# `make install DESTDIR=... PREFIX=/usr` and a device enrolled as the README says, booted with
# systemd-nspawn on a private network. iotsec.target starts every daemon (Type=notify: active only
# once it said READY=1), each as its own user; `iotsecctl status` sees them all; a daemon killed,
# or one that stops feeding its watchdog, is started again by systemd; a bad setting stops start-up
# with file, line and setting in the journal; the dictionary key is made once and outlives restarts
# and a reboot; a device enrolled again as README says is taken up with no restart by hand; the
# relay's unit is no part of iotsec.target, and with a relay certificate runs iotsec-relayd by
# itself, as its own user, with its store in its own directory, started again when killed; the
# container shuts down cleanly and leaves no process or mount behind.
case ${IOTSEC_BIN:-} in
*/build-san/bin)
	echo "SKIP: the systemd boot is left to the plain 'make check': the sanitizer runtimes are not in the Debian tree"
	exit 77
	;;
esac
. "$(dirname "$0")/bookworm.sh"
UNITS="certd dictd electd keyd pingd sensord"
DICT_KEY=/etc/credstore/iotsec-dict.key

# prop DAEMON PROPERTY: a property of iotsec-DAEMON.service, as systemd has it.
prop() { inside systemctl show -P "$2" "iotsec-$1.service"; }
# all_active: every iotsec unit active and running.
all_active() {
	for _d in $UNITS; do [ "$(prop "$_d" SubState)" = running ] || return 1; done
}
# restarted DAEMON OLD_PID: a new main process, up (Type=notify: it said READY=1 again).
restarted() {
	_p=$(prop "$1" MainPID)
	[ "$_p" -ne 0 ] && [ "$_p" -ne "$2" ] && [ "$(prop "$1" SubState)" = running ]
}
journal() { inside journalctl --no-pager -o cat "$@"; }
key_sum() { inside sha256sum "$DICT_KEY" | cut -d' ' -f1; }
records() { inside iotsecctl status --json | json_get '["daemons"]["dictd"]["records"]'; }
healthy() { inside iotsecctl status >"$T/status.txt" 2>&1; }
# unit_states: each daemon's ActiveState, for a failure message.
unit_states() { for _d in $UNITS; do printf '%s=%s ' "$_d" "$(prop "$_d" ActiveState)"; done; }

T0=$(date +%s)
bw_tree
T1=$(date +%s)
bw_copy
bw_install
[ ! -e "$BW_ROOT$DICT_KEY" ] && [ ! -e "$BW_ROOT/etc/iotsec/dict.key" ] ||
	fail "make install wrote a dictionary key (the unit makes it on the device)"
# A controller: alone it elects itself, so `iotsecctl status` can say all is well.
bw_enrol hub controller
# Every watchdog at 5 s rather than the units' 60 s, so that a daemon that stops feeding it is
# caught within the test. Nothing else of the units changes.
for d in $UNITS; do
	mkdir -p "$BW_ROOT/etc/systemd/system/iotsec-$d.service.d"
	printf '[Service]\nWatchdogSec=5s\n' >"$BW_ROOT/etc/systemd/system/iotsec-$d.service.d/test.conf"
done

say "boot"
bw_boot
T2=$(date +%s)
say "systemd-analyze verify"
# --man=no: no man in the tree (074 checks the pages).
inside sh -c 'systemd-analyze verify --man=no /usr/lib/systemd/system/iotsec*.service \
	/usr/lib/systemd/system/iotsec*.target' >"$T/verify.txt" 2>&1 &&
	[ ! -s "$T/verify.txt" ] || fail "systemd-analyze verify: $(cat "$T/verify.txt")"

# `make install` into DESTDIR cannot make users in the tree, and a system that has booted before
# runs systemd-sysusers only when /usr changes (ConditionNeedsUpdate=/etc): do what make install
# does on the device itself (and the package's postinst), from the file it installed.
say "the users, from the installed sysusers.d file"
inside systemd-sysusers /usr/lib/sysusers.d/iotsec.conf >"$T/sysusers.txt" 2>&1 ||
	fail "systemd-sysusers: $(cat "$T/sysusers.txt")"

say "systemctl enable --now iotsec.target: every daemon active (it said READY=1)"
inside systemctl enable --now iotsec.target >"$T/enable.txt" 2>&1 ||
	fail "enable --now iotsec.target: $(cat "$T/enable.txt")"
STARTED_AT=$(date +%s)
for d in $UNITS; do
	[ "$(prop "$d" Type)" = notify ] || fail "iotsec-$d is Type=$(prop "$d" Type)"
	[ "$(prop "$d" ActiveState)/$(prop "$d" SubState)" = active/running ] ||
		fail "iotsec-$d is $(prop "$d" ActiveState)/$(prop "$d" SubState)"
	[ "$(prop "$d" WatchdogUSec)" = 5s ] || fail "iotsec-$d has WatchdogUSec=$(prop "$d" WatchdogUSec)"
done
[ "$(inside systemctl is-active iotsec.target)" = active ] || fail "iotsec.target is not active"
# The relay runs on a machine of its own: the Pi's target neither wants nor starts it.
[ "$(prop relayd LoadState)" = loaded ] || fail "iotsec-relayd.service is $(prop relayd LoadState)"
[ "$(prop relayd ActiveState)" = inactive ] || fail "iotsec.target started iotsec-relayd"
if inside systemctl show -P Wants iotsec.target | grep -q relayd; then fail "iotsec.target wants the relay"; fi

say "iotsecctl status: every daemon running, and the device its home's controller"
wait_until 20 healthy || fail "iotsecctl status: $(cat "$T/status.txt")"
sed 's/^/  /' "$T/status.txt"
for d in $UNITS; do
	grep -qE "^  $d +running$" "$T/status.txt" || fail "iotsecctl status does not show $d running"
done
grep -q "^role *controller" "$T/status.txt" || fail "not the controller"

say "each daemon runs as its own user, in the group iotsecd"
for d in $UNITS; do
	pid=$(prop "$d" MainPID)
	uid=$(inside awk '/^Uid:/ { print $2 }' "/proc/$pid/status")
	gid=$(inside awk '/^Gid:/ { print $2 }' "/proc/$pid/status")
	want=$(inside id -u "iotsec-$d" 2>/dev/null) || fail "no user iotsec-$d"
	[ "$uid" = "$want" ] && [ "$uid" -ne 0 ] || fail "iotsec-$d runs as uid $uid, not iotsec-$d ($want)"
	[ "$gid" = "$(inside getent group iotsecd | cut -d: -f3)" ] || fail "iotsec-$d runs as gid $gid"
done
# The device key stays root's: the daemons (and their --check-config) get it as a credential.
[ "$(inside stat -c '%a %U' /etc/iotsec/device.key)" = "600 root" ] ||
	fail "/etc/iotsec/device.key is $(inside stat -c '%a %U' /etc/iotsec/device.key)"
say "each daemon's run and state directories are its own: no other daemon may write in them"
for dir in /run/iotsec /var/lib/iotsec; do
	got=$(inside stat -c '%U %A' "$dir")
	case $got in "root "d????-??-?*) ;; *) fail "$dir is '$got': not root's alone to write in" ;; esac
	for d in $UNITS; do
		got=$(inside stat -c '%U %A' "$dir/$d") || fail "no $dir/$d"
		case $got in "iotsec-$d "d????-??-?*) ;; *) fail "$dir/$d is '$got'" ;; esac
	done
done

say "an operator in the group iotsec may read the status; another user may not"
inside useradd --no-create-home --groups iotsec alice
inside useradd --no-create-home mallory
as() { _u=$1; shift; inside setpriv --reuid="$_u" --regid="$_u" --init-groups "$@"; }
as alice iotsecctl status >"$T/alice.txt" 2>&1 || fail "alice (group iotsec): $(cat "$T/alice.txt")"
if as mallory iotsecctl status >"$T/mallory.txt" 2>&1; then fail "mallory may read the status"; fi
grep -q "permission denied: uid $(inside id -u mallory)" "$T/mallory.txt" ||
	fail "mallory is told: $(cat "$T/mallory.txt")"
if grep -E "^  (certd|dictd|electd|keyd|pingd|sensord) +running" "$T/mallory.txt"; then fail "mallory sees daemons running"; fi
sed "s/^/  mallory: /" "$T/mallory.txt" | grep -m 2 "permission denied"

say "the dictionary key: made once, by iotsec-dictd-key.service, and kept by a restart"
inside test -f "$DICT_KEY" || fail "no $DICT_KEY after start-up"
[ "$(inside stat -c '%a %U %s' "$DICT_KEY")" = "600 root 32" ] ||
	fail "$DICT_KEY is $(inside stat -c '%a %U %s bytes' "$DICT_KEY")"
KEY0=$(key_sum)
[ "$(prop dictd-key Result)" = success ] || fail "iotsec-dictd-key.service: $(prop dictd-key Result)"
# The controller's own ring, once it has collected for keyd.collect_ms.
has_ring() { [ "$(records)" -gt 0 ]; }
wait_until 15 has_ring || fail "the controller's ring is not in the dictionary ($(records) records)"
n=$(records)
inside systemctl restart iotsec-dictd-key.service iotsec-dictd.service ||
	fail "restart of dictd: $(journal -u iotsec-dictd -n 5)"
[ "$(key_sum)" = "$KEY0" ] || fail "a restart made a new dictionary key"
wait_until 10 eval '[ "$(records)" = "$n" ]' || fail "after a restart dictd has $(records) records, not $n"

say "every daemon feeds its watchdog (5 s): none restarted after 7 s"
while [ "$(date +%s)" -lt $((STARTED_AT + 7)) ]; do sleep 0.5; done
for d in $UNITS; do
	[ "$(prop "$d" NRestarts)" = 0 ] || fail "iotsec-$d was restarted: $(journal -u "iotsec-$d" -n 8)"
done
if journal -u 'iotsec-*' | grep -E "Watchdog timeout|result 'watchdog'"; then fail "a watchdog fired"; fi

say "SIGKILL to every daemon: systemd starts each again"
pids=""
for d in $UNITS; do pids="$pids $(prop "$d" MainPID)"; done
# shellcheck disable=SC2086
inside sh -c 'kill -KILL "$@"' kill $pids
# shellcheck disable=SC2086
set -- $pids
for d in $UNITS; do
	wait_until 15 restarted "$d" "$1" || fail "iotsec-$d not started again: $(unit_states)"
	[ "$(prop "$d" NRestarts)" = 1 ] || fail "iotsec-$d NRestarts=$(prop "$d" NRestarts)"
	shift
done
wait_until 15 healthy || fail "after SIGKILL: $(cat "$T/status.txt")"

say "a daemon that stops (SIGSTOP) misses its watchdog: systemd kills it and starts it again"
pids=""
for d in $UNITS; do pids="$pids $(prop "$d" MainPID)"; done
# shellcheck disable=SC2086
inside sh -c 'kill -STOP "$@"' kill $pids
# shellcheck disable=SC2086
set -- $pids
for d in $UNITS; do
	wait_until 20 restarted "$d" "$1" || fail "iotsec-$d not started again: $(unit_states)"
	! inside test -e "/proc/$1" || fail "the stopped iotsec-$d (pid $1) is still there"
	journal -u "iotsec-$d" | grep -q "Watchdog timeout" &&
		journal -u "iotsec-$d" | grep -q "Failed with result 'watchdog'" ||
		fail "no watchdog timeout in iotsec-$d's journal: $(journal -u "iotsec-$d" -n 8)"
	[ "$(prop "$d" NRestarts)" = 2 ] || fail "iotsec-$d NRestarts=$(prop "$d" NRestarts)"
	shift
done
journal -u iotsec-keyd | grep -E "Watchdog timeout|result 'watchdog'" | sed 's/^/  /'
wait_until 15 healthy || fail "after the watchdog: $(cat "$T/status.txt")"

say "a bad setting: electd does not start, and its journal names file, line and setting"
CONF=$BW_ROOT/etc/iotsec/iotsec.conf
line=$(grep -n '^ *port = 7450;' "$CONF" | cut -d: -f1)
[ -n "$line" ] || fail "no 'port = 7450;' in the shipped iotsec.conf"
cp "$CONF" "$T/iotsec.conf.good"
sed -i 's/^\( *\)port = 7450;/\1port = 70000;/' "$CONF"
if inside systemctl restart iotsec-electd >"$T/restart.txt" 2>&1; then
	fail "electd restarted with net.port = 70000"
fi
journal -u iotsec-electd | grep "iotsec.conf:$line" | tail -n 1 | sed 's/^/  /'
journal -u iotsec-electd | grep "iotsec.conf:$line" | grep -q "net.port" ||
	fail "electd's journal does not name iotsec.conf:$line and net.port: $(journal -u iotsec-electd -n 6)"
[ "$(prop electd SubState)" != running ] || fail "electd runs with net.port = 70000"
cp "$T/iotsec.conf.good" "$CONF"
inside systemctl reset-failed iotsec-electd.service
inside systemctl start iotsec-electd.service || fail "electd does not start with the setting mended"

say "enrolled again, as README says (the key, then the certificate): no restart by hand"
# certd was handed the old key as a credential: it must exit 75 for Restart=on-failure to start it
# with the new one. An exit 0 there is a clean stop, and leaves the device out of the home.
serial() { inside iotsecctl status --json | json_get '["daemons"]["certd"]["serial"]'; }
SERIAL0=$(serial)
CERTD_RESTARTS=$(prop certd NRestarts)
iotsec-pki revoke --dir "$T/ca" --device hub >/dev/null 2>&1 || fail "iotsec-pki revoke hub"
iotsec-pki enrol --dir "$T/ca" --device hub --role controller --out "$T/hub2" >/dev/null 2>&1 ||
	fail "iotsec-pki enrol hub again"
install -m 0600 "$T/hub2/hub.key" "$BW_ROOT/etc/iotsec/device.key"
install -m 0644 "$T/hub2/hub.crt" "$BW_ROOT/etc/iotsec/device.crt"
install -m 0644 "$T/hub2/crl.pem" "$BW_ROOT/etc/iotsec/"
new_serial() { _s=$(serial) && [ -n "$_s" ] && [ "$_s" != "$SERIAL0" ] && healthy; }
wait_until 20 new_serial ||
	fail "after re-enrolment: certd $(prop certd ActiveState)/$(prop certd Result): $(cat "$T/status.txt")"
[ "$(prop certd NRestarts)" -gt "$CERTD_RESTARTS" ] ||
	fail "certd took the new key up without a restart by systemd: $(journal -u iotsec-certd -n 5)"

say "a reboot: iotsec.target starts at boot, the key and the dictionary are still there"
bw_reboot
wait_until 20 all_active || fail "after the reboot: $(unit_states)"
[ "$(key_sum)" = "$KEY0" ] || fail "the reboot made a new dictionary key"
[ "$(prop dictd-key ActiveState)" != failed ] || fail "iotsec-dictd-key.service failed at boot"
wait_until 20 healthy || fail "after the reboot: $(cat "$T/status.txt")"
[ "$(records)" -ge "$n" ] || fail "after the reboot dictd has $(records) records, not $n"

say "stop and power off: every daemon ends cleanly, nothing is left behind"
inside systemctl stop iotsec.target
# The target's stop job ends before those of the units PartOf= it: wait for them.
for d in $UNITS; do
	wait_until 10 eval '[ "$(prop "$d" ActiveState)" = inactive ]' ||
		fail "iotsec-$d is $(prop "$d" ActiveState) after stop: $(journal -u "iotsec-$d" -n 5)"
	[ "$(prop "$d" Result)" = success ] || fail "iotsec-$d stopped with $(prop "$d" Result)"
done
say "without the device key (not enrolled yet): the units wait, saying for what, and try nothing"
mv "$BW_ROOT/etc/iotsec/device.key" "$BW_ROOT/etc/iotsec/device.key.away"
inside systemctl start iotsec.target
for d in certd electd keyd pingd sensord; do
	[ "$(prop "$d" ConditionResult)" = no ] ||
		fail "iotsec-$d started without a device key: $(prop "$d" ActiveState)"
	[ "$(prop "$d" NRestarts)" = 0 ] || fail "iotsec-$d keeps trying without a device key"
done
inside systemctl status iotsec-certd.service >"$T/nokey.txt" 2>&1 || true
grep -q "ConditionPathExists=/etc/iotsec/device.key" "$T/nokey.txt" ||
	fail "systemctl status does not say what certd waits for: $(cat "$T/nokey.txt")"
mv "$BW_ROOT/etc/iotsec/device.key.away" "$BW_ROOT/etc/iotsec/device.key"
inside systemctl stop iotsec.target

say "the relay's machine: a relay certificate, and iotsec-relayd.service by itself"
iotsec-pki enrol --dir "$T/ca" --device relay1 --role relay --out "$T/relay1" >/dev/null 2>&1 ||
	fail "iotsec-pki enrol relay1 --role relay"
install -m 0644 "$T/relay1/relay1.crt" "$BW_ROOT/etc/iotsec/device.crt"
install -m 0600 "$T/relay1/relay1.key" "$BW_ROOT/etc/iotsec/device.key"
install -m 0644 "$T/relay1/crl.pem" "$BW_ROOT/etc/iotsec/"
# No broker in the container (port 9 refuses): the relay starts all the same, and says so. The
# shipped file has the relay's group: its values are edited in place.
sed -i '/^relay = {/,/^};/ { s/^  broker = "broker";/  broker = "127.0.0.1";/; s/^  broker_port = 8883;/  broker_port = 9;/ }' "$CONF"
grep -q '^  broker_port = 9;' "$CONF" || fail "the shipped iotsec.conf has no relay.broker_port to edit"
inside systemctl start iotsec-relayd >"$T/relayd-start.txt" 2>&1 ||
	fail "systemctl start iotsec-relayd: $(cat "$T/relayd-start.txt") $(journal -u iotsec-relayd -n 10)"
[ "$(prop relayd Type)" = notify ] && [ "$(prop relayd SubState)" = running ] ||
	fail "iotsec-relayd is Type=$(prop relayd Type), $(prop relayd SubState)"
pid=$(prop relayd MainPID)
uid=$(inside awk '/^Uid:/ { print $2 }' "/proc/$pid/status")
[ "$uid" = "$(inside id -u iotsec-relayd)" ] || fail "iotsec-relayd runs as uid $uid"
for d in certd electd keyd pingd sensord; do
	[ "$(prop "$d" ActiveState)" = inactive ] || fail "iotsec-$d runs on the relay's machine"
done
got=$(inside stat -c '%U %a' /var/lib/iotsec/relayd) || fail "no /var/lib/iotsec/relayd"
[ "$got" = "iotsec-relayd 700" ] || fail "/var/lib/iotsec/relayd is '$got'"
wait_until 10 inside test -f /var/lib/iotsec/relayd/relay.db || fail "no store in /var/lib/iotsec/relayd"
got=$(inside stat -c '%U %a' /var/lib/iotsec/relayd/relay.db)
[ "$got" = "iotsec-relayd 600" ] || fail "relay.db is '$got'"
# The doctors' port (relay.http_port 8443, 0x20FB), with no capability.
listening() { inside cat /proc/net/tcp /proc/net/tcp6 | awk '$4 == "0A" { print $2 }' | grep -qi ':20FB$'; }
wait_until 10 listening || fail "nothing listens on 8443"
inside iotsecctl status >"$T/status.txt" 2>&1 || fail "iotsecctl status on the relay's machine: $(cat "$T/status.txt")"
sed 's/^/  /' "$T/status.txt"
grep -qE "^  relayd +running$" "$T/status.txt" && [ "$(grep -c '^  [a-z]' "$T/status.txt")" -eq 1 ] ||
	fail "iotsecctl status on the relay's machine: $(cat "$T/status.txt")"
inside iotsecctl relay >"$T/relay.txt" 2>&1 || fail "iotsecctl relay: $(cat "$T/relay.txt")"
grep -q "^store        sqlite" "$T/relay.txt" || fail "iotsecctl relay: $(cat "$T/relay.txt")"
say "SIGKILL to the relay: systemd starts it again, with its store"
inside sh -c 'kill -KILL "$1"' kill "$pid"
wait_until 15 restarted relayd "$pid" || fail "iotsec-relayd not started again: $(prop relayd ActiveState)"
inside test -f /var/lib/iotsec/relayd/relay.db || fail "the store is gone after a restart"
inside systemctl stop iotsec-relayd
wait_until 10 eval '[ "$(prop relayd ActiveState)" = inactive ]' || fail "iotsec-relayd did not stop"
[ "$(prop relayd Result)" = success ] || fail "iotsec-relayd stopped with $(prop relayd Result)"
bw_shutdown
bw_nothing_left
say "tree $((T1 - T0)) s, install and boot $((T2 - T1)) s, checks $(($(date +%s) - T2)) s"
echo ok
