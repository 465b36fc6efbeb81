#!/usr/bin/env bash
# What porting a version's hook patch to another kernel source tree involves.
#
#   ci/port-check.sh SRC_DIR [KVER]      (KVER: the patch to try, default $KVER, 6.12)
#
# Reports, without changing SRC_DIR:
#  1. every hunk of versions/KVER/hooks.patch applied to a copy of SRC_DIR's files: exact,
#     with an offset, with fuzz (to be read: it may apply at the wrong place), or rejected;
#  2. whether the flag bits the patch takes (VM_UNMERGEABLE, MMF_VM_MERGE_NONE) are free;
#  3. the kernel functions and macros the patch's new files and the module's C glue call,
#     whose declaration changed between KVER's tree and SRC_DIR, or that SRC_DIR lacks;
#  4. the constants they name (VM_*, MMF_*, the vm_flags bits named in INIT_VM_FLAG(),
#     ...) that KVER's tree defines and SRC_DIR does not.
# Exit status 0 when all hunks apply exactly or with an offset, the bits are free and no
# function changed; 1 otherwise (a port is needed, and this says where).
set -euo pipefail
. "$(dirname "$0")/env.sh"
src=$(cd "${1:?usage: ci/port-check.sh SRC_DIR [KVER]}" && pwd)
ver=${2:-$KVER}
patch=$UKSM_ROOT/versions/$ver/hooks.patch
base=$UKSM_CACHE/linux-$ver/pristine
[ -d "$base" ] || { echo "port-check: no $base; run KVER=$ver ci/kernel.sh first" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0
echo "== port-check: versions/$ver/hooks.patch against $src ($(make -s -C "$src" kernelversion 2>/dev/null || echo '?'))"

# 1. Hunks.
sed -n 's#^+++ b/\([^[:space:]]*\).*#\1#p' "$patch" | while read -r f; do
  if [ -f "$src/$f" ]; then mkdir -p "$work/tree/$(dirname "$f")"; cp "$src/$f" "$work/tree/$f"; fi
done
mkdir -p "$work/tree"
(cd "$work/tree" && patch -p1 --no-backup-if-mismatch -r "$work/rejects" < "$patch" > "$work/patch.out" 2>&1) || true
awk '
  /^patching file / { file = $3 }
  /^Hunk #[0-9]+ / {
    n = $2; sub("#", "", n)
    if (/FAILED/) kind = "REJECTED"; else if (/fuzz/) kind = "fuzz"; else if (/offset/) kind = "offset"; else kind = "exact"
    count[kind]++; if (kind != "exact") printf "  %-9s %s hunk %s: %s\n", kind, file, n, $0
  }
  /^can.t find file|No file to patch/ { print "  MISSING   " $0; count["REJECTED"]++ }
  END { printf "hunks: %d of %d exact, %d offset, %d fuzz, %d rejected\n",
        total - count["offset"] - count["fuzz"] - count["REJECTED"], total,
        count["offset"] + 0, count["fuzz"] + 0, count["REJECTED"] + 0 }
' total="$(grep -c '^@@' "$patch")" "$work/patch.out" | tee "$work/hunks"
grep -Eq '[1-9][0-9]* (fuzz|rejected)' <(tail -1 "$work/hunks") && status=1

# 2. Flag bits.
vm_bit=$(sed -n 's/^+#define VM_UNMERGEABLE[[:space:]]*BIT(\([0-9]*\)).*/\1/p' "$patch")
mmf_bit=$(sed -n 's/^+#define MMF_VM_MERGE_NONE[[:space:]]*\([0-9]*\).*/\1/p' "$patch")
vm_users=$(grep -rnE "(BIT|_BITUL)\($vm_bit\)|_BIT[[:space:]]+$vm_bit\b|_BIT[[:space:]]*=[[:space:]]*$vm_bit\b|DECLARE_VMA_BIT\([A-Z_0-9]+,[[:space:]]*$vm_bit\)" \
  "$src/include/linux/mm.h" "$src/include/linux/mm_types.h" 2>/dev/null || true)
mmf_users=$(grep -rnE "^#define MMF_[A-Z_0-9]+[[:space:]]+$mmf_bit\b" \
  "$src/include/linux/sched/coredump.h" "$src/include/linux/mm_types.h" 2>/dev/null || true)
