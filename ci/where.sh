#!/usr/bin/env bash
# Prints where the built kernel image and uksm.ko are, to boot them with your own initramfs.
set -euo pipefail
. "$(dirname "$0")/env.sh"
kdir=$UKSM_CACHE/linux-$KTAG/tree
echo "kernel image:   $kdir/arch/x86/boot/bzImage ($(cat "$kdir/include/config/kernel.release" 2>/dev/null || echo 'not built'))"
echo "kernel tree:    $kdir (KDIR for 'make KDIR=... modules')"
echo "uksm.ko:        $UKSM_CACHE/module-$KTAG/uksm.ko$([ -f "$UKSM_CACHE/module-$KTAG/uksm.ko" ] || echo ' (not built: ci/module.sh)')"
echo "last initramfs: $UKSM_CACHE/vm-$KTAG/initramfs.gz"
