"""Time to quality: validation masked-region PSNR against training wall time, from finished runs.

  python benchmarks/time_to_quality.py --workdirs runs/utkface,runs/utkface_paper
      [--labels "maskae best,paper autoencoder"] [--png docs/utkface_psnr_vs_time.png]
      [--results benchmarks/RESULTS.md]

Each workdir is a `python -m maskae.main` training run (its metrics.jsonl holds every validation
evaluation with `time/train_seconds`, the run's training wall time so far, evaluations included)
that was then evaluated with `--mode=evaluate --split=val` (its eval/val/summary.json holds the
classical baselines, told the true mask, on the same validation pairs). The first workdir's
OpenCV Telea score is the reference: the table gives, per run, the first training time at which
the validation masked-region PSNR reached Telea + 2 dB and Telea + 4 dB, and the last evaluation's
masked-region PSNR, whole-image PSNR and SSIM; the PNG plots the curves with those levels.
"""

import argparse
import json
import os
import sys

if __package__ in (None, ""):  # run as a file: the repository root holds `benchmarks`
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import report
from maskae import evaluate
from maskae import workdir as workdir_lib

MARGINS_DB = (2.0, 4.0)
REFERENCE = "telea"


def metrics_log(workdir: str) -> tuple[str, list[dict]]:
  """The path of `workdir`/metrics.jsonl and its records, in order."""
  path = workdir_lib.Workdir(workdir).file(workdir_lib.METRICS_LOG_FILE)
  if not os.path.isfile(path):
    raise SystemExit(f"time_to_quality: no such file: {path} (train the run first)")
  with open(path) as f:
    return path, [json.loads(line) for line in f if line.strip()]


def validation_curve(workdir: str) -> list[dict]:
  """The validation records of `workdir`/metrics.jsonl that carry a training time, by step."""
  path, records = metrics_log(workdir)
  curve = [r for r in records if "val/psnr_masked" in r and "time/train_seconds" in r]
  if not curve:
    raise SystemExit(f"time_to_quality: {path} has no validation records with "
                     "time/train_seconds (a run from before maskae recorded training time?)")
  return sorted(curve, key=lambda r: r["step"])


def baseline_scores(workdir: str) -> dict:
  """{method: metrics} of `workdir`/eval/val/summary.json."""
  path = os.path.join(workdir_lib.Workdir(workdir).eval_dir("val"), "summary.json")
  if not os.path.isfile(path):
    raise SystemExit(f"time_to_quality: no such file: {path} (run --mode=evaluate --split=val)")
  with open(path) as f:
    return evaluate.method_means(json.load(f))


def first_time_at(curve: list[dict], level: float) -> float | None:
  """Training seconds of the first evaluation with masked-region PSNR >= `level`, else None."""
  for record in curve:
    if record["val/psnr_masked"] >= level:
      return record["time/train_seconds"]
  return None


def plot(curves: dict, reference: float, path: str) -> None:
  """PNG of masked-region PSNR against training minutes, with the reference levels."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
  for label, curve in curves.items():
    ax.plot([r["time/train_seconds"] / 60 for r in curve],
            [r["val/psnr_masked"] for r in curve], marker="o", markersize=3, label=label)
  for margin, style in zip((0.0, *MARGINS_DB), (":", "--", "-.")):
    name = "Telea (true mask)" + (f" + {margin:g} dB" if margin else "")
    ax.axhline(reference + margin, color="gray", linestyle=style, linewidth=1, label=name)
  ax.set_xlabel("training wall time (minutes, evaluations included)")
  ax.set_ylabel("validation masked-region PSNR (dB)")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8, loc="lower right")
  fig.tight_layout()
  fig.savefig(path)
  plt.close(fig)


HEADER = ["run", "steps", "minutes", *(f"minutes to Telea + {m:g} dB" for m in MARGINS_DB),
          "PSNR masked", "PSNR", "SSIM"]


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--workdirs", required=True, help="comma-separated training workdirs")
  parser.add_argument("--labels", default="", help="comma-separated names (default: workdirs)")
  parser.add_argument("--png", default="", help="write the curves here")
  parser.add_argument("--results", default=report.RESULTS,
                      help="markdown file the table is appended to ('' for none)")
  args = parser.parse_args()
  workdirs = args.workdirs.split(",")
  labels = args.labels.split(",") if args.labels else workdirs
  if len(labels) != len(workdirs):
    raise SystemExit("time_to_quality: --labels needs one name per --workdirs entry")
  reference = baseline_scores(workdirs[0])[REFERENCE]["psnr_masked"]
  curves = {label: validation_curve(w) for label, w in zip(labels, workdirs)}
  rows = []
  for label, curve in curves.items():
    last = curve[-1]
    reached = [first_time_at(curve, reference + m) for m in MARGINS_DB]
    rows.append([label, last["step"], last["time/train_seconds"] / 60,
                 *("not reached" if t is None else t / 60 for t in reached),
                 last["val/psnr_masked"], last["val/psnr"], last["val/ssim"]])
  body = (f"Validation masked-region PSNR against training wall time (evaluations included) on "
          f"this machine; reference: OpenCV Telea told the true mask, {reference:.2f} dB on the "
          f"same validation pairs ({workdirs[0]}/eval/val/summary.json). The last three columns "
          f"are the last evaluation's.\n\n{report.table(HEADER, rows)}")
  if args.png:
    plot(curves, reference, args.png)
    body += f"\n\nCurves: {args.png}"
  print(body, flush=True)
  report.append(args.results, "Time to quality", body, report.LoadLog())


if __name__ == "__main__":
  main()
