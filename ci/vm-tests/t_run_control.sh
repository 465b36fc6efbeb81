#!/bin/sh
# uksmd scans while run=1, stops scanning on run=0, logs statistics, exits on unload.
. /tests/lib.sh
dmesg -c > /dev/null
load_all sleep_millisecs=10 stats_interval_secs=1 || fail "modprobe"
ps | grep -q '[u]ksmd' || fail "no uksmd thread"
a=$(get full_scans); sleep 2; b=$(get full_scans)
[ "$b" -gt "$a" ] || fail "full_scans did not advance with run=1 ($a -> $b)"
echo 0 > $U/run; sleep 0.5
a=$(get full_scans); sleep 2; b=$(get full_scans)
[ "$a" = "$b" ] || fail "uksmd scanned with run=0 ($a -> $b)"
echo 1 > $U/run; sleep 1
c=$(get full_scans)
[ "$c" -gt "$b" ] || fail "uksmd did not resume ($b -> $c)"
sleep 2
rmmod uksm || fail "rmmod"
ps | grep -q '[u]ksmd' && fail "uksmd still running after unload"
dmesg | grep uksm
[ "$(dmesg | grep -c 'uksm: stats:')" -ge 3 ] || fail "no periodic statistics lines"
dmesg | grep -q 'uksm: unloading: run=' || fail "no unload summary"
dmesg | grep -q 'uksm: unloaded$' || fail "no unload line"
[ -d $U ] && fail "$U left behind"
true
