"""Training speed of the paper model: maskae's train step against the same model in Keras.

  .venv/bin/python benchmarks/train_step.py [--sizes 128,256] [--batch_size 32] [--reps 7]
      [--steps 6] [--warmup 2] [--results benchmarks/RESULTS.md] [--quick]

For each image size two worker processes (this file with --worker) train configs/paper.py's model
on the same in-memory random arrays: maskae's jitted data-parallel step
(maskae.train_step.make_pair_train_step; forward, backward, Adam; one host batch sharded per step as in
maskae.train; maskae.main's allocator setting) and the same layers in Keras 3 on TensorFlow
(`model.fit`, Adam, MAE). A repetition is one pass over --steps batches (for Keras, one epoch of
`fit`); repetitions alternate maskae, Keras, maskae, ... and are timed to the end of their last
step (maskae blocks only there, as its training loop does); medians follow --warmup untimed
repetitions. Before timing, Keras takes
maskae's initial weights and both compute the loss and its gradients on the same batch: the model
math is identical when layer shapes, parameter counts, loss and gradients agree. Each worker's
peak resident memory (ru_maxrss, warm-up and timed steps included) is read at its exit. Prints
markdown tables and appends them, with machine, date, versions and load, to --results.
"""

import argparse
import os
import statistics
import sys
import tempfile

if __package__ in (None, ""):  # run as a file: the repository root holds `benchmarks`
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np

from benchmarks import report, workers
from configs import paper

FULL = dict(sizes="128,256", reps=7, steps=6, warmup=2)
QUICK = dict(sizes="32", reps=2, steps=2, warmup=1)


def paper_config(size: int, batch_size: int):
  """configs/paper.py at `size` and `batch_size`."""
  config = paper.get_config()
  config.data.image_size, config.data.batch_size = size, batch_size
  model = config.model
  if (model.pooling, model.upsampling, model.latent_channels, model.latent_dense,
      model.skip_connections, model.name) != ("max", "repeat", 0, 0, False, "autoencoder"):
    raise ValueError("configs/paper.py's model changed; update the Keras twin in benchmarks/")
  return config


def arrays(size: int, count: int) -> dict:
  """`count` random training pairs (the same in every worker)."""
  rng = np.random.default_rng(0)
  return {"masked": rng.random((count, size, size, 3), np.float32),
          "clean": rng.random((count, size, size, 3), np.float32),
          "alpha": rng.random((count, size, size, 1), np.float32)}


def _conv_params_in_keras_order(params, num_stages: int) -> list:
  names = ([("encoder", f"conv{i}") for i in range(num_stages)]
           + [("decoder", f"conv{i}") for i in range(num_stages)] + [("decoder", "out")])
  return [np.asarray(params[part][name][leaf])
          for part, name in names for leaf in ("kernel", "bias")]


