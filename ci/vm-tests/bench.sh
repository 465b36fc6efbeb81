#!/bin/sh
# Benchmarks (not tests): uksm against built-in KSM in one boot, on the same workloads
# (the rows of the adaptive scanner's targets; all, or those named on the command line of
# `ci/vm.sh bench ROW...`). uksm runs at its defaults (`cpu_governor=full`) unless a row
# says otherwise; KSM at its defaults (pages_to_scan=100, sleep_millisecs=20) and, where
# named, tuned (pages_to_scan=1000); use_zero_pages=1 for both, and the workload processes
# opt in to KSM with prctl(PR_SET_MEMORY_MERGE) (uksm needs nothing).
#  - static:  4 processes x 64 MiB, 50% of the pages holding one of 16 patterns shared by
#             all (dup_workload); seconds until AnonPages has fallen by 95% of the
#             duplicates, and the scanner thread's CPU seconds over that time.
#  - thp:     the same in MADV_HUGEPAGE memory (THPs, which both split to merge).
#  - zero:    4 processes x 32 MiB of zero pages; 95% of them merged (ksm_zero_pages).
#  - dynamic: static's processes keep rewriting 160 random pages a second each (1% of
#             their pages), alternately with a pattern found elsewhere and with new
#             content of their own; memory saved (AnonPages below its level before the
#             scanner started), averaged over the 180 s after the scanner starts, per CPU
#             second of the scanner over the same 180 s; uksm also with its thrash
#             filter off (thrash_threshold=0), to show what the filter gives or costs.
#  - idle:    4 processes x 256 MiB of distinct pages (1 GiB): the scanner's CPU, % of
#             one CPU over 60 s, once KSM has completed a full scan; uksm (defaults and
#             `quiet`) 60 s after it was loaded.
#  - late:    static's processes fill their pages with distinct content and sit idle with
#             the scanner running for 120 s; then they write the duplicates: seconds until
#             95% of them are merged (uksm's static time is the yardstick).
#  - scale:   4 processes x 64 MiB, 256 MiB and 1 GiB (256 MiB, 1 GiB, 4 GiB) of mixed
#             memory (25% duplicates, 10% zero pages): seconds and scanner CPU of the first
#             three full passes (which pass merges differs: at 4 x 64 MiB uksm's first
#             took 6.9 s and its second 66.1 s, KSM's 91.3 s and 16.9 s), CPU per GiB of
#             the third (nothing left to merge), and the kernel's memory (Slab + VmallocUsed in /proc/meminfo)
#             grown over two passes, per tracked page (KASAN's quarantine of freed objects
#             counts in Slab on the test kernels); uksm told to visit every page
#             at full speed (every rung MAX/1, covers of 600 s: a pass is a pass over every
#             page, which the ladder otherwise spreads out: lib.sh's load_all), KSM tuned.
# Each run prints its figures; ratios against uksm follow each row, and a summary of the
# targets ends the output. Emulated CPUs make absolute numbers meaningless; the ratios
# within one boot are the result.
. /tests/lib.sh
K=/sys/kernel/mm/ksm
U=/sys/kernel/mm/uksm
ticks() { awk '{ print $14 + $15 }' /proc/$1/stat; }   # utime + stime, 1/100 s
pid_of() { for p in /proc/[0-9]*; do [ "$(cat $p/comm 2>/dev/null)" = "$1" ] && echo ${p#/proc/}; done; }
kmem_kb() { awk '/^(Slab|VmallocUsed):/ { s += $2 } END { print s }' /proc/meminfo; }
secs() { awk -v c="$1" 'BEGIN { printf "%.2f", c / 100 }'; }
# Readers for the loops that poll: they fork nothing (a reader forked ten times a second
# makes short-lived processes, whose VMAs uksm adopts and samples: the gauge would slow
# down what it measures). ANON: AnonPages in kB; NOW: uptime in 1/100 s; TICKS: CPU
# ticks of thread $1.
anon() { while read -r k v _; do [ "$k" = AnonPages: ] && { ANON=$v; return; }; done < /proc/meminfo; }
now() { read -r up _ < /proc/uptime; f=${up#*.}; f=${f#0}; NOW=$(( ${up%.*} * 100 + f )); }

UKSM_ON="modprobe uksm"
UKSM_OFF="rmmod uksm"
KSM_DEFAULT="echo 100 > $K/pages_to_scan; echo 20 > $K/sleep_millisecs; echo 1 > $K/run"
KSM_TUNED="echo 1000 > $K/pages_to_scan; echo 20 > $K/sleep_millisecs; echo 1 > $K/run"
KSM_OFF="echo 2 > $K/run"

# workload ARGS...: starts dup_workload (opted in to KSM) in the background, waits until
# it has filled its memory; $wl is its pid, $dups the duplicates it wrote, $WL_OUT its
# output, in a file of its own. It waits for the "filled:" line to parse: reading it once
# when "filled" first showed gave an empty $dups, a goal of 0 pages (static's third run,
# on both kernels).
workload() {
  anon; idle_anon=$ANON
  runs=$((runs + 1)); WL_OUT=/tmp/wl.$runs.out
  DUP_WORKLOAD_PRCTL=1 dup_workload "$@" > $WL_OUT & wl=$!
  dups=
  while [ -z "$dups" ]; do
    kill -0 $wl 2>/dev/null || { echo "bench: dup_workload $*: $(cat $WL_OUT)"; break; }
    sleep 0.2
    dups=$(sed -n 's/^filled: [0-9]* pages, \([0-9]*\) duplicates.*/\1/p' $WL_OUT)
  done
  sleep 1
}
# end_workload: stops the workload and waits until its processes are gone and their memory
# is freed (AnonPages back within 4 MiB of its level before the workload, at most 60 s):
# exiting processes free their pages for seconds under TCG, and a baseline read meanwhile
# would count those pages as merged by the next run.
end_workload() {
  kill $wl; wait $wl 2>/dev/null
  kill -9 $(pid_of zero_bench) $(pid_of dup_workload) 2>/dev/null
  i=0
  while [ $i -lt 120 ]; do
    anon
    [ -z "$(pid_of zero_bench)$(pid_of dup_workload)" ] && [ $ANON -le $((idle_anon + 4096)) ] && break
    sleep 0.5; i=$((i + 1))
  done
  [ $i -lt 120 ] || echo "bench: AnonPages still $ANON kB after the workload (before it: $idle_anon kB)"
  sleep 1
}

# to95 NAME START STOP THREAD WORKLOAD: seconds until 95% merged; appends
# "NAME secs_cs cpu_cs" to /tmp/bench.txt.
to95() {
  case $5 in
    static|thp|late)
      export DUP_WORKLOAD_THP=$([ $5 = thp ] && echo 1) DUP_WORKLOAD_LATE=$([ $5 = late ] && echo 120)
      workload 4 64 50 100000
      unset DUP_WORKLOAD_THP DUP_WORKLOAD_LATE
      [ $5 = thp ] && grep AnonHugePages /proc/meminfo
      progress() { anon; PROG=$((base - ANON)); }
      goal=$((dups * 4 * 95 / 100)) ;;
    zero)
      anon; idle_anon=$ANON
      runs=$((runs + 1)); WL_OUT=/tmp/wl.$runs.out
      zero_bench 4 32 > $WL_OUT & wl=$!
      while ! grep -q filled $WL_OUT; do sleep 0.2; done
      progress() { read -r z < $K/ksm_zero_pages; PROG=$((z - base)); }
      goal=$((4 * 32 * 256 * 95 / 100)) ;;
  esac
  if [ $5 = zero ]; then base=$(cat $K/ksm_zero_pages); else anon; base=$ANON; fi
  eval "$2"
  if [ $5 = late ]; then
    while ! grep -q '^late:' $WL_OUT; do sleep 1; done
    anon; base=$ANON
  fi
  thread=$(pid_of "$4"); c0=$(ticks $thread); now; t0=$NOW
  while progress; [ $PROG -lt $goal ]; do
    now; [ $((NOW - t0)) -lt 90000 ] || { echo "$1: not done in 900 s"; break; }
    sleep 0.5
  done
  now; t1=$NOW; c1=$(ticks $thread)
  # A goal met before the scanner could have merged anything is a broken gauge, not a
  # figure: say so with what it read.
  [ $((t1 - t0)) -ge 50 ] || echo "$1: INVALID: goal met at once (baseline $base, progress $PROG, goal $goal, dups '$dups')"
  eval "$3"
  end_workload
  echo "$1 $((t1 - t0)) $((c1 - c0))" >> /tmp/bench.txt
  echo "$1: $(secs $((t1 - t0))) s, scanner CPU $(secs $((c1 - c0))) s"
}

table() {
  awk 'NR == 1 { ut = $2; uc = $3 }
       { printf "%-12s %8.2f s  %8.2f CPU s   time / uksm %6.2f   CPU / uksm %6.2f\n",
         $1, $2 / 100, $3 / 100, $2 / (ut ? ut : 1), ($3 ? $3 : 1) / (uc ? uc : 1) }' /tmp/bench.txt
}

# dynamic NAME START STOP THREAD
dynamic() {
  # The workload ends by itself after 200 s and checks every page it wrote.
  export DUP_WORKLOAD_REWRITE=160
  workload 4 64 50 200
  unset DUP_WORKLOAD_REWRITE
  anon; base=$ANON
  eval "$2"
  thread=$(pid_of "$4"); c0=$(ticks $thread); now; t0=$NOW; sum=0; n=0
  while now; [ $((NOW - t0)) -lt 18000 ]; do
    sleep 1
    anon; sum=$((sum + base - ANON)); n=$((n + 1))
  done
  c1=$(ticks $thread)
  eval "$3"
  wait $wl
  grep -q 'contents intact' $WL_OUT || echo "$1: CONTENTS CHANGED: $(tail -n 2 $WL_OUT)"
  echo "$1 $((sum / n)) $((c1 - c0))" >> /tmp/dynamic.txt
  awk -v n="$1" -v s=$((sum / n)) -v c=$((c1 - c0)) 'BEGIN {
    printf "%s: %.1f MiB saved on average over 180 s, scanner CPU %.2f s, %.1f MiB per CPU s\n",
      n, s / 1024, c / 100, s / 1024 / (c ? c / 100 : 0.01) }'
}

# idle NAME START STOP THREAD: CPU % over 60 s of 1 GiB of distinct pages.
idle() {
  workload 4 256 0 100000
  eval "$2"
  thread=$(pid_of "$4"); now; t0=$NOW
  case $1 in
    ksm*) f0=$(cat $K/full_scans)
          while [ "$(cat $K/full_scans)" -le "$f0" ] && now && [ $((NOW - t0)) -lt 90000 ]; do sleep 1; done
          now; echo "$1: first full scan after $(secs $((NOW - t0))) s" ;;
    *) sleep 60; echo "$1: full_scans $(cat $U/full_scans) after 60 s" ;;
  esac
  c0=$(ticks $thread); now; t1=$NOW
  sleep 60
  c1=$(ticks $thread); now; t2=$NOW
  eval "$3"
  end_workload
  awk -v n="$1" -v c=$((c1 - c0)) -v t=$((t2 - t1)) 'BEGIN {
    printf "%s: scanner CPU %.2f %% of one CPU over %.1f s\n", n, c * 100 / t, t / 100 }' |
    tee -a /tmp/idle.txt
}

