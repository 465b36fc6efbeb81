#!/bin/sh
# 1000 generated hostile inputs for every tunable, in /sys/kernel/mm/uksm/ and in uksm's
# files of /sys/kernel/mm/ksm/, then concurrent writers (sysfs_fuzz.c); statistics are
# world-readable and tunables root's only.
. /tests/lib.sh
load_all || fail "modprobe"
for f in $U/* /sys/kernel/mm/ksm/*; do
  m=$(stat -c %a "$f")
  case $m in 444|644) ;; *) fail "$f has mode $m" ;; esac
done
for f in pages_sharing full_scans rung_vmas hash_strength merges_broken; do
  [ "$(stat -c %a $U/$f)" = 444 ] || fail "$f not read-only for all"
done
for f in run merge_domain cpu_governor max_cpu_percentage; do
  [ "$(stat -c %a $U/$f)" = 644 ] || fail "$f not writable by root only"
done
# Every refusal is logged at warning level: keep the thousands of lines off the console.
level=$(awk '{ print $1 }' /proc/sys/kernel/printk)
dmesg -n 1
seed=$(( $(date +%s) % 100000 ))
echo "seed $seed"
/tests/sysfs_fuzz 1000 $seed; rc=$?
dmesg -n "$level"
[ $rc = 0 ] || fail "sysfs_fuzz (seed $seed)"
