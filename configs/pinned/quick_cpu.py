"""Quick CPU reproduction check: 32 px procedural faces, a small autoencoder, 200 steps.

  python -m maskae.reproduce configs/pinned/quick_cpu.py

The whole command took 45 to 90 s on 2 shared CPU cores (training itself ~10 s; the rest is
start-up, graph building and the two evaluations). The expected metrics were re-measured with it
on the current code (2026-12-01, masks drawn in JAX on the device; jax 0.10.2, flax 0.12.8,
AMD EPYC x86-64 CPU); on one machine a config and seed give the same metrics bitwise
(tests/test_reproduce.py).
The tolerances cover differences between CPUs (XLA and oneDNN pick kernels, hence float
rounding, by instruction set) and library versions. Re-measure whenever the faces, masks, model
or training step change what this config computes: set the values to None, run the command
above, and copy the obtained column.
"""

from configs import default

RUN_RECORD = "quick_cpu.run_record.json"  # the run_record.json of the run the values come from


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


def get_expected():
  """{metrics.json key: (expected value, tolerance)}, measured as described above."""
  return {
      "step": (200, 0),
      "model.psnr_masked": (18.4146, 0.3),
      "model.psnr": (16.6575, 0.1),
      "model.ssim": (0.3596, 0.005),
      "model.mae": (0.11845, 0.002),
      "masked_input.psnr_masked": (10.5313, 0.01),
      "masked_input.mae": (0.088469, 0.0005),
  }
