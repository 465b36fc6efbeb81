#!/bin/sh
# merge_domain against the deduplication side channel (domain_probe.c): pages of processes
# of different users (uid) or memory cgroups (cgroup) are not merged with each other, and
# a timing probe by one of them tells nothing; under global they are merged and the probe
# tells. Changing the policy at run time unmerges what the new one forbids.
. /tests/lib.sh
mkdir -p /sys/fs/cgroup
grep -q " /sys/fs/cgroup cgroup2 " /proc/mounts || mount -t cgroup2 none /sys/fs/cgroup || fail "mount cgroup2"
echo +memory > /sys/fs/cgroup/cgroup.subtree_control || fail "memory controller"
mkdir -p /sys/fs/cgroup/uksm-v /sys/fs/cgroup/uksm-a
load_all || fail "modprobe"
[ "$(get merge_domain)" = "global [uid] cgroup" ] || fail "default merge_domain: $(get merge_domain)"
run() {
  echo "--- merge_domain=$1, processes of different $2"
  echo "$1" > $U/merge_domain || fail "merge_domain=$1 refused"
  /tests/domain_probe "$@" || fail "domain_probe $*"
}
run uid users
run cgroup cgroups
# Each policy separates only what it names.
run uid cgroups
run cgroup users
# From global to uid while pages of two users are merged with each other.
run global users then uid
dmesg | grep "uksm: merge_domain"
rmmod uksm
modprobe uksm merge_domain=global || fail "merge_domain=global as parameter"
[ "$(get merge_domain)" = "[global] uid cgroup" ] || fail "parameter not applied: $(get merge_domain)"
rmmod uksm
modprobe uksm merge_domain=users 2>/dev/null && fail "bad merge_domain parameter accepted"
rmdir /sys/fs/cgroup/uksm-v /sys/fs/cgroup/uksm-a
true
