#!/usr/bin/env bash
# The smoke preset through a real Slurm: one-node cluster up, the workflow run by
# snakemake-executor-plugin-slurm in a scratch copy of the checkout, every job proven to have run
# under Slurm (its SLURM_JOB_ID in its own log), cluster down again (only if this script
# brought it up).
#
# usage: .ci/slurm-smoke.sh [extra snakemake arguments]
# env:   WORK=/tmp/archscale-slurm-smoke   scratch copy (wiped first); kept afterwards for a look
#        CONFIGFILE=presets/smoke.yaml      preset to run
#        DATA=<repo>/tests/data             corpus/ and superglue/ are linked into data/raw/
#                                           (the shipped sample, as the pytest smoke build)
#        LOCAL=1                            also time the same run without Slurm (for comparison)
#        BASE, ACCT, GPUS                   passed on to workflow/profiles/workstation/local-slurm.sh (ACCT must be none:
#                                           the workstation profile polls with squeue)
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-/tmp/archscale-slurm-smoke}
CONFIGFILE=${CONFIGFILE:-presets/smoke.yaml}
DATA=${DATA:-$REPO/tests/data}
CLUSTER=$REPO/workflow/profiles/workstation/local-slurm.sh
T0=$(date +%s%N)
secs() { local ms=$(( ($(date +%s%N) - $1) / 1000000 )); printf '%d.%01d' $((ms / 1000)) $((ms % 1000 / 100)); }
stamp() { printf '[slurm-smoke %6ss] %s\n' "$(secs "$T0")" "$*" >&2; }

[ -d "$DATA/corpus" ] || { echo "slurm-smoke: no corpus at $DATA/corpus (set DATA)" >&2; exit 1; }

# --- cluster: bring it up unless it already runs; stop it on exit only if we started it -------
started=0
"$CLUSTER" install
if ! "$CLUSTER" status >/dev/null 2>&1; then
  t=$(date +%s%N); "$CLUSTER" up; started=1
  stamp "cluster up in $(secs "$t") s"
fi
finish() {
  local rc=$?
  if [ "$rc" != 0 ] && [ -d "$WORK/slurm/.snakemake/slurm_logs" ]; then
    # the executor deletes the Slurm logs of successful jobs; what is left belongs to failures
    find "$WORK/slurm/.snakemake/slurm_logs" -name '*.log' -print -exec tail -n 30 {} \; >&2 || true
  fi
  if [ "$started" = 1 ]; then "$CLUSTER" down; fi
  stamp "exit $rc"
  exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT TERM
"$CLUSTER" check

# --- a scratch copy of the checkout (tracked + untracked-not-ignored files), data linked in ---
scratch() {  # scratch <dir>
  rm -rf "$1"; mkdir -p "$1/data/raw"
  (cd "$REPO" && git ls-files -z --cached --others --exclude-standard \
     | tar --null --ignore-failed-read -T - -cf - 2>/dev/null) | tar -xf - -C "$1"
  ln -s "$DATA/corpus" "$1/data/raw/corpus"
  [ -d "$DATA/superglue" ] && ln -s "$DATA/superglue" "$1/data/raw/superglue"
  return 0
}

run_workflow() {  # run_workflow <dir> <snakemake args...>: time one run, log beside it
  local dir=$1 t rc=0; shift
  t=$(date +%s%N)
  # jobs inherit the environment (sbatch --export=ALL): they import the scratch copy's package
  (cd "$dir" && PYTHONPATH="$dir/src" snakemake "$@" >"$dir/snakemake.out" 2>&1) || rc=$?
  RUN_SECS=$(secs "$t")
  if [ "$rc" != 0 ]; then tail -n 40 "$dir/snakemake.out" >&2; fi
  return "$rc"
}

scratch "$WORK/slurm"
stamp "snakemake --profile workflow/profiles/workstation --configfile $CONFIGFILE"
# --retries 0: a smoke job that fails is a CI failure, not something to resubmit
run_workflow "$WORK/slurm" --cores all --profile "$REPO/workflow/profiles/workstation" --retries 0 \
  --configfile "$CONFIGFILE" "$@"
slurm_secs=$RUN_SECS
stamp "workflow under Slurm: $slurm_secs s"
checked=0
# the Snakefile's localrules (workflow/rules/report.smk) run on this host; every other job through Slurm
python3 "$REPO/tests/slurm/check_slurm_jobs.py" --workdir "$WORK/slurm" --squeue \
  --local-rules 'select_lr,collect,fit_law,render_tables,build_paper,draw_*' || checked=$?

if [ "${LOCAL:-0}" = 1 ]; then
  scratch "$WORK/local"
  run_workflow "$WORK/local" --cores all --configfile "$CONFIGFILE" "$@"
  stamp "same workflow without Slurm (--cores all): $RUN_SECS s (Slurm: $slurm_secs s)"
fi
exit "$checked"
