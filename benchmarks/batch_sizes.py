"""Training speed on one accelerator (or the CPU) over batch sizes, for the paper model and ours.

  python benchmarks/batch_sizes.py [--size 256] [--batch_sizes 8,16,32,64,128,256]
      [--configs paper,utkface] [--override model.upsampling=bilinear ...] [--reps 5]
      [--steps 10] [--warmup 2] [--results benchmarks/RESULTS.md] [--quick]

For each model config (paper: configs/paper.py; utkface: configs/utkface.py's best model), with
any --override KEY=VALUE applied to it (a candidate model's speed), and batch size, maskae's jitted train step (forward, backward, Adam; maskae.train_step) runs on the
first device of the default JAX backend over random arrays at --size. Two figures per setting,
medians of --reps repetitions of --steps steps after --warmup: with the batches already on the
device (the step alone), and with each batch copied from host memory first (as maskae.train feeds
it). Each model runs in its own process, batch sizes ascending, so the backend's
peak_bytes_in_use (where it reports one: GPU, TPU) after a row is that row's peak. Uses JAX only (no TensorFlow), so it runs on accelerator machines without TF.
"""

import argparse
import ast
import os
import statistics
import sys
import tempfile
import time

if __package__ in (None, ""):  # run as a file: the repository root holds `benchmarks`
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np

from benchmarks import report, workers

FULL = dict(size=256, batch_sizes="8,16,32,64,128,256", reps=5, steps=10, warmup=2)
QUICK = dict(size=32, batch_sizes="8", reps=1, steps=2, warmup=1)
PACKAGES = ("jax", "jaxlib", "flax", "optax", "numpy")


def model_config(name: str, size: int, batch_size: int, overrides=()):
  """configs/paper.py or configs/utkface.py (best model) at `size` and `batch_size`, with the
  "KEY=VALUE" `overrides` (VALUE a Python literal, else a string) applied."""
  from configs import paper, utkface
  configs = {"paper": paper.get_config, "utkface": utkface.get_config}
  if name not in configs:
    raise SystemExit(f"--configs: unknown config {name!r}; valid: {', '.join(configs)}")
  config = configs[name]()
  config.data.image_size, config.data.batch_size = size, batch_size
  for item in overrides:
    key, _, text = item.partition("=")
    try:
      value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
      value = text
    *path, field = key.split(".")
    node = config
    for part in path:
      node = node.get(part)
    if not hasattr(node, "keys") or field not in node:
      raise SystemExit(f"--override {item}: no config field {key}")
    try:
      node[field] = tuple(value) if isinstance(value, list) else value
    except TypeError as error:
      raise SystemExit(f"--override {item}: {error}") from None
  return config


def measure(name: str, size: int, batch_size: int, args) -> dict:
  """images/s (device-resident and host-fed batches) and peak device memory for one setting."""
  import jax
  from maskae import models, train_step

  config = model_config(name, size, batch_size, args.override)
  device = jax.devices()[0]
  mesh = train_step.data_mesh([device])
  model = models.create_model(config.model)
  state = train_step.replicate(train_step.create_train_state(model, config, jax.random.key(0)),
                               mesh)
  step_fn = train_step.make_pair_train_step(config, mesh)
  rng = np.random.default_rng(0)
  host = [{"masked": rng.random((batch_size, size, size, 3), np.float32),
           "clean": rng.random((batch_size, size, size, 3), np.float32),
           "alpha": (rng.random((batch_size, size, size, 1)) < 0.3).astype(np.float32)}
          for _ in range(2)]
  on_device = [train_step.shard_batch(b, mesh) for b in host]

  def one_pass(from_host: bool) -> float:
    nonlocal state
    start = time.perf_counter()
    for i in range(args.steps):
      batch = train_step.shard_batch(host[i % 2], mesh) if from_host else on_device[i % 2]
      state, metrics = step_fn(state, batch)
    jax.block_until_ready((state, metrics))
    return time.perf_counter() - start

  for _ in range(args.warmup):
    one_pass(False)
    one_pass(True)
  device_s, host_s = [], []
  for _ in range(args.reps):  # alternate, so drift affects both alike
    device_s.append(one_pass(False))
    host_s.append(one_pass(True))
  images = args.steps * batch_size
  stats = device.memory_stats() or {}
  peak = stats.get("peak_bytes_in_use")
  return {"device_rate": images / statistics.median(device_s),
          "host_rate": images / statistics.median(host_s),
          "ms_per_step": 1000 * statistics.median(device_s) / args.steps,
          "peak_mib": peak / 2**20 if peak is not None else None}


