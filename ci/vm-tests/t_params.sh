#!/bin/sh
# Module parameters are applied at load; bad ones make the load fail with a message.
. /tests/lib.sh
modprobe uksm run=0 sleep_millisecs=200 || fail "modprobe with good parameters failed"
[ "$(get run)" = 0 ] || fail "run is $(get run), not 0"
[ "$(get sleep_millisecs)" = 200 ] || fail "sleep_millisecs is $(get sleep_millisecs)"
[ "$(cat /sys/module/uksm/parameters/sleep_millisecs)" = 200 ] || fail "parameter file disagrees"
rmmod uksm || fail "rmmod failed"
# The governor: a preset at load sets the CPU ceiling; a ceiling given after it wins.
modprobe uksm cpu_governor=low || fail "modprobe cpu_governor=low failed"
[ "$(get cpu_governor)" = "full medium [low] quiet" ] || fail "cpu_governor reads '$(get cpu_governor)'"
[ "$(get max_cpu_percentage)" = 20 ] || fail "low set max_cpu_percentage $(get max_cpu_percentage)"
[ "$(cat /sys/module/uksm/parameters/cpu_governor)" = "full medium [low] quiet" ] || fail "parameter file disagrees"
dmesg | grep "uksm: stats:" | tail -1 | grep -q "cpu_governor=low max_cpu_percentage=20" || fail "the statistics line does not name the governor"
rmmod uksm || fail "rmmod failed"
modprobe uksm cpu_governor=quiet max_cpu_percentage=30 || fail "modprobe quiet with a ceiling failed"
[ "$(get cpu_governor)" = "full medium low [quiet]" ] && [ "$(get max_cpu_percentage)" = 30 ] ||
  fail "quiet, 30: reads '$(get cpu_governor)', $(get max_cpu_percentage)"
rmmod uksm || fail "rmmod failed"
# Lists as parameters (modprobe quotes a value with spaces for the kernel).
modprobe uksm "cpu_ratios=MAX/1 MAX/2 30 20" "eval_intervals=2000 1000 500 500" abundant_threshold=20 thrash_threshold=0 ||
  fail "modprobe with lists failed"
[ "$(get cpu_ratios)" = "MAX/1 MAX/2 30 20" ] && [ "$(get eval_intervals)" = "2000 1000 500 500" ] &&
  [ "$(get abundant_threshold)" = 20 ] && [ "$(get thrash_threshold)" = 0 ] ||
  fail "lists: $(get cpu_ratios) / $(get eval_intervals) / $(get abundant_threshold) / $(get thrash_threshold)"
rmmod uksm || fail "rmmod failed"
long=$(printf '1%.0s' $(seq 40))
for bad in run=3 run=-1 run=abc run= run run=0x1 "run=1 " sleep_millisecs=3600001 \
           sleep_millisecs=99999999999999999999999 sleep_millisecs=1x stats_interval_secs=86401 \
           stats_interval_secs=-5 pages_to_scan=0 pages_to_scan=1000001 use_zero_pages=2 "run=$long" \
           cpu_governor=fast cpu_governor= cpu_governor=Full "cpu_governor=full " \
           max_cpu_percentage=0 max_cpu_percentage=101 max_cpu_percentage=-1 max_page_sharing=1 \
           "cpu_ratios=1 2 3" "cpu_ratios=0 1 1 1" "eval_intervals=1 2 3 4" "eval_intervals=50 100 200 400" \
           abundant_threshold=100 thrash_threshold=-1; do
  dmesg -c > /dev/null
  if modprobe uksm "$bad" 2>/dev/null; then rmmod uksm; fail "load accepted '$bad'"; fi
  loaded && fail "module loaded with '$bad'"
  dmesg | grep -qE "uksm: (parameter .*refused|.*invalid for parameter)" || { dmesg | tail -5; fail "no message for '$bad'"; }
  echo "refused: $bad: $(dmesg | grep uksm | head -1)"
done
modprobe uksm || fail "default load failed"
[ "$(get run)" = 1 ] && [ "$(get sleep_millisecs)" = 100 ] || fail "defaults not restored after reload"
[ "$(get cpu_governor)" = "[full] medium low quiet" ] && [ "$(get max_cpu_percentage)" = 95 ] ||
  fail "governor defaults not restored after reload"
