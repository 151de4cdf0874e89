"""`python -m maskae.preview`: the PNG grid of sample pairs, end to end through its entry point."""

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from configs import default
from maskae import faces, preview
from third_party.face_folder import face_folder_dataset_builder as face_folder

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZE = 32
OVERRIDES = {"data.image_size": SIZE, "data.num_val": 5, "data.mask.styles": ("surgical",)}


def run_preview(*args):
  flags = [f"--config.{k}={v!r}" if isinstance(v, tuple) else f"--config.{k}={v}"
           for k, v in OVERRIDES.items()]
  return subprocess.run(
      [sys.executable, "-m", "maskae.preview", "--config=configs/default.py", *flags, *args],
      cwd=REPO, capture_output=True, text=True, timeout=300)


def config_with_overrides(**extra):
  config = default.get_config()
  for key, value in {**OVERRIDES, **extra}.items():
    *parents, name = key.split(".")
    node = config
    for parent in parents:
      node = node[parent]
    node[name] = value
  return config


def read_png(path) -> np.ndarray:
  with Image.open(path) as im:
    return np.asarray(im)


@pytest.fixture(scope="module")
def tfds_dir(tmp_path_factory):
  """A face_folder TFDS dataset of 6 generated faces (all in train), built in-process."""
  manual_dir = tmp_path_factory.mktemp("faces")
  images, _ = faces.generate_faces(6, 48, seed=3)
  for i, image in enumerate(images):
    Image.fromarray(image).save(manual_dir / f"{i}.png")
  data_dir = tmp_path_factory.mktemp("tfds")
  face_folder.build(str(manual_dir), str(data_dir))
  return data_dir


def test_preview_writes_the_validation_pairs_and_keeps_existing_files(tmp_path):
  output = tmp_path / "out" / "grid.png"
  result = run_preview(f"--output={output}", "--num=3")
  assert result.returncode == 0, result.stderr[-3000:]
  assert f"wrote {output}: 3 val pairs, columns masked | clean | alpha" in result.stdout
  # The same pixels as computed here: validation pairs do not depend on the process.
  pairs = preview.sample_pairs(config_with_overrides(), "val", 3)
  assert {name: value.shape for name, value in pairs.items()} == {
      "masked": (3, SIZE, SIZE, 3), "clean": (3, SIZE, SIZE, 3), "alpha": (3, SIZE, SIZE, 1)}
  np.testing.assert_array_equal(read_png(output), preview.pair_grid(pairs))

  before = output.read_bytes()
  refused = run_preview(f"--output={output}", "--num=2")
  assert refused.returncode == 1
  assert refused.stderr.strip().splitlines()[-1] == (
      f"maskae.preview: {output} exists; pass --overwrite to replace it")
  assert output.read_bytes() == before


@pytest.mark.slow
def test_preview_overwrites_with_train_pairs_of_a_tfds_source(tmp_path, tfds_dir):
  """--overwrite replaces the file; the TFDS dataset is found by name in its data_dir without
  importing its builder; train rows are the first pairs of a run from step 0."""
  output = tmp_path / "grid.png"
  Image.new("RGB", (4, 4)).save(output)
  tfds_flags = ["--config.data.source=tfds", "--config.data.tfds_name=face_folder",
                f"--config.data.tfds_data_dir={tfds_dir}"]
  result = run_preview(f"--output={output}", "--split=train", "--num=2", "--overwrite",
                       *tfds_flags)
  assert result.returncode == 0, result.stderr[-3000:]
  config = config_with_overrides(**{"data.source": "tfds", "data.tfds_name": "face_folder",
                                    "data.tfds_data_dir": str(tfds_dir)})
  pairs = preview.sample_pairs(config, "train", 2)
  assert pairs["clean"].shape == (2, SIZE, SIZE, 3)
  np.testing.assert_array_equal(read_png(output), preview.pair_grid(pairs))


def test_preview_wants_a_png_output(tmp_path):
  result = run_preview(f"--output={tmp_path / 'grid.jpg'}")
  assert result.returncode == 1
  assert "--output must be a .png file" in result.stderr
  assert not os.listdir(tmp_path)
