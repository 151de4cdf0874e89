"""Training speed of the real loop (feed + masks drawn on the device + step) against the step alone.

  python benchmarks/end_to_end.py [--configs paper,utkface] [--sizes 128,256] [--batch_sizes 32]
      [--num_faces 512] [--steps 10] [--reps 3] [--warmup 2] [--before 065b144]
      [--results benchmarks/RESULTS.md] [--quick]

For each model config (paper: configs/paper.py; utkface: configs/utkface.py's best model), image
size and batch size, in this one process, with the variants alternating repetition by repetition
(medians of --reps repetitions of --steps steps after --warmup steps):
- step alone: maskae.train_step.make_pair_train_step on two pair batches already on the devices
  (no feed, no mask drawing);
- end to end, device feed: the training loop's path (maskae.input_pipeline.Feed with the faces
  resident on the devices, `to_devices`, maskae.train_step.make_train_step drawing the masks);
- end to end, host feed: the same with uint8 faces gathered on the host and sent each step;
- before: the pipeline of git revision --before (masks drawn by TensorFlow in tf.data on the
  host, float32 pairs fed to the same step), where TensorFlow is installed ('' to skip).
And masks alone: jit(maskae.masks.synthesize) on the batch's faces, masks per second.
Faces: --num_faces UTKFace train faces when ../shared/data is present, else procedural faces.
Targets on CPU: end to end >= 0.85 of the step alone and >= before; on a GPU >= 0.9.
"""

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time

if __package__ in (None, ""):  # run as a file: the repository root holds `benchmarks`
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax
import numpy as np

from benchmarks import batch_sizes, report
from maskae import input_pipeline, masks, models, pairs, train_step

FULL = dict(configs="paper,utkface", sizes="128,256", batch_sizes="32", num_faces=512, steps=10,
            reps=3, warmup=2, before="065b144")
QUICK = dict(configs="paper", sizes="32", batch_sizes="8", num_faces=16, steps=2, reps=1,
             warmup=1, before="")
UTKFACE = os.path.join(report.REPO, "..", "shared", "data", "utkface")
HEADER = ["config", "size", "batch", "step alone img/s", "device feed img/s", "/ step",
          "host feed img/s", "/ step", "before img/s", "device feed / before"]
PACKAGES = ("jax", "jaxlib", "flax", "numpy", "tensorflow-cpu")


def load_before(revision: str):
  """maskae/input_pipeline.py of `revision` with its own maskae/masks.py (TensorFlow), as a
  module; None where TensorFlow or the revision is missing."""
  if importlib.util.find_spec("tensorflow") is None:
    return None
  try:
    old_masks = report.module_at_revision("maskae/masks.py", revision, "before_masks")
    return report.module_at_revision(
        "maskae/input_pipeline.py", revision, "before_input_pipeline", masks=old_masks,
        source_edits=[("from maskae import face_sources, masks", "from maskae import face_sources")])
  except (OSError, subprocess.CalledProcessError):
    return None


def bench_config(name: str, size: int, batch_size: int, num_faces: int):
  config = batch_sizes.model_config(name, size, batch_size)
  data = config.data
  if os.path.isdir(UTKFACE):
    data.source, data.folder = "folder", os.path.join(UTKFACE, "images")
    data.train_list = os.path.join(UTKFACE, "train.txt")
  else:
    data.source, data.num_train = "synthetic", num_faces
  return config


def first_faces(config, num_faces: int) -> input_pipeline.FaceSet:
  """The config's first `num_faces` training faces (a folder list file is cut short)."""
  if config.data.source == "folder":
    with open(config.data.train_list) as f:
      names = [line.strip() for line in f if line.strip()][:num_faces]
    short_list = os.path.join(tempfile.mkdtemp(prefix="maskae-e2e-"), "train.txt")
    with open(short_list, "w") as f:
      f.write("\n".join(names) + "\n")
    config.data.train_list = short_list
  return input_pipeline.load_faces(config, "train")


class Variant:
  """One way of running training steps, with its own train state."""

  def __init__(self, name, state, run_step):
    self.name, self.state, self.run_step, self.rates = name, state, run_step, []

  def steps(self, count: int, batch_size: int, timed: bool) -> None:
    start = time.perf_counter()
    metrics = None
    for _ in range(count):
      self.state, metrics = self.run_step(self.state)
    jax.block_until_ready((self.state, metrics))
    if timed:
      self.rates.append(count * batch_size / (time.perf_counter() - start))

  def rate(self):
    return statistics.median(self.rates) if self.rates else None


