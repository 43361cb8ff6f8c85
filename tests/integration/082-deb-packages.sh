#!/bin/sh
# The Debian packages of this machine's architecture, as `make deb` builds them: iotsec (a Pi's
# daemons), iotsec-relay (the cloud relay) and iotsec-doctor (the doctor's tool), each holding its
# own programs and nothing of the others' (the programs, every unit with /usr paths, the
# configuration, the daemons' and the home broker's, as iotsec's conffiles, sysusers.d and man
# pages, completion, README and copyright, and no key), and lintian has nothing to say. Its maintainer scripts run against a scratch root (DPKG_ROOT, as
# dpkg --root does): they make the users, enable nothing, and purge takes the home's keys and
# state away but leaves what else the household put in /etc/iotsec. Installing it on a booted system is
# another test's.
case $IOTSEC_BIN in
*/build-san/bin)
	echo "SKIP: the package is built without sanitizers; the plain make check builds and checks it"
	exit 77
	;;
esac
. "$(dirname "$0")/common.sh"
REPO=$(cd "$IT_DIR/../.." && pwd)
ARCH=$(dpkg --print-architecture)
VERSION=$(sed -n 's/^#define IOTSEC_VERSION "\(.*\)"$/\1/p' "$REPO/libiotsec/version.h")
DEB=$REPO/build/deb/iotsec_${VERSION}_$ARCH.deb
RELAY_DEB=$REPO/build/deb/iotsec-relay_${VERSION}_$ARCH.deb
DOCTOR_DEB=$REPO/build/deb/iotsec-doctor_${VERSION}_$ARCH.deb
# What is not a Pi's: the relay's and the doctor's tool's packages hold it (a CROSS build, and
# so the arm64 and armhf packages, leave it out).
RELAY_FILES="/usr/bin/iotsec-relayd /usr/share/man/man8/iotsec-relayd.8.gz"
DOCTOR_FILES="/usr/bin/iotsec-doctor /usr/share/man/man1/iotsec-doctor.1.gz
/usr/share/bash-completion/completions/iotsec-doctor"

if [ "$(id -u)" -ne 0 ] && ! "$REPO/scripts/deps.sh" deb 2>"$T/deps.err"; then
	cat "$T/deps.err"
	echo "SKIP: make deb needs debhelper and lintian (scripts/deps.sh deb as root installs them)"
	exit 77
fi

say "make deb DEB_ARCHS=$ARCH"
make -C "$REPO" --no-print-directory deb DEB_ARCHS="$ARCH" >"$T/make.log" 2>&1 || {
	tail -n 30 "$T/make.log" >&2
	fail "make deb failed"
}
for d in "$DEB" "$RELAY_DEB" "$DOCTOR_DEB"; do test -f "$d" || fail "make deb made no $d"; done

say "the control fields: the version is libiotsec/version.h's"
for d in "$DEB" "$RELAY_DEB" "$DOCTOR_DEB"; do
	p=${d##*/}
	p=${p%%_*}
	for f in "Package:$p" "Version:$VERSION" "Architecture:$ARCH"; do
		v=$(dpkg-deb -f "$d" "${f%%:*}")
		[ "$v" = "${f#*:}" ] || fail "$p: ${f%%:*} is '$v', not '${f#*:}'"
	done
done
dpkg-deb -f "$DEB" Depends | grep -q systemd || fail "no dependency on systemd (sysusers)"
say "the Pi's package links none of the relay's libraries; the relay's needs iotsec of its version"
if dpkg-deb -f "$DEB" Depends | grep -E 'libmicrohttpd|libpq|libcurl'; then
	fail "iotsec depends on the relay's or the doctor's tool's libraries (above)"
fi
dpkg-deb -f "$RELAY_DEB" Depends | grep -q "iotsec (= $VERSION)" ||
	fail "iotsec-relay does not depend on iotsec (= $VERSION): $(dpkg-deb -f "$RELAY_DEB" Depends)"
dpkg-deb -f "$RELAY_DEB" Depends | grep -q libmicrohttpd || fail "iotsec-relay: no libmicrohttpd"

dpkg-deb -c "$DEB" | awk '{ print $6 }' | sed 's|^\./|/|' >"$T/files"
dpkg-deb -c "$RELAY_DEB" | awk '{ print $6 }' | sed 's|^\./|/|' >"$T/files-relay"
dpkg-deb -c "$DOCTOR_DEB" | awk '{ print $6 }' | sed 's|^\./|/|' >"$T/files-doctor"
# has FILE [LIST]: FILE is in the package whose file list is LIST (iotsec's by default).
has() { grep -qx "$1" "${2:-$T/files}" || fail "${2:-the package} has no $1"; }
# owner FILE: the list of the package that should hold FILE.
owner() {
	case $1 in
	*/iotsec-relayd* | /usr/share/iotsec/*) echo "$T/files-relay" ;;
	*/iotsec-doctor*) echo "$T/files-doctor" ;;
	*) echo "$T/files" ;;
	esac
}

