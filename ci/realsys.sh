#!/usr/bin/env bash
# The real-system test: the packages of ci/package.sh installed with dpkg into minimal
# Debian root file systems (debootstrap, from Debian's mirror), each booted under QEMU
# with the kernel the package installed and an init of its own. There, `modprobe uksm`
# must load the installed module with the options of /etc/modprobe.d/uksm.conf, `modinfo
# uksm` must show the parameters, and `rmmod uksm` must unload it. Two systems:
#  - binary: linux-image and uksm-modules;
#  - dkms: linux-image, linux-headers, linux-rust-headers and uksm-dkms, with Debian's
#    dkms, clang/LLVM and rustc of the versions the kernel was built with; DKMS builds
#    the module when uksm-dkms is installed (in a chroot, before the boot). First, without
#    linux-rust-headers, the build must fail and say what to install.
# Also checks each package's contents (`dpkg-deb --contents`). Not part of ci/test.sh: it
# needs Debian's mirror and about 15 minutes more (docs/testing.md).
#
#   ci/realsys.sh      (KVER and UKSM_KERNEL as for every script)
set -euo pipefail
. "$(dirname "$0")/env.sh"
command -v debootstrap >/dev/null || apt-get install -y --no-install-recommends debootstrap >/dev/null

pkgs=$UKSM_CACHE/packages-$KTAG
rm -rf "$pkgs"
"$UKSM_ROOT/ci/package.sh" --test-kernel "$pkgs"
release=$(cat "$UKSM_CACHE/linux-$KTAG/tree/include/config/kernel.release")
work=$UKSM_CACHE/realsys-$KTAG

fail() { echo "realsys: FAIL: $*"; exit 1; }
contents() { dpkg-deb --contents "$1" | awk '{ print $6 }'; }
deb() { ls "$pkgs"/"$1"_*.deb | grep -v dbg | head -1; }
image=$(deb "linux-image-$release")
headers=$(deb "linux-headers-$release")
rheaders=$(deb "linux-rust-headers-$release")
mods=$(deb "uksm-modules-$release")
dkms=$(deb uksm-dkms)
contents "$image" | grep -qx "./boot/vmlinuz-$release" || fail "no kernel in $image"
contents "$mods" | grep -qx "./lib/modules/$release/updates/uksm.ko" || fail "no uksm.ko in $mods"
[ "$(dpkg-deb --field "$mods" Depends)" = "linux-image-$release, kmod" ] || fail "$mods depends on $(dpkg-deb --field "$mods" Depends)"
contents "$rheaders" | grep -qx "./usr/src/linux-headers-$release/rust/libkernel.rmeta" || fail "no libkernel.rmeta in $rheaders"
contents "$rheaders" | grep -qx "./usr/src/linux-headers-$release/rust/libmacros.so" || fail "no libmacros.so in $rheaders"
[ "$(dpkg-deb --field "$rheaders" Depends)" = "linux-headers-$release" ] || fail "$rheaders depends on $(dpkg-deb --field "$rheaders" Depends)"
contents "$dkms" | grep -q "/usr/src/uksm-.*/dkms.conf$" || fail "no dkms.conf in $dkms"
contents "$dkms" | grep -q "/usr/src/uksm-.*/dkms-make.sh$" || fail "no dkms-make.sh in $dkms"
contents "$dkms" | grep -q "/usr/src/uksm-.*/module/uksm_main.rs$" || fail "no sources in $dkms"
contents "$dkms" | grep -q '\.o$' && fail "objects in $dkms"
dpkg-deb --field "$dkms" Depends | grep -q "rustc-web (= " || fail "$dkms does not depend on the kernel's rustc: $(dpkg-deb --field "$dkms" Depends)"
echo "realsys: package contents as expected: $(cd "$pkgs" && echo *.deb)"

# Minimal Debians (bookworm, minbase, with kmod), made once and kept; the one for DKMS
# with dkms and the toolchain the packages name (bookworm-security has Debian's rustc-web).
base=$UKSM_CACHE/debian-bookworm
if [ ! -f "$base/.done" ]; then
  rm -rf "$base"
  debootstrap --variant=minbase --include=kmod bookworm "$base" http://deb.debian.org/debian >/dev/null
  touch "$base/.done"
fi
# The toolchain uksm-dkms depends on, as `apt-get install` arguments.
dkms_tools=$(dpkg-deb --field "$dkms" Depends | tr -d ' ' | tr ',' '\n' | sed 's/(=\(.*\))$/=\1/' | tr '\n' ' ')
dbase=$UKSM_CACHE/debian-bookworm-dkms
if [ ! -f "$dbase/.done" ]; then
  rm -rf "$dbase"
  cp -a "$base" "$dbase"
  printf 'deb http://deb.debian.org/debian bookworm main\ndeb http://deb.debian.org/debian-security bookworm-security main\n' \
    > "$dbase/etc/apt/sources.list"
  chroot "$dbase" apt-get -q update >/dev/null
  touch "$dbase/.done"
fi
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive chroot "$dbase" apt-get install -y -q --no-install-recommends \
  $dkms_tools libelf1 >/dev/null || fail "apt-get install $dkms_tools"
chroot "$dbase" apt-get clean

# new_root NAME BASE: a fresh copy of BASE at $work/NAME/root, with /proc mounted while
# dpkg runs in it.
new_root() {
  root=$work/$1/root
  rm -rf "$work/$1"; mkdir -p "$work/$1"
  cp -a "$2" "$root"
  rm -f "$root/.done"
}
in_root() { mount -t proc proc "$root/proc"; local rc=0; chroot "$root" "$@" || rc=$?; umount "$root/proc"; return $rc; }

