#!/bin/sh
# Thrash avoidance: a process keeps rewriting the merged pages of an 8 MiB VMA (every
# page every 200 ms, with the same bytes, so each write breaks a merge and leaves a page
# to merge again). With thrash_threshold=0 (the filter off) uksmd merges them again pass
# after pass; with the default (50) the VMA is held, longer each time it thrashes again
# (2 s, 4 s, ... 64 s), and after a minute of writing uksmd merges at most half as often
# as without the filter: pages_merged in the last 30 s of 60 s of writing with the filter
# off, and of 90 s with it on (the program also counts, before each sweep of writes, the
# pages whose frame pagemap shows shared). Once the writes stop, the pages are merged
# again.
# THP stays at the system's setting: merging splits the huge pages first, and khugepaged
# collapses rewritten ranges into huge pages again now and then (merges_collapsed).
. /tests/lib.sh
load_all || fail "modprobe"
[ "$(get thrash_threshold)" = 50 ] || fail "thrash_threshold default $(get thrash_threshold), not 50"
echo 0 > $U/thrash_threshold || fail "thrash_threshold=0 refused"
thrash 300 60 0 > /tmp/thr0.out; rc=$?
cat /tmp/thr0.out
[ $rc = 0 ] || fail "thrash (filter off) exited $rc"
off=$(sed -n 's/^merges_last: //p' /tmp/thr0.out)
# Without the filter the workload does thrash: half the VMA merged again in 30 s (and
# broken again: broken_last).
[ "$off" -ge 1024 ] || fail "filter off: only $off merges in 30 s; the workload does not thrash"
echo 50 > $U/thrash_threshold || fail "thrash_threshold=50 refused"
THRASH_VERBOSE=1 thrash 300 90 150 > /tmp/thr1.out; rc=$?
cat /tmp/thr1.out
[ $rc = 0 ] || fail "thrash (filter on) exited $rc"
on=$(sed -n 's/^merges_last: //p' /tmp/thr1.out)
echo "merges in the last 30 s of writing: filter off $off, on $on; merges_broken $(get merges_broken), merges_collapsed $(get merges_collapsed), thrash_holds $(get thrash_holds)"
[ "$(get thrash_holds)" -gt 0 ] || fail "no VMA was held for thrashing"
[ $((on * 2)) -le "$off" ] || fail "filter on: $on merges, more than half of $off"
rmmod uksm || fail "rmmod"
