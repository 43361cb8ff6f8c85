#!/bin/sh
# Make sure the Debian packages the build and the tests need are installed.
# As root, install what is missing; otherwise print the exact apt-get line and fail.
set -eu

# python3-cryptography: the integration tests sign envelopes in Python, with Debian's python3.
PKGS="build-essential pkg-config libssl-dev openssl libmosquitto-dev mosquitto mosquitto-clients
libsqlite3-dev libconfig-dev libjansson-dev libcmocka-dev libsystemd-dev iproute2
python3 python3-cryptography xxd procps"
# libFuzzer and the sanitizer runtimes come with clang's runtime package.
[ "${1:-}" = "--fuzz" ] && PKGS="$PKGS clang libclang-rt-14-dev"

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
