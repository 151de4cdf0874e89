#!/usr/bin/env bash
# One data-parallel training run over several hosts. maskae.main calls jax.distributed.initialize
# before any other JAX use; the global batch (data.batch_size) is split over all processes.
#
#   launch/multihost.sh [--dry_run] --nodes N [--gpus_per_node G] [--sbatch_args "ARGS"] -- FLAGS
#       SLURM, one process per GPU (what jax's SLURM detection expects: process i uses local
#       GPU $SLURM_LOCALID): `srun --nodes=N --ntasks-per-node=G --gpus-per-node=G
#       python -m maskae.main --multihost FLAGS`, run directly inside an allocation
#       (SLURM_JOB_ID set), else submitted with sbatch.
#   launch/multihost.sh [--dry_run] --hosts h1,h2,... [--port P] -- FLAGS
#       Without SLURM, one process per host using all its GPUs, started over ssh in this
#       directory: --coordinator_address=h1:P --num_processes=<hosts> --process_id=<i>.
#   launch/multihost.sh [--dry_run] --local N [--port P] -- FLAGS
#       N processes on this machine on CPU (JAX_PLATFORMS=cpu), to exercise multi-host code.
#
# FLAGS go to `python -m maskae.main` (--config, --workdir, --config.*); use the same --workdir
# (on a shared file system) for every host. --dry_run prints the commands instead of running them.
# Environment: PYTHON (default: python3).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
DRY_RUN=0
NODES=""
GPUS_PER_NODE=8
SBATCH_ARGS=""
HOSTS=""
LOCAL=""
PORT=12355
usage() {
  echo "usage: $0 [--dry_run] (--nodes N [--gpus_per_node G] [--sbatch_args ARGS] | --hosts h1,h2 [--port P] | --local N [--port P]) -- MAIN_FLAGS" >&2
  exit 2
}
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dry_run) DRY_RUN=1; shift ;;
    --nodes) NODES="$2"; shift 2 ;;
    --gpus_per_node) GPUS_PER_NODE="$2"; shift 2 ;;
    --sbatch_args) SBATCH_ARGS="$2"; shift 2 ;;
    --hosts) HOSTS="$2"; shift 2 ;;
    --local) LOCAL="$2"; shift 2 ;;
    --port) PORT="$2"; shift 2 ;;
    --) shift; break ;;
    *) echo "unknown option $1 (flags for maskae.main go after --)" >&2; usage ;;
  esac
done
MAIN_FLAGS=("$@")
modes=0
for mode in "$NODES" "$HOSTS" "$LOCAL"; do [[ -n "$mode" ]] && modes=$((modes + 1)); done
[[ $modes -eq 1 ]] || usage

main=("$PYTHON" -m maskae.main)
pythonpath="$REPO${PYTHONPATH:+:$PYTHONPATH}"

# shellcheck source=launch/shell_quote.sh
source "$REPO/launch/shell_quote.sh"

run() {  # Prints (dry run) or runs a command.
  if [[ $DRY_RUN -eq 1 ]]; then
    echo "would run: $(quote "$@")"
  else
    "$@"
  fi
}

if [[ -n "$NODES" ]]; then
  srun_cmd=(srun --nodes="$NODES" --ntasks-per-node="$GPUS_PER_NODE"
            --gpus-per-node="$GPUS_PER_NODE" env PYTHONPATH="$pythonpath"
            "${main[@]}" --multihost ${MAIN_FLAGS[@]+"${MAIN_FLAGS[@]}"})
  echo "multihost: $NODES nodes x $GPUS_PER_NODE GPUs, one process per GPU (SLURM)"
  if [[ -n "${SLURM_JOB_ID:-}" ]]; then
    run "${srun_cmd[@]}"
  else
    # shellcheck disable=SC2206  # SBATCH_ARGS is a list of sbatch options, split on spaces.
    extra=($SBATCH_ARGS)
    run sbatch --job-name=maskae-multihost --nodes="$NODES" --ntasks-per-node="$GPUS_PER_NODE" \
      --gpus-per-node="$GPUS_PER_NODE" ${extra[@]+"${extra[@]}"} \
      --wrap "cd $(printf '%q' "$PWD") && $(printf '%q ' "${srun_cmd[@]}")"
  fi
  exit 0
fi

if [[ -n "$HOSTS" ]]; then
  IFS=, read -r -a hosts <<< "$HOSTS"
else
  hosts=()
  for ((i = 0; i < LOCAL; i++)); do hosts+=(localhost); done
fi
count=${#hosts[@]}
coordinator="${hosts[0]}:$PORT"
echo "multihost: $count processes, coordinator $coordinator"
pids=()
for ((i = 0; i < count; i++)); do
  vars=(PYTHONPATH="$pythonpath")
  if [[ -n "$LOCAL" ]]; then vars+=(JAX_PLATFORMS=cpu); fi
  cmd=(env "${vars[@]}" "${main[@]}" --coordinator_address="$coordinator"
       --num_processes="$count" --process_id="$i" ${MAIN_FLAGS[@]+"${MAIN_FLAGS[@]}"})
  if [[ -n "$HOSTS" ]]; then
    cmd=(ssh "${hosts[$i]}" "cd $(printf '%q' "$PWD") && $(printf '%q ' "${cmd[@]}")")
  fi
  if [[ $DRY_RUN -eq 1 ]]; then
    run "${cmd[@]}"
  else
    "${cmd[@]}" &
    pids+=($!)
  fi
done
status=0
for pid in ${pids[@]+"${pids[@]}"}; do
  wait "$pid" || status=1
done
exit $status
