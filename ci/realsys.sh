#!/usr/bin/env bash
# The real-system test: the packages of ci/package.sh installed with dpkg into a minimal
# Debian root file system (debootstrap, from Debian's mirror), booted under QEMU with the
# kernel the package installed and an init of its own. There, `modprobe uksm` must load the
# installed module with the options of /etc/modprobe.d/uksm.conf, `modinfo uksm` must show
# the parameters, and `rmmod uksm` must unload it. Also checks each package's contents
# (`dpkg-deb --contents`). Not part of ci/test.sh: it needs Debian's mirror and about 10
# minutes more (docs/testing.md).
#
#   ci/realsys.sh      (KVER as for every script)
set -euo pipefail
. "$(dirname "$0")/env.sh"
command -v debootstrap >/dev/null || apt-get install -y --no-install-recommends debootstrap >/dev/null

pkgs=$UKSM_CACHE/packages-$KVER
rm -rf "$pkgs"
"$UKSM_ROOT/ci/package.sh" --test-kernel "$pkgs"
release=$(cat "$UKSM_CACHE/linux-$KVER/tree/include/config/kernel.release")

fail() { echo "realsys: FAIL: $*"; exit 1; }
contents() { dpkg-deb --contents "$1" | awk '{ print $6 }'; }
image=$(ls "$pkgs"/linux-image-"$release"_*.deb | grep -v dbg | head -1)
mods=$(ls "$pkgs"/uksm-modules-"$release"_*.deb)
dkms=$(ls "$pkgs"/uksm-dkms_*.deb)
contents "$image" | grep -qx "./boot/vmlinuz-$release" || fail "no kernel in $image"
contents "$mods" | grep -qx "./lib/modules/$release/updates/uksm.ko" || fail "no uksm.ko in $mods"
[ "$(dpkg-deb --field "$mods" Depends)" = "linux-image-$release, kmod" ] || fail "$mods depends on $(dpkg-deb --field "$mods" Depends)"
contents "$dkms" | grep -q "/usr/src/uksm-.*/dkms.conf$" || fail "no dkms.conf in $dkms"
contents "$dkms" | grep -q "/usr/src/uksm-.*/module/uksm_main.rs$" || fail "no sources in $dkms"
contents "$dkms" | grep -q '\.o$' && fail "objects in $dkms"
echo "realsys: package contents as expected: $(basename "$image"), $(basename "$mods"), $(basename "$dkms")"

# A minimal Debian (bookworm, minbase, with kmod), made once and kept.
base=$UKSM_CACHE/debian-bookworm
if [ ! -f "$base/.done" ]; then
  rm -rf "$base"
  debootstrap --variant=minbase --include=kmod bookworm "$base" http://deb.debian.org/debian >/dev/null
  touch "$base/.done"
fi
root=$UKSM_CACHE/realsys-$KVER/root
rm -rf "$root"; mkdir -p "$(dirname "$root")"
cp -a "$base" "$root"
cp "$image" "$mods" "$root/tmp/"
chroot "$root" dpkg -i "/tmp/$(basename "$image")" "/tmp/$(basename "$mods")" ||
  fail "dpkg -i"
rm -f "$root"/tmp/*.deb
echo "options uksm cpu_governor=low merge_domain=cgroup" > "$root/etc/modprobe.d/uksm.conf"
cat > "$root/init" <<'EOF'
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
EOF
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$UKSM_CACHE/realsys-$KVER/initramfs.gz"
log=$UKSM_CACHE/realsys-$KVER/serial.log
echo "realsys: booting $root/boot/vmlinuz-$release (the installed kernel), log in $log"
timeout 900 qemu-system-x86_64 -accel tcg -cpu max -smp 2 -m 3072 -nographic -no-reboot \
  -kernel "$root/boot/vmlinuz-$release" -initrd "$UKSM_CACHE/realsys-$KVER/initramfs.gz" \
  -append "console=ttyS0 loglevel=4 panic=-1 no5lvl rdinit=/init" > "$log" 2>&1 || true
sed -n '/REALSYS-BEGIN/,/REALSYS-END/p' "$log" | tr -d '\r'
out=$(sed -n '/REALSYS-BEGIN/,/REALSYS-END/p' "$log" | tr -d '\r')
echo "$out" | grep -q "^ii  uksm-modules-$release" || fail "package not installed in the booted system"
echo "$out" | grep -q "^modprobe: ok" || fail "modprobe uksm"
echo "$out" | grep -q "^filename: */lib/modules/$release/updates/uksm.ko" || fail "modinfo does not show the installed module"
echo "$out" | grep -q "^parm: *merge_domain:" || fail "modinfo shows no parameters"
echo "$out" | grep -q "^cpu_governor: full medium \[low\] quiet" || fail "modprobe.d option cpu_governor not applied"
echo "$out" | grep -q "^merge_domain: global uid \[cgroup\]" || fail "modprobe.d option merge_domain not applied"
echo "$out" | grep -q "^rmmod: ok" || fail "rmmod uksm"
echo "$out" | grep -q "left behind" && fail "rmmod left /sys/kernel/mm/uksm"
grep -a -E "BUG:|WARNING:|Kernel panic" "$log" | grep -qv "Attempted to kill init" &&
  fail "kernel splat in $log"
echo "realsys: PASS ($release)"
