"""Sweep specs: product / zip / fixed expansion, validation, trial names and flags."""

import os

import pytest

from launch import sweep, sweep_spec
from launch.sweep_spec import fixed, product, zipit

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_product_zip_fixed_expand_in_order():
  trials = product([
      sweep_spec.sweep("model.kernel_size", [3, 5]),
      zipit([sweep_spec.sweep("train.learning_rate", [1e-3, 3e-3]),
             sweep_spec.sweep("train.warmup_steps", [0, 100])]),
      fixed("train.schedule", "cosine"),
  ])
  assert trials == [
      {"model.kernel_size": 3, "train.learning_rate": 1e-3, "train.warmup_steps": 0,
       "train.schedule": "cosine"},
      {"model.kernel_size": 3, "train.learning_rate": 3e-3, "train.warmup_steps": 100,
       "train.schedule": "cosine"},
      {"model.kernel_size": 5, "train.learning_rate": 1e-3, "train.warmup_steps": 0,
       "train.schedule": "cosine"},
      {"model.kernel_size": 5, "train.learning_rate": 3e-3, "train.warmup_steps": 100,
       "train.schedule": "cosine"},
  ]
  assert sweep_spec.swept_keys(trials) == ["model.kernel_size", "train.learning_rate",
                                          "train.warmup_steps"]


@pytest.mark.parametrize("build, message", [
    (lambda: zipit([sweep_spec.sweep("a.b", [1, 2]), sweep_spec.sweep("a.c", [1])]),
     "different lengths"),
    (lambda: product([sweep_spec.sweep("a.b", [1]), fixed("a.b", 2)]), "set by two parts"),
    (lambda: sweep_spec.sweep("a.b", []), "no values"),
    (lambda: sweep_spec.sweep("a..b", [1]), "not a dotted config path"),
    (lambda: sweep_spec.validate([{"a.b": 1}, {"a.b": 1}]), "repeats"),
    (lambda: sweep_spec.validate([{"a.b": 1}, {"a.c": 1}]), "sets keys"),
    (lambda: sweep_spec.validate([]), "non-empty list"),
])
def test_bad_specs_are_one_line_errors(build, message):
  with pytest.raises(ValueError, match=message):
    build()


def test_flags_round_trip_values_as_config_flags_parse_them():
  assert sweep_spec.to_flags({"model.features": (16, 32), "model.pooling": "none",
                              "model.skip_connections": True, "train.learning_rate": 1e-4}) == [
      "--config.model.features=(16, 32)", "--config.model.pooling=none",
      "--config.model.skip_connections=True", "--config.train.learning_rate=0.0001"]


def test_trial_names_use_short_unambiguous_keys_and_safe_characters():
  keys = ["model.strides", "data.strides", "model.features", "data.folder"]
  trial = {"model.strides": 2, "data.strides": 1, "model.features": (16, 32),
           "data.folder": "a b/c"}
  assert sweep_spec.trial_name(3, trial, keys, 10) == (
      "trial_003_model.strides=2,data.strides=1,features=16-32,folder=a_b_c")
  assert sweep_spec.trial_name(12, {}, [], 1500) == "trial_0012"


def test_sweep_arch_config_expands_to_distinct_named_trials():
  trials = sweep.plan(os.path.join(REPO, "configs", "sweep_arch.py"), "/tmp/sweep", [])
  assert len(trials) == 3 * 2 * 4 * 2
  assert len({t.name for t in trials}) == len(trials)
  assert {t.overrides["model.latent_channels"] for t in trials} == {16, 32, 64, 128}
  assert {t.overrides["model.kernel_size"] for t in trials} == {3, 5, 7}
  assert {t.overrides["model.strides"] for t in trials} == {1, 2}
  assert {(t.overrides["train.learning_rate"], t.overrides["train.warmup_steps"])
          for t in trials} == {(1e-3, 0), (3e-3, 100)}
  assert all(t.overrides["train.schedule"] == "cosine" for t in trials)
  assert trials[5].name == ("trial_005_kernel_size=3,strides=1,latent_channels=64,"
                            "learning_rate=0.003,warmup_steps=100")
  assert trials[5].workdir == os.path.join("/tmp/sweep", trials[5].name)
