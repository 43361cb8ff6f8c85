#!/bin/sh
# Every ```sh block of README.md runs as written, in order, on one machine playing both the
# administrator's part and the Pi's. It runs in mount and network namespaces of its own: /etc,
# /usr/local and /var/lib are overlays whose changes land in the scratch directory, /run is
# empty, and the network is a veth pair of its own, so nothing of this machine is touched. Where this
# machine cannot do what a line says, the line is done another way, and the output says so:
#   make ...                      runs on this checkout (under SANITIZE=1 too, as the run does);
#   systemctl enable --now iotsec.target
#                                 runs each unit's ExecStartPre and ExecStart by hand, under a
#                                 loop that starts a daemon again after a failure (no systemd);
#   systemctl restart mosquitto   runs the ExecStart of the README's drop-in the same way;
#   iotsecctl status, rekey       are tried for 15 s: the daemons join the home and elect a
#                                 controller within seconds of starting (and of a re-enrolment).
# Then: `man iotsecctl` works, bash completes iotsecctl's commands, and the target's
# Documentation= names files that were installed.
if [ -z "${README_NS:-}" ]; then
	[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root for mount and network namespaces"; exit 77; }
	README_NS=1 exec unshare --mount --propagation private --net "$0" "$@"
fi
. "$(dirname "$0")/common.sh"
REPO=$(cd "$IT_DIR/../.." && pwd)
case $IOTSEC_BIN in */build-san/bin) SAN=1 ;; *) SAN=0 ;; esac

say "a machine of our own"
for d in etc usr/local var/lib; do
	n=$(echo "$d" | tr / _)
	mkdir -p "$T/ov/$n.up" "$T/ov/$n.work"
	mount -t overlay overlay -o "lowerdir=/$d,upperdir=$T/ov/$n.up,workdir=$T/ov/$n.work" "/$d"
done
mount -t tmpfs tmpfs /run
ip link set lo up
ip link add v0 type veth peer name v1
ip addr add 10.9.0.1/24 broadcast 10.9.0.255 dev v0
ip link set v0 up
ip link set v1 up
ip route add default dev v0
mkdir -p "$T/home" "$T/work" "$T/pi"
export HOME=$T/home
PATH=/usr/local/bin:$PATH
cd "$T/work"

# What the README's lines call that this machine does differently (see the top).
sudo() { "$@"; }
make() { command make -C "$REPO" --no-print-directory SANITIZE=$SAN "$@" >"$T/make.log" 2>&1 || {
	tail -n 20 "$T/make.log" >&2
	return 1
}; }
systemctl() {
	[ "$*" != "restart mosquitto" ] || { mosquitto_unit; return; }
	[ "$*" = "enable --now iotsec.target" ] || { say "not here: systemctl $*"; return 0; }
	for d in certd dictd electd keyd pingd sensord; do
		iotsec-$d -c /etc/iotsec/iotsec.conf --check-config >/dev/null || return 1
		respawn "$T/pi/$d.log" "/usr/local/bin/iotsec-$d" -c /etc/iotsec/iotsec.conf -v
	done
}
# mosquitto's ExecStart as the README's drop-in sets it, under the same loop; ready once it listens.
mosquitto_unit() {
	_cmd=$(sed -n 's/^ExecStart=\(..*\)/\1/p' /etc/systemd/system/mosquitto.service.d/iotsec.conf)
	[ -n "$_cmd" ] || return 1
	# shellcheck disable=SC2086 # the command line is words without spaces
	respawn "$T/pi/mosquitto.log" $_cmd
	wait_until 10 sh -c 'ss -Hltn "sport = :8883" | grep -q .' || { tail -n 5 "$T/pi/mosquitto.log"; return 1; }
}
iotsecctl() {
	case "$1" in
	status)
		wait_until 15 command iotsecctl "$@" || true
		command iotsecctl "$@"
		;;
	rekey) wait_until 15 command iotsecctl "$@" || command iotsecctl "$@" ;;
	*) command iotsecctl "$@" ;;
	esac
}

awk '/^```sh$/ { on = 1; next } /^```/ { on = 0 } on' "$REPO/README.md" >"$T/lines"
[ "$(wc -l <"$T/lines")" -gt 20 ] || fail "README.md has only $(wc -l <"$T/lines") command lines"
n=0
while IFS= read -r line <&3; do
	n=$((n + 1))
	printf '$ %s\n' "$line"
	eval "$line" >"$T/out" 2>&1 || { cat "$T/out"; fail "README line $n failed: $line"; }
	sed 's/^/  /' "$T/out" | head -n 8
done 3<"$T/lines"
say "$n README lines ran"

say "the re-enrolment was taken up without a restart by hand"
for d in electd keyd; do
	wait_until 10 grep -q "device.crt was replaced" "$T/pi/$d.log" ||
		fail "$d did not take up the new certificate"
done
wait_until 15 command iotsecctl status || fail "not healthy at the end: $(command iotsecctl status)"

say "man pages, completion and the target's documentation were installed"
MANPAGER=cat MANWIDTH=80 man iotsecctl 2>&1 | grep -q "iotsecctl - show and steer" || fail "man iotsecctl: $(man iotsecctl 2>&1 | head -3)"
for p in iotsec-certd iotsec-electd iotsec-keyd iotsec-dictd iotsec-pingd iotsec-sensord iotsec-pki \
	iotsec-doctor iotsec-relayd iotsec.conf; do
	MANPAGER=cat man "$p" >/dev/null 2>&1 || fail "no man page for $p"
done
got=$(bash -c '. /usr/local/share/bash-completion/completions/iotsecctl
COMP_WORDS=(iotsecctl -c x.conf st); COMP_CWORD=3; _iotsecctl; echo "${COMPREPLY[*]}"')
[ "$got" = status ] || fail "bash completes 'iotsecctl -c x.conf st' as '$got'"
doc=$(sed -n 's|^Documentation=.*file://||p' /usr/local/lib/systemd/system/iotsec.target)
[ -f "$doc" ] || fail "the target's Documentation= names $doc, which was not installed"
echo ok