say "the conffiles are the configuration (the daemons' and the home broker's), the only files in /etc"
CONFFILES="/etc/iotsec/iotsec.conf
/etc/iotsec/mosquitto/iotsec-broker.conf
/etc/iotsec/mosquitto/iotsec.acl"
dpkg-deb --ctrl-tarfile "$DEB" | tar -xOf - ./conffiles >"$T/conffiles" || fail "no conffiles"
[ "$(sort "$T/conffiles")" = "$CONFFILES" ] || fail "conffiles: $(cat "$T/conffiles")"
etc=$(grep '^/etc/.*[^/]$' "$T/files" | sort || true)
[ "$etc" = "$CONFFILES" ] || fail "files in /etc: $etc"
# The relay and the doctor's tool read iotsec's configuration; they ship none of their own.
if grep '^/etc/.*[^/]$' "$T/files-relay" "$T/files-doctor"; then fail "files in /etc (above)"; fi

say "no key, certificate or private key material (a PEM block's first line; the programs and the doctor's page name the markers)"
if grep -E '\.(key|pem|crt|csr)$|/keys\.dict$|\.db$' "$T"/files*; then fail "key files shipped (above)"; fi
R=$T/root
mkdir -p "$R"
for d in "$DEB" "$RELAY_DEB" "$DOCTOR_DEB"; do dpkg-deb -x "$d" "$R"; done
if grep -rlIE -e '^-----BEGIN ([A-Z]+ )*PRIVATE KEY-----$' -e '^-----BEGIN CERTIFICATE-----$' "$R"; then
	fail "key material shipped (above)"
fi

say "programs, man pages, completion, documentation, each in its package and in no other"
# A daemon is a folder of daemons/ with a main.c (the Makefile's rule).
for d in "$REPO"/daemons/*/main.c; do
	d=${d%/main.c}
	has "/usr/bin/iotsec-${d##*/}" "$(owner "/usr/bin/iotsec-${d##*/}")"
done
has /usr/bin/iotsec-pki
has /usr/bin/iotsecctl
for f in $RELAY_FILES; do has "$f" "$T/files-relay"; done
for f in $DOCTOR_FILES; do has "$f" "$T/files-doctor"; done
for f in $RELAY_FILES $DOCTOR_FILES; do
	if grep -qx "$f" "$T/files"; then fail "iotsec holds $f, which is not a Pi's"; fi
done
for m in "$REPO"/man/*.scd; do
	m=${m##*/}
	m=${m%.scd}
	has "/usr/share/man/man${m##*.}/$m.gz" "$(owner "/usr/share/man/man${m##*.}/$m.gz")"
done
for c in "$REPO"/completions/*; do
	c=/usr/share/bash-completion/completions/${c##*/}
	has "$c" "$(owner "$c")"
done
# The doctor's page, which the relay serves (relay.web_dir), when the tree has one.
if [ -d "$REPO/web" ]; then
	grep -q '^/usr/share/iotsec/web/..*[^/]$' "$T/files-relay" || fail "iotsec-relay has no doctor's page"
	if grep -q '^/usr/share/iotsec' "$T/files" "$T/files-doctor"; then fail "the doctor's page is in another package"; fi
