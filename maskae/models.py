"""Convolutional autoencoders (Flax Linen), every shape choice a config field.

The paper's model is `features=(32, 64), kernel_size=3, strides=2, pooling="max"`: each encoder
stage is Conv(k x k, stride s) + ReLU + MaxPool(2 x 2), so 256 x 256 x 3 becomes a 16 x 16 x 64 code;
the decoder mirrors it with Conv + UpSampling (nearest repeat). No TensorFlow here.

Two levers of global context and gating beside the paper's layers: `fourier_blocks` residual
fast Fourier convolution blocks (LaMa, Suvorov et al. 2022) at 1 / factor of the image size,
after the first encoder stage or after the last decoder stage's conv (`fourier_at`), and
`gated_decoder` (DeepFill v2's gated convolutions, Yu et al. 2019) in the decoder. At inference
(not in a train step), `flip_average` averages the predictions for the image and its mirror.

Two models, chosen by `config.model.name`: `autoencoder` (the output is the decoded image) and
`mask_composite` (it also predicts the mask and replaces only that region; its own options are
`config.model.composite`). The architecture only: the kernels that make it fast on CPU without
changing its function or parameters are `maskae.ops`.
"""

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
from jax import lax

from maskae import ops

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


class FourierUnit(nn.Module):
  """LaMa's Fourier unit: a 1 x 1 Conv + ReLU on the real and imaginary parts of the feature
  map's 2-D real FFT, then the inverse FFT: every output pixel sees the whole map."""
  features: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    h, w = x.shape[1:3]
    spectrum = jnp.fft.rfft2(x, axes=(1, 2), norm="ortho")
    y = jnp.concatenate([spectrum.real, spectrum.imag], axis=-1)
    y = nn.relu(nn.Conv(2 * self.features, (1, 1), name="spectral_conv")(y))
    spectrum = lax.complex(y[..., :self.features], y[..., self.features:])
    return jnp.fft.irfft2(spectrum, s=(h, w), axes=(1, 2), norm="ortho")


