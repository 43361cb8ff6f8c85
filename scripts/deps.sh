#!/bin/sh
# Make sure the Debian packages a step needs are installed: as root, install what is missing;
# otherwise print the exact apt-get line and fail.
#   scripts/deps.sh build   what `make` and `make install` need (compilers, -dev packages, scdoc)
#   scripts/deps.sh test    that, plus what `make check`, `make demo` and `make bench` run: the
#                           broker, cmocka, Python with python3-cryptography (the integration
#                           tests sign envelopes), network namespaces, setpriv and flock, man,
#                           systemd-analyze, and debootstrap and systemd-nspawn (the tests that
#                           boot the units)
#   scripts/deps.sh fuzz    that, plus clang's libFuzzer and sanitizer runtimes
#   scripts/deps.sh deb     the build packages, plus debhelper and lintian for `make deb` (its
#                           cross builds also need scripts/deps.sh cross)
set -eu

BUILD="build-essential pkg-config libssl-dev libmosquitto-dev libsqlite3-dev libconfig-dev
libjansson-dev libsystemd-dev scdoc"
TEST="$BUILD libcmocka-dev openssl mosquitto mosquitto-clients iproute2 python3
python3-cryptography xxd procps util-linux man-db systemd debootstrap systemd-container"
case "${1:-build}" in
build) PKGS=$BUILD ;;
test) PKGS=$TEST ;;
fuzz) PKGS="$TEST clang libclang-rt-14-dev" ;;
deb) PKGS="$BUILD debhelper dpkg-dev lintian" ;;
*)
	echo "usage: scripts/deps.sh build|test|fuzz|deb" >&2
	exit 2
	;;
esac

missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "iotsec: missing Debian packages. Install them with:" >&2
	echo "  sudo apt-get install -y$missing" >&2
	exit 1
fi
echo "iotsec: installing missing Debian packages:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >&2
