#!/bin/sh
# The home broker restarted while kit1 sends 10,000 readings through it to the relay: kit1 and
# relay1 reconnect (relay1's session is persistent, and the broker keeps it on disk), and every
# reading is stored and delivered to the doctor once, each sensor's in order.
. "$(dirname "$0")/common.sh"
. "$IT_DIR/sensord-common.sh"
. "$IT_DIR/relay-common.sh"
need_netns
bulk_home
sleep "$(awk -v r="$(od -An -N2 -tu2 /dev/urandom)" 'BEGIN { printf "%.2f", 2 + 8 * r / 65535 }')"
say "the broker restarts after relay1 stored $(rfield relay1 relay readings)"
broker_stop
sleep 1
broker_start
wait_until 20 relay_ready relay1 || fail "relay1 did not reconnect: $(relay_call relay1 status)"
bulk_check
say "10,000 readings, each stored and delivered once, in order, across a broker restart"
