"""`--mode=evaluate`: a trained workdir beside the classical baselines on the same val / test pairs.

`evaluate_checkpoint` scores the best (else latest) checkpoint with `maskae.evaluator` (which also
scores the masked input), adds the baselines told the true mask, and writes under
workdir/eval/<split>/ (eval/<split>_masks_<mix>/ when the config's data.mask block is not the
one the model trained with: an evaluation on other mask styles keeps its own reports and names
its mix; a further `_<key>=<value>+...` when it sets `models.INFERENCE_KEYS` otherwise than the
training did, e.g. eval/val_flip_average=True/): summary.json (the evaluator's summary plus
`baselines`), examples.csv (every example x method), table.md (the side-by-side table with its
definitions) and PNG grids of random, best and worst examples.
"""

import csv
import hashlib
import io
import json
import os

import jax
import ml_collections
import numpy as np

from maskae import baselines, config_checks, config_files, evaluator, inference, input_pipeline
from maskae import models, reporting, train_step
from maskae import metrics as metrics_lib
from maskae import workdir as run_workdir
from maskae.errors import ConfigError

SPLITS = ("val", "test")
METRICS = metrics_lib.NAMES
MODEL, MASKED_INPUT = "model", "masked_input"
# Table order: the do-nothing baseline, the baselines told the true mask, the blind model.
METHOD_NAMES = {MASKED_INPUT: "masked input (no fill)", **baselines.NAMES,
                MODEL: "autoencoder (ours)"}
RANK_METRIC = "psnr_masked"  # orders the best / worst grids (the model's score)
_TOLD_MASK = {MASKED_INPUT: "n/a (no fill)", MODEL: "no (blind)"}  # others: "yes (true mask)"
_COLUMN_TITLES = {
    "psnr_masked": "PSNR masked (dB)", "ssim_masked": "SSIM masked", "mae_masked": "MAE masked",
    "mse_masked": "MSE masked", "sharpness_masked": "sharpness masked",
    "psnr": "PSNR (dB)", "ssim": "SSIM", "mae": "MAE", "mse": "MSE",
    "keras_accuracy": "Keras \"accuracy\"",
}
MEAN_FACE_FILE = "mean_face.npz"  # in workdir/eval/: the mean face, computed once

_image_metrics = jax.jit(metrics_lib.image_metrics)


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


def _mean_face(run_dir: run_workdir.Workdir,
               trained_config: ml_collections.ConfigDict) -> tuple[np.ndarray, int]:
  """Per-pixel mean of the faces the model trained on (the recorded config's train split),
  float32 [S,S,3] in [0, 1], and their number: computed once, then read from eval/ while the
  run record names the same training faces."""
  path = os.path.join(run_dir.file(run_workdir.EVAL_DIR), MEAN_FACE_FILE)
  if os.path.exists(path):
    with np.load(path) as stored:
      if str(stored["faces"]) == _recorded_train_faces(run_dir):
        return stored["mean"], int(stored["count"])
  train_faces = input_pipeline.load_faces(trained_config, "train")
  mean = (train_faces.images.mean(axis=0, dtype=np.float64) / 255.0).astype(np.float32)
  if jax.process_index() == 0:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    data = io.BytesIO()
    np.savez(data, mean=mean, count=len(train_faces), faces=train_faces.fingerprint)
    run_workdir.write_bytes(path, data.getvalue())
  return mean, len(train_faces)


def _recorded_train_faces(run_dir: run_workdir.Workdir) -> str | None:
  """The fingerprint of the training faces in the workdir's run record (None without one)."""
  try:
    with open(run_dir.file(run_workdir.RUN_RECORD_FILE)) as f:
      return json.load(f)["data"]["train"]["fingerprint"]
  except (OSError, ValueError, KeyError):
    return None


def mask_mix_label(trained_config: ml_collections.ConfigDict,
                   config: ml_collections.ConfigDict) -> str:
  """"" when `config` draws the masks the model trained on; else a name for its mask mix: the
  styles joined by "+", and a hash of the whole data.mask block when more than styles differ."""
  # Through JSON, so a recorded block's lists and a config's tuples compare equal.
  trained, scored = (json.loads(json.dumps(c.data.mask.to_dict())) for c in (trained_config,
                                                                            config))
  if trained == scored:
    return ""
  label = "+".join(scored["styles"])
  if {**trained, "styles": None} != {**scored, "styles": None}:
    block = json.dumps(scored, sort_keys=True)
    label += "-" + hashlib.sha1(block.encode()).hexdigest()[:8]
  return label


