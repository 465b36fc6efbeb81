#!/bin/sh
# The CPU ceiling: uksmd, told to scan as fast as it can (sleep_millisecs=0, pages_to_scan
# at its maximum) over 256 MiB where nothing is left to merge, keeps within
# max_cpu_percentage of one CPU, and the governors set that ceiling. uksmd's CPU time is
# read from /proc/PID/stat (its scheduler clock), over 20 s per setting.
. /tests/lib.sh
ticks() { awk '{ print $14 + $15 }' /proc/$1/stat; }   # utime + stime, 1/100 s
pid_of() { for p in /proc/[0-9]*; do [ "$(cat $p/comm 2>/dev/null)" = "$1" ] && echo ${p#/proc/}; done; }
modprobe uksm || fail "modprobe"
dup_workload 1 256 0 3600 > /tmp/gov.out & w=$!
wait_line /tmp/gov.out filled $w 300
passes 1 600
echo 0 > $U/sleep_millisecs; echo 1000000 > $U/pages_to_scan
uksmd=$(pid_of uksmd)
[ -n "$uksmd" ] || fail "no uksmd"
# percent SETTING...: applies the settings, lets a few rounds pass, sets $pct to uksmd's
# CPU use over the next 20 s in tenths of a percent of one CPU.
percent() {
  for s in "$@"; do echo "${s#*=}" > "$U/${s%%=*}" || fail "write $s"; done
  sleep 3
  c0=$(ticks $uksmd); s0=$(get pages_scanned)
  sleep 20
  c1=$(ticks $uksmd); s1=$(get pages_scanned)
  echo "$*: uksmd ran $((c1 - c0)) ticks of 2000, scanned $((s1 - s0)) pages, ema_per_page_time $(get ema_per_page_time) ns"
  [ $s1 -gt $s0 ] || fail "$*: uksmd stopped scanning"
  pct=$(( (c1 - c0) / 2 ))
}
percent cpu_governor=full; full=$pct
percent max_cpu_percentage=10; ten=$pct
percent cpu_governor=quiet; quiet=$pct
echo "CPU use in tenths of a percent of one CPU: full $full, max_cpu_percentage=10 $ten, quiet $quiet"
# Tick-granular accounting: a tick is 0.05 % of 20 s; allow half a percent point more.
[ $ten -le 105 ] || fail "uksmd used $ten/10 % under a ceiling of 10 %"
[ $quiet -le 15 ] || fail "uksmd used $quiet/10 % under quiet (ceiling 1 %)"
# The ceiling, not the work, held uksmd back: unbounded it uses far more.
[ $full -ge 300 ] || fail "uksmd used only $full/10 % under full: the comparison shows nothing"
kill -TERM $w 2>/dev/null; wait $w
rmmod uksm || fail "rmmod"
