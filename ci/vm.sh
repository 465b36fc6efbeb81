#!/usr/bin/env bash
# Boots the hooked kernel under QEMU (TCG) with an initramfs holding busybox, uksm.ko
# (installed as users install it: modules_install into extra/, depmod) and the VM tests.
#
#   ci/vm.sh tests [NAME...]     run the VM tests (all, or those named); closing line
#                                "N passed, N failed"
#   ci/vm.sh demo                load the module, run a workload, show what it did
#   ci/vm.sh bench [ROW...]      benchmarks: uksm against built-in KSM (ci/vm-tests/bench.sh)
#   ci/vm.sh run FILE [ARGS...]  run a static binary or script with the module loaded
#
# Exit status is non-zero on a failed test, a timeout, or any kernel splat in the log.
set -euo pipefail
. "$(dirname "$0")/env.sh"

mode=${1:?usage: ci/vm.sh tests|demo|bench|run ...}; shift
kc=$UKSM_CACHE/linux-$KTAG
kdir=$kc/tree
release=$(cat "$kdir/include/config/kernel.release")
vmdir=$UKSM_CACHE/vm-$KTAG
root=$vmdir/root
log=$vmdir/serial.log
timeout_s=${UKSM_VM_TIMEOUT:-5000}

mkdir -p "$vmdir"
exec 9> "$vmdir/lock"
flock -n 9 || { echo "vm: another run is using $vmdir" >&2; exit 1; }
rm -rf "$root"; mkdir -p "$root"/{bin,sbin,etc,proc,sys,dev,tmp,lib/modules,tests,extra}
cp /bin/busybox "$root/bin/busybox"
make -s -C "$UKSM_CACHE/module-$KTAG" KDIR="$kdir" "${KMAKE_ARGS[@]}" modules_install \
  INSTALL_MOD_PATH="$root" INSTALL_MOD_DIR=extra INSTALL_MOD_STRIP= DEPMOD=true >/dev/null
cp "$kdir"/modules.order "$kdir"/modules.builtin "$kdir"/modules.builtin.modinfo "$root/lib/modules/$release/" 2>/dev/null || true
depmod -b "$root" "$release"

# Test programs are static: the initramfs has no libc.
"$UKSM_ROOT/ci/vm-tests/build.sh" "$root/tests"
"$UKSM_ROOT/ci/vm-tests/host-tools.sh" "$root"
cp "$UKSM_ROOT"/ci/vm-tests/*.sh "$root/tests/"
cp "$UKSM_ROOT/ci/vm-init.sh" "$root/init"
chmod +x "$root/init" "$root"/tests/*.sh

case $mode in
  tests|bench) printf '%s\n' "$@" > "$root/tests/selected" ;;
  demo) ;;
  run)
    file=${1:?ci/vm.sh run FILE [ARGS...]}; shift
    cp "$file" "$root/extra/"
    printf '%s\n' "/extra/$(basename "$file")" "$@" > "$root/extra/command" ;;
  *) echo "vm: unknown mode $mode" >&2; exit 2 ;;
esac
echo "$mode" > "$root/mode"

(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$vmdir/initramfs.gz"

echo "vm: booting $release ($mode), log in $log"
start=$(date +%s)
set +e
# no5lvl: with -cpu max the guest runs 5-level paging, and 6.12's identify_cpu() clears
# X86_FEATURE_LA57 for a moment with interrupts on; KASAN then takes an interrupt handler's
# direct-map access for a wild one (a false report at 0.1 s of boot, seen once in CI).
# The merging code does not depend on the paging depth.
timeout --foreground "$timeout_s" qemu-system-x86_64 -accel tcg -cpu max -smp 2 -m "${UKSM_VM_MEM:-3072}" ${UKSM_QEMU_GDB:+-s} \
  -kernel "$kdir/arch/x86/boot/bzImage" -initrd "$vmdir/initramfs.gz" \
  -append "console=ttyS0 loglevel=6 panic=-1 kmemleak=on quiet_after_init no5lvl" \
  -nographic -no-reboot -monitor none -serial stdio -display none </dev/null > "$log" 2>&1
qemu_rc=$?
set -e
tr -d '\r' < "$log" > "$log.txt"; mv "$log.txt" "$log"
elapsed=$(( $(date +%s) - start ))

status=0
if [ "$mode" = tests ]; then
  grep -E '^UKSM-TEST (PASS|FAIL|SKIP)' "$log" || true
fi
grep -q '^UKSM-VM-DONE' "$log" || { echo "vm: the VM did not finish (qemu exit $qemu_rc after ${elapsed}s)"; tail -40 "$log"; status=1; }

# Any kernel splat fails the run, whatever the tests said.
splats=$(grep -nE 'BUG:|WARNING:|Oops|general protection fault|Kernel panic|KASAN|kmemleak: [0-9]+ new suspected|possible circular locking|possible recursive locking|inconsistent lock state|suspicious RCU usage|rcu: INFO|self-detected stall|soft lockup|blocked for more than|UBSAN|list_add corruption|list_del corruption|refcount_t:' "$log" || true)
if [ -n "$splats" ]; then
  echo "vm: kernel splat in the log:"; echo "$splats" | head -20; status=1
fi
taint=$(sed -n 's/^UKSM-TAINT \([0-9]*\)$/\1/p' "$log" | tail -1)
# Allowed taints: O (4096, out-of-tree module) and E (8192, unsigned module).
if [ -n "$taint" ] && [ $(( taint & ~(4096 | 8192) )) -ne 0 ]; then
  echo "vm: kernel tainted ($taint)"; status=1
fi

case $mode in
  tests)
    passed=$(grep -c '^UKSM-TEST PASS' "$log" || true)
    failed=$(grep -c '^UKSM-TEST FAIL' "$log" || true)
    [ "$failed" = 0 ] || status=1
    # What each failed test printed (its last 80 lines), so a CI log shows the cause.
    for t in $(sed -n 's/^UKSM-TEST FAIL \([a-z_0-9]*\) .*/\1/p' "$log" | sort -u); do
      echo "--- output of failed test $t"
      awk -v t="$t" '$0 == "=== " t { on = 1; n = 0 } on { buf[n++ % 80] = $0 }
        on && $0 ~ "^UKSM-TEST FAIL " t " " { for (i = (n > 80 ? n - 80 : 0); i < n; i++) print buf[i % 80]; on = 0 }' "$log"
    done
    [ "$passed" -gt 0 ] || status=1
    echo "vm: ${elapsed}s in the VM"
    echo "$passed passed, $failed failed" ;;
  *)
    sed -n '/^UKSM-OUTPUT-BEGIN/,/^UKSM-OUTPUT-END/p' "$log" | sed '1d;$d'
    echo "vm: ${elapsed}s in the VM" ;;
esac
exit $status
