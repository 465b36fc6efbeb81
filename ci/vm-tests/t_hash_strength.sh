#!/bin/sh
# The adaptive hash strength: near-duplicate pages (equal but for one word) make the
# partial hash collide; uksmd raises hash_strength, re-keys its merged pages, and new
# copies of an already merged page still join it (hash_strength.c). THP stays at the
# system's setting.
. /tests/lib.sh
load_all || fail "modprobe"
[ "$(get hash_strength)" = 64 ] || fail "hash_strength starts at $(get hash_strength), not UKSM's 64"
hash_strength 300 || fail "hash_strength exited $?"
echo "statistics: $(dmesg | grep 'uksm: stats' | tail -1)"
rmmod uksm || fail "rmmod"
