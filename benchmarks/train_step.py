"""Training speed of the paper model: maskae's train step against the same model in Keras.

  .venv/bin/python benchmarks/train_step.py [--sizes 128,256] [--batch_size 32] [--reps 7]
      [--steps 6] [--warmup 2] [--results benchmarks/RESULTS.md] [--quick]

For each image size two worker processes (this file with --worker) train configs/paper.py's model
on the same in-memory random arrays: maskae's jitted data-parallel step
(maskae.train_step.make_train_step; forward, backward, Adam; one host batch sharded per step as in
maskae.train) and the same layers in Keras 3 on TensorFlow (`model.fit`, Adam, MAE). A repetition
is one pass over --steps batches (for Keras, one epoch of `fit`); repetitions alternate maskae,
Keras, maskae, ... and are timed to the end of their last step (maskae blocks only there, as
its training loop does); medians follow --warmup untimed repetitions. Before timing, Keras takes
maskae's initial weights and both compute the loss and its gradients on the same batch: the model
math is identical when layer shapes, parameter counts, loss and gradients agree. Each worker's
peak resident memory (ru_maxrss, warm-up and timed steps included) is read at its exit. Prints
markdown tables and appends them, with machine, date, versions and load, to --results.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

if __package__ in (None, ""):  # run as a file: the repository root holds `benchmarks`
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np

from benchmarks import report
from configs import paper

FULL = dict(sizes="128,256", reps=7, steps=6, warmup=2)
QUICK = dict(sizes="32", reps=2, steps=2, warmup=1)
MESSAGE = "BENCH "  # prefix of the workers' JSON lines on stdout


def paper_config(size: int, batch_size: int):
  """configs/paper.py at `size` and `batch_size`."""
  config = paper.get_config()
  config.data.image_size, config.data.batch_size = size, batch_size
  model = config.model
  if (model.pooling, model.upsampling, model.latent_channels, model.latent_dense,
      model.skip_connections, model.mask_head) != ("max", "repeat", 0, 0, False, False):
    raise ValueError("configs/paper.py's model changed; update the Keras twin in benchmarks/")
  return config


def arrays(size: int, count: int) -> dict:
  """`count` random training pairs (the same in every worker)."""
  rng = np.random.default_rng(0)
  return {"masked": rng.random((count, size, size, 3), np.float32),
          "clean": rng.random((count, size, size, 3), np.float32),
          "alpha": rng.random((count, size, size, 1), np.float32)}


def _send(message: dict) -> None:
  print(MESSAGE + json.dumps(message), flush=True)


def _wait_for_go() -> None:
  if sys.stdin.readline().strip() != "go":
    raise SystemExit("benchmark parent went away")


def _peak_rss_mib() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _conv_params_in_keras_order(params, num_stages: int) -> list:
  names = ([("encoder", f"conv{i}") for i in range(num_stages)]
           + [("decoder", f"conv{i}") for i in range(num_stages)] + [("decoder", "out")])
  return [np.asarray(params[part][name][leaf]) for part, name in names for leaf in ("kernel", "bias")]


def maskae_worker(args, exchange: str) -> None:
  """Trains with maskae.train_step; first writes its initial weights, loss and gradients."""
  import jax
  from maskae import models, train_step

  config = paper_config(args.size, args.batch_size)
  data = arrays(args.size, args.steps * args.batch_size)
  model = models.create_model(config.model)
  state = train_step.create_train_state(model, config, jax.random.key(0))
  first = {k: v[:args.batch_size] for k, v in data.items()}

  def loss_fn(params):
    outputs = model.apply({"params": params}, first["masked"])
    return train_step.reconstruction_loss(outputs, first, config.train)[0]

  loss, grads = jax.value_and_grad(loss_fn)(state.params)
  stages = len(config.model.features)
  weights = _conv_params_in_keras_order(state.params, stages)
  np.savez(exchange, loss=np.float64(loss),
           **{f"w{i}": w for i, w in enumerate(weights)},
           **{f"g{i}": g for i, g in enumerate(_conv_params_in_keras_order(grads, stages))})
  _send({"params": int(sum(w.size for w in weights)), "shapes": [w.shape for w in weights],
         "loss": float(loss)})

  mesh = train_step.data_mesh()
  state = train_step.replicate(state, mesh)
  step_fn = train_step.make_train_step(config, mesh)

  def one_pass():
    nonlocal state
    for i in range(args.steps):
      batch = train_step.shard_batch(
          {k: v[i * args.batch_size:(i + 1) * args.batch_size] for k, v in data.items()}, mesh)
      state, metrics = step_fn(state, batch)
    jax.block_until_ready((state, metrics))

  for _ in range(args.warmup):
    one_pass()
  _send({"ready": True})
  for _ in range(args.reps):
    _wait_for_go()
    start = time.perf_counter()
    one_pass()
    _send({"seconds": time.perf_counter() - start})
  _send({"peak_rss_mib": _peak_rss_mib()})


def keras_model(model_config, size: int):
  """The paper model in Keras: Conv2D stride s + ReLU + MaxPool2D per stage, then Conv2D + ReLU +
  UpSampling2D per stage and a sigmoid Conv2D to 3 channels."""
  import keras
  from keras import layers

  k, strides = model_config.kernel_size, model_config.strides
  inputs = keras.Input((size, size, 3))
  x = inputs
  for features in model_config.features:
    x = layers.Conv2D(features, k, strides=strides, padding="same", activation="relu")(x)
    x = layers.MaxPool2D(2)(x)
  for features in reversed(model_config.features):
    x = layers.Conv2D(features, k, padding="same", activation="relu")(x)
    x = layers.UpSampling2D(strides * 2)(x)
  outputs = layers.Conv2D(3, k, padding="same", activation="sigmoid")(x)
  return keras.Model(inputs, outputs)


def keras_worker(args, exchange: str) -> None:
  """Trains with Keras `fit` from maskae's initial weights, after checking loss and gradients."""
  os.environ["KERAS_BACKEND"] = "tensorflow"
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  import keras
  import tensorflow as tf

  config = paper_config(args.size, args.batch_size)
  data = arrays(args.size, args.steps * args.batch_size)
  model = keras_model(config.model, args.size)
  model.compile(optimizer=keras.optimizers.Adam(config.train.learning_rate), loss="mae")
  stored = np.load(exchange)
  count = len(model.weights)
  model.set_weights([stored[f"w{i}"] for i in range(count)])
  images, targets = data["masked"][:args.batch_size], data["clean"][:args.batch_size]
  with tf.GradientTape() as tape:
    loss = keras.losses.MeanAbsoluteError()(targets, model(images, training=True))
  grads = tape.gradient(loss, model.trainable_weights)
  grad_diff = max(float(np.max(np.abs(g.numpy() - stored[f"g{i}"])) / np.max(np.abs(stored[f"g{i}"])))
                  for i, g in enumerate(grads))
  _send({"params": int(model.count_params()), "shapes": [tuple(w.shape) for w in model.weights],
         "loss": float(loss), "grad_rel_diff": grad_diff})

  class Pace(keras.callbacks.Callback):
    """Warm-up epochs run freely; each timed epoch waits for the parent's go."""

    def on_epoch_begin(self, epoch, logs=None):
      if epoch == args.warmup:
        _send({"ready": True})
      if epoch >= args.warmup:
        _wait_for_go()
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
      if epoch >= args.warmup:
        _send({"seconds": time.perf_counter() - self.start})

  model.fit(data["masked"], data["clean"], batch_size=args.batch_size,
            epochs=args.warmup + args.reps, shuffle=False, verbose=0, callbacks=[Pace()])
  _send({"peak_rss_mib": _peak_rss_mib()})


