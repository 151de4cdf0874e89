"""Evaluation through `python -m maskae.main --mode=evaluate`, its reports and its errors."""

import csv
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from configs import default
from maskae import (checkpointing, errors, evaluate, inference, input_pipeline, train,
                    workdir)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The trained_workdir's model and data sizes (tests/conftest.py); num_test is free to differ.
FLAGS = ["--config.data.image_size=32", "--config.data.num_train=32", "--config.data.num_val=8",
         "--config.data.num_test=6", "--config.data.batch_size=8"]


def run_evaluate(workdir, *flags):
  return subprocess.run(
      [sys.executable, "-m", "maskae.main", "--config", "configs/default.py",
       "--workdir", str(workdir), "--mode=evaluate", *FLAGS, *flags],
      cwd=REPO, capture_output=True, text=True, timeout=600)


def tiny_config():
  config = default.get_config()
  config.data.image_size, config.data.num_train, config.data.num_val = 32, 32, 8
  config.data.num_test, config.data.batch_size = 6, 8
  return config


def test_evaluate_val_end_to_end_matches_training_metrics(trained_workdir, tmp_path):
  run_dir = tmp_path / "run"  # the shared workdir stays as trained
  shutil.copytree(trained_workdir, run_dir)
  result = run_evaluate(run_dir, "--split=val")
  assert result.returncode == 0, result.stderr[-3000:]
  out_dir = run_dir / "eval" / "val"
  trained = json.loads((run_dir / "metrics.json").read_text())
  summary = json.loads((out_dir / "summary.json").read_text())
  assert summary["split"] == "val" and summary["num_examples"] == 8
  # Training saved its step-4 eval metrics with the checkpoint, so that one is the best.
  assert summary["checkpoint"] == {"step": 4, "selected": "best",
                                   "path": str(run_dir / "checkpoints" / "4")}
  methods = evaluate.method_means(summary)
  assert list(methods) == list(evaluate.METHOD_NAMES)
  assert summary["faces"] == trained["faces"]
  # The same pairs and checkpoint as training's final validation: the same numbers.
  for ours, theirs in (("model", "model"), ("masked_input", "masked_input")):
    for metric in evaluate.METRICS:
      assert methods[ours][metric] == pytest.approx(trained[theirs][metric], rel=1e-4, abs=1e-6)
  # Filling the true mask beats leaving it, in the masked region.
  for name in ("mean_face", "telea", "navier_stokes", "tv"):
    assert methods[name]["mae_masked"] < methods["masked_input"]["mae_masked"], name

  with open(out_dir / "examples.csv") as f:
    rows = list(csv.DictReader(f))
  assert len(rows) == 8 * len(evaluate.METHOD_NAMES)
  assert sorted({int(r["index"]) for r in rows}) == list(range(8))
  for name, values in methods.items():
    mine = [float(r["psnr_masked"]) for r in rows if r["method"] == name]
    assert np.mean(mine) == pytest.approx(values["psnr_masked"], rel=1e-5)

  table = (out_dir / "table.md").read_text()
  for label in evaluate.METHOD_NAMES.values():
    assert label in table
  assert "no (blind)" in table and "arg-max colour channel" in table
  assert "autoencoder checkpoint step 4 (best)" in table
  assert "Mask mix: the one the model trained on (styles: surgical, n95," in table
  assert summary["mask_mix"]["as_trained"] and not summary["mask_mix"]["label"]
  assert table.strip() in result.stdout

  for name, columns in (("random", 4), ("best", 4), ("worst", 4),
                        ("methods", len(evaluate.METHOD_NAMES) + 1)):
    with Image.open(out_dir / f"grid_{name}.png") as grid:
      width, height = grid.size
    # 8 rows (examples) x `columns` square cells, each cell + a 2 px gap, a 2 px outer gap.
    assert (width - 2) % columns == 0 and (width - 2) // columns == (height - 2) / 8, name


def test_evaluate_test_split_in_process(trained_workdir, tmp_path, monkeypatch):
  workdir = tmp_path / "copy"
  shutil.copytree(trained_workdir, workdir)
  summary = evaluate.evaluate_checkpoint(tiny_config(), str(workdir), "test")
  assert summary["split"] == "test" and summary["num_examples"] == 6
  assert summary["faces"].startswith("synthetic:seed=0:split=test")
  assert os.path.isfile(workdir / "eval" / "test" / "table.md")
  for values in evaluate.method_means(summary).values():
    assert all(np.isfinite(values[m]) for m in evaluate.METRICS)
  # The mean face is computed once and recorded: a second evaluation does not decode the faces.
  assert os.path.isfile(workdir / "eval" / evaluate.MEAN_FACE_FILE)
  load_faces = input_pipeline.load_faces
  def load_faces_but_train(config, split):
    assert split != "train", "the training faces were decoded again"
    return load_faces(config, split)
  monkeypatch.setattr(input_pipeline, "load_faces", load_faces_but_train)
  again = evaluate.evaluate_checkpoint(tiny_config(), str(workdir), "val")
  assert again["baselines"]["mean_face"]["psnr"] > 0


