"""Faces and their landmarks in photos, and the similarity transforms that align them.

MediaPipe's BlazeFace (short range) finds faces and FaceMesh puts 468 points on each; both run
through OpenCV's TFLite importer (`cv2.dnn.readNetFromTFLite`, OpenCV >= 4.8), so no other
runtime is needed and the weights ship inside the package (maskae/weights/, Apache-2.0, see
maskae/weights/README.md). Everything else in maskae uses this module through `FaceFinder.find`,
`Face.points` and `alignment`, so the detector can be swapped here alone.

Named points (`NAMES`, pixel x, y): masks.LANDMARK_NAMES (eyes, nose bridge, nose tip, mouth,
chin, and the jaw contour at the nose tip's height as left_face / right_face), then the jaw contour
at the mouth's height (left_jaw, right_jaw). "left" is the image's left.
"""

import dataclasses
import os

import cv2
import numpy as np

from maskae import masks

WEIGHTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights")
DETECTOR_WEIGHTS = "face_detection_short_range.tflite"
MESH_WEIGHTS = "face_landmark.tflite"
# Names the detector and the point definitions in fingerprints: change it when either changes.
VERSION = "blazeface_short_range+face_mesh_468:v1"
NAMES = masks.LANDMARK_NAMES + ("left_jaw", "right_jaw")

MIN_SCORE = 0.4  # BlazeFace score (MediaPipe: 0.5; 0.4 finds more masked faces on validation)
NMS_IOU = 0.3  # boxes overlapping more are one face (weighted average, as MediaPipe)
REFINE = 1  # FaceMesh passes after the first, each from the last one's points (MediaPipe tracking)
TILE_MIN_SIDE = 512  # photos this large (long side) are also searched in tiles
TILE_FRACTION = 0.6  # a tile's side, of the photo's long side (2 x 2 tiles overlap by 0.2)
ROI_SCALE = 1.5  # FaceMesh crop side / detection box side (MediaPipe)
_DETECTOR_SIZE, _MESH_SIZE = 128, 192
# BlazeFace short-range SSD anchors: (grid stride, anchors per cell).
_ANCHOR_LAYERS = ((8, 2), (16, 6))

# Mean eye centres ([0, 1] of the crop) found by this module on the training framings: 1,000
# UTKFace train crops, 1,000 procedural train faces at 256 px (medians within 0.002;
# `python benchmarks/detection.py --framing 1000`). Aligning a photo's eyes to them frames its
# face like those training crops.
FRAMING_EYES = {"utkface": np.array([[0.2866, 0.3028], [0.6873, 0.3017]]),
                "synthetic": np.array([[0.3338, 0.2948], [0.6731, 0.2982]])}

# FaceMesh (canonical MediaPipe topology) indices of the named points.
_EYE_CORNERS = ((33, 133), (362, 263))  # image-left eye, image-right eye
_NOSE_BRIDGE, _NOSE_TIP, _CHIN = 197, 1, 152  # bridge: a third of the way eyes -> tip
_LIPS = (13, 14)  # inner upper and lower lip at the centre line
_FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378,
              400, 377, 152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54,
              103, 67, 109)


def _anchors() -> np.ndarray:
  """[896, 2] anchor centres (x, y) in [0, 1] of the detector's outputs, in output order."""
  centres = []
  for stride, per_cell in _ANCHOR_LAYERS:
    grid = _DETECTOR_SIZE // stride
    ys, xs = np.meshgrid(np.arange(grid), np.arange(grid), indexing="ij")
    cell = np.stack([(xs + 0.5) / grid, (ys + 0.5) / grid], -1).reshape(-1, 1, 2)
    centres.append(np.repeat(cell, per_cell, axis=1).reshape(-1, 2))
  return np.concatenate(centres).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class Face:
  """One face in a photo, all in the photo's pixels."""

  box: np.ndarray  # [4] x0, y0, x1, y1
  score: float  # detector score
  mesh: np.ndarray  # [468, 3] FaceMesh points (x, y, relative depth)

  @property
  def points(self) -> np.ndarray:
    """float32 [len(NAMES), 2]: the named points (x, y)."""
    return named_points(self.mesh[:, :2])

  @property
  def inter_eye(self) -> float:
    """Distance between the eye centres (pixels)."""
    points = self.points
    return float(np.linalg.norm(points[1] - points[0]))


