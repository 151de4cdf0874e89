"""The feed: which face and which mask every example gets, and the uint8 batches that carry them.

No TensorFlow here. Masks are drawn on the devices, inside the jitted steps (maskae.pairs), so
what crosses to the devices is faces, not pairs:
- `device` feed: the split's uint8 faces and landmarks are put on the devices once (replicated)
  and each batch is just indices (`face` [b] int32, `example` [b, 2] uint32);
- `host` feed: each batch carries the faces themselves (`image` [b,S,S,3] uint8, `landmarks`
  [b,8,2] float32) beside `example`, gathered on the host in a background thread;
- `stream` feed (maskae.streaming, needs TensorFlow): like `host`, but tf.data decodes each face
  from its file when it is needed, for face sets larger than host memory.
`data.feed = "auto"` picks `device` when the split's faces fit in RESIDENT_MAX_BYTES, else `host`.

Every feed gives the same examples in the same order. Example k is identified by (seed, split,
k); its mask is drawn from a key folded from those alone (maskae.pairs.example_keys), so pairs
are identical across feeds, device counts, hosts and resumes:
- validation / test example i is face i;
- training example k (a global counter, k = step * global_batch + position) is face
  `permutation(seed, epoch)[k mod N]` of epoch k // N, so a run resumed at step s sees exactly
  the pairs it would have seen, with no skipping through the data.

Multi-host: each host takes the contiguous slice [p * B / P, (p + 1) * B / P) of every global
batch of B; `train_step.shard_batch` assembles the global batch over the 1-D `data` mesh.
"""

import dataclasses
import functools
import queue
import threading
from typing import Iterator

import ml_collections
import numpy as np

from maskae import face_sources, pairs, train_step
from maskae.errors import ConfigError, DataError

SPLIT_IDS = pairs.SPLIT_IDS
FEEDS = ("auto", "device", "host", "stream")
RESIDENT_MAX_BYTES = 2 << 30  # data.feed=auto keeps a split's faces on the devices up to this


@dataclasses.dataclass(frozen=True)
class FaceSet:
  """Decoded faces of one split: uint8 images [N,S,S,3] and landmarks [N,8,2] (x, y in [0,1])."""
  images: np.ndarray
  landmarks: np.ndarray
  fingerprint: str  # identifies the source, file list and split, for run records

  def __len__(self) -> int:
    return len(self.images)


def load_faces(config: ml_collections.ConfigDict, split: str) -> FaceSet:
  """Loads the faces of `split` from the configured source into host memory."""
  if split not in SPLIT_IDS:
    raise ValueError(f'unknown split "{split}"; valid: {", ".join(SPLIT_IDS)}')
  images, landmarks, fingerprint = face_sources.load(config.data, split, config.seed)
  if not len(images):
    raise DataError(f"the {split} split has no faces ({fingerprint})")
  return FaceSet(images, landmarks, fingerprint)


def feed_kind(config: ml_collections.ConfigDict, num_bytes: int) -> str:
  """`device`, `host` or `stream`: data.feed, with `auto` resolved for a split of `num_bytes`."""
  feed = config.data.feed
  if feed not in FEEDS:
    raise ValueError(f'unknown data.feed "{feed}"; valid: {", ".join(FEEDS)}')
  if feed == "auto":
    return "device" if num_bytes <= RESIDENT_MAX_BYTES else "host"
  return feed


@functools.lru_cache(maxsize=4)
def _epoch_order(num_faces: int, seed: int, epoch: int) -> np.ndarray:
  """The faces of one training epoch, in order: a permutation drawn from (seed, epoch)."""
  order = np.random.default_rng([seed, epoch]).permutation(num_faces).astype(np.int32)
  order.flags.writeable = False
  return order


def example_ids(counters: np.ndarray) -> np.ndarray:
  """Example counters (int64) as uint32 [n, 2] (high, low) words, what the steps fold into keys."""
  counters = np.asarray(counters, np.uint64)
  return np.stack([counters >> np.uint64(32), counters & np.uint64(0xFFFFFFFF)], -1).astype(
      np.uint32)


def host_slice(global_batch: int, process_index: int, process_count: int) -> tuple[int, int]:
  """(first position, size) of this host's slice of every global batch."""
  if global_batch % process_count:
    raise ConfigError(f"data.batch_size={global_batch} is not divisible by {process_count} hosts")
  size = global_batch // process_count
  return process_index * size, size


def train_indices(num_faces: int, config: ml_collections.ConfigDict, step: int,
                  process_index: int = 0, process_count: int = 1) -> dict:
  """This host's examples of training step `step`: {"face": [b] int32, "example": [b, 2]}."""
  global_batch = config.data.batch_size
  first, size = host_slice(global_batch, process_index, process_count)
  counters = step * global_batch + first + np.arange(size, dtype=np.int64)
  epochs, within = np.divmod(counters, num_faces)
  face = np.empty(size, np.int32)
  for epoch in np.unique(epochs):
    at = epochs == epoch
    face[at] = _epoch_order(num_faces, config.seed, int(epoch))[within[at]]
  return {"face": face, "example": example_ids(counters)}


