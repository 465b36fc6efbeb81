#!/usr/bin/env bash
# Benchmark (not a test): in one VM boot, the same zero-page workload merged by uksm and by
# built-in KSM (defaults, and pages_to_scan=1000): seconds to merge 95% of the zero pages
# and scanner-thread CPU seconds, with ratios against uksm.
set -euo pipefail
cd "$(dirname "$0")/.."
ci/setup.sh
ci/kernel.sh
ci/module.sh
ci/vm.sh bench
