"""Peak host memory (and device memory, where the backend reports it) of short training runs,
this checkout against an earlier revision.

  python benchmarks/memory.py [--configs default,utkface] [--steps 100,30] [--before 065b144]
      [--results benchmarks/RESULTS.md] [--quick]

Each run is `python -m maskae.main --config configs/<name>.py` for --steps steps (one evaluation
and one checkpoint at the end), in a fresh workdir, as its own process; its peak resident set
size comes from the kernel (os.wait4). The --before revision runs from a temporary git worktree
of it (its code and configs, this checkout's data paths) where TensorFlow is installed. Device
memory is the first device's peak_bytes_in_use recorded in metrics.json (GPU / TPU; the CPU
backend reports none: there device buffers are host memory, inside the RSS).
"""

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile

if __package__ in (None, ""):  # run as a file: the repository root holds `benchmarks`
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import report
from maskae import workdir as workdir_lib

FULL = dict(configs="default,utkface", steps="100,30", before="065b144")
QUICK = dict(configs="default", steps="2", before="")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEADER = ["config", "steps", "code", "peak host RSS (MiB)", "device peak (MiB)", "wall s"]
# Runs maskae.main from the code root given first (its maskae and configs packages first on the
# path), in this checkout's directory so that relative data paths resolve as for this checkout.
LAUNCH = ("import runpy, sys; root = sys.argv.pop(1); sys.path.insert(0, root); "
          "sys.argv[0] = 'maskae.main'; runpy.run_module('maskae.main', run_name='__main__')")


def run(code_root: str, config: str, steps: int, workdir: str, extra=()) -> dict:
  """One training run: its peak RSS (MiB), device peak (MiB or None), wall seconds."""
  import time  # pylint: disable=import-outside-toplevel
  command = [sys.executable, "-c", LAUNCH, code_root, "--config",
             os.path.join(code_root, "configs", f"{config}.py"), "--workdir", workdir,
             f"--config.train.steps={steps}", f"--config.train.eval_every={steps}",
             f"--config.train.checkpoint_every={steps}", *extra]
  start = time.perf_counter()
  with open(os.path.join(os.path.dirname(workdir), f"{config}.log"), "w") as log:
    process = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    _, status, usage = os.wait4(process.pid, 0)
  if os.waitstatus_to_exitcode(status):
    raise SystemExit(f"memory: {' '.join(command)} failed; see {log.name}")
  with open(os.path.join(workdir, workdir_lib.METRICS_FILE)) as f:
    peak = json.load(f).get("device_memory_peak_bytes")
  return {"rss": usage.ru_maxrss / 1024, "device": None if peak is None else peak / 2**20,
          "seconds": time.perf_counter() - start}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--configs", help=f"configs/<name>.py to run ({FULL['configs']})")
  parser.add_argument("--steps", help=f"steps per config ({FULL['steps']})")
  parser.add_argument("--before", help=f"earlier git revision ('' for none; {FULL['before']})")
  args = report.parse_args(parser, FULL, QUICK)
  configs, steps = args.configs.split(","), [int(s) for s in args.steps.split(",")]
  if len(steps) != len(configs):
    raise SystemExit(f"--steps: {len(steps)} values for {len(configs)} configs")
  load_log = report.LoadLog()
  rows = []
  with tempfile.TemporaryDirectory(prefix="maskae-memory-") as tmp:
    roots = {"this checkout": REPO}
    if args.before and importlib.util.find_spec("tensorflow") is not None:
      worktree = os.path.join(tmp, "before")
      subprocess.run(["git", "-C", REPO, "worktree", "add", "--detach", worktree, args.before],
                     check=True, capture_output=True)
      roots[args.before] = worktree
    try:
      for config, count in zip(configs, steps):
        for label, root in roots.items():
          workdir = os.path.join(tmp, label.replace(" ", "_"), config, "run")
          os.makedirs(os.path.dirname(workdir))
          result = run(root, config, count, workdir)
          load_log.sample()
          device = "n/a" if result["device"] is None else result["device"]
          rows.append([config, count, label, result["rss"], device, result["seconds"]])
          print(f"  {config} ({label}): peak RSS {result['rss']:.0f} MiB", flush=True)
    finally:
      if len(roots) > 1:
        subprocess.run(["git", "-C", REPO, "worktree", "remove", "--force", roots[args.before]],
                       check=False, capture_output=True)
  body = (f"Peak memory of `python -m maskae.main --config configs/<config>.py` for the given "
          f"steps (one evaluation and checkpoint at the end), one process per run, this "
          f"checkout against {args.before or '(none)'}.\n\n{report.table(HEADER, rows)}")
  print("\n" + body, flush=True)
  report.append(args.results, "Peak memory of training runs", body, load_log)


if __name__ == "__main__":
  main()
