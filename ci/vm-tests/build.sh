#!/usr/bin/env bash
# Builds the static test programs of the VM into $1: ours, and the kernel's KSM selftests
# (tools/testing/selftests/mm/ksm_functional_tests.c and ksm_tests.c) from the hooked tree.
set -euo pipefail
. "$(dirname "$0")/../env.sh"
out=${1:?usage: build.sh OUTDIR}
src=$(dirname "$0")
kc=$UKSM_CACHE/linux-$KTAG
mkdir -p "$out/ksm"
cflags=(-static -O2 -Wall -Wextra -Werror -Wno-unused-parameter)
gcc "${cflags[@]}" -pthread -o "$out/vma_churn" "$src/vma_churn.c"
for p in sysfs_input sysfs_fuzz stat_reader ksm_dup domain_probe dup_workload zero_pages zero_bench merge_pages optout poison first_seen fork_shared thp_merge max_sharing sparse torture latency thrash hash_strength; do
  gcc "${cflags[@]}" -o "$out/$p" "$src/$p.c"
done
st=$kc/tree/tools/testing/selftests/mm
ksm_cflags=(-static -O2 -w -U_FORTIFY_SOURCE -I "$kc/tree" -I "$st/.." -isystem "$kc/tree/tools/include/uapi" -isystem "$kc/headers/include")
# 6.12 calls the THP helpers thp_settings.c, 7.3 hugepage_settings.c.
for settings in "$st/thp_settings.c" "$st/hugepage_settings.c"; do [ -f "$settings" ] && break; done
gcc "${ksm_cflags[@]}" -o "$out/ksm/ksm_functional_tests" "$st/ksm_functional_tests.c" "$st/vm_util.c" "$settings"
gcc "${ksm_cflags[@]}" -o "$out/ksm/ksm_tests" "$st/ksm_tests.c" "$st/vm_util.c" "$settings" -lnuma
# uksmctl, static, as a user would copy it to a host.
( cd "$src/../.." && RUSTFLAGS="-C target-feature=+crt-static" cargo build --quiet --release \
    -p uksmctl --target x86_64-unknown-linux-gnu )
cp "$src/../../target/x86_64-unknown-linux-gnu/release/uksmctl" "$out/uksmctl"
