#!/bin/sh
# Duplicates and zeros inside THPs (THP "always", the kernel's setting, and MADV_HUGEPAGE):
# uksm at its defaults merges 95 % of the duplicate pages and of the zero pages, merges
# them again after a collapse into huge pages (MADV_COLLAPSE, as khugepaged does) without
# taking it for thrashing, bytes intact (see thp_merge.c). Built-in KSM on the same
# workload: `/tests/thp_merge ksm 16` in the VM; ratios: ci/bench.sh (docs/testing.md).
. /tests/lib.sh
grep -q '\[always\]' /sys/kernel/mm/transparent_hugepage/enabled || fail "THP is not always"
load_all || fail "modprobe"
thp_merge uksm 16; rc=$?
dmesg | grep 'uksm: stats' | tail -1
rmmod uksm || fail "rmmod"
[ $rc = 0 ] || fail "uksm did not merge inside THPs"
