"""Classical inpainting baselines on tiny hand-made images with known answers."""

import numpy as np
import pytest

from maskae import baselines, metrics


def _gradient_image(size=32):
  y, x = np.mgrid[0:size, 0:size] / (size - 1)
  return np.stack([x, y, 0.5 * (x + y)], -1)[None].astype(np.float32)


def _hole(size=32):
  region = np.zeros((1, size, size), bool)
  region[0, 8:24, 10:22] = True
  return region


def test_fill_region_thresholds_and_dilates():
  alpha = np.zeros((1, 16, 16, 1), np.float32)
  alpha[0, 8, 8] = 1.0
  alpha[0, 2, 2] = 0.5  # not > 0.5
  assert baselines.fill_region(alpha, dilate_px=0).sum() == 1
  grown = baselines.fill_region(alpha, dilate_px=2)
  assert grown.sum() == 25 and grown[0, 6:11, 6:11].all()


@pytest.mark.parametrize("method", ["telea", "navier_stokes"])
def test_opencv_restores_a_smooth_gradient_and_keeps_known_pixels(method):
  clean, region = _gradient_image(), _hole()
  masked = clean.copy()
  masked[region] = 0.0
  out = baselines.opencv_inpaint(masked, region, method)
  error = np.abs(out - clean)[region].mean()
  assert error < 0.1 * np.abs(masked - clean)[region].mean()
  assert error < 0.06
  np.testing.assert_array_equal(out[~region], masked[~region])


def test_tv_inpainting_of_a_constant_image_is_exact():
  clean = np.full((2, 24, 24, 3), 0.3, np.float32)
  region = np.zeros((2, 24, 24), bool)
  region[0, 5:15, 3:20] = True
  region[1, :12] = True
  masked = clean.copy()
  masked[region] = np.random.default_rng(0).uniform(size=(int(region.sum()), 3))
  np.testing.assert_allclose(baselines.tv_inpaint(masked, region), clean, atol=1e-5)


def test_tv_inpainting_minimises_total_variation():
  # A vertical step edge through a hole: TV's minimiser continues the edge straight, keeping it
  # sharp, where the diffusion-like OpenCV methods blur it.
  clean = np.zeros((1, 32, 32, 3), np.float32)
  clean[:, :, 16:] = 1.0
  region = _hole()
  masked = clean.copy()
  masked[region] = 0.5
  out = baselines.tv_inpaint(masked, region)
  np.testing.assert_array_equal(out[~region], masked[~region])
  tv = baselines.total_variation(out)[0]
  assert tv == pytest.approx(baselines.total_variation(clean)[0], rel=0.01)  # clean is optimal
  for method in ("telea", "navier_stokes"):
    other = baselines.opencv_inpaint(masked, region, method)
    assert tv < baselines.total_variation(other)[0]
    assert np.abs(out - clean)[region].mean() < np.abs(other - clean)[region].mean()
  assert np.abs(out - clean)[region].mean() < 0.05
  # An affine image is a TV minimiser too: restored from a black hole.
  gradient = _gradient_image()
  black = np.where(region[..., None], 0.0, gradient).astype(np.float32)
  np.testing.assert_allclose(baselines.tv_inpaint(black, region), gradient, atol=1e-3)


def test_divergence_is_minus_the_adjoint_of_the_gradient():
  rng = np.random.default_rng(1)
  u = rng.normal(size=(2, 7, 9, 3)).astype(np.float32)
  px, py = (rng.normal(size=u.shape).astype(np.float32) for _ in range(2))
  gx, gy = metrics.forward_differences(u)
  lhs = np.sum(np.asarray(gx) * px + np.asarray(gy) * py)
  rhs = -np.sum(u * np.asarray(baselines._divergence(px, py)))
  assert lhs == pytest.approx(rhs, rel=1e-4)


def test_mean_face_fill_and_run_all():
  rng = np.random.default_rng(2)
  masked = rng.uniform(size=(2, 16, 16, 3)).astype(np.float32)
  alpha = np.zeros((2, 16, 16, 1), np.float32)
  alpha[:, 6:10, 6:10] = 1.0
  mean_face = np.full((16, 16, 3), 0.4, np.float32)
  outputs = baselines.run_all(masked, alpha, mean_face)
  assert list(outputs) == list(baselines.NAMES)
  region = baselines.fill_region(alpha)
  assert np.all(outputs["mean_face"][region] == 0.4)
  for name, out in outputs.items():
    assert out.shape == masked.shape and out.dtype == np.float32, name
    np.testing.assert_array_equal(out[~region], masked[~region], err_msg=name)
