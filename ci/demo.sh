#!/usr/bin/env bash
# The main job: build the hooked kernel and uksm.ko, boot the VM, load the module, run a
# workload with duplicate memory and show what uksm did (meminfo and its kernel log lines).
set -euo pipefail
cd "$(dirname "$0")/.."
ci/setup.sh
ci/kernel.sh
ci/module.sh
ci/vm.sh demo