class Worker:
  """A worker process and its line protocol (JSON messages out, `go` in)."""

  def __init__(self, kind: str, args, exchange: str, log_dir: str):
    self.kind = kind
    self.log_path = os.path.join(log_dir, f"{kind}-{args.size}.log")
    self.log = open(self.log_path, "w")
    command = [sys.executable, os.path.abspath(__file__), "--worker", kind, "--exchange", exchange,
               "--size", str(args.size), "--batch_size", str(args.batch_size),
               "--steps", str(args.steps), "--warmup", str(args.warmup), "--reps", str(args.reps)]
    self.proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=self.log, text=True)

  def receive(self) -> dict:
    for line in self.proc.stdout:
      if line.startswith(MESSAGE):
        return json.loads(line[len(MESSAGE):])
    self.proc.wait()
    self.log.close()
    with open(self.log_path) as f:
      tail = f.read()[-3000:]
    raise RuntimeError(f"{self.kind} worker exited with {self.proc.returncode}:\n{tail}")

  def timed_pass(self) -> float:
    self.proc.stdin.write("go\n")
    self.proc.stdin.flush()
    return self.receive()["seconds"]

  def finish(self) -> float:
    peak = self.receive()["peak_rss_mib"]
    self.proc.wait()
    self.log.close()
    return peak