# scale NAME START STOP THREAD MIB FULL_SCANS_FILE
scale() {
  workload 4 $5 25 100000 10
  m0=$(kmem_kb)
  eval "$2"
  thread=$(pid_of "$4"); now; t0=$NOW; c0=$(ticks $thread)
  # pass: waits for the next full scan (at most 1800 s); T and C: its end's time and ticks.
  pass() {
    f=$(cat $6); now; ts=$NOW
    while [ "$(cat $6)" -le "$f" ] && now && [ $((NOW - ts)) -lt 180000 ]; do sleep 0.5; done
    now; T=$NOW; C=$(ticks $thread)
  }
  pass "$@"; t1=$T; c1=$C
  pass "$@"; t2=$T; c2=$C; m1=$(kmem_kb)
  pass "$@"; t3=$T; c3=$C
  eval "$3"
  end_workload
  awk -v n="$1" -v mib=$((4 * $5)) -v p1=$((t1 - t0)) -v p2=$((t2 - t1)) -v p3=$((t3 - t2)) \
      -v c1=$((c1 - c0)) -v c2=$((c2 - c1)) -v c3=$((c3 - c2)) -v dm=$((m1 - m0)) 'BEGIN {
    g = mib / 1024
    printf "%s %d MiB: passes %.1f s, %.1f s, %.1f s; CPU %.2f s, %.2f s, %.2f s (third pass, nothing left to merge: %.2f s per GiB); kernel memory %+.1f MiB (%.1f bytes per page)\n",
      n, mib, p1 / 100, p2 / 100, p3 / 100, c1 / 100, c2 / 100, c3 / 100, c3 / 100 / g, dm / 1024, dm * 1024 / (mib * 256) }' |
    tee -a /tmp/scale.txt
}

