"""Shared fixtures: one tiny trained workdir for every test that needs a checkpoint."""

import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The flags that made `trained_workdir` (pass them again to evaluate it with the same model).
TINY_TRAIN_FLAGS = ("--config.data.image_size=32", "--config.train.steps=4",
                    "--config.train.eval_every=4", "--config.train.checkpoint_every=4",
                    "--config.data.num_train=32", "--config.data.num_val=8",
                    "--config.data.batch_size=8")


@pytest.fixture(scope="session")
def trained_workdir(tmp_path_factory):
  """A workdir trained for 4 steps on 32 px procedural faces (checkpoint at step 4)."""
  workdir = tmp_path_factory.mktemp("trained") / "run"
  result = subprocess.run(
      [sys.executable, "-m", "maskae.main", "--config", "configs/default.py",
       "--workdir", str(workdir), *TINY_TRAIN_FLAGS],
      cwd=REPO, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  return workdir
