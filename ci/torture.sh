#!/usr/bin/env bash
# The torture test (ci/vm-tests/t_torture.sh) for a given number of minutes, in one VM
# boot on the debug kernel; fails on a difference in any byte or on any kernel splat.
# Usage: ci/torture.sh [MINUTES]   (default 30)
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-30}
ci/setup.sh
ci/kernel.sh
ci/module.sh
script=$(mktemp /tmp/torture-XXXX.sh)
trap 'rm -f "$script"' EXIT
cat > "$script" <<SCRIPT
#!/bin/sh
rmmod uksm
TORTURE_SECONDS=$((minutes * 60)) /tests/t_torture.sh
SCRIPT
out=$(mktemp /tmp/torture-out-XXXX)
trap 'rm -f "$script" "$out"' EXIT
UKSM_VM_TIMEOUT=$((minutes * 60 + 900)) ci/vm.sh run "$script" | tee "$out"
grep -q '^exit status 0$' "$out" || { echo "torture: FAILED"; exit 1; }
echo "torture: passed"