def test_evaluate_on_other_mask_styles_keeps_its_own_reports_and_names_the_mix(
    trained_workdir, tmp_path):
  run_dir = tmp_path / "run"
  shutil.copytree(trained_workdir, run_dir)
  result = run_evaluate(run_dir, "--split=val", "--config.data.mask.styles=('gaiter','bandana')")
  assert result.returncode == 0, result.stderr[-3000:]
  assert not (run_dir / "eval" / "val").exists()  # the as-trained evaluation's place is kept
  out_dir = run_dir / "eval" / "val_masks_gaiter+bandana"
  summary = json.loads((out_dir / "summary.json").read_text())
  assert summary["mask_mix"]["label"] == "gaiter+bandana"
  assert summary["mask_mix"]["data.mask"]["styles"] == ["gaiter", "bandana"]
  assert not summary["mask_mix"]["as_trained"]
  table = (out_dir / "table.md").read_text()
  assert ("Mask mix: NOT the one the model trained on (gaiter+bandana; styles: gaiter, bandana"
          in table)
  trained = json.loads((run_dir / "metrics.json").read_text())
  # Other masks, the same faces: the masked input scores differently.
  assert summary["masked_input"]["psnr_masked"] != trained["masked_input"]["psnr_masked"]


def test_evaluate_with_flip_averaging_keeps_its_own_reports_and_names_the_keys(
    trained_workdir, tmp_path):
  run_dir = tmp_path / "run"
  shutil.copytree(trained_workdir, run_dir)
  result = run_evaluate(run_dir, "--split=val", "--config.model.flip_average=True")
  assert result.returncode == 0, result.stderr[-3000:]
  assert not (run_dir / "eval" / "val").exists()
  summary = json.loads((run_dir / "eval" / "val_flip_average=True" / "summary.json").read_text())
  assert summary["inference"]["label"] == "flip_average=True"
  assert summary["inference"]["keys"]["model.flip_average"] is True
  assert not summary["inference"]["as_trained"] and summary["mask_mix"]["as_trained"]
  table = (run_dir / "eval" / "val_flip_average=True" / "table.md").read_text()
  assert "model.flip_average=True" in table and "NOT as trained: flip_average=True" in table
  trained = json.loads((run_dir / "metrics.json").read_text())
  # The same pairs (the masked input scores alike), another output: the mirror's averaged in.
  assert summary["masked_input"]["psnr"] == pytest.approx(trained["masked_input"]["psnr"])
  assert summary["model"]["psnr"] != pytest.approx(trained["model"]["psnr"], abs=1e-4)


def test_inference_keys_may_differ_from_the_training_and_are_taken_from_the_config(
    trained_workdir):
  run_dir = workdir.Workdir(str(trained_workdir))
  recorded = run_dir.trained_config()
  config = tiny_config()
  assert evaluate.inference_label(recorded, config) == ""
  config.model.flip_average, config.model.composite.threshold = True, 0.25
  assert evaluate.inference_label(recorded, config) == "flip_average=True+threshold=0.25"
  used = run_dir.check_model(config)
  assert used.model.flip_average and used.model.composite.threshold == 0.25
  assert not run_dir.trained_config().model.flip_average  # the record is left as it is


def test_mask_mix_label_names_styles_and_hashes_other_changes():
  trained = tiny_config()
  assert evaluate.mask_mix_label(trained, tiny_config()) == ""
  other = tiny_config()
  other.data.mask.styles = ("n95",)
  assert evaluate.mask_mix_label(trained, other) == "n95"
  other.data.mask.coverage = (0.5, 1.0)
  label = evaluate.mask_mix_label(trained, other)
  assert label.startswith("n95-") and len(label) == len("n95-") + 8
  covered = tiny_config()
  covered.data.mask.coverage = (0.5, 1.0)
  assert evaluate.mask_mix_label(trained, covered).startswith("surgical+n95+")


