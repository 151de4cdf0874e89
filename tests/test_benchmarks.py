"""Smoke tests: each benchmark's --quick mode runs from its file, prints a table and appends it."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _table_rows(output: str) -> list[list[str]]:
  """The cells (stripped) of every markdown table row in `output`."""
  return [[c.strip() for c in line.strip().strip("|").split("|")]
          for line in output.splitlines() if line.startswith("|")]


def _table_row(output: str, first_cells: list[str]) -> list[str]:
  """The cells of the markdown table row of `output` that starts with `first_cells`."""
  for cells in _table_rows(output):
    if cells[:len(first_cells)] == first_cells:
      return cells
  raise AssertionError(f"no row {first_cells} in:\n{output}")


def _run(script: str, tmp_path, header: list[str], *flags: str) -> str:
  """Runs a benchmark's --quick mode; its table (starting with the `header` cells) is printed
  and appended to the results file."""
  results = tmp_path / "RESULTS.md"
  result = subprocess.run(
      [sys.executable, os.path.join("benchmarks", script), "--quick", "--results", str(results),
       *flags],
      cwd=REPO, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  _table_row(result.stdout, header)
  written = results.read_text()
  assert written.startswith("# Benchmark results")
  _table_row(written, header)
  assert f"- command: `python benchmarks/{script} --quick" in written
  return result.stdout


@pytest.mark.slow
def test_train_step_benchmark(tmp_path):
  output = _run("train_step.py", tmp_path, ["size", "batch", "maskae images/s", "Keras images/s"])
  assert _table_row(output, ["32", "75651"])[-1] == "yes", output


@pytest.mark.slow
def test_inference_benchmark(tmp_path):
  _run("inference.py", tmp_path, ["model", "params", "size", "batch", "images/s"])


@pytest.mark.slow
def test_detection_benchmark_finds_the_masked_faces_and_writes_the_grid(tmp_path):
  grid = tmp_path / "grid.png"
  output = _run("detection.py", tmp_path, ["canvas", "faces", "found %"], "--grid", str(grid),
                "--grid_faces", "2")
  for canvas in ("2x (512 px)", "4x (1024 px)"):
    row = _table_row(output, [canvas, "4"])
    assert float(row[2]) >= 75, output  # 3 of the 4 masked procedural faces at least
  assert "alpha IoU mean" in output and "Reframed faces" in output
  with Image.open(grid) as image:
    assert image.size == (3 * 256, 2 * 256)


@pytest.mark.slow
def test_scaling_benchmark(tmp_path):
  output = _run("scaling.py", tmp_path, ["devices", "global batch", "per device", "images/s"])
  _table_row(output, ["2", "32", "16"])


@pytest.mark.slow
def test_profile_step_lists_the_costliest_ops(tmp_path):
  result = subprocess.run(
      [sys.executable, os.path.join("benchmarks", "profile_step.py"), "--size", "32", "--steps",
       "1", "--top", "5", "--override", "model.name=mask_composite", "--out_dir", str(tmp_path)],
      cwd=REPO, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  lines = result.stdout.splitlines()
  assert lines[0].startswith("paper with model.name=mask_composite, 32 px, batch 32:")
  assert lines[1].split() == ["ms/step", "share", "op", "result", "source"]
  assert len(lines) == 7 and "conv" in result.stdout


@pytest.mark.slow
def test_end_to_end_benchmark_times_every_variant_against_the_step(tmp_path):
  output = _run("end_to_end.py", tmp_path, ["config", "size", "batch", "step alone img/s"],
                "--before", "065b144")
  row = _table_row(output, ["paper", "32", "8"])
  alone, device, device_ratio, host, host_ratio = map(float, row[3:8])
  assert alone > 0 and device > 0 and host > 0
  assert abs(device_ratio - device / alone) < 0.01 * device_ratio + 0.01
  assert abs(host_ratio - host / alone) < 0.01 * host_ratio + 0.01
  before = subprocess.run(["git", "-C", REPO, "cat-file", "-e", "065b144"], capture_output=True)
  assert (row[8] != "n/a") == (before.returncode == 0), row  # the TF pipeline, where it exists
  masks_row = _table_row(output, ["32", "8"])
  assert float(masks_row[2]) > 0


@pytest.mark.slow
def test_memory_benchmark_reports_the_peak_of_a_run(tmp_path):
  output = _run("memory.py", tmp_path, ["config", "steps", "code", "peak host RSS (MiB)"])
  row = _table_row(output, ["default", "2", "this checkout"])
  assert 100 < float(row[3]) < 24 * 1024 and row[4] == "n/a"  # CPU: no device figure


@pytest.mark.slow
def test_batch_sizes_benchmark(tmp_path):
  output = _run("batch_sizes.py", tmp_path, ["model", "batch", "images/s (batch on device)"],
                "--override", "model.upsampling=bilinear")
  for model in ("paper", "utkface"):
    assert float(_table_row(output, [model, "8"])[2]) > 0
  assert "float32 with model.upsampling=bilinear;" in output


def test_batch_sizes_overrides_set_fields_and_name_a_bad_key():
  sys.path.insert(0, REPO)
  from benchmarks import batch_sizes
  config = batch_sizes.model_config("paper", 32, 8, ["model.upsampling=bilinear",
                                                    "model.features=[16,32]"])
  assert config.model.upsampling == "bilinear" and config.model.features == (16, 32)
  with pytest.raises(SystemExit, match="--override model.upsampled=bilinear"):
    batch_sizes.model_config("paper", 32, 8, ["model.upsampled=bilinear"])


def test_time_to_quality_reads_runs_and_plots(tmp_path):
  """Fabricated runs with known curves: the first crossing times and last values come out."""
  runs = []
  for name, curve in (("fast", [(100, 60.0, 17.5), (200, 120.0, 19.2), (300, 180.0, 21.3)]),
                      ("slow", [(100, 90.0, 16.0), (200, 180.0, 18.0)])):
    workdir = tmp_path / name
    (workdir / "eval" / "val").mkdir(parents=True)
    with open(workdir / "metrics.jsonl", "w") as f:
      for step, seconds, psnr_masked in curve:
        f.write(json.dumps({"step": step, "time": 0.0, "train/loss": 0.1,
                            "time/train_seconds": seconds - 1}) + "\n")
        f.write(json.dumps({"step": step, "time": 0.0, "val/psnr_masked": psnr_masked,
                            "val/psnr": psnr_masked + 6, "val/ssim": 0.9,
                            "time/train_seconds": seconds}) + "\n")
    (workdir / "eval" / "val" / "summary.json").write_text(
        json.dumps({"model": {}, "masked_input": {},
                    "baselines": {"telea": {"psnr_masked": 17.0}}}))
    runs.append(str(workdir))
  png, results = tmp_path / "curve.png", tmp_path / "RESULTS.md"
  result = subprocess.run(
      [sys.executable, os.path.join("benchmarks", "time_to_quality.py"), "--workdirs",
       ",".join(runs), "--labels", "fast,slow", "--png", str(png), "--results", str(results)],
      cwd=REPO, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  rows = {cells[0]: cells[1:] for cells in _table_rows(result.stdout)
          if cells[0] in ("fast", "slow")}
  # Telea + 2 = 19 dB first reached at 120 s, + 4 = 21 dB at 180 s; "slow" reaches neither.
  assert rows["fast"] == ["300", "3", "2", "3", "21.3", "27.3", "0.9"]
  assert rows["slow"] == ["200", "3", "not reached", "not reached", "18", "24", "0.9"]
  assert png.read_bytes().startswith(b"\x89PNG") and "Time to quality" in results.read_text()


def test_time_to_quality_names_a_missing_evaluation(tmp_path):
  (tmp_path / "metrics.jsonl").write_text("")
  result = subprocess.run(
      [sys.executable, os.path.join("benchmarks", "time_to_quality.py"), "--workdirs",
       str(tmp_path), "--results", ""], cwd=REPO, capture_output=True, text=True, timeout=300)
  assert result.returncode != 0
  assert result.stderr.strip().splitlines()[-1] == (
      f"time_to_quality: no such file: {tmp_path}/eval/val/summary.json "
      "(run --mode=evaluate --split=val)")


@pytest.mark.slow
def test_mask_head_diagnostic_on_a_tiny_composite_run(tmp_path):
  workdir = tmp_path / "run"
  train = subprocess.run(
      [sys.executable, "-m", "maskae.main", "--config", "configs/default.py", "--workdir",
       str(workdir), "--config.model.name=mask_composite", "--config.data.image_size=32",
       "--config.model.composite.detector_features=(4,8)", "--config.model.composite.hard=True",
       "--config.model.composite.dilation=1", "--config.train.output_loss_weight=0",
       "--config.train.raw_loss_weight=1",
       "--config.data.num_train=16", "--config.data.num_val=8", "--config.data.batch_size=8",
       "--config.train.steps=2", "--config.train.eval_every=2",
       "--config.train.checkpoint_every=2"], cwd=REPO, capture_output=True, text=True,
      timeout=600)
  assert train.returncode == 0, train.stderr[-3000:]
  result = subprocess.run(
      [sys.executable, os.path.join("benchmarks", "mask_head.py"), "--workdir", str(workdir),
       "--num", "8"], cwd=REPO, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  cells = [float(c) for c in _table_row(result.stdout, ["8"])]
  assert all(np.isfinite(cells)) and 0 <= cells[3] <= 1 and 0 <= cells[5] <= 1, result.stdout
  assert 0 <= cells[6] <= 1 and 0 <= cells[7] <= 1 and cells[6] + cells[7] > 0, result.stdout
  # Other styles than those trained on: other masks on the same faces.
  other = subprocess.run(
      [sys.executable, os.path.join("benchmarks", "mask_head.py"), "--workdir", str(workdir),
       "--num", "8", "--styles", "gaiter"], cwd=REPO, capture_output=True, text=True,
      timeout=300)
  assert other.returncode == 0, other.stderr[-3000:]
  assert "styles gaiter\n" in other.stdout
  assert _table_row(other.stdout, ["8"]) != _table_row(result.stdout, ["8"])
  # The inference keys over one checkpoint: as trained first, then flips off / on, then the grid.
  keys = subprocess.run(
      [sys.executable, os.path.join("benchmarks", "inference_keys.py"), "--workdir",
       str(workdir), "--thresholds", "0.3,0.5", "--dilations", "1"], cwd=REPO,
      capture_output=True, text=True, timeout=300)
  assert keys.returncode == 0, keys.stderr[-3000:]
  rows = _table_rows(keys.stdout)[2:]
  assert [row[:3] for row in rows] == [["False", "0.5", "1"], ["True", "0.5", "1"],
                                       ["True", "0.3", "1"]], keys.stdout
  assert all(np.isfinite(float(c)) for row in rows for c in row[3:])
  assert rows[0][3:] != rows[1][3:]  # the mirror's prediction averaged in changes the output


def _by_coverage(eval_dir, *flags):
  return subprocess.run(
      [sys.executable, os.path.join("benchmarks", "by_coverage.py"), "--eval_dir", str(eval_dir),
       *flags], cwd=REPO, capture_output=True, text=True, timeout=300)


def test_by_coverage_bins_each_method_by_masked_fraction(tmp_path):
  lines = ["index,method,mask_fraction,psnr_masked,psnr,ssim"]
  for index, (fraction, score) in enumerate([(0.1, 10), (0.15, 20), (0.3, 30), (0.9, 40)]):
    lines.append(f"{index},model,{fraction},{score},{score + 5},{score / 100}")
    lines.append(f"{index},telea,{fraction},{score - 4},{score},{score / 200}")
  (tmp_path / "examples.csv").write_text("\n".join(lines) + "\n")
  result = _by_coverage(tmp_path, "--methods", "model,telea", "--edges", "0.5,0.2")
  assert result.returncode == 0, result.stderr[-3000:]
  rows = {cells[0]: cells[1:] for cells in _table_rows(result.stdout)
          if cells[0].startswith("0.") or cells[0] == "all"}
  assert rows["0.00-0.20"] == ["2", "15.00", "20.00", "0.150", "11.00", "15.00", "0.075"]
  assert rows["0.20-0.50"] == ["1", "30.00", "35.00", "0.300", "26.00", "30.00", "0.150"]
  assert rows["0.50-1.00"][:2] == ["1", "40.00"] and rows["all"][:2] == ["4", "25.00"]


def test_by_coverage_names_what_is_missing(tmp_path):
  result = _by_coverage(tmp_path)
  assert result.returncode != 0
  assert result.stderr.strip().splitlines()[-1] == (
      f"by_coverage: no evaluation at {tmp_path}/examples.csv: run --mode=evaluate first")
  (tmp_path / "examples.csv").write_text("index,method,mask_fraction,psnr_masked,psnr,ssim\n"
                                         "0,model,0.3,20,25,0.8\n")
  result = _by_coverage(tmp_path)
  assert result.stderr.strip().splitlines()[-1] == (
      "by_coverage: no method 'telea' in the evaluation; found: model")
  (tmp_path / "examples.csv").write_text("index,method,psnr_masked,psnr,ssim\n"
                                         "0,model,20,25,0.8\n")
  result = _by_coverage(tmp_path)
  assert result.stderr.strip().splitlines()[-1] == (
      f"by_coverage: {tmp_path}/examples.csv has no column 'mask_fraction'")


@pytest.mark.slow
def test_lever_costs_benchmark_times_every_lever(tmp_path):
  output = _run("lever_costs.py", tmp_path, ["variant", "overrides", "ms/step", "x base"])
  assert _table_row(output, ["configs/utkface.py", "(none)"])[-1] == "1", output
  for label in ("2 FFC blocks, encoder", "gated decoder", "adversarial loss"):
    assert float(_table_row(output, [label])[-1]) > 0, output
  # --only keeps the base and the variants whose overrides name the text.
  output = _run("lever_costs.py", tmp_path, ["variant", "overrides", "ms/step", "x base"],
                "--only", "erase_region")
  without = "autoencoder on the whole photo (not kept from the mask's pixels)"
  assert float(_table_row(output, [without])[-1]) > 0, output
  assert "gated decoder" not in output and "configs/utkface.py" in output


def test_gpu_budget_sizes_from_the_probe_run():
  """Fabricated probe logs (every 5 steps of 100, validated every 25): 0.1 s a step, a 3 s
  validation and a 5 s start (2 s of it compiling the first validation) come out, and the
  schedule fills 95% of the budget."""
  sys.path.insert(0, REPO)
  from benchmarks import gpu_budget  # pylint: disable=import-outside-toplevel
  records, seconds = [], 3.0
  for step in range(5, 101, 5):
    seconds += 0.5
    records.append({"step": step, "train/loss": 0.1, "time/train_seconds": seconds})
    if step % 25 == 0:
      seconds += 5.0 if step == 25 else 3.0
      records.append({"step": step, "val/psnr": 20.0, "time/train_seconds": seconds})
  costs = gpu_budget.probe_costs(records, 100)
  assert costs == pytest.approx({"step": 0.1, "start": 5.0, "validation": 3.0})
  # 0.95 * 60 s - 5 s - 4 * 3 s = 40 s: 400 steps, a multiple of the 4 validations.
  assert gpu_budget.size_steps(costs, 1.0, 4) == 400
  assert gpu_budget.size_steps(costs, 0.2, 4) == 0


def _gpu_budget(workdir, *flags: str, timeout: int = 600) -> subprocess.CompletedProcess:
  """benchmarks/gpu_budget.py on configs/default.py into `workdir`, run from the repository."""
  return subprocess.run(
      [sys.executable, os.path.join("benchmarks", "gpu_budget.py"), "--workdir", str(workdir),
       "--config", "configs/default.py", *flags],
      cwd=REPO, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_gpu_budget_probes_sizes_trains_and_scores_a_run(tmp_path):
  workdir, results = tmp_path / "run", tmp_path / "RESULTS.md"
  tiny = ["--minutes", "0.75", "--evals", "2", "--probe_steps", "60",
          *(f"--override={item}" for item in ("data.image_size=32", "data.num_train=16",
                                               "data.num_val=8", "data.batch_size=8"))]
  result = _gpu_budget(workdir, *tiny, "--results", str(results))
  assert result.returncode == 0, result.stderr[-3000:]
  steps = int(result.stdout.split("train.steps=")[1].split(" ")[0])
  assert steps > 0 and steps % 2 == 0, result.stdout
  summary = json.loads((workdir / "metrics.json").read_text())
  assert summary["step"] == steps
  assert summary["train_seconds"] <= 0.75 * 60 * 1.25, summary  # the budget, with slack for noise
  rows = [cells for cells in _table_rows(result.stdout) if cells[0].isdigit()]
  assert [int(cells[0]) for cells in rows] == [steps // 2, steps]
  assert "A 0.75-minute training" in results.read_text()
  assert "`--mode=evaluate --split=val` (checkpoint" in result.stdout
  assert (workdir / "eval" / "val" / "summary.json").is_file()
  # --skip_evaluation: the curve only.
  quick = _gpu_budget(tmp_path / "quick", *tiny, "--skip_evaluation", "--results", "")
  assert quick.returncode == 0, quick.stderr[-3000:]
  assert "--mode=evaluate" not in quick.stdout and not (tmp_path / "quick" / "eval").exists()
  assert len([cells for cells in _table_rows(quick.stdout) if cells[0].isdigit()]) == 2
  # A workdir that exists is refused before anything runs.
  again = _gpu_budget(workdir, timeout=60)
  assert again.returncode != 0
  assert again.stderr.strip().splitlines()[-1] == (
      f"gpu_budget: --workdir {workdir} exists; name a new one")
