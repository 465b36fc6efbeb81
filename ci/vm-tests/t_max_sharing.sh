#!/bin/sh
# 100 000 copies of one page: merged onto frames of at most max_page_sharing mappings each
# (KSM's default, 256), pages_sharing close to 100 000, and a migration of one of those
# folios completes (see max_sharing.c).
. /tests/lib.sh
load_all sleep_millisecs=0 pages_to_scan=20000 || fail "modprobe"
[ "$(get max_page_sharing)" = 256 ] || fail "max_page_sharing default is $(get max_page_sharing)"
max_sharing 100000 256; rc=$?
echo "pages_shared=$(get pages_shared) pages_sharing=$(get pages_sharing)"
[ "$(get pages_sharing)" -ge 97000 ] || rc=1
rmmod uksm || fail "rmmod"
[ $rc = 0 ] || fail "max_page_sharing checks failed"