fi
# No file is in two packages (dpkg would refuse to install the second).
dups=$(cat "$T/files" "$T/files-relay" "$T/files-doctor" | grep '[^/]$' | sort | uniq -d)
[ -z "$dups" ] || fail "files in two packages: $dups"
has /usr/share/doc/iotsec/README.md
has /usr/share/doc/iotsec/copyright
has /usr/share/doc/iotsec-relay/copyright "$T/files-relay"
has /usr/share/doc/iotsec-doctor/copyright "$T/files-doctor"
has /usr/lib/sysusers.d/iotsec.conf
cmp -s "$REPO/systemd/iotsec.sysusers" "$R/usr/lib/sysusers.d/iotsec.conf" || fail "sysusers.d differs"
if grep /usr/local "$T"/files*; then fail "/usr/local in the packages (above)"; fi

say "every unit, with /usr paths that are in the package"
n=0
for u in "$REPO"/systemd/*.service "$REPO"/systemd/*.target; do
	u=${u##*/}
	list=$(owner "/lib/systemd/system/$u")
	f=$(grep -x "\(/usr\)\{0,1\}/lib/systemd/system/$u" "$list") || fail "no unit $u in ${list##*/}"
	if grep -n -e /usr/local -e '@[A-Z][A-Z]*@' "$R$f"; then fail "$u: /usr/local or a placeholder (above)"; fi
	for p in $(sed -n 's/^Exec[A-Za-z]*=[-@:+!]*\([^ ]*\).*/\1/p' "$R$f"); do
		case $p in */iotsec*) has "$p" "$list" ;; esac
	done
	for p in $(sed -n 's|^Documentation=.*file://\([^ ]*\).*|\1|p' "$R$f"); do has "$p" "$list"; done
	n=$((n + 1))
done
[ $n -ge 5 ] || fail "only $n units"
# Drop-ins too: nothing below the unit directories names /usr/local or keeps a placeholder.
if grep -rn -e /usr/local -e '@[A-Z][A-Z]*@' "$R/lib/systemd" "$R/usr/lib/systemd" 2>/dev/null; then
	fail "/usr/local or a placeholder in the units (above)"
fi
grep -q '^ExecStart=/usr/bin/iotsec-certd -c /etc/iotsec/iotsec.conf$' \
	"$R$(grep '/iotsec-certd.service$' "$T/files")" || fail "certd's ExecStart is not /usr/bin's"

say "lintian: no error, no warning"
lintian --fail-on error,warning "$DEB" "$RELAY_DEB" "$DOCTOR_DEB" >"$T/lintian" 2>&1 || {
	cat "$T/lintian" >&2
	fail "lintian"
}

# The maintainer scripts on a scratch root: root's entries only, as on a fresh system. dpkg's
# variables are set as dpkg sets them (deb-systemd-helper does nothing without them); with
# DPKG_ROOT set, the scripts neither reload nor start anything on this machine.
C=$T/control
mkdir -p "$C"
dpkg-deb -e "$DEB" "$C"
# maint SCRIPT ARGS...: run the package's maintainer script SCRIPT as dpkg --root=$R would.
maint() {
	_s=$1
	shift
	DPKG_MAINTSCRIPT_PACKAGE=iotsec DPKG_MAINTSCRIPT_NAME=$_s DPKG_MAINTSCRIPT_ARCH=$ARCH \
		DPKG_ROOT=$R sh -e "$C/$_s" "$@" >"$T/$_s.log" 2>&1 || fail "$_s $*: $(cat "$T/$_s.log")"
}
say "postinst configure (DPKG_ROOT): users, nothing enabled"
grep '^root:' /etc/passwd >"$R/etc/passwd"
grep '^root:' /etc/group >"$R/etc/group"
: >"$R/etc/shadow"
: >"$R/etc/gshadow"
maint postinst configure ""
gid=$(awk -F: '$1 == "iotsecd" { print $3 }' "$R/etc/group")
[ -n "$gid" ] || fail "no group iotsecd"
grep -q '^iotsec:' "$R/etc/group" || fail "no group iotsec"
for d in "$REPO"/daemons/*; do
	u=iotsec-${d##*/}
	awk -F: -v u="$u" -v g="$gid" '$1 == u && $4 == g && $7 ~ /nologin/ { ok = 1 } END { exit !ok }' \
		"$R/etc/passwd" || fail "no user $u in group iotsecd without a login: $(grep "^$u:" "$R/etc/passwd")"
