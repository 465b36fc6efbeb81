#!/bin/sh
# Benchmarks (not tests), uksm against built-in KSM in one boot, on the same workloads:
#  - dup: 4 processes x 64 MiB (256 MiB), 50% of the pages holding one of 16 patterns
#    shared by all (dup_workload); the gauge is AnonPages, which falls by one page per
#    duplicate merged whichever implementation merges it;
#  - thp: the same as dup in MADV_HUGEPAGE memory (THPs, which both split to merge);
#  - zero: 4 processes x 32 MiB of zero pages; the gauge is the kernel's ksm_zero_pages.
# Printed per run: seconds until 95% of the duplicates are merged, and CPU seconds of the
# scanner thread (uksmd or ksmd) over that time; then ratios against uksm.
. /tests/lib.sh
K=/sys/kernel/mm/ksm
ticks() { awk '{ print $14 + $15 }' /proc/$1/stat; }   # utime + stime, 1/100 s
now_cs() { awk '{ printf "%d", $1 * 100 }' /proc/uptime; }
pid_of() { for p in /proc/[0-9]*; do [ "$(cat $p/comm 2>/dev/null)" = "$1" ] && echo ${p#/proc/}; done; }
anon_kb() { awk '/^AnonPages:/ { print $2 }' /proc/meminfo; }

# run NAME START STOP THREAD: START switches the scanner on; appends "NAME secs cpu_cs".
run() {
  case $WORKLOAD in
    dup|thp) DUP_WORKLOAD_THP=$([ $WORKLOAD = thp ] && echo 1) DUP_WORKLOAD_PRCTL=1 \
           dup_workload 4 64 50 100000 > /tmp/wl.out & wl=$!
         while ! grep -q filled /tmp/wl.out; do sleep 0.2; done
         dups=$(sed -n 's/^filled: [0-9]* pages, \([0-9]*\) duplicates.*/\1/p' /tmp/wl.out)
         sleep 1; base=$(anon_kb); goal=$((dups * 4 * 95 / 100))
         [ $WORKLOAD = dup ] || grep AnonHugePages /proc/meminfo
         progress() { echo $((base - $(anon_kb))); } ;;
    zero) zero_bench 4 32 > /tmp/wl.out & wl=$!
          while ! grep -q filled /tmp/wl.out; do sleep 0.2; done
          base=$(cat $K/ksm_zero_pages); goal=$((4 * 32 * 256 * 95 / 100))
          progress() { echo $(( $(cat $K/ksm_zero_pages) - base )); } ;;
  esac
  eval "$2"
  thread=$(pid_of "$4"); c0=$(ticks $thread); t0=$(now_cs)
  while [ "$(progress)" -lt $goal ]; do
    [ $(( $(now_cs) - t0 )) -lt 90000 ] || { echo "$1: not done in 900 s"; break; }
    sleep 0.1
  done
  t1=$(now_cs); c1=$(ticks $thread)
  eval "$3"
  kill $wl; wait $wl 2>/dev/null
  kill -9 $(pid_of zero_bench) $(pid_of dup_workload) 2>/dev/null; sleep 1
  echo "$1 $((t1 - t0)) $((c1 - c0))" >> /tmp/bench.txt
  awk -v n="$1" -v t=$((t1 - t0)) -v c=$((c1 - c0)) 'BEGIN { printf "%s: %.2f s, scanner CPU %.2f s\n", n, t / 100, c / 100 }'
}

table() {
  awk 'NR == 1 { ut = $2; uc = $3 }
       { printf "%-12s %8.2f s  %8.2f CPU s   time ratio vs uksm %6.2f   CPU ratio vs uksm %6.2f\n",
         $1, $2 / 100, $3 / 100, $2 / (ut ? ut : 1), ($3 ? $3 : 1) / (uc ? uc : 1) }' /tmp/bench.txt
}

echo 1 > $K/use_zero_pages
for WORKLOAD in dup thp zero; do
  : > /tmp/bench.txt
  case $WORKLOAD in
    dup) echo "=== dup: 4 processes x 64 MiB, 50% duplicates of 16 patterns; goal: AnonPages down by 95% of the duplicates" ;;
    thp) echo "=== thp: as dup, in MADV_HUGEPAGE memory; AnonHugePages before: see the line after filling" ;;
    zero) echo "=== zero: 4 processes x 32 MiB of zero pages; goal: 95% of them merged (ksm_zero_pages)" ;;
  esac
  run uksm "modprobe uksm" "rmmod uksm" uksmd
  run ksm-default "echo 100 > $K/pages_to_scan; echo 20 > $K/sleep_millisecs; echo 1 > $K/run" "echo 2 > $K/run" ksmd
  run ksm-tuned "echo 1000 > $K/pages_to_scan; echo 20 > $K/sleep_millisecs; echo 1 > $K/run" "echo 2 > $K/run" ksmd
  table
done
echo "settings: uksm defaults (pages_to_scan=1000, sleep_millisecs=100); ksm-default pages_to_scan=100 sleep_millisecs=20 (KSM's defaults); ksm-tuned pages_to_scan=1000 sleep_millisecs=20; use_zero_pages=1 for both"
