"""What a run was made of, recorded in its workdir for reproducibility reviews.

`write(run_dir, config, faces, start_step, config_changes)` writes `run_record.json`: package
versions, git commit and dirty state, the data fingerprint of every split, the seeds, the devices
and the config keys this invocation changed from the recorded config (the config itself is
recorded once, in the workdir's config.py: `maskae.workdir`). A resumed run keeps the records of
the earlier invocations under `earlier_invocations`.
"""

import datetime
import hashlib
import importlib.metadata
import json
import os
import platform
import socket
import subprocess
import sys

import jax
import ml_collections

from maskae import config_files, workdir
# Distributions whose versions can change results (absent ones are left out of the record).
PACKAGES = ("jax", "jaxlib", "jax-cuda12-plugin", "jax-cuda12-pjrt", "flax", "optax",
            "orbax-checkpoint", "chex", "dm-pix", "clu", "ml-collections", "absl-py", "numpy",
            "tensorflow", "tensorflow-cpu", "tensorflow-datasets", "opencv-python-headless",
            "pillow", "scipy")
# Environment variables that change what runs where.
ENV_PREFIXES = ("JAX_", "XLA_", "CUDA_VISIBLE_DEVICES", "TF_DETERMINISTIC", "SLURM_JOB_ID",
                "SLURM_ARRAY_", "SLURM_NNODES", "SLURM_PROCID")
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def package_versions(names=PACKAGES) -> dict:
  """{distribution: version} of the installed ones among `names`, plus Python itself."""
  versions = {"python": platform.python_version()}
  for name in names:
    try:
      versions[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      continue
  return versions


def git_state(repo: str = REPO_ROOT) -> dict:
  """Commit, dirty flag, changed paths and a hash of the uncommitted diff of the code's repo."""
  try:
    commit = _git(repo, "rev-parse", "HEAD").strip()
    changes = _git(repo, "status", "--porcelain").splitlines()
    diff = _git(repo, "diff", "HEAD", "--binary")
  except (OSError, subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
    return {"commit": None, "dirty": None, "error": f"{type(error).__name__}: {error}"}
  return {"commit": commit, "dirty": bool(changes),
          "changed_paths": [line[3:] for line in changes],
          "diff_sha256": hashlib.sha256(diff.encode()).hexdigest() if diff else None}


def _git(repo: str, *args: str) -> str:
  result = subprocess.run(["git", "-C", repo, *args], capture_output=True, text=True, timeout=30,
                          check=True)
  return result.stdout


def device_info() -> dict:
  """Platform, kind and count of the devices (all hosts) and of this host's processes."""
  devices = jax.devices()
  return {"platform": devices[0].platform, "device_kind": devices[0].device_kind,
          "count": len(devices), "local_count": jax.local_device_count(),
          "process_count": jax.process_count(), "process_index": jax.process_index(),
          "host": socket.gethostname(), "devices": [str(d) for d in devices]}


def seeds(config: ml_collections.ConfigDict) -> dict:
  """Every config field whose name contains "seed"."""
  return {k: v for k, v in config_files.flatten(config).items()
          if "seed" in k.rsplit(".", 1)[-1]}


def collect(config: ml_collections.ConfigDict, faces: dict, start_step: int,
            config_changes: list[str]) -> dict:
  """The record of this invocation; `faces` maps split names to feeds or face sets."""
  return {
      "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
      "command": [sys.executable] + sys.argv,
      "start_step": start_step,
      "config_file": workdir.CONFIG_FILE,
      "config_changes": config_changes,
      "packages": package_versions(),
      "git": git_state(),
      "data": {split: {"fingerprint": face_set.fingerprint, "num_examples": len(face_set)}
               for split, face_set in faces.items()},
      "seeds": seeds(config),
      "devices": device_info(),
      "env": {k: v for k, v in sorted(os.environ.items()) if k.startswith(ENV_PREFIXES)},
  }


def write(run_dir: workdir.Workdir, config: ml_collections.ConfigDict, faces: dict,
          start_step: int, config_changes: list[str]) -> dict:
  """Writes run_record.json (keeping earlier invocations); returns the record."""
  record = collect(config, faces, start_step, config_changes)
  path = run_dir.file(workdir.RUN_RECORD_FILE)
  if os.path.exists(path):
    with open(path) as f:
      previous = json.load(f)
    record["earlier_invocations"] = previous.pop("earlier_invocations", []) + [previous]
  workdir.write_json(path, record)
  return record
