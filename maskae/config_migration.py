"""Configs recorded by older versions of maskae, brought to the current keys: the one place that
knows the old names (`maskae.workdir` applies it to every recorded config it reads)."""

import ml_collections

from maskae import config_files

# model.mask_head=True was the mask_composite model; its options were flat model keys.
_RENAMED = {"model.hard_composite": "model.composite.hard",
            "model.composite_dilation": "model.composite.dilation",
            "model.mask_detector_features": "model.composite.detector_features"}
# Keys added since, with the value that gives the behaviour of a config recorded without them.
_ADDED = {"train.output_loss_weight": 1.0, "train.raw_loss_weight": 0.0,
          "data.landmarks": "template", "data.align_faces": False,
          "data.landmark_cache": "~/.cache/maskae/landmarks", "data.random_flip": False,
          "model.fourier_blocks": 0, "model.fourier_at": "encoder", "model.gated_decoder": False,
          "train.adversarial_weight": 0.0, "train.discriminator_features": (32, 64, 128),
          "train.discriminator_learning_rate": 2e-4, "model.flip_average": False,
          "model.composite.threshold": 0.5, "model.composite.erase_region": False}


def upgrade(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """A copy of `config` with the current keys (an up-to-date config comes back equal)."""
  config = ml_collections.ConfigDict(config.to_dict())
  model = config.get("model")
  if model is not None and "mask_head" in model:
    model.name = "mask_composite" if model.mask_head else "autoencoder"
    del model["mask_head"]
    model.composite = ml_collections.ConfigDict({"hard": False, "dilation": 0,
                                                 "detector_features": ()})
    for old, new in _RENAMED.items():
      old_field, new_field = old.split(".")[-1], new.split(".")[-1]
      if old_field in model:
        model.composite[new_field] = model[old_field]
        del model[old_field]
  for key, value in _ADDED.items():
    block, field = config_files.block_of(config, key)
    if block is not None and field not in block:
      block[field] = value
  return config
