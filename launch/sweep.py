"""Runs every trial of a sweep config, each in its own workdir, and aggregates the results.

  python -m launch.sweep --config configs/sweep_arch.py --workdir runs/sweep1 --gpus 0,1,2,3
  python -m launch.sweep --config configs/sweep_arch.py --workdir runs/sweep1 --parallel 2 \\
      --config.train.steps=20        # extra --config.* overrides apply to every trial

The sweep config file defines get_config() (the base) and get_sweep() (a list of
{dotted.key: value} overrides, built with launch/sweep_spec.py). Each trial runs
`python -m maskae.main --config <sweep config> --workdir <workdir>/<trial name> --config.k=v ...`
as a subprocess, one per GPU (pinned with CUDA_VISIBLE_DEVICES) or --parallel at a time on CPU,
with its output in <trial dir>/train.log. A trial is finished when its workdir has metrics.json:
rerunning the same command skips finished trials and resumes the others from their checkpoints.
A failed trial is recorded and the sweep goes on; the command then exits with status 1. Each
trial's config is validated (maskae.config_checks) before it is launched: an invalid one fails at
once, with its bad keys in its record and log, without starting a process.

Files in the sweep workdir: sweep.json (the sweep, fixed by the first run), sweep_state.json (the
status of every trial), results.csv and results.md (trials sorted by --metric) and
plot_<key>.png (the metric against each swept key). SLURM arrays run one trial per task with
--only_trial (see launch/slurm_sweep.sh), then --aggregate_only.
"""

import concurrent.futures
import csv
import dataclasses
import datetime
import io
import json
import math
import os
import queue
import re
import shlex
import subprocess
import sys
import threading
import time

from absl import app, flags
from ml_collections import config_flags

from launch import sweep_spec
from maskae import config_checks, config_files, errors
from maskae import workdir as workdir_lib
from maskae.errors import UserError

SWEEP_FILE = "sweep.json"
STATE_FILE = "sweep_state.json"
TRIAL_FILE = "trial.json"
LOG_FILE = "train.log"
_PARSE_LOCK = threading.Lock()
METRICS_FILE = workdir_lib.METRICS_FILE
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

def define_flags() -> None:
  """The command's flags (defined only when run as a command, so importing this is free)."""
  flags.DEFINE_string("config", None, "Sweep config file: get_config() and get_sweep().",
                      required=True)
  flags.DEFINE_string("workdir", None, "Sweep directory; trial i runs in a subdirectory named "
                      "from its overrides. Default: runs/<config file name>.")
  flags.DEFINE_list("gpus", [], "GPU ids; one trial at a time on each, pinned with "
                    "CUDA_VISIBLE_DEVICES.")
  flags.DEFINE_integer("parallel", 1, "Trials at a time when no --gpus are given.",
                       lower_bound=1)
  flags.DEFINE_string("metric", "model.psnr_masked", "Validation metric (a dotted key of the "
                      "trials' metrics.json) to sort and plot by.")
  flags.DEFINE_enum("metric_mode", "auto", ["auto", "max", "min"], "Whether higher or lower is "
                    "better; auto: lower for mae/mse/loss, else higher.")
  flags.DEFINE_integer("only_trial", None, "Run only the trial with this index (e.g. "
                       "$SLURM_ARRAY_TASK_ID), without aggregating.")
  flags.DEFINE_bool("aggregate_only", False, "Run nothing: write the results of the trials "
                    "finished so far.")
  flags.DEFINE_bool("dry_run", False, "Print every trial's command (or that it is finished) and "
                    "run nothing.")
  flags.DEFINE_bool("describe", False, "Print the number of trials and the sweep workdir "
                    "(space-separated) and exit.")


@dataclasses.dataclass(frozen=True)
class Trial:
  """One trial of a sweep: its index, directory name, config overrides and workdir."""
  index: int
  name: str
  overrides: dict  # {dotted.key: value}
  workdir: str

  @property
  def finished(self) -> bool:
    return os.path.exists(os.path.join(self.workdir, METRICS_FILE))


def parse_flags(argv: list[str]) -> tuple[list[str], list[str]]:
  """absl flags, with `--config.<key>=<value>` arguments set aside for every trial."""
  rest, extra = [], []
  args = iter(argv)
  for arg in args:
    if arg.startswith("--config."):
      extra.append(arg if "=" in arg else f"{arg}={next(args, '')}")
    else:
      rest.append(arg)
  try:
    return flags.FLAGS(rest), extra
  except flags.Error as error:
    errors.fail(str(error), "launch.sweep")
    raise  # not reached


