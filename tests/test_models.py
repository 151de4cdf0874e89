"""Shapes and gradients of the configurable autoencoders."""

import flax.linen as nn
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


@pytest.mark.parametrize("kernel_size, factor", [(3, 4), (3, 2), (2, 2), (5, 2), (4, 3), (1, 4)])
def test_upsampled_conv_is_conv_of_nearest_upsample(kernel_size, factor):
  x = jax.random.normal(jax.random.key(1), (2, 5, 6, 4))
  fused = models.UpsampledConv(7, kernel_size, factor)
  plain = nn.Conv(7, (kernel_size, kernel_size))
  params = fused.init(jax.random.key(0), x)["params"]
  assert jax.tree.map(jnp.shape, params) == jax.tree.map(
      jnp.shape, plain.init(jax.random.key(0), x)["params"])
  params["bias"] = jax.random.normal(jax.random.key(2), (7,))
  upsample = lambda x: jnp.repeat(jnp.repeat(x, factor, axis=1), factor, axis=2)
  out = lambda p, x: fused.apply({"params": p}, x)
  ref = lambda p, x: plain.apply({"params": p}, upsample(x))
  np.testing.assert_allclose(out(params, x), ref(params, x), rtol=1e-5, atol=1e-5)
  cotangent = jax.random.normal(jax.random.key(3), (2, 5 * factor, 6 * factor, 7))
  grads = jax.vjp(out, params, x)[1](cotangent)
  ref_grads = jax.vjp(ref, params, x)[1](cotangent)
  for g, r in zip(jax.tree.leaves(grads), jax.tree.leaves(ref_grads)):
    np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-4)



def _textbook_paper_model(params, x):
  """The paper model written layer by layer with nn.Conv, nn.max_pool and jnp.repeat."""
  def conv(p, x, strides=1):
    return nn.Conv(p["kernel"].shape[-1], (3, 3), strides=strides).apply({"params": p}, x)

  up = lambda x: jnp.repeat(jnp.repeat(x, 4, axis=1), 4, axis=2)
  pool = lambda x: nn.max_pool(x, (2, 2), strides=(2, 2))
  enc, dec = params["encoder"], params["decoder"]
  x = pool(nn.relu(conv(enc["conv0"], x, 2)))
  x = pool(nn.relu(conv(enc["conv1"], x, 2)))
  x = up(nn.relu(conv(dec["conv0"], x)))
  x = up(nn.relu(conv(dec["conv1"], x)))
  return nn.sigmoid(conv(dec["out"], x))


def test_paper_model_is_the_textbook_model():
  model = models.create_model(paper.get_config().model)
  x = jax.random.uniform(jax.random.key(1), (2, 64, 64, 3))
  params = model.init(jax.random.key(0), x)["params"]
  assert sum(p.size for p in jax.tree.leaves(params)) == 75651  # Keras's count for this model
  np.testing.assert_allclose(model.apply({"params": params}, x)["output"],
                             _textbook_paper_model(params, x), rtol=1e-5, atol=1e-6)
  loss = lambda f: lambda p: jnp.mean(jnp.abs(f(p) - x))
  grads = jax.grad(loss(lambda p: model.apply({"params": p}, x)["output"]))(params)
  ref_grads = jax.grad(loss(lambda p: _textbook_paper_model(p, x)))(params)
  for g, r in zip(jax.tree.leaves(grads), jax.tree.leaves(ref_grads)):
    np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-6)


def test_max_pool_gradient_goes_to_the_first_maximum_like_nn_max_pool():
  x = jnp.asarray(np.random.default_rng(0).integers(0, 3, (2, 7, 6, 3)), jnp.float32)  # many ties
  reference = lambda x: nn.max_pool(x, (2, 2), strides=(2, 2))
  cotangent = jax.random.normal(jax.random.key(0), (2, 3, 3, 3))
  np.testing.assert_array_equal(models.max_pool_2x2(x), reference(x))
  np.testing.assert_array_equal(jax.vjp(models.max_pool_2x2, x)[1](cotangent)[0],
                                jax.vjp(reference, x)[1](cotangent)[0])
