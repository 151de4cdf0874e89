"""The `stream` feed: tf.data decodes each face when a batch needs it (needs TensorFlow), for
face sets larger than host memory: a folder (each file read by maskae.face_sources.read_rgb) or
a TFDS dataset prepared in the random-access array_record format (`tfds build ...
--file_format=array_record`; each record cropped and resized by face_sources.square_resize).

It gives the same examples in the same order, with the same pixels, as the in-memory feeds
(maskae.input_pipeline's train_indices / eval_indices pick the faces), as uint8 `image` batches
beside `landmarks` and `example`; the masks are drawn on the devices as for every feed. Unlike
the in-memory folder source it cannot skip unreadable files (that would need every file decoded
first): one fails the run with its path.
"""

from typing import Iterator

import ml_collections
import numpy as np
import tensorflow as tf

from maskae import face_sources, input_pipeline
from maskae.errors import DataError


class StreamFeed:
  """One split of a folder or TFDS source, read through tf.data (see the module docstring)."""

  kind = "stream"
  resident: dict = {}

  def __init__(self, config: ml_collections.ConfigDict, split: str):
    data = config.data
    self.size = data.image_size
    if data.source == "folder":
      self.paths = face_sources.folder_split(data, split)
      self.num_faces = len(self.paths)
      self.fingerprint = face_sources.folder_fingerprint(data.folder, split, self.paths)
      self.decode = self._decode_file
    elif data.source == "tfds":
      builder, split_spec, key, self.num_faces = face_sources.open_tfds(data, split)
      if not face_sources.is_array_record(builder):
        raise DataError(f"data.feed=stream reads TFDS datasets prepared in the random-access "
                         f"array_record format (tfds build ... --file_format=array_record); "
                         f"{builder.info.full_name} in {builder.data_dir} is "
                         f"{builder.info.file_format}")
      self.read_record = face_sources.tfds_record_reader(builder, split_spec, key)
      self.fingerprint = face_sources.tfds_fingerprint(builder, split_spec, self.num_faces)
      self.decode = self._decode_record
    else:
      raise DataError(f'data.feed=stream reads the folder and tfds sources, not data.source="'
                       f'{data.source}" (use data.feed=auto for it)')
    self.fingerprint += ":stream"
    self.landmarks = face_sources.landmark_template(data.landmark_template).astype(np.float32)
    self.parallel_calls = tf.data.AUTOTUNE if data.num_parallel_calls < 0 else data.num_parallel_calls
    self.prefetch = data.prefetch

  def __len__(self) -> int:
    return self.num_faces

  def _read_file(self, face: np.ndarray) -> np.ndarray:
    path = self.paths[int(face)]
    try:
      return face_sources.read_rgb(path, self.size)
    except face_sources.UNREADABLE_ERRORS as e:
      raise DataError(f"data.feed=stream: cannot decode {path} ({type(e).__name__}: {e})") from None

  def _decode_file(self, face: tf.Tensor) -> tf.Tensor:
    return tf.numpy_function(self._read_file, [face], tf.uint8, stateful=False)

  def _decode_record(self, face: tf.Tensor) -> tf.Tensor:
    return face_sources.square_resize(self.read_record(face), self.size)

  def _decoded(self, indices: tf.data.Dataset, batch_size: int) -> Iterator[dict]:
    """Per-example (face, example) -> batches of {"image", "landmarks", "example"}."""
    size, landmarks = self.size, tf.constant(self.landmarks)

    def decode(face, example):
      image = self.decode(face)
      return {"image": tf.ensure_shape(image, (size, size, 3)), "landmarks": landmarks,
              "example": example}

    ds = indices.map(decode, num_parallel_calls=self.parallel_calls, deterministic=True)
    return ds.batch(batch_size).prefetch(self.prefetch).as_numpy_iterator()

  def train_batches(self, config: ml_collections.ConfigDict, start_step: int = 0,
                    process_index: int = 0, process_count: int = 1) -> Iterator[dict]:
    """This host's training batches from `start_step` on (infinite)."""
    _, host_batch = input_pipeline.host_slice(config.data.batch_size, process_index,
                                              process_count)

    def steps():
      step = start_step
      while True:
        indices = input_pipeline.train_indices(self.num_faces, config, step, process_index,
                                               process_count)
        yield indices["face"], indices["example"]
        step += 1

    indices = tf.data.Dataset.from_generator(steps, output_signature=(
        tf.TensorSpec([host_batch], tf.int32), tf.TensorSpec([host_batch, 2], tf.uint32)))
    return self._decoded(indices.unbatch(), host_batch)

  def eval_batches(self, batch_size: int) -> Iterator[tuple[dict, int]]:
    """The split's fixed examples in order: (batch of `batch_size`, number of real examples)."""
    batches = list(input_pipeline.eval_indices(self.num_faces, batch_size))
    faces = np.concatenate([b["face"] for b, _ in batches])
    examples = np.concatenate([b["example"] for b, _ in batches])
    decoded = self._decoded(tf.data.Dataset.from_tensor_slices((faces, examples)), batch_size)
    for batch, (_, count) in zip(decoded, batches):
      yield batch, count
