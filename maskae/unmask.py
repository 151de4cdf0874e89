"""Unmask your own photos: `python -m maskae.unmask --workdir W INPUT... --output DIR`.

INPUTs are image files or folders (searched recursively). By default each image is taken as an
aligned face crop: its centre square is resized to the model's size, unmasked, resized back and
written. With --detect_faces, maskae.landmarks finds every face of an ordinary photo (masked or
not) and its landmarks; each face is aligned by its eyes to the framing of the model's training
crops, unmasked, warped back and blended in (feathered at the crop's edges).
Writes DIR/<name>_unmasked.png (and, with --side_by_side, DIR/<name>_side_by_side.png), never
replaces an existing file unless --overwrite, never writes over an input. No TensorFlow here.
"""

import os
import sys

import cv2
import numpy as np
from absl import app, flags, logging

from maskae import errors, face_sources, inference, landmarks, workdir

FEATHER = 0.06  # blend ramp width at the crop's edges, as a fraction of the crop side (the mask
# reaches down to the crop's lower edge, so a wide ramp would leave part of it)


def define_flags() -> None:
  """The command's flags (defined only when run as a command, so importing this is free)."""
  flags.DEFINE_string("workdir", None, "A trained workdir (its config.py and checkpoints; the "
                      "best checkpoint is used, else the latest).")
  flags.DEFINE_string("output", None, "Folder for the results (created if needed).")
  flags.DEFINE_bool("detect_faces", False, "Find the faces of ordinary photos and align each by "
                    "its landmarks (maskae.landmarks) instead of taking each image as an "
                    "aligned face crop.")
  flags.DEFINE_integer("max_faces", 0, "With --detect_faces: unmask at most this many faces "
                       "per photo, largest first (0: all).", lower_bound=0)
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


def feather_weights(side: int) -> np.ndarray:
  """float32 [side, side]: 1 inside, ramping linearly to 0 over the outer FEATHER of the square,
  for blending a crop back into its photo without a seam."""
  ramp = max(1.0, FEATHER * side)
  distance = np.minimum(np.arange(side), np.arange(side)[::-1]) + 0.5
  edge = np.clip(distance / ramp, 0.0, 1.0)
  return np.minimum(edge[:, None], edge[None, :]).astype(np.float32)


def paste_back(photo: np.ndarray, output: np.ndarray, matrix: np.ndarray) -> np.ndarray:
  """Blends the model's output for an aligned crop (float [S, S, 3] in [0, 1]; `matrix` took the
  photo to the crop) back into uint8 `photo`: warped back (cubic), feathered at the crop's edges;
  parts outside the photo are dropped."""
  side = output.shape[0]
  height, width, _ = photo.shape
  corners = landmarks.transform_points(cv2.invertAffineTransform(matrix),
                                       np.float32([[0, 0], [side, 0], [0, side], [side, side]]))
  x0, y0 = np.maximum(np.floor(corners.min(0)).astype(int), 0)
  x1, y1 = np.minimum(np.ceil(corners.max(0)).astype(int), [width, height])
  result = photo.copy()
  if x0 >= x1 or y0 >= y1:
    return result
  region = matrix.copy()  # photo region pixels -> crop pixels
  region[:, 2] += matrix[:, :2] @ np.array([x0, y0], np.float64)
  size, flags = (int(x1 - x0), int(y1 - y0)), cv2.WARP_INVERSE_MAP
  back = cv2.warpAffine(np.clip(output, 0, 1) * 255.0, region, size,
                        flags=cv2.INTER_CUBIC | flags, borderMode=cv2.BORDER_CONSTANT)
  weight = cv2.warpAffine(feather_weights(side), region, size, flags=cv2.INTER_LINEAR | flags,
                          borderMode=cv2.BORDER_CONSTANT)[..., None]
  original = result[y0:y1, x0:x1].astype(np.float32)
  result[y0:y1, x0:x1] = np.round(weight * np.clip(back, 0, 255)
                                  + (1.0 - weight) * original).astype(np.uint8)
  return result


def unmask_faces(photo: np.ndarray, predict, size: int, finder: landmarks.FaceFinder,
                 eyes: np.ndarray, max_faces: int | None = None) -> tuple[np.ndarray, int]:
  """Unmasks every face found in an ordinary photo, each aligned by its eyes to `eyes` (the
  training framing), unmasked and blended back; returns (result, number of faces)."""
  found = finder.find(photo, max_faces=max_faces)
  result = photo
  for face in found:
    matrix = landmarks.alignment(face.points, size, eyes)
    crop = landmarks.warp(photo, matrix, size).astype(np.float32) / 255.0
    result = paste_back(result, predict(crop[None])[0], matrix)
  return result, len(found)


def _write_png(path: str, image: np.ndarray) -> None:
  os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
  workdir.write_png(path, image)


def _outputs_for(output_dir: str, name: str, side_by_side: bool) -> list[str]:
  base = os.path.join(output_dir, name)
  return [base + "_unmasked.png"] + ([base + "_side_by_side.png"] if side_by_side else [])


def _process(path: str, outputs: list[str], trained, data_config, finder,
             max_faces: int | None) -> str:
  """Unmasks one input and writes its outputs; returns a one-line report."""
  photo = read_photo(path)
  size = data_config.image_size
  if finder is not None:
    result, num_faces = unmask_faces(photo, trained.predict, size, finder,
                                     landmarks.framing_eyes(data_config), max_faces)
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
    finder = landmarks.FaceFinder() if FLAGS.detect_faces else None
  except RuntimeError as e:
    raise errors.UserError(str(e)) from None
  run_dir = workdir.Workdir(FLAGS.workdir)
  config = run_dir.trained_config()
  if finder is not None:
    try:
      landmarks.framing_eyes(config.data)
    except ValueError as e:
      raise errors.UserError(f"{FLAGS.workdir}: {e}") from None
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
      print(_process(path, outputs, trained, config.data, finder, FLAGS.max_faces or None),
            flush=True)
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
