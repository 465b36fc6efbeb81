#!/bin/sh
# Duplicates and zeros inside THPs (THP "always", the kernel's setting, and MADV_HUGEPAGE):
# uksm at its defaults merges 95 % of the duplicate pages and of the zero pages, bytes
# intact (see thp_merge.c). The same workload under built-in KSM in the same boot is
# printed for reference and does not decide the result.
. /tests/lib.sh
grep -q '\[always\]' /sys/kernel/mm/transparent_hugepage/enabled || fail "THP is not always"
load_all || fail "modprobe"
thp_merge uksm 16; rc=$?
dmesg | grep 'uksm: stats' | tail -1
rmmod uksm || fail "rmmod"
echo "reference:"
thp_merge ksm 16 || echo "(built-in KSM did not reach 95 % in time)"
echo 2 > /sys/kernel/mm/ksm/run
[ $rc = 0 ] || fail "uksm did not merge inside THPs"
