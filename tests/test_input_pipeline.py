"""The feed and the pairs drawn from it: batch format, determinism (validation pairs, resumed
training order), epoch shuffling, multi-host slices, the device / host / stream feeds giving the
same examples, masks that depend only on (seed, split, example)."""

import jax
import numpy as np
import pytest

from configs import default
from maskae import input_pipeline, pairs, train_step

SIZE, NUM_TRAIN, BATCH = 32, 6, 4


def small_config(seed: int = 0):
  config = default.get_config()
  config.seed = seed
  config.data.image_size = SIZE
  config.data.num_train, config.data.num_val, config.data.num_test = NUM_TRAIN, 5, 3
  config.data.batch_size = BATCH
  config.data.mask.styles = ("surgical", "bandana")
  return config


def take(batches, count: int) -> list[dict]:
  return [next(batches) for _ in range(count)]


def assert_batches_equal(actual: list[dict], expected: list[dict]):
  assert len(actual) == len(expected)
  for a, e in zip(actual, expected):
    assert a.keys() == e.keys()
    for key in a:
      np.testing.assert_array_equal(a[key], e[key], err_msg=key)


@pytest.fixture(scope="module")
def config():
  return small_config()


@pytest.fixture(scope="module")
def mesh():
  return train_step.data_mesh(jax.devices()[:1])


@pytest.fixture(scope="module")
def train_faces(config):
  return input_pipeline.load_faces(config, "train")


def host_feed(faces, mesh):
  return input_pipeline.Feed(faces, "host", mesh)


def test_batches_carry_uint8_faces_or_indices(config, train_faces, mesh):
  host = next(host_feed(train_faces, mesh).train_batches(config))
  assert {k: (v.shape, v.dtype) for k, v in host.items()} == {
      "image": ((BATCH, SIZE, SIZE, 3), np.uint8), "landmarks": ((BATCH, 8, 2), np.float32),
      "example": ((BATCH, 2), np.uint32)}
  device_feed = input_pipeline.Feed(train_faces, "device", mesh)
  indices = next(device_feed.train_batches(config))
  assert {k: (v.shape, v.dtype) for k, v in indices.items()} == {
      "face": ((BATCH,), np.int32), "example": ((BATCH, 2), np.uint32)}
  assert device_feed.resident["images"].dtype == np.uint8
  np.testing.assert_array_equal(np.asarray(device_feed.resident["images"]), train_faces.images)
  np.testing.assert_array_equal(host["image"], train_faces.images[indices["face"]])


def test_example_ids_split_counters_into_words():
  ids = input_pipeline.example_ids(np.array([0, 5, (3 << 32) + 7], np.int64))
  np.testing.assert_array_equal(ids, [[0, 0], [0, 5], [3, 7]])


def test_auto_feed_keeps_small_sets_on_the_devices(config, monkeypatch):
  assert input_pipeline.feed_kind(config, 1000) == "device"
  monkeypatch.setattr(input_pipeline, "RESIDENT_MAX_BYTES", 999)
  assert input_pipeline.feed_kind(config, 1000) == "host"
  bad = small_config()
  bad.data.feed = "disk"
  with pytest.raises(ValueError, match='unknown data.feed "disk"; valid: auto, device, host'):
    input_pipeline.feed_kind(bad, 1)


def test_resumed_training_sees_the_same_batches(config, train_faces, mesh):
  """Batches from step s of a run started at step 0 equal the first batches of an independently
  built run started at s (crossing epoch boundaries: 6 faces, 4 per batch)."""
  from_start = take(host_feed(train_faces, mesh).train_batches(config), 7)
  resumed_faces = input_pipeline.load_faces(small_config(), "train")
  resumed = take(host_feed(resumed_faces, mesh).train_batches(small_config(), start_step=4), 3)
  assert_batches_equal(resumed, from_start[4:])


