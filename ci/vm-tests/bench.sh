#!/bin/sh
# Zero-page merging, uksm against built-in KSM in one boot: seconds until 95% of a
# workload's zero pages are merged, and CPU seconds of the scanner thread over that time.
# Both implementations count in the kernel's ksm_zero_pages, so one gauge serves both.
. /tests/lib.sh
PROCS=4; MIB=32
pages=$((PROCS * MIB * 256)); goal=$((pages * 95 / 100))
K=/sys/kernel/mm/ksm
ticks() { awk '{ print $14 + $15 }' /proc/$1/stat; }   # utime + stime, 1/100 s
now_cs() { awk '{ printf "%d", $1 * 100 }' /proc/uptime; }
pid_of() { for p in /proc/[0-9]*; do [ "$(cat $p/comm 2>/dev/null)" = "$1" ] && echo ${p#/proc/}; done; }

# run NAME START STOP: START switches the scanner on; prints "NAME secs cpu_secs".
run() {
  zero_bench $PROCS $MIB > /tmp/zb.out & zb=$!
  while ! grep -q filled /tmp/zb.out; do sleep 0.1; done
  base=$(cat $K/ksm_zero_pages)
  eval "$2"
  thread=$(pid_of "$4"); c0=$(ticks $thread); t0=$(now_cs)
  while [ $(( $(cat $K/ksm_zero_pages) - base )) -lt $goal ]; do
    [ $(( $(now_cs) - t0 )) -lt 60000 ] || { echo "$1: not done in 600 s"; break; }
    sleep 0.1
  done
  t1=$(now_cs); c1=$(ticks $thread)
  eval "$3"
  kill $zb; wait $zb 2>/dev/null
  kill -9 $(pid_of zero_bench) 2>/dev/null; sleep 1
  echo "$1 $((t1 - t0)) $((c1 - c0))" >> /tmp/bench.txt
  awk -v n="$1" -v t=$((t1 - t0)) -v c=$((c1 - c0)) 'BEGIN { printf "%s: %.2f s, scanner CPU %.2f s\n", n, t / 100, c / 100 }'
}

: > /tmp/bench.txt
echo "workload: $PROCS processes x $MIB MiB of zero pages ($pages pages), goal $goal merged"
echo 1 > $K/use_zero_pages
run uksm "modprobe uksm" "rmmod uksm" uksmd
run ksm-default "echo 100 > $K/pages_to_scan; echo 20 > $K/sleep_millisecs; echo 1 > $K/run" "echo 2 > $K/run" ksmd
run ksm-tuned "echo 1000 > $K/pages_to_scan; echo 20 > $K/sleep_millisecs; echo 1 > $K/run" "echo 2 > $K/run" ksmd
echo "settings: uksm defaults (pages_to_scan=$(cat /sys/module/uksm/parameters/pages_to_scan 2>/dev/null || echo 1000), sleep_millisecs=100); ksm-default pages_to_scan=100 sleep_millisecs=20; ksm-tuned pages_to_scan=1000 sleep_millisecs=20; use_zero_pages=1"
awk 'NR == 1 { ut = $2; uc = $3 }
     { printf "%-12s %8.2f s  %8.2f CPU s   time ratio vs uksm %6.2f   CPU ratio vs uksm %6.2f\n",
       $1, $2 / 100, $3 / 100, $2 / (ut ? ut : 1), ($3 ? $3 : 1) / (uc ? uc : 1) }' /tmp/bench.txt
