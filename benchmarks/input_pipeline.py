"""Input-pipeline throughput next to the train step's consumption, in pairs per second.

  python -m benchmarks.input_pipeline [--sizes 128,256] [--num_faces 256] [--batches 20]

For each image size: the `synthetic` and `folder` sources' training pipelines (configs/paper.py
with the source swapped; the folder is ../shared/data/utkface/images when present, else a temporary
folder of generated 200 px JPEGs) are timed over `--batches` batches after warm-up, and the paper
model's jitted data-parallel train step (maskae.train_step.make_train_step, batch 32, in-memory
arrays) over `--steps` steps after warm-up (median step time). Both are measured in this process,
one after the other; the ratio is pipeline pairs/s over train-step pairs/s (target: >= 3).
Face decoding / generation is done once before timing (it is cached for the whole run).
"""

import os
import statistics
import tempfile
import time

import jax
import numpy as np
from absl import app, flags
from PIL import Image

from configs import paper
from maskae import faces, input_pipeline, models, train_step

_SIZES = flags.DEFINE_list("sizes", ["128", "256"], "Image sizes to measure.")
_NUM_FACES = flags.DEFINE_integer("num_faces", 256, "Training faces per source.")
_BATCHES = flags.DEFINE_integer("batches", 20, "Timed pipeline batches per source and size.")
_STEPS = flags.DEFINE_integer("steps", 10, "Timed train steps per size.")
_WARMUP = flags.DEFINE_integer("warmup", 2, "Untimed batches / steps before timing.")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 32, "Global batch size.")

REAL_FOLDER = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..",
                           "shared", "data", "utkface", "images")


def bench_config(size: int, source: str, folder: str):
  """configs/paper.py at `size` with the given source and _NUM_FACES training faces."""
  config = paper.get_config()
  data = config.data
  data.image_size, data.source, data.folder = size, source, folder
  data.num_train, data.num_val, data.num_test = _NUM_FACES.value, 0, 0
  data.batch_size = _BATCH_SIZE.value
  return config


def pipeline_rate(config) -> tuple[float, float]:
  """(seconds to load the faces, training pairs per second after warm-up)."""
  start = time.perf_counter()
  face_set = input_pipeline.load_faces(config, "train")
  load_seconds = time.perf_counter() - start
  batches = input_pipeline.train_dataset(face_set, config).as_numpy_iterator()
  for _ in range(_WARMUP.value):
    next(batches)
  start = time.perf_counter()
  for _ in range(_BATCHES.value):
    next(batches)
  return load_seconds, _BATCHES.value * config.data.batch_size / (time.perf_counter() - start)


def train_rate(config) -> float:
  """Pairs per second the paper model's train step consumes (median step time after warm-up)."""
  mesh = train_step.data_mesh()
  model = models.create_model(config.model)
  state = train_step.replicate(
      train_step.create_train_state(model, config, jax.random.key(0)), mesh)
  step_fn = train_step.make_train_step(config, mesh)
  size, batch_size = config.data.image_size, config.data.batch_size
  rng = np.random.default_rng(0)
  batch = train_step.shard_batch({
      "masked": rng.random((batch_size, size, size, 3), np.float32),
      "clean": rng.random((batch_size, size, size, 3), np.float32),
      "alpha": rng.random((batch_size, size, size, 1), np.float32)}, mesh)
  times = []
  for i in range(_WARMUP.value + _STEPS.value):
    start = time.perf_counter()
    state, metrics = step_fn(state, batch)
    jax.block_until_ready((state, metrics))
    if i >= _WARMUP.value:
      times.append(time.perf_counter() - start)
  return batch_size / statistics.median(times)


def generated_folder(root: str, count: int) -> str:
  """A folder of `count` generated 200 px JPEG faces (when the real set is absent)."""
  images, _ = faces.generate_faces(count, 200, seed=0)
  for i, image in enumerate(images):
    Image.fromarray(image).save(os.path.join(root, f"{i:05d}.jpg"), quality=90)
  return root


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  with tempfile.TemporaryDirectory() as tmp:
    folder = (REAL_FOLDER if os.path.isdir(REAL_FOLDER)
              else generated_folder(tmp, _NUM_FACES.value))
    print(f"cpus {os.cpu_count()}, jax devices {jax.device_count()} ({jax.devices()[0].platform}), "
          f"batch {_BATCH_SIZE.value}, {_NUM_FACES.value} faces, folder {os.path.normpath(folder)}",
          flush=True)
    print(f"{'size':>5} {'source':>9} {'load s':>7} {'pipeline/s':>11} {'train/s':>8} "
          f"{'ratio':>6}", flush=True)
    for size in map(int, _SIZES.value):
      rates = {source: pipeline_rate(bench_config(size, source, folder))
               for source in ("synthetic", "folder")}
      consumed = train_rate(bench_config(size, "synthetic", folder))
      for source, (load_seconds, produced) in rates.items():
        print(f"{size:5d} {source:>9} {load_seconds:7.1f} {produced:11.1f} {consumed:8.1f} "
              f"{produced / consumed:6.2f}", flush=True)


if __name__ == "__main__":
  app.run(main)
