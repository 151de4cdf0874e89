"""Tests for the procedural face generator (tiny sizes, few faces: fast on CPU)."""

import numpy as np
import pytest

from maskae import faces

L = len(faces.LANDMARK_NAMES)
NAME = {name: i for i, name in enumerate(faces.LANDMARK_NAMES)}


@pytest.fixture(scope="module")
def batch():
  return faces.generate_faces(12, 48, seed=3)


def test_landmark_names():
  assert faces.LANDMARK_NAMES == ("left_eye", "right_eye", "nose_bridge", "nose_tip", "mouth", "chin",
                                  "left_face", "right_face")


def test_shapes_and_dtypes(batch):
  images, landmarks = batch
  assert images.shape == (12, 48, 48, 3) and images.dtype == np.uint8
  assert landmarks.shape == (12, L, 2) and landmarks.dtype == np.float32
  image, marks = faces.generate_face(np.random.default_rng(0), 40)
  assert image.shape == (40, 40, 3) and image.dtype == np.uint8
  assert marks.shape == (L, 2) and marks.dtype == np.float32


def test_deterministic_and_independent_of_num_and_start():
  images, landmarks = faces.generate_faces(5, 32, seed=1)
  again, again_marks = faces.generate_faces(5, 32, seed=1)
  np.testing.assert_array_equal(images, again)
  np.testing.assert_array_equal(landmarks, again_marks)
  window, window_marks = faces.generate_faces(3, 32, seed=1, start=2)
  np.testing.assert_array_equal(window, images[2:5])
  np.testing.assert_array_equal(window_marks, landmarks[2:5])
  single, single_marks = faces.generate_face(np.random.default_rng([1, 4]), 32)
  np.testing.assert_array_equal(single, images[4])
  np.testing.assert_array_equal(single_marks, landmarks[4])


def test_different_seeds_and_indices_differ():
  a, marks_a = faces.generate_faces(2, 32, seed=1)
  b, marks_b = faces.generate_faces(2, 32, seed=2)
  assert not np.array_equal(a[0], b[0]) and not np.array_equal(marks_a, marks_b)
  assert not np.array_equal(a[0], a[1])


def test_landmarks_in_range_and_ordered(batch):
  _, marks = batch
  assert np.all(marks >= 0) and np.all(marks <= 1)
  y = marks[..., 1]
  eyes_y = np.maximum(y[:, NAME["left_eye"]], y[:, NAME["right_eye"]])
  assert np.all(eyes_y < y[:, NAME["nose_bridge"]])
  assert np.all(y[:, NAME["nose_bridge"]] < y[:, NAME["nose_tip"]])
  assert np.all(y[:, NAME["nose_tip"]] < y[:, NAME["mouth"]])
  assert np.all(y[:, NAME["mouth"]] < y[:, NAME["chin"]])
  x = marks[..., 0]
  assert np.all(x[:, NAME["left_face"]] < x[:, NAME["left_eye"]])
  assert np.all(x[:, NAME["left_eye"]] < x[:, NAME["nose_tip"]])
  assert np.all(x[:, NAME["nose_tip"]] < x[:, NAME["right_eye"]])
  assert np.all(x[:, NAME["right_eye"]] < x[:, NAME["right_face"]])


def test_mean_layout_matches_aligned_crops():
  _, marks = faces.generate_faces(24, 32, seed=0)
  mean_y = marks.mean(0)[:, 1]
  for name, expected in (("left_eye", 0.29), ("nose_tip", 0.50), ("mouth", 0.71), ("chin", 0.93)):
    assert abs(mean_y[NAME[name]] - expected) < 0.02, name
  assert np.all(np.abs(marks.mean(0)[[NAME["nose_tip"], NAME["mouth"], NAME["chin"]], 0] - 0.5) < 0.02)


def _cheek_colour(image, marks):
  """Mean colour of a small patch between the eye line and the nose tip, beside the nose."""
  size = image.shape[0]
  x = (0.6 * marks[NAME["left_eye"], 0] + 0.4 * marks[NAME["left_face"], 0]) * size
  y = marks[NAME["nose_tip"], 1] * size
  return image[int(y) - 2:int(y) + 2, int(x) - 2:int(x) + 2].reshape(-1, 3).mean(0)


def test_faces_are_structured_not_noise_or_flat(batch):
  images, marks = batch
  differs = 0
  for image, face_marks in zip(images, marks):
    corner = np.concatenate([image[:4, :4], image[:4, -4:]]).reshape(-1, 3).mean(0)
    differs += np.abs(_cheek_colour(image, face_marks) - corner).sum() > 30
    # Smooth, not noise: neighbouring pixels are much closer than random pixel pairs.
    img = image.astype(np.float32)
    neighbour = np.abs(np.diff(img, axis=1)).mean()
    shuffled = np.abs(img.reshape(-1, 3) - np.random.default_rng(0).permutation(img.reshape(-1, 3))).mean()
    assert neighbour < 0.35 * shuffled
    assert img.std() > 10  # not flat
  assert differs >= 0.75 * len(images)


def test_lower_face_has_structure(batch):
  images, marks = batch
  for image, face_marks in zip(images, marks):
    size = image.shape[0]
    mouth_x, mouth_y = (face_marks[NAME["mouth"]] * size).astype(int)
    mouth = image[mouth_y - 3:mouth_y + 4, mouth_x - 6:mouth_x + 7].astype(np.float32)
    assert mouth.std(axis=(0, 1)).max() > 5  # lips / mouth line, not bare skin


def test_skin_tones_vary(batch):
  images, marks = batch
  cheeks = np.array([_cheek_colour(image, m) for image, m in zip(images, marks)])
  brightness = cheeks.mean(1)
  assert brightness.max() - brightness.min() > 60


@pytest.mark.parametrize("size", [32, 64])
def test_sizes(size):
  images, landmarks = faces.generate_faces(2, size, seed=0)
  assert images.shape == (2, size, size, 3)
  assert landmarks.shape == (2, L, 2)
