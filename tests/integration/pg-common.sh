# Shared by the tests that need a PostgreSQL server (the relay's store, relay.store =
# "postgresql"): source it after common.sh. A real server of Debian's postgresql package runs a
# cluster of its own in a directory of the test, listening only on a unix socket there, fsync on,
# as nobody when we are root (PostgreSQL refuses root). The cluster is a copy of a template made
# once by initdb and kept beside the build (build/pg-template-VERSION, shared with the unit tests
# of tests/unit/pg.c). It is stopped at the end of the test, even when the test fails.

PG_BIN=""
PG_DIR=""
PG_DB=""
PG_CONNINFO=""
PG_RUNNING=0
PG_USER=iotsec

# pg_find: PG_BIN, the newest installed version's bin directory; false when none.
pg_find() {
	_best=""
	for _d in /usr/lib/postgresql/*/bin; do
		[ -x "$_d/pg_ctl" ] || continue
		_v=$(basename "$(dirname "$_d")")
		case "$_v" in *[!0-9]* | "") continue ;; esac
		if [ -z "$_best" ] || [ "$_v" -gt "$_best" ]; then _best=$_v; fi
	done
	[ -n "$_best" ] || return 1
	PG_BIN=/usr/lib/postgresql/$_best/bin
	PG_VERSION=$_best
}

# need_pg: skip the test (exit 77) when PostgreSQL is not installed.
need_pg() {
	pg_find && return 0
	echo "PostgreSQL is not installed (apt-get install postgresql): skipped"
	exit 77
}

# pg_as COMMAND...: COMMAND as the server's user (nobody when we are root), in PG_DIR.
pg_as() {
	if [ "$(id -u)" -eq 0 ]; then
		(cd "$PG_DIR" && setpriv --reuid="$(id -u nobody)" --regid="$(id -g nobody)" \
			--clear-groups env LC_ALL=C "$@")
	else
		(cd "$PG_DIR" && env LC_ALL=C "$@")
	fi
}

# start_pg DIR [DATABASE]: a new cluster in DIR/data, its socket in DIR, its log in
# DIR/postgres.log, and a database (default "iotsec"); PG_CONNINFO is libpq's connection string
# to it (host=DIR dbname=DATABASE user=iotsec, trust authentication on the socket).
start_pg() {
	need_pg
	PG_DIR=$1
	PG_DB=${2:-iotsec}
	mkdir -p "$PG_DIR"
	: >>"$PG_DIR/postgres.log"
	# The server's user must reach DIR through $T (made 0700 by mktemp).
	chmod 0711 "$T"
	_tpl=${IOTSEC_BUILD:-$(dirname "$IOTSEC_BIN")}/pg-template-$PG_VERSION
	if [ -f "$_tpl/PG_VERSION" ]; then
		cp -a "$_tpl" "$PG_DIR/data" || fail "cannot copy the PostgreSQL template $_tpl"
	fi
	if [ "$(id -u)" -eq 0 ]; then chown -R nobody:"$(id -gn nobody)" "$PG_DIR"; fi
	chmod 0700 "$PG_DIR"
	if [ ! -f "$PG_DIR/data/PG_VERSION" ]; then
		# --no-sync: initdb's own files only; the server runs with fsync on.
		pg_as "$PG_BIN/initdb" -D "$PG_DIR/data" -U "$PG_USER" --auth=trust -E UTF8 \
			--locale=C --no-sync >>"$PG_DIR/postgres.log" 2>&1 ||
			fail "initdb: $(tail -n 5 "$PG_DIR/postgres.log")"
		# Published whole by a rename: of two tests at once, the first one's stays.
		if cp -a "$PG_DIR/data" "$_tpl.tmp.$$" 2>/dev/null; then
			mv -T "$_tpl.tmp.$$" "$_tpl" 2>/dev/null || rm -rf "$_tpl.tmp.$$"
		fi
	fi
	cat >>"$PG_DIR/data/postgresql.conf" <<CONF

# iotsec tests
listen_addresses = ''
unix_socket_directories = '$PG_DIR'
fsync = on
synchronous_commit = on
max_connections = 30
shared_buffers = 32MB
CONF
	restart_pg
	"$PG_BIN/createdb" -h "$PG_DIR" -U "$PG_USER" "$PG_DB" >>"$PG_DIR/postgres.log" 2>&1 ||
		fail "createdb: $(tail -n 5 "$PG_DIR/postgres.log")"
	# shellcheck disable=SC2034 # for the test that sources us
	PG_CONNINFO="host=$PG_DIR dbname=$PG_DB user=$PG_USER"
}

# stop_pg [MODE]: stop the server (fast: sessions ended, a clean shutdown; immediate: the
# processes killed, a power cut as the database sees it) and wait until it is gone. The cluster
# stays for restart_pg.
stop_pg() {
	[ "$PG_RUNNING" -eq 1 ] || return 0
	pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m "${1:-fast}" -w -t 60 stop \
		>>"$PG_DIR/postgres.log" 2>&1 || return 1
	PG_RUNNING=0
}

# restart_pg: start the stopped server again and wait until it takes connections.
restart_pg() {
	# shellcheck disable=SC2094 # the server and pg_ctl both append to the log, nothing reads it
	pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/postgres.log" -w -t 60 start \
		>>"$PG_DIR/postgres.log" 2>&1 || fail "pg_ctl start: $(tail -n 5 "$PG_DIR/postgres.log")"
	PG_RUNNING=1
}

# pg_sql SQL: run SQL in the test's database, printing the rows unaligned, fields split by |.
pg_sql() {
	"$PG_BIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 -h "$PG_DIR" -U "$PG_USER" -d "$PG_DB" -c "$1"
}

# The server is not a child of the test: stop it before common.sh's cleanup removes $T. That
# cleanup is the one common.sh's EXIT trap (which this one replaces) runs: hosts first, if any.
pg_cleanup() {
	_pg_status=$1
	stop_pg fast || stop_pg immediate || true
	cleanup_hosts_then_files "$_pg_status"
}
trap 'pg_cleanup $?' EXIT
