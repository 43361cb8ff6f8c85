#!/bin/sh
# The units as `make install` writes them: every service rated at most 2.0 by
# `systemd-analyze security` (its offline mode reads the installed files, the shared sandbox
# each unit file read alone), each figure as README's table shows it, and no key in what was installed.
. "$(dirname "$0")/common.sh"
REPO=$(cd "$IT_DIR/../.." && pwd)
command -v systemd-analyze >/dev/null || fail "no systemd-analyze (scripts/deps.sh test installs systemd)"
case $IOTSEC_BIN in */build-san/bin) SAN=1 ;; *) SAN=0 ;; esac

say "make install into a staging tree"
make -C "$REPO" --no-print-directory SANITIZE=$SAN install DESTDIR="$T/root" PREFIX=/usr \
	>"$T/install.log" 2>&1 || { tail -n 20 "$T/install.log"; fail "make install"; }
keys=$(find "$T/root" -name '*.key' -o -name 'keys.dict' | head -n 5)
[ -z "$keys" ] || fail "make install staged keys: $keys"
[ -f "$T/root/usr/lib/sysusers.d/iotsec.conf" ] || fail "no sysusers.d file"

UNITS=$(cd "$T/root/usr/lib/systemd/system" && ls iotsec-*.service)
# The six daemons of a Pi, the dictionary key's, and the relay's (installed by a native build).
[ "$(echo "$UNITS" | wc -w)" -eq 8 ] || fail "installed units: $UNITS"
echo "$UNITS" | grep -qx iotsec-relayd.service || fail "no iotsec-relayd.service installed: $UNITS"
for u in $UNITS; do
	out=$(systemd-analyze security --offline=true --root="$T/root" --threshold=20 "$u" 2>&1) &&
		st=0 || st=$?
	row=$(echo "$out" | sed -n 's/.*Overall exposure level for \(.*\): \([0-9.]*\) \([A-Z]*\).*/| \1 | \2 | \3 |/p')
	say "$row"
	[ -n "$row" ] || fail "no rating for $u: $(echo "$out" | tail -n 3)"
	[ $st -eq 0 ] || fail "$u is rated above 2.0: $row"
	grep -qxF "$row" "$REPO/README.md" || fail "README's exposure table does not say: $row"
done
say "every unit but the key's runs as its own user, with the shared sandbox"
for u in $UNITS; do
	[ "$u" = iotsec-dictd-key.service ] && continue
	grep -q "^User=iotsec-" "$T/root/usr/lib/systemd/system/$u" || fail "$u has no User="
done
for u in $UNITS; do
	grep -q '^CapabilityBoundingSet=$' "$T/root/usr/lib/systemd/system/$u" || fail "$u lacks the sandbox"
done
echo ok
