# Helpers for the VM test scripts (sourced).
U=/sys/kernel/mm/uksm
fail() { echo "FAIL: $*"; exit 1; }
skip() { echo "SKIP: $*"; exit 77; }
get() { cat "$U/$1"; }
loaded() { grep -q '^uksm ' /proc/modules; }
# "Slab" or "VmallocUsed" of /proc/meminfo in kB, after dropping caches.
meminfo_kb() {
  echo 3 > /proc/sys/vm/drop_caches
  awk -v k="$1:" '$1 == k { print $2 }' /proc/meminfo
}
# Sets the ladder so that uksmd visits every page in each pass as fast as the CPU ceiling
# allows: every rung at the ceiling (MAX/1), covers as long as they need (stride 1). The
# tests of merging use it; the tests of the ladder and the governor use the defaults.
scan_all() {
  echo "MAX/1 MAX/1 MAX/1 MAX/1" > $U/cpu_ratios && echo "600000 600000 600000 600000" > $U/eval_intervals
}
# modprobe uksm with the given parameters, stopped until scan_all is set; then run=1 unless
# the parameters say run=0.
load_all() {
  modprobe uksm run=0 "$@" || return 1
  scan_all || return 1
  case " $* " in *" run=0 "*) ;; *) echo 1 > $U/run ;; esac
}
# Waits until $1 more passes of uksmd have completed, at most $2 seconds.
passes() {
  target=$(( $(get full_scans) + $1 )); i=0
  while [ "$(get full_scans)" -lt $target ]; do
    i=$((i+1)); [ $i -le $(($2 * 10)) ] || fail "fewer than $1 passes in $2 s"; sleep 0.1
  done
}
# Waits until file $1 has a line matching $2 while process $3 lives, at most $4 seconds.
wait_line() {
  i=0
  while ! grep -q "$2" "$1"; do
    i=$((i+1)); [ $i -lt $(($4 * 10)) ] && kill -0 $3 2>/dev/null || { cat "$1"; fail "no \"$2\" from process $3 in $4 s"; }
    sleep 0.1
  done
}
# Fails if kmemleak finds unreferenced objects allocated since its last "clear".
kmemleak_check() {
  echo scan > /sys/kernel/debug/kmemleak; sleep 6; echo scan > /sys/kernel/debug/kmemleak
  leaks=$(cat /sys/kernel/debug/kmemleak)
  [ -z "$leaks" ] || { echo "$leaks" | head -40; fail "kmemleak reports leaks"; }
}
# Stops a churn started by vma_churn (whole process group), if one runs.
stop_churn() {
  [ -f /tmp/churn.pgid ] && kill -KILL -"$(cat /tmp/churn.pgid)" 2>/dev/null
  rm -f /tmp/churn.pgid
  wait 2>/dev/null
}
