# Shared by the tests that run iotsec on a real Debian system (090, 091): source it instead of
# common.sh. It
#   - skips (exit 77, saying why) where a mount namespace cannot be made (not root, or a container
#     without CAP_SYS_ADMIN), and otherwise runs the test again in a mount namespace of its own,
#     so that every mount it makes (and any debootstrap or systemd-nspawn leaves) goes with it;
#   - builds once, with debootstrap, a minimal Debian bookworm tree in build/cache/bookworm: minbase,
#     systemd, and the libraries our programs link. `make check` and `make check SANITIZE=1` share
#     it. The tree is built beside and renamed into place, so an interrupted build is never taken
#     for a finished one; a change of BW_STAMP below (a package more) builds it again;
#   - gives each test a throw-away copy of it (an overlay, or a copy where overlayfs is missing),
#     and boots that with systemd-nspawn --boot on a private network, systemd as PID 1;
#   - at exit, even on failure or interrupt, shuts the container down (and kills it when it does not
#     go), unmounts, and removes the scratch directory.
# Nothing reaches the network but debootstrap, from the Debian mirror this machine's apt uses.

if [ -z "${BW_NS:-}" ]; then
	[ "$(id -u)" -eq 0 ] || {
		echo "SKIP: needs root (debootstrap, mounts and systemd-nspawn)"
		exit 77
	}
	if ! _err=$(unshare --mount true 2>&1); then
		echo "SKIP: cannot make a mount namespace here, so cannot run systemd-nspawn: $_err"
		exit 77
	fi
	BW_NS=1 exec unshare --mount --propagation private "$0" "$@"
fi
. "$(dirname "$0")/common.sh"

REPO=$(cd "$IT_DIR/../.." && pwd)
BW_CACHE=$REPO/build/cache/bookworm
# Beside minbase: systemd as PID 1 (systemd-sysv makes it /sbin/init), and what our programs link
# (the relay's libmicrohttpd and libpq too: 090 runs iotsec-relayd under systemd; the doctor's
# tool, which links libcurl, is never run there).
BW_PACKAGES="systemd systemd-sysv libssl3 libmosquitto1 libsqlite3-0 libconfig9 libjansson4"
BW_PACKAGES="$BW_PACKAGES libsystemd0 libmicrohttpd12 libpq5"
# Written into the tree when it is finished; another value (a package more) builds it again.
BW_STAMP="bookworm minbase $BW_PACKAGES; console-getty masked; booted once; v2"
BW_ROOT=$T/root   # the booted copy
BW_NSPAWN=""      # systemd-nspawn's pid while it runs
BW_LEADER=""      # the container's PID 1, as this machine sees it
BW_BUILD=""       # the unfinished tree, while debootstrap runs
BW_DEBOOTSTRAP="" # its pid (and process group) meanwhile

# progress TEXT: a line in the log, and on the terminal of whoever waits for `make check`
# (tests/run.sh hands it to each test as fd 9), for the steps that take minutes.
progress() {
	say "$*"
	{ printf '      %s\n' "$*" >&9; } 2>/dev/null || true
}

