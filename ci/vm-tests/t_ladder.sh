#!/bin/sh
# The sampling ladder under the default governor: 128 MiB of distinct pages in two
# processes sit on the lowest rung; then a process writes 32 MiB whose pages are 90 %
# copies of 16 patterns. Its VMA climbs the ladder (rung_vmas) and its duplicates are
# merged (AnonPages falls by 95 % of them) while the distinct memory stays on rung 0.
# The two lowest rungs get ten times their default CPU share (cpu_ratios 200 400 MAX/4
# MAX/1): a sample costs the debug kernel under TCG 40-150 us, about a hundred times
# what it costs on hardware, and at the default 0.2 % of a CPU rung 0 samples a few
# dozen pages a second here. t_governor measures the defaults' CPU use.
. /tests/lib.sh
anon_kb() { awk '/^AnonPages:/ { print $2 }' /proc/meminfo; }
modprobe uksm || fail "modprobe"
echo "200 400 MAX/4 MAX/1" > $U/cpu_ratios || fail "cpu_ratios refused"
dup_workload 2 64 0 3600 > /tmp/lad0.out & w0=$!
wait_line /tmp/lad0.out filled $w0 300
sleep 20
echo "distinct memory after 20 s: rung_vmas $(get rung_vmas)"
t0=$(cut -d. -f1 /proc/uptime)
dup_workload 1 32 90 3600 > /tmp/lad1.out & w1=$!
wait_line /tmp/lad1.out filled $w1 300
dups=$(sed -n 's/^filled: [0-9]* pages, \([0-9]*\) duplicates.*/\1/p' /tmp/lad1.out)
goal=$((dups * 4 * 95 / 100))
# AnonPages rose by the new workload's 32 MiB; merging takes it back down.
top=$(anon_kb)
climbed=0
while [ $((top - $(anon_kb))) -lt $goal ]; do
  [ $(( $(cut -d. -f1 /proc/uptime) - t0 )) -le 600 ] || fail "95 % of $dups duplicates not merged in 600 s ($((top - $(anon_kb))) kB of $goal freed; rung_vmas $(get rung_vmas); pages_sharing $(get pages_sharing), merges_broken $(get merges_broken), merges_collapsed $(get merges_collapsed), thrash_holds $(get thrash_holds), full_scans $(get full_scans))"
  r=$(get rung_vmas)
  if [ $climbed = 0 ] && [ "${r#* }" != "0 0 0" ]; then
    climbed=1; echo "climbing: rung_vmas $r after $(( $(cut -d. -f1 /proc/uptime) - t0 )) s"
  fi
  sleep 0.1
done
t1=$(cut -d. -f1 /proc/uptime)
echo "95 % of $dups duplicates merged $((t1 - t0)) s after the workload started; rung_vmas $(get rung_vmas); pages_sharing $(get pages_sharing)"
[ $climbed = 1 ] || fail "no VMA was seen above rung 0"
kill -TERM $w0 $w1 2>/dev/null; wait $w0 $w1
rmmod uksm || fail "rmmod"
