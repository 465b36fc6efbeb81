#!/usr/bin/env bash
# Builds installable Debian packages of the hooked kernel and of uksm (docs/admin.md).
#
#   ci/package.sh [--config FILE | --test-kernel] [OUTDIR]
#
# Kernel (`make bindeb-pkg`: linux-image-*, linux-headers-*, linux-libc-dev):
#   --config FILE   a kernel configured from FILE (default: the running kernel's
#                   /boot/config-$(uname -r)) with KSM, the hooks and Rust switched on,
#                   built in its own tree, $UKSM_CACHE/pkg-$KVER/tree (a distribution
#                   config takes hours on a small machine);
#   --test-kernel   the kernel ci/kernel.sh built: the test kernel, or with
#                   UKSM_KERNEL=bench the benchmark kernel (what the real-system test boots).
# With it, for a kernel with Rust:
#   linux-rust-headers-RELEASE  what building a Rust module needs beyond linux-headers
#                          (whose scripts/package/install-extmod-build leaves Rust out):
#                          the kernel's crates' metadata (rust/*.rmeta), its procedural
#                          macros (rust/libmacros.so) and the sources of rust/, under
#                          /usr/src/linux-headers-RELEASE/rust/.
# Module, for that kernel:
#   uksm-modules-RELEASE   uksm.ko in /lib/modules/RELEASE/updates/, depmod on install
#                          and removal;
#   uksm-dkms              the module's sources under /usr/src/uksm-VERSION with a
#                          dkms.conf. DKMS builds it for a kernel whose linux-headers and
#                          linux-rust-headers are installed, with the clang/LLVM and the
#                          rustc the kernel was built with (Rust has no stable ABI:
#                          dkms-make.sh checks both and says what is missing); the package
#                          depends on this machine's versions of them.
# OUTDIR defaults to $UKSM_CACHE/packages-$KVER; the packages' names are printed.
set -euo pipefail
. "$(dirname "$0")/env.sh"

# make bindeb-pkg checks the build dependencies of its Debian packaging.
dpkg -s debhelper >/dev/null 2>&1 || apt-get install -y --no-install-recommends debhelper >/dev/null

mode=config
config=/boot/config-$(uname -r)
case ${1:-} in
  --test-kernel) mode=test; shift ;;
  --config) config=${2:?--config FILE}; shift 2 ;;
esac
out=${1:-$UKSM_CACHE/packages-$KVER}
version=$(cd "$UKSM_ROOT" && git describe --always --dirty 2>/dev/null || echo 0)
pkgversion=0.1+$(echo "$version" | tr -c 'a-zA-Z0-9.\n' '.')
mkdir -p "$out"
out=$(cd "$out" && pwd)

if [ $mode = test ]; then
  "$UKSM_ROOT/ci/kernel.sh"
  kdir=$UKSM_CACHE/linux-$KTAG/tree
else
  [ -f "$config" ] || { echo "package: no kernel config $config (give --config FILE)" >&2; exit 1; }
  . "$UKSM_ROOT/versions/$KVER/source"
  pkc=$UKSM_CACHE/pkg-$KVER
  kdir=$pkc/tree
  if [ ! -f "$pkc/.patched" ]; then
    [ -f "$UKSM_CACHE/linux-$KVER/pristine/.unpacked" ] || "$UKSM_ROOT/ci/kernel.sh"
    rm -rf "$pkc"; mkdir -p "$pkc"
    cp -a "$UKSM_CACHE/linux-$KVER/pristine" "$kdir"
    patch -s -p1 -d "$kdir" < "$UKSM_ROOT/versions/$KVER/hooks.patch"
    touch "$pkc/.patched"
  fi
  cp "$config" "$kdir/.config"
  "$kdir/scripts/config" --file "$kdir/.config" -e KSM -e KSM_HOOKS -e RUST \
    -d DEBUG_INFO_BTF -d MODULE_SIG_ALL --set-str SYSTEM_TRUSTED_KEYS "" \
    --set-str SYSTEM_REVOCATION_KEYS ""
  make -s -C "$kdir" "${KMAKE_ARGS[@]}" olddefconfig
  grep -q '^CONFIG_KSM_HOOKS=y' "$kdir/.config" ||
    { echo "package: CONFIG_KSM_HOOKS did not stick (RUST unavailable with this config?)" >&2; exit 1; }
fi

