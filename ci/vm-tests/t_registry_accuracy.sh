#!/bin/sh
# The registry equals what /proc/*/smaps shows, exactly, at quiescent points: with uksm
# loaded before the churn, loaded in the middle of it, and after it ended. uksmd samples
# every page each pass (load_all): the checks wait for passes (tracked_pages is counted by
# each complete one), which the default ladder spreads over minutes.
. /tests/lib.sh
trap stop_churn EXIT
load_all || fail "modprobe"
vma_churn run 25 6 & churn=$!
sleep 2
vma_churn check 8 || fail "registry differs from /proc (loaded before churn)"
rmmod uksm || fail "rmmod under churn"
load_all || fail "modprobe under churn"
vma_churn check 8 || fail "registry differs from /proc (loaded during churn)"
wait $churn
vma_churn check 1 || fail "registry differs from /proc (after churn)"
[ "$(get registry_anomalies)" = 0 ] || fail "registry anomalies: $(get registry_anomalies)"
