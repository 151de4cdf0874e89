"""Convolutional autoencoders (Flax Linen), every shape choice a config field.

The paper's model is `features=(32, 64), kernel_size=3, strides=2, pooling="max"`: each encoder
stage is Conv(k x k, stride s) + ReLU + MaxPool(2 x 2), so 256 x 256 x 3 becomes a 16 x 16 x 64 code;
the decoder mirrors it with Conv + UpSampling (nearest repeat). No TensorFlow here.

Some computations are restructured for CPU speed (benchmarks/train_step.py) without changing the
function or the parameters: a nearest upsample followed by a conv runs on the small input, phase
by phase (`UpsampledConv`); the 2 x 2 max pool's gradient is routed by comparisons instead of
XLA's `select_and_scatter`; ReLU is applied after the pool, which it commutes with.
"""

import functools
import operator
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax import lax

ACTIVATIONS = {"relu": nn.relu, "gelu": nn.gelu, "silu": nn.silu, "leaky_relu": nn.leaky_relu,
               "elu": nn.elu}
OUTPUT_ACTIVATIONS = {"sigmoid": nn.sigmoid, "none": lambda x: x, "clip": lambda x: jnp.clip(x, 0, 1)}


def _lookup(table: dict, name: str, key: str):
  if name not in table:
    raise ValueError(f'unknown {key} "{name}"; valid: {", ".join(sorted(table))}')
  return table[name]