def inference_label(recorded_config: ml_collections.ConfigDict,
                    config: ml_collections.ConfigDict) -> str:
  """"" when `config` sets every `models.INFERENCE_KEYS` as the training did; else those that
  differ as `<field>=<value>` joined by "+"."""
  recorded, scored = config_files.flatten(recorded_config), config_files.flatten(config)
  return "+".join(f"{key.split('.')[-1]}={scored[key]}" for key in models.INFERENCE_KEYS
                  if key in scored and recorded.get(key) != scored[key])


def evaluate_checkpoint(config: ml_collections.ConfigDict, workdir: str, split: str) -> dict:
  """Scores the workdir's best (else latest) checkpoint and the baselines on `split`, writes the
  reports under workdir/eval/<split>/ and returns the summary."""
  if split not in SPLITS:
    raise ConfigError(f'--split={split}: unknown split; valid: {", ".join(SPLITS)}')
  config_checks.validate(config)  # the eval batch is rounded up to the devices: any size
  run_dir = run_workdir.Workdir(workdir)
  # The recorded config rebuilds the trained model (and names the faces it trained on); the
  # inference keys are the config's.
  recorded_inference = inference_label(run_dir.trained_config(), config)
  trained_config = run_dir.check_model(config)
  trained = inference.restore(run_dir, trained_config)
  scorer = evaluator.Evaluator(config, split, train_step.data_mesh(jax.local_devices()))
  mix = mask_mix_label(trained_config, config)
  out_dir = run_dir.eval_dir("_".join([split] + ([f"masks_{mix}"] if mix else [])
                                      + ([recorded_inference] if recorded_inference else [])))
  mean_face, num_train_faces = _mean_face(run_dir, trained_config)
  keeper = _ExampleKeeper(scorer.num_examples, config.train.num_grid_examples, config.seed)
  rows = []
  for first, n, images, metrics in scorer.batches(trained.params, trained.model.apply):
    pair = {k: np.asarray(v)[:n] for k, v in images.items()}
    outputs = baselines.run_all(pair["masked"], pair["alpha"], mean_face)
    scores = {name: {k: np.asarray(v) for k, v in
                     _image_metrics(out, pair["clean"], pair["alpha"]).items()}
              for name, out in outputs.items()}
    per_example = evaluator.split_metrics(metrics)
    scores[MODEL], scores[MASKED_INPUT] = per_example["model"], per_example["masked_input"]
    outputs[MODEL], outputs[MASKED_INPUT] = pair["output"], pair["masked"]
    mask_fraction = np.mean(pair["alpha"] > metrics_lib.MASK_THRESHOLD, axis=(1, 2, 3))
    for i in range(n):
      for name in METHOD_NAMES:
        rows.append({"index": first + i, "method": name, "mask_fraction": float(mask_fraction[i]),
                     **{m: float(scores[name][m][i]) for m in METRICS}})
    keeper.add(first, scores[MODEL][RANK_METRIC],
               {"clean": pair["clean"], "error": np.mean(np.abs(pair["output"] - pair["clean"]),
                                                         axis=-1, keepdims=True), **outputs})
  summary = _summary(out_dir, scorer, trained, num_train_faces, rows, config, mix,
                     recorded_inference)
  _write_reports(summary, rows, keeper)
  print(markdown_table(summary), flush=True)
  print("files written:\n" + "\n".join(f"  {k:14s} {v}" for k, v in summary["files"].items()),
        flush=True)
  return summary


