"""Preview the training pairs of a config as a PNG grid: one row per pair, columns masked | clean |
alpha (the synthesized mask's opacity).

  python -m maskae.preview --config configs/x.py --output grid.png [--split val] [--num 16]

Validation / test rows are that split's fixed pairs 0..num-1; train rows are the first pairs of a
run from step 0. An existing output file is kept unless --overwrite is given.
"""

import os
import sys

import ml_collections
import numpy as np
from absl import app, flags
from ml_collections import config_flags

from maskae import errors, input_pipeline, pairs, reporting, workdir



def define_flags() -> None:
  """The command's flags (defined only when run as a command, so importing this is free)."""
  config_flags.DEFINE_config_file(
      "config", "configs/default.py", "Config file (get_config()); override fields with "
      "--config.<path>=value.", lock_config=True)
  flags.DEFINE_string("output", None, "PNG file to write.", required=True)
  flags.DEFINE_enum("split", "val", list(input_pipeline.SPLIT_IDS), "Split to sample.")
  flags.DEFINE_integer("num", 16, "Number of pairs (rows).", lower_bound=1)
  flags.DEFINE_bool("overwrite", False, "Replace an existing output file.")


COLUMNS = ("masked", "clean", "alpha")


def sample_pairs(config: ml_collections.ConfigDict, split: str, num: int) -> dict:
  """The first `num` pairs of `split` (fewer if a val / test split is smaller), as numpy arrays."""
  faces = input_pipeline.load_faces(config, split)
  indices = input_pipeline.first_examples(len(faces), config, split, num)
  return pairs.render_on_host(input_pipeline.gather(faces, indices), config, split)


def pair_grid(pairs: dict) -> np.ndarray:
  """uint8 grid image of the pairs: rows = pairs, columns masked | clean | alpha."""
  return reporting.image_grid([pairs[name] for name in COLUMNS])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  FLAGS = flags.FLAGS  # pylint: disable=invalid-name
  output = FLAGS.output
  if not output.lower().endswith(".png"):
    sys.exit(f"maskae.preview: --output must be a .png file, got {output}")
  if os.path.exists(output) and not FLAGS.overwrite:
    sys.exit(f"maskae.preview: {output} exists; pass --overwrite to replace it")
  sampled = sample_pairs(FLAGS.config, FLAGS.split, FLAGS.num)
  if os.path.dirname(output):
    os.makedirs(os.path.dirname(output), exist_ok=True)
  workdir.write_png(output, pair_grid(sampled))
  print(f"maskae.preview: wrote {output}: {len(sampled['clean'])} {FLAGS.split} pairs, columns "
        f"{' | '.join(COLUMNS)}", flush=True)


if __name__ == "__main__":
  define_flags()
  errors.run(main, "maskae.preview")
