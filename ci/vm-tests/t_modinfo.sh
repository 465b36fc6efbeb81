#!/bin/sh
# uksm is installed like any module (extra/, depmod) and documents every parameter.
. /tests/lib.sh
out=$(modinfo uksm) || fail "modinfo uksm failed"
echo "$out"
echo "$out" | grep -q "extra/uksm.ko" || fail "uksm.ko is not in extra/"
echo "$out" | grep -q "^license: *GPL" || fail "no GPL license"
for p in run sleep_millisecs stats_interval_secs pages_to_scan use_zero_pages; do
  echo "$out" | grep -qE "^parm: *$p:.{10,}" || fail "parameter $p has no description"
done
