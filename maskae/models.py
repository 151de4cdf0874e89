"""Convolutional autoencoders (Flax Linen), every shape choice a config field.

The paper's model is `features=(32, 64), kernel_size=3, strides=2, pooling="max"`: each encoder
stage is Conv(k x k, stride s) + ReLU + MaxPool(2 x 2), so 256 x 256 x 3 becomes a 16 x 16 x 64 code;
the decoder mirrors it with Conv + UpSampling (nearest repeat). No TensorFlow here.
"""

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

_ACTIVATIONS = {"relu": nn.relu, "gelu": nn.gelu, "silu": nn.silu, "leaky_relu": nn.leaky_relu,
                "elu": nn.elu}
_OUTPUT_ACTIVATIONS = {"sigmoid": nn.sigmoid, "none": lambda x: x, "clip": lambda x: jnp.clip(x, 0, 1)}


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
    act = _lookup(_ACTIVATIONS, self.activation, "model.activation")
    if self.pooling not in ("max", "none"):
      raise ValueError(f'unknown model.pooling "{self.pooling}"; valid: max, none')
    skips = []
    k = self.kernel_size
    for i, f in enumerate(self.features):
      skips.append(x)
      x = act(nn.Conv(f, (k, k), strides=(self.strides, self.strides), name=f"conv{i}")(x))
      if self.pooling == "max":
        x = nn.max_pool(x, (2, 2), strides=(2, 2))
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

  @nn.compact
  def __call__(self, x: jax.Array, skips: Sequence[jax.Array] = ()) -> jax.Array:
    act = _lookup(_ACTIVATIONS, self.activation, "model.activation")
    k = self.kernel_size
    for i, f in enumerate(reversed(self.features)):
      x = act(nn.Conv(f, (k, k), name=f"conv{i}")(x))
      x = _upsample(x, self.upsample_factor, self.upsampling, f, name=f"up{i}")
      if self.skip_connections:
        x = jnp.concatenate([x, skips[len(skips) - 1 - i]], axis=-1)
        x = act(nn.Conv(f, (k, k), name=f"fuse{i}")(x))
    return nn.Conv(self.out_channels, (k, k), name="out")(x)


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

  Returns a dict: `output` (the image to score), `raw` (the decoder's image before any
  compositing) and, with `mask_head`, `mask` (predicted mask probability, [N, H, W, 1]) with
  `output = mask * raw + (1 - mask) * input`, so uncovered pixels come back exactly.
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

  def setup(self):
    self.encoder = Encoder(self.features, self.kernel_size, self.strides, self.pooling,
                           self.latent_channels, self.activation)
    factor = self.strides * (2 if self.pooling == "max" else 1)
    self.decoder = Decoder(self.features, factor, 4 if self.mask_head else 3, self.kernel_size,
                           self.upsampling, self.activation, self.skip_connections)
    if self.latent_dense:
      self.bottleneck = DenseBottleneck(self.latent_dense)
    self.out_act = _lookup(_OUTPUT_ACTIVATIONS, self.output_activation, "model.output_activation")

  def encode(self, images: jax.Array) -> tuple[jax.Array, list[jax.Array]]:
    """The latent code [N, h, w, c] and the encoder's stage inputs (for skips)."""
    return self.encoder(images)

  def __call__(self, images: jax.Array) -> dict[str, jax.Array]:
    code, skips = self.encode(images)
    if self.latent_dense:
      code = self.bottleneck(code)
    decoded = self.decoder(code, skips)
    raw = self.out_act(decoded[..., :3])
    if not self.mask_head:
      return {"output": raw, "raw": raw}
    mask = nn.sigmoid(decoded[..., 3:])
    return {"output": mask * raw + (1.0 - mask) * images, "raw": raw, "mask": mask}


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

