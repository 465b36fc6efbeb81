#!/usr/bin/env bash
# Prints the size of a version's hook patch: lines added and removed in existing kernel
# files (what breaks at every release), and the lines of the files it creates.
# Usage: ci/patch-size.sh [KVER]   (default: $KVER from ci/env.sh)
set -euo pipefail
. "$(dirname "$0")/env.sh"
patch=$UKSM_ROOT/versions/${1:-$KVER}/hooks.patch
awk '
  /^--- / { new = ($2 == "/dev/null"); next }
  /^\+\+\+ / { file = substr($2, 3); next }
  /^@@ -0,0 / { new = 1; next }
  /^@@/ { next }
  /^\+/ { if (new) created[file]++; else { add[file]++; adds++ } next }
  /^-/ { if (!new) { del[file]++; dels++ } next }
  END {
    for (f in add) files[f] = 1
    for (f in del) files[f] = 1
    n = 0
    for (f in files) { printf "  %-40s +%d -%d\n", f, add[f], del[f]; n++ }
    for (f in created) printf "  %-40s new, %d lines\n", f, created[f]
    printf "existing files: %d changed, %d lines (+%d -%d)\n", n, adds + dels, adds, dels
  }' "$patch" | sort
