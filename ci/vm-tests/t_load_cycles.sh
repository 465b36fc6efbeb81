#!/bin/sh
# 100 load/unload cycles while processes churn VMAs: no splat, no leak, memory returns.
. /tests/lib.sh
trap stop_churn EXIT
echo clear > /sys/kernel/debug/kmemleak
slab0=$(meminfo_kb Slab); vmalloc0=$(meminfo_kb VmallocUsed)
vma_churn run 100000 4 & churn=$!
sleep 1
i=0
while [ $i -lt 100 ]; do
  modprobe uksm sleep_millisecs=1 || { grep . /sys/kernel/mm/ksm/*; fail "modprobe failed in cycle $i"; }
  [ "$(get tracked_vmas)" -gt 0 ] || fail "nothing tracked in cycle $i"
  rmmod uksm || fail "rmmod failed in cycle $i"
  i=$((i+1))
done
echo "100 cycles done"
modprobe uksm || fail "modprobe after cycles"
vma_churn check 3 || fail "registry differs from /proc after 100 cycles"
rmmod uksm
stop_churn
sleep 1
slab1=$(meminfo_kb Slab); vmalloc1=$(meminfo_kb VmallocUsed)
echo "Slab: $slab0 -> $slab1 kB, VmallocUsed: $vmalloc0 -> $vmalloc1 kB"
# Module text and large buffers live in vmalloc space: 100 leaked loads would be MiBs.
[ $((vmalloc1 - vmalloc0)) -lt 1024 ] || fail "vmalloc memory grew by $((vmalloc1 - vmalloc0)) kB"
# KASAN keeps freed slab objects in a quarantine of up to 1/32 of RAM, so Slab moves by
# MiBs without any leak; kmemleak below is the exact check for slab objects.
[ $((slab1 - slab0)) -lt 8192 ] || fail "slab memory grew by $((slab1 - slab0)) kB"
kmemleak_check
