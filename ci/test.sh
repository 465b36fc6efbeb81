#!/usr/bin/env bash
# Runs every test on a fresh or prepared machine: set-up, host unit tests, the hooked
# kernel and uksm.ko builds, then the VM tests (closing line "N passed, N failed").
set -euo pipefail
cd "$(dirname "$0")/.."
ci/setup.sh
echo "== host tests (cargo test)"
cargo test --workspace --quiet
ci/check-glue.sh
echo "== kernel"
ci/kernel.sh
echo "== uksm.ko"
ci/module.sh
echo "== VM tests"
ci/vm.sh tests "$@"
