#!/usr/bin/env bash
# Installs every prerequisite of the build, the VM runner and the tests on a fresh Debian 12
# machine. Idempotent: when everything is present it only checks and returns.
set -euo pipefail
. "$(dirname "$0")/env.sh"

packages=(
  rustc-web rust-web-src
  clang-19 lld-19 llvm-19 libclang-19-dev
  flex bison bc libelf-dev libssl-dev cpio kmod xz-utils patch rsync
  qemu-system-x86 busybox-static
  linux-source-6.12
  debian-archive-keyring
  libnuma-dev libc6-dev gcc make
  bash procps
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! "$BINDGEN" --version 2>/dev/null | grep -q "$BINDGEN_VERSION"; then
  echo "setup: installing bindgen-cli $BINDGEN_VERSION from crates.io"
  cargo install --locked --quiet bindgen-cli --version "$BINDGEN_VERSION" --root "$UKSM_CACHE/tools"
fi

# Kernel sources that Debian 12 does not carry (versions/*/source with another DEB_SUITE):
# downloaded by apt from that suite through a temporary sources list, checked against the
# suite's signed index, unpacked into the cache. The system's sources stay as they are.
fetch_source() {
  local vfile=$1 DEB_PACKAGE DEB_SUITE TARBALL
  . "$vfile"
  [ "$DEB_SUITE" != bookworm ] && [ ! -f "$TARBALL" ] || return 0
  local tmp; tmp=$(mktemp -d)
  mkdir -p "$tmp/lists/partial" "$tmp/archives/partial"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $DEB_SUITE main" > "$tmp/sources.list"
  local opts=(-o Dir::Etc::SourceList="$tmp/sources.list" -o Dir::Etc::SourceParts=/dev/null
              -o Dir::State::Lists="$tmp/lists" -o Dir::Cache="$tmp" -o APT::Get::List-Cleanup=0
              -o APT::Sandbox::User=root)  # the private directory is not _apt's to write
  echo "setup: downloading $DEB_PACKAGE from $DEB_SUITE"
  apt-get "${opts[@]}" -qq update
  (cd "$tmp" && apt-get "${opts[@]}" -qq download "$DEB_PACKAGE")
  local dir=${TARBALL%/usr/src/*}
  rm -rf "$dir"; mkdir -p "$dir"
  dpkg-deb -x "$tmp"/"$DEB_PACKAGE"_*.deb "$dir"
  rm -rf "$tmp"
  [ -f "$TARBALL" ] || { echo "setup: $DEB_PACKAGE has no $TARBALL" >&2; exit 1; }
}
for vfile in "$UKSM_ROOT"/versions/*/source; do fetch_source "$vfile"; done

# Debian's ksmtuned for t_ksmtuned: unpacked into the cache, not installed (it would run
# as a service on this machine).
if [ ! -f "$UKSM_CACHE/debs/ksmtuned/usr/sbin/ksmtuned" ]; then
  echo "setup: downloading ksmtuned"
  tmp=$(mktemp -d)
  dl() { (cd "$tmp" && apt-get -qq -o APT::Sandbox::User=root download ksmtuned); }
  dl || { apt-get update -qq && dl; }
  rm -rf "$UKSM_CACHE/debs/ksmtuned"; mkdir -p "$UKSM_CACHE/debs"
  dpkg-deb -x "$tmp"/ksmtuned_*.deb "$UKSM_CACHE/debs/ksmtuned"
  rm -rf "$tmp"
fi

"$RUSTC" --version | grep -q '^rustc 1\.' || { echo "setup: $RUSTC is not usable" >&2; exit 1; }
echo "setup: ok ($("$RUSTC" --version), bindgen $("$BINDGEN" --version | awk '{print $2}'), clang $(clang-19 --version | head -1 | awk '{print $4}'))"
