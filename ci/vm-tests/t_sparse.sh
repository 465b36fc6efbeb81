#!/bin/sh
# A 1 TiB MAP_NORESERVE reservation with 512 pages touched: scan passes and run=2 cost what
# the present pages cost (see sparse.c).
. /tests/lib.sh
load_all || fail "modprobe"
sparse 1024; rc=$?
rmmod uksm || fail "rmmod"
[ $rc = 0 ] || fail "sparse checks failed"
