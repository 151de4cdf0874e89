"""face_folder: a manually downloaded folder of face photos as a versioned, checksummed TFDS set.

Build it (from the repository root; the data folder is only read) with

  python -m third_party.face_folder.face_folder_dataset_builder \
      --manual_dir /path/to/faces --data_dir ~/tensorflow_datasets

or, the same with the TFDS command line (whose tensorflow-datasets 4.9.10 release also needs
apache-beam installed to start),

  tfds build third_party/face_folder --manual_dir /path/to/faces --data_dir ~/tensorflow_datasets

then train on it with `--config.data.source=tfds --config.data.tfds_name=face_folder
--config.data.tfds_data_dir=~/tensorflow_datasets` (data.tfds_splits picks the splits).

Images are all jpg / png / webp / bmp files under `<manual_dir>/images/` if that folder exists, else
under `<manual_dir>` (recursively). Optional list files `<manual_dir>/train.txt`, `val.txt` and
`test.txt` (one name per line, relative to the images folder) give the `train`, `validation` and
`test` splits; with none, every image goes to `train`. Each image is stored upright in RGB (EXIF
orientation applied, greyscale / palette / CMYK / 16-bit converted, transparency over white): RGB
JPEGs that need no change keep their original bytes, the rest are stored as lossless PNG. Each
example records its file name and the SHA-256 of the source file; metadata.json holds a SHA-256
over every split's (name, file SHA-256) lines and the unreadable files that were skipped, so a
rebuild from the same folder can be checked against it. TFDS orders each split by a hash of the
file names (deterministic), so split slices such as "train[:90%]" are not sorted by name.

Self-contained (TFDS, NumPy, Pillow) so that `tfds build` needs no maskae install.
"""

import hashlib
import io
import os
import struct

import numpy as np
import tensorflow_datasets as tfds
from absl import app, flags, logging
from PIL import Image, ImageOps

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
# Split name -> list file name in the manual dir.
LIST_FILES = {"train": "train.txt", "validation": "val.txt", "test": "test.txt"}
_UNREADABLE = (OSError, ValueError, SyntaxError, EOFError, struct.error,
               Image.DecompressionBombError)
_MAX_LOGGED = 5


