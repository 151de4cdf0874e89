"""Losses and optimizer options of the train step."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from configs import default
from maskae import models, train_step


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


def test_patch_weights_are_the_mask_fraction_of_each_patch():
  alpha = np.zeros((1, 8, 8, 1), np.float32)
  alpha[0, :4, :4] = 1.0
  alpha[0, 4:6, 4:8] = 1.0
  weights = np.asarray(train_step.patch_weights(jnp.asarray(alpha), (1, 2, 2, 1)))
  np.testing.assert_allclose(weights[0, ..., 0], [[1.0, 0.0], [0.0, 0.5]])


def test_discriminator_hinge_loss_counts_only_masked_patches():
  weights = jnp.asarray([[[[1.0], [0.0]]]])
  real = jnp.asarray([[[[2.0], [-5.0]]]])  # confident and right where it counts
  fake = jnp.asarray([[[[-0.5], [9.0]]]])
  assert float(train_step.discriminator_hinge_loss(real, fake, weights)) == pytest.approx(0.5)


def _pair_batch(size=32, n=4):
  keys = jax.random.split(jax.random.key(0), 2)
  clean = jax.random.uniform(keys[0], (n, size, size, 3))
  alpha = jnp.zeros((n, size, size, 1)).at[:, size // 2:].set(1.0)
  masked = jnp.where(alpha > 0, 0.2, clean)
  return {"masked": masked, "clean": clean, "alpha": alpha}


def test_adversarial_step_trains_the_discriminator_beside_the_model():
  config = default.get_config()
  config.data.image_size = 32
  config.model.features = (8, 16)
  config.train.adversarial_weight = 0.1
  config.train.discriminator_features = (8, 16)
  model = models.create_model(config.model)
  state = train_step.create_train_state(model, config, jax.random.key(0))
  assert isinstance(state, train_step.AdversarialTrainState)
  mesh = train_step.data_mesh(jax.devices()[:1])
  step = train_step.make_pair_train_step(config, mesh)
  d_before = jax.tree.map(np.asarray, state.discriminator_params)
  g_before = jax.tree.map(np.asarray, state.params)
  batch = _pair_batch()
  state, first = step(state, batch)
  state, metrics = step(state, batch)
  assert {"adversarial", "discriminator", "loss"} <= set(metrics)
  assert np.isfinite(float(metrics["discriminator"]))
  after = jax.tree.map(np.asarray, state.discriminator_params)
  for name, layer in d_before.items():  # every kernel took a step (the logit's bias may not:
    assert float(np.abs(layer["kernel"] - after[name]["kernel"]).max()) > 0, name  # its
  assert int(state.step) == 2  # hinge gradients cancel while every patch is in the margin)
  # The model's loss is its pixel loss plus adversarial_weight x the generator term.
  plain_config = config.copy_and_resolve_references()
  plain_config.train.adversarial_weight = 0.0
  plain = train_step.create_train_state(model, plain_config, jax.random.key(0))
  assert type(plain) is train_step.TrainState
  _, plain_first = train_step.make_pair_train_step(plain_config, mesh)(
      plain.replace(params=g_before), batch)
  assert "adversarial" not in plain_first
  assert float(first["loss"]) == pytest.approx(
      float(plain_first["loss"]) + 0.1 * float(first["adversarial"]), rel=1e-5)
