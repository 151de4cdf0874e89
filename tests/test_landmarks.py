"""maskae.landmarks: faces and named points found in photos, alignment, and the detect / align
options of the real face sources (folder and TFDS)."""

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from configs import default
from maskae import config_checks, config_files, errors, face_sources, faces, landmarks, masks, pairs
from third_party.face_folder import face_folder_dataset_builder as face_folder

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIDE = 192


@pytest.fixture(scope="module")
def finder():
  return landmarks.FaceFinder()


@pytest.fixture(scope="module")
def procedural():
  """Three procedural faces (uint8 [3, SIDE, SIDE, 3]) and their exact landmarks in [0, 1]."""
  return faces.generate_faces(3, SIDE, seed=0, start=1_000_000)


def masked(images, marks):
  config = default.get_config()
  config.data.mask.styles = ("surgical",)  # one style: a short compile
  example = np.stack([np.zeros(len(images)), np.arange(len(images))], -1).astype(np.uint32)
  pair = pairs.render_on_host({"image": images, "landmarks": marks, "example": example}, config,
                              "val")
  return np.round(pair["masked"] * 255.0).astype(np.uint8)


def eye_error(points, exact) -> float:
  return float(np.linalg.norm(points[:2] - exact[:2], axis=1).max()
               / np.linalg.norm(exact[1] - exact[0]))


def test_named_points_of_procedural_faces_lie_near_their_exact_landmarks(finder, procedural):
  images, marks = procedural
  for image, exact in zip(images, marks * SIDE):
    [face] = finder.find(image)
    points = face.points
    assert points.shape == (len(landmarks.NAMES), 2) and landmarks.NAMES[:8] == masks.LANDMARK_NAMES
    assert eye_error(points, exact) < 0.1
    named = dict(zip(landmarks.NAMES, points))
    assert named["left_eye"][0] < named["nose_tip"][0] < named["right_eye"][0]
    assert (named["left_eye"][1] < named["nose_bridge"][1] < named["nose_tip"][1]
            < named["mouth"][1] < named["chin"][1])
    assert named["left_face"][0] < named["left_jaw"][0] < named["mouth"][0]
    assert named["mouth"][0] < named["right_jaw"][0] < named["right_face"][0]
    renderer = landmarks.mask_landmarks(points, image.shape[:2])
    assert renderer.shape == (8, 2) and np.abs(renderer - exact / SIDE).max() < 0.12


def test_masked_faces_in_a_photo_are_all_found_largest_first(finder, procedural):
  images, marks = procedural
  covered = masked(images, marks)
  photo = np.full((420, 640, 3), 128, np.uint8)
  photo[20:20 + SIDE, 30:30 + SIDE] = covered[0]
  small = cv2.resize(covered[1], (120, 120), interpolation=cv2.INTER_AREA)
  photo[260:380, 450:570] = small
  found = finder.find(photo)
  assert len(found) == 2 and found[0].inter_eye > found[1].inter_eye
  assert eye_error(found[0].points - [30, 20], marks[0] * SIDE) < 0.1
  assert eye_error(found[1].points - [450, 260], marks[1] * 120) < 0.1
  assert len(finder.find(photo, max_faces=1)) == 1
  assert finder.find(np.full((300, 200, 3), 128, np.uint8)) == []


def test_alignment_levels_and_frames_a_turned_face(finder, procedural):
  images, _ = procedural
  turn = cv2.getRotationMatrix2D((SIDE / 2, SIDE / 2), 20, 0.7)
  photo = cv2.warpAffine(images[2], turn, (SIDE, SIDE), borderMode=cv2.BORDER_REPLICATE)
  [face] = finder.find(photo)
  eyes = landmarks.FRAMING_EYES["utkface"]
  matrix = landmarks.alignment(face.points, 128, eyes)
  np.testing.assert_allclose(landmarks.transform_points(matrix, face.points[:2]), eyes * 128,
                             atol=1e-3)
  aligned = landmarks.warp(photo, matrix, 128)
  [again] = finder.find(aligned)
  assert np.abs(again.points[:2] - eyes * 128).max() < 0.08 * 128 * 0.4  # level, in place
  shrunk = landmarks.alignment(face.points * 8, 64, eyes)  # a face 8x larger: area-downscaled
  assert landmarks.warp(cv2.resize(photo, None, fx=8, fy=8), shrunk, 64).shape == (64, 64, 3)


