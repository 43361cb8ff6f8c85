#!/bin/sh
# Run tests/web/page.test.mjs (its arguments as given) with playwright-core from
# tests/web/package-lock.json, installed by npm ci into build/npm/tests-web beside the page's own
# npm tree and sharing its download cache (offline once filled). Chromium is Debian's.
# `page-test.sh --install` installs and does no more: a test whose browser runs in a network
# namespace, with no way out to the registry, installs beforehand.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DIR=$ROOT/build/npm/tests-web
mkdir -p "$DIR"
if [ ! -f "$DIR/installed" ] ||
	[ -n "$(find "$ROOT/tests/web/package-lock.json" -newer "$DIR/installed")" ]; then
	echo "iotsec: npm ci for the page test (tests/web/package-lock.json) into $DIR" >&2
	flock "$ROOT/build/npm/lock" sh -c "cp '$ROOT/tests/web/package.json' \
		'$ROOT/tests/web/package-lock.json' '$DIR/' && cd '$DIR' && npm ci --prefer-offline \
		--ignore-scripts --no-audit --no-fund --loglevel=error --cache '$ROOT/build/npm/cache'" >&2
	touch "$DIR/installed"
fi
[ "${1:-}" != --install ] || exit 0
PLAYWRIGHT_MODULES=$DIR/node_modules exec node "$ROOT/tests/web/page.test.mjs" "$@"
