#!/bin/sh
# Pages a pass meets first that the kernel refuses to merge (held by vmsplice), or that
# differ but share the partial hash, do not keep the later pages of their content from
# merging (see first_seen.c).
. /tests/lib.sh
# A round of 20000 pages covers a pass here (about 3000 tracked pages) and then one more;
# 200 ms between rounds lets first_seen count the passes merging takes.
# max_page_sharing above the 576 pages of one content: the test counts pages on one frame
# (the cap has its own test, t_max_sharing).
load_all sleep_millisecs=200 pages_to_scan=20000 max_page_sharing=4096 || fail "modprobe"
first_seen; rc=$?
rmmod uksm || fail "rmmod"
[ $rc = 0 ] || fail "first_seen checks failed"
