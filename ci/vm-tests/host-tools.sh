#!/usr/bin/env bash
# Copies into the VM's root file system ($1) the programs that tests run as a Debian host
# has them, with the shared libraries they load: bash and procps's pgrep and ps, and
# Debian's ksmtuned (unpacked from its package by ci/setup.sh, not installed on the host).
set -euo pipefail
. "$(dirname "$0")/../env.sh"
root=${1:?usage: host-tools.sh ROOT}
mkdir -p "$root/usr/bin" "$root/usr/sbin"
for b in /usr/bin/bash /usr/bin/pgrep /usr/bin/ps; do
  cp "$b" "$root/usr/bin/"
  # "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" and "/lib64/ld-linux-x86-64.so.2 (0x...)"
  ldd "$b" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | while read -r lib; do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
done
cp "$UKSM_CACHE/debs/ksmtuned/usr/sbin/ksmtuned" "$root/usr/sbin/"
