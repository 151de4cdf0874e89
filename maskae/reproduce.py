"""Re-runs a pinned config or a recorded run and checks that it reaches the same metrics.

  python -m maskae.reproduce configs/pinned/quick_cpu.py [--workdir DIR]
  python -m maskae.reproduce runs/default [--rtol 0.01] [--atol 0]

A pinned config file defines get_config() and get_expected(): {"model.psnr_masked": (value,
tolerance), ...}, keys into the run's metrics.json (a value of None marks a metric not yet
measured). It may name in RUN_RECORD the run_record.json of the run its values come from (a file
beside it); the re-run's differences from it in package versions, git commit and devices are
listed. Given a run workdir instead, the recorded config (<workdir>/config.py) is re-run and
every metric of its metrics.json is expected within max(atol, rtol * |value|); differences in
package versions, git commit and devices against its run_record.json are listed.

Training always starts from scratch in a fresh workdir (default runs/reproduce/<name>-<time>).
Prints expected vs obtained side by side; exits 0 when every metric passes, 1 on any FAIL (or when
the re-run itself fails), 2 when none fails but some have no pinned value.
"""

import datetime
import json
import math
import os
import shlex
import subprocess
import sys

from absl import app, flags

from maskae import config_checks, config_files, errors
from maskae import workdir as workdir_lib
from maskae.errors import UserError

RESULT_FILE = "reproduce.json"
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def pinned_target(path: str) -> dict:
  """The expected metrics {key: (value | None, tolerance)} of a pinned config file."""
  module = config_files.load_module(path)
  for name in ("get_config", "get_expected"):
    if not hasattr(module, name):
      raise UserError(f"{path}: a pinned config must define {name}()")
  expected = module.get_expected()
  if not isinstance(expected, dict) or not expected:
    raise UserError(f"{path}: get_expected() must return a non-empty dict "
                     "{metric key: (value, tolerance)}")
  for key, entry in expected.items():
    if not (isinstance(entry, tuple) and len(entry) == 2 and _is_number(entry[1])
            and (entry[0] is None or _is_number(entry[0]))):
      raise UserError(f"{path}: get_expected()[{key!r}] must be (value or None, tolerance), "
                       f"got {entry!r}")
  return expected


def pinned_record(path: str) -> str | None:
  """The run_record.json a pinned config's values were measured in (RUN_RECORD), if it names one."""
  name = getattr(config_files.load_module(path), "RUN_RECORD", None)
  if name is None:
    return None
  record = os.path.join(os.path.dirname(os.path.abspath(path)), name)
  if not os.path.exists(record):
    raise UserError(f"{path}: RUN_RECORD {record} not found")
  return record


def workdir_target(workdir_path: str, rtol: float, atol: float) -> tuple[str, dict]:
  """(config file, expected) of a finished run: its config.py and every metric of its
  metrics.json, within max(atol, rtol * |value|)."""
  run_dir = workdir_lib.Workdir(workdir_path)
  config_path = run_dir.file(workdir_lib.CONFIG_FILE)
  metrics_path = run_dir.file(workdir_lib.METRICS_FILE)
  for path in (config_path, metrics_path):
    if not os.path.exists(path):
      raise UserError(f"{path} not found: {workdir_path} is not a finished maskae run")
  with open(metrics_path) as f:
    metrics = json.load(f)
  expected = {key: (value, max(atol, rtol * abs(value)))
              for key, value in config_files.flatten(metrics).items()
              if key.startswith(("model.", "masked_input.")) and _is_number(value)}
  expected["step"] = (metrics["step"], 0)
  return config_path, expected


def rerun(config_path: str, workdir: str) -> dict:
  """Trains `config_path` from scratch in `workdir` through maskae.main; returns metrics.json."""
  env = dict(os.environ)
  env["PYTHONPATH"] = os.pathsep.join(filter(None, [REPO_ROOT, env.get("PYTHONPATH")]))
  command = [sys.executable, "-m", "maskae.main", "--config", config_path, "--workdir", workdir]
  print(f"reproduce: {shlex.join(command)}", flush=True)
  returncode = subprocess.run(command, env=env, check=False).returncode
  metrics_path = os.path.join(workdir, workdir_lib.METRICS_FILE)
  if returncode or not os.path.exists(metrics_path):
    raise SystemExit(f"reproduce: the re-run failed (exit status {returncode}, no {metrics_path})")
  with open(metrics_path) as f:
    return json.load(f)


def compare(expected: dict, summary: dict) -> list[dict]:
  """One row per expected metric: expected, tolerance, obtained, difference, PASS/FAIL/TODO."""
  obtained = config_files.flatten(summary)
  rows = []
  for key, (value, tolerance) in expected.items():
    got = obtained.get(key)
    if value is None:
      status = "TODO"
    elif not _is_number(got) or not math.isfinite(got):
      status = "FAIL"
    else:
      status = "PASS" if abs(got - value) <= tolerance else "FAIL"
    diff = got - value if _is_number(got) and value is not None else None
    rows.append({"metric": key, "expected": value, "tolerance": tolerance, "obtained": got,
                 "difference": diff, "result": status})
  return rows


