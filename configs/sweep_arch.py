"""Architecture sweep around the default config: encoder kernel size x stride x latent size.

  python -m launch.sweep --config configs/sweep_arch.py --workdir runs/sweep_arch --gpus 0,1,2,3

"Latent size" is `model.latent_channels`: the channels of the code (a 1x1 conv after the last
encoder stage; 0 would keep the last stage's features). Each (kernel, stride, latent) setting runs
with two learning-rate schedules, zipped (each learning rate with its own warmup):
3 x 2 x 4 x 2 = 48 trials.
"""

from configs import default
from launch.sweep_spec import fixed, product, sweep, zipit


def get_config():
  """The base config every trial overrides: configs/default.py."""
  return default.get_config()


def get_sweep():
  """The trials: a list of {dotted.config.key: value} overrides."""
  return product([
      sweep("model.kernel_size", [3, 5, 7]),
      sweep("model.strides", [1, 2]),
      sweep("model.latent_channels", [16, 32, 64, 128]),
      zipit([sweep("train.learning_rate", [1e-3, 3e-3]),
             sweep("train.warmup_steps", [0, 100])]),
      fixed("train.schedule", "cosine"),
  ])
