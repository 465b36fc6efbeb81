#!/bin/sh
# Identical pages of several processes end up on one frame; contents survive writes, fork,
# munmap, mremap, MADV_DONTNEED, migration (soft offline, compaction), process exit and
# swap; rmmod and run=2 give every process its own pages back (see merge_pages.c).
. /tests/lib.sh
echo clear > /sys/kernel/debug/kmemleak
if ! grep -q zram0 /proc/swaps; then
  { [ "$(cat /sys/block/zram0/disksize)" != 0 ] || echo 128M > /sys/block/zram0/disksize; } &&
    mkswap /dev/zram0 >/dev/null && swapon /dev/zram0 ||
    fail "cannot set up zram swap"
fi
for how in rmmod run2; do
  load_all sleep_millisecs=0 pages_to_scan=5000 || fail "modprobe"
  merge_pages > /tmp/mp.out & mp=$!
  wait_line /tmp/mp.out MERGED $mp 300
  echo "uksm: pages_shared=$(get pages_shared) pages_sharing=$(get pages_sharing) pages_unshared=$(get pages_unshared)"
  case $how in
    rmmod) rmmod uksm || fail "rmmod" ;;
    run2) echo 2 > $U/run || fail "run=2 refused"
          [ "$(get pages_shared)" = 0 ] && [ "$(get pages_sharing)" = 0 ] ||
            fail "run=2 left pages_shared=$(get pages_shared) pages_sharing=$(get pages_sharing)" ;;
  esac
  kill -USR1 $mp; wait $mp; rc=$?
  cat /tmp/mp.out
  [ $rc = 0 ] || fail "merge_pages checks failed after $how"
  loaded && { rmmod uksm || fail "rmmod after run=2"; }
done
dmesg | grep 'uksm: unmerged'
swapoff /dev/zram0
# Every node, rmap item and table of the runs above is freed.
kmemleak_check
