"""A workdir's trained model for inference: its recorded config, its best (else latest)
checkpoint, and prediction. No TensorFlow here, so `maskae.unmask` runs without it."""

import dataclasses
import os
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from maskae import checkpointing, models, workdir


@dataclasses.dataclass(frozen=True)
class TrainedModel:
  """Restored parameters and how to apply them."""
  model: models.Autoencoder
  params: Any
  step: int
  selected: str  # "best" (by train.best_metric), "latest", or "older" (the newer did not restore)
  directory: str  # the checkpoint directory restored
  predict: Callable[[np.ndarray], np.ndarray]  # float [N,S,S,3] in [0, 1] -> model output


def restore(run_dir: workdir.Workdir, config) -> TrainedModel:
  """Restores the parameters (not the optimizer state) of the best checkpoint of `run_dir` for
  the model of `config` (its recorded config), else of the newest that restores; skipped ones
  are logged, none is changed."""
  directory = run_dir.checkpoint_dir
  if not os.path.isdir(directory):  # checked first: orbax is not asked to open a missing one
    raise checkpointing.no_checkpoint(directory)
  model = models.create_model(config.model)
  size = config.data.image_size
  device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=device),
                          jax.eval_shape(model.init, jax.random.key(0),
                                         jnp.zeros((1, size, size, 3)))["params"])
  manager = checkpointing.create_manager(directory, config.train, read_only=True)
  try:
    best, latest = manager.best_step(), manager.latest_step()
    steps = sorted(manager.all_steps(), reverse=True)
    if best is not None:
      steps = [best] + [s for s in steps if s != best]
    state, _, step, _ = checkpointing.restore_newest(manager, {"params": abstract}, steps)
  finally:
    manager.close()
  selected = "best" if step == best else ("latest" if step == latest else "older")
  apply = jax.jit(lambda params, images: model.apply({"params": params}, images)["output"])
  params = state["params"]
  return TrainedModel(model, params, step, selected, f"{directory}/{step}",
                      lambda images: np.asarray(apply(params, np.asarray(images, np.float32))))