def format_table(rows: list[dict]) -> str:
  """Expected vs obtained, side by side, with the result of each metric and a total line."""
  width = max(len("metric"), *(len(row["metric"]) for row in rows))
  lines = [f"{'metric':<{width}}  {'expected':>12}  {'tolerance':>10}  {'obtained':>12}  "
           f"{'difference':>11}  result"]
  for row in rows:
    lines.append(f"{row['metric']:<{width}}  {_cell(row['expected'], 12)}  "
                 f"{_cell(row['tolerance'], 10)}  {_cell(row['obtained'], 12)}  "
                 f"{_cell(row['difference'], 11, signed=True)}  {row['result']}")
  counts = {status: sum(row["result"] == status for row in rows)
            for status in ("PASS", "FAIL", "TODO")}
  lines.append(", ".join(f"{n} {status}" for status, n in counts.items() if n or status != "TODO"))
  return "\n".join(lines)


def _cell(value, width: int, signed: bool = False) -> str:
  if value is None:
    return f"{'-':>{width}}"
  if not _is_number(value):
    return f"{str(value):>{width}}"
  return f"{value:>+{width}.6g}" if signed else f"{value:>{width}.6g}"


def _is_number(value) -> bool:
  return isinstance(value, (int, float)) and not isinstance(value, bool)


def environment_differences(before: dict, after: dict) -> list[str]:
  """Package, git and device differences between two run records."""
  lines = []
  old, new = before.get("packages", {}), after.get("packages", {})
  for name in sorted(set(old) | set(new)):
    if old.get(name) != new.get(name):
      lines.append(f"package {name}: {old.get(name, 'absent')} -> {new.get(name, 'absent')}")
  for section, keys in (("git", ("commit", "dirty", "diff_sha256")),
                        ("devices", ("platform", "device_kind", "count", "process_count"))):
    for key in keys:
      was, now = before.get(section, {}).get(key), after.get(section, {}).get(key)
      if was != now:
        lines.append(f"{section} {key}: {was} -> {now}")
  for split in sorted(set(before.get("data", {})) | set(after.get("data", {}))):
    was = before.get("data", {}).get(split, {}).get("fingerprint")
    now = after.get("data", {}).get(split, {}).get("fingerprint")
    if was != now:
      lines.append(f"data {split}: {was} -> {now}")
  return lines


def fresh_workdir(target: str, workdir: str | None) -> str:
  """The re-run's workdir: given (must be absent or empty) or runs/reproduce/<name>-<time>."""
  if workdir is None:
    name = os.path.splitext(os.path.basename(os.path.normpath(target)))[0]
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    workdir = os.path.join("runs", "reproduce", f"{name}-{stamp}")
  if os.path.exists(workdir) and os.listdir(workdir):
    raise UserError(f"--workdir {workdir} is not empty; a reproduction trains from scratch "
                          "in a fresh directory")
  return workdir


def define_flags() -> None:
  """The command's flags (defined only when run as a command, so importing this is free)."""
  flags.DEFINE_string("workdir", None, "Fresh directory for the re-run (must not exist or be "
                      "empty). Default: runs/reproduce/<name>-<time>.")
  flags.DEFINE_float("rtol", 0.01, "Relative tolerance for a run workdir's metrics.")
  flags.DEFINE_float("atol", 0.0, "Absolute tolerance for a run workdir's metrics.")


def main(argv):
  FLAGS = flags.FLAGS  # pylint: disable=invalid-name
  if len(argv) != 2:
    raise app.UsageError("give one pinned config file or run workdir to reproduce")
  target = argv[1]
  if os.path.isdir(target):
    config_path, expected = workdir_target(target, FLAGS.rtol, FLAGS.atol)
    before_path = os.path.join(target, workdir_lib.RUN_RECORD_FILE)
  else:
    config_path, expected = target, pinned_target(target)
    before_path = pinned_record(target)
  config_checks.validate(config_files.get_config(config_path), where=config_path)
  workdir = fresh_workdir(target, FLAGS.workdir)
  summary = rerun(os.path.abspath(config_path), os.path.abspath(workdir))
  rows = compare(expected, summary)
  print(f"\nreproduce {target} (re-run in {workdir}):")
  print(format_table(rows))
  differences = []
  if before_path and os.path.exists(before_path):
    with open(before_path) as f:
      before = json.load(f)
    with open(os.path.join(workdir, workdir_lib.RUN_RECORD_FILE)) as f:
      after = json.load(f)
    differences = environment_differences(before, after)
    print("environment differences: " + ("none" if not differences else ""))
    for line in differences:
      print(f"  {line}")
  workdir_lib.write_json(os.path.join(workdir, RESULT_FILE),
              {"target": os.path.abspath(target), "rows": rows,
               "environment_differences": differences})
  results = {row["result"] for row in rows}
  if "FAIL" in results:
    return 1
  if "TODO" in results:
    print(f"not reproduced: some metrics of {target} have no pinned value yet (TODO)")
    return 2
  return 0


if __name__ == "__main__":
  define_flags()
  errors.run(main, "maskae.reproduce")