if [ -n "$vm_users" ]; then echo "flag: vm_flags bit $vm_bit (VM_UNMERGEABLE) is taken:"; echo "$vm_users" | sed 's/^/  /'; status=1
else echo "flag: vm_flags bit $vm_bit (VM_UNMERGEABLE) is free"; fi
if [ -n "$mmf_users" ]; then echo "flag: mm flags bit $mmf_bit (MMF_VM_MERGE_NONE) is taken:"; echo "$mmf_users" | sed 's/^/  /'; status=1
else echo "flag: mm flags bit $mmf_bit (MMF_VM_MERGE_NONE) is free"; fi

# 3. Functions the new files and the glue call.
sed -n '/^+++ b\/mm\/ksm_hooks.c/,/^+++ /p;/^+++ b\/include\/linux\/ksm_hooks.h/,/^+++ /p' "$patch" |
  sed -n 's/^+//p' > "$work/new.c"
cat "$work/new.c" "$UKSM_ROOT/module/glue/glue.c" |
  sed 's#/\*.*\*/##g; s#//.*##' |
  grep -oE '\b[a-z_][a-z0-9_]*\(' | tr -d '(' | sort -u |
  { grep -vE '^(if|for|while|switch|return|sizeof|static_assert|defined|__?[a-z]*_attribute|uksm_[a-z0-9_]*|_*ksm_hooks_[a-z0-9_]*|module_param_cb|container_of|typeof)$' || true; } > "$work/used"
decl() {  # the first declaration or definition of function $2 in tree $1, one line, with
          # whitespace, `extern`, `const` and lock annotations normalized away
  grep -rhE -A3 "^[a-z][a-z0-9_ *]*[ *]$2\(" "$1/include/linux" "$1/mm" "$1/kernel" \
    --include='*.h' --include='*.c' 2>/dev/null |
    awk 'BEGIN { d = "" } { d = d " " $0; if (d ~ /\)/) { print d; exit } }' |
    sed -E 's/\{.*//; s/[[:space:]]+/ /g; s/\<(extern|const) //g; s/ __(acquires|releases)\([^)]*\)//g;
            s/^ //; s/ ;$/;/; s/;$//; s/ $//' || true
}
changed=0 missing=0
while read -r fn; do
  old=$(decl "$base" "$fn"); new=$(decl "$src" "$fn")
  [ -n "$old" ] || continue        # not a kernel function (a local of the glue, a macro arg)
  if [ -z "$new" ]; then echo "function: $fn: not found in $src"; missing=$((missing + 1))
  elif [ "$old" != "$new" ]; then
    echo "function: $fn changed"; echo "    $ver: $old"; echo "    new: $new"; changed=$((changed + 1))
  fi
done < "$work/used"
echo "functions: $(wc -l < "$work/used") names called by mm/ksm_hooks.c, ksm_hooks.h and the glue; $changed changed, $missing not found"
[ $changed = 0 ] && [ $missing = 0 ] || status=1

# 4. Constants: macros, enum entries and vm_flags bit names.
defined() {  # every #define name, enum entry and DECLARE_VMA_BIT name of tree $1
  grep -rhoE '^[[:space:]]*#[[:space:]]*define[[:space:]]+[A-Z][A-Z0-9_]+|^[[:space:]]+[A-Z][A-Z0-9_]+[[:space:]]*(=[^=]|,)|DECLARE_VMA_BIT(_ALIAS)?\([A-Z0-9_]+' \
    "$1/include/linux" "$1/mm" "$1/arch/x86/include" --include='*.h' --include='*.c' 2>/dev/null |
    sed -E 's/^[[:space:]]*#[[:space:]]*define[[:space:]]+//; s/^[[:space:]]+//; s/[[:space:]]*(=.*|,)$//;
            s/^DECLARE_VMA_BIT(_ALIAS)?\(/VMA_/; /^VMA_/s/$/_BIT/' | sort -u
}
defined "$base" > "$work/def.base"; defined "$src" > "$work/def.src"
cat "$work/new.c" "$UKSM_ROOT/module/glue/glue.c" | sed 's#/\*.*\*/##g; s#//.*##' |
  { grep -oE '\b[A-Z][A-Z0-9_]{2,}\b|INIT_VM_FLAG\([A-Z0-9_]+\)' || true; } |
  sed -E 's/^INIT_VM_FLAG\(([A-Z0-9_]+)\)$/VMA_\1_BIT/' | sort -u > "$work/consts"
lost=0
while read -r c; do
  if grep -qx "$c" "$work/def.base" && ! grep -qx "$c" "$work/def.src"; then
    echo "constant: $c: not defined in $src"; lost=$((lost + 1))
  fi
done < "$work/consts"
echo "constants: $(wc -l < "$work/consts") names used; $lost not defined in $src"
[ $lost = 0 ] || status=1
exit $status
