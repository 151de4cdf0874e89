"""How a mask-head (composite) model spends its masked region: decoded image vs composite.

  python benchmarks/mask_head.py --workdir runs/utkface [--split val] [--num 100] [--styles a,b]

Restores the workdir's best (else latest) checkpoint, runs it on the first --num pairs of the
split and prints, over the true masked region (alpha > 0.5): the PSNR of the decoder's image
before compositing (`raw`) and of the composite output, the predicted mask's mean inside and
outside the true mask, its IoU with it (both thresholded at 0.5), the shares of the pixels inside
and outside the true mask that the output took from the decoded image, and the masked fraction.
--styles draws other mask styles than those the workdir trained on (e.g. held-out ones).
"""

import argparse
import os
import sys

if __package__ in (None, ""):  # run as a file: the repository root holds `benchmarks`
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np

from benchmarks import report


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--workdir", required=True,
                      help="a trained run of model.name=mask_composite")
  parser.add_argument("--split", default="val", choices=("val", "test"))
  parser.add_argument("--num", type=int, default=100, help="pairs scored")
  parser.add_argument("--styles", default="", help=report.STYLES_HELP)
  args = parser.parse_args()
  from maskae import input_pipeline, inference, metrics, pairs, workdir

  run_dir = workdir.Workdir(args.workdir)
  config = run_dir.trained_config()
  if config.model.name != "mask_composite":
    raise SystemExit(f"mask_head: {args.workdir} trained model.name={config.model.name!r}, not "
                     "mask_composite: it predicts no mask")
  trained = inference.restore(run_dir, config)
  report.draw_styles(config, args.styles)
  faces = input_pipeline.load_faces(config, args.split)
  indices = input_pipeline.first_examples(len(faces), config, args.split, args.num)
  batch = pairs.render_on_host(input_pipeline.gather(faces, indices), config, args.split)
  outputs = trained.model.apply({"params": trained.params}, batch["masked"])
  covered = batch["alpha"] > metrics.MASK_THRESHOLD
  pixels = np.broadcast_to(covered, batch["clean"].shape)

  def psnr_masked(image):
    return 10 * np.log10(1 / np.mean(np.square(np.asarray(image) - batch["clean"])[pixels]))

  mask = np.asarray(outputs["mask"])
  predicted = mask > 0.5
  decoded = np.all(np.abs(np.asarray(outputs["output"]) - np.asarray(outputs["raw"])) < 1e-6,
                   axis=-1, keepdims=True)  # pixels the output took whole from the decoded image
  rows = [[len(batch["clean"]), float(psnr_masked(outputs["raw"])),
           float(psnr_masked(outputs["output"])),
           float(mask[covered].mean()), float(mask[~covered].mean()),
           float((predicted & covered).sum() / (predicted | covered).sum()),
           float(decoded[covered].mean()), float(decoded[~covered].mean()),
           float(covered.mean())]]
  header = ["pairs", "PSNR masked, raw (dB)", "PSNR masked, composite (dB)",
            "mask mean inside", "mask mean outside", "mask IoU", "decoded inside",
            "decoded outside", "masked fraction"]
  print(f"{report.checkpoint_caption(args.workdir, trained, args.split, config)}\n\n"
        f"{report.table(header, rows)}", flush=True)


if __name__ == "__main__":
  main()
