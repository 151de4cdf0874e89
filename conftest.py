"""Test-session settings: one persistent XLA compilation cache shared by all tests and the
subprocesses they start (each `python -m maskae...` would otherwise recompile the same steps)."""

import os
import shutil
import tempfile

_CACHE_DIR = None
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
  _CACHE_DIR = tempfile.mkdtemp(prefix="maskae-jax-cache-")
  os.environ["JAX_COMPILATION_CACHE_DIR"] = _CACHE_DIR
  os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
  os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"


def pytest_sessionfinish(session, exitstatus):
  del session, exitstatus
  if _CACHE_DIR:
    shutil.rmtree(_CACHE_DIR, ignore_errors=True)
