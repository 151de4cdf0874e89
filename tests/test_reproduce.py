"""maskae.reproduce end to end: the pinned quick CPU config passes, a recorded run re-runs and
passes, a deliberately impossible expectation fails; the records of a real run; CPU determinism."""

import json
import os
import re
import subprocess
import sys

import pytest

from configs import paper
from configs.pinned import quick_cpu
from maskae import config_files, errors, reproduce

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_PINNED = '''
from configs import default


def get_config():
  config = default.get_config()
  config.data.image_size, config.data.num_train, config.data.num_val = 32, 16, 8
  config.data.batch_size, config.train.steps, config.train.num_grid_examples = 8, 2, 2
  return config


def get_expected():
  return {"step": (2, 0), "model.psnr_masked": (99.0, 0.1)}  # impossible
'''


def run_reproduce(*args):
  return subprocess.run([sys.executable, "-m", "maskae.reproduce", *map(str, args)], cwd=REPO,
                        capture_output=True, text=True, timeout=900)


def results(workdir) -> dict:
  """{metric: PASS | FAIL | TODO} of the re-run in `workdir` (its reproduce.json)."""
  with open(os.path.join(workdir, reproduce.RESULT_FILE)) as f:
    return {row["metric"]: row["result"] for row in json.load(f)["rows"]}


@pytest.fixture(scope="module")
def pinned_run(tmp_path_factory):
  """The pinned quick CPU config reproduced once: (result, workdir)."""
  workdir = tmp_path_factory.mktemp("pinned") / "run"
  return run_reproduce("configs/pinned/quick_cpu.py", "--workdir", workdir), workdir


@pytest.fixture(scope="module")
def rerun_of_workdir(pinned_run):
  """That run's workdir reproduced in turn: (result, workdir)."""
  _, first = pinned_run
  workdir = first.parent / "rerun"
  return run_reproduce(first, "--workdir", workdir), workdir


@pytest.mark.slow
def test_pinned_quick_cpu_config_reproduces(pinned_run):
  result, workdir = pinned_run
  assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
  assert results(workdir) == {key: "PASS" for key in quick_cpu.get_expected()}
  with open(workdir / reproduce.RESULT_FILE) as f:
    saved = json.load(f)
  # Compared with the run the values were pinned from (quick_cpu.RUN_RECORD), committed before
  # the commit that holds it.
  assert "environment differences:" in result.stdout
  assert any(line.startswith("git commit: ") for line in saved["environment_differences"])


@pytest.mark.slow
def test_run_records_what_it_was_made_of(pinned_run):
  _, workdir = pinned_run
  with open(workdir / "run_record.json") as f:
    record = json.load(f)
  assert record["config_file"] == "config.py" and record["config_changes"] == []
  assert not (workdir / "config.json").exists()  # config.py is the one record
  assert config_files.get_config(str(workdir / "config.py")) == quick_cpu.get_config()
  assert {"jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "numpy"} <= set(
      record["packages"])
  assert record["git"]["commit"] is None or re.fullmatch(r"[0-9a-f]{40}", record["git"]["commit"])
  assert record["git"]["commit"] is None or isinstance(record["git"]["dirty"], bool)
  assert record["data"]["train"] == {"fingerprint": "synthetic:seed=0:split=train:n=128",
                                     "num_examples": 128}
  assert record["data"]["val"]["num_examples"] == 32
  assert record["seeds"] == {"seed": 0}
  assert record["devices"]["platform"] == "cpu" and record["devices"]["process_count"] == 1
  assert record["start_step"] == 0 and "earlier_invocations" not in record


@pytest.mark.slow
def test_rerun_of_a_recorded_workdir_passes(rerun_of_workdir):
  result, workdir = rerun_of_workdir
  assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
  rows = results(workdir)
  assert rows["step"] == "PASS" and rows["model.psnr_masked"] == "PASS"
  assert rows["masked_input.ssim_masked"] == "PASS" and set(rows.values()) == {"PASS"}
  assert "environment differences:" in result.stdout


@pytest.mark.slow
def test_same_config_and_seed_give_identical_metrics_on_cpu(pinned_run, rerun_of_workdir):
  with open(pinned_run[1] / "metrics.json") as f:
    first = json.load(f)
  with open(rerun_of_workdir[1] / "metrics.json") as f:
    second = json.load(f)
  assert first["masked_input"] == second["masked_input"]
  assert first["model"] == second["model"]


def test_impossible_expectation_fails(tmp_path):
  pinned = tmp_path / "impossible.py"
  pinned.write_text(TINY_PINNED)
  result = run_reproduce(pinned, "--workdir", tmp_path / "run")
  assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
  assert results(tmp_path / "run") == {"step": "PASS", "model.psnr_masked": "FAIL"}
  assert "1 PASS, 1 FAIL" in result.stdout  # the table's last line


def test_bad_targets_fail_before_training(tmp_path):
  (tmp_path / "used").mkdir()
  (tmp_path / "used" / "x").write_text("")
  result = run_reproduce("configs/pinned/quick_cpu.py", "--workdir", tmp_path / "used")
  assert result.returncode != 0 and "is not empty" in result.stderr
  result = run_reproduce(tmp_path)
  assert result.returncode != 0 and "is not a finished maskae run" in result.stderr
  (tmp_path / "lost_record.py").write_text('RUN_RECORD = "gone.json"\n')
  with pytest.raises(errors.UserError, match="RUN_RECORD .*gone.json not found"):
    reproduce.pinned_record(str(tmp_path / "lost_record.py"))
  (tmp_path / "no_expected.py").write_text("def get_config():\n  return None\n")
  with pytest.raises(errors.UserError, match="must define get_expected"):
    reproduce.pinned_target(str(tmp_path / "no_expected.py"))
  (tmp_path / "bad_entry.py").write_text(
      "def get_config():\n  return None\n\n\ndef get_expected():\n  return {'model.mae': 0.1}\n")
  with pytest.raises(errors.UserError, match=r"get_expected\(\)\['model.mae'\] must be"):
    reproduce.pinned_target(str(tmp_path / "bad_entry.py"))


def test_compare_marks_missing_non_finite_and_unpinned_metrics():
  rows = reproduce.compare(
      {"model.psnr": (20.0, 0.5), "model.ssim": (0.5, 0.01), "model.mae": (0.1, 0.01),
       "model.nope": (1.0, 1.0), "model.mse": (None, 0.1)},
      {"model": {"psnr": 20.4, "ssim": 0.52, "mae": float("nan"), "mse": 0.02}})
  assert [row["result"] for row in rows] == ["PASS", "FAIL", "FAIL", "FAIL", "TODO"]
  table = reproduce.format_table(rows)
  assert "1 PASS, 3 FAIL, 1 TODO" in table and "+0.4" in table


def test_paper_config_is_pinned_with_the_metrics_of_its_recorded_run():
  pinned = os.path.join(REPO, "configs", "pinned", "paper.py")
  expected = reproduce.pinned_target(pinned)
  with open(os.path.join(REPO, "configs", "pinned", "paper.metrics.json")) as f:
    recorded = config_files.flatten(json.load(f))
  for key, (value, tolerance) in expected.items():
    assert value is not None and tolerance >= 0, key
    assert value == pytest.approx(recorded[key], abs=1e-4), key  # as recorded, to rounding
  with open(reproduce.pinned_record(pinned)) as f:
    record = json.load(f)
  assert record["devices"]["platform"] == "cpu" and record["start_step"] == 0
  assert any(arg.endswith("configs/pinned/paper.py") for arg in record["command"])
  assert config_files.get_config(pinned) == paper.get_config()
