"""What every benchmark records: machine, date, versions, load, a markdown table, RESULTS.md."""

import datetime
import os
import platform
import statistics
import subprocess
import sys
import types
from importlib import metadata

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "RESULTS.md")
LOADED = 2.5  # 1-minute load average above which a run is marked as made on a loaded machine
PACKAGES = ("jax", "jaxlib", "flax", "optax", "numpy", "tensorflow-cpu", "keras")


def parse_args(parser, full: dict, quick: dict):
  """Adds --quick and --results to `parser`, parses, and fills every option left unset (None)
  from the `quick` preset with --quick, else from `full`."""
  parser.add_argument("--quick", action="store_true",
                      help=f"smoke-test preset: {quick} unless given")
  parser.add_argument("--results", default=RESULTS,
                      help="markdown file the tables are appended to ('' for none)")
  args = parser.parse_args()
  for key, value in (quick if args.quick else full).items():
    if getattr(args, key) is None:
      setattr(args, key, value)
  return args


def cpu_model() -> str:
  """The CPU's model name (from /proc/cpuinfo where there is one)."""
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine()


def machine() -> str:
  """One line: CPU model, cores, OS."""
  return f"{cpu_model()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def versions(packages=PACKAGES) -> str:
  """`python X, jax Y, ...` for the installed ones of `packages`."""
  found = [f"python {platform.python_version()}"]
  for name in packages:
    try:
      found.append(f"{name} {metadata.version(name)}")
    except metadata.PackageNotFoundError:
      pass
  return ", ".join(found)


def load() -> float:
  """The 1-minute load average."""
  return os.getloadavg()[0]


class LoadLog:
  """1-minute load averages sampled before and during a run."""

  def __init__(self):
    self.before = load()
    self.during = []

  def sample(self) -> float:
    self.during.append(load())
    return self.during[-1]

  def summary(self) -> str:
    during = self.during or [self.before]
    text = (f"1-min load average {self.before:.2f} before the run, median "
            f"{statistics.median(during):.2f} (max {max(during):.2f}) during it, on "
            f"{os.cpu_count()} cores")
    if max([self.before, *during]) > LOADED:
      text += (f". **Loaded machine** (load > {LOADED}): other jobs shared the cores, so absolute "
               "figures are low and noisy; the measured variants alternate, so their ratios are "
               "the more reliable figures. The benchmark itself adds about 1-2 to the load")
    return text


STYLES_HELP = "comma-separated mask styles to draw (default: those trained on)"


def draw_styles(config, styles: str) -> None:
  """Makes `config` draw the comma-separated mask `styles` (uniformly), if any are given."""
  if styles:
    config.data.mask.styles, config.data.mask.style_weights = tuple(styles.split(",")), ()


def checkpoint_caption(workdir: str, trained, split: str, config) -> str:
  """What a workdir's scores are of: its checkpoint, the split and the mask styles drawn."""
  return (f"{workdir}, checkpoint step {trained.step} ({trained.selected}), {split} split, "
          f"styles {', '.join(config.data.mask.styles)}")


def table(header: list[str], rows: list[list]) -> str:
  """A markdown table, numbers right-aligned; floats to 3 significant figures (whole from 100)."""
  def cell(value):
    if isinstance(value, float):
      return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)

  cells = [[cell(v) for v in row] for row in rows]
  widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(header)]
  lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |",
           "| " + " | ".join("-" * w for w in widths) + " |"]
  lines += ["| " + " | ".join(c.rjust(w) if isinstance(v, (int, float)) else c.ljust(w)
                              for c, v, w in zip(row, values, widths)) + " |"
            for row, values in zip(cells, rows)]
  return "\n".join(lines)


def append(path: str, title: str, body: str, load_log: LoadLog, packages=PACKAGES) -> None:
  """Appends a dated section (command, machine, versions, load, `body`) to the results file."""
  if not path:
    return
  stamp = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
  command = " ".join(["python", *sys.argv])
  section = (f"\n## {title}, {stamp}\n\n"
             f"- command: `{command}`\n- machine: {machine()}\n- versions: {versions(packages)}\n"
             f"- load: {load_log.summary()}\n\n{body}\n")
  new = not os.path.exists(path)
  with open(path, "a") as f:
    if new:
      f.write("# Benchmark results\n\nAppended by the scripts in benchmarks/ (newest last).\n")
    f.write(section)
  print(f"appended to {path}", flush=True)


def module_at_revision(path: str, revision: str, name: str, source_edits=(), **names):
  """The repository file `path` as it was at git `revision`, imported as module `name` (with
  `names` preset in it and each (old, new) of `source_edits` replaced in its source first), to
  compare against what replaced it. Raises subprocess.CalledProcessError if git cannot show it."""
  source = subprocess.run(["git", "-C", REPO, "show", f"{revision}:{path}"], check=True,
                          capture_output=True, text=True).stdout
  for old, new in source_edits:
    source = source.replace(old, new)
  module = types.ModuleType(name)
  module.__dict__.update(names)
  sys.modules[name] = module  # dataclasses look their module up
  exec(compile(source, f"{revision}:{path}", "exec"), module.__dict__)  # pylint: disable=exec-used
  return module
