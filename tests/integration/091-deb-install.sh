#!/bin/sh
# The Debian package, as `make deb` builds it, on a booted Debian bookworm (see bookworm.sh): apt
# installs it from the tree alone (nothing is downloaded); it makes the users and directories,
# ships iotsec.conf as a conffile, and neither enables nor starts anything. Enrolled and enabled,
# every daemon runs. `apt-get remove` stops them and takes the programs but keeps the
# configuration, the device's certificate and key, the dictionary key and the dictionary, so
# that installing again brings the device back as it was; `apt-get purge` takes the state and the
# keys, and leaves nothing named iotsec behind. The package is the Pi's: it brings neither the
# relay nor the doctor's tool, which are packages of their own.
case ${IOTSEC_BIN:-} in
*/build-san/bin)
	echo "SKIP: the package is built without sanitizers; the plain 'make check' installs it"
	exit 77
	;;
esac
if ! grep -q '^deb:' "$(dirname "$0")/../../Makefile"; then
	echo "SKIP: no 'make deb' (debian/ packaging) in this checkout yet, so no package to install"
	exit 77
fi
. "$(dirname "$0")/bookworm.sh"
UNITS="certd dictd electd keyd pingd sensord"
DICT_KEY=/etc/credstore/iotsec-dict.key
ARCH=$(dpkg --print-architecture)

apt() { inside env DEBIAN_FRONTEND=noninteractive apt-get -y -q --no-install-recommends "$@"; }
prop() { inside systemctl show -P "$2" "iotsec-$1.service"; }
status() { inside dpkg-query -W -f='${Status}' iotsec 2>/dev/null || true; }
healthy() { inside iotsecctl status >"$T/status.txt" 2>&1; }
records() { inside iotsecctl status --json | json_get '["daemons"]["dictd"]["records"]'; }
has_ring() { [ "$(records)" -gt 0 ]; }
key_sum() { inside sha256sum "$DICT_KEY" | cut -d' ' -f1; }
# running: the iotsec daemons that run in the container, by name.
running() { inside sh -c 'cat /proc/[0-9]*/comm 2>/dev/null' | grep '^iotsec' || true; }
# the_home_runs: every daemon active as its own user, in directories of its own, `iotsecctl
# status` all well, the controller's ring stored.
the_home_runs() {
	for d in $UNITS; do
		[ "$(prop "$d" ActiveState)" = active ] || fail "iotsec-$d is $(prop "$d" ActiveState)"
		[ "$(prop "$d" User)" = "iotsec-$d" ] || fail "iotsec-$d runs as '$(prop "$d" User)'"
		for dir in /run/iotsec /var/lib/iotsec; do
			[ "$(inside stat -c %U "$dir/$d" 2>&1)" = "iotsec-$d" ] ||
				fail "$dir/$d: $(inside stat -c %U "$dir/$d" 2>&1)"
		done
	done
	wait_until 20 healthy || fail "iotsecctl status: $(cat "$T/status.txt")"
	wait_until 15 has_ring || fail "no ring in the dictionary ($(records) records)"
}

say "make deb DEB_ARCHS=$ARCH"
env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -C "$REPO" --no-print-directory deb DEB_ARCHS="$ARCH" \
	>"$T/make-deb.log" 2>&1 || { tail -n 30 "$T/make-deb.log" >&2; fail "make deb"; }
# shellcheck disable=SC2012 # the newest, by name only
DEB=$(ls -t "$REPO"/build/deb/iotsec_*_"$ARCH".deb 2>/dev/null | head -n 1)
[ -n "$DEB" ] || fail "make deb made no build/deb/iotsec_*_$ARCH.deb"
say "  $DEB"

bw_tree
bw_copy
cp "$DEB" "$BW_ROOT/root/"
PKG=/root/${DEB##*/}
bw_boot

say "apt-get install ./iotsec_*.deb: from the tree alone"
apt install "$PKG" >"$T/apt.txt" 2>&1 || { cat "$T/apt.txt"; fail "apt-get install $PKG"; }
grep -q "^0 upgraded, 1 newly installed" "$T/apt.txt" || { cat "$T/apt.txt"; fail "apt-get installed more than iotsec"; }
[ "$(status)" = "install ok installed" ] || fail "dpkg says '$(status)'"

say "the users and groups are made; iotsec.conf is a conffile; no key"
inside getent group iotsec >/dev/null || fail "no group iotsec"
DGID=$(inside getent group iotsecd | cut -d: -f3)
[ -n "$DGID" ] || fail "no group iotsecd"
for d in $UNITS; do
	entry=$(inside getent passwd "iotsec-$d") || fail "no user iotsec-$d"
	[ "$(echo "$entry" | cut -d: -f4)" = "$DGID" ] || fail "iotsec-$d: $entry (not in iotsecd)"
	case $(echo "$entry" | cut -d: -f7) in */nologin | */false) ;; *) fail "iotsec-$d may log in: $entry" ;; esac
	[ "$(echo "$entry" | cut -d: -f3)" -lt 1000 ] || fail "iotsec-$d is no system user: $entry"
