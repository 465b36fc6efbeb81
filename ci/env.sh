# Shared settings of the ci/ scripts (sourced, not run).
# UKSM_CACHE holds everything built outside the repository: tools, kernel trees, initramfs.
UKSM_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
UKSM_CACHE=${UKSM_CACHE:-$HOME/.cache/uksm}
KVER=${KVER:-6.12}
BINDGEN_VERSION=0.73.2
BINDGEN=$UKSM_CACHE/tools/bin/bindgen
# Debian's rustc (rustc-web) matches the core sources in rust-web-src; rustup's rustc,
# which comes first in PATH, has no rust-src. Every kernel and module make gets these.
RUSTC=/usr/bin/rustc
RUSTDOC=/usr/bin/rustdoc
export PATH=/usr/lib/llvm-19/bin:$PATH
KMAKE_ARGS=(LLVM=1 RUSTC="$RUSTC" HOSTRUSTC="$RUSTC" RUSTDOC="$RUSTDOC" BINDGEN="$BINDGEN")
mkdir -p "$UKSM_CACHE"
# UKSM_KERNEL=bench: the same kernel without the debug options (KASAN, lockdep, DEBUG_VM,
# KFENCE, kmemleak; ci/bench-kernel.config), as distributions build it, for benchmarks.
# It is built, cached and booted beside the test kernel: linux-<kver>-bench/ and so on.
case ${UKSM_KERNEL:-test} in
  test) KTAG=$KVER ;;
  bench) KTAG=$KVER-bench ;;
  *) echo "UKSM_KERNEL=$UKSM_KERNEL: test or bench" >&2; exit 2 ;;
esac
