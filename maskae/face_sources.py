"""Face sources: the procedural generator, folders of face photos and TFDS datasets, decoded once to
uint8 arrays.

`load(data_config, split, seed)` returns (images [N,S,S,3] uint8, landmarks [N,8,2] float32,
fingerprint). Only the tfds source imports TensorFlow. Procedural faces carry their exact
landmarks. Real photos (folder, tfds) get their mask landmarks by `data.landmarks`:
- template: every face gets `data.landmark_template` (the fast path, for crops known to be
  aligned like that template's faces);
- detect: maskae.landmarks finds each face's own once (kept in `data.landmark_cache`, keyed by
  the split's files and the detector's version, and named in the fingerprint); faces where none
  is found are skipped and counted. With `data.align_faces`, each photo is warped so that its
  eyes sit where the template's framing has them (landmarks.FRAMING_EYES): any folder of photos
  becomes aligned training crops.

- folder: every jpg / png / webp / bmp / tif file under `data.folder` (recursively, sorted by path).
  Splits come from list files (`data.{train,val,test}_list`: one name per line, relative to
  `data.folder`) or, with no list files, from the paper's rule on the sorted files: the first
  `num_train` are train, the next `num_test` test and the last `num_val` validation. Files are only
  ever read; unreadable ones are skipped and counted.
- tfds: split `data.tfds_splits[split]` (TFDS split syntax, e.g. "train[:90%]") of the prepared
  dataset `data.tfds_name` in `data.tfds_data_dir`; `data.tfds_image_key` names the image feature.
  third_party/face_folder builds a manually downloaded face folder into such a dataset.
"""

import concurrent.futures
import hashlib
import os
import struct
import tempfile

import ml_collections
import numpy as np
from absl import logging
from PIL import Image, ImageOps

from maskae import faces, landmarks, masks
from maskae.errors import DataError

SOURCES = ("synthetic", "folder", "tfds")
LANDMARK_MODES = ("template", "detect")
DETECT_SIZE = 256  # side of the centre square landmarks are found on (without align_faces)
_CHUNK = 64  # photos decoded at a time while finding landmarks (bounds host memory)
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
# What PIL raises for unreadable, truncated, empty or non-image files (and oversized ones).
UNREADABLE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, struct.error,
                     Image.DecompressionBombError)
# Procedural identities of each split come from disjoint index ranges of the generator.
_SYNTHETIC_SPLIT_START = {"train": 0, "val": 1_000_000, "test": 2_000_000}
LANDMARK_TEMPLATES = {"utkface": masks.UTKFACE_TEMPLATE}
# Transparent pixels of RGBA / LA / palette images are composited over this colour.
_BACKGROUND = (255, 255, 255)


def load(data: ml_collections.ConfigDict, split: str, seed: int):
  """Faces, landmarks and a fingerprint string for `split` of the configured source."""
  if data.source == "synthetic":
    count = {"train": data.num_train, "val": data.num_val, "test": data.num_test}[split]
    images, marks = faces.generate_faces(count, data.image_size, seed,
                                         start=_SYNTHETIC_SPLIT_START[split])
    return images, marks, f"synthetic:seed={seed}:split={split}:n={count}"
  if data.source not in ("folder", "tfds"):
    raise DataError(f'unknown data.source "{data.source}"; valid: {", ".join(SOURCES)}')
  if data.landmarks == "detect":
    return detect_landmarks(data, split)
  template = landmark_template(data.landmark_template)
  if data.source == "folder":
    paths = folder_split(data, split)
    images, skipped = decode_images(paths, data.image_size)
    fingerprint = (f"{folder_fingerprint(data.folder, split, paths)}:n={len(images)}"
                   f":skipped={len(skipped)}")
  else:
    images, fingerprint = load_tfds(data, split)
  return images, np.broadcast_to(template, (len(images),) + template.shape).copy(), fingerprint