def test_each_epoch_is_a_fresh_permutation_of_the_faces(config):
  faces = np.concatenate([input_pipeline.train_indices(NUM_TRAIN, config, step)["face"]
                          for step in range(6)]).tolist()  # 24 examples = 4 epochs
  epochs = [faces[i:i + NUM_TRAIN] for i in range(0, len(faces), NUM_TRAIN)]
  for epoch in epochs:
    assert sorted(epoch) == list(range(NUM_TRAIN)), epochs
  assert len({tuple(epoch) for epoch in epochs}) > 1, epochs  # reshuffled each epoch
  assert epochs[0] != list(range(NUM_TRAIN)), epochs
  examples = np.concatenate([input_pipeline.train_indices(NUM_TRAIN, config, step)["example"]
                             for step in range(6)])
  np.testing.assert_array_equal(examples[:, 1], np.arange(24))  # every example its own mask


def test_two_hosts_split_the_global_batch(config, train_faces, mesh):
  """process_index 0 and 1 of 2 get disjoint halves whose concatenation is the single-process
  global batch, at every step and when resumed."""
  single = take(host_feed(train_faces, mesh).train_batches(config), 4)
  for start_step in (0, 2):
    hosts = [take(host_feed(train_faces, mesh).train_batches(config, start_step, p, 2),
                  4 - start_step) for p in (0, 1)]
    for step, (half0, half1) in enumerate(zip(*hosts), start=start_step):
      assert half0["image"].shape[0] == half1["image"].shape[0] == BATCH // 2
      for key in half0:
        np.testing.assert_array_equal(np.concatenate([half0[key], half1[key]]),
                                      single[step][key], err_msg=f"step {step} {key}")


def test_batch_must_divide_over_hosts(config, train_faces, mesh):
  with pytest.raises(ValueError, match="data.batch_size=4 is not divisible by 3 hosts"):
    next(host_feed(train_faces, mesh).train_batches(config, process_count=3))


def test_eval_batches_are_padded_and_counted(config, mesh):
  faces = input_pipeline.load_faces(config, "val")  # 5 faces
  batches = list(host_feed(faces, mesh).eval_batches(2))
  assert [count for _, count in batches] == [2, 2, 1]
  assert all(len(batch["image"]) == 2 for batch, _ in batches)
  examples = np.concatenate([batch["example"][:count, 1] for batch, count in batches])
  np.testing.assert_array_equal(examples, np.arange(5))
  np.testing.assert_array_equal(batches[-1][0]["image"][1], faces.images[4])  # the padding


def render(batch, resident, config, split):
  return jax.device_get(jax.jit(pairs.make_pairs, static_argnums=(2, 3, 4))(
      batch, resident, config.seed, split, pairs.mask_spec(config)))


def test_device_and_host_feeds_give_the_same_pairs(config, train_faces, mesh):
  device_feed = input_pipeline.Feed(train_faces, "device", mesh)
  on_device = render(next(device_feed.train_batches(config)), device_feed.resident, config,
                     "train")
  on_host = render(next(host_feed(train_faces, mesh).train_batches(config)), {}, config, "train")
  assert_batches_equal([on_device], [on_host])
  alpha = on_host["alpha"]
  assert (alpha > 0.5).mean(axis=(1, 2, 3)).min() > 0.05  # every example has a mask drawn
  away = np.broadcast_to(alpha == 0, on_host["clean"].shape)
  np.testing.assert_array_equal(on_host["masked"][away], on_host["clean"][away])
  assert 0.0 <= on_host["masked"].min() and on_host["masked"].max() <= 1.0


def test_pairs_depend_only_on_seed_split_and_example(config, mesh):
  """A validation pair is the same in batches of 2 and of 5, differs by split and by seed."""
  faces = input_pipeline.load_faces(config, "val")
  feed = host_feed(faces, mesh)
  in_twos = [render(b, {}, config, "val") for b, _ in feed.eval_batches(2)]
  in_fives = render(next(feed.eval_batches(5))[0], {}, config, "val")
  for key in ("masked", "alpha"):
    np.testing.assert_array_equal(np.concatenate([b[key] for b in in_twos])[:5], in_fives[key])
  as_test = render(next(feed.eval_batches(5))[0], {}, config, "test")
  np.testing.assert_array_equal(as_test["clean"], in_fives["clean"])
  assert not np.array_equal(as_test["alpha"], in_fives["alpha"])
  other_seed = render(next(feed.eval_batches(5))[0], {}, small_config(seed=1), "val")
  assert not np.array_equal(other_seed["alpha"], in_fives["alpha"])