HEADER = ["model", "batch", "images/s (batch on device)", "ms/step", "images/s (fed from host)",
          "peak device MiB"]


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--size", type=int, help=f"image size ({FULL['size']})")
  parser.add_argument("--batch_sizes", help=f"comma-separated ({FULL['batch_sizes']})")
  parser.add_argument("--configs", default="paper,utkface", help="paper and/or utkface")
  parser.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                      help="a config field set on every model, e.g. model.upsampling=bilinear "
                           "(repeatable)")
  parser.add_argument("--reps", type=int, help=f"timed repetitions ({FULL['reps']})")
  parser.add_argument("--steps", type=int, help=f"train steps per repetition ({FULL['steps']})")
  parser.add_argument("--warmup", type=int, help=f"untimed repetitions first ({FULL['warmup']})")
  parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
  args = report.parse_args(parser, FULL, QUICK)
  batch_sizes = sorted(int(b) for b in args.batch_sizes.split(","))
  for name in args.configs.split(","):  # a bad name or override fails here, before any worker
    model_config(name, args.size, batch_sizes[0], args.override)
  if args.worker:  # one model, all batch sizes, in this process
    import jax
    device = jax.devices()[0]
    workers.send({"device": f"{device.device_kind} ({device.platform})"})
    for batch_size in batch_sizes:
      workers.send({"batch_size": batch_size,
                    **measure(args.configs, args.size, batch_size, args)})
    return
  load_log = report.LoadLog()  # the parent leaves the accelerator to its workers
  print(f"{report.machine()}; {args.size} px", flush=True)
  rows, device = [], "?"
  with tempfile.TemporaryDirectory(prefix="maskae-batch-sizes-") as log_dir:
    for name in args.configs.split(","):
      command = [sys.executable, os.path.abspath(__file__), "--worker", "--configs", name,
                 *(f"--{k}={getattr(args, k)}" for k in ("size", "batch_sizes", "reps", "steps",
                                                         "warmup")),
                 *(f"--override={item}" for item in args.override)]
      worker = workers.Worker(name, command, log_dir)
      device = worker.receive()["device"]
      for i in range(len(batch_sizes)):
        result = worker.finish() if i == len(batch_sizes) - 1 else worker.receive()
        load_log.sample()
        print(f"  {name} batch {result['batch_size']}: {result['device_rate']:.0f} images/s",
              flush=True)
        peak = result["peak_mib"]
        rows.append([name, result["batch_size"], result["device_rate"], result["ms_per_step"],
                     result["host_rate"], "n/a" if peak is None else peak])
  changed = f" with {', '.join(args.override)}" if args.override else ""
  body = (f"Train step (forward, backward, Adam; maskae.train_step.make_pair_train_step) at "
          f"{args.size} px on one {device}, float32{changed}; medians of "
          f"{args.reps} repetitions of {args.steps} steps after {args.warmup} warm-ups; one "
          f"process per model, batch sizes ascending.\n\n"
          f"{report.table(HEADER, rows)}")
  print("\n" + body, flush=True)
  report.append(args.results, f"Batch sizes on {device}", body, load_log, PACKAGES)


if __name__ == "__main__":
  main()
