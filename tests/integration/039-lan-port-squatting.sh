#!/bin/sh
# A local unprivileged user cannot bind electd's or keyd's UDP port beside them (no
# SO_REUSEADDR on our sockets), so cannot take the unicast datagrams meant for them.
. "$(dirname "$0")/common.sh"
need_netns
make_home
device 1 hub controller
device 2 pi1 node
add_host 9
command -v setpriv >/dev/null || fail "setpriv (util-linux) is needed to act as an unprivileged user"

run_all hub
run_all pi1
wait_until 10 same_epoch hub pi1 || fail "no ring: hub=$(epoch hub) pi1=$(epoch pi1)"

# squat PORT: as nobody on pi1's host, bind PORT with SO_REUSEADDR; prints what happened.
squat() {
	on 2 setpriv --reuid=nobody --regid=nogroup --clear-groups $PY -c '
import errno, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("0.0.0.0", int(sys.argv[1])))
    print("bound")
except OSError as e:
    print(errno.errorcode.get(e.errno, e.errno))' "$1"
}
for port in 7450 7451; do
	got=$(squat $port)
	say "nobody binding UDP port $port beside the daemon: $got"
	[ "$got" = EADDRINUSE ] || fail "an unprivileged user could bind port $port ($got)"
done

say "unicast datagrams still reach the daemons"
before=$(field pi1 electd refused)
on 9 $PY -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(5): s.sendto(b"junk", ("'"$NET.2"'", 7450))'
more() { [ "$(field pi1 electd refused)" -ge $((before + 5)) ]; }
wait_until 5 more || fail "pi1's electd did not get the unicast datagrams"
echo ok