done
# The directories are the units' own (StateDirectory=, RuntimeDirectory=), made at their start.
for d in run/iotsec var/lib/iotsec; do
	[ ! -e "$R/$d" ] || fail "postinst made /$d, which each unit makes for itself"
done
test -d "$R/var/lib/systemd/deb-systemd-helper-enabled" || fail "deb-systemd-helper did not run"
if find "$R/etc/systemd" -name '*iotsec*' 2>/dev/null | grep .; then fail "postinst enabled units (above)"; fi
say "iotsec-relay's postinst configure (DPKG_ROOT): the relay is not enabled either"
CR=$T/control-relay
mkdir -p "$CR"
dpkg-deb -e "$RELAY_DEB" "$CR"
# maint_relay SCRIPT ARGS...: iotsec-relay's maintainer script SCRIPT, as maint does iotsec's.
maint_relay() {
	_s=$1
	shift
	DPKG_MAINTSCRIPT_PACKAGE=iotsec-relay DPKG_MAINTSCRIPT_NAME=$_s DPKG_MAINTSCRIPT_ARCH=$ARCH \
		DPKG_ROOT=$R sh -e "$CR/$_s" "$@" >"$T/relay-$_s.log" 2>&1 ||
		fail "iotsec-relay $_s $*: $(cat "$T/relay-$_s.log")"
}
maint_relay postinst configure ""
if find "$R/etc/systemd" -name '*iotsec*' 2>/dev/null | grep .; then fail "iotsec-relay's postinst enabled its unit (above)"; fi
grep -q '^iotsec-relayd:' "$R/etc/passwd" || fail "no user iotsec-relayd"

say "iotsec-relay's postrm purge (DPKG_ROOT): the relay's store goes, iotsec's state stays"
mkdir -p "$R/var/lib/iotsec/relayd" "$R/var/lib/iotsec/dictd"
for f in relay.db relay.db-wal relay.db-shm; do echo x >"$R/var/lib/iotsec/relayd/$f"; done
echo x >"$R/var/lib/iotsec/dictd/keys.dict"
maint_relay postrm purge
[ ! -e "$R/var/lib/iotsec/relayd" ] || fail "purge left /var/lib/iotsec/relayd"
[ -f "$R/var/lib/iotsec/dictd/keys.dict" ] || fail "iotsec-relay's purge removed iotsec's state"
rm -rf "$R/var/lib/iotsec"

say "postrm purge (DPKG_ROOT): the home's keys and state go, the household's other files stay"
BROKER_FILES="etc/iotsec/mosquitto/broker.key etc/iotsec/mosquitto/broker.crt
etc/iotsec/mosquitto/ca.crt etc/iotsec/mosquitto/crl.pem"
for f in etc/iotsec/device.key etc/iotsec/device.crt etc/iotsec/ca.crt etc/iotsec/crl.pem \
	etc/credstore/iotsec-dict.key var/lib/iotsec/dictd/keys.dict etc/iotsec/notes.txt \
	$BROKER_FILES; do
	mkdir -p "$R/${f%/*}"
	echo x >"$R/$f"
done
# dpkg removes the conffiles before postrm purge
rm -f "$R/etc/iotsec/iotsec.conf" "$R/etc/iotsec/mosquitto/iotsec-broker.conf" \
	"$R/etc/iotsec/mosquitto/iotsec.acl"
maint postrm purge
for f in etc/iotsec/device.key etc/iotsec/device.crt etc/iotsec/ca.crt etc/iotsec/crl.pem \
	etc/credstore/iotsec-dict.key var/lib/iotsec run/iotsec $BROKER_FILES etc/iotsec/mosquitto; do
	[ ! -e "$R/$f" ] || fail "purge left /$f"
done
[ -f "$R/etc/iotsec/notes.txt" ] || fail "purge removed a file of the household's own"
grep -q '^iotsec-keyd:' "$R/etc/passwd" || fail "purge removed the users (they stay)"
if find "$R/var/lib/systemd" -name '*iotsec*' | grep .; then fail "purge left unit state (above)"; fi
say "purge with nothing else in /etc/iotsec removes the directory"
rm "$R/etc/iotsec/notes.txt"
maint postrm purge
[ ! -e "$R/etc/iotsec" ] || fail "purge left an empty /etc/iotsec"
say "ok"