def detect_landmarks(data: ml_collections.ConfigDict, split: str):
  """load() with data.landmarks=detect: each face's own landmarks (see the module docstring)."""
  size, align = data.image_size, data.align_faces
  eyes = landmarks.framing_eyes(data) if align else None
  if data.source == "folder":
    paths = folder_split(data, split)
    base = folder_fingerprint(data.folder, split, paths)
    stats = "\n".join(f"{st.st_size}:{st.st_mtime_ns}" for st in map(os.stat, paths))
    photos, count = _folder_photos(paths, size, align), len(paths)
    names = paths
  else:
    photos, base, count = _tfds_photos(data, split, align)
    stats, names = "", [f"{base}[{i}]" for i in range(count)]
  key = f"{base}\n{stats}\n{landmarks.VERSION}\nalign={align}\nsize={DETECT_SIZE}"
  cache = _LandmarkCache(data.landmark_cache, key, count)
  images = np.empty((count, size, size, 3), np.uint8)
  marks = np.empty((count, len(masks.LANDMARK_NAMES), 2), np.float32)
  finder, kept, unreadable, no_face = None, 0, [], []
  for index, (image, photo) in enumerate(photos):
    if isinstance(photo, Exception):
      unreadable.append((names[index], photo))
      continue
    points = cache.get(index)
    if points is None:
      finder = finder or landmarks.FaceFinder()
      found = finder.find(photo, max_faces=1)
      points = (found[0].points / np.float32(photo.shape[1::-1]) if found
                else np.full((len(landmarks.NAMES), 2), np.nan, np.float32))
      cache.put(index, points)
    if np.isnan(points).any():
      no_face.append(names[index])
      continue
    if align:
      pixels = points * np.float32(photo.shape[1::-1])
      matrix = landmarks.alignment(pixels, size, eyes)
      images[kept] = landmarks.warp(photo, matrix, size)
      pixels = landmarks.transform_points(matrix, pixels)
    else:
      images[kept] = image
      pixels = points * size
    marks[kept] = landmarks.mask_landmarks(pixels, (size, size))
    kept += 1
  cache.save()
  _warn_unreadable(unreadable, count)
  if no_face:
    logging.warning("skipped %d of %d faces of the %s split: no face found (%s); first: %s",
                    len(no_face), count, split, landmarks.VERSION, "; ".join(no_face[:5]))
  if not kept:
    raise DataError(f"no face found in any of the {count} image(s) of the {split} split"
                    + (f", e.g. {names[0]}" if names else ""))
  fingerprint = (f"{base}:n={kept}:skipped={len(unreadable)}:landmarks={landmarks.VERSION}"
                 f":no_face={len(no_face)}" + (f":aligned={data.landmark_template}" if align
                                              else ""))
  return images[:kept], marks[:kept], fingerprint


def _folder_photos(paths: list[str], size: int, align: bool):
  """(face image [size, size, 3] or None, photo to find landmarks on, or the decode error) per
  path, in order, decoded _CHUNK at a time in threads: without `align` the face is the centre
  square (as `read_rgb`) and landmarks are found on that square at DETECT_SIZE; with it, the
  photo itself (decoded at reduced JPEG scale down to 1024 px)."""
  def read(path):
    try:
      photo = read_photo(path, draft_size=1024 if align else max(size, DETECT_SIZE))
      if align:
        return None, photo
      return fit_square(photo, size), fit_square(photo, DETECT_SIZE)
    except UNREADABLE_ERRORS as e:
      return None, e

  with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
    for start in range(0, len(paths), _CHUNK):
      yield from pool.map(read, paths[start:start + _CHUNK])


class _LandmarkCache:
  """Landmarks found per face of one split ([N, len(landmarks.NAMES), 2] in [0, 1] of the photo
  they were found on, NaN where no face was found), in an .npy file under `folder` named by a
  digest of `key` (files, detector version, options); written atomically. '' disables it."""

  def __init__(self, folder: str, key: str, count: int):
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    self.path = os.path.join(os.path.expanduser(folder), f"{digest}.npy") if folder else ""
    self.points = None
    if self.path and os.path.isfile(self.path):
      try:
        points = np.load(self.path)
        if points.shape == (count, len(landmarks.NAMES), 2):
          self.points = points
      except (OSError, ValueError) as e:
        logging.warning("ignoring unreadable landmark cache %s (%s)", self.path, e)
    self.hit = self.points is not None
    if self.points is None:
      self.points = np.full((count, len(landmarks.NAMES), 2), np.inf, np.float32)

  def get(self, index: int):
    points = self.points[index]
    return None if np.isinf(points).any() else points

  def put(self, index: int, points: np.ndarray) -> None:
    self.points[index] = points

  def save(self) -> None:
    """Writes the found landmarks (unless read from the cache or disabled); faces never reached
    (unreadable photos) stay unknown."""
    if not self.path or self.hit:
      return
    os.makedirs(os.path.dirname(self.path), exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=os.path.dirname(self.path), suffix=".npy.tmp")
    with os.fdopen(handle, "wb") as f:
      np.save(f, self.points)
    os.replace(temporary, self.path)


