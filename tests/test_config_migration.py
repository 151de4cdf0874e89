"""Configs recorded by older versions are read with the current keys, and build the same model."""

import jax
import jax.numpy as jnp
import ml_collections

from configs import default, utkface
from maskae import config_migration, models, workdir


def _as_recorded_before_the_model_split(config: ml_collections.ConfigDict):
  """`config` as maskae recorded it before model.name, model.composite, the loss weights and
  data.landmarks / align_faces / landmark_cache (and model.flip_average)."""
  values = config.to_dict()
  model = values["model"]
  composite = model.pop("composite")
  model["mask_head"] = model.pop("name") == "mask_composite"
  model["hard_composite"] = composite["hard"]
  model["composite_dilation"] = composite["dilation"]
  model["mask_detector_features"] = composite["detector_features"]
  del values["train"]["output_loss_weight"], values["train"]["raw_loss_weight"]
  del model["flip_average"]
  for key in ("landmarks", "align_faces", "landmark_cache"):
    del values["data"][key]
  return ml_collections.ConfigDict(values)


def test_current_config_comes_back_equal():
  config = utkface.get_config()
  assert workdir.differences(config, config_migration.upgrade(config)) == []


def test_old_composite_record_is_read_with_the_current_keys_and_builds_the_same_params(tmp_path):
  current = utkface.get_config()
  current.train.output_loss_weight, current.train.raw_loss_weight = 1.0, 0.0  # the old meaning
  current.model.flip_average, current.model.composite.threshold = False, 0.5  # as then
  current.model.composite.erase_region = False
  run_dir = workdir.Workdir(str(tmp_path))
  run_dir.record_config(_as_recorded_before_the_model_split(current))
  assert "mask_head" in (tmp_path / workdir.CONFIG_FILE).read_text()
  recorded = run_dir.recorded_config()
  assert workdir.differences(current, recorded) == []
  assert recorded.model.name == "mask_composite" and recorded.model.composite.dilation == 1
  x = jnp.zeros((1, 32, 32, 3))
  shapes = [jax.eval_shape(models.create_model(c.model).init, jax.random.key(0), x)
            for c in (current, recorded)]
  assert shapes[0] == shapes[1] and "mask_detector" in shapes[0]["params"]


def test_old_plain_record_is_the_autoencoder():
  old = _as_recorded_before_the_model_split(default.get_config())
  upgraded = config_migration.upgrade(old)
  assert upgraded.model.name == "autoencoder" and not upgraded.model.composite.hard
  assert "mask_head" not in upgraded.model and "hard_composite" not in upgraded.model
  assert upgraded.train.output_loss_weight == 1.0 and upgraded.train.raw_loss_weight == 0.0


def test_record_from_before_the_round_two_levers_reads_as_the_same_run():
  current = utkface.get_config("round1")
  values = current.to_dict()
  del values["data"]["random_flip"]
  for key in ("fourier_blocks", "fourier_at", "gated_decoder", "flip_average"):
    del values["model"][key]
  del values["model"]["composite"]["threshold"]
  for key in ("adversarial_weight", "discriminator_features", "discriminator_learning_rate"):
    del values["train"][key]
  upgraded = config_migration.upgrade(ml_collections.ConfigDict(values))
  assert workdir.differences(current, upgraded) == []
  assert not upgraded.data.random_flip and upgraded.train.adversarial_weight == 0.0
  assert not upgraded.model.flip_average and upgraded.model.composite.threshold == 0.5
