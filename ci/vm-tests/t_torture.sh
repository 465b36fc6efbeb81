#!/bin/sh
# Torture (see torture.c): random mmap, munmap, mremap, mprotect, madvise, fork, exit,
# writes and reads over memory full of duplicates, zeros and THPs, every byte checked,
# while uksmd scans with sleep_millisecs=0, zram swap is in use, compaction is triggered,
# run flips between 0, 1 and 2, and the module is unloaded and reloaded. TORTURE_SECONDS
# (default 150) sets the length.
. /tests/lib.sh
secs=${TORTURE_SECONDS:-150}
if ! grep -q zram0 /proc/swaps; then
  { [ "$(cat /sys/block/zram0/disksize)" != 0 ] || echo 256M > /sys/block/zram0/disksize; } &&
    mkswap /dev/zram0 >/dev/null && swapon /dev/zram0 || fail "cannot set up zram swap"
fi
load_all sleep_millisecs=0 pages_to_scan=2000 || fail "modprobe"
seed=$(( $(date +%s) % 100000 ))
unmerge_lines=$(dmesg | grep -c "uksm: unmerged")
torture $secs 4 $seed > /tmp/torture.out & tp=$!
# Compaction in a loop of its own (one compaction can take seconds here).
( n=0; while :; do echo 1 > /proc/sys/vm/compact_memory; n=$((n + 1)); echo $n > /tmp/compactions; sleep 1; done ) &
cp=$!
up() { cut -d. -f1 /proc/uptime; }
flips=0 reloads=0 repairs=0 merged=0 max_sharing=0
start=$(up); next_flip=$((start + 5)); next_reload=$((start + 15))
while kill -0 $tp 2>/dev/null; do
  sleep 1
  s=$(get pages_sharing); [ "$s" -gt "$max_sharing" ] && max_sharing=$s
  if [ "$(up)" -ge $next_reload ]; then
    repairs=$((repairs + $(get rmap_repairs))); merged=$((merged + $(get pages_merged)))
    rmmod uksm || fail "rmmod during torture"
    load_all sleep_millisecs=0 pages_to_scan=2000 || fail "modprobe during torture"
    reloads=$((reloads + 1)); next_reload=$(( $(up) + 15 ))
  elif [ "$(up)" -ge $next_flip ]; then
    case $((flips % 3)) in
      0) echo 0 > $U/run ;;
      1) echo 2 > $U/run ;;
      2) echo 1 > $U/run ;;
    esac || fail "run flip refused"
    flips=$((flips + 1)); next_flip=$(( $(up) + 5 ))
  fi
done
kill $cp; wait $cp 2>/dev/null
compactions=$(cat /tmp/compactions 2>/dev/null || echo 0)
wait $tp; rc=$?
echo 1 > $U/run
grep -v '^TOTALS' /tmp/torture.out
awk '/^TOTALS/ { o += $2; f += $3; m += $4; w += $5; c += $6 }
     END { printf "torture totals: %d operations, %d forks, %d soft offlines (migrations), %d pages written, %d MiB checked\n", o, f, m, w, c / 1048576 }' /tmp/torture.out
repairs=$((repairs + $(get rmap_repairs))); merged=$((merged + $(get pages_merged)))
echo "uksm: $merged pages merged, $reloads reloads, $flips run flips, $compactions compactions; largest pages_sharing seen $max_sharing; rmap repairs $repairs; swap used at the end $(awk '/zram0/ { print $4 }' /proc/swaps) kB"
dmesg | sed -n 's/.*uksm: unmerged \([0-9]*\) pages.*/\1/p' | tail -n +$((unmerge_lines + 1)) |
  awk '{ n += $1; r++ } END { printf "unmerging (run=2 and unload): %d runs, %d pages unmerged\n", r, n }'
rmmod uksm || fail "rmmod"
swapoff /dev/zram0
[ $rc = 0 ] || fail "torture workload found a difference or a worker failed"
