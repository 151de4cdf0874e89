"""The loop's hooks: clu's ReportProgress and Profile, and what stands in for them without clu."""

import sys

import clu
import pytest
from absl import logging
from clu import periodic_actions

from configs import default
from maskae import errors, reporting


def _train(**fields):
  train = default.get_config().train
  train.update(fields)
  return train


def test_clu_hooks_report_progress_and_profile_when_asked(tmp_path):
  hooks = reporting.periodic_hooks(_train(), str(tmp_path))
  assert [type(h) for h in hooks] == [periodic_actions.ReportProgress]
  hooks = reporting.periodic_hooks(_train(profile_steps=2), str(tmp_path))
  assert [type(h) for h in hooks] == [periodic_actions.ReportProgress, periodic_actions.Profile]


def test_without_clu_progress_is_logged_and_profiling_refused(tmp_path, monkeypatch):
  monkeypatch.delattr(clu, "periodic_actions")  # `from clu import periodic_actions` now
  monkeypatch.setitem(sys.modules, "clu.periodic_actions", None)  # raises ImportError
  with pytest.raises(errors.ConfigError, match="train.profile_steps needs clu"):
    reporting.periodic_hooks(_train(profile_steps=2), str(tmp_path))
  [hook] = reporting.periodic_hooks(_train(steps=6, log_every=2), str(tmp_path))
  lines = []
  monkeypatch.setattr(logging, "info", lambda fmt, *args: lines.append(fmt % args))
  for step in range(1, 7):
    hook(step)
  assert [line.split(" (")[1].split(")")[0] for line in lines] == ["2/6", "4/6", "6/6"]
  assert all("steps/s" in line and "ETA" in line for line in lines)
