#!/bin/sh
# Debian packages of iotsec, for `make deb`: scripts/deb.sh [ARCH]... (default amd64 arm64 armhf):
# iotsec for every architecture, and iotsec-relay and iotsec-doctor for this machine's only.
# Each architecture is built by dpkg-buildpackage -b in a copy of this tree under build/deb/ARCH/
# (a cross build with -a ARCH where ARCH is not this machine's), so that the tree itself stays
# clean and no object of another build is reused. The packages, .buildinfo and .changes land in
# build/deb/, and lintian must find neither error nor warning in the packages. An architecture
# whose package is newer than every file of the tree is not built again.
set -eu
cd "$(dirname "$0")/.."
OUT=build/deb

# libiotsec/version.h is the one source of the version; the changelog must say the same.
VERSION=$(sed -n 's/^#define IOTSEC_VERSION "\(.*\)"$/\1/p' libiotsec/version.h)
CHANGELOG=$(dpkg-parsechangelog -S Version)
if [ "$VERSION" != "$CHANGELOG" ]; then
	echo "iotsec: libiotsec/version.h says $VERSION but debian/changelog $CHANGELOG;" \
		"add a debian/changelog entry for $VERSION" >&2
	exit 1
fi

NATIVE=$(dpkg --print-architecture)
mkdir -p "$OUT"
[ $# -gt 0 ] || set -- amd64 arm64 armhf
for arch in "$@"; do
	deb=$OUT/iotsec_${VERSION}_$arch.deb
	# Any file of the tree (the build trees and .git aside) newer than the package rebuilds it.
	if [ -f "$deb" ] && [ -z "$(find . \( -name .git -o -path './build' -o -path './build-*' \) \
		-prune -o -newer "$deb" -print | head -n 1)" ]; then
		echo "iotsec: $deb is up to date"
		continue
	fi
	if [ "$arch" = "$NATIVE" ]; then
		host=""
	else
		scripts/deps.sh cross "$arch"
		# The cross profile: debian/control builds the relay's and the doctor's tool's
		# packages natively only (a Pi runs neither), and needs their libraries then only.
		host="--host-arch=$arch -Pcross"
	fi

	work=$OUT/$arch
	src=$work/iotsec-$VERSION
	rm -rf "$work"
	mkdir -p "$src"
	tar -cf - --exclude=./.git --exclude=./build --exclude='./build-*' . | tar -xf - -C "$src"
	log=$OUT/iotsec_${VERSION}_$arch.build.log
	echo "iotsec: building the $arch packages (log: $log)"
	# shellcheck disable=SC2086 # $host is empty or two words
	if ! (cd "$src" && dpkg-buildpackage -b -us -uc -Jauto $host) >"$log" 2>&1; then
		tail -n 30 "$log" >&2
		echo "iotsec: dpkg-buildpackage failed for $arch (log: $log)" >&2
		exit 1
	fi
	rm -f "$OUT"/iotsec*_"${VERSION}"_"$arch".*deb
	mv "$work"/*.deb "$work"/*.buildinfo "$work"/*.changes "$OUT"/
	rm -rf "$work"

	echo "iotsec: lintian $OUT/iotsec*_${VERSION}_$arch.deb"
	lintian --fail-on error,warning --display-info "$OUT"/iotsec*_"${VERSION}"_"$arch".deb || {
		# The package stays for a look, but is not up to date for the next run.
		touch -d @0 "$deb"
		echo "iotsec: lintian has something to say about the $arch packages (above)" >&2
		exit 1
	}
done
ls -l "$OUT"/*.deb
