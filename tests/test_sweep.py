"""launch.sweep: aggregation, dry runs, failure isolation, skip-finished and resume, end to end."""

import concurrent.futures
import csv
import json
import os
import subprocess
import sys

import pytest
from PIL import Image

from launch import sweep
from maskae import errors

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--config.data.image_size=32", "--config.train.steps=2", "--config.data.num_train=16",
        "--config.data.num_val=8", "--config.data.batch_size=8",
        "--config.train.num_grid_examples=2"]
SWEEP_CONFIG = '''
from configs import default


def get_config():
  return default.get_config()


def get_sweep():
  return {trials!r}
'''


def write_sweep(tmp_path, trials) -> str:
  path = tmp_path / "my_sweep.py"
  path.write_text(SWEEP_CONFIG.format(trials=trials))
  return str(path)


def run_sweep(config, workdir, *flags):
  return subprocess.run([sys.executable, "-m", "launch.sweep", "--config", config,
                         "--workdir", str(workdir), *flags],
                        cwd=REPO, capture_output=True, text=True, timeout=900)


def fake_finished(trial, psnr_masked, mae):
  os.makedirs(trial.workdir, exist_ok=True)
  with open(os.path.join(trial.workdir, sweep.METRICS_FILE), "w") as f:
    json.dump({"step": 2, "split": "val", "model": {"psnr_masked": psnr_masked, "mae": mae},
               "masked_input": {"psnr_masked": 10.0}, "files": {"grid": "x.png"}}, f)


def test_aggregate_sorts_by_metric_and_plots_each_swept_key(tmp_path):
  config = write_sweep(tmp_path, [{"model.kernel_size": k, "model.latent_channels": c}
                                  for k in (3, 5) for c in (16, 128)])
  trials = sweep.plan(config, str(tmp_path / "s"), [])
  fake_finished(trials[0], 12.0, 0.30)
  fake_finished(trials[1], 15.0, 0.10)
  fake_finished(trials[3], 14.0, 0.20)
  os.makedirs(trials[2].workdir)
  with open(os.path.join(trials[2].workdir, sweep.TRIAL_FILE), "w") as f:
    json.dump({"status": "failed", "attempts": 1, "returncode": 1}, f)

  rows = sweep.aggregate(trials, str(tmp_path / "s"), "model.psnr_masked", "max")
  assert [(r.get("rank"), r["index"], r["status"]) for r in rows] == [
      (1, 1, "done"), (2, 3, "done"), (3, 0, "done"), (None, 2, "failed")]
  with open(tmp_path / "s" / "results.csv") as f:
    table = list(csv.DictReader(f))
  assert [r["name"] for r in table] == [trials[i].name for i in (1, 3, 0, 2)]
  assert table[0]["model.kernel_size"] == "3" and table[0]["model.latent_channels"] == "128"
  assert float(table[0]["model.psnr_masked"]) == 15.0 and table[3]["model.psnr_masked"] == ""
  assert "files.grid" not in table[0] and float(table[0]["masked_input.psnr_masked"]) == 10.0
  markdown = (tmp_path / "s" / "results.md").read_text()
  assert "3 done" in markdown and "1 failed" in markdown and "higher is better" in markdown
  assert markdown.index(trials[1].name) < markdown.index(trials[3].name) < markdown.index(
      trials[0].name) < markdown.index(trials[2].name)
  for key in ("kernel_size", "latent_channels"):
    with Image.open(tmp_path / "s" / f"plot_{key}.png") as image:
      assert image.format == "PNG" and image.size[0] > 100

  rows = sweep.aggregate(trials, str(tmp_path / "s"), "model.mae",
                         sweep.metric_mode("model.mae", "auto"))
  assert [r["index"] for r in rows if "rank" in r] == [1, 3, 0]
  with pytest.raises(errors.UserError, match="model.nope is not in .*available: .*model.psnr_masked"):
    sweep.aggregate(trials, str(tmp_path / "s"), "model.nope", "max")


def test_dry_run_lists_finished_trials_and_commands_with_extra_overrides(tmp_path):
  config = write_sweep(tmp_path, [{"model.kernel_size": 3}, {"model.kernel_size": 5}])
  trials = sweep.plan(config, str(tmp_path / "s"), [])
  fake_finished(trials[0], 12.0, 0.3)
  result = run_sweep(config, tmp_path / "s", "--dry_run", "--config.train.steps=2")
  assert result.returncode == 0, result.stderr
  lines = result.stdout.splitlines()
  assert lines[0].endswith(f"2 trials in {tmp_path / 's'}")
  assert lines[1] == f"{trials[0].name}: finished"
  assert lines[2].startswith(f"{trials[1].name}: ") and "-m maskae.main" in lines[2]
  assert "--config.train.steps=2 --config.model.kernel_size=5" in lines[2]
  assert not os.path.exists(tmp_path / "s" / sweep.SWEEP_FILE)  # a dry run writes nothing


def test_override_of_a_swept_key_and_a_changed_sweep_are_errors(tmp_path):
  config = write_sweep(tmp_path, [{"model.kernel_size": 3}, {"model.kernel_size": 5}])
  result = run_sweep(config, tmp_path / "s", "--gpus", "0,1", "--parallel", "2")
  assert result.returncode != 0 and "not both" in result.stderr
  result = run_sweep(config, tmp_path / "s", "--config.model.kernel_size=7")
  assert result.returncode != 0
  assert "model.kernel_size is set by the sweep" in result.stderr
  sweep.record_plan(config, str(tmp_path / "s"), [], sweep.plan(config, str(tmp_path / "s"), []))
  result = run_sweep(config, tmp_path / "s", "--only_trial", "0", "--config.train.steps=3")
  assert result.returncode != 0
  assert "holds a different sweep (extra_flags differ)" in result.stderr