release=$(make -s -C "$kdir" "${KMAKE_ARGS[@]}" kernelrelease)
echo "package: kernel $release"
rm -f "$kdir"/../linux-*"$release"*.deb "$kdir"/../linux-libc-dev_*.deb
make -s -C "$kdir" "${KMAKE_ARGS[@]}" -j"$(nproc)" bindeb-pkg KDEB_PKGVERSION="$pkgversion" >/dev/null
mv "$kdir"/../linux-*.deb "$out/"
rm -f "$kdir"/../linux-upstream_*

# The module, built against that kernel.
if [ $mode = test ]; then
  "$UKSM_ROOT/ci/module.sh"
  ko=$UKSM_CACHE/module-$KTAG/uksm.ko
else
  make -s -C "$kdir" "${KMAKE_ARGS[@]}" -j"$(nproc)" modules_prepare
  mdir=$UKSM_CACHE/pkg-$KVER/module
  rm -rf "$mdir"; mkdir -p "$mdir"
  cp -a "$UKSM_ROOT/Kbuild" "$UKSM_ROOT/Makefile" "$UKSM_ROOT/module" "$mdir/"
  rm -rf "$mdir/module/logic/target"
  make -s -C "$mdir" KDIR="$kdir" "${KMAKE_ARGS[@]}" modules
  ko=$mdir/uksm.ko
fi

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

