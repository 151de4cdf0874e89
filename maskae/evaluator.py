"""One split's fixed evaluation pairs, scored for given parameters: the one evaluator.

Built once per (config, split, mesh), as big_vision builds each of `config.evals`. Its pairs are
rendered on the devices inside the eval step, which also scores the masked input (the do-nothing
baseline): that is the only place it is scored. Training keeps the means and a grid from it
(`metrics.json`); `maskae.evaluate` adds the classical baselines and writes the reports
(`eval/<split>/summary.json`); both summaries start with `summary()`.
"""

from typing import Any, Callable, Iterator

import jax
import ml_collections
import numpy as np

from maskae import input_pipeline, train_step

INPUT_PREFIX = "input/"  # the eval step's metrics of the masked input
GRID_IMAGES = ("masked", "output", "clean")


class Evaluator:
  """Per-example metrics and images of a model on the fixed pairs of `split`."""

  def __init__(self, config: ml_collections.ConfigDict, split: str, mesh):
    self.split, self.mesh = split, mesh
    self.feed = input_pipeline.open_feed(config, split, mesh)
    devices = mesh.devices.size  # the batch is split over the devices: round up to a multiple
    self.batch_size = -(-config.data.batch_size // devices) * devices
    self._step = train_step.make_eval_step(config, mesh, split)

  @property
  def num_examples(self) -> int:
    return self.feed.num_faces

  def batches(self, params, apply_fn: Callable) -> Iterator[tuple[int, int, dict, dict]]:
    """(index of the batch's first example, n, images, metrics) per batch: its first n rows are
    real examples, the rest padding.

    `images`: {"masked", "clean", "alpha", "output"} arrays on the devices, padded (fetch and cut
    what you use); `metrics`: numpy per-example values of the n real examples, {name: the
    model's, "input/" + name: the masked input's}.
    """
    params = train_step.replicate(params, self.mesh)
    first = 0
    for batch, n in self.feed.eval_batches(self.batch_size):
      images, metrics = self._step(params, apply_fn, self.feed.resident,
                                   train_step.shard_batch(batch, self.mesh))
      yield first, n, images, {k: np.asarray(v)[:n] for k, v in jax.device_get(metrics).items()}
      first += n

  def evaluate(self, params, apply_fn: Callable, num_grid_examples: int = 0):
    """(means of every metric, the first `num_grid_examples` (masked, output, clean) arrays)."""
    sums, columns = {}, []
    for first, n, images, metrics in self.batches(params, apply_fn):
      for name, values in metrics.items():
        sums[name] = sums.get(name, 0.0) + float(np.sum(values))
      if first < num_grid_examples:
        columns.append([np.asarray(images[k])[:n] for k in GRID_IMAGES])
    means = {name: total / self.num_examples for name, total in sums.items()}
    return means, [np.concatenate(c)[:num_grid_examples] for c in zip(*columns)]

  def summary(self, step: int, model: dict, masked_input: dict) -> dict:
    """The start of both summaries: what was scored, and the mean metrics of the model and of
    the masked input."""
    return {"step": step, "split": self.split, "num_examples": self.num_examples,
            "faces": self.feed.fingerprint, "model": model, "masked_input": masked_input}


def split_metrics(metrics: dict[str, Any]) -> dict[str, dict]:
  """{"model": ..., "masked_input": ...} from the eval step's flat metric names (per-example
  values or their means)."""
  return {"model": {k: v for k, v in metrics.items() if not k.startswith(INPUT_PREFIX)},
          "masked_input": {k[len(INPUT_PREFIX):]: v for k, v in metrics.items()
                           if k.startswith(INPUT_PREFIX)}}
