"""Shapes and gradients of the configurable autoencoders."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from configs import default, paper
from maskae import baselines, models


def _model(composite=None, **overrides):
  """configs/default.py's model with `overrides`; given `composite` (its block's overrides),
  the mask_composite model."""
  config = default.get_config().model
  config.update(overrides)
  if composite is not None:
    config.name = "mask_composite"
    config.composite.update(composite)
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
    dict(), *[pytest.param(overrides, marks=pytest.mark.slow) for overrides in (
        dict(upsampling="bilinear"), dict(upsampling="transpose"), dict(latent_dense=16))],
    pytest.param(dict(skip_connections=True), marks=pytest.mark.slow),
    pytest.param(dict(composite={}), marks=pytest.mark.slow),
    dict(skip_connections=True, composite={}, upsampling="transpose"),
    pytest.param(dict(strides=1, pooling="none", kernel_size=7), marks=pytest.mark.slow),
    dict(bottleneck_convs=2, low_res_output=True, composite={"hard": True}),
    dict(low_res_output=True, skip_connections=True),
])
def test_output_shape_range_and_gradients(overrides):
  model = _model(**overrides)
  x = jax.random.uniform(jax.random.key(1), (2, 32, 32, 3))
  variables = model.init(jax.random.key(0), x)
  out = model.apply(variables, x)
  assert out["output"].shape == x.shape
  assert float(out["output"].min()) >= 0.0 and float(out["output"].max()) <= 1.0
  if "composite" in overrides:
    assert out["mask"].shape == (2, 32, 32, 1)
  grads = jax.grad(lambda p: jnp.mean(model.apply({"params": p}, x)["output"]))(variables["params"])
  norms = [float(jnp.linalg.norm(g)) for g in jax.tree.leaves(grads)]
  assert all(np.isfinite(norms)) and sum(n > 0 for n in norms) == len(norms)


def test_mask_head_composite_keeps_uncovered_pixels():
  model = _model(composite={})
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


@pytest.mark.slow
def test_mask_detector_shares_no_weights_and_dilation_grows_the_decoded_region():
  x = jax.random.uniform(jax.random.key(1), (2, 32, 32, 3))
  model = _model(composite={"hard": True, "detector_features": (4, 8)})
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
  # A pixel taken from the decoded image makes its neighbours within `dilation` so too.
  grown = _model(composite={"hard": True, "detector_features": (4, 8), "dilation": 2})
  out, out_grown = model.apply({"params": params}, x), grown.apply({"params": params}, x)
  expected = baselines.fill_region(np.asarray(out["mask"]), dilate_px=2)  # mask > 0.5, grown 2 px
  taken = np.all(np.asarray(out_grown["output"]) == np.asarray(out_grown["raw"]), axis=-1)
  kept = np.all(np.asarray(out_grown["output"]) == np.asarray(x), axis=-1)
  assert expected.any() and not expected.all()
  assert taken[expected].all() and kept[~expected].all()


def test_flip_average_averages_the_mirrors_prediction_at_inference_only():
  x = jax.random.uniform(jax.random.key(1), (2, 32, 32, 3))
  plain = _model(composite={"hard": True, "detector_features": (4, 8)})
  flipped = _model(composite={"hard": True, "detector_features": (4, 8)}, flip_average=True)
  params = plain.init(jax.random.key(0), x)["params"]
  once, mirror = (plain.apply({"params": params}, images) for images in (x, x[:, :, ::-1]))
  averaged = flipped.apply({"params": params}, x)
  for key in ("raw", "mask"):
    np.testing.assert_allclose(averaged[key], (once[key] + mirror[key][:, :, ::-1]) / 2,
                               atol=1e-5)
  assert not np.allclose(averaged["raw"], once["raw"], atol=1e-4)
  # A train step's call is not mirrored: the same outputs (and cost) as without the option.
  for key, value in flipped.apply({"params": params}, x, train=True).items():
    np.testing.assert_array_equal(value, once[key])


def test_a_lower_threshold_takes_more_of_the_decoded_image():
  x = jax.random.uniform(jax.random.key(1), (2, 32, 32, 3))
  outputs = {}
  for threshold in (0.5, 0.3):
    model = _model(composite={"hard": True, "detector_features": (4, 8), "threshold": threshold})
    params = model.init(jax.random.key(0), x)["params"]
    outputs[threshold] = jax.tree.map(np.asarray, model.apply({"params": params}, x))
  mask = outputs[0.5]["mask"][..., 0]
  for threshold, out in outputs.items():
    taken = np.all(out["output"] == out["raw"], axis=-1) & np.any(out["raw"] != np.asarray(x), -1)
    np.testing.assert_array_equal(taken, mask >= threshold)
  assert ((mask >= 0.3) & (mask < 0.5)).any()


def test_erase_region_hides_the_taken_region_from_the_autoencoder():
  x = jax.random.uniform(jax.random.key(1), (2, 32, 32, 3))
  block = {"hard": True, "detector_features": (4, 8), "dilation": 1}
  erasing = _model(composite={**block, "erase_region": True})
  params = erasing.init(jax.random.key(0), x)["params"]
  assert params["encoder"]["conv0"]["kernel"].shape[2] == 4  # the image and the region
  out = erasing.apply({"params": params}, x)
  region = np.asarray(erasing.apply({"params": params}, out["mask"],
                                    method=models.MaskCompositeAutoencoder.taken_region))[..., 0]
  assert region.any() and not region.all()
  # The decoded image does not depend on a pixel of the region, and does on most others (a max
  # pool passes no gradient to some); without the option it depends on the region's too.
  grads = np.abs(np.asarray(jax.grad(
      lambda images: jnp.sum(erasing.apply({"params": params}, images)["raw"]))(x))).sum(-1)
  assert (grads[region] == 0).all() and (grads[~region] > 0).mean() > 0.5
  plain = _model(composite=block)
  plain_grads = np.abs(np.asarray(jax.grad(lambda images: jnp.sum(plain.apply(
      {"params": plain.init(jax.random.key(0), x)["params"]}, images)["raw"]))(x))).sum(-1)
  assert (plain_grads[region] > 0).mean() > 0.5


def test_hard_composite_takes_the_decoded_pixel_where_the_mask_is_predicted():
  x = jax.random.uniform(jax.random.key(1), (1, 32, 32, 3))
  soft, hard = _model(composite={}), _model(composite={"hard": True})
  variables = soft.init(jax.random.key(0), x)
  out = hard.apply(variables, x)
  masked = out["mask"] >= 0.5
  assert 0 < int(masked.sum()) < masked.size  # both cases occur at initialisation
  np.testing.assert_array_equal(out["output"], jnp.where(masked, out["raw"], x))
  np.testing.assert_array_equal(out["raw"], soft.apply(variables, x)["raw"])


def test_skip_connections_add_fuse_layers():
  params = _model(skip_connections=True).init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)))
  assert {"fuse0", "fuse1"} <= set(params["params"]["decoder"])


@pytest.mark.parametrize("field, value", [("activation", "tanhh"), ("pooling", "avg"),
                                          ("upsampling", "cubic"), ("name", "unet")])
def test_unknown_choice_is_a_clear_error(field, value):
  with pytest.raises(ValueError, match=f'model.{field} "{value}"'):
    _model(**{field: value}).init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)))


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


def test_fourier_blocks_give_the_first_stage_an_image_wide_receptive_field():
  # One 3 x 3 conv stage then (without FFC) a code pixel sees a small window; with one FFC block
  # a change in the far corner reaches every position of the first stage's output.
  x = jax.random.uniform(jax.random.key(1), (1, 32, 32, 3))
  far = x.at[:, -4:, -4:].set(0.0)
  for blocks, reaches in ((0, False), (1, True)):
    model = _model(features=(8, 16), fourier_blocks=blocks)
    variables = model.init(jax.random.key(0), x)
    encode = lambda images: model.apply(variables, images, method=models.Autoencoder.encode)
    skips_near = encode(x)[1][1][:, :2, :2]  # the first stage's output at the opposite corner
    changed = float(jnp.max(jnp.abs(skips_near - encode(far)[1][1][:, :2, :2])))
    assert (changed > 1e-6) == reaches, (blocks, changed)
  names = set(variables["params"]["encoder"]["ffc0"])
  assert {"local_to_local0", "global_to_local1", "local_to_global0",
          "global_to_global1"} <= names


def test_fourier_unit_of_a_constant_map_is_a_constant_map():
  unit = models.FourierUnit(4)
  x = jnp.ones((1, 8, 8, 4))
  y = unit.apply(unit.init(jax.random.key(0), x), x)
  assert y.shape == x.shape
  np.testing.assert_allclose(y, jnp.broadcast_to(y[:, :1, :1], y.shape), atol=1e-5)


@pytest.mark.parametrize("overrides", [
    dict(fourier_blocks=2, gated_decoder=True),
    dict(fourier_blocks=1, fourier_at="decoder", low_res_output=True, composite={"hard": True}),
    pytest.param(dict(gated_decoder=True, skip_connections=True, composite={"hard": True}),
                 marks=pytest.mark.slow),
])
def test_new_blocks_shapes_and_gradients(overrides):
  test_output_shape_range_and_gradients(overrides)


def test_gated_decoder_doubles_each_stage_conv_for_its_gate():
  x = jnp.zeros((1, 32, 32, 3))
  plain = _model(features=(8, 16)).init(jax.random.key(0), x)["params"]["decoder"]
  gated = _model(features=(8, 16), gated_decoder=True).init(jax.random.key(0), x)
  gated = gated["params"]["decoder"]
  for name in ("conv0", "conv1"):
    assert gated[name]["kernel"].shape[-1] == 2 * plain[name]["kernel"].shape[-1]
  assert gated["out"]["kernel"].shape == plain["out"]["kernel"].shape


def test_patch_discriminator_scores_patches():
  disc = models.PatchDiscriminator((8, 16, 32))
  x = jnp.zeros((2, 64, 64, 3))
  assert disc.apply(disc.init(jax.random.key(0), x), x).shape == (2, 8, 8, 1)


def test_fourier_blocks_in_the_decoder_follow_its_last_stage():
  x = jnp.zeros((1, 32, 32, 3))
  params = _model(features=(8, 16), fourier_blocks=2, fourier_at="decoder").init(
      jax.random.key(0), x)["params"]
  assert {"ffc0", "ffc1"} <= set(params["decoder"]) and "ffc0" not in params["encoder"]
  # It runs on the last stage's features: features[0] channels, split 4 + 4.
  assert params["decoder"]["ffc0"]["local_to_local0"]["kernel"].shape == (3, 3, 4, 4)