def maskae_worker(args, exchange: str) -> None:
  """Trains with maskae.train_step; first writes its initial weights, loss and gradients."""
  from maskae import host_memory
  host_memory.reuse_freed_memory()  # as `python -m maskae.main` does
  import jax
  from maskae import models, train_step

  config = paper_config(args.size, args.batch_size)
  data = arrays(args.size, args.steps * args.batch_size)
  model = models.create_model(config.model)
  state = train_step.create_train_state(model, config, jax.random.key(0))
  first = {k: v[:args.batch_size] for k, v in data.items()}

  def loss_fn(params):
    outputs = model.apply({"params": params}, first["masked"], train=True)
    return train_step.reconstruction_loss(outputs, first, config.train)[0]

  loss, grads = jax.value_and_grad(loss_fn)(state.params)
  stages = len(config.model.features)
  weights = _conv_params_in_keras_order(state.params, stages)
  np.savez(exchange, **{f"w{i}": w for i, w in enumerate(weights)},
           **{f"g{i}": g for i, g in enumerate(_conv_params_in_keras_order(grads, stages))})
  workers.send({"params": int(sum(w.size for w in weights)), "shapes": [w.shape for w in weights],
                "loss": float(loss)})

  mesh = train_step.data_mesh()
  state = train_step.replicate(state, mesh)
  step_fn = train_step.make_pair_train_step(config, mesh)

  def one_pass():
    nonlocal state
    for i in range(args.steps):
      batch = train_step.shard_batch(
          {k: v[i * args.batch_size:(i + 1) * args.batch_size] for k, v in data.items()}, mesh)
      state, metrics = step_fn(state, batch)
    jax.block_until_ready((state, metrics))

  workers.serve_timed_passes(one_pass, args.warmup, args.reps)


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
  grad_diff = max(float(np.max(np.abs(g.numpy() - stored[f"g{i}"]))
                        / np.max(np.abs(stored[f"g{i}"]))) for i, g in enumerate(grads))
  workers.send({"params": int(model.count_params()),
                "shapes": [tuple(w.shape) for w in model.weights], "loss": float(loss),
                "grad_rel_diff": grad_diff})

  timer = workers.Timer()

  class Pace(keras.callbacks.Callback):
    """Warm-up epochs run freely; each timed epoch waits for the parent's go."""

    def on_epoch_begin(self, epoch, logs=None):
      if epoch == args.warmup:
        workers.send({"ready": True})
      if epoch >= args.warmup:
        workers.wait_for_go()
        timer.start()

    def on_epoch_end(self, epoch, logs=None):
      if epoch >= args.warmup:
        timer.report()

  model.fit(data["masked"], data["clean"], batch_size=args.batch_size,
            epochs=args.warmup + args.reps, shuffle=False, verbose=0, callbacks=[Pace()])
  workers.send({"peak_rss_mib": workers.peak_rss_mib()})


def measure(args, size: int, load_log: report.LoadLog, work_dir: str) -> tuple[list, list, list]:
  """One size: the speed, cost and model-math rows."""
  exchange = os.path.join(work_dir, f"initial-{size}.npz")

  def start(kind):
    command = [sys.executable, os.path.abspath(__file__), "--worker", kind, "--exchange", exchange,
               "--size", str(size), "--batch_size", str(args.batch_size), "--steps",
               str(args.steps), "--warmup", str(args.warmup), "--reps", str(args.reps)]
    return workers.Worker(f"{kind}-{size}", command, work_dir)

  maskae = start("maskae")
  maskae_check = maskae.receive()  # written before the Keras worker reads it
  keras = start("keras")
  keras_check = keras.receive()
  maskae.receive()  # warmed up
  keras.receive()
  seconds = {"maskae": [], "keras": []}
  cpu = {"maskae": [], "keras": []}
  images = args.steps * args.batch_size
  for rep in range(args.reps):
    for name, worker in (("maskae", maskae), ("keras", keras)):
      timing = worker.timed_pass()
      seconds[name].append(timing["seconds"])
      cpu[name].append(timing["cpu_seconds"])
    load = load_log.sample()
    print(f"  {size} px rep {rep + 1}/{args.reps}: maskae {images / seconds['maskae'][-1]:.1f} "
          f"images/s, Keras {images / seconds['keras'][-1]:.1f} images/s, load {load:.2f}",
          flush=True)
  peak = {"maskae": maskae.finish()["peak_rss_mib"], "keras": keras.finish()["peak_rss_mib"]}
  rate = {n: images / statistics.median(s) for n, s in seconds.items()}
  best = {n: images / min(s) for n, s in seconds.items()}
  paired = statistics.median(k / m for m, k in zip(seconds["maskae"], seconds["keras"]))
  speed = [size, args.batch_size, rate["maskae"], rate["keras"], rate["maskae"] / rate["keras"],
           paired, best["maskae"], best["keras"], best["maskae"] / best["keras"],
           statistics.median(load_log.during[-args.reps:])]
  cpu_ms = {n: 1000 * statistics.median(c) / images for n, c in cpu.items()}
  cost = [size, cpu_ms["maskae"], cpu_ms["keras"], cpu_ms["keras"] / cpu_ms["maskae"],
          peak["maskae"], peak["keras"]]
  same_shapes = ([tuple(s) for s in maskae_check["shapes"]]
                 == [tuple(s) for s in keras_check["shapes"]])
  identical = (same_shapes and maskae_check["params"] == keras_check["params"]
               and abs(maskae_check["loss"] - keras_check["loss"]) <= 1e-5
               and keras_check["grad_rel_diff"] <= 1e-3)
  math = [size, maskae_check["params"], keras_check["params"], "yes" if same_shapes else "NO",
          maskae_check["loss"], keras_check["loss"], keras_check["grad_rel_diff"],
          "yes" if identical else "NO"]
  return speed, cost, math


