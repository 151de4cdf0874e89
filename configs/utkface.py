"""Real faces: UTKFace at 128 px, blind unmasking with a mask-aware composite head.

  python -m maskae.main --config configs/utkface.py --workdir runs/utkface
  python -m maskae.main --config configs/utkface.py --workdir runs/utkface --mode=evaluate --split=val

Trains on `../shared/data/utkface` `train.txt` (8,500 faces) and validates on `val.txt` (500) with
the full default mask mix (9 styles, coverage under-the-nose to over-the-bridge, tilt, scale and
offset jitter). `get_config("paper")` is the paper's autoencoder on the same data and budget: the
reference row of the README's results table. The model choice is explained in the README's
"Results on real faces" section.
"""

import ml_collections

from configs import default

UTKFACE = "../shared/data/utkface"


def get_config(arch: str = "best") -> ml_collections.ConfigDict:
  """UTKFace at 128 px. `arch`: "best" (the main row) or "paper" (the reference row)."""
  config = default.get_config()
  data = config.data
  data.source = "folder"
  data.image_size = 128
  data.folder = f"{UTKFACE}/images"
  data.train_list = f"{UTKFACE}/train.txt"
  data.val_list = f"{UTKFACE}/val.txt"
  # The test split of this source is withheld: --split=test fails with a one-line error.
  data.batch_size = 32
  data.landmark_template = "utkface"

  model = config.model
  if arch == "best":
    model.features = (64, 128)
    model.mask_head = True  # output = m * decoded + (1 - m) * input, m predicted (blind)
  elif arch != "paper":
    raise ValueError(f'configs/utkface.py: unknown arch "{arch}"; valid: best, paper')

  train = config.train
  # About 55 minutes on 2 CPU cores for the best model (evaluations included); ~25 for the paper's.
  train.steps = 11000
  train.schedule, train.learning_rate, train.warmup_steps = "cosine", 1e-3, 200
  train.loss = "mae"
  train.mask_loss_weight = 1.0  # 0.1 left ~7% of the mask's colour in the composite
  if arch == "paper":  # the paper's optimizer too: Adam at Keras's default rate, constant
    train.schedule, train.warmup_steps = "constant", 0
  train.log_every = 100
  train.eval_every = 500
  train.checkpoint_every = 1000
  return config
