#!/usr/bin/env bash
# Builds the hooked test kernel for one version (default: $KVER from ci/env.sh), or with
# UKSM_KERNEL=bench the benchmark kernel (the test config without its debug options).
#
# Layout under $UKSM_CACHE/linux-<kver>/ (the benchmark kernel: linux-<kver>-bench/, which
# has no pristine/ of its own):
#   pristine/     the unpacked Debian source, never modified
#   tree/         pristine + versions/<kver>/hooks.patch, built in place (KDIR for uksm.ko)
#   applied.patch the patch that tree/ currently carries
#   built.key     hash of kernel version, patch, config fragment and toolchain of the last
#                 successful build; when it matches, nothing is rebuilt
# A changed patch only rewrites the files whose patched content changed, so the rebuild is
# incremental.
set -euo pipefail
. "$(dirname "$0")/env.sh"

vdir=$UKSM_ROOT/versions/$KVER
. "$vdir/source"
src=$UKSM_CACHE/linux-$KVER
kc=$UKSM_CACHE/linux-$KTAG
mkdir -p "$src" "$kc"
start=$(date +%s)
# The config fragment: versions/<kver>/config, for the benchmark kernel with the lines that
# ci/bench-kernel.config sets replaced by its own.
frag=$vdir/config
if [ "$KTAG" != "$KVER" ]; then
  frag=$kc/config.fragment
  bench=$UKSM_ROOT/ci/bench-kernel.config
  opts=$(sed -n 's/^\(CONFIG_[A-Z0-9_]*\)=.*/\1/p' "$bench" | paste -sd'|')
  { grep -vE "^($opts)=" "$vdir/config"; grep -v '^#' "$bench"; } > "$frag"
fi

if [ ! -f "$src/pristine/.unpacked" ]; then
  [ -f "$TARBALL" ] || { echo "kernel: $TARBALL missing (package $DEB_PACKAGE); run ci/setup.sh" >&2; exit 1; }
  echo "kernel: unpacking $TARBALL"
  rm -rf "$src/pristine" "$src/unpack" "$src/tree" "$src/applied.patch" "$src/built.key"
  [ "$kc" = "$src" ] || rm -rf "$kc/tree" "$kc/applied.patch" "$kc/built.key"
  mkdir -p "$src/unpack"
  tar -xf "$TARBALL" -C "$src/unpack"
  mv "$src/unpack"/* "$src/pristine"
  rmdir "$src/unpack"
  touch "$src/pristine/.unpacked"
fi
if [ ! -d "$kc/tree" ]; then
  cp -a "$src/pristine" "$kc/tree"
  : > "$kc/applied.patch"
fi

# Bring tree/ to pristine + hooks.patch, touching only files whose content changes.
patch_files() { sed -n 's#^+++ b/\([^[:space:]]*\).*#\1#p' "$1"; }
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mapfile -t files < <( { patch_files "$kc/applied.patch"; patch_files "$vdir/hooks.patch"; } | sort -u)
for f in "${files[@]}"; do
  if [ -f "$src/pristine/$f" ]; then mkdir -p "$stage/$(dirname "$f")"; cp "$src/pristine/$f" "$stage/$f"; fi
done
patch -s -p1 -d "$stage" --no-backup-if-mismatch < "$vdir/hooks.patch"
for f in "${files[@]}"; do
  if [ -f "$stage/$f" ]; then
    if ! cmp -s "$stage/$f" "$kc/tree/$f"; then
      mkdir -p "$kc/tree/$(dirname "$f")"; cp "$stage/$f" "$kc/tree/$f"; echo "kernel: updated $f"
    fi
  else
    rm -f "$kc/tree/$f"
  fi
done
cp "$vdir/hooks.patch" "$kc/applied.patch"

key=$( { echo "$KVER"; cat "$vdir/source" "$vdir/hooks.patch" "$frag"; "$RUSTC" --version; clang --version | head -1; "$BINDGEN" --version; } | sha256sum | cut -c1-16)
if [ -f "$kc/built.key" ] && [ "$(cat "$kc/built.key")" = "$key" ] && [ -f "$kc/tree/arch/x86/boot/bzImage" ]; then
  echo "kernel: $KTAG up to date ($key)"
  exit 0
fi

cd "$kc/tree"
make -s "${KMAKE_ARGS[@]}" tinyconfig >/dev/null
scripts/kconfig/merge_config.sh -m -O . .config "$frag" >/dev/null
make -s "${KMAKE_ARGS[@]}" olddefconfig >/dev/null
# Kconfig drops what it cannot satisfy without a word (CONFIG_RUST without a usable
# toolchain, for one): every line of the fragment must have survived.
bad=0
while IFS= read -r line; do
  case "$line" in ''|\#*) continue ;; esac
  opt=${line%%=*}; val=${line#*=}
  if [ "$val" = n ]; then
    grep -q "^$opt=" .config && { echo "kernel: $opt should be off" >&2; bad=1; }
  else
    grep -qx "$line" .config || { echo "kernel: $line did not stick (got: $(grep "^$opt=\|# $opt is" .config || echo unset))" >&2; bad=1; }
  fi
done < "$frag"
[ $bad = 0 ] || { [ "${RUST_CHECK:-}" ] && make "${KMAKE_ARGS[@]}" rustavailable; exit 1; }

echo "kernel: building $KTAG in $kc/tree"
make -s -j"$(nproc)" "${KMAKE_ARGS[@]}" bzImage modules modules_prepare
make -s "${KMAKE_ARGS[@]}" headers_install INSTALL_HDR_PATH="$kc/headers" >/dev/null
echo "$key" > "$kc/built.key"
echo "kernel: $KTAG built in $(( $(date +%s) - start )) s ($(make -s "${KMAKE_ARGS[@]}" kernelrelease))"
