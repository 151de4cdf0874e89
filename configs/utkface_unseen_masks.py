"""Generalisation to mask styles never seen in training: configs/utkface.py with some held out.

  python -m maskae.main --config configs/utkface_unseen_masks.py:gaiter,bandana \
      --workdir runs/unseen_gaiter+bandana
  # scored on the styles it trained on (eval/val/) and on the held-out ones only
  # (eval/val_masks_gaiter+bandana/; the report names the mask mix it was scored on):
  python -m maskae.main --config configs/utkface_unseen_masks.py:gaiter,bandana \
      --workdir runs/unseen_gaiter+bandana --mode=evaluate --split=val
  python -m maskae.main --config configs/utkface_unseen_masks.py:gaiter,bandana \
      --workdir runs/unseen_gaiter+bandana --mode=evaluate --split=val \
      --config.data.mask.styles="('gaiter','bandana')"

The autoencoder is kept from the mask's pixels, as in configs/utkface.py
(`model.composite.erase_region`: it sees the detector's region blanked), the lever for masks a
model never saw (README, "Masks it never saw"); `--config.model.composite.erase_region=False`
trains the model without it (the table's "no" rows).
The argument names the held-out styles (comma-separated, from maskae.masks' styles); training
draws the others, uniformly. Any other data.mask block works the same way at evaluation: the
config's model keys must match the workdir's, the masks may differ. The step count is shorter
than configs/utkface.py's: a held-out model is compared with itself, on the styles it saw and
on those it did not, at the same checkpoint.
"""

import ml_collections

from configs import utkface


def get_config(held_out: str = "gaiter,bandana") -> ml_collections.ConfigDict:
  """configs/utkface.py's model and data, trained without the `held_out` mask styles."""
  config = utkface.get_config()
  names = [s for s in held_out.split(",") if s]
  styles = config.data.mask.styles
  unknown = [s for s in names if s not in styles]
  if unknown or not names or len(names) == len(styles):
    raise ValueError(f'configs/utkface_unseen_masks.py: held-out styles "{held_out}" must be '
                     f'some, not all, of: {", ".join(styles)}')
  config.data.mask.styles = tuple(s for s in styles if s not in names)
  # The inference keys its runs were scored with (configs/utkface.py's before 0.2 and 1 px).
  config.model.composite.threshold, config.model.composite.dilation = 0.25, 2
  # Its runs' schedule: batches of 32 (configs/utkface.py's before it took 8), validated every
  # 1,000 steps.
  config.data.batch_size = 32
  config.train.eval_every = config.train.checkpoint_every = 1000
  config.train.steps = 4000  # 17-22 min on the Intel Xeon of 2026-12-02, 26 on the AMD of 12-07
  return config