def load_sweep(config_path: str) -> list[dict]:
  """The validated trials (override dicts) of a sweep config file."""
  module = config_files.load_module(config_path)
  for name in ("get_config", "get_sweep"):
    if not hasattr(module, name):
      raise UserError(f"{config_path}: a sweep config must define {name}()")
  return sweep_spec.validate(module.get_sweep())


def plan(config_path: str, sweep_dir: str, extra_flags: list[str]) -> list[Trial]:
  """The trials of the sweep, named and placed in `sweep_dir`."""
  overrides = load_sweep(config_path)
  keys = {key for trial in overrides for key in trial}
  for flag in extra_flags:
    key = flag[len("--config."):].split("=", 1)[0]
    if key in keys:
      raise UserError(f"{flag}: {key} is set by the sweep in {config_path}; remove the flag")
  swept = sweep_spec.swept_keys(overrides)
  trials = []
  for index, trial in enumerate(overrides):
    name = sweep_spec.trial_name(index, trial, swept, len(overrides))
    trials.append(Trial(index, name, trial, os.path.join(sweep_dir, name)))
  return trials


def trial_config(trial: Trial, config_path: str, extra_flags: list[str]):
  """The resolved config a trial's maskae.main will run (the same flags, parsed the same way)."""
  argv = ["maskae.main", "--config", config_path, *extra_flags,
          *sweep_spec.to_flags(trial.overrides)]
  # Trials are validated in parallel threads; config_flags reads sys.argv (one for all) and
  # defines the override flags as it parses: one parse at a time.
  with _PARSE_LOCK:
    values = flags.FlagValues()
    config_flags.DEFINE_config_file("config", config_path, flag_values=values, lock_config=True)
    saved, sys.argv = sys.argv, argv  # config_flags reads the overrides from sys.argv
    try:
      values(argv)
      return values.config
    except Exception as e:  # pylint: disable=broad-except  # config_flags raises several kinds
      raise UserError(errors.flag_error_line(e, argv)) from None
    finally:
      sys.argv = saved


def trial_problems(trial: Trial, config_path: str, extra_flags: list[str]) -> list[str]:
  """What is wrong with a trial's config (config_checks.problems), [] if nothing."""
  try:
    return config_checks.problems(trial_config(trial, config_path, extra_flags))
  except UserError as e:
    return [str(e)]


def record_plan(config_path: str, sweep_dir: str, extra_flags: list[str],
                trials: list[Trial]) -> None:
  """Writes sweep.json at the first run; later runs must describe the same sweep."""
  base = config_files.get_config(config_path)
  record = {"config": config_path, "base_config": json.loads(base.to_json_best_effort()),
            "extra_flags": extra_flags,
            "trials": [{"index": t.index, "name": t.name, "flags": sweep_spec.to_flags(t.overrides)}
                       for t in trials]}
  path = os.path.join(sweep_dir, SWEEP_FILE)
  if os.path.exists(path):
    with open(path) as f:
      recorded = json.load(f)
    differ = workdir_lib.differences(recorded, record)
    if differ:
      raise UserError(f"{path}: this sweep workdir holds a different sweep ({', '.join(differ)} "
                       "differ); use a new --workdir")
    return
  os.makedirs(sweep_dir, exist_ok=True)
  workdir_lib.write_json(path, record)


def trial_command(trial: Trial, config_path: str, extra_flags: list[str]) -> list[str]:
  """The maskae.main command line of a trial."""
  return ([sys.executable, "-m", "maskae.main", "--config", config_path, "--workdir",
           trial.workdir] + extra_flags + sweep_spec.to_flags(trial.overrides))


def trial_status(trial: Trial) -> dict:
  """The trial's record: status done (metrics.json exists), pending, or as last recorded."""
  path = os.path.join(trial.workdir, TRIAL_FILE)
  record = {"status": "pending", "attempts": 0}
  if os.path.exists(path):
    with open(path) as f:
      record = json.load(f)
  if trial.finished:
    record["status"] = "done"
  return record


