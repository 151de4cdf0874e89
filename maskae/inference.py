"""A workdir's trained model for inference: its recorded config, its best (else latest)
checkpoint, and prediction. No TensorFlow here, so `maskae.unmask` runs without it."""

import dataclasses
import json
import os
from typing import Any, Callable

import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp
from etils import epath

from maskae import checkpointing, models, train_step

CONFIG_FILE = "config.json"  # written by maskae.train.check_config


class CheckpointError(Exception):
  """A workdir with no usable checkpoint: none saved, or one that does not fit the config."""


@dataclasses.dataclass(frozen=True)
class TrainedModel:
  """Restored parameters and how to apply them."""
  model: models.Autoencoder
  params: Any
  step: int
  selected: str  # "best" (by train.best_metric) or "latest"
  directory: str  # the checkpoint directory restored
  predict: Callable[[np.ndarray], np.ndarray]  # float [N,S,S,3] in [0, 1] -> model output


def read_config(workdir: str) -> ml_collections.ConfigDict:
  """The config a workdir was trained with (its config.json)."""
  path = os.path.join(workdir, CONFIG_FILE)
  if not os.path.isfile(path):
    raise CheckpointError(f"{path} not found: {workdir} is not a trained maskae workdir "
                          "(train one with python -m maskae.main --workdir ...)")
  try:
    with open(path) as f:
      return ml_collections.ConfigDict(json.load(f))
  except (ValueError, TypeError) as e:
    raise CheckpointError(f"{path}: not a valid maskae config ({e})") from None


def check_matches(config: ml_collections.ConfigDict, workdir: str) -> None:
  """Raises CheckpointError naming the keys where `config`'s model (model.*, data.image_size)
  differs from the one the workdir was trained with; other keys may differ freely."""
  recorded = read_config(workdir).to_dict()
  current = json.loads(config.to_json_best_effort())
  differ = [f"model.{k}" for k in sorted(set(recorded["model"]) | set(current["model"]))
            if recorded["model"].get(k) != current["model"].get(k)]
  if recorded["data"]["image_size"] != current["data"]["image_size"]:
    differ.append("data.image_size")
  if differ:
    raise CheckpointError(
        f"{os.path.join(workdir, CONFIG_FILE)}: the workdir's model was trained with a different "
        f"config; keys that differ: {', '.join(differ)} (use the config it was trained with)")


def choose_step(manager) -> tuple[int, str]:
  """(step, "best" | "latest"): the best saved step by the tracked metric, else the latest."""
  latest = manager.latest_step()
  if latest is None:
    raise CheckpointError(f"no checkpoint in {manager.directory}; train first with "
                          "python -m maskae.main --config ... --workdir ...")
  best = manager.best_step()
  return (best, "best") if best is not None else (latest, "latest")


def _check_param_shapes(step_dir: str, params) -> None:
  """Raises CheckpointError naming the first parameter whose stored shape differs from the
  model's (checked from the checkpoint's metadata, before any array is read)."""
  stored_tree = ocp.StandardCheckpointHandler().metadata(epath.Path(step_dir) / "state")
  stored = {jax.tree_util.keystr(path[1:]): tuple(leaf.shape)
            for path, leaf in jax.tree_util.tree_flatten_with_path(stored_tree)[0]
            if path and getattr(path[0], "key", None) == "params"}
  wanted = {jax.tree_util.keystr(path): tuple(leaf.shape)
            for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]}
  for name in sorted(set(stored) | set(wanted)):
    if stored.get(name) != wanted.get(name):
      raise CheckpointError(
          f"checkpoint {step_dir} does not fit the model of the config: parameter "
          f"params{name} is {stored.get(name, 'absent')} in the checkpoint, "
          f"{wanted.get(name, 'absent')} in the model")


def restore(workdir: str, config: ml_collections.ConfigDict) -> TrainedModel:
  """Restores the best (else latest) checkpoint of `workdir` for the model of `config`."""
  directory = os.path.abspath(os.path.join(workdir, checkpointing.CHECKPOINT_DIR))
  if not os.path.isdir(directory):  # checked first: the manager would create it
    raise CheckpointError(f"no checkpoint in {directory}; train first with "
                          "python -m maskae.main --config ... --workdir ...")
  model = models.create_model(config.model)
  state = train_step.create_train_state(model, config, jax.random.key(0))
  manager = checkpointing.create_manager(workdir, config.train)
  try:
    step, selected = choose_step(manager)
    _check_param_shapes(os.path.join(directory, str(step)), state.params)
    try:
      state, _ = checkpointing.restore(manager, step, state)
    except (ValueError, KeyError, TypeError, FileNotFoundError) as e:
      reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
      raise CheckpointError(f"checkpoint {directory}/{step} does not fit the model of the "
                            f"config ({type(e).__name__}: {reason[:300]})") from None
  finally:
    manager.close()
  apply = jax.jit(lambda params, images: model.apply({"params": params}, images)["output"])
  params = state.params
  return TrainedModel(model, params, step, selected, f"{directory}/{step}",
                      lambda images: np.asarray(apply(params, np.asarray(images, np.float32))))
