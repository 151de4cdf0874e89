"""Face sources: folder decoding of every format / mode, splits, bad input, the TFDS source and the
third_party face_folder builder, and the real UTKFace set when it is present."""

import hashlib
import io
import logging
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image

from configs import default
from maskae import errors, face_sources, masks
from third_party.face_folder import face_folder_dataset_builder as face_folder

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
UTKFACE = os.path.join(REPO, "..", "shared", "data", "utkface")
SIZE = 32


def data_config(**fields):
  data = default.get_config().data
  data.image_size = SIZE
  data.update(fields)
  return data


def folder_hashes(folder) -> dict:
  """sha256 of every file under `folder` (names included), to prove nothing was written."""
  hashes = {}
  for root, _, files in os.walk(folder):
    for name in files:
      path = os.path.join(root, name)
      with open(path, "rb") as f:
        hashes[os.path.relpath(path, folder)] = hashlib.sha256(f.read()).hexdigest()
  return hashes


def solid(colour, size=(40, 40), mode="RGB"):
  return Image.new(mode, size, colour)


def exif_rotated_jpeg(path):
  """A JPEG stored top-red / bottom-blue whose EXIF says "rotate 90 degrees clockwise" (6), so it
  displays left-blue / right-red."""
  pixels = np.zeros((40, 40, 3), np.uint8)
  pixels[:20] = (255, 0, 0)
  pixels[20:] = (0, 0, 255)
  image = Image.fromarray(pixels)
  exif = image.getexif()
  exif[0x0112] = 6
  image.save(path, quality=95, exif=exif.tobytes())


def write_formats(folder) -> dict:
  """One small image per format / mode; returns name -> expected RGB colour after decoding."""
  os.makedirs(folder, exist_ok=True)
  expected = {}

  def save(name, image, colour, **kwargs):
    image.save(os.path.join(folder, name), **kwargs)
    expected[name] = colour

  save("rgb.jpg", solid((200, 100, 50)), (200, 100, 50), quality=95)
  save("rgb.png", solid((10, 200, 30)), (10, 200, 30))
  save("rgb.webp", solid((30, 60, 220)), (30, 60, 220), lossless=True)
  save("rgb.bmp", solid((120, 130, 140)), (120, 130, 140))
  save("grey.png", solid(90, mode="L"), (90, 90, 90))
  save("grey.jpg", solid(170, mode="L"), (170, 170, 170), quality=95)
  save("cmyk.jpg", solid((0, 255, 255, 0), mode="CMYK"), (255, 0, 0), quality=95)
  save("palette.png", solid((250, 20, 120)).convert("P", palette=Image.Palette.ADAPTIVE),
       (250, 20, 120))
  save("transparent.png", solid((0, 0, 0, 0), mode="RGBA"), (255, 255, 255))
  save("opaque_rgba.png", solid((40, 80, 160, 255), mode="RGBA"), (40, 80, 160))
  grey16 = Image.fromarray(np.full((40, 40), 0x6400, np.uint16))  # 100 in 8 bits
  save("grey16.png", grey16, (100, 100, 100))
  return expected


def test_read_rgb_decodes_every_format_and_mode(tmp_path):
  expected = write_formats(tmp_path)
  for name, colour in expected.items():
    image = face_sources.read_rgb(str(tmp_path / name), SIZE)
    assert image.shape == (SIZE, SIZE, 3) and image.dtype == np.uint8, name
    np.testing.assert_allclose(image.reshape(-1, 3).mean(0), colour, atol=4, err_msg=name)


