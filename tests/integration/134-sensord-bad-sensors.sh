#!/bin/sh
# Sensors that fail, in a sysfs-like tree (sensord.sysfs): a thermal zone that returns garbage, a
# hwmon file that is missing, one that is implausible, a DS18B20 whose CRC says NO, one at its
# power-on 85000, and a replay file with bad rows among good ones. sensord keeps running, says
# each failure once in its log (the file and why) and in its status (per sensor), publishes no
# reading for it, and the good sensors and rows still reach the home. A fixed sensor reads again.
. "$(dirname "$0")/common.sh"
. "$IT_DIR/sensord-common.sh"
need_netns
SYS=$T/sys
mkdir -p "$SYS/class/thermal/thermal_zone0" "$SYS/class/thermal/thermal_zone1" \
	"$SYS/class/hwmon/hwmon0" "$SYS/bus/w1/devices/28-00000badc0de" \
	"$SYS/bus/w1/devices/28-0000000a11ce" "$SYS/bus/w1/devices/28-00000000f00d"
printf 'garbage\n' >"$SYS/class/thermal/thermal_zone0/temp"
printf '42500\n' >"$SYS/class/thermal/thermal_zone1/temp"
# hwmon0/temp1_input does not exist; temp2_input says 199 C.
printf '199000\n' >"$SYS/class/hwmon/hwmon0/temp2_input"
printf '72 01 4b 46 7f ff 0e 10 57 : crc=57 NO\n72 01 4b 46 7f ff 0e 10 57 t=23125\n' \
	>"$SYS/bus/w1/devices/28-00000badc0de/w1_slave"
printf '73 01 4b 46 7f ff 0d 10 41 : crc=41 YES\n73 01 4b 46 7f ff 0d 10 41 t=23125\n' \
	>"$SYS/bus/w1/devices/28-0000000a11ce/w1_slave"
printf '50 05 4b 46 7f ff 0c 10 1c : crc=1c YES\n50 05 4b 46 7f ff 0c 10 1c t=85000\n' \
	>"$SYS/bus/w1/devices/28-00000000f00d/w1_slave"
CSV=$T/bad.csv
write_csv "$CSV" "# good rows and bad ones" \
	"lamp,19.5,C" \
	"lamp,abc,C" \
	"" \
	"Lamp!,1,C" \
	"lamp" \
	"lamp,1e999,C" \
	"lamp,nan,C" \
	"lamp,21,unit_far_too_long_here" \
	"lamp,20.25,C"
sensord_home
kit 1 hub controller
kit 2 kit1 node "sysfs = \"$SYS\"; replay_loop = true; sensors = \"thermal:thermal_zone0 thermal:thermal_zone1 hwmon:hwmon0/temp1_input hwmon:hwmon0/temp2_input ds18b20:28-00000badc0de ds18b20:28-0000000a11ce ds18b20:28-00000000f00d replay:$CSV\";"
for n in hub kit1; do run_kit "$n"; done
home_ready hub kit1

say "the good sensors and rows reach hub"
wait_until 15 opened hub kit1 thermal_zone1 42.5 || fail "no thermal_zone1 at hub: $(readings hub | tail -n 3)"
wait_until 10 opened hub kit1 28-0000000a11ce 23.125 || fail "no good DS18B20 at hub"
wait_until 10 opened hub kit1 lamp 19.5 || fail "no lamp 19.5 at hub"
wait_until 10 opened hub kit1 lamp 20.25 || fail "no lamp 20.25 at hub"
sleep 3 # every bad row read at least once, every failing sensor several times
kill -0 "$(sensord_pid kit1)" || fail "kit1's sensord died"

