"""The README's "Unmask real photos" picture: docs/unmask_real_photo.png.

  .venv/bin/python docs/make_unmask_example.py --workdir runs/utkface

Composes a photo from two UTKFace validation faces (../shared/data) masked by maskae's renderer:
one large and turned by 8 degrees, one small, on a smooth background. Runs the real command,
`python -m maskae.unmask --workdir W photo.png --detect_faces --side_by_side`, and keeps its
side-by-side output. Prints the PSNR of each face's masked pixels against the same photo composed
from the clean faces, before and after.
"""

import argparse
import os
import subprocess
import sys
import tempfile

import cv2
import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from benchmarks import detection  # noqa: E402  (after the sys.path line)
from maskae import workdir  # noqa: E402

OUTPUT = os.path.join(REPO, "docs", "unmask_real_photo.png")
# (validation face index, side in the photo, turn in degrees, centre x, centre y)
PLACEMENTS = ((1, 250, 8.0, 210, 215), (4, 140, -4.0, 560, 250))
PHOTO = (430, 720)


def compose(faces: np.ndarray, alpha: np.ndarray | None = None):
  """The photo (uint8 [H, W, 3]) with each placed face, and (with `alpha`) each face's mask
  alpha warped into the photo."""
  height, width = PHOTO
  ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
  photo = np.stack([150 + 40 * xs / width, 140 + 30 * ys / height, 120 + 0 * xs], -1)
  regions = []
  for (index, side, turn, cx, cy) in PLACEMENTS:
    face = faces[index]
    scale = side / face.shape[0]
    matrix = cv2.getRotationMatrix2D((face.shape[1] / 2, face.shape[0] / 2), turn, scale)
    matrix[:, 2] += [cx - face.shape[1] / 2, cy - face.shape[0] / 2]
    inside = cv2.warpAffine(np.ones(face.shape[:2], np.float32), matrix, (width, height))[..., None]
    warped = cv2.warpAffine(face.astype(np.float32), matrix, (width, height))
    photo = inside * warped + (1 - inside) * photo
    if alpha is not None:
      regions.append(cv2.warpAffine(alpha[index], matrix, (width, height)) > 0.5)
  return np.clip(np.round(photo), 0, 255).astype(np.uint8), regions


def psnr(a: np.ndarray, b: np.ndarray, where: np.ndarray) -> float:
  mse = np.mean((a[where].astype(np.float64) - b[where]) ** 2)
  return float(10 * np.log10(255.0 ** 2 / mse))


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--workdir", required=True, help="a model trained on UTKFace crops")
  parser.add_argument("--output", default=OUTPUT)
  args = parser.parse_args()
  clean, marks = detection.load_faces("utkface", 8)
  masked, alpha = detection.draw_masks(clean, marks)
  photo, regions = compose(masked, alpha)
  reference, _ = compose(clean)
  with tempfile.TemporaryDirectory() as tmp:
    workdir.write_png(os.path.join(tmp, "photo.png"), photo)
    result = subprocess.run(
        [sys.executable, "-m", "maskae.unmask", "--workdir", args.workdir,
         os.path.join(tmp, "photo.png"), "--output", os.path.join(tmp, "out"), "--detect_faces",
         "--side_by_side"], cwd=REPO, capture_output=True, text=True, check=False)
    print(result.stdout.strip())
    if result.returncode:
      raise SystemExit(result.stderr[-2000:])
    side_by_side = cv2.imread(os.path.join(tmp, "out", "photo_side_by_side.png"))[..., ::-1]
  unmasked = side_by_side[:, PHOTO[1]:]
  for k, region in enumerate(regions):
    print(f"face {k + 1}: PSNR of its masked pixels {psnr(photo, reference, region):.2f} dB "
          f"before, {psnr(unmasked, reference, region):.2f} dB after")
  workdir.write_png(args.output, np.ascontiguousarray(side_by_side))
  print(f"wrote {args.output}")


if __name__ == "__main__":
  main()
