#!/bin/sh
# uksmctl (the static binary, as installed) against the real module: status shows what
# sysfs shows and the memory saved, top finds the processes that merged, set changes a
# tunable and shows the kernel's own reason when the kernel refuses, record and plot
# chart a merge; with the module unloaded status says so.
. /tests/lib.sh
C=/tests/uksmctl
load_all sleep_millisecs=20 pages_to_scan=5000 || fail "modprobe"
dup_workload 2 16 50 600 > /tmp/wl.out & wl=$!
wait_line /tmp/wl.out filled $wl 120
dups=$(sed -n 's/^filled: [0-9]* pages, \([0-9]*\) duplicates.*/\1/p' /tmp/wl.out)
$C record --interval 1 --duration 20 --output /tmp/rec.csv > /tmp/rec.out 2>&1 & rec=$!
i=0
while [ "$(get pages_sharing)" -lt $((dups * 9 / 10)) ]; do
  i=$((i+1)); [ $i -lt 3000 ] || fail "pages_sharing $(get pages_sharing) of $dups after 300 s"; sleep 0.1
done
# Frozen, so that the figures can be compared.
$C set run 0 > /tmp/set.out 2>&1 || { cat /tmp/set.out; fail "uksmctl set run 0"; }
[ "$(get run)" = 0 ] || fail "run is $(get run) after uksmctl set run 0"
$C status > /tmp/status.out 2>&1 || { cat /tmp/status.out; fail "uksmctl status"; }
cat /tmp/status.out
sharing=$(get pages_sharing); zero=$(get ksm_zero_pages)
want=$(awk -v p=$((sharing + zero)) 'BEGIN { printf "memory saved: %.2f MiB", p * 4096 / 1048576 }')
grep -q "^$want (" /tmp/status.out || fail "status does not say \"$want\""
grep -q "^ *pages_sharing *$sharing " /tmp/status.out || fail "status shows another pages_sharing than $sharing"
grep -q "^uksmd CPU time: " /tmp/status.out || fail "status shows no uksmd CPU time"
$C top > /tmp/top.out 2>&1 || fail "uksmctl top"
cat /tmp/top.out
grep -q "dup_workload" /tmp/top.out || fail "top does not list dup_workload"
# A value the kernel refuses: the error carries the kernel's reason; the value stays.
old=$(get sleep_millisecs)
$C set sleep_millisecs 99999999999 > /tmp/set.out 2>&1 && fail "uksmctl set accepted 99999999999"
cat /tmp/set.out
grep -q "the kernel refused sleep_millisecs=99999999999: Invalid argument" /tmp/set.out || fail "no refusal message"
grep -q "kernel: .*sleep_millisecs" /tmp/set.out || fail "the kernel's reason is not shown"
[ "$(get sleep_millisecs)" = "$old" ] || fail "sleep_millisecs changed to $(get sleep_millisecs)"
$C set sleep_millisecs 50 > /dev/null || fail "uksmctl set sleep_millisecs 50"
[ "$(get sleep_millisecs)" = 50 ] || fail "sleep_millisecs is $(get sleep_millisecs), not 50"
$C set pages_sharing 1 > /tmp/set.out 2>&1 && fail "uksmctl set a statistic"
grep -q "statistic" /tmp/set.out || fail "no message for a statistic"
$C set run 1 > /dev/null || fail "uksmctl set run 1"
wait $rec || { cat /tmp/rec.out; fail "uksmctl record"; }
$C plot /tmp/rec.csv --output /tmp/rec.svg || fail "uksmctl plot"
head -c 5 /tmp/rec.svg | grep -q "<svg" || fail "no SVG"
echo "recorded: $(($(wc -l < /tmp/rec.csv) - 1)) samples, last: $(tail -1 /tmp/rec.csv); chart $(wc -c < /tmp/rec.svg) bytes"
kill $wl; wait $wl 2>/dev/null
rmmod uksm || fail "rmmod"
$C status > /tmp/status.out 2>&1 && fail "status succeeded without the module"
grep -q "is uksm loaded" /tmp/status.out || fail "status does not say the module is missing"
echo "uksmctl: ok"
