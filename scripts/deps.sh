#!/bin/sh
# Make sure the Debian packages a step needs are installed: as root, install what is missing;
# otherwise print the exact apt-get line and fail.
#   scripts/deps.sh build   what `make` and `make install` need (compilers, -dev packages, scdoc,
#                           and npm for the doctor's page when there is none)
#   scripts/deps.sh test    that, plus what `make check`, `make demo` and `make bench` run: the
#                           broker, cmocka, Python with python3-cryptography (the integration
#                           tests sign envelopes), network namespaces and nftables (packet
#                           loss inside them: the kernel has no netem), setpriv and flock, man,
#                           systemd-analyze, debootstrap and systemd-nspawn (the tests that
#                           boot the units), and faketime (a device whose clock says 1970)
#   scripts/deps.sh fuzz    that, plus clang's libFuzzer and sanitizer runtimes
#   scripts/deps.sh deb     the build packages, plus debhelper and lintian for `make deb` (its
#                           cross builds also need scripts/deps.sh cross)
#   scripts/deps.sh cross [arm64|armhf]...   the build packages, plus, for each Raspberry Pi
#                           architecture (default both), Debian's cross compiler, the -dev
#                           packages of that architecture (multiarch: dpkg --add-architecture)
#                           with cmocka, qemu-user to run the unit tests, and file
set -eu

BUILD="build-essential pkg-config libssl-dev libmosquitto-dev libsqlite3-dev libconfig-dev
libjansson-dev libsystemd-dev scdoc libmicrohttpd-dev libpq-dev libcurl4-openssl-dev"
TEST="$BUILD libcmocka-dev openssl mosquitto mosquitto-clients iproute2 python3
python3-cryptography nftables xxd procps util-linux man-db systemd debootstrap systemd-container
faketime postgresql chromium sqlite3"
case "${1:-build}" in
build) PKGS=$BUILD ;;
test) PKGS=$TEST ;;
fuzz) PKGS="$TEST clang libclang-rt-14-dev" ;;
deb) PKGS="$BUILD debhelper dpkg-dev lintian" ;;
cross)
	shift
	ARCHES=${*:-arm64 armhf}
	PKGS="$BUILD qemu-user file"
	for a in $ARCHES; do
		case $a in
		arm64) PKGS="$PKGS gcc-aarch64-linux-gnu" ;;
		armhf) PKGS="$PKGS gcc-arm-linux-gnueabihf" ;;
		*)
			echo "scripts/deps.sh cross: $a is no Raspberry Pi architecture (arm64, armhf)" >&2
			exit 2
			;;
		esac
		for p in libc6-dev libssl-dev libmosquitto-dev libsqlite3-dev libconfig-dev \
			libjansson-dev libsystemd-dev libcmocka-dev; do
			PKGS="$PKGS $p:$a"
		done
	done
	;;
*)
	echo "usage: scripts/deps.sh build|test|fuzz|deb|cross [arm64|armhf]..." >&2
	exit 2
	;;
esac

# The doctor's page (web/) is built with npm and tested with node. Debian's nodejs and npm only
# where there is no npm at all: a Node.js installed otherwise stays, and apt does not fight it.
case "${1:-build}" in
build | test | fuzz | deb) command -v npm >/dev/null 2>&1 || PKGS="$PKGS nodejs npm" ;;
esac

missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

# The architectures of the :ARCH packages that dpkg does not know yet.
new_arches=""
for p in $missing; do
	case $p in
	*:*)
		a=${p#*:}
		dpkg --print-architecture | grep -qx "$a" ||
			dpkg --print-foreign-architectures | grep -qx "$a" ||
			case " $new_arches " in *" $a "*) ;; *) new_arches="$new_arches $a" ;; esac
		;;
	esac
done

if [ "$(id -u)" -ne 0 ]; then
	echo "iotsec: missing Debian packages. Install them with:" >&2
	for a in $new_arches; do echo "  sudo dpkg --add-architecture $a" >&2; done
	[ -z "$new_arches" ] || echo "  sudo apt-get update" >&2
	echo "  sudo apt-get install -y$missing" >&2
	exit 1
fi
for a in $new_arches; do
	echo "iotsec: adding the Debian architecture $a (multiarch)" >&2
	dpkg --add-architecture "$a"
done
echo "iotsec: installing missing Debian packages:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >&2
