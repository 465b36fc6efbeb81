#!/usr/bin/env bash
# Builds uksm.ko out of tree against the hooked kernel of $KVER (ci/kernel.sh builds it).
set -euo pipefail
. "$(dirname "$0")/env.sh"
kdir=$UKSM_CACHE/linux-$KVER/tree
[ -f "$kdir/arch/x86/boot/bzImage" ] || { echo "module: no built kernel in $kdir; run ci/kernel.sh" >&2; exit 1; }
make -s -C "$UKSM_ROOT" KDIR="$kdir" "${KMAKE_ARGS[@]}" modules
echo "module: $UKSM_ROOT/uksm.ko ($(stat -c %s "$UKSM_ROOT/uksm.ko") bytes)"