def test_missing_weights_are_one_clear_error(monkeypatch, tmp_path):
  monkeypatch.setattr(landmarks, "WEIGHTS_DIR", str(tmp_path))
  with pytest.raises(RuntimeError, match="face detection weights missing: .*tflite"):
    landmarks.FaceFinder()


def test_framing_is_known_per_template_and_for_procedural_faces():
  data = default.get_config().data
  np.testing.assert_array_equal(landmarks.framing_eyes(data), landmarks.FRAMING_EYES["synthetic"])
  data.source = "folder"
  np.testing.assert_array_equal(landmarks.framing_eyes(data), landmarks.FRAMING_EYES["utkface"])


# --- the folder and TFDS sources with data.landmarks=detect ------------------------------------


def write_photos(folder, procedural):
  """Procedural faces placed off-centre in larger photos, a blank photo and a broken file."""
  images, _ = procedural
  folder.mkdir(parents=True, exist_ok=True)
  for k, image in enumerate(images):
    photo = np.full((300, 260, 3), 100, np.uint8)
    y, x = 30 + 20 * (k % 3), 10 + 25 * (k % 3)
    photo[y:y + SIDE, x:x + SIDE] = image
    Image.fromarray(photo).save(folder / f"face{k}.png")
  Image.fromarray(np.full((120, 120, 3), 100, np.uint8)).save(folder / "blank.png")
  (folder / "broken.png").write_bytes(b"not a png")


def detect_config(folder, cache, **fields):
  data = default.get_config().data
  data.update({"source": "folder", "folder": str(folder), "num_train": 5, "num_val": 0,
               "num_test": 0, "image_size": 64, "landmarks": "detect",
               "landmark_cache": str(cache), **fields})
  return data


def test_folder_source_finds_each_faces_landmarks_skips_and_caches(tmp_path, procedural, caplog):
  write_photos(tmp_path / "photos", procedural)
  data = detect_config(tmp_path / "photos", tmp_path / "cache")
  images, marks, fingerprint = face_sources.load(data, "train", seed=0)
  assert images.shape == (3, 64, 64, 3) and marks.shape == (3, 8, 2)
  assert fingerprint.endswith(f":n=3:skipped=1:landmarks={landmarks.VERSION}:no_face=1")
  assert "no face found" in caplog.text and "blank.png" in caplog.text
  template = face_sources.load(detect_config(tmp_path / "photos", "", landmarks="template"),
                               "train", seed=0)
  assert not np.allclose(marks, template[1][:3], atol=0.05)  # the faces are off-centre
  # The landmarks come back from the cache (one file, not found again): shift it to prove it.
  [cached] = os.listdir(tmp_path / "cache")
  points = np.load(tmp_path / "cache" / cached)
  np.save(tmp_path / "cache" / cached, points + 0.01)
  _, again, same = face_sources.load(data, "train", seed=0)
  assert same == fingerprint
  np.testing.assert_allclose(again, marks + 0.01, atol=1e-5)


def test_align_on_decode_puts_every_face_in_the_template_framing(tmp_path, procedural, finder):
  write_photos(tmp_path / "photos", procedural)
  data = detect_config(tmp_path / "photos", "", align_faces=True, image_size=128)
  images, marks, fingerprint = face_sources.load(data, "train", seed=0)
  assert fingerprint.endswith(":no_face=1:aligned=utkface") and images.shape[0] == 3
  eyes = landmarks.FRAMING_EYES["utkface"]
  np.testing.assert_allclose(marks[:, :2], np.broadcast_to(eyes, (3, 2, 2)), atol=1e-4)
  for image in images:  # found again where they were put
    [face] = finder.find(image)
    assert np.abs(face.points[:2] / 128 - eyes).max() < 0.03