def _upsample(x: jax.Array, factor: int, method: str, features: int, name: str) -> jax.Array:
  """Upsamples NHWC `x` spatially by an integer factor."""
  if factor == 1:
    return x
  if method == "repeat":
    return jnp.repeat(jnp.repeat(x, factor, axis=1), factor, axis=2)
  if method == "bilinear":
    n, h, w, c = x.shape
    return jax.image.resize(x, (n, h * factor, w * factor, c), "bilinear")
  if method == "transpose":
    return nn.ConvTranspose(features, (factor, factor), strides=(factor, factor), name=name)(x)
  raise ValueError(f'unknown model.upsampling "{method}"; valid: bilinear, repeat, transpose')


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
  a mask-head train step (benchmarks/profile_step.py --override model.mask_head=True)."""
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


class Encoder(nn.Module):
  """Stages of Conv(kernel, strides) + activation (+ 2x2 max pool); returns code and skip inputs."""
  features: Sequence[int]
  kernel_size: int = 3
  strides: int = 2
  pooling: str = "max"
  latent_channels: int = 0
  activation: str = "relu"

  @nn.compact
  def __call__(self, x: jax.Array) -> tuple[jax.Array, list[jax.Array]]:
    act = _lookup(ACTIVATIONS, self.activation, "model.activation")
    if self.pooling not in ("max", "none"):
      raise ValueError(f'unknown model.pooling "{self.pooling}"; valid: max, none')
    skips = []
    k = self.kernel_size
    for i, f in enumerate(self.features):
      skips.append(x)
      x = nn.Conv(f, (k, k), strides=(self.strides, self.strides), name=f"conv{i}")(x)
      if self.pooling == "max" and self.activation == "relu":
        x = act(max_pool_2x2(x))  # relu commutes with max (values and gradients): 1/4 the work
      else:
        x = act(x)
        if self.pooling == "max":
          x = max_pool_2x2(x)
    if self.latent_channels:
      x = nn.Conv(self.latent_channels, (1, 1), name="latent")(x)
    return x, skips


class Decoder(nn.Module):
  """Mirror of the encoder: Conv + activation + upsampling per stage, then an output conv."""
  features: Sequence[int]
  upsample_factor: int
  out_channels: int = 3
  kernel_size: int = 3
  upsampling: str = "repeat"
  activation: str = "relu"
  skip_connections: bool = False
  low_res_output: bool = False

  @nn.compact
  def __call__(self, x: jax.Array, skips: Sequence[jax.Array] = ()) -> jax.Array:
    """The decoded channels; with `low_res_output`, at 1 / upsample_factor of the image size (the
    last stage does not upsample)."""
    act = _lookup(ACTIVATIONS, self.activation, "model.activation")
    k, factor = self.kernel_size, self.upsample_factor
    # A repeat upsample is folded into the next conv unless a skip joins at the upsampled size.
    fold = self.upsampling == "repeat" and not self.skip_connections and factor > 1

    def conv(features, name, upsample):
      if upsample == 1:
        return nn.Conv(features, (k, k), name=name)
      return UpsampledConv(features, k, upsample, name=name)

    owed = 1  # nearest-upsample factor that x still owes (folded into the next conv)
    for i, f in enumerate(reversed(self.features)):
      x = act(conv(f, f"conv{i}", owed)(x))
      owed = 1
      if self.low_res_output and i == len(self.features) - 1:
        break
      if fold:
        owed = factor
      else:
        x = _upsample(x, factor, self.upsampling, f, name=f"up{i}")
        if self.skip_connections:
          x = jnp.concatenate([x, skips[len(skips) - 1 - i]], axis=-1)
          x = act(nn.Conv(f, (k, k), name=f"fuse{i}")(x))
    return conv(self.out_channels, "out", owed)(x)


class MaskDetector(nn.Module):
  """A small network of its own that predicts the mask logits from the masked image.

  Stride-2 Conv + ReLU stages of `features`, then three 3 x 3 Conv + ReLU of the last width,
  dilated 1, 2 and 4 (a receptive field of about 70 px at stride 4), and a 3 x 3 Conv to one
  channel, resized bilinearly to the image size.
  """
  features: Sequence[int]

  @nn.compact
  def __call__(self, images: jax.Array) -> jax.Array:
    x = images
    for i, f in enumerate(self.features):
      x = nn.relu(nn.Conv(f, (3, 3), strides=(2, 2), name=f"down{i}")(x))
    for i, dilation in enumerate((1, 2, 4)):
      x = nn.relu(nn.Conv(self.features[-1], (3, 3), kernel_dilation=dilation,
                          name=f"context{i}")(x))
    logits = nn.Conv(1, (3, 3), name="out")(x)
    return jax.image.resize(logits, images.shape[:3] + (1,), "bilinear")


class DenseBottleneck(nn.Module):
  """Flattens the code to a `size`-vector and back (a dense latent, as in classic autoencoders)."""
  size: int

  @nn.compact
  def __call__(self, code: jax.Array) -> jax.Array:
    n, h, w, c = code.shape
    vector = nn.Dense(self.size, name="to_vector")(code.reshape(n, -1))
    return nn.relu(nn.Dense(h * w * c, name="from_vector")(vector)).reshape(n, h, w, c)


class Autoencoder(nn.Module):
  """Encoder + optional dense bottleneck + decoder; optional skip connections and mask head.

  `bottleneck_convs` residual Conv + activation blocks at the code's size widen the receptive
  field cheaply. With `low_res_output` the decoder's last stage skips its upsample and its output
  channels are resized bilinearly to the image size.

  Returns a dict: `output` (the image to score), `raw` (the decoder's image before any
  compositing) and, with `mask_head`, `mask` (predicted mask probability, [N, H, W, 1]) with
  `output = mask * raw + (1 - mask) * input`, so uncovered pixels come back exactly; with
  `hard_composite`, `output = raw where mask >= 0.5, else input` (no mask colour leaks through a
  probability under 1; no gradient reaches the mask through the output), that region first grown
  by `composite_dilation` pixels. The mask is the decoder's fourth channel, or, with
  `mask_detector_features`, a `MaskDetector`'s, which shares no weights with the autoencoder.
  """
  features: Sequence[int] = (32, 64)
  kernel_size: int = 3
  strides: int = 2
  pooling: str = "max"
  latent_channels: int = 0
  latent_dense: int = 0
  upsampling: str = "repeat"
  activation: str = "relu"
  output_activation: str = "sigmoid"
  skip_connections: bool = False
  mask_head: bool = False
  bottleneck_convs: int = 0
  low_res_output: bool = False
  hard_composite: bool = False
  composite_dilation: int = 0
  mask_detector_features: Sequence[int] = ()

  def setup(self):
    self.encoder = Encoder(self.features, self.kernel_size, self.strides, self.pooling,
                           self.latent_channels, self.activation)
    factor = self.strides * (2 if self.pooling == "max" else 1)
    mask_channel = self.mask_head and not self.mask_detector_features
    self.decoder = Decoder(self.features, factor, 4 if mask_channel else 3, self.kernel_size,
                           self.upsampling, self.activation, self.skip_connections,
                           self.low_res_output)
    for field in ("hard_composite", "composite_dilation", "mask_detector_features"):
      if getattr(self, field) and not self.mask_head:
        raise ValueError(f"model.{field} needs model.mask_head=True")
    if self.composite_dilation and not self.hard_composite:
      raise ValueError("model.composite_dilation needs model.hard_composite=True")
    if self.mask_detector_features:
      self.mask_detector = MaskDetector(tuple(self.mask_detector_features))
    self.bottleneck_blocks = [nn.Conv(self.features[-1] if not self.latent_channels
                                      else self.latent_channels, (3, 3), name=f"bottleneck{i}")
                              for i in range(self.bottleneck_convs)]
    if self.latent_dense:
      self.bottleneck = DenseBottleneck(self.latent_dense)
    self.out_act = _lookup(OUTPUT_ACTIVATIONS, self.output_activation, "model.output_activation")

  def encode(self, images: jax.Array) -> tuple[jax.Array, list[jax.Array]]:
    """The latent code [N, h, w, c] and the encoder's stage inputs (for skips)."""
    return self.encoder(images)

  def __call__(self, images: jax.Array) -> dict[str, jax.Array]:
    act = _lookup(ACTIVATIONS, self.activation, "model.activation")
    code, skips = self.encode(images)
    for block in self.bottleneck_blocks:
      code = code + act(block(code))
    if self.latent_dense:
      code = self.bottleneck(code)
    decoded = self.decoder(code, skips)
    if self.low_res_output:
      decoded = jax.image.resize(decoded, images.shape[:3] + decoded.shape[3:], "bilinear")
    raw = self.out_act(decoded[..., :3])
    if not self.mask_head:
      return {"output": raw, "raw": raw}
    if self.mask_detector_features:
      mask = nn.sigmoid(self.mask_detector(images))
    else:
      mask = nn.sigmoid(decoded[..., 3:])
    if self.hard_composite:
      region = lax.stop_gradient(mask) >= 0.5
      if self.composite_dilation:
        width = 2 * self.composite_dilation + 1
        region = lax.reduce_window(region, False, lax.bitwise_or, (1, width, width, 1),
                                   (1, 1, 1, 1), "SAME")
      return {"output": jnp.where(region, raw, images), "raw": raw, "mask": mask}
    return {"output": composite(mask, raw, images), "raw": raw, "mask": mask}


def create_model(model_config: ml_collections.ConfigDict) -> Autoencoder:
  """Builds the autoencoder from `config.model`."""
  fields = dict(model_config)
  fields["features"] = tuple(fields["features"])
  return Autoencoder(**fields)


def code_shape(model: Autoencoder, image_size: int) -> tuple[int, ...]:
  """Shape of the latent code for one image of `image_size` (abstract evaluation, no FLOPs)."""
  images = jnp.zeros((1, image_size, image_size, 3), jnp.float32)

  def encode(x):
    variables = model.init(jax.random.key(0), x)
    return model.apply(variables, x, method=Autoencoder.encode)[0]

  return tuple(jax.eval_shape(encode, images).shape[1:])

