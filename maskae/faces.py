"""Procedural face generator: the embedded default face source (no data download needed).

Each face is drawn as layered anti-aliased polygons in a canonical upright face frame
(normalized image coordinates laid out like aligned UTKFace crops: eyes ~29% of the height,
nose tip ~50%, mouth ~71%, chin ~93%) and posed by a per-face similarity transform (a few %
of shift/scale jitter and a slight head tilt), so landmarks are exact. The person (clothes,
hair, neck, ears, face) is drawn supersampled with premultiplied alpha, downsampled with
INTER_AREA, shaded by smooth multiplicative light maps and composited over a soft background.
"""

import functools
import math

import cv2
import numpy as np

# (x, y) in normalized image coordinates (x right, y down); left/right are image-left/right.
# Eyes: centres of the eye openings; nose_bridge: on the nose a third of the way from the eye
# line to the nose tip; mouth: centre of the lip line; chin: bottom of the face outline;
# left_face/right_face: the face outline's edges at nose-tip (cheek) height.
LANDMARK_NAMES = ("left_eye", "right_eye", "nose_bridge", "nose_tip", "mouth", "chin",
                  "left_face", "right_face")

_SHIFT = 4  # fixed-point fractional bits for sub-pixel polygon vertices
_ONE = 1 << _SHIFT
_NEUTRAL = 128  # shade-map value meaning "no change" (values are multipliers * 128)
_FORM_PX = 32  # resolution of the coarse (form shading) light map
_BACKGROUND_PX = 48  # resolution the (soft) background is drawn at
_MIN_CANVAS_PX = 128  # supersampled drawing canvas is at least this big (and >= 2x)

# Light to dark skin tones (RGB).
_SKIN_TONES = np.array([
    (246, 220, 200), (238, 200, 172), (228, 184, 150), (214, 163, 124), (190, 136, 97),
    (160, 108, 72), (128, 84, 56), (98, 64, 43), (72, 47, 33)], np.float32)
# Hair colours (RGB) and their frequency weights for light and dark skin.
_HAIR_COLOURS = np.array([
    (24, 20, 18), (52, 36, 27), (92, 62, 40), (136, 96, 60), (168, 132, 84), (214, 182, 128),
    (134, 58, 30), (176, 84, 42), (138, 136, 132), (212, 208, 202)], np.float32)
_HAIR_WEIGHTS_LIGHT = np.array([0.18, 0.2, 0.16, 0.1, 0.08, 0.08, 0.04, 0.04, 0.06, 0.06])
_HAIR_WEIGHTS_DARK = np.array([0.55, 0.25, 0.06, 0.01, 0.0, 0.0, 0.01, 0.0, 0.07, 0.05])
_IRIS_COLOURS = np.array([
    (58, 34, 20), (96, 58, 30), (128, 96, 50), (78, 116, 68), (76, 118, 168), (112, 128, 146)],
    np.float32)
_IRIS_WEIGHTS_LIGHT = np.array([0.2, 0.25, 0.15, 0.12, 0.18, 0.1])
_IRIS_WEIGHTS_DARK = np.array([0.6, 0.35, 0.05, 0.0, 0.0, 0.0])
_HAIR_STYLES = ("bald", "short", "fringe", "long", "curly")
_HAIR_STYLE_WEIGHTS = (0.1, 0.32, 0.16, 0.28, 0.14)
# name: (cheek half-width, jaw taper, jaw squareness exponent, chin half-width, chin y offset)
_FACE_SHAPES = {
    "oval": (0.355, 0.80, 2.1, 0.048, 0.0),
    "round": (0.380, 0.92, 2.6, 0.075, -0.015),
    "long": (0.328, 0.82, 2.0, 0.053, 0.015),
    "square": (0.370, 0.95, 3.6, 0.095, 0.0),
    "heart": (0.362, 0.68, 1.8, 0.038, 0.005),
}


def _colour(rgb) -> tuple:
  """cv2 drawing colour from an RGB triple (clipped to the uint8 range)."""
  return tuple(min(255.0, max(0.0, float(c))) for c in rgb)


def _mix(a, b, t: float) -> np.ndarray:
  return np.asarray(a, np.float32) * (1 - t) + np.asarray(b, np.float32) * t


@functools.lru_cache(maxsize=None)
def _unit_steps(n: int) -> np.ndarray:
  return np.linspace(0.0, 1.0, n)


@functools.lru_cache(maxsize=None)
def _cos_sin(start: float, stop: float, n: int) -> tuple:
  t = np.linspace(start, stop, n)
  return np.cos(t), np.sin(t)


@functools.lru_cache(maxsize=None)
def _bezier_basis(n: int) -> np.ndarray:
  t = _unit_steps(n)[:, None]
  return np.concatenate([(1 - t) ** 2, 2 * (1 - t) * t, t ** 2], 1)


def _ellipse(cx, cy, rx, ry, angle=0.0, start=0.0, stop=2 * math.pi, n=32) -> np.ndarray:
  """Points on an (arc of an) ellipse rotated by `angle` radians."""
  cos, sin = _cos_sin(start, stop, n)
  ca, sa = math.cos(angle), math.sin(angle)
  points = np.empty((n, 2))
  points[:, 0] = cx + (ca * rx) * cos - (sa * ry) * sin
  points[:, 1] = cy + (sa * rx) * cos + (ca * ry) * sin
  return points


