"""Where a model's train step spends its time: per-op wall time from a profiler trace.

  .venv/bin/python benchmarks/profile_step.py [--size 128] [--batch_size 32] [--steps 3] [--top 25]
      [--config paper] [--override model.name=mask_composite ...] [--out_dir DIR]

--config and --override pick the model as in benchmarks/batch_sizes.py (default: the paper's).
Runs maskae.train_step.make_pair_train_step (after maskae.main's allocator setting) under
jax.profiler.trace with XLA's per-op trace events on (--xla_cpu_enable_xprof_traceme), dumps the
optimized HLO (--xla_dump_to), and prints the ops taking the most time per step with their
result shape and source op (from the HLO metadata). Ops may overlap in time, and other jobs on the
machine inflate all of them.
"""

import argparse
import collections
import glob
import gzip
import json
import os
import re
import sys
import tempfile

if __package__ in (None, ""):  # run as a file: the repository root holds `benchmarks`
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_HLO_LINE = re.compile(r"\s*(?:ROOT )?%(\S+) = (\S+) ")
_OP_NAME = re.compile(r'op_name="([^"]+)"')


def hlo_ops(dump_dir: str) -> dict:
  """{instruction name: (result shape, source op)} of the train step's optimized entry HLO."""
  [path] = glob.glob(os.path.join(dump_dir, "*per_replica_step.cpu_after_optimizations.txt"))
  with open(path) as f:
    text = f.read()
  ops = {}
  for line in text[text.index("\nENTRY"):].splitlines():
    match = _HLO_LINE.match(line)
    if match:
      source = _OP_NAME.search(line)
      ops[match.group(1)] = (match.group(2), source.group(1).split("/", 1)[-1] if source else "")
  return ops


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--size", type=int, default=128)
  parser.add_argument("--batch_size", type=int, default=32)
  parser.add_argument("--steps", type=int, default=3, help="profiled steps (after 2 warm-up)")
  parser.add_argument("--top", type=int, default=25, help="ops listed")
  parser.add_argument("--config", default="paper", help="paper or utkface (its best model)")
  parser.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                      help="a config field for the profiled model (repeatable)")
  parser.add_argument("--out_dir", help="where the trace and HLO go (default: a new temp dir)")
  args = parser.parse_args()
  work_dir = args.out_dir or tempfile.mkdtemp(prefix="maskae-profile-")
  dump_dir, trace_dir = os.path.join(work_dir, "hlo"), os.path.join(work_dir, "trace")
  os.environ["XLA_FLAGS"] = (f"{os.environ.get('XLA_FLAGS', '')} --xla_cpu_enable_xprof_traceme"
                             f" --xla_dump_to={dump_dir} --xla_dump_hlo_pass_re=^$"
                             " --xla_dump_hlo_module_re=.*per_replica_step.*").strip()
  from maskae import host_memory
  host_memory.reuse_freed_memory()
  import jax
  import numpy as np
  from benchmarks import batch_sizes
  from maskae import models, train_step

  config = batch_sizes.model_config(args.config, args.size, args.batch_size, args.override)
  mesh = train_step.data_mesh()
  state = train_step.replicate(train_step.create_train_state(
      models.create_model(config.model), config, jax.random.key(0)), mesh)
  step_fn = train_step.make_pair_train_step(config, mesh)
  rng = np.random.default_rng(0)
  shape = (args.batch_size, args.size, args.size)
  batch = train_step.shard_batch({"masked": rng.random(shape + (3,), np.float32),
                                  "clean": rng.random(shape + (3,), np.float32),
                                  "alpha": rng.random(shape + (1,), np.float32)}, mesh)
  for _ in range(2):
    state, metrics = step_fn(state, batch)
  jax.block_until_ready((state, metrics))
  with jax.profiler.trace(trace_dir, create_perfetto_trace=True):
    for _ in range(args.steps):
      state, metrics = step_fn(state, batch)
    jax.block_until_ready((state, metrics))

  [trace_path] = glob.glob(os.path.join(trace_dir, "**", "perfetto_trace.json.gz"), recursive=True)
  with gzip.open(trace_path) as f:
    trace = json.load(f)
  events = trace["traceEvents"] if isinstance(trace, dict) else trace
  micros = collections.Counter()
  for event in events:
    if event.get("ph") == "X":
      micros[event["name"]] += event.get("dur", 0)
  ops = hlo_ops(dump_dir)
  per_step = {name: us / args.steps / 1000 for name, us in micros.items() if name in ops}
  total = sum(per_step.values())
  model = " with ".join([args.config] + [", ".join(args.override)] * bool(args.override))
  print(f"{model}, {args.size} px, batch {args.batch_size}: {total:.1f} ms of ops per step "
        f"({args.batch_size / total * 1000:.1f} images/s if run back to back); load "
        f"{os.getloadavg()[0]:.2f}; trace and HLO in {work_dir}")
  print(f"{'ms/step':>8} {'share':>6}  {'op':<30} {'result':<32} source")
  for name, ms in sorted(per_step.items(), key=lambda item: -item[1])[:args.top]:
    result, source = ops[name]
    print(f"{ms:8.2f} {ms / total:6.1%}  {name:<30} {result:<32} {source[:70]}")


if __name__ == "__main__":
  main()
