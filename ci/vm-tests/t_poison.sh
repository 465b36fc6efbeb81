#!/bin/sh
# Memory failure of a merged page: every process mapping it is found through the module's
# rmap items (an early SIGBUS with memory_failure_early_kill, the mapping gone), the other
# pages stay intact (see poison.c).
. /tests/lib.sh
echo 1 > /proc/sys/vm/memory_failure_early_kill || fail "cannot set memory_failure_early_kill"
load_all sleep_millisecs=0 pages_to_scan=5000 || fail "modprobe"
poison; rc=$?
echo 0 > /proc/sys/vm/memory_failure_early_kill
rmmod uksm || fail "rmmod"
[ $rc = 0 ] || fail "poison checks failed"