def _dome(cx, cy, rx, ry, power, start=0.0, n=32) -> np.ndarray:
  """Upper arc of a superellipse |x/rx|^power + |y/ry|^power = 1, running left to right.

  `start` in [0, 1] is the height (as a fraction of ry above cy) where the arc starts and ends.
  """
  t = math.asin(start ** (power / 2)) + (math.pi - 2 * math.asin(start ** (power / 2))) * _unit_steps(n)
  c, s = np.cos(t), np.sin(t)
  return np.stack([cx - rx * np.sign(c) * np.abs(c) ** (2 / power), cy - ry * s ** (2 / power)], 1)


def _bezier(p0, p1, p2, n=12) -> np.ndarray:
  """Quadratic Bezier curve from p0 to p2 with control point p1."""
  return _bezier_basis(n) @ np.array([p0, p1, p2], np.float64)


def _beziers(p0, p1, p2, n=6) -> np.ndarray:
  """Many quadratic Bezier curves at once: [k, 2] endpoint/control arrays -> [k, n, 2]."""
  return np.einsum("nj,jkd->knd", _bezier_basis(n), np.stack([p0, p1, p2]))


def _smooth(points, iterations=3) -> np.ndarray:
  """Chaikin corner cutting of an open polyline (endpoints kept)."""
  pts = np.asarray(points, np.float64)
  for _ in range(iterations):
    cut = np.empty((2 * (len(pts) - 1), 2))
    cut[0::2] = 0.75 * pts[:-1] + 0.25 * pts[1:]
    cut[1::2] = 0.25 * pts[:-1] + 0.75 * pts[1:]
    pts = np.concatenate([pts[:1], cut, pts[-1:]])
  return pts


def _resample(curve, n) -> np.ndarray:
  """n points evenly spaced by arc length along a polyline."""
  seg = np.linalg.norm(np.diff(curve, axis=0), axis=1)
  s = np.concatenate([[0.0], np.cumsum(seg)])
  t = s[-1] * _unit_steps(n)
  return np.stack([np.interp(t, s, curve[:, 0]), np.interp(t, s, curve[:, 1])], 1)


def _stroke(curve, *widths) -> np.ndarray:
  """Polygon of a curve drawn with a width varying linearly through `widths` along it."""
  n = len(curve)
  w = np.interp(_unit_steps(n), _unit_steps(len(widths)), widths)
  d = np.empty_like(curve)
  d[1:-1] = curve[2:] - curve[:-2]
  d[0], d[-1] = curve[1] - curve[0], curve[-1] - curve[-2]
  offset = d[:, ::-1] * (w / (2 * np.hypot(d[:, 0], d[:, 1]) + 1e-12))[:, None]
  offset[:, 0] *= -1
  polygon = np.empty((2 * n, 2))
  polygon[:n] = curve + offset
  polygon[n:] = (curve - offset)[::-1]
  return polygon


def _scallop(curve, amplitude, bumps) -> np.ndarray:
  """Curve pushed sideways in `bumps` rounded bumps (amplitude > 0 pushes to the right of travel)."""
  c = _resample(curve, 6 * bumps + 1)
  d = np.gradient(c, axis=0)
  normal = np.stack([-d[:, 1], d[:, 0]], 1) / (np.hypot(d[:, 0], d[:, 1])[:, None] + 1e-12)
  return c + normal * (amplitude * np.abs(np.sin(math.pi * bumps * _unit_steps(len(c)))))[:, None]


def _mirror(points, cx) -> np.ndarray:
  pts = np.array(points, np.float64)
  pts[:, 0] = 2 * cx - pts[:, 0]
  return pts