def test_a_face_seen_twice_gets_a_different_mask(config, train_faces, mesh):
  batches = take(host_feed(train_faces, mesh).train_batches(config), 3)  # 12 examples, 2 epochs
  faces = np.concatenate([input_pipeline.train_indices(NUM_TRAIN, config, s)["face"]
                          for s in range(3)]).tolist()
  alpha = np.concatenate([render(b, {}, config, "train")["alpha"] for b in batches])
  first, again = faces.index(0), faces.index(0, NUM_TRAIN)
  assert not np.array_equal(alpha[first], alpha[again])


def test_stream_feed_gives_the_examples_of_the_folder_feed(tmp_path, mesh):
  pytest.importorskip("tensorflow")
  from maskae import faces as face_generator, streaming
  from PIL import Image
  images, _ = face_generator.generate_faces(8, 40, seed=3)
  for i, image in enumerate(images):
    Image.fromarray(image).save(tmp_path / f"{i:02d}.png")
  config = small_config()
  config.data.source, config.data.folder = "folder", str(tmp_path)
  config.data.num_train, config.data.num_val, config.data.num_test = 5, 3, 0
  stream = streaming.StreamFeed(config, "train")
  in_memory = host_feed(input_pipeline.load_faces(config, "train"), mesh)
  assert len(stream) == len(in_memory) == 5
  assert_batches_equal(take(stream.train_batches(config, start_step=1), 3),
                       take(in_memory.train_batches(config, start_step=1), 3))
  val_stream = list(streaming.StreamFeed(config, "val").eval_batches(2))
  val_memory = list(host_feed(input_pipeline.load_faces(config, "val"), mesh).eval_batches(2))
  assert [c for _, c in val_stream] == [c for _, c in val_memory] == [2, 1]
  assert_batches_equal([b for b, _ in val_stream], [b for b, _ in val_memory])


def test_unknown_split_empty_split_and_style_weight_errors(config):
  with pytest.raises(ValueError, match='unknown split "dev"'):
    input_pipeline.load_faces(config, "dev")
  empty = small_config()
  empty.data.num_test = 0
  with pytest.raises(ValueError, match=r"the test split has no faces \(synthetic:.*:n=0\)"):
    input_pipeline.load_faces(empty, "test")
  bad = small_config()
  bad.data.mask.style_weights = (1.0, 2.0, 3.0)
  with pytest.raises(ValueError, match="style_weights"):
    pairs.mask_spec(bad)


def test_random_flip_mirrors_whole_pairs_by_example(config, train_faces, mesh):
  batch = next(host_feed(train_faces, mesh).train_batches(config))
  spec = pairs.mask_spec(config)
  make = jax.jit(pairs.make_pairs, static_argnums=(2, 3, 4, 5))
  plain = jax.device_get(make(batch, {}, config.seed, "train", spec, False))
  flipped = jax.device_get(make(batch, {}, config.seed, "train", spec, True))
  again = jax.device_get(make(batch, {}, config.seed, "train", spec, True))
  mirrored = []
  for i in range(len(batch["example"])):
    same = all(np.array_equal(flipped[k][i], plain[k][i]) for k in plain)
    mirror = all(np.array_equal(flipped[k][i], plain[k][i][:, ::-1]) for k in plain)
    assert same or mirror, i  # face, mask and alpha always together
    mirrored.append(mirror and not same)
  assert 0 < sum(mirrored) < len(mirrored)  # a per-example draw (4 examples)
  assert_batches_equal([flipped], [again])  # from the example's key alone
