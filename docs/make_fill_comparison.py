"""Side-by-side fills of trained models on the same validation pairs: one PNG grid.

  .venv/bin/python docs/make_fill_comparison.py --workdirs runs/a,runs/b --output docs/x.png \
      [--styles gaiter,bandana] [--num 6]

Rows are the first `--num` validation pairs of the first workdir's recorded config (with
`--styles`, its masks drawn from those styles only: the same faces, other masks); columns are
masked | each workdir's output (with the inference keys it trained with) | clean. Prints each
model's masked-region PSNR and sharpness on the rows shown (the full-split figures come from
`--mode=evaluate`).
"""

import argparse
import os
import sys

import jax
import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from maskae import errors, evaluator, inference, reporting, train_step  # noqa: E402
from maskae import workdir as workdir_lib  # noqa: E402


def fills(workdirs: list[str], styles: tuple[str, ...], num: int):
  """(masked, [each model's output], clean, [each model's metrics]) of the first `num` pairs."""
  config = workdir_lib.Workdir(workdirs[0]).trained_config()
  if styles:
    config.data.mask.styles, config.data.mask.style_weights = styles, ()
  config.data.batch_size = num
  scorer = evaluator.Evaluator(config, "val", train_step.data_mesh(jax.local_devices()[:1]))
  outputs, scores = [], []
  for path in workdirs:
    run_dir = workdir_lib.Workdir(path)
    trained_config = run_dir.trained_config()  # its own model and inference keys
    if trained_config.data.image_size != config.data.image_size:  # the pairs fit every model
      raise errors.UserError(f"{path}: trained at {trained_config.data.image_size} px, "
                             f"{workdirs[0]} at {config.data.image_size} px")
    trained = inference.restore(run_dir, trained_config)
    _, n, images, metrics = next(scorer.batches(trained.params, trained.model.apply))
    images = {k: np.asarray(v)[:n] for k, v in jax.device_get(images).items()}
    outputs.append(images["output"])
    scores.append(evaluator.split_metrics(metrics)["model"])
  return images["masked"], outputs, images["clean"], scores


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--workdirs", required=True, help="comma-separated trained workdirs")
  parser.add_argument("--output", required=True, help="the PNG to write")
  parser.add_argument("--styles", default="", help="comma-separated mask styles to draw")
  parser.add_argument("--num", type=int, default=6)
  args = parser.parse_args()
  workdirs = args.workdirs.split(",")
  styles = tuple(s for s in args.styles.split(",") if s)
  try:
    masked, outputs, clean, scores = fills(workdirs, styles, args.num)
  except errors.UserError as e:  # a missing or mismatched workdir: one line, exit 1
    errors.fail(errors.one_line(e), prog="make_fill_comparison")
  workdir_lib.write_png(args.output, reporting.image_grid([masked, *outputs, clean]))
  print(f"{args.output}: masked | {' | '.join(workdirs)} | clean"
        + (f"; masks of {', '.join(styles)}" if styles else ""))
  for path, values in zip(workdirs, scores):
    print(f"  {path}: PSNR masked {np.mean(values['psnr_masked']):.2f} dB, sharpness masked "
          f"{np.mean(values['sharpness_masked']):.3f} (these {len(clean)} pairs)")


if __name__ == "__main__":
  main()
