"""Image-restoration metrics per example, whole image and masked region only (no TensorFlow).

All images are float in [0, 1], NHWC. The masked region is where the true mask alpha > 0.5;
whole-image scores flatter any method because most pixels were never covered, so both are kept.
"""

import functools

import dm_pix
import jax.numpy as jnp
import numpy as np
from jax import lax

MASK_THRESHOLD = 0.5
# The per-example metrics of `image_metrics`, in report order.
NAMES = ("psnr_masked", "ssim_masked", "mae_masked", "mse_masked", "sharpness_masked", "psnr",
         "ssim", "mae", "mse", "keras_accuracy")
SSIM_FILTER_SIZE, SSIM_FILTER_SIGMA = 11, 1.5  # dm_pix's (and Wang et al.'s) defaults


@functools.lru_cache(maxsize=16)
def _gaussian_band(size: int) -> np.ndarray:
  """[size, size - 10] matrix whose product with a line is its "valid" 11-tap Gaussian filter."""
  half = SSIM_FILTER_SIZE // 2
  taps = np.exp(-0.5 * ((np.arange(SSIM_FILTER_SIZE) - half) / SSIM_FILTER_SIGMA) ** 2)
  band = np.zeros((size, size - SSIM_FILTER_SIZE + 1), np.float32)
  for j in range(band.shape[1]):
    band[j:j + SSIM_FILTER_SIZE, j] = taps / taps.sum()
  return band


def _gaussian_filter(z: jnp.ndarray) -> jnp.ndarray:
  """dm_pix.ssim's separable Gaussian blur ("valid"), as two matrix products: the same values
  (to float rounding) about 3x faster on CPU than its vmapped 1-D convolutions."""
  z = jnp.einsum("nhwc,wv->nhvc", z, _gaussian_band(z.shape[2]), precision=lax.Precision.HIGHEST)
  return jnp.einsum("nhwc,hv->nvwc", z, _gaussian_band(z.shape[1]), precision=lax.Precision.HIGHEST)


def ssim_map(pred: jnp.ndarray, target: jnp.ndarray) -> jnp.ndarray:
  """dm_pix.ssim's per-pixel map ("valid" 11 x 11 Gaussian window), with the faster filter."""
  return dm_pix.ssim(pred, target, return_map=True, filter_fn=_gaussian_filter)


def _region_mean(values: jnp.ndarray, weights: jnp.ndarray) -> jnp.ndarray:
  """Mean of `values` [N,H,W,C] over pixels with weight 1 ([N,H,W,1]); NaN-free when empty."""
  total = jnp.sum(values * weights, axis=(1, 2, 3))
  count = jnp.sum(jnp.broadcast_to(weights, values.shape), axis=(1, 2, 3))
  return total / jnp.maximum(count, 1.0)


def psnr_from_mse(mse: jnp.ndarray) -> jnp.ndarray:
  """PSNR in dB for images in [0, 1], capped at 100 dB for a perfect match."""
  return jnp.minimum(10.0 * jnp.log10(1.0 / jnp.maximum(mse, 1e-10)), 100.0)


def forward_differences(images: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
  """(d/dx, d/dy) of [N, H, W, C] images: forward differences along x (axis 2) and y (axis 1),
  zero at the far edge (Neumann)."""
  gx = jnp.zeros_like(images).at[:, :, :-1].set(images[:, :, 1:] - images[:, :, :-1])
  gy = jnp.zeros_like(images).at[:, :-1].set(images[:, 1:] - images[:, :-1])
  return gx, gy


def _gradient_magnitude(images: jnp.ndarray) -> jnp.ndarray:
  """|grad| per pixel and channel, [N, H-1, W-1, C] (the pixels with both forward neighbours)."""
  gx, gy = forward_differences(images)
  dx, dy = gx[:, :-1, :-1], gy[:, :-1, :-1]
  return jnp.sqrt(dx * dx + dy * dy + 1e-12)


def sharpness(pred: jnp.ndarray, target: jnp.ndarray, region: jnp.ndarray) -> jnp.ndarray:
  """Mean gradient magnitude of `pred` over `region` ([N,H,W,1] of 0 / 1) over the target's
  there, per example: 1 is as sharp as the clean face, under 1 smoother (a blurred fill)."""
  region = region[:, :-1, :-1]
  ratio = (_region_mean(_gradient_magnitude(pred), region)
           / jnp.maximum(_region_mean(_gradient_magnitude(target), region), 1e-6))
  return jnp.where(jnp.sum(region, axis=(1, 2, 3)) > 0, ratio, 1.0)


def keras_accuracy(pred: jnp.ndarray, target: jnp.ndarray) -> jnp.ndarray:
  """The paper's "accuracy": Keras `accuracy` on an image output resolves to categorical
  accuracy, the fraction of pixels whose arg-max colour channel matches the target's."""
  same = jnp.argmax(pred, axis=-1) == jnp.argmax(target, axis=-1)
  return jnp.mean(same.astype(jnp.float32), axis=(1, 2))


def image_metrics(pred: jnp.ndarray, target: jnp.ndarray, alpha: jnp.ndarray) -> dict:
  """Per-example metrics [N] for predictions vs targets, with the true mask alpha [N,H,W,1]."""
  region = (alpha > MASK_THRESHOLD).astype(jnp.float32)
  abs_err = jnp.abs(pred - target)
  sq_err = jnp.square(pred - target)
  mse = jnp.mean(sq_err, axis=(1, 2, 3))
  mse_masked = _region_mean(sq_err, region)
  ssim_values = ssim_map(pred, target)
  # The SSIM map is "valid"-filtered (11x11 window): crop the region to match.
  crop = (region.shape[1] - ssim_values.shape[1]) // 2
  region_valid = region[:, crop:crop + ssim_values.shape[1], crop:crop + ssim_values.shape[2]]
  return {
      "mae": jnp.mean(abs_err, axis=(1, 2, 3)),
      "mse": mse,
      "psnr": psnr_from_mse(mse),
      "ssim": jnp.mean(ssim_values, axis=(1, 2, 3)),
      "mae_masked": _region_mean(abs_err, region),
      "mse_masked": mse_masked,
      "psnr_masked": psnr_from_mse(mse_masked),
      "ssim_masked": _region_mean(ssim_values, region_valid),
      "sharpness_masked": sharpness(pred, target, region),
      "keras_accuracy": keras_accuracy(pred, target),
  }
