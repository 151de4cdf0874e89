"""A trained workdir's validation scores over its inference keys (`maskae.models.INFERENCE_KEYS`).

  python benchmarks/inference_keys.py --workdir runs/utkface [--split val] [--styles a,b]
      [--thresholds 0.2,0.25,0.3,0.4,0.5] [--dilations 2,3]

Restores the workdir's best (else latest) checkpoint once and scores it with maskae.evaluator
on the split's fixed pairs (all of them; the masks of the styles it trained on, or --styles):
first as trained, then with `model.flip_average` off and on at the trained threshold and
dilation, then with it on over every --thresholds x --dilations (a mask_composite model; an
autoencoder has no threshold). None of these keys changes a parameter, so one training serves
them all. Prints one table row per setting: masked-region PSNR, whole-image PSNR, SSIM.
"""

import argparse
import os
import sys

if __package__ in (None, ""):  # run as a file: the repository root holds `benchmarks`
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import report


def settings(model_config, thresholds, dilations) -> list[tuple[bool, float, int]]:
  """(flip_average, threshold, dilation) to score, the trained setting first, no repeats."""
  composite = model_config.composite
  trained = (model_config.flip_average, composite.threshold, composite.dilation)
  rows = [trained, (False, composite.threshold, composite.dilation),
          (True, composite.threshold, composite.dilation)]
  if model_config.name == "mask_composite":
    rows += [(True, t, d) for d in dilations for t in thresholds]
  return list(dict.fromkeys(rows))


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--workdir", required=True, help="a trained run")
  parser.add_argument("--split", default="val", choices=("val", "test"))
  parser.add_argument("--styles", default="", help=report.STYLES_HELP)
  parser.add_argument("--thresholds", default="0.2,0.25,0.3,0.4,0.5")
  parser.add_argument("--dilations", default="2,3")
  args = parser.parse_args()
  import jax
  from maskae import evaluator, inference, models, train_step, workdir

  run_dir = workdir.Workdir(args.workdir)
  config = run_dir.trained_config()
  trained = inference.restore(run_dir, config)
  report.draw_styles(config, args.styles)
  scorer = evaluator.Evaluator(config, args.split, train_step.data_mesh(jax.local_devices()))
  rows = []
  for flip, threshold, dilation in settings(config.model,
                                            [float(t) for t in args.thresholds.split(",")],
                                            [int(d) for d in args.dilations.split(",")]):
    model_config = config.model.copy_and_resolve_references()
    model_config.flip_average = flip
    model_config.composite.threshold, model_config.composite.dilation = threshold, dilation
    means, _ = scorer.evaluate(trained.params, models.create_model(model_config).apply)
    rows.append([str(flip), threshold, dilation, f"{means['psnr_masked']:.2f}",
                 f"{means['psnr']:.2f}", f"{means['ssim']:.4f}"])
  header = ["flip_average", "composite.threshold", "composite.dilation", "PSNR masked (dB)",
            "PSNR (dB)", "SSIM"]
  print(f"{report.checkpoint_caption(args.workdir, trained, args.split, config)}; "
        f"{scorer.num_examples} pairs; the first row is as trained\n\n"
        f"{report.table(header, rows)}", flush=True)


if __name__ == "__main__":
  main()
