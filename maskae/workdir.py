"""The one owner of a run's workdir: its paths, its record of the resolved config, the comparison
with that record, the trainer's exclusive lock and the atomic writes of every file in it.

What a workdir holds and keeps (README "What a workdir holds"):
- `config.py`: the one record of the resolved config, a loadable config file. Written, atomically,
  only once a checkpoint of it is on disk, so a start that fails leaves nothing to contradict;
  a later run with another config is refused unless allowed.
- `checkpoints/`, `metrics.json`, `metrics.jsonl`, `val_grid.png`, `run_record.json`, `eval/`.
- `train.lock`: held by the process that trains (an OS file lock, released when it dies).
Every file is written under a temporary name and renamed, so none is ever partial or empty.
"""

import dataclasses
import datetime
import fcntl
import io
import json
import os
import socket
import threading

import ml_collections
from absl import logging
from PIL import Image

from maskae import config_files, config_migration, models
from maskae.errors import WorkdirError

CONFIG_FILE = "config.py"
LEGACY_CONFIG_FILE = "config.json"  # the record of workdirs made before config.py was the one
RUN_RECORD_FILE = "run_record.json"
METRICS_FILE = "metrics.json"
METRICS_LOG_FILE = "metrics.jsonl"
GRID_FILE = "val_grid.png"
LOCK_FILE = "train.lock"
CHECKPOINT_DIR = "checkpoints"
SET_ASIDE_DIR = "checkpoints_unrestorable"  # checkpoints that did not restore, kept for a look
EVAL_DIR = "eval"


def write_bytes(path: str, data: bytes) -> str:
  """Writes `data` to `path` atomically (a temporary name in the same folder, then a rename);
  on any failure, disk full included, the temporary file is removed and `path` is untouched."""
  tmp = f"{path}.tmp-{os.getpid()}-{threading.get_ident()}"
  try:
    with open(tmp, "wb") as f:
      f.write(data)
    os.replace(tmp, path)
  except BaseException as e:
    if os.path.lexists(tmp):
      os.unlink(tmp)
    if isinstance(e, OSError) and e.filename == tmp:  # name the file meant, not the temporary
      raise OSError(e.errno, e.strerror, path) from None
    raise
  return path


def write_text(path: str, text: str) -> str:
  """write_bytes of UTF-8 text."""
  return write_bytes(path, text.encode())


def write_json(path: str, data, indent: int = 2) -> str:
  """Writes `data` as indented JSON, atomically."""
  return write_text(path, json.dumps(data, indent=indent, sort_keys=True) + "\n")


def write_png(path: str, image) -> str:
  """Writes a uint8 image [H, W, 3] as PNG, atomically."""
  buffer = io.BytesIO()
  Image.fromarray(image).save(buffer, format="PNG")
  return write_bytes(path, buffer.getvalue())


def append_line(path: str, line: str) -> None:
  """Appends one line; if the write fails (disk full), the file is cut back to its old end."""
  fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
  try:
    size = os.fstat(fd).st_size
    try:
      os.write(fd, (line + "\n").encode())
    except OSError:
      os.ftruncate(fd, size)
      raise
  finally:
    os.close(fd)


def _normalized(config) -> dict:
  """{dotted key: JSON text of its value}: tuples and lists, NaNs and ConfigDicts compare equal."""
  if isinstance(config, ml_collections.ConfigDict):
    config = json.loads(config.to_json_best_effort())
  return {k: json.dumps(v, sort_keys=True) for k, v in config_files.flatten(config).items()}


def differences(recorded, current, prefixes: tuple[str, ...] = ()) -> list[str]:
  """Sorted dotted keys (those under `prefixes`, if given) whose values differ between two
  configs or records (ConfigDicts or nested dicts); a key present in one only differs."""
  before, after = _normalized(recorded), _normalized(current)
  return sorted(k for k in set(before) | set(after)
                if before.get(k) != after.get(k) and (not prefixes or k.startswith(prefixes)))