def test_detect_and_align_options_are_checked():
  config = default.get_config()
  config.data.landmarks = "detect"
  assert any("data.landmarks='detect': finds real photos'" in p
             for p in config_checks.problems(config))
  config.data.update(source="folder", folder="/", feed="stream")
  assert any("needs the device or host feed" in p for p in config_checks.problems(config))
  config.data.update(landmarks="template", feed="auto", align_faces=True)
  assert any("data.align_faces=True: needs data.landmarks='detect'" in p
             for p in config_checks.problems(config))
  config.data.landmarks = "nope"
  assert config_checks.problems(config) == [
      "data.landmarks='nope': must be one of template, detect"]


def test_no_face_anywhere_is_one_error(tmp_path):
  (tmp_path / "photos").mkdir()
  for k in range(2):
    Image.fromarray(np.full((80, 80, 3), 60 * k, np.uint8)).save(tmp_path / "photos" / f"{k}.png")
  data = detect_config(tmp_path / "photos", "", num_train=2)
  with pytest.raises(errors.DataError, match="no face found in any of the 2 image"):
    face_sources.load(data, "train", seed=0)


@pytest.mark.slow
def test_tfds_source_finds_landmarks_and_aligns(tmp_path, procedural):
  manual = tmp_path / "manual"
  write_photos(manual / "images", procedural)
  names = ["blank.png", "face0.png", "face1.png", "face2.png"]
  (manual / "train.txt").write_text("\n".join(names) + "\n")
  (manual / "val.txt").write_text("face0.png\n")
  face_folder.Builder(data_dir=str(tmp_path / "tfds")).download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=str(manual)))
  data = detect_config("", "", source="tfds", tfds_name="face_folder",
                       tfds_data_dir=str(tmp_path / "tfds"))
  images, marks, fingerprint = face_sources.load(data, "train", seed=0)
  assert images.shape == (3, 64, 64, 3)
  assert fingerprint == (f"tfds:face_folder/1.0.0:split=train:n=3:skipped=0:landmarks="
                         f"{landmarks.VERSION}:no_face=1")
  data.align_faces = True
  images, marks, _ = face_sources.load(data, "train", seed=0)
  np.testing.assert_allclose(marks[:, :2], np.broadcast_to(landmarks.FRAMING_EYES["utkface"],
                                                           (3, 2, 2)), atol=1e-4)


@pytest.mark.slow
def test_main_trains_on_unaligned_photos_aligned_on_decode(tmp_path):
  images, _ = faces.generate_faces(8, SIDE, seed=0, start=0)
  write_photos(tmp_path / "photos", (images, None))
  workdir = tmp_path / "run"
  result = subprocess.run(
      [sys.executable, "-m", "maskae.main", "--config", "configs/default.py", "--workdir",
       str(workdir), "--config.data.source=folder", f"--config.data.folder={tmp_path / 'photos'}",
       "--config.data.landmarks=detect", "--config.data.align_faces=True",
       f"--config.data.landmark_cache={tmp_path / 'cache'}", "--config.data.image_size=32",
       "--config.data.num_train=6", "--config.data.num_val=2", "--config.data.num_test=2",
       "--config.data.batch_size=4", "--config.train.steps=2",
       "--config.train.num_grid_examples=2"],
      cwd=REPO, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  with open(workdir / "run_record.json") as f:
    record = json.load(f)
  train = next(v for k, v in config_files.flatten(record).items()
               if k.endswith("fingerprint") and "split=train" in str(v))
  assert f"landmarks={landmarks.VERSION}:no_face=1:aligned=utkface" in train
  assert len(os.listdir(tmp_path / "cache")) >= 2  # one per split loaded (train, val)