SPEED_HEADER = ["size", "batch", "maskae images/s", "Keras images/s", "maskae/Keras",
                "paired ratio", "maskae best", "Keras best", "best ratio", "load"]
COST_HEADER = ["size", "maskae CPU ms/image", "Keras CPU ms/image", "Keras/maskae CPU",
               "maskae peak RSS MiB", "Keras peak RSS MiB"]
MATH_HEADER = ["size", "maskae params", "Keras params", "same layer shapes", "maskae loss",
               "Keras loss", "max grad rel diff", "identical math"]


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--sizes", help=f"comma-separated image sizes (default {FULL['sizes']})")
  parser.add_argument("--batch_size", type=int, default=32)
  parser.add_argument("--reps", type=int, help=f"timed repetitions each (default {FULL['reps']})")
  parser.add_argument("--steps", type=int, help=f"train steps per repetition ({FULL['steps']})")
  parser.add_argument("--warmup", type=int, help=f"untimed repetitions first ({FULL['warmup']})")
  parser.add_argument("--worker", choices=("maskae", "keras"), help=argparse.SUPPRESS)
  parser.add_argument("--exchange", help=argparse.SUPPRESS)
  parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
  args = report.parse_args(parser, FULL, QUICK)
  if args.worker:
    (maskae_worker if args.worker == "maskae" else keras_worker)(args, args.exchange)
    return

  load_log = report.LoadLog()
  print(f"{report.machine()}; batch {args.batch_size}, {args.reps} timed repetitions of "
        f"{args.steps} steps after {args.warmup} warm-up; load {load_log.before:.2f}", flush=True)
  speed_rows, cost_rows, math_rows = [], [], []
  with tempfile.TemporaryDirectory(prefix="maskae-bench-") as work_dir:
    for size in (int(s) for s in args.sizes.split(",")):
      speed, cost, math = measure(args, size, load_log, work_dir)
      speed_rows.append(speed)
      cost_rows.append(cost)
      math_rows.append(math)
  body = (f"Full training step (forward, backward, Adam) of the paper model, batch "
          f"{args.batch_size}; images/s are medians of {args.reps} alternating repetitions of "
          f"{args.steps} steps; paired ratio: median over repetitions of Keras time / maskae time; "
          "best: the fastest repetition of each.\n\n"
          f"{report.table(SPEED_HEADER, speed_rows)}\n\n"
          "Cost: CPU time (user + system, all threads) per image, median over repetitions (less "
          "sensitive to other jobs than wall time); peak RSS: each worker process's ru_maxrss "
          "(compilation, warm-up and timed steps).\n\n"
          f"{report.table(COST_HEADER, cost_rows)}\n\n"
          "Model math, from maskae's initial weights on the first batch (Keras loss "
          "`mae`, gradients by tf.GradientTape):\n\n"
          f"{report.table(MATH_HEADER, math_rows)}\n\n"
          "PyTorch: not measured (optional in the issue; torch is not a maskae dependency).")
  print("\n" + body, flush=True)
  report.append(args.results, "Train step: maskae vs Keras", body, load_log)


if __name__ == "__main__":
  main()