def test_each_trial_config_is_validated_before_launch(tmp_path):
  config = write_sweep(tmp_path, [{"model.kernel_size": 0}, {"model.kernel_size": 3}])
  trials = sweep.plan(config, str(tmp_path / "s"), TINY)
  assert sweep.trial_problems(trials[0], config, TINY) == ["model.kernel_size=0: must be > 0"]
  assert sweep.trial_problems(trials[1], config, TINY) == []
  result = run_sweep(config, tmp_path / "s", "--dry_run", *TINY)
  assert result.returncode == 0, result.stderr[-2000:]
  assert f"{trials[0].name}: invalid config: model.kernel_size=0: must be > 0" in result.stdout


def test_trials_validated_in_parallel_threads_each_get_their_own_flags(tmp_path):
  """launch.sweep validates trials in its worker threads; config_flags reads sys.argv, which
  they share (a race once failed a valid trial with "Unknown command line flag")."""
  config = write_sweep(tmp_path, [{"model.kernel_size": k}
                                  for k in (3, "a", 5, "b", 7, "c", 9, "d", 11, "e")])
  trials = sweep.plan(config, str(tmp_path / "s"), TINY)
  expected = [sweep.trial_problems(t, config, TINY) for t in trials]
  assert expected[0] == [] and "invalid literal" in expected[1][0]
  for _ in range(3):
    with concurrent.futures.ThreadPoolExecutor(len(trials)) as pool:
      assert list(pool.map(lambda t: sweep.trial_problems(t, config, TINY), trials)) == expected


@pytest.mark.slow
def test_one_trial_sweep_end_to_end(tmp_path):
  config = write_sweep(tmp_path, [{"model.kernel_size": 3}])
  result = run_sweep(config, tmp_path / "s", *TINY, "--config.train.steps=1")
  assert result.returncode == 0, result.stdout + result.stderr
  with open(tmp_path / "s" / "results.csv") as f:
    [row] = list(csv.DictReader(f))
  assert row["status"] == "done" and float(row["model.psnr_masked"]) > 0
  assert row["step"] == "1"


@pytest.mark.slow
def test_sweep_end_to_end_isolates_failures_skips_finished_and_resumes(tmp_path):
  # Trial 2's override does not parse: it fails, the others still run, one per "GPU" (CPU here:
  # CUDA_VISIBLE_DEVICES is set but unused).
  config = write_sweep(tmp_path, [{"model.kernel_size": 3}, {"model.kernel_size": 5},
                                  {"model.kernel_size": "abc"}])
  workdir = tmp_path / "s"
  result = run_sweep(config, workdir, "--gpus", "0,1", *TINY)
  assert result.returncode == 1, result.stdout + result.stderr
  trials = sweep.plan(config, str(workdir), TINY)
  pinned = []
  for trial in trials[:2]:
    status = sweep.trial_status(trial)
    if status["status"] != "done":
      with open(os.path.join(trial.workdir, sweep.LOG_FILE), errors="replace") as f:
        pytest.fail(f"{trial.name} {status['status']} (exit {status.get('returncode')}); "
                    f"its log ends:\n{f.read()[-2500:]}", pytrace=False)
    with open(os.path.join(trial.workdir, "run_record.json")) as f:
      pinned.append(json.load(f)["env"]["CUDA_VISIBLE_DEVICES"])
    assert sweep.trial_status(trial)["gpu"] == pinned[-1]
  assert sorted(pinned) == ["0", "1"]
  with open(workdir / sweep.STATE_FILE) as f:
    state = json.load(f)
  assert [t["status"] for t in state["trials"]] == ["done", "done", "failed"]
  assert state["counts"] == {"done": 2, "failed": 1}
  with open(state["trials"][2]["log"]) as f:
    assert "not launched, invalid config: flag --config.model.kernel_size=abc" in f.read()
  assert sweep.trial_status(trials[2])["error"].startswith("invalid config: ")
  assert f"1 of 3 trials did not finish: {trials[2].name}" in result.stdout
  with open(workdir / "results.csv") as f:
    table = list(csv.DictReader(f))
  assert [r["status"] for r in table] == ["done", "done", "failed"]
  assert all(float(r["model.psnr_masked"]) > 0 for r in table[:2])
  assert os.path.exists(workdir / "plot_kernel_size.png")

  # Rerun: trial 1 is skipped, trial 0 (metrics.json removed) resumes from its final checkpoint
  # without training again, trial 2 is retried and fails again.
  os.remove(os.path.join(trials[0].workdir, sweep.METRICS_FILE))
  result = run_sweep(config, workdir, "--parallel", "2", *TINY)
  assert result.returncode == 1, result.stdout + result.stderr
  assert "3 trials in" in result.stdout and "1 finished already, 2 to run" in result.stdout
  attempts = [sweep.trial_status(t)["attempts"] for t in trials]
  assert attempts == [2, 1, 2]
  assert sweep.trial_status(trials[0])["status"] == "done"
  with open(os.path.join(trials[0].workdir, "run_record.json")) as f:
    record = json.load(f)
  assert record["start_step"] == 2 and len(record["earlier_invocations"]) == 1
  with open(os.path.join(trials[0].workdir, "metrics.jsonl")) as f:
    train_records = [r for r in map(json.loads, f) if "train/loss" in r]
  assert [r["step"] for r in train_records] == [2]  # the resumed run trained no further step

  # SLURM-array style: one trial by index (a finished one is a no-op), then the aggregation.
  result = run_sweep(config, workdir, "--only_trial", "1", *TINY)
  assert result.returncode == 0 and "finished already" in result.stdout
  result = run_sweep(config, workdir, "--aggregate_only", *TINY)
  assert result.returncode == 0 and os.path.exists(workdir / "results.md")
