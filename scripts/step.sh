# step TEXT: a heading for the demo's next step. Sourced by demo.sh and demo-home.sh.
# Bold only on a terminal: piped into a file or a pager the escapes are noise.
if [ -t 1 ]; then
	step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
else
	step() { printf '\n==> %s\n' "$*"; }
fi