class _Painter:
  """Draws shapes given in the canonical face frame onto rasters of any resolution."""

  def __init__(self, pose: np.ndarray):
    self.pose = pose  # 2x3 affine map: canonical normalized coords -> image normalized coords
    self._to_pixels = {}  # raster size -> (linear part transposed, offset) in fixed-point pixels

  def to_image(self, points) -> np.ndarray:
    return np.asarray(points) @ self.pose[:, :2].T + self.pose[:, 2]

  def _fixed(self, points, raster) -> np.ndarray:
    px = raster.shape[0]
    if px not in self._to_pixels:
      self._to_pixels[px] = (self.pose[:, :2].T * (px * _ONE), (self.pose[:, 2] * px - 0.5) * _ONE + 0.5)
    linear, offset = self._to_pixels[px]
    return np.floor(np.asarray(points) @ linear + offset).astype(np.int32)

  def fill(self, raster, colour, polygon):
    cv2.fillPoly(raster, [self._fixed(polygon, raster)], colour, cv2.LINE_AA, _SHIFT)

  def lines(self, raster, colour, curves, width):
    """Draws open polylines [k, n, 2] with a stroke width given as a fraction of the image."""
    thickness = max(1, int(round(width * raster.shape[0])))
    cv2.polylines(raster, list(self._fixed(curves, raster)), False, colour, thickness,
                  cv2.LINE_AA, _SHIFT)

  def fill_inside(self, raster, clip, layers):
    """Fills (polygon, colour) layers in order, keeping only what lies inside `clip`."""
    clip_px = self._fixed(clip, raster)
    x0, y0 = np.maximum((clip_px.min(0) >> _SHIFT) - 1, 0)
    x1, y1 = np.minimum((clip_px.max(0) >> _SHIFT) + 2, raster.shape[:2][::-1])
    roi = raster[y0:y1, x0:x1]
    if roi.size == 0:
      return
    origin = np.array([x0, y0], np.int32) * _ONE
    mask = np.zeros(roi.shape[:2], np.uint8)
    cv2.fillPoly(mask, [clip_px - origin], 255, cv2.LINE_AA, _SHIFT)
    painted = roi.copy()
    for polygon, colour in layers:
      cv2.fillPoly(painted, [self._fixed(polygon, raster) - origin], colour, cv2.LINE_AA, _SHIFT)
    m = mask[..., None].astype(np.uint16)
    roi[:] = ((roi * (255 - m) + painted * m + 127) // 255).astype(np.uint8)


class _Layers:
  """The rasters one face is drawn onto: premultiplied person colour + alpha and two light maps."""

  def __init__(self, paint, image, alpha, shade, form):
    self.paint, self.image, self.alpha, self.shade, self.form = paint, image, alpha, shade, form

  def person(self, colour, polygon):
    """Fills an opaque part of the person (colour and coverage)."""
    self.paint.fill(self.image, colour, polygon)
    self.paint.fill(self.alpha, 255, polygon)


class _Face:
  """Randomly sampled appearance of one face plus the code to draw it."""

  def __init__(self, rng: np.random.Generator):
    u = rng.uniform
    self.cx = 0.5
    half_w, jaw, squareness, chin_hw, chin_dy = _FACE_SHAPES[rng.choice(list(_FACE_SHAPES))]
    self.half_w = half_w * u(0.96, 1.04)
    self.jaw = jaw * u(0.95, 1.05)
    self.squareness = squareness * u(0.9, 1.1)
    self.chin_hw = chin_hw * u(0.8, 1.2)
    self.eye_y = 0.29 + u(-0.012, 0.012)
    self.nose_y = 0.50 + u(-0.012, 0.012)
    self.mouth_y = 0.71 + u(-0.012, 0.012)
    self.chin_y = 0.93 + chin_dy + u(-0.012, 0.012)
    self.top_y = self.nose_y - 0.80 * u(0.96, 1.04)  # top of the skull (above the image)
    self.skull = u(2.3, 2.9)  # superellipse power of the skull: larger is boxier

    darkness = u(0, 1)
    tone = darkness * (len(_SKIN_TONES) - 1)
    lo = min(int(tone), len(_SKIN_TONES) - 2)
    undertone = u(-1, 1)
    self.skin = (_mix(_SKIN_TONES[lo], _SKIN_TONES[lo + 1], tone - lo)
                 * np.array([1 + 0.03 * undertone, 1, 1 - 0.05 * undertone]) * u(0.95, 1.05))
    dark = darkness > 0.55
    self.hair_style = rng.choice(_HAIR_STYLES, p=_HAIR_STYLE_WEIGHTS)
    hair_p = _HAIR_WEIGHTS_DARK if dark else _HAIR_WEIGHTS_LIGHT
    self.hair = _HAIR_COLOURS[rng.choice(len(_HAIR_COLOURS), p=hair_p / hair_p.sum())] * u(0.85, 1.15)
    self.brow = (self.hair * 0.75 if self.hair_style != "bald" else _HAIR_COLOURS[rng.integers(0, 4)])
    iris_p = _IRIS_WEIGHTS_DARK if dark else _IRIS_WEIGHTS_LIGHT
    self.iris = _IRIS_COLOURS[rng.choice(len(_IRIS_COLOURS), p=iris_p / iris_p.sum())] * u(0.85, 1.15)
    self.clothes = _mix(rng.uniform(15, 235, 3), np.full(3, rng.uniform(40, 200)), u(0, 0.7))

    self.eye_dx = u(0.155, 0.182)
    self.eye_hw = u(0.052, 0.064)
    self.eye_up = u(0.021, 0.03)
    self.eye_low = u(0.010, 0.016)
    self.eye_tilt = u(-0.004, 0.008)
    self.gaze = np.array([u(-0.01, 0.01), u(-0.004, 0.003)])
    self.brow_gap = u(0.055, 0.075)
    self.brow_width = u(0.009, 0.02)
    self.brow_arch = u(0.004, 0.02)
    self.nose_hw = u(0.056, 0.076)
    self.mouth_hw = u(0.088, 0.118)
    self.lip_up = u(0.017, 0.027)
    self.lip_low = u(0.022, 0.038)
    self.smile = u(-0.006, 0.016)
    self.mouth_open = u(0.01, 0.028) if rng.random() < 0.2 else 0.0
    self.fold_depth = u(0.0, 1.0) ** 2  # nasolabial folds: 0 none .. 1 strong
    self.beard = rng.choice(("none", "stubble", "full"), p=(0.85, 0.1, 0.05))
    self.neck_hw = u(0.155, 0.2) * self.half_w / 0.355
    self.shoulder_x = u(0.46, 0.6)
    self.neckline_depth = u(0.06, 0.2)
    self.ears = self.hair_style in ("bald", "short", "fringe") and rng.random() < 0.85
    self.ear_r = np.array([u(0.036, 0.048), u(0.08, 0.095)])

    self.hair_volume = np.array([u(0.02, 0.045), u(0.03, 0.07)])  # side, top
    self.hairline_y = self.eye_y - u(0.17, 0.23)
    self.temple_depth = u(0.0, 0.05)
    self.part = u(-0.08, 0.08)
    self.side_y = self.eye_y + u(0.0, 0.05)
    if self.hair_style == "fringe":
      self.hairline_y = self.eye_y - self.brow_gap - u(0.02, 0.045)
    elif self.hair_style == "long":
      self.side_y = self.nose_y + u(-0.04, 0.14)
      self.hair_length = u(self.chin_y - 0.05, 1.35)
      self.hair_volume += (u(0.0, 0.04), 0.0)
    elif self.hair_style == "curly":
      self.hair_volume += (u(0.04, 0.1), u(0.03, 0.08))
    self.strand_sweep = int(rng.integers(-4, 5))

    angle = u(0, 2 * math.pi)
    self.light = np.array([math.cos(angle), math.sin(angle) * 0.6 - 0.4])  # mostly from above
    self.light /= np.linalg.norm(self.light)
    self.light_strength = u(0.05, 0.25)  # of the brightness gradient across the image

    scale, tilt = u(0.95, 1.05), math.radians(u(-7, 7))
    shift = rng.uniform(-0.02, 0.02, 2)
    c, s = scale * math.cos(tilt), scale * math.sin(tilt)
    pivot = np.array([0.5, 0.5])
    rot = np.array([[c, -s], [s, c]])
    self.pose = np.concatenate([rot, (pivot + shift - rot @ pivot)[:, None]], 1)
    self.rng = rng  # for the remaining (per-stroke) randomness while drawing

  # ---- geometry in the canonical frame ----

  def jaw_half_width(self, t):
    """Face half-width at fraction t of the way from nose-tip height to the chin."""
    t = np.clip(t, 0, 1)
    width = self.half_w * (1 - (1 - self.jaw) * t)
    return self.chin_hw + (width - self.chin_hw) * (1 - t ** self.squareness) ** (1 / self.squareness)

  def face_half_width(self, y):
    """Face half-width at height y (anywhere between the skull top and the chin)."""
    if y <= self.nose_y:
      dy = (self.nose_y - y) / (self.nose_y - self.top_y)
      return self.half_w * max(0.0, 1 - dy ** self.skull) ** (1 / self.skull)
    return float(self.jaw_half_width((y - self.nose_y) / (self.chin_y - self.nose_y)))

  def outline(self) -> np.ndarray:
    """Face outline polygon (clockwise from the left cheek, over the skull, around the chin)."""
    cx, ny = self.cx, self.nose_y
    top = _dome(cx, ny, self.half_w, ny - self.top_y, self.skull, n=24)
    chin_round = 0.3 * self.chin_hw
    jaw_end = self.chin_y - chin_round
    t = 1 - (1 - np.linspace(0, 1, 18)[1:]) ** 2
    y = ny + t * (jaw_end - ny)
    hw = self.jaw_half_width(t)
    right = np.stack([cx + hw, y], 1)
    bottom = _bezier(right[-1], (cx, self.chin_y + chin_round), (cx - hw[-1], jaw_end), 9)
    return np.concatenate([top, right, bottom[1:-1], _mirror(right[::-1], cx)])

  def lower_outline(self, y_from) -> np.ndarray:
    """Open jaw curve from the left side at height y_from around the chin to the right side."""
    poly = self.outline()
    keep = poly[:, 1] >= y_from
    start = np.argmax(keep & (poly[:, 0] > self.cx))  # first right-side point below y_from
    curve = np.roll(poly, -start, axis=0)
    curve = curve[curve[:, 1] >= y_from]
    return curve[::-1] if curve[0, 0] > curve[-1, 0] else curve

  def landmarks(self) -> np.ndarray:
    cx = self.cx
    canonical = np.array([
        (cx - self.eye_dx, self.eye_y), (cx + self.eye_dx, self.eye_y),
        (cx, self.eye_y + (self.nose_y - self.eye_y) / 3), (cx, self.nose_y),
        (cx, self.mouth_y), (cx, self.chin_y),
        (cx - self.half_w, self.nose_y), (cx + self.half_w, self.nose_y)])
    return _Painter(self.pose).to_image(canonical).astype(np.float32)

  # ---- drawing ----

  def draw(self, size: int) -> np.ndarray:
    """Renders the face as a uint8 RGB image of size x size."""
    canvas_px = size * max(2, -(-_MIN_CANVAS_PX // size))
    paint = _Painter(self.pose)
    image = np.zeros((canvas_px, canvas_px, 3), np.uint8)
    alpha = np.zeros((canvas_px, canvas_px), np.uint8)
    shade = np.full((size, size), _NEUTRAL, np.uint8)  # fine light map (creases, cast shadows)
    form = np.full((_FORM_PX, _FORM_PX), _NEUTRAL, np.uint8)  # coarse light map (3D form)
    layers = _Layers(paint, image, alpha, shade, form)

    self._draw_body(layers)
    self._draw_hair_back(layers)
    self._draw_neck(layers)
    if self.ears:
      self._draw_ears(layers)
    self._draw_face(layers)
    self._draw_eyes(layers)
    self._draw_nose(layers)
    self._draw_mouth(layers)
    self._draw_hair_front(layers)

    person = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32)
    coverage = cv2.resize(alpha, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32)
    light = cv2.GaussianBlur(shade, (0, 0), max(0.6, 0.008 * size)).astype(np.float32)
    light *= cv2.resize(cv2.GaussianBlur(form, (0, 0), 2.0), (size, size),
                        interpolation=cv2.INTER_LINEAR).astype(np.float32)
    axis = (np.arange(size, dtype=np.float32) + 0.5) / size - 0.5
    gradient = 1 + 3 * self.light_strength * (axis[None, :] * self.light[0] + axis[:, None] * self.light[1])
    light *= gradient / (_NEUTRAL * _NEUTRAL)
    out = person * light[..., None] + self._background(size) * (1 - coverage[..., None] / 255)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)

  def _background(self, size: int) -> np.ndarray:
    rng, u = self.rng, self.rng.uniform
    px = _BACKGROUND_PX
    base = _mix(rng.uniform(20, 240, 3), np.full(3, u(60, 220)), u(0.2, 0.9))
    other = np.clip(base * u(0.5, 1.4) + rng.uniform(-40, 40, 3), 0, 255)
    kind = rng.choice(("flat", "linear", "radial"))
    axis = np.linspace(0, 1, px, dtype=np.float32)
    if kind == "flat":
      t = np.zeros((px, px), np.float32)
    elif kind == "linear":
      angle = u(0, 2 * math.pi)
      t = np.clip(0.5 + (axis[None, :] - 0.5) * math.cos(angle) + (axis[:, None] - 0.5) * math.sin(angle), 0, 1)
    else:
      t = np.clip(np.hypot(axis[None, :] - u(0.2, 0.8), axis[:, None] - u(0.1, 0.6)) * 1.3, 0, 1)
    bg = (base * (1 - t[..., None]) + other * t[..., None]).astype(np.uint8)
    identity = _Painter(np.array([[1.0, 0, 0], [0, 1.0, 0]]))
    for _ in range(rng.integers(0, 5)):
      colour = _colour(_mix(base, rng.uniform(0, 255, 3), u(0.2, 0.6)))
      centre = rng.uniform(-0.1, 1.1, 2)
      if rng.random() < 0.5:
        shape = _ellipse(*centre, *rng.uniform(0.05, 0.35, 2), u(0, math.pi))
      else:
        hw, hh = rng.uniform(0.05, 0.5, 2)
        shape = centre + np.array([(-hw, -hh), (hw, -hh), (hw, hh), (-hw, hh)])
      identity.fill(bg, colour, shape)
    # Soft shadow the head casts on the background, away from the light.
    shadow = _ellipse(0.5 - 0.12 * self.light[0], 0.45 - 0.08 * self.light[1], 0.42, 0.55)
    dimmed = bg.copy()
    identity.fill(dimmed, (0, 0, 0), shadow)
    darkening = u(0, 1.2) * self.light_strength
    bg = cv2.addWeighted(bg, 1 - darkening, dimmed, darkening, 0)
    bg = cv2.GaussianBlur(bg, (0, 0), u(0.6, 2.0))
    return cv2.resize(bg, (size, size), interpolation=cv2.INTER_CUBIC).astype(np.float32)

  def _draw_body(self, layers):
    cx, neck_base = self.cx, self.chin_y - 0.02
    sx = self.shoulder_x
    half = [(cx - self.neck_hw * 1.1, neck_base), (cx - sx * 0.45, neck_base + 0.07),
            (cx - sx, neck_base + 0.17), (cx - sx - 0.08, 1.7)]
    left = _smooth(half, 2)
    layers.person(_colour(self.clothes), np.concatenate([left, _mirror(left[::-1], cx)]))
    depth = self.neckline_depth
    control = (cx, neck_base + depth * (2.0 if self.rng.random() < 0.3 else 1.3))
    neckline = _bezier((cx - self.neck_hw * 1.35, neck_base), control,
                       (cx + self.neck_hw * 1.35, neck_base), 14)
    layers.person(_colour(self.skin * 0.97), neckline)
    layers.person(_colour(self.clothes * 0.7), _stroke(neckline, 0.012))

  def _draw_neck(self, layers):
    cx, hw = self.cx, self.neck_hw
    neck = np.array([(cx - hw, self.nose_y), (cx + hw, self.nose_y), (cx + hw * 1.15, 1.7),
                     (cx - hw * 1.15, 1.7)])
    layers.person(_colour(self.skin * 0.97), neck)
    layers.paint.fill(layers.form, 100, neck)
    jaw_shadow = self.lower_outline(self.mouth_y - 0.05) + (0, 0.06)
    layers.paint.fill(layers.shade, 88, jaw_shadow)

  def _draw_ears(self, layers):
    ear_y = 0.5 * (self.eye_y + self.nose_y) + 0.01
    for side in (-1, 1):
      x = self.cx + side * (self.face_half_width(ear_y) + self.ear_r[0] * 0.4)
      outer = _ellipse(x, ear_y, *self.ear_r, side * 0.15)
      inner = _ellipse(x + side * self.ear_r[0] * 0.15, ear_y + 0.005, *(self.ear_r * 0.6), side * 0.15)
      layers.person(_colour(self.skin * 0.96), outer)
      layers.paint.fill(layers.image, _colour(self.skin * 0.78), inner)
      layers.paint.fill(layers.form, 110, outer)

  def _draw_face(self, layers):
    paint, cx = layers.paint, self.cx
    outline = self.outline()
    layers.person(_colour(self.skin), outline)
    paint.fill(layers.shade, _NEUTRAL, outline)
    paint.fill(layers.form, 96, outline)
    centre = np.array([cx, self.nose_y - 0.04])
    paint.fill(layers.form, 133, centre + (outline - centre) * 0.78)
    for side in (-1, 1):
      paint.fill(layers.form, 138, _ellipse(cx + side * self.half_w * 0.55, self.nose_y - 0.04, 0.07, 0.045))
      paint.fill(layers.form, 112, _ellipse(cx + side * self.eye_dx, self.eye_y, self.eye_hw * 1.5, 0.035))
    paint.fill(layers.form, 140, _ellipse(cx, self.eye_y - 0.13, 0.12, 0.045))
    paint.fill(layers.form, 138, _ellipse(cx, self.chin_y - 0.055, 0.06, 0.03))
    if self.hair_style == "bald":
      paint.fill(layers.form, 150, _ellipse(cx + 0.1 * self.light[0], 0.04, 0.12, 0.05))
    if self.beard != "none":
      self._draw_beard(layers)

  def _draw_beard(self, layers):
    cx, ny, my = self.cx, self.nose_y, self.mouth_y
    jaw = self.lower_outline(ny - 0.02)
    inner_right = [(cx + self.face_half_width(ny - 0.02) - 0.02, ny - 0.02),
                   (cx + self.mouth_hw + 0.05, my - 0.06), (cx + self.mouth_hw + 0.012, my),
                   (cx + self.nose_hw * 0.95, ny + 0.04)]
    inner = _smooth([*inner_right, (cx, ny + 0.045), *_mirror(inner_right[::-1], cx)], 3)
    if self.beard == "stubble":  # a soft bluish-grey shadow over the beard area
      layers.paint.fill(layers.form, 108, np.concatenate([jaw, inner]))
      return
    centre = np.array([cx, ny])
    jaw = centre + (jaw - centre) * 1.05 + self.rng.normal(0, 0.004, jaw.shape)
    beard = np.concatenate([jaw, inner])
    layers.person(_colour(self.brow * 0.9), beard)
    i = self.rng.integers(0, len(beard), 60)
    roots = beard[i] * 0.75 + np.array([cx, self.chin_y - 0.05]) * 0.25
    curls = _beziers(roots, roots + self.rng.normal(0, 0.012, roots.shape), beard[i] * 0.92 + roots * 0.08, 5)
    layers.paint.lines(layers.image, _colour(self.brow * 1.25 + 10), curls, 0.003)

  def _draw_eyes(self, layers):
    paint, cx, rng = layers.paint, self.cx, self.rng
    eyelid = _mix(self.brow, (20, 14, 12), 0.6)
    white = _mix((238, 234, 228), self.skin, 0.12)
    for side in (-1, 1):
      ex, ey = cx + side * self.eye_dx, self.eye_y
      inner = np.array([ex - side * self.eye_hw, ey + 0.002])
      outer = np.array([ex + side * self.eye_hw, ey - self.eye_tilt])
      upper = _bezier(inner, (ex + side * 0.1 * self.eye_hw, ey - 2.1 * self.eye_up), outer, 14)
      lower = _bezier(outer, (ex - side * 0.05 * self.eye_hw, ey + 2 * self.eye_low), inner, 14)
      almond = np.concatenate([upper, lower[1:-1]])
      r = 0.42 * self.eye_hw  # iris radius
      iris_c = np.array([ex, ey - 0.002]) + self.gaze
      glint = iris_c + self.light * r * 0.45
      paint.fill(layers.image, _colour(white), almond)
      paint.fill_inside(layers.image, almond, [
          (_ellipse(*iris_c, r, r), _colour(self.iris * 0.55)),
          (_ellipse(*iris_c, r * 0.82, r * 0.82), _colour(self.iris)),
          (_ellipse(*iris_c, r * 0.42, r * 0.42), _colour((12, 10, 10))),
          (_ellipse(*glint, r * 0.16, r * 0.16), _colour((250, 250, 250))),
          (_stroke(upper, 0.0, 0.012, 0.008), _colour(self.skin * 0.55)),  # lid shadow on the eyeball
      ])
      paint.fill(layers.image, _colour(eyelid), _stroke(upper, 0.003, 0.006, 0.009))
      paint.fill(layers.image, _colour(self.skin * 0.78), _stroke(lower, 0.002, 0.003, 0.001))
      crease = _bezier(inner + (0, -0.012), (ex + side * 0.1 * self.eye_hw, ey - 2.1 * self.eye_up - 0.022),
                       outer + (side * 0.004, -0.01), 12)
      paint.fill(layers.shade, 100, _stroke(crease, 0.002, 0.006, 0.003))
      paint.fill(layers.shade, 112, _stroke(lower + (0, 0.012), 0.002, 0.008, 0.002))
      # Eyebrow.
      by = ey - self.brow_gap
      brow = _bezier((ex - side * self.eye_hw * 1.05, by + 0.006),
                     (ex + side * self.eye_hw * 0.15, by - 2 * self.brow_arch),
                     (ex + side * self.eye_hw * 1.35, by + 0.004 - self.eye_tilt), 14)
      w = self.brow_width
      paint.fill(layers.image, _colour(self.brow), _stroke(brow, w, w * 1.05, w * 0.35))
      roots = brow[1:-2:2]
      tips = roots + (side * 0.02, -0.002)
      bends = roots + (side * 0.012, -0.006) + rng.normal(0, 0.004, roots.shape) * (0, 1)
      paint.lines(layers.image, _colour(self.brow * 0.8), _beziers(roots, bends, tips, 4), 0.003)

  def _draw_nose(self, layers):
    paint, cx, ny, nw = layers.paint, self.cx, self.nose_y, self.nose_hw
    lx = self.light[0]
    for side in (-1, 1):
      away = 0.5 - 0.5 * side * lx  # 1 on the side facing away from the light
      side_wall = _bezier((cx + side * 0.03, self.eye_y + 0.02), (cx + side * 0.036, ny - 0.09),
                          (cx + side * nw * 0.75, ny - 0.03), 12)
      paint.fill(layers.shade, int(122 - 16 * away), _stroke(side_wall, 0.012, 0.022, 0.03))
      wing = _bezier((cx + side * nw * 0.6, ny - 0.03), (cx + side * nw * 1.22, ny - 0.005),
                     (cx + side * nw * 0.5, ny + 0.03), 12)
      paint.fill(layers.shade, 96, _stroke(wing + (side * 0.006, 0), 0.002, 0.012, 0.004))
      paint.fill(layers.image, _colour(self.skin * 0.74), _stroke(wing, 0.001, 0.005, 0.002))
      paint.fill(layers.image, _colour(self.skin * 0.3),
                 _ellipse(cx + side * nw * 0.4, ny + 0.022, 0.017, 0.007, side * 0.3))
    bridge = _bezier((cx, self.eye_y + 0.06), (cx + 0.002, ny - 0.07), (cx, ny - 0.025), 10)
    paint.fill(layers.shade, 138, _stroke(bridge, 0.005, 0.012, 0.016))
    paint.fill(layers.shade, 148, _ellipse(cx - 0.008 * lx, ny - 0.008, nw * 0.32, 0.014))
    tip_base = _bezier((cx - nw * 0.5, ny + 0.012), (cx, ny + 0.03), (cx + nw * 0.5, ny + 0.012), 8)
    paint.fill(layers.shade, 100, _stroke(tip_base, 0.001, 0.008, 0.001))
    offset = -self.light * 0.014
    paint.fill(layers.shade, 90, _ellipse(cx + offset[0], ny + 0.042 + max(0.0, offset[1]), nw * 0.8, 0.012))
    # Philtrum and nasolabial folds.
    for side in (-1, 1):
      philtrum = _bezier((cx + side * 0.008, ny + 0.036), (cx + side * 0.011, self.mouth_y - 0.05),
                         (cx + side * self.mouth_hw * 0.3, self.mouth_y - self.lip_up), 8)
      paint.fill(layers.shade, 112, _stroke(philtrum, 0.003, 0.005))
      fold = _bezier((cx + side * nw * 1.15, ny - 0.005), (cx + side * (nw * 1.5 + 0.02), self.mouth_y - 0.06),
                     (cx + side * (self.mouth_hw + 0.025), self.mouth_y + 0.015), 12)
      paint.fill(layers.shade, int(_NEUTRAL - 20 * self.fold_depth), _stroke(fold, 0.001, 0.012, 0.001))

  def _draw_mouth(self, layers):
    paint, cx, my, mw = layers.paint, self.cx, self.mouth_y, self.mouth_hw
    lip = self.skin * np.array([0.86, 0.6, 0.62]) + np.array([8, 0, 2])
    left, right = np.array([cx - mw, my - self.smile / 2]), np.array([cx + mw, my - self.smile / 2])
    line = _bezier(left, (cx, my + self.smile / 2), right, 16)
    upper_edge = _smooth([right, (cx + mw * 0.55, my - self.lip_up * 0.75), (cx + mw * 0.25, my - self.lip_up),
                          (cx, my - self.lip_up * 0.72), (cx - mw * 0.25, my - self.lip_up),
                          (cx - mw * 0.55, my - self.lip_up * 0.75), left], 3)
    lower_edge = _bezier(right, (cx, my + self.lip_low * 2.1), left, 16)
    open_gap = self.mouth_open
    bulge = np.sin(math.pi * _unit_steps(len(line)))[:, None]
    upper_inner = line - (0, open_gap * 0.25) * bulge
    lower_inner = line + (0, open_gap) * bulge
    paint.fill(layers.image, _colour(lip * 0.88), np.concatenate([upper_inner, upper_edge[1:-1]]))
    paint.fill(layers.image, _colour(lip), np.concatenate([lower_inner, lower_edge[1:-1]]))
    if open_gap:
      opening = np.concatenate([upper_inner, lower_inner[::-1][1:-1]])
      teeth = np.concatenate([upper_inner, upper_inner[::-1] + (0, open_gap * 0.55)])
      paint.fill_inside(layers.image, opening, [(opening, _colour((70, 24, 30))),
                                                 (teeth, _colour((232, 226, 212)))])
    paint.fill(layers.image, _colour(lip * 0.45), _stroke(line, 0.002, 0.005, 0.002))
    paint.fill(layers.shade, 138, _stroke(upper_edge + (0, -0.006), 0.001, 0.006, 0.006, 0.001))
    paint.fill(layers.shade, 148, _ellipse(cx, my + self.lip_low * 0.55, mw * 0.4, self.lip_low * 0.28))
    paint.fill(layers.shade, 96, _ellipse(cx, my + self.lip_low * 1.25 + 0.012, mw * 0.55, 0.01))
    crease = _bezier((cx - mw * 0.5, my + self.lip_low + 0.035), (cx, my + self.lip_low + 0.025),
                     (cx + mw * 0.5, my + self.lip_low + 0.035), 10)
    paint.fill(layers.shade, 114, _stroke(crease, 0.001, 0.008, 0.001))
    for side in (-1, 1):
      corner = np.array([cx + side * mw, my - self.smile / 2])
      paint.fill(layers.shade, 104, _ellipse(*(corner + (side * 0.006, 0)), 0.008, 0.006))

  def _hair_band(self) -> tuple:
    """(outer, inner) boundary curves of the hair over the head, both running left to right."""
    cx, ny, inner_y = self.cx, self.nose_y, self.side_y
    rx, ry = self.half_w + self.hair_volume[0], ny - self.top_y + self.hair_volume[1]
    side_x = self.face_half_width(inner_y) - (0.02 if self.hair_style == "long" else 0.008)
    if inner_y > ny:  # long hair: straight curtains down the sides
      outer = _dome(cx, ny, rx, ry, self.skull, 0.0, 40)
      outer = np.concatenate([[(cx - rx - 0.01, inner_y)], outer, [(cx + rx + 0.01, inner_y)]])
    else:  # sideburns taper down to the face edge
      outer = _dome(cx, ny, rx, ry, self.skull, min(1.0, (ny - inner_y + 0.06) / ry), 40)
      ends = np.array([(cx - side_x - 0.012, inner_y + 0.01)])
      outer = np.concatenate([ends, outer, _mirror(ends, cx)])
    if self.hair_style == "fringe":  # jagged fringe straight across the forehead
      temple_y = self.hairline_y + 0.01
      temple_x = self.face_half_width(temple_y) - 0.012
      xs = np.linspace(cx - temple_x * 0.85, cx + temple_x * 0.85, 9)
      ys = self.hairline_y + self.rng.uniform(-0.006, 0.006, 9) + 0.012 * (np.arange(9) % 2)
      middle = list(zip(xs, ys))
    else:  # rounded hairline, M-shaped when the temples recede
      temple_y = 0.5 * (self.hairline_y + inner_y)
      temple_x = self.face_half_width(temple_y) - 0.012
      corner_y = self.hairline_y + 0.012 - self.temple_depth
      middle = [(cx - 0.6 * temple_x + 0.5 * self.part, corner_y), (cx + self.part, self.hairline_y),
                (cx + 0.6 * temple_x + 0.5 * self.part, corner_y)]
    inner = _smooth([(cx - side_x, inner_y), (cx - temple_x, temple_y), *middle,
                     (cx + temple_x, temple_y), (cx + side_x, inner_y)], 3)
    return outer, inner

  def _draw_hair_back(self, layers):
    cx, ny = self.cx, self.nose_y
    rx, ry = self.half_w + self.hair_volume[0], ny - self.top_y + self.hair_volume[1]
    colour = _colour(self.hair * 0.8)
    if self.hair_style == "long":
      top = _dome(cx, ny, rx, ry, self.skull, n=30)
      end = self.hair_length
      flare = self.rng.uniform(0.0, 0.08)
      right = _smooth([(cx + rx, ny), (cx + rx + flare * 0.5, (ny + end) / 2), (cx + rx + flare, end)], 2)
      bottom = _bezier((cx + rx + flare, end), (cx, end + 0.04), (cx - rx - flare, end), 10)
      layers.person(colour, np.concatenate([top, right, bottom[1:-1], _mirror(right[::-1], cx)]))
    elif self.hair_style == "curly":
      top = _dome(cx, ny - 0.08, rx, ry, self.skull, 0.0, 30)
      bottom = _ellipse(cx, ny - 0.08, rx, 0.2, start=0.0, stop=math.pi, n=12)
      layers.person(colour, _scallop(np.concatenate([top, bottom[1:]]), -0.03, 18))

  def _draw_hair_front(self, layers):
    if self.hair_style == "bald":
      return
    paint, rng = layers.paint, self.rng
    outer, inner = self._hair_band()
    if self.hair_style == "curly":
      outer, inner = _scallop(outer, -0.025, 14), _scallop(inner, 0.018, 11)
    band = np.concatenate([outer, inner[::-1]])
    shadow = band + (-0.01 * self.light[0], 0.02)  # cast by the hair onto the forehead
    paint.fill(layers.shade, 92, shadow)
    paint.fill(layers.shade, _NEUTRAL, band)
    layers.person(_colour(self.hair), band)
    outer_n, inner_n = _resample(outer, 32), _resample(inner, 32)
    if self.hair_style == "curly":
      i, f = rng.integers(1, 31, 40), rng.uniform(0.1, 0.9, (40, 1))
      centres = outer_n[i] * (1 - f) + inner_n[i] * f
      angles = rng.uniform(0, math.pi, (40, 1))
      arc = _ellipse(0, 0, 0.012, 0.009, stop=4.5, n=8)
      curls = centres[:, None] + np.stack([np.cos(angles) * arc[:, 0] - np.sin(angles) * arc[:, 1],
                                           np.sin(angles) * arc[:, 0] + np.cos(angles) * arc[:, 1]], -1)
      paint.lines(layers.image, _colour(self.hair * 0.6), curls, 0.004)
      return
    i = np.arange(2, 30)
    j = np.clip(i + self.strand_sweep, 1, 30)
    start = outer_n[i] * 0.9 + inner_n[i] * 0.1
    end = inner_n[j] * 0.97 + outer_n[i] * 0.03
    strands = _beziers(start, (start + end) / 2 + rng.normal(0, 0.01, start.shape), end, 6)
    paint.lines(layers.image, _colour(self.hair * 0.75), strands[::2], 0.004)
    paint.lines(layers.image, _colour(self.hair * 1.12 + 8), strands[1::2], 0.003)


def generate_face(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
  """One face: uint8 image [size, size, 3] RGB and float32 landmarks [len(LANDMARK_NAMES), 2].

  Landmarks are (x, y) in normalized image coordinates (x right, y down); "left" means image-left.
  """
  face = _Face(rng)
  return face.draw(size), face.landmarks()


def generate_faces(num: int, size: int, seed: int, start: int = 0) -> tuple[np.ndarray, np.ndarray]:
  """Faces start..start+num-1: uint8 [num, size, size, 3], float32 [num, L, 2].

  Face i is drawn from np.random.default_rng([seed, i]), so it is the same whatever num/start are.
  """
  images = np.empty((num, size, size, 3), np.uint8)
  landmarks = np.empty((num, len(LANDMARK_NAMES), 2), np.float32)
  for k in range(num):
    images[k], landmarks[k] = generate_face(np.random.default_rng([seed, start + k]), size)
  return images, landmarks