def _summary(out_dir: str, scorer: evaluator.Evaluator, trained, num_train_faces, rows,
             config: ml_collections.ConfigDict, mix: str, inference_changed: str) -> dict:
  """The evaluator's summary (step, split, pairs, model, masked_input) plus the baselines, the
  checkpoint, the mask mix scored on, the inference keys, the definitions and the files."""
  mask = config.data.mask
  flat = config_files.flatten(config)
  means = {name: {m: float(np.mean([r[m] for r in rows if r["method"] == name]))
                  for m in METRICS} for name in METHOD_NAMES}
  summary = scorer.summary(trained.step, means[MODEL], means[MASKED_INPUT])
  summary.update({
      "mask_mix": {"as_trained": not mix, "label": mix, "data.mask": mask.to_dict()},
      "inference": {"as_trained": not inference_changed, "label": inference_changed,
                    "keys": {k: flat[k] for k in models.INFERENCE_KEYS if k in flat}},
      "baselines": {name: means[name] for name in baselines.NAMES},
      "checkpoint": {"step": trained.step, "selected": trained.selected,
                     "path": trained.directory},
      "definitions": {
          "masked_region": "pixels where the true mask's alpha > 0.5; *_masked metrics average "
                           "over those pixels only (SSIM: its 11x11 Gaussian-window map, "
                           "averaged over the masked pixels of its valid area)",
          "psnr": "10 log10(1 / MSE) for images in [0, 1], capped at 100 dB; the table "
                  "averages per-example values",
          "sharpness_masked": "mean gradient magnitude (forward differences) over the masked "
                              "region, over the clean face's there: 1 is as sharp as the clean "
                              "face, under 1 a smoother fill",
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
  })
  return summary


def method_means(summary: dict) -> dict:
  """{method: mean metrics} of an evaluation summary, in table order (also of a summary.json
  written before the evaluator's summary shape, which held them under "methods")."""
  if "methods" in summary:
    return summary["methods"]
  means = {MASKED_INPUT: summary[MASKED_INPUT], **summary["baselines"], MODEL: summary[MODEL]}
  return {name: means[name] for name in METHOD_NAMES if name in means}


def markdown_table(summary: dict) -> str:
  """The side-by-side table of every method's mean metrics, with footnotes."""
  header = ["method", "told the mask?"] + [_COLUMN_TITLES[m] for m in METRICS]
  lines = [
      f"Evaluation on the {summary['split']} split: {summary['num_examples']} pairs "
      f"({summary['faces']}); autoencoder checkpoint step {summary['checkpoint']['step']} "
      f"({summary['checkpoint']['selected']}).",
      "",
      _mask_mix_line(summary),
      "",
      *_inference_lines(summary),
      "| " + " | ".join(header) + " |",
      "|" + "|".join(["---"] * 2 + ["---:"] * len(METRICS)) + "|",
  ]
  for name, values in method_means(summary).items():
    cells = [METHOD_NAMES[name], _TOLD_MASK.get(name, "yes (true mask)")] + [
        _format(m, values[m]) for m in METRICS]
    lines.append("| " + " | ".join(cells) + " |")
  lines.append("")
  lines += [f"- {name}: {text}" for name, text in summary["definitions"].items()]
  return "\n".join(lines) + "\n"


def _mask_mix_line(summary: dict) -> str:
  mix = summary.get("mask_mix")
  if mix is None:  # a summary.json written before the mask mix was recorded
    return "Mask mix: not recorded."
  styles = ", ".join(mix["data.mask"]["styles"])
  if mix["as_trained"]:
    return f"Mask mix: the one the model trained on (styles: {styles})."
  return (f"Mask mix: NOT the one the model trained on ({mix['label']}; styles: {styles}; "
          f"data.mask: {json.dumps(mix['data.mask'], sort_keys=True)}).")


def _inference_lines(summary: dict) -> list[str]:
  """The inference keys' line and a blank one; none for a summary.json written before them."""
  used = summary.get("inference")
  if used is None:
    return []
  keys = ", ".join(f"{k}={v}" for k, v in used["keys"].items())
  how = "as trained" if used["as_trained"] else f"NOT as trained: {used['label']}"
  return [f"Inference: {keys} ({how}).", ""]


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
  model_columns = [MASKED_INPUT, MODEL, "clean", "error"]
  for name, indices in (("random", keeper.random), ("best", keeper.best()),
                        ("worst", keeper.worst())):
    run_workdir.write_png(files[f"grid_{name}"],
                       reporting.image_grid(keeper.columns(indices, model_columns)))
  method_columns = [*METHOD_NAMES, "clean"]
  run_workdir.write_png(files["grid_methods"],
                     reporting.image_grid(keeper.columns(keeper.random, method_columns)))
