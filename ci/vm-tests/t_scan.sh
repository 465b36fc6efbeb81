#!/bin/sh
# uksmd reads every present page of every tracked VMA each pass and merges the duplicates
# a workload with a known duplicate count holds (pages_sharing: pages freed by merging),
# leaving contents intact.
. /tests/lib.sh
load_all sleep_millisecs=0 pages_to_scan=5000 || fail "modprobe"
passes 2 60
base=$(get pages_sharing)
dup_workload 3 16 75 600 > /tmp/dw.out & w=$!
i=0; while ! grep -q filled /tmp/dw.out; do i=$((i+1)); [ $i -lt 600 ] || fail "workload did not fill"; sleep 0.1; done
pages=$(sed -n 's/^filled: \([0-9]*\) pages.*/\1/p' /tmp/dw.out)
want=$(sed -n 's/^filled: [0-9]* pages, \([0-9]*\) duplicates.*/\1/p' /tmp/dw.out)
scanned0=$(get pages_scanned)
passes 2 120
scanned=$(( $(get pages_scanned) - scanned0 ))
got=$(( $(get pages_sharing) - base ))
echo "workload: $pages pages, $want duplicates; pages_sharing rose by $got; $scanned pages scanned meanwhile"
# The window holds at least one whole pass (the first may have begun before it), which
# hashed at least every page not merged by then.
[ $scanned -ge $((pages - want)) ] || fail "scanned $scanned pages in a window holding a whole pass over $pages pages, $want of them duplicates"
[ $got -ge $((want - want / 50)) ] && [ $got -le $((want + want / 50 + 32)) ] || fail "merged $got duplicates, expected about $want"
kill -TERM $w 2>/dev/null; wait $w
rmmod uksm || fail "rmmod"
# The same pages, checked byte for byte after uksm read them: a shorter run to the end.
load_all sleep_millisecs=0 pages_to_scan=5000 || fail "modprobe"
dup_workload 2 8 50 8 | tee /tmp/dw2.out
grep -q 'contents intact' /tmp/dw2.out || fail "workload contents changed"
