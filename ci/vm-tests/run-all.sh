#!/bin/sh
# Runs every VM test (or those listed in /tests/selected) and prints one
# "UKSM-TEST PASS|FAIL|SKIP name (seconds)" line per test.
cd /tests
tests="modinfo params sysfs_input sysfs_fuzz ksm_view ksmtuned merge_domain run_control governor ladder thrash hash_strength registry_accuracy scan zero_pages merge first_seen optout poison fork_shared thp max_sharing sparse torture latency uksmctl load_cycles ksm_selftests ksm_selftests_uksm"
selected=$(cat /tests/selected 2>/dev/null)
[ -n "$selected" ] && tests=$selected
for t in $tests; do
  echo "=== $t"
  start=$(cut -d. -f1 /proc/uptime)
  timeout 1200 /tests/t_$t.sh
  rc=$?
  secs=$(( $(cut -d. -f1 /proc/uptime) - start ))
  if [ $rc = 0 ]; then r=PASS; elif [ $rc = 77 ]; then r=SKIP; else r=FAIL; fi
  # Whatever a test left behind must not disturb the next one.
  [ -f /tmp/churn.pgid ] && kill -KILL -"$(cat /tmp/churn.pgid)" 2>/dev/null
  rm -f /tmp/churn.pgid
  for p in /proc/[0-9]*; do
    case $(cat $p/comm 2>/dev/null) in
      merge_pages|zero_pages|dup_workload|first_seen|optout|poison|fork_shared|thp_merge|max_sharing|sparse|torture|latency|ksm_dup|zero_bench|sysfs_input|sysfs_fuzz|stat_reader|uksmctl|thrash|hash_strength|domain_probe|ksm_functional_|ksm_tests)
        kill -KILL ${p#/proc/} 2>/dev/null ;;
    esac
  done
  grep -q '^uksm ' /proc/modules && rmmod uksm
  echo "UKSM-TEST $r $t (${secs}s)"
done
