"""Run records: the loadable config.py, package versions, git state, seeds, earlier invocations."""

import json
import math
import re
import subprocess

import numpy as np
import pytest

from configs import default
from maskae import config_files, errors, input_pipeline, run_records, workdir


def test_config_source_round_trips_through_a_loadable_file(tmp_path):
  config = default.get_config()
  config.model.features = (8, 16, 32)
  config.data.mask.styles = ("surgical",)
  path = tmp_path / "config.py"
  path.write_text(config_files.to_source(config, "A test config."))
  loaded = config_files.get_config(str(path))
  assert loaded == config
  assert loaded.model.features == (8, 16, 32) and isinstance(loaded.data.mask.styles, tuple)
  config.train.learning_rate = float("nan")  # non-finite floats are written as nan / inf
  path.write_text(config_files.to_source(config, "A NaN learning rate."))
  assert math.isnan(config_files.get_config(str(path)).train.learning_rate)
  config.hook = print
  with pytest.raises(ValueError, match="not expressible as Python literals"):
    config_files.to_source(config, "bad")


def test_load_module_errors_name_the_file(tmp_path):
  with pytest.raises(errors.UserError, match="no such config file: .*missing.py"):
    config_files.load_module(str(tmp_path / "missing.py"))
  (tmp_path / "empty.py").write_text("X = 1\n")
  with pytest.raises(errors.UserError, match="empty.py: a config file must define get_config"):
    config_files.get_config(str(tmp_path / "empty.py"))


def test_package_versions_cover_the_stack():
  versions = run_records.package_versions()
  for name in ("python", "jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "numpy",
               "ml-collections"):
    assert re.match(r"\d+\.\d+", versions[name]), name
  assert "tensorflow" in versions or "tensorflow-cpu" in versions


def git(repo, *args):
  subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def test_git_state_reports_commit_and_dirty_changes(tmp_path):
  assert run_records.git_state(str(tmp_path))["commit"] is None  # not a repository
  git(tmp_path, "init", "-q")
  (tmp_path / "a.py").write_text("x = 1\n")
  git(tmp_path, "add", "a.py")
  git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c")
  clean = run_records.git_state(str(tmp_path))
  assert re.fullmatch(r"[0-9a-f]{40}", clean["commit"]) and clean["dirty"] is False
  assert clean["diff_sha256"] is None
  (tmp_path / "a.py").write_text("x = 2\n")
  dirty = run_records.git_state(str(tmp_path))
  assert dirty["commit"] == clean["commit"] and dirty["dirty"] is True
  assert dirty["changed_paths"] == ["a.py"] and re.fullmatch(r"[0-9a-f]{64}", dirty["diff_sha256"])


def test_write_records_the_run_and_keeps_earlier_invocations(tmp_path):
  config = default.get_config()
  config.seed = 7
  faces = {"train": input_pipeline.FaceSet(np.zeros((3, 4, 4, 3), np.uint8),
                                           np.zeros((3, 8, 2), np.float32), "synthetic:train"),
           "val": input_pipeline.FaceSet(np.zeros((2, 4, 4, 3), np.uint8),
                                         np.zeros((2, 8, 2), np.float32), "synthetic:val")}
  run_dir = workdir.Workdir(str(tmp_path))
  run_records.write(run_dir, config, faces, 0, [])
  record = run_records.write(run_dir, config, faces, 5, ["train.steps"])
  with open(tmp_path / workdir.RUN_RECORD_FILE) as f:
    assert json.load(f) == record
  assert record["start_step"] == 5
  assert [r["start_step"] for r in record["earlier_invocations"]] == [0]
  assert record["data"] == {"train": {"fingerprint": "synthetic:train", "num_examples": 3},
                            "val": {"fingerprint": "synthetic:val", "num_examples": 2}}
  assert record["seeds"] == {"seed": 7}
  assert record["devices"]["platform"] == "cpu" and record["devices"]["count"] >= 1
  assert record["packages"]["jax"] and record["config_file"] == workdir.CONFIG_FILE
  assert record["config_changes"] == ["train.steps"]
  assert record["earlier_invocations"][0]["config_changes"] == []
