"""Training and evaluation loop: data -> data-parallel steps -> eval -> checkpoints -> reports."""

import json
import os
import signal
import time

import jax
import ml_collections
import numpy as np
from absl import logging

from maskae import checkpointing, config_files, input_pipeline, models, reporting, run_records
from maskae import train_step

CONFIG_FILE = "config.json"


def check_config(workdir: str, config: ml_collections.ConfigDict, allow_change: bool) -> None:
  """Records the resolved config in the workdir; a resumed run with a different config is an error
  listing the keys that differ, unless `allow_change`."""
  path = os.path.join(workdir, CONFIG_FILE)
  current = json.loads(config.to_json_best_effort())
  if os.path.exists(path):
    with open(path) as f:
      recorded = json.load(f)
    before, after = config_files.flatten(recorded), config_files.flatten(current)
    differ = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    if differ and not allow_change:
      raise ValueError(f"{path}: this workdir was trained with a different config; keys that "
                       f"differ: {', '.join(differ)} (pass --allow_config_change to resume anyway)")
    if differ:
      logging.warning("config differs from %s in: %s (allowed)", path, ", ".join(differ))
  if jax.process_index() == 0:
    reporting.write_json(path, current)


class _StopSignal:
  """Turns SIGTERM (preemption) into a request to checkpoint and exit cleanly."""

  def __init__(self):
    self.requested = False
    signal.signal(signal.SIGTERM, self._handle)

  def _handle(self, signum, frame):
    del signum, frame
    logging.warning("SIGTERM received: saving a checkpoint and stopping")
    self.requested = True


class _ProfileWindow:
  """Records a jax.profiler trace of steps [profile_start_step, + profile_steps) if enabled."""

  def __init__(self, train: ml_collections.ConfigDict, logdir: str):
    self.start, self.stop = train.profile_start_step, train.profile_start_step + train.profile_steps
    self.enabled, self.logdir = train.profile_steps > 0, logdir

    self.active = False

  def before_step(self, step: int) -> None:
    if self.enabled and step == self.start:
      jax.profiler.start_trace(self.logdir)
      self.active = True

  def after_step(self, step: int, step_metrics) -> None:
    if self.active and step >= self.stop:
      self.finish(step_metrics)

  def finish(self, step_metrics=None) -> None:
    """Stops an active trace (also when training ends inside the window)."""
    if self.active:
      jax.block_until_ready(step_metrics)
      jax.profiler.stop_trace()
      self.active = False
      logging.info("profiler trace from step %d written to %s", self.start, self.logdir)


