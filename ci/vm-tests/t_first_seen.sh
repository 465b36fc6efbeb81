#!/bin/sh
# Pages a pass meets first that the kernel refuses to merge (held by vmsplice), or that
# differ but share the partial hash, do not keep the later pages of their content from
# merging (see first_seen.c).
. /tests/lib.sh
modprobe uksm sleep_millisecs=0 pages_to_scan=5000 || fail "modprobe"
first_seen; rc=$?
rmmod uksm || fail "rmmod"
[ $rc = 0 ] || fail "first_seen checks failed"
