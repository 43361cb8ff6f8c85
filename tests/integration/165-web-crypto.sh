#!/bin/sh
# The doctor's page decrypts in the browser: its crypto module (web/iotsec.js), run in node,
# opens what the C seals and opens, and builds envelopes the C opens (tests/web/run-node-tests.sh
# says how). Skipped, saying why, on a machine without node.
if ! command -v node >/dev/null 2>&1; then
	echo "skipped: node is not installed (scripts/deps.sh build installs Debian's nodejs)"
	exit 77
fi
exec "$(dirname "$0")/../web/run-node-tests.sh"
