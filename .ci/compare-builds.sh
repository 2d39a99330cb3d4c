#!/usr/bin/env bash
# Two independent builds of the same preset, from two fresh copies of the checkout, must agree byte
# for byte on what people read: results/summary.csv, results/fits/*.json, figures/*.pdf|png and
# paper/generated/*.tex (on CPU every stage is seeded and writes no timestamps). Prints one line per
# file (sha256 of each side) and fails on a differing, missing or extra file, or when nothing matched.
# Timings (results/throughput.csv, metrics.json, curve.csv wall_s) and checkpoints are left out on
# purpose: they hold wall-clock measurements. So is Table 1 (paper/generated/table1_runs.tex), as
# long as its steps/s column is measured throughput (docs/design.md), and the PDF that includes it.
#
# usage: .ci/compare-builds.sh BUILD_A BUILD_B
# env:   SKIP="paper/generated/table1_runs.tex"   space-separated files listed but not compared
set -euo pipefail
[ $# = 2 ] || { echo "usage: $0 BUILD_A BUILD_B" >&2; exit 2; }
A=$1 B=$2
list() {  # list <dir>: the compared files, relative, sorted
  (cd "$1" && shopt -s nullglob && printf '%s\n' results/summary.csv results/isoflop.csv results/fits/*.json figures/*.pdf \
     figures/*.png paper/generated/*.tex | while read -r f; do [ -f "$f" ] && echo "$f"; done | LC_ALL=C sort)
}
hash() { sha256sum "$1" | cut -c1-64; }

mapfile -t files < <( (list "$A"; list "$B") | LC_ALL=C sort -u)
[ "${#files[@]}" -gt 0 ] || { echo "compare-builds: no outputs found in $A or $B" >&2; exit 1; }
SKIP=${SKIP-paper/generated/table1_runs.tex}
bad=0 skipped=0
for f in "${files[@]}"; do
  if [[ " $SKIP " == *" $f "* ]]; then
    printf '%-9s %-16s %-16s %s\n' skipped - - "$f"; skipped=$((skipped + 1)); continue
  fi
  ha=$( [ -f "$A/$f" ] && hash "$A/$f" || echo missing)
  hb=$( [ -f "$B/$f" ] && hash "$B/$f" || echo missing)
  if [ "$ha" = "$hb" ]; then mark=same; else mark=DIFFERENT; bad=$((bad + 1)); fi
  printf '%-9s %.16s %.16s %s\n' "$mark" "$ha" "$hb" "$f"
done
echo "compare-builds: $(( ${#files[@]} - skipped )) files compared, $bad different, $skipped skipped ($A vs $B)"
[ "$bad" = 0 ]