def test_read_rgb_applies_exif_orientation(tmp_path):
  exif_rotated_jpeg(tmp_path / "rotated.jpg")
  image = face_sources.read_rgb(str(tmp_path / "rotated.jpg"), SIZE).astype(float)
  left, right = image[:, :SIZE // 4].mean((0, 1)), image[:, -SIZE // 4:].mean((0, 1))
  assert left[2] > 200 and left[0] < 60, left  # blue on the left
  assert right[0] > 200 and right[2] < 60, right  # red on the right


def test_read_rgb_centre_crops_then_resizes(tmp_path):
  pixels = np.zeros((30, 90, 3), np.uint8)  # green | red | blue thirds; the centre square is red
  pixels[:, :30], pixels[:, 30:60], pixels[:, 60:] = (0, 255, 0), (255, 0, 0), (0, 0, 255)
  Image.fromarray(pixels).save(tmp_path / "wide.png")
  image = face_sources.read_rgb(str(tmp_path / "wide.png"), SIZE)
  # Red throughout, up to Lanczos ringing at the crop edges: no green or blue came in.
  np.testing.assert_allclose(image[:, 2:-2], np.broadcast_to((255, 0, 0), (SIZE, SIZE - 4, 3)),
                             atol=1)


def write_bad_files(folder):
  """Zero-byte, truncated and non-image files with image names."""
  buffer = io.BytesIO()
  solid((1, 2, 3), size=(64, 64)).save(buffer, "JPEG")
  (folder / "empty.jpg").write_bytes(b"")
  (folder / "truncated.jpg").write_bytes(buffer.getvalue()[:len(buffer.getvalue()) // 2])
  (folder / "notes.png").write_text("not an image\n")


def test_decode_images_skips_and_counts_unreadable_files(tmp_path, caplog):
  write_formats(tmp_path)
  write_bad_files(tmp_path)
  paths = face_sources.list_images(str(tmp_path))
  with caplog.at_level(logging.WARNING):
    images, skipped = face_sources.decode_images(paths, SIZE, max_logged=2)
  assert sorted(os.path.basename(p) for p in skipped) == ["empty.jpg", "notes.png",
                                                          "truncated.jpg"]
  assert len(images) == len(paths) - 3 == 11
  message = "\n".join(r.getMessage() for r in caplog.records)
  assert "skipped 3 unreadable image(s) of 14" in message
  assert "empty.jpg" in message and "notes.png" in message  # the first two, in file order
  assert "truncated.jpg" not in message


def test_folder_with_no_readable_images_is_a_one_line_error(tmp_path):
  write_bad_files(tmp_path)
  data = data_config(source="folder", folder=str(tmp_path), num_train=3, num_val=0, num_test=0)
  with pytest.raises(ValueError, match="no readable images among 3 file") as error:
    face_sources.load(data, "train", 0)
  assert "\n" not in str(error.value)


def write_numbered(folder, names):
  """Solid grey images whose grey level 10 * (i + 1) identifies name i."""
  for i, name in enumerate(names):
    os.makedirs(os.path.dirname(os.path.join(folder, name)), exist_ok=True)
    solid((10 * (i + 1),) * 3).save(os.path.join(folder, name))


def grey_levels(images) -> list[int]:
  return [int(round(image.mean())) for image in images]


def test_folder_paper_rule_splits_sorted_files_and_writes_nothing(tmp_path):
  names = ["b/03.png", "a/02.png", "a/01.png", "c.png", "b/10.bmp", "d.jpg", "e.webp", "f.png"]
  write_numbered(tmp_path, names)
  (tmp_path / "README.txt").write_text("not listed: wrong extension\n")
  before = folder_hashes(tmp_path)
  data = data_config(source="folder", folder=str(tmp_path), num_train=4, num_val=2, num_test=1)
  order = sorted(names)  # a/01 a/02 b/03 b/10 c d e f: by path, not walk order
  level = {name: 10 * (names.index(name) + 1) for name in names}
  splits = {}
  for split in ("train", "val", "test"):
    images, landmarks, fingerprint = face_sources.load(data, split, seed=0)
    splits[split] = grey_levels(images)
    assert landmarks.shape == (len(images), 8, 2)
    np.testing.assert_array_equal(landmarks, np.broadcast_to(masks.UTKFACE_TEMPLATE,
                                                             landmarks.shape))
    assert f"split={split}" in fingerprint and ":skipped=0" in fingerprint
  # d.jpg is lossy: compare within a grey level.
  assert splits["train"] == [level[n] for n in order[:4]]
  assert splits["test"] == [level[n] for n in order[4:5]]
  np.testing.assert_allclose(splits["val"], [level[n] for n in order[-2:]], atol=2)
  assert folder_hashes(tmp_path) == before


def test_folder_too_small_for_the_paper_rule(tmp_path):
  write_numbered(tmp_path, ["1.png", "2.png"])
  data = data_config(source="folder", folder=str(tmp_path), num_train=2, num_val=1, num_test=0)
  with pytest.raises(ValueError, match="has 2 images; the split needs 3"):
    face_sources.load(data, "train", 0)


def test_folder_list_files_give_the_splits_in_list_order(tmp_path):
  names = ["x/1.png", "2.png", "3.png", "4.png"]
  write_numbered(tmp_path / "images", names)
  (tmp_path / "train.txt").write_text("3.png\nx/1.png\n\n")
  (tmp_path / "val.txt").write_text("4.png\n")
  data = data_config(source="folder", folder=str(tmp_path / "images"),
                     train_list=str(tmp_path / "train.txt"), val_list=str(tmp_path / "val.txt"))
  assert grey_levels(face_sources.load(data, "train", 0)[0]) == [30, 10]
  assert grey_levels(face_sources.load(data, "val", 0)[0]) == [40]
  with pytest.raises(ValueError, match="data.test_list is empty but data.train_list, "
                     "data.val_list is set"):
    face_sources.load(data, "test", 0)


@pytest.mark.parametrize("content, field, message", [
    ("1.png\nmissing.png\n", "train_list", "listed image not found in .*: missing.png"),
    (None, "train_list", "data.train_list: no such file: .*nowhere.txt"),
    ("\n\n", "train_list", "data.train_list: .* lists no images"),
])
def test_folder_list_file_errors_are_one_line(tmp_path, content, field, message):
  write_numbered(tmp_path, ["1.png"])
  list_file = tmp_path / ("nowhere.txt" if content is None else "list.txt")
  if content is not None:
    list_file.write_text(content)
  data = data_config(source="folder", folder=str(tmp_path), **{field: str(list_file)})
  with pytest.raises((ValueError, FileNotFoundError), match=message) as error:
    face_sources.load(data, "train", 0)
  assert "\n" not in str(error.value)


@pytest.mark.parametrize("fields, message", [
    (dict(source="folder", folder=""), "data.folder is empty"),
    (dict(source="folder", folder="/no/such/dir"), "no such directory: /no/such/dir"),
    (dict(source="folder", folder="/tmp", landmark_template="nope"),
     'unknown data.landmark_template "nope"'),
    (dict(source="webcam"), 'unknown data.source "webcam"; valid: synthetic, folder, tfds'),
    (dict(source="tfds", tfds_name=""), "data.tfds_name is empty"),
])
def test_config_errors(fields, message):
  with pytest.raises((ValueError, FileNotFoundError), match=message):
    face_sources.load(data_config(**fields), "train", 0)


def test_synthetic_source_has_disjoint_deterministic_splits():
  data = data_config(num_train=3, num_val=2, num_test=2)
  train, train_landmarks, _ = face_sources.load(data, "train", seed=5)
  again, again_landmarks, _ = face_sources.load(data, "train", seed=5)
  np.testing.assert_array_equal(train, again)
  np.testing.assert_array_equal(train_landmarks, again_landmarks)
  val = face_sources.load(data, "val", seed=5)[0]
  assert val.shape == (2, SIZE, SIZE, 3) and not np.array_equal(val, train[:2])


# --- TFDS: the third_party face_folder builder and the tfds source -------------------------------


@pytest.fixture(scope="module")
def manual_dir(tmp_path_factory):
  """A face folder in the builder's layout: images/ (every format, an EXIF-rotated JPEG, a bad
  file), train.txt and val.txt."""
  root = tmp_path_factory.mktemp("manual")
  images = root / "images"
  expected = write_formats(images)
  exif_rotated_jpeg(images / "rotated.jpg")
  (images / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
  names = sorted(expected) + ["rotated.jpg"]
  (root / "train.txt").write_text("\n".join(names[:-3] + ["broken.png"]) + "\n")
  (root / "val.txt").write_text("\n".join(names[-3:]) + "\n")
  return root


@pytest.fixture(scope="module")
def tfds_dir(manual_dir, tmp_path_factory):
  """The face_folder dataset built in-process (no network) from `manual_dir`."""
  data_dir = tmp_path_factory.mktemp("tfds")
  before = folder_hashes(manual_dir)
  builder = face_folder.Builder(data_dir=str(data_dir))
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir)))
  assert folder_hashes(manual_dir) == before
  return data_dir


def tfds_config(data_dir, **fields):
  return data_config(source="tfds", tfds_name="face_folder", tfds_data_dir=str(data_dir),
                     **fields)


def test_builder_makes_versioned_checksummed_splits(tfds_dir, manual_dir):
  builder = tfds.builder("face_folder", data_dir=str(tfds_dir))
  assert builder.info.full_name == "face_folder/1.0.0"
  assert {k: v.num_examples for k, v in builder.info.splits.items()} == {
      "train": 9, "validation": 3}
  metadata = builder.info.metadata
  assert metadata["train_skipped"] == ["broken.png (OSError)"]
  examples = list(builder.as_dataset(split="train").as_numpy_iterator())
  lines = []
  for example in examples:
    name = example["filename"].decode()
    digest = hashlib.sha256((manual_dir / "images" / name).read_bytes()).hexdigest()
    assert example["sha256"].decode() == digest
    lines.append(f"{name}\t{digest}\n")
  assert metadata["train_sha256"] == hashlib.sha256("".join(sorted(lines)).encode()).hexdigest()


def test_tfds_source_matches_folder_decoding(tfds_dir, manual_dir):
  """Each TFDS face (TF-ops crop + resize) is close to the folder source's PIL decoding of the same
  file, EXIF rotation and mode conversion included."""
  for split, tfds_split in (("train", "train"), ("val", "validation")):
    images, landmarks, fingerprint = face_sources.load(tfds_config(tfds_dir), split, seed=0)
    assert fingerprint == f"tfds:face_folder/1.0.0:split={tfds_split}:n={len(images)}"
    np.testing.assert_array_equal(landmarks[0], masks.UTKFACE_TEMPLATE)
    names = [n.decode() for n in tfds.builder("face_folder", data_dir=str(tfds_dir)).as_dataset(
        split=tfds_split, shuffle_files=False).map(lambda e: e["filename"]).as_numpy_iterator()]
    assert len(names) == len(images)
    for name, image in zip(names, images):
      reference = face_sources.read_rgb(str(manual_dir / "images" / name), SIZE)
      assert np.abs(image.astype(int) - reference).mean() < 3, name


def test_tfds_source_errors_are_one_line(tfds_dir):
  cases = [
      (dict(tfds_name="no_such_faces"), 'unknown TFDS dataset "no_such_faces"'),
      (dict(tfds_image_key="photo"), 'data.tfds_image_key "photo" is not an image feature'),
      (dict(tfds_splits={"train": "test"}), 'data.tfds_splits.train="test" is not a valid split'),
      (dict(tfds_splits={"val": "validation"}), 'data.tfds_splits has no entry for split "train"'),
  ]
  for fields, message in cases:
    data = tfds_config(tfds_dir)
    if "tfds_splits" in fields:
      data.tfds_splits = fields.pop("tfds_splits")
    data.update(fields)
    with pytest.raises(ValueError, match=message) as error:
      face_sources.load(data, "train", 0)
    assert "\n" not in str(error.value), fields


def test_tfds_known_but_unprepared_dataset_says_how_to_build_it(tmp_path):
  with pytest.raises(errors.DataError, match='"face_folder" is not prepared in .*tfds build'):
    face_sources.load(tfds_config(tmp_path), "train", 0)


@pytest.mark.slow
def test_builder_command_rebuilds_the_same_dataset(tfds_dir, manual_dir, tmp_path):
  """`python -m third_party.face_folder.face_folder_dataset_builder` (the build command) rebuilds
  the in-process build exactly: the same records in the same order and the same checksums.
  (Record bytes may differ: protobuf map fields serialize in a per-process order.)"""
  result = subprocess.run(
      [sys.executable, "-m", "third_party.face_folder.face_folder_dataset_builder",
       f"--manual_dir={manual_dir}", f"--data_dir={tmp_path}"],
      cwd=REPO, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-2000:]
  assert "face_folder: face_folder/1.0.0 in" in result.stdout
  assert "(train 9, validation 3)" in result.stdout
  built, rebuilt = tfds_dir / "face_folder" / "1.0.0", tmp_path / "face_folder" / "1.0.0"
  assert sorted(os.listdir(built)) == sorted(os.listdir(rebuilt))
  for name in ("metadata.json", "features.json"):
    assert (built / name).read_bytes() == (rebuilt / name).read_bytes(), name
  for name in sorted(os.listdir(built)):
    if ".tfrecord-" in name:
      records = [[tf.train.Example.FromString(record) for record in
                  tf.data.TFRecordDataset(str(folder / name)).as_numpy_iterator()]
                 for folder in (built, rebuilt)]
      assert records[0] == records[1] and records[0], name


def test_tfds_build_command_line(manual_dir, tmp_path):
  """The TFDS command line itself (tensorflow-datasets 4.9.10 needs apache-beam to start it)."""
  pytest.importorskip("apache_beam", reason="the tfds command line imports apache_beam")
  result = subprocess.run(
      [os.path.join(os.path.dirname(sys.executable), "tfds"), "build", "third_party/face_folder",
       f"--manual_dir={manual_dir}", f"--data_dir={tmp_path}"],
      cwd=REPO, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-2000:]
  assert tfds.builder("face_folder", data_dir=str(tmp_path)).info.splits["train"].num_examples == 9


# --- The real reference set ---------------------------------------------------------------------


@pytest.mark.skipif(not os.path.isdir(UTKFACE), reason=f"real face set absent: {UTKFACE}")
def test_utkface_loads_through_list_files(tmp_path):
  with open(os.path.join(UTKFACE, "train.txt")) as f:
    first = [next(f).strip() for _ in range(6)]
  (tmp_path / "train.txt").write_text("\n".join(first) + "\n")
  data = data_config(source="folder", folder=os.path.join(UTKFACE, "images"),
                     train_list=str(tmp_path / "train.txt"),
                     val_list=os.path.join(UTKFACE, "val.txt"))
  train, landmarks, fingerprint = face_sources.load(data, "train", 0)
  assert train.shape == (6, SIZE, SIZE, 3) and landmarks.shape == (6, 8, 2)
  assert fingerprint.endswith(":n=6:skipped=0")
  assert all(image.std() > 10 for image in train)  # real photos, not blank
  val = face_sources.load(data, "val", 0)[0]
  assert len(val) == 500


def test_stream_feed_reads_an_array_record_tfds_dataset_like_the_in_memory_source(
    manual_dir, tfds_dir, tmp_path):
  """data.feed=stream gives the in-memory TFDS source's examples, pixels included, from an
  array_record build, and names the format it needs for a tfrecord one."""
  from maskae import input_pipeline, streaming, train_step
  import jax
  data_dir = tmp_path / "array_record"
  face_folder.Builder(data_dir=str(data_dir), file_format="array_record").download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir)))
  config = default.get_config()
  config.data.update(source="tfds", tfds_name="face_folder", tfds_data_dir=str(data_dir),
                     image_size=SIZE, batch_size=4, feed="stream")
  mesh = train_step.data_mesh(jax.devices()[:1])
  for split in ("train", "val"):
    stream = streaming.StreamFeed(config, split)
    in_memory = input_pipeline.Feed(input_pipeline.load_faces(config, split), "host", mesh)
    assert len(stream) == len(in_memory) > 0
    for (a, count_a), (b, count_b) in zip(stream.eval_batches(2), in_memory.eval_batches(2)):
      assert count_a == count_b
      for key in b:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
  train_stream = streaming.StreamFeed(config, "train").train_batches(config, 3)
  train_memory = input_pipeline.Feed(input_pipeline.load_faces(config, "train"), "host",
                                     mesh).train_batches(config, 3)
  for _ in range(2):
    a, b = next(train_stream), next(train_memory)
    for key in b:
      np.testing.assert_array_equal(a[key], b[key], err_msg=key)
  config.data.tfds_data_dir = str(tfds_dir)  # prepared as tfrecord
  with pytest.raises(ValueError, match="data.feed=stream reads TFDS datasets prepared in the "
                                       "random-access array_record format"):
    streaming.StreamFeed(config, "train")