done
inside dpkg-query -W -f='${Conffiles}\n' iotsec | grep -q '^ /etc/iotsec/iotsec.conf ' ||
	fail "iotsec.conf is not a conffile: $(inside dpkg-query -W -f='${Conffiles}' iotsec)"
! inside test -e "$DICT_KEY" && ! inside test -e /etc/iotsec/dict.key ||
	fail "the package made a dictionary key (the unit makes it on first start)"

say "nothing enabled or started before the device is enrolled"
[ "$(inside systemctl is-enabled iotsec.target 2>&1)" = disabled ] ||
	fail "iotsec.target is $(inside systemctl is-enabled iotsec.target 2>&1)"
[ -z "$(running)" ] || fail "running after install: $(running)"
for d in $UNITS; do
	[ "$(prop "$d" LoadState)" = loaded ] || fail "systemd does not know iotsec-$d: $(prop "$d" LoadState)"
done
# The relay and the doctor's tool are packages of their own (iotsec-relay, iotsec-doctor, with
# libraries a Pi does not need): the Pi's package brings neither.
[ "$(prop relayd LoadState)" = not-found ] || fail "the Pi's package installed iotsec-relayd.service"
for f in /usr/bin/iotsec-relayd /usr/bin/iotsec-doctor; do
	! inside test -e "$f" || fail "the Pi's package installed $f"
done

say "enrolled, and iotsec.target enabled: every daemon runs"
bw_enrol hub controller
inside systemctl enable --now iotsec.target >"$T/enable.txt" 2>&1 ||
	fail "enable --now iotsec.target: $(cat "$T/enable.txt")"
the_home_runs
KEY0=$(key_sum)
N=$(records)
inside test -f /var/lib/iotsec/dictd/keys.dict || fail "no /var/lib/iotsec/dictd/keys.dict"

say "apt-get remove: the daemons stop, the programs go, the household's files stay"
apt remove iotsec >"$T/apt.txt" 2>&1 || { cat "$T/apt.txt"; fail "apt-get remove iotsec"; }
[ "$(status)" = "deinstall ok config-files" ] || fail "dpkg says '$(status)' after remove"
[ -z "$(running)" ] || fail "still running after remove: $(running)"
for f in /usr/bin/iotsec-certd /usr/bin/iotsecctl /usr/lib/systemd/system/iotsec-certd.service; do
	! inside test -e "$f" || fail "$f is still there after remove"
done
for f in /etc/iotsec/iotsec.conf /etc/iotsec/device.key /etc/iotsec/device.crt /etc/iotsec/ca.crt \
	/etc/iotsec/crl.pem "$DICT_KEY" /var/lib/iotsec/dictd/keys.dict; do
	inside test -f "$f" || fail "remove took $f"
done
for d in $UNITS; do inside getent passwd "iotsec-$d" >/dev/null || fail "remove took the user iotsec-$d"; done

say "installed again: the device is back as it was, with its key and its dictionary"
apt install "$PKG" >"$T/apt.txt" 2>&1 || { cat "$T/apt.txt"; fail "apt-get install $PKG again"; }
inside systemctl enable --now iotsec.target >"$T/enable.txt" 2>&1 ||
	fail "enable --now iotsec.target: $(cat "$T/enable.txt")"
the_home_runs
[ "$(key_sum)" = "$KEY0" ] || fail "a new dictionary key after reinstalling"
[ "$(records)" -ge "$N" ] || fail "the dictionary has $(records) records, not $N, after reinstalling"

say "apt-get purge: the state and the keys go, and nothing named iotsec is left"
apt purge iotsec >"$T/apt.txt" 2>&1 || { cat "$T/apt.txt"; fail "apt-get purge iotsec"; }
[ -z "$(inside dpkg-query -W -f='${Status}' iotsec 2>/dev/null | grep -v not-installed)" ] ||
	fail "dpkg says '$(status)' after purge"
[ -z "$(running)" ] || fail "still running after purge: $(running)"
for f in /var/lib/iotsec /run/iotsec "$DICT_KEY" /etc/iotsec; do
	! inside test -e "$f" || fail "purge left $f: $(inside ls -la "$f" 2>&1 | head -n 5)"
done
rm -f "$BW_ROOT$PKG"
# Only dpkg's own records of the package may name it (its list of files is gone).
left=$(inside find / -xdev -name '*iotsec*' -not -path '/var/lib/dpkg/*' -not -path '/proc/*' \
	2>/dev/null || true)
[ -z "$left" ] || fail "purge left: $(echo "$left" | head -n 10 | tr '\n' ' ')"
say "  the users stay, as Debian leaves system users: $(inside getent passwd iotsec-certd)"

bw_shutdown
bw_nothing_left
echo ok
