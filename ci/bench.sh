#!/usr/bin/env bash
# Benchmarks (not tests): in one VM boot, uksm and built-in KSM on the same workloads, the
# rows of the adaptive scanner's targets (ci/vm-tests/bench.sh describes each): static,
# thp, zero, dynamic, idle, late, scale. All rows take about an hour and a half under TCG;
# name rows to run only those.
#
#   ci/bench.sh [ROW...]          KVER selects the kernel (default 6.12)
#   UKSM_KERNEL=bench ci/bench.sh   the same on the kernel without debug options
#                                   (ci/bench-kernel.config), as distributions build it
#
# The VM gets 8 GiB (the scale row maps 4 GiB), and 3 hours.
set -euo pipefail
cd "$(dirname "$0")/.."
ci/setup.sh
ci/kernel.sh
ci/module.sh
UKSM_VM_MEM=${UKSM_VM_MEM:-8192} UKSM_VM_TIMEOUT=${UKSM_VM_TIMEOUT:-10800} ci/vm.sh bench "$@"
