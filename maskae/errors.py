"""User errors and how every command reports them: one line on stderr and exit status 1.

A `UserError` is a mistake in what was asked for (a flag, config key or value, a path, a workdir,
its lock) or a run that stopped for a reason the user must act on (non-finite metrics). Disk full,
read-only and permission errors are reported the same way, naming the path. Anything else is an
internal error and keeps its traceback. `MASKAE_TRACEBACK=1` shows the traceback of every error.
"""

import atexit
import errno
import logging
import os
import re
import sys
import threading

from absl import app, flags

TRACEBACK_ENV = "MASKAE_TRACEBACK"
# OSError numbers that are the state of the disk or of a path given, not the code's fault.
_DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EISDIR,
                errno.ENOTDIR)


# TensorStore's report of an OS error: ... Failed writing: "<path>": ... [os_error_code='28']
_OS_ERROR_CODE = re.compile(r"os_error_code='(\d+)'")
_QUOTED_PATH = re.compile(r'(?:Failed writing|Failed reading|local file):? "([^"]+)"')


class UserError(Exception):
  """A mistake in the request, reported as one line without a traceback."""


class ConfigError(UserError, ValueError):
  """Config keys with impossible values; the message lists every bad key."""


class DataError(UserError, ValueError):
  """A data source that cannot give the faces asked for (missing folder, list, dataset)."""


class WorkdirError(UserError):
  """A workdir that cannot be used as asked (other config, held by another trainer)."""


class CheckpointError(UserError):
  """A workdir with no usable checkpoint: none saved, or none that restores and fits."""


class TrainingDiverged(UserError, FloatingPointError):
  """Training stopped on non-finite metrics without saving."""


def disk_error(error: BaseException) -> OSError | None:
  """The disk-full / read-only / permission error in `error`'s chain of causes, if any: an
  OSError, or a TensorStore (orbax) error that carries the OS error code in its message."""
  seen = set()
  while error is not None and id(error) not in seen:
    seen.add(id(error))
    if isinstance(error, OSError) and error.errno in _DISK_ERRNOS:
      return error
    code = _OS_ERROR_CODE.search(str(error))
    if code and int(code.group(1)) in _DISK_ERRNOS:
      path = _QUOTED_PATH.search(str(error))  # orbax writes a save under a temporary name
      path = re.sub(r"\.orbax-checkpoint-tmp[^/]*", "", path.group(1)) if path else None
      return OSError(int(code.group(1)), os.strerror(int(code.group(1))), path)
    error = error.__cause__ or error.__context__
  return None


def one_line(error: BaseException) -> str | None:
  """The one-line report of a user or disk error; None for an internal error."""
  if isinstance(error, UserError):
    return " ".join(str(error).split())
  found = disk_error(error)
  if found is not None:
    return f"{found.filename or 'writing'}: {found.strerror or os.strerror(found.errno)}"
  return None


def fail(message: str, prog: str = "maskae") -> None:
  """Runs the exit handlers, prints `prog: error: message` on stderr as the last line and exits
  with status 1 (at once: no interpreter shutdown, whose garbage collection of a failed
  library's pending work would print after it)."""
  atexit._run_exitfuncs()  # pylint: disable=protected-access
  sys.stdout.flush()
  sys.stderr.write(f"{prog}: error: {message}\n")
  sys.stderr.flush()
  os._exit(1)  # pylint: disable=protected-access


class _OneLineLibraryErrors(logging.Filter):
  """Drops the tracebacks that orbax and asyncio log from their background threads (the error
  itself reaches the command, which reports it): their records keep their one message line."""

  def filter(self, record: logging.LogRecord) -> bool:
    if "/orbax/" in record.pathname or record.name == "asyncio":
      record.exc_info, record.exc_text, record.stack_info = None, None, None
      record.msg = str(record.msg).split("\n", 1)[0]
    return True


def _quiet_background_errors() -> None:
  """Library threads and finalizers report in one log line instead of a traceback."""
  def thread_hook(args):
    logging.getLogger("maskae").warning("thread %s: %s: %s", getattr(args.thread, "name", "?"),
                                        args.exc_type.__name__, args.exc_value)

  reported = set()

  def unraisable_hook(unraisable):
    text = f"{type(unraisable.exc_value).__name__}: {unraisable.exc_value}"
    if text not in reported:  # a failed save leaves many of the same
      reported.add(text)
      logging.getLogger("maskae").warning("ignored (%s): %s", unraisable.err_msg, text)

  threading.excepthook, sys.unraisablehook = thread_hook, unraisable_hook
  for handler in logging.getLogger().handlers:
    handler.addFilter(_OneLineLibraryErrors())


def flag_error_line(error: Exception, argv: list[str]) -> str:
  """One line for a failure to parse `argv` (absl / ml_collections config_flags): an unknown
  config key is named by its flag, with ml_collections' "Did you mean" suggestion."""
  text = str(error)
  if len(text) > 1 and text[0] in "'\"" and text[-1] == text[0]:  # a repr (KeyError)
    text = text[1:-1].replace("\\n", " ").replace("\\'", "'")
  text = " ".join(text.split())
  # ml_collections' unknown-key error: the repr of "'<leaf>'\nDid you mean ...".
  unknown = re.match(r"'?([A-Za-z_]\w*)'\s*(Did you mean.*)?$", text)
  if unknown:
    named = [a.split("=", 1)[0] for a in argv[1:] if a.startswith("--config")
             and unknown.group(1) in a.split("=", 1)[0].split(".")[1:]]
    text = (f"{named[0] if named else unknown.group(1)}: no such config key"
            + (f" ({unknown.group(2)})" if unknown.group(2) else ""))
  return text or type(error).__name__


def _parse_flags(argv: list[str], prog: str) -> list[str]:
  """absl flag parsing with every failure (unknown flag or config key, bad value) as one line."""
  try:
    rest = flags.FLAGS(argv)
    for name in flags.FLAGS:  # a config file that fails to load fails here, by name
      flag = flags.FLAGS[name]
      if hasattr(flag, "config_filename"):  # an ml_collections config_flags flag
        path = flag.config_filename.split(":", 1)[0]
        if not os.path.isfile(path):
          fail(f"--{name} {path}: no such config file", prog)
        _ = flag.value
    return rest
  except Exception as e:  # pylint: disable=broad-except  # config_flags raises several kinds
    if os.environ.get(TRACEBACK_ENV) == "1":
      raise
    fail(flag_error_line(e, argv), prog)
    raise  # not reached


def run(main, prog: str = "maskae", flags_parser=None) -> None:
  """absl.app.run(main) with user and disk errors (in flags or in `main`) as one line."""
  parser = flags_parser or (lambda argv: _parse_flags(argv, prog))

  def reported(argv):
    if os.environ.get(TRACEBACK_ENV) != "1":
      _quiet_background_errors()
    try:
      return main(argv)
    except app.UsageError as e:
      fail(str(e), prog)
    except Exception as e:  # pylint: disable=broad-except  # re-raised unless a user error
      message = one_line(e)
      if message is None or os.environ.get(TRACEBACK_ENV) == "1":
        raise
      fail(message, prog)

  app.run(reported, flags_parser=parser)
