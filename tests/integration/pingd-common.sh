# Shared by the pingd tests (1xx-pingd-*.sh), the pingd bench and the demo: source it after
# common.sh. What pingd shows through its control socket, and its settings.

# The fast profile of the tests: a device that stops answering is suspected after about
# interval + tries x (timeout + retry), 3 s here. Other settings are added after it.
PINGD_FAST='interval_ms = 1000; retry_ms = 300; tries = 3; timeout_ms = 500; hello_ms = 300;'

# pingd_conf NAME [SETTINGS]: add a pingd group to NAME's configuration: the fast profile, with
# SETTINGS ("name = value; ...") added or put in place of the fast profile's own.
pingd_conf() { printf 'pingd = { %s };\n' "$(pingd_merge "$PINGD_FAST" "${2:-}")" >>"$T/$1/iotsec.conf"; }

# pingd_merge BASE SETTINGS: BASE's settings ("name = value; ...") with those of SETTINGS added
# or put in their place.
pingd_merge() {
	_base=$1
	for _s in $(echo "$2" | tr ';' '\n' | sed -n 's/^ *\([a-z_]*\) *=.*/\1/p'); do
		_base=$(echo "$_base" | sed "s/ *$_s = [^;]*;//")
	done
	echo "$_base $2"
}

# pingd_only NAME SETTINGS: a pingd group of exactly SETTINGS (no fast profile).
pingd_only() { printf 'pingd = { %s };\n' "$2" >>"$T/$1/iotsec.conf"; }

# run_home NAME: every daemon of device NAME, pingd included, in the order systemd starts them.
run_home() {
	run_all "$1"
	run "$1" pingd
}

# pingd_call NAME VERB: one reply of NAME's pingd, "" when it does not answer.
pingd_call() { ctl "$T/$1/run/pingd/pingd.sock" "{\"v\":1,\"verb\":\"$2\"}" 2>/dev/null || true; }

# peer NAME PEER KEY: KEY of PEER in NAME's pingd `peers`, as JSON ("" when not listed).
peer() {
	pingd_call "$1" peers | $PY -c 'import json, sys
d = json.load(sys.stdin)
p = [p for p in d.get("peers", []) if p.get("name") == sys.argv[1]]
print(json.dumps(p[0].get(sys.argv[2])) if p else "")' "$2" "$3" 2>/dev/null || true
}

# flagged NAME PEER FLAG: NAME's pingd flags PEER with FLAG.
flagged() { peer "$1" "$2" flags | grep -q "\"$3\""; }

# unflagged NAME PEER...: NAME's pingd lists each PEER without any flag.
unflagged() {
	_n=$1
	shift
	for _p in "$@"; do
		_f=$(peer "$_n" "$_p" flags)
		[ "$_f" = "[]" ] || [ "$_f" = "null" ] || return 1
	done
}

# state NAME PEER: PEER's state in NAME's pingd (alive, suspect, missing, quarantined, unknown).
state() { peer "$1" "$2" state | tr -d '"'; }

# quarantined NAME PEER [REASON]: NAME's pingd holds PEER on its quarantine list (for REASON).
quarantined() {
	pingd_call "$1" quarantine | $PY -c 'import json, sys
d = json.load(sys.stdin)
sys.exit(not any(e["name"] == sys.argv[1] and sys.argv[2] in ("", e["reason"])
                 for e in d.get("quarantine", [])))' "$2" "${3:-}" 2>/dev/null
}

# quarantine_names NAME: the names on NAME's pingd quarantine list, space-separated.
quarantine_names() {
	pingd_call "$1" quarantine | $PY -c 'import json, sys
print(" ".join(sorted(e["name"] for e in json.load(sys.stdin).get("quarantine", []))))' \
		2>/dev/null || true
}

# keyd_excludes NAME PEER: NAME's keyd holds PEER on its quarantine (it gives it no ring).
keyd_excludes() {
	ctl "$T/$1/run/keyd/keyd.sock" '{"v":1,"verb":"status"}' 2>/dev/null |
		json_get '["quarantine"]' 2>/dev/null | grep -q "'$2'"
}

# link_down NAME / link_up NAME: NAME's host loses its network (its cable pulled) / gets it back.
link_down() { on "$(host_of "$1")" ip link set eth0 down; }
link_up() { on "$(host_of "$1")" ip link set eth0 up; }

# pids_of NAME: the daemons this test started for device NAME.
pids_of() { pgrep -f "iotsec-[a-z]* -c $T/$1/iotsec.conf" || true; }
