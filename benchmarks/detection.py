"""Face detection on masked faces, and mask placement from detected landmarks vs the template.

  .venv/bin/python benchmarks/detection.py [--faces utkface|synthetic] [--num 200]
      [--canvases 2,4] [--grid docs/landmark_placement.png] [--results benchmarks/RESULTS.md]
      [--quick]

Faces: the first --num validation faces (UTKFace val.txt from ../shared/data, or procedural val
faces at 256 px), masked by maskae's own renderer (default mask config, validation keys).

1. Detection: each masked face is pasted at a random place into a grey canvas --canvases times
   its side. `landmarks.FaceFinder.find` (and, for comparison, OpenCV's Haar cascade, what
   `unmask --detect_faces` used before) runs on every canvas; a face counts as found when the
   largest detection's eye midpoint lies inside the pasted face. Eye error: the mean distance of
   the two found eyes from the reference eyes, over the reference inter-eye distance. Reference:
   the exact eyes of procedural faces; for UTKFace (no annotations), the eyes found on the same
   face without its mask in a 2x canvas. ms / image: wall time of `find` per canvas (one thread
   per call as in `unmask`; cv2 may use both cores inside a call).
2. Placement (UTKFace, the template was measured on these crops): the mean IoU of mask alpha
   (> 0.5) drawn with the same key from the face's detected landmarks and from the template.
3. Reframed faces: each face shrunk (0.6-0.9) and shifted inside its own square (edges
   replicated), so it is framed unlike the training crops. The correct placement is the template
   moved with the face; IoU of that against masks placed from detected landmarks and from the
   unmoved template. --grid writes face | template mask | landmark mask columns.

--framing N instead prints the mean eye centres found on the first N training faces of each
framing (UTKFace train.txt crops, procedural faces at 256 px): landmarks.FRAMING_EYES.
"""

import argparse
import os
import statistics
import sys
import time

if __package__ in (None, ""):  # run as a file: the repository root holds `benchmarks`
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import cv2
import numpy as np

from benchmarks import report
from configs import default
from maskae import face_sources, faces, landmarks, masks, pairs, workdir

UTKFACE = os.path.join(report.REPO, "..", "shared", "data", "utkface")
GREY = 128


def load_faces(kind: str, num: int) -> tuple[np.ndarray, np.ndarray]:
  """uint8 [N, S, S, 3] validation faces and their renderer landmarks [N, 8, 2]."""
  if kind == "synthetic":
    start = face_sources._SYNTHETIC_SPLIT_START["val"]  # pylint: disable=protected-access
    return faces.generate_faces(num, 256, seed=0, start=start)
  list_file = os.path.join(UTKFACE, "val.txt")
  if not os.path.isfile(list_file):
    raise SystemExit(f"detection: no UTKFace at {UTKFACE}; use --faces synthetic")
  with open(list_file) as f:
    names = [line.strip() for line in f if line.strip()][:num]
  images = np.stack([face_sources.read_photo(os.path.join(UTKFACE, "images", n)) for n in names])
  return images, np.broadcast_to(masks.UTKFACE_TEMPLATE, (len(images), 8, 2)).copy()


