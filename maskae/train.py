"""Training and evaluation loop: data -> data-parallel steps -> eval -> checkpoints -> reports."""

import contextlib
import dataclasses
import os
import signal
import time

import jax
import ml_collections
import numpy as np
from absl import logging
from jax.experimental import multihost_utils

from maskae import checkpointing, config_checks, evaluator, input_pipeline, models, reporting
from maskae import run_records, train_step, workdir
from maskae.errors import ConfigError, TrainingDiverged


class Preemption:
  """Whether to save and stop at a step, agreed by every process.

  One process: SIGTERM sets a flag, read at the next step. Several (jax.distributed): JAX's
  preemption service catches SIGTERM on any of them and all agree on the step at which to stop
  (`multihost_utils.reached_preemption_sync_point`, called at every step by every process).
  """

  def __init__(self):
    self.multiprocess = jax.process_count() > 1
    self._signalled = False
    if not self.multiprocess:
      signal.signal(signal.SIGTERM, self._handle)

  def _handle(self, signum, frame):
    del signum, frame
    logging.warning("SIGTERM received: saving a checkpoint and stopping")
    self._signalled = True

  def reached(self, step: int) -> bool:
    if self.multiprocess:
      return multihost_utils.reached_preemption_sync_point(step)
    return self._signalled


def train_and_evaluate(config: ml_collections.ConfigDict, workdir_path: str,
                       allow_config_change: bool = False) -> dict:
  """Trains (resuming from the workdir's newest checkpoint that restores), evaluates, writes the
  reports. The config is validated first; the first process holds the workdir's lock.

  Returns the summary written to `metrics.json`.
  """
  mesh = train_step.data_mesh()
  config_checks.validate(config, mesh.devices.size)
  run_dir = workdir.Workdir(workdir_path)
  os.makedirs(run_dir.path, exist_ok=True)
  with run_dir.lock() if jax.process_index() == 0 else contextlib.nullcontext():
    return _train(config, run_dir, allow_config_change, mesh)


def _restore(manager, state, run_dir: workdir.Workdir, config, is_chief: bool):
  """(manager, state, meta) from the newest checkpoint that restores; the newer ones that do not
  are moved to checkpoints_unrestorable/ so the run can save those steps again."""
  state, meta, step, skipped = checkpointing.restore_newest(manager, state)
  if skipped:
    manager.close()
    if is_chief:
      checkpointing.set_aside(run_dir.checkpoint_dir, [s for s, _ in skipped],
                              run_dir.file(workdir.SET_ASIDE_DIR))
    multihost_utils.sync_global_devices("maskae: unrestorable checkpoints set aside")
    manager = checkpointing.create_manager(run_dir.checkpoint_dir, config.train)
  logging.info("resumed from checkpoint at step %d in %s", step, manager.directory)
  return manager, state, meta


@dataclasses.dataclass(frozen=True)
class _Evaluation:
  """An evaluation during training: its step, the evaluator's means, the grid of examples."""
  step: int
  means: dict
  grid: np.ndarray


def _evaluate(val: evaluator.Evaluator, state, step: int, log: reporting.MetricsLog,
              num_grid_examples: int, train_seconds: float) -> _Evaluation:
  """Scores this host's copy of the (replicated) parameters on the validation pairs and logs
  the means and the grid."""
  params = jax.tree.map(lambda x: x.addressable_data(0), state.params)  # no cross-host transfer
  means, columns = val.evaluate(params, state.apply_fn, num_grid_examples)
  log.scalars(step, {**{f"val/{k}": v for k, v in means.items()},
                     "time/train_seconds": train_seconds})
  grid = reporting.image_grid(columns)
  log.images(step, {"val/masked_output_clean": grid})
  return _Evaluation(step, means, grid)