# linux-rust-headers-RELEASE
kconf() { sed -n "s/^$1=//p" "$kdir/include/config/auto.conf" | tr -d '"'; }
if [ "$(kconf CONFIG_RUST)" = y ]; then
  r=$stage/rust-headers
  rdir=$r/usr/src/linux-headers-$release/rust
  mkdir -p "$r/DEBIAN" "$rdir"
  cp "$kdir"/rust/*.rmeta "$kdir"/rust/libmacros.so "$rdir/"
  (cd "$kdir" && find rust -name '*.rs' -print0 | tar -c --null -T - -f -) |
    tar -x -C "$r/usr/src/linux-headers-$release"
  cat > "$r/DEBIAN/control" <<EOC
Package: linux-rust-headers-$release
Version: $pkgversion
Architecture: amd64
Maintainer: uksm <uksm@localhost>
Depends: linux-headers-$release
Section: kernel
Priority: optional
Description: Rust build products of Linux $release, for Rust modules built out of tree
 The metadata of the kernel's Rust crates, its procedural macros and the sources of its
 rust/ directory, which linux-headers-$release leaves out. Modules built against them
 must use the rustc the kernel was built with: $(kconf CONFIG_RUSTC_VERSION_TEXT).
EOC
  dpkg-deb --root-owner-group -Zxz --build "$r" "$out/linux-rust-headers-${release}_${pkgversion}_amd64.deb" >/dev/null
fi

# uksm-modules-RELEASE
m=$stage/modules
mkdir -p "$m/DEBIAN" "$m/lib/modules/$release/updates" "$m/usr/share/doc/uksm-modules-$release"
install -m 644 "$ko" "$m/lib/modules/$release/updates/uksm.ko"
install -m 644 "$UKSM_ROOT/docs/admin.md" "$m/usr/share/doc/uksm-modules-$release/admin.md"
cat > "$m/DEBIAN/control" <<EOF
Package: uksm-modules-$release
Version: $pkgversion
Architecture: amd64
Maintainer: uksm <uksm@localhost>
Depends: linux-image-$release, kmod
Section: kernel
Priority: optional
Description: UKSM, same-page merging of all anonymous memory, for Linux $release
 uksm.ko scans the anonymous memory of all processes and merges identical pages into
 one copy-on-write page. Load it with "modprobe uksm"; unload with "rmmod uksm".
 Tunables: /sys/kernel/mm/uksm/ and modprobe options (modinfo uksm).
EOF
for script in postinst postrm; do
  printf '#!/bin/sh\nset -e\ndepmod -a %s || true\n' "$release" > "$m/DEBIAN/$script"
  chmod 755 "$m/DEBIAN/$script"
done
dpkg-deb --root-owner-group -Zxz --build "$m" "$out/uksm-modules-${release}_${pkgversion}_amd64.deb" >/dev/null

# uksm-dkms
d=$stage/dkms
src=$d/usr/src/uksm-$pkgversion
mkdir -p "$d/DEBIAN" "$src"
cp -a "$UKSM_ROOT/Kbuild" "$UKSM_ROOT/Makefile" "$UKSM_ROOT/module" "$src/"
rm -rf "$src/module/logic/target"
find "$src" \( -name '*.o' -o -name '*.ko' -o -name '*.mod*' -o -name '.*.cmd' \) -delete
cat > "$src/dkms-make.sh" <<'EOM'
#!/bin/sh
# DKMS's build of uksm.ko for the kernel whose headers are at $1: with the LLVM and the
# rustc that kernel was built with, or a message that says what is missing.
set -e
kdir=$1
conf=$kdir/include/config/auto.conf
kconf() { sed -n "s/^$1=//p" "$conf" | tr -d '"'; }
[ -f "$conf" ] || { echo "uksm: no kernel headers at $kdir (install linux-headers-*)" >&2; exit 1; }
[ "$(kconf CONFIG_KSM_HOOKS)" = y ] ||
  { echo "uksm: the kernel at $kdir has no CONFIG_KSM_HOOKS (it needs the hook patch)" >&2; exit 1; }
[ -f "$kdir/rust/libkernel.rmeta" ] ||
  { echo "uksm: no Rust build products in $kdir/rust (install linux-rust-headers-*)" >&2; exit 1; }
major=$(($(kconf CONFIG_CLANG_VERSION) / 10000))
llvm=/usr/lib/llvm-$major/bin
[ -x "$llvm/clang" ] && [ -x "$llvm/ld.lld" ] ||
  { echo "uksm: the kernel was built with clang $major: install clang-$major, lld-$major and llvm-$major" >&2; exit 1; }
want=$(kconf CONFIG_RUSTC_VERSION_TEXT)
have=$(rustc --version 2>/dev/null || echo "no rustc")
[ "$have" = "$want" ] ||
  { echo "uksm: the kernel was built with $want; the rustc here is: $have" >&2; exit 1; }
exec make KDIR="$kdir" LLVM="$llvm/" RUSTC=rustc modules
EOM
chmod 755 "$src/dkms-make.sh"
cat > "$src/dkms.conf" <<EOC
PACKAGE_NAME="uksm"
PACKAGE_VERSION="$pkgversion"
BUILT_MODULE_NAME[0]="uksm"
DEST_MODULE_LOCATION[0]="/updates"
MAKE[0]="sh ./dkms-make.sh \${kernel_source_dir}"
CLEAN="make KDIR=\${kernel_source_dir} clean"
AUTOINSTALL="yes"
EOC
llvm_major=$(($(kconf CONFIG_CLANG_VERSION) / 10000))
rustc_pkg=$(dpkg -S "$(readlink -f "$RUSTC")" 2>/dev/null | cut -d: -f1 | head -1)
depends="dkms, make, clang-$llvm_major, lld-$llvm_major, llvm-$llvm_major"
[ -z "$rustc_pkg" ] ||
  depends="$depends, $rustc_pkg (= $(dpkg-query -W -f='${Version}' "$rustc_pkg"))"
cat > "$d/DEBIAN/control" <<EOF
Package: uksm-dkms
Version: $pkgversion
Architecture: all
Maintainer: uksm <uksm@localhost>
Depends: $depends
Section: kernel
Priority: optional
Description: UKSM, same-page merging of all anonymous memory (DKMS source)
 The source of uksm.ko for DKMS. The kernel must carry the ksm_hooks patch
 (CONFIG_KSM_HOOKS), and its linux-headers and linux-rust-headers packages must be
 installed, with the clang and rustc it was built with (Rust modules have no stable ABI).
EOF
cat > "$d/DEBIAN/postinst" <<EOF
#!/bin/sh
# Added, and built for every installed kernel with headers (dkms autoinstall builds for
# the running kernel only); a kernel it cannot build for says why and is skipped.
set -e
dkms add -m uksm -v $pkgversion || true
for build in /lib/modules/*/build; do
  [ -d "\$build" ] || continue
  k=\${build#/lib/modules/}; k=\${k%/build}
  dkms install -m uksm -v $pkgversion -k "\$k" || echo "uksm-dkms: not built for \$k (see above)"
done
EOF
printf '#!/bin/sh\nset -e\ndkms remove -m uksm -v %s --all || true\n' "$pkgversion" > "$d/DEBIAN/prerm"
chmod 755 "$d/DEBIAN/postinst" "$d/DEBIAN/prerm"
dpkg-deb --root-owner-group -Zxz --build "$d" "$out/uksm-dkms_${pkgversion}_all.deb" >/dev/null

echo "package: in $out:"
ls -1 "$out"
