#!/bin/sh
# With uksm unloaded the hooked kernel passes the kernel's own KSM selftests.
. /tests/lib.sh
loaded && rmmod uksm
cd /tests/ksm || fail "no selftests"
./ksm_functional_tests || fail "ksm_functional_tests"
for args in "-M -p 10" "-U" "-Z -p 10 -z 0" "-Z -p 10 -z 1"; do
  ./ksm_tests $args || fail "ksm_tests $args"
done
