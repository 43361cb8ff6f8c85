#!/bin/sh
# 10% random packet loss on every host, both ways, for two minutes (SPEC 5.5): with a fast profile
# whose timeouts let TCP retransmit (the README's lossy-network profile), nobody is evicted,
# quarantined or flagged, the home keeps its epoch, and every device is alive in `peers`.
# nftables' numgen drops the packets inside each host's namespace (this kernel has no netem).
. "$(dirname "$0")/common.sh"
. "$IT_DIR/pingd-common.sh"
command -v nft >/dev/null || fail "this test needs nftables' nft (scripts/deps.sh test installs it)"
need_netns
make_home
device 1 hub controller
device 2 pi2 node
device 3 pi3 node
device 4 pi4 node
NAMES="hub pi2 pi3 pi4"
LOSS_SECONDS=${LOSS_SECONDS:-120} # shorter by hand, while working on pingd
# A lost SYN waits 1 s for its first retransmission: a probe's timeout covers it; four failures
# in a row at about 1 in 8 each, and then the helpers' own, are what an eviction would need.
LOSSY='interval_ms = 2000; retry_ms = 500; tries = 4; timeout_ms = 2500; hello_ms = 500;
helpers = 3; confirmations = 2;'
for n in $NAMES; do
	pingd_only "$n" "$LOSSY"
	# electd too: a node that misses five heartbeats in a row would elect again (not pingd's
	# business, and it would only blur what this test looks at).
	sed -i 's/heartbeat_ms = 300; timeout_ms = 1500;/heartbeat_ms = 300; timeout_ms = 4000;/' \
		"$T/$n/iotsec.conf"
done
for n in $NAMES; do run_home "$n"; done
wait_until 30 same_epoch $NAMES || fail "rings not delivered"
e1=$(epoch hub)
all_alive() { for n in pi2 pi3 pi4; do [ "$(state hub "$n")" = alive ] || return 1; done; }
wait_until 15 all_alive || fail "hub's pingd does not see every device alive: $(pingd_call hub peers)"
say "epoch $e1 everywhere; every device alive"

say "10% of packets dropped at random, in and out, on every host, for $LOSS_SECONDS s"
# For whoever waits on make check (tests/run.sh reads fd 9): this step takes minutes.
{ printf '      %s\n' "104: $LOSS_SECONDS s of 10% packet loss on every host" >&9; } 2>/dev/null || true
for n in $NAMES; do
	h=$(host_of "$n")
	on "$h" nft add table inet loss
	on "$h" nft add chain inet loss in '{ type filter hook input priority 0; }'
	on "$h" nft add chain inet loss out '{ type filter hook output priority 0; }'
	on "$h" nft add rule inet loss in numgen random mod 10 == 0 counter drop
	on "$h" nft add rule inet loss out numgen random mod 10 == 0 counter drop
done
probes0=$(field hub pingd probes)
end=$(($(date +%s) + LOSS_SECONDS))
while [ "$(date +%s)" -lt "$end" ]; do
	sleep 5
	q=$(quarantine_names hub)
	[ -z "$q" ] || fail "under loss, hub quarantined: $q"
	[ "$(field hub pingd missing)" = 0 ] || fail "under loss, hub's pingd counts $(field hub pingd missing) missing"
done
say "still under loss: every device must be alive and unflagged"
wait_until 15 all_alive || fail "under loss, hub's pingd sees: pi2 $(state hub pi2), pi3 $(state hub pi3), pi4 $(state hub pi4)"
for n in $NAMES; do
	[ -z "$(quarantine_names "$n")" ] || fail "$n holds a quarantine: $(quarantine_names "$n")"
	for p in $NAMES; do
		[ "$n" = "$p" ] && continue
		unflagged "$n" "$p" || fail "$n flags $p: $(peer "$n" "$p" flags)"
	done
done
[ "$(epoch hub)" = "$e1" ] || fail "the home rekeyed under loss: hub at $(epoch hub), was $e1"
probes=$(($(field hub pingd probes) - probes0))
[ "$probes" -gt 0 ] || fail "hub's pingd made no probe under loss"
# The loss was real: every host dropped packets.
dropped=""
for n in $NAMES; do
	d=$(on "$(host_of "$n")" nft list table inet loss | awk '/counter/ { s += $(NF - 3) } END { print s + 0 }')
	[ "$d" -gt 0 ] || fail "$n dropped no packet"
	dropped="$dropped $n:$d"
done
failed=$(grep -c "unanswered" "$T/hub/pingd.log" || true)
say "no eviction; hub made $probes probes, $failed logged unanswered; packets dropped:$dropped"
echo ok
