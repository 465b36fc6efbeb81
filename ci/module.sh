#!/usr/bin/env bash
# Builds uksm.ko out of tree against the hooked kernel of $KVER (ci/kernel.sh builds it;
# UKSM_KERNEL selects the test or the benchmark kernel). Each kernel builds from its own
# copy of the sources, $UKSM_CACHE/module-$KTAG/, so builds and VM runs for different
# kernels never share objects.
set -euo pipefail
. "$(dirname "$0")/env.sh"
kdir=$UKSM_CACHE/linux-$KTAG/tree
bdir=$UKSM_CACHE/module-$KTAG
[ -f "$kdir/arch/x86/boot/bzImage" ] || { echo "module: no built kernel in $kdir; run ci/kernel.sh" >&2; exit 1; }
mkdir -p "$bdir"
# Sources only, copied when their content changed. make decides by time, so when the
# sources differ from those the objects were built from (an edit, another checkout, an
# earlier commit: older times than the objects), every copied source is touched first.
sources_sum=$(cd "$UKSM_ROOT" && find Kbuild Makefile module -path module/logic/target -prune -o \
  -type f \( -name '*.rs' -o -name '*.c' -o -name '*.h' -o -name 'Kbuild' -o -name 'Makefile' \) -print |
  LC_ALL=C sort | xargs sha256sum | sha256sum | cut -d' ' -f1)
rsync -rlpgoD --checksum --delete --exclude=/module/logic/target --exclude='*.o' --exclude='*.ko' \
  --exclude='*.mod' --exclude='*.mod.c' --exclude='.*.cmd' --exclude='*.d' --exclude='*.rmeta' \
  --filter='P *.o' --filter='P *.ko' --filter='P *.mod' --filter='P *.mod.c' --filter='P .*.cmd' \
  --filter='P *.d' --filter='P *.rmeta' --filter='P Module.symvers' --filter='P modules.order' \
  "$UKSM_ROOT/Kbuild" "$UKSM_ROOT/Makefile" "$UKSM_ROOT/module" "$bdir/"
if [ "$(cat "$bdir/.sources.sum" 2>/dev/null)" != "$sources_sum" ]; then
  find "$bdir/Kbuild" "$bdir/Makefile" "$bdir/module" -type f \( -name '*.rs' -o -name '*.c' -o -name '*.h' \
    -o -name Kbuild -o -name Makefile \) -exec touch {} +
fi
make -s -C "$bdir" KDIR="$kdir" "${KMAKE_ARGS[@]}" modules
echo "$sources_sum" > "$bdir/.sources.sum"
echo "module: $bdir/uksm.ko ($(stat -c %s "$bdir/uksm.ko") bytes, for $(cat "$kdir/include/config/kernel.release"))"
