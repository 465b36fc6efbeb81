#!/bin/sh
# Debian's ksmtuned, run unchanged from its package, steers uksm through /sys/kernel/mm/ksm/
# as it steers built-in KSM: it stops the scanner while the memory committed to guests
# (processes whose command line starts "qemu-system" and holds "-enable-kvm") leaves free
# memory above its threshold, and starts it with more pages per batch, and its sleep, while
# guests take more. The guest here is dup_workload under a qemu command line, holding
# duplicates; the threshold is set from this VM's free memory (KSM_THRES_CONST), as an
# administrator sets it for a host, so that the guest crosses it: 256 MiB below what is free
# at the start (the debug kernel keeps freed objects in KASAN's quarantine, up to 1/32 of
# memory, so free memory does not come all the way back after the guest), and the guest
# 128 MiB more than the memory in use plus that margin.
. /tests/lib.sh
K=/sys/kernel/mm/ksm
LOG=/tmp/ksmtuned.log
modprobe uksm || fail modprobe
[ "$(get run)" = 1 ] || fail "uksm not running after modprobe"

free_kb() { awk '/^(MemFree|Buffers|Cached):/ { f += $2 } END { print f }' /proc/meminfo; }
total=$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)
free0=$(free_kb)
margin=$((256 * 1024))
thres=$((free0 - margin))
guest_mib=$(( (total - free0 + margin) / 1024 + 128 ))
# ksmtuned's own sleep formula (KSM_SLEEP_MSEC=10 for a 16 GiB host, at least 10).
sleep_ms=$((10 * 16 * 1024 * 1024 / total)); [ $sleep_ms -le 10 ] && sleep_ms=10
echo "MemTotal $total kB, free $free0 kB: threshold $thres kB, guest $guest_mib MiB, sleep $sleep_ms ms"
cat > /etc/ksmtuned.conf <<EOF
KSM_MONITOR_INTERVAL=2
KSM_THRES_COEF=1
KSM_THRES_CONST=$thres
DEBUG=1
LOGFILE=$LOG
EOF
: > $LOG
stop_tuned() {
  [ -f /tmp/ksmtune.pid ] || return 0
  p=$(cat /tmp/ksmtune.pid)
  kill $p 2>/dev/null
  for c in /proc/[0-9]*; do
    [ "$(awk '{ print $4 }' $c/stat 2>/dev/null)" = "$p" ] && kill ${c#/proc/} 2>/dev/null
  done
  rm -f /tmp/ksmtune.pid
}
stop_guest() { [ -n "$guest" ] && kill $guest 2>/dev/null; pkill -f '^qemu-system' 2>/dev/null; guest=; }
trap 'stop_tuned; stop_guest' EXIT
PATH=/usr/bin:$PATH PIDFILE=/tmp/ksmtune.pid /usr/bin/bash /usr/sbin/ksmtuned ||
  fail "ksmtuned did not start"

# No guest: ksmtuned stops the scanner.
i=0; while [ "$(get run)" != 0 ]; do
  i=$((i+1)); [ $i -lt 300 ] || { cat $LOG; fail "uksm still running 30 s after ksmtuned started with no guest"; }
  sleep 0.1
done
grep 'stop ksm' $LOG | head -1
[ "$(cat $K/run)" = 0 ] || fail "ksm run reads $(cat $K/run) with uksm stopped"

a=$(get pages_sharing)

# A guest that takes more than the free memory above the threshold: ksmtuned starts the
# scanner and boosts its pages per batch by 300 each round (up to 1250) while free memory
# is below the threshold, and lowers it by 50 once merging has freed enough; uksm takes
# each value.
/usr/bin/bash -c "exec -a 'qemu-system-x86_64 -enable-kvm -m ${guest_mib}' /tests/dup_workload 1 $guest_mib 50 600" \
  > /tmp/guest.out 2>&1 &
guest=$!
# ksmtuned writes pages_to_scan, sleep_millisecs and run, then logs "KSMCTL start N S":
# between its rounds uksm's values are the last logged ones.
last_n() { sed -n 's/.*KSMCTL start \([0-9]*\) [0-9]*$/\1/p' $LOG | tail -1; }
i=0
while [ "$(grep -c 'KSMCTL start' $LOG)" -lt 2 ] || [ "$(get run)" != 1 ] || [ "$(get pages_to_scan)" != "$(last_n)" ]; do
  i=$((i+1)); [ $i -lt 3000 ] || { cat $LOG; cat /tmp/guest.out; echo "uksm: run $(get run) pages_to_scan $(get pages_to_scan)"; fail "ksmtuned did not start and boost uksm in 300 s"; }
  sleep 0.1
done
grep 'KSMCTL start' $LOG | head -6
[ "$(get sleep_millisecs)" = $sleep_ms ] || fail "uksm sleep_millisecs $(get sleep_millisecs), ksmtuned wrote $sleep_ms"
[ "$(cat $K/pages_to_scan)" = "$(get pages_to_scan)" ] || fail "ksm pages_to_scan reads $(cat $K/pages_to_scan), uksm's $(get pages_to_scan)"
# Started by ksmtuned, uksm merges the guest's duplicates (pages_sharing was $a while it
# was stopped).
i=0
while [ "$(get pages_sharing)" -lt $((a + 256)) ]; do
  i=$((i+1)); [ $i -lt 1200 ] || fail "uksm merged $(( $(get pages_sharing) - a )) pages in 120 s after ksmtuned boosted it"
  sleep 0.1
done
echo "started by ksmtuned: pages_sharing $a -> $(get pages_sharing) (ksm view: $(cat $K/pages_sharing))"

# The guest gone, ksmtuned stops the scanner again.
stop_guest
i=0; while [ "$(get run)" != 0 ]; do
  i=$((i+1)); [ $i -lt 600 ] || { tail -5 $LOG; fail "uksm still running 60 s after the guest exited"; }
  sleep 0.1
done
echo "guest exited: uksm stopped by ksmtuned after $((i / 10)) s"
stop_tuned
rmmod uksm || fail rmmod
true
