#!/bin/bash
# A quality pilot (docs/pilots.md): a configs/utkface.py run with overrides, stopped by SIGTERM
# (the trainer checkpoints and exits) after its step-STOP validation, so its first STOP steps are
# those of the full schedule. From the repository root:
#   docs/run_pilot.sh NAME STOP [--config.key=value ...]     (CONFIG=configs/utkface.py:round1)
# Writes pilots/NAME (the workdir) and pilots/NAME.log.
name=$1; stop=$2; shift 2
config=${CONFIG:-configs/utkface.py:round1}
python=${PYTHON:-.venv/bin/python}
mkdir -p pilots
$python -m maskae.main --config "$config" --workdir "pilots/$name" \
  --config.train.eval_every=500 --config.train.checkpoint_every=500 "$@" > "pilots/$name.log" 2>&1 &
pid=$!
while kill -0 $pid 2>/dev/null; do
  sleep 10
  if grep -qs "\"step\": $stop, .*val/psnr_masked" "pilots/$name/metrics.jsonl"; then
    kill -TERM $pid
    wait $pid
  fi
done