def run_trial(trial: Trial, config_path: str, extra_flags: list[str], gpu: str | None) -> dict:
  """Runs one trial to completion (resuming from its checkpoint); returns its record."""
  os.makedirs(trial.workdir, exist_ok=True)
  command = trial_command(trial, config_path, extra_flags)
  env = dict(os.environ)
  env["PYTHONPATH"] = os.pathsep.join(filter(None, [REPO_ROOT, env.get("PYTHONPATH")]))
  if gpu is not None:
    env["CUDA_VISIBLE_DEVICES"] = gpu
  record = {"status": "running", "attempts": trial_status(trial)["attempts"] + 1, "gpu": gpu,
            "command": shlex.join(command), "started": _now()}
  record_path = os.path.join(trial.workdir, TRIAL_FILE)
  problems = trial_problems(trial, config_path, extra_flags)
  if problems:  # validated before launching: an invalid trial fails at once, the others go on
    error = f"invalid config: {'; '.join(problems)}"
    with open(os.path.join(trial.workdir, LOG_FILE), "a") as log:
      log.write(f"=== launch.sweep attempt {record['attempts']} at {record['started']}: not "
                f"launched, {error}\n")
    record.update(status="failed", returncode=None, error=error, finished=_now(), seconds=0.0)
    workdir_lib.write_json(record_path, record)
    return record
  workdir_lib.write_json(record_path, record)
  start = time.time()
  with open(os.path.join(trial.workdir, LOG_FILE), "a") as log:
    log.write(f"=== launch.sweep attempt {record['attempts']} at {record['started']}"
              f"{'' if gpu is None else f' on GPU {gpu}'}: {record['command']}\n")
    log.flush()
    returncode = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                                check=False).returncode
  status = "done" if trial.finished else ("failed" if returncode else "stopped")
  record.update(status=status, returncode=returncode, finished=_now(),
                seconds=round(time.time() - start, 1))
  workdir_lib.write_json(record_path, record)
  return record


def run_trials(trials: list[Trial], config_path: str, extra_flags: list[str], slots: list,
               on_done) -> None:
  """Runs `trials`, one per slot at a time (a slot is a GPU id, or None on CPU); calls
  on_done(trial, record) in this thread as each ends."""
  free = queue.Queue()
  for slot in slots:
    free.put(slot)

  def work(trial):
    slot = free.get()
    try:
      return run_trial(trial, config_path, extra_flags, slot)
    finally:
      free.put(slot)

  pool = concurrent.futures.ThreadPoolExecutor(len(slots))
  try:
    futures = {pool.submit(work, trial): trial for trial in trials}
    for future in concurrent.futures.as_completed(futures):
      on_done(futures[future], future.result())
  finally:
    pool.shutdown(wait=True, cancel_futures=True)


def write_state(sweep_dir: str, trials: list[Trial]) -> dict:
  """sweep_state.json: every trial's status, attempts, exit code and log."""
  entries = []
  for trial in trials:
    record = trial_status(trial)
    entries.append({"index": trial.index, "name": trial.name, "status": record["status"],
                    "attempts": record["attempts"], "returncode": record.get("returncode"),
                    "seconds": record.get("seconds"), "workdir": trial.workdir,
                    "log": os.path.join(trial.workdir, LOG_FILE)})
  counts = {}
  for entry in entries:
    counts[entry["status"]] = counts.get(entry["status"], 0) + 1
  state = {"updated": _now(), "counts": counts, "trials": entries}
  workdir_lib.write_json(os.path.join(sweep_dir, STATE_FILE), state)
  return state


def metric_mode(metric: str, mode: str) -> str:
  """max or min; `auto` is min for error-like metrics (mae, mse, loss), else max."""
  if mode != "auto":
    return mode
  return "min" if re.search(r"(mae|mse|loss|error)", metric.rsplit(".", 1)[-1]) else "max"


