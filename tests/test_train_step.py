"""Losses and optimizer options of the train step."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from configs import default
from maskae import train_step


def _batch():
  keys = jax.random.split(jax.random.key(0), 3)
  clean = jax.random.uniform(keys[0], (2, 16, 16, 3))
  alpha = (jax.random.uniform(keys[1], (2, 16, 16, 1)) > 0.5).astype(jnp.float32)
  pred = jax.random.uniform(keys[2], (2, 16, 16, 3))
  return {"output": pred}, {"clean": clean, "alpha": alpha}


@pytest.mark.parametrize("loss, expected", [
    ("mae", lambda p, c, a: jnp.mean(jnp.abs(p - c))),
    ("mse", lambda p, c, a: jnp.mean(jnp.square(p - c))),
])
def test_plain_losses(loss, expected):
  outputs, batch = _batch()
  config = default.get_config().train
  config.loss = loss
  value, _ = train_step.reconstruction_loss(outputs, batch, config)
  np.testing.assert_allclose(value, expected(outputs["output"], batch["clean"], batch["alpha"]),
                             rtol=1e-6)


def test_masked_weighting_counts_masked_pixels_more():
  outputs, batch = _batch()
  config = default.get_config().train
  config.masked_weight = 3.0
  value, _ = train_step.reconstruction_loss(outputs, batch, config)
  err, w = jnp.abs(outputs["output"] - batch["clean"]), 1.0 + 3.0 * batch["alpha"]
  np.testing.assert_allclose(value, jnp.sum(w * err) / jnp.sum(jnp.broadcast_to(w, err.shape)),
                             rtol=1e-5)


def test_l1_ssim_is_zero_for_a_perfect_output_and_mask_bce_is_added():
  _, batch = _batch()
  config = default.get_config().train
  config.loss = "l1_ssim"
  value, parts = train_step.reconstruction_loss({"output": batch["clean"]}, batch, config)
  assert float(value) == pytest.approx(0.0, abs=1e-5) and set(parts) == {"l1", "ssim"}
  with_mask = {"output": batch["clean"], "mask": jnp.full_like(batch["alpha"], 0.5)}
  value, parts = train_step.reconstruction_loss(with_mask, batch, config)
  np.testing.assert_allclose(value, config.mask_loss_weight * np.log(2.0), rtol=1e-4)



def test_raw_loss_adds_the_decoded_image_error():
  outputs, batch = _batch()
  config = default.get_config().train
  config.raw_loss_weight, config.mask_loss_weight = 0.5, 0.0
  raw = jnp.clip(outputs["output"] + 0.25, 0.0, 1.0)
  value, parts = train_step.reconstruction_loss(
      {"output": outputs["output"], "raw": raw, "mask": batch["alpha"]}, batch, config)
  np.testing.assert_allclose(parts["raw"], jnp.mean(jnp.abs(raw - batch["clean"])), rtol=1e-6)
  np.testing.assert_allclose(value, jnp.mean(jnp.abs(outputs["output"] - batch["clean"]))
                             + 0.5 * parts["raw"], rtol=1e-6)

def test_output_loss_weight_zero_trains_the_decoded_image_and_mask_only():
  outputs, batch = _batch()
  config = default.get_config().train
  config.output_loss_weight, config.raw_loss_weight, config.loss = 0.0, 2.0, "mse"
  raw = jnp.clip(outputs["output"] + 0.25, 0.0, 1.0)
  mask = jnp.full_like(batch["alpha"], 0.5)
  value, parts = train_step.reconstruction_loss(
      {"output": outputs["output"], "raw": raw, "mask": mask}, batch, config)
  np.testing.assert_allclose(value, 2.0 * jnp.mean(jnp.square(raw - batch["clean"]))
                             + config.mask_loss_weight * np.log(2.0), rtol=1e-5)
  assert set(parts) == {"raw", "mask_bce"}


def test_unknown_loss_names_the_key():
  outputs, batch = _batch()
  config = default.get_config().train
  config.loss = "huber"
  with pytest.raises(ValueError, match='train.loss "huber"'):
    train_step.reconstruction_loss(outputs, batch, config)


@pytest.mark.parametrize("overrides", [
    dict(), dict(optimizer="adamw", weight_decay=0.1), dict(schedule="cosine", warmup_steps=5),
    dict(warmup_steps=5), dict(grad_clip_norm=1e-3),
])
def test_optimizer_options(overrides):
  config = default.get_config().train
  config.update(overrides)
  tx = train_step.make_optimizer(config)
  params = {"w": jnp.ones(4)}
  grads = {"w": jnp.full(4, 10.0)}
  updates, _ = tx.update(grads, tx.init(params), params)
  size = float(optax.global_norm(updates))
  if overrides.get("warmup_steps"):
    assert size == 0.0  # step 0 of a warmup from 0
  else:
    assert 0 < size < 1


@pytest.mark.parametrize("field, value", [("optimizer", "sgd"), ("schedule", "step")])
def test_unknown_optimizer_choices_name_the_key(field, value):
  config = default.get_config().train
  config[field] = value
  with pytest.raises(ValueError, match=f'train.{field} "{value}"'):
    train_step.make_optimizer(config)
