"""Unmask your own photos: `python -m maskae.unmask --workdir W INPUT... --output DIR`.

INPUTs are image files or folders (searched recursively). By default each image is taken as an
aligned face crop: its centre square is resized to the model's size, unmasked, resized back and
written. With --detect_faces, OpenCV's Haar cascade finds frontal faces in an ordinary photo;
each face box becomes a square crop framed like the training faces (down to the chin), which is
unmasked and blended back (feathered). The cascade misses many masked faces (it looks for a
nose and mouth): crop those by hand and run without --detect_faces.
Writes DIR/<name>_unmasked.png (and, with --side_by_side, DIR/<name>_side_by_side.png), never
replaces an existing file unless --overwrite, never writes over an input. No TensorFlow here.
"""

import os
import sys

import cv2
import numpy as np
from absl import app, flags, logging

from maskae import errors, face_sources, inference, workdir

HAAR_CASCADE = "haarcascade_frontalface_default.xml"
# Haar face box -> the framing of the model's aligned training crops (whose lower edge takes
# in the chin): (scale, shift) = crop side / box width, (crop centre y - box centre y) / box
# width, medians over training faces pasted into larger canvases (46 UTKFace crops; 28
# procedural faces). Real aligned sources use the UTKFace framing.
CROP_FRAMING = {"utkface": (0.95, 0.075), "synthetic": (1.11, 0.107)}
FEATHER = 0.15  # blend ramp width at the crop's edges, as a fraction of the crop side



def define_flags() -> None:
  """The command's flags (defined only when run as a command, so importing this is free)."""
  flags.DEFINE_string("workdir", None, "A trained workdir (its config.py and checkpoints; the "
                      "best checkpoint is used, else the latest).")
  flags.DEFINE_string("output", None, "Folder for the results (created if needed).")
  flags.DEFINE_bool("detect_faces", False, "Find faces in ordinary photos (OpenCV Haar cascade) "
                    "instead of taking each image as an aligned face crop.")
  flags.DEFINE_bool("side_by_side", False, "Also write input | result images.")
  flags.DEFINE_bool("overwrite", False, "Replace existing output files.")


class InputError(Exception):
  """One input that cannot be processed; the others still are."""


def read_photo(path: str) -> np.ndarray:
  """A photo at full size as uint8 [H,W,3] (face_sources.read_photo: EXIF orientation, 16-bit
  and other modes, transparency over white); InputError if it cannot be decoded."""
  try:
    return face_sources.read_photo(path)
  except face_sources.UNREADABLE_ERRORS as e:
    raise InputError(f"{path}: not a readable image ({type(e).__name__}: {e})") from None


def find_inputs(inputs: list[str]) -> tuple[list[tuple[str, str]], list[str]]:
  """(image path, output name without extension) for every input file and every image file in
  input folders (keeping their sub-folders), and one error line per missing input."""
  found, errors = [], []
  for item in inputs:
    if os.path.isdir(item):
      for root, dirs, files in os.walk(item):
        dirs.sort()
        for name in sorted(files):
          if name.lower().endswith(face_sources.IMAGE_EXTENSIONS):
            path = os.path.join(root, name)
            found.append((path, os.path.splitext(os.path.relpath(path, item))[0]))
    elif os.path.isfile(item):
      found.append((item, os.path.splitext(os.path.basename(item))[0]))
    else:
      errors.append(f"{item}: no such file or folder")
  return found, errors


def _to_model(crop: np.ndarray, size: int) -> np.ndarray:
  return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


def _from_model(output: np.ndarray, side: int) -> np.ndarray:
  """Model output [S,S,3] in [0, 1] -> float32 [side, side, 3] in [0, 255]."""
  interpolation = cv2.INTER_CUBIC if side > output.shape[0] else cv2.INTER_AREA
  return np.clip(cv2.resize(output, (side, side), interpolation=interpolation) * 255.0, 0, 255)


