#!/bin/sh
# An unprivileged user reading every statistic in a loop does not slow other processes'
# mmap and page faults much more than reading another sysfs file does (stat_reader.c).
. /tests/lib.sh
load_all || fail "modprobe"
/tests/stat_reader || fail "stat_reader"
