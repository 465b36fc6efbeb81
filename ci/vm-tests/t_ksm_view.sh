#!/bin/sh
# Loading uksm takes over from a running built-in KSM (stops ksmd, unmerges its pages);
# while uksm is loaded /sys/kernel/mm/ksm/ answers for it and steers it; unloading gives
# built-in KSM back, running as before.
. /tests/lib.sh
K=/sys/kernel/mm/ksm
dmesg -c > /dev/null
echo 0 > $K/sleep_millisecs; echo 1000 > $K/pages_to_scan
echo 1 > $K/run
/tests/ksm_dup > /tmp/ksm_dup.out &
dup=$!
i=0; while ! grep -q merged /tmp/ksm_dup.out; do i=$((i+1)); [ $i -lt 600 ] || fail "ksmd did not merge"; sleep 0.1; done
echo "ksmd merged: pages_sharing $(cat $K/pages_sharing)"

# Take-over.
load_all || fail "modprobe uksm while ksmd runs with merged pages"
dmesg | grep -q "ksm_hooks: built-in KSM stopped and its pages unmerged for uksm" ||
  { dmesg | grep ksm; fail "no take-over line"; }
dmesg | grep ksm_hooks

# The view: KSM's names give uksm's figures (compared with uksmd paused: it changes them
# as it goes).
i=0; while [ "$(get pages_sharing)" -lt 32 ]; do i=$((i+1)); [ $i -lt 1200 ] || fail "uksm merged nothing"; sleep 0.1; done
echo 0 > $U/run
for f in pages_sharing pages_shared pages_unshared full_scans pages_scanned run pages_to_scan sleep_millisecs max_page_sharing use_zero_pages; do
  [ "$(cat $K/$f)" = "$(get $f)" ] || fail "$K/$f ($(cat $K/$f)) is not uksm's $f ($(get $f))"
done
echo 1 > $U/run
echo "view: pages_sharing $(cat $K/pages_sharing) full_scans $(cat $K/full_scans) general_profit $(cat $K/general_profit)"
[ "$(cat $K/general_profit)" -gt 0 ] || fail "general_profit $(cat $K/general_profit) with pages merged"
# KSM's own files stay, and say what built-in KSM holds now: nothing.
for f in stable_node_chains stable_node_dups pages_volatile; do
  [ "$(cat $K/$f)" = 0 ] || fail "$K/$f is $(cat $K/$f)"
done
cat $K/stable_node_chains_prune_millisecs > /dev/null || fail "KSM's own files gone"
# Statistics world-readable, tunables root's.
[ "$(stat -c %a $K/pages_sharing)" = 444 ] || fail "pages_sharing mode $(stat -c %a $K/pages_sharing)"
[ "$(stat -c %a $K/run)" = 644 ] || fail "run mode $(stat -c %a $K/run)"

# Steering, as ksmtuned does.
echo 0 > $K/run || fail "ksm run=0 refused"
[ "$(get run)" = 0 ] || fail "uksm run is $(get run) after ksm run=0"
a=$(get full_scans); sleep 2; [ "$(get full_scans)" = "$a" ] || fail "uksmd scanned after ksm run=0"
echo 1 > $K/run || fail "ksm run=1 refused"
[ "$(get run)" = 1 ] || fail "uksm run is $(get run) after ksm run=1"
echo 1234 > $K/pages_to_scan; [ "$(get pages_to_scan)" = 1234 ] || fail "pages_to_scan not passed on"
echo 30 > $K/sleep_millisecs; [ "$(get sleep_millisecs)" = 30 ] || fail "sleep_millisecs not passed on"
( echo -5 > $K/pages_to_scan ) 2>/dev/null && fail "bad pages_to_scan accepted"
[ "$(get pages_to_scan)" = 1234 ] || fail "refused write changed pages_to_scan"
dmesg | grep -q "uksm: sysfs ksm pages_to_scan: refused" || fail "no log line for the refused write"
echo 2 > $K/run || fail "ksm run=2 refused"
[ "$(get pages_sharing)" = 0 ] || fail "ksm run=2 left $(get pages_sharing) pages sharing"

# Back to built-in KSM: its files, running again as before the take-over.
rmmod uksm || fail "rmmod"
[ "$(cat $K/run)" = 1 ] || fail "ksm run is $(cat $K/run) after unload, not 1 as before"
[ "$(cat $K/pages_to_scan)" = 1000 ] || fail "built-in pages_to_scan not back ($(cat $K/pages_to_scan))"
kill $dup; wait $dup 2>/dev/null
: > /tmp/ksm_dup.out
/tests/ksm_dup > /tmp/ksm_dup.out &
dup=$!
i=0; while ! grep -q merged /tmp/ksm_dup.out; do i=$((i+1)); [ $i -lt 600 ] || fail "ksmd does not merge after unload"; sleep 0.1; done
echo "after unload ksmd merged: $(cat /tmp/ksm_dup.out)"
# With ksmd stopped and nothing merged, loading needs no take-over line.
echo 2 > $K/run
kill $dup; wait $dup 2>/dev/null
dmesg -c > /dev/null
modprobe uksm || fail "modprobe with built-in KSM stopped"
dmesg | grep -q "built-in KSM stopped" && fail "take-over line with nothing to take over"
rmmod uksm || fail "rmmod"
[ "$(cat $K/run)" = 0 ] || fail "ksm run is $(cat $K/run) after unload, not 0 as before"
true
