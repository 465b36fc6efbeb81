#!/usr/bin/env bash
# Checks that module/sys.rs declares exactly the functions of module/glue/glue.h, each with
# the same number of parameters, and that every `ksm_hooks_*` function sys.rs declares is
# declared by the hook header of each version's patch. Run by ci/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
# name/arity pairs from C prototypes and from Rust extern declarations (perl-base).
c_protos() {
  perl -0777 -ne 's{/\*.*?\*/}{}gs; while (/\b(\w+)\s*\(([^()]*)\)\s*;/g) {
    my ($n, $a) = ($1, $2); next if $n =~ /^(if|while|return|sizeof)$/;
    my $k = ($a =~ /^\s*void\s*$/ || $a =~ /^\s*$/) ? 0 : ($a =~ tr/,//) + 1; print "$n/$k\n" }' "$@" | sort -u
}
rust_decls() {
  perl -0777 -ne 'while (/pub\(crate\) fn (\w+)\(([^()]*)\)/g) {
    my ($n, $a) = ($1, $2); $a =~ s/,\s*$//; my $k = $a =~ /^\s*$/ ? 0 : ($a =~ tr/,//) + 1;
    print "$n/$k\n" }' module/sys.rs | sort -u
}
status=0
glue=$(c_protos module/glue/glue.h)
rust=$(rust_decls)
missing=$(comm -23 <(echo "$glue") <(echo "$rust" | grep '^uksm_'))
extra=$(comm -13 <(echo "$glue") <(echo "$rust" | grep '^uksm_'))
[ -z "$missing" ] || { echo "check-glue: in glue.h, not (or differently) in sys.rs: $missing"; status=1; }
[ -z "$extra" ] || { echo "check-glue: in sys.rs, not (or differently) in glue.h: $extra"; status=1; }
for patch in versions/*/hooks.patch; do
  header=$(sed -n '/^+++ b\/include\/linux\/ksm_hooks.h/,/^+++ /p' "$patch" | sed -n 's/^+//p')
  hooks=$(c_protos <(echo "$header") | grep '^ksm_hooks_' || true)
  unknown=$(comm -13 <(echo "$hooks") <(echo "$rust" | grep '^ksm_hooks_'))
  [ -z "$unknown" ] || { echo "check-glue: sys.rs declares, $patch does not: $unknown"; status=1; }
done
[ $status = 0 ] && echo "check-glue: sys.rs matches glue.h and the hook headers ($(echo "$rust" | wc -l) functions)"
exit $status
