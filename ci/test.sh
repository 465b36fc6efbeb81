#!/usr/bin/env bash
# Runs every test on a fresh or prepared machine: set-up, host unit tests, the hooked
# kernel and uksm.ko builds, then the VM tests, on every supported kernel (versions/*), or
# on $KVER alone when it is set. The VM suites of the kernels run side by side, one VM
# each; each ends with "N passed, N failed", and so does the whole run.
#
#   ci/test.sh [NAME...]            all kernels, all VM tests (or those named)
#   KVER=7.3 ci/test.sh [NAME...]   one kernel
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${KVER:-}" ]; then kvers=("$KVER"); else mapfile -t kvers < <(ls versions | sort -V); fi
ci/setup.sh
echo "== host tests (cargo test)"
cargo test --workspace --quiet
ci/check-glue.sh
# Builds one after another (each uses every core), then the VMs in parallel.
for v in "${kvers[@]}"; do
  echo "== kernel $v"
  KVER=$v ci/kernel.sh
  echo "== uksm.ko for $v"
  KVER=$v ci/module.sh
done
. ci/env.sh
logs=$UKSM_CACHE/test-logs
mkdir -p "$logs"
declare -A pid
for v in "${kvers[@]}"; do
  echo "== VM tests on $v (log: $logs/vm-$v.log)"
  KVER=$v ci/vm.sh tests "$@" > "$logs/vm-$v.log" 2>&1 &
  pid[$v]=$!
done
status=0 passed=0 failed=0
for v in "${kvers[@]}"; do
  rc=0; wait "${pid[$v]}" || rc=$?
  echo "== VM tests on $v: exit $rc"
  sed "s/^/[$v] /" "$logs/vm-$v.log"
  [ $rc = 0 ] || status=1
  # ci/vm.sh ends with "N passed, N failed" (absent if the VM did not finish).
  counts=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$logs/vm-$v.log" | tail -1)
  if [ -n "$counts" ]; then
    passed=$((passed + ${counts% *})); failed=$((failed + ${counts#* }))
  else
    echo "== VM tests on $v: no result line"; status=1
  fi
done
echo "all kernels (${kvers[*]}): $passed passed, $failed failed"
exit $status