def folder_fingerprint(folder: str, split: str, paths: list[str]) -> str:
  """Names a folder split by a digest of its file list."""
  digest = hashlib.sha256("\n".join(os.path.relpath(p, folder) for p in paths).encode())
  return f"folder:{folder}:split={split}:sha256={digest.hexdigest()[:16]}"


def landmark_template(name: str) -> np.ndarray:
  """The [8, 2] landmark template called `name` (data.landmark_template)."""
  if name not in LANDMARK_TEMPLATES:
    raise DataError(f'unknown data.landmark_template "{name}"; '
                     f'valid: {", ".join(LANDMARK_TEMPLATES)}')
  return LANDMARK_TEMPLATES[name]


def list_images(folder: str) -> list[str]:
  """All image files under `folder`, recursively, sorted by path."""
  if not folder:
    raise DataError("data.folder is empty; set it to a directory of face images")
  if not os.path.isdir(folder):
    raise DataError(f"data.folder: no such directory: {folder}")
  return sorted(os.path.join(root, f) for root, _, files in os.walk(folder) for f in files
                if f.lower().endswith(IMAGE_EXTENSIONS))


def folder_split(data: ml_collections.ConfigDict, split: str) -> list[str]:
  """Paths of `split`: from its list file, or by the paper's rule on the sorted files (first
  num_train train, next num_test test, last num_val validation)."""
  list_fields = {"train": "train_list", "val": "val_list", "test": "test_list"}
  if any(data[field] for field in list_fields.values()):
    field = list_fields[split]
    if not data[field]:
      given = ", ".join(f"data.{f}" for f in list_fields.values() if data[f])
      raise DataError(f"data.{field} is empty but {given} is set: give a list file for every "
                       f"split used, or none (then the paper's rule splits the sorted files)")
    return _listed_paths(data.folder, data[field], f"data.{field}")
  paths = list_images(data.folder)
  needed = data.num_train + data.num_val + data.num_test
  if len(paths) < needed:
    raise DataError(f"data.folder {data.folder} has {len(paths)} images; the split needs "
                     f"{needed} (num_train + num_val + num_test)")
  if split == "train":
    return paths[:data.num_train]
  if split == "test":
    return paths[data.num_train:data.num_train + data.num_test]
  return paths[len(paths) - data.num_val:]


def _listed_paths(folder: str, list_file: str, field: str) -> list[str]:
  """The files named in `list_file` (one per line, relative to `folder`); all must exist."""
  if not folder:
    raise DataError("data.folder is empty; list-file names are relative to it")
  if not os.path.isfile(list_file):
    raise DataError(f"{field}: no such file: {list_file}")
  with open(list_file) as f:
    names = [line.strip() for line in f if line.strip()]
  if not names:
    raise DataError(f"{field}: {list_file} lists no images")
  paths = [os.path.join(folder, name) for name in names]
  for name, path in zip(names, paths):
    if not os.path.isfile(path):
      raise DataError(f"{list_file}: listed image not found in {folder}: {name}")
  return paths


def _open_rgb(path: str, draft_size: int | None) -> Image.Image:
  """The decoder of every image file maskae reads, as an RGB PIL image (see read_photo)."""
  with Image.open(path) as im:
    if draft_size:
      im.draft(None, (draft_size, draft_size))
    im.load()
    im = ImageOps.exif_transpose(im)
    if im.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):  # 16-bit grey (PNG, TIFF)
      im = Image.fromarray((np.asarray(im, np.uint32) >> 8).clip(0, 255).astype(np.uint8))
    elif im.mode == "F":  # float grey: [0, 1] if it fits there, else [0, 255]
      values = np.asarray(im, np.float64)
      scale = 255.0 if np.nanmax(values) <= 1.0 else 1.0
      im = Image.fromarray(np.nan_to_num(values * scale).round().clip(0, 255).astype(np.uint8))
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info:
      rgba = im.convert("RGBA")
      im = Image.new("RGB", rgba.size, _BACKGROUND)
      im.paste(rgba, mask=rgba.getchannel("A"))
    return im.convert("RGB")


def read_photo(path: str, draft_size: int | None = None) -> np.ndarray:
  """A photo as uint8 [H, W, 3], the one decoder of every image file maskae reads: EXIF
  orientation applied, 16-bit and other high-bit-depth modes scaled to 8 bits, transparency over
  white, any mode converted to RGB. `draft_size`: a JPEG may be decoded at a reduced scale that
  is still at least that size. Raises one of UNREADABLE_ERRORS if the file cannot be decoded."""
  return np.asarray(_open_rgb(path, draft_size), dtype=np.uint8)