def _train(config, run_dir: workdir.Workdir, allow_config_change: bool, mesh) -> dict:
  is_chief = jax.process_index() == 0
  config_changes = run_dir.check_config(config, allow_config_change)
  # The record is written once a checkpoint of this config is on disk (after the first save).
  record_pending = bool(config_changes) or run_dir.recorded_config() is None
  eval_mesh = train_step.data_mesh(jax.local_devices())
  logging.info("devices: %d (%d local) on %s", mesh.devices.size, jax.local_device_count(),
               jax.devices()[0].platform)

  model = models.create_model(config.model)
  state = train_step.create_train_state(model, config, jax.random.key(config.seed))
  state = train_step.replicate(state, mesh)
  manager = checkpointing.create_manager(run_dir.checkpoint_dir, config.train)
  start_step, seconds_before = 0, 0.0  # seconds_before: training time of earlier sessions
  if manager.all_steps():
    manager, state, meta = _restore(manager, state, run_dir, config, is_chief)
    start_step = int(meta["step"])
    seconds_before = float(meta.get("train_seconds", 0.0))
  if is_chief:
    run_dir.trim_metrics_log(start_step)

  train_feed = input_pipeline.open_feed(config, "train", mesh)
  val = evaluator.Evaluator(config, "val", eval_mesh)
  logging.info("faces: %d train, %d val (%s); %s feed", train_feed.num_faces, val.num_examples,
               train_feed.fingerprint, train_feed.kind)
  if config.data.batch_size > train_feed.num_faces:
    raise ConfigError(
        f"data.batch_size={config.data.batch_size}: larger than the training set "
        f"({train_feed.num_faces} faces, {train_feed.fingerprint})")
  if is_chief:
    run_records.write(run_dir, config, {"train": train_feed, "val": val.feed}, start_step,
                      config_changes)
  batches = input_pipeline.to_devices(
      train_feed.train_batches(config, start_step, jax.process_index(), jax.process_count()),
      mesh, config.data.prefetch)
  step_fn = train_step.make_train_step(config, mesh)
  log = reporting.MetricsLog(run_dir.path, is_chief)
  hooks = reporting.periodic_hooks(config.train, run_dir.file("profile"))
  preemption = Preemption()
  session_start = time.monotonic()

  def train_seconds():
    """Wall seconds of training so far (evaluations included), over resumed sessions too."""
    return seconds_before + time.monotonic() - session_start

  try:
    step, last, stopping = start_step, None, False  # last: the latest _Evaluation
    while step < config.train.steps and not stopping:
      state, step_metrics = step_fn(state, train_feed.resident, next(batches))
      step += 1
      for hook in hooks:
        hook(step)
      stopping = preemption.reached(step) and step < config.train.steps
      is_save = (step % config.train.checkpoint_every == 0 or step == config.train.steps
                 or stopping)
      if step % config.train.log_every == 0 or is_save:
        values = {k: float(v) for k, v in jax.device_get(step_metrics).items()}
        if not all(np.isfinite(v) for v in values.values()):
          manager.wait_until_finished()
          raise TrainingDiverged(
              f"non-finite training metrics at step {step}: {values}; stopped without saving "
              f"(last good checkpoint: step {manager.latest_step()} in {manager.directory})")
        log.scalars(step, {**{f"train/{k}": v for k, v in values.items()},
                           "time/train_seconds": train_seconds()})
      if not stopping and (step % config.train.eval_every == 0 or step == config.train.steps):
        last = _evaluate(val, state, step, log, config.train.num_grid_examples, train_seconds())
      if is_save:
        meta = {"step": step, "seed": config.seed,
                "examples_seen": step * config.data.batch_size, "train_seconds": train_seconds()}
        checkpointing.save(manager, step, state, meta,
                           last.means if last and last.step == step else None)
        if record_pending:  # the first checkpoint of this config: now it may be recorded
          manager.wait_until_finished()
          if is_chief:
            run_dir.record_config(config)
          record_pending = False
    if stopping:
      manager.wait_until_finished()
      manager.close()
      log.close()
      logging.warning("stopped at step %d on SIGTERM; rerun the same command to resume", step)
      print(f"maskae: stopped at step {step} on SIGTERM (checkpoint saved); rerun the same "
            "command to resume", flush=True)
      return {"step": step, "stopped": "SIGTERM"}

    if not last or last.step != step:  # a run resumed at (or past) its last step
      last = _evaluate(val, state, step, log, config.train.num_grid_examples, train_seconds())
    log.close()
    manager.wait_until_finished()
    if record_pending and is_chief:  # resumed at its last step: no new checkpoint was needed
      run_dir.record_config(config)
    summary = {**val.summary(step, **evaluator.split_metrics(last.means)),
               "best_checkpoint_step": manager.best_step(),
               "train_seconds": round(train_seconds(), 1)}
    memory = jax.local_devices()[0].memory_stats()  # None on CPU, where it is host memory
    if memory and "peak_bytes_in_use" in memory:
      summary["device_memory_peak_bytes"] = int(memory["peak_bytes_in_use"])
    summary["files"] = _files(run_dir, manager)
    if is_chief:
      workdir.write_png(summary["files"]["grid"], last.grid)
      workdir.write_json(summary["files"]["metrics"], summary)
      _print_summary(summary)
    manager.close()
    return summary
  except BaseException:
    _abandon(manager, run_dir, is_chief)
    raise


def _abandon(manager, run_dir: workdir.Workdir, is_chief: bool) -> None:
  """After a failure: lets a pending save end (its own error is the one already raised, or a
  consequence of it) and removes what a save cut short left, so nothing partial remains."""
  try:
    manager.wait_until_finished()
    manager.close()
  except Exception:  # pylint: disable=broad-except  # the failure being handled is re-raised
    pass
  if is_chief:
    checkpointing.remove_partial_saves(run_dir.checkpoint_dir)


def _files(run_dir: workdir.Workdir, manager) -> dict:
  """What a finished run wrote, by role."""
  return {
      "metrics": run_dir.file(workdir.METRICS_FILE),
      "metrics_log": run_dir.file(workdir.METRICS_LOG_FILE),
      "grid": run_dir.file(workdir.GRID_FILE),
      "checkpoints": str(manager.directory),
      "tensorboard": run_dir.path,
      "config": run_dir.file(workdir.CONFIG_FILE),
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
