#!/usr/bin/env bash
# Builds uksm.ko out of tree against the hooked kernel of $KVER (ci/kernel.sh builds it).
# Each kernel version builds from its own copy of the sources, $UKSM_CACHE/module-$KVER/,
# so builds and VM runs for different versions never share objects.
set -euo pipefail
. "$(dirname "$0")/env.sh"
kdir=$UKSM_CACHE/linux-$KVER/tree
bdir=$UKSM_CACHE/module-$KVER
[ -f "$kdir/arch/x86/boot/bzImage" ] || { echo "module: no built kernel in $kdir; run ci/kernel.sh" >&2; exit 1; }
mkdir -p "$bdir"
# Sources only (timestamps kept, so the build stays incremental).
rsync -a --delete --exclude=/module/logic/target --exclude='*.o' --exclude='*.ko' \
  --exclude='*.mod' --exclude='*.mod.c' --exclude='.*.cmd' --exclude='*.d' --exclude='*.rmeta' \
  --filter='P *.o' --filter='P *.ko' --filter='P *.mod' --filter='P *.mod.c' --filter='P .*.cmd' \
  --filter='P *.d' --filter='P *.rmeta' --filter='P Module.symvers' --filter='P modules.order' \
  "$UKSM_ROOT/Kbuild" "$UKSM_ROOT/Makefile" "$UKSM_ROOT/module" "$bdir/"
make -s -C "$bdir" KDIR="$kdir" "${KMAKE_ARGS[@]}" modules
echo "module: $bdir/uksm.ko ($(stat -c %s "$bdir/uksm.ko") bytes, for $(cat "$kdir/include/config/kernel.release"))"
