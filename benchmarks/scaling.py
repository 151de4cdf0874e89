"""Data-parallel train step over N host devices: same results as one device, and its speed.

  .venv/bin/python benchmarks/scaling.py [--devices 1,2,4] [--size 128] [--batch_size 32]
      [--reps 5] [--steps 3] [--warmup 1] [--results benchmarks/RESULTS.md] [--quick]

Each N runs in its own worker process with XLA_FLAGS=--xla_force_host_platform_device_count=N:
maskae.train_step.make_pair_train_step over train_step.data_mesh() (all N devices), the paper model
(configs/paper.py) at --size, the same initial state and the same global batches of
--batch_size for every N. Correctness: from the initial state, each N trains on the same
--check_steps batches and reports its per-step losses and gradient norms, compared with N=1's.
Speed: repetitions of --steps steps alternate over the N (blocking only at the end of each),
medians after --warmup. On one CPU host the N devices share the same cores, so the speed column
shows the cost of splitting the batch and of the gradient all-reduce, not added compute.
"""

import argparse
import os
import statistics
import sys
import tempfile

if __package__ in (None, ""):  # run as a file: the repository root holds `benchmarks`
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import report, workers

FULL = dict(devices="1,2,4", size=128, reps=5, steps=3, warmup=1)
QUICK = dict(devices="1,2", size=32, reps=2, steps=2, warmup=1)
LOSS_RTOL = 1e-5


def worker(args) -> None:
  """One N: correctness steps, then timed repetitions on the parent's go."""
  from maskae import host_memory
  host_memory.reuse_freed_memory()  # as `python -m maskae.main` does
  import jax
  import numpy as np
  from configs import paper
  from maskae import models, train_step

  config = paper.get_config()
  config.data.image_size, config.data.batch_size = args.size, args.batch_size
  rng = np.random.default_rng(0)
  count = max(args.steps, args.check_steps) * args.batch_size
  data = {"masked": rng.random((count, args.size, args.size, 3), np.float32),
          "clean": rng.random((count, args.size, args.size, 3), np.float32),
          "alpha": rng.random((count, args.size, args.size, 1), np.float32)}
  mesh = train_step.data_mesh()
  model = models.create_model(config.model)
  state = train_step.replicate(train_step.create_train_state(model, config, jax.random.key(0)),
                               mesh)
  step_fn = train_step.make_pair_train_step(config, mesh)

  def batch(i):
    return train_step.shard_batch(
        {k: v[i * args.batch_size:(i + 1) * args.batch_size] for k, v in data.items()}, mesh)

  losses, grad_norms = [], []
  for i in range(args.check_steps):
    state, metrics = step_fn(state, batch(i))
    losses.append(float(metrics["loss"]))
    grad_norms.append(float(metrics["grad_norm"]))
  workers.send({"devices": jax.device_count(), "losses": losses, "grad_norms": grad_norms})

  def one_pass():
    nonlocal state
    for i in range(args.steps):
      state, metrics = step_fn(state, batch(i))
    jax.block_until_ready((state, metrics))

  workers.serve_timed_passes(one_pass, args.warmup, args.reps)


HEADER = ["devices", "global batch", "per device", "images/s", "vs 1 device", "CPU ms/image",
          "max loss rel diff vs 1", "same loss", "grad norm / 1 device's"]


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--devices", help=f"comma-separated device counts ({FULL['devices']})")
  parser.add_argument("--size", type=int, help=f"image size ({FULL['size']})")
  parser.add_argument("--batch_size", type=int, default=32, help="global batch size")
  parser.add_argument("--reps", type=int, help=f"timed repetitions per N ({FULL['reps']})")
  parser.add_argument("--steps", type=int, help=f"train steps per repetition ({FULL['steps']})")
  parser.add_argument("--warmup", type=int, help=f"untimed repetitions first ({FULL['warmup']})")
  parser.add_argument("--check_steps", type=int, default=3, help="steps compared with N=1")
  parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
  args = report.parse_args(parser, FULL, QUICK)
  if args.worker:
    worker(args)
    return

  counts = [int(n) for n in args.devices.split(",")]
  if any(args.batch_size % n for n in counts):
    raise SystemExit(f"--batch_size {args.batch_size} must divide by every --devices count")
  load_log = report.LoadLog()
  print(f"{report.machine()}; {args.size} px, global batch {args.batch_size}, {args.reps} "
        f"repetitions of {args.steps} steps per device count; load {load_log.before:.2f}",
        flush=True)
  command = [sys.executable, os.path.abspath(__file__), "--worker", "--size", str(args.size),
             "--batch_size", str(args.batch_size), "--reps", str(args.reps), "--steps",
             str(args.steps), "--warmup", str(args.warmup), "--check_steps", str(args.check_steps)]
  with tempfile.TemporaryDirectory(prefix="maskae-scaling-") as log_dir:
    running = {}
    for n in counts:
      flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={n}"
      running[n] = workers.Worker(f"devices-{n}", command, log_dir,
                                  env={**os.environ, "XLA_FLAGS": flags.strip()})
    checks = {n: w.receive() for n, w in running.items()}
    for w in running.values():
      w.receive()  # warmed up
    timings = {n: [] for n in counts}
    for rep in range(args.reps):
      for n, w in running.items():
        timings[n].append(w.timed_pass())
      load_log.sample()
      print(f"  rep {rep + 1}/{args.reps}: " + ", ".join(
          f"N={n} {args.steps * args.batch_size / t[-1]['seconds']:.1f} images/s"
          for n, t in timings.items()), flush=True)
    for w in running.values():
      w.finish()
  for n, check in checks.items():
    if check["devices"] != n:
      raise SystemExit(f"worker for {n} devices saw {check['devices']}")
  images = args.steps * args.batch_size
  rate = {n: images / statistics.median(t["seconds"] for t in timings[n]) for n in counts}
  base = counts[0]
  rows = []
  for n in counts:
    diff = max(abs(a - b) / abs(b) for a, b in zip(checks[n]["losses"], checks[base]["losses"]))
    grad_ratio = statistics.median(a / b for a, b in zip(checks[n]["grad_norms"],
                                                          checks[base]["grad_norms"]))
    cpu_ms = 1000 * statistics.median(t["cpu_seconds"] for t in timings[n]) / images
    rows.append([n, args.batch_size, args.batch_size // n, rate[n], rate[n] / rate[base], cpu_ms,
                 diff, "yes" if diff <= LOSS_RTOL else "NO", grad_ratio])
  body = (f"Data-parallel train step (maskae.train_step.make_pair_train_step over data_mesh()) of the "
          f"paper model at {args.size} px on N host devices (one process each, "
          f"--xla_force_host_platform_device_count=N) sharing this machine's cores; images/s are "
          f"medians of {args.reps} alternating repetitions of {args.steps} steps; losses and "
          f"gradient norms of the first {args.check_steps} steps from the same initial state and "
          f"batches (same loss: relative difference <= {LOSS_RTOL}).\n\n"
          f"{report.table(HEADER, rows)}")
  print("\n" + body, flush=True)
  report.append(args.results, "Data-parallel scaling", body, load_log)


if __name__ == "__main__":
  main()
