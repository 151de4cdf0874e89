"""Face sources: the procedural generator and folders of face photos, decoded once to uint8 arrays.

`load(data_config, split, seed)` returns (images [N,S,S,3] uint8, landmarks [N,8,2] float32,
fingerprint). Procedural faces carry their exact landmarks; aligned real crops get the source's
landmark template (`data.landmark_template`) for every face.
"""

import concurrent.futures
import hashlib
import os

import ml_collections
import numpy as np
from absl import logging
from PIL import Image, ImageOps

from maskae import faces, masks

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
# Procedural identities of each split come from disjoint index ranges of the generator.
_SYNTHETIC_SPLIT_START = {"train": 0, "val": 1_000_000, "test": 2_000_000}
_LANDMARK_TEMPLATES = {"utkface": masks.UTKFACE_TEMPLATE}


def load(data: ml_collections.ConfigDict, split: str, seed: int):
  """Faces, landmarks and a fingerprint string for `split` of the configured source."""
  if data.source == "synthetic":
    count = {"train": data.num_train, "val": data.num_val, "test": data.num_test}[split]
    images, landmarks = faces.generate_faces(count, data.image_size, seed,
                                             start=_SYNTHETIC_SPLIT_START[split])
    return images, landmarks, f"synthetic:seed={seed}:split={split}:n={count}"
  if data.source == "folder":
    paths = folder_split(data, split)
    images = decode_images(paths, data.image_size)
    if data.landmark_template not in _LANDMARK_TEMPLATES:
      raise ValueError(f'unknown data.landmark_template "{data.landmark_template}"; '
                       f'valid: {", ".join(_LANDMARK_TEMPLATES)}')
    template = _LANDMARK_TEMPLATES[data.landmark_template]
    landmarks = np.broadcast_to(template, (len(images),) + template.shape).copy()
    digest = hashlib.sha256("\n".join(os.path.relpath(p, data.folder) for p in paths).encode())
    return images, landmarks, f"folder:{data.folder}:split={split}:sha256={digest.hexdigest()[:16]}"
  raise ValueError(f'unknown data.source "{data.source}"; valid: folder, synthetic')


def list_images(folder: str) -> list[str]:
  """All image files under `folder`, recursively, in a deterministic (sorted) order."""
  if not os.path.isdir(folder):
    raise FileNotFoundError(f"data.folder: no such directory: {folder}")
  found = []
  for root, dirs, files in os.walk(folder):
    dirs.sort()
    found.extend(os.path.join(root, f) for f in sorted(files)
                 if f.lower().endswith(IMAGE_EXTENSIONS))
  return found


def folder_split(data: ml_collections.ConfigDict, split: str) -> list[str]:
  """Paths of `split`: from its list file (one name per line, relative to a folder), or by the
  paper's rule on the sorted files: first num_train train, next num_test test, last num_val val."""
  list_file = {"train": data.train_list, "val": data.val_list, "test": data.test_list}[split]
  if list_file:
    base = os.path.dirname(list_file)
    with open(list_file) as f:
      names = [line.strip() for line in f if line.strip()]
    paths = []
    for name in names:
      for root in (data.folder, os.path.join(data.folder, "images"), base):
        if os.path.isfile(os.path.join(root, name)):
          paths.append(os.path.join(root, name))
          break
      else:
        raise FileNotFoundError(f"{list_file}: listed image not found in {data.folder}: {name}")
    return paths
  paths = list_images(data.folder)
  needed = data.num_train + data.num_val + data.num_test
  if len(paths) < needed:
    raise ValueError(f"data.folder {data.folder} has {len(paths)} images; the split needs "
                     f"{needed} (num_train + num_val + num_test)")
  if split == "train":
    return paths[:data.num_train]
  if split == "test":
    return paths[data.num_train:data.num_train + data.num_test]
  return paths[len(paths) - data.num_val:]


def read_rgb(path: str, size: int) -> np.ndarray:
  """One image as uint8 [size, size, 3]: EXIF orientation applied, any mode converted to RGB,
  centre-cropped to a square and resized. Raises OSError / ValueError if unreadable."""
  with Image.open(path) as im:
    im.load()
    im = ImageOps.exif_transpose(im)
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
      rgba = im.convert("RGBA")
      im = Image.new("RGB", rgba.size, (255, 255, 255))
      im.paste(rgba, mask=rgba.getchannel("A"))
    im = ImageOps.fit(im.convert("RGB"), (size, size), Image.Resampling.LANCZOS)
    return np.asarray(im, dtype=np.uint8)


def decode_images(paths: list[str], size: int, max_logged: int = 5) -> np.ndarray:
  """Decodes `paths` in parallel threads; unreadable files are skipped, counted and the first few
  named in the log. Raises ValueError when none is readable."""
  def read(path):
    try:
      return read_rgb(path, size)
    except (OSError, ValueError, SyntaxError) as e:
      return e

  with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
    results = list(pool.map(read, paths))
  bad = [(p, r) for p, r in zip(paths, results) if isinstance(r, Exception)]
  if bad:
    logging.warning("skipped %d unreadable image(s) of %d; first: %s", len(bad), len(paths),
                    "; ".join(f"{p} ({type(e).__name__})" for p, e in bad[:max_logged]))
  good = [r for r in results if not isinstance(r, Exception)]
  if not good:
    raise ValueError(f"no readable images among {len(paths)} file(s)"
                     + (f", e.g. {paths[0]}" if paths else ""))
  return np.stack(good)