class Builder(tfds.core.GeneratorBasedBuilder):
  """A face folder from `manual_dir`, split by list files or all in `train`."""

  name = "face_folder"  # also when run as __main__
  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "First release."}
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Put the face photos (jpg, png, webp or bmp; aligned, roughly square face crops) in the manual
  dir, or in an `images/` folder inside it, and optionally add list files `train.txt`, `val.txt`
  and `test.txt` next to `images/` (one file name per line, relative to the images folder).
  Example: the seed paper's 7,219-face set, or UTKFace's aligned crops. Then run, from the maskae
  repository root, `python -m third_party.face_folder.face_folder_dataset_builder --manual_dir
  <that dir> --data_dir <where to write>` (or `tfds build third_party/face_folder` with the same
  flags).
  """

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description="Face photos from a manually provided folder (maskae face_folder).",
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(None, None, 3)),
            "filename": tfds.features.Text(),
            "sha256": tfds.features.Text(),
        }),
        metadata=tfds.core.MetadataDict(),
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    root = os.fspath(dl_manager.manual_dir)
    images_dir = os.path.join(root, "images")
    if not os.path.isdir(images_dir):
      images_dir = root
    listed = {split: os.path.join(root, file) for split, file in LIST_FILES.items()
              if os.path.isfile(os.path.join(root, file))}
    if listed:
      splits = {split: _read_list(path, images_dir) for split, path in listed.items()}
    else:
      splits = {"train": _image_names(images_dir)}
      if not splits["train"]:
        raise ValueError(f"manual_dir {root}: no {'/'.join(IMAGE_EXTENSIONS)} images found")
    self.info.metadata["images_dir"] = os.path.relpath(images_dir, root)
    return {split: self._generate_examples(images_dir, split, split_names)
            for split, split_names in splits.items()}

  def _generate_examples(self, images_dir: str, split: str, names: list[str]):
    lines, skipped = [], []
    for name in names:
      try:
        with open(os.path.join(images_dir, name), "rb") as f:
          data = f.read()
        image = _upright_rgb(data)
      except _UNREADABLE as e:
        skipped.append(f"{name} ({type(e).__name__})")
        continue
      digest = hashlib.sha256(data).hexdigest()
      lines.append(f"{name}\t{digest}\n")
      yield name, {"image": image, "filename": name, "sha256": digest}
    if skipped:
      logging.warning("face_folder %s: skipped %d unreadable file(s); first: %s", split,
                      len(skipped), "; ".join(skipped[:_MAX_LOGGED]))
    if not lines:
      raise ValueError(f"face_folder {split}: no readable images among {len(names)} file(s)")
    split_digest = hashlib.sha256("".join(sorted(lines)).encode()).hexdigest()
    self.info.metadata[f"{split}_sha256"] = split_digest
    self.info.metadata[f"{split}_skipped"] = skipped


def _image_names(images_dir: str) -> list[str]:
  """Image files under `images_dir`, recursively, as sorted relative paths."""
  return sorted(os.path.relpath(os.path.join(root, f), images_dir)
                for root, _, files in os.walk(images_dir) for f in files
                if f.lower().endswith(IMAGE_EXTENSIONS))


def _read_list(list_file: str, images_dir: str) -> list[str]:
  """Names in `list_file`; each must be a file in `images_dir`."""
  with open(list_file) as f:
    names = [line.strip() for line in f if line.strip()]
  if not names:
    raise ValueError(f"{list_file} lists no images")
  for name in names:
    if not os.path.isfile(os.path.join(images_dir, name)):
      raise FileNotFoundError(f"{list_file}: listed image not found in {images_dir}: {name}")
  return names


def _upright_rgb(data: bytes):
  """The file's original bytes if it is an upright RGB JPEG, else uint8 RGB [H, W, 3] pixels with
  EXIF orientation applied, any mode converted (transparency over white, 16-bit scaled to 8)."""
  with Image.open(io.BytesIO(data)) as im:
    im.load()
    if im.format == "JPEG" and im.mode == "RGB" and im.getexif().get(0x0112, 1) == 1:
      return data
    im = ImageOps.exif_transpose(im)
    if im.mode in ("I", "I;16", "I;16B", "I;16L"):
      im = Image.fromarray((np.asarray(im, np.uint32) >> 8).clip(0, 255).astype(np.uint8))
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info:
      rgba = im.convert("RGBA")
      im = Image.new("RGB", rgba.size, (255, 255, 255))
      im.paste(rgba, mask=rgba.getchannel("A"))
    return np.asarray(im.convert("RGB"), np.uint8)


def build(manual_dir: str, data_dir: str, file_format: str = "tfrecord") -> tfds.core.DatasetBuilder:
  """Builds (or reuses) the dataset from `manual_dir` in `data_dir` as `file_format` (tfrecord,
  or array_record for maskae's data.feed=stream); returns the builder."""
  builder = Builder(data_dir=os.path.expanduser(data_dir), file_format=file_format)
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      manual_dir=os.path.expanduser(manual_dir)))
  return builder


def _main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  builder = build(flags.FLAGS.manual_dir, flags.FLAGS.data_dir, flags.FLAGS.file_format)
  splits = ", ".join(f"{name} {split.num_examples}" for name, split in builder.info.splits.items())
  print(f"face_folder: {builder.info.full_name} in {builder.data_dir} ({splits})", flush=True)


if __name__ == "__main__":
  flags.DEFINE_string("manual_dir", None, "Folder of face photos (see above).", required=True)
  flags.DEFINE_string("data_dir", None, "TFDS data dir to write the dataset into.", required=True)
  flags.DEFINE_enum("file_format", "tfrecord", ["tfrecord", "array_record"], "Record format; "
                    "array_record gives the random access that maskae's data.feed=stream needs.")
  app.run(_main)
