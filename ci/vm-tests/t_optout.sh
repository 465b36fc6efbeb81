#!/bin/sh
# Opting out: MADV_UNMERGEABLE ranges and processes that turn merging off with
# prctl(PR_SET_MEMORY_MERGE, 0) are unmerged at once and never merged again; MADV_MERGEABLE
# opts back in; mremap()ed merged pages are merged again at their new place with a working
# rmap (see optout.c).
. /tests/lib.sh
load_all sleep_millisecs=0 pages_to_scan=5000 || fail "modprobe"
optout; rc=$?
rmmod uksm || fail "rmmod"
[ $rc = 0 ] || fail "optout checks failed"
