#!/usr/bin/env bash
# Benchmarks (not tests): in one VM boot, the same workloads merged by uksm and by built-in
# KSM (defaults, and pages_to_scan=1000): 256 MiB in 4 processes with 50% duplicate pages,
# and 128 MiB of zero pages. Seconds to merge 95% of the duplicates and scanner-thread CPU
# seconds, with ratios against uksm (ci/vm-tests/bench.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
ci/setup.sh
ci/kernel.sh
ci/module.sh
ci/vm.sh bench
