"""`python -m maskae.unmask` end to end (good, corrupt, existing, missing), and its parts."""

import hashlib
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest
from PIL import Image

from maskae import faces, inference, unmask, workdir

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_unmask(*args):
  return subprocess.run([sys.executable, "-m", "maskae.unmask", *map(str, args)],
                        cwd=REPO, capture_output=True, text=True, timeout=600)


def _digest(folder) -> dict:
  return {str(p): hashlib.sha256(p.read_bytes()).hexdigest()
          for p in sorted(folder.rglob("*")) if p.is_file()}


def _error_lines(stderr: str) -> list[str]:
  return [line for line in stderr.splitlines() if line.startswith("maskae.unmask: error:")]


def _save(path, image):
  path.parent.mkdir(parents=True, exist_ok=True)
  Image.fromarray(image).save(path)


def test_unmask_end_to_end(trained_workdir, tmp_path):
  rng = np.random.default_rng(0)
  inputs = tmp_path / "in"
  aligned = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
  _save(inputs / "face.png", aligned)
  _save(inputs / "sub" / "wide.jpg", rng.integers(0, 256, (40, 50, 3), dtype=np.uint8))
  (inputs / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
  (inputs / "notes.txt").write_text("not an image, and not picked from a folder")
  single = tmp_path / "single.png"
  _save(single, rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
  before = _digest(tmp_path)
  out = tmp_path / "out"

  first = run_unmask("--workdir", trained_workdir, inputs, single, "--output", out,
                     "--side_by_side")
  assert first.returncode == 1, first.stderr[-3000:]
  errors = _error_lines(first.stderr)
  assert len(errors) == 1 and "corrupt.jpg: not a readable image" in errors[0]
  written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
  assert written == ["face_side_by_side.png", "face_unmasked.png", "single_side_by_side.png",
                     "single_unmasked.png", "sub/wide_side_by_side.png", "sub/wide_unmasked.png"]
  assert _digest(tmp_path / "in") == {k: v for k, v in before.items() if "/in/" in k}
  with Image.open(out / "sub" / "wide_unmasked.png") as im:
    assert im.size == (50, 40)
  with Image.open(out / "sub" / "wide_side_by_side.png") as im:
    assert im.size == (100, 40)
  # An aligned crop at the model's size comes back as exactly the model's output.
  run_dir = workdir.Workdir(str(trained_workdir))
  trained = inference.restore(run_dir, run_dir.trained_config())
  expected = trained.predict(aligned[None].astype(np.float32) / 255.0)[0] * 255.0
  result = np.asarray(Image.open(out / "face_unmasked.png"), np.float32)
  assert np.abs(result - expected).max() <= 1.0
  assert "3 image(s) unmasked" in first.stdout and "1 failed" in first.stdout

  outputs = _digest(out)
  again = run_unmask("--workdir", trained_workdir, inputs, single, "--output", out)
  assert again.returncode == 1
  refused = [e for e in _error_lines(again.stderr) if "exists (pass --overwrite" in e]
  assert len(refused) == 3
  assert _digest(out) == outputs

  forced = run_unmask("--workdir", trained_workdir, single, "--output", out, "--overwrite")
  assert forced.returncode == 0, forced.stderr[-3000:]
  assert _error_lines(forced.stderr) == []
  assert _digest(tmp_path / "in") == {k: v for k, v in before.items() if "/in/" in k}


def test_unmask_missing_or_incompatible_checkpoint(trained_workdir, tmp_path):
  image = tmp_path / "face.png"
  _save(image, np.zeros((32, 32, 3), np.uint8))
  missing = run_unmask("--workdir", tmp_path / "nothing", image, "--output", tmp_path / "out")
  assert missing.returncode != 0 and "Traceback" not in missing.stderr
  assert _error_lines(missing.stderr)[-1].endswith(
      "(train one with python -m maskae.main --workdir ...)")
  assert not (tmp_path / "out").exists()

  other = tmp_path / "other_model"
  shutil.copytree(trained_workdir, other)
  config = workdir.Workdir(str(other)).trained_config()
  config.model.features = (16, 32)
  workdir.Workdir(str(other)).record_config(config)
  mismatch = run_unmask("--workdir", other, image, "--output", tmp_path / "out")
  assert mismatch.returncode != 0 and "Traceback" not in mismatch.stderr
  assert "does not fit the model of the config: parameter params" in mismatch.stderr
  assert not (tmp_path / "out").exists()


def test_unmask_imports_without_tensorflow():
  code = ("import sys, maskae.unmask, maskae.inference, maskae.baselines; "
          "assert 'tensorflow' not in sys.modules, 'tensorflow imported'")
  result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
  assert result.returncode == 0, result.stderr[-2000:]


def test_unmask_detect_faces_aligns_each_face_and_blends_it_back(trained_workdir, tmp_path):
  images, _ = faces.generate_faces(2, 160, seed=0, start=1_000_000)
  photo = np.full((340, 520, 3), 90, np.uint8)
  photo[20:180, 40:200] = images[0]
  photo[200:320, 360:480] = cv2.resize(images[1], (120, 120), interpolation=cv2.INTER_AREA)
  _save(tmp_path / "photo.png", photo)
  _save(tmp_path / "blank.png", np.full((120, 160, 3), 90, np.uint8))
  out = tmp_path / "out"
  result = run_unmask("--workdir", trained_workdir, tmp_path / "photo.png",
                      tmp_path / "blank.png", "--output", out, "--detect_faces")
  assert result.returncode == 1
  errors = _error_lines(result.stderr)
  assert len(errors) == 1 and "blank.png: no face found" in errors[0]
  assert "photo.png -> " in result.stdout and "(2 face(s), 520x340)" in result.stdout
  unmasked = np.asarray(Image.open(out / "photo_unmasked.png"))
  assert unmasked.shape == photo.shape
  np.testing.assert_array_equal(unmasked[:, 250:330], photo[:, 250:330])  # between the faces
  np.testing.assert_array_equal(unmasked[190:, :300], photo[190:, :300])
  for y, x in ((100, 120), (265, 420)):  # each face's centre went through the model
    assert np.abs(unmasked[y - 10:y + 10, x - 10:x + 10].astype(int)
                  - photo[y - 10:y + 10, x - 10:x + 10]).mean() > 2
  assert not (out / "blank_unmasked.png").exists()
  result = run_unmask("--workdir", trained_workdir, tmp_path / "photo.png", "--output",
                      tmp_path / "one", "--detect_faces", "--max_faces", "1")
  assert result.returncode == 0 and "(1 face(s), 520x340)" in result.stdout, result.stderr[-2000:]
  one = np.asarray(Image.open(tmp_path / "one" / "photo_unmasked.png"))
  np.testing.assert_array_equal(one[200:320, 360:480], photo[200:320, 360:480])  # the smaller


def test_read_photo_applies_exif_orientation_and_flattens_transparency(tmp_path):
  image = Image.fromarray(np.zeros((20, 30, 3), np.uint8))
  exif = image.getexif()
  exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
  image.save(tmp_path / "rotated.jpg", exif=exif)
  assert unmask.read_photo(str(tmp_path / "rotated.jpg")).shape == (30, 20, 3)
  rgba = np.zeros((4, 4, 4), np.uint8)
  rgba[..., 0] = 200
  rgba[:2, :, 3] = 255  # top half opaque red, bottom half transparent
  Image.fromarray(rgba, "RGBA").save(tmp_path / "alpha.png")
  flat = unmask.read_photo(str(tmp_path / "alpha.png"))
  assert flat[0, 0].tolist() == [200, 0, 0] and flat[3, 3].tolist() == [255, 255, 255]
  (tmp_path / "empty.png").write_bytes(b"")
  with pytest.raises(unmask.InputError, match="empty.png: not a readable image"):
    unmask.read_photo(str(tmp_path / "empty.png"))


def test_find_inputs_walks_folders_and_reports_missing(tmp_path):
  for name in ("b.png", "a.JPG", "sub/c.webp", "skip.txt"):
    (tmp_path / "in" / name).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / "in" / name).write_bytes(b"x")
  found, errors = unmask.find_inputs([str(tmp_path / "in"), str(tmp_path / "in" / "skip.txt"),
                                      str(tmp_path / "gone.png")])
  assert [name for _, name in found] == ["a", "b", os.path.join("sub", "c"), "skip"]
  assert errors == [f"{tmp_path / 'gone.png'}: no such file or folder"]


def test_check_outputs_refuses_inputs_collisions_and_existing(tmp_path):
  existing = tmp_path / "x_unmasked.png"
  existing.write_bytes(b"x")
  inputs = {os.path.realpath(existing)}
  with pytest.raises(unmask.InputError, match="is an input"):
    unmask.check_outputs("x", [str(existing)], inputs, set(), overwrite=True)
  with pytest.raises(unmask.InputError, match="exists"):
    unmask.check_outputs("x", [str(existing)], set(), set(), overwrite=False)
  unmask.check_outputs("x", [str(existing)], set(), set(), overwrite=True)
  with pytest.raises(unmask.InputError, match="another input"):
    unmask.check_outputs("y", ["o.png"], set(), {"o.png"}, overwrite=True)


def test_paste_back_warps_the_crop_into_place_with_feathered_edges():
  weights = unmask.feather_weights(40)
  assert weights[20, 20] == 1.0 and 0 < weights[0, 0] < 0.5
  assert np.all(np.diff(weights[:20, 20]) >= 0)  # ramps up towards the centre
  photo = np.zeros((50, 60, 3), np.uint8)
  output = np.full((40, 40, 3), 200 / 255, np.float32)
  shift = np.array([[1.0, 0, 10], [0, 1.0, -20]])  # the crop's corner at (-10, 20) in the photo
  blended = unmask.paste_back(photo, output, shift)
  assert blended[40, 10].tolist() == [200, 200, 200]
  assert blended[:20].max() == 0 and blended[:, 31:].max() == 0
  assert 0 < blended[20, 10, 0] < blended[21, 10, 0] < 200  # feathered top edge
  assert blended[20 + int(np.ceil(unmask.FEATHER * 40)), 10, 0] == 200
  half = np.array([[0.5, 0, 0], [0, 0.5, 0]])  # a 2x larger face: the crop covers 80x80 px
  blended = unmask.paste_back(np.zeros((100, 100, 3), np.uint8), output, half)
  assert blended[40, 40].tolist() == [200, 200, 200] and blended[85:].max() == 0


def test_sixteen_bit_photos_unmask_like_their_eight_bit_copies(trained_workdir, tmp_path):
  """unmask read a 16-bit PNG as nearly white; it now shares the folder source's decoder."""
  grey = (np.arange(40 * 40).reshape(40, 40) * 40).astype(np.uint16)
  Image.fromarray(grey).save(tmp_path / "grey16.png")
  eight = np.stack([(grey >> 8).astype(np.uint8)] * 3, -1)
  Image.fromarray(eight).save(tmp_path / "grey8.png")
  decoded = [unmask.read_photo(str(tmp_path / f"{n}.png")) for n in ("grey16", "grey8")]
  np.testing.assert_array_equal(decoded[0], eight)
  np.testing.assert_array_equal(decoded[1], eight)
  run_dir = workdir.Workdir(str(trained_workdir))
  trained = inference.restore(run_dir, run_dir.trained_config())
  outputs = [unmask.unmask_aligned(photo, trained.predict, 32) for photo in decoded]
  np.testing.assert_array_equal(outputs[0], outputs[1])