def draw_masks(images: np.ndarray, marks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(masked uint8 images, alpha [N, S, S]) from the validation keys of examples 0..N-1
  (pairs.render_on_host with the default mask config, 16 at a time)."""
  config = default.get_config()
  example = np.stack([np.zeros(len(images)), np.arange(len(images))], -1).astype(np.uint32)
  masked, alpha = [], []
  for start in range(0, len(images), 16):
    part = slice(start, start + 16)
    pair = pairs.render_on_host({"image": images[part], "landmarks": marks[part].astype(
        np.float32), "example": example[part]}, config, "val")
    masked.append(np.round(pair["masked"] * 255.0).astype(np.uint8))
    alpha.append(pair["alpha"][..., 0])
  return np.concatenate(masked), np.concatenate(alpha)


def paste(face: np.ndarray, factor: int, rng) -> tuple[np.ndarray, np.ndarray]:
  """(canvas, offset (x, y)): `face` at a random place in a grey canvas `factor` times its side."""
  side = face.shape[0]
  canvas = np.full((side * factor, side * factor, 3), GREY, np.uint8)
  x, y = rng.integers(0, side * (factor - 1) + 1, size=2)
  canvas[y:y + side, x:x + side] = face
  return canvas, np.array([x, y], np.float32)


def eye_error(found: np.ndarray, reference: np.ndarray) -> float:
  """Mean eye distance over the reference inter-eye distance (eyes: [2, 2] pixels)."""
  return float(np.linalg.norm(found - reference, axis=1).mean()
               / np.linalg.norm(reference[1] - reference[0]))


def detection_rows(finder, images, masked, marks, kind, canvases, rng):
  """The detection table's rows and the per-canvas figures."""
  side = images.shape[1]
  cascade = cv2.CascadeClassifier(os.path.join(cv2.data.haarcascades,
                                               "haarcascade_frontalface_default.xml"))
  references = []
  for k, image in enumerate(images):
    if kind == "synthetic":
      references.append(marks[k, :2] * side)
      continue
    canvas, offset = paste(image, 2, rng)
    found = finder.find(canvas, max_faces=1)
    references.append(found[0].points[:2] - offset if found else None)
  unreferenced = sum(r is None for r in references)
  rows = []
  for factor in canvases:
    found_count, errors, times, haar = 0, [], [], 0
    for k, face in enumerate(masked):
      canvas, offset = paste(face, factor, rng)
      start = time.perf_counter()
      found = finder.find(canvas, max_faces=1)
      times.append(time.perf_counter() - start)
      if found:
        eyes = found[0].points[:2] - offset
        if np.all((eyes.mean(0) >= 0) & (eyes.mean(0) < side)):
          found_count += 1
          if references[k] is not None:
            errors.append(eye_error(eyes, references[k]))
      gray = cv2.equalizeHist(cv2.cvtColor(canvas, cv2.COLOR_RGB2GRAY))
      boxes = cascade.detectMultiScale(gray, 1.1, 5, minSize=(max(24, side // 10),) * 2)
      haar += any(x <= offset[0] + side / 2 <= x + w and y <= offset[1] + side / 2 <= y + h
                  for x, y, w, h in boxes)
    n = len(masked)
    rows.append([f"{factor}x ({side * factor} px)", n, 100.0 * found_count / n,
                 statistics.median(errors) if errors else float("nan"),
                 float(np.mean(errors)) if errors else float("nan"),
                 float(np.percentile(errors, 95)) if errors else float("nan"),
                 100.0 * float(np.mean(np.asarray(errors) <= 0.05)) if errors else float("nan"),
                 1000.0 * statistics.median(times), 1000.0 * float(np.mean(times)),
                 100.0 * haar / n])
    print(report.table(DETECTION_HEADER, rows[-1:]), flush=True)
  return rows, unreferenced


DETECTION_HEADER = ["canvas", "faces", "found %", "eye err median", "eye err mean",
                    "eye err p95", "eye err <= 0.05 %", "ms / image median", "ms / image mean",
                    "Haar found %"]


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  """Per-example IoU of alpha > 0.5 ([N, S, S] each)."""
  a, b = a > 0.5, b > 0.5
  return (a & b).sum((1, 2)) / np.maximum((a | b).sum((1, 2)), 1)


def detected_marks(finder, images) -> tuple[np.ndarray, np.ndarray]:
  """(renderer landmarks [N, 8, 2] found on each image, found [N] bool)."""
  marks = np.zeros((len(images), 8, 2), np.float32)
  found = np.zeros(len(images), bool)
  for k, image in enumerate(images):
    hit = finder.find(image, max_faces=1)
    if hit:
      marks[k], found[k] = landmarks.mask_landmarks(hit[0].points, image.shape[:2]), True
  return marks, found


def reframe(images: np.ndarray, rng) -> tuple[np.ndarray, np.ndarray]:
  """Faces shrunk by 0.6-0.9 and shifted within their square (edges replicated), and the 2x3
  maps that moved them."""
  side = images.shape[1]
  out, maps = np.empty_like(images), []
  for k, image in enumerate(images):
    scale = rng.uniform(0.6, 0.9)
    room = side * (1 - scale)
    shift = rng.uniform(0.1 * room, 0.9 * room, size=2)
    matrix = np.array([[scale, 0, shift[0]], [0, scale, shift[1]]])
    out[k] = cv2.warpAffine(image, matrix, (side, side), flags=cv2.INTER_AREA,
                            borderMode=cv2.BORDER_REPLICATE)
    maps.append(matrix)
  return out, np.stack(maps)


def print_framing(finder, num: int) -> None:
  """The mean eyes ([0, 1] of the crop) found on training faces of each framing."""
  sets = {"synthetic": faces.generate_faces(num, 256, seed=0, start=0)[0]}
  list_file = os.path.join(UTKFACE, "train.txt")
  if os.path.isfile(list_file):
    with open(list_file) as f:
      names = [line.strip() for line in f if line.strip()][:num]
    sets["utkface"] = [face_sources.read_photo(os.path.join(UTKFACE, "images", n)) for n in names]
  for name, images in sets.items():
    eyes = [found[0].points[:2] / np.float32(image.shape[1::-1])
            for image in images for found in [finder.find(image, max_faces=1)] if found]
    print(f"{name}: {len(eyes)} of {len(images)} found; mean eyes "
          f"{np.round(np.mean(eyes, 0).astype(float), 4).tolist()}, median "
          f"{np.round(np.median(eyes, 0).astype(float), 4).tolist()}", flush=True)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--framing", type=int, default=0,
                      help="print the training framings' mean eyes over this many faces, only")
  parser.add_argument("--faces", default=None, choices=("utkface", "synthetic"))
  parser.add_argument("--num", type=int, default=None)
  parser.add_argument("--canvases", default="2,4")
  parser.add_argument("--grid", default="", help="write the reframed-faces grid here (png)")
  parser.add_argument("--grid_faces", type=int, default=6)
  parser.add_argument("--seed", type=int, default=0)
  args = report.parse_args(parser, full={"faces": "utkface", "num": 200},
                           quick={"faces": "synthetic", "num": 4})
  load_log = report.LoadLog()
  rng = np.random.default_rng(args.seed)
  finder = landmarks.FaceFinder()
  if args.framing:
    print_framing(finder, args.framing)
    return
  images, marks = load_faces(args.faces, args.num)
  masked, alpha = draw_masks(images, marks)
  canvases = [int(c) for c in args.canvases.split(",")]
  rows, unreferenced = detection_rows(finder, images, masked, marks, args.faces, canvases, rng)
  load_log.sample()
  side = images.shape[1]
  body = (f"{args.num} {args.faces} validation faces ({side} px) with maskae's masks, each "
          f"pasted at a random place into a grey canvas; {landmarks.VERSION} through cv2.dnn "
          f"(OpenCV {cv2.__version__}). Eye error: of the largest face, over the reference "
          f"inter-eye distance; reference: "
          + ("the exact procedural eyes" if args.faces == "synthetic" else
             f"eyes found on the unmasked face ({unreferenced} of {args.num} without one)")
          + ".\n\n" + report.table(DETECTION_HEADER, rows))

  found_marks, found = detected_marks(finder, images)
  _, alpha_found = draw_masks(images, np.where(found[:, None, None], found_marks, marks))
  placement = iou(alpha, alpha_found)[found]
  body += (f"\n\nPlacement: masks drawn from landmarks found on the unmasked faces ({found.sum()} "
           f"of {len(images)}) vs from the landmarks the source gives (" +
           ("exact" if args.faces == "synthetic" else "the UTKFace template") +
           f"), same keys: alpha IoU mean {placement.mean():.3f}, median "
           f"{np.median(placement):.3f}, 10th percentile {np.percentile(placement, 10):.3f}.")
  print(body.rsplit("\n\n", 1)[-1], flush=True)

  moved, maps = reframe(images, rng)
  truth = np.stack([landmarks.transform_points(m, marks[k] * side) / side
                    for k, m in enumerate(maps)])
  _, alpha_truth = draw_masks(moved, truth)
  masked_template, alpha_template = draw_masks(moved, marks)
  moved_marks, moved_found = detected_marks(finder, moved)
  masked_landmark, alpha_landmark = draw_masks(
      moved, np.where(moved_found[:, None, None], moved_marks, marks))
  with_template = iou(alpha_truth, alpha_template)
  with_landmarks = iou(alpha_truth, alpha_landmark)[moved_found]
  body += (f"\n\nReframed faces (shrunk 0.6-0.9, shifted): IoU with the correct placement (the "
           f"landmarks moved with the face): template {with_template.mean():.3f} (all "
           f"{len(images)}), detected landmarks {with_landmarks.mean():.3f} ({moved_found.sum()} "
           f"found).")
  print(body.rsplit("\n\n", 1)[-1], flush=True)
  if args.grid:
    count = min(args.grid_faces, len(images))
    rows_img = [np.concatenate([moved[k], masked_template[k], masked_landmark[k]], axis=1)
                for k in range(count)]
    workdir.write_png(args.grid, np.concatenate(rows_img, axis=0))
    print(f"wrote {args.grid}: rows of reframed face | template mask | landmark mask", flush=True)
  report.append(args.results, f"Face detection and landmark placement ({args.faces})", body,
                load_log, packages=("numpy", "opencv-python-headless", "jax"))


if __name__ == "__main__":
  main()