# boot NAME PACKAGE MODULE_PATH [MIB]: boots $work/NAME/root, which has the kernel and
# PACKAGE installed, in MIB of memory (default 3072), and checks modprobe, the modprobe.d
# options, modinfo (the module at MODULE_PATH) and rmmod.
boot() {
  echo "options uksm cpu_governor=low merge_domain=cgroup" > "$root/etc/modprobe.d/uksm.conf"
  cat > "$root/init" <<'EOI'
#!/bin/sh
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs dev /dev
echo REALSYS-BEGIN
dpkg -l 'linux-image-*' 'uksm-*' | grep '^ii'
modprobe uksm && echo "modprobe: ok"
lsmod | grep '^uksm'
echo "cpu_governor: $(cat /sys/kernel/mm/uksm/cpu_governor)"
echo "merge_domain: $(cat /sys/kernel/mm/uksm/merge_domain)"
modinfo uksm
rmmod uksm && echo "rmmod: ok"
[ -d /sys/kernel/mm/uksm ] && echo "uksm directory left behind"
echo REALSYS-END
# Leaving init ends the boot: the kernel panics with panic=-1, so QEMU (-no-reboot) exits.
exit 0
EOI
  chmod +x "$root/init"
  (cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$work/$1/initramfs.gz"
  log=$work/$1/serial.log
  echo "realsys: $1: booting $root/boot/vmlinuz-$release (the installed kernel), log in $log"
  timeout 900 qemu-system-x86_64 -accel tcg -cpu max -smp 2 -m "${4:-3072}" -nographic -no-reboot \
    -kernel "$root/boot/vmlinuz-$release" -initrd "$work/$1/initramfs.gz" \
    -append "console=ttyS0 loglevel=4 panic=-1 no5lvl rdinit=/init" > "$log" 2>&1 || true
  out=$(sed -n '/REALSYS-BEGIN/,/REALSYS-END/p' "$log" | tr -d '\r')
  echo "$out"
  echo "$out" | grep -q "^ii  $2 " || fail "$1: $2 not installed in the booted system"
  echo "$out" | grep -q "^modprobe: ok" || fail "$1: modprobe uksm"
  echo "$out" | grep -q "^filename: *$3$" || fail "$1: modinfo does not show $3"
  echo "$out" | grep -q "^parm: *merge_domain:" || fail "$1: modinfo shows no parameters"
  echo "$out" | grep -q "^cpu_governor: full medium \[low\] quiet" || fail "$1: modprobe.d option cpu_governor not applied"
  echo "$out" | grep -q "^merge_domain: global uid \[cgroup\]" || fail "$1: modprobe.d option merge_domain not applied"
  echo "$out" | grep -q "^rmmod: ok" || fail "$1: rmmod uksm"
  echo "$out" | grep -q "left behind" && fail "$1: rmmod left /sys/kernel/mm/uksm"
  grep -a -E "BUG:|WARNING:|Kernel panic" "$log" | grep -qv "Attempted to kill init" &&
    fail "$1: kernel splat in $log"
  echo "realsys: $1: PASS ($release)"
}

# The binary packages.
new_root binary "$base"
cp "$image" "$mods" "$root/tmp/"
in_root dpkg -i "/tmp/$(basename "$image")" "/tmp/$(basename "$mods")" || fail "binary: dpkg -i"
rm -f "$root"/tmp/*.deb
boot binary "uksm-modules-$release" "/lib/modules/$release/updates/uksm.ko"

# DKMS: without the Rust build products the build fails and says what is missing; with
# them, installing uksm-dkms builds and installs the module.
new_root dkms "$dbase"
cp "$image" "$headers" "$rheaders" "$dkms" "$root/tmp/"
in_root dpkg -i "/tmp/$(basename "$image")" "/tmp/$(basename "$headers")" >/dev/null ||
  fail "dkms: dpkg -i of the kernel and its headers"
in_root dpkg -i "/tmp/$(basename "$dkms")" > "$work/dkms/without-rust-headers.log" 2>&1 ||
  fail "dkms: dpkg -i $(basename "$dkms")"
make_log=$(cat "$root/var/lib/dkms/uksm/"*/build/make.log)
echo "$make_log" | grep -q "uksm: no Rust build products in .*(install linux-rust-headers-\*)" ||
  fail "dkms: the build without linux-rust-headers did not say what is missing (make.log: $make_log)"
echo "realsys: dkms: without linux-rust-headers: $(echo "$make_log" | grep '^uksm:')"
in_root dpkg -i "/tmp/$(basename "$rheaders")" >/dev/null || fail "dkms: dpkg -i $(basename "$rheaders")"
t0=$(date +%s)
in_root dpkg-reconfigure uksm-dkms > "$work/dkms/install.log" 2>&1 ||
  fail "dkms: the DKMS build ($work/dkms/install.log)"
ko=/lib/modules/$release/updates/dkms/uksm.ko
[ -f "$root$ko" ] || fail "dkms: no $ko after the build ($(tail -5 "$work/dkms/install.log"))"
echo "realsys: dkms: built and installed $ko in $(($(date +%s) - t0)) s ($(in_root dkms status | tr '\n' ' '))"
rm -f "$root"/tmp/*.deb
# Booted as DKMS left it, compilers and headers included: a larger initramfs.
boot dkms uksm-dkms "$ko" 6144
echo "realsys: PASS ($release: binary and dkms)"
