"""Inference speed of `unmask`-style prediction: images/s and latency, per model, size and batch.

  .venv/bin/python benchmarks/inference.py [--sizes 128,256] [--batches 1,32] [--reps 7]
      [--calls 5] [--results benchmarks/RESULTS.md] [--quick]

Models: the paper model (configs/paper.py) and the same with skip connections and the mask head.
Each is applied as maskae.inference's `predict` does: a jitted `model.apply` returning the output
image, numpy in and `np.asarray(...)` out, so every call waits for its result. For each size and
batch, repetitions of --calls calls alternate over the models; medians after one warm-up call.
Latency per image is the call's latency divided by the batch.
"""

import argparse
import os
import statistics
import sys
import time

if __package__ in (None, ""):  # run as a file: the repository root holds `benchmarks`
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax
import numpy as np

from benchmarks import report
from configs import paper
from maskae import models

FULL = dict(sizes="128,256", batches="1,32", reps=7, calls=5)
QUICK = dict(sizes="32", batches="1,4", reps=2, calls=2)
MODELS = {"paper": {}, "skip + mask head": {"skip_connections": True, "name": "mask_composite"}}


def predictor(overrides: dict, size: int):
  """(predict(images) -> numpy output, parameter count) for the paper model with `overrides`."""
  model_config = paper.get_config().model
  model_config.update(overrides)
  model = models.create_model(model_config)
  params = model.init(jax.random.key(0), np.zeros((1, size, size, 3), np.float32))["params"]
  apply = jax.jit(lambda params, images: model.apply({"params": params}, images)["output"])
  count = sum(p.size for p in jax.tree.leaves(params))
  return (lambda images: np.asarray(apply(params, np.asarray(images, np.float32)))), count


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--sizes", help=f"comma-separated image sizes ({FULL['sizes']})")
  parser.add_argument("--batches", help=f"comma-separated batch sizes ({FULL['batches']})")
  parser.add_argument("--reps", type=int, help=f"timed repetitions ({FULL['reps']})")
  parser.add_argument("--calls", type=int, help=f"calls per repetition ({FULL['calls']})")
  args = report.parse_args(parser, FULL, QUICK)

  load_log = report.LoadLog()
  print(f"{report.machine()}; {args.reps} repetitions of {args.calls} calls; "
        f"load {load_log.before:.2f}", flush=True)
  rng = np.random.default_rng(0)
  rows = []
  for size in (int(s) for s in args.sizes.split(",")):
    predictors = {name: predictor(overrides, size) for name, overrides in MODELS.items()}
    for batch in (int(b) for b in args.batches.split(",")):
      images = rng.random((batch, size, size, 3), np.float32)
      for predict, _ in predictors.values():
        predict(images)  # compiles
      seconds = {name: [] for name in predictors}
      for _ in range(args.reps):
        for name, (predict, _) in predictors.items():
          start = time.perf_counter()
          for _ in range(args.calls):
            predict(images)
          seconds[name].append((time.perf_counter() - start) / args.calls)
      load = load_log.sample()
      for name, (_, count) in predictors.items():
        call = statistics.median(seconds[name])
        rows.append([name, count, size, batch, batch / call, 1000 * call, 1000 * call / batch,
                     load])
        print(f"  {name}, {size} px, batch {batch}: {batch / call:.1f} images/s, "
              f"{1000 * call:.1f} ms per call", flush=True)
  header = ["model", "params", "size", "batch", "images/s", "ms per call", "ms per image", "load"]
  body = ("Inference as maskae.inference's `predict` (jitted `model.apply`, numpy in and out, "
          f"each call waits for its result); medians of {args.reps} repetitions of {args.calls} "
          "calls alternating over the models.\n\n" + report.table(header, rows))
  print("\n" + body, flush=True)
  report.append(args.results, "Inference", body, load_log)


if __name__ == "__main__":
  main()
