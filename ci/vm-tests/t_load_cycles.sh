#!/bin/sh
# 100 load/unload cycles while processes churn VMAs: no splat, no leak, memory returns.
. /tests/lib.sh
trap stop_churn EXIT
echo clear > /sys/kernel/debug/kmemleak
before=$(kernel_mem_kb)
vma_churn run 100000 4 & churn=$!
sleep 1
i=0
while [ $i -lt 100 ]; do
  modprobe uksm sleep_millisecs=1 || fail "modprobe failed in cycle $i"
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
after=$(kernel_mem_kb)
echo "slab+vmalloc: ${before} kB before, ${after} kB after"
[ $((after - before)) -lt 2048 ] || fail "kernel memory grew by $((after - before)) kB"
echo scan > /sys/kernel/debug/kmemleak; sleep 6; echo scan > /sys/kernel/debug/kmemleak
leaks=$(cat /sys/kernel/debug/kmemleak)
[ -z "$leaks" ] || { echo "$leaks" | head -40; fail "kmemleak reports leaks"; }
