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
a soft contact shadow (black, low opacity) darkens the face around the top edge,
the mask body is composited over it and ear loops / straps over that.  Hence
``alpha`` is exactly 0 away from the mask (where ``masked == face`` bit-for-bit),
exactly 1 inside the mask body and small (<= ~0.45) in the shadow band.
"""

from __future__ import annotations

import functools
import math
from typing import Iterable, Sequence

import numpy as np
import tensorflow as tf

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
# Small helpers (all elementwise, broadcastable).
# ----------------------------------------------------------------------------
def _smoothstep(e0, e1, x):
    t = tf.clip_by_value((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _fract(x):
    return x - tf.floor(x)


def _smax(ds, k):
    """Smooth maximum (rounded intersection) of distance fields, radius ``k``."""
    m = ds[0]
    for d in ds[1:]:
        m = tf.maximum(m, d)
    s = tf.add_n([tf.exp((d - m) / k) for d in ds])
    return m + k * tf.math.log(s)


def _mix(a, b, t):
    """Blend colours/fields: a + (b - a) * t.  ``t`` [H,W] is given a channel axis
    when ``a`` or ``b`` is a colour."""
    a = tf.convert_to_tensor(a)
    b = tf.convert_to_tensor(b)
    if t.shape.rank == 2 and (a.shape.rank in (1, 3) or b.shape.rank in (1, 3)):
        t = t[..., None]
    return a + (b - a) * t


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


class _Rng:
    """Hands out scalars from a pre-drawn uniform vector (static Python counter)."""

    def __init__(self, seed, n=64):
        self._u = tf.random.stateless_uniform([n], seed=seed, dtype=tf.float32)
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

    def color(self, entries, jitter=0.05, brightness=0.10):
        cols, cdf = _palette(entries)
        idx = tf.reduce_sum(tf.cast(self() > tf.constant(cdf), tf.int32))
        c = tf.gather(tf.constant(cols), idx)
        c = c * (1.0 + brightness * (2.0 * self() - 1.0))
        jit = tf.stack([self(), self(), self()]) * 2.0 - 1.0
        return tf.clip_by_value(c + jitter * jit, 0.0, 1.0)

    def color_pair(self, entries, jitter=0.05):
        """Two different palette colours (uniform over entries)."""
        cols, _ = _palette(entries)
        n = len(cols)
        i1 = self.choice(n)
        i2 = (i1 + 1 + self.choice(n - 1)) % n
        ct = tf.constant(cols)
        out = []
        for i in (i1, i2):
            c = tf.gather(ct, i) * (1.0 + 0.08 * (2.0 * self() - 1.0))
            jit = tf.stack([self(), self(), self()]) * 2.0 - 1.0
            out.append(tf.clip_by_value(c + jitter * jit, 0.0, 1.0))
        return out


class _Ctx:
    """Per-example geometry shared by all style renderers."""

    pass


def _luma(c):
    return 0.299 * c[..., 0] + 0.587 * c[..., 1] + 0.114 * c[..., 2]


# ----------------------------------------------------------------------------
# Shared drawing pieces.
# ----------------------------------------------------------------------------
def _fill(ctx, sdf):
    """Anti-aliased coverage of the region sdf < 0 (sdf in local px units)."""
    return tf.clip_by_value(0.5 - sdf * ctx.pxs / ctx.soft, 0.0, 1.0)


def _stroke(ctx, dist, half_width):
    """Anti-aliased coverage of a line of given half width (local px units).

    Lines thinner than a pixel are drawn with reduced opacity instead of aliasing."""
    hwpx = half_width * ctx.pxs
    a = tf.clip_by_value(0.5 + (hwpx - dist * ctx.pxs) / ctx.soft, 0.0, 1.0)
    return a * tf.minimum(1.0, 2.0 * hwpx / ctx.soft)


def _band(ctx, coord, period, duty):
    """Anti-aliased square wave along ``coord`` (face-width units): 1 on stripes.

    Fades to its mean value ``duty`` when the period gets close to a pixel."""
    d = tf.abs(_fract(coord / period) - 0.5) * period  # distance to stripe centre
    s = tf.clip_by_value(0.5 + (duty * period * 0.5 - d) / ctx.fpx, 0.0, 1.0)
    fade = tf.clip_by_value(period / ctx.fpx / 2.0 - 1.0, 0.0, 1.0)
    return duty + (s - duty) * fade


def _hash2(i, j):
    return _fract(tf.sin(i * 12.9898 + j * 78.233) * 43758.5453)


def _cylinder_shade(ctx, w, strength):
    """Darker toward the left/right edges; highlight shifted toward the light."""
    uu = tf.clip_by_value((ctx.u - 0.25 * ctx.light) / (w + 0.1), -1.0, 1.0)
    return 1.0 - strength * tf.pow(tf.abs(uu), 2.2)


def _vertical_shade(ctx, strength):
    """Slightly darker under the chin (less light from above)."""
    t = _smoothstep(ctx.y_mouth, ctx.y_chin + 0.10 * ctx.fh, ctx.ly)
    return 1.0 - strength * t


def _ear_loops(ctx, w, y_top_corner, y_bot_corner, half_width):
    """Elastic ear loops: on each side a sheared half-ellipse leaving the top and
    bottom mask corners and bulging outward/up to the ear.

    Returns coverage [H,W].  Uses |lx| so one evaluation draws both sides."""
    hw = ctx.hw
    x0 = (w - 0.02) * hw
    X = tf.abs(ctx.lx) - x0
    yc = 0.5 * (y_top_corner + y_bot_corner)
    b = tf.maximum(0.5 * (y_bot_corner - y_top_corner), 2.0)
    a = 0.19 * hw
    y_ear = 0.30 * ctx.y_eye  # loop apex: around the ear, between eye and nose tip height
    shear = (yc - y_ear) / a
    Y = ctx.ly - yc + shear * X
    k = tf.sqrt(tf.square(X / a) + tf.square(Y / b) + 1e-12)
    gx = X / (a * a) + shear * Y / (b * b)
    gy = Y / (b * b)
    d = tf.abs(k - 1.0) * k / tf.sqrt(gx * gx + gy * gy + 1e-12)
    visible = _smoothstep(-0.5, 0.5, X * ctx.pxs)
    return _stroke(ctx, d, half_width) * visible


def _grain(ctx, amount):
    return amount * ctx.grain


# ----------------------------------------------------------------------------
# Styles.  Each returns (body_alpha [H,W], body_rgb [H,W,3], extra_alpha [H,W],
# extra_rgb [3] or [H,W,3], shadow_strength scalar).
# ----------------------------------------------------------------------------
def _style_surgical(ctx):
    r = ctx.rnd
    hw, fh, lx, ly, u = ctx.hw, ctx.fh, ctx.lx, ctx.ly, ctx.u
    w = r.uniform(1.03, 1.10)
    uc = tf.clip_by_value(u, -w, w)
    top = ctx.top_c + (0.05 + 0.10 * ctx.cov) * fh * uc * uc
    bot = ctx.y_chin + r.uniform(0.03, 0.08) * fh - 0.30 * fh * uc * uc
    sdf = _smax([top - ly, ly - bot, tf.abs(lx) - w * hw], 0.03 * fh)
    alpha = _fill(ctx, sdf)

    hgt = tf.maximum(bot - top, 1.0)
    t = (ly - top) / hgt
    shade = tf.ones_like(ly)
    # --- pleats: three folds, each a dark crease with a highlight just above
    t0 = r.uniform(0.25, 0.31)
    dt = r.uniform(0.17, 0.21)
    sig = tf.maximum(0.8 / ctx.pxs, 0.011 * fh)
    for k in range(3):
        dd = (t - (t0 + k * dt)) * hgt
        shade += -0.22 * tf.exp(-tf.square((dd - 1.1 * sig) / sig))
        shade += 0.10 * tf.exp(-tf.square((dd + 1.2 * sig) / (1.4 * sig)))
    zone = _smoothstep(t0 - 0.02, t0, t) * (1.0 - _smoothstep(t0 + 3 * dt - 0.02, t0 + 3 * dt, t))
    shade += 0.07 * (_fract((t - t0) / dt) - 0.5) * zone
    # --- bound edges: lighter strips along the sides, hemmed top/bottom
    inner_side = w * hw - tf.abs(lx)
    bw = 0.075 * hw
    side_band = 1.0 - _smoothstep(bw - 1.0, bw + 1.0, inner_side)
    tb = tf.minimum(ly - top, bot - ly)
    tb_band = 1.0 - _smoothstep(0.035 * fh - 1.0, 0.035 * fh + 1.0, tb)
    shade += 0.07 * tf.maximum(side_band, tb_band)
    lw = tf.maximum(0.45 / ctx.pxs, 0.006 * fh)
    shade -= 0.10 * _stroke(ctx, tf.abs(inner_side - bw), lw)  # stitch line of the side binding
    # --- nose wire along the top edge
    wt = tf.maximum(0.7 / ctx.pxs, 0.010 * fh)
    dw = ly - top - 0.032 * fh
    span = 1.0 - _smoothstep(0.30, 0.40, tf.abs(u))
    shade += 0.16 * _stroke(ctx, tf.abs(dw + 0.3 * wt), wt) * span
    shade -= 0.20 * _stroke(ctx, tf.abs(dw - 1.6 * wt), 0.8 * wt) * span

    shade *= _cylinder_shade(ctx, w, 0.32) * _vertical_shade(ctx, 0.12)
    base = r.color(_SURGICAL_COLORS, jitter=0.03)
    rgb = base * shade[..., None] + _grain(ctx, 0.007)[..., None]
    # --- ear loops
    y_tc = ctx.top_c + (0.05 + 0.10 * ctx.cov) * fh * w * w + 0.05 * fh
    y_bc = ctx.y_chin + 0.05 * fh - 0.30 * fh * w * w - 0.05 * fh
    loops = _ear_loops(ctx, w, y_tc, y_bc, tf.maximum(0.5 / ctx.pxs, 0.010 * fh))
    dark = tf.cast(_luma(base) < 0.3, tf.float32)
    loop_rgb = _mix(tf.constant([0.95, 0.95, 0.95]), base * 1.3, dark)
    return alpha, rgb, loops, loop_rgb, r.uniform(0.30, 0.42)


def _style_n95(ctx):
    r = ctx.rnd
    hw, fh, lx, ly = ctx.hw, ctx.fh, ctx.lx, ctx.ly
    top = ctx.top_c - 0.02 * fh
    bottom = ctx.y_chin + r.uniform(0.0, 0.05) * fh
    cy = 0.5 * (top + bottom)
    ry = 0.5 * (bottom - top)
    rx = r.uniform(0.86, 0.95) * hw
    vn = (ly - cy) / ry
    rx_eff = rx * (1.0 - 0.14 * tf.square(tf.clip_by_value(-vn, 0.0, 1.0)))
    qx = lx / rx_eff
    n = 2.3
    rad = tf.pow(tf.pow(tf.abs(qx), n) + tf.pow(tf.abs(vn), n), 1.0 / n)
    rmin = tf.minimum(rx, ry)
    sdf = (rad - 1.0) * rmin
    alpha = _fill(ctx, sdf)

    # dome normal and lighting: strong radial shading
    rr = tf.clip_by_value(qx * qx + vn * vn, 0.0, 1.0)
    nz = tf.sqrt(1.0 - 0.93 * rr)
    lxd = 0.35 * ctx.light
    lam = (qx * lxd - 0.45 * vn + nz) / math.sqrt(1.0 + 0.45**2)
    shade = 0.30 + 0.75 * tf.clip_by_value(lam, 0.0, 1.1)
    spec = tf.exp(-(tf.square(qx - lxd - 0.0) + tf.square(vn + 0.35)) / 0.10)
    # welded rim just inside the edge and the vertical centre seam
    lw = tf.maximum(0.5 / ctx.pxs, 0.006 * fh)
    shade -= 0.12 * _stroke(ctx, tf.abs(sdf + 0.06 * rmin), lw)
    shade -= 0.22 * _stroke(ctx, tf.abs(lx), lw) * (1.0 - _smoothstep(0.85, 1.0, rad))
    shade += 0.08 * _stroke(ctx, tf.abs(lx - 2.5 * lw), lw)
    base = r.color(_N95_COLORS, jitter=0.025)
    rgb = base * shade[..., None] + (0.10 * spec + _grain(ctx, 0.018))[..., None]
    # metal nose clip (50%)
    clip_on = r.flag(0.5)
    inner = -sdf
    clip_a = (
        _smoothstep(0.015 * fh, 0.025 * fh, inner)
        * (1.0 - _smoothstep(0.055 * fh, 0.065 * fh, inner))
        * (1.0 - _smoothstep(0.22 * hw, 0.26 * hw, tf.abs(lx)))
        * tf.cast(vn < -0.3, tf.float32)
        * clip_on
    )
    clip_col = tf.constant([0.62, 0.64, 0.67]) * (0.8 + 0.4 * nz)[..., None]
    rgb = _mix(rgb, clip_col, 0.85 * clip_a)
    # head straps (70%): upper goes up toward the crown, lower toward the neck
    straps_on = r.flag(0.7)
    sw = tf.maximum(0.6 / ctx.pxs, 0.012 * fh)
    ax = tf.abs(lx)
    y1 = cy - 0.45 * ry
    y2 = cy + 0.45 * ry
    x1 = rx * 0.88
    d1 = _seg_dist(ax, ly, x1, y1, 1.20 * hw, y1 - 0.22 * fh)
    d2 = _seg_dist(ax, ly, x1, y2, 1.20 * hw, y2 + 0.02 * fh)
    straps = _stroke(ctx, tf.minimum(d1, d2), sw) * straps_on
    strap_col = r.color(_STRAP_COLORS, jitter=0.03)
    strap_rgb = strap_col * _cylinder_shade(ctx, 1.2, 0.3)[..., None]
    return alpha, rgb, straps, strap_rgb, r.uniform(0.38, 0.48)


def _cloth_shape(ctx):
    r = ctx.rnd
    hw, fh, lx, ly, u = ctx.hw, ctx.fh, ctx.lx, ctx.ly, ctx.u
    w = r.uniform(0.98, 1.05)
    uc = tf.clip_by_value(u, -w, w)
    au = tf.abs(uc)
    top = ctx.top_c + (0.06 + 0.09 * ctx.cov) * fh * tf.pow(au, 1.5)
    bdrop = r.uniform(0.04, 0.09)
    bot = ctx.y_chin + bdrop * fh - 0.38 * fh * au * au
    sdf = _smax([top - ly, ly - bot, tf.abs(lx) - w * hw], 0.07 * fh)
    y_tc = ctx.top_c + (0.06 + 0.09 * ctx.cov) * fh * w**1.5 + 0.07 * fh
    y_bc = ctx.y_chin + bdrop * fh - 0.38 * fh * w * w - 0.08 * fh
    return w, sdf, top, bot, y_tc, y_bc


def _cloth_finish(ctx, w, sdf, pattern_rgb, seam_prob=0.5, sheen=0.0):
    """Fabric shading: cylinder, chin shadow, optional centre seam, stitched hem, weave."""
    r = ctx.rnd
    lx = ctx.lx
    shade = _cylinder_shade(ctx, w, 0.38) * _vertical_shade(ctx, 0.15)
    seam_on = r.flag(seam_prob)
    lw = tf.maximum(0.5 / ctx.pxs, 0.006 * ctx.fh)
    # centre seam: dark line + panels lit slightly differently (puffs out at the seam)
    shade -= seam_on * 0.25 * _stroke(ctx, tf.abs(lx), lw)
    shade *= 1.0 + seam_on * 0.05 * tf.tanh(lx / (0.2 * ctx.hw)) * ctx.light
    # hem stitch line inset from the border
    shade -= 0.10 * _stroke(ctx, tf.abs(sdf + 0.045 * ctx.fh), 0.7 * lw)
    # fabric fold: a soft horizontal crease across the middle
    fold_y = ctx.y_mouth + r.uniform(-0.10, 0.05) * ctx.fh
    shade -= r.uniform(0.0, 0.08) * tf.exp(-tf.square((ctx.ly - fold_y) / (0.05 * ctx.fh)))
    # weave micro-texture (faded out when it would alias)
    wp = 0.012
    weave = tf.sin(ctx.pu * (2 * math.pi / wp)) * tf.sin(ctx.pv * (2 * math.pi / wp))
    weave *= tf.clip_by_value(wp / ctx.fpx / 2.0 - 1.0, 0.0, 1.0)
    shade += 0.03 * weave
    spec = sheen * tf.exp(-tf.square(ctx.u - 0.3 * ctx.light) / 0.15) * _smoothstep(ctx.top_c, ctx.y_mouth, ctx.ly)
    return pattern_rgb * shade[..., None] + (spec + _grain(ctx, 0.015))[..., None]


def _cloth_loops(ctx, w, y_tc, y_bc, base):
    r = ctx.rnd
    loops = _ear_loops(ctx, w, y_tc, y_bc, tf.maximum(0.55 / ctx.pxs, 0.012 * ctx.fh))
    elastic = r.color(_ELASTIC_COLORS, jitter=0.02)
    loop_rgb = _mix(elastic, base, r.flag(0.35))  # sometimes matching fabric
    return loops, loop_rgb


def _rotated(ctx, angle):
    c, s = tf.cos(angle), tf.sin(angle)
    return ctx.pu * c + ctx.pv * s, -ctx.pu * s + ctx.pv * c


def _style_cloth_stripes(ctx):
    r = ctx.rnd
    w, sdf, top, bot, y_tc, y_bc = _cloth_shape(ctx)
    c1, c2 = r.color_pair(_CLOTH_COLORS)
    angles = tf.constant([0.0, 90.0, 45.0, -45.0, 0.0]) * (math.pi / 180)
    ang = tf.gather(angles, r.choice(5)) + r.uniform(-0.08, 0.08)
    a, _ = _rotated(ctx, ang)
    period = r.uniform(0.06, 0.14)
    main = _band(ctx, a + r(), period, r.uniform(0.3, 0.55))
    rgb = _mix(c1, c2, main)
    # optional thin accent stripe between the main stripes
    c3 = r.color(_CLOTH_COLORS)
    thin = _band(ctx, a + 0.5 * period, period, 0.12) * r.flag(0.5)
    rgb = _mix(rgb, c3, thin)
    rgb = _cloth_finish(ctx, w, sdf, rgb)
    loops, loop_rgb = _cloth_loops(ctx, w, y_tc, y_bc, c1)
    return _fill(ctx, sdf), rgb, loops, loop_rgb, r.uniform(0.28, 0.40)


def _style_cloth_dots(ctx):
    r = ctx.rnd
    w, sdf, top, bot, y_tc, y_bc = _cloth_shape(ctx)
    c1, c2 = r.color_pair(_CLOTH_COLORS)
    period = r.uniform(0.06, 0.12)
    rad = r.uniform(0.18, 0.32) * period
    a, b = _rotated(ctx, r.uniform(-0.3, 0.3))
    qy = b / period
    row = tf.floor(qy)
    qx = a / period + 0.5 * r.flag(0.7) * row
    fx = (_fract(qx) - 0.5) * period
    fy = (_fract(qy) - 0.5) * period
    d = tf.sqrt(fx * fx + fy * fy)
    dot = tf.clip_by_value(0.5 + (rad - d) / ctx.fpx, 0.0, 1.0)
    mean = math.pi * tf.square(rad / period)
    fade = tf.clip_by_value(period / ctx.fpx / 3.0 - 1.0, 0.0, 1.0)
    dot = mean + (dot - mean) * fade
    rgb = _mix(c1, c2, dot)
    rgb = _cloth_finish(ctx, w, sdf, rgb)
    loops, loop_rgb = _cloth_loops(ctx, w, y_tc, y_bc, c1)
    return _fill(ctx, sdf), rgb, loops, loop_rgb, r.uniform(0.28, 0.40)


def _style_cloth_plaid(ctx):
    r = ctx.rnd
    w, sdf, top, bot, y_tc, y_bc = _cloth_shape(ctx)
    c1, c2 = r.color_pair(_CLOTH_COLORS)
    c3 = r.color(_CLOTH_COLORS)
    a, b = _rotated(ctx, r.uniform(-0.1, 0.1) + r.flag(0.25) * (math.pi / 4))
    period = r.uniform(0.16, 0.30)
    off = r()
    # broad bands in both directions; where they cross the colour is deepest
    h = _band(ctx, b + off, period, 0.42)
    v = _band(ctx, a + off, period, 0.42)
    rgb = _mix(c1, c2, 0.55 * h)
    rgb = _mix(rgb, c2, 0.55 * v)
    rgb = rgb * (1.0 - 0.18 * h * v)[..., None]
    # thin contrasting lines (the "tartan" overcheck)
    th = _band(ctx, b + off + 0.5 * period, period, 0.06)
    tv = _band(ctx, a + off + 0.5 * period, period, 0.06)
    rgb = _mix(rgb, c3, 0.8 * tf.maximum(th, tv))
    # narrow twill diagonals add texture
    tw = _band(ctx, (a + b), 0.02, 0.5)
    rgb = rgb * (0.96 + 0.08 * tw)[..., None]
    rgb = _cloth_finish(ctx, w, sdf, rgb)
    loops, loop_rgb = _cloth_loops(ctx, w, y_tc, y_bc, c1)
    return _fill(ctx, sdf), rgb, loops, loop_rgb, r.uniform(0.28, 0.40)


def _flower(ctx, a, b, period, stagger=True):
    """Small 5-petal flowers on a staggered grid with per-cell rotation.
    Returns (petal coverage, centre coverage, per-cell hash)."""
    qy = b / period
    row = tf.floor(qy)
    qx = a / period + (0.5 * row if stagger else 0.0)
    col = tf.floor(qx)
    hsh = _hash2(col, row)
    fx = (_fract(qx) - 0.5) * period
    fy = (_fract(qy) - 0.5) * period
    rr = tf.sqrt(fx * fx + fy * fy + 1e-12)
    th = tf.atan2(fy, fx) + hsh * 6.2832
    rad = 0.30 * period * (0.62 + 0.38 * tf.cos(5.0 * th))
    petals = tf.clip_by_value(0.5 + (rad - rr) / ctx.fpx, 0.0, 1.0)
    centre = tf.clip_by_value(0.5 + (0.09 * period - rr) / ctx.fpx, 0.0, 1.0)
    fade = tf.clip_by_value(period / ctx.fpx / 4.0 - 1.0, 0.0, 1.0)
    petals = 0.25 + (petals - 0.25) * fade
    centre = 0.03 + (centre - 0.03) * fade
    return petals, centre, hsh


def _blobs(ctx, a, b, freq, phases):
    """Soft random blob field from a few summed sinusoids (range about [-1, 1])."""
    acc = 0.0
    dirs = [(1.0, 0.3), (-0.4, 1.0), (0.8, -0.7), (0.2, 0.9), (1.0, 1.0)]
    for k, (dx, dy) in enumerate(dirs):
        f = freq * (1.0 + 0.37 * k)
        acc += tf.sin(f * (a * dx + b * dy) * 6.2832 + phases[k] * 6.2832 + 0.7 * tf.sin(f * 1.7 * (a - b) + k))
    return acc / 2.2


def _style_cloth_print(ctx):
    r = ctx.rnd
    w, sdf, top, bot, y_tc, y_bc = _cloth_shape(ctx)
    c1, c2 = r.color_pair(_CLOTH_COLORS)
    c3 = r.color(_CLOTH_COLORS)
    a, b = _rotated(ctx, r.uniform(-0.3, 0.3))
    # variant A: small flower motifs
    period = r.uniform(0.09, 0.15)
    petals, centre, hsh = _flower(ctx, a, b, period)
    motif_col = _mix(c2, c3, tf.cast(hsh > 0.5, tf.float32))
    flowers = _mix(c1, motif_col, petals)
    flowers = _mix(flowers, tf.constant([0.97, 0.92, 0.55]), centre)
    # variant B: soft blobs (camo / abstract print), three colour levels
    phases = [r() for _ in range(5)]
    n = _blobs(ctx, a, b, r.uniform(2.5, 4.5), phases)
    e = 1.5 * ctx.fpx * r.uniform(6.0, 12.0)
    l1 = _smoothstep(-0.15 - e, -0.15 + e, n)
    l2 = _smoothstep(0.35 - e, 0.35 + e, n)
    blobs = _mix(_mix(c1, c2, l1), c3, l2)
    rgb = _mix(flowers, blobs, r.flag(0.4) * tf.ones_like(ctx.lx))
    rgb = _cloth_finish(ctx, w, sdf, rgb)
    loops, loop_rgb = _cloth_loops(ctx, w, y_tc, y_bc, c1)
    return _fill(ctx, sdf), rgb, loops, loop_rgb, r.uniform(0.28, 0.40)


def _style_plain_dark(ctx):
    r = ctx.rnd
    w, sdf, top, bot, y_tc, y_bc = _cloth_shape(ctx)
    base = r.color(_DARK_COLORS, jitter=0.015, brightness=0.15)
    rgb = base * tf.ones_like(ctx.lx)[..., None]
    rgb = _cloth_finish(ctx, w, sdf, rgb, seam_prob=0.4, sheen=r.uniform(0.03, 0.08))
    loops, loop_rgb = _cloth_loops(ctx, w, y_tc, y_bc, base)
    return _fill(ctx, sdf), rgb, loops, loop_rgb, r.uniform(0.28, 0.40)


def _paisley(ctx, a, b, period):
    """Paisley-ish curled teardrops (outline + inner dot) on a staggered grid, with
    tiny filler dots.  Returns motif coverage [H,W] (faded when too small to resolve)."""
    qy = b / period
    row = tf.floor(qy)
    qx = a / period + 0.5 * row
    col = tf.floor(qx)
    hsh = _hash2(col, row)
    fx = _fract(qx) - 0.5
    fy = _fract(qy) - 0.5
    # drop body: circle of radius R with a gaussian "tail" bump in direction th0,
    # the tail direction drifts with radius so the tail curls.
    R = 0.17
    th0 = 0.8 + math.pi * tf.floor(hsh * 2.0) + 0.6 * (hsh - 0.5)
    cx = fx + 0.07 * tf.cos(th0)  # body sits opposite to the tail
    cy = fy + 0.07 * tf.sin(th0)
    rr = tf.sqrt(cx * cx + cy * cy + 1e-12)
    th = tf.atan2(cy, cx)
    dth = th - th0 - 1.1 * (rr / R - 1.0)
    dth = tf.atan2(tf.sin(dth), tf.cos(dth))
    rb = R * (1.0 + 1.2 * tf.exp(-tf.square(dth / 0.42)))
    fp = ctx.fpx / period
    outer = tf.clip_by_value(0.5 + (rb - rr) / fp, 0.0, 1.0)
    inner = tf.clip_by_value(0.5 + (0.70 * rb - 0.012 - rr) / fp, 0.0, 1.0)
    core = tf.clip_by_value(0.5 + (0.32 * R - rr) / fp, 0.0, 1.0)
    motif = tf.maximum(outer - inner, core)
    # tiny filler dots between motifs
    gx = _fract(qx * 2.0 + 0.25) - 0.5
    gy = _fract(qy * 2.0 + 0.5) - 0.5
    filler = tf.clip_by_value(0.5 + (0.06 - tf.sqrt(gx * gx + gy * gy)) / (2.0 * fp), 0.0, 1.0)
    filler *= 1.0 - tf.clip_by_value(0.5 + (rb + 0.05 - rr) / fp, 0.0, 1.0)
    fade = tf.clip_by_value(period / ctx.fpx / 6.0 - 1.0, 0.0, 1.0)
    m = tf.maximum(motif, 0.8 * filler)
    return 0.18 + (m - 0.18) * fade


def _style_bandana(ctx):
    r = ctx.rnd
    hw, fh, lx, ly, u = ctx.hw, ctx.fh, ctx.lx, ctx.ly, ctx.u
    w = r.uniform(1.22, 1.38) * hw
    uc = tf.clip_by_value(u, -1.4, 1.4)
    top = ctx.top_c + 0.03 * fh + 0.04 * fh * uc * uc
    y_pt = ctx.y_chin + r.uniform(0.55, 0.95) * fh
    span = y_pt - ctx.top_c
    # straight sides from (+-w, top) converging to the point below the chin
    hwid = w * (1.0 - (ly - ctx.top_c) / span)
    cosang = span / tf.sqrt(span * span + w * w)
    d_side = (tf.abs(lx) - hwid) * cosang
    sdf = _smax([top - ly, d_side], 0.05 * fh)
    alpha = _fill(ctx, sdf)

    base = r.color(_BANDANA_COLORS, jitter=0.03)
    motif_col = _mix(tf.constant([0.96, 0.95, 0.90]), tf.constant([0.06, 0.06, 0.07]),
                     tf.cast(_luma(base) > 0.55, tf.float32))
    a, b = _rotated(ctx, r.uniform(-0.15, 0.15))
    pais = _paisley(ctx, a, b, r.uniform(0.13, 0.20))
    # border: a line and a row of dots following the hanging edges
    inner = -sdf
    bd = 0.07 * fh
    border = _stroke(ctx, tf.abs(inner - bd), tf.maximum(0.6 / ctx.pxs, 0.010 * fh))
    plain = r.flag(0.3)
    m = (1.0 - plain) * pais + border
    rgb = _mix(base, motif_col, tf.clip_by_value(m, 0.0, 1.0))
    # drape: folds radiating from the point, a fold along the top, cylinder shading
    ang = tf.atan2(lx, y_pt - ly + 1e-3)
    nf = r.uniform(7.0, 11.0)
    shade = 1.0 + 0.10 * tf.sin(ang * nf + r() * 6.28) * _smoothstep(ctx.top_c, ctx.y_chin, ly)
    dtop = ly - top
    shade += 0.10 * tf.exp(-tf.square((dtop - 0.02 * fh) / (0.02 * fh)))  # rolled top edge highlight
    shade -= 0.14 * tf.exp(-tf.square((dtop - 0.07 * fh) / (0.03 * fh)))  # and the shadow under it
    shade *= _cylinder_shade(ctx, w / hw, 0.35) * _vertical_shade(ctx, 0.10)
    weave = tf.sin(ctx.pu * 520.0) * tf.sin(ctx.pv * 520.0) * tf.clip_by_value(0.012 / ctx.fpx / 2 - 1, 0.0, 1.0)
    shade += 0.025 * weave
    rgb = rgb * shade[..., None] + _grain(ctx, 0.015)[..., None]
    zero = tf.zeros_like(lx)
    return alpha, rgb, zero, tf.zeros([3]), r.uniform(0.30, 0.42)


def _style_gaiter(ctx):
    r = ctx.rnd
    hw, fh, lx, ly, u = ctx.hw, ctx.fh, ctx.lx, ctx.ly, ctx.u
    uc = tf.clip_by_value(u, -1.3, 1.3)
    top = ctx.top_c + 0.02 * fh + (0.03 + 0.06 * ctx.cov) * fh * uc * uc
    # wide over the cheeks, pulled in under the jaw, neck-width tube down to the image edge
    y_j = ctx.y_mouth + 0.5 * (ctx.y_chin - ctx.y_mouth)
    w_top = r.uniform(1.04, 1.12)
    w_neck = r.uniform(0.72, 0.85)
    hwid = hw * (w_neck + (w_top - w_neck) * tf.sigmoid((y_j - ly) / (0.12 * fh)))
    sdf = _smax([top - ly, tf.abs(lx) - hwid], 0.05 * fh)
    alpha = _fill(ctx, sdf)

    c1, c2 = r.color_pair(_GAITER_COLORS)
    a, b = ctx.pu, ctx.pv
    variant = r.choice(3)  # 0 solid, 1 horizontal stripes, 2 camo blobs
    stripes = _band(ctx, b + r(), r.uniform(0.08, 0.16), r.uniform(0.2, 0.5))
    phases = [r() for _ in range(5)]
    camo = _smoothstep(0.1 - 0.05, 0.1 + 0.05, _blobs(ctx, a, b, r.uniform(3.0, 5.0), phases))
    pat = tf.gather(tf.stack([tf.zeros_like(a), stripes, camo]), variant)
    rgb = _mix(c1, c2, pat)
    # bunched horizontal folds below the nose/chin with wobble, crease under the chin
    wob = ly + 0.03 * fh * tf.sin(lx / hw * 3.0 + r() * 6.28)
    fp = r.uniform(0.10, 0.15) * fh
    folds = 0.5 + 0.5 * tf.sin(wob / fp * 6.2832 + r() * 6.28)
    fold_zone = _smoothstep(ctx.y_mouth, ctx.y_chin, ly)
    shade = 1.0 - 0.16 * folds * fold_zone
    shade -= 0.18 * tf.exp(-tf.square((ly - ctx.y_chin - 0.06 * fh) / (0.06 * fh)))
    shade *= _cylinder_shade(ctx, w_top, 0.42)
    # knit ribs
    rib = 0.008
    ribs = tf.sin(ctx.pu * (6.2832 / rib)) * tf.clip_by_value(rib / ctx.fpx / 2 - 1, 0.0, 1.0)
    shade += 0.03 * ribs
    spec = r.uniform(0.0, 0.06) * tf.exp(-tf.square(u - 0.3 * ctx.light) / 0.1)
    rgb = rgb * shade[..., None] + (spec + _grain(ctx, 0.015))[..., None]
    zero = tf.zeros_like(lx)
    return alpha, rgb, zero, tf.zeros([3]), r.uniform(0.30, 0.40)


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
def _shadow_blur(alpha, size_px, static_size):
    """Blurred copy of alpha, shifted down-sampled ~0.8 sigma so the halo sits above."""
    sigma = tf.maximum(0.7, 0.012 * size_px)
    if static_size is not None:
        radius = int(math.ceil(3.0 * max(0.7, 0.012 * static_size) + 0.8 * max(0.7, 0.012 * static_size)))
    else:
        radius = 12
    taps = tf.range(-radius, radius + 1, dtype=tf.float32)
    kx = tf.exp(-0.5 * tf.square(taps / sigma))
    kx /= tf.reduce_sum(kx)
    # vertical kernel centred at +0.8 sigma: out(y) ~ alpha(y + shift) => halo above the top edge
    ky = tf.exp(-0.5 * tf.square((taps - 0.8 * sigma) / sigma))
    ky /= tf.reduce_sum(ky)
    x = alpha[None, :, :, None]
    # conv2d correlates: out(y) = sum_i k(i) x(y + i - radius)
    x = tf.nn.conv2d(x, tf.reshape(ky, [-1, 1, 1, 1]), strides=1, padding="SAME")
    x = tf.nn.conv2d(x, tf.reshape(kx, [1, -1, 1, 1]), strides=1, padding="SAME")
    return x[0, :, :, 0]


def _make_ctx(face, landmarks, seeds, coverage, tilt_degrees, scale_jitter, offset_jitter):
    shape = tf.shape(face)
    H, W = shape[0], shape[1]
    Hf, Wf = tf.cast(H, tf.float32), tf.cast(W, tf.float32)
    size = tf.sqrt(Hf * Wf)

    g = tf.random.stateless_uniform([8], seed=seeds[0], dtype=tf.float32)
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
    lmy = -s0 * d[:, 0] + c0 * d[:, 1]
    cx = 0.5 * (lmx[_LF] + lmx[_RF])
    hw = tf.maximum(0.5 * (lmx[_RF] - lmx[_LF]), 2.0)
    y_bridge = lmy[_NB]
    y_chin = tf.maximum(lmy[_CH], 2.0)
    y_mouth = tf.clip_by_value(lmy[_MO], 1.0, y_chin - 1.0)
    y_eye = tf.minimum(0.5 * (lmy[_LE] + lmy[_RE]), y_bridge)
    fh = tf.maximum(y_chin - y_bridge, 4.0)
    y_under = 0.32 * y_mouth  # just below the nose tip
    top_c = y_under + (y_bridge - y_under) * cov

    ox = (2.0 * g[4] - 1.0) * offset_jitter * 2.0 * hw
    oy = (2.0 * g[5] - 1.0) * offset_jitter * 2.0 * hw

    ys = tf.range(Hf, dtype=tf.float32)[:, None] + 0.5 - tip[1]
    xs = tf.range(Wf, dtype=tf.float32)[None, :] + 0.5 - tip[0]
    th = roll + tilt
    c, s = tf.cos(th), tf.sin(th)
    lx = (c * xs + s * ys - cx - ox) / sx
    ly = top_c + (-s * xs + c * ys - oy - top_c) / sy

    ctx = _Ctx()
    ctx.H, ctx.W, ctx.size = H, W, size
    ctx.lx, ctx.ly = lx, ly
    ctx.hw, ctx.fh = hw, fh
    ctx.u = lx / hw
    ctx.y_bridge, ctx.y_eye, ctx.y_mouth, ctx.y_chin = y_bridge, y_eye, y_mouth, y_chin
    ctx.top_c, ctx.cov, ctx.light = top_c, cov, light
    ctx.pxs = tf.sqrt(sx * sy)  # local units -> pixels
    ctx.soft = tf.maximum(1.0, size / 200.0)  # anti-aliasing ramp width (px)
    fw = 2.0 * hw
    ctx.pu, ctx.pv = lx / fw, ly / fw  # pattern coordinates (face widths)
    ctx.fpx = 1.0 / (fw * ctx.pxs)  # one pixel in face widths
    ctx.grain = tf.random.stateless_normal([H, W], seed=seeds[3], dtype=tf.float32)
    return ctx


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
      ``masked = alpha * mask_rgb + (1 - alpha) * face``.
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

        def render(name):
            ctx.rnd = _Rng(seeds[2])  # fresh per branch: every style sees the same draws
            a, rgb, ea, ergb, sh = _RENDERERS[name](ctx)
            ergb = tf.broadcast_to(ergb, tf.shape(rgb))
            return a, tf.clip_by_value(rgb, 0.0, 1.0), ea, tf.clip_by_value(ergb, 0.0, 1.0), sh

        if len(names) == 1:
            a_b, c_b, a_l, c_l, sh = render(names[0])
        else:
            cdf = tf.constant(np.cumsum(probs)[:-1], tf.float32)
            u = tf.random.stateless_uniform([], seed=seeds[1], dtype=tf.float32)
            idx = tf.reduce_sum(tf.cast(u >= cdf, tf.int32))
            branches = [functools.partial(render, n) for n in names]
            a_b, c_b, a_l, c_l, sh = tf.switch_case(idx, branches)

        static = face.shape[0] if face.shape[0] is not None and face.shape[0] == face.shape[1] else None
        shadow = sh * _shadow_blur(a_b, ctx.size, static)
        # shadow (black) under body under loops:
        keep_face = (1.0 - shadow) * (1.0 - a_b) * (1.0 - a_l)
        alpha = 1.0 - keep_face
        premult = a_l[..., None] * c_l + ((1.0 - a_l) * a_b)[..., None] * c_b
        masked = tf.clip_by_value(premult + keep_face[..., None] * face, 0.0, 1.0)
        alpha = tf.clip_by_value(alpha, 0.0, 1.0)[..., None]
        masked = tf.ensure_shape(masked, face.shape)
        alpha = tf.ensure_shape(alpha, face.shape[:2].concatenate([1]))
        return masked, alpha
