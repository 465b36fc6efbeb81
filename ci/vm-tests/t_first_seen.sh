#!/bin/sh
# Pages a pass meets first that the kernel refuses to merge (held by vmsplice), or that
# differ but share the partial hash, do not keep the later pages of their content from
# merging (see first_seen.c).
. /tests/lib.sh
# A round of 20000 pages covers a pass here (about 3000 tracked pages) and then one more;
# 200 ms between rounds lets first_seen count the passes merging takes.
modprobe uksm sleep_millisecs=200 pages_to_scan=20000 || fail "modprobe"
first_seen; rc=$?
rmmod uksm || fail "rmmod"
[ $rc = 0 ] || fail "first_seen checks failed"
