"""CPU kernels behind plain functions: the same results as the textbook ops, with gradients
XLA's CPU backend runs several times faster (benchmarks/train_step.py, benchmarks/profile_step.py).

- `max_pool_2x2`: 2 x 2 max pool whose gradient is routed by comparisons instead of XLA's
  `select_and_scatter` (the same first-maximum choice).
- `relu_max_pool`: ReLU and that pool in the cheaper order (they commute, values and gradients).
- `composite`: mask * raw + (1 - mask) * images with a slice-by-slice channel sum in its gradient.
- `UpsampledConv` / `conv_of_upsample`: a SAME conv of a nearest-upsampled map, run on the small
  map phase by phase (the upsampled map is never formed).
No TensorFlow here.
"""

import functools
import operator

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax


def _pool_windows(x: jax.Array) -> jax.Array:
  n, h, w, c = x.shape
  return x[:, :h // 2 * 2, :w // 2 * 2].reshape(n, h // 2, 2, w // 2, 2, c)


@jax.custom_vjp
def max_pool_2x2(x: jax.Array) -> jax.Array:
  """`nn.max_pool(x, (2, 2), strides=(2, 2))`, whose gradient goes, as XLA's select_and_scatter
  sends it, to the first maximum of each window in row-major order (ties included)."""
  return _pool_windows(x).max(axis=(2, 4))


def _max_pool_fwd(x):
  pooled = max_pool_2x2(x)
  return pooled, (x, pooled)


def _max_pool_bwd(residuals, grad):
  x, pooled = residuals
  windows = _pool_windows(x)
  taken = jnp.zeros(pooled.shape, bool)
  rows = []
  for dy in range(2):
    cols = []
    for dx in range(2):
      first = (windows[:, :, dy, :, dx] == pooled) & ~taken
      taken = taken | first
      cols.append(jnp.where(first, grad, 0.0))
    rows.append(jnp.stack(cols, axis=3))
  n, h, w, c = x.shape
  grad_x = jnp.stack(rows, axis=2).reshape(n, h // 2 * 2, w // 2 * 2, c)
  return (jnp.pad(grad_x, ((0, 0), (0, h % 2), (0, w % 2), (0, 0))),)


max_pool_2x2.defvjp(_max_pool_fwd, _max_pool_bwd)


@jax.custom_vjp
def composite(mask: jax.Array, raw: jax.Array, images: jax.Array) -> jax.Array:
  """`mask * raw + (1 - mask) * images` for a [N, H, W, 1] mask. Its gradient for the mask sums
  the channels slice by slice: as XLA:CPU's reduction over a last axis of 3, that sum took 24% of
  a mask-head train step (benchmarks/profile_step.py --override model.name=mask_composite)."""
  return images + mask * (raw - images)


def _composite_fwd(mask, raw, images):
  difference = raw - images
  return images + mask * difference, (mask, difference)


def _composite_bwd(residuals, grad):
  mask, difference = residuals
  product = grad * difference
  grad_mask = functools.reduce(operator.add, [product[..., c:c + 1]
                                              for c in range(product.shape[-1])])
  return grad_mask, grad * mask, grad * (1.0 - mask)


composite.defvjp(_composite_fwd, _composite_bwd)


def upsampled_conv_phases(kernel_size: int, factor: int):
  """How a SAME conv of `kernel_size` taps reads the `factor`-fold nearest upsample of a line.

  Output position f*i + a reads input i + (a + t - lo) // f with tap t (lo: SAME's low padding).
  Sub-positions a with the same reads form one phase. Returns (taps [phases, span, kernel_size]:
  1 where a tap lands on an input offset, the phase of each sub-position, (pad_lo, pad_hi)).
  """
  lo = (kernel_size - 1) // 2
  reads = [tuple((a + t - lo) // factor for t in range(kernel_size)) for a in range(factor)]
  phases = sorted(set(reads))  # reads grow with a, so each phase is one run of sub-positions
  first, last = reads[0][0], reads[-1][-1]
  taps = np.zeros((len(phases), last - first + 1, kernel_size), np.float32)
  for p, read in enumerate(phases):
    taps[p, np.array(read) - first, np.arange(kernel_size)] = 1.0
  return taps, tuple(phases.index(read) for read in reads), (-first, last)


def _expand_phases(y: jax.Array, phase_of: tuple, axis: int) -> jax.Array:
  counts = np.bincount(phase_of)
  pieces = [lax.slice_in_dim(y, p, p + 1, axis=axis) for p in range(len(counts))]
  return jnp.concatenate([jnp.repeat(piece, count, axis=axis)
                          for piece, count in zip(pieces, counts)], axis=axis)


def _sum_phases(grad: jax.Array, phase_of: tuple, axis: int) -> jax.Array:
  starts = np.concatenate([[0], np.cumsum(np.bincount(phase_of))])
  return jnp.concatenate([lax.slice_in_dim(grad, start, stop, axis=axis).sum(axis, keepdims=True)
                          for start, stop in zip(starts[:-1], starts[1:])], axis=axis)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def _phases_to_space(y: jax.Array, phase_of: tuple) -> jax.Array:
  """[N, H, W, P, P, C] per-phase outputs -> [N, f*H, f*W, C] (f = len(phase_of))."""
  n, h, w, _, _, c = y.shape
  f = len(phase_of)
  y = _expand_phases(_expand_phases(y, phase_of, 3), phase_of, 4)
  return y.transpose(0, 1, 3, 2, 4, 5).reshape(n, h * f, w * f, c)


def _phases_to_space_fwd(y, phase_of):
  return _phases_to_space(y, phase_of), None


def _phases_to_space_bwd(phase_of, _, grad):
  n, hf, wf, c = grad.shape
  f = len(phase_of)
  grad = grad.reshape(n, hf // f, f, wf // f, f, c).transpose(0, 1, 3, 2, 4, 5)
  return (_sum_phases(_sum_phases(grad, phase_of, 3), phase_of, 4),)


_phases_to_space.defvjp(_phases_to_space_fwd, _phases_to_space_bwd)


def _conv_along_width(x: jax.Array, kernel: jax.Array, pads: tuple) -> jax.Array:
  """Stride-1 conv with a [1, span, in, out] kernel, the width padded by `pads`, as one matmul
  over the input windows: its gradients are matmuls too, several times faster on CPU than XLA's
  convolution gradients."""
  span, width = kernel.shape[1], x.shape[2]
  padded = jnp.pad(x, ((0, 0), (0, 0), pads, (0, 0)))
  windows = jnp.concatenate([padded[:, :, i:i + width] for i in range(span)], axis=-1)
  return jnp.dot(windows, kernel.reshape(-1, kernel.shape[-1]))


def _shift_rows(x: jax.Array, shift: int) -> jax.Array:
  """y[:, i] = x[:, i + shift], zero where i + shift falls outside."""
  h, widths = x.shape[1], ((0, 0),) * (x.ndim - 2)
  if shift > 0:
    return jnp.pad(x[:, shift:], ((0, 0), (0, shift)) + widths)
  if shift < 0:
    return jnp.pad(x[:, :h + shift], ((0, 0), (-shift, 0)) + widths)
  return x


def _sum_shifted_rows(x: jax.Array, terms: tuple, count: int) -> jax.Array:
  """out[:, :, :, j] = sum of _shift_rows(x[:, :, :, i], d) over the (i, d, j) in `terms`."""
  return jnp.stack([functools.reduce(operator.add, [_shift_rows(x[:, :, :, i], d)
                                                    for i, d, to in terms if to == j])
                    for j in range(count)], axis=3)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2))
def _rows_to_phases(rows: jax.Array, terms: tuple, phases: int) -> jax.Array:
  """[N, H, W, k, ...] per kernel row -> [N, H, W, phases, ...]: each row phase adds the kernel
  rows it uses at the input rows they read; `terms` holds (kernel row, row shift, phase)."""
  return _sum_shifted_rows(rows, terms, phases)


def _rows_to_phases_fwd(rows, terms, phases):
  return _rows_to_phases(rows, terms, phases), rows.shape[3]


def _rows_to_phases_bwd(terms, phases, kernel_rows, grad):
  del phases
  return (_sum_shifted_rows(grad, tuple((p, -d, t) for t, d, p in terms), kernel_rows),)


_rows_to_phases.defvjp(_rows_to_phases_fwd, _rows_to_phases_bwd)


class UpsampledConv(nn.Module):
  """`nn.Conv(features, (k, k))` (SAME) of the `factor`-fold nearest upsample of the input.

  The upsampled map is never formed. A 1 x span conv of the small input gives, for every kernel
  row and column phase, that row's taps summed over the input pixels they read; each row phase
  then adds the kernel rows at the input rows they read. Same parameters (`kernel`
  [k, k, in, features], `bias`) and function as nn.Conv, with under a fifth of its
  multiply-adds for k = 3, factor = 4 (only float rounding differs).
  """
  features: int
  kernel_size: int
  factor: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    k, features = self.kernel_size, self.features
    n, h, w, c = x.shape
    kernel = self.param("kernel", nn.initializers.lecun_normal(), (k, k, c, features))
    bias = self.param("bias", nn.initializers.zeros_init(), (features,))
    taps, phase_of, pads = upsampled_conv_phases(k, self.factor)
    phases, span = taps.shape[:2]
    column_kernel = jnp.einsum("qxl,klio->xikqo", taps, kernel, precision=lax.Precision.HIGHEST)
    rows = _conv_along_width(x, column_kernel.reshape(1, span, c, k * phases * features), pads)
    terms = tuple((int(t), int(y) - pads[0], p)
                  for p in range(phases) for y, t in zip(*np.nonzero(taps[p])))
    out = _rows_to_phases(rows.reshape(n, h, w, k, phases, features), terms, phases)
    return _phases_to_space(out, phase_of) + bias


def relu_max_pool(x: jax.Array) -> jax.Array:
  """`max_pool_2x2(relu(x))`, computed as `relu(max_pool_2x2(x))`: a quarter of the ReLU work."""
  return nn.relu(max_pool_2x2(x))


def conv_of_upsample(features: int, kernel_size: int, factor: int, name: str) -> nn.Module:
  """A SAME `kernel_size` conv of the `factor`-fold nearest upsample of its input (a plain
  `nn.Conv` when `factor` is 1); both hold the same `kernel` and `bias` parameters."""
  if factor == 1:
    return nn.Conv(features, (kernel_size, kernel_size), name=name)
  return UpsampledConv(features, kernel_size, factor, name=name)