def variants(config, faces: input_pipeline.FaceSet, before) -> list[Variant]:
  mesh = train_step.data_mesh()
  model = models.create_model(config.model)

  def fresh_state():
    return train_step.replicate(
        train_step.create_train_state(model, config, jax.random.key(0)), mesh)

  pair_step = train_step.make_pair_train_step(config, mesh)
  face_step = train_step.make_train_step(config, mesh)
  made = []
  host = input_pipeline.Feed(faces, "host", mesh)
  ready = [train_step.shard_batch(pairs.render_on_host(batch, config, "train"), mesh)
           for batch in (next(host.train_batches(config, s)) for s in (0, 1))]
  counter = iter(range(1 << 62))
  made.append(Variant("step alone", fresh_state(),
                      lambda state: pair_step(state, ready[next(counter) % 2])))
  for kind in ("device", "host"):
    feed = input_pipeline.Feed(faces, kind, mesh)
    batches = input_pipeline.to_devices(feed.train_batches(config), mesh, config.data.prefetch)
    made.append(Variant(f"{kind} feed", fresh_state(),
                        lambda state, f=feed, b=batches: face_step(state, f.resident, next(b))))
  if before is not None:
    old_faces = before.FaceSet(faces.images, faces.landmarks, faces.fingerprint)
    old_batches = before.train_dataset(old_faces, config).as_numpy_iterator()
    made.append(Variant("before", fresh_state(), lambda state: pair_step(
        state, train_step.shard_batch(next(old_batches), mesh))))
  return made


def mask_rate(faces: input_pipeline.FaceSet, config, batch_size: int, steps: int) -> float:
  """Masks per second of jit(masks.synthesize) on batches of the faces (after one warm-up)."""
  spec = pairs.mask_spec(config)
  clean = jax.device_put(faces.images[:batch_size].astype(np.float32) / 255.0)
  landmarks = jax.device_put(faces.landmarks[:batch_size])
  synthesize = jax.jit(masks.synthesize, static_argnums=3)
  keys = jax.random.split(jax.random.key(0), (steps + 1, batch_size))
  jax.block_until_ready(synthesize(clean, landmarks, keys[0], spec))
  start = time.perf_counter()
  for i in range(1, steps + 1):
    out = synthesize(clean, landmarks, keys[i], spec)
  jax.block_until_ready(out)
  return steps * batch_size / (time.perf_counter() - start)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--configs", help=f"model configs ({FULL['configs']})")
  parser.add_argument("--sizes", help=f"image sizes ({FULL['sizes']})")
  parser.add_argument("--batch_sizes", help=f"global batch sizes ({FULL['batch_sizes']})")
  parser.add_argument("--num_faces", type=int, help=f"training faces ({FULL['num_faces']})")
  parser.add_argument("--steps", type=int, help=f"steps per repetition ({FULL['steps']})")
  parser.add_argument("--reps", type=int, help=f"timed repetitions ({FULL['reps']})")
  parser.add_argument("--warmup", type=int, help=f"untimed steps first ({FULL['warmup']})")
  parser.add_argument("--before", help="git revision of the earlier pipeline ('' for none; "
                      f"{FULL['before']})")
  args = report.parse_args(parser, FULL, QUICK)
  before = load_before(args.before) if args.before else None
  load_log = report.LoadLog()
  device = jax.devices()[0]
  device_name = f"{jax.device_count()} x {device.device_kind} ({device.platform})"
  print(f"{report.machine()}; {device_name}; before: "
        f"{args.before + ' (TensorFlow pipeline)' if before else 'not measured'}", flush=True)
  rows, mask_rows = [], []
  for size in map(int, args.sizes.split(",")):
    for batch_size in map(int, args.batch_sizes.split(",")):
      for name in args.configs.split(","):
        config = bench_config(name, size, batch_size, args.num_faces)
        faces = first_faces(config, args.num_faces)
        if name == args.configs.split(",")[0]:
          mask_rows.append([size, batch_size, mask_rate(faces, config, batch_size, args.steps)])
          print(f"  masks alone {size} px batch {batch_size}: {mask_rows[-1][-1]:.0f}/s",
                flush=True)
        runs = variants(config, faces, before)
        for variant in runs:
          variant.steps(args.warmup, batch_size, timed=False)
        for _ in range(args.reps):
          for variant in runs:
            variant.steps(args.steps, batch_size, timed=True)
            load_log.sample()
        rate = {v.name: v.rate() for v in runs}
        alone = rate["step alone"]
        old = rate.get("before")
        rows.append([name, size, batch_size, alone, rate["device feed"],
                     rate["device feed"] / alone, rate["host feed"], rate["host feed"] / alone,
                     "n/a" if old is None else old,
                     "n/a" if old is None else rate["device feed"] / old])
        print("  " + ", ".join(f"{k} {v:.1f} img/s" for k, v in rate.items()), flush=True)
        del runs
  body = (f"Training images/s on {device_name}: the step alone on pairs already on the devices, "
          f"the real loop (feed + masks drawn on the device + step) with the faces resident on "
          f"the devices (device feed) or sent as uint8 each step (host feed), and the pipeline "
          f"of {args.before or '(none)'} (TensorFlow masks in tf.data, float32 pairs) feeding "
          f"the same step; {args.num_faces} faces; medians of {args.reps} alternating "
          f"repetitions of {args.steps} steps after {args.warmup} warm-up steps.\n\n"
          f"{report.table(HEADER, rows)}\n\nMasks alone (jit(maskae.masks.synthesize), "
          f"{args.configs.split(',')[0]} config's mask mix):\n\n"
          f"{report.table(['size', 'batch', 'masks/s'], mask_rows)}")
  print("\n" + body, flush=True)
  report.append(args.results, f"End-to-end training speed on {device_name}", body, load_log,
                PACKAGES)


if __name__ == "__main__":
  main()
