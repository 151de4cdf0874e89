"""Shapes and gradients of the configurable autoencoders."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import default, paper
from maskae import models


def _model(**overrides):
  config = default.get_config().model
  config.update(overrides)
  return models.create_model(config)


def test_paper_preset_code_is_16x16x64_at_256px():
  model = models.create_model(paper.get_config().model)
  assert models.code_shape(model, 256) == (16, 16, 64)


@pytest.mark.parametrize("overrides, code", [
    (dict(), (2, 2, 64)),
    (dict(kernel_size=5, strides=1), (8, 8, 64)),
    (dict(pooling="none"), (8, 8, 64)),
    (dict(latent_channels=16), (2, 2, 16)),
    (dict(features=(8, 16, 32), strides=1), (4, 4, 32)),
])
def test_code_shapes(overrides, code):
  assert models.code_shape(_model(**overrides), 32) == code


@pytest.mark.parametrize("overrides", [
    dict(), dict(upsampling="bilinear"), dict(upsampling="transpose"), dict(latent_dense=16),
    dict(skip_connections=True), dict(mask_head=True),
    dict(skip_connections=True, mask_head=True, upsampling="transpose"),
    dict(strides=1, pooling="none", kernel_size=7),
])
def test_output_shape_range_and_gradients(overrides):
  model = _model(**overrides)
  x = jax.random.uniform(jax.random.key(1), (2, 32, 32, 3))
  variables = model.init(jax.random.key(0), x)
  out = model.apply(variables, x)
  assert out["output"].shape == x.shape
  assert float(out["output"].min()) >= 0.0 and float(out["output"].max()) <= 1.0
  if overrides.get("mask_head"):
    assert out["mask"].shape == (2, 32, 32, 1)
  grads = jax.grad(lambda p: jnp.mean(model.apply({"params": p}, x)["output"]))(variables["params"])
  norms = [float(jnp.linalg.norm(g)) for g in jax.tree.leaves(grads)]
  assert all(np.isfinite(norms)) and sum(n > 0 for n in norms) == len(norms)


def test_mask_head_composite_keeps_uncovered_pixels():
  model = _model(mask_head=True)
  x = jax.random.uniform(jax.random.key(1), (1, 32, 32, 3))
  variables = model.init(jax.random.key(0), x)
  out = model.apply(variables, x)
  expected = out["mask"] * out["raw"] + (1 - out["mask"]) * x
  np.testing.assert_allclose(out["output"], expected, atol=1e-6)


def test_skip_connections_add_fuse_layers():
  params = _model(skip_connections=True).init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)))
  assert {"fuse0", "fuse1"} <= set(params["params"]["decoder"])


@pytest.mark.parametrize("field, value", [("activation", "tanhh"), ("pooling", "avg"),
                                          ("upsampling", "cubic")])
def test_unknown_choice_is_a_clear_error(field, value):
  with pytest.raises(ValueError, match=f'model.{field} "{value}"'):
    _model(**{field: value}).init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)))
