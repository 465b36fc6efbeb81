#!/bin/sh
# Load/unload cycles (LOAD_CYCLES, default 10; the torture test reloads the module too)
# while processes churn VMAs: no splat, no leak (kmemleak, KSM's counters, vmalloc), the
# registry exact afterwards.
. /tests/lib.sh
trap stop_churn EXIT
echo clear > /sys/kernel/debug/kmemleak
slab0=$(meminfo_kb Slab); vmalloc0=$(meminfo_kb VmallocUsed)
vma_churn run 100000 4 & churn=$!
sleep 1
cycles=${LOAD_CYCLES:-10}
i=0
while [ $i -lt $cycles ]; do
  load_all sleep_millisecs=1 || { grep . /sys/kernel/mm/ksm/*; fail "modprobe failed in cycle $i"; }
  [ "$(get tracked_vmas)" -gt 0 ] || fail "nothing tracked in cycle $i"
  rmmod uksm || fail "rmmod failed in cycle $i"
  i=$((i+1))
done
echo "$cycles cycles done"
load_all || fail "modprobe after cycles"
vma_churn check 3 || fail "registry differs from /proc after $cycles cycles"
rmmod uksm
stop_churn
sleep 1
slab1=$(meminfo_kb Slab); vmalloc1=$(meminfo_kb VmallocUsed)
echo "Slab: $slab0 -> $slab1 kB, VmallocUsed: $vmalloc0 -> $vmalloc1 kB"
# The exact check first: no unreferenced object left by the cycles.
kmemleak_check
# Module text and large buffers live in vmalloc space: 10 leaked loads would be MiBs.
[ $((vmalloc1 - vmalloc0)) -lt 1024 ] || fail "vmalloc memory grew by $((vmalloc1 - vmalloc0)) kB"
# Every rmap item and node the cycles made was freed: KSM's own counters, which count the
# module's items, are back to 0 (a leaked item would also have made a later load fail).
K=/sys/kernel/mm/ksm
[ "$(cat $K/pages_shared)" = 0 ] && [ "$(cat $K/pages_sharing)" = 0 ] ||
  fail "KSM counters after unload: pages_shared=$(cat $K/pages_shared) pages_sharing=$(cat $K/pages_sharing)"
# Slab is printed, not judged: KASAN keeps freed objects in a quarantine of up to 1/32 of
# RAM (96 MiB here), so Slab grows by tens of MiB over this test when it runs early in a
# boot, without any leak (seen: +78 MiB with kmemleak clean); kmemleak above is exact.