def aggregate(trials: list[Trial], sweep_dir: str, metric: str, mode: str) -> list[dict]:
  """Writes results.csv, results.md and plot_<key>.png; returns the rows, best first."""
  swept = sweep_spec.swept_keys([t.overrides for t in trials])
  rows = []
  for trial in trials:
    row = {"index": trial.index, "name": trial.name, "status": trial_status(trial)["status"]}
    row.update({key: trial.overrides[key] for key in swept})
    if row["status"] == "done":
      with open(os.path.join(trial.workdir, METRICS_FILE)) as f:
        summary = json.load(f)
      row.update({k: v for k, v in config_files.flatten(summary).items()
                  if isinstance(v, (int, float)) and not isinstance(v, bool)})
    rows.append(row)
  done = [row for row in rows if row["status"] == "done"]
  if done and not any(metric in row for row in done):
    available = sorted(k for k in done[0] if k not in ("index", "name", "status", *swept))
    raise UserError(f"--metric {metric} is not in {done[0]['name']}/{METRICS_FILE}; "
                     f"available: {', '.join(available)}")
  sign = -1 if mode == "max" else 1
  ranked = sorted((row for row in done if math.isfinite(row.get(metric, math.nan))),
                  key=lambda row: (sign * row[metric], row["index"]))
  for rank, row in enumerate(ranked, 1):
    row["rank"] = rank
  rows = ranked + [row for row in rows if "rank" not in row]
  _write_csv(os.path.join(sweep_dir, "results.csv"), rows, swept, metric)
  _write_markdown(os.path.join(sweep_dir, "results.md"), rows, swept, metric, mode)
  short = sweep_spec.short_names(swept)
  for key in swept:
    if ranked:
      plot_metric(ranked, key, metric, os.path.join(sweep_dir, f"plot_{short[key]}.png"))
  return rows


def _write_csv(path: str, rows: list[dict], swept: list[str], metric: str) -> None:
  fixed = ["rank", "index", "name", "status", *swept, metric]
  others = sorted({k for row in rows for k in row} - set(fixed))
  out = io.StringIO()
  writer = csv.DictWriter(out, fieldnames=fixed + others, restval="")
  writer.writeheader()
  for row in rows:
    writer.writerow({k: sweep_spec.format_value(v) if k in swept else v for k, v in row.items()})
  workdir_lib.write_text(path, out.getvalue())


def _write_markdown(path: str, rows: list[dict], swept: list[str], metric: str,
                    mode: str) -> None:
  short = sweep_spec.short_names(swept)
  counts = {}
  for row in rows:
    counts[row["status"]] = counts.get(row["status"], 0) + 1
  lines = [f"# Sweep results ({len(rows)} trials: "
           + ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) + ")", "",
           f"Sorted by `{metric}` ({'higher' if mode == 'max' else 'lower'} is better).", "",
           "| rank | trial | " + " | ".join(short[k] for k in swept) + f" | {metric} | status |",
           "|---:|---|" + "---|" * len(swept) + "---:|---|"]
  for row in rows:
    value = row.get(metric)
    cells = [str(row.get("rank", "")), row["name"],
             *(sweep_spec.format_value(row[k]) for k in swept),
             "" if value is None else f"{value:.4f}", row["status"]]
    lines.append("| " + " | ".join(cells) + " |")
  workdir_lib.write_text(path, "\n".join(lines) + "\n")


def plot_metric(rows: list[dict], key: str, metric: str, path: str) -> None:
  """PNG of `metric` against the values of `key` (each trial a point, the mean per value a line)."""
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  values = [row[key] for row in rows]
  ys = [row[metric] for row in rows]
  numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
  levels = sorted(set(values)) if numeric else list(dict.fromkeys(map(sweep_spec.format_value,
                                                                      values)))
  xs = values if numeric else [levels.index(sweep_spec.format_value(v)) for v in values]
  positions = levels if numeric else list(range(len(levels)))
  means = [sum(y for x, y in zip(xs, ys) if x == p) / xs.count(p) for p in positions]
  fig, ax = plt.subplots(figsize=(6, 4))
  ax.scatter(xs, ys, alpha=0.6, label="trial")
  ax.plot(positions, means, "-o", color="C1", label="mean")
  if numeric and min(levels) > 0 and max(levels) / min(levels) >= 8:
    ax.set_xscale("log", base=2)
  ax.set_xticks(positions, [sweep_spec.format_value(p) for p in levels])
  ax.set_xlabel(key)
  ax.set_ylabel(metric)
  ax.set_title(f"{metric} vs {key} ({len(rows)} trials)", fontsize=10)
  ax.grid(alpha=0.3)
  ax.legend()
  fig.tight_layout()
  png = io.BytesIO()
  fig.savefig(png, format="png", dpi=100)
  workdir_lib.write_bytes(path, png.getvalue())
  plt.close(fig)


def _now() -> str:
  return datetime.datetime.now().isoformat(timespec="seconds")


def _last_line(path: str) -> str:
  with open(path, errors="replace") as f:
    lines = [line.strip() for line in f if line.strip()]
  return lines[-1] if lines else ""


