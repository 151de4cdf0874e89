"""Train-step cost of each quality lever against configs/utkface.py's model, in one process.

  python benchmarks/lever_costs.py [--size 128] [--batch 32] [--reps 5] [--steps 5]
      [--warmup 1] [--only TEXT] [--results benchmarks/RESULTS.md] [--quick]

Each variant is configs/utkface.py's best config with its overrides (docs/pilots.md's quality
pilots). maskae's jitted train step (forward, backward, Adam, and the discriminator's step with
the adversarial loss; maskae.train_step.make_pair_train_step) runs on random pairs on the first
device; the variants take turns, one repetition of --steps steps each per round, so drift on a
shared machine affects them alike; --only keeps the base and the variants whose overrides contain
TEXT. Prints the median ms/step and its ratio to the base model.
"""

import argparse
import os
import statistics
import sys
import time

if __package__ in (None, ""):  # run as a file: the repository root holds `benchmarks`
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np

from benchmarks import batch_sizes, report

FULL = dict(size=128, batch=32, reps=5, steps=5, warmup=1)
QUICK = dict(size=32, batch=4, reps=1, steps=1, warmup=1)
# (label, overrides of configs/utkface.py's best config)
VARIANTS = (
    ("configs/utkface.py", ()),
    ("2 FFC blocks, encoder", ("model.fourier_blocks=2",)),
    ("2 FFC blocks, decoder", ("model.fourier_blocks=2", "model.fourier_at=decoder")),
    ("gated decoder", ("model.gated_decoder=True",)),
    ("8 bottleneck convs", ("model.bottleneck_convs=8",)),
    ("U-Net skips", ("model.skip_connections=True",)),
    ("adversarial loss", ("train.adversarial_weight=0.01",)),
    ("autoencoder on the whole photo (not kept from the mask's pixels)",
     ("model.composite.erase_region=False",)),
)
HEADER = ["variant", "overrides", "ms/step", "x base"]


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  for key in FULL:
    parser.add_argument(f"--{key}", type=int, help=f"({FULL[key]})")
  parser.add_argument("--only", default="", help="the variants whose overrides contain this")
  args = report.parse_args(parser, FULL, QUICK)
  import jax
  from maskae import models, train_step

  load_log = report.LoadLog()
  device = jax.devices()[0]
  mesh = train_step.data_mesh([device])
  rng = np.random.default_rng(0)
  size, batch = args.size, args.batch
  pairs = train_step.shard_batch(
      {"masked": rng.random((batch, size, size, 3), np.float32),
       "clean": rng.random((batch, size, size, 3), np.float32),
       "alpha": (rng.random((batch, size, size, 1)) < 0.3).astype(np.float32)}, mesh)
  runs = []
  chosen = [(label, overrides) for i, (label, overrides) in enumerate(VARIANTS)
            if i == 0 or args.only in " ".join(overrides)]
  for label, overrides in chosen:
    config = batch_sizes.model_config("utkface", size, batch, overrides)
    state = train_step.replicate(train_step.create_train_state(
        models.create_model(config.model), config, jax.random.key(0)), mesh)
    runs.append({"label": label, "overrides": overrides, "state": state, "seconds": [],
                 "step": train_step.make_pair_train_step(config, mesh)})

  def one_pass(run) -> float:
    start = time.perf_counter()
    for _ in range(args.steps):
      run["state"], metrics = run["step"](run["state"], pairs)
    jax.block_until_ready((run["state"], metrics))
    return time.perf_counter() - start

  for _ in range(args.warmup):
    for run in runs:
      one_pass(run)
  for _ in range(args.reps):
    for run in runs:
      run["seconds"].append(one_pass(run))
    load_log.sample()
  ms = [1000 * statistics.median(run["seconds"]) / args.steps for run in runs]
  rows = [[run["label"], ", ".join(run["overrides"]) or "(none)", value, value / ms[0]]
          for run, value in zip(runs, ms)]
  body = (f"Train step (forward, backward, Adam; the discriminator's step too with the "
          f"adversarial loss) of configs/utkface.py's model and each quality lever, at {size} px, "
          f"batch {batch}, on one {device.device_kind} ({device.platform}); medians of "
          f"{args.reps} rounds of {args.steps} steps per variant, the variants taking turns in "
          f"one process.\n\n{report.table(HEADER, rows)}")
  print(body, flush=True)
  report.append(args.results, f"Quality levers' step cost on {device.device_kind}", body,
                load_log, batch_sizes.PACKAGES)


if __name__ == "__main__":
  main()