# Nothing from a failing sensor or a bad row.
bad=$(readings hub | $PY -c 'import json, sys
good = {("thermal_zone1", 42.5), ("28-0000000a11ce", 23.125), ("lamp", 19.5), ("lamp", 20.25)}
print(" ".join("%s=%s" % (r["sensor"], r["value"]) for r in map(json.loads, sys.stdin)
               if r["device"] == "kit1" and (r["sensor"], r["value"]) not in good))')
[ -z "$bad" ] || fail "hub opened readings that should not exist: $bad"

say "each failure in the log: the file and why"
L=$T/kit1/sensord.log
# logged NAME ARG FILE REASON: one line (not one a reading) for sensor NAME of ARG, naming FILE
# and saying REASON (before the first pool, the sensor's line said there was no key yet).
logged() {
	grep "sensor $1 (.*:$2): " "$L" | grep -v "no group key yet" >"$T/lines" || true
	_n=$(wc -l <"$T/lines")
	[ "$_n" = 1 ] || fail "sensor $1: $_n log lines: $(head -n 3 "$T/lines")"
	grep -qF "$SYS/$3" "$T/lines" || fail "sensor $1's line does not name $SYS/$3: $(cat "$T/lines")"
	grep -Eiq "$4" "$T/lines" || fail "sensor $1's line does not say why: $(cat "$T/lines")"
}
logged thermal_zone0 thermal_zone0 class/thermal/thermal_zone0/temp "not a number"
logged hwmon0_temp1 hwmon0/temp1_input class/hwmon/hwmon0/temp1_input "no such file|missing|not found"
logged hwmon0_temp2 hwmon0/temp2_input class/hwmon/hwmon0/temp2_input "outside -60..150 C"
logged 28-00000badc0de 28-00000badc0de bus/w1/devices/28-00000badc0de/w1_slave "crc"
logged 28-00000000f00d 28-00000000f00d bus/w1/devices/28-00000000f00d/w1_slave "85000|power-on"
for line in 3 5 6 7 8 9; do
	grep -q "$CSV:$line: " "$L" || fail "no log line for $CSV:$line: $(grep "$CSV" "$L" | head -n 5)"
done
for line in 1 2 4 10; do
	grep -q "$CSV:$line: " "$L" && fail "line $line of the CSV logged: $(grep "$CSV:$line: " "$L")"
done
say "$(grep -c "sensor " "$L") lines, e.g. $(grep -m1 "thermal_zone0/temp: " "$L" | sed 's/.*sensor /sensor /')"

say "each failure in the status, per sensor"
errors=$(sstatus kit1 | $PY -c 'import json, sys
for s in json.load(sys.stdin)["sensors"]:
    print("%s|%s|%s" % (s["name"], s["driver"], s["error"]))')
has_error() { echo "$errors" | grep -q "^$1|$2|..*"; }
no_error() { echo "$errors" | grep -qx "$1|$2|"; }
has_error thermal_zone0 thermal || fail "status: $errors"
has_error hwmon0_temp1 hwmon || fail "status: $errors"
has_error hwmon0_temp2 hwmon || fail "status: $errors"
has_error 28-00000badc0de ds18b20 || fail "status: $errors"
has_error 28-00000000f00d ds18b20 || fail "status: $errors"
no_error thermal_zone1 thermal || fail "status: $errors"
no_error 28-0000000a11ce ds18b20 || fail "status: $errors"

say "thermal_zone0 is fixed: it reads again"
printf '30125\n' >"$SYS/class/thermal/thermal_zone0/temp"
wait_until 10 opened hub kit1 thermal_zone0 30.125 || fail "thermal_zone0 does not read again"
grep -q "sensor thermal_zone0: reading again" "$L" || fail "the log does not say thermal_zone0 reads again"
fixed() {
	sstatus kit1 | $PY -c 'import json, sys
s = [s for s in json.load(sys.stdin)["sensors"] if s["name"] == "thermal_zone0"][0]
sys.exit(not (s["error"] == "" and s["last"] == 30.125))'
}
wait_until 5 fixed || fail "status of thermal_zone0: $(sstatus kit1)"
kill -0 "$(sensord_pid kit1)" || fail "kit1's sensord died"
echo ok
