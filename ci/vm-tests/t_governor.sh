#!/bin/sh
# The CPU governor, measured from uksmd's CPU time in /proc/PID/stat (its scheduler clock)
# while 256 MiB of distinct pages sit in memory, nothing left to merge:
#  - the ceiling: with every rung at the ceiling (scan_all) and uksmd told to scan as fast
#    as it can (sleep_millisecs=0, pages_to_scan at its maximum), it uses well over 30 % of
#    a CPU under max_cpu_percentage=95 and no more than 10 % (+0.5) under 10;
#  - idle: under the default governor (full) it uses at most 1 % of a CPU once that memory
#    sits on the lowest rung, and under quiet at most 0.2 %, still sampling.
. /tests/lib.sh
ticks() { awk '{ print $14 + $15 }' /proc/$1/stat; }   # utime + stime, 1/100 s
uptime_cs() { awk '{ split($1, t, "."); print t[1] * 100 + t[2] }' /proc/uptime; }
pid_of() { for p in /proc/[0-9]*; do [ "$(cat $p/comm 2>/dev/null)" = "$1" ] && echo ${p#/proc/}; done; }
load_all || fail "modprobe"
dup_workload 1 256 0 3600 > /tmp/gov.out & w=$!
wait_line /tmp/gov.out filled $w 300
passes 1 600
uksmd=$(pid_of uksmd)
[ -n "$uksmd" ] || fail "no uksmd"
# measure SECONDS SETTING...: applies the settings, lets a few rounds pass, sets $pct to
# uksmd's CPU use over SECONDS in hundredths of a percent of one CPU.
measure() {
  secs=$1; shift
  for s in "$@"; do echo "${s#*=}" > "$U/${s%%=*}" || fail "write $s"; done
  sleep 5
  # The span is measured, not assumed: starting the readers takes time under TCG.
  s0=$(get pages_scanned); r0=$(get sleep_times); u0=$(uptime_cs); c0=$(ticks $uksmd)
  sleep $secs
  c1=$(ticks $uksmd); u1=$(uptime_cs); s1=$(get pages_scanned); r1=$(get sleep_times)
  pct=$(( (c1 - c0) * 10000 / (u1 - u0) ))
  echo "$*: uksmd ran $((c1 - c0)) ticks in $((u1 - u0))/100 s ($pct/100 % of a CPU), $((r1 - r0)) rounds sampled $((s1 - s0)) pages, ema_per_page_time $(get ema_per_page_time) ns, rung_vmas $(get rung_vmas), full_scans $(get full_scans)"
  if [ $s1 -le $s0 ]; then
    echo "uksmd: state $(awk '{ print $3 }' /proc/$uksmd/stat), wchan $(cat /proc/$uksmd/wchan 2>/dev/null)"
    cat /proc/$uksmd/stack 2>/dev/null
    grep -E 'nr_switches|nr_voluntary' /proc/$uksmd/sched 2>/dev/null
    fail "$*: uksmd stopped sampling"
  fi
}
measure 20 sleep_millisecs=0 pages_to_scan=1000000 max_cpu_percentage=95; full=$pct
measure 20 max_cpu_percentage=10; ten=$pct
measure 60 cpu_governor=full sleep_millisecs=100 pages_to_scan=1000; idle=$pct
measure 60 cpu_governor=quiet; quiet=$pct
echo "uksmd's CPU use in hundredths of a percent of one CPU: ceiling 95 %: $full; ceiling 10 %: $ten; idle under full: $idle; idle under quiet: $quiet"
# Tick-granular accounting (a tick is 0.05 % of 20 s): half a percent point of slack.
[ $ten -le 1050 ] || fail "uksmd used $ten/100 % under a ceiling of 10 %"
# The ceiling, not the work, held uksmd back: unbounded it uses far more.
[ $full -ge 3000 ] || fail "uksmd used only $full/100 % under a ceiling of 95 %: the comparison shows nothing"
[ $idle -le 100 ] || fail "uksmd used $idle/100 % of a CPU on idle memory under full (target 1 %)"
[ $quiet -le 20 ] || fail "uksmd used $quiet/100 % of a CPU on idle memory under quiet (target 0.2 %)"
kill -TERM $w 2>/dev/null; wait $w
rmmod uksm || fail "rmmod"