def unmask_aligned(photo: np.ndarray, predict, size: int) -> np.ndarray:
  """Unmasks an aligned face crop: its centre square through the model, resized back in place."""
  height, width, _ = photo.shape
  side = min(height, width)
  y, x = (height - side) // 2, (width - side) // 2
  result = photo.copy()
  output = predict(_to_model(photo[y:y + side, x:x + side], size)[None])[0]
  result[y:y + side, x:x + side] = np.round(_from_model(output, side)).astype(np.uint8)
  return result


def load_face_detector():
  """OpenCV's bundled frontal-face Haar cascade."""
  if not hasattr(cv2, "CascadeClassifier"):
    raise RuntimeError(f"OpenCV {cv2.__version__} has no Haar cascades (OpenCV 5 dropped them); "
                       "--detect_faces needs opencv-python-headless<5")
  cascade = cv2.CascadeClassifier(os.path.join(cv2.data.haarcascades, HAAR_CASCADE))
  if cascade.empty():
    raise RuntimeError(f"cannot load {HAAR_CASCADE} from {cv2.data.haarcascades}")
  return cascade


def detect_faces(photo: np.ndarray, cascade) -> list[tuple[int, int, int, int]]:
  """Frontal face boxes (x, y, w, h) found by the Haar cascade."""
  gray = cv2.equalizeHist(cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY))
  min_side = max(24, min(photo.shape[:2]) // 10)
  boxes = cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5,
                                   minSize=(min_side, min_side))
  return [tuple(int(v) for v in box) for box in boxes]


def crop_framing(data_config) -> tuple[float, float]:
  """(scale, shift) of CROP_FRAMING for the faces a model was trained on."""
  return CROP_FRAMING["synthetic" if data_config.source == "synthetic" else "utkface"]


def face_crop_box(box: tuple[int, int, int, int],
                  framing: tuple[float, float]) -> tuple[int, int, int]:
  """(x, y, side): the square crop, framed like the training faces, around a face box."""
  x, y, w, h = box
  scale, shift = framing
  side = max(1, int(round(scale * w)))
  cx, cy = x + w / 2.0, y + h / 2.0 + shift * w
  return int(round(cx - side / 2.0)), int(round(cy - side / 2.0)), side


def feather_weights(side: int) -> np.ndarray:
  """float32 [side, side, 1]: 1 inside, ramping linearly to 0 over the outer FEATHER of the
  square, for blending a crop back into its photo without a seam."""
  ramp = max(1.0, FEATHER * side)
  distance = np.minimum(np.arange(side), np.arange(side)[::-1]) + 0.5
  edge = np.clip(distance / ramp, 0.0, 1.0)
  return np.minimum(edge[:, None], edge[None, :])[..., None].astype(np.float32)


def blend_crop(photo: np.ndarray, crop: np.ndarray, x: int, y: int) -> np.ndarray:
  """Blends float [side, side, 3] `crop` (0..255) into uint8 `photo` at (x, y) with feathered
  edges; parts of the crop outside the photo are dropped."""
  side = crop.shape[0]
  weights = feather_weights(side)
  height, width, _ = photo.shape
  x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + side, width), min(y + side, height)
  result = photo.copy()
  if x0 >= x1 or y0 >= y1:
    return result
  region = result[y0:y1, x0:x1].astype(np.float32)
  part = crop[y0 - y:y1 - y, x0 - x:x1 - x]
  w = weights[y0 - y:y1 - y, x0 - x:x1 - x]
  result[y0:y1, x0:x1] = np.round(w * part + (1.0 - w) * region).astype(np.uint8)
  return result


def square_crop(photo: np.ndarray, x: int, y: int, side: int) -> np.ndarray:
  """photo[y:y+side, x:x+side], edge-replicated where the square leaves the photo."""
  height, width, _ = photo.shape
  x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + side, width), min(y + side, height)
  return cv2.copyMakeBorder(photo[y0:y1, x0:x1], y0 - y, y + side - y1, x0 - x, x + side - x1,
                            cv2.BORDER_REPLICATE)