def _report(trial: Trial, record: dict, metric: str, position: str) -> None:
  if record["status"] == "done":
    with open(os.path.join(trial.workdir, METRICS_FILE)) as f:
      value = config_files.flatten(json.load(f)).get(metric)
    shown = f"{value:.4f}" if isinstance(value, (int, float)) else "missing"
    print(f"{position} {trial.name}: done in {record['seconds']:.0f}s, {metric} {shown}",
          flush=True)
  else:
    log = os.path.join(trial.workdir, LOG_FILE)
    print(f"{position} {trial.name}: {record['status'].upper()} (exit {record['returncode']}) "
          f"after {record['seconds']:.0f}s: {_last_line(log)[:200]}\n    log: {log}", flush=True)


def main(args) -> int:
  argv, extra_flags = args
  FLAGS = flags.FLAGS  # pylint: disable=invalid-name
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  if FLAGS.gpus and FLAGS.parallel != 1:
    raise app.UsageError("give --gpus (one trial per GPU) or --parallel (CPU), not both")
  config_path = os.path.abspath(FLAGS.config)
  stem = os.path.splitext(os.path.basename(config_path))[0]
  sweep_dir = os.path.abspath(FLAGS.workdir or os.path.join("runs", stem))
  trials = plan(config_path, sweep_dir, extra_flags)
  mode = metric_mode(FLAGS.metric, FLAGS.metric_mode)
  if FLAGS.describe:
    print(len(trials), sweep_dir)
    return 0
  if FLAGS.dry_run:
    print(f"sweep {config_path}: {len(trials)} trials in {sweep_dir}")
    for trial in trials:
      problems = [] if trial.finished else trial_problems(trial, config_path, extra_flags)
      print(f"{trial.name}: " + ("finished" if trial.finished else
                                 f"invalid config: {'; '.join(problems)}" if problems else
                                 shlex.join(trial_command(trial, config_path, extra_flags))))
    return 0
  if FLAGS.aggregate_only:
    write_state(sweep_dir, trials)
    aggregate(trials, sweep_dir, FLAGS.metric, mode)
    print(f"results: {os.path.join(sweep_dir, 'results.md')}")
    return 0
  record_plan(config_path, sweep_dir, extra_flags, trials)
  if FLAGS.only_trial is not None:
    if not 0 <= FLAGS.only_trial < len(trials):
      raise app.UsageError(f"--only_trial {FLAGS.only_trial}: the sweep has trials "
                           f"0..{len(trials) - 1}")
    trial = trials[FLAGS.only_trial]
    if trial.finished:
      print(f"{trial.name}: finished already")
      return 0
    record = run_trial(trial, config_path, extra_flags, None)
    write_state(sweep_dir, trials)
    _report(trial, record, FLAGS.metric, f"[trial {trial.index}]")
    return 0 if record["status"] == "done" else 1

  todo = [trial for trial in trials if not trial.finished]
  slots = list(FLAGS.gpus) or [None] * FLAGS.parallel
  print(f"sweep {config_path}: {len(trials)} trials in {sweep_dir}; "
        f"{len(trials) - len(todo)} finished already, {len(todo)} to run, "
        f"{len(slots)} at a time" + (f" on GPUs {','.join(FLAGS.gpus)}" if FLAGS.gpus else ""),
        flush=True)
  write_state(sweep_dir, trials)
  ended = []

  def on_done(trial, record):
    ended.append(trial)
    write_state(sweep_dir, trials)
    _report(trial, record, FLAGS.metric, f"[{len(ended)}/{len(todo)}]")

  run_trials(todo, config_path, extra_flags, slots, on_done)
  state = write_state(sweep_dir, trials)
  rows = aggregate(trials, sweep_dir, FLAGS.metric, mode)
  print(f"results: {os.path.join(sweep_dir, 'results.md')} "
        f"(and results.csv, plot_*.png); state: {os.path.join(sweep_dir, STATE_FILE)}")
  if rows and "rank" in rows[0]:
    print(f"best: {rows[0]['name']} {FLAGS.metric} {rows[0][FLAGS.metric]:.4f}")
  failed = [entry for entry in state["trials"] if entry["status"] != "done"]
  if failed:
    print(f"{len(failed)} of {len(trials)} trials did not finish: "
          + ", ".join(entry["name"] for entry in failed), flush=True)
    return 1
  return 0


if __name__ == "__main__":
  define_flags()
  errors.run(main, "launch.sweep", flags_parser=parse_flags)
