"""Mask-pair input pipeline: face sources -> synthesized masks -> batched tf.data pairs.

Every example is a dict of float32 arrays in [0, 1]: `masked` [H,W,3], `clean` [H,W,3] and the
mask's `alpha` [H,W,1]. Faces are decoded once (maskae.face_sources) and cached as the FaceSet
arrays in a tf.Variable; everything per example runs as TF ops inside tf.data (parallel map,
stateless random ops, no Python callbacks), so pairs depend only on (seed, split, example index):
- validation / test example i is the same on every run, host and machine;
- training example k (a global counter, k = step * global_batch + position) uses face
  `index_shuffle(k mod N)` of epoch k // N, so a run resumed at step s sees exactly the pairs it
  would have seen, with no skipping through the data.

Multi-host: `train_dataset` yields this host's contiguous slice [B / process_count, ...] of every
global batch of B. There is no per-device reshape: train.py hands these host-local batches to
`jax.make_array_from_process_local_data` (train_step.shard_batch) over the 1-D `data` mesh, which
places one slice of the batch dimension on each device.
"""

import dataclasses
import functools

import ml_collections
import numpy as np
import tensorflow as tf

from maskae import face_sources, masks

SPLIT_IDS = {"train": 0, "val": 1, "test": 2}
EVAL_CACHE_BYTES = 1 << 30  # eval_dataset(cache=True) keeps pairs in memory up to this size


@dataclasses.dataclass(frozen=True)
class FaceSet:
  """Decoded faces of one split: uint8 images [N,S,S,3] and landmarks [N,8,2] (x, y in [0,1])."""
  images: np.ndarray
  landmarks: np.ndarray
  fingerprint: str  # identifies the source, file list and split, for run records

  def __len__(self) -> int:
    return len(self.images)


def load_faces(config: ml_collections.ConfigDict, split: str) -> FaceSet:
  """Loads (and caches in memory) the faces of `split` from the configured source."""
  if split not in SPLIT_IDS:
    raise ValueError(f'unknown split "{split}"; valid: {", ".join(SPLIT_IDS)}')
  images, landmarks, fingerprint = face_sources.load(config.data, split, config.seed)
  if not len(images):
    raise ValueError(f"the {split} split has no faces ({fingerprint})")
  return FaceSet(images, landmarks, fingerprint)


def _mask_kwargs(mask_config: ml_collections.ConfigDict) -> dict:
  styles = masks.validate_styles(tuple(mask_config.styles))
  weights = tuple(mask_config.style_weights) or None
  if weights is not None and len(weights) != len(styles):
    raise ValueError(f"data.mask.style_weights has {len(weights)} entries for {len(styles)} styles")
  return dict(styles=styles, style_weights=weights, coverage=tuple(mask_config.coverage),
              tilt_degrees=mask_config.tilt_degrees, scale_jitter=mask_config.scale_jitter,
              offset_jitter=mask_config.offset_jitter)


@functools.lru_cache(maxsize=8)
def _synthesizer(size: int, mask_items: tuple) -> tf.types.experimental.PolymorphicFunction:
  """masks.synthesize_mask as a tf.function, traced once per process for each image size and mask
  config (tracing all mask styles takes seconds, and evaluation builds a dataset each time)."""
  mask_kwargs = dict(mask_items)
  return tf.function(
      lambda clean, landmarks, seed: masks.synthesize_mask(clean, landmarks, seed, **mask_kwargs),
      input_signature=(tf.TensorSpec([size, size, 3], tf.float32),
                       tf.TensorSpec([8, 2], tf.float32), tf.TensorSpec([2], tf.int64)))


class _PairMaker:
  """Builds the pair for (face index, example index) with TF ops; faces live in a tf.Variable
  (no 2 GB graph-constant limit, one copy shared by all parallel map calls)."""

  def __init__(self, faces: FaceSet, config: ml_collections.ConfigDict, split: str):
    with tf.device("/cpu:0"):
      self.images = tf.Variable(faces.images, trainable=False, name="faces")
      self.landmarks = tf.Variable(faces.landmarks.astype(np.float32), trainable=False)
    self.synthesize = _synthesizer(faces.images.shape[1],
                                   tuple(_mask_kwargs(config.data.mask).items()))
    self.seed = tf.constant([config.seed, SPLIT_IDS[split]], tf.int64)

  def __call__(self, face_index: tf.Tensor, example_index: tf.Tensor) -> dict:
    clean = tf.image.convert_image_dtype(tf.gather(self.images, face_index), tf.float32)
    landmarks = tf.gather(self.landmarks, face_index)
    seed = tf.random.experimental.stateless_fold_in(self.seed, example_index)
    masked, alpha = self.synthesize(clean, landmarks, seed)
    return {"masked": masked, "clean": clean, "alpha": alpha}


def train_dataset(faces: FaceSet, config: ml_collections.ConfigDict, *, start_step: int = 0,
                  process_index: int = 0, process_count: int = 1) -> tf.data.Dataset:
  """Infinite training batches for this host: [global_batch / process_count, ...] per element.

  Host p of P takes positions [p*B/P, (p+1)*B/P) of every global batch, so hosts see disjoint
  examples and together exactly the single-host stream.
  """
  global_batch = config.data.batch_size
  if global_batch % process_count:
    raise ValueError(f"data.batch_size={global_batch} is not divisible by {process_count} hosts")
  host_batch = global_batch // process_count
  num_faces = len(faces)
  make_pair = _PairMaker(faces, config, "train")
  shuffle_seed = tf.constant(config.seed, tf.int64)

  def example(counter):
    step, position = counter // host_batch, counter % host_batch
    k = step * global_batch + process_index * host_batch + position
    epoch, within = k // num_faces, k % num_faces
    seed = tf.stack([shuffle_seed, epoch])
    face_index = tf.random.experimental.index_shuffle(within, seed, num_faces - 1)
    return make_pair(face_index, k)

  ds = tf.data.Dataset.range(start_step * host_batch, np.iinfo(np.int64).max)
  ds = ds.map(example, num_parallel_calls=_parallel_calls(config), deterministic=True)
  ds = ds.batch(host_batch, drop_remainder=True)
  return ds.prefetch(config.data.prefetch)


def eval_dataset(faces: FaceSet, config: ml_collections.ConfigDict, split: str,
                 batch_size: int, *, cache: bool = False) -> tf.data.Dataset:
  """The fixed pairs of a validation / test split, in order, in batches (last one may be short).

  With `cache`, for a dataset read in full again and again (evaluation during training), the pairs
  are kept in memory after the first pass when they fit in EVAL_CACHE_BYTES, so later passes skip
  the mask synthesis.
  """
  make_pair = _PairMaker(faces, config, split)
  ds = tf.data.Dataset.range(len(faces))
  ds = ds.map(lambda i: make_pair(i, i), num_parallel_calls=_parallel_calls(config),
              deterministic=True)
  height, width = faces.images.shape[1:3]
  pair_bytes = height * width * 7 * 4  # float32 masked (3), clean (3) and alpha (1) channels
  if cache and len(faces) * pair_bytes <= EVAL_CACHE_BYTES:
    ds = ds.cache()
  return ds.batch(batch_size).prefetch(config.data.prefetch)


def _parallel_calls(config: ml_collections.ConfigDict) -> int:
  calls = config.data.num_parallel_calls
  return tf.data.AUTOTUNE if calls < 0 else calls
