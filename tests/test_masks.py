"""Tests for maskae.masks (procedural mask synthesis in JAX).  Small sizes only: fast.

Most tests share one jitted `render` over all nine styles and pick the style through
`MaskDraws.style` (style k of n is drawn for style in [k / n, (k + 1) / n)), so each image size
and spec compiles once.
"""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from maskae import masks as M

LM = M.UTKFACE_TEMPLATE
ALL_STYLES = M.MaskSpec()
render = jax.jit(M.render, static_argnums=3)
synthesize = jax.jit(M.synthesize, static_argnums=3)


def _checker(size, cell=4):
  """Saturated red/green checkerboard: no mask palette colour matches it exactly."""
  yy, xx = np.mgrid[:size, :size]
  on = ((yy // cell + xx // cell) % 2).astype(bool)
  img = np.zeros((size, size, 3), np.float32)
  img[on] = (1.0, 0.0, 0.0)
  img[~on] = (0.0, 1.0, 0.0)
  return img


def _draws(seed, style=None, num_styles=len(M.MASK_STYLES)):
  """draw(key(seed)), with the style forced to index `style` of `num_styles` if given."""
  draws = M.draw(jax.random.key(seed))
  if style is not None:
    draws = draws._replace(style=jnp.float32((style + 0.5) / num_styles))
  return draws


def _run(face, draws, spec=ALL_STYLES):
  masked, alpha = render(face, LM, draws, spec)
  return np.asarray(masked), np.asarray(alpha)


def test_constants():
  assert len(M.MASK_STYLES) == 9
  assert M.LANDMARK_NAMES[3] == "nose_tip" and len(M.LANDMARK_NAMES) == 8
  assert M.UTKFACE_TEMPLATE.shape == (8, 2)
  assert M.UTKFACE_TEMPLATE.dtype == np.float32
  assert np.all((M.UTKFACE_TEMPLATE >= 0) & (M.UTKFACE_TEMPLATE <= 1))


def test_draw():
  draws = M.draw(jax.random.key(3))
  shapes = {"geometry": (8,), "style": (), "style_params": (64,), "grain": (64, 64)}
  for name, shape in shapes.items():
    value = np.asarray(getattr(draws, name))
    assert value.shape == shape and value.dtype == np.float32, name
  for value in (draws.geometry, draws.style, draws.style_params):
    assert np.all((np.asarray(value) >= 0) & (np.asarray(value) < 1))
  grain = np.asarray(draws.grain)
  assert grain.min() >= -1.732 and grain.max() < 1.732 and abs(grain.mean()) < 0.1
  again = M.draw(jax.random.key(3))
  for a, b in zip(draws, again):
    np.testing.assert_array_equal(a, b)
  assert not np.array_equal(draws.style_params, M.draw(jax.random.key(4)).style_params)


@pytest.mark.parametrize("size", [32, 64])
@pytest.mark.parametrize("style", range(len(M.MASK_STYLES)), ids=M.MASK_STYLES)
def test_every_style_renders(style, size):
  face = _checker(size)
  for seed in (0, 5):
    masked, alpha = _run(face, _draws(seed, style))
    assert masked.shape == (size, size, 3) and masked.dtype == np.float32
    assert alpha.shape == (size, size, 1) and alpha.dtype == np.float32
    assert np.all(np.isfinite(masked)) and np.all(np.isfinite(alpha))
    assert masked.min() >= 0.0 and masked.max() <= 1.0
    assert alpha.min() >= 0.0 and alpha.max() <= 1.0
    covered = float(np.mean(alpha > 0.5))
    assert 0.10 <= covered <= 0.60, (size, seed, covered)
    # alpha == 0 -> face untouched, bit for bit
    zero = alpha[..., 0] == 0
    assert zero.any()
    np.testing.assert_array_equal(masked[zero], face[zero])
    # alpha > 0.5 -> visibly different from the face
    big = alpha[..., 0] > 0.5
    diff = np.abs(masked - face).max(-1)
    assert np.all(diff[big] > 1e-3), np.sum(diff[big] <= 1e-3)
    # alpha reaches exactly 1 in the mask body
    assert alpha.max() == 1.0


def test_deterministic_and_key_dependent():
  face = _checker(32)
  a1 = _run(face, _draws(3))
  a2 = _run(face, _draws(3))
  np.testing.assert_array_equal(a1[0], a2[0])
  np.testing.assert_array_equal(a1[1], a2[1])
  b = _run(face, _draws(4))
  assert not np.array_equal(a1[0], b[0])


@pytest.mark.parametrize("style", range(len(M.MASK_STYLES)), ids=M.MASK_STYLES)
def test_key_changes_each_style(style):
  face = _checker(32)
  a = _run(face, _draws(1, style))[0]
  b = _run(face, _draws(2, style))[0]
  assert not np.array_equal(a, b)


def _check_coverage(hide_nose, show_nose):
  """alpha at full coverage covers the nose tip (top edge above it), at zero leaves it visible."""
  tip_x, tip_y = LM[3] * hide_nose.shape[0]
  col = int(tip_x)
  top_hi = np.argmax(hide_nose[:, col, 0] > 0.5)
  top_lo = np.argmax(show_nose[:, col, 0] > 0.5)
  assert hide_nose[:, col, 0].max() > 0.5 and show_nose[:, col, 0].max() > 0.5
  assert top_hi < tip_y - 1, (top_hi, tip_y)
  assert top_lo > tip_y, (top_lo, tip_y)
  assert hide_nose[int(tip_y), col, 0] > 0.5
  assert show_nose[int(tip_y), col, 0] < 0.5


@pytest.mark.parametrize("style", range(len(M.MASK_STYLES)), ids=M.MASK_STYLES)
def test_coverage(style):
  # the drawn coverage (geometry[0]: coverage = lo + (hi - lo) * draw) at its ends
  face = _checker(64)
  for seed in (0, 7, 11):
    draws = _draws(seed, style)
    geometry = np.asarray(draws.geometry).copy()
    alphas = []
    for coverage in (1.0, 0.0):
      geometry[0] = coverage
      alphas.append(_run(face, draws._replace(geometry=jnp.asarray(geometry)))[1])
    _check_coverage(*alphas)


@pytest.mark.parametrize("style", ["surgical", "bandana"])
def test_coverage_parameter(style):
  face = _checker(64)
  for seed in (0, 7):
    _check_coverage(*(_run(face, _draws(seed), M.MaskSpec(styles=(style,), coverage=coverage))[1]
                      for coverage in ((1.0, 1.0), 0.0)))


def test_unknown_style_raises():
  with pytest.raises(ValueError) as e:
    M.MaskSpec(styles=("surgical", "spacesuit"))
  msg = str(e.value)
  assert "data.mask.styles" in msg and '"spacesuit"' in msg and "\n" not in msg
  for s in M.MASK_STYLES:
    assert s in msg
  with pytest.raises(ValueError, match="data.mask.styles"):
    M.MaskSpec(styles=())
  with pytest.raises(ValueError):
    M.validate_styles(["nope"])
  assert M.validate_styles("n95") == ("n95",)
  assert M.validate_styles(list(M.MASK_STYLES)) == M.MASK_STYLES


@pytest.mark.parametrize("kwargs, field, value", [
    (dict(styles=("n95", "gaiter"), style_weights=(1.0,)), "style_weights", "(1.0,)"),
    (dict(styles=("n95", "gaiter"), style_weights=(0.0, 0.0)), "style_weights", "(0.0, 0.0)"),
    (dict(styles=("n95", "gaiter"), style_weights=(1.0, -1.0)), "style_weights", "-1.0"),
    (dict(styles=("n95", "gaiter"), style_weights=(1.0, np.inf)), "style_weights", "inf"),
    (dict(coverage=(0.8, 0.2)), "coverage", "(0.8, 0.2)"),
    (dict(coverage=1.5), "coverage", "1.5"),
    (dict(coverage=(0.1, 0.2, 0.3)), "coverage", "(0.1, 0.2, 0.3)"),
    (dict(tilt_degrees=-1.0), "tilt_degrees", "-1.0"),
    (dict(scale_jitter=-0.1), "scale_jitter", "-0.1"),
    (dict(offset_jitter=float("nan")), "offset_jitter", "nan"),
])
def test_bad_arguments(kwargs, field, value):
  with pytest.raises(ValueError) as e:
    M.MaskSpec(**kwargs)
  msg = str(e.value)
  assert f"data.mask.{field}" in msg and value in msg and "\n" not in msg, msg


def test_spec_normalises_and_is_hashable():
  spec = M.MaskSpec(styles=["n95"], style_weights=[2], coverage=0.5, tilt_degrees=3)
  assert spec.styles == ("n95",) and spec.style_weights == (2.0,)
  assert spec.coverage == (0.5, 0.5) and spec.tilt_degrees == 3.0
  assert isinstance(spec.coverage[0], float) and isinstance(spec.style_weights[0], float)
  assert hash(spec) == hash(M.MaskSpec(styles=("n95",), style_weights=(2.0,), coverage=(0.5, 0.5),
                                       tilt_degrees=3.0))
  assert M.MaskSpec() == ALL_STYLES and M.MaskSpec().styles == M.MASK_STYLES
  config = ml_collections.ConfigDict(dict(
      styles=("n95", "gaiter"), style_weights=(), coverage=(0.2, 0.9), tilt_degrees=5.0,
      scale_jitter=0.0, offset_jitter=0.01))
  assert M.MaskSpec.from_config(config) == M.MaskSpec(
      styles=("n95", "gaiter"), coverage=(0.2, 0.9), tilt_degrees=5.0, scale_jitter=0.0,
      offset_jitter=0.01)
  config.style_weights = (1.0, 3.0)
  assert M.MaskSpec.from_config(config).style_weights == (1.0, 3.0)


def test_style_weights_select_style():
  # a zero weight never renders its style (a single style left: no switch); gaiter always
  # reaches the image bottom, n95 never does
  face = _checker(32)

  def is_gaiter(draws, **spec):
    _, alpha = _run(face, draws, M.MaskSpec(styles=("n95", "gaiter"), **spec))
    return alpha[-1, 16, 0] > 0.5

  for seed in range(4):
    assert is_gaiter(_draws(seed), style_weights=(0.0, 1.0))
    assert not is_gaiter(_draws(seed), style_weights=(1.0, 0.0))
  # two styles: the draw picks from the weights' CDF
  assert not is_gaiter(_draws(0)._replace(style=jnp.float32(0.2)), style_weights=(1.0, 3.0))
  assert is_gaiter(_draws(0)._replace(style=jnp.float32(0.3)), style_weights=(1.0, 3.0))


@pytest.mark.parametrize("style", ["surgical", "bandana", "cloth_print", "gaiter"])
def test_jit_matches_eager(style):
  # eager: a single-style spec (no switch), op by op; jitted: the style's branch of the switch
  face = _checker(32)
  draws = _draws(9, M.MASK_STYLES.index(style))
  with jax.disable_jit():
    eager = M.render(face, LM, draws, M.MaskSpec(styles=(style,)))
  jitted = _run(face, draws)
  for e, j in zip(eager, jitted):
    # fusion changes float rounding by ulps; the gaiter's camo (a steep smoothstep of summed
    # sines) magnifies that to ~3e-5 at a few pixels of this draw, hence the max's tolerance
    diff = np.abs(np.asarray(e) - j)
    assert diff.mean() < 1e-6 and diff.max() < 1e-4, (diff.mean(), diff.max())


def test_synthesize_matches_render():
  size, batch = 32, 4
  rng = np.random.default_rng(0)
  faces = rng.uniform(size=(batch, size, size, 3)).astype(np.float32)
  landmarks = np.broadcast_to(LM, (batch, 8, 2)) + rng.normal(0, 0.01, (batch, 8, 2))
  landmarks = landmarks.astype(np.float32)
  keys = jax.random.split(jax.random.key(12), batch)
  masked, alpha = synthesize(faces, landmarks, keys, ALL_STYLES)
  assert masked.shape == (batch, size, size, 3) and alpha.shape == (batch, size, size, 1)
  assert masked.dtype == jnp.float32 and alpha.dtype == jnp.float32
  for i in range(batch):
    want_masked, want_alpha = render(faces[i], landmarks[i], M.draw(keys[i]), ALL_STYLES)
    np.testing.assert_allclose(masked[i], want_masked, atol=1e-6)
    np.testing.assert_allclose(alpha[i], want_alpha, atol=1e-6)
  assert not np.array_equal(alpha[0], alpha[1])


def test_repeated_jit_calls_are_bit_identical():
  size, batch = 32, 4  # as in test_synthesize_matches_render: the same compiled function
  faces = np.broadcast_to(_checker(size), (batch, size, size, 3))
  landmarks = np.broadcast_to(LM, (batch, 8, 2))
  keys = jax.random.split(jax.random.key(24), batch)
  first = [np.asarray(t) for t in synthesize(faces, landmarks, keys, ALL_STYLES)]
  for _ in range(3):
    for got, want in zip(synthesize(faces, landmarks, keys, ALL_STYLES), first):
      np.testing.assert_array_equal(np.asarray(got), want)