def eval_indices(num_faces: int, batch_size: int) -> Iterator[tuple[dict, int]]:
  """The fixed examples of a validation / test split in order, as ({"face", "example"}, count)
  batches of exactly `batch_size` (the last one padded by repeating its last example)."""
  for first in range(0, num_faces, batch_size):
    count = min(batch_size, num_faces - first)
    index = np.minimum(np.arange(first, first + batch_size), num_faces - 1)
    yield {"face": index.astype(np.int32), "example": example_ids(index)}, count


def first_examples(num_faces: int, config: ml_collections.ConfigDict, split: str,
                   num: int) -> dict:
  """The indices of a split's first `num` examples: a run's first training examples from step 0,
  or validation / test examples 0..num-1 (fewer if the split is smaller)."""
  if split != "train":
    index = np.arange(min(num, num_faces))
    return {"face": index.astype(np.int32), "example": example_ids(index)}
  steps = -(-num // config.data.batch_size)
  batches = [train_indices(num_faces, config, step) for step in range(steps)]
  return {k: np.concatenate([b[k] for b in batches])[:num] for k in batches[0]}


def gather(faces: FaceSet, indices: dict) -> dict:
  """A host-feed batch: the faces and landmarks of `indices["face"]`, beside `example`."""
  face = indices["face"]
  return {"image": faces.images[face], "landmarks": faces.landmarks[face].astype(np.float32),
          "example": indices["example"]}


def device_faces(faces: FaceSet, mesh) -> dict:
  """The split's faces placed on every device of `mesh`, for the `device` feed."""
  return train_step.replicate({"images": faces.images,
                               "landmarks": faces.landmarks.astype(np.float32)}, mesh)


def prefetch(batches: Iterator, size: int) -> Iterator:
  """Runs `batches` in a background thread, `size` items ahead (at least one)."""
  items = queue.Queue(maxsize=max(1, size))
  done = object()

  def produce():
    try:
      for item in batches:
        items.put(item)
    except BaseException as e:  # pylint: disable=broad-except  # re-raised in the consumer
      items.put(e)
    items.put(done)

  threading.Thread(target=produce, daemon=True).start()
  while (item := items.get()) is not done:
    if isinstance(item, BaseException):
      raise item
    yield item


def to_devices(host_batches: Iterator[dict], mesh, prefetch_size: int) -> Iterator:
  """Host-local batches -> global device batches over `mesh`, `prefetch_size` ahead."""
  return prefetch((train_step.shard_batch(batch, mesh) for batch in host_batches), prefetch_size)


class Feed:
  """One split's faces as the steps read them: `resident` (the faces on the devices for the
  `device` feed, else {}) and host-side batches (indices for `device`, faces for `host`)."""

  def __init__(self, faces: FaceSet, kind: str, mesh):
    if kind not in ("device", "host"):
      raise ValueError(f"an in-memory face set is fed by device or host, not {kind}")
    self.kind, self.faces = kind, faces
    self.num_faces, self.fingerprint = len(faces), faces.fingerprint
    self.resident = device_faces(faces, mesh) if kind == "device" else {}

  def __len__(self) -> int:
    return self.num_faces

  def _batch(self, indices: dict) -> dict:
    return indices if self.kind == "device" else gather(self.faces, indices)

  def train_batches(self, config: ml_collections.ConfigDict, start_step: int = 0,
                    process_index: int = 0, process_count: int = 1) -> Iterator[dict]:
    """This host's training batches from `start_step` on (infinite)."""
    host_slice(config.data.batch_size, process_index, process_count)  # checked before any batch
    step = start_step
    while True:
      yield self._batch(train_indices(self.num_faces, config, step, process_index, process_count))
      step += 1

  def eval_batches(self, batch_size: int) -> Iterator[tuple[dict, int]]:
    """The split's fixed examples in order: (batch of `batch_size`, number of real examples)."""
    for indices, count in eval_indices(self.num_faces, batch_size):
      yield self._batch(indices), count


def open_feed(config: ml_collections.ConfigDict, split: str, mesh):
  """The Feed of `split` over `mesh` (data.feed; `stream` reads the files through tf.data)."""
  if config.data.feed == "stream":
    from maskae import streaming  # pylint: disable=import-outside-toplevel  # needs TensorFlow
    return streaming.StreamFeed(config, split)
  faces = load_faces(config, split)
  return Feed(faces, feed_kind(config, faces.images.nbytes), mesh)
