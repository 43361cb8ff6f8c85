#!/bin/sh
# Insiders whose messages fail authentication on the links they opened (SPEC 7): each is labelled
# malicious, quarantined, and the home rekeys without it; the administrator revokes one on a
# single Pi and the CRL reaches every other Pi within seconds (SPEC 5.5).
#
# mal1 and mal2 are enrolled devices running every daemon (they hold rings). From their hosts,
# rogue.py pingdforge opens link after link to pingd, each carrying one valid message and then a
# forged (bad signature) or replayed one. mal1 attacks the nodes pi2 and pi3 only: hub hears of it
# from their PINGD_MALICIOUS reports (confirmations = 2: both are needed). mal2 attacks hub only:
# hub labels it itself. Each host reads its own copy of the CRL, so that the new one is dropped
# on one Pi alone.
. "$(dirname "$0")/common.sh"
. "$IT_DIR/pingd-common.sh"
need_netns
make_home
device 1 hub controller
device 2 pi2 node
device 3 pi3 node
device 4 mal1 node
device 5 mal2 node
NAMES="hub pi2 pi3 mal1 mal2"
for n in $NAMES; do
	cp "$T/ca/crl.pem" "$T/$n/crl.pem"
	sed -i "s|crl = \"$T/ca/crl.pem\";|crl = \"$T/$n/crl.pem\";|" "$T/$n/iotsec.conf"
	grep -q "crl = \"$T/$n/crl.pem\";" "$T/$n/iotsec.conf" || fail "$n's configuration names no CRL of its own"
	pingd_conf "$n" "auth_failures = 5; helpers = 3; confirmations = 2;"
done
for n in $NAMES; do run_home "$n"; done
wait_until 30 same_epoch $NAMES || fail "rings not delivered"
e1=$(epoch hub)
known() { for n in pi2 pi3 mal1 mal2; do [ "$(state hub "$n")" = alive ] || return 1; done; }
wait_until 15 known || fail "hub's pingd does not see every device alive: $(pingd_call hub peers)"
say "epoch $e1 everywhere"

# forge NAME SECONDS TARGET...: NAME's host runs rogue.py pingdforge against each TARGET's pingd.
forge() {
	_n=$1
	_s=$2
	shift 2
	_to=""
	for _t in "$@"; do _to="$_to $_t@$NET.$(host_of "$_t")"; done
	# shellcheck disable=SC2086 # one argument per target
	on "$(host_of "$_n")" $PY "$IT_DIR/rogue.py" pingdforge "$T/$_n/$_n.crt" "$T/$_n/$_n.key" \
		"$_s" $_to >>"$T/$_n/rogue.log" 2>&1 || fail "rogue.py pingdforge from $_n failed"
}

say "mal1 sends forged and replayed envelopes to pi2's and pi3's pingd"
forge mal1 4 pi2 pi3
grep "sent" "$T/mal1/rogue.log"
for n in pi2 pi3; do
	wait_until 5 flagged "$n" mal1 malicious || fail "$n did not label mal1 malicious: $(peer "$n" mal1 flags), $(peer "$n" mal1 auth_failures) failures"
done
wait_until 10 quarantined hub mal1 malicious || fail "hub did not quarantine mal1: $(pingd_call hub quarantine)"
[ "$(peer hub mal1 auth_failures)" = 0 ] || fail "hub counts $(peer hub mal1 auth_failures) failures of mal1 it never saw"
wait_until 5 keyd_excludes hub mal1 || fail "hub's keyd does not exclude mal1"
rekeyed() { same_epoch hub pi2 pi3 mal2 && [ "$(epoch hub)" -gt "$e1" ]; }
wait_until 20 rekeyed || fail "no new epoch without mal1: hub=$(epoch hub) pi2=$(epoch pi2) mal2=$(epoch mal2)"
e2=$(epoch hub)
[ "$(epoch mal1)" = "$e1" ] || fail "mal1 holds epoch $(epoch mal1)"
say "pi2 and pi3 labelled mal1 and told hub: quarantined, epoch $e2 without it"

say "mal2 sends forged and replayed envelopes to hub's pingd"
forge mal2 4 hub
wait_until 5 flagged hub mal2 malicious || fail "hub did not label mal2 malicious: $(peer hub mal2 auth_failures) failures"
wait_until 10 quarantined hub mal2 malicious || fail "hub did not quarantine mal2: $(pingd_call hub quarantine)"
wait_until 5 keyd_excludes hub mal2 || fail "hub's keyd does not exclude mal2"
grep -q "mal2 is malicious.*iotsec-pki revoke" "$T/hub/pingd.log" ||
	fail "hub's log does not tell the administrator to revoke mal2: $(grep mal2 "$T/hub/pingd.log" | tail -n 3)"
rekeyed() { same_epoch hub pi2 pi3 && [ "$(epoch hub)" -gt "$e2" ]; }
wait_until 20 rekeyed || fail "no new epoch without mal2: hub=$(epoch hub) pi2=$(epoch pi2) pi3=$(epoch pi3)"
[ "$(epoch mal2)" = "$e2" ] || fail "mal2 holds epoch $(epoch mal2)"
for n in pi2 pi3; do quarantined "$n" mal2 malicious || fail "$n did not take the quarantine of mal2"; done
grep "is malicious" "$T/hub/pingd.log" | sed 's/^/    /'
say "hub labelled mal2 itself: quarantined, epoch $(epoch hub) without it"

say "no honest device is labelled or counted against"
for n in hub pi2 pi3; do
	for p in hub pi2 pi3; do
		[ "$n" = "$p" ] && continue
		unflagged "$n" "$p" || fail "$n flags $p: $(peer "$n" "$p" flags)"
		[ "$(peer "$n" "$p" auth_failures)" = 0 ] || fail "$n counts $(peer "$n" "$p" auth_failures) failures of $p"
	done
done

say "the administrator revokes mal1 and drops the new CRL on pi2 alone"
# Every Pi of the home takes it from pingd: hub and pi3 (mal1 is what it revokes, and mal2,
# labelled malicious, is heard by nobody, so it is asked for nothing and answered nothing).
n0=$(field hub pingd crl_number)
[ -n "$n0" ] || fail "hub's pingd shows no crl_number"
iotsec-pki revoke --dir "$T/ca" --device mal1 >/dev/null || fail "iotsec-pki revoke"
cp "$T/ca/crl.pem" "$T/pi2/crl.pem.tmp"
mv "$T/pi2/crl.pem.tmp" "$T/pi2/crl.pem"
t0=$(date +%s)
has_crl() {
	[ "$(field "$1" pingd crl_number)" -gt "$n0" ] 2>/dev/null || return 1
	[ "$1" = pi2 ] || cmp -s "$T/ca/crl.pem" "$T/$1/state/pingd/crl.pem"
}
for n in pi2 hub pi3; do
	wait_until 10 has_crl "$n" || fail "$n's pingd holds CRL number $(field "$n" pingd crl_number), was $n0 ($(ls "$T/$n/state/pingd" 2>&1))"
done
say "the CRL (number $(field hub pingd crl_number), was $n0) reached hub and pi3 in $(($(date +%s) - t0)) s"
for n in hub pi3; do
	if cmp -s "$T/$n/crl.pem" "$T/ca/crl.pem"; then fail "$n's own CRL file changed: pingd keeps its copy in its state"; fi
done
echo ok
