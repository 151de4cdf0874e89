"""Shapes and gradients of the configurable autoencoders."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from configs import default, paper
from maskae import baselines, models


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
    dict(bottleneck_convs=2, low_res_output=True, mask_head=True, hard_composite=True),
    dict(low_res_output=True, skip_connections=True),
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


def test_low_res_output_is_the_bilinear_resize_of_a_quarter_size_decoding():
  model = _model(low_res_output=True)
  x = jax.random.uniform(jax.random.key(1), (2, 32, 32, 3))
  variables = model.init(jax.random.key(0), x)
  out, state = model.apply(variables, x, capture_intermediates=True)
  decoded = state["intermediates"]["decoder"]["__call__"][0]
  assert decoded.shape == (2, 8, 8, 3)
  np.testing.assert_allclose(
      out["raw"], nn.sigmoid(jax.image.resize(decoded, (2, 32, 32, 3), "bilinear")), atol=1e-6)


def test_zeroed_bottleneck_blocks_are_the_identity():
  x = jax.random.uniform(jax.random.key(1), (2, 32, 32, 3))
  with_blocks = _model(bottleneck_convs=2)
  params = with_blocks.init(jax.random.key(0), x)["params"]
  assert params["bottleneck1"]["kernel"].shape == (3, 3, 64, 64)
  zeroed = {**params, **{f"bottleneck{i}": jax.tree.map(jnp.zeros_like, params[f"bottleneck{i}"])
                         for i in range(2)}}
  plain = {k: v for k, v in params.items() if not k.startswith("bottleneck")}
  np.testing.assert_allclose(with_blocks.apply({"params": zeroed}, x)["output"],
                             _model().apply({"params": plain}, x)["output"], atol=1e-6)
  assert not np.allclose(with_blocks.apply({"params": params}, x)["output"],
                         _model().apply({"params": plain}, x)["output"], atol=1e-6)


@pytest.mark.parametrize("overrides, message", [
    (dict(hard_composite=True), "model.hard_composite needs model.mask_head"),
    (dict(mask_detector_features=(4,)), "model.mask_detector_features needs model.mask_head"),
    (dict(mask_head=True, composite_dilation=2), "model.composite_dilation needs model.hard_comp"),
])
def test_mask_options_out_of_place_are_a_clear_error(overrides, message):
  with pytest.raises(ValueError, match=message):
    _model(**overrides).init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)))


def test_mask_detector_shares_no_weights_and_dilation_grows_the_decoded_region():
  x = jax.random.uniform(jax.random.key(1), (2, 32, 32, 3))
  model = _model(mask_head=True, hard_composite=True, mask_detector_features=(4, 8))
  params = model.init(jax.random.key(0), x)["params"]
  assert params["decoder"]["out"]["kernel"].shape[-1] == 3  # no mask channel in the decoder
  assert set(params["mask_detector"]) == {"down0", "down1", "context0", "context1", "context2",
                                          "out"}
  # The mask's gradient reaches only the detector; the decoded image's only the autoencoder.
  mask_grads = jax.grad(lambda p: jnp.mean(model.apply({"params": p}, x)["mask"]))(params)
  raw_grads = jax.grad(lambda p: jnp.mean(model.apply({"params": p}, x)["raw"]))(params)
  for name in params:
    mask_norm, raw_norm = (float(optax.global_norm(g[name])) for g in (mask_grads, raw_grads))
    assert (mask_norm > 0) == (name == "mask_detector") and (raw_norm > 0) != (name == "mask_detector")
  # A pixel taken from the decoded image makes its neighbours within `composite_dilation` so too.
  grown = _model(mask_head=True, hard_composite=True, mask_detector_features=(4, 8),
                 composite_dilation=2)
  out, out_grown = model.apply({"params": params}, x), grown.apply({"params": params}, x)
  expected = baselines.fill_region(np.asarray(out["mask"]), dilate_px=2)  # mask > 0.5, grown 2 px
  taken = np.all(np.asarray(out_grown["output"]) == np.asarray(out_grown["raw"]), axis=-1)
  kept = np.all(np.asarray(out_grown["output"]) == np.asarray(x), axis=-1)
  assert expected.any() and not expected.all()
  assert taken[expected].all() and kept[~expected].all()


def test_hard_composite_takes_the_decoded_pixel_where_the_mask_is_predicted():
  x = jax.random.uniform(jax.random.key(1), (1, 32, 32, 3))
  soft, hard = _model(mask_head=True), _model(mask_head=True, hard_composite=True)
  variables = soft.init(jax.random.key(0), x)
  out = hard.apply(variables, x)
  masked = out["mask"] >= 0.5
  assert 0 < int(masked.sum()) < masked.size  # both cases occur at initialisation
  np.testing.assert_array_equal(out["output"], jnp.where(masked, out["raw"], x))
  np.testing.assert_array_equal(out["raw"], soft.apply(variables, x)["raw"])


def test_composite_gradient_is_the_textbook_gradient():
  keys = jax.random.split(jax.random.key(0), 4)
  mask = jax.random.uniform(keys[0], (2, 5, 6, 1))
  raw, images, cotangent = (jax.random.uniform(k, (2, 5, 6, 3)) for k in keys[1:])
  textbook = lambda m, r, i: m * r + (1 - m) * i
  np.testing.assert_allclose(models.composite(mask, raw, images), textbook(mask, raw, images),
                             atol=1e-6)
  grads = jax.vjp(models.composite, mask, raw, images)[1](cotangent)
  for g, r in zip(grads, jax.vjp(textbook, mask, raw, images)[1](cotangent)):
    np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-6)


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
