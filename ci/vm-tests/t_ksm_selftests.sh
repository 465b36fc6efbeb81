#!/bin/sh
# With uksm unloaded the hooked kernel passes the kernel's own KSM selftests.
. /tests/lib.sh
loaded && rmmod uksm
cd /tests/ksm || fail "no selftests"
t0=$(date +%s)
./ksm_functional_tests || fail "ksm_functional_tests"
echo "ksm_functional_tests: $(( $(date +%s) - t0 )) s"
for args in "-M -p 10" "-U" "-Z -p 10 -z 0" "-Z -p 10 -z 1"; do
  t0=$(date +%s)
  ./ksm_tests $args || fail "ksm_tests $args"
  echo "ksm_tests $args: $(( $(date +%s) - t0 )) s"
done
