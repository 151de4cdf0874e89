"""Shared fixtures: one tiny trained workdir for every test that needs a checkpoint."""

import fcntl

import pytest

from configs import default
from maskae import train

# The sizes `trained_workdir` was trained with (pass them again to evaluate it with the same
# model: tests/test_evaluate.py's FLAGS).
TINY_TRAIN = {"data.image_size": 32, "train.steps": 4, "train.eval_every": 4,
              "train.checkpoint_every": 4, "data.num_train": 32, "data.num_val": 8,
              "data.batch_size": 8}


@pytest.fixture(scope="session")
def trained_workdir(tmp_path_factory):
  """A workdir trained for 4 steps on 32 px procedural faces (checkpoint at step 4): trained once
  per test session, by the first pytest-xdist worker that asks, in its own process (the
  commands' own end-to-end tests launch them). Tests that change it work on a copy."""
  shared = tmp_path_factory.getbasetemp().parent  # the same folder for every worker
  workdir = shared / "trained_workdir"
  with open(shared / "trained_workdir.lock", "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)  # the other workers wait for the training to finish
    if not (workdir / "metrics.json").exists():
      config = default.get_config()
      for key, value in TINY_TRAIN.items():
        section, field = key.split(".")
        config[section][field] = value
      train.train_and_evaluate(config, str(workdir))
  return workdir