def read_rgb(path: str, size: int) -> np.ndarray:
  """One face image as uint8 [size, size, 3]: decoded as by `read_photo`, centre-cropped to a
  square and resized (Lanczos)."""
  return fit_square(_open_rgb(path, size), size)


def fit_square(image, size: int) -> np.ndarray:
  """A PIL image or uint8 [H, W, 3] array centre-cropped to a square and resized (Lanczos) to
  uint8 [size, size, 3]."""
  if isinstance(image, np.ndarray):
    image = Image.fromarray(image)
  return np.asarray(ImageOps.fit(image, (size, size), Image.Resampling.LANCZOS), dtype=np.uint8)


def decode_images(paths: list[str], size: int,
                  max_logged: int = 5) -> tuple[np.ndarray, list[str]]:
  """Decodes `paths` in parallel threads into uint8 [N, size, size, 3] (file order kept).

  Unreadable files are skipped, counted and the first `max_logged` named in the log; returns the
  images and the skipped paths. Raises ValueError when none is readable.
  """
  def read(path):
    try:
      return read_rgb(path, size)
    except UNREADABLE_ERRORS as e:
      return e

  images = np.empty((len(paths), size, size, 3), np.uint8)
  skipped, count = [], 0
  with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
    for path, result in zip(paths, pool.map(read, paths)):
      if isinstance(result, Exception):
        skipped.append((path, result))
      else:
        images[count] = result
        count += 1
  _warn_unreadable(skipped, len(paths), max_logged)
  if not count:
    raise DataError(f"no readable images among {len(paths)} file(s)"
                     + (f", e.g. {paths[0]}" if paths else ""))
  return images[:count], [p for p, _ in skipped]


def _warn_unreadable(skipped: list[tuple[str, Exception]], total: int, max_logged: int = 5):
  """Logs how many of `total` images were unreadable, naming the first `max_logged`."""
  if skipped:
    logging.warning("skipped %d unreadable image(s) of %d; first: %s", len(skipped), total,
                    "; ".join(f"{p} ({type(e).__name__}: {e})" for p, e in skipped[:max_logged]))


def open_tfds(data: ml_collections.ConfigDict, split: str):
  """(builder, TFDS split string, image key, number of examples) of `split` of the prepared TFDS
  dataset data.tfds_name in data.tfds_data_dir, every name checked with a one-line error."""
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel  # needs TF
  if not data.tfds_name:
    raise DataError("data.tfds_name is empty; set it to a TFDS dataset name (data.source=tfds)")
  if split not in data.tfds_splits:
    raise DataError(f'data.tfds_splits has no entry for split "{split}"')
  split_spec = data.tfds_splits[split]
  data_dir = data.tfds_data_dir or None
  try:
    builder = tfds.builder(data.tfds_name, data_dir=data_dir)
  except tfds.core.registered.DatasetNotFoundError:
    raise DataError(f'unknown TFDS dataset "{data.tfds_name}" (data.tfds_name): not registered '
                     f'and not prepared in data_dir {data_dir or "(TFDS default)"}') from None
  if not builder.is_prepared():
    raise DataError(
        f'TFDS dataset "{data.tfds_name}" is not prepared in {builder.data_dir}; build it first: '
        f"tfds build {data.tfds_name} --data_dir {data_dir or '~/tensorflow_datasets'}")
  key = data.tfds_image_key
  features = builder.info.features
  if key not in features or not isinstance(features[key], tfds.features.Image):
    raise DataError(f'data.tfds_image_key "{key}" is not an image feature of '
                     f'{builder.info.full_name}; features: {", ".join(features.keys())}')
  try:
    count = builder.info.splits[split_spec].num_examples
  except (KeyError, ValueError) as e:
    first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    raise DataError(f'data.tfds_splits.{split}="{split_spec}" is not a valid split of '
                     f"{builder.info.full_name}: {first_line}") from None
  if not count:
    raise DataError(f'data.tfds_splits.{split}="{split_spec}" of {builder.info.full_name} '
                     "has no examples")
  return builder, split_spec, key, count


