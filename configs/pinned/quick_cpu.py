"""Quick CPU reproduction check: 32 px procedural faces, a small autoencoder, 200 steps.

  python -m maskae.reproduce configs/pinned/quick_cpu.py

Trains in well under a minute on 2 CPU cores. The expected metrics were measured with that
command (jax 0.10.2, tensorflow-cpu 2.21.0, CPU); tolerances allow the small floating-point
differences between CPUs and library versions. They must be re-measured whenever the faces,
masks, model or training step change what this config computes.
"""

from configs import default


def get_config():
  """The default config scaled down to a quick CPU run."""
  config = default.get_config()
  config.seed = 0
  data = config.data
  data.image_size = 32
  data.num_train, data.num_val, data.num_test = 128, 32, 32
  data.batch_size = 16
  config.model.features = (16, 32)
  train = config.train
  train.steps = 200
  train.log_every = 50
  train.eval_every = train.checkpoint_every = 200
  train.num_grid_examples = 4
  return config
