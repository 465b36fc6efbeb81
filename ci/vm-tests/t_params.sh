#!/bin/sh
# Module parameters are applied at load; bad ones make the load fail with a message.
. /tests/lib.sh
modprobe uksm run=0 sleep_millisecs=200 || fail "modprobe with good parameters failed"
[ "$(get run)" = 0 ] || fail "run is $(get run), not 0"
[ "$(get sleep_millisecs)" = 200 ] || fail "sleep_millisecs is $(get sleep_millisecs)"
[ "$(cat /sys/module/uksm/parameters/sleep_millisecs)" = 200 ] || fail "parameter file disagrees"
rmmod uksm || fail "rmmod failed"
long=$(printf '1%.0s' $(seq 40))
for bad in run=3 run=-1 run=abc run= run run=0x1 "run=1 " sleep_millisecs=3600001 \
           sleep_millisecs=99999999999999999999999 sleep_millisecs=1x stats_interval_secs=86401 \
           stats_interval_secs=-5 pages_to_scan=0 pages_to_scan=1000001 use_zero_pages=2 "run=$long"; do
  dmesg -c > /dev/null
  if modprobe uksm "$bad" 2>/dev/null; then rmmod uksm; fail "load accepted '$bad'"; fi
  loaded && fail "module loaded with '$bad'"
  dmesg | grep -qE "uksm: (parameter .*refused|.*invalid for parameter)" || { dmesg | tail -5; fail "no message for '$bad'"; }
  echo "refused: $bad: $(dmesg | grep uksm | head -1)"
done
modprobe uksm || fail "default load failed"
[ "$(get run)" = 1 ] && [ "$(get sleep_millisecs)" = 100 ] || fail "defaults not restored after reload"