def load_tfds(data: ml_collections.ConfigDict, split: str) -> tuple[np.ndarray, str]:
  """Images of `split` of a prepared TFDS dataset, centre-cropped and resized with TF ops into
  uint8 [N, S, S, 3] (TFDS's deterministic order), and a fingerprint string."""
  size = data.image_size
  dataset, builder, split_spec, count = _tfds_dataset(data, split,
                                                      lambda image: square_resize(image, size))
  images, filled = np.empty((count, size, size, 3), np.uint8), 0
  for batch in dataset.batch(256).prefetch(2).as_numpy_iterator():
    images[filled:filled + len(batch)] = batch
    filled += len(batch)
  return images[:filled], tfds_fingerprint(builder, split_spec, filled)


def _tfds_dataset(data: ml_collections.ConfigDict, split: str, transform):
  """(tf.data dataset of transform(uint8 image [H, W, C]) per example in TFDS's deterministic
  order, builder, split string, number of examples)."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel  # only tfds needs TF
  builder, split_spec, key, count = open_tfds(data, split)
  if is_array_record(builder):  # random access only: read record by record
    read = tfds_record_reader(builder, split_spec, key)
    dataset = tf.data.Dataset.range(count).map(lambda i: transform(read(i)),
                                               num_parallel_calls=tf.data.AUTOTUNE,
                                               deterministic=True)
  else:
    dataset = builder.as_dataset(split=split_spec, shuffle_files=False)
    dataset = dataset.map(lambda example: transform(example[key]),
                          num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  return dataset, builder, split_spec, count


def _tfds_photos(data: ml_collections.ConfigDict, split: str, align: bool):
  """As `_folder_photos` for a TFDS split: (generator of (face image or None, photo), base
  fingerprint, number of examples)."""
  size = data.image_size

  def transform(image):
    if align:
      return square_resize(image, 0)
    return square_resize(image, size), square_resize(image, DETECT_SIZE)

  dataset, builder, split_spec, count = _tfds_dataset(data, split, transform)

  def photos():
    for item in dataset.prefetch(2).as_numpy_iterator():
      yield (None, item) if align else item

  return photos(), tfds_fingerprint(builder, split_spec), count


def is_array_record(builder) -> bool:
  """Whether a prepared TFDS dataset is in the random-access array_record format."""
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
  return builder.info.file_format == tfds.core.FileFormat.ARRAY_RECORD


def tfds_record_reader(builder, split_spec: str, key: str):
  """A TF function: record index -> that record's uint8 image [H, W, C], read by random access
  from an array_record TFDS split (builder.as_data_source)."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  records = builder.as_data_source(split=split_spec)
  channels = builder.info.features[key].shape[-1]

  def read(index):
    image = tf.numpy_function(lambda i: np.asarray(records[int(i)][key], np.uint8), [index],
                              tf.uint8, stateful=False)
    return tf.ensure_shape(image, (None, None, channels))

  return read


def tfds_fingerprint(builder, split_spec: str, count: int | None = None) -> str:
  """Names a TFDS split (and its number of faces, when given)."""
  name = f"tfds:{builder.info.full_name}:split={split_spec}"
  return name if count is None else f"{name}:n={count}"


def square_resize(image, size: int):
  """A decoded uint8 image tf.Tensor [H, W, C] (C = 1, 3 or 4) as uint8 RGB [size, size, 3]:
  transparency over white, centre-cropped to a square and resized (Lanczos, antialiased), in TF
  ops. size 0: only made RGB, at its own size."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  channels = image.shape[-1]
  if channels not in (1, 2, 3, 4):
    raise DataError(f"image feature has {channels} channels; expected 1, 2, 3 or 4")
  image = tf.image.convert_image_dtype(image, tf.float32)
  if channels in (2, 4):
    colour, alpha = image[..., :-1], image[..., -1:]
    background = tf.constant(_BACKGROUND[:channels - 1], tf.float32) / 255.0
    image = colour * alpha + (1.0 - alpha) * background
  if channels <= 2:
    image = tf.image.grayscale_to_rgb(image)
  if not size:
    return tf.cast(tf.round(tf.clip_by_value(image * 255.0, 0.0, 255.0)), tf.uint8)
  height, width = tf.shape(image)[0], tf.shape(image)[1]
  side = tf.minimum(height, width)
  image = tf.image.crop_to_bounding_box(image, (height - side) // 2, (width - side) // 2,
                                        side, side)
  image = tf.image.resize(image, (size, size), method="lanczos3", antialias=True)
  return tf.cast(tf.round(tf.clip_by_value(image * 255.0, 0.0, 255.0)), tf.uint8)
