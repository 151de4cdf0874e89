#!/usr/bin/env bash
# A sweep as a SLURM array job: task i runs trial i of the sweep on one GPU, then a dependent job
# aggregates the results (results.csv / results.md / plots in the sweep workdir).
#
#   launch/slurm_sweep.sh [--dry_run] [--max_parallel K] [--sbatch_args "ARGS"] \
#       --config configs/sweep_arch.py --workdir runs/sweep_arch [--config.x=y ...]
#
# Every argument after the launcher's own goes to `python -m launch.sweep` unchanged (--config,
# --workdir, --metric, --config.* overrides). Jobs run in the current directory.
# --dry_run prints the sbatch commands instead of submitting them. Resubmitting the same command
# skips finished trials and resumes the others. Environment: PYTHON (default: python3).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
DRY_RUN=0
MAX_PARALLEL=""
SBATCH_ARGS=""
SWEEP_ARGS=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dry_run) DRY_RUN=1; shift ;;
    --max_parallel) MAX_PARALLEL="$2"; shift 2 ;;
    --sbatch_args) SBATCH_ARGS="$2"; shift 2 ;;
    *) SWEEP_ARGS+=("$1"); shift ;;
  esac
done
if [[ ${#SWEEP_ARGS[@]} -eq 0 ]]; then
  echo "usage: $0 [--dry_run] [--max_parallel K] [--sbatch_args ARGS] --config FILE --workdir DIR [--config.x=y ...]" >&2
  exit 2
fi

sweep=("$PYTHON" -m launch.sweep "${SWEEP_ARGS[@]}")
described="$(PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}" "${sweep[@]}" --describe)"
read -r NUM_TRIALS WORKDIR <<< "$described"
LOGS="$WORKDIR/slurm"
# Jobs run in this directory (relative paths keep their meaning) with the repository on
# PYTHONPATH; the array task index picks the trial.
prefix="cd $(printf '%q' "$PWD") && PYTHONPATH=$(printf '%q' "$REPO")\${PYTHONPATH:+:\$PYTHONPATH} $(printf '%q ' "${sweep[@]}")"
trial_job="$prefix--only_trial \$SLURM_ARRAY_TASK_ID"
aggregate_job="$prefix--aggregate_only"
array="0-$((NUM_TRIALS - 1))${MAX_PARALLEL:+%$MAX_PARALLEL}"

# shellcheck source=launch/shell_quote.sh
source "$REPO/launch/shell_quote.sh"

# shellcheck disable=SC2206  # SBATCH_ARGS is a list of sbatch options, split on spaces.
extra=($SBATCH_ARGS)
array_cmd=(sbatch --parsable --job-name=maskae-sweep --array="$array" --gres=gpu:1
           --output="$LOGS/trial_%a.out" ${extra[@]+"${extra[@]}"} --wrap "$trial_job")
echo "sweep: $NUM_TRIALS trials in $WORKDIR (array $array)"
if [[ $DRY_RUN -eq 1 ]]; then
  echo "would run: $(quote "${array_cmd[@]}")"
  JOB_ID="<array job id>"
else
  mkdir -p "$LOGS"
  JOB_ID="$("${array_cmd[@]}")"
  echo "submitted array job $JOB_ID"
fi
aggregate_cmd=(sbatch --parsable --job-name=maskae-sweep-aggregate
               --dependency="afterany:$JOB_ID" --output="$LOGS/aggregate.out" ${extra[@]+"${extra[@]}"}
               --wrap "$aggregate_job")
if [[ $DRY_RUN -eq 1 ]]; then
  echo "would run: $(quote "${aggregate_cmd[@]}")"
else
  echo "submitted aggregation job $("${aggregate_cmd[@]}") (results: $WORKDIR/results.md)"
fi