def test_evaluate_without_checkpoint_is_a_one_line_error(tmp_path):
  missing = tmp_path / "never_trained"
  result = run_evaluate(missing)
  assert result.returncode != 0
  assert "Traceback" not in result.stderr
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith("maskae: error:") and "not a trained maskae workdir" in last
  assert not missing.exists()

  no_checkpoint = workdir.Workdir(str(tmp_path / "no_ckpt"))
  os.makedirs(no_checkpoint.path)
  no_checkpoint.record_config(tiny_config())
  with pytest.raises(errors.CheckpointError, match="no checkpoint in"):
    inference.restore(no_checkpoint, tiny_config())
  assert not (tmp_path / "no_ckpt" / "checkpoints").exists()


def test_model_config_must_match_the_workdir(trained_workdir):
  config = tiny_config()
  config.data.num_test, config.train.steps = 99, 7  # free to differ
  run_dir = workdir.Workdir(str(trained_workdir))
  run_dir.check_model(config)
  config.model.features = (16, 32)
  config.data.image_size = 64
  with pytest.raises(errors.WorkdirError, match="data.image_size, model.features"):
    run_dir.check_model(config)


def test_checkpoint_metrics_persist_for_best_selection(trained_workdir):
  run_dir = workdir.Workdir(str(trained_workdir))
  config = run_dir.trained_config()
  manager = checkpointing.create_manager(run_dir.checkpoint_dir, config.train, read_only=True)
  try:
    assert manager.metrics(4)["psnr_masked"] > 0 and manager.best_step() == 4
  finally:
    manager.close()
  trained = inference.restore(run_dir, config)
  assert (trained.step, trained.selected) == (4, "best")


def test_example_keeper_keeps_random_best_and_worst():
  keeper = evaluate._ExampleKeeper(num_examples=10, k=2, seed=0)
  scores = np.array([5.0, 1.0, 9.0, 3.0, 7.0, 0.0, 8.0, 2.0, 6.0, 4.0])
  for start in range(0, 10, 4):
    chunk = scores[start:start + 4]
    keeper.add(start, chunk, {"image": np.arange(start, start + len(chunk))[:, None]})
  assert keeper.best() == [2, 6] and keeper.worst() == [5, 1]
  assert len(keeper.random) == 2
  assert set(keeper.images) == {2, 6, 5, 1, *keeper.random}
  np.testing.assert_array_equal(keeper.columns([2, 5], ["image"])[0], [[2], [5]])


def test_fill_comparison_grid_of_two_workdirs_on_other_styles(trained_workdir, tmp_path):
  other = default.get_config()  # another model at trained_workdir's image size
  other.data.image_size, other.data.num_train, other.data.num_val = 32, 32, 8
  other.data.batch_size = 8
  other.train.steps = other.train.eval_every = other.train.checkpoint_every = 2
  other.model.bottleneck_convs += 1
  train.train_and_evaluate(other, str(tmp_path / "other"))
  output = tmp_path / "fills.png"
  result = subprocess.run(
      [sys.executable, "docs/make_fill_comparison.py", "--workdirs",
       f"{trained_workdir},{tmp_path / 'other'}", "--output", str(output), "--styles", "n95",
       "--num", "3"], cwd=REPO, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  with Image.open(output) as grid:
    width, height = grid.size
  assert (width - 2) % 4 == 0 and (width - 2) // 4 == (height - 2) / 3  # 3 rows x 4 columns
  assert "masks of n95" in result.stdout and result.stdout.count("sharpness masked") == 2
  missing = subprocess.run(
      [sys.executable, "docs/make_fill_comparison.py", "--workdirs",
       f"{trained_workdir},{tmp_path / 'nowhere'}", "--output", str(tmp_path / "no.png")],
      cwd=REPO, capture_output=True, text=True, timeout=600)
  assert missing.returncode == 1 and "Traceback" not in missing.stderr
  assert missing.stderr.strip().splitlines()[-1].startswith("make_fill_comparison: error: ")
  assert "nowhere" in missing.stderr and not (tmp_path / "no.png").exists()
  resized = tmp_path / "resized"  # a workdir trained at another size: refused before restoring
  shutil.copytree(trained_workdir, resized)
  record = (resized / "config.py").read_text()
  (resized / "config.py").write_text(record.replace("'image_size': 32", "'image_size': 48"))
  mismatch = subprocess.run(
      [sys.executable, "docs/make_fill_comparison.py", "--workdirs",
       f"{trained_workdir},{resized}", "--output", str(tmp_path / "no.png")],
      cwd=REPO, capture_output=True, text=True, timeout=600)
  assert mismatch.returncode == 1 and "Traceback" not in mismatch.stderr
  assert mismatch.stderr.strip().splitlines()[-1] == (
      f"make_fill_comparison: error: {resized}: trained at 48 px, {trained_workdir} at 32 px")
