#!/bin/sh
# The kernel's own KSM selftests: with uksm unloaded the hooked kernel passes them all;
# with uksm loaded, through /sys/kernel/mm/ksm/ (which then answers for uksm).
. /tests/lib.sh
loaded && rmmod uksm
cd /tests/ksm || fail "no selftests"
./ksm_functional_tests || fail "ksm_functional_tests"
for args in "-M -p 10" "-U" "-Z -p 10 -z 0" "-Z -p 10 -z 1"; do
  ./ksm_tests $args || fail "ksm_tests $args"
done
echo "--- with uksm loaded"
load_all || fail "modprobe"
./ksm_functional_tests > /tmp/kft.out 2>&1; echo "ksm_functional_tests: exit $?"
cat /tmp/kft.out
for args in "-M -p 10" "-U" "-Z -p 10 -z 0" "-Z -p 10 -z 1"; do
  ./ksm_tests $args; echo "ksm_tests $args: exit $?"
done
true
