"""What a run shows: metric writers (TensorBoard and metrics.jsonl), the loop's progress and
profiler hooks, image grids."""

import io
import json
import os
import time

import ml_collections
import numpy as np
from absl import logging
from PIL import Image

from maskae import workdir as run_workdir
from maskae.errors import ConfigError


def image_grid(columns: list[np.ndarray], gap: int = 2, min_cell: int = 128) -> np.ndarray:
  """Rows = examples, columns = the given [N,H,W,C] float batches in [0,1]; uint8 [H', W', 3].
  Cells smaller than `min_cell` pixels are enlarged by an integer factor (pixel repeat)."""
  columns = [np.broadcast_to(c, c.shape[:3] + (3,)) if c.shape[-1] == 1 else c for c in columns]
  scale = max(1, min_cell // columns[0].shape[1])
  columns = [c.repeat(scale, axis=1).repeat(scale, axis=2) for c in columns]
  n, h, w, _ = columns[0].shape
  grid = np.full((n * (h + gap) + gap, len(columns) * (w + gap) + gap, 3), 255, np.uint8)
  for i in range(n):
    for j, col in enumerate(columns):
      y, x = gap + i * (h + gap), gap + j * (w + gap)
      grid[y:y + h, x:x + w] = np.round(np.clip(col[i], 0, 1) * 255).astype(np.uint8)
  return grid


class MetricsLog:
  """TensorBoard (clu writers) plus a JSONL file of every scalar record, on the first host."""

  def __init__(self, workdir: str, is_chief: bool):
    self.is_chief = is_chief
    self.writer = _metric_writer(workdir, is_chief)
    self.jsonl_path = os.path.join(workdir, run_workdir.METRICS_LOG_FILE)

  def scalars(self, step: int, values: dict) -> None:
    """Writes scalars to TensorBoard and appends them to metrics.jsonl."""
    values = {k: float(v) for k, v in values.items()}
    self.writer.write_scalars(step, values)
    if self.is_chief:
      run_workdir.append_line(self.jsonl_path,
                              json.dumps({"step": step, "time": time.time(), **values}))

  def images(self, step: int, images: dict) -> None:
    """Writes uint8 [H,W,3] images to TensorBoard."""
    self.writer.write_images(step, {k: v[None] for k, v in images.items()})

  def close(self) -> None:
    self.writer.flush()
    self.writer.close()


def _metric_writer(workdir: str, is_chief: bool):
  """clu's default writer (TensorBoard summaries through TensorFlow, log lines on other hosts);
  where TensorFlow is missing, TensorBoardEvents on the first host and log lines elsewhere."""
  try:
    from clu import metric_writers  # pylint: disable=import-outside-toplevel  # imports TF
  except ImportError:
    return TensorBoardEvents(workdir) if is_chief else _LogLines()
  return metric_writers.create_default_writer(workdir, just_logging=not is_chief)


class TensorBoardEvents:
  """TensorBoard scalars and images written with the tensorboard package alone (no TensorFlow):
  the subset of clu's MetricWriter the training loop uses."""

  def __init__(self, logdir: str):
    from tensorboard.summary.writer import event_file_writer  # pylint: disable=import-outside-toplevel
    self._events = event_file_writer.EventFileWriter(logdir)

  def _write(self, step: int, values: list) -> None:
    from tensorboard.compat.proto import event_pb2, summary_pb2  # pylint: disable=import-outside-toplevel
    self._events.add_event(event_pb2.Event(wall_time=time.time(), step=step,
                                           summary=summary_pb2.Summary(value=values)))

  def write_scalars(self, step: int, scalars: dict) -> None:
    from tensorboard.compat.proto import summary_pb2  # pylint: disable=import-outside-toplevel
    self._write(step, [summary_pb2.Summary.Value(tag=k, simple_value=float(v))
                       for k, v in scalars.items()])

  def write_images(self, step: int, images: dict) -> None:
    """`images`: name -> uint8 [1, H, W, 3] (the first image of each is written)."""
    from tensorboard.compat.proto import summary_pb2  # pylint: disable=import-outside-toplevel
    values = []
    for tag, batch in images.items():
      png = io.BytesIO()
      Image.fromarray(np.asarray(batch[0], np.uint8)).save(png, format="PNG")
      values.append(summary_pb2.Summary.Value(tag=tag, image=summary_pb2.Summary.Image(
          height=batch.shape[1], width=batch.shape[2], colorspace=3,
          encoded_image_string=png.getvalue())))
    self._write(step, values)

  def flush(self) -> None:
    self._events.flush()

  def close(self) -> None:
    self._events.close()


class _LogLines:
  """Scalars as log lines (what clu's just_logging writer does), for the other hosts."""

  def write_scalars(self, step: int, scalars: dict) -> None:
    logging.info("[%d] %s", step, ", ".join(f"{k}={v:.6g}" for k, v in scalars.items()))

  def write_images(self, step: int, images: dict) -> None:
    del step, images

  def flush(self) -> None:
    pass

  def close(self) -> None:
    pass


def periodic_hooks(train: ml_collections.ConfigDict, profile_dir: str) -> list:
  """What the loop calls after every step with the step number: clu's `ReportProgress` (steps/s
  and ETA every `train.log_every` steps) and, with `train.profile_steps`, clu's `Profile` (a
  jax.profiler trace of steps [profile_start_step, + profile_steps)). clu imports TensorFlow;
  without it, `_ProgressLines` logs the same progress and profiling is refused."""
  try:
    from clu import periodic_actions  # pylint: disable=import-outside-toplevel  # imports TF
  except ImportError:
    if train.profile_steps:
      raise ConfigError("train.profile_steps needs clu's profiler hook, which imports "
                        "TensorFlow (not installed here); set train.profile_steps=0") from None
    return [_ProgressLines(train.steps, train.log_every)]
  hooks = [periodic_actions.ReportProgress(num_train_steps=train.steps,
                                           every_steps=max(train.log_every, 1), every_secs=None)]
  if train.profile_steps:
    hooks.append(periodic_actions.Profile(
        logdir=profile_dir, num_profile_steps=train.profile_steps, profile_duration_ms=None,
        first_profile=train.profile_start_step, every_secs=None))
  return hooks


class _ProgressLines:
  """Steps/s and ETA in a log line every `every` steps and at the last: ReportProgress's report
  where clu cannot be imported."""

  def __init__(self, total_steps: int, every: int):
    self.total, self.every = total_steps, max(every, 1)
    self.previous = None  # (step, time) of the last report, or of the first call

  def __call__(self, step: int) -> None:
    now = time.monotonic()
    if self.previous is None:
      self.previous = (step, now)
    elif step % self.every == 0 or step == self.total:
      rate = (step - self.previous[0]) / max(now - self.previous[1], 1e-9)
      logging.info("%.1f steps/s, %.1f%% (%d/%d), ETA: %.0f s", rate, 100 * step / self.total,
                   step, self.total, (self.total - step) / max(rate, 1e-9))
      self.previous = (step, now)
