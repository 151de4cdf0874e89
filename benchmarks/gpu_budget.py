"""A training sized to a wall-clock budget on this machine's first device, and its validation curve.

  python benchmarks/gpu_budget.py --workdir runs/utkface_gpu [--config configs/utkface.py]
      [--minutes 8] [--evals 8] [--probe_steps 400] [--override KEY=VALUE ...]
      [--skip_evaluation] [--results benchmarks/RESULTS.md]

What sizes a config for "at most N minutes of one GPU" (the quality issue's GPU item), in one
command, so that one lent device session can measure it:
1. probe: `python -m maskae.main` trains the config, with `train.KEY=VALUE`-style --override
   fields (e.g. data.batch_size=64, model.features=(64,256)), for --probe_steps steps in a scratch
   workdir, validating every quarter. Its metrics.jsonl gives the seconds a step takes (between
   logged steps after the first), what the start costs (compilations) and what a validation
   costs (the second one: the first compiles);
2. sizing: train.steps is the most steps (a multiple of --evals) whose start, training and
   --evals validations fit in --minutes;
3. run: maskae.main trains that schedule in --workdir (validating and checkpointing --evals
   times), then `--mode=evaluate --split=val` scores its best checkpoint beside the classical
   baselines (--skip_evaluation leaves that out: on a 2-core CPU it took 2 minutes, and a
   device command may be limited to 10 minutes; `--mode=evaluate` can follow later).
Prints the sizing and the validation curve (step, minutes of training with validations,
masked-region PSNR, PSNR, SSIM) and appends both to the results file. Pure JAX (no TensorFlow,
which GPU machines may lack); on a CPU it runs the same way, for a test or a CPU budget.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

if __package__ in (None, ""):  # run as a file: the repository root holds `benchmarks`
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import report, time_to_quality
from maskae import workdir as workdir_lib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAFETY = 0.95  # the share of the budget the sizing fills: steps vary a little between runs


def run_main(config: str, workdir: str, flags: list[str]) -> None:
  """`python -m maskae.main` in the repository root; exits with its last error line on failure."""
  command = [sys.executable, "-m", "maskae.main", "--config", config, "--workdir", workdir, *flags]
  result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
  if result.returncode:
    lines = (result.stderr or result.stdout).strip().splitlines() or ["(no output)"]
    raise SystemExit(f"gpu_budget: {' '.join(command)} failed: {lines[-1]}")


def probe_costs(records: list[dict], probe_steps: int) -> dict:
  """Seconds per step, start-up seconds (the step's and the evaluation's compilation) and seconds
  per validation, from a probe run logged every probe_steps / 20 steps and validated every
  probe_steps / 4 (the first validation compiles, the second is timed)."""
  seconds = {r["step"]: r["time/train_seconds"] for r in records if "train/loss" in r}
  log, quarter = probe_steps // 20, probe_steps // 4
  per_step = (seconds[quarter] - seconds[2 * log]) / (quarter - 2 * log)
  first_validation = seconds[quarter + log] - seconds[quarter] - log * per_step
  validation = max(0.0, seconds[2 * quarter + log] - seconds[2 * quarter] - log * per_step)
  start = max(0.0, seconds[log] - log * per_step) + max(0.0, first_validation - validation)
  return {"step": per_step, "start": start, "validation": validation}


def size_steps(costs: dict, minutes: float, evals: int) -> int:
  """The most steps, a multiple of `evals`, whose start, training and `evals` validations fit in
  SAFETY of `minutes`; 0 if not even the start and validations fit."""
  left = SAFETY * 60 * minutes - costs["start"] - evals * costs["validation"]
  return max(0, int(left / costs["step"]) // evals * evals)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--workdir", required=True, help="the sized run's workdir (must not exist)")
  parser.add_argument("--config", default="configs/utkface.py", help="a get_config() file")
  parser.add_argument("--minutes", type=float, default=8.0, help="training budget, validations "
                      "and compilation included")
  parser.add_argument("--evals", type=int, default=8, help="validations (and checkpoints)")
  parser.add_argument("--probe_steps", type=int, default=400, help="steps of the timing run "
                      "(a multiple of 20)")
  parser.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                      help="a config field, as maskae.main's --config.KEY=VALUE (repeatable)")
  parser.add_argument("--skip_evaluation", action="store_true",
                      help="leave out the final --mode=evaluate --split=val")
  parser.add_argument("--results", default=os.path.join("benchmarks", "RESULTS.md"),
                      help="markdown file the figures are appended to ('' for none)")
  args = parser.parse_args()
  if os.path.exists(args.workdir):
    raise SystemExit(f"gpu_budget: --workdir {args.workdir} exists; name a new one")
  if args.probe_steps < 60 or args.probe_steps % 20:
    raise SystemExit(f"gpu_budget: --probe_steps={args.probe_steps}: a multiple of 20, >= 60")
  overrides = [f"--config.{item}" for item in args.override]
  load_log = report.LoadLog()
  print(report.machine(), flush=True)

  print(f"probe: {args.probe_steps} steps", flush=True)
  with tempfile.TemporaryDirectory(prefix="maskae-gpu-budget-") as scratch:
    probe = os.path.join(scratch, "probe")
    run_main(args.config, probe, [
        f"--config.train.steps={args.probe_steps}",
        f"--config.train.log_every={args.probe_steps // 20}",
        f"--config.train.eval_every={args.probe_steps // 4}",
        f"--config.train.checkpoint_every={args.probe_steps}", *overrides])
    costs = probe_costs(time_to_quality.metrics_log(probe)[1], args.probe_steps)
  load_log.sample()
  steps = size_steps(costs, args.minutes, args.evals)
  if not steps:
    raise SystemExit(f"gpu_budget: --minutes={args.minutes} holds no training: the start takes "
                     f"{costs['start']:.1f} s and a validation {costs['validation']:.1f} s")
  every = steps // args.evals
  sizing = (f"Probe ({args.probe_steps} steps): {1000 * costs['step']:.2f} ms a step, start "
            f"{costs['start']:.1f} s, validation {costs['validation']:.1f} s. Sized for "
            f"{args.minutes:g} minutes: train.steps={steps} (validating and checkpointing every "
            f"{every}).")
  print(sizing, flush=True)

  flags = [f"--config.train.steps={steps}", f"--config.train.eval_every={every}",
           f"--config.train.checkpoint_every={every}", *overrides]
  print(f"training in {args.workdir} (progress: its metrics.jsonl, TensorBoard)", flush=True)
  run_main(args.config, args.workdir, flags)
  if not args.skip_evaluation:
    run_main(args.config, args.workdir, ["--mode=evaluate", "--split=val", *flags])
  load_log.sample()
  curve = time_to_quality.validation_curve(args.workdir)
  rows = [[r["step"], r["time/train_seconds"] / 60, r["val/psnr_masked"], r["val/psnr"],
           r["val/ssim"]] for r in curve]
  body = (f"`{args.config}`{' with ' + ', '.join(args.override) if args.override else ''}.\n"
          f"{sizing}\n\n"
          f"{report.table(['step', 'minutes', 'masked PSNR (dB)', 'PSNR (dB)', 'SSIM'], rows)}")
  if not args.skip_evaluation:
    with open(os.path.join(workdir_lib.Workdir(args.workdir).eval_dir("val"),
                           "summary.json")) as f:
      scored = json.load(f)
    model = scored["model"]
    body += (f"\n\n`--mode=evaluate --split=val` (checkpoint {scored['checkpoint']['step']}): "
             f"masked PSNR {model['psnr_masked']:.2f} dB, PSNR {model['psnr']:.2f} dB, "
             f"SSIM {model['ssim']:.3f}.")
  print("\n" + body, flush=True)
  report.append(args.results, f"A {args.minutes:g}-minute training", body, load_log)


if __name__ == "__main__":
  main()
