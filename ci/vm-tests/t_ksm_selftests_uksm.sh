#!/bin/sh
# The kernel's KSM functional selftests with uksm loaded, driving it through
# /sys/kernel/mm/ksm/ (run=1 and two full scans to merge, run=2 to unmerge). No test may
# fail, and at most one may be missing: 6.12's test_prctl_fork, whose child reads
# /proc/self/ksm_merging_pages through a descriptor the parent opened before the fork,
# so it counts the parent's merged pages, of which the parent may have none; it then
# exits with a status the selftest reports as nothing at all (later selftests, such as
# 7.3's, open the file in the process that reads it, and pass). docs/status.md.
. /tests/lib.sh
load_all || fail "modprobe"
cd /tests/ksm || fail "no selftests"
./ksm_functional_tests > /tmp/kft.out 2>&1
echo "ksm_functional_tests: exit status $?"
# The output is a file, so buffered: a forked child that exits prints the parent's
# buffer again. The parent's report is the last.
cat /tmp/kft.out
planned=$(sed -n 's/^1\.\.\([0-9]*\)$/\1/p' /tmp/kft.out | head -n 1)
last=$(grep '^# Totals' /tmp/kft.out | tail -n 1)
passed=$(echo "$last" | sed -n 's/.* pass:\([0-9]*\) .*/\1/p')
failed=$(echo "$last" | sed -n 's/.* fail:\([0-9]*\) .*/\1/p')
[ -n "$planned" ] && [ -n "$passed" ] || fail "no TAP plan or totals"
grep -q '^not ok' /tmp/kft.out && fail "a selftest failed with uksm loaded"
[ "$failed" = 0 ] || fail "$failed selftests failed with uksm loaded"
[ "$passed" -ge $((planned - 1)) ] || fail "$passed of $planned selftests passed with uksm loaded"
echo "with uksm loaded: $passed of $planned selftests passed"