def unmask_faces(photo: np.ndarray, predict, size: int, cascade,
                 framing: tuple[float, float]) -> tuple[np.ndarray, int]:
  """Unmasks every detected face of an ordinary photo; returns (result, number of faces)."""
  boxes = detect_faces(photo, cascade)
  result = photo
  for box in boxes:
    x, y, side = face_crop_box(box, framing)
    output = predict(_to_model(square_crop(photo, x, y, side), size)[None])[0]
    result = blend_crop(result, _from_model(output, side), x, y)
  return result, len(boxes)


def _write_png(path: str, image: np.ndarray) -> None:
  os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
  workdir.write_png(path, image)


def _outputs_for(output_dir: str, name: str, side_by_side: bool) -> list[str]:
  base = os.path.join(output_dir, name)
  return [base + "_unmasked.png"] + ([base + "_side_by_side.png"] if side_by_side else [])


def _process(path: str, outputs: list[str], trained, data_config, cascade) -> str:
  """Unmasks one input and writes its outputs; returns a one-line report."""
  photo = read_photo(path)
  size = data_config.image_size
  if cascade is not None:
    result, num_faces = unmask_faces(photo, trained.predict, size, cascade,
                                     crop_framing(data_config))
    if not num_faces:
      raise InputError(f"{path}: no face found (for an aligned face crop, run without "
                       "--detect_faces)")
    note = f"{num_faces} face(s)"
  else:
    result, note = unmask_aligned(photo, trained.predict, size), "aligned crop"
  _write_png(outputs[0], result)
  if len(outputs) > 1:
    _write_png(outputs[1], np.concatenate([photo, result], axis=1))
  return f"{path} -> {outputs[0]} ({note}, {photo.shape[1]}x{photo.shape[0]})"


def check_outputs(path: str, outputs: list[str], input_paths: set, planned: set,
                  overwrite: bool) -> None:
  """Raises InputError if an output would be an input, collide with another output of this
  run, or replace an existing file without `overwrite`."""
  for out in outputs:
    if os.path.realpath(out) in input_paths:
      raise InputError(f"{path}: output {out} is an input; choose another --output")
    if out in planned:
      raise InputError(f"{path}: output {out} would also be written for another input")
    if os.path.exists(out) and not overwrite:
      raise InputError(f"{path}: output {out} exists (pass --overwrite to replace it)")


def main(argv):
  FLAGS = flags.FLAGS  # pylint: disable=invalid-name
  inputs = argv[1:]
  if not (FLAGS.workdir and FLAGS.output and inputs):
    raise app.UsageError("usage: python -m maskae.unmask --workdir W INPUT... --output DIR")
  try:
    cascade = load_face_detector() if FLAGS.detect_faces else None
  except RuntimeError as e:
    raise errors.UserError(str(e)) from None
  run_dir = workdir.Workdir(FLAGS.workdir)
  config = run_dir.trained_config()
  trained = inference.restore(run_dir, config)
  logging.info("model: %s (step %d, %s)", trained.directory, trained.step, trained.selected)
  found, failures = find_inputs(inputs)
  for failure in failures:
    print(f"maskae.unmask: error: {failure}", file=sys.stderr, flush=True)
  input_paths = {os.path.realpath(p) for p, _ in found}
  planned, written = set(), 0
  for path, name in found:
    outputs = _outputs_for(FLAGS.output, name, FLAGS.side_by_side)
    try:
      check_outputs(path, outputs, input_paths, planned, FLAGS.overwrite)
      planned.update(outputs)
      print(_process(path, outputs, trained, config.data, cascade), flush=True)
      written += 1
    except InputError as e:
      failures.append(str(e))
      print(f"maskae.unmask: error: {e}", file=sys.stderr, flush=True)
  print(f"maskae.unmask: {written} image(s) unmasked into {FLAGS.output} with "
        f"{trained.directory}" + (f"; {len(failures)} failed" if failures else ""), flush=True)
  return 1 if failures else 0


if __name__ == "__main__":
  define_flags()
  errors.run(main, "maskae.unmask")
