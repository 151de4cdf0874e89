"""Evaluation metrics by mask coverage: how each method's scores fall as the mask grows.

  python benchmarks/by_coverage.py --eval_dir runs/utkface/eval/val [--edges 0.2,0.24,...]

Reads the examples.csv that `python -m maskae.main --mode=evaluate` writes (every example x
method, with the example's masked fraction) and prints, per coverage bin, the number of examples
and each method's mean PSNR masked, whole-image PSNR and SSIM. Bins are [edge_i, edge_i+1), with
0 and 1 added at the ends.
"""

import argparse
import csv
import os
import sys

if __package__ in (None, ""):  # run as a file: the repository root holds `benchmarks`
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np

from benchmarks import report

METRICS = ("psnr_masked", "psnr", "ssim")


def read_examples(path: str) -> dict[str, dict[str, np.ndarray]]:
  """examples.csv as {method: {column: values in example order}}."""
  if not os.path.isfile(path):
    raise SystemExit(f"by_coverage: no evaluation at {path}: run --mode=evaluate first")
  columns: dict[str, dict[str, list]] = {}
  keys = ("index", "mask_fraction", *METRICS)
  with open(path, newline="") as f:
    reader = csv.DictReader(f)
    missing = [key for key in ("method", *keys) if key not in (reader.fieldnames or ())]
    if missing:
      raise SystemExit(f"by_coverage: {path} has no column {missing[0]!r}")
    for row in reader:
      method = columns.setdefault(row["method"], {})
      for key in keys:
        method.setdefault(key, []).append(float(row[key]))
  return {method: {k: np.asarray(v) for k, v in values.items()}
          for method, values in columns.items()}


def coverage_table(examples: dict, methods: list[str], edges: list[float]) -> str:
  """The markdown table: one row per coverage bin, `METRICS` per method."""
  missing = [m for m in methods if m not in examples]
  if missing:
    raise SystemExit(f"by_coverage: no method {missing[0]!r} in the evaluation; "
                     f"found: {', '.join(sorted(examples))}")
  bounds = [0.0, *edges, 1.0 + 1e-9]
  header = ["masked fraction", "examples"]
  header += [f"{method} {metric}" for method in methods for metric in METRICS]
  rows = []
  for lo, hi in zip(bounds, bounds[1:]):
    chosen = {m: (examples[m]["mask_fraction"] >= lo) & (examples[m]["mask_fraction"] < hi)
              for m in methods}
    count = int(chosen[methods[0]].sum())
    if not count:
      continue
    row = [f"{lo:.2f}-{min(hi, 1.0):.2f}", count]
    row += [_cell(metric, examples[m][metric][chosen[m]]) for m in methods for metric in METRICS]
    rows.append(row)
  everything = ["all", len(examples[methods[0]]["index"])]
  everything += [_cell(metric, examples[m][metric]) for m in methods for metric in METRICS]
  return report.table(header, [*rows, everything])


def _cell(metric: str, values: np.ndarray) -> str:
  """The mean, dB to 0.01 and SSIM to 0.001."""
  return f"{values.mean():.3f}" if metric == "ssim" else f"{values.mean():.2f}"


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--eval_dir", required=True, help="workdir/eval/<split> of an evaluation")
  parser.add_argument("--methods", default="model,telea,tv",
                      help="comma-separated method names of examples.csv")
  parser.add_argument("--edges", default="0.2,0.24,0.28,0.32,0.36",
                      help="comma-separated inner bin edges (masked fraction)")
  args = parser.parse_args()
  edges = sorted(float(e) for e in args.edges.split(","))
  examples = read_examples(os.path.join(args.eval_dir, "examples.csv"))
  print(f"{args.eval_dir}: mean per bin\n\n"
        f"{coverage_table(examples, args.methods.split(','), edges)}", flush=True)


if __name__ == "__main__":
  main()
