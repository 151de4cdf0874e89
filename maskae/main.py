"""Entry point: `python -m maskae.main --config configs/default.py [--workdir DIR]`.

Parses flags only; the work happens in `maskae.train.train_and_evaluate`, or with
`--mode=evaluate [--split=val|test]` in `maskae.evaluate.evaluate_checkpoint`. User errors (a bad
flag, key, value, path, workdir or lock, a non-finite stop, a full disk) end in one line on
stderr and exit status 1 (`maskae.errors`; MASKAE_TRACEBACK=1 shows the traceback).
"""

import os

import jax
from absl import app, flags, logging
from ml_collections import config_flags

from maskae import errors, evaluate, host_memory, train

_CONFIG = config_flags.DEFINE_config_file(
    "config", "configs/default.py", "Config file (get_config()); override fields with "
    "--config.<path>=value, e.g. --config.train.steps=50.", lock_config=True)
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "Directory for checkpoints, metrics and images; rerunning with the same "
    "workdir resumes. Default: runs/<config file name>.")
_ALLOW_CONFIG_CHANGE = flags.DEFINE_bool(
    "allow_config_change", False, "Resume a workdir even if its recorded config differs.")
_MODE = flags.DEFINE_enum(
    "mode", "train", ["train", "evaluate"], "train: train (resuming) and validate; evaluate: "
    "score the workdir's best (else latest) checkpoint and classical baselines on --split, "
    "writing workdir/eval/<split>/.")
_SPLIT = flags.DEFINE_enum("split", "test", ["val", "test"], "The split --mode=evaluate scores.")
_MULTIHOST = flags.DEFINE_bool(
    "multihost", False, "One data-parallel run over several hosts: call "
    "jax.distributed.initialize() with the cluster auto-detected (e.g. SLURM, one process per "
    "GPU; see launch/multihost.sh).")
_COORDINATOR_ADDRESS = flags.DEFINE_string(
    "coordinator_address", None, "host:port of process 0, for jax.distributed.initialize "
    "(implies --multihost).")
_NUM_PROCESSES = flags.DEFINE_integer(
    "num_processes", None, "Number of processes, for jax.distributed.initialize (implies "
    "--multihost).")
_PROCESS_ID = flags.DEFINE_integer(
    "process_id", None, "This process's index, for jax.distributed.initialize (implies "
    "--multihost).")


def default_workdir(config_path: str) -> str:
  """runs/<config file stem>, relative to the current directory."""
  return os.path.join("runs", os.path.splitext(os.path.basename(config_path))[0])


def _quiet_library_info(record) -> bool:
  """Drops orbax's per-save INFO chatter from the log; warnings and errors still show."""
  return record.levelno > 20 or "/orbax/" not in record.pathname


def initialize_distributed() -> None:
  """jax.distributed.initialize with the given settings (the rest auto-detected), if asked for;
  must run before any other JAX call."""
  explicit = {name: value for name, value in (("coordinator_address", _COORDINATOR_ADDRESS.value),
                                              ("num_processes", _NUM_PROCESSES.value),
                                              ("process_id", _PROCESS_ID.value))
              if value is not None}
  if _MULTIHOST.value or explicit:
    jax.distributed.initialize(**explicit)
    logging.info("process %d of %d", jax.process_index(), jax.process_count())


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  host_memory.reuse_freed_memory()  # before JAX's threads allocate (faster steps on CPU)
  initialize_distributed()
  logging.get_absl_handler().addFilter(_quiet_library_info)
  workdir = _WORKDIR.value or default_workdir(config_flags.get_config_filename(flags.FLAGS["config"]))
  logging.info("workdir: %s", os.path.abspath(workdir))
  print(f"maskae: workdir {os.path.abspath(workdir)}", flush=True)
  if _MODE.value == "evaluate":
    evaluate.evaluate_checkpoint(_CONFIG.value, workdir, _SPLIT.value)
  else:
    train.train_and_evaluate(_CONFIG.value, workdir, _ALLOW_CONFIG_CHANGE.value)


if __name__ == "__main__":
  errors.run(main)
