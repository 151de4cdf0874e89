"""Metric values against hand-computed cases: whole image, masked region, Keras "accuracy"."""

import math

import numpy as np
import pytest
from skimage.metrics import structural_similarity

from maskae import metrics


def _metrics(pred, target, alpha):
  return {k: np.asarray(v) for k, v in metrics.image_metrics(
      np.asarray(pred, np.float32), np.asarray(target, np.float32),
      np.asarray(alpha, np.float32)).items()}


def test_errors_whole_image_and_masked_region():
  # 16x16 (SSIM needs >= 11 px): target 0.5 except a 4x4 block of 1.0; prediction all zeros.
  target = np.full((1, 16, 16, 3), 0.5)
  target[0, :4, :4] = 1.0
  pred = np.zeros_like(target)
  alpha = np.zeros((1, 16, 16, 1))
  alpha[0, :4, :4] = 1.0
  alpha[0, 8:, 8:] = 0.5  # exactly 0.5 is not masked (alpha > 0.5)
  m = _metrics(pred, target, alpha)
  assert m["mae"][0] == pytest.approx((240 * 0.5 + 16 * 1.0) / 256)
  assert m["mse"][0] == pytest.approx((240 * 0.25 + 16 * 1.0) / 256)
  assert m["psnr"][0] == pytest.approx(10 * math.log10(256 / 76), rel=1e-5)
  assert m["mae_masked"][0] == pytest.approx(1.0)
  assert m["mse_masked"][0] == pytest.approx(1.0)
  assert m["psnr_masked"][0] == pytest.approx(0.0, abs=1e-6)


def test_masked_region_ignores_unmasked_errors_and_empty_mask_is_finite():
  target = np.full((2, 16, 16, 3), 0.25)
  pred = target.copy()
  pred[:, 8:] = 0.75  # errors only in the bottom half
  alpha = np.zeros((2, 16, 16, 1))
  alpha[0, :8] = 1.0  # example 0: mask on the (error-free) top half
  m = _metrics(pred, target, alpha)
  assert m["mae"] == pytest.approx([0.25, 0.25])
  assert m["mae_masked"][0] == 0.0 and m["psnr_masked"][0] == 100.0  # perfect: capped
  assert m["mae_masked"][1] == 0.0 and np.isfinite(m["psnr_masked"][1])  # empty mask


def test_psnr_from_mse():
  assert float(metrics.psnr_from_mse(np.float32(0.01))) == pytest.approx(20.0)
  assert float(metrics.psnr_from_mse(np.float32(0.0))) == 100.0


def test_ssim_matches_skimage_and_masked_variant_sees_only_the_region():
  rng = np.random.default_rng(0)
  target = rng.uniform(size=(1, 32, 32, 3)).astype(np.float32)
  pred = target.copy()
  pred[:, :, 16:] = rng.uniform(size=(1, 32, 16, 3))  # right half wrong
  alpha = np.zeros((1, 32, 32, 1))
  alpha[:, :, :6] = 1.0  # masked: the left 6 columns, whose 11x11 windows see only exact pixels
  m = _metrics(pred, target, alpha)
  expected = structural_similarity(pred[0], target[0], data_range=1.0, channel_axis=-1,
                                   gaussian_weights=True, sigma=1.5,
                                   use_sample_covariance=False)
  assert m["ssim"][0] == pytest.approx(expected, abs=1e-4)
  assert m["ssim"][0] < 0.7
  assert m["ssim_masked"][0] == pytest.approx(1.0, abs=1e-4)
  assert _metrics(target, target, alpha)["ssim"][0] == pytest.approx(1.0, abs=1e-5)


def test_keras_accuracy_is_argmax_channel_agreement():
  # Pixel 1: arg-max channel 0 in both; pixel 2: target's is channel 1, prediction's channel 0;
  # pixel 3: far off in value but the same arg-max (channel 2); pixel 4: channel 1 in both.
  target = np.array([[[[0.9, 0.1, 0.2], [0.1, 0.8, 0.3]],
                      [[0.0, 0.1, 0.2], [0.3, 0.4, 0.35]]]])
  pred = np.array([[[[0.6, 0.5, 0.0], [0.9, 0.1, 0.1]],
                    [[0.5, 0.6, 0.9], [0.0, 1.0, 0.0]]]])
  acc = metrics.keras_accuracy(np.asarray(pred, np.float32), np.asarray(target, np.float32))
  assert float(acc[0]) == pytest.approx(0.75)
  tiled = [np.tile(x, (1, 8, 8, 1)) for x in (pred, target)]  # 16x16, same proportions
  assert _metrics(*tiled, np.zeros((1, 16, 16, 1)))["keras_accuracy"][0] == pytest.approx(0.75)


def test_sharpness_is_one_for_the_clean_face_and_under_one_for_a_blur():
  rng = np.random.default_rng(0)
  target = rng.uniform(size=(1, 32, 32, 3)).astype(np.float32)
  blurred = (target + np.roll(target, 1, 1) + np.roll(target, 1, 2) + np.roll(target, (1, 1),
                                                                               (1, 2))) / 4
  alpha = np.zeros((1, 32, 32, 1), np.float32)
  alpha[:, 8:24, 8:24] = 1.0
  assert _metrics(target, target, alpha)["sharpness_masked"][0] == pytest.approx(1.0)
  assert _metrics(blurred, target, alpha)["sharpness_masked"][0] < 0.7
  flat = np.full_like(target, 0.5)
  assert _metrics(flat, target, alpha)["sharpness_masked"][0] < 1e-3
  # Only the region counts: sharp noise outside it changes nothing.
  outside = blurred.copy()
  outside[:, :4] = rng.uniform(size=(1, 4, 32, 3))
  assert (_metrics(outside, target, alpha)["sharpness_masked"][0]
          == pytest.approx(_metrics(blurred, target, alpha)["sharpness_masked"][0]))
  assert _metrics(target, target, np.zeros_like(alpha))["sharpness_masked"][0] == 1.0