rows=$*
[ -n "$rows" ] || rows="static thp zero dynamic idle late scale"
echo 1 > $K/use_zero_pages
rm -f /tmp/static.txt /tmp/thp.txt /tmp/late.txt /tmp/dynamic.txt /tmp/idle.txt /tmp/scale.txt
for row in $rows; do
  : > /tmp/bench.txt
  case $row in
    static|thp|zero)
      case $row in
        static) echo "=== static: 4 processes x 64 MiB, 50% duplicates of 16 patterns; goal: AnonPages down by 95% of the duplicates" ;;
        thp) echo "=== thp: as static, in MADV_HUGEPAGE memory" ;;
        zero) echo "=== zero: 4 processes x 32 MiB of zero pages; goal: 95% of them merged (ksm_zero_pages)" ;;
      esac
      to95 uksm "$UKSM_ON" "$UKSM_OFF" uksmd $row
      to95 ksm-default "$KSM_DEFAULT" "$KSM_OFF" ksmd $row
      to95 ksm-tuned "$KSM_TUNED" "$KSM_OFF" ksmd $row
      table; cp /tmp/bench.txt /tmp/$row.txt ;;
    late)
      echo "=== late: as static, the duplicates written after 120 s of distinct content"
      to95 uksm "$UKSM_ON" "$UKSM_OFF" uksmd late
      to95 ksm-default "$KSM_DEFAULT" "$KSM_OFF" ksmd late
      table; cp /tmp/bench.txt /tmp/late.txt ;;
    dynamic)
      echo "=== dynamic: as static, each process rewriting 160 pages a second"
      dynamic uksm "$UKSM_ON" "$UKSM_OFF" uksmd
      dynamic uksm-thrash0 "modprobe uksm thrash_threshold=0" "$UKSM_OFF" uksmd
      dynamic ksm-default "$KSM_DEFAULT" "$KSM_OFF" ksmd ;;
    idle)
      echo "=== idle: 4 processes x 256 MiB of distinct pages"
      idle uksm "$UKSM_ON" "$UKSM_OFF" uksmd
      idle uksm-quiet "modprobe uksm cpu_governor=quiet" "$UKSM_OFF" uksmd
      idle ksm-default "$KSM_DEFAULT" "$KSM_OFF" ksmd ;;
    scale)
      echo "=== scale: 4 processes x 64 MiB, 256 MiB, 1 GiB; 25% duplicates, 10% zero pages"
      for mib in 64 256 1024; do
        scale uksm load_all "$UKSM_OFF" uksmd $mib $U/full_scans
        scale ksm-tuned "$KSM_TUNED" "$KSM_OFF" ksmd $mib $K/full_scans
      done ;;
    *) echo "bench: unknown row $row" ;;
  esac
