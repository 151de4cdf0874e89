"""Orbax checkpoints of a run: keep the last K plus the best by a validation metric, and restore
the newest one that restores and fits, skipping (never deleting) those that do not."""

import os
import shutil

import jax
import ml_collections
import orbax.checkpoint as ocp
from absl import logging
from etils import epath
from orbax.checkpoint import checkpoint_managers

from maskae.errors import CheckpointError

TMP_SUFFIX = ".orbax-checkpoint-tmp"  # orbax's name for a save not yet committed


def create_manager(directory: str, train: ml_collections.ConfigDict,
                   read_only: bool = False) -> ocp.CheckpointManager:
  """A CheckpointManager of `directory` with async saves and last-K + best retention;
  `read_only` (evaluation, inference) neither creates, saves nor deletes anything."""
  best_metric = train.best_metric
  policy = checkpoint_managers.AnyPreservationPolicy([
      checkpoint_managers.LatestN(n=train.keep_checkpoints),
      checkpoint_managers.BestN(get_metric_fn=lambda m: m[best_metric],
                                reverse=train.best_mode == "min", n=1,
                                keep_checkpoints_without_metrics=False),
  ])
  # best_fn makes the manager write each save's metrics to disk (without it they live only in
  # memory): best_step() and the BestN policy then also work after a restart. A save cut short
  # (disk full, kill) leaves a temporary directory, removed when a trainer next opens it.
  options = ocp.CheckpointManagerOptions(
      preservation_policy=None if read_only else policy, enable_async_checkpointing=not read_only,
      best_fn=lambda m: m[best_metric], best_mode=train.best_mode, read_only=read_only,
      save_interval_steps=0 if read_only else 1,
      create=not read_only, cleanup_tmp_directories=not read_only)
  return ocp.CheckpointManager(directory, options=options, item_names=("state", "meta"))


def save(manager: ocp.CheckpointManager, step: int, state, meta: dict,
         metrics: dict | None = None) -> None:
  """Saves state and a JSON meta record (asynchronously) at `step`, with optional eval metrics."""
  manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                             meta=ocp.args.JsonSave(meta)),
               metrics=metrics)


def check_params_fit(step_dir: str, params) -> None:
  """Raises CheckpointError naming the first parameter whose stored shape differs from the
  model's (read from the checkpoint's metadata, before any array is read)."""
  stored_tree = ocp.StandardCheckpointHandler().metadata(epath.Path(step_dir) / "state")
  stored = {jax.tree_util.keystr(path[1:]): tuple(leaf.shape)
            for path, leaf in jax.tree_util.tree_flatten_with_path(stored_tree)[0]
            if path and getattr(path[0], "key", None) == "params"}
  wanted = {jax.tree_util.keystr(path): tuple(leaf.shape)
            for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]}
  for name in sorted(set(stored) | set(wanted)):
    if stored.get(name) != wanted.get(name):
      raise CheckpointError(
          f"it does not fit the model of the config: parameter params{name} is "
          f"{stored.get(name, 'absent')} in the checkpoint, {wanted.get(name, 'absent')} in the "
          "model")


def restore(manager: ocp.CheckpointManager, step: int, target):
  """Restores (state, meta) at `step` into the structure and shardings of `target`: a train
  state, or `{"params": params}` (abstract arrays will do) to read the parameters alone."""
  params = target["params"] if isinstance(target, dict) else target.params
  check_params_fit(os.path.join(str(manager.directory), str(step)), params)
  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
  if isinstance(target, dict):  # the optimizer's moments stay on disk
    state = ocp.args.PyTreeRestore(
        abstract, restore_args=ocp.checkpoint_utils.construct_restore_args(abstract),
        partial_restore=True)
  else:
    state = ocp.args.StandardRestore(abstract)
  restored = manager.restore(step, args=ocp.args.Composite(state=state,
                                                           meta=ocp.args.JsonRestore()))
  return restored["state"], restored["meta"]


def _reason(error: Exception) -> str:
  text = " ".join(str(error).split())
  return (f"{type(error).__name__}: {text}" if not isinstance(error, CheckpointError)
          else text)[:300] or type(error).__name__


def no_checkpoint(directory) -> CheckpointError:
  """The error for a checkpoint directory with no checkpoint (or none at all)."""
  return CheckpointError(f"no checkpoint in {directory}; train first with "
                         "python -m maskae.main --config ... --workdir ...")


def restore_newest(manager: ocp.CheckpointManager, target, steps=None):
  """(state, meta, step, skipped) of the first of `steps` (default: every saved step, newest
  first) that restores into `target` (see `restore`) and fits it; `skipped` lists (step, reason) of the
  ones before it, each also logged in one line. CheckpointError when none restores."""
  steps = sorted(manager.all_steps(), reverse=True) if steps is None else list(steps)
  if not steps:
    raise no_checkpoint(manager.directory)
  skipped = []
  for step in steps:
    try:
      state, meta = restore(manager, step, target)
    except Exception as e:  # pylint: disable=broad-except  # any failure: try the next older
      skipped.append((step, _reason(e)))
      logging.warning("checkpoint %s/%d skipped (kept on disk): %s", manager.directory, step,
                      skipped[-1][1])
      continue
    return state, meta, step, skipped
  raise CheckpointError(f"no checkpoint in {manager.directory} restores: " +
                        "; ".join(f"step {step}: {reason}" for step, reason in skipped))


def remove_partial_saves(directory: str) -> None:
  """Removes the temporary folders of saves that were cut short (disk full, an error)."""
  if os.path.isdir(directory):
    for name in os.listdir(directory):
      if TMP_SUFFIX in name:
        shutil.rmtree(os.path.join(directory, name), ignore_errors=True)


def set_aside(directory: str, steps, destination: str) -> None:
  """Moves the step folders `steps` of `directory` into `destination` (kept for inspection,
  out of the manager's sight, so training can save those steps again)."""
  os.makedirs(destination, exist_ok=True)
  for step in steps:
    target = os.path.join(destination, str(step))
    suffix = 0
    while os.path.exists(target):
      suffix += 1
      target = os.path.join(destination, f"{step}.{suffix}")
    os.rename(os.path.join(directory, str(step)), target)
    logging.warning("checkpoint %s/%d moved to %s (it does not restore)", directory, step, target)