@dataclasses.dataclass(frozen=True)
class Workdir:
  """A run's directory; `path` as given (it may not exist yet)."""
  path: str

  def file(self, name: str) -> str:
    """The path of `name` inside the workdir."""
    return os.path.join(self.path, name)

  @property
  def checkpoint_dir(self) -> str:
    return os.path.abspath(self.file(CHECKPOINT_DIR))

  def eval_dir(self, split: str) -> str:
    return self.file(os.path.join(EVAL_DIR, split))

  def recorded_config(self) -> ml_collections.ConfigDict | None:
    """The recorded config (config.py, or an older workdir's config.json) with the current keys
    (`config_migration`), None if there is none; a record that cannot be read is a WorkdirError
    naming it."""
    path = self.file(CONFIG_FILE)
    try:
      if os.path.isfile(path):
        return config_migration.upgrade(config_files.get_config(path))
      legacy = self.file(LEGACY_CONFIG_FILE)
      if os.path.isfile(legacy):
        path = legacy
        with open(legacy) as f:
          return config_migration.upgrade(ml_collections.ConfigDict(json.load(f)))
    except (SyntaxError, ValueError, TypeError, AttributeError, NameError) as e:
      raise WorkdirError(f"{path}: not a readable maskae config record ({type(e).__name__}: "
                         f"{e})") from None
    return None

  def trained_config(self) -> ml_collections.ConfigDict:
    """The recorded config of a trained workdir; WorkdirError if there is none."""
    config = self.recorded_config()
    if config is None:
      raise WorkdirError(f"{self.file(CONFIG_FILE)} not found: {self.path} is not a trained "
                         "maskae workdir (train one with python -m maskae.main --workdir ...)")
    return config

  def check_config(self, config: ml_collections.ConfigDict, allow_change: bool) -> list[str]:
    """The keys where `config` differs from the recorded one; a WorkdirError listing them
    unless `allow_change` (the record itself is left as it is)."""
    recorded = self.recorded_config()
    if recorded is None:
      return []
    differ = differences(recorded, config)
    if differ and not allow_change:
      raise WorkdirError(
          f"{self.file(CONFIG_FILE)}: this workdir was trained with a different config; keys "
          f"that differ: {', '.join(differ)} (pass --allow_config_change to resume anyway)")
    if differ:
      logging.warning("config differs from %s in: %s (allowed)", self.file(CONFIG_FILE),
                      ", ".join(differ))
    return differ

  def check_model(self, config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """The config the workdir was trained with, its `models.INFERENCE_KEYS` taken from `config`;
    WorkdirError naming the keys where `config`'s model (model.*, data.image_size) differs from
    it otherwise (other keys may differ freely)."""
    trained = self.trained_config()
    differ = [k for k in differences(trained, config, ("model.", "data.image_size"))
              if k not in models.INFERENCE_KEYS]
    if differ:
      raise WorkdirError(
          f"{self.file(CONFIG_FILE)}: the workdir's model was trained with a different config; "
          f"keys that differ: {', '.join(differ)} (use the config it was trained with)")
    for key in models.INFERENCE_KEYS:
      (source, field), (target, _) = (config_files.block_of(c, key) for c in (config, trained))
      if source is not None and target is not None and field in source and field in target:
        target[field] = source[field]
    return trained

  def record_config(self, config: ml_collections.ConfigDict) -> None:
    """Writes config.py, the one record of the resolved config (atomically); an older
    workdir's config.json, which it replaces, is removed."""
    title = f"Resolved config of the run in {os.path.abspath(self.path)} (written by maskae)."
    write_text(self.file(CONFIG_FILE), config_files.to_source(config, title))
    if os.path.exists(self.file(LEGACY_CONFIG_FILE)):
      os.unlink(self.file(LEGACY_CONFIG_FILE))

  def trim_metrics_log(self, last_step: int) -> None:
    """Drops the metrics.jsonl records of steps after `last_step` (those of a session that
    stopped after its last checkpoint, redone by the resumed run)."""
    path = self.file(METRICS_LOG_FILE)
    if not os.path.exists(path):
      return
    with open(path) as f:
      lines = f.read().splitlines()
    kept = [line for line in lines if line.strip() and _step_of(line) <= last_step]
    if len(kept) != len(lines):
      write_text(path, "".join(line + "\n" for line in kept))

  def lock(self) -> "TrainerLock":
    """The exclusive lock of the process that trains in this workdir (not yet acquired)."""
    return TrainerLock(self.file(LOCK_FILE))


def _step_of(line: str) -> float:
  try:
    return json.loads(line)["step"]
  except (ValueError, KeyError, TypeError):
    return float("inf")  # a torn line: dropped


class TrainerLock:
  """An exclusive OS file lock (flock) on workdir/train.lock, with its holder's PID, host and
  start time written inside. The OS releases it when the holder exits, however it exits, so a
  lock left by a killed process is taken over."""

  def __init__(self, path: str):
    self.path, self._fd = path, None

  def __enter__(self) -> "TrainerLock":
    fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      holder = os.pread(fd, 512, 0).decode(errors="replace").strip() or "a process"
      os.close(fd)
      raise WorkdirError(f"{os.path.dirname(self.path) or '.'} is in use by another trainer "
                         f"({holder}, lock {self.path}); wait for it, stop it, or use another "
                         "--workdir") from None
    previous = os.pread(fd, 512, 0).decode(errors="replace").strip()
    if previous:
      logging.warning("took over the lock %s left by %s, which is no longer running", self.path,
                      previous)
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    try:
      os.ftruncate(fd, 0)
      os.pwrite(fd, f"PID {os.getpid()} on {socket.gethostname()} since {now}\n".encode(), 0)
    except OSError as e:
      os.close(fd)
      raise OSError(e.errno, e.strerror, self.path) from None
    self._fd = fd
    return self

  def __exit__(self, *exc) -> None:
    if self._fd is not None:
      try:
        os.ftruncate(self._fd, 0)  # an empty lock file: released cleanly
      except OSError:
        pass
      os.close(self._fd)  # closing releases the flock
      self._fd = None
