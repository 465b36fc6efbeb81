#!/bin/sh
# The demo: load uksm, run a workload with duplicate and zero-filled memory, show what uksm
# merged (MemFree and AnonPages from /proc/meminfo, per-process figures from
# /proc/PID/ksm_stat) and what it logged.
. /tests/lib.sh
mem() { awk '/^(MemFree|AnonPages):/ { printf "%s %s kB  ", $1, $2 } END { print "" }' /proc/meminfo; }
echo "before the workload:  $(mem)"
modprobe uksm stats_interval_secs=5 sleep_millisecs=20 pages_to_scan=4000 || fail "modprobe"
echo "uksm loaded: tracking $(get tracked_vmas) VMAs, $(get tracked_pages) pages"
echo 0 > $U/run
dup_workload 4 32 60 30 25 > /tmp/dw.out &
w=$!
while ! grep -q filled /tmp/dw.out; do sleep 0.2; done
cat /tmp/dw.out
echo "workload filled, uksm paused: $(mem)"
echo 1 > $U/run
sleep 15
echo "15 s of uksm:         $(mem)"
echo "uksm: full_scans=$(get full_scans) pages_scanned=$(get pages_scanned) pages_shared=$(get pages_shared) pages_sharing=$(get pages_sharing) pages_unshared=$(get pages_unshared) ksm_zero_pages=$(get ksm_zero_pages)"
echo "  merging saves $(( ($(get pages_sharing) + $(get ksm_zero_pages)) * 4 )) kB"
for p in /proc/[0-9]*; do
  z=$(awk '/^ksm_zero_pages/ { print $2 }' $p/ksm_stat 2>/dev/null)
  m=$(awk '/^ksm_merging_pages/ { print $2 }' $p/ksm_stat 2>/dev/null)
  [ -n "$z" ] && [ $((z + m)) -gt 0 ] && echo "  $(cat $p/comm) (pid ${p#/proc/}): $m pages merged with others, $z zero pages merged"
done
wait $w
cat /tmp/dw.out | tail -1
rmmod uksm
echo "after the workload and rmmod: $(mem)"
echo "--- uksm in the kernel log"
dmesg | grep -E 'uksm|ksm_hooks'
