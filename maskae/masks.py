"""Procedural face-mask synthesis (the "noise process" of the denoising autoencoder).

Everything is written with TensorFlow ops on a per-pixel coordinate grid, so
:func:`synthesize_mask` can run inside ``tf.data.Dataset.map`` (graph mode) with no
Python callbacks.  All randomness comes from ``tf.random.stateless_*`` ops driven by
the ``seed`` argument, so ``(face, landmarks, seed)`` always gives the same output.

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
"""

from __future__ import annotations

import functools
import math

import numpy as np
import tensorflow as tf

# Bitwise determinism in graph mode (tf.function, tf.data): grappler's arithmetic optimizer merges
# chains of adds (``a + b + c``) into AddN ops, and the AddN kernel moves whichever input buffer it
# can reuse at run time to the front, so the summation order -- and the masks, by an ulp -- varied
# from call to call and process to process.  This switches that optimizer off for all graph
# functions of the process (TF only builds inputs here; synthesis speed was the same within noise),
# and this module uses no tf.add_n.
tf.config.optimizer.set_experimental_options({"arithmetic_optimization": False})

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
_LE, _RE, _NB, _NT, _MO, _CH, _LF, _RF = range(8)

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


def validate_styles(styles) -> tuple[str, ...]:
    """Return ``styles`` as a tuple of names; raise ValueError on unknown/empty."""
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
# Small helpers.
#
# Performance notes (CPU, per op on a 256x256 field): plain [H, W] elementwise ops
# cost ~25-40 us; anything that interleaves into a trailing channel axis
# ([H,W,1] * [3], tf.stack(axis=-1), broadcast_to [H,W,3]) costs 0.3-1 ms, and
# tf.pow ~0.7 ms.  So colour images are kept *planar* ([3, H, W], broadcasting
# [3,1,1] colours against [1,H,W] fields), there is no tf.pow, no convolution, and
# a single transpose produces the [H, W, 3] output.
# ----------------------------------------------------------------------------
def _smoothstep(e0, e1, x):
    t = tf.clip_by_value((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _ramp(e0, e1, x):
    """Linear version of smoothstep (cheaper, for where smoothness doesn't show)."""
    return tf.clip_by_value((x - e0) / (e1 - e0), 0.0, 1.0)


def _fract(x):
    return x - tf.floor(x)


def _smax(ds, k):
    """Smooth maximum (rounded intersection) of distance fields, radius ``k``."""
    m = ds[0]
    for d in ds[1:]:
        m = tf.maximum(m, d)
    s = tf.exp((ds[0] - m) / k)
    for d in ds[1:]:  # left to right: tf.add_n's AddN kernel sums in a run-time order
        s += tf.exp((d - m) / k)
    return m + k * tf.math.log(s)


def _c(col):
    """[3] colour -> [3, 1, 1] for planar broadcasting."""
    return tf.reshape(col, [3, 1, 1])


def _p(field):
    """[H, W] field -> [1, H, W] for planar broadcasting."""
    return field[None]


def _mixc(a, b, t):
    """Planar colour blend a + (b - a) * t; a, b: [3] colours or [3,H,W]; t: [H,W]."""
    a = _c(a) if a.shape.rank == 1 else a
    b = _c(b) if b.shape.rank == 1 else b
    return a + (b - a) * _p(t)


def _seg_dist(px, py, ax, ay, bx, by):
    """Distance from points (px, py) to the segment a-b."""
    bax, bay = bx - ax, by - ay
    pax, pay = px - ax, py - ay
    h = tf.clip_by_value((pax * bax + pay * bay) / (bax * bax + bay * bay + 1e-6), 0.0, 1.0)
    dx, dy = pax - bax * h, pay - bay * h
    return tf.sqrt(dx * dx + dy * dy + 1e-12)


def _palette(entries):
    cols = np.array([c for c, _ in entries], np.float32)
    w = np.array([w for _, w in entries], np.float64)
    cdf = np.cumsum(w / w.sum())[:-1].astype(np.float32)
    return cols, cdf


def _luma(c):
    return 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]


class _Rng:
    """Hands out scalars from a pre-drawn uniform vector (static Python counter)."""

    def __init__(self, seed, n=64):
        self._u = tf.unstack(tf.random.stateless_uniform([n], seed=seed, dtype=tf.float32))
        self._n = n
        self._i = 0

    def __call__(self):
        if self._i >= self._n:
            raise RuntimeError("_Rng exhausted; raise n")
        v = self._u[self._i]
        self._i += 1
        return v

    def uniform(self, lo, hi):
        return lo + (hi - lo) * self()

    def flag(self, p):
        """1.0 with probability p else 0.0."""
        return tf.cast(self() < p, tf.float32)

    def choice(self, n):
        return tf.minimum(tf.cast(self() * n, tf.int32), n - 1)

    def _jitter(self, c, jitter, brightness):
        c = c * (1.0 + brightness * (2.0 * self() - 1.0))
        jit = tf.stack([self(), self(), self()]) * 2.0 - 1.0
        return tf.clip_by_value(c + jitter * jit, 0.0, 1.0)

    def color(self, entries, jitter=0.05, brightness=0.10):
        """Weighted palette colour with brightness and per-channel jitter: [3]."""
        cols, cdf = _palette(entries)
        idx = tf.reduce_sum(tf.cast(self() > tf.constant(cdf), tf.int32))
        return self._jitter(tf.gather(tf.constant(cols), idx), jitter, brightness)

    def color_pair(self, entries, jitter=0.05):
        """Two different palette colours (uniform over entries)."""
        cols, _ = _palette(entries)
        n = len(cols)
        i1 = self.choice(n)
        i2 = (i1 + 1 + self.choice(n - 1)) % n
        ct = tf.constant(cols)
        return [self._jitter(tf.gather(ct, i), jitter, 0.08) for i in (i1, i2)]


class _Ctx:
    """Per-example geometry shared by all style renderers (see _make_ctx)."""


# ----------------------------------------------------------------------------
# Shared drawing pieces.  Distances are in local (pre-scale-jitter) pixel units;
# ctx.aa converts them to anti-aliasing ramp units (pixels / softness).
# ----------------------------------------------------------------------------
def _fill(ctx, sdf):
    """Anti-aliased coverage of the region sdf < 0."""
    return tf.clip_by_value(0.5 - sdf * ctx.aa, 0.0, 1.0)


def _stroke(ctx, dist, half_width):
    """Anti-aliased coverage of a line of given half width around dist == 0.

    Lines thinner than the AA ramp are drawn with reduced opacity instead of aliasing."""
    a = tf.clip_by_value((0.5 + half_width * ctx.aa) - dist * ctx.aa, 0.0, 1.0)
    return a * tf.minimum(1.0, 2.0 * half_width * ctx.aa)


def _band(ctx, coord, period, duty):
    """Anti-aliased square wave along ``coord`` (face-width units): 1 on stripes.

    Fades to its mean value ``duty`` when the period gets close to a pixel."""
    d = tf.abs(_fract(coord * (1.0 / period)) - 0.5)  # distance to stripe centre, in periods
    k = period / ctx.fpx
    s = tf.clip_by_value((0.5 + 0.5 * duty * k) - d * k, 0.0, 1.0)
    fade = tf.clip_by_value(k / 2.0 - 1.0, 0.0, 1.0)
    return duty * (1.0 - fade) + s * fade


def _hash2(i, j):
    return _fract(tf.sin(i * 12.9898 + j * 78.233) * 43758.5453)


def _cylinder_shade(ctx, w, strength):
    """Darker toward the left/right edges; brightest slightly toward the light."""
    uu = tf.clip_by_value((ctx.u - 0.25 * ctx.light) * (1.0 / (w + 0.1)), -1.0, 1.0)
    return 1.0 - strength * tf.square(uu)


def _vertical_shade(ctx, strength):
    """Slightly darker under the chin (less light from above)."""
    return 1.0 - strength * _ramp(ctx.y_mouth, ctx.y_chin + 0.10 * ctx.fh, ctx.ly)


def _ear_loops(ctx, w, y_top_corner, y_bot_corner, half_width):
    """Elastic ear loops: on each side a sheared half-ellipse leaving the top and
    bottom mask corners and bulging outward/up to the ear.

    Returns coverage [H,W].  Uses |lx| so one evaluation draws both sides."""
    hw = ctx.hw
    x0 = (w - 0.02) * hw
    X = ctx.alx - x0
    yc = 0.5 * (y_top_corner + y_bot_corner)
    b = tf.maximum(0.5 * (y_bot_corner - y_top_corner), 2.0)
    a = 0.19 * hw
    y_ear = 0.30 * ctx.y_eye  # loop apex: around the ear, between eye and nose tip height
    shear = (yc - y_ear) / a
    Y = (ctx.ly - yc) + shear * X
    Xa, Yb = X * (1.0 / a), Y * (1.0 / b)
    k = tf.sqrt(tf.square(Xa) + tf.square(Yb) + 1e-12)
    gx = Xa * (1.0 / a) + Yb * (shear / b)
    gy = Yb * (1.0 / b)
    d = tf.abs(k - 1.0) * k * tf.math.rsqrt(gx * gx + gy * gy + 1e-12)
    visible = tf.clip_by_value(X * ctx.aa + 0.5, 0.0, 1.0)
    return _stroke(ctx, d, half_width) * visible


def _grain(ctx, amount):
    """Per-pixel fabric/paper grain, [1, H, W] (zero-mean)."""
    return _p(amount * ctx.grain)


def _weave(ctx, period):
    """Fine cross-hatched weave texture in [-1, 1], faded out when it would alias."""
    k = 2 * math.pi / period
    fade = tf.clip_by_value(period / ctx.fpx / 2.0 - 1.0, 0.0, 1.0)
    return (tf.sin(ctx.pu * k) * tf.sin(ctx.pv * k)) * fade


# ----------------------------------------------------------------------------
# Styles.  Each returns (body_sdf [H,W] (local px, < 0 inside), body_rgb [3,H,W],
# extra_alpha [H,W] (loops / straps), extra_rgb [3], shadow_strength scalar).
# ----------------------------------------------------------------------------
def _style_surgical(ctx):
    r = ctx.rnd
    hw, fh, ly = ctx.hw, ctx.fh, ctx.ly
    w = r.uniform(1.03, 1.10)
    u2 = tf.square(tf.clip_by_value(ctx.u, -w, w))
    tdrop = (0.05 + 0.10 * ctx.cov) * fh
    bdrop = r.uniform(0.03, 0.08) * fh
    top = ctx.top_c + tdrop * u2
    bot = (ctx.y_chin + bdrop) - (0.30 * fh) * u2
    sdf = _smax([top - ly, ly - bot, ctx.alx - w * hw], 0.03 * fh)

    dtop = ly - top
    hgt = tf.maximum(bot - top, 1.0)
    t = dtop / hgt
    # --- pleats: three folds, each a dark crease with a highlight just above
    t0 = r.uniform(0.25, 0.31)
    dt = r.uniform(0.17, 0.21)
    sig = tf.maximum(0.8 / ctx.pxs, 0.011 * fh)
    p = (t - t0) * (1.0 / dt)
    dd = (_fract(p + 0.5) - 0.5) * (dt * hgt)  # px distance to the nearest crease
    zone = _ramp(-0.6, -0.45, p) * _ramp(2.6, 2.45, p)
    pleat = -0.22 * tf.exp(-tf.square((dd - 1.1 * sig) * (1.0 / sig)))
    pleat += 0.10 * tf.exp(-tf.square((dd + 1.2 * sig) * (1.0 / (1.4 * sig))))
    pleat += 0.07 * (_fract(p) - 0.5)
    shade = 1.0 + pleat * zone
    # --- bound edges: lighter strips along the sides, hemmed top/bottom
    inner_side = w * hw - ctx.alx
    bw = 0.075 * hw
    tb = tf.minimum(dtop, bot - ly)
    band = tf.maximum(_ramp(bw + 1.0, bw - 1.0, inner_side), _ramp(0.035 * fh + 1.0, 0.035 * fh - 1.0, tb))
    shade += 0.07 * band
    lw = tf.maximum(0.45 / ctx.pxs, 0.006 * fh)
    shade -= 0.10 * _stroke(ctx, tf.abs(inner_side - bw), lw)  # stitch line of the side binding
    # --- nose wire along the top edge
    wt = tf.maximum(0.7 / ctx.pxs, 0.010 * fh)
    dw = dtop - 0.032 * fh
    span = _ramp(0.40, 0.30, ctx.au)
    wire = 0.16 * _stroke(ctx, tf.abs(dw + 0.3 * wt), wt) - 0.20 * _stroke(ctx, tf.abs(dw - 1.6 * wt), 0.8 * wt)
    shade += wire * span

    shade *= _cylinder_shade(ctx, w, 0.32) * _vertical_shade(ctx, 0.12)
    base = r.color(_SURGICAL_COLORS, jitter=0.03)
    rgb = _c(base) * _p(shade) + _grain(ctx, 0.007)
    # --- ear loops from the corners
    y_tc = ctx.top_c + tdrop * w * w + 0.05 * fh
    y_bc = ctx.y_chin + bdrop - 0.30 * fh * w * w - 0.05 * fh
    loops = _ear_loops(ctx, w, y_tc, y_bc, tf.maximum(0.5 / ctx.pxs, 0.010 * fh))
    dark = tf.cast(_luma(base) < 0.3, tf.float32)
    loop_rgb = tf.constant([0.95, 0.95, 0.95]) * (1.0 - dark) + base * 1.3 * dark
    return sdf, rgb, loops, loop_rgb, r.uniform(0.30, 0.42)


def _style_n95(ctx):
    r = ctx.rnd
    hw, fh, lx, ly = ctx.hw, ctx.fh, ctx.lx, ctx.ly
    top = ctx.top_c - 0.02 * fh
    bottom = ctx.y_chin + r.uniform(0.0, 0.05) * fh
    cy = 0.5 * (top + bottom)
    ry = 0.5 * (bottom - top)
    rx = r.uniform(0.86, 0.95) * hw
    vn = (ly - cy) * (1.0 / ry)
    # cup outline: a squircle-ish shape, a little narrower toward the nose
    narrow = tf.square(tf.clip_by_value(vn, -1.0, 0.0))
    qx = lx * (1.0 / rx) / (1.0 - 0.14 * narrow)
    qx2, vn2 = tf.square(qx), tf.square(vn)
    rr = qx2 + vn2
    rad = 0.6 * tf.sqrt(rr) + 0.4 * tf.sqrt(tf.sqrt(tf.square(qx2) + tf.square(vn2)))
    rmin = tf.minimum(rx, ry)
    sdf = (rad - 1.0) * rmin

    # dome normal and lighting: strong radial shading
    nz = tf.sqrt(1.0 - 0.93 * tf.minimum(rr, 1.0))
    lxd = 0.35 * ctx.light
    lam = (qx * lxd - 0.45 * vn + nz) * (1.0 / math.sqrt(1.0 + 0.45**2))
    shade = 0.30 + 0.75 * tf.clip_by_value(lam, 0.0, 1.1)
    spec = 0.10 * tf.exp(-(tf.square(qx - lxd) + tf.square(vn + 0.35)) * 10.0)
    # welded rim just inside the edge and the vertical centre seam
    lw = tf.maximum(0.5 / ctx.pxs, 0.006 * fh)
    shade -= 0.12 * _stroke(ctx, tf.abs(sdf + 0.06 * rmin), lw)
    shade -= 0.22 * _stroke(ctx, ctx.alx, lw) * _ramp(1.0, 0.85, rad)
    shade += 0.08 * _stroke(ctx, tf.abs(lx - 2.5 * lw), lw)
    # metal nose clip (50%)
    clip_on = r.flag(0.5)
    inner = -sdf
    clip_a = (
        _ramp(0.015 * fh, 0.025 * fh, inner)
        * _ramp(0.065 * fh, 0.055 * fh, inner)
        * _ramp(0.26 * hw, 0.22 * hw, ctx.alx)
        * _ramp(-0.25, -0.35, vn)
    ) * (0.85 * clip_on)
    base = r.color(_N95_COLORS, jitter=0.025)
    clip_col = tf.constant([0.62, 0.64, 0.67])
    col = _mixc(base, clip_col, clip_a)
    rgb = col * _p(shade) + _p(spec + 0.018 * ctx.grain)
    # head straps (70%): upper goes up toward the crown, lower toward the neck
    straps_on = r.flag(0.7)
    sw = tf.maximum(0.6 / ctx.pxs, 0.012 * fh)
    y1 = cy - 0.45 * ry
    y2 = cy + 0.45 * ry
    x1 = rx * 0.88
    d1 = _seg_dist(ctx.alx, ly, x1, y1, 1.20 * hw, y1 - 0.22 * fh)
    d2 = _seg_dist(ctx.alx, ly, x1, y2, 1.20 * hw, y2 + 0.02 * fh)
    straps = _stroke(ctx, tf.minimum(d1, d2), sw) * straps_on
    strap_col = r.color(_STRAP_COLORS, jitter=0.03)
    return sdf, rgb, straps, strap_col * 0.9, r.uniform(0.38, 0.48)


def _cloth_shape(ctx):
    """Contoured fabric mask: peak at the nose, rounded under the chin."""
    r = ctx.rnd
    hw, fh, ly = ctx.hw, ctx.fh, ctx.ly
    w = r.uniform(0.98, 1.05)
    au = tf.minimum(ctx.au, w)
    tdrop = (0.06 + 0.09 * ctx.cov) * fh
    top = ctx.top_c + tdrop * (au * tf.sqrt(au))  # |u|^1.5
    bdrop = r.uniform(0.04, 0.09) * fh
    bot = (ctx.y_chin + bdrop) - (0.38 * fh) * tf.square(au)
    sdf = _smax([top - ly, ly - bot, ctx.alx - w * hw], 0.07 * fh)
    y_tc = ctx.top_c + tdrop * w**1.5 + 0.07 * fh
    y_bc = ctx.y_chin + bdrop - 0.38 * fh * w * w - 0.08 * fh
    return w, sdf, y_tc, y_bc


def _cloth_finish(ctx, w, sdf, pattern_rgb, seam_prob=0.5, sheen=0.0):
    """Fabric shading: cylinder, chin shadow, optional centre seam, stitched hem, weave."""
    r = ctx.rnd
    shade = _cylinder_shade(ctx, w, 0.38) * _vertical_shade(ctx, 0.15)
    seam_on = r.flag(seam_prob)
    lw = tf.maximum(0.5 / ctx.pxs, 0.006 * ctx.fh)
    # centre seam: dark line, panels lit slightly differently (the mask puffs out at the seam)
    shade -= (seam_on * 0.25) * _stroke(ctx, ctx.alx, lw)
    shade *= 1.0 + (seam_on * 0.05 * ctx.light) * tf.tanh(ctx.u * 5.0)
    # hem stitch line inset from the border
    shade -= 0.10 * _stroke(ctx, tf.abs(sdf + 0.045 * ctx.fh), 0.7 * lw)
    # a soft horizontal crease across the middle
    fold_y = ctx.y_mouth + r.uniform(-0.10, 0.05) * ctx.fh
    shade -= r.uniform(0.0, 0.08) * tf.exp(-tf.square((ctx.ly - fold_y) * (1.0 / (0.05 * ctx.fh))))
    shade += 0.03 * _weave(ctx, 0.012)
    add = _p(0.015 * ctx.grain)
    if sheen is not None and not (isinstance(sheen, float) and sheen == 0.0):
        add = add + _p(sheen * tf.exp(-tf.square(ctx.u - 0.3 * ctx.light) * 6.0) * _ramp(ctx.top_c, ctx.y_mouth, ctx.ly))
    return pattern_rgb * _p(shade) + add


def _cloth_loops(ctx, w, y_tc, y_bc, base):
    r = ctx.rnd
    loops = _ear_loops(ctx, w, y_tc, y_bc, tf.maximum(0.55 / ctx.pxs, 0.012 * ctx.fh))
    elastic = r.color(_ELASTIC_COLORS, jitter=0.02)
    match = r.flag(0.35)  # sometimes the loops match the fabric
    return loops, elastic * (1.0 - match) + base * match


def _rotated(ctx, angle):
    c, s = tf.cos(angle), tf.sin(angle)
    return ctx.pu * c + ctx.pv * s, ctx.pv * c - ctx.pu * s


def _style_cloth_stripes(ctx):
    r = ctx.rnd
    w, sdf, y_tc, y_bc = _cloth_shape(ctx)
    c1, c2 = r.color_pair(_CLOTH_COLORS)
    c3 = r.color(_CLOTH_COLORS)
    angles = tf.constant([0.0, 90.0, 45.0, -45.0, 0.0]) * (math.pi / 180)
    ang = tf.gather(angles, r.choice(5)) + r.uniform(-0.08, 0.08)
    c, s = tf.cos(ang), tf.sin(ang)
    a = ctx.pu * c + ctx.pv * s
    period = r.uniform(0.06, 0.14)
    main = _band(ctx, a + r(), period, r.uniform(0.3, 0.55))
    # optional thin accent stripe between the main stripes
    thin = _band(ctx, a + 0.5 * period, period, 0.12) * r.flag(0.5)
    rgb = _mixc(_mixc(c1, c2, main), c3, thin)
    rgb = _cloth_finish(ctx, w, sdf, rgb)
    loops, loop_rgb = _cloth_loops(ctx, w, y_tc, y_bc, c1)
    return sdf, rgb, loops, loop_rgb, r.uniform(0.28, 0.40)


def _style_cloth_dots(ctx):
    r = ctx.rnd
    w, sdf, y_tc, y_bc = _cloth_shape(ctx)
    c1, c2 = r.color_pair(_CLOTH_COLORS)
    period = r.uniform(0.06, 0.12)
    rad = r.uniform(0.18, 0.32)  # in periods
    a, b = _rotated(ctx, r.uniform(-0.3, 0.3))
    qy = b * (1.0 / period)
    qx = a * (1.0 / period) + (0.5 * r.flag(0.7)) * tf.floor(qy)
    fx = _fract(qx) - 0.5
    fy = _fract(qy) - 0.5
    k = period / ctx.fpx
    dot = tf.clip_by_value((0.5 + rad * k) - tf.sqrt(fx * fx + fy * fy) * k, 0.0, 1.0)
    mean = math.pi * rad * rad
    fade = tf.clip_by_value(k / 3.0 - 1.0, 0.0, 1.0)
    dot = mean * (1.0 - fade) + dot * fade
    rgb = _cloth_finish(ctx, w, sdf, _mixc(c1, c2, dot))
    loops, loop_rgb = _cloth_loops(ctx, w, y_tc, y_bc, c1)
    return sdf, rgb, loops, loop_rgb, r.uniform(0.28, 0.40)


def _style_cloth_plaid(ctx):
    r = ctx.rnd
    w, sdf, y_tc, y_bc = _cloth_shape(ctx)
    c1, c2 = r.color_pair(_CLOTH_COLORS)
    c3 = r.color(_CLOTH_COLORS)
    a, b = _rotated(ctx, r.uniform(-0.1, 0.1) + r.flag(0.25) * (math.pi / 4))
    period = r.uniform(0.16, 0.30)
    off = r()
    # broad bands in both directions; where they cross the colour is deepest
    h = _band(ctx, b + off, period, 0.42)
    v = _band(ctx, a + off, period, 0.42)
    mix = 0.55 * (h + v - 0.55 * h * v)  # two translucent layers of c2 over c1
    # thin contrasting lines (the "tartan" overcheck)
    th = _band(ctx, b + (off + 0.5 * period), period, 0.06)
    tv = _band(ctx, a + (off + 0.5 * period), period, 0.06)
    rgb = _mixc(_mixc(c1, c2, mix), c3, 0.8 * tf.maximum(th, tv))
    # darker crossings and narrow twill diagonals
    tw = _band(ctx, a + b, 0.02, 0.5)
    tex = (1.0 - 0.18 * h * v) * (0.96 + 0.08 * tw)
    rgb = _cloth_finish(ctx, w, sdf, rgb * _p(tex))
    loops, loop_rgb = _cloth_loops(ctx, w, y_tc, y_bc, c1)
    return sdf, rgb, loops, loop_rgb, r.uniform(0.28, 0.40)


def _flowers(ctx, a, b, period, c1, c2, c3):
    """Small 5-petal flowers on a staggered grid with per-cell rotation and colour."""
    qy = b * (1.0 / period)
    row = tf.floor(qy)
    qx = a * (1.0 / period) + 0.5 * row
    hsh = _hash2(tf.floor(qx), row)
    fx = _fract(qx) - 0.5
    fy = _fract(qy) - 0.5
    rr = tf.sqrt(fx * fx + fy * fy + 1e-12)
    th = tf.atan2(fy, fx) + hsh * 6.2832
    rad = 0.30 * (0.62 + 0.38 * tf.cos(5.0 * th))
    k = period / ctx.fpx
    fade = tf.clip_by_value(k / 4.0 - 1.0, 0.0, 1.0)
    petals = tf.clip_by_value((rad - rr) * k + 0.5, 0.0, 1.0)
    centre = tf.clip_by_value((0.09 - rr) * k + 0.5, 0.0, 1.0)
    petals = 0.25 * (1.0 - fade) + petals * fade
    centre = 0.03 * (1.0 - fade) + centre * fade
    which = tf.cast(hsh > 0.5, tf.float32)
    rgb = _mixc(c1, c2, petals * (1.0 - which))
    rgb = _mixc(rgb, c3, petals * which)
    return _mixc(rgb, tf.constant([0.97, 0.92, 0.55]), centre)


def _blobs(ctx, a, b, freq, phases):
    """Soft random blob field from a few warped sinusoids (range about [-1, 1])."""
    acc = 0.0
    dirs = [(1.0, 0.3), (-0.4, 1.0), (0.8, -0.7), (0.2, 0.9)]
    warp = 0.7 * tf.sin((a - b) * (freq * 1.7) + phases[-1] * 6.2832)
    for k, (dx, dy) in enumerate(dirs):
        f = freq * (1.0 + 0.37 * k) * 6.2832
        acc += tf.sin((a * (f * dx) + b * (f * dy)) + (warp + phases[k] * 6.2832))
    return acc * (1.0 / 2.0)


def _style_cloth_print(ctx):
    r = ctx.rnd
    w, sdf, y_tc, y_bc = _cloth_shape(ctx)
    c1, c2 = r.color_pair(_CLOTH_COLORS)
    c3 = r.color(_CLOTH_COLORS)
    a, b = _rotated(ctx, r.uniform(-0.3, 0.3))
    period = r.uniform(0.09, 0.15)
    phases = [r() for _ in range(5)]
    freq = r.uniform(2.5, 4.5)
    e = ctx.fpx * r.uniform(9.0, 18.0)

    def flowers():  # variant A: small flower motifs
        return _flowers(ctx, a, b, period, c1, c2, c3)

    def blobs():  # variant B: soft blobs (camo / abstract print), three colour levels
        n = _blobs(ctx, a, b, freq, phases)
        l1 = _smoothstep(-0.15 - e, -0.15 + e, n)
        l2 = _smoothstep(0.35 - e, 0.35 + e, n)
        return _mixc(_mixc(c1, c2, l1), c3, l2)

    rgb = tf.cond(r() < 0.4, blobs, flowers)
    rgb = _cloth_finish(ctx, w, sdf, rgb)
    loops, loop_rgb = _cloth_loops(ctx, w, y_tc, y_bc, c1)
    return sdf, rgb, loops, loop_rgb, r.uniform(0.28, 0.40)


def _style_plain_dark(ctx):
    r = ctx.rnd
    w, sdf, y_tc, y_bc = _cloth_shape(ctx)
    base = r.color(_DARK_COLORS, jitter=0.015, brightness=0.15)
    rgb = _cloth_finish(ctx, w, sdf, _c(base), seam_prob=0.4, sheen=r.uniform(0.03, 0.08))
    loops, loop_rgb = _cloth_loops(ctx, w, y_tc, y_bc, base)
    return sdf, rgb, loops, loop_rgb, r.uniform(0.28, 0.40)


def _paisley(ctx, a, b, period):
    """Paisley-ish curled teardrops (outline + inner dot) on a staggered grid, with
    tiny filler dots.  Returns motif coverage [H,W] (faded when too small to resolve)."""
    qy = b * (1.0 / period)
    row = tf.floor(qy)
    qx = a * (1.0 / period) + 0.5 * row
    hsh = _hash2(tf.floor(qx), row)
    fx = _fract(qx) - 0.5
    fy = _fract(qy) - 0.5
    # drop body: circle of radius R with a gaussian "tail" bump in direction th0;
    # the tail direction drifts with radius so the tail curls.
    R = 0.17
    th0 = 0.8 + math.pi * tf.floor(hsh * 2.0) + 0.6 * (hsh - 0.5)
    cx = fx + 0.07 * tf.cos(th0)  # body sits opposite to the tail
    cy = fy + 0.07 * tf.sin(th0)
    rr = tf.sqrt(cx * cx + cy * cy + 1e-12)
    dth = tf.atan2(cy, cx) - th0 - 1.1 * (rr * (1.0 / R) - 1.0)
    dth = tf.atan2(tf.sin(dth), tf.cos(dth))
    rb = R * (1.0 + 1.2 * tf.exp(-tf.square(dth * (1.0 / 0.42))))
    k = period / ctx.fpx
    outer = tf.clip_by_value((rb - rr) * k + 0.5, 0.0, 1.0)
    inner = tf.clip_by_value((0.70 * rb - 0.012 - rr) * k + 0.5, 0.0, 1.0)
    core = tf.clip_by_value((0.32 * R - rr) * k + 0.5, 0.0, 1.0)
    motif = tf.maximum(outer - inner, core)
    # tiny filler dots between motifs
    gx = _fract(qx * 2.0 + 0.25) - 0.5
    gy = _fract(qy * 2.0 + 0.5) - 0.5
    filler = tf.clip_by_value((0.06 - tf.sqrt(gx * gx + gy * gy)) * (0.5 * k) + 0.5, 0.0, 1.0)
    filler *= tf.clip_by_value((rr - rb - 0.05) * k + 0.5, 0.0, 1.0)
    fade = tf.clip_by_value(k / 6.0 - 1.0, 0.0, 1.0)
    m = tf.maximum(motif, 0.8 * filler)
    return 0.18 * (1.0 - fade) + m * fade


def _style_bandana(ctx):
    r = ctx.rnd
    hw, fh, ly = ctx.hw, ctx.fh, ctx.ly
    w = r.uniform(1.22, 1.38) * hw
    u2 = tf.square(tf.minimum(ctx.au, 1.4))
    top = (ctx.top_c + 0.03 * fh) + (0.04 * fh) * u2
    y_pt = ctx.y_chin + r.uniform(0.55, 0.95) * fh
    span = y_pt - ctx.top_c
    # straight sides from (+-w, top) converging to the point below the chin
    cosang = span / tf.sqrt(span * span + w * w)
    d_side = (ctx.alx - w + (ly - ctx.top_c) * (w / span)) * cosang
    sdf = _smax([top - ly, d_side], 0.05 * fh)

    base = r.color(_BANDANA_COLORS, jitter=0.03)
    light_base = tf.cast(_luma(base) > 0.55, tf.float32)
    motif_col = tf.constant([0.96, 0.95, 0.90]) * (1.0 - light_base) + tf.constant([0.06, 0.06, 0.07]) * light_base
    a, b = _rotated(ctx, r.uniform(-0.15, 0.15))
    pais = _paisley(ctx, a, b, r.uniform(0.13, 0.20))
    # border: a line following the hanging edges
    border = _stroke(ctx, tf.abs(sdf + 0.07 * fh), tf.maximum(0.6 / ctx.pxs, 0.010 * fh))
    plain = r.flag(0.3)
    m = tf.minimum((1.0 - plain) * pais + border, 1.0)
    rgb = _mixc(base, motif_col, m)
    # drape: folds radiating from the point, a rolled top edge, cylinder shading
    ang = tf.atan2(ctx.lx, (y_pt - ly) + 1e-3)
    nf = r.uniform(7.0, 11.0)
    shade = 1.0 + 0.10 * tf.sin(ang * nf + r() * 6.28) * _ramp(ctx.top_c, ctx.y_chin, ly)
    dtop = ly - top
    shade += 0.10 * tf.exp(-tf.square((dtop - 0.02 * fh) * (1.0 / (0.02 * fh))))  # rolled top highlight
    shade -= 0.14 * tf.exp(-tf.square((dtop - 0.07 * fh) * (1.0 / (0.03 * fh))))  # and the shadow under it
    shade *= _cylinder_shade(ctx, w / hw, 0.35) * _vertical_shade(ctx, 0.10)
    shade += 0.025 * _weave(ctx, 0.012)
    rgb = rgb * _p(shade) + _grain(ctx, 0.015)
    return sdf, rgb, None, None, r.uniform(0.30, 0.42)


def _style_gaiter(ctx):
    r = ctx.rnd
    hw, fh, lx, ly = ctx.hw, ctx.fh, ctx.lx, ctx.ly
    u2 = tf.square(tf.minimum(ctx.au, 1.3))
    top = (ctx.top_c + 0.02 * fh) + ((0.03 + 0.06 * ctx.cov) * fh) * u2
    # wide over the cheeks, pulled in under the jaw, neck-width tube down to the image edge
    y_j = ctx.y_mouth + 0.5 * (ctx.y_chin - ctx.y_mouth)
    w_top = r.uniform(1.04, 1.12)
    w_neck = r.uniform(0.72, 0.85)
    hwid = hw * w_neck + (hw * (w_top - w_neck)) * tf.sigmoid((y_j - ly) * (1.0 / (0.12 * fh)))
    sdf = _smax([top - ly, ctx.alx - hwid], 0.05 * fh)

    c1, c2 = r.color_pair(_GAITER_COLORS)
    a, b = ctx.pu, ctx.pv
    variant = r.choice(3)  # 0 solid, 1 horizontal stripes, 2 camo blobs
    s_off, s_per, s_duty = r(), r.uniform(0.08, 0.16), r.uniform(0.2, 0.5)
    phases = [r() for _ in range(5)]
    freq = r.uniform(3.0, 5.0)
    pat = tf.switch_case(variant, [
        lambda: tf.zeros_like(a),
        lambda: _band(ctx, b + s_off, s_per, s_duty),
        lambda: _smoothstep(0.05, 0.15, _blobs(ctx, a, b, freq, phases)),
    ])
    rgb = _mixc(c1, c2, pat)
    # bunched horizontal folds below the nose/chin with wobble, crease under the chin
    wob = ly + (0.03 * fh) * tf.sin(ctx.u * 3.0 + r() * 6.28)
    fp = r.uniform(0.10, 0.15) * fh
    folds = 0.5 + 0.5 * tf.sin(wob * (6.2832 / fp) + r() * 6.28)
    shade = 1.0 - (0.16 * folds) * _smoothstep(ctx.y_mouth, ctx.y_chin, ly)
    shade -= 0.18 * tf.exp(-tf.square((ly - (ctx.y_chin + 0.06 * fh)) * (1.0 / (0.06 * fh))))
    shade *= _cylinder_shade(ctx, w_top, 0.42)
    # knit ribs
    rib = 0.008
    shade += (0.03 * tf.clip_by_value(rib / ctx.fpx / 2 - 1, 0.0, 1.0)) * tf.sin(ctx.pu * (6.2832 / rib))
    spec = r.uniform(0.0, 0.06) * tf.exp(-tf.square(ctx.u - 0.3 * ctx.light) * 10.0)
    rgb = rgb * _p(shade) + _p(spec + 0.015 * ctx.grain)
    return sdf, rgb, None, None, r.uniform(0.30, 0.40)


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
# Geometry and main entry point.
# ----------------------------------------------------------------------------
_GRAIN_TILE = 64


def _make_ctx(face, landmarks, seeds, coverage, tilt_degrees, scale_jitter, offset_jitter):
    shape = tf.shape(face)
    H, W = shape[0], shape[1]
    Hf, Wf = tf.cast(H, tf.float32), tf.cast(W, tf.float32)
    size = tf.sqrt(Hf * Wf)

    g = tf.unstack(tf.random.stateless_uniform([8], seed=seeds[0], dtype=tf.float32))
    cov = coverage[0] + (coverage[1] - coverage[0]) * g[0]
    tilt = (2.0 * g[1] - 1.0) * (tilt_degrees * math.pi / 180.0)
    sx = 1.0 + (2.0 * g[2] - 1.0) * scale_jitter
    sy = 1.0 + (2.0 * g[3] - 1.0) * scale_jitter
    light = 2.0 * g[6] - 1.0

    lm = landmarks * tf.stack([Wf, Hf])[None, :]  # pixels
    tip = lm[_NT]
    eye_vec = lm[_RE] - lm[_LE]
    roll = tf.atan2(eye_vec[1], tf.maximum(eye_vec[0], 1e-3))
    c0, s0 = tf.cos(roll), tf.sin(roll)
    d = lm - tip[None, :]
    lmx = c0 * d[:, 0] + s0 * d[:, 1]
    lmy = c0 * d[:, 1] - s0 * d[:, 0]
    cx = 0.5 * (lmx[_LF] + lmx[_RF])
    hw = tf.maximum(0.5 * (lmx[_RF] - lmx[_LF]), 2.0)
    y_bridge = tf.minimum(lmy[_NB], -1.0)
    y_chin = tf.maximum(lmy[_CH], 2.0)
    y_mouth = tf.clip_by_value(lmy[_MO], 1.0, y_chin - 1.0)
    y_eye = tf.minimum(0.5 * (lmy[_LE] + lmy[_RE]), y_bridge)
    fh = tf.maximum(y_chin - y_bridge, 4.0)
    y_under = 0.32 * y_mouth  # just below the nose tip
    top_c = y_under + (y_bridge - y_under) * cov

    ox = (2.0 * g[4] - 1.0) * offset_jitter * 2.0 * hw
    oy = (2.0 * g[5] - 1.0) * offset_jitter * 2.0 * hw

    # pixel centres -> face frame: rotate about the nose tip, shift, then scale
    # (vertical scale about the top edge so that coverage keeps its meaning)
    th = roll + tilt
    c, s = tf.cos(th), tf.sin(th)
    ys = tf.range(Hf, dtype=tf.float32)[:, None] + (0.5 - tip[1])
    xs = tf.range(Wf, dtype=tf.float32)[None, :] + (0.5 - tip[0])
    lx = (xs * (c / sx) + ys * (s / sx)) - (cx + ox) / sx
    ly = (ys * (c / sy) - xs * (s / sy)) + (top_c - (oy + top_c) / sy)

    ctx = _Ctx()
    ctx.H, ctx.W, ctx.size = H, W, size
    ctx.lx, ctx.ly = lx, ly
    ctx.alx = tf.abs(lx)
    ctx.hw, ctx.fh = hw, fh
    ctx.u = lx * (1.0 / hw)
    ctx.au = tf.abs(ctx.u)
    ctx.y_bridge, ctx.y_eye, ctx.y_mouth, ctx.y_chin = y_bridge, y_eye, y_mouth, y_chin
    ctx.top_c, ctx.cov, ctx.light = top_c, cov, light
    ctx.pxs = tf.sqrt(sx * sy)  # local units -> pixels
    ctx.soft = tf.maximum(1.0, size / 200.0)  # anti-aliasing ramp width (px)
    ctx.aa = ctx.pxs / ctx.soft
    fw = 2.0 * hw
    ctx.pu, ctx.pv = lx * (1.0 / fw), ly * (1.0 / fw)  # pattern coordinates (face widths)
    ctx.fpx = 1.0 / (fw * ctx.pxs)  # one pixel in face widths
    # grain: a random 64x64 tile of uniform noise (unit variance), tiled over the image
    tile = tf.random.stateless_uniform([_GRAIN_TILE, _GRAIN_TILE], seed=seeds[3], minval=-1.732, maxval=1.732)
    reps = tf.stack([(H + _GRAIN_TILE - 1) // _GRAIN_TILE, (W + _GRAIN_TILE - 1) // _GRAIN_TILE])
    # (weaker on small images: photo noise/texture averages out when downsampled)
    ctx.grain = tf.tile(tile, reps)[:H, :W] * tf.clip_by_value(size / 160.0, 0.35, 1.0)
    return ctx


# Pure TF ops with only static Python control flow: AutoGraph conversion would add
# nothing but tens of seconds of tracing time, so it is switched off.
@tf.autograph.experimental.do_not_convert
def synthesize_mask(
    face,
    landmarks,
    seed,
    *,
    styles=MASK_STYLES,
    style_weights=None,
    coverage=(0.0, 1.0),
    tilt_degrees=8.0,
    scale_jitter=0.08,
    offset_jitter=0.03,
):
    """Draw a random face mask onto ``face``.

    Args:
      face: float32 [H, W, 3] in [0, 1] (square, any size; static or dynamic shape).
      landmarks: float32 [8, 2] normalised (x, y), order ``LANDMARK_NAMES``.
      seed: int32/int64 tensor [2] for the stateless RNG.
      styles: names from ``MASK_STYLES`` (a single name is accepted too).
      style_weights: optional non-negative weights, one per entry of ``styles``.
      coverage: (lo, hi) in [0, 1]; 0 = top edge just under the nose tip,
        1 = over the nose up to the nose bridge; drawn uniformly from the range.
      tilt_degrees: max random rotation (about the nose tip) on top of the eye-line roll.
      scale_jitter: max relative random scale of the mask (independent in x and y).
      offset_jitter: max random shift, as a fraction of the face width.

    Returns:
      (masked [H, W, 3] float32 in [0, 1], alpha [H, W, 1] float32 in [0, 1]) with
      ``masked = alpha * mask_rgb + (1 - alpha) * face``.  ``alpha`` is 1 on the mask,
      0 away from it (there ``masked == face`` exactly) and below ~0.5 in the soft
      contact shadow around the mask.
    """
    styles = validate_styles(styles)
    if style_weights is not None:
        wts = np.asarray(style_weights, np.float64).reshape(-1)
        if wts.shape[0] != len(styles):
            raise ValueError(f"style_weights has {wts.shape[0]} entries for {len(styles)} styles")
        if np.any(wts < 0) or not np.any(wts > 0) or not np.all(np.isfinite(wts)):
            raise ValueError("style_weights must be finite, non-negative and not all zero")
    else:
        wts = np.ones(len(styles))
    if isinstance(coverage, (int, float)):
        coverage = (float(coverage), float(coverage))
    cov_lo, cov_hi = (float(v) for v in coverage)
    if not 0.0 <= cov_lo <= cov_hi <= 1.0:
        raise ValueError(f"coverage must satisfy 0 <= lo <= hi <= 1, got {coverage}")

    with tf.name_scope("synthesize_mask"):
        face = tf.convert_to_tensor(face, tf.float32)
        landmarks = tf.reshape(tf.convert_to_tensor(landmarks, tf.float32), [8, 2])
        seed = tf.convert_to_tensor(seed)
        if seed.dtype not in (tf.int32, tf.int64):
            seed = tf.cast(seed, tf.int64)
        seeds = tf.random.experimental.stateless_split(seed, num=5)

        ctx = _make_ctx(face, landmarks, seeds, (cov_lo, cov_hi), float(tilt_degrees),
                        float(scale_jitter), float(offset_jitter))

        # drop zero-weight styles so their branches are not even built
        keep = [i for i in range(len(styles)) if wts[i] > 0]
        names = [styles[i] for i in keep]
        probs = wts[keep] / wts[keep].sum()
        any_extra = any(n not in ("bandana", "gaiter") for n in names)

        def render(name):
            ctx.rnd = _Rng(seeds[2])  # fresh per branch: every style sees the same draws
            sdf, rgb, ea, ergb, strength = _RENDERERS[name](ctx)
            a_b = _fill(ctx, sdf)
            # soft contact shadow: falls off over ~3% of the face height outside the
            # mask, strongest above the top edge (the mask stands off the face there)
            reach = tf.maximum(1.5, 0.035 * ctx.fh)
            fall = tf.square(tf.clip_by_value(1.0 - sdf * (1.0 / reach), 0.0, 1.0))
            above = tf.clip_by_value((ctx.y_mouth - ctx.ly) * (1.0 / (0.3 * ctx.fh)), 0.35, 1.0)
            shadow = (strength * fall) * above
            out = [a_b, tf.clip_by_value(rgb, 0.0, 1.0), shadow]
            if any_extra:
                if ea is None:
                    ea, ergb = tf.zeros_like(a_b), tf.zeros([3])
                out += [ea, tf.clip_by_value(ergb, 0.0, 1.0)]
            return tuple(out)

        if len(names) == 1:
            outs = render(names[0])
        else:
            cdf = tf.constant(np.cumsum(probs)[:-1], tf.float32)
            u = tf.random.stateless_uniform([], seed=seeds[1], dtype=tf.float32)
            idx = tf.reduce_sum(tf.cast(u >= cdf, tf.int32))
            outs = tf.switch_case(idx, [functools.partial(render, n) for n in names])

        a_b, rgb_b, shadow = outs[:3]
        face_p = tf.transpose(face, [2, 0, 1])
        # layers, bottom to top: face, black shadow, mask body, loops/straps
        keep_face = (1.0 - shadow) * (1.0 - a_b)
        premult = rgb_b * _p(a_b)
        if any_extra:
            a_l, rgb_l = outs[3], outs[4]
            keep_face *= 1.0 - a_l
            premult = premult * _p(1.0 - a_l) + _c(rgb_l) * _p(a_l)
        masked_p = tf.clip_by_value(premult + face_p * _p(keep_face), 0.0, 1.0)
        masked = tf.transpose(masked_p, [1, 2, 0])
        alpha = (1.0 - keep_face)[..., None]
        masked = tf.ensure_shape(masked, face.shape)
        alpha = tf.ensure_shape(alpha, face.shape[:2].concatenate([1]))
        return masked, alpha
