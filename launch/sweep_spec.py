"""Sweep specs as code: build the list of trials, each a {dotted.config.key: value} dict.

A sweep config file defines get_config() (the base) and get_sweep() (the trials), e.g.

  def get_sweep():
    return product([
        sweep("model.kernel_size", [3, 5, 7]),
        zipit([sweep("train.learning_rate", [1e-3, 3e-3]),
               sweep("train.warmup_steps", [0, 100])]),
        fixed("train.steps", 3000),
    ])

gives 3 x 2 = 6 trials. Each trial becomes `--config.<key>=<value>` flags of maskae.main.
"""

import itertools
import re

Trial = dict  # {dotted.key: value}


def sweep(key: str, values) -> list[Trial]:
  """One trial per value of `key`."""
  _check_key(key)
  values = list(values)
  if not values:
    raise ValueError(f"sweep over {key} has no values")
  return [{key: value} for value in values]


def fixed(key: str, value) -> list[Trial]:
  """A single setting, the same in every trial it is combined with."""
  return sweep(key, [value])


def product(parts: list[list[Trial]]) -> list[Trial]:
  """Every combination of one trial from each part (the first part varies slowest)."""
  return [_merge(combination) for combination in itertools.product(*parts)]


def zipit(parts: list[list[Trial]]) -> list[Trial]:
  """Trial i merges trial i of every part; the parts must have equal lengths."""
  lengths = [len(part) for part in parts]
  if len(set(lengths)) > 1:
    keys = [sorted(part[0]) if part else [] for part in parts]
    raise ValueError(f"zipit parts have different lengths {lengths}: {keys}")
  return [_merge(combination) for combination in zip(*parts)]


def _merge(trials) -> Trial:
  merged = {}
  for trial in trials:
    for key, value in trial.items():
      if key in merged:
        raise ValueError(f"sweep key {key} is set by two parts of a product or zip")
      merged[key] = value
  return merged


def _check_key(key: str) -> None:
  if not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", key or ""):
    raise ValueError(f'sweep key "{key}" is not a dotted config path like model.kernel_size')


def validate(trials: list[Trial]) -> list[Trial]:
  """Checks a sweep's trials: a non-empty list of dicts over the same keys, none repeated."""
  if not isinstance(trials, list) or not trials:
    raise ValueError("get_sweep() must return a non-empty list of {dotted.key: value} dicts")
  keys = None
  seen = set()
  for index, trial in enumerate(trials):
    if not isinstance(trial, dict):
      raise ValueError(f"trial {index} is a {type(trial).__name__}, not a dict")
    for key in trial:
      _check_key(key)
    if keys is not None and set(trial) != keys:
      raise ValueError(f"trial {index} sets keys {sorted(trial)}, trial 0 sets {sorted(keys)}")
    keys = set(trial)
    flags = tuple(to_flags(trial))
    if flags in seen:
      raise ValueError(f"trial {index} repeats an earlier trial: {trial}")
    seen.add(flags)
  return trials


def swept_keys(trials: list[Trial]) -> list[str]:
  """The keys (in first-seen order) whose value differs between trials."""
  keys = list(dict.fromkeys(key for trial in trials for key in trial))
  return [key for key in keys
          if len({format_value(trial.get(key)) for trial in trials}) > 1]


def short_names(keys: list[str]) -> dict:
  """{key: shortest trailing part of the dotted key that no other key ends with}."""
  names = {}
  for key in keys:
    parts = key.split(".")
    for n in range(1, len(parts) + 1):
      name = ".".join(parts[-n:])
      if not any(other != key and (other == name or other.endswith("." + name)) for other in keys):
        break
    names[key] = name
  return names


def format_value(value) -> str:
  """A value as maskae.main's --config.<key>= flag parses it back (strings bare, others repr)."""
  return value if isinstance(value, str) else repr(value)


def to_flags(trial: Trial) -> list[str]:
  """`--config.<key>=<value>` flags of a trial."""
  return [f"--config.{key}={format_value(value)}" for key, value in trial.items()]


def trial_name(index: int, trial: Trial, keys: list[str], num_trials: int) -> str:
  """A directory name such as trial_003_kernel_size=5,strides=1,latent_channels=32 (the swept
  `keys` by short name; characters unsafe in file names replaced by _; at most 200 chars)."""
  width = max(3, len(str(num_trials - 1)))
  short = short_names(keys)
  parts = []
  for key in keys:
    value = trial[key]
    text = "-".join(map(format_value, value)) if isinstance(value, (tuple, list)) else (
        format_value(value))
    parts.append(f"{short[key]}={text}")
  name = f"trial_{index:0{width}d}" + ("_" + ",".join(parts) if parts else "")
  return re.sub(r"[^\w.=,+-]", "_", name)[:200]