def _jaw_at(oval: np.ndarray, origin: np.ndarray, axis_x: np.ndarray, height: float):
  """The face-oval contour's leftmost and rightmost points where it crosses the line at `height`
  (along the face's vertical axis, from `origin`) parallel to `axis_x`."""
  axis_y = np.array([-axis_x[1], axis_x[0]])
  local = np.stack([(oval - origin) @ axis_x, (oval - origin) @ axis_y], -1)
  a, b = local, np.roll(local, -1, axis=0)
  crosses = (a[:, 1] - height) * (b[:, 1] - height) <= 0
  t = (height - a[crosses, 1]) / np.where(b[crosses, 1] == a[crosses, 1], 1e-6,
                                          b[crosses, 1] - a[crosses, 1])
  xs = a[crosses, 0] + t * (b[crosses, 0] - a[crosses, 0])
  if not len(xs):  # cannot happen on a closed contour around the point; keep the width finite
    xs = local[:, 0]
  return [origin + x * axis_x + height * axis_y for x in (xs.min(), xs.max())]


def named_points(mesh_xy: np.ndarray) -> np.ndarray:
  """float32 [len(NAMES), 2] named points of a FaceMesh [468, 2] (pixels)."""
  eyes = [mesh_xy[list(corners)].mean(0) for corners in _EYE_CORNERS]
  tip, mouth = mesh_xy[_NOSE_TIP], mesh_xy[list(_LIPS)].mean(0)
  eye_line = eyes[1] - eyes[0]
  axis_x = eye_line / max(float(np.linalg.norm(eye_line)), 1e-6)
  axis_y = np.array([-axis_x[1], axis_x[0]])
  oval = mesh_xy[list(_FACE_OVAL)]
  left_face, right_face = _jaw_at(oval, tip, axis_x, 0.0)
  left_jaw, right_jaw = _jaw_at(oval, tip, axis_x, float((mouth - tip) @ axis_y))
  return np.stack([eyes[0], eyes[1], mesh_xy[_NOSE_BRIDGE], tip, mouth, mesh_xy[_CHIN],
                   left_face, right_face, left_jaw, right_jaw]).astype(np.float32)


def mask_landmarks(points: np.ndarray, size: tuple[int, int]) -> np.ndarray:
  """The renderer's float32 [len(masks.LANDMARK_NAMES), 2] landmarks in [0, 1] from named points
  in pixels of an image of `size` (height, width)."""
  height, width = size
  return (points[:len(masks.LANDMARK_NAMES)] / np.array([width, height], np.float32)).astype(
      np.float32)


