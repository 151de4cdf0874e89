"""Evaluation of a trained workdir beside classical baselines on the same val / test pairs.

`evaluate_checkpoint` writes under workdir/eval/<split>/: summary.json (mean metrics per method),
examples.csv (every example x method), table.md (the side-by-side table with its definitions)
and PNG grids of random, best and worst examples.
"""

import csv
import io
import os

import jax
import ml_collections
import numpy as np

from maskae import baselines, config_checks, inference, input_pipeline, reporting, train_step
from maskae import metrics as metrics_lib
from maskae import workdir as run_workdir
from maskae.errors import ConfigError

SPLITS = ("val", "test")
METRICS = metrics_lib.NAMES
MODEL = "model"
METHOD_NAMES = {**baselines.NAMES, MODEL: "autoencoder (ours)"}
RANK_METRIC = "psnr_masked"  # orders the best / worst grids (the model's score)
_TOLD_MASK = {"masked_input": "n/a (no fill)", MODEL: "no (blind)"}  # others: "yes (true mask)"
_COLUMN_TITLES = {
    "psnr_masked": "PSNR masked (dB)", "ssim_masked": "SSIM masked", "mae_masked": "MAE masked",
    "mse_masked": "MSE masked", "psnr": "PSNR (dB)", "ssim": "SSIM", "mae": "MAE", "mse": "MSE",
    "keras_accuracy": "Keras \"accuracy\"",
}

_image_metrics = jax.jit(metrics_lib.image_metrics)
_PAIR_IMAGES = ("masked", "clean", "alpha", "output")


class _ExampleKeeper:
  """Holds the images of a fixed random sample and of the k best / worst examples seen so far."""

  def __init__(self, num_examples: int, k: int, seed: int):
    self.k = k
    rng = np.random.default_rng(seed)
    self.random = sorted(rng.choice(num_examples, min(k, num_examples), replace=False).tolist())
    self.scores, self.images = {}, {}

  def add(self, first_index: int, scores: np.ndarray, columns: dict) -> None:
    for i, score in enumerate(scores):
      self.scores[first_index + i] = float(score)
      self.images[first_index + i] = {name: column[i] for name, column in columns.items()}
    keep = set(self.random) | set(self.best()) | set(self.worst())
    self.images = {i: v for i, v in self.images.items() if i in keep}

  def _ranked(self) -> list[int]:
    return sorted(self.scores, key=lambda i: (self.scores[i], i))

  def best(self) -> list[int]:
    return self._ranked()[::-1][:self.k]

  def worst(self) -> list[int]:
    return self._ranked()[:self.k]

  def columns(self, indices: list[int], names: list[str]) -> list[np.ndarray]:
    return [np.stack([self.images[i][name] for i in indices]) for name in names]


def _mean_face(config: ml_collections.ConfigDict) -> tuple[np.ndarray, int]:
  """Per-pixel mean of the training faces, float32 [S,S,3] in [0, 1], and their number."""
  train_faces = input_pipeline.load_faces(config, "train")
  mean = train_faces.images.mean(axis=0, dtype=np.float64) / 255.0
  return mean.astype(np.float32), len(train_faces)


def _score_baselines(batch: dict, mean_face: np.ndarray) -> tuple[dict, dict]:
  """Every baseline's outputs for a batch of pairs, and their per-example metrics."""
  results = baselines.run_all(batch["masked"], batch["alpha"], mean_face)
  scores = {name: {k: np.asarray(v) for k, v in
                   _image_metrics(images, batch["clean"], batch["alpha"]).items()}
            for name, images in results.items()}
  return results, scores