done

echo "=== targets (KSM at its defaults, same boot)"
ratio() { awk -v n="$2" '$1 == "uksm" { u = $2; uc = $3 } $1 == n { k = $2; kc = $3 }
  END { if (u && k) printf "%.2f (uksm CPU %.2f s, KSM %.2f s)", k / u, uc / 100, kc / 100; else printf "not measured" }' "$1"; }
[ -f /tmp/static.txt ] && echo "static: time to 95 %, KSM defaults / uksm: $(ratio /tmp/static.txt ksm-default) (target >= 10, uksm CPU <= KSM's)"
[ -f /tmp/thp.txt ] && echo "thp: time to 95 %, KSM defaults / uksm: $(ratio /tmp/thp.txt ksm-default) (target >= 10)"
[ -f /tmp/dynamic.txt ] && awk '$1 == "uksm" { u = $2 / ($3 ? $3 : 1) } $1 == "ksm-default" { k = $2 / ($3 ? $3 : 1) }
  END { printf "dynamic: memory saved per scanner CPU second, uksm / KSM defaults: %.2f (target >= 5)\n", k ? u / k : 0 }' /tmp/dynamic.txt
[ -f /tmp/idle.txt ] && sed 's/^/idle: /' /tmp/idle.txt && echo "idle targets: uksm <= 1 %, uksm-quiet <= 0.2 %"
[ -f /tmp/late.txt ] && [ -f /tmp/static.txt ] && awk 'FNR == 1 { f++ } $1 == "uksm" { t[f] = $2 }
  END { printf "late: uksm late / uksm static: %.2f (target <= 2)\n", t[1] ? t[2] / t[1] : 0 }' /tmp/static.txt /tmp/late.txt
[ -f /tmp/scale.txt ] && sed 's/^/scale: /' /tmp/scale.txt
# uksm's own statistics at each unload, in the order of the runs above.
echo "uksm at unload:"
dmesg | grep 'uksm: unloading:' | sed 's/^\[[ 0-9.]*\] //; s/ uptime_secs=.*cpu_governor=/ ... cpu_governor=/'
echo "bench: done"
