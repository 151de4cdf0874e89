"""Benchmark worker processes driven in lockstep, so that measured variants alternate in time.

A worker prints JSON messages on stdout (one line each, prefixed) and, before each timed
repetition, waits for a `go` line on stdin; its stderr goes to a log file shown if it fails.
"""

import json
import os
import resource
import subprocess
import sys
import time

PREFIX = "BENCH "


def send(message: dict) -> None:
  """Worker side: one message to the parent."""
  print(PREFIX + json.dumps(message), flush=True)


def wait_for_go() -> None:
  """Worker side: blocks until the parent starts the next timed repetition."""
  if sys.stdin.readline().strip() != "go":
    raise SystemExit("benchmark parent went away")


def peak_rss_mib() -> float:
  """This process's peak resident memory so far."""
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def cpu_seconds() -> float:
  """User + system CPU seconds of this process, all threads."""
  usage = resource.getrusage(resource.RUSAGE_SELF)
  return usage.ru_utime + usage.ru_stime


class Timer:
  """Worker side: wall and CPU seconds of one repetition, sent to the parent."""

  def start(self) -> None:
    self.wall, self.cpu = time.perf_counter(), cpu_seconds()

  def report(self) -> None:
    send({"seconds": time.perf_counter() - self.wall, "cpu_seconds": cpu_seconds() - self.cpu})


def serve_timed_passes(one_pass, warmup: int, reps: int) -> None:
  """Worker side: `warmup` untimed passes, then `reps` passes each started by the parent's go
  and reported, then the peak memory."""
  for _ in range(warmup):
    one_pass()
  send({"ready": True})
  timer = Timer()
  for _ in range(reps):
    wait_for_go()
    timer.start()
    one_pass()
    timer.report()
  send({"peak_rss_mib": peak_rss_mib()})


class Worker:
  """Parent side: a worker process and its messages."""

  def __init__(self, name: str, command: list[str], log_dir: str, env: dict | None = None):
    self.name = name
    self.log_path = os.path.join(log_dir, f"{name}.log")
    self.log = open(self.log_path, "w")
    self.proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=self.log, text=True, env=env)

  def receive(self) -> dict:
    """The next message; raises with the worker's log tail if it exits first."""
    for line in self.proc.stdout:
      if line.startswith(PREFIX):
        return json.loads(line[len(PREFIX):])
    self.proc.wait()
    self.log.close()
    with open(self.log_path) as f:
      tail = f.read()[-3000:]
    raise RuntimeError(f"{self.name} worker exited with {self.proc.returncode}:\n{tail}")

  def timed_pass(self) -> dict:
    """Runs one timed repetition: its {"seconds", "cpu_seconds"}."""
    self.proc.stdin.write("go\n")
    self.proc.stdin.flush()
    return self.receive()

  def finish(self) -> dict:
    """The worker's last message; waits for it to exit."""
    message = self.receive()
    self.proc.wait()
    self.log.close()
    return message
