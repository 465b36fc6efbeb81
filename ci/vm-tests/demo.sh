#!/bin/sh
# The demo: load uksm, run a workload with duplicate memory, show what uksm saw and logged.
. /tests/lib.sh
free_kb() { awk '/^MemFree:/ { print $2 }' /proc/meminfo; }
echo "MemFree before the workload: $(free_kb) kB"
modprobe uksm stats_interval_secs=5 || fail "modprobe"
echo "uksm loaded: tracking $(get tracked_vmas) VMAs, $(get tracked_pages) pages"
dup_workload 4 32 75 12 &
w=$!
sleep 8
echo "MemFree with the workload running: $(free_kb) kB"
echo "uksm tracks $(get tracked_vmas) VMAs, $(get tracked_pages) pages; full_scans=$(get full_scans)"
wait $w
rmmod uksm
echo "MemFree after the workload: $(free_kb) kB"
echo "--- uksm in the kernel log"
dmesg | grep -E 'uksm|ksm_hooks'
