"""The pair pipeline: element format, determinism (validation pairs, resumed training order), epoch
shuffling, multi-host sharding, graph-only ops."""

import numpy as np
import pytest
import tensorflow as tf

from configs import default
from maskae import input_pipeline

SIZE, NUM_TRAIN, BATCH = 32, 6, 4


def small_config(seed: int = 0):
  config = default.get_config()
  config.seed = seed
  config.data.image_size = SIZE
  config.data.num_train, config.data.num_val, config.data.num_test = NUM_TRAIN, 5, 3
  config.data.batch_size = BATCH
  config.data.mask.styles = ("surgical",)  # one style: tracing all of them takes tens of seconds
  return config


def take(dataset: tf.data.Dataset, count: int) -> list[dict]:
  return list(dataset.take(count).as_numpy_iterator())


def assert_batches_equal(actual: list[dict], expected: list[dict]):
  assert len(actual) == len(expected)
  for a, e in zip(actual, expected):
    assert a.keys() == e.keys()
    for key in a:
      np.testing.assert_array_equal(a[key], e[key], err_msg=key)


def face_indices(faces: input_pipeline.FaceSet, clean: np.ndarray) -> list[int]:
  """Which face of the set each clean image is."""
  pixels = np.round(clean * 255).astype(np.uint8)
  return [int(np.flatnonzero((faces.images == image).all(axis=(1, 2, 3)))[0]) for image in pixels]


@pytest.fixture(scope="module")
def config():
  return small_config()


@pytest.fixture(scope="module")
def train_faces(config):
  return input_pipeline.load_faces(config, "train")


def test_elements_are_float_pairs_in_unit_range(config, train_faces):
  batch = take(input_pipeline.train_dataset(train_faces, config), 1)[0]
  assert {k: (v.shape, v.dtype) for k, v in batch.items()} == {
      "masked": ((BATCH, SIZE, SIZE, 3), np.float32), "clean": ((BATCH, SIZE, SIZE, 3), np.float32),
      "alpha": ((BATCH, SIZE, SIZE, 1), np.float32)}
  for value in batch.values():
    assert 0.0 <= value.min() and value.max() <= 1.0
  alpha = batch["alpha"]
  assert (alpha > 0.5).mean(axis=(1, 2, 3)).min() > 0.05  # every example has a mask drawn
  away = np.broadcast_to(alpha == 0, batch["clean"].shape)
  np.testing.assert_array_equal(batch["masked"][away], batch["clean"][away])
  assert np.abs(batch["masked"] - batch["clean"]).max() > 0.2


def test_cached_validation_pairs_equal_the_synthesized_ones(config, monkeypatch):
  faces = input_pipeline.load_faces(config, "val")
  synthesized = list(input_pipeline.eval_dataset(faces, config, "val", 2).as_numpy_iterator())
  cached = input_pipeline.eval_dataset(faces, config, "val", 2, cache=True)
  assert_batches_equal(list(cached.as_numpy_iterator()), synthesized)  # first pass fills it
  assert_batches_equal(list(cached.as_numpy_iterator()), synthesized)  # second reads it
  monkeypatch.setattr(input_pipeline, "EVAL_CACHE_BYTES", 0)  # too big to cache: synthesized
  assert_batches_equal(list(input_pipeline.eval_dataset(faces, config, "val", 2, cache=True)
                            .as_numpy_iterator()), synthesized)


def test_validation_pairs_are_identical_across_independent_builds(config):
  """Two separately loaded face sets and datasets (different batching) give the same pairs."""
  first = input_pipeline.eval_dataset(input_pipeline.load_faces(config, "val"), config, "val", 2)
  second = input_pipeline.eval_dataset(input_pipeline.load_faces(small_config(), "val"),
                                       small_config(), "val", 5)
  first_pairs = take(first.unbatch().batch(5), 1)
  assert len(first_pairs[0]["clean"]) == 5
  assert_batches_equal(first_pairs, take(second, 1))
  # ... and depend on the seed (so the equality above is not vacuous).
  other_seed = small_config(seed=1)
  other = take(input_pipeline.eval_dataset(input_pipeline.load_faces(other_seed, "val"),
                                           other_seed, "val", 5), 1)
  assert not np.array_equal(other[0]["masked"], first_pairs[0]["masked"])