def measure(args, size: int, load_log: report.LoadLog, work_dir: str) -> tuple[list, list]:
  """One size: the speed row and the model-math row."""
  args = argparse.Namespace(**{**vars(args), "size": size})
  exchange = os.path.join(work_dir, f"initial-{size}.npz")
  maskae = Worker("maskae", args, exchange, work_dir)
  maskae_check = maskae.receive()  # written before the Keras worker reads it
  keras = Worker("keras", args, exchange, work_dir)
  keras_check = keras.receive()
  maskae.receive()  # warmed up
  keras.receive()
  seconds = {"maskae": [], "keras": []}
  for rep in range(args.reps):
    for name, worker in (("maskae", maskae), ("keras", keras)):
      seconds[name].append(worker.timed_pass())
    load = load_log.sample()
    rates = {n: args.steps * args.batch_size / s[-1] for n, s in seconds.items()}
    print(f"  {size} px rep {rep + 1}/{args.reps}: maskae {rates['maskae']:.1f} images/s, "
          f"Keras {rates['keras']:.1f} images/s, load {load:.2f}", flush=True)
  peak = {"maskae": maskae.finish(), "keras": keras.finish()}
  images = args.steps * args.batch_size
  rate = {n: images / statistics.median(s) for n, s in seconds.items()}
  paired = statistics.median(k / m for m, k in zip(seconds["maskae"], seconds["keras"]))
  speed = [size, args.batch_size, rate["maskae"], rate["keras"], rate["maskae"] / rate["keras"],
           paired, peak["maskae"], peak["keras"], statistics.median(load_log.during[-args.reps:])]
  same_shapes = [tuple(s) for s in maskae_check["shapes"]] == [tuple(s) for s in keras_check["shapes"]]
  identical = (same_shapes and maskae_check["params"] == keras_check["params"]
               and abs(maskae_check["loss"] - keras_check["loss"]) <= 1e-5
               and keras_check["grad_rel_diff"] <= 1e-3)
  math = [size, maskae_check["params"], keras_check["params"], "yes" if same_shapes else "NO",
          maskae_check["loss"], keras_check["loss"], keras_check["grad_rel_diff"],
          "yes" if identical else "NO"]
  return speed, math


SPEED_HEADER = ["size", "batch", "maskae images/s", "Keras images/s", "maskae/Keras",
                "paired ratio", "maskae peak RSS MiB", "Keras peak RSS MiB", "load"]
MATH_HEADER = ["size", "maskae params", "Keras params", "same layer shapes", "maskae loss",
               "Keras loss", "max grad rel diff", "identical math"]


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--sizes", help=f"comma-separated image sizes (default {FULL['sizes']})")
  parser.add_argument("--batch_size", type=int, default=32)
  parser.add_argument("--reps", type=int, help=f"timed repetitions each (default {FULL['reps']})")
  parser.add_argument("--steps", type=int, help=f"train steps per repetition ({FULL['steps']})")
  parser.add_argument("--warmup", type=int, help=f"untimed repetitions first ({FULL['warmup']})")
  parser.add_argument("--quick", action="store_true",
                      help=f"smoke-test preset: {QUICK} unless given")
  parser.add_argument("--results", default=report.RESULTS,
                      help="markdown file the tables are appended to ('' for none)")
  parser.add_argument("--worker", choices=("maskae", "keras"), help=argparse.SUPPRESS)
  parser.add_argument("--exchange", help=argparse.SUPPRESS)
  parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
  args = parser.parse_args()
  for key, value in (QUICK if args.quick else FULL).items():
    if getattr(args, key) is None:
      setattr(args, key, value)
  if args.worker:
    (maskae_worker if args.worker == "maskae" else keras_worker)(args, args.exchange)
    return

  load_log = report.LoadLog()
  print(f"{report.machine()}; batch {args.batch_size}, {args.reps} timed repetitions of "
        f"{args.steps} steps after {args.warmup} warm-up; load {load_log.before:.2f}", flush=True)
  speed_rows, math_rows = [], []
  with tempfile.TemporaryDirectory(prefix="maskae-bench-") as work_dir:
    for size in (int(s) for s in args.sizes.split(",")):
      speed, math = measure(args, size, load_log, work_dir)
      speed_rows.append(speed)
      math_rows.append(math)
  body = (f"Full training step (forward, backward, Adam) of the paper model, batch "
          f"{args.batch_size}; images/s are medians of {args.reps} alternating repetitions of "
          f"{args.steps} steps; paired ratio: median over repetitions of Keras time / maskae time; "
          "peak RSS: each worker process's ru_maxrss.\n\n"
          f"{report.table(SPEED_HEADER, speed_rows)}\n\n"
          "Model math, from maskae's initial weights on the first batch (Keras loss "
          "`mae`, gradients by tf.GradientTape):\n\n"
          f"{report.table(MATH_HEADER, math_rows)}\n\n"
          "PyTorch: not measured (optional in the issue; torch is not a maskae dependency).")
  print("\n" + body, flush=True)
  report.append(args.results, "Train step: maskae vs Keras", body, load_log)


if __name__ == "__main__":
  main()