# bw_mirror: the Debian mirror this machine's apt fetches bookworm from (one-line sources.list
# entries or deb822 .sources files), else deb.debian.org. IOTSEC_DEBIAN_MIRROR overrides it.
bw_mirror() {
	if [ -n "${IOTSEC_DEBIAN_MIRROR:-}" ]; then
		echo "$IOTSEC_DEBIAN_MIRROR"
		return
	fi
	{
		cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk '
			$1 == "deb" {
				i = 2
				if ($i ~ /^\[/) { while (i < NF && $i !~ /\]$/) i++; i++ }
				if ($(i + 1) == "bookworm") print $i
			}'
		cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '
			BEGIN { RS = ""; FS = "\n" }
			{
				types = uris = suites = ""; enabled = "yes"
				for (i = 1; i <= NF; i++) {
					if ($i ~ /^#/) continue
					k = $i; sub(/:.*/, "", k); v = $i; sub(/^[^:]*:[ \t]*/, "", v)
					if (k == "Types") types = v
					else if (k == "URIs") uris = v
					else if (k == "Suites") suites = v
					else if (k == "Enabled") enabled = v
				}
				if (enabled != "no" && (" " types " ") ~ / deb / && (" " suites " ") ~ / bookworm /) {
					split(uris, u, " "); print u[1]
				}
			}'
		echo http://deb.debian.org/debian
	} | head -n 1
}

# bw_unmount_below DIR: whatever is mounted at or below DIR, deepest first.
bw_unmount_below() {
	awk -v d="$1" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r |
		while read -r _m; do umount -l "$_m" 2>/dev/null || true; done
}

# bw_tree: make sure build/cache/bookworm is a finished tree of BW_PACKAGES. Two runs at once (two
# clones' checks) wait for one another on a lock rather than both building.
bw_tree() {
	[ "$(cat "$BW_CACHE/.tree-stamp" 2>/dev/null)" = "$BW_STAMP" ] && return 0
	command -v debootstrap >/dev/null ||
		fail "no debootstrap (scripts/deps.sh test installs it: apt-get install debootstrap)"
	mkdir -p "$REPO/build/cache"
	exec 8>"$REPO/build/cache/bookworm.lock"
	flock 8
	if [ "$(cat "$BW_CACHE/.tree-stamp" 2>/dev/null)" = "$BW_STAMP" ]; then
		exec 8>&-
		return 0
	fi
	# What an interrupted build left behind.
	for _old in "$REPO"/build/cache/bookworm.new.*; do
		[ -d "$_old" ] || continue
		bw_unmount_below "$_old"
		rm -rf --one-file-system "$_old"
	done
	_mirror=$(bw_mirror)
	BW_BUILD=$(mktemp -d "$REPO/build/cache/bookworm.new.XXXXXX")
	progress "building a Debian bookworm tree in build/cache/bookworm from $_mirror (once; a minute or more)"
	_t0=$(date +%s)
	# In the background, in a process group of its own, so that an interrupted test ends it (and
	# its dpkg) at once rather than when it is done.
	setsid debootstrap --variant=minbase --include="$(echo "$BW_PACKAGES" | tr ' ' ,)" \
		bookworm "$BW_BUILD/tree" "$_mirror" >"$T/debootstrap.log" 2>&1 9>&- &
	BW_DEBOOTSTRAP=$!
	_rc=0
	wait "$BW_DEBOOTSTRAP" || _rc=$?
	BW_DEBOOTSTRAP=""
	if [ "$_rc" -ne 0 ]; then
		tail -n 15 "$T/debootstrap.log" >&2
		if grep -qE "Failed getting release file|Couldn't download|Failure while (downloading|verifying)|Temporary failure resolving|unable to resolve host" \
			"$T/debootstrap.log"; then
			echo "SKIP: cannot fetch Debian bookworm from $_mirror for the test tree (offline? set IOTSEC_DEBIAN_MIRROR)"
			exit 77
		fi
		fail "debootstrap failed (above)"
	fi
	# The packages are installed: their .deb files would only make every copy bigger. The console
	# is no terminal under the tests (nspawn --console=pipe, stdin /dev/null): no getty on it.
	rm -f "$BW_BUILD"/tree/var/cache/apt/archives/*.deb
	ln -sf /dev/null "$BW_BUILD/tree/etc/systemd/system/console-getty.service"
	# A Pi that has booted before, as systemd-update-done leaves it: boot-time services with
	# ConditionNeedsUpdate= (systemd-sysusers among them) no longer run, so what an install needs
	# at boot (its users) must come from the install itself, as on a real device.
	touch -r "$BW_BUILD/tree/usr" "$BW_BUILD/tree/etc/.updated" "$BW_BUILD/tree/var/.updated"
	echo "$BW_STAMP" >"$BW_BUILD/tree/.tree-stamp"
	if [ -e "$BW_CACHE" ]; then mv "$BW_CACHE" "$BW_BUILD/old"; fi
	mv "$BW_BUILD/tree" "$BW_CACHE"
	rm -rf --one-file-system "$BW_BUILD"
	BW_BUILD=""
	exec 8>&-
	progress "the bookworm tree took $(($(date +%s) - _t0)) s ($(du -sh "$BW_CACHE" | cut -f1))"
}

# bw_copy: BW_ROOT, a throw-away copy of the cached tree (an overlay: its changes land in $T).
bw_copy() {
	mkdir -p "$BW_ROOT" "$T/overlay/upper" "$T/overlay/work"
	if ! mount -t overlay overlay \
		-o "lowerdir=$BW_CACHE,upperdir=$T/overlay/upper,workdir=$T/overlay/work" "$BW_ROOT" \
		2>"$T/overlay.err"; then
		say "no overlay here ($(cat "$T/overlay.err")): copying the tree"
		cp -a --reflink=auto "$BW_CACHE/." "$BW_ROOT/"
	fi
}

# bw_install: `make install` of this checkout into the copy, as a Pi's /usr.
bw_install() {
	# The test runs under `make check`: its jobserver is not ours to use.
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -C "$REPO" --no-print-directory \
		install DESTDIR="$BW_ROOT" PREFIX=/usr >"$T/install.log" 2>&1 ||
		{ tail -n 20 "$T/install.log" >&2; fail "make install DESTDIR=$BW_ROOT PREFIX=/usr"; }
}

# bw_enrol NAME ROLE: a home CA made here, as on the administrator's machine, and NAME enrolled in
# it; its certificate, key, CA and CRL put where the shipped iotsec.conf looks for them.
bw_enrol() {
	iotsec-pki init --dir "$T/ca" --home smith >/dev/null 2>&1 || fail "iotsec-pki init"
	iotsec-pki enrol --dir "$T/ca" --device "$1" --role "$2" --out "$T/$1" >/dev/null 2>&1 ||
		fail "iotsec-pki enrol $1"
	install -m 0644 "$T/$1/$1.crt" "$BW_ROOT/etc/iotsec/device.crt"
	install -m 0600 "$T/$1/$1.key" "$BW_ROOT/etc/iotsec/device.key"
	install -m 0644 "$T/$1/ca.crt" "$T/$1/crl.pem" "$BW_ROOT/etc/iotsec/"
}

# inside COMMAND...: run COMMAND in the booted container (all its namespaces, its root), with a
# plain environment. No systemd-machined is needed (machinectl and systemd-run -M would need it).
inside() {
	nsenter -t "$BW_LEADER" -a env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
		SYSTEMD_PAGER= SYSTEMD_COLORS=0 "$@"
}

# alive PID: PID runs (a child that ended but is not waited for yet does not count).
alive() {
	_ps=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
	case $_ps in Z*) return 1 ;; esac
}

bw_found_leader() {
	BW_LEADER=$(pgrep -P "$BW_NSPAWN" | head -n 1)
	[ -n "$BW_LEADER" ] && [ "$(cat "/proc/$BW_LEADER/comm" 2>/dev/null)" = systemd ]
}
bw_booted() { inside systemctl is-system-running 2>/dev/null | grep -qE '^(running|degraded)$'; }

# bw_boot: boot BW_ROOT and wait until its systemd has finished starting up.
bw_boot() {
	command -v systemd-nspawn >/dev/null ||
		fail "no systemd-nspawn (scripts/deps.sh test installs it: apt-get install systemd-container)"
	mkdir -p "$T/boot"
	# nspawn keeps its state in /run/systemd/nspawn and removes it only from a tmpfs (/run may be
	# on disk): a tmpfs of our namespace takes it away with us, and keeps nspawn from this
	# machine's systemd, if any. Nothing from here on needs this machine's /run (the network is
	# private; debootstrap, which resolves names, is done).
	if [ -z "${BW_RUN:-}" ]; then
		mount -t tmpfs -o mode=0755 tmpfs /run
		BW_RUN=1
	fi
	# --register=no and --keep-unit: no systemd-machined or D-Bus on this machine is used.
	# --private-network: the container has its own loopback only, so nothing leaves.
	systemd-nspawn --boot --directory="$BW_ROOT" --machine="iotsec-$$" --private-network \
		--register=no --keep-unit --link-journal=no --resolv-conf=off --timezone=off \
		--console=pipe </dev/null >>"$T/boot/nspawn.log" 2>&1 9>&- &
	BW_NSPAWN=$!
	wait_until 30 bw_found_leader || fail "systemd-nspawn did not start systemd: $(tail -n 5 "$T/boot/nspawn.log")"
	wait_until 60 bw_booted || fail "the container did not finish booting: $(inside systemctl is-system-running 2>&1)"
	_state=$(inside systemctl is-system-running)
	[ "$_state" = running ] ||
		say "note: the container is $_state: $(inside systemctl --failed --no-legend --plain | tr '\n' ' ')"
}

# bw_halt TARGET STATUS: start poweroff.target or reboot.target inside as `systemctl poweroff`
# would (that asks logind over D-Bus first, which the tree has not), wait for nspawn to end, and
# check it ended with STATUS: 0 for a power-off, 133 for a reboot (which nspawn leaves to its
# caller, as systemd-nspawn@.service's RestartForceExitStatus=133 does).
bw_halt() {
	inside systemctl start --job-mode=replace-irreversibly --no-block "$1" >/dev/null 2>&1 ||
		fail "systemctl start $1 in the container"
	wait_until 60 eval '! alive "$BW_NSPAWN"' || fail "$1 did not end the container within 60 s"
	_rc=0
	wait "$BW_NSPAWN" || _rc=$?
	BW_NSPAWN=""
	BW_LEADER=""
	[ "$_rc" -eq "$2" ] || fail "systemd-nspawn exited $_rc after $1, not $2: $(tail -n 5 "$T/boot/nspawn.log")"
}
bw_shutdown() { bw_halt poweroff.target 0; }
bw_reboot() {
	bw_halt reboot.target 133
	bw_boot
}

# bw_nothing_left: after bw_shutdown, no process runs in the copy and, once it is unmounted,
# nothing is mounted below $T.
bw_nothing_left() {
	for _p in /proc/[0-9]*; do
		case $(readlink "$_p/root" 2>/dev/null) in
		"$BW_ROOT" | "$BW_ROOT"/*) fail "process ${_p#/proc/} ($(cat "$_p/comm")) still runs in the container" ;;
		esac
	done
	! mountpoint -q "$BW_ROOT" || umount "$BW_ROOT" || fail "cannot unmount $BW_ROOT"
	if grep -F " $T" /proc/self/mountinfo >&2; then fail "mounts left below $T (above)"; fi
}

# bw_stop: at exit, whatever state things are in: the container goes (halted, else killed), then
# the mounts.
bw_stop() {
	if [ -n "$BW_NSPAWN" ]; then
		# SIGTERM asks nspawn to halt the container the way systemd does.
		kill -TERM "$BW_NSPAWN" 2>/dev/null || true
		_i=0
		while alive "$BW_NSPAWN" && [ $_i -lt 300 ]; do
			sleep 0.1
			_i=$((_i + 1))
		done
		if alive "$BW_NSPAWN"; then
			printf 'the container did not halt: killed\n' >&2
			[ -z "$BW_LEADER" ] || kill -KILL "$BW_LEADER" 2>/dev/null || true
			kill -KILL "$BW_NSPAWN" 2>/dev/null || true
		fi
		wait "$BW_NSPAWN" 2>/dev/null || true
		BW_NSPAWN=""
	fi
	if [ -n "$BW_DEBOOTSTRAP" ]; then
		# dpkg finishes what it configures before it heeds SIGTERM: 5 s, then SIGKILL (the
		# unfinished tree is thrown away anyway).
		kill -TERM -- "-$BW_DEBOOTSTRAP" 2>/dev/null || true
		_i=0
		while alive "$BW_DEBOOTSTRAP" && [ $_i -lt 50 ]; do
			sleep 0.1
			_i=$((_i + 1))
		done
		kill -KILL -- "-$BW_DEBOOTSTRAP" 2>/dev/null || true
		wait "$BW_DEBOOTSTRAP" 2>/dev/null || true
	fi
	[ -z "$BW_BUILD" ] || { bw_unmount_below "$BW_BUILD"; rm -rf --one-file-system "$BW_BUILD"; }
	bw_unmount_below "$T"
}

bw_cleanup() {
	_bw_status=$?
	if [ "$_bw_status" -ne 0 ] && [ -n "$BW_NSPAWN" ] && [ -n "$BW_LEADER" ] && alive "$BW_NSPAWN"; then
		printf -- '--- the container'"'"'s journal, iotsec units\n' >&2
		inside journalctl --no-pager -n 40 -u 'iotsec*' >&2 2>/dev/null || true
	fi
	bw_stop
	cleanup "$_bw_status"
}
trap bw_cleanup EXIT