def test_same_faces_get_different_masks_in_different_splits(config):
  """The split is part of every pair's seed: the same faces as `val` and as `test` get other masks."""
  faces = input_pipeline.load_faces(config, "val")
  val = take(input_pipeline.eval_dataset(faces, config, "val", 5), 1)[0]
  test = take(input_pipeline.eval_dataset(faces, config, "test", 5), 1)[0]
  np.testing.assert_array_equal(val["clean"], test["clean"])
  assert not np.array_equal(val["alpha"], test["alpha"])


def test_resumed_training_sees_the_same_batches(config, train_faces):
  """Batches from step s of a run started at step 0 equal the first batches of an independently
  built run started at s (crossing epoch boundaries: 6 faces, 4 per batch)."""
  from_start = take(input_pipeline.train_dataset(train_faces, config), 7)
  resumed_config = small_config()
  resumed_faces = input_pipeline.load_faces(resumed_config, "train")
  resumed = take(input_pipeline.train_dataset(resumed_faces, resumed_config, start_step=4), 3)
  assert_batches_equal(resumed, from_start[4:])
  assert not np.array_equal(from_start[0]["masked"], from_start[4]["masked"])


def test_each_epoch_is_a_fresh_permutation_of_the_faces(config, train_faces):
  batches = take(input_pipeline.train_dataset(train_faces, config), 6)  # 24 examples = 4 epochs
  clean = np.concatenate([b["clean"] for b in batches])
  order = face_indices(train_faces, clean)
  epochs = [order[i:i + NUM_TRAIN] for i in range(0, len(order), NUM_TRAIN)]
  for epoch in epochs:
    assert sorted(epoch) == list(range(NUM_TRAIN)), epochs
  assert len({tuple(epoch) for epoch in epochs}) > 1, epochs  # reshuffled each epoch
  assert epochs[0] != list(range(NUM_TRAIN)), epochs
  # A face seen twice gets a different mask each time.
  masked = np.concatenate([b["masked"] for b in batches])
  first, again = order.index(0), order.index(0, NUM_TRAIN)
  assert not np.array_equal(masked[first], masked[again])


def test_two_hosts_split_the_global_batch(config, train_faces):
  """process_index 0 and 1 of 2 get disjoint halves whose concatenation is the single-process
  global batch, at every step and when resumed."""
  single = take(input_pipeline.train_dataset(train_faces, config), 4)
  for start_step in (0, 2):
    hosts = [take(input_pipeline.train_dataset(train_faces, config, start_step=start_step,
                                               process_index=p, process_count=2), 4 - start_step)
             for p in (0, 1)]
    for step, (half0, half1) in enumerate(zip(*hosts), start=start_step):
      assert half0["clean"].shape[0] == half1["clean"].shape[0] == BATCH // 2
      for key in half0:
        np.testing.assert_array_equal(np.concatenate([half0[key], half1[key]]),
                                      single[step][key], err_msg=f"step {step} {key}")
      assert not np.array_equal(half0["masked"], half1["masked"])


def test_batch_must_divide_over_hosts(config, train_faces):
  with pytest.raises(ValueError, match="data.batch_size=4 is not divisible by 3 hosts"):
    input_pipeline.train_dataset(train_faces, config, process_count=3)


def test_pipeline_graph_has_no_python_callbacks(config, train_faces):
  """Everything runs as TF graph ops: no py_function / numpy_function in the dataset graph."""
  datasets = {"train": input_pipeline.train_dataset(train_faces, config),
              "val": input_pipeline.eval_dataset(train_faces, config, "val", 2)}
  for split, dataset in datasets.items():
    graph = tf.compat.v1.GraphDef.FromString(dataset._as_serialized_graph().numpy())
    ops = {node.op for node in graph.node}
    for function in graph.library.function:
      ops.update(node.op for node in function.node_def)
    assert {"ParallelMapDatasetV2", "StatelessRandomUniformV2"} <= ops, split
    assert ("RandomIndexShuffle" in ops) == (split == "train")
    assert not ops & {"PyFunc", "EagerPyFunc", "PyFuncStateless"}, ops


def test_unknown_split_empty_split_and_style_weight_errors(config):
  with pytest.raises(ValueError, match='unknown split "dev"'):
    input_pipeline.load_faces(config, "dev")
  empty = small_config()
  empty.data.num_test = 0
  with pytest.raises(ValueError, match=r"the test split has no faces \(synthetic:.*:n=0\)"):
    input_pipeline.load_faces(empty, "test")
  bad = small_config()
  bad.data.mask.style_weights = (1.0, 2.0)
  faces = input_pipeline.load_faces(bad, "test")
  with pytest.raises(ValueError, match="style_weights has 2 entries for 1 styles"):
    input_pipeline.eval_dataset(faces, bad, "test", 2)