def evaluate_checkpoint(config: ml_collections.ConfigDict, workdir: str, split: str) -> dict:
  """Scores the workdir's best (else latest) checkpoint and the baselines on `split`, writes the
  reports under workdir/eval/<split>/ and returns the summary."""
  if split not in SPLITS:
    raise ConfigError(f'--split={split}: unknown split; valid: {", ".join(SPLITS)}')
  config_checks.validate(config)  # the eval batch is rounded up to the devices: any size
  run_dir = run_workdir.Workdir(workdir)
  run_dir.check_model(config)
  # The recorded config rebuilds the saved train state (its optimizer may differ from `config`'s).
  trained = inference.restore(run_dir, run_dir.trained_config())
  mesh = train_step.data_mesh(jax.local_devices())
  params = train_step.replicate(trained.params, mesh)
  eval_step = train_step.make_eval_step(config, mesh, split)
  feed = input_pipeline.open_feed(config, split, mesh)
  mean_face, num_train_faces = _mean_face(config)
  batch_size = -(-config.data.batch_size // mesh.devices.size) * mesh.devices.size
  keeper = _ExampleKeeper(feed.num_faces, config.train.num_grid_examples, config.seed)
  rows, count = [], 0
  for batch, n in feed.eval_batches(batch_size):
    images, model_metrics = eval_step(params, trained.model.apply, feed.resident,
                                      train_step.shard_batch(batch, mesh))
    pair = {k: np.asarray(images[k])[:n] for k in _PAIR_IMAGES}
    results, scores = _score_baselines(pair, mean_face)
    results[MODEL] = pair["output"]
    scores[MODEL] = {k: np.asarray(v)[:n] for k, v in model_metrics.items()
                     if not k.startswith("input/")}
    mask_fraction = np.mean(pair["alpha"] > metrics_lib.MASK_THRESHOLD, axis=(1, 2, 3))
    for i in range(n):
      for name in METHOD_NAMES:
        rows.append({"index": count + i, "method": name, "mask_fraction": float(mask_fraction[i]),
                     **{m: float(scores[name][m][i]) for m in METRICS}})
    keeper.add(count, scores[MODEL][RANK_METRIC],
               {"clean": pair["clean"], "error": np.mean(np.abs(results[MODEL] - pair["clean"]),
                                                         axis=-1, keepdims=True),
                **results})
    count += n
  summary = _summary(run_dir, split, trained, feed, num_train_faces, rows)
  _write_reports(summary, rows, keeper)
  print(markdown_table(summary), flush=True)
  print("files written:\n" + "\n".join(f"  {k:14s} {v}" for k, v in summary["files"].items()),
        flush=True)
  return summary


def _summary(run_dir, split, trained, feed, num_train_faces, rows) -> dict:
  out_dir = run_dir.eval_dir(split)
  methods = {}
  for name, label in METHOD_NAMES.items():
    values = [r for r in rows if r["method"] == name]
    methods[name] = {"label": label, "told_mask": _TOLD_MASK.get(name, "yes (true mask)"),
                     **{m: float(np.mean([r[m] for r in values])) for m in METRICS}}
  return {
      "split": split,
      "num_examples": feed.num_faces,
      "faces": feed.fingerprint,
      "checkpoint": {"step": trained.step, "selected": trained.selected,
                     "path": trained.directory},
      "methods": methods,
      "definitions": {
          "masked_region": "pixels where the true mask's alpha > 0.5; *_masked metrics average "
                           "over those pixels only (SSIM: its 11x11 Gaussian-window map, "
                           "averaged over the masked pixels of its valid area)",
          "psnr": "10 log10(1 / MSE) for images in [0, 1], capped at 100 dB; the table "
                  "averages per-example values",
          "keras_accuracy": "the paper's \"accuracy\": Keras `accuracy` on a 3-channel image "
                            "under MAE loss resolves to categorical accuracy, the fraction of "
                            "pixels whose arg-max colour channel matches the target's",
          "blind": "the autoencoder gets only the masked photo, never where the mask is; every "
                   "baseline except the masked input is told the true mask",
          "fill_region": f"baselines fill alpha > 0.5 dilated by {baselines.DILATE_PX} px (3x3 "
                         "square) to cover the mask's soft edge; other pixels are kept",
          "opencv": f"cv2.inpaint (Telea 2004; Navier-Stokes, Bertalmio et al. 2001), radius "
                    f"{baselines.OPENCV_RADIUS} px, on 8-bit copies",
          "tv": f"least isotropic colour-coupled total variation keeping the known pixels: "
                f"{baselines.TV_ITERATIONS} Chambolle-Pock primal-dual iterations",
          "mean_face": f"per-pixel mean of the {num_train_faces} training faces pasted into "
                       "the fill region",
          "grids": "grid_random / grid_best / grid_worst: masked | autoencoder | clean | "
                   "|error| (mean over channels), best / worst by the autoencoder's PSNR "
                   "masked; grid_methods: masked | each method | clean, random examples",
      },
      "files": {
          "summary": os.path.join(out_dir, "summary.json"),
          "table": os.path.join(out_dir, "table.md"),
          "examples": os.path.join(out_dir, "examples.csv"),
          "grid_random": os.path.join(out_dir, "grid_random.png"),
          "grid_best": os.path.join(out_dir, "grid_best.png"),
          "grid_worst": os.path.join(out_dir, "grid_worst.png"),
          "grid_methods": os.path.join(out_dir, "grid_methods.png"),
      },
  }


def markdown_table(summary: dict) -> str:
  """The side-by-side table of every method's mean metrics, with footnotes."""
  header = ["method", "told the mask?"] + [_COLUMN_TITLES[m] for m in METRICS]
  lines = [
      f"Evaluation on the {summary['split']} split: {summary['num_examples']} pairs "
      f"({summary['faces']}); autoencoder checkpoint step {summary['checkpoint']['step']} "
      f"({summary['checkpoint']['selected']}).",
      "",
      "| " + " | ".join(header) + " |",
      "|" + "|".join(["---"] * 2 + ["---:"] * len(METRICS)) + "|",
  ]
  for values in summary["methods"].values():
    cells = [values["label"], values["told_mask"]] + [_format(m, values[m]) for m in METRICS]
    lines.append("| " + " | ".join(cells) + " |")
  lines.append("")
  lines += [f"- {name}: {text}" for name, text in summary["definitions"].items()]
  return "\n".join(lines) + "\n"


def _format(metric: str, value: float) -> str:
  return f"{value:.2f}" if metric.startswith("psnr") else f"{value:.4f}"


def _write_reports(summary: dict, rows: list[dict], keeper: _ExampleKeeper) -> None:
  files = summary["files"]
  os.makedirs(os.path.dirname(files["summary"]), exist_ok=True)
  if jax.process_index() != 0:
    return
  run_workdir.write_json(files["summary"], summary)
  run_workdir.write_text(files["table"], markdown_table(summary))
  examples = io.StringIO(newline="")
  writer = csv.DictWriter(examples, ["index", "method", "mask_fraction", *METRICS])
  writer.writeheader()
  writer.writerows(rows)
  run_workdir.write_text(files["examples"], examples.getvalue())
  model_columns = ["masked_input", MODEL, "clean", "error"]
  for name, indices in (("random", keeper.random), ("best", keeper.best()),
                        ("worst", keeper.worst())):
    run_workdir.write_png(files[f"grid_{name}"],
                       reporting.image_grid(keeper.columns(indices, model_columns)))
  method_columns = [*METHOD_NAMES, "clean"]
  run_workdir.write_png(files["grid_methods"],
                     reporting.image_grid(keeper.columns(keeper.random, method_columns)))
