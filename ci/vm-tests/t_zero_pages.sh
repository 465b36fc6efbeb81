#!/bin/sh
# Zero pages are merged into the KSM zero page and survive writes, fork, munmap, mremap
# and MADV_DONTNEED intact; rmmod and run=2 unmerge every one of them.
. /tests/lib.sh
for how in rmmod run2; do
  load_all sleep_millisecs=0 pages_to_scan=5000 || fail "modprobe"
  zero_pages > /tmp/zp.out & zp=$!
  wait_line /tmp/zp.out MERGED $zp 180
  case $how in
    rmmod) rmmod uksm || fail "rmmod" ;;
    run2) echo 2 > $U/run || fail "run=2 refused"
          [ "$(get ksm_zero_pages)" = 0 ] || fail "run=2 left $(get ksm_zero_pages) zero pages" ;;
  esac
  kill -USR1 $zp; wait $zp; rc=$?
  cat /tmp/zp.out
  [ $rc = 0 ] || fail "zero_pages checks failed after $how"
  loaded && rmmod uksm
  [ "$(cat /sys/kernel/mm/ksm/ksm_zero_pages)" = 0 ] || fail "global ksm_zero_pages is $(cat /sys/kernel/mm/ksm/ksm_zero_pages) after $how"
done
# use_zero_pages=0 (KSM's meaning): zero pages are merged like any other identical pages,
# into one ordinary merged page, never into the KSM zero page; switching it on sends the
# zero pages seen from then on to the KSM zero page.
# KSM pages of the workload's processes, in kB, as the kernel's smaps counts them.
ksm_kb() {
  for p in /proc/[0-9]*; do
    [ "$(cat $p/comm 2>/dev/null)" = dup_workload ] && awk '/^KSM:/ { print $2 }' $p/smaps_rollup
  done | awk '{ s += $1 } END { print s + 0 }'
}
load_all sleep_millisecs=0 pages_to_scan=5000 use_zero_pages=0 || fail "modprobe use_zero_pages=0"
dup_workload 1 4 0 600 100 > /tmp/dz.out & dz=$!
i=0; while ! grep -q filled /tmp/dz.out; do i=$((i+1)); [ $i -lt 600 ] || fail "workload did not fill"; sleep 0.1; done
passes 3 60
echo "use_zero_pages=0: KSM pages of the workload $(ksm_kb) kB; pages_shared=$(get pages_shared) pages_sharing=$(get pages_sharing) ksm_zero_pages=$(get ksm_zero_pages)"
[ "$(get ksm_zero_pages)" = 0 ] || fail "use_zero_pages=0 merged $(get ksm_zero_pages) zero pages into the zero page"
[ "$(ksm_kb)" -ge 4000 ] || fail "use_zero_pages=0: only $(ksm_kb) kB of the 4096 kB of zero pages merged"
echo 1 > $U/use_zero_pages
dup_workload 1 4 0 600 100 > /tmp/dz2.out & dz2=$!
i=0; while ! grep -q filled /tmp/dz2.out; do i=$((i+1)); [ $i -lt 600 ] || fail "workload did not fill"; sleep 0.1; done
passes 2 60
# (A page the scanner finds busy at first may still go to the ordinary merged page of zeros
# the first workload left, when it is seen again.)
[ "$(get ksm_zero_pages)" -ge 1000 ] || fail "use_zero_pages=1 merged only $(get ksm_zero_pages) of 1024 zero pages into the zero page"
kill $dz $dz2; wait $dz; wait $dz2
rmmod uksm || fail "rmmod"
dmesg | grep 'uksm: unmerged'
