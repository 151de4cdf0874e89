"""Orbax checkpoints of a run: keep the last K plus the best by a validation metric, resume."""

import os

import jax
import ml_collections
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers

CHECKPOINT_DIR = "checkpoints"


def create_manager(workdir: str, train: ml_collections.ConfigDict) -> ocp.CheckpointManager:
  """A CheckpointManager under workdir/checkpoints with async saves, last-K + best retention."""
  best_metric = train.best_metric
  policy = checkpoint_managers.AnyPreservationPolicy([
      checkpoint_managers.LatestN(n=train.keep_checkpoints),
      checkpoint_managers.BestN(get_metric_fn=lambda m: m[best_metric],
                                reverse=train.best_mode == "min", n=1,
                                keep_checkpoints_without_metrics=False),
  ])
  # best_fn makes the manager write each save's metrics to disk (without it they live only in
  # memory): best_step() and the BestN policy then also work after a restart.
  options = ocp.CheckpointManagerOptions(preservation_policy=policy,
                                         enable_async_checkpointing=True,
                                         best_fn=lambda m: m[best_metric],
                                         best_mode=train.best_mode)
  return ocp.CheckpointManager(os.path.abspath(os.path.join(workdir, CHECKPOINT_DIR)),
                               options=options, item_names=("state", "meta"))


def save(manager: ocp.CheckpointManager, step: int, state, meta: dict,
         metrics: dict | None = None) -> None:
  """Saves state and a JSON meta record (asynchronously) at `step`, with optional eval metrics."""
  manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                             meta=ocp.args.JsonSave(meta)),
               metrics=metrics)


def restore(manager: ocp.CheckpointManager, step: int, target_state):
  """Restores (state, meta) at `step` into the structure and shardings of `target_state`."""
  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target_state)
  restored = manager.restore(step, args=ocp.args.Composite(
      state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()))
  return restored["state"], restored["meta"]
