#!/bin/sh
# The relay killed with SIGKILL at five random moments while kit1 sends 10,000 readings, and
# started again each time: no reading the relay acknowledged is lost (kit1 keeps every reading
# until its receipt and sends it again after receipt_s), none is stored or delivered twice, and
# each sensor's readings reach the doctor in order.
. "$(dirname "$0")/common.sh"
. "$IT_DIR/sensord-common.sh"
. "$IT_DIR/relay-common.sh"
need_netns
bulk_home
say "kit1 sends 10,000 readings; relay1 is killed five times"
for k in 1 2 3 4 5; do
	# 0.5 to 3.5 s apart: the five kills fall inside the 20 s of sending.
	sleep "$(awk -v r="$(od -An -N2 -tu2 /dev/urandom)" 'BEGIN { printf "%.2f", 0.5 + 3 * r / 65535 }')"
	_stored=$(rfield relay1 relay readings)
	kill -KILL "$(relay_pid relay1)"
	wait "$(relay_pid relay1)" 2>/dev/null || true
	say "kill $k: relay1 had stored ${_stored:-?}"
	run_relay relay1
	wait_until 10 relay_ready relay1 || fail "relay1 did not come back: $(relay_call relay1 status)"
done
bulk_check
say "10,000 readings, each stored and delivered once, in order, across five kills"
