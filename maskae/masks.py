"""Procedural face-mask synthesis (the "noise process" of the denoising autoencoder).

Everything is jax.numpy / jax.lax math on a per-pixel coordinate grid, so masks are drawn
inside a jitted training step, on CPU or GPU.  All randomness of one mask is drawn up front
from a PRNG key (:func:`draw` -> :class:`MaskDraws`), so ``(face, landmarks, key)`` always gives
the same output; :func:`render` draws one mask, :func:`synthesize` a batch (one key per example).

Shapes are smooth implicit functions: each style builds an approximate signed
distance (in pixels, positive outside) in a *face frame* derived from the
landmarks, and converts it to coverage with a ~1 px anti-aliasing ramp.

Face frame (all lengths in pixels):
  * origin at the nose tip, x axis along the eye line (roll) plus a random tilt,
    then shifted so that ``lx == 0`` is halfway between ``left_face``/``right_face``;
  * ``hw`` = half the face width (left_face..right_face), ``fh`` = nose bridge to chin;
  * ``u = lx / hw`` is the normalised horizontal position (+-1 at the face outline).

Composition (returned ``alpha``/``masked`` satisfy
``masked = alpha * mask_rgb + (1 - alpha) * face`` for an implicit ``mask_rgb``):
a soft contact shadow (black, opacity <= 0.48, a band ~3.5% of the face height
wide, strongest above the top edge) darkens the face around the mask, the mask
body is composited over it and ear loops / straps over that.  Hence ``alpha`` is
exactly 0 away from the mask (where ``masked == face`` bit-for-bit), exactly 1
inside the mask body and below 0.5 in the shadow band.

Coverage: top edge centre = lerp(just under the nose tip (32% of the way from nose
tip to mouth), nose bridge, coverage).  ``offset_jitter`` is a fraction of the face
width; scale jitter is applied about the top edge so coverage keeps its meaning.

Performance: a mask is elementwise float32 math on [H, W] fields (colours [3] broadcast
against [H, W, 1]) that XLA fuses; there is no convolution and no per-pixel Python loop.
The style is a ``lax.switch`` and :func:`synthesize` maps over the batch with ``lax.map``,
so each example computes only its own style (under ``vmap`` a switch computes all nine).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

LANDMARK_NAMES = (
    "left_eye",
    "right_eye",
    "nose_bridge",
    "nose_tip",
    "mouth",
    "chin",
    "left_face",
    "right_face",
)
_LEFT_EYE = LANDMARK_NAMES.index("left_eye")
_RIGHT_EYE = LANDMARK_NAMES.index("right_eye")
_NOSE_BRIDGE = LANDMARK_NAMES.index("nose_bridge")
_NOSE_TIP = LANDMARK_NAMES.index("nose_tip")
_MOUTH = LANDMARK_NAMES.index("mouth")
_CHIN = LANDMARK_NAMES.index("chin")
_LEFT_FACE = LANDMARK_NAMES.index("left_face")
_RIGHT_FACE = LANDMARK_NAMES.index("right_face")

MASK_STYLES = (
    "surgical",
    "n95",
    "cloth_stripes",
    "cloth_dots",
    "cloth_plaid",
    "cloth_print",
    "bandana",
    "gaiter",
    "plain_dark",
)

# Fixed landmark template for aligned UTKFace 200x200 crops (x, y) in [0, 1].
UTKFACE_TEMPLATE = np.array(
    [
        [0.33, 0.29],  # left_eye (image left)
        [0.67, 0.29],  # right_eye
        [0.50, 0.36],  # nose_bridge
        [0.50, 0.50],  # nose_tip
        [0.50, 0.71],  # mouth
        [0.50, 0.93],  # chin
        [0.14, 0.50],  # left_face
        [0.86, 0.50],  # right_face
    ],
    dtype=np.float32,
)

_NUM_GEOMETRY_DRAWS = 8
_NUM_STYLE_PARAMS = 64
_GRAIN_TILE = 64  # the grain is a random square tile of this many pixels, tiled over the image
_GRAIN_LIMIT = 1.732  # grain is uniform in [-limit, limit): unit variance


def validate_styles(styles) -> tuple[str, ...]:
  """Returns ``styles`` as a tuple of names; raises ValueError on unknown/empty."""
  if isinstance(styles, str):
    styles = (styles,)
  styles = tuple(styles)
  valid = ", ".join(MASK_STYLES)
  if not styles:
    raise ValueError(f"no mask styles given; valid styles: {valid}")
  for s in styles:
    if s not in MASK_STYLES:
      raise ValueError(f'unknown mask style "{s}"; valid styles: {valid}')
  return styles


@dataclasses.dataclass(frozen=True)
class MaskSpec:
  """What masks to draw (the data.mask config block)."""

  styles: tuple[str, ...] = MASK_STYLES
  style_weights: tuple[float, ...] | None = None  # one per style, >= 0; None: uniform
  coverage: tuple[float, float] = (0.0, 1.0)  # 0: top edge under the nose, 1: at the bridge
  tilt_degrees: float = 8.0  # max random rotation on top of the eye-line roll
  scale_jitter: float = 0.08  # max relative random scale (independent in x and y)
  offset_jitter: float = 0.03  # max random shift, as a fraction of the face width

  def __post_init__(self):
    try:
      styles = validate_styles(self.styles)
    except ValueError as e:
      raise ValueError(f"data.mask.styles: {e}") from None
    object.__setattr__(self, "styles", tuple(str(s) for s in styles))

    if self.style_weights is not None:
      weights = tuple(float(w) for w in np.asarray(self.style_weights, np.float64).reshape(-1))
      if len(weights) != len(styles):
        raise ValueError(f"data.mask.style_weights {weights} has {len(weights)} entries for "
                         f"{len(styles)} styles {styles}")
      if not all(math.isfinite(w) and w >= 0 for w in weights) or not any(weights):
        raise ValueError(f"data.mask.style_weights {weights} must be finite, non-negative and "
                         "not all zero")
      object.__setattr__(self, "style_weights", weights)

    coverage = self.coverage
    if np.ndim(coverage) == 0:
      coverage = (coverage, coverage)
    coverage = tuple(float(c) for c in np.asarray(coverage, np.float64).reshape(-1))
    if len(coverage) != 2 or not 0.0 <= coverage[0] <= coverage[1] <= 1.0:
      raise ValueError(f"data.mask.coverage {self.coverage} must be (lo, hi) with "
                       "0 <= lo <= hi <= 1 (or one number in [0, 1])")
    object.__setattr__(self, "coverage", coverage)

    for name in ("tilt_degrees", "scale_jitter", "offset_jitter"):
      value = float(getattr(self, name))
      if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"data.mask.{name} must be a finite number >= 0, got {value}")
      object.__setattr__(self, name, value)

  @classmethod
  def from_config(cls, mask_config) -> MaskSpec:
    """From an ml_collections data.mask block (style_weights () means uniform)."""
    return cls(styles=tuple(mask_config.styles),
               style_weights=tuple(mask_config.style_weights) or None,
               coverage=mask_config.coverage,
               tilt_degrees=mask_config.tilt_degrees,
               scale_jitter=mask_config.scale_jitter,
               offset_jitter=mask_config.offset_jitter)


class MaskDraws(NamedTuple):
  """All the randomness of one mask (float32 uniforms in [0, 1) unless noted)."""

  geometry: jax.Array  # [8]: coverage, tilt, sx, sy, offset x, offset y, light, (unused)
  style: jax.Array  # []: picks the style from the weights' CDF
  style_params: jax.Array  # [64]: handed out in order by the style renderers
  grain: jax.Array  # [64, 64] uniform in [-1.732, 1.732): the fabric grain tile


def draw(key: jax.Array) -> MaskDraws:
  """The draws of one mask from a typed PRNG key (jax.random.key)."""
  geometry_key, style_key, params_key, grain_key = jax.random.split(key, 4)
  return MaskDraws(
      geometry=jax.random.uniform(geometry_key, (_NUM_GEOMETRY_DRAWS,)),
      style=jax.random.uniform(style_key, ()),
      style_params=jax.random.uniform(params_key, (_NUM_STYLE_PARAMS,)),
      grain=jax.random.uniform(grain_key, (_GRAIN_TILE, _GRAIN_TILE),
                               minval=-_GRAIN_LIMIT, maxval=_GRAIN_LIMIT))


# ----------------------------------------------------------------------------
# Palettes (linear-ish sRGB in [0, 1]) and weights.
# ----------------------------------------------------------------------------
_SURGICAL_COLORS = (
    ((0.56, 0.77, 0.91), 3.0),  # classic light blue
    ((0.42, 0.66, 0.86), 1.0),  # deeper blue
    ((0.94, 0.95, 0.95), 2.0),  # white
    ((0.95, 0.73, 0.79), 1.0),  # pink
    ((0.11, 0.11, 0.12), 1.5),  # black
    ((0.62, 0.85, 0.78), 0.5),  # mint
)
_N95_COLORS = (
    ((0.95, 0.95, 0.93), 3.0),  # white
    ((0.90, 0.89, 0.85), 1.0),  # off-white
    ((0.71, 0.72, 0.73), 1.0),  # grey
    ((0.93, 0.86, 0.62), 1.0),  # yellowish
    ((0.19, 0.20, 0.22), 1.0),  # dark
)
_CLOTH_COLORS = (
    ((0.12, 0.16, 0.36), 1.0),  # navy
    ((0.74, 0.13, 0.15), 1.0),  # red
    ((0.42, 0.46, 0.25), 1.0),  # olive
    ((0.88, 0.68, 0.20), 1.0),  # mustard
    ((0.09, 0.50, 0.53), 1.0),  # teal
    ((0.92, 0.56, 0.66), 1.0),  # pink
    ((0.84, 0.76, 0.62), 1.0),  # beige
    ((0.93, 0.93, 0.91), 1.0),  # white
    ((0.56, 0.57, 0.59), 1.0),  # grey
    ((0.10, 0.10, 0.11), 1.0),  # black
    ((0.42, 0.26, 0.58), 1.0),  # purple
    ((0.52, 0.72, 0.92), 1.0),  # sky
    ((0.18, 0.50, 0.30), 1.0),  # green
    ((0.93, 0.47, 0.16), 1.0),  # orange
    ((0.30, 0.42, 0.62), 1.0),  # denim
)
_BANDANA_COLORS = (
    ((0.74, 0.10, 0.12), 3.0),  # red
    ((0.10, 0.15, 0.38), 2.0),  # navy
    ((0.08, 0.08, 0.09), 2.0),  # black
    ((0.12, 0.42, 0.22), 1.0),  # green
    ((0.40, 0.18, 0.50), 0.7),  # purple
    ((0.90, 0.45, 0.12), 0.7),  # orange
    ((0.35, 0.58, 0.85), 0.7),  # sky blue
)
_GAITER_COLORS = (
    ((0.09, 0.09, 0.10), 2.0),  # black
    ((0.48, 0.49, 0.51), 1.5),  # heather grey
    ((0.12, 0.17, 0.35), 1.0),  # navy
    ((0.33, 0.38, 0.22), 1.0),  # olive
    ((0.70, 0.14, 0.15), 0.7),  # red
    ((0.18, 0.40, 0.72), 0.7),  # blue
    ((0.55, 0.45, 0.32), 0.7),  # tan
)
_DARK_COLORS = (
    ((0.06, 0.06, 0.07), 3.0),  # black
    ((0.09, 0.11, 0.22), 1.5),  # navy
    ((0.22, 0.23, 0.25), 1.5),  # charcoal
    ((0.33, 0.34, 0.36), 0.7),  # dark grey
    ((0.20, 0.14, 0.11), 0.5),  # dark brown
)
_ELASTIC_COLORS = (
    ((0.95, 0.95, 0.94), 2.0),
    ((0.10, 0.10, 0.11), 1.0),
    ((0.75, 0.76, 0.78), 0.5),
)
_STRAP_COLORS = (
    ((0.95, 0.93, 0.85), 2.0),  # white
    ((0.95, 0.80, 0.20), 1.0),  # yellow
    ((0.25, 0.45, 0.85), 1.0),  # blue
    ((0.30, 0.65, 0.35), 0.5),  # green
    ((0.95, 0.55, 0.15), 0.5),  # orange
)


# ----------------------------------------------------------------------------
# Small helpers.  Fields are [H, W]; colour images are [H, W, 3]; colours are [3].
# ----------------------------------------------------------------------------
def _smoothstep(e0, e1, x):
  t = jnp.clip((x - e0) / (e1 - e0), 0.0, 1.0)
  return t * t * (3.0 - 2.0 * t)


def _ramp(e0, e1, x):
  """Linear version of smoothstep (cheaper, for where smoothness doesn't show)."""
  return jnp.clip((x - e0) / (e1 - e0), 0.0, 1.0)


def _fract(x):
  return x - jnp.floor(x)


def _smax(distances, k):
  """Smooth maximum (rounded intersection) of distance fields, radius ``k``."""
  m = distances[0]
  for d in distances[1:]:
    m = jnp.maximum(m, d)
  s = jnp.exp((distances[0] - m) / k)
  for d in distances[1:]:
    s += jnp.exp((d - m) / k)
  return m + k * jnp.log(s)


def _pixels(field):
  """[H, W] field -> [H, W, 1], to broadcast against colours and colour images."""
  return lax.optimization_barrier(field)[..., None]


def _mix_colors(a, b, t):
  """Colour blend a + (b - a) * t; a, b: [3] colours or [H, W, 3] images; t: [H, W]."""
  return a + (b - a) * _pixels(t)


def _sin(x):
  """sin for per-pixel fields: range reduction and a polynomial that XLA vectorises (its jnp.sin
  and jnp.cos call the scalar C library, ~15x slower per pixel on CPU); |error| < 3e-5
  for |x| < 1e3 (the rounding of x itself)."""
  k = jnp.round(x * (1.0 / (2.0 * math.pi)))
  r = (x - k * 6.28125) - k * 0.0019353071795864769  # 2 pi in two parts (Cody-Waite)
  r = jnp.where(r > 0.5 * math.pi, math.pi - r, jnp.where(r < -0.5 * math.pi, -math.pi - r, r))
  r2 = r * r
  return r * (1.0 + r2 * (-1.0 / 6 + r2 * (1.0 / 120 + r2 * (-1.0 / 5040 + r2 * (
      1.0 / 362880 + r2 * (-1.0 / 39916800))))))


def _cos(x):
  """cos for per-pixel fields (see _sin)."""
  return _sin(x + 0.5 * math.pi)


def _atan2(y, x):
  """atan2 for per-pixel fields, vectorisable (see _sin); |error| < 1e-5 rad."""
  ax, ay = jnp.abs(x), jnp.abs(y)
  a = jnp.minimum(ax, ay) / jnp.maximum(jnp.maximum(ax, ay), 1e-30)
  s = a * a
  r = a * (0.99997726 + s * (-0.33262347 + s * (0.19354346 + s * (-0.11643287 + s * (
      0.05265332 + s * -0.01172120)))))
  r = jnp.where(ay > ax, 0.5 * math.pi - r, r)
  r = jnp.where(x < 0, math.pi - r, r)
  return jnp.where(y < 0, -r, r)


def _wrap_angle(angle):
  """The angle in [-pi, pi]."""
  return angle - (2.0 * math.pi) * jnp.round(angle * (1.0 / (2.0 * math.pi)))


def _seg_dist(px, py, ax, ay, bx, by):
  """Distance from points (px, py) to the segment a-b."""
  bax, bay = bx - ax, by - ay
  pax, pay = px - ax, py - ay
  h = jnp.clip((pax * bax + pay * bay) / (bax * bax + bay * bay + 1e-6), 0.0, 1.0)
  dx, dy = pax - bax * h, pay - bay * h
  return jnp.sqrt(dx * dx + dy * dy + 1e-12)


def _palette(entries):
  """(colours [N, 3], the CDF of the weights without its final 1 [N - 1]), float32."""
  colors = np.array([c for c, _ in entries], np.float32)
  weights = np.array([w for _, w in entries], np.float64)
  cdf = np.cumsum(weights / weights.sum())[:-1].astype(np.float32)
  return colors, cdf


def _luma(color):
  return 0.299 * color[0] + 0.587 * color[1] + 0.114 * color[2]


class _ParamStream:
  """Hands out the style's uniforms (MaskDraws.style_params) in order (a trace-time counter)."""

  def __init__(self, style_params):
    self._params = style_params
    self._next = 0

  def __call__(self):
    """The next uniform in [0, 1)."""
    if self._next >= self._params.shape[0]:
      raise RuntimeError("style_params exhausted; draw more")
    value = self._params[self._next]
    self._next += 1
    return value

  def uniform(self, lo, hi):
    return lo + (hi - lo) * self()

  def flag(self, p):
    """1.0 with probability p else 0.0."""
    return (self() < p).astype(jnp.float32)

  def choice(self, n):
    return jnp.minimum((self() * n).astype(jnp.int32), n - 1)

  def _jitter(self, color, jitter, brightness):
    color = color * (1.0 + brightness * (2.0 * self() - 1.0))
    offsets = jnp.stack([self(), self(), self()]) * 2.0 - 1.0
    return jnp.clip(color + jitter * offsets, 0.0, 1.0)

  def color(self, entries, jitter=0.05, brightness=0.10):
    """Weighted palette colour with brightness and per-channel jitter: [3]."""
    colors, cdf = _palette(entries)
    index = jnp.sum(self() > cdf)
    return self._jitter(jnp.asarray(colors)[index], jitter, brightness)

  def color_pair(self, entries, jitter=0.05):
    """Two different palette colours (uniform over entries)."""
    colors, _ = _palette(entries)
    n = len(colors)
    i1 = self.choice(n)
    i2 = (i1 + 1 + self.choice(n - 1)) % n
    colors = jnp.asarray(colors)
    return [self._jitter(colors[i], jitter, 0.08) for i in (i1, i2)]


@dataclasses.dataclass(frozen=True)
class FaceFrame:
  """One example's geometry shared by all style renderers (lengths in local pixels)."""

  lx: jax.Array  # [H, W] pixel centres' x in the face frame (0: face centre line)
  ly: jax.Array  # [H, W] pixel centres' y in the face frame (0: nose tip, down positive)
  alx: jax.Array  # [H, W] |lx|
  u: jax.Array  # [H, W] lx / hw (+-1 at the face outline)
  au: jax.Array  # [H, W] |u|
  pu: jax.Array  # [H, W] pattern coordinate x, in face widths
  pv: jax.Array  # [H, W] pattern coordinate y, in face widths
  grain: jax.Array  # [H, W] zero-mean fabric grain (unit variance, less on small images)
  hw: jax.Array  # half the face width
  fh: jax.Array  # face height: nose bridge to chin
  y_eye: jax.Array  # eye line
  y_mouth: jax.Array  # mouth
  y_chin: jax.Array  # chin
  top_c: jax.Array  # the mask's top edge at the centre line (set by the coverage)
  coverage: jax.Array  # the drawn coverage in [0, 1]
  light: jax.Array  # horizontal light direction in [-1, 1]
  pxs: jax.Array  # local units -> pixels (the scale jitter)
  aa: jax.Array  # local units -> anti-aliasing ramp units
  fpx: jax.Array  # one pixel, in face widths


def _face_frame(shape, landmarks, draws: MaskDraws, spec: MaskSpec) -> FaceFrame:
  """The face frame of an image of ``shape`` (H, W) from its landmarks and geometry draws."""
  height, width = shape
  size = math.sqrt(height * width)
  g = [draws.geometry[i] for i in range(_NUM_GEOMETRY_DRAWS)]
  cov_lo, cov_hi = spec.coverage
  coverage = cov_lo + (cov_hi - cov_lo) * g[0]
  tilt = (2.0 * g[1] - 1.0) * (spec.tilt_degrees * math.pi / 180.0)
  sx = 1.0 + (2.0 * g[2] - 1.0) * spec.scale_jitter
  sy = 1.0 + (2.0 * g[3] - 1.0) * spec.scale_jitter
  light = 2.0 * g[6] - 1.0

  lm = landmarks * jnp.array([width, height], jnp.float32)[None, :]  # pixels
  tip = lm[_NOSE_TIP]
  eye_vec = lm[_RIGHT_EYE] - lm[_LEFT_EYE]
  roll = jnp.arctan2(eye_vec[1], jnp.maximum(eye_vec[0], 1e-3))
  c0, s0 = jnp.cos(roll), jnp.sin(roll)
  d = lm - tip[None, :]
  lmx = c0 * d[:, 0] + s0 * d[:, 1]
  lmy = c0 * d[:, 1] - s0 * d[:, 0]
  cx = 0.5 * (lmx[_LEFT_FACE] + lmx[_RIGHT_FACE])
  hw = jnp.maximum(0.5 * (lmx[_RIGHT_FACE] - lmx[_LEFT_FACE]), 2.0)
  y_bridge = jnp.minimum(lmy[_NOSE_BRIDGE], -1.0)
  y_chin = jnp.maximum(lmy[_CHIN], 2.0)
  y_mouth = jnp.clip(lmy[_MOUTH], 1.0, y_chin - 1.0)
  y_eye = jnp.minimum(0.5 * (lmy[_LEFT_EYE] + lmy[_RIGHT_EYE]), y_bridge)
  fh = jnp.maximum(y_chin - y_bridge, 4.0)
  y_under = 0.32 * y_mouth  # just below the nose tip
  top_c = y_under + (y_bridge - y_under) * coverage

  ox = (2.0 * g[4] - 1.0) * spec.offset_jitter * 2.0 * hw
  oy = (2.0 * g[5] - 1.0) * spec.offset_jitter * 2.0 * hw

  # pixel centres -> face frame: rotate about the nose tip, shift, then scale
  # (vertical scale about the top edge so that coverage keeps its meaning)
  th = roll + tilt
  c, s = jnp.cos(th), jnp.sin(th)
  ys = jnp.arange(height, dtype=jnp.float32)[:, None] + (0.5 - tip[1])
  xs = jnp.arange(width, dtype=jnp.float32)[None, :] + (0.5 - tip[0])
  lx = (xs * (c / sx) + ys * (s / sx)) - (cx + ox) / sx
  ly = (ys * (c / sy) - xs * (s / sy)) + (top_c - (oy + top_c) / sy)

  u = lx * (1.0 / hw)
  pxs = jnp.sqrt(sx * sy)
  soft = max(1.0, size / 200.0)  # anti-aliasing ramp width (px)
  fw = 2.0 * hw
  # the grain tile, tiled over the image (weaker on small images: photo noise/texture
  # averages out when downsampled)
  reps = (-(-height // _GRAIN_TILE), -(-width // _GRAIN_TILE))
  grain = jnp.tile(draws.grain, reps)[:height, :width] * float(np.clip(size / 160.0, 0.35, 1.0))
  return FaceFrame(
      lx=lx, ly=ly, alx=jnp.abs(lx), u=u, au=jnp.abs(u),
      pu=lx * (1.0 / fw), pv=ly * (1.0 / fw), grain=grain,
      hw=hw, fh=fh, y_eye=y_eye, y_mouth=y_mouth, y_chin=y_chin, top_c=top_c,
      coverage=coverage, light=light, pxs=pxs, aa=pxs / soft, fpx=1.0 / (fw * pxs))


# ----------------------------------------------------------------------------
# Shared drawing pieces.  Distances are in local (pre-scale-jitter) pixel units;
# frame.aa converts them to anti-aliasing ramp units (pixels / softness).
# ----------------------------------------------------------------------------
def _fill(frame, sdf):
  """Anti-aliased coverage of the region sdf < 0."""
  return jnp.clip(0.5 - sdf * frame.aa, 0.0, 1.0)


def _stroke(frame, dist, half_width):
  """Anti-aliased coverage of a line of given half width around dist == 0.

  Lines thinner than the AA ramp are drawn with reduced opacity instead of aliasing."""
  a = jnp.clip((0.5 + half_width * frame.aa) - dist * frame.aa, 0.0, 1.0)
  return a * jnp.minimum(1.0, 2.0 * half_width * frame.aa)


def _band(frame, coord, period, duty):
  """Anti-aliased square wave along ``coord`` (face-width units): 1 on stripes.

  Fades to its mean value ``duty`` when the period gets close to a pixel."""
  d = jnp.abs(_fract(coord * (1.0 / period)) - 0.5)  # distance to stripe centre, in periods
  k = period / frame.fpx
  s = jnp.clip((0.5 + 0.5 * duty * k) - d * k, 0.0, 1.0)
  fade = jnp.clip(k / 2.0 - 1.0, 0.0, 1.0)
  return duty * (1.0 - fade) + s * fade


def _hash2(i, j):
  return _fract(_sin(i * 12.9898 + j * 78.233) * 43758.5453)


def _cylinder_shade(frame, w, strength):
  """Darker toward the left/right edges; brightest slightly toward the light."""
  uu = jnp.clip((frame.u - 0.25 * frame.light) * (1.0 / (w + 0.1)), -1.0, 1.0)
  return 1.0 - strength * jnp.square(uu)


def _vertical_shade(frame, strength):
  """Slightly darker under the chin (less light from above)."""
  return 1.0 - strength * _ramp(frame.y_mouth, frame.y_chin + 0.10 * frame.fh, frame.ly)


def _ear_loops(frame, w, y_top_corner, y_bot_corner, half_width):
  """Elastic ear loops: on each side a sheared half-ellipse leaving the top and
  bottom mask corners and bulging outward/up to the ear.

  Returns coverage [H, W].  Uses |lx| so one evaluation draws both sides."""
  hw = frame.hw
  x0 = (w - 0.02) * hw
  X = frame.alx - x0
  yc = 0.5 * (y_top_corner + y_bot_corner)
  b = jnp.maximum(0.5 * (y_bot_corner - y_top_corner), 2.0)
  a = 0.19 * hw
  y_ear = 0.30 * frame.y_eye  # loop apex: around the ear, between eye and nose tip height
  shear = (yc - y_ear) / a
  Y = (frame.ly - yc) + shear * X
  Xa, Yb = X * (1.0 / a), Y * (1.0 / b)
  k = jnp.sqrt(jnp.square(Xa) + jnp.square(Yb) + 1e-12)
  gx = Xa * (1.0 / a) + Yb * (shear / b)
  gy = Yb * (1.0 / b)
  d = jnp.abs(k - 1.0) * k * lax.rsqrt(gx * gx + gy * gy + 1e-12)
  visible = jnp.clip(X * frame.aa + 0.5, 0.0, 1.0)
  return _stroke(frame, d, half_width) * visible


def _grain(frame, amount):
  """Per-pixel fabric/paper grain, [H, W, 1] (zero-mean)."""
  return _pixels(amount * frame.grain)


def _weave(frame, period):
  """Fine cross-hatched weave texture in [-1, 1], faded out when it would alias."""
  k = 2 * math.pi / period
  fade = jnp.clip(period / frame.fpx / 2.0 - 1.0, 0.0, 1.0)
  return (_sin(frame.pu * k) * _sin(frame.pv * k)) * fade


# ----------------------------------------------------------------------------
# Styles.  Each takes (frame, rng) and returns (body_sdf [H, W] (local px, < 0 inside),
# body_rgb [H, W, 3], extra_alpha [H, W] (loops / straps) or None, extra_rgb [3] or None,
# shadow_strength scalar).
# ----------------------------------------------------------------------------
def _style_surgical(frame, rng):
  hw, fh, ly = frame.hw, frame.fh, frame.ly
  w = rng.uniform(1.03, 1.10)
  u2 = jnp.square(jnp.clip(frame.u, -w, w))
  tdrop = (0.05 + 0.10 * frame.coverage) * fh
  bdrop = rng.uniform(0.03, 0.08) * fh
  top = frame.top_c + tdrop * u2
  bot = (frame.y_chin + bdrop) - (0.30 * fh) * u2
  sdf = _smax([top - ly, ly - bot, frame.alx - w * hw], 0.03 * fh)

  dtop = ly - top
  hgt = jnp.maximum(bot - top, 1.0)
  t = dtop / hgt
  # --- pleats: three folds, each a dark crease with a highlight just above
  t0 = rng.uniform(0.25, 0.31)
  dt = rng.uniform(0.17, 0.21)
  sig = jnp.maximum(0.8 / frame.pxs, 0.011 * fh)
  p = (t - t0) * (1.0 / dt)
  dd = (_fract(p + 0.5) - 0.5) * (dt * hgt)  # px distance to the nearest crease
  zone = _ramp(-0.6, -0.45, p) * _ramp(2.6, 2.45, p)
  pleat = -0.22 * jnp.exp(-jnp.square((dd - 1.1 * sig) * (1.0 / sig)))
  pleat += 0.10 * jnp.exp(-jnp.square((dd + 1.2 * sig) * (1.0 / (1.4 * sig))))
  pleat += 0.07 * (_fract(p) - 0.5)
  shade = 1.0 + pleat * zone
  # --- bound edges: lighter strips along the sides, hemmed top/bottom
  inner_side = w * hw - frame.alx
  bw = 0.075 * hw
  tb = jnp.minimum(dtop, bot - ly)
  band = jnp.maximum(_ramp(bw + 1.0, bw - 1.0, inner_side),
                     _ramp(0.035 * fh + 1.0, 0.035 * fh - 1.0, tb))
  shade += 0.07 * band
  lw = jnp.maximum(0.45 / frame.pxs, 0.006 * fh)
  shade -= 0.10 * _stroke(frame, jnp.abs(inner_side - bw), lw)  # stitch line of the side binding
  # --- nose wire along the top edge
  wt = jnp.maximum(0.7 / frame.pxs, 0.010 * fh)
  dw = dtop - 0.032 * fh
  span = _ramp(0.40, 0.30, frame.au)
  wire = (0.16 * _stroke(frame, jnp.abs(dw + 0.3 * wt), wt)
          - 0.20 * _stroke(frame, jnp.abs(dw - 1.6 * wt), 0.8 * wt))
  shade += wire * span

  shade *= _cylinder_shade(frame, w, 0.32) * _vertical_shade(frame, 0.12)
  base = rng.color(_SURGICAL_COLORS, jitter=0.03)
  rgb = base * _pixels(shade) + _grain(frame, 0.007)
  # --- ear loops from the corners
  y_tc = frame.top_c + tdrop * w * w + 0.05 * fh
  y_bc = frame.y_chin + bdrop - 0.30 * fh * w * w - 0.05 * fh
  loops = _ear_loops(frame, w, y_tc, y_bc, jnp.maximum(0.5 / frame.pxs, 0.010 * fh))
  dark = (_luma(base) < 0.3).astype(jnp.float32)
  loop_rgb = jnp.array([0.95, 0.95, 0.95]) * (1.0 - dark) + base * 1.3 * dark
  return sdf, rgb, loops, loop_rgb, rng.uniform(0.30, 0.42)


def _style_n95(frame, rng):
  hw, fh, lx, ly = frame.hw, frame.fh, frame.lx, frame.ly
  top = frame.top_c - 0.02 * fh
  bottom = frame.y_chin + rng.uniform(0.0, 0.05) * fh
  cy = 0.5 * (top + bottom)
  ry = 0.5 * (bottom - top)
  rx = rng.uniform(0.86, 0.95) * hw
  vn = (ly - cy) * (1.0 / ry)
  # cup outline: a squircle-ish shape, a little narrower toward the nose
  narrow = jnp.square(jnp.clip(vn, -1.0, 0.0))
  qx = lx * (1.0 / rx) / (1.0 - 0.14 * narrow)
  qx2, vn2 = jnp.square(qx), jnp.square(vn)
  rr = qx2 + vn2
  rad = 0.6 * jnp.sqrt(rr) + 0.4 * jnp.sqrt(jnp.sqrt(jnp.square(qx2) + jnp.square(vn2)))
  rmin = jnp.minimum(rx, ry)
  sdf = (rad - 1.0) * rmin

  # dome normal and lighting: strong radial shading
  nz = jnp.sqrt(1.0 - 0.93 * jnp.minimum(rr, 1.0))
  lxd = 0.35 * frame.light
  lam = (qx * lxd - 0.45 * vn + nz) * (1.0 / math.sqrt(1.0 + 0.45**2))
  shade = 0.30 + 0.75 * jnp.clip(lam, 0.0, 1.1)
  spec = 0.10 * jnp.exp(-(jnp.square(qx - lxd) + jnp.square(vn + 0.35)) * 10.0)
  # welded rim just inside the edge and the vertical centre seam
  lw = jnp.maximum(0.5 / frame.pxs, 0.006 * fh)
  shade -= 0.12 * _stroke(frame, jnp.abs(sdf + 0.06 * rmin), lw)
  shade -= 0.22 * _stroke(frame, frame.alx, lw) * _ramp(1.0, 0.85, rad)
  shade += 0.08 * _stroke(frame, jnp.abs(lx - 2.5 * lw), lw)
  # metal nose clip (50%)
  clip_on = rng.flag(0.5)
  inner = -sdf
  clip_a = (
      _ramp(0.015 * fh, 0.025 * fh, inner)
      * _ramp(0.065 * fh, 0.055 * fh, inner)
      * _ramp(0.26 * hw, 0.22 * hw, frame.alx)
      * _ramp(-0.25, -0.35, vn)
  ) * (0.85 * clip_on)
  base = rng.color(_N95_COLORS, jitter=0.025)
  clip_col = jnp.array([0.62, 0.64, 0.67])
  col = _mix_colors(base, clip_col, clip_a)
  rgb = col * _pixels(shade) + _pixels(spec + 0.018 * frame.grain)
  # head straps (70%): upper goes up toward the crown, lower toward the neck
  straps_on = rng.flag(0.7)
  sw = jnp.maximum(0.6 / frame.pxs, 0.012 * fh)
  y1 = cy - 0.45 * ry
  y2 = cy + 0.45 * ry
  x1 = rx * 0.88
  d1 = _seg_dist(frame.alx, ly, x1, y1, 1.20 * hw, y1 - 0.22 * fh)
  d2 = _seg_dist(frame.alx, ly, x1, y2, 1.20 * hw, y2 + 0.02 * fh)
  straps = _stroke(frame, jnp.minimum(d1, d2), sw) * straps_on
  strap_col = rng.color(_STRAP_COLORS, jitter=0.03)
  return sdf, rgb, straps, strap_col * 0.9, rng.uniform(0.38, 0.48)


def _cloth_shape(frame, rng):
  """Contoured fabric mask: peak at the nose, rounded under the chin."""
  hw, fh, ly = frame.hw, frame.fh, frame.ly
  w = rng.uniform(0.98, 1.05)
  au = jnp.minimum(frame.au, w)
  tdrop = (0.06 + 0.09 * frame.coverage) * fh
  top = frame.top_c + tdrop * (au * jnp.sqrt(au))  # |u|^1.5
  bdrop = rng.uniform(0.04, 0.09) * fh
  bot = (frame.y_chin + bdrop) - (0.38 * fh) * jnp.square(au)
  sdf = _smax([top - ly, ly - bot, frame.alx - w * hw], 0.07 * fh)
  y_tc = frame.top_c + tdrop * w**1.5 + 0.07 * fh
  y_bc = frame.y_chin + bdrop - 0.38 * fh * w * w - 0.08 * fh
  return w, sdf, y_tc, y_bc


def _cloth_finish(frame, rng, w, sdf, pattern_rgb, seam_prob=0.5, sheen=None):
  """Fabric shading: cylinder, chin shadow, optional centre seam, stitched hem, weave."""
  shade = _cylinder_shade(frame, w, 0.38) * _vertical_shade(frame, 0.15)
  seam_on = rng.flag(seam_prob)
  lw = jnp.maximum(0.5 / frame.pxs, 0.006 * frame.fh)
  # centre seam: dark line, panels lit slightly differently (the mask puffs out at the seam)
  shade -= (seam_on * 0.25) * _stroke(frame, frame.alx, lw)
  shade *= 1.0 + (seam_on * 0.05 * frame.light) * jnp.tanh(frame.u * 5.0)
  # hem stitch line inset from the border
  shade -= 0.10 * _stroke(frame, jnp.abs(sdf + 0.045 * frame.fh), 0.7 * lw)
  # a soft horizontal crease across the middle
  fold_y = frame.y_mouth + rng.uniform(-0.10, 0.05) * frame.fh
  shade -= rng.uniform(0.0, 0.08) * jnp.exp(
      -jnp.square((frame.ly - fold_y) * (1.0 / (0.05 * frame.fh))))
  shade += 0.03 * _weave(frame, 0.012)
  add = 0.015 * frame.grain
  if sheen is not None:  # a soft highlight on the upper half
    add = add + sheen * jnp.exp(-jnp.square(frame.u - 0.3 * frame.light) * 6.0) * _ramp(
        frame.top_c, frame.y_mouth, frame.ly)
  return pattern_rgb * _pixels(shade) + _pixels(add)


def _cloth_loops(frame, rng, w, y_tc, y_bc, base):
  loops = _ear_loops(frame, w, y_tc, y_bc, jnp.maximum(0.55 / frame.pxs, 0.012 * frame.fh))
  elastic = rng.color(_ELASTIC_COLORS, jitter=0.02)
  match = rng.flag(0.35)  # sometimes the loops match the fabric
  return loops, elastic * (1.0 - match) + base * match


def _rotated(frame, angle):
  c, s = jnp.cos(angle), jnp.sin(angle)
  return frame.pu * c + frame.pv * s, frame.pv * c - frame.pu * s


def _style_cloth_stripes(frame, rng):
  w, sdf, y_tc, y_bc = _cloth_shape(frame, rng)
  c1, c2 = rng.color_pair(_CLOTH_COLORS)
  c3 = rng.color(_CLOTH_COLORS)
  angles = jnp.array([0.0, 90.0, 45.0, -45.0, 0.0]) * (math.pi / 180)
  ang = angles[rng.choice(5)] + rng.uniform(-0.08, 0.08)
  c, s = jnp.cos(ang), jnp.sin(ang)
  a = frame.pu * c + frame.pv * s
  period = rng.uniform(0.06, 0.14)
  main = _band(frame, a + rng(), period, rng.uniform(0.3, 0.55))
  # optional thin accent stripe between the main stripes
  thin = _band(frame, a + 0.5 * period, period, 0.12) * rng.flag(0.5)
  rgb = _mix_colors(_mix_colors(c1, c2, main), c3, thin)
  rgb = _cloth_finish(frame, rng, w, sdf, rgb)
  loops, loop_rgb = _cloth_loops(frame, rng, w, y_tc, y_bc, c1)
  return sdf, rgb, loops, loop_rgb, rng.uniform(0.28, 0.40)


def _style_cloth_dots(frame, rng):
  w, sdf, y_tc, y_bc = _cloth_shape(frame, rng)
  c1, c2 = rng.color_pair(_CLOTH_COLORS)
  period = rng.uniform(0.06, 0.12)
  rad = rng.uniform(0.18, 0.32)  # in periods
  a, b = _rotated(frame, rng.uniform(-0.3, 0.3))
  qy = b * (1.0 / period)
  qx = a * (1.0 / period) + (0.5 * rng.flag(0.7)) * jnp.floor(qy)
  fx = _fract(qx) - 0.5
  fy = _fract(qy) - 0.5
  k = period / frame.fpx
  dot = jnp.clip((0.5 + rad * k) - jnp.sqrt(fx * fx + fy * fy) * k, 0.0, 1.0)
  mean = math.pi * rad * rad
  fade = jnp.clip(k / 3.0 - 1.0, 0.0, 1.0)
  dot = mean * (1.0 - fade) + dot * fade
  rgb = _cloth_finish(frame, rng, w, sdf, _mix_colors(c1, c2, dot))
  loops, loop_rgb = _cloth_loops(frame, rng, w, y_tc, y_bc, c1)
  return sdf, rgb, loops, loop_rgb, rng.uniform(0.28, 0.40)


def _style_cloth_plaid(frame, rng):
  w, sdf, y_tc, y_bc = _cloth_shape(frame, rng)
  c1, c2 = rng.color_pair(_CLOTH_COLORS)
  c3 = rng.color(_CLOTH_COLORS)
  a, b = _rotated(frame, rng.uniform(-0.1, 0.1) + rng.flag(0.25) * (math.pi / 4))
  period = rng.uniform(0.16, 0.30)
  off = rng()
  # broad bands in both directions; where they cross the colour is deepest
  h = _band(frame, b + off, period, 0.42)
  v = _band(frame, a + off, period, 0.42)
  mix = 0.55 * (h + v - 0.55 * h * v)  # two translucent layers of c2 over c1
  # thin contrasting lines (the "tartan" overcheck)
  th = _band(frame, b + (off + 0.5 * period), period, 0.06)
  tv = _band(frame, a + (off + 0.5 * period), period, 0.06)
  rgb = _mix_colors(_mix_colors(c1, c2, mix), c3, 0.8 * jnp.maximum(th, tv))
  # darker crossings and narrow twill diagonals
  tw = _band(frame, a + b, 0.02, 0.5)
  tex = (1.0 - 0.18 * h * v) * (0.96 + 0.08 * tw)
  rgb = _cloth_finish(frame, rng, w, sdf, rgb * _pixels(tex))
  loops, loop_rgb = _cloth_loops(frame, rng, w, y_tc, y_bc, c1)
  return sdf, rgb, loops, loop_rgb, rng.uniform(0.28, 0.40)


def _staggered_cell(a, b, period):
  """Cells of a grid of `period` whose rows are shifted by half a cell: (per-cell hash in [0, 1),
  x and y within the cell in [-0.5, 0.5), and the grid coordinates qx, qy)."""
  qy = b * (1.0 / period)
  row = jnp.floor(qy)
  qx = a * (1.0 / period) + 0.5 * row
  return _hash2(jnp.floor(qx), row), _fract(qx) - 0.5, _fract(qy) - 0.5, qx, qy


def _flowers(frame, a, b, period, c1, c2, c3):
  """Small 5-petal flowers on a staggered grid with per-cell rotation and colour."""
  hsh, fx, fy, _, _ = _staggered_cell(a, b, period)
  rr = jnp.sqrt(fx * fx + fy * fy + 1e-12)
  th = _atan2(fy, fx) + hsh * 6.2832
  rad = 0.30 * (0.62 + 0.38 * _cos(5.0 * th))
  k = period / frame.fpx
  fade = jnp.clip(k / 4.0 - 1.0, 0.0, 1.0)
  petals = jnp.clip((rad - rr) * k + 0.5, 0.0, 1.0)
  centre = jnp.clip((0.09 - rr) * k + 0.5, 0.0, 1.0)
  petals = 0.25 * (1.0 - fade) + petals * fade
  centre = 0.03 * (1.0 - fade) + centre * fade
  which = (hsh > 0.5).astype(jnp.float32)
  rgb = _mix_colors(c1, c2, petals * (1.0 - which))
  rgb = _mix_colors(rgb, c3, petals * which)
  return _mix_colors(rgb, jnp.array([0.97, 0.92, 0.55]), centre)


def _blobs(a, b, freq, phases):
  """Soft random blob field from a few warped sinusoids (range about [-1, 1])."""
  acc = 0.0
  dirs = [(1.0, 0.3), (-0.4, 1.0), (0.8, -0.7), (0.2, 0.9)]
  warp = 0.7 * _sin((a - b) * (freq * 1.7) + phases[-1] * 6.2832)
  for k, (dx, dy) in enumerate(dirs):
    f = freq * (1.0 + 0.37 * k) * 6.2832
    acc += _sin((a * (f * dx) + b * (f * dy)) + (warp + phases[k] * 6.2832))
  return acc * (1.0 / 2.0)


def _style_cloth_print(frame, rng):
  w, sdf, y_tc, y_bc = _cloth_shape(frame, rng)
  c1, c2 = rng.color_pair(_CLOTH_COLORS)
  c3 = rng.color(_CLOTH_COLORS)
  a, b = _rotated(frame, rng.uniform(-0.3, 0.3))
  period = rng.uniform(0.09, 0.15)
  phases = [rng() for _ in range(5)]
  freq = rng.uniform(2.5, 4.5)
  e = frame.fpx * rng.uniform(9.0, 18.0)

  def flowers():  # variant A: small flower motifs
    return _flowers(frame, a, b, period, c1, c2, c3)

  def blobs():  # variant B: soft blobs (camo / abstract print), three colour levels
    n = _blobs(a, b, freq, phases)
    l1 = _smoothstep(-0.15 - e, -0.15 + e, n)
    l2 = _smoothstep(0.35 - e, 0.35 + e, n)
    return _mix_colors(_mix_colors(c1, c2, l1), c3, l2)

  rgb = lax.cond(rng() < 0.4, blobs, flowers)
  rgb = _cloth_finish(frame, rng, w, sdf, rgb)
  loops, loop_rgb = _cloth_loops(frame, rng, w, y_tc, y_bc, c1)
  return sdf, rgb, loops, loop_rgb, rng.uniform(0.28, 0.40)


def _style_plain_dark(frame, rng):
  w, sdf, y_tc, y_bc = _cloth_shape(frame, rng)
  base = rng.color(_DARK_COLORS, jitter=0.015, brightness=0.15)
  rgb = _cloth_finish(frame, rng, w, sdf, base, seam_prob=0.4, sheen=rng.uniform(0.03, 0.08))
  loops, loop_rgb = _cloth_loops(frame, rng, w, y_tc, y_bc, base)
  return sdf, rgb, loops, loop_rgb, rng.uniform(0.28, 0.40)


def _paisley(frame, a, b, period):
  """Paisley-ish curled teardrops (outline + inner dot) on a staggered grid, with
  tiny filler dots.  Returns motif coverage [H, W] (faded when too small to resolve)."""
  hsh, fx, fy, qx, qy = _staggered_cell(a, b, period)
  # drop body: circle of radius R with a gaussian "tail" bump in direction th0;
  # the tail direction drifts with radius so the tail curls.
  R = 0.17
  th0 = 0.8 + math.pi * jnp.floor(hsh * 2.0) + 0.6 * (hsh - 0.5)
  cx = fx + 0.07 * _cos(th0)  # body sits opposite to the tail
  cy = fy + 0.07 * _sin(th0)
  rr = jnp.sqrt(cx * cx + cy * cy + 1e-12)
  dth = _atan2(cy, cx) - th0 - 1.1 * (rr * (1.0 / R) - 1.0)
  dth = _wrap_angle(dth)
  rb = R * (1.0 + 1.2 * jnp.exp(-jnp.square(dth * (1.0 / 0.42))))
  k = period / frame.fpx
  outer = jnp.clip((rb - rr) * k + 0.5, 0.0, 1.0)
  inner = jnp.clip((0.70 * rb - 0.012 - rr) * k + 0.5, 0.0, 1.0)
  core = jnp.clip((0.32 * R - rr) * k + 0.5, 0.0, 1.0)
  motif = jnp.maximum(outer - inner, core)
  # tiny filler dots between motifs
  gx = _fract(qx * 2.0 + 0.25) - 0.5
  gy = _fract(qy * 2.0 + 0.5) - 0.5
  filler = jnp.clip((0.06 - jnp.sqrt(gx * gx + gy * gy)) * (0.5 * k) + 0.5, 0.0, 1.0)
  filler *= jnp.clip((rr - rb - 0.05) * k + 0.5, 0.0, 1.0)
  fade = jnp.clip(k / 6.0 - 1.0, 0.0, 1.0)
  m = jnp.maximum(motif, 0.8 * filler)
  return 0.18 * (1.0 - fade) + m * fade


def _style_bandana(frame, rng):
  hw, fh, ly = frame.hw, frame.fh, frame.ly
  w = rng.uniform(1.22, 1.38) * hw
  u2 = jnp.square(jnp.minimum(frame.au, 1.4))
  top = (frame.top_c + 0.03 * fh) + (0.04 * fh) * u2
  y_pt = frame.y_chin + rng.uniform(0.55, 0.95) * fh
  span = y_pt - frame.top_c
  # straight sides from (+-w, top) converging to the point below the chin
  cosang = span / jnp.sqrt(span * span + w * w)
  d_side = (frame.alx - w + (ly - frame.top_c) * (w / span)) * cosang
  sdf = _smax([top - ly, d_side], 0.05 * fh)

  base = rng.color(_BANDANA_COLORS, jitter=0.03)
  light_base = (_luma(base) > 0.55).astype(jnp.float32)
  motif_col = (jnp.array([0.96, 0.95, 0.90]) * (1.0 - light_base)
               + jnp.array([0.06, 0.06, 0.07]) * light_base)
  a, b = _rotated(frame, rng.uniform(-0.15, 0.15))
  pais = _paisley(frame, a, b, rng.uniform(0.13, 0.20))
  # border: a line following the hanging edges
  border = _stroke(frame, jnp.abs(sdf + 0.07 * fh), jnp.maximum(0.6 / frame.pxs, 0.010 * fh))
  plain = rng.flag(0.3)
  m = jnp.minimum((1.0 - plain) * pais + border, 1.0)
  rgb = _mix_colors(base, motif_col, m)
  # drape: folds radiating from the point, a rolled top edge, cylinder shading
  ang = _atan2(frame.lx, (y_pt - ly) + 1e-3)
  nf = rng.uniform(7.0, 11.0)
  shade = 1.0 + 0.10 * _sin(ang * nf + rng() * 6.28) * _ramp(frame.top_c, frame.y_chin, ly)
  dtop = ly - top
  shade += 0.10 * jnp.exp(-jnp.square((dtop - 0.02 * fh) * (1.0 / (0.02 * fh))))  # rolled top
  shade -= 0.14 * jnp.exp(-jnp.square((dtop - 0.07 * fh) * (1.0 / (0.03 * fh))))  # its shadow
  shade *= _cylinder_shade(frame, w / hw, 0.35) * _vertical_shade(frame, 0.10)
  shade += 0.025 * _weave(frame, 0.012)
  rgb = rgb * _pixels(shade) + _grain(frame, 0.015)
  return sdf, rgb, None, None, rng.uniform(0.30, 0.42)


def _style_gaiter(frame, rng):
  hw, fh, ly = frame.hw, frame.fh, frame.ly
  u2 = jnp.square(jnp.minimum(frame.au, 1.3))
  top = (frame.top_c + 0.02 * fh) + ((0.03 + 0.06 * frame.coverage) * fh) * u2
  # wide over the cheeks, pulled in under the jaw, neck-width tube down to the image edge
  y_j = frame.y_mouth + 0.5 * (frame.y_chin - frame.y_mouth)
  w_top = rng.uniform(1.04, 1.12)
  w_neck = rng.uniform(0.72, 0.85)
  hwid = hw * w_neck + (hw * (w_top - w_neck)) * jax.nn.sigmoid((y_j - ly) * (1.0 / (0.12 * fh)))
  sdf = _smax([top - ly, frame.alx - hwid], 0.05 * fh)

  c1, c2 = rng.color_pair(_GAITER_COLORS)
  a, b = frame.pu, frame.pv
  variant = rng.choice(3)  # 0 solid, 1 horizontal stripes, 2 camo blobs
  s_off, s_per, s_duty = rng(), rng.uniform(0.08, 0.16), rng.uniform(0.2, 0.5)
  phases = [rng() for _ in range(5)]
  freq = rng.uniform(3.0, 5.0)
  pattern = lax.switch(variant, [
      lambda: jnp.zeros_like(a),
      lambda: _band(frame, b + s_off, s_per, s_duty),
      lambda: _smoothstep(0.05, 0.15, _blobs(a, b, freq, phases)),
  ])
  rgb = _mix_colors(c1, c2, pattern)
  # bunched horizontal folds below the nose/chin with wobble, crease under the chin
  wob = ly + (0.03 * fh) * _sin(frame.u * 3.0 + rng() * 6.28)
  fp = rng.uniform(0.10, 0.15) * fh
  folds = 0.5 + 0.5 * _sin(wob * (6.2832 / fp) + rng() * 6.28)
  shade = 1.0 - (0.16 * folds) * _smoothstep(frame.y_mouth, frame.y_chin, ly)
  shade -= 0.18 * jnp.exp(-jnp.square((ly - (frame.y_chin + 0.06 * fh)) * (1.0 / (0.06 * fh))))
  shade *= _cylinder_shade(frame, w_top, 0.42)
  # knit ribs
  rib = 0.008
  shade += ((0.03 * jnp.clip(rib / frame.fpx / 2 - 1, 0.0, 1.0))
            * _sin(frame.pu * (6.2832 / rib)))
  spec = rng.uniform(0.0, 0.06) * jnp.exp(-jnp.square(frame.u - 0.3 * frame.light) * 10.0)
  rgb = rgb * _pixels(shade) + _pixels(spec + 0.015 * frame.grain)
  return sdf, rgb, None, None, rng.uniform(0.30, 0.40)


_RENDERERS = {
    "surgical": _style_surgical,
    "n95": _style_n95,
    "cloth_stripes": _style_cloth_stripes,
    "cloth_dots": _style_cloth_dots,
    "cloth_plaid": _style_cloth_plaid,
    "cloth_print": _style_cloth_print,
    "bandana": _style_bandana,
    "gaiter": _style_gaiter,
    "plain_dark": _style_plain_dark,
}
assert set(_RENDERERS) == set(MASK_STYLES)


# ----------------------------------------------------------------------------
# Entry points.
# ----------------------------------------------------------------------------
def _style_choice(spec: MaskSpec):
  """The styles with a weight > 0 and the CDF of their weights without its final 1 (float32).
  A single style is listed twice, the second never drawn: XLA:CPU ran a style 3-4x faster as a
  lax.switch branch than inlined in the lax.map body (measured at 128 px, jax 0.10)."""
  weights = np.ones(len(spec.styles)) if spec.style_weights is None else spec.style_weights
  names = [name for name, weight in zip(spec.styles, weights) if weight > 0]
  weights = np.array([weight for weight in weights if weight > 0], np.float64)
  if len(names) == 1:
    names, weights = names * 2, np.array([1.0, 0.0])
  return names, np.cumsum(weights / weights.sum())[:-1].astype(np.float32)


def _layers(name, frame, style_params):
  """One style's layers: (body alpha [H, W], body rgb [H, W, 3], shadow [H, W],
  loops/straps alpha [H, W], loops/straps rgb [3]), each clipped to [0, 1]."""
  rng = _ParamStream(style_params)  # fresh per style: every style sees the same draws
  sdf, rgb, extra_alpha, extra_rgb, strength = _RENDERERS[name](frame, rng)
  body_alpha = _fill(frame, sdf)
  # soft contact shadow: falls off over ~3% of the face height outside the
  # mask, strongest above the top edge (the mask stands off the face there)
  reach = jnp.maximum(1.5, 0.035 * frame.fh)
  fall = jnp.square(jnp.clip(1.0 - sdf * (1.0 / reach), 0.0, 1.0))
  above = jnp.clip((frame.y_mouth - frame.ly) * (1.0 / (0.3 * frame.fh)), 0.35, 1.0)
  shadow = (strength * fall) * above
  if extra_alpha is None:  # bandana, gaiter: no loops or straps
    extra_alpha, extra_rgb = jnp.zeros_like(body_alpha), jnp.zeros(3, jnp.float32)
  body_rgb = jnp.broadcast_to(jnp.clip(rgb, 0.0, 1.0), body_alpha.shape + (3,))
  return body_alpha, body_rgb, shadow, extra_alpha, jnp.clip(extra_rgb, 0.0, 1.0)


def render(face, landmarks, draws: MaskDraws, spec: MaskSpec) -> tuple[jax.Array, jax.Array]:
  """One mask: face float32 [H, W, 3] in [0, 1] (static square shape), landmarks [8, 2]
  normalised (x, y) in LANDMARK_NAMES order -> (masked [H, W, 3], alpha [H, W, 1]), float32.

  ``masked = alpha * mask_rgb + (1 - alpha) * face``: alpha is 1 on the mask, 0 away from it
  (there ``masked == face`` exactly) and below ~0.5 in the soft contact shadow around it.
  """
  face = jnp.asarray(face, jnp.float32)
  landmarks = jnp.asarray(landmarks, jnp.float32).reshape(len(LANDMARK_NAMES), 2)
  frame = _face_frame(face.shape[:2], landmarks, draws, spec)

  names, cdf = _style_choice(spec)
  branches = [functools.partial(_layers, name, frame, draws.style_params) for name in names]
  layers = lax.switch(jnp.sum(draws.style >= cdf), branches)
  body_alpha, body_rgb, shadow, extra_alpha, extra_rgb = layers

  # layers, bottom to top: face, black shadow, mask body, loops/straps
  keep_face = (1.0 - shadow) * (1.0 - body_alpha) * (1.0 - extra_alpha)
  premultiplied = (body_rgb * _pixels(body_alpha) * _pixels(1.0 - extra_alpha)
                   + extra_rgb * _pixels(extra_alpha))
  masked = jnp.clip(premultiplied + face * _pixels(keep_face), 0.0, 1.0)
  return masked, _pixels(1.0 - keep_face)


def synthesize(faces, landmarks, keys, spec: MaskSpec) -> tuple[jax.Array, jax.Array]:
  """A batch: faces float32 [B, H, W, 3], landmarks [B, 8, 2], keys: typed key array [B] ->
  (masked [B, H, W, 3], alpha [B, H, W, 1]).

  lax.map (not vmap) over the examples, so each example's lax.switch runs only its own
  style's branch (under vmap a switch computes all nine styles)."""
  draws = jax.vmap(draw)(keys)
  return lax.map(lambda example: render(*example, spec), (faces, landmarks, draws))
