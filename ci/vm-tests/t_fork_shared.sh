#!/bin/sh
# Pages shared by fork before merging, and a third process with the same contents: after
# merging, soft offline from the parent and from the child moves all three mappings, and
# memory failure signals every process mapping the page (see fork_shared.c). Six rounds:
# the order in which uksmd meets the three mappings changes between them.
. /tests/lib.sh
echo 1 > /proc/sys/vm/memory_failure_early_kill || fail "cannot set memory_failure_early_kill"
load_all sleep_millisecs=0 pages_to_scan=5000 || fail "modprobe"
fork_shared 6; rc=$?
echo 0 > /proc/sys/vm/memory_failure_early_kill
rmmod uksm || fail "rmmod"
[ $rc = 0 ] || fail "fork_shared checks failed"
