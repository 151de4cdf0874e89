"""Real faces at 256 px: configs/utkface.py's data and model at the paper's image size.

  python -m maskae.main --config configs/utkface_256.py --workdir runs/utkface_256
  python -m maskae.main --config configs/utkface_256.py --workdir runs/utkface_256 \
      --mode=evaluate --split=val

UTKFace crops are 200x200, so 256 px upsamples them (Lanczos): the extra pixels add no detail,
but the model, masks and metrics run at the size the paper used. Each step costs about 4x the
128 px config's, so the default step count fits a GPU; `--config.train.steps` shortens it on CPU.
"""

import ml_collections

from configs import utkface


def get_config(arch: str = "best") -> ml_collections.ConfigDict:
  """configs/utkface.py at 256 px. `arch`: "best" or "paper", as there."""
  config = utkface.get_config(arch)
  config.data.image_size = 256
  if arch == "best":
    # The schedule its README result ran (configs/utkface.py's before that took batches of 8):
    # batches of 32, 13,000 steps by default, validated every 500.
    config.data.batch_size, config.train.steps = 32, 13000
    config.train.eval_every, config.train.checkpoint_every = 500, 1000
    # Its model as it ran: the autoencoder saw the whole photo (configs/utkface.py's before the
    # erased region).
    config.model.composite.erase_region = False
  return config