def _weighted_nms(boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray):
  """MediaPipe's weighted non-maximum suppression: each cluster of boxes overlapping the best
  remaining one by more than NMS_IOU becomes their score-weighted average."""
  order = np.argsort(-scores)
  kept = []
  while len(order):
    best = boxes[order[0]]
    x0 = np.maximum(best[0], boxes[order, 0])
    y0 = np.maximum(best[1], boxes[order, 1])
    x1 = np.minimum(best[2], boxes[order, 2])
    y1 = np.minimum(best[3], boxes[order, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (boxes[order, 2] - boxes[order, 0]) * (boxes[order, 3] - boxes[order, 1])
    best_area = (best[2] - best[0]) * (best[3] - best[1])
    iou = inter / np.maximum(area + best_area - inter, 1e-9)
    cluster, order = order[iou > NMS_IOU], order[iou <= NMS_IOU]
    weights = scores[cluster][:, None]
    kept.append(((boxes[cluster] * weights).sum(0) / weights.sum(),
                 (keypoints[cluster] * weights[:, :, None]).sum(0) / weights.sum(),
                 float(scores[cluster[0]])))
  return kept


def _square_roi(box: np.ndarray, eyes: np.ndarray) -> np.ndarray:
  """2x3 affine map from the photo to FaceMesh's input: a square ROI_SCALE times the box's long
  side around its centre, turned so that the detector's eye keypoints are level."""
  centre = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
  side = ROI_SCALE * max(box[2] - box[0], box[3] - box[1])
  eye_line = eyes[1] - eyes[0]
  angle = np.arctan2(eye_line[1], eye_line[0])
  ex = np.array([np.cos(angle), np.sin(angle)]) * side / 2
  ey = np.array([-np.sin(angle), np.cos(angle)]) * side / 2
  src = np.float32([centre - ex - ey, centre + ex - ey, centre - ex + ey])
  dst = np.float32([[0, 0], [_MESH_SIZE, 0], [0, _MESH_SIZE]])
  return cv2.getAffineTransform(src, dst)


class FaceFinder:
  """Finds faces and their FaceMesh points in RGB uint8 photos. Holds two cv2.dnn networks: use
  one FaceFinder per thread."""

  def __init__(self, min_score: float = MIN_SCORE):
    self.min_score = min_score
    self._detector = _read_net(DETECTOR_WEIGHTS)
    self._mesh = _read_net(MESH_WEIGHTS)
    self._anchors = _anchors()

  def _detect_square(self, square: np.ndarray):
    """Raw BlazeFace detections of a square image: boxes [n, 4], keypoints [n, 6, 2] (both in
    [0, 1] of the square) and scores [n], those of at least min_score."""
    blob = cv2.dnn.blobFromImage(square, 1 / 127.5, (_DETECTOR_SIZE, _DETECTOR_SIZE),
                                 (127.5, 127.5, 127.5), swapRB=False)
    self._detector.setInput(blob)
    outputs = self._detector.forward(self._detector.getUnconnectedOutLayersNames())
    regressors = next(o for o in outputs if o.shape[-1] == 16).reshape(-1, 16)
    logits = next(o for o in outputs if o.shape[-1] == 1).reshape(-1)
    scores = 1.0 / (1.0 + np.exp(-np.clip(logits, -80, 80)))
    keep = scores >= self.min_score
    anchors, reg = self._anchors[keep], regressors[keep] / _DETECTOR_SIZE
    centres, sizes = anchors + reg[:, :2], reg[:, 2:4]
    boxes = np.concatenate([centres - sizes / 2, centres + sizes / 2], -1)
    return boxes, anchors[:, None, :] + reg[:, 4:].reshape(-1, 6, 2), scores[keep]

  def detect(self, photo: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """BlazeFace detections of `photo` as (box [4], eye keypoints [2, 2], score), in pixels.
    The photo is letterboxed to a square; one of TILE_MIN_SIDE or more is also searched in its
    four TILE_FRACTION-sized corner tiles, for faces too small at the detector's 128 px
    (overlapping detections merge)."""
    height, width = photo.shape[:2]
    side = max(height, width)
    top, left = (side - height) // 2, (side - width) // 2
    square = cv2.copyMakeBorder(photo, top, side - height - top, left, side - width - left,
                                cv2.BORDER_CONSTANT, value=(0, 0, 0))
    work = _DETECTOR_SIZE if side < TILE_MIN_SIDE else int(round(_DETECTOR_SIZE / TILE_FRACTION))
    square = cv2.resize(square, (work, work), interpolation=cv2.INTER_AREA if side > work
                        else cv2.INTER_LINEAR)  # once, by area: no aliasing
    windows = [(0, 0, work)]
    if work > _DETECTOR_SIZE:
      corners = (0, work - _DETECTOR_SIZE)
      windows += [(x, y, _DETECTOR_SIZE) for y in corners for x in corners]
    return self._windows(square, windows, side, left, top)

  def _windows(self, square, windows, side: int, left: int, top: int):
    """Detections in `windows` (x, y, size) of the resized letterboxed `square`, merged by NMS
    and mapped back to the photo (whose letterbox had `side`, `left` and `top`)."""
    scale = side / square.shape[0]
    boxes, keypoints, scores = [], [], []
    for x, y, size in windows:
      b, k, s = self._detect_square(square[y:y + size, x:x + size])
      boxes.append((b * size + np.array([x, y, x, y], np.float32)) * scale)
      keypoints.append((k * size + np.array([x, y], np.float32)) * scale)
      scores.append(s)
    scores = np.concatenate(scores)
    if not len(scores):
      return []
    offset = np.array([left, top], np.float32)
    return [(box - np.tile(offset, 2), points[:2] - offset, score)
            for box, points, score in _weighted_nms(np.concatenate(boxes),
                                                    np.concatenate(keypoints), scores)]

  def mesh(self, photo: np.ndarray, box: np.ndarray, eyes: np.ndarray) -> np.ndarray:
    """FaceMesh points [468, 3] (pixels) in the ROI of one detection. FaceMesh's own
    face-presence score is not used: it is low on many masked faces whose points are still
    good (benchmarks/detection.py), so the detector's score alone decides."""
    roi = _square_roi(box, eyes)
    crop = cv2.warpAffine(photo, roi, (_MESH_SIZE, _MESH_SIZE), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT)
    self._mesh.setInput(cv2.dnn.blobFromImage(crop, 1 / 255.0, swapRB=False))
    outputs = self._mesh.forward(self._mesh.getUnconnectedOutLayersNames())
    points = next(o for o in outputs if o.size == 468 * 3).reshape(468, 3)
    back = cv2.invertAffineTransform(roi)
    xy = points[:, :2] @ back[:, :2].T + back[:, 2]
    scale = float(np.sqrt(abs(np.linalg.det(back[:, :2]))))
    return np.concatenate([xy, points[:, 2:] * scale], -1).astype(np.float32)

  def find(self, photo: np.ndarray, max_faces: int | None = None) -> list[Face]:
    """The faces of an RGB uint8 photo [H, W, 3], largest first (at most `max_faces`)."""
    faces = []
    for box, eyes, score in self.detect(photo):
      mesh = self.mesh(photo, box, eyes)
      for _ in range(REFINE):  # MediaPipe's tracking step: the next ROI from the points
        xy = mesh[:, :2]
        mesh = self.mesh(photo, np.concatenate([xy.min(0), xy.max(0)]), named_points(xy)[:2])
      faces.append(Face(box=box.astype(np.float32), score=score, mesh=mesh))
    faces.sort(key=lambda face: -face.inter_eye)
    return faces[:max_faces]


def _read_net(name: str):
  path = os.path.join(WEIGHTS_DIR, name)
  if not hasattr(cv2.dnn, "readNetFromTFLite"):
    raise RuntimeError(f"OpenCV {cv2.__version__} cannot read TFLite models (needs >= 4.8): "
                       "face detection is unavailable")
  if not os.path.isfile(path):
    raise RuntimeError(f"face detection weights missing: {path} (reinstall maskae)")
  return cv2.dnn.readNetFromTFLite(path)


def framing_eyes(data_config) -> np.ndarray:
  """The eyes [2, 2] of the framing a data config's faces have (FRAMING_EYES): procedural
  faces', or those of data.landmark_template (real sources, aligned or aligned on decode)."""
  name = "synthetic" if data_config.source == "synthetic" else data_config.landmark_template
  if name not in FRAMING_EYES:
    raise ValueError(f'data.landmark_template "{name}" has no measured framing; known: '
                     f'{", ".join(FRAMING_EYES)}')
  return FRAMING_EYES[name]


def alignment(points: np.ndarray, size: int, target_eyes: np.ndarray) -> np.ndarray:
  """2x3 similarity (rotation, uniform scale, shift) that takes a photo to a `size` x `size`
  crop with the eyes of `points` (named points, pixels) at `target_eyes` [2, 2] (in [0, 1] of the
  crop: the training framing)."""
  source = points[0, 0] + 1j * points[0, 1], points[1, 0] + 1j * points[1, 1]
  target = [complex(*(np.asarray(eye, np.float64) * size)) for eye in target_eyes]
  a = (target[1] - target[0]) / (source[1] - source[0])
  b = target[0] - a * source[0]
  return np.array([[a.real, -a.imag, b.real], [a.imag, a.real, b.imag]], np.float64)


def transform_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
  """Points [..., 2] through a 2x3 affine map."""
  return (points @ matrix[:, :2].T + matrix[:, 2]).astype(np.float32)


def warp(photo: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
  """The `size` x `size` crop of `photo` under `matrix` (from `alignment`): area-downscaled
  first where the crop is much smaller than the face, edges replicated."""
  scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
  if scale < 0.5:  # bilinear sampling would alias: shrink the photo by area first
    small = cv2.resize(photo, None, fx=scale * 2, fy=scale * 2, interpolation=cv2.INTER_AREA)
    fx = small.shape[1] / photo.shape[1]
    fy = small.shape[0] / photo.shape[0]
    matrix = matrix @ np.diag([1 / fx, 1 / fy, 1.0])
    photo = small
  return cv2.warpAffine(photo, matrix, (size, size), flags=cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_REPLICATE)
