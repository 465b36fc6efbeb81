#!/bin/sh
# Every attribute refuses bad input with EINVAL and keeps its value.
. /tests/lib.sh
modprobe uksm || fail "modprobe failed"
/tests/sysfs_input || fail "sysfs_input"