class SpectralTransform(nn.Module):
  """LaMa's global branch: 1 x 1 Conv to half width + ReLU, a Fourier unit added back, 1 x 1 Conv
  to `features`."""
  features: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    half = max(self.features // 2, 1)
    x = nn.relu(nn.Conv(half, (1, 1), name="reduce")(x))
    return nn.Conv(self.features, (1, 1), name="expand")(x + FourierUnit(half, name="fourier")(x))


class FFCBlock(nn.Module):
  """A residual block of two fast Fourier convolutions (LaMa's FFCResnetBlock, without batch
  norm): the channels are split into a local and a global half; local -> local, global -> local
  and local -> global are 3 x 3 convs, global -> global is the spectral transform."""
  activation: str = "relu"

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    act = _lookup(ACTIVATIONS, self.activation, "model.activation")
    channels = x.shape[-1]
    split = channels // 2
    y = x
    for i in range(2):
      local, global_ = y[..., :split], y[..., split:]
      conv = lambda f, name: nn.Conv(f, (3, 3), name=f"{name}{i}")
      new_local = conv(split, "local_to_local")(local) + conv(split, "global_to_local")(global_)
      new_global = (conv(channels - split, "local_to_global")(local)
                    + SpectralTransform(channels - split, name=f"global_to_global{i}")(global_))
      y = act(jnp.concatenate([new_local, new_global], axis=-1))
    return x + y


class Encoder(nn.Module):
  """Stages of Conv(kernel, strides) + activation (+ 2x2 max pool); returns code and skip inputs.
  `fourier_blocks` FFC blocks follow the first stage."""
  features: Sequence[int]
  kernel_size: int = 3
  strides: int = 2
  pooling: str = "max"
  latent_channels: int = 0
  activation: str = "relu"
  fourier_blocks: int = 0

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
      if self.pooling == "max":
        x = ops.relu_max_pool(x) if self.activation == "relu" else ops.max_pool_2x2(act(x))
      else:
        x = act(x)
      if i == 0:
        for j in range(self.fourier_blocks):
          x = FFCBlock(self.activation, name=f"ffc{j}")(x)
    if self.latent_channels:
      x = nn.Conv(self.latent_channels, (1, 1), name="latent")(x)
    return x, skips


class Decoder(nn.Module):
  """Mirror of the encoder: Conv + activation + upsampling per stage, then an output conv. With
  `gated`, each stage's conv is a gated convolution: twice the channels, act(features) *
  sigmoid(gate). `fourier_blocks` FFC blocks follow the last stage's conv (before its upsample)."""
  features: Sequence[int]
  upsample_factor: int
  out_channels: int = 3
  kernel_size: int = 3
  upsampling: str = "repeat"
  activation: str = "relu"
  skip_connections: bool = False
  low_res_output: bool = False
  gated: bool = False
  fourier_blocks: int = 0

  @nn.compact
  def __call__(self, x: jax.Array, skips: Sequence[jax.Array] = ()) -> jax.Array:
    """The decoded channels; with `low_res_output`, at 1 / upsample_factor of the image size (the
    last stage does not upsample)."""
    act = _lookup(ACTIVATIONS, self.activation, "model.activation")
    k, factor = self.kernel_size, self.upsample_factor
    # A repeat upsample is folded into the next conv unless a skip joins at the upsampled size.
    fold = self.upsampling == "repeat" and not self.skip_connections and factor > 1

    def stage_conv(x, f, owed, name):
      if not self.gated:
        return act(ops.conv_of_upsample(f, k, owed, name)(x))
      y = ops.conv_of_upsample(2 * f, k, owed, name)(x)
      return act(y[..., :f]) * nn.sigmoid(y[..., f:])

    owed = 1  # nearest-upsample factor that x still owes (folded into the next conv)
    for i, f in enumerate(reversed(self.features)):
      x = stage_conv(x, f, owed, f"conv{i}")
      owed = 1
      if i == len(self.features) - 1:
        for j in range(self.fourier_blocks):
          x = FFCBlock(self.activation, name=f"ffc{j}")(x)
        if self.low_res_output:
          break
      if fold:
        owed = factor
      else:
        x = _upsample(x, factor, self.upsampling, f, name=f"up{i}")
        if self.skip_connections:
          x = jnp.concatenate([x, skips[len(skips) - 1 - i]], axis=-1)
          x = stage_conv(x, f, 1, f"fuse{i}")
    return ops.conv_of_upsample(self.out_channels, k, owed, "out")(x)


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
  """Encoder + optional bottleneck + decoder; the output is the decoded image (the paper's kind).

  `bottleneck_convs` residual Conv + activation blocks at the code's size widen the receptive
  field cheaply; `latent_dense` flattens the code to a vector and back. With `low_res_output` the
  decoder's last stage skips its upsample and its output channels are resized bilinearly to the
  image size. With `flip_average`, a call with `train=False` predicts for the image and its
  left-right mirror in one batch and averages the two (the mirror's flipped back): a
  self-ensemble for evaluation and unmasking, the same parameters. Returns {"output": the
  image, "raw": the same image} (`raw` is the decoded image before any compositing, for every
  model).
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
  bottleneck_convs: int = 0
  low_res_output: bool = False
  fourier_blocks: int = 0
  fourier_at: str = "encoder"
  gated_decoder: bool = False
  flip_average: bool = False

  def decoded_channels(self) -> int:
    """Channels the decoder outputs: the image's three."""
    return 3

  def setup(self):
    if self.fourier_at not in ("encoder", "decoder"):
      raise ValueError(f'unknown model.fourier_at "{self.fourier_at}"; valid: decoder, encoder')
    in_encoder = self.fourier_blocks if self.fourier_at == "encoder" else 0
    self.encoder = Encoder(self.features, self.kernel_size, self.strides, self.pooling,
                           self.latent_channels, self.activation, in_encoder)
    factor = self.strides * (2 if self.pooling == "max" else 1)
    self.decoder = Decoder(self.features, factor, self.decoded_channels(), self.kernel_size,
                           self.upsampling, self.activation, self.skip_connections,
                           self.low_res_output, self.gated_decoder,
                           self.fourier_blocks - in_encoder)
    self.bottleneck_blocks = [nn.Conv(self.features[-1] if not self.latent_channels
                                      else self.latent_channels, (3, 3), name=f"bottleneck{i}")
                              for i in range(self.bottleneck_convs)]
    if self.latent_dense:
      self.bottleneck = DenseBottleneck(self.latent_dense)
    self.act = _lookup(ACTIVATIONS, self.activation, "model.activation")
    self.out_act = _lookup(OUTPUT_ACTIVATIONS, self.output_activation, "model.output_activation")

  def encode(self, images: jax.Array) -> tuple[jax.Array, list[jax.Array]]:
    """The latent code [N, h, w, c] and the encoder's stage inputs (for skips)."""
    return self.encoder(images)

  def decode(self, images: jax.Array) -> jax.Array:
    """The decoder's channels for `images`, at the image size (before the output activation)."""
    code, skips = self.encode(images)
    for block in self.bottleneck_blocks:
      code = code + self.act(block(code))
    if self.latent_dense:
      code = self.bottleneck(code)
    decoded = self.decoder(code, skips)
    if self.low_res_output:
      decoded = jax.image.resize(decoded, images.shape[:3] + decoded.shape[3:], "bilinear")
    return decoded

  def predict(self, images: jax.Array) -> dict[str, jax.Array]:
    """The per-pixel predictions the output is made of: {"raw": the decoded image}."""
    return {"raw": self.out_act(self.decode(images))}

  def predictions(self, images: jax.Array, train: bool) -> dict[str, jax.Array]:
    """`predict(images)`; with `flip_average` and not `train`, averaged with the mirror's."""
    if not self.flip_average or train:
      return self.predict(images)
    n = images.shape[0]
    both = self.predict(jnp.concatenate([images, jnp.flip(images, axis=2)]))
    return {k: (v[:n] + jnp.flip(v[n:], axis=2)) / 2 for k, v in both.items()}

  def __call__(self, images: jax.Array, train: bool = False) -> dict[str, jax.Array]:
    raw = self.predictions(images, train)["raw"]
    return {"output": raw, "raw": raw}


class MaskCompositeAutoencoder(Autoencoder):
  """The autoencoder that also predicts where the mask is and replaces only that region.

  `mask` is the predicted mask probability [N, H, W, 1]: the decoder's fourth channel, or, with
  `detector_features`, a `MaskDetector`'s, which shares no weights with the autoencoder. The
  output is `mask * raw + (1 - mask) * input`, so uncovered pixels come back exactly; with
  `hard`, `raw` where mask >= `threshold` (that region first grown by `dilation` pixels), else
  the input: no mask colour leaks through a probability under 1, and no gradient reaches the
  mask through the output. A threshold under 0.5 takes the pixels the detector is unsure of:
  keeping a masked pixel costs more than redrawing a clean one. With `erase_region` (a hard
  composite with a detector), the autoencoder never sees that region: its input is the image
  blanked to mid-grey there, with the region as a fourth channel (the inpainting network's
  input), so the fill cannot depend on the mask's colours or print. Returns {"output", "raw",
  "mask"}.
  """
  hard: bool = False
  dilation: int = 0
  detector_features: Sequence[int] = ()
  threshold: float = 0.5
  erase_region: bool = False

  def decoded_channels(self) -> int:
    """The image's three channels, plus the mask's unless a detector predicts it."""
    return 3 if self.detector_features else 4

  def setup(self):
    super().setup()
    if self.detector_features:
      self.mask_detector = MaskDetector(tuple(self.detector_features))

  def taken_region(self, mask: jax.Array) -> jax.Array:
    """The hard composite's region [N, H, W, 1] (bool): mask >= threshold, grown by dilation."""
    region = lax.stop_gradient(mask) >= self.threshold
    if self.dilation:
      width = 2 * self.dilation + 1
      region = lax.reduce_window(region, False, lax.bitwise_or, (1, width, width, 1),
                                 (1, 1, 1, 1), "SAME")
    return region

  def predict(self, images: jax.Array) -> dict[str, jax.Array]:
    """{"raw": the decoded image, "mask": the predicted mask probability}."""
    if not self.detector_features:
      decoded = self.decode(images)
      return {"raw": self.out_act(decoded[..., :3]), "mask": nn.sigmoid(decoded[..., 3:])}
    mask = nn.sigmoid(self.mask_detector(images))
    if self.erase_region:
      region = self.taken_region(mask).astype(images.dtype)
      images = jnp.concatenate([images * (1 - region) + 0.5 * region, region], axis=-1)
    return {"raw": self.out_act(self.decode(images)), "mask": mask}

  def __call__(self, images: jax.Array, train: bool = False) -> dict[str, jax.Array]:
    predicted = self.predictions(images, train)
    raw, mask = predicted["raw"], predicted["mask"]
    if not self.hard:
      return {"output": ops.composite(mask, raw, images), "raw": raw, "mask": mask}
    return {"output": jnp.where(self.taken_region(mask), raw, images), "raw": raw, "mask": mask}


class PatchDiscriminator(nn.Module):
  """A PatchGAN discriminator (Isola et al. 2017): stride-2 4 x 4 Conv + leaky ReLU stages of
  `features`, then a 3 x 3 Conv to one logit per patch, [N, H / 2^L, W / 2^L, 1]."""
  features: Sequence[int] = (32, 64, 128)

  @nn.compact
  def __call__(self, images: jax.Array) -> jax.Array:
    x = images
    for i, f in enumerate(self.features):
      x = nn.leaky_relu(nn.Conv(f, (4, 4), strides=(2, 2), name=f"down{i}")(x), 0.2)
    return nn.Conv(1, (3, 3), name="logits")(x)


# config.model.name -> the model; config.model.composite is the mask_composite model's own block.
MODELS = {"autoencoder": Autoencoder, "mask_composite": MaskCompositeAutoencoder}
# Model keys that choose how a trained model's predictions make its output, not its parameters:
# an evaluation may set them otherwise than the training did (with `composite.erase_region`, the
# threshold and dilation also choose what the autoencoder saw in training).
INFERENCE_KEYS = ("model.flip_average", "model.composite.threshold", "model.composite.dilation")


def create_model(model_config: ml_collections.ConfigDict) -> Autoencoder:
  """Builds the model `config.model.name` from its config block."""
  model_class = _lookup(MODELS, model_config.name, "model.name")
  fields = {k: v for k, v in model_config.items() if k not in ("name", "composite")}
  fields["features"] = tuple(fields["features"])
  if model_class is MaskCompositeAutoencoder:
    composite = model_config.composite
    fields.update(hard=composite.hard, dilation=composite.dilation,
                  detector_features=tuple(composite.detector_features),
                  threshold=composite.threshold, erase_region=composite.erase_region)
  return model_class(**fields)


def code_shape(model: Autoencoder, image_size: int) -> tuple[int, ...]:
  """Shape of the latent code for one image of `image_size` (abstract evaluation, no FLOPs)."""
  images = jnp.zeros((1, image_size, image_size, 3), jnp.float32)

  def encode(x):
    variables = model.init(jax.random.key(0), x)
    return model.apply(variables, x, method=Autoencoder.encode)[0]

  return tuple(jax.eval_shape(encode, images).shape[1:])