def eval_batch_size(config: ml_collections.ConfigDict, mesh) -> int:
  """data.batch_size rounded up to a multiple of the mesh's device count."""
  devices = mesh.devices.size
  return -(-config.data.batch_size // devices) * devices


def evaluate(params, apply_fn, eval_step, mesh, feed, batch_size: int, num_examples: int = 0):
  """Mean metrics of the model and of the masked input over the fixed pairs of `feed` (rendered
  on the devices), and the first `num_examples` (masked, output, clean) arrays for a grid."""
  sums, count, examples = {}, 0, []
  for batch, n in feed.eval_batches(batch_size):
    images, per_example = eval_step(params, apply_fn, feed.resident,
                                    train_step.shard_batch(batch, mesh))
    for name, values in jax.device_get(per_example).items():
      sums[name] = sums.get(name, 0.0) + float(np.sum(values[:n]))
    if count < num_examples:
      examples.append([np.asarray(images[k])[:n] for k in ("masked", "output", "clean")])
    count += n
  means = {k: v / count for k, v in sums.items()}
  grid_columns = [np.concatenate(c)[:num_examples] for c in zip(*examples)] if examples else []
  return means, grid_columns


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str,
                       allow_config_change: bool = False) -> dict:
  """Trains (resuming from the workdir's latest checkpoint), evaluates, writes the reports.

  Returns the summary written to `metrics.json`.
  """
  os.makedirs(workdir, exist_ok=True)
  check_config(workdir, config, allow_config_change)
  is_chief = jax.process_index() == 0
  mesh = train_step.data_mesh()
  eval_mesh = train_step.data_mesh(jax.local_devices())
  logging.info("devices: %d (%d local) on %s", mesh.devices.size, jax.local_device_count(),
               jax.devices()[0].platform)

  model = models.create_model(config.model)
  state = train_step.create_train_state(model, config, jax.random.key(config.seed))
  state = train_step.replicate(state, mesh)
  manager = checkpointing.create_manager(workdir, config.train)
  start_step, seconds_before = 0, 0.0  # seconds_before: training time of earlier sessions
  if manager.latest_step() is not None:
    state, meta = checkpointing.restore(manager, manager.latest_step(), state)
    start_step = int(meta["step"])
    seconds_before = float(meta.get("train_seconds", 0.0))
    logging.info("resumed from checkpoint at step %d in %s", start_step, manager.directory)

  train_feed = input_pipeline.open_feed(config, "train", mesh)
  val_feed = input_pipeline.open_feed(config, "val", eval_mesh)
  logging.info("faces: %d train, %d val (%s); %s feed", train_feed.num_faces, val_feed.num_faces,
               train_feed.fingerprint, train_feed.kind)
  if is_chief:
    run_records.write(workdir, config, {"train": train_feed, "val": val_feed}, start_step)
  batches = input_pipeline.to_devices(
      train_feed.train_batches(config, start_step, jax.process_index(), jax.process_count()),
      mesh, config.data.prefetch)
  step_fn = train_step.make_train_step(config, mesh)
  eval_step = train_step.make_eval_step(config, eval_mesh, "val")
  val_batch_size = eval_batch_size(config, eval_mesh)
  log = reporting.MetricsLog(workdir, is_chief)
  progress = reporting.Progress(config.train.steps, start_step, config.train.log_every)
  stop = _StopSignal()
  session_start = time.monotonic()

  def train_seconds():
    """Wall seconds of training so far (evaluations included), over resumed sessions too."""
    return seconds_before + time.monotonic() - session_start

  def save(step, eval_metrics=None):
    meta = {"step": step, "seed": config.seed,
            "examples_seen": step * config.data.batch_size, "train_seconds": train_seconds()}
    checkpointing.save(manager, step, state, meta, eval_metrics)

  def run_eval(step):
    # This host's copy of the (replicated) parameters: no cross-host transfer onto the local mesh.
    params = train_step.replicate(jax.tree.map(lambda x: x.addressable_data(0), state.params),
                                  eval_mesh)
    means, columns = evaluate(params, state.apply_fn, eval_step, eval_mesh, val_feed,
                              val_batch_size, config.train.num_grid_examples)
    log.scalars(step, {**{f"val/{k}": v for k, v in means.items()},
                       "time/train_seconds": train_seconds()})
    grid = reporting.image_grid(columns)
    log.images(step, {"val/masked_output_clean": grid})
    return means, grid

  profile = _ProfileWindow(config.train, os.path.join(workdir, "profile"))
  step, last_eval = start_step, None  # last_eval: (step, means, grid)
  while step < config.train.steps and not stop.requested:
    profile.before_step(step)
    state, step_metrics = step_fn(state, train_feed.resident, next(batches))
    step += 1
    profile.after_step(step, step_metrics)
    is_save = step % config.train.checkpoint_every == 0 or step == config.train.steps
    if step % config.train.log_every == 0 or is_save:
      values = {k: float(v) for k, v in jax.device_get(step_metrics).items()}
      if not all(np.isfinite(v) for v in values.values()):
        manager.wait_until_finished()
        raise FloatingPointError(
            f"non-finite training metrics at step {step}: {values}; stopped without saving "
            f"(last good checkpoint: step {manager.latest_step()} in {manager.directory})")
      log.scalars(step, {**{f"train/{k}": v for k, v in values.items()},
                         "time/train_seconds": train_seconds()})
      progress.update(step, values["loss"])
    else:
      progress.update(step)
    if step % config.train.eval_every == 0 or step == config.train.steps:
      last_eval = (step, *run_eval(step))
    if is_save:
      save(step, last_eval[1] if last_eval and last_eval[0] == step else None)
  profile.finish()
  if stop.requested and step < config.train.steps:
    save(step)
    manager.wait_until_finished()
    logging.warning("stopped at step %d on SIGTERM; rerun the same command to resume", step)
    return {"step": step, "stopped": "SIGTERM"}

  # A run resumed at (or past) its last step has not evaluated yet.
  _, means, grid = last_eval if last_eval and last_eval[0] == step else (step, *run_eval(step))
  log.close()
  manager.wait_until_finished()
  summary = _summary(workdir, step, val_feed.num_faces, means, manager)
  summary["train_seconds"] = round(train_seconds(), 1)
  memory = jax.local_devices()[0].memory_stats()  # None on CPU, where it is host memory
  if memory and "peak_bytes_in_use" in memory:
    summary["device_memory_peak_bytes"] = int(memory["peak_bytes_in_use"])
  if is_chief:
    reporting.save_png(summary["files"]["grid"], grid)
    reporting.write_json(summary["files"]["metrics"], summary)
    _print_summary(summary)
  manager.close()
  return summary


def _summary(workdir, step, num_examples, means, manager) -> dict:
  model_metrics = {k: v for k, v in means.items() if not k.startswith("input/")}
  input_metrics = {k[len("input/"):]: v for k, v in means.items() if k.startswith("input/")}
  return {
      "step": step,
      "split": "val",
      "num_examples": num_examples,
      "model": model_metrics,
      "masked_input": input_metrics,
      "best_checkpoint_step": manager.best_step(),
      "files": {
          "metrics": os.path.join(workdir, "metrics.json"),
          "metrics_log": os.path.join(workdir, "metrics.jsonl"),
          "grid": os.path.join(workdir, "val_grid.png"),
          "checkpoints": str(manager.directory),
          "tensorboard": workdir,
          "config": os.path.join(workdir, CONFIG_FILE),
      },
  }


def _print_summary(summary: dict) -> None:
  m, i = summary["model"], summary["masked_input"]
  lines = [
      f"maskae: trained to step {summary['step']}; validation ({summary['split']}):",
      f"  masked-region PSNR  model {m['psnr_masked']:6.2f} dB   masked input {i['psnr_masked']:6.2f} dB",
      f"  whole-image PSNR    model {m['psnr']:6.2f} dB   masked input {i['psnr']:6.2f} dB",
      f"  whole-image SSIM    model {m['ssim']:6.3f}      masked input {i['ssim']:6.3f}",
      f"  MAE                 model {m['mae']:6.4f}      masked input {i['mae']:6.4f}",
      "files written:",
  ] + [f"  {name:12s} {path}" for name, path in summary["files"].items()]
  print("\n".join(lines), flush=True)
