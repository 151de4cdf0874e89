"""Configs as code: load config, sweep and pinned files by path; write a resolved config back as
a loadable config file."""

import ast
import hashlib
import importlib.util
import os
import pprint
import textwrap
import types

import ml_collections
from flax import traverse_util
from ml_collections import config_dict

from maskae.errors import UserError


def load_module(path: str) -> types.ModuleType:
  """Executes the Python file at `path` as a fresh module (not registered in sys.modules)."""
  if not os.path.isfile(path):
    raise UserError(f"no such config file: {path}")
  digest = hashlib.sha1(os.path.abspath(path).encode()).hexdigest()[:12]
  name = f"maskae_config_{os.path.splitext(os.path.basename(path))[0]}_{digest}"
  spec = importlib.util.spec_from_file_location(name, os.path.abspath(path))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def get_config(path: str) -> ml_collections.ConfigDict:
  """`get_config()` of the config file at `path`."""
  module = load_module(path)
  if not hasattr(module, "get_config"):
    raise UserError(f"{path}: a config file must define get_config()")
  return module.get_config()


_NON_FINITE = {"inf": float("inf"), "nan": float("nan")}


def to_source(config: ml_collections.ConfigDict, title: str) -> str:
  """Python source of a config file whose get_config() returns `config` (values as literals)."""
  values = config.to_dict()
  literal = pprint.pformat(values, indent=1, width=96, sort_dicts=True)
  try:  # literals only, plus the non-finite floats (a NaN learning rate is a valid experiment)
    round_trip = eval(compile(ast.parse(literal, mode="eval"), title, "eval"),  # pylint: disable=eval-used
                      {"__builtins__": {}}, dict(_NON_FINITE))
  except (NameError, SyntaxError, TypeError) as error:
    raise ValueError(f"config is not expressible as Python literals ({error}): {literal[:200]}")
  if repr(round_trip) != repr(values):
    raise ValueError("config does not survive a round trip through Python literals")
  return (f'"""{title}"""\n\n'
          "import ml_collections\n\n"
          'inf, nan = float("inf"), float("nan")\n\n\n'
          "def get_config() -> ml_collections.ConfigDict:\n"
          '  """The resolved config, with every override applied."""\n'
          "  return ml_collections.ConfigDict(\n"
          f"{textwrap.indent(literal, ' ' * 6)})\n")


def block_of(config: ml_collections.ConfigDict, key: str):
  """(the ConfigDict that holds the dotted `key`'s field, the field's name); the block is None
  when a section on the way is missing (the field itself may be)."""
  *sections, field = key.split(".")
  block = config
  for section in sections:
    block = block.get(section) if block is not None else None
  return block, field


def flatten(config: ml_collections.ConfigDict | dict) -> dict:
  """{dotted.key: value} of every leaf of a (nested) ConfigDict or dict (flax's flatten_dict)."""
  if isinstance(config, config_dict.ConfigDict):
    config = config.to_dict()
  return traverse_util.flatten_dict(config, sep=".")
