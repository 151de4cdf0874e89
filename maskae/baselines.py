"""Classical inpainting baselines, all told where the true mask is (numpy / OpenCV / jax, no TF).

Every method takes float32 images [N,H,W,3] in [0, 1] and the region to fill, bool [N,H,W]
(`fill_region`: the true mask alpha > 0.5 grown by `DILATE_PX` pixels, so the mask's soft
anti-aliased edge is filled too), and returns images equal to the input outside the region.
"""

import functools

import cv2
import jax
import jax.numpy as jnp
import numpy as np

from maskae import metrics as metrics_lib

DILATE_PX = 2
OPENCV_RADIUS = 3  # cv2.inpaint's neighbourhood radius (pixels)
TV_ITERATIONS = 400
TV_STEP_RATIO = 8.0  # sigma / tau

# Display names of the baselines told the true mask, in table order (`maskae.evaluate` adds the
# masked input, scored by `maskae.evaluator`, and the model).
NAMES = {
    "mean_face": "mean-face fill",
    "telea": "OpenCV Telea",
    "navier_stokes": "OpenCV Navier-Stokes",
    "tv": "total-variation inpainting",
}


def fill_region(alpha: np.ndarray, dilate_px: int = DILATE_PX) -> np.ndarray:
  """bool [N,H,W]: alpha [N,H,W,1] > 0.5, dilated `dilate_px` times by a 3x3 square."""
  region = (alpha[..., 0] > metrics_lib.MASK_THRESHOLD).astype(np.uint8)
  if dilate_px:
    kernel = np.ones((3, 3), np.uint8)
    region = np.stack([cv2.dilate(r, kernel, iterations=dilate_px) for r in region])
  return region.astype(bool)


def _keep_outside(filled: np.ndarray, images: np.ndarray, region: np.ndarray) -> np.ndarray:
  return np.where(region[..., None], filled, images).astype(np.float32)


def opencv_inpaint(images: np.ndarray, region: np.ndarray, method: str,
                   radius: int = OPENCV_RADIUS) -> np.ndarray:
  """cv2.inpaint (method "telea" or "navier_stokes") on 8-bit copies of the images."""
  flag = {"telea": cv2.INPAINT_TELEA, "navier_stokes": cv2.INPAINT_NS}[method]
  u8 = np.round(np.clip(images, 0, 1) * 255).astype(np.uint8)
  filled = np.stack([cv2.inpaint(np.ascontiguousarray(image), r.astype(np.uint8), radius, flag)
                     for image, r in zip(u8, region)])
  return _keep_outside(filled.astype(np.float32) / 255.0, images, region)


def mean_face_fill(images: np.ndarray, region: np.ndarray, mean_face: np.ndarray) -> np.ndarray:
  """Pastes the per-pixel mean training face [H,W,3] into the region."""
  return _keep_outside(np.broadcast_to(mean_face, images.shape), images, region)


def total_variation(images) -> np.ndarray:
  """Isotropic, colour-coupled total variation per image: sum over pixels of the norm of the
  forward-difference gradient over all channels (the energy `tv_inpaint` minimises)."""
  gx, gy = metrics_lib.forward_differences(jnp.asarray(images, jnp.float32))
  return np.asarray(jnp.sum(jnp.sqrt(jnp.sum(gx**2 + gy**2, axis=-1)), axis=(1, 2)))


def _divergence(px, py):
  """Minus the adjoint of `metrics.forward_differences`."""
  dx = jnp.concatenate([px[:, :, :1], px[:, :, 1:-1] - px[:, :, :-2], -px[:, :, -2:-1]], axis=2)
  dy = jnp.concatenate([py[:, :1], py[:, 1:-1] - py[:, :-2], -py[:, -2:-1]], axis=1)
  return dx + dy


@functools.partial(jax.jit, static_argnums=(3,))
def _chambolle_pock(known, free, start, iterations):
  """min TV(u) s.t. u = known outside `free`, u in [0, 1]: Chambolle & Pock (2011), Alg. 1."""
  # tau * sigma * ||grad||^2 <= 1 with ||grad||^2 <= 8; a small primal step converges faster here.
  tau, sigma = 1.0 / (jnp.sqrt(8.0) * TV_STEP_RATIO), TV_STEP_RATIO / jnp.sqrt(8.0)

  def body(_, carry):
    u, u_bar, px, py = carry
    gx, gy = metrics_lib.forward_differences(u_bar)
    px, py = px + sigma * gx, py + sigma * gy
    norm = jnp.maximum(1.0, jnp.sqrt(jnp.sum(px**2 + py**2, axis=-1, keepdims=True)))
    px, py = px / norm, py / norm
    u_new = jnp.where(free, jnp.clip(u + tau * _divergence(px, py), 0.0, 1.0), known)
    return u_new, 2.0 * u_new - u, px, py

  zeros = jnp.zeros_like(start)
  return jax.lax.fori_loop(0, iterations, body, (start, start, zeros, zeros))[0]


def tv_inpaint(images: np.ndarray, region: np.ndarray,
               iterations: int = TV_ITERATIONS) -> np.ndarray:
  """Total-variation inpainting: the image of least (isotropic, colour-coupled) TV that keeps
  every pixel outside the region, by primal-dual iterations started from the mean colour of
  the known pixels bordering the region."""
  images = np.asarray(images, np.float32)
  border = np.stack([cv2.dilate(r.astype(np.uint8), np.ones((3, 3), np.uint8)) for r in region])
  border = (border.astype(bool) & ~region)[..., None]
  border_mean = (np.sum(images * border, axis=(1, 2), keepdims=True)
                 / np.maximum(np.sum(border, axis=(1, 2), keepdims=True), 1))
  start = np.where(region[..., None], border_mean, images)
  filled = np.asarray(_chambolle_pock(images, region[..., None], start, iterations))
  return _keep_outside(filled, images, region)


def run_all(masked: np.ndarray, alpha: np.ndarray, mean_face: np.ndarray) -> dict:
  """Outputs of every baseline in `NAMES` for a batch of masked images and true masks."""
  region = fill_region(alpha)
  return {
      "mean_face": mean_face_fill(masked, region, mean_face),
      "telea": opencv_inpaint(masked, region, "telea"),
      "navier_stokes": opencv_inpaint(masked, region, "navier_stokes"),
      "tv": tv_inpaint(masked, region),
  }
