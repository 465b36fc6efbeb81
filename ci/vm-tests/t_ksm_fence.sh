#!/bin/sh
# uksm and built-in ksmd exclude each other.
. /tests/lib.sh
K=/sys/kernel/mm/ksm
echo 0 > $K/sleep_millisecs; echo 1000 > $K/pages_to_scan
echo 1 > $K/run
modprobe uksm 2>/dev/null && fail "uksm loaded while ksmd runs"
dmesg | grep -q "uksm: cannot register" || fail "no message on refused load"
/tests/ksm_dup > /tmp/ksm_dup.out &
dup=$!
i=0; while ! grep -q merged /tmp/ksm_dup.out; do i=$((i+1)); [ $i -lt 600 ] || fail "ksmd did not merge"; sleep 0.1; done
echo 0 > $K/run
echo "ksmd stopped with $(cat $K/pages_sharing) pages sharing"
modprobe uksm 2>/dev/null && fail "uksm loaded while built-in KSM has merged pages"
echo 2 > $K/run
kill $dup; wait $dup
modprobe uksm || fail "uksm refused after run=2"
( echo 1 > $K/run ) 2>/dev/null && fail "ksmd started while uksm is loaded"
# The finished run=2 is reset by registration (hooks/README.md): otherwise every swap-in
# of a page uksm merged would copy it.
[ "$(cat $K/run)" = 0 ] || fail "ksm run is $(cat $K/run) while uksm is loaded, not 0"
echo 0 > $K/run || fail "ksm run=0 refused"
rmmod uksm || fail "rmmod"
echo 1 > $K/run || fail "ksmd cannot start after uksm is unloaded"
echo 2 > $K/run
